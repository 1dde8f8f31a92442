/*
 * guards.c — the change guards: ignore changes smaller than
 * max(1, min_change_pct of the current value), and allow at most one change
 * per agent per min_interval.
 */
#include <math.h>

#include "tuner/rules.h"

bool tuner_guard_small_change(const tuner_policy *p, int64_t cur, int64_t want)
{
    double step = POL(p, GUARD_MIN_CHANGE_PCT) / 100.0 * fabs((double)cur);
    if (step < 1)
        step = 1;
    return want != cur && fabs((double)(want - cur)) < step;
}
