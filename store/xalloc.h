/*
 * xalloc.h — the store's out-of-memory policy: allocation failure aborts.
 *
 * gotuned is a daemon whose every request-driven size is capped before it
 * gets here, so running out of memory means the host is in trouble; dying
 * loudly beats threading -ENOMEM through every path.
 */
#ifndef GOTUNED_STORE_XALLOC_H
#define GOTUNED_STORE_XALLOC_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "store: out of memory (%zu bytes)\n", n);
        abort();
    }
    return p;
}

static inline void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "store: out of memory (%zu x %zu bytes)\n", n, size);
        abort();
    }
    return p;
}

static inline char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

#endif
