/*
 * jdoc.h — a small strict JSON reader for request bodies (docs/jdoc.md).
 *
 * jdoc_parse reads a whole text (RFC 8259, nothing more) into a flat array
 * of nodes in document order, and the accessors below read it much as
 * jansson's do: a NULL node or a node of another type reads as "not that
 * type" (false, 0, NULL), so a missing key needs no extra check. A
 * document takes two allocations however many values it holds: the nodes
 * (grown by doubling, bounded by the text's length) and one buffer of
 * len + 1 bytes that holds every string, unescaped and NUL-terminated.
 * jansson still builds the responses; jdoc only reads.
 *
 * What it accepts is what jansson's json_loadb(JSON_DECODE_ANY |
 * JSON_REJECT_DUPLICATES) accepts, with the same values, except for the two
 * caps (JDOC_MAX_DEPTH, JDOC_MAX_MEMBERS): duplicate keys, "\u0000", lone
 * surrogates, invalid UTF-8, integers outside long long and reals that
 * overflow to infinity are all rejected.
 *
 * Errors: jdoc_parse returns 0, or a negative errno-style code with
 * *err filled in (line and column of the byte at fault, and a reason).
 */
#ifndef GOTUNED_API_JDOC_H
#define GOTUNED_API_JDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nesting of arrays and objects (the top-level value is depth 1). */
#define JDOC_MAX_DEPTH 64
/* Members of one object. Above 16 members duplicate keys are found by
 * sorting the keys, so the cap bounds that sort's buffer, not its time. */
#define JDOC_MAX_MEMBERS 1024

typedef enum jdoc_type {
    JDOC_NULL,
    JDOC_FALSE,
    JDOC_TRUE,
    JDOC_INTEGER,       /* a number without fraction or exponent */
    JDOC_REAL,          /* any other number */
    JDOC_STRING,
    JDOC_ARRAY,
    JDOC_OBJECT,
} jdoc_type;

/* One value. An array's elements follow it in document order; an object's
 * members follow it as key (a string node), value, key, value, ... */
typedef struct jdoc_node {
    union {
        long long i;
        double d;
        const char *s;          /* NUL-terminated, in the document's buffer */
    } v;
    uint32_t n;                 /* string: bytes (without the NUL); array:
                                   elements; object: members */
    uint32_t skip;              /* nodes in this value's subtree, itself
                                   included: the next sibling is this + skip */
    uint32_t at;                /* offset of the value's first byte in the
                                   text, for error messages */
    uint8_t type;               /* jdoc_type */
} jdoc_node;

/* A parsed document, caller-owned storage: zero it (or let jdoc_parse fill
 * it), then jdoc_cleanup. Nodes stay where they are until then. */
typedef struct jdoc {
    jdoc_node *node;            /* node[0] is the top-level value */
    size_t n, cap;
    char *strings;              /* every string's text, len + 1 bytes */
} jdoc;

typedef struct jdoc_error {
    int line, column;           /* 1-based; the column counts UTF-8 characters */
    size_t offset;              /* byte offset in the text */
    char text[96];              /* the reason, in a few words */
} jdoc_error;

/* Parses text[0..len) (not NUL-terminated; any top-level value) into *doc.
 * 0 on success; on failure *doc holds nothing to free and the code is
 * -EINVAL (not JSON, or a value jansson refuses too), -E2BIG (deeper than
 * JDOC_MAX_DEPTH, an object of more than JDOC_MAX_MEMBERS members, or a
 * text of 2 GiB or more) or -ENOMEM. err may be NULL. */
int jdoc_parse(jdoc *doc, const char *text, size_t len, jdoc_error *err);

/* Frees what *doc holds and zeroes it; harmless on a zeroed or freed doc. */
void jdoc_cleanup(jdoc *doc);

/* The top-level value, or NULL for an empty doc. */
static inline const jdoc_node *jdoc_root(const jdoc *doc)
{
    return doc->n ? doc->node : NULL;
}

static inline bool jdoc_is(const jdoc_node *v, jdoc_type t)
{
    return v && v->type == t;
}
static inline bool jdoc_is_object(const jdoc_node *v) { return jdoc_is(v, JDOC_OBJECT); }
static inline bool jdoc_is_array(const jdoc_node *v) { return jdoc_is(v, JDOC_ARRAY); }
static inline bool jdoc_is_string(const jdoc_node *v) { return jdoc_is(v, JDOC_STRING); }
static inline bool jdoc_is_integer(const jdoc_node *v) { return jdoc_is(v, JDOC_INTEGER); }
static inline bool jdoc_is_real(const jdoc_node *v) { return jdoc_is(v, JDOC_REAL); }
static inline bool jdoc_is_null(const jdoc_node *v) { return jdoc_is(v, JDOC_NULL); }
static inline bool jdoc_is_true(const jdoc_node *v) { return jdoc_is(v, JDOC_TRUE); }
static inline bool jdoc_is_number(const jdoc_node *v)
{
    return jdoc_is_integer(v) || jdoc_is_real(v);
}
static inline bool jdoc_is_boolean(const jdoc_node *v)
{
    return jdoc_is(v, JDOC_TRUE) || jdoc_is(v, JDOC_FALSE);
}

/* The integer's value; 0 for anything else (as json_integer_value). */
static inline long long jdoc_int(const jdoc_node *v)
{
    return jdoc_is_integer(v) ? v->v.i : 0;
}
/* An integer or a real as a double; 0.0 for anything else (as
 * json_number_value). */
static inline double jdoc_number(const jdoc_node *v)
{
    return jdoc_is_real(v) ? v->v.d : jdoc_is_integer(v) ? (double)v->v.i : 0.0;
}
/* The string's text (never contains NUL), or NULL for anything else. */
static inline const char *jdoc_str(const jdoc_node *v)
{
    return jdoc_is_string(v) ? v->v.s : NULL;
}
static inline size_t jdoc_strlen(const jdoc_node *v)
{
    return jdoc_is_string(v) ? v->n : 0;
}
/* Elements of an array, members of an object, 0 for anything else. */
static inline size_t jdoc_size(const jdoc_node *v)
{
    return jdoc_is_array(v) || jdoc_is_object(v) ? v->n : 0;
}

/* The member of obj named key, or NULL (also when obj is not an object).
 * A linear scan: meant for the small objects of requests. */
const jdoc_node *jdoc_get(const jdoc_node *obj, const char *key);

/* Iteration in document order. jdoc_first gives an array's first element
 * or an object's first key (its value is key + 1), NULL when there is none
 * or c is no container; jdoc_next gives the sibling after e (an element,
 * or for objects the value of the member before), NULL at the end. */
static inline const jdoc_node *jdoc_first(const jdoc_node *c)
{
    return jdoc_size(c) ? c + 1 : NULL;
}
static inline const jdoc_node *jdoc_next(const jdoc_node *c, const jdoc_node *e)
{
    const jdoc_node *next = e + e->skip;
    return next < c + c->skip ? next : NULL;
}

/* For each element e of arr (none when arr is not an array), with its
 * index idx: a size_t and a const jdoc_node *. */
#define jdoc_array_foreach(arr, idx, e) \
    for ((idx) = 0, (e) = jdoc_is_array(arr) ? jdoc_first(arr) : NULL; (e); \
         (idx)++, (e) = jdoc_next((arr), (e)))

/* For each member of obj in document order (none when obj is not an
 * object): key (a string node, the text is jdoc_str(key)) and its value v,
 * both const jdoc_node *. */
#define jdoc_object_foreach(obj, key, v) \
    for ((key) = jdoc_is_object(obj) ? jdoc_first(obj) : NULL, (v) = (key) ? (key) + 1 : NULL; \
         (key); \
         (key) = jdoc_next((obj), (v)), (v) = (key) ? (key) + 1 : NULL)

/* Length of the well-formed UTF-8 sequence at s, of which avail bytes may
 * be read (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF), or 0. Shared with json.c's scrubbing of error messages. */
size_t jdoc_utf8_len(const unsigned char *s, size_t avail);

#endif
