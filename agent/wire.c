/*
 * wire.c — JSON in and out for the agent. See wire.h.
 */
#include "agent/wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static void set_opt(json_t *o, const char *key, int64_t v)
{
    if (v >= 0)
        json_object_set_new(o, key, json_integer((json_int_t)v));
}

json_t *wire_sample(const tuner_sample *s)
{
    json_t *o = json_object();
    json_t *q = json_array();
    if (!o || !q) {
        json_decref(o);
        json_decref(q);
        return NULL;
    }
    set_opt(o, "ts_ms", s->ts_ms);
    set_opt(o, "gomaxprocs", s->gomaxprocs);
    set_opt(o, "idle_procs", s->idle_procs);
    set_opt(o, "threads", s->threads);
    set_opt(o, "spinning_threads", s->spinning_threads);
    set_opt(o, "idle_threads", s->idle_threads);
    set_opt(o, "needspinning", s->needspinning);
    set_opt(o, "global_runq", s->global_runq);
    set_opt(o, "goroutines", s->goroutines);
    for (uint32_t i = 0; i < s->nprocs; i++)
        json_array_append_new(q, json_integer(s->local_runq[i]));
    json_object_set_new(o, "local_runq", q);
    return o;
}

char *wire_batch(const wire_facts *f, json_t *samples, size_t *len)
{
    json_t *a = json_object();
    json_t *root = json_object();
    char *out = NULL;
    if (!a || !root)
        goto out;
    json_object_set_new(a, "id", json_string(f->id));
    json_object_set_new(a, "service", json_string(f->service));
    if (f->hostname && f->hostname[0])
        json_object_set_new(a, "hostname", json_string(f->hostname));
    if (f->pid > 0)
        json_object_set_new(a, "pid", json_integer(f->pid));
    if (f->cpu) {
        const cg_cpu *c = f->cpu;
        if (c->num_cpu > 0)
            json_object_set_new(a, "num_cpu", json_integer(c->num_cpu));
        if (c->affinity > 0)
            json_object_set_new(a, "affinity", json_integer(c->affinity));
        json_object_set_new(a, "cpu_limit",
                            c->limit > 0 ? json_real(c->limit) : json_null());
        json_object_set_new(a, "cpu_limit_source", json_string(c->source));
        json_object_set_new(a, "parent_tighter",
                            json_boolean(c->parent_tighter));
        if (c->have_throttling && !f->legacy)
            json_object_set_new(
                a, "throttling",
                json_pack("{s:I,s:I,s:I}",
                          "periods", (json_int_t)c->throttling.periods,
                          "throttled_periods",
                          (json_int_t)c->throttling.throttled_periods,
                          "throttled_us",
                          (json_int_t)c->throttling.throttled_us));
    }
    if (f->applied_version >= 0)
        json_object_set_new(a, "applied_version",
                            json_integer((json_int_t)f->applied_version));
    if (!f->legacy)
        json_object_set_new(a, "dropped_samples",
                            json_integer((json_int_t)f->dropped));
    json_object_set_new(root, "agent", a);
    a = NULL;
    json_object_set_new(root, "samples", samples ? samples : json_array());
    samples = NULL;
    out = json_dumps(root, JSON_COMPACT);
    if (out && len)
        *len = strlen(out);
out:
    json_decref(a);
    json_decref(root);
    json_decref(samples);
    return out;
}

void wire_version_cleanup(wire_version *v)
{
    json_decref(v->obj);
    memset(v, 0, sizeof *v);
}

/* Reads a version object (takes a new reference to obj on success). */
static int version_from(json_t *obj, wire_version *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(obj))
        return fail(err, errlen, -EINVAL, "the config version is not an object");
    json_t *v = json_object_get(obj, "version");
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return fail(err, errlen, -EINVAL,
                    "the config version has no valid \"version\"");
    json_t *cfg = json_object_get(obj, "config");
    if (cfg && !json_is_null(cfg) && !json_is_object(cfg))
        return fail(err, errlen, -EINVAL, "\"config\" is not an object");
    json_t *g = cfg ? json_object_get(cfg, "gomaxprocs") : NULL;
    if (g && !json_is_null(g)) {
        if (!json_is_integer(g) || json_integer_value(g) < 1 ||
            json_integer_value(g) > TUNER_MAX_PROCS)
            return fail(err, errlen, -EINVAL,
                        "config.gomaxprocs must be an integer from 1 to %d",
                        TUNER_MAX_PROCS);
        out->has_gomaxprocs = true;
        out->gomaxprocs = (int)json_integer_value(g);
    }
    out->version = (int64_t)json_integer_value(v);
    out->obj = json_incref(obj);
    return 0;
}

static json_t *load(const char *body, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        fail(err, errlen, -EINVAL, "malformed JSON: %s", je.text);
    return root;
}

int wire_version_parse(const char *body, size_t len, wire_version *out,
                       char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    json_t *root = load(body, len, err, errlen);
    if (!root)
        return -EINVAL;
    int rc = version_from(root, out, err, errlen);
    json_decref(root);
    return rc;
}

int wire_telemetry_answer(const char *body, size_t len, wire_version *out,
                          char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    json_t *root = load(body, len, err, errlen);
    if (!root)
        return -EINVAL;
    int rc = 0;
    json_t *cfg = json_is_object(root) ? json_object_get(root, "config")
                                       : NULL;
    if (!json_is_object(root))
        rc = fail(err, errlen, -EINVAL, "the answer is not an object");
    else if (cfg && !json_is_null(cfg))
        rc = version_from(cfg, out, err, errlen) < 0 ? -EINVAL : 1;
    json_decref(root);
    return rc;
}

char *wire_ack(int64_t version, const char *error)
{
    json_t *o = json_pack("{s:I,s:s}", "version", (json_int_t)version,
                          "status", error ? "rejected" : "applied");
    if (!o)
        return NULL;
    if (error) {
        char cut[1024];
        size_t n = strlen(error);
        if (n > sizeof cut - 1) {
            n = sizeof cut - 1;
            /* Back off to the start of a UTF-8 sequence. */
            while (n > 0 && ((unsigned char)error[n] & 0xC0) == 0x80)
                n--;
        }
        memcpy(cut, error, n);
        cut[n] = '\0';
        json_t *s = json_stringn(cut, n);
        json_object_set_new(o, "error", s ? s : json_string("(not UTF-8)"));
    }
    char *out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return out;
}

int wire_ack_file(const char *text, size_t len, int64_t *version,
                  bool *applied, char *error, size_t errlen)
{
    if (error && errlen)
        error[0] = '\0';
    json_t *root = load(text, len, error, errlen);
    if (!root)
        return -EINVAL;
    int rc = 0;
    json_t *v = json_object_get(root, "version");
    json_t *st = json_object_get(root, "status");
    const char *status = json_string_value(st);
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        rc = fail(error, errlen, -EINVAL, "the ack file has no valid \"version\"");
    } else if (!status || (strcmp(status, "applied") != 0 &&
                           strcmp(status, "rejected") != 0)) {
        rc = fail(error, errlen, -EINVAL,
                  "the ack file's \"status\" is not \"applied\" or \"rejected\"");
    } else {
        *version = (int64_t)json_integer_value(v);
        *applied = strcmp(status, "applied") == 0;
        if (!*applied) {
            const char *e = json_string_value(json_object_get(root, "error"));
            snprintf(error, errlen, "%s",
                     e && *e ? e : "the application rejected it (no reason given)");
        }
    }
    json_decref(root);
    return rc;
}

void wire_error_field(const char *body, size_t len, char *field, size_t cap)
{
    field[0] = '\0';
    json_t *root = json_loadb(body, len, 0, NULL);
    const char *f = json_string_value(
        json_object_get(json_object_get(root, "error"), "field"));
    if (f)
        snprintf(field, cap, "%s", f);
    json_decref(root);
}
