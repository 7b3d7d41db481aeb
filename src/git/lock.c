/* git/lock.c: the commit lock and git's lock files; see lock.h. */
#include "git/lock.h"
#include "git/repo.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How long a git lock file held by another process is waited for. */
#define GIT_LOCK_WAIT_MS 1000

int
dd_lock_commits(const struct dd_repo *repo, int *fd)
{
	const char *dir = git_repository_commondir(repo->git);

	*fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return dd_error_errno("cannot open %s", dir);
	while (flock(*fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		dd_error_errno("cannot lock %s against other git dnadata commits", dir);
		close(*fd);
		*fd = -1;
		return -1;
	}
	return 0;
}

void
dd_unlock_commits(int fd)
{
	if (fd >= 0)
		close(fd);
}

int
dd_lock_error(const struct dd_repo *repo, const char *path, const char *what)
{
	/* the hint's path is absolute: it works from any directory the command ran in */
	char *quoted = dd_repo_shell_quote(path);

	dd_error("%s is locked by another git process (%s exists)", what, dd_repo_display_path(repo, path));
	dd_hint("if no git process is running, the lock is stale: remove it with rm %s and run the command again",
		quoted);
	free(quoted);
	return -1;
}

static long
elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* Sleep a little longer each time (1, 2, 4 … 64 ms); 0 once GIT_LOCK_WAIT_MS have passed. */
static int
backoff(const struct timespec *start, unsigned *step)
{
	struct timespec d;
	long ms = 1L << (*step < 6 ? *step : 6);

	if (elapsed_ms(start) >= GIT_LOCK_WAIT_MS)
		return 0;
	(*step)++;
	d.tv_sec = 0;
	d.tv_nsec = ms * 1000000L;
	nanosleep(&d, NULL);
	return 1;
}

int
dd_lock_git_file(const struct dd_repo *repo, const char *path, const char *what, int *fd)
{
	struct timespec start;
	unsigned step = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		*fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (*fd >= 0)
			return 0;
		if (errno != EEXIST)
			return dd_error_errno("cannot create %s", dd_repo_display_path(repo, path));
		if (!backoff(&start, &step))
			return dd_lock_error(repo, path, what);
	}
}

/* <path>.dnadata (k = 0) or <path>.dnadata2 (k = 1): the other names of our lock file. Caller frees. */
static char *
own_name(const char *path, int k)
{
	return dd_asprintf("%s.dnadata%s", path, k ? "2" : "");
}

static int
same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Our lock at `path`, left by a killed git-dnadata process, is removed; its other names go either way. */
static void
drop_stale_own(const struct dd_repo *repo, const char *path)
{
	for (int k = 0; k < 2; k++) {
		char *own = own_name(path, k);
		if (same_file(path, own) && unlink(path) == 0)
			dd_warn("removed %s, left by a git dnadata process killed while it committed",
				dd_repo_display_path(repo, path));
		free(own);
	}
	dd_lock_ours_release(path);
}

int
dd_lock_git_file_ours(const struct dd_repo *repo, const char *path, const char *what, int *fd)
{
	char *own = own_name(path, 0);
	struct timespec start;
	unsigned step = 0;
	int rc = -1;

	drop_stale_own(repo, path);
	*fd = open(own, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (*fd < 0) {
		dd_error_errno("cannot create %s", dd_repo_display_path(repo, own));
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (link(own, path) < 0) {
		if (errno != EEXIST) { /* no hard links here: a lock file as git makes it */
			close(*fd);
			unlink(own);
			rc = dd_lock_git_file(repo, path, what, fd);
			goto out;
		}
		if (!backoff(&start, &step)) {
			close(*fd);
			*fd = -1;
			unlink(own);
			dd_lock_error(repo, path, what);
			goto out;
		}
	}
	rc = 0;
out:
	free(own);
	return rc;
}

void
dd_lock_ours_next(const char *path, const char *next)
{
	char *own = own_name(path, 1);

	unlink(own);
	if (link(next, own) < 0)
		unlink(own);
	free(own);
}

void
dd_lock_ours_release(const char *path)
{
	for (int k = 0; k < 2; k++) {
		char *own = own_name(path, k);
		unlink(own);
		free(own);
	}
}

int
dd_lock_wait_free(const struct dd_repo *repo, const char *path, const char *what)
{
	struct timespec start;
	unsigned step = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (access(path, F_OK) == 0)
		if (!backoff(&start, &step))
			return dd_lock_error(repo, path, what);
	return 0;
}

/*
 * A ref lock of ours is made microseconds after the note; one made more
 * than this after it is not (lock.h).
 */
#define REF_NOTE_WINDOW_NS (5 * 1000000000LL)

/* The note of a ref about to move (lock.h). Caller frees. */
static char *
ref_note_path(const struct dd_repo *repo)
{
	return dd_asprintf("%sdnadata-ref-move", git_repository_commondir(repo->git));
}

void
dd_lock_ref_moving(const struct dd_repo *repo, const char *path, const char *id)
{
	char *note = ref_note_path(repo), *text = dd_asprintf("%s\n%s\n", path, id);

	/* no fsync: a note lost in a power cut only means the lock is reported, not removed */
	if (dd_file_write_atomic(note, text, strlen(text), 0644, DD_WRITE_NO_FSYNC | DD_WRITE_NO_DIRSYNC) < 0)
		dd_error_clear();
	free(text);
	free(note);
}

void
dd_lock_ref_moved(const struct dd_repo *repo)
{
	char *note = ref_note_path(repo);

	unlink(note);
	free(note);
}

/*
 * The ref lock `path` was left by a git-dnadata process killed while the ref
 * moved (lock.h): the note names it, it was made within REF_NOTE_WINDOW_NS
 * after the note, and it holds nothing or the note's commit id.
 */
static int
stale_own_ref_lock(const char *note, const char *path)
{
	struct dd_buf text = DD_BUF_INIT, lock = DD_BUF_INIT;
	struct stat sn, sl;
	const char *nl, *id;
	int64_t after;
	int ours = 0;

	if (stat(note, &sn) < 0 || stat(path, &sl) < 0 || !S_ISREG(sl.st_mode) || sl.st_size > 128 ||
	    dd_file_read(&text, note) < 0 || dd_file_read(&lock, path) < 0)
		goto out;
	nl = memchr(text.ptr, '\n', text.len);
	if (!nl || (size_t)(nl - text.ptr) != strlen(path) || memcmp(text.ptr, path, strlen(path)) != 0)
		goto out;
	id = nl + 1; /* "<id>\n", as libgit2 writes a loose ref */
	/* made by the note's writer right after it: not before it, nor later (git's own lock of a later command) */
	after = (int64_t)(sl.st_mtim.tv_sec - sn.st_mtim.tv_sec) * 1000000000 + (sl.st_mtim.tv_nsec - sn.st_mtim.tv_nsec);
	if (after < 0 || after > REF_NOTE_WINDOW_NS)
		goto out;
	ours = lock.len == 0 ||
	       (lock.len == text.len - (size_t)(id - text.ptr) && memcmp(lock.ptr, id, lock.len) == 0);
out:
	dd_error_clear();
	dd_buf_release(&text);
	dd_buf_release(&lock);
	return ours;
}

/* The note goes if it names lock `path` (another worktree's HEAD.lock stays known until that worktree's turn). */
static void
drop_note_of(const char *note, const char *path)
{
	struct dd_buf text = DD_BUF_INIT;
	size_t n = strlen(path);

	if (dd_file_read(&text, note) == 0 && text.len > n && text.ptr[n] == '\n' && !memcmp(text.ptr, path, n))
		unlink(note);
	dd_error_clear();
	dd_buf_release(&text);
}

int
dd_lock_wait_free_ref(const struct dd_repo *repo, const char *path, const char *what)
{
	char *note = ref_note_path(repo);
	struct timespec start;
	unsigned step = 0;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (access(path, F_OK) == 0) {
		if (backoff(&start, &step))
			continue;
		if (stale_own_ref_lock(note, path) && unlink(path) == 0) {
			dd_warn("removed %s, left by a git dnadata process killed while it moved %s",
				dd_repo_display_path(repo, path), what);
			break;
		}
		rc = dd_lock_error(repo, path, what);
		break;
	}
	if (rc == 0)
		drop_note_of(note, path); /* no one moves a ref now: we hold the commit lock */
	free(note);
	return rc;
}

int
dd_lock_head_ref(const struct dd_repo *repo, char **name, char **lock_path)
{
	git_reference *head = NULL;
	int rc = -1;

	*name = *lock_path = NULL;
	if (git_reference_lookup(&head, repo->git, "HEAD") < 0) {
		dd_error_git("cannot read HEAD");
		goto out;
	}
	if (git_reference_type(head) == GIT_REFERENCE_SYMBOLIC) {
		*name = dd_strdup(git_reference_symbolic_target(head));
		*lock_path = dd_asprintf("%s%s.lock", git_repository_commondir(repo->git), *name);
	} else {
		*name = dd_strdup("HEAD");
		*lock_path = dd_asprintf("%sHEAD.lock", git_repository_path(repo->git));
	}
	rc = 0;
out:
	git_reference_free(head);
	return rc;
}

int
dd_lock_index_path(const struct dd_repo *repo, char **path)
{
	git_index *index = NULL;
	const char *p;

	*path = NULL;
	if (git_repository_index(&index, repo->git) < 0)
		return dd_error_git("cannot open the git index");
	if (!(p = git_index_path(index))) {
		git_index_free(index);
		return dd_error("the repository has no index file");
	}
	*path = dd_strdup(p);
	git_index_free(index);
	return 0;
}

int
dd_lock_check_git(const struct dd_repo *repo)
{
	char *index = NULL, *index_lock = NULL, *ref = NULL, *ref_lock = NULL;
	int fd = -1, rc = -1;

	/* Hold the commit lock, so a lock file seen now is not one of ours. */
	if (dd_lock_commits(repo, &fd) < 0)
		goto out;
	if (dd_lock_index_path(repo, &index) < 0 || dd_lock_head_ref(repo, &ref, &ref_lock) < 0)
		goto out;
	index_lock = dd_asprintf("%s.lock", index);
	drop_stale_own(repo, index_lock);
	if (dd_lock_wait_free(repo, index_lock, "the git index") < 0 || dd_lock_wait_free_ref(repo, ref_lock, ref) < 0)
		goto out;
	rc = 0;
out:
	dd_unlock_commits(fd);
	free(index);
	free(index_lock);
	free(ref);
	free(ref_lock);
	return rc;
}
