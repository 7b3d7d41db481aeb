/*
 * cmd/cmd-log.c: `git dnadata log` (issue 18). PLACEHOLDER: the
 * engineer who owns this command replaces this file whole.
 */
#include "dnadata.h"

static const char *const usage[] = {
	"git dnadata log",
	NULL,
};

static int
cmd_log(int argc, char **argv)
{
	const struct dd_option opts[] = {
		DD_OPT_END_MARK,
	};
	int n = dd_parse_options(argc, argv, opts, usage);

	if (n < 0)
		return n;
	dd_error("'log' is not built yet");
	return -1;
}

const struct dd_command dd_cmd_log = { "log", "history of a profile's snapshots from git history", cmd_log };
