/*
 * test_schedtrace.c — tests for tuner/schedtrace.c.
 *
 * Most cases are data: one folder per case under tests/data/schedtrace/
 * with input.txt (fed line by line, then st_parser_finish) and
 * expected.txt (one event per line; the format is in
 * tests/data/schedtrace/README.md). A new case needs no C. The tests here
 * add what files cannot say well: the API contract, 1024-P lines built in
 * code, and a small fuzz loop that checks the sink's invariants.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/unit/registry.h"
#include "tuner/schedtrace.h"

/* ------------------------------------------------------------ recording */

typedef struct rec {
    char *buf;              /* every event, formatted as in expected.txt */
    size_t len, cap;
    size_t nsample, nline, nreject;
    int bad_sample;         /* a sample that broke the header's promises */
} rec;

static void rec_add(rec *r, const char *s, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *nb = realloc(r->buf, cap);
        assert_non_null(nb);
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, s, n);
    r->len += n;
    r->buf[r->len] = '\0';
}

static void rec_str(rec *r, const char *s)
{
    rec_add(r, s, strlen(s));
}

/* The escaping of expected.txt: backslash, control bytes and DEL. */
static void rec_esc(rec *r, const char *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        char tmp[8];
        if (c == '\\')
            rec_str(r, "\\\\");
        else if (c == '\n')
            rec_str(r, "\\n");
        else if (c == '\r')
            rec_str(r, "\\r");
        else if (c == '\t')
            rec_str(r, "\\t");
        else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof tmp, "\\x%02x", c);
            rec_str(r, tmp);
        } else {
            rec_add(r, (const char *)&c, 1);
        }
    }
}

static void on_sample(void *ud, const tuner_sample *s)
{
    rec *r = ud;
    char tmp[256];
    snprintf(tmp, sizeof tmp,
             "sample ts=%lld gomaxprocs=%d idle=%d threads=%d spinning=%d idlethreads=%d "
             "needspinning=%d runq=%lld local=",
             (long long)s->ts_ms, s->gomaxprocs, s->idle_procs, s->threads, s->spinning_threads,
             s->idle_threads, s->needspinning, (long long)s->global_runq);
    rec_str(r, tmp);
    if (s->nprocs < 1 || s->nprocs > TUNER_MAX_PROCS || !s->local_runq ||
        (s->gomaxprocs != -1 && (uint32_t)s->gomaxprocs != s->nprocs))
        r->bad_sample++;
    for (uint32_t i = 0; s->local_runq && i < s->nprocs && i < TUNER_MAX_PROCS; i++) {
        snprintf(tmp, sizeof tmp, i ? ",%d" : "%d", s->local_runq[i]);
        rec_str(r, tmp);
    }
    rec_str(r, "\n");
    r->nsample++;
}

static void on_line(void *ud, const char *t, size_t n)
{
    rec *r = ud;
    rec_str(r, "line ");
    rec_esc(r, t, n);
    rec_str(r, "\n");
    r->nline++;
}

static void on_reject(void *ud, const char *why, const char *t, size_t n)
{
    rec *r = ud;
    rec_str(r, "reject ");
    rec_str(r, why);
    rec_str(r, ": ");
    rec_esc(r, t, n);
    rec_str(r, "\n");
    r->nreject++;
}

static st_sink rec_sink(rec *r)
{
    st_sink k = { on_sample, on_line, on_reject, r };
    return k;
}

/* Feeds buf line by line (a last line without '\n' counts), then finishes. */
static void feed_lines(st_parser *p, const char *buf, size_t len, const st_sink *k)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - buf) : len;
        st_parser_line(p, buf + i, end - i, k);
        i = end + 1;
    }
    st_parser_finish(p, k);
}

/* --------------------------------------------------------- data driven */

/* expected.txt without its comment lines (#...) and blank lines. */
static char *strip_expected(const char *in)
{
    size_t n = strlen(in);
    char *out = malloc(n + 2);
    assert_non_null(out);
    size_t o = 0;
    const char *s = in;
    while (*s) {
        const char *e = strchr(s, '\n');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l > 0 && s[0] != '#') {
            memcpy(out + o, s, l);
            o += l;
            out[o++] = '\n';
        }
        s += l + (e ? 1 : 0);
    }
    out[o] = '\0';
    return out;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs one case folder; returns 0 or prints the first difference. */
static int run_case(const char *name)
{
    char path[4096];
    size_t ilen = 0;
    snprintf(path, sizeof path, "%s/%s/input.txt", unit_data_path("schedtrace"), name);
    char *input = unit_read_file(path, &ilen);
    snprintf(path, sizeof path, "%s/%s/expected.txt", unit_data_path("schedtrace"), name);
    char *exp_raw = unit_read_file(path, NULL);
    if (!input || !exp_raw) {
        fprintf(stderr, "schedtrace case %s: cannot read input.txt/expected.txt\n", name);
        free(input);
        free(exp_raw);
        return 1;
    }
    char *expected = strip_expected(exp_raw);
    rec r = { 0 };
    st_sink k = rec_sink(&r);
    st_parser *p = st_parser_new();
    assert_non_null(p);
    feed_lines(p, input, ilen, &k);
    st_parser_free(p);

    int fail = 0;
    const char *a = r.buf ? r.buf : "", *e = expected;
    if (strcmp(a, e) != 0) {
        fail = 1;
        int lineno = 1;
        while (*a && *e && *a == *e) {
            if (*a == '\n')
                lineno++;
            a++;
            e++;
        }
        while (a > (r.buf ? r.buf : "") && a[-1] != '\n' && e > expected && e[-1] != '\n') {
            a--;
            e--;
        }
        const char *ae = strchr(a, '\n'), *ee = strchr(e, '\n');
        fprintf(stderr, "schedtrace case %s: event %d differs\n  expected: %.*s\n  actual:   %.*s\n",
                name, lineno, ee ? (int)(ee - e) : (int)strlen(e), e,
                ae ? (int)(ae - a) : (int)strlen(a), a);
    }
    if (r.bad_sample) {
        fail = 1;
        fprintf(stderr, "schedtrace case %s: a sample broke the invariants\n", name);
    }
    free(r.buf);
    free(input);
    free(exp_raw);
    free(expected);
    return fail;
}

static void test_data_cases(void **state)
{
    (void)state;
    const char *dir = unit_data_path("schedtrace");
    DIR *d = opendir(dir);
    assert_non_null(d);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s/input.txt", dir, de->d_name);
        if (stat(path, &st) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *names);
            assert_non_null(nn);
            names = nn;
        }
        names[n] = strdup(de->d_name);
        assert_non_null(names[n]);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        failed += run_case(names[i]);
        free(names[i]);
    }
    free(names);
    fprintf(stderr, "schedtrace: %zu data cases, %d failed\n", n, failed);
    assert_true(n >= 30);
    assert_int_equal(failed, 0);
}

/* ------------------------------------------------------------ contract */

/* Runs a whole text through a fresh parser and returns the recording. */
static rec run_text(const char *text)
{
    rec r = { 0 };
    st_sink k = rec_sink(&r);
    st_parser *p = st_parser_new();
    assert_non_null(p);
    feed_lines(p, text, strlen(text), &k);
    st_parser_free(p);
    if (!r.buf)
        rec_str(&r, "");
    return r;
}

static void test_parse_buffer_and_reuse(void **state)
{
    (void)state;
    const char *text = "hello\nSCHED 5ms: gomaxprocs=2 idleprocs=0 threads=3 spinningthreads=0 "
                       "idlethreads=1 runqueue=4 [1 2]\nSCHED 9ms: gomaxprocs=2 [0";
    rec a = { 0 };
    st_sink k = rec_sink(&a);
    st_parse_buffer(text, strlen(text), &k);
    assert_string_equal(a.buf, "line hello\n"
                               "sample ts=5 gomaxprocs=2 idle=0 threads=3 spinning=0 idlethreads=1 "
                               "needspinning=-1 runq=4 local=1,2\n"
                               "reject truncated: SCHED 9ms: gomaxprocs=2 [0\n");
    /* A parser is reusable after st_parser_finish. */
    rec b = { 0 };
    st_sink kb = rec_sink(&b);
    st_parser *p = st_parser_new();
    assert_non_null(p);
    feed_lines(p, text, strlen(text), &kb);
    feed_lines(p, text, strlen(text), &kb);
    st_parser_free(p);
    assert_int_equal(b.len, 2 * a.len);
    assert_memory_equal(b.buf, a.buf, a.len);
    assert_memory_equal(b.buf + a.len, a.buf, a.len);
    free(a.buf);
    free(b.buf);
}

static void test_null_callbacks(void **state)
{
    (void)state;
    st_sink none = { NULL, NULL, NULL, NULL };
    const char *text = "x\nSCHED 1ms: gomaxprocs=1 [0]\nSCHED 2ms: [0 app\n0]\nSCHED 3ms: [";
    st_parse_buffer(text, strlen(text), &none);
    st_parser_free(NULL);
}

/* Builds a SCHED line with n Ps (values i % 7), Go 1.19 or Go 1.26 style;
 * gmp < 0 leaves gomaxprocs= out. */
static char *big_line(int n, int gmp, int padded, int ticks)
{
    size_t cap = (size_t)n * 24 + 256;
    char *s = malloc(cap);
    assert_non_null(s);
    int o = snprintf(s, cap, "SCHED 1000ms: ");
    if (gmp >= 0)
        o += snprintf(s + o, cap - (size_t)o, "gomaxprocs=%d ", gmp);
    o += snprintf(s + o, cap - (size_t)o,
                  "idleprocs=0 threads=9 spinningthreads=0 idlethreads=1 runqueue=7 [%s",
                  padded ? " " : "");
    for (int i = 0; i < n; i++)
        o += snprintf(s + o, cap - (size_t)o, padded ? "%d " : (i ? " %d" : "%d"), i % 7);
    o += snprintf(s + o, cap - (size_t)o, "]");
    if (ticks) {
        o += snprintf(s + o, cap - (size_t)o, " schedticks=[ ");
        for (int i = 0; i < ticks; i++)
            o += snprintf(s + o, cap - (size_t)o, "%d ", 100000 + i);
        o += snprintf(s + o, cap - (size_t)o, "]");
    }
    return s;
}

static void test_1024_ps(void **state)
{
    (void)state;
    char *ok = big_line(1024, 1024, 1, 1024);
    rec r = run_text(ok);
    assert_int_equal(r.nsample, 1);
    assert_int_equal(r.nreject, 0);
    assert_int_equal(r.bad_sample, 0);
    free(r.buf);

    char *many = big_line(1025, 1025, 0, 0);
    r = run_text(many);
    assert_int_equal(r.nsample, 0);
    assert_int_equal(r.nreject, 1);
    assert_non_null(strstr(r.buf, "reject too many Ps: "));
    free(r.buf);

    /* Without gomaxprocs= the count alone must still be capped. */
    char *nogmp = big_line(1025, -1, 0, 0);
    r = run_text(nogmp);
    assert_non_null(strstr(r.buf, "reject too many Ps: "));
    free(r.buf);
    free(ok);
    free(many);
    free(nogmp);
}

/* A 1024-P line split by an intruder in the middle of the per-P list (and
 * one in schedticks): reassembled, and the intruder handed back intact. */
static void test_1024_ps_split(void **state)
{
    (void)state;
    char *full = big_line(1024, 1024, 1, 1024);
    size_t n = strlen(full);
    const char *intr = "2026/12/04 10:00:00 worker=3 msg=\"hello\"";
    /* Split after the 500th value of the per-P list (after its space), and
     * again before the 901st tick. */
    const char *at = strchr(full, '[') + 2;
    for (int sp = 0; *at && sp < 500; at++)
        if (*at == ' ')
            sp++;
    size_t k = (size_t)(at - full);
    const char *t2 = strstr(full, "100900 ");
    assert_non_null(t2);
    size_t k2 = (size_t)(t2 - full);            /* before a number */
    size_t cap = n + 3 * strlen(intr) + 16;
    char *text = malloc(cap);
    assert_non_null(text);
    snprintf(text, cap, "%.*s%s\n%.*s%s\n%s", (int)k, full, intr, (int)(k2 - k), full + k, "hello",
             full + k2);
    rec r = run_text(text);
    assert_int_equal(r.nreject, 0);
    assert_int_equal(r.nsample, 1);
    assert_int_equal(r.nline, 2);
    assert_int_equal(r.bad_sample, 0);
    assert_non_null(strstr(r.buf, "line 2026/12/04 10:00:00 worker=3 msg=\"hello\"\nline hello\nsample "));
    /* Every per-P value is where it belongs. */
    char *want = malloc(1024 * 3 + 16);
    assert_non_null(want);
    int o = snprintf(want, 16, "local=");
    for (int i = 0; i < 1024; i++)
        o += snprintf(want + o, 8, i ? ",%d" : "%d", i % 7);
    snprintf(want + o, 2, "\n");
    assert_non_null(strstr(r.buf, want));
    free(want);
    free(r.buf);
    free(text);
    free(full);
}

/* Every line of the application must come back, whole, through line or
 * inside a reject's text. */
static void assert_app_lines_back(const rec *r, const char *const *app, size_t napp)
{
    for (size_t i = 0; i < napp; i++) {
        rec e = { 0 };
        rec_esc(&e, app[i], strlen(app[i]));
        if (!strstr(r->buf ? r->buf : "", e.buf ? e.buf : "")) {
            fprintf(stderr, "lost application text: %s\nin:\n%s\n", app[i], r->buf);
            fail();
        }
        free(e.buf);
    }
}

static const char *const fuzz_sched[] = {
    "SCHED 1004ms: gomaxprocs=8 idleprocs=2 threads=12 spinningthreads=1 idlethreads=5 "
    "runqueue=3 [0 9 0 1 0 0 4 0]",
    "SCHED 2005ms: gomaxprocs=4 idleprocs=0 threads=7 spinningthreads=0 needspinning=1 "
    "idlethreads=2 runqueue=2 [ 1 1 0 0 ] schedticks=[ 92 90 91 85 ]",
    "SCHED 30ms: gomaxprocs=2 idleprocs=0 threads=4 spinningthreads=0 idlethreads=1 runqueue=0 "
    "gcwaiting=0 nmidlelocked=0 stopwait=0 sysmonwait=0\n"
    "  P0: status=1 schedtick=5 syscalltick=0 m=3 runqsize=4 gfreecnt=0 timerslen=0\n"
    "  P1: status=0 schedtick=3 syscalltick=0 m=-1 runqsize=0 gfreecnt=0 timerslen=0\n"
    "  M3: p=0 curg=-1 mallocing=0 throwing=0 preemptoff= locks=1 dying=0 spinning=false "
    "blocked=false lockedg=-1\n"
    "  G1: status=1(chan receive) m=-1 lockedm=0",
};

static const char *const fuzz_app[] = {
    "2026/12/04 10:00:00 worker=1 msg=\"order validated\"",
    "level=info msg=started",
    "[INFO] hold 42",
    "",
};

/* True when the runtime could have ended a write at s[k]: after a value,
 * after '=', '[', '(' or a list space, or at the end of a line. Keys are
 * written together with their leading space and '='. */
static int write_boundary(const char *s, size_t k)
{
    char a = s[k - 1], b = s[k];
    if (b == '\0' || b == '\n')
        return 1;
    if (a >= '0' && a <= '9')
        return !(b >= '0' && b <= '9');
    if (a == ' ')
        return (b >= '0' && b <= '9') || b == ']';
    return a == '=' || a == '[' || a == '(' || a == '-';
}

/* Splits every SCHED text at every byte, with each application line as
 * the intruder, and cuts the stream at every byte: no crash, no sample
 * that breaks its header's promises, and where the split is one the
 * runtime can produce (between two of its writes), no lost application
 * text. */
static void test_fuzz_splits_and_cuts(void **state)
{
    (void)state;
    char buf[4096];
    for (size_t si = 0; si < sizeof fuzz_sched / sizeof fuzz_sched[0]; si++) {
        const char *s = fuzz_sched[si];
        size_t n = strlen(s);
        for (size_t ai = 0; ai < sizeof fuzz_app / sizeof fuzz_app[0]; ai++) {
            const char *app = fuzz_app[ai];
            for (size_t k = 0; k <= n; k++) {
                if (k > 0 && s[k - 1] == '\n')
                    continue;
                snprintf(buf, sizeof buf, "before\n%.*s%s\n%s\nafter", (int)k, s, app, s + k);
                rec r = run_text(buf);
                const char *back[] = { "before", "after", app };
                if (k >= 6 && write_boundary(s, k))
                    assert_app_lines_back(&r, back, 3);
                else
                    assert_app_lines_back(&r, back, 1);
                assert_int_equal(r.bad_sample, 0);
                free(r.buf);
            }
        }
        /* Every cut of "before + SCHED text + after". */
        snprintf(buf, sizeof buf, "before\n%s\nafter\n", s);
        size_t bl = strlen(buf);
        for (size_t cut = 0; cut <= bl; cut++) {
            char *c = strndup(buf, cut);
            assert_non_null(c);
            rec r = run_text(c);
            if (cut >= 7) {
                const char *back[] = { "before" };
                assert_app_lines_back(&r, back, 1);
            }
            assert_int_equal(r.bad_sample, 0);
            free(r.buf);
            free(c);
        }
    }
}

/* Random byte flips over a mixed stream: no crash, and every line handed
 * out is an input line or a suffix of one (an intruder). */
static void test_fuzz_flips(void **state)
{
    (void)state;
    const char *base = "app one\n"
                       "SCHED 10ms: gomaxprocs=4 idleprocs=0 threads=6 spinningthreads=0 "
                       "idlethreads=1 runqueue=0 [0 0 app 2026/12/04 msg=\"hello\"\n"
                       "0 0]\n"
                       "SCHED 20ms: gomaxprocs=2 idleprocs=0 threads=4 spinningthreads=0 "
                       "idlethreads=1 runqueue=0 gcwaiting=0 nmidlelocked=0 stopwait=0 sysmonwait=0\n"
                       "  P0: status=1 schedtick=5 syscalltick=0 m=3 runqsize=4 gfreecnt=0 timerslen=0\n"
                       "  P1: status=0 schedtick=3 syscalltick=0 m=nil runqsize=0 gfreecnt=0 timerslen=0\n"
                       "  M0: p=-1 curg=-1 mallocing=0 throwing=0 preemptoff= locks=1 dying=0 "
                       "spinning=false blocked=false lockedg=1\n"
                       "  G1: status=4(GC worker (idle)) m=-1 lockedm=-1\n"
                       "app two\n"
                       "SCHED 30ms: gomaxprocs=2 idleprocs=0 threads=4 spinningthreads=0 "
                       "needspinning=0 idlethreads=1 runqueue=0 [ 3 0 ] schedticks=[ 7 9 ]\n"
                       "SCHED 40ms: gomaxprocs=2 [1 2\n";
    size_t n = strlen(base);
    char *buf = malloc(n + 1);
    assert_non_null(buf);
    unsigned long long x = 88172645463325252ull;
    static const char alphabet[] = "0123456789 []=:-\nabcSCHEDPMG\r(x)";
    for (int round = 0; round < 3000; round++) {
        memcpy(buf, base, n + 1);
        int flips = 1 + round % 4;
        for (int f = 0; f < flips; f++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t at = (size_t)(x % n);
            buf[at] = alphabet[(x >> 20) % (sizeof alphabet - 1)];
        }
        rec r = run_text(buf);
        assert_int_equal(r.bad_sample, 0);
        /* Each "line" event's text is an input line or a suffix of one. */
        const char *ev = r.buf;
        while ((ev = strstr(ev, "line ")) != NULL) {
            if (ev != r.buf && ev[-1] != '\n') {
                ev += 5;
                continue;
            }
            const char *e = strchr(ev, '\n');
            size_t l = (size_t)(e - ev) - 5;
            char *t = strndup(ev + 5, l);
            assert_non_null(t);
            if (strchr(t, '\\') == NULL && l > 0) {
                int found = 0;
                const char *s = buf;
                while (*s && !found) {
                    const char *nl = strchr(s, '\n');
                    size_t sl = nl ? (size_t)(nl - s) : strlen(s);
                    found = sl >= l && memcmp(s + sl - l, t, l) == 0;
                    s += sl + (nl ? 1 : 0);
                }
                if (!found) {
                    fprintf(stderr, "line not from input: [%s]\ninput:\n%s\n", t, buf);
                    fail();
                }
            }
            free(t);
            ev = e;
        }
        free(r.buf);
    }
    free(buf);
}

int test_schedtrace(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_cases),
        cmocka_unit_test(test_parse_buffer_and_reuse),
        cmocka_unit_test(test_null_callbacks),
        cmocka_unit_test(test_1024_ps),
        cmocka_unit_test(test_1024_ps_split),
        cmocka_unit_test(test_fuzz_splits_and_cuts),
        cmocka_unit_test(test_fuzz_flips),
    };
    return cmocka_run_group_tests_name("schedtrace", tests, NULL, NULL);
}
