/*
 * cmd/cmd-spare.c: the background job that prepares warm spares (hidden:
 * not listed by `git dnadata -h`). A switch starts it detached
 * (workflow/switch.c); run by hand it works in the foreground, which is
 * how the tests wait for it.
 */
#include "cmd/setup.h"
#include "dnadata.h"
#include "workflow/gc.h"
#include "workflow/workflow.h"

static const char *const usage[] = {
	"git dnadata spare [<profile>] [--left <snapshot>] [--count <n>]",
	"",
	"Clones the templates of the snapshots likely needed next (the one just",
	"left, then those of the branches checked out most recently) into spare",
	"databases, up to [database] spares, so switching to them is a rename.",
	"Then enforces [database] cache_budget and stash_keep as `git dnadata gc`",
	"does, when they are exceeded, without ever holding the database's lock",
	"during a DROP (a switch meanwhile stops it, for the next job to go on).",
	"Started in the background after each switch; you do not need to run it.",
	NULL,
};

static int
cmd_spare(int argc, char **argv)
{
	const char *left = NULL;
	int count = -1;
	const struct dd_option opts[] = {
		{ DD_OPT_STRING, 0, "left", &left, "snapshot", "the snapshot the last switch left" },
		{ DD_OPT_INT, 0, "count", &count, "n", "keep this many spares (default: [database] spares)" },
		DD_OPT_END_MARK,
	};
	struct dd_cmd_setup s;
	int rc;

	if ((rc = dd_cmd_setup(&s, argc, argv, opts, usage, DD_CMD_PROFILE_OPTIONAL)) != 0)
		return rc;
	rc = dd_workflow_spares(s.repo, s.cfg, s.profile, left, count) < 0 ? -1 : 0;
	/* then the budgets (not after a failure: the job was interrupted, or the server cannot be asked) */
	if (rc == 0 && dd_workflow_gc_auto(s.repo, s.cfg) < 0)
		rc = -1;
	dd_cmd_setup_free(&s);
	return rc;
}

const struct dd_command dd_cmd_spare = { "spare", NULL, cmd_spare };
