/*
 * fuzz/fuzz-media-index.c: the media folder's local index reader
 * (media/index.c, docs/FORMAT.md §6.2) on hostile bytes, through
 * idx_open_stream() on the bytes in memory (idx_open is that on a file).
 *
 * Each input is a whole record, read twice: as it is (the hash checks
 * must refuse almost everything), then with its H1 and H2 recomputed over
 * the bytes as a writer would, so that mutated entries reach the field
 * parser (the hashes are unkeyed: anyone who can write the file can make
 * them match). Beyond "no crash": every entry handed out obeys what the
 * reader promises (a valid path, strictly increasing in path order, at
 * most 16 attributes with sorted keys, chunks of 1 B..64 MiB adding up to
 * the size, nanoseconds below 10^9, an entry a listing could hold: known
 * type, mode and mtime that parse, a target for symlinks only, content
 * for files only, no other attribute), and once it says "end" it stays
 * there.
 *
 * Seeds (fuzz/corpus/fuzz-media-index/) are written by the real writer:
 * fuzz/seeds-media-index.c.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "media/internal.h"
#include "util/err.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* §6.2: "DDMI" u32 version, the 176-byte region (flags..nonce), H2, entries, H1 last. */
#define REGION 8
#define REGION_LEN 176
#define HEAD (REGION + REGION_LEN + 32)

static void
check_entry(const struct idx_entry *e, const char *prev)
{
	const struct dd_stream_info *si = &e->info;
	uint64_t sum = 0;
	struct timespec ts;
	mode_t mode;
	enum media_type t;
	const char *target;

	if (!si->name || media_check_path(si->name) < 0 || (prev && dd_path_cmp(prev, si->name) >= 0))
		abort();
	if (si->nattrs > 16)
		abort();
	for (size_t i = 1; i < si->nattrs; i++)
		if (strcmp(si->attrs[i - 1].key, si->attrs[i].key) >= 0)
			abort();
	for (size_t i = 0; i < si->nchunks; i++) {
		if (si->chunks[i].len == 0 || si->chunks[i].len > (64u << 20))
			abort();
		sum += si->chunks[i].len;
	}
	if (sum != si->size || e->st.mtime_ns >= 1000000000u || e->st.ctime_ns >= 1000000000u)
		abort();
	/* an entry a listing could hold: capture copies a reused one into its listing as it is */
	t = media_attr_type(si);
	target = dd_kv_get(si->attrs, si->nattrs, "target");
	if (t == MEDIA_OTHER || media_attr_mode(si, &mode) < 0 || (mode & ~(mode_t)07777) ||
	    media_attr_mtime(si, &ts) < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000L)
		abort();
	if ((t == MEDIA_LINK) != (target != NULL) || (t != MEDIA_FILE && (si->size || si->nchunks)))
		abort();
	for (size_t i = 0; i < si->nattrs; i++)
		if (strcmp(si->attrs[i].key, "type") && strcmp(si->attrs[i].key, "mode") &&
		    strcmp(si->attrs[i].key, "mtime") && strcmp(si->attrs[i].key, "target"))
			abort();
}

static void
read_all(uint8_t *buf, size_t size)
{
	struct idx_reader *r;
	const struct idx_entry *e;
	char *prev = NULL;
	FILE *f = fmemopen(buf, size, "rb");
	int rc;

	if (!f)
		return;
	if (idx_open_stream(&r, f, size, "fuzz") != 0) {
		dd_error_clear();
		return;
	}
	if (idx_header(r)->stamp_ns >= 1000000000u)
		abort();
	while ((rc = idx_next(r, &e)) == 1) {
		check_entry(e, prev);
		free(prev);
		prev = strdup(e->info.name);
		if (!prev)
			abort();
	}
	if (rc != 0 || idx_next(r, &e) != 0)
		abort();
	free(prev);
	idx_close(r);
	dd_error_clear();
}

/* H1 over magic, version and the entries through the count; H2 over the region and H1 (as the writer does). */
static void
rehash(uint8_t *b, size_t size)
{
	crypto_generichash_state s;

	crypto_generichash_init(&s, NULL, 0, 32);
	crypto_generichash_update(&s, b, REGION);
	crypto_generichash_update(&s, b + HEAD, size - HEAD - 32);
	crypto_generichash_final(&s, b + size - 32, 32);
	crypto_generichash_init(&s, NULL, 0, 32);
	crypto_generichash_update(&s, b + REGION, REGION_LEN);
	crypto_generichash_update(&s, b + size - 32, 32);
	crypto_generichash_final(&s, b + REGION + REGION_LEN, 32);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf;

	if (size == 0)
		return 0;
	buf = malloc(size);
	if (!buf)
		abort();
	memcpy(buf, data, size);
	read_all(buf, size);
	if (size >= HEAD + 32) {
		memcpy(buf, data, size);
		rehash(buf, size);
		read_all(buf, size);
	}
	free(buf);
	return 0;
}
