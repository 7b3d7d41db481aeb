/*
 * store/store-list.c: which snapshots the local cache and the store hold,
 * for `git dnadata list` (issue 18), and reading a manifest without
 * changing that answer.
 *
 * "In the cache" means the cache holds the snapshot's manifest (made or
 * fetched here; gc may since have taken data the store also holds). The
 * store is asked with one listing of snapshots/. Looking is read-only: a
 * manifest only the store holds is read into memory, not into the cache,
 * so a `list` never turns a store-only snapshot into a cached one.
 */
#include "store/internal.h"
#include "util/err.h"
#include "util/hex.h"

#include <stdlib.h>
#include <string.h>

/* The ids (64 hex) of the manifests under `be`'s snapshots/: 0, DD_EUNREACHABLE, -1. */
static int
list_ids(struct dd_backend *be, char ***ids, size_t *n)
{
	struct dd_backend_entry *e;
	size_t ne, k = 0;
	int r = be->ops->list(be, "snapshots", &e, &ne);

	if (r < 0)
		return r;
	*ids = dd_calloc(ne ? ne : 1, sizeof(**ids));
	for (size_t i = 0; i < ne; i++) {
		const char *base = strrchr(e[i].name, '/');
		base = base ? base + 1 : e[i].name;
		if (dd_is_hex(base, 64) && strlen(base) == 64)
			(*ids)[k++] = dd_strdup(base);
	}
	*n = k;
	dd_backend_entries_free(e, ne);
	return 0;
}

static int
where_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dd_snapshot_where *)a)->id, ((const struct dd_snapshot_where *)b)->id);
}

/* Append ids[0..n) with `bit`. */
static void
add_ids(struct dd_snapshot_where **out, size_t *nout, char **ids, size_t n, unsigned bit)
{
	*out = dd_realloc(*out, (*nout + n + 1) * sizeof(**out));
	for (size_t i = 0; i < n; i++) {
		struct dd_snapshot_where *w = &(*out)[(*nout)++];
		memset(w, 0, sizeof(*w));
		memcpy(w->id, ids[i], 64);
		w->where = bit;
	}
}

/* Sort by id and keep one entry per id, with the bits of all. */
static void
sort_unique(struct dd_snapshot_where *w, size_t *n)
{
	size_t k = 0;

	if (!*n)
		return;
	qsort(w, *n, sizeof(*w), where_cmp);
	for (size_t i = 1; i < *n; i++) {
		if (!strcmp(w[i].id, w[k].id))
			w[k].where |= w[i].where;
		else
			w[++k] = w[i];
	}
	*n = k + 1;
}

/* Why the store is not listed: NULL when it was (the list is then in *ids), else the reason (caller frees). */
static char *
list_store(struct dd_store *st, char ***ids, size_t *n)
{
	struct dd_error_saved *gone;
	char *why = NULL;
	int r;

	*ids = NULL;
	*n = 0;
	if (!dd_store_live(st)) {
		gone = atomic_load(&st->gone_why);
		return dd_strdup(gone && gone->msg ? gone->msg : "working offline");
	}
	atomic_fetch_add(&st->requests, 1);
	r = list_ids(st->be, ids, n);
	if (r == 0 && *n == 0) {
		/* a file store whose folder is gone (an unmounted share) lists as empty: say so */
		atomic_fetch_add(&st->requests, 1);
		r = st->be->ops->exists(st->be, "config");
		if (r == 0)
			why = dd_asprintf("the store %s holds no config (not mounted, or moved?)", st->url);
		r = r < 0 ? r : 0;
	}
	if (r < 0) {
		why = dd_asprintf("%s", dd_error_last() ? dd_error_last() : "cannot list the store");
		dd_error_clear();
	}
	return why;
}

int
dd_store_list_where(struct dd_store *st, struct dd_snapshot_where **out, size_t *n, char **store_why)
{
	char **cids = NULL, **sids = NULL;
	size_t nc = 0, ns = 0;

	*out = NULL;
	*n = 0;
	if (list_ids(st->cache, &cids, &nc) < 0)
		return dd_error_wrap("listing the snapshots of the local cache");
	*store_why = list_store(st, &sids, &ns);
	add_ids(out, n, cids, nc, DD_WHERE_CACHE);
	add_ids(out, n, sids, ns, DD_WHERE_STORE);
	sort_unique(*out, n);
	dd_store_snapshot_ids_free(cids, nc);
	dd_store_snapshot_ids_free(sids, ns);
	return 0;
}

int
dd_snapshot_peek(struct dd_snapshot **out, struct dd_store *st, const char *id_hex)
{
	struct dd_buf obj = DD_BUF_INIT, plain = DD_BUF_INIT;
	char name[DD_OBJECT_NAME_SIZE];
	uint8_t id[32];
	int rc = -1, r;

	*out = NULL;
	if (dd_hex_decode(id, 32, id_hex) < 0)
		return dd_error("'%s' is not a snapshot id (64 hex digits)", id_hex);
	dd_object_name(name, sizeof(name), "snapshots", id);
	r = st->cache->ops->exists(st->cache, name);
	if (r < 0)
		return -1;
	if (r == 1 || !dd_store_live(st))
		return dd_snapshot_load(out, st, id_hex); /* the cache's (or the error saying why not) */
	atomic_fetch_add(&st->requests, 1);
	r = st->be->ops->get(st->be, name, &obj);
	if (dd_store_gone(st, r)) {
		char *context = dd_asprintf("snapshot %.12s is not in the local cache", id_hex);
		dd_store_unreachable_error(st, context);
		free(context);
		goto out;
	}
	if (r == DD_NOTFOUND) {
		dd_error("snapshot %.12s is in neither the local cache nor the store %s", id_hex, st->url);
		rc = DD_NOTFOUND;
		goto out;
	}
	if (r < 0)
		goto out;
	if (dd_object_open(&plain, st->keys, DD_OBJ_MANIFEST, id, obj.ptr, obj.len, DD_MANIFEST_MAX, NULL) < 0) {
		dd_error_wrap("manifest %s in the store %s", name, st->url);
		goto out;
	}
	rc = dd_snapshot_decode(out, st, id, &plain) < 0 ? -1 : 0;
out:
	dd_buf_release(&obj);
	dd_buf_release(&plain);
	return rc;
}
