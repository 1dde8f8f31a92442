/*
 * fuzz_schedtrace.c — libFuzzer target for tuner/schedtrace.c.
 *
 * The first two bytes of the input choose how the rest is cut: at every
 * '\n' (a line), and also after a pseudo-random number of bytes, as the
 * agent does when a pipe read ends inside a line and it hands the parser
 * the part it has. The same bytes then go through st_parse_buffer.
 *
 * Checked on every callback: lengths and pointers are sane, every sample
 * has 1..TUNER_MAX_PROCS Ps with non-negative queues, a rejection has one
 * of the documented reasons, and the bytes handed back (lines plus rejected
 * text) are never more than what was fed (plus one joining '\n' per piece);
 * after finish the parser holds nothing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tuner/schedtrace.h"

typedef struct tally {
    size_t fed;         /* bytes fed */
    size_t pieces;      /* calls to st_parser_line */
    size_t out;         /* bytes handed back as lines or rejected text */
    size_t samples;
} tally;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_schedtrace: %s:%d: %s\n", __FILE__,       \
                    __LINE__, #cond);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

static size_t input_len;
static int verbose = -1;   /* FUZZ_VERBOSE=1 prints every call, for a repro */

static void trace(const char *what, const char *text, size_t len)
{
    if (verbose < 0)
        verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "%-8s %zu \"%.*s\"\n", what, len, (int)len, text ? text : "");
}

static void on_sample(void *ud, const tuner_sample *s)
{
    tally *t = ud;
    trace("sample", NULL, 0);
    t->samples++;
    CHECK(s->nprocs >= 1 && s->nprocs <= TUNER_MAX_PROCS);
    CHECK(s->local_runq != NULL);
    int64_t sum = 0;
    for (uint32_t i = 0; i < s->nprocs; i++) {
        CHECK(s->local_runq[i] >= 0);
        sum += s->local_runq[i];
    }
    CHECK(sum >= 0);
    CHECK(s->global_runq >= -1);     /* -1: not reported */
    CHECK(s->gomaxprocs < 0 || (uint32_t)s->gomaxprocs == s->nprocs);
    CHECK(s->npool <= TUNER_MAX_PROCS);
}

static void on_line(void *ud, const char *text, size_t len)
{
    tally *t = ud;
    trace("line", text, len);
    CHECK(len <= input_len);
    CHECK(len == 0 || text != NULL);
    if (len) {  /* ASan flags a read outside what the parser handed over */
        volatile char first = text[0], last = text[len - 1];
        (void)first;
        (void)last;
    }
    t->out += len;
    CHECK(t->out <= t->fed + t->pieces);
}

static void on_reject(void *ud, const char *reason, const char *text, size_t len)
{
    static const char *const reasons[] = { "truncated", "garbled", "count mismatch",
                                           "too many Ps", "empty brackets", "ambiguous split",
                                           "too long", "out of memory", NULL };
    tally *t = ud;
    trace(reason, text, len);
    bool known = false;
    for (size_t i = 0; reasons[i]; i++)
        known |= reason && strcmp(reason, reasons[i]) == 0;
    if (!known)
        fprintf(stderr, "fuzz_schedtrace: unknown reason \"%s\"\n", reason ? reason : "(null)");
    CHECK(known);
    CHECK(len <= input_len + t->pieces);
    CHECK(len == 0 || text != NULL);
    if (len) {
        volatile char first = text[0], last = text[len - 1];
        (void)first;
        (void)last;
    }
    t->out += len;
    CHECK(t->out <= t->fed + t->pieces);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* The cut: 0 = lines only; otherwise pieces of 1..cut bytes, their
     * lengths drawn from an LCG seeded by the second byte. */
    unsigned cut = data[0];
    uint32_t rng = data[1] * 2654435761u + 1;
    const char *buf = (const char *)data + 2;
    size_t len = size - 2;
    input_len = len;

    tally t = { 0 };
    st_sink sink = { on_sample, on_line, on_reject, &t };
    st_parser *p = st_parser_new();
    CHECK(p != NULL);
    size_t start = 0;
    while (start < len) {
        const char *nl = memchr(buf + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - buf) : len;
        size_t piece = end - start;
        if (cut) {
            rng = rng * 1103515245u + 12345u;
            size_t most = 1 + (rng >> 16) % cut;
            if (most < piece)
                piece = most;
        }
        /* A copy exactly as long as the piece, so that ASan sees any read
         * past it. */
        char *copy = malloc(piece ? piece : 1);
        CHECK(copy != NULL);
        memcpy(copy, buf + start, piece);
        trace("feed", copy, piece);
        t.fed += piece;
        t.pieces++;
        st_parser_line(p, copy, piece, &sink);
        free(copy);
        start += piece;
        if (start < len && buf[start] == '\n')
            start++;
    }
    st_parser_finish(p, &sink);
    CHECK(!st_parser_holding(p));
    CHECK(t.out <= t.fed + t.pieces);
    st_parser_free(p);

    /* The whole buffer at once: nothing handed back beyond what was given
     * (the '\n's that join a rejected block's lines were in the input). */
    tally whole = { 0 };
    st_sink sink2 = { on_sample, on_line, on_reject, &whole };
    whole.fed = len;
    char *copy = malloc(len ? len : 1);
    CHECK(copy != NULL);
    memcpy(copy, buf, len);
    st_parse_buffer(copy, len, &sink2);
    free(copy);
    CHECK(whole.out <= len);
    return 0;
}
