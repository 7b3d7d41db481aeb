/*
 * media/capture.c: a media folder into a snapshot's listing, and what
 * depends on the local index alone: commit/discard, changed, stash.
 *
 * The walk (path order) is merged with the local index: a file whose size,
 * inode, mtime, ctime and mode match its record, recorded before the
 * record's stamp, is added with the recorded entry's chunks, unread.
 * Other files are opened by the walk (O_NOFOLLOW, from their folder's
 * descriptor) and put in a ring of RING entries; WORKERS threads take the
 * ring's entries in order and read them (large reads, sequential advice)
 * into detached content streams: reading and chunking several files at
 * once, while the store's pool hashes, compresses and seals their chunks.
 * The walk's thread adds the ring's oldest entry to the listing and the
 * record once its worker is done, so entries are added in path order
 * whatever order the workers finish in: the listing, and so the snapshot
 * id, are the serial walk's. A worker's failure is kept with its entry and
 * raised when that entry is reached (the first failing entry in path
 * order); nothing after it is added. Memory: the walk's names on the
 * current path, the ring (RING open descriptors), one read buffer per
 * worker, and the store's bounded in-flight chunks.
 */
#include "media/internal.h"
#include "store/store.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RING 32
#define WORKERS 3
#define READ_SIZE (1u << 20)

struct item {
	struct dd_stream_info info; /* name and attributes; content filled by its worker */
	struct idx_stat st;
	int fd;    /* the file to read (its worker closes it), -1: nothing to read */
	int read;  /* its content was read (not a folder or link) */
	int done;  /* its worker finished (under the capture's lock) */
	char *err; /* the worker's failure, raised when the entry is drained */
};

struct capture {
	struct dd_snapshot_writer *sw;
	struct dd_listing_writer *lw;
	struct idx_writer *iw;
	struct idx_cursor ic;
	int reuse;
	struct item ring[RING];
	/* sequence numbers (ring[seq % RING]): head the oldest entry, next the first no worker took, tail the end */
	uint64_t head, next, tail;
	pthread_mutex_t mu;
	pthread_cond_t work, finished;
	int stop;     /* a failure: workers skip what they take */
	int quit;     /* workers exit when the ring has nothing to take */
	pthread_t threads[WORKERS];
	int nthreads;
	struct dd_media_stats *stats;
	struct media_progress prog;
};

void
media_progress_tick(struct media_progress *p, const char *what, const struct dd_media_stats *s, int force)
{
	struct timespec ts;
	double now;
	char b[48];

	if (!p->on)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	if (!force && now - p->last < 0.1)
		return;
	p->last = now;
	dd_format_bytes(b, sizeof(b), (double)s->bytes);
	dd_progress("%s: %llu files, %s, %llu folders", what, (unsigned long long)s->files, b,
		    (unsigned long long)s->dirs);
}

/* Read the entry's open file into a new content stream (a worker's thread): 0, or -1 with it->err set. */
static void
read_content(struct capture *c, struct item *it, uint8_t *buf)
{
	struct dd_stream_writer *w = NULL;
	ssize_t n;

	if (dd_content_begin(&w, c->sw) < 0)
		goto fail;
	while ((n = read(it->fd, buf, READ_SIZE)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			dd_error_errno("cannot read media file '%s'", it->info.name);
			goto fail;
		}
		if (dd_stream_write(w, buf, (size_t)n) < 0) {
			dd_error_wrap("storing media file '%s'", it->info.name);
			goto fail;
		}
	}
	n = dd_content_end(w, &it->info);
	w = NULL;
	if (n < 0) {
		dd_error_wrap("storing media file '%s'", it->info.name);
		goto fail;
	}
	return;
fail:
	dd_stream_abort(w);
	it->err = dd_strdup(dd_error_last() ? dd_error_last() : "reading a media file failed");
	dd_error_clear();
}

/* A worker: takes the ring's entries in order, reads each one's file (unless the capture failed). */
static void *
worker_main(void *arg)
{
	struct capture *c = arg;
	uint8_t *buf = dd_malloc(READ_SIZE);

	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (c->next == c->tail && !c->quit)
			pthread_cond_wait(&c->work, &c->mu);
		if (c->next == c->tail)
			break;
		struct item *it = &c->ring[c->next++ % RING];
		int skip = c->stop;
		if (it->done)
			continue; /* complete when queued (a folder, a link, a reused entry): never touched here */
		pthread_mutex_unlock(&c->mu);
		if (it->fd >= 0) {
			if (!skip)
				read_content(c, it, buf);
			close(it->fd);
			it->fd = -1;
		}
		pthread_mutex_lock(&c->mu);
		it->done = 1;
		pthread_cond_broadcast(&c->finished);
	}
	pthread_mutex_unlock(&c->mu);
	free(buf);
	return NULL;
}

static int
workers_start(struct capture *c)
{
	for (int i = 0; i < WORKERS; i++) {
		if (pthread_create(&c->threads[i], NULL, worker_main, c) != 0)
			return c->nthreads ? 0 : dd_error("cannot start the media capture's threads");
		c->nthreads++;
	}
	return 0;
}

/* Stop the workers (the ring is empty: ring_abort or every entry drained). */
static void
workers_stop(struct capture *c)
{
	pthread_mutex_lock(&c->mu);
	c->quit = 1;
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->mu);
	for (int i = 0; i < c->nthreads; i++)
		pthread_join(c->threads[i], NULL);
	c->nthreads = 0;
}

/* The newest entry (filled by the caller) to the workers; one complete already is passed over when it is next. */
static void
ring_push(struct capture *c)
{
	struct item *it = &c->ring[c->tail % RING];

	pthread_mutex_lock(&c->mu);
	if (it->done && c->next == c->tail)
		c->next++;
	else
		pthread_cond_signal(&c->work);
	c->tail++;
	pthread_mutex_unlock(&c->mu);
}

static void
item_clear(struct item *it)
{
	dd_stream_info_clear(&it->info);
	free(it->err);
	memset(it, 0, sizeof(*it));
	it->fd = -1;
}

/* The oldest entry, once its worker is done: added to the listing and the record. */
static int
drain_one(struct capture *c)
{
	struct item *it = &c->ring[c->head % RING];
	int rc = -1;

	pthread_mutex_lock(&c->mu);
	while (!it->done)
		pthread_cond_wait(&c->finished, &c->mu);
	/*
	 * The workers never take it (nor anything before it) from here: what
	 * they have not taken up to it was complete when queued. So its slot
	 * can be used again.
	 */
	if (c->next <= c->head)
		c->next = c->head + 1;
	pthread_mutex_unlock(&c->mu);
	if (it->err) {
		dd_error("%s", it->err);
		goto out;
	}
	if (it->read) {
		c->stats->read_files++;
		c->stats->read_bytes += it->info.size;
	}
	if (media_attr_type(&it->info) == MEDIA_FILE) {
		c->stats->files++;
		c->stats->bytes += it->info.size;
	}
	if (dd_listing_add(c->lw, &it->info) < 0 || idx_writer_add(c->iw, &it->info, &it->st) < 0)
		goto out;
	rc = 0;
out:
	item_clear(it);
	c->head++;
	return rc;
}

/* After a failure: the workers skip what they have not begun; every entry waited for and dropped. */
static void
ring_abort(struct capture *c)
{
	pthread_mutex_lock(&c->mu);
	c->stop = 1;
	pthread_mutex_unlock(&c->mu);
	while (c->head != c->tail) {
		struct item *it = &c->ring[c->head % RING];
		pthread_mutex_lock(&c->mu);
		while (!it->done && c->nthreads)
			pthread_cond_wait(&c->finished, &c->mu);
		if (c->next <= c->head) /* as drain_one: no worker takes it from here */
			c->next = c->head + 1;
		pthread_mutex_unlock(&c->mu);
		if (it->fd >= 0) /* no worker ever took it (none started) */
			close(it->fd);
		item_clear(it);
		c->head++;
	}
}

/* The mode a capture keeps: a file's setuid and setgid bits are never kept (a listing must not grant them). */
static mode_t
kept_mode(const struct stat *st)
{
	mode_t m = st->st_mode & 07777;

	return S_ISDIR(st->st_mode) ? m : m & ~(mode_t)(S_ISUID | S_ISGID);
}

static void
set_attrs(struct dd_stream_info *si, const char *type, const struct stat *st)
{
	char b[48];

	dd_kv_set(&si->attrs, &si->nattrs, "type", type);
	snprintf(b, sizeof(b), "%o", (unsigned)kept_mode(st));
	dd_kv_set(&si->attrs, &si->nattrs, "mode", b);
	media_format_mtime(b, &st->st_mtim);
	dd_kv_set(&si->attrs, &si->nattrs, "mtime", b);
}

/* Open the file for a worker to read: its attributes are what was opened, not what the walk saw. */
static int
open_file(const struct walk_entry *e, struct item *it)
{
	int fd = openat(e->parent_fd, e->name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;

	if (fd < 0)
		return dd_error_errno("cannot read media file '%s'", e->path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return dd_error("media file '%s' changed while it was read", e->path);
	}
	idx_stat_from(&it->st, &st);
	set_attrs(&it->info, "file", &st);
	if (st.st_size > READ_SIZE)
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	it->fd = fd;
	it->read = 1;
	return 0;
}

/* A recorded entry that still describes the file: same stat, recorded before the stamp, same mode. */
static const struct idx_entry *
reusable(struct capture *c, const struct walk_entry *e)
{
	const struct idx_entry *ie;
	struct idx_stat now;
	mode_t mode;

	if (!c->reuse || !(ie = idx_find(&c->ic, e->path)))
		return NULL;
	idx_stat_from(&now, &e->st);
	if (media_attr_type(&ie->info) != MEDIA_FILE || !idx_stat_equal(&now, &ie->st) ||
	    !idx_trusted(idx_header(c->ic.r), &ie->st))
		return NULL;
	if (media_attr_mode(&ie->info, &mode) < 0) {
		dd_error_clear();
		return NULL;
	}
	return mode == kept_mode(&e->st) ? ie : NULL;
}

/*
 * A reused entry into the ring, complete (added in its turn, without
 * waiting for the files before it): 1 queued, 0 refused (its chunks are not
 * this store's to keep: the caller reads the file instead), -1.
 */
static int
add_reused(struct capture *c, const struct idx_entry *ie)
{
	struct item *it;
	int r = dd_listing_reuse(c->lw, &ie->info);

	if (r == DD_NOTFOUND) {
		dd_debug("media: '%s' read again (%s)", ie->info.name, dd_error_last());
		dd_error_clear();
		return 0;
	}
	if (r < 0)
		return -1;
	it = &c->ring[c->tail % RING];
	item_clear(it);
	media_info_copy(&it->info, &ie->info);
	it->st = ie->st;
	it->done = 1;
	ring_push(c);
	return 1;
}

/* An entry's own attributes (a folder, a link's target too) or its opened file: 0 or -1. */
static int
fill_entry(struct capture *c, const struct walk_entry *e, struct item *it)
{
	char target[PATH_MAX + 1];
	ssize_t tl;

	switch (e->type) {
	case MEDIA_DIR:
		set_attrs(&it->info, "dir", &e->st);
		c->stats->dirs++;
		it->done = 1;
		return 0;
	case MEDIA_LINK:
		tl = readlinkat(e->parent_fd, e->name, target, sizeof(target));
		if (tl < 0 || tl >= (ssize_t)sizeof(target) || tl == 0)
			return tl < 0 ? dd_error_errno("cannot read media symlink '%s'", e->path)
				      : dd_error("media symlink '%s' has an empty or too long target", e->path);
		target[tl] = 0;
		set_attrs(&it->info, "symlink", &e->st);
		dd_kv_set(&it->info.attrs, &it->info.nattrs, "target", target);
		c->stats->links++;
		it->done = 1;
		return 0;
	default:
		return open_file(e, it);
	}
}

/* One entry of the walk into the ring (the caller made room). */
static int
add_entry(struct capture *c, const struct walk_entry *e)
{
	struct item *it;
	const struct idx_entry *ie;

	if (media_check_path(e->path) < 0)
		return dd_error_wrap("cannot capture the media folder");
	if (e->type == MEDIA_FILE && (e->st.st_mode & (S_ISUID | S_ISGID)))
		dd_warn("media: '%s' is captured without its setuid/setgid bits", e->path);
	if (e->type == MEDIA_FILE && (ie = reusable(c, e)) != NULL) {
		int r = add_reused(c, ie);
		if (r != 0)
			return r < 0 ? -1 : 0;
	}
	it = &c->ring[c->tail % RING];
	item_clear(it);
	it->info.name = dd_strdup(e->path);
	if (fill_entry(c, e, it) < 0) {
		item_clear(it); /* never in the ring */
		return -1;
	}
	ring_push(c);
	return 0;
}

/* Open the folder: 0, DD_NOTFOUND when it does not exist (*fd -1), -1. */
static int
open_root(const char *root, int *fd)
{
	*fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd >= 0)
		return 0;
	if (errno == ENOENT)
		return DD_NOTFOUND;
	return dd_error_errno("cannot open media folder %s", root);
}

static int
capture_walk(struct capture *c, int rootfd)
{
	struct walk *w = walk_new(rootfd);
	struct walk_entry e;
	int rc;

	while ((rc = walk_next(w, &e)) == 1) {
		if (media_is_tmp(e.name, e.type)) {
			dd_warn("media: leaving out '%s' (named like a temporary file of an interrupted restore)", e.path);
			continue;
		}
		if (e.other_dev) {
			dd_warn("media: skipping '%s' (a folder on another file system: a mount point)", e.path);
			c->stats->skipped++;
			continue;
		}
		if (e.type == MEDIA_OTHER) {
			dd_warn("media: skipping '%s' (not a file, folder or symlink)", e.path);
			c->stats->skipped++;
			continue;
		}
		if (c->tail - c->head == RING && drain_one(c) < 0) {
			rc = -1;
			break;
		}
		if (add_entry(c, &e) < 0) {
			rc = -1;
			break;
		}
		media_progress_tick(&c->prog, "media", c->stats, 0);
	}
	while (rc == 0 && c->head != c->tail)
		rc = drain_one(c);
	walk_free(w);
	return rc;
}

int
media_capture(struct dd_snapshot_writer *sw, const struct dd_media_opts *o, struct dd_media_stats *stats,
	      int reuse_private, uint8_t nonce_out[16])
{
	struct capture c = { .sw = sw, .stats = stats };
	char *dir = media_state_dir(o), *index = dd_path_join(dir, "index");
	const char *store = dd_store_identity(dd_snapshot_writer_store(sw));
	struct idx_origin origin;
	struct stat rst;
	int rootfd = -1, rc = -1, r;

	memset(stats, 0, sizeof(*stats));
	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.work, NULL);
	pthread_cond_init(&c.finished, NULL);
	for (int i = 0; i < RING; i++)
		c.ring[i].fd = -1;
	c.prog.on = o->progress && dd_progress_enabled();
	r = open_root(o->root, &rootfd);
	if (r < 0)
		goto out;
	if (r == DD_NOTFOUND)
		dd_warn("media folder %s does not exist: captured as empty", o->root);
	if (rootfd >= 0 && fstat(rootfd, &rst) < 0) {
		dd_error_errno("cannot open media folder %s", o->root);
		goto out;
	}
	idx_origin_of(&origin, rootfd >= 0 ? &rst : NULL, store);
	if (media_idx_open(&c.ic.r, index, rootfd >= 0 ? &rst : NULL, store) == 0 &&
	    (idx_header(c.ic.r)->flags & IDX_PRIVATE) && !reuse_private) {
		dd_debug("media index of %s records a stash: every file is read", o->root);
		idx_close(c.ic.r);
		c.ic.r = NULL;
	}
	c.reuse = c.ic.r != NULL;
	if (idx_writer_new(&c.iw, dir) < 0 || dd_listing_begin(&c.lw, sw, DD_MEDIA_STREAM, "media") < 0)
		goto out;
	idx_writer_set_origin(c.iw, &origin);
	idx_writer_nonce(c.iw, nonce_out);
	if (rootfd >= 0 && (workers_start(&c) < 0 || capture_walk(&c, rootfd) < 0))
		goto out;
	media_progress_tick(&c.prog, "media", stats, 1);
	r = dd_listing_end(c.lw, NULL);
	c.lw = NULL;
	if (r < 0)
		goto out;
	r = idx_writer_finish(c.iw, "pending", 0, "");
	c.iw = NULL;
	rc = r < 0 ? -1 : 0;
out:
	if (c.prog.on)
		dd_progress_done();
	ring_abort(&c);
	workers_stop(&c);
	pthread_mutex_destroy(&c.mu);
	pthread_cond_destroy(&c.work);
	pthread_cond_destroy(&c.finished);
	if (c.lw)
		dd_listing_abort(c.lw);
	idx_writer_abort(c.iw);
	idx_close(c.ic.r);
	if (rootfd >= 0)
		close(rootfd);
	free(index);
	free(dir);
	return rc;
}

/*
 * The pending record each capture of this process wrote, by folder: a
 * commit makes that one the folder's record, never another run's pending
 * file (a killed capture's, or one racing this one).
 */
struct pending_nonce {
	char *dir;
	uint8_t nonce[16];
	struct pending_nonce *next;
};
static struct pending_nonce *pendings;
static pthread_mutex_t pendings_mu = PTHREAD_MUTEX_INITIALIZER;

static void
pending_set(const char *dir, const uint8_t nonce[16])
{
	struct pending_nonce *p;

	pthread_mutex_lock(&pendings_mu);
	for (p = pendings; p && strcmp(p->dir, dir); p = p->next)
		;
	if (!p) {
		p = dd_calloc(1, sizeof(*p));
		p->dir = dd_strdup(dir);
		p->next = pendings;
		pendings = p;
	}
	memcpy(p->nonce, nonce, 16);
	pthread_mutex_unlock(&pendings_mu);
}

/* The nonce of this process's last capture of `dir`: 0, or -1 when it made none. */
static int
pending_get(const char *dir, uint8_t nonce[16])
{
	struct pending_nonce *p;

	pthread_mutex_lock(&pendings_mu);
	for (p = pendings; p && strcmp(p->dir, dir); p = p->next)
		;
	if (p)
		memcpy(nonce, p->nonce, 16);
	pthread_mutex_unlock(&pendings_mu);
	return p ? 0 : -1;
}

int
dd_media_capture(struct dd_snapshot_writer *sw, const struct dd_media_opts *o, struct dd_media_stats *stats)
{
	struct dd_media_stats local;
	uint8_t nonce[16];
	char *dir;
	int rc = media_capture(sw, o, stats ? stats : &local, 0, nonce);

	if (rc == 0) {
		dir = media_state_dir(o);
		pending_set(dir, nonce);
		free(dir);
	}
	return rc;
}

int
dd_media_commit(const struct dd_media_opts *o, const char *id)
{
	char *dir = media_state_dir(o);
	uint8_t nonce[16];
	int rc = DD_NOTFOUND;

	if (pending_get(dir, nonce) == 0)
		rc = idx_commit_pending(dir, 0, id, nonce);
	if (rc == DD_NOTFOUND) {
		dd_debug("media: no pending index of this capture for %s", o->root);
		rc = 0;
	}
	free(dir);
	return rc;
}

void
dd_media_discard(const struct dd_media_opts *o)
{
	char *dir = media_state_dir(o), *pending = dd_path_join(dir, "pending");

	unlink(pending);
	free(pending);
	free(dir);
}
