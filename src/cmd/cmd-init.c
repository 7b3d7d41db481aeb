/*
 * cmd/cmd-init.c: set git-dnadata up in a repository.
 *
 * Creates the tracked .dnadata/profiles.ini (one profile, named by
 * --profile, default "clean", which is also default_profile) and
 * .dnadata/refs/ (kept in git by an empty .gitkeep), the clone's private
 * state folder <common git dir>/dnadata (0700) with config.ini, and commits
 * the tracked files ("dnadata: init").
 *
 * Then it installs the git hooks (git/hooks.h), in every case: a fresh
 * clone of a set-up repository gets them from `init` too. A hook that
 * cannot be installed is a warning: the rest is done and stays.
 *
 * Idempotent: in a repository that already has .dnadata/profiles.ini and
 * local state it says so and changes nothing; in a fresh clone of an
 * initialised repository it only creates the local state. Everything that
 * could make the commit refuse is checked before the first file is
 * created, and if a later step fails, what this run created is removed,
 * except the state folder's store key once a store was created with it
 * outside that folder (the store stays; running init again adopts it).
 */
#include "config/config.h"
#include "dnadata.h"
#include "git/commit.h"
#include "git/hooks.h"
#include "cmd/prompt.h"
#include "git/repo.h"
#include "store/keys.h"
#include "store/store-keys.h"
#include "workflow/workflow.h"
#include "util/conninfo.h"
#include "util/fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_PROFILE "clean"

static const char *const usage[] = {
	"git dnadata init [--store <url>] [--compression <zstd:N|none>] [--database <conninfo>] [--profile <name>] "
	"[--no-commit]",
	"",
	"Creates .dnadata/profiles.ini and .dnadata/refs/ (committed as \"dnadata: init\"),",
	"and this clone's private state in .git/dnadata/. The first profile is called",
	"'" DEFAULT_PROFILE "' unless --profile names it; it becomes default_profile.",
	"",
	"Examples:",
	"  git dnadata init",
	"  git dnadata init --store s3://my-bucket/myapp --database postgresql://localhost/myapp",
	"  git dnadata init --profile demo --no-commit",
	"  git dnadata init --store file:///srv/dnadata --compression zstd:3",
	NULL,
};

static const char *const tracked[] = { ".dnadata/profiles.ini", ".dnadata/refs/.gitkeep" };
#define NTRACKED (sizeof(tracked) / sizeof(tracked[0]))

/* What this run created, so a failure can take it back. */
struct created {
	char **paths;
	int *is_dir;
	size_t n, alloc;
};

static void
note(struct created *c, const char *path, int is_dir)
{
	if (c->n == c->alloc) {
		c->alloc = c->alloc ? 2 * c->alloc : 8;
		c->paths = dd_realloc(c->paths, c->alloc * sizeof(*c->paths));
		c->is_dir = dd_realloc(c->is_dir, c->alloc * sizeof(*c->is_dir));
	}
	c->paths[c->n] = dd_strdup(path);
	c->is_dir[c->n] = is_dir;
	c->n++;
}

/*
 * mkdir -p, remembering each directory this process created. One that
 * appears between the check and mkdir() (EEXIST) is someone else's: undo()
 * must not remove it, so it is not remembered; and EEXIST for something
 * that is not a directory is an error, not success.
 */
static int
make_dir(struct created *c, const char *path, mode_t mode)
{
	char *parent;
	int rc;

	if (dd_is_dir(path))
		return 0;
	parent = dd_path_dirname(path);
	rc = make_dir(c, parent, 0777);
	free(parent);
	if (rc < 0)
		return -1;
	if (mkdir(path, mode) < 0) {
		if (errno == EEXIST && dd_is_dir(path))
			return 0;
		return dd_error_errno("cannot create directory %s", path);
	}
	note(c, path, 1);
	return 0;
}

/*
 * Remove what this run created, newest first. A directory this run created
 * holds only what this run put there (config.ini, the store key ...), so it
 * goes with its contents.
 */
static void
undo(struct created *c)
{
	while (c->n) {
		c->n--;
		if (c->is_dir[c->n])
			dd_rm_rf(c->paths[c->n]);
		else
			unlink(c->paths[c->n]);
		free(c->paths[c->n]);
	}
}

static void
forget(struct created *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->paths[i]);
	free(c->paths);
	free(c->is_dir);
	memset(c, 0, sizeof(*c));
}

/* The clone's private state: <statedir> (0700) and its config.ini. */
static int
make_local_state(struct created *c, struct dd_repo *repo)
{
	char *local = dd_path_join(repo->statedir, "config.ini");
	int rc = -1, w;

	if (make_dir(c, repo->statedir, 0700) < 0)
		goto out;
	if ((w = dd_config_write_local_initial(local)) < 0)
		goto out;
	if (w == 0)
		note(c, local, 0);
	rc = 0;
out:
	free(local);
	return rc;
}

/*
 * Create or adopt the store (store/store-keys.h): `url` from --store, else
 * (a fresh clone) from the settings; NULL = the local default store.
 */
static int
setup_store(struct dd_repo *repo, const char *url, const char *compression, int *created_elsewhere)
{
	struct dd_config *cfg = NULL;
	struct dd_store_opts o;
	int rc, created = 0;

	*created_elsewhere = 0;
	if (dd_config_load(&cfg, repo) < 0)
		return -1;
	dd_workflow_store_opts(&o, cfg, repo, 0); /* the [store] settings: endpoint, region ... */
	o.passphrase = dd_prompt_store_passphrase;
	if (!url)
		url = cfg->store_url; /* NULL: the default store, inside the state folder */
	o.url = url;
	o.compression = compression; /* a new store's; an existing one keeps its own */
	rc = dd_store_init(&o, &created);
	*created_elsewhere = rc == 0 && created && url;
	dd_config_free(cfg);
	return rc;
}

/*
 * A store this run created outside the state folder stays (it may be a
 * shared folder), and <statedir>/key may be the only copy of its key: a
 * failure after that must not take the state folder away with the key. Its
 * other files still go. (The default store lives in the state folder and
 * goes with it.)
 */
static void
keep_state_dir(struct created *c, const char *statedir)
{
	for (size_t i = 0; i < c->n; i++) {
		if (c->is_dir[i] && !strcmp(c->paths[i], statedir)) {
			free(c->paths[i]);
			c->n--;
			memmove(&c->paths[i], &c->paths[i + 1], (c->n - i) * sizeof(*c->paths));
			memmove(&c->is_dir[i], &c->is_dir[i + 1], (c->n - i) * sizeof(*c->is_dir));
			return;
		}
	}
}

/* The repository is set up already: create this clone's local state if it is missing. */
static int
init_existing(struct created *made, struct dd_repo *repo, const char *profiles, const char *local,
	      int options_given, const char *compression)
{
	int created = 0;

	if (options_given)
		dd_warn("options ignored: the repository is already set up; edit %s to change settings",
			dd_repo_display_path(repo, profiles));
	if (dd_path_exists(local)) {
		if (compression && !options_given)
			dd_warn("--compression ignored: this clone is already set up "
				"(a store keeps the compression it was created with)");
		dd_info("already initialised (%s exists); nothing changed", dd_repo_display_path(repo, profiles));
		return 0;
	}
	/* A fresh clone of a set-up repository: only this clone's state is missing. */
	if (make_local_state(made, repo) < 0 || setup_store(repo, NULL, compression, &created) < 0)
		return -1;
	dd_info("initialised this clone's local state in %s (the repository was already set up)",
		dd_repo_display_path(repo, repo->statedir));
	return 0;
}

/* --database is written to the committed profiles.ini: refuse a password or a malformed value. */
static int
check_database_option(const char *database)
{
	int secret;

	if (!database || (secret = dd_conninfo_has_secret(database)) == 0)
		return 0;
	if (secret < 0) {
		dd_error_wrap("--database");
		dd_hint("give a libpq connection string (host=db dbname=app) or URL (postgresql://db/app)");
	} else {
		dd_error("--database contains a password, which would be committed in .dnadata/profiles.ini");
		dd_hint("put the password in ~/.pgpass or PGPASSWORD, or the URL in .git/dnadata/config.ini");
	}
	return -1;
}

/* --compression is checked before any file is created (the store checks it again). */
static int
check_compression_option(const char *compression)
{
	int level;

	return compression ? dd_compression_parse(&level, compression, "--compression") : 0;
}

/* The tracked files: .dnadata/profiles.ini and .dnadata/refs/.gitkeep, each noted in `made`. */
static int
write_tracked(struct created *made, struct dd_repo *repo, const char *profiles, const char *store,
	      const char *database, const char *profile)
{
	char *refs = dd_path_join(repo->dnadata, "refs");
	char *keep = dd_path_join(refs, ".gitkeep");
	int rc = -1, w;

	if (make_dir(made, repo->dnadata, 0777) < 0 || make_dir(made, refs, 0777) < 0)
		goto out;
	if ((w = dd_config_write_initial(profiles, store, database, profile)) != 0) {
		if (w > 0)
			dd_error("%s appeared while initialising; run the command again", dd_repo_display_path(repo, profiles));
		goto out;
	}
	note(made, profiles, 0);
	if (!dd_path_exists(keep)) {
		if (dd_file_write_atomic(keep, "", 0, 0644, DD_WRITE_NOREPLACE) < 0)
			goto out;
		note(made, keep, 0);
	}
	rc = 0;
out:
	free(refs);
	free(keep);
	return rc;
}

/* Commit the tracked files ("dnadata: init") unless --no-commit, and say what was done. */
static int
commit_init(struct dd_repo *repo, const char *profile, int no_commit, int created)
{
	char commit[41];
	int c;

	if (no_commit) {
		dd_info("initialised git-dnadata (profile '%s'); not committed (--no-commit):", profile);
		dd_info("  git add .dnadata && git commit -m 'dnadata: init'");
		return 0;
	}
	c = dd_commit_paths(repo, tracked, NTRACKED, "init", commit);
	if (c < 0) {
		if (created)
			dd_error_wrap("cannot commit the new .dnadata files (the new store and its key in %s "
				      "were kept: run init again)", dd_repo_display_path(repo, repo->statedir));
		else
			dd_error_wrap("cannot commit the new .dnadata files (nothing was changed)");
		return -1;
	}
	if (c == DD_UNCHANGED)
		dd_info("initialised git-dnadata (profile '%s'); the files were already committed", profile);
	else
		dd_info("initialised git-dnadata (profile '%s'); committed %.7s \"dnadata: init\"", profile, commit);
	return 0;
}

/* The git hooks (git/hooks.c); a failure is a warning: the repository is set up either way. */
static void
install_hooks(struct dd_repo *repo)
{
	if (dd_hooks_install(repo) == 0)
		return;
	dd_warn("%s", dd_error_last());
	dd_warn("the git hooks were not installed: checkouts will not switch the database until "
		"`git dnadata install-hooks` succeeds");
	dd_error_clear();
}

static int
cmd_init(int argc, char **argv)
{
	const char *store = NULL, *database = NULL, *profile = DEFAULT_PROFILE, *compression = NULL;
	int no_commit = 0, rc = -1, created = 0;
	const struct dd_option opts[] = {
		{ DD_OPT_STRING, 0, "store", &store, "url", "where snapshots are uploaded (file:///dir or s3://bucket/prefix)" },
		{ DD_OPT_STRING, 0, "compression", &compression, "zstd:N|none",
		  "a new store's compression (default zstd:1; an existing store keeps its own)" },
		{ DD_OPT_STRING, 0, "database", &database, "conninfo", "the working database (libpq conninfo or URL)" },
		{ DD_OPT_STRING, 0, "profile", &profile, "name", "name of the first profile (default: " DEFAULT_PROFILE ")" },
		{ DD_OPT_BOOL, 0, "no-commit", &no_commit, NULL, "create the files but do not commit them" },
		DD_OPT_END_MARK,
	};
	struct dd_repo *repo = NULL;
	struct created made = { .n = 0 };
	char *profiles = NULL, *local = NULL;
	int n = dd_parse_options(argc, argv, opts, usage);

	if (n < 0)
		return n;
	if (n > 0)
		return dd_usage_error("init", "init takes no arguments ('%s' given)", argv[0]);
	if (dd_repo_open(&repo, NULL) < 0)
		return -1;
	profiles = dd_path_join(repo->dnadata, "profiles.ini");
	local = dd_path_join(repo->statedir, "config.ini");

	if (dd_path_exists(profiles)) {
		if (init_existing(&made, repo, profiles, local,
				  store || database || strcmp(profile, DEFAULT_PROFILE), compression) < 0)
			goto fail;
		rc = 0;
		install_hooks(repo);
		goto out;
	}
	/* Everything that could make the commit refuse is checked before the first file is created. */
	if (dd_profile_name_check(profile) < 0 || check_database_option(database) < 0 ||
	    check_compression_option(compression) < 0)
		goto out;
	if (!no_commit && dd_commit_precheck(repo, tracked, NTRACKED) < 0)
		goto out;

	if (write_tracked(&made, repo, profiles, store, database, profile) < 0 || make_local_state(&made, repo) < 0)
		goto fail;
	/* The store key is created or adopted here, once the files exist and before the commit. */
	if (setup_store(repo, store, compression, &created) < 0)
		goto fail;
	if (created)
		keep_state_dir(&made, repo->statedir);
	if (commit_init(repo, profile, no_commit, created) < 0)
		goto fail;
	forget(&made);
	rc = 0;
	install_hooks(repo);
	goto out;
fail:
	undo(&made);
out:
	forget(&made);
	free(profiles);
	free(local);
	dd_repo_free(repo);
	return rc;
}

const struct dd_command dd_cmd_init = { "init", "set up git-dnadata in this repository and commit .dnadata/", cmd_init };
