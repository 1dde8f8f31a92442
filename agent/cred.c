/*
 * cred.c — the agent's token and CA bundle. See cred.h.
 */
#include "agent/cred.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool cred_token_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < CRED_TOKEN_MIN || n > CRED_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("._~+/=-", c)))
            return false;
    }
    return true;
}

/* Opens path for reading with a message a person can act on. */
static int open_file(const char *flag, const char *path, struct stat *st, char *err,
                     size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s %s: %s", flag, path,
                 e == ENOENT ? "no such file"
                 : e == EACCES ? "not readable by this user (permission denied)"
                 : strerror(e));
        return -e;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        snprintf(err, errlen, "%s %s: not a regular file", flag, path);
        return -EINVAL;
    }
    return fd;
}

/* Reads the start of fd into buf (at most cap - 1 bytes, NUL-terminated),
 * up to the end of the file or, with line, the first newline. Returns the
 * bytes read; a read error ends it like the end of the file. */
static size_t read_head(int fd, char *buf, size_t cap, bool line)
{
    size_t n = 0;
    while (n < cap - 1) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (line && memchr(buf, '\n', n))
            break;
    }
    buf[n] = '\0';
    return n;
}

int cred_token_load(const char *file, const char *env, char *out, size_t cap, char *err,
                    size_t errlen)
{
    out[0] = '\0';
    if (!file) {
        if (!env || !*env)
            return 0;
        if (!cred_token_valid(env)) {
            snprintf(err, errlen, "GOTUNED_TOKEN: not a token (%d to %d characters of "
                     "A-Z a-z 0-9 . _ ~ + / = -)", CRED_TOKEN_MIN, CRED_TOKEN_MAX);
            return -EINVAL;
        }
        snprintf(out, cap, "%s", env);
        return 0;
    }
    struct stat st;
    int fd = open_file("--token-file", file, &st, err, errlen);
    if (fd < 0)
        return fd;
    if (st.st_mode & 0044) {
        close(fd);
        snprintf(err, errlen, "--token-file %s: readable by %s (mode %04o); make it "
                 "readable by its owner only, e.g. chmod 600 %s", file,
                 (st.st_mode & 0004) ? "everyone" : "its group",
                 (unsigned)(st.st_mode & 07777), file);
        return -EPERM;
    }
    char buf[CRED_TOKEN_MAX + 64];
    read_head(fd, buf, sizeof buf, true);
    close(fd);
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    char *s = buf;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        s[--len] = '\0';
    int rc = 0;
    if (!cred_token_valid(s)) {
        snprintf(err, errlen, "--token-file %s: the first line is not a token (%d to %d "
                 "characters of A-Z a-z 0-9 . _ ~ + / = -)", file, CRED_TOKEN_MIN,
                 CRED_TOKEN_MAX);
        rc = -EINVAL;
    } else if (len >= cap) {
        snprintf(err, errlen, "--token-file %s: token too long", file);
        rc = -EINVAL;
    } else {
        memcpy(out, s, len + 1);
    }
    explicit_bzero(buf, sizeof buf);
    return rc;
}

int cred_ca_check(const char *path, char *err, size_t errlen)
{
    struct stat st;
    int fd = open_file("--ca", path, &st, err, errlen);
    if (fd < 0)
        return fd;
    /* A bundle may be large (a system bundle is ~200 KiB); the first
     * certificate is all this check needs. */
    static const char mark[] = "-----BEGIN CERTIFICATE-----";
    char buf[64 * 1024];
    size_t n = read_head(fd, buf, sizeof buf, false);
    close(fd);
    if (!memmem(buf, n, mark, sizeof mark - 1)) {
        snprintf(err, errlen, "--ca %s: not a PEM bundle: no \"%s\" block", path, mark);
        return -EINVAL;
    }
    return 0;
}
