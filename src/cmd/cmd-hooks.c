/*
 * cmd/cmd-hooks.c: `install-hooks` and `uninstall-hooks`: put git-dnadata's
 * git hooks in the repository's hooks folder, or take them out (the work
 * is in git/hooks.c; the scripts are hooks/ in the source tree, compiled
 * into this program).
 */
#include "dnadata.h"
#include "git/hooks.h"
#include "git/repo.h"

static const char *const install_usage[] = {
	"git dnadata install-hooks",
	"",
	"Installs git-dnadata's git hooks (post-checkout, post-merge, post-rewrite,",
	"pre-push) in core.hooksPath, or else .git/hooks (shared by linked worktrees):",
	"checking out a branch then switches the database to that branch's snapshot, and",
	"a push first uploads the snapshots its commits name. A hook you already have is",
	"kept as <hook>.before-dnadata and still runs first. `git dnadata init` installs",
	"them too; running this again updates them.",
	"",
	"Examples:",
	"  git dnadata install-hooks",
	"  git config core.hooksPath .githooks && git dnadata install-hooks",
	"  DNADATA_SKIP=1 git checkout main     # this checkout leaves the database alone",
	NULL,
};

static const char *const uninstall_usage[] = {
	"git dnadata uninstall-hooks",
	"",
	"Removes git-dnadata's git hooks and puts back the hooks kept as",
	"<hook>.before-dnadata. Hooks that are not git-dnadata's are left alone.",
	"",
	"Examples:",
	"  git dnadata uninstall-hooks",
	"  git dnadata uninstall-hooks && git dnadata install-hooks   # start afresh",
	NULL,
};

static int
run(int argc, char **argv, const char *const *usage, int install)
{
	const struct dd_option opts[] = { DD_OPT_END_MARK };
	struct dd_repo *repo = NULL;
	const char *name = argv[0];
	int n = dd_parse_options(argc, argv, opts, usage), rc;

	if (n < 0)
		return n;
	if (n > 0)
		return dd_usage_error(name, "%s takes no arguments ('%s' given)", name, argv[0]);
	if (dd_repo_open(&repo, NULL) < 0)
		return -1;
	rc = install ? dd_hooks_install(repo) : dd_hooks_uninstall(repo);
	dd_repo_free(repo);
	return rc;
}

static int
cmd_install_hooks(int argc, char **argv)
{
	return run(argc, argv, install_usage, 1);
}

static int
cmd_uninstall_hooks(int argc, char **argv)
{
	return run(argc, argv, uninstall_usage, 0);
}

const struct dd_command dd_cmd_install_hooks = { "install-hooks", "install the git hooks that switch databases on checkout",
						 cmd_install_hooks };
const struct dd_command dd_cmd_uninstall_hooks = { "uninstall-hooks", "remove git-dnadata's git hooks",
						   cmd_uninstall_hooks };
