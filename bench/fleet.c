/*
 * fleet.c — registers a fleet of agents with gotuned for bench/http.sh
 * (docs/bench.md, "http"): agents PREFIX00000 ... of one service, each with
 * one POST /api/v1/telemetry that carries its agent facts and a whole
 * window of samples (default 128, TUNER_MAX_WINDOW, of 16 Ps each, with
 * timestamps one second apart), over a few keep-alive connections in
 * parallel (one thread each, blocking I/O).
 *
 *   fleet --server 127.0.0.1:PORT -n 10000 -w 128 -p 16 -c 8 --prefix fl-
 *
 * It prints one JSON line: agents asked for, answered 200, errors (first
 * error text), samples sent in the 200 answers, and the seconds it took.
 * Exit status 0 when every agent was answered 200, 1 otherwise, 2 on bad
 * usage. Nothing beyond libc.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TRIES 3                     /* attempts per agent when a connection breaks */
#define MAX_HEAD (16 * 1024)        /* an answer's header block */
#define MAX_CONNS 64
#define IO_TIMEOUT_S 30

typedef struct fleet {
    struct sockaddr_in addr;
    unsigned n, window, procs, conns, start;
    const char *prefix, *service;
    double cpu_limit;
    pthread_mutex_t mu;
    unsigned next;                  /* next agent to register */
    unsigned ok, errors;
    unsigned long long samples;
    char first_error[200];
} fleet;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void note_error(fleet *f, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&f->mu);
    f->errors++;
    if (!f->first_error[0]) {
        va_start(ap, fmt);
        vsnprintf(f->first_error, sizeof f->first_error, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&f->mu);
}

/* A growable byte buffer for one request. */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            fprintf(stderr, "fleet: vsnprintf failed\n");
            exit(2);
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);
        if (!p) {
            fprintf(stderr, "fleet: out of memory\n");
            exit(2);
        }
        b->p = p;
        b->cap = cap;
    }
}

/* The request that registers agent k with its whole window. */
static void build(const fleet *f, unsigned k, buf *body, buf *req)
{
    body->len = 0;
    req->len = 0;
    put(body, "{\"agent\":{\"id\":\"%s%05u\",\"service\":\"%s\",\"hostname\":\"node-%u\","
              "\"pid\":%u,\"runtime\":\"go1.19.8\",\"num_cpu\":16,\"cpu_limit\":%g},"
              "\"samples\":[",
        f->prefix, k, f->service, k % 500, 1000 + k % 60000, f->cpu_limit);
    long long ts0 = 1733300000000LL + (long long)k;
    for (unsigned s = 0; s < f->window; s++) {
        put(body, "%s{\"ts_ms\":%lld,\"gomaxprocs\":%u,\"idle_procs\":%u,\"threads\":%u,"
                  "\"spinning_threads\":%u,\"idle_threads\":3,\"global_runq\":%u,"
                  "\"local_runq\":[",
            s ? "," : "", ts0 + 1000LL * s, f->procs, (k + s) % (f->procs + 1),
            f->procs + 4, s % 2, (k * 7 + s) % 5);
        for (unsigned p = 0; p < f->procs; p++)
            put(body, "%s%u", p ? "," : "", (k + s * 3 + p * 5) % 7 == 0 ? (s + p) % 13 : 0);
        put(body, "],\"goroutines\":%u,\"sched_latency_us\":{\"p50\":%u,\"p99\":%u}}",
            100 + (k + s) % 300, 10 + s % 20, 200 + (k * 13 + s) % 900);
    }
    put(body, "]}");
    put(req, "POST /api/v1/telemetry HTTP/1.1\r\nHost: bench\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", body->len);
}

static int connect_to(const fleet *f)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (const struct sockaddr *)&f->addr, sizeof f->addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one answer: its status, and whether the server will close the
 * connection. -1 when the connection broke or the answer is unreadable. */
static int read_answer(int fd, int *status, int *closing, char *detail, size_t dlen)
{
    char head[MAX_HEAD + 1];
    size_t len = 0;
    char *end = NULL;
    while (!end) {
        if (len == MAX_HEAD)
            return -1;
        ssize_t r = recv(fd, head + len, MAX_HEAD - len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        len += (size_t)r;
        head[len] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end - head) + 4;
    if (sscanf(head, "HTTP/1.%*d %d", status) != 1)
        return -1;
    long long clen = 0;
    *closing = 0;
    for (char *line = strstr(head, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, "Content-Length:", 15) == 0)
            clen = strtoll(h + 15, NULL, 10);
        else if (strncasecmp(h, "Connection:", 11) == 0 && strstr(h, "close") &&
                 strstr(h, "close") < strstr(h, "\r\n"))
            *closing = 1;
    }
    if (clen < 0 || clen > 16 * 1024 * 1024)
        return -1;
    /* The body: what came with the header, then the rest; the first
     * bytes are kept for an error message. */
    size_t have = len - head_len;
    size_t want = (size_t)clen;
    size_t keep = dlen ? dlen - 1 : 0;
    size_t kept = 0;
    if (have > want)
        return -1;                  /* we never pipeline: nothing may follow */
    if (keep) {
        kept = have < keep ? have : keep;
        memcpy(detail, head + head_len, kept);
    }
    while (have < want) {
        char chunk[8192];
        size_t ask = want - have < sizeof chunk ? want - have : sizeof chunk;
        ssize_t r = recv(fd, chunk, ask, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        if (kept < keep) {
            size_t c = (size_t)r < keep - kept ? (size_t)r : keep - kept;
            memcpy(detail + kept, chunk, c);
            kept += c;
        }
        have += (size_t)r;
    }
    if (dlen)
        detail[kept] = '\0';
    return 0;
}

static void *worker(void *arg)
{
    fleet *f = arg;
    buf body = { malloc(4096), 0, 4096 }, req = { malloc(256), 0, 256 };
    if (!body.p || !req.p) {
        fprintf(stderr, "fleet: out of memory\n");
        exit(2);
    }
    int fd = -1;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        unsigned k = f->next < f->n ? f->start + f->next++ : UINT32_MAX;
        pthread_mutex_unlock(&f->mu);
        if (k == UINT32_MAX)
            break;
        build(f, k, &body, &req);
        int done = 0;
        for (int t = 0; t < TRIES && !done; t++) {
            if (fd < 0 && (fd = connect_to(f)) < 0) {
                if (t == TRIES - 1)
                    note_error(f, "agent %s%05u: connect: %s", f->prefix, k, strerror(errno));
                continue;
            }
            int status = 0, closing = 0;
            char detail[120];
            if (write_all(fd, req.p, req.len) || write_all(fd, body.p, body.len) ||
                read_answer(fd, &status, &closing, detail, sizeof detail)) {
                close(fd);
                fd = -1;
                if (t == TRIES - 1)
                    note_error(f, "agent %s%05u: connection broke %d times", f->prefix, k,
                               TRIES);
                continue;
            }
            done = 1;
            if (closing) {
                close(fd);
                fd = -1;
            }
            if (status == 200) {
                pthread_mutex_lock(&f->mu);
                f->ok++;
                f->samples += f->window;
                pthread_mutex_unlock(&f->mu);
            } else {
                for (char *c = detail; *c; c++)
                    if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
                        *c = ' ';
                note_error(f, "agent %s%05u: status %d: %s", f->prefix, k, status, detail);
            }
        }
    }
    if (fd >= 0)
        close(fd);
    free(body.p);
    free(req.p);
    return NULL;
}

static unsigned long num_arg(const char *name, const char *v, unsigned long min,
                             unsigned long max)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (!*v || *end || errno || n < min || n > max || v[0] == '-') {
        fprintf(stderr, "fleet: %s wants a whole number from %lu to %lu; got '%s'\n", name,
                min, max, v);
        exit(2);
    }
    return n;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fleet --server HOST:PORT [options]\n"
            "  -n N            agents (default 10000)\n"
            "  -w N            samples per agent, sent in one request (default 128)\n"
            "  -p N            Ps per sample (default 16)\n"
            "  -c N            connections in parallel (default 8, at most %d)\n"
            "  --prefix P      agent id prefix (default fl-); ids are P followed by 5 digits\n"
            "  --start K       first agent number (default 0)\n"
            "  --service S     service name (default fleet)\n"
            "  --cpu-limit X   the agents' CPU limit (default 4.2)\n",
            MAX_CONNS);
}

int main(int argc, char **argv)
{
    enum { O_SERVER = 256, O_PREFIX, O_START, O_SERVICE, O_CPU, O_HELP };
    static const struct option longopts[] = {
        { "server", required_argument, NULL, O_SERVER },
        { "prefix", required_argument, NULL, O_PREFIX },
        { "start", required_argument, NULL, O_START },
        { "service", required_argument, NULL, O_SERVICE },
        { "cpu-limit", required_argument, NULL, O_CPU },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    static fleet f = { .n = 10000, .window = 128, .procs = 16, .conns = 8, .prefix = "fl-",
                       .service = "fleet", .cpu_limit = 4.2,
                       .mu = PTHREAD_MUTEX_INITIALIZER };
    const char *server = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "n:w:p:c:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n': f.n = (unsigned)num_arg("-n", optarg, 1, 99999); break;
        case 'w': f.window = (unsigned)num_arg("-w", optarg, 0, 1000); break;
        case 'p': f.procs = (unsigned)num_arg("-p", optarg, 1, 1024); break;
        case 'c': f.conns = (unsigned)num_arg("-c", optarg, 1, MAX_CONNS); break;
        case O_SERVER: server = optarg; break;
        case O_PREFIX: f.prefix = optarg; break;
        case O_START: f.start = (unsigned)num_arg("--start", optarg, 0, 99999); break;
        case O_SERVICE: f.service = optarg; break;
        case O_CPU: f.cpu_limit = strtod(optarg, NULL); break;
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!server || optind < argc || f.start + f.n > 100000) {
        usage(stderr);
        return 2;
    }
    char host[64];
    const char *colon = strrchr(server, ':');
    if (!colon || (size_t)(colon - server) >= sizeof host) {
        fprintf(stderr, "fleet: --server wants HOST:PORT\n");
        return 2;
    }
    memcpy(host, server, (size_t)(colon - server));
    host[colon - server] = '\0';
    f.addr.sin_family = AF_INET;
    f.addr.sin_port = htons((uint16_t)num_arg("port", colon + 1, 1, 65535));
    if (inet_pton(AF_INET, host, &f.addr.sin_addr) != 1) {
        fprintf(stderr, "fleet: --server wants an IPv4 address, got '%s'\n", host);
        return 2;
    }

    pthread_t th[MAX_CONNS];
    double t0 = now_s();
    for (unsigned i = 0; i < f.conns; i++)
        if (pthread_create(&th[i], NULL, worker, &f) != 0) {
            fprintf(stderr, "fleet: cannot start a thread\n");
            return 2;
        }
    for (unsigned i = 0; i < f.conns; i++)
        pthread_join(th[i], NULL);
    double secs = now_s() - t0;
    printf("{\"agents\":%u,\"ok\":%u,\"errors\":%u,\"samples\":%llu,\"window\":%u,"
           "\"procs\":%u,\"conns\":%u,\"seconds\":%.3f,\"first_error\":\"%s\"}\n",
           f.n, f.ok, f.errors, f.samples, f.window, f.procs, f.conns, secs, f.first_error);
    return f.ok == f.n ? 0 : 1;
}
