/*
 * fuzz/fuzz-midx.c: index files (store/pack.c dd_index_decode, versions 1
 * and 2 with delta entries) loaded into the in-memory map every reader
 * asks "where is object X" (store/midx.c), as a clone that learns the
 * store's index files does, and the chains of delta bases walked as
 * verify and the listing readers walk them.
 *
 * The input is cut into index plaintexts at each "DDIX" (the magic), at
 * most 8; each that decodes is loaded as its own index file, so the same
 * object or pack can be named by several files, in one pack twice, or as
 * a delta in one place and whole in another. Beyond "no crash under
 * ASan/UBSan": every object decoded is found; every place the map gives
 * is one an index file named, with its offset, length, type and delta
 * base together; a file's packs are the ones it named; a pack's extent is
 * the end of its last object; walking delta bases stops within
 * DD_DELTA_DEPTH_MAX steps whatever cycle the files make.
 *
 * Seeds (fuzz/corpus/fuzz-midx/) are real index plaintexts from a test
 * run's cache, written by fuzz/seeds-store.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/pack.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FILES 8

struct loaded {
	struct dd_index_pack *p;
	size_t np;
	uint32_t first; /* its first pack's slot */
};

/* Is `h` a place of `id` that the index files named: its pack's entry, all fields together? */
static int
named(const struct loaded *f, size_t nf, const uint8_t id[32], const struct dd_midx_hit *h)
{
	for (size_t i = 0; i < nf; i++) {
		if (h->pack < f[i].first || h->pack >= f[i].first + f[i].np)
			continue;
		const struct dd_index_pack *p = &f[i].p[h->pack - f[i].first];
		for (size_t j = 0; j < p->n; j++) {
			const struct dd_pack_entry *e = &p->e[j];
			if (memcmp(e->id, id, 32) || e->off != h->off || e->len != h->len || e->type != h->type)
				continue;
			if (e->type != DD_OBJ_DELTA || (!memcmp(e->d.base, h->d.base, 32) &&
							e->d.base_len == h->d.base_len && e->d.depth == h->d.depth))
				return 1;
		}
	}
	return 0;
}

static void
check_objects(struct dd_midx *m, const struct loaded *f, size_t nf)
{
	struct dd_midx_hit hits[DD_MIDX_MAX_PLACES];
	struct dd_delta_ref d;

	for (size_t i = 0; i < nf; i++) {
		for (size_t k = 0; k < f[i].np; k++) {
			for (size_t j = 0; j < f[i].p[k].n; j++) {
				const uint8_t *id = f[i].p[k].e[j].id;
				size_t n = dd_midx_find_all(m, id, 0, hits, DD_MIDX_MAX_PLACES);
				uint8_t cur[32];
				int depth = 0;

				if (n == 0)
					abort(); /* every object named is found */
				for (size_t h = 0; h < n; h++)
					if (hits[h].pack >= m->npacks || !named(f, nf, id, &hits[h]))
						abort();
				memcpy(cur, id, 32);
				while (depth < DD_DELTA_DEPTH_MAX && dd_midx_delta_of(m, cur, 0, &d)) {
					if (d.depth == 0 || d.depth > DD_DELTA_DEPTH_MAX || d.base_len == 0)
						abort(); /* the decoder refuses such entries */
					memcpy(cur, d.base, 32);
					depth++;
				}
			}
		}
	}
}

static void
check_packs(struct dd_midx *m, const struct loaded *f, size_t nf, const uint32_t *slot)
{
	uint64_t *ext;
	size_t next;

	dd_midx_pack_extents(m, &ext, &next);
	if (next != m->npacks)
		abort();
	for (size_t i = 0; i < nf; i++) {
		uint32_t *packs;
		size_t n;

		dd_midx_file_packs(m, slot[i], &packs, &n);
		if (n != f[i].np)
			abort(); /* a file's packs are the ones it named, in its order */
		for (size_t k = 0; k < n; k++) {
			const struct dd_index_pack *p = &f[i].p[k];
			if (packs[k] != f[i].first + k || dd_midx_pack_get(m, packs[k]).file != slot[i])
				abort();
			if (ext[packs[k]] != (uint64_t)p->e[p->n - 1].off + p->e[p->n - 1].len)
				abort(); /* the objects it holds end where its last one does */
		}
		free(packs);
	}
	free(ext);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct loaded f[MAX_FILES];
	uint32_t slot[MAX_FILES];
	struct dd_midx m;
	size_t nf = 0, at = 0;

	dd_midx_init(&m);
	while (at < size && nf < MAX_FILES) {
		const uint8_t *next = size - at > 4 ? memmem(data + at + 4, size - at - 4, DD_INDEX_MAGIC, 4) : NULL;
		size_t end = next ? (size_t)(next - data) : size;
		uint8_t fid[32] = { 0 };
		int isnew;

		if (dd_index_decode(&f[nf].p, &f[nf].np, data + at, end - at) == 0) {
			fid[0] = (uint8_t)nf; /* each segment is its own index file */
			slot[nf] = dd_midx_file(&m, fid, &isnew);
			f[nf].first = (uint32_t)m.npacks;
			dd_midx_load(&m, slot[nf], f[nf].p, f[nf].np);
			nf++;
		}
		dd_error_clear();
		at = end;
	}
	check_objects(&m, f, nf);
	check_packs(&m, f, nf, slot);
	for (size_t i = 0; i < nf; i++)
		dd_index_packs_free(f[i].p, f[i].np);
	dd_midx_clear(&m);
	return 0;
}
