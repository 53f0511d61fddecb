package hub

import (
	"context"
	"fmt"
	"sync"
)

// ManagedProducer ties a Producer to an application's own start/stop orchestration
// (api.md §6): it holds the options, creates and starts the Producer on Start, and
// stops and closes it on Stop. Nothing is created, and nothing is sent to the
// broker, before Start. Safe for concurrent use.
type ManagedProducer struct {
	managed[*Producer]
}

// NewManagedProducer returns a wrapper that will create a Producer on m with opts.
func NewManagedProducer(m *Messenger, opts ProducerOptions) *ManagedProducer {
	return &ManagedProducer{managed[*Producer]{
		name:   "pylabhub::hub::Producer::" + opts.Channel,
		create: func(ctx context.Context) (*Producer, error) { return NewProducer(ctx, m, opts) },
	}}
}

// ManagedConsumer is ManagedProducer's counterpart: Start connects and starts a
// Consumer, Stop stops and closes it.
type ManagedConsumer struct {
	managed[*Consumer]
}

// NewManagedConsumer returns a wrapper that will connect a Consumer on m with opts.
func NewManagedConsumer(m *Messenger, opts ConsumerOptions) *ManagedConsumer {
	return &ManagedConsumer{managed[*Consumer]{
		name:   "pylabhub::hub::Consumer::" + opts.Channel,
		create: func(ctx context.Context) (*Consumer, error) { return Connect(ctx, m, opts) },
	}}
}

// lifecycle is what the wrappers drive: both Producer and Consumer have it.
type lifecycle interface {
	Start() error
	Close() error
}

// managed is the shared body of the wrappers.
type managed[T lifecycle] struct {
	name   string
	create func(ctx context.Context) (T, error)

	mu  sync.Mutex // guards obj and ok
	obj T
	ok  bool
}

// Name is the module name of the original lifecycle system
// ("pylabhub::hub::Producer::<channel>" or "…Consumer::<channel>").
func (w *managed[T]) Name() string { return w.name }

// Start creates (or connects) and starts the object. It fails if the wrapper is
// already started, and leaves nothing behind when creation or start fails.
func (w *managed[T]) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ok {
		return fmt.Errorf("%s: already started", w.name)
	}
	obj, err := w.create(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", w.name, err)
	}
	if err := obj.Start(); err != nil {
		_ = obj.Close()
		return fmt.Errorf("%s: start: %w", w.name, err)
	}
	w.obj, w.ok = obj, true
	return nil
}

// Stop stops and closes the object. It is idempotent and safe before Start.
func (w *managed[T]) Stop() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ok {
		return nil
	}
	var zero T
	obj := w.obj
	w.obj, w.ok = zero, false
	return obj.Close()
}

// Get returns the running object, or ErrNotInitialized.
func (w *managed[T]) Get() (T, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ok {
		var zero T
		return zero, fmt.Errorf("%s: %w", w.name, ErrNotInitialized)
	}
	return w.obj, nil
}

// Initialized reports whether Start succeeded and Stop has not run since.
func (w *managed[T]) Initialized() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ok
}
