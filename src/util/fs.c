/* util/fs.c: atomic file writes and small filesystem helpers; see fs.h. */
#include "util/fs.h"
#include "util/err.h"
#include "util/log.h"
#include "util/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int
io_error(const char *what, const char *path)
{
	if (errno == ENOSPC || errno == EDQUOT)
		return dd_error("%s %s: disk full (free some space and run the command again)", what, path);
	return dd_error_errno("%s %s", what, path);
}

int
dd_fd_read(int fd, struct dd_buf *out, size_t max, const char *display)
{
	size_t start = out->len;
	int had_memory = out->ptr != NULL;

	for (;;) {
		dd_buf_grow(out, 65536);
		ssize_t n = read(fd, out->ptr + out->len, out->cap - out->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* a failed read leaves `out` as it was: callers that only release on success leak nothing */
			int saved = errno;
			if (had_memory)
				dd_buf_truncate(out, start);
			else
				dd_buf_release(out);
			errno = saved;
			return io_error("cannot read", display);
		}
		if (n == 0)
			return 0;
		out->len += (size_t)n;
		out->ptr[out->len] = '\0';
		if (max && out->len > max)
			return 0;
	}
}

int
dd_file_read(struct dd_buf *out, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return dd_error_errno("cannot read %s", path);
	rc = dd_fd_read(fd, out, 0, path);
	close(fd);
	return rc;
}

int
dd_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

char *
dd_path_join(const char *a, const char *b)
{
	size_t la = strlen(a);

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (*b == '/')
		b++;
	return dd_asprintf("%.*s/%s", (int)la, a, b);
}

char *
dd_path_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return dd_strdup(".");
	if (slash == path)
		return dd_strdup("/");
	return dd_strndup(path, (size_t)(slash - path));
}

int
dd_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return dd_error_errno("cannot open directory %s", dir);
	if (fsync(fd) < 0 && errno != EINVAL) {
		close(fd);
		return io_error("cannot sync directory", dir);
	}
	close(fd);
	return 0;
}

int
dd_atomic_open(struct dd_atomic_file *af, const char *path, mode_t mode, int flags)
{
	memset(af, 0, sizeof(*af));
	af->fd = -1;
	af->path = dd_strdup(path);
	af->tmp = dd_asprintf("%s.tmp-XXXXXX", path);
	af->mode = mode;
	af->flags = flags;
	af->fd = mkostemp(af->tmp, O_CLOEXEC);
	if (af->fd < 0) {
		io_error("cannot create", af->tmp);
		free(af->tmp), af->tmp = NULL;
		free(af->path), af->path = NULL;
		return -1;
	}
	if (fchmod(af->fd, mode) < 0) {
		dd_error_errno("cannot set mode of %s", af->tmp);
		dd_atomic_abort(af);
		return -1;
	}
	return 0;
}

int
dd_atomic_write(struct dd_atomic_file *af, const void *data, size_t len)
{
	if (dd_write_all(af->fd, data, len) < 0)
		return io_error("cannot write", af->tmp);
	return 0;
}

int
dd_atomic_commit(struct dd_atomic_file *af)
{
	int rc = -1, existed = 0;
	char *dir = NULL;

	if (!(af->flags & DD_WRITE_NO_FSYNC) && fsync(af->fd) < 0) {
		io_error("cannot sync", af->tmp);
		goto out;
	}
	if (close(af->fd) < 0) {
		af->fd = -1;
		io_error("cannot close", af->tmp);
		goto out;
	}
	af->fd = -1;
	if (af->flags & DD_WRITE_NOREPLACE) {
		if (link(af->tmp, af->path) < 0) {
			if (errno != EEXIST) {
				io_error("cannot create", af->path);
				goto out;
			}
			existed = 1;
		}
		unlink(af->tmp);
	} else if (rename(af->tmp, af->path) < 0) {
		io_error("cannot rename into place", af->path);
		goto out;
	}
	free(af->tmp), af->tmp = NULL;
	if (!(af->flags & DD_WRITE_NO_DIRSYNC)) {
		dir = dd_path_dirname(af->path);
		if (dd_fsync_dir(dir) < 0)
			goto out;
	}
	rc = existed ? DD_EXISTS : 0;
out:
	free(dir);
	dd_atomic_abort(af);
	return rc;
}

void
dd_atomic_abort(struct dd_atomic_file *af)
{
	if (af->fd >= 0)
		close(af->fd);
	af->fd = -1;
	if (af->tmp) {
		unlink(af->tmp);
		free(af->tmp);
		af->tmp = NULL;
	}
	free(af->path);
	af->path = NULL;
}

int
dd_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, int flags)
{
	struct dd_atomic_file af;

	if (dd_atomic_open(&af, path, mode, flags) < 0)
		return -1;
	if (dd_atomic_write(&af, data, len) < 0) {
		dd_atomic_abort(&af);
		return -1;
	}
	return dd_atomic_commit(&af);
}

int
dd_mkdir_p(const char *path, mode_t mode)
{
	char *p = dd_strdup(path);
	int rc = 0;

	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			rc = io_error("cannot create directory", p);
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	if (rc == 0 && !dd_is_dir(path))
		rc = dd_error("%s exists and is not a directory", path);
	free(p);
	return rc;
}

int
dd_path_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int
dd_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int
dd_rm_rf(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : dd_error_errno("cannot remove %s", path);
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) < 0 && errno != ENOENT)
			return dd_error_errno("cannot remove %s", path);
		return 0;
	}
	if (!(d = opendir(path)))
		return dd_error_errno("cannot open directory %s", path);
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *child = dd_path_join(path, e->d_name);
		if (dd_rm_rf(child) < 0)
			rc = -1;
		free(child);
	}
	closedir(d);
	if (rc == 0 && rmdir(path) < 0)
		rc = dd_error_errno("cannot remove directory %s", path);
	return rc;
}

/* ---- locks between our own processes, and their holder records (fs.h) ---- */

static char lock_command[DD_LOCK_COMMAND_MAX + 1] = "git dnadata";
static int lock_no_wait;
static struct dd_lock_record lock_warned; /* the dead holder last said to have left a lock */

void
dd_lock_set_command(const char *command)
{
	size_t n = 0;

	/* printable ASCII only: the record is one line, and it is shown on terminals */
	for (; command[n] && n < DD_LOCK_COMMAND_MAX; n++)
		lock_command[n] = command[n] >= 0x20 && command[n] < 0x7f ? command[n] : '?';
	lock_command[n] = '\0';
}

const char *
dd_lock_command(void)
{
	return lock_command;
}

void
dd_lock_never_wait(void)
{
	lock_no_wait = 1;
}

/* A decimal number of at most `max` at *p (advanced past it): 0, or -1. */
static int
record_number(const char **p, const char *end, long long max, long long *out)
{
	const char *s = *p;
	long long v = 0;

	if (s == end || *s < '0' || *s > '9')
		return -1;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v > (max - (*s - '0')) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	*p = s;
	return 0;
}

static int
record_parse(struct dd_lock_record *r, const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	long long pid;
	size_t n = 0;

	if (record_number(&p, end, INT_MAX, &pid) < 0 || pid < 1 || p == end || *p++ != ' ' ||
	    record_number(&p, end, LLONG_MAX, &r->started) < 0 || p == end || *p++ != ' ' ||
	    record_number(&p, end, LLONG_MAX, &r->since) < 0 || p == end || *p++ != ' ')
		return -1;
	for (; p < end && *p != '\n'; p++) {
		if (*p < 0x20 || *p >= 0x7f || n == DD_LOCK_COMMAND_MAX)
			return -1;
		r->command[n++] = *p;
	}
	if (n == 0 || p == end || p + 1 != end)
		return -1; /* no command, no final newline, or more after it */
	r->command[n] = '\0';
	r->pid = (long)pid;
	return 0;
}

int
dd_lock_record_parse(struct dd_lock_record *r, const char *text, size_t len)
{
	memset(r, 0, sizeof(*r));
	if (len == 0)
		return DD_NOTFOUND;
	if (record_parse(r, text, len) < 0) {
		memset(r, 0, sizeof(*r)); /* nothing half parsed is left */
		return -1;
	}
	return 0;
}

void
dd_lock_record_format(struct dd_buf *out, const struct dd_lock_record *r)
{
	dd_buf_printf(out, "%ld %lld %lld %s\n", r->pid, r->started, r->since, r->command);
}

/* The record lock file `fd` holds: 0, DD_NOTFOUND (empty) or -1 (unreadable or malformed; no error recorded). */
static int
record_read(int fd, struct dd_lock_record *r)
{
	char buf[2 * DD_LOCK_COMMAND_MAX];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);

	if (n < 0 || (size_t)n == sizeof(buf))
		return -1;
	return dd_lock_record_parse(r, buf, (size_t)n);
}

/* "pid 123, git dnadata snapshot, since 08:01:02" */
static char *
record_describe(const struct dd_lock_record *r)
{
	time_t t = (time_t)r->since;
	char when[16] = "?";
	struct tm tm;

	if (localtime_r(&t, &tm))
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
	return dd_asprintf("pid %ld, %s, since %s", r->pid, r->command, when);
}

/* The live holder the record of `fd` names, described; NULL if none. */
static char *
holder_of(int fd)
{
	struct dd_lock_record r;

	if (record_read(fd, &r) != 0 || !dd_proc_alive(r.pid, r.started))
		return NULL;
	return record_describe(&r);
}

char *
dd_lock_file_holder(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char *who;

	if (fd < 0)
		return NULL;
	who = holder_of(fd);
	close(fd);
	return who;
}

/*
 * We hold the lock on `fd`: a record still there was left by a holder that
 * died holding it (a release empties it): say so, then record ourselves.
 * Best effort (a full disk may refuse the record): the flock is the lock.
 */
static void
record_take(int fd, const char *path)
{
	struct dd_lock_record r;
	struct dd_buf line = DD_BUF_INIT;

	if (record_read(fd, &r) == 0 && r.pid != (long)getpid() && !dd_proc_alive(r.pid, r.started) &&
	    (r.pid != lock_warned.pid || r.started != lock_warned.started)) {
		char *who = record_describe(&r);
		dd_warn("taking over lock %s left by %s, which is no longer running", path, who);
		free(who);
		lock_warned = r; /* its other locks (profile, then database) are taken over without another line */
	}
	memset(&r, 0, sizeof(r));
	r.pid = (long)getpid();
	r.started = dd_proc_start_time(r.pid);
	r.since = (long long)time(NULL);
	if (r.started < 0)
		r.started = 0;
	memcpy(r.command, lock_command, sizeof(r.command));
	dd_lock_record_format(&line, &r);
	if (ftruncate(fd, 0) == 0 && pwrite(fd, line.ptr, line.len, 0) < 0) {
		/* nothing to do: a waiter then names no holder */
	}
	dd_buf_release(&line);
}

/* Open (creating it and its folder) the lock file `path` and try to take it without waiting: 0 taken (and
 * recorded), 1 held by another process (*fd open), -1 error (error set, *fd -1). */
static int
lock_open_try(const char *path, int *fd)
{
	char *dir = dd_path_dirname(path);
	int rc = -1;

	*fd = -1;
	if (dd_mkdir_p(dir, 0700) < 0)
		goto out;
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*fd < 0) {
		dd_error_errno("cannot open the lock %s", path);
		goto out;
	}
	if (flock(*fd, LOCK_EX | LOCK_NB) == 0) {
		record_take(*fd, path);
		rc = 0;
	} else if (errno == EWOULDBLOCK) {
		rc = 1;
	} else {
		dd_error_errno("cannot lock %s", path);
	}
out:
	if (rc < 0 && *fd >= 0) {
		close(*fd); /* not held: its record is not ours to empty */
		*fd = -1;
	}
	free(dir);
	return rc;
}

/* Another process holds lock `fd` (`path`): close it, record DD_EBUSY's error naming the holder. */
static int
lock_busy(const char *path, int *fd)
{
	char *who = holder_of(*fd);

	close(*fd);
	*fd = -1;
	if (who)
		dd_error("another process holds the lock %s (%s)", path, who);
	else
		dd_error("another process holds the lock %s", path);
	free(who);
	return DD_EBUSY;
}

int
dd_lock_file(const char *path, const char *busy, int *fd)
{
	int rc = lock_open_try(path, fd);

	if (rc != 1)
		return rc;
	if (lock_no_wait)
		return lock_busy(path, fd);
	if (busy) {
		char *who = holder_of(*fd);
		if (who)
			dd_info("%s (held by %s)", busy, who);
		else
			dd_info("%s", busy);
		free(who);
	}
	while ((rc = flock(*fd, LOCK_EX)) < 0 && errno == EINTR)
		;
	if (rc < 0) {
		dd_error_errno("cannot lock %s", path);
		close(*fd);
		*fd = -1;
		return -1;
	}
	record_take(*fd, path);
	return 0;
}

int
dd_lock_file_try(const char *path, int *fd)
{
	int rc = lock_open_try(path, fd);

	if (rc != 1)
		return rc;
	return lock_busy(path, fd);
}

void
dd_unlock_file(int fd)
{
	if (fd < 0)
		return;
	/* emptied first: a record the next holder finds was left by a process that died holding the lock */
	if (ftruncate(fd, 0) < 0) {
		/* nothing to do: the next holder may then warn of a holder that is gone */
	}
	close(fd); /* closing the only descriptor releases the flock */
}
