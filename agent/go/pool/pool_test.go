package pool

import (
	"context"
	"errors"
	"math/rand"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond until it holds or 10 s pass (a generous bound that a
// passing run never reaches).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// quiet is how long a test gives the pool to do something it must not do.
const quiet = 50 * time.Millisecond

// gate occupies worker i with a task that runs until release is closed.
func gate(t *testing.T, p *Pool, i int, release chan struct{}) {
	t.Helper()
	started := make(chan struct{})
	if err := p.SubmitTo(context.Background(), i, func() { close(started); <-release }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatalf("worker %d did not start its gate", i)
	}
}

func submitN(t *testing.T, p *Pool, i, n int, f func()) {
	t.Helper()
	for k := 0; k < n; k++ {
		if err := p.SubmitTo(context.Background(), i, f); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNeighbors(t *testing.T) {
	for _, c := range []struct {
		i, n int
		want []int
	}{{0, 1, nil}, {0, 2, []int{1}}, {1, 2, []int{0}}, {0, 3, []int{2, 1}}, {0, 5, []int{4, 1}}, {4, 5, []int{3, 0}}} {
		if got := neighbors(c.i, c.n); !reflect.DeepEqual(got, c.want) {
			t.Errorf("neighbors(%d, %d) = %v, want %v", c.i, c.n, got, c.want)
		}
	}
}

// Stealing starts only when the victim holds the threshold, and takes half.
func TestStealAtThresholdTakesHalf(t *testing.T) {
	p := New(Options{Workers: 2, StealThreshold: 4, StealScope: Neighbors})
	release := make(chan struct{})
	gate(t, p, 0, release)
	var ran int64
	task := func() { atomic.AddInt64(&ran, 1) }

	submitN(t, p, 0, 3, task) // below the threshold: worker 1 stays idle
	time.Sleep(quiet)
	if s := p.Stats(); s.Steals != 0 {
		t.Fatalf("stole below the threshold: %+v", s)
	}
	p.SetStealThreshold(100) // queue 6 more without a steal in between
	submitN(t, p, 0, 6, task)
	p.SetStealThreshold(4)                                                 // 9 queued: worker 1 takes 5, runs them, then 2 of 4
	waitFor(t, "two steals", func() bool { return p.Stats().Steals >= 2 }) // 9 -> 4 -> 2
	waitFor(t, "stolen tasks run", func() bool { return atomic.LoadInt64(&ran) == 7 })
	s := p.Stats()
	if s.Steals != 2 || s.Stolen != 7 || p.QueueLens()[0] != 2 {
		t.Fatalf("stats %+v, queues %v; want 2 steals of 5 then 2, 2 left", s, p.QueueLens())
	}
	time.Sleep(quiet)
	if s := p.Stats(); s.Steals != 2 {
		t.Fatalf("stole below the threshold: %+v", s)
	}
	close(release)
	p.Close()
	if atomic.LoadInt64(&ran) != 9 {
		t.Fatalf("ran %d of 9", ran)
	}
}

// With Neighbors an idle worker leaves a far worker's queue alone; with All
// it steals from it.
func TestNeighborsVersusAll(t *testing.T) {
	p := New(Options{Workers: 4, StealThreshold: 2, StealScope: Neighbors})
	release := make(chan struct{})
	for _, i := range []int{1, 2, 3} { // worker 0 stays idle; 2 is not its neighbour
		gate(t, p, i, release)
	}
	var ran int64
	submitN(t, p, 2, 10, func() { atomic.AddInt64(&ran, 1) })
	time.Sleep(quiet)
	if s := p.Stats(); s.Steals != 0 || atomic.LoadInt64(&ran) != 0 {
		t.Fatalf("worker 0 stole from a non-neighbour: %+v", s)
	}
	p.SetStealScope(All)
	waitFor(t, "a steal from worker 2", func() bool { return p.Stats().Steals > 0 })
	if s := p.Stats(); s.Stolen < 5 {
		t.Fatalf("first steal should take 5 of 10: %+v", s)
	}
	close(release)
	p.Close()
	if ran != 10 {
		t.Fatalf("ran %d of 10", ran)
	}
}

// A neighbour does steal with Neighbors.
func TestNeighborSteals(t *testing.T) {
	p := New(Options{Workers: 4, StealThreshold: 2})
	release := make(chan struct{})
	for _, i := range []int{0, 2} { // 1 and 3 are 2's neighbours and idle
		gate(t, p, i, release)
	}
	submitN(t, p, 2, 4, func() {})
	waitFor(t, "a neighbour steal", func() bool { return p.Stats().Steals > 0 })
	close(release)
	p.Close()
}

// Lowering the threshold live wakes idle workers.
func TestThresholdLive(t *testing.T) {
	p := New(Options{Workers: 2, StealThreshold: 100})
	release := make(chan struct{})
	gate(t, p, 0, release)
	submitN(t, p, 0, 10, func() {})
	time.Sleep(quiet)
	if p.Stats().Steals != 0 {
		t.Fatal("stole below the threshold")
	}
	p.SetStealThreshold(10)
	waitFor(t, "a steal after lowering the threshold", func() bool { return p.Stats().Steals > 0 })
	close(release)
	p.Close()
}

// Every task runs exactly once while the pool is resized under load.
func TestResizeKeepsEveryTaskOnce(t *testing.T) {
	const n = 20000
	p := New(Options{Workers: 3, QueueSize: 16, StealThreshold: 2, StealScope: All})
	counts := make([]int32, n)
	var wg sync.WaitGroup
	for s := 0; s < 4; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			for i := s; i < n; i += 4 {
				i := i
				var err error
				task := func() { atomic.AddInt32(&counts[i], 1) }
				if i%3 == 0 {
					err = p.SubmitTo(context.Background(), i, task)
				} else {
					err = p.Submit(context.Background(), task)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}(s)
	}
	stop := make(chan struct{})
	resized := make(chan int)
	go func() {
		r := rand.New(rand.NewSource(1))
		k := 0
		for {
			select {
			case <-stop:
				resized <- k
				return
			default:
			}
			p.Resize(1 + r.Intn(8))
			if k%2 == 0 {
				p.SetStealScope(Neighbors)
			} else {
				p.SetStealScope(All)
			}
			k++
			time.Sleep(100 * time.Microsecond)
		}
	}()
	wg.Wait()
	close(stop)
	if k := <-resized; k < 2 {
		t.Logf("only %d resizes happened", k)
	}
	p.Close()
	for i, c := range counts {
		if c != 1 {
			t.Fatalf("task %d ran %d times", i, c)
		}
	}
	if s := p.Stats(); s.TasksRun != n {
		t.Fatalf("TasksRun %d, want %d", s.TasksRun, n)
	}
}

func TestShrinkMovesQueuedTasks(t *testing.T) {
	p := New(Options{Workers: 3, StealThreshold: 256})
	release := make(chan struct{})
	for i := 0; i < 3; i++ {
		gate(t, p, i, release)
	}
	var ran int64
	submitN(t, p, 2, 5, func() { atomic.AddInt64(&ran, 1) })
	p.Resize(2)
	if q := p.QueueLens(); len(q) != 2 || q[0]+q[1] != 5 {
		t.Fatalf("queues after shrink %v", q)
	}
	close(release)
	p.Close()
	if ran != 5 {
		t.Fatalf("ran %d of 5", ran)
	}
	if s := p.Stats(); s.TasksRun != 8 || s.Workers != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestFullQueues(t *testing.T) {
	p := New(Options{Workers: 1, QueueSize: 2, StealThreshold: 256})
	release := make(chan struct{})
	gate(t, p, 0, release)
	submitN(t, p, 0, 2, func() {})
	if err := p.TrySubmit(func() {}); !errors.Is(err, ErrFull) {
		t.Fatalf("TrySubmit on a full pool: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Submit(ctx, func() {}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit on a full pool: %v", err)
	}
	// A blocked submit goes through once a task leaves the queue.
	done := make(chan error, 1)
	go func() { done <- p.Submit(context.Background(), func() {}) }()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	p.Close()
	if err := p.Submit(context.Background(), func() {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit after Close: %v", err)
	}
	if s := p.Stats(); s.TasksRun != 4 {
		t.Fatalf("stats %+v", s)
	}
}

func TestSettingsAndApply(t *testing.T) {
	p := New(Options{Workers: 2})
	defer p.Close()
	if s := p.Settings(); s != (Settings{2, DefaultStealThreshold, Neighbors}) {
		t.Fatalf("defaults %+v", s)
	}
	p.Apply(Settings{Workers: 5, StealThreshold: 3, StealScope: All})
	if s := p.Settings(); s != (Settings{5, 3, All}) {
		t.Fatalf("after Apply %+v", s)
	}
	if len(p.QueueLens()) != 5 {
		t.Fatal("QueueLens length")
	}
}
