/*
 * cmd/cmd-promote-schema.c: `git dnadata promote-schema` (issue 18). PLACEHOLDER: the
 * engineer who owns this command replaces this file whole.
 */
#include "dnadata.h"

static const char *const usage[] = {
	"git dnadata promote-schema",
	NULL,
};

static int
cmd_promote_schema(int argc, char **argv)
{
	const struct dd_option opts[] = {
		DD_OPT_END_MARK,
	};
	int n = dd_parse_options(argc, argv, opts, usage);

	if (n < 0)
		return n;
	dd_error("'promote-schema' is not built yet");
	return -1;
}

const struct dd_command dd_cmd_promote_schema = { "promote-schema", "copy a profile's schema into another's base (post-release)", cmd_promote_schema };
