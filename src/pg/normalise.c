/*
 * pg/normalise.c: a pg_dump plain schema script made stable for review
 * (normalise.h has the contract; docs/DESIGN-NOTES.md "The normalised schema"
 * the rules in prose).
 *
 * The script is cut into pg_dump's entries with dd_schema_split() (entry 0
 * is the preamble). Then:
 *  1. Preamble regions lose pg_dump's run noise: the banners, the
 *     "Dumped from/by" version comments, `\restrict`/`\unrestrict`, session
 *     SET lines and set_config('search_path'). The regions are entry 0 and,
 *     inside an entry, whatever follows a "dump complete" banner (the next
 *     run's preamble when pre-data and post-data are concatenated). Only
 *     there: the same text inside an object's body is the object's.
 *     Unrecognised lines in a preamble region are kept.
 *  2. `SET default_tablespace` / `SET default_table_access_method` are
 *     session state pg_dump writes only where it changes: each entry keeps
 *     the state it ran under, and the output writes a SET only where that
 *     state changes in its own order, starting from '' and heap (so a
 *     database without tablespaces or other access methods has none). A
 *     SET that ends the script sets nothing and goes.
 *  3. Entry headers lose "; Owner: x" (who ran the dump, or "-").
 *  4. Order: pg_dump's (type priority, then names, then dependencies:
 *     already independent of OIDs), except that a run of consecutive
 *     entries with the same header, which pg_dump leaves in OID order, is
 *     sorted by text.
 *  5. Each entry loses its leading and trailing blank lines; entries are
 *     separated by one blank line; the text ends with one newline. Blank
 *     lines inside an entry are kept: they may be inside a function body or
 *     a string.
 *  6. Element lists one element a line get the comma first (lead_commas()).
 *  7. A non-empty text starts with `preamble` (constant).
 * Input with a NUL byte is refused (pg_dump never writes one).
 */
#include "pg/normalise.h"
#include "pg/internal.h"
#include "util/buf.h"
#include "util/err.h"

#include <stdlib.h>
#include <string.h>

#define TS_DEFAULT "''"
#define AM_DEFAULT "heap"
#define COMPLETE "--\n-- PostgreSQL database dump complete\n--\n"

/*
 * The settings a load needs, as pg_dump's preamble has them, the same for
 * every dump (DESIGN-NOTES "The normalised schema", rule 8). Every line is
 * one filter_preamble() drops, so normalising the text again keeps one copy.
 */
static const char preamble[] = "SET statement_timeout = 0;\n"
			       "SET lock_timeout = 0;\n"
			       "SET idle_in_transaction_session_timeout = 0;\n"
			       "SET standard_conforming_strings = on;\n"
			       "SELECT pg_catalog.set_config('search_path', '', false);\n"
			       "SET check_function_bodies = false;\n"
			       "SET xmloption = content;\n"
			       "SET client_min_messages = warning;\n"
			       "SET row_security = off;\n";

struct ent {
	char *head;         /* "-- Name: ...", owner removed */
	struct dd_buf body; /* the SQL after the header, without blank lines around it */
	char *ts, *am;      /* the session state it runs under */
};

struct state {
	char *ts, *am;
};

static int
starts(const char *line, size_t len, const char *prefix)
{
	size_t pl = strlen(prefix);

	return len >= pl && !memcmp(line, prefix, pl);
}

static int
ends(const char *line, size_t len, const char *suffix)
{
	size_t sl = strlen(suffix);

	return len >= sl && !memcmp(line + len - sl, suffix, sl);
}

static int
equals(const char *line, size_t len, const char *s)
{
	return len == strlen(s) && !memcmp(line, s, len);
}

/* Next line of [*cur, end) without its newline; 0 at the end. */
static int
next_line(const char **cur, const char *end, const char **line, size_t *len)
{
	if (*cur >= end)
		return 0;
	const char *nl = memchr(*cur, '\n', (size_t)(end - *cur));
	*line = *cur;
	*len = nl ? (size_t)(nl - *cur) : (size_t)(end - *cur);
	*cur = nl ? nl + 1 : end;
	return 1;
}

static void
state_set(char **slot, const char *v, size_t len)
{
	free(*slot);
	*slot = dd_strndup(v, len);
}

/* A "SET default_tablespace = x;" or access-method line: update `st`, 1. */
static int
state_line(const char *line, size_t len, struct state *st)
{
	static const char ts[] = "SET default_tablespace = ", am[] = "SET default_table_access_method = ";

	/* the same lines as the splitter's is_session_set(), or the splitter's carry would stay behind */
	size_t semi = len && line[len - 1] == ';';

	if (starts(line, len, ts)) {
		state_set(&st->ts, line + strlen(ts), len - strlen(ts) - semi);
		return 1;
	}
	if (starts(line, len, am)) {
		state_set(&st->am, line + strlen(am), len - strlen(am) - semi);
		return 1;
	}
	return 0;
}

/* "SET name = value;" with a lower-case name: session state. */
static int
session_set(const char *line, size_t len)
{
	size_t i = 4;

	if (!starts(line, len, "SET ") || line[len - 1] != ';')
		return 0;
	while (i < len && ((line[i] >= 'a' && line[i] <= 'z') || line[i] == '_'))
		i++;
	return i > 4 && starts(line + i, len - i, " = ");
}

static int
preamble_noise(const char *line, size_t len)
{
	return len == 0 || equals(line, len, "--") || equals(line, len, "-- PostgreSQL database dump") ||
	       equals(line, len, "-- PostgreSQL database dump complete") ||
	       starts(line, len, "-- Dumped from database version ") || starts(line, len, "-- Dumped by pg_dump version ") ||
	       starts(line, len, "\\restrict ") || starts(line, len, "\\unrestrict ") ||
	       equals(line, len, "SELECT pg_catalog.set_config('search_path', '', false);") || session_set(line, len);
}

/* Keep what a preamble region holds besides noise; state lines update `st`. */
static void
filter_preamble(const char *s, const char *end, struct dd_buf *keep, struct state *st)
{
	const char *line;
	size_t len;

	while (next_line(&s, end, &line, &len)) {
		if (state_line(line, len, st) || preamble_noise(line, len))
			continue;
		dd_buf_put(keep, line, len);
		dd_buf_putc(keep, '\n');
	}
}

/* Where "dump complete" starts at a line start in [s, end), or end (its last newline may be missing). */
static const char *
find_complete(const char *s, const char *end)
{
	size_t cl = strlen(COMPLETE);

	for (const char *p = s; p < end;) {
		if ((size_t)(end - p) >= cl - 1 && !memcmp(p, COMPLETE, cl - 1) &&
		    ((size_t)(end - p) == cl - 1 || p[cl - 1] == '\n'))
			return p;
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		p = nl + 1;
	}
	return end;
}

/* Append [s, end) without its leading and trailing blank lines, ending in one newline. */
static void
put_trimmed(struct dd_buf *out, const char *s, const char *end)
{
	while (s < end && *s == '\n')
		s++;
	while (end > s && end[-1] == '\n')
		end--;
	if (end > s) {
		dd_buf_put(out, s, (size_t)(end - s));
		dd_buf_putc(out, '\n');
	}
}

/*
 * Where the state lines (and blank lines) that end [s, end) begin, after
 * applying them to `st`: the splitter leaves them in the last entry, where
 * they set the state of nothing; moved into the state, they cannot end up
 * in the middle of the text when the entries are sorted.
 */
static const char *
trailing_state(const char *s, const char *end, struct state *st)
{
	const char *from = end, *line;
	struct state scratch = { NULL, NULL };
	size_t len;

	for (;;) {
		const char *e = from;
		while (e > s && e[-1] == '\n')
			e--;
		const char *b = e;
		while (b > s && b[-1] != '\n')
			b--;
		if (e == b || !state_line(b, (size_t)(e - b), &scratch))
			break;
		from = b;
	}
	free(scratch.ts);
	free(scratch.am);
	for (const char *cur = from; next_line(&cur, end, &line, &len);)
		state_line(line, len, st);
	return from;
}

/* "-- Name: x; Type: T; Schema: s; Owner: o[; Tablespace: t]" without "; Owner: o". */
static char *
header_without_owner(const char *line, size_t len)
{
	char *h = dd_strndup(line, len), *owner, *p;

	/* the last one first, until none is left: a name may hold the text too, and the result must be stable */
	for (;;) {
		owner = NULL;
		for (p = h; (p = strstr(p, "; Owner: ")); p++)
			owner = p;
		if (!owner)
			return h;
		char *rest = strstr(owner + 1, "; Tablespace: ");
		memmove(owner, rest ? rest : "", rest ? strlen(rest) + 1 : 1);
	}
}

/*
 * One entry from the splitter: leading state lines, the three-line header,
 * the body, and maybe a "dump complete" banner followed by preamble text
 * (kept lines go to `pre`).
 */
static void
parse_entry(struct ent *e, const char *sql, struct state *st, struct dd_buf *pre)
{
	const char *end = sql + strlen(sql), *cur = sql, *line, *mark;
	size_t len;

	for (mark = cur; next_line(&cur, end, &line, &len); mark = cur)
		if (len && !state_line(line, len, st))
			break;
	cur = mark;
	e->ts = dd_strdup(st->ts);
	e->am = dd_strdup(st->am);
	if (next_line(&cur, end, &line, &len) && equals(line, len, "--") && next_line(&cur, end, &line, &len) &&
	    starts(line, len, "-- Name: ")) {
		e->head = header_without_owner(line, len);
		mark = cur;
		if (!next_line(&cur, end, &line, &len) || !equals(line, len, "--"))
			cur = mark;
	} else {
		e->head = dd_strdup("");
		cur = mark;
	}
	const char *done = find_complete(cur, end);
	put_trimmed(&e->body, cur, trailing_state(cur, done, st));
	if (done < end) {
		state_set(&st->ts, TS_DEFAULT, strlen(TS_DEFAULT));
		state_set(&st->am, AM_DEFAULT, strlen(AM_DEFAULT));
		filter_preamble(done, end, pre, st);
	}
}

/*
 * Leading-comma lists (docs/DESIGN-NOTES.md "The normalised schema", rule 7):
 * a CREATE TABLE / CREATE TYPE ... AS ( / AS ENUM ( whose element lines are
 * each one whole element gets them as
 *     first
 *   , second
 * so one added, dropped or changed element (but the first) is one line.
 */
#define LEAD "  , "

/* 1 if `line` ends outside quotes and comments with even ' and " counts. */
static int
whole_line(const char *line, size_t len)
{
	size_t sq = 0, dq = 0;
	char in = 0;

	for (size_t i = 0; i < len; i++) {
		char c = line[i];
		sq += c == '\'';
		dq += c == '"';
		if (in) {
			in = c == in ? 0 : in;
			continue;
		}
		if (c == '\'' || c == '"')
			in = c;
		else if ((c == '-' || c == '/') && i + 1 < len && line[i + 1] == (c == '-' ? '-' : '*'))
			return 0;
	}
	return !in && sq % 2 == 0 && dq % 2 == 0;
}

/* The statement's first line opens a list pg_dump writes one element a line. */
static int
list_opener(const char *head, const char *line, size_t len)
{
	int table = strstr(head, "; Type: TABLE; ") || strstr(head, "; Type: FOREIGN TABLE; ");
	int type = strstr(head, "; Type: TYPE; ") != NULL;

	if (!whole_line(line, len) || !ends(line, len, " ("))
		return 0;
	if (table)
		return starts(line, len, "CREATE TABLE ") || starts(line, len, "CREATE UNLOGGED TABLE ") ||
		       starts(line, len, "CREATE FOREIGN TABLE ");
	return type && starts(line, len, "CREATE TYPE ") && (ends(line, len, " AS (") || ends(line, len, " AS ENUM ("));
}

/* An element line: the indent, then an element's first character, whole. */
static int
element_line(const char *line, size_t len, const char *indent)
{
	size_t il = strlen(indent);

	return starts(line, len, indent) && len > il && line[il] != ' ' && line[il] != '\t' && line[il] != ',' &&
	       whole_line(line, len);
}

/*
 * Rewrite the list the body's first line opens, if every line up to the one
 * starting with ")" is one whole element and all but the last end with ",";
 * otherwise (a multi-line element, a literal holding a newline, a comment,
 * an already rewritten list) leave the body as it is.
 */
static void
lead_commas(struct ent *e)
{
	const char *s = e->body.ptr, *end, *cur = s, *line, *first, *close;
	const char *indent = "    ";
	size_t len, n = 0;

	if (!s) /* an entry without a body: no list (and no pointer arithmetic on NULL) */
		return;
	end = s + e->body.len;
	if (!next_line(&cur, end, &line, &len) || !list_opener(e->head, line, len))
		return;
	first = cur;
	if (starts(line, len, "CREATE TYPE ") && ends(line, len, " AS (") && cur < end && *cur == '\t')
		indent = "\t"; /* pg_dump writes a composite type's attributes with a tab */
	for (close = cur; next_line(&cur, end, &line, &len); close = cur, n++) {
		if (starts(line, len, ")"))
			break;
		if (!element_line(line, len, indent))
			return;
	}
	if (cur == close || n < 2)
		return; /* no ")" line, or nothing to rewrite */
	cur = first;
	for (size_t i = 0; i < n; i++) {
		next_line(&cur, end, &line, &len);
		if ((line[len - 1] == ',') != (i + 1 < n))
			return;
	}
	struct dd_buf b = DD_BUF_INIT;
	dd_buf_put(&b, s, (size_t)(first - s));
	cur = first;
	for (size_t i = 0; i < n; i++) {
		next_line(&cur, end, &line, &len);
		size_t il = strlen(indent);
		dd_buf_puts(&b, i ? LEAD : "    ");
		dd_buf_put(&b, line + il, len - il - (i + 1 < n));
		dd_buf_putc(&b, '\n');
	}
	dd_buf_put(&b, close, (size_t)(end - close));
	dd_buf_release(&e->body);
	e->body = b;
}

static int
ent_cmp(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	size_t n = x->body.len < y->body.len ? x->body.len : y->body.len;
	int c = n ? memcmp(x->body.ptr, y->body.ptr, n) : 0;

	return c ? c : (x->body.len > y->body.len) - (x->body.len < y->body.len);
}

static int
same_place(const struct ent *a, const struct ent *b)
{
	return !strcmp(a->head, b->head) && !strcmp(a->ts, b->ts) && !strcmp(a->am, b->am);
}

/* Runs of entries with the same header (pg_dump's OID order) sorted by text. */
static void
sort_ties(struct ent *e, size_t n)
{
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && same_place(&e[i], &e[j]); j++)
			;
		if (j - i > 1)
			qsort(e + i, j - i, sizeof(*e), ent_cmp);
	}
}

static void
write_out(struct dd_buf *out, const struct dd_buf *pre, const struct ent *e, size_t n)
{
	const char *ts = TS_DEFAULT, *am = AM_DEFAULT;
	int first = 1;

	if (pre->len) {
		dd_buf_put(out, pre->ptr, pre->len);
		first = 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (!*e[i].head && !e[i].body.len)
			continue;
		if (!first)
			dd_buf_putc(out, '\n');
		first = 0;
		if (strcmp(e[i].ts, ts))
			dd_buf_printf(out, "SET default_tablespace = %s;\n\n", ts = e[i].ts);
		if (strcmp(e[i].am, am))
			dd_buf_printf(out, "SET default_table_access_method = %s;\n\n", am = e[i].am);
		if (*e[i].head) {
			dd_buf_printf(out, "--\n%s\n--\n", e[i].head);
			if (e[i].body.len)
				dd_buf_putc(out, '\n');
		}
		dd_buf_put(out, e[i].body.ptr ? e[i].body.ptr : "", e[i].body.len);
	}
}

int
dd_schema_normalise(const char *in, size_t len, struct dd_buf *out)
{
	return dd_schema_normalise_part(in, len, 1, out);
}

int
dd_schema_normalise_part(const char *in, size_t len, int with_preamble, struct dd_buf *out)
{
	struct dd_schema_entry *se = NULL;
	struct state st = { dd_strdup(TS_DEFAULT), dd_strdup(AM_DEFAULT) };
	struct dd_buf pre = DD_BUF_INIT, tail = DD_BUF_INIT;
	struct ent *e = NULL;
	size_t n = 0;

	if (len && memchr(in, '\0', len)) {
		free(st.ts);
		free(st.am);
		return dd_error("schema text holds a NUL byte at offset %zu",
				(size_t)((const char *)memchr(in, '\0', len) - in));
	}
	dd_schema_split(&se, &n, len ? in : "", len);
	filter_preamble(se[0].sql, se[0].sql + strlen(se[0].sql), &pre, &st);
	e = dd_calloc(n, sizeof(*e));
	for (size_t i = 1; i < n; i++)
		parse_entry(&e[i - 1], se[i].sql, &st, &tail);
	for (size_t i = 0; i + 1 < n; i++)
		lead_commas(&e[i]);
	sort_ties(e, n - 1);
	/* kept preamble lines (entry 0's first, then any later run's) before the entries */
	dd_buf_put(&pre, tail.ptr ? tail.ptr : "", tail.len);
	dd_buf_clear(&tail);
	write_out(&tail, &pre, e, n - 1);
	if (tail.len) {
		/* an empty schema stays empty: nothing to load, nothing to set */
		if (with_preamble) {
			dd_buf_puts(out, preamble);
			dd_buf_putc(out, '\n');
		}
		dd_buf_put(out, tail.ptr, tail.len);
	}
	for (size_t i = 0; i + 1 < n; i++) {
		free(e[i].head);
		free(e[i].ts);
		free(e[i].am);
		dd_buf_release(&e[i].body);
	}
	free(e);
	dd_schema_entries_free(se, n);
	dd_buf_release(&pre);
	dd_buf_release(&tail);
	free(st.ts);
	free(st.am);
	return 0;
}
