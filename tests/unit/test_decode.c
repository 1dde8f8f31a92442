/*
 * Tests for api/ decoding: config and policy objects from data files
 * (tests/data/decode/), request bodies and query parameters, and the route
 * list against docs/openapi.yaml.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "tests/unit/registry.h"

typedef struct fake {
    const char *ctype;
    const char *query_key, *query_val;
} fake;

static const char *fake_header(void *conn, const char *key)
{
    fake *f = conn;
    return strcmp(key, "Content-Type") == 0 ? f->ctype : NULL;
}

static const char *fake_query(void *conn, const char *key)
{
    fake *f = conn;
    return f->query_key && strcmp(key, f->query_key) == 0 ? f->query_val : NULL;
}

/* The "field" of the error in resp, or "" when there is none. */
static const char *error_field(api_response *resp, char *buf, size_t len)
{
    json_t *j = json_loadb(resp->body, resp->len, 0, NULL);
    json_t *f = json_object_get(json_object_get(j, "error"), "field");
    snprintf(buf, len, "%s", json_is_string(f) ? json_string_value(f) : "");
    json_decref(j);
    return buf;
}

typedef int (*decoder)(api_call *c, const jdoc_node *in, char **out);

static int run_config(api_call *c, const jdoc_node *in, char **out)
{
    tuner_config cfg;
    if (decode_config(c, in, "", &cfg))
        return -1;
    json_t *j = json_config(&cfg);
    *out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return 0;
}

static int run_policy(api_call *c, const jdoc_node *in, char **out)
{
    tuner_policy p;
    if (decode_policy(c, in, &p))
        return -1;
    json_t *j = json_policy(&p);
    *out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return 0;
}

static void table(const char *file, decoder dec)
{
    char *text = unit_read_file(unit_data_path(file), NULL);
    assert_non_null(text);
    int cases = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        *tab = '\0';
        const char *expect = tab + 1;
        jdoc doc;
        assert_int_equal(jdoc_parse(&doc, line, strlen(line), NULL), 0);
        const jdoc_node *in = jdoc_root(&doc);
        fake f = { "application/json", NULL, NULL };
        api_request req = { "PUT", "/", "", 0, fake_query, fake_header, &f, false };
        api_response resp;
        memset(&resp, 0, sizeof resp);
        api_call c = { .req = &req, .resp = &resp };
        char *out = NULL, got[512], field[128];
        if (dec(&c, in, &out) == 0) {
            snprintf(got, sizeof got, "ok %s", out);
            assert_int_equal(resp.status, 0);
        } else {
            snprintf(got, sizeof got, "%d %s", resp.status, error_field(&resp, field, sizeof field));
        }
        if (strcmp(got, expect) != 0)
            fail_msg("%s: input %s: expected '%s', got '%s'", file, line, expect, got);
        free(out);
        free(resp.body);
        jdoc_cleanup(&doc);
        cases++;
    }
    assert_true(cases >= 15);
    free(text);
}

static void config_cases(void **state)
{
    (void)state;
    table("decode/config.txt", run_config);
}

static void policy_cases(void **state)
{
    (void)state;
    table("decode/policy.txt", run_policy);
}

static int body_status(const char *ctype, const char *body)
{
    fake f = { ctype, NULL, NULL };
    api_request req = { "POST", "/", body, strlen(body), fake_query, fake_header, &f, false };
    api_response resp;
    memset(&resp, 0, sizeof resp);
    api_call c = { .req = &req, .resp = &resp };
    jdoc doc;
    const jdoc_node *j;
    int rc = decode_body(&c, false, &doc, &j);
    if (rc == 0)
        jdoc_cleanup(&doc);
    free(resp.body);
    return rc == 0 ? 200 : resp.status;
}

static void bodies(void **state)
{
    (void)state;
    assert_int_equal(body_status("application/json", "{\"a\":1}"), 200);
    assert_int_equal(body_status("application/json; charset=utf-8", "{}"), 200);
    assert_int_equal(body_status("application/json", "{\"a\":1,\"a\":2}"), 400);
    assert_int_equal(body_status("application/json", "{} trailing"), 400);
    assert_int_equal(body_status("application/json", "[1,2]"), 400);
    assert_int_equal(body_status("application/json", "42"), 400);
    assert_int_equal(body_status("application/json", "{\"a\":NaN}"), 400);
    assert_int_equal(body_status("application/json", ""), 400);
    assert_int_equal(body_status("application/jsonx", "{}"), 415);
    assert_int_equal(body_status("text/plain", "{}"), 415);
    assert_int_equal(body_status(NULL, "{}"), 415);
}

/* The error message decode_body gives for body (which it must refuse). */
static void body_message(const char *body, int status, const char *want)
{
    fake f = { "application/json", NULL, NULL };
    api_request req = { "POST", "/", body, strlen(body), fake_query, fake_header, &f, false };
    api_response resp;
    memset(&resp, 0, sizeof resp);
    api_call c = { .req = &req, .resp = &resp };
    jdoc doc;
    const jdoc_node *j;
    assert_int_equal(decode_body(&c, false, &doc, &j), -1);
    assert_int_equal(resp.status, status);
    json_t *e = json_loadb(resp.body, resp.len, 0, NULL);
    const char *msg = json_string_value(json_object_get(json_object_get(e, "error"), "message"));
    if (!msg || strcmp(msg, want) != 0)
        fail_msg("%s: expected '%s', got '%s'", body, want, msg ? msg : "(none)");
    json_decref(e);
    free(resp.body);
}

static void body_messages(void **state)
{
    (void)state;
    body_message("{\"mode\":\"auto\",\n \"mode\":\"pinned\"}", 400,
                 "malformed JSON at line 2 column 2: duplicate object key \"mode\"");
    body_message("{\"a\":1} x", 400,
                 "malformed JSON at line 1 column 9: unexpected 'x', expected the end of the "
                 "input after the value");
    body_message("{\"a\":9223372036854775808}", 400,
                 "malformed JSON at line 1 column 6: too big integer");
    body_message("[1]", 400, "the body must be a JSON object");
    body_message("\"x\"", 400, "the body must be a JSON object");
    char deep[200] = "{\"a\":";
    for (int i = 0; i < 70; i++)
        strcat(deep, "[");
    body_message(deep, 400,
                 "JSON over a limit at line 1 column 69: more than 64 nested arrays and objects "
                 "(request bodies allow 64 levels of nesting and 1024 members per object)");
}

static int query_status(const char *val, long long *out)
{
    fake f = { NULL, "limit", val };
    api_request req = { "GET", "/", "", 0, fake_query, fake_header, &f, false };
    api_response resp;
    memset(&resp, 0, sizeof resp);
    api_call c = { .req = &req, .resp = &resp };
    int rc = query_int(&c, "limit", 30, 1, 100, out);
    free(resp.body);
    return rc == 0 ? 200 : resp.status;
}

static void queries(void **state)
{
    (void)state;
    long long v = 0;
    assert_int_equal(query_status(NULL, &v), 200);
    assert_int_equal(v, 30);
    assert_int_equal(query_status("100", &v), 200);
    assert_int_equal(v, 100);
    assert_int_equal(query_status("0", &v), 400);
    assert_int_equal(query_status("101", &v), 400);
    assert_int_equal(query_status("-1", &v), 400);
    assert_int_equal(query_status("abc", &v), 400);
    assert_int_equal(query_status("5x", &v), 400);
    assert_int_equal(query_status("", &v), 400);
    assert_int_equal(query_status(" 5", &v), 400);
    assert_int_equal(query_status("99999999999999999999999", &v), 400);
}

static void ids(void **state)
{
    (void)state;
    char big[STORE_ID_MAX + 2];
    memset(big, 'a', sizeof big);
    big[STORE_ID_MAX] = '\0';
    assert_true(api_valid_id(big));
    big[STORE_ID_MAX] = 'a';
    big[STORE_ID_MAX + 1] = '\0';
    assert_false(api_valid_id(big));
    assert_true(api_valid_id("orders-7f9c.A_1"));
    assert_false(api_valid_id(""));
    assert_false(api_valid_id("a/b"));
    assert_false(api_valid_id("a b"));
    assert_false(api_valid_id("..%2f"));
    assert_false(api_valid_id(NULL));
}

/* ------------------------------------------------------------- openapi */

typedef struct routes {
    char items[64][160];
    size_t n;
} routes;

static void add_route(void *ud, const char *method, const char *path)
{
    routes *r = ud;
    assert_true(r->n < 64);
    snprintf(r->items[r->n++], sizeof r->items[0], "%s %s", method, path);
}

static int cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Reads "paths:" of docs/openapi.yaml: a path at two spaces of indent, its
 * methods at four. */
static void openapi_routes(routes *r)
{
    char *text = unit_read_file("docs/openapi.yaml", NULL);
    assert_non_null(text);
    bool in_paths = false;
    char path[128] = "";
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] != ' ' && line[0] != '#') {
            in_paths = strncmp(line, "paths:", 6) == 0;
            continue;
        }
        if (!in_paths)
            continue;
        if (strncmp(line, "  /", 3) == 0 && line[3 + strcspn(line + 3, ":")] == ':') {
            snprintf(path, sizeof path, "%.*s", (int)strcspn(line + 2, ":"), line + 2);
            continue;
        }
        static const char *const methods[] = { "get", "put", "post", "delete", "patch", "head" };
        for (size_t m = 0; m < 6; m++) {
            size_t n = strlen(methods[m]);
            if (strncmp(line, "    ", 4) == 0 && line[4] != ' ' &&
                strncmp(line + 4, methods[m], n) == 0 && line[4 + n] == ':') {
                char up[8];
                for (size_t k = 0; k <= n; k++)
                    up[k] = (char)(methods[m][k] >= 'a' ? methods[m][k] - 32 : methods[m][k]);
                add_route(r, up, path);
            }
        }
    }
    free(text);
}

static void openapi_matches_router(void **state)
{
    (void)state;
    static routes served, documented;
    served.n = documented.n = 0;
    api_each_route(add_route, &served);
    openapi_routes(&documented);
    qsort(served.items, served.n, sizeof served.items[0], cmp);
    qsort(documented.items, documented.n, sizeof documented.items[0], cmp);
    for (size_t i = 0; i < served.n || i < documented.n; i++) {
        const char *a = i < served.n ? served.items[i] : "(none)";
        const char *b = i < documented.n ? documented.items[i] : "(none)";
        if (strcmp(a, b) != 0)
            fail_msg("route %zu: server has '%s', docs/openapi.yaml has '%s'", i, a, b);
    }
    assert_true(served.n >= 20);
}

/* The error body of resp, parsed (jansson refuses text that is not UTF-8). */
static void assert_error_json(api_response *resp, int status, const char *code)
{
    assert_int_equal(resp->status, status);
    assert_non_null(resp->body);
    json_error_t je;
    json_t *j = json_loadb(resp->body, resp->len, 0, &je);
    if (!j)
        fail_msg("error body is not JSON (%s): %.*s", je.text, (int)resp->len, resp->body);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                        code);
    json_decref(j);
    free(resp->body);
}

/* Error messages quote the path and field names quote JSON keys, cut to
 * fit; bytes that are not UTF-8 once made the JSON encoder fail and every
 * such request answer 500 "out of memory" (found by tests/fuzz/fuzz_router,
 * input GET "/apvweb/\xf0ervweb/policy"). */
static void errors_quote_any_bytes(void **state)
{
    (void)state;
    fake f = { "application/json", NULL, NULL };
    api_ctx ctx = { .store = NULL };
    api_response resp;
    char path[1200];
    const char *paths[] = { "/apvweb/\xf0" "ervweb/policy", "/api/v1/\xff", "/\xc0\xaf",
                            "/api/\xed\xa0\x80", NULL };
    for (size_t i = 0; paths[i]; i++) {
        api_request req = { "GET", paths[i], "", 0, fake_query, fake_header, &f, false };
        api_handle(&ctx, &req, &resp);
        assert_error_json(&resp, 404, "not_found");
    }
    /* Valid UTF-8 that the 512-byte message cuts in the middle of a
     * character. */
    strcpy(path, "/api/");
    for (size_t i = 0; i < 300; i++)
        strcat(path, "\xc3\xa9");
    api_request req = { "GET", path, "", 0, fake_query, fake_header, &f, false };
    api_handle(&ctx, &req, &resp);
    assert_error_json(&resp, 404, "not_found");
    path[5] = 'x';
    api_handle(&ctx, &req, &resp);
    assert_error_json(&resp, 404, "not_found");

    /* An unknown key of many multibyte characters: its field name and
     * message are cut to fit. */
    char text[1300];
    snprintf(text, sizeof text, "{\"%s\":1}", path + 7);
    jdoc in;
    assert_int_equal(jdoc_parse(&in, text, strlen(text), NULL), 0);
    api_request put = { "PUT", "/", "", 0, fake_query, fake_header, &f, false };
    api_call c = { .ctx = &ctx, .req = &put, .resp = &resp };
    memset(&resp, 0, sizeof resp);
    tuner_config cfg;
    assert_int_equal(decode_config(&c, jdoc_root(&in), "", &cfg), -1);
    assert_error_json(&resp, 422, "invalid");
    jdoc_cleanup(&in);
}

int test_decode(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_cases),
        cmocka_unit_test(policy_cases),
        cmocka_unit_test(bodies),
        cmocka_unit_test(body_messages),
        cmocka_unit_test(queries),
        cmocka_unit_test(ids),
        cmocka_unit_test(openapi_matches_router),
        cmocka_unit_test(errors_quote_any_bytes),
    };
    return cmocka_run_group_tests_name("decode", tests, NULL, NULL);
}
