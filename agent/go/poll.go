package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// deliver hands a version to the applier; a newer delivery replaces one
// still waiting.
func (a *Agent) deliver(v versionObjV) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if v.version == a.latest {
		return
	}
	a.latest = v.version
	select {
	case <-a.inbox:
	default:
	}
	a.inbox <- v // cannot block: emptied above, and every send holds mu
}

func (a *Agent) latestVersion() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.latest
}

// pollLoop runs the blocking query GET .../config?index=N&wait=W, where N
// is the newest version seen (applied or rejected), so a NACKed version is
// not sent again. Errors (including 404 before the first push registers
// the agent) back off from 1s to MaxBackoff; an answer that returns early
// without a new version is followed by a pause of at least 1s.
func (a *Agent) pollLoop() {
	bo := backoff{min: time.Second, max: a.opts.MaxBackoff}
	wait := fmt.Sprintf("%dms", a.opts.Wait.Milliseconds())
	path := "/api/v1/agents/" + url.PathEscape(a.id) + "/config?wait=" + wait + "&index="
	for a.ctx.Err() == nil {
		index := a.latestVersion()
		start := time.Now()
		// The server holds the request up to wait + wait/16 of jitter.
		ctx, cancel := context.WithTimeout(a.ctx, a.opts.Wait+a.opts.Wait/16+30*time.Second)
		status, body, err := a.do(ctx, http.MethodGet, path+fmt.Sprint(index), nil)
		cancel()
		var v versionObj
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("HTTP %d: %s", status, snippet(body))
		}
		if err == nil {
			if err = json.Unmarshal(body, &v); err == nil && v.Version == nil {
				err = fmt.Errorf("config answer without a version: %s", snippet(body))
			}
		}
		if err != nil {
			if a.ctx.Err() == nil && !a.sleep(bo.next()) {
				return
			}
			continue
		}
		bo.reset()
		if *v.Version != index {
			a.deliver(versionObjV{*v.Version, v.Config})
		} else if gap := time.Second - time.Since(start); gap > 0 && !a.sleep(gap) {
			return
		}
	}
}

// applyLoop applies each delivered version in turn.
func (a *Agent) applyLoop() {
	for {
		select {
		case <-a.ctx.Done():
			return
		case v := <-a.inbox:
			a.handle(v, true)
		}
	}
}

// handle validates and applies one version, then ACKs or NACKs it. With
// telemetry on, the samples taken under the old config are pushed before
// the change, and sampling restarts from the change, so that the server's
// verification windows each see one config.
func (a *Agent) handle(v versionObjV, telemetry bool) error {
	if v.version == a.Version() && v.version != 0 {
		return nil // already running it
	}
	c, err := decodeConfig(v.version, v.config)
	if err == nil {
		if telemetry {
			a.sampleMu.Lock()
			ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
			_ = a.push(ctx)
			cancel()
		}
		err = a.apply(c)
		if telemetry {
			a.smp.rebase()
			a.sampleMu.Unlock()
		}
	}
	if err != nil {
		a.opts.Logf("rejecting config version %d: %v", v.version, err)
	} else if a.opts.OnConfig != nil {
		a.opts.OnConfig(c)
	}
	if telemetry {
		a.ack(v.version, err)
	}
	return err
}

// ack POSTs the ACK (err nil) or NACK of version, retrying with backoff
// while the server cannot be reached and no newer version has arrived.
// Version 0 is never ACKed (the server has no such version).
func (a *Agent) ack(version int64, applyErr error) {
	if version <= 0 {
		return
	}
	body := map[string]any{"version": version, "status": "applied"}
	if applyErr != nil {
		msg := applyErr.Error()
		if len(msg) > 1023 {
			msg = msg[:1023]
		}
		body["status"], body["error"] = "rejected", msg
	}
	b, _ := json.Marshal(body)
	path := "/api/v1/agents/" + url.PathEscape(a.id) + "/ack"
	bo := backoff{min: time.Second, max: a.opts.MaxBackoff}
	for a.ctx.Err() == nil && a.latestVersion() == version {
		ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
		status, resp, err := a.do(ctx, http.MethodPost, path, b)
		cancel()
		switch {
		case err == nil && status == http.StatusOK:
			return
		case err == nil && status < 500 && status != http.StatusTooManyRequests:
			a.opts.Logf("the server refused the ACK of version %d: HTTP %d: %s", version, status, snippet(resp))
			return
		}
		if !a.sleep(bo.next()) {
			return
		}
	}
}
