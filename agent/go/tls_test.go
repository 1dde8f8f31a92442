package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const testToken = "tok-0123456789abcdef"

// newFakeTLSServer is newFakeServer over HTTPS (httptest's certificate for
// 127.0.0.1), recording the Authorization header of every request. It
// returns the server and the path of a PEM file with its certificate.
func newFakeTLSServer(t *testing.T) (*fakeServer, *authLog, string) {
	f := &fakeServer{t: t, configs: map[int64]string{0: `{}`}, changed: make(chan struct{})}
	al := &authLog{}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		al.add(r.Method + " " + r.URL.Path + " " + r.Header.Get("Authorization"))
		f.serve(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f, al, writePEM(t, "server-ca.pem", f.srv.Certificate().Raw)
}

type authLog struct {
	mu   sync.Mutex
	seen []string // "METHOD path Authorization"
}

func (l *authLog) add(s string) { l.mu.Lock(); l.seen = append(l.seen, s); l.mu.Unlock() }
func (l *authLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}

func writePEM(t *testing.T, name string, der []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// otherCA is a self-signed CA certificate that signed nothing the servers use.
func otherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, "other-ca.pem", der)
}

// With CAFile the agent verifies the server and sends the token on every
// request: telemetry, the config poll and the ACK.
func TestCAFileAndToken(t *testing.T) {
	keepGOMAXPROCS(t)
	f, al, ca := newFakeTLSServer(t)
	startAgent(t, Options{Server: f.srv.URL, CAFile: ca, Token: testToken,
		Interval: 20 * time.Millisecond, SampleInterval: 5 * time.Millisecond})
	f.setVersion(`{"gomaxprocs":2}`)
	waitFor(t, "telemetry, a config and an ack over TLS", func() bool {
		bs, acks, _ := f.snapshot()
		return len(bs) > 0 && len(acks) > 0
	})
	seen := al.all()
	for _, s := range seen {
		if !strings.HasSuffix(s, " Bearer "+testToken) {
			t.Errorf("request without the bearer token: %q", s)
		}
	}
	for _, want := range []string{"POST /api/v1/telemetry", "GET /api/v1/agents/a1/config", "POST /api/v1/agents/a1/ack"} {
		found := false
		for _, s := range seen {
			found = found || strings.HasPrefix(s, want+" ")
		}
		if !found {
			t.Errorf("no %s in %q", want, seen)
		}
	}
}

// With another CA's certificate nothing reaches the server, and the agent
// says why.
func TestCAFileWrongCA(t *testing.T) {
	f, al, _ := newFakeTLSServer(t)
	var mu sync.Mutex
	var logs []string
	startAgent(t, Options{Server: f.srv.URL, CAFile: otherCA(t), Token: testToken,
		Interval: 20 * time.Millisecond, SampleInterval: 5 * time.Millisecond,
		Logf: func(format string, args ...any) {
			mu.Lock()
			logs = append(logs, fmt.Sprintf(format, args...))
			mu.Unlock()
		}})
	waitFor(t, "a log line about the certificate", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range logs {
			if strings.Contains(l, "certificate") {
				return true
			}
		}
		return false
	})
	if seen := al.all(); len(seen) > 0 {
		t.Errorf("requests reached the server through an unverified connection: %q", seen)
	}
}

// Without CAFile (and so the system's roots) httptest's certificate is
// not trusted either: verification is on by default.
func TestNoCAFileNotTrusted(t *testing.T) {
	f, al, _ := newFakeTLSServer(t)
	a := startAgent(t, Options{Server: f.srv.URL, Interval: 10 * time.Millisecond,
		SampleInterval: 5 * time.Millisecond})
	time.Sleep(100 * time.Millisecond)
	a.Stop()
	if seen := al.all(); len(seen) > 0 {
		t.Errorf("requests reached a server with an untrusted certificate: %q", seen)
	}
}

// An empty Token falls back to GOTUNED_TOKEN; Token wins over it.
func TestTokenFromEnv(t *testing.T) {
	keepGOMAXPROCS(t)
	t.Setenv("GOTUNED_TOKEN", "env-token-0123456789")
	for _, tc := range []struct{ token, want string }{
		{"", "env-token-0123456789"},
		{testToken, testToken},
	} {
		f, al, ca := newFakeTLSServer(t)
		a := startAgent(t, Options{Server: f.srv.URL, CAFile: ca, Token: tc.token,
			Interval: 20 * time.Millisecond, SampleInterval: 5 * time.Millisecond})
		waitFor(t, "telemetry", func() bool { bs, _, _ := f.snapshot(); return len(bs) > 0 })
		a.Stop()
		for _, s := range al.all() {
			if !strings.HasSuffix(s, " Bearer "+tc.want) {
				t.Errorf("Token %q: want Bearer %s, got %q", tc.token, tc.want, s)
			}
		}
	}
}

func TestTLSOptionErrors(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ca := otherCA(t)
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"CAFile and HTTPClient", Options{Server: "https://x", CAFile: ca, HTTPClient: &http.Client{}}, "not both"},
		{"CAFile with http", Options{Server: "http://x", CAFile: ca}, "https://"},
		{"CAFile missing", Options{Server: "https://x", CAFile: filepath.Join(t.TempDir(), "none.pem")}, "no such file"},
		{"CAFile not PEM", Options{Server: "https://x", CAFile: notPEM}, "no PEM certificate"},
		{"short token", Options{Server: "https://x", Token: "short"}, "Token"},
		{"token with a newline", Options{Server: "https://x", Token: "abcdefghijklmnop\r\nX: y"}, "Token"},
	} {
		tc.o.Service = "svc"
		a, err := Start(context.Background(), tc.o)
		if err == nil {
			a.Stop()
			t.Errorf("%s: Start succeeded", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.want)
		}
	}
}
