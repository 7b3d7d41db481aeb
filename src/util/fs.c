/* util/fs.c: atomic file writes and small filesystem helpers; see fs.h. */
#include "util/fs.h"
#include "util/err.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
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

/* Open (creating it and its folder) the lock file `path` and try to take it without waiting: 0 taken, 1 held by
 * another process (*fd open), -1 error (error set, *fd -1). */
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
	if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
		rc = 0;
	else if (errno == EWOULDBLOCK)
		rc = 1;
	else
		dd_error_errno("cannot lock %s", path);
out:
	if (rc < 0) {
		dd_unlock_file(*fd);
		*fd = -1;
	}
	free(dir);
	return rc;
}

int
dd_lock_file(const char *path, const char *busy, int *fd)
{
	int rc = lock_open_try(path, fd);

	if (rc != 1)
		return rc;
	if (busy)
		dd_info("%s", busy);
	while ((rc = flock(*fd, LOCK_EX)) < 0 && errno == EINTR)
		;
	if (rc < 0) {
		dd_error_errno("cannot lock %s", path);
		dd_unlock_file(*fd);
		*fd = -1;
	}
	return rc;
}

int
dd_lock_file_try(const char *path, int *fd)
{
	int rc = lock_open_try(path, fd);

	if (rc != 1)
		return rc;
	dd_unlock_file(*fd);
	*fd = -1;
	dd_error("another process holds the lock %s", path);
	return DD_EBUSY;
}

void
dd_unlock_file(int fd)
{
	if (fd >= 0)
		close(fd); /* closing the only descriptor releases the flock */
}
