/*
 * store/splice.c: carrying streams of the previous snapshot into a new one
 * (issue 19; store.h "incremental snapshots").
 *
 * dd_snapshot_reuse_stream() puts a stream record of an earlier snapshot
 * into this one as it is: no data is read, each chunk is only made one this
 * snapshot keeps (dd_store_adopt_chunk, as dd_listing_reuse does).
 *
 * dd_stream_write_previous() appends a range of the previous version of a
 * stream with the result of dd_stream_write() of those bytes: the same
 * chunk boundaries, ids, size and checksum, hence the same snapshot id.
 * Why taking whole chunks by reference is exact (docs/FORMAT.md §5): the
 * chunker's cut points depend only on the bytes of the current chunk (its
 * state is reset at every cut), never on what came before it nor on how
 * the input is split into calls. Previous chunk k (not the last) ended
 * where the chunker, started fresh at its first byte, cut. So when the
 * writer is at a cut (its chunk buffer empty: the chunker just cut, or the
 * stream starts) and the range goes on from the start of chunk k to at
 * least its end, a full write would feed the chunker exactly chunk k's
 * bytes from a fresh state and cut exactly at its end: chunk k, same bytes,
 * same id. Nothing after the range can change that (the cut is made before
 * the chunker sees a byte past it). The previous stream's LAST chunk is
 * the exception: it may have ended only because the stream did, and the
 * new stream may go on, so it is always read. A chunk too short or too
 * long for this store's chunker (another chunker's, should the sizes ever
 * differ) is read too.
 *
 * Otherwise the previous bytes are read (the chunk holding them, fetched,
 * its id checked, kept for the next call: ranges usually come in order)
 * and fed through the normal write path up to the first cut; after every
 * cut the writer looks again whether it stands at the start of a previous
 * chunk wholly inside the range (resync), and takes chunks by reference
 * again from there. By induction over the cuts, every chunk the writer
 * makes is the one a full write makes, whatever mix of new bytes
 * (dd_stream_write) and previous ranges the caller interleaves.
 */
#include "store/internal.h"
#include "util/err.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

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

/* A previous chunk's plaintext, fetched. */
struct slot {
	size_t k;           /* the previous chunk it holds; SIZE_MAX: none */
	uint64_t used;      /* when it was used last (the splice's clock) */
	struct dd_buf plain;
};

#define SLOTS 4

struct dd_splice {
	uint64_t *starts;   /* starts[k]: offset of previous chunk k; starts[nchunks] = its size */
	/*
	 * The last SLOTS previous chunks fetched, least recently used replaced
	 * first: ranges come in order, and a caller reading rows
	 * (dd_stream_previous_view) is at most about a segment (dump.c, 256 KiB
	 * of rows) ahead of the ranges it appends, while the chunk being
	 * written takes its delta base from the chunk its start came from
	 * (dd_splice_plain): two slots made the walk of a segment push that
	 * base out, and the chunk job read it again. So each chunk is fetched
	 * once.
	 */
	struct slot slot[SLOTS];
	uint64_t clock;
	ZSTD_DCtx *zd;
	struct dd_splice_stats stats;
};

void
dd_splice_free(struct dd_splice *sp)
{
	if (!sp)
		return;
	free(sp->starts);
	for (int i = 0; i < SLOTS; i++)
		dd_buf_release(&sp->slot[i].plain);
	ZSTD_freeDCtx(sp->zd);
	free(sp);
}

/* The writer's splice state, made on first use (the chunk offsets of the previous stream). */
static int
splice_get(struct dd_stream_writer *w, const struct dd_stream_info *prev, struct dd_splice **out)
{
	struct dd_splice **slot = dd_stream_splice(w), *sp = *slot;
	uint64_t at = 0;

	if (sp) {
		*out = sp;
		return 0;
	}
	sp = dd_calloc(1, sizeof(*sp));
	sp->starts = dd_calloc(prev->nchunks + 1, sizeof(*sp->starts));
	for (size_t k = 0; k < prev->nchunks; k++) {
		sp->starts[k] = at;
		at += prev->chunks[k].len;
	}
	sp->starts[prev->nchunks] = at;
	for (int i = 0; i < SLOTS; i++)
		sp->slot[i].k = SIZE_MAX;
	sp->zd = ZSTD_createDCtx();
	if (at != prev->size || !sp->zd) {
		dd_splice_free(sp);
		return dd_error("the previous version of stream '%s' is %s", prev->name,
				at != prev->size ? "damaged (its chunks do not add up to its size)" : "unusable (out of memory)");
	}
	*slot = *out = sp;
	return 0;
}

/* The previous chunk holding byte `off` (< size). */
static size_t
chunk_at(const struct dd_splice *sp, const struct dd_stream_info *prev, uint64_t off)
{
	size_t lo = 0, hi = prev->nchunks; /* starts[lo] <= off < starts[hi] */

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (sp->starts[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/*
 * At a cut, at the start of previous chunk k, in a range ending at `end`:
 * does a full write make chunk k here? (the proof is at the top)
 */
static int
by_reference(const struct dd_splice *sp, const struct dd_stream_info *prev, const struct dd_chunker_params *p,
	     size_t k, uint64_t end)
{
	uint32_t len = prev->chunks[k].len;

	return k + 1 < prev->nchunks && sp->starts[k] + len <= end && len > p->min && len <= p->max;
}

static int
take_ref(struct dd_stream_writer *w, struct dd_splice *sp, const struct dd_stream_info *prev, size_t k)
{
	struct dd_snapshot_writer *sw = dd_stream_snapshot_writer(w);
	int priv = dd_snapshot_writer_flags(sw) & DD_SNAPSHOT_PRIVATE;
	int r = dd_store_adopt_chunk(dd_snapshot_writer_store(sw), &prev->chunks[k], priv);

	if (r != 0)
		return r == DD_NOTFOUND ? DD_NOTFOUND : -1;
	if (dd_stream_append_ref(w, &prev->chunks[k], sp->starts[k + 1]) < 0)
		return -1;
	sp->stats.ref_bytes += prev->chunks[k].len;
	sp->stats.ref_chunks++;
	return 0;
}

/* Previous chunk k's plaintext, fetched (cache: authenticated; else store: its id checked too) unless a slot holds it. */
static int
chunk_plain(struct dd_stream_writer *w, struct dd_splice *sp, const struct dd_stream_info *prev, size_t k,
	    const struct dd_buf **out)
{
	const struct dd_chunk_ref *ref = &prev->chunks[k];
	struct dd_store *st;
	struct slot *s;
	int r;

	sp->clock++;
	s = &sp->slot[0];
	for (int i = 0; i < SLOTS; i++) {
		if (sp->slot[i].k == k) {
			sp->slot[i].used = sp->clock;
			*out = &sp->slot[i].plain;
			return 0;
		}
		if (sp->slot[i].used < s->used)
			s = &sp->slot[i];
	}
	st = dd_snapshot_writer_store(dd_stream_snapshot_writer(w));
	s->k = SIZE_MAX;
	s->used = sp->clock;
	r = dd_store_get_previous(st, ref->id, ref->len, &s->plain, sp->zd);
	if (r == 0 && s->plain.len != ref->len)
		r = dd_error("a chunk's length differs from the manifest");
	if (r != 0)
		return r == DD_NOTFOUND ? DD_NOTFOUND : -1;
	s->k = k;
	sp->stats.fetched_bytes += ref->len;
	sp->stats.fetched_chunks++;
	*out = &s->plain;
	return 0;
}

/* Feed previous bytes [off, min(end, end of chunk k)) up to the first cut; *used: how many. */
static int
feed_some(struct dd_stream_writer *w, struct dd_splice *sp, const struct dd_stream_info *prev, size_t k,
	  uint64_t off, uint64_t end, size_t *used)
{
	uint64_t stop = sp->starts[k + 1] < end ? sp->starts[k + 1] : end;
	const struct dd_buf *plain;
	int r;

	if ((r = chunk_plain(w, sp, prev, k, &plain)) != 0)
		return r;
	if (dd_stream_feed_previous(w, (const uint8_t *)plain->ptr + (off - sp->starts[k]), (size_t)(stop - off), off, used) < 0)
		return -1;
	sp->stats.read_bytes += *used;
	return 0;
}

const struct dd_buf *
dd_splice_plain(const struct dd_splice *sp, const struct dd_stream_info *prev, const struct dd_chunk_ref *ref)
{
	for (int i = 0; i < SLOTS; i++) {
		size_t k = sp->slot[i].k;
		if (k != SIZE_MAX && k < prev->nchunks && prev->chunks[k].len == ref->len &&
		    !memcmp(prev->chunks[k].id, ref->id, 32))
			return &sp->slot[i].plain;
	}
	return NULL;
}

int
dd_stream_previous_view(struct dd_stream_writer *w, uint64_t off, const char **p, size_t *len)
{
	const struct dd_stream_info *prev = dd_stream_previous(w);
	struct dd_splice *sp = NULL;
	const struct dd_buf *plain;
	size_t k;
	int r;

	if (!prev)
		return dd_error("BUG: reading a previous stream that was never set");
	if (off >= prev->size)
		return dd_error("byte %" PRIu64 " is not in the previous version of stream '%s' (%" PRIu64 " bytes)", off,
				prev->name, prev->size);
	if (splice_get(w, prev, &sp) < 0)
		return -1;
	k = chunk_at(sp, prev, off);
	if ((r = chunk_plain(w, sp, prev, k, &plain)) != 0) {
		dd_error_wrap("stream '%s' from its previous version", prev->name);
		return r;
	}
	*p = plain->ptr + (off - sp->starts[k]);
	*len = (size_t)(sp->starts[k + 1] - off);
	return 0;
}

void
dd_stream_previous_advise(struct dd_stream_writer *w, uint64_t off, uint64_t len)
{
	const struct dd_stream_info *prev = dd_stream_previous(w);
	struct dd_store *st = dd_snapshot_writer_store(dd_stream_snapshot_writer(w));
	struct dd_splice *sp = NULL;

	if (!prev || off >= prev->size || !len)
		return;
	if (splice_get(w, prev, &sp) < 0) {
		dd_error_clear(); /* the reads say it again */
		return;
	}
	for (size_t k = chunk_at(sp, prev, off); k < prev->nchunks && sp->starts[k] < off + len; k++) {
		int held = 0;
		for (int i = 0; i < SLOTS; i++)
			held |= sp->slot[i].k == k;
		if (!held)
			dd_store_advise_object(st, prev->chunks[k].id);
	}
}

int
dd_stream_write_previous(struct dd_stream_writer *w, uint64_t off, uint64_t len)
{
	const struct dd_stream_info *prev = dd_stream_previous(w);
	const struct dd_chunker_params *p;
	struct dd_splice *sp = NULL;
	uint64_t end;

	if (!prev)
		return dd_error("BUG: writing a range of a previous stream that was never set");
	if (off > prev->size || len > prev->size - off)
		return dd_error("bytes %" PRIu64 "+%" PRIu64 " are not in the previous version of stream '%s' (%" PRIu64
				" bytes)", off, len, prev->name, prev->size);
	if (splice_get(w, prev, &sp) < 0)
		return -1;
	p = dd_snapshot_writer_store(dd_stream_snapshot_writer(w))->chunker;
	end = off + len;
	while (off < end) {
		size_t k = chunk_at(sp, prev, off), used;
		int r;
		if (dd_stream_at_cut(w) && sp->starts[k] == off && by_reference(sp, prev, p, k, end)) {
			r = take_ref(w, sp, prev, k);
			used = prev->chunks[k].len;
		} else {
			r = feed_some(w, sp, prev, k, off, end, &used);
		}
		if (r != 0) {
			dd_error_wrap("stream '%s' from its previous version", prev->name);
			return r == DD_NOTFOUND ? DD_NOTFOUND : -1;
		}
		off += used;
	}
	return 0;
}

void
dd_stream_write_stats(struct dd_stream_writer *w, struct dd_splice_stats *out)
{
	struct dd_splice *sp = *dd_stream_splice(w);

	if (sp)
		*out = sp->stats;
	else
		memset(out, 0, sizeof(*out));
}
