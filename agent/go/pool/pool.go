// Package pool is a small work-stealing worker pool whose size, steal
// threshold and steal scope can change while it runs (gotuned's agent
// applies them from the pushed config, see gotuned.dev/agent).
//
// Each worker owns a bounded FIFO queue. A worker runs its own queue first;
// when it is empty it looks at its victims and steals half (rounded up) of
// the first victim's queue that holds at least the steal threshold, oldest
// tasks first, as the Go runtime does. Below the threshold a worker stays
// idle rather than steal: small queues are cheaper to drain in place.
// Victims are the neighbours (index i-1 and i+1, wrapping) with scope
// Neighbors, or every other worker in random order with scope All.
//
// One mutex guards all queues: critical sections are a few slice
// operations and tasks run outside it. Tasks are run exactly once, also
// across Resize; a panicking task ends the program as a panicking goroutine
// would.
package pool

import (
	"context"
	"errors"
	"math/rand"
	"runtime"
	"sync"
)

// Task is one unit of work.
type Task func()

// Scope says which workers an idle worker may steal from.
type Scope string

const (
	// Neighbors: the workers at index i-1 and i+1 (wrapping).
	Neighbors Scope = "neighbors"
	// All: every other worker, in random order.
	All Scope = "all"
)

// Defaults used when Options leave a field at zero.
const (
	DefaultQueueSize      = 256
	DefaultStealThreshold = 8
	DefaultStealScope     = Neighbors
)

var (
	// ErrFull is returned by TrySubmit when every queue is full.
	ErrFull = errors.New("pool: every queue is full")
	// ErrClosed is returned by every submit after Close.
	ErrClosed = errors.New("pool: closed")
)

// Options configure a pool; zero fields take the defaults.
type Options struct {
	Workers        int   // default runtime.GOMAXPROCS(0)
	QueueSize      int   // per-worker queue capacity, default 256
	StealThreshold int   // default 8
	StealScope     Scope // default Neighbors
}

// Settings are the live-tunable values of a pool.
type Settings struct {
	Workers        int
	StealThreshold int
	StealScope     Scope
}

// Stats are cumulative counters.
type Stats struct {
	Workers  int    // current worker count
	TasksRun uint64 // tasks that finished
	Steals   uint64 // steal operations
	Stolen   uint64 // tasks moved by steals
}

type worker struct {
	idx     int    // stable: shrinking removes only the highest indexes
	q       []Task // FIFO: q[0] is the oldest
	wake    *sync.Cond
	idle    bool
	retired bool
}

// Pool is a work-stealing worker pool. Its methods are safe for concurrent
// use.
type Pool struct {
	mu        sync.Mutex
	room      *sync.Cond // signalled when a queue shrinks and submitters wait
	waiting   int        // submitters blocked on room
	workers   []*worker
	qsize     int
	threshold int
	scope     Scope
	rr        int
	closed    bool
	rnd       *rand.Rand
	stats     Stats
	wg        sync.WaitGroup
}

// New starts a pool.
func New(o Options) *Pool {
	if o.Workers < 1 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.QueueSize < 1 {
		o.QueueSize = DefaultQueueSize
	}
	if o.StealThreshold < 1 {
		o.StealThreshold = DefaultStealThreshold
	}
	if o.StealScope != All {
		o.StealScope = Neighbors
	}
	p := &Pool{qsize: o.QueueSize, threshold: o.StealThreshold, scope: o.StealScope,
		rnd: rand.New(rand.NewSource(rand.Int63()))}
	p.room = sync.NewCond(&p.mu)
	p.mu.Lock()
	p.grow(o.Workers)
	p.mu.Unlock()
	return p
}

// grow starts workers until there are n. Called with mu held.
func (p *Pool) grow(n int) {
	for len(p.workers) < n {
		w := &worker{idx: len(p.workers), wake: sync.NewCond(&p.mu)}
		p.workers = append(p.workers, w)
		p.wg.Add(1)
		go p.run(w)
	}
}

// Submit queues t on the next worker in round-robin order, or on the next
// one with room when that queue is full. When every queue is full it
// blocks until there is room or ctx is done (then it returns ctx.Err()).
func (p *Pool) Submit(ctx context.Context, t Task) error {
	return p.submit(ctx, -1, t, true)
}

// TrySubmit is Submit without blocking: ErrFull when every queue is full.
func (p *Pool) TrySubmit(t Task) error {
	return p.submit(context.Background(), -1, t, false)
}

// SubmitTo queues t on worker i modulo the current worker count, for
// callers that shard work by key. It blocks while that queue is full, until
// there is room or ctx is done; stealing still moves its tasks to idle
// workers once the queue reaches the steal threshold.
func (p *Pool) SubmitTo(ctx context.Context, i int, t Task) error {
	if i < 0 {
		i = -i
	}
	return p.submit(ctx, i, t, true)
}

func (p *Pool) submit(ctx context.Context, shard int, t Task, block bool) error {
	if t == nil {
		return errors.New("pool: nil task")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var stop chan struct{}
	defer func() {
		if stop != nil {
			close(stop)
		}
	}()
	for {
		if p.closed {
			return ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		n := len(p.workers)
		if shard >= 0 {
			if i := shard % n; len(p.workers[i].q) < p.qsize {
				p.push(i, t)
				return nil
			}
		} else {
			for k := 0; k < n; k++ {
				i := (p.rr + k) % n
				if len(p.workers[i].q) < p.qsize {
					p.rr = (i + 1) % n
					p.push(i, t)
					return nil
				}
			}
		}
		if !block {
			return ErrFull
		}
		if stop == nil && ctx.Done() != nil {
			// sync.Cond cannot wait on a channel: wake everyone when ctx ends.
			stop = make(chan struct{})
			go func(done <-chan struct{}) {
				select {
				case <-done:
					p.mu.Lock()
					p.room.Broadcast()
					p.mu.Unlock()
				case <-stop:
				}
			}(ctx.Done())
		}
		p.waiting++
		p.room.Wait()
		p.waiting--
	}
}

// push appends t to worker i's queue and wakes who may run it. mu held.
func (p *Pool) push(i int, t Task) {
	w := p.workers[i]
	w.q = append(w.q, t)
	if w.idle {
		w.wake.Signal()
	}
	if len(w.q) >= p.threshold {
		p.wakeThieves(i)
	}
}

// wakeThieves wakes the idle workers that may steal from worker i. mu held.
func (p *Pool) wakeThieves(i int) {
	if p.scope == All {
		p.wakeIdle()
		return
	}
	for _, v := range neighbors(i, len(p.workers)) {
		if p.workers[v].idle {
			p.workers[v].wake.Signal()
		}
	}
}

// neighbors returns i-1 and i+1 wrapping, without i and without repeats.
func neighbors(i, n int) []int {
	var out []int
	for _, v := range []int{(i + n - 1) % n, (i + 1) % n} {
		if v != i && (len(out) == 0 || out[0] != v) {
			out = append(out, v)
		}
	}
	return out
}

// victims lists the workers worker i may steal from, in the order to try.
func (p *Pool) victims(i int) []int {
	n := len(p.workers)
	if p.scope == All {
		out := make([]int, 0, n-1)
		for _, v := range p.rnd.Perm(n) {
			if v != i {
				out = append(out, v)
			}
		}
		return out
	}
	return neighbors(i, n)
}

// steal moves half (rounded up) of the oldest tasks of the first victim
// holding at least the threshold into w's empty queue. mu held.
func (p *Pool) steal(w *worker) bool {
	for _, v := range p.victims(w.idx) {
		vq := p.workers[v].q
		if len(vq) < p.threshold || len(vq) == 0 {
			continue
		}
		k := len(vq) - len(vq)/2
		w.q = append(w.q, vq[:k]...)
		rest := copy(vq, vq[k:])
		for j := rest; j < len(vq); j++ {
			vq[j] = nil
		}
		p.workers[v].q = vq[:rest]
		p.stats.Steals++
		p.stats.Stolen += uint64(k)
		p.freed()
		return true
	}
	return false
}

// freed wakes blocked submitters after a queue shrank. mu held.
func (p *Pool) freed() {
	if p.waiting > 0 {
		p.room.Broadcast()
	}
}

func (p *Pool) run(w *worker) {
	defer p.wg.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if len(w.q) > 0 {
			t := w.q[0]
			w.q[0] = nil
			w.q = w.q[1:]
			if len(w.q) == 0 {
				w.q = w.q[:0:0] // let the backing array go
			}
			p.freed()
			p.mu.Unlock()
			t()
			p.mu.Lock()
			p.stats.TasksRun++
			continue
		}
		if w.retired {
			return
		}
		if p.steal(w) {
			continue
		}
		if p.closed {
			return
		}
		w.idle = true
		w.wake.Wait()
		w.idle = false
	}
}

// Resize sets the worker count (at least 1). Growing starts workers;
// shrinking retires the highest-numbered ones: their queued tasks move to
// the remaining workers (which may then hold more than the queue size for a
// while) and a task they are running finishes. No task is lost or run
// twice.
func (p *Pool) Resize(n int) {
	if n < 1 {
		n = 1
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || n == len(p.workers) {
		return
	}
	if n > len(p.workers) {
		p.grow(n)
		p.wakeIdle()
		return
	}
	gone := p.workers[n:]
	p.workers = p.workers[:n:n]
	k := 0
	for _, w := range gone {
		for _, t := range w.q {
			p.workers[k%n].q = append(p.workers[k%n].q, t)
			k++
		}
		w.q = nil
		w.retired = true
		w.wake.Signal()
	}
	p.rr %= n
	p.wakeIdle()
	p.freed()
}

// wakeIdle wakes every idle worker to look again (new work, a lower
// threshold, a wider scope). mu held.
func (p *Pool) wakeIdle() {
	for _, w := range p.workers {
		if w.idle {
			w.wake.Signal()
		}
	}
}

// SetStealThreshold sets the queue length (at least 1) from which idle
// workers steal.
func (p *Pool) SetStealThreshold(n int) {
	if n < 1 {
		n = 1
	}
	p.mu.Lock()
	p.threshold = n
	p.wakeIdle()
	p.mu.Unlock()
}

// SetStealScope sets which workers an idle worker steals from; anything
// but All means Neighbors.
func (p *Pool) SetStealScope(s Scope) {
	if s != All {
		s = Neighbors
	}
	p.mu.Lock()
	p.scope = s
	p.wakeIdle()
	p.mu.Unlock()
}

// Apply sets all three tunables at once (zero or empty fields keep the
// current value).
func (p *Pool) Apply(s Settings) {
	if s.Workers > 0 {
		p.Resize(s.Workers)
	}
	if s.StealThreshold > 0 {
		p.SetStealThreshold(s.StealThreshold)
	}
	if s.StealScope != "" {
		p.SetStealScope(s.StealScope)
	}
}

// Settings returns the current tunables.
func (p *Pool) Settings() Settings {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Settings{Workers: len(p.workers), StealThreshold: p.threshold, StealScope: p.scope}
}

// QueueLens returns each worker's queue length (tasks waiting, not the
// ones running).
func (p *Pool) QueueLens() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int, len(p.workers))
	for i, w := range p.workers {
		out[i] = len(w.q)
	}
	return out
}

// Stats returns the counters.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Workers = len(p.workers)
	return s
}

// Close stops taking tasks (submits return ErrClosed, blocked ones too),
// lets the workers run every queued task, and waits for them to exit.
func (p *Pool) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.wakeIdle()
		p.room.Broadcast()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
