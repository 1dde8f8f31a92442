/*
 * cg.h — the CPU probe shared by the server (to size its own thread pool)
 * and the agents: the tightest CPU bandwidth limit on the path from a
 * process's cgroup to the root, where it came from, and the affinity and
 * logical CPU counts.
 *
 * Two readers behind one result type:
 *   - cg_probe_pid: the real host. cgroup v1 through libcgroup; on a pure
 *     cgroup v2 host (which libcgroup 2.0.2 cannot read) it falls back to
 *     the file reader with root "/sys/fs/cgroup".
 *   - cg_probe_files: plain files under a configurable root, so fixtures can
 *     stand in for /sys/fs/cgroup in tests (v1 and v2 layouts).
 * The parsers of the two file formats are pure and exposed for tests.
 *
 * With the limit comes the throttling counters of cpu.stat, read from the
 * cgroup whose limit won (the one `source` names), or from the leaf when
 * nothing is limited: that is the group whose quota the process runs into.
 *
 * Errors: 0 or a negative errno-style code with a message in err.
 * "No limit anywhere" is success with limit 0. A cpu.stat that is missing
 * or unreadable is not an error: have_throttling stays false.
 */
#ifndef GOTUNED_CG_H
#define GOTUNED_CG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Cumulative CFS bandwidth counters from one cgroup's cpu.stat. */
typedef struct cg_throttle {
    unsigned long long periods;           /* nr_periods */
    unsigned long long throttled_periods; /* nr_throttled */
    unsigned long long throttled_us;      /* v2 throttled_usec; v1
                                             throttled_time (ns) / 1000 */
} cg_throttle;

typedef struct cg_cpu {
    double limit;           /* tightest limit in CPUs; 0 = unlimited */
    double leaf_limit;      /* the process's own cgroup's limit; 0 = unlimited */
    bool parent_tighter;    /* an ancestor's limit is tighter than the leaf's */
    char source[256];       /* "cgroup v1 /a/b (cpu.cfs_quota_us=150000
                               cpu.cfs_period_us=100000)", "cgroup v2 /a
                               (cpu.max=...)" or "none" */
    int num_cpu;            /* online logical CPUs */
    int affinity;           /* CPUs in the affinity mask; num_cpu when unknown */
    bool have_throttling;   /* cpu.stat of the limiting (or leaf) group was
                               read and held all three counters */
    cg_throttle throttling;
} cg_cpu;

/* Probes a live process (pid 0 = this process). */
int cg_probe_pid(pid_t pid, cg_cpu *out, char *err, size_t errlen);

/* Probes through plain files. version is 1 or 2; root stands in for the
 * mount point (v1: the cpu controller's mount, e.g. /sys/fs/cgroup/cpu; v2:
 * /sys/fs/cgroup); path is the process's cgroup relative to it ("/a/b").
 * num_cpu and affinity are copied into *out as given. */
int cg_probe_files(int version, const char *root, const char *path,
                   int num_cpu, int affinity, cg_cpu *out,
                   char *err, size_t errlen);

/* Parses a v2 cpu.max text ("max 100000", "150000 100000", a lone quota
 * with the default period, extra tokens tolerated). *cpus = 0 for "max".
 * -EINVAL on garbage or a zero period. */
int cg_parse_cpu_max(const char *text, double *cpus);

/* Parses a cpu.stat text ("key value" lines). version 1 wants nr_periods,
 * nr_throttled and throttled_time (ns, converted to us); version 2 wants
 * nr_periods, nr_throttled and throttled_usec. Other keys are ignored.
 * -ENOENT when one of the three is missing (a v2 group without the cpu
 * controller has only usage counters), -EINVAL on a malformed value. */
int cg_parse_cpu_stat(const char *text, int version, cg_throttle *out);

/* v1: quota/period in microseconds; quota < 0 means unlimited (*cpus = 0).
 * -EINVAL for a period <= 0. */
int cg_v1_cpus(long long quota_us, long long period_us, double *cpus);

/* Reads the cgroup path of a controller ("cpu", or "" for the v2 unified
 * line "0::/...") from the text of /proc/<pid>/cgroup. Returns 0 and writes
 * the path, -ENOENT when there is no such line. */
int cg_parse_proc_cgroup(const char *text, const char *controller,
                         char *path, size_t pathlen);

#endif
