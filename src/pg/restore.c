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
 *   2. one queue over `jobs` sessions (plan.h: the dependencies and costs;
 *      docs/FORMAT.md §7): each table's TRUNCATE + COPY ... FROM STDIN
 *      (FREEZE) in its own transaction (the TRUNCATE makes the table "new in
 *      this transaction", so rows are written frozen: no later vacuum or
 *      hint-bit rewrite, and no WAL under wal_level=minimal), largest chain
 *      first; a table's indexes and PK/UNIQUE/EXCLUDE constraints as soon as
 *      its rows are in; index attachments after both indexes; foreign keys
 *      once both tables and the referenced key are ready (retried on
 *      deadlock); large objects; sequence values; ANALYZE of each table
 *      after its indexes, beside other work; then the rest of the post-data
 *      (triggers, rules, policies, materialized view refreshes, comments
 *      ...) in pg_dump's order, and ANALYZE of the materialized views.
 *      A task never starts beside a running one whose lock it would wait
 *      for (ANALYZE vs CREATE INDEX on one table, two ALTER TABLEs ...); an
 *      index build gets parallel maintenance workers only for cores no
 *      ready task wants. -v traces each task's start and end.
 *
 * Sessions that ran the post-data preamble (search_path '') load rows and
 * ANALYZE under their own search_path again (SET LOCAL), as before the
 * queue mixed them: a CHECK or a generated column calling a function that
 * relies on the path behaves as it did.
 */
#include "pg/internal.h"
#include "pg/pg.h"
#include "pg/plan.h"
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
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

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

int
dd_pg_read_stream(struct dd_store *st, const struct dd_snapshot *snap, const char *name, struct dd_buf *out,
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
	char *search_path;     /* the sessions' own, before a script empties it */
	char *mwm;             /* the sessions' maintenance_work_mem: the server's, at least MIN_MWM */
};

/* Index builds get at least this much memory; a larger setting of the server's or the role's is kept. */
#define MIN_MWM "256MB"

/* Step 1: pre-data (types, tables, functions ...) on one session. */
static int
load_schema(struct load *l, const struct dd_buf *pre)
{
	if (dd_pg_connect(&l->c, l->o->conninfo, l->db) < 0)
		return -1;
	dd_pg_cancel_register(l->c);
	PGresult *res = dd_pg_query(l->c,
				    "SELECT pg_catalog.current_setting('search_path'),"
				    " CASE WHEN pg_catalog.pg_size_bytes(pg_catalog.current_setting('maintenance_work_mem'))"
				    "  < pg_catalog.pg_size_bytes('" MIN_MWM "') THEN '" MIN_MWM "'"
				    "  ELSE pg_catalog.current_setting('maintenance_work_mem') END",
				    0, NULL);
	if (!res)
		return -1;
	l->search_path = dd_strdup(PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "");
	l->mwm = dd_strdup(PQntuples(res) == 1 ? PQgetvalue(res, 0, 1) : MIN_MWM);
	PQclear(res);
	dd_progress("restore: schema");
	if (exec_script(l->c, pre->ptr ? pre->ptr : "", NULL) < 0)
		return dd_error_wrap("restoring the schema (pre-data)");
	dd_debug("restore: pre-data in %.2fs", dd_pg_seconds() - l->t0);
	return 0;
}

/* The sequence values ("name\tvalue\tis_called" lines) as setval() calls, only for sequences the schema created. */
static int
sequences_sql(struct dd_buf *seq, char **out)
{
	struct dd_buf sql = DD_BUF_INIT;

	*out = NULL;
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
	if (sql.len)
		*out = dd_buf_detach(&sql, NULL);
	dd_buf_release(&sql);
	return 0;
}

/* ---- the schedule (plan.h): one queue across rows, post-data and ANALYZE ---- */

struct sched {
	struct load *l;
	struct dd_plan plan;
	const struct dd_stream_info **si;  /* per input stream */
	char **table, **cols;              /* per input stream (NULL for largeobjects) */
	size_t nstreams;
	struct dd_plan_rel *rels;
	size_t nrels;
	char *seq_sql;
	const char *preamble;              /* the post-data script's SET lines */
	char *path_lit;                    /* the sessions' own search_path, as a literal */
	/* under w.lock */
	struct dd_pg_workers w;
	pthread_cond_t more;               /* a task finished: others may be ready */
	size_t *waiting;                   /* prerequisites not done, per task */
	unsigned char *state;              /* 0 waiting, 1 ready, 2 running, 3 done */
	size_t *ready, nready;
	unsigned (*held)[DD_LOCK_EXCL + 1]; /* per relation, tasks running in each mode */
	size_t ndone, nrunning, nwork, nworkdone;
	uint64_t bytes, total_bytes;
	double *started;
	int *workers;                      /* KEY tasks: parallel maintenance workers it may use */
};

static const char *
kind_phase(enum dd_plan_kind k)
{
	switch (k) {
	case DD_PLAN_KEY: return "building indexes and constraints";
	case DD_PLAN_ATTACH: return "attaching indexes";
	case DD_PLAN_FK: return "adding foreign keys";
	case DD_PLAN_SEQ: return "setting sequence values";
	case DD_PLAN_ANALYZE:
	case DD_PLAN_ANALYZE_MV: return "analyzing";
	default: return "finishing the schema (post-data)";
	}
}

/* Under w.lock: task t is done; its dependents whose prerequisites are all done become ready. */
static void
complete(struct sched *s, size_t t)
{
	const struct dd_plan *p = &s->plan;

	s->state[t] = 3;
	s->ndone++;
	for (size_t k = p->user_at[t]; k < p->user_at[t + 1]; k++) {
		size_t u = p->users[k];
		if (--s->waiting[u])
			continue;
		if (p->t[u].kind == DD_PLAN_BARRIER) {
			complete(s, u);
		} else {
			s->state[u] = 1;
			s->ready[s->nready++] = u;
		}
	}
}

static int
lock_free(const struct sched *s, const struct dd_plan_task *t)
{
	for (size_t i = 0; i < t->nrel; i++)
		for (int m = DD_LOCK_ROWS; m <= DD_LOCK_EXCL; m++)
			if (s->held[t->rel[i]][m] && dd_plan_lock_conflict(t->mode[i], (enum dd_plan_lock)m))
				return 0;
	return 1;
}

/* Under w.lock: the ready task of highest priority that can run beside the running ones, or -1. */
static ssize_t
pick(struct sched *s)
{
	ssize_t best = -1;

	for (size_t i = 0; i < s->nready; i++) {
		const struct dd_plan_task *t = &s->plan.t[s->ready[i]];
		if ((best < 0 || t->prio > s->plan.t[s->ready[best]].prio) && lock_free(s, t))
			best = (ssize_t)i;
	}
	if (best < 0)
		return -1;
	size_t t = s->ready[best];
	s->ready[best] = s->ready[--s->nready];
	return (ssize_t)t;
}

/* The next task for a session (its locks taken), waiting while none can start; -1 when all are done or stopped. */
static ssize_t
next_task(struct sched *s)
{
	ssize_t t = -1;

	pthread_mutex_lock(&s->w.lock);
	while (!s->w.failed && !dd_pg_interrupted() && s->ndone < s->plan.n) {
		if ((t = pick(s)) >= 0)
			break;
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 100 * 1000 * 1000; /* to notice an interrupt */
		if (until.tv_nsec >= 1000000000L)
			until.tv_sec++, until.tv_nsec -= 1000000000L;
		pthread_cond_timedwait(&s->more, &s->w.lock, &until);
	}
	if (t >= 0) {
		const struct dd_plan_task *pt = &s->plan.t[t];
		for (size_t i = 0; i < pt->nrel; i++)
			s->held[pt->rel[i]][pt->mode[i]]++;
		s->state[t] = 2;
		s->nrunning++;
		s->started[t] = dd_pg_seconds();
		/* an index build may use the cores no other task is ready for (none while the queue is full) */
		long idle = (long)s->l->jobs - (long)s->nrunning - (long)s->nready;
		s->workers[t] = idle > 0 ? (int)idle : 0;
		dd_debug("restore: %.3fs start %s", s->started[t] - s->l->t0, pt->label);
	}
	pthread_mutex_unlock(&s->w.lock);
	return t;
}

static void
finish_task(struct sched *s, size_t t)
{
	const struct dd_plan_task *pt = &s->plan.t[t];

	pthread_mutex_lock(&s->w.lock);
	for (size_t i = 0; i < pt->nrel; i++)
		s->held[pt->rel[i]][pt->mode[i]]--;
	s->nrunning--;
	s->nworkdone++;
	dd_debug("restore: %.3fs done %s (%.3fs)", dd_pg_seconds() - s->l->t0, pt->label,
		 dd_pg_seconds() - s->started[t]);
	complete(s, t);
	pthread_cond_broadcast(&s->more);
	pthread_mutex_unlock(&s->w.lock);
}

static int
run_copy(PGconn *c, struct sched *s, const struct dd_plan_task *pt, int prepared)
{
	struct dd_stream_reader *rd = NULL;
	PGresult *res = NULL;
	const void *data;
	size_t len;
	int rc = -1, n;
	char *sql, *path = NULL;
	const char *table = s->table[pt->ref], *cols = s->cols[pt->ref];

	/* after the post-data preamble (search_path ''), the COPY sees the session's own path, as before */
	if (prepared)
		path = dd_asprintf("SELECT pg_catalog.set_config('search_path', %s, true);", s->path_lit);
	if (pt->kind == DD_PLAN_LO)
		sql = dd_strdup("CREATE TEMP TABLE dd_lo (loid oid, off int8, data bytea);"
				"COPY pg_temp.dd_lo FROM STDIN");
	else if (cols && *cols)
		sql = dd_asprintf("BEGIN; %sTRUNCATE ONLY %s; COPY %s (%s) FROM STDIN WITH (FREEZE)", path ? path : "",
				  table, table, cols);
	else
		sql = dd_asprintf("BEGIN; %sTRUNCATE ONLY %s; COPY %s FROM STDIN WITH (FREEZE)", path ? path : "", table,
				  table);
	res = PQexec(c, sql);
	free(sql);
	free(path);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		dd_pg_error(c, res);
		goto fail;
	}
	PQclear(res);
	res = NULL;
	if (dd_stream_open(&rd, s->l->st, s->si[pt->ref]) < 0) {
		PQputCopyEnd(c, "snapshot stream unreadable");
		goto drain;
	}
	while ((n = dd_stream_next(rd, &data, &len)) > 0) {
		if (PQputCopyData(c, data, (int)len) != 1) {
			dd_pg_error(c, NULL);
			goto drain;
		}
		pthread_mutex_lock(&s->w.lock);
		s->bytes += len;
		pthread_mutex_unlock(&s->w.lock);
		if (dd_pg_workers_stopped(&s->w)) {
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
		PQclear(res); /* the drain below reuses `res` */
		res = NULL;
		goto drain;
	}
	PQclear(res);
	res = NULL;
	while ((res = PQgetResult(c)))
		PQclear(res);
	if (pt->kind == DD_PLAN_LO)
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
		dd_error_wrap("loading %s", table ? table : "large objects");
	if (rd)
		dd_stream_close(rd);
	PQclear(res);
	return rc;
}


/*
 * A statement that must see the sessions' own search_path (an ANALYZE)
 * after the preamble emptied it. One query string is one implicit
 * transaction: the setting stays local to it, and an error (a deadlock
 * the caller retries) rolls it back rather than leaving an explicit
 * BEGIN aborted on the session.
 */
static char *
with_path(const struct sched *s, int prepared, const char *sql)
{
	if (!prepared)
		return dd_strdup(sql);
	return dd_asprintf("SELECT pg_catalog.set_config('search_path', %s, true); %s", s->path_lit, sql);
}

int
dd_pg_exec_retrying(PGconn *c, const char *sql)
{
	int deadlock = 0, rc;

	for (int attempt = 0;; attempt++) {
		rc = exec_script(c, sql, &deadlock);
		if (rc == 0 || !deadlock || attempt >= 5)
			return rc;
		dd_error_clear();
		/* a script that opened a transaction block left it aborted: end it, or the retry fails with 25P02 */
		if (PQtransactionStatus(c) == PQTRANS_INERROR && dd_pg_exec(c, "ROLLBACK") < 0)
			return -1;
		usleep(100000 * (useconds_t)(attempt + 1));
	}
}

/* ANALYZE each populated materialized view (REFRESH in the post-data's rest populated them). */
static int
analyze_matviews(PGconn *c, const struct sched *s, int prepared)
{
	PGresult *res = dd_pg_query(c,
				    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
				    " JOIN pg_namespace n ON n.oid = c.relnamespace"
				    " WHERE c.relkind = 'm' AND c.relispopulated AND n.nspname <> 'information_schema'"
				    " AND n.nspname !~ '^pg_' ORDER BY 1",
				    0, NULL);
	int rc = res ? 0 : -1;

	for (int i = 0; res && rc == 0 && i < PQntuples(res); i++) {
		char *a = dd_asprintf("ANALYZE %s", PQgetvalue(res, i, 0)), *sql = with_path(s, prepared, a);
		rc = dd_pg_exec_retrying(c, sql);
		free(a);
		free(sql);
	}
	PQclear(res);
	return rc;
}

static int
run_task(PGconn *c, struct sched *s, const struct dd_plan_task *t, int *prepared)
{
	int rc = 0;

	switch (t->kind) {
	case DD_PLAN_COPY:
	case DD_PLAN_LO:
		return run_copy(c, s, t, *prepared);
	case DD_PLAN_SEQ:
		return s->seq_sql ? exec_script(c, s->seq_sql, NULL) : 0;
	case DD_PLAN_ANALYZE: {
		char *sql = with_path(s, *prepared, t->sql);
		rc = dd_pg_exec_retrying(c, sql);
		free(sql);
		return rc;
	}
	case DD_PLAN_ANALYZE_MV:
		return analyze_matviews(c, s, *prepared);
	default:
		break;
	}
	if (!*t->sql)
		return 0;
	if (!*prepared) {
		if (s->preamble && exec_script(c, s->preamble, NULL) < 0)
			return -1;
		*prepared = 1;
	}
	if (t->kind == DD_PLAN_KEY) {
		char set[64];
		snprintf(set, sizeof(set), "SET max_parallel_maintenance_workers = %d", s->workers[t - s->plan.t]);
		if (dd_pg_exec(c, set) < 0)
			return -1;
	}
	return dd_pg_exec_retrying(c, t->sql);
}

static void
sched_worker(void *arg)
{
	struct sched *s = arg;
	PGconn *c = NULL;
	int prepared = 0; /* the post-data preamble ran: search_path is '' */
	ssize_t t;

	if (dd_pg_connect(&c, s->l->o->conninfo, s->l->db) < 0) {
		dd_pg_workers_fail(&s->w);
		return;
	}
	dd_pg_cancel_register(c);
	char *lit = dd_pg_quote_literal(s->l->mwm);
	char *set = dd_asprintf("SET synchronous_commit = off;"
				" SELECT pg_catalog.set_config('maintenance_work_mem', %s, false)", lit);
	int rc = dd_pg_exec(c, set);
	free(set);
	free(lit);
	if (rc < 0) {
		dd_pg_workers_fail(&s->w);
		goto out;
	}
	while ((t = next_task(s)) >= 0) {
		const struct dd_plan_task *pt = &s->plan.t[t];
		if (run_task(c, s, pt, &prepared) < 0) {
			if (pt->kind != DD_PLAN_COPY && pt->kind != DD_PLAN_LO && !dd_pg_interrupted())
				dd_error_wrap("%s", kind_phase(pt->kind));
			dd_pg_workers_fail(&s->w);
			pthread_mutex_lock(&s->w.lock);
			pthread_cond_broadcast(&s->more);
			pthread_mutex_unlock(&s->w.lock);
			break;
		}
		finish_task(s, (size_t)t);
	}
out:
	dd_pg_cancel_unregister(c);
	PQfinish(c);
}

static void
sched_progress(void *arg, double el)
{
	struct sched *s = arg;
	char b[32], tot[32], rate[32];

	pthread_mutex_lock(&s->w.lock);
	size_t done = s->nworkdone, running = s->nrunning;
	uint64_t bytes = s->bytes;
	pthread_mutex_unlock(&s->w.lock);
	dd_format_bytes(b, sizeof(b), (double)bytes);
	dd_format_bytes(tot, sizeof(tot), (double)s->total_bytes);
	dd_format_bytes(rate, sizeof(rate), el > 0 ? bytes / el : 0);
	dd_progress("restore: %zu/%zu tasks (%zu running), rows %s of %s, %s/s", done, s->nwork, running, b, tot, rate);
}

/* The data streams as plan input, their quoted names checked (defence in depth: the manifest is authenticated). */
static int
sched_streams(struct sched *s, struct dd_plan_stream **out)
{
	const struct dd_snapshot *snap = s->l->snap;
	size_t ns = dd_snapshot_count(snap);
	struct dd_plan_stream *ps = dd_calloc(ns + 1, sizeof(*ps));

	*out = ps;
	s->si = dd_calloc(ns + 1, sizeof(*s->si));
	s->table = dd_calloc(ns + 1, sizeof(char *));
	s->cols = dd_calloc(ns + 1, sizeof(char *));
	for (size_t i = 0; i < ns; i++) {
		const struct dd_stream_info *si = dd_snapshot_stream(snap, i);
		const char *name = dd_stream_name(si);
		size_t k = s->nstreams;
		if (!strncmp(name, "data/", 5)) {
			const char *table = dd_stream_attr(si, "table");
			const char *cols = dd_stream_attr(si, "columns");
			if (!table)
				table = name + 5;
			if (!dd_pg_is_qualified_name(table) || (cols && !dd_pg_is_column_list(cols)))
				return dd_error("damaged snapshot %.12s: stream \"%s\" has a malformed %s name",
						dd_snapshot_id(snap), name, dd_pg_is_qualified_name(table) ? "column" : "table");
			s->table[k] = dd_strdup(table);
			s->cols[k] = cols ? dd_strdup(cols) : NULL;
		} else if (strcmp(name, "largeobjects")) {
			continue;
		}
		s->si[k] = si;
		ps[k].table = s->table[k];
		ps[k].size = dd_stream_size(si);
		ps[k].rows = dd_stream_attr(si, "rows") ? strtoull(dd_stream_attr(si, "rows"), NULL, 10) : 0;
		s->total_bytes += ps[k].size;
		s->nstreams++;
	}
	return 0;
}

/* The relations to ANALYZE (all the pre-data created), and the sessions' own search_path. */
static int
sched_rels(struct sched *s)
{
	PGresult *res = dd_pg_query(s->l->c,
				    "SELECT format('%I.%I', n.nspname, c.relname), c.relkind, c.relhassubclass FROM pg_class c"
				    " JOIN pg_namespace n ON n.oid = c.relnamespace"
				    " WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname <> 'information_schema'"
				    " AND n.nspname !~ '^pg_' AND c.relpersistence <> 't' ORDER BY 1",
				    0, NULL);
	if (!res)
		return -1;
	s->nrels = (size_t)PQntuples(res);
	s->rels = dd_calloc(s->nrels + 1, sizeof(*s->rels));
	for (size_t i = 0; i < s->nrels; i++) {
		s->rels[i].name = dd_strdup(PQgetvalue(res, (int)i, 0));
		s->rels[i].kind = PQgetvalue(res, (int)i, 1)[0];
		s->rels[i].children = PQgetvalue(res, (int)i, 2)[0] == 't';
	}
	PQclear(res);
	return 0;
}

static void
sched_release(struct sched *s)
{
	for (size_t i = 0; i < s->nstreams; i++) {
		free(s->table[i]);
		free(s->cols[i]);
	}
	for (size_t i = 0; i < s->nrels; i++)
		free((char *)s->rels[i].name);
	free(s->rels);
	free(s->table);
	free(s->cols);
	free(s->si);
	free(s->path_lit);
	free(s->waiting);
	free(s->state);
	free(s->ready);
	free(s->held);
	free(s->started);
	free(s->workers);
	dd_plan_free(&s->plan);
	pthread_cond_destroy(&s->more);
	dd_pg_workers_release(&s->w);
}

/* Run the plan on min(jobs, tasks) sessions. */
static int
sched_run(struct sched *s)
{
	size_t n = s->plan.n, threads = (size_t)(s->l->jobs > 0 ? s->l->jobs : 1);

	s->waiting = dd_calloc(n + 1, sizeof(size_t));
	s->state = dd_calloc(n + 1, 1);
	s->ready = dd_calloc(n + 1, sizeof(size_t));
	s->started = dd_calloc(n + 1, sizeof(double));
	s->workers = dd_calloc(n + 1, sizeof(int));
	s->held = dd_calloc(s->plan.nrels + 1, sizeof(*s->held));
	for (size_t i = 0; i < n; i++) {
		s->waiting[i] = s->plan.t[i].ndeps;
		s->nwork += s->plan.t[i].kind != DD_PLAN_BARRIER;
	}
	for (size_t i = 0; i < n; i++)
		if (!s->waiting[i] && !s->state[i]) {
			if (s->plan.t[i].kind == DD_PLAN_BARRIER)
				complete(s, i);
			else
				s->state[i] = 1, s->ready[s->nready++] = i;
		}
	if (threads > s->nwork)
		threads = s->nwork ? s->nwork : 1;
	dd_debug("restore: %zu tasks on %zu sessions (maintenance_work_mem %s)", s->nwork, threads, s->l->mwm);
	return dd_pg_workers_run(&s->w, threads, sched_worker, s, sched_progress, s);
}

/* Steps 2-5: rows, sequences, post-data and ANALYZE, scheduled by dependency and cost. */
static int
load_scheduled(struct load *l, const struct dd_buf *post, struct dd_buf *seq)
{
	struct dd_schema_entry *entries = NULL;
	struct dd_plan_stream *ps = NULL;
	size_t nentries = 0;
	struct sched s;
	int rc = -1;

	memset(&s, 0, sizeof(s));
	s.l = l;
	dd_pg_workers_init(&s.w);
	pthread_cond_init(&s.more, NULL);
	dd_schema_split(&entries, &nentries, post->ptr ? post->ptr : "", post->len);
	s.preamble = nentries > 0 ? entries[0].sql : "";
	if (sched_streams(&s, &ps) < 0 || sched_rels(&s) < 0 || sequences_sql(seq, &s.seq_sql) < 0)
		goto out;
	s.path_lit = dd_pg_quote_literal(l->search_path);
	dd_plan_build(&s.plan, ps, s.nstreams, entries, nentries, s.rels, s.nrels, s.seq_sql != NULL);
	if (sched_run(&s) < 0)
		goto out;
	if (dd_pg_interrupted()) {
		dd_error("interrupted");
		goto out;
	}
	dd_debug("restore: loaded at %.2fs", dd_pg_seconds() - l->t0);
	rc = 0;
out:
	free(s.seq_sql);
	free(ps);
	sched_release(&s);
	dd_schema_entries_free(entries, nentries);
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
	if (dd_pg_read_stream(st, snap, "schema/pre-data", &pre, 1) < 0 ||
	    dd_pg_read_stream(st, snap, "schema/post-data", &post, 1) < 0 ||
	    dd_pg_read_stream(st, snap, "sequences", &seq, 0) < 0)
		goto out;
	if (create_db(m, newdb, pre_info) < 0)
		goto out;
	if (load_schema(&l, &pre) < 0 || load_scheduled(&l, &post, &seq) < 0)
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
	free(l.search_path);
	free(l.mwm);
	dd_buf_release(&pre);
	dd_buf_release(&post);
	dd_buf_release(&seq);
	return rc;
}
