package main

// The ring's physical reference: a bare single-producer single-consumer ring over
// one shared mapping (a file in /dev/shm), as small as a cross-process ring can be:
// an atomic head (written by the producer) and tail (written by the consumer) on
// their own cache lines, then the slots. No header, no checksum, no slot state, no
// heartbeat. It waits as the DataBlock does (spin, then sleep on a shared futex on
// the low word of the index it waits for, with a sleeper flag so the other side
// skips the wake-up syscall when nobody sleeps), so the two differ only by what the
// DataBlock adds.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	rawHeader  = 4096 // head at 0, headWaiters at 64, tail at 128, tailWaiters at 192
	rawMaxWait = 10 * time.Second
	rawSleep   = 5 * time.Millisecond
)

// errRawStalled: the other side made no progress for rawMaxWait (it died or hung).
var errRawStalled = errors.New("raw ring: peer made no progress")

type rawRing struct {
	mem    []byte
	head   *uint64 // next index the producer fills
	tail   *uint64 // next index the consumer reads
	headW  *uint32 // sleeper flag of the consumer (sleeps on head)
	tailW  *uint32 // sleeper flag of the producer (sleeps on tail)
	slots  uint64
	stride int
	spin   time.Duration
	next   uint64 // the producer's head or the consumer's tail (only this side writes it)
}

func rawPath(name string) string { return filepath.Join("/dev/shm", name) }

// createRaw makes the file and maps it; the creator removes the file.
func createRaw(name string, slots, stride int, spin time.Duration) (*rawRing, error) {
	f, err := os.OpenFile(rawPath(name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, int64(rawHeader+slots*stride)); err != nil {
		_ = os.Remove(f.Name())
		return nil, err
	}
	r, err := mapRaw(f, slots, stride, spin)
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return r, err
}

// openRaw maps a ring another process created.
func openRaw(name string, slots, stride int, spin time.Duration) (*rawRing, error) {
	f, err := os.OpenFile(rawPath(name), os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return mapRaw(f, slots, stride, spin)
}

func mapRaw(f *os.File, slots, stride int, spin time.Duration) (*rawRing, error) {
	size := rawHeader + slots*stride
	if st, err := f.Stat(); err != nil || st.Size() != int64(size) {
		return nil, fmt.Errorf("raw ring %s: want %d bytes (%v)", f.Name(), size, err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, err
	}
	p := unsafe.Pointer(&mem[0])
	return &rawRing{mem: mem, slots: uint64(slots), stride: stride, spin: spin,
		head: (*uint64)(p), headW: (*uint32)(unsafe.Add(p, 64)),
		tail: (*uint64)(unsafe.Add(p, 128)), tailW: (*uint32)(unsafe.Add(p, 192))}, nil
}

func (r *rawRing) close() { _ = unix.Munmap(r.mem) }

func (r *rawRing) slot(i uint64) []byte {
	off := rawHeader + int(i%r.slots)*r.stride
	return r.mem[off : off+r.stride : off+r.stride]
}

// low32 is the futex word of a 64-bit index (little endian).
func low32(p *uint64) *uint32 { return (*uint32)(unsafe.Pointer(p)) }

// await waits until ready(*word): room for the producer, data for the consumer.
func (r *rawRing) await(word *uint64, waiters *uint32, ready func(uint64) bool) (uint64, error) {
	start := time.Now()
	for n := 0; ; n++ {
		v := atomic.LoadUint64(word)
		if ready(v) {
			return v, nil
		}
		if n%64 != 0 {
			continue
		}
		waited := time.Since(start)
		if waited > rawMaxWait {
			return 0, errRawStalled
		}
		if waited < r.spin {
			continue
		}
		atomic.StoreUint32(waiters, 1)
		if w := atomic.LoadUint64(word); !ready(w) {
			ts := unix.NsecToTimespec(int64(rawSleep))
			_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(low32(word))), 0, uintptr(uint32(w)), uintptr(unsafe.Pointer(&ts)), 0, 0)
		}
	}
}

// wakeRaw wakes the other side if it set its sleeper flag, clearing it (the
// DataBlock's waker does the same: one wake-up call per sleep).
func wakeRaw(word *uint64, waiters *uint32) {
	if atomic.LoadUint32(waiters) != 0 && atomic.SwapUint32(waiters, 0) != 0 {
		_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(low32(word))), 1, 1<<31-1, 0, 0, 0)
	}
}

// acquireWrite returns the next free slot (producer).
func (r *rawRing) acquireWrite() ([]byte, error) {
	head := r.next
	if head-atomic.LoadUint64(r.tail) < r.slots { // fast path: no closure call
		return r.slot(head), nil
	}
	if _, err := r.await(r.tail, r.tailW, func(t uint64) bool { return head-t < r.slots }); err != nil {
		return nil, err
	}
	return r.slot(head), nil
}

// commit publishes the slot acquireWrite returned.
func (r *rawRing) commit() {
	r.next++
	atomic.StoreUint64(r.head, r.next)
	wakeRaw(r.head, r.headW)
}

// acquireRead returns the next filled slot (consumer).
func (r *rawRing) acquireRead() ([]byte, error) {
	tail := r.next
	if atomic.LoadUint64(r.head) > tail {
		return r.slot(tail), nil
	}
	if _, err := r.await(r.head, r.headW, func(h uint64) bool { return h > tail }); err != nil {
		return nil, err
	}
	return r.slot(tail), nil
}

// release hands the slot acquireRead returned back to the producer.
func (r *rawRing) release() {
	r.next++
	atomic.StoreUint64(r.tail, r.next)
	wakeRaw(r.tail, r.tailW)
}

// rawThroughput: as shmThroughput, over the raw ring (role raw-consume or
// raw-touch).
func rawThroughput(c sizeCase, role string) (float64, error) {
	name := benchName("raw")
	slots, stride := ringCap(c.size), benchStride(c.size)
	r, err := createRaw(name, slots, stride, 0)
	if err != nil {
		return 0, err
	}
	defer os.Remove(rawPath(name))
	defer r.close()
	r.spin = 50 * time.Microsecond // the DataBlock's default waits
	cmd, out, err := startPeer(role, name, fmt.Sprint(c.n), fmt.Sprint(c.size), fmt.Sprint(slots), fmt.Sprint(stride))
	if err != nil {
		return 0, err
	}
	defer cmd.Wait()
	if _, err := expectLine(out, "READY"); err != nil {
		return 0, err
	}
	src := make([]byte, c.size)
	start := nowNS()
	for i := range c.n {
		s, err := r.acquireWrite()
		if err != nil {
			return 0, err
		}
		src[0] = byte(i)
		copy(s, src)
		r.commit()
	}
	return peerEnd(out, c.n, start)
}

// rawConsume is the peer of rawThroughput.
func rawConsume(name string, n, size, slots, stride int, touch bool) error {
	r, err := openRaw(name, slots, stride, 50*time.Microsecond)
	if err != nil {
		return err
	}
	defer r.close()
	dst := make([]byte, size)
	fmt.Println("READY")
	for range n {
		s, err := r.acquireRead()
		if err != nil {
			return err
		}
		if touch {
			dst[0] = touchLines(s[:size])
		} else {
			copy(dst, s[:size])
		}
		r.release()
	}
	fmt.Println("END", nowNS())
	return nil
}

// rawLatency: ping through one raw ring, pong back through another; spinning waits
// as shmLatency.
func rawLatency(n int) ([3]int64, error) {
	pingName, pongName := benchName("rawping"), benchName("rawpong")
	ping, err := createRaw(pingName, 8, 4096, time.Hour)
	if err != nil {
		return [3]int64{}, err
	}
	defer os.Remove(rawPath(pingName))
	defer ping.close()
	pong, err := createRaw(pongName, 8, 4096, time.Hour)
	if err != nil {
		return [3]int64{}, err
	}
	defer os.Remove(rawPath(pongName))
	defer pong.close()
	warm := 2000
	cmd, out, err := startPeer("raw-pong", pingName, pongName, fmt.Sprint(n+warm))
	if err != nil {
		return [3]int64{}, err
	}
	defer cmd.Wait()
	if _, err := expectLine(out, "READY"); err != nil {
		return [3]int64{}, err
	}
	msg := make([]byte, 64)
	rtt := make([]int64, 0, n)
	for i := range n + warm {
		t0 := time.Now()
		s, err := ping.acquireWrite()
		if err != nil {
			return [3]int64{}, err
		}
		copy(s, msg)
		ping.commit()
		rs, err := pong.acquireRead()
		if err != nil {
			return [3]int64{}, err
		}
		copy(msg, rs[:64])
		pong.release()
		if i >= warm {
			rtt = append(rtt, int64(time.Since(t0)))
		}
	}
	return quantiles(rtt), nil
}

// rawPong is the peer of rawLatency.
func rawPong(pingName, pongName string, n int) error {
	ping, err := openRaw(pingName, 8, 4096, time.Hour)
	if err != nil {
		return err
	}
	defer ping.close()
	pong, err := openRaw(pongName, 8, 4096, time.Hour)
	if err != nil {
		return err
	}
	defer pong.close()
	fmt.Println("READY")
	for range n {
		rs, err := ping.acquireRead()
		if err != nil {
			return err
		}
		s, err := pong.acquireWrite()
		if err != nil {
			return err
		}
		copy(s[:64], rs[:64])
		ping.release()
		pong.commit()
	}
	return nil
}

// touchLines loads one byte of every cache line of b (a zero-copy consumer that
// still pulls every line to its core).
func touchLines(b []byte) byte {
	var x byte
	for i := 0; i < len(b); i += 64 {
		x ^= b[i]
	}
	return x
}
