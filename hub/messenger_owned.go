package hub

import (
	"sort"
	"sync"
)

// ownedSet is what a Messenger registered with the broker and must keep alive:
// the channels it produces (with the registration to repeat after a broker
// restart) and the channels it consumes (a count per channel, because the broker
// keeps one entry per CONSUMER_REG_REQ, protocol.md §5.6). Heartbeats and
// re-registration read snapshots; calls update it under mu.
type ownedSet struct {
	mu        sync.Mutex
	producers map[string]ProducerInfo // guarded by mu
	consumers map[string]int          // guarded by mu
}

func newOwnedSet() *ownedSet {
	return &ownedSet{producers: map[string]ProducerInfo{}, consumers: map[string]int{}}
}

func (o *ownedSet) addProducer(ch string, info ProducerInfo) {
	o.mu.Lock()
	o.producers[ch] = info
	o.mu.Unlock()
}

// removeProducer forgets ch and reports whether it was owned.
func (o *ownedSet) removeProducer(ch string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.producers[ch]
	delete(o.producers, ch)
	return ok
}

func (o *ownedSet) hasProducer(ch string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.producers[ch]
	return ok
}

func (o *ownedSet) addConsumer(ch string) {
	o.mu.Lock()
	o.consumers[ch]++
	o.mu.Unlock()
}

// removeConsumer drops one registration of ch.
func (o *ownedSet) removeConsumer(ch string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.consumers[ch] <= 1 {
		delete(o.consumers, ch)
		return
	}
	o.consumers[ch]--
}

// forget drops every producer and consumer registration of ch (the broker
// closed the channel).
func (o *ownedSet) forget(ch string) {
	o.mu.Lock()
	delete(o.producers, ch)
	delete(o.consumers, ch)
	o.mu.Unlock()
}

func (o *ownedSet) clear() {
	o.mu.Lock()
	o.producers = map[string]ProducerInfo{}
	o.consumers = map[string]int{}
	o.mu.Unlock()
}

// ownedChannel is one producer registration in a snapshot.
type ownedChannel struct {
	name string
	info ProducerInfo
}

// snapshot returns the producer registrations and consumer counts, sorted by
// channel name.
func (o *ownedSet) snapshot() ([]ownedChannel, map[string]int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ps := make([]ownedChannel, 0, len(o.producers))
	for n, info := range o.producers {
		ps = append(ps, ownedChannel{name: n, info: info})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
	cs := make(map[string]int, len(o.consumers))
	for n, c := range o.consumers {
		cs[n] = c
	}
	return ps, cs
}
