/*
 * quota.c — rule 1, quota-derived parallelism: GOMAXPROCS from the tightest
 * CPU bandwidth limit, rounded as the policy says (ceil is Go 1.25's rule,
 * floor automaxprocs'), never below min_procs and never above the CPUs the
 * process may run on. Pool workers follow at a per-service factor.
 */
#include <math.h>
#include <stdio.h>

#include "tuner/rules.h"

static double round_limit(int rounding, double x)
{
    switch (rounding) {
    case TUNER_ROUND_FLOOR: return floor(x);
    case TUNER_ROUND_NEAREST: return floor(x + 0.5);
    default: return ceil(x);
    }
}

/* The CPUs the process may run on: the affinity mask, else the host's
 * count, else 0 (unknown). */
static int32_t usable_cpus(const tuner_cpu *cpu)
{
    if (cpu->affinity > 0)
        return cpu->affinity;
    return cpu->num_cpu > 0 ? cpu->num_cpu : 0;
}

int32_t tuner_quota_procs(const tuner_policy *p, const tuner_cpu *cpu)
{
    int32_t cpus = usable_cpus(cpu);
    double procs;
    if (cpu->limit > 0 && isfinite(cpu->limit))
        procs = round_limit((int)POL(p, QUOTA_ROUNDING), cpu->limit);
    else if (cpus > 0)
        procs = cpus;
    else
        return 0;
    if (procs < POL(p, QUOTA_MIN_PROCS))
        procs = POL(p, QUOTA_MIN_PROCS);
    if (cpus > 0 && procs > cpus)
        procs = cpus;
    if (procs > TUNER_MAX_PROCS)
        procs = TUNER_MAX_PROCS;
    return procs < 1 ? 1 : (int32_t)procs;
}

bool rule_quota(const tuner_policy *p, const tuner_cpu *cpu, tuner_config *cfg,
                tuner_reason *r)
{
    int32_t procs = tuner_quota_procs(p, cpu);
    if (procs == 0)
        return false;
    int32_t cpus = usable_cpus(cpu);
    double factor = POL(p, QUOTA_WORKERS_FACTOR);
    double w = floor(procs * factor + 0.5);
    int64_t workers = w < 1 ? 1 : (int64_t)w;

    tuner_config_set(cfg, TUNER_CFG_GOMAXPROCS, procs);
    tuner_config_set(cfg, TUNER_CFG_WORKERS, workers);

    const char *rounding = tuner_rounding_name((int)POL(p, QUOTA_ROUNDING));
    reason_init(r, TUNER_RULE_QUOTA);
    if (cpu->limit > 0 && isfinite(cpu->limit)) {
        reason_num(r, "limit", cpu->limit, NULL);
        snprintf(r->text, sizeof r->text,
                 "CPU limit %.2f rounded %s (%s) gives %d Ps, within [%d, %d]; "
                 "pool workers %lld (factor %.2f).",
                 cpu->limit,
                 POL(p, QUOTA_ROUNDING) == TUNER_ROUND_CEIL ? "up"
                 : POL(p, QUOTA_ROUNDING) == TUNER_ROUND_FLOOR ? "down" : "to nearest",
                 rounding, procs, (int)POL(p, QUOTA_MIN_PROCS), cpus,
                 (long long)workers, factor);
    } else {
        reason_num(r, "limit", 0, "none");
        snprintf(r->text, sizeof r->text,
                 "No CPU bandwidth limit: GOMAXPROCS follows the %d CPUs the process "
                 "may run on; pool workers %lld (factor %.2f).",
                 cpus, (long long)workers, factor);
    }
    reason_num(r, "rounding", 0, rounding);
    reason_num(r, "min_procs", POL(p, QUOTA_MIN_PROCS), NULL);
    reason_num(r, "cpus", cpus, NULL);
    reason_num(r, "gomaxprocs", procs, NULL);
    reason_num(r, "workers_factor", factor, NULL);
    reason_num(r, "workers", (double)workers, NULL);
    return true;
}
