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

/*
 * Named results, libgit2 style (GIT_ENOTFOUND…): each value means one thing
 * everywhere. Negative = failure (the reason is recorded with dd_error()),
 * 0 = done, positive = success of a kind the caller may want to tell apart.
 * A function documents which of them it returns.
 */
enum dd_result {
	DD_OK = 0,
	DD_ERROR = -1,       /* failed; dd_error_last() says why */
	DD_EUSAGE = -2,      /* a command's usage error: exit 2 (command functions only) */
	DD_EHOOK = -3,       /* the work is done, but a configured hook command failed */
	DD_EHELP = -4,       /* the option parser printed help: the command stops, exit 0 */
	DD_EUNREACHABLE = -5, /* a remote store could not be reached (after retries): try again later */
	DD_EBUSY = -6,       /* another process holds a lock we were told not to wait for: try again later */
	DD_EDIFFERS = -7,    /* `diff --exit-code` found differences: exit 1, no error line (command functions only) */
	DD_EFOUND = -8,      /* a check found what it looks for (pii-check: uncovered columns): exit 1, no error line
			      * (command functions only) */
	DD_NOTFOUND = 1,     /* what was looked up does not exist (e.g. no ref file yet) */
	DD_UNCHANGED = 2,    /* nothing changed: same snapshot id, nothing written */
	DD_EXISTS = 3,       /* already there (object stored, repository initialised) */
	DD_NOTHING_TO_DO = 4 /* the target state holds already; nothing was done */
};

/* Returned by command functions to mean "usage error, exit 2". */
#define DD_USAGE_ERROR DD_EUSAGE

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

/*
 * Keep the current error while cleaning up (cleanup may record errors of
 * its own), then put it back:
 *
 *	struct dd_error_saved saved;
 *	dd_error_save(&saved);
 *	drop_partial_copy(...);          (may call dd_error)
 *	dd_error_restore(&saved);        (frees what save took; returns -1)
 *
 * The saved error keeps its hint. dd_error_saved_free() discards instead.
 */
struct dd_error_saved {
	char *msg;
	char *hint;
};
void dd_error_save(struct dd_error_saved *s);
int dd_error_restore(struct dd_error_saved *s);
void dd_error_saved_free(struct dd_error_saved *s);

#endif
