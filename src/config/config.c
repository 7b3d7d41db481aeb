/*
 * config/config.c: the resolved settings as a struct: creating and freeing
 * it, profile names, and looking profiles up (the rest of config/ is
 * mapped in config/internal.h; the file format is in docs/FORMAT.md §2,
 * every key documented in profiles.ini.example).
 *
 * Invariants after a successful load: every profile name is valid and
 * unique, also ignoring case (refs/NAME must be one file on every file
 * system); default_profile names a defined profile; lists are
 * NULL-terminated (never NULL themselves once set); a key set in
 * config.ini replaced the profiles.ini value (lists included).
 */
#include "config/config.h"
#include "config/internal.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/opts.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* At most this many existing profiles are listed in a hint. */
#define MAX_LISTED 8

/* ---- lists and profiles ---- */

void
dd_config_list_free(char **list)
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

void
dd_config_list_add(char ***list, const char *s, size_t len)
{
	size_t n = list_len(*list);

	*list = dd_realloc(*list, (n + 2) * sizeof(**list));
	(*list)[n] = dd_strndup(s, len);
	(*list)[n + 1] = NULL;
}

char **
dd_config_list_copy(char *const *list)
{
	char **out = NULL;

	if (!list)
		return NULL;
	out = dd_calloc(list_len(list) + 1, sizeof(*out));
	for (size_t i = 0; list[i]; i++)
		out[i] = dd_strdup(list[i]);
	return out;
}

void
dd_config_profile_clear(struct dd_profile *p)
{
	free(p->name);
	free(p->database);
	free(p->media);
	free(p->media_owner);
	dd_config_list_free(p->exclude_tables);
	dd_config_list_free(p->exclude_data);
	dd_config_list_free(p->post_restore);
	for (size_t i = 0; i < p->nmasks; i++)
		dd_mask_rule_clear(&p->masks[i]);
	free(p->masks);
	if (p->subset)
		dd_subset_clear(p->subset);
	free(p->subset);
	memset(p, 0, sizeof(*p));
	p->terminate_connections = -1;
	p->schema_dump = -1;
}

struct dd_profile *
dd_config_find_profile(const struct dd_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nprofiles; i++)
		if (!strcmp(cfg->profiles[i].name, name))
			return &cfg->profiles[i];
	return NULL;
}

struct dd_config *
dd_config_new(void)
{
	struct dd_config_priv *pv = dd_calloc(1, sizeof(*pv));

	pv->pub.lock_wait_timeout = DD_CONFIG_DEFAULT_LOCK_WAIT;
	pv->pub.store_path_style = -1;
	pv->pub.store_retries = -1;
	pv->pub.spares = -1;
	pv->pub.cache_budget = DD_CONFIG_DEFAULT_CACHE_BUDGET;
	pv->pub.stash_keep = DD_CONFIG_DEFAULT_STASH_KEEP;
	return &pv->pub;
}

void
dd_config_free(struct dd_config *cfg)
{
	struct dd_config_priv *pv = (struct dd_config_priv *)cfg;

	if (!cfg)
		return;
	free(cfg->store_url);
	free(cfg->store_endpoint);
	free(cfg->store_region);
	free(cfg->database);
	free(cfg->default_profile);
	free(cfg->active_profile);
	for (size_t i = 0; i < cfg->nprofiles; i++)
		dd_config_profile_clear(&cfg->profiles[i]);
	free(cfg->profiles);
	free(cfg->profiles_path);
	free(cfg->local_path);
	free(cfg->database_override);
	dd_config_list_free(cfg->post_restore);
	free(cfg->profiles_display);
	free(cfg->local_display);
	free(cfg->worktree_database);
	free(cfg->worktree_path);
	free(pv->local_active);
	free(pv);
}

/* ---- profile names ---- */

int
dd_profile_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > DD_PROFILE_NAME_MAX || !isalnum((unsigned char)name[0]))
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!(isalnum(c) || c == '-' || c == '_') || c >= 0x80)
			return 0;
	}
	return 1;
}

int
dd_config_name_error(const char *name)
{
	if (!*name)
		return dd_error("a profile name cannot be empty");
	if (strlen(name) > DD_PROFILE_NAME_MAX)
		return dd_error("profile name '%.20s...' is too long (at most %d characters)", name,
				DD_PROFILE_NAME_MAX);
	return dd_error("invalid profile name '%s': use letters, digits, '-' and '_', starting with a letter or digit",
			name);
}

int
dd_profile_name_check(const char *name)
{
	return dd_profile_name_valid(name) ? 0 : dd_config_name_error(name);
}

/* ---- lookups ---- */

static const struct dd_profile *
find_nocase(const struct dd_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nprofiles; i++)
		if (!strcasecmp(cfg->profiles[i].name, name))
			return &cfg->profiles[i];
	return NULL;
}

/* "a, b, c" (at most MAX_LISTED, then "..."), for a hint. */
static void
list_profiles(struct dd_buf *b, const struct dd_config *cfg)
{
	for (size_t i = 0; i < cfg->nprofiles && i < MAX_LISTED; i++)
		dd_buf_printf(b, "%s%s", i ? ", " : "", cfg->profiles[i].name);
	if (cfg->nprofiles > MAX_LISTED)
		dd_buf_puts(b, ", ...");
}

/*
 * "no profile NAME": the closest existing name in the error; in the hint,
 * new-profile only for a name it would accept (valid, and not another
 * spelling of an existing one), else what a valid name is and which
 * profiles there are.
 */
static int
no_such_profile(const struct dd_config *cfg, const char *name, const char *why)
{
	const char **names = dd_calloc(cfg->nprofiles + 1, sizeof(*names));
	struct dd_buf known = DD_BUF_INIT;
	const struct dd_profile *same;
	const char *near;

	for (size_t i = 0; i < cfg->nprofiles; i++)
		names[i] = cfg->profiles[i].name;
	near = dd_closest(name, names);
	if (near)
		dd_error("no profile '%s'%s (did you mean '%s'?)", name, why, near);
	else
		dd_error("no profile '%s'%s", name, why);
	list_profiles(&known, cfg);
	if ((same = find_nocase(cfg, name)))
		dd_hint("profile names are case-sensitive: this one is called '%s'", same->name);
	else if (dd_profile_name_valid(name))
		dd_hint("'git dnadata status' lists the profiles; 'git dnadata new-profile %s' adds one", name);
	else if (cfg->nprofiles)
		dd_hint("a profile name has letters, digits, '-' and '_', starting with a letter or digit; "
			"the profiles are: %s", dd_buf_cstr(&known));
	else
		dd_hint("a profile name has letters, digits, '-' and '_', starting with a letter or digit; "
			"'git dnadata new-profile NAME' adds one");
	dd_buf_release(&known);
	free(names);
	return -1;
}

const struct dd_profile *
dd_config_profile(const struct dd_config *cfg, const char *name)
{
	const char *file = cfg->profiles_display ? cfg->profiles_display : "profiles.ini";
	struct dd_buf why = DD_BUF_INIT;
	const struct dd_profile *p;

	if (!name && !cfg->active_profile) {
		dd_error("no active profile: none chosen with 'git dnadata use', and %s sets no default_profile", file);
		dd_hint("run 'git dnadata use NAME'");
		return NULL;
	}
	if ((p = dd_config_find_profile(cfg, name ? name : cfg->active_profile)))
		return p;
	if (name) {
		dd_buf_printf(&why, " in %s", file);
	} else {
		dd_buf_printf(&why, " in %s (the active profile, from %s)", file,
			      cfg->active_source ? cfg->active_source : "?");
		name = cfg->active_profile;
	}
	no_such_profile(cfg, name, dd_buf_cstr(&why));
	dd_buf_release(&why);
	return NULL;
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

int
dd_config_lock_wait_timeout(const struct dd_config *cfg, const struct dd_profile *p)
{
	if (p && p->lock_wait_timeout > 0)
		return p->lock_wait_timeout;
	return cfg->lock_wait_timeout > 0 ? cfg->lock_wait_timeout : DD_CONFIG_DEFAULT_LOCK_WAIT;
}

int
dd_config_spares(const struct dd_config *cfg)
{
	const char *env = getenv("DNADATA_SPARES");
	char *end = NULL;
	long n;

	/* DNADATA_SPARES (0..16) over the setting, for one process (the test suite sets 0); anything else is ignored */
	if (env && *env && (n = strtol(env, &end, 10)) >= 0 && n <= DD_CONFIG_MAX_SPARES && !*end)
		return (int)n;
	return cfg->spares >= 0 ? cfg->spares : DD_CONFIG_DEFAULT_SPARES;
}
