/*
 * verify.c — did a config change help? The figures of a sample window
 * (medians, so one GC pause or one burst does not decide) and the verdict
 * that compares the window after a change with the window before it.
 */
#include <math.h>
#include <stdlib.h>

#include "tuner/rules.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n), n >= 1; sorts v. */
static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void tuner_window_figures(const tuner_sample *s, size_t n, tuner_figures *out)
{
    double lat[TUNER_MAX_WINDOW], runq[TUNER_MAX_WINDOW];
    /* The newest samples count when a caller hands more than a window. */
    if (n > TUNER_MAX_WINDOW) {
        s += n - TUNER_MAX_WINDOW;
        n = TUNER_MAX_WINDOW;
    }
    out->n = (uint32_t)n;
    out->lat_p99_us = -1;
    out->runq_per_p = -1;
    if (n == 0)
        return;
    /* Run queue per P comes from the samples that have per-P queues
     * (schedtrace); a metrics-only sample (nprocs 0) has none. */
    bool all_lat = true;
    size_t nrunq = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i].nprocs > 0) {
            int64_t total = 0;
            for (uint32_t p = 0; p < s[i].nprocs; p++)
                total += s[i].local_runq[p];
            runq[nrunq++] = (double)total / s[i].nprocs;
        }
        lat[i] = s[i].lat_p99_us;
        all_lat = all_lat && s[i].lat_p99_us >= 0;
    }
    if (nrunq > 0)
        out->runq_per_p = median(runq, nrunq);
    if (all_lat)
        out->lat_p99_us = median(lat, n);
}

const char *tuner_metric_name(tuner_metric m)
{
    return m == TUNER_METRIC_LATENCY_P99 ? "sched_latency_p99_us" : "runq_per_p";
}

const char *tuner_verdict_name(tuner_verdict_kind v)
{
    switch (v) {
    case TUNER_VERDICT_PASSED: return "passed";
    case TUNER_VERDICT_FAILED: return "failed";
    case TUNER_VERDICT_SKIPPED: return "skipped";
    }
    return "unknown";
}

void tuner_verify(const tuner_policy *p, const tuner_figures *before,
                  const tuner_figures *after, tuner_verdict *out)
{
    bool lat = before->lat_p99_us >= 0 && after->lat_p99_us >= 0;
    out->metric = lat ? TUNER_METRIC_LATENCY_P99 : TUNER_METRIC_RUNQ_PER_P;
    out->before = lat ? before->lat_p99_us : before->runq_per_p;
    out->after = lat ? after->lat_p99_us : after->runq_per_p;
    out->change_pct = out->before > 0 ? (out->after - out->before) / out->before * 100 : NAN;

    uint32_t need = (uint32_t)(POL(p, VERIFY_WINDOW) + 1) / 2;
    if (before->n < need || after->n == 0 || out->before < 0 || out->after < 0) {
        out->verdict = TUNER_VERDICT_SKIPPED;
        return;
    }
    double floor_abs = lat ? TUNER_VERIFY_FLOOR_LATENCY_US : TUNER_VERIFY_FLOOR_RUNQ;
    double limit = out->before * (1 + POL(p, VERIFY_TOLERANCE_PCT) / 100);
    bool worse = out->after > limit && out->after - out->before > floor_abs;
    out->verdict = worse ? TUNER_VERDICT_FAILED : TUNER_VERDICT_PASSED;
}
