/*
 * util/buf.h: a growable byte buffer (git's strbuf, reduced).
 *
 * Invariant: when ptr is not NULL, ptr[len] == '\0', so a buffer holding
 * text can be passed to any C string function. DD_BUF_INIT is a valid empty
 * buffer; dd_buf_release() returns it to that state.
 */
#ifndef DD_UTIL_BUF_H
#define DD_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct dd_buf {
	char *ptr;
	size_t len;
	size_t cap;
};

#define DD_BUF_INIT { NULL, 0, 0 }

/* Make room for at least `extra` more bytes (aborts on out-of-memory). */
void dd_buf_grow(struct dd_buf *b, size_t extra);
void dd_buf_put(struct dd_buf *b, const void *data, size_t len);
void dd_buf_puts(struct dd_buf *b, const char *s);
void dd_buf_putc(struct dd_buf *b, char c);
void dd_buf_printf(struct dd_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void dd_buf_vprintf(struct dd_buf *b, const char *fmt, va_list ap);
void dd_buf_truncate(struct dd_buf *b, size_t len);
/* Empty the buffer but keep its allocation. */
void dd_buf_clear(struct dd_buf *b);
/* Free the allocation (zeroing it first when `secret`). */
void dd_buf_release(struct dd_buf *b);
void dd_buf_release_secret(struct dd_buf *b);
/* Hand the allocation to the caller (never NULL); the buffer becomes empty. */
char *dd_buf_detach(struct dd_buf *b, size_t *len);
/* The contents as a C string ("" when empty). */
const char *dd_buf_cstr(const struct dd_buf *b);

/* Allocation helpers that abort with a message on out-of-memory. */
void *dd_malloc(size_t n);
void *dd_calloc(size_t n, size_t size);
void *dd_realloc(void *p, size_t n);
char *dd_strdup(const char *s);
char *dd_strndup(const char *s, size_t n);
char *dd_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Append `s` to `out` fit for a terminal: control characters, DEL and bytes
 * that are not valid UTF-8 become escapes (\t, \x1b …), as git's
 * core.quotePath does, so text from files, the network or the command line
 * cannot move the cursor or retitle the window. Every message goes through
 * it (errors, hints, log lines); call it directly only to build text that
 * is printed some other way.
 */
void dd_buf_put_printable(struct dd_buf *out, const char *s, size_t len);

#endif
