/*
 * store/verify.c: `git dnadata verify`: check that snapshots are whole.
 *
 * Reads every object the snapshots need from the store itself (or from the
 * cache when offline), bypassing the cache and never filling it: each
 * unique object is fetched once, authenticated, decompressed and its keyed
 * id recomputed, in the pool. With read_data the streams are then read
 * end to end and their checksums compared. Every missing or damaged object
 * is named with dd_warn(); the return is -1 if any was found.
 * While it runs, the store's object path is pointed at the source (it
 * swaps st->cache and st->be), so a store must not be shared with other
 * threads during dd_store_verify(). The store's config object is checked
 * too (it is otherwise read from the cache). Finding an object missing
 * makes this clone forget its known-objects record: the store lost
 * something it was known to hold.
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
	const char *snap;
	char *err;
	int missing;
};

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

struct verify {
	struct dd_store *st;
	struct dd_snapshot **snaps;
	size_t nids;
	struct check_job *jobs;
	size_t njobs, nuniq;
	size_t bad, damaged, missing;
	int no_config;
};

/* Load each snapshot and list its chunks, each unique one once. */
static void
collect(struct verify *v, const char *const *ids)
{
	size_t cap = 0;

	for (size_t i = 0; i < v->nids; i++) {
		if (dd_snapshot_load(&v->snaps[i], v->st, ids[i]) != 0) {
			dd_warn("%s", dd_error_last()); /* names the snapshot already */
			v->bad++;
			continue;
		}
		for (size_t s = 0; s < v->snaps[i]->m->nstreams; s++) {
			const struct dd_stream_info *si = &v->snaps[i]->m->streams[s];
			for (size_t c = 0; c < si->nchunks; c++) {
				if (v->njobs == cap) {
					cap = cap ? 2 * cap : 256;
					v->jobs = dd_realloc(v->jobs, cap * sizeof(*v->jobs));
				}
				memset(&v->jobs[v->njobs], 0, sizeof(*v->jobs));
				v->jobs[v->njobs].ref = si->chunks[c];
				v->jobs[v->njobs].stream = si->name;
				v->jobs[v->njobs].snap = v->snaps[i]->id;
				v->njobs++;
			}
		}
	}
	if (v->njobs)
		qsort(v->jobs, v->njobs, sizeof(*v->jobs), ref_cmp);
	for (size_t i = 0; i < v->njobs; i++)
		if (!i || memcmp(v->jobs[i].ref.id, v->jobs[v->nuniq - 1].ref.id, 32))
			v->jobs[v->nuniq++] = v->jobs[i];
}

/* Fetch and open every unique object in the pool; name each bad one. */
static void
check_objects(struct verify *v)
{
	char name[DD_OBJECT_NAME_SIZE];

	for (size_t i = 0; i < v->nuniq; i++) {
		v->jobs[i].base.run = check_run;
		v->jobs[i].st = v->st;
		dd_pool_submit(v->st->pool, &v->jobs[i].base);
		if (dd_progress_enabled() && i % 64 == 0)
			dd_progress("verifying objects: %zu/%zu", i, v->nuniq);
	}
	for (size_t i = 0; i < v->nuniq; i++) {
		struct check_job *j = &v->jobs[i];
		dd_pool_wait(v->st->pool, &j->base);
		if (!j->err)
			continue;
		dd_object_name(name, sizeof(name), "data", j->ref.id);
		dd_warn("%s object %s (stream '%s' of snapshot %.12s): %s", j->missing ? "missing" : "damaged", name,
			j->stream, j->snap, j->err);
		v->bad++;
		v->damaged += !j->missing;
		v->missing += j->missing;
	}
	if (dd_progress_enabled())
		dd_progress_done();
}

/* Read every stream back and compare its checksum. */
static void
read_streams(struct verify *v)
{
	for (size_t i = 0; i < v->nids; i++) {
		for (size_t s = 0; v->snaps[i] && s < v->snaps[i]->m->nstreams; s++) {
			struct dd_stream_reader *r;
			const void *d;
			size_t l;
			int n;
			dd_stream_open(&r, v->st, &v->snaps[i]->m->streams[s]);
			while ((n = dd_stream_next(r, &d, &l)) == 1)
				;
			if (n < 0) {
				dd_warn("snapshot %.12s: %s", v->snaps[i]->id, dd_error_last());
				v->bad++;
			}
			dd_stream_close(r);
		}
	}
}

/* The store's own config object (read from the cache otherwise): is it still there? */
static int
check_config(struct verify *v, struct dd_backend *be)
{
	struct dd_buf text = DD_BUF_INIT;
	int r = be->ops->get(be, "config", &text);

	dd_buf_release(&text);
	if (r == DD_NOTFOUND) {
		dd_warn("the store %s has lost its config object", v->st->url);
		v->no_config = 1;
		v->bad++;
		return 0;
	}
	return r;
}

static int
report(struct verify *v, int read_data)
{
	if (!v->bad) {
		dd_info("%zu snapshot(s), %zu object(s): all present and authentic%s", v->nids, v->nuniq,
			read_data ? ", stream checksums match" : "");
		return 0;
	}
	if (v->missing && v->st->known)
		dd_known_forget(v->st->known);
	dd_error("%zu problem(s) found in %zu snapshot(s) (see the warnings above)", v->bad, v->nids);
	if (v->damaged)
		dd_hint("push only adds what the store lacks: delete the damaged object files from the store, then "
			"run `git dnadata push` where a cache has good copies");
	else if (v->no_config)
		dd_hint("`git dnadata push` puts the store's config back from this machine's cache (and uploads "
			"missing objects it has)");
	else
		dd_hint("if this machine's cache has the objects, `git dnadata push` uploads them again");
	return -1;
}

int
dd_store_verify(struct dd_store *st, const char *const *ids, size_t nids, int read_data)
{
	struct verify v = { .st = st, .nids = nids };
	struct dd_backend *saved_cache = st->cache, *saved_be = st->be;
	int rc = -1;

	v.snaps = dd_calloc(nids ? nids : 1, sizeof(*v.snaps));
	if (st->be && check_config(&v, st->be) < 0)
		goto out;
	if (st->be) { /* read from the store itself, never through or into the cache */
		st->cache = st->be;
		st->be = NULL;
		st->cache_label = st->url;
	}
	collect(&v, ids);
	check_objects(&v);
	if (read_data && !v.bad)
		read_streams(&v);
	st->cache = saved_cache;
	st->be = saved_be;
	st->cache_label = "the local cache";
	rc = report(&v, read_data);
out:
	for (size_t i = 0; i < v.nuniq; i++)
		free(v.jobs[i].err);
	free(v.jobs);
	for (size_t i = 0; i < nids; i++)
		dd_snapshot_free(v.snaps[i]);
	free(v.snaps);
	return rc;
}
