/*
 * http.h — the HTTP front: libmicrohttpd with an internal epoll thread
 * pool, request bodies collected under a cap, each request handed to api/,
 * and requests api/ wants held (blocking queries) suspended in a wait queue
 * (server/wait.h) without a thread each. Knows HTTP, not JSON.
 *
 * Errors: 0 or a negative errno-style code with a message in err.
 */
#ifndef GOTUNED_HTTP_H
#define GOTUNED_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "api/api.h"

typedef struct http_options {
    struct sockaddr_storage addr;   /* where to listen */
    socklen_t addrlen;
    unsigned threads;               /* worker threads in the pool (>= 1) */
    size_t max_body;                /* request body cap in bytes; 413 above */
    unsigned conn_timeout_s;        /* idle connection timeout */
    unsigned per_ip_limit;          /* concurrent connections per client IP */
    unsigned conn_limit;            /* concurrent connections in total */
    unsigned grace_s;               /* how long shutdown waits for in-flight requests */
    const char *tls_cert;           /* PEM text (not a path), or NULL for plain HTTP; */
    const char *tls_key;            /* both or neither; kept by the caller until http_stop */
} http_options;

typedef struct http_server http_server;

/* Parses "ADDR:PORT" ("127.0.0.1:8080", "[::1]:8080") into *o. Only
 * numeric addresses are taken. Returns -EINVAL with a message. */
int http_parse_listen(const char *text, http_options *o, char *err, size_t errlen);

/* True when the address in *o is a loopback address. */
int http_is_loopback(const http_options *o);

/* Starts serving (HTTPS when o->tls_cert and o->tls_key are set); ctx must
 * outlive the server. Sets the store's version
 * hook (to wake held requests) until http_stop. */
int http_start(const http_options *o, api_ctx *ctx, http_server **out, char *err,
               size_t errlen);

/* The port actually bound (useful with port 0). */
uint16_t http_port(const http_server *s);

/* Graceful stop: stops accepting, answers every held request, waits up to
 * grace_s for in-flight requests to finish, then closes every connection
 * and frees the server. */
void http_stop(http_server *s);

#endif
