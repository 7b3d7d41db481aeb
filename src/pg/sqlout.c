/*
 * pg/sqlout.c: a PostgreSQL snapshot as plain SQL a reviewer can read and
 * psql can load (issue 18): `export --sql` and an inline profile's files
 * (docs/FORMAT.md §9).
 *
 * schema.sql is the source database's encoding and locale line, the
 * snapshot's pre-data script, a marker line and its post-data script, each
 * normalised (pg/normalise.h); loaders run data.sql between the two parts,
 * as pg_restore does (constraints, indexes, triggers and materialized
 * views' REFRESH after the rows). data.sql holds, per table, one `COPY ... FROM stdin;`
 * block with the stream's COPY text as it is (one row per line, in primary
 * key order: a changed row is a changed line in `git diff`, and the values
 * are exact), then the sequences' setval() calls and the large objects'
 * lo_put() calls, all in one transaction. Tables come in foreign-key order
 * (a referenced table before the tables that reference it, ties and cycles
 * by name) and the tables' user triggers are disabled while the rows are
 * copied (all before the first row, enabled again after the deferred
 * checks), which matters only to a data.sql loaded after a whole schema
 * (an older layout, or a hand-made schema). Nothing in it depends on when
 * or where it was written.
 *
 * The snapshot is hostile input: a stream name, a column list, a sequence
 * line or a large-object row that is not what FORMAT.md §7 says, or a COPY
 * line `\.` (which would end the block early and turn the rest into SQL), is
 * refused.
 */
#include "pg/pg.h"
#include "pg/internal.h"
#include "pg/normalise.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

int
dd_pg_sql_schema_join(const char *pre, size_t prelen, const char *post, size_t postlen, struct dd_buf *out)
{
	struct dd_buf a = DD_BUF_INIT, b = DD_BUF_INIT;
	int rc = -1;

	if (dd_schema_normalise(pre, prelen, &a) < 0 || dd_schema_normalise_part(post, postlen, 0, &b) < 0)
		goto out;
	dd_buf_put(out, a.ptr ? a.ptr : "", a.len);
	dd_buf_printf(out, "%s" DD_PG_POST_DATA_MARKER "\n", a.len ? "\n" : "");
	if (b.len)
		dd_buf_putc(out, '\n');
	dd_buf_put(out, b.ptr ? b.ptr : "", b.len);
	rc = 0;
out:
	dd_buf_release(&a);
	dd_buf_release(&b);
	return rc;
}

/* A locale or encoding name a database line may hold: no quoting needed, nothing a reader could misparse. */
static int
db_word(const char *v)
{
	return v && *v && strlen(v) < 128 &&
	       strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-") == strlen(v);
}

void
dd_pg_sql_db_line(const char *const *kv, struct dd_buf *out)
{
	size_t start = out->len;

	dd_buf_puts(out, DD_PG_DB_LINE);
	for (size_t i = 0; kv[i]; i += 2)
		if (db_word(kv[i + 1]))
			dd_buf_printf(out, " %s=%s", kv[i], kv[i + 1]);
	if (out->len == start + strlen(DD_PG_DB_LINE))
		dd_buf_truncate(out, start);
	else
		dd_buf_putc(out, '\n');
}

/* The source database's encoding and locale (the pre-data stream's attributes, as restore.c uses them). */
static void
db_line(const struct dd_stream_info *pre, struct dd_buf *out)
{
	static const char *const keys[] = { "encoding", "lc_collate", "lc_ctype", "locale_provider", "icu_locale" };
	const char *kv[2 * 5 + 1];
	size_t n = 0;

	for (size_t i = 0; i < 5; i++) {
		kv[n++] = keys[i];
		kv[n++] = dd_stream_attr(pre, keys[i]);
	}
	kv[n] = NULL;
	dd_pg_sql_db_line(kv, out);
}

int
dd_pg_sql_schema(struct dd_store *st, const struct dd_snapshot *snap, struct dd_buf *out)
{
	const struct dd_stream_info *si = dd_snapshot_find(snap, "schema/pre-data");
	struct dd_buf pre = DD_BUF_INIT, post = DD_BUF_INIT;
	int rc = -1;

	if (!si || dd_pg_read_stream(st, snap, "schema/pre-data", &pre, 0) != 0) {
		if (!si)
			dd_error("snapshot %.12s holds no PostgreSQL schema", dd_snapshot_id(snap));
		goto out;
	}
	if (dd_pg_read_stream(st, snap, "schema/post-data", &post, 0) < 0)
		goto out;
	db_line(si, out);
	if (dd_pg_sql_schema_join(pre.ptr ? pre.ptr : "", pre.len, post.ptr ? post.ptr : "", post.len, out) < 0) {
		dd_error_wrap("normalising the schema of snapshot %.12s", dd_snapshot_id(snap));
		goto out;
	}
	rc = 0;
out:
	dd_buf_release(&pre);
	dd_buf_release(&post);
	return rc;
}

/* ---- the table order: foreign keys first ---- */

struct table {
	const struct dd_stream_info *si;
	const char *name; /* qualified, as format('%I.%I') writes it */
	char **needs;     /* tables its foreign keys reference */
	size_t nneeds;
	int done;
};

/* A qualified name at *p (identifiers and "quoted" ones joined by '.'), copied; NULL if none. */
static char *
take_name(const char **p)
{
	const char *s = *p, *start = s;

	for (;;) {
		if (*s == '"') {
			for (s++; *s && !(*s == '"' && s[1] != '"'); s += *s == '"' ? 2 : 1)
				;
			if (*s != '"')
				return NULL;
			s++;
		} else {
			while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
			       *s == '_' || *s == '$' || (unsigned char)*s >= 0x80)
				s++;
		}
		if (*s != '.')
			break;
		s++;
	}
	if (s == start)
		return NULL;
	*p = s;
	return dd_strndup(start, (size_t)(s - start));
}

static struct table *
find_table(struct table *t, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i].name, name))
			return &t[i];
	return NULL;
}

/* "ALTER TABLE [ONLY] a ADD CONSTRAINT ... FOREIGN KEY (...) REFERENCES b(...)": a needs b. */
static void
add_fk(struct table *t, size_t n, const char *sql)
{
	const char *p = strstr(sql, "ALTER TABLE "), *r;
	char *from = NULL, *to = NULL;
	struct table *a;

	if (!p)
		return;
	p += strlen("ALTER TABLE ");
	if (!strncmp(p, "ONLY ", 5))
		p += 5;
	from = take_name(&p);
	r = from ? strstr(p, " REFERENCES ") : NULL;
	if (r) {
		r += strlen(" REFERENCES ");
		to = take_name(&r);
	}
	if (to && strcmp(from, to) && (a = find_table(t, n, from)) && find_table(t, n, to)) {
		a->needs = dd_realloc(a->needs, (a->nneeds + 1) * sizeof(*a->needs));
		a->needs[a->nneeds++] = to;
		to = NULL;
	}
	free(from);
	free(to);
}

static int
ready(struct table *t, size_t n, const struct table *x)
{
	for (size_t i = 0; i < x->nneeds; i++) {
		const struct table *y = find_table(t, n, x->needs[i]);
		if (y && !y->done)
			return 0;
	}
	return 1;
}

/*
 * order[] = the tables, each after those it references (Kahn's algorithm,
 * the first ready one in name order each time; what a cycle leaves goes in
 * name order). `t` comes sorted by name.
 */
static void
fk_order(struct table *t, size_t n, struct table **order)
{
	size_t k = 0;

	while (k < n) {
		size_t i;
		for (i = 0; i < n; i++)
			if (!t[i].done && ready(t, n, &t[i]))
				break;
		if (i == n) /* a cycle: the first not done */
			for (i = 0; t[i].done; i++)
				;
		t[i].done = 1;
		order[k++] = &t[i];
	}
}

static int
collect_tables(struct dd_store *st, const struct dd_snapshot *snap, struct table **out, size_t *nout)
{
	struct dd_buf post = DD_BUF_INIT;
	struct dd_schema_entry *e = NULL;
	struct table *t = dd_calloc(dd_snapshot_count(snap) + 1, sizeof(*t));
	size_t n = 0, ne = 0;

	for (size_t i = 0; i < dd_snapshot_count(snap); i++) {
		const struct dd_stream_info *si = dd_snapshot_stream(snap, i);
		const char *name = dd_stream_name(si), *table = dd_stream_attr(si, "table"),
			   *cols = dd_stream_attr(si, "columns");
		if (strncmp(name, "data/", 5))
			continue;
		if (!table || strcmp(table, name + 5) || !dd_pg_is_qualified_name(table) || !cols ||
		    !dd_pg_is_column_list(cols)) {
			free(t);
			return dd_error("snapshot %.12s: stream \"%.200s\" is not a table's rows as FORMAT.md §7 says",
					dd_snapshot_id(snap), name);
		}
		t[n].si = si;
		t[n++].name = table;
	}
	if (dd_pg_read_stream(st, snap, "schema/post-data", &post, 0) < 0) {
		free(t);
		return -1;
	}
	dd_schema_split(&e, &ne, post.ptr ? post.ptr : "", post.len);
	for (size_t i = 0; i < ne; i++)
		if (!strcmp(e[i].type, "FK CONSTRAINT"))
			add_fk(t, n, e[i].sql);
	dd_schema_entries_free(e, ne);
	dd_buf_release(&post);
	*out = t;
	*nout = n;
	return 0;
}

static void
tables_free(struct table *t, size_t n)
{
	for (size_t i = 0; t && i < n; i++) {
		for (size_t j = 0; j < t[i].nneeds; j++)
			free(t[i].needs[j]);
		free(t[i].needs);
	}
	free(t);
}

/* ---- data.sql ---- */

struct out {
	int (*fn)(void *arg, const void *data, size_t len);
	void *arg;
	struct dd_buf b; /* flushed at 1 MiB */
};

static int
flush(struct out *o)
{
	int rc = o->b.len ? o->fn(o->arg, o->b.ptr, o->b.len) : 0;

	dd_buf_clear(&o->b);
	return rc;
}

static int
maybe_flush(struct out *o)
{
	return o->b.len >= (1u << 20) ? flush(o) : 0;
}

static const char preamble[] =
	"-- Rows of a git-dnadata snapshot: load with `psql -f data.sql` after schema.sql.\n"
	"SET client_encoding = '%s';\n"
	"SET standard_conforming_strings = on;\n"
	"SET DateStyle = 'ISO, YMD';\n"
	"SET IntervalStyle = postgres;\n"
	"SET TimeZone = 'UTC';\n"
	"SET extra_float_digits = 3;\n"
	"BEGIN;\n"
	"SET CONSTRAINTS ALL DEFERRED;\n";

/* One table's block: its rows copied as they are, refusing a line `\.` (the end marker). */
static int
copy_block(struct out *o, struct dd_store *st, const struct table *t)
{
	const char *cols = dd_stream_attr(t->si, "columns");
	struct dd_stream_reader *rd;
	const void *data;
	size_t len;
	/* at a line's start; the line so far: 1 "\\", 2 "\\." (psql's end marker, also before a CR), 3 other */
	int n = 0, bol = 1, dot = 0, bad = 0;

	dd_buf_printf(&o->b, "\nCOPY %s%s%s%s FROM stdin;\n", t->name, *cols ? " (" : "", cols, *cols ? ")" : "");
	if (dd_stream_open(&rd, st, t->si) < 0)
		return dd_error_wrap("reading %s", dd_stream_name(t->si));
	while (!bad && (n = dd_stream_next(rd, &data, &len)) > 0) {
		const char *s = data;
		for (size_t i = 0; i < len && !bad; i++) {
			if (s[i] == '\n') {
				bad = dot == 2;
				bol = 1, dot = 0;
				continue;
			}
			dot = (bol && s[i] == '\\') ? 1 : (dot == 1 && s[i] == '.') ? 2 : (dot == 2 && s[i] == '\r') ? 2 : 3;
			bol = 0;
		}
		dd_buf_put(&o->b, data, len);
		if (!bad && maybe_flush(o) < 0) {
			n = -1;
			break;
		}
	}
	dd_stream_close(rd);
	if (bad)
		return dd_error("%s holds a line \"\\.\", which no COPY text row can be: refusing it",
				dd_stream_name(t->si));
	if (n < 0)
		return dd_error_wrap("reading %s", dd_stream_name(t->si));
	if (!bol)
		return dd_error("%s does not end with a line end: refusing it", dd_stream_name(t->si));
	dd_buf_puts(&o->b, "\\.\n");
	return maybe_flush(o);
}

static int
all_digits(const char *s, int sign)
{
	if (sign && *s == '-')
		s++;
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* Split `line` at tabs into exactly n fields (in place). */
static int
fields(char *line, char **f, int n)
{
	for (int i = 0; i < n; i++) {
		f[i] = line;
		line = strchr(line, '\t');
		if (i < n - 1) {
			if (!line)
				return -1;
			*line++ = '\0';
		} else if (line) {
			return -1;
		}
	}
	return 0;
}

/* "name TAB value TAB t|f" lines (FORMAT.md §7) as setval() calls. */
static int
sequences(struct out *o, struct dd_store *st, const struct dd_snapshot *snap)
{
	struct dd_buf seq = DD_BUF_INIT;
	int rc = dd_pg_read_stream(st, snap, "sequences", &seq, 0), first = 1;

	if (rc == DD_NOTFOUND)
		return 0;
	if (rc < 0)
		return -1;
	for (char *line = seq.ptr, *nl; line && line < seq.ptr + seq.len; line = nl + 1) {
		char *f[3], *lit;
		if (!(nl = memchr(line, '\n', (size_t)(seq.ptr + seq.len - line))))
			break;
		*nl = '\0';
		if (fields(line, f, 3) < 0 || !dd_pg_is_qualified_name(f[0]) || !all_digits(f[1], 1) ||
		    strlen(f[1]) > 20 || (strcmp(f[2], "t") && strcmp(f[2], "f"))) {
			rc = dd_error("snapshot %.12s: a malformed line in its sequences", dd_snapshot_id(snap));
			break;
		}
		lit = dd_pg_quote_literal(f[0]);
		dd_buf_printf(&o->b, "%sSELECT pg_catalog.setval(%s, %s, %s);\n", first ? "\n" : "", lit, f[1],
			      *f[2] == 't' ? "true" : "false");
		free(lit);
		first = 0;
	}
	dd_buf_release(&seq);
	return rc < 0 ? -1 : maybe_flush(o);
}

/* "oid TAB offset TAB \\x<hex>" rows (FORMAT.md §7) as lo_put() calls. */
static int
large_objects(struct out *o, struct dd_store *st, const struct dd_snapshot *snap)
{
	struct dd_buf lo = DD_BUF_INIT;
	int rc = dd_pg_read_stream(st, snap, "largeobjects", &lo, 0), first = 1;

	if (rc == DD_NOTFOUND)
		return 0;
	if (rc < 0)
		return -1;
	for (char *line = lo.ptr, *nl; line && line < lo.ptr + lo.len; line = nl + 1) {
		char *f[3];
		if (!(nl = memchr(line, '\n', (size_t)(lo.ptr + lo.len - line))))
			break;
		*nl = '\0';
		if (fields(line, f, 3) < 0 || !all_digits(f[0], 0) || !all_digits(f[1], 0) || strncmp(f[2], "\\\\x", 3) ||
		    strspn(f[2] + 3, "0123456789abcdef") != strlen(f[2] + 3)) {
			rc = dd_error("snapshot %.12s: a malformed large-object row", dd_snapshot_id(snap));
			break;
		}
		dd_buf_printf(&o->b, "%sSELECT pg_catalog.lo_put(%s, %s, '\\x%s');\n", first ? "\n" : "", f[0], f[1],
			      f[2] + 3);
		first = 0;
		if (maybe_flush(o) < 0) {
			rc = -1;
			break;
		}
	}
	dd_buf_release(&lo);
	return rc < 0 ? -1 : 0;
}

int
dd_pg_sql_data(struct dd_store *st, const struct dd_snapshot *snap,
	       int (*fn)(void *arg, const void *data, size_t len), void *arg)
{
	const struct dd_stream_info *pre = dd_snapshot_find(snap, "schema/pre-data");
	const char *enc = pre ? dd_stream_attr(pre, "encoding") : NULL;
	struct out o = { .fn = fn, .arg = arg, .b = DD_BUF_INIT };
	struct table *t = NULL, **order = NULL;
	size_t n = 0;
	int rc = -1;

	if (!enc || !*enc || strspn(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(enc))
		enc = "UTF8";
	if (collect_tables(st, snap, &t, &n) < 0)
		goto out;
	order = dd_calloc(n + 1, sizeof(*order));
	fk_order(t, n, order);
	dd_buf_printf(&o.b, preamble, enc);
	/* before any row: an ALTER TABLE fails on a table with pending (deferred) trigger events */
	for (size_t i = 0; i < n; i++)
		dd_buf_printf(&o.b, "%sALTER TABLE %s DISABLE TRIGGER USER;\n", i ? "" : "\n", order[i]->name);
	for (size_t i = 0; i < n; i++)
		if (copy_block(&o, st, order[i]) < 0)
			goto out;
	if (sequences(&o, st, snap) < 0 || large_objects(&o, st, snap) < 0)
		goto out;
	/* the deferred checks now, so the triggers can be enabled again */
	dd_buf_puts(&o.b, "\nSET CONSTRAINTS ALL IMMEDIATE;\n");
	for (size_t i = 0; i < n; i++)
		dd_buf_printf(&o.b, "ALTER TABLE %s ENABLE TRIGGER USER;\n", order[i]->name);
	dd_buf_puts(&o.b, "COMMIT;\n");
	rc = flush(&o);
out:
	dd_buf_release(&o.b);
	free(order);
	tables_free(t, n);
	return rc;
}
