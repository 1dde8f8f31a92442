/*
 * relay.c — the child's stderr through the schedtrace parser, with the
 * partial-line rule of relay.h.
 */
#include "agent/relay.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "tuner/schedtrace.h"

/* Output is gathered and handed to the sink once per call (or when it
 * grows past this), so that a burst of lines costs one write. */
#define RELAY_OUT_FLUSH (64 * 1024)

struct relay {
    st_parser *p;
    relay_sink sink;
    st_sink st;             /* the parser's callbacks, pointing back here */

    char *line;             /* the pending line: bytes after the last '\n' */
    size_t len, cap;
    bool raw;               /* part of the current line is out already: the
                               rest streams raw up to its '\n' */
    int64_t last_ms;        /* when the pending line last grew */
    int64_t now_ms;         /* the time of the bytes being fed */

    char *out;              /* gathered output */
    size_t olen, ocap;

    /* relay_finish with an unterminated last line: every text's '\n' is
     * owed until the next text, so that the very last one can be dropped
     * when that text ends with the unterminated line. */
    bool deferring;
    bool owe_nl;
    bool last_is_final;     /* the last text ends with the final line */
    const char *final;
    size_t final_len;
};

static void out_flush(relay *r)
{
    if (r->olen) {
        r->sink.write(r->sink.ud, r->out, r->olen);
        r->olen = 0;
    }
}

static void out_put(relay *r, const char *buf, size_t len)
{
    if (len == 0)
        return;
    if (r->olen + len > r->ocap && r->olen + len <= RELAY_OUT_FLUSH) {
        size_t cap = r->ocap ? r->ocap : 4096;
        while (cap < r->olen + len)
            cap *= 2;
        char *bigger = realloc(r->out, cap);
        if (bigger) {
            r->out = bigger;
            r->ocap = cap;
        }
    }
    if (r->olen + len > r->ocap) {
        /* Too big to gather (or no memory to): write through in order. */
        out_flush(r);
        r->sink.write(r->sink.ud, buf, len);
        return;
    }
    memcpy(r->out + r->olen, buf, len);
    r->olen += len;
}

/* One text of the parser's (a line or rejected text) and its '\n'. */
static void emit_text(relay *r, const char *text, size_t len)
{
    if (!r->deferring) {
        out_put(r, text, len);
        out_put(r, "\n", 1);
        return;
    }
    if (r->owe_nl)
        out_put(r, "\n", 1);
    out_put(r, text, len);
    r->owe_nl = true;
    r->last_is_final = len >= r->final_len &&
                       memcmp(text + len - r->final_len, r->final,
                              r->final_len) == 0;
}

static void on_line(void *ud, const char *text, size_t len)
{
    emit_text(ud, text, len);
}

static void on_reject(void *ud, const char *reason, const char *text,
                      size_t len)
{
    relay *r = ud;
    emit_text(r, text, len);
    if (r->sink.reject)
        r->sink.reject(r->sink.ud, reason);
}

static void on_sample(void *ud, const tuner_sample *s)
{
    relay *r = ud;
    tuner_sample copy = *s;
    copy.ts_ms = r->now_ms;
    /* Samples are not output, but the sink may log: keep the order. */
    out_flush(r);
    r->sink.sample(r->sink.ud, &copy);
}

relay *relay_new(const relay_sink *sink)
{
    assert(sink && sink->write && sink->sample);
    relay *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->p = st_parser_new();
    if (!r->p) {
        free(r);
        return NULL;
    }
    r->sink = *sink;
    r->st = (st_sink){ .sample = on_sample, .line = on_line,
                       .reject = on_reject, .ud = r };
    return r;
}

void relay_free(relay *r)
{
    if (!r)
        return;
    st_parser_free(r->p);
    free(r->line);
    free(r->out);
    free(r);
}

/* True when the partial line may be the start of runtime output: a prefix
 * of "SCHED " or a line starting with it, or the start of an indented
 * scheddetail line ("  P0:", "  M12:", "  G1:"). */
static bool looks_sched(const char *s, size_t len)
{
    static const char sched[] = "SCHED ";
    size_t n = len < 6 ? len : 6;
    if (memcmp(s, sched, n) == 0)
        return true;
    size_t i = 0;
    for (; i < len && i < 2; i++)
        if (s[i] != ' ')
            return false;
    if (i == len)
        return true;
    if (s[i] != 'P' && s[i] != 'M' && s[i] != 'G')
        return false;
    for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        ;
    return i == len || (i > 3 && s[i] == ':');
}

/* Lets the pending partial line out raw; the rest of the line follows raw.
 * A split line the parser holds comes out first (see relay.h). */
static void go_raw(relay *r)
{
    if (st_parser_holding(r->p))
        st_parser_finish(r->p, &r->st);
    out_put(r, r->line, r->len);
    r->len = 0;
    r->raw = true;
}

static bool append(relay *r, const char *buf, size_t len)
{
    if (r->len + len > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < r->len + len)
            cap *= 2;
        char *bigger = realloc(r->line, cap);
        if (!bigger)
            return false;
        r->line = bigger;
        r->cap = cap;
    }
    memcpy(r->line + r->len, buf, len);
    r->len += len;
    return true;
}

void relay_feed(relay *r, const char *buf, size_t len, int64_t now_ms)
{
    r->now_ms = now_ms;
    while (len > 0) {
        const char *nl = memchr(buf, '\n', len);
        size_t take = nl ? (size_t)(nl - buf) : len;
        if (r->raw) {
            size_t n = nl ? take + 1 : take;
            out_put(r, buf, n);
            r->raw = nl == NULL;
            buf += n;
            len -= n;
            continue;
        }
        if (nl && r->len == 0) {
            /* A whole line in the input: no copy. */
            st_parser_line(r->p, buf, take, &r->st);
        } else if (r->len + take > RELAY_LINE_MAX || !append(r, buf, take)) {
            go_raw(r);
            continue; /* the same bytes again, now raw */
        } else if (nl) {
            st_parser_line(r->p, r->line, r->len, &r->st);
            r->len = 0;
        } else {
            r->last_ms = now_ms;
        }
        buf += nl ? take + 1 : take;
        len -= nl ? take + 1 : take;
    }
    out_flush(r);
}

static int64_t hold_ms(const relay *r)
{
    return st_parser_holding(r->p) || looks_sched(r->line, r->len)
               ? RELAY_HOLD_MS : RELAY_FLUSH_MS;
}

int64_t relay_deadline(const relay *r)
{
    if (r->raw || r->len == 0)
        return -1;
    return r->last_ms + hold_ms(r);
}

void relay_tick(relay *r, int64_t now_ms)
{
    if (r->raw || r->len == 0 || now_ms < r->last_ms + hold_ms(r))
        return;
    r->now_ms = now_ms;
    go_raw(r);
    out_flush(r);
}

void relay_finish(relay *r, int64_t now_ms)
{
    r->now_ms = now_ms;
    if (r->len > 0 && !r->raw) {
        r->deferring = true;
        r->owe_nl = false;
        r->last_is_final = false;
        r->final = r->line;
        r->final_len = r->len;
        st_parser_line(r->p, r->line, r->len, &r->st);
        st_parser_finish(r->p, &r->st);
        /* The unterminated line's own text ends the output: it had no
         * '\n'. Any earlier text did. */
        if (r->owe_nl && !r->last_is_final)
            out_put(r, "\n", 1);
        r->deferring = false;
        r->final = NULL;
    } else {
        st_parser_finish(r->p, &r->st);
    }
    r->len = 0;
    r->raw = false;
    out_flush(r);
}
