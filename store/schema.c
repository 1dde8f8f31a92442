/*
 * schema.c — the database schema as a list of forward migrations.
 *
 * PRAGMA user_version holds the number of migrations applied. Opening runs
 * the missing ones in order inside one IMMEDIATE transaction, so a crash
 * mid-way leaves the previous version intact. A migration, once released,
 * is never edited: changes go into a new entry at the end.
 */
#include <errno.h>
#include <stdio.h>

#include "store/internal.h"

static const char *const migrations[] = {
    /* 1: the initial schema. */
    "CREATE TABLE agents ("
    "  id TEXT PRIMARY KEY,"
    "  service TEXT NOT NULL,"
    "  hostname TEXT NOT NULL,"
    "  runtime TEXT NOT NULL,"
    "  pid INTEGER NOT NULL,"
    "  num_cpu INTEGER NOT NULL,"
    "  affinity INTEGER NOT NULL,"
    "  cpu_limit REAL NOT NULL,"
    "  limit_source TEXT NOT NULL,"
    "  parent_tighter INTEGER NOT NULL,"
    "  first_seen_ms INTEGER NOT NULL,"
    "  last_seen_ms INTEGER NOT NULL,"
    "  mode TEXT NOT NULL DEFAULT 'recommend'"
    "    CHECK (mode IN ('recommend', 'auto', 'pinned')),"
    "  config_version INTEGER NOT NULL DEFAULT 0,"
    "  last_change_ms INTEGER NOT NULL DEFAULT 0,"
    "  samples_total INTEGER NOT NULL DEFAULT 0,"
    "  ov_gomaxprocs INTEGER,"
    "  ov_pool_workers INTEGER,"
    "  ov_pool_steal_threshold INTEGER,"
    "  ov_pool_steal_scope INTEGER,"
    "  ov_gosched_every INTEGER,"
    "  ov_chunk_size INTEGER,"
    "  ov_task_timeout_ms INTEGER"
    ") WITHOUT ROWID;"
    "CREATE INDEX agents_service ON agents (service, id);"

    "CREATE TABLE config_versions ("
    "  agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  source TEXT NOT NULL,"
    "  reasons TEXT,"
    "  gomaxprocs INTEGER,"
    "  pool_workers INTEGER,"
    "  pool_steal_threshold INTEGER,"
    "  pool_steal_scope INTEGER,"
    "  gosched_every INTEGER,"
    "  chunk_size INTEGER,"
    "  task_timeout_ms INTEGER,"
    "  PRIMARY KEY (agent_id, version)"
    ") WITHOUT ROWID;"

    /* AUTOINCREMENT: event ids are paging cursors and must never be reused. */
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  ts_ms INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  agent_id TEXT NOT NULL DEFAULT '',"
    "  service TEXT NOT NULL DEFAULT '',"
    "  actor TEXT NOT NULL DEFAULT '',"
    "  before TEXT,"
    "  after TEXT"
    ");"
    "CREATE INDEX events_agent ON events (agent_id, id);"
    "CREATE INDEX events_ts ON events (ts_ms);"

    /* scope '' is the global policy, otherwise a service name. */
    "CREATE TABLE policies ("
    "  scope TEXT NOT NULL,"
    "  field TEXT NOT NULL,"
    "  value REAL NOT NULL,"
    "  PRIMARY KEY (scope, field)"
    ") WITHOUT ROWID;"

    /* No foreign key: samples are written in batches after the fact, and
     * the store deletes an agent's samples itself. NULL = not reported. */
    "CREATE TABLE samples ("
    "  agent_id TEXT NOT NULL,"
    "  ts_ms INTEGER NOT NULL,"
    "  recv_ms INTEGER NOT NULL,"
    "  gomaxprocs INTEGER,"
    "  idle_procs INTEGER,"
    "  threads INTEGER,"
    "  spinning_threads INTEGER,"
    "  idle_threads INTEGER,"
    "  needspinning INTEGER,"
    "  global_runq INTEGER,"
    "  goroutines INTEGER,"
    "  lat_p50_us REAL,"
    "  lat_p99_us REAL,"
    "  nprocs INTEGER NOT NULL,"
    "  local_runq BLOB NOT NULL"          /* nprocs little-endian int32 */
    ");"
    "CREATE INDEX samples_agent ON samples (agent_id, recv_ms);"
    "CREATE INDEX samples_recv ON samples (recv_ms);",

    /* 2: config delivery. mode_set = 0 means "follow the policy"
     * (STORE_MODE_DEFAULT); the mode column keeps its CHECK and holds
     * 'recommend' then. Until now every agent was created 'recommend', so
     * only the others were set on purpose. The verification and verdict
     * figures are nullable: SQLite stores a NaN as NULL, which reads back
     * as -1 (unknown). rj_* is the config a rollback rejected, one nullable
     * column per field in tuner_cfg_fields[] order, like ov_*. */
    "ALTER TABLE agents ADD COLUMN mode_set INTEGER NOT NULL DEFAULT 0;"
    "UPDATE agents SET mode_set = 1 WHERE mode <> 'recommend';"
    "ALTER TABLE agents ADD COLUMN applied_version INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN applied_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN outdated_since_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN nack_version INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN nack_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN nack_error TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE agents ADD COLUMN vf_version INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN vf_acked_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN vf_before_lat REAL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN vf_before_runq REAL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN vf_before_n INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN vd_version INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN vd_decided_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN vd_verdict TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE agents ADD COLUMN vd_metric TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE agents ADD COLUMN vd_before REAL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN vd_after REAL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN rj_until_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN rj_gomaxprocs INTEGER;"
    "ALTER TABLE agents ADD COLUMN rj_pool_workers INTEGER;"
    "ALTER TABLE agents ADD COLUMN rj_pool_steal_threshold INTEGER;"
    "ALTER TABLE agents ADD COLUMN rj_pool_steal_scope INTEGER;"
    "ALTER TABLE agents ADD COLUMN rj_gosched_every INTEGER;"
    "ALTER TABLE agents ADD COLUMN rj_chunk_size INTEGER;"
    "ALTER TABLE agents ADD COLUMN rj_task_timeout_ms INTEGER;"
    /* No agent could ACK before: one with a version has been out of date
     * since that version was made. */
    "UPDATE agents SET outdated_since_ms = last_change_ms WHERE config_version > 0;",

    /* 3: agents. Samples from the Go library carry no per-P
     * queues (nprocs 0, an empty local_runq blob) but may carry the GC
     * pause p99 and the worker pool's state (pool_queues: npool
     * little-endian int32, NULL without a pool). An agent reports its
     * cgroup's cumulative throttling counters; the last two reports are
     * kept (thr_* and thr_prev_*, thr_periods = -1 for none) so the
     * recent throttled share can be shown, and how many samples it
     * dropped while the server was unreachable. */
    "ALTER TABLE samples ADD COLUMN gc_p99_us REAL;"
    "ALTER TABLE samples ADD COLUMN pool_threshold INTEGER;"
    "ALTER TABLE samples ADD COLUMN pool_scope INTEGER;"
    "ALTER TABLE samples ADD COLUMN pool_queues BLOB;"
    "ALTER TABLE agents ADD COLUMN thr_periods INTEGER NOT NULL DEFAULT -1;"
    "ALTER TABLE agents ADD COLUMN thr_throttled INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN thr_us INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN thr_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN thr_prev_periods INTEGER NOT NULL DEFAULT -1;"
    "ALTER TABLE agents ADD COLUMN thr_prev_throttled INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN thr_prev_us INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN thr_prev_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN dropped_samples INTEGER NOT NULL DEFAULT 0;",
};

#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

static int user_version(sqlite3 *db, int *v)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *v = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

int sq_migrate(sqlite3 *db, char *err, size_t errlen)
{
    char sql[64];
    int v = 0;

    /* Read the version inside the write transaction, so two processes
     * opening a new file at once cannot both run migration 1. */
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    if (user_version(db, &v) != SQLITE_OK)
        goto fail;
    if (v > NMIGRATIONS || v < 0) {
        snprintf(err, errlen,
                 "database schema version %d is newer than this gotuned knows "
                 "(%d); run a newer gotuned or use another data directory",
                 v, NMIGRATIONS);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -EIO;
    }
    for (int i = v; i < NMIGRATIONS; i++) {
        if (sqlite3_exec(db, migrations[i], NULL, NULL, NULL) != SQLITE_OK) {
            snprintf(err, errlen, "schema migration %d failed: %s", i + 1,
                     sqlite3_errmsg(db));
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return -EIO;
        }
    }
    if (v < NMIGRATIONS) {
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", NMIGRATIONS);
        if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
            goto fail;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    return 0;

fail:
    snprintf(err, errlen, "schema check failed: %s", sqlite3_errmsg(db));
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -EIO;
}
