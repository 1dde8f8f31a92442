/*
 * metrics.c — see metrics.h: sharded atomic counters for the request path,
 * and the Prometheus text exposition writer.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "server/metrics.h"
#include "server/wait.h"

/* ------------------------------------------------------------ the labels */

static const char *const method_names[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "other" };
#define NMETHODS (sizeof method_names / sizeof method_names[0])

/* The codes gotuned answers with (docs/api.md); another code counts under
 * "other", so a bug cannot grow the label set. */
static const int codes[] = { 200, 201, 204, 304, 400, 401, 403, 404, 405, 409,
                             413, 414, 415, 422, 429, 500, 503 };
#define NCODES (sizeof codes / sizeof codes[0] + 1)   /* + "other" */
#define CODE_MAX 600

/* Request durations: 0.5 ms to 10 s. */
static const double dur_bounds_s[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                       0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define NDUR (sizeof dur_bounds_s / sizeof dur_bounds_s[0])
/* Held requests: the wait is capped at 10 minutes plus up to 1/16 jitter. */
static const double held_bounds_s[] = { 0.01, 0.1, 1, 5, 10, 30, 60, 120, 300, 600, 900 };
#define NHELD (sizeof held_bounds_s / sizeof held_bounds_s[0])

static const char *const format_names[METRICS_NFORMATS] = { "json", "text" };
static const char *const trigger_names[METRICS_NTRIGGERS] = { "operator", "verifier" };

/* ------------------------------------------------------------ the shards */

/* One shard's counters. The per-route cells follow the fixed part:
 * requests [route][method][code], then duration buckets
 * [route][method][NDUR + 1], then duration sums in ns [route][method]. */
typedef struct shard {
    _Atomic uint64_t samples[METRICS_NFORMATS][2];     /* [format][rejected] */
    _Atomic uint64_t rollbacks[METRICS_NTRIGGERS];
    _Atomic uint64_t held[NHELD + 1];
    _Atomic uint64_t held_sum_ns;
    _Atomic uint64_t cells[];
} shard;

struct metrics {
    char *version;
    char **routes;
    size_t nroutes;
    size_t ncells;                  /* cells[] per shard */
    uint64_t dur_bounds_ns[NDUR];
    uint64_t held_bounds_ns[NHELD];
    unsigned char code_slot[CODE_MAX];  /* status -> index in codes[], NCODES - 1 = other */
    double start_time_s;            /* process_start_time_seconds */
    struct waitq *wq;               /* the held requests' queue, or NULL */
    shard *shards[METRICS_SHARDS];
};

/* Which shard this thread adds to: assigned round-robin on a thread's
 * first count, so each worker thread has its own while there are no more
 * threads than shards. The index is valid for every registry. */
static atomic_uint next_shard;
static _Thread_local unsigned thread_shard = UINT_MAX;

static shard *my_shard(metrics *m)
{
    if (thread_shard == UINT_MAX)
        thread_shard = atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) %
                       METRICS_SHARDS;
    return m->shards[thread_shard];
}

static void add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t load(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void *xalloc_or_die(void *p)
{
    if (!p) {
        fprintf(stderr, "gotuned: out of memory for the metrics registry\n");
        abort();
    }
    return p;
}

static char *copy_str(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xalloc_or_die(malloc(n)), s, n);
}

static size_t cell_req(size_t r, size_t meth, size_t code)
{
    return (r * NMETHODS + meth) * NCODES + code;
}

static size_t cell_dur(const metrics *m, size_t r, size_t meth, size_t bucket)
{
    return m->nroutes * NMETHODS * NCODES + (r * NMETHODS + meth) * (NDUR + 1) + bucket;
}

static size_t cell_sum(const metrics *m, size_t r, size_t meth)
{
    return m->nroutes * NMETHODS * (NCODES + NDUR + 1) + r * NMETHODS + meth;
}

metrics *metrics_new(const char *version, const char *(*route)(size_t i), size_t nroutes)
{
    assert(nroutes > 0);
    metrics *m = xalloc_or_die(calloc(1, sizeof *m));
    m->version = copy_str(version);
    m->routes = xalloc_or_die(calloc(nroutes, sizeof *m->routes));
    for (size_t i = 0; i < nroutes; i++)
        m->routes[i] = copy_str(route(i));
    m->nroutes = nroutes;
    m->ncells = nroutes * NMETHODS * (NCODES + NDUR + 2);
    for (size_t i = 0; i < NDUR; i++)
        m->dur_bounds_ns[i] = (uint64_t)llround(dur_bounds_s[i] * 1e9);
    for (size_t i = 0; i < NHELD; i++)
        m->held_bounds_ns[i] = (uint64_t)llround(held_bounds_s[i] * 1e9);
    memset(m->code_slot, (int)(NCODES - 1), sizeof m->code_slot);
    for (size_t i = 0; i < NCODES - 1; i++)
        m->code_slot[codes[i]] = (unsigned char)i;
    /* Rounded up to whole cache lines, so no two shards share one. */
    size_t bytes = sizeof(shard) + m->ncells * sizeof(_Atomic uint64_t);
    bytes = (bytes + 63) / 64 * 64;
    for (size_t i = 0; i < METRICS_SHARDS; i++) {
        m->shards[i] = xalloc_or_die(aligned_alloc(64, bytes));
        memset(m->shards[i], 0, bytes);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_time_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    return m;
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < METRICS_SHARDS; i++)
        free(m->shards[i]);
    for (size_t i = 0; i < m->nroutes; i++)
        free(m->routes[i]);
    free(m->routes);
    free(m->version);
    free(m);
}

void metrics_set_waitq(metrics *m, struct waitq *q)
{
    if (m)
        m->wq = q;
}

uint64_t metrics_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t method_index(const char *method)
{
    for (size_t i = 0; i < NMETHODS - 1; i++)
        if (strcmp(method, method_names[i]) == 0)
            return i;
    return NMETHODS - 1;
}

static size_t bucket_of(const uint64_t *bounds_ns, size_t n, uint64_t ns)
{
    size_t i = 0;
    while (i < n && ns > bounds_ns[i])
        i++;
    return i;
}

void metrics_request(metrics *m, size_t route, const char *method, int status,
                     uint64_t elapsed_ns, bool held)
{
    if (!m)
        return;
    shard *sh = my_shard(m);
    size_t r = route < m->nroutes ? route : m->nroutes - 1;
    size_t meth = method_index(method);
    size_t code = status >= 0 && status < CODE_MAX ? m->code_slot[status] : NCODES - 1;
    add(&sh->cells[cell_req(r, meth, code)], 1);
    if (held) {
        add(&sh->held[bucket_of(m->held_bounds_ns, NHELD, elapsed_ns)], 1);
        add(&sh->held_sum_ns, elapsed_ns);
    } else {
        add(&sh->cells[cell_dur(m, r, meth, bucket_of(m->dur_bounds_ns, NDUR, elapsed_ns))], 1);
        add(&sh->cells[cell_sum(m, r, meth)], elapsed_ns);
    }
}

void metrics_samples(metrics *m, int format, uint64_t accepted, uint64_t rejected)
{
    if (!m || format < 0 || format >= METRICS_NFORMATS)
        return;
    shard *sh = my_shard(m);
    if (accepted)
        add(&sh->samples[format][0], accepted);
    if (rejected)
        add(&sh->samples[format][1], rejected);
}

void metrics_rollback(metrics *m, int trigger)
{
    if (!m || trigger < 0 || trigger >= METRICS_NTRIGGERS)
        return;
    add(&my_shard(m)->rollbacks[trigger], 1);
}

/* ------------------------------------------------------------ the writer */

/* A growing text buffer; after a failed allocation it stays failed and
 * writes nothing more. */
typedef struct buf {
    char *p;
    size_t len, cap;
    bool failed;
} buf;

static bool reserve(buf *b, size_t more)
{
    if (b->failed)
        return false;
    if (b->len + more <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 16384;
    while (cap < b->len + more)
        cap *= 2;
    char *grown = realloc(b->p, cap);
    if (!grown) {
        b->failed = true;
        return false;
    }
    b->p = grown;
    b->cap = cap;
    return true;
}

static void put(buf *b, const char *s, size_t n)
{
    if (reserve(b, n)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

static void put_str(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_fmt(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_fmt(buf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    assert(n >= 0 && (size_t)n < sizeof tmp);   /* numbers only */
    put(b, tmp, (size_t)n);
}

/* A label value: backslash, double quote and newline escaped (the format's
 * three escapes); every other byte as it is. */
static void put_label_value(buf *b, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\')
            put(b, "\\\\", 2);
        else if (*p == '"')
            put(b, "\\\"", 2);
        else if (*p == '\n')
            put(b, "\\n", 2);
        else
            put(b, p, 1);
    }
}

/* A float as the format spells it (Go's ParseFloat reads it back). */
static void put_double(buf *b, double v)
{
    if (isnan(v))
        put_str(b, "NaN");
    else if (isinf(v))
        put_str(b, v > 0 ? "+Inf" : "-Inf");
    else {
        /* The shortest of 15 to 17 digits that reads back as v. */
        char tmp[32];
        for (int digits = 15; digits <= 17; digits++) {
            snprintf(tmp, sizeof tmp, "%.*g", digits, v);
            if (strtod(tmp, NULL) == v)
                break;
        }
        put_str(b, tmp);
    }
}

static void family(buf *b, const char *name, const char *type, const char *help)
{
    put_str(b, "# HELP ");
    put_str(b, name);
    put(b, " ", 1);
    put_str(b, help);         /* our own texts: no backslash or newline to escape */
    put_str(b, "\n# TYPE ");
    put_str(b, name);
    put(b, " ", 1);
    put_str(b, type);
    put(b, "\n", 1);
}

/* Up to four labels a sample; NULL names end the list early. */
typedef struct labels {
    const char *k[4], *v[4];
} labels;

/* "name{k="v",...}" with suffix appended to the name and, when le is not
 * NULL, an le label last; then a space (the value follows). */
static void series(buf *b, const char *name, const char *suffix, const labels *l,
                   const char *le)
{
    put_str(b, name);
    if (suffix)
        put_str(b, suffix);
    size_t n = 0;
    for (size_t i = 0; l && i < 4 && l->k[i]; i++, n++) {
        put(b, n ? "," : "{", 1);
        put_str(b, l->k[i]);
        put(b, "=\"", 2);
        put_label_value(b, l->v[i]);
        put(b, "\"", 1);
    }
    if (le) {
        put(b, n ? "," : "{", 1);
        put_str(b, "le=\"");
        put_str(b, le);
        put(b, "\"", 1);
        n++;
    }
    put_str(b, n ? "} " : " ");
}

static void sample_u64(buf *b, const char *name, const labels *l, uint64_t v)
{
    series(b, name, NULL, l, NULL);
    put_fmt(b, "%" PRIu64 "\n", v);
}

static void sample_double(buf *b, const char *name, const labels *l, double v)
{
    series(b, name, NULL, l, NULL);
    put_double(b, v);
    put(b, "\n", 1);
}

/* One histogram series from per-bucket (not cumulative) counts[0..nbounds]
 * (the last is above the last bound): cumulative _bucket lines ending with
 * le="+Inf", then _sum and _count (the +Inf bucket's count, so the two
 * always agree). */
static void histogram(buf *b, const char *name, const labels *l, const double *bounds,
                      size_t nbounds, const uint64_t *counts, double sum)
{
    uint64_t cum = 0;
    char le[32];
    for (size_t i = 0; i <= nbounds; i++) {
        cum += counts[i];
        if (i < nbounds)
            snprintf(le, sizeof le, "%g", bounds[i]);
        series(b, name, "_bucket", l, i < nbounds ? le : "+Inf");
        put_fmt(b, "%" PRIu64 "\n", cum);
    }
    series(b, name, "_sum", l, NULL);
    put_double(b, sum);
    put(b, "\n", 1);
    series(b, name, "_count", l, NULL);
    put_fmt(b, "%" PRIu64 "\n", cum);
}

/* ------------------------------------------------------------ the scrape */

/* The shards' counters summed. */
typedef struct totals {
    uint64_t samples[METRICS_NFORMATS][2];
    uint64_t rollbacks[METRICS_NTRIGGERS];
    uint64_t held[NHELD + 1];
    uint64_t held_sum_ns;
    uint64_t *cells;
} totals;

static int sum_shards(metrics *m, totals *t)
{
    memset(t, 0, sizeof *t);
    t->cells = calloc(m->ncells, sizeof *t->cells);
    if (!t->cells)
        return -ENOMEM;
    for (size_t s = 0; s < METRICS_SHARDS; s++) {
        shard *sh = m->shards[s];
        for (size_t f = 0; f < METRICS_NFORMATS; f++)
            for (size_t k = 0; k < 2; k++)
                t->samples[f][k] += load(&sh->samples[f][k]);
        for (size_t i = 0; i < METRICS_NTRIGGERS; i++)
            t->rollbacks[i] += load(&sh->rollbacks[i]);
        for (size_t i = 0; i <= NHELD; i++)
            t->held[i] += load(&sh->held[i]);
        t->held_sum_ns += load(&sh->held_sum_ns);
        for (size_t i = 0; i < m->ncells; i++)
            t->cells[i] += load(&sh->cells[i]);
    }
    return 0;
}

static void render_http(buf *b, metrics *m, const totals *t)
{
    char code[8];
    family(b, "gotuned_http_requests_total", "counter",
           "HTTP requests answered, by route template, method and status code.");
    for (size_t r = 0; r < m->nroutes; r++)
        for (size_t meth = 0; meth < NMETHODS; meth++)
            for (size_t c = 0; c < NCODES; c++) {
                uint64_t n = t->cells[cell_req(r, meth, c)];
                if (!n)
                    continue;
                if (c < NCODES - 1)
                    snprintf(code, sizeof code, "%d", codes[c]);
                else
                    snprintf(code, sizeof code, "other");
                labels l = { { "route", "method", "code" },
                             { m->routes[r], method_names[meth], code } };
                sample_u64(b, "gotuned_http_requests_total", &l, n);
            }

    family(b, "gotuned_http_request_duration_seconds", "histogram",
           "Time from a request's arrival to its answer being queued, by route template "
           "and method; blocking queries that were held are not in it (see "
           "gotuned_blocking_query_duration_seconds).");
    for (size_t r = 0; r < m->nroutes; r++)
        for (size_t meth = 0; meth < NMETHODS; meth++) {
            const uint64_t *counts = &t->cells[cell_dur(m, r, meth, 0)];
            uint64_t any = 0;
            for (size_t i = 0; i <= NDUR; i++)
                any += counts[i];
            if (!any)
                continue;
            labels l = { { "route", "method" }, { m->routes[r], method_names[meth] } };
            histogram(b, "gotuned_http_request_duration_seconds", &l, dur_bounds_s, NDUR,
                      counts, (double)t->cells[cell_sum(m, r, meth)] / 1e9);
        }

    family(b, "gotuned_blocking_query_duration_seconds", "histogram",
           "Time from arrival to answer of the config requests that were held as blocking "
           "queries (until a new version, the wait, a hang-up or shutdown).");
    histogram(b, "gotuned_blocking_query_duration_seconds", NULL, held_bounds_s, NHELD,
              t->held, (double)t->held_sum_ns / 1e9);
}

static void render_waitq(buf *b, metrics *m)
{
    waitq_counts wc = { 0 };
    if (m->wq)
        waitq_stats(m->wq, &wc);
    family(b, "gotuned_blocking_queries_waiting", "gauge",
           "Blocking queries held right now.");
    sample_u64(b, "gotuned_blocking_queries_waiting", NULL, wc.waiting);
    family(b, "gotuned_blocking_queries_resumed_total", "counter",
           "Held blocking queries resumed, by cause: a new version or the agent's deletion "
           "(notified), the wait ran out (timeout), the client went away (disconnect), "
           "the server stopped (shutdown).");
    static const char *const causes[] = { "notified", "timeout", "disconnect", "shutdown" };
    const uint64_t counts[] = { wc.woken, wc.timed_out, wc.disconnected, wc.closed };
    for (size_t i = 0; i < 4; i++) {
        labels l = { { "cause" }, { causes[i] } };
        sample_u64(b, "gotuned_blocking_queries_resumed_total", &l, counts[i]);
    }
}

static void render_registry(buf *b, metrics *m, const totals *t)
{
    family(b, "gotuned_build_info", "gauge", "Always 1; the version of this gotuned.");
    labels v = { { "version" }, { m->version } };
    sample_u64(b, "gotuned_build_info", &v, 1);

    render_http(b, m, t);
    render_waitq(b, m);

    family(b, "gotuned_telemetry_samples_total", "counter",
           "Telemetry samples by format and result: accepted (stored), or rejected (a "
           "SCHED line that did not parse, or a sample of a push refused as a whole).");
    for (size_t f = 0; f < METRICS_NFORMATS; f++)
        for (size_t k = 0; k < 2; k++) {
            labels l = { { "format", "result" },
                         { format_names[f], k ? "rejected" : "accepted" } };
            sample_u64(b, "gotuned_telemetry_samples_total", &l, t->samples[f][k]);
        }

    family(b, "gotuned_rollbacks_total", "counter",
           "Rollback versions committed since start, by trigger: an operator's request or "
           "a failed verification.");
    for (size_t i = 0; i < METRICS_NTRIGGERS; i++) {
        labels l = { { "trigger" }, { trigger_names[i] } };
        sample_u64(b, "gotuned_rollbacks_total", &l, t->rollbacks[i]);
    }
}

/* Resident memory from /proc/self/statm; -1 when it cannot be read. */
static double resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f)
        return -1;
    unsigned long long size, rss;
    int got = fscanf(f, "%llu %llu", &size, &rss);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return got == 2 && page > 0 ? (double)rss * (double)page : -1;
}

static void render_process(buf *b, const metrics *m)
{
    if (m) {
        family(b, "process_start_time_seconds", "gauge",
               "Start time of the process since the Unix epoch, in seconds.");
        sample_double(b, "process_start_time_seconds", NULL, m->start_time_s);
    }
    struct timespec cpu;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu) == 0) {
        family(b, "process_cpu_seconds_total", "counter",
               "User and system CPU time of the process, in seconds.");
        sample_double(b, "process_cpu_seconds_total", NULL,
                      (double)cpu.tv_sec + (double)cpu.tv_nsec / 1e9);
    }
    double rss = resident_bytes();
    if (rss >= 0) {
        family(b, "process_resident_memory_bytes", "gauge", "Resident memory, in bytes.");
        sample_double(b, "process_resident_memory_bytes", NULL, rss);
    }
}

static void render_store(buf *b, const store_stats *st)
{
    family(b, "gotuned_store_commit_duration_seconds", "histogram",
           "Duration of the store's successful SQLite COMMITs, by kind: durable "
           "(synchronous FULL: agents, versions, events, policies) or batch (the "
           "sample flusher's transactions, synchronous NORMAL).");
    for (int k = 0; k < STORE_COMMIT_NKINDS; k++) {
        labels l = { { "kind" }, { store_commit_kind_name(k) } };
        histogram(b, "gotuned_store_commit_duration_seconds", &l, st->commit[k].bounds,
                  st->commit[k].nbounds, st->commit[k].counts, st->commit[k].sum);
    }
    family(b, "gotuned_store_batch_samples", "histogram",
           "Samples written per committed flusher batch (batches without samples are not "
           "counted).");
    histogram(b, "gotuned_store_batch_samples", NULL, st->batch.bounds, st->batch.nbounds,
              st->batch.counts, st->batch.sum);
    family(b, "gotuned_store_samples_persisted_total", "counter",
           "Samples written to the database since start.");
    sample_u64(b, "gotuned_store_samples_persisted_total", NULL, st->samples_persisted);
    family(b, "gotuned_store_samples_pending", "gauge",
           "Accepted samples waiting for the database.");
    sample_u64(b, "gotuned_store_samples_pending", NULL, st->samples_pending);
    family(b, "gotuned_store_samples_dropped_total", "counter",
           "Accepted samples dropped since start because too many waited for the database.");
    sample_u64(b, "gotuned_store_samples_dropped_total", NULL, st->samples_dropped);
    family(b, "gotuned_config_versions_total", "counter",
           "Config versions committed since start, by source.");
    for (int i = 0; i < STORE_NSOURCES; i++) {
        labels l = { { "source" }, { store_source_name(i) } };
        sample_u64(b, "gotuned_config_versions_total", &l, st->versions[i]);
    }
}

static void render_agents(buf *b, const metrics_scrape *x)
{
    family(b, "gotuned_store_up", "gauge",
           "1 when the store answered this scrape's agent census, else 0.");
    sample_u64(b, "gotuned_store_up", NULL, x->census_ok ? 1 : 0);
    if (!x->census_ok)
        return;
    family(b, "gotuned_agents", "gauge",
           "Agents by effective mode and state: stale when not seen for 60 s (as the "
           "dashboard marks them), else live.");
    for (int mode = 0; mode < 3; mode++)
        for (int stale = 0; stale < 2; stale++) {
            labels l = { { "mode", "state" },
                         { store_mode_name(mode), stale ? "stale" : "live" } };
            sample_u64(b, "gotuned_agents", &l, x->agents[mode][stale]);
        }
    family(b, "gotuned_agent_dropped_samples", "gauge",
           "The sum of the samples agents report they dropped while the server was "
           "unreachable (each agent's last report; deleted agents leave the sum).");
    sample_double(b, "gotuned_agent_dropped_samples", NULL, x->agents_dropped);
}

int metrics_render(metrics *m, const metrics_scrape *x, char **out, size_t *len)
{
    buf b = { 0 };
    *out = NULL;
    *len = 0;
    if (m) {
        totals t;
        if (sum_shards(m, &t))
            return -ENOMEM;
        render_registry(&b, m, &t);
        free(t.cells);
    }
    render_process(&b, m);
    if (x && x->store)
        render_store(&b, x->store);
    if (x)
        render_agents(&b, x);
    if (b.failed || !reserve(&b, 1)) {
        free(b.p);
        return -ENOMEM;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}
