/*
 * push.c — telemetry pushes: batches of at most AGENT_BATCH_MAX samples
 * with the CPU facts re-probed every push, on an interval, with full-jitter
 * backoff while the server is down. See agent.h.
 */
#include "agent/agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/http.h"
#include "agent/out.h"
#include "cgroup/cg.h"

/* Guarded by push_mu: what the last push found, for one log line per
 * change. */
static bool server_down;
static uint64_t dropped_logged;

/* Locks push_mu before the monotonic deadline; false when it passed. */
static bool lock_push(agent *a, int64_t deadline)
{
    struct timespec ts = { .tv_sec = deadline / 1000,
                           .tv_nsec = (deadline % 1000) * 1000000 };
    return pthread_mutex_clocklock(&a->push_mu, CLOCK_MONOTONIC, &ts) == 0;
}

static void note_down(const char *why)
{
    if (!server_down)
        out_log("server unreachable (%s); keeping samples and retrying", why);
    server_down = true;
}

/* One request: up to AGENT_BATCH_MAX samples. *left says whether samples
 * remain after it. Returns 0, -EAGAIN (try later) or another -errno. */
static int push_once(agent *a, const cg_cpu *cpu, bool have_cpu,
                     int64_t deadline, size_t *max, bool *left)
{
    char err[256] = "";
    char *body = NULL;
    http_resp r = { 0 };
    int rc = 0;

    pthread_mutex_lock(&a->mu);
    json_t *arr = json_array();
    size_t n = backlog_count(a->bl), k = 0, bytes = 0;
    uint64_t upto = 0;
    for (; arr && k < n && k < *max && bytes < AGENT_BATCH_BYTES; k++) {
        const tuner_sample *s = backlog_get(a->bl, k);
        json_array_append_new(arr, wire_sample(s));
        bytes += 160 + 8 * (size_t)s->nprocs; /* an upper bound per sample */
        upto = backlog_seq(a->bl, k);
    }
    uint64_t dropped = backlog_dropped(a->bl);
    wire_facts f = { .id = a->o.id, .service = a->o.service,
                     .hostname = a->hostname, .pid = (long)a->child_pid,
                     .cpu = have_cpu ? cpu : NULL,
                     .applied_version = a->applied_version,
                     .dropped = dropped, .legacy = a->legacy };
    body = arr ? wire_batch(&f, arr, NULL) : NULL;
    pthread_mutex_unlock(&a->mu);
    if (!body)
        return -ENOMEM;

    int64_t left_ms = deadline - agent_mono_ms();
    if (left_ms <= 0) {
        rc = -ETIMEDOUT;
        goto out;
    }
    char url[1200];
    snprintf(url, sizeof url, "%s/api/v1/telemetry", a->o.server);
    rc = http_call("POST", url, body, strlen(body),
                   left_ms < 10000 ? left_ms : 10000, &r, err, sizeof err);
    if (rc < 0) {
        note_down(err);
        rc = -EAGAIN;
        goto out;
    }
    if (r.status == 200) {
        if (server_down)
            out_log("server reachable again");
        server_down = false;
        pthread_mutex_lock(&a->mu);
        backlog_release(a->bl, upto);
        *left = backlog_count(a->bl) > 0;
        /* A drop episode ends with a push that saw no new drop. */
        uint64_t now_dropped = backlog_dropped(a->bl);
        bool ended = a->dropping && now_dropped == dropped;
        if (ended)
            a->dropping = false;
        pthread_mutex_unlock(&a->mu);
        if (ended && dropped > dropped_logged) {
            out_log("%llu samples dropped in all, oldest first (backlog full)",
                    (unsigned long long)dropped);
            dropped_logged = dropped;
        }
        wire_version v;
        int has = wire_telemetry_answer(r.body, r.len, &v, err, sizeof err);
        if (has > 0)
            agent_offer(a, &v, false);
        goto out;
    }
    if (r.status == 422 && !f.legacy) {
        char field[128];
        wire_error_field(r.body, r.len, field, sizeof field);
        if (strncmp(field, "agent.throttling", 16) == 0 ||
            strncmp(field, "agent.dropped_samples", 21) == 0) {
            out_log("the server does not know %s yet; sending without "
                    "throttling and dropped_samples", field);
            pthread_mutex_lock(&a->mu);
            a->legacy = true;
            pthread_mutex_unlock(&a->mu);
            *left = true;
            goto out;
        }
    }
    if (r.status == 413 && k > 1) {
        *max = k / 2; /* our size estimate was off: smaller batches */
        *left = true;
        goto out;
    }
    if (r.status >= 400 && r.status < 500 && r.status != 408 &&
        r.status != 429) {
        /* The server will never take this batch: drop it rather than block
         * every later sample behind it. */
        out_log("the server refused %zu samples (HTTP %ld: %.300s); "
                "dropping them", k, r.status, r.body);
        pthread_mutex_lock(&a->mu);
        backlog_release(a->bl, upto);
        *left = backlog_count(a->bl) > 0;
        pthread_mutex_unlock(&a->mu);
        goto out;
    }
    snprintf(err, sizeof err, "HTTP %ld", r.status);
    note_down(err);
    rc = -EAGAIN;
out:
    http_resp_cleanup(&r);
    free(body);
    return rc;
}

int agent_push(agent *a, int64_t deadline)
{
    if (!lock_push(a, deadline))
        return -ETIMEDOUT;
    pthread_mutex_lock(&a->mu);
    pid_t pid = a->child_pid;
    pthread_mutex_unlock(&a->mu);
    /* Re-probed every push: cheap, and a changed quota shows at once. The
     * child's own cgroup when it runs, else ours (the same, normally). */
    cg_cpu cpu;
    char err[256];
    bool have_cpu = cg_probe_pid(pid, &cpu, err, sizeof err) == 0 ||
                    (pid != 0 && cg_probe_pid(0, &cpu, err, sizeof err) == 0);
    size_t max = AGENT_BATCH_MAX;
    int rc;
    bool left;
    do {
        left = false;
        rc = push_once(a, &cpu, have_cpu, deadline, &max, &left);
    } while (rc == 0 && left);
    pthread_mutex_unlock(&a->push_mu);
    return rc;
}

void *push_thread(void *arg)
{
    agent *a = arg;
    unsigned attempt = 0;
    int64_t next = agent_mono_ms(); /* at once: the server learns of us */
    pthread_mutex_lock(&a->mu);
    while (!a->stopping) {
        if (agent_mono_ms() < next) {
            agent_wait_until(a, next);
            continue;
        }
        pthread_mutex_unlock(&a->mu);
        int rc = agent_push(a, agent_mono_ms() + 30000);
        if (rc == 0) {
            attempt = 0;
            next = agent_mono_ms() + a->o.interval_ms;
        } else {
            int64_t d = agent_backoff_ms(attempt);
            if (attempt < 16)
                attempt++;
            next = agent_mono_ms() + d;
        }
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}
