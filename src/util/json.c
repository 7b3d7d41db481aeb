/* util/json.c: JSON writer and UTF-8 validation; see json.h. */
#include "util/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t
dd_utf8_seq_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;

	if (avail == 0)
		return 0;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0; /* continuation byte, 0xc0/0xc1 (overlong) or > 0xf4 */
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000))
		return 0; /* overlong */
	if (cp >= 0xd800 && cp <= 0xdfff)
		return 0; /* UTF-16 surrogate */
	if (cp > 0x10ffff)
		return 0;
	return n;
}

int
dd_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	while (len) {
		size_t n = dd_utf8_seq_len(p, len);
		if (n == 0)
			return 0;
		p += n;
		len -= n;
	}
	return 1;
}

void
dd_json_quote(struct dd_buf *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	dd_buf_putc(out, '"');
	while (i < len) {
		unsigned char c = p[i];
		size_t n;

		switch (c) {
		case '"': dd_buf_puts(out, "\\\""); i++; continue;
		case '\\': dd_buf_puts(out, "\\\\"); i++; continue;
		case '\b': dd_buf_puts(out, "\\b"); i++; continue;
		case '\f': dd_buf_puts(out, "\\f"); i++; continue;
		case '\n': dd_buf_puts(out, "\\n"); i++; continue;
		case '\r': dd_buf_puts(out, "\\r"); i++; continue;
		case '\t': dd_buf_puts(out, "\\t"); i++; continue;
		default: break;
		}
		if (c < 0x20 || c == 0x7f) {
			dd_buf_printf(out, "\\u%04x", c);
			i++;
			continue;
		}
		n = dd_utf8_seq_len(p + i, len - i);
		if (n == 0) {
			dd_buf_puts(out, "\\ufffd");
			i++;
			continue;
		}
		dd_buf_put(out, p + i, n);
		i += n;
	}
	dd_buf_putc(out, '"');
}

static void
bug(const char *what)
{
	fprintf(stderr, "fatal: BUG: JSON writer misused: %s\n", what);
	abort();
}

void
dd_json_init(struct dd_json *j, struct dd_buf *out)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
}

/* Comma and member name before a value at the current level. */
static void
prefix(struct dd_json *j, const char *key)
{
	if (j->depth == 0) {
		if (key)
			bug("member name at top level");
		return;
	}
	if (j->is_object[j->depth - 1] != (key != NULL))
		bug(key ? "member name inside an array" : "value without a name inside an object");
	if (j->has_value[j->depth - 1])
		dd_buf_putc(j->out, ',');
	j->has_value[j->depth - 1] = 1;
	if (key) {
		dd_json_quote(j->out, key, strlen(key));
		dd_buf_putc(j->out, ':');
	}
}

static void
open_container(struct dd_json *j, const char *key, int object)
{
	prefix(j, key);
	if (j->depth >= DD_JSON_MAX_DEPTH)
		bug("nesting too deep");
	j->is_object[j->depth] = (unsigned char)object;
	j->has_value[j->depth] = 0;
	j->depth++;
	dd_buf_putc(j->out, object ? '{' : '[');
}

static void
close_container(struct dd_json *j, int object)
{
	if (j->depth == 0 || j->is_object[j->depth - 1] != object)
		bug("unbalanced close");
	j->depth--;
	dd_buf_putc(j->out, object ? '}' : ']');
}

void
dd_json_object_begin(struct dd_json *j, const char *key)
{
	open_container(j, key, 1);
}

void
dd_json_object_end(struct dd_json *j)
{
	close_container(j, 1);
}

void
dd_json_array_begin(struct dd_json *j, const char *key)
{
	open_container(j, key, 0);
}

void
dd_json_array_end(struct dd_json *j)
{
	close_container(j, 0);
}

void
dd_json_strn(struct dd_json *j, const char *key, const char *value, size_t len)
{
	prefix(j, key);
	if (!value)
		dd_buf_puts(j->out, "null");
	else
		dd_json_quote(j->out, value, len);
}

void
dd_json_str(struct dd_json *j, const char *key, const char *value)
{
	dd_json_strn(j, key, value, value ? strlen(value) : 0);
}

void
dd_json_int(struct dd_json *j, const char *key, int64_t value)
{
	prefix(j, key);
	dd_buf_printf(j->out, "%" PRId64, value);
}

void
dd_json_bool(struct dd_json *j, const char *key, int value)
{
	prefix(j, key);
	dd_buf_puts(j->out, value ? "true" : "false");
}

void
dd_json_null(struct dd_json *j, const char *key)
{
	prefix(j, key);
	dd_buf_puts(j->out, "null");
}
