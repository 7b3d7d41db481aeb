/*
 * pg/sqlload.c: build a database from plain SQL, schema.sql then data.sql
 * (an inline profile's files, docs/FORMAT.md §9), for the switch's "restore
 * into a new template" step: no store, no key.
 *
 * The texts are what psql would run (`psql -f schema.sql; psql -f
 * data.sql`), executed here over libpq so no psql binary is needed: SQL
 * between COPY blocks goes to PQexec, and each `COPY ... FROM stdin;` line's
 * rows, up to the line `\.`, to PQputCopyData, as psql does. The files come
 * from git, like the application's own migrations: they are run, not
 * trusted to be harmless, and only ever into the new database this builds.
 */
#include "pg/pg.h"
#include "pg/internal.h"
#include "util/buf.h"
#include "util/err.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

static int
is_copy_from_stdin(const char *line, size_t len)
{
	static const char tail[] = " FROM stdin;";
	size_t tl = sizeof(tail) - 1;

	return len > 5 + tl && !strncmp(line, "COPY ", 5) && !memcmp(line + len - tl, tail, tl);
}

/* Run the SQL gathered so far (if any but blanks and comments would reach the server, PQexec copes). */
static int
run_pending(PGconn *c, struct dd_buf *sql, const char *what, size_t lineno)
{
	int rc = 0;

	if (sql->len && strspn(sql->ptr, " \t\n") < sql->len && dd_pg_exec(c, dd_buf_cstr(sql)) < 0)
		rc = dd_error_wrap("%s, the statements before line %zu", what, lineno);
	dd_buf_clear(sql);
	return rc;
}

/* Send the rows of a COPY block starting at *pos, up to and past its "\." line. */
static int
copy_rows(PGconn *c, const char *text, size_t len, size_t *pos, size_t *lineno, const char *what)
{
	size_t start = *pos, p = *pos;
	PGresult *res;
	int rc = 0;

	for (;;) {
		const char *nl = memchr(text + p, '\n', len - p);
		size_t l = nl ? (size_t)(nl - (text + p)) : len - p;
		if (p >= len)
			return dd_error("%s: line %zu: a COPY block without its \"\\.\" line", what, *lineno);
		(*lineno)++;
		if (l == 2 && text[p] == '\\' && text[p + 1] == '.') {
			if (p > start && PQputCopyData(c, text + start, (int)(p - start)) != 1)
				rc = -1;
			p += nl ? l + 1 : l;
			break;
		}
		p += nl ? l + 1 : l;
		if (p - start >= (1u << 20)) {
			if (PQputCopyData(c, text + start, (int)(p - start)) != 1)
				rc = -1;
			start = p;
		}
	}
	*pos = p;
	if (PQputCopyEnd(c, rc < 0 ? "write failed" : NULL) != 1)
		rc = -1;
	while ((res = PQgetResult(c))) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == 0)
			rc = dd_pg_error(c, res);
		PQclear(res);
	}
	if (rc < 0)
		dd_error_wrap("%s, the COPY block ending at line %zu", what, *lineno);
	return rc;
}

int
dd_pg_run_sql(PGconn *c, const char *text, size_t len, const char *what)
{
	struct dd_buf sql = DD_BUF_INIT;
	size_t pos = 0, lineno = 0;
	int rc = -1;

	while (pos < len) {
		const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - line) : len - pos;
		lineno++;
		if (!is_copy_from_stdin(line, l)) {
			dd_buf_put(&sql, line, nl ? l + 1 : l);
			pos += nl ? l + 1 : l;
			continue;
		}
		if (run_pending(c, &sql, what, lineno) < 0)
			goto out;
		dd_buf_put(&sql, line, l);
		PGresult *res = PQexec(c, dd_buf_cstr(&sql));
		if (PQresultStatus(res) != PGRES_COPY_IN) {
			dd_pg_error(c, res);
			PQclear(res);
			dd_error_wrap("%s, line %zu: `%.*s`", what, lineno, l > 200 ? 200 : (int)l, line);
			goto out;
		}
		PQclear(res);
		dd_buf_clear(&sql);
		pos += nl ? l + 1 : l;
		if (copy_rows(c, text, len, &pos, &lineno, what) < 0) {
			/* the statement the rows were for (promote-schema's refusal names it) */
			dd_error_wrap("`%.*s`", l > 200 ? 200 : (int)l, line);
			goto out;
		}
	}
	if (run_pending(c, &sql, what, lineno + 1) < 0)
		goto out;
	rc = 0;
out:
	dd_buf_release(&sql);
	return rc;
}

int
dd_pg_build_sql(PGconn *m, const char *conninfo, const char *newdb, const struct dd_buf *schema,
		const struct dd_buf *data, char **seq_fp)
{
	char *q = dd_pg_quote_ident(newdb), *sql = dd_asprintf("CREATE DATABASE %s TEMPLATE template0", q);
	PGconn *c = NULL;
	int rc = -1;

	*seq_fp = NULL;
	if (dd_pg_exec(m, sql) < 0) {
		dd_error_wrap("creating database %s", newdb);
		goto out;
	}
	if (dd_pg_connect(&c, conninfo, newdb) < 0)
		goto out;
	dd_pg_cancel_register(c);
	/*
	 * as pg_dump's own preamble has it: functions may name tables created later (a normalised
	 * schema.sql sets this itself; an older one does not); data.sql then runs under the default
	 * search_path, which the schema's preamble sets to '' (a hand-written data.sql may not qualify)
	 */
	if (dd_pg_exec(c, "SET check_function_bodies = false; SET client_min_messages = warning") < 0 ||
	    dd_pg_run_sql(c, schema->ptr ? schema->ptr : "", schema->len, "schema.sql") < 0 ||
	    dd_pg_exec(c, "RESET search_path") < 0 ||
	    dd_pg_run_sql(c, data->ptr ? data->ptr : "", data->len, "data.sql") < 0)
		goto out;
	if (PQtransactionStatus(c) != PQTRANS_IDLE) {
		dd_error("data.sql leaves a transaction open (no COMMIT at its end?)");
		goto out;
	}
	if (dd_pg_exec(c, "ANALYZE") < 0 || dd_pg_fingerprint_seq(c, seq_fp) < 0)
		goto out;
	rc = 0;
out:
	if (c) {
		dd_pg_cancel_unregister(c);
		PQfinish(c);
	}
	free(sql);
	free(q);
	return rc;
}
