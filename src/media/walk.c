/*
 * media/walk.c: the deterministic walk of a media folder (see internal.h).
 *
 * A stack of levels, one per directory on the current path; each level
 * holds its directory's descriptor and its names, read once and sorted
 * bytewise. Names are read when the directory is entered, so what a caller
 * adds to a directory while walking it (apply's temporary files, new
 * entries) is not seen, and what it removes is skipped quietly.
 */
#include "media/internal.h"
#include "util/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct level {
	int fd;
	char **names;
	size_t n, i;
	size_t pathlen; /* length of this directory's path prefix ("" or "a/b/") */
};

struct walk {
	struct level *lv;
	size_t nlv, cap;
	struct dd_buf path;
	int descend; /* the last entry was a directory to enter on the next call */
	dev_t dev;   /* the folder's file system: directories on another are not entered */
	int dev_known;
};

enum media_type
media_type_of(mode_t m)
{
	if (S_ISREG(m))
		return MEDIA_FILE;
	if (S_ISDIR(m))
		return MEDIA_DIR;
	if (S_ISLNK(m))
		return MEDIA_LINK;
	return MEDIA_OTHER;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read and sort the names of the directory `fd` (not closed). */
static int
read_names(int fd, const char *display, char ***names, size_t *n)
{
	size_t cap = 0;
	int dfd = dup(fd);
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	struct dirent *de;

	*names = NULL;
	*n = 0;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return dd_error_errno("cannot read media folder '%s'", display);
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 64;
			*names = dd_realloc(*names, cap * sizeof(**names));
		}
		(*names)[(*n)++] = dd_strdup(de->d_name);
		errno = 0;
	}
	if (errno) {
		int e = errno;
		closedir(d);
		errno = e;
		return dd_error_errno("cannot read media folder '%s'", display);
	}
	closedir(d);
	if (*n > 1) /* an empty folder has no list: qsort must not see NULL */
		qsort(*names, *n, sizeof(**names), cmp_names);
	return 0;
}

static void
level_release(struct level *l, int close_fd)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	if (close_fd && l->fd >= 0)
		close(l->fd);
}

static int
push_level(struct walk *w, int fd, size_t pathlen)
{
	struct level l = { .fd = fd, .pathlen = pathlen };
	const char *display = w->path.len ? dd_buf_cstr(&w->path) : ".";

	if (read_names(fd, display, &l.names, &l.n) < 0)
		return -1;
	if (w->nlv == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 8;
		w->lv = dd_realloc(w->lv, w->cap * sizeof(*w->lv));
	}
	w->lv[w->nlv++] = l;
	return 0;
}

struct walk *
walk_new(int rootfd)
{
	struct walk *w = dd_calloc(1, sizeof(*w));
	struct stat st;

	/* level 0 is the root, entered on the first call; its descriptor stays the caller's */
	w->cap = 8;
	w->lv = dd_calloc(w->cap, sizeof(*w->lv));
	w->lv[0].fd = rootfd;
	w->descend = 2;
	if (fstat(rootfd, &st) == 0) {
		w->dev = st.st_dev;
		w->dev_known = 1;
	}
	return w;
}

/* Enter the directory last returned (or the root on the first call). */
static int
enter(struct walk *w)
{
	struct level *top;
	const char *name;
	int fd;

	if (w->descend == 2) {
		w->descend = 0;
		return push_level(w, w->lv[0].fd, 0);
	}
	w->descend = 0;
	top = &w->lv[w->nlv - 1];
	name = top->names[top->i - 1];
	fd = openat(top->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return dd_error_errno("cannot open media folder '%s'", dd_buf_cstr(&w->path));
	dd_buf_putc(&w->path, '/');
	if (push_level(w, fd, w->path.len) < 0) {
		close(fd);
		return -1;
	}
	return 0;
}

int
walk_next(struct walk *w, struct walk_entry *e)
{
	if (w->descend && enter(w) < 0)
		return -1;
	while (w->nlv) {
		struct level *top = &w->lv[w->nlv - 1];
		if (top->i == top->n) {
			level_release(top, w->nlv > 1);
			w->nlv--;
			if (w->nlv) {
				/* back to the parent's prefix: drop "name/" */
				dd_buf_truncate(&w->path, w->lv[w->nlv - 1].pathlen);
			}
			continue;
		}
		const char *name = top->names[top->i++];
		dd_buf_truncate(&w->path, top->pathlen);
		dd_buf_puts(&w->path, name);
		if (fstatat(top->fd, name, &e->st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue; /* gone since the directory was read */
			return dd_error_errno("cannot read media entry '%s'", dd_buf_cstr(&w->path));
		}
		e->path = dd_buf_cstr(&w->path);
		e->name = name;
		e->parent_fd = top->fd;
		e->type = media_type_of(e->st.st_mode);
		e->other_dev = e->type == MEDIA_DIR && w->dev_known && e->st.st_dev != w->dev;
		w->descend = e->type == MEDIA_DIR && !e->other_dev;
		return 1;
	}
	return 0;
}

void
walk_skip(struct walk *w)
{
	w->descend = 0;
}

void
walk_free(struct walk *w)
{
	if (!w)
		return;
	while (w->nlv) {
		level_release(&w->lv[w->nlv - 1], w->nlv > 1);
		w->nlv--;
	}
	free(w->lv);
	dd_buf_release(&w->path);
	free(w);
}
