/*
 * samples.c — the sample path: accepting samples into the in-memory
 * windows and the pending queue, copying windows out, the background
 * flusher that writes the queue in batches and applies retention, and
 * reloading the windows on open.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/internal.h"
#include "store/testing.h"
#include "store/xalloc.h"

#define SAMPLE_COLS "ts_ms, recv_ms, gomaxprocs, idle_procs, threads, spinning_threads, " \
                    "idle_threads, needspinning, global_runq, goroutines, lat_p50_us, " \
                    "lat_p99_us, nprocs, local_runq, gc_p99_us, pool_threshold, pool_scope, " \
                    "pool_queues"

/* Called with win_mu held after the queue dropped samples. */
static void note_drops(store *s, size_t dropped)
{
    if (dropped && !s->drop_logged) {
        fprintf(stderr, "store: more than %zu samples wait for the database; "
                "dropping the oldest\n", s->queue.limit);
        s->drop_logged = true;
    }
}

/* ----------------------------------------------------- in-memory agents */

/* The volatile facts of a push received at now_ms. */
static void vol_from(win_vol *v, const store_agent *facts, int64_t now_ms)
{
    v->last_seen_ms = now_ms;
    v->throttle = facts->throttle;
    v->throttle_prev = facts->throttle_prev;
    v->dropped_samples = facts->dropped_samples;
}

/* Copies the in-memory figures over what a row says. */
static void overlay(const win_agent *w, store_agent *a)
{
    a->samples_total = w->samples_total;
    a->last_seen_ms = w->vol.last_seen_ms;
    a->throttle = w->vol.throttle;
    a->throttle_prev = w->vol.throttle_prev;
    a->dropped_samples = w->vol.dropped_samples;
}

void sq_agent_added(store *s, const store_agent *facts, int64_t now_ms)
{
    pthread_mutex_lock(&s->win_mu);
    win_agent *a = win_add(&s->win, facts->id);
    vol_from(&a->vol, facts, now_ms);
    pthread_mutex_unlock(&s->win_mu);
}

void sq_agent_reported(store *s, const store_agent *facts, int64_t now_ms)
{
    pthread_mutex_lock(&s->win_mu);
    win_agent *a = win_find(&s->win, facts->id);
    if (a) {
        vol_from(&a->vol, facts, now_ms);
        win_mark_dirty(&s->win, a);
        free(a->row);
        a->row = NULL;
    }
    pthread_mutex_unlock(&s->win_mu);
}

/* True when the facts a push states, other than the volatile ones, are
 * those of the cached row. */
static bool same_facts(const store_agent *row, const store_agent *f)
{
    return strcmp(row->service, f->service) == 0 && strcmp(row->hostname, f->hostname) == 0
        && strcmp(row->runtime, f->runtime) == 0 && row->pid == f->pid
        && row->cpu.num_cpu == f->cpu.num_cpu && row->cpu.affinity == f->cpu.affinity
        && (row->cpu.limit == f->cpu.limit
            || (isnan(row->cpu.limit) && isnan(f->cpu.limit)))
        && strcmp(row->limit_source, f->limit_source) == 0
        && row->parent_tighter == f->parent_tighter;
}

bool sq_agent_touch(store *s, const store_agent *facts, int64_t now_ms)
{
    pthread_mutex_lock(&s->win_mu);
    win_agent *a = win_find(&s->win, facts->id);
    bool same = a && a->row && same_facts(a->row, facts);
    if (same) {
        vol_from(&a->vol, facts, now_ms);
        win_mark_dirty(&s->win, a);
    }
    pthread_mutex_unlock(&s->win_mu);
    return same;
}

bool sq_row_cached(store *s, const char *id, store_agent *out)
{
    pthread_mutex_lock(&s->win_mu);
    const win_agent *a = win_find(&s->win, id);
    bool hit = a && a->row;
    if (hit) {
        *out = *a->row;
        overlay(a, out);
    }
    pthread_mutex_unlock(&s->win_mu);
    return hit;
}

void sq_row_keep(store *s, store_agent *row)
{
    pthread_mutex_lock(&s->win_mu);
    win_agent *a = win_find(&s->win, row->id);
    if (a) {
        if (!a->row)
            a->row = xmalloc(sizeof *a->row);
        *a->row = *row;
        overlay(a, row);
    }
    pthread_mutex_unlock(&s->win_mu);
}

void sq_row_forget(store *s, const char *id)
{
    pthread_mutex_lock(&s->win_mu);
    win_agent *a = win_find(&s->win, id);
    if (a) {
        free(a->row);
        a->row = NULL;
    }
    pthread_mutex_unlock(&s->win_mu);
}

void sq_agent_removed(store *s, const char *id)
{
    pthread_mutex_lock(&s->win_mu);
    win_agent *a = win_find(&s->win, id);
    if (a) {
        pending_purge(&s->queue, a);
        win_remove(&s->win, a);
    }
    pthread_mutex_unlock(&s->win_mu);
}

size_t sq_agent_count(store *s)
{
    pthread_mutex_lock(&s->win_mu);
    size_t n = s->win.count;
    pthread_mutex_unlock(&s->win_mu);
    return n;
}

void sq_overlay_totals(store *s, store_agent *a, size_t n)
{
    pthread_mutex_lock(&s->win_mu);
    for (size_t i = 0; i < n; i++) {
        const win_agent *w = win_find(&s->win, a[i].id);
        if (w)
            overlay(w, &a[i]);
    }
    pthread_mutex_unlock(&s->win_mu);
}

/* ----------------------------------------------------------- public API */

int store_samples_append(store *s, const char *agent_id,
                         const tuner_sample *samples, size_t n)
{
    if (!s || !sq_id_ok(agent_id) || (n && !samples))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        const tuner_sample *x = &samples[i];
        if (x->nprocs > TUNER_MAX_PROCS || (x->nprocs && !x->local_runq)
            || (x->nprocs == 0 && x->gomaxprocs <= 0)
            || x->npool > TUNER_MAX_PROCS || (x->npool && !x->pool_queues)
            || x->recv_ms <= 0)
            return -EINVAL;
    }
    /* Copy before taking the lock, so appends hold it only to link. */
    win_sample **copies = n ? xmalloc(n * sizeof *copies) : NULL;
    for (size_t i = 0; i < n; i++)
        copies[i] = win_sample_new(&samples[i]);

    int ret = 0;
    bool wake = false;
    pthread_mutex_lock(&s->win_mu);
    win_agent *a = win_find(&s->win, agent_id);
    if (!a) {
        ret = -ENOENT;
    } else if (s->queue.len + n > s->queue.limit) {
        /* Refused rather than dropped: the agent still has them. */
        ret = -EBUSY;
        atomic_fetch_add_explicit(&s->stats.refused, n, memory_order_relaxed);
    } else if (n) {
        for (size_t i = 0; i < n; i++) {
            copies[i]->owner = a;
            win_push(a, copies[i]);
            note_drops(s, pending_push(&s->queue, copies[i]));
        }
        a->samples_total += n;
        win_mark_dirty(&s->win, a);
        wake = s->queue.len >= s->wake_at;
    }
    pthread_mutex_unlock(&s->win_mu);
    if (wake && s->fl_running
        && !atomic_exchange_explicit(&s->fl_woken, true, memory_order_relaxed)) {
        pthread_mutex_lock(&s->fl_mu);
        s->fl_wake = true;
        pthread_cond_signal(&s->fl_cv);
        pthread_mutex_unlock(&s->fl_mu);
    }
    if (ret < 0)
        for (size_t i = 0; i < n; i++)
            win_sample_release(copies[i]);
    free(copies);
    return ret;
}

bool store_samples_busy(store *s)
{
    pthread_mutex_lock(&s->win_mu);
    bool busy = s->queue.len >= s->queue.limit - s->queue.limit / 10;
    pthread_mutex_unlock(&s->win_mu);
    return busy;
}

int store_samples_window(store *s, const char *agent_id, size_t max,
                         tuner_sample **out, size_t *n)
{
    if (!s || !sq_id_ok(agent_id) || !out || !n)
        return -EINVAL;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->win_mu);
    const win_agent *a = win_find(&s->win, agent_id);
    if (!a) {
        pthread_mutex_unlock(&s->win_mu);
        return -ENOENT;
    }
    size_t k = a->len < max ? a->len : max;
    tuner_sample *arr = k ? xmalloc(k * sizeof *arr) : NULL;
    size_t first = a->len - k;
    int32_t runq[2 * TUNER_MAX_PROCS];
    for (size_t i = 0; i < k; i++) {
        win_sample_get(win_at(a, first + i), &arr[i], runq);
        size_t count = (size_t)arr[i].nprocs + arr[i].npool;
        arr[i].local_runq = xmalloc((count ? count : 1) * sizeof(int32_t));
        if (count)
            memcpy(arr[i].local_runq, runq, count * sizeof(int32_t));
        arr[i].pool_queues = arr[i].local_runq + arr[i].nprocs;
    }
    pthread_mutex_unlock(&s->win_mu);
    *out = arr;
    *n = k;
    return 0;
}

void store_samples_free(tuner_sample *samples, size_t n)
{
    if (!samples)
        return;
    for (size_t i = 0; i < n; i++)
        free(samples[i].local_runq);    /* pool_queues lives in the same block */
    free(samples);
}

/* ------------------------------------------------------------ flushing */

static void bind_opt_int(sqlite3_stmt *st, int i, int64_t v)
{
    if (v < 0)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, v);
}

static void bind_opt_real(sqlite3_stmt *st, int i, double v)
{
    if (!isfinite(v) || v < 0)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_double(st, i, v);
}

static int64_t col_opt_int(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
}

static double col_opt_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_double(st, i);
}

/* Writes n values as little-endian int32 into out. */
static void blob_put(unsigned char *out, const int32_t *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t x = (uint32_t)v[i];
        out[4 * i] = (unsigned char)(x & 0xff);
        out[4 * i + 1] = (unsigned char)((x >> 8) & 0xff);
        out[4 * i + 2] = (unsigned char)((x >> 16) & 0xff);
        out[4 * i + 3] = (unsigned char)(x >> 24);
    }
}

/* Reads n little-endian int32 values written by blob_put. */
static void blob_get(int32_t *out, const unsigned char *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++, b += 4)
        out[i] = (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8
                           | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
}

/* Writes one sample; s->blob is free again once the statement is reset. */
static int insert_sample(store *s, sqlite3_stmt *st, const win_sample *w)
{
    int32_t runq[2 * TUNER_MAX_PROCS];
    tuner_sample sample;
    const tuner_sample *x = &sample;
    win_sample_get(w, &sample, runq);
    unsigned char *pool_blob = s->blob + TUNER_MAX_PROCS * 4;
    blob_put(s->blob, x->local_runq, x->nprocs);
    blob_put(pool_blob, x->pool_queues, x->npool);
    sqlite3_bind_text(st, 1, w->owner->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, x->ts_ms);
    sqlite3_bind_int64(st, 3, x->recv_ms);
    bind_opt_int(st, 4, x->gomaxprocs);
    bind_opt_int(st, 5, x->idle_procs);
    bind_opt_int(st, 6, x->threads);
    bind_opt_int(st, 7, x->spinning_threads);
    bind_opt_int(st, 8, x->idle_threads);
    bind_opt_int(st, 9, x->needspinning);
    bind_opt_int(st, 10, x->global_runq);
    bind_opt_int(st, 11, x->goroutines);
    bind_opt_real(st, 12, x->lat_p50_us);
    bind_opt_real(st, 13, x->lat_p99_us);
    sqlite3_bind_int64(st, 14, x->nprocs);
    /* A zero-length blob binds as an empty BLOB, not NULL. */
    sqlite3_bind_blob(st, 15, s->blob, (int)(x->nprocs * 4), SQLITE_STATIC);
    bind_opt_real(st, 16, x->gc_p99_us);
    bind_opt_int(st, 17, x->pool_threshold);
    bind_opt_int(st, 18, x->pool_scope);
    if (x->npool)
        sqlite3_bind_blob(st, 19, pool_blob, (int)(x->npool * 4), SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 19);
    return sq_run(s, st, "sample insert");
}

/* One flush transaction, with db_mu held: up to STORE_FLUSH_BATCH queued
 * samples, the changed samples_total counters, and one chunk of retention.
 * *more says whether another round has work. */
static int flush_round(store *s, int64_t cutoff_ms, bool *more)
{
    win_total *totals = NULL;
    size_t n, ntotals = 0;
    int expired = 0;

    pthread_mutex_lock(&s->win_mu);
    n = pending_take(&s->queue, s->batch, STORE_FLUSH_BATCH);
    if (s->win.ndirty) {
        totals = xmalloc(s->win.ndirty * sizeof *totals);
        ntotals = win_take_dirty(&s->win, totals, s->win.ndirty);
    }
    pthread_mutex_unlock(&s->win_mu);

    /* The batch holds references, and the agents it names cannot be
     * removed while db_mu is held, so it is read without win_mu. */
    int rc = sq_begin_batch(s);
    if (rc == 0 && n) {
        sqlite3_stmt *st = sq_stmt(s, SQ_SAMPLE_INSERT,
            "INSERT INTO samples (agent_id, " SAMPLE_COLS ") VALUES "
            "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
            "?16, ?17, ?18, ?19)");
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = st ? insert_sample(s, st, s->batch[i]) : -EIO;
    }
    for (size_t i = 0; rc == 0 && i < ntotals; i++) {
        sqlite3_stmt *st = sq_stmt(s, SQ_AGENT_SET_TOTAL,
            "UPDATE agents SET samples_total = ?2, last_seen_ms = ?3, thr_periods = ?4, "
            "thr_throttled = ?5, thr_us = ?6, thr_ms = ?7, thr_prev_periods = ?8, "
            "thr_prev_throttled = ?9, thr_prev_us = ?10, thr_prev_ms = ?11, "
            "dropped_samples = ?12 WHERE id = ?1");
        if (!st) {
            rc = -EIO;
            break;
        }
        const win_vol *v = &totals[i].vol;
        sqlite3_bind_text(st, 1, totals[i].agent->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)totals[i].total);
        sqlite3_bind_int64(st, 3, v->last_seen_ms);
        sq_bind_throttle(st, 4, &v->throttle);
        sq_bind_throttle(st, 8, &v->throttle_prev);
        sqlite3_bind_int64(st, 12, v->dropped_samples);
        rc = sq_run(s, st, "agent totals update");
    }
    if (rc == 0) {
        sqlite3_stmt *st = sq_stmt(s, SQ_SAMPLE_EXPIRE,
            "DELETE FROM samples WHERE rowid IN "
            "(SELECT rowid FROM samples WHERE recv_ms < ?1 LIMIT ?2)");
        if (!st) {
            rc = -EIO;
        } else {
            sqlite3_bind_int64(st, 1, cutoff_ms);
            sqlite3_bind_int(st, 2, STORE_EXPIRE_CHUNK);
            rc = sq_run(s, st, "sample retention");
            expired = sqlite3_changes(s->db);
        }
    }
    if (rc == 0)
        rc = sq_commit(s);
    sq_end_batch(s);

    pthread_mutex_lock(&s->win_mu);
    if (rc == 0) {
        if (n)
            sq_stats_batch(s, n);
        for (size_t i = 0; i < n; i++)
            win_sample_release(s->batch[i]);
        if (s->drop_logged && s->queue.len == 0) {
            fprintf(stderr, "store: sample queue drained; %llu samples dropped "
                    "since open\n", (unsigned long long)s->queue.dropped);
            s->drop_logged = false;
        }
    } else {
        /* Keep them for the next round, ahead of anything newer. */
        note_drops(s, pending_unshift(&s->queue, s->batch, n));
        for (size_t i = 0; i < ntotals; i++)
            win_mark_dirty(&s->win, (win_agent *)totals[i].agent);
    }
    pthread_mutex_unlock(&s->win_mu);
    free(totals);
    *more = rc == 0 && (n == STORE_FLUSH_BATCH || expired == STORE_EXPIRE_CHUNK);
    return rc;
}

int store_flush(store *s)
{
    if (!s)
        return -EINVAL;
    int64_t cutoff = sq_now_ms() - s->opt.retention_ms;
    bool more = true;
    int rc = 0;
    /* db_mu is released between rounds so durable writes get their turn. */
    while (rc == 0 && more) {
        pthread_mutex_lock(&s->db_mu);
        rc = flush_round(s, cutoff, &more);
        pthread_mutex_unlock(&s->db_mu);
    }
    return rc;
}

/* ------------------------------------------------------------- flusher */

static void *flusher_main(void *arg)
{
    store *s = arg;
    pthread_mutex_lock(&s->fl_mu);
    while (!s->fl_stop) {
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += s->opt.flush_interval_ms / 1000;
        deadline.tv_nsec += (long)(s->opt.flush_interval_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        int rc = 0;
        while (!s->fl_stop && !s->fl_wake && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&s->fl_cv, &s->fl_mu, &deadline);
        if (s->fl_stop)
            break;
        s->fl_wake = false;
        atomic_store_explicit(&s->fl_woken, false, memory_order_relaxed);
        pthread_mutex_unlock(&s->fl_mu);
        store_flush(s);     /* failures are logged; the samples stay queued */
        pthread_mutex_lock(&s->fl_mu);
    }
    pthread_mutex_unlock(&s->fl_mu);
    return NULL;
}

int sq_flusher_start(store *s)
{
    int rc = pthread_create(&s->fl_thread, NULL, flusher_main, s);
    if (rc != 0)
        return -rc;
    s->fl_running = true;
    return 0;
}

void sq_flusher_stop(store *s)
{
    if (!s->fl_running)
        return;
    pthread_mutex_lock(&s->fl_mu);
    s->fl_stop = true;
    pthread_cond_signal(&s->fl_cv);
    pthread_mutex_unlock(&s->fl_mu);
    pthread_join(s->fl_thread, NULL);
    s->fl_running = false;
}

/* -------------------------------------------------------------- reload */

/* Loads one agent's newest samples into its ring, oldest first. */
static int load_window(store *s, win_agent *a)
{
    win_sample *newest[TUNER_MAX_WINDOW];
    size_t n = 0;
    sqlite3_stmt *st = sq_stmt(s, SQ_SAMPLE_NEWEST,
        "SELECT " SAMPLE_COLS " FROM samples WHERE agent_id = ?1 "
        "ORDER BY recv_ms DESC, rowid DESC LIMIT ?2");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, TUNER_MAX_WINDOW);
    int rc;
    while (n < TUNER_MAX_WINDOW && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t nprocs = sqlite3_column_int64(st, 12);
        const unsigned char *blob = sqlite3_column_blob(st, 13);
        int bytes = sqlite3_column_bytes(st, 13);
        const unsigned char *pblob = sqlite3_column_blob(st, 17);
        int pbytes = sqlite3_column_bytes(st, 17);
        int64_t npool = pbytes / 4;
        if (nprocs < 0 || nprocs > TUNER_MAX_PROCS || (nprocs && !blob)
            || bytes != nprocs * 4 || npool > TUNER_MAX_PROCS || pbytes % 4
            || (nprocs == 0 && col_opt_int(st, 2) <= 0)) {
            fprintf(stderr, "store: skipping a malformed stored sample of agent %s\n", a->id);
            continue;
        }
        int32_t runq[TUNER_MAX_PROCS], pool[TUNER_MAX_PROCS];
        blob_get(runq, blob, nprocs);
        blob_get(pool, pblob, npool);
        tuner_sample x;
        tuner_sample_init(&x);
        x.ts_ms = sqlite3_column_int64(st, 0);
        x.recv_ms = sqlite3_column_int64(st, 1);
        x.gomaxprocs = (int32_t)col_opt_int(st, 2);
        x.idle_procs = (int32_t)col_opt_int(st, 3);
        x.threads = (int32_t)col_opt_int(st, 4);
        x.spinning_threads = (int32_t)col_opt_int(st, 5);
        x.idle_threads = (int32_t)col_opt_int(st, 6);
        x.needspinning = (int32_t)col_opt_int(st, 7);
        x.global_runq = col_opt_int(st, 8);
        x.goroutines = col_opt_int(st, 9);
        x.lat_p50_us = col_opt_real(st, 10);
        x.lat_p99_us = col_opt_real(st, 11);
        x.nprocs = (uint32_t)nprocs;
        x.local_runq = runq;
        x.gc_p99_us = col_opt_real(st, 14);
        x.pool_threshold = (int32_t)col_opt_int(st, 15);
        x.pool_scope = (int32_t)col_opt_int(st, 16);
        x.npool = (uint32_t)npool;
        x.pool_queues = pool;
        newest[n] = win_sample_new(&x);
        newest[n]->owner = a;
        n++;
    }
    int ret = (n == TUNER_MAX_WINDOW || rc == SQLITE_DONE) ? 0 : sq_fail(s, "sample load");
    sq_done(st);
    while (n > 0) {
        n--;
        if (ret == 0)
            win_push(a, newest[n]);
        win_sample_release(newest[n]);     /* the ring holds its own */
    }
    return ret;
}

int sq_samples_load(store *s, char *err, size_t errlen)
{
    int ret = 0, rc;
    /* No other thread exists yet, but the helpers expect the locks held. */
    pthread_mutex_lock(&s->db_mu);
    sqlite3_stmt *st = sq_stmt(s, SQ_AGENT_TOTALS,
        "SELECT id, samples_total, last_seen_ms, thr_periods, thr_throttled, thr_us, "
        "thr_ms, thr_prev_periods, thr_prev_throttled, thr_prev_us, thr_prev_ms, "
        "dropped_samples FROM agents");
    if (!st) {
        ret = -EIO;
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char id[STORE_ID_MAX + 1];
        sq_copy_text(id, sizeof id, sqlite3_column_text(st, 0));
        pthread_mutex_lock(&s->win_mu);
        win_agent *a = win_add(&s->win, id);
        a->samples_total = (uint64_t)sqlite3_column_int64(st, 1);
        a->vol.last_seen_ms = sqlite3_column_int64(st, 2);
        sq_read_throttle(st, 3, &a->vol.throttle);
        sq_read_throttle(st, 7, &a->vol.throttle_prev);
        a->vol.dropped_samples = sqlite3_column_int64(st, 11);
        pthread_mutex_unlock(&s->win_mu);
        ret = load_window(s, a);
        if (ret < 0)
            break;
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = sq_fail(s, "agent load");
    sq_done(st);
out:
    if (ret < 0)
        snprintf(err, errlen, "cannot load agents and samples: %s", sqlite3_errmsg(s->db));
    pthread_mutex_unlock(&s->db_mu);
    return ret;
}

/* ----------------------------------------------------------- test hooks */

void store_test_pending_limit(store *s, size_t limit)
{
    pthread_mutex_lock(&s->win_mu);
    note_drops(s, pending_set_limit(&s->queue, limit));
    s->wake_at = SIZE_MAX;
    pthread_mutex_unlock(&s->win_mu);
}

size_t store_test_pending(store *s, uint64_t *dropped)
{
    pthread_mutex_lock(&s->win_mu);
    size_t n = s->queue.len;
    if (dropped)
        *dropped = s->queue.dropped;
    pthread_mutex_unlock(&s->win_mu);
    return n;
}
