/*
 * cmd/cmd-schema-dump.c: `git dnadata schema-dump` (issue 18). PLACEHOLDER: the
 * engineer who owns this command replaces this file whole.
 */
#include "dnadata.h"

static const char *const usage[] = {
	"git dnadata schema-dump",
	NULL,
};

static int
cmd_schema_dump(int argc, char **argv)
{
	const struct dd_option opts[] = {
		DD_OPT_END_MARK,
	};
	int n = dd_parse_options(argc, argv, opts, usage);

	if (n < 0)
		return n;
	dd_error("'schema-dump' is not built yet");
	return -1;
}

const struct dd_command dd_cmd_schema_dump = { "schema-dump", "write the profile's normalised schema to .dnadata/schema/", cmd_schema_dump };
