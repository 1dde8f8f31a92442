package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"

	"gotuned.dev/agent/cgroup"
)

// The wire shapes of POST /api/v1/telemetry (docs/api.md). Samples carry gomaxprocs and no local_runq: the runtime
// gives no per-P queues.
type sample struct {
	TsMS         int64      `json:"ts_ms"`
	Gomaxprocs   int        `json:"gomaxprocs"`
	Goroutines   *uint64    `json:"goroutines,omitempty"`
	SchedLatency *latency   `json:"sched_latency_us,omitempty"`
	GCPause      *gcPause   `json:"gc_pause_us,omitempty"`
	Pool         *poolState `json:"pool,omitempty"`
}

type latency struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

type gcPause struct {
	P99 float64 `json:"p99"`
}

type poolState struct {
	StealThreshold int    `json:"steal_threshold"`
	StealScope     string `json:"steal_scope"`
	Queues         []int  `json:"queues"`
}

type facts struct {
	ID             string             `json:"id"`
	Service        string             `json:"service"`
	Hostname       string             `json:"hostname,omitempty"`
	PID            int                `json:"pid"`
	Runtime        string             `json:"runtime"`
	NumCPU         int                `json:"num_cpu,omitempty"`
	Affinity       int                `json:"affinity,omitempty"`
	CPULimit       float64            `json:"cpu_limit,omitempty"`
	CPULimitSource string             `json:"cpu_limit_source,omitempty"`
	ParentTighter  bool               `json:"parent_tighter"`
	AppliedVersion int64              `json:"applied_version"`
	Throttling     *cgroup.Throttling `json:"throttling,omitempty"`
	DroppedSamples uint64             `json:"dropped_samples"`
}

type batch struct {
	Agent   facts    `json:"agent"`
	Samples []sample `json:"samples"`
}

// maxBatch is the server's cap on samples per push.
const maxBatch = 1000

// backlog holds the samples not yet pushed, at most max; the oldest go
// first and are counted.
type backlog struct {
	mu      sync.Mutex
	max     int
	items   []sample
	dropped uint64
}

func (b *backlog) add(s sample) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.items = append(b.items, s)
	b.trim()
}

func (b *backlog) trim() {
	if over := len(b.items) - b.max; over > 0 {
		b.dropped += uint64(over)
		b.items = append(b.items[:0:0], b.items[over:]...)
	}
}

// take removes up to n of the oldest samples.
func (b *backlog) take(n int) []sample {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > len(b.items) {
		n = len(b.items)
	}
	out := b.items[:n:n]
	b.items = append([]sample(nil), b.items[n:]...)
	return out
}

// putBack returns samples that could not be pushed to the front.
func (b *backlog) putBack(s []sample) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.items = append(append([]sample(nil), s...), b.items...)
	b.trim()
}

// lose counts samples that will never be sent (the server refused them).
func (b *backlog) lose(n int) {
	b.mu.Lock()
	b.dropped += uint64(n)
	b.mu.Unlock()
}

func (b *backlog) counts() (pending int, dropped uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.items), b.dropped
}

// backoff yields exponentially growing delays from min up to max with
// "equal jitter": a delay d is drawn from [d/2, d].
type backoff struct {
	min, max time.Duration
	n        int
}

func (b *backoff) next() time.Duration {
	d := b.min
	for i := 0; i < b.n && d < b.max; i++ {
		d *= 2
	}
	if d > b.max {
		d = b.max
	}
	b.n++
	half := d / 2
	return half + time.Duration(rand.Int63n(int64(d-half)+1))
}

func (b *backoff) reset() { b.n = 0 }

func (a *Agent) sampleLoop() {
	t := time.NewTicker(a.opts.SampleInterval)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case now := <-t.C:
			a.sampleMu.Lock()
			s := a.smp.take(now)
			a.sampleMu.Unlock()
			s.Pool = a.poolState()
			a.backlog.add(s)
		}
	}
}

// poolState is the attached pool's state for a sample (at most 1024
// queues: the server's limit).
func (a *Agent) poolState() *poolState {
	a.mu.Lock()
	p := a.pool
	a.mu.Unlock()
	if p == nil {
		return nil
	}
	st := p.Settings()
	q := p.QueueLens()
	if len(q) > 1024 {
		q = q[:1024]
	}
	return &poolState{StealThreshold: st.StealThreshold, StealScope: string(st.StealScope), Queues: q}
}

// pushLoop registers the agent at once, then pushes every Interval; while
// the server is down it backs off from Interval up to MaxBackoff.
func (a *Agent) pushLoop() {
	bo := backoff{min: a.opts.Interval, max: a.opts.MaxBackoff}
	if bo.max < bo.min {
		bo.max = bo.min
	}
	down := false
	for {
		err := a.push(a.ctx)
		delay := a.opts.Interval
		switch {
		case a.ctx.Err() != nil:
		case err != nil:
			if !down {
				a.opts.Logf("push to %s failed, backing off: %v", a.opts.Server, err)
			}
			down = true
			delay = bo.next()
		default:
			if down {
				a.opts.Logf("push to %s works again", a.opts.Server)
			}
			down = false
			bo.reset()
		}
		if !a.sleep(delay) {
			break
		}
	}
	// Stopping: one last push of what is pending, if the server was up.
	a.pushMu.Lock()
	ok := a.pushOK
	a.pushMu.Unlock()
	if n, _ := a.backlog.counts(); ok && n > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = a.push(ctx)
		cancel()
	}
}

// push sends the pending samples (up to maxBatch) with the agent's facts.
// It returns an error when the server could not take them (network, 5xx,
// 429): they go back to the backlog. Samples the server refuses with
// another 4xx are counted as dropped, since sending them again would fail
// the same way.
func (a *Agent) push(ctx context.Context) error {
	a.pushMu.Lock()
	defer a.pushMu.Unlock()
	samples := a.backlog.take(maxBatch)
	b := batch{Agent: a.facts(), Samples: samples}
	if b.Samples == nil {
		b.Samples = []sample{}
	}
	_, dropped := a.backlog.counts()
	b.Agent.DroppedSamples = dropped
	body, err := json.Marshal(b)
	if err != nil {
		a.backlog.lose(len(samples))
		return fmt.Errorf("encoding telemetry: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	status, resp, err := a.do(ctx, http.MethodPost, "/api/v1/telemetry", body)
	if err == nil && (status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout) {
		err = fmt.Errorf("HTTP %d: %s", status, snippet(resp))
	}
	if err != nil {
		a.backlog.putBack(samples)
		a.pushOK = false
		return err
	}
	a.pushOK = true
	if status == http.StatusOK {
		a.lastRefusal = ""
	}
	if status != http.StatusOK {
		a.backlog.lose(len(samples))
		if why := fmt.Sprintf("HTTP %d: %s", status, snippet(resp)); why != a.lastRefusal {
			a.lastRefusal = why // logged once per distinct reason
			a.opts.Logf("the server refused a push (%d samples dropped): %s", len(samples), why)
		}
		return nil
	}
	var ans struct {
		Config *struct {
			Version *int64          `json:"version"`
			Config  json.RawMessage `json:"config"`
		} `json:"config"`
	}
	if json.Unmarshal(resp, &ans) == nil && ans.Config != nil && ans.Config.Version != nil {
		a.deliver(versionObjV{*ans.Config.Version, ans.Config.Config})
	}
	return nil
}

// facts describes the agent and its CPU; the probe runs on every push so
// that a changed quota shows.
func (a *Agent) facts() facts {
	host, _ := os.Hostname()
	if len(host) > 255 {
		host = host[:255]
	}
	rt := runtime.Version()
	if len(rt) > 63 {
		rt = rt[:63]
	}
	f := facts{ID: a.id, Service: a.opts.Service, Hostname: host, PID: os.Getpid(),
		Runtime: rt, AppliedVersion: a.Version()}
	info, err := cgroup.Probe(a.opts.CgroupRoot)
	f.NumCPU, f.Affinity = info.NumCPU, info.Affinity
	if err == nil {
		f.CPULimit, f.ParentTighter, f.Throttling = info.Limit.Limit, info.ParentTighter, info.Throttling
		f.CPULimitSource = info.Source
	}
	return f
}

// do sends one request to the server and reads the answer (at most 1 MiB).
func (a *Agent) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.opts.Server+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.opts.Token)
	}
	resp, err := a.opts.HTTPClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

func snippet(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(bytes.TrimSpace(b))
}
