/* util/hex.h: lowercase hexadecimal encoding of binary ids. */
#ifndef DD_UTIL_HEX_H
#define DD_UTIL_HEX_H

#include <stddef.h>

/* Write 2*len hex digits and a NUL to out (size 2*len+1). */
void dd_hex_encode(char *out, const unsigned char *in, size_t len);
/* Decode exactly 2*len lowercase hex digits; -1 (no error set) if malformed. */
int dd_hex_decode(unsigned char *out, size_t len, const char *hex);
/* Is `s` exactly `n` lowercase hex digits? */
int dd_is_hex(const char *s, size_t n);

#endif
