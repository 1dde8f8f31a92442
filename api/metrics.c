/*
 * metrics.c — GET /metrics: the server's health in the Prometheus text
 * format. server/metrics.c keeps the counters and writes the text; this
 * file reads what the store knows at scrape time (its counters, and the
 * agents by mode and staleness, with each agent's effective mode decided by
 * its policy as everywhere else in the API).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "server/metrics.h"

/* Not seen for this long: stale. The dashboard marks agents the same way
 * (web/fleet.js STALE_MS, web/agent.js). */
#define STALE_MS 60000

static int by_service(const void *a, const void *b)
{
    return strcmp(((const store_census_row *)a)->service, ((const store_census_row *)b)->service);
}

/* Fills x->agents from the store's census: 0, or a negative code. */
static int census(api_ctx *ctx, metrics_scrape *x)
{
    store_census_row *rows = NULL;
    size_t n = 0;
    int rc = store_agent_census(ctx->store, ctx->now_ms() - STALE_MS, &rows, &n);
    if (rc)
        return rc;
    /* Sorted by service, so that the rows of agents that follow their
     * policy need one policy read per service. */
    if (n > 1)
        qsort(rows, n, sizeof *rows, by_service);
    char pol_of[STORE_ID_MAX + 1] = "";
    bool have_pol = false;
    tuner_policy pol;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const store_census_row *r = &rows[i];
        int mode = (int)r->mode;
        if (r->mode == STORE_MODE_DEFAULT) {
            if (!have_pol || strcmp(pol_of, r->service) != 0) {
                rc = store_policy_effective(ctx->store, r->service, &pol);
                snprintf(pol_of, sizeof pol_of, "%s", r->service);
                have_pol = rc == 0;
            }
            mode = (int)pol.v[TUNER_POL_MODE_DEFAULT];
        }
        if (rc == 0 && mode >= STORE_MODE_RECOMMEND && mode <= STORE_MODE_PINNED) {
            x->agents[mode][r->stale ? 1 : 0] += r->agents;
            x->agents_dropped += r->dropped_samples;
        }
    }
    free(rows);
    return rc;
}

void h_metrics(api_call *c)
{
    store_stats st;
    store_stats_get(c->ctx->store, &st);
    metrics_scrape x;
    memset(&x, 0, sizeof x);
    x.store = c->ctx->store ? &st : NULL;
    x.census_ok = c->ctx->store && census(c->ctx, &x) == 0;
    if (!x.census_ok)
        memset(x.agents, 0, sizeof x.agents);
    char *text = NULL;
    size_t len = 0;
    if (metrics_render(c->ctx->metrics, &x, &text, &len)) {
        reply_error(c, 500, "internal", NULL, "out of memory");
        return;
    }
    c->resp->status = 200;
    c->resp->body = text;
    c->resp->len = len;
    c->resp->content_type = METRICS_CONTENT_TYPE;
}
