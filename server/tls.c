/*
 * tls.c — reading --tls-cert and --tls-key. See tls.h.
 */
#include "server/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads all of fd (at most TLS_PEM_MAX bytes) into a NUL-terminated buffer. */
static int read_all(int fd, char **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > TLS_PEM_MAX) {
                free(buf);
                return -EFBIG;
            }
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                return -ENOMEM;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > TLS_PEM_MAX) {
        free(buf);
        return -EFBIG;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int tls_read_pem(const char *flag, const char *path, tls_pem_kind kind, char **out,
                 char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            snprintf(err, errlen, "%s %s: no such file", flag, path);
        else if (e == EACCES)
            snprintf(err, errlen, "%s %s: not readable by this user (permission denied)",
                     flag, path);
        else
            snprintf(err, errlen, "%s %s: %s", flag, path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "%s %s: not a regular file", flag, path);
        return -EINVAL;
    }
    if (kind == TLS_PEM_KEY && (st.st_mode & 0044)) {
        close(fd);
        snprintf(err, errlen, "%s %s: the private key is readable by %s (mode %04o); "
                 "make it readable by its owner only, e.g. chmod 600 %s",
                 flag, path, (st.st_mode & 0004) ? "everyone" : "its group",
                 (unsigned)(st.st_mode & 07777), path);
        return -EPERM;
    }
    char *pem = NULL;
    size_t len = 0;
    int rc = read_all(fd, &pem, &len);
    close(fd);
    if (rc == -EFBIG) {
        snprintf(err, errlen, "%s %s: larger than %d bytes; not a PEM file", flag, path,
                 TLS_PEM_MAX);
        return rc;
    }
    if (rc) {
        snprintf(err, errlen, "%s %s: %s", flag, path, strerror(-rc));
        return rc;
    }
    const char *why = NULL;
    if (strlen(pem) != len)
        why = "it holds NUL bytes";
    else if (kind == TLS_PEM_CERT && !strstr(pem, "-----BEGIN CERTIFICATE-----"))
        why = "no \"-----BEGIN CERTIFICATE-----\" block";
    else if (kind == TLS_PEM_KEY && strstr(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----"))
        why = "the key is encrypted; gotuned takes an unencrypted key (keep it mode 0600)";
    else if (kind == TLS_PEM_KEY && strstr(pem, "Proc-Type: 4,ENCRYPTED"))
        why = "the key is encrypted; gotuned takes an unencrypted key (keep it mode 0600)";
    else if (kind == TLS_PEM_KEY && !(strstr(pem, "-----BEGIN ") && strstr(pem, "PRIVATE KEY-----")))
        why = "no \"-----BEGIN ... PRIVATE KEY-----\" block";
    if (why) {
        tls_free_pem(pem);
        snprintf(err, errlen, "%s %s: not a PEM %s: %s", flag, path,
                 kind == TLS_PEM_CERT ? "certificate" : "private key", why);
        return -EINVAL;
    }
    *out = pem;
    return 0;
}

void tls_free_pem(char *pem)
{
    if (!pem)
        return;
    explicit_bzero(pem, strlen(pem));
    free(pem);
}
