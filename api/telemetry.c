/*
 * telemetry.c — POST /api/v1/telemetry: a JSON batch (agent facts plus
 * samples), or the raw stderr of a Go program run with GODEBUG=schedtrace
 * as text/plain with the agent's identity in the query.
 *
 * Everything is decoded and validated before the store is touched, so a
 * rejected push changes nothing.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/internal.h"
#include "server/metrics.h"
#include "tuner/schedtrace.h"

/* Samples decoded from one request; each sample's local_runq is its own
 * allocation, which also holds its pool_queues. */
typedef struct batch {
    tuner_sample *s;
    size_t n, cap;
} batch;

static void batch_free(batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->s[i].local_runq);
    free(b->s);
}

/* Appends a copy of *s; false when out of memory. */
static bool batch_push(batch *b, const tuner_sample *s)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        tuner_sample *grown = realloc(b->s, cap * sizeof *grown);
        if (!grown)
            return false;
        b->s = grown;
        b->cap = cap;
    }
    size_t count = (size_t)s->nprocs + s->npool;
    int32_t *q = malloc((count ? count : 1) * sizeof *q);
    if (!q)
        return false;
    if (s->nprocs)
        memcpy(q, s->local_runq, s->nprocs * sizeof *q);
    if (s->npool)
        memcpy(q + s->nprocs, s->pool_queues, s->npool * sizeof *q);
    b->s[b->n] = *s;
    b->s[b->n].local_runq = q;
    b->s[b->n++].pool_queues = q + s->nprocs;
    return true;
}

/* Which optional agent facts a push stated. */
enum { P_HOST = 1, P_PID = 2, P_RUNTIME = 4, P_NUMCPU = 8, P_AFFINITY = 16, P_SOURCE = 32,
       P_PARENT = 64, P_THROTTLE = 128, P_DROPPED = 256 };

/* Records the version the push says the agent runs (no event: the ACK is
 * the audited path; this keeps the view true after an agent restarts). */
static void note_applied(api_call *c, store_agent *a, int64_t applied)
{
    if (applied < 0 || applied == a->applied_version)
        return;
    store_agent *values = malloc(sizeof *values);
    if (!values)
        return;
    *values = *a;
    values->applied_version = applied;
    values->applied_ms = c->ctx->now_ms();
    store_change ch = { .agent_id = a->id, .expect_version = -1,
                        .fields = STORE_SET_APPLIED, .values = values };
    if (store_apply(c->ctx->store, &ch, 1, values->applied_ms) == 0 && ch.rc == 0)
        store_agent_get(c->ctx->store, a->id, a);
    free(values);
}

/* The throttling report before this one, for the recent share: the
 * previous report, unless the counters went backwards (a new cgroup). */
static void shift_throttle(store_agent *facts, const store_agent *old, unsigned present,
                           int64_t now)
{
    if (!(present & P_THROTTLE)) {
        facts->throttle = old ? old->throttle : (store_throttle){ .periods = -1 };
        facts->throttle_prev = old ? old->throttle_prev : (store_throttle){ .periods = -1 };
        return;
    }
    facts->throttle.ms = now;
    const store_throttle *o = old ? &old->throttle : NULL;
    bool monotonic = o && o->periods >= 0 && facts->throttle.periods >= o->periods &&
                     facts->throttle.throttled >= o->throttled &&
                     facts->throttle.throttled_us >= o->throttled_us;
    facts->throttle_prev = monotonic ? *o : (store_throttle){ .periods = -1 };
}

/* Stores the agent's facts and the samples, then answers, with the current
 * config when the agent runs another version (unless it rejected this one).
 * Facts the push did not state keep their previous values, except the CPU
 * limit, which every push states (absent = unlimited). applied is the
 * version the push says the agent runs, -1 when it did not say. Returns 0
 * when the samples were stored and the answer is 200, -1 when it is an
 * error. */
static int commit(api_call *c, store_agent *facts, const unsigned present, batch *b,
                  int64_t applied, json_t *extra)
{
    store_agent old;
    int64_t now = c->ctx->now_ms();
    bool known = store_agent_get(c->ctx->store, facts->id, &old) == 0;
    /* A push may move an agent to another service: an agent token must
     * hold the one it leaves as well as the one it names. */
    if (known && check_scope(c, old.service, "the service this agent is registered under")) {
        json_decref(extra);
        return -1;
    }
    shift_throttle(facts, known ? &old : NULL, present, now);
    if (known) {
        if (!(present & P_DROPPED))
            facts->dropped_samples = old.dropped_samples;
        if (!(present & P_HOST))
            memcpy(facts->hostname, old.hostname, sizeof old.hostname);
        if (!(present & P_PID))
            facts->pid = old.pid;
        if (!(present & P_RUNTIME))
            memcpy(facts->runtime, old.runtime, sizeof old.runtime);
        if (!(present & P_NUMCPU))
            facts->cpu.num_cpu = old.cpu.num_cpu;
        if (!(present & P_AFFINITY))
            facts->cpu.affinity = old.cpu.affinity;
        if (!(present & P_SOURCE) && facts->cpu.limit == old.cpu.limit)
            memcpy(facts->limit_source, old.limit_source, sizeof old.limit_source);
        if (!(present & P_PARENT))
            facts->parent_tighter = old.parent_tighter;
    }
    bool created = false;
    int rc = store_agent_upsert_as(c->ctx->store, facts, call_actor(c, "agent"), now, &created);
    if (rc == 0 && b->n > 0) {
        for (size_t i = 0; i < b->n; i++) {
            b->s[i].recv_ms = now;
            if (b->s[i].ts_ms < 0)
                b->s[i].ts_ms = now;
        }
        rc = store_samples_append(c->ctx->store, facts->id, b->s, b->n);
    }
    if (rc) {
        json_decref(extra);
        reply_store_error(c, rc, "agent");
        return -1;
    }
    store_agent *a = malloc(sizeof *a);
    if (!a || store_agent_get(c->ctx->store, facts->id, a) != 0) {
        free(a);
        json_decref(extra);
        reply_error(c, 500, "internal", NULL, "the agent could not be read back");
        return -1;
    }
    note_applied(c, a, applied);
    deliver_pending(c->ctx, a);
    c->resp->index = a->config_version;
    bool send_config = a->applied_version != a->config_version &&
                       a->nack_version != a->config_version;
    if (!extra && !send_config) {
        /* The answer to nearly every push, written directly: building it
         * with jansson cost a tenth of the push (docs/performance.md). An
         * id is [A-Za-z0-9._-]{1,128}: nothing to escape. */
        reply_json_text(c, 200, "{\"agent\":\"%s\",\"created\":%s,\"accepted\":%zu,"
                        "\"config_version\":%lld}", facts->id, created ? "true" : "false",
                        b->n, (long long)a->config_version);
        free(a);
        return 0;
    }
    json_t *o = json_pack("{s:s, s:b, s:I, s:I}", "agent", facts->id, "created", created,
                          "accepted", (json_int_t)b->n, "config_version",
                          (json_int_t)a->config_version);
    if (extra)
        json_object_update_new(o, extra);
    store_version v = { 0 };
    if (send_config &&
        (a->config_version == 0 || store_config_get(c->ctx->store, a->id, 0, &v) == 0))
        json_object_set_new(o, "config", json_version(a->id, &v));
    store_version_cleanup(&v);
    free(a);
    reply_json(c, 200, o);
    return 0;
}

/* ------------------------------------------------------------------ JSON */

/* Reads an array of 1..TUNER_MAX_PROCS queue lengths at path into out[]
 * and returns how many, or -1 after replying 422. */
static long decode_queues(api_call *c, const jdoc_node *q, const char *path, int32_t *out)
{
    if (!jdoc_is_array(q) || jdoc_size(q) == 0 || jdoc_size(q) > TUNER_MAX_PROCS) {
        reply_error(c, 422, "invalid", path,
                    "%s must be an array of 1 to %d non-negative integers", path,
                    TUNER_MAX_PROCS);
        return -1;
    }
    size_t i;
    const jdoc_node *e;
    jdoc_array_foreach(q, i, e) {
        if (!jdoc_is_integer(e) || jdoc_int(e) < 0 || jdoc_int(e) > 100000000) {
            reply_error(c, 422, "invalid", path,
                        "%s[%zu] must be an integer from 0 to 100000000", path, i);
            return -1;
        }
        out[i] = (int32_t)jdoc_int(e);
    }
    return (long)i;
}

/* Reads the optional object path.key into *obj (NULL when absent or null);
 * -1 after replying 422 when it is there but not an object with keys. */
static int sub_object(api_call *c, const jdoc_node *js, const char *path, const char *key,
                      const char *const *keys, char *sub, size_t sublen, const jdoc_node **obj)
{
    *obj = jdoc_get(js, key);
    if (!*obj || jdoc_is_null(*obj)) {
        *obj = NULL;
        return 0;
    }
    snprintf(sub, sublen, "%s.%s", path, key);
    if (!jdoc_is_object(*obj)) {
        reply_error(c, 422, "invalid", sub, "%s must be an object", sub);
        return -1;
    }
    return check_keys(c, *obj, sub, keys);
}

/* The worker pool a Go library agent reports with a sample. */
static int decode_pool(api_call *c, const jdoc_node *js, const char *path, tuner_sample *s,
                       int32_t *pool)
{
    static const char *const keys[] = { "steal_threshold", "steal_scope", "queues", NULL };
    char sub[96], qpath[112];
    const jdoc_node *o;
    if (sub_object(c, js, path, "pool", keys, sub, sizeof sub, &o))
        return -1;
    if (!o)
        return 0;
    long long v;
    bool has;
    if (get_int(c, o, sub, "steal_threshold", 1, 256, true, &v, &has))
        return -1;
    if (has)
        s->pool_threshold = (int32_t)v;
    const char *scope = NULL;
    if (get_str(c, o, sub, "steal_scope", 16, &scope))
        return -1;
    if (scope && (s->pool_scope = tuner_scope_parse(scope)) < 0) {
        reply_error(c, 422, "invalid", sub, "%s.steal_scope must be \"neighbors\" or \"all\"",
                    sub);
        return -1;
    }
    snprintf(qpath, sizeof qpath, "%s.queues", sub);
    long n = decode_queues(c, jdoc_get(o, "queues"), qpath, pool);
    if (n < 0)
        return -1;
    s->npool = (uint32_t)n;
    s->pool_queues = pool;
    return 0;
}

/* runq and pool have room for TUNER_MAX_PROCS values each; *s points into
 * them. */
static int decode_sample(api_call *c, const jdoc_node *js, size_t idx, tuner_sample *s,
                         int32_t *runq, int32_t *pool)
{
    static const char *const keys[] = { "ts_ms", "gomaxprocs", "idle_procs", "threads",
                                        "spinning_threads", "idle_threads", "needspinning",
                                        "global_runq", "local_runq", "goroutines",
                                        "sched_latency_us", "gc_pause_us", "pool", NULL };
    char path[64];
    snprintf(path, sizeof path, "samples[%zu]", idx);
    if (!jdoc_is_object(js)) {
        reply_error(c, 422, "invalid", path, "%s must be an object", path);
        return -1;
    }
    if (check_keys(c, js, path, keys))
        return -1;
    tuner_sample_init(s);
    s->ts_ms = -1;
    long long v;
    bool present;
    static const struct { const char *key; size_t off; bool wide; long long max; } ints[] = {
        { "gomaxprocs", offsetof(tuner_sample, gomaxprocs), false, TUNER_MAX_PROCS },
        { "idle_procs", offsetof(tuner_sample, idle_procs), false, TUNER_MAX_PROCS },
        { "threads", offsetof(tuner_sample, threads), false, 10000000 },
        { "spinning_threads", offsetof(tuner_sample, spinning_threads), false, 10000000 },
        { "idle_threads", offsetof(tuner_sample, idle_threads), false, 10000000 },
        { "needspinning", offsetof(tuner_sample, needspinning), false, 1 },
        { "global_runq", offsetof(tuner_sample, global_runq), true, 1000000000000LL },
        { "goroutines", offsetof(tuner_sample, goroutines), true, 1000000000000LL },
        { "ts_ms", offsetof(tuner_sample, ts_ms), true, 1LL << 52 },
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        long long min = strcmp(ints[i].key, "gomaxprocs") == 0 ? 1 : 0;
        if (get_int(c, js, path, ints[i].key, min, ints[i].max, false, &v, &present))
            return -1;
        if (!present)
            continue;
        char *field = (char *)s + ints[i].off;
        if (ints[i].wide)
            *(int64_t *)(void *)field = v;
        else
            *(int32_t *)(void *)field = (int32_t)v;
    }
    /* local_runq (schedtrace) is required unless the sample states
     * gomaxprocs (a runtime/metrics sample has no per-P queues). */
    char qpath[80];
    snprintf(qpath, sizeof qpath, "%s.local_runq", path);
    const jdoc_node *q = jdoc_get(js, "local_runq");
    if (q || s->gomaxprocs < 0) {
        long np = decode_queues(c, q, qpath, runq);
        if (np < 0)
            return -1;
        s->nprocs = (uint32_t)np;
        s->local_runq = runq;
        if (s->gomaxprocs > 0 && s->gomaxprocs != np) {
            reply_error(c, 422, "invalid", qpath,
                        "%s has %ld entries but gomaxprocs is %d: one per P", qpath, np,
                        s->gomaxprocs);
            return -1;
        }
    }
    static const char *const lkeys[] = { "p50", "p99", NULL };
    static const char *const gkeys[] = { "p99", NULL };
    char sub[96];
    const jdoc_node *o;
    if (sub_object(c, js, path, "sched_latency_us", lkeys, sub, sizeof sub, &o))
        return -1;
    if (o && (get_real(c, o, sub, "p50", 0, 1e12, true, &s->lat_p50_us, NULL) ||
              get_real(c, o, sub, "p99", 0, 1e12, true, &s->lat_p99_us, NULL)))
        return -1;
    if (sub_object(c, js, path, "gc_pause_us", gkeys, sub, sizeof sub, &o))
        return -1;
    if (o && get_real(c, o, sub, "p99", 0, 1e12, true, &s->gc_p99_us, NULL))
        return -1;
    return decode_pool(c, js, path, s, pool);
}

/* agent.throttling: the cgroup's cumulative cpu.stat counters. */
static int decode_throttling(api_call *c, const jdoc_node *ja, store_agent *facts,
                             unsigned *present)
{
    static const char *const keys[] = { "periods", "throttled_periods", "throttled_us", NULL };
    char sub[32];
    const jdoc_node *o;
    if (sub_object(c, ja, "agent", "throttling", keys, sub, sizeof sub, &o))
        return -1;
    if (!o)
        return 0;
    long long p = -1, t = -1, us = -1;
    if (get_int(c, o, sub, "periods", 0, INT64_MAX, false, &p, NULL) ||
        get_int(c, o, sub, "throttled_periods", 0, INT64_MAX, false, &t, NULL) ||
        get_int(c, o, sub, "throttled_us", 0, INT64_MAX, false, &us, NULL))
        return -1;
    if (p < 0 || t < 0 || us < 0) {
        reply_error(c, 422, "invalid", sub,
                    "%s needs periods, throttled_periods and throttled_us", sub);
        return -1;
    }
    if (t > p) {
        reply_error(c, 422, "invalid", "agent.throttling.throttled_periods",
                    "agent.throttling.throttled_periods cannot exceed periods");
        return -1;
    }
    facts->throttle = (store_throttle){ .periods = p, .throttled = t, .throttled_us = us };
    *present |= P_THROTTLE;
    return 0;
}

static void telemetry_json(api_call *c)
{
    static const char *const root_keys[] = { "agent", "samples", NULL };
    static const char *const agent_keys[] = { "id", "service", "hostname", "pid", "runtime",
                                              "num_cpu", "affinity", "cpu_limit",
                                              "cpu_limit_source", "parent_tighter",
                                              "applied_version", "throttling",
                                              "dropped_samples", NULL };
    jdoc doc;
    const jdoc_node *root;
    batch b = { 0 };
    int32_t *runq = NULL;   /* TUNER_MAX_PROCS queue lengths, then as many pool queues */
    if (decode_body(c, false, &doc, &root))
        return;
    /* Every sample of a push refused from here on counts as rejected. */
    const jdoc_node *named = jdoc_get(root, "samples");
    size_t nnamed = jdoc_is_array(named) ? jdoc_size(named) : 0;
    bool stored = false;
    if (check_keys(c, root, "", root_keys))
        goto out;
    const jdoc_node *ja = jdoc_get(root, "agent");
    if (!jdoc_is_object(ja)) {
        reply_error(c, 422, "invalid", "agent", "agent must be an object with id and service");
        goto out;
    }
    if (check_keys(c, ja, "agent", agent_keys))
        goto out;

    store_agent facts;
    memset(&facts, 0, sizeof facts);
    facts.parent_tighter = -1;
    unsigned present = 0;
    const char *id = NULL, *service = NULL, *host = NULL, *runtime = NULL, *source = NULL;
    if (get_str(c, ja, "agent", "id", STORE_ID_MAX, &id) ||
        get_str(c, ja, "agent", "service", STORE_ID_MAX, &service) ||
        get_str(c, ja, "agent", "hostname", STORE_HOST_MAX, &host) ||
        get_str(c, ja, "agent", "runtime", STORE_RUNTIME_MAX, &runtime) ||
        get_str(c, ja, "agent", "cpu_limit_source", STORE_SOURCE_MAX, &source))
        goto out;
    if (!api_valid_id(id)) {
        reply_error(c, 422, "invalid", "agent.id", "agent.id must match [A-Za-z0-9._-]{1,128}");
        goto out;
    }
    if (!api_valid_id(service)) {
        reply_error(c, 422, "invalid", "agent.service",
                    "agent.service must match [A-Za-z0-9._-]{1,128}");
        goto out;
    }
    char what[STORE_ID_MAX + 32];
    snprintf(what, sizeof what, "agent.service '%s'", service);
    if (check_scope(c, service, what))
        goto out;
    snprintf(facts.id, sizeof facts.id, "%s", id);
    snprintf(facts.service, sizeof facts.service, "%s", service);
    if (host) {
        snprintf(facts.hostname, sizeof facts.hostname, "%s", host);
        present |= P_HOST;
    }
    if (runtime) {
        snprintf(facts.runtime, sizeof facts.runtime, "%s", runtime);
        present |= P_RUNTIME;
    }
    if (source) {
        snprintf(facts.limit_source, sizeof facts.limit_source, "%s", source);
        present |= P_SOURCE;
    }
    long long v;
    bool has;
    if (get_int(c, ja, "agent", "pid", 1, 1LL << 31, true, &v, &has))
        goto out;
    if (has) {
        facts.pid = v;
        present |= P_PID;
    }
    if (get_int(c, ja, "agent", "num_cpu", 1, 65536, true, &v, &has))
        goto out;
    if (has) {
        facts.cpu.num_cpu = (int32_t)v;
        present |= P_NUMCPU;
    }
    if (get_int(c, ja, "agent", "affinity", 1, 65536, true, &v, &has))
        goto out;
    if (has) {
        facts.cpu.affinity = (int32_t)v;
        present |= P_AFFINITY;
    }
    long long applied = -1;
    if (get_real(c, ja, "agent", "cpu_limit", 0.001, 65536, true, &facts.cpu.limit, NULL) ||
        get_int(c, ja, "agent", "applied_version", 0, INT64_MAX, true, &applied, NULL) ||
        get_int(c, ja, "agent", "dropped_samples", 0, INT64_MAX, true, &v, &has))
        goto out;
    if (has) {
        facts.dropped_samples = v;
        present |= P_DROPPED;
    }
    if (decode_throttling(c, ja, &facts, &present))
        goto out;
    const jdoc_node *pt = jdoc_get(ja, "parent_tighter");
    if (pt && !jdoc_is_null(pt)) {
        if (!jdoc_is_boolean(pt)) {
            reply_error(c, 422, "invalid", "agent.parent_tighter",
                        "agent.parent_tighter must be true or false");
            goto out;
        }
        facts.parent_tighter = jdoc_is_true(pt);
        present |= P_PARENT;
    }

    const jdoc_node *js = jdoc_get(root, "samples");
    if (js && !jdoc_is_null(js)) {
        if (!jdoc_is_array(js)) {
            reply_error(c, 422, "invalid", "samples", "samples must be an array");
            goto out;
        }
        if (jdoc_size(js) > API_MAX_SAMPLES) {
            reply_error(c, 413, "too_large", "samples",
                        "at most %d samples per request; send smaller batches",
                        API_MAX_SAMPLES);
            goto out;
        }
        runq = malloc(2 * TUNER_MAX_PROCS * sizeof *runq);
        if (!runq) {
            reply_error(c, 500, "internal", NULL, "out of memory");
            goto out;
        }
        size_t i;
        const jdoc_node *e;
        jdoc_array_foreach(js, i, e) {
            tuner_sample s;
            if (decode_sample(c, e, i, &s, runq, runq + TUNER_MAX_PROCS))
                goto out;
            if (!batch_push(&b, &s)) {
                reply_error(c, 500, "internal", NULL, "out of memory");
                goto out;
            }
        }
    }
    stored = commit(c, &facts, present, &b, applied, NULL) == 0;
out:
    metrics_samples(c->ctx->metrics, METRICS_FORMAT_JSON, stored ? b.n : 0,
                    stored ? 0 : nnamed);
    free(runq);
    batch_free(&b);
    jdoc_cleanup(&doc);
}

/* ------------------------------------------------------------------ text */

typedef struct text_state {
    batch b;
    size_t seen;            /* SCHED samples parsed, past the cap too */
    size_t lines, rejected;
    json_t *rejections;
    bool oom, too_many;
} text_state;

static void on_sample(void *ud, const tuner_sample *s)
{
    text_state *t = ud;
    t->seen++;
    if (t->b.n >= API_MAX_TEXT_SAMPLES) {
        t->too_many = true;
        return;
    }
    if (!batch_push(&t->b, s))
        t->oom = true;
}

static void on_line(void *ud, const char *text, size_t len)
{
    (void)text;
    (void)len;
    ((text_state *)ud)->lines++;
}

static void on_reject(void *ud, const char *reason, const char *text, size_t len)
{
    text_state *t = ud;
    t->rejected++;
    if (json_array_size(t->rejections) >= API_MAX_REJECTIONS)
        return;
    /* Show the start of what was refused; cut at a byte that keeps it
     * valid UTF-8 for the JSON encoder. */
    size_t n = len < 200 ? len : 200;
    json_t *s = json_stringn(text, n);
    while (!s && n > 0)
        s = json_stringn(text, --n);
    json_array_append_new(t->rejections, json_pack("{s:s, s:o}", "reason", reason, "text",
                                                   s ? s : json_string("")));
}

static int query_real(api_call *c, const char *key, double min, double max, double *out)
{
    const char *v = c->req->query(c->req->conn, key);
    if (!v || !*v || strcmp(v, "null") == 0 || strcmp(v, "max") == 0)
        return 0;
    char *end;
    double d = strtod(v, &end);
    if (*end != '\0' || !isfinite(d) || d < min || d > max) {
        reply_error(c, 400, "bad_request", key, "%s must be a number from %g to %g", key, min,
                    max);
        return -1;
    }
    *out = d;
    return 0;
}

static int query_str(api_call *c, const char *key, char *dst, size_t len)
{
    const char *v = c->req->query(c->req->conn, key);
    if (!v)
        return 0;
    if (strlen(v) >= len) {
        reply_error(c, 400, "bad_request", key, "%s is longer than %zu bytes", key, len - 1);
        return -1;
    }
    snprintf(dst, len, "%s", v);
    return 1;
}

static void telemetry_text(api_call *c)
{
    const char *id = NULL, *service = NULL;
    if (query_id(c, "agent", &id) || query_id(c, "service", &service))
        return;
    if (!id || !service) {
        reply_error(c, 400, "bad_request", id ? "service" : "agent",
                    "text/plain telemetry needs ?agent=ID&service=NAME in the query");
        return;
    }
    char what[STORE_ID_MAX + 32];
    snprintf(what, sizeof what, "?service=%s", service);
    if (check_scope(c, service, what))
        return;
    store_agent facts;
    memset(&facts, 0, sizeof facts);
    facts.parent_tighter = -1;
    snprintf(facts.id, sizeof facts.id, "%s", id);
    snprintf(facts.service, sizeof facts.service, "%s", service);
    unsigned present = 0;
    int r;
    if ((r = query_str(c, "hostname", facts.hostname, sizeof facts.hostname)) < 0)
        return;
    present |= r ? P_HOST : 0;
    if ((r = query_str(c, "runtime", facts.runtime, sizeof facts.runtime)) < 0)
        return;
    present |= r ? P_RUNTIME : 0;
    /* Absent numbers read as 0, which no valid value is. */
    long long pid, num_cpu, affinity, applied;
    if (query_int(c, "pid", 0, 1, 1LL << 31, &pid) ||
        query_int(c, "num_cpu", 0, 1, 65536, &num_cpu) ||
        query_int(c, "affinity", 0, 1, 65536, &affinity) ||
        query_int(c, "applied_version", -1, 0, INT64_MAX, &applied))
        return;
    facts.pid = pid;
    facts.cpu.num_cpu = (int32_t)num_cpu;
    facts.cpu.affinity = (int32_t)affinity;
    present |= (pid ? P_PID : 0) | (num_cpu ? P_NUMCPU : 0) | (affinity ? P_AFFINITY : 0);
    if (query_real(c, "cpu_limit", 0.001, 65536, &facts.cpu.limit))
        return;

    text_state t = { .rejections = json_array() };
    st_sink sink = { on_sample, on_line, on_reject, &t };
    st_parse_buffer(c->req->body, c->req->body_len, &sink);
    bool stored = false;
    if (t.oom) {
        reply_error(c, 500, "internal", NULL, "out of memory");
    } else if (t.too_many) {
        reply_error(c, 413, "too_large", NULL,
                    "at most %d SCHED samples per request; send smaller batches",
                    API_MAX_TEXT_SAMPLES);
    } else {
        json_t *extra = json_pack("{s:I, s:I, s:O}", "rejected", (json_int_t)t.rejected,
                                  "other_lines", (json_int_t)t.lines, "rejections",
                                  t.rejections);
        stored = commit(c, &facts, present, &t.b, applied, extra) == 0;
    }
    metrics_samples(c->ctx->metrics, METRICS_FORMAT_TEXT, stored ? t.b.n : 0,
                    stored ? t.rejected : t.seen + t.rejected);
    json_decref(t.rejections);
    batch_free(&t.b);
}

/* True when ct is mime, alone or followed by parameters: "text/plainx"
 * is not text/plain. */
static bool is_mime(const char *ct, const char *mime)
{
    size_t n = strlen(mime);
    return ct && strncasecmp(ct, mime, n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

void h_telemetry(api_call *c)
{
    const char *ct = c->req->header(c->req->conn, "Content-Type");
    bool text = is_mime(ct, "text/plain");
    if (!text && !is_mime(ct, "application/json")) {
        reply_error(c, 415, "unsupported_media_type", NULL,
                    "telemetry takes application/json or text/plain (schedtrace output)");
        return;
    }
    /* Behind on writing samples: refused before decoding, so that the CPU
     * goes to the flusher rather than to pushes that would be refused. */
    if (store_samples_busy(c->ctx->store)) {
        reply_store_error(c, -EBUSY, "samples");
        return;
    }
    if (text)
        telemetry_text(c);
    else
        telemetry_json(c);
}
