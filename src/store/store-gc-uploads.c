/*
 * store/store-gc-uploads.c: the store's gc of multipart uploads left
 * unfinished (docs/DESIGN-NOTES.md, "The store's gc"; RELIABILITY.md §5).
 *
 * An upload whose client died keeps its parts in the bucket, billed,
 * until it is completed or aborted. The client's own record (s3/upload.c)
 * resumes or aborts it when the same folder uploads again; an upload whose
 * record is gone (another machine, a cleared cache) is found only by
 * listing the store's uploads. Those started before the grace cutoff are
 * aborted; younger ones may be a push in progress elsewhere and stay, as
 * does one whose start the server did not give. Nothing here fails gc: a
 * listing or an abort that fails is a warning, and the next run tries
 * again.
 */
#include "store/internal.h"
#include "util/err.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

/*
 * Abort (a dry run: only count) upload u, old enough; a failure is warned
 * and counted. DD_EUNREACHABLE (not warned, not counted: the caller says
 * it once for all that are left), else 0.
 */
static int
abort_one(struct dd_store *st, const struct dd_backend_upload *u, int dry_run, struct dd_store_gc_uploads *res)
{
	struct dd_store_gc_upload *e;
	int r = dry_run ? 0 : st->be->ops->upload_abort(st->be, u);

	if (r == DD_EUNREACHABLE)
		return r;
	if (r != 0) {
		dd_warn("gc: cannot abort the unfinished upload of %s: %s (the next gc --store tries again)", u->key,
			dd_error_last() ? dd_error_last() : "unknown error");
		dd_error_clear();
		res->failed++;
		return 0;
	}
	res->v = dd_realloc(res->v, (res->n + 1) * sizeof(*res->v));
	e = &res->v[res->n++];
	e->key = dd_strdup(u->key);
	e->initiated = u->initiated;
	return 0;
}

void
dd_store_gc_uploads(struct dd_store *st, int64_t cutoff, int dry_run, struct dd_store_gc_uploads *res)
{
	struct dd_backend_upload *v = NULL;
	size_t n = 0;

	memset(res, 0, sizeof(*res));
	if (!st->be || !st->be->ops->uploads)
		return; /* a folder store has no such thing */
	if (st->be->ops->uploads(st->be, &v, &n) != 0) {
		dd_warn("gc: cannot list the unfinished multipart uploads of %s: %s (the next gc --store tries again)",
			st->url, dd_error_last() ? dd_error_last() : "unknown error");
		dd_error_clear();
		res->failed++;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i].initiated < 0 || v[i].initiated > cutoff) {
			res->young++; /* maybe a push in progress elsewhere; unknown counts as young */
		} else if (abort_one(st, &v[i], dry_run, res) == DD_EUNREACHABLE) {
			size_t left = 0; /* this one and the old ones after it: one line for all */
			for (size_t j = i; j < n; j++)
				left += v[j].initiated >= 0 && v[j].initiated <= cutoff;
			dd_warn("gc: the store %s cannot be reached: %zu unfinished upload%s not aborted (the next "
				"gc --store tries again): %s", st->url, left, left == 1 ? "" : "s",
				dd_error_last() ? dd_error_last() : "unreachable");
			dd_error_clear();
			res->failed += left;
			break;
		}
	}
	dd_backend_uploads_free(v, n);
}

void
dd_store_gc_uploads_release(struct dd_store_gc_uploads *res)
{
	for (size_t i = 0; i < res->n; i++)
		free(res->v[i].key);
	free(res->v);
	memset(res, 0, sizeof(*res));
}
