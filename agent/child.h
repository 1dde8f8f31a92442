/*
 * child.h — the supervised program: started with posix_spawnp, its stderr
 * on a pipe the agent reads, stdin and stdout inherited, every signal
 * disposition and the signal mask back to the defaults (the agent blocks
 * signals for its signalfd and ignores SIGPIPE; neither may leak into the
 * child).
 *
 * Errors: 0 or a negative errno-style code with a message in err.
 */
#ifndef GOTUNED_AGENT_CHILD_H
#define GOTUNED_AGENT_CHILD_H

#include <stddef.h>
#include <sys/types.h>

typedef struct child {
    pid_t pid;          /* 0 when not running (reaped) */
    int err_fd;         /* read end of its stderr pipe (non-blocking,
                           close-on-exec); -1 once closed */
} child;

/* Starts argv[0] (looked up in PATH) with envp. */
int child_spawn(char *const argv[], char *const envp[], child *c, char *err,
                size_t errlen);

/* The agent's exit status for a wait status: the child's code, or 128 +
 * the signal that killed it. */
int child_exit_code(int wstatus);

/* "exited with status 3" / "was killed by SIGKILL" for a wait status. */
void child_describe(int wstatus, char *buf, size_t cap);

#endif
