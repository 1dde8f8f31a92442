/*
 * apply.c — the applier thread: takes offered versions one at a time,
 * applies them the --apply way, and ACKs or NACKs each after pushing the
 * pending samples (the server splits its verification windows at the ACK).
 * See agent.h; the file handshake (config file, then the application's
 * PATH.ack) is described in docs/agent.md.
 */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/apply.h"
#include "agent/http.h"
#include "agent/out.h"

/* --apply file: how often the ack file is looked at. */
#define ACK_POLL_MS 100
/* An ack file is one small object. */
#define ACK_FILE_MAX (64 * 1024)

int apply_write_config(const char *path, json_t *obj, char *err,
                       size_t errlen)
{
    char tmp[4200];
    char *text = NULL;
    int fd = -1, rc = 0;
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", path);
        return -ENAMETOOLONG;
    }
    text = json_dumps(obj, JSON_COMPACT);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    do
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    while (fd < 0 && errno == EINTR);
    if (fd < 0 ||
        (rc = out_write_all(fd, text, strlen(text))) < 0 ||
        (rc = out_write_all(fd, "\n", 1)) < 0 ||
        fsync(fd) < 0) {
        rc = rc < 0 ? rc : -errno;
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(-rc));
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = -errno;
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(-rc));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path,
                 strerror(-rc));
    }
out:
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        unlink(tmp);
    free(text);
    return rc;
}

/* Reads path (at most ACK_FILE_MAX bytes) into a malloc'd buffer. */
static char *read_file(const char *path, size_t *len)
{
    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return NULL;
    char *buf = malloc(ACK_FILE_MAX);
    size_t n = 0;
    while (buf && n < ACK_FILE_MAX) {
        ssize_t got = read(fd, buf + n, ACK_FILE_MAX - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    *len = n;
    return buf;
}

/* --apply file: writes the version, waits for the application's ack file.
 * Returns true with an empty error when it applied it. */
static bool apply_file(agent *a, const wire_version *v, char *error,
                       size_t errlen)
{
    char ackpath[4200];
    snprintf(ackpath, sizeof ackpath, "%s.ack", a->o.config_file);
    /* A stale ack (an earlier run's, for the same version) must not count. */
    unlink(ackpath);
    if (apply_write_config(a->o.config_file, v->obj, error, errlen) < 0)
        return false;
    int64_t deadline = agent_mono_ms() + a->o.ack_timeout_ms;
    for (;;) {
        size_t len = 0;
        char *text = read_file(ackpath, &len);
        if (text) {
            int64_t ver;
            bool applied;
            char why[1024];
            int rc = wire_ack_file(text, len, &ver, &applied, why, sizeof why);
            free(text);
            /* A half-written file cannot be seen (the library renames), so
             * an unreadable one is the application's bug: say so. */
            if (rc < 0) {
                snprintf(error, errlen, "unreadable ack file %.300s: %.300s", ackpath,
                         why);
                return false;
            }
            if (ver == v->version) {
                if (applied) {
                    error[0] = '\0';
                    return true;
                }
                snprintf(error, errlen, "%s", why);
                return false;
            }
        }
        pthread_mutex_lock(&a->mu);
        bool stop = a->stopping;
        if (!stop)
            agent_wait_until(a, agent_mono_ms() + ACK_POLL_MS);
        pthread_mutex_unlock(&a->mu);
        if (stop) {
            snprintf(error, errlen, "the agent is stopping");
            return false;
        }
        if (agent_mono_ms() >= deadline) {
            int64_t t = a->o.ack_timeout_ms;
            if (t % 1000 == 0)
                snprintf(error, errlen, "the application did not acknowledge "
                         "version %lld within %llds", (long long)v->version,
                         (long long)(t / 1000));
            else
                snprintf(error, errlen, "the application did not acknowledge "
                         "version %lld within %lldms", (long long)v->version,
                         (long long)t);
            return false;
        }
    }
}

/* --apply restart: asks the main thread, which owns the child. */
static bool apply_restart(agent *a, const wire_version *v, char *error,
                          size_t errlen, bool *stopped)
{
    pthread_mutex_lock(&a->mu);
    a->req_pending = true;
    a->req_done = false;
    a->req_version = v->version;
    a->req_gomaxprocs = v->has_gomaxprocs ? v->gomaxprocs : 0;
    pthread_mutex_unlock(&a->mu);
    uint64_t one = 1;
    ssize_t w;
    do
        w = write(a->wake_fd, &one, sizeof one);
    while (w < 0 && errno == EINTR);
    pthread_mutex_lock(&a->mu);
    while (!a->req_done && !a->stopping)
        pthread_cond_wait(&a->cond, &a->mu);
    bool ok = a->req_done && a->req_ok;
    *stopped = !a->req_done;
    snprintf(error, errlen, "%s", a->req_error);
    pthread_mutex_unlock(&a->mu);
    return ok;
}

/* Sends the ACK or NACK, after the pending samples, retrying until the
 * server answers, a newer version is offered, or the agent stops. */
static void send_ack(agent *a, int64_t version, const char *error)
{
    char url[1400], err[256];
    snprintf(url, sizeof url, "%s/api/v1/agents/%s/ack", a->o.server, a->o.id);
    char *body = wire_ack(version, error);
    if (!body)
        return;
    unsigned attempt = 0;
    for (;;) {
        (void)agent_push(a, agent_mono_ms() + 10000);
        http_resp r;
        int rc = http_call("POST", url, body, strlen(body), 10000, &r, err,
                           sizeof err);
        long status = rc == 0 ? r.status : 0;
        if (rc == 0)
            http_resp_cleanup(&r);
        if (status == 200) {
            if (!error) {
                pthread_mutex_lock(&a->mu);
                a->applied_version = version;
                pthread_mutex_unlock(&a->mu);
            }
            break;
        }
        if (status >= 400 && status < 500 && status != 408 && status != 429) {
            out_log("the server refused the %s of version %lld (HTTP %ld)",
                    error ? "NACK" : "ACK", (long long)version, status);
            break;
        }
        int64_t until = agent_mono_ms() + agent_backoff_ms(attempt);
        if (attempt < 16)
            attempt++;
        pthread_mutex_lock(&a->mu);
        while (!a->stopping && !a->have_offer && agent_wait_until(a, until))
            ;
        bool give_up = a->stopping || a->have_offer;
        pthread_mutex_unlock(&a->mu);
        if (give_up)
            break;
    }
    free(body);
}

static void handle(agent *a, const wire_version *v)
{
    char error[1024] = "";
    bool ok = false, stopped = false;
    switch (a->o.apply) {
    case APPLY_NONE:
        out_log("config version %lld seen, not applied (--apply none: "
                "observe only, no ACK)", (long long)v->version);
        return;
    case APPLY_FILE:
        ok = apply_file(a, v, error, sizeof error);
        break;
    case APPLY_RESTART:
        ok = apply_restart(a, v, error, sizeof error, &stopped);
        break;
    }
    if (stopped)
        return;
    if (ok)
        out_log("config version %lld applied%s%s", (long long)v->version,
                error[0] ? ": " : "", error);
    else
        out_log("config version %lld not applied, NACK: %s",
                (long long)v->version, error);
    send_ack(a, v->version, ok ? NULL : error);
}

void *apply_thread(void *arg)
{
    agent *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->stopping && !a->have_offer)
            pthread_cond_wait(&a->cond, &a->mu);
        if (a->stopping)
            break;
        wire_version v = a->offer;
        a->have_offer = false;
        memset(&a->offer, 0, sizeof a->offer);
        pthread_mutex_unlock(&a->mu);
        /* Version 0 is "no version yet": nothing to apply or ACK. */
        if (v.version > 0)
            handle(a, &v);
        wire_version_cleanup(&v);
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}
