/*
 * cmd/cmd-restore.c: make the working database equal the snapshot a
 * profile's ref names (the workflow is in workflow/workflow.c).
 *
 * The new database is built aside and swapped in only when complete; the
 * previous working database is kept under a stash name (see `status`).
 * A database that holds the snapshot already and has not changed since is
 * left alone; an edited one is rebuilt (and stashed). Then the
 * post_restore commands (the profile's, then [hooks]') run, unless --no-hooks.
 */
#include "cmd/setup.h"
#include "dnadata.h"
#include "git/repo.h"
#include "workflow/workflow.h"

static const char *const usage[] = {
	"git dnadata restore [<profile>] [--at <rev>] [--force] [--terminate] [--no-hooks]",
	"",
	"Restores the snapshot named by .dnadata/refs/<profile> (default: the active",
	"profile) into the profile's database, from the local cache or else the store.",
	"The previous database is kept, renamed to <db>__dnadata_stash_<time>.",
	"Does nothing if the database holds that snapshot and is unchanged since;",
	"an edited one is restored again. Then runs the post_restore commands (the",
	"profile's, then [hooks]').",
	"",
	"Examples:",
	"  git dnadata restore",
	"  git dnadata restore customer1 --at v2.3.0",
	"  git dnadata restore --force --terminate",
	"  git dnadata restore --no-hooks",
	NULL,
};

static int
cmd_restore(int argc, char **argv)
{
	int force = 0, terminate = 0, no_hooks = 0, rc;
	const char *at = NULL;
	const struct dd_option opts[] = {
		{ DD_OPT_STRING, 0, "at", &at, "rev", "use the ref file as it is at this git revision" },
		{ DD_OPT_BOOL, 0, "force", &force, NULL, "restore even if the database holds that snapshot, unchanged" },
		{ DD_OPT_BOOL, 0, "terminate", &terminate, NULL, "end other sessions on the database instead of refusing" },
		{ DD_OPT_BOOL, 0, "no-hooks", &no_hooks, NULL, "do not run the post_restore commands (the profile's and [hooks]')" },
		DD_OPT_END_MARK,
	};
	struct dd_cmd_setup s;

	if ((rc = dd_cmd_setup(&s, argc, argv, opts, usage, DD_CMD_PROFILE_OPTIONAL)) != 0)
		return rc;
	rc = dd_config_worktree_check(s.cfg) < 0 ? -1 : dd_workflow_restore(s.repo, s.cfg, s.profile, at, (force ? DD_RESTORE_FORCE : 0) |
				 (terminate ? DD_RESTORE_TERMINATE : 0) | (no_hooks ? DD_RESTORE_NO_HOOKS : 0)) < 0 ? -1 : 0;
	dd_cmd_setup_free(&s);
	return rc;
}

const struct dd_command dd_cmd_restore = { "restore", "make the working database equal a profile's snapshot",
					   cmd_restore };
