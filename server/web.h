/*
 * web.h — the static dashboard files compiled into the binary by
 * tools/embed (see the Makefile). The table ends with a NULL path.
 */
#ifndef GOTUNED_WEB_H
#define GOTUNED_WEB_H

#include <stddef.h>

typedef struct web_asset {
    const char *path;           /* "/index.html" */
    const char *content_type;
    const char *etag;           /* "\"<16 hex digits>\"", a hash of the content */
    const unsigned char *data;
    size_t len;
} web_asset;

extern const web_asset web_assets[];

/* Finds the asset for a request path ("/" is "/index.html"); NULL if none.
 * Only exact names match, so no path can reach outside web/. */
const web_asset *web_find(const char *path);

#endif
