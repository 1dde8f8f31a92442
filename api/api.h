/*
 * api.h — the JSON REST API. The only layer that knows JSON and HTTP status
 * codes: it decodes and validates a request, calls tuner/ and store/, and
 * encodes the answer. server/ hands it a parsed request and sends back
 * whatever response it fills in.
 *
 * Every rejected request gets {"error":{"code","message","field"}} and
 * changes nothing.
 */
#ifndef GOTUNED_API_H
#define GOTUNED_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct auth_table;
struct metrics;

#define API_MAX_SAMPLES 1000            /* samples in one JSON batch */
#define API_MAX_TEXT_SAMPLES 10000      /* SCHED lines in one text push */
#define API_MAX_REJECTIONS 10           /* rejections listed in a text answer */

typedef struct api_ctx {
    store *store;
    int64_t (*now_ms)(void);            /* wall clock; replaceable in tests */
    const struct auth_table *auth;      /* bearer tokens (server/auth.h); NULL = no
                                           access control, every route is open */
    struct metrics *metrics;            /* counters for GET /metrics (server/metrics.h);
                                           NULL = none counted, and GET /metrics
                                           shows only what the store knows */
} api_ctx;

/* One request as server/ sees it. The lookups return NULL when absent;
 * query values arrive percent-decoded. */
typedef struct api_request {
    const char *method;
    const char *path;                   /* without the query string */
    const char *body;
    size_t body_len;
    const char *(*query)(void *conn, const char *key);
    const char *(*header)(void *conn, const char *key);
    void *conn;
    bool no_wait;                       /* answer now: the request was already held */
} api_request;

/* A request the API wants held (a blocking query): server/ keeps it without
 * a thread until the agent's config version differs from index, the agent
 * is deleted, wait_ms passes, the client goes away or the server stops;
 * then it calls api_handle again with no_wait set and sends that answer. */
typedef struct api_hold {
    int64_t wait_ms;                    /* 0 = do not hold: send the response */
    char agent[STORE_ID_MAX + 1];
    int64_t index;
} api_hold;

typedef struct api_response {
    int status;
    char *body;                         /* malloc'd, or NULL when static_body is used */
    size_t len;
    const unsigned char *static_body;   /* borrowed (compiled-in files) */
    const char *content_type;
    const char *cache_control;
    const char *csp;                    /* Content-Security-Policy, NULL = none */
    const char *www_authenticate;       /* on a 401: the challenge, NULL = none */
    char etag[STORE_ID_MAX + 32];       /* "" = none */
    char allow[64];                     /* "" = none */
    int64_t index;                      /* >= 0: sent as X-Gotuned-Index */
    api_hold hold;                      /* when hold.wait_ms > 0, body is NULL */
    size_t route;                       /* which route answered, for metrics: an index
                                           for api_route_label (set by api_handle) */
} api_response;

/* Once, before any thread calls api_handle: seeds jansson's hash tables
 * (which must not be seeded concurrently). */
void api_init(void);

/* Handles one request and fills *resp. Never fails: internal errors become
 * 500 or 503 answers. The caller frees resp->body. */
void api_handle(api_ctx *ctx, const api_request *req, api_response *resp);

/* Fills *resp with a JSON error, for errors that server/ detects itself
 * (413 before the body is read). */
void api_error_response(api_response *resp, int status, const char *code,
                        const char *message, const char *field);

/* Calls cb for every route the server serves ("GET", "/api/v1/agents/{id}"),
 * the dashboard's "/" included; the openapi test compares them with
 * docs/openapi.yaml. */
void api_each_route(void (*cb)(void *ud, const char *method, const char *path), void *ud);

/* The routes as metrics count them: each route template of the router's
 * table ("/api/v1/agents/{id}/config"), then "static" (the dashboard's
 * files) and "other" (every path that is neither), so that a label never
 * holds a raw path. api_route_label(i) for i < api_route_count();
 * api_route_of() gives a path's index (for the errors server/ answers
 * itself); api_handle sets it in resp->route. */
size_t api_route_count(void);
const char *api_route_label(size_t i);
size_t api_route_of(const char *path);

#endif
