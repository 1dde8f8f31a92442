/*
 * events.c — GET /api/v1/events: the append-only audit log, filtered by
 * agent, kind and time, paged by id.
 */
#include <string.h>

#include "api/internal.h"

typedef struct walk {
    json_t *arr;
    int64_t last_id;
} walk;

/* before/after are JSON texts written by this layer; anything else (or a
 * text that no longer parses) is returned as a string rather than lost. */
static json_t *embedded(const char *text)
{
    if (!text)
        return json_null();
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    return j ? j : json_string(text);
}

static int on_event(void *ud, const store_event *ev)
{
    walk *w = ud;
    json_array_append_new(
        w->arr, json_pack("{s:I, s:I, s:s, s:s?, s:s?, s:s, s:o, s:o}", "id", (json_int_t)ev->id,
                          "ts_ms", (json_int_t)ev->ts_ms, "kind", ev->kind, "agent",
                          ev->agent_id[0] ? ev->agent_id : NULL, "service",
                          ev->service[0] ? ev->service : NULL, "actor", ev->actor, "before",
                          embedded(ev->before), "after", embedded(ev->after)));
    w->last_id = ev->id;
    return 0;
}

void h_events(api_call *c)
{
    long long limit, since, after;
    const char *agent = NULL, *kind = NULL;
    if (query_int(c, "limit", 100, 1, 1000, &limit) ||
        query_int(c, "since", 0, 0, 1LL << 52, &since) ||
        query_int(c, "after", 0, 0, 1LL << 62, &after) || query_id(c, "agent", &agent) ||
        query_id(c, "kind", &kind))
        return;
    /* One more than asked tells whether there is a next page. */
    store_event_filter f = { agent, kind, since, after, (size_t)limit + 1 };
    walk w = { json_array(), 0 };
    int rc = store_event_list(c->ctx->store, &f, on_event, &w);
    if (rc) {
        json_decref(w.arr);
        reply_store_error(c, rc, "events");
        return;
    }
    json_t *next = json_null();
    if (json_array_size(w.arr) > (size_t)limit) {
        json_array_remove(w.arr, (size_t)limit);
        json_t *last = json_array_get(w.arr, (size_t)limit - 1);
        next = json_copy(json_object_get(last, "id"));
    }
    reply_json(c, 200, json_pack("{s:o, s:o}", "events", w.arr, "next", next));
}
