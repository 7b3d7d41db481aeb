/*
 * cmd/cmd-doctor.c: `git dnadata doctor`, the setup checked piece by piece,
 * one line each: "ok <piece>: ..." or "problem: <piece>: ... — run: <what
 * fixes it>". Exit 0 when every piece is fine, 1 when one is not.
 *
 * Order: what later checks need comes first (the configuration names the
 * store and the database; the server's version decides which pg_dump
 * fits). A piece that cannot be checked because an earlier one failed is
 * skipped, not reported twice. Fast and read-only: one small request to
 * the store (its config, never data), one connection to the server, the
 * client programs' --version, local files. Nothing is downloaded, fixed or
 * written; keys, passwords and S3 secrets are never printed.
 */
#include "config/config.h"
#include "dnadata.h"
#include "git/hooks.h"
#include "git/repo.h"
#include "pg/pg.h"
#include "pg/state.h"
#include "s3/creds.h"
#include "store/store-keys.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/log.h"
#include "workflow/workflow.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

static const char *const usage[] = {
	"git dnadata doctor",
	"",
	"Checks the setup, one line per piece: the configuration and its store, the",
	"store key, S3 credentials, the store's reachability, the PostgreSQL server",
	"and its version, pg_dump / pg_restore / psql against that version, the git",
	"hooks, free disk for the local cache, and the working database's record (a",
	"switch cut short). Each problem says what to run. Downloads nothing, changes",
	"nothing. Exit status 0 when all is well, 1 when something is wrong.",
	"",
	"Examples:",
	"  git dnadata doctor",
	"  git dnadata doctor | grep '^problem'",
	NULL,
};

struct doctor {
	struct dd_repo *repo;
	struct dd_config *cfg;     /* NULL: the configuration did not load */
	const char *conninfo;      /* the active profile's working database (or [database]'s) */
	int key_present;
	int server_major;          /* 0: the server's version is not known */
	int problems;
};

static void
ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
ok(const char *fmt, ...)
{
	struct dd_buf b = DD_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	dd_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	dd_out("ok %s\n", dd_buf_cstr(&b));
	dd_buf_release(&b);
}

/* One problem line: `what` (the piece and what is wrong), then what to run. */
static void
problem(struct doctor *d, const char *run, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void
problem(struct doctor *d, const char *run, const char *fmt, ...)
{
	struct dd_buf b = DD_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	dd_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	dd_out("problem: %s — run: %s\n", dd_buf_cstr(&b), run);
	dd_buf_release(&b);
	d->problems++;
}

/* The error just recorded, or `fallback`; the error is cleared (doctor goes on). */
static char *
take_error(const char *fallback)
{
	char *why = dd_strdup(dd_error_last() ? dd_error_last() : fallback);
	dd_error_clear();
	return why;
}

/* The configuration parses, names a store, and the active profile (if any) is defined. */
static void
check_config(struct doctor *d)
{
	const struct dd_profile *active = NULL;
	char *why, *store;

	if (dd_config_load(&d->cfg, d->repo) < 0) {
		why = take_error("unreadable");
		problem(d, "git dnadata init (or fix the line named)", "configuration: %s", why);
		free(why);
		d->cfg = NULL;
		return;
	}
	for (size_t i = 0; d->cfg->active_profile && i < d->cfg->nprofiles; i++)
		if (!strcmp(d->cfg->profiles[i].name, d->cfg->active_profile))
			active = &d->cfg->profiles[i];
	d->conninfo = dd_config_database(d->cfg, active);
	store = d->cfg->store_url ? dd_config_redact(d->cfg->store_url) : NULL;
	ok("configuration: %s parses; store %s", d->cfg->profiles_display,
	   store ? store : "the local store in .git/dnadata");
	free(store);
	if (d->cfg->active_profile && !active)
		problem(d, "git dnadata use <profile>", "configuration: the active profile %s (from %s) is not defined in %s",
			d->cfg->active_profile, d->cfg->active_source, d->cfg->profiles_display);
}

/* What fixes an unusable key: `key import` refuses to replace one, so it goes aside first. */
static char *
key_fix(const char *shown, const struct stat *st, int have_st)
{
	if (have_st && S_ISREG(st->st_mode) && (st->st_mode & 0600) != 0600)
		return dd_asprintf("chmod 600 %s (as its owner), or mv %s %s.bad and git dnadata key import FILE "
				   "(or git dnadata key import --passphrase)", shown, shown, shown);
	return dd_asprintf("mv %s %s.bad, then git dnadata key import FILE (or git dnadata key import --passphrase)",
			   shown, shown);
}

/*
 * <statedir>/key reads and parses as every command reads it: a regular file
 * (not a link), only its owner can read it, a key inside. d->key_present
 * says it is usable, so the store can be asked about it.
 */
static void
check_key(struct doctor *d)
{
	char *path = dd_path_join(d->repo->statedir, "key");
	const char *shown = dd_repo_display_path(d->repo, path);
	char *why, *run;
	struct stat st;
	int have_st, r;

	r = dd_store_key_check(d->repo->statedir);
	have_st = lstat(path, &st) == 0;
	if (r == 0) {
		d->key_present = 1;
		ok("key: %s present (mode 600) and reads as a key", shown);
	} else if (r == DD_NOTFOUND) {
		problem(d, "git dnadata key import --passphrase (or git dnadata key import FILE)",
			"key: no store key on this machine (%s)", shown);
	} else {
		why = take_error("unreadable");
		run = key_fix(shown, &st, have_st);
		if (have_st && S_ISLNK(st.st_mode))
			problem(d, run, "key: %s is a symbolic link; every command refuses it (only a file is read)", shown);
		else if (have_st && S_ISREG(st.st_mode) && (st.st_mode & 077))
			problem(d, "chmod 600 .git/dnadata/key", "key: %s can be read by others (mode %03o)", shown,
				(unsigned)(st.st_mode & 0777));
		else
			problem(d, run, "key: %s cannot be used: %s", shown, why);
		free(run);
		free(why);
	}
	free(path);
}

/* For an s3:// store: credentials found where the AWS tools look (never printed). */
static int
check_credentials(struct doctor *d)
{
	struct dd_s3_creds_opts o = { .region = d->cfg->store_region, .endpoint = d->cfg->store_endpoint };
	struct dd_s3_creds c;
	char *why;

	if (!d->cfg->store_url || strncmp(d->cfg->store_url, "s3://", 5))
		return 0;
	memset(&c, 0, sizeof(c));
	if (dd_s3_creds_resolve(&c, &o) != 0) {
		why = take_error("not found");
		problem(d, "export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or aws configure)", "S3 credentials: %s",
			why);
		free(why);
		dd_s3_creds_free(&c);
		return -1;
	}
	ok("S3 credentials: found (%s), region %s", c.source ? c.source : "?", c.region);
	dd_s3_creds_free(&c);
	return 0;
}

/* One request for the store's config: reachable, a store, and opened by our key. */
static void
check_store(struct doctor *d)
{
	struct dd_store_opts o;
	enum dd_store_probe_fail why;
	char *url, *err;

	dd_workflow_store_opts(&o, d->cfg, d->repo, 0);
	url = d->cfg->store_url ? dd_config_redact(d->cfg->store_url) : dd_strdup("the local store");
	if (dd_store_probe(&o, &why) == 0) {
		ok("store: %s reachable; the key opens it", url);
		free(url);
		return;
	}
	err = take_error("failed");
	switch (why) {
	case DD_PROBE_NO_KEY:
	case DD_PROBE_BAD_KEY:
		/* check_key found it usable (else the store is not asked): it changed since */
		problem(d, "git dnadata key import FILE (or git dnadata key import --passphrase)", "key: %s", err);
		break;
	case DD_PROBE_UNREACHABLE:
		problem(d, "check [store] url (and endpoint) in .dnadata/profiles.ini, the credentials, the network",
			"store: %s: %s", url, err);
		break;
	case DD_PROBE_NO_STORE:
		problem(d, "fix [store] url, or git dnadata init --store URL to make one", "store: %s", err);
		break;
	case DD_PROBE_WRONG_KEY:
		problem(d, "git dnadata key import --passphrase (the store's key)", "key: the wrong key for the store: %s",
			err);
		break;
	default:
		problem(d, "git dnadata verify, and restore the store's config from a backup", "store: %s", err);
		break;
	}
	free(err);
	free(url);
}

/* The server of the working database answers; its version decides the client programs needed. */
static void
check_server(struct doctor *d)
{
	char *text = NULL, *why;
	int version;

	if (dd_pg_server_version(d->conninfo, &version, &text) < 0) {
		why = take_error("cannot connect");
		problem(d, "start PostgreSQL, or fix the database (DNADATA_DATABASE, [database] or the profile's database)",
			"PostgreSQL: %s", why);
		free(why);
		return;
	}
	d->server_major = version / 10000;
	ok("PostgreSQL: server reachable, version %s", text);
	free(text);
}

/* pg_dump, pg_restore and psql: found, and of the server's major version or newer. */
static void
check_tools(struct doctor *d)
{
	static const char *const tools[] = { "pg_dump", "pg_restore", "psql" };

	for (size_t i = 0; i < sizeof(tools) / sizeof(*tools); i++) {
		char *path = NULL, *why, *run;
		int version;

		if (dd_pg_tool_find(tools[i], d->server_major, &path, &version) < 0) {
			run = dd_strdup(dd_error_hint() ? dd_error_hint() : "install postgresql-client");
			why = take_error("not found");
			problem(d, run, "%s: %s", tools[i], why);
			free(why);
			free(run);
			continue;
		}
		if (d->server_major)
			ok("%s: %d.%d (%s), not older than the server", tools[i], version / 10000, version % 10000, path);
		else
			ok("%s: %d.%d (%s); the server's version is unknown", tools[i], version / 10000, version % 10000,
			   path);
		free(path);
	}
}

/* Every hook installed, current (not a copy written by another version), and executable. */
static void
check_hooks(struct doctor *d)
{
	struct dd_hooks_report r;
	size_t bad = 0;
	char *why;

	if (dd_hooks_report(&r, d->repo) < 0) {
		why = take_error("unreadable");
		problem(d, "git dnadata install-hooks", "git hooks: %s", why);
		free(why);
		return;
	}
	for (size_t i = 0; i < r.n; i++) {
		const char *name = dd_hook_scripts[i].name;
		bad++;
		if (r.hook[i].state == DD_HOOK_MISSING)
			problem(d, "git dnadata install-hooks", "git hook %s: missing from %s", name, r.dir);
		else if (r.hook[i].state == DD_HOOK_OUTDATED)
			problem(d, "git dnadata install-hooks", "git hook %s: a stale copy from another version of git-dnadata",
				name);
		else if (r.hook[i].state == DD_HOOK_FOREIGN)
			problem(d, "git dnadata install-hooks (keeps yours and runs it first)",
				"git hook %s: %s/%s is not ours and does not run git dnadata", name, r.dir, name);
		else if (!r.hook[i].executable)
			problem(d, "chmod +x on it", "git hook %s: %s/%s is not executable (git skips it)", name, r.dir, name);
		else
			bad--;
	}
	if (!bad)
		ok("git hooks: %zu installed and current in %s%s", r.n, r.dir, r.custom_dir ? " (core.hooksPath)" : "");
	dd_hooks_report_release(&r);
}

/* Room on the disk of <statedir> for the local cache to grow to cache_budget. */
static void
check_disk(struct doctor *d)
{
	struct dd_cache_usage u;
	struct statvfs vfs;
	char fb[32], ub[32], bb[32];
	uint64_t avail, budget = (uint64_t)d->cfg->cache_budget;

	if (statvfs(d->repo->statedir, &vfs) < 0) {
		problem(d, "check that .git/dnadata exists and is readable", "disk: cannot read the free space of %s",
			d->repo->statedir);
		return;
	}
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	memset(&u, 0, sizeof(u));
	if (dd_store_cache_usage(&u, d->repo->statedir, d->cfg->store_url) < 0)
		dd_error_clear();
	dd_format_bytes(fb, sizeof(fb), (double)avail);
	dd_format_bytes(ub, sizeof(ub), (double)u.bytes);
	dd_format_bytes(bb, sizeof(bb), (double)budget);
	if (u.bytes > budget)
		problem(d, "git dnadata gc", "disk: the local cache uses %s, over cache_budget %s", ub, bb);
	else if (avail < budget - u.bytes)
		problem(d, "git dnadata gc, free disk space, or lower [database] cache_budget",
			"disk: %s free where .git/dnadata is, but the local cache (%s) may grow to cache_budget %s", fb, ub,
			bb);
	else
		ok("disk: %s free; the local cache uses %s of cache_budget %s", fb, ub, bb);
	dd_cache_usage_release(&u);
}

/* The working database's record: no switch cut short, no copy left by a dead restore. */
static void
check_record(struct doctor *d)
{
	struct dd_pg_state w;
	size_t dead = 0;
	char *why;

	if (dd_pg_state_read(&w, d->repo->statedir, d->conninfo) < 0) {
		why = take_error("unreadable");
		problem(d, "git dnadata restore", "working database record: %s", why);
		free(why);
		return;
	}
	for (size_t i = 0; i < w.npending; i++)
		dead += !w.pending[i].alive;
	if (w.interrupted)
		problem(d, "git dnadata restore (it finishes or undoes the switch)",
			"working database %s: a switch was cut short (killed or crashed)", w.database);
	else if (w.media_pending)
		problem(d, "git dnadata restore (it finishes the media folder)",
			"working database %s: a switch left its media folder unfinished", w.database);
	else if (dead)
		problem(d, "git dnadata restore (it drops them)",
			"working database %s: %zu cop%s left by a restore that was killed", w.database, dead,
			dead == 1 ? "y" : "ies");
	else if (w.snapshot)
		ok("working database %s: record consistent, holds snapshot %.12s", w.database, w.snapshot);
	else
		ok("working database %s: record consistent (nothing restored here yet)", w.database);
	dd_pg_state_release(&w);
}

static int
cmd_doctor(int argc, char **argv)
{
	const struct dd_option opts[] = {
		DD_OPT_END_MARK,
	};
	struct doctor d;
	int n = dd_parse_options(argc, argv, opts, usage);

	if (n < 0)
		return n;
	if (n > 0)
		return dd_usage_error("doctor", "doctor takes no arguments ('%s' given)", argv[0]);
	memset(&d, 0, sizeof(d));
	if (dd_repo_open(&d.repo, NULL) < 0)
		return -1;
	check_config(&d);
	check_key(&d);
	if (d.cfg && check_credentials(&d) == 0 && d.key_present)
		check_store(&d);
	if (d.cfg)
		check_server(&d);
	check_tools(&d);
	check_hooks(&d);
	if (d.cfg) {
		check_disk(&d);
		check_record(&d);
	}
	fflush(stdout);
	dd_config_free(d.cfg);
	dd_repo_free(d.repo);
	if (d.problems)
		return dd_error("doctor found %d problem%s (above)", d.problems, d.problems == 1 ? "" : "s");
	return 0;
}

const struct dd_command dd_cmd_doctor = { "doctor", "check the setup and say what to fix", cmd_doctor };
