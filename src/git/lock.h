/*
 * git/lock.h: the locks around git-dnadata's automatic commits (used inside
 * git/ only).
 *
 * Two kinds, for two kinds of neighbour:
 *  - Other git-dnadata processes: the commit lock, flock() on the common git
 *    directory, held by each of our commits from reading the index to
 *    writing it. Ours therefore never race each other, and never see each
 *    other's git lock files. The kernel drops it when a process ends, even
 *    by kill -9, so it is never stale and is waited for without a limit.
 *  - git itself (and other tools): git's own lock files, <gitdir>/index.lock
 *    and <ref>.lock, created with O_EXCL as git creates them. One held by
 *    another process is waited for briefly (git waits 100 ms for a ref lock
 *    by default; an editor's background `git status` holds index.lock for a
 *    few milliseconds), then reported by name: a lock left by a crashed git
 *    process stays until someone removes it, and only a person can tell.
 *    Except our own: the index lock our commits take is made as
 *    <lock>.dnadata first and linked to its name, and the new index that
 *    replaces its contents is linked as <lock>.dnadata2 before it does, so a
 *    lock file that is one file with either was left by a git-dnadata
 *    process killed while it committed (none holds it: we hold the commit
 *    lock), and is removed with a warning. git never writes through those
 *    names. HEAD's ref lock is libgit2's (held for microseconds while
 *    the ref moves): just before it moves, a note <commondir>/dnadata-ref-move
 *    names the lock file and the new commit, and goes once it moved. A lock
 *    file that outlives the brief wait while that note is left (its writer
 *    was killed: we hold the commit lock), was made within 5 s after it
 *    (a later git command's lock is not), and holds nothing or exactly that
 *    commit's id, was left by it and is removed with a warning.
 */
#ifndef DD_GIT_LOCK_H
#define DD_GIT_LOCK_H

struct dd_repo;

/* Take the commit lock (waits while another git-dnadata process commits). */
int dd_lock_commits(const struct dd_repo *repo, int *fd);
void dd_unlock_commits(int fd);

/*
 * Create `path` (a git lock file) with O_EXCL; *fd receives it. Held by
 * another process past the brief wait: "<what> is locked by another git
 * process (<path> exists)" with a hint to remove a stale one.
 */
int dd_lock_git_file(const struct dd_repo *repo, const char *path, const char *what, int *fd);

/*
 * dd_lock_git_file for our commits' index lock (the caller holds the commit
 * lock): made as <path>.dnadata and linked to `path`, after removing a lock
 * of ours a killed process left (see the top). A file system without hard
 * links gets a lock file as dd_lock_git_file makes it.
 */
int dd_lock_git_file_ours(const struct dd_repo *repo, const char *path, const char *what, int *fd);

/* `next`, about to be renamed onto our lock `path`, is linked as <path>.dnadata2 first (best effort). */
void dd_lock_ours_next(const char *path, const char *next);

/* Once our lock `path` is released (removed or renamed): its other names go. */
void dd_lock_ours_release(const char *path);

/* Wait briefly for a git lock file to go; -1 with the error above if it stays. */
int dd_lock_wait_free(const struct dd_repo *repo, const char *path, const char *what);

/*
 * dd_lock_wait_free for the lock file of the ref HEAD's commits go to
 * (the caller holds the commit lock): one a killed git-dnadata process left
 * while the ref moved is removed (see the top), and once it is free, a
 * note that names it goes.
 */
int dd_lock_wait_free_ref(const struct dd_repo *repo, const char *path, const char *what);

/*
 * The ref whose lock file is `path` is about to move to commit `id` (the
 * caller holds the commit lock): the note of the top (best effort), until
 * dd_lock_ref_moved().
 */
void dd_lock_ref_moving(const struct dd_repo *repo, const char *path, const char *id);
void dd_lock_ref_moved(const struct dd_repo *repo);

/* Record the "is locked" error for `path`; returns -1. */
int dd_lock_error(const struct dd_repo *repo, const char *path, const char *what);

/*
 * The ref HEAD's commits go to ("refs/heads/main", or "HEAD" when detached),
 * and the path of its lock file. Caller frees both.
 */
int dd_lock_head_ref(const struct dd_repo *repo, char **name, char **lock_path);

/* The path of the repository's index file (the lock is that + ".lock"). Caller frees. */
int dd_lock_index_path(const struct dd_repo *repo, char **path);

/*
 * Fail now, not after a long dump, if a git lock a commit needs is held:
 * the index's and that of the ref HEAD's commits go to.
 */
int dd_lock_check_git(const struct dd_repo *repo);

#endif
