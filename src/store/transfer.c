/*
 * store/transfer.c: transfers between the local cache and the backend on
 * the store's transfer pool (`transfers` threads, separate from the
 * hashing/compressing pool so uploads run while the capture goes on).
 *
 * A batch is a list of jobs owned by one thread, which submits them and
 * later waits for all of them, reporting progress from its own thread at
 * most ten times a second. Jobs hold a name, never file contents: uploads
 * go through put_file() from the cache's file, so memory does not grow
 * with the number of transfers in flight.
 */
#include "store/internal.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct dd_xfer {
	struct dd_job base;
	struct dd_store *st;
	int kind;
	char name[DD_OBJECT_NAME_SIZE];
	uint8_t id[32];
	uint32_t len;
	int rc;        /* 0 moved, DD_EXISTS already there, DD_EUNREACHABLE, -1 */
	int failed;    /* why: the error and its hint, kept from the worker thread */
	struct dd_error_saved why;
	uint64_t bytes;
	struct dd_run_obj *objs; /* DD_XFER_RUN: the objects, in the pack `name` */
	size_t nobjs;
	struct dd_xfer *next;
};

/*
 * A pack leaves the cache only if its bytes still hash to its name: the
 * store keeps whatever it is given for good (create-only), so a copy
 * damaged on this disk must be refused here, on every backend. A pack the
 * packer has just written and read back (DD_XFER_FRESH) was checked
 * moments ago from the same page cache, so it is not hashed twice.
 */
static int
check_cache_pack(struct dd_store *st, const char *name, const char *path)
{
	uint8_t want[32], sum[32];

	if (strncmp(name, "packs/", 6) || strlen(name) != 73 || dd_hex_decode(want, 32, name + 9) < 0)
		return 0;
	if (dd_pack_hash_file(sum, path) < 0)
		return dd_error_wrap("reading the local cache copy of %s", name);
	if (!memcmp(sum, want, 32))
		return 0;
	/* the same words as the S3 client's, which catches a change between this check and the upload */
	dd_error("the local cache copy of %s is damaged (its bytes do not match its name): its SHA-256 differs; "
		 "nothing was sent to %s", name, st->url);
	dd_hint("run `git dnadata verify --offline --read-data`; remove %s from the cache; the next snapshot makes "
		"that data again (or push from a clone whose cache has a good copy)", path);
	return -1;
}

static void
upload(struct dd_xfer *x)
{
	struct dd_store *st = x->st;
	char *path = st->cache->ops->local_path(st->cache, x->name);
	struct stat sb;
	int r, have = stat(path, &sb) == 0;

	if (have)
		x->bytes = (uint64_t)sb.st_size;
	if (x->kind == DD_XFER_ENSURE || !have) { /* a pack only the store has (this clone fetched objects) is fine */
		atomic_fetch_add(&st->requests, 1);
		r = st->be->ops->exists(st->be, x->name);
		if (r == 1) {
			x->rc = DD_EXISTS;
			goto out;
		}
		if (r < 0) {
			x->rc = r;
			goto out;
		}
	} else if (st->be->ops->caps & DD_BACKEND_CHEAP_EXISTS) {
		/*
		 * So is one the store has already, when asking costs a stat (a
		 * folder store): a snapshot over a folder store otherwise hashed
		 * every pack of the earlier snapshots again at each commit (their
		 * index files are not known to be in the store: no record is kept
		 * for it). Not there, or no answer: the upload below says what fails.
		 */
		if (st->be->ops->exists(st->be, x->name) == 1) {
			x->rc = DD_EXISTS;
			goto out;
		}
		dd_error_clear();
	}
	if (!have) {
		x->rc = dd_error("%s is in neither the local cache nor the store %s", x->name, st->url);
		dd_hint("the snapshot needing it cannot be pushed from this clone: push from a clone whose cache has "
			"it, or take a new snapshot (`git dnadata snapshot`)");
		goto out;
	}
	if (x->kind != DD_XFER_FRESH && check_cache_pack(st, x->name, path) < 0) {
		x->rc = -1;
		goto out;
	}
	atomic_fetch_add(&st->requests, 1);
	x->rc = st->be->ops->put_file(st->be, x->name, path);
	if (x->rc < 0 && x->rc != DD_EUNREACHABLE)
		dd_error_wrap("storing %s in %s", x->name, st->url);
out:
	free(path);
}

/* Each object of the job on its own (the path that explains a failure). */
static void
fetch_each(struct dd_xfer *x, struct dd_worker *wk)
{
	struct dd_buf plain = DD_BUF_INIT;

	x->rc = 0;
	for (size_t i = 0; i < x->nobjs && x->rc == 0; i++) {
		if (atomic_load(&x->st->unreachable)) {
			x->rc = DD_EUNREACHABLE;
			break;
		}
		x->rc = dd_store_get_object(x->st, DD_OBJ_DATA, x->objs[i].id, x->objs[i].plain_len, &plain, wk->zd);
		x->bytes += plain.len;
	}
	dd_buf_release(&plain);
}

/* A run of objects with one read; on any failure each is read on its own, which explains the failure. */
static void
fetch_run(struct dd_xfer *x, struct dd_worker *wk)
{
	x->rc = 0;
	if (dd_store_get_run(x->st, x->name, x->objs, x->nobjs, wk->zd, &x->bytes) == 0)
		return;
	fetch_each(x, wk);
}

/* A whole pack into the cache; when the store's copy is missing or damaged, the objects needed one by one. */
static void
fetch_pack(struct dd_xfer *x, struct dd_worker *wk)
{
	uint64_t size;
	int r = dd_store_fetch_pack(x->st, x->name, &size);

	if (r == 0 || r == DD_EXISTS) {
		x->rc = 0;
		for (size_t i = 0; i < x->nobjs; i++)
			x->bytes += x->objs[i].plain_len;
		return;
	}
	if (r != 1) {
		x->rc = r;
		return;
	}
	fetch_each(x, wk);
}

static void
xfer_run(struct dd_job *job, struct dd_worker *wk)
{
	struct dd_xfer *x = (struct dd_xfer *)job;
	struct dd_buf plain = DD_BUF_INIT;

	if (atomic_load(&x->st->unreachable)) {
		x->rc = DD_EUNREACHABLE;
		return;
	}
	if (x->kind == DD_XFER_OBJECT) {
		x->rc = dd_store_get_object(x->st, DD_OBJ_DATA, x->id, x->len, &plain, wk->zd);
		x->bytes = plain.len;
		dd_buf_release(&plain);
	} else if (x->kind == DD_XFER_RUN) {
		fetch_run(x, wk);
	} else if (x->kind == DD_XFER_PACK) {
		fetch_pack(x, wk);
	} else {
		upload(x);
	}
	if (x->rc == DD_EUNREACHABLE)
		dd_store_gone(x->st, x->rc); /* here: the backend's reason is this thread's error */
	if ((x->rc < 0 && x->rc != DD_EUNREACHABLE) || x->rc == DD_NOTFOUND) {
		if (!dd_error_last())
			dd_error(x->rc == DD_NOTFOUND ? "%s is missing" : "transferring %s failed", x->name);
		x->failed = 1;
		dd_error_save(&x->why);
	}
	dd_error_clear();
}

static int64_t
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Progress to the callback, at most ten times a second (always when `final`). */
static void
report(struct dd_store *st, const char *what, struct dd_xfer_batch *b, int final)
{
	struct dd_transfer_progress p = { what, b->done_bytes, b->total_bytes, b->done_files, b->n };
	int64_t t;

	if (!st->progress || !what)
		return;
	if (!final) {
		t = now_ms();
		if (t - b->last_report < 100)
			return;
		b->last_report = t;
	}
	st->progress(&p, st->progress_arg);
}

/* The first job of the batch has finished: count it (the first failure is kept) and free it. */
static void
reap_head(struct dd_store *st, struct dd_xfer_batch *b)
{
	struct dd_xfer *x = b->head;

	b->head = x->next;
	if (!b->head)
		b->tail = NULL;
	b->done_files += x->kind == DD_XFER_RUN || x->kind == DD_XFER_PACK ? x->nobjs : 1;
	b->done_bytes += x->kind == DD_XFER_OBJECT || x->kind == DD_XFER_RUN || x->kind == DD_XFER_PACK ? x->len : x->bytes;
	if (x->rc == DD_EUNREACHABLE) {
		dd_store_gone(st, x->rc);
	} else if (x->failed && !b->failed) {
		b->failed = x->rc == DD_NOTFOUND ? DD_NOTFOUND : -1;
		b->why = x->why;
	} else if (x->failed) {
		dd_error_saved_free(&x->why);
	} else if (x->rc == DD_EXISTS) {
		b->acc.skipped_files++;
		b->acc.skipped_bytes += x->bytes;
	} else {
		b->acc.files += x->kind == DD_XFER_RUN || x->kind == DD_XFER_PACK ? x->nobjs : 1;
		b->acc.bytes += x->bytes;
	}
	free(x->objs);
	free(x);
}

/*
 * The pool blocks a submit while 4 x `transfers` jobs are in flight, so
 * most of a big transfer is spent submitting, not in dd_xfer_wait(): count
 * what finished and report progress from there too (batches that report
 * progress belong to the submitting thread alone).
 */
static void
reap_done(struct dd_store *st, struct dd_xfer_batch *b)
{
	if (!b->what)
		return;
	while (b->head && dd_pool_is_done(st->xfer, &b->head->base))
		reap_head(st, b);
	report(st, b->what, b, 0);
}

/* Append x to the batch and start it. */
static void
enqueue(struct dd_store *st, struct dd_xfer_batch *b, struct dd_xfer *x, size_t files)
{
	x->base.run = xfer_run;
	x->st = st;
	if (b->tail)
		b->tail->next = x;
	else
		b->head = x;
	b->tail = x;
	b->n += files;
	b->total_bytes += x->len;
	dd_pool_submit(st->xfer, &x->base);
}

void
dd_xfer_submit(struct dd_store *st, struct dd_xfer_batch *b, int kind, const char *name, const uint8_t id[32],
	       uint32_t len)
{
	struct dd_xfer *x = dd_calloc(1, sizeof(*x));

	reap_done(st, b);
	x->kind = kind;
	snprintf(x->name, sizeof(x->name), "%s", name);
	if (id)
		memcpy(x->id, id, 32);
	if (kind != DD_XFER_OBJECT && !len) { /* the size, for progress totals */
		char *path = st->cache->ops->local_path(st->cache, name);
		struct stat sb;
		if (stat(path, &sb) == 0)
			len = (uint32_t)(sb.st_size > UINT32_MAX ? UINT32_MAX : sb.st_size);
		free(path);
	}
	x->len = len;
	enqueue(st, b, x, 1);
}

void
dd_xfer_submit_run(struct dd_store *st, struct dd_xfer_batch *b, int kind, const char *pack, struct dd_run_obj *objs,
		   size_t n)
{
	struct dd_xfer *x = dd_calloc(1, sizeof(*x));
	uint64_t len = 0;

	reap_done(st, b);
	x->kind = kind;
	snprintf(x->name, sizeof(x->name), "%s", pack);
	x->objs = objs;
	x->nobjs = n;
	for (size_t i = 0; i < n; i++)
		len += objs[i].plain_len;
	x->len = (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len);
	enqueue(st, b, x, n);
}

int
dd_xfer_wait(struct dd_store *st, struct dd_xfer_batch *b, const char *what, struct dd_transfer_stats *stats)
{
	const char *keep = b->what;
	int rc;

	if (!what)
		what = b->what;
	while (b->head) {
		while (!dd_pool_wait_for(st->xfer, &b->head->base, 100))
			report(st, what, b, 0);
		reap_head(st, b);
		report(st, what, b, 0);
	}
	if (b->n)
		report(st, what, b, 1);
	if (stats) {
		stats->files += b->acc.files;
		stats->bytes += b->acc.bytes;
		stats->skipped_files += b->acc.skipped_files;
		stats->skipped_bytes += b->acc.skipped_bytes;
	}
	rc = b->failed;
	if (rc)
		dd_error_restore(&b->why);
	memset(b, 0, sizeof(*b));
	b->what = keep;
	return rc;
}
