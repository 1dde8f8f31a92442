/*
 * http.c — libmicrohttpd glue: per-request state, the body cap (413 before
 * more is read), dispatch to api_handle, held requests (suspended into the
 * wait queue), response headers, graceful stop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/http.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/unescape.h"
#include "server/wait.h"

struct http_server {
    struct MHD_Daemon *daemon;
    api_ctx *ctx;
    size_t max_body;
    unsigned grace_s;
    pthread_mutex_t lock;
    unsigned inflight;              /* requests between first call and completion,
                                       held ones included */
    waitq *wq;                      /* held requests; fed by the store's version hook */
};

/* What one request carries between the handler's calls. */
typedef struct request {
    char *body;
    size_t len, cap;
    int too_large;                  /* body passed the cap: discard the rest, answer 413 */
    int held;                       /* was held once: the next answer is now (no_wait) */
    int suspended;                  /* was really suspended in the wait queue (held
                                       may be set for a hold the queue answered at once) */
    uint64_t t0_ns;                 /* first call of the handler (metrics_now_ns) */
} request;

static const char *lookup_arg(void *conn, const char *key)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
}

static const char *lookup_header(void *conn, const char *key)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, key);
}

/* libmicrohttpd's unescaping of the path and of query keys and values,
 * replaced by url_unescape (server/unescape.h), which keeps %00 encoded. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return url_unescape(s);
}

/* Queues r as the answer to the request rq on conn, and counts it once
 * libmicrohttpd took it (a second answer to one request is refused, and
 * not counted). */
static enum MHD_Result send_response(http_server *s, struct MHD_Connection *conn,
                                     const request *rq, api_response *r, const char *method,
                                     const char *url)
{
    struct MHD_Response *resp;
    if (r->static_body)
        resp = MHD_create_response_from_buffer(r->len, (void *)r->static_body,
                                               MHD_RESPMEM_PERSISTENT);
    else if (r->body)
        resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
    else
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(r->body);
        return MHD_NO;
    }
    r->body = NULL; /* owned by resp now */
    if (r->content_type && r->len)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (r->etag[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, r->etag);
    if (r->allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                            r->cache_control ? r->cache_control : "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (r->csp)
        MHD_add_response_header(resp, "Content-Security-Policy", r->csp);
    if (r->www_authenticate)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, r->www_authenticate);
    if (r->index >= 0) {
        char index[24];
        snprintf(index, sizeof index, "%lld", (long long)r->index);
        MHD_add_response_header(resp, "X-Gotuned-Index", index);
    }
    if (r->status >= 400)
        log_msg("%d %s %s", r->status, method, url);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES)
        metrics_request(s->ctx->metrics, r->route, method, r->status,
                        metrics_now_ns() - rq->t0_ns, rq->suspended != 0);
    return ret;
}

/* Sends an error server/ found itself: no index, and the route the path
 * would have had, for the metrics. */
static enum MHD_Result send_error(http_server *s, struct MHD_Connection *conn,
                                  const request *rq, int status, const char *code,
                                  const char *msg, const char *method, const char *url,
                                  const char *logged_url)
{
    api_response r;
    memset(&r, 0, sizeof r);
    api_error_response(&r, status, code, msg, NULL);
    r.index = -1;
    r.route = api_route_of(url);
    return send_response(s, conn, rq, &r, method, logged_url);
}

static enum MHD_Result too_large(http_server *s, struct MHD_Connection *conn,
                                 const request *rq, const char *method, const char *url)
{
    char msg[96];
    snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", s->max_body);
    return send_error(s, conn, rq, 413, "too_large", msg, method, url, url);
}

/* The URL (path and query) is capped well below what libmicrohttpd's
 * 8 KiB connection memory holds, so that a long one gets our JSON 414
 * rather than libmicrohttpd's HTML 414/431 or a closed connection. The
 * query is measured as its decoded keys and values. */
#define URL_MAX 4096

static enum MHD_Result add_arg_len(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    size_t *n = cls;
    *n += strlen(key) + (value ? strlen(value) : 0) + 2;
    return MHD_YES;
}

static size_t url_len(struct MHD_Connection *conn, const char *url)
{
    size_t n = strlen(url);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_arg_len, &n);
    return n;
}

static enum MHD_Result too_long(http_server *s, struct MHD_Connection *conn,
                                const request *rq, const char *method, const char *url)
{
    return send_error(s, conn, rq, 414, "too_large", "the URL is longer than 4096 bytes",
                      method, url, "(a URL over 4096 bytes)");
}

/* Suspends conn into the wait queue: 1 when held, else answer now. */
static int hold(http_server *s, struct MHD_Connection *conn, const api_hold *h)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return 0;
    int rc = waitq_add(s->wq, conn, ci->connect_fd, h->agent, h->index, h->wait_ms);
    if (rc < 0)
        log_msg("cannot hold a request for agent %s: %s", h->agent, strerror(-rc));
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    http_server *s = cls;
    request *rq = *con_cls;

    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        *con_cls = rq;
        rq->t0_ns = metrics_now_ns();
        pthread_mutex_lock(&s->lock);
        s->inflight++;
        pthread_mutex_unlock(&s->lock);
        if (url_len(conn, url) > URL_MAX) {
            rq->too_large = 1;
            return too_long(s, conn, rq, method, url);
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        /* Both framings at once is how requests are smuggled past a proxy
         * that reads the other one (RFC 9112 6.3): refused, not guessed. */
        if (cl && lookup_header(conn, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
            rq->too_large = 1; /* drop whatever body follows */
            return send_error(s, conn, rq, 400, "bad_request",
                              "Content-Length and Transfer-Encoding together", method, url,
                              url);
        }
        /* A declared length over the cap is refused before reading any of it. */
        if (cl && strtoull(cl, NULL, 10) > s->max_body) {
            rq->too_large = 1;
            return too_large(s, conn, rq, method, url);
        }
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rq->too_large || n > s->max_body - rq->len) {
            /* A chunked or lying body: drop what came and what follows. */
            rq->too_large = 1;
            free(rq->body);
            rq->body = NULL;
            rq->len = rq->cap = 0;
            return MHD_YES;
        }
        if (rq->len + n > rq->cap) {
            size_t cap = rq->cap ? rq->cap : 4096;
            while (cap < rq->len + n)
                cap *= 2;
            if (cap > s->max_body)
                cap = s->max_body;
            char *grown = realloc(rq->body, cap);
            if (!grown)
                return MHD_NO;
            rq->body = grown;
            rq->cap = cap;
        }
        memcpy(rq->body + rq->len, upload_data, n);
        rq->len += n;
        return MHD_YES;
    }

    if (rq->too_large)
        return too_large(s, conn, rq, method, url);

    /* After a hold, this call comes from the resume: answer with what is
     * there now. */
    api_request req = { method, url, rq->body ? rq->body : "", rq->len, lookup_arg,
                        lookup_header, conn, rq->held != 0 };
    api_response resp;
    api_handle(s->ctx, &req, &resp);
    if (resp.hold.wait_ms > 0 && !rq->held) {
        free(resp.body);
        resp.body = NULL;
        /* Marked first: once waitq_add has suspended it, another thread may
         * resume it at any moment (the handler itself only runs again after
         * this call returns, in this worker). */
        rq->held = 1;
        if (hold(s, conn, &resp.hold) == 1) {
            rq->suspended = 1;
            return MHD_YES;
        }
        req.no_wait = true;
        api_handle(s->ctx, &req, &resp);
    }
    return send_response(s, conn, rq, &resp, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    http_server *s = cls;
    request *rq = *con_cls;
    if (!rq)
        return;
    free(rq->body);
    free(rq);
    *con_cls = NULL;
    pthread_mutex_lock(&s->lock);
    s->inflight--;
    pthread_mutex_unlock(&s->lock);
}

/* The wait queue's view of libmicrohttpd and the store. */
static int wq_version(void *ud, const char *agent, int64_t *v)
{
    http_server *s = ud;
    return store_agent_version(s->ctx->store, agent, v);
}

static void wq_suspend(void *ud, void *conn)
{
    (void)ud;
    MHD_suspend_connection(conn);
}

static void wq_resume(void *ud, void *conn)
{
    (void)ud;
    MHD_resume_connection(conn);
}

static void on_version(void *ud, const char *agent_id, int64_t version)
{
    waitq_notify(ud, agent_id, version);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_msg("libmicrohttpd: %s", msg);
}

int http_parse_listen(const char *text, http_options *o, char *err, size_t errlen)
{
    char host[64];
    const char *colon;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host)
            goto bad;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof host)
            goto bad;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
    }
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno || port > 65535)
        goto bad;
    memset(&o->addr, 0, sizeof o->addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&o->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&o->addr;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        o->addrlen = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        o->addrlen = sizeof *v6;
        return 0;
    }
bad:
    snprintf(err, errlen, "--listen wants ADDR:PORT with a numeric address, e.g. "
                          "127.0.0.1:8080 or [::1]:8080; got '%s'", text);
    return -EINVAL;
}

int http_is_loopback(const http_options *o)
{
    if (o->addr.ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)&o->addr;
        return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    }
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&o->addr;
    return IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
}

int http_start(const http_options *o, api_ctx *ctx, http_server **out, char *err,
               size_t errlen)
{
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->ctx = ctx;
    s->max_body = o->max_body;
    s->grace_s = o->grace_s;
    pthread_mutex_init(&s->lock, NULL);
    waitq_ops ops = { wq_version, wq_suspend, wq_resume, s };
    int rc = waitq_create(&ops, &s->wq);
    if (rc) {
        snprintf(err, errlen, "cannot start the wait queue: %s", strerror(-rc));
        goto fail;
    }
    /* Before the first request, so no commit can miss a held one. */
    store_set_version_hook(ctx->store, on_version, s->wq);
    metrics_set_waitq(ctx->metrics, s->wq);
    /* epoll, asked for by name: held requests keep thousands of sockets
     * open, past what select() can watch (FD_SETSIZE). */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (o->addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* TLS through libmicrohttpd's GnuTLS: the PEM texts go in as options
     * (MHD reads them at start); none at all for plain HTTP. */
    struct MHD_OptionItem tls_opts[] = {
        { MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)(uintptr_t)o->tls_cert },
        { MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)(uintptr_t)o->tls_key },
        { MHD_OPTION_END, 0, NULL },
    };
    const int tls = o->tls_cert != NULL;
    if (tls != (o->tls_key != NULL)) {
        snprintf(err, errlen, "TLS needs both a certificate and a key");
        rc = -EINVAL;
        goto fail;
    }
    if (tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, errlen, "this libmicrohttpd was built without TLS support");
            rc = -ENOTSUP;
            goto fail;
        }
        flags |= MHD_USE_TLS;
    }
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&o->addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)(o->threads > 1 ? o->threads : 0),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)o->conn_timeout_s,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)o->per_ip_limit,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)o->conn_limit,
        /* Per connection, resident once it has answered (the pool is
         * cleared after each request): small, since agents keep 10,000s
         * of connections open. Bodies live in our own buffer. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(8 * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
        MHD_OPTION_ARRAY, tls ? tls_opts : tls_opts + 2,
        MHD_OPTION_END);
    if (!s->daemon) {
        if (tls)
            snprintf(err, errlen, "cannot start HTTPS: the address is in use or not allowed, "
                                  "or the TLS certificate and key do not fit together "
                                  "(see the libmicrohttpd line above)");
        else
            snprintf(err, errlen, "cannot listen (address in use, or not allowed?)");
        rc = -EADDRINUSE;
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_FLAGS);
    if (!di || !(di->flags & MHD_USE_EPOLL)) {
        snprintf(err, errlen, "libmicrohttpd did not start with epoll");
        rc = -ENOTSUP;
        goto fail;
    }
    *out = s;
    return 0;
fail:
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    store_set_version_hook(ctx->store, NULL, NULL);
    metrics_set_waitq(ctx->metrics, NULL);
    waitq_destroy(s->wq);
    pthread_mutex_destroy(&s->lock);
    free(s);
    return rc;
}

uint16_t http_port(const http_server *s)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return di ? di->port : 0;
}

void http_stop(http_server *s)
{
    if (!s)
        return;
    /* Stop accepting; the listening socket is ours to close. */
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    /* Held requests are answered now; libmicrohttpd must not be stopped
     * with a connection still suspended. A request that asks to be held
     * from here on is answered at once. */
    waitq_close(s->wq);
    waitq_counts wc;
    waitq_stats(s->wq, &wc);
    if (wc.closed > 0)
        log_msg("answered %llu held requests", (unsigned long long)wc.closed);
    struct timespec step = { 0, 20 * 1000 * 1000 };
    for (unsigned waited_ms = 0; waited_ms < s->grace_s * 1000; waited_ms += 20) {
        pthread_mutex_lock(&s->lock);
        unsigned n = s->inflight;
        pthread_mutex_unlock(&s->lock);
        if (n == 0)
            break;
        nanosleep(&step, NULL);
    }
    MHD_stop_daemon(s->daemon);
    /* No handler runs any more, so no commit can call the hook and no
     * scrape can read the queue. */
    store_set_version_hook(s->ctx->store, NULL, NULL);
    metrics_set_waitq(s->ctx->metrics, NULL);
    waitq_destroy(s->wq);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
