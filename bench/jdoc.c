/*
 * jdoc.c — the request-body parser micro-benchmark (docs/jdoc.md): what it
 * costs to read one telemetry push, ~350 bytes (one agent object, one
 * sample with 16 per-P queue lengths), with jdoc (api/jdoc.c, what
 * decode_body uses) and with jansson's json_loadb (what it used before),
 * each followed by freeing the document.
 *
 * Modes:
 *   jdoc [--reps R] [--body FILE]     time both: a warm-up, then R
 *                                     repetitions of a loop of parses, each
 *                                     about REP_TARGET_NS long; prints one
 *                                     line per parser (median and min ns per
 *                                     parse and free)
 *   jdoc --parser P --count K         run exactly K parses with P (jdoc or
 *                                     jansson) and nothing else, untimed:
 *                                     under callgrind with
 *                                     --toggle-collect=one_jdoc (or
 *                                     one_jansson) this gives the
 *                                     instructions per parse and free;
 *                                     --toggle-collect=jdoc_parse (or
 *                                     json_loadb) the parse alone
 * Before anything, both parse the body once and must accept it.
 *
 * A benchmark, not a test: it prints figures and never judges a time.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/jdoc.h"

#define WARMUP_NS 100000000LL       /* 0.1 s of parses before the first rep */
#define REP_TARGET_NS 30000000LL    /* each repetition about 30 ms */
#define REPS_DEFAULT 11
#define REPS_MAX 1000

/* What gotuned-agent sends every second for a 16-P process. */
static const char default_body[] =
    "{\"agent\":{\"id\":\"orders-7f9c\",\"service\":\"orders\",\"hostname\":\"node-3\","
    "\"pid\":4242,\"runtime\":\"go1.22.4\",\"num_cpu\":16,\"affinity\":16,\"cpu_limit\":2.5,"
    "\"applied_version\":3},\"samples\":[{\"ts_ms\":1733300000000,\"gomaxprocs\":16,"
    "\"idle_procs\":3,\"threads\":22,\"spinning_threads\":0,\"idle_threads\":5,"
    "\"global_runq\":0,\"local_runq\":[0,3,0,1,2,0,0,4,1,0,0,2,0,1,0,3],"
    "\"goroutines\":120}]}";

static const char *body = default_body;
static size_t body_len = sizeof default_body - 1;

/* Written after every parse so that none can be optimised away. */
static volatile uint64_t sink;

/* One parse and free each; not inlined, so that callgrind can count
 * exactly what runs inside. */
__attribute__((noinline)) static void one_jdoc(void)
{
    jdoc doc;
    if (jdoc_parse(&doc, body, body_len, NULL) != 0)
        abort();
    sink += doc.n;
    jdoc_cleanup(&doc);
}

__attribute__((noinline)) static void one_jansson(void)
{
    json_t *j = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, NULL);
    if (!j)
        abort();
    sink += json_object_size(j);
    json_decref(j);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Times fn: calibrates a loop of about REP_TARGET_NS, runs it reps times
 * and prints the median and minimum ns per call. */
static void timed(const char *name, void (*fn)(void), int reps)
{
    int64_t t0 = now_ns();
    uint64_t n = 0;
    while (now_ns() - t0 < WARMUP_NS) {
        fn();
        n++;
    }
    uint64_t loop = (uint64_t)((double)n * REP_TARGET_NS / (double)(now_ns() - t0)) + 1;
    double per[REPS_MAX];
    for (int r = 0; r < reps; r++) {
        int64_t s = now_ns();
        for (uint64_t i = 0; i < loop; i++)
            fn();
        per[r] = (double)(now_ns() - s) / (double)loop;
    }
    qsort(per, (size_t)reps, sizeof per[0], cmp_double);
    printf("parser=%s bytes=%zu ns_median=%.1f ns_min=%.1f parses=%llu reps=%d\n", name,
           body_len, per[reps / 2], per[0], (unsigned long long)loop, reps);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "reps", required_argument, NULL, 'r' },
        { "count", required_argument, NULL, 'c' },
        { "parser", required_argument, NULL, 'p' },
        { "body", required_argument, NULL, 'b' },
        { NULL, 0, NULL, 0 },
    };
    int reps = REPS_DEFAULT, opt;
    long long count = -1;
    const char *parser = NULL;
    char *owned = NULL;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'r': reps = atoi(optarg); break;
        case 'c': count = atoll(optarg); break;
        case 'p': parser = optarg; break;
        case 'b':
            free(owned);
            if (!(owned = read_file(optarg, &body_len))) {
                fprintf(stderr, "jdoc: cannot read %s: %s\n", optarg, strerror(errno));
                return 1;
            }
            body = owned;
            break;
        default:
            fprintf(stderr, "usage: jdoc [--reps R] [--body FILE]\n"
                            "       jdoc --parser jdoc|jansson --count K [--body FILE]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > REPS_MAX || (count >= 0) != (parser != NULL) ||
        (parser && strcmp(parser, "jdoc") != 0 && strcmp(parser, "jansson") != 0)) {
        fprintf(stderr, "jdoc: --reps 1..%d; --count and --parser jdoc|jansson go together\n",
                REPS_MAX);
        return 2;
    }
    jdoc doc;
    jdoc_error err;
    json_error_t je;
    json_t *j = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &je);
    if (jdoc_parse(&doc, body, body_len, &err) != 0 || !j) {
        fprintf(stderr, "jdoc: the body does not parse: jdoc %s, jansson %s\n",
                doc.n ? "ok" : err.text, j ? "ok" : je.text);
        return 1;
    }
    size_t nodes = doc.n;
    jdoc_cleanup(&doc);
    json_decref(j);
    if (parser) {
        void (*fn)(void) = strcmp(parser, "jdoc") == 0 ? one_jdoc : one_jansson;
        for (long long i = 0; i < count; i++)
            fn();
    } else {
        printf("body bytes=%zu values=%zu\n", body_len, nodes);
        timed("jansson", one_jansson, reps);
        timed("jdoc", one_jdoc, reps);
    }
    free(owned);
    return 0;
}
