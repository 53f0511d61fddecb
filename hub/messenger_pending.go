package hub

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"sync/atomic"
)

// reply is what a waiting caller receives: the message type and JSON body of the
// broker's answer, or the error that ended the wait (broker lost, disconnect,
// close).
type reply struct {
	typ  string
	body []byte
	err  error
}

// pendingTable matches replies to waiting callers by correlation id. Callers add
// an entry before their request is sent and remove it when they stop waiting, so
// a reply that arrives after the caller gave up (stale) finds no entry and is
// dropped. The socket loop resolves entries; failAll ends every wait at once.
type pendingTable struct {
	prefix string
	seq    atomic.Uint64

	mu sync.Mutex
	m  map[string]chan reply // guarded by mu; each chan has capacity 1
}

func newPendingTable() *pendingTable {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &pendingTable{prefix: hex.EncodeToString(b[:]) + "-", m: map[string]chan reply{}}
}

// newID returns a correlation id never used before by this table.
func (p *pendingTable) newID() string {
	return p.prefix + strconv.FormatUint(p.seq.Add(1), 10)
}

// add creates a fresh correlation id and the channel its reply will arrive on.
func (p *pendingTable) add() (string, chan reply) {
	id := p.newID()
	ch := make(chan reply, 1)
	p.mu.Lock()
	p.m[id] = ch
	p.mu.Unlock()
	return id, ch
}

// remove forgets id; a later reply for it is stale.
func (p *pendingTable) remove(id string) {
	p.mu.Lock()
	delete(p.m, id)
	p.mu.Unlock()
}

// resolve hands r to the caller waiting on id and reports whether one was.
func (p *pendingTable) resolve(id string, r reply) bool {
	p.mu.Lock()
	ch, ok := p.m[id]
	if ok {
		delete(p.m, id)
	}
	p.mu.Unlock()
	if ok {
		ch <- r // capacity 1 and resolved once: never blocks
	}
	return ok
}

// failAll ends every pending wait with err.
func (p *pendingTable) failAll(err error) int {
	p.mu.Lock()
	old := p.m
	p.m = map[string]chan reply{}
	p.mu.Unlock()
	for _, ch := range old {
		ch <- reply{err: err}
	}
	return len(old)
}

// len returns the number of callers waiting.
func (p *pendingTable) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}
