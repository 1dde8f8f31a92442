package agent

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"gotuned.dev/agent/pool"
)

// fakeServer stands in for gotuned: telemetry, the blocking config query
// and ACKs, with a log of what happened in order.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	version  int64
	configs  map[int64]string
	changed  chan struct{}
	fail     func() bool // true: answer the telemetry with 503
	refuse   bool        // 422 for telemetry until a batch with samples was refused
	batches  []map[string]any
	acks     []map[string]any
	log      []string // "telemetry", "config N", "ack N status"
	attempts int
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{t: t, configs: map[int64]string{0: `{}`}, changed: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) setVersion(config string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	f.configs[f.version] = config
	close(f.changed)
	f.changed = make(chan struct{})
	return f.version
}

func (f *fakeServer) versionJSON(v int64) string {
	return `{"agent":"a1","version":` + itoa(v) + `,"source":"override","created_ms":1,"config":` +
		f.configs[v] + `,"reasons":[]}`
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/telemetry":
		f.mu.Lock()
		f.attempts++
		if f.fail != nil && f.fail() {
			f.mu.Unlock()
			http.Error(w, `{"error":{"code":"unavailable"}}`, http.StatusServiceUnavailable)
			return
		}
		if f.refuse {
			f.refuse = !strings.Contains(string(body), `"ts_ms"`)
			f.mu.Unlock()
			http.Error(w, `{"error":{"code":"invalid"}}`, http.StatusUnprocessableEntity)
			return
		}
		var b map[string]any
		if err := json.Unmarshal(body, &b); err != nil {
			f.t.Errorf("telemetry body: %v", err)
		}
		f.batches = append(f.batches, b)
		f.log = append(f.log, "telemetry")
		ans := `{"agent":"a1","created":false,"accepted":1,"config_version":` + itoa(f.version)
		if ag, ok := b["agent"].(map[string]any); ok && int64(ag["applied_version"].(float64)) != f.version {
			ans += `,"config":` + f.versionJSON(f.version)
		}
		f.mu.Unlock()
		io.WriteString(w, ans+"}")
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/config"):
		index := r.URL.Query().Get("index")
		wait, err := time.ParseDuration(r.URL.Query().Get("wait"))
		if err != nil {
			f.t.Errorf("wait %q: %v", r.URL.Query().Get("wait"), err)
		}
		timer := time.NewTimer(wait)
		defer timer.Stop()
		for {
			f.mu.Lock()
			cur, ch := f.version, f.changed
			if itoa(cur) != index {
				f.log = append(f.log, "config "+itoa(cur))
				ans := f.versionJSON(cur)
				f.mu.Unlock()
				io.WriteString(w, ans)
				return
			}
			f.mu.Unlock()
			select {
			case <-ch:
			case <-timer.C:
				f.mu.Lock()
				ans := f.versionJSON(cur)
				f.mu.Unlock()
				io.WriteString(w, ans)
				return
			case <-r.Context().Done():
				return
			}
		}
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/ack"):
		var b map[string]any
		if err := json.Unmarshal(body, &b); err != nil {
			f.t.Errorf("ack body: %v", err)
		}
		f.mu.Lock()
		f.acks = append(f.acks, b)
		f.log = append(f.log, "ack "+itoa(int64(b["version"].(float64)))+" "+b["status"].(string))
		f.mu.Unlock()
		io.WriteString(w, `{"id":"a1"}`)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeServer) snapshot() (batches, acks []map[string]any, log []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.batches...), append([]map[string]any(nil), f.acks...),
		append([]string(nil), f.log...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func quietLog(string, ...any) {}

func startAgent(t *testing.T, o Options) *Agent {
	t.Helper()
	if o.Service == "" {
		o.Service = "svc"
	}
	if o.ID == "" {
		o.ID = "a1"
	}
	if o.Logf == nil {
		o.Logf = quietLog
	}
	a, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return a
}

// keepGOMAXPROCS restores the test process's GOMAXPROCS afterwards.
func keepGOMAXPROCS(t *testing.T) int {
	n := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(n) })
	return n
}

func TestPushFormat(t *testing.T) {
	f := newFakeServer(t)
	a := startAgent(t, Options{Server: f.srv.URL, Interval: 30 * time.Millisecond,
		SampleInterval: 5 * time.Millisecond})
	p := pool.New(pool.Options{Workers: 3, StealThreshold: 5})
	defer p.Close()
	a.AttachPool(p)
	var b map[string]any
	waitFor(t, "a batch with pool samples", func() bool {
		bs, _, _ := f.snapshot()
		for _, x := range bs {
			if s, _ := x["samples"].([]any); len(s) >= 2 && s[len(s)-1].(map[string]any)["pool"] != nil {
				b = x
				return true
			}
		}
		return false
	})
	ag := b["agent"].(map[string]any)
	for _, k := range []string{"id", "service", "pid", "runtime", "num_cpu", "affinity",
		"parent_tighter", "applied_version", "dropped_samples"} {
		if _, ok := ag[k]; !ok {
			t.Errorf("agent.%s missing: %v", k, ag)
		}
	}
	allowedAgent := "id service hostname pid runtime num_cpu affinity cpu_limit cpu_limit_source " +
		"parent_tighter applied_version throttling dropped_samples"
	for k := range ag {
		if !strings.Contains(" "+allowedAgent+" ", " "+k+" ") {
			t.Errorf("unknown agent key %s (the server rejects unknown keys)", k)
		}
	}
	if ag["id"] != "a1" || ag["service"] != "svc" || int(ag["pid"].(float64)) != os.Getpid() {
		t.Errorf("agent %v", ag)
	}
	samples := b["samples"].([]any)
	s := samples[len(samples)-1].(map[string]any)
	allowed := "ts_ms gomaxprocs goroutines sched_latency_us gc_pause_us pool"
	for k := range s {
		if !strings.Contains(" "+allowed+" ", " "+k+" ") {
			t.Errorf("unexpected sample key %s", k)
		}
	}
	if _, ok := s["local_runq"]; ok {
		t.Error("a library sample must not carry local_runq")
	}
	if int(s["gomaxprocs"].(float64)) != runtime.GOMAXPROCS(0) || s["goroutines"].(float64) < 1 {
		t.Errorf("sample %v", s)
	}
	lat := s["sched_latency_us"].(map[string]any)
	if lat["p50"].(float64) < 0 || lat["p99"].(float64) < lat["p50"].(float64) {
		t.Errorf("latency %v", lat)
	}
	if gc := s["gc_pause_us"].(map[string]any); gc["p99"].(float64) < 0 {
		t.Errorf("gc %v", gc)
	}
	ps := s["pool"].(map[string]any)
	if q := ps["queues"].([]any); len(q) != 3 || ps["steal_threshold"].(float64) != 5 ||
		ps["steal_scope"] != "neighbors" {
		t.Errorf("pool %v", ps)
	}
	first := samples[0].(map[string]any)["ts_ms"].(float64)
	if first > s["ts_ms"].(float64) || math.Abs(first-float64(time.Now().UnixMilli())) > 60000 {
		t.Errorf("ts_ms %v .. %v", first, s["ts_ms"])
	}
}

func TestLongPollApplyAckNack(t *testing.T) {
	start := keepGOMAXPROCS(t)
	f := newFakeServer(t)
	var mu sync.Mutex
	var seen []Config
	a := startAgent(t, Options{Server: f.srv.URL, Interval: time.Hour, SampleInterval: 5 * time.Millisecond,
		Wait: 2 * time.Second, Defaults: Config{ChunkSize: 32},
		OnConfig: func(c Config) { mu.Lock(); seen = append(seen, c); mu.Unlock() }})
	p := pool.New(pool.Options{Workers: 2, StealThreshold: 8})
	defer p.Close()
	a.AttachPool(p)
	if a.Workers() != start || a.StealThreshold() != 8 || a.StealScope() != pool.Neighbors ||
		a.ChunkSize() != 32 || a.GoschedEvery() != 0 || a.TaskTimeout() != 0 {
		t.Fatalf("defaults: %d %d %s %d %d %v", a.Workers(), a.StealThreshold(), a.StealScope(),
			a.ChunkSize(), a.GoschedEvery(), a.TaskTimeout())
	}
	waitFor(t, "the first push", func() bool { b, _, _ := f.snapshot(); return len(b) > 0 })
	time.Sleep(20 * time.Millisecond) // some samples pending

	v1 := f.setVersion(`{"gomaxprocs":1,"pool":{"workers":3,"steal_threshold":3,"steal_scope":"all"},` +
		`"gosched_every":100,"chunk_size":10,"task_timeout_ms":1500}`)
	waitFor(t, "ACK of version 1", func() bool { _, acks, _ := f.snapshot(); return len(acks) == 1 })
	_, acks, log := f.snapshot()
	if acks[0]["version"].(float64) != float64(v1) || acks[0]["status"] != "applied" || acks[0]["error"] != nil {
		t.Fatalf("ack %v", acks[0])
	}
	// The samples taken under the old config reach the server first.
	i := indexOf(log, "config 1")
	if i < 0 || indexOf(log[i:], "telemetry") < 0 || indexOf(log[i:], "telemetry") > indexOf(log[i:], "ack 1 applied") {
		t.Fatalf("want config, telemetry, ack in that order: %v", log)
	}
	if runtime.GOMAXPROCS(0) != 1 || a.Version() != 1 {
		t.Fatalf("gomaxprocs %d version %d", runtime.GOMAXPROCS(0), a.Version())
	}
	if s := p.Settings(); s != (pool.Settings{Workers: 3, StealThreshold: 3, StealScope: pool.All}) {
		t.Fatalf("pool %+v", s)
	}
	if a.Workers() != 3 || a.StealThreshold() != 3 || a.StealScope() != pool.All || a.GoschedEvery() != 100 ||
		a.ChunkSize() != 10 || a.TaskTimeout() != 1500*time.Millisecond {
		t.Fatal("knobs do not follow version 1")
	}

	f.setVersion(`{"gomaxprocs":5000}`)
	waitFor(t, "NACK of version 2", func() bool { _, acks, _ := f.snapshot(); return len(acks) == 2 })
	_, acks, _ = f.snapshot()
	if acks[1]["status"] != "rejected" || !strings.Contains(acks[1]["error"].(string), "gomaxprocs=5000 is out of range 1..1024") {
		t.Fatalf("nack %v", acks[1])
	}
	if runtime.GOMAXPROCS(0) != 1 || a.Version() != 1 {
		t.Fatal("a rejected version changed something")
	}

	f.setVersion(`{}`) // back to the application's defaults
	waitFor(t, "ACK of version 3", func() bool { _, acks, _ := f.snapshot(); return len(acks) == 3 })
	if runtime.GOMAXPROCS(0) != start || a.Version() != 3 {
		t.Fatalf("gomaxprocs %d (want the start value %d), version %d", runtime.GOMAXPROCS(0), start, a.Version())
	}
	if s := p.Settings(); s != (pool.Settings{Workers: 2, StealThreshold: 8, StealScope: pool.Neighbors}) {
		t.Fatalf("pool not back to its own settings: %+v", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0].Version != 1 || seen[0].GOMAXPROCS != 1 || seen[1].Version != 3 {
		t.Fatalf("OnConfig calls %+v", seen)
	}
	// No version was delivered twice.
	_, acks, _ = f.snapshot()
	if len(acks) != 3 {
		t.Fatalf("acks %v", acks)
	}
}

func indexOf(xs []string, s string) int {
	for i, x := range xs {
		if x == s {
			return i
		}
	}
	return -1
}

func TestBacklogDropsOldestWhileDown(t *testing.T) {
	f := newFakeServer(t)
	var a *Agent
	var amu sync.Mutex
	f.fail = func() bool { // down until the agent has dropped samples
		amu.Lock()
		defer amu.Unlock()
		if a == nil {
			return true
		}
		_, d := a.backlog.counts()
		return d == 0
	}
	ag := startAgent(t, Options{Server: f.srv.URL, Interval: 10 * time.Millisecond,
		SampleInterval: 2 * time.Millisecond, Backlog: 5, MaxBackoff: 40 * time.Millisecond})
	amu.Lock()
	a = ag
	amu.Unlock()
	waitFor(t, "a push after the outage", func() bool { b, _, _ := f.snapshot(); return len(b) > 0 })
	bs, _, _ := f.snapshot()
	first := bs[0]
	if d := first["agent"].(map[string]any)["dropped_samples"].(float64); d < 1 {
		t.Fatalf("dropped_samples %v", d)
	}
	s := first["samples"].([]any)
	if len(s) == 0 || len(s) > 5 {
		t.Fatalf("%d samples, want 1..5 (the backlog)", len(s))
	}
	for i := 1; i < len(s); i++ {
		if s[i].(map[string]any)["ts_ms"].(float64) < s[i-1].(map[string]any)["ts_ms"].(float64) {
			t.Fatal("samples out of order")
		}
	}
}

// Samples the server refuses (a 4xx) are not sent again: they count as
// dropped.
func TestRefusedBatchCountsAsDropped(t *testing.T) {
	f := newFakeServer(t)
	f.refuse = true
	a := startAgent(t, Options{Server: f.srv.URL, Interval: 20 * time.Millisecond,
		SampleInterval: 2 * time.Millisecond})
	waitFor(t, "an accepted push", func() bool { b, _, _ := f.snapshot(); return len(b) > 0 })
	b, _, _ := f.snapshot()
	if d := b[0]["agent"].(map[string]any)["dropped_samples"].(float64); d < 1 {
		t.Fatalf("dropped_samples %v after a refused batch", d)
	}
	if _, d := a.backlog.counts(); d < 1 {
		t.Fatalf("dropped %d", d)
	}
}

func TestBackoffBounded(t *testing.T) {
	b := backoff{min: 10 * time.Millisecond, max: 80 * time.Millisecond}
	var last time.Duration
	for i := 0; i < 50; i++ {
		d := b.next()
		if d < 5*time.Millisecond || d > 80*time.Millisecond {
			t.Fatalf("delay %d = %v outside [min/2, max]", i, d)
		}
		last = d
	}
	if last < 40*time.Millisecond {
		t.Fatalf("after many failures the delay should be near max: %v", last)
	}
	b.reset()
	if d := b.next(); d > 10*time.Millisecond {
		t.Fatalf("after reset %v", d)
	}
}

func TestStopEndsLongPoll(t *testing.T) {
	f := newFakeServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := Start(ctx, Options{Server: f.srv.URL, Service: "svc", ID: "a1", Wait: time.Minute, Logf: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the long poll", func() bool { _, _, l := f.snapshot(); return len(l) > 0 })
	cancel()
	done := make(chan struct{})
	go func() { a.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return after ctx was cancelled")
	}
	a.Stop() // twice is fine
}

func TestStartValidates(t *testing.T) {
	for _, o := range []Options{
		{Server: "http://x"}, // no service
		{Service: "s"},       // neither server nor file
		{Service: "s", Server: "http://x", ConfigFile: "/tmp/x"}, // both
		{Service: "s", Server: "http://x", ID: "bad id"},
	} {
		if a, err := Start(context.Background(), o); err == nil {
			a.Stop()
			t.Errorf("Start(%+v) accepted", o)
		}
	}
	if id := defaultID("svc"); !idRE.MatchString(id) || !strings.HasSuffix(id, "-svc") {
		t.Errorf("default id %q", id)
	}
}

func TestConfigFileMode(t *testing.T) {
	start := keepGOMAXPROCS(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "gotuned.json")
	var mu sync.Mutex
	var seen []int64
	a := startAgent(t, Options{ConfigFile: path, PollInterval: 5 * time.Millisecond,
		OnConfig: func(c Config) { mu.Lock(); seen = append(seen, c.Version); mu.Unlock() }})
	readAck := func(v int) map[string]any {
		var ack map[string]any
		waitFor(t, "the ack of version "+itoa(int64(v)), func() bool {
			b, err := os.ReadFile(path + ".ack")
			ack = nil
			return err == nil && json.Unmarshal(b, &ack) == nil && ack["version"].(float64) == float64(v)
		})
		return ack
	}
	put := func(s string) {
		if err := writeAtomic(path, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	put(`{"agent":"a1","version":2,"source":"operator","created_ms":1,"config":{"gomaxprocs":1,"chunk_size":7},"reasons":[],"extra":1}`)
	if ack := readAck(2); ack["status"] != "applied" || ack["error"] != nil {
		t.Fatalf("ack %v", ack)
	}
	if runtime.GOMAXPROCS(0) != 1 || a.Version() != 2 || a.ChunkSize() != 7 {
		t.Fatalf("gomaxprocs %d version %d", runtime.GOMAXPROCS(0), a.Version())
	}
	put(`{"version":3,"config":{"pool":{"steal_scope":"sideways"}}}`)
	if ack := readAck(3); ack["status"] != "rejected" || !strings.Contains(ack["error"].(string), "steal_scope") {
		t.Fatalf("ack %v", ack)
	}
	if a.Version() != 2 {
		t.Fatal("a rejected version was applied")
	}
	put(`{"version":4,"config":{}}`)
	if ack := readAck(4); ack["status"] != "applied" {
		t.Fatalf("ack %v", ack)
	}
	if runtime.GOMAXPROCS(0) != start {
		t.Fatalf("gomaxprocs %d, want the start value %d", runtime.GOMAXPROCS(0), start)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != 2 || seen[1] != 4 {
		t.Fatalf("OnConfig %v", seen)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp.*")); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

func TestDecodeConfig(t *testing.T) {
	c, err := decodeConfig(4, []byte(`{"gomaxprocs":4,"pool":{"workers":4,"steal_threshold":8,"steal_scope":"neighbors"},`+
		`"gosched_every":1000,"chunk_size":64,"task_timeout_ms":5000,"future_knob":1}`))
	want := Config{Version: 4, GOMAXPROCS: 4, Pool: PoolConfig{4, 8, pool.Neighbors}, GoschedEvery: 1000,
		ChunkSize: 64, TaskTimeoutMS: 5000}
	if err != nil || c != want {
		t.Fatalf("got %+v %v", c, err)
	}
	if c, err := decodeConfig(0, []byte(`{"gomaxprocs":null}`)); err != nil || c != (Config{}) {
		t.Fatalf("null is absent: %+v %v", c, err)
	}
	for in, msg := range map[string]string{
		`{"gomaxprocs":0}`:                 "gomaxprocs=0 is out of range 1..1024",
		`{"gomaxprocs":1025}`:              "gomaxprocs=1025",
		`{"gomaxprocs":2.5}`:               "config:",
		`{"pool":{"workers":70000}}`:       "pool.workers=70000",
		`{"pool":{"steal_threshold":257}}`: "pool.steal_threshold=257",
		`{"pool":{"steal_scope":"x"}}`:     "pool.steal_scope",
		`{"gosched_every":0}`:              "gosched_every",
		`{"chunk_size":1000000001}`:        "chunk_size",
		`{"task_timeout_ms":86400001}`:     "task_timeout_ms",
		`[1]`:                              "config:",
	} {
		if _, err := decodeConfig(1, []byte(in)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("decodeConfig(%s) = %v, want %q", in, err, msg)
		}
	}
}

func TestChunks(t *testing.T) {
	got := Chunks(10, 4)
	if len(got) != 3 || got[0] != [2]int{0, 4} || got[2] != [2]int{8, 10} {
		t.Fatalf("Chunks(10, 4) = %v", got)
	}
	if got := Chunks(3, 0); len(got) != 1 || got[0] != [2]int{0, 3} {
		t.Fatalf("Chunks(3, 0) = %v", got)
	}
	if Chunks(0, 5) != nil {
		t.Fatal("Chunks(0, 5)")
	}
}
