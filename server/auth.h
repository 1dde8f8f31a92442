/*
 * auth.h — bearer tokens: the token file (gotuned --auth-file), the lookup
 * of a presented token, and the role and service-scope checks the API makes
 * with what the lookup found. Pure: no HTTP, no store.
 *
 * The file holds one token per line; '#' starts a comment, blank lines are
 * skipped:
 *
 *     <token-or-sha256> <role> <name> [service-scope]
 *
 * token: the bearer token itself (16 to 256 characters of [A-Za-z0-9._~+/=-])
 * or "sha256:" and the 64 hex digits of its SHA-256. role: admin, agent or
 * viewer. name: [A-Za-z0-9._-]{1,63}, what events record as the actor.
 * service-scope (agent role only): service names separated by commas, or
 * "*" (the default: every service).
 *
 * Only digests are kept: a plain token is hashed as it is read. A presented
 * token is hashed too and compared with every entry's digest in constant
 * time, so neither the position of the first differing byte nor which entry
 * matched shows in the time taken.
 *
 * Errors: 0 or a negative errno-style code, with a message in err.
 */
#ifndef GOTUNED_AUTH_H
#define GOTUNED_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/sha256.h"

#define AUTH_TOKEN_MIN 16
#define AUTH_TOKEN_MAX 256
#define AUTH_NAME_MAX 63
#define AUTH_FILE_MAX (1024 * 1024)     /* bytes; a token file is small */

typedef enum auth_role { AUTH_VIEWER = 1, AUTH_AGENT, AUTH_ADMIN } auth_role;

typedef struct auth_token {
    uint8_t digest[SHA256_LEN];         /* of the token; the token itself is never kept */
    auth_role role;
    char name[AUTH_NAME_MAX + 1];
    char *scope;                        /* agent role: "a,b,c"; NULL = every service */
    unsigned line;                      /* where it was in the file, for messages */
} auth_token;

typedef struct auth_table {
    auth_token *tokens;
    size_t n;
} auth_table;

/* Parses a token file's text (len bytes, need not be NUL-terminated) into a
 * new table (*out, freed with auth_free). Errors name the line: "line 3:
 * ...". -EINVAL for a bad line, a duplicate token or name, or no token at
 * all; -ENOMEM. */
int auth_parse(const char *text, size_t len, auth_table **out, char *err, size_t errlen);

/* Reads and parses the file at path. Refuses (-EPERM) a file that group or
 * others may read, as ssh does with keys, and anything but a regular file.
 * Messages start with "auth file PATH". */
int auth_load(const char *path, auth_table **out, char *err, size_t errlen);

void auth_free(auth_table *t);

/* The entry whose token is the len bytes at token, or NULL. Takes the same
 * time whichever entry matches, and compares whole digests. */
const auth_token *auth_lookup(const auth_table *t, const char *token, size_t len);

/* True when the n bytes at a and b are equal; the time taken does not
 * depend on where they differ. */
bool auth_equal(const void *a, const void *b, size_t n);

/* True when tok may act for service: an admin always, an agent when the
 * service is in its scope, a viewer never (it only reads). */
bool auth_in_scope(const auth_token *tok, const char *service);

/* "admin", "agent" or "viewer". */
const char *auth_role_name(auth_role r);

#endif
