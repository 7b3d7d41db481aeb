/*
 * store/chunker.c: FastCDC with normalised chunking (Xia et al., 2016/2020)
 * and a gear table drawn from the store key; docs/FORMAT.md §5.
 *
 * Per chunk: the first `min` bytes are not hashed; then for each byte b at
 * chunk offset i, h = (h << 1) + gear[b] (mod 2^64, h starts at 0 at offset
 * min); the chunk ends after byte i when (h & mask) == 0, where mask is
 * mask_s (log2(avg)+2 top bits) while i < avg and mask_l (log2(avg)-2 top
 * bits) after, or when the chunk reaches `max` bytes, or at the end of the
 * stream. The top bits of h depend on the last 64 bytes only, so a cut
 * point depends on local content; normalisation pulls sizes toward avg.
 */
#include "store/chunker.h"
#include "util/err.h"

#include <sodium.h>
#include <string.h>

static uint64_t
top_mask(unsigned bits)
{
	return bits >= 64 ? ~0ull : ((1ull << bits) - 1) << (64 - bits);
}

int
dd_chunker_params_init(struct dd_chunker_params *p, uint32_t min, uint32_t avg, uint32_t max,
		       const uint8_t chunker_key[32])
{
	static const uint8_t nonce[crypto_stream_xchacha20_NONCEBYTES]; /* all zero: one key, one use */
	uint8_t table[256 * 8];
	unsigned bits = 0;

	if (min < DD_CHUNK_MIN_LIMIT || max > DD_CHUNK_MAX_LIMIT || !(min < avg && avg < max) ||
	    (avg & (avg - 1)))
		return dd_error("invalid chunker sizes %u/%u/%u (need %u <= min < avg < max <= %u, avg a power of two)",
				min, avg, max, DD_CHUNK_MIN_LIMIT, DD_CHUNK_MAX_LIMIT);
	while ((1u << bits) < avg)
		bits++;
	if (bits < 3)
		return dd_error("invalid chunker average size %u", avg);
	p->min = min;
	p->avg = avg;
	p->max = max;
	p->mask_s = top_mask(bits + 2);
	p->mask_l = top_mask(bits - 2);
	crypto_stream_xchacha20(table, sizeof(table), nonce, chunker_key);
	for (int i = 0; i < 256; i++) {
		uint64_t v = 0;
		for (int j = 7; j >= 0; j--)
			v = v << 8 | table[8 * i + j];
		p->gear[i] = v;
	}
	sodium_memzero(table, sizeof(table));
	return 0;
}

void
dd_chunker_init(struct dd_chunker *c, const struct dd_chunker_params *p)
{
	c->p = p;
	c->h = 0;
	c->pos = 0;
}

size_t
dd_chunker_scan(struct dd_chunker *c, const uint8_t *data, size_t len, int *cut)
{
	const struct dd_chunker_params *p = c->p;
	const uint64_t *gear = p->gear;
	uint64_t h = c->h;
	size_t i, stop;
	/* chunk offset of data[i] is c->pos + i */
	const size_t base = c->pos;

	*cut = 0;
	i = base < p->min ? p->min - base : 0;
	if (i >= len) {
		c->pos = base + len;
		return len;
	}
	/* offsets [min, avg): the harder mask */
	if (base + i < p->avg) {
		stop = p->avg - base;
		if (stop > len)
			stop = len;
		for (const uint64_t m = p->mask_s; i < stop; i++) {
			h = (h << 1) + gear[data[i]];
			if (!(h & m)) {
				i++;
				goto cut;
			}
		}
	}
	/* offsets [avg, max): the easier mask */
	stop = p->max - base;
	if (stop > len)
		stop = len;
	for (const uint64_t m = p->mask_l; i < stop; i++) {
		h = (h << 1) + gear[data[i]];
		if (!(h & m)) {
			i++;
			goto cut;
		}
	}
	if (base + i == p->max)
		goto cut;
	c->h = h;
	c->pos = base + i;
	return i;
cut:
	*cut = 1;
	c->h = 0;
	c->pos = 0;
	return i;
}
