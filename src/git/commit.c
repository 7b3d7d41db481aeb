/*
 * git/commit.c: commit exactly a few paths, leaving the rest of the user's
 * work alone (see commit.h).
 *
 * How: the new tree is HEAD's tree with only those paths replaced
 * (git_tree_create_updated), so whatever else the user staged is not
 * swept into our commit; the same paths' index entries are refreshed from
 * the work tree, so `git status` is clean for them afterwards.
 *
 * Concurrency, as git does it: the index is read, changed and written
 * under <gitdir>/index.lock (created with O_EXCL; the new index is written
 * beside it and renamed over the lock file, which is renamed onto the index
 * once HEAD moved), so a concurrent writer's update is never undone by
 * ours. Around that, the commit lock (lock.h) makes git-dnadata processes take turns
 * instead of failing on each other's lock files. HEAD's ref moves by
 * compare-and-swap from the id the commit was built on; if something else
 * moved it meanwhile, the commit is built again on the new HEAD (a bounded
 * number of times), so no one's commit is lost.
 *
 * Order, so that a failure changes nothing: everything that can refuse
 * (conflicts, a merge or rebase in progress, a missing identity, a held
 * lock) is checked before anything is written; files given with new
 * contents are written under the locks and put back as they were on any
 * failure; blobs and trees written to the object database are unreachable
 * and harmless if we stop; the complete new index is written into
 * index.lock before HEAD moves, so that after HEAD moved one rename is left
 * (if it fails, HEAD is moved back by compare-and-swap; if even that fails,
 * the error says so and how to make the index match). SIGINT, SIGTERM,
 * SIGHUP and SIGQUIT wait while index.lock is held (see hold_signals).
 * A path is never committed as a symbolic link, nor through one.
 * Our commits do not run git's commit hooks and are not signed.
 */
#include "git/commit.h"
#include "git/lock.h"
#include "git/ref.h"
#include "git/repo.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <git2/sys/repository.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* How many times a commit is built again because HEAD moved under it. */
#define MAX_ATTEMPTS 10

/* A path we are willing to commit: relative, normalised, outside .git. */
static int
check_path(const char *p)
{
	const char *s = p;

	if (!*p || *p == '/')
		goto bad;
	while (*s) {
		const char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && !memcmp(s, "..", 2)) ||
		    (len == 4 && !strncasecmp(s, ".git", 4)))
			goto bad;
		s += len + (e ? 1 : 0);
		if (e && !*s)
			goto bad;
	}
	return 0;
bad:
	return dd_error("BUG: refusing to commit path '%s' (not a clean relative path)", p);
}

static int
check_conflicts_in(git_index *index, const char *const *paths, size_t npaths)
{
	for (size_t i = 0; i < npaths; i++) {
		const git_index_entry *a, *o, *t;
		int err = git_index_conflict_get(&a, &o, &t, index, paths[i]);
		if (err == GIT_ENOTFOUND)
			continue;
		if (err < 0)
			return dd_error_git(paths[i]);
		dd_error("%s has unresolved merge conflicts; git dnadata will not commit over them", paths[i]);
		dd_hint("resolve the conflict, then 'git add %s' and 'git commit' (or 'git merge --abort')", paths[i]);
		return -1;
	}
	return 0;
}

int
dd_commit_check_conflicts(struct dd_repo *repo, const char *const *paths, size_t npaths)
{
	git_index *index = NULL;
	int rc = -1;

	if (git_repository_index(&index, repo->git) < 0 || git_index_read(index, 1) < 0)
		dd_error_git("cannot read the git index");
	else
		rc = check_conflicts_in(index, paths, npaths);
	git_index_free(index);
	return rc;
}

/* The git operations that must not get a commit in the middle, and how to abort each. */
static const struct {
	git_repository_state_t state;
	const char *what, *abort_cmd;
} in_progress[] = {
	{ GIT_REPOSITORY_STATE_MERGE, "a merge", "git merge --abort" },
	{ GIT_REPOSITORY_STATE_REVERT, "a revert", "git revert --abort" },
	{ GIT_REPOSITORY_STATE_REVERT_SEQUENCE, "a revert", "git revert --abort" },
	{ GIT_REPOSITORY_STATE_CHERRYPICK, "a cherry-pick", "git cherry-pick --abort" },
	{ GIT_REPOSITORY_STATE_CHERRYPICK_SEQUENCE, "a cherry-pick", "git cherry-pick --abort" },
	{ GIT_REPOSITORY_STATE_REBASE, "a rebase", "git rebase --abort" },
	{ GIT_REPOSITORY_STATE_REBASE_INTERACTIVE, "a rebase", "git rebase --abort" },
	{ GIT_REPOSITORY_STATE_REBASE_MERGE, "a rebase", "git rebase --abort" },
	{ GIT_REPOSITORY_STATE_APPLY_MAILBOX, "'git am'", "git am --abort" },
	{ GIT_REPOSITORY_STATE_APPLY_MAILBOX_OR_REBASE, "'git am'", "git am --abort" },
};

static int
check_state(struct dd_repo *repo)
{
	int state = git_repository_state(repo->git);
	const char *what = NULL, *abort_cmd = NULL;

	for (size_t i = 0; i < sizeof(in_progress) / sizeof(in_progress[0]); i++)
		if (in_progress[i].state == (git_repository_state_t)state) {
			what = in_progress[i].what;
			abort_cmd = in_progress[i].abort_cmd;
			break;
		}
	if (!what)
		return 0;
	dd_error("%s is in progress; git dnadata will not add a commit in the middle of it", what);
	dd_hint("finish it (or '%s') and run the command again, or pass --no-commit", abort_cmd);
	return -1;
}

/* Author and committer like git: GIT_{AUTHOR,COMMITTER}_{NAME,EMAIL}, else user.name/user.email. */
static int
signatures(struct dd_repo *repo, git_signature **author, git_signature **committer)
{
	git_config *cfg = NULL, *snap = NULL;
	const char *cname = NULL, *cemail = NULL;
	const char *names[2], *emails[2];
	git_signature *sigs[2] = { NULL, NULL };
	int rc = -1;

	*author = *committer = NULL;
	if (git_repository_config(&cfg, repo->git) < 0 || git_config_snapshot(&snap, cfg) < 0) {
		dd_error_git("cannot read git config");
		goto out;
	}
	if (git_config_get_string(&cname, snap, "user.name") < 0)
		cname = NULL;
	if (git_config_get_string(&cemail, snap, "user.email") < 0)
		cemail = NULL;
	git_error_clear();
	names[0] = getenv("GIT_AUTHOR_NAME");
	emails[0] = getenv("GIT_AUTHOR_EMAIL");
	names[1] = getenv("GIT_COMMITTER_NAME");
	emails[1] = getenv("GIT_COMMITTER_EMAIL");
	for (int i = 0; i < 2; i++) {
		const char *n = names[i] && *names[i] ? names[i] : cname;
		const char *e = emails[i] && *emails[i] ? emails[i] : cemail;
		if (!n || !*n || !e || !*e) {
			dd_error("%s identity unknown: git's user.name and user.email are not set",
				 i == 0 ? "Author" : "Committer");
			dd_hint("run git config --global user.email \"you@example.com\" and "
				"git config --global user.name \"Your Name\" (or pass --no-commit)");
			goto out;
		}
		if (git_signature_now(&sigs[i], n, e) < 0) {
			dd_error_git("invalid git identity (user.name/user.email)");
			goto out;
		}
	}
	*author = sigs[0], *committer = sigs[1];
	sigs[0] = sigs[1] = NULL;
	rc = 0;
out:
	git_signature_free(sigs[0]);
	git_signature_free(sigs[1]);
	git_config_free(snap);
	git_config_free(cfg);
	return rc;
}

/* `rel` exists as neither a symbolic link nor a directory, and is not reached through a link. */
static int
check_target(struct dd_repo *repo, const char *rel)
{
	char *abs = dd_repo_path(repo, rel);
	size_t base = strlen(repo->workdir) + 1;
	struct stat st;
	int rc = -1;

	for (char *slash = strchr(abs + base, '/');; slash = strchr(slash + 1, '/')) {
		if (slash)
			*slash = '\0';
		if (lstat(abs, &st) < 0) {
			if (errno != ENOENT && errno != ENOTDIR) {
				dd_error_errno("cannot read %s", abs + base);
				goto out;
			}
			break; /* missing: committed as removed, or created by us */
		}
		if (S_ISLNK(st.st_mode)) {
			dd_error("cannot commit %s: %s is a symbolic link (git dnadata commits regular files only)", rel,
				 abs + base);
			dd_hint("replace %s with a regular file or directory, or remove it", abs + base);
			goto out;
		}
		if (!slash) {
			if (S_ISDIR(st.st_mode)) {
				dd_error("cannot commit %s: it is a directory", rel);
				goto out;
			}
			break;
		}
		*slash = '/';
	}
	rc = 0;
out:
	free(abs);
	return rc;
}

int
dd_commit_precheck(struct dd_repo *repo, const char *const *paths, size_t npaths)
{
	git_signature *a = NULL, *c = NULL;

	for (size_t i = 0; i < npaths; i++)
		if (check_path(paths[i]) < 0 || check_target(repo, paths[i]) < 0)
			return -1;
	if (dd_commit_check_conflicts(repo, paths, npaths) < 0 || check_state(repo) < 0)
		return -1;
	if (signatures(repo, &a, &c) < 0)
		return -1;
	git_signature_free(a);
	git_signature_free(c);
	return dd_lock_check_git(repo);
}

/* ---- one commit, from taking the locks to releasing them ---- */

/* What a file given with new contents held before we wrote it, to put it back. */
struct saved_file {
	int written; /* we replaced it (put back on failure) */
	int existed;
	mode_t mode;
	struct dd_buf old;
};

struct job {
	struct dd_repo *repo;
	const struct dd_commit_file *files;
	size_t n;
	const char **paths;
	struct saved_file *saved;
	git_signature *author, *committer;
	char *message;
	int commit_lock;   /* dd_lock_commits() */
	int index_lock;    /* fd of <index>.lock while we hold it, else -1 */
	char *index_path;  /* the repository's index file */
	char *lock_path;   /* <index>.lock */
	char *tmp_path;    /* the index we read and write: a copy made under the lock */
	git_index *index;  /* opened from tmp_path, set as the repository's */
	char *branch;      /* the ref HEAD's commits go to: refs/heads/<b>, or HEAD when detached */
	char *branch_lock; /* its lock file */
	git_oid head_id;   /* HEAD's commit the new one is built on (zero: unborn) */
	git_oid commit_id;
	int moved;         /* HEAD now points to commit_id */
	int signals_held;  /* hold_signals() blocked them */
};

/* The new contents of file i: given, or from its update callback (see commit.h). */
static int
new_contents(struct job *j, size_t i, const char *abs, struct dd_buf *made, const void **data, size_t *len)
{
	const struct dd_commit_file *f = &j->files[i];

	if (f->data) {
		*data = f->data, *len = f->len;
		return 0;
	}
	if (f->update(made, abs, f->arg) < 0)
		return -1;
	*data = dd_buf_cstr(made), *len = made->len;
	return 0;
}

/* Write the files given with contents (or an update), keeping what each held before. */
static int
write_files(struct job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		struct saved_file *s = &j->saved[i];
		struct dd_buf made = DD_BUF_INIT;
		const void *data;
		size_t len;
		char *abs, *dir;
		struct stat st;
		int rc = -1;

		if (!j->files[i].data && !j->files[i].update)
			continue;
		abs = dd_repo_path(j->repo, j->paths[i]);
		dir = dd_path_dirname(abs);
		s->existed = lstat(abs, &st) == 0;
		s->mode = s->existed ? st.st_mode & 07777 : 0644;
		if (s->existed && dd_file_read(&s->old, abs) < 0)
			goto next;
		s->written = 1; /* from here on, put back on failure (an update may write the file itself) */
		if (new_contents(j, i, abs, &made, &data, &len) == 0 && dd_mkdir_p(dir, 0777) == 0 &&
		    dd_file_write_atomic(abs, data, len, s->mode, 0) == 0)
			rc = 0;
next:
		dd_buf_release(&made);
		free(dir);
		free(abs);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Put back what write_files() replaced; a file we created is removed. */
static int
restore_files(struct job *j)
{
	int rc = 0;

	for (size_t i = 0; i < j->n; i++) {
		struct saved_file *s = &j->saved[i];
		char *abs;

		if (!s->written)
			continue;
		abs = dd_repo_path(j->repo, j->paths[i]);
		if (s->existed) {
			if (dd_file_write_atomic(abs, dd_buf_cstr(&s->old), s->old.len, s->mode, 0) < 0)
				rc = dd_error_wrap("cannot put %s back as it was", j->paths[i]);
		} else if (unlink(abs) < 0 && errno != ENOENT) {
			rc = dd_error_errno("cannot remove %s again", j->paths[i]);
		}
		s->written = 0;
		free(abs);
	}
	return rc;
}

/*
 * Copy the index with its timestamps: libgit2 (like git) trusts an entry's
 * size and mtime only if the entry is older than the index file, so the
 * copy must be exactly as old as the original, or entries that git still
 * has to look at ("racily clean") would be written back as trusted.
 */
static int
copy_index(const char *from, const char *to)
{
	struct dd_buf b = DD_BUF_INIT;
	struct stat st;
	int rc = -1;

	if (stat(from, &st) < 0) {
		dd_error_errno("cannot read %s", from);
		goto out;
	}
	if (dd_file_read(&b, from) < 0 ||
	    dd_file_write_atomic(to, dd_buf_cstr(&b), b.len, 0600, DD_WRITE_NO_DIRSYNC) < 0)
		goto out;
	if (utimensat(AT_FDCWD, to, (const struct timespec[2]){ st.st_atim, st.st_mtim }, 0) < 0) {
		dd_error_errno("cannot set the time of %s", to);
		goto out;
	}
	rc = 0;
out:
	dd_buf_release(&b);
	return rc;
}

/*
 * Take <index>.lock, then read the index as it is under the lock: a copy of
 * it, opened as the repository's index so that git_index_add_bypath() and
 * git_index_write() work on it (writing it goes to tmp_path, not the index).
 */
static int
lock_and_read_index(struct job *j)
{
	char *tmp_lock;

	if (dd_lock_index_path(j->repo, &j->index_path) < 0)
		return -1;
	j->lock_path = dd_asprintf("%s.lock", j->index_path);
	j->tmp_path = dd_asprintf("%s.dnadata", j->index_path);
	if (dd_lock_git_file_ours(j->repo, j->lock_path, "the git index", &j->index_lock) < 0)
		return -1;
	/* left by a process killed while it held the lock: ours now */
	tmp_lock = dd_asprintf("%s.lock", j->tmp_path);
	unlink(tmp_lock);
	free(tmp_lock);
	unlink(j->tmp_path);
	if (access(j->index_path, F_OK) == 0 && copy_index(j->index_path, j->tmp_path) < 0)
		return dd_error_wrap("cannot read the git index");
	if (git_index_open(&j->index, j->tmp_path) < 0)
		return dd_error_git("cannot read the git index");
	if (git_repository_set_index(j->repo->git, j->index) < 0 ||
	    git_index_set_caps(j->index, GIT_INDEX_CAPABILITY_FROM_OWNER) < 0)
		return dd_error_git("cannot use the git index");
	return check_conflicts_in(j->index, j->paths, j->n);
}

/* Index entries of our paths from the work tree (a missing file leaves the index). */
static int
stage_paths(struct job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		const char *p = j->paths[i];
		char *abs = dd_repo_path(j->repo, p);
		struct stat st;
		int exists = lstat(abs, &st) == 0, saved = errno, err;

		free(abs);
		if (!exists && saved != ENOENT && saved != ENOTDIR) {
			errno = saved;
			return dd_error_errno("cannot read %s", p);
		}
		if (exists && !S_ISREG(st.st_mode))
			return dd_error("cannot commit %s: it is not a regular file", p);
		err = exists ? git_index_add_bypath(j->index, p) : git_index_remove_bypath(j->index, p);
		if (err < 0) {
			dd_error_git(p);
			return dd_error_wrap("cannot %s the index", exists ? "add to" : "remove from");
		}
	}
	return 0;
}

/* HEAD as it is now: its commit (NULL when unborn) and the ref it moves. */
static int
read_head(struct job *j, git_commit **head)
{
	int err;

	*head = NULL;
	free(j->branch);
	free(j->branch_lock);
	if (dd_lock_head_ref(j->repo, &j->branch, &j->branch_lock) < 0)
		return -1;
	memset(&j->head_id, 0, sizeof(j->head_id));
	err = git_reference_name_to_id(&j->head_id, j->repo->git, j->branch);
	if (err == GIT_ENOTFOUND) {
		memset(&j->head_id, 0, sizeof(j->head_id));
		return 0; /* unborn: the root commit */
	}
	if (err < 0 || git_commit_lookup(head, j->repo->git, &j->head_id) < 0)
		return dd_error_git("cannot read the HEAD commit");
	return 0;
}

/* HEAD's tree with our paths as the index now has them; *same when nothing differs. */
static int
build_tree(struct job *j, git_commit *head, git_tree **tree, int *same)
{
	git_tree *base = NULL;
	git_tree_update *updates = dd_calloc(j->n ? j->n : 1, sizeof(*updates));
	git_oid tree_id;
	size_t nupdates = 0;
	int rc = -1;

	if (head && git_commit_tree(&base, head) < 0) {
		dd_error_git("cannot read the HEAD commit");
		goto out;
	}
	for (size_t i = 0; i < j->n; i++) {
		const git_index_entry *e = git_index_get_bypath(j->index, j->paths[i], 0);
		git_tree_entry *te = NULL;

		if (e && e->mode == GIT_FILEMODE_LINK) {
			dd_error("cannot commit %s: it is a symbolic link", j->paths[i]);
			goto out;
		}
		if (e) {
			updates[nupdates].action = GIT_TREE_UPDATE_UPSERT;
			git_oid_cpy(&updates[nupdates].id, &e->id);
			updates[nupdates].filemode = (git_filemode_t)e->mode;
			updates[nupdates++].path = j->paths[i];
		} else if (base && git_tree_entry_bypath(&te, base, j->paths[i]) == 0) {
			git_tree_entry_free(te);
			updates[nupdates].action = GIT_TREE_UPDATE_REMOVE;
			updates[nupdates++].path = j->paths[i];
		}
		git_error_clear();
	}
	if (git_tree_create_updated(&tree_id, j->repo->git, base, nupdates, updates) < 0 ||
	    git_tree_lookup(tree, j->repo->git, &tree_id) < 0) {
		dd_error_git("cannot build the commit's tree");
		goto out;
	}
	*same = base ? git_oid_equal(&tree_id, git_tree_id(base)) : git_tree_entrycount(*tree) == 0;
	rc = 0;
out:
	git_tree_free(base);
	free(updates);
	return rc;
}

/*
 * Move j->branch from j->head_id (zero: must not exist yet) to j->commit_id.
 * Returns 0, GIT_EMODIFIED when another writer moved it first, or -1.
 */
static int
move_head(struct job *j, int root)
{
	git_reference *ref = NULL;
	char *log = dd_asprintf("commit%s: %.*s", root ? " (initial)" : "", (int)strcspn(j->message, "\n"),
				j->message);
	char id[GIT_OID_HEXSZ + 1];
	int err, waits = 0;

	/* a lock a killed git-dnadata left as the ref moved goes, before our own note replaces its note */
	if (dd_lock_wait_free_ref(j->repo, j->branch_lock, j->branch) < 0) {
		free(log);
		return -1;
	}
	git_oid_tostr(id, sizeof(id), &j->commit_id);
	for (;;) {
		dd_lock_ref_moving(j->repo, j->branch_lock, id);
		err = git_reference_create_matching(&ref, j->repo->git, j->branch, &j->commit_id, 1, &j->head_id,
						    log);
		if (err != GIT_ELOCKED || waits++ >= MAX_ATTEMPTS ||
		    dd_lock_wait_free(j->repo, j->branch_lock, j->branch) < 0)
			break;
	}
	dd_lock_ref_moved(j->repo);
	git_reference_free(ref);
	free(log);
	if (err == GIT_EMODIFIED || err == GIT_EEXISTS || err == GIT_ENOTFOUND)
		return GIT_EMODIFIED;
	if (err == GIT_ELOCKED)
		return dd_lock_error(j->repo, j->branch_lock, j->branch);
	if (err < 0)
		return dd_error_git("cannot update HEAD");
	return 0;
}

/* One try: build on HEAD as it is now. DD_OK, DD_UNCHANGED, GIT_EMODIFIED (try again) or -1. */
static int
commit_once(struct job *j)
{
	git_commit *head = NULL;
	git_tree *tree = NULL;
	int same = 0, rc = -1;

	if (read_head(j, &head) < 0 || build_tree(j, head, &tree, &same) < 0)
		goto out;
	if (same) {
		rc = DD_UNCHANGED;
		goto out;
	}
	if (git_commit_create(&j->commit_id, j->repo->git, NULL, j->author, j->committer, NULL, j->message, tree,
			      head ? 1 : 0, (const git_commit **)&head) < 0) {
		dd_error_git("cannot create the commit");
		goto out;
	}
	rc = move_head(j, head == NULL);
	if (rc == 0)
		j->moved = 1;
out:
	git_tree_free(tree);
	git_commit_free(head);
	return rc;
}

static int
commit_on_head(struct job *j)
{
	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		int rc = commit_once(j);
		if (rc != GIT_EMODIFIED)
			return rc;
	}
	dd_error("%s kept moving while git dnadata committed (%d tries); nothing was committed", j->branch,
		 MAX_ATTEMPTS);
	dd_hint("run the command again once the other git process is done");
	return -1;
}

/* Put HEAD's ref back from our commit to where it was (it was unborn: delete it). */
static int
rollback_head(struct job *j)
{
	git_reference *ref = NULL;
	int err, ours = 1;

	if (!git_oid_is_zero(&j->head_id)) {
		err = git_reference_create_matching(&ref, j->repo->git, j->branch, &j->head_id, 1, &j->commit_id,
						    "dnadata: undo commit (index could not be written)");
	} else if ((err = git_reference_lookup(&ref, j->repo->git, j->branch)) == 0) {
		ours = git_reference_type(ref) == GIT_REFERENCE_DIRECT &&
		       git_oid_equal(git_reference_target(ref), &j->commit_id);
		if (ours)
			err = git_reference_delete(ref);
	}
	git_reference_free(ref);
	if (!ours)
		return dd_error("cannot move %s back: it no longer points to the new commit", j->branch);
	if (err < 0) {
		char *what = dd_asprintf("cannot move %s back", j->branch);
		dd_error_git(what);
		free(what);
		return -1;
	}
	j->moved = 0;
	return 0;
}

/*
 * Write the complete new index into <index>.lock before HEAD moves (as git
 * does): libgit2 writes it to tmp_path, which then replaces the lock file
 * (still ours: we created it and nobody else removes it). The new index
 * depends only on the index read under the lock and the work tree, not on
 * HEAD, so a commit built again on a moved HEAD uses the same file.
 */
static int
write_index_lock(struct job *j)
{
	if (git_index_write(j->index) < 0)
		return dd_error_git("cannot write the git index");
	dd_lock_ours_next(j->lock_path, j->tmp_path); /* still known as ours once it is the lock */
	if (rename(j->tmp_path, j->lock_path) < 0)
		return dd_error_errno("cannot write the git index %s", dd_repo_display_path(j->repo, j->lock_path));
	return 0;
}

/* Once HEAD moved: one rename puts the new index in place, releasing the lock. */
static int
install_index(struct job *j)
{
	if (rename(j->lock_path, j->index_path) < 0)
		return dd_error_errno("cannot write the git index %s", dd_repo_display_path(j->repo, j->index_path));
	close(j->index_lock);
	j->index_lock = -1;
	return 0;
}

/*
 * The index could not be put in place after HEAD moved: move HEAD back
 * ("commit undone", files then put back by the caller). If HEAD cannot be
 * moved back, say so, and keep the files as committed (*keep_files) so the
 * work tree matches HEAD; resetting our paths in the index finishes it.
 */
static int
undo_commit(struct job *j, int *keep_files)
{
	struct dd_error_saved why, back;
	struct dd_buf cmd = DD_BUF_INIT;
	char id[GIT_OID_HEXSZ + 1];

	if (!j->moved)
		return -1;
	dd_error_save(&why);
	if (rollback_head(j) == 0) {
		dd_error_restore(&why);
		return dd_error_wrap("commit undone");
	}
	*keep_files = 1;
	git_oid_tostr(id, sizeof(id), &j->commit_id);
	dd_error_save(&back);
	dd_error("%s moved to %s but the git index could not be written (%s), and %s", j->branch, id,
		 why.msg ? why.msg : "?", back.msg ? back.msg : "?");
	dd_error_saved_free(&why);
	dd_error_saved_free(&back);
	dd_buf_puts(&cmd, "git reset -q --");
	for (size_t i = 0; i < j->n; i++) {
		char *q = dd_repo_shell_quote(j->paths[i]);
		dd_buf_printf(&cmd, " %s", q);
		free(q);
	}
	dd_hint("the commit stays and the files are as committed; run %s in the work tree's top directory to make "
		"the index match it", dd_buf_cstr(&cmd));
	dd_buf_release(&cmd);
	return -1;
}

static void
release(struct job *j)
{
	char *tmp_lock;

	if (j->index) {
		git_repository_set_index(j->repo->git, NULL); /* the next reader opens the index file again */
		git_index_free(j->index);
	}
	if (j->tmp_path) {
		tmp_lock = dd_asprintf("%s.lock", j->tmp_path);
		unlink(tmp_lock);
		free(tmp_lock);
		unlink(j->tmp_path);
	}
	if (j->index_lock >= 0) {
		unlink(j->lock_path);
		close(j->index_lock);
	}
	if (j->lock_path)
		dd_lock_ours_release(j->lock_path);
	dd_unlock_commits(j->commit_lock);
	for (size_t i = 0; i < j->n; i++)
		dd_buf_release(&j->saved[i].old);
	free(j->saved);
	free(j->paths);
	free(j->message);
	free(j->index_path);
	free(j->lock_path);
	free(j->tmp_path);
	free(j->branch);
	free(j->branch_lock);
	git_signature_free(j->author);
	git_signature_free(j->committer);
}

/*
 * From taking index.lock until it is released, SIGINT, SIGTERM, SIGHUP and
 * SIGQUIT wait: a Ctrl-C then never leaves HEAD moved without its index,
 * files half put back, or a lock file behind. They are delivered once the
 * commit is done or undone (and end the command as they would have). The
 * waits in between are bounded (git's lock files: a second each).
 * *old receives the mask to restore.
 */
static void
hold_signals(struct job *j, sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	j->signals_held = pthread_sigmask(SIG_BLOCK, &set, old) == 0;
}

/* Everything that can refuse before anything is written or locked. */
static int
prepare(struct job *j)
{
	for (size_t i = 0; i < j->n; i++)
		if (check_path(j->paths[i]) < 0 || check_target(j->repo, j->paths[i]) < 0)
			return -1;
	if (check_state(j->repo) < 0 || signatures(j->repo, &j->author, &j->committer) < 0)
		return -1;
	return 0;
}

int
dd_commit_files(struct dd_repo *repo, const struct dd_commit_file *files, size_t nfiles, const char *what,
		char commit_out[41])
{
	struct job j = { .repo = repo, .files = files, .n = nfiles, .commit_lock = -1, .index_lock = -1 };
	sigset_t held;
	int rc = -1, keep_files = 0;

	if (commit_out)
		commit_out[0] = '\0';
	j.paths = dd_calloc(nfiles ? nfiles : 1, sizeof(*j.paths));
	j.saved = dd_calloc(nfiles ? nfiles : 1, sizeof(*j.saved));
	for (size_t i = 0; i < nfiles; i++)
		j.paths[i] = files[i].path;
	j.message = dd_asprintf("dnadata: %s\n", what);
	if (prepare(&j) < 0 || dd_lock_commits(repo, &j.commit_lock) < 0)
		goto out;
	hold_signals(&j, &held);
	if (lock_and_read_index(&j) < 0 || write_files(&j) < 0 || stage_paths(&j) < 0 || write_index_lock(&j) < 0)
		goto out;
	rc = commit_on_head(&j);
	if (rc < 0)
		goto out;
	if (install_index(&j) < 0) {
		rc = undo_commit(&j, &keep_files);
		goto out;
	}
	if (commit_out && rc == DD_OK)
		git_oid_tostr(commit_out, 41, &j.commit_id);
out:
	if (rc < 0 && !keep_files) {
		struct dd_error_saved e;
		dd_error_save(&e);
		if (restore_files(&j) < 0)
			dd_warn("%s", dd_error_last());
		dd_error_restore(&e);
	}
	release(&j);
	if (j.signals_held)
		pthread_sigmask(SIG_SETMASK, &held, NULL); /* a signal that came meanwhile is delivered now */
	return rc;
}

int
dd_commit_paths(struct dd_repo *repo, const char *const *paths, size_t npaths, const char *what,
		char commit_out[41])
{
	struct dd_commit_file *files = dd_calloc(npaths ? npaths : 1, sizeof(*files));
	int rc;

	for (size_t i = 0; i < npaths; i++)
		files[i].path = paths[i];
	rc = dd_commit_files(repo, files, npaths, what, commit_out);
	free(files);
	return rc;
}

int
dd_commit_ref(struct dd_repo *repo, const char *rel, const struct dd_ref *ref, const char *what)
{
	struct dd_buf text = DD_BUF_INIT;
	struct dd_commit_file f = { .path = rel };
	int rc;

	dd_ref_format(&text, ref);
	f.data = text.ptr, f.len = text.len;
	rc = dd_commit_files(repo, &f, 1, what, NULL);
	dd_buf_release(&text);
	return rc;
}
