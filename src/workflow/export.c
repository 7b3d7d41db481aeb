/*
 * workflow/export.c: `export PROFILE --sql DIR` (issue 18): a profile's
 * snapshot as plain files for inspection or another tool, the old
 * "non-compact" dump, in pg_dump's load order: DIR/schema.sql (the
 * normalised pre-data part: types, tables, functions, views), DIR/data.sql
 * (the rows, pg/sqlout.c, then the schema's post-data part: constraints,
 * indexes, triggers, materialized views' data), so `psql -f schema.sql -f
 * data.sql` on an empty database gives the snapshot back, and DIR/media/
 * when the snapshot holds a media folder.
 *
 * Both files are wrapped in pg_dump's guard (`\restrict KEY` ...
 * `\unrestrict KEY`, a random key per export): psql 17.6/16.10/15.14 and
 * later then refuse any meta-command in between. The schema text comes
 * from a manifest (hostile), so a line an older psql would run as a
 * meta-command (a backslash outside quoted text) is refused here too.
 *
 * Read from the snapshot the ref names (the local cache, else the store):
 * no database is needed. An inline profile's files are split the same way.
 * DIR must be missing or empty, so nothing of the user's is overwritten;
 * the files are written into a folder beside DIR, renamed to DIR at the
 * end (an empty DIR removed first) and removed on failure, so a failed
 * export leaves DIR as it was and can be run again. The media folder is
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
#include <sodium.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* DIR missing or an empty folder: 0 (*exists says which); anything else: -1. */
static int
check_dir(const char *dir, int *exists)
{
	DIR *d;
	struct dirent *e;
	int empty = 1;

	*exists = dd_path_exists(dir);
	if (!*exists)
		return 0;
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

/* A new folder beside DIR for the files, renamed into place once all are written. NULL on error. */
static char *
tmp_beside(const char *dir)
{
	char *parent = dd_path_dirname(dir), *tmp;

	if (dd_mkdir_p(parent, 0777) < 0) {
		free(parent);
		return NULL;
	}
	tmp = dd_asprintf("%s/.git-dnadata-tmp-export-%ld-XXXXXX", parent, (long)getpid());
	free(parent);
	if (!mkdtemp(tmp)) {
		dd_error_errno("creating a temporary folder beside %s", dir);
		free(tmp);
		return NULL;
	}
	return tmp;
}

/* pg_dump's guard against psql meta-commands: `\restrict KEY` ... `\unrestrict KEY` (psql 17.6+/16.10+/15.14+). */
static void
guard_key(char key[33])
{
	static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

	for (int i = 0; i < 32; i++)
		key[i] = alnum[randombytes_uniform(sizeof(alnum) - 1)];
	key[32] = '\0';
}

/* The export's two files: schema.sql = the pre-data part; data.sql = the rows, then the post-data part. */
struct files {
	char key[33];
	const char *schema; /* schema.sql as sqlout.c writes it (db line, pre-data, marker, post-data) */
	size_t pre_end, post_start, len;
};

static int
split_schema(struct files *f, const struct dd_buf *schema)
{
	f->schema = schema->ptr ? schema->ptr : "";
	f->len = schema->len;
	guard_key(f->key);
	return dd_pg_sql_schema_split(f->schema, f->len, 1, &f->pre_end, &f->post_start, "schema.sql");
}

static int
write_schema(const char *dir, const struct files *f)
{
	struct dd_buf b = DD_BUF_INIT;
	char *path = dd_path_join(dir, "schema.sql");
	int rc;

	dd_buf_printf(&b, "\\restrict %s\n", f->key);
	dd_buf_put(&b, f->schema, f->pre_end);
	dd_buf_printf(&b, "\n\\unrestrict %s\n", f->key);
	rc = dd_file_write_atomic(path, b.ptr, b.len, 0644, 0);
	free(path);
	dd_buf_release(&b);
	return rc;
}

static const char post_head[] =
	"\n-- The schema's post-data part (constraints, indexes, triggers, materialized views' data), after the\n"
	"-- rows, as pg_restore loads a dump.\n"
	"SELECT pg_catalog.set_config('search_path', '', false);\n"
	"SET check_function_bodies = false;\n"
	"SET client_min_messages = warning;\n\n";

static int
atomic_put(void *arg, const void *data, size_t len)
{
	return dd_atomic_write(arg, data, len);
}

/* data.sql: the guard, the rows (rows() writes them to af), the post-data part, the guard's end. */
static int
write_data(const char *dir, const struct files *f, int (*rows)(void *arg, struct dd_atomic_file *af), void *arg)
{
	struct dd_atomic_file af;
	struct dd_buf b = DD_BUF_INIT;
	char *path = dd_path_join(dir, "data.sql");
	int rc = -1;

	memset(&af, 0, sizeof(af));
	if (dd_atomic_open(&af, path, 0644, 0) < 0)
		goto out;
	dd_buf_printf(&b, "\\restrict %s\n", f->key);
	if (dd_atomic_write(&af, b.ptr, b.len) < 0 || rows(arg, &af) < 0)
		goto out;
	dd_buf_clear(&b);
	dd_buf_puts(&b, post_head);
	dd_buf_put(&b, f->schema + f->post_start, f->len - f->post_start);
	dd_buf_printf(&b, "\n\\unrestrict %s\n", f->key);
	if (dd_atomic_write(&af, b.ptr, b.len) < 0 || dd_atomic_commit(&af) < 0)
		goto out;
	rc = 0;
out:
	dd_atomic_abort(&af);
	dd_buf_release(&b);
	free(path);
	return rc;
}


/* The snapshot's media folder into dir/media (none: nothing). */
static int
export_media(struct dd_repo *repo, struct dd_store *st, const struct dd_snapshot *snap, const char *dir,
	     uint64_t *files)
{
	const struct dd_stream_info *si = dd_snapshot_find(snap, DD_MEDIA_STREAM);
	char *root = dd_path_join(dir, "media"), *state = NULL;
	struct dd_media_opts mo = { .root = root, .force = 1, .progress = isatty(STDERR_FILENO) };
	struct dd_media_stats ms;
	int rc = -1;

	memset(&ms, 0, sizeof(ms));
	*files = 0;
	if (!si || !dd_stream_attr(si, "listing")) {
		rc = 0;
		goto out;
	}
	if (!(state = dd_inline_tmpdir(repo->statedir, "export")))
		goto out;
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

struct snap_rows {
	struct dd_store *st;
	const struct dd_snapshot *snap;
};

static int
snap_rows(void *arg, struct dd_atomic_file *af)
{
	struct snap_rows *r = arg;

	return dd_pg_sql_data(r->st, r->snap, atomic_put, af);
}

static int
export_snapshot(struct dd_repo *repo, const struct dd_config *cfg, const char *id, const char *dir)
{
	struct dd_store *st = NULL;
	struct dd_snapshot *snap = NULL;
	struct dd_buf schema = DD_BUF_INIT;
	struct files f;
	uint64_t files = 0;
	int rc = -1, r;

	if (dd_workflow_open_store_reading(&st, cfg, repo) < 0)
		goto out;
	if ((r = dd_snapshot_load(&snap, st, id)) != 0) {
		if (r == DD_NOTFOUND)
			dd_hint("run `git dnadata push` on the machine that took it, or check the store url");
		goto out;
	}
	struct snap_rows sr = { st, snap };
	if (dd_pg_sql_schema(st, snap, &schema) < 0 || split_schema(&f, &schema) < 0 || write_schema(dir, &f) < 0 ||
	    write_data(dir, &f, snap_rows, &sr) < 0)
		goto out;
	if (export_media(repo, st, snap, dir, &files) < 0)
		goto out;
	rc = 0;
out:
	dd_buf_release(&schema);
	dd_snapshot_free(snap);
	dd_store_free(st);
	return rc;
}

static int
inline_rows(void *arg, struct dd_atomic_file *af)
{
	const struct dd_buf *data = arg;

	return dd_atomic_write(af, data->ptr ? data->ptr : "", data->len);
}

/* An inline profile: its files as git has them, in the export's layout (their meta-command lines refused). */
static int
export_inline(struct dd_repo *repo, const struct dd_profile *p, const char *rev, struct dd_ref *ref, const char *dir)
{
	struct dd_inline in = { DD_BUF_INIT, DD_BUF_INIT };
	struct files f;
	int rc = -1;

	if (dd_inline_read(&in, repo, p, rev, ref) == 0 && split_schema(&f, &in.schema) == 0 &&
	    dd_pg_sql_check_meta(in.data.ptr ? in.data.ptr : "", in.data.len, 1, "data.sql") == 0 &&
	    write_schema(dir, &f) == 0 && write_data(dir, &f, inline_rows, &in.data) == 0)
		rc = 0;
	dd_inline_release(&in);
	return rc;
}

/* The files into a folder beside DIR, renamed to DIR (an empty one removed first) once all are there. */
static int
export_into(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p, const char *rev,
	    struct dd_ref *ref, const char *dir)
{
	char *tmp = NULL;
	int exists, rc = -1;

	if (check_dir(dir, &exists) < 0 || !(tmp = tmp_beside(dir)))
		return -1;
	if ((p->is_inline ? export_inline(repo, p, rev, ref, tmp) : export_snapshot(repo, cfg, ref->snapshot, tmp)) < 0)
		goto out;
	if (exists && rmdir(dir) < 0) {
		dd_error_errno("removing the empty folder %s to put the export there", dir);
		goto out;
	}
	if (rename(tmp, dir) < 0) {
		dd_error_errno("renaming %s to %s", tmp, dir);
		goto out;
	}
	rc = 0;
out:
	if (rc < 0) {
		struct dd_error_saved saved;
		dd_error_save(&saved);
		if (dd_rm_rf(tmp) < 0)
			dd_warn("%s", dd_error_last());
		dd_error_restore(&saved); /* the export's own error is what main() prints */
	}
	free(tmp);
	return rc;
}

static int
has_media(const char *dir)
{
	char *m = dd_path_join(dir, "media");
	int r = dd_is_dir(m);

	free(m);
	return r;
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
	if (r != 0 || export_into(repo, cfg, p, rev, ref, dir) < 0)
		goto out;
	if (p->is_inline)
		dd_info("exported inline profile %s (%.12s) to %s: schema.sql, data.sql", p->name, ref->snapshot, dir);
	else
		dd_info("exported snapshot %.12s to %s: schema.sql, data.sql%s", ref->snapshot, dir,
			has_media(dir) ? ", media/" : "");
	rc = 0;
out:
	if (rc < 0)
		dd_error_wrap("exporting profile %s", p->name);
	dd_buf_release(&text);
	dd_ref_free(ref);
	free(rel);
	return rc;
}
