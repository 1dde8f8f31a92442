/*
 * test_store.c — store/ against a real SQLite file in a fresh temporary
 * directory per test.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/pending.h"
#include "store/store.h"
#include "store/testing.h"
#include "tests/unit/registry.h"

/* ---------------------------------------------------------------- helpers */

typedef struct fixture {
    char dir[64];           /* the temporary directory, removed at teardown */
    char data[96];          /* dir/data: the store's folder, created by open */
} fixture;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    strcpy(fx->dir, "/tmp/gotuned-store-XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    snprintf(fx->data, sizeof fx->data, "%s/data/sub", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static store *open_store(const fixture *fx, const store_options *opt)
{
    store *s = NULL;
    char err[256] = "";
    int rc = store_open(fx->data, opt, &s, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "store_open: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(s);
    return s;
}

/* Opens the database file with a connection of the test's own. */
static sqlite3 *raw_open(const fixture *fx)
{
    char path[160];
    sqlite3 *db = NULL;
    snprintf(path, sizeof path, "%s/gotuned.db", fx->data);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

/* The first column of the first row of sql, as an integer. */
static int64_t raw_int(const fixture *fx, const char *sql)
{
    sqlite3 *db = raw_open(fx);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void raw_text(const fixture *fx, const char *sql, char *out, size_t len)
{
    sqlite3 *db = raw_open(fx);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void make_facts(store_agent *a, const char *id, const char *service)
{
    memset(a, 0, sizeof *a);
    snprintf(a->id, sizeof a->id, "%s", id);
    snprintf(a->service, sizeof a->service, "%s", service);
    snprintf(a->hostname, sizeof a->hostname, "host-%s", id);
    snprintf(a->runtime, sizeof a->runtime, "go1.19.8");
    a->pid = 4242;
    a->cpu.num_cpu = 64;
    a->cpu.affinity = 64;
    a->cpu.limit = 2.5;
    snprintf(a->limit_source, sizeof a->limit_source, "cgroup2 /sys/fs/cgroup/app");
    a->parent_tighter = 0;
    a->throttle.periods = -1;           /* none reported */
    a->throttle_prev.periods = -1;
}

static void add_agent(store *s, const char *id, const char *service)
{
    store_agent a;
    bool created = false;
    make_facts(&a, id, service);
    assert_int_equal(store_agent_upsert(s, &a, 1000, &created), 0);
    assert_true(created);
}

static store_event make_event(const char *kind, const char *agent, const char *actor,
                              int64_t ts)
{
    store_event ev;
    memset(&ev, 0, sizeof ev);
    ev.ts_ms = ts;
    snprintf(ev.kind, sizeof ev.kind, "%s", kind);
    snprintf(ev.agent_id, sizeof ev.agent_id, "%s", agent);
    snprintf(ev.actor, sizeof ev.actor, "%s", actor);
    return ev;
}

/* A sample whose fields all derive from seq; nprocs Ps. */
static void make_sample(tuner_sample *x, int32_t *runq, uint32_t nprocs, int64_t seq,
                        int64_t recv_ms)
{
    tuner_sample_init(x);
    x->ts_ms = 1000 * seq;
    x->recv_ms = recv_ms;
    x->gomaxprocs = (int32_t)nprocs;
    x->idle_procs = 1;
    x->threads = 10;
    x->global_runq = seq;
    x->lat_p99_us = 12.5;
    x->nprocs = nprocs;
    for (uint32_t i = 0; i < nprocs; i++)
        runq[i] = (int32_t)(seq * 100 + i);
    x->local_runq = runq;
}

static void append_seq(store *s, const char *id, int64_t from, int64_t to, int64_t recv_ms)
{
    for (int64_t q = from; q < to; q++) {
        tuner_sample x;
        int32_t runq[4];
        make_sample(&x, runq, 4, q, recv_ms ? recv_ms : 1000 + q);
        assert_int_equal(store_samples_append(s, id, &x, 1), 0);
    }
}

static tuner_config make_config(int64_t procs)
{
    tuner_config c = { 0 };
    tuner_config_set(&c, TUNER_CFG_GOMAXPROCS, procs);
    tuner_config_set(&c, TUNER_CFG_STEAL_SCOPE, TUNER_SCOPE_ALL);
    return c;
}

typedef struct collected {
    size_t n;
    int64_t ids[64];
    char kinds[64][STORE_KIND_MAX + 1];
    char agents[64][STORE_ID_MAX + 1];
    char before[64][32];
    char after[64][32];
    bool after_null[64];
    size_t stop_after;      /* 0 = never stop */
} collected;

static int collect(void *ud, const store_event *ev)
{
    collected *c = ud;
    if (c->n < 64) {
        c->ids[c->n] = ev->id;
        snprintf(c->kinds[c->n], sizeof c->kinds[0], "%s", ev->kind);
        snprintf(c->agents[c->n], sizeof c->agents[0], "%s", ev->agent_id);
        snprintf(c->before[c->n], sizeof c->before[0], "%s", ev->before ? ev->before : "");
        snprintf(c->after[c->n], sizeof c->after[0], "%s", ev->after ? ev->after : "");
        c->after_null[c->n] = ev->after == NULL;
    }
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static collected *list_events(store *s, const store_event_filter *f)
{
    static collected c;
    memset(&c, 0, sizeof c);
    assert_int_equal(store_event_list(s, f, collect, &c), 0);
    return &c;
}

/* ------------------------------------------------------------------ tests */

static void test_mode_names(void **state)
{
    (void)state;
    assert_string_equal(store_mode_name(STORE_MODE_RECOMMEND), "recommend");
    assert_string_equal(store_mode_name(STORE_MODE_AUTO), "auto");
    assert_string_equal(store_mode_name(STORE_MODE_PINNED), "pinned");
    assert_string_equal(store_mode_name(STORE_MODE_DEFAULT), "default");
    assert_null(store_mode_name(4));
    assert_null(store_mode_name(-1));
    assert_int_equal(store_mode_parse("default"), STORE_MODE_DEFAULT);
    assert_int_equal(store_mode_parse("auto"), STORE_MODE_AUTO);
    assert_int_equal(store_mode_parse("pinned"), STORE_MODE_PINNED);
    assert_int_equal(store_mode_parse("recommend"), STORE_MODE_RECOMMEND);
    assert_int_equal(store_mode_parse("Auto"), -1);
    assert_int_equal(store_mode_parse(""), -1);
    assert_int_equal(store_mode_parse(NULL), -1);

    store_options o;
    store_options_default(&o);
    assert_int_equal(o.retention_ms, 24LL * 3600 * 1000);
    assert_int_equal(o.max_agents, 100000);
    assert_int_equal(o.flush_interval_ms, 1000);
}

static void test_open_creates_schema(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, NULL);
    assert_int_equal(store_ping(s), 0);
    store_close(s);

    struct stat st;
    assert_int_equal(stat(fx->data, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0027, 0);     /* 0750, less the umask */

    assert_int_equal(raw_int(fx, "PRAGMA user_version"), 3);
    char mode[16];
    raw_text(fx, "PRAGMA journal_mode", mode, sizeof mode);
    assert_string_equal(mode, "wal");
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                                 "AND name IN ('agents', 'config_versions', 'events', "
                                 "'policies', 'samples')"), 5);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                                 "AND name IN ('events_agent', 'events_ts', "
                                 "'samples_agent', 'samples_recv')"), 4);

    /* A second open of an up-to-date file migrates nothing. */
    s = open_store(fx, NULL);
    store_close(s);
    assert_int_equal(raw_int(fx, "PRAGMA user_version"), 3);

    /* Bad arguments. */
    char err[128];
    store *bad = NULL;
    assert_int_equal(store_open("", NULL, &bad, err, sizeof err), -EINVAL);
    assert_int_equal(store_open(NULL, NULL, &bad, err, sizeof err), -EINVAL);
    assert_null(bad);
}

static void test_refuses_newer_schema(void **state)
{
    fixture *fx = *state;
    store_close(open_store(fx, NULL));
    sqlite3 *db = raw_open(fx);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    store *s = NULL;
    char err[256] = "";
    assert_int_equal(store_open(fx->data, NULL, &s, err, sizeof err), -EIO);
    assert_null(s);
    assert_non_null(strstr(err, "newer"));
    assert_non_null(strstr(err, "99"));
    /* Nothing was touched. */
    assert_int_equal(raw_int(fx, "PRAGMA user_version"), 99);
}

static void test_reopen_keeps_everything(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, NULL);
    add_agent(s, "a1", "svc");
    tuner_config c = make_config(4), ov = { 0 };
    tuner_config_set(&ov, TUNER_CFG_WORKERS, 16);
    store_event ev = make_event("config_version", "a1", "operator", 5000);
    ev.after = "{\"v\":1}";
    int64_t v = 0;
    assert_int_equal(store_config_append(s, "a1", 0, &c, "operator", "because", &ov, &ev,
                                         5000, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(store_agent_set_mode(s, "a1", STORE_MODE_PINNED, NULL), 0);
    tuner_policy p = { 0 };
    p.set = 1u << TUNER_POL_EVEN_MIN;
    p.v[TUNER_POL_EVEN_MIN] = 6;
    assert_int_equal(store_policy_put_global(s, &p, NULL), 0);
    assert_int_equal(store_policy_put_service(s, "svc", &p, NULL), 0);
    store_close(s);

    s = open_store(fx, NULL);
    store_agent a;
    assert_int_equal(store_agent_get(s, "a1", &a), 0);
    assert_string_equal(a.hostname, "host-a1");
    assert_int_equal(a.mode, STORE_MODE_PINNED);
    assert_int_equal(a.config_version, 1);
    assert_int_equal(a.last_change_ms, 5000);
    assert_true(tuner_config_equal(&a.override, &ov));
    store_version sv;
    assert_int_equal(store_config_get(s, "a1", 0, &sv), 0);
    assert_int_equal(sv.version, 1);
    assert_true(tuner_config_equal(&sv.config, &c));
    assert_string_equal(sv.reasons, "because");
    store_version_cleanup(&sv);
    collected *got = list_events(s, NULL);
    assert_int_equal(got->n, 2);
    assert_string_equal(got->kinds[0], "agent_registered");
    assert_string_equal(got->kinds[1], "config_version");
    assert_string_equal(got->after[1], "{\"v\":1}");
    tuner_policy g;
    assert_int_equal(store_policy_get_global(s, &g), 0);
    assert_true(g.v[TUNER_POL_EVEN_MIN] == 6);
    assert_int_equal(store_policy_get_service(s, "svc", &g), 0);
    assert_int_equal(g.set, 1u << TUNER_POL_EVEN_MIN);
    store_close(s);
}

static void test_upsert(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, NULL);
    store_agent f, a;
    bool created = false;

    make_facts(&f, "agent-1", "orders");
    assert_int_equal(store_agent_upsert(s, &f, 1000, &created), 0);
    assert_true(created);
    assert_int_equal(store_agent_get(s, "agent-1", &a), 0);
    assert_string_equal(a.id, "agent-1");
    assert_string_equal(a.service, "orders");
    assert_string_equal(a.runtime, "go1.19.8");
    assert_string_equal(a.limit_source, "cgroup2 /sys/fs/cgroup/app");
    assert_int_equal(a.pid, 4242);
    assert_int_equal(a.cpu.num_cpu, 64);
    assert_true(a.cpu.limit == 2.5);
    assert_int_equal(a.parent_tighter, 0);
    assert_int_equal(a.mode, STORE_MODE_DEFAULT);
    assert_int_equal(a.config_version, 0);
    assert_int_equal(a.last_change_ms, 0);
    assert_int_equal(a.first_seen_ms, 1000);
    assert_int_equal(a.last_seen_ms, 1000);
    assert_int_equal(a.override.set, 0);
    assert_int_equal(a.samples_total, 0);
    assert_int_equal(a.throttle.periods, -1);
    assert_int_equal(a.throttle_prev.periods, -1);
    assert_int_equal(a.dropped_samples, 0);

    /* The registration event. */
    collected *got = list_events(s, NULL);
    assert_int_equal(got->n, 1);
    assert_string_equal(got->kinds[0], "agent_registered");
    assert_string_equal(got->agents[0], "agent-1");
    assert_true(got->after_null[0]);

    /* An update changes the facts and last_seen, nothing else. */
    assert_int_equal(store_agent_set_mode(s, "agent-1", STORE_MODE_AUTO, NULL), 0);
    snprintf(f.hostname, sizeof f.hostname, "other-host");
    f.pid = 7;
    f.cpu.limit = 4;
    f.parent_tighter = 1;
    f.mode = STORE_MODE_PINNED;        /* ignored */
    f.config_version = 99;             /* ignored */
    f.throttle = (store_throttle){ 1000, 40, 123456789, 1900 };
    f.throttle_prev = (store_throttle){ 900, 35, 100000000, 1800 };
    f.dropped_samples = 17;
    assert_int_equal(store_agent_upsert(s, &f, 2000, &created), 0);
    assert_false(created);
    assert_int_equal(store_agent_get(s, "agent-1", &a), 0);
    assert_memory_equal(&a.throttle, &f.throttle, sizeof a.throttle);
    assert_memory_equal(&a.throttle_prev, &f.throttle_prev, sizeof a.throttle_prev);
    assert_int_equal(a.dropped_samples, 17);
    assert_string_equal(a.hostname, "other-host");
    assert_int_equal(a.pid, 7);
    assert_true(a.cpu.limit == 4);
    assert_int_equal(a.parent_tighter, 1);
    assert_int_equal(a.first_seen_ms, 1000);
    assert_int_equal(a.last_seen_ms, 2000);
    assert_int_equal(a.mode, STORE_MODE_AUTO);
    assert_int_equal(a.config_version, 0);
    got = list_events(s, NULL);
    assert_int_equal(got->n, 1);
    assert_int_equal(store_agent_upsert(s, &f, 3000, NULL), 0);

    /* Bad input. */
    assert_int_equal(store_agent_get(s, "nobody", &a), -ENOENT);
    make_facts(&f, "", "orders");
    assert_int_equal(store_agent_upsert(s, &f, 1000, NULL), -EINVAL);
    make_facts(&f, "x", "orders");
    memset(f.hostname, 'h', sizeof f.hostname);   /* not terminated */
    assert_int_equal(store_agent_upsert(s, &f, 1000, NULL), -EINVAL);
    assert_int_equal(store_agent_get(s, "x", &a), -ENOENT);
    char long_id[STORE_ID_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_int_equal(store_agent_get(s, long_id, &a), -EINVAL);

    /* An id of the maximum length fits. */
    memset(long_id, 'b', STORE_ID_MAX);
    long_id[STORE_ID_MAX] = '\0';
    make_facts(&f, long_id, "orders");
    assert_int_equal(store_agent_upsert(s, &f, 1000, &created), 0);
    assert_true(created);
    assert_int_equal(store_agent_get(s, long_id, &a), 0);
    assert_string_equal(a.id, long_id);
    store_close(s);
}

/* A push that restates an agent's facts commits nothing: the volatile
 * facts (last seen, throttling, drops) are answered from memory at once
 * and reach the row with the flusher; any other fact commits at once, and
 * every write to the row is seen by the next read (the cached row is
 * forgotten). */
static void test_push_path(void **state)
{
    fixture *fx = *state;
    store_options opt;
    store_options_default(&opt);
    opt.flush_interval_ms = 3600 * 1000;    /* the test flushes by hand */
    store *s = open_store(fx, &opt);
    store_agent f, a;
    bool created = true;

    make_facts(&f, "agent-1", "orders");
    assert_int_equal(store_agent_upsert(s, &f, 1000, &created), 0);
    assert_int_equal(store_agent_get(s, "agent-1", &a), 0);    /* caches the row */

    f.throttle = (store_throttle){ 500, 20, 4000, 2000 };
    f.dropped_samples = 5;
    assert_int_equal(store_agent_upsert(s, &f, 2000, &created), 0);
    assert_false(created);
    assert_int_equal(store_agent_get(s, "agent-1", &a), 0);
    assert_int_equal(a.last_seen_ms, 2000);
    assert_int_equal(a.dropped_samples, 5);
    assert_memory_equal(&a.throttle, &f.throttle, sizeof a.throttle);
    size_t n = 0;
    bool more = false;
    assert_int_equal(store_agent_list(s, NULL, NULL, &a, 1, &n, &more), 0);
    assert_int_equal(n, 1);
    assert_int_equal(a.last_seen_ms, 2000);
    /* Not in the row yet: no commit was made for it. */
    assert_int_equal(raw_int(fx, "SELECT last_seen_ms FROM agents WHERE id = 'agent-1'"), 1000);
    assert_int_equal(raw_int(fx, "SELECT dropped_samples FROM agents"), 0);
    assert_int_equal(store_flush(s), 0);
    assert_int_equal(raw_int(fx, "SELECT last_seen_ms FROM agents WHERE id = 'agent-1'"), 2000);
    assert_int_equal(raw_int(fx, "SELECT dropped_samples FROM agents"), 5);
    assert_int_equal(raw_int(fx, "SELECT thr_periods + thr_throttled + thr_us FROM agents"),
                     4520);

    /* Another fact commits at once, and the next read has it. */
    snprintf(f.hostname, sizeof f.hostname, "moved");
    assert_int_equal(store_agent_upsert(s, &f, 3000, NULL), 0);
    char host[64];
    raw_text(fx, "SELECT hostname FROM agents WHERE id = 'agent-1'", host, sizeof host);
    assert_string_equal(host, "moved");
    assert_int_equal(store_agent_get(s, "agent-1", &a), 0);
    assert_string_equal(a.hostname, "moved");
    assert_int_equal(a.last_seen_ms, 3000);
    f.cpu.limit = 1.5;
    assert_int_equal(store_agent_upsert(s, &f, 3500, NULL), 0);
    assert_int_equal(store_agent_get(s, "agent-1", &a), 0);
    assert_true(a.cpu.limit == 1.5);

    /* A change through store_apply is seen by the next read too. */
    assert_int_equal(store_agent_set_mode(s, "agent-1", STORE_MODE_PINNED, NULL), 0);
    assert_int_equal(store_agent_get(s, "agent-1", &a), 0);
    assert_int_equal(a.mode, STORE_MODE_PINNED);

    /* Memory only, then closed: the close flushes it. */
    assert_int_equal(store_agent_upsert(s, &f, 4000, NULL), 0);
    assert_int_equal(raw_int(fx, "SELECT last_seen_ms FROM agents WHERE id = 'agent-1'"), 3500);
    store_close(s);
    assert_int_equal(raw_int(fx, "SELECT last_seen_ms FROM agents WHERE id = 'agent-1'"), 4000);
    s = open_store(fx, &opt);
    assert_int_equal(store_agent_get(s, "agent-1", &a), 0);
    assert_int_equal(a.last_seen_ms, 4000);
    assert_int_equal(a.dropped_samples, 5);
    assert_int_equal(a.mode, STORE_MODE_PINNED);
    store_close(s);
}

static void test_list_paging(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, NULL);
    const char *ids[] = { "c", "a", "e", "b", "d" };
    for (int i = 0; i < 5; i++)
        add_agent(s, ids[i], i % 2 ? "s2" : "s1");    /* s1: c e d, s2: a b */
    size_t n = 0;
    assert_int_equal(store_agent_count(s, &n), 0);
    assert_int_equal(n, 5);

    store_agent out[3];
    bool more = false;
    assert_int_equal(store_agent_list(s, NULL, NULL, out, 2, &n, &more), 0);
    assert_int_equal(n, 2);
    assert_true(more);
    assert_string_equal(out[0].id, "a");
    assert_string_equal(out[1].id, "b");
    assert_int_equal(store_agent_list(s, "", "b", out, 2, &n, &more), 0);
    assert_int_equal(n, 2);
    assert_true(more);
    assert_string_equal(out[0].id, "c");
    assert_string_equal(out[1].id, "d");
    assert_int_equal(store_agent_list(s, NULL, "d", out, 2, &n, &more), 0);
    assert_int_equal(n, 1);
    assert_false(more);
    assert_string_equal(out[0].id, "e");
    /* Exactly a full page: no further page. */
    assert_int_equal(store_agent_list(s, NULL, "c", out, 2, &n, &more), 0);
    assert_int_equal(n, 2);
    assert_false(more);
    assert_int_equal(store_agent_list(s, NULL, "e", out, 2, &n, &more), 0);
    assert_int_equal(n, 0);
    assert_false(more);
    assert_int_equal(store_agent_list(s, NULL, NULL, out, 0, &n, &more), 0);
    assert_int_equal(n, 0);
    assert_true(more);

    /* Service filter, with paging. */
    assert_int_equal(store_agent_list(s, "s1", NULL, out, 2, &n, &more), 0);
    assert_int_equal(n, 2);
    assert_true(more);
    assert_string_equal(out[0].id, "c");
    assert_string_equal(out[1].id, "d");
    assert_string_equal(out[0].service, "s1");
    assert_int_equal(store_agent_list(s, "s1", "d", out, 2, &n, &more), 0);
    assert_int_equal(n, 1);
    assert_false(more);
    assert_string_equal(out[0].id, "e");
    assert_int_equal(store_agent_list(s, "s2", NULL, out, 3, &n, &more), 0);
    assert_int_equal(n, 2);
    assert_false(more);
    assert_int_equal(store_agent_list(s, "nope", NULL, out, 3, &n, &more), 0);
    assert_int_equal(n, 0);
    store_close(s);
}

static void test_mode(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, NULL);
    add_agent(s, "m1", "svc");
    store_event ev = make_event("mode", "m1", "operator", 7000);
    ev.before = "recommend";
    ev.after = "auto";
    assert_int_equal(store_agent_set_mode(s, "m1", STORE_MODE_AUTO, &ev), 0);
    store_agent a;
    assert_int_equal(store_agent_get(s, "m1", &a), 0);
    assert_int_equal(a.mode, STORE_MODE_AUTO);
    store_event_filter f = { .kind = "mode" };
    collected *got = list_events(s, &f);
    assert_int_equal(got->n, 1);
    assert_string_equal(got->before[0], "recommend");
    assert_string_equal(got->after[0], "auto");

    /* Unknown agent and bad mode change nothing, event included. */
    ev = make_event("mode", "zz", "operator", 7001);
    assert_int_equal(store_agent_set_mode(s, "zz", STORE_MODE_PINNED, &ev), -ENOENT);
    assert_int_equal(store_agent_set_mode(s, "m1", (store_mode)7, &ev), -EINVAL);
    store_event bad = make_event("", "m1", "operator", 1);
    assert_int_equal(store_agent_set_mode(s, "m1", STORE_MODE_PINNED, &bad), -EINVAL);
    got = list_events(s, &f);
    assert_int_equal(got->n, 1);
    assert_int_equal(store_agent_get(s, "m1", &a), 0);
    assert_int_equal(a.mode, STORE_MODE_AUTO);
    store_close(s);
}

static void test_config_versions(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, NULL);
    add_agent(s, "c1", "svc");
    store_version sv;
    assert_int_equal(store_config_get(s, "c1", 0, &sv), -ENOENT);   /* none yet */

    int64_t v = 0;
    for (int64_t i = 0; i < 3; i++) {
        tuner_config c = make_config(2 + i);
        store_event ev = make_event("config_version", "c1", "tuner", 100 + i);
        char reasons[32];
        snprintf(reasons, sizeof reasons, "[\"r%lld\"]", (long long)i);
        assert_int_equal(store_config_append(s, "c1", i, &c, "tuner", i == 1 ? NULL : reasons,
                                             NULL, &ev, 100 + i, &v), 0);
        assert_int_equal(v, i + 1);
    }
    /* A stale expectation, an unknown agent: nothing written. */
    tuner_config c = make_config(9);
    store_event ev = make_event("config_version", "c1", "tuner", 200);
    assert_int_equal(store_config_append(s, "c1", 1, &c, "operator", NULL, NULL, &ev, 200, &v),
                     -ESTALE);
    assert_int_equal(store_config_append(s, "c1", 4, &c, "operator", NULL, NULL, &ev, 200, &v),
                     -ESTALE);
    assert_int_equal(store_config_append(s, "nobody", 0, &c, "operator", NULL, NULL, &ev, 200,
                                         &v), -ENOENT);
    assert_int_equal(store_config_append(s, "c1", 3, &c, "", NULL, NULL, NULL, 200, &v), -EINVAL);
    assert_int_equal(store_config_append(s, "c1", 3, &c, "a-source-that-is-too-long", NULL,
                                         NULL, NULL, 200, &v), -EINVAL);
    store_event_filter f = { .kind = "config_version" };
    assert_int_equal(list_events(s, &f)->n, 3);

    /* Current and by number. */
    assert_int_equal(store_config_get(s, "c1", 0, &sv), 0);
    assert_int_equal(sv.version, 3);
    assert_int_equal(sv.created_ms, 102);
    assert_int_equal(sv.config.v[TUNER_CFG_GOMAXPROCS], 4);
    assert_string_equal(sv.source, "tuner");
    assert_string_equal(sv.reasons, "[\"r2\"]");
    store_version_cleanup(&sv);
    assert_null(sv.reasons);
    assert_int_equal(store_config_get(s, "c1", 2, &sv), 0);
    assert_int_equal(sv.version, 2);
    assert_null(sv.reasons);
    c = make_config(3);
    assert_true(tuner_config_equal(&sv.config, &c));
    assert_false(tuner_config_has(&sv.config, TUNER_CFG_WORKERS));     /* NULL stays unset */
    store_version_cleanup(&sv);
    assert_int_equal(store_config_get(s, "c1", 4, &sv), -ENOENT);
    assert_int_equal(store_config_get(s, "nobody", 0, &sv), -ENOENT);

    /* History, newest first. */
    store_version h[5];
    size_t n = 0;
    assert_int_equal(store_config_history(s, "c1", h, 5, &n), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(h[i].version, 3 - (int64_t)i);
        store_version_cleanup(&h[i]);
    }
    assert_int_equal(store_config_history(s, "c1", h, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(h[0].version, 3);
    assert_int_equal(h[1].version, 2);
    store_version_cleanup(&h[0]);
    store_version_cleanup(&h[1]);
    assert_int_equal(store_config_history(s, "nobody", h, 2, &n), -ENOENT);
    add_agent(s, "c2", "svc");
    assert_int_equal(store_config_history(s, "c2", h, 2, &n), 0);
    assert_int_equal(n, 0);

    /* An override is stored with its version, and cleared by an empty one. */
    tuner_config ov = { 0 };
    tuner_config_set(&ov, TUNER_CFG_GOMAXPROCS, 6);
    tuner_config_set(&ov, TUNER_CFG_TASK_TIMEOUT_MS, 250);
    c = make_config(6);
    assert_int_equal(store_config_append(s, "c1", 3, &c, "override", NULL, &ov, NULL, 300, &v),
                     0);
    assert_int_equal(v, 4);
    store_agent a;
    assert_int_equal(store_agent_get(s, "c1", &a), 0);
    assert_int_equal(a.config_version, 4);
    assert_int_equal(a.last_change_ms, 300);
    assert_true(tuner_config_equal(&a.override, &ov));
    /* A version without override leaves it alone. */
    assert_int_equal(store_config_append(s, "c1", 4, &c, "tuner", NULL, NULL, NULL, 400, &v), 0);
    assert_int_equal(store_agent_get(s, "c1", &a), 0);
    assert_true(tuner_config_equal(&a.override, &ov));
    tuner_config none = { 0 };
    assert_int_equal(store_config_append(s, "c1", 5, &c, "operator", NULL, &none, NULL, 500, &v),
                     0);
    assert_int_equal(store_agent_get(s, "c1", &a), 0);
    assert_int_equal(a.override.set, 0);
    assert_int_equal(a.config_version, 6);
    store_close(s);
}

static void test_events(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, NULL);
    static const struct { const char *kind, *agent; int64_t ts; } evs[] = {
        { "ack", "a", 100 }, { "nack", "b", 200 }, { "ack", "b", 300 },
        { "policy", "", 400 }, { "ack", "a", 500 },
    };
    for (size_t i = 0; i < 5; i++) {
        store_event ev = make_event(evs[i].kind, evs[i].agent, "agent", evs[i].ts);
        ev.before = i == 0 ? "{\"x\":\"é\"}" : NULL;
        ev.after = "{}";
        assert_int_equal(store_event_append(s, &ev), 0);
    }
    collected *got = list_events(s, NULL);
    assert_int_equal(got->n, 5);
    for (size_t i = 1; i < 5; i++)
        assert_true(got->ids[i] > got->ids[i - 1]);
    assert_string_equal(got->before[0], "{\"x\":\"é\"}");
    int64_t first = got->ids[0];

    store_event_filter f = { .agent_id = "b" };
    got = list_events(s, &f);
    assert_int_equal(got->n, 2);
    assert_string_equal(got->kinds[0], "nack");
    assert_string_equal(got->kinds[1], "ack");

    f = (store_event_filter){ .kind = "ack" };
    assert_int_equal(list_events(s, &f)->n, 3);
    f = (store_event_filter){ .kind = "ack", .agent_id = "a" };
    assert_int_equal(list_events(s, &f)->n, 2);
    f = (store_event_filter){ .since_ms = 300 };
    got = list_events(s, &f);
    assert_int_equal(got->n, 3);
    assert_string_equal(got->kinds[0], "ack");
    assert_string_equal(got->kinds[1], "policy");
    f = (store_event_filter){ .after_id = first + 1 };
    got = list_events(s, &f);
    assert_int_equal(got->n, 3);
    assert_int_equal(got->ids[0], first + 2);
    f = (store_event_filter){ .limit = 2 };
    got = list_events(s, &f);
    assert_int_equal(got->n, 2);
    assert_int_equal(got->ids[1], first + 1);
    f = (store_event_filter){ .limit = 2, .after_id = got->ids[1] };
    got = list_events(s, &f);
    assert_int_equal(got->n, 2);
    assert_int_equal(got->ids[0], first + 2);
    f = (store_event_filter){ .agent_id = "nobody" };
    assert_int_equal(list_events(s, &f)->n, 0);

    /* A callback can stop the walk. */
    collected c;
    memset(&c, 0, sizeof c);
    c.stop_after = 2;
    assert_int_equal(store_event_list(s, NULL, collect, &c), 0);
    assert_int_equal(c.n, 2);

    store_event bad = make_event("", "a", "x", 1);
    assert_int_equal(store_event_append(s, &bad), -EINVAL);
    assert_int_equal(store_event_append(s, NULL), -EINVAL);
    /* A zero timestamp is stamped with the wall clock. */
    store_event now = make_event("tick", "", "server", 0);
    int64_t before = now_ms();
    assert_int_equal(store_event_append(s, &now), 0);
    f = (store_event_filter){ .kind = "tick", .since_ms = before };
    assert_int_equal(list_events(s, &f)->n, 1);
    store_close(s);
}

static void assert_policy_equal(const tuner_policy *a, const tuner_policy *b)
{
    assert_int_equal(a->set, b->set);
    for (int f = 0; f < TUNER_POL_NFIELDS; f++)
        if ((a->set >> f) & 1u)
            assert_true(a->v[f] == b->v[f]);
}

static void test_policies(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, NULL);
    tuner_policy defaults, p, got;
    tuner_policy_defaults(&defaults);

    assert_int_equal(store_policy_get_global(s, &got), 0);
    assert_policy_equal(&got, &defaults);
    assert_int_equal(store_policy_get_service(s, "svc", &got), -ENOENT);
    assert_int_equal(store_policy_effective(s, "svc", &got), 0);
    assert_policy_equal(&got, &defaults);

    /* Global: threshold 4, persistence 0.25. */
    memset(&p, 0, sizeof p);
    p.set = 1u << TUNER_POL_STEAL_THRESHOLD | 1u << TUNER_POL_STEAL_PERSISTENCE;
    p.v[TUNER_POL_STEAL_THRESHOLD] = 4;
    p.v[TUNER_POL_STEAL_PERSISTENCE] = 0.25;
    store_event ev = make_event("policy", "", "operator", 10);
    assert_int_equal(store_policy_put_global(s, &p, &ev), 0);
    assert_int_equal(store_policy_get_global(s, &got), 0);
    assert_int_equal(got.set, defaults.set);
    assert_true(got.v[TUNER_POL_STEAL_THRESHOLD] == 4);
    assert_true(got.v[TUNER_POL_STEAL_PERSISTENCE] == 0.25);
    assert_true(got.v[TUNER_POL_EVEN_MIN] == defaults.v[TUNER_POL_EVEN_MIN]);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM policies WHERE scope = '' AND field "
                                 "= 'neighbor_steal.threshold' AND value = 4"), 1);

    /* Service: rounding floor, threshold 2. */
    memset(&p, 0, sizeof p);
    p.set = 1u << TUNER_POL_QUOTA_ROUNDING | 1u << TUNER_POL_STEAL_THRESHOLD;
    p.v[TUNER_POL_QUOTA_ROUNDING] = TUNER_ROUND_FLOOR;
    p.v[TUNER_POL_STEAL_THRESHOLD] = 2;
    snprintf(ev.service, sizeof ev.service, "svc");
    assert_int_equal(store_policy_put_service(s, "svc", &p, &ev), 0);
    assert_int_equal(store_policy_get_service(s, "svc", &got), 0);
    assert_int_equal(got.set, p.set);
    assert_true(got.v[TUNER_POL_QUOTA_ROUNDING] == TUNER_ROUND_FLOOR);
    assert_true(got.v[TUNER_POL_STEAL_THRESHOLD] == 2);

    /* Effective: defaults < global < service, field by field. */
    assert_int_equal(store_policy_effective(s, "svc", &got), 0);
    assert_int_equal(got.set, defaults.set);
    assert_true(got.v[TUNER_POL_QUOTA_ROUNDING] == TUNER_ROUND_FLOOR);   /* service */
    assert_true(got.v[TUNER_POL_STEAL_THRESHOLD] == 2);                  /* service over global */
    assert_true(got.v[TUNER_POL_STEAL_PERSISTENCE] == 0.25);             /* global */
    assert_true(got.v[TUNER_POL_STEAL_WINDOW] == 30);                    /* default */
    assert_int_equal(store_policy_effective(s, "other", &got), 0);
    assert_true(got.v[TUNER_POL_STEAL_THRESHOLD] == 4);
    assert_int_equal(store_policy_effective(s, NULL, &got), 0);
    assert_true(got.v[TUNER_POL_QUOTA_ROUNDING] == TUNER_ROUND_CEIL);

    /* put_global replaces: persistence, no longer set, is back to default. */
    memset(&p, 0, sizeof p);
    p.set = 1u << TUNER_POL_GUARD_MIN_INTERVAL_S;
    p.v[TUNER_POL_GUARD_MIN_INTERVAL_S] = 120;
    assert_int_equal(store_policy_put_global(s, &p, NULL), 0);
    assert_int_equal(store_policy_get_global(s, &got), 0);
    assert_true(got.v[TUNER_POL_STEAL_PERSISTENCE] == 0.5);
    assert_true(got.v[TUNER_POL_STEAL_THRESHOLD] == 8);
    assert_true(got.v[TUNER_POL_GUARD_MIN_INTERVAL_S] == 120);

    /* Invalid patches are rejected and change nothing, event included. */
    size_t events_before = list_events(s, NULL)->n;
    memset(&p, 0, sizeof p);
    p.set = 1u << TUNER_POL_QUOTA_MIN_PROCS;
    p.v[TUNER_POL_QUOTA_MIN_PROCS] = 0;                          /* below 1 */
    assert_int_equal(store_policy_put_global(s, &p, &ev), -EINVAL);
    p.v[TUNER_POL_QUOTA_MIN_PROCS] = 2.5;                        /* not whole */
    assert_int_equal(store_policy_put_service(s, "svc", &p, &ev), -EINVAL);
    p.set = 1u << TUNER_POL_NFIELDS;                             /* unknown field */
    assert_int_equal(store_policy_put_global(s, &p, &ev), -EINVAL);
    assert_int_equal(store_policy_put_service(s, "", &p, &ev), -EINVAL);
    assert_int_equal(list_events(s, NULL)->n, events_before);
    assert_int_equal(store_policy_get_global(s, &got), 0);
    assert_true(got.v[TUNER_POL_QUOTA_MIN_PROCS] == 2);
    assert_true(got.v[TUNER_POL_GUARD_MIN_INTERVAL_S] == 120);
    assert_int_equal(store_policy_get_service(s, "svc", &got), 0);
    assert_true(got.v[TUNER_POL_STEAL_THRESHOLD] == 2);

    /* Delete. */
    assert_int_equal(store_policy_delete_service(s, "svc", &ev), 0);
    assert_int_equal(store_policy_get_service(s, "svc", &got), -ENOENT);
    assert_int_equal(store_policy_delete_service(s, "svc", &ev), -ENOENT);
    assert_int_equal(list_events(s, NULL)->n, events_before + 1);
    assert_int_equal(store_policy_effective(s, "svc", &got), 0);
    assert_true(got.v[TUNER_POL_QUOTA_ROUNDING] == TUNER_ROUND_CEIL);
    assert_true(got.v[TUNER_POL_GUARD_MIN_INTERVAL_S] == 120);
    store_close(s);
}

static void test_samples_window(void **state)
{
    fixture *fx = *state;
    store_options o;
    store_options_default(&o);
    o.flush_interval_ms = 3600 * 1000;      /* only explicit flushes */
    store *s = open_store(fx, &o);
    add_agent(s, "w", "svc");

    tuner_sample *win = NULL;
    size_t n = 99;
    assert_int_equal(store_samples_window(s, "w", 128, &win, &n), 0);
    assert_int_equal(n, 0);
    assert_null(win);

    append_seq(s, "w", 0, 200, 0);
    assert_int_equal(store_samples_window(s, "w", 1000, &win, &n), 0);
    assert_int_equal(n, TUNER_MAX_WINDOW);
    for (size_t i = 0; i < n; i++) {
        int64_t seq = 200 - TUNER_MAX_WINDOW + (int64_t)i;
        assert_int_equal(win[i].ts_ms, 1000 * seq);
        assert_int_equal(win[i].nprocs, 4);
        assert_int_equal(win[i].local_runq[3], seq * 100 + 3);
        assert_int_equal(win[i].global_runq, seq);
        assert_int_equal(win[i].goroutines, -1);
    }
    /* The copy is the caller's: scribbling on it changes nothing stored. */
    win[n - 1].local_runq[0] = -5;
    store_samples_free(win, n);
    assert_int_equal(store_samples_window(s, "w", 10, &win, &n), 0);
    assert_int_equal(n, 10);
    assert_int_equal(win[0].ts_ms, 1000 * 190);
    assert_int_equal(win[9].ts_ms, 1000 * 199);
    assert_int_equal(win[9].local_runq[0], 19900);
    store_samples_free(win, n);

    /* The store copies what it is given. */
    tuner_sample x[2];
    int32_t r0[3] = { 7, 8, 9 }, r1[1] = { 42 };
    make_sample(&x[0], r0, 3, 500, 5000);
    make_sample(&x[1], r1, 1, 501, 5001);
    r0[0] = 7, r0[1] = 8, r0[2] = 9;
    r1[0] = 42;
    assert_int_equal(store_samples_append(s, "w", x, 2), 0);
    r0[0] = r0[1] = r0[2] = -1;
    r1[0] = -1;
    assert_int_equal(store_samples_window(s, "w", 2, &win, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(win[0].nprocs, 3);
    assert_int_equal(win[0].local_runq[0], 7);
    assert_int_equal(win[0].local_runq[2], 9);
    assert_int_equal(win[1].nprocs, 1);
    assert_int_equal(win[1].local_runq[0], 42);
    assert_true(win[0].local_runq != r0);
    store_samples_free(win, n);

    store_agent a;
    assert_int_equal(store_agent_get(s, "w", &a), 0);
    assert_int_equal(a.samples_total, 202);

    /* Rejected input changes nothing: a bad sample fails the whole batch. */
    int32_t big[TUNER_MAX_PROCS + 1] = { 0 };
    make_sample(&x[0], r0, 3, 600, 6000);
    make_sample(&x[1], big, TUNER_MAX_PROCS + 1, 601, 6001);
    assert_int_equal(store_samples_append(s, "w", x, 2), -EINVAL);
    make_sample(&x[1], big, 0, 601, 6001);
    assert_int_equal(store_samples_append(s, "w", x, 2), -EINVAL);
    make_sample(&x[1], big, 2, 601, 0);                 /* recv_ms unset */
    assert_int_equal(store_samples_append(s, "w", x, 2), -EINVAL);
    make_sample(&x[1], big, TUNER_MAX_PROCS, 601, 6001);
    x[1].local_runq = NULL;
    assert_int_equal(store_samples_append(s, "w", x, 2), -EINVAL);
    assert_int_equal(store_samples_append(s, "nobody", x, 1), -ENOENT);
    assert_int_equal(store_samples_window(s, "nobody", 5, &win, &n), -ENOENT);
    assert_int_equal(store_agent_get(s, "w", &a), 0);
    assert_int_equal(a.samples_total, 202);
    /* The largest P count is fine. */
    make_sample(&x[1], big, TUNER_MAX_PROCS, 601, 6001);
    assert_int_equal(store_samples_append(s, "w", &x[1], 1), 0);
    store_close(s);
}

static void test_samples_persist_reload(void **state)
{
    fixture *fx = *state;
    store_options o;
    store_options_default(&o);
    o.flush_interval_ms = 3600 * 1000;
    store *s = open_store(fx, &o);
    add_agent(s, "p1", "svc");
    add_agent(s, "p2", "svc");
    int64_t now = now_ms();
    append_seq(s, "p1", 0, 150, now);
    tuner_sample x;
    int32_t runq[2];
    make_sample(&x, runq, 2, 7, now);
    runq[0] = -3;                   /* negative and large values survive */
    runq[1] = 2147483647;
    x.goroutines = 99;
    x.needspinning = 0;
    x.lat_p50_us = 1.25;
    x.lat_p99_us = -1;
    assert_int_equal(store_samples_append(s, "p2", &x, 1), 0);
    /* A runtime/metrics sample (the Go library): no per-P queues, with a
     * GC pause and the worker pool's queues. */
    add_agent(s, "p3", "svc");
    int32_t pool[3] = { 5, 0, 7 };
    make_sample(&x, runq, 0, 8, now);
    x.gomaxprocs = 4;
    x.gc_p99_us = 310.5;
    x.pool_threshold = 3;
    x.pool_scope = TUNER_SCOPE_ALL;
    x.npool = 3;
    x.pool_queues = pool;
    assert_int_equal(store_samples_append(s, "p3", &x, 1), 0);

    assert_int_equal(raw_int(fx, "SELECT count(*) FROM samples"), 0);
    assert_int_equal(store_flush(s), 0);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM samples"), 152);
    assert_int_equal(raw_int(fx, "SELECT hex(pool_queues) = '050000000000000007000000' AND "
                                 "length(local_runq) = 0 AND pool_threshold = 3 FROM samples "
                                 "WHERE agent_id = 'p3'"), 1);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM samples WHERE pool_queues IS NULL"),
                     151);
    assert_int_equal(raw_int(fx, "SELECT samples_total FROM agents WHERE id = 'p1'"), 150);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM samples WHERE goroutines IS NULL"), 151);
    assert_int_equal(raw_int(fx, "SELECT length(local_runq) FROM samples WHERE agent_id = 'p2'"),
                     8);
    assert_int_equal(raw_int(fx, "SELECT hex(local_runq) = 'FDFFFFFFFFFFFF7F' FROM samples "
                                 "WHERE agent_id = 'p2'"), 1);
    store_close(s);

    s = open_store(fx, &o);
    tuner_sample *win = NULL;
    size_t n = 0;
    assert_int_equal(store_samples_window(s, "p1", 1000, &win, &n), 0);
    assert_int_equal(n, TUNER_MAX_WINDOW);
    for (size_t i = 0; i < n; i++) {
        int64_t seq = 150 - TUNER_MAX_WINDOW + (int64_t)i;
        assert_int_equal(win[i].ts_ms, 1000 * seq);
        assert_int_equal(win[i].recv_ms, now);
        assert_int_equal(win[i].local_runq[1], seq * 100 + 1);
        assert_int_equal(win[i].idle_procs, 1);
        assert_int_equal(win[i].spinning_threads, -1);
        assert_true(win[i].lat_p99_us == 12.5);
        assert_true(win[i].lat_p50_us == -1);
    }
    store_samples_free(win, n);
    assert_int_equal(store_samples_window(s, "p2", 1000, &win, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(win[0].local_runq[0], -3);
    assert_int_equal(win[0].local_runq[1], 2147483647);
    assert_int_equal(win[0].goroutines, 99);
    assert_int_equal(win[0].needspinning, 0);
    assert_true(win[0].lat_p50_us == 1.25);
    assert_true(win[0].lat_p99_us == -1);
    assert_int_equal(win[0].npool, 0);
    assert_int_equal(win[0].pool_threshold, -1);
    assert_true(win[0].gc_p99_us == -1);
    store_samples_free(win, n);
    assert_int_equal(store_samples_window(s, "p3", 1000, &win, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(win[0].nprocs, 0);
    assert_int_equal(win[0].gomaxprocs, 4);
    assert_true(win[0].gc_p99_us == 310.5);
    assert_int_equal(win[0].pool_threshold, 3);
    assert_int_equal(win[0].pool_scope, TUNER_SCOPE_ALL);
    assert_int_equal(win[0].npool, 3);
    assert_int_equal(win[0].pool_queues[0], 5);
    assert_int_equal(win[0].pool_queues[2], 7);
    store_samples_free(win, n);
    store_agent a;
    assert_int_equal(store_agent_get(s, "p1", &a), 0);
    assert_int_equal(a.samples_total, 150);

    /* Appends after a reload continue the window and the count; close
     * flushes without being asked. */
    append_seq(s, "p1", 150, 160, now + 1);
    assert_int_equal(store_agent_get(s, "p1", &a), 0);
    assert_int_equal(a.samples_total, 160);
    store_close(s);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM samples WHERE agent_id = 'p1'"), 160);
    assert_int_equal(raw_int(fx, "SELECT samples_total FROM agents WHERE id = 'p1'"), 160);
    s = open_store(fx, &o);
    assert_int_equal(store_samples_window(s, "p1", 1, &win, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(win[0].ts_ms, 1000 * 159);
    store_samples_free(win, n);
    store_close(s);
}

static void test_flusher_thread(void **state)
{
    fixture *fx = *state;
    store_options o;
    store_options_default(&o);
    o.flush_interval_ms = 20;
    store *s = open_store(fx, &o);
    add_agent(s, "f", "svc");
    append_seq(s, "f", 0, 30, now_ms());
    int64_t count = 0;
    for (int i = 0; i < 500 && count < 30; i++) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        count = raw_int(fx, "SELECT count(*) FROM samples");
    }
    assert_int_equal(count, 30);
    assert_int_equal(store_test_pending(s, NULL), 0);
    /* Closing with a long interval pending returns at once. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    store_close(s);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 2);
}

static void test_retention(void **state)
{
    fixture *fx = *state;
    store_options o;
    store_options_default(&o);
    o.flush_interval_ms = 3600 * 1000;
    o.retention_ms = 60 * 1000;
    store *s = open_store(fx, &o);
    add_agent(s, "r", "svc");
    int64_t now = now_ms();
    append_seq(s, "r", 0, 20, now - 3600 * 1000);      /* an hour old */
    append_seq(s, "r", 20, 25, now - 1000);            /* recent */
    assert_int_equal(store_flush(s), 0);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM samples"), 5);
    assert_int_equal(raw_int(fx, "SELECT min(ts_ms) FROM samples"), 20 * 1000);
    /* The count of accepted samples is not retention's business. */
    store_agent a;
    assert_int_equal(store_agent_get(s, "r", &a), 0);
    assert_int_equal(a.samples_total, 25);
    store_close(s);

    s = open_store(fx, &o);
    tuner_sample *win = NULL;
    size_t n = 0;
    assert_int_equal(store_samples_window(s, "r", 100, &win, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(win[0].ts_ms, 20 * 1000);
    store_samples_free(win, n);
    store_close(s);
}

static void test_delete_agent(void **state)
{
    fixture *fx = *state;
    store_options o;
    store_options_default(&o);
    o.flush_interval_ms = 3600 * 1000;
    store *s = open_store(fx, &o);
    add_agent(s, "d", "svc");
    add_agent(s, "keep", "svc");
    tuner_config c = make_config(4);
    store_event ev = make_event("config_version", "d", "tuner", 10);
    assert_int_equal(store_config_append(s, "d", 0, &c, "tuner", NULL, NULL, &ev, 10, NULL), 0);
    assert_int_equal(store_config_append(s, "d", 1, &c, "tuner", NULL, NULL, &ev, 11, NULL), 0);
    assert_int_equal(store_config_append(s, "keep", 0, &c, "tuner", NULL, NULL, NULL, 11, NULL),
                     0);
    int64_t now = now_ms();
    append_seq(s, "d", 0, 10, now);
    append_seq(s, "keep", 0, 3, now);
    assert_int_equal(store_flush(s), 0);
    append_seq(s, "d", 10, 15, now);        /* still pending at delete */

    store_event del = make_event("agent_deleted", "d", "operator", 20);
    assert_int_equal(store_agent_delete(s, "d", &del), 0);
    store_agent a;
    assert_int_equal(store_agent_get(s, "d", &a), -ENOENT);
    tuner_sample *win = NULL;
    size_t n = 0;
    assert_int_equal(store_samples_window(s, "d", 10, &win, &n), -ENOENT);
    tuner_sample x;
    int32_t runq[4];
    make_sample(&x, runq, 4, 1, now);
    assert_int_equal(store_samples_append(s, "d", &x, 1), -ENOENT);
    store_version sv;
    assert_int_equal(store_config_get(s, "d", 1, &sv), -ENOENT);
    assert_int_equal(store_agent_delete(s, "d", &del), -ENOENT);
    assert_int_equal(store_flush(s), 0);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM samples WHERE agent_id = 'd'"), 0);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM config_versions WHERE agent_id = 'd'"), 0);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM samples WHERE agent_id = 'keep'"), 3);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM config_versions WHERE agent_id = 'keep'"),
                     1);
    store_event_filter f = { .agent_id = "d" };
    collected *got = list_events(s, &f);
    assert_int_equal(got->n, 4);     /* registered, two versions, deleted */
    assert_string_equal(got->kinds[3], "agent_deleted");
    size_t count = 0;
    assert_int_equal(store_agent_count(s, &count), 0);
    assert_int_equal(count, 1);

    /* The id can come back, as a new agent. */
    bool created = false;
    store_agent facts;
    make_facts(&facts, "d", "svc");
    assert_int_equal(store_agent_upsert(s, &facts, 30, &created), 0);
    assert_true(created);
    assert_int_equal(store_agent_get(s, "d", &a), 0);
    assert_int_equal(a.config_version, 0);
    assert_int_equal(a.samples_total, 0);
    assert_int_equal(store_samples_window(s, "d", 10, &win, &n), 0);
    assert_int_equal(n, 0);
    store_close(s);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM samples WHERE agent_id = 'd'"), 0);
}

static void test_max_agents(void **state)
{
    fixture *fx = *state;
    store_options o;
    store_options_default(&o);
    o.max_agents = 3;
    store *s = open_store(fx, &o);
    add_agent(s, "a", "svc");
    add_agent(s, "b", "svc");
    add_agent(s, "c", "svc");
    store_agent f;
    make_facts(&f, "d", "svc");
    assert_int_equal(store_agent_upsert(s, &f, 1, NULL), -ENOSPC);
    assert_int_equal(store_agent_get(s, "d", &f), -ENOENT);
    make_facts(&f, "a", "svc");
    assert_int_equal(store_agent_upsert(s, &f, 2, NULL), 0);     /* updates still work */
    assert_int_equal(store_agent_delete(s, "b", NULL), 0);
    make_facts(&f, "d", "svc");
    assert_int_equal(store_agent_upsert(s, &f, 3, NULL), 0);
    store_close(s);

    /* The cap holds across a restart. */
    s = open_store(fx, &o);
    make_facts(&f, "e", "svc");
    assert_int_equal(store_agent_upsert(s, &f, 4, NULL), -ENOSPC);
    store_close(s);
}

static void test_pending_cap(void **state)
{
    fixture *fx = *state;
    store_options o;
    store_options_default(&o);
    o.flush_interval_ms = 3600 * 1000;
    store *s = open_store(fx, &o);
    add_agent(s, "q", "svc");
    store_test_pending_limit(s, 10);
    append_seq(s, "q", 0, 8, now_ms());
    /* A batch that would pass the cap is refused whole, and changes
     * nothing: neither the queue nor the window nor the count. */
    tuner_sample x[3];
    int32_t runq[3][4];
    for (int i = 0; i < 3; i++)
        make_sample(&x[i], runq[i], 4, 8 + i, now_ms());
    assert_int_equal(store_samples_append(s, "q", x, 3), -EBUSY);
    uint64_t dropped = 0;
    assert_int_equal(store_test_pending(s, &dropped), 8);
    assert_int_equal(dropped, 0);
    tuner_sample *win = NULL;
    size_t n = 0;
    assert_int_equal(store_samples_window(s, "q", 100, &win, &n), 0);
    assert_int_equal(n, 8);
    store_samples_free(win, n);
    store_agent a;
    assert_int_equal(store_agent_get(s, "q", &a), 0);
    assert_int_equal(a.samples_total, 8);
    store_stats st;
    store_stats_get(s, &st);
    assert_int_equal(st.samples_refused, 3);
    assert_false(store_samples_busy(s));                /* 8 of 10 */
    /* Two fit. */
    assert_int_equal(store_samples_append(s, "q", x, 2), 0);
    assert_true(store_samples_busy(s));                 /* nine tenths or more */
    assert_int_equal(store_samples_append(s, "q", x + 2, 1), -EBUSY);
    /* Once written, the queue takes samples again. */
    assert_int_equal(store_flush(s), 0);
    assert_int_equal(store_test_pending(s, NULL), 0);
    assert_false(store_samples_busy(s));
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM samples"), 10);
    assert_int_equal(store_samples_append(s, "q", x + 2, 1), 0);
    store_stats_get(s, &st);
    assert_int_equal(st.samples_refused, 4);
    assert_int_equal(st.samples_dropped, 0);
    store_close(s);
}

/* A queue of an eighth of its cap wakes the flusher long before its
 * interval is up. */
static void test_flusher_wakes_early(void **state)
{
    fixture *fx = *state;
    store_options o;
    store_options_default(&o);
    o.flush_interval_ms = 3600 * 1000;
    store *s = open_store(fx, &o);
    add_agent(s, "w", "svc");
    enum { N = 100000 / 8 };
    append_seq(s, "w", 0, N - 1, now_ms());
    usleep(300 * 1000);
    assert_int_equal(store_test_pending(s, NULL), N - 1);     /* below: nothing written */
    append_seq(s, "w", N - 1, N, now_ms());
    size_t left = N;
    for (int i = 0; i < 200 && left > 0; i++) {                /* 20 s at most */
        usleep(100 * 1000);
        left = store_test_pending(s, NULL);
    }
    assert_int_equal(left, 0);
    /* The queue is empty once the flusher has taken the last batch, which
     * it may still be writing: store_flush waits for that round. */
    assert_int_equal(store_flush(s), 0);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM samples"), N);
    store_close(s);
}

/* The in-memory encoding gives back exactly what it was given. */
static void test_sample_encoding(void **state)
{
    (void)state;
    static int32_t q[2 * TUNER_MAX_PROCS], back[2 * TUNER_MAX_PROCS];
    const double figs[] = { -1, 0, 12, 480.5, -0.0, 1e300, 9007199254740992.0,
                            9007199254740991.0, 3.0e-7, NAN };
    for (size_t f = 0; f < sizeof figs / sizeof figs[0]; f++) {
        tuner_sample x, y;
        tuner_sample_init(&x);
        x.ts_ms = f % 2 ? -1 : (int64_t)1 << 52;
        x.recv_ms = 1764900000123 + (int64_t)f;
        x.gomaxprocs = f % 3 ? -1 : TUNER_MAX_PROCS;
        x.idle_procs = 0;
        x.threads = 10000000;
        x.spinning_threads = INT32_MIN;
        x.idle_threads = INT32_MAX;
        x.needspinning = 1;
        x.global_runq = INT64_MAX;
        x.goroutines = INT64_MIN;
        x.lat_p50_us = figs[f];
        x.lat_p99_us = figs[(f + 1) % (sizeof figs / sizeof figs[0])];
        x.gc_p99_us = figs[(f + 2) % (sizeof figs / sizeof figs[0])];
        x.nprocs = f == 0 ? 0 : f == 1 ? TUNER_MAX_PROCS : 16;
        x.npool = f % 2 ? (uint32_t)f : 0;
        x.pool_threshold = f % 2 ? 3 : -1;
        x.pool_scope = f % 2 ? 1 : -1;
        for (uint32_t i = 0; i < x.nprocs + x.npool; i++)
            q[i] = i % 5 == 0 ? 100000000 : i % 7 == 0 ? -3 : (int32_t)i;
        x.local_runq = q;
        x.pool_queues = q + x.nprocs;
        win_sample *w = win_sample_new(&x);
        win_sample_get(w, &y, back);
        assert_int_equal(y.ts_ms, x.ts_ms);
        assert_int_equal(y.recv_ms, x.recv_ms);
        assert_int_equal(y.gomaxprocs, x.gomaxprocs);
        assert_int_equal(y.idle_procs, x.idle_procs);
        assert_int_equal(y.threads, x.threads);
        assert_int_equal(y.spinning_threads, x.spinning_threads);
        assert_int_equal(y.idle_threads, x.idle_threads);
        assert_int_equal(y.needspinning, x.needspinning);
        assert_true(y.global_runq == x.global_runq);
        assert_true(y.goroutines == x.goroutines);
        assert_memory_equal(&y.lat_p50_us, &x.lat_p50_us, sizeof(double));
        assert_memory_equal(&y.lat_p99_us, &x.lat_p99_us, sizeof(double));
        assert_memory_equal(&y.gc_p99_us, &x.gc_p99_us, sizeof(double));
        assert_int_equal(y.pool_threshold, x.pool_threshold);
        assert_int_equal(y.pool_scope, x.pool_scope);
        assert_int_equal(y.nprocs, x.nprocs);
        assert_int_equal(y.npool, x.npool);
        assert_ptr_equal(y.local_runq, back);
        assert_ptr_equal(y.pool_queues, back + x.nprocs);
        if (x.nprocs + x.npool)
            assert_memory_equal(back, q, (x.nprocs + x.npool) * sizeof(int32_t));
        win_sample_release(w);
    }
    /* A typical 16-P sample is small. */
    tuner_sample x;
    int32_t runq[16] = { 0, 3, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 0 };
    tuner_sample_init(&x);
    x.ts_ms = 1764900000000;
    x.recv_ms = 1764900000250;
    x.gomaxprocs = 16;
    x.idle_procs = 10;
    x.threads = 20;
    x.global_runq = 0;
    x.lat_p50_us = 12;
    x.lat_p99_us = 480;
    x.nprocs = 16;
    x.local_runq = runq;
    win_sample *w = win_sample_new(&x);
    assert_in_range(w->size, 16, 48);
    win_sample_release(w);
}

/* store_stats: durable and batch commits, batch sizes, versions by source,
 * the pending queue's drops; each moved by exactly what the test did. */
static void test_stats(void **state)
{
    fixture *fx = *state;
    store_options o;
    store_options_default(&o);
    o.flush_interval_ms = 3600 * 1000;      /* only the test's store_flush writes */
    store *s = open_store(fx, &o);
    store_stats st;
    store_stats_get(s, &st);
    for (int k = 0; k < STORE_COMMIT_NKINDS; k++) {
        assert_int_equal(st.commit[k].nbounds, store_commit_nbounds);
        for (size_t i = 0; i <= st.commit[k].nbounds; i++)
            assert_int_equal(st.commit[k].counts[i], 0);
    }
    assert_int_equal(st.samples_persisted + st.samples_dropped + st.samples_pending, 0);

    add_agent(s, "a", "svc");
    add_agent(s, "b", "svc");
    assert_int_equal(store_agent_set_mode(s, "b", STORE_MODE_AUTO, NULL), 0);
    static const char *const sources[] = { "operator", "tuner", "rollback", "tuner", "later" };
    for (int i = 0; i < 5; i++) {
        tuner_config c = make_config(2 + i);
        assert_int_equal(store_config_append(s, "a", i, &c, sources[i], NULL, NULL, NULL,
                                             2000 + i, NULL), 0);
    }
    /* A stale change makes no version (its transaction still commits). */
    tuner_config c = make_config(9);
    assert_int_equal(store_config_append(s, "a", 0, &c, "operator", NULL, NULL, NULL, 3000,
                                         NULL), -ESTALE);
    store_test_pending_limit(s, 10);
    append_seq(s, "a", 0, 10, now_ms());
    assert_int_equal(store_flush(s), 0);

    store_stats_get(s, &st);
    uint64_t durable = 0, batches = 0;
    for (size_t i = 0; i <= st.commit[STORE_COMMIT_DURABLE].nbounds; i++)
        durable += st.commit[STORE_COMMIT_DURABLE].counts[i];
    for (size_t i = 0; i <= st.commit[STORE_COMMIT_BATCH].nbounds; i++)
        batches += st.commit[STORE_COMMIT_BATCH].counts[i];
    assert_int_equal(durable, 2 + 1 + 5 + 1);   /* two agents, a mode, five versions,
                                                   the stale change */
    assert_int_equal(batches, 1);
    assert_true(st.commit[STORE_COMMIT_DURABLE].sum > 0);
    assert_true(st.commit[STORE_COMMIT_DURABLE].sum < 60);
    assert_int_equal(st.versions[STORE_SOURCE_OPERATOR], 1);
    assert_int_equal(st.versions[STORE_SOURCE_TUNER], 2);
    assert_int_equal(st.versions[STORE_SOURCE_ROLLBACK], 1);
    assert_int_equal(st.versions[STORE_SOURCE_OVERRIDE], 0);
    assert_int_equal(st.versions[STORE_SOURCE_OTHER], 1);
    assert_string_equal(store_source_name(STORE_SOURCE_OTHER), "other");
    assert_null(store_source_name(STORE_NSOURCES));
    assert_string_equal(store_commit_kind_name(STORE_COMMIT_BATCH), "batch");
    assert_null(store_commit_kind_name(-1));
    /* One batch of 10 written, which is in the bucket whose upper bound
     * is 10. */
    assert_int_equal(st.samples_dropped, 0);
    assert_int_equal(st.samples_pending, 0);
    assert_int_equal(st.samples_persisted, 10);
    assert_true(st.batch.sum == 10.0);
    for (size_t i = 0; i <= st.batch.nbounds; i++)
        assert_int_equal(st.batch.counts[i],
                         i < st.batch.nbounds && st.batch.bounds[i] == 10.0 ? 1 : 0);
    /* An empty flush commits a batch transaction but counts no batch. */
    assert_int_equal(store_flush(s), 0);
    store_stats_get(s, &st);
    uint64_t sized = 0;
    for (size_t i = 0; i <= st.batch.nbounds; i++)
        sized += st.batch.counts[i];
    assert_int_equal(sized, 1);
    store_close(s);
}

/* The census groups agents by stored mode and staleness; agents that follow
 * their policy are grouped by service as well. */
static void test_census(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, NULL);
    store_census_row *rows = NULL;
    size_t n = 99;
    assert_int_equal(store_agent_census(s, 0, &rows, &n), 0);
    assert_int_equal(n, 0);
    free(rows);
    static const struct { const char *id, *service; int64_t seen; int64_t dropped; int mode; } ag[] = {
        { "d1", "s1", 5000, 4, STORE_MODE_DEFAULT },
        { "d2", "s1", 5000, 1, STORE_MODE_DEFAULT },
        { "d3", "s1", 1000, 0, STORE_MODE_DEFAULT },
        { "d4", "s2", 5000, 0, STORE_MODE_DEFAULT },
        { "a1", "s1", 5000, 3, STORE_MODE_AUTO },
        { "a2", "s2", 5000, 0, STORE_MODE_AUTO },
        { "p1", "s2", 1000, 0, STORE_MODE_PINNED },
    };
    for (size_t i = 0; i < sizeof ag / sizeof ag[0]; i++) {
        store_agent a;
        make_facts(&a, ag[i].id, ag[i].service);
        a.dropped_samples = ag[i].dropped;
        assert_int_equal(store_agent_upsert(s, &a, ag[i].seen, NULL), 0);
        if (ag[i].mode != STORE_MODE_DEFAULT)
            assert_int_equal(store_agent_set_mode(s, ag[i].id, (store_mode)ag[i].mode, NULL), 0);
    }
    assert_int_equal(store_agent_census(s, 3000, &rows, &n), 0);
    /* s1 default live (2), s1 default stale (1), s2 default live (1),
     * auto live (2), pinned stale (1), in any order. */
    assert_int_equal(n, 5);
    uint64_t seen[5] = { 0 };
    double dropped = 0;
    for (size_t i = 0; i < n; i++) {
        const store_census_row *r = &rows[i];
        dropped += r->dropped_samples;
        int k = r->mode == STORE_MODE_DEFAULT && strcmp(r->service, "s1") == 0 ? (r->stale ? 1 : 0)
                : r->mode == STORE_MODE_DEFAULT && strcmp(r->service, "s2") == 0 && !r->stale ? 2
                : r->mode == STORE_MODE_AUTO && !r->stale && r->service[0] == '\0' ? 3
                : r->mode == STORE_MODE_PINNED && r->stale && r->service[0] == '\0' ? 4 : -1;
        assert_true(k >= 0);
        assert_int_equal(seen[k], 0);
        seen[k] = r->agents;
    }
    assert_int_equal(seen[0], 2);
    assert_int_equal(seen[1], 1);
    assert_int_equal(seen[2], 1);
    assert_int_equal(seen[3], 2);
    assert_int_equal(seen[4], 1);
    assert_true(dropped == 8.0);
    free(rows);
    assert_int_equal(store_agent_census(NULL, 0, &rows, &n), -EINVAL);
    store_close(s);
}

/* A census of more agents than one page reads counts every agent once. */
static void test_census_pages(void **state)
{
    fixture *fx = *state;
    store_close(open_store(fx, NULL));
    /* 4,500 agents (over two pages) in one transaction of the test's own:
     * every third sets its mode (auto), every fifth was last seen at 1,
     * and agent i reports i dropped samples. */
    sqlite3 *db = raw_open(fx);
    const char *sql =
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 4499) "
        "INSERT INTO agents (id, service, hostname, runtime, pid, num_cpu, affinity, "
        "cpu_limit, limit_source, parent_tighter, first_seen_ms, last_seen_ms, mode, "
        "mode_set, dropped_samples) "
        "SELECT printf('cs-%05d', i), printf('svc%d', i % 7), 'h', 'go1.19', i, 8, 8, 2, '', "
        "0, 1, CASE WHEN i % 5 = 0 THEN 1 ELSE 9000 END, "
        "CASE WHEN i % 3 = 0 THEN 'auto' ELSE 'recommend' END, i % 3 = 0, i FROM n";
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    store *s = open_store(fx, NULL);
    store_census_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(store_agent_census(s, 5000, &rows, &n), 0);
    uint64_t total = 0, autos = 0, stale = 0, stale_auto = 0;
    double dropped = 0;
    for (size_t i = 0; i < n; i++) {
        total += rows[i].agents;
        autos += rows[i].mode == STORE_MODE_AUTO ? rows[i].agents : 0;
        stale += rows[i].stale ? rows[i].agents : 0;
        stale_auto += rows[i].stale && rows[i].mode == STORE_MODE_AUTO ? rows[i].agents : 0;
        dropped += rows[i].dropped_samples;
        assert_true(rows[i].mode == STORE_MODE_AUTO ? rows[i].service[0] == '\0'
                                                    : rows[i].mode == STORE_MODE_DEFAULT);
    }
    assert_int_equal(total, 4500);
    assert_int_equal(autos, 1500);
    assert_int_equal(stale, 900);
    assert_int_equal(stale_auto, 300);          /* i % 15 == 0 */
    assert_true(dropped == 4499.0 * 4500 / 2);
    free(rows);
    store_close(s);
}

/* The queue on its own: order, the cap, putting a failed batch back. */
static void test_pending_queue(void **state)
{
    (void)state;
    win_agent owner_a, owner_b;
    win_sample *w[8], *out[8];
    pending q;
    pending_init(&q, 4);
    for (int i = 0; i < 8; i++) {
        tuner_sample x;
        int32_t runq[1];
        make_sample(&x, runq, 1, i, 1 + i);
        w[i] = win_sample_new(&x);
        w[i]->owner = i % 2 ? &owner_b : &owner_a;
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(pending_push(&q, w[i]), 0);
    assert_int_equal(pending_push(&q, w[4]), 1);        /* w0 dropped */
    assert_int_equal(pending_take(&q, out, 2), 2);
    assert_ptr_equal(out[0], w[1]);
    assert_ptr_equal(out[1], w[2]);
    assert_int_equal(pending_push(&q, w[5]), 0);        /* w3 w4 w5 */
    /* Back in front; one over the cap, so the oldest (w1) goes. */
    assert_int_equal(pending_unshift(&q, out, 2), 1);
    assert_int_equal(q.len, 4);
    assert_int_equal(q.dropped, 2);
    pending_purge(&q, &owner_a);                        /* w2 w4 go */
    assert_int_equal(q.len, 2);
    assert_int_equal(pending_push(&q, w[6]), 0);
    assert_int_equal(pending_push(&q, w[7]), 0);
    assert_int_equal(pending_take(&q, out, 8), 4);
    assert_ptr_equal(out[0], w[3]);
    assert_ptr_equal(out[1], w[5]);
    assert_ptr_equal(out[2], w[6]);
    assert_ptr_equal(out[3], w[7]);
    assert_int_equal(pending_take(&q, out + 4, 8), 0);
    /* Wrap-around: put all four back at the front of an empty queue. */
    assert_int_equal(pending_unshift(&q, out, 4), 0);
    assert_int_equal(pending_set_limit(&q, 1), 3);
    assert_int_equal(pending_take(&q, out, 8), 1);
    assert_ptr_equal(out[0], w[7]);
    win_sample_release(out[0]);
    pending_cleanup(&q);
}

/* ------------------------------------------------------- batched changes */

/* A change for one agent with nothing in it yet. */
static store_change make_change(const char *id, int64_t expect)
{
    store_change c;
    memset(&c, 0, sizeof c);
    c.agent_id = id;
    c.expect_version = expect;
    return c;
}

/* Every field a change can set, with values unlike the defaults: negative
 * figures, a NACK error of the longest length, two partial configs. */
static void make_state(store_agent *v, int64_t version)
{
    memset(v, 0, sizeof *v);
    v->mode = STORE_MODE_PINNED;
    v->applied_version = version;
    v->applied_ms = 1100;
    v->nack_version = version + 6;
    v->nack_ms = 1200;
    memset(v->nack_error, 'e', STORE_ERROR_MAX);
    v->nack_error[0] = 'E';
    v->nack_error[STORE_ERROR_MAX] = '\0';
    v->verify = (store_verify){ .version = version, .acked_ms = 1300, .before_lat = -1,
                                .before_runq = 0.375, .before_n = 42 };
    v->verdict = (store_verdict){ .version = version, .decided_ms = 1400, .verdict = "failed",
                                  .metric = "sched_latency_p99_us", .before = 812.5,
                                  .after = -0.25 };
    tuner_config_set(&v->rejected, TUNER_CFG_GOMAXPROCS, 3);
    tuner_config_set(&v->rejected, TUNER_CFG_TASK_TIMEOUT_MS, 900);
    v->rejected_until_ms = 99999;
    tuner_config_set(&v->override, TUNER_CFG_WORKERS, 12);
}

static void assert_state(const store_agent *a, const store_agent *v)
{
    assert_int_equal(a->mode, v->mode);
    assert_int_equal(a->applied_version, v->applied_version);
    assert_int_equal(a->applied_ms, v->applied_ms);
    assert_int_equal(a->nack_version, v->nack_version);
    assert_int_equal(a->nack_ms, v->nack_ms);
    assert_string_equal(a->nack_error, v->nack_error);
    assert_int_equal(a->verify.version, v->verify.version);
    assert_int_equal(a->verify.acked_ms, v->verify.acked_ms);
    assert_true(a->verify.before_lat == v->verify.before_lat);
    assert_true(a->verify.before_runq == v->verify.before_runq);
    assert_int_equal(a->verify.before_n, v->verify.before_n);
    assert_int_equal(a->verdict.version, v->verdict.version);
    assert_int_equal(a->verdict.decided_ms, v->verdict.decided_ms);
    assert_string_equal(a->verdict.verdict, v->verdict.verdict);
    assert_string_equal(a->verdict.metric, v->verdict.metric);
    assert_true(a->verdict.before == v->verdict.before);
    assert_true(a->verdict.after == v->verdict.after);
    assert_true(tuner_config_equal(&a->rejected, &v->rejected));
    assert_int_equal(a->rejected_until_ms, v->rejected_until_ms);
    assert_true(tuner_config_equal(&a->override, &v->override));
}

/* What a new agent, or one migrated from schema 1, has of the delivery
 * fields (mode and override are not theirs). */
static void assert_no_delivery(const store_agent *a)
{
    store_agent zero;
    memset(&zero, 0, sizeof zero);
    zero.mode = a->mode;
    zero.override = a->override;
    assert_state(a, &zero);
    assert_int_equal(a->outdated_since_ms, 0);
}

static void test_apply_batch(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, NULL);
    add_agent(s, "a", "svc");
    add_agent(s, "b", "svc");
    tuner_config c = make_config(4), wide = make_config(4);
    wide.set |= 1u << TUNER_CFG_NFIELDS;
    store_agent auto_mode = { .mode = STORE_MODE_AUTO }, bad = { .mode = (store_mode)9 };
    store_agent long_nack = { 0 }, long_verdict = { 0 }, long_metric = { 0 };
    memset(long_nack.nack_error, 'x', sizeof long_nack.nack_error);
    memset(long_verdict.verdict.verdict, 'x', sizeof long_verdict.verdict.verdict);
    memset(long_metric.verdict.metric, 'x', sizeof long_metric.verdict.metric);
    store_event ev = make_event("batch", "", "tuner", 100);
    store_event bad_ev = make_event("", "", "tuner", 100);
    char long_id[STORE_ID_MAX + 2];
    memset(long_id, 'i', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';

    enum { N = 19 };
    store_change ch[N];
    for (size_t i = 0; i < N; i++) {
        ch[i] = make_change("a", 0);
        ch[i].config = &c;
        ch[i].source = "tuner";
        ch[i].events = &ev;
        ch[i].nevents = 1;
    }
    ch[0].reasons = "[\"ok\"]";                 /* 0: a gets version 1 */
    ch[1].agent_id = "nobody";                  /* 1: -ENOENT */
    ch[2].agent_id = "b";                       /* 2: -ESTALE (b is at 0) */
    ch[2].expect_version = 3;
    ch[3].agent_id = "";                        /* 3..: -EINVAL */
    ch[4].agent_id = long_id;
    ch[5].config = &wide;
    ch[6].source = NULL;
    ch[7].source = "a-source-that-is-too-long";
    ch[8].expect_version = -1;                  /* a config needs an expectation */
    ch[9].fields = STORE_SET_MODE;              /* values NULL */
    ch[10].fields = STORE_SET_MODE;
    ch[10].values = &bad;
    ch[11].fields = STORE_SET_NACK;
    ch[11].values = &long_nack;
    ch[12].fields = STORE_SET_VERDICT;
    ch[12].values = &long_verdict;
    ch[13].fields = STORE_SET_VERDICT;
    ch[13].values = &long_metric;
    ch[14].events = &bad_ev;
    ch[15].events = NULL;
    ch[16].fields = 1u << 7;                    /* no such field */
    ch[16].values = &auto_mode;
    ch[17] = make_change("b", -1);              /* 17: b's mode, no version */
    ch[17].fields = STORE_SET_MODE;
    ch[17].values = &auto_mode;
    ch[17].events = &ev;
    ch[17].nevents = 1;
    ch[18].source = "";
    ch[18].expect_version = 1;                  /* would be fine after 0 but for the source */

    assert_int_equal(store_apply(s, ch, N, 500), 0);
    assert_int_equal(ch[0].rc, 0);
    assert_int_equal(ch[0].version, 1);
    assert_int_equal(ch[1].rc, -ENOENT);
    assert_int_equal(ch[2].rc, -ESTALE);
    assert_int_equal(ch[2].version, 0);         /* b's current version */
    for (size_t i = 3; i <= 16; i++)
        assert_int_equal(ch[i].rc, -EINVAL);
    assert_int_equal(ch[17].rc, 0);
    assert_int_equal(ch[17].version, 0);
    assert_int_equal(ch[18].rc, -EINVAL);

    /* Only the two good changes wrote: one version, one mode, two events. */
    store_agent a;
    assert_int_equal(store_agent_get(s, "a", &a), 0);
    assert_int_equal(a.config_version, 1);
    assert_int_equal(a.last_change_ms, 500);
    assert_int_equal(a.mode, STORE_MODE_DEFAULT);
    assert_int_equal(a.applied_version, 0);
    assert_int_equal(a.outdated_since_ms, 500);
    store_version sv;
    assert_int_equal(store_config_get(s, "a", 1, &sv), 0);
    assert_int_equal(sv.created_ms, 500);
    assert_string_equal(sv.source, "tuner");
    assert_string_equal(sv.reasons, "[\"ok\"]");
    assert_true(tuner_config_equal(&sv.config, &c));
    store_version_cleanup(&sv);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM config_versions"), 1);
    assert_int_equal(store_agent_get(s, "b", &a), 0);
    assert_int_equal(a.mode, STORE_MODE_AUTO);
    assert_int_equal(a.config_version, 0);
    store_event_filter f = { .kind = "batch" };
    assert_int_equal(list_events(s, &f)->n, 2);

    /* Bad calls. */
    assert_int_equal(store_apply(s, NULL, 1, 1), -EINVAL);
    assert_int_equal(store_apply(s, ch, 0, 1), -EINVAL);
    assert_int_equal(store_apply(NULL, ch, 1, 1), -EINVAL);
    store_close(s);
}

static void test_apply_fields_roundtrip(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, NULL);
    add_agent(s, "r1", "svc");
    add_agent(s, "r2", "svc");
    store_agent v, a;
    make_state(&v, 1);
    tuner_config c = make_config(6);
    store_change ch = make_change("r1", 0);
    ch.config = &c;
    ch.source = "operator";
    ch.fields = STORE_SET_MODE | STORE_SET_APPLIED | STORE_SET_NACK | STORE_SET_VERIFY
              | STORE_SET_VERDICT | STORE_SET_REJECTED | STORE_SET_OVERRIDE;
    ch.values = &v;
    assert_int_equal(store_apply(s, &ch, 1, 2000), 0);
    assert_int_equal(ch.rc, 0);
    assert_int_equal(ch.version, 1);

    assert_int_equal(store_agent_get(s, "r1", &a), 0);
    assert_state(&a, &v);
    assert_int_equal(a.config_version, 1);
    assert_int_equal(a.outdated_since_ms, 0);   /* applied is current */
    assert_int_equal(strlen(a.nack_error), STORE_ERROR_MAX);
    store_agent out[2];
    size_t n = 0;
    bool more = true;
    assert_int_equal(store_agent_list(s, NULL, NULL, out, 2, &n, &more), 0);
    assert_int_equal(n, 2);
    assert_false(more);
    assert_state(&out[0], &v);
    assert_no_delivery(&out[1]);
    assert_int_equal(out[1].mode, STORE_MODE_DEFAULT);
    store_close(s);

    s = open_store(fx, NULL);
    assert_int_equal(store_agent_get(s, "r1", &a), 0);
    assert_state(&a, &v);
    assert_int_equal(store_agent_list(s, "svc", NULL, out, 1, &n, &more), 0);
    assert_int_equal(n, 1);
    assert_state(&out[0], &v);

    /* Each group alone changes only itself; a NaN figure reads as unknown. */
    store_agent w;
    memset(&w, 0, sizeof w);
    w.verdict = (store_verdict){ .version = 1, .verdict = "passed", .before = NAN,
                                 .after = 3.5 };
    ch = make_change("r1", 1);
    ch.fields = STORE_SET_VERDICT;
    ch.values = &w;
    assert_int_equal(store_apply(s, &ch, 1, 3000), 0);
    assert_int_equal(ch.rc, 0);
    assert_int_equal(store_agent_get(s, "r1", &a), 0);
    assert_string_equal(a.verdict.verdict, "passed");
    assert_string_equal(a.verdict.metric, "");
    assert_true(a.verdict.before == -1);
    assert_true(a.verdict.after == 3.5);
    v.verdict = a.verdict;
    assert_state(&a, &v);
    /* What the reads above gave (from the rows store_apply cached) is what
     * the database holds: a new store reads the same. */
    store_close(s);
    s = open_store(fx, NULL);
    store_agent fresh;
    assert_int_equal(store_agent_get(s, "r1", &fresh), 0);
    assert_memory_equal(&fresh, &a, sizeof a);
    store_close(s);
}

static void test_apply_clears_verify(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, NULL);
    add_agent(s, "v", "svc");
    tuner_config c = make_config(4);
    store_agent vals, a;
    make_state(&vals, 1);
    store_change ch = make_change("v", -1);
    ch.fields = STORE_SET_VERIFY;
    ch.values = &vals;
    assert_int_equal(store_apply(s, &ch, 1, 10), 0);
    assert_int_equal(store_agent_get(s, "v", &a), 0);
    assert_int_equal(a.verify.version, 1);

    /* A new version without STORE_SET_VERIFY clears it ... */
    ch = make_change("v", 0);
    ch.config = &c;
    ch.source = "tuner";
    assert_int_equal(store_apply(s, &ch, 1, 20), 0);
    assert_int_equal(ch.rc, 0);
    assert_int_equal(store_agent_get(s, "v", &a), 0);
    assert_int_equal(a.config_version, 1);
    assert_int_equal(a.verify.version, 0);
    assert_int_equal(a.verify.acked_ms, 0);
    assert_int_equal(a.verify.before_n, 0);
    assert_true(a.verify.before_lat == 0);

    /* ... a change without a version does not ... */
    ch = make_change("v", -1);
    ch.fields = STORE_SET_VERIFY;
    ch.values = &vals;
    assert_int_equal(store_apply(s, &ch, 1, 30), 0);
    ch = make_change("v", -1);
    ch.fields = STORE_SET_APPLIED;
    ch.values = &vals;
    assert_int_equal(store_apply(s, &ch, 1, 35), 0);
    assert_int_equal(store_agent_get(s, "v", &a), 0);
    assert_int_equal(a.verify.version, 1);

    /* ... with STORE_SET_VERIFY the new value stays ... */
    vals.verify.version = 2;
    vals.verify.before_lat = 55.5;
    ch = make_change("v", 1);
    ch.config = &c;
    ch.source = "rollback";
    ch.fields = STORE_SET_VERIFY;
    ch.values = &vals;
    assert_int_equal(store_apply(s, &ch, 1, 40), 0);
    assert_int_equal(store_agent_get(s, "v", &a), 0);
    assert_int_equal(a.config_version, 2);
    assert_int_equal(a.verify.version, 2);
    assert_true(a.verify.before_lat == 55.5);
    assert_int_equal(a.verify.before_n, 42);

    /* ... and store_config_append clears it like any new version. */
    assert_int_equal(store_config_append(s, "v", 2, &c, "operator", NULL, NULL, NULL, 50, NULL),
                     0);
    assert_int_equal(store_agent_get(s, "v", &a), 0);
    assert_int_equal(a.verify.version, 0);
    store_close(s);
}

/* Sets the agent's applied version at t. */
static void ack(store *s, const char *id, int64_t version, int64_t t)
{
    store_agent v;
    memset(&v, 0, sizeof v);
    v.applied_version = version;
    v.applied_ms = t;
    store_change ch = make_change(id, -1);
    ch.fields = STORE_SET_APPLIED;
    ch.values = &v;
    assert_int_equal(store_apply(s, &ch, 1, t), 0);
    assert_int_equal(ch.rc, 0);
}

static int64_t outdated_since(store *s, const char *id)
{
    store_agent a;
    assert_int_equal(store_agent_get(s, id, &a), 0);
    return a.outdated_since_ms;
}

static void test_apply_outdated(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, NULL);
    add_agent(s, "o", "svc");
    tuner_config c = make_config(4);
    assert_int_equal(outdated_since(s, "o"), 0);

    /* A new version while up to date: outdated from now. */
    assert_int_equal(store_config_append(s, "o", 0, &c, "tuner", NULL, NULL, NULL, 100, NULL), 0);
    assert_int_equal(outdated_since(s, "o"), 100);
    /* The ACK of the current version: up to date. */
    ack(s, "o", 1, 200);
    assert_int_equal(outdated_since(s, "o"), 0);
    store_agent a;
    assert_int_equal(store_agent_get(s, "o", &a), 0);
    assert_int_equal(a.applied_version, 1);
    assert_int_equal(a.applied_ms, 200);

    /* Still outdated: the first time counts, through more versions and
     * an ACK of an older one. */
    assert_int_equal(store_config_append(s, "o", 1, &c, "tuner", NULL, NULL, NULL, 300, NULL), 0);
    assert_int_equal(outdated_since(s, "o"), 300);
    ack(s, "o", 1, 400);
    assert_int_equal(outdated_since(s, "o"), 300);
    assert_int_equal(store_config_append(s, "o", 2, &c, "tuner", NULL, NULL, NULL, 500, NULL), 0);
    assert_int_equal(outdated_since(s, "o"), 300);
    ack(s, "o", 3, 600);
    assert_int_equal(outdated_since(s, "o"), 0);

    /* Applied set to an older version while up to date: outdated from now. */
    ack(s, "o", 2, 700);
    assert_int_equal(outdated_since(s, "o"), 700);
    /* A change of another field keeps the date. */
    assert_int_equal(store_agent_set_mode(s, "o", STORE_MODE_AUTO, NULL), 0);
    assert_int_equal(outdated_since(s, "o"), 700);
    /* One batch: new version and its ACK together leave it up to date. */
    store_agent v;
    memset(&v, 0, sizeof v);
    v.applied_version = 4;
    store_change ch = make_change("o", 3);
    ch.config = &c;
    ch.source = "tuner";
    ch.fields = STORE_SET_APPLIED;
    ch.values = &v;
    assert_int_equal(store_apply(s, &ch, 1, 800), 0);
    assert_int_equal(ch.rc, 0);
    assert_int_equal(outdated_since(s, "o"), 0);
    store_close(s);
}

static void test_apply_events(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, NULL);
    add_agent(s, "e1", "svc");
    add_agent(s, "e2", "svc");
    store_event evs[3] = {
        make_event("ack", "e1", "agent", 10),
        make_event("verify_start", "e1", "server", 11),
        make_event("note", "", "server", 12),
    };
    evs[0].after = "{\"version\":0}";
    store_event lost[2] = {
        make_event("lost", "e2", "tuner", 13),
        make_event("lost", "e2", "tuner", 14),
    };
    tuner_config c = make_config(2);
    collected *got = list_events(s, NULL);
    assert_int_equal(got->n, 2);                /* the registrations */
    int64_t last = got->ids[1];
    store_change ch[3] = { make_change("e1", -1), make_change("e2", 5), make_change("zz", -1) };
    ch[0].events = evs;
    ch[0].nevents = 3;
    ch[1].config = &c;                  /* stale: neither version nor events */
    ch[1].source = "tuner";
    ch[1].events = lost;
    ch[1].nevents = 2;
    ch[2].events = lost;                /* unknown agent */
    ch[2].nevents = 2;
    assert_int_equal(store_apply(s, ch, 3, 20), 0);
    assert_int_equal(ch[0].rc, 0);
    assert_int_equal(ch[1].rc, -ESTALE);
    assert_int_equal(ch[2].rc, -ENOENT);

    store_event_filter f = { .after_id = last };
    got = list_events(s, &f);
    assert_int_equal(got->n, 3);
    assert_string_equal(got->kinds[0], "ack");
    assert_string_equal(got->after[0], "{\"version\":0}");
    assert_string_equal(got->kinds[1], "verify_start");
    assert_string_equal(got->kinds[2], "note");
    assert_string_equal(got->agents[2], "");
    f = (store_event_filter){ .kind = "lost" };
    assert_int_equal(list_events(s, &f)->n, 0);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM config_versions"), 0);
    store_close(s);
}

typedef struct hook_log {
    const fixture *fx;
    store *s;
    size_t n;
    char agents[8][STORE_ID_MAX + 1];
    int64_t versions[8];
    int64_t seen[8];            /* store_agent_version in the hook; -1 = -ENOENT */
    int64_t committed[8];       /* another connection's view; -1 = no row */
} hook_log;

static void record_hook(void *ud, const char *agent_id, int64_t version)
{
    hook_log *h = ud;
    assert_true(h->n < 8);
    size_t i = h->n++;
    snprintf(h->agents[i], sizeof h->agents[i], "%s", agent_id);
    h->versions[i] = version;
    /* With a store lock held this would deadlock. */
    int rc = store_agent_version(h->s, agent_id, &h->seen[i]);
    assert_true(rc == 0 || rc == -ENOENT);
    if (rc == -ENOENT)
        h->seen[i] = -1;
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(max(config_version), -1) FROM agents WHERE id = '%s'", agent_id);
    h->committed[i] = raw_int(h->fx, sql);
}

static void test_version_hook(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, NULL);
    hook_log h;
    memset(&h, 0, sizeof h);
    h.fx = fx;
    h.s = s;
    store_set_version_hook(s, record_hook, &h);
    add_agent(s, "h1", "svc");
    add_agent(s, "h2", "svc");
    assert_int_equal(h.n, 0);

    /* Two new versions, a mode change, a stale change: two calls. */
    tuner_config c = make_config(3);
    store_agent auto_mode = { .mode = STORE_MODE_AUTO };
    store_change ch[4] = { make_change("h1", 0), make_change("h2", -1), make_change("h2", 0),
                           make_change("h1", 0) };
    ch[0].config = ch[2].config = ch[3].config = &c;
    ch[0].source = ch[2].source = ch[3].source = "tuner";
    ch[1].fields = STORE_SET_MODE;
    ch[1].values = &auto_mode;
    assert_int_equal(store_apply(s, ch, 4, 100), 0);
    assert_int_equal(ch[3].rc, -ESTALE);        /* ch[0] moved h1 on */
    assert_int_equal(h.n, 2);
    assert_string_equal(h.agents[0], "h1");
    assert_string_equal(h.agents[1], "h2");
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(h.versions[i], 1);
        assert_int_equal(h.seen[i], 1);
        assert_int_equal(h.committed[i], 1);
    }

    /* The one-change wrappers: a version calls it, a mode does not. */
    assert_int_equal(store_config_append(s, "h1", 1, &c, "operator", NULL, NULL, NULL, 200,
                                         NULL), 0);
    assert_int_equal(h.n, 3);
    assert_int_equal(h.versions[2], 2);
    assert_int_equal(h.committed[2], 2);
    assert_int_equal(store_agent_set_mode(s, "h1", STORE_MODE_PINNED, NULL), 0);
    assert_int_equal(store_config_append(s, "h1", 0, &c, "operator", NULL, NULL, NULL, 200,
                                         NULL), -ESTALE);
    assert_int_equal(h.n, 3);

    /* A deletion says -1, once it is gone. */
    assert_int_equal(store_agent_delete(s, "h2", NULL), 0);
    assert_int_equal(h.n, 4);
    assert_string_equal(h.agents[3], "h2");
    assert_int_equal(h.versions[3], -1);
    assert_int_equal(h.seen[3], -1);
    assert_int_equal(h.committed[3], -1);
    assert_int_equal(store_agent_delete(s, "h2", NULL), -ENOENT);
    assert_int_equal(h.n, 4);
    store_close(s);
}

static void test_mode_default(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, NULL);
    add_agent(s, "md", "svc");
    store_agent a;
    assert_int_equal(store_agent_get(s, "md", &a), 0);
    assert_int_equal(a.mode, STORE_MODE_DEFAULT);
    assert_int_equal(raw_int(fx, "SELECT mode_set FROM agents WHERE id = 'md'"), 0);

    /* recommend set on purpose is not the default. */
    assert_int_equal(store_agent_set_mode(s, "md", STORE_MODE_RECOMMEND, NULL), 0);
    assert_int_equal(store_agent_get(s, "md", &a), 0);
    assert_int_equal(a.mode, STORE_MODE_RECOMMEND);
    assert_int_equal(raw_int(fx, "SELECT mode_set FROM agents WHERE id = 'md'"), 1);

    store_event ev = make_event("mode_change", "md", "operator", 5);
    assert_int_equal(store_agent_set_mode(s, "md", STORE_MODE_DEFAULT, &ev), 0);
    assert_int_equal(store_agent_get(s, "md", &a), 0);
    assert_int_equal(a.mode, STORE_MODE_DEFAULT);
    char mode[16];
    raw_text(fx, "SELECT mode FROM agents WHERE id = 'md'", mode, sizeof mode);
    assert_string_equal(mode, "recommend");
    assert_int_equal(raw_int(fx, "SELECT mode_set FROM agents WHERE id = 'md'"), 0);
    store_close(s);

    s = open_store(fx, NULL);
    assert_int_equal(store_agent_get(s, "md", &a), 0);
    assert_int_equal(a.mode, STORE_MODE_DEFAULT);
    assert_int_equal(store_agent_set_mode(s, "md", STORE_MODE_PINNED, NULL), 0);
    store_close(s);
    s = open_store(fx, NULL);
    assert_int_equal(store_agent_get(s, "md", &a), 0);
    assert_int_equal(a.mode, STORE_MODE_PINNED);
    assert_int_equal(store_agent_set_mode(s, "md", (store_mode)4, NULL), -EINVAL);
    store_close(s);
}

/* Migration 1 as released: a frozen copy, so the test keeps checking the
 * upgrade of real old files whatever schema.c becomes. */
static const char schema_v1[] =
    "CREATE TABLE agents ("
    "  id TEXT PRIMARY KEY, service TEXT NOT NULL, hostname TEXT NOT NULL,"
    "  runtime TEXT NOT NULL, pid INTEGER NOT NULL, num_cpu INTEGER NOT NULL,"
    "  affinity INTEGER NOT NULL, cpu_limit REAL NOT NULL, limit_source TEXT NOT NULL,"
    "  parent_tighter INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL,"
    "  last_seen_ms INTEGER NOT NULL,"
    "  mode TEXT NOT NULL DEFAULT 'recommend' CHECK (mode IN ('recommend', 'auto', 'pinned')),"
    "  config_version INTEGER NOT NULL DEFAULT 0, last_change_ms INTEGER NOT NULL DEFAULT 0,"
    "  samples_total INTEGER NOT NULL DEFAULT 0,"
    "  ov_gomaxprocs INTEGER, ov_pool_workers INTEGER, ov_pool_steal_threshold INTEGER,"
    "  ov_pool_steal_scope INTEGER, ov_gosched_every INTEGER, ov_chunk_size INTEGER,"
    "  ov_task_timeout_ms INTEGER"
    ") WITHOUT ROWID;"
    "CREATE INDEX agents_service ON agents (service, id);"
    "CREATE TABLE config_versions ("
    "  agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL, created_ms INTEGER NOT NULL, source TEXT NOT NULL,"
    "  reasons TEXT, gomaxprocs INTEGER, pool_workers INTEGER,"
    "  pool_steal_threshold INTEGER, pool_steal_scope INTEGER, gosched_every INTEGER,"
    "  chunk_size INTEGER, task_timeout_ms INTEGER, PRIMARY KEY (agent_id, version)"
    ") WITHOUT ROWID;"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL, kind TEXT NOT NULL,"
    "  agent_id TEXT NOT NULL DEFAULT '', service TEXT NOT NULL DEFAULT '',"
    "  actor TEXT NOT NULL DEFAULT '', before TEXT, after TEXT"
    ");"
    "CREATE INDEX events_agent ON events (agent_id, id);"
    "CREATE INDEX events_ts ON events (ts_ms);"
    "CREATE TABLE policies ("
    "  scope TEXT NOT NULL, field TEXT NOT NULL, value REAL NOT NULL,"
    "  PRIMARY KEY (scope, field)"
    ") WITHOUT ROWID;"
    "CREATE TABLE samples ("
    "  agent_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, recv_ms INTEGER NOT NULL,"
    "  gomaxprocs INTEGER, idle_procs INTEGER, threads INTEGER, spinning_threads INTEGER,"
    "  idle_threads INTEGER, needspinning INTEGER, global_runq INTEGER, goroutines INTEGER,"
    "  lat_p50_us REAL, lat_p99_us REAL, nprocs INTEGER NOT NULL, local_runq BLOB NOT NULL"
    ");"
    "CREATE INDEX samples_agent ON samples (agent_id, recv_ms);"
    "CREATE INDEX samples_recv ON samples (recv_ms);"
    "PRAGMA user_version = 1;";

static void test_migrate_from_v1(void **state)
{
    fixture *fx = *state;
    char path[160];
    snprintf(path, sizeof path, "%s/data", fx->dir);
    assert_int_equal(mkdir(path, 0750), 0);
    assert_int_equal(mkdir(fx->data, 0750), 0);
    snprintf(path, sizeof path, "%s/gotuned.db", fx->data);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                     NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, schema_v1, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
        "INSERT INTO agents (id, service, hostname, runtime, pid, num_cpu, affinity, "
        "cpu_limit, limit_source, parent_tighter, first_seen_ms, last_seen_ms, mode, "
        "config_version, last_change_ms, ov_gomaxprocs) VALUES "
        "('old-auto', 'svc', 'h', 'go1.19', 1, 8, 8, 2, '', 0, 10, 20, 'auto', 1, 15, 4),"
        "('old-rec', 'svc', 'h', 'go1.19', 2, 8, 8, 2, '', 0, 10, 20, 'recommend', 0, 0, NULL);"
        "INSERT INTO config_versions (agent_id, version, created_ms, source, gomaxprocs) "
        "VALUES ('old-auto', 1, 15, 'operator', 4);",
        NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    store *s = open_store(fx, NULL);
    assert_int_equal(raw_int(fx, "PRAGMA user_version"), 3);
    store_agent a;
    assert_int_equal(store_agent_get(s, "old-auto", &a), 0);
    assert_int_equal(a.mode, STORE_MODE_AUTO);
    assert_int_equal(a.config_version, 1);
    assert_int_equal(a.last_change_ms, 15);
    assert_int_equal(a.override.v[TUNER_CFG_GOMAXPROCS], 4);
    /* Nobody could ACK under schema 1: out of date since version 1. */
    assert_int_equal(a.outdated_since_ms, 15);
    a.outdated_since_ms = 0;
    assert_no_delivery(&a);
    assert_int_equal(a.throttle.periods, -1);       /* migration 3's defaults */
    assert_int_equal(a.dropped_samples, 0);
    assert_int_equal(store_agent_get(s, "old-rec", &a), 0);
    assert_int_equal(a.mode, STORE_MODE_DEFAULT);
    assert_int_equal(a.override.set, 0);
    assert_no_delivery(&a);

    /* The migrated rows take the new writes. */
    store_agent v;
    make_state(&v, 1);
    store_change ch = make_change("old-auto", 1);
    ch.fields = STORE_SET_APPLIED | STORE_SET_NACK | STORE_SET_REJECTED;
    ch.values = &v;
    assert_int_equal(store_apply(s, &ch, 1, 30), 0);
    assert_int_equal(ch.rc, 0);
    assert_int_equal(store_agent_get(s, "old-auto", &a), 0);
    assert_int_equal(a.applied_version, 1);
    assert_string_equal(a.nack_error, v.nack_error);
    assert_true(tuner_config_equal(&a.rejected, &v.rejected));
    assert_int_equal(a.mode, STORE_MODE_AUTO);
    store_close(s);
}

#define BIG_BATCH 10000

static void test_apply_large_batch(void **state)
{
    fixture *fx = *state;
    store_close(open_store(fx, NULL));
    /* The agents in one transaction of the test's own; the store picks
     * them up at open. */
    sqlite3 *db = raw_open(fx);
    char sql[512];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
             "INSERT INTO agents (id, service, hostname, runtime, pid, num_cpu, affinity, "
             "cpu_limit, limit_source, parent_tighter, first_seen_ms, last_seen_ms) "
             "SELECT printf('big-%%05d', i), 'svc', 'h', 'go1.19', i, 8, 8, 2, '', 0, 1, 1 "
             "FROM n", BIG_BATCH - 1);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    store *s = open_store(fx, NULL);
    static store_change ch[BIG_BATCH];
    static char ids[BIG_BATCH][16];
    static store_event evs[BIG_BATCH];
    store_agent v;
    memset(&v, 0, sizeof v);
    v.applied_version = 1;
    v.applied_ms = 50;
    tuner_config c = make_config(4);
    for (int i = 0; i < BIG_BATCH; i++) {
        snprintf(ids[i], sizeof ids[i], "big-%05d", i);
        evs[i] = make_event("config_version", ids[i], "tuner", 50);
        ch[i] = make_change(ids[i], 0);
        ch[i].config = &c;
        ch[i].source = "tuner";
        ch[i].fields = i % 2 ? STORE_SET_APPLIED : 0;
        ch[i].values = &v;
        ch[i].events = &evs[i];
        ch[i].nevents = 1;
    }
    assert_int_equal(store_apply(s, ch, BIG_BATCH, 50), 0);
    for (int i = 0; i < BIG_BATCH; i++) {
        assert_int_equal(ch[i].rc, 0);
        assert_int_equal(ch[i].version, 1);
    }
    store_close(s);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM config_versions"), BIG_BATCH);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM agents WHERE config_version = 1"),
                     BIG_BATCH);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM agents WHERE outdated_since_ms = 50"),
                     BIG_BATCH / 2);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM events WHERE kind = 'config_version'"),
                     BIG_BATCH);
}

/* ------------------------------------------------------------ concurrency */

#define CONC_WRITERS 4
#define CONC_ROUNDS 100

typedef struct conc {
    store *s;
    int idx;
    atomic_int *failures;
    atomic_int *running;
} conc;

static void *conc_writer(void *arg)
{
    conc *c = arg;
    char id[16];
    snprintf(id, sizeof id, "w%d", c->idx);
    for (int64_t i = 0; i < CONC_ROUNDS; i++) {
        tuner_sample x[3];
        int32_t runq[3][8];
        for (int k = 0; k < 3; k++)
            make_sample(&x[k], runq[k], 8, i * 3 + k, now_ms());
        if (store_samples_append(c->s, id, x, 3) != 0)
            atomic_fetch_add(c->failures, 1);
        tuner_config cfg = make_config(2 + i % 8);
        store_event ev = make_event("config_version", id, "tuner", now_ms());
        ev.after = "{}";
        if (store_config_append(c->s, id, i, &cfg, "tuner", "[]", NULL, &ev, now_ms(), NULL) != 0)
            atomic_fetch_add(c->failures, 1);
        tuner_sample *win = NULL;
        size_t n = 0;
        if (store_samples_window(c->s, id, 16, &win, &n) != 0 || n == 0)
            atomic_fetch_add(c->failures, 1);
        store_samples_free(win, n);
    }
    atomic_fetch_sub(c->running, 1);
    return NULL;
}

static int count_cb(void *ud, const store_event *ev)
{
    (void)ev;
    (*(size_t *)ud)++;
    return 0;
}

static void *conc_reader(void *arg)
{
    conc *c = arg;
    while (atomic_load(c->running) > 0) {
        store_agent out[8];
        size_t n = 0, nev = 0;
        bool more;
        tuner_policy p;
        store_version h[4];
        if (store_agent_list(c->s, NULL, NULL, out, 8, &n, &more) != 0 || n != CONC_WRITERS)
            atomic_fetch_add(c->failures, 1);
        store_event_filter f = { .limit = 50, .kind = "config_version" };
        if (store_event_list(c->s, &f, count_cb, &nev) != 0)
            atomic_fetch_add(c->failures, 1);
        if (store_policy_effective(c->s, "svc", &p) != 0)
            atomic_fetch_add(c->failures, 1);
        if (store_config_history(c->s, "w1", h, 4, &n) != 0)
            atomic_fetch_add(c->failures, 1);
        for (size_t i = 0; i < n; i++)
            store_version_cleanup(&h[i]);
        if (store_ping(c->s) != 0)
            atomic_fetch_add(c->failures, 1);
    }
    return NULL;
}

static void test_concurrency(void **state)
{
    fixture *fx = *state;
    store_options o;
    store_options_default(&o);
    o.flush_interval_ms = 5;
    store *s = open_store(fx, &o);
    for (int i = 0; i < CONC_WRITERS; i++) {
        char id[16];
        snprintf(id, sizeof id, "w%d", i);
        add_agent(s, id, "svc");
    }
    atomic_int failures = 0, running = CONC_WRITERS;
    conc args[CONC_WRITERS + 1];
    pthread_t th[CONC_WRITERS + 1];
    for (int i = 0; i <= CONC_WRITERS; i++) {
        args[i] = (conc){ s, i, &failures, &running };
        assert_int_equal(pthread_create(&th[i], NULL, i < CONC_WRITERS ? conc_writer : conc_reader,
                                        &args[i]), 0);
    }
    for (int i = 0; i <= CONC_WRITERS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&failures), 0);
    for (int i = 0; i < CONC_WRITERS; i++) {
        char id[16];
        store_agent a;
        snprintf(id, sizeof id, "w%d", i);
        assert_int_equal(store_agent_get(s, id, &a), 0);
        assert_int_equal(a.config_version, CONC_ROUNDS);
        assert_int_equal(a.samples_total, CONC_ROUNDS * 3);
    }
    store_close(s);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM samples"), CONC_WRITERS * CONC_ROUNDS * 3);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM config_versions"),
                     CONC_WRITERS * CONC_ROUNDS);
}

/* -------------------------------------------------------- crash durability */

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* The child: appends versions as fast as it can and reports each one only
 * after store_config_append returned, i.e. after it was acknowledged. */
static void crash_child(const char *dir, int fd)
{
    store *s = NULL;
    char err[256];
    store_options o;
    store_options_default(&o);
    o.flush_interval_ms = 2;
    if (store_open(dir, &o, &s, err, sizeof err) != 0)
        _exit(2);
    for (int64_t v = 0; v < 100000; v++) {
        tuner_config c = make_config(1 + v % 64);
        store_event ev = make_event("config_version", "crash", "tuner", v + 1);
        int64_t got = 0;
        if (store_config_append(s, "crash", v, &c, "tuner", "[\"crash\"]", NULL, &ev, v + 1,
                                &got) != 0)
            _exit(3);
        tuner_sample x;
        int32_t runq[16];
        make_sample(&x, runq, 16, v, now_ms());
        if (store_samples_append(s, "crash", &x, 1) != 0)
            _exit(4);
        if (write_all(fd, &got, sizeof got) < 0)
            _exit(5);
    }
    _exit(0);
}

static void test_crash_durability(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, NULL);
    add_agent(s, "crash", "svc");
    store_close(s);

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        crash_child(fx->data, fds[1]);
    }
    close(fds[1]);

    static int64_t reported[100000];
    size_t n = 0, have = 0;
    bool killed = false;
    char buf[sizeof(int64_t)];
    for (;;) {
        ssize_t r = read(fds[0], buf + have, sizeof buf - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        if (have < sizeof buf)
            continue;
        memcpy(&reported[n++], buf, sizeof buf);
        have = 0;
        if (!killed && n >= 50) {
            kill(pid, SIGKILL);
            killed = true;
        }
    }
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(killed);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_true(n >= 50);

    /* The file is sound, as a fresh connection sees it. */
    char ok[64];
    raw_text(fx, "PRAGMA integrity_check", ok, sizeof ok);
    assert_string_equal(ok, "ok");

    /* Every acknowledged version is there. */
    s = open_store(fx, NULL);
    store_agent a;
    assert_int_equal(store_agent_get(s, "crash", &a), 0);
    assert_true(a.config_version >= reported[n - 1]);
    for (size_t i = 0; i < n; i++) {
        store_version sv;
        assert_int_equal(reported[i], (int64_t)i + 1);
        assert_int_equal(store_config_get(s, "crash", reported[i], &sv), 0);
        assert_int_equal(sv.config.v[TUNER_CFG_GOMAXPROCS], 1 + (reported[i] - 1) % 64);
        store_version_cleanup(&sv);
    }
    /* And the store works on from where the child stopped. */
    tuner_config c = make_config(2);
    int64_t v = 0;
    assert_int_equal(store_config_append(s, "crash", a.config_version, &c, "operator", NULL,
                                         NULL, NULL, 1, &v), 0);
    assert_int_equal(v, a.config_version + 1);
    store_close(s);
    raw_text(fx, "PRAGMA integrity_check", ok, sizeof ok);
    assert_string_equal(ok, "ok");
}

int test_store(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mode_names),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_open_creates_schema),
        T(test_refuses_newer_schema),
        T(test_reopen_keeps_everything),
        T(test_upsert),
        T(test_push_path),
        T(test_list_paging),
        T(test_mode),
        T(test_config_versions),
        T(test_events),
        T(test_policies),
        T(test_samples_window),
        T(test_samples_persist_reload),
        T(test_flusher_thread),
        T(test_retention),
        T(test_delete_agent),
        T(test_max_agents),
        T(test_pending_cap),
        T(test_flusher_wakes_early),
        T(test_stats),
        T(test_census),
        T(test_census_pages),
        T(test_apply_batch),
        T(test_apply_fields_roundtrip),
        T(test_apply_clears_verify),
        T(test_apply_outdated),
        T(test_apply_events),
        T(test_version_hook),
        T(test_mode_default),
        T(test_migrate_from_v1),
        T(test_apply_large_batch),
        cmocka_unit_test(test_sample_encoding),
        cmocka_unit_test(test_pending_queue),
        T(test_concurrency),
        T(test_crash_durability),
#undef T
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
