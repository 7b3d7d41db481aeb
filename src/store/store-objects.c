/*
 * store/store-objects.c: the object path shared by writers and readers
 * (cache first, then backend) and listing snapshots; see store.h,
 * internal.h and docs/FORMAT.md §3-§4.
 *
 * Data objects live in packs (packer.c writes them); manifests stay single
 * objects. A read tries the cache (a loose object, or the object's bytes
 * in a cache pack, found with the index map), then the store (one ranged
 * read of the pack the index names; the object then joins the cache as a
 * loose object), then a loose object of a store written before packs.
 *
 * Invariants: a file is in the cache before it is in the backend (so the
 * backend copy can be a hard link of the cache copy, through the cache's
 * local_path()); packs and their index file are durable (sync) before any
 * manifest naming their objects is written; nothing is ever overwritten in
 * place. A backend whose exists() is not a cheap local stat is asked about
 * a manifest or index file only when the known-objects record (known.c)
 * does not already say it holds it; what it confirms joins the record
 * after its next sync. When the backend answers DD_EUNREACHABLE the store
 * stops talking to it for the rest of the run (dd_store_gone) and the work
 * completes in the cache, for a later push.
 */
#include "store/internal.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

const char *
dd_store_type_dir(int type)
{
	return type == DD_OBJ_MANIFEST ? "snapshots" : type == DD_OBJ_INDEX ? "index" : "data";
}

int
dd_store_live(struct dd_store *st)
{
	return st->be && !atomic_load(&st->unreachable);
}

int
dd_store_gone(struct dd_store *st, int r)
{
	if (r != DD_EUNREACHABLE)
		return 0;
	if (!atomic_exchange(&st->unreachable, 1)) {
		struct dd_error_saved *why = dd_calloc(1, sizeof(*why));
		dd_debug("the store %s cannot be reached (%s): finishing in the local cache", st->url,
			 dd_error_last() ? dd_error_last() : "unreachable");
		dd_error_save(why);
		atomic_store(&st->gone_why, why);
	}
	dd_error_clear();
	return 1;
}

int
dd_store_unreachable_error(struct dd_store *st, const char *context)
{
	struct dd_error_saved *why = atomic_load(&st->gone_why);

	if (why && why->msg) {
		if (context)
			dd_error("%s: %s", context, why->msg);
		else
			dd_error("%s", why->msg);
		if (why->hint)
			dd_hint("%s", why->hint);
		return -1;
	}
	if (context)
		dd_error("%s and the store %s cannot be reached", context, st->url);
	else
		dd_error("the store %s cannot be reached", st->url);
	dd_hint("check the network and the store's settings, then run the command again (nothing was lost)");
	return -1;
}

void
dd_store_offline_because(struct dd_store *st, const struct dd_error_saved *why)
{
	struct dd_error_saved *copy;

	if (!why->msg || atomic_load(&st->gone_why))
		return;
	copy = dd_calloc(1, sizeof(*copy));
	copy->msg = dd_strdup(why->msg);
	copy->hint = why->hint ? dd_strdup(why->hint) : NULL;
	atomic_store(&st->gone_why, copy);
}

int
dd_store_known(struct dd_store *st, const char *name)
{
	return st->known && dd_known_has(st->known, name);
}

void
dd_store_confirmed(struct dd_store *st, const char *name)
{
	if (st->known)
		dd_known_add(st->known, name);
}

/* Upload the cache's copy of `name`: 0, DD_EXISTS (the backend had it), DD_EUNREACHABLE, -1. */
static int
upload(struct dd_store *st, const char *name)
{
	char *cpath = st->cache->ops->local_path(st->cache, name);
	int r;

	atomic_fetch_add(&st->requests, 1);
	r = st->be->ops->put_file(st->be, name, cpath);
	free(cpath);
	if (dd_store_gone(st, r))
		return DD_EUNREACHABLE;
	if (r < 0)
		return dd_error_wrap("storing %s in %s", name, st->url);
	dd_store_confirmed(st, name);
	return r;
}

/* A manifest (or any single object): cache, then the backend; the old per-object path. */
static int
put_single(struct dd_store *st, int type, const uint8_t id[32], const void *plain, size_t len, ZSTD_CCtx *zc,
	   struct dd_buf *obj, int *existed)
{
	char name[DD_OBJECT_NAME_SIZE];
	int rc = -1, in_cache, in_be = 0;

	dd_object_name(name, sizeof(name), dd_store_type_dir(type), id);
	/*
	 * An object already there may be another process's write that is not
	 * durable yet: sync_later() puts it in the same sync() batch as a fresh
	 * write, so no manifest becomes durable before the objects it names.
	 * (A name in the known-objects record was durable when it was recorded.)
	 */
	in_cache = st->cache->ops->exists(st->cache, name);
	if (in_cache < 0)
		return -1;
	if (in_cache)
		st->cache->ops->sync_later(st->cache, name);
	if (dd_store_live(st) && dd_store_known(st, name)) {
		in_be = 1;
	} else if (dd_store_live(st) && in_cache) {
		atomic_fetch_add(&st->requests, 1);
		in_be = st->be->ops->exists(st->be, name);
		if (dd_store_gone(st, in_be))
			in_be = 0;
		else if (in_be < 0)
			return -1;
		else if (in_be) {
			st->be->ops->sync_later(st->be, name);
			dd_store_confirmed(st, name);
		}
	}
	if (!in_cache) {
		if (dd_store_seal(st, obj, type, id, plain, len, zc) < 0)
			return -1;
		if (st->cache->ops->put(st->cache, name, obj->ptr, obj->len) < 0)
			return dd_error_wrap("writing %s to the cache", name);
	}
	if (!dd_store_live(st) || in_be) {
		*existed = dd_store_live(st) ? 1 : in_cache;
		return 0;
	}
	rc = upload(st, name);
	if (rc == DD_EUNREACHABLE) {
		*existed = in_cache;
		return 0;
	}
	if (rc < 0)
		return -1;
	*existed = rc == DD_EXISTS;
	return 0;
}

/*
 * A loose object of a store written before packs (data/<2 hex>/<id>): does
 * the store (the cache when offline) hold it? Asked only where that is
 * cheap: a local stat, or the known-objects record.
 */
static int
legacy_present(struct dd_store *st, const uint8_t id[32])
{
	char name[DD_OBJECT_NAME_SIZE];
	int r;

	dd_object_name(name, sizeof(name), "data", id);
	if (!st->be)
		return st->cache->ops->exists(st->cache, name) == 1;
	if (!dd_store_live(st))
		return 0;
	if (dd_store_known(st, name))
		return 1;
	if (!(st->be->ops->caps & DD_BACKEND_CHEAP_EXISTS))
		return 0;
	r = st->be->ops->exists(st->be, name) == 1;
	if (r)
		st->be->ops->sync_later(st->be, name);
	return r;
}

/*
 * A live writer is about to name chunk `id` (reused, carried over, or a
 * delta's base): flag for this run's push the index file of every ready
 * pack holding it that the store is not known to hold (a cache pack
 * written offline, or by an unpushed snapshot), and the same down its
 * chain of delta bases, so the manifest never reaches the store before
 * what it needs.
 */
static void
need_chunk_files(struct dd_store *st, const uint8_t id[32])
{
	struct dd_midx_hit hits[DD_MIDX_MAX_PLACES];
	struct dd_delta_ref d;
	uint8_t cur[32];

	if (!dd_store_live(st))
		return;
	memcpy(cur, id, 32);
	for (int depth = 0; depth <= DD_DELTA_DEPTH_MAX; depth++) {
		size_t n = dd_midx_find_all(st->idx, cur, 0, hits, DD_MIDX_MAX_PLACES);

		for (size_t i = 0; i < n; i++) {
			struct dd_midx_pack mp = dd_midx_pack_get(st->idx, hits[i].pack);
			if (mp.state == DD_MIDX_READY && !mp.in_store && mp.file != DD_MIDX_NONE)
				dd_packer_need_file(st, mp.file);
		}
		if (!dd_midx_delta_of(st->idx, cur, 0, &d))
			return;
		memcpy(cur, d.base, 32);
	}
}

static int
need_chunk(const struct dd_chunk_ref *ref, const char *stream, void *arg)
{
	(void)stream;
	need_chunk_files(arg, ref->id);
	return 0;
}

int
dd_store_need_manifest_files(struct dd_store *st, struct dd_manifest *m, const char *id_hex)
{
	struct dd_snapshot s = { .m = m };

	if (!dd_store_live(st))
		return 0;
	memcpy(s.id, id_hex, sizeof(s.id));
	/* streams' chunks only: a listing read here could fail the commit (reused entries: dd_store_adopt_chunk) */
	return dd_snapshot_each_chunk_flags(st, &s, DD_EACH_STREAMS, need_chunk, st) == 0 ? 0 : -1;
}

/* A data object: reused when some pack (or a legacy loose object) has it, else into the open pack. */
static int
put_packed(struct dd_store *st, const uint8_t id[32], const void *plain, size_t len, ZSTD_CCtx *zc,
	   struct dd_buf *obj, int *existed)
{
	struct dd_midx_hit hit;

	if (dd_store_index_refresh(st) < 0)
		return -1;
	if (dd_midx_find(st->idx, id, 1, &hit)) {
		need_chunk_files(st, id); /* cache packs the store lacks, the delta bases' too: push them now */
		*existed = 1;
		return 0;
	}
	if (legacy_present(st, id)) {
		*existed = 1;
		return 0;
	}
	if (dd_store_seal(st, obj, DD_OBJ_DATA, id, plain, len, zc) < 0)
		return -1;
	return dd_packer_add(st, id, DD_OBJ_DATA, obj, existed, 0);
}

/*
 * The delta base a read of one object found unreadable: its other places
 * that are deltas against it are not tried (they would fail the same way);
 * full objects, and deltas against another base, still are.
 */
struct base_skip {
	int set;
	uint8_t id[32];
};

static int get_from_cache_pack(struct dd_store *st, const uint8_t id[32], const char *name, size_t max_plain,
			       struct dd_buf *plain, ZSTD_DCtx *zd, struct dd_buf *obj, struct base_skip *skip, int *quiet);
static int legacy_present(struct dd_store *st, const uint8_t id[32]);

/*
 * The size of the full object at the root of `id`'s delta chain (`id`'s
 * own when it is one), 0 when the chain leaves the map or is longer than
 * a writer makes it.
 */
static size_t
chain_root_full(struct dd_store *st, const uint8_t id[32])
{
	struct dd_delta_ref d;
	struct dd_midx_hit hit;
	uint8_t cur[32];

	memcpy(cur, id, 32);
	for (int i = 0; i <= DD_DELTA_DEPTH_WRITE; i++) {
		if (!dd_midx_delta_of(st->idx, cur, 0, &d)) /* every place of cur is a full object */
			return dd_midx_find(st->idx, cur, 0, &hit) && hit.type == DD_OBJ_DATA ? hit.len : 0;
		memcpy(cur, d.base, 32);
	}
	return 0;
}

/*
 * The delta of plain against base `b` (its plaintext read from the cache),
 * sealed into `obj`, with its ref in *d: 1 when made (its chain within
 * DD_DELTA_DEPTH_WRITE), 0 when not possible (no error), -1. *bfull: the
 * size of the full object at the root of the base's chain (the base's own
 * when it is a full one: an estimate of this chunk's full object), 0 when
 * not known. Without it a delta of a delta (a second change of the same
 * rows) sealed the full object too, a compression per chunk, to compare.
 */
static int
seal_delta(struct dd_store *st, const uint8_t id[32], const void *plain, size_t len, const struct dd_chunk_ref *b,
	   const struct dd_buf *given, const struct dd_delta_plan *plan, ZSTD_CCtx *zc, ZSTD_DCtx *zd,
	   struct dd_buf *obj, struct dd_delta_ref *d, size_t *bfull)
{
	struct dd_buf bplain = DD_BUF_INIT;
	const struct dd_buf *base = &bplain;
	struct dd_delta_ref bd;
	struct dd_midx_hit hit;
	int r = 0;

	memset(d, 0, sizeof(*d));
	*bfull = 0;
	if (!memcmp(b->id, id, 32) || !dd_midx_find(st->idx, b->id, 0, &hit))
		return 0; /* the base must be in a ready pack (another run's, or this one's finished) */
	*bfull = hit.type == DD_OBJ_DATA ? hit.len : chain_root_full(st, b->id);
	d->depth = (uint8_t)((dd_midx_delta_of(st->idx, b->id, 0, &bd) ? bd.depth : 0) + 1);
	if (d->depth > DD_DELTA_DEPTH_WRITE)
		return 0; /* a full object every DD_DELTA_DEPTH_WRITE + 1 generations */
	if (given && given->len == b->len) {
		/* read by the caller from the cache: its AEAD tag checked, its id not recomputed (FORMAT §8) */
		base = given;
	} else if (dd_store_get_cached(st, b->id, b->len, &bplain, zd) != 0 || bplain.len != b->len) {
		dd_error_clear(); /* not in the cache: no delta (never a request for a base while writing) */
		goto out;
	}
	memcpy(d->base, b->id, 32);
	d->base_len = b->len;
	r = dd_object_seal_delta_plan(obj, st->keys, id, b->id, base->ptr, base->len, plain, len, zc, st->zlevel,
				      plan) < 0 ? -1 : 1;
out:
	dd_buf_release(&bplain);
	return r;
}

int
dd_store_put_data_delta(struct dd_store *st, const uint8_t id[32], const void *plain, size_t len,
			const struct dd_chunk_ref *base, const struct dd_buf *bplain, const struct dd_delta_plan *plan,
			ZSTD_CCtx *zc, ZSTD_DCtx *zd, struct dd_buf *scratch, int *existed)
{
	struct dd_buf full = DD_BUF_INIT, own = DD_BUF_INIT, *obj = scratch ? scratch : &own;
	struct dd_delta_ref d;
	struct dd_midx_hit hit;
	size_t bfull;
	int rc, r;

	*existed = 0;
	if (dd_store_index_refresh(st) < 0)
		return -1;
	if (dd_midx_find(st->idx, id, 1, &hit) || legacy_present(st, id)) {
		rc = put_packed(st, id, plain, len, zc, obj, existed); /* what it does with an object it has */
		goto out;
	}
	r = seal_delta(st, id, plain, len, base, bplain, plan, zc, zd, obj, &d, &bfull);
	if (r < 0) {
		rc = -1;
		goto out;
	}
	/*
	 * A delta under half its base's full object (the same data but for a
	 * few changes), or under 1/1024 of its plaintext, is kept without
	 * sealing the full object to compare: a compression saved per chunk.
	 */
	if (r == 0 || (4 * obj->len >= bfull && obj->len * 1024 > len)) {
		if (dd_store_seal(st, &full, DD_OBJ_DATA, id, plain, len, zc) < 0) {
			rc = -1;
			goto out;
		}
		if (r == 1 && 2 * obj->len >= full.len)
			r = 0; /* not clearly smaller than the full object */
	}
	if (r == 1) {
		need_chunk_files(st, d.base); /* the base may sit in a cache pack the store lacks */
		rc = dd_packer_add_delta(st, id, DD_OBJ_DELTA, &d, obj, existed, 0);
	}
	else
		rc = dd_packer_add(st, id, DD_OBJ_DATA, &full, existed, 0);
out:
	dd_buf_release(&full);
	dd_buf_release(&own);
	return rc;
}

int
dd_store_adopt_chunk(struct dd_store *st, const struct dd_chunk_ref *ref, int priv)
{
	struct dd_midx_hit hit;
	struct dd_buf plain = DD_BUF_INIT, obj = DD_BUF_INIT;
	char name[DD_OBJECT_NAME_SIZE];
	int rc, existed;

	if (dd_store_index_load(st) < 0 || dd_store_private_index_load(st) < 0)
		return -1;
	/* what this writer's own put would reuse (dd_store_put_private, put_packed): kept as it is */
	if (dd_midx_find(st->idx, ref->id, !priv, &hit)) {
		if (!priv)
			need_chunk_files(st, ref->id); /* carried over from a cache pack the store may lack */
		return 0; /* in a public pack */
	}
	if (priv && dd_midx_find(st->pidx, ref->id, 1, &hit))
		return 0; /* (for a private writer) in one of this run's private packs */
	dd_object_name(name, sizeof(name), "data", ref->id);
	if (priv ? st->cache->ops->exists(st->cache, name) == 1 : legacy_present(st, ref->id))
		return 0; /* a loose object of a store written before packs */
	if (!dd_midx_find(st->pidx, ref->id, 1, &hit) && !dd_midx_find(st->opidx, ref->id, 0, &hit))
		goto gone; /* no pack this store or cache holds has it: the entry would name nothing */
	/* from the private pack in the cache alone: the store never holds it, so never asked for it */
	rc = get_from_cache_pack(st, ref->id, name, ref->len, &plain, NULL, &obj, &(struct base_skip){ 0 }, NULL);
	dd_buf_release(&obj);
	if (rc == 0 && plain.len != ref->len)
		rc = dd_error("a private copy of a chunk differs in length from its entry");
	if (rc == 0 && priv)
		rc = dd_store_put_private(st, ref->id, plain.ptr, plain.len, NULL, NULL, &existed);
	else if (rc == 0)
		rc = dd_store_put_object(st, DD_OBJ_DATA, ref->id, plain.ptr, plain.len, NULL, NULL, &existed);
	dd_buf_release(&plain);
	if (rc == DD_NOTFOUND) /* the private pack went since its index file was read (a gc) */
		goto gone;
	return rc == 0 ? 0 : -1;
gone:
	dd_error("chunk %s is in no pack of this store or its cache", name + 5);
	return DD_NOTFOUND;
}

int
dd_store_put_private(struct dd_store *st, const uint8_t id[32], const void *plain, size_t len, ZSTD_CCtx *zc,
		     struct dd_buf *scratch, int *existed)
{
	struct dd_buf own = DD_BUF_INIT, *obj = scratch ? scratch : &own;
	struct dd_midx_hit hit;
	char name[DD_OBJECT_NAME_SIZE];
	int rc = 0;

	*existed = 0;
	if (dd_store_index_load(st) < 0)
		return -1;
	/*
	 * Public objects in ready packs only (a concurrent public writer's open
	 * pack may still fail), and this run's private packs: never an older
	 * private pack, which gc may take once no private manifest needs it.
	 */
	dd_object_name(name, sizeof(name), "data", id);
	if (dd_midx_find(st->idx, id, 0, &hit) || dd_midx_find(st->pidx, id, 1, &hit) ||
	    st->cache->ops->exists(st->cache, name) == 1) {
		*existed = 1;
		return 0;
	}
	if (dd_store_seal(st, obj, DD_OBJ_DATA, id, plain, len, zc) < 0)
		rc = -1;
	else
		rc = dd_packer_add(st, id, DD_OBJ_DATA, obj, existed, 1);
	dd_buf_release(&own);
	return rc;
}

int
dd_store_seal(struct dd_store *st, struct dd_buf *out, int type, const uint8_t id[32], const void *plain,
	      size_t len, ZSTD_CCtx *zc)
{
	return dd_object_seal_level(out, st->keys, type, id, plain, len, zc, st->zlevel);
}

int
dd_store_put_object(struct dd_store *st, int type, const uint8_t id[32], const void *plain, size_t len,
		    ZSTD_CCtx *zc, struct dd_buf *scratch, int *existed)
{
	struct dd_buf own = DD_BUF_INIT, *obj = scratch ? scratch : &own;
	int rc;

	*existed = 0;
	if (type == DD_OBJ_DATA)
		rc = put_packed(st, id, plain, len, zc, obj, existed);
	else
		rc = put_single(st, type, id, plain, len, zc, obj, existed);
	dd_buf_release(&own);
	return rc;
}

uint8_t *
dd_store_chunkbuf_get(struct dd_store *st)
{
	uint8_t *b = NULL;

	pthread_mutex_lock(&st->bufmu);
	if (st->nfree)
		b = st->freebufs[--st->nfree];
	pthread_mutex_unlock(&st->bufmu);
	return b ? b : dd_malloc(st->chunker->max);
}

void
dd_store_chunkbuf_put(struct dd_store *st, uint8_t *buf)
{
	if (!buf)
		return;
	pthread_mutex_lock(&st->bufmu);
	if (st->nfree < st->maxfree) {
		st->freebufs[st->nfree++] = buf;
		buf = NULL;
	}
	pthread_mutex_unlock(&st->bufmu);
	free(buf);
}

/*
 * Delta objects (FORMAT.md §4.3). Opening one opens its base first (the
 * same way, so a chain is followed base by base): delta_depth counts the
 * bases this thread is opening, bounded by DD_DELTA_DEPTH_MAX whatever the
 * index files say (a hostile one could make a cycle). cache_only: a
 * writer's base is read from the cache or not at all (no request).
 */
static _Thread_local int delta_depth, cache_only;
/*
 * trust_cache: copies read from this machine's cache are opened without
 * recomputing their ids (dd_object_trust_ids); the store's never are.
 */
static _Thread_local int trust_cache;
/*
 * The last open_data() failed for want of a base (missing, unreadable, or
 * the chain too long), not because the object is damaged: its other
 * copies would fail the same way (the base read tried every place), so
 * callers stop there instead of trying them, which down a chain would
 * multiply the reads at every level.
 */
static _Thread_local int base_failed;
static _Thread_local uint8_t failed_base[32]; /* when base_failed: the base that could not be read */

/* Is place `h` a delta against the base `skip` holds? */
static int
skipped_place(const struct dd_midx_hit *h, const struct base_skip *skip)
{
	return skip->set && h->type == DD_OBJ_DELTA && !memcmp(h->d.base, skip->id, 32);
}

/* The last open_data() failed on its base: remember which (the first such base of this read). */
static void
skip_failed_base(struct base_skip *skip)
{
	if (!skip->set) {
		skip->set = 1;
		memcpy(skip->id, failed_base, 32);
	}
}

/* The base of data object `id` when some place of it is a delta: 1 (*d filled), else 0. */
static int
delta_of(struct dd_store *st, const uint8_t id[32], struct dd_delta_ref *d)
{
	struct dd_midx *maps[3] = { st->idx, st->pidx, st->opidx };

	for (size_t m = 0; m < 3; m++)
		if (maps[m] && dd_midx_delta_of(maps[m], id, 1, d))
			return 1;
	return 0;
}

int
dd_store_delta_of(struct dd_store *st, const uint8_t id[32], struct dd_delta_ref *d)
{
	return delta_of(st, id, d);
}

/* Open delta object `obj` (id `id`) against its base d->base, which is opened first. */
static int
open_delta(struct dd_store *st, const struct dd_delta_ref *d, const uint8_t id[32], const struct dd_buf *obj,
	   size_t max_plain, struct dd_buf *plain, ZSTD_DCtx *zd)
{
	struct dd_buf base = DD_BUF_INIT;
	char hex[DD_ID_HEX_SIZE];
	int r;

	dd_hex_encode(hex, d->base, 32);
	if (delta_depth >= DD_DELTA_DEPTH_MAX) {
		base_failed = 1;
		memcpy(failed_base, d->base, 32);
		return dd_error("damaged (a chain of more than %d delta objects)", DD_DELTA_DEPTH_MAX);
	}
	delta_depth++;
	r = dd_store_get_object(st, DD_OBJ_DATA, d->base, d->base_len, &base, zd);
	delta_depth--;
	if (r == 0 && base.len != d->base_len)
		r = dd_error("its delta base %s is damaged (%zu bytes where its index entry says %u)", hex, base.len,
			     d->base_len);
	else if (r != 0 && base_failed)
		; /* a base further down the chain failed: its error names it */
	else if (r != 0) {
		char *why = dd_strdup(dd_error_last() ? dd_error_last() : "unreadable"); /* dd_error() reuses its buffer */
		dd_error("its delta base %s is %s (%s)", hex, r == DD_NOTFOUND ? "missing" : "damaged or cannot be read",
			 why);
		free(why);
	}
	if (r != 0) {
		base_failed = 1;
		memcpy(failed_base, d->base, 32);
	} else
		r = dd_object_open_delta(plain, st->keys, id, d->base, base.ptr, base.len, obj->ptr, obj->len,
					 max_plain, zd);
	dd_buf_release(&base);
	return r == 0 ? 0 : -1;
}

/*
 * Open data object `obj` as `id`: a full object, or a delta against the
 * base it names (which its place `d`, when known from an index file, must
 * name too).
 */
static int
open_data(struct dd_store *st, const struct dd_delta_ref *d, const uint8_t id[32], const struct dd_buf *obj,
	  size_t max_plain, struct dd_buf *plain, ZSTD_DCtx *zd)
{
	struct dd_delta_ref inside;
	struct dd_buf scratch = DD_BUF_INIT;
	int r;

	base_failed = 0;
	if (dd_object_peek_type(obj->ptr, obj->len) != DD_OBJ_DELTA)
		return dd_object_open(plain, st->keys, DD_OBJ_DATA, id, obj->ptr, obj->len, max_plain, zd);
	r = dd_object_delta_base(st->keys, DD_OBJ_DELTA, id, obj->ptr, obj->len, &scratch, &inside);
	dd_buf_release(&scratch);
	if (r < 0)
		return -1;
	if (d && (memcmp(d->base, inside.base, 32) || d->base_len != inside.base_len))
		return dd_error("damaged (its index entry names another delta base than the object)");
	return open_delta(st, &inside, id, obj, max_plain, plain, zd);
}

/* open_data for a copy from this machine's cache: its id recomputed unless trust_cache. */
static int
open_cached(struct dd_store *st, const struct dd_delta_ref *d, const uint8_t id[32], const struct dd_buf *obj,
	    size_t max_plain, struct dd_buf *plain, ZSTD_DCtx *zd)
{
	int trusted = dd_object_trust_ids(trust_cache), r;

	r = open_data(st, d, id, obj, max_plain, plain, zd);
	dd_object_trust_ids(trusted);
	return r;
}

/* Authenticate data object `p` (a full object or a delta) without opening it. */
static int
check_data(struct dd_store *st, const uint8_t id[32], const void *p, size_t len, struct dd_buf *scratch)
{
	int type = dd_object_peek_type(p, len) == DD_OBJ_DELTA ? DD_OBJ_DELTA : DD_OBJ_DATA;

	return dd_object_check(st->keys, type, id, p, len, scratch);
}

int
dd_store_get_cached(struct dd_store *st, const uint8_t id[32], size_t max_plain, struct dd_buf *plain,
		    ZSTD_DCtx *zd)
{
	int was = cache_only, trusted = trust_cache, r;

	cache_only = trust_cache = 1;
	r = dd_store_get_object(st, DD_OBJ_DATA, id, max_plain, plain, zd);
	cache_only = was;
	trust_cache = trusted;
	return r;
}

int
dd_store_get_previous(struct dd_store *st, const uint8_t id[32], size_t max_plain, struct dd_buf *plain,
		      ZSTD_DCtx *zd)
{
	int trusted = trust_cache, r;

	trust_cache = 1;
	r = dd_store_get_object(st, DD_OBJ_DATA, id, max_plain, plain, zd);
	trust_cache = trusted;
	return r;
}

/* Open `obj` as object `id` (`d`: a data object's place is a delta); on failure, a replaced store explains it better than "damaged". */
static int
open_from_store(struct dd_store *st, int type, const uint8_t id[32], const struct dd_delta_ref *d,
		const struct dd_buf *obj, size_t max_plain, struct dd_buf *plain, ZSTD_DCtx *zd)
{
	struct dd_error_saved why;
	int trusted = dd_object_trust_ids(0), r;

	r = type == DD_OBJ_DATA ? open_data(st, d, id, obj, max_plain, plain, zd)
				: dd_object_open(plain, st->keys, type, id, obj->ptr, obj->len, max_plain, zd);
	dd_object_trust_ids(trusted);
	if (r == 0)
		return 0;
	if (type == DD_OBJ_DATA && base_failed)
		return -1;
	dd_error_save(&why);
	if (dd_store_config_refresh(st) < 0) {
		dd_error_saved_free(&why);
		return -1;
	}
	dd_error_restore(&why);
	return -1;
}

/*
 * A data object from a pack of the store (one ranged read; the next place
 * the index files give when that pack is missing or its copy does not
 * open): 0, DD_NOTFOUND (no error), -1 (every place failed: the first
 * failure's error).
 */
static int
try_store_places(struct dd_store *st, const uint8_t id[32], const char *name, size_t max_plain,
		 struct dd_buf *plain, ZSTD_DCtx *zd, struct dd_buf *obj, struct base_skip *skip)
{
	char pname[DD_OBJECT_NAME_SIZE];
	struct dd_midx_hit hits[DD_MIDX_MAX_PLACES];
	struct dd_error_saved first = { 0 };
	size_t n = dd_midx_find_all(st->idx, id, 0, hits, DD_MIDX_MAX_PLACES);
	int r, failed = 0, first_base = 0;

	if (!n) {
		if (dd_store_index_refresh(st) < 0)
			return -1;
		if (!dd_store_live(st) || !(n = dd_midx_find_all(st->idx, id, 0, hits, DD_MIDX_MAX_PLACES)))
			return DD_NOTFOUND;
	}
	for (size_t i = 0; i < n && dd_store_live(st); i++) {
		struct dd_midx_pack mp = dd_midx_pack_get(st->idx, hits[i].pack);
		if (skipped_place(&hits[i], skip))
			continue;
		dd_object_name(pname, sizeof(pname), "packs", mp.name);
		atomic_fetch_add(&st->requests, 1);
		r = st->be->ops->get_range(st->be, pname, hits[i].off, hits[i].len, obj);
		if (r == DD_NOTFOUND || dd_store_gone(st, r))
			continue;
		if (r == 0 && open_from_store(st, DD_OBJ_DATA, id, hits[i].type == DD_OBJ_DELTA ? &hits[i].d : NULL, obj,
					      max_plain, plain, zd) == 0) {
			dd_error_saved_free(&first);
			return 0;
		}
		dd_error_wrap("object %s in %s of the store %s", name, pname, st->url);
		if (r == 0 && base_failed)
			skip_failed_base(skip); /* the copy is fine, its base is not: another place may not need it */
		else if (r == 0 && st->be->ops->forget)
			st->be->ops->forget(st->be, pname); /* damaged bytes: a copy put there meanwhile is read next time */
		if (!failed++) {
			first_base = r == 0 && base_failed;
			dd_error_save(&first);
		}
		dd_error_clear();
	}
	if (!failed)
		return DD_NOTFOUND;
	base_failed = first_base; /* what the error returned says */
	return dd_error_restore(&first);
}

/*
 * try_store_places(), and when no place of the object is there any more
 * (the store's gc repacked it: a new pack and index file came before the
 * old ones went), the store's index files again (listed once per run,
 * by the first thread that asks; the others wait for it), then the places
 * they add.
 */
static int
get_from_store_pack(struct dd_store *st, const uint8_t id[32], const char *name, size_t max_plain,
		    struct dd_buf *plain, ZSTD_DCtx *zd, struct dd_buf *obj, struct base_skip *skip)
{
	int r = try_store_places(st, id, name, max_plain, plain, zd, obj, skip);

	if (r == DD_NOTFOUND && dd_store_live(st) && dd_store_index_relist(st) == 1)
		r = try_store_places(st, id, name, max_plain, plain, zd, obj, skip);
	return r;
}

/* Put a copy of an object fetched from the store into the cache, without an fsync when the cache can. */
static void
cache_put_fetched(struct dd_store *st, const char *name, const void *data, size_t len)
{
	if (st->cache->ops->put_unsynced)
		st->cache->ops->put_unsynced(st->cache, name, data, len);
	else
		st->cache->ops->put(st->cache, name, data, len);
}

/* The backend's copy (a pack, else a loose object), filling the cache: 0, DD_NOTFOUND (error set), -1. */
static int
get_from_backend(struct dd_store *st, int type, const uint8_t id[32], const char *name, size_t max_plain,
		 struct dd_buf *plain, ZSTD_DCtx *zd, struct dd_buf *obj, struct base_skip *skip)
{
	int r = DD_NOTFOUND;

	if (type == DD_OBJ_DATA)
		r = get_from_store_pack(st, id, name, max_plain, plain, zd, obj, skip);
	if (r == DD_NOTFOUND && dd_store_live(st)) {
		atomic_fetch_add(&st->requests, 1);
		r = st->be->ops->get(st->be, name, obj);
		if (dd_store_gone(st, r))
			r = DD_EUNREACHABLE;
		else if (r == 0 && open_from_store(st, type, id, NULL, obj, max_plain, plain, zd) < 0)
			return dd_error_wrap("object %s in the store %s", name, st->url);
	}
	if (r == DD_EUNREACHABLE || (r == DD_NOTFOUND && !dd_store_live(st))) {
		char *context = dd_asprintf("object %s is not in the local cache", name);
		dd_store_unreachable_error(st, context);
		free(context);
		return -1;
	}
	if (r == DD_NOTFOUND) {
		dd_error("object %s is missing from the store %s", name, st->url);
		return DD_NOTFOUND;
	}
	if (r < 0)
		return -1;
	/* best effort; data without an fsync (FORMAT.md §3.1): a torn cache copy fails to open and is fetched again */
	if (type == DD_OBJ_DATA)
		cache_put_fetched(st, name, obj->ptr, obj->len);
	else
		st->cache->ops->put(st->cache, name, obj->ptr, obj->len);
	dd_error_clear();
	return 0;
}

/*
 * Open and lock the temp file `tmp` a pack is fetched into. flock() makes
 * two fetches of one pack (two processes) take turns; a holder linked its
 * file into place and removed the name before letting go, so a lock won on
 * a file no longer named `tmp` is dropped and taken again. kill -9 releases
 * the lock and leaves the file, which the next fetch truncates: it starts
 * over. fd, or -1 (error set).
 */
static int
lock_fetch_temp(const char *tmp)
{
	for (int tries = 0; tries < 100; tries++) {
		struct stat a, b;
		int fd = open(tmp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			return dd_error_errno("cannot create %s", tmp);
		while (flock(fd, LOCK_EX) < 0) {
			if (errno != EINTR) {
				dd_error_errno("cannot lock %s", tmp);
				close(fd);
				return -1;
			}
		}
		if (fstat(fd, &a) == 0 && stat(tmp, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev &&
		    a.st_nlink == 1)
			return fd;
		close(fd);
	}
	return dd_error("cannot lock %s: it keeps being replaced", tmp);
}

int
dd_store_fetch_pack(struct dd_store *st, const char *name, uint64_t *size)
{
	char *path = st->cache->ops->local_path(st->cache, name), *dir = dd_path_dirname(path), *tmp;
	const char *base = strrchr(path, '/') + 1;
	uint8_t want[32], sum[32];
	int fd = -1, rc = 1, r;

	tmp = dd_asprintf("%s/.%s.fetch", dir, base);
	*size = 0;
	if (strncmp(name, "packs/", 6) || strlen(name) != 73 || dd_hex_decode(want, 32, name + 9) < 0)
		goto out; /* not a pack name: no name to check the bytes against */
	if (dd_path_exists(path)) {
		rc = DD_EXISTS;
		goto out;
	}
	if (dd_mkdir_p(dir, 0755) < 0 || (fd = lock_fetch_temp(tmp)) < 0) {
		rc = -1;
		goto out;
	}
	if (dd_path_exists(path)) { /* another fetch brought it while we waited for the lock */
		unlink(tmp);
		rc = DD_EXISTS;
		goto out;
	}
	if (ftruncate(fd, 0) < 0) {
		rc = dd_error_errno("cannot truncate %s", tmp);
		goto out;
	}
	atomic_fetch_add(&st->requests, 1);
	r = st->be->ops->get_to_fd(st->be, name, fd, DD_PACK_MAX, size);
	if (r == DD_EUNREACHABLE) { /* the temp file stays: the next fetch starts it over */
		rc = r;
		goto out;
	}
	if (r != 0) { /* missing or refused: the object-by-object path explains it */
		dd_error_clear();
		unlink(tmp);
		goto out;
	}
	if (dd_pack_hash_file(sum, tmp) < 0) {
		rc = -1;
		goto out;
	}
	if (memcmp(sum, want, 32)) {
		dd_warn("%s in the store %s is damaged (its bytes do not hash to its name): not cached; reading the "
			"objects needed from it one by one", name, st->url);
		unlink(tmp);
		goto out;
	}
	/* no fsync (FORMAT.md §3.1): a torn cache pack fails to authenticate object by object and is read again */
	r = st->cache->ops->put_file(st->cache, name, tmp);
	unlink(tmp);
	if (r < 0) {
		rc = dd_error_wrap("putting %s into %s", name, st->cache_label);
		goto out;
	}
	rc = r == DD_EXISTS ? DD_EXISTS : 0;
out:
	if (fd >= 0)
		close(fd); /* after the unlink: see lock_fetch_temp() */
	free(tmp);
	free(dir);
	free(path);
	return rc;
}

int
dd_store_get_run(struct dd_store *st, const char *pack, const struct dd_run_obj *objs, size_t n, ZSTD_DCtx *zd,
		 uint64_t *plain_bytes)
{
	char name[DD_OBJECT_NAME_SIZE];
	struct dd_buf all = DD_BUF_INIT, plain = DD_BUF_INIT;
	uint64_t start = objs[0].off, span = objs[n - 1].off + objs[n - 1].len - start, bytes = 0;
	int rc = 1, r;

	atomic_fetch_add(&st->requests, 1);
	r = st->be->ops->get_range(st->be, pack, start, (size_t)span, &all);
	if (r != 0 || all.len != span) {
		dd_store_gone(st, r);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = (const uint8_t *)all.ptr + (objs[i].off - start);
		/* authenticated only: restore's full open decompresses and recomputes the id (FORMAT.md §4) */
		if (check_data(st, objs[i].id, p, objs[i].len, &plain) < 0)
			goto out;
		if (dd_object_check_plain_len(&plain) > objs[i].plain_len) {
			dd_error("damaged (plaintext larger than the manifest says)");
			goto out;
		}
		bytes += dd_object_check_plain_len(&plain);
		dd_object_name(name, sizeof(name), "data", objs[i].id);
		/* best effort, as get_from_backend: a torn cache copy fails to open and is fetched again */
		cache_put_fetched(st, name, p, objs[i].len);
	}
	*plain_bytes += bytes;
	rc = 0;
out:
	if (rc)
		dd_error_clear();
	dd_buf_release(&all);
	dd_buf_release(&plain);
	return rc;
}

/*
 * A data object from a pack in the cache, trying each place the index
 * files give: the store's packs (st->idx), then the private ones (this
 * run's, then those found under <cache>/private/index/); places that are
 * deltas against a base `skip` names are not tried. 0, DD_NOTFOUND (not
 * there, or damaged: warned; after a base failed, its error set), -1 (also
 * when only places needing the failed base are left).
 */
static int
get_from_cache_pack(struct dd_store *st, const uint8_t id[32], const char *name, size_t max_plain,
		    struct dd_buf *plain, ZSTD_DCtx *zd, struct dd_buf *obj, struct base_skip *skip, int *quiet)
{
	struct dd_midx *maps[3] = { st->idx, st->pidx, st->opidx };
	const char *dirs[3] = { "packs", "private/packs", "private/packs" };
	char pname[DD_OBJECT_NAME_SIZE];
	struct dd_midx_hit hits[DD_MIDX_MAX_PLACES];
	struct dd_error_saved first = { 0 }, bwhy = { 0 };
	size_t n = 0, m;
	int r, damaged = 0, hope = 0, was_set = skip->set;

	if (dd_store_index_load(st) < 0)
		return -1;
	for (m = 0; m < 3 && !n; m++) {
		if (m == 2 && dd_store_private_index_load(st) < 0)
			return -1;
		n = dd_midx_find_all(maps[m], id, 0, hits, DD_MIDX_MAX_PLACES);
	}
	m--;
	for (size_t i = 0; i < n; i++) {
		struct dd_midx_pack mp = dd_midx_pack_get(maps[m], hits[i].pack);
		if (skipped_place(&hits[i], skip))
			continue;
		dd_object_name(pname, sizeof(pname), dirs[m], mp.name);
		r = st->cache->ops->get_range(st->cache, pname, hits[i].off, hits[i].len, obj);
		if (r == DD_NOTFOUND)
			continue;
		if (r == 0 && open_cached(st, hits[i].type == DD_OBJ_DELTA ? &hits[i].d : NULL, id, obj, max_plain,
					  plain, zd) == 0) {
			dd_error_saved_free(&first);
			dd_error_saved_free(&bwhy); /* an earlier place's failed base: moot now */
			return 0;
		}
		/* not deleted: the pack holds other objects that may be fine */
		dd_error_wrap("object %s in %s of %s", name, pname, st->cache_label);
		if (r == 0 && base_failed) {
			/* the copy is fine, its base is not: another place may be a full object or use another base */
			if (!skip->set)
				dd_error_save(&bwhy);
			skip_failed_base(skip);
			dd_error_clear();
			continue;
		}
		if (r == 0 && st->cache->ops->forget)
			st->cache->ops->forget(st->cache, pname); /* a copy put there meanwhile is read next time */
		if (quiet) { /* the caller tries its other places, then this one again, saying why */
			*quiet = 1;
			dd_error_clear();
			continue;
		}
		if (!damaged++)
			dd_error_save(&first);
		if ((dd_store_live(st) && !cache_only) || i + 1 < n)
			dd_warn("%s; %s", dd_error_last(), i + 1 < n ? "trying another pack that holds it" :
				"reading the object from the store");
		dd_error_clear();
	}
	for (size_t i = 0; i < n; i++)
		hope |= !skipped_place(&hits[i], skip); /* a place the store may still give */
	if (skip->set && !was_set && (!hope || !dd_store_live(st) || cache_only)) {
		dd_error_saved_free(&first);
		base_failed = 1;
		return dd_error_restore(&bwhy); /* only places needing the base that failed are left */
	}
	if (damaged && (!dd_store_live(st) || cache_only)) {
		dd_error_saved_free(&bwhy);
		base_failed = 0;
		return dd_error_restore(&first); /* nowhere else to look: the damage is the answer */
	}
	dd_error_saved_free(&first);
	if (bwhy.msg)
		dd_error_restore(&bwhy); /* the reason, should the store have nothing better */
	return DD_NOTFOUND;
}

/*
 * 1 when an index file already loaded places data object `id` in a pack:
 * the cache's packs are tried before its loose copies, so a restore's
 * reads cost no failed lookup of a loose copy each.
 */
static int
in_a_pack(struct dd_store *st, const uint8_t id[32])
{
	struct dd_midx_hit hit;

	if (dd_store_index_load(st) < 0) {
		dd_error_clear(); /* get_from_cache_pack() says it again */
		return 0;
	}
	return (st->idx && dd_midx_find(st->idx, id, 0, &hit)) || (st->pidx && dd_midx_find(st->pidx, id, 0, &hit));
}

void
dd_store_advise_object(struct dd_store *st, const uint8_t id[32])
{
	struct dd_midx *maps[3] = { st->idx, st->pidx, st->opidx };
	const char *dirs[3] = { "packs", "private/packs", "private/packs" };
	char pname[DD_OBJECT_NAME_SIZE];
	struct dd_midx_hit hit;
	uint8_t cur[32];
	int m;

	if (!st->cache->ops->advise)
		return;
	if (dd_store_index_load(st) < 0) {
		dd_error_clear(); /* the read says it again */
		return;
	}
	/* the object, and down a delta's chain the bases its read opens first (the private index only if loaded) */
	memcpy(cur, id, 32);
	for (int depth = 0; depth <= DD_DELTA_DEPTH_MAX; depth++) {
		for (m = 0; m < 3; m++)
			if (maps[m] && dd_midx_find(maps[m], cur, 0, &hit))
				break;
		if (m == 3)
			return;
		dd_object_name(pname, sizeof(pname), dirs[m], dd_midx_pack_get(maps[m], hit.pack).name);
		st->cache->ops->advise(st->cache, pname, hit.off, hit.len);
		if (hit.type != DD_OBJ_DELTA)
			return;
		memcpy(cur, hit.d.base, 32);
	}
}

/*
 * The copies of an object, nearest first: for a data object an index file
 * places in a pack, the cache's packs (silently: a damaged copy there is
 * tried again below, in the order of a store written before packs); the
 * cache's loose copy; the cache's packs; the store. A copy whose delta
 * base fails leaves the other places to try (struct base_skip).
 */
int
dd_store_get_object(struct dd_store *st, int type, const uint8_t id[32], size_t max_plain, struct dd_buf *plain,
		    ZSTD_DCtx *zd)
{
	char name[DD_OBJECT_NAME_SIZE];
	struct dd_buf obj = DD_BUF_INIT;
	struct base_skip skip = { 0 };
	struct dd_error_saved bwhy = { 0 };
	int rc = -1, r, damaged = 0, packed = 0, pack_damaged = 0;

	dd_object_name(name, sizeof(name), dd_store_type_dir(type), id);
	if (type == DD_OBJ_DATA && (packed = in_a_pack(st, id))) {
		r = get_from_cache_pack(st, id, name, max_plain, plain, zd, &obj, &skip, &pack_damaged);
		if (r == DD_NOTFOUND && skip.set && !bwhy.msg && dd_error_last())
			dd_error_save(&bwhy); /* a pack's copy failed on its base: the reason if nothing else opens */
		if (r != DD_NOTFOUND) {
			rc = r;
			goto out;
		}
	}
	r = st->cache->ops->get(st->cache, name, &obj);
	if (r < 0)
		goto out;
	if (r == 0) {
		if ((type == DD_OBJ_DATA ? open_cached(st, NULL, id, &obj, max_plain, plain, zd)
					 : dd_object_open(plain, st->keys, type, id, obj.ptr, obj.len, max_plain, zd)) == 0) {
			rc = 0;
			goto out;
		}
		dd_error_wrap("object %s in %s", name, st->cache_label);
		if (type == DD_OBJ_DATA && base_failed) {
			/* the copy is fine, its base is not: a pack may hold a full copy, or a delta against another */
			skip_failed_base(&skip);
			dd_error_save(&bwhy);
		} else
			damaged = 1;
	}
	if (type == DD_OBJ_DATA && !damaged && (!packed || pack_damaged)) {
		r = get_from_cache_pack(st, id, name, max_plain, plain, zd, &obj, &skip, NULL);
		if (r == DD_NOTFOUND && skip.set && !bwhy.msg && dd_error_last())
			dd_error_save(&bwhy); /* a pack's copy failed on its base: the reason if nothing else opens */
		if (r != DD_NOTFOUND) {
			rc = r;
			goto out;
		}
	}
	if (skip.set && (!st->be || cache_only || !dd_store_live(st)))
		goto out; /* no other copy to try: the base's error says why */
	if (!st->be || cache_only) {
		if (!damaged && !cache_only && atomic_load(&st->gone_why)) {
			char *context = dd_asprintf("object %s is not in %s", name, st->cache_label);
			dd_store_unreachable_error(st, context); /* the reason the store was not opened */
			free(context);
		} else if (!damaged) {
			dd_error("object %s is missing from %s", name, st->cache_label);
			rc = DD_NOTFOUND;
		}
		goto out;
	}
	if (damaged) {
		dd_warn("the cached copy of %s is %s; fetching it again from the store", name, dd_error_last());
		st->cache->ops->del(st->cache, name);
	}
	rc = get_from_backend(st, type, id, name, max_plain, plain, zd, &obj, &skip);
out:
	if (rc != 0 && bwhy.msg) {
		base_failed = 1; /* the first copy's base failed: that says more than the places tried after it */
		rc = dd_error_restore(&bwhy);
	} else
		dd_error_saved_free(&bwhy);
	dd_buf_release(&obj);
	return rc;
}

int
dd_store_backend_sync(struct dd_store *st)
{
	struct dd_buf batch = DD_BUF_INIT;
	int rc;

	if (st->known)
		dd_known_take(st->known, &batch);
	rc = st->be->ops->sync(st->be);
	if (rc == 0 && st->known)
		dd_known_commit(st->known, &batch);
	dd_buf_release(&batch);
	return rc;
}

int
dd_store_sync(struct dd_store *st)
{
	int r;

	if (dd_packer_flush(st) < 0)
		return -1;
	if (st->cache->ops->sync(st->cache) < 0)
		return -1;
	if (!dd_store_live(st))
		return 0;
	r = dd_store_backend_sync(st);
	return dd_store_gone(st, r) ? 0 : r;
}

int
dd_store_has_snapshot(struct dd_store *st, const char *id_hex)
{
	uint8_t id[32];
	char name[DD_OBJECT_NAME_SIZE];
	int r;

	if (dd_hex_decode(id, 32, id_hex) < 0)
		return dd_error("'%s' is not a snapshot id", id_hex);
	dd_object_name(name, sizeof(name), "private", id);
	r = st->cache->ops->exists(st->cache, name); /* a private snapshot (store.h) */
	if (r != 0)
		return r;
	dd_object_name(name, sizeof(name), "snapshots", id);
	r = st->cache->ops->exists(st->cache, name);
	if (r != 0 || !st->be)
		return r;
	if (dd_store_known(st, name))
		return 1;
	if (!dd_store_live(st))
		return 0;
	atomic_fetch_add(&st->requests, 1);
	r = st->be->ops->exists(st->be, name);
	return dd_store_gone(st, r) ? 0 : r;
}

int
dd_store_push_config(struct dd_store *st)
{
	struct dd_buf text = DD_BUF_INIT;
	int rc = -1, r;

	if (!st->be)
		return dd_error("cannot push while offline");
	if (st->config_from_store) /* read from the store moments ago, when it was opened */
		return DD_EXISTS;
	atomic_fetch_add(&st->requests, 1);
	r = st->be->ops->get(st->be, "config", &text);
	if (r == 0) {
		/* the store has a config: one that differs must still open with our key */
		rc = dd_store_config_learn(st, &text) < 0 ? -1 : DD_EXISTS;
		goto out;
	}
	if (r < 0)
		goto out;
	atomic_fetch_add(&st->requests, 1);
	r = st->be->ops->put(st->be, "config", st->config.ptr, st->config.len);
	if (r < 0 || st->be->ops->sync(st->be) < 0)
		goto out;
	rc = r == DD_EXISTS ? DD_EXISTS : 0;
out:
	dd_buf_release(&text);
	return rc;
}

int
dd_store_list_snapshots(struct dd_store *st, char ***ids, size_t *n)
{
	struct dd_backend *src = st->be ? st->be : st->cache;
	struct dd_backend_entry *e;
	size_t ne, k = 0;

	if (src->ops->list(src, "snapshots", &e, &ne) < 0)
		return -1;
	*ids = dd_calloc(ne ? ne : 1, sizeof(**ids));
	for (size_t i = 0; i < ne; i++) {
		const char *base = strrchr(e[i].name, '/');
		if (base && dd_is_hex(base + 1, 64))
			(*ids)[k++] = dd_strdup(base + 1);
	}
	*n = k;
	dd_backend_entries_free(e, ne);
	return 0;
}

void
dd_store_snapshot_ids_free(char **ids, size_t n)
{
	for (size_t i = 0; ids && i < n; i++)
		free(ids[i]);
	free(ids);
}
