// Package cgroup reads the CPU limit of a process the way gotuned's C probe
// (cgroup/cg.c, docs/cgroup.md) does: the tightest CPU bandwidth limit on
// the path from the process's cgroup to the root, cgroup v1
// (cpu.cfs_quota_us / cpu.cfs_period_us) or v2 (cpu.max), whether an
// ancestor was tighter than the leaf, and where the winning limit came from.
// It also reads the throttling counters (cpu.stat) of the winning cgroup,
// the online CPU count and the affinity count.
//
// Every file is read below a root directory ("/" on a live host), so tests
// point it at fixture trees.
package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrInvalid marks a control file or path that cannot be trusted (garbage,
// a zero period or quota, a "." or ".." component). It is never read as
// "unlimited".
var ErrInvalid = errors.New("invalid cgroup data")

// MaxSource is the longest Source: the server keeps 127 bytes.
const MaxSource = 127

// maxFile caps a control file, as the C probe does.
const maxFile = 4096

// defaultPeriod is the kernel's CFS period, used by a lone v2 quota.
const defaultPeriod = 100000

// Limit is the CPU bandwidth limit of one process's cgroup path.
type Limit struct {
	Limit         float64 // tightest limit in CPUs; 0 = unlimited
	LeafLimit     float64 // the process's own cgroup's limit; 0 = unlimited
	ParentTighter bool    // an ancestor's limit is tighter than the leaf's
	// Source names the winning level and its raw values, e.g.
	// "cgroup v1 /a/b (cpu.cfs_quota_us=150000 cpu.cfs_period_us=100000)",
	// or "none"; a long path is shortened from the left ("...").
	Source string
	// Throttling holds the cpu.stat counters of the winning cgroup (the
	// leaf when unlimited); nil when they cannot be read.
	Throttling *Throttling
}

// Throttling holds cumulative CFS bandwidth counters from cpu.stat.
type Throttling struct {
	Periods          uint64 `json:"periods"`
	ThrottledPeriods uint64 `json:"throttled_periods"`
	ThrottledUS      uint64 `json:"throttled_us"`
}

// Info is Limit plus the CPU counts.
type Info struct {
	Limit
	NumCPU   int // online logical CPUs
	Affinity int // CPUs in the affinity mask; NumCPU when unknown
}

// readSmall reads a whole control file of at most maxFile bytes.
func readSmall(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxFile {
		return "", fmt.Errorf("%s: file too large: %w", path, ErrInvalid)
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return "", fmt.Errorf("%s: NUL byte: %w", path, ErrInvalid)
	}
	return string(b), nil
}

// parseDigits parses a non-empty run of decimal digits (no sign).
func parseDigits(s string) (uint64, bool) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// ParseCPUMax parses a v2 cpu.max text: "max [period]", "quota [period]",
// extra tokens ignored. quota is 0 for "max". A zero quota or period is
// ErrInvalid.
func ParseCPUMax(text string) (quota, period uint64, err error) {
	f := strings.Fields(text)
	if len(f) == 0 {
		return 0, 0, ErrInvalid
	}
	if f[0] != "max" {
		q, ok := parseDigits(f[0])
		if !ok || q == 0 {
			return 0, 0, ErrInvalid
		}
		quota = q
	}
	period = defaultPeriod
	if len(f) > 1 {
		p, ok := parseDigits(f[1])
		if !ok || p == 0 {
			return 0, 0, ErrInvalid
		}
		period = p
	}
	return quota, period, nil
}

// parseV1 parses one optionally negative integer with surrounding space.
func parseV1(text string) (int64, bool) {
	s := strings.TrimSpace(text)
	neg := strings.HasPrefix(s, "-")
	v, ok := parseDigits(strings.TrimPrefix(s, "-"))
	if !ok || v > 1<<63-1 {
		return 0, false
	}
	if neg {
		return -int64(v), true
	}
	return int64(v), true
}

// normalize makes an absolute path canonical ("/" for the root) and
// refuses "." and ".." components, so no path leaves its root.
func normalize(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("cgroup path %q is not absolute: %w", p, ErrInvalid)
	}
	var parts []string
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "":
		case ".", "..":
			return "", fmt.Errorf("cgroup path %q has a \".\" or \"..\" component: %w", p, ErrInvalid)
		default:
			parts = append(parts, c)
		}
	}
	return "/" + strings.Join(parts, "/"), nil
}

// level is one cgroup's own limit.
type level struct {
	limited bool
	cpus    float64
	desc    string
}

// readLevel reads the limit of dir (normalized, relative to root).
func readLevel(version int, root, dir string, isLeaf bool) (level, error) {
	full := filepath.Join(root, dir)
	if isLeaf {
		st, err := os.Stat(full)
		if err != nil || !st.IsDir() {
			return level{}, fmt.Errorf("cgroup %s not found under %s: %w", dir, root, fs.ErrNotExist)
		}
	}
	read := func(name string) (string, bool, error) {
		s, err := readSmall(filepath.Join(full, name))
		if errors.Is(err, fs.ErrNotExist) {
			return "", false, nil
		}
		return s, err == nil, err
	}
	if version == 2 {
		s, ok, err := read("cpu.max")
		if err != nil || !ok { // the root, or the cpu controller is off here
			return level{}, err
		}
		q, p, err := ParseCPUMax(s)
		if err != nil {
			return level{}, fmt.Errorf("cgroup %s: bad cpu.max %q: %w", dir, clip(s, 40), ErrInvalid)
		}
		if q == 0 {
			return level{}, nil
		}
		return level{true, float64(q) / float64(p), fmt.Sprintf("cpu.max=%d %d", q, p)}, nil
	}
	s, ok, err := read("cpu.cfs_quota_us")
	if err != nil || !ok { // no CFS bandwidth at this level
		return level{}, err
	}
	quota, good := parseV1(s)
	if !good {
		return level{}, fmt.Errorf("cgroup %s: bad cpu.cfs_quota_us %q: %w", dir, clip(s, 40), ErrInvalid)
	}
	if quota < 0 {
		return level{}, nil
	}
	s, ok, err = read("cpu.cfs_period_us")
	if err != nil {
		return level{}, err
	}
	if !ok {
		return level{}, fmt.Errorf("cgroup %s: cpu.cfs_quota_us=%d without cpu.cfs_period_us: %w", dir, quota, ErrInvalid)
	}
	period, good := parseV1(s)
	if !good || period <= 0 || quota == 0 {
		return level{}, fmt.Errorf("cgroup %s: bad cpu.cfs_quota_us=%d cpu.cfs_period_us=%q: %w", dir, quota, clip(s, 40), ErrInvalid)
	}
	return level{true, float64(quota) / float64(period),
		fmt.Sprintf("cpu.cfs_quota_us=%d cpu.cfs_period_us=%d", quota, period)}, nil
}

func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n]
	}
	return s
}

// formatSource writes "cgroup vN <path> (<desc>)" in at most MaxSource
// bytes, shortening the path from the left so the values always survive.
func formatSource(version int, shownRoot, dir, desc string) string {
	shown := dir
	if shownRoot != "" && shownRoot != "/" {
		if dir == "/" {
			shown = shownRoot
		} else {
			shown = shownRoot + dir
		}
	}
	fixed := len(fmt.Sprintf("cgroup v%d  (%s)", version, desc))
	if room := MaxSource - fixed; len(shown) > room && room > 3 {
		shown = "..." + shown[len(shown)-(room-3):]
	}
	return fmt.Sprintf("cgroup v%d %s (%s)", version, shown, desc)
}

// ReadFiles reads the limit of cgroup path (relative to the mount, e.g.
// "/a/b") below root, which stands in for the mount point (v1: the cpu
// controller's mount, e.g. /sys/fs/cgroup/cpu; v2: /sys/fs/cgroup).
// It visits the leaf and every ancestor; the strictly tightest level wins
// (on a tie, the one nearest the leaf). No limit anywhere is success with
// Limit 0 and Source "none".
func ReadFiles(version int, root, path string) (Limit, error) {
	return walk(version, root, path, "")
}

func walk(version int, root, path, shownRoot string) (Limit, error) {
	if version != 1 && version != 2 {
		return Limit{}, fmt.Errorf("cgroup version %d: want 1 or 2: %w", version, ErrInvalid)
	}
	dir, err := normalize(path)
	if err != nil {
		return Limit{}, err
	}
	var out Limit
	have, winnerLeaf, isLeaf := false, false, true
	leaf, winner := dir, dir
	for {
		lv, err := readLevel(version, root, dir, isLeaf)
		if err != nil {
			return Limit{}, err
		}
		if lv.limited {
			if isLeaf {
				out.LeafLimit = lv.cpus
			}
			if !have || lv.cpus < out.Limit {
				have, winnerLeaf, winner = true, isLeaf, dir
				out.Limit = lv.cpus
				out.Source = formatSource(version, shownRoot, dir, lv.desc)
			}
		}
		isLeaf = false
		if dir == "/" {
			break
		}
		dir = dir[:strings.LastIndexByte(dir, '/')]
		if dir == "" {
			dir = "/"
		}
	}
	out.ParentTighter = have && !winnerLeaf
	if !have {
		out.Source = "none"
		winner = leaf
	}
	out.Throttling = readThrottling(version, filepath.Join(root, winner))
	return out, nil
}

// readThrottling reads cpu.stat in dir; nil when it cannot be read or
// lacks the bandwidth counters (v1 throttled_time is in ns).
func readThrottling(version int, dir string) *Throttling {
	s, err := readSmall(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return nil
	}
	vals := map[string]uint64{}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			if v, ok := parseDigits(f[1]); ok {
				vals[f[0]] = v
			}
		}
	}
	timeKey, div := "throttled_usec", uint64(1)
	if version == 1 {
		timeKey, div = "throttled_time", 1000
	}
	p, ok1 := vals["nr_periods"]
	n, ok2 := vals["nr_throttled"]
	t, ok3 := vals[timeKey]
	if !ok1 || !ok2 || !ok3 {
		return nil
	}
	return &Throttling{Periods: p, ThrottledPeriods: n, ThrottledUS: t / div}
}
