/*
 * test_auth.c — server/sha256.c and server/auth.c: the FIPS 180-2 SHA-256
 * vectors, the token file (good files and every kind of bad line), the
 * constant-time comparison, lookups and service scopes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/auth.h"
#include "tests/unit/registry.h"

static void hex(const uint8_t *d, char out[2 * SHA256_LEN + 1])
{
    for (int i = 0; i < SHA256_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check_sha(const char *msg, size_t len, const char *want)
{
    uint8_t d[SHA256_LEN];
    char got[2 * SHA256_LEN + 1];
    sha256(msg, len, d);
    hex(d, got);
    assert_string_equal(got, want);
    /* The same digest fed in pieces of every size from 1 to 130. */
    for (size_t step = 1; step <= 130 && step < len; step += 7) {
        sha256_ctx c;
        sha256_init(&c);
        for (size_t i = 0; i < len; i += step)
            sha256_update(&c, msg + i, len - i < step ? len - i : step);
        sha256_final(&c, d);
        hex(d, got);
        assert_string_equal(got, want);
    }
}

/* FIPS 180-2 appendix B, plus the empty message and the 56/64-byte edges. */
static void test_sha256_vectors(void **state)
{
    (void)state;
    check_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_sha(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    check_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    char *million = malloc(1000000);
    assert_non_null(million);
    memset(million, 'a', 1000000);
    check_sha(million, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);
    /* The block edges, checked with printf %s MSG | sha256sum: 55 bytes end in
     * one block, 56 need a second for the length, 64 fill a block exactly. */
    const char *edge = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ01";
    check_sha(edge, 55, "dd00794e0454db49259b6c426331d5e0cdf642fc0d7353fb85ee89519aafd995");
    check_sha(edge, 56, "ecbe4cc6c393d5e47e875e1a1ce7489d4e6d420bc3ec3312f9df475278d77f69");
    check_sha(edge, 64, "50d3f53102c12e8165dfa48ac947eb9d3750d51887fb6f48f0755a158df2a89c");
}

#define ADMIN_TOKEN "admin-token-0123456789"
#define VIEWER_TOKEN "viewer.token~0123456789+/="
/* sha256 of "alpha-agent-token-0123" (printf %s ... | sha256sum). */
#define ALPHA_TOKEN "alpha-agent-token-0123"

static char *good_file(void)
{
    uint8_t d[SHA256_LEN];
    char h[2 * SHA256_LEN + 1];
    sha256(ALPHA_TOKEN, strlen(ALPHA_TOKEN), d);
    hex(d, h);
    static char text[1024];
    snprintf(text, sizeof text,
             "# gotuned tokens\n"
             "\n"
             "   \t\n"
             ADMIN_TOKEN " admin ops-alice\r\n"
             "\t" VIEWER_TOKEN "\tviewer  grafana   # read-only\n"
             "sha256:%s agent alpha-fleet alpha\n"
             "beta-agent-token-0123 agent beta-fleet beta,gamma\n"
             "every-agent-token-012 agent all-fleet *",
             h);
    return text;
}

static void test_parse_good_file(void **state)
{
    (void)state;
    char err[256] = "";
    auth_table *t = NULL;
    const char *text = good_file();
    assert_int_equal(auth_parse(text, strlen(text), &t, err, sizeof err), 0);
    assert_int_equal(t->n, 5);
    const auth_token *a = auth_lookup(t, ADMIN_TOKEN, strlen(ADMIN_TOKEN));
    assert_non_null(a);
    assert_int_equal(a->role, AUTH_ADMIN);
    assert_string_equal(a->name, "ops-alice");
    assert_null(a->scope);
    const auth_token *v = auth_lookup(t, VIEWER_TOKEN, strlen(VIEWER_TOKEN));
    assert_non_null(v);
    assert_int_equal(v->role, AUTH_VIEWER);
    assert_string_equal(v->name, "grafana");
    assert_int_equal(v->line, 5);
    const auth_token *al = auth_lookup(t, ALPHA_TOKEN, strlen(ALPHA_TOKEN));
    assert_non_null(al);
    assert_int_equal(al->role, AUTH_AGENT);
    assert_string_equal(al->name, "alpha-fleet");
    assert_string_equal(al->scope, "alpha");
    const auth_token *all = auth_lookup(t, "every-agent-token-012", 21);
    assert_non_null(all);
    assert_null(all->scope);
    /* Near misses find nothing: a prefix, one more byte, one byte changed,
     * the sha256: text itself, nothing. */
    assert_null(auth_lookup(t, ADMIN_TOKEN, strlen(ADMIN_TOKEN) - 1));
    assert_null(auth_lookup(t, ADMIN_TOKEN "x", strlen(ADMIN_TOKEN) + 1));
    assert_null(auth_lookup(t, "admin-token-0123456788", strlen(ADMIN_TOKEN)));
    assert_null(auth_lookup(t, "", 0));
    assert_null(auth_lookup(NULL, ADMIN_TOKEN, strlen(ADMIN_TOKEN)));
    auth_free(t);
}

/* One bad line each: the text, the line the message names, a piece of it. */
static const struct bad {
    const char *text;
    unsigned line;
    const char *msg;
} bad_lines[] = {
    { "tooshort-012345 admin a\n", 1, "16 to 256 characters" },
    { "# ok\nabcdefghijklmnop\n", 2, "found 1 field" },
    { "abcdefghijklmnop admin\n", 1, "found 2 fields" },
    { "abcdefghijklmnop agent n alpha extra\n", 1, "more than 4 fields" },
    { "abcdefghijklmnop root n\n", 1, "unknown role 'root'" },
    { "abcdefghijklmnop Admin n\n", 1, "unknown role" },
    { "abcdefghij\"lmnop admin n\n", 1, "may hold only" },
    { "abcdefghijklmnop admin n@me\n", 1, "a name must match" },
    { "abcdefghijklmnop admin "
      "n123456789012345678901234567890123456789012345678901234567890123\n", 1,
      "a name must match" },
    { "sha256:abcd admin n\n", 1, "64 hex digits" },
    { "sha256:zz5a6f0e3c0c2a41d2d2d4b0e0c5e1a5b5f1d1f1e5b5c5d5a5e5f5a5b5c5d5e5 admin n\n", 1,
      "hex digits only" },
    { "SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad admin n\n", 1,
      "may hold only" },
    { "abcdefghijklmnop admin n alpha\n", 1, "only agent tokens take a service scope" },
    { "abcdefghijklmnop viewer n *\n", 1, "only agent tokens take a service scope" },
    { "abcdefghijklmnop agent n alpha,,beta\n", 1, "service scope is" },
    { "abcdefghijklmnop agent n alpha,\n", 1, "service scope is" },
    { "abcdefghijklmnop agent n al/pha\n", 1, "service scope is" },
    { "abcdefghijklmnop agent n **\n", 1, "service scope is" },
    { "abcdefghijklmnop admin a\nabcdefghijklmnop viewer b\n", 2, "the same token as line 1" },
    { "abcdefghijklmnop admin a\n"
      "sha256:a6c12cc7ba7fba4e7dd6c4dbd8aa3d8dd6a3d2ab0b2d59f42b6e5bd7a0c6d0e4 viewer b\n"
      "qrstuvwxyzabcdef viewer a\n", 3, "the name 'a' is taken by line 1" },
};

static void test_parse_bad_lines(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_lines / sizeof bad_lines[0]; i++) {
        char err[256] = "", want[32];
        auth_table *t = (auth_table *)&err; /* must come back NULL */
        const struct bad *b = &bad_lines[i];
        int rc = auth_parse(b->text, strlen(b->text), &t, err, sizeof err);
        if (rc != -EINVAL || !t == 0 || !strstr(err, b->msg))
            fail_msg("case %zu (%s): rc %d, message '%s', wanted '%s'", i, b->text, rc, err,
                     b->msg);
        snprintf(want, sizeof want, "line %u: ", b->line);
        if (strncmp(err, want, strlen(want)) != 0)
            fail_msg("case %zu: message '%s' does not start with '%s'", i, err, want);
    }
}

static void test_parse_empty_and_binary(void **state)
{
    (void)state;
    char err[256];
    auth_table *t;
    const char *none = "# nothing here\n\n";
    assert_int_equal(auth_parse(none, strlen(none), &t, err, sizeof err), -EINVAL);
    assert_null(t);
    assert_non_null(strstr(err, "no tokens"));
    assert_int_equal(auth_parse("abcdefghijklmnop admin a\0", 25, &t, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "NUL"));
}

static void test_equal_compares_every_byte(void **state)
{
    (void)state;
    uint8_t a[SHA256_LEN], b[SHA256_LEN];
    memset(a, 0x5a, sizeof a);
    memcpy(b, a, sizeof b);
    assert_true(auth_equal(a, b, sizeof a));
    assert_true(auth_equal(a, b, 0));
    for (size_t i = 0; i < sizeof a; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            assert_false(auth_equal(a, b, sizeof a));
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_true(auth_equal(a, b, sizeof a));
}

static void test_scopes(void **state)
{
    (void)state;
    char err[256];
    auth_table *t;
    const char *text = good_file();
    assert_int_equal(auth_parse(text, strlen(text), &t, err, sizeof err), 0);
    const auth_token *admin = auth_lookup(t, ADMIN_TOKEN, strlen(ADMIN_TOKEN));
    const auth_token *viewer = auth_lookup(t, VIEWER_TOKEN, strlen(VIEWER_TOKEN));
    const auth_token *alpha = auth_lookup(t, ALPHA_TOKEN, strlen(ALPHA_TOKEN));
    const auth_token *beta = auth_lookup(t, "beta-agent-token-0123", 21);
    const auth_token *all = auth_lookup(t, "every-agent-token-012", 21);
    assert_true(auth_in_scope(admin, "anything"));
    assert_false(auth_in_scope(viewer, "alpha"));
    assert_true(auth_in_scope(alpha, "alpha"));
    assert_false(auth_in_scope(alpha, "alph"));
    assert_false(auth_in_scope(alpha, "alpha2"));
    assert_false(auth_in_scope(alpha, "beta"));
    assert_true(auth_in_scope(beta, "beta"));
    assert_true(auth_in_scope(beta, "gamma"));
    assert_false(auth_in_scope(beta, "beta,gamma"));
    assert_false(auth_in_scope(beta, "alpha"));
    assert_false(auth_in_scope(beta, ""));
    assert_false(auth_in_scope(beta, NULL));
    assert_true(auth_in_scope(all, "whatever"));
    assert_string_equal(auth_role_name(AUTH_ADMIN), "admin");
    assert_string_equal(auth_role_name(AUTH_AGENT), "agent");
    assert_string_equal(auth_role_name(AUTH_VIEWER), "viewer");
    auth_free(t);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void test_load_checks_the_mode(void **state)
{
    (void)state;
    char dir[] = "/tmp/gotuned-auth-XXXXXX", path[64], err[512];
    auth_table *t;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/tokens", dir);
    write_file(path, "abcdefghijklmnop admin a\n", 0600);
    assert_int_equal(auth_load(path, &t, err, sizeof err), 0);
    assert_int_equal(t->n, 1);
    auth_free(t);
    write_file(path, "abcdefghijklmnop admin a\n", 0400);
    assert_int_equal(auth_load(path, &t, err, sizeof err), 0);
    auth_free(t);
    write_file(path, "abcdefghijklmnop admin a\n", 0644);
    assert_int_equal(auth_load(path, &t, err, sizeof err), -EPERM);
    assert_null(t);
    assert_non_null(strstr(err, "mode 0644"));
    assert_non_null(strstr(err, path));
    write_file(path, "abcdefghijklmnop admin a\n", 0640);
    assert_int_equal(auth_load(path, &t, err, sizeof err), -EPERM);
    write_file(path, "abcdefghijklmnop admin a\n", 0604);
    assert_int_equal(auth_load(path, &t, err, sizeof err), -EPERM);
    write_file(path, "# one\nabcdefghijklmnop admin a b\n", 0600);
    assert_int_equal(auth_load(path, &t, err, sizeof err), -EINVAL);
    char want[128];
    snprintf(want, sizeof want, "auth file %s line 2: ", path);
    assert_non_null(strstr(err, want));
    assert_int_equal(auth_load(dir, &t, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not a regular file"));
    unlink(path);
    assert_int_equal(auth_load(path, &t, err, sizeof err), -ENOENT);
    rmdir(dir);
}

int test_auth(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_parse_good_file),
        cmocka_unit_test(test_parse_bad_lines),
        cmocka_unit_test(test_parse_empty_and_binary),
        cmocka_unit_test(test_equal_compares_every_byte),
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_load_checks_the_mode),
    };
    return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
