/*
 * auth.c — the token file and token lookup (see auth.h for the format).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/auth.h"
#include "server/unescape.h"

#define MAX_FIELDS 4
#define SERVICE_MAX 128                 /* as the API's ids: [A-Za-z0-9._-]{1,128} */

static bool in_set(char ch, const char *extra)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr(extra, ch) != NULL);
}

static bool all_in_set(const char *s, size_t n, const char *extra)
{
    for (size_t i = 0; i < n; i++)
        if (!in_set(s[i], extra))
            return false;
    return true;
}

/* A comma-separated list of service names, or "*". */
static bool valid_scope(const char *s)
{
    if (strcmp(s, "*") == 0)
        return true;
    for (;;) {
        size_t n = strcspn(s, ",");
        if (n == 0 || n > SERVICE_MAX || !all_in_set(s, n, "._-"))
            return false;
        if (!s[n])
            return true;
        s += n + 1;
    }
}

static int line_error(char *err, size_t errlen, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int line_error(char *err, size_t errlen, unsigned line, const char *fmt, ...)
{
    int w = snprintf(err, errlen, "line %u: ", line);
    if (w > 0 && (size_t)w < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + w, errlen - (size_t)w, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* Parses one line's fields (NUL-terminated, in place) into *tok. */
static int parse_fields(char **f, size_t nf, unsigned line, auth_token *tok, char *err,
                        size_t errlen)
{
    memset(tok, 0, sizeof *tok);
    tok->line = line;
    if (nf < 3)
        return line_error(err, errlen, line, "wants '<token-or-sha256:hex> <role> <name> "
                          "[service-scope]'; found %zu field%s", nf, nf == 1 ? "" : "s");
    if (nf > MAX_FIELDS)
        return line_error(err, errlen, line, "has more than 4 fields (is there a space in a "
                          "service scope? separate services with commas only)");
    if (strncmp(f[0], "sha256:", 7) == 0) {
        const char *hex = f[0] + 7;
        if (strlen(hex) != 2 * SHA256_LEN)
            return line_error(err, errlen, line, "a sha256: entry wants 64 hex digits; "
                              "found %zu characters", strlen(hex));
        for (size_t i = 0; i < SHA256_LEN; i++) {
            int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return line_error(err, errlen, line, "a sha256: entry wants hex digits only");
            tok->digest[i] = (uint8_t)(hi << 4 | lo);
        }
    } else {
        size_t n = strlen(f[0]);
        if (n < AUTH_TOKEN_MIN || n > AUTH_TOKEN_MAX)
            return line_error(err, errlen, line, "a token must be %d to %d characters long; "
                              "this one has %zu", AUTH_TOKEN_MIN, AUTH_TOKEN_MAX, n);
        if (!all_in_set(f[0], n, "._~+/=-"))
            return line_error(err, errlen, line, "a token may hold only A-Z a-z 0-9 and "
                              "._~+/=- (or write sha256:<hex> of it)");
        sha256(f[0], n, tok->digest);
        memset(f[0], 0, n);
    }
    if (strcmp(f[1], "admin") == 0)
        tok->role = AUTH_ADMIN;
    else if (strcmp(f[1], "agent") == 0)
        tok->role = AUTH_AGENT;
    else if (strcmp(f[1], "viewer") == 0)
        tok->role = AUTH_VIEWER;
    else
        return line_error(err, errlen, line, "unknown role '%.32s': use admin, agent or viewer",
                          f[1]);
    size_t nn = strlen(f[2]);
    if (nn == 0 || nn > AUTH_NAME_MAX || !all_in_set(f[2], nn, "._-"))
        return line_error(err, errlen, line, "a name must match [A-Za-z0-9._-]{1,63}");
    memcpy(tok->name, f[2], nn + 1);
    if (nf == 4) {
        if (tok->role != AUTH_AGENT)
            return line_error(err, errlen, line, "only agent tokens take a service scope; "
                              "this one is %s", auth_role_name(tok->role));
        if (!valid_scope(f[3]))
            return line_error(err, errlen, line, "a service scope is '*' or service names "
                              "([A-Za-z0-9._-]{1,128}) separated by commas");
        if (strcmp(f[3], "*") != 0 && !(tok->scope = strdup(f[3])))
            return -ENOMEM;
    }
    return 0;
}

int auth_parse(const char *text, size_t len, auth_table **out, char *err, size_t errlen)
{
    auth_table *t = calloc(1, sizeof *t);
    char *buf = malloc(len + 1);
    size_t cap = 0;
    int rc = 0;
    *out = NULL;
    if (!t || !buf) {
        rc = -ENOMEM;
        goto fail;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (strlen(buf) != len) {
        snprintf(err, errlen, "holds a NUL byte: is this a text file?");
        rc = -EINVAL;
        goto fail;
    }
    unsigned line = 0;
    for (char *p = buf; *p;) {
        char *eol = strchr(p, '\n');
        char *next = eol ? eol + 1 : p + strlen(p);
        if (eol)
            *eol = '\0';
        line++;
        char *hash = strchr(p, '#');
        if (hash)
            *hash = '\0';
        char *f[MAX_FIELDS + 1];
        size_t nf = 0;
        for (char *s = p; *s;) {
            while (*s == ' ' || *s == '\t' || *s == '\r')
                *s++ = '\0';
            if (!*s)
                break;
            if (nf <= MAX_FIELDS)
                f[nf] = s;
            nf++;
            while (*s && *s != ' ' && *s != '\t' && *s != '\r')
                s++;
        }
        p = next;
        if (nf == 0)
            continue;
        if (t->n == cap) {
            size_t ncap = cap ? 2 * cap : 8;
            auth_token *grown = realloc(t->tokens, ncap * sizeof *grown);
            if (!grown) {
                rc = -ENOMEM;
                goto fail;
            }
            t->tokens = grown;
            cap = ncap;
        }
        auth_token *tok = &t->tokens[t->n];
        rc = parse_fields(f, nf > MAX_FIELDS ? MAX_FIELDS + 1 : nf, line, tok, err, errlen);
        if (rc) {
            free(tok->scope);
            goto fail;
        }
        t->n++;
        for (size_t i = 0; i + 1 < t->n; i++) {
            if (memcmp(t->tokens[i].digest, tok->digest, SHA256_LEN) == 0) {
                rc = line_error(err, errlen, line, "the same token as line %u",
                                t->tokens[i].line);
                goto fail;
            }
            if (strcmp(t->tokens[i].name, tok->name) == 0) {
                rc = line_error(err, errlen, line, "the name '%s' is taken by line %u: "
                                "events tell tokens apart by name", tok->name,
                                t->tokens[i].line);
                goto fail;
            }
        }
    }
    if (t->n == 0) {
        snprintf(err, errlen, "holds no tokens");
        rc = -EINVAL;
        goto fail;
    }
    memset(buf, 0, len);
    free(buf);
    *out = t;
    return 0;
fail:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (buf)
        memset(buf, 0, len);
    free(buf);
    auth_free(t);
    return rc;
}

int auth_load(const char *path, auth_table **out, char *err, size_t errlen)
{
    char why[256];
    char *text = NULL;
    int rc = 0;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "auth file %s: %s", path, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        snprintf(err, errlen, "auth file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        snprintf(err, errlen, "auth file %s is not a regular file", path);
        goto out;
    }
    if (st.st_mode & 0044) {
        rc = -EPERM;
        snprintf(err, errlen, "auth file %s may be read by group or others (mode %04o): "
                 "it holds secrets; run chmod 600 on it", path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (st.st_size > AUTH_FILE_MAX) {
        rc = -EFBIG;
        snprintf(err, errlen, "auth file %s is larger than %d bytes", path, AUTH_FILE_MAX);
        goto out;
    }
    size_t len = 0, cap = (size_t)st.st_size + 1;
    if (!(text = malloc(cap))) {
        rc = -ENOMEM;
        snprintf(err, errlen, "auth file %s: out of memory", path);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, text + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            snprintf(err, errlen, "auth file %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == cap) {
            rc = -EFBIG;
            snprintf(err, errlen, "auth file %s grew while it was read", path);
            goto out;
        }
    }
    rc = auth_parse(text, len, out, why, sizeof why);
    if (rc)
        snprintf(err, errlen, "auth file %s %s", path, why);
out:
    if (text) {
        memset(text, 0, len);
        free(text);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

void auth_free(auth_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->tokens[i].scope);
    free(t->tokens);
    free(t);
}

bool auth_equal(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (uint8_t)(x[i] ^ y[i]);
    return diff == 0;
}

const auth_token *auth_lookup(const auth_table *t, const char *token, size_t len)
{
    uint8_t d[SHA256_LEN];
    const auth_token *found = NULL;
    if (!t || len == 0)
        return NULL;
    sha256(token, len, d);
    /* No early exit: every entry is compared. Tokens are unique (the
     * parser refuses duplicates), so at most one matches. */
    for (size_t i = 0; i < t->n; i++)
        if (auth_equal(d, t->tokens[i].digest, SHA256_LEN))
            found = &t->tokens[i];
    return found;
}

bool auth_in_scope(const auth_token *tok, const char *service)
{
    if (tok->role == AUTH_ADMIN)
        return true;
    if (tok->role != AUTH_AGENT || !service)
        return false;
    if (!tok->scope)
        return true;
    size_t n = strlen(service);
    for (const char *s = tok->scope;;) {
        size_t k = strcspn(s, ",");
        if (k == n && memcmp(s, service, n) == 0)
            return true;
        if (!s[k])
            return false;
        s += k + 1;
    }
}

const char *auth_role_name(auth_role r)
{
    switch (r) {
    case AUTH_ADMIN: return "admin";
    case AUTH_AGENT: return "agent";
    case AUTH_VIEWER: return "viewer";
    }
    return "?";
}
