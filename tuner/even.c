/*
 * even.c — rule 2, even-count sizing. A product choice rather than a runtime
 * fact: an odd GOMAXPROCS or worker count at or above even.min is rounded
 * down to even, never below min_procs, and the rule can be switched off per
 * service.
 */
#include <stdio.h>

#include "tuner/rules.h"

int64_t tuner_even(const tuner_policy *p, int64_t value, int64_t floor_value)
{
    if (POL(p, EVEN_ENABLED) == 0 || (double)value < POL(p, EVEN_MIN) || value % 2 == 0)
        return value;
    return value - 1 >= floor_value ? value - 1 : value;
}

bool rule_even(const tuner_policy *p, tuner_config *cfg, tuner_reason *r)
{
    static const tuner_cfg_field fields[] = { TUNER_CFG_GOMAXPROCS, TUNER_CFG_WORKERS };
    static const char *const from_names[] = { "gomaxprocs_from", "workers_from" };
    static const char *const to_names[] = { "gomaxprocs_to", "workers_to" };
    int64_t floor_value = (int64_t)POL(p, QUOTA_MIN_PROCS);
    bool fired = false;
    char what[2][64] = { "", "" };

    reason_init(r, TUNER_RULE_EVEN);
    for (size_t i = 0; i < 2; i++) {
        if (!tuner_config_has(cfg, fields[i]))
            continue;
        int64_t from = cfg->v[fields[i]];
        int64_t to = tuner_even(p, from, floor_value);
        if (to == from)
            continue;
        tuner_config_set(cfg, fields[i], to);
        reason_num(r, from_names[i], (double)from, NULL);
        reason_num(r, to_names[i], (double)to, NULL);
        snprintf(what[i], sizeof what[i], "%s %lld to %lld",
                 i == 0 ? "GOMAXPROCS" : "pool workers", (long long)from, (long long)to);
        fired = true;
    }
    if (!fired)
        return false;
    reason_num(r, "even_min", POL(p, EVEN_MIN), NULL);
    snprintf(r->text, sizeof r->text,
             "Odd counts at or above %d are rounded down to even: %s%s%s.",
             (int)POL(p, EVEN_MIN), what[0], what[0][0] && what[1][0] ? " and " : "",
             what[1]);
    return true;
}
