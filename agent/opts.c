/*
 * opts.c — command-line parsing. See opts.h.
 */
#include "agent/opts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char opts_usage[] =
"usage: gotuned-agent --server URL --service NAME [options] -- PROGRAM [ARGS...]\n"
"\n"
"Runs PROGRAM (a Go program) with GODEBUG=schedtrace, passes its stderr\n"
"through untouched, pushes scheduler samples and CPU facts to the gotuned\n"
"server, and applies the config the server holds for this agent.\n"
"\n"
"  --server URL        the gotuned server, e.g. http://127.0.0.1:8080 (required)\n"
"  --service NAME      the service this program is ([A-Za-z0-9._-]{1,128}, required)\n"
"  --id ID             the agent id (default: <hostname>-<service>, sanitized)\n"
"  --apply MODE        how a new config version is applied:\n"
"                        restart  restart PROGRAM with the new GOMAXPROCS (default);\n"
"                                 ACK once its first SCHED line shows the value\n"
"                        file     write it to --config-file for the Go library and\n"
"                                 forward the library's ack file as ACK/NACK\n"
"                        none     observe only: report samples, apply nothing and\n"
"                                 ACK nothing (each new version is logged once)\n"
"  --config-file PATH  where --apply file writes the config\n"
"  --ca PATH           PEM bundle of the CA(s) that verify an https --server\n"
"                      (default: the system's); verification is never off\n"
"  --token-file PATH   bearer token for the server: the file's first line; the\n"
"                      file must be readable by its owner only (chmod 600).\n"
"                      Without it the GOTUNED_TOKEN environment variable is\n"
"                      used. There is no --token flag: command lines are\n"
"                      visible to every user of the machine (ps)\n"
"  --interval DUR      time between pushes (default 10s)\n"
"  --backlog N         samples kept while the server is unreachable, oldest\n"
"                      dropped first (default 8640)\n"
"  --grace DUR         on a restart, SIGTERM to SIGKILL (default 10s)\n"
"  --ack-timeout DUR   --apply file: wait this long for the ack file (default 30s)\n"
"  --schedtrace MS     GODEBUG=schedtrace period in ms (default 1000)\n"
"  --help, --version\n"
"\n"
"DUR is 10s, 500ms, 5m, 1m30s or a number of seconds. The agent exits with\n"
"PROGRAM's exit status (128+N when a signal N killed it), 2 on bad flags,\n"
"127 when PROGRAM cannot be started. See docs/agent.md.\n";

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int opts_duration_ms(const char *s, int64_t *out)
{
    if (!s || !*s)
        return -EINVAL;
    int64_t total = 0;
    const char *p = s;
    bool any_unit = false;
    while (*p) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        int64_t v = 0;
        while (*p >= '0' && *p <= '9') {
            if (v > 1000000000LL)
                return -EINVAL;
            v = v * 10 + (*p++ - '0');
        }
        int64_t mult;
        if (*p == '\0' && !any_unit)
            mult = 1000;        /* a plain number: seconds */
        else if (strncmp(p, "ms", 2) == 0) {
            mult = 1;
            p += 2;
        } else if (*p == 's') {
            mult = 1000;
            p++;
        } else if (*p == 'm') {
            mult = 60000;
            p++;
        } else if (*p == 'h') {
            mult = 3600000;
            p++;
        } else {
            return -EINVAL;
        }
        any_unit = true;
        total += v * mult;
        if (total > 1000000000000LL)
            return -EINVAL;
    }
    *out = total;
    return 0;
}

bool opts_valid_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > OPTS_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

void opts_default_id(const char *host, const char *service, char *out,
                     size_t cap)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s-%s", host && *host ? host : "host", service);
    size_t n = strlen(tmp);
    if (n > OPTS_ID_MAX)
        n = OPTS_ID_MAX;
    if (n > cap - 1)
        n = cap - 1;
    for (size_t i = 0; i < n; i++) {
        char c = tmp[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        out[i] = ok ? c : '-';
    }
    out[n] = '\0';
}

static int positive_ms(const char *flag, const char *v, int64_t *out,
                       char *err, size_t errlen)
{
    if (opts_duration_ms(v, out) < 0 || *out <= 0)
        return fail(err, errlen, "%s: \"%s\" is not a positive duration "
                    "(10s, 500ms, 5m)", flag, v);
    return 0;
}

int opts_parse(int argc, char **argv, const char *hostname, agent_opts *o,
               char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->apply = APPLY_RESTART;
    o->interval_ms = 10000;
    o->grace_ms = 10000;
    o->ack_timeout_ms = 30000;
    o->backlog = 8640;
    o->schedtrace_ms = 1000;
    const char *server = NULL, *id = NULL;

    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            o->help = true;
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            o->version = true;
            return 0;
        }
        if (strncmp(a, "--", 2) != 0)
            return fail(err, errlen, "unexpected \"%s\": put the program after "
                        "\"--\"", a);
        /* --flag=value or --flag value */
        char name[64];
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        if (nlen >= sizeof name)
            return fail(err, errlen, "unknown flag %.40s", a);
        memcpy(name, a, nlen);
        name[nlen] = '\0';
        static const char *const known[] = {
            "--server", "--service", "--id", "--apply", "--config-file",
            "--interval", "--backlog", "--grace", "--ack-timeout",
            "--schedtrace", "--ca", "--token-file", NULL };
        bool ok = false;
        for (size_t k = 0; known[k]; k++)
            ok |= strcmp(name, known[k]) == 0;
        if (!ok)
            return fail(err, errlen, "unknown flag %s", name);
        const char *v;
        if (eq)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else
            return fail(err, errlen, "%s needs a value", name);

        if (strcmp(name, "--server") == 0) {
            server = v;
        } else if (strcmp(name, "--service") == 0) {
            o->service = v;
        } else if (strcmp(name, "--id") == 0) {
            id = v;
        } else if (strcmp(name, "--apply") == 0) {
            if (strcmp(v, "restart") == 0)
                o->apply = APPLY_RESTART;
            else if (strcmp(v, "file") == 0)
                o->apply = APPLY_FILE;
            else if (strcmp(v, "none") == 0)
                o->apply = APPLY_NONE;
            else
                return fail(err, errlen, "--apply: \"%s\" is not restart, "
                            "file or none", v);
        } else if (strcmp(name, "--config-file") == 0) {
            if (!*v)
                return fail(err, errlen, "--config-file: empty path");
            o->config_file = v;
        } else if (strcmp(name, "--ca") == 0) {
            if (!*v)
                return fail(err, errlen, "--ca: empty path");
            o->ca_file = v;
        } else if (strcmp(name, "--token-file") == 0) {
            if (!*v)
                return fail(err, errlen, "--token-file: empty path");
            o->token_file = v;
        } else if (strcmp(name, "--interval") == 0) {
            if (positive_ms(name, v, &o->interval_ms, err, errlen))
                return -EINVAL;
        } else if (strcmp(name, "--grace") == 0) {
            if (positive_ms(name, v, &o->grace_ms, err, errlen))
                return -EINVAL;
        } else if (strcmp(name, "--ack-timeout") == 0) {
            if (positive_ms(name, v, &o->ack_timeout_ms, err, errlen))
                return -EINVAL;
        } else if (strcmp(name, "--backlog") == 0) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-' || n < 1 ||
                n > 10000000)
                return fail(err, errlen, "--backlog: \"%s\" is not a number "
                            "from 1 to 10000000", v);
            o->backlog = (size_t)n;
        } else if (strcmp(name, "--schedtrace") == 0) {
            char *end;
            errno = 0;
            long n = strtol(v, &end, 10);
            if (errno || end == v || *end || n < 1 || n > 3600000)
                return fail(err, errlen, "--schedtrace: \"%s\" is not a "
                            "number of ms from 1 to 3600000", v);
            o->schedtrace_ms = (int)n;
        }
    }

    if (!server || !*server)
        return fail(err, errlen, "--server is required");
    if (strncmp(server, "http://", 7) != 0 && strncmp(server, "https://", 8) != 0)
        return fail(err, errlen, "--server: \"%s\" is not an http:// or "
                    "https:// URL", server);
    size_t sl = strlen(server);
    while (sl > 0 && server[sl - 1] == '/')
        sl--;
    if (sl >= sizeof o->server)
        return fail(err, errlen, "--server: URL too long");
    memcpy(o->server, server, sl);
    o->server[sl] = '\0';
    if (!o->service)
        return fail(err, errlen, "--service is required");
    if (!opts_valid_id(o->service))
        return fail(err, errlen, "--service: \"%s\" does not match "
                    "[A-Za-z0-9._-]{1,128}", o->service);
    if (id) {
        if (!opts_valid_id(id))
            return fail(err, errlen, "--id: \"%s\" does not match "
                        "[A-Za-z0-9._-]{1,128}", id);
        snprintf(o->id, sizeof o->id, "%s", id);
    } else {
        opts_default_id(hostname, o->service, o->id, sizeof o->id);
    }
    if (o->ca_file && strncmp(o->server, "https://", 8) != 0)
        return fail(err, errlen, "--ca is for an https:// --server; got \"%s\"",
                    o->server);
    if (o->apply == APPLY_FILE && !o->config_file)
        return fail(err, errlen, "--apply file needs --config-file");
    if (o->apply != APPLY_FILE && o->config_file)
        return fail(err, errlen, "--config-file is only for --apply file");
    if (i >= argc)
        return fail(err, errlen, "no program: put it after \"--\"");
    o->child_argv = argv + i;
    return 0;
}
