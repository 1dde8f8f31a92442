package agent

import (
	"math"
	"runtime"
	"sync"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestPercentile(t *testing.T) {
	inf := math.Inf(1)
	buckets := []float64{math.Inf(-1), 0, 10, 20, 40, inf}
	cases := []struct {
		counts  []uint64
		q, want float64
		ok      bool
	}{
		{[]uint64{0, 0, 0, 0, 0}, 0.5, 0, false},
		// 10 observations in [10,20): the median is halfway through.
		{[]uint64{0, 0, 10, 0, 0}, 0.5, 15, true},
		{[]uint64{0, 0, 10, 0, 0}, 0.99, 19.9, true},
		// 50 in [0,10), 50 in [20,40): p50 is the top of the first bucket,
		// p99 is 98% of the way through the second.
		{[]uint64{0, 50, 0, 50, 0}, 0.5, 10, true},
		{[]uint64{0, 50, 0, 50, 0}, 0.99, 20 + 0.98*20, true},
		// The open-ended buckets give their finite edge, never below 0.
		{[]uint64{0, 0, 0, 0, 3}, 0.99, 40, true},
		{[]uint64{4, 0, 0, 0, 0}, 0.5, 0, true},
	}
	for i, c := range cases {
		got, ok := Percentile(c.counts, buckets, c.q)
		if ok != c.ok || !near(got, c.want) {
			t.Errorf("case %d: Percentile = %v, %v; want %v, %v", i, got, ok, c.want, c.ok)
		}
	}
	if _, ok := Percentile([]uint64{1}, []float64{0}, 0.5); ok {
		t.Error("mismatched shapes must fail")
	}
}

func TestDeltaCounts(t *testing.T) {
	got := deltaCounts([]uint64{1, 5, 7}, []uint64{3, 5, 9})
	if got[0] != 2 || got[1] != 0 || got[2] != 2 {
		t.Fatalf("delta %v", got)
	}
	// No previous read (or another shape): everything is new.
	if got := deltaCounts(nil, []uint64{4, 1}); got[0] != 4 || got[1] != 1 {
		t.Fatalf("delta %v", got)
	}
}

// A sample reads every metric; the GC forced in the interval shows.
func TestSamplerIntervals(t *testing.T) {
	sm := newSampler()
	if sm.lat < 0 || sm.gor < 0 || sm.gc < 0 {
		t.Fatalf("metrics missing from metrics.All(): %+v", sm)
	}
	var wg sync.WaitGroup
	for i := 0; i < 2000; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); runtime.Gosched() }()
	}
	wg.Wait()
	runtime.GC()
	s := sm.take(time.Now())
	if s.SchedLatency == nil || s.SchedLatency.P50 < 0 || s.SchedLatency.P99 < s.SchedLatency.P50 {
		t.Fatalf("latency %+v", s.SchedLatency)
	}
	if s.GCPause == nil || s.GCPause.P99 <= 0 {
		t.Fatalf("a GC ran in the interval: gc pause %+v", s.GCPause)
	}
	if s.Goroutines == nil || *s.Goroutines < 1 || s.Gomaxprocs != runtime.GOMAXPROCS(0) {
		t.Fatalf("sample %+v", s)
	}
}
