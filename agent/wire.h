/*
 * wire.h — the agent's side of the JSON protocol (docs/api.md):
 * telemetry batches out, config versions and telemetry
 * answers in, ACK bodies out, and the application's ack file in
 * (--apply file). jansson only; no I/O.
 *
 * Errors: parsers return 0 or a negative errno-style code (-EINVAL for a
 * malformed or out-of-range document) with a message in err; encoders
 * return NULL only when out of memory.
 */
#ifndef GOTUNED_AGENT_WIRE_H
#define GOTUNED_AGENT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cgroup/cg.h"
#include "tuner/tuner.h"

/* What a batch says about the agent. */
typedef struct wire_facts {
    const char *id, *service, *hostname;  /* hostname may be NULL */
    long pid;                   /* the child's pid; 0: not sent */
    const cg_cpu *cpu;          /* NULL when the probe failed: not sent */
    int64_t applied_version;    /* < 0: not sent */
    uint64_t dropped;           /* agent.dropped_samples */
    bool legacy;                /* an older server refused them: leave
                                   out throttling and dropped_samples */
} wire_facts;

/* One sample as JSON; fields the parser did not see (-1) are left out.
 * New reference. */
json_t *wire_sample(const tuner_sample *s);

/* The body of POST /api/v1/telemetry; steals samples (an array, may be
 * NULL for a heartbeat). Returns a malloc'd NUL-terminated string. */
char *wire_batch(const wire_facts *f, json_t *samples, size_t *len);

/* A config version object. */
typedef struct wire_version {
    int64_t version;
    bool has_gomaxprocs;
    int gomaxprocs;
    json_t *obj;                /* the whole object, as the server sent it */
} wire_version;

/* Parses a config version object (GET .../config). */
int wire_version_parse(const char *body, size_t len, wire_version *out,
                       char *err, size_t errlen);

/* The "config" of a telemetry answer: 1 with *out filled, 0 when the answer
 * has none, < 0 when the answer is malformed. */
int wire_telemetry_answer(const char *body, size_t len, wire_version *out,
                          char *err, size_t errlen);

/* Releases out->obj; out may be reused. */
void wire_version_cleanup(wire_version *v);

/* The body of POST .../ack: applied when error is NULL, else rejected with
 * the error (cut to 1023 bytes on a UTF-8 boundary). */
char *wire_ack(int64_t version, const char *error);

/* The application's ack file ({"version":N,"status":"applied"} or
 * {"version":N,"status":"rejected","error":"..."}). *applied false comes
 * with the error text in error. */
int wire_ack_file(const char *text, size_t len, int64_t *version,
                  bool *applied, char *error, size_t errlen);

/* The error.field of a server error body, "" when there is none. */
void wire_error_field(const char *body, size_t len, char *field, size_t cap);

#endif
