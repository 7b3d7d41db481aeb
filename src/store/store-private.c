/*
 * store/store-private.c: private snapshots, kept in this clone's cache
 * only (store.h, docs/FORMAT.md §3.5 "private/").
 *
 * A private snapshot (a media stash) is written like any other, but its
 * new objects go to a packer of their own (packer.c, `priv`): packs in
 * <cache>/private/packs/<64 hex>, index files in <cache>/private/index/,
 * never uploaded and never mixed with a public writer's pack, so nothing
 * of it can reach the store, even when a public snapshot later needs the
 * same content (the public writer does not see private packs and stores
 * its own copy). Its manifest is <cache>/private/<64 hex>, written
 * atomically, create-only, sealed exactly like snapshots/<id>.
 *
 * Because the public side never looks under private/, push skips these
 * snapshots, status does not count them as pending, and the cache's gc
 * plan lists none of their packs among what it may remove. A private
 * writer reuses what ready public packs and its own run's private packs
 * hold, never an older private pack: gc may take those once no private
 * manifest needs them.
 */
#include "store/internal.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

int
dd_store_private_index_load(struct dd_store *st)
{
	return dd_store_private_index_learn(st, 0);
}

int
dd_store_private_index_learn(struct dd_store *st, int again)
{
	struct dd_backend_entry *e = NULL;
	struct dd_buf obj = DD_BUF_INIT, plain = DD_BUF_INIT;
	size_t n = 0;
	int rc = -1;

	pthread_mutex_lock(&st->idxmu);
	if (st->opidx_loaded && !again) {
		pthread_mutex_unlock(&st->idxmu);
		return 0;
	}
	if (st->cache->ops->list(st->cache, "private/index", &e, &n) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const char *base = strrchr(e[i].name, '/');
		struct dd_index_pack *p = NULL;
		size_t np = 0;
		uint8_t id[32];
		int isnew;
		if (!base || strlen(base + 1) != 64 || dd_hex_decode(id, 32, base + 1) < 0 ||
		    dd_midx_find_file(st->opidx, id) != DD_MIDX_NONE)
			continue; /* not an index file's name, or one read already */
		if (st->cache->ops->get(st->cache, e[i].name, &obj) != 0 ||
		    dd_object_open(&plain, st->keys, DD_OBJ_INDEX, id, obj.ptr, obj.len, DD_INDEX_MAX, NULL) < 0 ||
		    dd_index_decode(&p, &np, (const uint8_t *)plain.ptr, plain.len) < 0) {
			dd_warn("ignoring %s in the local cache: %s", e[i].name, dd_error_last());
			dd_error_clear();
			continue;
		}
		uint32_t slot = dd_midx_file(st->opidx, id, &isnew);
		if (isnew)
			dd_midx_load(st->opidx, slot, p, np);
		dd_index_packs_free(p, np);
	}
	st->opidx_loaded = 1;
	rc = 0;
out:
	pthread_mutex_unlock(&st->idxmu);
	dd_backend_entries_free(e, n);
	dd_buf_release(&obj);
	dd_buf_release(&plain);
	return rc;
}

int
dd_store_private_put(struct dd_store *st, const uint8_t id[32], const struct dd_buf *obj)
{
	char name[DD_OBJECT_NAME_SIZE];
	int r;

	dd_object_name(name, sizeof(name), "private", id);
	r = st->cache->ops->put(st->cache, name, obj->ptr, obj->len);
	if (r < 0)
		return dd_error_wrap("writing %s to the cache", name);
	if (st->cache->ops->sync(st->cache) < 0)
		return -1;
	return r == DD_EXISTS ? DD_EXISTS : 0;
}

int
dd_store_private_load(struct dd_snapshot **out, struct dd_store *st, const uint8_t id[32])
{
	struct dd_buf obj = DD_BUF_INIT, plain = DD_BUF_INIT;
	char name[DD_OBJECT_NAME_SIZE];
	int r;

	dd_object_name(name, sizeof(name), "private", id);
	r = st->cache->ops->get(st->cache, name, &obj);
	if (r == 0) {
		r = dd_object_open(&plain, st->keys, DD_OBJ_MANIFEST, id, obj.ptr, obj.len, DD_MANIFEST_MAX, NULL);
		if (r < 0)
			dd_error_wrap("private snapshot %s in the local cache", name + 8);
		else
			r = dd_snapshot_decode(out, st, id, &plain);
	}
	dd_buf_release(&obj);
	dd_buf_release(&plain);
	return r;
}

int
dd_store_private_drop(struct dd_store *st, const char *id_hex)
{
	char name[DD_OBJECT_NAME_SIZE];
	uint8_t id[32];
	int r;

	if (dd_hex_decode(id, 32, id_hex) < 0)
		return dd_error("'%s' is not a snapshot id (64 hex digits)", id_hex);
	dd_object_name(name, sizeof(name), "private", id);
	r = st->cache->ops->exists(st->cache, name);
	if (r < 0)
		return -1;
	if (r == 0) {
		dd_error("private snapshot %.12s is not in the local cache", id_hex);
		return DD_NOTFOUND;
	}
	if (st->cache->ops->del(st->cache, name) < 0)
		return -1;
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
dd_store_private_list(struct dd_store *st, char ***ids, size_t *n)
{
	struct dd_backend_entry *e = NULL;
	size_t ne = 0;

	*ids = NULL;
	*n = 0;
	if (st->cache->ops->list(st->cache, "private", &e, &ne) < 0)
		return -1;
	*ids = dd_calloc(ne ? ne : 1, sizeof(**ids));
	for (size_t i = 0; i < ne; i++) {
		const char *base = e[i].name + strlen("private/");
		if (strncmp(e[i].name, "private/", 8) || strchr(base, '/') || !dd_is_hex(base, 64))
			continue;
		(*ids)[(*n)++] = dd_strdup(base);
	}
	if (*n > 1)
		qsort(*ids, *n, sizeof(**ids), cmp_str);
	dd_backend_entries_free(e, ne);
	return 0;
}
