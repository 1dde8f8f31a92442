/*
 * out.h — everything gotuned-agent writes to its stderr (fd 2): the child's
 * own bytes, passed through in order, and the agent's sparse log lines.
 *
 * A log line never lands inside a child's line: while the child's output is
 * in the middle of a line (its last byte written was not '\n'), log lines
 * wait in a bounded queue and go out right after the child's next '\n'.
 * Every write retries on EINTR and finishes partial writes. Thread-safe:
 * one mutex orders the relay's writes and the other threads' logs.
 *
 * Errors: writes to fd 2 that fail for good (EPIPE, EBADF...) are dropped
 * silently; there is nowhere left to report them.
 */
#ifndef GOTUNED_AGENT_OUT_H
#define GOTUNED_AGENT_OUT_H

#include <stddef.h>

/* The fd written to; 2 unless a test redirects it. Call before any thread
 * writes. */
void out_set_fd(int fd);

/* Writes len bytes of the child's output. */
void out_child(const char *buf, size_t len);

/* Logs "gotuned-agent: <message>\n" (printf-style, at most 1 KiB). */
__attribute__((format(printf, 1, 2)))
void out_log(const char *fmt, ...);

/* Writes the queued log lines even though the child's last line is
 * unfinished, after a '\n' of our own: used once the child is gone. */
void out_flush_logs(void);

/* Writes all of buf to fd, retrying on EINTR and short writes. Returns 0 or
 * -errno. */
int out_write_all(int fd, const char *buf, size_t len);

#endif
