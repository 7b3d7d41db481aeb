/*
 * pg/restore.c: build a database from a snapshot, then swap it into place.
 *
 * Invariant: the working database is never modified. Everything happens in
 * a fresh database <db>__dnadata_new_<pid> (recorded as "pending" in
 * <statedir>/pg first, so a copy left behind by kill -9 is dropped by the
 * next restore). Only when it is complete does one transaction rename the
 * working database to a stash (<db>__dnadata_stash_<time>, kept and
 * recorded) and the new one into its place: ALTER DATABASE ... RENAME is
 * transactional, so the swap is all or nothing. Any failure or interrupt
 * (SIGINT/SIGTERM) before that drops only the new copy.
 *
 * Order, as pg_restore does it but streamed from the store:
 *   1. CREATE DATABASE ... TEMPLATE template0 with the source's encoding and
 *      locale; pre-data (types, tables, functions ...) in one session;
 *   2. rows: parallel sessions, each table in its own transaction
 *      TRUNCATE + COPY ... FROM STDIN (FREEZE): the TRUNCATE makes the
 *      table "new in this transaction", so rows are written frozen (no
 *      later vacuum/hint-bit rewrite, and no WAL under wal_level=minimal);
 *      large objects; sequence values;
 *   3. post-data split into entries (schema.c) and run in phases so
 *      independent work runs in parallel: indexes and PK/UNIQUE/CHECK
 *      constraints (parallel), index attachments (serial, in order),
 *      foreign keys (parallel, retried on deadlock), the rest (triggers,
 *      rules, policies, materialized view refreshes, comments ...) serially
 *      in pg_dump's order;
 *   4. ANALYZE of every table, in parallel.
 * The swap transaction also reads the new database's change fingerprint
 * (change.c): the rename has waited for all our sessions on it to exit (so
 * their statistics are flushed) and nobody can connect before the commit,
 * so it describes exactly the restored state.
 * Other sessions on the working database block the swap: we refuse and list
 * them, or with `terminate` end them (pg_terminate_backend) and retry.
 */
#include "pg/internal.h"
#include "pg/pg.h"
#include "pg/state.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum task_kind { TASK_SQL, TASK_COPY, TASK_LO };

struct task {
	enum task_kind kind;
	char *sql;                        /* TASK_SQL */
	const struct dd_stream_info *si;  /* TASK_COPY, TASK_LO */
	char *table, *cols;
	uint64_t size, done_bytes;
	volatile int state;
};

struct runner {
	const char *conninfo;
	const char *dbname;
	const char *preamble;  /* run once per session (SET lines of the post-data script) */
	struct dd_store *st;
	struct task **tasks;
	size_t n, next, done;  /* under w.lock, like bytes */
	uint64_t bytes;
	uint64_t total_bytes;  /* for the progress line; 0: count tasks only */
	struct dd_pg_workers w;
	const char *phase;
};

/* Line number in `sql` of the 1-based character position `pos` (bytes, close enough). */
static int
error_line(const char *sql, const PGresult *res)
{
	const char *p = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
	long pos = p ? strtol(p, NULL, 10) : 0;
	int line = 1;

	for (long i = 0; sql[i] && i < pos - 1; i++)
		if (sql[i] == '\n')
			line++;
	return pos > 0 ? line : 0;
}

/* Run a script of several statements; errors name the statement's first line. */
static int
exec_script(PGconn *c, const char *sql, int *sqlstate_deadlock)
{
	PGresult *res = PQexec(c, sql);
	ExecStatusType s = PQresultStatus(res);
	int rc = 0;

	if (sqlstate_deadlock)
		*sqlstate_deadlock = 0;
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		if (sqlstate_deadlock && !strcmp(dd_pg_sqlstate(res), "40P01"))
			*sqlstate_deadlock = 1;
		dd_pg_error(c, res);
		int line = error_line(sql, res);
		if (line > 0) {
			/* the statement's text, shortened, helps find the object */
			const char *l = sql;
			for (int i = 1; i < line && l; i++) {
				l = strchr(l, '\n');
				if (l)
					l++;
			}
			if (l) {
				size_t len = strcspn(l, "\n");
				dd_error_wrap("at \"%.*s%s\"", (int)(len > 80 ? 80 : len), l, len > 80 ? "..." : "");
			}
		}
		if (!strcmp(dd_pg_sqlstate(res), "42704") && strstr(dd_error_last(), "role"))
			dd_hint("create the missing role (CREATE ROLE name) on this server, then restore again");
		rc = -1;
	}
	PQclear(res);
	return rc;
}

static int
run_copy(PGconn *c, struct runner *r, struct task *t)
{
	struct dd_stream_reader *rd = NULL;
	PGresult *res = NULL;
	const void *data;
	size_t len;
	int rc = -1, n;
	char *sql;

	if (t->kind == TASK_LO)
		sql = dd_strdup("CREATE TEMP TABLE dd_lo (loid oid, off int8, data bytea);"
				"COPY pg_temp.dd_lo FROM STDIN");
	else if (t->cols && *t->cols)
		sql = dd_asprintf("BEGIN; TRUNCATE ONLY %s; COPY %s (%s) FROM STDIN WITH (FREEZE)", t->table, t->table,
				  t->cols);
	else
		sql = dd_asprintf("BEGIN; TRUNCATE ONLY %s; COPY %s FROM STDIN WITH (FREEZE)", t->table, t->table);
	res = PQexec(c, sql);
	free(sql);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		dd_pg_error(c, res);
		goto fail;
	}
	PQclear(res);
	res = NULL;
	if (dd_stream_open(&rd, r->st, t->si) < 0) {
		PQputCopyEnd(c, "snapshot stream unreadable");
		goto drain;
	}
	while ((n = dd_stream_next(rd, &data, &len)) > 0) {
		if (PQputCopyData(c, data, (int)len) != 1) {
			dd_pg_error(c, NULL);
			goto drain;
		}
		t->done_bytes += len;
		pthread_mutex_lock(&r->w.lock);
		r->bytes += len;
		pthread_mutex_unlock(&r->w.lock);
		if (dd_pg_workers_stopped(&r->w)) {
			dd_error(dd_pg_interrupted() ? "interrupted" : "stopped");
			PQputCopyEnd(c, "stopped");
			goto drain;
		}
	}
	if (n < 0) {
		char *why = dd_strdup(dd_error_last() ? dd_error_last() : "read error");
		PQputCopyEnd(c, "snapshot stream unreadable");
		while ((res = PQgetResult(c)))
			PQclear(res);
		dd_error("%s", why);
		free(why);
		goto fail;
	}
	if (PQputCopyEnd(c, NULL) != 1) {
		dd_pg_error(c, NULL);
		goto drain;
	}
	res = PQgetResult(c);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		dd_pg_error(c, res);
		goto drain;
	}
	PQclear(res);
	res = NULL;
	while ((res = PQgetResult(c)))
		PQclear(res);
	if (t->kind == TASK_LO)
		rc = dd_pg_exec(c, "SELECT pg_catalog.lo_put(loid, off, data) FROM pg_temp.dd_lo ORDER BY loid, off;"
				   "DROP TABLE pg_temp.dd_lo");
	else
		rc = dd_pg_exec(c, "COMMIT");
	goto out;
drain:
	{
		char *why = dd_strdup(dd_error_last() ? dd_error_last() : "COPY failed");
		while ((res = PQgetResult(c)))
			PQclear(res);
		dd_error("%s", why);
		free(why);
	}
fail:
	rc = -1;
out:
	if (rc < 0)
		dd_error_wrap("loading %s", t->table ? t->table : "large objects");
	if (rd)
		dd_stream_close(rd);
	PQclear(res);
	return rc;
}

static void
run_worker(void *arg)
{
	struct runner *r = arg;
	PGconn *c = NULL;

	if (dd_pg_connect(&c, r->conninfo, r->dbname) < 0) {
		dd_pg_workers_fail(&r->w);
		return;
	}
	dd_pg_cancel_register(c);
	if (dd_pg_exec(c, "SET synchronous_commit = off; SET maintenance_work_mem = '256MB'") < 0 ||
	    (r->preamble && exec_script(c, r->preamble, NULL) < 0)) {
		dd_pg_workers_fail(&r->w);
		goto out;
	}
	for (;;) {
		struct task *t = NULL;
		pthread_mutex_lock(&r->w.lock);
		if (!r->w.failed && r->next < r->n)
			t = r->tasks[r->next++];
		pthread_mutex_unlock(&r->w.lock);
		if (!t || dd_pg_interrupted())
			break;
		t->state = 1;
		int rc;
		if (t->kind == TASK_SQL) {
			int deadlock = 0;
			for (int attempt = 0;; attempt++) {
				rc = exec_script(c, t->sql, &deadlock);
				if (rc == 0 || !deadlock || attempt >= 5)
					break;
				usleep(100000 * (useconds_t)(attempt + 1));
			}
		} else {
			rc = run_copy(c, r, t);
		}
		if (rc < 0) {
			if (t->kind == TASK_SQL && !dd_pg_interrupted())
				dd_error_wrap("%s", r->phase);
			dd_pg_workers_fail(&r->w);
			break;
		}
		t->state = 2;
		pthread_mutex_lock(&r->w.lock);
		r->done++;
		pthread_mutex_unlock(&r->w.lock);
	}
out:
	dd_pg_cancel_unregister(c);
	PQfinish(c);
}

static void
show_progress(void *arg, double el)
{
	struct runner *r = arg;
	uint64_t total_bytes = r->total_bytes;

	pthread_mutex_lock(&r->w.lock);
	size_t done = r->done;
	uint64_t bytes = r->bytes;
	pthread_mutex_unlock(&r->w.lock);
	if (total_bytes) {
		char b[32], tot[32], rate[32], eta[32] = "";
		dd_pg_format_bytes(b, sizeof(b), (double)bytes);
		dd_pg_format_bytes(tot, sizeof(tot), (double)total_bytes);
		dd_pg_format_bytes(rate, sizeof(rate), el > 0 ? bytes / el : 0);
		if (bytes > 0 && bytes < total_bytes) {
			double left = el * (double)(total_bytes - bytes) / (double)bytes;
			snprintf(eta, sizeof(eta), ", ETA %d:%02d", (int)left / 60, (int)left % 60);
		}
		dd_progress("restore: %s %zu/%zu, %s of %s, %s/s%s", r->phase, done, r->n, b, tot, rate, eta);
	} else {
		dd_progress("restore: %s %zu/%zu", r->phase, done, r->n);
	}
}

/* Run r->tasks on `jobs` sessions; returns 0 or -1 with the first error. */
static int
run_tasks(struct runner *r, int jobs, uint64_t total_bytes)
{
	size_t nthreads = (size_t)jobs;
	double start = dd_pg_seconds();

	if (r->n == 0)
		return 0;
	if (nthreads > r->n)
		nthreads = r->n;
	if (nthreads < 1)
		nthreads = 1;
	r->total_bytes = total_bytes;
	if (dd_pg_workers_run(&r->w, nthreads, run_worker, r, show_progress, r) < 0)
		return -1;
	dd_debug("restore: %s: %zu tasks in %.2fs", r->phase, r->n, dd_pg_seconds() - start);
	return 0;
}

static void
runner_init(struct runner *r, const struct dd_pg_restore_opts *o, const char *db, struct dd_store *st,
	    const char *phase)
{
	memset(r, 0, sizeof(*r));
	r->conninfo = o->conninfo;
	r->dbname = db;
	r->st = st;
	r->phase = phase;
	dd_pg_workers_init(&r->w);
}

static void
runner_release(struct runner *r)
{
	free(r->tasks);
	dd_pg_workers_release(&r->w);
}

static int
read_stream(struct dd_store *st, const struct dd_snapshot *snap, const char *name, struct dd_buf *out,
	    int required)
{
	const struct dd_stream_info *si = dd_snapshot_find(snap, name);
	struct dd_stream_reader *rd;
	const void *data;
	size_t len;
	int n;

	if (!si) {
		if (required)
			return dd_error("snapshot %.12s has no stream \"%s\" (not a PostgreSQL snapshot?)",
					dd_snapshot_id(snap), name);
		return 1;
	}
	if (dd_stream_open(&rd, st, si) < 0)
		return dd_error_wrap("reading %s", name);
	while ((n = dd_stream_next(rd, &data, &len)) > 0)
		dd_buf_put(out, data, len);
	dd_stream_close(rd);
	if (n < 0)
		return dd_error_wrap("reading %s", name);
	return 0;
}

static int
cmp_task_size(const void *a, const void *b)
{
	const struct task *x = *(struct task *const *)a, *y = *(struct task *const *)b;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return 0;
}

/* ---- sessions on the working database ---- */

static int
other_sessions(PGconn *m, const char *db, struct dd_buf *list, int *count)
{
	const char *params[] = { db };
	PGresult *res = dd_pg_query(m,
				    "SELECT pid, coalesce(nullif(application_name, ''), 'unnamed'),"
				    " coalesce(host(client_addr), 'local socket'), coalesce(usename, '?')"
				    " FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
				    " ORDER BY pid",
				    1, params);
	if (!res)
		return -1;
	*count = PQntuples(res);
	for (int i = 0; i < *count; i++) {
		if (i)
			dd_buf_puts(list, ", ");
		if (i == 5) {
			dd_buf_printf(list, "and %d more", *count - 5);
			break;
		}
		dd_buf_printf(list, "%s (%s, user %s, pid %s)", PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
			      PQgetvalue(res, i, 3), PQgetvalue(res, i, 0));
	}
	PQclear(res);
	return 0;
}

static int
refuse_sessions(PGconn *m, const char *db)
{
	struct dd_buf list = DD_BUF_INIT;
	int n = 0;

	if (other_sessions(m, db, &list, &n) < 0)
		return -1;
	if (n == 0) {
		dd_buf_release(&list);
		return 0;
	}
	dd_error("database %s is in use by %d other session%s: %s", db, n, n == 1 ? "" : "s", list.ptr);
	dd_hint("close them, or run with --terminate (or set terminate_connections = true) to end them");
	dd_buf_release(&list);
	return -1;
}

static int
terminate_sessions(PGconn *m, const char *db)
{
	const char *params[] = { db };
	PGresult *res = dd_pg_query(m,
				    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
				    " WHERE datname = $1 AND pid <> pg_backend_pid()",
				    1, params);
	if (!res)
		return dd_error_wrap("ending the sessions on database %s", db);
	if (strcmp(PQgetvalue(res, 0, 0), "0"))
		dd_info("ended %s session(s) on database %s", PQgetvalue(res, 0, 0), db);
	PQclear(res);
	/* wait (up to 5 s) until they are gone */
	for (int i = 0; i < 50; i++) {
		struct dd_buf l = DD_BUF_INIT;
		int n = 0;
		if (other_sessions(m, db, &l, &n) < 0)
			return -1;
		dd_buf_release(&l);
		if (n == 0)
			return 0;
		usleep(100000);
	}
	return 0;
}

static int
db_exists(PGconn *m, const char *name, int *exists)
{
	const char *params[] = { name };
	PGresult *res = dd_pg_query(m, "SELECT 1 FROM pg_database WHERE datname = $1", 1, params);

	if (!res)
		return -1;
	*exists = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

static int
drop_db(PGconn *m, const char *name)
{
	char *q = dd_pg_quote_ident(name);
	char *sql = PQserverVersion(m) >= 130000 ? dd_asprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", q)
						 : dd_asprintf("DROP DATABASE IF EXISTS %s", q);
	int rc = -1;

	/* our own sessions may take a moment to go away */
	for (int i = 0; i < 20 && rc < 0; i++) {
		rc = dd_pg_exec(m, sql);
		if (rc < 0)
			usleep(250000);
	}
	free(sql);
	free(q);
	return rc;
}

static int
create_db(PGconn *m, const char *name, const struct dd_stream_info *pre)
{
	const char *enc = dd_stream_attr(pre, "encoding"), *coll = dd_stream_attr(pre, "lc_collate"),
		   *ctype = dd_stream_attr(pre, "lc_ctype"), *prov = dd_stream_attr(pre, "locale_provider"),
		   *icu = dd_stream_attr(pre, "icu_locale");
	struct dd_buf sql = DD_BUF_INIT;
	char *q = dd_pg_quote_ident(name);
	int rc;

	dd_buf_printf(&sql, "CREATE DATABASE %s TEMPLATE template0", q);
	if (enc) {
		char *l = dd_pg_quote_literal(enc);
		dd_buf_printf(&sql, " ENCODING %s", l);
		free(l);
	}
	size_t base = sql.len;
	if (coll && ctype) {
		char *a = dd_pg_quote_literal(coll), *b = dd_pg_quote_literal(ctype);
		dd_buf_printf(&sql, " LC_COLLATE %s LC_CTYPE %s", a, b);
		free(a);
		free(b);
	}
	if (prov && !strcmp(prov, "i") && icu && PQserverVersion(m) >= 150000) {
		char *l = dd_pg_quote_literal(icu);
		dd_buf_printf(&sql, " LOCALE_PROVIDER icu ICU_LOCALE %s", l);
		free(l);
	}
	rc = dd_pg_exec(m, sql.ptr);
	if (rc < 0 && (strstr(dd_error_last(), "locale") || strstr(dd_error_last(), "collation"))) {
		dd_warn("cannot create the database with the snapshot's locale (%s); using the server's default",
			dd_error_last());
		dd_buf_truncate(&sql, base);
		rc = dd_pg_exec(m, sql.ptr);
	}
	if (rc < 0)
		dd_error_wrap("creating database %s", name);
	if (rc < 0 && strstr(dd_error_last(), "permission denied"))
		dd_hint("the user needs the CREATEDB privilege (ALTER ROLE name CREATEDB)");
	dd_buf_release(&sql);
	free(q);
	return rc;
}

static char *
stamp_suffix(const char *what)
{
	char buf[32];
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y%m%d%H%M%S", &tm);
	return dd_asprintf("__dnadata_%s_%s", what, buf);
}

/* ---- the load itself, into database `db` ---- */

static int
load(struct dd_store *st, const struct dd_snapshot *snap, const struct dd_pg_restore_opts *o, const char *db,
     int jobs, char **seq_fp)
{
	struct dd_buf pre = DD_BUF_INIT, post = DD_BUF_INIT, seq = DD_BUF_INIT, sql = DD_BUF_INIT;
	struct dd_schema_entry *entries = NULL;
	size_t nentries = 0, ntasks = 0;
	struct task *tasks = NULL;
	PGconn *c = NULL;
	PGresult *res = NULL;
	int rc = -1;
	double t0 = dd_pg_seconds();
	uint64_t total = 0;

	if (read_stream(st, snap, "schema/pre-data", &pre, 1) < 0 ||
	    read_stream(st, snap, "schema/post-data", &post, 1) < 0 ||
	    read_stream(st, snap, "sequences", &seq, 0) < 0)
		goto out;
	if (dd_pg_connect(&c, o->conninfo, db) < 0)
		goto out;
	dd_pg_cancel_register(c);
	dd_progress("restore: schema");
	if (exec_script(c, pre.ptr ? pre.ptr : "", NULL) < 0) {
		dd_error_wrap("restoring the schema (pre-data)");
		goto out;
	}
	dd_debug("restore: pre-data in %.2fs", dd_pg_seconds() - t0);

	/* rows and large objects */
	size_t ns = dd_snapshot_count(snap);
	tasks = dd_calloc(ns + 1, sizeof(*tasks));
	for (size_t i = 0; i < ns; i++) {
		const struct dd_stream_info *si = dd_snapshot_stream(snap, i);
		const char *name = dd_stream_name(si);
		struct task *t;
		if (!strncmp(name, "data/", 5)) {
			/*
			 * `table` and `columns` go into the TRUNCATE/COPY text as
			 * they are. That is safe because the manifest is
			 * authenticated (AEAD with the store key, FORMAT.md §4): only
			 * a holder of the key could have written them, and dump.c
			 * writes them quoted by the server. Checking that they are
			 * well-formed quoted names is defence in depth, should a
			 * damaged or forged manifest ever get past that.
			 */
			const char *table = dd_stream_attr(si, "table");
			const char *cols = dd_stream_attr(si, "columns");
			if (!table)
				table = name + 5;
			if (!dd_pg_is_qualified_name(table) || (cols && !dd_pg_is_column_list(cols))) {
				dd_error("damaged snapshot %.12s: stream \"%s\" has a malformed %s name", dd_snapshot_id(snap),
					 name, dd_pg_is_qualified_name(table) ? "column" : "table");
				goto out;
			}
			t = &tasks[ntasks++];
			t->kind = TASK_COPY;
			t->table = dd_strdup(table);
			t->cols = cols ? dd_strdup(cols) : NULL;
		} else if (!strcmp(name, "largeobjects")) {
			t = &tasks[ntasks++];
			t->kind = TASK_LO;
		} else {
			continue;
		}
		t->si = si;
		t->size = dd_stream_size(si);
		total += t->size;
	}
	{
		struct runner r;
		runner_init(&r, o, db, st, "loading rows");
		r.tasks = dd_calloc(ntasks + 1, sizeof(struct task *));
		for (size_t i = 0; i < ntasks; i++)
			r.tasks[i] = &tasks[i];
		qsort(r.tasks, ntasks, sizeof(struct task *), cmp_task_size);
		r.n = ntasks;
		int x = run_tasks(&r, jobs, total);
		runner_release(&r);
		if (x < 0)
			goto out;
	}
	dd_debug("restore: rows loaded at %.2fs", dd_pg_seconds() - t0);

	/* sequence values: only for sequences the schema created */
	for (char *line = seq.ptr, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *f1 = strchr(line, '\t'), *f2 = f1 ? strchr(f1 + 1, '\t') : NULL;
		if (!f1 || !f2)
			continue;
		*f1 = '\0', *f2 = '\0';
		char *lit = dd_pg_quote_literal(line), *val = dd_pg_quote_literal(f1 + 1);
		dd_buf_printf(&sql,
			      "SELECT pg_catalog.setval(to_regclass(%s), %s::int8, %s) WHERE to_regclass(%s) IS NOT NULL;\n",
			      lit, val, !strcmp(f2 + 1, "t") ? "true" : "false", lit);
		free(lit);
		free(val);
	}
	if (sql.len && exec_script(c, sql.ptr, NULL) < 0) {
		dd_error_wrap("setting sequence values");
		goto out;
	}

	/* post-data in phases */
	dd_schema_split(&entries, &nentries, post.ptr ? post.ptr : "", post.len);
	static const char *const phase_types[4][3] = {
		{ "INDEX", "CONSTRAINT", NULL },
		{ "INDEX ATTACH", NULL, NULL },
		{ "FK CONSTRAINT", NULL, NULL },
		{ NULL, NULL, NULL }, /* everything else */
	};
	static const char *const phase_names[4] = { "building indexes and constraints", "attaching indexes",
						    "adding foreign keys", "finishing the schema (post-data)" };
	static const int phase_parallel[4] = { 1, 0, 1, 0 };
	const char *preamble = nentries > 0 ? entries[0].sql : "";
	for (int ph = 0; ph < 4; ph++) {
		struct task *pt = dd_calloc(nentries + 1, sizeof(*pt));
		struct runner r;
		size_t np = 0;
		for (size_t i = 1; i < nentries; i++) {
			int in = 0, known = 0;
			for (int q = 0; q < 3; q++)
				for (int k = 0; phase_types[q][k]; k++)
					if (!strcmp(entries[i].type, phase_types[q][k])) {
						known = 1;
						if (q == ph)
							in = 1;
					}
			if (ph == 3 && !known)
				in = 1;
			if (!in)
				continue;
			pt[np].kind = TASK_SQL;
			pt[np].sql = entries[i].sql;
			np++;
		}
		runner_init(&r, o, db, st, phase_names[ph]);
		r.preamble = preamble;
		r.tasks = dd_calloc(np + 1, sizeof(struct task *));
		for (size_t i = 0; i < np; i++)
			r.tasks[i] = &pt[i];
		r.n = np;
		int x;
		if (phase_parallel[ph]) {
			x = run_tasks(&r, jobs, 0);
		} else {
			/* serial, in pg_dump's order, on one session */
			struct dd_buf all = DD_BUF_INIT;
			for (size_t i = 0; i < np; i++)
				dd_buf_puts(&all, pt[i].sql);
			x = 0;
			if (np) {
				dd_progress("restore: %s", phase_names[ph]);
				x = exec_script(c, all.ptr, NULL);
				if (x < 0)
					dd_error_wrap("%s", phase_names[ph]);
			}
			dd_buf_release(&all);
		}
		runner_release(&r);
		free(pt);
		if (x < 0)
			goto out;
		if (dd_pg_interrupted()) {
			dd_error("interrupted");
			goto out;
		}
		dd_debug("restore: %s done at %.2fs", phase_names[ph], dd_pg_seconds() - t0);
	}

	/* statistics, so the planner behaves as it did on the source */
	res = dd_pg_query(c,
			  "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
			  " JOIN pg_namespace n ON n.oid = c.relnamespace"
			  " WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname <> 'information_schema'"
			  " AND n.nspname !~ '^pg_' AND c.relpersistence <> 't' AND (c.relkind <> 'm' OR c.relispopulated)"
			  " ORDER BY c.relpages DESC, 1",
			  0, NULL);
	if (!res)
		goto out;
	{
		int nt = PQntuples(res);
		struct task *at = dd_calloc((size_t)nt + 1, sizeof(*at));
		struct runner r;
		runner_init(&r, o, db, st, "analyzing");
		r.tasks = dd_calloc((size_t)nt + 1, sizeof(struct task *));
		for (int i = 0; i < nt; i++) {
			at[i].kind = TASK_SQL;
			at[i].sql = dd_asprintf("ANALYZE %s", PQgetvalue(res, i, 0));
			r.tasks[i] = &at[i];
		}
		r.n = (size_t)nt;
		int x = run_tasks(&r, jobs, 0);
		for (int i = 0; i < nt; i++)
			free(at[i].sql);
		free(at);
		runner_release(&r);
		if (x < 0)
			goto out;
	}
	dd_debug("restore: analyzed at %.2fs", dd_pg_seconds() - t0);
	/* sequences are final now: their part of the change fingerprint */
	if (dd_pg_fingerprint_seq(c, seq_fp) < 0)
		goto out;
	rc = 0;
out:
	PQclear(res);
	if (c) {
		dd_pg_cancel_unregister(c);
		PQfinish(c);
	}
	for (size_t i = 0; i < ntasks; i++) {
		free(tasks[i].table);
		free(tasks[i].cols);
	}
	free(tasks);
	dd_schema_entries_free(entries, nentries);
	dd_buf_release(&pre);
	dd_buf_release(&post);
	dd_buf_release(&seq);
	dd_buf_release(&sql);
	return rc;
}

/*
 * Swap `newdb` into `work` in one transaction; the old one becomes `stash`
 * (if it existed). *fp: the change fingerprint read inside that transaction
 * (NULL if it could not be).
 */
static int
swap(PGconn *m, const char *work, const char *newdb, const char *stash, int terminate, const char *seq, char **fp)
{
	char *qw = dd_pg_quote_ident(work), *qn = dd_pg_quote_ident(newdb), *qs = stash ? dd_pg_quote_ident(stash) : NULL;
	char *sql = stash ? dd_asprintf("BEGIN; ALTER DATABASE %s RENAME TO %s; ALTER DATABASE %s RENAME TO %s;"
					" SAVEPOINT dd_fp", qw, qs, qn, qw)
			  : dd_asprintf("BEGIN; ALTER DATABASE %s RENAME TO %s; SAVEPOINT dd_fp", qn, qw);
	int rc = -1;

	for (int attempt = 0; attempt < 10; attempt++) {
		if (stash) {
			if (terminate) {
				if (terminate_sessions(m, work) < 0)
					break;
			} else if (refuse_sessions(m, work) < 0) {
				break;
			}
		}
		PGresult *res = PQexec(m, sql);
		ExecStatusType s = PQresultStatus(res);
		if (s == PGRES_COMMAND_OK) {
			PQclear(res);
			if (dd_pg_fingerprint_swap(m, work, seq, fp) < 0) {
				dd_debug("no change fingerprint: %s", dd_error_last());
				dd_error_clear();
				dd_pg_exec(m, "ROLLBACK TO SAVEPOINT dd_fp");
			}
			res = PQexec(m, "COMMIT");
			s = PQresultStatus(res);
		}
		if (s == PGRES_COMMAND_OK) {
			PQclear(res);
			rc = 0;
			break;
		}
		free(*fp);
		*fp = NULL;
		int in_use = !strcmp(dd_pg_sqlstate(res), "55006");
		dd_pg_error(m, res);
		PQclear(res);
		dd_pg_exec(m, "ROLLBACK");
		if (!in_use)
			break;
		/* someone connected between our check and the rename */
		usleep(200000);
	}
	free(sql);
	free(qw);
	free(qn);
	free(qs);
	return rc;
}

int
dd_pg_restore(struct dd_store *st, const struct dd_snapshot *snap, const struct dd_pg_restore_opts *o,
	      struct dd_pg_restore_result *res)
{
	struct dd_pg_target t;
	struct dd_pg_state prev;
	PGconn *m = NULL;
	char *newdb = NULL, *stash = NULL, *suffix = NULL, *seq_fp = NULL, *fp = NULL;
	int rc = -1, installed = 0, exists = 0, created = 0, pending = 0, jobs = o->jobs;
	const struct dd_stream_info *pre = dd_snapshot_find(snap, "schema/pre-data");

	memset(res, 0, sizeof(*res));
	memset(&prev, 0, sizeof(prev));
	if (dd_pg_target_resolve(&t, o->conninfo) < 0)
		return -1;
	if (!pre) {
		dd_error("snapshot %.12s holds no PostgreSQL schema", dd_snapshot_id(snap));
		goto out;
	}
	if (jobs <= 0)
		jobs = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (jobs < 1)
		jobs = 1;
	if (dd_pg_interrupt_install() < 0)
		goto out;
	installed = 1;
	if (dd_pg_connect_maint(&m, o->conninfo, t.database) < 0)
		goto out;

	/* copies left behind by an earlier restore that was killed */
	{
		char **names = NULL;
		long *pids = NULL;
		size_t n = 0;
		dd_pg_state_pending_stale(o->statedir, &t, &names, &pids, &n);
		for (size_t i = 0; i < n; i++) {
			if (drop_db(m, names[i]) == 0) {
				dd_info("dropped %s, left behind by an interrupted restore", names[i]);
				dd_pg_state_pending_remove(o->statedir, &t, pids[i]);
			}
			free(names[i]);
		}
		free(names);
		free(pids);
		dd_error_clear();
	}

	if (db_exists(m, t.database, &exists) < 0)
		goto out;
	if (exists && !o->terminate && refuse_sessions(m, t.database) < 0)
		goto out;

	char pidbuf[64];
	snprintf(pidbuf, sizeof(pidbuf), "__dnadata_new_%ld", (long)getpid());
	newdb = dd_pg_name_with_suffix(t.database, pidbuf);
	if (dd_pg_state_pending_add(o->statedir, &t, newdb) < 0)
		goto out;
	pending = 1;
	if (drop_db(m, newdb) < 0)
		goto out;
	if (create_db(m, newdb, pre) < 0)
		goto out;
	created = 1;
	if (load(st, snap, o, newdb, jobs, &seq_fp) < 0) {
		dd_error_wrap("restoring snapshot %.12s", dd_snapshot_id(snap));
		goto out;
	}
	if (dd_pg_interrupted()) {
		dd_error("interrupted");
		goto out;
	}

	/* the swap */
	if (exists) {
		for (int i = 0; i < 100; i++) {
			int e = 0;
			free(suffix);
			free(stash);
			suffix = stamp_suffix("stash");
			if (i) {
				char *s2 = dd_asprintf("%s_%d", suffix, i);
				free(suffix);
				suffix = s2;
			}
			stash = dd_pg_name_with_suffix(t.database, suffix);
			if (db_exists(m, stash, &e) < 0)
				goto out;
			if (!e)
				break;
		}
	}
	dd_pg_state_read(&prev, o->statedir, o->conninfo);
	dd_error_clear();
	if (swap(m, t.database, newdb, exists ? stash : NULL, o->terminate, seq_fp, &fp) < 0) {
		dd_error_wrap("switching database %s", t.database);
		goto out;
	}
	created = 0; /* the new copy is the working database now */
	if (exists)
		dd_pg_state_add_stash(o->statedir, &t, stash, prev.snapshot, prev.profile);
	if (dd_pg_state_set_target(o->statedir, &t, dd_snapshot_id(snap), o->profile, "restored", fp) < 0)
		dd_warn("%s", dd_error_last());
	res->database = dd_strdup(t.database);
	res->stash = exists ? dd_strdup(stash) : NULL;
	rc = 0;
out:
	if (created && m) {
		/* keep the error that made us stop */
		char *err = dd_strdup(dd_error_last() ? dd_error_last() : "failed");
		char *hint = dd_error_hint() ? dd_strdup(dd_error_hint()) : NULL;
		if (drop_db(m, newdb) < 0) {
			dd_warn("could not drop the partial copy %s (%s); the next restore drops it", newdb,
				dd_error_last());
			pending = 0; /* keep the record */
		}
		dd_error("%s", err);
		if (hint)
			dd_hint("%s", hint);
		free(err);
		free(hint);
	}
	if (pending)
		dd_pg_state_pending_remove(o->statedir, &t, (long)getpid());
	if (m)
		PQfinish(m);
	if (installed)
		dd_pg_interrupt_remove();
	dd_pg_state_release(&prev);
	dd_pg_target_release(&t);
	free(newdb);
	free(stash);
	free(suffix);
	free(seq_fp);
	free(fp);
	return rc;
}

void
dd_pg_restore_result_release(struct dd_pg_restore_result *r)
{
	free(r->database);
	free(r->stash);
	memset(r, 0, sizeof(*r));
}
