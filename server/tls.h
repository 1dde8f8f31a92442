/*
 * tls.h — the PEM files behind --tls-cert and --tls-key, read into memory
 * for libmicrohttpd (which takes PEM text, not paths), with messages a
 * person can act on: a missing or unreadable file, a file that is not PEM
 * of the right kind, a key others may read.
 *
 * Errors: 0, or a negative errno-style code with a one-line message in err.
 */
#ifndef GOTUNED_TLS_H
#define GOTUNED_TLS_H

#include <stddef.h>

/* Largest PEM file read: a long chain fits many times over. */
#define TLS_PEM_MAX (1024 * 1024)

typedef enum tls_pem_kind { TLS_PEM_CERT, TLS_PEM_KEY } tls_pem_kind;

/* Reads the PEM file at path (named by flag in messages) into a malloc'd,
 * NUL-terminated buffer. A certificate file must hold a CERTIFICATE block;
 * a key file an unencrypted PRIVATE KEY block and must not be readable by
 * group or others (mode & 0044), as ssh refuses such keys. */
int tls_read_pem(const char *flag, const char *path, tls_pem_kind kind, char **out,
                 char *err, size_t errlen);

/* Wipes and frees a buffer from tls_read_pem; NULL is fine. */
void tls_free_pem(char *pem);

#endif
