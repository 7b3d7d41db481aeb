/*
 * cmd/cmd-use.c: choose this clone's active profile.
 *
 * The choice is local (<statedir>/config.ini, [database] active_profile),
 * never committed: each developer and CI runner picks their own.
 * DNADATA_PROFILE, when set, still wins for the processes that have it.
 * The profile's snapshot is restored first (workflow/workflow.c), so a failed
 * restore leaves both the database and the choice as they were; a profile
 * with no snapshot yet is simply chosen. Switching semantics: a database
 * that already holds the snapshot is kept as it is, local edits included.
 * If a post_restore command fails the database has switched, so the
 * choice is recorded too before the error is reported.
 */
#include "cmd/setup.h"
#include "config/config.h"
#include "dnadata.h"
#include "git/repo.h"
#include "workflow/workflow.h"

#include <stdlib.h>
#include <string.h>

static const char *const usage[] = {
	"git dnadata use <profile> [--terminate] [--no-hooks] [--worktree-database <name>]",
	"",
	"Restores <profile>'s snapshot into its database (unless the database already holds",
	"it: then it is kept as it is, your edits included), runs the post_restore",
	"commands, and makes <profile> this clone's active profile (in .git/dnadata/config.ini).",
	"",
	"In a linked worktree (git worktree add), which manages no database until given",
	"one, --worktree-database <name> gives it its own: every profile's database is then",
	"called <name> there (same server), recorded in the worktree's own git dir.",
	"",
	"Examples:",
	"  git dnadata use customer1",
	"  git dnadata use clean --worktree-database myapp_feature_x",
	"  git dnadata use clean",
	NULL,
};

static int
cmd_use(int argc, char **argv)
{
	int terminate = 0, no_hooks = 0, r;
	const char *wtdb = NULL;
	const struct dd_option opts[] = {
		{ DD_OPT_STRING, 0, "worktree-database", &wtdb, "name", "give this linked worktree its own database" },
		{ DD_OPT_BOOL, 0, "terminate", &terminate, NULL, "end other sessions on the database instead of refusing" },
		{ DD_OPT_BOOL, 0, "no-hooks", &no_hooks, NULL, "do not run the post_restore commands (the profile's and [hooks]')" },
		DD_OPT_END_MARK,
	};
	struct dd_cmd_setup s;
	const struct dd_profile *profile;
	const char *env;
	int rc;

	if ((rc = dd_cmd_setup(&s, argc, argv, opts, usage, DD_CMD_PROFILE_REQUIRED)) != 0)
		return rc;
	rc = -1;
	if (wtdb) {
		/* record it, then read the settings again: every profile now names that database */
		char *name = dd_strdup(s.profile->name);
		r = dd_config_set_worktree_database(s.cfg, wtdb);
		dd_cmd_setup_free(&s);
		if (r == 0 && dd_config_open(&s.repo, &s.cfg) == 0 && !(s.profile = dd_config_profile(s.cfg, name)))
			r = -1;
		free(name);
		if (r < 0 || !s.cfg)
			goto out;
		dd_info("this worktree's database: %s", wtdb);
	}
	if (dd_config_worktree_check(s.cfg) < 0)
		goto out;
	profile = s.profile;
	r = dd_workflow_restore(s.repo, s.cfg, profile, NULL, DD_RESTORE_KEEP | DD_RESTORE_MISSING_OK |
			       (terminate ? DD_RESTORE_TERMINATE : 0) | (no_hooks ? DD_RESTORE_NO_HOOKS : 0));
	if (r == DD_EHOOK) {
		/* restored, a hook failed: the database has switched, so does the choice */
		struct dd_error_saved hook_error;
		dd_error_save(&hook_error);
		if (dd_config_set_active(s.cfg, profile->name) == 0)
			dd_info("active profile: %s", profile->name);
		dd_error_restore(&hook_error);
		goto out;
	}
	if (r < 0)
		goto out;
	if (dd_config_set_active(s.cfg, profile->name) < 0)
		goto out;
	dd_info("active profile: %s", profile->name);
	if ((env = getenv("DNADATA_PROFILE")) && *env && strcmp(env, profile->name))
		dd_warn("DNADATA_PROFILE=%s is set and overrides this choice while it is", env);
	rc = 0;
out:
	dd_cmd_setup_free(&s);
	return rc;
}

const struct dd_command dd_cmd_use = { "use", "restore a profile and make it this clone's active profile", cmd_use };
