/*
 * store/backend-file.c: a store (or the local cache) in a local folder;
 * see backend.h and docs/FORMAT.md §3.1.
 *
 * Every put is create-only and atomic: temp file, fsync, link() to the
 * final name (EEXIST means someone stored the same object: fine). Directory
 * fsyncs are deferred to sync(), which the snapshot writer calls before it
 * writes the manifest, so one fsync per directory covers a whole snapshot
 * while keeping the order objects -> manifest durable. An object found
 * already there (EEXIST, or sync_later() after exists()) may be another
 * process's write whose directory entry is not durable yet: its directory
 * joins the same batch. put_file() hard-links a file of another folder on
 * the same filesystem (cache -> store), falling back to a copy. Objects are
 * made read-only (0444). A fan-out directory removed behind our back is
 * made again, but never the store's own folder: a store that is not there
 * (an unmounted disk) fails the put instead of growing a new one.
 * put_unsynced() skips the fsyncs: the cache's copies of fetched objects.
 *
 * get_range() keeps the last OPEN_MAX files it read open (least recently
 * used goes first; pread on a shared descriptor is thread-safe): a restore
 * reads thousands of objects out of a few dozen packs, and each read would
 * otherwise be a path lookup, an open and a close. Names are content
 * addresses (a pack's name is its bytes' hash), so an open file deleted or
 * replaced behind our back still holds its name's bytes; del() and the puts
 * close the name's descriptor (once no reader uses it), and forget() lets a
 * reader that found the bytes damaged have the next read open the name
 * again.
 */
#include "store/backend.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE (512u << 20)
#define OPEN_MAX 16

/* A file get_range() keeps open; `name` NULL: a free slot. */
struct open_file {
	char *name;
	int fd;
	unsigned users; /* readers using fd now: it is closed when the last one is done */
	int dropped;    /* out of the table's lookups: closed by the last user */
	uint64_t used;  /* when last taken (the table's clock) */
};

struct file_backend {
	struct dd_backend base;
	char *root;
	pthread_mutex_t mu;
	char **dirty; /* directories with entries not yet fsynced */
	size_t ndirty;
	pthread_mutex_t fdmu; /* open[], clock */
	struct open_file open[OPEN_MAX];
	uint64_t clock;
};

static char *
path_of(struct file_backend *fb, const char *name)
{
	return dd_path_join(fb->root, name);
}

static char *
fb_local_path(struct dd_backend *be, const char *name)
{
	return path_of((struct file_backend *)be, name);
}

static void
mark_dirty(struct file_backend *fb, const char *path)
{
	char *dir = dd_path_dirname(path);

	pthread_mutex_lock(&fb->mu);
	for (size_t i = 0; i < fb->ndirty; i++) {
		if (!strcmp(fb->dirty[i], dir)) {
			free(dir);
			dir = NULL;
			break;
		}
	}
	if (dir) {
		fb->dirty = dd_realloc(fb->dirty, (fb->ndirty + 1) * sizeof(*fb->dirty));
		fb->dirty[fb->ndirty++] = dir;
	}
	pthread_mutex_unlock(&fb->mu);
}

static int
fb_get(struct dd_backend *be, const char *name, struct dd_buf *out)
{
	struct file_backend *fb = (struct file_backend *)be;
	char *path = path_of(fb, name);
	struct stat st;
	int fd, rc = -1;

	dd_buf_clear(out);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT ? DD_NOTFOUND : dd_error_errno("cannot read %s", path);
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_FILE) {
		dd_error("%s is not a regular file of a sane size", path);
		goto out;
	}
	dd_buf_grow(out, (size_t)st.st_size);
	while (out->len < (size_t)st.st_size) {
		ssize_t n = read(fd, out->ptr + out->len, (size_t)st.st_size - out->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			dd_error_errno("cannot read %s", path);
			goto out;
		}
		if (n == 0)
			break; /* shrank under us: the caller sees a short object */
		out->len += (size_t)n;
	}
	out->ptr[out->len] = '\0';
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

/*
 * A fan-out directory (data/ab, packs/ab) or its parent (packs/ in a store
 * made before packs) is missing: make it again, but only inside a store
 * folder that is there (an unmounted disk must fail the put).
 */
static int
remake_dir(struct file_backend *fb, const char *path)
{
	char *dir = dd_path_dirname(path);
	int rc = -1;

	if (dd_is_dir(fb->root) && dd_mkdir_p(dir, 0755) == 0)
		rc = 0;
	dd_error_clear();
	free(dir);
	return rc;
}

/* Slot `o` leaves the table: closed now, or by its last user. Under fdmu. */
static void
open_drop(struct open_file *o)
{
	if (o->users) {
		o->dropped = 1;
		return;
	}
	close(o->fd);
	free(o->name);
	memset(o, 0, sizeof(*o));
	o->fd = -1;
}

/* The open file `name` from the table (its slot in *slot, a user more), or -1 when not there. */
static int
open_take(struct file_backend *fb, const char *name, int *slot)
{
	int fd = -1;

	pthread_mutex_lock(&fb->fdmu);
	for (int i = 0; i < OPEN_MAX; i++) {
		struct open_file *o = &fb->open[i];
		if (o->name && !o->dropped && !strcmp(o->name, name)) {
			o->users++;
			o->used = ++fb->clock;
			*slot = i, fd = o->fd;
			break;
		}
	}
	pthread_mutex_unlock(&fb->fdmu);
	return fd;
}

/*
 * Put `fd`, just opened as `name`, into the table (a user more: *slot),
 * taking the place of the least recently used file no reader uses; *slot
 * -1 when every slot is in use (the caller closes fd itself).
 */
static void
open_put(struct file_backend *fb, const char *name, int fd, int *slot)
{
	int best = -1;

	*slot = -1;
	pthread_mutex_lock(&fb->fdmu);
	for (int i = 0; i < OPEN_MAX; i++) {
		struct open_file *o = &fb->open[i];
		if (!o->name) {
			best = i;
			break;
		}
		if (!o->users && (best < 0 || o->used < fb->open[best].used))
			best = i;
	}
	if (best >= 0) {
		struct open_file *o = &fb->open[best];
		if (o->name)
			open_drop(o);
		o->name = dd_strdup(name);
		o->fd = fd;
		o->users = 1;
		o->used = ++fb->clock;
		*slot = best;
	}
	pthread_mutex_unlock(&fb->fdmu);
}

/* A reader is done with the descriptor of slot `slot` (-1: an fd of its own, closed). */
static void
open_release(struct file_backend *fb, int slot, int fd)
{
	if (slot < 0) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&fb->fdmu);
	struct open_file *o = &fb->open[slot];
	o->users--;
	if (o->dropped && !o->users) {
		o->dropped = 0;
		open_drop(o);
	}
	pthread_mutex_unlock(&fb->fdmu);
}

/* The table forgets `name`: its next read opens the name again. */
static void
fb_forget(struct dd_backend *be, const char *name)
{
	struct file_backend *fb = (struct file_backend *)be;

	pthread_mutex_lock(&fb->fdmu);
	for (int i = 0; i < OPEN_MAX; i++)
		if (fb->open[i].name && !fb->open[i].dropped && !strcmp(fb->open[i].name, name))
			open_drop(&fb->open[i]);
	pthread_mutex_unlock(&fb->fdmu);
}

/* Read-ahead of a range about to be read (the op's comment in backend.h); errors are ignored: a hint. */
static void
fb_advise(struct dd_backend *be, const char *name, uint64_t off, size_t len)
{
	struct file_backend *fb = (struct file_backend *)be;
	int slot = -1, fd = open_take(fb, name, &slot);

	if (fd < 0) {
		char *path = path_of(fb, name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		free(path);
		if (fd < 0)
			return;
		open_put(fb, name, fd, &slot);
	}
	(void)posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
	open_release(fb, slot, fd);
}

static int
fb_get_range(struct dd_backend *be, const char *name, uint64_t off, size_t len, struct dd_buf *out)
{
	struct file_backend *fb = (struct file_backend *)be;
	char *path = path_of(fb, name);
	size_t got = 0;
	int fd, slot = -1, rc = -1;

	dd_buf_clear(out);
	if ((fd = open_take(fb, name, &slot)) < 0) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = errno == ENOENT ? DD_NOTFOUND : dd_error_errno("cannot read %s", path);
			goto out;
		}
		open_put(fb, name, fd, &slot);
	}
	if (len > MAX_FILE) {
		dd_error("a read of %zu bytes of %s is larger than allowed", len, path);
		goto out;
	}
	dd_buf_grow(out, len);
	while (got < len) {
		ssize_t n = pread(fd, out->ptr + got, len - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			dd_error_errno("cannot read %s", path);
			goto out;
		}
		if (n == 0) {
			dd_error("%s is damaged (truncated: shorter than %llu bytes)", path,
				 (unsigned long long)(off + len));
			goto out;
		}
		got += (size_t)n;
	}
	out->len = len;
	out->ptr[out->len] = '\0';
	rc = 0;
out:
	if (fd >= 0)
		open_release(fb, slot, fd);
	free(path);
	return rc;
}

static int
fb_put(struct dd_backend *be, const char *name, const void *data, size_t len)
{
	struct file_backend *fb = (struct file_backend *)be;
	char *path = path_of(fb, name);
	int rc = dd_file_write_atomic(path, data, len, 0444, DD_WRITE_NOREPLACE | DD_WRITE_NO_DIRSYNC);

	if (rc == -1 && errno == ENOENT && remake_dir(fb, path) == 0)
		rc = dd_file_write_atomic(path, data, len, 0444, DD_WRITE_NOREPLACE | DD_WRITE_NO_DIRSYNC);
	if (rc >= 0) /* DD_EXISTS: already there, perhaps not durable yet */
		mark_dirty(fb, path);
	free(path);
	return rc;
}

static int
fb_put_unsynced(struct dd_backend *be, const char *name, const void *data, size_t len)
{
	struct file_backend *fb = (struct file_backend *)be;
	char *path = path_of(fb, name);
	int flags = DD_WRITE_NOREPLACE | DD_WRITE_NO_DIRSYNC | DD_WRITE_NO_FSYNC;
	int rc = dd_file_write_atomic(path, data, len, 0444, flags);

	if (rc == -1 && errno == ENOENT && remake_dir(fb, path) == 0)
		rc = dd_file_write_atomic(path, data, len, 0444, flags);
	free(path);
	return rc;
}

static int
fb_put_file(struct dd_backend *be, const char *name, const char *localpath)
{
	struct file_backend *fb = (struct file_backend *)be;
	char *path = path_of(fb, name);
	struct dd_buf data = DD_BUF_INIT;
	int rc, r;

	r = link(localpath, path);
	if (r < 0 && errno == ENOENT && dd_path_exists(localpath) && remake_dir(fb, path) == 0)
		r = link(localpath, path);
	if (r == 0) {
		fb_forget(be, name); /* a file of that name deleted meanwhile may be open */
		mark_dirty(fb, path);
		rc = 0;
	} else if (errno == EEXIST) {
		mark_dirty(fb, path); /* perhaps not durable yet */
		rc = DD_EXISTS;
	} else if (dd_file_read(&data, localpath) < 0) {
		rc = -1;
	} else {
		rc = fb_put(be, name, data.ptr, data.len);
	}
	dd_buf_release(&data);
	free(path);
	return rc;
}

static int
fb_exists(struct dd_backend *be, const char *name)
{
	char *path = path_of((struct file_backend *)be, name);
	struct stat st;
	int rc;

	if (stat(path, &st) == 0)
		rc = 1;
	else if (errno == ENOENT)
		rc = 0;
	else
		rc = dd_error_errno("cannot stat %s", path);
	free(path);
	return rc;
}

static int
is_temp(const char *n)
{
	return n[0] == '.' || strstr(n, ".tmp-") != NULL;
}

struct entries {
	struct dd_backend_entry *v;
	size_t n, cap;
};

static void
add_entry(struct entries *l, const char *name, const struct stat *st)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = dd_realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n].name = dd_strdup(name);
	l->v[l->n].size = (uint64_t)st->st_size;
	l->v[l->n].mtime = (int64_t)st->st_mtime;
	l->v[l->n].changed = (int64_t)(st->st_ctime > st->st_mtime ? st->st_ctime : st->st_mtime);
	l->n++;
}

static int
list_dir(struct file_backend *fb, const char *rel, int depth, struct entries *l)
{
	char *path = path_of(fb, rel);
	DIR *d = opendir(path);
	struct dirent *e;
	struct stat st;
	int rc = 0;

	if (!d) {
		rc = errno == ENOENT ? 0 : dd_error_errno("cannot list %s", path);
		free(path);
		return rc;
	}
	while (rc == 0 && (e = readdir(d))) {
		if (is_temp(e->d_name))
			continue;
		char *child = dd_asprintf("%s/%s", rel, e->d_name);
		if (depth > 1) {
			rc = list_dir(fb, child, depth - 1, l);
		} else if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT) /* removed while we list: not there */
				rc = dd_error_errno("cannot stat %s/%s", path, e->d_name);
		} else if (S_ISREG(st.st_mode)) {
			add_entry(l, child, &st);
		}
		free(child);
	}
	closedir(d);
	free(path);
	return rc;
}

static int
fb_list(struct dd_backend *be, const char *dir, struct dd_backend_entry **out, size_t *n)
{
	struct entries l = { 0 };

	int depth = !strcmp(dir, "data") || !strcmp(dir, "packs") ? 2 : 1;

	if (list_dir((struct file_backend *)be, dir, depth, &l) < 0) {
		dd_backend_entries_free(l.v, l.n);
		return -1;
	}
	*out = l.v;
	*n = l.n;
	return 0;
}

static int
fb_del(struct dd_backend *be, const char *name)
{
	struct file_backend *fb = (struct file_backend *)be;
	char *path = path_of(fb, name);
	int rc = 0;

	fb_forget(be, name);
	if (unlink(path) < 0 && errno != ENOENT)
		rc = dd_error_errno("cannot remove %s", path);
	else
		mark_dirty(fb, path);
	free(path);
	return rc;
}

static int
fb_sync(struct dd_backend *be)
{
	struct file_backend *fb = (struct file_backend *)be;
	char **dirs;
	size_t n;
	int rc = 0;

	pthread_mutex_lock(&fb->mu);
	dirs = fb->dirty, n = fb->ndirty;
	fb->dirty = NULL, fb->ndirty = 0;
	pthread_mutex_unlock(&fb->mu);
	for (size_t i = 0; i < n; i++) {
		if (rc == 0 && dd_fsync_dir(dirs[i]) < 0)
			rc = -1;
		free(dirs[i]);
	}
	free(dirs);
	return rc;
}

static void
fb_sync_later(struct dd_backend *be, const char *name)
{
	struct file_backend *fb = (struct file_backend *)be;
	char *path = path_of(fb, name);

	mark_dirty(fb, path);
	free(path);
}

/* Where probe files go: locks/, or the store's own folder for a store made before locks/. */
static char *
probe_dir(struct file_backend *fb)
{
	char *dir = path_of(fb, "locks");

	if (!dd_is_dir(dir)) {
		free(dir);
		dir = dd_strdup(fb->root);
	}
	return dir;
}

/*
 * A probe file's mtime: the clock of whatever holds the folder (an NFS
 * server's, a shared disk's host). A folder we may not write into
 * (read-only, not ours: a `gc --store --dry-run` may still read it) cannot
 * tell its clock: DD_NOTFOUND with the reason as the error, and the
 * caller goes by this machine's.
 */
static int
fb_now(struct dd_backend *be, int64_t *now)
{
	struct file_backend *fb = (struct file_backend *)be;
	char *dir = probe_dir(fb), *tmpl;
	struct stat st;
	int fd, rc = -1;

	tmpl = dd_path_join(dir, ".probe-XXXXXX");
	fd = mkstemp(tmpl);
	if (fd < 0) {
		int e = errno;
		rc = dd_error_errno("cannot write a probe file into %s (to read the store's clock)", dir);
		if (e == EROFS || e == EACCES || e == EPERM)
			rc = DD_NOTFOUND;
	} else {
		if (fstat(fd, &st) == 0) {
			*now = (int64_t)st.st_mtime;
			rc = 0;
		} else {
			rc = dd_error_errno("cannot stat %s", tmpl);
		}
		close(fd);
		unlink(tmpl);
	}
	free(tmpl);
	free(dir);
	return rc;
}

/* Probe files (".probe-XXXXXX", mkstemp's six characters) with an mtime before `before`. */
static void
fb_sweep_probes(struct dd_backend *be, int64_t before)
{
	struct file_backend *fb = (struct file_backend *)be;
	char *dir = probe_dir(fb);
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;

	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, ".probe-", 7) || strlen(e->d_name) != 13 ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
		    (int64_t)st.st_mtime >= before)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT)
			dd_warn("gc: cannot remove the old probe file %s/%s: %s", dir, e->d_name, strerror(errno));
		else
			dd_debug("gc: removed the old probe file %s/%s", dir, e->d_name);
	}
	if (d)
		closedir(d);
	free(dir);
}

static void
fb_free(struct dd_backend *be)
{
	struct file_backend *fb = (struct file_backend *)be;

	for (size_t i = 0; i < fb->ndirty; i++)
		free(fb->dirty[i]);
	free(fb->dirty);
	for (int i = 0; i < OPEN_MAX; i++) {
		if (fb->open[i].name)
			close(fb->open[i].fd);
		free(fb->open[i].name);
	}
	pthread_mutex_destroy(&fb->fdmu);
	pthread_mutex_destroy(&fb->mu);
	free(fb->root);
	free(fb->base.display);
	free(fb);
}

static const struct dd_backend_ops file_ops = {
	.caps = DD_BACKEND_CHEAP_EXISTS,
	.get = fb_get,
	.get_range = fb_get_range,
	.put = fb_put,
	.put_unsynced = fb_put_unsynced,
	.put_file = fb_put_file,
	.exists = fb_exists,
	.list = fb_list,
	.del = fb_del,
	.sync = fb_sync,
	.sync_later = fb_sync_later,
	.local_path = fb_local_path,
	.forget = fb_forget,
	.advise = fb_advise,
	.now = fb_now,
	.sweep_probes = fb_sweep_probes,
	.free = fb_free,
};

static int
make_layout(const char *root)
{
	static const char *const dirs[] = { "keys", "packs", "index", "snapshots", "locks" };
	char sub[16];

	if (dd_mkdir_p(root, 0755) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
		char *p = dd_path_join(root, dirs[i]);
		int rc = mkdir(p, 0755) < 0 && errno != EEXIST ? dd_error_errno("cannot create %s", p) : 0;
		free(p);
		if (rc < 0)
			return -1;
	}
	for (int i = 0; i < 256; i++) {
		snprintf(sub, sizeof(sub), "packs/%02x", i);
		char *p = dd_path_join(root, sub);
		int rc = mkdir(p, 0755) < 0 && errno != EEXIST ? dd_error_errno("cannot create %s", p) : 0;
		free(p);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int
dd_backend_file_open(struct dd_backend **out, const char *root, int create)
{
	struct file_backend *fb;

	if (root[0] != '/')
		return dd_error("store path '%s' is not absolute", root);
	if (create && make_layout(root) < 0)
		return -1;
	fb = dd_calloc(1, sizeof(*fb));
	fb->base.ops = &file_ops;
	fb->root = dd_strdup(root);
	fb->base.display = dd_strdup(root);
	pthread_mutex_init(&fb->mu, NULL);
	pthread_mutex_init(&fb->fdmu, NULL);
	for (int i = 0; i < OPEN_MAX; i++)
		fb->open[i].fd = -1;
	*out = &fb->base;
	return 0;
}
