/*
 * sha256.h — SHA-256 (FIPS 180-4), for the token file's "sha256:" entries
 * and for comparing presented tokens in constant time. Pure C, no state
 * beyond the caller's context; the project links no crypto library.
 */
#ifndef GOTUNED_SHA256_H
#define GOTUNED_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

typedef struct sha256_ctx {
    uint32_t h[8];
    uint64_t bytes;                     /* message length so far */
    uint8_t buf[64];                    /* a partial block */
    size_t used;                        /* bytes in buf */
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
/* Writes the digest; c must be initialised again before reuse. */
void sha256_final(sha256_ctx *c, uint8_t out[SHA256_LEN]);
/* The digest of one buffer. */
void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);

#endif
