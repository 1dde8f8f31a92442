/*
 * log.h — one line per event to stderr, with a UTC timestamp. Safe from any
 * thread (each line is one write).
 */
#ifndef GOTUNED_LOG_H
#define GOTUNED_LOG_H

void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
