/*
 * git/commit.h: git-dnadata's automatic commits.
 *
 * dd_commit_paths() commits exactly the given work-tree paths, as they are
 * on disk (a missing file is removed from the tree), on top of HEAD (or as
 * the root commit when HEAD is unborn), with git_tree_create_updated().
 * Anything else the user staged or changed stays as it was; the index
 * entries of those paths are updated so `git status` is clean for them.
 * Author/committer come from git config. It refuses when one of the paths
 * is in a merge conflict. On failure, files, index and HEAD are unchanged.
 */
#ifndef DD_GIT_COMMIT_H
#define DD_GIT_COMMIT_H

#include <stddef.h>

struct dd_repo;

/*
 * Commit `paths` (relative to the work tree) with message "dnadata: <what>".
 * If nothing differs from HEAD for those paths, no commit is made and 1 is
 * returned. `commit_out` (may be NULL) receives the new commit's hex id.
 */
int dd_commit_paths(struct dd_repo *repo, const char *const *paths, size_t npaths,
		    const char *what, char commit_out[41]);

/* Fail with a clear message if any of `paths` is in a merge conflict. */
int dd_commit_check_conflicts(struct dd_repo *repo, const char *const *paths, size_t npaths);

/*
 * Everything that could make dd_commit_paths() refuse, checked up front so a
 * command can fail before it changes any file: a conflict on one of
 * `paths`, a merge/rebase/cherry-pick/revert in progress, a missing git
 * identity ("Author identity unknown ...").
 */
int dd_commit_precheck(struct dd_repo *repo, const char *const *paths, size_t npaths);

#endif
