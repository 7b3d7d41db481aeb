/*
 * fuzz/fuzz-conninfo.c: the connection string functions (util/conninfo.c)
 * on hostile text (a conninfo comes from profiles.ini, config.ini, a
 * profile's `database`, PG* settings). libpq's PQconninfoParse is the
 * judge of what a string means.
 *
 * Beyond "no crash under ASan/UBSan", the promise of conninfo.h that no
 * secret is ever shown: the redacted text sets every secret keyword to
 * "***" or nothing (or is "***" whole) and keeps the text unchanged when
 * there is no secret; a failure's one-line reason never holds the
 * password; the stripped string and the URL set no secret and parse; the
 * URL hands back exactly the password the string sets; the string with
 * another dbname keeps every other keyword; all four agree on whether the
 * string parses.
 */
#include <ctype.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/conninfo.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DBNAME "fuzz 'db'\\"

static int
is_secret(const PQconninfoOption *o)
{
	return o->dispchar && strchr(o->dispchar, '*');
}

static const char *
value_of(const PQconninfoOption *opts, const char *keyword)
{
	for (const PQconninfoOption *o = opts; o && o->keyword; o++)
		if (!strcmp(o->keyword, keyword))
			return o->val;
	return NULL;
}

/* The options of s as libpq reads it (NULL: it does not), and whether a secret is set. */
static PQconninfoOption *
judge(const char *s, int *secret)
{
	PQconninfoOption *o = PQconninfoParse(s, NULL);

	*secret = 0;
	for (const PQconninfoOption *p = o; p && p->keyword; p++)
		if (is_secret(p) && p->val && *p->val)
			*secret = 1;
	return o;
}

/*
 * A failure: one line, no password, and nothing quoted from the string
 * (libpq's message is cut at its first quotation, shown as "..."; a
 * quoted punctuation character such as "=" is grammar and may stay).
 */
static void
check_error(const char *password)
{
	const char *e = dd_error_last(), *q;

	if (!e || strchr(e, '\n') || (password && strlen(password) >= 4 && strstr(e, password)))
		abort();
	for (q = strchr(e, '"'); q; q = strchr(q + 3, '"')) {
		if (!strcmp(q, "\"...\""))
			break;
		if (!q[1] || !ispunct((unsigned char)q[1]) || q[2] != '"')
			abort();
	}
	dd_error_clear();
}

static void
check_redacted(const char *s, const char *r, PQconninfoOption *orig, int secret)
{
	PQconninfoOption *m;
	int again;

	if (!orig || !strcmp(r, DD_CONNINFO_MASK))
		return; /* a bare database name (libpq reads it as dbname=...), or hidden whole */
	if (!secret) {
		if (strcmp(r, s))
			abort(); /* nothing to hide: the text as written */
		return;
	}
	if (!(m = judge(r, &again)))
		abort();
	for (const PQconninfoOption *o = m; o->keyword; o++)
		if (is_secret(o) && o->val && *o->val && strcmp(o->val, DD_CONNINFO_MASK))
			abort();
	PQconninfoFree(m);
}

static void
check_with_dbname(const char *w, PQconninfoOption *orig)
{
	int secret;
	PQconninfoOption *m = judge(w, &secret);

	if (!m || !value_of(m, "dbname") || strcmp(value_of(m, "dbname"), DBNAME))
		abort();
	for (const PQconninfoOption *o = orig; orig && o->keyword; o++) {
		const char *v = value_of(m, o->keyword);
		if (strcmp(o->keyword, "dbname") && o->val && *o->val && (!v || strcmp(v, o->val)))
			abort();
	}
	PQconninfoFree(m);
}

static void
check_url(const char *u)
{
	int secret;
	PQconninfoOption *m = judge(u, &secret);

	if (!m || secret || strncmp(u, "postgresql://", 13))
		abort();
	PQconninfoFree(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *r, *strip, *w, *u, *pw = NULL;
	PQconninfoOption *orig;
	const char *password;
	int secret, again;

	if (getenv("PGSERVICE"))
		unsetenv("PGSERVICE"); /* a service changes what dd_conninfo_url() writes; the file is never read here */
	memcpy(s, data, size);
	s[size] = '\0';
	orig = judge(s, &secret);
	password = value_of(orig, "password");

	r = dd_conninfo_redact(s);
	if (!r)
		check_error(password);
	else
		check_redacted(s, r, orig, secret);

	strip = dd_conninfo_strip_secrets(s);
	if (!strip != !r)
		abort();
	if (!strip)
		check_error(password);
	else if (dd_conninfo_has_secret(strip) != 0)
		abort(); /* parses (has_secret says -1 when not), and sets no secret */

	w = dd_conninfo_with_dbname(s, DBNAME);
	if (!w != !r)
		abort();
	if (!w)
		check_error(password);
	else
		check_with_dbname(w, orig);

	u = dd_conninfo_url(s, NULL, NULL, NULL, NULL, &pw);
	if (!u != !r)
		abort();
	if (!u) {
		check_error(password);
	} else {
		check_url(u);
		if (orig && (password && *password ? !pw || strcmp(pw, password) : pw != NULL))
			abort(); /* the password comes back as set, and only it */
	}
	again = dd_conninfo_has_secret(s);
	if (again != (r ? (orig ? secret : 0) : -1))
		abort();
	dd_error_clear();
	PQconninfoFree(orig);
	free(r);
	free(strip);
	free(w);
	free(u);
	free(pw);
	free(s);
	return 0;
}
