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
 * threads during dd_store_verify().
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
		j->missing = r == 1;
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

int
dd_store_verify(struct dd_store *st, const char *const *ids, size_t nids, int read_data)
{
	struct dd_snapshot **snaps = dd_calloc(nids ? nids : 1, sizeof(*snaps));
	struct check_job *jobs = NULL;
	size_t njobs = 0, cap = 0, bad = 0, damaged = 0, nuniq = 0;
	struct dd_backend *saved_cache = st->cache, *saved_be = st->be;
	char name[DD_OBJECT_NAME_SIZE];
	int rc = -1;

	if (st->be) { /* read from the store itself, never through or into the cache */
		st->cache = st->be;
		st->be = NULL;
		st->cache_label = st->url;
	}
	for (size_t i = 0; i < nids; i++) {
		int r = dd_snapshot_load(&snaps[i], st, ids[i]);
		if (r != 0) {
			dd_warn("%s", dd_error_last()); /* names the snapshot already */
			bad++;
			continue;
		}
		for (size_t s = 0; s < snaps[i]->m->nstreams; s++) {
			const struct dd_stream_info *si = &snaps[i]->m->streams[s];
			for (size_t c = 0; c < si->nchunks; c++) {
				if (njobs == cap) {
					cap = cap ? 2 * cap : 256;
					jobs = dd_realloc(jobs, cap * sizeof(*jobs));
				}
				memset(&jobs[njobs], 0, sizeof(*jobs));
				jobs[njobs].ref = si->chunks[c];
				jobs[njobs].stream = si->name;
				jobs[njobs].snap = snaps[i]->id;
				njobs++;
			}
		}
	}
	if (njobs)
		qsort(jobs, njobs, sizeof(*jobs), ref_cmp);
	for (size_t i = 0; i < njobs; i++)
		if (!i || memcmp(jobs[i].ref.id, jobs[nuniq - 1].ref.id, 32))
			jobs[nuniq++] = jobs[i];
	for (size_t i = 0; i < nuniq; i++) {
		jobs[i].base.run = check_run;
		jobs[i].st = st;
		dd_pool_submit(st->pool, &jobs[i].base);
		if (dd_progress_enabled() && i % 64 == 0)
			dd_progress("verifying objects: %zu/%zu", i, nuniq);
	}
	for (size_t i = 0; i < nuniq; i++) {
		dd_pool_wait(st->pool, &jobs[i].base);
		if (jobs[i].err) {
			dd_object_name(name, sizeof(name), "data", jobs[i].ref.id);
			dd_warn("%s object %s (stream '%s' of snapshot %.12s): %s",
				jobs[i].missing ? "missing" : "damaged", name, jobs[i].stream, jobs[i].snap,
				jobs[i].err);
			bad++;
			damaged += !jobs[i].missing;
		}
	}
	if (dd_progress_enabled())
		dd_progress_done();
	if (read_data && !bad) {
		for (size_t i = 0; i < nids; i++) {
			for (size_t s = 0; snaps[i] && s < snaps[i]->m->nstreams; s++) {
				const struct dd_stream_info *si = &snaps[i]->m->streams[s];
				struct dd_stream_reader *r;
				const void *d;
				size_t l;
				int n;
				dd_stream_open(&r, st, si);
				while ((n = dd_stream_next(r, &d, &l)) == 1)
					;
				if (n < 0) {
					dd_warn("snapshot %.12s: %s", snaps[i]->id, dd_error_last());
					bad++;
				}
				dd_stream_close(r);
			}
		}
	}
	if (bad) {
		dd_error("%zu problem(s) found in %zu snapshot(s) (see the warnings above)", bad, nids);
		if (damaged)
			dd_hint("push only adds what the store lacks: delete the damaged object files from the store, then "
				"run `git dnadata push` where a cache has good copies");
		else
			dd_hint("if this machine's cache has the objects, `git dnadata push` uploads them again");
		goto out;
	}
	dd_info("%zu snapshot(s), %zu object(s): all present and authentic%s", nids, nuniq,
		read_data ? ", stream checksums match" : "");
	rc = 0;
out:
	st->cache = saved_cache;
	st->be = saved_be;
	st->cache_label = "the local cache";
	for (size_t i = 0; i < nuniq; i++)
		free(jobs[i].err);
	free(jobs);
	for (size_t i = 0; i < nids; i++)
		dd_snapshot_free(snaps[i]);
	free(snaps);
	return rc;
}
