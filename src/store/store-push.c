/*
 * store/store-push.c: push and fetch between the local cache and the
 * store; see store.h and docs/FORMAT.md §3.5, §4.
 *
 * Push first sorts the snapshots: one whose manifest the store holds (the
 * known-objects record says so, or one existence check) needs nothing from
 * this clone, since a manifest is put only after everything it names is
 * durable in the store; one the cache holds and the store lacks is pushed;
 * one in neither was made by a clone that has not pushed it (an error, or
 * with --all a warning and a skip). For the snapshots to push it finds,
 * through the index map (the cache's index files, completed once from the
 * store's when a chunk is in none of them), the index files naming the
 * packs that hold their objects, and sends what the store lacks in the
 * order that keeps the store consistent at every moment: packs (in
 * parallel on the transfer pool), a sync, the index files naming them, a
 * sync, then the manifests. An index file the record (or this run's
 * listing) says the store holds is skipped without a request, so a push
 * with nothing missing makes none. An index file not known to be there is
 * checked pack by pack (a HEAD on a remote store before sending 16 MiB, or
 * one listing of packs/ when that takes fewer requests; the create-only put
 * on a local one), which is what makes a rerun after an interruption send
 * only the rest.
 *
 * `push --check` (DD_PUSH_CHECK) trusts neither the record nor the store's
 * manifests: every pack, index file and manifest the snapshots need is
 * checked with a request and re-sent when missing. That is the repair
 * after files were deleted from the store (`verify` names them).
 *
 * Fetch completes the map from the store, then brings what the cache lacks
 * in parallel: a pack the snapshots need at least half of is downloaded
 * whole into the cache (streamed to a temp file, its SHA-256 checked
 * against its name, linked into place: one request and one file per
 * pack), the objects of other packs are read with ranged reads,
 * neighbours together (RUN_MAX), and each joins the cache as a loose
 * object after its AEAD tag is checked.
 */
#include "store/internal.h"
#include "store/store-lock.h"
#include "util/err.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/proc.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct refs {
	struct dd_chunk_ref *v;
	size_t n, cap;
};

static int
ref_cmp(const void *a, const void *b)
{
	return memcmp(((const struct dd_chunk_ref *)a)->id, ((const struct dd_chunk_ref *)b)->id, 32);
}

static int
add_ref(const struct dd_chunk_ref *ref, const char *stream, void *arg)
{
	struct refs *r = arg;

	(void)stream;
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 1024;
		r->v = dd_realloc(r->v, r->cap * sizeof(*r->v));
	}
	r->v[r->n++] = *ref;
	return 0;
}

/*
 * Every chunk of the snapshots `ids` that `flags` (DD_EACH_*) choose, each
 * once (sorted by id): their streams' chunks, and their listings' entries'.
 */
static int all_mapped(struct dd_store *st, const struct refs *r);

static int
collect(struct dd_store *st, const char *const *ids, size_t n, int flags, struct refs *r)
{
	size_t k = 0;
	int again = 1;

redo:
	for (size_t i = 0; i < n; i++) {
		struct dd_snapshot *s = NULL;
		int rc = dd_snapshot_load(&s, st, ids[i]);
		if (rc != 0)
			return rc;
		rc = dd_snapshot_each_chunk_flags(st, s, flags, add_ref, r);
		dd_snapshot_free(s);
		if (rc != 0)
			return -1;
	}
	if (again-- && dd_store_live(st) && !all_mapped(st, r)) {
		/* chunks the cache's index files do not name: the store's may say they are deltas (their bases too) */
		dd_store_index_refresh(st); /* an error or an unreachable store leaves the map as it was */
		dd_error_clear();
		r->n = 0;
		goto redo;
	}
	if (r->n)
		qsort(r->v, r->n, sizeof(*r->v), ref_cmp);
	for (size_t i = 0; i < r->n; i++)
		if (!k || memcmp(r->v[i].id, r->v[k - 1].id, 32))
			r->v[k++] = r->v[i];
	r->n = k;
	return 0;
}

/* Drop from `r` what `done` holds (both sorted by id). */
static void
refs_minus(struct refs *r, const struct refs *done)
{
	size_t k = 0, j = 0;

	for (size_t i = 0; i < r->n; i++) {
		int c = 1;
		while (j < done->n && (c = memcmp(done->v[j].id, r->v[i].id, 32)) < 0)
			j++;
		if (j < done->n && c == 0)
			continue;
		r->v[k++] = r->v[i];
	}
	r->n = k;
}

static int
unreachable_error(struct dd_store *st)
{
	return dd_store_unreachable_error(st, NULL);
}

/* Is every chunk in some pack the map knows? */
static int
all_mapped(struct dd_store *st, const struct refs *r)
{
	struct dd_midx_hit hit;

	for (size_t i = 0; i < r->n; i++)
		if (!dd_midx_find(st->idx, r->v[i].id, 0, &hit))
			return 0;
	return 1;
}

/*
 * The index files the chunks need (flags by file slot); chunks in no pack
 * are legacy objects, ensured in `b`. When some chunk is in no index file
 * the cache knows, the store's index files are learnt first (once).
 */
static uint8_t *
needed_files(struct dd_store *st, const struct refs *r, int check, struct dd_xfer_batch *b)
{
	uint8_t *need;
	char name[DD_OBJECT_NAME_SIZE];

	if (!all_mapped(st, r))
		dd_store_index_refresh(st); /* an error or an unreachable store leaves the map as it was */
	dd_error_clear();
	need = dd_calloc(st->idx->nfiles ? st->idx->nfiles : 1, 1);
	for (size_t i = 0; i < r->n; i++) {
		struct dd_midx_hit hit;
		if (dd_midx_find(st->idx, r->v[i].id, 0, &hit)) {
			struct dd_midx_pack mp = dd_midx_pack_get(st->idx, hit.pack);
			if (mp.file != DD_MIDX_NONE)
				need[mp.file] = 1;
			continue;
		}
		dd_object_name(name, sizeof(name), "data", r->v[i].id);
		if (check || !dd_store_known(st, name))
			dd_xfer_submit(st, b, DD_XFER_ENSURE, name, NULL, 0);
	}
	return need;
}

/*
 * A backend without a cheap exists() is asked for its whole packs/ listing
 * (one request per LIST_PAGE packs) instead of one existence check per pack
 * when that takes fewer requests, going by the packs the index map knows
 * (about the store's); the packs it lacks are then sent with create-only
 * puts, which still refuse to overwrite one that arrived meanwhile.
 */
#define LIST_PAGE 1000

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dd_backend_entry *)a)->name, ((const struct dd_backend_entry *)b)->name);
}

struct listed {
	struct dd_backend_entry *e; /* sorted by name */
	size_t n;
	int have;                   /* the listing was made */
};

/* List the store's packs/ into *l (sorted); on failure (or an unreachable store) *l stays unmade. */
static void
list_packs(struct dd_store *st, struct listed *l)
{
	struct dd_backend_entry *e;
	size_t n;
	int r;

	atomic_fetch_add(&st->requests, 1);
	r = st->be->ops->list(st->be, "packs", &e, &n);
	if (r != 0) {
		dd_store_gone(st, r); /* the existence checks explain any other failure */
		dd_error_clear();
		return;
	}
	if (n >= LIST_PAGE)
		atomic_fetch_add(&st->requests, n / LIST_PAGE); /* the further pages */
	if (n)
		qsort(e, n, sizeof(*e), entry_cmp);
	l->e = e, l->n = n, l->have = 1;
}

/* The listing's entry for `name`, or NULL. */
static const struct dd_backend_entry *
listed_find(const struct listed *l, const char *name)
{
	struct dd_backend_entry key = { .name = (char *)name };

	return l->have && l->n ? bsearch(&key, l->e, l->n, sizeof(*l->e), entry_cmp) : NULL;
}

/*
 * Send the packs of the needed index files the store is not known to hold
 * (every one with `check`); clears need[] for the others.
 */
static void
send_packs(struct dd_store *st, uint8_t *need, size_t nfiles, int check, struct dd_xfer_batch *b,
	   struct dd_transfer_stats *s)
{
	int cheap = st->be->ops->caps & DD_BACKEND_CHEAP_EXISTS;
	char name[DD_OBJECT_NAME_SIZE];
	struct listed l = { 0 };
	size_t tocheck = 0;

	for (size_t f = 0; f < nfiles && !cheap; f++) {
		struct dd_midx_file mf;
		uint32_t *packs;
		size_t n;
		if (!need[f])
			continue;
		mf = dd_midx_file_get(st->idx, (uint32_t)f);
		dd_object_name(name, sizeof(name), "index", mf.id);
		if (!check && (mf.in_store || dd_store_known(st, name)))
			continue;
		dd_midx_file_packs(st->idx, (uint32_t)f, &packs, &n);
		tocheck += n;
		free(packs);
	}
	if (tocheck > 1 + st->idx->npacks / LIST_PAGE)
		list_packs(st, &l);
	for (size_t f = 0; f < nfiles; f++) {
		struct dd_midx_file mf;
		uint32_t *packs;
		size_t n;
		if (!need[f])
			continue;
		mf = dd_midx_file_get(st->idx, (uint32_t)f);
		dd_object_name(name, sizeof(name), "index", mf.id);
		dd_midx_file_packs(st->idx, (uint32_t)f, &packs, &n);
		if (!check && (mf.in_store || dd_store_known(st, name))) {
			need[f] = 0;
			s->skipped_files += 1 + n;
			free(packs);
			continue;
		}
		for (size_t k = 0; k < n; k++) {
			dd_object_name(name, sizeof(name), "packs", dd_midx_pack_get(st->idx, packs[k]).name);
			const struct dd_backend_entry *le = listed_find(&l, name);
			if (le) {
				s->skipped_files++;
				s->skipped_bytes += le->size;
				continue;
			}
			dd_xfer_submit(st, b, (cheap && !check) || l.have ? DD_XFER_UPLOAD : DD_XFER_ENSURE, name, NULL, 0);
		}
		free(packs);
	}
	if (l.have)
		dd_backend_entries_free(l.e, l.n);
}

/* Wait for `b` (0, or -1: a failure, or the store became unreachable). */
static int
settle(struct dd_store *st, struct dd_xfer_batch *b, struct dd_transfer_stats *s)
{
	if (dd_xfer_wait(st, b, "uploading", s) < 0)
		return -1;
	return dd_store_live(st) ? 0 : unreachable_error(st);
}

/* Make what was sent durable, then let the record believe `dir`/<id> of the flagged ids. */
static int
sync_and_confirm(struct dd_store *st, const char *dir, const uint8_t (*ids)[32], size_t n, const uint8_t *flag)
{
	char name[DD_OBJECT_NAME_SIZE];
	int r;

	for (size_t i = 0; dir && i < n; i++) {
		if (flag && !flag[i])
			continue;
		dd_object_name(name, sizeof(name), dir, ids[i]);
		if (!dd_store_known(st, name))
			dd_store_confirmed(st, name); /* recorded only if the sync below succeeds */
	}
	r = dd_store_backend_sync(st);
	if (dd_store_gone(st, r))
		return unreachable_error(st);
	return r < 0 ? -1 : 0;
}

/* Send what is named `dir`/<id> for every flagged id, unless the record has it (with `check`, ask each). */
static void
send_named(struct dd_store *st, const char *dir, const uint8_t (*ids)[32], size_t n, const uint8_t *flag, int check,
	   struct dd_xfer_batch *b, struct dd_transfer_stats *s)
{
	char name[DD_OBJECT_NAME_SIZE];

	for (size_t i = 0; i < n; i++) {
		if (flag && !flag[i])
			continue;
		dd_object_name(name, sizeof(name), dir, ids[i]);
		if (!check && dd_store_known(st, name)) {
			s->skipped_files++;
			continue;
		}
		dd_xfer_submit(st, b, check ? DD_XFER_ENSURE : DD_XFER_UPLOAD, name, NULL, 0);
	}
}

/*
 * Which snapshots need sending: those the cache holds and the store is not
 * known to hold (with `check`, every one either side holds). A snapshot
 * whose manifest the store holds needs nothing from this clone. One in
 * neither is an error, or with DD_PUSH_SKIP_UNAVAILABLE a warning and a
 * skip. The ids kept are moved to the front of `ids`; *nkeep says how many.
 */
static int
select_snapshots(struct dd_store *st, const char **ids, size_t n, int flags, size_t *nkeep,
		 struct dd_transfer_stats *s)
{
	int check = flags & DD_PUSH_CHECK;
	char name[DD_OBJECT_NAME_SIZE];
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t id[32];
		int in_store = -1, in_cache;
		if (dd_hex_decode(id, 32, ids[i]) < 0)
			return dd_error("'%s' is not a snapshot id", ids[i]);
		dd_object_name(name, sizeof(name), "snapshots", id);
		if (!check && dd_store_known(st, name)) {
			s->skipped_files++;
			continue;
		}
		in_cache = st->cache->ops->exists(st->cache, name);
		if (in_cache < 0)
			return -1;
		if (!check || !in_cache) {
			atomic_fetch_add(&st->requests, 1);
			in_store = st->be->ops->exists(st->be, name);
			if (dd_store_gone(st, in_store))
				return unreachable_error(st);
			if (in_store < 0)
				return dd_error_wrap("asking the store %s for snapshot %.12s", st->url, ids[i]);
			if (in_store)
				dd_store_confirmed(st, name); /* recorded after the next sync */
		}
		if (in_store == 1 && !check) {
			s->skipped_files++;
			continue;
		}
		if (in_cache || in_store == 1) {
			ids[k++] = ids[i];
			continue;
		}
		dd_object_name(name, sizeof(name), "private", id);
		if (st->cache->ops->exists(st->cache, name) == 1) { /* only private (a public twin is pushed) */
			dd_debug("snapshot %.12s is private to this clone (a stash): not pushed", ids[i]);
			continue;
		}
		if (!(flags & DD_PUSH_SKIP_UNAVAILABLE)) {
			dd_error("snapshot %s is in neither the local cache nor the store %s", ids[i], st->url);
			dd_hint("it was made in another clone that has not pushed it: run `git dnadata push` there "
				"(or `git dnadata snapshot` here to take a new one)");
			return -1;
		}
		dd_warn("snapshot %.12s is in neither the local cache nor the store %s: skipped (it was made in "
			"another clone that has not pushed it)", ids[i], st->url);
		s->unavailable++;
	}
	*nkeep = k;
	return 0;
}

/*
 * Tests stop a push or fetch at a named point (DNADATA_FAILPOINT=<name>:
 * dd_failpoint, util/proc.h): "push-before-manifests" once every pack and index file
 * is durable in the store, before the manifests; "fetch-listed" once a
 * fetch has listed the store's index files, before it reads anything
 * (t-gc-store.sh runs the store's gc there). Nothing else reads this
 * variable here.
 */

static int
push_all(struct dd_store *st, const char *const *ids_in, size_t n_in, int flags, struct dd_transfer_stats *s)
{
	struct dd_xfer_batch b = { .what = "uploading" };
	struct refs r = { 0 };
	int check = flags & DD_PUSH_CHECK;
	const char **ids = dd_calloc(n_in ? n_in : 1, sizeof(*ids));
	uint8_t *need = NULL, (*fids)[32] = NULL, (*sids)[32] = dd_calloc(n_in ? n_in : 1, 32);
	size_t nfiles, n = 0;
	int rc = -1, locked = 0;

	memcpy(ids, ids_in, n_in * sizeof(*ids));
	if (dd_store_index_load(st) < 0 || select_snapshots(st, ids, n_in, flags, &n, s) < 0)
		goto out;
	/*
	 * Something to send: a shared store lock until the manifests are
	 * durable, and the store's index files listed under it, so an index
	 * file a `gc --store` removed before is sent again rather than trusted
	 * (store-lock.h; store-index.c, forget_unlisted).
	 */
	if (n && ((locked = dd_store_lock_shared(st)) < 0 || dd_store_index_refresh(st) < 0))
		goto out;
	if ((rc = collect(st, ids, n, DD_EACH_STREAMS | DD_EACH_ENTRIES, &r)) != 0)
		goto out;
	rc = -1;
	need = needed_files(st, &r, check, &b);
	nfiles = st->idx->nfiles;
	send_packs(st, need, nfiles, check, &b, s);
	if (settle(st, &b, s) < 0 || sync_and_confirm(st, NULL, NULL, 0, NULL) < 0)
		goto out;
	fids = dd_calloc(nfiles ? nfiles : 1, 32);
	for (size_t f = 0; f < nfiles; f++)
		memcpy(fids[f], dd_midx_file_get(st->idx, (uint32_t)f).id, 32);
	send_named(st, "index", (const uint8_t(*)[32])fids, nfiles, need, check, &b, s);
	if (settle(st, &b, s) < 0 ||
	    sync_and_confirm(st, "index", (const uint8_t(*)[32])fids, nfiles, need) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		dd_hex_decode(sids[i], 32, ids[i]); /* checked by select_snapshots() */
	dd_failpoint("push-before-manifests");
	if (dd_store_lock_check(st) < 0) /* lost (removed as stale by another process) or interrupted */
		goto out;
	send_named(st, "snapshots", (const uint8_t(*)[32])sids, n, NULL, check, &b, s);
	if (settle(st, &b, s) < 0 || sync_and_confirm(st, "snapshots", (const uint8_t(*)[32])sids, n, NULL) < 0)
		goto out;
	for (size_t f = 0; f < nfiles; f++) {
		struct dd_midx_file mf = dd_midx_file_get(st->idx, (uint32_t)f);
		if (need[f] && !mf.in_store) {
			mf.in_store = 1;
			dd_midx_file_set(st->idx, (uint32_t)f, &mf);
		}
	}
	rc = 0;
out:
	if (b.n) { /* after a failure: let the transfers end, keeping the first error */
		struct dd_error_saved why;
		dd_error_save(&why);
		b.what = NULL;
		dd_xfer_wait(st, &b, NULL, NULL);
		dd_error_restore(&why);
	}
	if (locked > 0) /* only a count this push took */
		dd_store_unlock_shared(st);
	free(r.v), free(need), free(fids), free(sids), free(ids);
	return rc;
}

static int fetch_all(struct dd_store *st, const char *const *ids, size_t n, struct dd_transfer_stats *s);

/* A push or fetch: zeroed stats, the store must be online and reachable, and the requests this call made counted. */
static int
transfer(struct dd_store *st, const char *const *ids, size_t n, int flags, struct dd_transfer_stats *stats, int push)
{
	struct dd_transfer_stats own = { 0 };
	uint64_t req0 = atomic_load(&st->requests);
	int rc;

	if (!stats)
		stats = &own;
	*stats = (struct dd_transfer_stats){ 0 };
	if (!st->be)
		return dd_error("cannot %s while offline", push ? "push" : "fetch");
	if (!dd_store_live(st))
		return unreachable_error(st);
	rc = push ? push_all(st, ids, n, flags, stats) : fetch_all(st, ids, n, stats);
	stats->requests = atomic_load(&st->requests) - req0;
	return rc;
}

int
dd_store_push(struct dd_store *st, const char *const *ids, size_t n, struct dd_transfer_stats *stats)
{
	return dd_store_push_flags(st, ids, n, 0, stats);
}

int
dd_store_push_flags(struct dd_store *st, const char *const *ids, size_t n, int flags,
		    struct dd_transfer_stats *stats)
{
	return transfer(st, ids, n, flags, stats, 1);
}

/* Does the cache hold pack slot `p`? (memo: 0 unknown, 1 yes, 2 no) */
static int
cache_has_pack(struct dd_store *st, uint8_t *memo, uint32_t p)
{
	char name[DD_OBJECT_NAME_SIZE];

	if (!memo[p]) {
		dd_object_name(name, sizeof(name), "packs", dd_midx_pack_get(st->idx, p).name);
		memo[p] = st->cache->ops->exists(st->cache, name) == 1 ? 1 : 2;
	}
	return memo[p] == 1;
}

/*
 * Objects next to each other in a pack are read together: one ranged read
 * per run of at most RUN_MAX bytes, skipping gaps of at most RUN_GAP (bytes
 * read for nothing). A fresh clone needs whole packs: ~4 reads per 16 MiB
 * pack instead of one per object (~350 per pack). Memory: one run per
 * transfer in flight.
 */
#define RUN_MAX (4u << 20)
#define RUN_GAP (64u << 10)

struct want {
	struct dd_run_obj o;
	uint32_t pack;
};

static int
want_cmp(const void *a, const void *b)
{
	const struct want *x = a, *y = b;

	if (x->pack != y->pack)
		return x->pack < y->pack ? -1 : 1;
	return x->o.off < y->o.off ? -1 : x->o.off > y->o.off;
}

/* Queue wants[0..n) (sorted) as runs; a run of one object is an ordinary object fetch. */
static void
submit_runs(struct dd_store *st, struct dd_xfer_batch *b, const struct want *w, size_t n)
{
	char name[DD_OBJECT_NAME_SIZE];

	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && w[j].pack == w[i].pack && w[j].o.off >= w[j - 1].o.off + w[j - 1].o.len &&
				w[j].o.off - (w[j - 1].o.off + w[j - 1].o.len) <= RUN_GAP &&
				w[j].o.off + w[j].o.len - w[i].o.off <= RUN_MAX;
		     j++)
			;
		if (j - i == 1) {
			dd_object_name(name, sizeof(name), "data", w[i].o.id);
			dd_xfer_submit(st, b, DD_XFER_OBJECT, name, w[i].o.id, w[i].o.plain_len);
			continue;
		}
		struct dd_run_obj *objs = dd_calloc(j - i, sizeof(*objs));
		for (size_t k = i; k < j; k++)
			objs[k - i] = w[k].o;
		dd_object_name(name, sizeof(name), "packs", dd_midx_pack_get(st->idx, w[i].pack).name);
		dd_xfer_submit_run(st, b, DD_XFER_RUN, name, objs, j - i);
	}
}

/*
 * The wants (sorted by pack), pack by pack: a pack the snapshots need at
 * least half of (by the bytes of its objects) is fetched whole into the
 * cache when the backend can stream one (get_to_fd): one request, one file,
 * checked against its name, at most half of it read for nothing; the other
 * packs' objects by runs.
 */
static void
submit_fetches(struct dd_store *st, struct dd_xfer_batch *b, const struct want *w, size_t n)
{
	char name[DD_OBJECT_NAME_SIZE];
	uint64_t *ends = NULL;
	size_t nends = 0;
	int whole = st->be->ops->get_to_fd != NULL;

	if (whole)
		dd_midx_pack_extents(st->idx, &ends, &nends);
	for (size_t i = 0, j; i < n; i = j) {
		uint64_t need = 0;
		for (j = i; j < n && w[j].pack == w[i].pack; j++)
			need += w[j].o.len;
		if (!whole || w[i].pack >= nends || 2 * need < ends[w[i].pack]) {
			submit_runs(st, b, w + i, j - i);
			continue;
		}
		struct dd_run_obj *objs = dd_calloc(j - i, sizeof(*objs));
		for (size_t k = i; k < j; k++)
			objs[k - i] = w[k].o;
		dd_object_name(name, sizeof(name), "packs", dd_midx_pack_get(st->idx, w[i].pack).name);
		dd_xfer_submit_run(st, b, DD_XFER_PACK, name, objs, j - i);
	}
	free(ends);
}

/* Bring what the cache lacks of the chunks `r` into it, in parallel. */
static int
fetch_refs(struct dd_store *st, const struct refs *r, struct dd_transfer_stats *s)
{
	struct dd_xfer_batch b = { .what = "downloading" };
	char name[DD_OBJECT_NAME_SIZE];
	uint8_t *memo = dd_calloc(st->idx->npacks ? st->idx->npacks : 1, 1);
	struct want *w = dd_calloc(r->n ? r->n : 1, sizeof(*w));
	size_t nw = 0;
	int rc;

	for (size_t i = 0; i < r->n; i++) {
		struct dd_midx_hit hit;
		int found;
		dd_object_name(name, sizeof(name), "data", r->v[i].id);
		found = st->cache->ops->exists(st->cache, name) != 1 && dd_midx_find(st->idx, r->v[i].id, 0, &hit) &&
			hit.pack < st->idx->npacks;
		if ((!found && st->cache->ops->exists(st->cache, name) == 1) ||
		    (found && cache_has_pack(st, memo, hit.pack))) {
			s->skipped_files++;
			s->skipped_bytes += r->v[i].len;
			continue;
		}
		if (!found) { /* a loose object, or one the map lacks: on its own */
			dd_xfer_submit(st, &b, DD_XFER_OBJECT, name, r->v[i].id, r->v[i].len);
			continue;
		}
		memcpy(w[nw].o.id, r->v[i].id, 32);
		w[nw].o.off = hit.off;
		w[nw].o.len = hit.len;
		w[nw].o.plain_len = r->v[i].len;
		w[nw++].pack = hit.pack;
	}
	qsort(w, nw, sizeof(*w), want_cmp);
	submit_fetches(st, &b, w, nw);
	rc = dd_xfer_wait(st, &b, "downloading", s);
	if (rc == 0 && !dd_store_live(st))
		rc = unreachable_error(st);
	free(memo), free(w);
	return rc;
}

/*
 * Two rounds: the streams' chunks (listings' content included), then the
 * chunks of the listings' entries, which only a listing in the cache can
 * tell (none: the second round makes no request).
 */
static int
fetch_all(struct dd_store *st, const char *const *ids, size_t n, struct dd_transfer_stats *s)
{
	struct refs r = { 0 }, entries = { 0 };
	int rc;

	if (dd_store_index_refresh(st) < 0)
		return -1;
	dd_failpoint("fetch-listed");
	rc = collect(st, ids, n, DD_EACH_STREAMS, &r);
	if (rc == 0)
		rc = fetch_refs(st, &r, s);
	if (rc == 0)
		rc = collect(st, ids, n, DD_EACH_ENTRIES, &entries);
	if (rc == 0) {
		refs_minus(&entries, &r);
		rc = fetch_refs(st, &entries, s);
	}
	if (rc == 0) {
		int r2 = dd_store_backend_sync(st); /* records the index files the listing confirmed */
		if (!dd_store_gone(st, r2) && r2 < 0)
			rc = -1;
	}
	free(r.v), free(entries.v);
	return rc;
}

int
dd_store_fetch(struct dd_store *st, const char *const *ids, size_t n, struct dd_transfer_stats *stats)
{
	return transfer(st, ids, n, 0, stats, 0);
}

void
dd_store_set_progress(struct dd_store *st, dd_store_progress_fn fn, void *arg)
{
	st->progress = fn;
	st->progress_arg = arg;
}

uint64_t
dd_store_requests(const struct dd_store *st)
{
	return atomic_load(&((struct dd_store *)st)->requests);
}

int
dd_store_unreachable(const struct dd_store *st)
{
	return atomic_load(&((struct dd_store *)st)->unreachable);
}
