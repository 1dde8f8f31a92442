/*
 * main.c — gotuned-agent: flags, the other threads, and the main thread's
 * loop, which owns the child: it starts it, relays its stderr (relay.h),
 * forwards signals (signalfd), and restarts it for --apply restart. See
 * agent.h for the threads and docs/agent.md for the behaviour.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/apply.h"
#include "agent/child.h"
#include "agent/cred.h"
#include "agent/env.h"
#include "agent/http.h"
#include "agent/out.h"
#include "agent/relay.h"

#define AGENT_VERSION "0.1.0"
/* Before the first start the config is asked for once, briefly. */
#define FIRST_FETCH_MS 2000
/* After the child exits, its pipe is read until EOF or this long (a
 * grandchild may hold it open). */
#define DRAIN_MS 500
#define DRAIN_QUIET_MS 200
#define DRAIN_MAX_MS 5000

extern char **environ;

/* The main thread's view of the child and of the apply in progress. */
typedef struct sup {
    agent *a;
    child ch;
    bool reaped;
    int wstatus;
    int64_t exit_mono, last_data_mono;
    relay *rl;
    int cur_gmp;            /* the GOMAXPROCS we gave the child, 0 = none */
    int good_gmp;           /* the last one that worked */
    int64_t started_mono;
    bool first_seen;        /* the child's first SCHED sample arrived */
    int first_gmp;

    bool handling;          /* an apply request is in progress */
    int64_t h_version;
    int h_gmp;
    int64_t verify_deadline;

    bool restarting;        /* the child is being stopped to start again */
    int next_gmp;
    bool next_for_request;  /* the new child proves the request */
    int64_t kill_at;
    bool killed;

    bool terminating;       /* a signal told us to stop with the child */
} sup;

static int64_t verify_ms(const agent *a)
{
    int64_t five = 5 * (int64_t)a->o.schedtrace_ms;
    return five > AGENT_VERIFY_MIN_MS ? five : AGENT_VERIFY_MIN_MS;
}

static void on_write(void *ud, const char *buf, size_t len)
{
    (void)ud;
    out_child(buf, len);
}

static void on_sample(void *ud, const tuner_sample *s)
{
    sup *sp = ud;
    agent *a = sp->a;
    pthread_mutex_lock(&a->mu);
    uint64_t before = backlog_dropped(a->bl);
    backlog_add(a->bl, s);
    bool first_drop = backlog_dropped(a->bl) > before && !a->dropping;
    if (first_drop)
        a->dropping = true;
    pthread_mutex_unlock(&a->mu);
    if (first_drop)
        out_log("sample backlog full (%zu): dropping the oldest samples",
                a->o.backlog);
    if (!sp->first_seen) {
        sp->first_seen = true;
        sp->first_gmp = s->gomaxprocs > 0 ? s->gomaxprocs : (int)s->nprocs;
    }
}

static void reply(sup *sp, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply(sup *sp, bool ok, const char *fmt, ...)
{
    agent *a = sp->a;
    pthread_mutex_lock(&a->mu);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->req_error, sizeof a->req_error, fmt, ap);
    va_end(ap);
    a->req_ok = ok;
    a->req_done = true;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->mu);
    sp->handling = false;
}

static void set_child_pid(sup *sp, pid_t pid)
{
    pthread_mutex_lock(&sp->a->mu);
    sp->a->child_pid = pid;
    pthread_mutex_unlock(&sp->a->mu);
}

/* Starts the child with GOMAXPROCS gmp (0: the user's own, if any). */
static int start(sup *sp, char **argv, int gmp, char *err, size_t errlen)
{
    agent *a = sp->a;
    char **env = env_build(environ, a->o.schedtrace_ms, gmp);
    if (!env) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = child_spawn(argv, env, &sp->ch, err, errlen);
    env_free(env);
    if (rc < 0)
        return rc;
    sp->reaped = false;
    sp->cur_gmp = gmp;
    sp->first_seen = false;
    sp->started_mono = agent_mono_ms();
    set_child_pid(sp, sp->ch.pid);
    return 0;
}

static void describe_gmp(int gmp, char *buf, size_t cap)
{
    if (gmp > 0)
        snprintf(buf, cap, "GOMAXPROCS=%d", gmp);
    else
        snprintf(buf, cap, "no GOMAXPROCS override");
}

/* Stops the child to start it again with gmp. */
static void begin_restart(sup *sp, int gmp, bool for_request)
{
    char what[64];
    describe_gmp(gmp, what, sizeof what);
    out_log("restarting the program (pid %ld) with %s", (long)sp->ch.pid,
            what);
    sp->restarting = true;
    sp->next_gmp = gmp;
    sp->next_for_request = for_request;
    sp->killed = false;
    sp->kill_at = agent_mono_ms() + sp->a->o.grace_ms;
    if (!sp->reaped)
        kill(sp->ch.pid, SIGTERM);
}

/* After a NACK: back to the environment that last worked. */
static void roll_back(sup *sp)
{
    if (sp->cur_gmp != sp->good_gmp && !sp->terminating)
        begin_restart(sp, sp->good_gmp, false);
}

/* Decides a pending apply request once the evidence is in. */
static void check_request(sup *sp)
{
    agent *a = sp->a;
    if (!sp->handling) {
        pthread_mutex_lock(&a->mu);
        bool take = a->req_pending && !sp->restarting && !sp->reaped;
        if (take) {
            a->req_pending = false;
            sp->h_version = a->req_version;
            sp->h_gmp = a->req_gomaxprocs;
        }
        pthread_mutex_unlock(&a->mu);
        if (!take)
            return;
        sp->handling = true;
        if (sp->terminating) {
            reply(sp, false, "the agent is stopping");
            return;
        }
        if (sp->h_gmp != sp->cur_gmp) {
            begin_restart(sp, sp->h_gmp, true);
            return;
        }
        /* The child already runs with it: its first SCHED line proves it
         * (at once when it came already). */
        sp->verify_deadline = sp->started_mono + verify_ms(a);
    }
    if (sp->restarting || sp->reaped)
        return;
    if (sp->first_seen) {
        if (sp->h_gmp == 0 || sp->first_gmp == sp->h_gmp) {
            sp->good_gmp = sp->cur_gmp;
            if (sp->h_gmp)
                reply(sp, true, "GOMAXPROCS=%d, the program runs %d Ps",
                      sp->h_gmp, sp->first_gmp);
            else
                reply(sp, true, "no GOMAXPROCS override, the program runs "
                      "%d Ps", sp->first_gmp);
            return;
        }
        reply(sp, false, "the program started with GOMAXPROCS=%d runs "
              "gomaxprocs=%d (does it set GOMAXPROCS itself?)", sp->h_gmp,
              sp->first_gmp);
        roll_back(sp);
        return;
    }
    if (agent_mono_ms() >= sp->verify_deadline) {
        reply(sp, false, "no SCHED line from the program within %llds of "
              "its start with GOMAXPROCS=%d",
              (long long)(verify_ms(a) / 1000), sp->h_gmp);
        roll_back(sp);
    }
}

/* Final: flush what can be flushed and exit with code. */
static void finish(sup *sp, int code) __attribute__((noreturn));
static void finish(sup *sp, int code)
{
    agent *a = sp->a;
    pthread_mutex_lock(&a->mu);
    a->stopping = true;
    a->child_pid = 0;
    pthread_cond_broadcast(&a->cond);
    size_t left = backlog_count(a->bl);
    pthread_mutex_unlock(&a->mu);
    if (left > 0 &&
        agent_push(a, agent_mono_ms() + AGENT_FLUSH_MS) != 0)
        out_log("%zu samples not pushed: the server did not take them "
                "within %ds", left, AGENT_FLUSH_MS / 1000);
    out_flush_logs();
    /* The poller may sit in a 5-minute request: no joins, no atexit. */
    _exit(code);
}

/* The child is gone and its pipe read to the end. */
static void child_done(sup *sp, char **argv)
{
    char how[96], err[512];
    relay_finish(sp->rl, agent_wall_ms());
    if (sp->ch.err_fd >= 0)
        close(sp->ch.err_fd);
    sp->ch.err_fd = -1;
    sp->ch.pid = 0;
    set_child_pid(sp, 0);
    child_describe(sp->wstatus, how, sizeof how);

    if (sp->terminating)
        finish(sp, child_exit_code(sp->wstatus));

    if (!sp->restarting && sp->handling) {
        /* Died before proving the version it was started for. */
        reply(sp, false, "the program %s before its first SCHED line with "
              "GOMAXPROCS=%d", how, sp->h_gmp);
        if (sp->cur_gmp == sp->good_gmp)
            finish(sp, child_exit_code(sp->wstatus));
        sp->restarting = true;
        sp->next_gmp = sp->good_gmp;
        sp->next_for_request = false;
    }
    if (!sp->restarting)
        finish(sp, child_exit_code(sp->wstatus));

    sp->restarting = false;
    int gmp = sp->next_gmp;
    if (start(sp, argv, gmp, err, sizeof err) == 0) {
        if (sp->next_for_request)
            sp->verify_deadline = sp->started_mono + verify_ms(sp->a);
        return;
    }
    if (sp->next_for_request && sp->handling) {
        reply(sp, false, "%s", err);
        if (gmp != sp->good_gmp &&
            start(sp, argv, sp->good_gmp, err, sizeof err) == 0)
            return;
    }
    out_log("%s", err);
    finish(sp, 127);
}

static void reap(sup *sp)
{
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p <= 0)
            return;
        if (p == sp->ch.pid && !sp->reaped) {
            sp->reaped = true;
            sp->wstatus = st;
            sp->exit_mono = agent_mono_ms();
        }
    }
}

static void on_signal(sup *sp, const struct signalfd_siginfo *si)
{
    int sig = (int)si->ssi_signo;
    if (sig == SIGCHLD) {
        reap(sp);
        return;
    }
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP)
        sp->terminating = true;
    /* A signal the kernel sent to the whole process group (^C, ^\, a hang
     * up) reached the child too: forwarding it would deliver it twice. */
    if (si->ssi_code == SI_KERNEL)
        return;
    if (sp->ch.pid > 0 && !sp->reaped)
        kill(sp->ch.pid, sig);
}

static void read_child(sup *sp)
{
    static char buf[64 * 1024];
    for (int i = 0; i < 16; i++) {
        ssize_t n = read(sp->ch.err_fd, buf, sizeof buf);
        if (n > 0) {
            sp->last_data_mono = agent_mono_ms();
            relay_feed(sp->rl, buf, (size_t)n, agent_wall_ms());
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        /* EOF (or an error, which ends the stream too) */
        close(sp->ch.err_fd);
        sp->ch.err_fd = -1;
        return;
    }
}

static int64_t min_deadline(int64_t a, int64_t b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

static void run(sup *sp, char **argv, int sfd)
{
    agent *a = sp->a;
    for (;;) {
        int64_t now = agent_mono_ms();
        /* The child is done when it was reaped and its pipe is drained. */
        if (sp->reaped && sp->ch.err_fd >= 0) {
            int64_t quiet = sp->last_data_mono > sp->exit_mono
                                ? sp->last_data_mono + DRAIN_QUIET_MS
                                : sp->exit_mono + DRAIN_MS;
            int64_t until = quiet < sp->exit_mono + DRAIN_MAX_MS
                                ? quiet : sp->exit_mono + DRAIN_MAX_MS;
            if (now >= until) {
                close(sp->ch.err_fd);
                sp->ch.err_fd = -1;
            }
        }
        if (sp->reaped && sp->ch.err_fd < 0) {
            child_done(sp, argv);
            continue;
        }
        if (sp->restarting && !sp->reaped && !sp->killed &&
            now >= sp->kill_at) {
            out_log("the program did not stop within %llds of SIGTERM: "
                    "SIGKILL", (long long)(a->o.grace_ms / 1000));
            kill(sp->ch.pid, SIGKILL);
            sp->killed = true;
        }
        check_request(sp);

        int64_t dl = -1;
        int64_t rd = relay_deadline(sp->rl);
        if (rd >= 0)
            dl = now + (rd - agent_wall_ms());
        if (sp->restarting && !sp->killed)
            dl = min_deadline(dl, sp->kill_at);
        if (sp->handling && !sp->restarting)
            dl = min_deadline(dl, sp->verify_deadline);
        if (sp->reaped)
            dl = min_deadline(dl, now + DRAIN_QUIET_MS);
        int timeout = 1000;
        if (dl >= 0)
            timeout = dl <= now ? 0 : dl - now < 1000 ? (int)(dl - now) : 1000;

        struct pollfd pf[3] = {
            { .fd = sfd, .events = POLLIN },
            { .fd = a->wake_fd, .events = POLLIN },
            { .fd = sp->ch.err_fd, .events = POLLIN },
        };
        int n = poll(pf, sp->ch.err_fd >= 0 ? 3 : 2, timeout);
        if (n < 0 && errno != EINTR) {
            out_log("poll: %s", strerror(errno));
            finish(sp, 1);
        }
        if (n > 0 && (pf[0].revents & POLLIN)) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                on_signal(sp, &si);
        }
        if (n > 0 && (pf[1].revents & POLLIN)) {
            uint64_t v;
            (void)!read(a->wake_fd, &v, sizeof v);
        }
        if (n > 0 && sp->ch.err_fd >= 0 &&
            (pf[2].revents & (POLLIN | POLLHUP | POLLERR)))
            read_child(sp);
        relay_tick(sp->rl, agent_wall_ms());
    }
}

/* True for an http(s) URL whose host is 127.x.x.x, [::1] or localhost. */
static bool loopback_url(const char *url)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    size_t n = strcspn(h, ":/");        /* the host (a bracketed IPv6 ends at "]") */
    if (strncmp(h, "[::1]", 5) == 0 || (n == 9 && strncmp(h, "localhost", 9) == 0))
        return true;
    /* 127.x.x.x as digits and dots only: not a name such as 127.example.com */
    return n > 4 && strncmp(h, "127.", 4) == 0 && strspn(h, "0123456789.") == n;
}

/* The current version before the first start; false when there is none
 * (unreachable, unknown agent, or version 0). */
static bool first_fetch(agent *a, wire_version *v)
{
    char url[1400], err[256];
    snprintf(url, sizeof url, "%s/api/v1/agents/%s/config", a->o.server,
             a->o.id);
    http_resp r;
    int rc = http_call("GET", url, NULL, 0, FIRST_FETCH_MS, &r, err,
                       sizeof err);
    if (rc < 0) {
        out_log("server unreachable at start (%s): starting the program "
                "without a config", err);
        return false;
    }
    bool ok = false;
    if (r.status == 200)
        ok = wire_version_parse(r.body, r.len, v, err, sizeof err) == 0 &&
             v->version > 0;
    else if (r.status != 404)
        out_log("config at start: HTTP %ld; starting without a config",
                r.status);
    http_resp_cleanup(&r);
    if (!ok && v->obj)
        wire_version_cleanup(v);
    return ok;
}

int main(int argc, char **argv)
{
    static agent a;
    static sup sp;
    char err[512];

    if (gethostname(a.hostname, sizeof a.hostname) < 0)
        a.hostname[0] = '\0';
    a.hostname[sizeof a.hostname - 1] = '\0';
    if (opts_parse(argc, argv, a.hostname, &a.o, err, sizeof err) < 0) {
        fprintf(stderr, "gotuned-agent: %s (see --help)\n", err);
        return 2;
    }
    if (a.o.help) {
        fputs(opts_usage, stdout);
        return 0;
    }
    if (a.o.version) {
        printf("gotuned-agent %s\n", AGENT_VERSION);
        return 0;
    }

    /* The token and the CA bundle are checked before PROGRAM starts: a
     * wrong file is a setup mistake to fix, not an outage to ride out. The
     * token stays with the agent: PROGRAM does not inherit GOTUNED_TOKEN. */
    static char token[CRED_TOKEN_MAX + 1];
    if (cred_token_load(a.o.token_file, getenv("GOTUNED_TOKEN"), token, sizeof token, err,
                        sizeof err) < 0 ||
        (a.o.ca_file && cred_ca_check(a.o.ca_file, err, sizeof err) < 0)) {
        fprintf(stderr, "gotuned-agent: %s\n", err);
        return 2;
    }
    unsetenv("GOTUNED_TOKEN");
    if (token[0] && strncmp(a.o.server, "http://", 7) == 0 && !loopback_url(a.o.server))
        out_log("warning: the token goes to %s in clear text; use https:// and --ca",
                a.o.server);

    /* Signals: all handled through a signalfd by the main thread; blocked
     * before any thread starts, so every thread inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
                   SIGWINCH, SIGCHLD };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&set, sigs[i]);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    a.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (sfd < 0 || a.wake_fd < 0 || http_global_init(a.o.ca_file, token) < 0) {
        fprintf(stderr, "gotuned-agent: cannot set up: %s\n", strerror(errno));
        return 1;
    }
    srandom((unsigned)(agent_wall_ms() ^ getpid()));

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a.cond, &ca);
    pthread_mutex_init(&a.mu, NULL);
    pthread_mutex_init(&a.push_mu, NULL);
    a.seen_version = -1;
    a.bl = backlog_new(a.o.backlog);
    relay_sink rs = { .write = on_write, .sample = on_sample, .ud = &sp };
    sp.a = &a;
    sp.rl = relay_new(&rs);
    if (!a.bl || !sp.rl) {
        fprintf(stderr, "gotuned-agent: out of memory\n");
        return 1;
    }

    wire_version first = { 0 };
    bool have_first = first_fetch(&a, &first);
    int gmp = 0;
    if (have_first && a.o.apply != APPLY_NONE && first.has_gomaxprocs)
        gmp = first.gomaxprocs;
    if (have_first && a.o.apply == APPLY_FILE &&
        apply_write_config(a.o.config_file, first.obj, err, sizeof err) < 0)
        out_log("%s", err);

    if (start(&sp, a.o.child_argv, gmp, err, sizeof err) < 0) {
        out_log("%s", err);
        return 127;
    }
    sp.good_gmp = 0; /* the user's own environment is what surely works */
    if (have_first)
        agent_offer(&a, &first, true);

    pthread_t t;
    if (pthread_create(&t, NULL, push_thread, &a) != 0 ||
        pthread_create(&t, NULL, poll_thread, &a) != 0 ||
        pthread_create(&t, NULL, apply_thread, &a) != 0) {
        out_log("cannot start threads; running without the server");
    }
    run(&sp, a.o.child_argv, sfd);
    return 0;
}
