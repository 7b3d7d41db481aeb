/*
 * pg/dump.c: take a consistent, deterministic snapshot of one database.
 *
 * One "leader" session opens a REPEATABLE READ, READ ONLY transaction,
 * exports its snapshot (pg_export_snapshot()), reads the catalog, locks
 * every dumped table in ACCESS SHARE mode (as pg_dump does: no DDL or
 * TRUNCATE can slip in), reads sequence values, and stays open until the
 * end. Everything else runs inside that same snapshot:
 *   - two pg_dump children (pre-data, post-data sections) with --snapshot;
 *   - a pool of COPY workers (config `jobs`, default one per core), each its
 *     own session that runs SET TRANSACTION SNAPSHOT, then takes tables
 *     from a shared queue, largest first, and streams
 *     COPY (SELECT cols FROM ONLY t ORDER BY pk) TO STDOUT straight into
 *     dd_stream_write() (batched to 256 KiB; no temporary files).
 * So concurrent writers never tear a snapshot.
 *
 * Determinism: rows come in primary-key order; a table without one comes
 * in physical order (same for an unchanged table) with a warning. Session
 * settings (conn.c) fix the text form of every value. Streams are named
 * and sorted by the store; names and attributes are in docs/FORMAT.md §7.
 *
 * Sequence values are read with SELECT last_value, is_called like pg_dump
 * does: sequences are not transactional, so a value can be ahead of the
 * rows in the snapshot, never behind.
 */
#include "pg/internal.h"
#include "pg/pg.h"
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

#define BATCH (256 * 1024)

struct rel {
	unsigned oid;
	char *qname;          /* quoted by the server: format('%I.%I') */
	char *nspname, *relname;
	char relkind;
	char *cols;           /* quoted column list, attnum order, without generated columns */
	char *pk;             /* quoted primary-key columns, or NULL */
	int64_t est;          /* relpages * 8192 */
	unsigned *parents;    /* direct inheritance/partition parents */
	size_t nparents;
	unsigned identity_of; /* for an identity sequence: its table */
	int excluded;         /* exclude_tables (or an ancestor is) */
	int no_data;          /* exclude_data (or an ancestor is) */
};

/* One stream to produce with a COPY ... TO STDOUT. */
struct item {
	char *stream;
	char *sql;
	char *table;          /* attr "table" (NULL for large objects) */
	char *cols;           /* attr "columns" */
	int64_t est;
	int warn_no_pk;
	/* results, written by the worker that ran it */
	uint64_t rows, bytes;
	volatile int state;   /* 0 queued, 1 running, 2 done */
};

struct pool {
	struct dd_snapshot_writer *sw;
	const char *conninfo;
	const char *snapshot_id;
	struct item **items;
	size_t nitems, next;  /* under w.lock, like bytes and done */
	struct dd_pg_workers w;
	uint64_t bytes;       /* COPY bytes so far (all items) */
	size_t done;
	int64_t total_est;    /* sum of the items' estimates, for the ETA */
};

static int
begin_in_snapshot(PGconn *c, const char *snapshot_id)
{
	char *lit = dd_pg_quote_literal(snapshot_id);
	char *sql = dd_asprintf("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;"
				"SET TRANSACTION SNAPSHOT %s; SET row_security = off;"
				"SET work_mem = '64MB'", lit);
	int rc = dd_pg_exec(c, sql);
	free(sql);
	free(lit);
	return rc;
}

static int
copy_one(PGconn *c, struct pool *p, struct item *it)
{
	struct dd_stream_writer *w = NULL;
	struct dd_buf batch = DD_BUF_INIT;
	PGresult *r = NULL;
	int rc = -1, n;
	char *row = NULL;
	char num[32];

	if (dd_stream_begin(&w, p->sw, it->stream) < 0)
		goto out;
	r = PQexec(c, it->sql);
	if (PQresultStatus(r) != PGRES_COPY_OUT) {
		dd_pg_error(c, r);
		goto out;
	}
	PQclear(r);
	r = NULL;
	dd_buf_grow(&batch, BATCH);
	while ((n = PQgetCopyData(c, &row, 0)) > 0) {
		dd_buf_put(&batch, row, (size_t)n);
		PQfreemem(row);
		row = NULL;
		it->rows++;
		if (batch.len >= BATCH) {
			if (dd_stream_write(w, batch.ptr, batch.len) < 0)
				goto drain;
			pthread_mutex_lock(&p->w.lock);
			p->bytes += batch.len;
			pthread_mutex_unlock(&p->w.lock);
			it->bytes += batch.len;
			dd_buf_clear(&batch);
			if (dd_pg_workers_stopped(&p->w)) {
				if (!dd_pg_interrupted())
					dd_error("stopped");
				else
					dd_error("interrupted");
				goto drain;
			}
		}
	}
	if (n == -2) {
		dd_pg_error(c, NULL);
		goto out;
	}
	r = PQgetResult(c);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		dd_pg_error(c, r);
		goto out;
	}
	if (batch.len) {
		if (dd_stream_write(w, batch.ptr, batch.len) < 0)
			goto out;
		pthread_mutex_lock(&p->w.lock);
		p->bytes += batch.len;
		pthread_mutex_unlock(&p->w.lock);
		it->bytes += batch.len;
	}
	snprintf(num, sizeof(num), "%" PRIu64, it->rows);
	dd_stream_set_attr(w, "rows", num);
	if (it->table)
		dd_stream_set_attr(w, "table", it->table);
	if (it->cols)
		dd_stream_set_attr(w, "columns", it->cols);
	rc = dd_stream_end(w);
	w = NULL;
	goto out;
drain:
	/* stop the COPY: the connection is closed by the caller after a failure */
	rc = -1;
out:
	if (rc < 0)
		dd_error_wrap("dumping %s", it->table ? it->table : "large objects");
	if (w)
		dd_stream_abort(w);
	PQclear(r);
	dd_buf_release(&batch);
	return rc;
}

static void
worker(void *arg)
{
	struct pool *p = arg;
	PGconn *c = NULL;

	if (dd_pg_connect(&c, p->conninfo, NULL) < 0 || begin_in_snapshot(c, p->snapshot_id) < 0) {
		dd_pg_workers_fail(&p->w);
		goto out;
	}
	dd_pg_cancel_register(c);
	for (;;) {
		struct item *it = NULL;
		pthread_mutex_lock(&p->w.lock);
		if (!p->w.failed && p->next < p->nitems)
			it = p->items[p->next++];
		pthread_mutex_unlock(&p->w.lock);
		if (!it || dd_pg_interrupted())
			break;
		it->state = 1;
		if (copy_one(c, p, it) < 0) {
			dd_pg_workers_fail(&p->w);
			break;
		}
		it->state = 2;
		pthread_mutex_lock(&p->w.lock);
		p->done++;
		pthread_mutex_unlock(&p->w.lock);
		if (it->warn_no_pk)
			dd_warn("table %s has no primary key: rows dumped in physical order "
				"(still exact, but an unchanged table may dedupe less after a VACUUM FULL or CLUSTER)",
				it->table);
	}
out:
	if (c) {
		dd_pg_cancel_unregister(c);
		PQfinish(c);
	}
}

/* ---- pg_dump sections in threads ---- */

struct section_job {
	const struct dd_pgdump *pgdump;
	const char *conninfo;
	const char *password;
	const char *snapshot_id;
	const char *section;
	const char *const *exclude;
	size_t nexclude;
	struct dd_buf out;
	int rc;
	char *error, *hint;
};

static void *
section_thread(void *arg)
{
	struct section_job *j = arg;

	j->rc = dd_pgdump_section(j->pgdump, j->conninfo, j->password, j->snapshot_id, j->section, j->exclude,
				  j->nexclude, &j->out);
	if (j->rc < 0) {
		j->error = dd_strdup(dd_error_last() ? dd_error_last() : "pg_dump failed");
		j->hint = dd_error_hint() ? dd_strdup(dd_error_hint()) : NULL;
	}
	return NULL;
}

/* ---- catalog ---- */

static const char catalog_sql[] =
	"SELECT c.oid, format('%I.%I', n.nspname, c.relname), n.nspname, c.relname, c.relkind,"
	" (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a"
	"   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''),"
	" (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)"
	"   FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
	"   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
	"   WHERE i.indrelid = c.oid AND i.indisprimary),"
	" c.relpages::int8 * 8192,"
	" (SELECT string_agg(inhparent::text, ',') FROM pg_inherits WHERE inhrelid = c.oid),"
	" (SELECT d.refobjid FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid"
	"   AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'i' LIMIT 1)"
	" FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	" WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.relpersistence <> 't'"
	"   AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"
	"   AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass"
	"     AND e.objid = c.oid AND e.deptype = 'e')"
	" ORDER BY 2";

static void
rels_free(struct rel *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].qname);
		free(r[i].nspname);
		free(r[i].relname);
		free(r[i].cols);
		free(r[i].pk);
		free(r[i].parents);
	}
	free(r);
}

static int
matches(const char *const *patterns, const struct rel *r)
{
	for (; patterns && *patterns; patterns++)
		if (dd_pg_pattern_match(*patterns, r->nspname, r->relname))
			return 1;
	return 0;
}

static struct rel *
find_rel(struct rel *rels, size_t n, unsigned oid)
{
	for (size_t i = 0; i < n; i++)
		if (rels[i].oid == oid)
			return &rels[i];
	return NULL;
}

/* Flags inherited from ancestors (partitions of an excluded table are excluded too). */
static void
inherit_flags(struct rel *rels, size_t n, struct rel *r, int depth)
{
	for (size_t i = 0; i < r->nparents && depth < 64; i++) {
		struct rel *parent = find_rel(rels, n, r->parents[i]);
		if (!parent)
			continue;
		inherit_flags(rels, n, parent, depth + 1);
		r->excluded |= parent->excluded;
		r->no_data |= parent->no_data;
	}
}

static int
read_catalog(PGconn *c, const struct dd_pg_snapshot_opts *o, struct rel **out, size_t *nout)
{
	PGresult *res = dd_pg_query(c, catalog_sql, 0, NULL);
	struct rel *rels;
	size_t n;

	if (!res)
		return dd_error_wrap("reading the catalog");
	n = (size_t)PQntuples(res);
	rels = dd_calloc(n + 1, sizeof(*rels));
	for (size_t i = 0; i < n; i++) {
		struct rel *r = &rels[i];
		int row = (int)i;
		r->oid = (unsigned)strtoul(PQgetvalue(res, row, 0), NULL, 10);
		r->qname = dd_strdup(PQgetvalue(res, row, 1));
		r->nspname = dd_strdup(PQgetvalue(res, row, 2));
		r->relname = dd_strdup(PQgetvalue(res, row, 3));
		r->relkind = PQgetvalue(res, row, 4)[0];
		r->cols = PQgetisnull(res, row, 5) ? NULL : dd_strdup(PQgetvalue(res, row, 5));
		r->pk = PQgetisnull(res, row, 6) ? NULL : dd_strdup(PQgetvalue(res, row, 6));
		r->est = strtoll(PQgetvalue(res, row, 7), NULL, 10);
		if (!PQgetisnull(res, row, 8)) {
			char *list = dd_strdup(PQgetvalue(res, row, 8)), *save = NULL;
			for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				r->parents = dd_realloc(r->parents, (r->nparents + 1) * sizeof(unsigned));
				r->parents[r->nparents++] = (unsigned)strtoul(t, NULL, 10);
			}
			free(list);
		}
		r->identity_of = PQgetisnull(res, row, 9) ? 0 : (unsigned)strtoul(PQgetvalue(res, row, 9), NULL, 10);
		r->excluded = matches(o->exclude_tables, r);
		r->no_data = matches(o->exclude_data, r);
	}
	PQclear(res);
	for (size_t i = 0; i < n; i++)
		inherit_flags(rels, n, &rels[i], 0);
	for (size_t i = 0; i < n; i++)
		if (rels[i].relkind == 'S' && rels[i].identity_of) {
			struct rel *t = find_rel(rels, n, rels[i].identity_of);
			if (t && t->excluded)
				rels[i].excluded = 1;
		}
	*out = rels;
	*nout = n;
	return 0;
}

static int
cmp_item(const void *a, const void *b)
{
	const struct item *x = *(struct item *const *)a, *y = *(struct item *const *)b;

	if (x->est != y->est)
		return x->est > y->est ? -1 : 1;
	return strcmp(x->stream, y->stream);
}

static void
items_free(struct item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].stream);
		free(items[i].sql);
		free(items[i].table);
		free(items[i].cols);
	}
	free(items);
}

static int
write_stream(struct dd_snapshot_writer *sw, const char *name, const struct dd_buf *data,
	     const char *const *attrs)
{
	struct dd_stream_writer *w;

	if (dd_stream_begin(&w, sw, name) < 0)
		return -1;
	if (data->len && dd_stream_write(w, data->ptr, data->len) < 0) {
		dd_stream_abort(w);
		return -1;
	}
	for (; attrs && attrs[0]; attrs += 2)
		if (attrs[1])
			dd_stream_set_attr(w, attrs[0], attrs[1]);
	return dd_stream_end(w);
}

static int
read_sequences(PGconn *c, struct rel *rels, size_t n, struct dd_buf *out, size_t *count)
{
	*count = 0;
	for (size_t i = 0; i < n; i++) {
		if (rels[i].relkind != 'S' || rels[i].excluded)
			continue;
		char *sql = dd_asprintf("SELECT last_value, is_called FROM %s", rels[i].qname);
		PGresult *r = dd_pg_query(c, sql, 0, NULL);
		free(sql);
		if (!r)
			return dd_error_wrap("reading sequence %s", rels[i].qname);
		if (PQntuples(r) == 1)
			dd_buf_printf(out, "%s\t%s\t%s\n", rels[i].qname, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
		PQclear(r);
		(*count)++;
	}
	return 0;
}

static const char lo_sql[] =
	"COPY (SELECT m.oid, g.off, lo_get(m.oid, g.off, 1048576)"
	" FROM (SELECT oid, lo_lseek64(lo_open(oid, 262144), 0, 2) AS size"
	"       FROM pg_largeobject_metadata ORDER BY oid) AS m,"
	"  LATERAL generate_series(0::int8, greatest(m.size - 1, 0), 1048576) AS g(off)) TO STDOUT";

static void
show_progress(void *arg, double el)
{
	struct pool *p = arg;
	int64_t total_est = p->total_est;

	pthread_mutex_lock(&p->w.lock);
	uint64_t bytes = p->bytes;
	size_t done = p->done;
	int64_t est_done = 0;
	for (size_t i = 0; i < p->nitems; i++) {
		if (p->items[i]->state == 2)
			est_done += p->items[i]->est;
		else if (p->items[i]->state == 1)
			est_done += (int64_t)p->items[i]->bytes < p->items[i]->est ? (int64_t)p->items[i]->bytes
										     : p->items[i]->est;
	}
	pthread_mutex_unlock(&p->w.lock);
	char b[32], rate[32], eta[32] = "";
	dd_pg_format_bytes(b, sizeof(b), (double)bytes);
	dd_pg_format_bytes(rate, sizeof(rate), el > 0 ? bytes / el : 0);
	if (total_est > 0 && est_done > 0 && est_done < total_est) {
		double left = el * (double)(total_est - est_done) / (double)est_done;
		snprintf(eta, sizeof(eta), ", ETA %d:%02d", (int)left / 60, (int)left % 60);
	}
	dd_progress("snapshot: %zu/%zu tables, %s, %s/s%s", done, p->nitems, b, rate, eta);
}

int
dd_pg_snapshot(struct dd_snapshot_writer *sw, const struct dd_pg_snapshot_opts *o,
	       struct dd_pg_snapshot_stats *stats)
{
	PGconn *c = NULL;
	PGresult *res = NULL;
	struct rel *rels = NULL;
	size_t nrels = 0, nitems = 0, nworkers = 0, nexclude = 0, nseq = 0;
	struct item *items = NULL;
	struct pool pool;
	pthread_t sect_threads[2];
	struct section_job sect[2];
	int sect_started[2] = { 0, 0 };
	struct dd_pgdump pgdump = { 0 };
	char *snapshot_id = NULL, **exclude = NULL, *child_conninfo = NULL, *child_password = NULL;
	struct dd_buf seqs = DD_BUF_INIT, lock = DD_BUF_INIT;
	char *enc = NULL, *collate = NULL, *ctype = NULL, *provider = NULL, *icu = NULL;
	int rc = -1, installed = 0;

	memset(stats, 0, sizeof(*stats));
	memset(&pool, 0, sizeof(pool));
	memset(sect, 0, sizeof(sect));
	dd_pg_workers_init(&pool.w);
	if (dd_pg_interrupt_install() < 0)
		return -1;
	installed = 1;

	if (dd_pg_connect(&c, o->conninfo, NULL) < 0)
		goto out;
	dd_pg_cancel_register(c);
	snprintf(stats->database, sizeof(stats->database), "%s", PQdb(c));
	snprintf(stats->server_version, sizeof(stats->server_version), "%s",
		 PQparameterStatus(c, "server_version") ? PQparameterStatus(c, "server_version") : "");
	if (PQserverVersion(c) < 100000) {
		dd_error("PostgreSQL %s is too old (git-dnadata needs 10 or newer)", stats->server_version);
		goto out;
	}
	if (dd_pgdump_find(&pgdump, dd_pg_server_major(c)) < 0)
		goto out;
	/*
	 * The change fingerprint (change.c) comes before the snapshot: whatever
	 * is counted after it can only make the database look changed.
	 */
	if (dd_pg_fingerprint_here(c, &stats->fingerprint) < 0) {
		dd_debug("no change fingerprint: %s", dd_error_last());
		dd_error_clear();
	}
	if (dd_pg_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET row_security = off") < 0)
		goto out;
	res = dd_pg_query(c, "SELECT pg_export_snapshot()", 0, NULL);
	if (!res)
		goto out;
	snapshot_id = dd_strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	res = dd_pg_query(c,
			  PQserverVersion(c) >= 150000
				  ? "SELECT pg_encoding_to_char(encoding), datcollate, datctype, datlocprovider,"
				    " daticulocale FROM pg_database WHERE datname = current_database()"
				  : "SELECT pg_encoding_to_char(encoding), datcollate, datctype, 'c', NULL"
				    " FROM pg_database WHERE datname = current_database()",
			  0, NULL);
	if (!res)
		goto out;
	enc = dd_strdup(PQgetvalue(res, 0, 0));
	collate = dd_strdup(PQgetvalue(res, 0, 1));
	ctype = dd_strdup(PQgetvalue(res, 0, 2));
	provider = dd_strdup(PQgetvalue(res, 0, 3));
	icu = PQgetisnull(res, 0, 4) ? NULL : dd_strdup(PQgetvalue(res, 0, 4));
	PQclear(res);
	res = NULL;

	if (read_catalog(c, o, &rels, &nrels) < 0)
		goto out;

	/* lock what we dump, like pg_dump: no TRUNCATE or DDL until we are done */
	exclude = dd_calloc(nrels + 1, sizeof(char *));
	for (size_t i = 0; i < nrels; i++) {
		struct rel *r = &rels[i];
		if (r->excluded) {
			char *s = dd_pg_quote_ident(r->nspname), *t = dd_pg_quote_ident(r->relname);
			exclude[nexclude++] = dd_asprintf("%s.%s", s, t);
			free(s);
			free(t);
			continue;
		}
		if (r->relkind == 'r' || r->relkind == 'p') {
			dd_buf_puts(&lock, lock.len ? ", " : "LOCK TABLE ");
			dd_buf_puts(&lock, r->qname);
		}
	}
	if (lock.len) {
		dd_buf_puts(&lock, " IN ACCESS SHARE MODE");
		if (dd_pg_exec(c, lock.ptr) < 0) {
			dd_error_wrap("locking the tables to dump");
			dd_hint("grant this user SELECT on every table, or leave tables out with exclude_tables");
			goto out;
		}
	}

	/* schema: pg_dump in the same snapshot, in parallel with the rows */
	child_conninfo = dd_pg_conninfo_nosecret(c, &child_password);
	const char *sections[2] = { "pre-data", "post-data" };
	for (int i = 0; i < 2; i++) {
		sect[i].pgdump = &pgdump;
		sect[i].conninfo = child_conninfo;
		sect[i].password = child_password;
		sect[i].snapshot_id = snapshot_id;
		sect[i].section = sections[i];
		sect[i].exclude = (const char *const *)exclude;
		sect[i].nexclude = nexclude;
		if (pthread_create(&sect_threads[i], NULL, section_thread, &sect[i]) != 0) {
			dd_error("cannot start a thread");
			goto out;
		}
		sect_started[i] = 1;
	}

	if (read_sequences(c, rels, nrels, &seqs, &nseq) < 0)
		goto out;

	/* the COPY queue */
	items = dd_calloc(nrels + 1, sizeof(*items));
	for (size_t i = 0; i < nrels; i++) {
		struct rel *r = &rels[i];
		if (r->relkind != 'r' || r->excluded || r->no_data)
			continue;
		struct item *it = &items[nitems++];
		const char *cols = r->cols ? r->cols : "";
		it->stream = dd_asprintf("data/%s", r->qname);
		it->table = dd_strdup(r->qname);
		it->cols = dd_strdup(cols);
		it->est = r->est;
		if (r->pk)
			it->sql = dd_asprintf("COPY (SELECT %s FROM ONLY %s ORDER BY %s) TO STDOUT", cols, r->qname,
					      r->pk);
		else if (*cols)
			it->sql = dd_asprintf("COPY %s (%s) TO STDOUT", r->qname, cols);
		else
			it->sql = dd_asprintf("COPY %s TO STDOUT", r->qname);
		it->warn_no_pk = r->pk == NULL;
		pool.total_est += r->est;
	}
	stats->tables = nitems;
	res = dd_pg_query(c, "SELECT count(*) FROM pg_largeobject_metadata", 0, NULL);
	if (!res)
		goto out;
	long nlo = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	res = NULL;
	if (nlo > 0) {
		struct item *it = &items[nitems++];
		it->stream = dd_strdup("largeobjects");
		it->sql = dd_strdup(lo_sql);
		it->est = 0;
	}

	pool.sw = sw;
	pool.conninfo = o->conninfo;
	pool.snapshot_id = snapshot_id;
	pool.items = dd_calloc(nitems + 1, sizeof(struct item *));
	for (size_t i = 0; i < nitems; i++)
		pool.items[i] = &items[i];
	qsort(pool.items, nitems, sizeof(struct item *), cmp_item);
	pool.nitems = nitems;
	nworkers = o->jobs > 0 ? (size_t)o->jobs : (size_t)sysconf(_SC_NPROCESSORS_ONLN);
	if (nworkers < 1)
		nworkers = 1;
	if (nworkers > nitems)
		nworkers = nitems;
	int copied = dd_pg_workers_run(&pool.w, nworkers, worker, &pool, show_progress, &pool);
	for (int i = 0; i < 2; i++)
		if (sect_started[i]) {
			pthread_join(sect_threads[i], NULL);
			sect_started[i] = 0;
		}
	if (dd_pg_interrupted()) {
		dd_error("interrupted");
		goto out;
	}
	if (copied < 0) {
		if (!dd_error_hint() && strstr(dd_error_last(), "permission denied"))
			dd_hint("grant this user SELECT on every table, or leave tables out with exclude_tables");
		goto out;
	}
	for (int i = 0; i < 2; i++)
		if (sect[i].rc < 0) {
			dd_error("%s", sect[i].error);
			if (sect[i].hint)
				dd_hint("%s", sect[i].hint);
			goto out;
		}

	{
		const char *pre_attrs[] = { "encoding", enc, "lc_collate", collate, "lc_ctype", ctype,
					    "locale_provider", provider, "icu_locale", icu, NULL };
		if (write_stream(sw, "schema/pre-data", &sect[0].out, pre_attrs) < 0 ||
		    write_stream(sw, "schema/post-data", &sect[1].out, NULL) < 0)
			goto out;
		char num[32];
		snprintf(num, sizeof(num), "%zu", nseq);
		const char *seq_attrs[] = { "rows", num, NULL };
		if (write_stream(sw, "sequences", &seqs, seq_attrs) < 0)
			goto out;
	}
	for (size_t i = 0; i < nitems; i++) {
		if (!items[i].table)
			continue;
		stats->rows += items[i].rows;
		stats->bytes += items[i].bytes;
	}
	if (dd_pg_exec(c, "COMMIT") < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0) {
		/* stop the pg_dump children's threads before their buffers go */
		for (int i = 0; i < 2; i++)
			if (sect_started[i])
				pthread_join(sect_threads[i], NULL);
		const char *e = dd_error_last() ? dd_error_last() : "";
		if (strncmp(e, "cannot connect", 14) && *stats->database)
			dd_error_wrap("snapshot of database %s", stats->database);
	}
	for (int i = 0; i < 2; i++) {
		dd_buf_release(&sect[i].out);
		free(sect[i].error);
		free(sect[i].hint);
	}
	PQclear(res);
	if (c) {
		dd_pg_cancel_unregister(c);
		PQfinish(c);
	}
	if (installed)
		dd_pg_interrupt_remove();
	for (size_t i = 0; exclude && i < nexclude; i++)
		free(exclude[i]);
	free(exclude);
	free(child_conninfo);
	if (child_password) {
		explicit_bzero(child_password, strlen(child_password));
		free(child_password);
	}
	free(pool.items);
	dd_pg_workers_release(&pool.w);
	items_free(items, nitems);
	rels_free(rels, nrels);
	dd_pgdump_release(&pgdump);
	dd_buf_release(&seqs);
	dd_buf_release(&lock);
	free(snapshot_id);
	free(enc);
	free(collate);
	free(ctype);
	free(provider);
	free(icu);
	return rc;
}
