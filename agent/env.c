/*
 * env.c — GODEBUG merging and the child's environment. See env.h.
 */
#include "agent/env.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *env_godebug(const char *old, int schedtrace_ms)
{
    char ours[32];
    int n = snprintf(ours, sizeof ours, "schedtrace=%d", schedtrace_ms);
    size_t cap = (old ? strlen(old) : 0) + (size_t)n + 2;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t len = 0;
    bool placed = false;
    for (const char *p = old ? old : ""; *p; ) {
        const char *comma = strchr(p, ',');
        size_t elen = comma ? (size_t)(comma - p) : strlen(p);
        const char *add = p;
        size_t alen = elen;
        if (elen >= 11 && memcmp(p, "schedtrace=", 11) == 0) {
            add = placed ? NULL : ours;
            alen = (size_t)n;
            placed = true;
        }
        if (add && alen > 0) {
            if (len)
                out[len++] = ',';
            memcpy(out + len, add, alen);
            len += alen;
        }
        p += elen + (comma ? 1 : 0);
    }
    if (!placed) {
        if (len)
            out[len++] = ',';
        memcpy(out + len, ours, (size_t)n);
        len += (size_t)n;
    }
    out[len] = '\0';
    return out;
}

const char *env_get(char *const *env, const char *name)
{
    size_t n = strlen(name);
    for (; env && *env; env++)
        if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

void env_free(char **env)
{
    if (!env)
        return;
    for (char **e = env; *e; e++)
        free(*e);
    free(env);
}

char **env_build(char *const *base, int schedtrace_ms, int gomaxprocs)
{
    size_t n = 0;
    while (base && base[n])
        n++;
    char **env = calloc(n + 3, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(base[i], "GODEBUG=", 8) == 0)
            continue;
        if (gomaxprocs > 0 && strncmp(base[i], "GOMAXPROCS=", 11) == 0)
            continue;
        if (!(env[k++] = strdup(base[i])))
            goto oom;
    }
    char *gd = env_godebug(env_get(base, "GODEBUG"), schedtrace_ms);
    if (!gd)
        goto oom;
    size_t glen = strlen(gd) + 9;
    env[k] = malloc(glen);
    if (!env[k]) {
        free(gd);
        goto oom;
    }
    snprintf(env[k++], glen, "GODEBUG=%s", gd);
    free(gd);
    if (gomaxprocs > 0) {
        char buf[32];
        snprintf(buf, sizeof buf, "GOMAXPROCS=%d", gomaxprocs);
        if (!(env[k++] = strdup(buf)))
            goto oom;
    }
    env[k] = NULL;
    return env;
oom:
    env_free(env);
    return NULL;
}
