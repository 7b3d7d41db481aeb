/*
 * cmd/cmd-export.c: `git dnadata export <profile> --sql <dir>`: a
 * snapshot as plain, readable SQL (schema.sql, data.sql) and its media
 * folder, for inspection or another tool (workflow/export.c). Needs no
 * database: it reads the snapshot from the local cache or the store.
 */
#include "cmd/setup.h"
#include "dnadata.h"
#include "workflow/workflow.h"

static const char *const usage[] = {
	"git dnadata export <profile> --sql <dir> [--at <rev>]",
	"",
	"Writes the profile's snapshot (as its ref file names it) into <dir>, which must be",
	"new or empty, in pg_dump's load order: schema.sql (the normalised schema's pre-data",
	"part: tables, functions, views), data.sql (each table's rows as a COPY block, in",
	"primary-key order; sequences; large objects; then the schema's post-data part:",
	"constraints, indexes, triggers) and media/ when the snapshot has a media folder.",
	"Load it into an empty database with `psql -f schema.sql -f data.sql` (that order).",
	"Both files are wrapped in pg_dump's \\restrict guard; a schema with a psql",
	"meta-command line is refused. A failed export leaves <dir> as it was. No database",
	"is needed to export.",
	"",
	"Examples:",
	"  git dnadata export customer1 --sql /tmp/customer1",
	"  git dnadata export clean-db --sql review/ --at v2.3.0",
	"  createdb copy && psql -d copy -f /tmp/customer1/schema.sql -f /tmp/customer1/data.sql",
	NULL,
};

static int
cmd_export(int argc, char **argv)
{
	const char *dir = NULL, *at = NULL;
	const struct dd_option opts[] = {
		{ DD_OPT_STRING, 0, "sql", &dir, "dir", "write schema.sql, data.sql (and media/) into this new folder" },
		{ DD_OPT_STRING, 0, "at", &at, "rev", "use the ref file as it is at this git revision" },
		DD_OPT_END_MARK,
	};
	struct dd_cmd_setup s;
	int rc;

	if ((rc = dd_cmd_setup(&s, argc, argv, opts, usage, DD_CMD_PROFILE_REQUIRED)) != 0)
		return rc;
	if (!dir || !*dir)
		rc = dd_usage_error("export", "missing --sql <dir> (the folder to write)");
	else
		rc = dd_workflow_export(s.repo, s.cfg, s.profile, at, dir) < 0 ? -1 : 0;
	dd_cmd_setup_free(&s);
	return rc;
}

const struct dd_command dd_cmd_export = { "export", "write a snapshot as plain, readable SQL and its media", cmd_export };
