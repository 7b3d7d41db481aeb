/*
 * workflow/gc-store.c: `gc --store` (issue 20): gather every snapshot this
 * clone can tell is live, then let store/store-gc.c remove from the store
 * what none of them needs and what is older than the grace period, and
 * store/store-gc-uploads.c abort the multipart uploads left unfinished
 * before the same cutoff (from dd_store_gc, under its exclusive lock).
 *
 * Live, generously (deleting a live object is the one unforgivable bug):
 * the ref files of every commit reachable from any ref of the repository
 * (branches, tags, remote-tracking branches, the rest under refs/), HEAD
 * and each linked worktree's HEAD, and every commit their reflogs name;
 * the ref files of the work tree, the main one and every linked one; every
 * snapshot a record of this clone names (working databases, stashes,
 * templates, spares, switch journals), under the snapshot key and the media
 * keys, and each media folder's recorded snapshot; and, in store-gc.c, every manifest
 * younger than the grace period, the cache's pending and private ones.
 * What other machines have not pushed (git or store) is not seen: the
 * grace period covers work in progress, `git fetch` first covers branches
 * pushed since the last fetch (not done here: gc never talks to a git
 * remote, which may ask for credentials).
 */
#include "workflow/gc.h"
#include "workflow/workflow.h"
#include "config/config.h"
#include "git/history.h"
#include "git/ref.h"
#include "git/repo.h"
#include "pg/state.h"
#include "store/store.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ids {
	char **v;
	size_t n;
};

static void
add_id(void *arg, const char *id)
{
	struct ids *l = arg;

	dd_ref_ids_add(&l->v, &l->n, id);
}

static void
add_media_id(void *arg, const char *id)
{
	if (id && *id)
		add_id(arg, id);
}

static int
collect_live(struct ids *l, struct dd_repo *repo, const struct dd_config *cfg, size_t *ncommits)
{
	char *refs = dd_path_join(repo->dnadata, "refs");
	int rc = -1;

	/* dd_ref_snapshot_ids() starts the list: first */
	if (dd_ref_snapshot_ids(&l->v, &l->n, refs, NULL, 0) < 0 ||
	    dd_history_worktree_ref_ids(&l->v, &l->n, repo) < 0 ||
	    dd_history_ids_reachable(&l->v, &l->n, repo, ncommits) < 0 ||
	    dd_pg_state_snapshots_named(repo->statedir, add_id, l) < 0 ||
	    dd_workflow_media_each_named(repo, cfg, add_media_id, l) < 0)
		goto out;
	rc = 0;
out:
	free(refs);
	return rc;
}

/*
 * Tests only: DNADATA_TEST_GC_CLOCK_SHIFT=<seconds> moves gc's clock (the
 * store's, store-gc.c) that far ahead, so "older than 24 h" is tested
 * without waiting a day. Only
 * with DNADATA_TEST=1 too (one stray variable in a shell must not make gc
 * take yesterday's push for old), and said on stderr every time it is used.
 */
static int
clock_shift(int64_t *out)
{
	const char *e = getenv("DNADATA_TEST_GC_CLOCK_SHIFT");
	char *end;
	long long shift;

	*out = 0;
	if (!e || !*e)
		return 0;
	if (!getenv("DNADATA_TEST") || strcmp(getenv("DNADATA_TEST"), "1"))
		return dd_error("DNADATA_TEST_GC_CLOCK_SHIFT is a test setting, honoured only with DNADATA_TEST=1: unset it");
	errno = 0;
	shift = strtoll(e, &end, 10);
	if (errno || *end || shift < -(1LL << 40) || shift > (1LL << 40))
		return dd_error("DNADATA_TEST_GC_CLOCK_SHIFT must be a number of seconds (a test setting; unset it)");
	dd_warn("gc: the clock is moved %lld s ahead by DNADATA_TEST_GC_CLOCK_SHIFT (a test setting)", shift);
	*out = (int64_t)shift;
	return 0;
}

int
dd_workflow_store_gc(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_store_gc_opts *opts,
		     struct dd_store_gc_summary *out)
{
	char *lockdir = dd_path_join(repo->statedir, "locks"), *lockpath = dd_path_join(lockdir, "store-gc.lock");
	struct dd_store_gc_opts o = *opts;
	struct dd_store *st = NULL;
	struct ids live = { 0 };
	int rc = -1, lock = -1;

	memset(out, 0, sizeof(*out));
	if (clock_shift(&o.clock_shift) < 0 || dd_mkdir_p(lockdir, 0700) < 0 ||
	    dd_lock_file(lockpath, "another gc --store of this clone is running; waiting for it", &lock) < 0)
		goto out;
	if (collect_live(&live, repo, cfg, &out->commits) < 0) {
		if (!dd_error_hint()) /* one already given (a shallow clone's) says more */
			dd_hint("gc removes nothing until every snapshot git names can be read");
		goto out;
	}
	out->named = live.n;
	if (dd_workflow_open_store(&st, cfg, repo, 0) < 0)
		goto out;
	out->url = dd_strdup(cfg->store_url && *cfg->store_url ? cfg->store_url : "the local store");
	if (dd_store_gc(st, (const char *const *)live.v, live.n, &o, &out->res, &out->uploads) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		dd_error_wrap("gc --store");
	dd_store_free(st);
	dd_ref_ids_free(live.v, live.n);
	dd_unlock_file(lock);
	free(lockpath);
	free(lockdir);
	return rc;
}

void
dd_store_gc_summary_release(struct dd_store_gc_summary *s)
{
	free(s->url);
	dd_store_gc_uploads_release(&s->uploads);
	memset(s, 0, sizeof(*s));
}
