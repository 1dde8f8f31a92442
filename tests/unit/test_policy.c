/* Tests for tuner/policy.c and tuner/config.c. */
#include <math.h>
#include <string.h>

#include "tests/unit/registry.h"
#include "tuner/tuner.h"

static void defaults_are_full_and_valid(void **state)
{
    (void)state;
    tuner_policy p;
    int bad = -1;
    tuner_policy_defaults(&p);
    assert_int_equal(tuner_policy_check_full(&p, &bad), 0);
    assert_true(p.v[TUNER_POL_QUOTA_ROUNDING] == TUNER_ROUND_CEIL);
    assert_true(p.v[TUNER_POL_QUOTA_MIN_PROCS] == 2);
    assert_true(p.v[TUNER_POL_EVEN_MIN] == 4);
    assert_true(p.v[TUNER_POL_STEAL_THRESHOLD] == 8);
    assert_true(p.v[TUNER_POL_STEAL_WINDOW] == 30);
    assert_true(p.v[TUNER_POL_STEAL_PERSISTENCE] == 0.5);
}

static void merge_field_by_field(void **state)
{
    (void)state;
    tuner_policy global, patch = { 0 };
    tuner_policy_defaults(&global);
    patch.set = 1u << TUNER_POL_QUOTA_ROUNDING | 1u << TUNER_POL_STEAL_WINDOW;
    patch.v[TUNER_POL_QUOTA_ROUNDING] = TUNER_ROUND_FLOOR;
    patch.v[TUNER_POL_STEAL_WINDOW] = 10;
    patch.v[TUNER_POL_EVEN_MIN] = 99; /* not set: must not leak */
    tuner_policy_merge(&global, &patch);
    assert_true(global.v[TUNER_POL_QUOTA_ROUNDING] == TUNER_ROUND_FLOOR);
    assert_true(global.v[TUNER_POL_STEAL_WINDOW] == 10);
    assert_true(global.v[TUNER_POL_EVEN_MIN] == 4);
    assert_true(global.v[TUNER_POL_QUOTA_MIN_PROCS] == 2);
}

static void validation(void **state)
{
    (void)state;
    static const struct { tuner_pol_field f; double v; } bad[] = {
        { TUNER_POL_STEAL_WINDOW, 0 },
        { TUNER_POL_STEAL_WINDOW, TUNER_MAX_WINDOW + 1 },
        { TUNER_POL_STEAL_PERSISTENCE, 2 },
        { TUNER_POL_QUOTA_MIN_PROCS, 2.5 },
        { TUNER_POL_QUOTA_ROUNDING, 3 },
        { TUNER_POL_EVEN_ENABLED, 0.5 },
        { TUNER_POL_GUARD_MIN_CHANGE_PCT, NAN },
        { TUNER_POL_GUARD_MIN_INTERVAL_S, -1 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tuner_policy p = { 0 };
        int field = -1;
        p.set = 1u << bad[i].f;
        p.v[bad[i].f] = bad[i].v;
        assert_int_equal(tuner_policy_validate(&p, &field), -22);
        assert_int_equal(field, bad[i].f);
    }
    tuner_policy partial = { .set = 1u << TUNER_POL_EVEN_MIN, .v[TUNER_POL_EVEN_MIN] = 6 };
    int field = -1;
    assert_int_equal(tuner_policy_validate(&partial, &field), 0);
    assert_int_equal(tuner_policy_check_full(&partial, &field), -22);
}

static void names(void **state)
{
    (void)state;
    assert_int_equal(tuner_rounding_parse("floor"), TUNER_ROUND_FLOOR);
    assert_int_equal(tuner_rounding_parse("up"), -1);
    assert_string_equal(tuner_rounding_name(TUNER_ROUND_NEAREST), "nearest");
    assert_int_equal(tuner_scope_parse("all"), TUNER_SCOPE_ALL);
    assert_int_equal(tuner_scope_parse("sideways"), -1);
    assert_null(tuner_scope_name(7));
    assert_int_equal(tuner_cfg_field_lookup("pool.steal_scope"), TUNER_CFG_STEAL_SCOPE);
    assert_int_equal(tuner_cfg_field_lookup("pool"), -1);
}

static void config_ops(void **state)
{
    (void)state;
    tuner_config a = { 0 }, b = { 0 };
    assert_true(tuner_config_equal(&a, &b));
    tuner_config_set(&a, TUNER_CFG_GOMAXPROCS, 4);
    assert_false(tuner_config_equal(&a, &b));
    tuner_config_set(&b, TUNER_CFG_WORKERS, 8);
    tuner_config_merge(&b, &a);
    assert_true(tuner_config_has(&b, TUNER_CFG_GOMAXPROCS));
    assert_int_equal(b.v[TUNER_CFG_GOMAXPROCS], 4);
    assert_int_equal(b.v[TUNER_CFG_WORKERS], 8);
    tuner_config_unset(&b, TUNER_CFG_WORKERS);
    assert_true(tuner_config_equal(&a, &b));
}

int test_policy(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_full_and_valid),
        cmocka_unit_test(merge_field_by_field),
        cmocka_unit_test(validation),
        cmocka_unit_test(names),
        cmocka_unit_test(config_ops),
    };
    return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
