/*
 * config/config.c: profiles.ini + config.ini + environment -> one resolved
 * struct dd_config (format in docs/FORMAT.md §2, every key documented in
 * profiles.ini.example).
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
 * "key = value", trims and drops " ;" comments, and calls the handler,
 * which validates the key and value against one table of keys.
 *
 * Invariants after a successful load: every profile name is valid and
 * unique; default_profile names a defined profile; lists are
 * NULL-terminated (never NULL themselves once set); a key set in
 * config.ini replaced the profiles.ini value (lists included).
 *
 * Writing never re-serialises a file: adding a profile appends text,
 * setting the active profile edits one line, so the user's comments and
 * layout survive. Every write is atomic (util/fs.h).
 */
#include "config/config.h"
#include "git/repo.h"
#include "util/buf.h"
#include "util/conflict.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/log.h"
#include "util/opts.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_NAME 64
#define MAX_JOBS 1024

/* The public struct plus what only this file needs. */
struct priv {
	struct dd_config pub;
	char *local_active; /* [database] active_profile from config.ini */
};

enum section { SEC_NONE, SEC_STORE, SEC_DATABASE, SEC_HOOKS, SEC_PROFILE, SEC_SKIP };

enum kind {
	K_STR,       /* any one-line string; "" kept (meaningful for conninfo) */
	K_OPT_STR,   /* a one-line string; "" = unset (NULL) */
	K_STORE_URL, /* file://... or s3://...; "" = unset */
	K_BOOL,
	K_JOBS,
	K_NAME,      /* a profile name */
	K_LIST,      /* comma/space separated words, key may repeat (appends) */
	K_COMMANDS,  /* one command per line, key may repeat (appends) */
};

enum where { BOTH, SHARED_ONLY, LOCAL_ONLY };

struct key {
	enum section sec;
	const char *name;
	enum kind kind;
	enum where where;
	size_t off; /* in struct priv, or in struct dd_profile for SEC_PROFILE */
};

#define C(f) offsetof(struct priv, f)
#define P(f) offsetof(struct dd_profile, f)

/* Every key there is. Adding one: a line here, a comment in profiles.ini.example, a row in FORMAT.md §2. */
static const struct key keys[] = {
	{ SEC_STORE, "url", K_STORE_URL, BOTH, C(pub.store_url) },
	{ SEC_DATABASE, "url", K_STR, BOTH, C(pub.database) },
	{ SEC_DATABASE, "default_profile", K_NAME, SHARED_ONLY, C(pub.default_profile) },
	{ SEC_DATABASE, "active_profile", K_NAME, LOCAL_ONLY, C(local_active) },
	{ SEC_DATABASE, "jobs", K_JOBS, BOTH, C(pub.jobs) },
	{ SEC_DATABASE, "terminate_connections", K_BOOL, BOTH, C(pub.terminate_connections) },
	{ SEC_HOOKS, "post_restore", K_COMMANDS, BOTH, C(pub.post_restore) },
	{ SEC_PROFILE, "database", K_STR, BOTH, P(database) },
	{ SEC_PROFILE, "media", K_OPT_STR, BOTH, P(media) },
	{ SEC_PROFILE, "exclude_tables", K_LIST, BOTH, P(exclude_tables) },
	{ SEC_PROFILE, "exclude_data", K_LIST, BOTH, P(exclude_data) },
	{ SEC_PROFILE, "terminate_connections", K_BOOL, BOTH, P(terminate_connections) },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const char *const section_names[] = { "store", "database", "hooks", "profile", NULL };

/* A key (or, with key == NULL, a [profile] section) seen in the file being parsed. */
struct seen {
	enum section sec;
	char *profile;
	const char *key;
	size_t line;
};

struct parse {
	struct priv *cfg;
	const char *display;
	int local;
	const char *text;
	size_t len, pos, lineno;
	enum section sec;
	char *secname;        /* for messages: [store], [profile "x"] */
	char *profname;       /* current [profile "NAME"], else NULL */
	struct dd_profile *prof;
	struct dd_profile scratch; /* local override of a profile this branch lacks: parsed, dropped */
	struct seen *seen;
	size_t nseen;
	size_t err_line;
	struct dd_buf err;
	int warned_password;
};

/* ---- small helpers ---- */

static void
free_list(char **list)
{
	for (char **p = list; p && *p; p++)
		free(*p);
	free(list);
}

static size_t
list_len(char *const *list)
{
	size_t n = 0;

	while (list && list[n])
		n++;
	return n;
}

static void
list_add(char ***list, const char *s, size_t len)
{
	size_t n = list_len(*list);

	*list = dd_realloc(*list, (n + 2) * sizeof(**list));
	(*list)[n] = dd_strndup(s, len);
	(*list)[n + 1] = NULL;
}

static char **
list_copy(char *const *list)
{
	char **out = NULL;

	if (!list)
		return NULL;
	out = dd_calloc(list_len(list) + 1, sizeof(*out));
	for (size_t i = 0; list[i]; i++)
		out[i] = dd_strdup(list[i]);
	return out;
}

static void
profile_clear(struct dd_profile *p)
{
	free(p->name);
	free(p->database);
	free(p->media);
	free_list(p->exclude_tables);
	free_list(p->exclude_data);
	memset(p, 0, sizeof(*p));
	p->terminate_connections = -1;
}

int
dd_profile_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > MAX_NAME || !isalnum((unsigned char)name[0]))
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!(isalnum(c) || c == '-' || c == '_') || c >= 0x80)
			return 0;
	}
	return 1;
}

static int
name_error(const char *name)
{
	if (!*name)
		return dd_error("a profile name cannot be empty");
	if (strlen(name) > MAX_NAME)
		return dd_error("profile name '%.20s...' is too long (at most %d characters)", name, MAX_NAME);
	return dd_error("invalid profile name '%s': use letters, digits, '-' and '_', starting with a letter or digit",
			name);
}

int
dd_profile_name_check(const char *name)
{
	return dd_profile_name_valid(name) ? 0 : name_error(name);
}

static int
parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" }, *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(v, yes[i]))
			return *out = 1, 0;
		if (!strcasecmp(v, no[i]))
			return *out = 0, 0;
	}
	return -1;
}

/* ---- errors with file:line ---- */

static int
fail(struct parse *p, size_t line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
fail(struct parse *p, size_t line, const char *fmt, ...)
{
	va_list ap;

	if (p->err_line)
		return 0; /* keep the first error */
	p->err_line = line;
	va_start(ap, fmt);
	dd_buf_vprintf(&p->err, fmt, ap);
	va_end(ap);
	return 0; /* inih: "this line is bad" */
}

static const char *
find_line(const struct parse *p, size_t want, size_t *len)
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

/* ---- sections ---- */

static struct seen *
find_seen(struct parse *p, enum section sec, const char *profile, const char *key)
{
	for (size_t i = 0; i < p->nseen; i++) {
		struct seen *s = &p->seen[i];
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

static void
add_seen(struct parse *p, enum section sec, const char *profile, const char *key, size_t line)
{
	p->seen = dd_realloc(p->seen, (p->nseen + 1) * sizeof(*p->seen));
	p->seen[p->nseen].sec = sec;
	p->seen[p->nseen].profile = profile ? dd_strdup(profile) : NULL;
	p->seen[p->nseen].key = key;
	p->seen[p->nseen].line = line;
	p->nseen++;
}

static struct dd_profile *
find_profile(const struct dd_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nprofiles; i++)
		if (!strcmp(cfg->profiles[i].name, name))
			return &cfg->profiles[i];
	return NULL;
}

static void
enter_profile(struct parse *p, const char *name)
{
	struct dd_config *cfg = &p->cfg->pub;
	struct seen *s = find_seen(p, SEC_PROFILE, name, NULL);

	if (s) {
		fail(p, p->lineno, "profile '%s' is defined twice (first on line %zu)", name, s->line);
		p->sec = SEC_SKIP;
		return;
	}
	add_seen(p, SEC_PROFILE, name, NULL, p->lineno);
	p->sec = SEC_PROFILE;
	p->profname = dd_strdup(name);
	if (p->local) {
		/* Overrides for a profile this branch does not define are ignored: config.ini outlives branches. */
		p->prof = find_profile(cfg, name);
		if (!p->prof) {
			profile_clear(&p->scratch);
			p->prof = &p->scratch;
		}
		return;
	}
	cfg->profiles = dd_realloc(cfg->profiles, (cfg->nprofiles + 1) * sizeof(*cfg->profiles));
	p->prof = &cfg->profiles[cfg->nprofiles++];
	memset(p->prof, 0, sizeof(*p->prof));
	p->prof->name = dd_strdup(name);
	p->prof->terminate_connections = -1;
}

/* A "[...]" line (s/len: trimmed, starting with '['). */
static void
section_line(struct parse *p, const char *s, size_t len)
{
	const char *close = memchr(s, ']', len);
	char *name = NULL;

	free(p->secname), p->secname = NULL;
	free(p->profname), p->profname = NULL;
	p->prof = NULL;
	p->sec = SEC_SKIP;
	if (!close) {
		fail(p, p->lineno, "section header without a closing ']'");
		return;
	}
	for (const char *t = close + 1; t < s + len; t++) {
		if (*t == ';' || *t == '#')
			break;
		if (*t != ' ' && *t != '\t') {
			fail(p, p->lineno, "unexpected text after ']'");
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
	else if (!strncmp(name, "profile", 7) && (name[7] == '\0' || name[7] == ' ' || name[7] == '\t')) {
		const char *q = name + 7;
		size_t ql;
		while (*q == ' ' || *q == '\t')
			q++;
		ql = strlen(q);
		if (ql < 2 || q[0] != '"' || q[ql - 1] != '"') {
			fail(p, p->lineno, "write a profile section as [profile \"NAME\"]");
			goto out;
		}
		char *pname = dd_strndup(q + 1, ql - 2);
		if (!dd_profile_name_valid(pname)) {
			name_error(pname);
			fail(p, p->lineno, "%s", dd_error_last());
			dd_error_clear();
		} else {
			enter_profile(p, pname);
		}
		free(pname);
	} else {
		const char *near = dd_closest(name, section_names);
		if (near && !strcmp(near, "profile"))
			fail(p, p->lineno, "unknown section [%s] (did you mean [profile \"NAME\"]?)", name);
		else if (near)
			fail(p, p->lineno, "unknown section [%s] (did you mean [%s]?)", name, near);
		else
			fail(p, p->lineno, "unknown section [%s] (expected [store], [database], [hooks] or [profile \"NAME\"])",
			     name);
	}
out:
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
	struct parse *p = stream;
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
		fail(p, p->lineno, "NUL byte (is this a text file?)");
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
		fail(p, p->lineno, "line too long (%zu characters; at most %d)", l, num - 2);
		return blank(str);
	}
	if (dd_is_conflict_marker(s, l)) {
		fail(p, p->lineno, "unresolved merge conflict marker");
		return blank(str);
	}
	if (*s == '[') {
		section_line(p, s, l);
		return blank(str);
	}
	for (size_t i = 0; i <= l; i++) {
		if (i == l || s[i] == ':' || ((s[i] == ';') && i && (s[i - 1] == ' ' || s[i - 1] == '\t'))) {
			if (may_hold_password(s, l))
				fail(p, p->lineno, "expected 'key = value' or a [section] (the line is not shown: "
						   "it may hold a password)");
			else
				fail(p, p->lineno, "expected 'key = value' or a [section], found '%.*s'",
				     (int)(l > 60 ? 60 : l), s);
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

/* ---- the key handler ---- */

static const char *
sec_label(enum section sec)
{
	switch (sec) {
	case SEC_STORE: return "[store]";
	case SEC_DATABASE: return "[database]";
	case SEC_HOOKS: return "[hooks]";
	case SEC_PROFILE: return "[profile \"NAME\"]";
	default: return "?";
	}
}

static int
unknown_key(struct parse *p, const char *name)
{
	const char *names[NKEYS + 1];
	size_t n = 0;

	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].sec == p->sec)
			names[n++] = keys[i].name;
	names[n] = NULL;
	const char *near = dd_closest(name, names);
	if (near)
		return fail(p, p->lineno, "unknown key '%s' in %s (did you mean '%s'?)", name, p->secname, near);
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].name, name))
			return fail(p, p->lineno, "unknown key '%s' in %s (it belongs in %s)", name, p->secname,
				    sec_label(keys[i].sec));
	return fail(p, p->lineno, "unknown key '%s' in %s", name, p->secname);
}

static int
check_value_text(struct parse *p, const char *key, const char *v)
{
	size_t len = strlen(v);

	for (size_t i = 0; i < len; i++)
		if (((unsigned char)v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
			return fail(p, p->lineno, "control character in the value of '%s'", key);
	if (!dd_utf8_valid(v, len))
		return fail(p, p->lineno, "the value of '%s' is not valid UTF-8", key);
	return 1;
}

static int
has_password(const char *conninfo)
{
	char *r = dd_config_redact(conninfo);
	int differs = strcmp(r, conninfo) != 0;

	free(r);
	return differs;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	const struct key *k = NULL;
	void *base;
	struct seen *s;

	(void)section; /* we track sections ourselves (see section_line) */
	if (p->sec == SEC_SKIP)
		return 1; /* the section header was already reported */
	if (p->sec == SEC_NONE)
		return fail(p, p->lineno, "'%s' is outside any section (put it under [store], [database], [hooks] "
				"or [profile \"NAME\"])", name);
	if (!*name)
		return fail(p, p->lineno, "missing key name before '='");
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].sec == p->sec && !strcmp(keys[i].name, name))
			k = &keys[i];
	if (!k)
		return unknown_key(p, name);
	if (k->where == SHARED_ONLY && p->local)
		return fail(p, p->lineno, "'%s' can only be set in .dnadata/profiles.ini", name);
	if (k->where == LOCAL_ONLY && !p->local)
		return fail(p, p->lineno, "'%s' is chosen per clone with 'git dnadata use NAME', not in %s", name,
			    p->display);
	if (!check_value_text(p, name, value))
		return 0;
	s = find_seen(p, k->sec, p->profname, k->name);
	if (s && k->kind != K_LIST && k->kind != K_COMMANDS)
		return fail(p, p->lineno, "duplicate key '%s' in %s (first set on line %zu)", name, p->secname, s->line);
	base = k->sec == SEC_PROFILE ? (void *)p->prof : (void *)p->cfg;
	if ((k->kind == K_LIST || k->kind == K_COMMANDS) && !s && p->local) {
		/* config.ini replaces a list rather than extending it */
		char ***list = (char ***)((char *)base + k->off);
		free_list(*list);
		*list = NULL;
	}
	if (!s)
		add_seen(p, k->sec, p->profname, k->name, p->lineno);

	switch (k->kind) {
	case K_STR: {
		char **field = (char **)((char *)base + k->off);
		if (!p->local && !p->warned_password && has_password(value)) {
			p->warned_password = 1;
			dd_warn("%s:%zu: a password in a tracked file is visible to everyone with the repository; "
				"move it to ~/.pgpass, PGPASSWORD or .git/dnadata/config.ini", p->display, p->lineno);
		}
		free(*field);
		*field = dd_strdup(value);
		break;
	}
	case K_OPT_STR: {
		char **field = (char **)((char *)base + k->off);
		free(*field);
		*field = *value ? dd_strdup(value) : NULL;
		break;
	}
	case K_STORE_URL: {
		char **field = (char **)((char *)base + k->off);
		if (*value && strncmp(value, "file://", 7) && strncmp(value, "s3://", 5)) {
			char *r = dd_config_redact(value);
			fail(p, p->lineno, "store url '%.60s' must start with file:// or s3://", r);
			free(r);
			return 0;
		}
		free(*field);
		*field = *value ? dd_strdup(value) : NULL;
		if (*value)
			p->cfg->pub.store_source = p->local ? p->cfg->pub.local_display : p->cfg->pub.profiles_display;
		break;
	}
	case K_BOOL:
		if (parse_bool(value, (int *)((char *)base + k->off)) < 0)
			return fail(p, p->lineno, "'%s' must be true or false, not '%.40s'", name, value);
		break;
	case K_JOBS: {
		char *end;
		errno = 0;
		long v = strtol(value, &end, 10);
		if (!*value || *end || errno || v < 0 || v > MAX_JOBS)
			return fail(p, p->lineno, "'%s' must be a number from 0 (one per CPU core) to %d, not '%.40s'",
				    name, MAX_JOBS, value);
		*(int *)((char *)base + k->off) = (int)v;
		break;
	}
	case K_NAME: {
		char **field = (char **)((char *)base + k->off);
		if (!dd_profile_name_valid(value)) {
			name_error(value);
			fail(p, p->lineno, "%s: %s", name, dd_error_last());
			dd_error_clear();
			return 0;
		}
		free(*field);
		*field = dd_strdup(value);
		break;
	}
	case K_LIST: {
		char ***list = (char ***)((char *)base + k->off);
		const char *t = value;
		size_t added = 0;
		while (*t) {
			size_t n = strcspn(t, ", \t");
			if (n)
				list_add(list, t, n), added++;
			t += n;
			t += strspn(t, ", \t");
		}
		if (!added)
			return fail(p, p->lineno, "'%s' needs at least one table pattern", name);
		break;
	}
	case K_COMMANDS: {
		char ***list = (char ***)((char *)base + k->off);
		if (!*value)
			return fail(p, p->lineno, "'%s' needs a command", name);
		list_add(list, value, strlen(value));
		break;
	}
	}
	return 1;
}

/* ---- loading ---- */

struct dd_config *
dd_config_new(void)
{
	struct priv *pv = dd_calloc(1, sizeof(*pv));

	return &pv->pub;
}

void
dd_config_free(struct dd_config *cfg)
{
	struct priv *pv = (struct priv *)cfg;

	if (!cfg)
		return;
	free(cfg->store_url);
	free(cfg->database);
	free(cfg->default_profile);
	free(cfg->active_profile);
	for (size_t i = 0; i < cfg->nprofiles; i++)
		profile_clear(&cfg->profiles[i]);
	free(cfg->profiles);
	free(cfg->profiles_path);
	free(cfg->local_path);
	free(cfg->database_override);
	free_list(cfg->post_restore);
	free(cfg->profiles_display);
	free(cfg->local_display);
	free(pv->local_active);
	free(pv);
}

int
dd_config_parse_text(struct dd_config *cfg, const char *text, size_t len, const char *display, int local)
{
	struct parse p;
	int ret, rc = -1;

	memset(&p, 0, sizeof(p));
	p.cfg = (struct priv *)cfg;
	p.display = display;
	p.local = local;
	p.text = text;
	p.len = len;
	p.scratch.terminate_connections = -1;
	if (local && !cfg->local_display)
		cfg->local_display = dd_strdup(display);
	if (!local && !cfg->profiles_display)
		cfg->profiles_display = dd_strdup(display);

	ret = ini_parse_stream(reader, &p, handler, &p);
	if (ret < 0) {
		dd_error("%s: cannot parse (out of memory)", display);
		goto out;
	}
	if (ret > 0 && (!p.err_line || (size_t)ret < p.err_line)) {
		size_t l;
		const char *s = find_line(&p, (size_t)ret, &l);
		dd_buf_clear(&p.err);
		p.err_line = 0;
		fail(&p, (size_t)ret, "expected 'key = value' or a [section], found '%.*s'", (int)(l > 60 ? 60 : l), s);
	}
	if (!p.err_line && !local && cfg->default_profile && !find_profile(cfg, cfg->default_profile)) {
		struct seen *s = find_seen(&p, SEC_DATABASE, NULL, "default_profile");
		fail(&p, s ? s->line : 1, "default_profile '%s' is not a profile defined in this file", cfg->default_profile);
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
	profile_clear(&p.scratch);
	dd_buf_release(&p.err);
	return rc;
}

void
dd_config_resolve(struct dd_config *cfg)
{
	struct priv *pv = (struct priv *)cfg;
	const char *env;

	if ((env = getenv("DNADATA_STORE")) && *env &&
	    !(cfg->store_source && !strcmp(cfg->store_source, "command line"))) {
		free(cfg->store_url);
		cfg->store_url = dd_strdup(env);
		cfg->store_source = "DNADATA_STORE";
	}
	if ((env = getenv("DNADATA_DATABASE")) && *env && !cfg->database_override)
		cfg->database_override = dd_strdup(env);
	free(cfg->active_profile);
	cfg->active_profile = NULL;
	cfg->active_source = NULL;
	if ((env = getenv("DNADATA_PROFILE")) && *env) {
		cfg->active_profile = dd_strdup(env);
		cfg->active_source = "DNADATA_PROFILE";
	} else if (pv->local_active) {
		cfg->active_profile = dd_strdup(pv->local_active);
		cfg->active_source = cfg->local_display ? cfg->local_display : "config.ini";
	} else if (cfg->default_profile) {
		cfg->active_profile = dd_strdup(cfg->default_profile);
		cfg->active_source = "default_profile";
	} else if (cfg->nprofiles == 1) {
		cfg->active_profile = dd_strdup(cfg->profiles[0].name);
		cfg->active_source = "only profile";
	}
}

static int
read_text(struct dd_buf *out, const char *path, const char *display)
{
	struct stat st;

	if (stat(path, &st) == 0 && st.st_size > 1024 * 1024)
		return dd_error("%s is too large for a settings file (%lld bytes)", display, (long long)st.st_size);
	return dd_file_read(out, path);
}

int
dd_config_load_files(struct dd_config **out, const char *profiles_path, const char *profiles_display,
		     const char *local_path, const char *local_display)
{
	struct dd_config *cfg = dd_config_new();
	struct dd_buf text = DD_BUF_INIT;
	int rc = -1;

	*out = NULL;
	cfg->profiles_path = dd_strdup(profiles_path);
	cfg->profiles_display = dd_strdup(profiles_display);
	cfg->local_path = dd_strdup(local_path);
	cfg->local_display = dd_strdup(local_display);
	if (!dd_path_exists(profiles_path)) {
		dd_error("git dnadata is not set up in this repository (%s does not exist)", profiles_display);
		dd_hint("run 'git dnadata init'");
		goto out;
	}
	if (read_text(&text, profiles_path, profiles_display) < 0 ||
	    dd_config_parse_text(cfg, dd_buf_cstr(&text), text.len, profiles_display, 0) < 0)
		goto out;
	dd_buf_clear(&text);
	if (dd_path_exists(local_path)) {
		if (read_text(&text, local_path, local_display) < 0 ||
		    dd_config_parse_text(cfg, dd_buf_cstr(&text), text.len, local_display, 1) < 0)
			goto out;
	}
	dd_config_resolve(cfg);
	*out = cfg, cfg = NULL, rc = 0;
out:
	dd_buf_release(&text);
	dd_config_free(cfg);
	return rc;
}

int
dd_config_open(struct dd_repo **repo, struct dd_config **cfg)
{
	*cfg = NULL;
	if (dd_repo_open(repo, NULL) < 0) {
		*repo = NULL;
		return -1;
	}
	if (dd_config_load(cfg, *repo) < 0) {
		dd_repo_free(*repo);
		*repo = NULL;
		*cfg = NULL;
		return -1;
	}
	return 0;
}

int
dd_config_load(struct dd_config **out, const struct dd_repo *repo)
{
	char *profiles = dd_path_join(repo->dnadata, "profiles.ini");
	char *local = dd_path_join(repo->statedir, "config.ini");
	int rc = dd_config_load_files(out, profiles, dd_repo_display_path(repo, profiles), local,
				      dd_repo_display_path(repo, local));

	free(profiles);
	free(local);
	return rc;
}

void
dd_config_override_store(struct dd_config *cfg, const char *url)
{
	free(cfg->store_url);
	cfg->store_url = dd_strdup(url);
	cfg->store_source = "command line";
}

void
dd_config_override_database(struct dd_config *cfg, const char *conninfo)
{
	free(cfg->database_override);
	cfg->database_override = dd_strdup(conninfo);
}

/* ---- lookups ---- */

static int
no_such_profile(const struct dd_config *cfg, const char *name, const char *why)
{
	const char **names = dd_calloc(cfg->nprofiles + 1, sizeof(*names));
	const char *near;

	for (size_t i = 0; i < cfg->nprofiles; i++)
		names[i] = cfg->profiles[i].name;
	near = dd_closest(name, names);
	if (near)
		dd_error("no profile '%s'%s (did you mean '%s'?)", name, why, near);
	else
		dd_error("no profile '%s'%s", name, why);
	dd_hint("'git dnadata status' lists the profiles; 'git dnadata new-profile %s' adds one", name);
	free(names);
	return -1;
}

const struct dd_profile *
dd_config_profile(const struct dd_config *cfg, const char *name)
{
	const struct dd_profile *p;

	if (!name) {
		if (!cfg->active_profile) {
			dd_error("no active profile: none chosen with 'git dnadata use', and %s sets no default_profile",
				 cfg->profiles_display ? cfg->profiles_display : "profiles.ini");
			dd_hint("run 'git dnadata use NAME'");
			return NULL;
		}
		if (!(p = find_profile(cfg, cfg->active_profile))) {
			struct dd_buf why = DD_BUF_INIT;
			dd_buf_printf(&why, " in %s (the active profile, from %s)",
				      cfg->profiles_display ? cfg->profiles_display : "profiles.ini",
				      cfg->active_source ? cfg->active_source : "?");
			no_such_profile(cfg, cfg->active_profile, why.ptr);
			dd_buf_release(&why);
		}
		return p;
	}
	if (!(p = find_profile(cfg, name))) {
		struct dd_buf why = DD_BUF_INIT;
		dd_buf_printf(&why, " in %s", cfg->profiles_display ? cfg->profiles_display : "profiles.ini");
		no_such_profile(cfg, name, why.ptr);
		dd_buf_release(&why);
	}
	return p;
}

const char *
dd_config_database(const struct dd_config *cfg, const struct dd_profile *p)
{
	if (cfg->database_override)
		return cfg->database_override;
	if (p && p->database)
		return p->database;
	return cfg->database ? cfg->database : "";
}

/* ---- redaction ---- */

/* Replace the value of every "password=" in a query string s[0..len). */
static void
redact_query(struct dd_buf *b, const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t n = 0;
		while (i + n < len && s[i + n] != '&' && s[i + n] != '#')
			n++;
		if (n >= 9 && !strncmp(s + i, "password=", 9)) {
			dd_buf_puts(b, "password=***");
		} else {
			dd_buf_put(b, s + i, n);
		}
		i += n;
		if (i < len)
			dd_buf_putc(b, s[i++]);
	}
}

char *
dd_config_redact(const char *s)
{
	struct dd_buf b = DD_BUF_INIT;
	const char *scheme = strstr(s, "://");
	size_t len = strlen(s);

	if (scheme && (size_t)(scheme - s) < 16 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789+.-") ==
							  (size_t)(scheme - s)) {
		const char *auth = scheme + 3, *end = auth + strcspn(auth, "/?#"), *at = NULL, *colon;
		for (const char *t = auth; t < end; t++)
			if (*t == '@')
				at = t;
		colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
		if (colon) {
			dd_buf_put(&b, s, (size_t)(colon + 1 - s));
			dd_buf_puts(&b, "***");
			dd_buf_put(&b, at, (size_t)(end - at));
		} else {
			dd_buf_put(&b, s, (size_t)(end - s));
		}
		const char *q = strchr(end, '?');
		if (q) {
			dd_buf_put(&b, end, (size_t)(q + 1 - end));
			redact_query(&b, q + 1, len - (size_t)(q + 1 - s));
		} else {
			dd_buf_puts(&b, end);
		}
		return dd_buf_detach(&b, NULL);
	}
	/* keyword=value conninfo; values may be 'quoted' with \ escapes */
	for (size_t i = 0; i < len;) {
		size_t ks = i, ke, vs, ve;
		while (i < len && isspace((unsigned char)s[i]))
			i++;
		dd_buf_put(&b, s + ks, i - ks);
		ks = i;
		while (i < len && !isspace((unsigned char)s[i]) && s[i] != '=')
			i++;
		ke = i;
		while (i < len && isspace((unsigned char)s[i]))
			i++;
		if (i >= len || s[i] != '=') {
			dd_buf_put(&b, s + ks, i - ks);
			continue;
		}
		i++;
		while (i < len && isspace((unsigned char)s[i]))
			i++;
		vs = i;
		if (i < len && s[i] == '\'') {
			for (i++; i < len && s[i] != '\''; i++)
				if (s[i] == '\\' && i + 1 < len)
					i++;
			if (i < len)
				i++;
		} else {
			while (i < len && !isspace((unsigned char)s[i]))
				i++;
		}
		ve = i;
		dd_buf_put(&b, s + ks, vs - ks);
		if (ke - ks == 8 && !strncmp(s + ks, "password", 8))
			dd_buf_puts(&b, "***");
		else
			dd_buf_put(&b, s + vs, ve - vs);
	}
	return dd_buf_detach(&b, NULL);
}

/* ---- writing ---- */

/*
 * Can `value` be written as "key = value" and read back unchanged? It must
 * be one line of text, without surrounding blanks or a comment start, and
 * short enough for inih's line buffer.
 */
static int
check_writable(const char *key, const char *value)
{
	size_t len = strlen(value);
	char *shown = dd_config_redact(value); /* a database URL may carry a password */
	int rc = -1;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];
		if (c < 0x20 || c == 0x7f) {
			dd_error("the %s '%.40s' contains a control character or line break", key, shown);
			goto out;
		}
		if ((c == ';' || c == '#') && i && (value[i - 1] == ' ' || value[i - 1] == '\t')) {
			dd_error("the %s '%.40s' contains ' %c', which starts a comment in profiles.ini", key, shown, c);
			goto out;
		}
	}
	if (len && (isspace((unsigned char)value[0]) || isspace((unsigned char)value[len - 1]))) {
		dd_error("the %s '%.40s' starts or ends with a space", key, shown);
		goto out;
	}
	if (len && (value[0] == ';' || value[0] == '#')) {
		dd_error("the %s '%.40s' starts with '%c', which starts a comment in profiles.ini", key, shown,
			 value[0]);
		goto out;
	}
	rc = 0;
out:
	free(shown);
	if (rc < 0)
		return rc;
	if (!dd_utf8_valid(value, len))
		return dd_error("the %s is not valid UTF-8", key);
	if (strlen(key) + 3 + len + 2 > INI_MAX_LINE)
		return dd_error("the %s is too long for profiles.ini (at most %d characters)", key,
				(int)(INI_MAX_LINE - strlen(key) - 5));
	return 0;
}

static mode_t
file_mode(const char *path, mode_t dflt)
{
	struct stat st;

	return stat(path, &st) == 0 ? (st.st_mode & 07777) : dflt;
}

int
dd_config_write_initial(const char *path, const char *store_url, const char *database, const char *profile)
{
	struct dd_buf t = DD_BUF_INIT;
	struct dd_config *check = NULL;
	char *dir = NULL;
	int rc = -1;

	if (!dd_profile_name_valid(profile))
		return name_error(profile);
	if (store_url && *store_url && strncmp(store_url, "file://", 7) && strncmp(store_url, "s3://", 5)) {
		char *r = dd_config_redact(store_url);
		dd_error("store url '%.60s' must start with file:// or s3://", r);
		free(r);
		return -1;
	}
	if ((store_url && check_writable("store url", store_url) < 0) ||
	    (database && check_writable("database", database) < 0))
		return -1;
	if (dd_path_exists(path))
		return 1;

	dd_buf_puts(&t,
		    "# git-dnadata settings, shared by everyone who works on this repository.\n"
		    "# Every key is explained in git-dnadata's profiles.ini.example and docs/FORMAT.md.\n"
		    "# Per-clone overrides go in .git/dnadata/config.ini (never committed); the\n"
		    "# environment (DNADATA_STORE, DNADATA_DATABASE, DNADATA_PROFILE) overrides both.\n"
		    "\n"
		    "[store]\n"
		    "# Where snapshots are uploaded: file:///shared/folder or s3://bucket/prefix.\n");
	if (store_url && *store_url)
		dd_buf_printf(&t, "url = %s\n", store_url);
	else
		dd_buf_puts(&t, "# url = s3://my-bucket/dnadata\n");
	dd_buf_puts(&t,
		    "\n"
		    "[database]\n"
		    "# The working database your application uses: a libpq conninfo string or URL.\n"
		    "# Unset or empty: libpq's defaults (PGHOST, PGDATABASE, service files ...).\n"
		    "# Keep passwords out of this file (use ~/.pgpass or PGPASSWORD).\n");
	if (database)
		dd_buf_printf(&t, "url = %s\n", database);
	else
		dd_buf_puts(&t, "# url = postgresql://localhost/myapp\n");
	dd_buf_printf(&t,
		      "# The profile a clone uses until 'git dnadata use NAME' picks another.\n"
		      "default_profile = %s\n"
		      "\n"
		      "[profile \"%s\"]\n"
		      "# database = ...          (default: [database] url)\n"
		      "# media = uploads         (a folder captured with the data)\n",
		      profile, profile);

	/* What we write must read back. */
	check = dd_config_new();
	if (dd_config_parse_text(check, t.ptr, t.len, path, 0) < 0) {
		dd_error_wrap("BUG: generated profiles.ini does not parse");
		goto out;
	}
	dir = dd_path_dirname(path);
	if (dd_mkdir_p(dir, 0777) < 0)
		goto out;
	rc = dd_file_write_atomic(path, t.ptr, t.len, 0644, DD_WRITE_NOREPLACE);
out:
	dd_config_free(check);
	free(dir);
	dd_buf_release(&t);
	return rc;
}

int
dd_config_write_local_initial(const char *path)
{
	static const char text[] =
		"# git-dnadata settings for this clone only (never committed).\n"
		"# Same keys as .dnadata/profiles.ini; a key set here replaces the shared value.\n"
		"# 'git dnadata use NAME' records the active profile here.\n";
	char *dir = dd_path_dirname(path);
	int rc;

	rc = dd_mkdir_p(dir, 0700);
	free(dir);
	if (rc < 0)
		return -1;
	return dd_file_write_atomic(path, text, sizeof(text) - 1, 0600, DD_WRITE_NOREPLACE);
}

static int
write_setting(struct dd_buf *t, const char *key, const char *value)
{
	if (check_writable(key, value) < 0)
		return -1;
	dd_buf_printf(t, "%s = %s\n", key, value);
	return 0;
}

int
dd_config_add_profile(struct dd_config *cfg, const char *name, const char *from, const char *media)
{
	struct dd_buf text = DD_BUF_INIT;
	struct dd_config *shared = NULL, *check = NULL;
	const struct dd_profile *src = NULL;
	struct dd_profile *np;
	int rc = -1;

	if (!dd_profile_name_valid(name))
		return name_error(name);
	for (size_t i = 0; i < cfg->nprofiles; i++) {
		if (!strcmp(cfg->profiles[i].name, name))
			return dd_error("profile '%s' already exists in %s", name, cfg->profiles_display);
		if (!strcasecmp(cfg->profiles[i].name, name))
			return dd_error("profile '%s' would clash with '%s' on case-insensitive file systems", name,
					cfg->profiles[i].name);
	}
	if (media && check_writable("media folder", media) < 0)
		return -1;
	if (dd_file_read(&text, cfg->profiles_path) < 0)
		goto out;
	/* Copy what profiles.ini says, not this clone's overrides. */
	shared = dd_config_new();
	if (dd_config_parse_text(shared, dd_buf_cstr(&text), text.len, cfg->profiles_display, 0) < 0)
		goto out;
	if (from && !(src = dd_config_profile(shared, from)))
		goto out;

	if (text.len && text.ptr[text.len - 1] != '\n')
		dd_buf_putc(&text, '\n');
	if (text.len)
		dd_buf_putc(&text, '\n');
	dd_buf_printf(&text, "[profile \"%s\"]\n", name);
	if (src && src->database && write_setting(&text, "database", src->database) < 0)
		goto out;
	if ((media || (src && src->media)) && write_setting(&text, "media", media ? media : src->media) < 0)
		goto out;
	for (size_t i = 0; src && src->exclude_tables && src->exclude_tables[i]; i++)
		if (write_setting(&text, "exclude_tables", src->exclude_tables[i]) < 0)
			goto out;
	for (size_t i = 0; src && src->exclude_data && src->exclude_data[i]; i++)
		if (write_setting(&text, "exclude_data", src->exclude_data[i]) < 0)
			goto out;
	if (src && src->terminate_connections >= 0)
		dd_buf_printf(&text, "terminate_connections = %s\n", src->terminate_connections ? "true" : "false");

	check = dd_config_new();
	if (dd_config_parse_text(check, text.ptr, text.len, cfg->profiles_display, 0) < 0 || !find_profile(check, name)) {
		dd_error_wrap("BUG: profiles.ini would not parse after adding '%s'", name);
		goto out;
	}
	if (dd_file_write_atomic(cfg->profiles_path, text.ptr, text.len, file_mode(cfg->profiles_path, 0644), 0) < 0)
		goto out;

	cfg->profiles = dd_realloc(cfg->profiles, (cfg->nprofiles + 1) * sizeof(*cfg->profiles));
	np = &cfg->profiles[cfg->nprofiles++];
	memset(np, 0, sizeof(*np));
	np->name = dd_strdup(name);
	np->terminate_connections = src ? src->terminate_connections : -1;
	np->database = src && src->database ? dd_strdup(src->database) : NULL;
	np->media = media ? dd_strdup(media) : src && src->media ? dd_strdup(src->media) : NULL;
	np->exclude_tables = src ? list_copy(src->exclude_tables) : NULL;
	np->exclude_data = src ? list_copy(src->exclude_data) : NULL;
	rc = 0;
out:
	dd_config_free(check);
	dd_config_free(shared);
	dd_buf_release(&text);
	return rc;
}

/* Is the trimmed line s[0..len) the header of section `name`? */
static int
is_section(const char *s, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len >= n + 2 && s[0] == '[' && !strncmp(s + 1, name, n) && s[n + 1] == ']';
}

int
dd_config_set_active(struct dd_config *cfg, const char *name)
{
	struct priv *pv = (struct priv *)cfg;
	struct dd_buf old = DD_BUF_INIT, t = DD_BUF_INIT;
	struct dd_config *check = NULL;
	char *dir = NULL;
	int in_db = 0, done = 0, rc = -1;
	size_t pos = 0;

	if (!dd_profile_name_valid(name))
		return name_error(name);
	dir = dd_path_dirname(cfg->local_path);
	if (dd_mkdir_p(dir, 0700) < 0)
		goto out;
	if (dd_path_exists(cfg->local_path) && dd_file_read(&old, cfg->local_path) < 0)
		goto out;

	/* Copy line by line; replace "active_profile = ..." in [database], or add it there. */
	while (pos < old.len) {
		const char *line = old.ptr + pos, *nl = memchr(line, '\n', old.len - pos);
		size_t l = nl ? (size_t)(nl - line) + 1 : old.len - pos, tl;
		const char *s = line;

		pos += l;
		tl = l;
		while (tl && isspace((unsigned char)s[tl - 1]))
			tl--;
		while (tl && (*s == ' ' || *s == '\t'))
			s++, tl--;
		if (!done && tl && *s == '[') {
			if (in_db) {
				/* leaving [database] without an active_profile line: add it at its end */
				dd_buf_printf(&t, "active_profile = %s\n", name);
				done = 1;
			}
			in_db = is_section(s, tl, "database");
			dd_buf_put(&t, line, l);
			continue;
		}
		if (!done && in_db && tl > 14 && !strncmp(s, "active_profile", 14) &&
		    (s[14] == '=' || s[14] == ' ' || s[14] == '\t')) {
			dd_buf_put(&t, line, (size_t)(s - line));
			dd_buf_printf(&t, "active_profile = %s\n", name);
			done = 1;
			continue;
		}
		dd_buf_put(&t, line, l);
		if (!nl)
			dd_buf_putc(&t, '\n');
	}
	if (!done) {
		if (!in_db)
			dd_buf_printf(&t, "%s[database]\n", t.len ? "\n" : "");
		dd_buf_printf(&t, "active_profile = %s\n", name);
	}

	check = dd_config_new();
	if (dd_config_parse_text(check, t.ptr, t.len, cfg->local_display, 1) < 0) {
		dd_error_wrap("cannot record the active profile");
		goto out;
	}
	if (dd_file_write_atomic(cfg->local_path, t.ptr, t.len, file_mode(cfg->local_path, 0600), 0) < 0)
		goto out;
	free(pv->local_active);
	pv->local_active = dd_strdup(name);
	dd_config_resolve(cfg);
	rc = 0;
out:
	dd_config_free(check);
	dd_buf_release(&old);
	dd_buf_release(&t);
	free(dir);
	return rc;
}
