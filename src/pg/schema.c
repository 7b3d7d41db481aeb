/*
 * pg/schema.c: pure helpers over schema text and names (unit-tested):
 * splitting a pg_dump plain script into its entries, matching
 * exclude_tables/exclude_data patterns, making database names that fit, and
 * checking the quoted names a snapshot carries into SQL.
 *
 * pg_dump's plain output introduces every object with a header
 *   --
 *   -- Name: <name>; Type: <TYPE>; Schema: <schema>; Owner: <owner>
 *   --
 * and emits session state changes (SET default_tablespace, SET
 * default_table_access_method) just before the header of the object that
 * needs them; the splitter moves those lines into that object's entry so
 * entries can run on different sessions.
 */
#include "pg/internal.h"
#include "util/buf.h"
#include "util/err.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#define HEADER "--\n-- Name: "
#define NAMEDATALEN_MAX 63

static const char *
find_header(const char *p, const char *end)
{
	size_t hl = strlen(HEADER);

	while (p < end) {
		if ((size_t)(end - p) >= hl && !memcmp(p, HEADER, hl))
			return p;
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		p = nl + 1;
	}
	return end;
}

static char *
header_type(const char *h, const char *end)
{
	const char *line = h + 3; /* "-- Name: ..." */
	const char *nl = memchr(line, '\n', (size_t)(end - line));
	size_t len = nl ? (size_t)(nl - line) : (size_t)(end - line);
	char *l = dd_strndup(line, len), *type = NULL;
	char *schema = NULL, *p;

	for (p = l; (p = strstr(p, "; Schema: ")); p++)
		schema = p;
	if (schema) {
		*schema = '\0';
		char *t = NULL;
		for (p = l; (p = strstr(p, "; Type: ")); p++)
			t = p;
		if (t)
			type = dd_strdup(t + 8);
	}
	free(l);
	return type ? type : dd_strdup("UNKNOWN");
}

static int
is_session_set(const char *line, size_t len)
{
	static const char *const sets[] = { "SET default_tablespace = ", "SET default_table_access_method = ", NULL };

	for (int i = 0; sets[i]; i++) {
		size_t l = strlen(sets[i]);
		if (len >= l && !memcmp(line, sets[i], l))
			return 1;
	}
	return 0;
}

/* Length of `s` without trailing session SET lines (and blank lines around them). */
static size_t
cut_trailing_sets(const char *s, size_t len)
{
	size_t keep = len;

	for (;;) {
		size_t end = keep;
		while (end > 0 && s[end - 1] == '\n')
			end--;
		size_t start = end;
		while (start > 0 && s[start - 1] != '\n')
			start--;
		if (end > start && is_session_set(s + start, end - start))
			keep = start;
		else
			return keep;
	}
}

int
dd_schema_split(struct dd_schema_entry **out, size_t *n, const char *text, size_t len)
{
	const char *end = text + len, *p = text;
	struct dd_schema_entry *e = NULL;
	size_t ne = 0, cap = 0;
	struct dd_buf carry = DD_BUF_INIT;

	for (int first = 1;; first = 0) {
		/* the preamble ends at the first header; an entry at the next one */
		const char *h = first ? find_header(p, end) : find_header(p + 1, end);
		const char *s = p;
		size_t l = (size_t)(h - p);
		size_t keep = cut_trailing_sets(s, l);
		if (ne == cap) {
			cap = cap ? cap * 2 : 32;
			e = dd_realloc(e, cap * sizeof(*e));
		}
		struct dd_buf sql = DD_BUF_INIT;
		dd_buf_put(&sql, carry.ptr ? carry.ptr : "", carry.len);
		dd_buf_put(&sql, s, keep);
		dd_buf_clear(&carry);
		dd_buf_put(&carry, s + keep, l - keep);
		e[ne].type = first ? dd_strdup("") : header_type(p, end);
		e[ne].sql = dd_buf_detach(&sql, NULL);
		ne++;
		if (h >= end)
			break;
		p = h;
	}
	if (carry.len && ne > 0) {
		/* trailing SETs with no entry after them: keep them where they were */
		struct dd_buf sql = DD_BUF_INIT;
		dd_buf_puts(&sql, e[ne - 1].sql);
		dd_buf_put(&sql, carry.ptr, carry.len);
		free(e[ne - 1].sql);
		e[ne - 1].sql = dd_buf_detach(&sql, NULL);
	}
	dd_buf_release(&carry);
	*out = e;
	*n = ne;
	return 0;
}

void
dd_schema_entries_free(struct dd_schema_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].type);
		free(e[i].sql);
	}
	free(e);
}

int
dd_pg_pattern_match(const char *pattern, const char *schema, const char *table)
{
	const char *dot = strchr(pattern, '.');
	int rc;

	if (!dot)
		return fnmatch(pattern, table, 0) == 0;
	char *sp = dd_strndup(pattern, (size_t)(dot - pattern));
	rc = fnmatch(sp, schema, 0) == 0 && fnmatch(dot + 1, table, 0) == 0;
	free(sp);
	return rc;
}

int
dd_pg_patterns_match(const char *const *patterns, const char *schema, const char *table)
{
	for (; patterns && *patterns; patterns++)
		if (dd_pg_pattern_match(*patterns, schema, table))
			return 1;
	return 0;
}

char *
dd_pg_name_with_suffix(const char *base, const char *suffix)
{
	size_t sl = strlen(suffix), bl = strlen(base);

	if (sl >= NAMEDATALEN_MAX)
		return dd_strndup(suffix, NAMEDATALEN_MAX);
	if (bl + sl > NAMEDATALEN_MAX) {
		bl = NAMEDATALEN_MAX - sl;
		/* do not cut a UTF-8 sequence */
		while (bl > 0 && ((unsigned char)base[bl] & 0xC0) == 0x80)
			bl--;
	}
	return dd_asprintf("%.*s%s", (int)bl, base, suffix);
}

/*
 * One identifier as quote_ident() writes it, starting at *p: "..." with ""
 * for a quote inside, or a plain [A-Za-z_][A-Za-z0-9_$]* (quote_ident only
 * leaves lower case unquoted; upper case is accepted, it is just as inert).
 * Advances *p past it; 0 if there is none.
 */
static int
skip_ident(const char **p)
{
	const char *s = *p;

	if (*s == '"') {
		for (s++;; s++) {
			if (*s == '\0')
				return 0;
			if (*s == '"') {
				if (s[1] != '"')
					break;
				s++;
			}
		}
		if (s == *p + 1)
			return 0; /* "" is not an identifier */
		*p = s + 1;
		return 1;
	}
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return 0;
	while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
	       *s == '$')
		s++;
	*p = s;
	return 1;
}

int
dd_pg_is_qualified_name(const char *s)
{
	return s && skip_ident(&s) && *s++ == '.' && skip_ident(&s) && *s == '\0';
}

int
dd_pg_is_column_list(const char *s)
{
	if (!s)
		return 0;
	if (!*s)
		return 1;
	for (;;) {
		if (!skip_ident(&s))
			return 0;
		if (!*s)
			return 1;
		if (strncmp(s, ", ", 2))
			return 0;
		s += 2;
	}
}
