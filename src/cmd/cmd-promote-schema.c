/*
 * cmd/cmd-promote-schema.c: the post-release routine (workflow/schema.c):
 * once migrations ran in production, FROM's schema becomes TO's base (an
 * inline TO's schema.sql, or a store-backed TO's new snapshot), after a
 * scratch database proved that TO's rows load into it; then the migrations
 * now in the base can go.
 */
#include "dnadata.h"
#include "config/config.h"
#include "git/repo.h"
#include "workflow/workflow.h"

#include <stdio.h>
#include <string.h>

static const char *const usage[] = {
	"git dnadata promote-schema <from> [<to>]",
	"",
	"Makes profile <from>'s normalised schema the base of profile <to> (default:",
	"clean-db): <from>'s working database's schema when <from> is the active",
	"profile and its database holds <from>'s snapshot (migrations included), else",
	"the schema of <from>'s snapshot. First <to>'s rows are loaded into that schema",
	"in a scratch database; if a statement fails (a column <to>'s data fills was",
	"dropped, a NOT NULL column without a default was added...), nothing changes",
	"and the error names it. Then, for an inline <to>, the schema becomes its",
	"schema.sql; for a store-backed <to>, the scratch database becomes its new",
	"snapshot. Commits \"dnadata: promote-schema <from> -> <to>\".",
	"",
	"Examples:",
	"  git dnadata promote-schema customer1",
	"  git dnadata promote-schema customer1 clean-db",
	"  git dnadata use customer1 && git dnadata promote-schema customer1",
	NULL,
};

static int
cmd_promote_schema(int argc, char **argv)
{
	const struct dd_option opts[] = {
		DD_OPT_END_MARK,
	};
	const struct dd_profile *from, *to;
	struct dd_repo *repo = NULL;
	struct dd_config *cfg = NULL;
	const char *cmd = argv[0];
	char id[65];
	int n = dd_parse_options(argc, argv, opts, usage), rc = -1;

	if (n < 0)
		return n;
	if (n < 1 || n > 2)
		return dd_usage_error(cmd, n ? "too many arguments ('%s')" : "missing the profile to promote from%s",
				      n ? argv[2] : "");
	if (dd_config_open(&repo, &cfg) < 0)
		return -1;
	if (!(from = dd_config_profile(cfg, argv[0])) || !(to = dd_config_profile(cfg, n > 1 ? argv[1] : "clean-db")))
		goto out;
	/* the scratch database goes on the working database's server, which a linked worktree may not have */
	if (dd_config_worktree_check(cfg) < 0)
		goto out;
	rc = dd_workflow_promote_schema(repo, cfg, from, to, id);
	if (rc == DD_UNCHANGED) {
		printf("%s's base already has %s's schema: nothing to commit\n", to->name, from->name);
		rc = 0;
	} else if (rc == 0) {
		printf("%s's base is now %s's schema (snapshot %.12s, committed)\n", to->name, from->name, id);
		printf("next: remove the migrations that are now part of %s's base, and commit that\n", to->name);
		if (cfg->active_profile && !strcmp(cfg->active_profile, to->name))
			printf("then: `git dnadata restore` loads %s's new base into the working database\n", to->name);
	}
out:
	dd_config_free(cfg);
	dd_repo_free(repo);
	return rc < 0 ? -1 : 0;
}

const struct dd_command dd_cmd_promote_schema = { "promote-schema",
						  "copy a profile's schema into another's base (post-release)",
						  cmd_promote_schema };
