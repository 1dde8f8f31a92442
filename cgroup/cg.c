/*
 * cg.c — the CPU probe: the tightest CPU bandwidth limit between a process's
 * cgroup and the root, read through libcgroup on a cgroup v1 host and
 * through plain files on a cgroup v2 host or a fixture tree.
 *
 * Both readers share one walker (walk_levels), which visits the leaf, then
 * each ancestor up to the root of the mount, and keeps the tightest limit.
 * Only how one level is read differs (a level_reader).
 *
 * Why we parse /proc/<pid>/cgroup ourselves instead of calling
 * cgroup_get_current_controller_path(): libcgroup 2.0.2 opens
 * /proc/<pid>/cgroup literally, so pid 0 fails (ECGROUPNOTEXIST, seen on
 * this host); its fscanf("%d:%[^:]:%s") cuts paths at whitespace and cannot
 * match the v2 "0::/..." line; and it returns the path as the kernel shows
 * it, while the files live under the mount's root (a container whose cpu
 * mount has root /docker/<id> sees /docker/<id> in /proc but must read the
 * mount's top directory). One read of the file also gives both the v1 cpu
 * line and the v2 line, so the choice of reader and the path come from the
 * same snapshot.
 */
#include "cgroup/cg.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libcgroup.h>

/* A control file holds one short line; libcgroup itself caps values at
 * 4096 bytes, and so do we. */
#define CG_FILE_MAX 4096
/* /proc/<pid>/cgroup has one line per hierarchy: a few hundred bytes in
 * practice, but each line carries a path of up to PATH_MAX. */
#define CG_PROC_MAX (64 * 1024)
/* The kernel's default CFS period, used by a v2 cpu.max with a lone quota. */
#define CG_DEFAULT_PERIOD 100000ULL
/* Where a pure cgroup v2 host mounts the unified hierarchy when
 * /proc/self/mountinfo cannot tell us. */
#define CG_V2_DEFAULT_MOUNT "/sys/fs/cgroup"

/* ---- errors ------------------------------------------------------------ */

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- small parsers ----------------------------------------------------- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

/* Parses exactly n decimal digits (no sign, no spaces) into *out. */
static int parse_digits(const char *s, size_t n, unsigned long long *out)
{
    unsigned long long v = 0;
    if (n == 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Parses a whole v1 file: one optionally negative decimal integer with
 * surrounding whitespace. */
static int parse_ll(const char *text, long long *out)
{
    while (is_space(*text))
        text++;
    size_t n = strlen(text);
    while (n > 0 && is_space(text[n - 1]))
        n--;
    size_t skip = n > 0 && text[0] == '-' ? 1 : 0;
    unsigned long long v;
    /* Both bounds are kept one short of LLONG_MIN: no v1 value is near. */
    if (parse_digits(text + skip, n - skip, &v) < 0 ||
        v > (unsigned long long)LLONG_MAX)
        return -EINVAL;
    *out = skip ? -(long long)v : (long long)v;
    return 0;
}

/* Finds the next whitespace-separated token at or after *s. */
static bool next_token(const char **s, const char **tok, size_t *len)
{
    const char *p = *s;
    while (is_space(*p))
        p++;
    if (*p == '\0')
        return false;
    const char *start = p;
    while (*p && !is_space(*p))
        p++;
    *tok = start;
    *len = (size_t)(p - start);
    *s = p;
    return true;
}

/* The v2 cpu.max grammar: "$MAX [$PERIOD [anything...]]", where $MAX is
 * "max" or a positive quota. Extra tokens are tolerated because a
 * third (burst) field was once proposed upstream. *quota is 0 for "max". */
static int parse_cpu_max(const char *text, unsigned long long *quota,
                         unsigned long long *period)
{
    const char *tok;
    size_t len;
    if (!next_token(&text, &tok, &len))
        return -EINVAL;
    if (len == 3 && memcmp(tok, "max", 3) == 0)
        *quota = 0;
    else if (parse_digits(tok, len, quota) < 0 || *quota == 0)
        return -EINVAL; /* the kernel refuses a zero quota */
    *period = CG_DEFAULT_PERIOD;
    if (next_token(&text, &tok, &len) &&
        (parse_digits(tok, len, period) < 0 || *period == 0))
        return -EINVAL;
    return 0;
}

int cg_parse_cpu_max(const char *text, double *cpus)
{
    unsigned long long quota, period;
    if (!text || !cpus)
        return -EINVAL;
    int rc = parse_cpu_max(text, &quota, &period);
    if (rc < 0)
        return rc;
    *cpus = quota == 0 ? 0 : (double)quota / (double)period;
    return 0;
}

/* A zero quota is rejected as well: the kernel never holds one, and 0 CPUs
 * would read as "unlimited" in cg_cpu. */
int cg_v1_cpus(long long quota_us, long long period_us, double *cpus)
{
    if (!cpus || period_us <= 0 || quota_us == 0)
        return -EINVAL;
    *cpus = quota_us < 0 ? 0 : (double)quota_us / (double)period_us;
    return 0;
}

/* cpu.stat: "key value" per line. Values are unsigned decimals; a key we
 * do not need is skipped whatever its value. */
int cg_parse_cpu_stat(const char *text, int version, cg_throttle *out)
{
    if (!text || !out || (version != 1 && version != 2))
        return -EINVAL;
    const char *time_key = version == 1 ? "throttled_time" : "throttled_usec";
    unsigned long long periods = 0, throttled = 0, t = 0;
    unsigned seen = 0;
    const char *line = text;
    while (*line) {
        const char *eol = strchr(line, '\n');
        const char *end = eol ? eol : line + strlen(line);
        const char *sp = memchr(line, ' ', (size_t)(end - line));
        if (sp) {
            size_t klen = (size_t)(sp - line);
            const char *v = sp + 1;
            size_t vlen = (size_t)(end - v);
            while (vlen > 0 && is_space(v[vlen - 1]))
                vlen--;
            unsigned long long *dst = NULL;
            unsigned bit = 0;
            if (klen == 10 && memcmp(line, "nr_periods", 10) == 0) {
                dst = &periods;
                bit = 1;
            } else if (klen == 12 && memcmp(line, "nr_throttled", 12) == 0) {
                dst = &throttled;
                bit = 2;
            } else if (klen == strlen(time_key) &&
                       memcmp(line, time_key, klen) == 0) {
                dst = &t;
                bit = 4;
            }
            if (dst) {
                if ((seen & bit) || parse_digits(v, vlen, dst) < 0)
                    return -EINVAL;
                seen |= bit;
            }
        }
        line = eol ? eol + 1 : end;
    }
    if (seen != 7)
        return -ENOENT;
    out->periods = periods;
    out->throttled_periods = throttled;
    out->throttled_us = version == 1 ? t / 1000 : t;
    return 0;
}

/* True when the comma-separated list [list, list+n) contains name. */
static bool list_has(const char *list, size_t n, const char *name)
{
    size_t nl = strlen(name);
    const char *end = list + n;
    while (list < end) {
        const char *comma = memchr(list, ',', (size_t)(end - list));
        const char *stop = comma ? comma : end;
        if ((size_t)(stop - list) == nl && memcmp(list, name, nl) == 0)
            return true;
        list = comma ? comma + 1 : end;
    }
    return false;
}

/* Lines are "hierarchy-ID:controller-list:path"; the path is the rest of
 * the line, so it may itself contain ':'. Malformed lines are skipped. */
int cg_parse_proc_cgroup(const char *text, const char *controller,
                         char *path, size_t pathlen)
{
    if (!text || !controller || !path || pathlen == 0)
        return -EINVAL;
    const char *line = text;
    while (*line) {
        const char *eol = strchr(line, '\n');
        const char *end = eol ? eol : line + strlen(line);
        const char *c1 = memchr(line, ':', (size_t)(end - line));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1))
                            : NULL;
        unsigned long long id;
        if (c2 && parse_digits(line, (size_t)(c1 - line), &id) == 0) {
            size_t nlist = (size_t)(c2 - c1 - 1);
            bool match = *controller ? list_has(c1 + 1, nlist, controller)
                                     : nlist == 0;
            if (match && c2 + 1 < end) {
                size_t n = (size_t)(end - c2 - 1);
                if (n + 1 > pathlen)
                    return -ENAMETOOLONG;
                memcpy(path, c2 + 1, n);
                path[n] = '\0';
                return 0;
            }
        }
        line = eol ? eol + 1 : end;
    }
    return -ENOENT;
}

/* ---- files ------------------------------------------------------------- */

/* Reads a whole small file into buf (NUL-terminated). Returns 0 or -errno;
 * -EFBIG when it does not fit, -EINVAL when it holds a NUL byte. */
static int read_small_file(const char *path, char *buf, size_t cap)
{
    assert(cap > 1);
    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -errno;
    size_t n = 0;
    int rc = 0;
    for (;;) {
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n == cap - 1) {
            char extra;
            do
                got = read(fd, &extra, 1);
            while (got < 0 && errno == EINTR);
            if (got != 0)
                rc = got < 0 ? -errno : -EFBIG;
            break;
        }
    }
    close(fd);
    if (rc < 0)
        return rc;
    buf[n] = '\0';
    if (memchr(buf, '\0', n))
        return -EINVAL;
    return 0;
}

/* Copies path into out in canonical form: absolute, no empty components,
 * no trailing '/', "/" for the root. "." and ".." are refused so that no
 * path can leave the root it is joined to. */
static int normalize_path(const char *in, char *out, size_t outlen,
                          char *err, size_t errlen)
{
    assert(outlen >= 2);
    if (!in || in[0] != '/')
        return fail(err, errlen, -EINVAL, "cgroup path \"%s\" is not absolute",
                    in ? in : "(null)");
    size_t n = 0;
    const char *p = in;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - start);
        if ((len == 1 && start[0] == '.') ||
            (len == 2 && start[0] == '.' && start[1] == '.'))
            return fail(err, errlen, -EINVAL,
                        "cgroup path \"%s\" has a \".\" or \"..\" component",
                        in);
        if (n + 1 + len + 1 > outlen)
            return fail(err, errlen, -ENAMETOOLONG,
                        "cgroup path \"%s\" is too long", in);
        out[n++] = '/';
        memcpy(out + n, start, len);
        n += len;
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = '\0';
    return 0;
}

/* ---- the walker -------------------------------------------------------- */

/* One level's CPU bandwidth limit. */
typedef struct level {
    bool limited;
    double cpus;
    char desc[112]; /* the raw values, for cg_cpu.source */
    bool have_stat; /* cpu.stat held the throttling counters */
    cg_throttle stat;
} level;

/* Reads the limit of one cgroup directory (a normalized path relative to
 * the mount). is_leaf lets a reader check that the group exists at all. */
typedef int (*level_reader)(void *ctx, const char *dir, bool is_leaf,
                            level *out, char *err, size_t errlen);

/* Writes "cgroup vN <path> (<desc>)" into source, shortening the path from
 * the left when needed so that the values always survive. */
static void format_source(char *source, size_t cap, int version,
                          const char *shown_root, const char *dir,
                          const char *desc)
{
    char shown[PATH_MAX * 2];
    if (!shown_root[0] || strcmp(shown_root, "/") == 0)
        snprintf(shown, sizeof shown, "%s", dir);
    else if (strcmp(dir, "/") == 0)
        snprintf(shown, sizeof shown, "%s", shown_root);
    else
        snprintf(shown, sizeof shown, "%s%s", shown_root, dir);

    int fixed = snprintf(NULL, 0, "cgroup v%d  (%s)", version, desc);
    size_t room = fixed >= 0 && (size_t)fixed + 1 < cap
                      ? cap - 1 - (size_t)fixed : 0;
    size_t len = strlen(shown);
    const char *p = shown;
    const char *ell = "";
    if (len > room && room > 3) {
        p = shown + len - (room - 3);
        ell = "...";
    }
    /* The result is used so that -Wformat-truncation sees the bound. */
    int n = snprintf(source, cap, "cgroup v%d %s%s (%s)", version, ell, p,
                     desc);
    assert(n >= 0);
    (void)n;
}

/* Visits path and each ancestor up to "/", keeping the tightest limit.
 * shown_root is prefixed to paths in the source (the mount's root inside
 * the hierarchy, "" for none). On success fills limit, leaf_limit,
 * parent_tighter and source of *out. */
static int walk_levels(int version, const char *path, const char *shown_root,
                       level_reader read_level, void *ctx, cg_cpu *out,
                       char *err, size_t errlen)
{
    char dir[PATH_MAX];
    int rc = normalize_path(path, dir, sizeof dir, err, errlen);
    if (rc < 0)
        return rc;

    bool have = false, winner_is_leaf = false, is_leaf = true;
    double best = 0, leaf_limit = 0;
    /* The counters of the winning level, or of the leaf while none won. */
    bool have_stat = false;
    cg_throttle stat = { 0 };
    for (;;) {
        level lv = { .limited = false };
        rc = read_level(ctx, dir, is_leaf, &lv, err, errlen);
        if (rc < 0)
            return rc;
        if (is_leaf) {
            have_stat = lv.have_stat;
            stat = lv.stat;
        }
        if (lv.limited) {
            assert(lv.cpus > 0);
            if (is_leaf)
                leaf_limit = lv.cpus;
            /* Strictly tighter: on a tie the level nearest the leaf wins. */
            if (!have || lv.cpus < best) {
                have = true;
                best = lv.cpus;
                winner_is_leaf = is_leaf;
                have_stat = lv.have_stat;
                stat = lv.stat;
                format_source(out->source, sizeof out->source, version,
                              shown_root, dir, lv.desc);
            }
        }
        is_leaf = false;
        if (strcmp(dir, "/") == 0)
            break;
        char *slash = strrchr(dir, '/');
        assert(slash);
        slash[slash == dir ? 1 : 0] = '\0';
    }
    out->limit = have ? best : 0;
    out->leaf_limit = leaf_limit;
    out->parent_tighter = have && !winner_is_leaf;
    out->have_throttling = have_stat;
    out->throttling = have_stat ? stat : (cg_throttle){ 0 };
    if (!have)
        snprintf(out->source, sizeof out->source, "none");
    return 0;
}

/* A v1 level from its two values; quota_set false when cpu.cfs_quota_us
 * does not exist there. */
static int v1_level(const char *dir, bool quota_set, long long quota,
                    bool period_set, long long period, level *out,
                    char *err, size_t errlen)
{
    if (!quota_set || quota < 0)
        return 0;
    if (!period_set)
        return fail(err, errlen, -EINVAL,
                    "cgroup %s: cpu.cfs_quota_us=%lld without cpu.cfs_period_us",
                    dir, quota);
    if (cg_v1_cpus(quota, period, &out->cpus) < 0)
        return fail(err, errlen, -EINVAL,
                    "cgroup %s: bad cpu.cfs_quota_us=%lld cpu.cfs_period_us=%lld",
                    dir, quota, period);
    out->limited = true;
    snprintf(out->desc, sizeof out->desc,
             "cpu.cfs_quota_us=%lld cpu.cfs_period_us=%lld", quota, period);
    return 0;
}

/* ---- the file reader --------------------------------------------------- */

typedef struct file_ctx {
    int version;
    const char *root;
} file_ctx;

/* Reads <root><dir>/<name>; -ENOENT when the file is missing. */
static int read_control(const file_ctx *fc, const char *dir, const char *name,
                        char *buf, size_t cap, char *err, size_t errlen)
{
    char full[PATH_MAX];
    int n = snprintf(full, sizeof full, "%s%s/%s", fc->root,
                     strcmp(dir, "/") == 0 ? "" : dir, name);
    if (n < 0 || (size_t)n >= sizeof full)
        return fail(err, errlen, -ENAMETOOLONG, "%s%s: path too long",
                    fc->root, dir);
    int rc = read_small_file(full, buf, cap);
    if (rc < 0 && rc != -ENOENT)
        return fail(err, errlen, rc, "%s: %s", full,
                    rc == -EFBIG ? "file too large" : strerror(-rc));
    return rc;
}

static int read_level_files(void *ctx, const char *dir, bool is_leaf,
                            level *out, char *err, size_t errlen)
{
    const file_ctx *fc = ctx;
    char buf[CG_FILE_MAX];
    int rc;

    if (is_leaf) {
        char full[PATH_MAX];
        struct stat st;
        int n = snprintf(full, sizeof full, "%s%s", fc->root, dir);
        if (n < 0 || (size_t)n >= sizeof full)
            return fail(err, errlen, -ENAMETOOLONG, "%s%s: path too long",
                        fc->root, dir);
        if (stat(full, &st) < 0 || !S_ISDIR(st.st_mode))
            return fail(err, errlen, -ENOENT, "cgroup %s not found under %s",
                        dir, fc->root);
    }

    /* The counters are best effort: a missing or odd cpu.stat leaves
     * have_stat false and never fails the probe. */
    char stat_path[PATH_MAX];
    int sn = snprintf(stat_path, sizeof stat_path, "%s%s/cpu.stat", fc->root,
                      strcmp(dir, "/") == 0 ? "" : dir);
    if (sn > 0 && (size_t)sn < sizeof stat_path &&
        read_small_file(stat_path, buf, sizeof buf) == 0)
        out->have_stat = cg_parse_cpu_stat(buf, fc->version, &out->stat) == 0;

    if (fc->version == 2) {
        rc = read_control(fc, dir, "cpu.max", buf, sizeof buf, err, errlen);
        if (rc == -ENOENT) /* the root, or the cpu controller is off here */
            return 0;
        if (rc < 0)
            return rc;
        unsigned long long quota, period;
        if (parse_cpu_max(buf, &quota, &period) < 0)
            return fail(err, errlen, -EINVAL, "cgroup %s: bad cpu.max \"%.40s\"",
                        dir, buf);
        if (quota == 0)
            return 0;
        out->limited = true;
        out->cpus = (double)quota / (double)period;
        snprintf(out->desc, sizeof out->desc, "cpu.max=%llu %llu", quota,
                 period);
        return 0;
    }

    long long quota = 0, period = 0;
    bool quota_set = false, period_set = false;
    rc = read_control(fc, dir, "cpu.cfs_quota_us", buf, sizeof buf, err,
                      errlen);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    if (rc == 0) {
        if (parse_ll(buf, &quota) < 0)
            return fail(err, errlen, -EINVAL,
                        "cgroup %s: bad cpu.cfs_quota_us \"%.40s\"", dir, buf);
        quota_set = true;
    }
    if (quota_set && quota >= 0) {
        rc = read_control(fc, dir, "cpu.cfs_period_us", buf, sizeof buf, err,
                          errlen);
        if (rc < 0 && rc != -ENOENT)
            return rc;
        if (rc == 0) {
            if (parse_ll(buf, &period) < 0)
                return fail(err, errlen, -EINVAL,
                            "cgroup %s: bad cpu.cfs_period_us \"%.40s\"", dir,
                            buf);
            period_set = true;
        }
    }
    return v1_level(dir, quota_set, quota, period_set, period, out, err,
                    errlen);
}

int cg_probe_files(int version, const char *root, const char *path,
                   int num_cpu, int affinity, cg_cpu *out,
                   char *err, size_t errlen)
{
    if (!out)
        return fail(err, errlen, -EINVAL, "no output");
    memset(out, 0, sizeof *out);
    if (version != 1 && version != 2)
        return fail(err, errlen, -EINVAL, "cgroup version %d: want 1 or 2",
                    version);
    if (!root || !root[0])
        return fail(err, errlen, -EINVAL, "empty cgroup root");
    /* "/" as the root would make "<root><dir>" start with "//": harmless,
     * but strip trailing slashes so messages read well. */
    char r[PATH_MAX];
    size_t rl = strlen(root);
    if (rl >= sizeof r)
        return fail(err, errlen, -ENAMETOOLONG, "cgroup root too long");
    memcpy(r, root, rl + 1);
    while (rl > 1 && r[rl - 1] == '/')
        r[--rl] = '\0';
    if (strcmp(r, "/") == 0)
        r[0] = '\0';

    file_ctx fc = { .version = version, .root = r };
    int rc = walk_levels(version, path, "", read_level_files, &fc, out, err,
                         errlen);
    if (rc < 0) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->num_cpu = num_cpu;
    out->affinity = affinity;
    return 0;
}

/* ---- libcgroup --------------------------------------------------------- */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_init_rc;        /* cgroup_init()'s result, set once */
static bool lib_log_to_stderr; /* CGROUP_LOGLEVEL was set: the operator
                                  asked to see libcgroup's messages */
/* libcgroup reports details only through its logger; keep this thread's
 * last message so that an error can carry it. */
static _Thread_local char lib_last_msg[256];

static void lib_logger(void *userdata, int lvl, const char *fmt, va_list ap)
{
    (void)userdata;
    (void)lvl;
    vsnprintf(lib_last_msg, sizeof lib_last_msg, fmt, ap);
    size_t n = strlen(lib_last_msg);
    while (n > 0 && is_space(lib_last_msg[n - 1]))
        lib_last_msg[--n] = '\0';
    if (lib_log_to_stderr)
        fprintf(stderr, "gotuned: libcgroup: %s\n", lib_last_msg);
}

/* cgroup_init() caches the mount table forever and is not safe to run
 * twice concurrently; without our logger it would print to stdout. */
static void lib_init(void)
{
    lib_log_to_stderr = getenv("CGROUP_LOGLEVEL") != NULL;
    /* -1: the level comes from CGROUP_LOGLEVEL, ERROR when unset. */
    cgroup_set_logger(lib_logger, -1, NULL);
    lib_init_rc = cgroup_init();
}

/* Maps a libcgroup ECG* code to a negative errno. */
static int lib_errno(int ecg)
{
    switch (ecg) {
    case ECGROUPNOTEXIST:
        return -ENOENT;
    case ECGROUPNOTMOUNTED:
    case ECGROUPSUBSYSNOTMOUNTED:
        return -ENODEV;
    case ECGROUPNOTOWNER:
    case ECGROUPNOTALLOWED:
        return -EACCES;
    case ECGOTHER: {
        int e = cgroup_get_last_errno();
        return e > 0 ? -e : -EIO;
    }
    default:
        return -EIO;
    }
}

static int lib_fail(char *err, size_t errlen, int ecg, const char *what,
                    const char *dir)
{
    return fail(err, errlen, lib_errno(ecg), "libcgroup: %s %s: %s%s%s", what,
                dir, cgroup_strerror(ecg), lib_last_msg[0] ? ": " : "",
                lib_last_msg);
}

static int read_level_libcgroup(void *ctx, const char *dir, bool is_leaf,
                                level *out, char *err, size_t errlen)
{
    (void)ctx;
    (void)is_leaf;
    struct cgroup *cg = NULL;
    int64_t quota = 0, period = 0;
    bool quota_set = false, period_set = false;
    int rc = 0, ecg;

    lib_last_msg[0] = '\0';
    cg = cgroup_new_cgroup(dir);
    if (!cg) {
        rc = fail(err, errlen, -ENOMEM, "libcgroup: cannot allocate %s", dir);
        goto out;
    }
    /* Reads every file of every controller where the group exists: costly
     * but fine for a probe, and the only public way to get values. */
    ecg = cgroup_get_cgroup(cg);
    if (ecg) {
        rc = lib_fail(err, errlen, ecg, "reading", dir);
        goto out;
    }
    struct cgroup_controller *c = cgroup_get_controller(cg, "cpu");
    if (!c) {
        rc = fail(err, errlen, -ENOENT, "libcgroup: %s has no cpu controller",
                  dir);
        goto out;
    }
    /* cgroup_get_cgroup read cpu.stat whole; best effort, as in the file
     * reader. */
    char *stat = NULL;
    if (cgroup_get_value_string(c, "cpu.stat", &stat) == 0 && stat)
        out->have_stat = cg_parse_cpu_stat(stat, 1, &out->stat) == 0;
    free(stat);
    ecg = cgroup_get_value_int64(c, "cpu.cfs_quota_us", &quota);
    if (ecg && ecg != ECGROUPVALUENOTEXIST) {
        rc = lib_fail(err, errlen, ecg, "cpu.cfs_quota_us of", dir);
        goto out;
    }
    quota_set = ecg == 0;
    if (quota_set && quota >= 0) {
        ecg = cgroup_get_value_int64(c, "cpu.cfs_period_us", &period);
        if (ecg && ecg != ECGROUPVALUENOTEXIST) {
            rc = lib_fail(err, errlen, ecg, "cpu.cfs_period_us of", dir);
            goto out;
        }
        period_set = ecg == 0;
    }
    rc = v1_level(dir, quota_set, quota, period_set, period, out, err,
                  errlen);
out:
    if (cg)
        cgroup_free(&cg);
    return rc;
}

/* ---- the live probe ---------------------------------------------------- */

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape_octal(char *s)
{
    char *w = s;
    for (char *r = s; *r; ) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' &&
            r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* True when path is root or lies below it (component-wise prefix). */
static bool path_under(const char *path, const char *root)
{
    if (strcmp(root, "/") == 0)
        return true;
    size_t n = strlen(root);
    return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Looks up a cgroup mount in /proc/self/mountinfo: fstype "cgroup" with
 * mount point want_mnt (v1), or an fstype "cgroup2" whose root contains
 * cgpath (v2, want_mnt NULL); the last match wins, as the visible one. Writes the mount point and its root
 * inside the hierarchy; -ENOENT when there is no such mount. */
static int find_mount(const char *fstype, const char *want_mnt,
                      const char *cgpath, char *mnt, size_t mntlen,
                      char *root, size_t rootlen)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    int rc = -ENOENT;
    while (getline(&line, &cap, f) >= 0) {
        /* id parent maj:min root mountpoint opts [optional...] - type src
         * superopts */
        char *save = NULL, *field[5] = { NULL };
        char *tok = strtok_r(line, " \n", &save);
        int i = 0;
        for (; tok && i < 5; i++, tok = strtok_r(NULL, " \n", &save))
            field[i] = tok;
        while (tok && strcmp(tok, "-") != 0)
            tok = strtok_r(NULL, " \n", &save);
        char *type = tok ? strtok_r(NULL, " \n", &save) : NULL;
        if (i < 5 || !type || strcmp(type, fstype) != 0)
            continue;
        unescape_octal(field[3]);
        unescape_octal(field[4]);
        if (want_mnt ? strcmp(field[4], want_mnt) != 0
                     : !path_under(cgpath, field[3]))
            continue;
        if (strlen(field[4]) >= mntlen || strlen(field[3]) >= rootlen)
            continue;
        strcpy(mnt, field[4]);
        strcpy(root, field[3]);
        rc = 0; /* keep looking: a later mount on the same point hides it */
    }
    free(line);
    fclose(f);
    return rc;
}

/* The part of cgpath below the mount's root, e.g. "/x" for cgpath
 * "/docker/abc/x" and root "/docker/abc". */
static int strip_root(const char *cgpath, const char *root, char *rel,
                      size_t rellen, char *err, size_t errlen)
{
    if (!path_under(cgpath, root))
        return fail(err, errlen, -ENOENT,
                    "cgroup %s is outside the mounted part of the hierarchy (%s)",
                    cgpath, root);
    const char *rest = strcmp(root, "/") == 0 ? cgpath : cgpath + strlen(root);
    int n = snprintf(rel, rellen, "%s", rest[0] ? rest : "/");
    if (n < 0 || (size_t)n >= rellen)
        return fail(err, errlen, -ENAMETOOLONG, "cgroup path too long");
    return 0;
}

static int probe_v1(const char *cgpath, const char *mnt, cg_cpu *out,
                    char *err, size_t errlen)
{
    char mpoint[PATH_MAX], root[PATH_MAX], rel[PATH_MAX];
    /* libcgroup joins group names to the mount point, so a mount of a
     * subtree (a container's view) needs its root stripped first. */
    if (find_mount("cgroup", mnt, NULL, mpoint, sizeof mpoint, root,
                   sizeof root) < 0)
        strcpy(root, "/");
    int rc = strip_root(cgpath, root, rel, sizeof rel, err, errlen);
    if (rc < 0)
        return rc;
    return walk_levels(1, rel, root, read_level_libcgroup, NULL, out, err,
                       errlen);
}

static int probe_v2(const char *cgpath, cg_cpu *out, char *err,
                    size_t errlen)
{
    char mnt[PATH_MAX], root[PATH_MAX], rel[PATH_MAX];
    if (find_mount("cgroup2", NULL, cgpath, mnt, sizeof mnt, root,
                   sizeof root) < 0) {
        strcpy(mnt, CG_V2_DEFAULT_MOUNT);
        strcpy(root, "/");
    }
    int rc = strip_root(cgpath, root, rel, sizeof rel, err, errlen);
    if (rc < 0)
        return rc;
    char r[PATH_MAX];
    snprintf(r, sizeof r, "%s", strcmp(mnt, "/") == 0 ? "" : mnt);
    file_ctx fc = { .version = 2, .root = r };
    return walk_levels(2, rel, root, read_level_files, &fc, out, err, errlen);
}

/* CPUs in pid's affinity mask, growing the set for hosts with more than
 * CPU_SETSIZE CPUs; fallback when it cannot be read. */
static int affinity_count(pid_t pid, int fallback)
{
    long conf = sysconf(_SC_NPROCESSORS_CONF);
    size_t ncpu = conf > 1024 && conf < (1L << 22) ? (size_t)conf : 1024;
    for (; ncpu <= ((size_t)1 << 22); ncpu *= 2) {
        cpu_set_t *set = CPU_ALLOC(ncpu);
        if (!set)
            return fallback;
        size_t size = CPU_ALLOC_SIZE(ncpu);
        CPU_ZERO_S(size, set);
        if (sched_getaffinity(pid, size, set) == 0) {
            int n = CPU_COUNT_S(size, set);
            CPU_FREE(set);
            return n > 0 ? n : fallback;
        }
        int e = errno;
        CPU_FREE(set);
        if (e != EINVAL)
            return fallback;
    }
    return fallback;
}

int cg_probe_pid(pid_t pid, cg_cpu *out, char *err, size_t errlen)
{
    char *text = NULL, *mnt = NULL;
    char cgpath[PATH_MAX];
    char proc[64];
    int rc, num_cpu = 0, affinity = 0;

    if (!out)
        return fail(err, errlen, -EINVAL, "no output");
    memset(out, 0, sizeof *out);
    if (pid < 0) {
        rc = fail(err, errlen, -EINVAL, "bad pid %ld", (long)pid);
        goto out;
    }

    if (pid == 0)
        snprintf(proc, sizeof proc, "/proc/self/cgroup");
    else
        snprintf(proc, sizeof proc, "/proc/%ld/cgroup", (long)pid);
    text = malloc(CG_PROC_MAX);
    if (!text) {
        rc = fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    rc = read_small_file(proc, text, CG_PROC_MAX);
    if (rc == -ENOENT || rc == -ESRCH) {
        rc = fail(err, errlen, -ESRCH, "%s: no such process", proc);
        goto out;
    }
    if (rc < 0) {
        rc = fail(err, errlen, rc, "%s: %s", proc, strerror(-rc));
        goto out;
    }

    long online = sysconf(_SC_NPROCESSORS_ONLN);
    num_cpu = online < 1 ? 1 : online > INT_MAX ? INT_MAX : (int)online;
    affinity = affinity_count(pid, num_cpu);

    /* A v1 cpu line means the cpu controller lives in a v1 hierarchy:
     * libcgroup 2.0.2 reads that. Otherwise (pure v2, or a hybrid host
     * whose cpu controller is in the unified tree) read cpu.max files. */
    rc = cg_parse_proc_cgroup(text, "cpu", cgpath, sizeof cgpath);
    if (rc == -ENAMETOOLONG) {
        rc = fail(err, errlen, rc, "%s: cgroup path too long", proc);
        goto out;
    }
    bool have_v1 = rc == 0;
    char why[320] = "";
    if (have_v1) {
        pthread_once(&lib_once, lib_init);
        if (lib_init_rc) {
            snprintf(why, sizeof why, "libcgroup: cgroup_init: %s",
                     cgroup_strerror(lib_init_rc));
        } else {
            int ecg = cgroup_get_subsys_mount_point("cpu", &mnt);
            if (ecg == 0 && mnt) {
                rc = probe_v1(cgpath, mnt, out, err, errlen);
                goto out;
            }
            snprintf(why, sizeof why,
                     "libcgroup: no mount point for the cpu controller: %s",
                     cgroup_strerror(ecg ? ecg : ECGROUPSUBSYSNOTMOUNTED));
        }
    }
    rc = cg_parse_proc_cgroup(text, "", cgpath, sizeof cgpath);
    if (rc == 0) {
        rc = probe_v2(cgpath, out, err, errlen);
    } else if (have_v1) {
        rc = fail(err, errlen, -ENODEV, "%s", why);
    } else {
        rc = fail(err, errlen, -ENOENT,
                  "%s: neither a cpu controller nor a cgroup v2 line", proc);
    }

out:
    if (rc == 0) {
        out->num_cpu = num_cpu;
        out->affinity = affinity;
    } else {
        memset(out, 0, sizeof *out);
    }
    free(mnt);
    free(text);
    return rc;
}
