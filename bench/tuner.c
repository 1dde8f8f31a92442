/*
 * tuner.c — the tuner micro-benchmark (docs/bench.md): what one full
 * evaluation of tuner_recommend() costs, the call the server makes per agent
 * (api/delivery.c's recommend_under) to compute a recommendation: quota,
 * even and neighbour-steal rules, then the override, cool-down, min_change
 * and min_interval guards.
 *
 * The input is built the way the server hands it over: the full default
 * policy, the agent's CPU facts, its current config version, a window of 30
 * samples (oldest first), and the agent's override and rejected configs
 * (empty, as for an agent nobody pinned). It is chosen so that every rule
 * does its work:
 *   - the process runs P Ps on a 2P-CPU host under a CPU limit of P + 0.4:
 *     quota rounds up to P + 1 and even brings it back down to P;
 *   - every eighth P (3, 11, 19, ...) runs a long non-yielding loop: in two
 *     samples out of three its queue holds 8 to 40 goroutines while the P
 *     after it is empty, so 20 of 30 samples are hot (15 are needed) and the
 *     steal rule tightens the pool's knobs; the other Ps hold 0 to 3;
 *   - the current version (P Ps, P workers, threshold 8, neighbours, made ten
 *     minutes ago) differs from what the rules choose, so the guards weigh
 *     each changed field.
 * Before timing, one evaluation is checked against that expectation; a
 * different answer is an error (exit 1).
 *
 * Modes:
 *   tuner [--procs N] [--reps R]   time the evaluation: a warm-up, then R
 *                                  repetitions of a loop of evaluations, each
 *                                  about REP_TARGET_NS long; prints one line
 *                                  of figures (median and min ns per
 *                                  evaluation over the repetitions)
 *   tuner --procs N --count K      run exactly K evaluations and nothing
 *                                  else, untimed: under callgrind with
 *                                  --toggle-collect=tuner_recommend this gives
 *                                  the instructions per evaluation
 *
 * A benchmark, not a test: it prints figures and never judges a time.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tuner/tuner.h"

#define NSAMPLES 30                 /* the default neighbor_steal.window */
#define HOT_EVERY 8                 /* every eighth P runs a long loop */
#define HOT_FIRST 3                 /* ... starting with P 3 */
#define SAMPLE_GAP_MS 1000          /* schedtrace=1000 */
#define NOW_MS INT64_C(1767225600000)   /* 2026-01-01, a fixed clock */
#define WARMUP_NS 100000000LL       /* 0.1 s of evaluations before the first rep */
#define REP_TARGET_NS 30000000LL    /* each repetition about 30 ms */
#define REPS_DEFAULT 11
#define REPS_MAX 1000
/* At least one hot P (P 3) and, at most, a P + 1 that the quota rule does
 * not cut at TUNER_MAX_PROCS, so that every size gives the same answer. */
#define PROCS_MIN 4
#define PROCS_MAX (TUNER_MAX_PROCS / 2)

/* Everything one evaluation reads; the samples' queues live in one block. */
typedef struct scenario {
    uint32_t procs;
    tuner_policy policy;
    tuner_cpu cpu;
    tuner_config current, override, rejected;
    tuner_sample window[NSAMPLES];
    int32_t *queues;                /* NSAMPLES * procs, owned here */
    tuner_input in;
} scenario;

/* Written after every loop so that no evaluation can be optimised away. */
static volatile uint64_t sink;

/* A small deterministic generator (xorshift32): the same data every run. */
static uint32_t next_rand(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void scenario_init(scenario *sc, uint32_t procs)
{
    memset(sc, 0, sizeof *sc);
    sc->procs = procs;
    tuner_policy_defaults(&sc->policy);
    sc->cpu = (tuner_cpu){ .num_cpu = (int32_t)(2 * procs), .affinity = (int32_t)(2 * procs),
                           .limit = procs + 0.4 };
    tuner_config_set(&sc->current, TUNER_CFG_GOMAXPROCS, procs);
    tuner_config_set(&sc->current, TUNER_CFG_WORKERS, procs);
    tuner_config_set(&sc->current, TUNER_CFG_STEAL_THRESHOLD, 8);
    tuner_config_set(&sc->current, TUNER_CFG_STEAL_SCOPE, TUNER_SCOPE_NEIGHBORS);

    sc->queues = calloc((size_t)NSAMPLES * procs, sizeof *sc->queues);
    if (!sc->queues) {
        fprintf(stderr, "tuner: out of memory\n");
        exit(2);
    }
    uint32_t rnd = 0x9e3779b9u ^ procs;
    for (uint32_t s = 0; s < NSAMPLES; s++) {
        tuner_sample *smp = &sc->window[s];
        int32_t *q = sc->queues + (size_t)s * procs;
        bool hog_queued = s % 3 != 0;
        tuner_sample_init(smp);
        smp->ts_ms = NOW_MS - (int64_t)(NSAMPLES - s) * SAMPLE_GAP_MS;
        smp->recv_ms = smp->ts_ms + 3;
        smp->gomaxprocs = (int32_t)procs;
        smp->threads = (int32_t)procs + 6;
        smp->spinning_threads = (int32_t)(next_rand(&rnd) % 2);
        smp->idle_threads = 3;
        smp->needspinning = 0;
        smp->global_runq = next_rand(&rnd) % 24;
        smp->goroutines = 40 * (int64_t)procs + next_rand(&rnd) % 200;
        smp->lat_p50_us = 20.0 + next_rand(&rnd) % 30;
        smp->lat_p99_us = 600.0 + next_rand(&rnd) % 900;
        smp->gc_p99_us = 250.0 + next_rand(&rnd) % 200;
        smp->pool_threshold = 8;
        smp->pool_scope = TUNER_SCOPE_NEIGHBORS;
        smp->nprocs = procs;
        smp->local_runq = q;
        int32_t idle = 0;
        for (uint32_t i = 0; i < procs; i++) {
            q[i] = (int32_t)(next_rand(&rnd) % 4);
            idle += q[i] == 0;
        }
        for (uint32_t i = HOT_FIRST; i < procs && hog_queued; i += HOT_EVERY) {
            q[i] = 8 + (int32_t)(next_rand(&rnd) % 33);
            idle += q[(i + 1) % procs] != 0;
            q[(i + 1) % procs] = 0;
        }
        smp->idle_procs = idle;
    }

    sc->in = (tuner_input){
        .policy = &sc->policy, .cpu = &sc->cpu, .current = &sc->current,
        .window = sc->window, .nwindow = NSAMPLES, .now_ms = NOW_MS,
        .last_change_ms = NOW_MS - 10 * 60 * 1000,
        .override = &sc->override, .rejected = &sc->rejected, .rejected_until_ms = 0,
    };
}

/* What the rules must answer on this input; a message when they do not. */
static const char *scenario_check(const scenario *sc, const tuner_recommendation *r)
{
    uint32_t hot_ps = (sc->procs - HOT_FIRST + HOT_EVERY - 1) / HOT_EVERY;
    if (r->nreasons != 3 || r->reasons[0].rule != TUNER_RULE_QUOTA ||
        r->reasons[1].rule != TUNER_RULE_EVEN || r->reasons[2].rule != TUNER_RULE_NEIGHBOR_STEAL)
        return "expected reasons from quota, even and neighbor_steal";
    if (r->config.v[TUNER_CFG_GOMAXPROCS] != sc->procs ||
        r->config.v[TUNER_CFG_WORKERS] != sc->procs)
        return "expected GOMAXPROCS and workers to stay at the number of Ps";
    if (r->config.v[TUNER_CFG_STEAL_THRESHOLD] != 4 ||
        r->config.v[TUNER_CFG_STEAL_SCOPE] != TUNER_SCOPE_ALL ||
        r->config.v[TUNER_CFG_GOSCHED_EVERY] != 1000 || r->config.v[TUNER_CFG_CHUNK_SIZE] != 64)
        return "expected threshold 4, scope all, gosched_every 1000, chunk_size 64";
    if (r->imbalance.hot_samples != 20 || r->reasons[2].nhot != hot_ps)
        return "expected 20 hot samples and every eighth P hot";
    if (!r->changes || r->nheld != 0 || r->next_change_ms != NOW_MS - 9 * 60 * 1000)
        return "expected a change, nothing held, and the next change allowed in a minute";
    return NULL;
}

/* Runs n evaluations; returns a value that depends on every one. The
 * input was checked once before (tuner_recommend accepted it, and the same
 * input always gives the same answer), so the status is not looked at. */
static uint64_t evaluate(const scenario *sc, tuner_recommendation *r, uint64_t n)
{
    uint64_t acc = 0;
    for (uint64_t k = 0; k < n; k++) {
        (void)tuner_recommend(&sc->in, r);
        acc += (uint64_t)r->config.v[TUNER_CFG_STEAL_THRESHOLD] + r->imbalance.hot_samples +
               (unsigned char)r->reasons[2].text[0];
    }
    return acc;
}

/* ns per evaluation over a loop of n evaluations. */
static double time_loop(const scenario *sc, tuner_recommendation *r, uint64_t n)
{
    int64_t t0 = now_ns();
    sink += evaluate(sc, r, n);
    return (double)(now_ns() - t0) / (double)n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tuner [--procs N] [--reps R] [--count K]\n"
            "\n"
            "Times one full tuner evaluation (tuner_recommend: the three rules and the\n"
            "guards) over a window of %d samples of N Ps, and prints\n"
            "  procs=N samples=%d evals=E reps=R ns_median=X ns_min=Y\n"
            "\n"
            "  --procs N   Ps per sample (default 16; %d to %d)\n"
            "  --reps R    timed repetitions (default %d)\n"
            "  --count K   run exactly K evaluations, untimed, and print nothing\n"
            "              (for valgrind --tool=callgrind --toggle-collect=tuner_recommend)\n"
            "  --help      this text\n",
            NSAMPLES, NSAMPLES, PROCS_MIN, PROCS_MAX, REPS_DEFAULT);
}

static unsigned long num_arg(const char *name, const char *v, unsigned long min,
                             unsigned long max)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || n < min || n > max) {
        fprintf(stderr, "tuner: %s wants a number from %lu to %lu, not '%s'\n", name, min,
                max, v);
        exit(2);
    }
    return n;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "procs", required_argument, NULL, 'p' },
        { "reps", required_argument, NULL, 'r' },
        { "count", required_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    uint32_t procs = 16;
    size_t reps = REPS_DEFAULT;
    long long count = -1;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p': procs = (uint32_t)num_arg("--procs", optarg, PROCS_MIN, PROCS_MAX); break;
        case 'r': reps = num_arg("--reps", optarg, 1, REPS_MAX); break;
        case 'k': count = (long long)num_arg("--count", optarg, 0, 100000000); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    int rc = 1;
    scenario *sc = malloc(sizeof *sc);
    tuner_recommendation *rec = malloc(sizeof *rec);
    double *per_rep = calloc(reps, sizeof *per_rep);
    if (!sc || !rec || !per_rep) {
        fprintf(stderr, "tuner: out of memory\n");
        goto done;
    }
    scenario_init(sc, procs);

    if (count >= 0) {
        /* Exactly count calls of tuner_recommend: the check below would add
         * one, so the caller checks with a timed run instead. */
        sink += evaluate(sc, rec, (uint64_t)count);
        rc = 0;
        goto done;
    }

    int err = tuner_recommend(&sc->in, rec);
    const char *wrong = err ? "the tuner refused the input" : scenario_check(sc, rec);
    if (wrong) {
        fprintf(stderr, "tuner: %u Ps: wrong answer: %s\n", procs, wrong);
        goto done;
    }

    /* Warm up (caches, branch predictors, CPU frequency) and size the loop:
     * double it until it takes 10 ms, then scale to REP_TARGET_NS. */
    uint64_t n = 1;
    int64_t t0 = now_ns(), spent;
    for (;;) {
        int64_t t = now_ns();
        sink += evaluate(sc, rec, n);
        spent = now_ns() - t;
        if (spent >= REP_TARGET_NS / 3 && now_ns() - t0 >= WARMUP_NS)
            break;
        if (spent < REP_TARGET_NS / 3)
            n *= 2;
    }
    n = (uint64_t)((double)n * (double)REP_TARGET_NS / (double)spent) + 1;

    for (size_t i = 0; i < reps; i++)
        per_rep[i] = time_loop(sc, rec, n);
    qsort(per_rep, reps, sizeof *per_rep, cmp_double);
    double median = reps % 2 ? per_rep[reps / 2]
                             : (per_rep[reps / 2 - 1] + per_rep[reps / 2]) / 2;
    printf("procs=%u samples=%d evals=%" PRIu64 " reps=%zu ns_median=%.1f ns_min=%.1f\n",
           procs, NSAMPLES, n, reps, median, per_rep[0]);
    rc = 0;

done:
    if (sc)
        free(sc->queues);
    free(sc);
    free(rec);
    free(per_rep);
    return rc;
}
