/*
 * relay.h — the child's stderr, split into scheduler samples and everything
 * else, on top of tuner/schedtrace.h's streaming parser. Pure: bytes and a
 * clock value in, bytes and samples out through callbacks; no I/O.
 *
 * Nothing the process printed is lost, duplicated or reordered, except the
 * text of the SCHED lines and scheddetail blocks that became samples:
 *   - every ordinary line goes out byte for byte with its '\n', including
 *     application lines the parser found inside a SCHED line (whole, in
 *     their place) and the raw text of rejected SCHED output;
 *   - a last line without '\n' goes out without one (relay_finish);
 *   - a line longer than RELAY_LINE_MAX is streamed through as it comes
 *     (never truncated, never held whole in memory);
 *   - a partial line (no '\n' yet) is let out after RELAY_FLUSH_MS without
 *     new bytes, so that prompts and progress dots show up.
 *
 * The partial-line rule (why nothing is lost or doubled): the parser only
 * ever sees whole lines. Once any byte of a line has been let out raw (a
 * stalled partial line, or a line too long to hold), the rest of that line,
 * up to its '\n', is streamed raw too and the parser never sees any of it.
 * A partial line that may be scheduler output is held longer, up to
 * RELAY_HOLD_MS, because the runtime writes a SCHED line one value at a
 * time and can stall in the middle (a CPU quota throttles it): a partial
 * that starts like "SCHED " or like an indented scheddetail line
 * ("  P3: ..."), or any partial while the parser holds a split SCHED line
 * that it may continue. Before raw bytes go out while the parser holds such
 * a line, the parser is finished (the held line comes out as a sample or
 * as rejected text first), so the output keeps the input's order. The worst
 * case is a sample lost to a very long stall; its text still comes out.
 *
 * Errors: none; out of memory inside the parser turns text into rejected
 * text (see schedtrace.h), never into lost text.
 */
#ifndef GOTUNED_AGENT_RELAY_H
#define GOTUNED_AGENT_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tuner/tuner.h"

/* A partial line is let out after this long without a new byte. */
#define RELAY_FLUSH_MS 200
/* ...unless it may be scheduler output: then after this long. */
#define RELAY_HOLD_MS 2000
/* Longer lines are streamed through raw; a SCHED line this long would be
 * rejected by the parser anyway ("too long"). */
#define RELAY_LINE_MAX (64 * 1024)

typedef struct relay_sink {
    /* Bytes for the agent's stderr, in order. */
    void (*write)(void *ud, const char *buf, size_t len);
    /* A sample; ts_ms is already the wall-clock time the relay was given
     * with the bytes that completed it. local_runq is valid during the
     * call only. */
    void (*sample)(void *ud, const tuner_sample *s);
    /* Optional: SCHED output the parser refused (its text has gone to
     * write already). */
    void (*reject)(void *ud, const char *reason);
    void *ud;
} relay_sink;

typedef struct relay relay;

/* Returns NULL when out of memory. The sink is copied. */
relay *relay_new(const relay_sink *sink);
void relay_free(relay *r);

/* Feeds bytes read at wall-clock time now_ms (epoch ms). */
void relay_feed(relay *r, const char *buf, size_t len, int64_t now_ms);

/* When relay_tick should next run (epoch ms), or -1 when nothing waits. */
int64_t relay_deadline(const relay *r);

/* Lets out a stalled partial line when its time has come. */
void relay_tick(relay *r, int64_t now_ms);

/* End of the stream: the pending partial line is read (as a last line
 * without '\n'), the parser is finished and reset. The relay can then take
 * a new stream. */
void relay_finish(relay *r, int64_t now_ms);

#endif
