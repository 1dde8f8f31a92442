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
    static const char *const labels[] = { "GOMAXPROCS", "pool workers" };
    int64_t floor_value = (int64_t)POL(p, QUOTA_MIN_PROCS);
    long long from[2], to[2];
    size_t changed[2], nchanged = 0;

    reason_init(r, TUNER_RULE_EVEN);
    for (size_t i = 0; i < 2; i++) {
        if (!tuner_config_has(cfg, fields[i]))
            continue;
        int64_t was = cfg->v[fields[i]];
        int64_t now = tuner_even(p, was, floor_value);
        if (now == was)
            continue;
        tuner_config_set(cfg, fields[i], now);
        reason_num(r, from_names[i], (double)was, NULL);
        reason_num(r, to_names[i], (double)now, NULL);
        from[nchanged] = was;
        to[nchanged] = now;
        changed[nchanged++] = i;
    }
    if (nchanged == 0)
        return false;
    reason_num(r, "even_min", POL(p, EVEN_MIN), NULL);
    /* One snprintf for the whole sentence, not one per part: each call
     * costs more than the rest of the rule together (bench/tuner.c). */
    int even_min = (int)POL(p, EVEN_MIN);
    if (nchanged == 1)
        snprintf(r->text, sizeof r->text,
                 "Odd counts at or above %d are rounded down to even: %s %lld to %lld.",
                 even_min, labels[changed[0]], from[0], to[0]);
    else
        snprintf(r->text, sizeof r->text,
                 "Odd counts at or above %d are rounded down to even: %s %lld to %lld "
                 "and %s %lld to %lld.",
                 even_min, labels[0], from[0], to[0], labels[1], from[1], to[1]);
    return true;
}
