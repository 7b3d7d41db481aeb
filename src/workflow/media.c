/*
 * workflow/media.c: a profile's media folder in restores and switches
 * (issue 17; the capture is in workflow.c's snapshot). The database and
 * the folder switch together and never lose a file:
 *
 *   1. before anything changes, the folder as it is is set aside
 *      (dd_media_stash: its recorded snapshot when unchanged, else a
 *      private snapshot), and that id goes with the stash the working
 *      database becomes (pg/state.h, stash records' `media`);
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
#include "util/log.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *
dd_workflow_media_root(const struct dd_repo *repo, const struct dd_profile *p)
{
	if (!p->media || !*p->media)
		return NULL;
	if (p->media[0] == '/')
		return dd_strdup(p->media);
	return dd_path_join(repo->workdir, p->media);
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
	char stash[65];         /* the folder as it was */
	struct dd_media_stats stats;
	struct dd_pg_switch_media hooks;
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

/* Put the folder back as it was (the stash); keeps the current error. 0, or -1 (warned). */
static int
put_back(struct dd_media_switch *ms)
{
	struct dd_error_saved saved;
	struct dd_media_stats st;
	int rc = 0;

	dd_error_save(&saved);
	memset(&st, 0, sizeof(st));
	if (dd_media_apply(ms->st, ms->stash, &ms->mo, &st) < 0) {
		dd_warn("media folder %s could not be put back as it was (%s); it is kept as snapshot %.12s: run "
			"`git dnadata restore` again", ms->root, dd_error_last(), *ms->stash ? ms->stash : "(empty)");
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
	ms->snapshot = snapshot;
	dd_workflow_media_opts(&ms->mo, repo, p, root);
	if (dd_workflow_open_store_reading(&ms->st, cfg, repo) < 0)
		goto fail;
	if (dd_media_stash(ms->st, &ms->mo, ms->stash) < 0) {
		dd_error_wrap("setting media folder %s aside", root);
		goto fail;
	}
	ms->hooks = (struct dd_pg_switch_media){ .stash = ms->stash, .choose = media_choose, .apply = media_apply,
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
	int rc = -1;

	if (!state->media_pending || !state->media)
		return 0;
	if (!(root = dd_workflow_media_root(repo, p)))
		return dd_pg_state_set_media(repo->statedir, dd_config_database(cfg, p), NULL, 0);
	dd_workflow_media_opts(&mo, repo, p, root);
	memset(&stats, 0, sizeof(stats));
	if (dd_workflow_open_store_reading(&st, cfg, repo) < 0)
		goto out;
	if (dd_media_apply(st, state->media, &mo, &stats) < 0) {
		dd_error_wrap("finishing the interrupted switch of media folder %s to %.12s", root,
			      *state->media ? state->media : "(empty)");
		goto out;
	}
	if (dd_pg_state_set_media(repo->statedir, dd_config_database(cfg, p), state->media, 0) < 0)
		goto out;
	dd_info("finished the interrupted switch of media folder %s (%s %.12s)", root,
		*state->media ? "snapshot" : "empty", state->media);
	rc = 0;
out:
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
	*why = r == 1 ? "changed since its restore" : r == 0 ? "holds another snapshot" : "was never restored here";
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
