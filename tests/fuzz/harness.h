/*
 * harness.h — what the API fuzz targets share: a real store in a temporary
 * directory, a fake connection that answers api_request's header and query
 * lookups from tables, and the checks every answer must pass.
 *
 * Not part of gotuned: only the libFuzzer targets in tests/fuzz/ link it.
 * Failures abort (libFuzzer then saves the input as a crash file).
 */
#ifndef GOTUNED_FUZZ_HARNESS_H
#define GOTUNED_FUZZ_HARNESS_H

#include <stddef.h>

#include "api/api.h"

#define FUZZ_MAX_ARGS 16

/* Header and query values a request carries; the strings are borrowed. */
typedef struct fuzz_conn {
    const char *ctype;                  /* Content-Type, NULL = absent */
    const char *if_none_match;          /* If-None-Match, NULL = absent */
    const char *key[FUZZ_MAX_ARGS];     /* query arguments, percent-decoded */
    const char *val[FUZZ_MAX_ARGS];
    size_t nargs;
} fuzz_conn;

/* Opens a store with at most max_agents agents in a new directory under
 * $TMPDIR (removed at exit), once per process, and returns the API context
 * that uses it. Aborts when the store cannot be opened. */
api_ctx *fuzz_api_ctx(size_t max_agents);

/* Fills *req for conn, the way server/http.c does (query and header
 * lookups by key, the first value wins). */
void fuzz_request(api_request *req, fuzz_conn *conn, const char *method, const char *path,
                  const char *body, size_t len);

/* Runs req through api_handle the way server/http.c does, a held request
 * (blocking query) included: it is answered again at once with no_wait.
 * Aborts unless the answer is well-formed: a status gotuned sends, a JSON
 * error {"error":{"code","message","field"}} on every 4xx/5xx, a JSON body
 * that parses whenever the content type is application/json, and no 500.
 * Returns the final status. */
int fuzz_handle(api_ctx *ctx, const api_request *req);

/* Percent-decodes src[0..len) into dst (room for len + 1 bytes) as the
 * server does for paths and query values: libmicrohttpd turns '+' into a
 * space in the query only, then calls url_unescape (which keeps %00
 * encoded). A NUL byte in src ends the string there, as in a request. */
void fuzz_unescape(char *dst, const char *src, size_t len, int plus_is_space);

#endif
