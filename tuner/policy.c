/*
 * policy.c — rule parameters: defaults, field-by-field merging of service
 * overrides over the global policy, and validation.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "tuner/tuner.h"

const tuner_pol_field_info tuner_pol_fields[TUNER_POL_NFIELDS] = {
    [TUNER_POL_QUOTA_ROUNDING] = { "quota", "rounding", TUNER_POL_ROUNDING, 0, 2 },
    [TUNER_POL_QUOTA_MIN_PROCS] = { "quota", "min_procs", TUNER_POL_INT, 1, TUNER_MAX_PROCS },
    [TUNER_POL_QUOTA_WORKERS_FACTOR] = { "quota", "workers_factor", TUNER_POL_REAL, 0.1, 64 },
    [TUNER_POL_EVEN_ENABLED] = { "even", "enabled", TUNER_POL_BOOL, 0, 1 },
    [TUNER_POL_EVEN_MIN] = { "even", "min", TUNER_POL_INT, 2, TUNER_MAX_PROCS },
    [TUNER_POL_STEAL_THRESHOLD] = { "neighbor_steal", "threshold", TUNER_POL_INT, 1, 256 },
    [TUNER_POL_STEAL_WINDOW] = { "neighbor_steal", "window", TUNER_POL_INT, 1, TUNER_MAX_WINDOW },
    [TUNER_POL_STEAL_PERSISTENCE] = { "neighbor_steal", "persistence", TUNER_POL_REAL, 0.01, 1 },
    [TUNER_POL_STEAL_GOSCHED_EVERY] = { "neighbor_steal", "gosched_every", TUNER_POL_INT, 1, 1e9 },
    [TUNER_POL_STEAL_CHUNK_SIZE] = { "neighbor_steal", "chunk_size", TUNER_POL_INT, 1, 1e9 },
    [TUNER_POL_GUARD_MIN_CHANGE_PCT] = { "guards", "min_change_pct", TUNER_POL_REAL, 0, 100 },
    [TUNER_POL_GUARD_MIN_INTERVAL_S] = { "guards", "min_interval_s", TUNER_POL_INT, 0, 86400 },
    [TUNER_POL_VERIFY_TOLERANCE_PCT] = { "verify", "tolerance_pct", TUNER_POL_REAL, 0, 1000 },
    [TUNER_POL_VERIFY_COOLDOWN_S] = { "verify", "cooldown_s", TUNER_POL_INT, 0, 7 * 86400 },
    [TUNER_POL_VERIFY_WINDOW] = { "verify", "window", TUNER_POL_INT, 1, TUNER_MAX_WINDOW / 2 },
    [TUNER_POL_MODE_DEFAULT] = { "mode", "default", TUNER_POL_MODE, 0, TUNER_MODE_MAX },
};

static const double defaults[TUNER_POL_NFIELDS] = {
    [TUNER_POL_QUOTA_ROUNDING] = TUNER_ROUND_CEIL,
    [TUNER_POL_QUOTA_MIN_PROCS] = 2,
    [TUNER_POL_QUOTA_WORKERS_FACTOR] = 1,
    [TUNER_POL_EVEN_ENABLED] = 1,
    [TUNER_POL_EVEN_MIN] = 4,
    [TUNER_POL_STEAL_THRESHOLD] = 8,
    [TUNER_POL_STEAL_WINDOW] = 30,
    [TUNER_POL_STEAL_PERSISTENCE] = 0.5,
    [TUNER_POL_STEAL_GOSCHED_EVERY] = 1000,
    [TUNER_POL_STEAL_CHUNK_SIZE] = 64,
    [TUNER_POL_GUARD_MIN_CHANGE_PCT] = 10,
    [TUNER_POL_GUARD_MIN_INTERVAL_S] = 60,
    [TUNER_POL_VERIFY_TOLERANCE_PCT] = 10,
    [TUNER_POL_VERIFY_COOLDOWN_S] = 3600,
    [TUNER_POL_VERIFY_WINDOW] = 10,
    [TUNER_POL_MODE_DEFAULT] = 0,
};

#define ALL_FIELDS ((1u << TUNER_POL_NFIELDS) - 1u)

void tuner_policy_defaults(tuner_policy *p)
{
    p->set = ALL_FIELDS;
    memcpy(p->v, defaults, sizeof p->v);
}

void tuner_policy_merge(tuner_policy *dst, const tuner_policy *patch)
{
    for (int f = 0; f < TUNER_POL_NFIELDS; f++) {
        if ((patch->set >> f) & 1u) {
            dst->set |= 1u << f;
            dst->v[f] = patch->v[f];
        }
    }
}

int tuner_policy_validate(const tuner_policy *p, int *bad_field)
{
    for (int f = 0; f < TUNER_POL_NFIELDS; f++) {
        if (!((p->set >> f) & 1u))
            continue;
        const tuner_pol_field_info *fi = &tuner_pol_fields[f];
        double v = p->v[f];
        bool whole = fi->type != TUNER_POL_REAL;
        if (!isfinite(v) || v < fi->min || v > fi->max || (whole && v != floor(v))) {
            if (bad_field)
                *bad_field = f;
            return -EINVAL;
        }
    }
    return 0;
}

int tuner_policy_check_full(const tuner_policy *p, int *bad_field)
{
    if (p->set != ALL_FIELDS) {
        for (int f = 0; f < TUNER_POL_NFIELDS; f++) {
            if (!((p->set >> f) & 1u)) {
                if (bad_field)
                    *bad_field = f;
                break;
            }
        }
        return -EINVAL;
    }
    return tuner_policy_validate(p, bad_field);
}

const char *tuner_rounding_name(int r)
{
    switch (r) {
    case TUNER_ROUND_CEIL: return "ceil";
    case TUNER_ROUND_FLOOR: return "floor";
    case TUNER_ROUND_NEAREST: return "nearest";
    default: return NULL;
    }
}

int tuner_rounding_parse(const char *name)
{
    for (int r = TUNER_ROUND_CEIL; r <= TUNER_ROUND_NEAREST; r++)
        if (strcmp(tuner_rounding_name(r), name) == 0)
            return r;
    return -1;
}
