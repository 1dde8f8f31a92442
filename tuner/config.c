/*
 * config.c — config values (the knobs gotuned pushes to agents) and sample
 * initialisation.
 */
#include <errno.h>
#include <string.h>

#include "tuner/tuner.h"

const tuner_cfg_field_info tuner_cfg_fields[TUNER_CFG_NFIELDS] = {
    [TUNER_CFG_GOMAXPROCS] = { "gomaxprocs", 1, TUNER_MAX_PROCS },
    [TUNER_CFG_WORKERS] = { "pool.workers", 1, 65536 },
    [TUNER_CFG_STEAL_THRESHOLD] = { "pool.steal_threshold", 1, 256 },
    [TUNER_CFG_STEAL_SCOPE] = { "pool.steal_scope", TUNER_SCOPE_NEIGHBORS, TUNER_SCOPE_ALL },
    [TUNER_CFG_GOSCHED_EVERY] = { "gosched_every", 1, 1000000000 },
    [TUNER_CFG_CHUNK_SIZE] = { "chunk_size", 1, 1000000000 },
    [TUNER_CFG_TASK_TIMEOUT_MS] = { "task_timeout_ms", 1, 86400000 },
};

void tuner_sample_init(tuner_sample *s)
{
    memset(s, 0, sizeof *s);
    s->gomaxprocs = -1;
    s->idle_procs = -1;
    s->threads = -1;
    s->spinning_threads = -1;
    s->idle_threads = -1;
    s->needspinning = -1;
    s->global_runq = -1;
    s->goroutines = -1;
    s->lat_p50_us = -1;
    s->lat_p99_us = -1;
    s->gc_p99_us = -1;
    s->pool_threshold = -1;
    s->pool_scope = -1;
}

void tuner_config_set(tuner_config *c, tuner_cfg_field f, int64_t v)
{
    c->set |= 1u << f;
    c->v[f] = v;
}

void tuner_config_unset(tuner_config *c, tuner_cfg_field f)
{
    c->set &= ~(1u << f);
    c->v[f] = 0;
}

bool tuner_config_equal(const tuner_config *a, const tuner_config *b)
{
    if (a->set != b->set)
        return false;
    for (int f = 0; f < TUNER_CFG_NFIELDS; f++)
        if (tuner_config_has(a, (tuner_cfg_field)f) && a->v[f] != b->v[f])
            return false;
    return true;
}

void tuner_config_merge(tuner_config *dst, const tuner_config *patch)
{
    for (int f = 0; f < TUNER_CFG_NFIELDS; f++)
        if (tuner_config_has(patch, (tuner_cfg_field)f))
            tuner_config_set(dst, (tuner_cfg_field)f, patch->v[f]);
}

int tuner_cfg_field_lookup(const char *name)
{
    for (int f = 0; f < TUNER_CFG_NFIELDS; f++)
        if (strcmp(tuner_cfg_fields[f].name, name) == 0)
            return f;
    return -1;
}

const char *tuner_scope_name(int64_t scope)
{
    switch (scope) {
    case TUNER_SCOPE_NEIGHBORS: return "neighbors";
    case TUNER_SCOPE_ALL: return "all";
    default: return NULL;
    }
}

int tuner_scope_parse(const char *name)
{
    if (strcmp(name, "neighbors") == 0)
        return TUNER_SCOPE_NEIGHBORS;
    if (strcmp(name, "all") == 0)
        return TUNER_SCOPE_ALL;
    return -1;
}
