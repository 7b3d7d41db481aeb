/*
 * store/chunker.h: FastCDC content-defined chunking with normalised chunk
 * sizes and a keyed gear table (docs/FORMAT.md §5).
 *
 * The chunker is a streaming state machine: feed it bytes in any pieces and
 * it reports where a chunk ends; the cut points depend only on the bytes of
 * the current chunk, never on how the input was split into calls.
 */
#ifndef DD_STORE_CHUNKER_H
#define DD_STORE_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

/*
 * Defaults for new stores (each store records its own in its config).
 * Measured with packs on bench/pg's data set (docs/FORMAT.md §5): against
 * 128K/512K/2M, 32K/128K/512K adds a third of the bytes after 1% of rows
 * changed in ranges, for +1% stored and 4x the objects (inside packs).
 */
#define DD_CHUNK_MIN_DEFAULT (32u << 10)
#define DD_CHUNK_AVG_DEFAULT (128u << 10)
#define DD_CHUNK_MAX_DEFAULT (512u << 10)
/* Bounds a store config may ask for (hostile configs must not make us allocate gigabytes). */
#define DD_CHUNK_MIN_LIMIT 64u
#define DD_CHUNK_MAX_LIMIT (64u << 20)

struct dd_chunker_params {
	uint32_t min, avg, max;
	uint64_t mask_s, mask_l; /* derived from avg */
	uint64_t gear[256];
};

/* Check sizes (min < avg < max, avg a power of two, within limits) and derive masks + gear table. */
int dd_chunker_params_init(struct dd_chunker_params *p, uint32_t min, uint32_t avg, uint32_t max,
			   const uint8_t chunker_key[32]);

struct dd_chunker {
	const struct dd_chunker_params *p;
	uint64_t h;
	size_t pos; /* bytes of the current chunk seen so far */
};

void dd_chunker_init(struct dd_chunker *c, const struct dd_chunker_params *p);
/*
 * Consume bytes of `data` up to and including the end of the current chunk.
 * Returns how many bytes were consumed; *cut is 1 when they end a chunk
 * (the state is then reset for the next one), 0 when all `len` bytes were
 * consumed without reaching a boundary. The end of the stream always ends
 * the last chunk (the caller knows when that is).
 */
size_t dd_chunker_scan(struct dd_chunker *c, const uint8_t *data, size_t len, int *cut);

#endif
