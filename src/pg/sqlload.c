/*
 * pg/sqlload.c: build a database from plain SQL, an inline profile's files
 * (docs/FORMAT.md §9): schema.sql's pre-data part, data.sql, then
 * schema.sql's post-data part (the order pg_restore loads a dump in), for
 * the switch's "restore into a new template" step: no store, no key. The
 * database gets the source's encoding and locale (schema.sql's database
 * line). A psql meta-command line in either file is refused (psql would
 * run it; here it is not what the snapshot wrote).
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
#include "util/log.h"

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

/* ---- the scripts' top level: quoting state, meta-commands, the marker ---- */

static int
ident_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
	       ch == '$' || (unsigned char)ch >= 0x80;
}

/* The length of a dollar-quote tag "$tag$" at t[i] (0: none), as psql's lexer reads one. */
static size_t
dollar_tag(const char *t, size_t len, size_t i)
{
	size_t j = i + 1;

	if (i > 0 && ident_char(t[i - 1]))
		return 0;
	if (j < len && t[j] >= '0' && t[j] <= '9')
		return 0;
	while (j < len && t[j] != '$' && ident_char(t[j]))
		j++;
	return j < len && t[j] == '$' ? j - i + 1 : 0;
}

struct scan {
	int copy_blocks;          /* data.sql: skip the rows of COPY ... FROM stdin blocks */
	int for_psql;             /* refuse a literal psql would read differently with standard_conforming_strings off */
	size_t markers;           /* marker lines seen at the top level */
	size_t mark_at, mark_end; /* the first one: its start, and past its line end */
};

/*
 * Walk `t` as psql's lexer would: a backslash outside quoted text (and
 * outside -- comments) starts a meta-command, which is refused; marker
 * lines at the top level are counted.
 */
static int
scan(const char *t, size_t len, struct scan *sc, const char *what)
{
	enum { TOP, SQ, ESQ, DQ, DOLLAR, LINE, BLOCK } st = TOP;
	size_t i = 0, line = 1, depth = 0, tag_at = 0, tag_len = 0, ml = strlen(DD_PG_POST_DATA_MARKER);

	if (len && memchr(t, '\0', len))
		return dd_error("%s holds a NUL byte", what);
	while (i < len) {
		if ((i == 0 || t[i - 1] == '\n') && st == TOP) {
			const char *nl = memchr(t + i, '\n', len - i);
			size_t l = nl ? (size_t)(nl - (t + i)) : len - i;
			if (l == ml && !memcmp(t + i, DD_PG_POST_DATA_MARKER, ml)) {
				if (!sc->markers++)
					sc->mark_at = i, sc->mark_end = nl ? i + l + 1 : len;
				i += l;
				continue;
			}
			if (sc->copy_blocks && is_copy_from_stdin(t + i, l)) {
				/* the rows up to the "\." line are data, not script */
				i += nl ? l + 1 : l;
				line++;
				while (i < len) {
					const char *e = memchr(t + i, '\n', len - i);
					size_t el = e ? (size_t)(e - (t + i)) : len - i;
					int end = el == 2 && t[i] == '\\' && t[i + 1] == '.';
					i += e ? el + 1 : el;
					line++;
					if (end)
						break;
				}
				continue;
			}
		}
		char ch = t[i];
		if (ch == '\n')
			line++;
		switch (st) {
		case TOP:
		case BLOCK:
			if (ch == '\\')
				return dd_error("%s, line %zu: a psql meta-command (a backslash outside quoted text): "
						"refusing the file", what, line);
			if (ch == '/' && i + 1 < len && t[i + 1] == '*') {
				st = BLOCK, depth++, i++;
			} else if (st == BLOCK) {
				if (ch == '*' && i + 1 < len && t[i + 1] == '/' && (i++, !--depth))
					st = TOP;
			} else if (ch == '-' && i + 1 < len && t[i + 1] == '-') {
				st = LINE;
			} else if (ch == '\'') {
				st = i > 0 && (t[i - 1] == 'E' || t[i - 1] == 'e') && (i < 2 || !ident_char(t[i - 2])) ? ESQ : SQ;
			} else if (ch == '"') {
				st = DQ;
			} else if (ch == '$' && (tag_len = dollar_tag(t, len, i))) {
				st = DOLLAR, tag_at = i, i += tag_len - 1;
			}
			break;
		case LINE:
			if (ch == '\n')
				st = TOP;
			break;
		case SQ:
		case ESQ:
			if (ch == '\\' && st == ESQ && i + 1 < len) {
				line += t[++i] == '\n';
			} else if (ch == '\'') {
				/*
				 * psql reads a plain literal as the server's standard_conforming_strings says,
				 * which the text itself can turn off: then an odd run of backslashes before
				 * this quote escapes it and psql's literal ends elsewhere than this scan's
				 */
				size_t k = 0;
				while (st == SQ && sc->for_psql && k < i && t[i - 1 - k] == '\\')
					k++;
				if (k % 2)
					return dd_error("%s, line %zu: a string literal with a backslash before its closing "
							"quote, which psql reads differently when standard_conforming_strings "
							"is off: refusing to write it for psql", what, line);
				st = TOP; /* '' reopens at once: the same state */
			}
			break;
		case DQ:
			if (ch == '"')
				st = TOP;
			break;
		case DOLLAR:
			if (ch == '$' && i + tag_len <= len && !memcmp(t + i, t + tag_at, tag_len))
				st = TOP, i += tag_len - 1;
			break;
		}
		i++;
	}
	return 0;
}

int
dd_pg_sql_check_meta(const char *text, size_t len, int for_psql, const char *what)
{
	struct scan sc = { .copy_blocks = 1, .for_psql = for_psql };

	return scan(text, len, &sc, what);
}

int
dd_pg_sql_schema_split(const char *text, size_t len, int for_psql, size_t *pre_end, size_t *post_start,
		       const char *what)
{
	struct scan sc = { .for_psql = for_psql };

	if (scan(text, len, &sc, what) < 0)
		return -1;
	if (sc.markers != 1) {
		dd_error("%s holds %s line \"%s\" at its top level (it must hold exactly one, between the pre-data "
			 "and the post-data parts)", what, sc.markers ? "more than one" : "no", DD_PG_POST_DATA_MARKER);
		dd_hint("take the snapshot again with this version (`git dnadata snapshot`), or put the line back");
		return -1;
	}
	*pre_end = sc.mark_at;
	*post_start = sc.mark_end;
	return 0;
}

/* ---- loading ---- */

/* One part of schema.sql in one PQexec (no COPY detection: a schema has no rows). */
static int
exec_part(PGconn *c, const char *text, size_t len, const char *what)
{
	char *sql;
	int rc = 0;

	if (strspn(text, " \t\n") >= len)
		return 0;
	sql = dd_strndup(text, len);
	if (dd_pg_exec(c, sql) < 0)
		rc = dd_error_wrap("%s", what);
	free(sql);
	return rc;
}

int
dd_pg_run_sql_files(PGconn *c, const struct dd_buf *schema, const struct dd_buf *data, const char *sname,
		    const char *dname)
{
	const char *s = schema->ptr ? schema->ptr : "", *d = data->ptr ? data->ptr : "";
	size_t pre_end, post_start;
	char *w1 = dd_asprintf("%s, its pre-data part", sname), *w2 = dd_asprintf("%s, its post-data part", sname);
	int rc = -1;

	if (dd_pg_sql_schema_split(s, schema->len, 0, &pre_end, &post_start, sname) < 0 ||
	    dd_pg_sql_check_meta(d, data->len, 0, dname) < 0)
		goto out;
	/*
	 * as pg_dump's own preamble has it: functions may name tables created later (a normalised
	 * schema.sql sets this itself); the data then runs under the default search_path, which the
	 * schema's preamble sets to '' (a hand-written data.sql may not qualify); the post-data part,
	 * as pg_restore runs it, after the rows: constraints checked, indexes built, views refreshed
	 * over the data
	 */
	if (dd_pg_exec(c, "SET check_function_bodies = false; SET client_min_messages = warning") < 0 ||
	    exec_part(c, s, pre_end, w1) < 0 || dd_pg_exec(c, "RESET search_path") < 0 ||
	    dd_pg_run_sql(c, d, data->len, dname) < 0)
		goto out;
	if (PQtransactionStatus(c) != PQTRANS_IDLE) {
		dd_error("%s leaves a transaction open (no COMMIT at its end?)", dname);
		goto out;
	}
	if (dd_pg_exec(c, "SELECT pg_catalog.set_config('search_path', '', false)") < 0 ||
	    exec_part(c, s + post_start, schema->len - post_start, w2) < 0)
		goto out;
	rc = 0;
out:
	free(w1);
	free(w2);
	return rc;
}

/* The value of `key` on schema.sql's database line (a word db_word() accepts), or NULL. */
static char *
db_attr(const char *line, size_t len, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = strlen(DD_PG_DB_LINE); i < len;) {
		size_t w = strcspn(line + i, " \n");
		if (w > len - i)
			w = len - i;
		if (w > kl + 1 && !strncmp(line + i, key, kl) && line[i + kl] == '=') {
			char *v = dd_strndup(line + i + kl + 1, w - kl - 1);
			if (strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-") == strlen(v))
				return v;
			free(v);
			return NULL;
		}
		i += w + 1;
	}
	return NULL;
}

/* CREATE DATABASE with the source's encoding and locale (schema.sql's database line). */
static int
create_db(PGconn *m, const char *name, const struct dd_buf *schema)
{
	const char *text = schema->ptr ? schema->ptr : "", *nl = memchr(text, '\n', schema->len);
	size_t l = nl ? (size_t)(nl - text) : schema->len, hl = strlen(DD_PG_DB_LINE);
	int has = l >= hl && !strncmp(text, DD_PG_DB_LINE, hl);
	char *enc = has ? db_attr(text, l, "encoding") : NULL, *coll = has ? db_attr(text, l, "lc_collate") : NULL,
	     *ctype = has ? db_attr(text, l, "lc_ctype") : NULL, *prov = has ? db_attr(text, l, "locale_provider") : NULL,
	     *icu = has ? db_attr(text, l, "icu_locale") : NULL;
	int rc = dd_pg_create_db_like(m, name, enc, coll, ctype, prov, icu);

	free(enc);
	free(coll);
	free(ctype);
	free(prov);
	free(icu);
	return rc;
}

int
dd_pg_build_sql(PGconn *m, const char *conninfo, const char *newdb, const struct dd_buf *schema,
		const struct dd_buf *data, char **seq_fp)
{
	PGconn *c = NULL;
	size_t a, b;
	int rc = -1;

	*seq_fp = NULL;
	/* refused before a database is made for it */
	if (dd_pg_sql_schema_split(schema->ptr ? schema->ptr : "", schema->len, 0, &a, &b, "schema.sql") < 0 ||
	    dd_pg_sql_check_meta(data->ptr ? data->ptr : "", data->len, 0, "data.sql") < 0)
		return -1;
	if (create_db(m, newdb, schema) < 0)
		return -1;
	if (dd_pg_connect(&c, conninfo, newdb) < 0)
		goto out;
	dd_pg_cancel_register(c);
	if (dd_pg_run_sql_files(c, schema, data, "schema.sql", "data.sql") < 0)
		goto out;
	if (dd_pg_exec(c, "ANALYZE") < 0 || dd_pg_fingerprint_seq(c, seq_fp) < 0)
		goto out;
	rc = 0;
out:
	if (c) {
		dd_pg_cancel_unregister(c);
		PQfinish(c);
	}
	return rc;
}
