/*
 * cmd/cmd-push.c: upload what the snapshots named by the ref files need and
 * the store lacks, from the local cache (after `snapshot --dump-only`, a
 * snapshot taken while the store was unreachable, or a store that lost
 * files). The work is in workflow/transfer.c; the store decides what moves.
 */
#include "cmd/progress.h"
#include "config/config.h"
#include "dnadata.h"
#include "git/repo.h"
#include "workflow/workflow.h"

static const char *const usage[] = {
	"git dnadata push [--all] [--check] [<profile>...]",
	"",
	"Uploads what the snapshots named by .dnadata/refs/ (every profile, or the",
	"ones given) need and the store lacks, from the local cache; with --all also",
	"the snapshots named at the tip of every branch and tag (one that is in",
	"neither the cache nor the store is skipped with a warning). A snapshot the",
	"store already holds needs nothing from this clone. Puts the store's config",
	"back if the store lost it. With nothing missing it sends nothing.",
	"--check asks the store for every file the snapshots need, whatever this",
	"clone remembers, and sends what is missing: the repair after `verify`",
	"found files missing or damaged (delete the damaged ones first).",
	"",
	"Examples:",
	"  git dnadata snapshot --dump-only && git dnadata push",
	"  git dnadata push customer1",
	"  git dnadata push --all",
	"  git dnadata push --check",
	NULL,
};

static int
cmd_push(int argc, char **argv)
{
	int all = 0, check = 0, n, rc = -1;
	const struct dd_option opts[] = {
		{ DD_OPT_BOOL, 0, "all", &all, NULL, "also the snapshots named on every branch and tag" },
		{ DD_OPT_BOOL, 0, "check", &check, NULL, "ask the store for every file the snapshots need; resend the missing" },
		DD_OPT_END_MARK,
	};
	struct dd_repo *repo = NULL;
	struct dd_config *cfg = NULL;
	struct dd_progress pr;
	struct dd_transfer_stats stats;
	struct dd_transfer_scope scope = { 0 };
	size_t nsnap = 0;

	n = dd_parse_options(argc, argv, opts, usage);
	if (n < 0)
		return n;
	if (dd_config_open(&repo, &cfg) < 0)
		return -1;
	dd_progress_start(&pr);
	scope = (struct dd_transfer_scope){ .profiles = (const char *const *)argv, .nprofiles = (size_t)n,
					    .all = all, .check = check, .progress = dd_progress_transfer, .progress_arg = &pr };
	rc = dd_workflow_push(repo, cfg, &scope, &stats, &nsnap);
	if (rc == 0 && !nsnap)
		dd_info("no profile has a snapshot yet: nothing to push");
	else if (rc == 0)
		dd_progress_summary(&pr, "push", "sent", &stats, nsnap);
	dd_config_free(cfg);
	dd_repo_free(repo);
	return rc;
}

const struct dd_command dd_cmd_push = { "push", "upload the snapshots the ref files name to the store", cmd_push };
