/*
 * util/endian.h: little-endian integers in byte buffers, as the store's
 * formats use them (docs/FORMAT.md). Byte by byte, so alignment and the
 * host's byte order do not matter.
 */
#ifndef DD_UTIL_ENDIAN_H
#define DD_UTIL_ENDIAN_H

#include <stdint.h>

static inline void
dd_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t
dd_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void
dd_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t
dd_get_le64(const uint8_t *p)
{
	return (uint64_t)dd_get_le32(p + 4) << 32 | dd_get_le32(p);
}

#endif
