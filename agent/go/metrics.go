package agent

import (
	"math"
	"runtime"
	"runtime/metrics"
	"time"
)

// Metric names, picked from metrics.All() at start: a name is used only
// when this Go version has it with the expected kind.
const (
	mLatency    = "/sched/latencies:seconds"
	mGoroutines = "/sched/goroutines:goroutines"
	mGomaxprocs = "/sched/gomaxprocs:threads"
	mGCPauses   = "/sched/pauses/total/gc:seconds" // Go 1.22+
	mGCPausesV1 = "/gc/pauses:seconds"             // older, deprecated in 1.22
)

// Percentile returns the q-quantile (0 < q <= 1) of a histogram given as
// bucket counts and boundaries (len(buckets) == len(counts)+1, bucket i
// spans [buckets[i], buckets[i+1]) as in runtime/metrics). It finds the
// bucket that holds the q*N-th observation and interpolates linearly inside
// it, assuming observations spread evenly across a bucket; an open-ended
// bucket gives its finite edge, and the result is never below 0 (the
// histograms hold durations). ok is false when the histogram is empty.
func Percentile(counts []uint64, buckets []float64, q float64) (v float64, ok bool) {
	if len(buckets) != len(counts)+1 {
		return 0, false
	}
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0, false
	}
	rank := q * float64(total)
	var cum float64
	for i, c := range counts {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank || i == len(counts)-1 {
			lo, hi := buckets[i], buckets[i+1]
			if math.IsInf(lo, -1) || lo < 0 {
				lo = 0
			}
			if math.IsInf(hi, 1) {
				return lo, true
			}
			if hi < lo {
				hi = lo
			}
			frac := (rank - cum) / float64(c)
			frac = math.Max(0, math.Min(1, frac))
			return lo + frac*(hi-lo), true
		}
		cum += float64(c)
	}
	return 0, false // not reached: the last non-empty bucket returns
}

// deltaCounts returns cur - prev bucket by bucket: the observations made
// between two reads of a cumulative histogram. A prev of another shape (or
// nil) counts as zero.
func deltaCounts(prev, cur []uint64) []uint64 {
	d := make([]uint64, len(cur))
	for i, c := range cur {
		if len(prev) == len(cur) && prev[i] <= c {
			d[i] = c - prev[i]
		} else {
			d[i] = c
		}
	}
	return d
}

// sampler reads runtime/metrics and keeps the previous histogram counts so
// that each sample's percentiles cover only the interval since the last
// read (not the whole life of the process).
type sampler struct {
	s                   []metrics.Sample
	lat, gor, procs, gc int // indexes into s, -1 when missing
	prevLat, prevGC     []uint64
}

func newSampler() *sampler {
	kinds := map[string]metrics.ValueKind{}
	for _, d := range metrics.All() {
		kinds[d.Name] = d.Kind
	}
	sm := &sampler{lat: -1, gor: -1, procs: -1, gc: -1}
	add := func(name string, kind metrics.ValueKind) int {
		if k, ok := kinds[name]; !ok || k != kind {
			return -1
		}
		sm.s = append(sm.s, metrics.Sample{Name: name})
		return len(sm.s) - 1
	}
	sm.lat = add(mLatency, metrics.KindFloat64Histogram)
	sm.gor = add(mGoroutines, metrics.KindUint64)
	sm.procs = add(mGomaxprocs, metrics.KindUint64)
	if sm.gc = add(mGCPauses, metrics.KindFloat64Histogram); sm.gc < 0 {
		sm.gc = add(mGCPausesV1, metrics.KindFloat64Histogram)
	}
	sm.rebase()
	return sm
}

func (sm *sampler) hist(i int) *metrics.Float64Histogram {
	if i < 0 || sm.s[i].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return sm.s[i].Value.Float64Histogram()
}

func copyCounts(h *metrics.Float64Histogram) []uint64 {
	if h == nil {
		return nil
	}
	return append([]uint64(nil), h.Counts...)
}

// rebase reads the histograms and makes them the start of the next
// interval (at start, and right after a config is applied so that the
// next sample holds only what ran under the new config).
func (sm *sampler) rebase() {
	metrics.Read(sm.s)
	sm.prevLat = copyCounts(sm.hist(sm.lat))
	sm.prevGC = copyCounts(sm.hist(sm.gc))
}

// take reads the metrics and returns one sample covering the interval
// since the previous take or rebase.
func (sm *sampler) take(now time.Time) sample {
	metrics.Read(sm.s)
	out := sample{TsMS: now.UnixMilli(), Gomaxprocs: runtime.GOMAXPROCS(0)}
	if sm.procs >= 0 && sm.s[sm.procs].Value.Kind() == metrics.KindUint64 {
		out.Gomaxprocs = int(sm.s[sm.procs].Value.Uint64())
	}
	if sm.gor >= 0 && sm.s[sm.gor].Value.Kind() == metrics.KindUint64 {
		g := sm.s[sm.gor].Value.Uint64()
		out.Goroutines = &g
	}
	if h := sm.hist(sm.lat); h != nil {
		d := deltaCounts(sm.prevLat, h.Counts)
		sm.prevLat = copyCounts(h)
		p50, _ := Percentile(d, h.Buckets, 0.50)
		p99, _ := Percentile(d, h.Buckets, 0.99)
		out.SchedLatency = &latency{P50: round3(p50 * 1e6), P99: round3(p99 * 1e6)}
	}
	if h := sm.hist(sm.gc); h != nil {
		d := deltaCounts(sm.prevGC, h.Counts)
		sm.prevGC = copyCounts(h)
		p99, _ := Percentile(d, h.Buckets, 0.99)
		out.GCPause = &gcPause{P99: round3(p99 * 1e6)}
	}
	return out
}

// round3 keeps three decimals (nanosecond resolution in microseconds).
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
