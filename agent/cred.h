/*
 * cred.h — what gotuned-agent proves itself and the server with: the bearer
 * token (from --token-file, else the GOTUNED_TOKEN environment variable;
 * never a flag, since command lines are visible to every user) and the
 * --ca bundle that verifies an https server.
 *
 * Errors: 0, or a negative errno-style code with a one-line message in err.
 */
#ifndef GOTUNED_AGENT_CRED_H
#define GOTUNED_AGENT_CRED_H

#include <stdbool.h>
#include <stddef.h>

#define CRED_TOKEN_MIN 16
#define CRED_TOKEN_MAX 4096

/* True for a token the server can hold: CRED_TOKEN_MIN to CRED_TOKEN_MAX
 * bytes of [A-Za-z0-9._~+/=-] (so it can never break the header line). */
bool cred_token_valid(const char *s);

/* The token: the first line of file (surrounding blanks trimmed) when file
 * is set, else env (the value of GOTUNED_TOKEN, may be NULL or empty).
 * out is "" when there is neither. The file must be a regular file that
 * group and others cannot read (mode & 0044 is refused, as ssh refuses an
 * open private key). cap must be > CRED_TOKEN_MAX. */
int cred_token_load(const char *file, const char *env, char *out, size_t cap, char *err,
                    size_t errlen);

/* Checks that path is a readable file with at least one PEM certificate,
 * so that a wrong --ca stops the agent at start rather than failing every
 * request. */
int cred_ca_check(const char *path, char *err, size_t errlen);

#endif
