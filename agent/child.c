/*
 * child.c — spawning the supervised program. See child.h.
 */
#include "agent/child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int child_spawn(char *const argv[], char *const envp[], child *c, char *err,
                size_t errlen)
{
    int fds[2] = { -1, -1 };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    bool fa_ok = false, at_ok = false;
    int rc = 0;

    c->pid = 0;
    c->err_fd = -1;
    if (pipe2(fds, O_CLOEXEC) < 0) {
        rc = -errno;
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto out;
    }
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
        rc = -rc;
        goto spawn_err;
    }
    fa_ok = true;
    /* dup2 clears close-on-exec on the new fd 2. */
    if ((rc = posix_spawn_file_actions_adddup2(&fa, fds[1], 2)) != 0) {
        rc = -rc;
        goto spawn_err;
    }
    if ((rc = posix_spawnattr_init(&at)) != 0) {
        rc = -rc;
        goto spawn_err;
    }
    at_ok = true;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    if ((rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, envp)) != 0) {
        rc = -rc;
        snprintf(err, errlen, "cannot start %s: %s", argv[0], strerror(-rc));
        goto out;
    }
    close(fds[1]);
    fds[1] = -1;
    int fl = fcntl(fds[0], F_GETFL);
    if (fl >= 0)
        (void)fcntl(fds[0], F_SETFL, fl | O_NONBLOCK);
    c->pid = pid;
    c->err_fd = fds[0];
    fds[0] = -1;
    goto out;
spawn_err:
    snprintf(err, errlen, "cannot prepare to start %s: %s", argv[0],
             strerror(-rc));
out:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (at_ok)
        posix_spawnattr_destroy(&at);
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    return rc;
}

int child_exit_code(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return 1;
}

void child_describe(int wstatus, char *buf, size_t cap)
{
    if (WIFEXITED(wstatus))
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(wstatus));
    else if (WIFSIGNALED(wstatus))
        snprintf(buf, cap, "was killed by SIG%s%s", sigabbrev_np(WTERMSIG(wstatus))
                 ? sigabbrev_np(WTERMSIG(wstatus)) : "?",
                 WCOREDUMP(wstatus) ? " (core dumped)" : "");
    else
        snprintf(buf, cap, "stopped (wait status %#x)", (unsigned)wstatus);
}
