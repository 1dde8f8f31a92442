/*
 * out.c — the agent's stderr: child bytes in order, log lines only between
 * the child's lines. See out.h.
 */
#include "agent/out.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Logs waiting for the child to finish its line; past this, new log lines
 * are dropped (the agent logs one line per state change, so a child that
 * never ends its line is the only way to get here). */
#define OUT_QUEUE_MAX (16 * 1024)

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static int out_fd = 2;
static bool out_mid_line;          /* the child's last byte out was not '\n' */
static char out_queue[OUT_QUEUE_MAX];
static size_t out_queued;

void out_set_fd(int fd)
{
    pthread_mutex_lock(&out_mu);
    out_fd = fd;
    out_mid_line = false;
    out_queued = 0;
    pthread_mutex_unlock(&out_mu);
}

int out_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                /* fd 2 may be a non-blocking pipe shared with others. */
                usleep(1000);
                continue;
            }
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static void flush_queue_locked(void)
{
    if (out_queued) {
        (void)out_write_all(out_fd, out_queue, out_queued);
        out_queued = 0;
    }
}

void out_child(const char *buf, size_t len)
{
    if (len == 0)
        return;
    pthread_mutex_lock(&out_mu);
    const char *last_nl = memrchr(buf, '\n', len);
    if (last_nl && out_queued) {
        /* Up to the child's line end, then the waiting logs, then the rest. */
        size_t head = (size_t)(last_nl - buf) + 1;
        (void)out_write_all(out_fd, buf, head);
        flush_queue_locked();
        (void)out_write_all(out_fd, buf + head, len - head);
    } else {
        (void)out_write_all(out_fd, buf, len);
    }
    out_mid_line = buf[len - 1] != '\n';
    pthread_mutex_unlock(&out_mu);
}

void out_log(const char *fmt, ...)
{
    char line[1024 + 32];
    int n = snprintf(line, sizeof line, "gotuned-agent: ");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0
                              : (size_t)m < sizeof line - (size_t)n - 1
                                    ? (size_t)m
                                    : sizeof line - (size_t)n - 2);
    line[len++] = '\n';

    pthread_mutex_lock(&out_mu);
    if (!out_mid_line)
        (void)out_write_all(out_fd, line, len);
    else if (out_queued + len <= sizeof out_queue) {
        memcpy(out_queue + out_queued, line, len);
        out_queued += len;
    }
    pthread_mutex_unlock(&out_mu);
}

void out_flush_logs(void)
{
    pthread_mutex_lock(&out_mu);
    if (out_queued) {
        (void)out_write_all(out_fd, "\n", 1);
        flush_queue_locked();
        out_mid_line = false;
    }
    pthread_mutex_unlock(&out_mu);
}
