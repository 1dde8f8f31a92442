/*
 * harness.c — see harness.h.
 */
#include <stdbool.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "tests/fuzz/harness.h"
#include "server/unescape.h"

static char dir[256];
static pid_t owner;
static store *st;
static api_ctx ctx;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    /* Only the process that made the directory removes it (libFuzzer's
     * -fork/-jobs children inherit the atexit handler). */
    if (getpid() != owner)
        return;
    if (st)
        store_close(st);
    st = NULL;
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

api_ctx *fuzz_api_ctx(size_t max_agents)
{
    if (st)
        return &ctx;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/gotuned-fuzz.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    owner = getpid();
    atexit(cleanup);
    /* Samples older than ten seconds are deleted, so the database stays
     * small however long the run; the agent cap bounds the rest. */
    store_options opt;
    store_options_default(&opt);
    opt.max_agents = max_agents;
    opt.retention_ms = 10000;
    char err[256] = "";
    char data[300];
    snprintf(data, sizeof data, "%s/data", dir);
    if (store_open(data, &opt, &st, err, sizeof err) != 0) {
        fprintf(stderr, "store_open %s: %s\n", data, err);
        abort();
    }
    api_init();
    ctx.store = st;
    ctx.now_ms = wall_ms;
    return &ctx;
}

static const char *conn_header(void *p, const char *key)
{
    fuzz_conn *c = p;
    if (strcasecmp(key, "Content-Type") == 0)
        return c->ctype;
    if (strcasecmp(key, "If-None-Match") == 0)
        return c->if_none_match;
    return NULL;
}

static const char *conn_query(void *p, const char *key)
{
    fuzz_conn *c = p;
    for (size_t i = 0; i < c->nargs; i++)
        if (strcmp(c->key[i], key) == 0)
            return c->val[i];
    return NULL;
}

void fuzz_request(api_request *req, fuzz_conn *conn, const char *method, const char *path,
                  const char *body, size_t len)
{
    *req = (api_request){ method, path, body, len, conn_query, conn_header, conn, false };
}

void fuzz_unescape(char *dst, const char *src, size_t len, int plus_is_space)
{
    memcpy(dst, src, len);
    dst[len] = '\0';
    if (plus_is_space)
        for (char *p = dst; *p; p++)
            if (*p == '+')
                *p = ' ';
    url_unescape(dst);      /* the server's own decoding (server/unescape.h) */
}

static void fail(const char *what, const api_response *r)
{
    fprintf(stderr, "fuzz: %s (status %d): %.*s\n", what, r->status,
            r->body ? (int)(r->len > 2000 ? 2000 : r->len) : 0, r->body ? r->body : "");
    abort();
}

static void check(const api_response *r)
{
    static const int statuses[] = { 200, 201, 204, 304, 400, 404, 405, 409, 413, 415, 422, 503 };
    bool known = false;
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        known |= r->status == statuses[i];
    if (!known)
        fail("unexpected status", r);
    if (r->status == 204 || r->status == 304) {
        if (r->body || r->static_body)
            fail("a body on a bodiless status", r);
        return;
    }
    if (r->static_body)     /* a compiled-in dashboard file */
        return;
    if (!r->body || !r->content_type || strcmp(r->content_type, "application/json") != 0)
        fail("no JSON body", r);
    json_error_t je;
    json_t *j = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!json_is_object(j))
        fail("the body is not a JSON object", r);
    if (r->status >= 400) {
        json_t *e = json_object_get(j, "error");
        json_t *field = json_object_get(e, "field");
        if (!json_is_object(e) || json_object_size(e) != 3 ||
            !json_is_string(json_object_get(e, "code")) ||
            !json_is_string(json_object_get(e, "message")) ||
            !(json_is_string(field) || json_is_null(field)))
            fail("a malformed error object", r);
        if (r->status == 405 && r->allow[0] == '\0')
            fail("405 without Allow", r);
    }
    json_decref(j);
}

int fuzz_handle(api_ctx *c, const api_request *req)
{
    api_response resp;
    api_handle(c, req, &resp);
    if (resp.hold.wait_ms > 0) {
        if (resp.body || req->no_wait)
            fail("a held answer with a body, or held twice", &resp);
        api_request again = *req;
        again.no_wait = true;
        api_handle(c, &again, &resp);
        if (resp.hold.wait_ms > 0)
            fail("held again with no_wait", &resp);
    }
    check(&resp);
    int status = resp.status;
    free(resp.body);
    return status;
}
