/*
 * cmd/cmd-snapshot.c: capture a profile's database into the store and
 * point the profile's ref file at it (the workflow is in workflow/workflow.c).
 *
 * Prints the snapshot id on stdout (for scripts); everything else goes to
 * stderr. An unchanged database gives the same id: "nothing changed", no
 * commit.
 */
#include "cmd/setup.h"
#include "dnadata.h"
#include "git/repo.h"
#include "workflow/workflow.h"

#include <stdio.h>

static const char *const usage[] = {
	"git dnadata snapshot [<profile>] [--no-commit] [--dump-only] [--full] [-m <message>] [--from-dump <file>]",
	"",
	"Captures the profile's database (default: the active profile) in one consistent",
	"snapshot: schema via pg_dump, rows via parallel COPY in primary-key order. Writes it",
	"to the local cache and the store, updates .dnadata/refs/<profile> and commits it.",
	"",
	"With --from-dump, the snapshot is of a pg_dump file (custom, directory, tar or plain",
	"format) instead: it is loaded into a scratch database beside the working one, which",
	"is dropped afterwards; the working database and the media folder are not touched.",
	"",
	"Incremental: a table unchanged since the profile's previous snapshot (its statistics",
	"counters, file and columns equal) is carried over without being read, and an unchanged",
	"database is known unchanged without reading anything; the result is byte for byte",
	"what reading everything gives (the same id). -v says which tables were read and why.",
	"--full reads every table anyway.",
	"",
	"Examples:",
	"  git dnadata snapshot",
	"  git dnadata snapshot customer1 -m \"customer1 after the March import\"",
	"  git dnadata snapshot clean --dump-only --no-commit",
	"  git dnadata snapshot customer1 --from-dump customer1-prod.dump",
	NULL,
};

static int
cmd_snapshot(int argc, char **argv)
{
	int no_commit = 0, dump_only = 0, full = 0, flags, rc;
	const char *msg = NULL, *from_dump = NULL;
	const struct dd_option opts[] = {
		{ DD_OPT_BOOL, 0, "no-commit", &no_commit, NULL, "update the ref file but do not commit it" },
		{ DD_OPT_BOOL, 0, "dump-only", &dump_only, NULL, "write to the local cache only (upload later with push)" },
		{ DD_OPT_BOOL, 0, "full", &full, NULL, "read every table (no reuse of the previous snapshot)" },
		{ DD_OPT_STRING, 'm', "message", &msg, "message", "commit message (default: \"snapshot <profile> (<id>)\")" },
		{ DD_OPT_STRING, 0, "from-dump", &from_dump, "file", "snapshot a pg_dump file (any format) instead" },
		DD_OPT_END_MARK,
	};
	struct dd_cmd_setup s;
	char id[65];

	if ((rc = dd_cmd_setup(&s, argc, argv, opts, usage, DD_CMD_PROFILE_OPTIONAL)) != 0)
		return rc;
	rc = -1;
	flags = (no_commit ? DD_SNAPSHOT_NO_COMMIT : 0) | (dump_only ? DD_SNAPSHOT_DUMP_ONLY : 0) |
		(full ? DD_SNAPSHOT_FULL : 0);
	if (from_dump ? dd_workflow_snapshot_dump(s.repo, s.cfg, s.profile, from_dump, flags, msg, id) < 0
		      : dd_workflow_snapshot(s.repo, s.cfg, s.profile, flags, msg, id) < 0)
		goto out;
	printf("%s\n", id);
	rc = fflush(stdout) == 0 ? 0 : dd_error_errno("cannot write to stdout");
out:
	dd_cmd_setup_free(&s);
	return rc;
}

const struct dd_command dd_cmd_snapshot = { "snapshot", "capture a profile's database, update its ref, commit",
					    cmd_snapshot };
