/*
 * git/commit.h: git-dnadata's automatic commits.
 *
 * dd_commit_paths() commits exactly the given work-tree paths, as they are
 * on disk (a missing file is removed from the tree), on top of HEAD (or as
 * the root commit when HEAD is unborn), with git_tree_create_updated().
 * Anything else the user staged or changed stays as it was; the index
 * entries of those paths are updated so `git status` is clean for them.
 * Author/committer come from git config. It refuses when one of the paths
 * is in a merge conflict, is a symbolic link or lies under one. On failure,
 * files, index and HEAD are as they were: files given with new contents are
 * written by the commit itself, under its locks, and put back on failure.
 *
 * Safe against concurrent commits (ours, and git's): the index is read and
 * written under index.lock, HEAD's ref is moved by compare-and-swap (see
 * commit.c), so two commits at once both land, one after the other.
 */
#ifndef DD_GIT_COMMIT_H
#define DD_GIT_COMMIT_H

#include <stddef.h>

struct dd_buf;
struct dd_repo;
struct dd_ref;

struct dd_commit_file {
	const char *path; /* relative to the work tree */
	const void *data; /* its new contents, or NULL: commit the file as it is on disk (missing = removed) */
	size_t len;
	/*
	 * Or (data NULL): compute the new contents under the commit's locks, so
	 * a read-modify-write never loses another git-dnadata command's change.
	 * Called with the file's absolute path once its old contents are saved;
	 * fills `out`, which is then written. The callback may also write the
	 * file itself: on any failure it is put back as it was.
	 */
	int (*update)(struct dd_buf *out, const char *abs, void *arg);
	void *arg;
};

/*
 * Write the files given with contents, then commit all `files` with message
 * "dnadata: <what>". Returns DD_OK, DD_UNCHANGED when nothing differs from
 * HEAD for those paths (no commit; the index still agrees with the files),
 * or -1 (files, index and HEAD as they were). `commit_out` (may be NULL)
 * receives the new commit's hex id.
 */
int dd_commit_files(struct dd_repo *repo, const struct dd_commit_file *files, size_t nfiles, const char *what,
		    char commit_out[41]);

/* dd_commit_files() of `paths` as they are on disk. */
int dd_commit_paths(struct dd_repo *repo, const char *const *paths, size_t npaths,
		    const char *what, char commit_out[41]);

/* Write ref file `rel` (".dnadata/refs/<profile>") with `ref` and commit it; as dd_commit_files(). */
int dd_commit_ref(struct dd_repo *repo, const char *rel, const struct dd_ref *ref, const char *what);

/* Fail with a clear message if any of `paths` is in a merge conflict. */
int dd_commit_check_conflicts(struct dd_repo *repo, const char *const *paths, size_t npaths);

/*
 * Everything that could make dd_commit_paths() refuse, checked up front so a
 * command can fail before it changes any file: a conflict on one of
 * `paths`, a merge/rebase/cherry-pick/revert in progress, a missing git
 * identity ("Author identity unknown ..."), a git lock file held (the
 * index's, or that of the branch HEAD names: "… is locked by another git
 * process (<path> exists)").
 */
int dd_commit_precheck(struct dd_repo *repo, const char *const *paths, size_t npaths);

#endif
