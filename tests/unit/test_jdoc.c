/*
 * Tests for api/jdoc.c, the JSON reader of request bodies: documents that
 * parse (checked through a canonical dump of the tree), every class of
 * rejection with its line and column, escapes, number limits, the depth
 * and member caps, duplicate keys small and large, and the accessors and
 * iterators.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/jdoc.h"
#include "tests/unit/registry.h"

/* ------------------------------------------------------------ the dump */

/* Dumps of the documents here are short: a fixed buffer does. */
typedef struct buf {
    char s[4096];
    size_t n;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    assert_true(b->n + n < sizeof b->s);
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void puts_(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* Strings as JSON with every byte outside printable ASCII as \xNN, so a
 * test sees exactly the bytes. */
static void dump_string(buf *b, const jdoc_node *v)
{
    put(b, "\"", 1);
    for (size_t i = 0; i < v->n; i++) {
        unsigned char ch = (unsigned char)v->v.s[i];
        char esc[8];
        if (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", ch);
            puts_(b, esc);
        } else {
            put(b, (const char *)&ch, 1);
        }
    }
    put(b, "\"", 1);
    assert_int_equal(v->v.s[v->n], '\0');
}

/* Integers as %lld, reals as %.17g with a trailing "r" (so 2 and 2.0
 * differ), containers with their sizes checked against what they hold. */
static void dump(buf *b, const jdoc_node *v)
{
    char num[64];
    size_t i = 0;
    const jdoc_node *k, *e;
    switch ((jdoc_type)v->type) {
    case JDOC_NULL: puts_(b, "null"); break;
    case JDOC_TRUE: puts_(b, "true"); break;
    case JDOC_FALSE: puts_(b, "false"); break;
    case JDOC_INTEGER:
        snprintf(num, sizeof num, "%lld", jdoc_int(v));
        puts_(b, num);
        break;
    case JDOC_REAL:
        snprintf(num, sizeof num, "%.17gr", jdoc_number(v));
        puts_(b, num);
        break;
    case JDOC_STRING: dump_string(b, v); break;
    case JDOC_ARRAY:
        put(b, "[", 1);
        jdoc_array_foreach(v, i, e) {
            if (i)
                put(b, ",", 1);
            dump(b, e);
        }
        assert_int_equal(i, jdoc_size(v));
        put(b, "]", 1);
        break;
    case JDOC_OBJECT:
        put(b, "{", 1);
        jdoc_object_foreach(v, k, e) {
            if (i++)
                put(b, ",", 1);
            assert_true(jdoc_is_string(k));
            dump_string(b, k);
            put(b, ":", 1);
            dump(b, e);
        }
        assert_int_equal(i, jdoc_size(v));
        put(b, "}", 1);
        break;
    default:
        fail_msg("node type %d", v->type);
    }
}

/* Parses text[0..len) and checks the dump; also that the nodes fit the
 * documented bound (a valid text of len bytes has at most (len + 1) / 2
 * values) and every subtree's skip ends inside the document. */
static void expect_ok(const char *text, size_t len, const char *want)
{
    jdoc doc;
    jdoc_error err;
    int rc = jdoc_parse(&doc, text, len, &err);
    if (rc)
        fail_msg("%.*s: rc %d at %d:%d: %s", (int)len, text, rc, err.line, err.column, err.text);
    assert_true(doc.n <= (len + 1) / 2);
    for (size_t i = 0; i < doc.n; i++)
        assert_true(i + doc.node[i].skip <= doc.n);
    assert_int_equal(doc.node[0].skip, doc.n);
    static buf b;
    b.n = 0;
    dump(&b, jdoc_root(&doc));
    if (strcmp(b.s, want) != 0)
        fail_msg("%.*s: expected %s, got %s", (int)len, text, want, b.s);
    jdoc_cleanup(&doc);
    assert_null(doc.node);
}

static void expect_err(const char *text, size_t len, int rc_want, int line, int column,
                       const char *reason)
{
    jdoc doc;
    jdoc_error err;
    memset(&err, 0, sizeof err);
    int rc = jdoc_parse(&doc, text, len, &err);
    if (rc != rc_want || err.line != line || err.column != column ||
        !strstr(err.text, reason))
        fail_msg("%.*s: expected %d at %d:%d with '%s', got %d at %d:%d: '%s'",
                 len > 80 ? 80 : (int)len, text, rc_want, line, column, reason, rc, err.line,
                 err.column, err.text);
    /* Nothing is left to free. */
    assert_null(doc.node);
    assert_null(doc.strings);
}

#define OK(text, want) expect_ok(text, sizeof text - 1, want)
#define BAD(text, line, col, reason) expect_err(text, sizeof text - 1, -EINVAL, line, col, reason)

/* ---------------------------------------------------------------- tests */

static void valid_documents(void **state)
{
    (void)state;
    OK("{}", "{}");
    OK("[]", "[]");
    OK(" \t\r\n{ \n} \r\n", "{}");
    OK("{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}",
       "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}");
    OK("[[],[[]],{},[{}],1]", "[[],[[]],{},[{}],1]");
    OK("{\"\":\"\"}", "{\"\":\"\"}");
    /* Any top-level value (decode_body asks for an object itself). */
    OK("0", "0");
    OK(" \"x\" ", "\"x\"");
    OK("true", "true");
    OK("null", "null");
    /* Members in document order, not sorted. */
    OK("{\"z\":1,\"a\":2,\"m\":3}", "{\"z\":1,\"a\":2,\"m\":3}");
    /* Raw UTF-8 passes through; DEL is not a control character. */
    OK("[\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \x7f\"]",
       "[\"caf\\xc3\\xa9 \\xe2\\x82\\xac \\xf0\\x9f\\x98\\x80 \\x7f\"]");
    /* The telemetry push of docs/api.md. */
    OK("{\"agent\":{\"id\":\"orders-7f9c\",\"service\":\"orders\",\"cpu_limit\":2.5,"
       "\"parent_tighter\":false},\"samples\":[{\"ts_ms\":1733300000000,"
       "\"local_runq\":[0,3,0,1],\"sched_latency_us\":{\"p50\":12.5,\"p99\":480}}]}",
       "{\"agent\":{\"id\":\"orders-7f9c\",\"service\":\"orders\",\"cpu_limit\":2.5r,"
       "\"parent_tighter\":false},\"samples\":[{\"ts_ms\":1733300000000,"
       "\"local_runq\":[0,3,0,1],\"sched_latency_us\":{\"p50\":12.5r,\"p99\":480}}]}");
}

static void not_nul_terminated(void **state)
{
    (void)state;
    /* The body is not NUL-terminated: nothing past len is read. */
    expect_ok("{\"a\":12}345", 8, "{\"a\":12}");
    expect_ok("12345", 2, "12");
    expect_ok("1.5999", 3, "1.5r");
    expect_ok("1e29", 3, "100r");
    expect_ok("\"ab\"cd", 4, "\"ab\"");
    expect_ok("truex", 4, "true");
    expect_err("{\"a\":12}", 7, -EINVAL, 1, 8, "end of input");
    expect_err("\"\\u00e9\"", 6, -EINVAL, 1, 2, "4 hex digits");
    /* An empty text, also from NULL. */
    expect_err("", 0, -EINVAL, 1, 1, "unexpected end of input");
    expect_err(NULL, 0, -EINVAL, 1, 1, "unexpected end of input");
}

static void escapes(void **state)
{
    (void)state;
    OK("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]", "[\"\\x22\\x5c/\\x08\\x0c\\x0a\\x0d\\x09\"]");
    OK("[\"\\u0041\\u00e9\\u00E9\\u20ac\\uFFFF\"]",
       "[\"A\\xc3\\xa9\\xc3\\xa9\\xe2\\x82\\xac\\xef\\xbf\\xbf\"]");
    /* Surrogate pairs: the smallest, a common one, the largest. */
    OK("[\"\\ud800\\udc00\"]", "[\"\\xf0\\x90\\x80\\x80\"]");
    OK("[\"\\uD83D\\uDE00\"]", "[\"\\xf0\\x9f\\x98\\x80\"]");
    OK("[\"\\udbff\\udfff\"]", "[\"\\xf4\\x8f\\xbf\\xbf\"]");
    OK("[\"\\u0001\"]", "[\"\\x01\"]");
    /* Keys are unescaped too. */
    OK("{\"\\u0061\\n\":1}", "{\"a\\x0a\":1}");
    /* A string that is all escapes, at its longest expansion. */
    OK("\"\\u0800\\u0800\"", "\"\\xe0\\xa0\\x80\\xe0\\xa0\\x80\"");

    BAD("[\"\\u0000\"]", 1, 3, "\\u0000 is not allowed");
    BAD("{\"a\\u0000b\":1}", 1, 4, "\\u0000 is not allowed");
    BAD("[\"\\ud800\"]", 1, 3, "without its low half");
    BAD("[\"\\ud800x\"]", 1, 3, "without its low half");
    BAD("[\"\\ud800\\n\"]", 1, 3, "without its low half");
    BAD("[\"\\ud800\\u0041\"]", 1, 3, "not a surrogate pair");
    BAD("[\"\\ud800\\ud800\"]", 1, 3, "not a surrogate pair");
    BAD("[\"\\ud800\\u12\"]", 1, 9, "4 hex digits");
    BAD("[\"\\udc00\"]", 1, 3, "low surrogate alone");
    BAD("[\"\\udfff\\ud800\"]", 1, 3, "low surrogate alone");
    BAD("[\"\\u12g4\"]", 1, 3, "4 hex digits");
    BAD("[\"\\x41\"]", 1, 3, "invalid escape");
    BAD("[\"\\'\"]", 1, 3, "invalid escape");
    BAD("[\"\\U0041\"]", 1, 3, "invalid escape");
    BAD("[\"abc\\", 1, 7, "end of input in a string");
    BAD("[\"abc", 1, 6, "end of input in a string");
}

static void strings_and_bytes(void **state)
{
    (void)state;
    BAD("[\"a\tb\"]", 1, 4, "control character 0x09");
    BAD("[\"a\nb\"]", 1, 4, "control character 0x0a");
    expect_err("[\"a\0b\"]", 7, -EINVAL, 1, 4, "control character 0x00");
    expect_err("{\"a\":1}\0", 8, -EINVAL, 1, 8, "byte 0x00");
    /* jansson loses a NUL right after a number or a literal ("[1\0]" is
     * [1] to it, fuzz_jdoc found); jdoc refuses it like any NUL. */
    expect_err("[1\0]", 4, -EINVAL, 1, 3, "byte 0x00");
    expect_err("{\"a\":true\0}", 11, -EINVAL, 1, 10, "byte 0x00");
    /* Invalid UTF-8: a stray continuation byte, an overlong form, a
     * surrogate, above U+10FFFF, a cut sequence, a byte never used. */
    BAD("[\"\x80\"]", 1, 3, "invalid UTF-8 (byte 0x80)");
    BAD("[\"\xc0\xaf\"]", 1, 3, "invalid UTF-8");
    BAD("[\"\xe0\x80\xaf\"]", 1, 3, "invalid UTF-8");
    BAD("[\"\xed\xa0\x80\"]", 1, 3, "invalid UTF-8");
    BAD("[\"\xf4\x90\x80\x80\"]", 1, 3, "invalid UTF-8");
    BAD("[\"\xe2\x82\"]", 1, 3, "invalid UTF-8");
    BAD("[\"\xff\"]", 1, 3, "invalid UTF-8");
    expect_err("[\"\xe2\x82", 4, -EINVAL, 1, 3, "invalid UTF-8");
    /* Outside strings any non-ASCII byte is out of place, a BOM too. */
    BAD("\xef\xbb\xbf{}", 1, 1, "byte 0xef");
    BAD("{\"a\":1}\xff", 1, 8, "byte 0xff");
    /* Columns count characters, not bytes; lines count '\n'. */
    BAD("{\"\xc3\xa9\xc3\xa9\":1,\n  \"b\":x}", 2, 7, "unexpected 'x'");
    BAD("[\n\n\n\"\xe2\x82\xac\",\r\n 01]", 5, 3, "leading zero");
}

static void syntax(void **state)
{
    (void)state;
    BAD("{", 1, 2, "end of input, expected a string");
    BAD("{\"a\"", 1, 5, "expected ':'");
    BAD("{\"a\":", 1, 6, "expected a value");
    BAD("{\"a\":1", 1, 7, "expected ',' or '}'");
    BAD("{\"a\":1,}", 1, 8, "expected a string");
    BAD("{\"a\" 1}", 1, 6, "expected ':'");
    BAD("{\"a\":1 \"b\":2}", 1, 8, "expected ',' or '}'");
    BAD("{a:1}", 1, 2, "unexpected 'a'");
    BAD("{'a':1}", 1, 2, "unexpected '''");
    BAD("{1:1}", 1, 2, "expected a string");
    BAD("[1,]", 1, 4, "unexpected ']'");
    BAD("[,1]", 1, 2, "unexpected ','");
    BAD("[1 2]", 1, 4, "expected ',' or ']'");
    BAD("[", 1, 2, "end of input");
    BAD("]", 1, 1, "unexpected ']'");
    BAD("{}}", 1, 3, "expected the end of the input");
    BAD("{} x", 1, 4, "expected the end of the input");
    BAD("{}{}", 1, 3, "expected the end of the input");
    BAD("   ", 1, 4, "unexpected end of input");
    BAD("tru", 1, 1, "expected a value");
    BAD("[True]", 1, 2, "unexpected 'T'");
    BAD("[nul]", 1, 2, "expected a value");
    BAD("[truex]", 1, 6, "expected ',' or ']'");
    BAD("[NaN]", 1, 2, "unexpected 'N'");
    BAD("[Infinity]", 1, 2, "unexpected 'I'");
    BAD("[-Infinity]", 1, 3, "expected a digit");
    BAD("/* c */ {}", 1, 1, "unexpected '/'");
    BAD("{\"a\":1}\f", 1, 8, "byte 0x0c");
    BAD("[\"a\"\v]", 1, 5, "byte 0x0b");
}

static void numbers(void **state)
{
    (void)state;
    OK("[0,-0,1,-1,10,123456789]", "[0,0,1,-1,10,123456789]");
    OK("[9223372036854775807,-9223372036854775808]",
       "[9223372036854775807,-9223372036854775808]");
    OK("[1.5,-0.25,1e3,1E3,1e+3,1e-3,2.0,0.0,-0.0]",
       "[1.5r,-0.25r,1000r,1000r,1000r,0.001r,2r,0r,-0r]");
    OK("[1.7976931348623157e308,5e-324,1e-400]",
       "[1.7976931348623157e+308r,4.9406564584124654e-324r,0r]");
    /* An integer too big for long long is an error, not a real; the same
     * digits with a fraction are a real. */
    OK("[9223372036854775808.0,18446744073709551616e0]",
       "[9.2233720368547758e+18r,1.8446744073709552e+19r]");
    OK("[123456789012345678901234567890.5]", "[1.2345678901234568e+29r]");
    BAD("[9223372036854775808]", 1, 2, "too big integer");
    BAD("[18446744073709551616]", 1, 2, "too big integer");
    BAD("[99999999999999999999999]", 1, 2, "too big integer");
    BAD("[-9223372036854775809]", 1, 2, "too big negative integer");
    BAD("[1e309]", 1, 2, "real number overflow");
    BAD("[-1e309]", 1, 2, "real number overflow");
    BAD("[1.8e308]", 1, 2, "real number overflow");
    BAD("[01]", 1, 3, "leading zero");
    BAD("[-01]", 1, 4, "leading zero");
    BAD("[00]", 1, 3, "leading zero");
    BAD("[1.]", 1, 4, "after the decimal point");
    BAD("[.5]", 1, 2, "unexpected '.'");
    BAD("[1.e5]", 1, 4, "after the decimal point");
    BAD("[1e]", 1, 4, "in the exponent");
    BAD("[1e+]", 1, 5, "in the exponent");
    BAD("[-]", 1, 3, "expected a digit");
    BAD("[+1]", 1, 2, "unexpected '+'");
    BAD("[0x10]", 1, 3, "expected ',' or ']'");
    BAD("[1_000]", 1, 3, "expected ',' or ']'");
}

/* text of depth levels of arrays, innermost empty. */
static char *nested(size_t depth)
{
    char *s = malloc(2 * depth + 1);
    assert_non_null(s);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[2 * depth] = '\0';
    return s;
}

static void depth(void **state)
{
    (void)state;
    char *s = nested(JDOC_MAX_DEPTH);
    jdoc doc;
    assert_int_equal(jdoc_parse(&doc, s, strlen(s), NULL), 0);
    assert_int_equal(doc.n, JDOC_MAX_DEPTH);
    jdoc_cleanup(&doc);
    free(s);
    s = nested(JDOC_MAX_DEPTH + 1);
    expect_err(s, strlen(s), -E2BIG, 1, JDOC_MAX_DEPTH + 1, "more than 64 nested");
    free(s);
    /* Objects count the same; an error before the cap is the error. */
    expect_err("{\"a\":[{\"b\":[x", 13, -EINVAL, 1, 13, "unexpected 'x'");
    s = nested(100000);
    expect_err(s, strlen(s), -E2BIG, 1, JDOC_MAX_DEPTH + 1, "nested");
    free(s);
}

/* {"k0":0,"k1":1,...} of n members, with member dup (if < n) named like
 * member first. */
static char *members(size_t n, size_t first, size_t dup)
{
    char *s = malloc(n * 24 + 8), *w = s;
    assert_non_null(s);
    *w++ = '{';
    for (size_t i = 0; i < n; i++)
        w += sprintf(w, "%s\"k%zu\":%zu", i ? "," : "", i == dup ? first : i, i);
    *w++ = '}';
    *w = '\0';
    return s;
}

/* Column of the key of member i in members(). */
static int key_column(const char *s, size_t i)
{
    const char *p = s + 1;
    for (size_t k = 0; k < i; k++)
        p = strchr(p, ',') + 1;
    return (int)(p - s) + 1;
}

static void duplicate_keys(void **state)
{
    (void)state;
    BAD("{\"a\":1,\"a\":2}", 1, 8, "duplicate object key \"a\"");
    BAD("{\"a\":1,\"b\":{\"a\":2,\"a\":3}}", 1, 19, "duplicate object key");
    /* Keys compare unescaped. */
    BAD("{\"a\":1,\"\\u0061\":2}", 1, 8, "duplicate object key");
    BAD("{\"\":1,\"\":2}", 1, 7, "duplicate object key \"\"");
    /* The same key in sibling or nested objects is fine, so is a prefix. */
    OK("{\"a\":{\"a\":{}},\"b\":{\"a\":1},\"ab\":[{\"a\":1},{\"a\":2}]}",
       "{\"a\":{\"a\":{}},\"b\":{\"a\":1},\"ab\":[{\"a\":1},{\"a\":2}]}");

    /* Small objects check as they read, large ones when they close: the
     * error names the first key that repeats an earlier one either way. */
    size_t sizes[] = { 2, 16, 17, 40, 1000, JDOC_MAX_MEMBERS };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        char *s = members(n, 0, n);
        jdoc doc;
        assert_int_equal(jdoc_parse(&doc, s, strlen(s), NULL), 0);
        assert_int_equal(jdoc_size(jdoc_root(&doc)), n);
        jdoc_cleanup(&doc);
        free(s);
        size_t at[] = { 1, n / 2, n - 1 };
        for (size_t j = 0; j < 3; j++) {
            if (at[j] == 0)
                continue;
            s = members(n, at[j] / 2, at[j]);
            expect_err(s, strlen(s), -EINVAL, 1, key_column(s, at[j]), "duplicate object key");
            free(s);
        }
    }
    /* Three equal keys in a large object: the second is the error. */
    char *s = members(40, 5, 40);
    memcpy(strstr(s, "\"k30\""), "\"k5\" ", 5);
    memcpy(strstr(s, "\"k20\""), "\"k5\" ", 5);
    expect_err(s, strlen(s), -EINVAL, 1, key_column(s, 20), "duplicate object key \"k5\"");
    free(s);
}

static void member_cap(void **state)
{
    (void)state;
    char *s = members(JDOC_MAX_MEMBERS + 1, 0, JDOC_MAX_MEMBERS + 1);
    expect_err(s, strlen(s), -E2BIG, 1, key_column(s, JDOC_MAX_MEMBERS),
               "more than 1024 members");
    free(s);
    /* Arrays have no cap of their own. */
    size_t n = 5000;
    s = malloc(2 * n + 2);
    assert_non_null(s);
    s[0] = '[';
    for (size_t i = 0; i < n; i++) {
        s[1 + 2 * i] = '7';
        s[2 + 2 * i] = i + 1 < n ? ',' : ']';
    }
    s[2 * n + 1] = '\0';
    jdoc doc;
    assert_int_equal(jdoc_parse(&doc, s, strlen(s), NULL), 0);
    assert_int_equal(jdoc_size(jdoc_root(&doc)), n);
    /* The node array grew from its first size, within the bound. */
    assert_int_equal(doc.n, n + 1);
    assert_true(doc.cap >= doc.n && doc.cap <= strlen(s) / 2 + JDOC_MAX_DEPTH + 2);
    jdoc_cleanup(&doc);
    free(s);
}

static void accessors(void **state)
{
    (void)state;
    static const char text[] =
        "{\"n\":null,\"t\":true,\"f\":false,\"i\":-42,\"r\":2.5,\"s\":\"h\\u00e9\","
        "\"a\":[1,[2,[3]],{\"x\":[4]},5],\"o\":{\"p\":{\"q\":1},\"z\":\"last\"}}";
    jdoc doc;
    assert_int_equal(jdoc_parse(&doc, text, sizeof text - 1, NULL), 0);
    const jdoc_node *root = jdoc_root(&doc);
    assert_true(jdoc_is_object(root));
    assert_int_equal(jdoc_size(root), 8);

    const jdoc_node *n = jdoc_get(root, "n"), *t = jdoc_get(root, "t"),
                    *f = jdoc_get(root, "f"), *i = jdoc_get(root, "i"),
                    *r = jdoc_get(root, "r"), *s = jdoc_get(root, "s"),
                    *a = jdoc_get(root, "a"), *o = jdoc_get(root, "o");
    assert_true(jdoc_is_null(n) && !jdoc_is_boolean(n) && !jdoc_is_number(n));
    assert_true(jdoc_is_true(t) && jdoc_is_boolean(t));
    assert_true(!jdoc_is_true(f) && jdoc_is_boolean(f));
    assert_true(jdoc_is_integer(i) && jdoc_is_number(i) && !jdoc_is_real(i));
    assert_int_equal(jdoc_int(i), -42);
    assert_true(jdoc_number(i) == -42.0);
    assert_true(jdoc_is_real(r) && jdoc_is_number(r) && !jdoc_is_integer(r));
    assert_int_equal(jdoc_int(r), 0);      /* as json_integer_value of a real */
    assert_true(jdoc_number(r) == 2.5);
    assert_string_equal(jdoc_str(s), "h\xc3\xa9");
    assert_int_equal(jdoc_strlen(s), 3);
    assert_null(jdoc_str(i));
    assert_int_equal(jdoc_strlen(i), 0);
    assert_int_equal(jdoc_size(s), 0);

    /* Absent keys, lookups on non-objects and NULL read as nothing. */
    assert_null(jdoc_get(root, "missing"));
    assert_null(jdoc_get(root, ""));
    assert_null(jdoc_get(root, "nn"));
    assert_null(jdoc_get(a, "x"));        /* an array is not an object */
    assert_null(jdoc_get(NULL, "n"));
    assert_null(jdoc_get(jdoc_get(o, "missing"), "q"));
    assert_false(jdoc_is_object(NULL) || jdoc_is_null(NULL) || jdoc_is_true(NULL));
    assert_int_equal(jdoc_int(NULL), 0);
    assert_null(jdoc_str(NULL));
    assert_int_equal(jdoc_size(NULL), 0);
    assert_int_equal(jdoc_int(jdoc_get(jdoc_get(jdoc_get(o, "p"), "q"), "r")), 0);
    assert_int_equal(jdoc_int(jdoc_get(jdoc_get(o, "p"), "q")), 1);
    /* The member after a nested one is found past its subtree. */
    assert_string_equal(jdoc_str(jdoc_get(o, "z")), "last");

    /* Array iteration visits the elements, not what they hold. */
    size_t idx;
    const jdoc_node *e;
    long long seen[8];
    jdoc_type types[8];
    size_t count = 0;
    jdoc_array_foreach(a, idx, e) {
        assert_int_equal(idx, count);
        types[count] = (jdoc_type)e->type;
        seen[count++] = jdoc_int(e);
    }
    assert_int_equal(count, 4);
    assert_int_equal(seen[0], 1);
    assert_int_equal(types[1], JDOC_ARRAY);
    assert_int_equal(types[2], JDOC_OBJECT);
    assert_int_equal(seen[3], 5);
    /* Object iteration: keys in document order, each with its value. */
    static const char *const keys[] = { "n", "t", "f", "i", "r", "s", "a", "o" };
    const jdoc_node *k, *v;
    count = 0;
    jdoc_object_foreach(root, k, v) {
        assert_string_equal(jdoc_str(k), keys[count]);
        assert_ptr_equal(v, jdoc_get(root, keys[count]));
        count++;
    }
    assert_int_equal(count, 8);
    /* Neither iterates over the wrong kind of container, or over NULL. */
    count = 0;
    jdoc_array_foreach(root, idx, e)
        count++;
    jdoc_object_foreach(a, k, v)
        count++;
    jdoc_array_foreach((const jdoc_node *)NULL, idx, e)
        count++;
    jdoc_object_foreach(jdoc_get(root, "a2"), k, v)
        count++;
    assert_int_equal(count, 0);
    /* Empty containers. */
    jdoc_cleanup(&doc);
    assert_int_equal(jdoc_parse(&doc, "[[],{}]", 7, NULL), 0);
    root = jdoc_root(&doc);
    assert_null(jdoc_first(jdoc_first(root)));
    assert_null(jdoc_first(jdoc_next(root, jdoc_first(root))));
    assert_null(jdoc_next(root, jdoc_next(root, jdoc_first(root))));
    jdoc_cleanup(&doc);
    jdoc_cleanup(&doc);                   /* harmless twice */
    assert_null(jdoc_root(&doc));
}

int test_jdoc(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_documents),
        cmocka_unit_test(not_nul_terminated),
        cmocka_unit_test(escapes),
        cmocka_unit_test(strings_and_bytes),
        cmocka_unit_test(syntax),
        cmocka_unit_test(numbers),
        cmocka_unit_test(depth),
        cmocka_unit_test(duplicate_keys),
        cmocka_unit_test(member_cap),
        cmocka_unit_test(accessors),
    };
    return cmocka_run_group_tests_name("jdoc", tests, NULL, NULL);
}
