/*
 * config/mask.c: the values of a profile's masking and subsetting keys
 * (issue 21), parsed from profiles.ini text, which is hostile input like
 * any file read from disk (fuzzed by fuzz-config through the handler).
 *
 *   mask   = <column> <rule>
 *   subset = <table> <N>%          (1..100: rows chosen by a hash of their key)
 *   subset = <table> where <cond>  (a SQL condition on the start table's row)
 *
 * <column> is [schema.]table.column and <table> is [schema.]table, each
 * part an SQL identifier: unquoted ones ([A-Za-z_][A-Za-z0-9_$]*) fold to
 * lower case as the server folds them, double-quoted ones keep their text
 * ("" inside for one "). Without a schema, the snapshot looks the table up
 * in every schema and refuses a name that is not unique.
 *
 * <rule> is one of keep, null, redact, hash, fake_email, fake_name,
 * fake_phone, or sql:<expression>. What each does is the dump's business
 * (pg/mask.c); here only the shape is checked.
 */
#include "config/config.h"
#include "config/internal.h"
#include "util/buf.h"
#include "util/err.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	enum dd_mask_kind kind;
} rule_names[] = {
	{ "keep", DD_MASK_KEEP },
	{ "null", DD_MASK_NULL },
	{ "redact", DD_MASK_REDACT },
	{ "hash", DD_MASK_HASH },
	{ "fake_email", DD_MASK_FAKE_EMAIL },
	{ "fake_name", DD_MASK_FAKE_NAME },
	{ "fake_phone", DD_MASK_FAKE_PHONE },
};

const char *
dd_mask_kind_name(enum dd_mask_kind kind)
{
	if (kind == DD_MASK_SQL)
		return "sql";
	for (size_t i = 0; i < sizeof(rule_names) / sizeof(rule_names[0]); i++)
		if (rule_names[i].kind == kind)
			return rule_names[i].name;
	return "?";
}

/*
 * One identifier at *s: its server name in *out (caller frees). Returns 0,
 * or -1 with *why (static text).
 */
static int
ident(const char **s, char **out, const char **why)
{
	const char *t = *s;
	struct dd_buf b = DD_BUF_INIT;

	if (*t == '"') {
		for (t++;; t++) {
			if (!*t) {
				dd_buf_release(&b);
				*why = "a quoted name is not closed";
				return -1;
			}
			if (*t == '"') {
				if (t[1] != '"')
					break;
				t++;
			}
			dd_buf_put(&b, t, 1);
		}
		t++;
		if (!b.len) {
			dd_buf_release(&b);
			*why = "an empty quoted name";
			return -1;
		}
	} else {
		if (!(isalpha((unsigned char)*t) || *t == '_')) {
			*why = "a name must start with a letter or '_' (or be double-quoted)";
			return -1;
		}
		for (; isalnum((unsigned char)*t) || *t == '_' || *t == '$'; t++) {
			char c = (char)tolower((unsigned char)*t);
			dd_buf_put(&b, &c, 1);
		}
	}
	if (b.len > 63) {
		dd_buf_release(&b);
		*why = "a name is longer than PostgreSQL's 63 bytes";
		return -1;
	}
	*out = dd_buf_detach(&b, NULL);
	*s = t;
	return 0;
}

/* Up to `max` dotted parts at *s into parts[]; *n how many. */
static int
dotted(const char **s, char **parts, size_t max, size_t *n, const char **why)
{
	*n = 0;
	for (;;) {
		if (*n == max) {
			*why = "too many dotted parts";
			return -1;
		}
		if (ident(s, &parts[*n], why) < 0)
			return -1;
		(*n)++;
		if (**s != '.')
			return 0;
		(*s)++;
	}
}

static void
free_parts(char **parts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(parts[i]);
}

static const char *
skip_blanks(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

int
dd_mask_rule_parse(const char *value, struct dd_mask_rule *r, const char **why)
{
	const char *s = skip_blanks(value), *rule;
	char *parts[3] = { 0 };
	size_t n = 0;

	memset(r, 0, sizeof(*r));
	if (dotted(&s, parts, 3, &n, why) < 0) {
		free_parts(parts, n);
		return -1;
	}
	if (n < 2) {
		*why = "name a column as table.column or schema.table.column";
		free_parts(parts, n);
		return -1;
	}
	if (*s != ' ' && *s != '\t') {
		*why = *s ? "unexpected text after the column name" : "a rule must follow the column name";
		free_parts(parts, n);
		return -1;
	}
	rule = skip_blanks(s);
	if (!strncasecmp(rule, "sql:", 4)) {
		const char *e = skip_blanks(rule + 4);
		size_t len = strlen(e);
		while (len && (e[len - 1] == ' ' || e[len - 1] == '\t'))
			len--;
		if (!len) {
			*why = "sql: needs an expression";
			free_parts(parts, n);
			return -1;
		}
		r->kind = DD_MASK_SQL;
		r->expr = dd_strndup(e, len);
	} else {
		size_t len = strcspn(rule, " \t");
		int found = 0;
		for (size_t i = 0; i < sizeof(rule_names) / sizeof(rule_names[0]) && !found; i++)
			if (strlen(rule_names[i].name) == len && !strncasecmp(rule, rule_names[i].name, len))
				r->kind = rule_names[i].kind, found = 1;
		if (!found || *skip_blanks(rule + len)) {
			*why = "the rule must be keep, null, redact, hash, fake_email, fake_name, fake_phone or "
			       "sql:<expression>";
			free_parts(parts, n);
			return -1;
		}
	}
	r->schema = n == 3 ? parts[0] : NULL;
	r->table = parts[n - 2];
	r->column = parts[n - 1];
	r->text = dd_strdup(skip_blanks(value));
	return 0;
}

void
dd_mask_rule_clear(struct dd_mask_rule *r)
{
	free(r->schema);
	free(r->table);
	free(r->column);
	free(r->expr);
	free(r->text);
	memset(r, 0, sizeof(*r));
}

int
dd_subset_parse(const char *value, struct dd_subset *sb, const char **why)
{
	const char *s = skip_blanks(value), *rest;
	char *parts[2] = { 0 };
	size_t n = 0;

	memset(sb, 0, sizeof(*sb));
	if (dotted(&s, parts, 2, &n, why) < 0) {
		free_parts(parts, n);
		return -1;
	}
	rest = skip_blanks(s);
	if (rest == s || !*rest) {
		*why = "name the start table, then a percentage (10%) or 'where <condition>'";
		free_parts(parts, n);
		return -1;
	}
	if (isdigit((unsigned char)*rest)) {
		char *end;
		long v = strtol(rest, &end, 10);
		if (*end != '%' || *skip_blanks(end + 1) || v < 1 || v > 100) {
			*why = "a percentage is a whole number from 1 to 100 followed by '%' (e.g. 10%)";
			free_parts(parts, n);
			return -1;
		}
		sb->percent = (int)v;
	} else if (!strncasecmp(rest, "where", 5) && (!rest[5] || rest[5] == ' ' || rest[5] == '\t')) {
		const char *c = skip_blanks(rest + 5);
		size_t len = strlen(c);
		while (len && (c[len - 1] == ' ' || c[len - 1] == '\t'))
			len--;
		if (!len) {
			*why = "'where' needs a condition";
			free_parts(parts, n);
			return -1;
		}
		sb->where = dd_strndup(c, len);
	} else {
		*why = "after the start table comes a percentage (10%) or 'where <condition>'";
		free_parts(parts, n);
		return -1;
	}
	sb->schema = n == 2 ? parts[0] : NULL;
	sb->table = parts[n - 1];
	sb->text = dd_strdup(skip_blanks(value));
	return 0;
}

void
dd_subset_clear(struct dd_subset *sb)
{
	free(sb->schema);
	free(sb->table);
	free(sb->where);
	free(sb->text);
	memset(sb, 0, sizeof(*sb));
}
