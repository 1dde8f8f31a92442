/*
 * http.h — the few HTTP calls the agent makes, on libcurl. One easy handle
 * per call (connections are not reused: the agent makes a handful of calls
 * a minute), so any thread may call at any time once http_global_init ran.
 *
 * Errors: 0 when an HTTP answer arrived (any status), or a negative
 * errno-style code (-EIO, -ETIMEDOUT, -ENOMEM) with curl's message in err
 * when none did.
 */
#ifndef GOTUNED_AGENT_HTTP_H
#define GOTUNED_AGENT_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* Answers above this are cut off (-EFBIG): a config is a few hundred bytes. */
#define HTTP_MAX_BODY (1024 * 1024)

typedef struct http_resp {
    long status;
    char *body;             /* malloc'd, NUL-terminated; free with
                               http_resp_cleanup */
    size_t len;
    int64_t index;          /* X-Gotuned-Index, -1 when absent */
} http_resp;

/* Call once in main before any thread starts. ca_file (a PEM bundle for
 * https, NULL for the system's) and token (sent as "Authorization: Bearer"
 * on every call, NULL or "" for none) are copied. https servers are always
 * verified. Returns 0, -EIO or -ENOMEM. */
int http_global_init(const char *ca_file, const char *token);

/* method "GET" or "POST"; body (JSON) may be NULL. timeout_ms bounds the
 * whole call. */
int http_call(const char *method, const char *url, const char *body,
              size_t len, long timeout_ms, http_resp *out, char *err,
              size_t errlen);

void http_resp_cleanup(http_resp *r);

#endif
