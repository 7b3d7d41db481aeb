/*
 * config/keys.c: every key there is, and the inih handler that checks each
 * "key = value" against that table and stores it.
 *
 * parse.c has already dealt with the line (comments, sections, hostile
 * bytes); here the key must exist in the current section, be allowed in
 * this file (some keys are shared-only or local-only), appear once (lists
 * and commands may repeat, appending), and its value must have the key's
 * kind. The first problem becomes "file:line: ..." through
 * dd_config_fail(); the handler itself answers in inih's convention.
 */
#include "config/config.h"
#include "config/internal.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"
#include "util/opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* inih's handler convention: nonzero = the line is fine, 0 = stop with this line's number. */
#define INI_LINE_OK 1
#define INI_LINE_BAD 0

enum kind {
	K_STR,       /* any one-line string; "" kept (meaningful for conninfo) */
	K_OPT_STR,   /* a one-line string; "" = unset (NULL) */
	K_STORE_URL, /* file://... or s3://...; "" = unset */
	K_BOOL,
	K_JOBS,      /* 0 (one per core) .. DD_CONFIG_MAX_JOBS */
	K_SECONDS,   /* 1 .. DD_CONFIG_MAX_LOCK_WAIT */
	K_ENDPOINT,  /* http://host[:port] or https://...; "" = unset */
	K_TRANSFERS, /* 1 .. DD_CONFIG_MAX_TRANSFERS */
	K_RETRIES,   /* 0 .. DD_CONFIG_MAX_RETRIES */
	K_SPARES,    /* 0 .. DD_CONFIG_MAX_SPARES */
	K_BYTES,     /* a size with an optional K/M/G (KiB...) suffix, DD_CONFIG_MIN_PART_SIZE .. MAX */
	K_BUDGET,    /* a size with an optional K/M/G/T suffix, 0 .. DD_CONFIG_MAX_CACHE_BUDGET */
	K_KEEP,      /* 0 .. DD_CONFIG_MAX_STASH_KEEP */
	K_NAME,      /* a profile name */
	K_OWNER,     /* user[:group]: names that exist on this machine, or numeric ids; "" = unset */
	K_LIST,      /* comma/space separated words, key may repeat (appends) */
	K_COMMANDS,  /* one command per line, key may repeat (appends) */
	K_MASK,      /* [schema.]table.column RULE (config/mask.c), key may repeat (appends) */
	K_MASKED,    /* required or optional */
	K_SUBSET,    /* [schema.]table N% | [schema.]table where COND */
	K_OTHERS,    /* whole or empty */
};

enum where { BOTH, SHARED_ONLY, LOCAL_ONLY, WORKTREE_ONLY };

struct key {
	enum dd_config_section sec;
	const char *name;
	enum kind kind;
	enum where where;
	size_t off; /* in struct dd_config_priv, or in struct dd_profile for SEC_PROFILE */
};

#define STR_(x) #x
#define STR(x) STR_(x)

#define C(f) offsetof(struct dd_config_priv, f)
#define P(f) offsetof(struct dd_profile, f)

/* Every key there is. Adding one: a line here, a comment in profiles.ini.example, a row in FORMAT.md §2. */
static const struct key keys[] = {
	{ SEC_STORE, "url", K_STORE_URL, BOTH, C(pub.store_url) },
	{ SEC_STORE, "endpoint", K_ENDPOINT, BOTH, C(pub.store_endpoint) },
	{ SEC_STORE, "region", K_OPT_STR, BOTH, C(pub.store_region) },
	{ SEC_STORE, "path_style", K_BOOL, BOTH, C(pub.store_path_style) },
	{ SEC_STORE, "transfers", K_TRANSFERS, BOTH, C(pub.store_transfers) },
	{ SEC_STORE, "part_size", K_BYTES, BOTH, C(pub.store_part_size) },
	{ SEC_STORE, "retries", K_RETRIES, BOTH, C(pub.store_retries) },
	{ SEC_DATABASE, "url", K_STR, BOTH, C(pub.database) },
	{ SEC_DATABASE, "default_profile", K_NAME, SHARED_ONLY, C(pub.default_profile) },
	{ SEC_DATABASE, "active_profile", K_NAME, LOCAL_ONLY, C(local_active) },
	{ SEC_DATABASE, "worktree_database", K_OPT_STR, WORKTREE_ONLY, C(pub.worktree_database) },
	{ SEC_DATABASE, "jobs", K_JOBS, BOTH, C(pub.jobs) },
	{ SEC_DATABASE, "terminate_connections", K_BOOL, BOTH, C(pub.terminate_connections) },
	{ SEC_DATABASE, "lock_wait_timeout", K_SECONDS, BOTH, C(pub.lock_wait_timeout) },
	{ SEC_DATABASE, "spares", K_SPARES, BOTH, C(pub.spares) },
	{ SEC_DATABASE, "cache_budget", K_BUDGET, BOTH, C(pub.cache_budget) },
	{ SEC_DATABASE, "stash_keep", K_KEEP, BOTH, C(pub.stash_keep) },
	{ SEC_HOOKS, "post_restore", K_COMMANDS, BOTH, C(pub.post_restore) },
	{ SEC_PROFILE, "database", K_STR, BOTH, P(database) },
	{ SEC_PROFILE, "media", K_OPT_STR, BOTH, P(media) },
	{ SEC_PROFILE, "media_owner", K_OWNER, BOTH, P(media_owner) },
	{ SEC_PROFILE, "exclude_tables", K_LIST, BOTH, P(exclude_tables) },
	{ SEC_PROFILE, "exclude_data", K_LIST, BOTH, P(exclude_data) },
	{ SEC_PROFILE, "terminate_connections", K_BOOL, BOTH, P(terminate_connections) },
	{ SEC_PROFILE, "lock_wait_timeout", K_SECONDS, BOTH, P(lock_wait_timeout) },
	{ SEC_PROFILE, "schema_dump", K_BOOL, BOTH, P(schema_dump) },
	{ SEC_PROFILE, "post_restore", K_COMMANDS, BOTH, P(post_restore) },
	{ SEC_PROFILE, "inline", K_BOOL, SHARED_ONLY, P(is_inline) },
	/* what may leave the database server is the team's decision: profiles.ini only */
	{ SEC_PROFILE, "mask", K_MASK, SHARED_ONLY, P(masks) },
	{ SEC_PROFILE, "masked", K_MASKED, SHARED_ONLY, P(masked) },
	{ SEC_PROFILE, "subset", K_SUBSET, SHARED_ONLY, P(subset) },
	{ SEC_PROFILE, "subset_others", K_OTHERS, SHARED_ONLY, P(subset_others) },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* ---- which key ---- */

static const char *
sec_label(enum dd_config_section sec)
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
unknown_key(struct dd_config_parse *p, const char *name)
{
	const char *names[NKEYS + 1];
	size_t n = 0;

	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].sec == p->sec)
			names[n++] = keys[i].name;
	names[n] = NULL;
	const char *near = dd_closest(name, names);
	if (near)
		return dd_config_fail(p, p->lineno, "unknown key '%s' in %s (did you mean '%s'?)", name, p->secname, near);
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].name, name))
			return dd_config_fail(p, p->lineno, "unknown key '%s' in %s (it belongs in %s)", name, p->secname,
					      sec_label(keys[i].sec));
	return dd_config_fail(p, p->lineno, "unknown key '%s' in %s", name, p->secname);
}

/* The key `name` of the current section, if this file may set it; else NULL (error recorded). */
static const struct key *
lookup_key(struct dd_config_parse *p, const char *name)
{
	const struct key *k = NULL;

	if (p->sec == SEC_NONE) {
		dd_config_fail(p, p->lineno, "'%s' is outside any section (put it under [store], [database], [hooks] "
					     "or [profile \"NAME\"])", name);
		return NULL;
	}
	if (!*name) {
		dd_config_fail(p, p->lineno, "missing key name before '='");
		return NULL;
	}
	for (size_t i = 0; i < NKEYS && !k; i++)
		if (keys[i].sec == p->sec && !strcmp(keys[i].name, name))
			k = &keys[i];
	if (!k)
		unknown_key(p, name);
	else if (k->where == SHARED_ONLY && p->local)
		dd_config_fail(p, p->lineno, "'%s' can only be set in .dnadata/profiles.ini", name);
	else if (k->where == LOCAL_ONLY && !p->local)
		dd_config_fail(p, p->lineno, "'%s' is chosen per clone with 'git dnadata use NAME', not in %s", name,
			       p->display);
	else if (k->where == WORKTREE_ONLY && p->local != DD_CONFIG_FILE_WORKTREE)
		/* in a shared file it would give every linked worktree the same database */
		dd_config_fail(p, p->lineno, "'%s' is set in a linked worktree's own config file, with 'git dnadata use "
			       "NAME --worktree-database DB' run there, not in %s", name, p->display);
	else
		return k;
	return NULL;
}

static int
check_value_text(struct dd_config_parse *p, const char *key, const char *v)
{
	size_t len = strlen(v);

	for (size_t i = 0; i < len; i++)
		if (((unsigned char)v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
			return dd_config_fail(p, p->lineno, "control character in the value of '%s'", key);
	if (!dd_utf8_valid(v, len))
		return dd_config_fail(p, p->lineno, "the value of '%s' is not valid UTF-8", key);
	return 0;
}

/*
 * Where key `k` is stored, once it is known not to be a duplicate: the
 * first time a file sets a key is recorded (for "first set on line N"),
 * and config.ini's first line of a list replaces the shared list.
 */
static void *
claim(struct dd_config_parse *p, const struct key *k)
{
	int repeats = k->kind == K_LIST || k->kind == K_COMMANDS || k->kind == K_MASK;
	struct dd_config_seen *s = dd_config_find_seen(p, k->sec, p->profname, k->name);
	char *base = k->sec == SEC_PROFILE ? (char *)p->prof : (char *)p->cfg;

	if (s && !repeats) {
		dd_config_fail(p, p->lineno, "duplicate key '%s' in %s (first set on line %zu)", k->name, p->secname,
			       s->line);
		return NULL;
	}
	if (!s && repeats && p->local) {
		char ***list = (char ***)(base + k->off);
		dd_config_list_free(*list);
		*list = NULL;
	}
	if (!s)
		dd_config_add_seen(p, k->sec, p->profname, k->name, p->lineno);
	return base + k->off;
}

/* ---- one setter per kind ---- */

static int
has_password(const char *conninfo)
{
	char *r = dd_config_redact(conninfo);
	int differs = strcmp(r, conninfo) != 0;

	free(r);
	return differs;
}

static int
set_str(struct dd_config_parse *p, char **field, const char *value)
{
	if (!p->local && !p->warned_password && has_password(value)) {
		p->warned_password = 1;
		dd_warn("%s:%zu: a password in a tracked file is visible to everyone with the repository; "
			"move it to ~/.pgpass, PGPASSWORD or .git/dnadata/config.ini", p->display, p->lineno);
	}
	free(*field);
	*field = dd_strdup(value);
	return 0;
}

static int
set_opt_str(char **field, const char *value)
{
	free(*field);
	*field = *value ? dd_strdup(value) : NULL;
	return 0;
}

static int
set_store_url(struct dd_config_parse *p, char **field, const char *value)
{
	struct dd_config *cfg = &p->cfg->pub;

	if (!strncmp(value, "s3://", 5) && strchr(value, '@')) /* checked first: the value is not shown */
		return dd_config_fail(p, p->lineno,
				      "store url must not carry credentials (write s3://bucket/prefix; use "
				      "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials)");
	if (*value && strncmp(value, "file://", 7) && strncmp(value, "s3://", 5)) {
		char *r = dd_config_redact(value);
		dd_config_fail(p, p->lineno, "store url '%.60s' must start with file:// or s3://", r);
		free(r);
		return -1;
	}
	set_opt_str(field, value);
	if (*value)
		cfg->store_source = p->local ? cfg->local_display : cfg->profiles_display;
	return 0;
}

static int
set_endpoint(struct dd_config_parse *p, char **field, const char *value)
{
	if (strchr(value, '@')) /* checked first: the value is not shown */
		return dd_config_fail(p, p->lineno,
				      "endpoint must not carry credentials (use AWS_ACCESS_KEY_ID and "
				      "AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials)");
	if (*value && strncmp(value, "http://", 7) && strncmp(value, "https://", 8))
		return dd_config_fail(p, p->lineno, "endpoint '%.60s' must start with http:// or https://", value);
	return set_opt_str(field, value);
}

/*
 * "64M", "5GiB", "8388608": bytes from `min` to `max`, with a suffix up to
 * units[nunits - 1]; `range` completes "'key' must be a size ...".
 */
static int
set_size(struct dd_config_parse *p, const char *name, long long *field, const char *value, long long min,
	 long long max, size_t nunits, const char *range)
{
	static const char *const units[] = { "", "K", "M", "G", "T" };
	char *end;
	long long v;
	int shift = -1;

	errno = 0;
	v = strtoll(value, &end, 10);
	for (size_t i = 0; *value && !errno && v >= 0 && i < nunits; i++) {
		size_t n = strlen(units[i]);
		if (!strncasecmp(end, units[i], n) &&
		    (!end[n] || !strcasecmp(end + n, "B") || (n && !strcasecmp(end + n, "iB"))))
			shift = 10 * (int)i;
	}
	if (shift < 0 || v > (max >> shift) || (v << shift) < min)
		return dd_config_fail(p, p->lineno, "'%s' must be a size %s, not '%.40s'", name, range, value);
	*field = v << shift;
	return 0;
}

static int
set_bytes(struct dd_config_parse *p, const char *name, long long *field, const char *value)
{
	return set_size(p, name, field, value, DD_CONFIG_MIN_PART_SIZE, DD_CONFIG_MAX_PART_SIZE, 4,
			"from 5M to 5G (e.g. 64M)");
}

static int
set_budget(struct dd_config_parse *p, const char *name, long long *field, const char *value)
{
	return set_size(p, name, field, value, 0, DD_CONFIG_MAX_CACHE_BUDGET, 5,
			"in bytes with an optional K, M, G or T suffix, up to 1024T (e.g. 10G)");
}

static int
set_bool(struct dd_config_parse *p, const char *name, int *field, const char *v)
{
	static const char *const yes[] = { "true", "yes", "on", "1" }, *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(v, yes[i]))
			return *field = 1, 0;
		if (!strcasecmp(v, no[i]))
			return *field = 0, 0;
	}
	return dd_config_fail(p, p->lineno, "'%s' must be true or false, not '%.40s'", name, v);
}

/* A whole number from `min` to `max`; `what` completes "'key' must be ...". */
static int
set_int(struct dd_config_parse *p, const char *name, int *field, const char *value, long min, long max,
	const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (!*value || *end || errno || v < min || v > max)
		return dd_config_fail(p, p->lineno, "'%s' must be %s, not '%.40s'", name, what, value);
	*field = (int)v;
	return 0;
}

static int
set_name(struct dd_config_parse *p, const char *name, char **field, const char *value)
{
	if (!dd_profile_name_valid(value)) {
		dd_config_name_error(value);
		dd_config_fail(p, p->lineno, "%s: %s", name, dd_error_last());
		dd_error_clear();
		return -1;
	}
	free(*field);
	*field = dd_strdup(value);
	return 0;
}

/*
 * One half of media_owner, checked for its syntax only: a numeric id or a
 * name of letters, digits, '.', '_', '-' (and a final '$'), not starting
 * with '-'. Whether this machine knows it is for the restore to find (an
 * unknown one: one warning there, owners left alone), so a config shared
 * with machines that lack the user still loads everywhere.
 */
static int
owner_part_ok(const char *s, size_t n)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
	size_t body = n && s[n - 1] == '$' ? n - 1 : n;

	if (!n || n > 255 || s[0] == '-' || !body)
		return 0;
	for (size_t i = 0; i < body; i++)
		if (!strchr(ok, s[i]))
			return 0;
	return 1;
}

/* media_owner = user[:group]: names or numeric ids ("" = unset). */
static int
set_owner(struct dd_config_parse *p, const char *name, char **field, const char *value)
{
	const char *colon = strchr(value, ':');
	size_t ulen = colon ? (size_t)(colon - value) : strlen(value);

	if (!*value)
		return set_opt_str(field, value);
	if (!owner_part_ok(value, ulen) || (colon && !owner_part_ok(colon + 1, strlen(colon + 1))))
		return dd_config_fail(p, p->lineno, "'%s' must be user[:group] (names or numeric ids), not '%.60s'", name,
				      value);
	return set_opt_str(field, value);
}

static int
set_list(struct dd_config_parse *p, const char *name, char ***list, const char *value)
{
	const char *t = value;
	size_t added = 0;

	while (*t) {
		size_t n = strcspn(t, ", \t");
		if (n)
			dd_config_list_add(list, t, n), added++;
		t += n;
		t += strspn(t, ", \t");
	}
	if (!added)
		return dd_config_fail(p, p->lineno, "'%s' needs at least one table pattern", name);
	return 0;
}

static int
set_command(struct dd_config_parse *p, const char *name, char ***list, const char *value)
{
	if (!*value)
		return dd_config_fail(p, p->lineno, "'%s' needs a command", name);
	dd_config_list_add(list, value, strlen(value));
	return 0;
}

/* mask = [schema.]table.column RULE: one rule per column. */
static int
set_mask(struct dd_config_parse *p, const char *name, const char *value)
{
	struct dd_profile *prof = p->prof;
	struct dd_mask_rule r;
	const char *why = NULL;

	if (dd_mask_rule_parse(value, &r, &why) < 0)
		return dd_config_fail(p, p->lineno, "'%s': %s (write %s = [schema.]table.column RULE)", name, why, name);
	for (size_t i = 0; i < prof->nmasks; i++) {
		const struct dd_mask_rule *o = &prof->masks[i];
		if (!strcmp(o->table, r.table) && !strcmp(o->column, r.column) &&
		    (!o->schema || !r.schema || !strcmp(o->schema, r.schema))) {
			size_t line = o->line;
			dd_mask_rule_clear(&r);
			return dd_config_fail(p, p->lineno, "'%s': that column already has a rule (line %zu)", name, line);
		}
	}
	r.line = p->lineno;
	prof->masks = dd_realloc(prof->masks, (prof->nmasks + 1) * sizeof(*prof->masks));
	prof->masks[prof->nmasks++] = r;
	return 0;
}

static int
set_subset(struct dd_config_parse *p, const char *name, struct dd_subset **field, const char *value)
{
	struct dd_subset sb;
	const char *why = NULL;

	if (dd_subset_parse(value, &sb, &why) < 0)
		return dd_config_fail(p, p->lineno, "'%s': %s", name, why);
	sb.line = p->lineno;
	if (*field)
		dd_subset_clear(*field);
	free(*field);
	*field = dd_malloc(sizeof(**field));
	**field = sb;
	return 0;
}

/* One of `words` (case-insensitive): its index in *field. */
static int
set_word(struct dd_config_parse *p, const char *name, int *field, const char *value, const char *const *words,
	 size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcasecmp(value, words[i]))
			return *field = (int)i, 0;
	return dd_config_fail(p, p->lineno, "'%s' must be %s or %s, not '%.40s'", name, words[0], words[1], value);
}

static int
set_value(struct dd_config_parse *p, const struct key *k, void *field, const char *value)
{
	static const char *const masked[] = { "optional", "required" }, *const others[] = { "whole", "empty" };

	switch (k->kind) {
	case K_STR: return set_str(p, field, value);
	case K_OPT_STR: return set_opt_str(field, value);
	case K_STORE_URL: return set_store_url(p, field, value);
	case K_BOOL: return set_bool(p, k->name, field, value);
	case K_JOBS:
		return set_int(p, k->name, field, value, 0, DD_CONFIG_MAX_JOBS,
			       "a number from 0 (one per CPU core) to " STR(DD_CONFIG_MAX_JOBS));
	case K_SECONDS:
		return set_int(p, k->name, field, value, 1, DD_CONFIG_MAX_LOCK_WAIT,
			       "a whole number of seconds from 1 to " STR(DD_CONFIG_MAX_LOCK_WAIT));
	case K_ENDPOINT: return set_endpoint(p, field, value);
	case K_TRANSFERS:
		return set_int(p, k->name, field, value, 1, DD_CONFIG_MAX_TRANSFERS,
			       "a number of parallel requests from 1 to " STR(DD_CONFIG_MAX_TRANSFERS));
	case K_RETRIES:
		return set_int(p, k->name, field, value, 0, DD_CONFIG_MAX_RETRIES,
			       "a number of retries from 0 to " STR(DD_CONFIG_MAX_RETRIES));
	case K_SPARES:
		return set_int(p, k->name, field, value, 0, DD_CONFIG_MAX_SPARES,
			       "a number of spare databases from 0 to " STR(DD_CONFIG_MAX_SPARES));
	case K_BYTES: return set_bytes(p, k->name, field, value);
	case K_BUDGET: return set_budget(p, k->name, field, value);
	case K_KEEP:
		return set_int(p, k->name, field, value, 0, DD_CONFIG_MAX_STASH_KEEP,
			       "a number of stashes from 0 to " STR(DD_CONFIG_MAX_STASH_KEEP));
	case K_NAME: return set_name(p, k->name, field, value);
	case K_OWNER: return set_owner(p, k->name, field, value);
	case K_LIST: return set_list(p, k->name, field, value);
	case K_COMMANDS: return set_command(p, k->name, field, value);
	case K_MASK: return set_mask(p, k->name, value);
	case K_MASKED: return set_word(p, k->name, field, value, masked, 2);
	case K_SUBSET: return set_subset(p, k->name, field, value);
	case K_OTHERS: return set_word(p, k->name, field, value, others, 2);
	}
	return dd_config_fail(p, p->lineno, "BUG: key '%s' has no kind", k->name);
}

/* ---- the handler ---- */

int
dd_config_handler(void *user, const char *section, const char *name, const char *value)
{
	struct dd_config_parse *p = user;
	const struct key *k;
	void *field;

	(void)section; /* we track sections ourselves (parse.c) */
	if (p->sec == SEC_SKIP)
		return INI_LINE_OK; /* the section header was already reported */
	if (!(k = lookup_key(p, name)) || check_value_text(p, name, value) < 0 || !(field = claim(p, k)))
		return INI_LINE_BAD;
	return set_value(p, k, field, value) < 0 ? INI_LINE_BAD : INI_LINE_OK;
}
