/*
 * cmd/cmd-hook.c: `git dnadata hook <name> ARGS`, what git-dnadata's git
 * hooks run (hooks/ in the source tree), and what a hook manager that owns
 * the hook files (lefthook, pre-commit, husky) calls the same way. Not in
 * the command list; documented in the README ("Git hooks").
 *
 * post-checkout (branch checkouts only: its third argument is 1),
 * post-merge, post-rewrite: when the active profile's ref at HEAD names a
 * snapshot other than the one the working database holds, switch to it.
 * Not the post-checkout a rebase runs when it checks out `onto` with the
 * branch's commits still to replay (dd_hooks_rebase_checkout): a rebase
 * that stops there leaves the user on the branch's commits, so the database
 * stays the branch's; post-rewrite switches when the rebase ends.
 * The check (dd_workflow_check) reads two small files: when nothing needs
 * doing, no connection is made and the store is not opened. When a switch
 * is due, its connection is started then, in the background
 * (dd_pg_preconnect), while libgit2 starts and the git side is read. A hook never
 * makes the git command fail or hang: whatever goes wrong is printed as ONE
 * line ("git-dnadata: <what happened>; run `git dnadata restore` to ...")
 * and the exit status is 0. Nothing here prompts: the restore takes no
 * passphrase callback (a key the clone lacks is an error), and the
 * database lock is not waited for (DD_RESTORE_HOOK).
 *
 * pre-push: reads git's "<local ref> <local sha> <remote ref> <remote sha>"
 * lines; every snapshot named by a ref file added or changed in the commits
 * being pushed must be in the store: what is missing is uploaded from the
 * local cache, and when that fails the push is refused (exit 1) with one
 * line naming the snapshot, the reason and `git push --no-verify`.
 *
 * A linked worktree without its own database (config.h,
 * dd_config_worktree_check) switches nothing; its hooks say once how to give
 * it one (a marker file in the worktree's git dir remembers it was said).
 */
#include "cmd/progress.h"
#include "config/config.h"
#include "dnadata.h"
#include "git/history.h"
#include "git/hooks.h"
#include "git/ref.h"
#include "git/repo.h"
#include "pg/pg.h"
#include "store/store.h"
#include "util/fs.h"
#include "workflow/workflow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const usage[] = {
	"git dnadata hook <post-checkout|post-merge|post-rewrite|pre-push> [<git's hook arguments>...]",
	"",
	"What git-dnadata's git hooks run (see `git dnadata install-hooks`). A hook manager",
	"that owns the hook files (lefthook, pre-commit, husky) calls it the same way, e.g.",
	"  git dnadata hook post-checkout \"$@\"",
	"post-checkout, post-merge and post-rewrite switch the database to the snapshot",
	"HEAD's ref names, and never fail the git command (one warning line instead);",
	"pre-push uploads the snapshots the pushed commits name, or refuses the push.",
	"DNADATA_SKIP=1 makes the hook scripts skip this.",
	NULL,
};

/* The one line a post-* hook prints when it could not do its work (and why, from the recorded error). */
static void
say_not_switched(const char *what, const char *snapshot)
{
	const char *why = dd_error_last();
	char *line;

	if (snapshot && *snapshot)
		line = dd_asprintf("%s%s%s; run `git dnadata restore` to switch the database to snapshot %.12s", what,
				   why ? ": " : "", why ? why : "", snapshot);
	else
		line = dd_asprintf("%s%s%s; run `git dnadata restore` to switch the database when it is fixed", what,
				   why ? ": " : "", why ? why : "");
	dd_log_line("git-dnadata: ", line);
	free(line);
	dd_error_clear();
}

/* A linked worktree without a database of its own: say how to give it one, once. */
static void
worktree_hint(const struct dd_config *cfg)
{
	char *dir = dd_path_dirname(cfg->worktree_path);
	char *marker = dd_path_join(dir, "hint-shown");

	if (!dd_path_exists(marker)) {
		dd_log_line("git-dnadata: ", "this linked worktree manages no database of its own, so checkouts here "
			    "switch none; give it one with `git dnadata use <profile> --worktree-database <name>` "
			    "(said once)");
		if (dd_mkdir_p(dir, 0700) == 0)
			dd_file_write_atomic(marker, "", 0, 0600, 0);
	}
	dd_error_clear();
	free(marker);
	free(dir);
}

/*
 * post-checkout (branch checkouts; `checkout` 1), post-merge, post-rewrite:
 * switch to HEAD's snapshot. Always 0.
 */
static int
hook_switch(int checkout)
{
	struct dd_repo *repo = NULL;
	struct dd_config *cfg = NULL;
	const struct dd_profile *p;
	char snapshot[65] = "", *profiles = NULL;
	int r;

	if (dd_repo_open(&repo, NULL) < 0) {
		say_not_switched("cannot open the repository", NULL);
		goto out;
	}
	profiles = dd_path_join(repo->dnadata, "profiles.ini");
	if (!dd_path_exists(profiles))
		goto out; /* git dnadata is not set up on this commit */
	if (checkout && dd_hooks_rebase_checkout(repo))
		goto out; /* a rebase's checkout of `onto`: post-rewrite switches at its end */
	if (dd_config_load(&cfg, repo) < 0) {
		say_not_switched("cannot read the settings", NULL);
		goto out;
	}
	if (dd_config_worktree_check(cfg) < 0) {
		worktree_hint(cfg);
		goto out;
	}
	if (!(p = dd_config_profile(cfg, NULL))) {
		say_not_switched("no profile to switch", NULL);
		goto out;
	}
	r = dd_workflow_check(repo, cfg, p, "HEAD", snapshot);
	if (r == DD_NOTHING_TO_DO || r == DD_NOTFOUND) {
		dd_error_clear();
		goto out;
	}
	if (r < 0) {
		say_not_switched("the database was not switched", NULL);
		goto out;
	}
	if (isatty(STDERR_FILENO))
		dd_info("git-dnadata: switching profile %s's database to snapshot %.12s ...", p->name, snapshot);
	r = dd_workflow_restore(repo, cfg, p, "HEAD", DD_RESTORE_HOOK | DD_RESTORE_MISSING_OK);
	if (r == DD_EHOOK) {
		/* the switch is done: only the post_restore commands after the failed one are left */
		char *line = dd_asprintf("switched the database to snapshot %.12s, but %s; run the remaining "
					 "post_restore commands by hand", snapshot, dd_error_last());
		dd_log_line("git-dnadata: ", line);
		free(line);
		dd_error_clear();
	} else if (r < 0) { /* DD_EBUSY included: the lock is never waited for */
		say_not_switched("the database was not switched", snapshot);
	}
out:
	dd_pg_preconnect_end(); /* unused (no switch after all): closed */
	free(profiles);
	dd_config_free(cfg);
	dd_repo_free(repo);
	return 0;
}

/* A git object id in hex (SHA-1 or SHA-256), as git writes them to pre-push. */
static int
is_oid(const char *s)
{
	size_t i = 0;

	for (; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == 40 || i == 64;
}

/* The ids named in the pushed commits, from git's lines on stdin. */
static int
pushed_ids(char ***ids, size_t *n, struct dd_repo *repo, const char *remote)
{
	char line[4096];

	while (fgets(line, sizeof(line), stdin)) {
		char lref[2048], lsha[80], rref[2048], rsha[80];
		if (sscanf(line, "%2047s %79s %2047s %79s", lref, lsha, rref, rsha) != 4)
			continue; /* a blank line */
		if (!is_oid(lsha) || !is_oid(rsha))
			return dd_error("unexpected pre-push input: %.200s", line);
		if (strspn(lsha, "0") == strlen(lsha))
			continue; /* a deletion */
		if (dd_history_ids_pushed(ids, n, repo, lsha, strspn(rsha, "0") == strlen(rsha) ? NULL : rsha,
					  remote) < 0)
			return dd_error_wrap("reading the commits pushed to %s", rref);
	}
	return 0;
}

/* The refusal: one line (main prints it as the error) naming the snapshots, the reason and the way around. */
static int
refuse(char **ids, size_t n, const struct dd_config *cfg)
{
	/* a copy: dd_error() below rewrites the buffer dd_error_last() points into */
	char *why = dd_strdup(dd_error_last() ? dd_error_last() : "unknown reason");
	char more[48] = "";

	if (n > 1)
		snprintf(more, sizeof(more), " (and %zu more)", n - 1);
	if (n)
		dd_error("push refused: snapshot %.12s%s cannot be uploaded to the store %s: %s; push anyway with "
			 "`git push --no-verify`", ids[0], more, cfg && cfg->store_url ? cfg->store_url : "", why);
	else
		dd_error("push refused: the snapshots it needs cannot be checked: %s; push anyway with "
			 "`git push --no-verify`", why);
	free(why);
	return -1;
}

/* pre-push: 0 (the push goes on) or -1 (refused). */
static int
hook_pre_push(int argc, char **argv)
{
	struct dd_repo *repo = NULL;
	struct dd_config *cfg = NULL;
	struct dd_transfer_stats stats;
	struct dd_progress pr;
	char **ids = NULL, *profiles = NULL;
	size_t n = 0, nsnap = 0;
	int rc = -1;

	dd_progress_start(&pr);
	if (dd_repo_open(&repo, NULL) < 0)
		goto out;
	profiles = dd_path_join(repo->dnadata, "profiles.ini");
	if (!dd_path_exists(profiles)) {
		rc = 0; /* git dnadata is not set up here */
		goto out;
	}
	if (dd_config_load(&cfg, repo) < 0)
		goto out;
	if (!cfg->store_url) {
		rc = 0; /* the default store lives in this clone: there is nowhere to upload to */
		goto out;
	}
	if (pushed_ids(&ids, &n, repo, argc > 1 ? argv[1] : NULL) < 0)
		goto out;
	if (n) {
		struct dd_transfer_scope scope = { .ids = (const char *const *)ids, .nids = n,
						   .progress = dd_progress_transfer, .progress_arg = &pr };
		if (dd_workflow_push(repo, cfg, &scope, &stats, &nsnap) < 0)
			goto out;
		if (stats.files)
			dd_progress_summary(&pr, "pre-push", "sent", &stats, nsnap);
	}
	rc = 0;
out:
	if (rc < 0)
		refuse(ids, n, cfg);
	dd_ref_ids_free(ids, n);
	free(profiles);
	dd_config_free(cfg);
	dd_repo_free(repo);
	return rc;
}

/*
 * The no-op check, called by main() BEFORE libgit2 and libcurl are
 * initialised (libgit2's initialisation alone reads the system's CA
 * bundle, ~9 ms, a third of the budget a no-op checkout may add): the
 * repository is found without libgit2 (dd_hooks_repo_open_light) and the
 * ref file read from the work tree, which the checkout, merge or rewrite
 * has just made equal to HEAD's (unless the user has a change of their own
 * to it, which then is what they mean: `restore` reads the work tree too).
 * DD_NOTHING_TO_DO: exit 0 at once; 0: run the hook in full (which checks
 * at HEAD, switches, and reports whatever went wrong here).
 */
int
dd_cmd_hook_fast(int argc, char **argv)
{
	struct dd_repo *repo = NULL;
	struct dd_config *cfg = NULL;
	const struct dd_profile *p;
	char *profiles = NULL, *marker = NULL, *dir = NULL;
	int rc = 0, r;

	if (argc < 2)
		return 0;
	if (!strcmp(argv[1], "post-checkout")) {
		if (argc < 5 || strcmp(argv[4], "1"))
			return DD_NOTHING_TO_DO; /* a file checkout */
	} else if (strcmp(argv[1], "post-merge") && strcmp(argv[1], "post-rewrite")) {
		return 0;
	}
	if (dd_hooks_repo_open_light(&repo) != 0)
		goto out;
	profiles = dd_path_join(repo->dnadata, "profiles.ini");
	if (!dd_path_exists(profiles)) {
		rc = DD_NOTHING_TO_DO;
		goto out;
	}
	if (dd_config_load(&cfg, repo) < 0)
		goto out;
	if (dd_config_worktree_check(cfg) < 0) {
		dir = dd_path_dirname(cfg->worktree_path);
		marker = dd_path_join(dir, "hint-shown");
		rc = dd_path_exists(marker) ? DD_NOTHING_TO_DO : 0;
		goto out;
	}
	if (!(p = dd_config_profile(cfg, NULL)))
		goto out;
	r = dd_workflow_check(repo, cfg, p, NULL, NULL);
	if (r == DD_NOTHING_TO_DO || r == DD_NOTFOUND)
		rc = DD_NOTHING_TO_DO;
	else if (r == 0 && !dd_hooks_rebase_seen(repo))
		dd_pg_preconnect(dd_config_database(cfg, p)); /* a switch is due: connect while libgit2 starts */
out:
	dd_error_clear();
	free(marker);
	free(dir);
	free(profiles);
	dd_config_free(cfg);
	dd_repo_free(repo);
	return rc;
}

static int
cmd_hook(int argc, char **argv)
{
	const char *name;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		if (argc >= 2) {
			for (size_t i = 0; usage[i]; i++)
				printf("%s%s\n", i ? "" : "usage: ", usage[i]);
			return DD_EHELP;
		}
		return dd_usage_error("hook", "which hook? (post-checkout, post-merge, post-rewrite or pre-push)");
	}
	name = argv[1];
	if (!strcmp(name, "post-checkout") || !strcmp(name, "post-merge") || !strcmp(name, "post-rewrite") ||
	    !strcmp(name, "pre-push")) {
		char *holder = dd_asprintf("git dnadata hook %s", name);
		dd_lock_set_command(holder);
		free(holder);
		/* a lock held by another command makes a post-* hook skip with one line: it never blocks git */
		if (strcmp(name, "pre-push"))
			dd_lock_never_wait();
	}
	if (!strcmp(name, "post-checkout"))
		return argc >= 5 && !strcmp(argv[4], "1") ? hook_switch(1) : 0; /* a file checkout: nothing to do */
	if (!strcmp(name, "post-merge") || !strcmp(name, "post-rewrite"))
		return hook_switch(0);
	if (!strcmp(name, "pre-push"))
		return hook_pre_push(argc - 1, argv + 1);
	return dd_usage_error("hook", "'%s' is not a hook git-dnadata handles (post-checkout, post-merge, "
			      "post-rewrite, pre-push)", name);
}

/* summary NULL: not in `git dnadata -h` (the hook scripts call it) */
const struct dd_command dd_cmd_hook = { "hook", NULL, cmd_hook };
