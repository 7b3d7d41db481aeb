/*
 * media/apply.c: make a media folder equal a snapshot's listing.
 *
 * dd_media_check() reads the whole listing first (media_checker_add on
 * every entry), so a hostile listing is refused before anything is
 * written. Then one pass merges, in path order, the listing, the walk of
 * the folder and the local index:
 *   - on disk only: removed (recursively, never following a symlink);
 *     sockets, devices and FIFOs, which no capture keeps, are left alone;
 *   - in the listing only, or of another type on disk: created (what was
 *     there removed first);
 *   - in both: a file whose stat matches its record, whose recorded
 *     content is the entry's (checksum) and whose mode and mtime are the
 *     entry's is left alone; anything else is written again.
 * A file gets no name of its own until its data is synced: it is written
 * (4 worker threads) to MEDIA_TMP_PREFIX<random> in its folder (O_EXCL,
 * 0600) when a file is at its name, or, where nothing is, as an anonymous
 * O_TMPFILE file in its folder; given its mode, mtime and owner; then the
 * batch's finisher fdatasyncs every file of the batch (the "batch" section
 * below) and only then renames each over its name, or links the anonymous
 * ones to theirs (linkat: one name operation, no temporary entry, nothing
 * left behind by a kill). A symlink is made at a temporary name and renamed
 * (symlinkat, renameat). Killed at any point, every file is old or new; the
 * next apply removes the temporary files (they are extras) and completes.
 * Kept rather than a syncfs per batch, which needs fewer device writes and
 * flushes but also flushes whatever else is dirty on the file system
 * (PostgreSQL's files, during a switch): docs/DESIGN-NOTES.md, "Threads in
 * capture and apply". Directories are entered through descriptors opened
 * with O_NOFOLLOW | O_DIRECTORY from the folder's own descriptor, so no
 * name and no symlink planted on disk leads outside the folder; a
 * directory's mode and mtime are set when the pass leaves it (after its
 * contents), and it is fsynced then (the renames inside it are durable).
 */
#include "media/internal.h"
#include "store/store.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A listed directory on the current path (level 0: the folder itself). */
struct dlevel {
	char *path;
	int fd;
	mode_t mode;
	struct timespec mtime;
};

/*
 * Entries done since the last hand-off, in path order: files to write wait
 * here, and WORKERS threads write them (fetch, decrypt, write to a
 * temporary name or an anonymous file) in the batch's order while the pass
 * goes on. A full batch goes to the finisher thread, which makes all its
 * files durable before the first is named (fdatasync from several threads
 * at once, so the device flushes are shared: one round per batch), names
 * them in order, sets the folders left, and, past one clock tick, restats
 * and records them in the index, in order; meanwhile the pass and the
 * workers fill the other batch (two batches at most: one finishing, one
 * filling).
 */
#define BATCH 256
#define BATCH_BYTES (64u << 20)
#define WORKERS 4
struct pend {
	struct dd_stream_info e; /* a copy, for the index */
	struct idx_stat st;
	int dirfd;               /* rename tmp to its name in dirfd; -1: in place already */
	int fd;                  /* the written file, open until it is synced (anon: linked); -1 */
	char tmp[64];            /* its temporary name; "" for an anonymous file (anon) */
	int absent;              /* nothing on disk at its name: written as an anonymous file when it can be */
	int anon;                /* an O_TMPFILE file, linked to its name once synced */
	int write;               /* a file for a worker to write (mode, mtime): done set then, under the lock */
	int done;
	mode_t mode;
	struct timespec mtime;
	char *err;               /* the worker's failure */
	int leave;               /* a folder the pass left (lfd, path, mode, mtime): finished after its files */
	int lfd;
	char *path;
};

struct batch {
	struct pend p[BATCH];
	size_t n;
	uint64_t bytes;
};

struct apply {
	struct dd_store *st;
	int rootfd;
	struct batch b[2];       /* one filling (the workers write it), one finishing (synced, renamed, recorded) */
	struct batch *fill;
	struct batch *fin;       /* the finisher's, NULL when none runs */
	pthread_t fin_thread;
	int fin_running;
	char *fin_err;           /* the finisher's failure, raised by the pass when it joins it */
	int fin_failed;          /* the pass's failure is the finisher's */
	uint64_t fin_files, fin_bytes; /* written files counted by the finisher, added to stats when joined */
	pthread_mutex_t mu;      /* fill's n, next, quit and every entry's done */
	pthread_cond_t work, finished;
	size_t next;             /* the first entry of the batch being filled that no worker took */
	int quit;
	pthread_t threads[WORKERS];
	int nthreads;
	const struct dd_media_opts *o;
	struct dlevel *lv;
	size_t nlv, cap;
	struct idx_cursor ic;
	struct idx_writer *iw;
	dev_t dev;               /* the folder's file system */
	int anon_ok;             /* anonymous files can be made and linked here: 1, 0, -1 not probed yet */
	uid_t uid;
	gid_t gid;
	int chown;
	atomic_int chown_warned;
	struct dd_media_stats *stats;
	struct media_progress prog;
};

/* ---- the listing ---- */

/* The snapshot's media listing: 0, DD_NOTFOUND (none), -1. */
static int
open_listing(struct dd_listing_reader **lr, struct dd_snapshot **snap, struct dd_store *st, const char *id)
{
	const struct dd_stream_info *si;
	const char *kind;
	int rc;

	*lr = NULL;
	*snap = NULL;
	rc = dd_snapshot_load(snap, st, id);
	if (rc != 0)
		return rc == DD_NOTFOUND ? dd_error_wrap("snapshot %.12s", id) : -1;
	si = dd_snapshot_find(*snap, DD_MEDIA_STREAM);
	if (!si)
		return DD_NOTFOUND;
	kind = dd_stream_attr(si, "listing");
	if (!kind || strcmp(kind, "media"))
		return dd_error("snapshot %.12s: stream '%s' is not a media listing", id, DD_MEDIA_STREAM);
	return dd_listing_open(lr, st, si);
}

int
dd_media_carry(struct dd_snapshot_writer *sw, struct dd_store *st, const char *id, struct dd_media_stats *stats)
{
	struct dd_listing_reader *lr = NULL;
	struct dd_listing_writer *lw = NULL;
	struct dd_snapshot *snap = NULL;
	const struct dd_stream_info *e;
	int rc, n;

	memset(stats, 0, sizeof(*stats));
	rc = open_listing(&lr, &snap, st, id);
	if (rc != 0)
		goto out;
	rc = -1;
	if (dd_listing_begin(&lw, sw, DD_MEDIA_STREAM, "media") < 0)
		goto out;
	while ((n = dd_listing_next(lr, &e)) == 1) {
		if (dd_listing_add(lw, e) < 0)
			break;
		switch (media_attr_type(e)) {
		case MEDIA_FILE: stats->files++; stats->bytes += e->size; break;
		case MEDIA_DIR: stats->dirs++; break;
		case MEDIA_LINK: stats->links++; break;
		default: break;
		}
	}
	if (n != 0) {
		dd_listing_abort(lw);
		lw = NULL;
		goto out;
	}
	rc = dd_listing_end(lw, NULL);
	lw = NULL;
out:
	if (rc == -1)
		dd_error_wrap("carrying the media of snapshot %.12s", id);
	if (lw)
		dd_listing_abort(lw);
	dd_listing_close(lr);
	dd_snapshot_free(snap);
	return rc;
}

int
dd_media_check(struct dd_store *st, const char *id)
{
	struct dd_listing_reader *lr = NULL;
	struct dd_snapshot *snap = NULL;
	struct media_checker c = { 0 };
	const struct dd_stream_info *e;
	int rc, n;

	if (!*id)
		return 0;
	rc = open_listing(&lr, &snap, st, id);
	if (rc != 0)
		goto out;
	while ((n = dd_listing_next(lr, &e)) == 1) {
		if (media_checker_add(&c, e) < 0)
			break;
	}
	rc = n == 0 ? 0 : -1;
out:
	if (rc < 0)
		dd_error_wrap("snapshot %.12s: media listing refused", id);
	media_checker_release(&c);
	if (lr)
		dd_listing_close(lr);
	dd_snapshot_free(snap);
	return rc;
}

/* ---- owner ---- */
static int
parse_owner(struct apply *a, const char *spec)
{
	char *user = dd_strdup(spec), *group = strchr(user, ':'), *end;
	struct passwd *pw;
	struct group *gr;
	int rc = -1;

	a->uid = (uid_t)-1;
	a->gid = (gid_t)-1;
	if (group)
		*group++ = 0;
	if (*user) {
		unsigned long v = strtoul(user, &end, 10);
		if ((pw = getpwnam(user)) != NULL)
			a->uid = pw->pw_uid;
		else if (!*end && end != user)
			a->uid = (uid_t)v;
		else {
			dd_warn("media_owner: no user '%s' on this machine: files keep this user's", user);
			goto out;
		}
	}
	if (group && *group) {
		unsigned long v = strtoul(group, &end, 10);
		if ((gr = getgrnam(group)) != NULL)
			a->gid = gr->gr_gid;
		else if (!*end && end != group)
			a->gid = (gid_t)v;
		else {
			dd_warn("media_owner: no group '%s' on this machine: files keep this user's", group);
			goto out;
		}
	}
	a->chown = 1;
	rc = 0;
out:
	free(user);
	return rc;
}

/* Would the configured owner change this entry? */
static int
owner_differs(const struct apply *a, const struct stat *st)
{
	return a->chown && ((a->uid != (uid_t)-1 && st->st_uid != a->uid) || (a->gid != (gid_t)-1 && st->st_gid != a->gid));
}

/* chown through a descriptor or (fd < 0) a name in dirfd, never following; EPERM: one warning, go on. */
static int
set_owner(struct apply *a, int fd, int dirfd, const char *name, const char *display)
{
	int r;

	if (!a->chown)
		return 0;
	r = fd >= 0 ? fchown(fd, a->uid, a->gid) : fchownat(dirfd, name, a->uid, a->gid, AT_SYMLINK_NOFOLLOW);
	if (r == 0)
		return 0;
	if (errno == EPERM) {
		if (!atomic_exchange(&a->chown_warned, 1))
			dd_warn("media: not permitted to set the owner to %s (files keep this user's)", a->o->owner);
		return 0;
	}
	return dd_error_errno("cannot set the owner of media entry '%s'", display);
}

/* ---- removing ---- */
static int rm_tree(struct apply *a, int pfd, const char *name, const char *display);

static int
rm_entry(struct apply *a, int pfd, const char *name, int is_dir, const char *display)
{
	if (is_dir)
		return rm_tree(a, pfd, name, display);
	if (unlinkat(pfd, name, 0) < 0 && errno != ENOENT)
		return dd_error_errno("cannot remove media entry '%s'", display);
	a->stats->removed++;
	return 0;
}

/* Remove a directory and what it holds; symlinks inside are removed, never followed. */
static int
rm_tree(struct apply *a, int pfd, const char *name, const char *display)
{
	int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), dfd;
	struct stat st;
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : dd_error_errno("cannot open media folder '%s' to remove it", display);
	if (fstat(fd, &st) == 0 && (st.st_mode & 0700) != 0700)
		fchmod(fd, (st.st_mode & 07777) | 0700); /* a read-only folder's entries can be removed */
	dfd = dup(fd);
	d = dfd < 0 ? NULL : fdopendir(dfd);
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		close(fd);
		return dd_error_errno("cannot read media folder '%s' to remove it", display);
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (media_type_of(st.st_mode) == MEDIA_OTHER || (S_ISDIR(st.st_mode) && st.st_dev != a->dev)) {
			/* no capture keeps these (a socket, FIFO, device, mount point): left alone, so is their folder */
			dd_warn("media: leaving '%s/%s' alone (%s) in a folder the snapshot does not hold", display,
				de->d_name, S_ISDIR(st.st_mode) ? "a mount point" : "not a file, folder or symlink");
			continue;
		}
		rc = rm_entry(a, fd, de->d_name, S_ISDIR(st.st_mode), display);
	}
	closedir(d);
	close(fd);
	if (rc == 0 && unlinkat(pfd, name, AT_REMOVEDIR) < 0) {
		if (errno == ENOTEMPTY || errno == EEXIST)
			return 0; /* what was left alone is in it */
		if (errno != ENOENT)
			rc = dd_error_errno("cannot remove media folder '%s'", display);
	}
	if (rc == 0)
		a->stats->removed++;
	return rc;
}

static const char *
base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static void tmp_name(char out[64]);

/* ---- the batch ---- */
/* Wait until the workers wrote every file of batch b. */
static void
batch_wait(struct apply *a, struct batch *b)
{
	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < b->n; i++)
		while (!b->p[i].done)
			pthread_cond_wait(&a->finished, &a->mu);
	pthread_mutex_unlock(&a->mu);
}

/* Drop what waits in b (after a failure, once written): the temporary files go, left folders are closed. */
static void
batch_discard(struct apply *a, struct batch *b)
{
	batch_wait(a, b);
	for (size_t i = 0; i < b->n; i++) {
		struct pend *p = &b->p[i];
		if (p->fd >= 0)
			close(p->fd);
		if (p->dirfd >= 0 && p->tmp[0])
			unlinkat(p->dirfd, p->tmp, 0);
		if (p->leave && p->lfd >= 0 && p->lfd != a->rootfd)
			close(p->lfd);
		dd_stream_info_clear(&p->e);
		free(p->err);
		free(p->path);
		p->err = NULL;
		p->path = NULL;
	}
	pthread_mutex_lock(&a->mu);
	b->n = 0;
	if (b == a->fill)
		a->next = 0;
	pthread_mutex_unlock(&a->mu);
	b->bytes = 0;
}

/*
 * The renamed files' stats again, once the file system's clock has moved
 * past their ctimes: a file changed between its rename and its first stat
 * shows a different stat now and is recorded as not trusted (read again
 * by the next capture); one changed after this shows a later ctime.
 */
static void
batch_restat(struct apply *a, struct batch *b, size_t from, size_t to, const struct timespec *latest)
{
	idx_writer_wait_past(a->iw, latest);
	for (size_t i = from; i < to; i++) {
		struct pend *p = &b->p[i];
		struct idx_stat now;
		struct stat st;
		if (p->dirfd < 0 || p->fd >= 0)
			continue; /* not renamed by this batch */
		if (fstatat(p->dirfd, base_name(p->e.name), &st, AT_SYMLINK_NOFOLLOW) < 0)
			memset(&st, 0, sizeof(st));
		idx_stat_from(&now, &st);
		if (!idx_stat_equal(&now, &p->st))
			idx_stat_untrust(&p->st);
		p->dirfd = -1;
	}
}

/*
 * fdatasync a run of the batch's files from SYNCERS threads at once: the
 * file system commits its journal for many of them together (one after
 * the other, each would wait for a journal commit of its own).
 */
#define SYNCERS 16
struct syncer {
	struct batch *b;
	size_t to;
	atomic_size_t next;
	atomic_int failed; /* 1 + the index of a file that failed, 0 none */
	atomic_int err;
};

static void *
syncer_run(void *arg)
{
	struct syncer *sy = arg;
	size_t i;

	while ((i = atomic_fetch_add(&sy->next, 1)) < sy->to) {
		struct pend *p = &sy->b->p[i];
		if (p->fd >= 0 && fdatasync(p->fd) < 0) {
			int zero = 0;
			atomic_store(&sy->err, errno);
			atomic_compare_exchange_strong(&sy->failed, &zero, (int)i + 1);
		}
	}
	return NULL;
}

static int
batch_sync(struct batch *b, size_t from, size_t to)
{
	struct syncer sy = { .b = b, .to = to };
	pthread_t t[SYNCERS];
	size_t files = 0, n = 0;
	int failed;

	for (size_t i = from; i < to; i++)
		files += b->p[i].fd >= 0;
	atomic_init(&sy.next, from);
	atomic_init(&sy.failed, 0);
	atomic_init(&sy.err, 0);
	for (; files > 1 && n < SYNCERS && n < files; n++)
		if (pthread_create(&t[n], NULL, syncer_run, &sy) != 0)
			break;
	syncer_run(&sy); /* this thread too (alone when threads could not start) */
	for (size_t i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	for (size_t i = from; i < to; i++) {
		if (b->p[i].fd >= 0 && !b->p[i].anon) {
			close(b->p[i].fd);
			b->p[i].fd = -1;
		}
	}
	failed = atomic_load(&sy.failed);
	if (!failed)
		return 0;
	errno = atomic_load(&sy.err);
	return dd_error_errno("cannot sync media file '%s'", b->p[failed - 1].e.name);
}

/*
 * Give the synced anonymous file p its name (no file has it: the walk saw
 * none), and close it. linkat(AT_EMPTY_PATH) needs a recent kernel or
 * CAP_DAC_READ_SEARCH; /proc/self/fd does it otherwise. Someone created
 * the name meanwhile (EEXIST): linked under a temporary name and renamed
 * over it, as a file that was there is.
 */
static int
link_fd(int fd, int dirfd, const char *name)
{
	char proc[64];

	if (linkat(fd, "", dirfd, name, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != ENOENT && errno != EPERM)
		return -1;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW);
}

static int
link_anon(struct pend *p)
{
	const char *name = base_name(p->e.name);
	int r = link_fd(p->fd, p->dirfd, name);

	if (r < 0 && errno == EEXIST) {
		do {
			tmp_name(p->tmp);
			r = link_fd(p->fd, p->dirfd, p->tmp);
		} while (r < 0 && errno == EEXIST);
		if (r == 0 && (r = renameat(p->dirfd, p->tmp, p->dirfd, name)) < 0)
			unlinkat(p->dirfd, p->tmp, 0);
		p->tmp[0] = 0;
	}
	int saved = errno;
	close(p->fd);
	p->fd = -1;
	errno = saved; /* the caller reports a failure's */
	return r;
}

/*
 * Rename a run of the batch's files into place (synced already); *latest
 * gets the newest ctime of a renamed file (the restat waits past it).
 */
static int
rename_run(struct batch *b, size_t from, size_t to, struct timespec *latest)
{
	for (size_t i = from; i < to; i++) {
		struct pend *p = &b->p[i];
		struct stat st;
		if (p->dirfd < 0)
			continue;
		if ((p->anon ? link_anon(p) : renameat(p->dirfd, p->tmp, p->dirfd, base_name(p->e.name))) < 0 ||
		    fstatat(p->dirfd, base_name(p->e.name), &st, AT_SYMLINK_NOFOLLOW) < 0) {
			dd_error_errno("cannot put media file '%s' in place", p->e.name);
			p->tmp[0] = 0;
			return -1;
		}
		p->tmp[0] = 0;
		idx_stat_from(&p->st, &st);
		if (st.st_ctim.tv_sec > latest->tv_sec ||
		    (st.st_ctim.tv_sec == latest->tv_sec && st.st_ctim.tv_nsec > latest->tv_nsec))
			*latest = st.st_ctim;
	}
	return 0;
}

/*
 * A folder the pass left, once every file in it is in place: its mode,
 * mtime and owner, then fsync (the renames in it are durable). Set after
 * the renames: a rename into the folder would change its mtime again. Its
 * descriptor stays open (p->lfd) until the batch's files are restatted.
 */
static int
finish_leave(struct apply *a, struct pend *p)
{
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, p->mtime };
	int fd = p->lfd;

	if (fd == a->rootfd)
		return fsync(fd) < 0 ? dd_error_errno("cannot sync media folder %s", a->o->root) : 0;
	if (set_owner(a, fd, -1, NULL, p->path) < 0 || fchmod(fd, p->mode) < 0 || futimens(fd, ts) < 0 ||
	    fsync(fd) < 0)
		return dd_error_errno("cannot set the mode and time of media folder '%s'", p->path);
	return 0;
}

/* The first entry of b a worker failed to write (b->n: none). */
static size_t
first_failed(const struct batch *b)
{
	size_t k = 0;

	while (k < b->n && !b->p[k].err)
		k++;
	return k;
}

/*
 * Finish batch b, in path order. Every file written before the first
 * failure is made durable first, all at once (one fdatasync each, from
 * several threads: the device flushes are shared), before any of them is
 * renamed; then each run of files up to a left folder is renamed, and
 * that folder gets its mode, mtime and fsync; then, past one clock tick,
 * the renamed files are statted again and recorded in the index, in
 * order. The first failure stops it (nothing after it renamed or
 * recorded).
 */
static int
batch_finish(struct apply *a, struct batch *b)
{
	struct timespec latest = { 0 };
	size_t from, to, k;
	int rc = 0;

	batch_wait(a, b);
	k = first_failed(b);
	for (size_t i = 0; i < k; i++)
		if (b->p[i].write) {
			a->fin_files++;
			a->fin_bytes += b->p[i].e.size;
		}
	rc = batch_sync(b, 0, k);
	for (from = 0; from < k && rc == 0; from = to + 1) {
		for (to = from; to < k && !b->p[to].leave; to++)
			;
		rc = rename_run(b, from, to, &latest);
		if (rc == 0 && to < k)
			rc = finish_leave(a, &b->p[to]);
	}
	if (rc == 0 && latest.tv_sec)
		batch_restat(a, b, 0, k, &latest);
	for (size_t i = 0; i < k && rc == 0; i++)
		if (!b->p[i].leave)
			rc = idx_writer_add(a->iw, &b->p[i].e, &b->p[i].st);
	if (rc == 0 && k < b->n)
		rc = dd_error("%s", b->p[k].err); /* the first failure in path order */
	if (rc < 0)
		for (size_t i = 0; i < b->n; i++)
			if (!b->p[i].tmp[0])
				b->p[i].dirfd = -1; /* in place: nothing to remove */
	batch_discard(a, b);
	return rc;
}

/* The finisher: the handed-off batch, on its own thread while the pass and the workers go on with the next. */
static void *
finisher_main(void *arg)
{
	struct apply *a = arg;

	if (batch_finish(a, a->fin) < 0)
		a->fin_err = dd_strdup(dd_error_last() ? dd_error_last() : "finishing media files failed");
	return NULL;
}

/* Wait for the finisher, if one runs: 0, or -1 with its failure (earlier in path order than anything after). */
static int
finisher_join(struct apply *a)
{
	if (a->fin_running)
		pthread_join(a->fin_thread, NULL);
	a->fin_running = 0;
	a->fin = NULL;
	a->stats->written_files += a->fin_files;
	a->stats->written_bytes += a->fin_bytes;
	a->fin_files = a->fin_bytes = 0;
	if (!a->fin_err)
		return 0;
	dd_error("%s", a->fin_err);
	free(a->fin_err);
	a->fin_err = NULL;
	a->fin_failed = 1;
	return -1;
}

/*
 * Hand the batch being filled to the finisher, once the previous one is
 * finished (two batches at most in flight: one finishing, one filling),
 * and go on filling the other; without workers, it is finished here.
 */
static int
batch_handoff(struct apply *a)
{
	struct batch *b = a->fill;

	if (finisher_join(a) < 0)
		return -1;
	if (!b->n)
		return 0;
	if (!a->nthreads)
		return batch_finish(a, b) < 0 ? -1 : 0;
	pthread_mutex_lock(&a->mu);
	while (a->next < b->n) /* every entry taken by a worker before they move on to the other batch */
		pthread_cond_wait(&a->finished, &a->mu);
	a->fill = b == &a->b[0] ? &a->b[1] : &a->b[0];
	a->next = 0;
	pthread_mutex_unlock(&a->mu);
	a->fin = b;
	if (pthread_create(&a->fin_thread, NULL, finisher_main, a) != 0) {
		a->fin = NULL;
		return batch_finish(a, b);
	}
	a->fin_running = 1;
	return 0;
}

static int write_file(struct apply *a, struct pend *p);

/* Write a batch's file (a worker's thread; the caller's without workers); a failure is kept in p->err. */
static void
pend_write(struct apply *a, struct pend *p)
{
	if (write_file(a, p) == 0)
		return;
	p->err = dd_strdup(dd_error_last() ? dd_error_last() : "writing a media file failed");
	dd_error_clear();
	p->tmp[0] = 0; /* write_file removed it */
	p->fd = -1;
	p->anon = 0;
}

/* The next free entry of the batch being filled (handing it off first when full). */
static struct pend *
batch_slot(struct apply *a)
{
	struct pend *p;

	if (a->fill->n == BATCH && batch_handoff(a) < 0)
		return NULL;
	p = &a->fill->p[a->fill->n];
	memset(p, 0, sizeof(*p));
	p->dirfd = p->fd = p->lfd = -1;
	return p;
}

/* Publish the filled slot to the workers. */
static void
batch_publish(struct apply *a)
{
	pthread_mutex_lock(&a->mu);
	a->fill->n++;
	pthread_cond_signal(&a->work);
	pthread_mutex_unlock(&a->mu);
}

/*
 * Add an entry to the batch: in place already (st its stat), or with
 * dirfd >= 0 a file for the workers to write into dirfd (mode, mtime).
 */
static int
batch_add(struct apply *a, const struct dd_stream_info *e, const struct idx_stat *st, int dirfd, mode_t mode,
	  struct timespec mtime, int absent)
{
	struct pend *p = batch_slot(a);

	if (!p)
		return -1;
	media_info_copy(&p->e, e);
	p->st = *st;
	p->dirfd = dirfd;
	p->write = dirfd >= 0;
	p->absent = absent;
	p->done = !p->write;
	p->mode = mode;
	p->mtime = mtime;
	if (p->write && !a->nthreads) { /* no worker could start: written here */
		pend_write(a, p);
		p->done = 1;
	}
	batch_publish(a);
	if (dirfd >= 0)
		a->fill->bytes += e->size;
	return a->fill->bytes >= BATCH_BYTES ? batch_handoff(a) : 0;
}

/* A worker: writes the batch's files in order, each to a temporary name (left open for the finisher to sync). */
static void *
worker_main(void *arg)
{
	struct apply *a = arg;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (a->next == a->fill->n && !a->quit)
			pthread_cond_wait(&a->work, &a->mu);
		if (a->next == a->fill->n)
			break;
		struct pend *p = &a->fill->p[a->next++];
		if (a->next == a->fill->n)
			pthread_cond_broadcast(&a->finished); /* a handoff waits for every entry taken */
		if (!p->write)
			continue;
		pthread_mutex_unlock(&a->mu);
		pend_write(a, p);
		pthread_mutex_lock(&a->mu);
		p->done = 1;
		pthread_cond_broadcast(&a->finished);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

static void
workers_start(struct apply *a)
{
	for (int i = 0; i < WORKERS; i++) {
		if (pthread_create(&a->threads[i], NULL, worker_main, a) != 0)
			break;
		a->nthreads++;
	}
}

static void
workers_stop(struct apply *a)
{
	pthread_mutex_lock(&a->mu);
	a->quit = 1;
	pthread_cond_broadcast(&a->work);
	pthread_mutex_unlock(&a->mu);
	for (int i = 0; i < a->nthreads; i++)
		pthread_join(a->threads[i], NULL);
	a->nthreads = 0;
}

/* ---- the listed directories on the current path ---- */

/*
 * Leave the innermost directory: it goes into the batch, after its files,
 * with its descriptor; the finisher sets its mode, mtime and owner and
 * fsyncs it once they are in place, while the pass goes on.
 */
static int
level_leave(struct apply *a)
{
	struct dlevel *l = &a->lv[a->nlv - 1];
	struct pend *p = batch_slot(a);

	if (!p)
		return -1; /* the level stays: the caller's cleanup closes it */
	a->nlv--;
	p->leave = 1;
	p->done = 1;
	p->lfd = l->fd;
	p->path = l->path;
	p->mode = l->mode;
	p->mtime = l->mtime;
	batch_publish(a);
	return 0;
}

/* Leave the directories that are not ancestors of `name`; the innermost left is its parent. */
static int
level_to_parent(struct apply *a, const char *name)
{
	const char *slash = strrchr(name, '/');
	size_t plen = slash ? (size_t)(slash - name) : 0;

	while (a->nlv > 1) {
		const struct dlevel *l = &a->lv[a->nlv - 1];
		if (strlen(l->path) == plen && !strncmp(l->path, name, plen))
			return 0;
		if (level_leave(a) < 0)
			return -1;
	}
	if (plen)
		return dd_error("media entry '%s': its folder is not listed", name); /* check() refused it already */
	return 0;
}

static void
level_push(struct apply *a, const char *path, int fd, mode_t mode, struct timespec mtime)
{
	if (a->nlv == a->cap) {
		a->cap = a->cap ? 2 * a->cap : 16;
		a->lv = dd_realloc(a->lv, a->cap * sizeof(*a->lv));
	}
	a->lv[a->nlv].path = dd_strdup(path);
	a->lv[a->nlv].fd = fd;
	a->lv[a->nlv].mode = mode;
	a->lv[a->nlv].mtime = mtime;
	a->nlv++;
}

/* ---- writing entries ---- */
static void
tmp_name(char out[64])
{
	uint8_t r[8];
	char hex[17];

	randombytes_buf(r, sizeof(r));
	dd_hex_encode(hex, r, sizeof(r));
	snprintf(out, 64, "%s%s", MEDIA_TMP_PREFIX, hex);
}

/* The content of entry `e` into the new file `fd`. */
static int
write_content(struct apply *a, const struct dd_stream_info *e, int fd)
{
	struct dd_stream_reader *r;
	const void *data;
	size_t len;
	int n;

	if (dd_stream_open(&r, a->st, e) < 0)
		return -1;
	while ((n = dd_stream_next(r, &data, &len)) == 1) {
		if (dd_write_all(fd, data, len) < 0) {
			n = dd_error_errno("cannot write media file '%s'", e->name);
			break;
		}
	}
	dd_stream_close(r);
	return n;
}

/*
 * Can this folder take anonymous files that link_anon names (O_TMPFILE
 * support, linkat with AT_EMPTY_PATH or /proc)? One probe per apply: a
 * file made, linked at a temporary name and removed.
 */
static int
anon_works(int dirfd)
{
	struct pend p = { .dirfd = dirfd, .absent = 1 };
	char name[64];
	int ok;

	p.fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (p.fd < 0)
		return 0;
	tmp_name(name);
	p.e.name = name;
	ok = link_anon(&p) == 0;
	if (ok)
		unlinkat(dirfd, name, 0);
	return ok;
}

/*
 * A new file for entry p in p->dirfd: anonymous (O_TMPFILE) when nothing
 * is at its name and the file system can, else at a temporary name
 * (O_EXCL, 0600; p->tmp gets it). Either way it has no name of its own
 * until it is synced (a kill leaves the name's old file or none).
 */
static int
create_file(struct apply *a, struct pend *p)
{
	int fd;

	p->anon = 0;
	p->tmp[0] = 0;
	if (p->absent && a->anon_ok == 1) {
		fd = openat(p->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
		if (fd >= 0) {
			p->anon = 1;
			return fd;
		}
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
			return -1;
	}
	do {
		tmp_name(p->tmp);
		fd = openat(p->dirfd, p->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	} while (fd < 0 && errno == EEXIST);
	if (fd < 0)
		p->tmp[0] = 0;
	return fd;
}

/*
 * Write a file entry (create_file), with its owner, mode and mtime (owner
 * first: a chown clears setuid/setgid); p->fd stays open for the batch to
 * sync, which puts it in place then.
 */
static int
write_file(struct apply *a, struct pend *p)
{
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, p->mtime };
	const struct dd_stream_info *e = &p->e;
	int fd, rc = -1;

	fd = create_file(a, p);
	if (fd < 0)
		return dd_error_errno("cannot create a file in media folder for '%s'", e->name);
	if (write_content(a, e, fd) < 0)
		goto out;
	/* start writing it back now: the batch's fdatasync then mostly waits for nothing */
	sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	if (set_owner(a, fd, -1, NULL, e->name) < 0)
		goto out;
	if (fchmod(fd, p->mode) < 0 || futimens(fd, ts) < 0) {
		dd_error_errno("cannot write media file '%s'", e->name);
		goto out;
	}
	rc = 0;
out:
	if (rc < 0) {
		close(fd);
		if (p->tmp[0])
			unlinkat(p->dirfd, p->tmp, 0);
		return rc;
	}
	p->fd = fd;
	return 0;
}

static int
write_symlink(struct apply *a, int pfd, const struct dd_stream_info *e, struct timespec mtime)
{
	char tmp[64];
	const char *target = dd_kv_get(e->attrs, e->nattrs, "target");
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, mtime };
	int r;

	do {
		tmp_name(tmp);
		r = symlinkat(target, pfd, tmp);
	} while (r < 0 && errno == EEXIST);
	if (r < 0)
		return dd_error_errno("cannot create media symlink '%s'", e->name);
	if (set_owner(a, -1, pfd, tmp, e->name) < 0) {
		unlinkat(pfd, tmp, 0);
		return -1;
	}
	if (utimensat(pfd, tmp, ts, AT_SYMLINK_NOFOLLOW) < 0 || renameat(pfd, tmp, pfd, base_name(e->name)) < 0) {
		dd_error_errno("cannot put media symlink '%s' in place", e->name);
		unlinkat(pfd, tmp, 0);
		return -1;
	}
	a->stats->written_files++;
	return 0;
}

/* A listed directory: made (or kept) and entered. */
static int
enter_dir(struct apply *a, int pfd, const struct dd_stream_info *e, const struct walk_entry *d, mode_t mode,
	  struct timespec mtime)
{
	const char *name = base_name(e->name);
	struct stat st;
	int fd;

	if (!d && mkdirat(pfd, name, 0700) < 0)
		return dd_error_errno("cannot create media folder '%s'", e->name);
	fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return dd_error_errno("cannot open media folder '%s'", e->name);
	if (fstat(fd, &st) == 0 && st.st_dev != a->dev) {
		close(fd);
		return dd_error("media folder '%s' is a mount point (another file system): not restored into", e->name);
	}
	/* writable while its entries are made; the listed mode is set when it is left */
	if ((st.st_mode & 0700) != 0700)
		fchmod(fd, (st.st_mode & 07777) | 0700);
	level_push(a, e->name, fd, mode, mtime);
	return 0;
}

/* Is the file on disk `d` the entry already (per the local index), with its mode and mtime? */
static int
file_unchanged(struct apply *a, const struct dd_stream_info *e, const struct walk_entry *d, mode_t mode,
	       struct timespec mtime)
{
	const struct idx_entry *ie = idx_find(&a->ic, e->name);
	struct idx_stat now;

	if (!ie || media_attr_type(&ie->info) != MEDIA_FILE || ie->info.size != e->size ||
	    memcmp(ie->info.checksum, e->checksum, 32))
		return 0;
	idx_stat_from(&now, &d->st);
	return idx_stat_equal(&now, &ie->st) && idx_trusted(idx_header(a->ic.r), &ie->st) &&
	       (d->st.st_mode & 07777) == mode && d->st.st_mtim.tv_sec == mtime.tv_sec &&
	       d->st.st_mtim.tv_nsec == mtime.tv_nsec;
}

static int
link_unchanged(const struct dd_stream_info *e, const struct walk_entry *d, struct timespec mtime)
{
	char target[PATH_MAX + 1];
	ssize_t n = readlinkat(d->parent_fd, d->name, target, sizeof(target));

	if (n < 0 || n >= (ssize_t)sizeof(target))
		return 0;
	target[n] = 0;
	return !strcmp(target, dd_kv_get(e->attrs, e->nattrs, "target")) && d->st.st_mtim.tv_sec == mtime.tv_sec &&
	       d->st.st_mtim.tv_nsec == mtime.tv_nsec;
}

/* An unchanged file or symlink stays: given the configured owner in place when it has another; *ist its stat. */
static int
keep_in_place(struct apply *a, const struct dd_stream_info *e, const struct walk_entry *d, struct idx_stat *ist)
{
	struct stat st = d->st;

	if (owner_differs(a, &st)) {
		if (set_owner(a, -1, d->parent_fd, d->name, e->name) < 0)
			return -1;
		if (fstatat(d->parent_fd, d->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return dd_error_errno("cannot read media entry '%s'", e->name);
	}
	idx_stat_from(ist, &st);
	return 0;
}

/*
 * One listed entry, with what is on disk at its path (`d`, or NULL).
 * *descend says whether the walk may enter `d` (the same directory kept).
 */
static int
apply_entry(struct apply *a, const struct dd_stream_info *e, const struct walk_entry *d, int *descend)
{
	enum media_type t = media_attr_type(e);
	struct idx_stat ist = { 0 };
	struct timespec mtime;
	mode_t mode;
	int pfd;

	*descend = 0;
	if (media_attr_mode(e, &mode) < 0 || media_attr_mtime(e, &mtime) < 0 || level_to_parent(a, e->name) < 0)
		return -1;
	pfd = a->lv[a->nlv - 1].fd;
	if (d && d->other_dev) /* never written into, replaced or removed */
		return dd_error("media folder '%s' is a mount point (another file system): not restored into", e->name);
	if (d && d->type != t) {
		/* another type on disk: it goes first (a folder cannot be renamed over) */
		if (rm_entry(a, d->parent_fd, d->name, d->type == MEDIA_DIR, d->path) < 0)
			return -1;
		d = NULL;
	}
	switch (t) {
	case MEDIA_DIR:
		a->stats->dirs++;
		if (enter_dir(a, pfd, e, d, mode, mtime) < 0)
			return -1;
		*descend = d != NULL;
		break;
	case MEDIA_LINK:
		a->stats->links++;
		if (d && link_unchanged(e, d, mtime))
			return keep_in_place(a, e, d, &ist) < 0 ? -1 : batch_add(a, e, &ist, -1, 0, mtime, 0);
		if (write_symlink(a, pfd, e, mtime) < 0)
			return -1;
		break;
	default:
		a->stats->files++;
		a->stats->bytes += e->size;
		if (d && file_unchanged(a, e, d, mode, mtime)) {
			if (keep_in_place(a, e, d, &ist) < 0)
				return -1;
			break;
		}
		if (!d && a->anon_ok < 0)
			a->anon_ok = anon_works(pfd); /* once, where the first new file goes (it is written into anyway) */
		return batch_add(a, e, &ist, pfd, mode, mtime, d == NULL);
	}
	return batch_add(a, e, &ist, -1, 0, mtime, 0);
}

/* ---- the pass ---- */
static int
next_listed(struct dd_listing_reader *lr, const struct dd_stream_info **e)
{
	int n = lr ? dd_listing_next(lr, e) : 0;

	if (n != 1)
		*e = NULL;
	return n < 0 ? -1 : 0;
}

/* The listing merged with the walk of the folder, in path order. */
static int
merge(struct apply *a, struct dd_listing_reader *lr, int rootfd)
{
	struct walk *w = walk_new(rootfd);
	const struct dd_stream_info *e = NULL;
	struct walk_entry d;
	int have_d = 0, walk_done = 0, rc, n, descend, cmp;

	rc = next_listed(lr, &e);
	while (rc == 0) {
		if (!have_d && !walk_done) {
			if ((n = walk_next(w, &d)) < 0) {
				rc = -1;
				break;
			}
			walk_done = n == 0;
			have_d = n == 1;
		}
		if (!e && !have_d)
			break;
		cmp = !e ? -1 : !have_d ? 1 : dd_path_cmp(d.path, e->name);
		if (cmp < 0) {
			/* not listed: removed (a socket, device, FIFO or mount point is no capture's: left alone) */
			have_d = 0;
			if (d.type == MEDIA_OTHER)
				continue;
			if (d.other_dev) {
				dd_warn("media: leaving '%s' alone (a mount point)", d.path);
				continue;
			}
			if (d.type == MEDIA_DIR)
				walk_skip(w);
			rc = rm_entry(a, d.parent_fd, d.name, d.type == MEDIA_DIR, d.path);
			continue;
		}
		rc = apply_entry(a, e, cmp == 0 ? &d : NULL, &descend);
		if (cmp == 0) {
			have_d = 0;
			if (!descend && d.type == MEDIA_DIR)
				walk_skip(w);
		}
		if (rc == 0)
			rc = next_listed(lr, &e);
		media_progress_tick(&a->prog, "restoring media", a->stats, 0);
	}
	walk_free(w);
	return rc;
}

/* Is `id` one of this cache's private snapshots (its chunks are the cache's only)? */
static int
is_private(struct dd_store *st, const char *id)
{
	char **ids = NULL;
	size_t n = 0;
	int found = 0;

	if (!*id || dd_store_private_list(st, &ids, &n) < 0) {
		dd_error_clear();
		return 0;
	}
	for (size_t i = 0; i < n && !found; i++)
		found = !strcmp(ids[i], id);
	dd_store_snapshot_ids_free(ids, n);
	return found;
}

/* The folder's descriptor, made when the listing has entries: 0, DD_NOTFOUND (missing, nothing to make), -1. */
static int
open_folder(const char *root, int make, int *fd)
{
	*fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd >= 0)
		return 0;
	if (errno != ENOENT)
		return dd_error_errno("cannot open media folder %s", root);
	if (!make)
		return DD_NOTFOUND;
	if (dd_mkdir_p(root, 0755) < 0)
		return -1;
	*fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return *fd >= 0 ? 0 : dd_error_errno("cannot open media folder %s", root);
}

/*
 * After a failure (rc < 0) or once done: the finisher joined, the batch
 * being filled dropped, the workers stopped. A failure the finisher met
 * is earlier in path order than the pass's, and a worker's in the batch
 * being filled earlier than a failure of the pass: either is the one kept.
 */
static void
apply_stop(struct apply *a, int rc)
{
	if (finisher_join(a) == 0 && rc < 0 && !a->fin_failed) {
		batch_wait(a, a->fill);
		for (size_t i = 0; i < a->fill->n; i++)
			if (a->fill->p[i].err) {
				dd_error("%s", a->fill->p[i].err);
				break;
			}
	}
	batch_discard(a, a->fill);
	workers_stop(a);
}

static int
apply_run(struct apply *a, struct dd_listing_reader *lr, const char *id)
{
	char *dir = media_state_dir(a->o), *index = dd_path_join(dir, "index");
	int rootfd = -1, rc = -1, r;
	struct timespec none = { 0 };
	struct idx_origin origin;
	struct stat rst;

	r = open_folder(a->o->root, lr != NULL, &rootfd);
	if (r < 0)
		goto out;
	if (rootfd >= 0 && fstat(rootfd, &rst) < 0) {
		dd_error_errno("cannot open media folder %s", a->o->root);
		goto out;
	}
	a->dev = rootfd >= 0 ? rst.st_dev : 0;
	a->anon_ok = -1;
	if (a->o->owner && *a->o->owner)
		parse_owner(a, a->o->owner); /* an unknown user or group: warned, owners left alone */
	idx_origin_of(&origin, rootfd >= 0 ? &rst : NULL, dd_store_identity(a->st));
	media_idx_open(&a->ic.r, index, rootfd >= 0 ? &rst : NULL, origin.store);
	if (idx_writer_new(&a->iw, dir) < 0)
		goto out;
	idx_writer_set_origin(a->iw, &origin);
	a->rootfd = rootfd;
	if (rootfd >= 0) {
		workers_start(a);
		level_push(a, "", rootfd, 0, none);
		r = merge(a, lr, rootfd);
		while (r == 0 && a->nlv)
			r = level_leave(a);
		if (r == 0)
			r = batch_handoff(a);
		if (r == 0)
			r = finisher_join(a);
		if (r < 0)
			goto out;
	}
	media_progress_tick(&a->prog, "restoring media", a->stats, 1);
	idx_writer_restamp(a->iw);
	r = idx_writer_finish(a->iw, "index", is_private(a->st, id) ? IDX_PRIVATE : 0, id);
	a->iw = NULL;
	rc = r < 0 ? -1 : 0;
out:
	if (rootfd >= 0)
		apply_stop(a, rc);
	while (a->nlv) {
		close(a->lv[a->nlv - 1].fd == rootfd ? -1 : a->lv[a->nlv - 1].fd);
		free(a->lv[--a->nlv].path);
	}
	free(a->lv);
	idx_writer_abort(a->iw);
	idx_close(a->ic.r);
	if (rootfd >= 0)
		close(rootfd);
	free(index);
	free(dir);
	return rc;
}

/*
 * Is the folder as its record says (what the stash set aside), or empty?
 * Else something was written into it after the stash: 0 or -1 (one line).
 */
static int
still_as_set_aside(const struct dd_media_opts *o)
{
	char rec[65];
	int r = dd_media_changed(o, rec);

	if (r == 0)
		return 0;
	if (r < 0)
		return -1;
	r = media_has_entries(o->root);
	if (r <= 0)
		return r;
	dd_error("media folder %s changed during the switch: run `git dnadata restore` again", o->root);
	return -1;
}

int
dd_media_apply(struct dd_store *st, const char *id, const struct dd_media_opts *o, struct dd_media_stats *stats)
{
	struct dd_media_stats local;
	struct apply a = { .st = st, .o = o, .stats = stats ? stats : &local };
	struct dd_listing_reader *lr = NULL;
	struct dd_snapshot *snap = NULL;
	int rc;

	a.fill = &a.b[0];
	memset(a.stats, 0, sizeof(*a.stats));
	rc = dd_media_check(st, id);
	if (rc != 0)
		return rc;
	if (!o->force && still_as_set_aside(o) < 0) {
		a.stats->refused = 1;
		return -1;
	}
	if (*id && open_listing(&lr, &snap, st, id) != 0) {
		dd_snapshot_free(snap);
		return -1;
	}
	a.prog.on = o->progress && dd_progress_enabled();
	pthread_mutex_init(&a.mu, NULL);
	pthread_cond_init(&a.work, NULL);
	pthread_cond_init(&a.finished, NULL);
	rc = apply_run(&a, lr, id);
	pthread_cond_destroy(&a.finished);
	pthread_cond_destroy(&a.work);
	pthread_mutex_destroy(&a.mu);
	if (a.prog.on)
		dd_progress_done();
	if (lr)
		dd_listing_close(lr);
	dd_snapshot_free(snap);
	if (rc < 0)
		dd_error_wrap("restoring media folder %s", o->root);
	return rc;
}
