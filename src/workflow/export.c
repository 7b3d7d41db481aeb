/*
 * workflow/export.c: `export PROFILE --sql DIR` (issue 18): a profile's
 * snapshot as plain files for inspection or another tool, the old
 * "non-compact" dump: DIR/schema.sql (normalised), DIR/data.sql
 * (pg/sqlout.c; `psql -f schema.sql && psql -f data.sql` on an empty
 * database gives the snapshot's data back) and DIR/media/ when the
 * snapshot holds a media folder.
 *
 * Read from the snapshot the ref names (the local cache, else the store):
 * no database is needed. An inline profile's files are copied from git as
 * they are. DIR must be missing or empty, so nothing of the user's is
 * overwritten; each file is written atomically. The media folder is
 * applied with a state folder of its own (removed after), so the clone's
 * media records never name DIR.
 */
#include "workflow/workflow.h"
#include "workflow/internal.h"
#include "config/config.h"
#include "git/ref.h"
#include "git/repo.h"
#include "pg/pg.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* DIR missing (created) or an empty folder: 0; anything else: -1. */
static int
prepare_dir(const char *dir)
{
	DIR *d;
	struct dirent *e;
	int empty = 1;

	if (!dd_path_exists(dir))
		return dd_mkdir_p(dir, 0777);
	if (!dd_is_dir(dir))
		return dd_error("%s exists and is not a folder", dir);
	if (!(d = opendir(dir)))
		return dd_error_errno("reading %s", dir);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = 0;
	closedir(d);
	if (!empty) {
		dd_error("%s is not empty: export writes only into a new or empty folder", dir);
		dd_hint("name a new folder, e.g. `git dnadata export <profile> --sql /tmp/export-1`");
		return -1;
	}
	return 0;
}

static int
write_file(const char *dir, const char *name, const struct dd_buf *b)
{
	char *path = dd_path_join(dir, name);
	int rc = dd_file_write_atomic(path, b->ptr ? b->ptr : "", b->len, 0644, 0);

	free(path);
	return rc;
}

static int
atomic_put(void *arg, const void *data, size_t len)
{
	return dd_atomic_write(arg, data, len);
}

/* The snapshot's media folder into dir/media (none: nothing). */
static int
export_media(struct dd_repo *repo, struct dd_store *st, const struct dd_snapshot *snap, const char *dir,
	     uint64_t *files)
{
	const struct dd_stream_info *si = dd_snapshot_find(snap, DD_MEDIA_STREAM);
	char *root = dd_path_join(dir, "media"), *state = dd_path_join(repo->statedir, "export-XXXXXX");
	struct dd_media_opts mo = { .root = root, .force = 1, .progress = isatty(STDERR_FILENO) };
	struct dd_media_stats ms;
	int rc = -1;

	memset(&ms, 0, sizeof(ms));
	*files = 0;
	if (!si || !dd_stream_attr(si, "listing")) {
		rc = 0;
		goto out;
	}
	if (!mkdtemp(state)) {
		dd_error_errno("creating a temporary folder in %s", repo->statedir);
		goto out;
	}
	mo.statedir = state;
	if (dd_mkdir_p(root, 0777) == 0 && dd_media_apply(st, dd_snapshot_id(snap), &mo, &ms) >= 0) {
		*files = ms.files;
		rc = 0;
	} else {
		dd_error_wrap("exporting the media folder");
	}
	if (dd_rm_rf(state) < 0) {
		dd_warn("%s", dd_error_last());
		dd_error_clear();
	}
out:
	free(state);
	free(root);
	return rc;
}

static int
export_snapshot(struct dd_repo *repo, const struct dd_config *cfg, const char *id, const char *dir)
{
	struct dd_store *st = NULL;
	struct dd_snapshot *snap = NULL;
	struct dd_buf schema = DD_BUF_INIT;
	struct dd_atomic_file af;
	char *data = dd_path_join(dir, "data.sql");
	uint64_t files = 0;
	int rc = -1, r;

	memset(&af, 0, sizeof(af));
	if (dd_workflow_open_store_reading(&st, cfg, repo) < 0)
		goto out;
	if ((r = dd_snapshot_load(&snap, st, id)) != 0) {
		if (r == DD_NOTFOUND)
			dd_hint("run `git dnadata push` on the machine that took it, or check the store url");
		goto out;
	}
	if (dd_pg_sql_schema(st, snap, &schema) < 0 || write_file(dir, "schema.sql", &schema) < 0)
		goto out;
	if (dd_atomic_open(&af, data, 0644, 0) < 0)
		goto out;
	if (dd_pg_sql_data(st, snap, atomic_put, &af) < 0 || dd_atomic_commit(&af) < 0)
		goto out;
	if (export_media(repo, st, snap, dir, &files) < 0)
		goto out;
	dd_info("exported snapshot %.12s to %s: schema.sql, data.sql%s", id, dir,
		dd_snapshot_find(snap, DD_MEDIA_STREAM) ? ", media/" : "");
	rc = 0;
out:
	dd_atomic_abort(&af);
	dd_buf_release(&schema);
	dd_snapshot_free(snap);
	dd_store_free(st);
	free(data);
	return rc;
}

/* An inline profile: its files as git has them. */
static int
export_inline(struct dd_repo *repo, const struct dd_profile *p, const char *rev, struct dd_ref *ref, const char *dir)
{
	struct dd_inline in = { DD_BUF_INIT, DD_BUF_INIT };
	int rc = -1;

	if (dd_inline_read(&in, repo, p, rev, ref) == 0 && write_file(dir, "schema.sql", &in.schema) == 0 &&
	    write_file(dir, "data.sql", &in.data) == 0) {
		dd_info("exported inline profile %s (%.12s) to %s: schema.sql, data.sql", p->name, ref->snapshot, dir);
		rc = 0;
	}
	dd_inline_release(&in);
	return rc;
}

int
dd_workflow_export(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p, const char *rev,
		   const char *dir)
{
	char *rel = dd_ref_path(p->name);
	struct dd_ref *ref = NULL;
	struct dd_buf text = DD_BUF_INIT;
	int rc = -1, r;

	if (rev) {
		char *display = dd_asprintf("%s:%s", rev, rel);
		r = dd_repo_read_at(&text, repo, rev, rel);
		if (r == 0)
			r = dd_ref_parse(&ref, text.ptr ? text.ptr : "", text.len, display);
		free(display);
	} else {
		char *abs = dd_repo_path(repo, rel);
		r = dd_ref_read_named(&ref, abs, rel);
		free(abs);
	}
	if (r == DD_NOTFOUND) {
		dd_error("profile %s has no snapshot%s%s", p->name, rev ? " at " : " yet", rev ? rev : "");
		dd_hint("take one with `git dnadata snapshot %s`", p->name);
	}
	if (r != 0 || prepare_dir(dir) < 0)
		goto out;
	rc = p->is_inline ? export_inline(repo, p, rev, ref, dir) : export_snapshot(repo, cfg, ref->snapshot, dir);
out:
	if (rc < 0)
		dd_error_wrap("exporting profile %s", p->name);
	dd_buf_release(&text);
	dd_ref_free(ref);
	free(rel);
	return rc;
}
