/*
 * cmd/status-collect.c: everything `status` reports, gathered once into a
 * struct status (cmd/status.h). A broken ref file does not stop the
 * report: it is shown where its snapshot id would be. Neither does an
 * unreachable server: what needs it is reported as unknown or unverified.
 * When the server answers, the records of stashes the user dropped are
 * removed (pg/state.c), so they are not listed. No store request is made:
 * the cache's usage and pending uploads come from local files.
 */
#include "cmd/status.h"
#include "config/config.h"
#include "git/ref.h"
#include "git/repo.h"
#include "media/media.h"
#include "util/buf.h"
#include "util/fs.h"

#include <stdlib.h>
#include <string.h>

/* The error just recorded, for the report (and cleared: status goes on). */
static char *
take_error(const char *fallback)
{
	char *why = dd_strdup(dd_error_last() ? dd_error_last() : fallback);
	dd_error_clear();
	return why;
}

/* Whether p's media folder changed since it was restored or captured (sizes and mtimes: no file read). */
static void
collect_media(struct status *st, struct profile_status *ps, const struct dd_profile *p)
{
	struct dd_media_opts mo;
	struct dd_pg_state w;

	if (!(ps->media_root = dd_workflow_media_root(st->repo, p)))
		return;
	dd_workflow_media_opts(&mo, st->repo, p, ps->media_root);
	mo.progress = 0;
	ps->media_changed = dd_media_changed(&mo, ps->media_snapshot);
	if (ps->media_changed == DD_MEDIA_NORECORD)
		ps->media_changed = 2;
	if (ps->media_changed < 0) {
		ps->media_error = dd_strdup(dd_error_last() ? dd_error_last() : "unreadable");
		ps->media_changed = -1;
	}
	dd_error_clear();
	if (dd_pg_state_read(&w, st->repo->statedir, dd_config_database(st->cfg, p)) == 0)
		ps->media_pending = w.media_pending || w.interrupted; /* a journal: the next command marks it pending */
	dd_error_clear();
	dd_pg_state_release(&w);
}

const char *
status_media_changes_name(const struct profile_status *ps)
{
	switch (ps->media_changed) {
	case 0: return "unchanged";
	case 1: return "changed";
	case 2: return "not restored";
	default: return NULL;
	}
}

/*
 * How the last post_restore run of the profile went (post-restore.c keeps it per profile), and whether it is
 * current: its snapshot is what the profile's working database's record holds (not when another profile's
 * restore, a snapshot taken from the database or a restore outside this tool has replaced it since).
 */
static void
collect_post_restore(struct status *st, struct profile_status *ps)
{
	int r = dd_workflow_post_restore_last(st->repo, ps->profile->name, &ps->post);
	struct dd_pg_state w;

	if (r == 0)
		ps->have_post = 1;
	else if (r < 0)
		ps->post_error = take_error("unreadable");
	dd_error_clear();
	if (!ps->have_post)
		return;
	if (dd_pg_state_read(&w, st->repo->statedir, dd_config_database(st->cfg, ps->profile)) == 0)
		ps->post_current = w.snapshot && ps->post.snapshot && !strcmp(w.snapshot, ps->post.snapshot) &&
				   (!w.profile || !strcmp(w.profile, ps->profile->name));
	dd_error_clear();
	dd_pg_state_release(&w);
}

static int
collect_profile(struct status *st, struct profile_status *ps, const struct dd_profile *p)
{
	char *rel = dd_ref_path(p->name);
	char *abs = dd_repo_path(st->repo, rel);
	struct dd_ref *ref = NULL;
	int r;

	ps->profile = p;
	ps->ref_rel = rel;
	ps->database = dd_config_redact(dd_config_database(st->cfg, p));
	r = dd_ref_read_named(&ref, abs, rel);
	if (r < 0) {
		ps->ref_error = dd_strdup(dd_error_last() ? dd_error_last() : "unreadable");
		dd_error_clear();
	} else if (r == 0) {
		memcpy(ps->snapshot, ref->snapshot, sizeof(ps->snapshot));
		if (dd_ref_get_info(ref, "masked"))
			ps->masked = dd_strdup(dd_ref_get_info(ref, "masked"));
	}
	dd_ref_free(ref);
	free(abs);
	if ((r = dd_repo_changed(st->repo, rel)) < 0)
		return -1;
	ps->ref_changed = r;
	collect_media(st, ps, p);
	collect_post_restore(st, ps);
	return 0;
}

/*
 * What the working database holds and whether it changed, then which
 * stashes and leftover copies still exist (the records of dropped ones are
 * removed). When the server cannot be reached for the first, it is not
 * tried again for the second.
 */
static void
collect_pg(struct status *st, const char *conninfo)
{
	if (dd_pg_state_read(&st->pg, st->repo->statedir, conninfo) < 0) {
		dd_error_clear(); /* a malformed conninfo is reported by the commands that connect */
		return;
	}
	st->have_pg = 1;
	if (st->pg.snapshot) {
		/* cheap: statistics and sequence values, no table read */
		st->have_changes = 1;
		if (dd_pg_changes(&st->changes, conninfo, st->pg.fingerprint, 300, &st->changes_why) < 0) {
			st->changes = DD_PG_UNKNOWN;
			free(st->changes_why);
			st->changes_why = take_error("cannot connect");
			st->unverified_why = dd_strdup(st->changes_why);
			return;
		}
	}
	if (dd_pg_state_verify(&st->pg, st->repo->statedir, conninfo) < 0)
		st->unverified_why = take_error("cannot connect");
}

/* How many templates, spares and stashes, their bytes (known sizes only), the unedited stashes. */
static void
count_copies(struct local_status *l)
{
	for (size_t i = 0; i < l->ncopies; i++) {
		const struct dd_pg_copy *cp = &l->copies[i];
		struct copy_usage *u = cp->kind == DD_PG_COPY_TEMPLATE ? &l->templates
				       : cp->kind == DD_PG_COPY_SPARE  ? &l->spares
								       : &l->stashes;
		u->count++;
		if (l->sized && cp->size > 0)
			u->bytes += (uint64_t)cp->size;
		if (cp->kind == DD_PG_COPY_STASH && cp->modified == DD_PG_MOD_NO)
			l->stashes_unedited++;
	}
}

/*
 * Templates, spares and stashes with their sizes (one connection, not tried
 * when the server did not answer above), and the cache's usage and the
 * snapshots waiting for a push (local files only: no store request).
 */
static void
collect_local(struct status *st, const char *conninfo)
{
	struct local_status *l = &st->local;

	if (st->have_pg && !st->unverified_why &&
	    dd_pg_copies_list(&l->copies, &l->ncopies, st->repo->statedir, conninfo, DD_PG_LIST_VERIFY) == 0) {
		l->sized = 1;
	} else {
		l->copies_why = st->unverified_why ? dd_strdup(st->unverified_why) : take_error("cannot connect");
		if (!st->have_pg || dd_pg_copies_list(&l->copies, &l->ncopies, st->repo->statedir, conninfo, 0) < 0) {
			dd_error_clear();
			l->copies = NULL, l->ncopies = 0;
		}
	}
	count_copies(l);
	if (dd_store_cache_usage(&l->cache, st->repo->statedir, st->cfg->store_url) == 0)
		l->have_cache = 1;
	dd_error_clear();
}

/* Bytes of templates and spares whose size is known. */
uint64_t
status_copies_bytes(const struct local_status *l)
{
	uint64_t b = 0;

	for (size_t i = 0; i < l->ncopies; i++)
		if (l->copies[i].kind != DD_PG_COPY_STASH && l->copies[i].size > 0)
			b += (uint64_t)l->copies[i].size;
	return b;
}

/*
 * Whether git-dnadata's git hooks are installed (git/hooks.h), one line:
 * "installed", or which are missing, not ours or outdated. Caller frees.
 */
static char *
hooks_summary(const struct dd_repo *repo)
{
	static const char *const what[] = { [DD_HOOK_MISSING] = "missing", [DD_HOOK_OUTDATED] = "outdated",
					     [DD_HOOK_FOREIGN] = "not ours" };
	enum dd_hook_state states[8];
	struct dd_buf b = DD_BUF_INIT;
	size_t n = 0, calls = 0;

	if (dd_hooks_state(states, repo) < 0) {
		char *s = dd_asprintf("unknown (%s)", dd_error_last());
		dd_error_clear();
		return s;
	}
	for (size_t i = 0; dd_hook_scripts[i].name; i++) {
		if (states[i] == DD_HOOK_OURS || states[i] == DD_HOOK_CALLS_US) {
			calls += states[i] == DD_HOOK_CALLS_US;
			continue;
		}
		dd_buf_printf(&b, "%s%s %s", n++ ? ", " : "", dd_hook_scripts[i].name, what[states[i]]);
	}
	if (!n)
		return dd_strdup(calls ? "installed (some through your own hook files)" : "installed");
	dd_buf_puts(&b, " (run `git dnadata install-hooks`)");
	return dd_buf_detach(&b, NULL);
}

int
status_is_active(const struct status *st, const struct profile_status *ps)
{
	return st->cfg->active_profile && !strcmp(st->cfg->active_profile, ps->profile->name);
}

int
status_collect(struct status *st)
{
	const struct dd_config *cfg = st->cfg;
	const struct dd_profile *active = NULL;
	int r;

	for (size_t i = 0; cfg->active_profile && i < cfg->nprofiles; i++)
		if (!strcmp(cfg->profiles[i].name, cfg->active_profile))
			active = &cfg->profiles[i];
	st->active_defined = active != NULL;
	st->store = cfg->store_url ? dd_config_redact(cfg->store_url) : NULL;
	st->database = dd_config_redact(dd_config_database(cfg, active));
	if ((r = dd_repo_changed(st->repo, ".dnadata/profiles.ini")) < 0)
		return -1;
	st->settings_changed = r;
	st->hooks = hooks_summary(st->repo);
	if (dd_hooks_report(&st->hooks_report, st->repo) == 0)
		st->have_hooks_report = 1;
	dd_error_clear();
	collect_pg(st, dd_config_database(cfg, active));
	collect_local(st, dd_config_database(cfg, active));
	st->profiles = dd_calloc(cfg->nprofiles + 1, sizeof(*st->profiles));
	for (size_t i = 0; i < cfg->nprofiles; i++, st->nprofiles++)
		if (collect_profile(st, &st->profiles[i], &cfg->profiles[i]) < 0)
			return -1;
	return 0;
}

static void
local_free(struct local_status *l)
{
	dd_pg_copies_free(l->copies, l->ncopies);
	free(l->copies_why);
	dd_cache_usage_release(&l->cache);
}

void
status_free(struct status *st)
{
	for (size_t i = 0; i < st->nprofiles; i++) {
		free(st->profiles[i].ref_rel);
		free(st->profiles[i].ref_error);
		free(st->profiles[i].masked);
		free(st->profiles[i].database);
		free(st->profiles[i].media_root);
		free(st->profiles[i].media_error);
		free(st->profiles[i].post_error);
		if (st->profiles[i].have_post)
			dd_workflow_post_restore_last_release(&st->profiles[i].post);
	}
	free(st->profiles);
	free(st->hooks);
	dd_hooks_report_release(&st->hooks_report);
	dd_pg_state_release(&st->pg);
	local_free(&st->local);
	free(st->changes_why);
	free(st->unverified_why);
	free(st->store);
	free(st->database);
	dd_config_free(st->cfg);
	dd_repo_free(st->repo);
}

