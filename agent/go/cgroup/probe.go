package cgroup

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// ParseProcCgroup returns the cgroup path of controller from the text of
// /proc/<pid>/cgroup ("hierarchy-ID:controller-list:path"): the v1 line
// whose list contains controller, or for controller "" the v2 line
// ("0::/path"). ok is false when there is no such line.
func ParseProcCgroup(text, controller string) (path string, ok bool) {
	for _, line := range strings.Split(text, "\n") {
		i := strings.IndexByte(line, ':')
		if i < 0 {
			continue
		}
		j := strings.IndexByte(line[i+1:], ':')
		if j < 0 {
			continue
		}
		if _, good := parseDigits(line[:i]); !good {
			continue
		}
		list, p := line[i+1:i+1+j], line[i+1+j+1:]
		match := list == "" && controller == ""
		if controller != "" {
			for _, c := range strings.Split(list, ",") {
				match = match || c == controller
			}
		}
		if match && p != "" {
			return p, true
		}
	}
	return "", false
}

// mount is one line of /proc/self/mountinfo.
type mount struct {
	root, point, fstype, superOpts string
}

func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) &&
			s[i+1] >= '0' && s[i+1] <= '3' && s[i+2] >= '0' && s[i+2] <= '7' &&
			s[i+3] >= '0' && s[i+3] <= '7' {
			b.WriteByte((s[i+1]-'0')*64 + (s[i+2]-'0')*8 + (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseMountinfo reads the cgroup and cgroup2 entries of a mountinfo text.
func parseMountinfo(text string) []mount {
	var out []mount
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(f) {
			continue
		}
		m := mount{root: unescapeOctal(f[3]), point: unescapeOctal(f[4]), fstype: f[sep+1]}
		if sep+3 < len(f) {
			m.superOpts = f[sep+3]
		}
		if m.fstype == "cgroup" || m.fstype == "cgroup2" {
			out = append(out, m)
		}
	}
	return out
}

// under reports whether path is root or lies below it, component-wise.
func under(path, root string) bool {
	return root == "/" || path == root || strings.HasPrefix(path, root+"/")
}

// findMount picks the cgroup mount: v1 with the cpu controller in its
// super options, or the v2 mount whose root contains cgpath. The last
// match wins, as the visible one.
func findMount(ms []mount, v1 bool, cgpath string) (mount, bool) {
	var found mount
	ok := false
	for _, m := range ms {
		if v1 {
			if m.fstype != "cgroup" {
				continue
			}
			has := false
			for _, o := range strings.Split(m.superOpts, ",") {
				has = has || o == "cpu"
			}
			if !has {
				continue
			}
		} else if m.fstype != "cgroup2" || !under(cgpath, m.root) {
			continue
		}
		found, ok = m, true
	}
	return found, ok
}

// Probe reads the CPU facts of this process with every file taken below
// root ("/" or "" on a live host; a fixture tree holding proc/self/cgroup,
// proc/self/mountinfo, the cgroup mounts and sys/devices/system/cpu/online
// in tests). The affinity count always comes from the live process.
func Probe(root string) (Info, error) {
	if root == "" {
		root = "/"
	}
	var info Info
	info.NumCPU = onlineCPUs(filepath.Join(root, "sys/devices/system/cpu/online"))
	info.Affinity = affinityCount(info.NumCPU)

	text, err := readSmallCap(filepath.Join(root, "proc/self/cgroup"), 64<<10)
	if err != nil {
		return info, err
	}
	mi, _ := readSmallCap(filepath.Join(root, "proc/self/mountinfo"), 1<<20)
	ms := parseMountinfo(mi)

	// A v1 cpu line means the cpu controller lives in a v1 hierarchy;
	// otherwise (pure v2, or a hybrid host with cpu in the unified tree)
	// read cpu.max under the cgroup2 mount.
	why := ""
	if p, ok := ParseProcCgroup(text, "cpu"); ok {
		if m, ok := findMount(ms, true, p); ok {
			return info, probeAt(&info, 1, root, m, p)
		}
		why = "no mount point for the v1 cpu controller"
	}
	if p, ok := ParseProcCgroup(text, ""); ok {
		m, ok := findMount(ms, false, p)
		if !ok {
			m = mount{root: "/", point: "/sys/fs/cgroup"}
		}
		return info, probeAt(&info, 2, root, m, p)
	}
	if why != "" {
		return info, fmt.Errorf("%s: %w", why, fs.ErrNotExist)
	}
	return info, fmt.Errorf("/proc/self/cgroup: neither a cpu controller nor a cgroup v2 line: %w", fs.ErrNotExist)
}

func probeAt(info *Info, version int, root string, m mount, cgpath string) error {
	if !under(cgpath, m.root) {
		return fmt.Errorf("cgroup %s is outside the mounted part of the hierarchy (%s): %w",
			cgpath, m.root, fs.ErrNotExist)
	}
	rel := cgpath
	if m.root != "/" {
		rel = cgpath[len(m.root):]
	}
	if rel == "" {
		rel = "/"
	}
	shown := m.root
	if shown == "/" {
		shown = ""
	}
	l, err := walk(version, filepath.Join(root, m.point), rel, shown)
	if err != nil {
		return err
	}
	info.Limit = l
	return nil
}

func readSmallCap(path string, limit int) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if len(b) > limit {
		return "", fmt.Errorf("%s: file too large: %w", path, ErrInvalid)
	}
	return string(b), nil
}

// ParseCPUList counts the CPUs of a list such as "0-3,5,7-8".
func ParseCPUList(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	n := 0
	for _, r := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 0 || b < a {
			return 0, false
		}
		n += b - a + 1
	}
	return n, true
}

func onlineCPUs(path string) int {
	if s, err := readSmall(path); err == nil {
		if n, ok := ParseCPUList(s); ok && n > 0 {
			return n
		}
	}
	return runtime.NumCPU()
}
