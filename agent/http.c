/*
 * http.c — libcurl calls. See http.h.
 */
#include "agent/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

static char *g_ca_file;             /* NULL: libcurl's default bundle */
static char *g_auth_header;         /* "Authorization: Bearer ...", or NULL */

int http_global_init(const char *ca_file, const char *token)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -EIO;
    if (ca_file && !(g_ca_file = strdup(ca_file)))
        return -ENOMEM;
    if (token && *token) {
        static const char pre[] = "Authorization: Bearer ";
        size_t n = sizeof pre + strlen(token);
        g_auth_header = malloc(n);
        if (!g_auth_header)
            return -ENOMEM;
        snprintf(g_auth_header, n, "%s%s", pre, token);
    }
    return 0;
}

typedef struct sink {
    http_resp *r;
    size_t cap;
    int too_big;
} sink;

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    sink *s = ud;
    size_t len = size * n;
    if (s->r->len + len > HTTP_MAX_BODY) {
        s->too_big = 1;
        return 0; /* aborts the transfer */
    }
    if (s->r->len + len + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap < s->r->len + len + 1)
            cap *= 2;
        char *bigger = realloc(s->r->body, cap);
        if (!bigger)
            return 0;
        s->r->body = bigger;
        s->cap = cap;
    }
    memcpy(s->r->body + s->r->len, data, len);
    s->r->len += len;
    s->r->body[s->r->len] = '\0';
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    sink *s = ud;
    size_t len = size * n;
    static const char name[] = "X-Gotuned-Index:";
    if (len > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        char buf[32];
        size_t vlen = len - (sizeof name - 1);
        if (vlen >= sizeof buf)
            vlen = sizeof buf - 1;
        memcpy(buf, data + sizeof name - 1, vlen);
        buf[vlen] = '\0';
        char *end;
        long long v = strtoll(buf, &end, 10);
        if (end != buf && v >= 0)
            s->r->index = v;
    }
    return len;
}

int http_call(const char *method, const char *url, const char *body,
              size_t len, long timeout_ms, http_resp *out, char *err,
              size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->index = -1;
    sink s = { .r = out };
    struct curl_slist *hdrs = NULL;
    int rc = 0;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errlen, "curl_easy_init failed");
        return -ENOMEM;
    }
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     timeout_ms < 5000 ? timeout_ms : 5000L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &s);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "gotuned-agent");
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    /* libcurl's defaults, said out loud: the certificate chain and the
     * host name are always checked. */
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (g_ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, g_ca_file);
    if (g_auth_header)
        hdrs = curl_slist_append(hdrs, g_auth_header);
    if (strcmp(method, "POST") == 0) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        /* Without this curl waits a second for "100 Continue" on big bodies. */
        hdrs = curl_slist_append(hdrs, "Expect:");
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(body ? len : 0));
    }
    if (hdrs)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        rc = s.too_big ? -EFBIG
             : cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
             : cc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EIO;
        const char *why = cerr[0] ? cerr : curl_easy_strerror(cc);
        if (s.too_big)
            snprintf(err, errlen, "answer too large");
        else if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE)
            /* Said plainly: GnuTLS's own words do not mention --ca. */
            snprintf(err, errlen, "TLS: the server's certificate was not verified (%s); %s",
                     why, g_ca_file ? "is --ca the CA that signed it?"
                                    : "pass the CA that signed it with --ca");
        else
            snprintf(err, errlen, "%s", why);
        http_resp_cleanup(out);
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
        if (!out->body) {
            out->body = calloc(1, 1);
            if (!out->body) {
                rc = -ENOMEM;
                snprintf(err, errlen, "out of memory");
            }
        }
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return rc;
}

void http_resp_cleanup(http_resp *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}
