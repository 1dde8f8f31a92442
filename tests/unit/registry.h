/*
 * registry.h — the one list of unit-test groups. Each tests/unit/test_X.c
 * defines `int test_X(void)`, which runs its cmocka group and returns the
 * number of failures; add a line here for a new file.
 *
 * Test data lives under tests/data/; groups find it through
 * unit_data_path().
 */
#ifndef GOTUNED_TEST_REGISTRY_H
#define GOTUNED_TEST_REGISTRY_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define UNIT_GROUPS(X) \
    X(schedtrace)      \
    X(rules)           \
    X(policy)          \
    X(store)           \
    X(cg)              \
    X(decode)          \
    X(jdoc)            \
    X(wait)            \
    X(agent)           \
    X(auth)            \
    X(metrics)

#define X(name) int test_##name(void);
UNIT_GROUPS(X)
#undef X

/* Returns "<tests/data>/rel" in a static buffer. The data folder is
 * tests/data relative to the working directory unless GOTUNED_TEST_DATA
 * names another. */
const char *unit_data_path(const char *rel);

/* Reads a whole file into a malloc'd, NUL-terminated buffer; NULL on error. */
char *unit_read_file(const char *path, size_t *len);

#endif
