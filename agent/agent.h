/*
 * agent.h — the state gotuned-agent's threads share, and the threads:
 *
 *   main     runs the child, relays its stderr (relay.h), forwards signals,
 *            restarts the child for --apply restart (main.c)
 *   pusher   pushes samples and CPU facts on an interval, with backoff
 *            while the server is down (push.c)
 *   poller   long-polls the config and offers each new version (poll.c)
 *   applier  applies offered versions one at a time and ACKs or NACKs
 *            them, pushing pending samples first (apply.c)
 *
 * Output never waits on the server: the main thread only ever takes `mu`
 * for short copies, never across an HTTP call.
 *
 * Errors: as in each function's comment; threads log state changes with
 * out_log and never exit on a server error.
 */
#ifndef GOTUNED_AGENT_AGENT_H
#define GOTUNED_AGENT_AGENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/backlog.h"
#include "agent/opts.h"
#include "agent/wire.h"

/* Requests carry at most this many samples (the server's cap), and about
 * this many bytes of JSON (its default body cap is 1 MiB). */
#define AGENT_BATCH_MAX 1000
#define AGENT_BATCH_BYTES (768 * 1024)

/* A restart's ACK waits this long (at least) for the proof. */
#define AGENT_VERIFY_MIN_MS 10000
/* On exit, pending samples get this long to reach the server. */
#define AGENT_FLUSH_MS 5000

typedef struct agent {
    agent_opts o;
    char hostname[256];

    pthread_mutex_t mu;         /* guards everything below */
    pthread_cond_t cond;        /* any change below; CLOCK_MONOTONIC */
    backlog *bl;
    pid_t child_pid;            /* the running child's pid, 0 between */
    int64_t applied_version;    /* the version the agent runs (last ACK) */
    bool stopping;              /* main is exiting: threads stop */
    bool legacy;                /* the server refused throttling and
                                   dropped_samples (an older server) */
    bool dropping;              /* samples were dropped since the last push
                                   that went through: logged once */

    /* The newest version offered to the applier and not yet taken. */
    wire_version offer;
    bool have_offer;
    int64_t seen_version;       /* the newest version offered so far, -1 */

    /* --apply restart: the applier's request to the main thread. */
    bool req_pending;           /* set by the applier, cleared by main */
    bool req_done;              /* set by main with req_ok/req_error */
    int64_t req_version;
    int req_gomaxprocs;         /* 0: the config does not set it */
    bool req_ok;
    char req_error[512];
    int wake_fd;                /* eventfd: wakes main for a request */

    pthread_mutex_t push_mu;    /* one push at a time (pusher, pre-ACK push,
                                   the final flush) */
} agent;

/* Clocks. */
int64_t agent_wall_ms(void);
int64_t agent_mono_ms(void);

/* Waits on a->cond (a->mu held) until the monotonic deadline; returns
 * false when it passed. */
bool agent_wait_until(agent *a, int64_t deadline_mono_ms);

/* Full-jitter exponential backoff: a random delay in [0, min(60 s, 1 s *
 * 2^attempt)] ms. */
int64_t agent_backoff_ms(unsigned attempt);

/* Offers a version to the applier (takes ownership of *v). A version from
 * the long-poll (authoritative, in order) is new when it differs from the
 * newest seen (a reset store may go back); one from a telemetry answer
 * only when it is newer, since answers may arrive out of order. */
void agent_offer(agent *a, wire_version *v, bool authoritative);

/* Pushes every pending sample (or a heartbeat when none), in batches,
 * before the monotonic deadline. Returns 0 when all went through. */
int agent_push(agent *a, int64_t deadline_mono_ms);

void *push_thread(void *arg);
void *poll_thread(void *arg);
void *apply_thread(void *arg);

#endif
