/*
 * store/store-index.c: the index map of a store (docs/FORMAT.md §4.2).
 *
 * The map (st->idx) is built from every index file of the local cache the
 * first time an object is looked up, and completed once per run from the
 * store: list index/, fetch (and cache) the index files this clone has not
 * seen, so objects another clone packed are reused rather than sent again.
 * Index files are immutable: a name seen once never needs reading again.
 * An index file that does not open is ignored with a warning (its packs'
 * objects then look absent: they are written again, never trusted); so is
 * a cache index file the store lacks whose packs are gone from the cache.
 */
#include "store/internal.h"
#include "util/err.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/proc.h"

#include <stdlib.h>
#include <string.h>

/* "index/<64 hex>" -> id; -1 if the name is not an index file's. */
static int
index_id(uint8_t id[32], const char *name)
{
	if (strncmp(name, "index/", 6) || strlen(name) != 70 || !dd_is_hex(name + 6, 64))
		return -1;
	return dd_hex_decode(id, 32, name + 6);
}

int
dd_store_index_read(struct dd_store *st, struct dd_backend *be, const uint8_t id[32], struct dd_buf *obj,
		    struct dd_index_pack **p, size_t *np)
{
	struct dd_buf plain = DD_BUF_INIT;
	char name[DD_OBJECT_NAME_SIZE];
	int r;

	dd_object_name(name, sizeof(name), "index", id);
	r = be->ops->get(be, name, obj);
	if (r != 0)
		return r;
	r = dd_object_open(&plain, st->keys, DD_OBJ_INDEX, id, obj->ptr, obj->len, DD_INDEX_MAX, NULL);
	if (r == 0)
		r = dd_index_decode(p, np, (const uint8_t *)plain.ptr, plain.len);
	if (r < 0)
		dd_error_wrap("index file %s", name);
	dd_buf_release(&plain);
	return r;
}

/* Add index file `id` (decoded) to the map unless it is there; mark it held by the store when `in_store`. */
static void
learn(struct dd_store *st, const uint8_t id[32], const struct dd_index_pack *p, size_t np, int in_store)
{
	int isnew;
	uint32_t slot = dd_midx_file(st->idx, id, &isnew);
	struct dd_midx_file f = dd_midx_file_get(st->idx, slot);

	if (in_store && !f.in_store) {
		f.in_store = 1;
		dd_midx_file_set(st->idx, slot, &f);
	}
	if (isnew)
		dd_midx_load(st->idx, slot, p, np);
}

int
dd_store_index_load(struct dd_store *st)
{
	struct dd_backend_entry *e = NULL;
	struct dd_buf obj = DD_BUF_INIT;
	size_t n = 0;
	int rc = -1;

	pthread_mutex_lock(&st->idxmu);
	if (st->idx_loaded) {
		pthread_mutex_unlock(&st->idxmu);
		return 0;
	}
	if (st->cache->ops->list(st->cache, "index", &e, &n) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct dd_index_pack *p = NULL;
		size_t np = 0;
		uint8_t id[32];
		if (index_id(id, e[i].name) < 0 || dd_midx_find_file(st->idx, id) != DD_MIDX_NONE)
			continue;
		if (dd_store_index_read(st, st->cache, id, &obj, &p, &np) != 0) {
			dd_warn("ignoring %s (in %s)", dd_error_last(), st->cache_label);
			st->idx_damaged++;
			dd_error_clear();
			continue;
		}
		learn(st, id, p, np, dd_store_known(st, e[i].name));
		dd_index_packs_free(p, np);
	}
	st->idx_loaded = 1;
	rc = 0;
out:
	pthread_mutex_unlock(&st->idxmu);
	dd_backend_entries_free(e, n);
	dd_buf_release(&obj);
	return rc;
}

/* Fetch the store's index file `name` into the cache and the map: 0, DD_EUNREACHABLE, -1. */
static int
fetch_one(struct dd_store *st, const char *name, const uint8_t id[32], struct dd_buf *obj)
{
	struct dd_index_pack *p = NULL;
	size_t np = 0;
	int r;

	atomic_fetch_add(&st->requests, 1);
	r = dd_store_index_read(st, st->be, id, obj, &p, &np);
	if (r == DD_EUNREACHABLE)
		return r;
	if (r == DD_NOTFOUND) /* deleted since the listing */
		return 0;
	if (r < 0) {
		dd_warn("ignoring %s of the store %s", dd_error_last(), st->url);
		dd_error_clear();
		return 0;
	}
	st->cache->ops->put(st->cache, name, obj->ptr, obj->len); /* best effort: read again next time */
	dd_error_clear();
	learn(st, id, p, np, 1);
	dd_store_confirmed(st, name);
	dd_index_packs_free(p, np);
	return 0;
}

/* Is pack slot `p` in the cache, or (asked once) in the store? 1 yes, 0 no, -1 cannot tell. */
static int
pack_somewhere(struct dd_store *st, uint32_t p)
{
	char name[DD_OBJECT_NAME_SIZE];
	int r;

	dd_object_name(name, sizeof(name), "packs", dd_midx_pack_get(st->idx, p).name);
	if (st->cache->ops->exists(st->cache, name) == 1)
		return 1;
	atomic_fetch_add(&st->requests, 1);
	r = st->be->ops->exists(st->be, name);
	if (dd_store_gone(st, r))
		return -1;
	dd_error_clear();
	return r < 0 ? -1 : r;
}

/*
 * An index file the store does not hold is this clone's, waiting for a
 * push: its packs must be in the cache. When one is in neither the cache
 * nor the store (cache/packs deleted to free space), the whole file is
 * dropped from the cache with a warning: its packs are marked failed, so their objects
 * count as absent and are written again, instead of being reused and
 * queued for an upload that cannot happen. Its packs are never sent
 * either, so no store index file can name a pack the store lacks. Runs
 * once, after the listing said which index files the store holds.
 */
static void
drop_orphan_files(struct dd_store *st)
{
	size_t nfiles = st->idx->nfiles;
	char name[DD_OBJECT_NAME_SIZE];

	for (size_t f = 0; f < nfiles && dd_store_live(st); f++) {
		struct dd_midx_file mf = dd_midx_file_get(st->idx, (uint32_t)f);
		uint32_t *packs, bad = DD_MIDX_NONE;
		size_t n;
		if (mf.in_store)
			continue;
		dd_midx_file_packs(st->idx, (uint32_t)f, &packs, &n);
		for (size_t k = 0; k < n && bad == DD_MIDX_NONE; k++)
			if (pack_somewhere(st, packs[k]) == 0)
				bad = packs[k];
		if (bad != DD_MIDX_NONE) {
			char pname[DD_OBJECT_NAME_SIZE];
			dd_object_name(name, sizeof(name), "index", mf.id);
			dd_object_name(pname, sizeof(pname), "packs", dd_midx_pack_get(st->idx, bad).name);
			dd_warn("dropped %s from the local cache: its pack %s is in neither the local cache nor the store "
				"%s (its objects will be written again)", name, pname, st->url);
			if (st->cache->ops->del(st->cache, name) < 0) /* else it would warn on every run */
				dd_error_clear();
			for (size_t k = 0; k < n; k++) {
				struct dd_midx_pack mp = dd_midx_pack_get(st->idx, packs[k]);
				mp.state = DD_MIDX_FAILED;
				dd_midx_pack_set(st->idx, packs[k], &mp);
			}
		}
		free(packs);
	}
}

static int
cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

/*
 * Index files the known-objects record (or an earlier listing) said the
 * store holds but its listing lacks: the store's gc removed them. Their
 * objects must not be reused as if the store had them: the record is
 * forgotten (learnt again from the listings) and the files count as this
 * clone's own, waiting for a push (drop_orphan_files() then keeps them
 * only while their packs are still somewhere).
 */
static void
forget_unlisted(struct dd_store *st, const struct dd_backend_entry *e, size_t n)
{
	uint8_t (*listed)[32] = dd_calloc(n ? n : 1, 32);
	size_t nl = 0, nfiles = st->idx->nfiles, gone = 0;

	for (size_t i = 0; i < n; i++)
		if (index_id(listed[nl], e[i].name) == 0)
			nl++;
	qsort(listed, nl, 32, cmp_id);
	for (size_t f = 0; f < nfiles; f++) {
		struct dd_midx_file mf = dd_midx_file_get(st->idx, (uint32_t)f);
		uint32_t *packs;
		size_t np;
		if (!mf.in_store || bsearch(mf.id, listed, nl, 32, cmp_id))
			continue;
		mf.in_store = 0;
		dd_midx_file_set(st->idx, (uint32_t)f, &mf);
		dd_midx_file_packs(st->idx, (uint32_t)f, &packs, &np);
		for (size_t k = 0; k < np; k++) {
			struct dd_midx_pack mp = dd_midx_pack_get(st->idx, packs[k]);
			mp.in_store = 0;
			dd_midx_pack_set(st->idx, packs[k], &mp);
		}
		free(packs);
		gone++;
	}
	if (gone && st->known && dd_known_forget(st->known) < 0)
		dd_error_clear();
	free(listed);
}

int
dd_store_index_refresh(struct dd_store *st)
{
	struct dd_backend_entry *e = NULL;
	struct dd_buf obj = DD_BUF_INIT;
	size_t n = 0;
	int rc = -1, r;

	if (dd_store_index_load(st) < 0)
		return -1;
	if (!dd_store_live(st))
		return 0;
	pthread_mutex_lock(&st->idxmu);
	if (st->idx_refreshed) {
		pthread_mutex_unlock(&st->idxmu);
		return 0;
	}
	atomic_fetch_add(&st->requests, 1);
	r = st->be->ops->list(st->be, "index", &e, &n);
	if (r < 0) {
		rc = dd_store_gone(st, r) ? 0 : dd_error_wrap("listing the index files of %s", st->url);
		goto out;
	}
	/*
	 * Tests stop a writer here (DNADATA_FAILPOINT=index-listed: dd_failpoint,
	 * util/proc.h), after its listing and before it reuses anything, to race
	 * `gc --store` against it.
	 */
	dd_failpoint("index-listed");
	forget_unlisted(st, e, n);
	for (size_t i = 0; i < n; i++) {
		uint8_t id[32];
		uint32_t slot;
		if (index_id(id, e[i].name) < 0)
			continue;
		slot = dd_midx_find_file(st->idx, id);
		if (slot != DD_MIDX_NONE) {
			learn(st, id, NULL, 0, 1);
			if (!dd_store_known(st, e[i].name))
				dd_store_confirmed(st, e[i].name);
			continue;
		}
		r = fetch_one(st, e[i].name, id, &obj);
		if (dd_store_gone(st, r))
			break;
	}
	drop_orphan_files(st);
	rc = 0;
out:
	st->idx_refreshed = 1;
	pthread_mutex_unlock(&st->idxmu);
	dd_backend_entries_free(e, n);
	dd_buf_release(&obj);
	return rc;
}

int
dd_store_index_relist(struct dd_store *st)
{
	pthread_mutex_lock(&st->idxmu);
	if (!st->idx_relisted) {
		st->idx_relisted = 1;
		st->idx_refreshed = 0;
	}
	pthread_mutex_unlock(&st->idxmu);
	/*
	 * Whichever thread asked first lists; the others wait here for it (the
	 * listing holds idxmu), so each looks again only once the map has what
	 * the second listing found.
	 */
	return dd_store_index_refresh(st) < 0 ? -1 : 1;
}
