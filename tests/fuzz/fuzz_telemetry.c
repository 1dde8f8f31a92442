/*
 * fuzz_telemetry.c — libFuzzer target for POST /api/v1/telemetry through
 * the real api_handle, against a real store (tests/fuzz/harness.c).
 *
 * The first byte chooses the request: a multiple of 4 sends the rest as
 * text/plain (schedtrace output) with ?agent=fz-N&service=fuzz, N from the
 * byte (8 agents), and the second byte picks which optional query arguments
 * ride along; anything else sends the rest as application/json. JSON ids
 * come from the input, so the store is capped at FUZZ_AGENTS agents (later
 * new ids get 503, as in production at the cap).
 *
 * Checked: the answer is one of the statuses gotuned sends (never 500),
 * with a JSON body that parses and the documented error shape.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/harness.h"

#define FUZZ_AGENTS 64

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_api_ctx(FUZZ_AGENTS);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    api_ctx *ctx = fuzz_api_ctx(FUZZ_AGENTS);
    fuzz_conn conn = { 0 };
    char agent[16];
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    if (data[0] % 4 == 0) {
        unsigned opts = size > 1 ? data[1] : 0;
        body = size > 1 ? data + 2 : data + 1;
        len = size > 1 ? size - 2 : 0;
        conn.ctype = "text/plain; charset=utf-8";
        snprintf(agent, sizeof agent, "fz-%u", (data[0] >> 2) % 8);
        conn.key[conn.nargs] = "agent";
        conn.val[conn.nargs++] = agent;
        conn.key[conn.nargs] = "service";
        conn.val[conn.nargs++] = "fuzz";
        /* Valid and invalid values for the optional arguments. */
        static const char *const keys[] = { "hostname", "runtime", "pid", "num_cpu",
                                            "affinity", "applied_version", "cpu_limit" };
        static const char *const good[] = { "h1", "go1.22.1", "4242", "8", "4", "1", "2.5" };
        static const char *const bad[] = { "", "", "-1", "0x10", "65537",
                                           "99999999999999999999", "nan" };
        for (size_t i = 0; i < 7; i++) {
            if (!(opts & (1u << i)))
                continue;
            conn.key[conn.nargs] = keys[i];
            conn.val[conn.nargs++] = (opts & 0x80) ? bad[i] : good[i];
        }
    } else {
        conn.ctype = "application/json";
    }
    /* server/http.c hands over a buffer that is not NUL-terminated; an
     * exact-size copy lets ASan see any read past body_len. */
    char *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    memcpy(copy, body, len);
    api_request req;
    fuzz_request(&req, &conn, "POST", "/api/v1/telemetry", copy, len);
    fuzz_handle(ctx, &req);
    free(copy);
    return 0;
}
