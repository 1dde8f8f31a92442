/*
 * router.c — matches a request to its route and method, answers 404 and
 * 405 (with Allow), and serves health checks and the compiled-in dashboard.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/internal.h"
#include "server/web.h"

enum { M_GET, M_PUT, M_POST, M_DELETE, M_COUNT };
static const char *const method_names[M_COUNT] = { "GET", "PUT", "POST", "DELETE" };

typedef void (*handler)(api_call *c);

static void h_healthz(api_call *c)
{
    reply_json(c, 200, json_pack("{s:s}", "status", "ok"));
}

static void h_readyz(api_call *c)
{
    if (store_ping(c->ctx->store) == 0)
        reply_json(c, 200, json_pack("{s:s}", "status", "ready"));
    else
        reply_error(c, 503, "unavailable", NULL, "the store is not answering");
}

/*
 * What a route needs when access control is on (gotuned --auth-file):
 *   PUBLIC  no token (health checks; the dashboard's files are public too)
 *   READ    any known token: viewer, agent or admin — but an agent token
 *           only reaches NEED_AGENT routes, see permits()
 *   AGENT   an agent token (within its service scope, checked by the
 *           handler once the service is known), a viewer for a GET, admin
 *   ADMIN   an admin token
 */
enum need { NEED_PUBLIC, NEED_READ, NEED_AGENT, NEED_ADMIN };

typedef struct op {
    handler h;
    enum need need;
} op;

#define READ(fn) { fn, NEED_READ }
#define AGENT(fn) { fn, NEED_AGENT }
#define ADMIN(fn) { fn, NEED_ADMIN }
#define PUBLIC(fn) { fn, NEED_PUBLIC }

/* A pattern segment "{x}" matches any one non-empty segment. */
static const struct route {
    const char *pattern;
    op m[M_COUNT];
} routes[] = {
    { "/api/v1/telemetry", { [M_POST] = AGENT(h_telemetry) } },
    { "/api/v1/agents", { [M_GET] = READ(h_agents_list) } },
    { "/api/v1/agents/{id}", { [M_GET] = READ(h_agent_get), [M_DELETE] = ADMIN(h_agent_delete) } },
    { "/api/v1/agents/{id}/samples", { [M_GET] = READ(h_agent_samples) } },
    { "/api/v1/agents/{id}/recommendation", { [M_GET] = READ(h_agent_recommendation) } },
    { "/api/v1/agents/{id}/config", { [M_GET] = AGENT(h_agent_config) } },
    { "/api/v1/agents/{id}/versions", { [M_GET] = READ(h_agent_versions) } },
    { "/api/v1/agents/{id}/mode", { [M_PUT] = ADMIN(h_agent_mode) } },
    { "/api/v1/agents/{id}/override", { [M_PUT] = ADMIN(h_agent_override) } },
    { "/api/v1/agents/{id}/apply", { [M_POST] = ADMIN(h_agent_apply) } },
    { "/api/v1/agents/{id}/rollback", { [M_POST] = ADMIN(h_agent_rollback) } },
    { "/api/v1/agents/{id}/ack", { [M_POST] = AGENT(h_agent_ack) } },
    { "/api/v1/policy", { [M_GET] = READ(h_policy_get), [M_PUT] = ADMIN(h_policy_put) } },
    { "/api/v1/services/{name}/policy",
      { [M_GET] = READ(h_service_policy_get), [M_PUT] = ADMIN(h_service_policy_put),
        [M_DELETE] = ADMIN(h_service_policy_delete) } },
    { "/api/v1/events", { [M_GET] = READ(h_events) } },
    { "/healthz", { [M_GET] = PUBLIC(h_healthz) } },
    { "/readyz", { [M_GET] = READ(h_readyz) } },
    { "/metrics", { [M_GET] = READ(h_metrics) } },
};

#define NROUTES (sizeof routes / sizeof routes[0])
/* Metrics labels after the table's routes (api_route_label). */
enum { ROUTE_STATIC = NROUTES, ROUTE_OTHER, ROUTE_COUNT };

/* Matches path against pattern; on success copies the {param} segment (if
 * any) into param. */
static bool match(const char *pattern, const char *path, char *param, size_t len)
{
    param[0] = '\0';
    while (*pattern && *path) {
        if (*pattern == '{') {
            const char *pe = strchr(pattern, '}');
            const char *se = strchr(path, '/');
            size_t n = se ? (size_t)(se - path) : strlen(path);
            if (!pe || n == 0 || n >= len)
                return false;
            memcpy(param, path, n);
            param[n] = '\0';
            pattern = pe + 1;
            path += n;
            continue;
        }
        if (*pattern++ != *path++)
            return false;
    }
    return *pattern == '\0' && *path == '\0';
}

static int method_index(const char *m)
{
    if (strcmp(m, "HEAD") == 0)
        return M_GET;
    for (int i = 0; i < M_COUNT; i++)
        if (strcmp(m, method_names[i]) == 0)
            return i;
    return -1;
}

static void set_allow(api_response *r, const op *h)
{
    size_t used = 0;
    r->allow[0] = '\0';
    for (int i = 0; i < M_COUNT; i++) {
        if (!h[i].h)
            continue;
        int w = snprintf(r->allow + used, sizeof r->allow - used, "%s%s", used ? ", " : "",
                         method_names[i]);
        if (w > 0)
            used += (size_t)w;
    }
}

/* True when the If-None-Match header lists etag (or is "*"). */
bool etag_matches(api_call *c, const char *etag)
{
    const char *inm = c->req->header(c->req->conn, "If-None-Match");
    if (!inm)
        return false;
    if (strcmp(inm, "*") == 0)
        return true;
    size_t n = strlen(etag);
    for (const char *p = inm; (p = strstr(p, etag)) != NULL; p += n) {
        bool start = p == inm || p[-1] == ' ' || p[-1] == ',' || (p - inm >= 2 && p[-1] == '/' && p[-2] == 'W');
        bool end = p[n] == '\0' || p[n] == ',' || p[n] == ' ';
        if (start && end)
            return true;
    }
    return false;
}

/* What the dashboard's pages may load and run: their own files only; no
 * inline script or style, no plugins, no framing. */
#define DASHBOARD_CSP "default-src 'self'; script-src 'self'; style-src 'self'; " \
                      "img-src 'self' data:; connect-src 'self'; object-src 'none'; " \
                      "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

static void serve_static(api_call *c, int m)
{
    const web_asset *a = web_find(c->req->path);
    if (!a) {
        reply_error(c, 404, "not_found", NULL, "no such route or file: %s", c->req->path);
        return;
    }
    c->resp->route = ROUTE_STATIC;
    if (m != M_GET) {
        snprintf(c->resp->allow, sizeof c->resp->allow, "GET");
        reply_error(c, 405, "method_not_allowed", NULL, "static files take GET only");
        return;
    }
    /* Revalidated on every use (the files change with the binary), which
     * the ETag makes cheap: a 304 has no body. */
    c->resp->cache_control = "no-cache";
    c->resp->csp = DASHBOARD_CSP;
    snprintf(c->resp->etag, sizeof c->resp->etag, "%s", a->etag);
    if (etag_matches(c, a->etag)) {
        reply_empty(c, 304);
        return;
    }
    c->resp->status = 200;
    c->resp->static_body = a->data;
    c->resp->len = a->len;
    c->resp->content_type = a->content_type;
}

void api_init(void)
{
    json_object_seed(0);
}

/* ------------------------------------------------------------ access */

const char *call_actor(api_call *c, const char *word)
{
    if (!c->who)
        return word;
    snprintf(c->actor, sizeof c->actor, "%s:%s", word, c->who->name);
    return c->actor;
}

int check_scope(api_call *c, const char *service, const char *what)
{
    if (!c->who || c->who->role != AUTH_AGENT || auth_in_scope(c->who, service))
        return 0;
    reply_error(c, 403, "forbidden", NULL, "agent token '%s' is scoped to %s %s; %s is "
                "outside that scope", c->who->name, strchr(c->who->scope, ',') ? "services"
                : "service", c->who->scope, what);
    return -1;
}

static void unauthorized(api_call *c, const char *why)
{
    c->resp->www_authenticate = "Bearer realm=\"gotuned\"";
    reply_error(c, 401, "unauthorized", NULL, "%s", why);
}

/* Finds the caller's token from "Authorization: Bearer <token>": 0, or -1
 * after replying 401. */
static int authenticate(api_call *c)
{
    const char *h = c->req->header(c->req->conn, "Authorization");
    if (!h) {
        unauthorized(c, "this route needs a token: send Authorization: Bearer <token>");
        return -1;
    }
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        unauthorized(c, "only Bearer tokens are accepted: send Authorization: Bearer <token>");
        return -1;
    }
    h += 7;
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    c->who = n && n <= AUTH_TOKEN_MAX ? auth_lookup(c->ctx->auth, h, n) : NULL;
    if (!c->who) {
        unauthorized(c, "the token is not known to this server");
        return -1;
    }
    return 0;
}

/* Whether the caller's role may use an operation that needs need. A viewer
 * reads (every GET); an agent pushes telemetry and reads and ACKs its
 * config (the handlers then check the service scope). */
static bool permits(const auth_token *t, enum need need, int m)
{
    switch (t->role) {
    case AUTH_ADMIN: return true;
    case AUTH_VIEWER: return m == M_GET && need != NEED_ADMIN;
    case AUTH_AGENT: return need == NEED_AGENT;
    }
    return false;
}

static void forbidden(api_call *c, const struct route *r, enum need need, int m)
{
    const char *role = auth_role_name(c->who->role);
    if (c->who->role == AUTH_VIEWER)
        reply_error(c, 403, "forbidden", NULL, "%s token '%s' may only read (GET); %s %s "
                    "needs the admin role", role, c->who->name, method_names[m], r->pattern);
    else
        reply_error(c, 403, "forbidden", NULL, "%s token '%s' may only push telemetry and "
                    "read and acknowledge its agents' config; %s %s needs the %s role", role,
                    c->who->name, method_names[m], r->pattern,
                    need == NEED_ADMIN ? "admin" : "viewer or admin");
}

/* True when every method of r is public (no token to check for a 405). */
static bool all_public(const struct route *r)
{
    for (int i = 0; i < M_COUNT; i++)
        if (r->m[i].h && r->m[i].need != NEED_PUBLIC)
            return false;
    return true;
}

void api_handle(api_ctx *ctx, const api_request *req, api_response *resp)
{
    char param[STORE_ID_MAX + 2];
    api_call c = { .ctx = ctx, .req = req, .resp = resp };
    memset(resp, 0, sizeof *resp);
    resp->index = -1;
    resp->route = ROUTE_OTHER;
    int m = method_index(req->method);
    for (size_t i = 0; i < NROUTES; i++) {
        const struct route *r = &routes[i];
        if (!match(r->pattern, req->path, param, sizeof param))
            continue;
        resp->route = i;
        const op *o = m >= 0 && r->m[m].h ? &r->m[m] : NULL;
        /* With access control on, only a known token learns more than
         * that the route exists: the 405 comes after the 401. */
        bool open = o ? o->need == NEED_PUBLIC : all_public(r);
        if (ctx->auth && !open && authenticate(&c))
            return;
        if (!o) {
            set_allow(resp, r->m);
            reply_error(&c, 405, "method_not_allowed", NULL, "%s takes %s", r->pattern,
                        resp->allow);
            return;
        }
        if (c.who && !permits(c.who, o->need, m)) {
            forbidden(&c, r, o->need, m);
            return;
        }
        c.param = param[0] ? param : NULL;
        o->h(&c);
        return;
    }
    if (strncmp(req->path, "/api/", 5) == 0) {
        if (ctx->auth && authenticate(&c))
            return;
        reply_error(&c, 404, "not_found", NULL, "no such route: %s %s", req->method, req->path);
    } else {
        serve_static(&c, m);
    }
}

size_t api_route_count(void)
{
    return ROUTE_COUNT;
}

const char *api_route_label(size_t i)
{
    if (i < NROUTES)
        return routes[i].pattern;
    return i == ROUTE_STATIC ? "static" : "other";
}

size_t api_route_of(const char *path)
{
    char param[STORE_ID_MAX + 2];
    for (size_t i = 0; i < NROUTES; i++)
        if (match(routes[i].pattern, path, param, sizeof param))
            return i;
    return strncmp(path, "/api/", 5) != 0 && web_find(path) ? ROUTE_STATIC : ROUTE_OTHER;
}

void api_each_route(void (*cb)(void *ud, const char *method, const char *path), void *ud)
{
    for (size_t i = 0; i < NROUTES; i++)
        for (int m = 0; m < M_COUNT; m++)
            if (routes[i].m[m].h)
                cb(ud, method_names[m], routes[i].pattern);
    cb(ud, "GET", "/");
}
