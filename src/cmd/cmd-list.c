/*
 * cmd/cmd-list.c: `git dnadata list` (issue 18). PLACEHOLDER: the
 * engineer who owns this command replaces this file whole.
 */
#include "dnadata.h"

static const char *const usage[] = {
	"git dnadata list",
	NULL,
};

static int
cmd_list(int argc, char **argv)
{
	const struct dd_option opts[] = {
		DD_OPT_END_MARK,
	};
	int n = dd_parse_options(argc, argv, opts, usage);

	if (n < 0)
		return n;
	dd_error("'list' is not built yet");
	return -1;
}

const struct dd_command dd_cmd_list = { "list", "snapshots in the cache and the store, and the refs naming them", cmd_list };
