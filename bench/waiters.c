/*
 * waiters.c — the blocking-query benchmark client (issue 3).
 *
 * Registers N agents of service "bench", holds N blocking queries
 * (GET /api/v1/agents/{id}/config?index=0&wait=5m, one connection each),
 * makes a policy change that gives every agent version 1
 * (PUT /api/v1/services/bench/policy), and measures how long until every
 * held query is answered, and how much server memory each waiting agent
 * costs. Then, as real agents do, every connection is kept alive and asks
 * again (index=1): the server's memory is read once more with all of them
 * held on connections that have already answered a request, and a second
 * change (version 2) is timed the same way. See docs/bench.md for how to
 * read the figures.
 *
 * A single-threaded epoll HTTP/1.1 client with nothing beyond libc. It is a
 * benchmark, not a test: it prints figures and never judges a time. It exits
 * 0 when every query was held and then answered 200 with X-Gotuned-Index: 1,
 * every next query on the same connection was held and answered 200 with
 * X-Gotuned-Index: 2, and agent w-000001's newest version is 2 from the
 * tuner; 1 when anything went wrong (errors, or the overall timeout), 2 on
 * bad usage or set-up.
 *
 * Every wait is bounded by one overall deadline (--timeout).
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SERVICE "bench"
#define CHECK_AGENT 1u              /* the agent whose versions are read at the end */
#define N_CHANGES 2
#define MAX_RESPONSE (64 * 1024)    /* a config version is far smaller; more is a bad answer */
#define OPEN_WINDOW 256             /* waiters connecting at once: stays well under the
                                     * listen backlog, so no SYN is dropped and retried
                                     * a second later */
#define REG_TRIES 3                 /* attempts per agent when a connection breaks */
#define OPEN_STALL_S 10.0           /* no waiter got connected and sent for this long: the
                                     * server has stopped accepting (its connection limit);
                                     * the rest are given up as connect errors */
#define PUT_FAIL_GRACE_S 2.0        /* after a failed PUT, how long answers may still come */
#define DETAIL_MAX 160

/* The policy of service "bench" at each change. Agents report cpu_limit 3.0
 * on 8 CPUs, so the first change (auto mode, default policy) makes version 1
 * with gomaxprocs 3 and 3 workers (ceil; floor would give 3 as well). The
 * second raises quota.min_procs to 4: gomaxprocs 4 and 4 workers, a 33% step,
 * above guards.min_change_pct (10). It must lift guards.min_interval_s, since
 * version 1 is only seconds old (the default 60 s would hold the change), and
 * repeat mode.default, since a PUT replaces the service's overrides. */
static const char *const policy_body[N_CHANGES] = {
    "{\"mode\":{\"default\":\"auto\"}}",
    "{\"mode\":{\"default\":\"auto\"},\"guards\":{\"min_interval_s\":0},"
    "\"quota\":{\"min_procs\":4}}",
};

/* Error kinds, in the order the report lists them. */
enum err_kind {
    E_CONNECT,      /* socket, bind or connect failed, or made no progress */
    E_CLOSED,       /* the server closed or reset a waiter before answering it */
    E_EARLY,        /* a waiter was answered before the PUT: the server did not hold it */
    E_STATUS,       /* answered after the PUT, but not 200 (or not parseable: status 0) */
    E_INDEX,        /* 200, but X-Gotuned-Index missing or not the change's version */
    E_TIMEOUT,      /* still held when the client stopped waiting */
    E_REGISTER,     /* an agent could not be registered */
    E_PUT,          /* the policy change was not answered 200 */
    E_CHECK,        /* the checked agent's newest version is not 2 from the tuner */
    E_KINDS
};

static const char *const err_label[E_KINDS] = {
    "connect", "closed", "early answer", "bad status", "wrong index", "timeout", "register",
    "put", "version check",
};
static const char *const err_key[E_KINDS] = {
    "connect", "closed", "early_answer", "bad_status", "wrong_index", "timeout", "register",
    "put", "version_check",
};

enum role { R_WAITER, R_REGISTER, R_PUT, R_CHECK };

enum state {
    S_IDLE,         /* no socket */
    S_CONNECTING,   /* non-blocking connect in progress */
    S_SENDING,      /* connected, request partly written */
    S_WAITING,      /* request written, reading the answer */
    S_KEPT,         /* waiter answered early: kept open (as an agent would) to load the server */
    S_ANSWERED,     /* waiter answered by a change: kept alive for its next query */
    S_DONE,         /* finished, socket closed */
};

/* One HTTP connection. Waiters are most of them, so this stays small: the
 * request text is rebuilt from role and agent on every write, and the
 * response buffer exists only once bytes arrive. */
typedef struct conn {
    int fd;
    uint8_t role;
    uint8_t state;
    uint8_t tries;          /* register: attempts for the current agent */
    uint8_t held;           /* waiter: open with no answer byte when the current change began */
    uint32_t agent;         /* 1-based agent number (waiter, register) */
    uint32_t addr;          /* index of the source address this socket binds */
    uint32_t sent;          /* request bytes already written */
    uint32_t len, cap;      /* response bytes in buf, and buf's size */
    char *buf;
} conn;

/* One parsed response. */
typedef struct answer {
    int status;             /* 0 when the response could not be parsed */
    int64_t index;          /* X-Gotuned-Index, -1 when absent or malformed */
    int close;              /* Connection: close */
    size_t body_off, body_len;
} answer;

/* One change and the held queries it answers. Change r makes version r+1;
 * its queries ask with index=r. */
typedef struct change {
    uint32_t sent;          /* queries fully written for this change */
    double send_s;          /* how long writing them took */
    uint32_t held;          /* waiters with no answer byte when the change began */
    uint32_t kept;          /* early-answered waiters still open when the change began */
    long long backlog;      /* connections in the server's listen queue at the change; -1 =
                             * unknown. Their queries were sent (the kernel took them) but
                             * the server never saw them, so they look held but are not. */
    double settle_s;
    int settled;            /* RSS stopped moving and the backlog emptied (1), or the
                             * settle time ran out (0) */
    long long rss_held, pss_held;   /* bytes with the queries held; -1 = unknown */
    int put_sent, put_done, put_status;
    double t_put, put_ms;
    uint32_t answered;      /* waiters answered after the PUT (any status) */
    uint32_t ok;            /* ... with 200 and X-Gotuned-Index: the new version */
    uint32_t pending;       /* held waiters not answered yet */
    double *atimes;         /* answer times in ms from the PUT, answered of them */
    /* Errors from the start (change 0) or from the end of the previous
     * change's answers (later changes) until this change's answers are in. */
    unsigned err[E_KINDS];
    char detail[E_KINDS][DETAIL_MAX];  /* the first occurrence of each kind, for the report */
} change;

typedef struct bench {
    /* Options. */
    struct sockaddr_in server;
    char server_text[64];
    long pid;               /* the server's PID for memory figures; 0 = unknown */
    uint32_t n;
    uint32_t reg_conns;
    uint32_t per_addr;
    double timeout_s, settle_max_s;
    const char *json_path;

    int ep;
    double deadline;
    conn *aconn;            /* n waiters, then reg_conns registrations, then one slot for
                             * the PUTs and the version check, in turn */
    uint32_t nconn;

    /* Registration. */
    uint32_t reg_next;      /* next agent number to hand to a registration connection */
    uint32_t reg_ok, reg_failed;
    uint32_t reg_live;      /* registration connections still working */
    double reg_s;

    /* Opening the waiters. */
    uint32_t opened;        /* waiters given a socket */
    uint32_t opening;       /* waiters connecting or still writing (also for a re-poll) */
    uint32_t stalled;       /* waiters given up after OPEN_STALL_S without progress */
    double t_progress;

    long long rss_before, pss_before;   /* bytes before any query; -1 = unknown */
    change ch[N_CHANGES];
    uint32_t cur;           /* the change being prepared, made or collected */

    /* The version check at the end. */
    int check_done, check_status;
    int64_t check_version[2];           /* newest two versions, newest first; -1 = none */
    char check_source[2][16];
    char check_config[2][96];

    char missing[256];      /* what the overall timeout cut short; "" when nothing */
    int reached;            /* phases begun: 1 register, 2 queries, 3 settle, 4 change,
                             * 5 re-poll, 6 settle again, 7 second change, 8 version check */
} bench;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("waiters: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q)
        fail("out of memory");
    return q;
}

static void vcount_err(bench *b, uint32_t r, enum err_kind k, const char *fmt, va_list ap)
{
    assert(r < N_CHANGES);
    change *ch = &b->ch[r];
    if (ch->err[k]++ == 0)
        vsnprintf(ch->detail[k], sizeof ch->detail[k], fmt, ap);
}

/* Counts an error against the current change. */
static void count_err(bench *b, enum err_kind k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vcount_err(b, b->cur, k, fmt, ap);
    va_end(ap);
}

/* Counts an error against change r: a connection that cannot take part in
 * the next change is that change's error. */
static void count_err_at(bench *b, uint32_t r, enum err_kind k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vcount_err(b, r, k, fmt, ap);
    va_end(ap);
}

/* ---- the server's memory ---- */

/* Reads "Key:   1234 kB" from a /proc file; returns bytes or -1. */
static long long proc_kb(long pid, const char *file, const char *key)
{
    char path[64], line[256];
    size_t klen = strlen(key);
    long long v = -1;
    snprintf(path, sizeof path, "/proc/%ld/%s", pid, file);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtoll(line + klen + 1, NULL, 10) * 1024;
            break;
        }
    }
    fclose(f);
    return v;
}

static long long server_rss(const bench *b)
{
    return b->pid ? proc_kb(b->pid, "status", "VmRSS") : -1;
}

static long long server_pss(const bench *b)
{
    return b->pid ? proc_kb(b->pid, "smaps_rollup", "Pss") : -1;
}

/* Connections the kernel has completed but the server has not accept()ed
 * yet: the rx_queue of the listening socket in /proc/net/tcp. -1 when the
 * socket is not found (another network namespace). */
static long long listen_backlog(const bench *b)
{
    char want[32], line[512];
    long long v = -1;
    snprintf(want, sizeof want, "%08X:%04X", (unsigned)b->server.sin_addr.s_addr,
             (unsigned)ntohs(b->server.sin_port));
    FILE *f = fopen("/proc/net/tcp", "re");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        char local[64], st[8];
        unsigned long tx, rx;
        if (sscanf(line, " %*s %63s %*s %7s %lx:%lx", local, st, &tx, &rx) == 4 &&
            strcmp(local, want) == 0 && strcmp(st, "0A") == 0) {
            v = (long long)rx;
            break;
        }
    }
    fclose(f);
    return v;
}

/* ---- requests and responses ---- */

static void agent_id(char *out, size_t len, uint32_t agent)
{
    snprintf(out, len, "w-%06" PRIu32, agent);
}

/* Writes connection c's request into out (len bytes at most); returns its length. */
static size_t build_request(const bench *b, const conn *c, char *out, size_t len)
{
    char id[32], body[256];
    int n = 0;
    switch (c->role) {
    case R_WAITER:
        agent_id(id, sizeof id, c->agent);
        n = snprintf(out, len,
                     "GET /api/v1/agents/%s/config?index=%" PRIu32 "&wait=5m HTTP/1.1\r\n"
                     "Host: %s\r\n\r\n",
                     id, b->cur, b->server_text);
        break;
    case R_REGISTER: {
        agent_id(id, sizeof id, c->agent);
        int blen = snprintf(body, sizeof body,
                            "{\"agent\":{\"id\":\"%s\",\"service\":\"" SERVICE "\","
                            "\"num_cpu\":8,\"affinity\":8,\"cpu_limit\":3.0},"
                            "\"samples\":[{\"gomaxprocs\":8,\"local_runq\":[0,1,0,2,0,0,1,0]}]}",
                            id);
        assert(blen > 0 && (size_t)blen < sizeof body);
        n = snprintf(out, len,
                     "POST /api/v1/telemetry HTTP/1.1\r\nHost: %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     b->server_text, blen, body);
        break;
    }
    case R_PUT:
        n = snprintf(out, len,
                     "PUT /api/v1/services/" SERVICE "/policy HTTP/1.1\r\nHost: %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     b->server_text, strlen(policy_body[b->cur]), policy_body[b->cur]);
        break;
    case R_CHECK:
        agent_id(id, sizeof id, CHECK_AGENT);
        n = snprintf(out, len,
                     "GET /api/v1/agents/%s/versions?limit=2 HTTP/1.1\r\nHost: %s\r\n"
                     "Connection: close\r\n\r\n",
                     id, b->server_text);
        break;
    }
    assert(n > 0 && (size_t)n < len);
    return (size_t)n;
}

/* The value of header name in the header block [p, end), or NULL. */
static const char *header_value(const char *p, const char *end, const char *name,
                                size_t *vlen)
{
    size_t nlen = strlen(name);
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

/* A whole decimal number in [v, v+len), or -1. */
static int64_t parse_num(const char *v, size_t len)
{
    int64_t n = 0;
    if (len == 0 || len > 18)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

/* Parses one response from buf. Returns 1 when it is complete (*a filled,
 * *used set to its length), 0 when more bytes are needed, -1 when it is not
 * a response this client understands (no Content-Length, chunked, too big):
 * gotuned's answers always carry a Content-Length. */
static int parse_answer(const char *buf, size_t len, answer *a, size_t *used)
{
    const char *hend = memmem(buf, len, "\r\n\r\n", 4);
    if (!hend)
        return len >= MAX_RESPONSE ? -1 : 0;
    memset(a, 0, sizeof *a);
    a->index = -1;
    if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
        return -1;
    int64_t status = parse_num(buf + 9, 3);
    if (status < 100)
        return -1;
    a->status = (int)status;

    const char *h = memmem(buf, (size_t)(hend - buf) + 2, "\r\n", 2) + 2;
    const char *hlim = hend + 2;
    size_t vlen;
    const char *v = header_value(h, hlim, "Transfer-Encoding", &vlen);
    if (v)
        return -1;
    v = header_value(h, hlim, "Content-Length", &vlen);
    int64_t clen = v ? parse_num(v, vlen) : (status == 204 || status == 304 ? 0 : -1);
    if (clen < 0 || clen > MAX_RESPONSE)
        return -1;
    v = header_value(h, hlim, "X-Gotuned-Index", &vlen);
    if (v)
        a->index = parse_num(v, vlen);
    v = header_value(h, hlim, "Connection", &vlen);
    a->close = v && vlen == 5 && strncasecmp(v, "close", 5) == 0;

    a->body_off = (size_t)(hend + 4 - buf);
    a->body_len = (size_t)clen;
    if (len < a->body_off + a->body_len)
        return 0;
    *used = a->body_off + a->body_len;
    return 1;
}

/* A short printable excerpt of a body, for error details. */
static void excerpt(char *out, size_t outlen, const char *p, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < outlen && i < 100; i++)
        out[n++] = (p[i] >= 32 && p[i] < 127) ? p[i] : '.';
    out[n] = '\0';
}

/* ---- sockets ---- */

/* The loopback source address for address slot a of a role. Roles use
 * different second octets so that the registration and PUT connections
 * never share an address (and its per-IP allowance) with waiters; the last
 * octet avoids 0 and 255. */
static struct in_addr source_addr(enum role role, uint32_t a)
{
    uint32_t second = role == R_WAITER ? 1 : role == R_REGISTER ? 2 : 3;
    second += a / (254u * 256u) * 3u;
    assert(second < 255);
    uint32_t third = a / 254u % 256u, last = 1 + a % 254u;
    struct in_addr in;
    in.s_addr = htonl(127u << 24 | second << 16 | third << 8 | last);
    return in;
}

static void watch(bench *b, uint32_t i, uint32_t events, int op)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u32 = i;
    if (epoll_ctl(b->ep, op, b->aconn[i].fd, &ev) != 0)
        fail("epoll_ctl: %s", strerror(errno));
}

static void conn_close(bench *b, uint32_t i, enum state next)
{
    conn *c = &b->aconn[i];
    if (c->fd >= 0) {
        close(c->fd);   /* also takes it out of the epoll set */
        c->fd = -1;
    }
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
    c->state = (uint8_t)next;
}

/* Starts a non-blocking connect from the connection's source address.
 * Returns 0, or -1 with errno set (the socket is closed again). */
static int conn_open(bench *b, uint32_t i)
{
    conn *c = &b->aconn[i];
    int one = 1;
    struct sockaddr_in src;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (c->fd < 0)
        return -1;
    memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    src.sin_addr = source_addr((enum role)c->role, c->addr);
    /* The port is picked at connect time, per destination: bind() alone
     * would have to find a port free for every destination. */
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(c->fd, (struct sockaddr *)&src, sizeof src) != 0 ||
        (connect(c->fd, (struct sockaddr *)&b->server, sizeof b->server) != 0 &&
         errno != EINPROGRESS)) {
        int e = errno;
        close(c->fd);
        c->fd = -1;
        errno = e;
        return -1;
    }
    c->sent = 0;
    c->len = 0;
    c->state = S_CONNECTING;
    watch(b, i, EPOLLOUT, EPOLL_CTL_ADD);
    return 0;
}

/* ---- what happens to each role ---- */

/* A registration connection failed or broke: try its agent again on a new
 * socket, REG_TRIES attempts in all; then the agent counts as not
 * registered and the connection retires (a server that keeps refusing
 * would otherwise be asked forever). */
static void reg_retry(bench *b, uint32_t i, const char *why)
{
    conn *c = &b->aconn[i];
    char reason[96];
    snprintf(reason, sizeof reason, "%s", why);
    conn_close(b, i, S_IDLE);
    while (++c->tries < REG_TRIES) {
        if (conn_open(b, i) == 0)
            return;
        snprintf(reason, sizeof reason, "connect: %s", strerror(errno));
        count_err(b, E_CONNECT, "registration connection: %s", reason);
    }
    count_err(b, E_REGISTER, "agent %" PRIu32 ": %s (%d attempts)", c->agent, reason,
              REG_TRIES);
    b->reg_failed++;
    c->state = S_DONE;
    b->reg_live--;
}

/* Gives connection i the next agent to register (opening a socket if it
 * has none), or retires it when none is left. */
static void reg_start_next(bench *b, uint32_t i)
{
    conn *c = &b->aconn[i];
    if (b->reg_next > b->n) {
        conn_close(b, i, S_DONE);
        b->reg_live--;
        return;
    }
    c->agent = b->reg_next++;
    c->tries = 0;
    c->sent = 0;
    c->len = 0;
    if (c->fd >= 0) {
        c->state = S_SENDING;
        watch(b, i, EPOLLOUT, EPOLL_CTL_MOD);
    } else if (conn_open(b, i) != 0) {
        char why[96];
        snprintf(why, sizeof why, "connect: %s", strerror(errno));
        count_err(b, E_CONNECT, "registration connection: %s", why);
        reg_retry(b, i, why);
    }
}

/* The value that follows key (e.g. "\"version\":") in [p, end), or NULL. */
static const char *json_after(const char *p, const char *end, const char *key)
{
    const char *k = memmem(p, (size_t)(end - p), key, strlen(key));
    return k ? k + strlen(key) : NULL;
}

/* Reads the newest two versions of the checked agent from a versions
 * answer ({"agent":...,"versions":[{"agent":...,"version":2,"source":"tuner",
 * "created_ms":...,"config":{...},...}, ...]}): the version, its source and
 * its config object (whose text holds no braces inside strings). Fields not
 * found stay at -1 or "". */
static void parse_versions(bench *b, const char *p, size_t len)
{
    const char *end = p + len;
    for (int v = 0; v < 2; v++) {
        const char *q = json_after(p, end, "\"version\":");
        if (!q)
            return;
        size_t n = 0;
        while (q + n < end && q[n] >= '0' && q[n] <= '9')
            n++;
        b->check_version[v] = parse_num(q, n);
        const char *src = json_after(q, end, "\"source\":\"");
        const char *cfg = json_after(q, end, "\"config\":");
        if (src) {
            size_t s = 0;
            while (src + s < end && src[s] != '"' && s + 1 < sizeof b->check_source[v])
                s++;
            memcpy(b->check_source[v], src, s);
            b->check_source[v][s] = '\0';
        }
        if (!cfg || cfg >= end || *cfg != '{')
            return;
        int depth = 0;
        const char *e = cfg;
        for (; e < end; e++) {
            depth += *e == '{' ? 1 : *e == '}' ? -1 : 0;
            if (depth == 0)
                break;
        }
        if (e == end)
            return;
        excerpt(b->check_config[v], sizeof b->check_config[v], cfg, (size_t)(e + 1 - cfg));
        p = e + 1;
    }
}

static void on_answer(bench *b, uint32_t i, const answer *a)
{
    conn *c = &b->aconn[i];
    change *ch = &b->ch[b->cur];
    double t = now_s();
    char id[32], body[104];
    excerpt(body, sizeof body, c->buf + a->body_off, a->body_len);

    switch (c->role) {
    case R_REGISTER:
        if (a->status == 200) {
            b->reg_ok++;
        } else {
            agent_id(id, sizeof id, c->agent);
            count_err(b, E_REGISTER, "%s: %d %s", id, a->status, body);
            b->reg_failed++;
        }
        if (a->close)
            conn_close(b, i, S_IDLE);
        reg_start_next(b, i);
        return;

    case R_PUT:
        ch->put_done = 1;
        ch->put_status = a->status;
        ch->put_ms = (t - ch->t_put) * 1000;
        if (a->status != 200)
            count_err(b, E_PUT, "%d %s", a->status, body);
        conn_close(b, i, S_DONE);
        return;

    case R_CHECK:
        b->check_done = 1;
        b->check_status = a->status;
        if (a->status == 200)
            parse_versions(b, c->buf + a->body_off, a->body_len);
        agent_id(id, sizeof id, CHECK_AGENT);
        if (a->status != 200)
            count_err(b, E_CHECK, "%s/versions: %d %s", id, a->status, body);
        else if (b->check_version[0] != N_CHANGES || strcmp(b->check_source[0], "tuner") != 0)
            count_err(b, E_CHECK, "%s: newest version %" PRId64 " from \"%s\", not %d from "
                      "\"tuner\"", id, b->check_version[0], b->check_source[0], N_CHANGES);
        conn_close(b, i, S_DONE);
        return;

    case R_WAITER: {
        agent_id(id, sizeof id, c->agent);
        if (!ch->put_sent || !c->held) {
            if (c->held)
                ch->pending--;  /* answered before the change was even sent */
            count_err(b, E_EARLY, "%s: %d, X-Gotuned-Index %" PRId64 ", %s", id, a->status,
                      a->index, body);
            /* Keep the connection, as an agent would, so the server carries
             * every connection at once even when it does not hold them. */
            c->state = S_KEPT;
            c->len = 0;
            watch(b, i, EPOLLRDHUP, EPOLL_CTL_MOD);
            return;
        }
        ch->atimes[ch->answered++] = (t - ch->t_put) * 1000;
        ch->pending--;
        int good = 0;
        if (a->status != 200)
            count_err(b, E_STATUS, "%s: %d %s", id, a->status, body);
        else if (a->index != (int64_t)b->cur + 1)
            count_err(b, E_INDEX, "%s: X-Gotuned-Index %" PRId64 " (-1 = absent), not %" PRIu32
                      ", %s", id, a->index, b->cur + 1, body);
        else {
            good = 1;
            ch->ok++;
        }
        if (good && b->cur + 1 < N_CHANGES) {
            if (!a->close) {
                /* Kept alive, as an agent keeps it; its next query goes out
                 * once every answer of this change is in. */
                c->state = S_ANSWERED;
                c->held = 0;
                c->len = c->cap = 0;
                free(c->buf);
                c->buf = NULL;
                watch(b, i, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
                return;
            }
            count_err_at(b, b->cur + 1, E_CLOSED, "%s: answered with Connection: close, so "
                         "no next query on that connection", id);
        }
        conn_close(b, i, S_DONE);
        return;
    }
    }
}

/* The connection failed or the peer closed it before a whole answer. */
static void on_broken(bench *b, uint32_t i, int connecting, int err)
{
    conn *c = &b->aconn[i];
    char id[32], why[96];
    if (connecting)
        snprintf(why, sizeof why, "connect: %s", strerror(err));
    else if (err)
        snprintf(why, sizeof why, "%s after %" PRIu32 " answer bytes", strerror(err), c->len);
    else
        snprintf(why, sizeof why, "closed by the server after %" PRIu32 " answer bytes",
                 c->len);

    switch (c->role) {
    case R_REGISTER:
        if (connecting)
            count_err(b, E_CONNECT, "registration connection: %s", why);
        reg_retry(b, i, why);
        return;
    case R_PUT:
        if (connecting)
            count_err(b, E_CONNECT, "PUT connection: %s", why);
        count_err(b, E_PUT, "%s", why);
        b->ch[b->cur].put_done = 1;
        conn_close(b, i, S_DONE);
        return;
    case R_CHECK:
        count_err(b, E_CHECK, "versions connection: %s", why);
        b->check_done = 1;
        conn_close(b, i, S_DONE);
        return;
    case R_WAITER:
        agent_id(id, sizeof id, c->agent);
        if (c->state == S_KEPT) {
            /* Answered early, then closed: the early answer is counted. */
            conn_close(b, i, S_DONE);
            return;
        }
        if (c->state == S_ANSWERED) {
            /* Answered, then closed before its next query was sent. */
            count_err_at(b, b->cur + 1, E_CLOSED, "%s: %s, before its next query", id, why);
            conn_close(b, i, S_DONE);
            return;
        }
        if (connecting || c->state == S_SENDING) {
            b->opening--;
            b->t_progress = now_s();
        }
        if (c->held)
            b->ch[b->cur].pending--;
        count_err(b, connecting ? E_CONNECT : E_CLOSED, "%s: %s", id, why);
        conn_close(b, i, S_DONE);
        return;
    }
}

static void on_writable(bench *b, uint32_t i)
{
    conn *c = &b->aconn[i];
    char req[1024];
    size_t len = build_request(b, c, req, sizeof req);
    while (c->sent < len) {
        ssize_t w = send(c->fd, req + c->sent, len - c->sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (w < 0) {
            on_broken(b, i, 0, errno);
            return;
        }
        c->sent += (uint32_t)w;
    }
    c->state = S_WAITING;
    watch(b, i, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
    if (c->role == R_WAITER) {
        b->opening--;
        b->ch[b->cur].sent++;
        b->t_progress = now_s();
    } else if (c->role == R_PUT) {
        b->ch[b->cur].t_put = now_s();
        b->ch[b->cur].put_sent = 1;
    }
}

static void on_readable(bench *b, uint32_t i)
{
    conn *c = &b->aconn[i];
    for (;;) {
        if (c->cap - c->len < 4096) {
            if (c->cap >= MAX_RESPONSE + 4096) {
                answer bad = { 0, -1, 1, 0, 0 };    /* too big: a bad answer */
                on_answer(b, i, &bad);
                return;
            }
            c->cap = c->cap ? c->cap * 2 : 4096;
            c->buf = xrealloc(c->buf, c->cap);
        }
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            on_broken(b, i, 0, r < 0 ? errno : 0);
            return;
        }
        c->len += (uint32_t)r;
        if (c->state == S_KEPT) {
            c->len = 0;     /* nothing more was asked; whatever comes is dropped */
            continue;
        }
        if (c->state == S_ANSWERED) {
            /* Bytes before the next query was even sent: that connection
             * cannot be trusted to answer it. */
            char id[32];
            agent_id(id, sizeof id, c->agent);
            count_err_at(b, b->cur + 1, E_EARLY, "%s: %" PRIu32 " bytes before its next "
                         "query was sent", id, c->len);
            conn_close(b, i, S_DONE);
            return;
        }
        answer a;
        size_t used = 0;
        int rc = parse_answer(c->buf, c->len, &a, &used);
        if (rc == 0)
            continue;
        if (rc < 0) {
            /* Not understood: show its start, and use the connection no more. */
            memset(&a, 0, sizeof a);
            a.index = -1;
            a.close = 1;
            a.body_len = c->len;
        }
        on_answer(b, i, &a);
        return;
    }
}

static void on_event(bench *b, uint32_t i, uint32_t events)
{
    conn *c = &b->aconn[i];
    if (c->state == S_CONNECTING) {
        int err = 0;
        socklen_t elen = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
            err = errno;
        if (err) {
            on_broken(b, i, 1, err);
            return;
        }
        c->state = S_SENDING;
    }
    if (c->state == S_SENDING) {
        on_writable(b, i);
        return;
    }
    if ((c->state == S_WAITING || c->state == S_KEPT || c->state == S_ANSWERED) &&
        (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        on_readable(b, i);
}

/* Runs the event loop until done(b) holds or the clock reaches until.
 * Returns 1 when done, 0 when the time ran out. */
static int pump(bench *b, double until, int (*done)(const bench *))
{
    struct epoll_event ev[512];
    for (;;) {
        if (done && done(b))
            return 1;
        double left = until - now_s();
        if (left <= 0)
            return 0;
        int n = epoll_wait(b->ep, ev, 512, (int)(left * 1000) + 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail("epoll_wait: %s", strerror(errno));
        for (int k = 0; k < n; k++)
            on_event(b, ev[k].data.u32, ev[k].events);
    }
}

/* ---- phases ---- */

static int reg_finished(const bench *b)
{
    return b->reg_ok + b->reg_failed == b->n || b->reg_live == 0;
}

static int register_agents(bench *b)
{
    double t0 = now_s();
    b->reg_next = 1;
    b->reg_live = b->reg_conns;
    for (uint32_t k = 0; k < b->reg_conns; k++) {
        uint32_t i = b->n + k;
        b->aconn[i].role = R_REGISTER;
        b->aconn[i].addr = k / b->per_addr;
        reg_start_next(b, i);
    }
    int done = pump(b, b->deadline, reg_finished);
    b->reg_s = now_s() - t0;
    if (done && b->reg_ok + b->reg_failed < b->n) {
        /* Every connection gave up: whatever was not handed out failed too. */
        count_err(b, E_REGISTER, "every registration connection failed");
        b->reg_failed = b->n - b->reg_ok;
    }
    b->ch[0].err[E_REGISTER] = b->reg_failed;  /* one per agent not registered */
    for (uint32_t k = 0; k < b->reg_conns; k++)
        conn_close(b, b->n + k, S_DONE);
    if (!done)
        snprintf(b->missing, sizeof b->missing,
                 "registration: %" PRIu32 " of %" PRIu32 " agents registered", b->reg_ok, b->n);
    return done;
}

static int open_room(const bench *b)
{
    return (b->opened < b->n && b->opening < OPEN_WINDOW) ||
           (b->opened == b->n && b->opening == 0);
}

static int open_waiters(bench *b)
{
    double t0 = now_s();
    b->t_progress = t0;
    while (b->opened < b->n || b->opening > 0) {
        while (b->opened < b->n && b->opening < OPEN_WINDOW) {
            uint32_t i = b->opened++;
            conn *c = &b->aconn[i];
            c->role = R_WAITER;
            c->agent = i + 1;
            c->addr = i / b->per_addr;
            if (conn_open(b, i) != 0) {
                count_err(b, E_CONNECT, "w-%06" PRIu32 ": %s", c->agent, strerror(errno));
                c->state = S_DONE;
                continue;
            }
            b->opening++;
        }
        double stall = b->t_progress + OPEN_STALL_S;
        if (pump(b, stall < b->deadline ? stall : b->deadline, open_room))
            continue;
        if (now_s() >= b->deadline) {
            b->ch[0].send_s = now_s() - t0;
            snprintf(b->missing, sizeof b->missing,
                     "opening waiters: %" PRIu32 " of %" PRIu32 " queries sent, %" PRIu32
                     " connections still opening",
                     b->ch[0].sent, b->n, b->opening);
            return 0;
        }
        if (now_s() < b->t_progress + OPEN_STALL_S)
            continue;
        /* Stalled: the connections being opened go nowhere, and the ones
         * not opened yet would go the same way. */
        for (uint32_t i = 0; i < b->n; i++) {
            conn *c = &b->aconn[i];
            if (c->state == S_CONNECTING || c->state == S_SENDING || i >= b->opened) {
                count_err(b, E_CONNECT, "w-%06" PRIu32 ": %s, and no waiter progressed for "
                          "%.0f s: given up, with every waiter not opened yet",
                          i + 1, i >= b->opened ? "never opened"
                                 : c->state == S_SENDING ? "query not written"
                                                         : "still connecting",
                          OPEN_STALL_S);
                conn_close(b, i, S_DONE);
                b->stalled++;
            }
        }
        b->opened = b->n;
        b->opening = 0;
    }
    b->ch[0].send_s = now_s() - t0;
    return 1;
}

static int sends_finished(const bench *b)
{
    return b->opening == 0;
}

/* Sends every waiter's next query (index = the version it was just given)
 * on the connection that carried its answer, as an agent does. A waiter
 * whose answer was wrong or whose connection is gone takes no part. */
static int repoll(bench *b)
{
    double t0 = now_s();
    change *ch = &b->ch[b->cur];
    assert(b->cur > 0 && b->opening == 0);
    for (uint32_t i = 0; i < b->n; i++) {
        conn *c = &b->aconn[i];
        if (c->state != S_ANSWERED)
            continue;
        c->state = S_SENDING;
        c->sent = 0;
        c->len = 0;
        watch(b, i, EPOLLOUT, EPOLL_CTL_MOD);
        b->opening++;
    }
    /* A query this small fits in an empty socket buffer, so the writes
     * cannot stall; the overall deadline still bounds them. */
    int done = pump(b, b->deadline, sends_finished);
    ch->send_s = now_s() - t0;
    if (!done)
        snprintf(b->missing, sizeof b->missing,
                 "re-poll: %" PRIu32 " next queries written, %" PRIu32 " still writing",
                 ch->sent, b->opening);
    return done;
}

/* Gives the server time to take in every query: at least a second, then
 * until its listen backlog is empty and its RSS has not moved by more than
 * 0.5% for a second, at most settle_max_s (two seconds flat when the PID is
 * unknown). Early answers and closed connections are counted meanwhile. */
static int settle(bench *b)
{
    change *ch = &b->ch[b->cur];
    double t0 = now_s(), step = 0.25;
    long long last[4] = { -1, -1, -1, -1 };
    unsigned k = 0;
    for (;;) {
        double until = now_s() + step;
        pump(b, until < b->deadline ? until : b->deadline, NULL);
        double t = now_s() - t0;
        if (now_s() >= b->deadline) {
            ch->settle_s = t;
            snprintf(b->missing, sizeof b->missing,
                     "waiting for the server to take in the %squeries", b->cur ? "next " : "");
            return 0;
        }
        long long rss = server_rss(b);
        last[k++ % 4] = rss;
        if (b->pid && rss < 0)
            break;          /* the server is gone: nothing will settle */
        if (b->pid == 0) {
            if (t >= 2.0)
                break;
            continue;
        }
        long long lo = last[0], hi = last[0];
        for (unsigned j = 1; j < 4; j++) {
            lo = last[j] < lo ? last[j] : lo;
            hi = last[j] > hi ? last[j] : hi;
        }
        if (t >= 1.0 && lo > 0 && (hi - lo) * 200 <= hi && listen_backlog(b) <= 0) {
            ch->settled = 1;
            break;
        }
        if (t >= b->settle_max_s)
            break;
    }
    ch->settle_s = now_s() - t0;
    return 1;
}

static int answers_finished(const bench *b)
{
    const change *ch = &b->ch[b->cur];
    return ch->put_done && ch->pending == 0;
}

/* Everything answered, or the change failed so nothing more will come. */
static int collect_finished(const bench *b)
{
    const change *ch = &b->ch[b->cur];
    return ch->put_done && (ch->pending == 0 || ch->put_status != 200);
}

/* Opens the slot after the registration connections for a one-off request
 * (a PUT or the version check). On failure counts a connect error and one of
 * kind k, and returns -1. */
static int open_single(bench *b, enum role role, enum err_kind k, const char *what)
{
    uint32_t p = b->n + b->reg_conns;
    b->aconn[p].role = (uint8_t)role;
    b->aconn[p].addr = 0;
    if (conn_open(b, p) == 0)
        return 0;
    const char *why = strerror(errno);
    count_err(b, E_CONNECT, "%s connection: %s", what, why);
    count_err(b, k, "%s connection: %s", what, why);
    return -1;
}

static int change_and_collect(bench *b)
{
    change *ch = &b->ch[b->cur];
    /* What counts as held is fixed now: a waiter with no answer byte yet. */
    for (uint32_t i = 0; i < b->n; i++) {
        conn *c = &b->aconn[i];
        if (c->state == S_WAITING && c->len == 0) {
            c->held = 1;
            ch->held++;
        } else if (c->state == S_KEPT) {
            ch->kept++;
        }
        /* A waiter whose answer had begun is not held: it counts as early. */
    }
    ch->pending = ch->held;
    ch->backlog = listen_backlog(b);

    if (open_single(b, R_PUT, E_PUT, "PUT") != 0)
        ch->put_done = 1;
    /* Answers can come before the PUT's own answer; both are collected. */
    if (!pump(b, b->deadline, collect_finished)) {
        snprintf(b->missing, sizeof b->missing,
                 "answers to change %" PRIu32 ": %" PRIu32 " of %" PRIu32
                 " held queries answered%s", b->cur + 1, ch->answered, ch->held,
                 ch->put_done ? "" : ", and the PUT was not answered");
        return 0;
    }
    return 1;
}

/* The change was made and every held query answered: the next may follow. */
static int change_succeeded(const bench *b)
{
    const change *ch = &b->ch[b->cur];
    return ch->put_done && ch->put_status == 200 && ch->pending == 0;
}

static int check_finished(const bench *b)
{
    return b->check_done;
}

/* Reads the checked agent's newest versions through the API: the last
 * change must have made its version N_CHANGES, from the tuner. */
static int check_version(bench *b)
{
    if (open_single(b, R_CHECK, E_CHECK, "versions") != 0)
        b->check_done = 1;
    if (!pump(b, b->deadline, check_finished)) {
        snprintf(b->missing, sizeof b->missing, "reading w-%06u's versions", CHECK_AGENT);
        return 0;
    }
    return 1;
}

/* Holds the queries sent for change b->cur and makes it: waits for the
 * server to take them in, reads its memory, sends the PUT and collects the
 * answers. phase is the number of the settling phase (b->reached). Returns 0
 * when the overall timeout cut it short. */
static int hold_and_change(bench *b, int phase)
{
    change *ch = &b->ch[b->cur];
    b->reached = phase;
    if (!settle(b))
        return 0;
    ch->rss_held = server_rss(b);
    ch->pss_held = server_pss(b);
    b->reached = phase + 1;
    if (!change_and_collect(b))
        return 0;
    if (ch->pending) {
        /* The change failed; nothing is coming, but a late answer is still counted. */
        double until = now_s() + PUT_FAIL_GRACE_S;
        pump(b, until < b->deadline ? until : b->deadline, answers_finished);
    }
    return 1;
}

/* The whole benchmark, phase by phase (b->reached). Returns 0 when the
 * overall timeout cut it short, 1 when it ran to its end, which is earlier
 * when a change failed: there is then nothing to poll again for. */
static int run(bench *b)
{
    b->reached = 1;
    if (!register_agents(b))
        return 0;
    /* Let the server finish closing the registration connections. */
    double until = now_s() + 0.5;
    pump(b, until < b->deadline ? until : b->deadline, NULL);
    b->rss_before = server_rss(b);
    b->pss_before = server_pss(b);
    b->reached = 2;
    if (!open_waiters(b) || !hold_and_change(b, 3))
        return 0;
    if (!change_succeeded(b))
        return 1;
    b->cur = 1;
    b->reached = 5;
    if (!repoll(b) || !hold_and_change(b, 6))
        return 0;
    if (!change_succeeded(b))
        return 1;
    b->reached = 8;
    return check_version(b);
}

/* ---- the report ---- */

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, c = *(const double *)y;
    return (a > c) - (a < c);
}

/* Nearest-rank percentile of sorted a[0..n); -1 when n is 0. */
static double percentile(const double *a, uint32_t n, double p)
{
    if (n == 0)
        return -1;
    double r = p / 100.0 * (double)n;
    uint32_t k = (uint32_t)r;
    if ((double)k < r)
        k++;
    return a[k ? k - 1 : 0];
}

static void mib(char *out, size_t len, long long bytes)
{
    if (bytes < 0)
        snprintf(out, len, "n/a");
    else
        snprintf(out, len, "%.1f MiB", (double)bytes / (1024.0 * 1024.0));
}

/* One memory line: before, with the queries open, and per waiting agent
 * (per is LLONG_MIN when unknown). */
static void print_memory(const char *label, long long before, long long held, long long per)
{
    char s1[32], s2[32];
    mib(s1, sizeof s1, before);
    mib(s2, sizeof s2, held);
    printf("  %-20s %s before the queries, %s with them open", label, s1, s2);
    if (per != LLONG_MIN)
        printf(": %lld bytes per waiting agent", per);
    printf("\n");
}

/* The memory line after the re-poll: the same baseline (the line above
 * shows it), the memory with every query held again. */
static void print_memory_repolled(const char *label, long long held, long long per)
{
    char s[32];
    mib(s, sizeof s, held);
    printf("  %-20s %s", label, s);
    if (per != LLONG_MIN)
        printf(": %lld bytes per waiting agent, re-polled on kept-alive connections", per);
    printf("\n");
}

static void ms_text(char *out, size_t len, double ms)
{
    if (ms < 0)
        snprintf(out, len, "-");
    else
        snprintf(out, len, "%.1f ms", ms);
}

static void json_num(FILE *f, const char *key, double v, int known, const char *sep)
{
    if (known)
        fprintf(f, "\"%s\":%.3f%s", key, v, sep);
    else
        fprintf(f, "\"%s\":null%s", key, sep);
}

static void json_int(FILE *f, const char *key, long long v, const char *sep)
{
    if (v < 0)
        fprintf(f, "\"%s\":null%s", key, sep);
    else
        fprintf(f, "\"%s\":%lld%s", key, v, sep);
}

/* A JSON string; the details only ever hold printable ASCII. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* What the report derives from one change. */
typedef struct figures {
    double first, last, p50, p99;   /* answer times in ms; -1 when none */
    long long rss_per, pss_per;     /* growth over the baseline / N; LLONG_MIN when unknown */
    unsigned errors;
} figures;

static figures change_figures(const bench *b, change *ch)
{
    figures g;
    qsort(ch->atimes, ch->answered, sizeof *ch->atimes, cmp_double);
    g.first = ch->answered ? ch->atimes[0] : -1;
    g.last = ch->answered ? ch->atimes[ch->answered - 1] : -1;
    g.p50 = percentile(ch->atimes, ch->answered, 50);
    g.p99 = percentile(ch->atimes, ch->answered, 99);
    /* Per waiting agent: the growth divided by N, which can be negative
     * (memory returned meanwhile). */
    g.rss_per = g.pss_per = LLONG_MIN;
    if (b->rss_before >= 0 && ch->rss_held >= 0)
        g.rss_per = (ch->rss_held - b->rss_before) / (long long)b->n;
    if (b->pss_before >= 0 && ch->pss_held >= 0)
        g.pss_per = (ch->pss_held - b->pss_before) / (long long)b->n;
    g.errors = 0;
    for (int k = 0; k < E_KINDS; k++)
        g.errors += ch->err[k];
    return g;
}

/* The table lines of change r, from the hold to its errors. The phase
 * numbers of change r: its queries 2+3r, settling 3+3r, the change 4+3r. */
static void print_change(const bench *b, uint32_t r, const figures *g)
{
    static const char *const l_held[N_CHANGES] = { "at the change", "at change 2" };
    static const char *const l_put[N_CHANGES] = { "PUT policy", "PUT policy 2" };
    static const char *const l_answers[N_CHANGES] = { "answers", "answers 2" };
    static const char *const l_errors[N_CHANGES] = { "errors", "errors 2" };
    const change *ch = &b->ch[r];
    int base = 2 + 3 * (int)r;
    char s1[32], s2[32], s3[32], s4[32];

    if (b->reached >= base + 2) {
        printf("  %-20s %" PRIu32 " of %" PRIu32 " held (no answer yet), %" PRIu32
               " answered early and kept open\n",
               l_held[r], ch->held, b->n, ch->kept);
        printf("  %-20s after %.1f s: %s\n", "", ch->settle_s,
               b->pid == 0   ? "server RSS not watched"
               : ch->settled ? "server RSS stable, listen backlog empty"
                             : "server RSS or listen backlog still moving");
        if (ch->backlog > 0)
            printf("  %-20s %lld of the held are not: they wait in the server's listen "
                   "backlog,\n  %-20s never accept()ed (connection limit?)\n",
                   "NOT ACCEPTED", ch->backlog, "");
    } else {
        printf("  %-20s not reached\n", l_held[r]);
    }
    if (r == 0) {
        print_memory("server RSS", b->rss_before, ch->rss_held, g->rss_per);
        if (b->pss_before >= 0 || ch->pss_held >= 0)
            print_memory("server Pss", b->pss_before, ch->pss_held, g->pss_per);
    } else if (b->reached >= base + 2) {
        print_memory_repolled("server RSS re-polled", ch->rss_held, g->rss_per);
        if (ch->pss_held >= 0)
            print_memory_repolled("server Pss re-polled", ch->pss_held, g->pss_per);
    }
    if (b->reached < base + 2)
        printf("  %-20s not sent\n", l_put[r]);
    else if (ch->put_done && ch->put_status)
        printf("  %-20s %d in %.1f ms\n", l_put[r], ch->put_status, ch->put_ms);
    else
        printf("  %-20s no answer\n", l_put[r]);
    ms_text(s1, sizeof s1, g->first);
    ms_text(s2, sizeof s2, g->last);
    ms_text(s3, sizeof s3, g->p50);
    ms_text(s4, sizeof s4, g->p99);
    if (b->reached < base + 2) {
        printf("  %-20s not reached\n", l_answers[r]);
    } else {
        printf("  %-20s %" PRIu32 " of %" PRIu32 " held answered (%" PRIu32
               " with 200 and index %" PRIu32 "), from the PUT:\n",
               l_answers[r], ch->answered, ch->held, ch->ok, r + 1);
        printf("  %-20s first %s, last %s, p50 %s, p99 %s\n", "", s1, s2, s3, s4);
    }
    if (r + 1 == N_CHANGES) {
        char id[32];
        agent_id(id, sizeof id, CHECK_AGENT);
        if (!b->check_done || b->check_status == 0)
            printf("  %-20s %s's versions not read\n", "version check", id);
        else if (b->check_status != 200)
            printf("  %-20s %s's versions: %d\n", "version check", id, b->check_status);
        else
            for (int v = 0; v < 2 && b->check_version[v] >= 0; v++)
                printf("  %-20s %s version %" PRId64 " (%s): %s\n", v ? "" : "version check",
                       id, b->check_version[v],
                       b->check_source[v][0] ? b->check_source[v] : "no source",
                       b->check_config[v]);
    }
    printf("  %-20s %s", l_errors[r], g->errors ? "" : "none");
    for (int k = 0, shown = 0; k < E_KINDS && g->errors; k++)
        if (ch->err[k])
            printf("%s%s %u", shown++ ? ", " : "", err_label[k], ch->err[k]);
    printf("\n");
    for (int k = 0; k < E_KINDS; k++)
        if (ch->err[k])
            printf("  %-20s first %s: %s\n", "", err_label[k], ch->detail[k]);
}

/* The JSON members of change r from "held" to "first_error". */
static void json_change(FILE *f, const bench *b, uint32_t r, const figures *g)
{
    const change *ch = &b->ch[r];
    int base = 2 + 3 * (int)r;
    fprintf(f, " \"held\":%" PRIu32 ",\"kept_after_early_answer\":%" PRIu32 ",", ch->held,
            ch->kept);
    json_int(f, "listen_backlog", b->reached >= base + 2 ? ch->backlog : -1, ",");
    json_num(f, "settle_seconds", ch->settle_s, b->reached >= base + 1, ",");
    fprintf(f, "\"settled\":%s,\n", ch->settled ? "true" : "false");
    fputs(" \"memory\":{", f);
    json_int(f, "rss_before_bytes", b->rss_before, ",");
    json_int(f, "rss_held_bytes", ch->rss_held, ",");
    json_int(f, "pss_before_bytes", b->pss_before, ",");
    json_int(f, "pss_held_bytes", ch->pss_held, ",");
    if (g->rss_per != LLONG_MIN)
        fprintf(f, "\"rss_bytes_per_waiter\":%lld,", g->rss_per);
    else
        fputs("\"rss_bytes_per_waiter\":null,", f);
    if (g->pss_per != LLONG_MIN)
        fprintf(f, "\"pss_bytes_per_waiter\":%lld},\n", g->pss_per);
    else
        fputs("\"pss_bytes_per_waiter\":null},\n", f);
    fputs(" \"put\":{", f);
    json_int(f, "status", ch->put_done && ch->put_status ? ch->put_status : -1, ",");
    json_num(f, "latency_ms", ch->put_ms, ch->put_done && ch->put_status, "},\n");
    fprintf(f, " \"answers\":{\"count\":%" PRIu32 ",\"ok\":%" PRIu32 ",", ch->answered, ch->ok);
    json_num(f, "first_ms", g->first, g->first >= 0, ",");
    json_num(f, "last_ms", g->last, g->last >= 0, ",");
    json_num(f, "p50_ms", g->p50, g->p50 >= 0, ",");
    json_num(f, "p99_ms", g->p99, g->p99 >= 0, "},\n");
    fputs(" \"errors\":{", f);
    for (int k = 0; k < E_KINDS; k++)
        fprintf(f, "\"%s\":%u%s", err_key[k], ch->err[k], k + 1 < E_KINDS ? "," : "},\n");
    fputs(" \"first_error\":{", f);
    for (int k = 0, shown = 0; k < E_KINDS; k++) {
        if (!ch->err[k])
            continue;
        fprintf(f, "%s\"%s\":", shown++ ? "," : "", err_key[k]);
        json_str(f, ch->detail[k]);
    }
    fputs("}", f);
}

static int report(bench *b, int complete)
{
    figures g[N_CHANGES];
    unsigned errors = 0;
    int all_ok = 1;
    for (uint32_t r = 0; r < N_CHANGES; r++) {
        g[r] = change_figures(b, &b->ch[r]);
        errors += g[r].errors;
        all_ok = all_ok && b->ch[r].ok == b->n && b->ch[r].backlog <= 0;
    }
    uint32_t addrs = (b->n + b->per_addr - 1) / b->per_addr;
    const change *c1 = &b->ch[1];

    printf("\ngotuned waiters benchmark: %" PRIu32 " agents, server %s", b->n, b->server_text);
    if (b->pid)
        printf(" (pid %ld)", b->pid);
    printf("\n\n");
    printf("  %-20s %" PRIu32 " of %" PRIu32 " in %.2f s (%.0f agents/s, %" PRIu32
           " connections)\n",
           "registered", b->reg_ok, b->n, b->reg_s,
           b->reg_s > 0 ? (double)b->reg_ok / b->reg_s : 0, b->reg_conns);
    if (b->reached >= 2) {
        printf("  %-20s %" PRIu32 " of %" PRIu32 " sent in %.2f s, from %" PRIu32
               " source addresses (%" PRIu32 " each at most)\n",
               "queries", b->ch[0].sent, b->n, b->ch[0].send_s, addrs, b->per_addr);
        if (b->stalled)
            printf("  %-20s %" PRIu32 " given up: no waiter progressed for %.0f s\n", "",
                   b->stalled, OPEN_STALL_S);
    } else {
        printf("  %-20s not reached\n", "queries");
    }
    print_change(b, 0, &g[0]);
    if (b->reached >= 5)
        printf("  %-20s %" PRIu32 " of %" PRIu32 " sent again (index=1) on their kept-alive "
               "connections in %.2f s\n", "next queries", c1->sent, b->n, c1->send_s);
    else
        printf("  %-20s not reached\n", "next queries");
    print_change(b, 1, &g[1]);
    if (!complete)
        printf("  %-20s overall timeout (%.0f s) reached during %s\n", "incomplete",
               b->timeout_s, b->missing);
    int ok = complete && errors == 0 && all_ok && b->check_version[0] == N_CHANGES;
    printf("  %-20s %s\n\n", "result",
           ok ? "every agent held and answered, then held and answered again" : "FAILED");

    if (b->json_path) {
        FILE *f = fopen(b->json_path, "we");
        if (!f) {
            fprintf(stderr, "waiters: cannot write %s: %s\n", b->json_path, strerror(errno));
            return 1;
        }
        fprintf(f, "{\"benchmark\":\"waiters\",\"n\":%" PRIu32 ",\"server\":", b->n);
        json_str(f, b->server_text);
        fprintf(f, ",\"complete\":%s,\"ok\":%s,\"missing\":", complete ? "true" : "false",
                ok ? "true" : "false");
        if (complete)
            fputs("null", f);
        else
            json_str(f, b->missing);
        fprintf(f, ",\n \"register\":{\"ok\":%" PRIu32 ",\"connections\":%" PRIu32 ",",
                b->reg_ok, b->reg_conns);
        json_num(f, "seconds", b->reg_s, 1, ",");
        json_num(f, "per_second", b->reg_s > 0 ? b->reg_ok / b->reg_s : 0, b->reg_s > 0, "},\n");
        fprintf(f, " \"queries\":{\"sent\":%" PRIu32 ",\"given_up\":%" PRIu32
                   ",\"addresses\":%" PRIu32 ",",
                b->ch[0].sent, b->stalled, addrs);
        json_num(f, "seconds", b->ch[0].send_s, b->reached >= 2, "},\n");
        json_change(f, b, 0, &g[0]);
        fprintf(f, ",\n \"second_change\":{\"queries\":{\"sent\":%" PRIu32 ",", c1->sent);
        json_num(f, "seconds", c1->send_s, b->reached >= 5, "},\n");
        json_change(f, b, 1, &g[1]);
        fputs("},\n \"version_check\":{\"agent\":", f);
        char id[32];
        agent_id(id, sizeof id, CHECK_AGENT);
        json_str(f, id);
        fputc(',', f);
        json_int(f, "status", b->check_done && b->check_status ? b->check_status : -1,
                 ",\"versions\":[");
        for (int v = 0; v < 2 && b->check_version[v] >= 0; v++) {
            fprintf(f, "%s{\"version\":%" PRId64 ",\"source\":", v ? "," : "",
                    b->check_version[v]);
            json_str(f, b->check_source[v]);
            fputs(",\"config\":", f);
            json_str(f, b->check_config[v]);
            fputc('}', f);
        }
        fputs("]}}\n", f);
        if (fclose(f) != 0) {
            fprintf(stderr, "waiters: cannot write %s: %s\n", b->json_path, strerror(errno));
            return 1;
        }
    }
    return ok ? 0 : 1;
}

/* ---- set-up ---- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: waiters --server HOST:PORT [options]\n"
            "\n"
            "Registers N agents of service \"" SERVICE "\", holds N blocking config queries,\n"
            "makes one policy change for all of them, and reports how long until every\n"
            "query is answered and the server's memory per waiting agent. Then every\n"
            "connection, kept alive, asks again: the memory is read once more and a\n"
            "second change is timed the same way.\n"
            "\n"
            "  --server HOST:PORT   the gotuned to measure (numeric IPv4 loopback address)\n"
            "  --pid PID            the server's PID, for its RSS and Pss (default: none)\n"
            "  -n N                 agents and waiting queries (default 10000)\n"
            "  --json FILE          also write the figures as JSON to FILE\n"
            "  --timeout S          overall time limit in seconds (default 120)\n"
            "  --settle S           longest wait for the server to take in the queries\n"
            "                       (default 10)\n"
            "  --per-addr N         connections per source address (default 50)\n"
            "  --reg-conns N        parallel registration connections (default 8)\n"
            "  --help               this text\n");
}

static unsigned long num_arg(const char *name, const char *v, unsigned long min,
                             unsigned long max)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (!*v || *end || errno || v[0] == '-' || n < min || n > max)
        fail("%s wants a whole number from %lu to %lu; got '%s'", name, min, max, v);
    return n;
}

static void parse_server(bench *b, const char *text)
{
    char host[48];
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= sizeof host || strlen(text) >= sizeof b->server_text)
        fail("--server wants HOST:PORT with a numeric IPv4 address; got '%s'", text);
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    memset(&b->server, 0, sizeof b->server);
    b->server.sin_family = AF_INET;
    if (inet_pton(AF_INET, host, &b->server.sin_addr) != 1)
        fail("--server wants a numeric IPv4 address; got '%s'", host);
    b->server.sin_port = htons((uint16_t)num_arg("--server port", colon + 1, 1, 65535));
    snprintf(b->server_text, sizeof b->server_text, "%s", text);
}

/* Every waiter needs a descriptor: raise the soft limit to the hard one. */
static void raise_nofile(uint32_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        fail("getrlimit: %s", strerror(errno));
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            fail("setrlimit(RLIMIT_NOFILE, %llu): %s", (unsigned long long)rl.rlim_max,
                 strerror(errno));
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        fail("%u descriptors are needed, the hard limit is %llu (ulimit -Hn)", need,
             (unsigned long long)rl.rlim_cur);
}

int main(int argc, char **argv)
{
    enum { O_SERVER = 256, O_PID, O_JSON, O_TIMEOUT, O_SETTLE, O_PERADDR, O_REGCONNS, O_HELP };
    static const struct option longopts[] = {
        { "server", required_argument, NULL, O_SERVER },
        { "pid", required_argument, NULL, O_PID },
        { "json", required_argument, NULL, O_JSON },
        { "timeout", required_argument, NULL, O_TIMEOUT },
        { "settle", required_argument, NULL, O_SETTLE },
        { "per-addr", required_argument, NULL, O_PERADDR },
        { "reg-conns", required_argument, NULL, O_REGCONNS },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    static bench bb;
    bench *b = &bb;
    b->n = 10000;
    b->reg_conns = 8;
    b->per_addr = 50;
    b->timeout_s = 120;
    b->settle_max_s = 10;
    b->rss_before = b->pss_before = -1;
    for (uint32_t r = 0; r < N_CHANGES; r++)
        b->ch[r].rss_held = b->ch[r].pss_held = b->ch[r].backlog = -1;
    b->check_version[0] = b->check_version[1] = -1;
    int opt, have_server = 0;

    while ((opt = getopt_long(argc, argv, "n:", longopts, NULL)) != -1) {
        switch (opt) {
        case O_SERVER: parse_server(b, optarg); have_server = 1; break;
        case O_PID: b->pid = (long)num_arg("--pid", optarg, 1, 1UL << 30); break;
        case 'n': b->n = (uint32_t)num_arg("-n", optarg, 1, 1000000); break;
        case O_JSON: b->json_path = optarg; break;
        case O_TIMEOUT: b->timeout_s = (double)num_arg("--timeout", optarg, 1, 86400); break;
        case O_SETTLE: b->settle_max_s = (double)num_arg("--settle", optarg, 1, 600); break;
        case O_PERADDR: b->per_addr = (uint32_t)num_arg("--per-addr", optarg, 1, 60000); break;
        case O_REGCONNS: b->reg_conns = (uint32_t)num_arg("--reg-conns", optarg, 1, 256); break;
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || !have_server) {
        usage(stderr);
        return 2;
    }
    if (b->pid && server_rss(b) < 0)
        fail("cannot read VmRSS of pid %ld (/proc/%ld/status)", b->pid, b->pid);

    /* Descriptors: the waiters, the registration connections, the PUT or
     * the version check, and a few for stdio, epoll and /proc. */
    raise_nofile(b->n + b->reg_conns + 16);
    signal(SIGPIPE, SIG_IGN);
    b->ep = epoll_create1(EPOLL_CLOEXEC);
    if (b->ep < 0)
        fail("epoll_create1: %s", strerror(errno));
    b->nconn = b->n + b->reg_conns + 1;
    b->aconn = calloc(b->nconn, sizeof *b->aconn);
    if (!b->aconn)
        fail("out of memory");
    for (uint32_t r = 0; r < N_CHANGES; r++) {
        b->ch[r].atimes = calloc(b->n, sizeof *b->ch[r].atimes);
        if (!b->ch[r].atimes)
            fail("out of memory");
    }
    for (uint32_t i = 0; i < b->nconn; i++)
        b->aconn[i].fd = -1;

    b->deadline = now_s() + b->timeout_s;
    int complete = run(b);
    for (uint32_t r = 0; r < N_CHANGES; r++) {
        change *ch = &b->ch[r];
        ch->err[E_TIMEOUT] += ch->pending;
        if (ch->pending && !ch->detail[E_TIMEOUT][0])
            snprintf(ch->detail[E_TIMEOUT], DETAIL_MAX, "%s",
                     complete ? "the PUT failed; stopped waiting" : "overall timeout");
    }
    int rc = report(b, complete);

    for (uint32_t i = 0; i < b->nconn; i++)
        conn_close(b, i, S_DONE);
    close(b->ep);
    free(b->aconn);
    for (uint32_t r = 0; r < N_CHANGES; r++)
        free(b->ch[r].atimes);
    return rc;
}
