/* util/buf.c: growable buffers and allocation helpers; see buf.h. */
#include "util/buf.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
oom(size_t n)
{
	fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", n);
	abort();
}

void *
dd_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom(n);
	return p;
}

void *
dd_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		oom(n * size);
	return p;
}

void *
dd_realloc(void *old, size_t n)
{
	void *p = realloc(old, n ? n : 1);

	if (!p)
		oom(n);
	return p;
}

char *
dd_strdup(const char *s)
{
	return dd_strndup(s, strlen(s));
}

char *
dd_strndup(const char *s, size_t n)
{
	char *p = dd_malloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
dd_asprintf(const char *fmt, ...)
{
	struct dd_buf b = DD_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	dd_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return dd_buf_detach(&b, NULL);
}

void
dd_buf_grow(struct dd_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need < b->len)
		oom(SIZE_MAX);
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap * 2 > cap ? cap * 2 : need;
	b->ptr = dd_realloc(b->ptr, cap);
	b->cap = cap;
	b->ptr[b->len] = '\0';
}

void
dd_buf_put(struct dd_buf *b, const void *data, size_t len)
{
	dd_buf_grow(b, len);
	if (len)
		memcpy(b->ptr + b->len, data, len);
	b->len += len;
	b->ptr[b->len] = '\0';
}

void
dd_buf_puts(struct dd_buf *b, const char *s)
{
	dd_buf_put(b, s, strlen(s));
}

void
dd_buf_putc(struct dd_buf *b, char c)
{
	dd_buf_put(b, &c, 1);
}

void
dd_buf_vprintf(struct dd_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	dd_buf_grow(b, 64);
	va_copy(cp, ap);
	n = vsnprintf(b->ptr + b->len, b->cap - b->len, fmt, cp);
	va_end(cp);
	if (n < 0)
		return;
	if ((size_t)n >= b->cap - b->len) {
		dd_buf_grow(b, (size_t)n);
		vsnprintf(b->ptr + b->len, b->cap - b->len, fmt, ap);
	}
	b->len += (size_t)n;
}

void
dd_buf_printf(struct dd_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dd_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void
dd_buf_truncate(struct dd_buf *b, size_t len)
{
	if (len >= b->len)
		return;
	b->len = len;
	b->ptr[len] = '\0';
}

void
dd_buf_clear(struct dd_buf *b)
{
	dd_buf_truncate(b, 0);
}

void
dd_buf_release(struct dd_buf *b)
{
	free(b->ptr);
	b->ptr = NULL;
	b->len = b->cap = 0;
}

void
dd_buf_release_secret(struct dd_buf *b)
{
	if (b->ptr)
		sodium_memzero(b->ptr, b->cap);
	dd_buf_release(b);
}

char *
dd_buf_detach(struct dd_buf *b, size_t *len)
{
	char *p;

	if (!b->ptr)
		dd_buf_grow(b, 0);
	p = b->ptr;
	if (len)
		*len = b->len;
	b->ptr = NULL;
	b->len = b->cap = 0;
	return p;
}

const char *
dd_buf_cstr(const struct dd_buf *b)
{
	return b->ptr ? b->ptr : "";
}
