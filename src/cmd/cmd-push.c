/*
 * cmd/cmd-push.c: upload to the store whatever the snapshots named by the
 * ref files still lack there, from the local cache (after `snapshot
 * --dump-only`, an offline snapshot, or a store that lost objects).
 *
 * Objects go up before each snapshot's manifest, so the store never names
 * a snapshot it cannot serve. A store that lost its config object gets it
 * back from the cache (which keeps the copy this clone confirmed). The git pre-push hook that runs this for the
 * commits being pushed comes with the hooks work; this is the manual form.
 */
#include "config/config.h"
#include "dnadata.h"
#include "git/ref.h"
#include "git/repo.h"
#include "store/store.h"
#include "util/fs.h"

#include <stdlib.h>

static const char *const usage[] = {
	"git dnadata push [<profile>...]",
	"",
	"Uploads every object of the snapshots named by .dnadata/refs/ (all profiles,",
	"or the ones given) that the store lacks, from the local cache; and the",
	"store's config, if the store lost it.",
	"",
	"Examples:",
	"  git dnadata snapshot --dump-only && git dnadata push",
	"  git dnadata push customer1",
	NULL,
};

static int
cmd_push(int argc, char **argv)
{
	const struct dd_option opts[] = { DD_OPT_END_MARK };
	struct dd_repo *repo = NULL;
	struct dd_config *cfg = NULL;
	struct dd_store *st = NULL;
	char **ids = NULL, *refs = NULL;
	size_t nids = 0;
	int n, r, rc = -1;

	n = dd_parse_options(argc, argv, opts, usage);
	if (n < 0)
		return n;
	if (dd_config_open(&repo, &cfg) < 0)
		goto out;
	for (int i = 0; i < n; i++)
		if (!dd_config_profile(cfg, argv[i]))
			goto out;
	refs = dd_path_join(repo->dnadata, "refs");
	if (dd_ref_snapshot_ids(&ids, &nids, refs, n ? (const char *const *)argv : NULL, (size_t)n) < 0)
		goto out;
	if (dd_store_open(&st, cfg->store_url, repo->statedir, 0) < 0)
		goto out;
	r = dd_store_push_config(st);
	if (r < 0)
		goto out;
	if (r == 0)
		dd_info("put the store's config back from the local cache (the store had lost it)");
	if (!nids) {
		dd_info("no profile has a snapshot yet: nothing to push");
		rc = 0;
		goto out;
	}
	for (size_t i = 0; i < nids; i++) {
		if (dd_store_push(st, (const char *const *)&ids[i], 1, NULL) < 0) {
			dd_error_wrap("pushing snapshot %.12s", ids[i]);
			goto out;
		}
		dd_info("snapshot %.12s is in the store", ids[i]);
	}
	rc = 0;
out:
	dd_ref_ids_free(ids, nids);
	free(refs);
	dd_store_free(st);
	dd_config_free(cfg);
	dd_repo_free(repo);
	return rc;
}

const struct dd_command dd_cmd_push = { "push", "upload snapshots the store lacks from the local cache", cmd_push };
