/*
 * test_wait.c — server/wait.c with fake ops (a table of agent versions, and
 * connections that only count their suspends and resumes) and real sockets
 * (socketpair) for the hang-up detection. Waits are short and every loop is
 * bounded.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/wait.h"
#include "tests/unit/registry.h"

#define MAX_AGENTS 16

/* A held "connection": what the queue did to it. Guarded by fake.mu. */
typedef struct fake_conn {
    int suspended, resumed;
    int order;                  /* 1 for the first connection resumed, 2 for the next... */
    int64_t resumed_ms;
} fake_conn;

typedef struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* broadcast on every resume */
    int nagents;
    char agent[MAX_AGENTS][16];
    int64_t version[MAX_AGENTS];
    int resumes;                /* in total */
    int64_t many_version;       /* the version of every agent named "many-..." */
    waitq *q;
    int sock[2];                /* a socketpair: sock[0] is what the waiters hold */
} fake;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Bytes malloc has handed out, large (mmapped) blocks included. */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

static int fake_version(void *ud, const char *agent, int64_t *v)
{
    fake *f = ud;
    int rc = -ENOENT;
    pthread_mutex_lock(&f->mu);
    if (strncmp(agent, "many-", 5) == 0) {
        *v = f->many_version;
        rc = 0;
    }
    for (int i = 0; i < f->nagents; i++)
        if (strcmp(f->agent[i], agent) == 0) {
            *v = f->version[i];
            rc = 0;
        }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static void fake_suspend(void *ud, void *conn)
{
    fake *f = ud;
    fake_conn *c = conn;
    pthread_mutex_lock(&f->mu);
    c->suspended++;
    pthread_mutex_unlock(&f->mu);
}

static void fake_resume(void *ud, void *conn)
{
    fake *f = ud;
    fake_conn *c = conn;
    pthread_mutex_lock(&f->mu);
    c->resumed++;
    c->order = ++f->resumes;
    c->resumed_ms = mono_ms();
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* Sets an agent's version (adding the agent), as a store commit would. */
static void set_version(fake *f, const char *agent, int64_t v)
{
    pthread_mutex_lock(&f->mu);
    int i = 0;
    while (i < f->nagents && strcmp(f->agent[i], agent) != 0)
        i++;
    if (i == f->nagents) {
        assert_true(f->nagents < MAX_AGENTS);
        snprintf(f->agent[f->nagents++], sizeof f->agent[0], "%s", agent);
    }
    f->version[i] = v;
    pthread_mutex_unlock(&f->mu);
}

/* Waits up to ms for the fake to have seen `want` resumes in total. */
static int wait_resumes(fake *f, int want, long ms)
{
    int64_t until = mono_ms() + ms;
    pthread_mutex_lock(&f->mu);
    while (f->resumes < want && mono_ms() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&f->cv, &f->mu, &ts);
    }
    int got = f->resumes;
    pthread_mutex_unlock(&f->mu);
    return got;
}

static int resumed(fake *f, const fake_conn *c)
{
    pthread_mutex_lock(&f->mu);
    int n = c->resumed;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* Raises the soft open-file limit to the hard one; false (with a message)
 * when n more sockets would still not fit. */
static bool room_for_fds(int n)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur >= (rlim_t)n + 100)
        return true;
    print_message("open-file limit %llu is too low for %d sockets\n",
                  (unsigned long long)rl.rlim_cur, n);
    return false;
}

/* n connections to hold, each with its own dup of sock[0] (the epoll set
 * needs a distinct fd per registration). */
typedef struct crowd {
    int n;
    fake_conn *c;
    int *fds;
} crowd;

static crowd crowd_new(const fake *f, int n)
{
    crowd w = { n, calloc((size_t)n, sizeof *w.c), calloc((size_t)n, sizeof *w.fds) };
    assert_non_null(w.c);
    assert_non_null(w.fds);
    for (int i = 0; i < n; i++) {
        w.fds[i] = dup(f->sock[0]);
        assert_true(w.fds[i] >= 0);
    }
    return w;
}

/* Checks that each connection was resumed exactly as often as it was
 * suspended (once or never), then frees the crowd. */
static void crowd_free(crowd *w)
{
    for (int i = 0; i < w->n; i++) {
        assert_true(w->c[i].suspended <= 1);
        assert_int_equal(w->c[i].resumed, w->c[i].suspended);
        close(w->fds[i]);
    }
    free(w->c);
    free(w->fds);
}

static int setup(void **state)
{
    fake *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->sock) != 0)
        return -1;
    waitq_ops ops = { fake_version, fake_suspend, fake_resume, f };
    if (waitq_create(&ops, &f->q) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fake *f = *state;
    waitq_destroy(f->q);
    if (f->sock[0] >= 0)
        close(f->sock[0]);
    if (f->sock[1] >= 0)
        close(f->sock[1]);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
    return 0;
}

static waitq_counts counts(fake *f)
{
    waitq_counts c;
    waitq_stats(f->q, &c);
    return c;
}

/* ------------------------------------------------------------------ tests */

static void test_add_answers_now(void **state)
{
    fake *f = *state;
    fake_conn c = { 0 };
    set_version(f, "a", 3);
    int fd = f->sock[0];

    assert_int_equal(waitq_add(f->q, &c, fd, "a", 2, 10000), 0);       /* moved on */
    assert_int_equal(waitq_add(f->q, &c, fd, "a", 4, 10000), 0);       /* differs too */
    assert_int_equal(waitq_add(f->q, &c, fd, "nobody", 0, 10000), 0);  /* unknown */
    assert_int_equal(waitq_add(f->q, &c, fd, "a", 3, 0), 0);           /* no wait */
    assert_int_equal(waitq_add(f->q, &c, -1, "a", 3, 10000), -EINVAL);
    assert_int_equal(waitq_add(f->q, NULL, fd, "a", 3, 10000), -EINVAL);
    assert_int_equal(waitq_add(f->q, &c, fd, NULL, 3, 10000), -EINVAL);
    assert_int_equal(c.suspended, 0);
    assert_int_equal(counts(f).waiting, 0);

    /* A socket the queue cannot watch is refused, not held blind. */
    fake_conn d = { 0 };
    assert_true(waitq_add(f->q, &d, 1000000, "a", 3, 10000) < 0);
    assert_int_equal(d.suspended, 0);

    waitq_close(f->q);
    assert_int_equal(waitq_add(f->q, &c, fd, "a", 3, 10000), 0);       /* closing */
    assert_int_equal(c.suspended, 0);
    assert_int_equal(c.resumed, 0);
}

static void test_notify_wakes_the_agent_when_the_version_differs(void **state)
{
    fake *f = *state;
    fake_conn a1 = { 0 }, a2 = { 0 }, b1 = { 0 }, a3 = { 0 };
    int fd = f->sock[0];
    int fd2 = dup(fd), fd3 = dup(fd), fd4 = dup(fd);
    set_version(f, "a", 1);
    set_version(f, "b", 1);
    assert_int_equal(waitq_add(f->q, &a1, fd, "a", 1, 10000), 1);
    assert_int_equal(waitq_add(f->q, &a2, fd2, "a", 1, 10000), 1);
    assert_int_equal(waitq_add(f->q, &b1, fd3, "b", 1, 10000), 1);
    assert_int_equal(a1.suspended + a2.suspended + b1.suspended, 3);
    assert_int_equal(counts(f).waiting, 3);

    waitq_notify(f->q, "a", 1); /* the same version: nothing to say */
    waitq_notify(f->q, "c", 7); /* nobody waits on c */
    assert_int_equal(counts(f).waiting, 3);

    set_version(f, "a", 2);
    assert_int_equal(waitq_add(f->q, &a3, fd4, "a", 2, 10000), 1); /* already has 2 */
    waitq_notify(f->q, "a", 2);
    /* The notifier resumes in its own thread, before it returns. */
    assert_int_equal(resumed(f, &a1), 1);
    assert_int_equal(resumed(f, &a2), 1);
    assert_int_equal(resumed(f, &a3), 0);
    assert_int_equal(resumed(f, &b1), 0);
    assert_int_equal(counts(f).waiting, 2);

    waitq_notify(f->q, "b", -1); /* b deleted */
    assert_int_equal(resumed(f, &b1), 1);
    waitq_notify(f->q, "a", 3);
    assert_int_equal(resumed(f, &a3), 1);
    assert_int_equal(resumed(f, &a1), 1); /* exactly once */

    waitq_counts c = counts(f);
    assert_int_equal(c.waiting, 0);
    assert_int_equal(c.woken, 4);
    assert_int_equal(c.timed_out + c.disconnected + c.closed, 0);
    close(fd2);
    close(fd3);
    close(fd4);
}

static void test_deadlines_resume_in_order(void **state)
{
    fake *f = *state;
    fake_conn c[3] = { { 0 } };
    const int64_t wait[3] = { 150, 30, 90 };
    int fds[3] = { f->sock[0], dup(f->sock[0]), dup(f->sock[0]) };
    set_version(f, "a", 5);
    int64_t start = mono_ms();
    for (int i = 0; i < 3; i++)
        assert_int_equal(waitq_add(f->q, &c[i], fds[i], "a", 5, wait[i]), 1);
    assert_int_equal(wait_resumes(f, 3, 2000), 3);
    assert_int_equal(c[1].order, 1);
    assert_int_equal(c[2].order, 2);
    assert_int_equal(c[0].order, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c[i].resumed, 1);
        assert_true(c[i].resumed_ms - start >= wait[i]);
    }
    waitq_counts n = counts(f);
    assert_int_equal(n.timed_out, 3);
    assert_int_equal(n.waiting, 0);
    close(fds[1]);
    close(fds[2]);
}

static void test_a_pipelined_byte_does_not_resume_but_a_hangup_does(void **state)
{
    fake *f = *state;
    fake_conn c = { 0 }, other = { 0 };
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    set_version(f, "a", 1);
    assert_int_equal(waitq_add(f->q, &c, sp[0], "a", 1, 10000), 1);
    assert_int_equal(waitq_add(f->q, &other, f->sock[0], "a", 1, 10000), 1);

    /* The client sends its next request early: that is not a hang-up. */
    assert_int_equal(write(sp[1], "G", 1), 1);
    sleep_ms(150);
    assert_int_equal(resumed(f, &c), 0);

    close(sp[1]);
    assert_int_equal(wait_resumes(f, 1, 2000), 1);
    assert_int_equal(resumed(f, &c), 1);
    assert_int_equal(resumed(f, &other), 0);
    waitq_counts n = counts(f);
    assert_int_equal(n.disconnected, 1);
    assert_int_equal(n.waiting, 1);
    waitq_close(f->q); /* other lives on this stack */
    assert_int_equal(resumed(f, &other), 1);
    close(sp[0]);
}

static void test_a_half_close_resumes(void **state)
{
    fake *f = *state;
    fake_conn c = { 0 };
    set_version(f, "a", 1);
    assert_int_equal(waitq_add(f->q, &c, f->sock[0], "a", 1, 10000), 1);
    /* EPOLLRDHUP: the peer will send nothing more; answer now rather
     * than hold a socket nobody may read. */
    assert_int_equal(shutdown(f->sock[1], SHUT_WR), 0);
    assert_int_equal(wait_resumes(f, 1, 2000), 1);
    assert_int_equal(counts(f).disconnected, 1);
}

static void test_close_resumes_everything(void **state)
{
    fake *f = *state;
    crowd w = crowd_new(f, 200);
    set_version(f, "a", 1);
    set_version(f, "b", 1);
    for (int i = 0; i < w.n; i++)
        assert_int_equal(waitq_add(f->q, &w.c[i], w.fds[i], i % 2 ? "a" : "b", 1, 60000), 1);
    waitq_close(f->q);
    /* Every resume has been called when close returns. */
    for (int i = 0; i < w.n; i++)
        assert_int_equal(w.c[i].resumed, 1);
    waitq_counts n = counts(f);
    assert_int_equal(n.closed, w.n);
    assert_int_equal(n.waiting, 0);
    fake_conn late = { 0 };
    assert_int_equal(waitq_add(f->q, &late, f->sock[0], "a", 1, 60000), 0);
    waitq_close(f->q); /* twice is fine */
    crowd_free(&w);
}

static void test_stats_count_each_cause(void **state)
{
    fake *f = *state;
    fake_conn woken = { 0 }, timed = { 0 }, gone = { 0 }, closed = { 0 };
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    int fd2 = dup(f->sock[0]), fd3 = dup(f->sock[0]);
    set_version(f, "w", 1);
    set_version(f, "t", 1);
    assert_int_equal(waitq_add(f->q, &woken, f->sock[0], "w", 1, 60000), 1);
    assert_int_equal(waitq_add(f->q, &timed, fd2, "t", 1, 20), 1);
    assert_int_equal(waitq_add(f->q, &gone, sp[0], "t", 1, 60000), 1);
    assert_int_equal(waitq_add(f->q, &closed, fd3, "t", 1, 60000), 1);
    assert_int_equal(counts(f).waiting, 4);
    waitq_notify(f->q, "w", 2);
    close(sp[1]);
    assert_int_equal(wait_resumes(f, 3, 2000), 3);
    waitq_close(f->q);
    waitq_counts n = counts(f);
    assert_int_equal(n.woken, 1);
    assert_int_equal(n.timed_out, 1);
    assert_int_equal(n.disconnected, 1);
    assert_int_equal(n.closed, 1);
    assert_int_equal(n.waiting, 0);
    assert_int_equal(woken.resumed + timed.resumed + gone.resumed + closed.resumed, 4);
    close(sp[0]);
    close(fd2);
    close(fd3);
}

/* Adds racing with commits: every waiter that was held is woken by a
 * notify (none is left for close), so no wakeup is lost between the
 * caller's read and the hold. */
typedef struct race {
    fake *f;
    int rounds;
} race;

static void *bump(void *arg)
{
    race *r = arg;
    for (int v = 2; v <= r->rounds + 1; v++) {
        set_version(r->f, "a", v);
        waitq_notify(r->f->q, "a", v);
        if (v % 64 == 0)
            sched_yield();
    }
    return NULL;
}

static void test_no_lost_wakeup(void **state)
{
    fake *f = *state;
    enum { ROUNDS = 3000 };
    crowd w = crowd_new(f, ROUNDS);
    int64_t *index = calloc(ROUNDS, sizeof *index);
    assert_non_null(index);
    set_version(f, "a", 1);
    race r = { f, ROUNDS };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, bump, &r), 0);
    int held = 0, last = 0;
    for (int i = 0; i < ROUNDS; i++) {
        fake_version(f, "a", &index[i]); /* the caller's own read, as api/ does */
        int rc = waitq_add(f->q, &w.c[i], w.fds[i], "a", index[i], 60000);
        assert_true(rc == 0 || rc == 1);
        held += rc;
    }
    pthread_join(t, NULL);
    /* Every waiter behind the final version was woken by a notify. */
    for (int i = 0; i < ROUNDS; i++) {
        if (index[i] == ROUNDS + 1)
            last += w.c[i].suspended;
        else
            assert_int_equal(w.c[i].resumed, w.c[i].suspended);
    }
    assert_int_equal(counts(f).waiting, last);
    set_version(f, "a", ROUNDS + 2);
    waitq_notify(f->q, "a", ROUNDS + 2);
    waitq_counts n = counts(f);
    assert_int_equal(n.waiting, 0);
    assert_int_equal((int)n.woken, held);
    print_message("%d adds racing %d commits: %d held\n", ROUNDS, ROUNDS, held);
    crowd_free(&w);
    free(index);
}

/* 10,000 held requests, each on its own agent (the most memory a waiter
 * can take): half woken by notifies, the rest by close. Prints the heap the
 * queue took per waiter; ASan runs check that nothing leaks. */
static void test_ten_thousand_waiters(void **state)
{
    fake *f = *state;
    if (!room_for_fds(10000))
        skip();
    crowd w = crowd_new(f, 10000);
    f->many_version = 1;
    char id[24];
    size_t heap0 = heap_in_use();
    int64_t t0 = mono_ms();
    for (int i = 0; i < w.n; i++) {
        snprintf(id, sizeof id, "many-%d", i);
        assert_int_equal(waitq_add(f->q, &w.c[i], w.fds[i], id, 1, 60000 + i), 1);
    }
    int64_t t1 = mono_ms();
    size_t heap1 = heap_in_use();
    assert_int_equal(counts(f).waiting, w.n);
    for (int i = 0; i < w.n / 2; i++) {
        snprintf(id, sizeof id, "many-%d", i);
        waitq_notify(f->q, id, 2);
    }
    int64_t t2 = mono_ms();
    assert_int_equal(counts(f).woken, w.n / 2);
    for (int i = 0; i < w.n; i++)
        assert_int_equal(w.c[i].resumed, i < w.n / 2);
    waitq_close(f->q);
    int64_t t3 = mono_ms();
    waitq_counts n = counts(f);
    assert_int_equal(n.waiting, 0);
    assert_int_equal(n.closed, w.n / 2);
    for (int i = 0; i < w.n; i++)
        assert_int_equal(w.c[i].suspended, 1);
    print_message("%d waiters: add %lld ms, notify half %lld ms, close %lld ms\n", w.n,
                  (long long)(t1 - t0), (long long)(t2 - t1), (long long)(t3 - t2));
    /* Sanitizer allocators do not report through mallinfo2. */
    if (heap1 > heap0) {
        size_t per = (heap1 - heap0) / (size_t)w.n;
        print_message("heap per waiter (own agent, 10-byte id): %zu bytes\n", per);
        assert_true(per < 1024);
    }
    crowd_free(&w);
}

/* 10,000 held requests on dups of one socket: its peer hanging up resumes
 * them all as disconnected. */
static void test_ten_thousand_hang_ups(void **state)
{
    fake *f = *state;
    if (!room_for_fds(10000))
        skip();
    crowd w = crowd_new(f, 10000);
    set_version(f, "a", 1);
    for (int i = 0; i < w.n; i++)
        assert_int_equal(waitq_add(f->q, &w.c[i], w.fds[i], "a", 1, 60000), 1);
    close(f->sock[1]);
    f->sock[1] = -1;
    assert_int_equal(wait_resumes(f, w.n, 5000), w.n);
    waitq_counts n = counts(f);
    assert_int_equal(n.disconnected, w.n);
    assert_int_equal(n.waiting, 0);
    crowd_free(&w);
}

int test_wait(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_add_answers_now),
        T(test_notify_wakes_the_agent_when_the_version_differs),
        T(test_deadlines_resume_in_order),
        T(test_a_pipelined_byte_does_not_resume_but_a_hangup_does),
        T(test_a_half_close_resumes),
        T(test_close_resumes_everything),
        T(test_stats_count_each_cause),
        T(test_no_lost_wakeup),
        T(test_ten_thousand_waiters),
        T(test_ten_thousand_hang_ups),
#undef T
    };
    return cmocka_run_group_tests_name("wait", tests, NULL, NULL);
}
