/*
 * tuner.h — the pure core of gotuned: types for samples, CPU facts, policy,
 * config and recommendations, and the rules that turn one into the other.
 *
 * Nothing in tuner/ does I/O, reads a clock or keeps global mutable state:
 * inputs in, results out. Allocation is allowed only where a function's
 * contract says so.
 *
 * Errors: functions return 0 on success or a negative errno-style code
 * (-EINVAL for a bad argument), with an optional detail out-parameter.
 */
#ifndef GOTUNED_TUNER_H
#define GOTUNED_TUNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest GOMAXPROCS we accept from any source. The runtime allows more,
 * but no container we tune has more than 1024 CPUs, and every per-P array in
 * a request is capped by this before allocation. */
#define TUNER_MAX_PROCS 1024

/* The largest sample window a policy may ask for; the store keeps this many
 * samples per agent in memory. */
#define TUNER_MAX_WINDOW 128

/* ---------------------------------------------------------------- samples */

/* One scheduler observation. Integer fields use -1 for "not reported" and
 * the latency fields use a negative value. A schedtrace sample always has
 * local_runq; a runtime/metrics sample (the Go library) has none
 * (nprocs 0) but states gomaxprocs. */
typedef struct tuner_sample {
    int64_t ts_ms;            /* the sample's own clock: epoch ms from JSON
                                 agents, ms since process start from
                                 schedtrace (the number after SCHED) */
    int64_t recv_ms;          /* server wall clock when it arrived; 0 until set */
    int32_t gomaxprocs;
    int32_t idle_procs;
    int32_t threads;
    int32_t spinning_threads;
    int32_t idle_threads;
    int32_t needspinning;     /* Go 1.20+ only */
    int64_t global_runq;
    int64_t goroutines;
    double lat_p50_us;        /* scheduling latency percentiles, microseconds */
    double lat_p99_us;
    double gc_p99_us;         /* GC pause p99, microseconds */
    uint32_t nprocs;          /* number of values in local_runq, 0..TUNER_MAX_PROCS
                                 (0 only when gomaxprocs is reported) */
    int32_t *local_runq;      /* per-P local run queue lengths (runnext excluded);
                                 who owns the array is said by whoever hands
                                 the sample out */
    /* The application's worker pool (agent/go's pool), when it has one: */
    int32_t pool_threshold;   /* its steal threshold, -1 = no pool reported */
    int32_t pool_scope;       /* a tuner_scope, -1 = not reported */
    uint32_t npool;           /* number of values in pool_queues, 0..TUNER_MAX_PROCS */
    int32_t *pool_queues;     /* per-worker queue lengths; owned like local_runq
                                 (the sample stores keep both in one block) */
} tuner_sample;

/* Sets every optional field of *s to "not reported" and clears the rest. */
void tuner_sample_init(tuner_sample *s);

/* ------------------------------------------------------------- CPU facts */

typedef struct tuner_cpu {
    int32_t num_cpu;          /* logical CPUs of the host; 0 = unknown */
    int32_t affinity;         /* CPUs in the affinity mask; 0 = unknown (use num_cpu) */
    double limit;             /* tightest CPU bandwidth limit in CPUs; <= 0 = unlimited */
} tuner_cpu;

/* ----------------------------------------------------------------- config */

/* The fields of a config, in the order they are stored and printed. */
typedef enum tuner_cfg_field {
    TUNER_CFG_GOMAXPROCS = 0,
    TUNER_CFG_WORKERS,          /* pool.workers */
    TUNER_CFG_STEAL_THRESHOLD,  /* pool.steal_threshold */
    TUNER_CFG_STEAL_SCOPE,      /* pool.steal_scope, a tuner_scope */
    TUNER_CFG_GOSCHED_EVERY,
    TUNER_CFG_CHUNK_SIZE,
    TUNER_CFG_TASK_TIMEOUT_MS,
    TUNER_CFG_NFIELDS
} tuner_cfg_field;

typedef enum tuner_scope {
    TUNER_SCOPE_NEIGHBORS = 1,
    TUNER_SCOPE_ALL = 2
} tuner_scope;

/* A config is a set of knob values; a field whose bit is not in `set` is
 * left at the application's (or runtime's) own default. */
typedef struct tuner_config {
    uint32_t set;                       /* bit (1u << field) per field with a value */
    int64_t v[TUNER_CFG_NFIELDS];
} tuner_config;

typedef struct tuner_cfg_field_info {
    const char *name;       /* dotted public name: "gomaxprocs", "pool.workers", ... */
    int64_t min, max;       /* inclusive range of valid values */
} tuner_cfg_field_info;

extern const tuner_cfg_field_info tuner_cfg_fields[TUNER_CFG_NFIELDS];

static inline bool tuner_config_has(const tuner_config *c, tuner_cfg_field f)
{
    return (c->set >> f) & 1u;
}
void tuner_config_set(tuner_config *c, tuner_cfg_field f, int64_t v);
void tuner_config_unset(tuner_config *c, tuner_cfg_field f);
/* True when both configs set the same fields to the same values. */
bool tuner_config_equal(const tuner_config *a, const tuner_config *b);
/* Copies every field that `patch` sets onto *dst. */
void tuner_config_merge(tuner_config *dst, const tuner_config *patch);
/* Returns the field index for a dotted name, or -1. */
int tuner_cfg_field_lookup(const char *name);
const char *tuner_scope_name(int64_t scope);       /* NULL if invalid */
int tuner_scope_parse(const char *name);           /* -1 if invalid */

/* ----------------------------------------------------------------- policy */

/* The modes an agent can be in, as the policy's mode.default holds them;
 * the tuner only validates the number, the API names them. */
#define TUNER_MODE_MAX 2

typedef enum tuner_rounding {
    TUNER_ROUND_CEIL = 0,       /* Go 1.25's rule */
    TUNER_ROUND_FLOOR = 1,      /* automaxprocs' rule */
    TUNER_ROUND_NEAREST = 2
} tuner_rounding;

const char *tuner_rounding_name(int r);            /* NULL if invalid */
int tuner_rounding_parse(const char *name);        /* -1 if invalid */

/* The fields of a policy. A service policy overrides the global one field
 * by field, so policies travel as patches with a `set` mask. */
typedef enum tuner_pol_field {
    TUNER_POL_QUOTA_ROUNDING = 0,
    TUNER_POL_QUOTA_MIN_PROCS,
    TUNER_POL_QUOTA_WORKERS_FACTOR,
    TUNER_POL_EVEN_ENABLED,
    TUNER_POL_EVEN_MIN,
    TUNER_POL_STEAL_THRESHOLD,
    TUNER_POL_STEAL_WINDOW,
    TUNER_POL_STEAL_PERSISTENCE,
    TUNER_POL_STEAL_GOSCHED_EVERY,
    TUNER_POL_STEAL_CHUNK_SIZE,
    TUNER_POL_GUARD_MIN_CHANGE_PCT,
    TUNER_POL_GUARD_MIN_INTERVAL_S,
    TUNER_POL_VERIFY_TOLERANCE_PCT,
    TUNER_POL_VERIFY_COOLDOWN_S,
    TUNER_POL_VERIFY_WINDOW,
    TUNER_POL_MODE_DEFAULT,
    TUNER_POL_NFIELDS
} tuner_pol_field;

typedef enum tuner_pol_type {
    TUNER_POL_INT,
    TUNER_POL_REAL,
    TUNER_POL_BOOL,
    TUNER_POL_ROUNDING,
    TUNER_POL_MODE
} tuner_pol_type;

typedef struct tuner_pol_field_info {
    const char *section;    /* "quota", "even", "neighbor_steal", "guards",
                               "verify", "mode" */
    const char *key;        /* "rounding", "min_procs", ... */
    tuner_pol_type type;
    double min, max;        /* inclusive range; for BOOL 0..1, ROUNDING 0..2,
                               MODE 0..TUNER_MODE_MAX */
} tuner_pol_field_info;

extern const tuner_pol_field_info tuner_pol_fields[TUNER_POL_NFIELDS];

/* Every policy value is held as a double; INT, BOOL and ROUNDING fields hold
 * whole numbers. */
typedef struct tuner_policy {
    uint32_t set;                       /* bit (1u << field) per field present */
    double v[TUNER_POL_NFIELDS];
} tuner_policy;

/* Fills *p with the built-in defaults, every field set: ceil, min_procs 2,
 * workers factor 1, even on at 4, threshold 8, window 30, persistence 0.5,
 * gosched_every 1000, chunk_size 64, min change 10 %, min interval 60 s,
 * verification tolerance 10 %, cool-down 1 h, window 10, mode recommend. */
void tuner_policy_defaults(tuner_policy *p);
/* Copies every field that `patch` sets onto *dst. */
void tuner_policy_merge(tuner_policy *dst, const tuner_policy *patch);
/* Checks every set field against its range and type. On failure returns
 * -EINVAL and sets *bad_field to the offending field. */
int tuner_policy_validate(const tuner_policy *p, int *bad_field);
/* A full policy (every field set) must also be consistent as a whole
 * (e.g. even.min >= 2). Returns -EINVAL with *bad_field. */
int tuner_policy_check_full(const tuner_policy *p, int *bad_field);

/* --------------------------------------------------------- recommendation */

typedef enum tuner_rule {
    TUNER_RULE_QUOTA = 0,
    TUNER_RULE_EVEN,
    TUNER_RULE_NEIGHBOR_STEAL
} tuner_rule;

const char *tuner_rule_name(tuner_rule r);

#define TUNER_REASON_MAXNUM 10

/* One number (or word) a rule used, for people and dashboards. */
typedef struct tuner_reason_num {
    const char *name;       /* static string */
    double value;
    const char *word;       /* static string instead of a number, or NULL */
} tuner_reason_num;

typedef struct tuner_reason {
    tuner_rule rule;
    char text[512];                         /* one sentence a person can read */
    size_t nnum;
    tuner_reason_num num[TUNER_REASON_MAXNUM];
    uint32_t nhot;                          /* hot Ps (neighbor_steal) */
    uint64_t hot[TUNER_MAX_PROCS / 64];     /* bitmap of hot P indices */
} tuner_reason;

/* Whole-window imbalance measures, reported whether or not a rule fired. */
typedef struct tuner_imbalance {
    uint32_t samples;           /* samples in the window */
    uint32_t hot_samples;       /* samples with a hot P next to an idle one */
    double max_mean;            /* mean over samples of max(local)/mean(local);
                                   1 = perfectly even, 0 when all queues empty */
    double local_mean;          /* mean local run queue per P */
    double global_mean;         /* mean global run queue */
    double global_max;
} tuner_imbalance;

/* Why a value the rules chose was held back. */
typedef enum tuner_hold {
    TUNER_HOLD_MIN_CHANGE = 0,      /* too small a step (guards.min_change_pct) */
    TUNER_HOLD_OVERRIDE,            /* the operator's override sets the field */
    TUNER_HOLD_COOLDOWN             /* a rollback rejected this value recently */
} tuner_hold;

const char *tuner_hold_name(tuner_hold h);

typedef struct tuner_held {
    tuner_cfg_field field;
    int64_t current, wanted;        /* current: -1 when the field is unset */
    tuner_hold why;
} tuner_held;

typedef struct tuner_recommendation {
    tuner_config config;            /* the config the rules choose now */
    size_t nreasons;
    tuner_reason reasons[3];        /* one per rule that fired, in rule order */
    tuner_imbalance imbalance;
    size_t nheld;                   /* changes the guards held back */
    tuner_held held[TUNER_CFG_NFIELDS];
    bool changes;                   /* config differs from the current one */
    int64_t next_change_ms;         /* earliest time min_interval allows a
                                       change; <= now when it allows one now */
} tuner_recommendation;

/* Everything a recommendation is computed from. */
typedef struct tuner_input {
    const tuner_policy *policy;     /* full policy (every field set) */
    const tuner_cpu *cpu;
    const tuner_config *current;    /* the agent's current config version */
    const tuner_sample *window;     /* oldest first; may be empty */
    size_t nwindow;
    int64_t now_ms;
    int64_t last_change_ms;         /* when the current version was made; 0 = never */
    const tuner_config *override;   /* fields the operator pinned: never changed
                                       (NULL = none) */
    const tuner_config *rejected;   /* values a rollback rejected: not proposed
                                       again while now_ms < rejected_until_ms
                                       (NULL = none) */
    int64_t rejected_until_ms;
} tuner_input;

/* Runs the three rules and the guards (override, cool-down, min_change,
 * min_interval). Never fails on valid input; returns -EINVAL when the
 * policy is not full or the CPU facts are unusable. */
int tuner_recommend(const tuner_input *in, tuner_recommendation *out);

/* The individual rules, exposed for tests and for the server's own sizing. */

/* Quota-derived parallelism: clamp(round(limit), min_procs, affinity), with
 * the affinity (or num_cpu) count as the limit when there is no bandwidth
 * limit. Returns the GOMAXPROCS value (>= 1). */
int32_t tuner_quota_procs(const tuner_policy *p, const tuner_cpu *cpu);

/* Even-count sizing: an odd value >= even.min rounded down to even, never
 * below floor_value. Returns the value unchanged when the rule is off. */
int64_t tuner_even(const tuner_policy *p, int64_t value, int64_t floor_value);

/* Neighbour-steal detection over a window; fills *imb and the hot bitmap in
 * *r (r->nhot). Returns true when hot-with-idle-neighbour samples persist. */
bool tuner_steal_detect(const tuner_policy *p, const tuner_sample *win,
                        size_t n, tuner_imbalance *imb, tuner_reason *r);

/* The min_change guard: true when moving from cur to want is too small. */
bool tuner_guard_small_change(const tuner_policy *p, int64_t cur, int64_t want);

/* ----------------------------------------------------------- verification */

/* Two figures of a sample window, each the median over its samples. */
typedef struct tuner_figures {
    uint32_t n;                 /* samples */
    double lat_p99_us;          /* scheduling-latency p99; < 0 unless every
                                   sample reported it */
    double runq_per_p;          /* local run queue per P; < 0 when n == 0 */
} tuner_figures;

void tuner_window_figures(const tuner_sample *s, size_t n, tuner_figures *out);

typedef enum tuner_metric {
    TUNER_METRIC_LATENCY_P99 = 0,   /* "sched_latency_p99_us" */
    TUNER_METRIC_RUNQ_PER_P         /* "runq_per_p" */
} tuner_metric;

const char *tuner_metric_name(tuner_metric m);

typedef enum tuner_verdict_kind {
    TUNER_VERDICT_PASSED = 0,       /* better, equal, or worse within tolerance */
    TUNER_VERDICT_FAILED,           /* worse beyond tolerance: roll back */
    TUNER_VERDICT_SKIPPED           /* no usable before window */
} tuner_verdict_kind;

const char *tuner_verdict_name(tuner_verdict_kind v);

typedef struct tuner_verdict {
    tuner_verdict_kind verdict;
    tuner_metric metric;
    double before, after;
    double change_pct;              /* (after - before) / before * 100; NAN when
                                       before is 0 (lower is better for both
                                       metrics, so a negative change is a gain) */
} tuner_verdict;

/* Below these absolute differences a change is noise, whatever the ratio. */
#define TUNER_VERIFY_FLOOR_LATENCY_US 50.0
#define TUNER_VERIFY_FLOOR_RUNQ 0.5

/* Compares the window after a change with the window before it: latency p99
 * when both windows have it, else run queue per P. Failed when the after
 * figure exceeds before * (1 + verify.tolerance_pct / 100) and the
 * difference is above the metric's noise floor. Skipped when the before
 * window has fewer than half of verify.window samples. */
void tuner_verify(const tuner_policy *p, const tuner_figures *before,
                  const tuner_figures *after, tuner_verdict *out);

#endif
