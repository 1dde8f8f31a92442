/*
 * recommend.c — runs the rules in order (quota, even, neighbor_steal) over
 * the current config, then the guards, and says why.
 */
#include <errno.h>
#include <string.h>

#include "tuner/rules.h"

void reason_init(tuner_reason *r, tuner_rule rule)
{
    memset(r, 0, sizeof *r);
    r->rule = rule;
}

void reason_num(tuner_reason *r, const char *name, double value, const char *word)
{
    if (r->nnum == TUNER_REASON_MAXNUM)
        return;
    r->num[r->nnum++] = (tuner_reason_num){ name, value, word };
}

const char *tuner_rule_name(tuner_rule r)
{
    switch (r) {
    case TUNER_RULE_QUOTA: return "quota";
    case TUNER_RULE_EVEN: return "even";
    case TUNER_RULE_NEIGHBOR_STEAL: return "neighbor_steal";
    }
    return "unknown";
}

/* The value a field effectively has now: the config's, or for GOMAXPROCS
 * what the process reported running. Returns false when unknown. */
static bool effective_current(const tuner_input *in, tuner_cfg_field f, int64_t *out)
{
    if (tuner_config_has(in->current, f)) {
        *out = in->current->v[f];
        return true;
    }
    if (f == TUNER_CFG_GOMAXPROCS && in->nwindow > 0) {
        const tuner_sample *last = &in->window[in->nwindow - 1];
        *out = last->gomaxprocs > 0 ? last->gomaxprocs : (int64_t)last->nprocs;
        return *out > 0;
    }
    return false;
}

int tuner_recommend(const tuner_input *in, tuner_recommendation *out)
{
    int bad;
    if (!in || !out || !in->policy || !in->cpu || !in->current ||
        (in->nwindow > 0 && !in->window) || tuner_policy_check_full(in->policy, &bad) != 0)
        return -EINVAL;
    const tuner_policy *p = in->policy;

    memset(out, 0, sizeof *out);
    out->config = *in->current;

    int32_t quota_procs = 0;
    tuner_reason *r = &out->reasons[0];
    if (rule_quota(p, in->cpu, &out->config, r)) {
        quota_procs = (int32_t)out->config.v[TUNER_CFG_GOMAXPROCS];
        out->nreasons++;
    }
    r = &out->reasons[out->nreasons];
    if (rule_even(p, &out->config, r)) {
        quota_procs = (int32_t)out->config.v[TUNER_CFG_GOMAXPROCS];
        out->nreasons++;
    }
    r = &out->reasons[out->nreasons];
    if (rule_steal(p, in->window, in->nwindow, quota_procs, in->current, &out->config,
                   r, &out->imbalance))
        out->nreasons++;

    /* min_change: a value too close to the current one is held back. The
     * steal scope is a choice, not a size, so it is never held. */
    for (int f = 0; f < TUNER_CFG_NFIELDS; f++) {
        int64_t cur;
        if (f == TUNER_CFG_STEAL_SCOPE || !tuner_config_has(&out->config, (tuner_cfg_field)f) ||
            !effective_current(in, (tuner_cfg_field)f, &cur))
            continue;
        int64_t want = out->config.v[f];
        if (!tuner_guard_small_change(p, cur, want))
            continue;
        out->held[out->nheld++] = (tuner_held){ (tuner_cfg_field)f, cur, want };
        if (tuner_config_has(in->current, (tuner_cfg_field)f))
            out->config.v[f] = cur;
        else
            tuner_config_unset(&out->config, (tuner_cfg_field)f);
    }

    out->changes = !tuner_config_equal(&out->config, in->current);
    int64_t interval_ms = (int64_t)p->v[TUNER_POL_GUARD_MIN_INTERVAL_S] * 1000;
    out->next_change_ms = in->last_change_ms > 0 ? in->last_change_ms + interval_ms
                                                 : in->now_ms;
    return 0;
}
