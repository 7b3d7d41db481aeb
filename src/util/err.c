/* util/err.c: per-thread last error and hint; see err.h. */
#include "util/err.h"
#include "util/buf.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Each thread's error lives in a heap block found through a pthread key, so
 * worker threads that record an error and exit free it (a destructor runs at
 * thread exit); _Thread_local alone would leak their buffers.
 */
struct err_state {
	struct dd_buf last;
	struct dd_buf hint;
	int have_error;
};

static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void
free_state(void *p)
{
	struct err_state *st = p;

	dd_buf_release(&st->last);
	dd_buf_release(&st->hint);
	free(st);
}

static void
make_key(void)
{
	if (pthread_key_create(&key, free_state) != 0)
		abort();
}

static struct err_state *
state(void)
{
	struct err_state *st;

	pthread_once(&key_once, make_key);
	st = pthread_getspecific(key);
	if (!st) {
		st = dd_calloc(1, sizeof(*st));
		pthread_setspecific(key, st);
	}
	return st;
}


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
	struct err_state *st = state();

	dd_buf_clear(&st->last);
	dd_buf_clear(&st->hint);
	dd_buf_vprintf(&st->last, fmt, ap);
	if (suffix)
		dd_buf_printf(&st->last, ": %s", suffix);
	one_line(&st->last);
	st->have_error = 1;
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
	struct err_state *st = state();
	struct dd_buf b = DD_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	dd_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (st->have_error) {
		dd_buf_puts(&b, ": ");
		dd_buf_put(&b, st->last.ptr, st->last.len);
	}
	one_line(&b);
	dd_buf_release(&st->last);
	st->last = b;
	st->have_error = 1;
	return -1;
}

void
dd_hint(const char *fmt, ...)
{
	struct err_state *st = state();
	va_list ap;

	dd_buf_clear(&st->hint);
	va_start(ap, fmt);
	dd_buf_vprintf(&st->hint, fmt, ap);
	va_end(ap);
	one_line(&st->hint);
}

const char *
dd_error_last(void)
{
	struct err_state *st = state();

	return st->have_error ? dd_buf_cstr(&st->last) : NULL;
}

const char *
dd_error_hint(void)
{
	struct err_state *st = state();

	return st->hint.len ? st->hint.ptr : NULL;
}

void
dd_error_clear(void)
{
	struct err_state *st = state();

	dd_buf_clear(&st->last);
	dd_buf_clear(&st->hint);
	st->have_error = 0;
}

void
dd_error_save(struct dd_error_saved *s)
{
	const char *msg = dd_error_last(), *hint = dd_error_hint();

	s->msg = msg ? dd_strdup(msg) : NULL;
	s->hint = hint ? dd_strdup(hint) : NULL;
}

int
dd_error_restore(struct dd_error_saved *s)
{
	if (s->msg)
		dd_error("%s", s->msg);
	else
		dd_error_clear();
	if (s->hint)
		dd_hint("%s", s->hint);
	dd_error_saved_free(s);
	return -1;
}

void
dd_error_saved_free(struct dd_error_saved *s)
{
	free(s->msg);
	free(s->hint);
	s->msg = s->hint = NULL;
}
