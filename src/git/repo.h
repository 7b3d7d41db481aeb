/*
 * git/repo.h: the user's repository, found from the current directory.
 *
 * Works from a subdirectory, in a linked worktree (local state lives in the
 * common git dir, so all worktrees share one cache and key) and in a
 * repository with no commits yet. Bare repositories are refused.
 */
#ifndef DD_GIT_REPO_H
#define DD_GIT_REPO_H

#include <git2.h>

#include "util/buf.h"
#include "util/err.h"

struct dd_repo {
	git_repository *git;
	char *workdir;   /* work tree root, no trailing '/' */
	char *dnadata;   /* <workdir>/.dnadata */
	char *statedir;  /* <common git dir>/dnadata (not tracked) */
	char *gitdir;    /* this work tree's own git dir (<common>/worktrees/<name> for a linked worktree) */
	int linked;      /* a linked worktree (git worktree add) */
};

/* Record the error libgit2 reports for its last failed call ("what: reason"); returns -1. */
int dd_error_git(const char *what);

/* Open the repository containing `start` (NULL = cwd). Error: "not a git repository ...". */
int dd_repo_open(struct dd_repo **out, const char *start);
void dd_repo_free(struct dd_repo *repo);

/* Absolute path of `rel` inside the work tree. Caller frees. */
char *dd_repo_path(const struct dd_repo *repo, const char *rel);

/* `path` relative to the work tree when it lies inside it (for messages), else `path` itself. */
const char *dd_repo_display_path(const struct dd_repo *repo, const char *path);
/* `s` (a path) in single quotes for a POSIX shell, each ' as '\'', for a hint's command. Caller frees. */
char *dd_repo_shell_quote(const char *s);

/*
 * Does `relpath` differ between HEAD, the index and the work tree (modified,
 * staged, untracked or deleted)? Returns 1 yes, 0 no, -1 on error.
 */
int dd_repo_changed(const struct dd_repo *repo, const char *relpath);

/* The HEAD commit id as 40 hex chars (+NUL); DD_NOTFOUND (and "") when HEAD is unborn. */
int dd_repo_head(const struct dd_repo *repo, char out[41]);

/*
 * The tree entry at `relpath` in the commit `rev` names (caller frees with
 * git_tree_entry_free): 0, DD_NOTFOUND (no such path, no commits yet at
 * HEAD, or, unless commits_only, a tag of something other than a commit),
 * -1 with the error set.
 */
int dd_repo_entry_at(git_tree_entry **out, const struct dd_repo *repo, const char *rev, const char *relpath,
		     int commits_only);
/*
 * Read a tracked file as it is at revision `rev` (e.g. "HEAD", a branch,
 * a commit id). Returns 0, DD_NOTFOUND if the file does not exist at that
 * revision, or -1 on error.
 */
int dd_repo_read_at(struct dd_buf *out, const struct dd_repo *repo, const char *rev, const char *relpath);

/*
 * Hold the lock that makes two snapshots of profile `name` in this
 * repository run one after the other (flock on <statedir>/locks/<name>;
 * the kernel drops it when the process ends, so it is never stale). Waits,
 * saying so, while another process holds it. *fd receives the lock; give it
 * to dd_repo_unlock().
 */
int dd_repo_lock_profile(const struct dd_repo *repo, const char *name, int *fd);
/* Release a lock from dd_repo_lock_profile(); -1 is ignored. */
void dd_repo_unlock(int fd);

#endif
