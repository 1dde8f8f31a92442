/*
 * rules.h — internal to tuner/: how the rule files report to recommend.c.
 * Each rule reads the policy and the facts and, when it fires, changes the
 * config it is given and fills one reason.
 */
#ifndef GOTUNED_TUNER_RULES_H
#define GOTUNED_TUNER_RULES_H

#include "tuner/tuner.h"

#define POL(p, f) ((p)->v[TUNER_POL_##f])

/* Appends a number (or a word, when word is non-NULL) to a reason. */
void reason_num(tuner_reason *r, const char *name, double value, const char *word);
void reason_init(tuner_reason *r, tuner_rule rule);

/* quota.c: sets gomaxprocs and pool.workers; true when it fired. */
bool rule_quota(const tuner_policy *p, const tuner_cpu *cpu, tuner_config *cfg,
                tuner_reason *r);

/* even.c: rounds gomaxprocs and pool.workers down to even; true when it
 * changed either. */
bool rule_even(const tuner_policy *p, tuner_config *cfg, tuner_reason *r);

/* steal.c: tightens or relaxes the pool's stealing knobs. quota_procs is
 * what the quota rule chose (0 when it did not fire). */
bool rule_steal(const tuner_policy *p, const tuner_sample *win, size_t n,
                int32_t quota_procs, const tuner_config *current,
                tuner_config *cfg, tuner_reason *r, tuner_imbalance *imb);

#endif
