/*
 * git/hooks.h: the git hooks git-dnadata installs (post-checkout,
 * post-merge, post-rewrite, pre-push), where they go, and whether they are
 * there.
 *
 * The scripts live in the top-level hooks/ folder and are compiled into the
 * binary (scripts/embed-hooks.sh writes hooks-scripts.c at build time), so
 * the installed program alone can install them. Each carries the marker line
 * "# installed by git-dnadata" (its second line): a hook file with it is
 * ours, and is rewritten in place; any other is the user's, kept byte for
 * byte as <name>.before-dnadata beside ours, which runs it first with the
 * same arguments (and, for pre-push, the same input); but one that already
 * runs `git dnadata hook <name>` is left where it is. Uninstalling puts a
 * kept one back under its own name.
 *
 * The hooks folder is git's: core.hooksPath when set (a relative value is
 * relative to the work tree's root, where git runs hooks), else the common
 * git dir's hooks/ (so every linked worktree shares them).
 */
#ifndef DD_GIT_HOOKS_H
#define DD_GIT_HOOKS_H

#include <stddef.h>

struct dd_repo;

/* One embedded hook script (hooks-scripts.c, generated from hooks/). */
struct dd_hook_script {
	const char *name;
	const char *text;
};
/* Every hook we install, in a fixed order, ended by { NULL, NULL }. */
extern const struct dd_hook_script dd_hook_scripts[];

/* The suffix of the user's own hook kept beside ours: post-checkout.before-dnadata. */
#define DD_HOOK_USER_SUFFIX ".before-dnadata"
/* The marker line that makes a hook file ours. */
#define DD_HOOK_MARKER "# installed by git-dnadata"

enum dd_hook_state {
	DD_HOOK_MISSING,   /* no hook file */
	DD_HOOK_OURS,      /* ours, as this binary would write it */
	DD_HOOK_OUTDATED,  /* ours, from another version: install-hooks rewrites it */
	DD_HOOK_CALLS_US,  /* not ours, but it runs `git dnadata hook <name>` (a hook manager's file) */
	DD_HOOK_FOREIGN,   /* someone else's: install-hooks keeps it and chains to it */
};

/* The folder git runs hooks from (core.hooksPath or <common git dir>/hooks). Caller frees. */
int dd_hooks_dir(char **out, const struct dd_repo *repo);

/* The state of each hook of dd_hook_scripts[] (states[] has one entry per script). 0 or -1. */
int dd_hooks_state(enum dd_hook_state *states, const struct dd_repo *repo);

/* Each hook's state in more detail (status, doctor). */
#define DD_HOOKS_MAX 8
struct dd_hooks_report {
	char *dir;           /* the folder git runs hooks from */
	int custom_dir;      /* it is not <common git dir>/hooks (core.hooksPath) */
	size_t n;            /* hooks, in dd_hook_scripts[] order */
	struct {
		enum dd_hook_state state;
		int chained;     /* the user's own hook is kept as <name>.before-dnadata and runs first */
		int executable;  /* git runs it (a hook without the x bit is skipped with a hint) */
	} hook[DD_HOOKS_MAX];
};
/* `repo` from dd_repo_open() (not the light one: it needs libgit2). 0 or -1; release with dd_hooks_report_release(). */
int dd_hooks_report(struct dd_hooks_report *out, const struct dd_repo *repo);
void dd_hooks_report_release(struct dd_hooks_report *r);
/* "missing", "installed", "outdated", "calls git dnadata", "not ours" */
const char *dd_hook_state_name(enum dd_hook_state s);

/*
 * Install every hook (see the top of this file), saying what it did for
 * each with dd_info(); a hook that runs `git dnadata hook <name>` itself is
 * left alone (and said so). Checks every file first: a hook that is a symbolic
 * link, cannot be replaced, or whose .before-dnadata name is taken stops
 * it with one line naming the file, before anything changed. Idempotent.
 */
int dd_hooks_install(const struct dd_repo *repo);
/* Remove our hooks, putting back the user's hooks kept beside them. Others' hooks are left alone. */
int dd_hooks_uninstall(const struct dd_repo *repo);

/*
 * post-checkout during a rebase: git runs it when the rebase checks out
 * `onto` (HEAD detached), before it replays the branch's commits; a rebase
 * that stops (conflict, edit, break) leaves the user there, working on the
 * branch's commits. 1 when this checkout is such a rebase's first step with
 * commits still to replay (the database must not switch: post-rewrite does
 * at the end); 0 when no rebase is under way, or when this checkout is the
 * rebase's result (a fast-forward, nothing left to replay, no post-rewrite
 * follows). A rebase is under way when <gitdir>/rebase-merge or
 * rebase-apply exists, GIT_REFLOG_ACTION names it, or HEAD's last reflog
 * entry is a rebase's (the apply backend checks out before it writes
 * rebase-apply). Never an error: what cannot be read counts as "no".
 */
int dd_hooks_rebase_checkout(const struct dd_repo *repo);
/* The libgit2-free part of that: rebase-merge or rebase-apply exists, or GIT_REFLOG_ACTION names a rebase. */
int dd_hooks_rebase_seen(const struct dd_repo *repo);

/*
 * For the hooks' no-op check, which must cost next to nothing: the
 * repository around the current directory found WITHOUT libgit2 (whose
 * initialisation alone reads the system's CA bundle, ~9 ms), for the
 * layout git runs hooks in: the cwd is the work tree's root, holding a
 * .git folder or a "gitdir:" file (a linked worktree, with its commondir),
 * and GIT_DIR / GIT_WORK_TREE are not set. repo->git is NULL: only paths.
 * 0, or DD_NOTFOUND when the layout is another (then use dd_repo_open()).
 * Free with dd_repo_free().
 */
int dd_hooks_repo_open_light(struct dd_repo **out);

#endif
