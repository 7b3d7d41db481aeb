/*
 * cmd/cmd-doctor.c: `git dnadata doctor` (issue 18). PLACEHOLDER: the
 * engineer who owns this command replaces this file whole.
 */
#include "dnadata.h"

static const char *const usage[] = {
	"git dnadata doctor",
	NULL,
};

static int
cmd_doctor(int argc, char **argv)
{
	const struct dd_option opts[] = {
		DD_OPT_END_MARK,
	};
	int n = dd_parse_options(argc, argv, opts, usage);

	if (n < 0)
		return n;
	dd_error("'doctor' is not built yet");
	return -1;
}

const struct dd_command dd_cmd_doctor = { "doctor", "check the setup and say what to fix", cmd_doctor };
