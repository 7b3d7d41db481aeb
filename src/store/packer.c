/*
 * store/packer.c: writing packs and index files (docs/FORMAT.md §4.1-§4.2).
 *
 * Sealed data objects collect in the open pack (one mutex) until it holds
 * DD_PACK_TARGET bytes; then the thread that filled it hands it to a
 * finisher thread (started per pack, joined before the next) and goes on
 * sealing, so the store pool's threads do not stop for a pack's writing,
 * fsync and check; a flush finishes the open pack itself. Finishing: the
 * objects are laid out in a random order (their order must not tell the
 * stream's), the encrypted header is appended, the pack is written to
 * cache/packs/ under its SHA-256 (one fsync), read back and checked once
 * (it hashes to its name, its header opens, every object authenticates
 * under its id and type: dd_object_check, no decompression or re-hash;
 * every read that uses an object's plaintext opens it fully), and queued
 * for upload on the transfer pool (put_file: a hard link for a file store
 * on the same filesystem). Only one pack is finished at a
 * time and adders wait while the open pack is full, so the writer holds at
 * most two packs' bytes whatever the snapshot size; uploads hold names.
 *
 * Every flush (dd_store_sync, before a manifest) finishes the open pack,
 * waits for the uploads and writes one index file naming the packs written
 * since the last one: to the cache, then, once the store has synced the
 * packs, to the store. A big snapshot also writes one every `index_every`
 * packs from the finishing thread, so an interrupted snapshot leaves packs
 * the next one can reuse. So the order objects -> index -> manifest holds in
 * both places. A private writer's packs and index files are needed by no
 * manifest until it commits, and the cache's gc takes such files once they
 * are an hour old (cache-gc.c): each private pack it finishes renews the
 * mtime of every private index file and not yet indexed pack of this run,
 * so a capture that runs for hours keeps what it wrote. Objects a snapshot reused from packs the store is not known
 * to hold (an earlier snapshot made while it was unreachable) bring their
 * index files along at the same flush.
 */
#include "store/internal.h"
#include "util/err.h"
#include "util/hex.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct pobj {
	uint8_t id[32];
	uint8_t type;
	uint32_t len;
	uint8_t *data;
	struct dd_delta_ref d; /* type DD_OBJ_DELTA: its base */
};

struct dd_packer {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pobj *objs; /* the open pack */
	size_t n, cap;
	uint64_t bytes, held, peak; /* open pack's bytes; bytes held (open + finishing); the most held */
	uint32_t slot;              /* its slot in st->idx (DD_MIDX_NONE: none yet) */
	int finishing;
	struct dd_store *st;        /* for the finisher thread */
	struct pobj *fobjs;         /* the pack the finisher thread finishes (fn objects, slot fslot, fbytes) */
	size_t fn;
	uint32_t fslot;
	uint64_t fbytes;
	pthread_t fthread;          /* the finisher thread, joined before the next starts */
	int fthread_live;
	char *err;                  /* a pack could not be written: the flush fails */
	struct dd_index_pack *done; /* written, not yet in an index file */
	uint32_t *done_slots;
	size_t ndone, capdone;
	struct dd_xfer_batch uploads;
	uint32_t *need; /* index files to push at the next flush */
	size_t nneed, capneed;
	size_t index_every; /* write an index file midway every this many packs */
	size_t fresh_from;  /* private: the first index file (of pk->idx) no manifest of this run covers yet */
	struct dd_midx *idx; /* the map its packs and index files join */
	int priv;           /* private snapshots' packer: cache only (private/packs, private/index), never uploaded */
};

/* Wait for the finisher thread, if one was started (a pack being finished ends first). */
static void
finisher_join(struct dd_packer *pk)
{
	if (!pk)
		return;
	pthread_mutex_lock(&pk->mu);
	while (pk->finishing)
		pthread_cond_wait(&pk->cv, &pk->mu);
	pthread_mutex_unlock(&pk->mu);
	if (pk->fthread_live)
		pthread_join(pk->fthread, NULL);
	pk->fthread_live = 0;
}

int
dd_packer_new(struct dd_packer **out, struct dd_midx *idx, int priv)
{
	struct dd_packer *pk = dd_calloc(1, sizeof(*pk));

	pk->idx = idx;
	pk->priv = priv;
	pthread_mutex_init(&pk->mu, NULL);
	pthread_cond_init(&pk->cv, NULL);
	pk->slot = DD_MIDX_NONE;
	pk->index_every = DD_PACK_INDEX_EVERY;
	*out = pk;
	return 0;
}

void
dd_packer_free(struct dd_packer *pk)
{
	if (!pk)
		return;
	finisher_join(pk);
	for (size_t i = 0; i < pk->n; i++)
		free(pk->objs[i].data);
	free(pk->objs);
	dd_index_packs_free(pk->done, pk->ndone);
	free(pk->done_slots);
	free(pk->need);
	free(pk->err);
	pthread_cond_destroy(&pk->cv);
	pthread_mutex_destroy(&pk->mu);
	free(pk);
}

void
dd_packer_begin(struct dd_store *st, int priv)
{
	struct dd_packer *pk = priv ? st->ppacker : st->packer;

	pthread_mutex_lock(&pk->mu);
	free(pk->err);
	pk->err = NULL;
	pthread_mutex_unlock(&pk->mu);
}

void
dd_packer_abandon(struct dd_store *st)
{
	struct dd_error_saved why;

	finisher_join(st->packer); /* a pack being finished may still queue an upload */
	finisher_join(st->ppacker);
	if (!st->xfer || !st->packer || !st->packer->uploads.n)
		return;
	dd_error_save(&why); /* the caller's error stands */
	dd_xfer_wait(st, &st->packer->uploads, NULL, NULL);
	dd_error_restore(&why);
}

uint64_t
dd_packer_peak(struct dd_store *st)
{
	return st->packer ? st->packer->peak : 0;
}

int
dd_store_check_pack(struct dd_store *st, const uint8_t name[32], const uint8_t *data, size_t len,
		    struct dd_pack_entry **e, size_t *n, int full, ZSTD_DCtx *zd)
{
	struct dd_buf plain = DD_BUF_INIT;
	uint8_t sum[32];
	int rc = -1;

	*e = NULL;
	*n = 0;
	dd_pack_hash(sum, data, len);
	if (memcmp(sum, name, 32))
		return dd_error("damaged (its SHA-256 does not match its name)");
	if (dd_pack_open_header(e, n, st->keys, data, len) < 0)
		return -1;
	for (size_t i = 0; i < *n; i++) {
		const struct dd_pack_entry *x = &(*e)[i];
		char hex[DD_ID_HEX_SIZE];
		/* a delta opens with its base's plaintext (the chunk reads do that): here it is authenticated */
		int open = full && x->type != DD_OBJ_DELTA;
		struct dd_delta_ref d;
		if ((open ? dd_object_open(&plain, st->keys, x->type, x->id, data + x->off, x->len, st->chunker->max, zd)
			  : dd_object_delta_base(st->keys, x->type, x->id, data + x->off, x->len, &plain, &d)) < 0 ||
		    (x->type == DD_OBJ_DELTA && (memcmp(d.base, x->d.base, 32) || d.base_len != x->d.base_len) &&
		     dd_error("damaged (its entry names another delta base than the object)"))) {
			dd_hex_encode(hex, x->id, 32);
			dd_error_wrap("object %s at offset %u", hex, x->off);
			goto out;
		}
	}
	rc = 0;
out:
	if (rc < 0) {
		free(*e);
		*e = NULL;
		*n = 0;
	}
	dd_buf_release(&plain);
	return rc;
}

/* Lay the objects out in a random order into `pack`; their entries go to ip->e. Frees each object's bytes. */
static void
lay_out(struct dd_buf *pack, struct pobj *objs, size_t n, struct dd_index_pack *ip)
{
	uint32_t *order = dd_malloc(n * sizeof(*order));

	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	for (size_t i = n - 1; i > 0; i--) {
		uint32_t j = randombytes_uniform((uint32_t)i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	ip->e = dd_calloc(n, sizeof(*ip->e));
	ip->n = n;
	for (size_t k = 0; k < n; k++) {
		struct pobj *o = &objs[order[k]];
		ip->e[k] = (struct dd_pack_entry){ .type = o->type, .off = (uint32_t)pack->len, .len = o->len, .d = o->d };
		memcpy(ip->e[k].id, o->id, 32);
		dd_buf_put(pack, o->data, o->len);
		free(o->data);
		o->data = NULL;
	}
	free(order);
}

/* Write the pack to the cache, read it back and check it. */
static int
write_pack(struct dd_store *st, struct dd_buf *pack, const struct dd_index_pack *ip, char *name)
{
	struct dd_pack_entry *e = NULL;
	ZSTD_DCtx *zd = ZSTD_createDCtx();
	size_t n;
	int rc = -1;

	if (st->cache->ops->put(st->cache, name, pack->ptr, pack->len) < 0) {
		dd_error_wrap("writing %s to the cache", name);
		goto out;
	}
	if (st->cache->ops->get(st->cache, name, pack) != 0 ||
	    dd_store_check_pack(st, ip->name, (const uint8_t *)pack->ptr, pack->len, &e, &n, 0, zd) < 0) {
		dd_error_wrap("the pack %s just written to the cache", name);
		goto out;
	}
	for (size_t i = 0; n == ip->n && i < n; i++)
		if (e[i].type != ip->e[i].type || e[i].off != ip->e[i].off || e[i].len != ip->e[i].len ||
		    memcmp(e[i].id, ip->e[i].id, 32) ||
		    (e[i].type == DD_OBJ_DELTA && (memcmp(e[i].d.base, ip->e[i].d.base, 32) ||
						   e[i].d.base_len != ip->e[i].d.base_len ||
						   e[i].d.depth != ip->e[i].d.depth)))
			n = 0;
	if (n != ip->n) {
		dd_error("the pack %s just written to the cache lists other objects than it holds", name);
		goto out;
	}
	rc = 0;
out:
	free(e);
	ZSTD_freeDCtx(zd);
	return rc;
}

/* Renew the mtime of one cache file (best effort: a file gc cannot see as old is one it does not take). */
static void
touch(struct dd_store *st, const char *dir, const uint8_t id[32])
{
	char name[DD_OBJECT_NAME_SIZE];
	char *path;

	dd_object_name(name, sizeof(name), dir, id);
	path = st->cache->ops->local_path(st->cache, name);
	if (path && utimensat(AT_FDCWD, path, NULL, 0) < 0)
		dd_debug("cannot renew the time of %s: %s", path, strerror(errno));
	free(path);
}

/*
 * A private pack was written: every private index file this run wrote
 * since its last flush (a committed snapshot's need no renewal), and every
 * pack not in one yet, is new again for gc's grace period. Under pk->mu
 * (pk->done).
 */
static void
keep_private_fresh(struct dd_store *st, struct dd_packer *pk)
{
	struct dd_midx *m = pk->idx;

	pthread_mutex_lock(&m->mu);
	for (size_t i = pk->fresh_from; i < m->nfiles; i++)
		touch(st, "private/index", m->files[i].id);
	pthread_mutex_unlock(&m->mu);
	for (size_t i = 0; i < pk->ndone; i++)
		touch(st, "private/packs", pk->done[i].name);
}

/* Finish one pack (not under the lock). On success its entries join pk->done and it is queued for upload. */
static int
finish(struct dd_store *st, struct dd_packer *pk, struct pobj *objs, size_t n, uint32_t slot)
{
	struct dd_index_pack ip = { 0 };
	struct dd_buf pack = DD_BUF_INIT;
	struct dd_midx_pack mp = dd_midx_pack_get(pk->idx, slot);
	char name[DD_OBJECT_NAME_SIZE];
	int rc = -1;

	lay_out(&pack, objs, n, &ip);
	if (dd_pack_seal_header(&pack, st->keys, ip.e, ip.n) < 0)
		goto out;
	dd_pack_hash(ip.name, pack.ptr, pack.len);
	dd_object_name(name, sizeof(name), pk->priv ? "private/packs" : "packs", ip.name);
	if (write_pack(st, &pack, &ip, name) < 0)
		goto out;
	for (size_t i = 0; i < ip.n; i++)
		dd_midx_add(pk->idx, ip.e[i].id, ip.e[i].type, slot, ip.e[i].off, ip.e[i].len, &ip.e[i].d);
	memcpy(mp.name, ip.name, 32);
	mp.state = DD_MIDX_READY;
	dd_midx_pack_set(pk->idx, slot, &mp);
	pthread_mutex_lock(&pk->mu);
	if (pk->ndone == pk->capdone) {
		pk->capdone = pk->capdone ? 2 * pk->capdone : 16;
		pk->done = dd_realloc(pk->done, pk->capdone * sizeof(*pk->done));
		pk->done_slots = dd_realloc(pk->done_slots, pk->capdone * sizeof(*pk->done_slots));
	}
	pk->done_slots[pk->ndone] = slot;
	pk->done[pk->ndone++] = ip;
	ip.e = NULL;
	if (!pk->priv && dd_store_live(st))
		dd_xfer_submit(st, &pk->uploads, DD_XFER_FRESH, name, NULL, 0);
	if (pk->priv)
		keep_private_fresh(st, pk);
	pthread_mutex_unlock(&pk->mu);
	rc = 0;
out:
	if (rc < 0) {
		mp.state = DD_MIDX_FAILED;
		dd_midx_pack_set(pk->idx, slot, &mp);
	}
	free(ip.e);
	dd_buf_release(&pack);
	return rc;
}

/* Write an index file naming the packs `done` (slots `slots`) to the cache; *file gets its slot. */
static int
write_index(struct dd_store *st, struct dd_packer *pk, const struct dd_index_pack *done, const uint32_t *slots,
	    size_t n, uint32_t *file)
{
	struct dd_buf plain = DD_BUF_INIT, obj = DD_BUF_INIT;
	char name[DD_OBJECT_NAME_SIZE];
	uint8_t id[32];
	int rc = -1, isnew;

	dd_index_encode(&plain, done, n);
	dd_id_compute(id, st->keys, plain.ptr, plain.len);
	dd_object_name(name, sizeof(name), pk->priv ? "private/index" : "index", id);
	if (dd_store_seal(st, &obj, DD_OBJ_INDEX, id, plain.ptr, plain.len, NULL) < 0)
		goto out;
	if (st->cache->ops->put(st->cache, name, obj.ptr, obj.len) < 0) {
		dd_error_wrap("writing %s to the cache", name);
		goto out;
	}
	*file = dd_midx_file(pk->idx, id, &isnew);
	for (size_t i = 0; i < n; i++) {
		struct dd_midx_pack mp = dd_midx_pack_get(pk->idx, slots[i]);
		mp.file = *file;
		dd_midx_pack_set(pk->idx, slots[i], &mp);
	}
	rc = 0;
out:
	dd_buf_release(&plain);
	dd_buf_release(&obj);
	return rc;
}

/* Take pk->done (under pk->mu). */
static void
take_done(struct dd_packer *pk, struct dd_index_pack **done, uint32_t **slots, size_t *n)
{
	*done = pk->done, *slots = pk->done_slots, *n = pk->ndone;
	pk->done = NULL, pk->done_slots = NULL, pk->ndone = pk->capdone = 0;
}

/* Put index file `file` into the store, once the packs it names are durable there. */
static int
put_index(struct dd_store *st, uint32_t file)
{
	struct dd_midx_file f = dd_midx_file_get(st->idx, file);
	struct dd_xfer_batch b = { 0 };
	char name[DD_OBJECT_NAME_SIZE];
	int r = dd_store_backend_sync(st);

	if (dd_store_gone(st, r))
		return 0;
	if (r < 0)
		return -1;
	dd_object_name(name, sizeof(name), "index", f.id);
	dd_xfer_submit(st, &b, DD_XFER_UPLOAD, name, NULL, 0);
	if (dd_xfer_wait(st, &b, NULL, NULL) < 0)
		return -1;
	if (!dd_store_live(st))
		return 0;
	dd_store_confirmed(st, name);
	r = dd_store_backend_sync(st);
	if (dd_store_gone(st, r))
		return 0;
	if (r < 0)
		return -1;
	f.in_store = 1;
	dd_midx_file_set(st->idx, file, &f);
	return 0;
}

/*
 * Midway through a big snapshot: an index file for the packs written so
 * far (cache, then store), so an interrupted snapshot leaves usable packs
 * behind. Runs on the finishing thread, outside the lock.
 */
static int
index_midway(struct dd_store *st, struct dd_packer *pk, struct dd_index_pack *done, uint32_t *slots, size_t n,
	     struct dd_xfer_batch *uploads)
{
	uint32_t file;
	int rc = dd_xfer_wait(st, uploads, NULL, NULL);

	if (rc == 0 && (st->cache->ops->sync(st->cache) < 0 || write_index(st, pk, done, slots, n, &file) < 0))
		rc = -1;
	if (rc == 0 && !pk->priv && dd_store_live(st))
		rc = put_index(st, file);
	dd_index_packs_free(done, n);
	free(slots);
	return rc;
}

/* Under pk->mu: after `index_every` packs, index them midway (the lock is dropped meanwhile). */
static int
maybe_index_midway(struct dd_store *st, struct dd_packer *pk)
{
	struct dd_xfer_batch up = pk->uploads;
	struct dd_index_pack *done;
	uint32_t *slots;
	size_t n;
	int r;

	if (pk->ndone < pk->index_every)
		return 0;
	take_done(pk, &done, &slots, &n);
	memset(&pk->uploads, 0, sizeof(pk->uploads));
	pthread_mutex_unlock(&pk->mu);
	r = index_midway(st, pk, done, slots, n, &up);
	pthread_mutex_lock(&pk->mu);
	return r;
}

static int
full(const struct dd_packer *pk)
{
	return pk->bytes >= DD_PACK_TARGET || pk->n >= DD_PACK_MAX_OBJECTS;
}

/*
 * The end of finishing a pack (under pk->mu): its bytes are no longer
 * held, adders and flushes waiting go on, a failure is kept for the flush.
 */
static int
finished(struct dd_packer *pk, uint64_t bytes, int r)
{
	pk->held -= bytes;
	pk->finishing = 0;
	pthread_cond_broadcast(&pk->cv);
	if (r < 0 && !pk->err)
		pk->err = dd_strdup(dd_error_last() ? dd_error_last() : "writing a pack failed");
	return r < 0 ? -1 : 0;
}

/* Finish a pack taken from the open one (not under the lock), freeing its objects. */
static int
finish_objs(struct dd_store *st, struct dd_packer *pk, struct pobj *objs, size_t n, uint32_t slot)
{
	int r = finish(st, pk, objs, n, slot);

	for (size_t i = 0; i < n; i++)
		free(objs[i].data);
	free(objs);
	return r;
}

/*
 * The finisher thread: finishes the full pack an adder handed it (and an
 * index file midway when due), so the adders (the store pool's threads)
 * go on sealing chunks into the next pack meanwhile; "finishing" stays set
 * until it is done, so one pack at a time is finished, as on an adder.
 */
static void *
finisher_main(void *arg)
{
	struct dd_packer *pk = arg;
	int r = finish_objs(pk->st, pk, pk->fobjs, pk->fn, pk->fslot);

	pthread_mutex_lock(&pk->mu);
	pk->fobjs = NULL;
	if (r == 0)
		r = maybe_index_midway(pk->st, pk); /* still "finishing": adders wait when the open pack is full */
	finished(pk, pk->fbytes, r);
	pthread_mutex_unlock(&pk->mu);
	return NULL;
}

/*
 * Finish full packs (every pack with `all`) while no other thread is
 * finishing one. Under pk->mu. An adder hands a full pack to the finisher
 * thread and returns (finishing it itself if no thread can start); a
 * flush (`all`) finishes the open pack itself and waits for it.
 */
static int
drain(struct dd_store *st, struct dd_packer *pk, int all)
{
	int rc = 0;

	while (!pk->finishing && pk->n && (all || full(pk))) {
		struct pobj *objs = pk->objs;
		size_t n = pk->n;
		uint32_t slot = pk->slot;
		uint64_t bytes = pk->bytes;
		pk->objs = NULL, pk->n = pk->cap = 0, pk->bytes = 0, pk->slot = DD_MIDX_NONE;
		pk->finishing = 1;
		if (pk->fthread_live) { /* done: "finishing" was clear */
			pthread_join(pk->fthread, NULL);
			pk->fthread_live = 0;
		}
		if (!all) {
			pk->st = st, pk->fobjs = objs, pk->fn = n, pk->fslot = slot, pk->fbytes = bytes;
			if (pthread_create(&pk->fthread, NULL, finisher_main, pk) == 0) {
				pk->fthread_live = 1;
				break;
			}
			pk->fobjs = NULL;
		}
		pthread_mutex_unlock(&pk->mu);
		int r = finish_objs(st, pk, objs, n, slot);
		pthread_mutex_lock(&pk->mu);
		if (r == 0 && !all)
			r = maybe_index_midway(st, pk); /* still "finishing": adders wait when the open pack is full */
		if (finished(pk, bytes, r) < 0)
			rc = -1;
	}
	return rc;
}

int
dd_packer_add(struct dd_store *st, const uint8_t id[32], int type, const struct dd_buf *obj, int *existed, int priv)
{
	return dd_packer_add_delta(st, id, type, NULL, obj, existed, priv);
}

int
dd_packer_add_delta(struct dd_store *st, const uint8_t id[32], int type, const struct dd_delta_ref *d,
		    const struct dd_buf *obj, int *existed, int priv)
{
	struct dd_packer *pk = priv ? st->ppacker : st->packer;
	struct dd_midx_hit hit;
	struct pobj *o;
	int rc;

	*existed = 0;
	pthread_mutex_lock(&pk->mu);
	while (pk->finishing && full(pk))
		pthread_cond_wait(&pk->cv, &pk->mu);
	if (pk->err) { /* a pack the finisher thread could not write: this snapshot fails (its flush too) */
		dd_error("%s", pk->err);
		pthread_mutex_unlock(&pk->mu);
		return -1;
	}
	if (dd_midx_find(pk->idx, id, 1, &hit)) { /* another thread stored it meanwhile */
		*existed = 1;
		pthread_mutex_unlock(&pk->mu);
		return 0;
	}
	if (pk->slot == DD_MIDX_NONE)
		pk->slot = dd_midx_new_pack(pk->idx);
	dd_midx_add(pk->idx, id, (uint8_t)type, pk->slot, 0, (uint32_t)obj->len, d);
	if (pk->n == pk->cap) {
		pk->cap = pk->cap ? 2 * pk->cap : 64;
		pk->objs = dd_realloc(pk->objs, pk->cap * sizeof(*pk->objs));
	}
	o = &pk->objs[pk->n++];
	memcpy(o->id, id, 32);
	o->type = (uint8_t)type;
	o->len = (uint32_t)obj->len;
	memset(&o->d, 0, sizeof(o->d));
	if (type == DD_OBJ_DELTA)
		o->d = *d;
	o->data = dd_malloc(obj->len);
	memcpy(o->data, obj->ptr, obj->len);
	pk->bytes += obj->len;
	pk->held += obj->len;
	if (pk->held > pk->peak)
		pk->peak = pk->held;
	rc = drain(st, pk, 0);
	pthread_mutex_unlock(&pk->mu);
	return rc;
}

void
dd_packer_need_file(struct dd_store *st, uint32_t file)
{
	struct dd_packer *pk = st->packer;
	struct dd_midx_file f = dd_midx_file_get(st->idx, file);

	if (f.in_store || f.queued)
		return;
	f.queued = 1;
	dd_midx_file_set(st->idx, file, &f);
	pthread_mutex_lock(&pk->mu);
	if (pk->nneed == pk->capneed) {
		pk->capneed = pk->capneed ? 2 * pk->capneed : 16;
		pk->need = dd_realloc(pk->need, pk->capneed * sizeof(*pk->need));
	}
	pk->need[pk->nneed++] = file;
	pthread_mutex_unlock(&pk->mu);
}

void
dd_packer_set_index_every(struct dd_store *st, size_t packs)
{
	st->packer->index_every = packs;
	st->ppacker->index_every = packs;
}

void
dd_packer_wait_finished(struct dd_store *st)
{
	finisher_join(st->packer);
	finisher_join(st->ppacker);
}

/*
 * Upload the packs of the index files in pk->need that this run did not
 * upload itself (fresh packs went up as they were written).
 */
static int
upload_needed_packs(struct dd_store *st, size_t first_old)
{
	struct dd_packer *pk = st->packer;
	struct dd_xfer_batch b = { 0 };
	char name[DD_OBJECT_NAME_SIZE];

	for (size_t i = 0; i < pk->nneed; i++) {
		uint32_t *packs;
		size_t n;
		if (i >= first_old)
			break;
		dd_midx_file_packs(st->idx, pk->need[i], &packs, &n);
		for (size_t k = 0; k < n; k++) {
			struct dd_midx_pack mp = dd_midx_pack_get(st->idx, packs[k]);
			dd_object_name(name, sizeof(name), "packs", mp.name);
			dd_xfer_submit(st, &b, DD_XFER_UPLOAD, name, NULL, 0);
		}
		free(packs);
	}
	return dd_xfer_wait(st, &b, NULL, NULL);
}

/* Put the index files of pk->need into the store (after its packs are durable there). */
static int
put_indexes(struct dd_store *st)
{
	struct dd_packer *pk = st->packer;
	struct dd_xfer_batch b = { 0 };
	char name[DD_OBJECT_NAME_SIZE];
	int rc;

	rc = dd_store_backend_sync(st);
	if (dd_store_gone(st, rc))
		return 0;
	if (rc < 0)
		return -1;
	for (size_t i = 0; i < pk->nneed; i++) {
		struct dd_midx_file f = dd_midx_file_get(st->idx, pk->need[i]);
		dd_object_name(name, sizeof(name), "index", f.id);
		dd_xfer_submit(st, &b, DD_XFER_UPLOAD, name, NULL, 0);
	}
	rc = dd_xfer_wait(st, &b, NULL, NULL);
	if (rc < 0 || !dd_store_live(st))
		return rc;
	for (size_t i = 0; i < pk->nneed; i++) {
		struct dd_midx_file f = dd_midx_file_get(st->idx, pk->need[i]);
		dd_object_name(name, sizeof(name), "index", f.id);
		dd_store_confirmed(st, name);
	}
	rc = dd_store_backend_sync(st);
	if (dd_store_gone(st, rc))
		return 0;
	if (rc < 0)
		return -1;
	for (size_t i = 0; i < pk->nneed; i++) {
		struct dd_midx_file f = dd_midx_file_get(st->idx, pk->need[i]);
		f.in_store = 1;
		f.queued = 0;
		dd_midx_file_set(st->idx, pk->need[i], &f);
	}
	pk->nneed = 0;
	return 0;
}

/*
 * Finish the open pack, wait for its uploads, and write an index file for
 * the packs written since the last one (the cache only): *file gets its
 * slot (DD_MIDX_NONE: none was needed).
 */
static int
flush_packs(struct dd_store *st, struct dd_packer *pk, uint32_t *file)
{
	int rc;

	*file = DD_MIDX_NONE;
	pthread_mutex_lock(&pk->mu);
	while (pk->finishing)
		pthread_cond_wait(&pk->cv, &pk->mu);
	if (pk->fthread_live) { /* done: "finishing" is clear */
		pthread_join(pk->fthread, NULL);
		pk->fthread_live = 0;
	}
	rc = drain(st, pk, 1);
	pthread_mutex_unlock(&pk->mu);
	if (pk->uploads.n && dd_xfer_wait(st, &pk->uploads, NULL, NULL) < 0)
		rc = -1;
	if (pk->err) {
		dd_error("%s", pk->err);
		free(pk->err);
		pk->err = NULL;
		rc = -1;
	}
	if (rc < 0)
		return -1;
	if (pk->ndone) {
		struct dd_index_pack *done;
		uint32_t *slots;
		size_t n;
		take_done(pk, &done, &slots, &n);
		rc = st->cache->ops->sync(st->cache) < 0 || write_index(st, pk, done, slots, n, file) < 0 ? -1 : 0;
		dd_index_packs_free(done, n);
		free(slots);
	}
	return rc;
}

int
dd_packer_flush_private(struct dd_store *st)
{
	struct dd_packer *pk = st->ppacker;
	uint32_t file;
	int rc = flush_packs(st, pk, &file);

	if (rc == 0) { /* a manifest covers them next (written fresh after this); a later writer renews its own */
		pthread_mutex_lock(&pk->idx->mu);
		pk->fresh_from = pk->idx->nfiles;
		pthread_mutex_unlock(&pk->idx->mu);
	}
	return rc;
}

int
dd_packer_flush(struct dd_store *st)
{
	struct dd_packer *pk = st->packer;
	size_t old = pk->nneed; /* the files queued before this flush's own index */
	uint32_t file;

	if (flush_packs(st, pk, &file) < 0)
		return -1;
	if (file != DD_MIDX_NONE)
		dd_packer_need_file(st, file);
	if (!dd_store_live(st) || !pk->nneed)
		return 0;
	if (upload_needed_packs(st, old) < 0)
		return -1;
	if (!dd_store_live(st))
		return 0;
	return put_indexes(st);
}
