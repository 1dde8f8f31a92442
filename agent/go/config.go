package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	"gotuned.dev/agent/pool"
)

// Config is one config version as the agent applied it. A zero field was
// absent from the version: the application's default holds (see the knob
// methods of Agent).
type Config struct {
	Version       int64 // 0: no version yet, everything at its default
	GOMAXPROCS    int
	Pool          PoolConfig
	GoschedEvery  int64
	ChunkSize     int64
	TaskTimeoutMS int64
}

// PoolConfig is the pool part of a Config.
type PoolConfig struct {
	Workers        int
	StealThreshold int
	StealScope     pool.Scope // "" when absent
}

// versionObj is the server's config version object; only version and
// config are read (unknown keys are ignored).
type versionObj struct {
	Version *int64          `json:"version"`
	Config  json.RawMessage `json:"config"`
}

// wireConfig is the config object with every field optional; null counts
// as absent.
type wireConfig struct {
	GOMAXPROCS *int64 `json:"gomaxprocs"`
	Pool       *struct {
		Workers        *int64  `json:"workers"`
		StealThreshold *int64  `json:"steal_threshold"`
		StealScope     *string `json:"steal_scope"`
	} `json:"pool"`
	GoschedEvery  *int64 `json:"gosched_every"`
	ChunkSize     *int64 `json:"chunk_size"`
	TaskTimeoutMS *int64 `json:"task_timeout_ms"`
}

// maxGOMAXPROCS is the server's range and the runtime's cap.
const maxGOMAXPROCS = 1024

// decodeConfig parses and range-checks a config object (the ranges of
// docs/api.md). Unknown keys are ignored so that an older library keeps
// working with a newer server; an error is the text of the NACK.
func decodeConfig(version int64, raw json.RawMessage) (Config, error) {
	c := Config{Version: version}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return c, nil
	}
	var w wireConfig
	if err := json.Unmarshal(raw, &w); err != nil {
		return c, fmt.Errorf("config: %v", err)
	}
	check := func(name string, v *int64, lo, hi int64) (int64, error) {
		if v == nil {
			return 0, nil
		}
		if *v < lo || *v > hi {
			return 0, fmt.Errorf("%s=%d is out of range %d..%d", name, *v, lo, hi)
		}
		return *v, nil
	}
	var err error
	var g, workers, thr int64
	if g, err = check("gomaxprocs", w.GOMAXPROCS, 1, maxGOMAXPROCS); err != nil {
		return c, err
	}
	c.GOMAXPROCS = int(g)
	if w.Pool != nil {
		if workers, err = check("pool.workers", w.Pool.Workers, 1, 65536); err != nil {
			return c, err
		}
		if thr, err = check("pool.steal_threshold", w.Pool.StealThreshold, 1, 256); err != nil {
			return c, err
		}
		c.Pool.Workers, c.Pool.StealThreshold = int(workers), int(thr)
		if s := w.Pool.StealScope; s != nil {
			if *s != string(pool.Neighbors) && *s != string(pool.All) {
				return c, fmt.Errorf("pool.steal_scope=%q is neither \"neighbors\" nor \"all\"", *s)
			}
			c.Pool.StealScope = pool.Scope(*s)
		}
	}
	if c.GoschedEvery, err = check("gosched_every", w.GoschedEvery, 1, 1e9); err != nil {
		return c, err
	}
	if c.ChunkSize, err = check("chunk_size", w.ChunkSize, 1, 1e9); err != nil {
		return c, err
	}
	if c.TaskTimeoutMS, err = check("task_timeout_ms", w.TaskTimeoutMS, 1, 86400000); err != nil {
		return c, err
	}
	return c, nil
}

// apply makes c the running config: GOMAXPROCS (restoring the start value
// when absent), the attached pool, the knobs. It fails, changing nothing,
// when GOMAXPROCS does not take the value.
func (a *Agent) apply(c Config) error {
	want := c.GOMAXPROCS
	if want == 0 {
		want = a.startProcs
	}
	if prev := runtime.GOMAXPROCS(0); prev != want {
		// Only when it differs: on Go 1.25+ any call turns off the
		// runtime's own updates.
		if c.GOMAXPROCS == 0 && restoreDefaultGOMAXPROCS() {
			// Go 1.25+: back to the runtime's automatic default.
		} else {
			runtime.GOMAXPROCS(want)
		}
		if got := runtime.GOMAXPROCS(0); c.GOMAXPROCS != 0 && got != want {
			runtime.GOMAXPROCS(prev)
			return fmt.Errorf("gomaxprocs=%d could not be applied: the runtime runs %d", want, got)
		}
	}
	a.mu.Lock()
	a.cfg = c
	p, pdef := a.pool, a.poolDefaults
	a.mu.Unlock()
	if p != nil {
		p.Apply(poolSettings(c, pdef))
	}
	return nil
}

// poolSettings fills the absent pool fields of c from the pool's own
// settings at attach time.
func poolSettings(c Config, def pool.Settings) pool.Settings {
	s := def
	if c.Pool.Workers > 0 {
		s.Workers = c.Pool.Workers
	}
	if c.Pool.StealThreshold > 0 {
		s.StealThreshold = c.Pool.StealThreshold
	}
	if c.Pool.StealScope != "" {
		s.StealScope = c.Pool.StealScope
	}
	return s
}

// Version returns the applied config version (0 before the first one).
func (a *Agent) Version() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg.Version
}

// Config returns the applied config as received (zero fields absent).
func (a *Agent) Config() Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// knob returns v, else the application's default d, else the built-in b.
func knob(v, d, b int64) int64 {
	if v > 0 {
		return v
	}
	if d > 0 {
		return d
	}
	return b
}

// Workers is the pool size to use: the config's pool.workers, else
// Options.Defaults.Pool.Workers, else the current GOMAXPROCS.
func (a *Agent) Workers() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int(knob(int64(a.cfg.Pool.Workers), int64(a.opts.Defaults.Pool.Workers),
		int64(runtime.GOMAXPROCS(0))))
}

// StealThreshold is the queue length from which idle workers steal: the
// config's, else Options.Defaults', else 8 (pool.DefaultStealThreshold).
func (a *Agent) StealThreshold() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int(knob(int64(a.cfg.Pool.StealThreshold), int64(a.opts.Defaults.Pool.StealThreshold),
		pool.DefaultStealThreshold))
}

// StealScope is pool.Neighbors or pool.All: the config's, else
// Options.Defaults', else pool.Neighbors.
func (a *Agent) StealScope() pool.Scope {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s := a.cfg.Pool.StealScope; s != "" {
		return s
	}
	if s := a.opts.Defaults.Pool.StealScope; s != "" {
		return s
	}
	return pool.DefaultStealScope
}

// GoschedEvery is how many iterations a long loop may run between
// runtime.Gosched calls: the config's, else Options.Defaults', else 0,
// meaning never (the runtime preempts long loops by itself every 10 ms).
func (a *Agent) GoschedEvery() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return knob(a.cfg.GoschedEvery, a.opts.Defaults.GoschedEvery, 0)
}

// ChunkSize is how many items one task should take from a large batch: the
// config's, else Options.Defaults', else 64. See Chunks.
func (a *Agent) ChunkSize() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return knob(a.cfg.ChunkSize, a.opts.Defaults.ChunkSize, 64)
}

// TaskTimeout is the time one task may take: the config's, else
// Options.Defaults', else 0, meaning no timeout.
func (a *Agent) TaskTimeout() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return time.Duration(knob(a.cfg.TaskTimeoutMS, a.opts.Defaults.TaskTimeoutMS, 0)) * time.Millisecond
}

// Chunks splits n items into [lo, hi) ranges of at most size items (size
// < 1 means one range), for handing a large batch to a pool in pieces:
//
//	for _, r := range agent.Chunks(len(items), a.ChunkSize()) { ... }
func Chunks(n int, size int64) [][2]int {
	if n <= 0 {
		return nil
	}
	if size < 1 || size > int64(n) {
		size = int64(n)
	}
	s := int(size)
	out := make([][2]int, 0, (n+s-1)/s)
	for lo := 0; lo < n; lo += s {
		hi := lo + s
		if hi > n {
			hi = n
		}
		out = append(out, [2]int{lo, hi})
	}
	return out
}
