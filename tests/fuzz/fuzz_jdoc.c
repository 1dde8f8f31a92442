/*
 * fuzz_jdoc.c — libFuzzer target for api/jdoc.c, cross-checked against
 * jansson, which decoded request bodies before jdoc did.
 *
 * The whole input is the text, as an exact-size heap copy (not
 * NUL-terminated, as server/http.c hands a body over). It goes to
 * jdoc_parse and to json_loadb(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES):
 * both take any top-level value (decode_body asks for an object
 * afterwards, the same test for both). Checked:
 * - jdoc accepts exactly when jansson does, unless jdoc refused the text
 *   for one of its caps (-E2BIG: nesting past JDOC_MAX_DEPTH, an object
 *   past JDOC_MAX_MEMBERS), the documented deliberate difference, or the
 *   text has a NUL byte right after a number or a literal, which jansson
 *   loses (see without_lost_nuls): then jdoc must accept the text without
 *   those bytes, and give jansson's tree;
 * - when both accept, the trees are equal: types, integers exactly, reals
 *   bit for bit, strings byte for byte, object keys in the same order, and
 *   jdoc_get finds every member of a small object;
 * - the nodes fit the bound of jdoc.c: at most (len + 1) / 2 values, each
 *   subtree inside the document;
 * - a refusal has a line and column inside the text and a reason.
 * A failed check aborts; libFuzzer saves the input.
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/jdoc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what, const char *detail)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_jdoc: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void same(const jdoc_node *v, json_t *j)
{
    switch ((jdoc_type)v->type) {
    case JDOC_NULL:
        check(json_is_null(j), "null differs", NULL);
        break;
    case JDOC_TRUE:
        check(json_is_true(j), "true differs", NULL);
        break;
    case JDOC_FALSE:
        check(json_is_false(j), "false differs", NULL);
        break;
    case JDOC_INTEGER:
        check(json_is_integer(j) && json_integer_value(j) == jdoc_int(v), "integer differs",
              NULL);
        break;
    case JDOC_REAL: {
        double a = jdoc_number(v), b = json_real_value(j);
        check(json_is_real(j) && memcmp(&a, &b, sizeof a) == 0, "real differs", NULL);
        break;
    }
    case JDOC_STRING:
        check(json_is_string(j) && json_string_length(j) == jdoc_strlen(v) &&
              memcmp(json_string_value(j), jdoc_str(v), jdoc_strlen(v)) == 0 &&
              jdoc_str(v)[jdoc_strlen(v)] == '\0', "string differs", NULL);
        break;
    case JDOC_ARRAY: {
        check(json_is_array(j) && json_array_size(j) == jdoc_size(v), "array differs", NULL);
        size_t i;
        const jdoc_node *e;
        jdoc_array_foreach(v, i, e)
            same(e, json_array_get(j, i));
        break;
    }
    case JDOC_OBJECT: {
        check(json_is_object(j) && json_object_size(j) == jdoc_size(v), "object differs", NULL);
        void *it = json_object_iter(j);
        const jdoc_node *k, *e;
        jdoc_object_foreach(v, k, e) {
            check(it != NULL, "jansson has fewer members", NULL);
            const char *jk = json_object_iter_key(it);
            size_t jn = json_object_iter_key_len(it);
            check(jn == jdoc_strlen(k) && memcmp(jk, jdoc_str(k), jn) == 0,
                  "key differs or is out of order", jdoc_str(k));
            if (jdoc_size(v) <= 64)
                check(jdoc_get(v, jdoc_str(k)) == e, "jdoc_get misses a member", jdoc_str(k));
            same(e, json_object_iter_value(it));
            it = json_object_iter_next(j, it);
        }
        check(it == NULL, "jansson has more members", NULL);
        break;
    }
    default:
        check(0, "unknown node type", NULL);
    }
}

/* jansson's one leniency: its stream reads the byte after a number or a
 * literal, puts it back (stream_unget), and a NUL put back reads as "buffer
 * empty", so that byte is lost: "[1\0]" parses as [1]. jdoc refuses a NUL
 * outside a string, as RFC 8259 does. Returns a copy of text without the
 * NULs that follow a digit or a letter (*n its length), or NULL when there
 * is none. Inside a string such a NUL makes both refuse the text. */
static char *without_lost_nuls(const char *text, size_t size, size_t *n)
{
    char *out = malloc(size ? size : 1);
    size_t w = 0;
    for (size_t i = 0; i < size; i++) {
        char p = i ? text[i - 1] : ' ';
        bool lost = text[i] == '\0' && ((p >= '0' && p <= '9') || (p >= 'a' && p <= 'z') ||
                                        (p >= 'A' && p <= 'Z'));
        if (!lost)
            out[w++] = text[i];
    }
    if (w == size) {
        free(out);
        return NULL;
    }
    *n = w;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);
    jdoc doc;
    jdoc_error err;
    int rc = jdoc_parse(&doc, text, size, &err);
    json_error_t je;
    json_t *j = json_loadb(text, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (rc == 0) {
        check(j != NULL, "jdoc accepts what jansson refuses", je.text);
        check(doc.n >= 1 && doc.n <= (size + 1) / 2, "more nodes than the bound", NULL);
        check(doc.node[0].skip == doc.n, "the root's subtree is not the document", NULL);
        for (size_t i = 0; i < doc.n; i++)
            check(doc.node[i].skip >= 1 && i + doc.node[i].skip <= doc.n,
                  "a subtree ends outside the document", NULL);
        same(jdoc_root(&doc), j);
        jdoc_cleanup(&doc);
    } else {
        check(rc == -EINVAL || rc == -E2BIG, "unexpected code", err.text);
        if (rc == -EINVAL && j) {
            size_t n = 0;
            char *fixed = without_lost_nuls(text, size, &n);
            check(fixed != NULL, "jdoc refuses what jansson accepts", err.text);
            /* Without the NULs jdoc may still stop at a cap it had not
             * reached before. */
            jdoc again;
            int rc2 = jdoc_parse(&again, fixed, n, &err);
            check(rc2 == 0 || rc2 == -E2BIG,
                  "jdoc refuses what jansson accepts (its lost NULs removed)", err.text);
            if (rc2 == 0)
                same(jdoc_root(&again), j);
            jdoc_cleanup(&again);
            free(fixed);
        }
        check(err.line >= 1 && err.column >= 1 && err.offset <= size && err.text[0],
              "error without a place or a reason", err.text);
        check(doc.node == NULL && doc.strings == NULL, "a refused doc holds memory", NULL);
    }
    json_decref(j);
    free(text);
    return 0;
}
