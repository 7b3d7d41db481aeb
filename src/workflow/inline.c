/*
 * workflow/inline.c: inline profiles (issue 18; docs/FORMAT.md §9). An
 * inline profile (`inline = yes`) keeps its data in git itself, as
 * .dnadata/inline/<profile>/schema.sql (normalised) and data.sql (rows as
 * COPY blocks, pg/sqlout.c), so a schema or seed-data change is a readable
 * `git diff`, and a clone restores it with no store and no key.
 *
 * Snapshot: the usual consistent dump (dd_pg_snapshot: one exported
 * REPEATABLE READ snapshot for pg_dump and every COPY) into a throwaway
 * store of its own (a temporary folder under <statedir> with a key made for
 * it, removed at the end: the clone's key and cache are not needed), read
 * back as the two files; the files and the ref are written and committed
 * together by one commit (put back if it fails). The ref's snapshot id is
 * the files' content hash (inline_id), so everything that compares ids
 * (the hooks' no-op check, status, the switch's records) works unchanged.
 *
 * Restore: the files at the revision are the truth. Their hash names the
 * snapshot (a ref that disagrees, after a hand edit of data.sql, is warned
 * about and the files win); the switch builds a new template from them
 * (pg/sqlload.c: schema.sql's pre-data part, data.sql, then its post-data
 * part, as pg_restore orders a load, into a database with the source's
 * encoding and locale) only when no stash, spare or template of that id
 * exists, and swaps it in like any restore: the previous database is
 * stashed.
 */
#include "workflow/workflow.h"
#include "workflow/internal.h"
#include "config/config.h"
#include "git/commit.h"
#include "git/ref.h"
#include "git/repo.h"
#include "pg/pg.h"
#include "pg/state.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/conninfo.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/sha256.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *
dd_inline_path(const char *profile, const char *file)
{
	return dd_asprintf(".dnadata/inline/%s/%s", profile, file);
}

void
dd_inline_id(const struct dd_buf *schema, const struct dd_buf *data, char id[65])
{
	uint8_t h[DD_SHA256_BYTES];
	char hs[65], hd[65];
	char *text;

	dd_sha256(h, schema->ptr ? schema->ptr : "", schema->len);
	dd_hex_encode(hs, h, sizeof(h));
	dd_sha256(h, data->ptr ? data->ptr : "", data->len);
	dd_hex_encode(hd, h, sizeof(h));
	text = dd_asprintf("schema.sql %s\ndata.sql %s\n", hs, hd);
	dd_sha256(h, text, strlen(text));
	dd_hex_encode(id, h, sizeof(h));
	free(text);
}

/* One of the profile's files, in the work tree (rev NULL) or at `rev`: 0, DD_NOTFOUND (error set), -1. */
static int
read_file(struct dd_buf *out, struct dd_repo *repo, const char *profile, const char *name, const char *rev)
{
	char *rel = dd_inline_path(profile, name), *abs = NULL;
	int rc;

	if (rev) {
		rc = dd_repo_read_at(out, repo, rev, rel);
	} else {
		abs = dd_repo_path(repo, rel);
		rc = dd_path_exists(abs) ? dd_file_read(out, abs) : DD_NOTFOUND;
	}
	if (rc == DD_NOTFOUND) {
		dd_error("inline profile %s has no %s%s%s", profile, rel, rev ? " at " : "", rev ? rev : "");
		dd_hint("take a snapshot with `git dnadata snapshot %s` (it writes both files)", profile);
	}
	free(abs);
	free(rel);
	return rc;
}

int
dd_inline_read(struct dd_inline *in, struct dd_repo *repo, const struct dd_profile *p, const char *rev,
	       struct dd_ref *ref)
{
	char id[65];

	if (read_file(&in->schema, repo, p->name, "schema.sql", rev) != 0 ||
	    read_file(&in->data, repo, p->name, "data.sql", rev) != 0)
		return dd_error_wrap("restoring inline profile %s", p->name);
	dd_inline_id(&in->schema, &in->data, id);
	if (strcmp(id, ref->snapshot)) {
		dd_warn("the files of inline profile %s (content hash %.12s) do not match its ref file (%.12s): loading "
			"the files; `git dnadata snapshot %s` after the restore makes them agree",
			p->name, id, ref->snapshot, p->name);
		memcpy(ref->snapshot, id, sizeof(id));
	}
	return 0;
}

void
dd_inline_release(struct dd_inline *in)
{
	dd_buf_release(&in->schema);
	dd_buf_release(&in->data);
}

/* ---- temporary folders ---- */

/* Remove <statedir>/<what>-<pid>-* folders whose process is gone (a kill -9 left them). */
static void
reap_tmpdirs(const char *statedir, const char *what)
{
	DIR *d = opendir(statedir);
	struct dirent *e;
	size_t wl = strlen(what);

	if (!d)
		return;
	while ((e = readdir(d))) {
		char *end;
		long pid;
		if (strncmp(e->d_name, what, wl) || e->d_name[wl] != '-')
			continue;
		pid = strtol(e->d_name + wl + 1, &end, 10);
		if (end == e->d_name + wl + 1 || *end != '-' || pid <= 0 || pid == (long)getpid() ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		char *path = dd_path_join(statedir, e->d_name);
		if (dd_rm_rf(path) < 0) {
			dd_debug("%s", dd_error_last());
			dd_error_clear();
		}
		free(path);
	}
	closedir(d);
}

char *
dd_inline_tmpdir(const char *statedir, const char *what)
{
	char *tmp;

	reap_tmpdirs(statedir, what);
	tmp = dd_asprintf("%s/%s-%ld-XXXXXX", statedir, what, (long)getpid());
	if (!mkdtemp(tmp)) {
		dd_error_errno("creating a temporary folder in %s", statedir);
		free(tmp);
		return NULL;
	}
	return tmp;
}

/* ---- snapshot ---- */

static int
put_buf(void *arg, const void *data, size_t len)
{
	dd_buf_put(arg, data, len);
	return 0;
}

/* Database `conninfo` (p's settings), dumped into a throwaway store under <statedir>, as schema.sql and data.sql. */
static int
dump_files(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p, const char *conninfo,
	   struct dd_pg_snapshot_stats *stats, struct dd_inline *out)
{
	char *tmp = dd_inline_tmpdir(repo->statedir, "inline"), *url = NULL;
	struct dd_pg_snapshot_opts o = { 0 };
	struct dd_pg_subset sb;
	struct dd_snapshot_writer *sw = NULL;
	struct dd_snapshot *snap = NULL;
	struct dd_store *st = NULL;
	char id[DD_ID_HEX_SIZE];
	int rc = -1, created;

	if (!tmp)
		return -1;
	url = dd_asprintf("file://%s/store", tmp);
	/* its "created the store" lines are about a store the user never sees (no thread runs yet) */
	enum dd_verbosity v = dd_log_verbosity();
	if (v < DD_VERBOSE)
		dd_log_set_verbosity(DD_QUIET);
	int r = dd_store_setup(url, tmp, NULL, &created);
	dd_log_set_verbosity(v);
	if (r < 0 || dd_store_open(&st, url, tmp, DD_STORE_OFFLINE) < 0 || dd_snapshot_begin(&sw, st) < 0)
		goto out;
	o.conninfo = conninfo;
	o.exclude_tables = (const char *const *)p->exclude_tables;
	o.exclude_data = (const char *const *)p->exclude_data;
	o.jobs = cfg->jobs;
	o.statedir = repo->statedir;
	o.lock_wait_timeout_ms = dd_config_lock_wait_timeout(cfg, p) * 1000;
	o.subset = dd_workflow_subset(cfg, p, &sb); /* issue 21 */
	if (dd_pg_snapshot(sw, &o, stats) < 0) {
		dd_snapshot_abort(sw);
		goto out;
	}
	if (dd_snapshot_commit(sw, id) < 0 || dd_snapshot_load(&snap, st, id) != 0)
		goto out;
	if (dd_pg_sql_schema(st, snap, &out->schema) < 0 || dd_pg_sql_data(st, snap, put_buf, &out->data) < 0)
		goto out;
	rc = 0;
out:
	dd_snapshot_free(snap);
	dd_store_free(st);
	if (dd_rm_rf(tmp) < 0) {
		dd_warn("%s", dd_error_last());
		dd_error_clear();
	}
	free(url);
	free(tmp);
	return rc;
}

static struct dd_ref *
new_ref(const char *id, const char *now, const struct dd_pg_snapshot_stats *stats)
{
	struct dd_ref *ref = dd_ref_new(id);
	char num[32];

	if (!ref)
		return NULL;
	dd_ref_set_info(ref, "created", now);
	dd_ref_set_info(ref, "inline", "yes");
	snprintf(num, sizeof(num), "%zu", stats->tables);
	dd_ref_set_info(ref, "tables", num);
	snprintf(num, sizeof(num), "%" PRIu64, stats->rows);
	dd_ref_set_info(ref, "rows", num);
	snprintf(num, sizeof(num), "%" PRIu64, stats->bytes);
	dd_ref_set_info(ref, "bytes", num);
	return ref;
}

/* The three files in place, committed together unless DD_SNAPSHOT_NO_COMMIT. */
static int
write_files(struct dd_repo *repo, const struct dd_profile *p, char *const rel[3], const struct dd_inline *in,
	    const struct dd_ref *ref, int flags, const char *msg)
{
	struct dd_buf reftext = DD_BUF_INIT;
	char *dir = dd_repo_path(repo, ".dnadata/inline"), *pdir = dd_path_join(dir, p->name), *what = NULL;
	struct dd_commit_file f[3] = {
		{ .path = rel[0], .data = reftext.ptr, .len = 0 },
		{ .path = rel[1], .data = in->schema.ptr ? in->schema.ptr : "", .len = in->schema.len },
		{ .path = rel[2], .data = in->data.ptr ? in->data.ptr : "", .len = in->data.len },
	};
	int rc = -1;

	dd_ref_format(&reftext, ref);
	f[0].data = reftext.ptr, f[0].len = reftext.len;
	if (dd_mkdir_p(pdir, 0777) < 0)
		goto out;
	if (flags & DD_SNAPSHOT_NO_COMMIT) {
		for (size_t i = 0; i < 3; i++) {
			char *abs = dd_repo_path(repo, rel[i]);
			int r = dd_file_write_atomic(abs, f[i].data, f[i].len, 0644, 0);
			free(abs);
			if (r < 0)
				goto out;
		}
	} else {
		what = msg && *msg ? dd_strdup(msg) : dd_asprintf("snapshot %s (%.12s, inline)", p->name, ref->snapshot);
		if (dd_commit_files(repo, f, 3, what, NULL) < 0) {
			dd_error_wrap("committing %s", rel[0]);
			goto out;
		}
	}
	rc = 0;
out:
	free(what);
	free(pdir);
	free(dir);
	dd_buf_release(&reftext);
	return rc;
}

/* Do the work tree's files hold exactly `in`? */
static int
files_equal(struct dd_repo *repo, const struct dd_profile *p, const struct dd_inline *in)
{
	struct dd_inline now = { DD_BUF_INIT, DD_BUF_INIT };
	int eq = read_file(&now.schema, repo, p->name, "schema.sql", NULL) == 0 &&
		 read_file(&now.data, repo, p->name, "data.sql", NULL) == 0 && now.schema.len == in->schema.len &&
		 now.data.len == in->data.len && !memcmp(dd_buf_cstr(&now.schema), dd_buf_cstr(&in->schema), in->schema.len) &&
		 !memcmp(dd_buf_cstr(&now.data), dd_buf_cstr(&in->data), in->data.len);

	dd_error_clear();
	dd_inline_release(&now);
	return eq;
}

int
dd_inline_snapshot(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
		   const char *source_db, int flags, const char *msg, char id_out[65])
{
	char *rel[3] = { dd_ref_path(p->name), dd_inline_path(p->name, "schema.sql"), dd_inline_path(p->name, "data.sql") };
	char *abs = dd_repo_path(repo, rel[0]), *now = dd_pg_now_iso(), *source = NULL;
	struct dd_inline in = { DD_BUF_INIT, DD_BUF_INIT };
	struct dd_pg_snapshot_stats stats;
	struct dd_ref *old = NULL, *ref = NULL;
	char id[65];
	int rc = -1, lock = -1, dblock = -1;

	id_out[0] = '\0';
	memset(&stats, 0, sizeof(stats));
	if (p->media && *p->media) {
		dd_error("inline profile %s has a media folder (%s): an inline profile keeps no media", p->name, p->media);
		dd_hint("remove `media` from [profile \"%s\"], or drop `inline = yes` to use the store", p->name);
		goto out;
	}
	if (dd_repo_lock_profile(repo, p->name, &lock) < 0 ||
	    dd_pg_state_lock(repo->statedir, dd_config_database(cfg, p), &dblock) < 0)
		goto out;
	if (!(flags & DD_SNAPSHOT_NO_COMMIT) && dd_commit_precheck(repo, (const char *const *)rel, 3) < 0)
		goto out;
	if (dd_ref_read_named(&old, abs, rel[0]) < 0)
		goto out;
	if (source_db && !(source = dd_conninfo_with_dbname(dd_config_database(cfg, p), source_db)))
		goto out;
	if (dump_files(repo, cfg, p, source ? source : dd_config_database(cfg, p), &stats, &in) < 0)
		goto out;
	dd_inline_id(&in.schema, &in.data, id);
	memcpy(id_out, id, sizeof(id));
	/* the working database holds what was dumped (another source database, or a subset of it: it does not) */
	if (!source_db && dd_workflow_captures_as_is(p) &&
	    dd_pg_state_set(repo->statedir, dd_config_database(cfg, p), id, p->name, "snapshot", stats.fingerprint) < 0) {
		dd_warn("%s", dd_error_last());
		dd_error_clear();
	}
	if (old && !strcmp(old->snapshot, id) && files_equal(repo, p, &in)) {
		dd_info("nothing changed: database %s is still inline snapshot %.12s", stats.database, id);
		if (!(flags & DD_SNAPSHOT_NO_COMMIT) &&
		    dd_commit_paths(repo, (const char *const *)rel, 3, "snapshot", NULL) < 0)
			goto out;
		rc = DD_UNCHANGED;
		goto out;
	}
	if (!(ref = new_ref(id, now, &stats)) || write_files(repo, p, rel, &in, ref, flags, msg) < 0)
		goto out;
	dd_info("snapshot %.12s of database %s: %zu tables, %" PRIu64 " rows, written to .dnadata/inline/%s/%s", id,
		stats.database, stats.tables, stats.rows, p->name,
		(flags & DD_SNAPSHOT_NO_COMMIT) ? " (not committed)" : "");
	rc = 0;
out:
	dd_unlock_file(dblock);
	dd_repo_unlock(lock);
	dd_ref_free(old);
	dd_ref_free(ref);
	dd_inline_release(&in);
	free(stats.fingerprint);
	if (source)
		explicit_bzero(source, strlen(source)); /* it may hold the password */
	free(source);
	free(now);
	free(abs);
	for (size_t i = 0; i < 3; i++)
		free(rel[i]);
	return rc;
}
