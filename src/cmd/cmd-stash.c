/*
 * cmd/cmd-stash.c: `git dnadata stash list` and `stash drop NAME`: the
 * working databases a restore or a branch switch set aside (records in
 * pg/state.h), for every working database the profiles use.
 *
 * list: one line per stash: name, branch, profile, snapshot, edited
 * (yes/no/unknown: recorded when stashed; an unedited one is checked again
 * against its change fingerprint when the server answers), age, size (one
 * connection per server; an unreachable server is said, not an error).
 * media: the profile's media folder as it was when the database was
 * stashed: "unchanged" (its snapshot), "empty", "N entries set aside" (a
 * private snapshot, store.h), "-" (no media switched with it).
 * drop: the user's explicit choice, so a stash with local edits is dropped
 * too, and the line says what was lost; media set aside with it is
 * released (its private snapshot dropped unless another record names it). Only a recorded stash of ours: a
 * template, spare or unknown name is refused in one line.
 */
#include "config/config.h"
#include "dnadata.h"
#include "media/media.h"
#include "store/store.h"
#include "workflow/workflow.h"
#include "git/repo.h"
#include "pg/pg.h"
#include "pg/state.h"
#include "util/fs.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const usage[] = {
	"git dnadata stash list",
	"git dnadata stash drop [--force] <name>",
	"git dnadata stash media <name> <dir>",
	"",
	"A restore or a branch switch sets the working database aside as a stash",
	"(renamed, O(1)); coming back to the branch brings it back with its local",
	"edits. `list` shows them (edited: whether it was changed since its",
	"restore); `drop` removes one, edits included: that is what you asked for.",
	"MEDIA: the profile's media folder set aside with it (switching back brings",
	"it back): unchanged, or how many entries differed; dropping a stash drops them.",
	"`media` writes the media files set aside with a stash into DIR (new or empty),",
	"e.g. those a `restore` on the same branch replaced, which no checkout brings back.",
	"`git dnadata gc` drops unedited stashes beyond [database] stash_keep.",
	"",
	"Examples:",
	"  git dnadata stash list",
	"  git dnadata stash drop myapp__dnadata_stash_20261129101500",
	"  git dnadata stash media myapp__dnadata_stash_20261129101500 /tmp/uploads-before",
	NULL,
};

/* The distinct working databases of the profiles. */
static size_t
working_dbs(const struct dd_config *cfg, const char **out)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->nprofiles; i++) {
		const char *ci = dd_config_database(cfg, &cfg->profiles[i]);
		size_t k;
		for (k = 0; k < n && strcmp(out[k], ci); k++)
			;
		if (k == n)
			out[n++] = ci;
	}
	return n;
}

static void
age(char *buf, size_t len, const char *iso)
{
	struct tm tm;
	int64_t s;

	memset(&tm, 0, sizeof(tm));
	if (!iso || sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
			   &tm.tm_min, &tm.tm_sec) != 6) {
		snprintf(buf, len, "?");
		return;
	}
	tm.tm_year -= 1900, tm.tm_mon -= 1;
	s = (int64_t)time(NULL) - (int64_t)timegm(&tm);
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, len, "%llds", (long long)s);
	else if (s < 7200)
		snprintf(buf, len, "%lldm", (long long)(s / 60));
	else if (s < 172800)
		snprintf(buf, len, "%lldh", (long long)(s / 3600));
	else
		snprintf(buf, len, "%lldd", (long long)(s / 86400));
}

/* yes/no/unknown: the record, and for an unedited stash its fingerprint checked again when the server answers. */
static const char *
edited(const char *conninfo, const struct dd_pg_copy *c, int online)
{
	enum dd_pg_change ch;
	char *why = NULL;

	if (c->modified != DD_PG_MOD_NO || !online || !c->fingerprint)
		return dd_pg_modified_name(c->modified);
	if (dd_pg_changes_of(&ch, conninfo, c->name, c->fingerprint, 300, &why) < 0) {
		dd_error_clear();
		free(why);
		return dd_pg_modified_name(c->modified);
	}
	free(why);
	return ch == DD_PG_CHANGED ? "yes" : ch == DD_PG_UNCHANGED ? "no" : "unknown";
}

/* The MEDIA column of stash `c` (st may be NULL: then the entry count is not read). */
static void
media_text(char *buf, size_t len, struct dd_store *st, const struct dd_pg_copy *c)
{
	struct dd_snapshot *snap = NULL;
	const struct dd_stream_info *si;
	const char *entries = NULL;

	if (!c->media) {
		snprintf(buf, len, "-");
		return;
	}
	if (!*c->media) {
		snprintf(buf, len, "empty");
		return;
	}
	if (!c->media_private) {
		snprintf(buf, len, "unchanged");
		return;
	}
	if (st && dd_snapshot_load(&snap, st, c->media) == 0 && (si = dd_snapshot_find(snap, DD_MEDIA_STREAM)))
		entries = dd_stream_attr(si, "entries");
	dd_error_clear();
	if (entries)
		snprintf(buf, len, "%s entries set aside", entries);
	else
		snprintf(buf, len, "set aside (%.12s)", c->media);
	dd_snapshot_free(snap);
}

static int
list(struct dd_repo *repo, const struct dd_config *cfg)
{
	struct dd_store *st = NULL;
	const char **dbs = dd_calloc(cfg->nprofiles + 1, sizeof(*dbs));
	size_t ndbs = working_dbs(cfg, dbs), shown = 0;
	int w = 4; /* the NAME column: as wide as the longest name (every working database's) */

	/* to count what a stash's media set aside; without it the column says less */
	if (dd_workflow_open_store(&st, cfg, repo, DD_STORE_OFFLINE) < 0) {
		dd_error_clear();
		st = NULL;
	}
	for (size_t i = 0; i < ndbs; i++) {
		struct dd_pg_copy *c = NULL;
		size_t n = 0;
		int online = 1;
		char *offline_why = NULL;
		if (dd_pg_copies_list(&c, &n, repo->statedir, dbs[i], DD_PG_LIST_VERIFY) < 0) {
			offline_why = dd_strdup(dd_error_last() ? dd_error_last() : "cannot connect");
			dd_error_clear();
			online = 0;
			if (dd_pg_copies_list(&c, &n, repo->statedir, dbs[i], 0) < 0) {
				free(offline_why);
				free(dbs);
				dd_store_free(st);
				return -1;
			}
		}
		for (size_t k = 0; k < n; k++)
			if (c[k].kind == DD_PG_COPY_STASH && strlen(c[k].name) > (size_t)w)
				w = (int)strlen(c[k].name);
		for (size_t k = 0; k < n; k++) {
			char a[24], size[32], media[64];
			if (c[k].kind != DD_PG_COPY_STASH)
				continue;
			if (!shown++)
				dd_out("%-*s %-16s %-12s %-12s %-7s %5s %10s  %s\n", w, "NAME", "BRANCH", "PROFILE", "SNAPSHOT",
				       "EDITED", "AGE", "SIZE", "MEDIA");
			media_text(media, sizeof(media), st, &c[k]);
			age(a, sizeof(a), c[k].created);
			if (c[k].size >= 0 && online)
				dd_format_bytes(size, sizeof(size), (double)c[k].size);
			else
				snprintf(size, sizeof(size), "?");
			dd_out("%-*s %-16s %-12s %-12.12s %-7s %5s %10s  %s\n", w, c[k].name,
			       *c[k].branch ? c[k].branch : "-", *c[k].profile ? c[k].profile : "-",
			       *c[k].snapshot ? c[k].snapshot : "unknown", edited(dbs[i], &c[k], online), a, size, media);
		}
		if (!online && n)
			dd_out("(the server of %s could not be asked: sizes unknown, the list unverified: %s)\n",
			       dbs[i], offline_why);
		free(offline_why);
		dd_pg_copies_free(c, n);
	}
	if (!shown)
		dd_out("no stashes\n");
	free(dbs);
	dd_store_free(st);
	return 0;
}

/*
 * The media set aside with a dropped stash: its private snapshot goes too,
 * unless another record names it. What the drop's line says of it.
 */
static const char *
release_media(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_pg_copy *c)
{
	struct dd_store *st = NULL;
	const char *said = "";
	int r;

	if (!dd_pg_copy_media_set_aside(c))
		return "";
	if (dd_workflow_open_store(&st, cfg, repo, DD_STORE_OFFLINE) < 0 ||
	    (r = dd_workflow_media_release(repo, cfg, st, c->media)) < 0) {
		dd_warn("the media set aside with it (%.12s) is left for `git dnadata gc`: %s", c->media, dd_error_last());
		dd_error_clear();
	} else {
		said = r == 1 ? "; the media files set aside with it are gone too"
			      : "; the media files set aside with it are kept (another record names them)";
	}
	dd_store_free(st);
	return said;
}

/*
 * The record of stash `name` among the working databases': 0 with *found
 * (release it) and *conninfo (borrowed from cfg), or -1 (error and hint).
 */
static int
find_stash(struct dd_repo *repo, const struct dd_config *cfg, const char *name, struct dd_pg_copy *found,
	   const char **out)
{
	const char **dbs = dd_calloc(cfg->nprofiles + 1, sizeof(*dbs));
	size_t ndbs = working_dbs(cfg, dbs);
	const char *conninfo = NULL;

	memset(found, 0, sizeof(*found));
	for (size_t i = 0; i < ndbs && !conninfo; i++) {
		struct dd_pg_copy *c = NULL;
		size_t n = 0;
		if (dd_pg_copies_list(&c, &n, repo->statedir, dbs[i], 0) < 0) {
			dd_error_clear();
			continue;
		}
		for (size_t k = 0; k < n && !conninfo; k++)
			if (c[k].kind == DD_PG_COPY_STASH && !strcmp(c[k].name, name)) {
				conninfo = dbs[i];
				*found = c[k];
				memset(&c[k], 0, sizeof(c[k]));
			}
		dd_pg_copies_free(c, n);
	}
	free(dbs);
	*out = conninfo;
	if (conninfo)
		return 0;
	dd_error("no stash named '%s'", name);
	dd_hint("`git dnadata stash list` shows the stashes");
	return -1;
}

/* Write the media set aside with stash `name` into `dir` (missing or empty: nothing there is overwritten). */
static int
media_out(struct dd_repo *repo, const struct dd_config *cfg, const char *name, const char *dir)
{
	struct dd_pg_copy found;
	struct dd_store *st = NULL;
	struct dd_media_opts mo = { .progress = isatty(STDERR_FILENO) };
	struct dd_media_stats stats;
	const char *conninfo;
	char *root = NULL, *tmp = NULL, cwd[4096];
	DIR *d;
	int rc = -1;

	if (find_stash(repo, cfg, name, &found, &conninfo) < 0)
		return -1;
	if (!found.media) {
		dd_error("stash %s holds no media (no media folder switched with it)", name);
		goto out;
	}
	if ((d = opendir(dir))) {
		struct dirent *e;
		int empty = 1;
		while ((e = readdir(d)))
			empty &= !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
		closedir(d);
		if (!empty) {
			dd_error("%s is not empty: the media is written only into a new or empty folder", dir);
			goto out;
		}
	}
	root = dir[0] == '/' ? dd_strdup(dir) : getcwd(cwd, sizeof(cwd)) ? dd_path_join(cwd, dir) : NULL;
	if (!root) {
		dd_error_errno("cannot tell the current folder");
		goto out;
	}
	mo.root = root;
	/* the index of DIR is of no use afterwards: it goes into a state folder of its own, removed after */
	tmp = dd_asprintf("%s/tmp-media-XXXXXX", repo->statedir);
	if (!mkdtemp(tmp)) {
		dd_error_errno("cannot create a temporary folder in %s", repo->statedir);
		goto out;
	}
	mo.statedir = tmp;
	if (dd_workflow_open_store(&st, cfg, repo, DD_STORE_OFFLINE) < 0 ||
	    dd_media_apply(st, found.media, &mo, &stats) < 0) {
		dd_error_wrap("writing the media of stash %s into %s", name, dir);
		goto out;
	}
	dd_out("wrote the media of stash %s into %s: %" PRIu64 " files, %" PRIu64 " folders, %" PRIu64 " links\n", name,
	       dir, stats.files, stats.dirs, stats.links);
	rc = 0;
out:
	if (mo.statedir)
		dd_rm_rf(tmp);
	free(tmp);
	dd_store_free(st);
	dd_pg_copy_release(&found);
	free(root);
	return rc;
}

static int
drop(struct dd_repo *repo, const struct dd_config *cfg, const char *name)
{
	const char *conninfo = NULL;
	struct dd_pg_copy found;
	const char *media;
	int rc = -1, lock = -1, r;

	if (find_stash(repo, cfg, name, &found, &conninfo) < 0)
		return -1;
	if (dd_pg_state_lock(repo->statedir, conninfo, &lock) < 0)
		goto out;
	r = dd_pg_copy_drop(repo->statedir, conninfo, name, DD_PG_DROP_FORCE);
	if (r == DD_NOTFOUND) { /* dropped meanwhile */
		dd_error("no stash named '%s' (any more)", name);
		goto out;
	}
	if (r < 0)
		goto out;
	/* under the lock: no switch of this database sets the folder aside (the same files, the same id) meanwhile */
	media = release_media(repo, cfg, &found);
	dd_unlock_file(lock);
	lock = -1;
	dd_out("dropped stash %s (branch %s, profile %s, snapshot %.12s, %s%s)\n", name,
	       *found.branch ? found.branch : "unknown", *found.profile ? found.profile : "unknown",
	       *found.snapshot ? found.snapshot : "unknown",
	       found.modified == DD_PG_MOD_NO ? "no local edits" :
	       found.modified == DD_PG_MOD_YES ? "its local edits are gone" : "local edits, if any, are gone",
	       media);
	rc = 0;
out:
	dd_unlock_file(lock);
	dd_pg_copy_release(&found);
	return rc;
}

static int
cmd_stash(int argc, char **argv)
{
	int force = 0;
	const struct dd_option opts[] = {
		/* the hint of a refused drop elsewhere names it; drop always drops, edits included */
		{ DD_OPT_BOOL, 'f', "force", &force, NULL, "drop: accepted; a stash is dropped with its edits anyway" },
		DD_OPT_END_MARK,
	};
	struct dd_repo *repo = NULL;
	struct dd_config *cfg = NULL;
	int n = dd_parse_options(argc, argv, opts, usage), rc;

	if (n < 0)
		return n;
	if (n == 0)
		return dd_usage_error("stash", "stash needs a subcommand: list, drop <name> or media <name> <dir>");
	if (!strcmp(argv[0], "list") && n != 1)
		return dd_usage_error("stash", "stash list takes no arguments");
	if (!strcmp(argv[0], "drop") && n != 2)
		return dd_usage_error("stash", "usage: git dnadata stash drop <name>");
	if (!strcmp(argv[0], "media") && n != 3)
		return dd_usage_error("stash", "usage: git dnadata stash media <name> <dir>");
	if (strcmp(argv[0], "list") && strcmp(argv[0], "drop") && strcmp(argv[0], "media"))
		return dd_usage_error("stash", "unknown stash subcommand '%s' (list, drop or media)", argv[0]);
	if (dd_config_open(&repo, &cfg) < 0)
		return -1;
	if (!strcmp(argv[0], "list"))
		rc = list(repo, cfg);
	else if (!strcmp(argv[0], "drop"))
		rc = drop(repo, cfg, argv[1]);
	else
		rc = media_out(repo, cfg, argv[1], argv[2]);
	if (rc == 0 && fflush(stdout) != 0)
		rc = dd_error_errno("cannot write the list");
	dd_config_free(cfg);
	dd_repo_free(repo);
	return rc;
}

const struct dd_command dd_cmd_stash = { "stash", "list or drop the working databases set aside by switches",
					 cmd_stash };
