/*
 * web.c — lookup of the compiled-in dashboard files.
 */
#include <string.h>

#include "server/web.h"

const web_asset *web_find(const char *path)
{
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (const web_asset *a = web_assets; a->path; a++)
        if (strcmp(a->path, path) == 0)
            return a;
    return NULL;
}
