/*
 * agent.c — clocks, backoff and the version offer shared by the agent's
 * threads. See agent.h.
 */
#include "agent/agent.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t agent_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t agent_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

bool agent_wait_until(agent *a, int64_t deadline_mono_ms)
{
    if (agent_mono_ms() >= deadline_mono_ms)
        return false;
    struct timespec ts = { .tv_sec = deadline_mono_ms / 1000,
                           .tv_nsec = (deadline_mono_ms % 1000) * 1000000 };
    return pthread_cond_timedwait(&a->cond, &a->mu, &ts) != ETIMEDOUT;
}

int64_t agent_backoff_ms(unsigned attempt)
{
    int64_t cap = 1000;
    for (unsigned i = 0; i < attempt && cap < 60000; i++)
        cap *= 2;
    if (cap > 60000)
        cap = 60000;
    /* rand_r on a per-call seed would repeat; random() is good enough and
     * its lock keeps it thread-safe in glibc. */
    return (int64_t)(random() % (cap + 1));
}

void agent_offer(agent *a, wire_version *v, bool authoritative)
{
    pthread_mutex_lock(&a->mu);
    bool fresh = authoritative ? v->version != a->seen_version
                               : v->version > a->seen_version;
    if (fresh) {
        if (a->have_offer)
            wire_version_cleanup(&a->offer);
        a->offer = *v;
        a->have_offer = true;
        a->seen_version = v->version;
        pthread_cond_broadcast(&a->cond);
    } else {
        wire_version_cleanup(v);
    }
    pthread_mutex_unlock(&a->mu);
}
