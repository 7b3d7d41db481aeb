/*
 * config/parse.c: one settings file's text -> struct dd_config.
 *
 * Parsing uses inih through ini_parse_stream() with our own line reader.
 * The reader is where the file's rules live, because inih alone cannot
 * give them: it counts lines (so every error is "file:line: ..."), strips
 * leading whitespace (git-style indented keys would otherwise become inih
 * "continuation lines" of the previous key), parses [section] headers
 * itself (inih truncates section names at 50 bytes, silently), removes
 * " #" inline comments (inih only knows " ;"), and rejects what inih would
 * mangle: NUL bytes, lines longer than inih's buffer (it would split them
 * and parse the rest as a new line), lines without '='. inih then splits
 * "key = value", trims and drops " ;" comments, and calls the handler
 * (keys.c), which validates the key and value against one table of keys.
 *
 * Only the first error of a file is kept. Profile names must be unique
 * ignoring case: each one names a ref file, and "CLEAN" beside "clean" is
 * one file on a case-insensitive file system.
 */
#include "config/config.h"
#include "config/internal.h"
#include "util/buf.h"
#include "util/conflict.h"
#include "util/err.h"
#include "util/log.h"
#include "util/opts.h"

#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const section_names[] = { "store", "database", "hooks", "profile", NULL };

/* ---- errors with file:line ---- */

int
dd_config_fail(struct dd_config_parse *p, size_t line, const char *fmt, ...)
{
	va_list ap;

	if (p->err_line)
		return -1; /* keep the first error */
	p->err_line = line;
	va_start(ap, fmt);
	dd_buf_vprintf(&p->err, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *
find_line(const struct dd_config_parse *p, size_t want, size_t *len)
{
	size_t pos = 0, n = 1;

	while (n < want && pos < p->len) {
		const char *nl = memchr(p->text + pos, '\n', p->len - pos);
		if (!nl)
			break;
		pos = (size_t)(nl - p->text) + 1;
		n++;
	}
	const char *s = p->text + pos, *nl = memchr(s, '\n', p->len - pos);
	*len = nl ? (size_t)(nl - s) : p->len - pos;
	while (*len && (s[*len - 1] == '\r' || s[*len - 1] == ' '))
		(*len)--;
	while (*len && (*s == ' ' || *s == '\t'))
		s++, (*len)--;
	return s;
}

/*
 * Could this malformed line carry a password (a URL with user:password@,
 * a conninfo password=)? Then an error must not quote it: config.ini is
 * where people keep them.
 */
static int
may_hold_password(const char *s, size_t len)
{
	if (memchr(s, '@', len))
		return 1;
	for (size_t i = 0; i + 8 <= len; i++)
		if (!strncasecmp(s + i, "password", 8))
			return 1;
	return 0;
}

/* Line `line` (s[0..len), trimmed) is not "key = value": say so, quoting it unless it may hold a password. */
static void
not_key_value(struct dd_config_parse *p, size_t line, const char *s, size_t len)
{
	if (may_hold_password(s, len))
		dd_config_fail(p, line, "expected 'key = value' or a [section] (the line is not shown: "
					"it may hold a password)");
	else
		dd_config_fail(p, line, "expected 'key = value' or a [section], found '%.*s'", (int)(len > 60 ? 60 : len),
			       s);
}

/* ---- sections ---- */

struct dd_config_seen *
dd_config_find_seen(struct dd_config_parse *p, enum dd_config_section sec, const char *profile, const char *key)
{
	for (size_t i = 0; i < p->nseen; i++) {
		struct dd_config_seen *s = &p->seen[i];
		if (s->sec != sec || (s->key == NULL) != (key == NULL))
			continue;
		if (key && strcmp(s->key, key))
			continue;
		if ((s->profile == NULL) != (profile == NULL) || (profile && strcmp(s->profile, profile)))
			continue;
		return s;
	}
	return NULL;
}

void
dd_config_add_seen(struct dd_config_parse *p, enum dd_config_section sec, const char *profile, const char *key,
		   size_t line)
{
	p->seen = dd_realloc(p->seen, (p->nseen + 1) * sizeof(*p->seen));
	p->seen[p->nseen].sec = sec;
	p->seen[p->nseen].profile = profile ? dd_strdup(profile) : NULL;
	p->seen[p->nseen].key = key;
	p->seen[p->nseen].line = line;
	p->nseen++;
}

/* A [profile] section of this file whose name equals `name` ignoring case, or NULL. */
static const struct dd_config_seen *
find_profile_section_nocase(const struct dd_config_parse *p, const char *name)
{
	for (size_t i = 0; i < p->nseen; i++)
		if (p->seen[i].sec == SEC_PROFILE && !p->seen[i].key && !strcasecmp(p->seen[i].profile, name))
			return &p->seen[i];
	return NULL;
}

static void
enter_profile(struct dd_config_parse *p, const char *name)
{
	struct dd_config *cfg = &p->cfg->pub;
	const struct dd_config_seen *s = find_profile_section_nocase(p, name);

	if (s && !strcmp(s->profile, name)) {
		dd_config_fail(p, p->lineno, "profile '%s' is defined twice (first on line %zu)", name, s->line);
		p->sec = SEC_SKIP;
		return;
	}
	if (s) {
		dd_config_fail(p, p->lineno, "profile '%s' differs from '%s' (line %zu) only in case; "
					     "rename one (each names a ref file, and they would be one file on "
					     "case-insensitive file systems)", name, s->profile, s->line);
		p->sec = SEC_SKIP;
		return;
	}
	dd_config_add_seen(p, SEC_PROFILE, name, NULL, p->lineno);
	p->sec = SEC_PROFILE;
	p->profname = dd_strdup(name);
	if (p->local) {
		/* Overrides for a profile this branch does not define are ignored: config.ini outlives branches. */
		p->prof = dd_config_find_profile(cfg, name);
		if (!p->prof) {
			for (size_t i = 0; i < cfg->nprofiles; i++)
				if (!strcasecmp(cfg->profiles[i].name, name))
					dd_warn("%s:%zu: [profile \"%s\"] is ignored: profile names are case-sensitive, and "
						"the profile is called '%s'", p->display, p->lineno, name, cfg->profiles[i].name);
			dd_config_profile_clear(&p->scratch);
			p->prof = &p->scratch;
		}
		return;
	}
	cfg->profiles = dd_realloc(cfg->profiles, (cfg->nprofiles + 1) * sizeof(*cfg->profiles));
	p->prof = &cfg->profiles[cfg->nprofiles++];
	memset(p->prof, 0, sizeof(*p->prof));
	p->prof->name = dd_strdup(name);
	p->prof->terminate_connections = -1;
	p->prof->schema_dump = -1;
}

/* [profile "NAME"]: `q` is what follows "profile". */
static void
profile_header(struct dd_config_parse *p, const char *q)
{
	char *pname;
	size_t ql;

	while (*q == ' ' || *q == '\t')
		q++;
	ql = strlen(q);
	if (ql < 2 || q[0] != '"' || q[ql - 1] != '"') {
		dd_config_fail(p, p->lineno, "write a profile section as [profile \"NAME\"]");
		return;
	}
	pname = dd_strndup(q + 1, ql - 2);
	if (!dd_profile_name_valid(pname)) {
		dd_config_name_error(pname);
		dd_config_fail(p, p->lineno, "%s", dd_error_last());
		dd_error_clear();
	} else {
		enter_profile(p, pname);
	}
	free(pname);
}

static void
unknown_section(struct dd_config_parse *p, const char *name)
{
	const char *near = dd_closest(name, section_names);

	if (near && !strcmp(near, "profile"))
		dd_config_fail(p, p->lineno, "unknown section [%s] (did you mean [profile \"NAME\"]?)", name);
	else if (near)
		dd_config_fail(p, p->lineno, "unknown section [%s] (did you mean [%s]?)", name, near);
	else
		dd_config_fail(p, p->lineno,
			       "unknown section [%s] (expected [store], [database], [hooks] or [profile \"NAME\"])", name);
}

/* A "[...]" line (s/len: trimmed, starting with '['). */
static void
section_line(struct dd_config_parse *p, const char *s, size_t len)
{
	const char *close = memchr(s, ']', len);
	char *name = NULL;

	free(p->secname), p->secname = NULL;
	free(p->profname), p->profname = NULL;
	p->prof = NULL;
	p->sec = SEC_SKIP;
	if (!close) {
		dd_config_fail(p, p->lineno, "section header without a closing ']'");
		return;
	}
	for (const char *t = close + 1; t < s + len; t++) {
		if (*t == ';' || *t == '#')
			break;
		if (*t != ' ' && *t != '\t') {
			dd_config_fail(p, p->lineno, "unexpected text after ']'");
			return;
		}
	}
	name = dd_strndup(s + 1, (size_t)(close - s - 1));
	p->secname = dd_asprintf("[%s]", name);
	if (!strcmp(name, "store"))
		p->sec = SEC_STORE;
	else if (!strcmp(name, "database"))
		p->sec = SEC_DATABASE;
	else if (!strcmp(name, "hooks"))
		p->sec = SEC_HOOKS;
	else if (!strncmp(name, "profile", 7) && (name[7] == '\0' || name[7] == ' ' || name[7] == '\t'))
		profile_header(p, name + 7);
	else
		unknown_section(p, name);
	free(name);
}

/* ---- the line reader handed to inih ---- */

static char *
blank(char *str)
{
	str[0] = '\n', str[1] = '\0';
	return str;
}

static char *
reader(char *str, int num, void *stream)
{
	struct dd_config_parse *p = stream;
	const char *s, *nl;
	size_t l;

	if (p->pos >= p->len)
		return NULL;
	s = p->text + p->pos;
	nl = memchr(s, '\n', p->len - p->pos);
	l = nl ? (size_t)(nl - s) : p->len - p->pos;
	p->pos += l + (nl ? 1 : 0);
	p->lineno++;
	if (p->lineno == 1 && l >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
		s += 3, l -= 3; /* UTF-8 byte order mark */
	if (l && s[l - 1] == '\r')
		l--;
	if (memchr(s, '\0', l)) {
		dd_config_fail(p, p->lineno, "NUL byte (is this a text file?)");
		return blank(str);
	}
	while (l && (*s == ' ' || *s == '\t'))
		s++, l--;
	if (l == 0 || *s == ';' || *s == '#')
		return blank(str);
	/* " #" starts a comment, like inih's " ;" */
	for (size_t i = 1; i < l; i++)
		if (s[i] == '#' && (s[i - 1] == ' ' || s[i - 1] == '\t')) {
			l = i;
			break;
		}
	while (l && (s[l - 1] == ' ' || s[l - 1] == '\t'))
		l--;
	if (l + 2 > (size_t)num) {
		dd_config_fail(p, p->lineno, "line too long (%zu characters; at most %d)", l, num - 2);
		return blank(str);
	}
	if (dd_is_conflict_marker(s, l)) {
		dd_config_fail(p, p->lineno, "unresolved merge conflict marker");
		return blank(str);
	}
	if (*s == '[') {
		section_line(p, s, l);
		return blank(str);
	}
	for (size_t i = 0; i <= l; i++) {
		if (i == l || s[i] == ':' || ((s[i] == ';') && i && (s[i - 1] == ' ' || s[i - 1] == '\t'))) {
			not_key_value(p, p->lineno, s, l);
			return blank(str);
		}
		if (s[i] == '=')
			break;
	}
	memcpy(str, s, l);
	str[l] = '\n';
	str[l + 1] = '\0';
	return str;
}

/* ---- loading ---- */

int
dd_config_parse_text(struct dd_config *cfg, const char *text, size_t len, const char *display, int local)
{
	struct dd_config_parse p;
	int ret, rc = -1;

	memset(&p, 0, sizeof(p));
	p.cfg = (struct dd_config_priv *)cfg;
	p.display = display;
	p.local = local;
	p.text = text;
	p.len = len;
	p.scratch.terminate_connections = -1;
	p.scratch.schema_dump = -1;
	if (local && !cfg->local_display)
		cfg->local_display = dd_strdup(display);
	if (!local && !cfg->profiles_display)
		cfg->profiles_display = dd_strdup(display);

	ret = ini_parse_stream(reader, &p, dd_config_handler, &p);
	if (ret < 0) {
		dd_error("%s: cannot parse (out of memory)", display);
		goto out;
	}
	if (ret > 0 && (!p.err_line || (size_t)ret < p.err_line)) {
		size_t l;
		const char *s = find_line(&p, (size_t)ret, &l);
		dd_buf_clear(&p.err);
		p.err_line = 0;
		not_key_value(&p, (size_t)ret, s, l);
	}
	if (!p.err_line && !local && cfg->default_profile && !dd_config_find_profile(cfg, cfg->default_profile)) {
		struct dd_config_seen *s = dd_config_find_seen(&p, SEC_DATABASE, NULL, "default_profile");
		dd_config_fail(&p, s ? s->line : 1, "default_profile '%s' is not a profile defined in this file",
			       cfg->default_profile);
	}
	if (p.err_line) {
		size_t l;
		const char *s = find_line(&p, p.err_line, &l);
		dd_error("%s:%zu: %s", display, p.err_line, p.err.ptr);
		if (dd_is_conflict_marker(s, l))
			dd_hint("resolve the merge conflict in %s, then 'git add' it", display);
		goto out;
	}
	rc = 0;
out:
	for (size_t i = 0; i < p.nseen; i++)
		free(p.seen[i].profile);
	free(p.seen);
	free(p.secname);
	free(p.profname);
	dd_config_profile_clear(&p.scratch);
	dd_buf_release(&p.err);
	return rc;
}

