/*
 * util/log.h: the only way code below cmd/ talks to the terminal.
 *
 * Everything goes to stderr so stdout stays clean for data (--json, ids).
 * Verbosity is process-wide: -q shows only warnings and errors, -v adds
 * detail. Never pass a secret to these functions.
 */
#ifndef DD_UTIL_LOG_H
#define DD_UTIL_LOG_H

#include <stddef.h>

enum dd_verbosity { DD_QUIET = 0, DD_NORMAL = 1, DD_VERBOSE = 2 };

void dd_log_set_verbosity(enum dd_verbosity v);
enum dd_verbosity dd_log_verbosity(void);
/* Informational progress ("snapshot abc123 written"): hidden by -q. */
void dd_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Detail shown only with -v. */
void dd_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "warning: ..." always shown. */
void dd_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* printf to stdout for human-readable reports (status): newlines kept, other controls escaped. */
void dd_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "<prefix><text>" on stderr whatever the verbosity (main's error: and hint: lines). */
void dd_log_line(const char *prefix, const char *text);

/*
 * A progress line on stderr, redrawn in place; only when stderr is a
 * terminal and verbosity is not quiet. dd_progress_done() ends the line.
 */
void dd_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void dd_progress_done(void);
int dd_progress_enabled(void);
/* "12 B", "3.4 MiB" ... for progress lines and summaries. */
void dd_format_bytes(char *buf, size_t len, double bytes);

#endif
