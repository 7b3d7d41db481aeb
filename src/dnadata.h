/*
 * dnadata.h: what every command shares: the command table entry type.
 *
 * One command = one file in src/cmd/ defining one `const struct dd_command`
 * (tmux style); src/main.c holds the table. A command's run() gets argv with
 * argv[0] = its own name, parses its options with dd_parse_options(), and
 * returns 0 on success, -1 on failure (reason recorded with dd_error()), or
 * DD_USAGE_ERROR. Only main() prints errors and chooses the exit code.
 */
#ifndef DD_DNADATA_H
#define DD_DNADATA_H

#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/opts.h"

struct dd_command {
	const char *name;
	const char *summary; /* one line for `git dnadata -h` */
	int (*run)(int argc, char **argv);
};

/*
 * cmd/cmd-hook.c: the git hooks' no-op check, which main() runs before it
 * initialises libgit2 and libcurl. DD_NOTHING_TO_DO: the hook is done.
 */
int dd_cmd_hook_fast(int argc, char **argv);

#endif
