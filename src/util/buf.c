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

/* Length of the well-formed UTF-8 sequence at s (n bytes left), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0; /* overlong, out of range, or a surrogate */
	return len;
}

void
dd_buf_put_printable(struct dd_buf *out, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, len;

	while (i < n) {
		unsigned char c = s[i];

		len = utf8_len(s + i, n - i);
		/* C0 controls, DEL, and C1 controls (U+0080..U+009F: 0x9b is CSI) */
		if (len == 1 && (c < 0x20 || c == 0x7f)) {
			if (c == '\t')
				dd_buf_puts(out, "\\t");
			else if (c == '\n')
				dd_buf_puts(out, "\\n");
			else if (c == '\r')
				dd_buf_puts(out, "\\r");
			else
				dd_buf_printf(out, "\\x%02x", c);
		} else if (len == 2 && c == 0xc2 && s[i + 1] < 0xa0) {
			dd_buf_printf(out, "\\u%04x", s[i + 1]);
			i++;
		} else if (len) {
			dd_buf_put(out, str + i, len);
			i += len;
			continue;
		} else {
			dd_buf_printf(out, "\\x%02x", c);
		}
		i++;
	}
}
