/*
 * opts.h — gotuned-agent's command line. Pure: no I/O; main prints the
 * message and exits 2 on an error.
 *
 * Errors: opts_parse returns 0, or -EINVAL with a one-line message in err.
 */
#ifndef GOTUNED_AGENT_OPTS_H
#define GOTUNED_AGENT_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum apply_mode {
    APPLY_RESTART = 0,  /* restart the child with the new GOMAXPROCS */
    APPLY_FILE,         /* hand the config to the Go library via a file */
    APPLY_NONE          /* observe only: never apply, never ACK */
} apply_mode;

#define OPTS_ID_MAX 128

typedef struct agent_opts {
    char server[1024];          /* base URL without a trailing '/' */
    const char *service;
    char id[OPTS_ID_MAX + 1];
    apply_mode apply;
    const char *config_file;    /* --apply file only */
    const char *ca_file;        /* --ca: PEM bundle for https; NULL: the system's */
    const char *token_file;     /* --token-file; NULL: GOTUNED_TOKEN, if set */
    int64_t interval_ms;        /* between pushes */
    int64_t grace_ms;           /* SIGTERM to SIGKILL on a restart */
    int64_t ack_timeout_ms;     /* --apply file: wait for the ack file */
    size_t backlog;             /* samples kept while the server is down */
    int schedtrace_ms;
    char **child_argv;          /* points into argv; NULL-terminated */
    bool help, version;
} agent_opts;

int opts_parse(int argc, char **argv, const char *hostname, agent_opts *o,
               char *err, size_t errlen);

/* "10s", "500ms", "5m", "1m30s" or a plain number of seconds. */
int opts_duration_ms(const char *s, int64_t *out);

/* True for [A-Za-z0-9._-]{1,128}. */
bool opts_valid_id(const char *s);

/* "<host>-<service>" with every other byte turned into '-', cut to 128. */
void opts_default_id(const char *host, const char *service, char *out,
                     size_t cap);

/* The usage text for --help. */
extern const char opts_usage[];

#endif
