package proto

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrSchemaIncompatible is returned by CheckSchema when a schema descriptor is
// not compatible with the one it is checked against (SCHEMA_MISMATCH).
var ErrSchemaIncompatible = errors.New("schema incompatible")

// Schema is a schema descriptor (B-9): a name, a packed version
// (spec/datablock.md §12.3) and the BLDS text of the slot struct (§12.1:
// members "name:type" joined by ";"). REG_REQ carries it as schema_name,
// schema_version and schema_blds; DISC_ACK returns it. A descriptor is present
// when Name is not empty (an empty struct has empty BLDS).
type Schema struct {
	Name    string `json:"name"`
	Version uint32 `json:"version"`
	BLDS    string `json:"blds"`
}

// Present reports whether s is a descriptor (Name set).
func (s Schema) Present() bool { return s.Name != "" }

// PackVersion packs major.minor.patch as spec/datablock.md §12.3.
func PackVersion(major, minor, patch uint32) uint32 {
	return (major&0x3FF)<<22 | (minor&0x3FF)<<12 | patch&0xFFF
}

// VersionParts unpacks a §12.3 version.
func VersionParts(v uint32) (major, minor, patch uint32) {
	return v >> 22 & 0x3FF, v >> 12 & 0x3FF, v & 0xFFF
}

// VersionString is "major.minor.patch" of a packed version.
func VersionString(v uint32) string {
	a, b, c := VersionParts(v)
	return fmt.Sprintf("%d.%d.%d", a, b, c)
}

// bldsMember is one BLDS member: name ":" type ["@" offset ":" size].
var bldsMember = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*:(f32|f64|i8|i16|i32|i64|u8|u16|u32|u64|b|c)(\[[1-9][0-9]{0,9}\])?(@[0-9]{1,10}:[0-9]{1,10})?$`)

// SchemaFields splits BLDS text into its members, or reports (ErrInvalid) the
// first member that breaks the §12.1 grammar. Empty text is the empty struct.
func SchemaFields(blds string) ([]string, error) {
	if blds == "" {
		return nil, nil
	}
	fields := strings.Split(blds, ";")
	for i, f := range fields {
		if !bldsMember.MatchString(f) {
			return nil, fmt.Errorf("%w: schema_blds member %d %q is not name:type (spec/datablock.md §12.1)", ErrInvalid, i, truncate(f))
		}
	}
	return fields, nil
}

// fieldName is the member's name (before ':').
func fieldName(member string) string {
	name, _, _ := strings.Cut(member, ":")
	return name
}

// CheckSchema applies the compatibility policy (docs/protocol.md "Schema
// registry") to a descriptor next that is to be read as, or replace, base:
//
//   - the names are equal and the major versions are equal;
//   - next has every member of base, in order, unchanged (name and type);
//   - next may append members only with a higher minor version than base.
//
// Equal member lists are compatible whatever the minor and patch. The error
// wraps ErrSchemaIncompatible and names the first differing field.
func CheckSchema(base, next Schema) error {
	if base.Name != next.Name {
		return fmt.Errorf("%w: schema name %q, expected %q", ErrSchemaIncompatible, next.Name, base.Name)
	}
	bMaj, bMin, _ := VersionParts(base.Version)
	nMaj, nMin, _ := VersionParts(next.Version)
	if bMaj != nMaj {
		return fmt.Errorf("%w: schema %q major version %d, expected %d", ErrSchemaIncompatible, base.Name, nMaj, bMaj)
	}
	bf, err := SchemaFields(base.BLDS)
	if err != nil {
		return fmt.Errorf("%w: expected schema: %w", ErrSchemaIncompatible, err)
	}
	nf, err := SchemaFields(next.BLDS)
	if err != nil {
		return fmt.Errorf("%w: schema: %w", ErrSchemaIncompatible, err)
	}
	for i, want := range bf {
		if i >= len(nf) {
			return fmt.Errorf("%w: schema %q field %d %q missing (expected %q)", ErrSchemaIncompatible, base.Name, i, fieldName(want), want)
		}
		if nf[i] != want {
			return fmt.Errorf("%w: schema %q field %d %q: %q, expected %q", ErrSchemaIncompatible, base.Name, i, fieldName(want), nf[i], want)
		}
	}
	if len(nf) > len(bf) && nMin <= bMin {
		return fmt.Errorf("%w: schema %q field %d %q appended without a higher minor version (%s, expected > %s)",
			ErrSchemaIncompatible, base.Name, len(bf), fieldName(nf[len(bf)]), VersionString(next.Version), VersionString(base.Version))
	}
	return nil
}
