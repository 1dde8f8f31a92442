/*
 * schedtrace.h — a streaming parser for the Go runtime's GODEBUG=schedtrace
 * (and scheddetail=1) output as it appears on a process's stderr, mixed with
 * the application's own lines. The formats it reads, how it puts split lines
 * back together and when it refuses are in docs/schedtrace.md.
 *
 * Feed it lines (without the trailing '\n'); it calls back with
 *   - a sample for every SCHED line or scheddetail block it could read,
 *   - every other line, untouched and in order (including text that the
 *     application wrote into the middle of a SCHED line, handed back whole),
 *   - a rejection with a reason and the raw text for SCHED output that is
 *     truncated, garbled or ambiguous; a rejected sample is never half-applied.
 *
 * Callbacks come in input order: the intruders found inside a split SCHED
 * line come before its sample. A scheddetail block's sample comes once its
 * P lines are in (application lines between them pass through first); its
 * M and G lines are consumed, or rejected with a rejected block.
 *
 * Pure: no I/O, no clock. The parser allocates its own buffers (bounded by
 * ST_MAX_LINE and TUNER_MAX_PROCS) and holds at most one pending SCHED line
 * (with the few lines that continue it) or scheddetail block between calls.
 *
 * Errors: st_parser_new returns NULL only when out of memory. Later
 * allocation failures reject the text involved ("out of memory") rather
 * than lose it.
 */
#ifndef GOTUNED_SCHEDTRACE_H
#define GOTUNED_SCHEDTRACE_H

#include <stdbool.h>
#include <stddef.h>
#include "tuner/tuner.h"

/* A SCHED line longer than this is rejected ("too long"); 1024 Ps print
 * well under it even with schedticks. A split line's pieces (with their
 * intruders) and the line put back together are bounded by it too.
 * Ordinary lines of any length pass. */
#define ST_MAX_LINE (64 * 1024)

typedef struct st_sink {
    /* A complete sample. s->local_runq points into the parser and is valid
     * only during the call. */
    void (*sample)(void *ud, const tuner_sample *s);
    /* A non-SCHED line, byte for byte as it was fed (no '\n'). */
    void (*line)(void *ud, const char *text, size_t len);
    /* SCHED output that did not make a sample: `reason` is a short static
     * phrase ("truncated", "garbled", "count mismatch", "too many Ps",
     * "empty brackets", "ambiguous split", "too long", "out of memory");
     * `text` is the raw text involved (several lines joined by '\n' when a
     * block or a split line was rejected), so that nothing the process
     * printed is lost. */
    void (*reject)(void *ud, const char *reason, const char *text, size_t len);
    void *ud;
} st_sink;

typedef struct st_parser st_parser;

st_parser *st_parser_new(void);
void st_parser_free(st_parser *p);

/* Feeds one line, without its '\n' (one trailing '\r' is ignored on SCHED
 * and detail lines, kept on ordinary ones). May call back zero or more
 * times. */
void st_parser_line(st_parser *p, const char *text, size_t len, const st_sink *sink);

/* End of input: a pending block is emitted if complete, a pending cut line
 * is rejected ("truncated"). The parser can then be reused. */
void st_parser_finish(st_parser *p, const st_sink *sink);

/* True while the parser holds a split SCHED or detail line that the next
 * line may continue (a scheddetail block alone does not count: application
 * lines pass through it). A caller that must let text out before its line
 * ends (gotuned-agent's stalled partial lines) asks this, so that it never
 * puts bytes ahead of a held line that comes out later. */
bool st_parser_holding(const st_parser *p);

/* Convenience: splits buf at '\n' (a last line without '\n' counts as a
 * line), feeds every line and finishes. */
void st_parse_buffer(const char *buf, size_t len, const st_sink *sink);

#endif
