/*
 * fuzz_router.c — libFuzzer target for api_handle as a whole: route and
 * method matching, {id} validation, and the query parameters gotuned reads
 * itself (query_int, query_id, wait/index of blocking queries, paging),
 * against a real store (tests/fuzz/harness.c). libmicrohttpd splits and
 * percent-decodes the query; this target does the same from the input, so
 * the fuzzer controls the decoded values the handlers see.
 *
 * Input:  byte 0       method (low 3 bits), Content-Type (bits 3-4),
 *                      If-None-Match from line 2 (bit 5)
 *         line 1       the request target "path?k=v&k=v", percent-encoded
 *         line 2       If-None-Match, when bit 5 is set
 *         the rest     the body
 *
 * Every run starts with the agents "a1" and "web-1" present (pushed again
 * when an input deleted them), so that agent routes get past the 404.
 *
 * Checked: as fuzz_telemetry (a status gotuned sends, never 500, JSON with
 * the error shape), a 405 carries Allow, and a held request answers when
 * asked again with no_wait.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/harness.h"

#define FUZZ_AGENTS 64

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const seed_agents[] = { "a1", "web-1" };

static void ensure_agents(api_ctx *ctx)
{
    for (size_t i = 0; i < sizeof seed_agents / sizeof seed_agents[0]; i++) {
        store_agent a;
        if (store_agent_get(ctx->store, seed_agents[i], &a) == 0)
            continue;
        char body[512];
        int n = snprintf(body, sizeof body,
                         "{\"agent\":{\"id\":\"%s\",\"service\":\"web\",\"num_cpu\":4,"
                         "\"cpu_limit\":2},\"samples\":[{\"gomaxprocs\":4,\"idle_procs\":0,"
                         "\"threads\":9,\"global_runq\":12,\"local_runq\":[30,0,1,2],"
                         "\"sched_latency_us\":{\"p50\":40,\"p99\":900}}]}",
                         seed_agents[i]);
        fuzz_conn conn = { .ctype = "application/json" };
        api_request req;
        fuzz_request(&req, &conn, "POST", "/api/v1/telemetry", body, (size_t)n);
        fuzz_handle(ctx, &req);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ensure_agents(fuzz_api_ctx(FUZZ_AGENTS));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = { "GET", "PUT", "POST", "DELETE",
                                           "HEAD", "PATCH", "OPTIONS", "get" };
    static const char *const ctypes[] = { "application/json", NULL, "text/plain",
                                          "application/json; charset=utf-8" };
    if (size < 1 || size > 64 * 1024)
        return 0;
    api_ctx *ctx = fuzz_api_ctx(FUZZ_AGENTS);
    ensure_agents(ctx);

    fuzz_conn conn = { .ctype = ctypes[(data[0] >> 3) & 3] };
    const char *method = methods[data[0] & 7];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

    const char *nl = memchr(in, '\n', len);
    size_t tlen = nl ? (size_t)(nl - in) : len;
    const char *rest = nl ? nl + 1 : in + len;
    size_t rlen = len - (size_t)(rest - in);

    /* One buffer for the decoded path, keys and values: each is at most
     * as long as its encoded form, plus its NUL. */
    char *strings = malloc(2 * tlen + 2 * FUZZ_MAX_ARGS + 2);
    char *inm = NULL;
    if (!strings)
        abort();
    const char *q = memchr(in, '?', tlen);
    size_t plen = q ? (size_t)(q - in) : tlen;
    char *path = strings, *next = strings + plen + 1;
    fuzz_unescape(path, in, plen, 0);
    if (q) {
        const char *a = q + 1, *end = in + tlen;
        while (a <= end && conn.nargs < FUZZ_MAX_ARGS) {
            const char *amp = memchr(a, '&', (size_t)(end - a));
            const char *stop = amp ? amp : end;
            const char *eq = memchr(a, '=', (size_t)(stop - a));
            const char *kend = eq ? eq : stop;
            char *k = next;
            fuzz_unescape(k, a, (size_t)(kend - a), 1);
            next += strlen(k) + 1;
            /* "k" without "=" has no value, as libmicrohttpd reports it. */
            char *v = NULL;
            if (eq) {
                v = next;
                fuzz_unescape(v, eq + 1, (size_t)(stop - eq - 1), 1);
                next += strlen(v) + 1;
            }
            if (*k) {
                conn.key[conn.nargs] = k;
                conn.val[conn.nargs++] = v;
            }
            if (!amp)
                break;
            a = amp + 1;
        }
    }
    if (data[0] & 0x20) {
        const char *nl2 = memchr(rest, '\n', rlen);
        size_t ilen = nl2 ? (size_t)(nl2 - rest) : rlen;
        inm = malloc(ilen + 1);
        if (!inm)
            abort();
        memcpy(inm, rest, ilen);
        inm[ilen] = '\0';
        conn.if_none_match = inm;
        rest += nl2 ? ilen + 1 : ilen;
        rlen -= nl2 ? ilen + 1 : ilen;
    }
    char *body = malloc(rlen ? rlen : 1);
    if (!body)
        abort();
    memcpy(body, rest, rlen);

    api_request req;
    fuzz_request(&req, &conn, method, path, body, rlen);
    fuzz_handle(ctx, &req);
    free(body);
    free(inm);
    free(strings);
    return 0;
}
