/*
 * workflow/transfer.c: push and fetch of the snapshots a repository names
 * (the commands push, fetch and pull, and the pre-push hook).
 *
 * Which snapshots: the work tree's ref files (every profile, or the ones
 * given), plus with --all the ref files at the tip of every branch and
 * tag; or, for the pre-push hook, an explicit list of ids (those named in
 * the commits being pushed), without the check of the store's config. The
 * store layer decides what actually moves (store.h): only what the other
 * side lacks, in parallel, with a record of what the store holds
 * so that a push with nothing to send costs no request per object.
 */
#include "workflow/workflow.h"
#include "config/config.h"
#include "git/history.h"
#include "git/ref.h"
#include "git/repo.h"
#include "store/store.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#include <stdlib.h>

/* The snapshot ids the scope names. */
static int
scope_ids(char ***ids, size_t *n, struct dd_repo *repo, const struct dd_config *cfg,
	  const struct dd_transfer_scope *sc)
{
	char *refs = dd_path_join(repo->dnadata, "refs");
	int rc = -1;

	if (sc->ids) {
		for (size_t i = 0; i < sc->nids; i++)
			dd_ref_ids_add(ids, n, sc->ids[i]);
		rc = 0;
		goto out;
	}
	for (size_t i = 0; i < sc->nprofiles; i++)
		if (!dd_config_profile(cfg, sc->profiles[i]))
			goto out;
	if (dd_ref_snapshot_ids(ids, n, refs, sc->nprofiles ? sc->profiles : NULL, sc->nprofiles) < 0)
		goto out;
	if (sc->all &&
	    dd_history_ids_all(ids, n, repo, sc->nprofiles ? sc->profiles : NULL, sc->nprofiles) < 0)
		goto out;
	rc = 0;
out:
	free(refs);
	return rc;
}

/* The store side of a push (put the config back if lost, then the snapshots) or of a fetch. */
static int
move(struct dd_store *st, char **ids, size_t nids, const struct dd_transfer_scope *scope, int push,
     struct dd_transfer_stats *stats)
{
	int r, flags = (scope->check ? DD_PUSH_CHECK : 0) | (scope->all ? DD_PUSH_SKIP_UNAVAILABLE : 0);

	if (push && !scope->ids) {
		r = dd_store_push_config(st);
		if (r < 0)
			return -1;
		if (r == 0)
			dd_info("put the store's config back from the local cache (the store had lost it)");
	}
	if (scope->progress)
		dd_store_set_progress(st, scope->progress, scope->progress_arg);
	if (!nids)
		return 0;
	if (push)
		return dd_store_push_flags(st, (const char *const *)ids, nids, flags, stats) < 0 ? -1 : 0;
	if (dd_store_fetch(st, (const char *const *)ids, nids, stats) != 0)
		return -1;
	for (size_t i = 0; i < nids; i++)
		dd_store_snapshot_used(st, ids[i]); /* gc's LRU order (cache-gc.c) */
	return 0;
}

static int
transfer(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_transfer_scope *scope, int push,
	 struct dd_transfer_stats *stats, size_t *nsnap)
{
	struct dd_store *st = NULL;
	char **ids = NULL;
	size_t nids = 0;
	int rc = -1;

	*stats = (struct dd_transfer_stats){ 0 };
	*nsnap = 0;
	if (scope_ids(&ids, &nids, repo, cfg, scope) < 0 || dd_workflow_open_store(&st, cfg, repo, 0) < 0)
		goto out;
	*nsnap = nids;
	if (move(st, ids, nids, scope, push, stats) < 0)
		goto out;
	stats->requests = dd_store_requests(st); /* with the config's, made by this command */
	rc = 0;
out:
	dd_ref_ids_free(ids, nids);
	dd_store_free(st);
	return rc;
}

int
dd_workflow_push(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_transfer_scope *scope,
		 struct dd_transfer_stats *stats, size_t *nsnap)
{
	return transfer(repo, cfg, scope, 1, stats, nsnap);
}

int
dd_workflow_fetch(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_transfer_scope *scope,
		  struct dd_transfer_stats *stats, size_t *nsnap)
{
	return transfer(repo, cfg, scope, 0, stats, nsnap);
}
