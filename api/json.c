/*
 * json.c — replies, request helpers and the JSON shapes of config, policy,
 * sample, agent, version and recommendation.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/internal.h"

/* ---------------------------------------------------------------- replies */

static void set_body(api_response *r, int status, json_t *body)
{
    r->status = status;
    r->content_type = "application/json";
    r->body = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(12));
    r->len = r->body ? strlen(r->body) : 0;
    json_decref(body);
    if (!r->body) {
        /* Only out of memory can get here; a fixed text still answers. */
        static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\",\"field\":null}}";
        r->status = 500;
        r->static_body = (const unsigned char *)oom;
        r->len = sizeof oom - 1;
    }
}

void reply_json(api_call *c, int status, json_t *body)
{
    set_body(c->resp, status, body ? body : json_object());
}

void reply_json_text(api_call *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0) {
        reply_error(c, 500, "internal", NULL, "out of memory");
        return;
    }
    c->resp->status = status;
    c->resp->content_type = "application/json";
    c->resp->body = text;
    c->resp->len = (size_t)n;
}

void reply_empty(api_call *c, int status)
{
    c->resp->status = status;
    c->resp->body = NULL;
    c->resp->len = 0;
}

void api_error_response(api_response *resp, int status, const char *code,
                        const char *message, const char *field)
{
    json_t *err = json_pack("{s:{s:s, s:s, s:s?}}", "error", "code", code, "message",
                            message, "field", field);
    set_body(resp, status, err);
}

/* Messages quote what the client sent (a path, a key) and may be cut at
 * any byte; jansson refuses a string that is not UTF-8, which would turn
 * the error into a 500. Replaces each byte that does not start a
 * well-formed sequence with '?'. */
static void utf8_scrub(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = jdoc_utf8_len(p, strnlen((const char *)p, 4));
        if (n == 0) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

void reply_error(api_call *c, int status, const char *code, const char *field,
                 const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    utf8_scrub(msg);
    /* A field name quotes a JSON key cut to fit: scrubbed the same way. */
    char fbuf[512];
    if (field) {
        snprintf(fbuf, sizeof fbuf, "%s", field);
        utf8_scrub(fbuf);
        field = fbuf;
    }
    if (c->resp->body) {
        free(c->resp->body);
        c->resp->body = NULL;
    }
    api_error_response(c->resp, status, code, msg, field);
}

void reply_store_error(api_call *c, int rc, const char *what)
{
    switch (rc) {
    case -ENOENT:
        reply_error(c, 404, "not_found", NULL, "%s not found", what);
        break;
    case -ESTALE:
        reply_error(c, 409, "conflict", NULL,
                    "%s changed while this request ran; read it again and retry", what);
        break;
    case -ENOSPC:
        reply_error(c, 503, "unavailable", NULL, "the agent limit is reached");
        break;
    case -EBUSY:
        /* The sample queue is full: refused, not dropped, so the agent
         * keeps the samples and sends them again. */
        reply_error(c, 503, "unavailable", NULL,
                    "the server is behind writing samples to its database; "
                    "send them again in a second");
        c->resp->retry_after = 1;
        break;
    default:
        reply_error(c, 500, "internal", NULL, "the store failed (%s); see the server log",
                    strerror(-rc));
    }
}

/* ------------------------------------------------------- request helpers */

bool api_valid_id(const char *s)
{
    size_t n = 0;
    if (!s)
        return false;
    for (; s[n]; n++) {
        char ch = s[n];
        if (n >= STORE_ID_MAX)
            return false;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return n > 0;
}

/* True when the Content-Type header names mime (parameters ignored). */
static bool content_type_is(api_call *c, const char *mime)
{
    const char *ct = c->req->header(c->req->conn, "Content-Type");
    if (!ct)
        return false;
    size_t n = strlen(mime);
    while (*ct == ' ')
        ct++;
    return strncasecmp(ct, mime, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

int decode_body(api_call *c, bool allow_empty, jdoc *doc, const jdoc_node **out)
{
    const char *body = c->req->body;
    size_t len = c->req->body_len;
    if (len == 0 && allow_empty) {
        body = "{}";
        len = 2;
    } else if (!content_type_is(c, "application/json")) {
        reply_error(c, 415, "unsupported_media_type", NULL,
                    "this route takes application/json");
        return -1;
    }
    jdoc_error err;
    int rc = jdoc_parse(doc, body, len, &err);
    if (rc == -ENOMEM) {
        reply_error(c, 500, "internal", NULL, "out of memory");
        return -1;
    }
    if (rc == -E2BIG) {
        reply_error(c, 400, "malformed_json", NULL,
                    "JSON over a limit at line %d column %d: %s (request bodies allow %d "
                    "levels of nesting and %d members per object)",
                    err.line, err.column, err.text, JDOC_MAX_DEPTH, JDOC_MAX_MEMBERS);
        return -1;
    }
    if (rc) {
        reply_error(c, 400, "malformed_json", NULL, "malformed JSON at line %d column %d: %s",
                    err.line, err.column, err.text);
        return -1;
    }
    if (!jdoc_is_object(jdoc_root(doc))) {
        jdoc_cleanup(doc);
        reply_error(c, 400, "malformed_json", NULL, "the body must be a JSON object");
        return -1;
    }
    *out = jdoc_root(doc);
    return 0;
}

int query_int(api_call *c, const char *key, long long def, long long min,
              long long max, long long *out)
{
    const char *v = c->req->query(c->req->conn, key);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    bool digits = (v[0] >= '0' && v[0] <= '9') ||
                  (v[0] == '-' && v[1] >= '0' && v[1] <= '9');
    if (!digits || *end != '\0' || errno || n < min || n > max) {
        reply_error(c, 400, "bad_request", key, "%s must be an integer from %lld to %lld",
                    key, min, max);
        return -1;
    }
    *out = n;
    return 0;
}

int query_id(api_call *c, const char *key, const char **out)
{
    const char *v = c->req->query(c->req->conn, key);
    if (v && !api_valid_id(v)) {
        reply_error(c, 400, "bad_request", key,
                    "%s must match [A-Za-z0-9._-]{1,128}", key);
        return -1;
    }
    *out = v;
    return 0;
}

/* ------------------------------------------------------------ field readers */

/* "path.key", or "key" at the top level; cut to fit (names are short). */
static void field_name(char *buf, size_t len, const char *path, const char *key)
{
    int w = path && *path ? snprintf(buf, len, "%s.%s", path, key)
                          : snprintf(buf, len, "%s", key);
    if (w < 0)
        buf[0] = '\0';
}

int get_int(api_call *c, const jdoc_node *obj, const char *path, const char *key,
            long long min, long long max, bool null_ok, long long *out, bool *present)
{
    const jdoc_node *v = jdoc_get(obj, key);
    if (present)
        *present = false;
    if (!v || (null_ok && jdoc_is_null(v)))
        return 0;
    if (!jdoc_is_integer(v) || jdoc_int(v) < min || jdoc_int(v) > max) {
        char name[160];
        field_name(name, sizeof name, path, key);
        reply_error(c, 422, "invalid", name, "%s must be an integer from %lld to %lld", name,
                    min, max);
        return -1;
    }
    *out = jdoc_int(v);
    if (present)
        *present = true;
    return 0;
}

int get_real(api_call *c, const jdoc_node *obj, const char *path, const char *key,
             double min, double max, bool null_ok, double *out, bool *present)
{
    const jdoc_node *v = jdoc_get(obj, key);
    if (present)
        *present = false;
    if (!v || (null_ok && jdoc_is_null(v)))
        return 0;
    double d = jdoc_number(v);
    if (!jdoc_is_number(v) || !isfinite(d) || d < min || d > max) {
        char name[160];
        field_name(name, sizeof name, path, key);
        reply_error(c, 422, "invalid", name, "%s must be a number from %g to %g", name, min,
                    max);
        return -1;
    }
    *out = d;
    if (present)
        *present = true;
    return 0;
}

int get_str(api_call *c, const jdoc_node *obj, const char *path, const char *key,
            size_t maxlen, const char **out)
{
    const jdoc_node *v = jdoc_get(obj, key);
    if (!v || jdoc_is_null(v))
        return 0;
    /* jdoc refuses "\u0000", so the length check only guards the
     * contract that the C string is the whole value. */
    if (!jdoc_is_string(v) || jdoc_strlen(v) > maxlen ||
        strlen(jdoc_str(v)) != jdoc_strlen(v)) {
        char name[160];
        field_name(name, sizeof name, path, key);
        reply_error(c, 422, "invalid", name, "%s must be a string of at most %zu bytes", name,
                    maxlen);
        return -1;
    }
    *out = jdoc_str(v);
    return 0;
}

int check_keys(api_call *c, const jdoc_node *obj, const char *path, const char *const *keys)
{
    const jdoc_node *k, *v;
    jdoc_object_foreach(obj, k, v) {
        bool known = false;
        for (size_t i = 0; keys[i] && !known; i++)
            known = strcmp(keys[i], jdoc_str(k)) == 0;
        if (!known) {
            char name[160];
            field_name(name, sizeof name, path, jdoc_str(k));
            reply_error(c, 422, "invalid", name, "unknown field %s", name);
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ config */

json_t *json_config(const tuner_config *cfg)
{
    json_t *o = json_object(), *pool = json_object();
    for (int f = 0; f < TUNER_CFG_NFIELDS; f++) {
        if (!tuner_config_has(cfg, (tuner_cfg_field)f))
            continue;
        const char *name = tuner_cfg_fields[f].name;
        json_t *dst = o;
        if (strncmp(name, "pool.", 5) == 0) {
            dst = pool;
            name += 5;
        }
        if (f == TUNER_CFG_STEAL_SCOPE)
            json_object_set_new(dst, name, json_string(tuner_scope_name(cfg->v[f])));
        else
            json_object_set_new(dst, name, json_integer(cfg->v[f]));
    }
    if (json_object_size(pool))
        json_object_set_new(o, "pool", pool);
    else
        json_decref(pool);
    return o;
}

int decode_config(api_call *c, const jdoc_node *obj, const char *path, tuner_config *out)
{
    static const char *const top[] = { "gomaxprocs", "pool", "gosched_every", "chunk_size",
                                       "task_timeout_ms", NULL };
    static const char *const pool_keys[] = { "workers", "steal_threshold", "steal_scope", NULL };
    char pool_path[160];
    memset(out, 0, sizeof *out);
    if (!jdoc_is_object(obj)) {
        reply_error(c, 422, "invalid", path && *path ? path : NULL, "a config must be an object");
        return -1;
    }
    if (check_keys(c, obj, path, top))
        return -1;
    const jdoc_node *pool = jdoc_get(obj, "pool");
    field_name(pool_path, sizeof pool_path, path, "pool");
    if (pool && !jdoc_is_null(pool)) {
        if (!jdoc_is_object(pool)) {
            reply_error(c, 422, "invalid", pool_path, "%s must be an object", pool_path);
            return -1;
        }
        if (check_keys(c, pool, pool_path, pool_keys))
            return -1;
    }
    for (int f = 0; f < TUNER_CFG_NFIELDS; f++) {
        const char *name = tuner_cfg_fields[f].name;
        const jdoc_node *src = obj;
        const char *sub = path;
        if (strncmp(name, "pool.", 5) == 0) {
            if (!pool || jdoc_is_null(pool))
                continue;
            src = pool;
            sub = pool_path;
            name += 5;
        }
        if (f == TUNER_CFG_STEAL_SCOPE) {
            const char *s = NULL;
            if (get_str(c, src, sub, name, 32, &s))
                return -1;
            if (!s)
                continue;
            int scope = tuner_scope_parse(s);
            if (scope < 0) {
                char fname[160];
                field_name(fname, sizeof fname, sub, name);
                reply_error(c, 422, "invalid", fname, "%s must be \"neighbors\" or \"all\"",
                            fname);
                return -1;
            }
            tuner_config_set(out, (tuner_cfg_field)f, scope);
            continue;
        }
        long long v;
        bool present;
        if (get_int(c, src, sub, name, tuner_cfg_fields[f].min, tuner_cfg_fields[f].max, true,
                    &v, &present))
            return -1;
        if (present)
            tuner_config_set(out, (tuner_cfg_field)f, v);
    }
    return 0;
}

/* ------------------------------------------------------------------ policy */

json_t *json_policy(const tuner_policy *p)
{
    json_t *o = json_object();
    for (int f = 0; f < TUNER_POL_NFIELDS; f++) {
        if (!((p->set >> f) & 1u))
            continue;
        const tuner_pol_field_info *fi = &tuner_pol_fields[f];
        json_t *sec = json_object_get(o, fi->section);
        if (!sec) {
            sec = json_object();
            json_object_set_new(o, fi->section, sec);
        }
        json_t *v;
        switch (fi->type) {
        case TUNER_POL_INT: v = json_integer((json_int_t)p->v[f]); break;
        case TUNER_POL_BOOL: v = json_boolean(p->v[f] != 0); break;
        case TUNER_POL_ROUNDING: v = json_string(tuner_rounding_name((int)p->v[f])); break;
        case TUNER_POL_MODE: v = json_string(store_mode_name((int)p->v[f])); break;
        default: v = json_real(p->v[f]); break;
        }
        json_object_set_new(sec, fi->key, v);
    }
    return o;
}

int decode_policy(api_call *c, const jdoc_node *obj, tuner_policy *out)
{
    memset(out, 0, sizeof *out);
    /* Unknown sections and keys first, so a typo is named. */
    const jdoc_node *skey, *sec;
    jdoc_object_foreach(obj, skey, sec) {
        const char *sk = jdoc_str(skey);
        bool known = false;
        for (int f = 0; f < TUNER_POL_NFIELDS && !known; f++)
            known = strcmp(tuner_pol_fields[f].section, sk) == 0;
        if (!known) {
            reply_error(c, 422, "invalid", sk, "unknown policy section %s", sk);
            return -1;
        }
        if (!jdoc_is_object(sec)) {
            reply_error(c, 422, "invalid", sk, "%s must be an object", sk);
            return -1;
        }
        const jdoc_node *key, *v;
        jdoc_object_foreach(sec, key, v) {
            const char *k = jdoc_str(key);
            bool kk = false;
            for (int f = 0; f < TUNER_POL_NFIELDS && !kk; f++)
                kk = strcmp(tuner_pol_fields[f].section, sk) == 0 &&
                     strcmp(tuner_pol_fields[f].key, k) == 0;
            if (!kk) {
                char name[160];
                field_name(name, sizeof name, sk, k);
                reply_error(c, 422, "invalid", name, "unknown policy field %s", name);
                return -1;
            }
        }
    }
    for (int f = 0; f < TUNER_POL_NFIELDS; f++) {
        const tuner_pol_field_info *fi = &tuner_pol_fields[f];
        const jdoc_node *s = jdoc_get(obj, fi->section);
        const jdoc_node *v = jdoc_get(s, fi->key);
        if (!v)
            continue;
        char name[160];
        field_name(name, sizeof name, fi->section, fi->key);
        double d;
        bool present;
        switch (fi->type) {
        case TUNER_POL_BOOL:
            if (!jdoc_is_boolean(v)) {
                reply_error(c, 422, "invalid", name, "%s must be true or false", name);
                return -1;
            }
            d = jdoc_is_true(v);
            break;
        case TUNER_POL_ROUNDING:
            if (!jdoc_is_string(v) || tuner_rounding_parse(jdoc_str(v)) < 0) {
                reply_error(c, 422, "invalid", name,
                            "%s must be \"ceil\", \"floor\" or \"nearest\"", name);
                return -1;
            }
            d = tuner_rounding_parse(jdoc_str(v));
            break;
        case TUNER_POL_MODE: {
            int m = jdoc_is_string(v) ? store_mode_parse(jdoc_str(v)) : -1;
            if (m < 0 || m > TUNER_MODE_MAX) {
                reply_error(c, 422, "invalid", name,
                            "%s must be \"recommend\", \"auto\" or \"pinned\"", name);
                return -1;
            }
            d = m;
            break;
        }
        case TUNER_POL_INT: {
            long long n = 0;
            if (get_int(c, s, fi->section, fi->key, (long long)fi->min, (long long)fi->max,
                        false, &n, &present))
                return -1;
            d = (double)n;
            break;
        }
        default:
            if (get_real(c, s, fi->section, fi->key, fi->min, fi->max, false, &d, &present))
                return -1;
        }
        out->set |= 1u << f;
        out->v[f] = d;
    }
    int bad;
    if (tuner_policy_validate(out, &bad)) {
        char name[160];
        field_name(name, sizeof name, tuner_pol_fields[bad].section, tuner_pol_fields[bad].key);
        reply_error(c, 422, "invalid", name, "%s is out of range", name);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ sample */

json_t *json_sample(const tuner_sample *s)
{
    json_t *o = json_object();
    json_t *q = json_array();
    for (uint32_t i = 0; i < s->nprocs; i++)
        json_array_append_new(q, json_integer(s->local_runq[i]));
    json_object_set_new(o, "ts_ms", json_integer(s->ts_ms));
    json_object_set_new(o, "recv_ms", json_integer(s->recv_ms));
#define OPT_INT(name, v) \
    if ((v) >= 0) \
        json_object_set_new(o, name, json_integer(v));
    OPT_INT("gomaxprocs", s->gomaxprocs)
    OPT_INT("idle_procs", s->idle_procs)
    OPT_INT("threads", s->threads)
    OPT_INT("spinning_threads", s->spinning_threads)
    OPT_INT("idle_threads", s->idle_threads)
    OPT_INT("needspinning", s->needspinning)
    OPT_INT("global_runq", s->global_runq)
    OPT_INT("goroutines", s->goroutines)
#undef OPT_INT
    if (s->nprocs > 0)
        json_object_set_new(o, "local_runq", q);
    else
        json_decref(q);
    if (s->lat_p50_us >= 0 || s->lat_p99_us >= 0) {
        json_t *lat = json_object();
        if (s->lat_p50_us >= 0)
            json_object_set_new(lat, "p50", json_real(s->lat_p50_us));
        if (s->lat_p99_us >= 0)
            json_object_set_new(lat, "p99", json_real(s->lat_p99_us));
        json_object_set_new(o, "sched_latency_us", lat);
    }
    if (s->gc_p99_us >= 0)
        json_object_set_new(o, "gc_pause_us", json_pack("{s:f}", "p99", s->gc_p99_us));
    if (s->npool > 0) {
        json_t *pq = json_array();
        for (uint32_t i = 0; i < s->npool; i++)
            json_array_append_new(pq, json_integer(s->pool_queues[i]));
        json_t *pool = json_pack("{s:o}", "queues", pq);
        if (s->pool_threshold > 0)
            json_object_set_new(pool, "steal_threshold", json_integer(s->pool_threshold));
        if (s->pool_scope >= 0)
            json_object_set_new(pool, "steal_scope",
                                json_string(tuner_scope_name(s->pool_scope)));
        json_object_set_new(o, "pool", pool);
    }
    return o;
}

/* ------------------------------------------------------------------- agent */

static json_t *ms_or_null(int64_t ms)
{
    return ms > 0 ? json_integer(ms) : json_null();
}

/* What the agent runs against what it should run: versions, the last NACK,
 * the verification under way and its last verdict, the cool-down. */
static void agent_delivery(json_t *o, const store_agent *a, int64_t now_ms)
{
    bool behind = a->outdated_since_ms > 0;
    json_object_set_new(o, "desired_version", json_integer(a->config_version));
    json_object_set_new(o, "applied_version", json_integer(a->applied_version));
    json_object_set_new(o, "applied_ms", ms_or_null(a->applied_ms));
    json_object_set_new(o, "out_of_date_since_ms", behind ? json_integer(a->outdated_since_ms)
                                                          : json_null());
    json_object_set_new(o, "out_of_date_s",
                        behind ? json_real((double)(now_ms - a->outdated_since_ms) / 1000)
                               : json_null());
    json_object_set_new(o, "last_nack",
                        a->nack_version ? json_pack("{s:I, s:s, s:I}", "version",
                                                    (json_int_t)a->nack_version, "error",
                                                    a->nack_error, "ms", (json_int_t)a->nack_ms)
                                        : json_null());
    const store_verify *vf = &a->verify;
    json_object_set_new(o, "verification",
                        vf->version ? json_pack("{s:I, s:I, s:{s:i, s:o, s:o}}", "version",
                                                (json_int_t)vf->version, "acked_ms",
                                                (json_int_t)vf->acked_ms, "before", "samples",
                                                (int)vf->before_n, "sched_latency_p99_us",
                                                vf->before_lat >= 0 ? json_real(vf->before_lat)
                                                                    : json_null(),
                                                "runq_per_p",
                                                vf->before_runq >= 0 ? json_real(vf->before_runq)
                                                                     : json_null())
                                    : json_null());
    /* gain_pct: how much lower the metric got (negative: higher); null
     * when there was nothing to compare against. */
    const store_verdict *vd = &a->verdict;
    double gain = vd->before > 0 && vd->after >= 0 ? (vd->before - vd->after) / vd->before * 100
                                                   : NAN;
    json_object_set_new(o, "last_verdict",
                        vd->version ? json_pack("{s:I, s:s, s:s, s:f, s:f, s:o, s:I}", "version",
                                                (json_int_t)vd->version, "verdict", vd->verdict,
                                                "metric", vd->metric, "before", vd->before,
                                                "after", vd->after, "gain_pct",
                                                isfinite(gain) ? json_real(gain)
                                                               : json_null(),
                                                "decided_ms", (json_int_t)vd->decided_ms)
                                    : json_null());
    json_object_set_new(o, "cooldown",
                        a->rejected_until_ms > now_ms
                            ? json_pack("{s:I, s:o}", "until_ms", (json_int_t)a->rejected_until_ms,
                                        "rejected", json_config(&a->rejected))
                            : json_null());
}

/* The cgroup's throttling counters as last reported, and what changed
 * since the report before (null until there are two). */
static json_t *json_throttling(const store_agent *a)
{
    const store_throttle *t = &a->throttle, *p = &a->throttle_prev;
    if (t->periods < 0)
        return json_null();
    json_t *recent = json_null();
    if (p->periods >= 0) {
        int64_t dp = t->periods - p->periods, dt = t->throttled - p->throttled;
        recent = json_pack("{s:I, s:I, s:I, s:o, s:I}", "periods", (json_int_t)dp,
                           "throttled_periods", (json_int_t)dt, "throttled_us",
                           (json_int_t)(t->throttled_us - p->throttled_us), "throttled_pct",
                           dp > 0 ? json_real(100.0 * (double)dt / (double)dp) : json_null(),
                           "over_ms", (json_int_t)(t->ms - p->ms));
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:o}", "periods", (json_int_t)t->periods,
                     "throttled_periods", (json_int_t)t->throttled, "throttled_us",
                     (json_int_t)t->throttled_us, "reported_ms", (json_int_t)t->ms,
                     "recent", recent);
}

json_t *json_agent(const store_agent *a, const tuner_sample *latest, int mode,
                   const char *mode_source, int64_t now_ms)
{
    json_t *cpu = json_pack("{s:i, s:i, s:o, s:s?, s:o, s:o}",
                            "num_cpu", a->cpu.num_cpu,
                            "affinity", a->cpu.affinity,
                            "limit", a->cpu.limit > 0 ? json_real(a->cpu.limit) : json_null(),
                            "limit_source", a->limit_source[0] ? a->limit_source : NULL,
                            "parent_tighter", a->parent_tighter < 0 ? json_null()
                                                                    : json_boolean(a->parent_tighter),
                            "throttling", json_throttling(a));
    json_t *o = json_pack("{s:s, s:s, s:s?, s:o, s:s?, s:o, s:I, s:I, s:s?, s:s, s:I, s:o, s:I, s:o}",
                          "id", a->id, "service", a->service,
                          "hostname", a->hostname[0] ? a->hostname : NULL,
                          "pid", a->pid > 0 ? json_integer(a->pid) : json_null(),
                          "runtime", a->runtime[0] ? a->runtime : NULL,
                          "cpu", cpu,
                          "first_seen_ms", (json_int_t)a->first_seen_ms,
                          "last_seen_ms", (json_int_t)a->last_seen_ms,
                          "mode", store_mode_name(mode),
                          "mode_source", mode_source,
                          "config_version", (json_int_t)a->config_version,
                          "last_change_ms", ms_or_null(a->last_change_ms),
                          "samples_total", (json_int_t)a->samples_total,
                          "override", json_config(&a->override));
    json_object_set_new(o, "dropped_samples", json_integer(a->dropped_samples));
    agent_delivery(o, a, now_ms);
    if (!latest) {
        json_object_set_new(o, "latest", json_null());
        return o;
    }
    int64_t total = 0;
    for (uint32_t i = 0; i < latest->nprocs; i++)
        total += latest->local_runq[i];
    json_t *l = json_sample(latest);
    json_object_del(l, "local_runq");
    json_object_set_new(l, "local_runq_total",
                        latest->nprocs ? json_integer(total) : json_null());
    json_object_set_new(l, "nprocs", json_integer(latest->nprocs));
    json_t *pool = json_object_get(l, "pool");
    if (pool) {
        /* The list stays small: the per-worker queues are in .../samples. */
        int64_t queued = 0;
        for (uint32_t i = 0; i < latest->npool; i++)
            queued += latest->pool_queues[i];
        json_object_del(pool, "queues");
        json_object_set_new(pool, "workers", json_integer(latest->npool));
        json_object_set_new(pool, "queued", json_integer(queued));
    }
    json_object_set_new(o, "latest", l);
    return o;
}

void reply_version(api_call *c, int status, const char *agent, const store_version *v)
{
    /* A version's reasons are stored as the JSON text they were made as.
     * They go into the answer as they are, checked but not parsed into
     * jansson values and written out again: this is the answer 10,000
     * waiting agents get at once after a policy change. */
    jdoc doc = { 0 };
    /* A source that passes api_valid_id ([A-Za-z0-9._-]) needs no
     * escaping in JSON. */
    if (!v || v->version == 0 || !v->reasons || !api_valid_id(v->source) ||
        jdoc_parse(&doc, v->reasons, strlen(v->reasons), NULL) != 0 ||
        !jdoc_is_array(jdoc_root(&doc))) {
        jdoc_cleanup(&doc);
        reply_json(c, status, json_version(agent, v));
        return;
    }
    jdoc_cleanup(&doc);
    json_t *cfg = json_config(&v->config);
    char *config = json_dumps(cfg, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(cfg);
    if (!config) {
        reply_error(c, 500, "internal", NULL, "out of memory");
        return;
    }
    reply_json_text(c, status, "{\"agent\":\"%s\",\"version\":%lld,\"source\":\"%s\","
                    "\"created_ms\":%lld,\"config\":%s,\"reasons\":%s}", agent,
                    (long long)v->version, v->source, (long long)v->created_ms, config,
                    v->reasons);
    free(config);
}

json_t *json_version(const char *agent, const store_version *v)
{
    json_t *reasons = NULL;
    if (v && v->reasons)
        reasons = json_loads(v->reasons, 0, NULL);
    if (!reasons)
        reasons = json_array();
    if (!v || v->version == 0) {
        tuner_config none = { 0 };
        json_decref(reasons);
        return json_pack("{s:s, s:i, s:n, s:n, s:o, s:[]}", "agent", agent, "version", 0,
                         "source", "created_ms", "config", json_config(&none), "reasons");
    }
    return json_pack("{s:s, s:I, s:s, s:I, s:o, s:o}", "agent", agent,
                     "version", (json_int_t)v->version, "source", v->source,
                     "created_ms", (json_int_t)v->created_ms,
                     "config", json_config(&v->config), "reasons", reasons);
}

/* ---------------------------------------------------------- recommendation */

json_t *json_reasons(const tuner_recommendation *rec)
{
    json_t *a = json_array();
    for (size_t i = 0; i < rec->nreasons; i++) {
        const tuner_reason *r = &rec->reasons[i];
        json_t *nums = json_object();
        for (size_t k = 0; k < r->nnum; k++) {
            const tuner_reason_num *n = &r->num[k];
            json_t *v;
            if (n->word)
                v = json_string(n->word);
            else if (n->value == floor(n->value) && fabs(n->value) < 9e15)
                v = json_integer((json_int_t)n->value);
            else
                v = json_real(n->value);
            json_object_set_new(nums, n->name, v);
        }
        json_t *o = json_pack("{s:s, s:s, s:o}", "rule", tuner_rule_name(r->rule), "text",
                              r->text, "numbers", nums);
        if (r->rule == TUNER_RULE_NEIGHBOR_STEAL) {
            json_t *hot = json_array();
            for (uint32_t p = 0; p < TUNER_MAX_PROCS; p++)
                if (r->hot[p / 64] >> (p % 64) & 1u)
                    json_array_append_new(hot, json_integer(p));
            json_object_set_new(o, "hot_ps", hot);
        }
        json_array_append_new(a, o);
    }
    return a;
}

json_t *json_recommendation(const char *agent, const tuner_recommendation *rec,
                            const store_agent *a, const tuner_config *current,
                            const tuner_policy *policy)
{
    json_t *held = json_array();
    for (size_t i = 0; i < rec->nheld; i++) {
        const tuner_held *h = &rec->held[i];
        bool scope = h->field == TUNER_CFG_STEAL_SCOPE;
        json_array_append_new(held, json_pack("{s:s, s:o, s:o, s:s}", "field",
                                              tuner_cfg_fields[h->field].name, "current",
                                              h->current < 0 ? json_null()
                                              : scope ? json_string(tuner_scope_name(h->current))
                                                      : json_integer(h->current),
                                              "wanted",
                                              scope ? json_string(tuner_scope_name(h->wanted))
                                                    : json_integer(h->wanted),
                                              "guard", tuner_hold_name(h->why)));
    }
    const tuner_imbalance *im = &rec->imbalance;
    json_t *imb = json_pack("{s:i, s:i, s:f, s:f, s:f, s:f}", "samples", (int)im->samples,
                            "hot_samples", (int)im->hot_samples, "max_mean", im->max_mean,
                            "local_mean", im->local_mean, "global_mean", im->global_mean,
                            "global_max", im->global_max);
    return json_pack("{s:s, s:I, s:o, s:o, s:b, s:o, s:o, s:o, s:I, s:o}",
                     "agent", agent, "current_version", (json_int_t)a->config_version,
                     "current", json_config(current),
                     "config", json_config(&rec->config), "changes", rec->changes,
                     "reasons", json_reasons(rec), "held", held, "imbalance", imb,
                     "next_change_ms", (json_int_t)rec->next_change_ms,
                     "policy", json_policy(policy));
}

/* ------------------------------------------------------------------ events */

void event_init(store_event *ev, const char *kind, const char *agent,
                const char *service, const char *actor, int64_t ts_ms)
{
    memset(ev, 0, sizeof *ev);
    ev->ts_ms = ts_ms;
    snprintf(ev->kind, sizeof ev->kind, "%s", kind);
    snprintf(ev->agent_id, sizeof ev->agent_id, "%s", agent ? agent : "");
    snprintf(ev->service, sizeof ev->service, "%s", service ? service : "");
    snprintf(ev->actor, sizeof ev->actor, "%s", actor);
}

char *json_text(json_t *j)
{
    return j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(12)) : NULL;
}
