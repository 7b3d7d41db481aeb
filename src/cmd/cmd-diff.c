/*
 * cmd/cmd-diff.c: `git dnadata diff` (issue 18). PLACEHOLDER: the
 * engineer who owns this command replaces this file whole.
 */
#include "dnadata.h"

static const char *const usage[] = {
	"git dnadata diff",
	NULL,
};

static int
cmd_diff(int argc, char **argv)
{
	const struct dd_option opts[] = {
		DD_OPT_END_MARK,
	};
	int n = dd_parse_options(argc, argv, opts, usage);

	if (n < 0)
		return n;
	dd_error("'diff' is not built yet");
	return -1;
}

const struct dd_command dd_cmd_diff = { "diff", "what changed between two snapshots, from their manifests", cmd_diff };
