/*
 * cmd/cmd-export.c: `git dnadata export` (issue 18). PLACEHOLDER: the
 * engineer who owns this command replaces this file whole.
 */
#include "dnadata.h"

static const char *const usage[] = {
	"git dnadata export",
	NULL,
};

static int
cmd_export(int argc, char **argv)
{
	const struct dd_option opts[] = {
		DD_OPT_END_MARK,
	};
	int n = dd_parse_options(argc, argv, opts, usage);

	if (n < 0)
		return n;
	dd_error("'export' is not built yet");
	return -1;
}

const struct dd_command dd_cmd_export = { "export", "write a snapshot as plain, readable SQL and its media", cmd_export };
