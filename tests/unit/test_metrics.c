/*
 * test_metrics.c — server/metrics.c: the sharded counters (exact under
 * concurrent threads), the bucket a duration falls in, bounded labels, and
 * the exposition text: escaping, cumulative buckets, _sum and _count.
 * tests/http/metrics.test.js reads the real server's text with a strict
 * parser; this file checks the writer's lines one by one.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/metrics.h"
#include "tests/unit/registry.h"

static const char *const routes[] = { "/a/{id}", "/b", "odd \"route\"\\\n", "other" };
#define NROUTES (sizeof routes / sizeof routes[0])

/* The rendered text as a NUL-terminated string (the caller frees it). */
static char *render(metrics *m, const metrics_scrape *x)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(metrics_render(m, x, &text, &len), 0);
    assert_non_null(text);
    assert_true(len > 0);
    assert_true(text[len - 1] == '\n');
    char *z = malloc(len + 1);
    assert_non_null(z);
    memcpy(z, text, len);
    z[len] = '\0';
    free(text);
    return z;
}

/* True when text has exactly this whole line. */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

static void assert_line(const char *text, const char *line)
{
    if (!has_line(text, line))
        fail_msg("missing line: %s\n--- text ---\n%s", line, text);
}

static const char *route_label(size_t i)
{
    return routes[i];
}

static metrics *fresh(const char *version)
{
    metrics *m = metrics_new(version, route_label, NROUTES);
    assert_non_null(m);
    return m;
}

static void test_escaping(void **state)
{
    (void)state;
    metrics *m = fresh("1.0 \"quoted\" back\\slash\nnewline");
    metrics_request(m, 2, "GET", 200, 1000, false);
    char *t = render(m, NULL);
    assert_line(t, "gotuned_build_info{version=\"1.0 \\\"quoted\\\" back\\\\slash\\nnewline\"} 1");
    assert_line(t, "gotuned_http_requests_total{route=\"odd \\\"route\\\"\\\\\\n\",method=\"GET\","
                   "code=\"200\"} 1");
    /* Every family has HELP, then TYPE. */
    assert_non_null(strstr(t, "# HELP gotuned_http_requests_total "));
    assert_line(t, "# TYPE gotuned_http_requests_total counter");
    assert_line(t, "# TYPE gotuned_http_request_duration_seconds histogram");
    free(t);
    metrics_free(m);
}

static void test_histogram_lines(void **state)
{
    (void)state;
    metrics *m = fresh("v");
    /* On a bound counts in that bucket (le is "less or equal"). */
    metrics_request(m, 0, "GET", 200, 0, false);
    metrics_request(m, 0, "GET", 200, 500000, false);           /* 0.5 ms */
    metrics_request(m, 0, "GET", 404, 500001, false);
    metrics_request(m, 0, "GET", 200, 20000000000u, false);     /* 20 s: past 10 s */
    metrics_request(m, 0, "GET", 200, 3000000000u, true);       /* held 3 s */
    char *t = render(m, NULL);
    static const char *const want[] = {
        "gotuned_http_requests_total{route=\"/a/{id}\",method=\"GET\",code=\"200\"} 4",
        "gotuned_http_requests_total{route=\"/a/{id}\",method=\"GET\",code=\"404\"} 1",
        "gotuned_http_request_duration_seconds_bucket{route=\"/a/{id}\",method=\"GET\",le=\"0.0005\"} 2",
        "gotuned_http_request_duration_seconds_bucket{route=\"/a/{id}\",method=\"GET\",le=\"0.001\"} 3",
        "gotuned_http_request_duration_seconds_bucket{route=\"/a/{id}\",method=\"GET\",le=\"5\"} 3",
        "gotuned_http_request_duration_seconds_bucket{route=\"/a/{id}\",method=\"GET\",le=\"10\"} 3",
        "gotuned_http_request_duration_seconds_bucket{route=\"/a/{id}\",method=\"GET\",le=\"+Inf\"} 4",
        "gotuned_http_request_duration_seconds_sum{route=\"/a/{id}\",method=\"GET\"} 20.001000001",
        "gotuned_http_request_duration_seconds_count{route=\"/a/{id}\",method=\"GET\"} 4",
        "gotuned_blocking_query_duration_seconds_bucket{le=\"1\"} 0",
        "gotuned_blocking_query_duration_seconds_bucket{le=\"5\"} 1",
        "gotuned_blocking_query_duration_seconds_bucket{le=\"+Inf\"} 1",
        "gotuned_blocking_query_duration_seconds_sum 3",
        "gotuned_blocking_query_duration_seconds_count 1",
        "gotuned_blocking_queries_waiting 0",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_line(t, want[i]);
    /* Series nobody used are left out; route /b had no request. */
    assert_null(strstr(t, "route=\"/b\""));
    free(t);
    metrics_free(m);
}

static void test_bounded_labels(void **state)
{
    (void)state;
    metrics *m = fresh("v");
    metrics_request(m, 1, "PATCH", 299, 1, false);
    metrics_request(m, 1, "BREW", 99999, 1, false);
    metrics_request(m, 1, "HEAD", -5, 1, false);
    metrics_request(m, 1000, "GET", 200, 1, false);     /* past the routes: the last one */
    char *t = render(m, NULL);
    assert_line(t, "gotuned_http_requests_total{route=\"/b\",method=\"other\",code=\"other\"} 2");
    assert_line(t, "gotuned_http_requests_total{route=\"/b\",method=\"HEAD\",code=\"other\"} 1");
    assert_line(t, "gotuned_http_requests_total{route=\"other\",method=\"GET\",code=\"200\"} 1");
    free(t);
    metrics_free(m);
}

static void test_counters_and_scrape(void **state)
{
    (void)state;
    metrics *m = fresh("v");
    metrics_samples(m, METRICS_FORMAT_JSON, 3, 0);
    metrics_samples(m, METRICS_FORMAT_TEXT, 2, 1);
    metrics_samples(m, METRICS_FORMAT_TEXT, 0, 4);
    metrics_samples(m, 7, 100, 100);                    /* no such format: ignored */
    metrics_rollback(m, METRICS_ROLLBACK_VERIFIER);
    metrics_rollback(m, METRICS_ROLLBACK_VERIFIER);
    metrics_rollback(m, -1);
    store_stats st;
    memset(&st, 0, sizeof st);
    static const double bounds[] = { 1, 10 };
    st.batch.bounds = bounds;
    st.batch.nbounds = 2;
    st.batch.counts[0] = 1;
    st.batch.counts[1] = 2;
    st.batch.counts[2] = 3;
    st.batch.sum = 400.5;
    for (int k = 0; k < STORE_COMMIT_NKINDS; k++) {
        st.commit[k].bounds = bounds;
        st.commit[k].nbounds = 2;
    }
    st.versions[STORE_SOURCE_ROLLBACK] = 7;
    st.samples_dropped = 11;
    metrics_scrape x = { .store = &st, .census_ok = true, .agents_dropped = 12.5 };
    x.agents[STORE_MODE_AUTO][1] = 5;
    char *t = render(m, &x);
    static const char *const want[] = {
        "gotuned_telemetry_samples_total{format=\"json\",result=\"accepted\"} 3",
        "gotuned_telemetry_samples_total{format=\"json\",result=\"rejected\"} 0",
        "gotuned_telemetry_samples_total{format=\"text\",result=\"accepted\"} 2",
        "gotuned_telemetry_samples_total{format=\"text\",result=\"rejected\"} 5",
        "gotuned_rollbacks_total{trigger=\"operator\"} 0",
        "gotuned_rollbacks_total{trigger=\"verifier\"} 2",
        "gotuned_store_batch_samples_bucket{le=\"1\"} 1",
        "gotuned_store_batch_samples_bucket{le=\"10\"} 3",
        "gotuned_store_batch_samples_bucket{le=\"+Inf\"} 6",
        "gotuned_store_batch_samples_sum 400.5",
        "gotuned_store_batch_samples_count 6",
        "gotuned_store_commit_duration_seconds_count{kind=\"durable\"} 0",
        "gotuned_store_commit_duration_seconds_bucket{kind=\"batch\",le=\"+Inf\"} 0",
        "gotuned_config_versions_total{source=\"rollback\"} 7",
        "gotuned_config_versions_total{source=\"other\"} 0",
        "gotuned_store_samples_dropped_total 11",
        "gotuned_store_up 1",
        "gotuned_agents{mode=\"auto\",state=\"stale\"} 5",
        "gotuned_agents{mode=\"recommend\",state=\"live\"} 0",
        "gotuned_agent_dropped_samples 12.5",
        "# TYPE process_start_time_seconds gauge",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_line(t, want[i]);
    free(t);

    /* Without a census the agent families are left out, not zero. */
    x.census_ok = false;
    t = render(m, &x);
    assert_line(t, "gotuned_store_up 0");
    assert_null(strstr(t, "gotuned_agents"));
    free(t);
    metrics_free(m);

    /* Without a registry: nothing of its own, the store's still there. */
    metrics_request(NULL, 0, "GET", 200, 1, false);
    metrics_samples(NULL, METRICS_FORMAT_JSON, 1, 1);
    metrics_rollback(NULL, METRICS_ROLLBACK_OPERATOR);
    t = render(NULL, &x);
    assert_null(strstr(t, "gotuned_http_requests_total"));
    assert_null(strstr(t, "process_start_time_seconds"));
    assert_line(t, "gotuned_store_samples_dropped_total 11");
    free(t);
}

/* Threads counting at once lose nothing: more threads than shards, so some
 * share a shard too. */
enum { THREADS = METRICS_SHARDS + 4, PER_THREAD = 20000 };

static void *count_requests(void *arg)
{
    metrics *m = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        metrics_request(m, 1, "POST", 200, 1000, false);
        metrics_samples(m, METRICS_FORMAT_JSON, 2, 0);
    }
    return NULL;
}

static void test_concurrent_counts(void **state)
{
    (void)state;
    metrics *m = fresh("v");
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, count_requests, m), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    char *t = render(m, NULL);
    char line[160];
    snprintf(line, sizeof line,
             "gotuned_http_requests_total{route=\"/b\",method=\"POST\",code=\"200\"} %d",
             THREADS * PER_THREAD);
    assert_line(t, line);
    snprintf(line, sizeof line,
             "gotuned_http_request_duration_seconds_count{route=\"/b\",method=\"POST\"} %d",
             THREADS * PER_THREAD);
    assert_line(t, line);
    snprintf(line, sizeof line,
             "gotuned_telemetry_samples_total{format=\"json\",result=\"accepted\"} %d",
             2 * THREADS * PER_THREAD);
    assert_line(t, line);
    free(t);
    metrics_free(m);
}

int test_metrics(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_histogram_lines),
        cmocka_unit_test(test_bounded_labels),
        cmocka_unit_test(test_counters_and_scrape),
        cmocka_unit_test(test_concurrent_counts),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
