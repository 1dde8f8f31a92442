/*
 * env.h — the child's environment: GODEBUG with schedtrace=N merged in, and
 * GOMAXPROCS from the config when it sets one. Pure (string work only).
 *
 * Errors: NULL when out of memory.
 */
#ifndef GOTUNED_AGENT_ENV_H
#define GOTUNED_AGENT_ENV_H

/* The GODEBUG value with schedtrace=ms: every existing schedtrace= entry is
 * removed, the new one takes the place of the first (or is appended), other
 * entries are kept as they were, in order; empty entries are dropped. old
 * may be NULL. Returns a malloc'd string. */
char *env_godebug(const char *old, int schedtrace_ms);

/* A new environment (NULL-terminated, malloc'd strings): base with GODEBUG
 * merged as above and, when gomaxprocs > 0, GOMAXPROCS=gomaxprocs replacing
 * any the user had. With gomaxprocs == 0 the user's own GOMAXPROCS (if any)
 * is left as it was. Free with env_free. */
char **env_build(char *const *base, int schedtrace_ms, int gomaxprocs);
void env_free(char **env);

/* The value of name in env, or NULL. */
const char *env_get(char *const *env, const char *name);

#endif
