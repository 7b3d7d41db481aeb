/* util/err.c: per-thread last error and hint; see err.h. */
#include "util/err.h"
#include "util/buf.h"

#include <errno.h>
#include <git2.h>
#include <stdio.h>
#include <string.h>

static _Thread_local struct dd_buf last;
static _Thread_local struct dd_buf hint;
static _Thread_local int have_error;

static void
one_line(struct dd_buf *b)
{
	for (size_t i = 0; i < b->len; i++)
		if (b->ptr[i] == '\n' || b->ptr[i] == '\r')
			b->ptr[i] = ' ';
	while (b->len && b->ptr[b->len - 1] == ' ')
		dd_buf_truncate(b, b->len - 1);
}

static void
set(const char *fmt, va_list ap, const char *suffix)
{
	dd_buf_clear(&last);
	dd_buf_clear(&hint);
	dd_buf_vprintf(&last, fmt, ap);
	if (suffix)
		dd_buf_printf(&last, ": %s", suffix);
	one_line(&last);
	have_error = 1;
}

int
dd_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set(fmt, ap, NULL);
	va_end(ap);
	return -1;
}

int
dd_error_errno(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	set(fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
	return -1;
}

int
dd_error_wrap(const char *fmt, ...)
{
	struct dd_buf b = DD_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	dd_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (have_error) {
		dd_buf_puts(&b, ": ");
		dd_buf_put(&b, last.ptr, last.len);
	}
	one_line(&b);
	dd_buf_clear(&last);
	dd_buf_put(&last, b.ptr, b.len);
	dd_buf_release(&b);
	have_error = 1;
	return -1;
}

void
dd_hint(const char *fmt, ...)
{
	va_list ap;

	dd_buf_clear(&hint);
	va_start(ap, fmt);
	dd_buf_vprintf(&hint, fmt, ap);
	va_end(ap);
	one_line(&hint);
}

const char *
dd_error_last(void)
{
	return have_error ? dd_buf_cstr(&last) : NULL;
}

const char *
dd_error_hint(void)
{
	return hint.len ? hint.ptr : NULL;
}

void
dd_error_clear(void)
{
	dd_buf_clear(&last);
	dd_buf_clear(&hint);
	have_error = 0;
}

int
dd_error_git(const char *what)
{
	const git_error *e = git_error_last();

	return dd_error("%s: %s", what, e && e->message ? e->message : "unknown libgit2 error");
}
