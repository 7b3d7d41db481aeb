/*
 * workflow/schema.c: a profile's normalised schema (issue 18; the rules in
 * pg/normalise.c): `schema-dump` and the automatic dump after a restore
 * write .dnadata/schema/<profile>.sql, and `promote-schema` makes one
 * profile's schema another's base.
 *
 * The schema file is written, never committed: the developer commits it
 * with the migration that changed it, so a review shows the schema change
 * next to the migration. It is rewritten only when its text changes (same
 * schema, same bytes, same mtime). After a restore only an existing file is
 * rewritten (see dd_workflow_schema_dump_after_restore).
 *
 * promote-schema checks before it changes anything: FROM's schema and TO's
 * rows are loaded into a scratch database beside TO's working database
 * (pg/load.c: recorded as pending, so a kill leaves it to the next
 * command's reaper) and a statement that fails refuses the promotion with
 * the server's message, naming the statement. Then, for a store-backed TO,
 * that scratch database is TO's new snapshot (dd_workflow_snapshot_from);
 * for an inline TO, FROM's schema becomes its schema.sql beside the same
 * data.sql. One commit either way; the scratch database is dropped
 * whatever happened.
 */
#include "workflow/workflow.h"
#include "workflow/internal.h"
#include "config/config.h"
#include "git/commit.h"
#include "git/ref.h"
#include "git/repo.h"
#include "pg/normalise.h"
#include "pg/pg.h"
#include "pg/state.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/sha256.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *
dd_workflow_schema_path(const char *profile)
{
	return dd_asprintf(".dnadata/schema/%s.sql", profile);
}

/*
 * p's working database, normalised: one text (split 0), or an inline
 * schema.sql's layout, the database line, pre-data, marker, post-data
 * (split 1, pg/sqlout.c).
 * Refused when the record says it holds another profile.
 */
static int
working_schema(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p, int split,
	       struct dd_buf *out)
{
	size_t post_at = 0;
	struct dd_pg_snapshot_opts o = { 0 };
	struct dd_pg_state state;
	struct dd_buf raw = DD_BUF_INIT;
	int rc = -1;

	if (dd_pg_state_read(&state, repo->statedir, dd_config_database(cfg, p)) < 0)
		return -1;
	if (state.profile && strcmp(state.profile, p->name)) {
		dd_error("the working database %s holds profile %s, not %s", state.database ? state.database : "?",
			 state.profile, p->name);
		dd_hint("run `git dnadata use %s` first", p->name);
		goto out;
	}
	o.conninfo = dd_config_database(cfg, p);
	o.exclude_tables = (const char *const *)p->exclude_tables;
	o.lock_wait_timeout_ms = dd_config_lock_wait_timeout(cfg, p) * 1000;
	if (dd_pg_schema_dump(&o, &raw, &post_at, split ? out : NULL) < 0)
		goto out;
	if (split ? dd_pg_sql_schema_join(raw.ptr ? raw.ptr : "", post_at, raw.ptr ? raw.ptr + post_at : "",
					   raw.len - post_at, out) < 0
		  : dd_schema_normalise(raw.ptr ? raw.ptr : "", raw.len, out) < 0)
		goto out;
	rc = 0;
out:
	dd_buf_release(&raw);
	dd_pg_state_release(&state);
	return rc;
}

int
dd_workflow_schema_dump(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p, int flags,
			char **rel_out)
{
	char *rel = dd_workflow_schema_path(p->name), *abs = dd_repo_path(repo, rel), *dir = NULL;
	struct dd_buf text = DD_BUF_INIT, old = DD_BUF_INIT;
	int rc = -1;

	if ((flags & DD_SCHEMA_DUMP_AUTO) && p->schema_dump == 0) {
		rc = DD_NOTHING_TO_DO;
		goto out;
	}
	if (working_schema(repo, cfg, p, 0, &text) < 0)
		goto out;
	if (dd_path_exists(abs) && dd_file_read(&old, abs) == 0 && old.len == text.len &&
	    (!text.len || !memcmp(old.ptr, text.ptr, text.len))) {
		rc = DD_UNCHANGED;
		goto out;
	}
	dd_error_clear();
	dir = dd_path_dirname(abs);
	if (dd_mkdir_p(dir, 0777) < 0 || dd_file_write_atomic(abs, text.ptr ? text.ptr : "", text.len, 0644, 0) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		dd_error_wrap("schema dump of profile %s", p->name);
	if (rel_out && rc >= 0)
		*rel_out = dd_strdup(rel);
	dd_buf_release(&text);
	dd_buf_release(&old);
	free(dir);
	free(abs);
	free(rel);
	return rc;
}

/*
 * The last automatic dump's record, <statedir>/schema-dump/<profile>:
 * "<snapshot> <sha256 of the file>\n". When a switch put exactly that
 * snapshot in place (no stash with local edits, no post_restore command)
 * and the file still holds what was written, the database's schema is that
 * text: no pg_dump (two runs, ~0.35 s), so switching back and forth between
 * branches stays as fast as the switch.
 */
static char *
record_path(const struct dd_repo *repo, const char *profile)
{
	return dd_asprintf("%s/schema-dump/%s", repo->statedir, profile);
}

static void
file_digest(const char *abs, char hex[2 * DD_SHA256_BYTES + 1])
{
	struct dd_buf text = DD_BUF_INIT;
	uint8_t d[DD_SHA256_BYTES];

	hex[0] = '\0';
	if (dd_file_read(&text, abs) == 0) {
		dd_sha256(d, text.ptr ? text.ptr : "", text.len);
		dd_hex_encode(hex, d, sizeof(d));
	}
	dd_error_clear();
	dd_buf_release(&text);
}

/* Does the record say the file holds `snapshot`'s schema, untouched since? */
static int
dump_is_current(const struct dd_repo *repo, const struct dd_profile *p, const char *snapshot)
{
	char *path = record_path(repo, p->name), *rel = dd_workflow_schema_path(p->name);
	char *abs = dd_repo_path(repo, rel), *want = NULL, hex[2 * DD_SHA256_BYTES + 1];
	struct dd_buf rec = DD_BUF_INIT;
	int yes = 0;

	if (snapshot && dd_path_exists(path) && dd_file_read(&rec, path) == 0) {
		file_digest(abs, hex);
		want = dd_asprintf("%s %s\n", snapshot, hex);
		yes = *hex && !strcmp(dd_buf_cstr(&rec), want);
	}
	dd_error_clear();
	dd_buf_release(&rec);
	free(want);
	free(abs);
	free(rel);
	free(path);
	return yes;
}

static void
record_dump(const struct dd_repo *repo, const struct dd_profile *p, const char *snapshot)
{
	char *path = record_path(repo, p->name), *dir = dd_path_dirname(path), *rel = dd_workflow_schema_path(p->name);
	char *abs = dd_repo_path(repo, rel), *text = NULL, hex[2 * DD_SHA256_BYTES + 1];

	file_digest(abs, hex);
	if (!snapshot || !*hex) {
		if (dd_path_exists(path))
			unlink(path);
	} else {
		text = dd_asprintf("%s %s\n", snapshot, hex);
		if (dd_mkdir_p(dir, 0777) < 0 || dd_file_write_atomic(path, text, strlen(text), 0644, 0) < 0) {
			dd_debug("no schema dump record: %s", dd_error_last());
			dd_error_clear();
		}
	}
	free(text);
	free(abs);
	free(rel);
	free(dir);
	free(path);
}

void
dd_workflow_schema_dump_after_restore(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
				      const char *snapshot)
{
	char *rel = NULL;
	int r;

	if (p->schema_dump == 0)
		return;
	/*
	 * Only a file that exists is kept up to date: one the restore created would be untracked, and git
	 * refuses to check out a branch that tracks it ("untracked working tree files would be overwritten").
	 * `schema-dump` creates it; once committed, every branch that has it keeps it current.
	 */
	rel = dd_workflow_schema_path(p->name);
	char *abs = dd_repo_path(repo, rel);
	int exists = dd_path_exists(abs);
	free(abs);
	free(rel);
	rel = NULL;
	if (!exists) {
		dd_debug("profile %s has no schema file: `git dnadata schema-dump %s` starts one", p->name, p->name);
		return;
	}
	if (dump_is_current(repo, p, snapshot)) {
		dd_debug("schema of profile %s: its file holds snapshot %.12s's already", p->name, snapshot);
		return;
	}
	r = dd_workflow_schema_dump(repo, cfg, p, DD_SCHEMA_DUMP_AUTO, &rel);
	if (r >= 0)
		record_dump(repo, p, snapshot);
	if (r == 0)
		dd_info("schema of profile %s written to %s (changed; not committed)", p->name, rel);
	else if (r == DD_UNCHANGED)
		dd_debug("schema of profile %s unchanged in %s", p->name, rel);
	else if (r < 0) {
		/* the restore is done: a schema file that could not be written costs a review line, not the data */
		dd_warn("%s (the restore is done; run `git dnadata schema-dump %s` later)", dd_error_last(), p->name);
		dd_error_clear();
	}
	free(rel);
}

/* ---- promote-schema ---- */

static int
put_buf(void *arg, const void *data, size_t len)
{
	dd_buf_put(arg, data, len);
	return 0;
}

/* The ref file of p in the work tree (DD_NOTFOUND with an error and hint when p has no snapshot). */
static int
read_work_ref(struct dd_ref **out, struct dd_repo *repo, const struct dd_profile *p)
{
	char *rel = dd_ref_path(p->name), *abs = dd_repo_path(repo, rel);
	int r = dd_ref_read_named(out, abs, rel);

	if (r == DD_NOTFOUND) {
		dd_error("profile %s has no snapshot yet (no %s)", p->name, rel);
		dd_hint("take one with `git dnadata snapshot %s`", p->name);
	}
	free(abs);
	free(rel);
	return r;
}

/*
 * The schema and/or the data.sql of p's snapshot (either may be NULL): an
 * inline profile's files, else from the manifest (local cache or store).
 */
static int
snapshot_sql(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p, struct dd_ref *ref,
	     struct dd_buf *schema, struct dd_buf *data)
{
	struct dd_store *st = NULL;
	struct dd_snapshot *snap = NULL;
	int rc = -1, r;

	if (p->is_inline) {
		struct dd_inline in = { DD_BUF_INIT, DD_BUF_INIT };
		if (dd_inline_read(&in, repo, p, NULL, ref) < 0)
			return -1;
		if (schema)
			dd_buf_put(schema, in.schema.ptr ? in.schema.ptr : "", in.schema.len);
		if (data)
			dd_buf_put(data, in.data.ptr ? in.data.ptr : "", in.data.len);
		dd_inline_release(&in);
		return 0;
	}
	if (dd_workflow_open_store_reading(&st, cfg, repo) < 0)
		return -1;
	r = dd_snapshot_load(&snap, st, ref->snapshot);
	if (r == DD_NOTFOUND) {
		dd_error("snapshot %.12s of profile %s is in neither the local cache nor the store", ref->snapshot, p->name);
		dd_hint("run `git dnadata fetch %s`, or `git dnadata push` on the machine that took it", p->name);
	}
	if (r != 0)
		goto out;
	if ((schema && dd_pg_sql_schema(st, snap, schema) < 0) || (data && dd_pg_sql_data(st, snap, put_buf, data) < 0))
		goto out;
	rc = 0;
out:
	if (rc < 0)
		dd_error_wrap("reading snapshot %.12s of profile %s", ref->snapshot, p->name);
	dd_snapshot_free(snap);
	dd_store_free(st);
	return rc;
}

/* FROM's schema: its working database when it is the active profile and holds its ref's snapshot, else its snapshot's. */
static int
from_schema(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *from, struct dd_buf *out,
	    const char **where)
{
	struct dd_ref *ref = NULL;
	struct dd_pg_state state;
	int rc = -1, working;

	memset(&state, 0, sizeof(state));
	if (read_work_ref(&ref, repo, from) != 0)
		return -1;
	if (dd_pg_state_read(&state, repo->statedir, dd_config_database(cfg, from)) < 0)
		goto out;
	working = cfg->active_profile && !strcmp(cfg->active_profile, from->name) && state.snapshot &&
		  state.profile && !strcmp(state.profile, from->name) && !strcmp(state.snapshot, ref->snapshot);
	*where = working ? "its working database" : "its snapshot";
	rc = working ? working_schema(repo, cfg, from, 1, out) : snapshot_sql(repo, cfg, from, ref, out, NULL);
out:
	dd_pg_state_release(&state);
	dd_ref_free(ref);
	return rc;
}

/* Load FROM's `schema` then TO's `data` into scratch database `db` on the server of `conninfo`. */
static int
check_load(const char *conninfo, const char *db, const struct dd_buf *schema, const struct dd_buf *data,
	   const char *from, const char *to)
{
	if (dd_pg_load_sql(conninfo, db, schema, data) == 0)
		return 0;
	/* its post-data part runs over the rows: a constraint or index the data breaks is the data's */
	if (strstr(dd_error_last(), "the schema") && !strstr(dd_error_last(), "post-data"))
		return dd_error_wrap("%s's schema does not load into an empty database", from);
	dd_error_wrap("%s's data does not load into %s's schema", to, from);
	dd_hint("migrate %s's data and snapshot it first, or change %s's schema so that the data fits", to, from);
	return -1;
}

/* An inline TO: FROM's schema as its schema.sql, the ref at the files' new id; one commit. */
static int
promote_inline(struct dd_repo *repo, const struct dd_profile *to, const struct dd_ref *old, const struct dd_buf *schema,
	       const struct dd_buf *data, const char *what, char id_out[65])
{
	char *rel[2] = { dd_ref_path(to->name), dd_inline_path(to->name, "schema.sql") };
	struct dd_ref *ref = NULL;
	struct dd_buf reftext = DD_BUF_INIT;
	char *now = dd_pg_now_iso();
	int rc = -1;

	dd_inline_id(schema, data, id_out);
	if (!(ref = dd_ref_new(id_out)))
		goto out;
	dd_ref_set_info(ref, "created", now);
	for (size_t i = 0; i < old->ninfo; i++)
		if (strcmp(old->info[i].key, "created"))
			dd_ref_set_info(ref, old->info[i].key, old->info[i].value);
	dd_ref_format(&reftext, ref);
	struct dd_commit_file f[2] = {
		{ .path = rel[0], .data = reftext.ptr, .len = reftext.len },
		{ .path = rel[1], .data = schema->ptr ? schema->ptr : "", .len = schema->len },
	};
	rc = dd_commit_files(repo, f, 2, what, NULL);
	if (rc < 0)
		dd_error_wrap("committing %s", rel[1]);
out:
	dd_buf_release(&reftext);
	dd_ref_free(ref);
	free(now);
	free(rel[0]);
	free(rel[1]);
	return rc < 0 ? -1 : rc;
}

int
dd_workflow_promote_schema(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *from,
			   const struct dd_profile *to, char id_out[65])
{
	const char *conninfo = dd_config_database(cfg, to), *where = NULL;
	char *rel[2] = { dd_ref_path(to->name), dd_inline_path(to->name, "schema.sql") }, *scratch = NULL;
	char *what = dd_asprintf("promote-schema %s -> %s", from->name, to->name);
	struct dd_buf schema = DD_BUF_INIT, data = DD_BUF_INIT;
	struct dd_ref *toref = NULL;
	int rc = -1;

	id_out[0] = '\0';
	if (!strcmp(from->name, to->name)) {
		dd_error("promote-schema needs two profiles: %s is both FROM and TO", from->name);
		goto out;
	}
	if (dd_commit_precheck(repo, (const char *const *)rel, to->is_inline ? 2 : 1) < 0 ||
	    read_work_ref(&toref, repo, to) != 0)
		goto out;
	if (from_schema(repo, cfg, from, &schema, &where) < 0 || snapshot_sql(repo, cfg, to, toref, NULL, &data) < 0)
		goto out;
	dd_info("checking that %s's data loads into %s's schema (from %s)", to->name, from->name, where);
	if (dd_pg_scratch_create(repo->statedir, conninfo, &scratch) < 0)
		goto out;
	if (check_load(conninfo, scratch, &schema, &data, from->name, to->name) == 0) {
		if (to->is_inline)
			rc = promote_inline(repo, to, toref, &schema, &data, what, id_out);
		else
			rc = dd_workflow_snapshot_from(repo, cfg, to, scratch, DD_SNAPSHOT_KEEP_MEDIA, what, id_out);
	}
	dd_pg_scratch_drop(repo->statedir, conninfo, scratch); /* keeps our error, if any */
out:
	if (rc < 0)
		dd_error_wrap("promote-schema %s -> %s", from->name, to->name);
	dd_buf_release(&schema);
	dd_buf_release(&data);
	dd_ref_free(toref);
	free(scratch);
	free(what);
	free(rel[0]);
	free(rel[1]);
	return rc;
}
