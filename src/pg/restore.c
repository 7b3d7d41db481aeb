/*
 * pg/restore.c: build a database from a snapshot (the swap into place is
 * pg/swap.c).
 *
 * Invariant: the working database is never modified. Everything happens in
 * a fresh database <db>__dnadata_new_<pid> (recorded as "pending" in
 * <statedir>/pg first, so a copy left behind by kill -9 is dropped by the
 * next command that connects). Any failure or interrupt (SIGINT/SIGTERM)
 * before the swap drops only the new copy.
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
#include <unistd.h>

enum task_kind { TASK_SQL, TASK_COPY, TASK_LO };

struct task {
	enum task_kind kind;
	char *sql;                        /* TASK_SQL */
	const struct dd_stream_info *si;  /* TASK_COPY, TASK_LO */
	char *table, *cols;
	uint64_t size;
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
		struct dd_error_saved why;
		dd_error_save(&why);
		PQputCopyEnd(c, "snapshot stream unreadable");
		while ((res = PQgetResult(c)))
			PQclear(res);
		dd_error_restore(&why);
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
		struct dd_error_saved why;
		dd_error_save(&why);
		while ((res = PQgetResult(c)))
			PQclear(res);
		dd_error_restore(&why);
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
		dd_format_bytes(b, sizeof(b), (double)bytes);
		dd_format_bytes(tot, sizeof(tot), (double)total_bytes);
		dd_format_bytes(rate, sizeof(rate), el > 0 ? bytes / el : 0);
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
		return DD_NOTFOUND;
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

/*
 * CREATE DATABASE `name` from template0 with a source's encoding and locale
 * (each may be NULL: the server's default); a locale this server lacks
 * falls back to its default with a warning. Restores and inline loads both
 * create their database here.
 */
int
dd_pg_create_db_like(PGconn *m, const char *name, const char *enc, const char *coll, const char *ctype,
		     const char *prov, const char *icu)
{
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
		dd_error_clear();
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

static int
create_db(PGconn *m, const char *name, const struct dd_stream_info *pre)
{
	return dd_pg_create_db_like(m, name, dd_stream_attr(pre, "encoding"), dd_stream_attr(pre, "lc_collate"),
				    dd_stream_attr(pre, "lc_ctype"), dd_stream_attr(pre, "locale_provider"),
				    dd_stream_attr(pre, "icu_locale"));
}

/* ---- the load, into database `db`, in steps sharing one struct ---- */

struct load {
	struct dd_store *st;
	const struct dd_snapshot *snap;
	const struct dd_pg_restore_opts *o;
	const char *db;
	int jobs;
	PGconn *c;             /* the session for the serial steps */
	double t0;
};

static void
runner_set_tasks(struct runner *r, struct task *tasks, size_t n)
{
	r->tasks = dd_calloc(n + 1, sizeof(struct task *));
	for (size_t i = 0; i < n; i++)
		r->tasks[i] = &tasks[i];
	r->n = n;
}

/* Step 1: pre-data (types, tables, functions ...) on one session. */
static int
load_schema(struct load *l, const struct dd_buf *pre)
{
	if (dd_pg_connect(&l->c, l->o->conninfo, l->db) < 0)
		return -1;
	dd_pg_cancel_register(l->c);
	dd_progress("restore: schema");
	if (exec_script(l->c, pre->ptr ? pre->ptr : "", NULL) < 0)
		return dd_error_wrap("restoring the schema (pre-data)");
	dd_debug("restore: pre-data in %.2fs", dd_pg_seconds() - l->t0);
	return 0;
}

/* A COPY task for each data/ stream and the large objects; *n tasks. */
static int
queue_rows(const struct dd_snapshot *snap, struct task **out, size_t *n, uint64_t *total)
{
	size_t ns = dd_snapshot_count(snap);
	struct task *tasks = dd_calloc(ns + 1, sizeof(*tasks));

	*out = tasks, *n = 0, *total = 0;
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
			if (!dd_pg_is_qualified_name(table) || (cols && !dd_pg_is_column_list(cols)))
				return dd_error("damaged snapshot %.12s: stream \"%s\" has a malformed %s name",
						dd_snapshot_id(snap), name, dd_pg_is_qualified_name(table) ? "column" : "table");
			t = &tasks[(*n)++];
			t->kind = TASK_COPY;
			t->table = dd_strdup(table);
			t->cols = cols ? dd_strdup(cols) : NULL;
		} else if (!strcmp(name, "largeobjects")) {
			t = &tasks[(*n)++];
			t->kind = TASK_LO;
		} else {
			continue;
		}
		t->si = si;
		t->size = dd_stream_size(si);
		*total += t->size;
	}
	return 0;
}

/* Step 2: rows and large objects on parallel sessions, largest first. */
static int
load_rows(struct load *l)
{
	struct task *tasks = NULL;
	size_t n = 0;
	uint64_t total = 0;
	struct runner r;
	int rc = -1;

	runner_init(&r, l->o, l->db, l->st, "loading rows");
	if (queue_rows(l->snap, &tasks, &n, &total) < 0)
		goto out;
	runner_set_tasks(&r, tasks, n);
	qsort(r.tasks, n, sizeof(struct task *), cmp_task_size);
	if (run_tasks(&r, l->jobs, total) < 0)
		goto out;
	dd_debug("restore: rows loaded at %.2fs", dd_pg_seconds() - l->t0);
	rc = 0;
out:
	runner_release(&r);
	for (size_t i = 0; i < n; i++) {
		free(tasks[i].table);
		free(tasks[i].cols);
	}
	free(tasks);
	return rc;
}

/* Step 3: sequence values ("name\tvalue\tis_called" lines), only for sequences the schema created. */
static int
set_sequences(struct load *l, struct dd_buf *seq)
{
	struct dd_buf sql = DD_BUF_INIT;
	int rc = 0;

	for (char *line = seq->ptr, *next; line && *line; line = next) {
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
	if (sql.len && exec_script(l->c, sql.ptr, NULL) < 0)
		rc = dd_error_wrap("setting sequence values");
	dd_buf_release(&sql);
	return rc;
}

/* The post-data phases: which entry types each takes (the last: all others), and how. */
static const char *const phase_types[4][3] = {
	{ "INDEX", "CONSTRAINT", NULL },
	{ "INDEX ATTACH", NULL, NULL },
	{ "FK CONSTRAINT", NULL, NULL },
	{ NULL, NULL, NULL }, /* everything else */
};
static const char *const phase_names[4] = { "building indexes and constraints", "attaching indexes",
					    "adding foreign keys", "finishing the schema (post-data)" };
static const int phase_parallel[4] = { 1, 0, 1, 0 };

static int
in_phase(const char *type, int ph)
{
	int known = 0;

	for (int q = 0; q < 3; q++)
		for (int k = 0; phase_types[q][k]; k++)
			if (!strcmp(type, phase_types[q][k])) {
				if (q == ph)
					return 1;
				known = 1;
			}
	return ph == 3 && !known;
}

/* One post-data phase: its entries in parallel, or serially on l->c in pg_dump's order. */
static int
run_phase(struct load *l, const struct dd_schema_entry *entries, size_t nentries, int ph)
{
	struct task *pt = dd_calloc(nentries + 1, sizeof(*pt));
	struct dd_buf all = DD_BUF_INIT;
	struct runner r;
	size_t np = 0;
	int rc = 0;

	for (size_t i = 1; i < nentries; i++)
		if (in_phase(entries[i].type, ph)) {
			pt[np].kind = TASK_SQL;
			pt[np++].sql = entries[i].sql;
		}
	runner_init(&r, l->o, l->db, l->st, phase_names[ph]);
	r.preamble = nentries > 0 ? entries[0].sql : "";
	runner_set_tasks(&r, pt, np);
	if (phase_parallel[ph]) {
		rc = run_tasks(&r, l->jobs, 0);
	} else if (np) {
		for (size_t i = 0; i < np; i++)
			dd_buf_puts(&all, pt[i].sql);
		dd_progress("restore: %s", phase_names[ph]);
		if ((rc = exec_script(l->c, all.ptr, NULL)) < 0)
			dd_error_wrap("%s", phase_names[ph]);
	}
	dd_buf_release(&all);
	runner_release(&r);
	free(pt);
	if (rc == 0 && dd_pg_interrupted())
		rc = dd_error("interrupted");
	if (rc == 0)
		dd_debug("restore: %s done at %.2fs", phase_names[ph], dd_pg_seconds() - l->t0);
	return rc;
}

/* Step 4: post-data (indexes, constraints, foreign keys, the rest) in phases. */
static int
load_post_data(struct load *l, const struct dd_buf *post)
{
	struct dd_schema_entry *entries = NULL;
	size_t nentries = 0;
	int rc = 0;

	dd_schema_split(&entries, &nentries, post->ptr ? post->ptr : "", post->len);
	for (int ph = 0; ph < 4 && rc == 0; ph++)
		rc = run_phase(l, entries, nentries, ph);
	dd_schema_entries_free(entries, nentries);
	return rc;
}

/* Step 5: statistics, so the planner behaves as it did on the source. */
static int
analyze_tables(struct load *l)
{
	PGresult *res = dd_pg_query(l->c,
				    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
				    " JOIN pg_namespace n ON n.oid = c.relnamespace"
				    " WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname <> 'information_schema'"
				    " AND n.nspname !~ '^pg_' AND c.relpersistence <> 't'"
				    " AND (c.relkind <> 'm' OR c.relispopulated)"
				    " ORDER BY c.relpages DESC, 1",
				    0, NULL);
	struct task *at;
	struct runner r;
	int nt, rc;

	if (!res)
		return -1;
	nt = PQntuples(res);
	at = dd_calloc((size_t)nt + 1, sizeof(*at));
	for (int i = 0; i < nt; i++) {
		at[i].kind = TASK_SQL;
		at[i].sql = dd_asprintf("ANALYZE %s", PQgetvalue(res, i, 0));
	}
	PQclear(res);
	runner_init(&r, l->o, l->db, l->st, "analyzing");
	runner_set_tasks(&r, at, (size_t)nt);
	rc = run_tasks(&r, l->jobs, 0);
	runner_release(&r);
	for (int i = 0; i < nt; i++)
		free(at[i].sql);
	free(at);
	if (rc == 0)
		dd_debug("restore: analyzed at %.2fs", dd_pg_seconds() - l->t0);
	return rc;
}

int
dd_pg_build(PGconn *m, struct dd_store *st, const struct dd_snapshot *snap, const struct dd_pg_restore_opts *o,
	    const char *newdb, int jobs, char **seq_fp)
{
	struct load l = { .st = st, .snap = snap, .o = o, .db = newdb, .jobs = jobs, .t0 = dd_pg_seconds() };
	struct dd_buf pre = DD_BUF_INIT, post = DD_BUF_INIT, seq = DD_BUF_INIT;
	const struct dd_stream_info *pre_info = dd_snapshot_find(snap, "schema/pre-data");
	int rc = DD_ERROR;

	*seq_fp = NULL;
	if (read_stream(st, snap, "schema/pre-data", &pre, 1) < 0 ||
	    read_stream(st, snap, "schema/post-data", &post, 1) < 0 ||
	    read_stream(st, snap, "sequences", &seq, 0) < 0)
		goto out;
	if (create_db(m, newdb, pre_info) < 0)
		goto out;
	if (load_schema(&l, &pre) < 0 || load_rows(&l) < 0 || set_sequences(&l, &seq) < 0 ||
	    load_post_data(&l, &post) < 0 || analyze_tables(&l) < 0)
		goto out;
	/* sequences are final now: their part of the change fingerprint */
	if (dd_pg_fingerprint_seq(l.c, seq_fp) < 0)
		goto out;
	rc = DD_OK;
out:
	if (l.c) {
		dd_pg_cancel_unregister(l.c);
		PQfinish(l.c);
	}
	dd_buf_release(&pre);
	dd_buf_release(&post);
	dd_buf_release(&seq);
	return rc;
}
