/*
 * config/redact.c: what of a setting may be shown. Connection strings are
 * redacted by util/conninfo (libpq's parser decides what is a password);
 * this adds what a display needs beyond that: store URLs (not libpq's),
 * and "***" for a connection string libpq cannot parse (it may hold a
 * password anywhere).
 */
#include "config/config.h"
#include "util/buf.h"
#include "util/conninfo.h"
#include "util/err.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The length of "scheme://" at the start of s, or 0. */
static size_t
url_scheme(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789+.-");

	return n > 0 && n < 16 && !strncmp(s + n, "://", 3) ? n + 3 : 0;
}

static int
mentions_password(const char *s)
{
	for (; *s; s++)
		if (!strncasecmp(s, "password", 8))
			return 1;
	return 0;
}

/* A URL libpq does not read (a store URL): user:***@ in its authority. */
static char *
redact_url(const char *s, size_t scheme)
{
	struct dd_buf b = DD_BUF_INIT;
	const char *auth = s + scheme, *end = auth + strcspn(auth, "/?#"), *at = NULL, *colon;

	for (const char *t = auth; t < end; t++)
		if (*t == '@')
			at = t;
	colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	if (colon) {
		dd_buf_put(&b, s, (size_t)(colon + 1 - s));
		dd_buf_puts(&b, DD_CONNINFO_MASK);
		dd_buf_puts(&b, at);
	} else {
		dd_buf_puts(&b, s);
	}
	return dd_buf_detach(&b, NULL);
}

char *
dd_config_redact(const char *s)
{
	struct dd_error_saved saved;
	size_t scheme = url_scheme(s);
	char *r;

	if (scheme && strncmp(s, "postgresql://", 13) && strncmp(s, "postgres://", 11)) {
		r = redact_url(s, scheme);
		if (mentions_password(r)) {
			free(r);
			r = dd_strdup(DD_CONNINFO_MASK);
		}
		return r;
	}
	dd_error_save(&saved); /* a display helper: leave the caller's error alone */
	r = dd_conninfo_redact(s);
	dd_error_restore(&saved);
	return r ? r : dd_strdup(DD_CONNINFO_MASK);
}
