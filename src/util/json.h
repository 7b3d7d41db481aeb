/*
 * util/json.h: a small JSON writer for --json output, and UTF-8 checking.
 *
 * The writer appends to a dd_buf and tracks nesting so callers never place
 * commas themselves: open an object, add members, close it. Strings are
 * escaped per RFC 8259: '"', '\\' and every control character (< 0x20,
 * and 0x7f) are escaped; valid UTF-8 passes through unchanged; each byte of
 * an invalid UTF-8 sequence becomes U+FFFD, so the output is always valid
 * JSON in valid UTF-8 whatever the input bytes were.
 *
 * Misuse (closing more than was opened, a member outside an object) is a
 * programming error and aborts.
 */
#ifndef DD_UTIL_JSON_H
#define DD_UTIL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define DD_JSON_MAX_DEPTH 32

struct dd_json {
	struct dd_buf *out;
	int depth;
	/* per level: has a value been written (needs a comma), is it an object */
	unsigned char has_value[DD_JSON_MAX_DEPTH];
	unsigned char is_object[DD_JSON_MAX_DEPTH];
};

/* Start writing into `out` (appending). */
void dd_json_init(struct dd_json *j, struct dd_buf *out);

/*
 * Containers. `key` is the member name when inside an object, NULL inside
 * an array or at the top level.
 */
void dd_json_object_begin(struct dd_json *j, const char *key);
void dd_json_object_end(struct dd_json *j);
void dd_json_array_begin(struct dd_json *j, const char *key);
void dd_json_array_end(struct dd_json *j);

/* Values (a NULL string is written as null). */
void dd_json_str(struct dd_json *j, const char *key, const char *value);
void dd_json_strn(struct dd_json *j, const char *key, const char *value, size_t len);
void dd_json_int(struct dd_json *j, const char *key, int64_t value);
void dd_json_bool(struct dd_json *j, const char *key, int value);
void dd_json_null(struct dd_json *j, const char *key);

/* Append `s` (len bytes) as a quoted, escaped JSON string. */
void dd_json_quote(struct dd_buf *out, const char *s, size_t len);

/*
 * Length of the valid UTF-8 sequence starting at s (1..4), or 0 if the
 * bytes there are not valid UTF-8 (overlong forms, surrogates and code
 * points above U+10FFFF are invalid).
 */
size_t dd_utf8_seq_len(const unsigned char *s, size_t avail);
/* Is the whole of s[0..len) valid UTF-8? */
int dd_utf8_valid(const char *s, size_t len);

#endif
