package shm

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"
)

// Typed API: a flex-zone struct F and a slot struct S, both fixed-size plain data
// (no pointers, slices, strings or maps). Use struct{} for "no flex zone". Each type's
// schema comes from SchemaOf (reflection over `blds` tags) unless the Config or
// AttachOptions give an explicit one.

// typedSchemas returns the schemas of F and S (flex nil when F has no fields).
func typedSchemas[F, S any]() (flex, slot *Schema, err error) {
	if slot, err = SchemaOf[S](); err != nil {
		return nil, nil, err
	}
	if sizeOf[F]() > 0 {
		if flex, err = SchemaOf[F](); err != nil {
			return nil, nil, err
		}
	}
	return flex, slot, nil
}

func checkTypedFit[F, S any](b *Block) error {
	if sz := sizeOf[S](); sz > b.SlotSize() {
		return fmt.Errorf("%w: slot type of %d bytes, slots of %d", ErrTooSmall, sz, b.SlotSize())
	}
	if sz := sizeOf[F](); sz > b.FlexSize() {
		return fmt.Errorf("%w: flex type of %d bytes, flex zone of %d", ErrTooSmall, sz, b.FlexSize())
	}
	return nil
}

// CreateTyped creates a block for flex type F and slot type S: it fills in the
// schemas (unless cfg has them), and requires FlexSize ≥ sizeof(F) and a slot
// stride ≥ sizeof(S).
func CreateTyped[F, S any](name string, cfg Config) (*Block, error) {
	flex, slot, err := typedSchemas[F, S]()
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	if cfg.SlotSchema == nil {
		cfg.SlotSchema = slot
	}
	if cfg.FlexSchema == nil {
		cfg.FlexSchema = flex
	}
	if sz := sizeOf[F](); uint64(cfg.FlexSize) < uint64(sz) {
		return nil, fmt.Errorf("create %s: %w: flex size %d < sizeof(flex type) %d", name, ErrInvalidConfig, cfg.FlexSize, sz)
	}
	if sz := sizeOf[S](); uint64(cfg.stride()) < uint64(sz) {
		return nil, fmt.Errorf("create %s: %w: slot size %d < sizeof(slot type) %d", name, ErrInvalidConfig, cfg.stride(), sz)
	}
	return Create(name, cfg)
}

// AttachTyped attaches and checks that the stored schemas match F and S (flex
// schema first), and that the types fit.
func AttachTyped[F, S any](name string, secret uint64, opts *AttachOptions) (*Block, error) {
	flex, slot, err := typedSchemas[F, S]()
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w", name, err)
	}
	o := AttachOptions{}
	if opts != nil {
		o = *opts
	}
	if o.SlotSchema == nil {
		o.SlotSchema = slot
	}
	if o.FlexSchema == nil {
		o.FlexSchema = flex
	}
	b, err := Attach(name, secret, &o)
	if err != nil {
		return nil, err
	}
	if err := checkTypedFit[F, S](b); err != nil {
		b.Close()
		return nil, fmt.Errorf("attach %s: %w", name, err)
	}
	return b, nil
}

// TypedWriter writes S values into slots and F into the flex zone.
type TypedWriter[F, S any] struct {
	w *Writer
}

// NewTypedWriter returns a TypedWriter on b.
func NewTypedWriter[F, S any](b *Block, opts WaitOptions) (*TypedWriter[F, S], error) {
	if err := checkPlain(typeOf[F]()); err != nil {
		return nil, err
	}
	if err := checkPlain(typeOf[S]()); err != nil {
		return nil, err
	}
	if err := checkTypedFit[F, S](b); err != nil {
		return nil, err
	}
	w, err := b.NewWriter(opts)
	if err != nil {
		return nil, err
	}
	return &TypedWriter[F, S]{w: w}, nil
}

// Writer returns the underlying byte-slice Writer.
func (t *TypedWriter[F, S]) Writer() *Writer { return t.w }

// Write is one write transaction: it acquires a slot, calls fn with the flex zone
// (nil when F is empty) and the slot, and publishes the whole slot when fn returns
// nil; an error (or a fault) from fn aborts the slot. Under a checksum policy other
// than None the flex-zone hash is refreshed after a successful fn.
func (t *TypedWriter[F, S]) Write(ctx context.Context, timeout time.Duration, fn func(flex *F, slot *S) error) (uint64, error) {
	s, err := t.w.AcquireWrite(ctx, timeout)
	if err != nil {
		return 0, err
	}
	b := t.w.b
	if err := callGuarded(func() error { return fn(typedFlex[F](b), viewAs[S](s.Bytes())) }); err != nil {
		s.Abort()
		return 0, err
	}
	if b.csum != ChecksumNone && b.lay.flexSize > 0 && sizeOf[F]() > 0 && b.csum != ChecksumEnforced {
		t.w.UpdateFlexChecksum() // Enforced refreshes it in Release
	}
	s.Commit(len(s.Bytes()))
	return s.id, s.Release()
}

// UpdateFlex is a flex-zone-only transaction: fn changes the flex zone, then its
// hash is refreshed (unless the policy is None or fn fails).
func (t *TypedWriter[F, S]) UpdateFlex(fn func(flex *F) error) error {
	b := t.w.b
	if b.lay.flexSize == 0 || sizeOf[F]() == 0 {
		return ErrNoFlexZone
	}
	if err := callGuarded(func() error { return fn(typedFlex[F](b)) }); err != nil {
		return err
	}
	if b.csum != ChecksumNone {
		return t.w.UpdateFlexChecksum()
	}
	return nil
}

// Heartbeat refreshes the producer heartbeat.
func (t *TypedWriter[F, S]) Heartbeat() error { return t.w.Heartbeat() }

// Close closes the underlying Writer.
func (t *TypedWriter[F, S]) Close() error {
	if t == nil {
		return nil
	}
	return t.w.Close()
}

// TypedReader reads S values from slots and F from the flex zone.
type TypedReader[F, S any] struct {
	r *Reader
}

// NewTypedReader registers a consumer on b.
func NewTypedReader[F, S any](b *Block, opts ReaderOptions) (*TypedReader[F, S], error) {
	if err := checkTypedFit[F, S](b); err != nil {
		return nil, err
	}
	r, err := b.NewReader(opts)
	if err != nil {
		return nil, err
	}
	return &TypedReader[F, S]{r: r}, nil
}

// Reader returns the underlying byte-slice Reader.
func (t *TypedReader[F, S]) Reader() *Reader { return t.r }

// Read is one read transaction: it acquires the next slot by policy, calls fn with
// the flex zone (nil when F is empty) and the slot, then releases it. fn must not
// keep the pointers. An error from fn drops the slot (not marked consumed) and is
// returned; otherwise Release's verdict is (ErrOverwritten, ErrChecksum or nil).
func (t *TypedReader[F, S]) Read(ctx context.Context, timeout time.Duration, fn func(flex *F, slot *S) error) (uint64, error) {
	s, err := t.r.AcquireRead(ctx, timeout)
	if err != nil {
		return 0, err
	}
	b := t.r.b
	if err := callGuarded(func() error { return fn(typedFlex[F](b), viewAs[S](s.Bytes())) }); err != nil {
		s.Drop()
		return s.id, err
	}
	return s.id, s.Release()
}

// Heartbeat refreshes the consumer heartbeat.
func (t *TypedReader[F, S]) Heartbeat() error { return t.r.Heartbeat() }

// Close closes the underlying Reader.
func (t *TypedReader[F, S]) Close() error {
	if t == nil {
		return nil
	}
	return t.r.Close()
}

func typedFlex[F any](b *Block) *F {
	if sizeOf[F]() == 0 || b.lay.flexSize == 0 {
		return nil
	}
	return viewAs[F](b.Flex())
}

// callGuarded runs fn with faults on the mapping turned into ErrFault.
func callGuarded(fn func() error) (err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return fn()
}
