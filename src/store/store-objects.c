/*
 * store/store-objects.c: the object path shared by writers and readers
 * (cache first, then backend), push, and listing snapshots; see store.h,
 * internal.h and docs/FORMAT.md §3.
 *
 * Invariants: an object is in the cache before it is in the backend (so
 * the backend copy can be a hard link of the cache copy, through the
 * cache's local_path()); an object's directory entry is durable (sync)
 * before any manifest naming it is written; nothing is ever overwritten in
 * place. A backend whose exists() is not a cheap local stat is asked about
 * an object only when the known-objects record (known.c) does not already
 * say it holds it; what it confirms joins the record after its next sync.
 */
#include "store/internal.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

const char *
dd_store_type_dir(int type)
{
	return type == DD_OBJ_MANIFEST ? "snapshots" : "data";
}

static int
known(struct dd_store *st, const char *name)
{
	return st->known && dd_known_has(st->known, name);
}

static void
confirmed(struct dd_store *st, const char *name)
{
	if (st->known)
		dd_known_add(st->known, name);
}

/* Upload the cache's copy of `name`: 0, DD_EXISTS (the backend had it), -1. */
static int
upload(struct dd_store *st, const char *name)
{
	char *cpath = st->cache->ops->local_path(st->cache, name);
	int r = st->be->ops->put_file(st->be, name, cpath);

	free(cpath);
	if (r < 0)
		return dd_error_wrap("storing %s in %s", name, st->url);
	confirmed(st, name);
	return r;
}

int
dd_store_put_object(struct dd_store *st, int type, const uint8_t id[32], const void *plain, size_t len,
		    ZSTD_CCtx *zc, struct dd_buf *scratch, int *existed)
{
	char name[DD_OBJECT_NAME_SIZE];
	struct dd_buf own = DD_BUF_INIT, *obj = scratch ? scratch : &own;
	int rc = -1, in_cache, in_be = 0;

	*existed = 0;
	dd_object_name(name, sizeof(name), dd_store_type_dir(type), id);
	/*
	 * An object already there may be another process's write that is not
	 * durable yet: sync_later() puts it in the same sync() batch as a fresh
	 * write, so no manifest becomes durable before the objects it names.
	 * (A name in the known-objects record was durable when it was recorded.)
	 */
	in_cache = st->cache->ops->exists(st->cache, name);
	if (in_cache < 0)
		goto out;
	if (in_cache)
		st->cache->ops->sync_later(st->cache, name);
	if (st->be && known(st, name)) {
		in_be = 1;
	} else if (st->be && in_cache) {
		in_be = st->be->ops->exists(st->be, name);
		if (in_be < 0)
			goto out;
		if (in_be) {
			st->be->ops->sync_later(st->be, name);
			confirmed(st, name);
		}
	}
	if (!in_cache) {
		if (dd_object_seal(obj, st->keys, type, id, plain, len, zc) < 0)
			goto out;
		if (st->cache->ops->put(st->cache, name, obj->ptr, obj->len) < 0) {
			dd_error_wrap("writing %s to the cache", name);
			goto out;
		}
	}
	if (!st->be || in_be) {
		*existed = st->be ? 1 : in_cache;
		rc = 0;
		goto out;
	}
	rc = upload(st, name);
	if (rc < 0)
		goto out;
	*existed = rc == DD_EXISTS;
	rc = 0;
out:
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

/* The backend's copy of `name` (filling the cache): 0, DD_NOTFOUND (error set), -1. */
static int
get_from_backend(struct dd_store *st, int type, const uint8_t id[32], const char *name, size_t max_plain,
		 struct dd_buf *plain, ZSTD_DCtx *zd, struct dd_buf *obj)
{
	struct dd_error_saved why;
	int r = st->be->ops->get(st->be, name, obj);

	if (r == DD_NOTFOUND) {
		dd_error("object %s is missing from the store %s", name, st->url);
		return DD_NOTFOUND;
	}
	if (r < 0)
		return -1;
	if (dd_object_open(plain, st->keys, type, id, obj->ptr, obj->len, max_plain, zd) < 0) {
		/* a replaced store (another key, a newer format) explains it better than "damaged" */
		dd_error_save(&why);
		if (dd_store_config_refresh(st) < 0) {
			dd_error_saved_free(&why);
			return -1;
		}
		dd_error_restore(&why);
		return dd_error_wrap("object %s in the store %s", name, st->url);
	}
	st->cache->ops->put(st->cache, name, obj->ptr, obj->len); /* best effort: a full disk only slows the next read */
	dd_error_clear();
	return 0;
}

int
dd_store_get_object(struct dd_store *st, int type, const uint8_t id[32], size_t max_plain, struct dd_buf *plain,
		    ZSTD_DCtx *zd)
{
	char name[DD_OBJECT_NAME_SIZE];
	struct dd_buf obj = DD_BUF_INIT;
	int rc = -1, r;

	dd_object_name(name, sizeof(name), dd_store_type_dir(type), id);
	r = st->cache->ops->get(st->cache, name, &obj);
	if (r < 0)
		goto out;
	if (r == 0) {
		if (dd_object_open(plain, st->keys, type, id, obj.ptr, obj.len, max_plain, zd) == 0) {
			rc = 0;
			goto out;
		}
		if (!st->be) {
			dd_error_wrap("object %s in %s", name, st->cache_label);
			goto out;
		}
		dd_warn("the cached copy of %s is %s; fetching it again from the store", name, dd_error_last());
		st->cache->ops->del(st->cache, name);
	} else if (!st->be) {
		dd_error("object %s is missing from %s", name, st->cache_label);
		rc = DD_NOTFOUND;
		goto out;
	}
	rc = get_from_backend(st, type, id, name, max_plain, plain, zd, &obj);
out:
	dd_buf_release(&obj);
	return rc;
}

/* Sync the backend; then what it confirmed before the sync joins the known-objects record. */
static int
backend_sync(struct dd_store *st)
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
	if (st->cache->ops->sync(st->cache) < 0)
		return -1;
	if (st->be && backend_sync(st) < 0)
		return -1;
	return 0;
}

int
dd_store_has_snapshot(struct dd_store *st, const char *id_hex)
{
	uint8_t id[32];
	char name[DD_OBJECT_NAME_SIZE];
	int r;

	if (dd_hex_decode(id, 32, id_hex) < 0)
		return dd_error("'%s' is not a snapshot id", id_hex);
	dd_object_name(name, sizeof(name), "snapshots", id);
	r = st->cache->ops->exists(st->cache, name);
	if (r != 0 || !st->be)
		return r;
	if (known(st, name))
		return 1;
	return st->be->ops->exists(st->be, name);
}

/* Make sure the backend holds `name` (asking it: push trusts no record). */
static int
push_one(struct dd_store *st, const char *name, const char *id_hex)
{
	int r = st->be->ops->exists(st->be, name);

	if (r < 0)
		return -1;
	if (r == 1) {
		st->be->ops->sync_later(st->be, name); /* perhaps not durable yet */
		confirmed(st, name);
		return 0;
	}
	if (st->cache->ops->exists(st->cache, name) != 1)
		return dd_error("object %s of snapshot %s is in neither the cache nor the store", name, id_hex);
	return upload(st, name) < 0 ? -1 : 0;
}

static int
push_snapshot(struct dd_store *st, const char *id_hex)
{
	struct dd_snapshot *s = NULL;
	char name[DD_OBJECT_NAME_SIZE];
	uint8_t id[32];
	int rc = -1, r;

	if (!st->be)
		return dd_error("cannot push while offline");
	r = dd_snapshot_load(&s, st, id_hex);
	if (r != 0)
		goto out;
	dd_hex_decode(id, 32, id_hex); /* cannot fail: dd_snapshot_load() checked it */
	for (size_t i = 0; i < s->m->nstreams; i++) {
		const struct dd_stream_info *si = &s->m->streams[i];
		for (size_t j = 0; j < si->nchunks; j++) {
			dd_object_name(name, sizeof(name), "data", si->chunks[j].id);
			if (push_one(st, name, id_hex) < 0)
				goto out;
		}
	}
	if (backend_sync(st) < 0)
		goto out;
	dd_object_name(name, sizeof(name), dd_store_type_dir(DD_OBJ_MANIFEST), id);
	if (upload(st, name) < 0 || backend_sync(st) < 0)
		goto out;
	rc = 0;
out:
	dd_snapshot_free(s);
	return rc;
}

int
dd_store_push(struct dd_store *st, const char *const *ids, size_t n, struct dd_transfer_stats *stats)
{
	if (stats)
		*stats = (struct dd_transfer_stats){ 0 };
	for (size_t i = 0; i < n; i++)
		if (push_snapshot(st, ids[i]) < 0)
			return -1;
	return 0;
}

int
dd_store_fetch(struct dd_store *st, const char *const *ids, size_t n, struct dd_transfer_stats *stats)
{
	struct dd_snapshot *s = NULL;
	struct dd_buf plain = DD_BUF_INIT;
	int r = 0;

	if (stats)
		*stats = (struct dd_transfer_stats){ 0 };
	for (size_t i = 0; i < n && r == 0; i++) {
		r = dd_snapshot_load(&s, st, ids[i]);
		for (size_t k = 0; r == 0 && k < s->m->nstreams; k++) {
			const struct dd_stream_info *si = &s->m->streams[k];
			for (size_t j = 0; r == 0 && j < si->nchunks; j++)
				r = dd_store_get_object(st, DD_OBJ_DATA, si->chunks[j].id, si->chunks[j].len, &plain, NULL);
		}
		dd_snapshot_free(s);
		s = NULL;
	}
	dd_buf_release(&plain);
	return r;
}

void
dd_store_set_progress(struct dd_store *st, dd_store_progress_fn fn, void *arg)
{
	(void)st, (void)fn, (void)arg;
}

int
dd_store_unreachable(const struct dd_store *st)
{
	(void)st;
	return 0;
}

int
dd_store_push_config(struct dd_store *st)
{
	struct dd_buf text = DD_BUF_INIT;
	int rc = -1, r;

	if (!st->be)
		return dd_error("cannot push while offline");
	r = st->be->ops->get(st->be, "config", &text);
	if (r == 0) {
		/* the store has a config: one that differs must still open with our key */
		rc = dd_store_config_learn(st, &text) < 0 ? -1 : DD_EXISTS;
		goto out;
	}
	if (r < 0)
		goto out;
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
