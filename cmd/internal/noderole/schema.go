package noderole

import (
	"fmt"

	"golang.org/x/crypto/blake2b"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/hub"
)

// This file is the schema descriptor of --schema, --schema-version and
// --schema-blds (B-9): with --schema-blds the node registers (producer) or
// expects (consumer) the descriptor {--schema, --schema-version, --schema-blds},
// and the channel's schema_hash is the BLAKE2b-256 of the BLDS text
// (spec/datablock.md §12.2) instead of the name's.

// parseSchema checks the descriptor flags and fills o.descriptor.
func (o *options) parseSchema() error {
	if o.schemaBLDS == "" {
		return nil
	}
	if o.schema == "" {
		return fmt.Errorf("--schema-blds needs --schema (the schema name)")
	}
	var major, minor, patch uint32
	if _, err := fmt.Sscanf(o.schemaVersion, "%d.%d.%d", &major, &minor, &patch); err != nil || major > 0x3FF || minor > 0x3FF || patch > 0xFFF {
		return fmt.Errorf("--schema-version %q: want major.minor.patch", o.schemaVersion)
	}
	if _, err := proto.SchemaFields(o.schemaBLDS); err != nil {
		return fmt.Errorf("--schema-blds: %w", err)
	}
	o.descriptor = &hub.Schema{Name: o.schema, Version: proto.PackVersion(major, minor, patch), BLDS: o.schemaBLDS}
	return nil
}

// channelSchemaHash is the schema_hash a producer registers and a consumer
// without a descriptor expects.
func (o options) channelSchemaHash() []byte {
	if o.descriptor != nil {
		h := blake2b.Sum256([]byte(o.descriptor.BLDS))
		return h[:]
	}
	return schemaHash(o.schema)
}

// schemaExpectation fills a consumer's schema check: the descriptor when
// given (the hash then differs between compatible versions, so it is not
// compared), else the hash of the name.
func (o options) schemaExpectation(opts *hub.ConsumerOptions) {
	if o.descriptor != nil {
		opts.ExpectedSchema = o.descriptor
		return
	}
	opts.ExpectedSchemaHash = schemaHash(o.schema)
}
