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
	"git dnadata use <profile> [--terminate] [--no-hooks]",
	"",
	"Restores <profile>'s snapshot into its database (unless the database already holds",
	"it: then it is kept as it is, your edits included), runs the [hooks] post_restore",
	"commands, and makes <profile> this clone's active profile (in .git/dnadata/config.ini).",
	"",
	"Examples:",
	"  git dnadata use customer1",
	"  git dnadata use clean",
	NULL,
};

static int
cmd_use(int argc, char **argv)
{
	int terminate = 0, no_hooks = 0, r;
	const struct dd_option opts[] = {
		{ DD_OPT_BOOL, 0, "terminate", &terminate, NULL, "end other sessions on the database instead of refusing" },
		{ DD_OPT_BOOL, 0, "no-hooks", &no_hooks, NULL, "do not run the [hooks] post_restore commands" },
		DD_OPT_END_MARK,
	};
	struct dd_cmd_setup s;
	const struct dd_profile *profile;
	const char *env;
	int rc;

	if ((rc = dd_cmd_setup(&s, argc, argv, opts, usage, DD_CMD_PROFILE_REQUIRED)) != 0)
		return rc;
	rc = -1;
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
