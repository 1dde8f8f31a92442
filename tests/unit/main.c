/*
 * The unit-test runner: runs every group in registry.h, or only the groups
 * named on the command line, and exits non-zero when any test failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/registry.h"

const char *unit_data_path(const char *rel)
{
    static char buf[4096];
    const char *root = getenv("GOTUNED_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/%s", root && *root ? root : "tests/data", rel);
    return buf;
}

char *unit_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n + 1 < cap)
            break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = n;
    }
    return buf;
}

int main(int argc, char **argv)
{
    static const struct { const char *name; int (*run)(void); } groups[] = {
#define X(name) { #name, test_##name },
        UNIT_GROUPS(X)
#undef X
    };
    int failed = 0, ran = 0;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        int wanted = argc < 2;
        for (int a = 1; a < argc; a++)
            wanted |= strcmp(argv[a], groups[i].name) == 0;
        if (!wanted)
            continue;
        ran++;
        failed += groups[i].run();
    }
    if (ran == 0) {
        fprintf(stderr, "no test group matched\n");
        return 2;
    }
    fprintf(stderr, "unit: %d group(s) run, %d failure(s)\n", ran, failed);
    return failed ? 1 : 0;
}
