/*
 * store/writer.c: writing a snapshot; see store.h.
 *
 * Each stream writer runs the chunker over the caller's bytes on the
 * caller's thread, copying them once into a chunk buffer; a full chunk
 * becomes a job for the store's pool (id, dedupe check, zstd, seal, cache,
 * backend). Jobs finish out of order; the writer keeps them in a FIFO and
 * harvests finished ones from its head, so the chunk list stays in stream
 * order. Memory is bounded by the pool's in-flight limit (each job holds at
 * most one chunk plus its sealed copy) plus one chunk buffer per stream.
 * The stream checksum is a hash list: keyed BLAKE2b over the size and the
 * chunk ids in order (each id a keyed BLAKE2b of that chunk's plaintext),
 * so the writer's thread never makes a second pass over the data.
 *
 * A detached writer (dd_content_begin: a listing entry's content) is the
 * same machinery without a name: finishing its chunks (stream_finish) is
 * one step, and recording the result in the manifest (dd_stream_end) or
 * handing it to the caller (dd_content_end) another. A private snapshot's
 * chunks go to the private packer (store-private.c).
 */
#include "store/internal.h"
#include "store/store-lock.h"
#include "util/err.h"
#include "util/hex.h"
#include "util/log.h"

#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct chunk_job {
	struct dd_job base;
	struct dd_store *st;
	struct dd_stream_writer *w;
	uint8_t *data;
	size_t len;
	uint8_t id[32];
	char *err; /* message on failure (errors are per-thread) */
	struct chunk_job *next_in_stream;
	struct dd_chunk_ref dbase; /* a delta base: the previous version's chunk aligned with this one */
	int has_base;
	struct dd_buf bplain; /* its plaintext when splice.c had it fetched (empty: the job reads it) */
	uint64_t base_off;    /* the base's offset in the previous version */
	struct dd_delta_piece *pieces; /* where its bytes came from (the writer's, handed over) */
	size_t npieces;
};

struct dd_snapshot_writer {
	struct dd_store *st;
	int flags; /* DD_SNAPSHOT_PRIVATE */
	int locked; /* holds one count of the store's shared lock (dd_store_lock_shared returned 1) */
	pthread_mutex_t mu;
	struct dd_manifest m; /* finished streams + metadata */
	char **active;        /* names of streams being written */
	size_t nactive;
};

struct dd_stream_writer {
	struct dd_snapshot_writer *sw;
	struct dd_stream_info info;
	size_t cap_chunks;
	struct dd_chunker ch;
	uint8_t *buf; /* the chunk being filled (capacity = chunker max) */
	size_t buflen;
	struct chunk_job *head, *tail; /* jobs not yet harvested, in stream order */
	atomic_int failed;
	/*
	 * Issue 19: the previous version of this stream (dd_stream_set_previous;
	 * info.name NULL when none), and the offset in it aligned with the start
	 * of the chunk being filled (UINT64_MAX: not known). splice.c keeps
	 * prev_at exact in dd_stream_write_previous(); the delta writer keeps it
	 * from dedupe hits otherwise and takes its base there.
	 */
	struct dd_stream_info prev;
	uint64_t prev_at;
	struct dd_splice *splice; /* splice.c's state once dd_stream_write_previous ran (NULL before) */
	uint64_t *prev_ends; /* delta_pick(): where each chunk of prev ends (NULL: not computed yet) */
	struct { uint64_t at, prev; } hint[4]; /* dd_stream_align_previous() hints not used yet, oldest first */
	size_t nhints;
	/*
	 * Where the bytes of the chunk being filled came from (object.h: new, or
	 * the previous version at an offset), with a previous version only: a
	 * delta against its base is then made from these (compress_planned)
	 * instead of a match search over the base.
	 */
	struct dd_delta_piece *pieces;
	size_t npieces, cap_pieces;
	uint64_t old, old_end; /* dd_stream_write_replacing's bytes being fed replace these (else 0, 0) */
};

/* "stream 'x' failed<how>", or for a detached writer (dd_content_begin) "content failed<how>"; returns -1. */
static int
failed(const struct dd_stream_writer *w, const char *how)
{
	if (w->info.name)
		return dd_error("stream '%s' failed%s", w->info.name, how);
	return dd_error("writing content failed%s", how);
}

/*
 * Before the chunk of `len` bytes that ends at info.size is given its base:
 * the newest hint inside it or before it sets where it starts in the
 * previous version; later hints wait for their chunks.
 */
static void
use_hints(struct dd_stream_writer *w, size_t len)
{
	uint64_t start = w->info.size - len, end = w->info.size, at, prev;
	size_t used = 0;

	while (used < w->nhints && w->hint[used].at < end)
		used++;
	if (!used)
		return;
	at = w->hint[used - 1].at;
	prev = w->hint[used - 1].prev;
	if (at >= start)
		w->prev_at = prev >= at - start ? prev - (at - start) : 0;
	else
		w->prev_at = prev + (start - at);
	memmove(w->hint, w->hint + used, (w->nhints - used) * sizeof(w->hint[0]));
	w->nhints -= used;
}

void
dd_stream_align_previous(struct dd_stream_writer *w, uint64_t at, uint64_t prev_off)
{
	if (!w->prev.name || (w->nhints && at <= w->hint[w->nhints - 1].at))
		return;
	if (w->nhints == sizeof(w->hint) / sizeof(w->hint[0])) { /* the oldest gives way */
		memmove(w->hint, w->hint + 1, (w->nhints - 1) * sizeof(w->hint[0]));
		w->nhints--;
	}
	w->hint[w->nhints].at = at;
	w->hint[w->nhints].prev = prev_off;
	w->nhints++;
}

/*
 * The delta base of the chunk being submitted (FORMAT.md §4.3): the chunk
 * of the previous version that overlaps most the bytes [prev_at, prev_at +
 * len) aligned with it, then prev_at moves past them. On the writer's
 * thread, in stream order. prev_at follows lengths only (a chunk's id is
 * not known yet): after an insertion or deletion the alignment drifts by
 * its size until dd_stream_write_previous() sets it again, or a hint
 * (dd_stream_align_previous: a row of the previous version found again).
 */
static void
delta_pick(struct dd_stream_writer *w, struct chunk_job *j)
{
	const struct dd_stream_info *p = &w->prev;
	uint64_t at, end, best = 0;
	size_t lo = 0, hi;

	if (!p->name || !p->nchunks || (w->sw->flags & DD_SNAPSHOT_PRIVATE))
		return;
	use_hints(w, j->len);
	at = w->prev_at;
	end = at + j->len;
	if (at == UINT64_MAX)
		return;
	w->prev_at = end;
	if (!w->prev_ends) {
		w->prev_ends = dd_malloc(p->nchunks * sizeof(*w->prev_ends));
		for (size_t i = 0; i < p->nchunks; i++)
			w->prev_ends[i] = (i ? w->prev_ends[i - 1] : 0) + p->chunks[i].len;
	}
	hi = p->nchunks;
	while (lo < hi) { /* the first chunk ending after `at` */
		size_t mid = lo + (hi - lo) / 2;
		if (w->prev_ends[mid] <= at)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < p->nchunks && i < lo + 2; i++) {
		uint64_t s = w->prev_ends[i] - p->chunks[i].len, e = w->prev_ends[i];
		uint64_t ov = (e < end ? e : end) - (s > at ? s : at);
		if (s < end && ov > best) {
			best = ov;
			j->dbase = p->chunks[i];
			j->base_off = s;
			j->has_base = 1;
		}
	}
}

static void
chunk_run(struct dd_job *job, struct dd_worker *wk)
{
	struct chunk_job *j = (struct chunk_job *)job;
	int existed, r;

	if (atomic_load(&j->w->failed))
		goto out; /* the stream failed already: skip the work */
	dd_id_compute(j->id, j->st->keys, j->data, j->len);
	if (j->w->sw->flags & DD_SNAPSHOT_PRIVATE)
		r = dd_store_put_private(j->st, j->id, j->data, j->len, wk->zc, &wk->scratch, &existed);
	else if (j->has_base) {
		struct dd_delta_plan plan = { j->pieces, j->npieces, j->base_off, wk->zd };
		int known = j->npieces > 1 || (j->npieces == 1 && j->pieces[0].prev != DD_PIECE_NEW);
		r = dd_store_put_data_delta(j->st, j->id, j->data, j->len, &j->dbase, j->bplain.len ? &j->bplain : NULL,
					    known ? &plan : NULL, wk->zc, wk->zd, &wk->scratch, &existed);
	}
	else
		r = dd_store_put_object(j->st, DD_OBJ_DATA, j->id, j->data, j->len, wk->zc, &wk->scratch, &existed);
	if (r < 0) {
		j->err = dd_strdup(dd_error_last() ? dd_error_last() : "storing a chunk failed");
		atomic_store(&j->w->failed, 1);
	}
out:
	dd_store_chunkbuf_put(j->st, j->data);
	j->data = NULL;
	dd_buf_release(&j->bplain);
	free(j->pieces);
	j->pieces = NULL;
	j->npieces = 0;
}

int
dd_snapshot_begin_flags(struct dd_snapshot_writer **out, struct dd_store *st, int flags)
{
	struct dd_snapshot_writer *sw;
	int locked = 0;

	if (flags & ~DD_SNAPSHOT_PRIVATE)
		return dd_error("BUG: unknown snapshot flags %#x", (unsigned)flags);
	/*
	 * A public snapshot lists the store's index files to reuse its objects:
	 * a shared store lock from before that listing until its manifest is
	 * durable, so `gc --store` never removes what it reuses (store-lock.h).
	 * The index files are listed again under the lock, at once: chunks
	 * adopted from the last snapshot (dd_store_adopt_chunk) are judged by
	 * that listing, so a pack a gc removed before the lock is sent again
	 * rather than trusted.
	 */
	if (!(flags & DD_SNAPSHOT_PRIVATE) && (locked = dd_store_lock_shared(st)) < 0)
		return -1;
	if (!(flags & DD_SNAPSHOT_PRIVATE) && dd_store_index_refresh(st) < 0) {
		if (locked)
			dd_store_unlock_shared(st);
		return -1;
	}
	sw = dd_calloc(1, sizeof(*sw));
	sw->st = st;
	sw->flags = flags;
	sw->locked = locked;
	pthread_mutex_init(&sw->mu, NULL);
	dd_packer_begin(st, flags & DD_SNAPSHOT_PRIVATE);
	*out = sw;
	return 0;
}

int
dd_snapshot_begin(struct dd_snapshot_writer **out, struct dd_store *st)
{
	return dd_snapshot_begin_flags(out, st, 0);
}

struct dd_store *
dd_snapshot_writer_store(const struct dd_snapshot_writer *sw)
{
	return sw->st;
}

int
dd_snapshot_writer_flags(const struct dd_snapshot_writer *sw)
{
	return sw->flags;
}

void
dd_snapshot_set_meta(struct dd_snapshot_writer *sw, const char *key, const char *value)
{
	pthread_mutex_lock(&sw->mu);
	dd_kv_set(&sw->m.meta, &sw->m.nmeta, key, value ? value : "");
	pthread_mutex_unlock(&sw->mu);
}

/* Is `name` a stream of this snapshot already, finished or being written? (the caller holds sw->mu) */
static int
name_taken(const struct dd_snapshot_writer *sw, const char *name)
{
	for (size_t i = 0; i < sw->m.nstreams; i++)
		if (!strcmp(sw->m.streams[i].name, name))
			return 1;
	for (size_t i = 0; i < sw->nactive; i++)
		if (!strcmp(sw->active[i], name))
			return 1;
	return 0;
}

int
dd_snapshot_add_stream(struct dd_snapshot_writer *sw, struct dd_stream_info *si)
{
	size_t nl = si->name ? strlen(si->name) : 0;
	int dup;

	if (nl == 0 || nl > DD_NAME_MAX)
		return dd_error("stream name '%.40s' is empty or too long", si->name ? si->name : "");
	pthread_mutex_lock(&sw->mu);
	dup = name_taken(sw, si->name);
	if (!dup) {
		sw->m.streams = dd_realloc(sw->m.streams, (sw->m.nstreams + 1) * sizeof(*sw->m.streams));
		sw->m.streams[sw->m.nstreams++] = *si;
		memset(si, 0, sizeof(*si));
	}
	pthread_mutex_unlock(&sw->mu);
	if (dup)
		return dd_error("stream '%s' written twice in one snapshot", si->name);
	return 0;
}

int
dd_stream_begin(struct dd_stream_writer **out, struct dd_snapshot_writer *sw, const char *name)
{
	struct dd_stream_writer *w;
	size_t nl = strlen(name);
	int dup;

	if (nl == 0 || nl > DD_NAME_MAX)
		return dd_error("stream name '%.40s' is empty or too long", name);
	pthread_mutex_lock(&sw->mu);
	dup = name_taken(sw, name);
	if (!dup) {
		sw->active = dd_realloc(sw->active, (sw->nactive + 1) * sizeof(*sw->active));
		sw->active[sw->nactive++] = dd_strdup(name);
	}
	pthread_mutex_unlock(&sw->mu);
	if (dup)
		return dd_error("stream '%s' written twice in one snapshot", name);
	w = dd_calloc(1, sizeof(*w));
	w->sw = sw;
	w->info.name = dd_strdup(name);
	dd_chunker_init(&w->ch, sw->st->chunker);
	w->prev_at = UINT64_MAX;
	*out = w;
	return 0;
}

void
dd_stream_set_previous(struct dd_stream_writer *w, const struct dd_stream_info *prev)
{
	dd_stream_info_clear(&w->prev);
	dd_stream_info_copy(&w->prev, prev);
	w->prev_at = 0;
	w->nhints = 0;
	free(w->prev_ends);
	w->prev_ends = NULL;
}

void
dd_stream_set_attr(struct dd_stream_writer *w, const char *key, const char *value)
{
	dd_kv_set(&w->info.attrs, &w->info.nattrs, key, value ? value : "");
}

/* Move finished jobs from the head of the FIFO into the chunk list; wait for all when `all`. */
static int
harvest(struct dd_stream_writer *w, int all)
{
	struct dd_pool *pool = w->sw->st->pool;
	int rc = 0;

	while (w->head) {
		struct chunk_job *j = w->head;
		if (all)
			dd_pool_wait(pool, &j->base);
		else if (!dd_pool_is_done(pool, &j->base))
			break;
		w->head = j->next_in_stream;
		if (!w->head)
			w->tail = NULL;
		if (j->err) {
			if (rc == 0)
				rc = dd_error("%s", j->err);
		} else if (rc == 0) {
			if (w->info.nchunks == w->cap_chunks) {
				w->cap_chunks = w->cap_chunks ? 2 * w->cap_chunks : 64;
				w->info.chunks = dd_realloc(w->info.chunks, w->cap_chunks * sizeof(*w->info.chunks));
			}
			memcpy(w->info.chunks[w->info.nchunks].id, j->id, 32);
			w->info.chunks[w->info.nchunks].len = (uint32_t)j->len;
			w->info.nchunks++;
		}
		free(j->err);
		dd_buf_release(&j->bplain);
		free(j->pieces);
		free(j);
	}
	return rc;
}

static void
submit_chunk(struct dd_stream_writer *w)
{
	struct chunk_job *j = dd_calloc(1, sizeof(*j));

	j->base.run = chunk_run;
	j->st = w->sw->st;
	j->w = w;
	j->data = w->buf;
	j->len = w->buflen;
	delta_pick(w, j);
	if (j->has_base && w->splice) { /* the splice read it: a copy spares the job decrypting and decompressing it again */
		const struct dd_buf *bp = dd_splice_plain(w->splice, &w->prev, &j->dbase);
		if (bp)
			dd_buf_put(&j->bplain, bp->ptr, bp->len);
	}
	j->pieces = w->pieces; /* handed over */
	j->npieces = w->npieces;
	w->pieces = NULL;
	w->npieces = w->cap_pieces = 0;
	w->buf = NULL;
	w->buflen = 0;
	if (w->tail)
		w->tail->next_in_stream = j;
	else
		w->head = j;
	w->tail = j;
	dd_pool_submit(w->sw->st->pool, &j->base);
}

/* The chunk being filled gets n bytes from `prev` (DD_PIECE_NEW: new ones) at its offset w->buflen. */
static void
add_piece(struct dd_stream_writer *w, uint64_t prev, size_t n, uint64_t old, uint64_t old_end)
{
	struct dd_delta_piece *l = w->npieces ? &w->pieces[w->npieces - 1] : NULL;

	if (!w->prev.name || !n)
		return;
	if (l && !l->old_end && !old_end && (l->prev == DD_PIECE_NEW ? prev == DD_PIECE_NEW : prev == l->prev + l->len)) {
		l->len += (uint32_t)n;
		return;
	}
	if (w->npieces == w->cap_pieces) {
		w->cap_pieces = w->cap_pieces ? 2 * w->cap_pieces : 64;
		w->pieces = dd_realloc(w->pieces, w->cap_pieces * sizeof(*w->pieces));
	}
	w->pieces[w->npieces].prev = prev;
	w->pieces[w->npieces].at = (uint32_t)w->buflen;
	w->pieces[w->npieces].len = (uint32_t)n;
	w->pieces[w->npieces].old = old;
	w->pieces[w->npieces].old_end = old_end;
	w->npieces++;
}

/*
 * Chunk bytes p[0..len) (from the previous version at `prev`, or new:
 * DD_PIECE_NEW) up to and including the first cut: *used bytes taken, *cut
 * 1 when they ended a chunk.
 */
static int
feed(struct dd_stream_writer *w, const uint8_t *p, size_t len, uint64_t prev, size_t *used, int *cut)
{
	size_t n = dd_chunker_scan(&w->ch, p, len, cut);

	if (!w->buf)
		w->buf = dd_store_chunkbuf_get(w->sw->st);
	add_piece(w, prev, n, w->old, w->old_end);
	if (w->old_end)
		w->old += n; /* the rest of new bytes lines up with the rest of the old ones, or nearly */
	memcpy(w->buf + w->buflen, p, n);
	w->buflen += n;
	w->info.size += n;
	*used = n;
	if (*cut) {
		submit_chunk(w);
		if (harvest(w, 0) < 0)
			return -1;
	}
	return 0;
}

static int
check_failed(struct dd_stream_writer *w)
{
	if (atomic_load(&w->failed))
		return harvest(w, 1) < 0 ? -1 : failed(w, " earlier");
	return 0;
}

int
dd_stream_write_replacing(struct dd_stream_writer *w, const void *data, size_t len, uint64_t old, uint64_t old_len)
{
	int r;

	w->old = old;
	w->old_end = old_len ? old + old_len : 0;
	r = dd_stream_write(w, data, len);
	w->old = w->old_end = 0;
	return r;
}

int
dd_stream_write(struct dd_stream_writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (check_failed(w) < 0)
		return -1;
	while (len) {
		size_t n;
		int cut;
		if (feed(w, p, len, DD_PIECE_NEW, &n, &cut) < 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * ---- splicing (splice.c) ----
 * The previous stream's bytes go through feed() like new ones; a whole
 * previous chunk taken by reference becomes a FIFO entry that is already
 * done (no data, no pool job), so harvest() keeps the chunk list in stream
 * order with the jobs still in flight.
 */
struct dd_splice **
dd_stream_splice(struct dd_stream_writer *w)
{
	return &w->splice;
}

const struct dd_stream_info *
dd_stream_previous(const struct dd_stream_writer *w)
{
	return w->prev.name ? &w->prev : NULL;
}

struct dd_snapshot_writer *
dd_stream_snapshot_writer(const struct dd_stream_writer *w)
{
	return w->sw;
}

int
dd_stream_at_cut(const struct dd_stream_writer *w)
{
	return w->buflen == 0;
}

uint64_t
dd_stream_prev_at(const struct dd_stream_writer *w)
{
	return w->prev_at;
}

int
dd_stream_feed_previous(struct dd_stream_writer *w, const uint8_t *p, size_t len, uint64_t off, size_t *used)
{
	int cut;

	if (check_failed(w) < 0)
		return -1;
	/*
	 * The chunk starts with these bytes: exact. Else keep the alignment of
	 * its start (exact while its bytes so far came from here in a row; an
	 * estimate after new bytes, which do not move it) or, when there is
	 * none, align these bytes with where they came from.
	 */
	w->nhints = 0; /* exact from here: the hints of earlier rows are stale */
	if (w->buflen == 0)
		w->prev_at = off;
	else if (w->prev_at == UINT64_MAX)
		w->prev_at = off >= w->buflen ? off - w->buflen : 0;
	if (feed(w, p, len, off, used, &cut) < 0)
		return -1;
	if (cut)
		w->prev_at = off + *used;
	return 0;
}

int
dd_stream_append_ref(struct dd_stream_writer *w, const struct dd_chunk_ref *ref, uint64_t prev_end)
{
	struct chunk_job *j;

	if (check_failed(w) < 0)
		return -1;
	if (w->buflen)
		return dd_error("BUG: a chunk by reference in the middle of a chunk");
	j = dd_calloc(1, sizeof(*j));
	j->base.done = 1; /* never submitted: harvest() takes it as finished */
	j->st = w->sw->st;
	j->w = w;
	memcpy(j->id, ref->id, 32);
	j->len = ref->len;
	if (w->tail)
		w->tail->next_in_stream = j;
	else
		w->head = j;
	w->tail = j;
	w->info.size += ref->len;
	w->prev_at = prev_end;
	w->nhints = 0;
	return harvest(w, 0);
}

static void
unregister(struct dd_snapshot_writer *sw, const char *name)
{
	if (!name)
		return; /* detached content: never registered */
	for (size_t i = 0; i < sw->nactive; i++) {
		if (!strcmp(sw->active[i], name)) {
			free(sw->active[i]);
			sw->active[i] = sw->active[--sw->nactive];
			break;
		}
	}
}

static void
stream_free(struct dd_stream_writer *w)
{
	dd_stream_info_clear(&w->info);
	dd_stream_info_clear(&w->prev);
	dd_splice_free(w->splice);
	free(w->prev_ends);
	free(w->pieces);
	dd_store_chunkbuf_put(w->sw->st, w->buf);
	free(w);
}

/* Store the last chunk, wait for every chunk, and compute the checksum: the content is complete. */
static int
stream_finish(struct dd_stream_writer *w)
{
	int rc;

	if (w->buflen && !atomic_load(&w->failed))
		submit_chunk(w);
	rc = harvest(w, 1);
	if (rc == 0 && atomic_load(&w->failed))
		rc = failed(w, "");
	dd_stream_checksum(w->info.checksum, w->sw->st->keys, &w->info);
	return rc;
}

int
dd_stream_end(struct dd_stream_writer *w)
{
	struct dd_snapshot_writer *sw = w->sw;
	int rc = stream_finish(w);

	pthread_mutex_lock(&sw->mu);
	unregister(sw, w->info.name);
	if (rc == 0) {
		sw->m.streams = dd_realloc(sw->m.streams, (sw->m.nstreams + 1) * sizeof(*sw->m.streams));
		sw->m.streams[sw->m.nstreams++] = w->info;
		memset(&w->info, 0, sizeof(w->info));
	}
	pthread_mutex_unlock(&sw->mu);
	if (rc < 0)
		dd_error_wrap("writing stream '%s'", w->info.name);
	stream_free(w);
	return rc;
}

int
dd_content_begin(struct dd_stream_writer **out, struct dd_snapshot_writer *sw)
{
	struct dd_stream_writer *w = dd_calloc(1, sizeof(*w));

	w->sw = sw;
	dd_chunker_init(&w->ch, sw->st->chunker);
	w->prev_at = UINT64_MAX;
	*out = w;
	return 0;
}

int
dd_content_end(struct dd_stream_writer *w, struct dd_stream_info *info)
{
	int rc = stream_finish(w);

	if (rc == 0) {
		info->size = w->info.size;
		memcpy(info->checksum, w->info.checksum, 32);
		info->chunks = w->info.chunks;
		info->nchunks = w->info.nchunks;
		w->info.chunks = NULL;
		w->info.nchunks = 0;
	}
	stream_free(w);
	return rc;
}

/*
 * The caller's error (what made it abort) is kept: the chunks' own
 * failures, collected while waiting for them, do not replace it.
 */
void
dd_stream_abort(struct dd_stream_writer *w)
{
	struct dd_error_saved why;

	if (!w)
		return;
	dd_error_save(&why);
	atomic_store(&w->failed, 1);
	harvest(w, 1);
	pthread_mutex_lock(&w->sw->mu);
	unregister(w->sw, w->info.name);
	pthread_mutex_unlock(&w->sw->mu);
	stream_free(w);
	dd_error_restore(&why);
}

static void
snapshot_writer_free(struct dd_snapshot_writer *sw)
{
	if (sw->locked)
		dd_store_unlock_shared(sw->st); /* only the count this writer took */
	for (size_t i = 0; i < sw->nactive; i++)
		free(sw->active[i]);
	free(sw->active);
	for (size_t i = 0; i < sw->m.nstreams; i++)
		dd_stream_info_clear(&sw->m.streams[i]);
	free(sw->m.streams);
	dd_kv_free(sw->m.meta, sw->m.nmeta);
	pthread_mutex_destroy(&sw->mu);
	free(sw);
}

/*
 * A private snapshot: its packs and index file durable in the cache, then
 * the sealed manifest in <cache>/private/ (never the store). 0, DD_EXISTS, -1.
 */
static int
commit_private(struct dd_store *st, const uint8_t id[32], const struct dd_buf *enc)
{
	struct dd_buf obj = DD_BUF_INIT;
	int rc = -1;

	if (dd_packer_flush_private(st) < 0 || st->cache->ops->sync(st->cache) < 0)
		goto out;
	if (dd_store_seal(st, &obj, DD_OBJ_MANIFEST, id, enc->ptr, enc->len, NULL) < 0)
		goto out;
	rc = dd_store_private_put(st, id, &obj);
out:
	dd_buf_release(&obj);
	return rc;
}

int
dd_snapshot_commit(struct dd_snapshot_writer *sw, char id_hex[DD_ID_HEX_SIZE])
{
	struct dd_store *st = sw->st;
	struct dd_buf enc = DD_BUF_INIT;
	uint8_t id[32];
	size_t content_len;
	int rc = -1, existed;

	if (sw->nactive) {
		dd_error("stream '%s' is still being written", sw->active[0]);
		goto out;
	}
	dd_manifest_sort(&sw->m);
	if (dd_manifest_encode(&enc, &content_len, &sw->m) < 0)
		goto out;
	dd_id_compute(id, st->keys, enc.ptr, content_len);
	dd_hex_encode(id_hex, id, 32);
	if (sw->flags & DD_SNAPSHOT_PRIVATE) {
		rc = commit_private(st, id, &enc);
		goto out;
	}
	/* every chunk must be durable before the manifest that names it */
	if (dd_store_sync(st) < 0)
		goto out;
	/* and in the store: a cache pack an earlier unpushed snapshot wrote goes up too (its bases' as well) */
	if (dd_store_need_manifest_files(st, &sw->m, id_hex) < 0 || dd_packer_flush(st) < 0)
		goto out;
	/* a lock another process removed as stale protected nothing: gc may have removed what this one reuses */
	if (dd_store_lock_check(st) < 0)
		goto out;
	if (dd_store_put_object(st, DD_OBJ_MANIFEST, id, enc.ptr, enc.len, NULL, NULL, &existed) < 0)
		goto out;
	if (dd_store_sync(st) < 0)
		goto out;
	rc = existed ? DD_EXISTS : 0;
out:
	if (rc < 0)
		dd_error_wrap("writing the snapshot manifest");
	dd_buf_release(&enc);
	snapshot_writer_free(sw);
	return rc;
}

void
dd_snapshot_abort(struct dd_snapshot_writer *sw)
{
	if (sw)
		snapshot_writer_free(sw);
}
