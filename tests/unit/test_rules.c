/*
 * Tests for tuner/quota.c, even.c, steal.c, guards.c and recommend.c. The
 * quota/even cases are a table in tests/data/rules/quota.txt.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/registry.h"
#include "tuner/tuner.h"

static void quota_table(void **state)
{
    (void)state;
    char *text = unit_read_file(unit_data_path("rules/quota.txt"), NULL);
    assert_non_null(text);
    int cases = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char rounding[16], even[8], limit[32];
        int min_procs, num_cpu, affinity, expect;
        int got = sscanf(line, "%15s %d %7s %d %d %31s %d", rounding, &min_procs, even,
                         &num_cpu, &affinity, limit, &expect);
        assert_int_equal(got, 7);
        tuner_policy p;
        tuner_policy_defaults(&p);
        p.v[TUNER_POL_QUOTA_ROUNDING] = tuner_rounding_parse(rounding);
        assert_true(p.v[TUNER_POL_QUOTA_ROUNDING] >= 0);
        p.v[TUNER_POL_QUOTA_MIN_PROCS] = min_procs;
        p.v[TUNER_POL_EVEN_ENABLED] = strcmp(even, "on") == 0;
        tuner_cpu cpu = { num_cpu, affinity, strcmp(limit, "-") == 0 ? 0 : atof(limit) };
        tuner_config cur = { 0 };
        tuner_input in = { &p, &cpu, &cur, NULL, 0, 1000, 0, NULL, NULL, 0 };
        tuner_recommendation rec;
        assert_int_equal(tuner_recommend(&in, &rec), 0);
        if (rec.config.v[TUNER_CFG_GOMAXPROCS] != expect)
            fail_msg("case '%s': got %lld", line, (long long)rec.config.v[TUNER_CFG_GOMAXPROCS]);
        assert_true(tuner_config_has(&rec.config, TUNER_CFG_GOMAXPROCS));
        assert_string_equal(tuner_rule_name(rec.reasons[0].rule), "quota");
        cases++;
    }
    assert_true(cases >= 20);
    free(text);
}

static void even_reason(void **state)
{
    (void)state;
    tuner_policy p;
    tuner_policy_defaults(&p);
    tuner_cpu cpu = { 16, 16, 4.2 };
    tuner_config cur = { 0 };
    tuner_input in = { &p, &cpu, &cur, NULL, 0, 1000, 0, NULL, NULL, 0 };
    tuner_recommendation rec;
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    assert_int_equal(rec.nreasons, 2);
    assert_int_equal(rec.reasons[1].rule, TUNER_RULE_EVEN);
    assert_int_equal(rec.config.v[TUNER_CFG_GOMAXPROCS], 4);
    assert_int_equal(rec.config.v[TUNER_CFG_WORKERS], 4);
    assert_non_null(strstr(rec.reasons[1].text, "5 to 4"));
    assert_int_equal(tuner_even(&p, 3, 2), 3);
    assert_int_equal(tuner_even(&p, 9, 2), 8);
    assert_int_equal(tuner_even(&p, 9, 9), 9);
}

static void workers_factor(void **state)
{
    (void)state;
    tuner_policy p;
    tuner_policy_defaults(&p);
    p.v[TUNER_POL_QUOTA_WORKERS_FACTOR] = 2.5;
    tuner_cpu cpu = { 16, 16, 4 };
    tuner_config cur = { 0 };
    tuner_input in = { &p, &cpu, &cur, NULL, 0, 1000, 0, NULL, NULL, 0 };
    tuner_recommendation rec;
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    assert_int_equal(rec.config.v[TUNER_CFG_GOMAXPROCS], 4);
    assert_int_equal(rec.config.v[TUNER_CFG_WORKERS], 10);
}

/* Builds n samples of np Ps where P `hot` holds q goroutines (every
 * `every` samples; 0 = never) and the others hold `rest`. */
typedef struct win {
    tuner_sample s[TUNER_MAX_WINDOW];
    int32_t q[TUNER_MAX_WINDOW][64];
} win;

static void fill(win *w, size_t n, uint32_t np, int hot, int32_t q, int32_t rest, size_t every)
{
    for (size_t i = 0; i < n; i++) {
        tuner_sample_init(&w->s[i]);
        w->s[i].nprocs = np;
        w->s[i].gomaxprocs = (int32_t)np;
        w->s[i].global_runq = 1;
        w->s[i].local_runq = w->q[i];
        for (uint32_t k = 0; k < np; k++)
            w->q[i][k] = rest;
        if (every && i % every == 0)
            w->q[i][hot] = q;
    }
}

static const tuner_reason *find_reason(const tuner_recommendation *rec, tuner_rule rule)
{
    for (size_t i = 0; i < rec->nreasons; i++)
        if (rec->reasons[i].rule == rule)
            return &rec->reasons[i];
    return NULL;
}

static void steal_fires(void **state)
{
    (void)state;
    static win w;
    fill(&w, 30, 4, 1, 20, 0, 1);
    tuner_policy p;
    tuner_policy_defaults(&p);
    tuner_cpu cpu = { 4, 4, 4 };
    tuner_config cur = { 0 };
    tuner_input in = { &p, &cpu, &cur, w.s, 30, 1000, 0, NULL, NULL, 0 };
    tuner_recommendation rec;
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    const tuner_reason *r = find_reason(&rec, TUNER_RULE_NEIGHBOR_STEAL);
    assert_non_null(r);
    assert_int_equal(r->nhot, 1);
    assert_true(r->hot[0] & 2u);
    assert_int_equal(rec.config.v[TUNER_CFG_STEAL_THRESHOLD], 4);
    assert_int_equal(rec.config.v[TUNER_CFG_STEAL_SCOPE], TUNER_SCOPE_ALL);
    assert_int_equal(rec.config.v[TUNER_CFG_GOSCHED_EVERY], 1000);
    assert_int_equal(rec.config.v[TUNER_CFG_CHUNK_SIZE], 64);
    assert_int_equal(rec.imbalance.hot_samples, 30);
    assert_true(fabs(rec.imbalance.max_mean - 4.0) < 1e-9);
    assert_true(fabs(rec.imbalance.global_mean - 1.0) < 1e-9);

    /* Already tightened to 4: halve again; never below 2. */
    tuner_config_set(&cur, TUNER_CFG_STEAL_THRESHOLD, 4);
    tuner_config_set(&cur, TUNER_CFG_STEAL_SCOPE, TUNER_SCOPE_NEIGHBORS);
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    assert_int_equal(rec.config.v[TUNER_CFG_STEAL_THRESHOLD], 2);
    tuner_config_set(&cur, TUNER_CFG_STEAL_THRESHOLD, 2);
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    assert_int_equal(rec.config.v[TUNER_CFG_STEAL_THRESHOLD], 2);
}

static void steal_needs_persistence(void **state)
{
    (void)state;
    static win w;
    tuner_policy p;
    tuner_policy_defaults(&p);
    tuner_cpu cpu = { 4, 4, 4 };
    tuner_config cur = { 0 };
    tuner_recommendation rec;
    /* Hot in every 3rd sample: 10 of 30, below 15. */
    fill(&w, 30, 4, 2, 9, 0, 3);
    tuner_input in = { &p, &cpu, &cur, w.s, 30, 1000, 0, NULL, NULL, 0 };
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    assert_null(find_reason(&rec, TUNER_RULE_NEIGHBOR_STEAL));
    assert_int_equal(rec.imbalance.hot_samples, 10);
    /* Every 2nd: 15 of 30, exactly half: fires. */
    fill(&w, 30, 4, 2, 9, 0, 2);
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    assert_non_null(find_reason(&rec, TUNER_RULE_NEIGHBOR_STEAL));
    /* Busy neighbours are not idle: no hot P. */
    fill(&w, 30, 4, 2, 30, 3, 1);
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    assert_null(find_reason(&rec, TUNER_RULE_NEIGHBOR_STEAL));
    /* Below the threshold: 7 < 8. */
    fill(&w, 30, 4, 2, 7, 0, 1);
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    assert_null(find_reason(&rec, TUNER_RULE_NEIGHBOR_STEAL));
    /* Wrapping: P3's neighbours are P2 and P0. */
    fill(&w, 30, 4, 3, 12, 1, 1);
    for (size_t i = 0; i < 30; i++)
        w.q[i][0] = 0;
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    const tuner_reason *r = find_reason(&rec, TUNER_RULE_NEIGHBOR_STEAL);
    assert_non_null(r);
    assert_true(r->hot[0] & 8u);
}

static void steal_quota_first(void **state)
{
    (void)state;
    static win w;
    fill(&w, 30, 16, 5, 40, 0, 1);
    tuner_policy p;
    tuner_policy_defaults(&p);
    tuner_cpu cpu = { 16, 16, 2 };
    tuner_config cur = { 0 };
    tuner_input in = { &p, &cpu, &cur, w.s, 30, 1000, 0, NULL, NULL, 0 };
    tuner_recommendation rec;
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    assert_int_equal(rec.config.v[TUNER_CFG_GOMAXPROCS], 2);
    const tuner_reason *r = find_reason(&rec, TUNER_RULE_NEIGHBOR_STEAL);
    assert_non_null(r);
    assert_non_null(strstr(r->text, "comes first"));
    assert_false(tuner_config_has(&rec.config, TUNER_CFG_STEAL_THRESHOLD));
}

static void steal_relaxes(void **state)
{
    (void)state;
    static win w;
    fill(&w, 30, 4, 0, 0, 1, 0);
    tuner_policy p;
    tuner_policy_defaults(&p);
    tuner_cpu cpu = { 4, 4, 4 };
    tuner_config cur = { 0 };
    tuner_config_set(&cur, TUNER_CFG_STEAL_THRESHOLD, 2);
    tuner_config_set(&cur, TUNER_CFG_STEAL_SCOPE, TUNER_SCOPE_ALL);
    tuner_config_set(&cur, TUNER_CFG_GOSCHED_EVERY, 500);
    tuner_input in = { &p, &cpu, &cur, w.s, 30, 1000, 0, NULL, NULL, 0 };
    tuner_recommendation rec;
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    const tuner_reason *r = find_reason(&rec, TUNER_RULE_NEIGHBOR_STEAL);
    assert_non_null(r);
    assert_int_equal(rec.config.v[TUNER_CFG_STEAL_THRESHOLD], 4);
    assert_int_equal(rec.config.v[TUNER_CFG_STEAL_SCOPE], TUNER_SCOPE_NEIGHBORS);
    assert_false(tuner_config_has(&rec.config, TUNER_CFG_GOSCHED_EVERY));
    /* A window that is not yet full does not count as calm. */
    in.nwindow = 29;
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    assert_null(find_reason(&rec, TUNER_RULE_NEIGHBOR_STEAL));
}

static void guards(void **state)
{
    (void)state;
    tuner_policy p;
    tuner_policy_defaults(&p);
    assert_false(tuner_guard_small_change(&p, 5, 4));     /* 1 >= max(1, 0.5) */
    assert_true(tuner_guard_small_change(&p, 16, 15));    /* 1 < 1.6 */
    assert_false(tuner_guard_small_change(&p, 16, 14));
    assert_false(tuner_guard_small_change(&p, 16, 16));
    assert_true(tuner_guard_small_change(&p, 100, 91));
    assert_false(tuner_guard_small_change(&p, 100, 90));

    /* The process runs 16 Ps (no config yet); the rules want 15 → held. */
    static win w;
    fill(&w, 3, 16, 0, 0, 0, 0);
    p.v[TUNER_POL_EVEN_ENABLED] = 0;
    tuner_cpu cpu = { 16, 16, 14.5 };
    tuner_config cur = { 0 };
    tuner_input in = { &p, &cpu, &cur, w.s, 3, 100000, 0, NULL, NULL, 0 };
    tuner_recommendation rec;
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    assert_int_equal(rec.nheld, 1);
    assert_int_equal(rec.held[0].field, TUNER_CFG_GOMAXPROCS);
    assert_int_equal(rec.held[0].current, 16);
    assert_int_equal(rec.held[0].wanted, 15);
    assert_false(tuner_config_has(&rec.config, TUNER_CFG_GOMAXPROCS));
    assert_int_equal(rec.next_change_ms, 100000);

    /* min_interval: 60 s after the last change. */
    in.last_change_ms = 90000;
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    assert_int_equal(rec.next_change_ms, 150000);
}

/* The operator's override and a rollback's cool-down hold a field at its
 * current value, each saying why. */
static void override_and_cooldown(void **state)
{
    (void)state;
    static win w;
    fill(&w, 3, 8, 0, 0, 0, 0);
    tuner_policy p;
    tuner_policy_defaults(&p);
    tuner_cpu cpu = { 8, 8, 4.0 };          /* the quota rule wants 4 */
    tuner_config cur = { 0 }, ov = { 0 }, rj = { 0 };
    tuner_config_set(&cur, TUNER_CFG_GOMAXPROCS, 8);
    tuner_config_set(&ov, TUNER_CFG_GOMAXPROCS, 8);
    tuner_input in = { &p, &cpu, &cur, w.s, 3, 100000, 0, &ov, NULL, 0 };
    tuner_recommendation rec;
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    assert_int_equal(rec.config.v[TUNER_CFG_GOMAXPROCS], 8);
    assert_int_equal(rec.nheld, 1);
    assert_int_equal(rec.held[0].why, TUNER_HOLD_OVERRIDE);
    assert_int_equal(rec.held[0].current, 8);
    assert_int_equal(rec.held[0].wanted, 4);
    assert_string_equal(tuner_hold_name(rec.held[0].why), "override");
    /* pool.workers is not pinned: it still follows the quota. */
    assert_int_equal(rec.config.v[TUNER_CFG_WORKERS], 4);
    assert_true(rec.changes);

    /* 4 was rolled back: not proposed again until the cool-down ends. */
    tuner_config_set(&rj, TUNER_CFG_GOMAXPROCS, 4);
    tuner_config_set(&rj, TUNER_CFG_WORKERS, 4);
    in.override = NULL;
    in.rejected = &rj;
    in.rejected_until_ms = 100001;
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    assert_int_equal(rec.config.v[TUNER_CFG_GOMAXPROCS], 8);
    assert_false(tuner_config_has(&rec.config, TUNER_CFG_WORKERS));
    assert_int_equal(rec.nheld, 2);
    assert_int_equal(rec.held[0].why, TUNER_HOLD_COOLDOWN);
    assert_int_equal(rec.held[1].current, -1);
    assert_false(rec.changes);
    /* Another value than the rejected one is proposed as usual. */
    cpu.limit = 5.5;                        /* ceil 6 */
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    assert_int_equal(rec.config.v[TUNER_CFG_GOMAXPROCS], 6);
    assert_int_equal(rec.nheld, 0);
    /* After the cool-down, 4 is fine again. */
    cpu.limit = 4.0;
    in.rejected_until_ms = 100000;
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    assert_int_equal(rec.config.v[TUNER_CFG_GOMAXPROCS], 4);
    assert_int_equal(rec.nheld, 0);
}

/* Window figures are medians; the verdict compares them with tolerance
 * and a noise floor, on latency when both windows have it. */
static void verification(void **state)
{
    (void)state;
    static win w;
    tuner_policy p;
    tuner_policy_defaults(&p);
    tuner_figures before, after;
    tuner_verdict v;

    fill(&w, 10, 4, 0, 0, 2, 0);            /* 2 per P */
    w.q[0][0] = 400;                        /* one burst: the median ignores it */
    tuner_window_figures(w.s, 10, &before);
    assert_int_equal(before.n, 10);
    assert_true(before.runq_per_p == 2.0);
    assert_true(before.lat_p99_us < 0);

    fill(&w, 10, 4, 0, 0, 3, 0);            /* 3 per P: +50 % */
    tuner_window_figures(w.s, 10, &after);
    tuner_verify(&p, &before, &after, &v);
    assert_int_equal(v.verdict, TUNER_VERDICT_FAILED);
    assert_int_equal(v.metric, TUNER_METRIC_RUNQ_PER_P);
    assert_true(fabs(v.change_pct - 50) < 1e-9);
    assert_string_equal(tuner_verdict_name(v.verdict), "failed");
    assert_string_equal(tuner_metric_name(v.metric), "runq_per_p");

    /* Within the tolerance, or better: passed. */
    p.v[TUNER_POL_VERIFY_TOLERANCE_PCT] = 60;
    tuner_verify(&p, &before, &after, &v);
    assert_int_equal(v.verdict, TUNER_VERDICT_PASSED);
    p.v[TUNER_POL_VERIFY_TOLERANCE_PCT] = 10;
    tuner_verify(&p, &after, &before, &v);
    assert_int_equal(v.verdict, TUNER_VERDICT_PASSED);
    assert_true(v.change_pct < 0);

    /* From 0 to 0.25 per P is worse by any ratio but under the noise floor. */
    before.runq_per_p = 0;
    after.runq_per_p = 0.25;
    tuner_verify(&p, &before, &after, &v);
    assert_int_equal(v.verdict, TUNER_VERDICT_PASSED);
    assert_true(isnan(v.change_pct));

    /* Latency in both windows decides over the run queue. */
    before.lat_p99_us = 100;
    after.lat_p99_us = 300;
    before.runq_per_p = after.runq_per_p = 1;
    tuner_verify(&p, &before, &after, &v);
    assert_int_equal(v.metric, TUNER_METRIC_LATENCY_P99);
    assert_int_equal(v.verdict, TUNER_VERDICT_FAILED);
    after.lat_p99_us = 140;                 /* +40 %, but 40 us is noise */
    tuner_verify(&p, &before, &after, &v);
    assert_int_equal(v.verdict, TUNER_VERDICT_PASSED);
    after.lat_p99_us = -1;                  /* one window lacks it: run queue */
    tuner_verify(&p, &before, &after, &v);
    assert_int_equal(v.metric, TUNER_METRIC_RUNQ_PER_P);

    /* Fewer than half a window before the change: no verdict. */
    before.n = 4;
    tuner_verify(&p, &before, &after, &v);
    assert_int_equal(v.verdict, TUNER_VERDICT_SKIPPED);
    tuner_window_figures(w.s, 0, &after);
    assert_int_equal(after.n, 0);
    assert_true(after.runq_per_p < 0);
}

/* Samples from the Go library have no per-P queues (nprocs 0): the steal
 * rule's window and the run-queue figure skip them, latency still counts. */
static void metrics_samples(void **state)
{
    (void)state;
    static win w;
    fill(&w, 40, 4, 1, 20, 0, 1);           /* 40 hot schedtrace samples ... */
    for (size_t i = 0; i < 40; i += 2) {     /* ... every other one metrics-only */
        w.s[i].nprocs = 0;
        w.s[i].local_runq = NULL;
        w.s[i].global_runq = -1;
    }
    tuner_policy p;
    tuner_policy_defaults(&p);
    p.v[TUNER_POL_STEAL_WINDOW] = 10;
    tuner_imbalance imb;
    tuner_reason r;
    assert_true(tuner_steal_detect(&p, w.s, 40, &imb, &r));
    assert_int_equal(imb.samples, 10);      /* the newest 10 with queues */
    assert_int_equal(imb.hot_samples, 10);
    assert_true(fabs(imb.global_mean - 1.0) < 1e-9);
    for (size_t i = 0; i < 40; i++)         /* only metrics: nothing to judge */
        w.s[i].nprocs = 0;
    assert_false(tuner_steal_detect(&p, w.s, 40, &imb, &r));
    assert_int_equal(imb.samples, 0);

    tuner_figures f;
    for (size_t i = 0; i < 10; i++)
        w.s[i].lat_p99_us = 200;
    tuner_window_figures(w.s, 10, &f);
    assert_int_equal(f.n, 10);
    assert_true(f.runq_per_p < 0);          /* no queues: unknown, not 0 */
    assert_true(f.lat_p99_us == 200);
    w.s[3].nprocs = 4;                      /* one schedtrace sample: its figure */
    w.s[3].local_runq = w.q[3];
    tuner_window_figures(w.s, 10, &f);
    assert_true(fabs(f.runq_per_p - 5.0) < 1e-9);
}

static void unusable_input(void **state)
{
    (void)state;
    tuner_policy p;
    tuner_policy_defaults(&p);
    p.set &= ~1u;
    tuner_cpu cpu = { 4, 4, 0 };
    tuner_config cur = { 0 };
    tuner_input in = { &p, &cpu, &cur, NULL, 0, 0, 0, NULL, NULL, 0 };
    tuner_recommendation rec;
    assert_int_equal(tuner_recommend(&in, &rec), -22);
    /* No CPU facts at all: the quota rule cannot fire, nothing changes. */
    tuner_policy_defaults(&p);
    tuner_cpu none = { 0, 0, 0 };
    in.cpu = &none;
    assert_int_equal(tuner_recommend(&in, &rec), 0);
    assert_int_equal(rec.nreasons, 0);
    assert_false(rec.changes);
}

int test_rules(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quota_table),
        cmocka_unit_test(even_reason),
        cmocka_unit_test(workers_factor),
        cmocka_unit_test(steal_fires),
        cmocka_unit_test(steal_needs_persistence),
        cmocka_unit_test(steal_quota_first),
        cmocka_unit_test(steal_relaxes),
        cmocka_unit_test(guards),
        cmocka_unit_test(override_and_cooldown),
        cmocka_unit_test(verification),
        cmocka_unit_test(metrics_samples),
        cmocka_unit_test(unusable_input),
    };
    return cmocka_run_group_tests_name("rules", tests, NULL, NULL);
}
