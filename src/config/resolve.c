/*
 * config/resolve.c: profiles.ini + config.ini + environment + flags -> one
 * resolved view.
 *
 * Later sources win: .dnadata/profiles.ini (tracked) < .git/dnadata/config.ini
 * (this clone only) < DNADATA_STORE / DNADATA_DATABASE / DNADATA_PROFILE <
 * command-line flags (dd_config_override_*). DATABASE_URL is deliberately
 * not read: an application's may point at production. Each resolved value
 * remembers where it came from (store_source, active_source) so messages
 * can name the place to change it.
 */
#include "config/config.h"
#include "config/internal.h"
#include "git/repo.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/conninfo.h"
#include "util/fs.h"

#include <libpq-fe.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A settings file larger than this is refused unread. */
#define MAX_FILE (1024 * 1024)

void
dd_config_resolve(struct dd_config *cfg)
{
	struct dd_config_priv *pv = (struct dd_config_priv *)cfg;
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

	if (stat(path, &st) == 0 && st.st_size > MAX_FILE)
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

/* `conninfo` (NULL: libpq's defaults) naming database `name` instead, every other setting kept. */
static char *
with_dbname(const char *conninfo, const char *name)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo ? conninfo : "", NULL);
	struct dd_buf b = DD_BUF_INIT;

	if (!opts) /* a string libpq cannot parse: left for the connection to report */
		return dd_strdup(conninfo ? conninfo : "");
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val && *o->val && strcmp(o->keyword, "dbname"))
			dd_conninfo_put_pair(&b, o->keyword, o->val);
	dd_conninfo_put_pair(&b, "dbname", name);
	PQconninfoFree(opts);
	return dd_buf_detach(&b, NULL);
}

/*
 * A linked worktree: read its own config file after config.ini; with a
 * worktree_database, every profile's database (and [database] url) names it.
 */
static int
load_worktree(struct dd_config *cfg, const struct dd_repo *repo)
{
	struct dd_buf text = DD_BUF_INIT;
	char *dir;
	int rc = -1;

	cfg->linked_worktree = 1;
	dir = dd_path_join(repo->gitdir, "dnadata");
	cfg->worktree_path = dd_path_join(dir, "config.ini");
	free(dir);
	if (dd_path_exists(cfg->worktree_path) &&
	    (read_text(&text, cfg->worktree_path, cfg->worktree_path) < 0 ||
	     dd_config_parse_text(cfg, dd_buf_cstr(&text), text.len, cfg->worktree_path, 1) < 0))
		goto out;
	if (cfg->worktree_database) {
		char *db = with_dbname(cfg->database, cfg->worktree_database);
		free(cfg->database);
		cfg->database = db;
		for (size_t i = 0; i < cfg->nprofiles; i++) {
			if (!cfg->profiles[i].database)
				continue;
			db = with_dbname(cfg->profiles[i].database, cfg->worktree_database);
			free(cfg->profiles[i].database);
			cfg->profiles[i].database = db;
		}
	}
	dd_config_resolve(cfg);
	rc = 0;
out:
	dd_buf_release(&text);
	return rc;
}

int
dd_config_load(struct dd_config **out, const struct dd_repo *repo)
{
	char *profiles = dd_path_join(repo->dnadata, "profiles.ini");
	char *local = dd_path_join(repo->statedir, "config.ini");
	int rc = dd_config_load_files(out, profiles, dd_repo_display_path(repo, profiles), local,
				      dd_repo_display_path(repo, local));

	if (rc == 0 && repo->linked && load_worktree(*out, repo) < 0) {
		dd_config_free(*out);
		*out = NULL;
		rc = -1;
	}
	free(profiles);
	free(local);
	return rc;
}

int
dd_config_worktree_check(const struct dd_config *cfg)
{
	if (!cfg->linked_worktree || cfg->worktree_database || cfg->database_override)
		return 0;
	dd_error("this linked worktree manages no database of its own (the main worktree's would be swapped)");
	dd_hint("give it one with `git dnadata use <profile> --worktree-database <name>`, or set DNADATA_DATABASE");
	return -1;
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
