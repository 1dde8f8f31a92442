package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// changed tells whether the config file changed: the sidecar replaces it
// with a rename (another file); size and mtime catch in-place writes.
func changed(prev, cur os.FileInfo) bool {
	return prev == nil || !os.SameFile(prev, cur) || prev.Size() != cur.Size() ||
		!prev.ModTime().Equal(cur.ModTime())
}

// watchFile is sidecar mode: check ConfigFile every PollInterval (at once
// first), apply a new version and answer in ConfigFile+".ack".
func (a *Agent) watchFile() {
	var last os.FileInfo
	for {
		st, err := os.Stat(a.opts.ConfigFile)
		if err == nil && changed(last, st) {
			last = st
			a.readConfigFile()
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			a.opts.Logf("config file: %v", err)
		}
		if !a.sleep(a.opts.PollInterval) {
			return
		}
	}
}

// readConfigFile applies the version in the config file and writes the
// answer. A file without a readable version
// cannot be answered (the answer names the version): it is logged and the
// next change is awaited.
func (a *Agent) readConfigFile() {
	b, err := os.ReadFile(a.opts.ConfigFile)
	if err != nil {
		a.opts.Logf("config file: %v", err)
		return
	}
	var v versionObj
	if err := json.Unmarshal(b, &v); err != nil || v.Version == nil {
		a.opts.Logf("config file %s holds no config version object: %v", a.opts.ConfigFile, err)
		return
	}
	// handle skips a version already running, and the answer is written
	// again (the sidecar may have restarted).
	applyErr := a.handle(versionObjV{*v.Version, v.Config}, false)
	ans := map[string]any{"version": *v.Version, "status": "applied"}
	if applyErr != nil {
		ans["status"], ans["error"] = "rejected", applyErr.Error()
	}
	out, _ := json.Marshal(ans)
	if err := writeAtomic(a.opts.ConfigFile+".ack", append(out, '\n')); err != nil {
		a.opts.Logf("writing the ack file: %v", err)
	}
}

// writeAtomic writes path through PATH.tmp.<pid>, fsync and rename, as the
// sidecar writes the config file.
func writeAtomic(path string, data []byte) error {
	tmp := fmt.Sprintf("%s.tmp.%d", path, os.Getpid())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
