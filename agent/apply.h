/*
 * apply.h — what the rest of the agent needs from apply.c besides its
 * thread (agent.h): writing a config file atomically for --apply file.
 *
 * Errors: 0 or a negative errno-style code with a message in err.
 */
#ifndef GOTUNED_AGENT_APPLY_H
#define GOTUNED_AGENT_APPLY_H

#include <stddef.h>

#include <jansson.h>

/* Writes obj (a config version object) to path atomically: path.tmp.<pid>,
 * fsync, rename. */
int apply_write_config(const char *path, json_t *obj, char *err,
                       size_t errlen);

#endif
