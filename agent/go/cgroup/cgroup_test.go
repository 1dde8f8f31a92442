package cgroup

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The C probe's fixtures (tests/data/cgroup, see its README) are read in
// place: both readers must agree on every case.
const fixtures = "../../../tests/data/cgroup"

func readExpect(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		m[k] = v
	}
	return m
}

func TestFixtures(t *testing.T) {
	dirs, err := os.ReadDir(fixtures)
	if err != nil {
		t.Fatalf("fixtures: %v", err)
	}
	n := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		n++
		dir := filepath.Join(fixtures, d.Name())
		t.Run(d.Name(), func(t *testing.T) {
			exp := readExpect(t, filepath.Join(dir, "expect"))
			version, _ := strconv.Atoi(exp["version"])
			got, err := ReadFiles(version, filepath.Join(dir, "root"), exp["path"])
			if e, ok := exp["error"]; ok {
				want := map[string]error{"EINVAL": ErrInvalid, "ENOENT": fs.ErrNotExist}[e]
				if want == nil {
					t.Fatalf("unknown error name %s", e)
				}
				if !errors.Is(err, want) {
					t.Fatalf("err = %v, want %s", err, e)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			limit, _ := strconv.ParseFloat(exp["limit"], 64)
			leaf, _ := strconv.ParseFloat(exp["leaf_limit"], 64)
			if got.Limit != limit || got.LeafLimit != leaf ||
				got.ParentTighter != (exp["parent_tighter"] == "1") || got.Source != exp["source"] {
				t.Fatalf("got %+v, want %v", got, exp)
			}
		})
	}
	if n < 10 {
		t.Fatalf("only %d fixtures found", n)
	}
}

// write creates files under root: path -> content.
func write(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestProbeV1NestedMountRoot(t *testing.T) {
	// A container's view: the cpu hierarchy is mounted from /docker/abc,
	// the unlimited leaf sits under a 1.5-CPU parent.
	root := t.TempDir()
	cpu := "sys/fs/cgroup/cpu,cpuacct"
	write(t, root, map[string]string{
		"proc/self/cgroup": "12:memory:/docker/abc/app\n4:cpu,cpuacct:/docker/abc/app/w\n0::/\n",
		"proc/self/mountinfo": "30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n" +
			"35 30 0:31 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n" +
			"36 30 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
		cpu + "/cpu.cfs_quota_us":        "-1\n",
		cpu + "/cpu.cfs_period_us":       "100000\n",
		cpu + "/app/cpu.cfs_quota_us":    "150000\n",
		cpu + "/app/cpu.cfs_period_us":   "100000\n",
		cpu + "/app/cpu.stat":            "nr_periods 40\nnr_throttled 7\nthrottled_time 123456789\n",
		cpu + "/app/w/cpu.cfs_quota_us":  "-1\n",
		cpu + "/app/w/cpu.cfs_period_us": "100000\n",
		cpu + "/app/w/cpu.stat":          "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
		"sys/devices/system/cpu/online":  "0-3,6\n",
	})
	info, err := Probe(root)
	if err != nil {
		t.Fatal(err)
	}
	want := "cgroup v1 /docker/abc/app (cpu.cfs_quota_us=150000 cpu.cfs_period_us=100000)"
	if info.Limit.Limit != 1.5 || info.LeafLimit != 0 || !info.ParentTighter || info.Source != want {
		t.Fatalf("got %+v", info.Limit)
	}
	if info.NumCPU != 5 || info.Affinity < 1 {
		t.Fatalf("cpus %d affinity %d", info.NumCPU, info.Affinity)
	}
	th := info.Throttling
	if th == nil || *th != (Throttling{40, 7, 123456}) {
		t.Fatalf("throttling %+v (from the winning level, ns -> us)", th)
	}
}

func TestProbeV2(t *testing.T) {
	root := t.TempDir()
	cg := "sys/fs/cgroup"
	write(t, root, map[string]string{
		"proc/self/cgroup":               "0::/kubepods/pod1/c1\n",
		"proc/self/mountinfo":            "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
		cg + "/kubepods/cpu.max":         "max 100000\n",
		cg + "/kubepods/pod1/cpu.max":    "250000 100000\n",
		cg + "/kubepods/pod1/cpu.stat":   "usage_usec 9\nnr_periods 10\nnr_throttled 2\nthrottled_usec 3000\n",
		cg + "/kubepods/pod1/c1/cpu.max": "400000 100000\n",
	})
	info, err := Probe(root)
	if err != nil {
		t.Fatal(err)
	}
	if info.Limit.Limit != 2.5 || info.LeafLimit != 4 || !info.ParentTighter ||
		info.Source != "cgroup v2 /kubepods/pod1 (cpu.max=250000 100000)" {
		t.Fatalf("got %+v", info.Limit)
	}
	if th := info.Throttling; th == nil || *th != (Throttling{10, 2, 3000}) {
		t.Fatalf("throttling %+v", th)
	}
}

func TestProbeUnlimitedLeafThrottling(t *testing.T) {
	// No limit: the counters come from the leaf; a cpu.stat without the
	// bandwidth counters (controller off) gives none.
	root := t.TempDir()
	write(t, root, map[string]string{
		"proc/self/cgroup":         "0::/a\n",
		"sys/fs/cgroup/a/cpu.max":  "max 100000\n",
		"sys/fs/cgroup/a/cpu.stat": "usage_usec 5\n",
	})
	info, err := Probe(root)
	if err != nil {
		t.Fatal(err)
	}
	if info.Limit.Limit != 0 || info.Source != "none" || info.Throttling != nil {
		t.Fatalf("got %+v", info.Limit)
	}
}

func TestProbeOutsideMount(t *testing.T) {
	root := t.TempDir()
	write(t, root, map[string]string{
		"proc/self/cgroup":    "3:cpu:/elsewhere\n",
		"proc/self/mountinfo": "35 30 0:31 /docker/abc /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
	})
	if _, err := Probe(root); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

func TestLongSourceShortened(t *testing.T) {
	root := t.TempDir()
	long := "/" + strings.Repeat("x", 200)
	write(t, root, map[string]string{long + "/cpu.max": "50000 100000\n"})
	l, err := ReadFiles(2, root, long)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Source) > MaxSource || !strings.HasPrefix(l.Source, "cgroup v2 ...x") ||
		!strings.HasSuffix(l.Source, "(cpu.max=50000 100000)") {
		t.Fatalf("source %q (%d bytes)", l.Source, len(l.Source))
	}
}

func TestParsers(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		good bool
	}{{"0-3", 4, true}, {"0", 1, true}, {"0-3,5,7-8\n", 7, true}, {"", 0, false}, {"3-1", 0, false}, {"a", 0, false}} {
		n, ok := ParseCPUList(c.in)
		if n != c.n || ok != c.good {
			t.Errorf("ParseCPUList(%q) = %d, %v", c.in, n, ok)
		}
	}
	text := "5:cpuacct,cpu:/a:b\n0::/v2\n"
	if p, ok := ParseProcCgroup(text, "cpu"); !ok || p != "/a:b" {
		t.Errorf("v1 path %q %v", p, ok)
	}
	if p, ok := ParseProcCgroup(text, ""); !ok || p != "/v2" {
		t.Errorf("v2 path %q %v", p, ok)
	}
	if _, ok := ParseProcCgroup("4:cpuset:/x\n", "cpu"); ok {
		t.Error("cpuset is not cpu")
	}
	for in, want := range map[string][2]uint64{"max": {0, 100000}, "5 10 7": {5, 10}, "7": {7, 100000}} {
		q, p, err := ParseCPUMax(in)
		if err != nil || q != want[0] || p != want[1] {
			t.Errorf("ParseCPUMax(%q) = %d %d %v", in, q, p, err)
		}
	}
	for _, in := range []string{"", "0 100000", "5 0", "-5 100", "x"} {
		if _, _, err := ParseCPUMax(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseCPUMax(%q) accepted", in)
		}
	}
	if got := unescapeOctal(`/a\040b`); got != "/a b" {
		t.Errorf("unescape %q", got)
	}
}

func TestProbeLive(t *testing.T) {
	info, err := Probe("/")
	if err != nil {
		t.Skipf("no readable cgroup here: %v", err) // containers without /proc/self/cgroup
	}
	if info.NumCPU < 1 || info.Affinity < 1 || info.Source == "" {
		t.Fatalf("got %+v", info)
	}
}
