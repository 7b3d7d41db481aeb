/*
 * cmd/setup.c: the shared prologue of the profile commands (see setup.h).
 * The usage messages are the ones each command printed on its own before.
 */
#include "cmd/setup.h"

#include <string.h>

static int
check_args(const char *cmd, int n, char **argv, enum dd_cmd_args args)
{
	switch (args) {
	case DD_CMD_NO_ARGS:
		if (n > 0)
			return dd_usage_error(cmd, "%s takes no arguments ('%s' given)", cmd, argv[0]);
		break;
	case DD_CMD_PROFILE_OPTIONAL:
		if (n > 1)
			return dd_usage_error(cmd, "too many arguments ('%s')", argv[1]);
		break;
	case DD_CMD_PROFILE_REQUIRED:
		if (n != 1)
			return dd_usage_error(cmd, n ? "too many arguments ('%s')" : "missing the profile name%s",
					      n ? argv[1] : "");
		break;
	}
	return 0;
}

int
dd_cmd_setup(struct dd_cmd_setup *out, int argc, char **argv, const struct dd_option *opts,
	     const char *const *usage, enum dd_cmd_args args)
{
	const char *cmd = argv[0];
	int n, r;

	memset(out, 0, sizeof(*out));
	n = dd_parse_options(argc, argv, opts, usage);
	if (n < 0)
		return n;
	if ((r = check_args(cmd, n, argv, args)) < 0)
		return r;
	if (dd_config_open(&out->repo, &out->cfg) < 0)
		return -1;
	if (args != DD_CMD_NO_ARGS && !(out->profile = dd_config_profile(out->cfg, n ? argv[0] : NULL))) {
		dd_cmd_setup_free(out);
		return -1;
	}
	return 0;
}

void
dd_cmd_setup_free(struct dd_cmd_setup *s)
{
	dd_config_free(s->cfg);
	dd_repo_free(s->repo);
	memset(s, 0, sizeof(*s));
}
