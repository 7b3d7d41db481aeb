/*
 * cmd/cmd-fetch.c: download into the local cache what the snapshots named
 * by the ref files need (so a later restore, or a switch made by a git
 * hook, works offline and fast); and `pull`: fetch, then restore the
 * active profile.
 */
#include "cmd/progress.h"
#include "cmd/setup.h"
#include "config/config.h"
#include "dnadata.h"
#include "git/repo.h"
#include "workflow/workflow.h"

static const char *const fetch_usage[] = {
	"git dnadata fetch [<profile>...]",
	"",
	"Downloads into the local cache what the snapshots named by .dnadata/refs/",
	"(every profile, or the ones given) need and the cache lacks. Nothing is",
	"restored: see `git dnadata pull` and `git dnadata restore`.",
	"",
	"Examples:",
	"  git dnadata fetch",
	"  git dnadata fetch customer1 clean-db",
	NULL,
};

static const char *const pull_usage[] = {
	"git dnadata pull [<profile>] [--force] [--terminate] [--no-hooks]",
	"",
	"Fetches the snapshot named by .dnadata/refs/<profile> (default: the active",
	"profile), then restores it into the profile's database like `restore`.",
	"",
	"Examples:",
	"  git pull && git dnadata pull",
	"  git dnadata pull customer1 --terminate",
	NULL,
};

static int
fetch(struct dd_repo *repo, const struct dd_config *cfg, const char *const *profiles, size_t n)
{
	struct dd_progress pr;
	struct dd_transfer_stats stats;
	struct dd_transfer_scope scope;
	size_t nsnap = 0;
	int rc;

	dd_progress_start(&pr);
	scope = (struct dd_transfer_scope){ .profiles = profiles, .nprofiles = n, .progress = dd_progress_transfer,
					    .progress_arg = &pr };
	rc = dd_workflow_fetch(repo, cfg, &scope, &stats, &nsnap);
	if (rc == 0 && !nsnap)
		dd_info("no profile has a snapshot yet: nothing to fetch");
	else if (rc == 0)
		dd_progress_summary(&pr, "fetch", "received", &stats, nsnap);
	return rc;
}

static int
cmd_fetch(int argc, char **argv)
{
	const struct dd_option opts[] = { DD_OPT_END_MARK };
	struct dd_repo *repo = NULL;
	struct dd_config *cfg = NULL;
	int n, rc;

	n = dd_parse_options(argc, argv, opts, fetch_usage);
	if (n < 0)
		return n;
	if (dd_config_open(&repo, &cfg) < 0)
		return -1;
	rc = fetch(repo, cfg, (const char *const *)argv, (size_t)n);
	dd_config_free(cfg);
	dd_repo_free(repo);
	return rc;
}

static int
cmd_pull(int argc, char **argv)
{
	int force = 0, terminate = 0, no_hooks = 0, rc;
	const struct dd_option opts[] = {
		{ DD_OPT_BOOL, 0, "force", &force, NULL, "restore even if the database holds that snapshot, unchanged" },
		{ DD_OPT_BOOL, 0, "terminate", &terminate, NULL, "end other sessions on the database instead of refusing" },
		{ DD_OPT_BOOL, 0, "no-hooks", &no_hooks, NULL, "do not run the post_restore commands (the profile's and [hooks]')" },
		DD_OPT_END_MARK,
	};
	struct dd_cmd_setup s;
	const char *name;

	if ((rc = dd_cmd_setup(&s, argc, argv, opts, pull_usage, DD_CMD_PROFILE_OPTIONAL)) != 0)
		return rc;
	name = s.profile->name;
	rc = fetch(s.repo, s.cfg, &name, 1);
	if (rc == 0)
		rc = dd_workflow_restore(s.repo, s.cfg, s.profile, NULL,
					 (force ? DD_RESTORE_FORCE : 0) | (terminate ? DD_RESTORE_TERMINATE : 0) |
						 (no_hooks ? DD_RESTORE_NO_HOOKS : 0)) < 0 ? -1 : 0;
	dd_cmd_setup_free(&s);
	return rc;
}

const struct dd_command dd_cmd_fetch = { "fetch", "download the snapshots the ref files name into the local cache",
					 cmd_fetch };
const struct dd_command dd_cmd_pull = { "pull", "fetch a profile's snapshot, then restore it", cmd_pull };
