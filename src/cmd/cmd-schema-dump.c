/*
 * cmd/cmd-schema-dump.c: write a profile's normalised schema to
 * .dnadata/schema/<profile>.sql (workflow/schema.c), from its working
 * database. The file is not committed: it goes in with the migration that
 * changed it. Once it exists, restore, use and the git hooks keep it
 * current, after the post_restore commands (unless the profile says
 * schema_dump = no).
 */
#include "cmd/setup.h"
#include "dnadata.h"
#include "workflow/workflow.h"

#include <stdio.h>
#include <stdlib.h>

static const char *const usage[] = {
	"git dnadata schema-dump [<profile>]",
	"",
	"Writes the schema of the profile's working database (default: the active",
	"profile) to .dnadata/schema/<profile>.sql, normalised: no pg_dump version",
	"or \\restrict lines, no session SETs, no owners, a stable order; the same",
	"schema always gives the same bytes, so an added column is one added line",
	"in `git diff` (and a comma). Prints the file and whether it changed. Does not",
	"commit: commit it with the migration that changed it. Once the file exists,",
	"restore, use and the git hooks keep it current after the post_restore",
	"commands (schema_dump = no in the profile's section turns that off).",
	"",
	"Examples:",
	"  git dnadata schema-dump",
	"  git dnadata schema-dump clean-db && git diff .dnadata/schema/",
	"  git add db/migrate .dnadata/schema && git commit -m 'add users.email'",
	NULL,
};

static int
cmd_schema_dump(int argc, char **argv)
{
	const struct dd_option opts[] = {
		DD_OPT_END_MARK,
	};
	struct dd_cmd_setup s;
	char *rel = NULL;
	int rc;

	if ((rc = dd_cmd_setup(&s, argc, argv, opts, usage, DD_CMD_PROFILE_OPTIONAL)) != 0)
		return rc;
	rc = dd_config_worktree_check(s.cfg);
	if (rc == 0)
		rc = dd_workflow_schema_dump(s.repo, s.cfg, s.profile, 0, &rel);
	if (rc >= 0) {
		printf("%s (%s)\n", rel, rc == DD_UNCHANGED ? "unchanged" : "changed");
		rc = 0;
	}
	free(rel);
	dd_cmd_setup_free(&s);
	return rc < 0 ? -1 : 0;
}

const struct dd_command dd_cmd_schema_dump = { "schema-dump", "write the profile's normalised schema to .dnadata/schema/",
					       cmd_schema_dump };
