/*
 * store/store-gc.c: the store's gc (issue 20; docs/DESIGN-NOTES.md, "The
 * store's gc"; FORMAT.md §3.1). Removes from the store what no live
 * snapshot needs and what nothing changed for a grace period, and repacks
 * packs whose live share fell below a threshold.
 *
 * Live: the snapshots the caller names (every ref file in git history, the
 * local records), every manifest younger than the grace period (a snapshot
 * another machine has pushed and not committed yet), every manifest of the
 * local cache the store lacks (pending), every private one; then their
 * chunks (listings followed) and, transitively, the delta bases every index
 * file records for a live object.
 *
 * Invariants, so that a writer or reader on another machine never breaks:
 *  - nothing whose store time (S3 LastModified; a folder's max(mtime,
 *    ctime)) is within the grace period is removed, nor any pack a young
 *    index file names: a push or snapshot in progress keeps what it wrote;
 *  - write new, then delete old: repacked objects go to new packs and a new
 *    index file, both durable, before any index file or pack is removed; old
 *    index files go before the packs they name, so at every instant every
 *    live object is named by an index file whose pack exists (a crash
 *    leaves duplicates or unnamed packs, which the next run removes);
 *  - an index file is never edited: one naming a pack that goes is replaced
 *    by the new index file (naming its packs that stay) and then removed;
 *  - a dry run makes exactly the plan the real run executes.
 * Two gc runs at once (two machines): a run that sees another's work stops
 * with nothing removed. An index file listed but gone when read, or gone
 * from a second listing taken just before the removals, or a new index
 * file there naming a pack this run would remove, means another gc (or a
 * writer reusing old packs) is at work: "run again". Without that, a pack
 * named only by an index file the other gc replaced would look unnamed.
 */
#include "store/internal.h"
#include "store/store-lock.h"
#include "util/err.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/proc.h"

#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum verdict { KEEP = 0, DELETE = 1, REPACK = 2 };

#define DD_STORE_GC_SKEW 300 /* seconds between this machine's clock and the store's said in a warning */
#define DD_STORE_GC_PROBE_AGE 3600 /* seconds: a folder's clock probe file older than this was left by a crash */

/* A set of 32-byte ids (open addressing; ids are keyed hashes, so their first bytes are uniform). */
struct idset {
	uint8_t (*v)[32];
	uint8_t *used;
	size_t cap, n;
};

static size_t
id_slot(const struct idset *s, const uint8_t id[32])
{
	uint64_t h;

	memcpy(&h, id, 8);
	for (size_t i = (size_t)(h & (s->cap - 1));; i = (i + 1) & (s->cap - 1))
		if (!s->used[i] || !memcmp(s->v[i], id, 32))
			return i;
}

static int
idset_has(const struct idset *s, const uint8_t id[32])
{
	return s->cap && s->used[id_slot(s, id)];
}

/* 1 added, 0 it was there. */
static int
idset_add(struct idset *s, const uint8_t id[32])
{
	size_t i;

	if (2 * (s->n + 1) > s->cap) {
		struct idset b = { .cap = s->cap ? 2 * s->cap : 1024 };
		b.v = dd_calloc(b.cap, 32);
		b.used = dd_calloc(b.cap, 1);
		for (size_t k = 0; k < s->cap; k++)
			if (s->used[k]) {
				size_t j = id_slot(&b, s->v[k]);
				memcpy(b.v[j], s->v[k], 32);
				b.used[j] = 1;
			}
		b.n = s->n;
		free(s->v);
		free(s->used);
		*s = b;
	}
	i = id_slot(s, id);
	if (s->used[i])
		return 0;
	memcpy(s->v[i], id, 32);
	s->used[i] = 1;
	s->n++;
	return 1;
}

static void
idset_free(struct idset *s)
{
	free(s->v);
	free(s->used);
	memset(s, 0, sizeof(*s));
}

struct gpack {
	uint8_t name[32];
	uint64_t size;
	int64_t changed;
	int indexed;        /* a readable index file names it */
	int young_index;    /* an index file younger than the grace period names it */
	int counted;        /* its entries were counted (from the first index file naming it) */
	int in_kept_index;  /* an index file that stays names it */
	uint64_t live_bytes;
	size_t nlive;
	enum verdict v;
};

struct gindex {
	uint8_t id[32];
	uint64_t size;
	int64_t changed;
	struct dd_index_pack *p;
	size_t np;
	int doomed;
};

struct gfile {
	uint8_t id[32];
	char name[DD_OBJECT_NAME_SIZE];
	uint64_t size;
	int64_t changed;
	int go;
};

/* One object a repack copies: where it is now. */
struct gcopy {
	struct dd_pack_entry e;
	const struct gpack *from;
};

/* A new pack of the repack: objects copies[first .. first + n). */
struct gnew {
	size_t first, n;
	uint64_t bytes;
	struct dd_index_pack ip; /* filled when written */
};

struct sgc {
	struct dd_store *st;
	const struct dd_store_gc_opts *o;
	struct dd_store_gc_result *res;
	int64_t cutoff; /* changed after this: young */
	int64_t now;    /* the store's clock (without the test shift) */
	struct gpack *packs; /* sorted by name */
	size_t npacks;
	struct gindex *idx;
	size_t nidx;
	struct gfile *man, *loose;
	size_t nman, nloose;
	struct idset live, roots;
	struct gcopy *copies;
	size_t ncopies;
	struct gnew *fresh;
	size_t nfresh;
	const struct dd_index_pack **carry; /* packs that stay, named only by index files that go */
	size_t ncarry;
	uint64_t index_bytes; /* the new index file's size (0: none) */
	uint8_t new_index[32]; /* its id, once written */
};

static int
young(const struct sgc *g, int64_t changed)
{
	return changed > g->cutoff;
}

static int
cmp_pack(const void *a, const void *b)
{
	return memcmp(((const struct gpack *)a)->name, ((const struct gpack *)b)->name, 32);
}

static struct gpack *
find_pack(struct sgc *g, const uint8_t name[32])
{
	struct gpack key;

	memcpy(key.name, name, 32);
	return bsearch(&key, g->packs, g->npacks, sizeof(*g->packs), cmp_pack);
}

/* "dir/<64 hex>" or "dir/<2 hex>/<64 hex>" (fanned out): its id; -1 when it is not such a name. */
static int
name_id(uint8_t id[32], const char *name, const char *dir, int fanned)
{
	size_t dl = strlen(dir), want = dl + 1 + (fanned ? 3 : 0) + 64;
	const char *hex = name + dl + 1 + (fanned ? 3 : 0);

	if (strlen(name) != want || strncmp(name, dir, dl) || name[dl] != '/' || !dd_is_hex(hex, 64))
		return -1;
	if (fanned && (strncmp(name + dl + 1, hex, 2) || name[dl + 3] != '/'))
		return -1;
	return dd_hex_decode(id, 32, hex);
}

/* ---- list ---- */

/*
 * Tests stop gc at a named point (DNADATA_FAILPOINT=<name>: dd_failpoint,
 * util/proc.h) to kill or race it there: "store-gc-listed" once the index files are
 * listed, before they are read; "store-gc-written" once the new packs and index
 * file are durable, before anything is removed; "store-gc-deleting" once
 * the old index files are gone, before their packs are.
 */


static int
list_files(struct sgc *g, const char *dir, int fanned, struct gfile **out, size_t *n)
{
	struct dd_backend *be = g->st->be;
	struct dd_backend_entry *e = NULL;
	size_t ne = 0;
	int r;

	atomic_fetch_add(&g->st->requests, 1);
	r = be->ops->list(be, dir, &e, &ne);
	if (r < 0)
		return dd_error_wrap("listing %s/ of the store %s", dir, g->st->url);
	*out = dd_calloc(ne ? ne : 1, sizeof(**out));
	*n = 0;
	for (size_t i = 0; i < ne; i++) {
		struct gfile *f = &(*out)[*n];
		if (name_id(f->id, e[i].name, dir, fanned) < 0)
			continue; /* not a name of ours: left alone */
		snprintf(f->name, sizeof(f->name), "%s", e[i].name);
		f->size = e[i].size;
		f->changed = e[i].changed > e[i].mtime ? e[i].changed : e[i].mtime;
		(*n)++;
	}
	dd_backend_entries_free(e, ne);
	return 0;
}

static int
list_store(struct sgc *g)
{
	struct gfile *f = NULL;
	size_t n = 0;

	if (list_files(g, "snapshots", 0, &g->man, &g->nman) < 0 || list_files(g, "data", 1, &g->loose, &g->nloose) < 0)
		return -1;
	if (list_files(g, "packs", 1, &f, &n) < 0)
		return -1;
	g->packs = dd_calloc(n ? n : 1, sizeof(*g->packs));
	for (size_t i = 0; i < n; i++) {
		memcpy(g->packs[i].name, f[i].id, 32);
		g->packs[i].size = f[i].size;
		g->packs[i].changed = f[i].changed;
	}
	g->npacks = n;
	qsort(g->packs, n, sizeof(*g->packs), cmp_pack);
	free(f);
	return 0;
}

/*
 * Index file `f`, decoded (the cache's copy when it opens, else the
 * store's, which the cache then keeps). One listed but gone is another gc's
 * work: an error, since what only it named would look unnamed.
 */
static int
read_index(struct sgc *g, const struct gfile *f, struct dd_buf *obj, struct dd_index_pack **p, size_t *np)
{
	struct dd_store *st = g->st;
	int r = dd_store_index_read(st, st->cache, f->id, obj, p, np);

	if (r != 0) {
		dd_error_clear();
		atomic_fetch_add(&st->requests, 1);
		r = dd_store_index_read(st, st->be, f->id, obj, p, np);
		if (r == 0 && st->cache->ops->put(st->cache, f->name, obj->ptr, obj->len) < 0)
			dd_error_clear(); /* best effort: read again next time */
	}
	if (r == DD_NOTFOUND) {
		dd_error_clear();
		dd_error("%s was listed but is gone: another gc may be running", f->name);
		dd_hint("gc removed nothing: run it again");
		return -1;
	}
	if (r < 0) {
		dd_hint("run `git dnadata verify` to see what is damaged; gc removes nothing while an index file "
			"does not open");
		return -1;
	}
	return 0;
}

/* Every index file of the store, decoded. One that opens nowhere stops gc: what it names could not be judged. */
static int
read_indexes(struct sgc *g)
{
	struct dd_buf obj = DD_BUF_INIT;
	struct gfile *f = NULL;
	size_t n = 0;
	int rc = -1;

	if (list_files(g, "index", 0, &f, &n) < 0)
		return -1;
	dd_failpoint("store-gc-listed");
	g->idx = dd_calloc(n ? n : 1, sizeof(*g->idx));
	for (size_t i = 0; i < n; i++) {
		struct gindex *x = &g->idx[g->nidx];
		if (read_index(g, &f[i], &obj, &x->p, &x->np) < 0)
			goto out;
		memcpy(x->id, f[i].id, 32);
		x->size = f[i].size;
		x->changed = f[i].changed;
		g->nidx++;
	}
	rc = 0;
out:
	dd_buf_release(&obj);
	free(f);
	return rc;
}

/*
 * Just before the removals: the index files again. One of the first
 * listing gone, or a new one (not this run's) naming a pack this run would
 * remove, is another gc or a writer at work on what this run judged: stop.
 */
static int
recheck_indexes(struct sgc *g)
{
	struct dd_buf obj = DD_BUF_INIT;
	struct idset now = { 0 }, had = { 0 };
	struct gfile *f = NULL;
	size_t n = 0;
	int rc = -1;

	if (list_files(g, "index", 0, &f, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		idset_add(&now, f[i].id);
	for (size_t i = 0; i < g->nidx; i++) {
		idset_add(&had, g->idx[i].id);
		if (!idset_has(&now, g->idx[i].id)) {
			dd_error("an index file gc read is gone from the store: another gc may be running");
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct dd_index_pack *p = NULL;
		size_t np = 0, k;
		if (idset_has(&had, f[i].id) || (g->index_bytes && !memcmp(f[i].id, g->new_index, 32)))
			continue;
		if (read_index(g, &f[i], &obj, &p, &np) < 0)
			goto out;
		for (k = 0; k < np; k++) {
			const struct gpack *gp = find_pack(g, p[k].name);
			if (gp && gp->v != KEEP)
				break;
		}
		dd_index_packs_free(p, np);
		if (k < np) {
			dd_error("a new index file (%s) names a pack gc was about to remove: another gc or a writer "
				 "is at work", f[i].name);
			goto out;
		}
	}
	rc = 0;
out:
	if (rc < 0)
		dd_hint("gc removed nothing but unneeded copies it wrote: run it again");
	dd_buf_release(&obj);
	idset_free(&now);
	idset_free(&had);
	free(f);
	return rc;
}

/* ---- mark ---- */

static int
mark_chunk(const struct dd_chunk_ref *ref, const char *stream, void *arg)
{
	(void)stream;
	idset_add(arg, ref->id);
	return 0;
}

/* Root `id`: its manifest's chunks are live. 0 (DD_NOTFOUND counted in res->missing), -1. */
static int
mark_root(struct sgc *g, const char *id, int priv)
{
	struct dd_snapshot *s = NULL;
	uint8_t raw[32];
	int r;

	if (dd_hex_decode(raw, 32, id) < 0 || !idset_add(&g->roots, raw))
		return 0;
	r = priv ? dd_snapshot_load(&s, g->st, id) : dd_snapshot_peek(&s, g->st, id);
	if (r == DD_NOTFOUND) { /* never pushed (another clone's), or lost: nothing to keep */
		dd_error_clear();
		g->res->missing++;
		return 0;
	}
	if (r < 0)
		return dd_error_wrap("reading snapshot %.12s", id);
	g->res->live_snapshots++;
	r = dd_snapshot_each_chunk(g->st, s, mark_chunk, &g->live);
	dd_snapshot_free(s);
	if (r < 0)
		return dd_error_wrap("reading the chunk lists of snapshot %.12s", id);
	return 0;
}

/* Manifests in the local cache that the store's listing lacks (pending a push), and private ones. */
static int
mark_local(struct sgc *g)
{
	struct dd_backend_entry *e = NULL;
	struct idset stored = { 0 };
	char **ids = NULL, hex[65];
	size_t ne = 0, n = 0;
	int rc = -1;

	if (g->st->cache->ops->list(g->st->cache, "snapshots", &e, &ne) < 0)
		return -1;
	for (size_t k = 0; k < g->nman; k++)
		idset_add(&stored, g->man[k].id);
	for (size_t i = 0; i < ne; i++) {
		uint8_t id[32];
		if (name_id(id, e[i].name, "snapshots", 0) < 0 || idset_has(&stored, id))
			continue;
		dd_hex_encode(hex, id, 32);
		if (mark_root(g, hex, 0) < 0)
			goto out;
	}
	if (dd_store_private_list(g->st, &ids, &n) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (mark_root(g, ids[i], 1) < 0)
			goto out;
	rc = 0;
out:
	idset_free(&stored);
	dd_store_snapshot_ids_free(ids, n);
	dd_backend_entries_free(e, ne);
	return rc;
}

/*
 * The delta objects of young index files and young packs: a push or
 * snapshot in progress (its manifest not yet written) keeps those, and so
 * their bases, which may sit only in old garbage.
 */
static void
mark_young_deltas(struct sgc *g)
{
	for (size_t i = 0; i < g->nidx; i++)
		for (size_t p = 0; p < g->idx[i].np; p++) {
			const struct gpack *gp = find_pack(g, g->idx[i].p[p].name);
			if (!young(g, g->idx[i].changed) && !(gp && young(g, gp->changed)))
				continue;
			for (size_t k = 0; k < g->idx[i].p[p].n; k++)
				if (g->idx[i].p[p].e[k].type == DD_OBJ_DELTA)
					idset_add(&g->live, g->idx[i].p[p].e[k].id);
		}
}

/* The delta bases of live objects are live, down every chain any index file records. */
static int
mark_bases(struct sgc *g)
{
	int more = 1;

	/* each round adds at least one link of some chain; the last one (nothing added) proves the fixed point */
	for (int round = 0; more; round++) {
		if (round > 2 * DD_DELTA_DEPTH_MAX + 3)
			return dd_error("the delta chains the index files record are deeper than %d: gc removed nothing",
					2 * DD_DELTA_DEPTH_MAX + 2);
		more = 0;
		for (size_t i = 0; i < g->nidx; i++)
			for (size_t p = 0; p < g->idx[i].np; p++)
				for (size_t k = 0; k < g->idx[i].p[p].n; k++) {
					const struct dd_pack_entry *e = &g->idx[i].p[p].e[k];
					if (e->type == DD_OBJ_DELTA && idset_has(&g->live, e->id) &&
					    idset_add(&g->live, e->d.base))
						more = 1;
				}
	}
	return 0;
}

static int
mark(struct sgc *g, const char *const *live, size_t nlive)
{
	char hex[65];

	if (dd_store_index_refresh(g->st) < 0) /* the map's delta bases, for dd_snapshot_each_chunk */
		return -1;
	for (size_t i = 0; i < nlive; i++)
		if (mark_root(g, live[i], 0) < 0)
			return -1;
	for (size_t i = 0; i < g->nman; i++) {
		if (!young(g, g->man[i].changed))
			continue;
		dd_hex_encode(hex, g->man[i].id, 32);
		if (!idset_has(&g->roots, g->man[i].id))
			g->res->young.files++, g->res->young.bytes += g->man[i].size;
		if (mark_root(g, hex, 0) < 0)
			return -1;
	}
	if (mark_local(g) < 0)
		return -1;
	mark_young_deltas(g);
	if (mark_bases(g) < 0)
		return -1;
	g->res->live_objects = g->live.n;
	return 0;
}

/* ---- decide ---- */

static void
count(struct dd_store_gc_count *c, uint64_t bytes)
{
	c->files++;
	c->bytes += bytes;
}

/* Per pack: how many of its objects are live, and which index files name it. */
static void
weigh_packs(struct sgc *g)
{
	for (size_t i = 0; i < g->nidx; i++) {
		const struct gindex *x = &g->idx[i];
		for (size_t p = 0; p < x->np; p++) {
			struct gpack *gp = find_pack(g, x->p[p].name);
			if (!gp)
				continue; /* named but not in the store: verify's business, not gc's */
			gp->indexed = 1;
			if (young(g, x->changed))
				gp->young_index = 1;
			if (gp->counted)
				continue;
			gp->counted = 1;
			for (size_t k = 0; k < x->p[p].n; k++)
				if (idset_has(&g->live, x->p[p].e[k].id)) {
					gp->live_bytes += x->p[p].e[k].len;
					gp->nlive++;
				}
		}
	}
}

static void
judge_packs(struct sgc *g)
{
	for (size_t i = 0; i < g->npacks; i++) {
		struct gpack *gp = &g->packs[i];
		if (young(g, gp->changed) || gp->young_index) {
			if (!gp->nlive)
				count(&g->res->young, gp->size);
			gp->v = KEEP;
		} else if (!gp->indexed || !gp->nlive) {
			gp->v = DELETE;
			count(&g->res->packs, gp->size);
		} else if (gp->live_bytes * 100 < (uint64_t)g->o->repack_below * gp->size) {
			gp->v = REPACK;
			count(&g->res->repacked, gp->size);
		}
	}
	/*
	 * an index file goes when a pack it names goes, or when none of its packs is in the store (it names nothing
	 * any reader can fetch); never a young one: its packs all stay, or are still being written
	 */
	for (size_t i = 0; i < g->nidx; i++) {
		struct gindex *x = &g->idx[i];
		size_t present = 0;
		for (size_t p = 0; p < x->np && !x->doomed; p++) {
			struct gpack *gp = find_pack(g, x->p[p].name);
			present += gp != NULL;
			x->doomed = gp && gp->v != KEEP && !young(g, x->changed);
		}
		if (!present && !young(g, x->changed))
			x->doomed = 1;
		if (x->doomed)
			count(&g->res->indexes, x->size);
	}
	for (size_t i = 0; i < g->nidx; i++)
		for (size_t p = 0; !g->idx[i].doomed && p < g->idx[i].np; p++) {
			struct gpack *gp = find_pack(g, g->idx[i].p[p].name);
			if (gp)
				gp->in_kept_index = 1;
		}
}

static void
judge_files(struct sgc *g)
{
	for (size_t i = 0; i < g->nman; i++) {
		struct gfile *f = &g->man[i];
		f->go = !young(g, f->changed) && !idset_has(&g->roots, f->id);
		if (f->go)
			count(&g->res->manifests, f->size);
	}
	for (size_t i = 0; i < g->nloose; i++) {
		struct gfile *f = &g->loose[i];
		if (idset_has(&g->live, f->id))
			continue;
		if (young(g, f->changed)) {
			count(&g->res->young, f->size);
			continue;
		}
		f->go = 1;
		count(&g->res->loose, f->size);
	}
}

static size_t
entry_bytes(const struct dd_pack_entry *e)
{
	return e->type == DD_OBJ_DELTA ? DD_PACK_ENTRY_DELTA : DD_PACK_ENTRY;
}

/* The live objects of packs being repacked that no pack staying holds, laid out into new packs. */
static void
plan_repack(struct sgc *g)
{
	struct idset kept = { 0 }, taken = { 0 };

	for (size_t i = 0; i < g->nidx; i++)
		for (size_t p = 0; p < g->idx[i].np; p++) {
			const struct gpack *gp = find_pack(g, g->idx[i].p[p].name);
			for (size_t k = 0; gp && gp->v == KEEP && k < g->idx[i].p[p].n; k++)
				idset_add(&kept, g->idx[i].p[p].e[k].id);
		}
	for (size_t i = 0; i < g->nidx; i++)
		for (size_t p = 0; p < g->idx[i].np; p++) {
			const struct gpack *gp = find_pack(g, g->idx[i].p[p].name);
			for (size_t k = 0; gp && gp->v == REPACK && k < g->idx[i].p[p].n; k++) {
				const struct dd_pack_entry *e = &g->idx[i].p[p].e[k];
				if (!idset_has(&g->live, e->id) || idset_has(&kept, e->id) || !idset_add(&taken, e->id))
					continue;
				g->copies = dd_realloc(g->copies, (g->ncopies + 1) * sizeof(*g->copies));
				g->copies[g->ncopies++] = (struct gcopy){ *e, gp };
			}
		}
	for (size_t i = 0; i < g->ncopies; i++) {
		struct gnew *n = g->nfresh ? &g->fresh[g->nfresh - 1] : NULL;
		if (!n || n->bytes >= DD_PACK_TARGET || n->n >= DD_PACK_MAX_OBJECTS) {
			g->fresh = dd_realloc(g->fresh, (g->nfresh + 1) * sizeof(*g->fresh));
			n = &g->fresh[g->nfresh++];
			memset(n, 0, sizeof(*n));
			n->first = i;
			n->bytes = 24 + 9 + 16 + 4; /* nonce, header fields, tag, length */
		}
		n->n++;
		n->bytes += g->copies[i].e.len + entry_bytes(&g->copies[i].e);
	}
	for (size_t i = 0; i < g->nfresh; i++)
		count(&g->res->written, g->fresh[i].bytes);
	idset_free(&kept);
	idset_free(&taken);
}

/* ---- act ---- */

/* Copy new pack `n`'s objects out of their packs (one ranged read each, authenticated), seal, check, put. */
static int
write_new_pack(struct sgc *g, struct gnew *n)
{
	struct dd_store *st = g->st;
	struct dd_buf pack = DD_BUF_INIT, obj = DD_BUF_INIT, scratch = DD_BUF_INIT;
	char pname[DD_OBJECT_NAME_SIZE];
	struct dd_pack_entry *check = NULL;
	size_t *order = dd_malloc(n->n * sizeof(*order)), nc = 0;
	int rc = -1, r;

	for (size_t i = 0; i < n->n; i++)
		order[i] = n->first + i;
	for (size_t i = n->n - 1; i > 0; i--) { /* a random order, as every writer lays a pack out */
		size_t j = randombytes_uniform((uint32_t)i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	n->ip.e = dd_calloc(n->n, sizeof(*n->ip.e));
	n->ip.n = n->n;
	for (size_t i = 0; i < n->n; i++) {
		const struct gcopy *c = &g->copies[order[i]];
		struct dd_delta_ref d;
		dd_object_name(pname, sizeof(pname), "packs", c->from->name);
		atomic_fetch_add(&st->requests, 1);
		r = st->be->ops->get_range(st->be, pname, c->e.off, c->e.len, &obj);
		if (r == DD_NOTFOUND)
			dd_error("%s is gone (another gc?)", pname);
		if (r != 0 || dd_object_delta_base(st->keys, c->e.type, c->e.id, obj.ptr, obj.len, &scratch, &d) < 0 ||
		    (c->e.type == DD_OBJ_DELTA && (memcmp(d.base, c->e.d.base, 32) || d.base_len != c->e.d.base_len))) {
			if (!dd_error_last())
				dd_error("an object of %s is not what its index file says", pname);
			dd_error_wrap("repacking");
			goto out;
		}
		n->ip.e[i] = c->e;
		n->ip.e[i].off = (uint32_t)pack.len;
		dd_buf_put(&pack, obj.ptr, obj.len);
	}
	if (dd_pack_seal_header(&pack, st->keys, n->ip.e, n->ip.n) < 0)
		goto out;
	dd_pack_hash(n->ip.name, pack.ptr, pack.len);
	if (dd_store_check_pack(st, n->ip.name, (const uint8_t *)pack.ptr, pack.len, &check, &nc, 0, NULL) < 0)
		goto out;
	dd_object_name(pname, sizeof(pname), "packs", n->ip.name);
	atomic_fetch_add(&st->requests, 1);
	r = st->be->ops->put(st->be, pname, pack.ptr, pack.len);
	if (r < 0 && r != DD_EXISTS) {
		dd_error_wrap("writing %s to the store %s", pname, st->url);
		goto out;
	}
	dd_error_clear();
	rc = 0;
out:
	free(check);
	free(order);
	dd_buf_release(&pack);
	dd_buf_release(&obj);
	dd_buf_release(&scratch);
	return rc;
}

/*
 * The index file replacing the doomed ones: their packs that stay (and no
 * index file that stays names), then the new packs. Sealed raw (no zstd):
 * its size is known before it is written, so a dry run counts it exactly.
 */
static void
plan_index(struct sgc *g)
{
	uint64_t plain = 9;

	for (size_t i = 0; i < g->nidx; i++)
		for (size_t p = 0; g->idx[i].doomed && p < g->idx[i].np; p++) {
			struct gpack *gp = find_pack(g, g->idx[i].p[p].name);
			if (!gp || gp->v != KEEP || gp->in_kept_index)
				continue;
			gp->in_kept_index = 1; /* once */
			g->carry = dd_realloc(g->carry, (g->ncarry + 1) * sizeof(*g->carry));
			g->carry[g->ncarry++] = &g->idx[i].p[p];
			plain += 36;
			for (size_t k = 0; k < g->idx[i].p[p].n; k++)
				plain += entry_bytes(&g->idx[i].p[p].e[k]);
		}
	for (size_t i = 0; i < g->nfresh; i++) {
		plain += 36;
		for (size_t k = 0; k < g->fresh[i].n; k++)
			plain += entry_bytes(&g->copies[g->fresh[i].first + k].e);
	}
	if (!g->ncarry && !g->nfresh)
		return;
	g->index_bytes = DD_OBJECT_HEADER + DD_OBJECT_INNER + plain + DD_OBJECT_TAG;
	count(&g->res->written, g->index_bytes);
}

static int
write_new_index(struct sgc *g)
{
	struct dd_store *st = g->st;
	struct dd_index_pack *v = NULL;
	struct dd_buf plain = DD_BUF_INIT, obj = DD_BUF_INIT;
	char name[DD_OBJECT_NAME_SIZE];
	uint8_t id[32];
	size_t nv = 0;
	int rc = -1, r;

	if (!g->index_bytes)
		return 0;
	v = dd_calloc(g->ncarry + g->nfresh, sizeof(*v));
	for (size_t i = 0; i < g->ncarry; i++)
		v[nv++] = *g->carry[i]; /* borrowed */
	for (size_t i = 0; i < g->nfresh; i++)
		v[nv++] = g->fresh[i].ip;
	dd_index_encode(&plain, v, nv);
	dd_id_compute(id, st->keys, plain.ptr, plain.len);
	memcpy(g->new_index, id, 32);
	dd_object_name(name, sizeof(name), "index", id);
	if (dd_object_seal_level(&obj, st->keys, DD_OBJ_INDEX, id, plain.ptr, plain.len, NULL, DD_ZLEVEL_NONE) < 0)
		goto out;
	if (obj.len != g->index_bytes) {
		dd_error("internal error: the new index file is %zu bytes, %llu planned", obj.len,
			 (unsigned long long)g->index_bytes);
		goto out;
	}
	atomic_fetch_add(&st->requests, 1);
	r = st->be->ops->put(st->be, name, obj.ptr, obj.len);
	if (r < 0 && r != DD_EXISTS) {
		dd_error_wrap("writing %s to the store %s", name, st->url);
		goto out;
	}
	dd_error_clear();
	if (st->cache->ops->put(st->cache, name, obj.ptr, obj.len) < 0)
		dd_error_clear(); /* the cache learns it on the next listing */
	rc = 0;
out:
	free(v);
	dd_buf_release(&plain);
	dd_buf_release(&obj);
	return rc;
}

/* Remove names[0..n) from `be` (batched where it can); a failure is counted, not fatal. */
static void
remove_names(struct sgc *g, struct dd_backend *be, const char *const *names, size_t n, int count_failures)
{
	int r;

	if (!n)
		return;
	if (be->ops->del_many) {
		atomic_fetch_add(&g->st->requests, (n + 999) / 1000);
		r = be->ops->del_many(be, names, n);
	} else {
		r = 0;
		for (size_t i = 0; i < n; i++)
			if (be->ops->del(be, names[i]) < 0)
				r = -1;
	}
	if (r < 0 && count_failures) {
		dd_warn("gc: %s", dd_error_last() ? dd_error_last() : "a removal failed");
		g->res->failed++;
	}
	dd_error_clear();
}

/* The names of one step's removals, into *v: manifests, index files, or packs and loose objects. */
static size_t
names_of(struct sgc *g, int step, char ***v)
{
	size_t n = 0;

	*v = dd_calloc(g->nman + g->nidx + g->npacks + g->nloose + 1, sizeof(**v));
	for (size_t i = 0; step == 0 && i < g->nman; i++)
		if (g->man[i].go)
			(*v)[n++] = dd_strdup(g->man[i].name);
	for (size_t i = 0; step == 1 && i < g->nidx; i++)
		if (g->idx[i].doomed) {
			(*v)[n] = dd_malloc(DD_OBJECT_NAME_SIZE);
			dd_object_name((*v)[n++], DD_OBJECT_NAME_SIZE, "index", g->idx[i].id);
		}
	for (size_t i = 0; step == 2 && i < g->npacks; i++)
		if (g->packs[i].v != KEEP) {
			(*v)[n] = dd_malloc(DD_OBJECT_NAME_SIZE);
			dd_object_name((*v)[n++], DD_OBJECT_NAME_SIZE, "packs", g->packs[i].name);
		}
	for (size_t i = 0; step == 2 && i < g->nloose; i++)
		if (g->loose[i].go)
			(*v)[n++] = dd_strdup(g->loose[i].name);
	return n;
}

static int
act(struct sgc *g)
{
	struct dd_store *st = g->st;

	for (size_t i = 0; i < g->nfresh; i++)
		if (write_new_pack(g, &g->fresh[i]) < 0)
			return -1;
	if (dd_store_backend_sync(st) < 0 || write_new_index(g) < 0 || dd_store_backend_sync(st) < 0)
		return dd_error_wrap("gc removed nothing");
	dd_failpoint("store-gc-written");
	if (recheck_indexes(g) < 0)
		return dd_error_wrap("gc removed nothing");
	for (int step = 0; step < 3; step++) {
		char **v;
		size_t n;
		/* still ours (not removed as stale by another gc, no interrupt): else nothing more goes */
		if (dd_store_lock_check(st) < 0)
			return dd_error_wrap(step ? "gc stopped: nothing more removed" : "gc removed nothing");
		n = names_of(g, step, &v);
		remove_names(g, st->be, (const char *const *)v, n, 1);
		if (st->be->ops->sync(st->be) < 0)
			dd_error_clear(); /* a removal not yet durable is only done again */
		remove_names(g, st->cache, (const char *const *)v, n, 0); /* this clone's copies: the same files */
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		if (step == 1)
			dd_failpoint("store-gc-deleting");
	}
	/* the known-objects record names what is gone: learnt again from the store's listings */
	if (st->known && dd_known_forget(st->known) < 0)
		dd_error_clear();
	return 0;
}

static void
sgc_release(struct sgc *g)
{
	for (size_t i = 0; i < g->nidx; i++)
		dd_index_packs_free(g->idx[i].p, g->idx[i].np);
	for (size_t i = 0; i < g->nfresh; i++)
		free(g->fresh[i].ip.e);
	free(g->idx);
	free(g->packs);
	free(g->man);
	free(g->loose);
	free(g->copies);
	free(g->fresh);
	free(g->carry);
	idset_free(&g->live);
	idset_free(&g->roots);
}

/*
 * A dry run removes nothing and takes no lock: it says when a writer holds
 * one (a real run would refuse now).
 */
static int
dry_run_locks(struct sgc *g)
{
	struct dd_buf held = DD_BUF_INIT;

	if (dd_store_locks_held(g->st, &held) < 0)
		return -1;
	if (held.len)
		dd_warn("gc: the store is locked (%s): a real run would refuse now", held.ptr);
	dd_buf_release(&held);
	return 0;
}

/*
 * "Now" for the grace period is the store's clock (store-lock.h,
 * dd_store_now: S3's Date, a folder's probe file), never this machine's:
 * a machine whose clock is a day fast must not take yesterday's push for
 * old. A difference of more than a few minutes is said in one line.
 */
static int
store_clock(struct sgc *g)
{
	int64_t now, local = (int64_t)time(NULL), d;
	int r = dd_store_now(g->st, &now);

	if (r < 0)
		return -1;
	d = now - local;
	if (r == 0 && (d > DD_STORE_GC_SKEW || d < -DD_STORE_GC_SKEW))
		dd_warn("gc: this machine's clock is %lld s %s the store's: gc goes by the store's clock",
			(long long)(d < 0 ? -d : d), d < 0 ? "ahead of" : "behind");
	g->now = now;
	g->cutoff = now + g->o->clock_shift - g->o->grace;
	return 0;
}

int
dd_store_gc(struct dd_store *st, const char *const *live, size_t nlive, const struct dd_store_gc_opts *o,
	    struct dd_store_gc_result *res, struct dd_store_gc_uploads *up)
{
	struct sgc g = { .st = st, .o = o, .res = res };
	int rc = -1;

	memset(res, 0, sizeof(*res));
	if (up)
		memset(up, 0, sizeof(*up));
	if (!dd_store_live(st)) {
		dd_error("the store %s cannot be reached: gc works on the store itself", st->url);
		goto out;
	}
	/* the exclusive lock from before the mark's listings until the last removal */
	if ((o->dry_run ? dry_run_locks(&g) : dd_store_lock_exclusive(st)) < 0 || store_clock(&g) < 0)
		goto out;
	res->cutoff = g.cutoff;
	if (list_store(&g) < 0 || read_indexes(&g) < 0 || mark(&g, live, nlive) < 0)
		goto out;
	if (!dd_store_live(st)) {
		dd_store_unreachable_error(st, "reading the live snapshots");
		goto out;
	}
	weigh_packs(&g);
	judge_packs(&g);
	judge_files(&g);
	plan_repack(&g);
	plan_index(&g);
	if (!o->dry_run && act(&g) < 0)
		goto out;
	/*
	 * Under the exclusive lock, still ours (checked as before each removal
	 * batch): no writer is resuming one of them. A dry run lists the same ones.
	 */
	if (up && !o->dry_run && st->be->ops->uploads && dd_store_lock_check(st) < 0)
		goto out;
	if (up)
		dd_store_gc_uploads(st, g.cutoff, o->dry_run, up);
	/* a folder's clock probes a crash left behind (a live one exists for microseconds) */
	if (!o->dry_run && st->be->ops->sweep_probes)
		st->be->ops->sweep_probes(st->be, g.now - DD_STORE_GC_PROBE_AGE);
	rc = 0;
out:
	dd_store_unlock_all(st);
	if (rc < 0)
		dd_error_wrap("the store's gc");
	sgc_release(&g);
	return rc;
}
