// Package agent is gotuned's in-process agent for Go services.
//
// Start samples runtime/metrics every Options.SampleInterval and pushes the
// samples to the gotuned server every Options.Interval, long-polls the
// agent's config version, applies GOMAXPROCS live, keeps the other knobs
// for the application (Workers, StealThreshold, StealScope, GoschedEvery,
// ChunkSize, TaskTimeout), drives an attached pool.Pool, and ACKs or NACKs
// every version. With Options.ConfigFile it talks to no server: a sidecar
// (gotuned-agent) owns telemetry and hands the config over through a file.
//
// Each sample covers one sample interval: the scheduling-latency p50/p99
// and the GC pause p99 are percentiles of the histogram observations made
// during that interval (the difference between two reads of the cumulative
// runtime/metrics histograms), in microseconds; see Percentile.
//
// The server decides; the agent derives no setting of its own. A field
// absent from a version (and version 0) means the application's default;
// for GOMAXPROCS that is the value the process started with.
package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"gotuned.dev/agent/pool"
)

// Options configure an Agent. Service and one of Server or ConfigFile are
// required.
type Options struct {
	Server  string // base URL of the gotuned server, e.g. "http://127.0.0.1:8080"
	Service string // service name, [A-Za-z0-9._-]{1,128}
	// ID names this agent, [A-Za-z0-9._-]{1,128}; default
	// "<hostname>-<service>" (see defaultID).
	ID string
	// Token is the bearer token sent as "Authorization: Bearer <Token>"
	// with every request; when empty, the GOTUNED_TOKEN environment
	// variable is used (if set). 16 to 4096 bytes of [A-Za-z0-9._~+/=-].
	Token string
	// CAFile is a PEM bundle of the CA(s) that verify an https Server,
	// instead of the system's roots. It builds the HTTP client, so it
	// cannot be combined with HTTPClient (put the roots in that client's
	// TLS config instead). Certificates are always verified.
	CAFile string

	Interval       time.Duration // push period; default 10s
	SampleInterval time.Duration // sampling period; default 1s
	// Backlog caps the samples kept while the server cannot be reached;
	// the oldest go first and are counted in dropped_samples. Default 1000.
	Backlog int
	// MaxBackoff caps the retry delay while the server is down (pushes
	// back off from Interval, the config poll and ACKs from 1s, doubling,
	// with jitter). Default 2 minutes.
	MaxBackoff time.Duration
	// Wait is the blocking query's wait; default 5m (the server caps it
	// at 10m).
	Wait time.Duration

	// ConfigFile switches to sidecar mode: read the config version the
	// sidecar writes at this path, answer in ConfigFile+".ack", and talk
	// to no server (no telemetry either).
	ConfigFile   string
	PollInterval time.Duration // how often ConfigFile is checked; default 1s

	// Defaults are the application's own values for the knobs, used when
	// a version leaves a field out (GOMAXPROCS is ignored here: its
	// default is the value at Start).
	Defaults Config

	// Pool, if set, is attached before the agent starts (see AttachPool).
	Pool *pool.Pool

	// OnConfig, if set, is called after each version is applied (not for
	// rejected ones), from the agent's own goroutine.
	OnConfig func(Config)

	CgroupRoot string // root for the CPU probe's files; default "/"
	// HTTPClient sends the requests; default: a client without a global
	// timeout (with CAFile's roots when CAFile is set).
	HTTPClient *http.Client
	// Logf receives the agent's rare messages (server down/up, rejected
	// pushes, NACKs); default log.Printf. Use func(string, ...any) {} to
	// silence it.
	Logf func(format string, args ...any)
}

var (
	idRE    = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	tokenRE = regexp.MustCompile(`^[A-Za-z0-9._~+/=-]+$`) // and 16 to 4096 bytes
)

// Agent is a running agent. Its methods are safe for concurrent use.
type Agent struct {
	opts       Options
	id         string
	startProcs int
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	stopOnce   sync.Once

	mu           sync.Mutex
	cfg          Config // applied
	latest       int64  // newest version delivered to the applier
	pool         *pool.Pool
	poolDefaults pool.Settings
	inbox        chan versionObjV

	// sampleMu is held while a sample is taken and across flush, apply
	// and rebase, so that no sample mixes two configs.
	sampleMu sync.Mutex
	smp      *sampler

	pushMu      sync.Mutex // one push at a time
	backlog     backlog
	pushOK      bool   // the last push reached the server (under pushMu)
	lastRefusal string // the last 4xx logged (under pushMu)
}

// versionObjV is a decoded version object ready for the applier.
type versionObjV struct {
	version int64
	config  []byte
}

// Start validates opts and starts the agent's goroutines; they end when
// ctx is done or Stop is called.
func Start(ctx context.Context, opts Options) (*Agent, error) {
	if !idRE.MatchString(opts.Service) {
		return nil, fmt.Errorf("agent: Service %q must match [A-Za-z0-9._-]{1,128}", opts.Service)
	}
	if opts.ID == "" {
		opts.ID = defaultID(opts.Service)
	}
	if !idRE.MatchString(opts.ID) {
		return nil, fmt.Errorf("agent: ID %q must match [A-Za-z0-9._-]{1,128}", opts.ID)
	}
	if (opts.Server == "") == (opts.ConfigFile == "") {
		return nil, errors.New("agent: set exactly one of Server and ConfigFile")
	}
	opts.Server = strings.TrimRight(opts.Server, "/")
	if opts.Server != "" {
		if opts.Token == "" {
			opts.Token = os.Getenv("GOTUNED_TOKEN")
		}
		if opts.Token != "" && (len(opts.Token) < 16 || len(opts.Token) > 4096 || !tokenRE.MatchString(opts.Token)) {
			return nil, errors.New("agent: Token (or GOTUNED_TOKEN) must be 16 to 4096 characters of [A-Za-z0-9._~+/=-]")
		}
	}
	if opts.CAFile != "" {
		if opts.HTTPClient != nil {
			return nil, errors.New("agent: set CAFile or HTTPClient, not both (put the roots in the client's TLS config)")
		}
		if opts.Server != "" && !strings.HasPrefix(opts.Server, "https://") {
			return nil, fmt.Errorf("agent: CAFile is for an https:// Server; got %q", opts.Server)
		}
		c, err := clientWithCA(opts.CAFile)
		if err != nil {
			return nil, err
		}
		opts.HTTPClient = c
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.Interval, 10*time.Second)
	def(&opts.SampleInterval, time.Second)
	def(&opts.MaxBackoff, 2*time.Minute)
	def(&opts.Wait, 5*time.Minute)
	def(&opts.PollInterval, time.Second)
	if opts.Backlog <= 0 {
		opts.Backlog = 1000
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.Logf == nil {
		opts.Logf = func(f string, args ...any) { log.Printf("gotuned agent: "+f, args...) }
	}
	a := &Agent{opts: opts, id: opts.ID, startProcs: runtime.GOMAXPROCS(0),
		inbox: make(chan versionObjV, 1)}
	a.backlog.max = opts.Backlog
	a.ctx, a.cancel = context.WithCancel(ctx)
	if opts.Pool != nil {
		a.AttachPool(opts.Pool)
	}
	if opts.ConfigFile != "" {
		a.spawn(a.watchFile)
		return a, nil
	}
	a.smp = newSampler()
	a.spawn(a.sampleLoop)
	a.spawn(a.pushLoop)
	a.spawn(a.pollLoop)
	a.spawn(a.applyLoop)
	return a, nil
}

// clientWithCA is an HTTP client (the default transport's settings) that
// trusts only the certificates in the PEM file at path.
func clientWithCA(path string) (*http.Client, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent: CAFile: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("agent: CAFile %s: no PEM certificate in it", path)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: t}, nil
}

func (a *Agent) spawn(f func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f()
	}()
}

// defaultID is "<hostname>-<service>", as gotuned-agent's default: stable
// across restarts of the process, so its history and verification carry
// on. Every byte outside [A-Za-z0-9._-] becomes '-', and the result is cut
// to 128 bytes. Several processes of one service on one host need an ID
// each.
func defaultID(service string) string {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	host = regexp.MustCompile(`[^A-Za-z0-9._-]`).ReplaceAllString(host, "-")
	id := host + "-" + service
	if len(id) > 128 {
		id = id[:128]
	}
	return id
}

// ID returns the agent's id.
func (a *Agent) ID() string { return a.id }

// Stop ends every goroutine of the agent and waits for them. Before it
// returns it pushes the pending samples once (for at most 2 s) if the last
// push reached the server. The applied settings stay as they are and an
// attached pool keeps running: the application owns it. Stop may be called
// more than once, and after ctx is done.
func (a *Agent) Stop() {
	a.stopOnce.Do(a.cancel)
	a.wg.Wait()
}

// AttachPool makes p follow the config: pool.workers, steal_threshold and
// steal_scope of each applied version; an absent field returns to the
// value p had when attached. Its queue lengths go into every sample. One
// pool at a time: a second call replaces the first.
func (a *Agent) AttachPool(p *pool.Pool) {
	def := p.Settings()
	a.mu.Lock()
	a.pool, a.poolDefaults = p, def
	c := a.cfg
	a.mu.Unlock()
	p.Apply(poolSettings(c, def))
}

// sleep waits d or until the agent stops; false when it stopped.
func (a *Agent) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-a.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
