/*
 * unescape.h — percent-decoding as gotuned does it for request paths and
 * query keys and values (libmicrohttpd calls url_unescape through its
 * unescape callback), and the hex digit helper it rests on. Pure.
 */
#ifndef GOTUNED_UNESCAPE_H
#define GOTUNED_UNESCAPE_H

#include <stddef.h>

/* The value of one hex digit, or -1. */
int hex_digit(char ch);

/* Decodes %HH in place, except %00, which stays encoded: a NUL would cut
 * the string short (DELETE /api/v1/agents/x%00junk once deleted agent x).
 * Left encoded it fails the id and number checks and matches no route.
 * Returns the new length. */
size_t url_unescape(char *s);

#endif
