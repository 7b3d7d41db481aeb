/*
 * cmd/setup.h: the prologue the profile commands share (snapshot, restore,
 * use, verify): parse the options, check the number of arguments, open the
 * repository and its configuration, and resolve the profile.
 */
#ifndef DD_CMD_SETUP_H
#define DD_CMD_SETUP_H

#include "config/config.h"
#include "git/repo.h"
#include "util/opts.h"

/* How many positional arguments a command takes. */
enum dd_cmd_args {
	DD_CMD_NO_ARGS,          /* none, and no profile is resolved */
	DD_CMD_PROFILE_OPTIONAL, /* [<profile>], else the active profile */
	DD_CMD_PROFILE_REQUIRED, /* <profile> */
};

struct dd_cmd_setup {
	struct dd_repo *repo;
	struct dd_config *cfg;
	const struct dd_profile *profile; /* NULL with DD_CMD_NO_ARGS */
};

/*
 * Parse argv (argv[0] = the command's name) with `opts` and `usage`, then
 * open the repository and configuration and resolve the profile. Returns 0
 * (release `out` with dd_cmd_setup_free()), the parser's result
 * (DD_OPTS_HELP, DD_USAGE_ERROR), or -1 with the reason recorded; on any
 * failure `out` holds nothing to free.
 */
int dd_cmd_setup(struct dd_cmd_setup *out, int argc, char **argv, const struct dd_option *opts,
		 const char *const *usage, enum dd_cmd_args args);

void dd_cmd_setup_free(struct dd_cmd_setup *s);

#endif
