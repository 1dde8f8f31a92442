/*
 * poll.c — the config long-poll: GET /api/v1/agents/{id}/config?index=N
 * &wait=5m, held by the server until a version other than N exists. Each
 * new version is offered to the applier. See agent.h.
 */
#include "agent/agent.h"

#include <stdio.h>

#include "agent/http.h"
#include "agent/out.h"

/* The server holds the request up to wait + wait/16 of jitter. */
#define POLL_WAIT_MS (5 * 60 * 1000)
#define POLL_TIMEOUT_MS (POLL_WAIT_MS + POLL_WAIT_MS / 16 + 10000)

/* Sleeps until the delay passed or the agent stops; false when stopping. */
static bool nap(agent *a, int64_t ms)
{
    int64_t until = agent_mono_ms() + ms;
    pthread_mutex_lock(&a->mu);
    while (!a->stopping && agent_wait_until(a, until))
        ;
    bool go_on = !a->stopping;
    pthread_mutex_unlock(&a->mu);
    return go_on;
}

void *poll_thread(void *arg)
{
    agent *a = arg;
    pthread_mutex_lock(&a->mu);
    int64_t index = a->seen_version < 0 ? 0 : a->seen_version;
    pthread_mutex_unlock(&a->mu);
    unsigned attempt = 0;
    bool complained = false;
    for (;;) {
        char url[1400], err[256] = "";
        snprintf(url, sizeof url, "%s/api/v1/agents/%s/config?index=%lld&wait=5m",
                 a->o.server, a->o.id, (long long)index);
        http_resp r;
        int64_t asked = agent_mono_ms();
        int rc = http_call("GET", url, NULL, 0, POLL_TIMEOUT_MS, &r, err,
                           sizeof err);
        bool ok = false, same = false;
        if (rc == 0 && r.status == 200) {
            wire_version v;
            if (wire_version_parse(r.body, r.len, &v, err, sizeof err) == 0) {
                ok = true;
                int64_t got = v.version;
                same = got == index;
                if (!same)
                    agent_offer(a, &v, true);
                else
                    wire_version_cleanup(&v);
                index = got;
            } else if (!complained) {
                out_log("unreadable config from the server: %s", err);
                complained = true;
            }
        }
        /* A 404 is normal until the first push has registered us. Errors
         * here are not logged: the pusher reports the server's state. */
        http_resp_cleanup(&r);
        if (ok) {
            attempt = 0;
            pthread_mutex_lock(&a->mu);
            bool stop = a->stopping;
            pthread_mutex_unlock(&a->mu);
            if (stop)
                break;
            /* A server that does not hold the request must not make this
             * a busy loop. */
            if (same && agent_mono_ms() - asked < 1000 && !nap(a, 1000))
                break;
            continue;
        }
        int64_t d = agent_backoff_ms(attempt);
        if (attempt < 16)
            attempt++;
        if (!nap(a, d))
            break;
    }
    return NULL;
}
