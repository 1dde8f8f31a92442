/*
 * main.c — the gotuned daemon: flags, the CPU probe that sizes the worker
 * pool with the same quota rule gotuned recommends to others, the store,
 * the HTTP server, and a graceful stop on SIGINT/SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "api/api.h"
#include "cgroup/cg.h"
#include "server/auth.h"
#include "server/http.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/tls.h"
#include "store/store.h"
#include "tuner/tuner.h"

#define GOTUNED_VERSION "0.1.0"

/* Room for 10,000 held requests (blocking queries each keep a connection
 * open) plus the ordinary traffic of those agents. */
#define CONN_LIMIT_DEFAULT 16384u

/* Descriptors kept back from the connection limit: stdio, the listening
 * socket, the store's files, the wait queue's epoll and eventfd, with a
 * margin; each pool thread adds its own epoll and eventfd. */
#define FD_RESERVE 64u

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gotuned [options]\n"
            "\n"
            "The gotuned control plane: takes Go scheduler telemetry from agents, recommends\n"
            "GOMAXPROCS and worker-pool settings, and keeps a versioned config per agent.\n"
            "\n"
            "  --listen ADDR:PORT     where to listen (default 127.0.0.1:8080); an address\n"
            "                         beyond loopback needs --auth-file\n"
            "  --auth-file PATH       bearer tokens with their roles (admin, agent, viewer),\n"
            "                         one per line; the file must not be readable by group\n"
            "                         or others (README 'Security'). Without it every route\n"
            "                         is open, so gotuned listens on loopback only\n"
            "  --tls-cert PATH        serve HTTPS with this PEM certificate (chain: server\n"
            "                         certificate first); needs --tls-key. Default: plain HTTP\n"
            "  --tls-key PATH         the PEM private key of --tls-cert: unencrypted, and\n"
            "                         readable by its owner only (mode 0600 or 0400)\n"
            "  --data-dir DIR         where the SQLite store lives (default ./var)\n"
            "  --threads N            HTTP worker threads (default: from this process's CPU\n"
            "                         limit, by the quota rule of the global policy)\n"
            "  --max-body BYTES       request body cap (default 1048576)\n"
            "  --conn-timeout SEC     idle connection timeout (default 30)\n"
            "  --per-ip-limit N       concurrent connections per client IP (default 64)\n"
            "  --conn-limit N         concurrent connections in total, held requests\n"
            "                         included (default 16384; lowered to what the\n"
            "                         open-file limit allows, which gotuned raises to\n"
            "                         its hard limit at start)\n"
            "  --retention-hours H    how long samples are kept on disk (default 24)\n"
            "  --max-agents N         agents the store keeps in total (default 100000)\n"
            "  --probe-cpu            print this process's CPU limit and the thread count it\n"
            "                         implies, then exit\n"
            "  --version              print the version and exit\n"
            "  --help                 print this help and exit\n");
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parses a whole decimal number in [min, max]; exits with a message. */
static unsigned long long number_flag(const char *name, const char *v,
                                      unsigned long long min, unsigned long long max)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *end || errno || n < min || n > max || v[0] == '-') {
        fprintf(stderr, "gotuned: %s wants a whole number from %llu to %llu; got '%s'\n", name,
                min, max, v);
        exit(2);
    }
    return n;
}

/* The pool size from a CPU probe: the quota rule under the given policy. */
static unsigned threads_for(const cg_cpu *cpu, const tuner_policy *policy)
{
    tuner_cpu t = { cpu->num_cpu, cpu->affinity, cpu->limit };
    int32_t n = tuner_quota_procs(policy, &t);
    return n > 0 ? (unsigned)n : 1;
}

/* Raises the soft open-file limit to the hard one (held requests keep a
 * socket each) and returns the limit in force. */
static rlim_t raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = rl;
        want.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
        else
            log_msg("cannot raise the open-file limit from %llu to %llu: %s",
                    (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
                    strerror(errno));
    }
    return rl.rlim_cur;
}

/* The connection limit that fits the open-file limit: conns, lowered (and
 * logged) when every connection could not get a descriptor. */
static unsigned fit_conn_limit(unsigned conns, rlim_t nofile, unsigned threads)
{
    rlim_t reserve = FD_RESERVE + 2 * (rlim_t)threads;
    rlim_t room = nofile > reserve + 16 ? nofile - reserve : 16;
    if (conns <= room)
        return conns;
    log_msg("connection limit lowered from %u to %llu: the open-file limit is %llu and "
            "%llu descriptors are kept for the server itself",
            conns, (unsigned long long)room, (unsigned long long)nofile,
            (unsigned long long)reserve);
    return (unsigned)room;
}

static int probe_cpu(void)
{
    cg_cpu cpu;
    char err[256];
    tuner_policy policy;
    if (cg_probe_pid(0, &cpu, err, sizeof err)) {
        fprintf(stderr, "gotuned: CPU probe failed: %s\n", err);
        return 1;
    }
    tuner_policy_defaults(&policy);
    printf("limit=%g\nleaf_limit=%g\nparent_tighter=%d\nsource=%s\nnum_cpu=%d\naffinity=%d\n"
           "threads=%u\n",
           cpu.limit, cpu.leaf_limit, cpu.parent_tighter ? 1 : 0, cpu.source, cpu.num_cpu,
           cpu.affinity, threads_for(&cpu, &policy));
    return 0;
}

int main(int argc, char **argv)
{
    enum { O_LISTEN = 256, O_AUTH, O_DATA, O_THREADS, O_MAXBODY, O_TIMEOUT, O_PERIP, O_CONNS,
           O_RETENTION, O_MAXAGENTS, O_PROBE, O_VERSION, O_HELP, O_TLS_CERT, O_TLS_KEY };
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, O_LISTEN },
        { "auth-file", required_argument, NULL, O_AUTH },
        { "data-dir", required_argument, NULL, O_DATA },
        { "threads", required_argument, NULL, O_THREADS },
        { "max-body", required_argument, NULL, O_MAXBODY },
        { "conn-timeout", required_argument, NULL, O_TIMEOUT },
        { "per-ip-limit", required_argument, NULL, O_PERIP },
        { "conn-limit", required_argument, NULL, O_CONNS },
        { "retention-hours", required_argument, NULL, O_RETENTION },
        { "max-agents", required_argument, NULL, O_MAXAGENTS },
        { "tls-cert", required_argument, NULL, O_TLS_CERT },
        { "tls-key", required_argument, NULL, O_TLS_KEY },
        { "probe-cpu", no_argument, NULL, O_PROBE },
        { "version", no_argument, NULL, O_VERSION },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    const char *listen = "127.0.0.1:8080", *data_dir = "./var", *auth_file = NULL;
    const char *tls_cert = NULL, *tls_key = NULL;
    unsigned threads = 0;
    http_options ho = { .max_body = 1024 * 1024, .conn_timeout_s = 30, .per_ip_limit = 64,
                        .conn_limit = CONN_LIMIT_DEFAULT, .grace_s = 10 };
    store_options so;
    store_options_default(&so);
    char err[512];
    int opt;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case O_LISTEN: listen = optarg; break;
        case O_AUTH: auth_file = optarg; break;
        case O_DATA: data_dir = optarg; break;
        case O_THREADS: threads = (unsigned)number_flag("--threads", optarg, 1, 256); break;
        case O_MAXBODY:
            ho.max_body = (size_t)number_flag("--max-body", optarg, 1024, 256u << 20);
            break;
        case O_TIMEOUT:
            ho.conn_timeout_s = (unsigned)number_flag("--conn-timeout", optarg, 1, 3600);
            break;
        case O_PERIP:
            ho.per_ip_limit = (unsigned)number_flag("--per-ip-limit", optarg, 1, 100000);
            break;
        case O_CONNS:
            ho.conn_limit = (unsigned)number_flag("--conn-limit", optarg, 16, 1000000);
            break;
        case O_RETENTION:
            so.retention_ms = (int64_t)number_flag("--retention-hours", optarg, 1, 24 * 365) *
                              3600 * 1000;
            break;
        case O_MAXAGENTS:
            so.max_agents = (size_t)number_flag("--max-agents", optarg, 1, 10000000);
            break;
        case O_TLS_CERT: tls_cert = optarg; break;
        case O_TLS_KEY: tls_key = optarg; break;
        case O_PROBE: return probe_cpu();
        case O_VERSION: printf("gotuned %s\n", GOTUNED_VERSION); return 0;
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "gotuned: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (http_parse_listen(listen, &ho, err, sizeof err)) {
        fprintf(stderr, "gotuned: %s\n", err);
        return 2;
    }
    /* Read before anything starts, so a bad file stops gotuned at once. */
    auth_table *auth = NULL;
    if (auth_file && auth_load(auth_file, &auth, err, sizeof err)) {
        fprintf(stderr, "gotuned: %s\n", err);
        return 2;
    }
    if (!auth && !http_is_loopback(&ho)) {
        fprintf(stderr, "gotuned: refusing to listen on %s: without --auth-file gotuned "
                        "listens on loopback only (127.0.0.0/8, ::1); see README 'Security'\n",
                listen);
        return 2;
    }

    if ((tls_cert != NULL) != (tls_key != NULL)) {
        fprintf(stderr, "gotuned: %s without %s: HTTPS needs both the certificate and "
                        "its private key\n", tls_cert ? "--tls-cert" : "--tls-key",
                tls_cert ? "--tls-key" : "--tls-cert");
        auth_free(auth);
        return 2;
    }
    char *cert_pem = NULL, *key_pem = NULL;
    if (tls_cert && (tls_read_pem("--tls-cert", tls_cert, TLS_PEM_CERT, &cert_pem, err,
                                  sizeof err) ||
                     tls_read_pem("--tls-key", tls_key, TLS_PEM_KEY, &key_pem, err,
                                  sizeof err))) {
        fprintf(stderr, "gotuned: %s\n", err);
        tls_free_pem(cert_pem);
        auth_free(auth);
        return 2;
    }
    ho.tls_cert = cert_pem;
    ho.tls_key = key_pem;

    /* Signals are taken by sigwait below; every thread started from here
     * on inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    api_init();

    store *st = NULL;
    int rc = store_open(data_dir, &so, &st, err, sizeof err);
    if (rc) {
        log_msg("cannot open the store in %s: %s", data_dir, err);
        auth_free(auth);
        tls_free_pem(cert_pem);
        tls_free_pem(key_pem);
        return 1;
    }

    cg_cpu cpu;
    char why[400] = "--threads";
    if (threads == 0) {
        tuner_policy policy;
        if (store_policy_get_global(st, &policy))
            tuner_policy_defaults(&policy);
        if (cg_probe_pid(0, &cpu, err, sizeof err) == 0) {
            threads = threads_for(&cpu, &policy);
            if (cpu.limit > 0)
                snprintf(why, sizeof why, "quota rule: CPU limit %.2f from %s, %d CPUs",
                         cpu.limit, cpu.source, cpu.affinity);
            else
                snprintf(why, sizeof why, "quota rule: no CPU limit, %d CPUs", cpu.affinity);
        } else {
            log_msg("CPU probe failed (%s); using 2 threads", err);
            threads = 2;
            snprintf(why, sizeof why, "CPU probe failed");
        }
    }
    ho.threads = threads;
    rlim_t nofile = raise_nofile();
    ho.conn_limit = fit_conn_limit(ho.conn_limit, nofile, threads);

    /* The metrics count requests by route template, never by raw path. */
    metrics *mx = metrics_new(GOTUNED_VERSION, api_route_label, api_route_count());

    api_ctx ctx = { st, wall_ms, auth, mx };
    http_server *srv = NULL;
    rc = http_start(&ho, &ctx, &srv, err, sizeof err);
    if (rc) {
        log_msg("cannot listen on %s: %s", listen, err);
        metrics_free(mx);
        store_close(st);
        auth_free(auth);
        tls_free_pem(cert_pem);
        tls_free_pem(key_pem);
        return 1;
    }
    log_msg("started %s on %s (port %u), %s, data in %s, %u worker threads (%s), "
            "up to %u connections (open-file limit %llu), %s", GOTUNED_VERSION, listen,
            http_port(srv), cert_pem ? "tls on" : "tls off (plain HTTP)", data_dir, threads,
            why, ho.conn_limit, (unsigned long long)nofile,
            auth ? "bearer tokens required" : "no access control");
    if (auth)
        log_msg("access control: %zu tokens from %s", auth->n, auth_file);

    int sig = 0;
    sigwait(&sigs, &sig);
    log_msg("stopping on %s: finishing requests in flight", sig == SIGINT ? "SIGINT" : "SIGTERM");
    http_stop(srv);
    metrics_free(mx);
    store_close(st);
    auth_free(auth);
    tls_free_pem(cert_pem);
    tls_free_pem(key_pem);
    log_msg("stopped");
    return 0;
}
