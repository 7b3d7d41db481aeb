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
	char *err;
	uint64_t bytes;
	struct dd_run_obj *objs; /* DD_XFER_RUN: the objects, in the pack `name` */
	size_t nobjs;
	struct dd_xfer *next;
};

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
	}
	if (!have) {
		x->rc = dd_error("%s is in neither the local cache nor the store %s", x->name, st->url);
		goto out;
	}
	atomic_fetch_add(&st->requests, 1);
	x->rc = st->be->ops->put_file(st->be, x->name, path);
	if (x->rc < 0 && x->rc != DD_EUNREACHABLE)
		dd_error_wrap("storing %s in %s", x->name, st->url);
out:
	free(path);
}

/* A run of objects with one read; on any failure each is read on its own, which explains the failure. */
static void
fetch_run(struct dd_xfer *x, struct dd_worker *wk)
{
	struct dd_buf plain = DD_BUF_INIT;

	x->rc = 0;
	if (dd_store_get_run(x->st, x->name, x->objs, x->nobjs, wk->zd, &x->bytes) == 0)
		return;
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
	} else {
		upload(x);
	}
	if (x->rc < 0 && x->rc != DD_EUNREACHABLE)
		x->err = dd_strdup(dd_error_last() ? dd_error_last() : "transfer failed");
	else if (x->rc == DD_NOTFOUND)
		x->err = dd_strdup(dd_error_last() ? dd_error_last() : "missing");
	dd_error_clear();
}

void
dd_xfer_submit(struct dd_store *st, struct dd_xfer_batch *b, int kind, const char *name, const uint8_t id[32],
	       uint32_t len)
{
	struct dd_xfer *x = dd_calloc(1, sizeof(*x));

	x->base.run = xfer_run;
	x->st = st;
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
	if (b->tail)
		b->tail->next = x;
	else
		b->head = x;
	b->tail = x;
	b->n++;
	b->total_bytes += len;
	dd_pool_submit(st->xfer, &x->base);
}

void
dd_xfer_submit_run(struct dd_store *st, struct dd_xfer_batch *b, const char *pack, struct dd_run_obj *objs, size_t n)
{
	struct dd_xfer *x = dd_calloc(1, sizeof(*x));
	uint64_t len = 0;

	x->base.run = xfer_run;
	x->st = st;
	x->kind = DD_XFER_RUN;
	snprintf(x->name, sizeof(x->name), "%s", pack);
	x->objs = objs;
	x->nobjs = n;
	for (size_t i = 0; i < n; i++)
		len += objs[i].plain_len;
	x->len = (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len);
	if (b->tail)
		b->tail->next = x;
	else
		b->head = x;
	b->tail = x;
	b->n += n;
	b->total_bytes += x->len;
	dd_pool_submit(st->xfer, &x->base);
}

static int64_t
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Progress to the callback, at most ten times a second (always when `last` is NULL: the final one). */
static void
report(struct dd_store *st, const char *what, const struct dd_xfer_batch *b, uint64_t files, uint64_t bytes,
       int64_t *last)
{
	struct dd_transfer_progress p = { what, bytes, b->total_bytes, files, b->n };
	int64_t t;

	if (!st->progress || !what)
		return;
	if (last) {
		t = now_ms();
		if (t - *last < 100)
			return;
		*last = t;
	}
	st->progress(&p, st->progress_arg);
}

int
dd_xfer_wait(struct dd_store *st, struct dd_xfer_batch *b, const char *what, struct dd_transfer_stats *stats)
{
	uint64_t files = 0, bytes = 0;
	int64_t last = 0;
	int rc = 0;

	for (struct dd_xfer *x = b->head, *next; x; x = next) {
		while (!dd_pool_wait_for(st->xfer, &x->base, 100))
			report(st, what, b, files, bytes, &last);
		report(st, what, b, files, bytes, &last);
		next = x->next;
		files += x->kind == DD_XFER_RUN ? x->nobjs : 1;
		bytes += x->kind == DD_XFER_OBJECT || x->kind == DD_XFER_RUN ? x->len : x->bytes;
		if (x->rc == DD_EUNREACHABLE) {
			dd_store_gone(st, x->rc);
		} else if (x->err) {
			if (rc == 0) {
				dd_error("%s", x->err);
				rc = x->rc == DD_NOTFOUND ? DD_NOTFOUND : -1;
			}
		} else if (stats && x->rc == DD_EXISTS) {
			stats->skipped_files++;
			stats->skipped_bytes += x->bytes;
		} else if (stats) {
			stats->files += x->kind == DD_XFER_RUN ? x->nobjs : 1;
			stats->bytes += x->bytes;
		}
		free(x->err);
		free(x->objs);
		free(x);
	}
	if (b->n)
		report(st, what, b, files, bytes, NULL);
	memset(b, 0, sizeof(*b));
	return rc;
}
