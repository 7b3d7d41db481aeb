/*
 * util/conninfo.c: libpq connection strings with their secrets hidden.
 *
 * Redaction keeps the user's text: the string is parsed by libpq (which
 * says what is set and what is secret), then walked once more with libpq's
 * own grammar to find where each secret value is written, and only those
 * bytes are replaced. The walk mirrors libpq's (fe-connect.c:
 * conninfo_parse, conninfo_uri_parse_options); to be sure it agrees, the
 * result is parsed again and must mean the same with every secret now
 * "***". Should it not (a corner of the grammar this walk misses), the
 * whole string is hidden: showing too little beats leaking a password.
 *
 * libpq's parse errors may quote the string (a whole URI, a stray word
 * that was part of an unquoted password), so they are cut at the first
 * quoted text before they are recorded.
 */
#include "util/conninfo.h"
#include "util/buf.h"
#include "util/err.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

static int
is_secret(const PQconninfoOption *o)
{
	return o->dispchar && strchr(o->dispchar, '*');
}

/* Is keyword s[0..len) one that libpq marks secret? */
static int
secret_keyword(const PQconninfoOption *opts, const char *s, size_t len)
{
	for (const PQconninfoOption *o = opts; o->keyword; o++)
		if (strlen(o->keyword) == len && !memcmp(o->keyword, s, len))
			return is_secret(o);
	return 0;
}

/*
 * libpq's message up to the first quoted text that could come from the
 * string ("..." stands for it and for everything after, which may be more
 * of the string); a quoted single punctuation character ("=", "]") is
 * grammar and stays.
 */
static int
parse_error(const char *msg)
{
	struct dd_buf b = DD_BUF_INIT;
	const char *p = msg ? msg : "out of memory";

	while (*p) {
		if (*p == '"' && p[1] && ispunct((unsigned char)p[1]) && p[2] == '"') {
			dd_buf_put(&b, p, 3);
			p += 3;
			continue;
		}
		if (*p == '"') {
			dd_buf_puts(&b, "\"...\"");
			break;
		}
		dd_buf_putc(&b, *p == '\n' ? ' ' : *p);
		p++;
	}
	while (b.len && b.ptr[b.len - 1] == ' ')
		dd_buf_truncate(&b, b.len - 1);
	dd_error("malformed connection string: %s", dd_buf_cstr(&b));
	dd_buf_release(&b);
	return -1;
}

static size_t
uri_prefix(const char *s)
{
	if (!strncmp(s, "postgresql://", 13))
		return 13;
	if (!strncmp(s, "postgres://", 11))
		return 11;
	return 0;
}

/*
 * libpq's options for `conninfo`, read as PQconnectdbParams() reads a
 * dbname with expand_dbname (as every connection here is made): a string
 * that is neither a URI nor contains '=' is a database name.
 */
static PQconninfoOption *
parse(const char *conninfo)
{
	char *err = NULL, *quoted = NULL;
	PQconninfoOption *opts;

	if (!conninfo)
		conninfo = "";
	if (*conninfo && !uri_prefix(conninfo) && !strchr(conninfo, '=')) {
		struct dd_buf b = DD_BUF_INIT;
		dd_conninfo_put_pair(&b, "dbname", conninfo);
		quoted = dd_buf_detach(&b, NULL);
	}
	opts = PQconninfoParse(quoted ? quoted : conninfo, &err);
	free(quoted);

	if (!opts)
		parse_error(err);
	PQfreemem(err);
	return opts;
}

static int
any_secret(const PQconninfoOption *opts)
{
	for (const PQconninfoOption *o = opts; o->keyword; o++)
		if (is_secret(o) && o->val && *o->val)
			return 1;
	return 0;
}

/* ---- finding the secrets in the text ---- */

/* The end of a keyword=value value starting at p: 'quoted' or bare, '\' escaping the next character. */
static const char *
value_end(const char *p)
{
	if (*p != '\'') {
		while (*p && !isspace((unsigned char)*p))
			p += (*p == '\\' && p[1]) ? 2 : 1;
		return p;
	}
	for (p++; *p && *p != '\''; p += (*p == '\\' && p[1]) ? 2 : 1)
		;
	return *p ? p + 1 : p;
}

/* Does the value written as v[0..end) read as ""? (nothing, '', or a lone '\' ending the string) */
static int
empty_value(const char *v, const char *end)
{
	size_t n = (size_t)(end - v);

	return n == 0 || (n == 2 && !strncmp(v, "''", 2)) || (n == 1 && *v == '\\' && !*end);
}

static void
mask_pairs(struct dd_buf *b, const char *p, const PQconninfoOption *opts)
{
	while (*p) {
		const char *kw, *kw_end, *v, *v_end;

		while (isspace((unsigned char)*p))
			dd_buf_putc(b, *p++);
		if (!*p)
			break;
		kw = p;
		while (*p && *p != '=' && !isspace((unsigned char)*p))
			p++;
		kw_end = p;
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '=') { /* libpq would not have parsed this; the check after us hides it all */
			dd_buf_puts(b, kw);
			return;
		}
		for (p++; isspace((unsigned char)*p);)
			p++;
		v = p;
		v_end = p = value_end(p);
		dd_buf_put(b, kw, (size_t)(v - kw));
		if (secret_keyword(opts, kw, (size_t)(kw_end - kw)) && !empty_value(v, v_end)) {
			dd_buf_puts(b, DD_CONNINFO_MASK);
			if (*p && !isspace((unsigned char)*p))
				dd_buf_putc(b, ' '); /* 'quoted'next=...: the mask is not quoted */
		} else {
			dd_buf_put(b, v, (size_t)(v_end - v));
		}
	}
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Is the percent-encoded query keyword s[0..len) secret? */
static int
secret_encoded(const PQconninfoOption *opts, const char *s, size_t len)
{
	char name[64];
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		int hi, lo;
		if (n + 1 >= sizeof(name))
			return 0;
		if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
			name[n++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			name[n++] = s[i];
		}
	}
	return secret_keyword(opts, name, n);
}

static void
mask_query(struct dd_buf *b, const char *p, const PQconninfoOption *opts)
{
	while (*p) {
		size_t n = strcspn(p, "&");
		const char *eq = memchr(p, '=', n);

		if (eq && eq + 1 < p + n && secret_encoded(opts, p, (size_t)(eq - p))) {
			dd_buf_put(b, p, (size_t)(eq + 1 - p));
			dd_buf_puts(b, DD_CONNINFO_MASK);
		} else {
			dd_buf_put(b, p, n);
		}
		p += n;
		if (*p)
			dd_buf_putc(b, *p++);
	}
}

/* A URI: user:PASSWORD@ (the credentials end at the first '@' before any '/'), then the query. */
static void
mask_uri(struct dd_buf *b, const char *s, size_t prefix, const PQconninfoOption *opts)
{
	const char *start = s + prefix, *p = start, *colon, *q;

	while (*p && *p != '@' && *p != '/')
		p++;
	if (*p != '@') {
		p = s; /* no credentials */
	} else if ((colon = memchr(start, ':', (size_t)(p - start))) && colon + 1 < p) {
		dd_buf_put(b, s, (size_t)(colon + 1 - s));
		dd_buf_puts(b, DD_CONNINFO_MASK);
	} else {
		dd_buf_put(b, s, (size_t)(p - s)); /* user@ or user:@: nothing to hide */
	}
	q = strchr(p, '?');
	if (!q) {
		dd_buf_puts(b, p);
		return;
	}
	dd_buf_put(b, p, (size_t)(q + 1 - p));
	mask_query(b, q + 1, opts);
}

/* Does `masked` mean what `orig` means, with each secret set in `orig` now "***"? */
static int
same_but_masked(const PQconninfoOption *orig, const char *masked)
{
	PQconninfoOption *m = PQconninfoParse(masked, NULL), *o = m;
	int same = m != NULL;

	for (; same && orig->keyword; orig++, o++) {
		const char *want = orig->val;
		if (!o->keyword || strcmp(o->keyword, orig->keyword))
			same = 0;
		else if (is_secret(orig) && want && *want)
			same = o->val && !strcmp(o->val, DD_CONNINFO_MASK);
		else
			same = (!want && !o->val) || (want && o->val && !strcmp(want, o->val));
	}
	if (same && o->keyword)
		same = 0;
	PQconninfoFree(m);
	return same;
}

/* ---- the interface ---- */

char *
dd_conninfo_redact(const char *conninfo)
{
	PQconninfoOption *opts;
	struct dd_buf b = DD_BUF_INIT;
	size_t prefix;

	if (!conninfo)
		conninfo = "";
	if (!(opts = parse(conninfo)))
		return NULL;
	if (!any_secret(opts)) {
		PQconninfoFree(opts);
		return dd_strdup(conninfo);
	}
	if ((prefix = uri_prefix(conninfo)))
		mask_uri(&b, conninfo, prefix, opts);
	else
		mask_pairs(&b, conninfo, opts);
	if (!same_but_masked(opts, dd_buf_cstr(&b))) {
		dd_buf_clear(&b);
		dd_buf_puts(&b, DD_CONNINFO_MASK);
	}
	PQconninfoFree(opts);
	return dd_buf_detach(&b, NULL);
}

void
dd_conninfo_put_pair(struct dd_buf *b, const char *keyword, const char *value)
{
	if (b->len)
		dd_buf_putc(b, ' ');
	dd_buf_printf(b, "%s='", keyword);
	for (const char *p = value; *p; p++) {
		if (*p == '\'' || *p == '\\')
			dd_buf_putc(b, '\\');
		dd_buf_putc(b, *p);
	}
	dd_buf_putc(b, '\'');
}

char *
dd_conninfo_strip_secrets(const char *conninfo)
{
	PQconninfoOption *opts = parse(conninfo);
	struct dd_buf b = DD_BUF_INIT;

	if (!opts)
		return NULL;
	for (const PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val && *o->val && !is_secret(o))
			dd_conninfo_put_pair(&b, o->keyword, o->val);
	PQconninfoFree(opts);
	return b.len ? dd_buf_detach(&b, NULL) : dd_strdup("");
}

char *
dd_conninfo_of_connection(PGconn *c, char **password)
{
	PQconninfoOption *opts = PQconninfo(c);
	struct dd_buf b = DD_BUF_INIT;

	*password = NULL;
	for (const PQconninfoOption *o = opts; o && o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (!is_secret(o))
			dd_conninfo_put_pair(&b, o->keyword, o->val);
		else if (!strcmp(o->keyword, "password"))
			*password = dd_strdup(o->val);
	}
	PQconninfoFree(opts);
	return b.len ? dd_buf_detach(&b, NULL) : dd_strdup("");
}

int
dd_conninfo_has_secret(const char *conninfo)
{
	PQconninfoOption *opts = parse(conninfo);
	int rc;

	if (!opts)
		return -1;
	rc = any_secret(opts);
	PQconninfoFree(opts);
	return rc;
}

char *
dd_conninfo_with_dbname(const char *conninfo, const char *dbname)
{
	PQconninfoOption *opts = parse(conninfo);
	struct dd_buf b = DD_BUF_INIT;

	if (!opts)
		return NULL;
	for (const PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val && *o->val && strcmp(o->keyword, "dbname"))
			dd_conninfo_put_pair(&b, o->keyword, o->val);
	dd_conninfo_put_pair(&b, "dbname", dbname);
	PQconninfoFree(opts);
	return dd_buf_detach(&b, NULL);
}

/* Append s percent-encoded: everything but RFC 3986's unreserved characters. */
static void
put_encoded(struct dd_buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~')
			dd_buf_putc(b, (char)*p);
		else
			dd_buf_printf(b, "%%%02X", *p);
	}
}

static void
put_query(struct dd_buf *b, int *first, const char *key, const char *value)
{
	dd_buf_putc(b, *first ? '?' : '&');
	*first = 0;
	put_encoded(b, key);
	dd_buf_putc(b, '=');
	put_encoded(b, value);
}

static int
is_set(const char *s)
{
	return s && *s;
}

char *
dd_conninfo_url(const char *conninfo, const char *host, const char *port, const char *user, const char *dbname,
		char **password)
{
	static const char *const resolved[] = { "host", "hostaddr", "port", "user", "dbname", NULL };
	PQconninfoOption *opts = parse(conninfo);
	struct dd_buf b = DD_BUF_INIT;
	/* a socket directory or a host list: in the query, where libpq reads it whatever it holds */
	int host_in_query = is_set(host) && strpbrk(host, "/,") != NULL;
	int first = 1;

	if (password)
		*password = NULL;
	if (!opts)
		return NULL;
	dd_buf_puts(&b, "postgresql://");
	if (is_set(user)) {
		put_encoded(&b, user);
		dd_buf_putc(&b, '@');
	}
	if (is_set(host) && !host_in_query)
		put_encoded(&b, host);
	if (is_set(port) && !host_in_query && !strchr(port, ',')) {
		dd_buf_putc(&b, ':');
		put_encoded(&b, port);
	}
	dd_buf_putc(&b, '/');
	if (is_set(dbname))
		put_encoded(&b, dbname);
	if (host_in_query) {
		put_query(&b, &first, "host", host);
		if (is_set(port))
			put_query(&b, &first, "port", port);
	}
	for (const PQconninfoOption *o = opts; o->keyword; o++) {
		int skip = !is_set(o->val);
		for (size_t i = 0; !skip && resolved[i]; i++)
			skip = !strcmp(o->keyword, resolved[i]);
		if (skip)
			continue;
		if (!is_secret(o))
			put_query(&b, &first, o->keyword, o->val);
		else if (password && !strcmp(o->keyword, "password"))
			*password = dd_strdup(o->val);
	}
	PQconninfoFree(opts);
	return dd_buf_detach(&b, NULL);
}
