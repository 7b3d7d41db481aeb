/*
 * store/verify.c: `git dnadata verify`: check that snapshots are whole.
 *
 * Works on the store itself (or on the cache when offline), bypassing the
 * cache and never filling it, with an index map built from the store's
 * own index files (so the verdict is about what the store holds, not what
 * this clone remembers). Every object the snapshots need must be named by
 * an index file of the store and its pack must be there, long enough to
 * hold it (one listing of packs/: no request per object); objects of a
 * store written before packs must exist as loose objects. With read_data
 * each needed pack is read whole, in the pool: it must hash to its name
 * (else it is named as damaged), its header must open and every object in
 * it must authenticate under its id; then the streams are read end to end
 * and their checksums compared. A listing (store.h) is read from the
 * store to find its entries' chunks, which are checked like a stream's
 * (a bad one named "<listing>/<entry>", found by reading the listing again:
 * no name is kept per entry); a listing that cannot be read is named, and
 * with read_data each entry's content is read back too. Every missing or damaged object or pack
 * is named with dd_warn(); the return is -1 if any was found.
 * While it runs, the store's object path is pointed at the source (it
 * swaps st->cache, st->be and st->idx), so a store must not be shared with
 * other threads during dd_store_verify(). The store's config object is
 * checked too (it is otherwise read from the cache): there, and opening
 * with the key (MAC and key id, FORMAT.md §3.3). Finding anything
 * missing or damaged makes this clone forget its known-objects record: the
 * store lost or spoilt something it was known to hold, and the repair
 * (`push --check`) must not trust what was recorded.
 */
#include "store/internal.h"
#include "util/err.h"
#include "util/hex.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

struct check_job {
	struct dd_job base;
	struct dd_store *st;
	struct dd_chunk_ref ref;
	const char *stream; /* first stream naming it (borrowed) */
	const struct dd_stream_info *listing; /* when that is a listing's entry: the listing (borrowed), else NULL */
	char *label;        /* "<listing>/<entry>", found only when it is bad (name_bad) */
	const char *snap;
	uint32_t pack, off, len; /* where the store's index puts it (pack DD_MIDX_NONE: a loose object) */
	char *err;
	int missing;
	int is_base;           /* a delta base (FORMAT.md §4.3) of base_of, which the stream names */
	uint8_t base_of[32];
};

/* A loose object (a store written before packs): there, and with read_data it opens. */
static void
check_run(struct dd_job *job, struct dd_worker *wk)
{
	struct check_job *j = (struct check_job *)job;
	struct dd_buf plain = DD_BUF_INIT;
	int r = dd_store_get_object(j->st, DD_OBJ_DATA, j->ref.id, j->ref.len, &plain, wk->zd);

	if (r != 0) {
		j->missing = r == DD_NOTFOUND;
		j->err = dd_strdup(dd_error_last() ? dd_error_last() : "unreadable");
	} else if (plain.len != j->ref.len) {
		j->err = dd_strdup("damaged (length differs from the manifest)");
	}
	dd_buf_release(&plain);
}

static int
ref_cmp(const void *a, const void *b)
{
	return memcmp(((const struct check_job *)a)->ref.id, ((const struct check_job *)b)->ref.id, 32);
}

static int
pack_cmp(const void *a, const void *b)
{
	const struct check_job *x = a, *y = b;

	return x->pack != y->pack ? (x->pack < y->pack ? -1 : 1) : (x->off > y->off) - (x->off < y->off);
}

/* One needed pack, read whole (read_data): jobs [first, first + n) of v->jobs are its objects. */
struct pack_job {
	struct dd_job base;
	struct verify *v;
	size_t first, n;
	char *err;
	int missing;
};

struct verify {
	struct dd_store *st;
	struct dd_snapshot **snaps;
	size_t nids;
	struct check_job *jobs;
	size_t njobs, nuniq;
	size_t bad, damaged, missing;
	int no_config, bad_config;
};

/* Where add_job() puts a listing entry's chunk: the verify, the snapshot and its listing. */
struct adding {
	struct verify *v;
	const struct dd_snapshot *snap;
	const struct dd_stream_info *listing;
	size_t *cap;
};

/* No label kept per entry (100,000 entries would cost ~100 bytes each): name_bad finds the entry of a bad chunk. */
static int
add_job(const struct dd_chunk_ref *ref, const char *stream, void *arg)
{
	struct adding *a = arg;
	struct verify *v = a->v;

	(void)stream;
	if (v->njobs == *a->cap) {
		*a->cap = *a->cap ? 2 * *a->cap : 256;
		v->jobs = dd_realloc(v->jobs, *a->cap * sizeof(*v->jobs));
	}
	memset(&v->jobs[v->njobs], 0, sizeof(*v->jobs));
	v->jobs[v->njobs].ref = *ref;
	v->jobs[v->njobs].stream = a->listing->name;
	v->jobs[v->njobs].listing = a->listing;
	v->jobs[v->njobs].snap = a->snap->id;
	v->njobs++;
	return 0;
}

/* A listing's entries' chunks; a listing that cannot be read is named (its own chunks are checked too). */
static void
collect_listing(struct verify *v, const struct dd_snapshot *snap, const struct dd_stream_info *si, size_t *cap)
{
	struct adding a = { v, snap, si, cap };

	if (dd_listing_each_chunk(v->st, si, add_job, &a) < 0) {
		dd_warn("snapshot %.12s: listing '%s' cannot be read: %s", snap->id, si->name, dd_error_last());
		dd_error_clear();
		v->bad++;
		v->damaged++;
	}
}

static struct check_job *
new_job(struct verify *v, size_t *cap)
{
	if (v->njobs == *cap) {
		*cap = *cap ? 2 * *cap : 256;
		v->jobs = dd_realloc(v->jobs, *cap * sizeof(*v->jobs));
	}
	memset(&v->jobs[v->njobs], 0, sizeof(*v->jobs));
	return &v->jobs[v->njobs++];
}

/* A stream's chunk, then its delta bases as far as the index files name them (a reader's depth at most). */
static void
add_chunk(struct verify *v, size_t *cap, const struct dd_chunk_ref *ref, const char *stream, const char *snap)
{
	struct check_job *j = new_job(v, cap);
	struct dd_delta_ref d;
	uint8_t of[32];

	j->ref = *ref;
	j->stream = stream;
	j->snap = snap;
	memcpy(of, ref->id, 32);
	for (int depth = 0; depth < DD_DELTA_DEPTH_MAX && dd_store_delta_of(v->st, of, &d); depth++) {
		j = new_job(v, cap);
		memcpy(j->ref.id, d.base, 32);
		j->ref.len = d.base_len;
		j->stream = stream;
		j->snap = snap;
		j->is_base = 1;
		memcpy(j->base_of, of, 32);
		memcpy(of, d.base, 32);
	}
}

/* Load each snapshot and list its chunks (its listings' entries' too), each unique one once. */
static void
collect(struct verify *v, const char *const *ids)
{
	size_t cap = 0;

	if (dd_store_index_load(v->st) < 0) /* which chunks are deltas, and their bases */
		dd_error_clear(); /* check_objects loads it again and reports the failure */
	for (size_t i = 0; i < v->nids; i++) {
		if (dd_snapshot_load(&v->snaps[i], v->st, ids[i]) != 0) {
			dd_warn("%s", dd_error_last()); /* names the snapshot already */
			v->bad++;
			continue;
		}
		for (size_t s = 0; s < v->snaps[i]->m->nstreams; s++) {
			const struct dd_stream_info *si = &v->snaps[i]->m->streams[s];
			for (size_t c = 0; c < si->nchunks; c++)
				add_chunk(v, &cap, &si->chunks[c], si->name, v->snaps[i]->id);
			if (dd_stream_attr(si, "listing"))
				collect_listing(v, v->snaps[i], si, &cap);
		}
	}
	if (v->njobs)
		qsort(v->jobs, v->njobs, sizeof(*v->jobs), ref_cmp);
	for (size_t i = 0; i < v->njobs; i++)
		if (!i || memcmp(v->jobs[i].ref.id, v->jobs[v->nuniq - 1].ref.id, 32))
			v->jobs[v->nuniq++] = v->jobs[i];
}

/* Bad listing entries' chunks of one listing, sorted by id: labelled by one walk of the listing. */
struct labelling {
	struct check_job **bad;
	size_t n, left;
};

static int
bad_id_cmp(const void *key, const void *elem)
{
	return memcmp(key, (*(struct check_job *const *)elem)->ref.id, 32);
}

static int
bad_cmp(const void *a, const void *b)
{
	const struct check_job *x = *(struct check_job *const *)a, *y = *(struct check_job *const *)b;

	if (x->listing != y->listing)
		return (uintptr_t)x->listing < (uintptr_t)y->listing ? -1 : 1;
	return memcmp(x->ref.id, y->ref.id, 32);
}

static int
label_chunk(const struct dd_chunk_ref *ref, const char *stream, void *arg)
{
	struct labelling *l = arg;
	struct check_job **hit = bsearch(ref->id, l->bad, l->n, sizeof(*l->bad), bad_id_cmp);

	if (hit && !(*hit)->label) {
		(*hit)->label = dd_strdup(stream); /* the first entry naming it, as the listing order gives */
		l->left--;
	}
	return l->left == 0; /* all found: stop reading */
}

/* "<listing>/<entry>" for each bad chunk of jobs [from, to) that a listing's entry names: one walk per listing. */
static void
label_bad(struct verify *v, size_t from, size_t to)
{
	struct check_job **bad = NULL;
	size_t n = 0;

	for (size_t i = from; i < to; i++)
		if (v->jobs[i].err && v->jobs[i].listing) {
			bad = dd_realloc(bad, (n + 1) * sizeof(*bad));
			bad[n++] = &v->jobs[i];
		}
	if (n > 1)
		qsort(bad, n, sizeof(*bad), bad_cmp);
	for (size_t i = 0; i < n;) {
		struct labelling l = { bad + i, 0, 0 };
		while (i + l.n < n && bad[i + l.n]->listing == bad[i]->listing)
			l.n++;
		l.left = l.n;
		if (dd_listing_each_chunk(v->st, bad[i]->listing, label_chunk, &l) < 0)
			dd_error_clear(); /* read once already (collect): the listing's name must do */
		i += l.n;
	}
	free(bad);
}

/* Name each bad object of jobs [from, to). */
static void
name_bad(struct verify *v, size_t from, size_t to)
{
	char name[DD_OBJECT_NAME_SIZE];

	label_bad(v, from, to);
	for (size_t i = from; i < to; i++) {
		struct check_job *j = &v->jobs[i];
		if (!j->err)
			continue;
		dd_object_name(name, sizeof(name), "data", j->ref.id);
		if (j->is_base) {
			char of[DD_ID_HEX_SIZE];
			dd_hex_encode(of, j->base_of, 32);
			dd_warn("%s object %s (the delta base of object %s, stream '%s' of snapshot %.12s): %s",
				j->missing ? "missing" : "damaged", name, of, j->stream, j->snap, j->err);
		} else {
			dd_warn("%s object %s (stream '%s' of snapshot %.12s): %s", j->missing ? "missing" : "damaged",
				name, j->label ? j->label : j->stream, j->snap, j->err);
		}
		v->bad++;
		v->damaged += !j->missing;
		v->missing += j->missing;
	}
}

static int
entry_name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dd_backend_entry *)a)->name, ((const struct dd_backend_entry *)b)->name);
}

static int
loose(struct dd_store *st, const uint8_t id[32])
{
	char name[DD_OBJECT_NAME_SIZE];

	dd_object_name(name, sizeof(name), "data", id);
	return st->cache->ops->exists(st->cache, name) == 1;
}

/* Where each object is: the store's index; its pack listed, and long enough. */
static int
locate(struct verify *v)
{
	struct dd_store *st = v->st;
	struct dd_backend_entry *e = NULL, key;
	char pname[DD_OBJECT_NAME_SIZE];
	size_t n = 0;

	if (st->cache->ops->list(st->cache, "packs", &e, &n) < 0)
		return -1;
	if (n)
		qsort(e, n, sizeof(*e), entry_name_cmp);
	key.name = pname;
	for (size_t i = 0; i < v->nuniq; i++) {
		struct check_job *j = &v->jobs[i];
		struct dd_midx_hit hits[DD_MIDX_MAX_PLACES], hit;
		const struct dd_backend_entry *f = NULL;
		size_t nh = dd_midx_find_all(st->idx, j->ref.id, 0, hits, DD_MIDX_MAX_PLACES);
		j->pack = DD_MIDX_NONE;
		if (!nh)
			continue;
		/* the first place whose pack is there at full size (several packs may hold it) */
		hit = hits[0];
		for (size_t k = 0; k < nh; k++) {
			const struct dd_backend_entry *g;
			dd_object_name(pname, sizeof(pname), "packs", dd_midx_pack_get(st->idx, hits[k].pack).name);
			g = n ? bsearch(&key, e, n, sizeof(*e), entry_name_cmp) : NULL;
			if (k == 0)
				f = g;
			if (g && g->size >= (uint64_t)hits[k].off + hits[k].len) {
				hit = hits[k], f = g;
				break;
			}
		}
		dd_object_name(pname, sizeof(pname), "packs", dd_midx_pack_get(st->idx, hit.pack).name);
		j->pack = hit.pack, j->off = hit.off, j->len = hit.len;
		if (!f && loose(st, j->ref.id)) {
			j->pack = DD_MIDX_NONE; /* a cache holding the object alone (fetched with a ranged read) */
		} else if (!f) {
			j->missing = 1;
			j->err = dd_asprintf("its pack %s is missing", pname);
		} else if (f->size < (uint64_t)hit.off + hit.len) {
			j->err = dd_asprintf("damaged (its pack %s is truncated to %llu bytes)", pname,
					     (unsigned long long)f->size);
		}
	}
	dd_backend_entries_free(e, n);
	return 0;
}

/* Read one pack whole and check it; then each of its needed objects must be where the index says. */
static void
pack_run(struct dd_job *job, struct dd_worker *wk)
{
	struct pack_job *pj = (struct pack_job *)job;
	struct dd_store *st = pj->v->st;
	struct check_job *first = &pj->v->jobs[pj->first];
	struct dd_midx_pack mp = dd_midx_pack_get(st->idx, first->pack);
	char pname[DD_OBJECT_NAME_SIZE];
	struct dd_pack_entry *e = NULL;
	struct dd_buf data = DD_BUF_INIT;
	size_t n = 0, k = 0;
	int r;

	dd_object_name(pname, sizeof(pname), "packs", mp.name);
	r = st->cache->ops->get(st->cache, pname, &data);
	if (r == DD_NOTFOUND)
		pj->missing = 1, pj->err = dd_asprintf("its pack %s is missing", pname);
	else if (r < 0 || dd_store_check_pack(st, mp.name, (const uint8_t *)data.ptr, data.len, &e, &n, 1, wk->zd) < 0)
		pj->err = dd_asprintf("its pack %s is %s", pname, dd_error_last() ? dd_error_last() : "unreadable");
	for (size_t i = 0; !pj->err && i < pj->n; i++) {
		struct check_job *j = &first[i];
		while (k < n && e[k].off < j->off)
			k++;
		if (j->err)
			continue;
		if (k == n || e[k].off != j->off || e[k].len != j->len || memcmp(e[k].id, j->ref.id, 32))
			j->err = dd_asprintf("damaged (the pack %s does not hold it where the index says)", pname);
	}
	for (size_t i = 0; pj->err && i < pj->n; i++) {
		free(first[i].err);
		first[i].missing = pj->missing;
		first[i].err = dd_strdup(pj->err);
	}
	free(e);
	dd_buf_release(&data);
	dd_error_clear();
}

/* read_data: every needed pack read whole in the pool. Jobs must be sorted by pack. */
static void
check_packs(struct verify *v)
{
	struct pack_job *pj = dd_calloc(v->nuniq ? v->nuniq : 1, sizeof(*pj));
	size_t np = 0;

	for (size_t i = 0; i < v->nuniq;) {
		size_t k = i;
		int unchecked = 0;
		while (k < v->nuniq && v->jobs[k].pack == v->jobs[i].pack)
			unchecked |= !v->jobs[k++].err;
		if (v->jobs[i].pack != DD_MIDX_NONE && unchecked) {
			pj[np] = (struct pack_job){ .v = v, .first = i, .n = k - i };
			pj[np].base.run = pack_run;
			dd_pool_submit(v->st->pool, &pj[np++].base);
			if (dd_progress_enabled())
				dd_progress("verifying packs: %zu", np);
		}
		i = k;
	}
	for (size_t i = 0; i < np; i++) {
		dd_pool_wait(v->st->pool, &pj[i].base);
		free(pj[i].err);
	}
	if (dd_progress_enabled())
		dd_progress_done();
	free(pj);
}

/* Loose objects (no index names them): there; with read_data, they open. */
static void
check_loose(struct verify *v, int read_data)
{
	char name[DD_OBJECT_NAME_SIZE];
	size_t from = v->nuniq;

	for (size_t i = 0; i < v->nuniq; i++) {
		struct check_job *j = &v->jobs[i];
		if (j->pack != DD_MIDX_NONE)
			continue;
		if (from == v->nuniq)
			from = i;
		j->st = v->st;
		if (read_data) {
			j->base.run = check_run;
			dd_pool_submit(v->st->pool, &j->base);
			continue;
		}
		dd_object_name(name, sizeof(name), "data", j->ref.id);
		if (v->st->cache->ops->exists(v->st->cache, name) != 1) {
			j->missing = 1;
			j->err = dd_asprintf("no index file of %s names it and it is not a loose object either",
					     v->st->cache_label);
		}
		j->base.done = 1;
	}
	for (size_t i = from; read_data && i < v->nuniq; i++)
		if (v->jobs[i].pack == DD_MIDX_NONE)
			dd_pool_wait(v->st->pool, &v->jobs[i].base);
}

/* Every unique object: located, then checked (packs whole with read_data); names each bad one. */
static int
check_objects(struct verify *v, int read_data)
{
	if (dd_store_index_load(v->st) < 0 || locate(v) < 0)
		return -1;
	if (v->nuniq)
		qsort(v->jobs, v->nuniq, sizeof(*v->jobs), pack_cmp);
	if (read_data)
		check_packs(v);
	check_loose(v, read_data);
	v->bad += v->st->idx_damaged;
	v->damaged += v->st->idx_damaged;
	name_bad(v, 0, v->nuniq);
	return 0;
}

/* Read one stream back to its end (its checksum compared); 0, or -1 with the error set. */
static int
read_stream(struct dd_store *st, const struct dd_stream_info *si)
{
	struct dd_stream_reader *r;
	const void *d;
	size_t l;
	int n;

	if (dd_stream_open(&r, st, si) < 0)
		return -1;
	while ((n = dd_stream_next(r, &d, &l)) == 1)
		;
	dd_stream_close(r);
	return n;
}

/* Each entry of a listing read back through its own content stream. */
static void
read_entries(struct verify *v, const struct dd_snapshot *snap, const struct dd_stream_info *si)
{
	struct dd_listing_reader *lr;
	const struct dd_stream_info *e;
	int n;

	if (dd_listing_open(&lr, v->st, si) < 0) {
		dd_warn("snapshot %.12s: listing '%s': %s", snap->id, si->name, dd_error_last());
		v->bad++;
		return;
	}
	while ((n = dd_listing_next(lr, &e)) == 1) {
		if (read_stream(v->st, e) < 0) {
			dd_warn("snapshot %.12s: listing '%s': %s", snap->id, si->name, dd_error_last());
			v->bad++;
		}
	}
	if (n < 0) {
		dd_warn("snapshot %.12s: %s", snap->id, dd_error_last());
		v->bad++;
	}
	dd_listing_close(lr);
}

/* Read every stream back and compare its checksum; each listing's entries too. */
static void
read_streams(struct verify *v)
{
	for (size_t i = 0; i < v->nids; i++) {
		for (size_t s = 0; v->snaps[i] && s < v->snaps[i]->m->nstreams; s++) {
			const struct dd_stream_info *si = &v->snaps[i]->m->streams[s];
			if (read_stream(v->st, si) < 0) {
				dd_warn("snapshot %.12s: %s", v->snaps[i]->id, dd_error_last());
				v->bad++;
			} else if (dd_stream_attr(si, "listing")) {
				read_entries(v, v->snaps[i], si);
			}
		}
	}
}

/*
 * The store's own config object (every other command reads the cache's copy): still there, and it opens
 * with the key (FORMAT.md §3.3: another key is named as such, anything else as damage).
 */
static int
check_config(struct verify *v, struct dd_backend *be)
{
	struct dd_buf text = DD_BUF_INIT;
	struct dd_store_config cfg;
	int r = be->ops->get(be, "config", &text);

	if (r == DD_NOTFOUND) {
		dd_warn("the store %s has lost its config object", v->st->url);
		v->no_config = 1;
		v->bad++;
		r = 0;
	} else if (r == 0 && (dd_store_config_parse(&cfg, text.ptr, text.len) < 0 ||
			      dd_store_config_check(&cfg, text.ptr, v->st->keys, v->st->url) < 0)) {
		dd_warn("the config object of the store %s: %s", v->st->url, dd_error_last());
		dd_error_clear();
		v->bad_config = 1;
		v->bad++;
	}
	dd_buf_release(&text);
	return r;
}

static int
report(struct verify *v, int read_data)
{
	if (!v->bad) {
		dd_info("%zu snapshot(s), %zu object(s): all present%s", v->nids, v->nuniq,
			read_data ? " and authentic, packs intact, stream checksums match" : "");
		return 0;
	}
	/* the store lost or spoilt something it was known to hold: this clone must ask again */
	if (v->st->known)
		dd_known_forget(v->st->known);
	dd_error("%zu problem(s) found in %zu snapshot(s) (see the warnings above)", v->bad, v->nids);
	if (v->damaged)
		dd_hint("push only adds what the store lacks: delete the damaged pack (or object) files from the store, "
			"then run `git dnadata push --check` where a cache has good copies");
	else if (v->bad_config)
		dd_hint("delete the store's config object, then `git dnadata push --check` puts this machine's cached "
			"copy back (if it opens with this key)");
	else if (v->no_config)
		dd_hint("`git dnadata push --check` puts the store's config back from this machine's cache (and "
			"uploads missing files it has)");
	else
		dd_hint("if this machine's cache has them, `git dnadata push --check` uploads the missing files again");
	return -1;
}

int
dd_store_verify(struct dd_store *st, const char *const *ids, size_t nids, int read_data)
{
	struct verify v = { .st = st, .nids = nids };
	struct dd_backend *saved_cache = st->cache, *saved_be = st->be;
	struct dd_midx *saved_idx = st->idx, vidx;
	int saved_loaded = st->idx_loaded, saved_refreshed = st->idx_refreshed, saved_private, rc = -1;

	v.snaps = dd_calloc(nids ? nids : 1, sizeof(*v.snaps));
	if (st->be && check_config(&v, st->be) < 0)
		goto out;
	if (st->be) { /* read from the store itself, never through or into the cache */
		st->cache = st->be;
		st->be = NULL;
		st->cache_label = st->url;
	}
	dd_midx_init(&vidx); /* the source's own index files */
	st->idx = &vidx;
	st->idx_loaded = 0, st->idx_refreshed = 1, st->idx_damaged = 0;
	saved_private = st->opidx_loaded;
	st->opidx_loaded = 1; /* never read the store's private/: the cache's private index files are the cache's */
	collect(&v, ids);
	rc = check_objects(&v, read_data);
	if (rc == 0 && read_data && !v.bad)
		read_streams(&v);
	st->cache = saved_cache;
	st->be = saved_be;
	st->idx = saved_idx;
	st->idx_loaded = saved_loaded, st->idx_refreshed = saved_refreshed, st->idx_damaged = 0;
	st->opidx_loaded = saved_private;
	st->cache_label = "the local cache";
	dd_midx_clear(&vidx);
	if (rc == 0)
		rc = report(&v, read_data);
out:
	for (size_t i = 0; i < v.nuniq; i++)
		free(v.jobs[i].err), free(v.jobs[i].label);
	free(v.jobs);
	for (size_t i = 0; i < nids; i++)
		dd_snapshot_free(v.snaps[i]);
	free(v.snaps);
	return rc;
}
