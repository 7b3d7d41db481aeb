/*
 * util/err.h: the per-thread last error, libgit2 style.
 *
 * Functions below cmd/ return 0 on success and -1 on failure after recording
 * why with dd_error(). Callers add context as the error rises with
 * dd_error_wrap() ("restoring profile x: " + reason). Only main() prints it,
 * as "error: <message>" followed by an optional "hint: <hint>" line.
 * Messages are one line: newlines in formatted arguments are replaced.
 */
#ifndef DD_UTIL_ERR_H
#define DD_UTIL_ERR_H

#include <stdarg.h>

/* Exit codes, documented in the README. */
enum {
	DD_EXIT_OK = 0,
	DD_EXIT_FAILURE = 1,
	DD_EXIT_USAGE = 2,
};

/* Returned by command functions to mean "usage error, exit 2". */
#define DD_USAGE_ERROR (-2)

/* Record a new error (replacing any earlier one and its hint); returns -1. */
int dd_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same with the text of errno appended as ": strerror(errno)". */
int dd_error_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefix the current error with context ("context: old message"); returns -1. */
int dd_error_wrap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Attach a hint (what to run to fix it) to the current error. */
void dd_hint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The current error message, or NULL; the hint, or NULL. */
const char *dd_error_last(void);
const char *dd_error_hint(void);
void dd_error_clear(void);

/* Record the error libgit2 reports for its last failed call; returns -1. */
int dd_error_git(const char *what);

#endif
