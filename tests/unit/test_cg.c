/*
 * Tests for cgroup/cg.c: the pure parsers edge by edge, the file reader on
 * the fixture trees under tests/data/cgroup/ (one folder per case, see its
 * README.md), and the live probe on this machine.
 */
#include "tests/unit/registry.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup/cg.h"

#define assert_cpus(want, got) assert_true(fabs((want) - (got)) < 1e-9)

/* ---- cg_parse_cpu_max -------------------------------------------------- */

static void cpu_max_ok(const char *text, double want)
{
    double cpus = -1;
    int rc = cg_parse_cpu_max(text, &cpus);
    if (rc != 0)
        print_error("cpu.max \"%s\": rc %d\n", text, rc);
    assert_int_equal(rc, 0);
    assert_cpus(want, cpus);
}

static void cpu_max_bad(const char *text)
{
    double cpus = 42;
    int rc = cg_parse_cpu_max(text, &cpus);
    if (rc != -EINVAL)
        print_error("cpu.max \"%s\": rc %d, want -EINVAL\n", text, rc);
    assert_int_equal(rc, -EINVAL);
    assert_cpus(42, cpus); /* untouched on error */
}

static void test_cpu_max_values(void **state)
{
    (void)state;
    cpu_max_ok("max 100000", 0);
    cpu_max_ok("max 100000\n", 0);
    cpu_max_ok("max", 0);
    cpu_max_ok("150000 100000\n", 1.5);
    cpu_max_ok("  150000\t100000  \n", 1.5);
    cpu_max_ok("150000", 1.5);           /* lone quota, default period */
    cpu_max_ok("150000\n", 1.5);
    cpu_max_ok("150000 100000 5000", 1.5); /* extra burst token */
    cpu_max_ok("150000 100000 anything else", 1.5);
    cpu_max_ok("50000 50000", 1);
    cpu_max_ok("1000 1000000", 0.001);
    cpu_max_ok("6400000 100000", 64);
    cpu_max_ok("18446744073709551615 1", 18446744073709551615.0);
}

static void test_cpu_max_garbage(void **state)
{
    (void)state;
    cpu_max_bad("");
    cpu_max_bad("\n");
    cpu_max_bad("   ");
    cpu_max_bad("abc");
    cpu_max_bad("MAX 100000");
    cpu_max_bad("max max");
    cpu_max_bad("max 0");
    cpu_max_bad("max abc");
    cpu_max_bad("150000 abc");
    cpu_max_bad("150000 100000garbage");
    cpu_max_bad("150000x 100000");
    cpu_max_bad("-5 100000");
    cpu_max_bad("+5 100000");
    cpu_max_bad("150000 -100000");
    cpu_max_bad("1.5 100000");
    cpu_max_bad("1e5 100000");
    cpu_max_bad("0x10 100000");
    cpu_max_bad("18446744073709551616 100000"); /* overflow */
    cpu_max_bad("150000 99999999999999999999999");
}

static void test_cpu_max_zero(void **state)
{
    (void)state;
    cpu_max_bad("150000 0");  /* zero period */
    cpu_max_bad("150000 00");
    cpu_max_bad("0 100000");  /* zero quota would read as unlimited */
    double cpus;
    assert_int_equal(cg_parse_cpu_max(NULL, &cpus), -EINVAL);
    assert_int_equal(cg_parse_cpu_max("max", NULL), -EINVAL);
}

/* ---- cg_v1_cpus -------------------------------------------------------- */

static void test_v1_cpus(void **state)
{
    (void)state;
    double cpus = -1;
    assert_int_equal(cg_v1_cpus(-1, 100000, &cpus), 0);
    assert_cpus(0, cpus);
    assert_int_equal(cg_v1_cpus(-5, 100000, &cpus), 0); /* any < 0 */
    assert_cpus(0, cpus);
    assert_int_equal(cg_v1_cpus(150000, 100000, &cpus), 0);
    assert_cpus(1.5, cpus);
    assert_int_equal(cg_v1_cpus(1000, 1000000, &cpus), 0);
    assert_cpus(0.001, cpus);
    assert_int_equal(cg_v1_cpus(25000, 50000, &cpus), 0);
    assert_cpus(0.5, cpus);

    cpus = 42;
    assert_int_equal(cg_v1_cpus(100000, 0, &cpus), -EINVAL);
    assert_int_equal(cg_v1_cpus(100000, -1, &cpus), -EINVAL);
    assert_int_equal(cg_v1_cpus(-1, 0, &cpus), -EINVAL);
    assert_int_equal(cg_v1_cpus(0, 100000, &cpus), -EINVAL);
    assert_int_equal(cg_v1_cpus(100000, LLONG_MIN, &cpus), -EINVAL);
    assert_cpus(42, cpus);
    assert_int_equal(cg_v1_cpus(100000, 100000, NULL), -EINVAL);
}

/* ---- cg_parse_cpu_stat ------------------------------------------------- */

static void test_cpu_stat(void **state)
{
    (void)state;
    cg_throttle t;
    assert_int_equal(cg_parse_cpu_stat("nr_periods 10\nnr_throttled 2\n"
                                       "throttled_time 3999\nnr_bursts 0\n"
                                       "burst_time 0\n", 1, &t), 0);
    assert_true(t.periods == 10 && t.throttled_periods == 2);
    assert_true(t.throttled_us == 3); /* ns, rounded down to us */
    assert_int_equal(cg_parse_cpu_stat("usage_usec 1\nuser_usec 1\n"
                                       "system_usec 0\nnr_periods 5\n"
                                       "nr_throttled 1\nthrottled_usec 70",
                                       2, &t), 0);
    assert_true(t.periods == 5 && t.throttled_periods == 1 &&
                t.throttled_us == 70);
    /* Order does not matter; unknown keys with any value are skipped. */
    assert_int_equal(cg_parse_cpu_stat("throttled_usec 1\nweird x y\n"
                                       "nr_throttled 2\nnr_periods 3\n",
                                       2, &t), 0);
    assert_true(t.periods == 3 && t.throttled_periods == 2 &&
                t.throttled_us == 1);

    cg_throttle keep = { 1, 2, 3 };
    t = keep;
    /* v2 names in a v1 file and the other way round: a key is missing. */
    assert_int_equal(cg_parse_cpu_stat("nr_periods 1\nnr_throttled 1\n"
                                       "throttled_usec 1\n", 1, &t), -ENOENT);
    assert_int_equal(cg_parse_cpu_stat("nr_periods 1\nnr_throttled 1\n"
                                       "throttled_time 1\n", 2, &t), -ENOENT);
    assert_int_equal(cg_parse_cpu_stat("usage_usec 1\n", 2, &t), -ENOENT);
    assert_int_equal(cg_parse_cpu_stat("", 2, &t), -ENOENT);
    assert_int_equal(cg_parse_cpu_stat("nr_periods -1\nnr_throttled 1\n"
                                       "throttled_usec 1\n", 2, &t), -EINVAL);
    assert_int_equal(cg_parse_cpu_stat("nr_periods 1\nnr_throttled 1\n"
                                       "throttled_usec 1x\n", 2, &t), -EINVAL);
    assert_int_equal(cg_parse_cpu_stat("nr_periods 1\nnr_periods 2\n"
                                       "nr_throttled 1\nthrottled_usec 1\n",
                                       2, &t), -EINVAL);
    assert_int_equal(cg_parse_cpu_stat("nr_periods\nnr_throttled 1\n"
                                       "throttled_usec 1\n", 2, &t), -ENOENT);
    assert_memory_equal(&t, &keep, sizeof t); /* untouched on error */
    assert_int_equal(cg_parse_cpu_stat(NULL, 2, &t), -EINVAL);
    assert_int_equal(cg_parse_cpu_stat("x", 3, &t), -EINVAL);
    assert_int_equal(cg_parse_cpu_stat("x", 2, NULL), -EINVAL);
}

/* ---- cg_parse_proc_cgroup ---------------------------------------------- */

/* /proc/self/cgroup on a hybrid host like the CI machine. */
static const char hybrid[] =
    "9:name=systemd:/\n"
    "8:pids:/\n"
    "4:memory:/process_api/69f9\n"
    "3:cpuset:/pinned\n"
    "2:cpuacct:/acct\n"
    "1:cpu:/gotuned-test/child\n"
    "0::/\n";

static void proc_ok(const char *text, const char *ctrl, const char *want)
{
    char path[256] = "";
    int rc = cg_parse_proc_cgroup(text, ctrl, path, sizeof path);
    if (rc != 0)
        print_error("controller \"%s\": rc %d\n", ctrl, rc);
    assert_int_equal(rc, 0);
    assert_string_equal(path, want);
}

static void proc_none(const char *text, const char *ctrl)
{
    char path[256] = "unchanged";
    assert_int_equal(cg_parse_proc_cgroup(text, ctrl, path, sizeof path),
                     -ENOENT);
}

static void test_proc_cgroup_hybrid(void **state)
{
    (void)state;
    proc_ok(hybrid, "cpu", "/gotuned-test/child");
    proc_ok(hybrid, "cpuset", "/pinned");
    proc_ok(hybrid, "cpuacct", "/acct");
    proc_ok(hybrid, "memory", "/process_api/69f9");
    proc_ok(hybrid, "", "/");
    proc_ok(hybrid, "name=systemd", "/");
    proc_none(hybrid, "systemd");  /* a named hierarchy is not a controller */
    proc_none(hybrid, "blkio");
    proc_none(hybrid, "cp");       /* no prefix matches */
}

static void test_proc_cgroup_comounted(void **state)
{
    (void)state;
    const char *text = "4:cpuset:/x\n"
                       "3:cpu,cpuacct:/docker/abc\n"
                       "2:net_cls,net_prio:/\n";
    proc_ok(text, "cpu", "/docker/abc");
    proc_ok(text, "cpuacct", "/docker/abc");
    proc_ok(text, "net_prio", "/");
    proc_none(text, "");           /* a pure v1 host has no 0:: line */
    proc_none("3:cpuset,cpuacct:/x\n", "cpu");
}

static void test_proc_cgroup_v2(void **state)
{
    (void)state;
    const char *text = "0::/user.slice/user-1000.slice/session-2.scope\n";
    proc_ok(text, "", "/user.slice/user-1000.slice/session-2.scope");
    proc_none(text, "cpu");
    proc_ok("0::/a:b\n", "", "/a:b");           /* ':' inside the path */
    proc_ok("0::/with space/x\n", "", "/with space/x");
    proc_ok("0::/no-newline", "", "/no-newline");
    proc_ok("0::/kubepods/pod (deleted)\n", "", "/kubepods/pod (deleted)");
}

static void test_proc_cgroup_malformed(void **state)
{
    (void)state;
    proc_none("", "cpu");
    proc_none("\n\n", "");
    proc_none("garbage\n", "cpu");
    proc_none("1:cpu\n", "cpu");       /* no path field */
    proc_none("x:cpu:/a\n", "cpu");    /* id is not a number */
    proc_none(":cpu:/a\n", "cpu");     /* empty id */
    proc_none("0::\n", "");            /* empty path */
    proc_ok("garbage\nx:cpu:/bad\n1:cpu:/good\n", "cpu", "/good");

    char small[5]; /* "/abcd" needs 6 bytes with its NUL */
    assert_int_equal(cg_parse_proc_cgroup("1:cpu:/abcd\n", "cpu", small,
                                          sizeof small), -ENAMETOOLONG);
    char exact[6];
    assert_int_equal(cg_parse_proc_cgroup("1:cpu:/abcd\n", "cpu", exact,
                                          sizeof exact), 0);
    assert_string_equal(exact, "/abcd");
    assert_int_equal(cg_parse_proc_cgroup(NULL, "cpu", exact, sizeof exact),
                     -EINVAL);
    assert_int_equal(cg_parse_proc_cgroup("1:cpu:/\n", NULL, exact,
                                          sizeof exact), -EINVAL);
    assert_int_equal(cg_parse_proc_cgroup("1:cpu:/\n", "cpu", NULL, 4),
                     -EINVAL);
    assert_int_equal(cg_parse_proc_cgroup("1:cpu:/\n", "cpu", exact, 0),
                     -EINVAL);
}

/* ---- cg_probe_files on the fixture trees ------------------------------- */

typedef struct fixture_case {
    int version;
    char path[256];
    char error[32];        /* errno name, "" when success is expected */
    double limit, leaf_limit;
    int parent_tighter;
    char source[256];
    int throttling;        /* -1 not checked, 0 "none", 1 the three values */
    unsigned long long periods, throttled, throttled_us;
    unsigned seen;         /* bit per key, to catch incomplete expect files */
} fixture_case;

enum { K_VERSION = 1, K_PATH = 2, K_ERROR = 4, K_LIMIT = 8, K_LEAF = 16,
       K_PT = 32, K_SOURCE = 64, K_THROTTLING = 128 };

static int errno_by_name(const char *name)
{
    static const struct { const char *name; int code; } names[] = {
        { "EINVAL", EINVAL }, { "ENOENT", ENOENT },
        { "ENAMETOOLONG", ENAMETOOLONG }, { "EFBIG", EFBIG },
        { "EACCES", EACCES },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i].name, name) == 0)
            return names[i].code;
    return 0;
}

static int copy_value(char *dst, size_t cap, const char *v)
{
    size_t n = strlen(v);
    if (n >= cap)
        return -1;
    memcpy(dst, v, n + 1);
    return 0;
}

/* Parses an expect file; returns a message on error, NULL when fine. */
static const char *parse_expect(char *text, fixture_case *fc)
{
    memset(fc, 0, sizeof *fc);
    fc->throttling = -1;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *eq = strchr(line, '=');
        if (!eq)
            return "a line without '='";
        *eq = '\0';
        const char *k = line, *v = eq + 1;
        if (strcmp(k, "version") == 0) {
            fc->version = atoi(v);
            fc->seen |= K_VERSION;
        } else if (strcmp(k, "path") == 0) {
            if (copy_value(fc->path, sizeof fc->path, v) < 0)
                return "path too long";
            fc->seen |= K_PATH;
        } else if (strcmp(k, "error") == 0) {
            if (copy_value(fc->error, sizeof fc->error, v) < 0 ||
                errno_by_name(v) == 0)
                return "unknown error name";
            fc->seen |= K_ERROR;
        } else if (strcmp(k, "limit") == 0) {
            fc->limit = strtod(v, NULL);
            fc->seen |= K_LIMIT;
        } else if (strcmp(k, "leaf_limit") == 0) {
            fc->leaf_limit = strtod(v, NULL);
            fc->seen |= K_LEAF;
        } else if (strcmp(k, "parent_tighter") == 0) {
            fc->parent_tighter = atoi(v);
            fc->seen |= K_PT;
        } else if (strcmp(k, "source") == 0) {
            if (copy_value(fc->source, sizeof fc->source, v) < 0)
                return "source too long";
            fc->seen |= K_SOURCE;
        } else if (strcmp(k, "throttling") == 0) {
            if (strcmp(v, "none") == 0) {
                fc->throttling = 0;
            } else if (sscanf(v, "%llu %llu %llu", &fc->periods,
                              &fc->throttled, &fc->throttled_us) == 3) {
                fc->throttling = 1;
            } else {
                return "throttling is \"none\" or three counters";
            }
            fc->seen |= K_THROTTLING;
        } else {
            return "unknown key";
        }
    }
    if ((fc->seen & (K_VERSION | K_PATH)) != (K_VERSION | K_PATH))
        return "version and path are required";
    unsigned ok = K_LIMIT | K_LEAF | K_PT | K_SOURCE;
    if (!(fc->seen & K_ERROR) && (fc->seen & ok) != ok)
        return "limit, leaf_limit, parent_tighter and source are required";
    if ((fc->seen & K_ERROR) && (fc->seen & ok))
        return "error excludes the other results";
    return NULL;
}

/* Runs one case folder; returns 0 when it passed, printing why not. */
static int run_fixture(const char *name)
{
    char rel[512], root[4096], expect_path[4096];
    snprintf(rel, sizeof rel, "cgroup/%s/expect", name);
    snprintf(expect_path, sizeof expect_path, "%s", unit_data_path(rel));
    snprintf(rel, sizeof rel, "cgroup/%s/root", name);
    snprintf(root, sizeof root, "%s", unit_data_path(rel));

    char *text = unit_read_file(expect_path, NULL);
    if (!text) {
        print_error("%s: cannot read %s\n", name, expect_path);
        return 1;
    }
    fixture_case fc;
    const char *bad = parse_expect(text, &fc);
    free(text);
    if (bad) {
        print_error("%s: bad expect file: %s\n", name, bad);
        return 1;
    }

    cg_cpu got;
    char err[512] = "";
    int rc = cg_probe_files(fc.version, root, fc.path, 7, 3, &got, err,
                            sizeof err);
    if (fc.error[0]) {
        int want = -errno_by_name(fc.error);
        if (rc != want) {
            print_error("%s: rc %d (%s), want -%s\n", name, rc, err,
                        fc.error);
            return 1;
        }
        if (!err[0]) {
            print_error("%s: error without a message\n", name);
            return 1;
        }
        return 0;
    }
    if (rc != 0) {
        print_error("%s: rc %d: %s\n", name, rc, err);
        return 1;
    }
    int failed = 0;
    if (fabs(got.limit - fc.limit) > 1e-9) {
        print_error("%s: limit %g, want %g\n", name, got.limit, fc.limit);
        failed = 1;
    }
    if (fabs(got.leaf_limit - fc.leaf_limit) > 1e-9) {
        print_error("%s: leaf_limit %g, want %g\n", name, got.leaf_limit,
                    fc.leaf_limit);
        failed = 1;
    }
    if ((int)got.parent_tighter != fc.parent_tighter) {
        print_error("%s: parent_tighter %d, want %d\n", name,
                    (int)got.parent_tighter, fc.parent_tighter);
        failed = 1;
    }
    if (strcmp(got.source, fc.source) != 0) {
        print_error("%s: source \"%s\"\n%*s want \"%s\"\n", name, got.source,
                    (int)strlen(name), "", fc.source);
        failed = 1;
    }
    if (fc.throttling == 0 && got.have_throttling) {
        print_error("%s: throttling read, want none\n", name);
        failed = 1;
    }
    if (fc.throttling == 1 &&
        (!got.have_throttling || got.throttling.periods != fc.periods ||
         got.throttling.throttled_periods != fc.throttled ||
         got.throttling.throttled_us != fc.throttled_us)) {
        print_error("%s: throttling %d %llu %llu %llu, want %llu %llu %llu\n",
                    name, (int)got.have_throttling, got.throttling.periods,
                    got.throttling.throttled_periods,
                    got.throttling.throttled_us, fc.periods, fc.throttled,
                    fc.throttled_us);
        failed = 1;
    }
    if (got.num_cpu != 7 || got.affinity != 3) {
        print_error("%s: num_cpu/affinity not copied\n", name);
        failed = 1;
    }
    return failed;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_fixtures(void **state)
{
    (void)state;
    char top[4096];
    snprintf(top, sizeof top, "%s", unit_data_path("cgroup"));
    DIR *d = opendir(top);
    if (!d)
        fail_msg("cannot open %s (run from the repository root)", top);

    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char full[4096 + 256];
        struct stat st;
        snprintf(full, sizeof full, "%s/%s", top, e->d_name);
        if (stat(full, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        assert_true(n < sizeof names / sizeof names[0]);
        names[n] = strdup(e->d_name);
        assert_non_null(names[n]);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_names);

    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        failed += run_fixture(names[i]);
        free(names[i]);
    }
    /* The folder ships with 32 cases: fewer means data went missing. */
    if (n < 32)
        fail_msg("only %zu fixture cases under %s", n, top);
    if (failed)
        fail_msg("%d of %zu fixture cases failed", failed, n);
}

/* ---- cg_probe_files: arguments and what the fixtures cannot hold ------- */

static const char *fixture_root(const char *name)
{
    static char buf[4096];
    char rel[256];
    snprintf(rel, sizeof rel, "cgroup/%s/root", name);
    snprintf(buf, sizeof buf, "%s", unit_data_path(rel));
    return buf;
}

static void test_files_arguments(void **state)
{
    (void)state;
    cg_cpu out;
    char err[256];
    char root[4096];
    snprintf(root, sizeof root, "%s", fixture_root("v2-leaf-limited"));

    assert_int_equal(cg_probe_files(3, root, "/app", 1, 1, &out, err,
                                    sizeof err), -EINVAL);
    assert_int_equal(cg_probe_files(0, root, "/app", 1, 1, &out, err,
                                    sizeof err), -EINVAL);
    assert_int_equal(cg_probe_files(2, NULL, "/app", 1, 1, &out, err,
                                    sizeof err), -EINVAL);
    assert_int_equal(cg_probe_files(2, "", "/app", 1, 1, &out, err,
                                    sizeof err), -EINVAL);
    assert_int_equal(cg_probe_files(2, root, NULL, 1, 1, &out, err,
                                    sizeof err), -EINVAL);
    assert_int_equal(cg_probe_files(2, root, "", 1, 1, &out, err,
                                    sizeof err), -EINVAL);
    assert_int_equal(cg_probe_files(2, root, "/app", 1, 1, NULL, err,
                                    sizeof err), -EINVAL);
    /* err may be absent */
    assert_int_equal(cg_probe_files(2, root, "/nope", 1, 1, &out, NULL, 0),
                     -ENOENT);
    assert_int_equal(cg_probe_files(2, root, "/app/svc/cpu.max", 1, 1, &out,
                                    err, sizeof err), -ENOENT);
    assert_int_equal(cg_probe_files(2, "/nonexistent-gotuned-root", "/", 1,
                                    1, &out, err, sizeof err), -ENOENT);
}

static void test_files_traversal(void **state)
{
    (void)state;
    cg_cpu out;
    char err[256];
    char root[4096];
    snprintf(root, sizeof root, "%s", fixture_root("v2-leaf-limited"));
    static const char *const bad[] = {
        "/..", "/../", "/app/..", "/app/../..", "/app/svc/../../../etc",
        "/./app", "/app/.", "/..hidden/../x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        int rc = cg_probe_files(2, root, bad[i], 1, 1, &out, err, sizeof err);
        if (rc != -EINVAL)
            print_error("path \"%s\": rc %d\n", bad[i], rc);
        assert_int_equal(rc, -EINVAL);
        assert_non_null(strstr(err, bad[i]));
    }
    /* Names that merely start with dots are ordinary names. */
    assert_int_equal(cg_probe_files(2, root, "/..hidden", 1, 1, &out, err,
                                    sizeof err), -ENOENT);
}

static void test_files_normalizes(void **state)
{
    (void)state;
    cg_cpu out;
    char err[256] = "";
    char root[4096 + 8];
    snprintf(root, sizeof root, "%s/", fixture_root("v2-leaf-limited"));
    assert_int_equal(cg_probe_files(2, root, "//app///svc/", 4, 2, &out, err,
                                    sizeof err), 0);
    assert_cpus(1.5, out.limit);
    assert_string_equal(out.source,
                        "cgroup v2 /app/svc (cpu.max=150000 100000)");
    assert_int_equal(out.num_cpu, 4);
    assert_int_equal(out.affinity, 2);
}

/* A scratch tree in /tmp for what a fixture folder should not hold. */
static char *scratch_new(void)
{
    char *dir = strdup("/tmp/gotuned-test-cg-XXXXXX");
    assert_non_null(dir);
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void test_files_oversized(void **state)
{
    (void)state;
    char *dir = scratch_new();
    char path[4096];
    snprintf(path, sizeof path, "%s/a", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/a/cpu.max", dir);
    /* Valid text padded past the 4096-byte cap: refused, not truncated. */
    char big[5000];
    memset(big, ' ', sizeof big);
    memcpy(big, "150000 100000", 13);
    big[sizeof big - 1] = '\n';
    write_file(path, big, sizeof big);
    cg_cpu out;
    char err[256] = "";
    assert_int_equal(cg_probe_files(2, dir, "/a", 1, 1, &out, err,
                                    sizeof err), -EFBIG);
    assert_non_null(strstr(err, "too large"));

    /* A NUL byte inside the file is not text. */
    write_file(path, "150000\0 100000\n", 15);
    assert_int_equal(cg_probe_files(2, dir, "/a", 1, 1, &out, err,
                                    sizeof err), -EINVAL);

    /* Just under the cap is fine. */
    write_file(path, big, 4095);
    assert_int_equal(cg_probe_files(2, dir, "/a", 1, 1, &out, err,
                                    sizeof err), 0);
    assert_cpus(1.5, out.limit);

    unlink(path);
    snprintf(path, sizeof path, "%s/a", dir);
    rmdir(path);
    rmdir(dir);
    free(dir);
}

static void test_files_long_source(void **state)
{
    (void)state;
    char *dir = scratch_new();
    char path[4096], cg[2048] = "";
    size_t dlen = strlen(dir);
    snprintf(path, sizeof path, "%s", dir);
    for (int i = 0; i < 12; i++) {
        char comp[48];
        snprintf(comp, sizeof comp, "/level-%02d-abcdefghijklmnopqrstuvw", i);
        strcat(cg, comp);
        strcat(path, comp);
        assert_int_equal(mkdir(path, 0755), 0);
    }
    char file[4096 + 16];
    snprintf(file, sizeof file, "%s/cpu.max", path);
    write_file(file, "150000 100000\n", 14);

    cg_cpu out;
    char err[256] = "";
    assert_int_equal(cg_probe_files(2, dir, cg, 1, 1, &out, err, sizeof err),
                     0);
    /* The path is shortened from the left; the values always survive. */
    const char *tail = "level-11-abcdefghijklmnopqrstuvw "
                       "(cpu.max=150000 100000)";
    size_t n = strlen(out.source), tn = strlen(tail);
    assert_true(n < sizeof out.source);
    assert_true(n > tn);
    assert_string_equal(out.source + n - tn, tail);
    assert_memory_equal(out.source, "cgroup v2 ...", 13);

    unlink(file);
    while (strlen(path) > dlen) {
        rmdir(path);
        *strrchr(path, '/') = '\0';
    }
    rmdir(dir);
    free(dir);
}

/* ---- cg_probe_pid on this machine -------------------------------------- */

static void test_probe_self(void **state)
{
    (void)state;
    cg_cpu self, bypid;
    char err[512] = "";
    int rc = cg_probe_pid(0, &self, err, sizeof err);
    if (rc != 0)
        fail_msg("cg_probe_pid(0): %d %s", rc, err);
    assert_true(self.num_cpu >= 1);
    assert_true(self.affinity >= 1);
    assert_true(self.limit >= 0);
    assert_true(self.leaf_limit >= 0);
    assert_true(strlen(self.source) > 0);
    if (self.limit == 0) {
        assert_string_equal(self.source, "none");
        assert_false(self.parent_tighter);
    } else {
        assert_memory_equal(self.source, "cgroup v", 8);
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(self.num_cpu, online);
    /* Every kernel with CFS bandwidth control has the three counters in the
     * cpu controller's cpu.stat (this host: v1 through libcgroup). */
    if (self.have_throttling)
        assert_true(self.throttling.throttled_periods <=
                    self.throttling.periods);

    rc = cg_probe_pid(getpid(), &bypid, err, sizeof err);
    if (rc != 0)
        fail_msg("cg_probe_pid(getpid()): %d %s", rc, err);
    assert_cpus(self.limit, bypid.limit);
    assert_string_equal(self.source, bypid.source);
    assert_int_equal(self.affinity, bypid.affinity);

    /* Twice in a row: libcgroup is initialised once and stays usable. */
    assert_int_equal(cg_probe_pid(0, &bypid, err, sizeof err), 0);
    assert_string_equal(self.source, bypid.source);
}

static void test_probe_bad_pid(void **state)
{
    (void)state;
    cg_cpu out;
    char err[256] = "";
    assert_int_equal(cg_probe_pid(-1, &out, err, sizeof err), -EINVAL);
    /* Above the kernel's pid_max limit (2^22): never a live process. */
    err[0] = '\0';
    assert_int_equal(cg_probe_pid(INT_MAX, &out, err, sizeof err), -ESRCH);
    assert_non_null(strstr(err, "no such process"));
    assert_int_equal(cg_probe_pid(0, NULL, err, sizeof err), -EINVAL);
}

int test_cg(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_max_values),
        cmocka_unit_test(test_cpu_max_garbage),
        cmocka_unit_test(test_cpu_max_zero),
        cmocka_unit_test(test_v1_cpus),
        cmocka_unit_test(test_cpu_stat),
        cmocka_unit_test(test_proc_cgroup_hybrid),
        cmocka_unit_test(test_proc_cgroup_comounted),
        cmocka_unit_test(test_proc_cgroup_v2),
        cmocka_unit_test(test_proc_cgroup_malformed),
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_files_arguments),
        cmocka_unit_test(test_files_traversal),
        cmocka_unit_test(test_files_normalizes),
        cmocka_unit_test(test_files_oversized),
        cmocka_unit_test(test_files_long_source),
        cmocka_unit_test(test_probe_self),
        cmocka_unit_test(test_probe_bad_pid),
    };
    return cmocka_run_group_tests_name("cg", tests, NULL, NULL);
}
