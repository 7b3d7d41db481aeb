/* util/hex.c: see hex.h. */
#include "util/hex.h"

#include <string.h>

static const char digits[] = "0123456789abcdef";

void
dd_hex_encode(char *out, const unsigned char *in, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int
nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
dd_hex_decode(unsigned char *out, size_t len, const char *hex)
{
	if (!dd_is_hex(hex, 2 * len))
		return -1;
	for (size_t i = 0; i < len; i++)
		out[i] = (unsigned char)(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
	return 0;
}

int
dd_is_hex(const char *s, size_t n)
{
	if (strlen(s) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (nibble(s[i]) < 0)
			return 0;
	return 1;
}
