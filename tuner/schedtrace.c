/*
 * schedtrace.c — the streaming parser for GODEBUG=schedtrace / scheddetail
 * output. The contract is in schedtrace.h; the design (formats, how split
 * lines are put back together, when the parser refuses) is in
 * docs/schedtrace.md.
 *
 * The core is a resumable character scanner (`scan`) for two line shapes:
 * SCHED lines (summary or scheddetail header) and indented P/M/G detail
 * lines. Its state splits into a small "class" (where in the grammar it is)
 * and an accumulated part (values, counts). The scanner's behaviour on the
 * rest of a text depends only on the class, which is what makes putting a
 * split line back together cheap: a continuation line is scanned once per
 * class, and its effect is added to every candidate prefix of that class.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tuner/schedtrace.h"

/* A SCHED line or a detail line may be split across at most this many
 * lines (one intruding application line between two of them). */
#define ST_MAX_PIECES 8
/* Candidate reassemblies kept at once; more means the text is too
 * ambiguous to decide and is rejected. */
#define ST_MAX_CHAINS 64
/* Candidate split points per continuation line over all classes. */
#define ST_MAX_CANDS 256
/* Numbers longer than this are not Go's output (int64 has 19 digits). */
#define ST_MAX_DIGITS 18
/* A rejected block's M/G lines are flushed in chunks of at most this. */
#define ST_MAX_REJ (1024 * 1024)

/* ------------------------------------------------------------------ keys */

enum kind { KIND_SCHED = 0, KIND_P, KIND_M, KIND_G };
#define KM(k) (1u << (k))

enum vtype {
    VT_U,       /* unsigned decimal */
    VT_S,       /* signed decimal or nil (ids: -1 in Go 1.19, nil later) */
    VT_B,       /* true/false or a number */
    VT_STR,     /* any run of non-space bytes, possibly empty */
    VT_GST,     /* G status: number "(" wait reason ")" */
    VT_TICKS    /* schedticks=[ ... ] */
};

/* Values the parser keeps; every other key is only checked and counted. */
enum slot {
    S_NONE = -1,
    S_TS = 0, S_IDX, S_GOMAXPROCS, S_IDLEPROCS, S_THREADS, S_SPINNING,
    S_NEEDSPINNING, S_IDLETHREADS, S_RUNQUEUE, S_RUNQSIZE,
    NSLOT
};

typedef struct keydef {
    const char *name;
    uint8_t kinds;      /* KM() mask of line kinds that know the key */
    uint8_t vt;
    int8_t slot;
} keydef;

/* Key ids are indices into this table; 0 is "unknown key". The last two
 * entries are pseudo keys for the timestamp and the P/M/G index, so that
 * every value that must not repeat has a bit in scan.set. */
static const keydef keys[] = {
    { "", 0, VT_S, S_NONE },       /* unknown keys: see PS_VAL */
    { "gomaxprocs", KM(KIND_SCHED), VT_U, S_GOMAXPROCS },
    { "idleprocs", KM(KIND_SCHED), VT_U, S_IDLEPROCS },
    { "threads", KM(KIND_SCHED), VT_U, S_THREADS },
    { "spinningthreads", KM(KIND_SCHED), VT_U, S_SPINNING },
    { "needspinning", KM(KIND_SCHED), VT_U, S_NEEDSPINNING },
    { "idlethreads", KM(KIND_SCHED), VT_U, S_IDLETHREADS },
    { "runqueue", KM(KIND_SCHED), VT_U, S_RUNQUEUE },
    { "gcwaiting", KM(KIND_SCHED), VT_B, S_NONE },
    { "nmidlelocked", KM(KIND_SCHED), VT_U, S_NONE },
    { "stopwait", KM(KIND_SCHED), VT_U, S_NONE },
    { "sysmonwait", KM(KIND_SCHED), VT_B, S_NONE },
    { "schedticks", KM(KIND_SCHED), VT_TICKS, S_NONE },
    { "status", KM(KIND_P), VT_U, S_NONE },
    { "status", KM(KIND_G), VT_GST, S_NONE },
    { "schedtick", KM(KIND_P), VT_U, S_NONE },
    { "syscalltick", KM(KIND_P), VT_U, S_NONE },
    { "m", KM(KIND_P) | KM(KIND_G), VT_S, S_NONE },
    { "runqsize", KM(KIND_P), VT_U, S_RUNQSIZE },
    { "gfreecnt", KM(KIND_P), VT_U, S_NONE },
    { "timerslen", KM(KIND_P), VT_U, S_NONE },
    { "p", KM(KIND_M), VT_S, S_NONE },
    { "curg", KM(KIND_M), VT_S, S_NONE },
    { "mallocing", KM(KIND_M), VT_S, S_NONE },
    { "throwing", KM(KIND_M), VT_S, S_NONE },
    { "preemptoff", KM(KIND_M), VT_STR, S_NONE },
    { "locks", KM(KIND_M), VT_S, S_NONE },
    { "dying", KM(KIND_M), VT_S, S_NONE },
    { "spinning", KM(KIND_M), VT_B, S_NONE },
    { "blocked", KM(KIND_M), VT_B, S_NONE },
    { "lockedg", KM(KIND_M), VT_S, S_NONE },
    { "lockedm", KM(KIND_G), VT_S, S_NONE },
    { "", 0, VT_U, S_TS },
    { "", 0, VT_U, S_IDX },
};
#define NKEYS (sizeof keys / sizeof keys[0])
#define K_UNKNOWN 0
#define K_TS ((uint8_t)(NKEYS - 2))
#define K_IDX ((uint8_t)(NKEYS - 1))

/* -------------------------------------------------------------- scanner */

enum pos {
    PS_LIT,       /* matching literal c.ctx at index c.li */
    PS_NUM0,      /* the first digit of a number (c.ctx says whose) */
    PS_NUM,       /* in the digits of a number */
    PS_TSAFTER,   /* after the timestamp: "ms:" */
    PS_KIND,      /* after the indent: P, M or G */
    PS_IDXAFTER,  /* after the P/M/G index: ':' */
    PS_FSEP,      /* after a complete field: ' ' or the end */
    PS_SP,        /* after that space: a key or '[' */
    PS_KEY,       /* in a key name */
    PS_VAL,       /* after '=': a value of the key's type */
    PS_STR,       /* in a free-form value */
    PS_GAFTER,    /* after a G status number: '(' */
    PS_GREASON,   /* in "(wait reason)" */
    PS_LOPEN,     /* after '[' */
    PS_LAFTER,    /* after a list value */
    PS_LSP,       /* after a space inside a list */
    PS_LCLOSE,    /* after ']' */
    PS_ERR
};

/* Literals, and where the scanner goes once one is matched. */
enum lit { LIT_SCHED, LIT_MS, LIT_IND, LIT_NIL, LIT_TRUE, LIT_FALSE };
static const char *const lits[] = { "SCHED ", "ms:", "  ", "nil", "true", "false" };

/* What a number is (c.ctx outside PS_LIT). */
enum ctx { NC_TS, NC_IDX, NC_VAL, NC_RUNQ, NC_TICKS, NC_ULIST, NC_GST };

enum style { STY_NONE, STY_PLAIN, STY_PADDED };

enum flag {
    F_RUNQ = 1,     /* the per-P list has been opened */
    F_RUNQ_DONE = 2,
    F_TICKS_DONE = 4,
    F_NEG = 8       /* the number being read had a '-' */
};

enum err { E_NONE, E_JUNK, E_CUT };

/* Where the scanner is in the grammar: together with the text that follows
 * it decides everything the scanner will do, so two states with equal
 * classes read any continuation the same way. All bytes, no padding, so
 * classes compare with memcmp. */
typedef struct cls {
    uint8_t pos, kind, ctx, key, li, style, flags, depth;
} cls;

typedef struct scan {
    cls c;
    uint8_t err;          /* enum err, when c.pos == PS_ERR */
    uint8_t ndig;         /* digits of the current number */
    uint8_t keylen;
    char keybuf[16];      /* the key being read; longer keys are unknown */
    int64_t cur;          /* the current number */
    uint64_t set;         /* bit per key id seen (duplicates are errors) */
    uint32_t vset;        /* bit per slot whose value was read */
    int64_t v[NSLOT];
    uint32_t nrunq, nticks;
    int32_t *runq;        /* where per-P values go, or NULL to only count */
} scan;

static bool is_digit(int ch) { return ch >= '0' && ch <= '9'; }
static bool is_keych(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || is_digit(ch);
}

static void sc_init(scan *s, int kind, int32_t *runq)
{
    memset(s, 0, sizeof *s);
    s->c.pos = PS_LIT;
    s->c.kind = (uint8_t)kind;
    s->c.ctx = kind == KIND_SCHED ? LIT_SCHED : LIT_IND;
    s->runq = runq;
}

/* A fresh state of class c: how a continuation is read from there on. */
static void sc_from_class(scan *s, const cls *c)
{
    memset(s, 0, sizeof *s);
    s->c = *c;
}

static void sc_fail(scan *s, int e)
{
    s->c.pos = PS_ERR;
    s->err = (uint8_t)e;
}

static void num_start(scan *s, int ch, int ctx)
{
    s->c.ctx = (uint8_t)ctx;
    s->c.pos = PS_NUM;
    s->cur = ch - '0';
    s->ndig = 1;
}

static void list_close(scan *s)
{
    if (s->c.ctx == NC_RUNQ)
        s->c.flags |= F_RUNQ_DONE;
    else if (s->c.ctx == NC_TICKS)
        s->c.flags |= F_TICKS_DONE;
    s->c.style = STY_NONE;
    s->c.pos = PS_LCLOSE;
}

/* Ends the number being read and moves past it. */
static void num_close(scan *s)
{
    int64_t v = s->cur;
    switch (s->c.ctx) {
    case NC_TS:
        s->v[S_TS] = v;
        s->vset |= 1u << S_TS;
        s->set |= 1ull << K_TS;
        s->c.pos = PS_TSAFTER;
        break;
    case NC_IDX:
        s->v[S_IDX] = v;
        s->vset |= 1u << S_IDX;
        s->set |= 1ull << K_IDX;
        s->c.pos = PS_IDXAFTER;
        break;
    case NC_VAL:
        if (s->c.flags & F_NEG)
            v = -v;
        s->c.flags &= (uint8_t)~F_NEG;
        if (keys[s->c.key].slot != S_NONE) {
            s->v[keys[s->c.key].slot] = v;
            s->vset |= 1u << keys[s->c.key].slot;
        }
        s->c.pos = PS_FSEP;
        break;
    case NC_RUNQ:
        if (v > INT32_MAX) {
            sc_fail(s, E_JUNK);
            return;
        }
        if (s->runq && s->nrunq < TUNER_MAX_PROCS)
            s->runq[s->nrunq] = (int32_t)v;
        if (s->nrunq < UINT32_MAX)
            s->nrunq++;
        s->c.pos = PS_LAFTER;
        break;
    case NC_TICKS:
        if (s->nticks < UINT32_MAX)
            s->nticks++;
        s->c.pos = PS_LAFTER;
        break;
    case NC_ULIST:
        s->c.pos = PS_LAFTER;
        break;
    default: /* NC_GST */
        s->c.pos = PS_GAFTER;
        break;
    }
}

static uint8_t key_lookup(const scan *s)
{
    for (size_t i = 1; i < NKEYS - 2; i++)
        if ((keys[i].kinds & KM(s->c.kind)) && strlen(keys[i].name) == s->keylen &&
            memcmp(keys[i].name, s->keybuf, s->keylen) == 0)
            return (uint8_t)i;
    return K_UNKNOWN;
}

/* Feeds one byte. */
static void sc_char(scan *s, int ch)
{
    for (;;) {
        cls *c = &s->c;
        switch (c->pos) {
        case PS_ERR:
            return;
        case PS_LIT: {
            const char *l = lits[c->ctx];
            if (ch != l[c->li]) {
                sc_fail(s, E_JUNK);
                return;
            }
            c->li++;
            if (l[c->li] != '\0')
                return;
            c->li = 0;
            switch (c->ctx) {
            case LIT_SCHED: c->pos = PS_NUM0; c->ctx = NC_TS; break;
            case LIT_IND: c->pos = PS_KIND; break;
            default: c->pos = PS_FSEP; break;   /* "ms:", nil, true, false */
            }
            return;
        }
        case PS_NUM0:
            if (!is_digit(ch)) {
                sc_fail(s, E_JUNK);
                return;
            }
            num_start(s, ch, c->ctx);
            return;
        case PS_NUM:
            if (is_digit(ch)) {
                /* Go never prints leading zeros; refusing them stops a
                 * number from running on into an intruder's digits. */
                if ((s->cur == 0 && s->ndig == 1) || s->ndig >= ST_MAX_DIGITS) {
                    sc_fail(s, E_JUNK);
                    return;
                }
                s->cur = s->cur * 10 + (ch - '0');
                s->ndig++;
                return;
            }
            num_close(s);
            continue;                   /* the byte after the number */
        case PS_TSAFTER:
            if (ch != 'm') {
                sc_fail(s, E_JUNK);
                return;
            }
            c->pos = PS_LIT;
            c->ctx = LIT_MS;
            c->li = 1;
            return;
        case PS_KIND:
            if (ch == 'P')
                c->kind = KIND_P;
            else if (ch == 'M')
                c->kind = KIND_M;
            else if (ch == 'G')
                c->kind = KIND_G;
            else {
                sc_fail(s, E_JUNK);
                return;
            }
            c->pos = PS_NUM0;
            c->ctx = NC_IDX;
            return;
        case PS_IDXAFTER:
            if (ch != ':')
                sc_fail(s, E_JUNK);
            else
                c->pos = PS_FSEP;
            return;
        case PS_FSEP:
        case PS_LCLOSE:
            if (ch != ' ')
                sc_fail(s, E_JUNK);
            else
                c->pos = PS_SP;
            return;
        case PS_SP:
            if (ch == '[' && c->kind == KIND_SCHED && !(c->flags & F_RUNQ)) {
                c->flags |= F_RUNQ;
                c->ctx = NC_RUNQ;
                c->style = STY_NONE;
                c->pos = PS_LOPEN;
            } else if (is_keych(ch) && !is_digit(ch)) {
                s->keylen = 1;
                s->keybuf[0] = (char)ch;
                c->pos = PS_KEY;
            } else {
                sc_fail(s, E_JUNK);
            }
            return;
        case PS_KEY:
            if (is_keych(ch)) {
                if (s->keylen < sizeof s->keybuf)
                    s->keybuf[s->keylen] = (char)ch;
                if (s->keylen < UINT8_MAX)
                    s->keylen++;
                return;
            }
            if (ch != '=') {
                sc_fail(s, E_JUNK);
                return;
            }
            c->key = s->keylen <= sizeof s->keybuf ? key_lookup(s) : K_UNKNOWN;
            if (c->key != K_UNKNOWN) {
                if (s->set & (1ull << c->key)) {
                    sc_fail(s, E_JUNK);     /* a key printed twice */
                    return;
                }
                s->set |= 1ull << c->key;
            }
            c->pos = PS_VAL;
            return;
        case PS_VAL:
            if (c->key == K_UNKNOWN) {
                /* A key we do not know has a number, an id (-1, nil), a
                 * flag or a list of numbers: a free-form value would let
                 * an intruding application line pass for a field. */
                if (ch == '-') {
                    c->flags |= F_NEG;
                    c->pos = PS_NUM0;
                    c->ctx = NC_VAL;
                    return;
                }
                if (ch == 'n') {
                    c->pos = PS_LIT;
                    c->ctx = LIT_NIL;
                    c->li = 1;
                    return;
                }
                if (ch == '[') {
                    c->ctx = NC_ULIST;
                    c->style = STY_NONE;
                    c->pos = PS_LOPEN;
                    return;
                }
                if (ch == 't' || ch == 'f') {
                    c->pos = PS_LIT;
                    c->ctx = ch == 't' ? LIT_TRUE : LIT_FALSE;
                    c->li = 1;
                    return;
                }
                if (is_digit(ch))
                    num_start(s, ch, NC_VAL);
                else
                    sc_fail(s, E_JUNK);
                return;
            }
            switch (keys[c->key].vt) {
            case VT_S:
                if (ch == '-') {
                    c->flags |= F_NEG;
                    c->pos = PS_NUM0;
                    c->ctx = NC_VAL;
                    return;
                }
                if (ch == 'n') {
                    c->pos = PS_LIT;
                    c->ctx = LIT_NIL;
                    c->li = 1;
                    return;
                }
                break;
            case VT_B:
                if (ch == 't' || ch == 'f') {
                    c->pos = PS_LIT;
                    c->ctx = ch == 't' ? LIT_TRUE : LIT_FALSE;
                    c->li = 1;
                    return;
                }
                break;
            case VT_STR:
                c->pos = ch == ' ' ? PS_SP : PS_STR;
                return;
            case VT_GST:
                if (is_digit(ch)) {
                    num_start(s, ch, NC_GST);
                    return;
                }
                sc_fail(s, E_JUNK);
                return;
            case VT_TICKS:
                if (ch == '[' && (c->flags & F_RUNQ_DONE) && !(c->flags & F_TICKS_DONE)) {
                    c->ctx = NC_TICKS;
                    c->style = STY_NONE;
                    c->pos = PS_LOPEN;
                } else {
                    sc_fail(s, E_JUNK);
                }
                return;
            default:
                break;
            }
            if (is_digit(ch))
                num_start(s, ch, NC_VAL);
            else
                sc_fail(s, E_JUNK);
            return;
        case PS_STR:
            if (ch == ' ')
                c->pos = PS_SP;
            return;
        case PS_GAFTER:
            if (ch != '(') {
                sc_fail(s, E_JUNK);
                return;
            }
            c->depth = 1;
            c->pos = PS_GREASON;
            return;
        case PS_GREASON:
            if (ch == '(') {
                if (c->depth == UINT8_MAX) {
                    sc_fail(s, E_JUNK);
                    return;
                }
                c->depth++;
            } else if (ch == ')' && --c->depth == 0) {
                c->pos = PS_FSEP;
            }
            return;
        case PS_LOPEN:
            if (ch == ' ') {
                c->style = STY_PADDED;
                c->pos = PS_LSP;
            } else if (is_digit(ch)) {
                c->style = STY_PLAIN;
                num_start(s, ch, c->ctx);
            } else if (ch == ']') {
                c->style = STY_PLAIN;
                list_close(s);
            } else {
                sc_fail(s, E_JUNK);
            }
            return;
        case PS_LAFTER:
            if (ch == ' ')
                c->pos = PS_LSP;
            else if (ch == ']' && c->style == STY_PLAIN)
                list_close(s);
            else
                sc_fail(s, E_JUNK);
            return;
        case PS_LSP:
            if (is_digit(ch))
                num_start(s, ch, c->ctx);
            else if (ch == ']' && c->style == STY_PADDED)
                list_close(s);
            else
                sc_fail(s, E_JUNK);
            return;
        default:
            sc_fail(s, E_JUNK);
            return;
        }
    }
}

/* The end of the text: true when what was read is a complete line. */
static bool sc_end(scan *s)
{
    if (s->c.pos == PS_NUM)
        num_close(s);
    switch (s->c.pos) {
    case PS_FSEP:
    case PS_STR:
    case PS_LCLOSE:
        return true;
    case PS_VAL:
        if (keys[s->c.key].vt == VT_STR && s->c.key != K_UNKNOWN)
            return true;
        break;
    case PS_ERR:
        return false;
    default:
        break;
    }
    sc_fail(s, E_CUT);
    return false;
}

/* Feeds text[from, to); returns where it stopped (the failing byte). */
static size_t sc_feed(scan *s, const char *text, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        sc_char(s, (unsigned char)text[i]);
        if (s->c.pos == PS_ERR)
            return i;
    }
    return to;
}

/* Can a line be split right here (after virtually ending a number)? On
 * success *out is the state to continue from. */
static bool sc_boundary(const scan *s, scan *out)
{
    *out = *s;
    if (out->c.pos == PS_NUM)
        num_close(out);
    switch (out->c.pos) {
    case PS_LIT:
    case PS_KEY:
    case PS_ERR:
        return false;
    default:
        return true;
    }
}

/* True when a boundary state sits inside a free-form value, where the
 * runtime's own write boundaries cannot be known. */
static bool sc_in_text(const scan *s)
{
    return s->c.pos == PS_STR || s->c.pos == PS_GREASON;
}

/* -------------------------------------------------------------- results */

enum verdict { V_SUMMARY, V_HEADER, V_DETAIL, V_SYNTAX, V_INVALID };

/* Checks a complete scan (sc_end returned true). Returns the verdict and,
 * for V_INVALID, a reason. */
static int sc_validate(const scan *s, const char **reason)
{
    static const int int32_slots[] = { S_GOMAXPROCS, S_IDLEPROCS, S_THREADS, S_SPINNING,
                                       S_NEEDSPINNING, S_IDLETHREADS };
    *reason = "garbled";
    if (s->c.kind != KIND_SCHED) {
        if (s->c.kind == KIND_P &&
            (!((s->vset >> S_RUNQSIZE) & 1u) || s->v[S_RUNQSIZE] > INT32_MAX))
            return V_INVALID;
        return V_DETAIL;
    }
    for (size_t i = 0; i < sizeof int32_slots / sizeof int32_slots[0]; i++)
        if (s->v[int32_slots[i]] > INT32_MAX)
            return V_INVALID;
    bool has_gmp = (s->vset >> S_GOMAXPROCS) & 1u;
    if (has_gmp && s->v[S_GOMAXPROCS] < 1)
        return V_INVALID;
    if (has_gmp && s->v[S_GOMAXPROCS] > TUNER_MAX_PROCS) {
        *reason = "too many Ps";
        return V_INVALID;
    }
    if (!(s->c.flags & F_RUNQ))
        return V_HEADER;
    if (s->nrunq == 0) {
        *reason = "empty brackets";
        return V_INVALID;
    }
    if (s->nrunq > TUNER_MAX_PROCS) {
        *reason = "too many Ps";
        return V_INVALID;
    }
    if ((has_gmp && s->v[S_GOMAXPROCS] != (int64_t)s->nrunq) ||
        ((s->c.flags & F_TICKS_DONE) && s->nticks != s->nrunq)) {
        *reason = "count mismatch";
        return V_INVALID;
    }
    return V_SUMMARY;
}

/* True when the line gave a value for the slot. */
static bool key_set(const scan *s, int slot)
{
    return (s->vset >> slot) & 1u;
}

/* Fills a sample from a SCHED scan (header or summary). */
static void sample_from(const scan *s, tuner_sample *out)
{
    tuner_sample_init(out);
    out->ts_ms = s->v[S_TS];
    if (key_set(s, S_GOMAXPROCS))
        out->gomaxprocs = (int32_t)s->v[S_GOMAXPROCS];
    if (key_set(s, S_IDLEPROCS))
        out->idle_procs = (int32_t)s->v[S_IDLEPROCS];
    if (key_set(s, S_THREADS))
        out->threads = (int32_t)s->v[S_THREADS];
    if (key_set(s, S_SPINNING))
        out->spinning_threads = (int32_t)s->v[S_SPINNING];
    if (key_set(s, S_IDLETHREADS))
        out->idle_threads = (int32_t)s->v[S_IDLETHREADS];
    if (key_set(s, S_NEEDSPINNING))
        out->needspinning = (int32_t)s->v[S_NEEDSPINNING];
    if (key_set(s, S_RUNQUEUE))
        out->global_runq = s->v[S_RUNQUEUE];
}

/* Adds delta d (a scan started from a's class) onto a. False when the two
 * parts both set the same key. */
static bool sc_combine(const scan *a, const scan *d, scan *out)
{
    if (a->set & d->set)
        return false;
    *out = *d;
    out->set = a->set | d->set;
    out->vset = a->vset | d->vset;
    for (int i = 0; i < NSLOT; i++)
        if ((a->vset >> i) & 1u)
            out->v[i] = a->v[i];
    out->nrunq = a->nrunq + d->nrunq;
    out->nticks = a->nticks + d->nticks;
    if (out->nrunq < a->nrunq)
        out->nrunq = UINT32_MAX;
    if (out->nticks < a->nticks)
        out->nticks = UINT32_MAX;
    out->runq = NULL;
    return true;
}

/* --------------------------------------------------------------- buffers */

typedef struct strbuf {
    char *p;
    size_t len, cap;
} strbuf;

static bool sb_reserve(strbuf *b, size_t more)
{
    if (more > SIZE_MAX / 2 - b->len)
        return false;
    if (b->len + more <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np)
        return false;
    b->p = np;
    b->cap = cap;
    return true;
}

static bool sb_add(strbuf *b, const char *s, size_t n)
{
    if (!sb_reserve(b, n))
        return false;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    return true;
}

/* Appends a line, joined to what is there by '\n'. */
static bool sb_addline(strbuf *b, const char *s, size_t n)
{
    if (b->len && !sb_add(b, "\n", 1))
        return false;
    return sb_add(b, s, n);
}

static void sb_free(strbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- parser */

typedef struct chain {
    scan st;                            /* accumulated state after the pieces */
    uint32_t k[ST_MAX_PIECES];          /* where each piece's intruder starts */
} chain;

typedef struct cand {
    uint32_t k;
    scan d;                             /* the piece's delta up to k */
} cand;

typedef struct clsres {
    cls c;
    bool complete;                      /* the whole line completes the class */
    scan end;                           /* delta at the end, when complete */
    size_t first, n;                    /* candidates in the pool */
} clsres;

enum pkind { PK_NONE, PK_SCHED, PK_DETAIL };
enum bstate { B_NONE, B_PPART, B_TAIL_OK, B_TAIL_REJ };

struct st_parser {
    /* A SCHED or detail line split by intruding lines, being put back. */
    int pkind;
    const char *preason;                /* why the first piece alone failed */
    size_t npieces;
    size_t poff[ST_MAX_PIECES + 1];     /* piece i is pbuf.p[poff[i], poff[i+1]) */
    strbuf pbuf;
    size_t nchains;
    chain chains[ST_MAX_CHAINS];
    chain next[ST_MAX_CHAINS];
    clsres res[ST_MAX_CHAINS];
    cand pool[ST_MAX_CANDS];

    /* A scheddetail block: the header, then the P lines (B_PPART); after
     * them the M and G lines are consumed (B_TAIL_OK) or, when the block was
     * rejected, passed to reject (B_TAIL_REJ). */
    int bstate;
    scan hdr;
    strbuf braw;                        /* header and P lines, for a reject */
    uint32_t np;
    uint64_t pseen[TUNER_MAX_PROCS / 64];
    int32_t pval[TUNER_MAX_PROCS];
    const char *breason;
    strbuf rej;                         /* rejected tail lines not yet flushed */

    int32_t runq[TUNER_MAX_PROCS];      /* scratch for one SCHED line */
    strbuf join;                        /* scratch for a reassembled line */
};

st_parser *st_parser_new(void)
{
    return calloc(1, sizeof(st_parser));
}

void st_parser_free(st_parser *p)
{
    if (!p)
        return;
    sb_free(&p->pbuf);
    sb_free(&p->braw);
    sb_free(&p->rej);
    sb_free(&p->join);
    free(p);
}

static void emit_line(const st_sink *k, const char *t, size_t n)
{
    if (k->line)
        k->line(k->ud, t, n);
}

static void emit_reject(const st_sink *k, const char *why, const char *t, size_t n)
{
    if (k->reject)
        k->reject(k->ud, why, t, n);
}

static void emit_sample(const st_sink *k, const tuner_sample *s)
{
    if (k->sample)
        k->sample(k->ud, s);
}

/* Go never writes CRLF, but a capture that went through another system
 * may; a single trailing '\r' is not part of a SCHED or detail line. */
static size_t strip_cr(const char *t, size_t n)
{
    return n && t[n - 1] == '\r' ? n - 1 : n;
}

static bool is_sched(const char *t, size_t n)
{
    return n >= 6 && memcmp(t, "SCHED ", 6) == 0;
}

static bool is_detail(const char *t, size_t n)
{
    return n >= 4 && t[0] == ' ' && t[1] == ' ' && (t[2] == 'P' || t[2] == 'M' || t[2] == 'G') &&
           is_digit((unsigned char)t[3]);
}

/* Parses one whole line. For V_SYNTAX, *reason says "truncated" (the line
 * stops early, or it was cut and other text follows) or "garbled". */
static int parse_line(st_parser *p, int kind, const char *t, size_t n, scan *s, const char **reason)
{
    sc_init(s, kind, kind == KIND_SCHED ? p->runq : NULL);
    n = strip_cr(t, n);
    sc_feed(s, t, 0, n);
    if (!sc_end(s)) {
        /* A line that reached the runtime's own end (the closing bracket)
         * was not cut: something inside it is wrong. */
        bool ended = (s->c.flags & F_RUNQ_DONE) || (n && t[n - 1] == ']');
        *reason = s->err == E_CUT || !ended ? "truncated" : "garbled";
        return V_SYNTAX;
    }
    return sc_validate(s, reason);
}

/* ------------------------------------------------------------ the blocks */

static void rej_flush(st_parser *p, const st_sink *k)
{
    if (p->rej.len)
        emit_reject(k, p->breason, p->rej.p, p->rej.len);
    p->rej.len = 0;
}

/* Collects a line of a rejected block. */
static void rej_add(st_parser *p, const st_sink *k, const char *t, size_t n)
{
    if (p->rej.len && p->rej.len + n + 1 > ST_MAX_REJ)
        rej_flush(p, k);
    if (!sb_addline(&p->rej, t, n)) {
        rej_flush(p, k);
        emit_reject(k, p->breason, t, n);
    }
}

/* Rejects the block read so far (plus `extra`, when not NULL) and keeps
 * rejecting its remaining detail lines. */
static void block_reject(st_parser *p, const st_sink *k, const char *why, const char *extra,
                         size_t nextra)
{
    if (extra && !sb_addline(&p->braw, extra, nextra)) {
        emit_reject(k, why, p->braw.p, p->braw.len);
        emit_reject(k, why, extra, nextra);
    } else {
        emit_reject(k, why, p->braw.p, p->braw.len);
    }
    p->braw.len = 0;
    p->bstate = B_TAIL_REJ;
    p->breason = why;
}

/* After a rejected SCHED line, detail lines that follow belong to it (it
 * may have been a scheddetail header) and are rejected with it. */
static void reject_tail(st_parser *p, const char *why)
{
    p->bstate = B_TAIL_REJ;
    p->breason = why;
}

enum ppart_end { END_DETAIL, END_OTHER, END_CUT };

/* The P lines are over: emit the block's sample or reject it. */
static void ppart_end(st_parser *p, const st_sink *k, int how)
{
    uint32_t n = key_set(&p->hdr, S_GOMAXPROCS) ? (uint32_t)p->hdr.v[S_GOMAXPROCS] : p->np;
    bool ok = p->np >= 1 && p->np == n;
    for (uint32_t i = 0; ok && i < n; i++)
        ok = (p->pseen[i / 64] >> (i % 64)) & 1u;
    if (!ok) {
        block_reject(p, k, how == END_CUT ? "truncated" : "count mismatch", NULL, 0);
        return;
    }
    tuner_sample s;
    sample_from(&p->hdr, &s);
    s.nprocs = n;
    s.local_runq = p->pval;
    emit_sample(k, &s);
    p->braw.len = 0;
    p->bstate = B_TAIL_OK;
}

/* Ends whatever block is open (a new SCHED line, or the end of input). */
static void block_end(st_parser *p, const st_sink *k)
{
    if (p->bstate == B_PPART)
        ppart_end(p, k, END_CUT);
    rej_flush(p, k);
    p->bstate = B_NONE;
}

static void block_start(st_parser *p, const st_sink *k, const scan *hdr, const char *t, size_t n)
{
    p->hdr = *hdr;
    p->hdr.runq = NULL;
    p->np = 0;
    memset(p->pseen, 0, sizeof p->pseen);
    p->braw.len = 0;
    p->bstate = B_PPART;
    if (!sb_add(&p->braw, t, n)) {
        emit_reject(k, "out of memory", t, n);
        p->bstate = B_TAIL_REJ;
        p->breason = "out of memory";
    }
}

/* A complete, valid detail line inside a block. */
static void block_detail(st_parser *p, const st_sink *k, const scan *d, const char *t, size_t n)
{
    if (p->bstate == B_PPART && d->c.kind == KIND_P) {
        bool has_n = key_set(&p->hdr, S_GOMAXPROCS);
        int64_t idx = d->v[S_IDX];
        const char *why = NULL;
        if (idx >= TUNER_MAX_PROCS)
            why = "too many Ps";
        else if (has_n && idx >= p->hdr.v[S_GOMAXPROCS])
            why = "count mismatch";
        else if ((p->pseen[idx / 64] >> (idx % 64)) & 1u)
            why = "garbled";                  /* the same P twice */
        if (why) {
            block_reject(p, k, why, t, n);
            return;
        }
        if (!sb_addline(&p->braw, t, n)) {
            block_reject(p, k, "out of memory", t, n);
            return;
        }
        p->pseen[idx / 64] |= 1ull << (idx % 64);
        p->pval[idx] = (int32_t)d->v[S_RUNQSIZE];
        p->np++;
        if (has_n && p->np == (uint32_t)p->hdr.v[S_GOMAXPROCS])
            ppart_end(p, k, END_DETAIL);
        return;
    }
    if (p->bstate == B_PPART)
        ppart_end(p, k, END_DETAIL);
    if (p->bstate == B_TAIL_REJ)
        rej_add(p, k, t, n);
    else if (d->c.kind == KIND_P)
        emit_reject(k, "garbled", t, n);    /* a P line after the P lines */
}

/* ---------------------------------------------------------- reassembly */

static const char *piece(const st_parser *p, size_t i, size_t *n)
{
    *n = p->poff[i + 1] - p->poff[i];
    return p->pbuf.p + p->poff[i];
}

/* Keeps *start at the offset where the free-form value the scanner is in
 * began (the split point just before its first byte), or SIZE_MAX. */
static void track_text(const scan *s, bool was_text, size_t i, size_t *start)
{
    if (!sc_in_text(s))
        *start = SIZE_MAX;
    else if (!was_text)
        *start = i;
}

/* The state a line is read from: the start of a line for a first piece,
 * else a fresh state of class c. */
static void start_state(scan *s, const cls *c, bool first)
{
    if (first)
        sc_init(s, c->kind, NULL);
    else
        sc_from_class(s, c);
}

/* Splits of one line read from class c: whether the whole line completes
 * it, and the points where an intruder may begin. `first` is the first
 * piece, read from the start of a line. Candidates go to the pool from
 * *npool on. False when the pool overflows. */
static bool class_split(st_parser *p, const cls *c, bool first, const char *t, size_t n,
                        clsres *r, size_t *npool)
{
    scan s;
    r->c = *c;
    r->complete = false;
    r->first = *npool;
    r->n = 0;

    if (!first) {
        size_t en = strip_cr(t, n);
        sc_from_class(&s, c);
        if (sc_feed(&s, t, 0, en) == en && sc_end(&s)) {
            r->complete = true;
            r->end = s;
        }
    }

    /* Pass 1: how far the line reads as SCHED text (m), where the last
     * key's '=' was, and where a free-form value being read began. */
    start_state(&s, c, first);
    size_t m, last_key = 0, tstart = SIZE_MAX;
    for (m = 0; m < n; m++) {
        uint8_t before = s.c.pos;
        bool was_text = sc_in_text(&s);
        sc_char(&s, (unsigned char)t[m]);
        if (s.c.pos == PS_ERR)
            break;
        if (before == PS_KEY && s.c.pos == PS_VAL)
            last_key = m + 1;
        track_text(&s, was_text, m, &tstart);
    }

    /* Where may the intruder begin? Not before the last key's '=' (an
     * application line does not start with " idleprocs=0"), and not before
     * the run of digits or word characters that ends the readable part,
     * plus one space or '[' before it: an intruder may start with a number,
     * a date or a word, not with several SCHED fields. Inside a free-form
     * value any byte may be the start. */
    size_t w = m;
    while (w > 0 && is_keych((unsigned char)t[w - 1]))
        w--;
    if (w > 0 && (t[w - 1] == ' ' || t[w - 1] == '['))
        w--;
    if (tstart < w)
        w = tstart;
    size_t lo = first ? (c->kind == KIND_SCHED ? 6 : 3) : 1;
    if (last_key > lo)
        lo = last_key;
    size_t from = w > lo ? w : lo;
    if (from > m)
        return true;

    /* Pass 2: the states at the allowed split points. A window that
     * begins inside a free-form value opens where that value began. */
    start_state(&s, c, first);
    size_t vstart = SIZE_MAX;
    for (size_t i = 0; i < from; i++) {
        bool was_text = sc_in_text(&s);
        sc_char(&s, (unsigned char)t[i]);
        track_text(&s, was_text, i, &vstart);
    }
    if (sc_in_text(&s) && vstart < from) {
        from = vstart;
        start_state(&s, c, first);
        sc_feed(&s, t, 0, from);
    }
    for (size_t i = from;; i++) {
        scan b;
        if (sc_boundary(&s, &b)) {
            if (*npool >= ST_MAX_CANDS)
                return false;
            p->pool[*npool].k = (uint32_t)i;
            p->pool[*npool].d = b;
            (*npool)++;
            r->n++;
        }
        if (i >= m)
            break;
        sc_char(&s, (unsigned char)t[i]);
    }
    return true;
}

/* Outcome of offering a line to the pending reassembly. */
enum ext { X_FAIL, X_PARTIAL, X_DONE, X_AMBIG };

/* Offers line t to the pending chains; with `first`, t is the first piece
 * and the one chain is the start of a line. For X_DONE, *winner is the
 * completed chain (its k[] says where each intruder begins). */
static int extend(st_parser *p, const char *t, size_t n, bool first, chain *winner)
{
    size_t nres = 0, npool = 0, nnext = 0, ndone = 0;
    size_t idx = first ? 0 : p->npieces;        /* this piece's index */

    if (n > ST_MAX_LINE || idx >= ST_MAX_PIECES)
        return X_FAIL;
    for (size_t ci = 0; ci < p->nchains; ci++) {
        chain *ch = &p->chains[ci];
        clsres *r = NULL;
        for (size_t ri = 0; !first && ri < nres; ri++)
            if (memcmp(&p->res[ri].c, &ch->st.c, sizeof(cls)) == 0)
                r = &p->res[ri];
        if (!r) {
            r = &p->res[nres++];
            if (!class_split(p, &ch->st.c, first, t, n, r, &npool))
                return X_AMBIG;
        }
        size_t sofar = 0;                       /* reassembled bytes so far */
        for (size_t i = 0; i < idx; i++)
            sofar += ch->k[i];
        if (r->complete && sofar + n <= ST_MAX_LINE) {
            scan all;
            const char *why;
            if (sc_combine(&ch->st, &r->end, &all)) {
                int v = sc_validate(&all, &why);
                if ((v == V_SUMMARY || v == V_HEADER || v == V_DETAIL) && ndone++ == 0) {
                    *winner = *ch;
                    winner->k[idx] = (uint32_t)n;
                }
            }
        }
        for (size_t j = 0; j < r->n; j++) {
            const cand *cd = &p->pool[r->first + j];
            scan all;
            if (first)
                all = cd->d;
            else if (!sc_combine(&ch->st, &cd->d, &all))
                continue;
            if (sofar + cd->k > ST_MAX_LINE)
                continue;
            if (nnext >= ST_MAX_CHAINS)
                return X_AMBIG;
            p->next[nnext] = *ch;
            p->next[nnext].st = all;
            p->next[nnext].k[idx] = cd->k;
            nnext++;
        }
    }
    if (ndone == 1)
        return X_DONE;
    if (ndone > 1)
        return X_AMBIG;
    if (nnext == 0 || idx + 1 >= ST_MAX_PIECES)
        return X_FAIL;
    memcpy(p->chains, p->next, nnext * sizeof(chain));
    p->nchains = nnext;
    return X_PARTIAL;
}

static void pending_clear(st_parser *p)
{
    p->pkind = PK_NONE;
    p->npieces = 0;
    p->nchains = 0;
    p->pbuf.len = 0;
    p->poff[0] = 0;
}

static bool pending_add(st_parser *p, const char *t, size_t n)
{
    if (!sb_add(&p->pbuf, t, n))
        return false;
    p->npieces++;
    p->poff[p->npieces] = p->pbuf.len;
    return true;
}

/* The pending pieces joined by '\n' (plus `extra`), into p->join. */
static bool pending_raw(st_parser *p, const char *extra, size_t nextra)
{
    p->join.len = 0;
    for (size_t i = 0; i < p->npieces; i++) {
        size_t n;
        const char *t = piece(p, i, &n);
        if (!sb_addline(&p->join, t, n))
            return false;
    }
    return !extra || sb_addline(&p->join, extra, nextra);
}

/* Gives up on the pending pieces (and `extra`, the line that made the
 * decision, when it belongs with them). */
static void pending_reject(st_parser *p, const st_sink *k, const char *why, const char *extra,
                           size_t nextra)
{
    int kind = p->pkind;
    if (!pending_raw(p, extra, nextra)) {
        for (size_t i = 0; i < p->npieces; i++) {
            size_t n;
            const char *t = piece(p, i, &n);
            emit_reject(k, why, t, n);
        }
        if (extra)
            emit_reject(k, why, extra, nextra);
        p->join.len = 0;
    }
    if (kind == PK_DETAIL && p->bstate == B_PPART) {
        if (p->join.len)
            block_reject(p, k, why, p->join.p, p->join.len);
        else
            block_reject(p, k, why, NULL, 0);
    } else if (kind == PK_DETAIL && p->bstate == B_TAIL_REJ) {
        if (p->join.len)
            rej_add(p, k, p->join.p, p->join.len);
    } else if (p->join.len) {
        emit_reject(k, why, p->join.p, p->join.len);
    }
    if (kind == PK_SCHED)
        reject_tail(p, why);
    pending_clear(p);
}

/* Starts putting back a line that failed on its own. */
static void pending_start(st_parser *p, const st_sink *k, int pk, const char *why, const char *t,
                          size_t n)
{
    pending_clear(p);
    p->pkind = pk;
    p->preason = why;
    if (n > ST_MAX_LINE || !pending_add(p, t, n)) {
        p->npieces = 0;
        p->pbuf.len = 0;
        if (pk == PK_DETAIL && p->bstate == B_PPART)
            block_reject(p, k, n > ST_MAX_LINE ? "too long" : "out of memory", t, n);
        else if (pk == PK_DETAIL && p->bstate == B_TAIL_REJ)
            rej_add(p, k, t, n);
        else
            emit_reject(k, n > ST_MAX_LINE ? "too long" : "out of memory", t, n);
        p->pkind = PK_NONE;
        return;
    }
    sc_init(&p->chains[0].st, pk == PK_SCHED ? KIND_SCHED : KIND_P, NULL);
    p->nchains = 1;
    chain w;
    size_t pn;
    const char *pt = piece(p, 0, &pn);
    int x = extend(p, pt, pn, true, &w);
    if (x != X_PARTIAL)
        pending_reject(p, k, x == X_AMBIG ? "ambiguous split" : why, NULL, 0);
}

static void handle_sched(st_parser *p, const st_sink *k, const char *t, size_t n);
static void handle_detail(st_parser *p, const st_sink *k, const char *t, size_t n);

/* The pending pieces cannot be completed: reject the first one (the line
 * that started it all) and read the others again as ordinary input, since
 * a line that only looked like a continuation may be the application's. */
static void pending_fail(st_parser *p, const st_sink *k)
{
    strbuf rest = { 0 };
    size_t off[ST_MAX_PIECES + 1], nrest = 0;
    bool ok = true;
    for (size_t i = 1; i < p->npieces && ok; i++) {
        size_t n;
        const char *t = piece(p, i, &n);
        off[nrest++] = rest.len;
        ok = sb_add(&rest, t, n);
    }
    off[nrest] = rest.len;
    if (!ok) {                      /* out of memory: reject them all */
        sb_free(&rest);
        pending_reject(p, k, p->preason, NULL, 0);
        return;
    }
    p->npieces = p->npieces ? 1 : 0;
    pending_reject(p, k, p->preason, NULL, 0);
    for (size_t i = 0; i < nrest; i++)
        st_parser_line(p, rest.p + off[i], off[i + 1] - off[i], k);
    sb_free(&rest);
}

/* Offers line t to the pending reassembly. Returns true when t was used
 * (completed, continued or rejected along with the pieces). */
static bool pending_offer(st_parser *p, const st_sink *k, const char *t, size_t n)
{
    chain w;
    int x = extend(p, t, n, false, &w);
    if (x == X_PARTIAL) {
        if (!pending_add(p, t, n))
            pending_reject(p, k, "out of memory", t, n);
        return true;
    }
    if (x == X_AMBIG) {
        pending_reject(p, k, "ambiguous split", t, n);
        return true;
    }
    if (x == X_FAIL) {
        pending_fail(p, k);
        return false;
    }
    /* Done: hand the intruders back, then read the reassembled line. */
    size_t np = p->npieces;
    p->join.len = 0;
    bool ok = true;
    for (size_t i = 0; i < np; i++) {
        size_t pn;
        const char *pt = piece(p, i, &pn);
        ok = ok && sb_add(&p->join, pt, w.k[i]);
    }
    ok = ok && sb_add(&p->join, t, n);
    if (!ok) {
        pending_reject(p, k, "out of memory", t, n);
        return true;
    }
    if (p->bstate == B_TAIL_REJ)
        rej_flush(p, k);                /* keep the callbacks in input order */
    for (size_t i = 0; i < np; i++) {
        size_t pn;
        const char *pt = piece(p, i, &pn);
        assert(w.k[i] <= pn);
        emit_line(k, pt + w.k[i], pn - w.k[i]);
    }
    int pk = p->pkind;
    /* Move the text out of p->join: handling it may use the buffer. */
    strbuf line = p->join;
    memset(&p->join, 0, sizeof p->join);
    pending_clear(p);
    if (pk == PK_SCHED)
        handle_sched(p, k, line.p, line.len);
    else
        handle_detail(p, k, line.p, line.len);
    if (!p->join.p)
        p->join = line;
    else
        sb_free(&line);
    return true;
}

/* A line that starts with "SCHED ". */
static void handle_sched(st_parser *p, const st_sink *k, const char *t, size_t n)
{
    block_end(p, k);
    if (n > ST_MAX_LINE) {
        emit_reject(k, "too long", t, n);
        return;
    }
    scan s;
    const char *why;
    int v = parse_line(p, KIND_SCHED, t, n, &s, &why);
    if (v == V_SUMMARY) {
        tuner_sample out;
        sample_from(&s, &out);
        out.nprocs = s.nrunq;
        out.local_runq = p->runq;
        emit_sample(k, &out);
    } else if (v == V_HEADER) {
        block_start(p, k, &s, t, n);
    } else if (v == V_INVALID) {
        emit_reject(k, why, t, n);
        reject_tail(p, why);
    } else {
        pending_start(p, k, PK_SCHED, why, t, n);
    }
}

/* An indented P/M/G line while a block is open. */
static void handle_detail(st_parser *p, const st_sink *k, const char *t, size_t n)
{
    scan s;
    const char *why;
    if (n > ST_MAX_LINE) {
        pending_start(p, k, PK_DETAIL, "too long", t, n);
        return;
    }
    int v = parse_line(p, KIND_P, t, n, &s, &why);
    if (v == V_DETAIL) {
        block_detail(p, k, &s, t, n);
    } else if (v == V_SYNTAX) {
        pending_start(p, k, PK_DETAIL, why, t, n);
    } else if (p->bstate == B_PPART) {
        block_reject(p, k, why, t, n);
    } else if (p->bstate == B_TAIL_REJ) {
        rej_add(p, k, t, n);
    } else {
        emit_reject(k, why, t, n);
    }
}

void st_parser_line(st_parser *p, const char *text, size_t len, const st_sink *sink)
{
    assert(p && sink && (text || len == 0));
    if (!text)
        text = "";
    /* A failed reassembly reads its later pieces again, which may start a
     * new one (with fewer pieces): offer the line to that one too. */
    while (p->pkind != PK_NONE)
        if (pending_offer(p, sink, text, len))
            return;
    if (is_sched(text, len)) {
        handle_sched(p, sink, text, len);
        return;
    }
    if (p->bstate != B_NONE && is_detail(text, len)) {
        handle_detail(p, sink, text, len);
        return;
    }
    /* An ordinary line. Inside a block it does not end the block (with a
     * busy application its lines land between the runtime's lines), except
     * that without a gomaxprocs= value the P lines end at the first other
     * line. */
    if (p->bstate == B_PPART && !key_set(&p->hdr, S_GOMAXPROCS))
        ppart_end(p, sink, END_OTHER);
    if (p->bstate == B_TAIL_REJ)
        rej_flush(p, sink);
    emit_line(sink, text, len);
}

void st_parser_finish(st_parser *p, const st_sink *sink)
{
    assert(p && sink);
    /* Replayed pieces may start a new reassembly; each round has fewer. */
    while (p->pkind != PK_NONE)
        pending_fail(p, sink);
    block_end(p, sink);
    pending_clear(p);
}

bool st_parser_holding(const st_parser *p)
{
    assert(p);
    return p->pkind != PK_NONE;
}

void st_parse_buffer(const char *buf, size_t len, const st_sink *sink)
{
    st_parser *p = st_parser_new();
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - buf) : len;
        if (p)
            st_parser_line(p, buf + i, end - i, sink);
        else
            emit_line(sink, buf + i, end - i);  /* out of memory: pass it on */
        i = end + 1;
    }
    if (p)
        st_parser_finish(p, sink);
    st_parser_free(p);
}
