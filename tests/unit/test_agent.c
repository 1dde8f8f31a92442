/*
 * Tests for gotuned-agent's pure modules (agent/): the stderr relay (byte
 * for byte pass-through on every schedtrace case under tests/data/schedtrace
 * in many chunkings, partial lines, stalls, a 1 MiB line), the backlog, the
 * environment, the JSON wire format and the command line.
 */
#include "tests/unit/registry.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/backlog.h"
#include "agent/cred.h"
#include "agent/env.h"
#include "agent/opts.h"
#include "agent/relay.h"
#include "agent/wire.h"
#include "tuner/schedtrace.h"

/* ---- a growing byte buffer --------------------------------------------- */

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static void buf_add(buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

/* What the relay wrote and how many samples it gave. */
typedef struct capture {
    buf out;
    int samples;
    int64_t last_ts;
    int rejects;
} capture;

static void cap_write(void *ud, const char *s, size_t n)
{
    buf_add(&((capture *)ud)->out, s, n);
}

static void cap_sample(void *ud, const tuner_sample *s)
{
    capture *c = ud;
    c->samples++;
    c->last_ts = s->ts_ms;
}

static void cap_reject(void *ud, const char *reason)
{
    (void)reason;
    ((capture *)ud)->rejects++;
}

static relay *new_relay(capture *c)
{
    memset(c, 0, sizeof *c);
    relay_sink s = { .write = cap_write, .sample = cap_sample,
                     .reject = cap_reject, .ud = c };
    relay *r = relay_new(&s);
    assert_non_null(r);
    return r;
}

/* ---- the oracle: the parser on the whole text -------------------------- */

/* Every text the parser hands back, each with its '\n'; for input without
 * a final '\n' the last text's '\n' is dropped when that text ends with the
 * unterminated line (relay.h's rule, decided here from the whole input). */
typedef struct oracle {
    buf out;
    int samples;
} oracle;

static void or_text(void *ud, const char *t, size_t n)
{
    buf_add(&((oracle *)ud)->out, t, n);
    buf_add(&((oracle *)ud)->out, "\n", 1);
}

static void or_reject(void *ud, const char *reason, const char *t, size_t n)
{
    (void)reason;
    or_text(ud, t, n);
}

static void or_sample(void *ud, const tuner_sample *s)
{
    (void)s;
    ((oracle *)ud)->samples++;
}

static void make_oracle(const char *in, size_t len, oracle *o)
{
    memset(o, 0, sizeof *o);
    buf_add(&o->out, "", 0);
    st_sink s = { .sample = or_sample, .line = or_text, .reject = or_reject,
                  .ud = o };
    st_parse_buffer(in, len, &s);
    if (len > 0 && in[len - 1] != '\n') {
        const char *nl = memrchr(in, '\n', len);
        const char *last = nl ? nl + 1 : in;
        size_t ll = (size_t)(in + len - last);
        if (o->out.n >= ll + 1 &&
            memcmp(o->out.p + o->out.n - 1 - ll, last, ll) == 0)
            o->out.p[--o->out.n] = '\0';
    }
}

/* Feeds in through a relay in chunks of the given sizes (cycled). */
static void run_relay(const char *in, size_t len, const size_t *sizes,
                      size_t nsizes, capture *c)
{
    relay *r = new_relay(c);
    buf_add(&c->out, "", 0);
    size_t i = 0, k = 0;
    int64_t t = 1000;
    while (i < len) {
        size_t n = sizes[k++ % nsizes];
        if (n > len - i)
            n = len - i;
        relay_feed(r, in + i, n, t++);
        i += n;
    }
    relay_finish(r, t);
    relay_free(r);
}

static int check_case(const char *name, const char *in, size_t len)
{
    oracle o;
    make_oracle(in, len, &o);
    static const size_t whole[] = { (size_t)-1 }, ones[] = { 1 },
                        mixed[] = { 7, 1, 300, 2, 4096, 13, 64 };
    const size_t *plans[] = { whole, ones, mixed };
    const size_t nplans[] = { 1, 1, 7 };
    int failed = 0;
    for (size_t p = 0; p < 3; p++) {
        capture c;
        run_relay(in, len, plans[p], nplans[p], &c);
        if (c.out.n != o.out.n || memcmp(c.out.p, o.out.p, o.out.n) != 0) {
            size_t d = 0;
            while (d < c.out.n && d < o.out.n && c.out.p[d] == o.out.p[d])
                d++;
            print_error("%s (plan %zu): output differs at byte %zu "
                        "(got %zu bytes, want %zu)\n", name, p, d, c.out.n,
                        o.out.n);
            failed = 1;
        }
        if (c.samples != o.samples) {
            print_error("%s (plan %zu): %d samples, want %d\n", name, p,
                        c.samples, o.samples);
            failed = 1;
        }
        free(c.out.p);
    }
    free(o.out.p);
    return failed;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every schedtrace case (hand-made and captured: interleaved application
 * lines, cut lines, panic dumps) through the relay, whole, byte by byte and
 * in odd chunks: the same bytes as the parser's texts, the same samples. */
static void test_relay_cases(void **state)
{
    (void)state;
    char top[4096];
    snprintf(top, sizeof top, "%s", unit_data_path("schedtrace"));
    DIR *d = opendir(top);
    if (!d)
        fail_msg("cannot open %s", top);
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256) {
        char p[4400];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s/input.txt", top, e->d_name);
        if (e->d_name[0] != '.' && stat(p, &st) == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_names);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        char rel[512];
        snprintf(rel, sizeof rel, "schedtrace/%s/input.txt", names[i]);
        size_t len;
        char *in = unit_read_file(unit_data_path(rel), &len);
        assert_non_null(in);
        failed += check_case(names[i], in, len);
        /* The same without its final '\n': a partial last line. */
        if (len > 0 && in[len - 1] == '\n') {
            char nm[300];
            snprintf(nm, sizeof nm, "%s (no final newline)", names[i]);
            failed += check_case(nm, in, len - 1);
        }
        free(in);
        free(names[i]);
    }
    if (n < 40)
        fail_msg("only %zu schedtrace cases", n);
    if (failed)
        fail_msg("%d relay case(s) failed", failed);
}

/* The panic capture: the runtime's dump, the panic and the traces pass. */
static void test_relay_panic(void **state)
{
    (void)state;
    size_t len;
    char *in = unit_read_file(unit_data_path(
        "schedtrace/captured-panicker-p2/input.txt"), &len);
    assert_non_null(in);
    capture c;
    static const size_t sizes[] = { 512 };
    run_relay(in, len, sizes, 1, &c);
    assert_non_null(strstr(c.out.p, "panicker: started\n"));
    assert_non_null(strstr(c.out.p, "panic: inventory hold 42 lost"));
    assert_non_null(strstr(c.out.p, "goroutine 1 [running]:\n"));
    assert_true(c.samples > 10);
    /* Every application line of the input is in the output, in order. */
    const char *from = c.out.p;
    for (char *line = in; line < in + len;) {
        char *nl = memchr(line, '\n', (size_t)(in + len - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(in + len - line);
        if (ll > 0 && strncmp(line, "SCHED ", 6) != 0 && line[0] != ' ') {
            char *want = strndup(line, ll);
            const char *at = strstr(from, want);
            if (!at)
                fail_msg("line lost or out of order: %s", want);
            from = at + ll;
            free(want);
        }
        line += ll + 1;
    }
    free(c.out.p);
    free(in);
}

static const char sched1[] =
    "SCHED 100ms: gomaxprocs=2 idleprocs=0 threads=3 spinningthreads=0 "
    "idlethreads=1 runqueue=0 [0 0]";

static void test_relay_partial(void **state)
{
    (void)state;
    capture c;
    relay *r = new_relay(&c);
    /* A prompt without '\n' shows after RELAY_FLUSH_MS. */
    relay_feed(r, "a\nhello", 7, 1000);
    assert_int_equal(c.out.n, 2);
    assert_int_equal(relay_deadline(r), 1000 + RELAY_FLUSH_MS);
    relay_tick(r, 1000 + RELAY_FLUSH_MS - 1);
    assert_int_equal(c.out.n, 2);
    relay_tick(r, 1000 + RELAY_FLUSH_MS);
    assert_string_equal(c.out.p, "a\nhello");
    assert_int_equal(relay_deadline(r), -1);
    /* Its rest streams through raw, exactly once. */
    relay_feed(r, " world", 6, 1300);
    relay_feed(r, "!\nnext\n", 7, 1301);
    assert_string_equal(c.out.p, "a\nhello world!\nnext\n");
    /* A SCHED line is parsed again after that. */
    relay_feed(r, sched1, sizeof sched1 - 1, 1400);
    relay_feed(r, "\n", 1, 1401);
    assert_int_equal(c.samples, 1);
    assert_int_equal(c.last_ts, 1401);
    assert_string_equal(c.out.p, "a\nhello world!\nnext\n");
    relay_finish(r, 2000);
    assert_string_equal(c.out.p, "a\nhello world!\nnext\n");
    relay_free(r);
    free(c.out.p);
}

/* A SCHED line the runtime stalls in the middle of is held, not let out,
 * for RELAY_HOLD_MS: the sample survives a throttled runtime. */
static void test_relay_sched_stall(void **state)
{
    (void)state;
    capture c;
    relay *r = new_relay(&c);
    relay_feed(r, sched1, 40, 1000);
    assert_int_equal(relay_deadline(r), 1000 + RELAY_HOLD_MS);
    relay_tick(r, 1000 + RELAY_FLUSH_MS + 500);
    assert_int_equal(c.out.n, 0);
    relay_feed(r, sched1 + 40, sizeof sched1 - 41, 1900);
    relay_feed(r, "\n", 1, 1901);
    assert_int_equal(c.samples, 1);
    assert_int_equal(c.out.n, 0);
    /* Past the hold: out raw, and the rest raw too; no sample. */
    relay_feed(r, sched1, 40, 3000);
    relay_tick(r, 3000 + RELAY_HOLD_MS);
    assert_int_equal(c.out.n, 40);
    relay_feed(r, sched1 + 40, sizeof sched1 - 41, 6000);
    relay_feed(r, "\n", 1, 6001);
    assert_int_equal(c.samples, 1);
    assert_int_equal(c.out.n, sizeof sched1);
    assert_memory_equal(c.out.p, sched1, sizeof sched1 - 1);
    relay_free(r);
    free(c.out.p);

    /* Prefixes of "SCHED " and indented detail lines are held too; other
     * text is not. */
    static const char *const held[] = { "S", "SCHE", "SCHED ", "  ", "  P",
                                        "  M12", "  G3:" };
    static const char *const quick[] = { "x", "SCHEDULE", " x", "  P:",
                                          "  Px", "\t" };
    for (size_t i = 0; i < sizeof held / sizeof held[0]; i++) {
        r = new_relay(&c);
        relay_feed(r, held[i], strlen(held[i]), 0);
        assert_int_equal(relay_deadline(r), RELAY_HOLD_MS);
        relay_free(r);
        free(c.out.p);
    }
    for (size_t i = 0; i < sizeof quick / sizeof quick[0]; i++) {
        r = new_relay(&c);
        relay_feed(r, quick[i], strlen(quick[i]), 0);
        assert_int_equal(relay_deadline(r), RELAY_FLUSH_MS);
        relay_free(r);
        free(c.out.p);
    }
}

/* An application line inside a SCHED line, then a stall in the SCHED
 * line's rest: the held line comes out (rejected) before the raw bytes, so
 * the output is the input, in order. */
static void test_relay_stall_while_split(void **state)
{
    (void)state;
    capture c;
    relay *r = new_relay(&c);
    const char *first = "SCHED 100ms: gomaxprocs=2 idleprocs=0 threads=3 "
                        "spinningthreads=0 idlethreads=app says hi\n";
    relay_feed(r, first, strlen(first), 1000);
    assert_int_equal(c.out.n, 0); /* held: it may be continued */
    relay_feed(r, "1 runq", 6, 1001);
    assert_int_equal(relay_deadline(r), 1001 + RELAY_HOLD_MS);
    relay_tick(r, 1001 + RELAY_HOLD_MS);
    relay_feed(r, "ueue=0 [0 0]\n", 13, 5000);
    relay_finish(r, 5001);
    buf want = { 0 };
    buf_add(&want, first, strlen(first));
    buf_add(&want, "1 runqueue=0 [0 0]\n", 19);
    assert_int_equal(c.out.n, want.n);
    assert_memory_equal(c.out.p, want.p, want.n);
    assert_int_equal(c.samples, 0);
    relay_free(r);
    free(c.out.p);
    free(want.p);

    /* Without the stall the same bytes make a sample and the intruder. */
    r = new_relay(&c);
    relay_feed(r, first, strlen(first), 1000);
    relay_feed(r, "1 runqueue=0 [0 0]\n", 19, 1001);
    assert_int_equal(c.samples, 1);
    assert_string_equal(c.out.p, "app says hi\n");
    relay_free(r);
    free(c.out.p);
}

static void test_relay_long_line(void **state)
{
    (void)state;
    size_t big = 1024 * 1024;
    char *line = malloc(big + 1);
    assert_non_null(line);
    for (size_t i = 0; i < big; i++)
        line[i] = (char)('a' + i % 26);
    line[big] = '\n';
    capture c;
    relay *r = new_relay(&c);
    relay_feed(r, "before\n", 7, 0);
    for (size_t i = 0; i < big + 1; i += 4096) {
        size_t n = big + 1 - i < 4096 ? big + 1 - i : 4096;
        relay_feed(r, line + i, n, 1);
        /* Streamed, not held whole: at most RELAY_LINE_MAX behind. */
        assert_true(c.out.n + RELAY_LINE_MAX >= 7 + i + n);
    }
    relay_feed(r, sched1, sizeof sched1 - 1, 2);
    relay_feed(r, "\nafter", 6, 3);
    relay_finish(r, 4);
    assert_int_equal(c.out.n, 7 + big + 1 + 5);
    assert_memory_equal(c.out.p, "before\n", 7);
    assert_memory_equal(c.out.p + 7, line, big + 1);
    assert_memory_equal(c.out.p + 7 + big + 1, "after", 5);
    assert_int_equal(c.samples, 1);
    relay_free(r);
    free(c.out.p);
    free(line);
}

static void test_relay_eof(void **state)
{
    (void)state;
    capture c;
    /* A cut SCHED line at the end is rejected: its bytes come out as they
     * were, without a '\n' that was never printed. */
    relay *r = new_relay(&c);
    const char *cut = "x\nSCHED 12004ms: gomaxprocs=4 idlepr";
    relay_feed(r, cut, strlen(cut), 0);
    assert_string_equal(c.out.p, "x\n");
    relay_finish(r, 1);
    assert_string_equal(c.out.p, cut);
    assert_int_equal(c.rejects, 1);
    relay_free(r);
    free(c.out.p);
    /* A whole SCHED line without '\n' at the end is a sample; the line
     * before keeps its '\n'. */
    r = new_relay(&c);
    relay_feed(r, "a\n", 2, 0);
    relay_feed(r, sched1, sizeof sched1 - 1, 0);
    relay_finish(r, 1);
    assert_string_equal(c.out.p, "a\n");
    assert_int_equal(c.samples, 1);
    /* The relay takes a new stream after finish. */
    relay_feed(r, "b", 1, 2);
    relay_finish(r, 3);
    assert_string_equal(c.out.p, "a\nb");
    relay_free(r);
    free(c.out.p);
}

/* ---- backlog ----------------------------------------------------------- */

static tuner_sample mk_sample(int64_t ts, int32_t *q, uint32_t n)
{
    tuner_sample s;
    tuner_sample_init(&s);
    s.ts_ms = ts;
    s.gomaxprocs = (int32_t)n;
    s.nprocs = n;
    s.local_runq = q;
    return s;
}

static void test_backlog(void **state)
{
    (void)state;
    backlog *b = backlog_new(3);
    assert_non_null(b);
    int32_t q[2] = { 5, 6 };
    for (int i = 1; i <= 5; i++) {
        tuner_sample s = mk_sample(i, q, 2);
        backlog_add(b, &s);
        q[0]++; /* the backlog keeps its own copy */
    }
    assert_int_equal(backlog_count(b), 3);
    assert_int_equal(backlog_dropped(b), 2);
    assert_int_equal(backlog_get(b, 0)->ts_ms, 3);
    assert_int_equal(backlog_get(b, 0)->local_runq[0], 7);
    assert_int_equal(backlog_seq(b, 0), 3);
    assert_int_equal(backlog_seq(b, 2), 5);
    /* A push took samples 3..4; meanwhile 6 and 7 arrive and drop 3 and 4:
     * releasing up to 4 must not touch 5. */
    tuner_sample s6 = mk_sample(6, q, 2), s7 = mk_sample(7, q, 2);
    backlog_add(b, &s6);
    backlog_add(b, &s7);
    assert_int_equal(backlog_dropped(b), 4);
    backlog_release(b, 4);
    assert_int_equal(backlog_count(b), 3);
    assert_int_equal(backlog_get(b, 0)->ts_ms, 5);
    backlog_release(b, 6);
    assert_int_equal(backlog_count(b), 1);
    assert_int_equal(backlog_get(b, 0)->ts_ms, 7);
    backlog_release(b, 100);
    assert_int_equal(backlog_count(b), 0);
    backlog_free(b);
}

/* ---- env --------------------------------------------------------------- */

static void godebug(const char *old, const char *want)
{
    char *got = env_godebug(old, 100);
    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("GODEBUG \"%s\" -> \"%s\", want \"%s\"", old ? old : "(unset)",
                 got, want);
    free(got);
}

static void test_env(void **state)
{
    (void)state;
    godebug(NULL, "schedtrace=100");
    godebug("", "schedtrace=100");
    godebug("gctrace=1", "gctrace=1,schedtrace=100");
    godebug("schedtrace=5000", "schedtrace=100");
    godebug("a=1,schedtrace=5,b=2,schedtrace=7", "a=1,schedtrace=100,b=2");
    godebug("scheddetail=1,,x=y,", "scheddetail=1,x=y,schedtrace=100");
    godebug("schedtraceX=1", "schedtraceX=1,schedtrace=100");

    char *base[] = { "PATH=/bin", "GOMAXPROCS=7", "GODEBUG=gctrace=1",
                     "HOME=/root", NULL };
    char **e = env_build(base, 1000, 0);
    assert_non_null(e);
    assert_string_equal(env_get(e, "GOMAXPROCS"), "7"); /* the user's own */
    assert_string_equal(env_get(e, "GODEBUG"), "gctrace=1,schedtrace=1000");
    assert_string_equal(env_get(e, "PATH"), "/bin");
    assert_string_equal(env_get(e, "HOME"), "/root");
    env_free(e);
    e = env_build(base, 1000, 3);
    assert_string_equal(env_get(e, "GOMAXPROCS"), "3");
    int n = 0;
    for (char **p = e; *p; p++)
        n += strncmp(*p, "GOMAXPROCS=", 11) == 0;
    assert_int_equal(n, 1);
    env_free(e);
    char *bare[] = { NULL };
    e = env_build(bare, 100, 0);
    assert_null(env_get(e, "GOMAXPROCS"));
    assert_string_equal(env_get(e, "GODEBUG"), "schedtrace=100");
    env_free(e);
}

/* ---- wire -------------------------------------------------------------- */

static void test_wire_batch(void **state)
{
    (void)state;
    int32_t q[3] = { 0, 9, 1 };
    tuner_sample s = mk_sample(1733300000000, q, 3);
    s.idle_procs = 1;
    s.threads = 9;
    s.global_runq = 4;
    json_t *j = wire_sample(&s);
    char *txt = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(txt, "{\"global_runq\":4,\"gomaxprocs\":3,"
                        "\"idle_procs\":1,\"local_runq\":[0,9,1],"
                        "\"threads\":9,\"ts_ms\":1733300000000}");
    free(txt);

    cg_cpu cpu = { .limit = 1.5, .source = "cgroup v1 /a (x)", .num_cpu = 8,
                   .affinity = 4, .have_throttling = true,
                   .throttling = { 100, 7, 12345 } };
    json_t *arr = json_array();
    json_array_append_new(arr, j);
    wire_facts f = { .id = "h-svc", .service = "svc", .hostname = "h",
                     .pid = 42, .cpu = &cpu, .applied_version = 3,
                     .dropped = 11 };
    size_t len;
    char *body = wire_batch(&f, arr, &len);
    assert_non_null(body);
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(root);
    json_t *a = json_object_get(root, "agent");
    assert_string_equal(json_string_value(json_object_get(a, "id")), "h-svc");
    assert_int_equal(json_integer_value(json_object_get(a, "pid")), 42);
    assert_true(json_real_value(json_object_get(a, "cpu_limit")) == 1.5);
    assert_int_equal(json_integer_value(json_object_get(a, "applied_version")), 3);
    assert_int_equal(json_integer_value(json_object_get(a, "dropped_samples")), 11);
    json_t *t = json_object_get(a, "throttling");
    assert_int_equal(json_integer_value(json_object_get(t, "periods")), 100);
    assert_int_equal(json_integer_value(json_object_get(t, "throttled_periods")), 7);
    assert_int_equal(json_integer_value(json_object_get(t, "throttled_us")), 12345);
    assert_int_equal(json_array_size(json_object_get(root, "samples")), 1);
    json_decref(root);
    free(body);

    /* legacy: no throttling or dropped_samples; unlimited: cpu_limit null; heartbeat. */
    cpu.limit = 0;
    f.legacy = true;
    body = wire_batch(&f, NULL, &len);
    root = json_loadb(body, len, 0, NULL);
    a = json_object_get(root, "agent");
    assert_null(json_object_get(a, "throttling"));
    assert_null(json_object_get(a, "dropped_samples"));
    assert_true(json_is_null(json_object_get(a, "cpu_limit")));
    assert_int_equal(json_array_size(json_object_get(root, "samples")), 0);
    json_decref(root);
    free(body);
}

static void test_wire_config(void **state)
{
    (void)state;
    wire_version v;
    char err[256];
    const char *ok = "{\"agent\":\"a\",\"version\":3,\"source\":\"operator\","
                     "\"created_ms\":1,\"config\":{\"gomaxprocs\":4,"
                     "\"pool\":{\"workers\":4}},\"reasons\":[]}";
    assert_int_equal(wire_version_parse(ok, strlen(ok), &v, err, sizeof err), 0);
    assert_int_equal(v.version, 3);
    assert_true(v.has_gomaxprocs);
    assert_int_equal(v.gomaxprocs, 4);
    assert_non_null(v.obj);
    wire_version_cleanup(&v);
    const char *none = "{\"version\":0,\"source\":null,\"config\":{}}";
    assert_int_equal(wire_version_parse(none, strlen(none), &v, err, sizeof err), 0);
    assert_false(v.has_gomaxprocs);
    wire_version_cleanup(&v);
    static const char *const bad[] = {
        "", "[]", "{\"version\":-1}", "{\"config\":{}}",
        "{\"version\":1,\"config\":{\"gomaxprocs\":0}}",
        "{\"version\":1,\"config\":{\"gomaxprocs\":1025}}",
        "{\"version\":1,\"config\":{\"gomaxprocs\":\"4\"}}",
        "{\"version\":1,\"config\":[]}", "{\"version\":1,\"version\":2}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(wire_version_parse(bad[i], strlen(bad[i]), &v, err,
                                            sizeof err), -EINVAL);

    const char *ans = "{\"agent\":\"a\",\"accepted\":1,\"config_version\":2,"
                      "\"config\":{\"version\":2,\"config\":{\"gomaxprocs\":2}}}";
    assert_int_equal(wire_telemetry_answer(ans, strlen(ans), &v, err, sizeof err), 1);
    assert_int_equal(v.version, 2);
    wire_version_cleanup(&v);
    const char *plain = "{\"agent\":\"a\",\"accepted\":1}";
    assert_int_equal(wire_telemetry_answer(plain, strlen(plain), &v, err,
                                           sizeof err), 0);

    char *ack = wire_ack(3, NULL);
    assert_string_equal(ack, "{\"version\":3,\"status\":\"applied\"}");
    free(ack);
    ack = wire_ack(4, "no SCHED line");
    assert_string_equal(ack, "{\"version\":4,\"status\":\"rejected\","
                        "\"error\":\"no SCHED line\"}");
    free(ack);
    char longer[3000];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    ack = wire_ack(5, longer);
    json_t *r = json_loads(ack, 0, NULL);
    assert_int_equal(strlen(json_string_value(json_object_get(r, "error"))), 1023);
    json_decref(r);
    free(ack);

    int64_t ver;
    bool applied;
    const char *af = "{\"version\":3,\"status\":\"applied\"}";
    assert_int_equal(wire_ack_file(af, strlen(af), &ver, &applied, err, sizeof err), 0);
    assert_true(applied);
    assert_int_equal(ver, 3);
    af = "{\"version\":4,\"status\":\"rejected\",\"error\":\"pool too big\"}";
    assert_int_equal(wire_ack_file(af, strlen(af), &ver, &applied, err, sizeof err), 0);
    assert_false(applied);
    assert_string_equal(err, "pool too big");
    af = "{\"version\":4,\"status\":\"maybe\"}";
    assert_int_equal(wire_ack_file(af, strlen(af), &ver, &applied, err, sizeof err),
                     -EINVAL);

    char field[64];
    const char *e422 = "{\"error\":{\"code\":\"invalid\",\"message\":\"m\","
                       "\"field\":\"agent.throttling\"}}";
    wire_error_field(e422, strlen(e422), field, sizeof field);
    assert_string_equal(field, "agent.throttling");
    wire_error_field("junk", 4, field, sizeof field);
    assert_string_equal(field, "");
}

/* ---- opts -------------------------------------------------------------- */

static int parse(agent_opts *o, char *err, ...)
{
    char *argv[32] = { "gotuned-agent" };
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 31;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    return opts_parse(argc, argv, "node-3", o, err, 256);
}

static void test_opts(void **state)
{
    (void)state;
    agent_opts o;
    char err[256];
    assert_int_equal(parse(&o, err, "--server", "http://s:1/", "--service",
                           "orders", "--", "./app", "-x", NULL), 0);
    assert_string_equal(o.server, "http://s:1");
    assert_string_equal(o.id, "node-3-orders");
    assert_int_equal(o.apply, APPLY_RESTART);
    assert_int_equal(o.interval_ms, 10000);
    assert_int_equal(o.schedtrace_ms, 1000);
    assert_int_equal(o.backlog, 8640);
    assert_string_equal(o.child_argv[0], "./app");
    assert_string_equal(o.child_argv[1], "-x");
    assert_null(o.child_argv[2]);

    assert_int_equal(parse(&o, err, "--server=http://s", "--service=a",
                           "--id", "x.1", "--apply", "file", "--config-file",
                           "/tmp/c.json", "--interval", "1m30s", "--grace",
                           "500ms", "--schedtrace", "100", "--backlog", "5",
                           "--", "app", NULL), 0);
    assert_string_equal(o.id, "x.1");
    assert_int_equal(o.apply, APPLY_FILE);
    assert_int_equal(o.interval_ms, 90000);
    assert_int_equal(o.grace_ms, 500);
    assert_int_equal(o.schedtrace_ms, 100);
    assert_int_equal(o.backlog, 5);

    assert_int_equal(parse(&o, err, "--help", NULL), 0);
    assert_true(o.help);

#define BAD(...) assert_int_equal(parse(&o, err, __VA_ARGS__, NULL), -EINVAL)
    BAD("--service", "a", "--", "app");                      /* no server */
    BAD("--server", "s", "--service", "a", "--", "app");     /* not a URL */
    BAD("--server", "http://s", "--", "app");                /* no service */
    BAD("--server", "http://s", "--service", "a b", "--", "app");
    BAD("--server", "http://s", "--service", "a", "--id", "", "--", "app");
    BAD("--server", "http://s", "--service", "a");           /* no program */
    BAD("--server", "http://s", "--service", "a", "--", NULL);
    BAD("--server", "http://s", "--service", "a", "--apply", "live", "--", "x");
    BAD("--server", "http://s", "--service", "a", "--apply", "file", "--", "x");
    BAD("--server", "http://s", "--service", "a", "--config-file", "c", "--", "x");
    BAD("--server", "http://s", "--service", "a", "--interval", "0", "--", "x");
    BAD("--server", "http://s", "--service", "a", "--interval", "10q", "--", "x");
    BAD("--server", "http://s", "--service", "a", "--backlog", "0", "--", "x");
    BAD("--server", "http://s", "--service", "a", "--schedtrace", "-1", "--", "x");
    BAD("--server", "http://s", "--service", "a", "--token", "t", "--", "x");
    BAD("--server", "https://s", "--service", "a", "--ca", "", "--", "x");
    BAD("--server", "http://s", "--service", "a", "--ca", "ca.pem", "--", "x");
    BAD("--server", "https://s", "--service", "a", "--token-file", "", "--", "x");
    BAD("--server", "https://s", "--service", "a", "--token-file");
    BAD("--server", "http://s", "--service", "a", "app");
    BAD("--server");
#undef BAD
    assert_non_null(strstr(err, "--server"));

    assert_int_equal(parse(&o, err, "--server", "https://s:8443", "--service", "a", "--ca",
                           "/etc/gotuned/ca.pem", "--token-file=/run/tok", "--", "x", NULL), 0);
    assert_string_equal(o.ca_file, "/etc/gotuned/ca.pem");
    assert_string_equal(o.token_file, "/run/tok");
    assert_int_equal(parse(&o, err, "--server", "https://s", "--service", "a", "--", "x",
                           NULL), 0);
    assert_null(o.ca_file);
    assert_null(o.token_file);

    int64_t ms;
    assert_int_equal(opts_duration_ms("10", &ms), 0);
    assert_int_equal(ms, 10000);
    assert_int_equal(opts_duration_ms("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(opts_duration_ms("5m", &ms), 0);
    assert_int_equal(ms, 300000);
    assert_int_equal(opts_duration_ms("1m30s", &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(opts_duration_ms("1.5s", &ms), -EINVAL);
    assert_int_equal(opts_duration_ms("", &ms), -EINVAL);
    assert_int_equal(opts_duration_ms("s", &ms), -EINVAL);

    char id[OPTS_ID_MAX + 1];
    opts_default_id("web 1.example:com", "svc", id, sizeof id);
    assert_string_equal(id, "web-1.example-com-svc");
    char host[300];
    memset(host, 'h', sizeof host - 1);
    host[sizeof host - 1] = '\0';
    opts_default_id(host, "svc", id, sizeof id);
    assert_int_equal(strlen(id), OPTS_ID_MAX);
    assert_true(opts_valid_id(id));
}

/* ---- cred ------------------------------------------------------------- */

/* Writes text to a fresh temporary file with mode; returns its path. */
static char *temp_file(const char *text, mode_t mode)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/gotuned-unit-cred-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    return path;
}

static void test_cred(void **state)
{
    (void)state;
    char tok[CRED_TOKEN_MAX + 1], err[256];
    const char *good = "abcDEF0123456789._~+/=-";

    assert_true(cred_token_valid(good));
    assert_false(cred_token_valid("short"));
    assert_false(cred_token_valid("abcdefghijklmnop\r\nX-Evil: 1"));
    assert_false(cred_token_valid("abcdefgh ijklmnop"));
    assert_false(cred_token_valid(NULL));

    /* Neither: no token. The environment when there is no file. */
    assert_int_equal(cred_token_load(NULL, NULL, tok, sizeof tok, err, sizeof err), 0);
    assert_string_equal(tok, "");
    assert_int_equal(cred_token_load(NULL, "", tok, sizeof tok, err, sizeof err), 0);
    assert_string_equal(tok, "");
    assert_int_equal(cred_token_load(NULL, good, tok, sizeof tok, err, sizeof err), 0);
    assert_string_equal(tok, good);
    assert_int_equal(cred_token_load(NULL, "bad token", tok, sizeof tok, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "GOTUNED_TOKEN"));

    /* The file's first line, trimmed; the file wins over the environment. */
    char *p = temp_file("  s3cret-token-0123456789 \r\nsecond line\n", 0600);
    assert_int_equal(cred_token_load(p, good, tok, sizeof tok, err, sizeof err), 0);
    assert_string_equal(tok, "s3cret-token-0123456789");
    unlink(p);
    p = temp_file("s3cret-token-0123456789", 0400); /* no newline at all */
    assert_int_equal(cred_token_load(p, NULL, tok, sizeof tok, err, sizeof err), 0);
    assert_string_equal(tok, "s3cret-token-0123456789");
    unlink(p);

    /* Readable by others or the group: refused, and the message says how. */
    p = temp_file("s3cret-token-0123456789\n", 0644);
    assert_int_equal(cred_token_load(p, NULL, tok, sizeof tok, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "chmod 600"));
    assert_string_equal(tok, "");
    unlink(p);
    p = temp_file("s3cret-token-0123456789\n", 0640);
    assert_int_equal(cred_token_load(p, NULL, tok, sizeof tok, err, sizeof err), -EPERM);
    unlink(p);

    /* Not a token on the first line; an empty file; no file. */
    p = temp_file("\ns3cret-token-0123456789\n", 0600);
    assert_int_equal(cred_token_load(p, NULL, tok, sizeof tok, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "first line"));
    unlink(p);
    p = temp_file("", 0600);
    assert_int_equal(cred_token_load(p, NULL, tok, sizeof tok, err, sizeof err), -EINVAL);
    unlink(p);
    assert_int_equal(cred_token_load("/nonexistent/tok", good, tok, sizeof tok, err,
                                     sizeof err), -ENOENT);
    assert_non_null(strstr(err, "no such file"));

    /* --ca: a PEM certificate somewhere in the file, or refused. */
    p = temp_file("# bundle\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                  0644);
    assert_int_equal(cred_ca_check(p, err, sizeof err), 0);
    unlink(p);
    p = temp_file("-----BEGIN PRIVATE KEY-----\n", 0600);
    assert_int_equal(cred_ca_check(p, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not a PEM bundle"));
    unlink(p);
    assert_int_equal(cred_ca_check("/nonexistent/ca.pem", err, sizeof err), -ENOENT);
}

int test_agent(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_cases),
        cmocka_unit_test(test_relay_panic),
        cmocka_unit_test(test_relay_partial),
        cmocka_unit_test(test_relay_sched_stall),
        cmocka_unit_test(test_relay_stall_while_split),
        cmocka_unit_test(test_relay_long_line),
        cmocka_unit_test(test_relay_eof),
        cmocka_unit_test(test_backlog),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_wire_batch),
        cmocka_unit_test(test_wire_config),
        cmocka_unit_test(test_opts),
        cmocka_unit_test(test_cred),
    };
    return cmocka_run_group_tests_name("agent", tests, NULL, NULL);
}
