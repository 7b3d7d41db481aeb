/*
 * store/splice.c: carrying streams of the previous snapshot into a new one
 * (issue 19; store.h "incremental snapshots"). Placeholder: the owner
 * (engineer splice19) replaces this file.
 */
#include "store/internal.h"
#include "util/err.h"

int
dd_snapshot_reuse_stream(struct dd_snapshot_writer *sw, const struct dd_stream_info *prev)
{
	(void)sw;
	(void)prev;
	return dd_error("reusing a stream is not built yet");
}

int
dd_stream_write_previous(struct dd_stream_writer *w, uint64_t off, uint64_t len)
{
	(void)w;
	(void)off;
	(void)len;
	return dd_error("writing a range of a previous stream is not built yet");
}

int
dd_stream_open_at(struct dd_stream_reader **out, struct dd_store *st, const struct dd_stream_info *si, uint64_t off)
{
	(void)out;
	(void)st;
	(void)si;
	(void)off;
	return dd_error("reading a stream from an offset is not built yet");
}
