/*
 * recommend.c — runs the rules in order (quota, even, neighbor_steal) over
 * the current config, then the guards (override, cool-down, min_change,
 * min_interval), and says why.
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

const char *tuner_hold_name(tuner_hold h)
{
    switch (h) {
    case TUNER_HOLD_MIN_CHANGE: return "min_change";
    case TUNER_HOLD_OVERRIDE: return "override";
    case TUNER_HOLD_COOLDOWN: return "cooldown";
    }
    return "unknown";
}

/* Puts field f of the recommendation back to the current config's value
 * (or unsets it) and records why. */
static void hold(const tuner_input *in, tuner_recommendation *out, tuner_cfg_field f,
                 int64_t cur, tuner_hold why)
{
    out->held[out->nheld++] = (tuner_held){ f, cur, out->config.v[f], why };
    if (tuner_config_has(in->current, f))
        out->config.v[f] = in->current->v[f];
    else
        tuner_config_unset(&out->config, f);
}

/* The override and cool-down guards: the operator's values stay as they
 * are, and a value a rollback rejected is not proposed again until the
 * cool-down ends. At most one hold per field. */
static void hold_pinned_and_rejected(const tuner_input *in, tuner_recommendation *out,
                                     uint32_t *held_mask)
{
    const tuner_config *ov = in->override, *rj = in->rejected;
    bool cooling = rj && in->now_ms < in->rejected_until_ms;
    for (int i = 0; i < TUNER_CFG_NFIELDS; i++) {
        tuner_cfg_field f = (tuner_cfg_field)i;
        if (!tuner_config_has(&out->config, f))
            continue;
        int64_t cur = tuner_config_has(in->current, f) ? in->current->v[f] : -1;
        int64_t want = out->config.v[f];
        if (want == cur)
            continue;
        if (ov && tuner_config_has(ov, f)) {
            hold(in, out, f, cur, TUNER_HOLD_OVERRIDE);
            out->config.v[f] = ov->v[f];
            out->config.set |= 1u << f;
        } else if (cooling && tuner_config_has(rj, f) && rj->v[f] == want) {
            hold(in, out, f, cur, TUNER_HOLD_COOLDOWN);
        } else {
            continue;
        }
        *held_mask |= 1u << f;
    }
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

    uint32_t held_mask = 0;
    hold_pinned_and_rejected(in, out, &held_mask);

    /* min_change: a value too close to the current one is held back. The
     * steal scope is a choice, not a size, so it is never held. */
    for (int i = 0; i < TUNER_CFG_NFIELDS; i++) {
        tuner_cfg_field f = (tuner_cfg_field)i;
        int64_t cur;
        if (f == TUNER_CFG_STEAL_SCOPE || (held_mask >> f & 1u) ||
            !tuner_config_has(&out->config, f) || !effective_current(in, f, &cur))
            continue;
        if (tuner_guard_small_change(p, cur, out->config.v[f]))
            hold(in, out, f, cur, TUNER_HOLD_MIN_CHANGE);
    }

    out->changes = !tuner_config_equal(&out->config, in->current);
    int64_t interval_ms = (int64_t)p->v[TUNER_POL_GUARD_MIN_INTERVAL_S] * 1000;
    out->next_change_ms = in->last_change_ms > 0 ? in->last_change_ms + interval_ms
                                                 : in->now_ms;
    return 0;
}
