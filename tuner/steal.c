/*
 * steal.c — rule 3, neighbour steal. The Go runtime steals from all Ps in a
 * random order, so "neighbour imbalance" is our own signal: a P whose local
 * queue is at or above the threshold while a neighbour (index ±1, wrapping)
 * is empty, sample after sample, points at long non-yielding work pinned to
 * one P. The remedies are application knobs: a lower pool steal threshold, a
 * wider steal scope, and gosched_every / chunk_size for long loops; they are
 * relaxed again after a calm window.
 *
 * One exception comes first: a process running more Ps than its CPU limit
 * shows queues piling up on Ps that have no thread to run them. There the
 * quota change is the remedy, and this rule says so instead of tuning.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tuner/rules.h"

static void hot_set(tuner_reason *r, uint32_t i)
{
    uint64_t bit = 1ull << (i % 64);
    if (!(r->hot[i / 64] & bit)) {
        r->hot[i / 64] |= bit;
        r->nhot++;
    }
}

/* Appends the n bytes at s to buf (len bytes, *used of them taken, *used <
 * len) as snprintf would: what fits before a terminating NUL, while *used
 * grows by n, so that *used >= len says the text was cut. */
static void append(char *buf, size_t len, size_t *used, const char *s, size_t n)
{
    size_t room = len - *used - 1;
    memcpy(buf + *used, s, n < room ? n : room);
    buf[*used + (n < room ? n : room)] = '\0';
    *used += n;
}

/* Writes up to max hot P indices as "1, 5, 9" into buf. This runs on every
 * evaluation, so it is kept cheap (bench/tuner.c): the bitmap is read a word
 * at a time, set bits only (testing all TUNER_MAX_PROCS bits one by one cost
 * a third of a 16-P evaluation), and the numbers are written by hand (an
 * snprintf per P cost more than the rest of the list). */
static void hot_list(const tuner_reason *r, char *buf, size_t len, int max)
{
    size_t used = 0;
    int shown = 0;
    buf[0] = '\0';
    for (uint32_t word = 0; word < TUNER_MAX_PROCS / 64 && used < len; word++) {
        for (uint64_t bits = r->hot[word]; bits && used < len; bits &= bits - 1) {
            uint32_t i = word * 64 + (uint32_t)__builtin_ctzll(bits);
            if (shown == max) {
                append(buf, len, &used, ", ...", 5);
                return;
            }
            /* ", " (after the first) and the index's digits, right-aligned. */
            char num[16];
            size_t at = sizeof num;
            do {
                num[--at] = (char)('0' + i % 10);
                i /= 10;
            } while (i > 0);
            if (shown) {
                num[--at] = ' ';
                num[--at] = ',';
            }
            append(buf, len, &used, num + at, sizeof num - at);
            shown++;
        }
    }
}

bool tuner_steal_detect(const tuner_policy *p, const tuner_sample *win,
                        size_t n, tuner_imbalance *imb, tuner_reason *r)
{
    size_t window = (size_t)POL(p, STEAL_WINDOW);
    int64_t threshold = (int64_t)POL(p, STEAL_THRESHOLD);
    memset(imb, 0, sizeof *imb);
    memset(r->hot, 0, sizeof r->hot);
    r->nhot = 0;

    /* The window is the newest `window` samples that have per-P queues;
     * metrics-only samples (nprocs 0) say nothing about neighbours. */
    size_t first = n, used = 0;
    while (first > 0 && used < window)
        used += win[--first].nprocs > 0;

    double ratio_sum = 0, local_sum = 0, global_sum = 0;
    uint32_t nglobal = 0;
    for (size_t s = first; s < n; s++) {
        const tuner_sample *smp = &win[s];
        uint32_t np = smp->nprocs;
        if (np == 0)
            continue;
        bool hot = false;
        int64_t total = 0, max = 0;
        for (uint32_t i = 0; i < np; i++) {
            int64_t q = smp->local_runq[i];
            total += q;
            if (q > max)
                max = q;
            if (np < 2 || q < threshold)
                continue;
            if (smp->local_runq[(i + np - 1) % np] == 0 ||
                smp->local_runq[(i + 1) % np] == 0) {
                hot = true;
                hot_set(r, i);
            }
        }
        if (np > 0) {
            double mean = (double)total / np;
            local_sum += mean;
            if (mean > 0)
                ratio_sum += (double)max / mean;
        }
        if (smp->global_runq >= 0) {
            global_sum += (double)smp->global_runq;
            if ((double)smp->global_runq > imb->global_max)
                imb->global_max = (double)smp->global_runq;
            nglobal++;
        }
        imb->hot_samples += hot;
    }
    imb->samples = (uint32_t)used;
    if (used > 0) {
        imb->max_mean = ratio_sum / (double)used;
        imb->local_mean = local_sum / (double)used;
    }
    if (nglobal > 0)
        imb->global_mean = global_sum / nglobal;
    double needed = ceil(POL(p, STEAL_PERSISTENCE) * (double)window);
    return imb->hot_samples > 0 && (double)imb->hot_samples >= needed;
}

/* True when the current config has the stealing knobs tightened. */
static bool tightened(const tuner_policy *p, const tuner_config *c)
{
    return (tuner_config_has(c, TUNER_CFG_STEAL_THRESHOLD) &&
            c->v[TUNER_CFG_STEAL_THRESHOLD] < (int64_t)POL(p, STEAL_THRESHOLD)) ||
           (tuner_config_has(c, TUNER_CFG_STEAL_SCOPE) &&
            c->v[TUNER_CFG_STEAL_SCOPE] == TUNER_SCOPE_ALL) ||
           tuner_config_has(c, TUNER_CFG_GOSCHED_EVERY) ||
           tuner_config_has(c, TUNER_CFG_CHUNK_SIZE);
}

static int64_t halve_or_default(const tuner_config *c, tuner_cfg_field f, double dflt)
{
    if (!tuner_config_has(c, f))
        return (int64_t)dflt;
    int64_t v = c->v[f] / 2;
    return v < 1 ? 1 : v;
}

bool rule_steal(const tuner_policy *p, const tuner_sample *win, size_t n,
                int32_t quota_procs, const tuner_config *current,
                tuner_config *cfg, tuner_reason *r, tuner_imbalance *imb)
{
    reason_init(r, TUNER_RULE_NEIGHBOR_STEAL);
    bool persistent = tuner_steal_detect(p, win, n, imb, r);
    int64_t threshold = (int64_t)POL(p, STEAL_THRESHOLD);
    size_t window = (size_t)POL(p, STEAL_WINDOW);
    char hot[96];
    hot_list(r, hot, sizeof hot, 12);

    reason_num(r, "threshold", (double)threshold, NULL);
    reason_num(r, "window", (double)window, NULL);
    reason_num(r, "samples", imb->samples, NULL);
    reason_num(r, "hot_samples", imb->hot_samples, NULL);
    reason_num(r, "needed", ceil(POL(p, STEAL_PERSISTENCE) * (double)window), NULL);

    if (persistent) {
        const tuner_sample *last = &win[n - 1];
        int32_t running = last->gomaxprocs > 0 ? last->gomaxprocs : (int32_t)last->nprocs;
        if (quota_procs > 0 && running > quota_procs) {
            reason_num(r, "running_procs", running, NULL);
            reason_num(r, "quota_procs", quota_procs, NULL);
            snprintf(r->text, sizeof r->text,
                     "Ps %s held %lld+ queued goroutines beside an idle neighbour in %u of %u "
                     "samples, but the process runs %d Ps on a CPU limit that allows %d: "
                     "queues pile up on Ps with no thread to run them, so the GOMAXPROCS "
                     "change comes first and stealing is left as it is.",
                     hot, (long long)threshold, imb->hot_samples, imb->samples, running,
                     quota_procs);
            return true;
        }
        int64_t cur = tuner_config_has(current, TUNER_CFG_STEAL_THRESHOLD)
                          ? current->v[TUNER_CFG_STEAL_THRESHOLD] : threshold;
        int64_t next = cur / 2 < 2 ? 2 : cur / 2;
        int64_t gosched = halve_or_default(current, TUNER_CFG_GOSCHED_EVERY,
                                           POL(p, STEAL_GOSCHED_EVERY));
        int64_t chunk = halve_or_default(current, TUNER_CFG_CHUNK_SIZE,
                                         POL(p, STEAL_CHUNK_SIZE));
        tuner_config_set(cfg, TUNER_CFG_STEAL_THRESHOLD, next);
        tuner_config_set(cfg, TUNER_CFG_STEAL_SCOPE, TUNER_SCOPE_ALL);
        tuner_config_set(cfg, TUNER_CFG_GOSCHED_EVERY, gosched);
        tuner_config_set(cfg, TUNER_CFG_CHUNK_SIZE, chunk);
        reason_num(r, "steal_threshold_from", (double)cur, NULL);
        reason_num(r, "steal_threshold_to", (double)next, NULL);
        reason_num(r, "steal_scope", 0, "all");
        reason_num(r, "gosched_every", (double)gosched, NULL);
        reason_num(r, "chunk_size", (double)chunk, NULL);
        snprintf(r->text, sizeof r->text,
                 "Ps %s held %lld+ queued goroutines beside an idle neighbour in %u of %u "
                 "samples: lower the pool steal threshold %lld to %lld, steal from all "
                 "workers, and break long loops (gosched every %lld, chunks of %lld).",
                 hot, (long long)threshold, imb->hot_samples, imb->samples,
                 (long long)cur, (long long)next, (long long)gosched, (long long)chunk);
        return true;
    }

    /* Relax after a calm window: nothing hot in a full window. */
    if (imb->hot_samples == 0 && imb->samples >= window && tightened(p, current)) {
        int64_t cur = tuner_config_has(current, TUNER_CFG_STEAL_THRESHOLD)
                          ? current->v[TUNER_CFG_STEAL_THRESHOLD] : threshold;
        int64_t next = cur * 2 > threshold ? threshold : cur * 2;
        tuner_config_set(cfg, TUNER_CFG_STEAL_THRESHOLD, next);
        tuner_config_set(cfg, TUNER_CFG_STEAL_SCOPE, TUNER_SCOPE_NEIGHBORS);
        tuner_config_unset(cfg, TUNER_CFG_GOSCHED_EVERY);
        tuner_config_unset(cfg, TUNER_CFG_CHUNK_SIZE);
        reason_num(r, "steal_threshold_from", (double)cur, NULL);
        reason_num(r, "steal_threshold_to", (double)next, NULL);
        reason_num(r, "steal_scope", 0, "neighbors");
        snprintf(r->text, sizeof r->text,
                 "No P was hot beside an idle neighbour in the last %u samples: relax the "
                 "pool steal threshold %lld to %lld, steal from neighbours again, and drop "
                 "the loop-breaking settings.",
                 imb->samples, (long long)cur, (long long)next);
        return true;
    }
    return false;
}
