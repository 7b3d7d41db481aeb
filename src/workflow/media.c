/*
 * workflow/media.c: a profile's media folder in restores and switches
 * (issue 17; the capture is in workflow.c's snapshot). The database and
 * the folder switch together and never lose a file:
 *
 *   1. the folder as it is is set aside (dd_media_stash: its recorded
 *      snapshot when unchanged, else a private snapshot) from
 *      dd_pg_switch's set_aside callback, as late as possible: after the
 *      source is built, just before the journal, so files written during
 *      a build go with it; that id goes with the stash the working
 *      database becomes (pg/state.h, stash records' `media`). The folder's
 *      lock is held from then to the end of the switch;
 *   2. once dd_pg_switch has chosen its source, the media target is the
 *      ref's snapshot, or, when the switch renames a branch's stash back,
 *      the media id recorded with that stash; it is checked
 *      (dd_media_check: loads, no hostile entry) before anything is built;
 *   3. it is applied from dd_pg_switch's callback just before the rename
 *      transaction: a failed apply puts the folder back (the stash id)
 *      and the working database was never touched; a failed rename puts
 *      the folder back too. Why before rather than after the rename:
 *      docs/DESIGN-NOTES.md, "Media folders".
 *
 * A kill -9 during the apply leaves the switch's journal (pg/state.h) with
 * both ids; the next command's recovery marks the working record
 * media_pending with the id that goes with the database it finds, and the
 * next restore applies it (dd_media_finish_pending).
 */
#include "workflow/internal.h"
#include "workflow/workflow.h"
#include "config/config.h"
#include "git/repo.h"
#include "pg/pg.h"
#include "pg/state.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/log.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* `path` without empty and `.` components and without a trailing '/' ("/" stays): one folder, one spelling. */
static char *
normalise(char *path)
{
	char *out = path, *p = path;

	while (*p) {
		char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == 0 || (len == 1 && *p == '.')) {
			if (p == path && len == 0)
				*out++ = '/'; /* the root of an absolute path */
		} else {
			if (out > path && out[-1] != '/')
				*out++ = '/';
			memmove(out, p, len);
			out += len;
		}
		p += len + (end != NULL);
	}
	if (out == path)
		*out++ = '.';
	*out = '\0';
	return path;
}

char *
dd_workflow_media_root(const struct dd_repo *repo, const struct dd_profile *p)
{
	if (!p->media || !*p->media)
		return NULL;
	if (p->media[0] == '/')
		return normalise(dd_strdup(p->media));
	return normalise(dd_path_join(repo->workdir, p->media));
}

int
dd_workflow_media_lock(const struct dd_repo *repo, const char *root, int *fd)
{
	unsigned char h[16];
	char hex[33], *dir = dd_path_join(repo->statedir, "locks"), *name, *path, *busy;
	int rc = -1;

	*fd = -1;
	crypto_generichash(h, sizeof(h), (const unsigned char *)root, strlen(root), NULL, 0);
	dd_hex_encode(hex, h, sizeof(h));
	name = dd_asprintf("media-%s.lock", hex);
	path = dd_path_join(dir, name);
	busy = dd_asprintf("waiting for another git dnadata run on media folder %s to finish", root);
	if (dd_mkdir_p(dir, 0700) == 0)
		rc = dd_lock_file(path, busy, fd);
	if (rc == DD_EBUSY) { /* a git hook's, which never waits */
		char *who = dd_lock_file_holder(path);
		dd_error("another git dnadata command is working on media folder %s%s%s%s", root, who ? " (" : "",
			 who ? who : "", who ? ")" : "");
		free(who);
	}
	free(busy);
	free(path);
	free(name);
	free(dir);
	return rc;
}

void
dd_workflow_media_opts(struct dd_media_opts *o, const struct dd_repo *repo, const struct dd_profile *p,
		       const char *root)
{
	*o = (struct dd_media_opts){
		.root = root,
		.statedir = repo->statedir,
		.owner = p->media_owner,
		.progress = isatty(STDERR_FILENO),
	};
}

struct dd_media_switch {
	struct dd_store *st;
	char *root;
	struct dd_media_opts mo;
	const char *snapshot;   /* the ref's */
	const char *conninfo;   /* the working database's (its record marks a put-back that failed) */
	char stash[65];         /* the folder as it was */
	struct dd_media_stats stats;
	struct dd_pg_switch_media hooks;
	int lock;               /* the folder's (dd_workflow_media_lock), from the set-aside to the end */
};

/* dd_pg_switch_media.choose: the target, checked before anything is built. */
static int
media_choose(void *arg, const char *source_media, char **target)
{
	struct dd_media_switch *ms = arg;
	const char *id = source_media ? source_media : ms->snapshot;
	int r;

	*target = NULL;
	r = dd_media_check(ms->st, id);
	if (r == DD_NOTFOUND && !source_media) {
		dd_error_clear();
		dd_info("snapshot %.12s has no media listing: media folder %s left as it is", id, ms->root);
		return 0;
	}
	if (r != 0) {
		if (r == DD_NOTFOUND)
			dd_error("the media set aside with that stash (%.12s) has no media listing", id);
		dd_error_wrap("checking the media of %s %.12s for folder %s", source_media ? "the stash's snapshot" : "snapshot",
			      *id ? id : "(empty)", ms->root);
		if (source_media)
			dd_hint("`git dnadata stash list` shows that stash; `git dnadata stash drop NAME` gives up on it");
		return -1;
	}
	*target = dd_strdup(id);
	return 0;
}

/*
 * Put the folder back as it was (the stash); keeps the current error. 0,
 * or -1 (warned): then the working record names the stash as its pending
 * media, so nothing sweeps it and the next restore puts it back first.
 */
static int
put_back(struct dd_media_switch *ms)
{
	struct dd_error_saved saved;
	struct dd_media_stats st;
	struct dd_media_opts mo = ms->mo;
	const char *id = *ms->stash ? ms->stash : "(empty)";
	int rc = 0;

	dd_error_save(&saved);
	memset(&st, 0, sizeof(st));
	mo.force = 1; /* the folder is partly applied by us: it differs from its record, and goes back */
	if (dd_media_apply(ms->st, ms->stash, &mo, &st) < 0) {
		char *why = dd_strdup(dd_error_last());
		dd_error_clear();
		if (dd_pg_state_set_media(ms->mo.statedir, ms->conninfo, ms->stash, 1) == 0)
			dd_warn("media folder %s could not be put back as it was (%s); its files are kept as snapshot "
				"%.12s, which the next `git dnadata restore` puts back first", ms->root, why, id);
		else
			dd_warn("media folder %s could not be put back as it was (%s), nor could that be recorded (%s); "
				"its files are kept as snapshot %.12s: do not run gc before `git dnadata restore` has put "
				"them back", ms->root, why, dd_error_last(), id);
		free(why);
		rc = -1;
	}
	dd_error_restore(&saved);
	return rc;
}

/* dd_pg_switch_media.apply: make the folder equal the target; on failure put it back. */
static int
media_apply(void *arg, const char *target)
{
	struct dd_media_switch *ms = arg;

	memset(&ms->stats, 0, sizeof(ms->stats));
	if (dd_media_apply(ms->st, target, &ms->mo, &ms->stats) >= 0)
		return 0;
	if (ms->stats.refused)
		return -1; /* written into since it was set aside: nothing changed, nothing to put back */
	dd_error_wrap("making media folder %s equal snapshot %.12s", ms->root, *target ? target : "(empty)");
	if (put_back(ms) == 0) {
		char *msg = dd_strdup(dd_error_last());
		dd_error("%s; the folder and the database were left as they were", msg);
		free(msg);
	}
	return -1;
}

/* dd_pg_switch_media.undo: the rename failed after the apply. */
static void
media_undo(void *arg)
{
	put_back(arg);
}

/* Is `id` a private snapshot of this cache (files set aside, not in the store)? */
static int
is_private(struct dd_store *st, const char *id, int *out)
{
	char **ids = NULL;
	size_t n = 0;

	*out = 0;
	if (!*id)
		return 0;
	if (dd_store_private_list(st, &ids, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		*out |= !strcmp(ids[i], id);
	dd_store_snapshot_ids_free(ids, n);
	return 0;
}

/* dd_pg_switch_media.set_aside: the folder as it is now, before the apply changes it. */
static int
media_set_aside(void *arg)
{
	struct dd_media_switch *ms = arg;

	if (dd_media_stash(ms->st, &ms->mo, ms->stash) < 0) {
		dd_error_wrap("setting media folder %s aside", ms->root);
		return -1;
	}
	return is_private(ms->st, ms->stash, &ms->hooks.stash_private);
}

int
dd_media_switch_begin(struct dd_media_switch **out, struct dd_repo *repo, const struct dd_config *cfg,
		      const struct dd_profile *p, const char *snapshot)
{
	struct dd_media_switch *ms;
	char *root = dd_workflow_media_root(repo, p);

	*out = NULL;
	if (!root)
		return 0;
	ms = dd_calloc(1, sizeof(*ms));
	ms->root = root;
	ms->lock = -1;
	if (dd_workflow_media_lock(repo, root, &ms->lock) < 0)
		goto fail;
	ms->snapshot = snapshot;
	ms->conninfo = dd_config_database(cfg, p);
	dd_workflow_media_opts(&ms->mo, repo, p, root);
	if (dd_workflow_open_store_reading(&ms->st, cfg, repo) < 0)
		goto fail;
	ms->hooks = (struct dd_pg_switch_media){ .folder = ms->root, .stash = ms->stash, .choose = media_choose,
						 .set_aside = media_set_aside, .apply = media_apply,
						 .undo = media_undo, .arg = ms };
	*out = ms;
	return 0;
fail:
	dd_media_switch_free(ms);
	return -1;
}

const struct dd_pg_switch_media *
dd_media_switch_hooks(struct dd_media_switch *ms)
{
	return ms ? &ms->hooks : NULL;
}

const struct dd_media_stats *
dd_media_switch_stats(const struct dd_media_switch *ms)
{
	return &ms->stats;
}

void
dd_media_switch_free(struct dd_media_switch *ms)
{
	if (!ms)
		return;
	dd_store_free(ms->st);
	dd_unlock_file(ms->lock);
	free(ms->root);
	free(ms);
}

int
dd_media_finish_pending(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
			const struct dd_pg_state *state)
{
	struct dd_store *st = NULL;
	struct dd_media_opts mo;
	struct dd_media_stats stats;
	char *root;
	int rc = -1, lock = -1;

	if (!state->media_pending || !state->media)
		return 0;
	if (!(root = dd_workflow_media_root(repo, p)))
		return dd_pg_state_set_media(repo->statedir, dd_config_database(cfg, p), NULL, 0);
	dd_workflow_media_opts(&mo, repo, p, root);
	mo.force = 1; /* a killed switch's apply: the folder is partly applied by it */
	memset(&stats, 0, sizeof(stats));
	if (dd_workflow_media_lock(repo, root, &lock) < 0 || dd_workflow_open_store_reading(&st, cfg, repo) < 0)
		goto out;
	if (dd_media_apply(st, state->media, &mo, &stats) < 0) {
		dd_error_wrap("finishing the interrupted switch of media folder %s to %.12s", root,
			      *state->media ? state->media : "(empty)");
		goto out;
	}
	if (dd_pg_state_set_media(repo->statedir, dd_config_database(cfg, p), state->media, 0) < 0)
		goto out;
	dd_info("finished the interrupted switch of media folder %s (%s %.12s)", p->media,
		*state->media ? "snapshot" : "empty", state->media);
	rc = 0;
out:
	dd_unlock_file(lock);
	dd_store_free(st);
	free(root);
	return rc;
}

int
dd_media_at_snapshot(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
		     const char *snapshot, const char **why)
{
	struct dd_store *st = NULL;
	struct dd_media_opts mo;
	char rec[65] = "", *root = dd_workflow_media_root(repo, p);
	int r, rc = -1;

	*why = NULL;
	if (!root)
		return 1;
	dd_workflow_media_opts(&mo, repo, p, root);
	r = dd_media_changed(&mo, rec);
	if (r < 0)
		goto out;
	if (r == 0 && !strcmp(rec, snapshot)) {
		rc = 1;
		goto out;
	}
	*why = r == DD_MEDIA_NORECORD ? "was never restored here" : r == 1 ? "changed since its restore"
										  : "holds another snapshot";
	/* a snapshot without a media listing leaves the folder alone: then it is as good as equal */
	if (dd_workflow_open_store_reading(&st, cfg, repo) < 0)
		goto out;
	r = dd_media_check(st, snapshot);
	if (r == DD_NOTFOUND) {
		dd_error_clear();
		rc = 1;
	} else if (r == 0) {
		rc = 0;
	}
out:
	if (rc < 0)
		dd_error_wrap("media folder %s", root);
	dd_store_free(st);
	free(root);
	return rc;
}

/* ---- private media snapshots: released when no record names them (stash drop, gc) ---- */

struct idset {
	char **v;
	size_t n;
};

static void
idset_add(struct idset *s, const char *id)
{
	if (!id || !*id)
		return;
	s->v = dd_realloc(s->v, (s->n + 1) * sizeof(*s->v));
	s->v[s->n++] = dd_strdup(id);
}

static int
idset_has(const struct idset *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], id))
			return 1;
	return 0;
}

static void
idset_free(struct idset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static void
named_add(void *arg, const char *id)
{
	idset_add(arg, id);
}

/*
 * The snapshot each configured media folder's index records (the folder
 * may hold a stash's files brought back): a stat walk per folder, so taken
 * before any database lock (a git hook's trylock is not kept waiting).
 */
static int
folders_each(struct dd_repo *repo, const struct dd_config *cfg, void (*add)(void *arg, const char *id), void *arg)
{
	for (size_t i = 0; i < cfg->nprofiles; i++) {
		struct dd_media_opts mo;
		char rec[65] = "", *root = dd_workflow_media_root(repo, &cfg->profiles[i]);
		if (!root)
			continue;
		dd_workflow_media_opts(&mo, repo, &cfg->profiles[i], root);
		int r = dd_media_changed(&mo, rec);
		free(root);
		if (r < 0)
			return -1;
		dd_error_clear();
		add(arg, rec);
	}
	return 0;
}

static int
folders_named(struct dd_repo *repo, const struct dd_config *cfg, struct idset *named)
{
	return folders_each(repo, cfg, named_add, named);
}

int
dd_workflow_media_each_named(struct dd_repo *repo, const struct dd_config *cfg,
			     void (*add)(void *arg, const char *id), void *arg)
{
	if (folders_each(repo, cfg, add, arg) < 0)
		return -1;
	return dd_pg_state_media_named(repo->statedir, add, arg);
}

/*
 * Every media id a record names: the folders' (folders_named) and those of
 * every database's records under the state folder (stashes, working
 * records, pending ones too, journals), whichever worktree, branch or
 * profile file wrote them: the state folder and the cache are shared.
 */
static int
media_named(struct dd_repo *repo, const struct dd_config *cfg, struct idset *named)
{
	if (folders_named(repo, cfg, named) < 0)
		return -1;
	return dd_pg_state_media_named(repo->statedir, named_add, named);
}

int
dd_workflow_media_release(struct dd_repo *repo, const struct dd_config *cfg, struct dd_store *st, const char *id)
{
	struct idset named = { 0 };
	int rc = -1, priv = 0;

	if (!id || !*id)
		return 0;
	if (is_private(st, id, &priv) < 0)
		return -1;
	if (!priv)
		return 0;
	if (media_named(repo, cfg, &named) < 0)
		goto out;
	if (idset_has(&named, id)) {
		rc = 0;
	} else if ((rc = dd_store_private_drop(st, id)) == DD_NOTFOUND) { /* gone already */
		dd_error_clear();
		rc = 0;
	} else if (rc == 0) {
		rc = 1;
	}
out:
	idset_free(&named);
	return rc;
}

int
dd_workflow_media_sweep(struct dd_repo *repo, const struct dd_config *cfg, struct dd_store *st, int dry,
			size_t *dropped)
{
	struct idset named = { 0 };
	char **ids = NULL;
	size_t n = 0, nlocks = 0;
	int *locks = NULL, rc = -1, r;

	*dropped = 0;
	if (dd_store_private_list(st, &ids, &n) < 0)
		return -1;
	if (!n) {
		rc = 0;
		goto out;
	}
	if (folders_named(repo, cfg, &named) < 0)
		goto out;
	/* every database's lock: no switch is setting a folder aside meanwhile */
	r = dd_pg_state_trylock_all(repo->statedir, &locks, &nlocks);
	if (r == DD_EBUSY) { /* a restore is running: it may be setting a folder aside; next time */
		dd_error_clear();
		rc = DD_EBUSY;
		goto out;
	}
	if (r < 0 || dd_pg_state_media_named(repo->statedir, named_add, &named) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (idset_has(&named, ids[i]))
			continue;
		if (!dry && (r = dd_store_private_drop(st, ids[i])) < 0 && r != DD_NOTFOUND)
			goto out;
		dd_error_clear();
		(*dropped)++;
	}
	rc = 0;
out:
	dd_pg_state_unlock_all(locks, nlocks);
	idset_free(&named);
	dd_store_snapshot_ids_free(ids, n);
	return rc;
}
