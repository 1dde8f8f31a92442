/*
 * jdoc.c — the strict JSON reader of jdoc.h: one pass of recursive descent
 * over the text (depth capped, so the C stack is bounded), writing nodes in
 * document order and unescaped strings into one buffer.
 *
 * Two invariants keep the allocations fixed in advance:
 * - Strings: an unescaped string is never longer than its source (an
 *   escape of 2, 6 or 12 bytes gives 1, at most 3, or 4 bytes), and its NUL
 *   takes the place of the closing quote. So the write position in the
 *   string buffer never passes the read position in the text, and len + 1
 *   bytes always suffice; a real number is copied there too, past the
 *   strings, to give strtod a NUL-terminated text. Inside a string the
 *   write position is at least a byte behind (the opening quote wrote
 *   nothing), so an 8-byte copy made while 8 bytes are left to read stays
 *   inside the buffer as well.
 * - Nodes: a complete value of N nodes spans at least 2N - 1 bytes (by
 *   induction: containers add a bracket pair and a separator per extra
 *   child, object keys are at least 2 bytes), and each open container adds
 *   at most one node beyond that. So a text of len bytes never needs more
 *   than len / 2 + JDOC_MAX_DEPTH + 2 nodes, and the array never grows past
 *   that.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/jdoc.h"

/* Objects up to this many members check each key against the keys before
 * it as it is read (at most 120 comparisons, most ending at the length);
 * larger objects sort their keys when they close. */
#define PAIRWISE_MAX 16
/* The node array's first size (smaller for a short text). */
#define NODES_FIRST 256
/* Texts this long or longer are refused: node fields are 32 bits. */
#define TEXT_MAX ((size_t)1 << 31)

typedef struct parser {
    const unsigned char *p, *end, *start;
    jdoc *doc;
    char *w;                    /* next free byte of doc->strings */
    size_t max_nodes;           /* the bound above; the array never passes it */
    int depth;                  /* containers open */
    const jdoc_node **keys;     /* JDOC_MAX_MEMBERS keys to sort, on first need */
    int rc;                     /* the first error's code */
    size_t err_at;              /* and its offset */
    char why[sizeof ((jdoc_error *)0)->text];
} parser;

static int fail(parser *ps, const unsigned char *at, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records the error (offset and reason) and returns -1 for the callers to
 * pass up. */
static int fail(parser *ps, const unsigned char *at, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->why, sizeof ps->why, fmt, ap);
    va_end(ap);
    ps->rc = rc;
    ps->err_at = (size_t)(at - ps->start);
    return -1;
}

/* An error at the byte at p, which the grammar did not allow there. */
static int unexpected(parser *ps, const unsigned char *p, const char *wanted)
{
    if (p == ps->end)
        return fail(ps, p, -EINVAL, "unexpected end of input, %s", wanted);
    if (*p > 0x20 && *p < 0x7f)
        return fail(ps, p, -EINVAL, "unexpected '%c', %s", *p, wanted);
    return fail(ps, p, -EINVAL, "unexpected byte 0x%02x, %s", *p, wanted);
}

size_t jdoc_utf8_len(const unsigned char *s, size_t avail)
{
    if (avail == 0)
        return 0;
    if (s[0] < 0x80)
        return 1;
    size_t n = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
             : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
    if (n == 0 || n > avail)
        return 0;
    /* The second byte's range rules out overlong forms (e0, f0),
     * surrogates (ed) and code points above U+10FFFF (f4). */
    unsigned char lo = 0x80, hi = 0xbf;
    if (s[0] == 0xe0)
        lo = 0xa0;
    else if (s[0] == 0xed)
        hi = 0x9f;
    else if (s[0] == 0xf0)
        lo = 0x90;
    else if (s[0] == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

/* Makes room for one more node: 0, or -1 (out of memory). */
static int grow(parser *ps, const unsigned char *at)
{
    jdoc *d = ps->doc;
    size_t cap = d->cap * 2 < ps->max_nodes ? d->cap * 2 : ps->max_nodes;
    /* The bound in the comment at the top says this cannot happen. */
    assert(cap > d->cap);
    if (cap <= d->cap)
        return fail(ps, at, -ENOMEM, "more values than the text can hold (a bug)");
    jdoc_node *grown = realloc(d->node, cap * sizeof *grown);
    if (!grown)
        return fail(ps, at, -ENOMEM, "out of memory");
    d->node = grown;
    d->cap = cap;
    return 0;
}

/* Index of a new node of type t starting at at, or -1 (out of memory). */
static inline long new_node(parser *ps, jdoc_type t, const unsigned char *at)
{
    jdoc *d = ps->doc;
    if (d->n == d->cap && grow(ps, at))
        return -1;
    jdoc_node *nd = &d->node[d->n];
    nd->type = (uint8_t)t;
    nd->n = 0;
    nd->skip = 1;
    nd->at = (uint32_t)(at - ps->start);
    return (long)d->n++;
}

static inline bool is_digit(unsigned char ch)
{
    return (unsigned char)(ch - '0') < 10;
}

static inline void skip_ws(parser *ps)
{
    const unsigned char *p = ps->p, *end = ps->end;
    /* Compact JSON has no spaces: one test for that case. */
    if (p == end || *p > ' ')
        return;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    ps->p = p;
}

/* The bytes a string holds as they are: printable ASCII but the quote and
 * the backslash. */
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
static const unsigned char plain[256] = {
    R16(0), R16(0),                                   /* 0x00-0x1f: control */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,   /* 0x20-0x2f: '"' is 0x22 */
    R16(1), R16(1),                                   /* 0x30-0x4f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,   /* 0x50-0x5f: '\\' is 0x5c */
    R16(1), R16(1),                                   /* 0x60-0x7f */
    R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), /* 0x80-0xff: UTF-8 */
};
#undef R16

/* The bytes of x (8 bytes of text, the first in the low byte) that end a
 * run of plain bytes: below 0x20, a quote, a backslash, 0x80 and above, as
 * the high bit of each. A byte below n sets its high bit in
 * (x - n * ONES) & ~x; the borrow can set it in the bytes after the first
 * such byte too, never before, so the lowest bit set is exact. */
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)
static inline uint64_t special8(uint64_t x)
{
    uint64_t quote = x ^ ONES * '"', bslash = x ^ ONES * '\\';
    return (((x - ONES * 0x20) & ~x) | ((quote - ONES) & ~quote) |
            ((bslash - ONES) & ~bslash) | x) & HIGHS;
}

/* The value of 4 hex digits at p, or -1. */
static long hex4(const unsigned char *p, const unsigned char *end)
{
    if (end - p < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char ch = p[i];
        int d = is_digit(ch) ? ch - '0' : (ch | 0x20) >= 'a' && (ch | 0x20) <= 'f'
                                          ? (ch | 0x20) - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Writes code point cp (not a surrogate, at most U+10FFFF) as UTF-8. */
static char *put_utf8(char *w, long cp)
{
    if (cp < 0x80) {
        *w++ = (char)cp;
    } else if (cp < 0x800) {
        *w++ = (char)(0xc0 | cp >> 6);
        *w++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *w++ = (char)(0xe0 | cp >> 12);
        *w++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *w++ = (char)(0xf0 | cp >> 18);
        *w++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *w++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
    }
    return w;
}

/* One \u escape (with its low half when it is a high surrogate) at p;
 * advances *pp past it and returns the code point, or -1 after fail(). */
static long unicode_escape(parser *ps, const unsigned char **pp)
{
    const unsigned char *p = *pp, *end = ps->end;
    long cp = hex4(p + 2, end);
    if (cp < 0)
        return fail(ps, p, -EINVAL, "invalid escape: \\u needs 4 hex digits");
    if (cp == 0)
        return fail(ps, p, -EINVAL, "\\u0000 is not allowed in a string");
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return fail(ps, p, -EINVAL, "invalid Unicode '\\u%04lX': a low surrogate alone", cp);
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (end - p < 8 || p[6] != '\\' || p[7] != 'u')
            return fail(ps, p, -EINVAL,
                        "invalid Unicode '\\u%04lX': a high surrogate without its low half", cp);
        long lo = hex4(p + 8, end);
        if (lo < 0)
            return fail(ps, p + 6, -EINVAL, "invalid escape: \\u needs 4 hex digits");
        if (lo < 0xdc00 || lo > 0xdfff)
            return fail(ps, p, -EINVAL, "invalid Unicode '\\u%04lX\\u%04lX': not a surrogate pair",
                        cp, lo);
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        p += 6;
    }
    *pp = p + 6;
    return cp;
}

/* The string whose opening quote is at ps->p, into node idx. */
static int parse_string(parser *ps, long idx)
{
    const unsigned char *p = ps->p + 1, *end = ps->end;
    char *w = ps->w, *s = w;
    for (;;) {
        /* The common case first: a run of printable ASCII, 8 bytes at a
         * time while 8 are left. All 8 are copied and w moves on by the
         * plain ones: w is at least a byte behind p, so they fit. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        while (end - p >= 8) {
            uint64_t x, stop;
            memcpy(&x, p, 8);
            memcpy(w, &x, 8);
            if ((stop = special8(x)) != 0) {
                size_t k = (size_t)__builtin_ctzll(stop) / 8;
                p += k;
                w += k;
                break;
            }
            p += 8;
            w += 8;
        }
#endif
        while (p < end && plain[*p])
            *w++ = (char)*p++;
        if (p == end)
            return fail(ps, p, -EINVAL, "unexpected end of input in a string");
        unsigned char ch = *p;
        if (ch == '"')
            break;
        if (ch < 0x20)
            return fail(ps, p, -EINVAL, "control character 0x%02x in a string", ch);
        if (ch >= 0x80) {
            size_t k = jdoc_utf8_len(p, (size_t)(end - p));
            if (k == 0)
                return fail(ps, p, -EINVAL, "invalid UTF-8 (byte 0x%02x)", ch);
            memcpy(w, p, k);
            w += k;
            p += k;
            continue;
        }
        /* A backslash. */
        if (end - p < 2)
            return fail(ps, end, -EINVAL, "unexpected end of input in a string");
        char e;
        switch (p[1]) {
        case '"': e = '"'; break;
        case '\\': e = '\\'; break;
        case '/': e = '/'; break;
        case 'b': e = '\b'; break;
        case 'f': e = '\f'; break;
        case 'n': e = '\n'; break;
        case 'r': e = '\r'; break;
        case 't': e = '\t'; break;
        case 'u': {
            long cp = unicode_escape(ps, &p);
            if (cp < 0)
                return -1;
            w = put_utf8(w, cp);
            continue;
        }
        default:
            return fail(ps, p, -EINVAL, "invalid escape");
        }
        *w++ = e;
        p += 2;
    }
    *w++ = '\0';
    jdoc_node *nd = &ps->doc->node[idx];
    nd->v.s = s;
    nd->n = (uint32_t)(w - 1 - s);
    ps->w = w;
    ps->p = p + 1;
    return 0;
}

/* Clinger's fast path for a real of at most 15 digits and a decimal
 * exponent within 22 (what requests carry: 2.5, 12.5, 0.001): the digits
 * and the power of ten are both exact doubles, so one multiplication or
 * division rounds correctly, giving strtod's result. false when the text
 * needs strtod. */
static bool small_real(const unsigned char *s, const unsigned char *end, double *out)
{
    static const double pow10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                                     1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
                                     1e20, 1e21, 1e22 };
    bool neg = *s == '-';
    if (neg)
        s++;
    uint64_t m = 0;
    int digits = 0, scale = 0;
    for (; s < end && is_digit(*s); s++, digits++)
        m = m * 10 + (uint64_t)(*s - '0');
    if (s < end && *s == '.')
        for (s++; s < end && is_digit(*s); s++, digits++, scale--)
            m = m * 10 + (uint64_t)(*s - '0');
    if (digits > 15)
        return false;
    if (s < end && (*s == 'e' || *s == 'E')) {
        s++;
        bool eneg = *s == '-';
        if (*s == '+' || *s == '-')
            s++;
        int x = 0;
        for (; s < end && is_digit(*s); s++)
            if ((x = x * 10 + (*s - '0')) > 99)
                return false;
        scale += eneg ? -x : x;
    }
    if (scale < -22 || scale > 22)
        return false;
    double d = (double)m;
    d = scale < 0 ? d / pow10[-scale] : d * pow10[scale];
    *out = neg ? -d : d;
    return true;
}

static int parse_number(parser *ps)
{
    const unsigned char *start = ps->p, *p = start, *end = ps->end;
    bool neg = *p == '-';
    if (neg)
        p++;
    if (p == end || !is_digit(*p))
        return unexpected(ps, p, "expected a digit");
    /* Up to 19 digits fit in 64 bits unsigned; more is too big anyway
     * (no leading zeros). */
    uint64_t mag = 0;
    int digits = 0;
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return fail(ps, p, -EINVAL, "invalid number: a leading zero");
    } else {
        for (; p < end && is_digit(*p) && digits < 19; p++, digits++)
            mag = mag * 10 + (uint64_t)(*p - '0');
        for (; p < end && is_digit(*p); p++)
            digits++;
    }
    bool real = false;
    if (p < end && *p == '.') {
        p++;
        if (p == end || !is_digit(*p))
            return unexpected(ps, p, "expected a digit after the decimal point");
        while (p < end && is_digit(*p))
            p++;
        real = true;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p))
            return unexpected(ps, p, "expected a digit in the exponent");
        while (p < end && is_digit(*p))
            p++;
        real = true;
    }
    long idx = new_node(ps, real ? JDOC_REAL : JDOC_INTEGER, start);
    if (idx < 0)
        return -1;
    jdoc_node *nd = &ps->doc->node[idx];
    if (!real) {
        /* jansson's words for these. */
        uint64_t limit = neg ? (uint64_t)LLONG_MAX + 1 : (uint64_t)LLONG_MAX;
        if (digits > 19 || mag > limit)
            return fail(ps, start, -EINVAL, neg ? "too big negative integer" : "too big integer");
        nd->v.i = !neg ? (long long)mag : mag == limit ? LLONG_MIN : -(long long)mag;
    } else if (!small_real(start, p, &nd->v.d)) {
        /* strtod needs a NUL: the number is copied to the free part of
         * the string buffer, which is not taken by this. */
        size_t n = (size_t)(p - start);
        memcpy(ps->w, start, n);
        ps->w[n] = '\0';
        double d = strtod(ps->w, NULL);
        if (isinf(d))
            return fail(ps, start, -EINVAL, "real number overflow");
        nd->v.d = d;
    }
    ps->p = p;
    return 0;
}

static int parse_literal(parser *ps, const char *word, size_t n, jdoc_type t)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return unexpected(ps, ps->p, "expected a value");
    if (new_node(ps, t, ps->p) < 0)
        return -1;
    ps->p += n;
    return 0;
}

static int parse_value(parser *ps);

/* Orders keys by length, bytes, then position, so equal keys sit together
 * with the earliest first. */
static int key_cmp(const void *a, const void *b)
{
    const jdoc_node *x = *(const jdoc_node *const *)a, *y = *(const jdoc_node *const *)b;
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    int c = memcmp(x->v.s, y->v.s, x->n);
    if (c)
        return c;
    return x < y ? -1 : x > y;
}

static int duplicate(parser *ps, const jdoc_node *key)
{
    return fail(ps, ps->start + key->at, -EINVAL, "duplicate object key \"%.40s\"", key->v.s);
}

/* A bit of 64 for a key, so that most keys of a small object need no
 * comparison: a key whose bit no key before it set is new. */
static inline uint64_t key_bit(const jdoc_node *k)
{
    const unsigned char *s = (const unsigned char *)k->v.s;
    unsigned h = k->n * 7u + s[0] * 3u + (k->n ? s[k->n - 1] : 0u);
    return UINT64_C(1) << (h & 63);
}

/* Whether the key at node k repeats one of the keys of object obj before
 * it. */
static bool repeats(const jdoc *d, long obj, long k)
{
    const jdoc_node *key = &d->node[k];
    for (const jdoc_node *q = &d->node[obj + 1]; q < key; q += 1 + q[1].skip)
        if (q->n == key->n && q->v.s[0] == key->v.s[0] &&
            memcmp(q->v.s, key->v.s, key->n) == 0)
            return true;
    return false;
}

/* The duplicate check of a large object (node obj, complete): sorts its
 * keys; the earliest key that repeats an earlier one is the error. */
static int check_sorted(parser *ps, long obj)
{
    if (!ps->keys && !(ps->keys = malloc(JDOC_MAX_MEMBERS * sizeof *ps->keys)))
        return fail(ps, ps->start + ps->doc->node[obj].at, -ENOMEM, "out of memory");
    const jdoc_node *o = &ps->doc->node[obj], *k, *v;
    size_t n = 0;
    jdoc_object_foreach(o, k, v)
        ps->keys[n++] = k;
    assert(n == o->n);
    qsort(ps->keys, n, sizeof *ps->keys, key_cmp);
    const jdoc_node *first = NULL;
    for (size_t i = 1; i < n; i++) {
        const jdoc_node *a = ps->keys[i - 1], *b = ps->keys[i];
        if (a->n == b->n && memcmp(a->v.s, b->v.s, a->n) == 0 && (!first || b < first))
            first = b;
    }
    return first ? duplicate(ps, first) : 0;
}

/* Opens the container at ps->p as node *idx: 1 when it is empty (and now
 * closed), 0 when its first element or member follows, -1 on error. */
static int open_container(parser *ps, jdoc_type t, char close, long *idx)
{
    if (ps->depth == JDOC_MAX_DEPTH)
        return fail(ps, ps->p, -E2BIG, "more than %d nested arrays and objects",
                    JDOC_MAX_DEPTH);
    if ((*idx = new_node(ps, t, ps->p)) < 0)
        return -1;
    ps->depth++;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->depth--;
        ps->p++;
        return 1;
    }
    return 0;
}

/* Closes the container of node idx at ps->p, with count children. */
static void close_container(parser *ps, long idx, size_t count)
{
    jdoc_node *nd = &ps->doc->node[idx];
    nd->n = (uint32_t)count;
    nd->skip = (uint32_t)(ps->doc->n - (size_t)idx);
    ps->depth--;
    ps->p++;
}

static int parse_array(parser *ps)
{
    long idx;
    int empty = open_container(ps, JDOC_ARRAY, ']', &idx);
    if (empty)
        return empty < 0 ? -1 : 0;
    size_t count = 0;
    for (;;) {
        if (parse_value(ps))
            return -1;
        count++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']')
            break;
        return unexpected(ps, ps->p, "expected ',' or ']' after an array element");
    }
    close_container(ps, idx, count);
    return 0;
}

static int parse_object(parser *ps)
{
    long idx;
    int empty = open_container(ps, JDOC_OBJECT, '}', &idx);
    if (empty)
        return empty < 0 ? -1 : 0;
    size_t count = 0;
    uint64_t seen = 0;          /* key_bit of the keys so far */
    for (;;) {
        if (ps->p == ps->end || *ps->p != '"')
            return unexpected(ps, ps->p, "expected a string (an object key)");
        if (count == JDOC_MAX_MEMBERS)
            return fail(ps, ps->p, -E2BIG, "an object with more than %d members",
                        JDOC_MAX_MEMBERS);
        long k = new_node(ps, JDOC_STRING, ps->p);
        if (k < 0 || parse_string(ps, k))
            return -1;
        if (count < PAIRWISE_MAX) {
            uint64_t bit = key_bit(&ps->doc->node[k]);
            if ((seen & bit) && repeats(ps->doc, idx, k))
                return duplicate(ps, &ps->doc->node[k]);
            seen |= bit;
        }
        count++;
        skip_ws(ps);
        if (ps->p == ps->end || *ps->p != ':')
            return unexpected(ps, ps->p, "expected ':' after an object key");
        ps->p++;
        if (parse_value(ps))
            return -1;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}')
            break;
        return unexpected(ps, ps->p, "expected ',' or '}' after an object member");
    }
    close_container(ps, idx, count);
    return count > PAIRWISE_MAX ? check_sorted(ps, idx) : 0;
}

static int parse_value(parser *ps)
{
    skip_ws(ps);
    if (ps->p == ps->end)
        return unexpected(ps, ps->p, "expected a value");
    switch (*ps->p) {
    case '{':
        return parse_object(ps);
    case '[':
        return parse_array(ps);
    case '"': {
        long idx = new_node(ps, JDOC_STRING, ps->p);
        return idx < 0 ? -1 : parse_string(ps, idx);
    }
    case 't':
        return parse_literal(ps, "true", 4, JDOC_TRUE);
    case 'f':
        return parse_literal(ps, "false", 5, JDOC_FALSE);
    case 'n':
        return parse_literal(ps, "null", 4, JDOC_NULL);
    default:
        if (*ps->p == '-' || is_digit(*ps->p))
            return parse_number(ps);
        return unexpected(ps, ps->p, "expected a value");
    }
}

/* Line and column (in characters) of the byte at off. */
static void locate(const unsigned char *s, size_t off, jdoc_error *err)
{
    int line = 1, col = 1;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n') {
            line++;
            col = 1;
        } else if ((s[i] & 0xc0) != 0x80) {
            col++;
        }
    }
    err->line = line;
    err->column = col;
    err->offset = off;
}

int jdoc_parse(jdoc *doc, const char *text, size_t len, jdoc_error *err)
{
    parser ps;
    memset(doc, 0, sizeof *doc);
    memset(&ps, 0, sizeof ps);
    ps.start = ps.p = (const unsigned char *)(text ? text : "");
    ps.end = ps.start + len;
    ps.doc = doc;
    if (len >= TEXT_MAX) {
        fail(&ps, ps.start, -E2BIG, "a text of 2 GiB or more");
        goto out;
    }
    ps.max_nodes = len / 2 + JDOC_MAX_DEPTH + 2;
    doc->cap = ps.max_nodes < NODES_FIRST ? ps.max_nodes : NODES_FIRST;
    doc->node = malloc(doc->cap * sizeof *doc->node);
    doc->strings = ps.w = malloc(len + 1);
    if (!doc->node || !doc->strings) {
        fail(&ps, ps.start, -ENOMEM, "out of memory");
        goto out;
    }
    if (parse_value(&ps) == 0) {
        skip_ws(&ps);
        if (ps.p != ps.end)
            unexpected(&ps, ps.p, "expected the end of the input after the value");
    }
    assert(ps.rc || ps.depth == 0);
out:
    free(ps.keys);
    if (ps.rc) {
        jdoc_cleanup(doc);
        if (err) {
            locate(ps.start, ps.err_at, err);
            snprintf(err->text, sizeof err->text, "%s", ps.why);
        }
    }
    return ps.rc;
}

void jdoc_cleanup(jdoc *doc)
{
    free(doc->node);
    free(doc->strings);
    memset(doc, 0, sizeof *doc);
}

const jdoc_node *jdoc_get(const jdoc_node *obj, const char *key)
{
    const jdoc_node *k, *v;
    size_t n = strlen(key);
    jdoc_object_foreach(obj, k, v)
        if (k->n == n && memcmp(k->v.s, key, n) == 0)
            return v;
    return NULL;
}
