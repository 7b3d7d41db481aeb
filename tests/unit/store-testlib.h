/*
 * tests/unit/store-testlib.h: helpers shared by the store's unit tests:
 * temp dirs, a deterministic generator of realistic (mixed text and
 * random) streams addressable by offset, and writing/reading streams.
 */
#ifndef DD_TEST_STORE_TESTLIB_H
#define DD_TEST_STORE_TESTLIB_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/fs.h"

#define GEN_BLOCK 65536

/* A stream is made of 64 KiB blocks; block b uses seed (seed, b) unless it lies in a "changed" region. */
struct gen {
	uint64_t seed;
	uint64_t size;
	const uint64_t *changed; /* pairs: offset, length (bytes get seed+1) */
	size_t nchanged;
};

static inline uint64_t
mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static const char *const words[] = {
	"customer", "order", "invoice", "2023-04-01", "paid", "pending", "street", "berlin", "amount",
	"{\"id\":", "\"name\":", "true", "false", "null", "lorem", "ipsum", "delivery", "status",
};

/* Fill one block: half text (compressible), half random. */
static inline void
gen_block(uint8_t *out, uint64_t seed, uint64_t block)
{
	uint64_t s = mix64(seed * 0x9e3779b97f4a7c15ull + block + 1);
	size_t i = 0;

	while (i < GEN_BLOCK / 2) {
		s = mix64(s);
		const char *w = words[s % (sizeof(words) / sizeof(*words))];
		size_t n = strlen(w);
		for (size_t k = 0; k < n && i < GEN_BLOCK / 2; k++)
			out[i++] = (uint8_t)w[k];
		if (i < GEN_BLOCK / 2)
			out[i++] = (s >> 20) % 7 == 0 ? '\n' : ' ';
	}
	for (; i < GEN_BLOCK; i += 8) {
		s = mix64(s);
		memcpy(out + i, &s, 8);
	}
}

/* The bytes [off, off+len) of the stream. */
static inline void
gen_fill(const struct gen *g, uint8_t *out, uint64_t off, size_t len)
{
	static _Thread_local uint8_t blk[GEN_BLOCK];
	while (len) {
		uint64_t b = off / GEN_BLOCK, in = off % GEN_BLOCK;
		size_t n = GEN_BLOCK - in < len ? GEN_BLOCK - in : len;
		gen_block(blk, g->seed, b);
		for (size_t c = 0; c < g->nchanged; c++) {
			uint64_t co = g->changed[2 * c], cl = g->changed[2 * c + 1];
			for (uint64_t k = 0; k < GEN_BLOCK; k++) {
				uint64_t pos = b * GEN_BLOCK + k;
				if (pos >= co && pos < co + cl)
					blk[k] ^= (uint8_t)(mix64(pos) | 1);
			}
		}
		memcpy(out, blk + in, n);
		out += n;
		off += n;
		len -= n;
	}
}

static inline char *
make_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	char *p = dd_asprintf("%s/dd-store-test-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(p)) {
		perror("mkdtemp");
		abort();
	}
	return p;
}

#endif
