/*
 * store/splice.c: carrying streams of the previous snapshot into a new one
 * (issue 19; store.h "incremental snapshots").
 *
 * dd_snapshot_reuse_stream() puts a stream record of an earlier snapshot
 * into this one as it is: no data is read, each chunk is only made one this
 * snapshot keeps (dd_store_adopt_chunk, as dd_listing_reuse does).
 * dd_stream_write_previous() is below.
 */
#include "store/internal.h"
#include "util/err.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Make each chunk of `si` one a snapshot of writer `sw` keeps: 0, DD_NOTFOUND, -1 (error set). */
static int
adopt_chunks(struct dd_snapshot_writer *sw, const struct dd_stream_info *si)
{
	struct dd_store *st = dd_snapshot_writer_store(sw);
	int priv = dd_snapshot_writer_flags(sw) & DD_SNAPSHOT_PRIVATE;

	for (size_t i = 0; i < si->nchunks; i++) {
		int r = dd_store_adopt_chunk(st, &si->chunks[i], priv);
		if (r != 0)
			return r == DD_NOTFOUND ? DD_NOTFOUND : -1;
	}
	return 0;
}

int
dd_snapshot_reuse_stream(struct dd_snapshot_writer *sw, const struct dd_stream_info *prev)
{
	struct dd_store *st = dd_snapshot_writer_store(sw);
	struct dd_stream_info copy;
	uint64_t size = 0;
	uint8_t sum[32];
	int r;

	if (!prev->name)
		return dd_error("BUG: reusing a stream without a name");
	for (size_t i = 0; i < prev->nchunks; i++)
		size += prev->chunks[i].len;
	/* the record came from an authenticated manifest; a mismatch here is a bug, not an attack */
	dd_stream_checksum(sum, st->keys, prev);
	if (size != prev->size || sodium_memcmp(sum, prev->checksum, 32) != 0)
		return dd_error("stream '%s' of the previous snapshot is inconsistent (size or checksum)", prev->name);
	r = adopt_chunks(sw, prev);
	if (r != 0) {
		dd_error_wrap("reusing stream '%s'", prev->name);
		return r;
	}
	dd_stream_info_copy(&copy, prev); /* attributes are sorted with the manifest's at commit */
	if (dd_snapshot_add_stream(sw, &copy) < 0) {
		dd_stream_info_clear(&copy);
		return -1;
	}
	return 0;
}

int
dd_stream_write_previous(struct dd_stream_writer *w, uint64_t off, uint64_t len)
{
	(void)w;
	(void)off;
	(void)len;
	return dd_error("writing a range of a previous stream is not built yet");
}
