/*
 * git/history.h: snapshot ids named by ref files in commits rather than in
 * the work tree: at the tip of every branch and tag (`push --all`), and
 * later in the commits a `git push` sends (the pre-push hook).
 */
#ifndef DD_GIT_HISTORY_H
#define DD_GIT_HISTORY_H

#include <stddef.h>

#include "git/repo.h"

/*
 * Add to (*ids, *n) the snapshot id of each ref file under .dnadata/refs/
 * in the tree of `rev` (a branch, tag or commit); `profiles` (NULL = all)
 * limits it to those names. A commit without .dnadata/refs adds nothing.
 * A ref file that does not parse is an error naming the revision.
 */
int dd_history_ids_at(char ***ids, size_t *n, const struct dd_repo *repo, const char *rev,
		      const char *const *profiles, size_t nprofiles);
/* The same for the tip of every local branch and every tag (tags that name no commit are skipped). */
int dd_history_ids_all(char ***ids, size_t *n, const struct dd_repo *repo, const char *const *profiles,
		       size_t nprofiles);

/*
 * For the store's gc: add the snapshot id of every ref file under
 * .dnadata/refs/ in every commit reachable from any ref of the repository
 * (refs/heads, refs/tags, refs/remotes and the rest under refs/), from
 * HEAD and each linked worktree's HEAD, and from every reflog entry (old
 * and new ids) of those refs and HEADs (a reset away is undone with
 * HEAD@{n}; refs/stash's reflog is git's stash list). Generous by design: each distinct .dnadata/refs tree is read once;
 * a ref file that does not parse still gives any `snapshot <64 hex>` line
 * it holds; inline profiles' refs name nothing in the store and are left
 * out. *ncommits (may be NULL) gets how many commits were walked.
 */
int dd_history_ids_reachable(char ***ids, size_t *n, const struct dd_repo *repo, size_t *ncommits);

/*
 * For the store's gc: add the snapshot ids the ref files of the main work
 * tree and of every linked worktree name (committed or not; a worktree
 * whose folder is gone is skipped), and those staged in each one's git
 * index. A work tree's ref file that does not parse is an error.
 */
int dd_history_worktree_ref_ids(char ***ids, size_t *n, const struct dd_repo *repo);

/*
 * For the pre-push hook: add the snapshot id of every ref file under
 * .dnadata/refs/ added or changed (against each parent; a root commit: every
 * one) in the commits reachable from `tip` and not from what the remote is
 * known to have: `remote_sha` when it names a commit we have, else every
 * refs/remotes/<remote>/... ref (a new branch, or a remote tip fetched by
 * someone else). Commits are read from the object database, nothing is
 * checked out. A ref file that does not parse is an error naming its commit.
 */
int dd_history_ids_pushed(char ***ids, size_t *n, const struct dd_repo *repo, const char *tip, const char *remote_sha,
			  const char *remote);

/* One change of a file in history, as dd_history_file_log() reports it. */
struct dd_history_change {
	git_commit *commit;        /* borrowed: id, author, time, message */
	const char *blob;          /* the file's content at that commit (NULL: removed there) */
	size_t len;
};
/*
 * Walk the commits reachable from `rev` (NULL: HEAD; unborn HEAD: nothing),
 * newest first (topological, then commit time), and call fn for each commit
 * whose `relpath` blob differs from that of every one of its parents (a
 * root commit: where the file exists): the commits `git log --full-history
 * -- <relpath>` shows without the merges that took one parent's file. Trees
 * are read from the object database, nothing is checked out. fn's first
 * non-zero return stops the walk and is returned; 0 at the end, -1 on error.
 */
int dd_history_file_log(const struct dd_repo *repo, const char *rev, const char *relpath,
			int (*fn)(const struct dd_history_change *c, void *arg), void *arg);

/* A ref file at the tip of a local branch or tag, as dd_history_each_named() reports it. */
struct dd_history_named {
	const char *ref;      /* refs/heads/<branch> or refs/tags/<tag> */
	const char *profile;  /* the ref file's name */
	const char *snapshot; /* 64 hex; NULL when the file does not parse (`error` says why) */
	const char *error;
	int is_inline;        /* an inline profile's ref (dd_ref_is_inline): its snapshot is in git, not the store */
};
/*
 * Call fn for every ref file under .dnadata/refs/ at the tip of every local
 * branch and tag (tags that name no commit are skipped), in no particular
 * order. Bounded work: only the tips are read, and each distinct
 * .dnadata/refs tree is read and parsed once, so a thousand branches that
 * share it cost one parse. fn's first non-zero return stops it and is
 * returned; 0, -1.
 */
int dd_history_each_named(const struct dd_repo *repo, int (*fn)(const struct dd_history_named *nm, void *arg),
			  void *arg);

#endif
