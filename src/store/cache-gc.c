/*
 * store/cache-gc.c: what the local cache (<statedir>/cache) costs on disk,
 * what of it may go, in which order, and removing it (docs/FORMAT.md §3.5,
 * "Cache budget").
 *
 * What may go is only what the store is known to hold, decided without a
 * request: for a local store (file://, the default one) a stat of the
 * store's index file (and pack), for a remote one its known-objects record
 * (known.c), whose index files stand for their packs. So a pack or index
 * file waiting for a push, the only copy of anything, is never a candidate.
 * Only data goes: packs and loose objects. Index files and manifests stay
 * (small, and they are the map a later read uses to find an object in the
 * store with one ranged read), so removing files in any order, or being
 * killed between two removals, leaves a cache every reader accepts: an
 * object whose cache copy is gone is read from the store, as after a crash
 * that lost an unsynced fetched copy.
 *
 * Bytes are what removing a file frees: a cache file hard-linked with a
 * local store's (same file system) counts 0, and is never a candidate
 * (removing it frees nothing): with the default local store the cache is
 * not garbage.
 *
 * Order: each removable file takes the newest use of the snapshots in the
 * cache that need it (cache/used/<id>, touched by restore, fetch and
 * snapshot; else the manifest's mtime), with snapshots a local branch
 * names (the caller says which) after every other; files no cached
 * snapshot needs come first. Least recently used first.
 *
 * Private snapshots (store.h; <cache>/private/) count as named. Their own
 * packs (<cache>/private/packs/) are no candidates while a private manifest
 * needs one of the packs their index file names; once none does (the
 * stash was dropped) and the index file is older than PRIVATE_GRACE, the
 * packs and then that index file are items needed by nothing. A private
 * writer in progress (no manifest yet) keeps its files younger than that
 * by renewing their times with each pack it writes (packer.c). A private
 * snapshot that cannot be read keeps every private file.
 */
#include "store/internal.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Private packs no private snapshot needs are gc's to take only once this old (seconds). */
#define PRIVATE_GRACE 3600

/* ---- what the store is known to hold, without a request ---- */

struct holder {
	struct dd_backend *local; /* a file store: exists() is a stat */
	struct dd_known *known;   /* a remote store: its record */
};

/* The folder of a local store's URL, or NULL for a remote one. */
static const char *
local_root(const char *url)
{
	if (!strncmp(url, "file://", 7))
		return url + 7;
	return url[0] == '/' ? url : NULL;
}

static void
holder_open(struct holder *h, const char *cachedir, const char *url)
{
	const char *root = local_root(url);

	memset(h, 0, sizeof(*h));
	if (root) {
		/* a missing store holds nothing: every cache file then stays */
		if (dd_is_dir(root) && dd_backend_file_open(&h->local, root, 0) < 0)
			h->local = NULL;
	} else {
		char *kpath = dd_known_path(cachedir, url);
		dd_known_open(&h->known, kpath, url);
		free(kpath);
	}
	dd_error_clear();
}

static void
holder_close(struct holder *h)
{
	dd_backend_free(h->local);
	dd_known_free(h->known);
}

static int
holder_has(struct holder *h, const char *name)
{
	if (h->local)
		return h->local->ops->exists(h->local, name) == 1;
	return h->known && dd_known_has(h->known, name);
}

static char *
store_url_of(const char *statedir, const char *url)
{
	return url ? dd_strdup(url) : dd_store_default_url(statedir);
}

/* ---- last use ---- */

static char *
used_path(const char *cachedir, const char *id_hex)
{
	char *rel = dd_asprintf("used/%s", id_hex);
	char *p = dd_path_join(cachedir, rel);

	free(rel);
	return p;
}

void
dd_store_snapshot_used(struct dd_store *st, const char *id_hex)
{
	char *dir = st->cache->ops->local_path(st->cache, "used");
	char *path;
	int fd;

	if (!dd_is_hex(id_hex, 64)) {
		free(dir);
		return;
	}
	path = dd_path_join(dir, id_hex);
	/* best effort: a missing record only makes the snapshot look older to gc */
	if (dd_mkdir_p(dir, 0755) == 0 &&
	    (fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) >= 0) {
		if (futimens(fd, NULL) < 0)
			dd_debug("cannot record the use of snapshot %.12s: %s", id_hex, strerror(errno));
		close(fd);
	}
	dd_error_clear();
	free(path);
	free(dir);
}

/* When snapshot `id_hex` was last used: its used/ record, else its manifest's mtime, else 0. */
static int64_t
last_used(const char *cachedir, const char *id_hex)
{
	struct stat sb;
	char *p = used_path(cachedir, id_hex);
	int64_t t = 0;

	if (stat(p, &sb) == 0) {
		t = (int64_t)sb.st_mtime;
	} else {
		char *rel = dd_asprintf("snapshots/%s", id_hex);
		char *m = dd_path_join(cachedir, rel);
		if (stat(m, &sb) == 0)
			t = (int64_t)sb.st_mtime;
		free(m);
		free(rel);
	}
	free(p);
	return t;
}

/* ---- usage (no key needed: status) ---- */

static _Thread_local uint64_t walk_bytes;

static int
walk_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)path, (void)ftw;
	if (flag == FTW_F && S_ISREG(sb->st_mode) && sb->st_nlink == 1)
		walk_bytes += (uint64_t)sb->st_size;
	return 0;
}

/* Bytes of the files only the cache holds (a hard link shared with a local store costs nothing). */
static uint64_t
cache_bytes(const char *cachedir)
{
	walk_bytes = 0;
	if (dd_is_dir(cachedir))
		nftw(cachedir, walk_one, 16, FTW_PHYS);
	return walk_bytes;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
dd_store_cache_usage(struct dd_cache_usage *u, const char *statedir, const char *url)
{
	char *cachedir = dd_path_join(statedir, "cache");
	char *surl = store_url_of(statedir, url);
	struct dd_backend *cache = NULL;
	struct dd_backend_entry *e = NULL;
	struct holder h;
	size_t n = 0;
	int rc = -1;

	memset(u, 0, sizeof(*u));
	memset(&h, 0, sizeof(h));
	u->bytes = cache_bytes(cachedir);
	if (!dd_is_dir(cachedir)) {
		rc = 0;
		goto out;
	}
	if (dd_backend_file_open(&cache, cachedir, 0) < 0 || cache->ops->list(cache, "snapshots", &e, &n) < 0)
		goto out;
	holder_open(&h, cachedir, surl);
	u->pending = dd_calloc(n ? n : 1, sizeof(*u->pending));
	for (size_t i = 0; i < n; i++) {
		const char *base = strrchr(e[i].name, '/');
		if (!base || !dd_is_hex(base + 1, 64) || holder_has(&h, e[i].name))
			continue;
		u->pending[u->npending++] = dd_strdup(base + 1);
	}
	qsort(u->pending, u->npending, sizeof(*u->pending), cmp_str);
	rc = 0;
out:
	holder_close(&h);
	dd_backend_entries_free(e, n);
	dd_backend_free(cache);
	free(surl);
	free(cachedir);
	return rc;
}

void
dd_cache_usage_release(struct dd_cache_usage *u)
{
	for (size_t i = 0; i < u->npending; i++)
		free(u->pending[i]);
	free(u->pending);
	memset(u, 0, sizeof(*u));
}

/* ---- the plan ---- */

/* Packs of the index map, by name: whether the store holds them. */
struct pack_state {
	uint8_t name[32];
	int held;
};

static int
cmp_pack(const void *a, const void *b)
{
	return memcmp(((const struct pack_state *)a)->name, ((const struct pack_state *)b)->name, 32);
}

/* A cache file that might go. */
struct cand {
	char *name;
	uint8_t key[32]; /* pack name or object id */
	int is_pack;
	int held;        /* the store holds it */
	uint64_t bytes;  /* freed by removing it */
	int named;       /* needed by a snapshot a local branch names */
	int64_t used;    /* newest use of a snapshot needing it; INT64_MIN: none */
	const char *snapshot; /* that snapshot (borrowed from the plan's list) */
};

struct planner {
	struct dd_store *st;
	char *cachedir;
	struct holder h;
	struct pack_state *packs;
	size_t npacks;
	struct cand *c;   /* sorted: packs by name, then loose objects by id */
	size_t nc, npack_cands;
	uint8_t (*pneed)[32]; /* private packs a private snapshot needs (names; sorted once marked) */
	size_t npneed, cappneed;
	int pneed_partial; /* some private snapshot could not be read: its needs are unknown, no private file goes */
};

/* Is `name` (hex of an index file id) held by the store? */
static int
index_held(struct planner *pl, const uint8_t id[32])
{
	char name[DD_OBJECT_NAME_SIZE];

	dd_object_name(name, sizeof(name), "index", id);
	return holder_has(&pl->h, name);
}

/* Every ready pack of the index map, with whether the index file naming it (and, locally, the pack) is in the store. */
static void
load_packs(struct planner *pl)
{
	struct dd_midx *m = pl->st->idx;
	char pname[DD_OBJECT_NAME_SIZE];
	size_t k = 0;

	pthread_mutex_lock(&m->mu);
	pl->packs = dd_calloc(m->npacks ? m->npacks : 1, sizeof(*pl->packs));
	for (size_t i = 0; i < m->npacks; i++) {
		if (m->packs[i].state != DD_MIDX_READY || m->packs[i].file == DD_MIDX_NONE)
			continue;
		memcpy(pl->packs[k].name, m->packs[i].name, 32);
		pl->packs[k].held = index_held(pl, m->files[m->packs[i].file].id);
		if (pl->packs[k].held && pl->h.local) {
			dd_object_name(pname, sizeof(pname), "packs", m->packs[i].name);
			pl->packs[k].held = holder_has(&pl->h, pname);
		}
		k++;
	}
	pthread_mutex_unlock(&m->mu);
	pl->npacks = k;
	qsort(pl->packs, k, sizeof(*pl->packs), cmp_pack);
	/* a pack two index files name: held when either says so */
	for (size_t i = 1; i < k; i++)
		if (!memcmp(pl->packs[i].name, pl->packs[i - 1].name, 32) && pl->packs[i - 1].held)
			pl->packs[i].held = 1;
	for (size_t i = k; i-- > 1;)
		if (!memcmp(pl->packs[i].name, pl->packs[i - 1].name, 32) && pl->packs[i].held)
			pl->packs[i - 1].held = 1;
}

static int
pack_held(struct planner *pl, const uint8_t name[32])
{
	struct pack_state key, *p;

	memcpy(key.name, name, 32);
	p = bsearch(&key, pl->packs, pl->npacks, sizeof(*pl->packs), cmp_pack);
	return p && p->held;
}

/* A loose object is held when a pack the store holds has it, or the store has it loose (stores before packs). */
static int
loose_held(struct planner *pl, const uint8_t id[32], const char *name)
{
	struct dd_midx_hit hits[DD_MIDX_MAX_PLACES];
	size_t n = dd_midx_find_all(pl->st->idx, id, 0, hits, DD_MIDX_MAX_PLACES);

	for (size_t i = 0; i < n; i++) {
		struct dd_midx_pack mp = dd_midx_pack_get(pl->st->idx, hits[i].pack);
		if (pack_held(pl, mp.name))
			return 1;
	}
	return holder_has(&pl->h, name);
}

static int
cmp_cand_key(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->is_pack != y->is_pack)
		return y->is_pack - x->is_pack;
	return memcmp(x->key, y->key, 32);
}

/* Bytes removing the cache file `name` frees: 0 when it is a hard link shared with the store. */
static uint64_t
freed_bytes(struct planner *pl, const char *name)
{
	char *p = pl->st->cache->ops->local_path(pl->st->cache, name);
	struct stat sb;
	uint64_t b = 0;

	if (lstat(p, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_nlink == 1)
		b = (uint64_t)sb.st_size;
	free(p);
	return b;
}

/* The cache's packs and loose objects, each with whether the store holds it. */
static int
list_candidates(struct planner *pl)
{
	static const char *const dirs[] = { "packs", "data" };
	struct dd_backend *cache = pl->st->cache;

	for (size_t d = 0; d < 2; d++) {
		struct dd_backend_entry *e = NULL;
		size_t n = 0;
		if (cache->ops->list(cache, dirs[d], &e, &n) < 0)
			return -1;
		pl->c = dd_realloc(pl->c, (pl->nc + n + 1) * sizeof(*pl->c));
		for (size_t i = 0; i < n; i++) {
			const char *base = strrchr(e[i].name, '/');
			struct cand *c = &pl->c[pl->nc];
			memset(c, 0, sizeof(*c));
			if (!base || !dd_is_hex(base + 1, 64) || dd_hex_decode(c->key, 32, base + 1) < 0)
				continue;
			c->is_pack = d == 0;
			c->name = dd_strdup(e[i].name);
			c->used = INT64_MIN;
			c->bytes = freed_bytes(pl, e[i].name);
			c->held = c->is_pack ? pack_held(pl, c->key) : loose_held(pl, c->key, e[i].name);
			pl->nc++;
			pl->npack_cands += c->is_pack;
		}
		dd_backend_entries_free(e, n);
	}
	qsort(pl->c, pl->nc, sizeof(*pl->c), cmp_cand_key);
	return 0;
}

static struct cand *
find_cand(struct planner *pl, int is_pack, const uint8_t key[32])
{
	struct cand k;

	memset(&k, 0, sizeof(k));
	k.is_pack = is_pack;
	memcpy(k.key, key, 32);
	return bsearch(&k, pl->c, pl->nc, sizeof(*pl->c), cmp_cand_key);
}

/* (named, used) of a snapshot raises a file's to the newest of the snapshots needing it. */
static void
mark(struct cand *c, int named, int64_t used, const char *snapshot)
{
	if (!c)
		return;
	if (named > c->named || (named == c->named && used > c->used)) {
		c->named = named;
		c->used = used;
		c->snapshot = snapshot;
	}
}

static int
is_named(const char *id, const char *const *named, size_t nnamed)
{
	for (size_t i = 0; i < nnamed; i++)
		if (!strcmp(id, named[i]))
			return 1;
	return 0;
}

/* Marking the files that hold one cached snapshot's objects. */
struct marking {
	struct planner *pl;
	const struct dd_cache_snapshot *cs;
	int priv; /* a private snapshot: note the private packs it needs too */
};

/* The private packs holding object `id` are needed. */
static void
need_private(struct planner *pl, const uint8_t id[32])
{
	struct dd_midx_hit hits[DD_MIDX_MAX_PLACES];
	size_t nh = dd_midx_find_all(pl->st->opidx, id, 0, hits, DD_MIDX_MAX_PLACES);

	for (size_t h = 0; h < nh; h++) {
		if (pl->npneed == pl->cappneed) {
			pl->cappneed = pl->cappneed ? 2 * pl->cappneed : 64;
			pl->pneed = dd_realloc(pl->pneed, pl->cappneed * sizeof(*pl->pneed));
		}
		memcpy(pl->pneed[pl->npneed++], dd_midx_pack_get(pl->st->opidx, hits[h].pack).name, 32);
	}
}

static int
mark_chunk(const struct dd_chunk_ref *ref, const char *stream, void *arg)
{
	struct marking *mk = arg;
	struct dd_store *st = mk->pl->st;
	struct dd_midx_hit hits[DD_MIDX_MAX_PLACES];
	size_t nh = dd_midx_find_all(st->idx, ref->id, 0, hits, DD_MIDX_MAX_PLACES);

	(void)stream;
	if (mk->priv)
		need_private(mk->pl, ref->id);
	mark(find_cand(mk->pl, 0, ref->id), mk->cs->named, mk->cs->last_used, mk->cs->id);
	for (size_t h = 0; h < nh; h++) {
		struct dd_midx_pack mp = dd_midx_pack_get(st->idx, hits[h].pack);
		mark(find_cand(mk->pl, 1, mp.name), mk->cs->named, mk->cs->last_used, mk->cs->id);
	}
	return 0;
}

/*
 * A snapshot's objects: its streams' and its listings' entries'. A listing
 * is read from the cache alone (planning makes no request); one the cache
 * no longer holds leaves its entries' files needed by no snapshot, so they
 * go early: the store holds them all the same.
 */
static void
mark_snapshot(struct planner *pl, const struct dd_snapshot *s, const struct dd_cache_snapshot *cs, int priv)
{
	struct marking mk = { pl, cs, priv };
	struct dd_backend *be = pl->st->be;

	dd_snapshot_each_chunk_flags(pl->st, s, DD_EACH_STREAMS, mark_chunk, &mk);
	pl->st->be = NULL;
	for (size_t k = 0; k < s->m->nstreams; k++) {
		const struct dd_stream_info *si = &s->m->streams[k];
		if (dd_stream_attr(si, "listing") && dd_listing_each_chunk(pl->st, si, mark_chunk, &mk) < 0) {
			dd_debug("gc: listing '%s' of snapshot %.12s: %s", si->name, s->id, dd_error_last());
			dd_error_clear();
			pl->pneed_partial |= priv;
		}
	}
	pl->st->be = be;
}

/*
 * Every cached snapshot marks the files holding its objects with its last
 * use; a private snapshot (<cache>/private/<id>, store.h) counts as named:
 * what it needs from the store's packs goes last, like what a branch needs
 * (its own private packs are never candidates: the store lacks them).
 */
static int
mark_snapshots(struct planner *pl, struct dd_cache_plan *plan, const char *const *named, size_t nnamed)
{
	struct dd_backend_entry *e = NULL, *pe = NULL;
	size_t n = 0, np = 0;

	if (pl->st->cache->ops->list(pl->st->cache, "snapshots", &e, &n) < 0 ||
	    pl->st->cache->ops->list(pl->st->cache, "private", &pe, &np) < 0) {
		dd_backend_entries_free(e, n);
		return -1;
	}
	e = dd_realloc(e, (n + np + 1) * sizeof(*e));
	if (np)
		memcpy(e + n, pe, np * sizeof(*pe));
	free(pe);
	n += np;
	plan->snapshots = dd_calloc(n ? n : 1, sizeof(*plan->snapshots));
	for (size_t i = 0; i < n; i++) {
		const char *base = strrchr(e[i].name, '/');
		int priv = i >= n - np;
		struct dd_snapshot *s = NULL;
		struct dd_cache_snapshot *cs;
		if (!base || !dd_is_hex(base + 1, 64) || (priv && base != e[i].name + 7))
			continue;
		if (dd_snapshot_load(&s, pl->st, base + 1) != 0) {
			/* its objects then count as needed by nothing: the store holds them all the same */
			dd_warn("gc: skipping snapshot %.12s in the cache: %s", base + 1, dd_error_last());
			dd_error_clear();
			pl->pneed_partial |= priv;
			continue;
		}
		cs = &plan->snapshots[plan->nsnapshots++];
		memcpy(cs->id, base + 1, 65);
		cs->named = priv || is_named(cs->id, named, nnamed);
		cs->last_used = last_used(pl->cachedir, cs->id);
		mark_snapshot(pl, s, cs, priv);
		dd_snapshot_free(s);
	}
	dd_backend_entries_free(e, n);
	return 0;
}

/* ---- private packs no private snapshot needs ---- */

static int
cmp_name32(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

static void
add_item(struct dd_cache_plan *plan, size_t *cap, const char *name, uint64_t bytes)
{
	struct dd_cache_item *it;

	if (plan->nitems == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		plan->items = dd_realloc(plan->items, *cap * sizeof(*plan->items));
	}
	it = &plan->items[plan->nitems++];
	memset(it, 0, sizeof(*it));
	it->name = dd_strdup(name);
	it->bytes = bytes;
	it->last_used = INT64_MIN;
	plan->removable += bytes;
}

/* A private index file none of whose packs a private snapshot needs: it and its packs are items. */
static void
plan_private_file(struct planner *pl, struct dd_cache_plan *plan, size_t *cap, const struct dd_backend_entry *e)
{
	struct dd_midx *m = pl->st->opidx;
	char pname[DD_OBJECT_NAME_SIZE];
	uint8_t id[32];
	uint32_t file, *packs = NULL;
	size_t n = 0, k;

	if (dd_hex_decode(id, 32, e->name + strlen("private/index/")) < 0 ||
	    (file = dd_midx_find_file(m, id)) == DD_MIDX_NONE)
		return; /* not an index file, or one that did not open (warned when loading) */
	dd_midx_file_packs(m, file, &packs, &n);
	for (k = 0; k < n; k++)
		if (pl->npneed && bsearch(dd_midx_pack_get(m, packs[k]).name, pl->pneed, pl->npneed, 32, cmp_name32))
			break;
	if (k == n) { /* the packs first: an index file naming a pack that is gone is harmless, see the top */
		for (k = 0; k < n; k++) {
			struct stat sb;
			char *path;
			dd_object_name(pname, sizeof(pname), "private/packs", dd_midx_pack_get(m, packs[k]).name);
			path = pl->st->cache->ops->local_path(pl->st->cache, pname);
			if (stat(path, &sb) == 0)
				add_item(plan, cap, pname, (uint64_t)sb.st_size);
			free(path);
		}
		add_item(plan, cap, e->name, e->size);
	}
	free(packs);
}

/* The names of every pack of `m` (sorted, caller frees). */
static uint8_t (*pack_names(struct dd_midx *m, size_t *n))[32]
{
	uint8_t (*v)[32];

	pthread_mutex_lock(&m->mu);
	*n = m->npacks;
	v = dd_calloc(*n ? *n : 1, 32);
	for (size_t i = 0; i < *n; i++)
		memcpy(v[i], m->packs[i].name, 32);
	pthread_mutex_unlock(&m->mu);
	if (*n)
		qsort(v, *n, 32, cmp_name32);
	return v;
}

/*
 * Private packs no index file names (a private writer killed before its
 * flush), once older than PRIVATE_GRACE: nothing can come to need them.
 */
static int
plan_private_orphans(struct planner *pl, struct dd_cache_plan *plan, size_t *cap, int64_t now)
{
	struct dd_backend_entry *e = NULL;
	size_t n = 0, nnamed = 0, nmine = 0;
	uint8_t (*named)[32] = pack_names(pl->st->opidx, &nnamed), (*mine)[32] = pack_names(pl->st->pidx, &nmine);
	uint8_t name[32];
	int rc = pl->st->cache->ops->list(pl->st->cache, "private/packs", &e, &n);

	for (size_t i = 0; rc == 0 && i < n; i++) {
		const char *base = strrchr(e[i].name, '/');
		if (!base || strlen(base + 1) != 64 || dd_hex_decode(name, 32, base + 1) < 0 ||
		    e[i].mtime > now - PRIVATE_GRACE)
			continue;
		if ((nnamed && bsearch(name, named, nnamed, 32, cmp_name32)) ||
		    (nmine && bsearch(name, mine, nmine, 32, cmp_name32)))
			continue;
		add_item(plan, cap, e[i].name, e[i].size);
	}
	dd_backend_entries_free(e, n);
	free(named), free(mine);
	return rc;
}

/*
 * Private packs (and their index files) that no private manifest needs any
 * more, once older than PRIVATE_GRACE: a private writer writes its packs
 * and index file before its manifest, and never reuses an older private
 * pack, so nothing can come to need them.
 */
static int
plan_private(struct planner *pl, struct dd_cache_plan *plan)
{
	struct dd_backend_entry *e = NULL;
	size_t n = 0, cap = plan->nitems, k = 0;
	int64_t now = (int64_t)time(NULL);

	if (pl->npneed)
		qsort(pl->pneed, pl->npneed, 32, cmp_name32);
	for (size_t i = 0; i < pl->npneed; i++)
		if (!k || memcmp(pl->pneed[i], pl->pneed[k - 1], 32))
			memmove(pl->pneed[k++], pl->pneed[i], 32);
	pl->npneed = k;
	if (pl->pneed_partial)
		return 0;
	if (pl->st->cache->ops->list(pl->st->cache, "private/index", &e, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (e[i].mtime <= now - PRIVATE_GRACE)
			plan_private_file(pl, plan, &cap, &e[i]);
	dd_backend_entries_free(e, n);
	return plan_private_orphans(pl, plan, &cap, now);
}

/* First to go first: needed by nothing, then unnamed before named, least recently used first. */
static int
cmp_order(const void *a, const void *b)
{
	const struct dd_cache_item *x = a, *y = b;

	if (x->named != y->named)
		return x->named - y->named;
	if (x->last_used != y->last_used)
		return x->last_used < y->last_used ? -1 : 1;
	/* one snapshot's files together (gc reports them as one group) */
	int c = strcmp(x->snapshot, y->snapshot);
	if (c)
		return c;
	/* a private index file after every pack: one naming a removed pack is harmless, a pack none names is lost */
	c = !strncmp(x->name, "private/index/", 14) - !strncmp(y->name, "private/index/", 14);
	return c ? c : strcmp(x->name, y->name);
}

int
dd_store_cache_plan(struct dd_cache_plan *plan, struct dd_store *st, const char *const *named, size_t nnamed)
{
	struct planner pl;
	int rc = -1;

	memset(plan, 0, sizeof(*plan));
	memset(&pl, 0, sizeof(pl));
	pl.st = st;
	pl.cachedir = st->cache->ops->local_path(st->cache, "");
	holder_open(&pl.h, pl.cachedir, st->url);
	plan->bytes = cache_bytes(pl.cachedir);
	if (dd_store_index_load(st) < 0)
		goto out;
	load_packs(&pl);
	if (dd_store_private_index_learn(st, 1) < 0 || list_candidates(&pl) < 0 ||
	    mark_snapshots(&pl, plan, named, nnamed) < 0)
		goto out;
	plan->items = dd_calloc(pl.nc ? pl.nc : 1, sizeof(*plan->items));
	for (size_t i = 0; i < pl.nc; i++) {
		struct cand *c = &pl.c[i];
		if (!c->held) {
			plan->pending_bytes += c->bytes;
			continue;
		}
		if (!c->bytes)
			continue;
		struct dd_cache_item *it = &plan->items[plan->nitems++];
		it->name = c->name, c->name = NULL;
		it->bytes = c->bytes;
		it->named = c->named;
		it->last_used = c->used;
		if (c->snapshot)
			memcpy(it->snapshot, c->snapshot, 65);
		plan->removable += c->bytes;
	}
	if (plan_private(&pl, plan) < 0)
		goto out;
	qsort(plan->items, plan->nitems, sizeof(*plan->items), cmp_order);
	rc = 0;
out:
	for (size_t i = 0; i < pl.nc; i++)
		free(pl.c[i].name);
	free(pl.c);
	free(pl.packs);
	free(pl.pneed);
	holder_close(&pl.h);
	free(pl.cachedir);
	return rc;
}

void
dd_cache_plan_release(struct dd_cache_plan *plan)
{
	for (size_t i = 0; i < plan->nitems; i++)
		free(plan->items[i].name);
	free(plan->items);
	free(plan->snapshots);
	memset(plan, 0, sizeof(*plan));
}

int
dd_store_cache_remove(struct dd_store *st, const struct dd_cache_item *it)
{
	char *p;
	int rc = 0;

	/* only packs and loose objects (and private packs' index files): index files and manifests stay */
	if (strncmp(it->name, "packs/", 6) && strncmp(it->name, "data/", 5) && strncmp(it->name, "private/packs/", 14) &&
	    strncmp(it->name, "private/index/", 14))
		return dd_error("BUG: gc asked to remove %s from the cache", it->name);
	p = st->cache->ops->local_path(st->cache, it->name);
	if (unlink(p) < 0 && errno != ENOENT)
		rc = dd_error_errno("cannot remove %s", p);
	else if (st->cache->ops->forget)
		st->cache->ops->forget(st->cache, it->name); /* an open copy would keep its blocks: closed */
	free(p);
	return rc;
}
