/*
 * cmd/cmd-status.c: what this clone is set to, for people (default) and
 * scripts (--json, one object on stdout).
 *
 * Shape: collect() fills a struct status once; print_human() and
 * print_json() only format it, so a new piece of state (what the working
 * database holds, cache usage ...) is one field, one collect step and one
 * block in each printer. A broken ref file does not stop the report: it is
 * shown where its snapshot id would be. Neither does an unreachable server:
 * what needs it is reported as unknown or unverified. When the server
 * answers, the records of stashes the user dropped are removed (pg/state.c),
 * so they are not listed.
 *
 * JSON (stable; fields are only ever added):
 *   { "status_version": 1, "workdir": str,
 *     "active_profile": str|null, "active_profile_source": str|null,
 *     "active_profile_defined": bool,
 *     "store": { "url": str|null, "source": str|null },
 *     "database": str (password replaced by ***),
 *     "settings_changed": bool (profiles.ini differs from HEAD),
 *     "hooks": str ("installed", or which git hooks are missing, not ours, outdated),
 *     "working_database": { "name", "server", "snapshot": str|null (what it holds),
 *                           "profile", "since", "how" ("restored"|"snapshot"),
 *                           "changes": "unchanged"|"changed"|"unknown"|"missing"|null
 *                             (since that restore/snapshot; null: no snapshot recorded),
 *                           "changes_detail": str|null (why "unknown", ...),
 *                           "stashes": [ { "name", "snapshot", "profile", "stashed",
 *                                          "verified": bool (the server confirmed it exists) } ],
 *                           "leftovers": [ { "name", "pid": int, "process_alive": bool,
 *                                            "verified": bool, "exists": bool|null } ]
 *                             (copies recorded as being built: by a running restore, or
 *                             left by a killed one until a connecting command drops them),
 *                           "verify_error": str|null (why stashes and leftovers are unverified) },
 *     "local": { "cache_bytes": int (files only the local cache holds),
 *                "copies_bytes": int|null (templates and spares; null: the server could not be asked),
 *                "cache_budget": int, "stash_keep": int,
 *                "copies": [ { "name", "kind": "template"|"spare"|"stash", "snapshot", "profile",
 *                              "branch", "modified": "yes"|"no"|"unknown", "created", "used",
 *                              "size": int|null } ],
 *                "copies_error": str|null (why sizes are unknown),
 *                "pending_uploads": [ snapshot ids in the local cache the store does not hold yet ] },
 *     "profiles": [ { "name", "active": bool, "ref": path, "snapshot": str|null,
 *                     "ref_error": str|null, "ref_changed": bool,
 *                     "media": str|null, "database": str,
 *                     "media_state": null (no media folder) | { "path": str (absolute),
 *                        "changes": "unchanged"|"changed"|"not restored"|null (null: media_error says why),
 *                        "snapshot": str|null (what it was last made equal to, a snapshot or a stash's
 *                          private snapshot), "pending": bool (a switch was cut short: restore finishes it),
 *                        "error": str|null } } ] }
 */
#include "config/config.h"
#include "dnadata.h"
#include "media/media.h"
#include "workflow/workflow.h"
#include "git/hooks.h"
#include "git/ref.h"
#include "git/repo.h"
#include "pg/pg.h"
#include "pg/state.h"
#include "store/store.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const usage[] = {
	"git dnadata status [--json]",
	"",
	"Shows the active profile and where that choice comes from, the store, the",
	"working database, and each profile's snapshot (from its ref file).",
	"",
	"Examples:",
	"  git dnadata status",
	"  git dnadata status --json | jq -r .active_profile",
	NULL,
};

struct profile_status {
	const struct dd_profile *profile;
	char *ref_rel;            /* .dnadata/refs/<name> */
	char snapshot[DD_ID_HEX_LEN + 1]; /* "" = no snapshot yet */
	char *ref_error;          /* the ref file exists but does not parse */
	int ref_changed;          /* differs from HEAD (staged, modified, new or deleted) */
	char *database;           /* redacted */
	char *media_root;         /* the media folder, absolute; NULL: none */
	int media_changed;        /* 0 unchanged, 1 changed, 2 never restored or captured here, -1 (media_error) */
	char media_snapshot[65];
	char *media_error;
	int media_pending;        /* the working record says a switch left the folder to finish */
};

/* What this machine keeps to make switches fast, against cache_budget (issue 16). */
struct local_status {
	struct dd_pg_copy *copies; /* of the active working database: templates, spares, stashes */
	size_t ncopies;
	int sized;                 /* the server answered: sizes known, records verified */
	char *copies_why;          /* why not */
	struct dd_cache_usage cache;
	int have_cache;
};

struct status {
	struct dd_repo *repo;
	struct dd_config *cfg;
	int active_defined;
	char *store;              /* redacted */
	char *database;           /* active profile's (or [database]'s), redacted */
	int settings_changed;
	struct dd_pg_state pg;    /* what the working database holds, its stashes (<statedir>/pg) */
	int have_pg;
	int have_changes;         /* a snapshot is recorded, so `changes` says something */
	enum dd_pg_change changes; /* since that restore/snapshot */
	char *changes_why;
	char *unverified_why;     /* the server could not confirm stashes and leftovers: why */
	struct profile_status *profiles;
	size_t nprofiles;
	struct local_status local; /* templates, spares, stashes with sizes; cache usage; pending uploads */
};

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

static const char *
media_changes_name(const struct profile_status *ps)
{
	switch (ps->media_changed) {
	case 0: return "unchanged";
	case 1: return "changed";
	case 2: return "not restored";
	default: return NULL;
	}
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
	}
	dd_ref_free(ref);
	free(abs);
	if ((r = dd_repo_changed(st->repo, rel)) < 0)
		return -1;
	ps->ref_changed = r;
	collect_media(st, ps, p);
	return 0;
}

/* The error just recorded, for the report (and cleared: status goes on). */
static char *
take_error(const char *fallback)
{
	char *why = dd_strdup(dd_error_last() ? dd_error_last() : fallback);
	dd_error_clear();
	return why;
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
	if (dd_store_cache_usage(&l->cache, st->repo->statedir, st->cfg->store_url) == 0)
		l->have_cache = 1;
	dd_error_clear();
}

/* Bytes of templates and spares whose size is known. */
static uint64_t
copies_bytes(const struct local_status *l)
{
	uint64_t b = 0;

	for (size_t i = 0; i < l->ncopies; i++)
		if (l->copies[i].kind != DD_PG_COPY_STASH && l->copies[i].size > 0)
			b += (uint64_t)l->copies[i].size;
	return b;
}

/* The size of copy `name` for a line ("" when unknown). */
static void
copy_size(char *buf, size_t len, const struct local_status *l, const char *name)
{
	*buf = '\0';
	for (size_t i = 0; l->sized && i < l->ncopies; i++)
		if (!strcmp(l->copies[i].name, name) && l->copies[i].size >= 0)
			dd_format_bytes(buf, len, (double)l->copies[i].size);
}

static int
collect(struct status *st)
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
	collect_pg(st, dd_config_database(cfg, active));
	collect_local(st, dd_config_database(cfg, active));
	st->profiles = dd_calloc(cfg->nprofiles + 1, sizeof(*st->profiles));
	for (size_t i = 0; i < cfg->nprofiles; i++, st->nprofiles++)
		if (collect_profile(st, &st->profiles[i], &cfg->profiles[i]) < 0)
			return -1;
	return 0;
}

static void
print_changes(const struct status *st)
{
	const char *since = st->pg.how && !strcmp(st->pg.how, "snapshot") ? "snapshot" : "restore";

	if (st->changes == DD_PG_UNCHANGED)
		dd_out("                unchanged since %s\n", since);
	else if (st->changes == DD_PG_CHANGED)
		dd_out("                changed since %s\n", since);
	else if (st->changes == DD_PG_MISSING)
		dd_out("                missing: the database does not exist (restore creates it)\n");
	else
		dd_out("                unknown whether it changed since %s (%s)\n", since,
		       st->changes_why ? st->changes_why : "?");
}

/* Stashes, then copies recorded as being built (by a running restore, or left by a killed one). */
static void
print_stashes_and_leftovers(const struct status *st)
{
	const struct dd_pg_state *pg = &st->pg;
	const char *unverified = pg->verified ? "" : "; unverified";

	for (size_t i = 0; i < pg->nstashes; i++) {
		char size[32];
		copy_size(size, sizeof(size), &st->local, pg->stashes[i].name);
		dd_out("%s %s (held %.12s, stashed %s%s%s%s)\n", i ? "               " : "Stashed DBs:   ",
		       pg->stashes[i].name, *pg->stashes[i].snapshot ? pg->stashes[i].snapshot : "unknown",
		       pg->stashes[i].stashed, *size ? ", " : "", size, unverified);
	}
	for (size_t i = 0; i < pg->npending; i++) {
		const struct dd_pg_pending *p = &pg->pending[i];
		dd_out("%s %s ", i ? "               " : "Leftover DBs:  ", p->name);
		if (p->alive)
			dd_out("(being built by process %ld, still running%s)\n", p->pid, unverified);
		else
			dd_out("(left by process %ld, no longer running; the next restore, snapshot or use drops it%s)\n",
			       p->pid, unverified);
	}
	if (pg->verified || pg->nstashes + pg->npending == 0)
		return;
	if (st->unverified_why && st->changes_why && !strcmp(st->unverified_why, st->changes_why))
		dd_out("                unverified: could not ask the server which still exist (as above)\n");
	else
		dd_out("                unverified: could not ask the server which still exist (%s)\n",
		       st->unverified_why ? st->unverified_why : "?");
}

static void
print_working_db(const struct status *st)
{
	const struct dd_pg_state *pg = &st->pg;

	if (pg->snapshot) {
		dd_out("Working DB:     %s on %s holds snapshot %.12s (profile %s, %s %s)\n", pg->database, pg->server,
		       pg->snapshot, pg->profile ? pg->profile : "?", pg->how ? pg->how : "since",
		       pg->when ? pg->when : "?");
		print_changes(st);
	} else {
		dd_out("Working DB:     %s on %s (no snapshot restored or taken here yet)\n", pg->database, pg->server);
	}
	print_stashes_and_leftovers(st);
}

/* Templates and spares with sizes, then the budget line and the snapshots not pushed yet. */
static void
print_local(const struct status *st)
{
	const struct local_status *l = &st->local;
	char a[32], b[32], c[32];
	size_t shown[2] = { 0, 0 };

	for (size_t i = 0; i < l->ncopies; i++) {
		const struct dd_pg_copy *cp = &l->copies[i];
		int k = cp->kind == DD_PG_COPY_TEMPLATE ? 0 : 1;
		if (cp->kind == DD_PG_COPY_STASH)
			continue;
		copy_size(a, sizeof(a), l, cp->name);
		dd_out("%s %s (snapshot %.12s, %s, last used %s)\n",
		       shown[k]++ ? "               " : k == 0 ? "Templates:     " : "Spares:        ", cp->name,
		       *cp->snapshot ? cp->snapshot : "unknown", *a ? a : "size unknown", cp->used);
	}
	if (l->ncopies && !l->sized)
		dd_out("                sizes unknown: %s\n", l->copies_why ? l->copies_why : "?");
	if (l->have_cache) {
		char d[32];
		dd_format_bytes(a, sizeof(a), (double)l->cache.bytes);
		dd_format_bytes(b, sizeof(b), (double)(l->cache.bytes + copies_bytes(l)));
		dd_format_bytes(c, sizeof(c), (double)st->cfg->cache_budget);
		dd_format_bytes(d, sizeof(d), (double)copies_bytes(l));
		dd_out("Cache budget:   %s of %s used: local cache %s, templates and spares %s; stash_keep %d\n", b, c, a,
		       l->sized || !l->ncopies ? d : "unknown (server not reachable)", st->cfg->stash_keep);
		for (size_t i = 0; i < l->cache.npending; i++)
			dd_out("%s %.12s (in the local cache only: `git dnadata push` uploads it)\n",
			       i ? "               " : "Not pushed:    ", l->cache.pending[i]);
	}
}

static void
json_local(struct dd_json *j, const struct status *st)
{
	const struct local_status *l = &st->local;

	dd_json_object_begin(j, "local");
	dd_json_int(j, "cache_bytes", l->have_cache ? (long long)l->cache.bytes : 0);
	if (l->sized || !l->ncopies)
		dd_json_int(j, "copies_bytes", (long long)copies_bytes(l));
	else
		dd_json_null(j, "copies_bytes");
	dd_json_int(j, "cache_budget", st->cfg->cache_budget);
	dd_json_int(j, "stash_keep", st->cfg->stash_keep);
	dd_json_array_begin(j, "copies");
	for (size_t i = 0; i < l->ncopies; i++) {
		const struct dd_pg_copy *cp = &l->copies[i];
		dd_json_object_begin(j, NULL);
		dd_json_str(j, "name", cp->name);
		dd_json_str(j, "kind", dd_pg_copy_kind_name(cp->kind));
		dd_json_str(j, "snapshot", *cp->snapshot ? cp->snapshot : NULL);
		dd_json_str(j, "profile", *cp->profile ? cp->profile : NULL);
		dd_json_str(j, "branch", *cp->branch ? cp->branch : NULL);
		dd_json_str(j, "modified", dd_pg_modified_name(cp->modified));
		dd_json_str(j, "created", cp->created);
		dd_json_str(j, "used", cp->used);
		if (l->sized && cp->size >= 0)
			dd_json_int(j, "size", cp->size);
		else
			dd_json_null(j, "size");
		dd_json_object_end(j);
	}
	dd_json_array_end(j);
	dd_json_str(j, "copies_error", l->sized ? NULL : l->copies_why);
	dd_json_array_begin(j, "pending_uploads");
	for (size_t i = 0; i < l->cache.npending; i++)
		dd_json_str(j, NULL, l->cache.pending[i]);
	dd_json_array_end(j);
	dd_json_object_end(j);
}

static void
local_free(struct local_status *l)
{
	dd_pg_copies_free(l->copies, l->ncopies);
	free(l->copies_why);
	dd_cache_usage_release(&l->cache);
}

static void
print_profiles(const struct status *st)
{
	const struct dd_config *cfg = st->cfg;
	size_t width = 4;

	dd_out("\nProfiles:\n");
	for (size_t i = 0; i < st->nprofiles; i++)
		if (strlen(st->profiles[i].profile->name) > width)
			width = strlen(st->profiles[i].profile->name);
	for (size_t i = 0; i < st->nprofiles; i++) {
		const struct profile_status *ps = &st->profiles[i];
		int is_active = cfg->active_profile && !strcmp(cfg->active_profile, ps->profile->name);
		dd_out("%c %-*s  ", is_active ? '*' : ' ', (int)width, ps->profile->name);
		if (ps->ref_error)
			dd_out("invalid ref: %s", ps->ref_error);
		else if (*ps->snapshot)
			dd_out("%.12s", ps->snapshot);
		else
			dd_out("no snapshot yet");
		if (ps->ref_changed)
			dd_out("  (%s has uncommitted changes)", ps->ref_rel);
		dd_out("\n");
		if (!ps->media_root)
			continue;
		dd_out("  %-*s  media %s: ", (int)width, "", ps->profile->media);
		if (ps->media_pending)
			dd_out("a switch was cut short; `git dnadata restore` finishes it\n");
		else if (ps->media_changed == 0)
			dd_out("unchanged since %.12s\n", ps->media_snapshot);
		else if (ps->media_changed == 1)
			dd_out("changed since %.12s (restore or snapshot)\n", ps->media_snapshot);
		else if (ps->media_changed == 2)
			dd_out("not restored or captured here yet\n");
		else
			dd_out("unknown: %s\n", ps->media_error);
	}
	if (st->nprofiles == 0)
		dd_out("  (none: add one with 'git dnadata new-profile <name>')\n");
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

static void
print_human(const struct status *st)
{
	const struct dd_config *cfg = st->cfg;

	if (!cfg->active_profile)
		dd_out("No active profile (choose one with 'git dnadata use <profile>')\n");
	else if (!st->active_defined)
		dd_out("Active profile: %s (from %s), which %s does not define\n", cfg->active_profile,
		       cfg->active_source, cfg->profiles_display);
	else
		dd_out("Active profile: %s (from %s)\n", cfg->active_profile, cfg->active_source);
	if (st->store)
		dd_out("Store:          %s (from %s)\n", st->store, cfg->store_source ? cfg->store_source : "?");
	else
		dd_out("Store:          not set (the local store in .git/dnadata)\n");
	dd_out("Database:       %s\n", *st->database ? st->database : "(libpq defaults: PGHOST, PGDATABASE ...)");
	if (st->settings_changed)
		dd_out("Settings:       %s has uncommitted changes\n", cfg->profiles_display);
	char *hooks = hooks_summary(st->repo);
	dd_out("Git hooks:      %s\n", hooks);
	free(hooks);
	if (st->have_pg)
		print_working_db(st);
	print_local(st);
	print_profiles(st);
}

static void
json_working_db(struct dd_json *j, const struct status *st)
{
	const struct dd_pg_state *pg = &st->pg;

	dd_json_object_begin(j, "working_database");
	dd_json_str(j, "name", pg->database);
	dd_json_str(j, "server", pg->server);
	dd_json_str(j, "snapshot", pg->snapshot);
	dd_json_str(j, "profile", pg->profile);
	dd_json_str(j, "since", pg->when);
	dd_json_str(j, "how", pg->how);
	dd_json_str(j, "changes", st->have_changes ? dd_pg_change_name(st->changes) : NULL);
	dd_json_str(j, "changes_detail", st->changes_why);
	dd_json_array_begin(j, "stashes");
	for (size_t i = 0; i < pg->nstashes; i++) {
		dd_json_object_begin(j, NULL);
		dd_json_str(j, "name", pg->stashes[i].name);
		dd_json_str(j, "snapshot", *pg->stashes[i].snapshot ? pg->stashes[i].snapshot : NULL);
		dd_json_str(j, "profile", pg->stashes[i].profile);
		dd_json_str(j, "stashed", pg->stashes[i].stashed);
		dd_json_bool(j, "verified", pg->verified);
		dd_json_object_end(j);
	}
	dd_json_array_end(j);
	dd_json_array_begin(j, "leftovers");
	for (size_t i = 0; i < pg->npending; i++) {
		dd_json_object_begin(j, NULL);
		dd_json_str(j, "name", pg->pending[i].name);
		dd_json_int(j, "pid", pg->pending[i].pid);
		dd_json_bool(j, "process_alive", pg->pending[i].alive);
		dd_json_bool(j, "verified", pg->verified);
		if (pg->verified)
			dd_json_bool(j, "exists", pg->pending[i].exists);
		else
			dd_json_null(j, "exists");
		dd_json_object_end(j);
	}
	dd_json_array_end(j);
	dd_json_str(j, "verify_error", pg->verified ? NULL : st->unverified_why);
	dd_json_object_end(j);
}

static void
print_json(const struct status *st)
{
	const struct dd_config *cfg = st->cfg;
	struct dd_buf out = DD_BUF_INIT;
	struct dd_json j;

	dd_json_init(&j, &out);
	dd_json_object_begin(&j, NULL);
	dd_json_int(&j, "status_version", 1);
	dd_json_str(&j, "workdir", st->repo->workdir);
	dd_json_str(&j, "active_profile", cfg->active_profile);
	dd_json_str(&j, "active_profile_source", cfg->active_source);
	dd_json_bool(&j, "active_profile_defined", st->active_defined);
	dd_json_object_begin(&j, "store");
	dd_json_str(&j, "url", st->store);
	dd_json_str(&j, "source", cfg->store_source);
	dd_json_object_end(&j);
	dd_json_str(&j, "database", st->database);
	dd_json_bool(&j, "settings_changed", st->settings_changed);
	char *hooks = hooks_summary(st->repo);
	dd_json_str(&j, "hooks", hooks);
	free(hooks);
	if (st->have_pg)
		json_working_db(&j, st);
	json_local(&j, st);
	dd_json_array_begin(&j, "profiles");
	for (size_t i = 0; i < st->nprofiles; i++) {
		const struct profile_status *ps = &st->profiles[i];
		dd_json_object_begin(&j, NULL);
		dd_json_str(&j, "name", ps->profile->name);
		dd_json_bool(&j, "active", cfg->active_profile && !strcmp(cfg->active_profile, ps->profile->name));
		dd_json_str(&j, "ref", ps->ref_rel);
		dd_json_str(&j, "snapshot", *ps->snapshot ? ps->snapshot : NULL);
		dd_json_str(&j, "ref_error", ps->ref_error);
		dd_json_bool(&j, "ref_changed", ps->ref_changed);
		dd_json_str(&j, "media", ps->profile->media);
		dd_json_str(&j, "database", ps->database);
		if (ps->media_root) {
			dd_json_object_begin(&j, "media_state");
			dd_json_str(&j, "path", ps->media_root);
			dd_json_str(&j, "changes", media_changes_name(ps));
			dd_json_str(&j, "snapshot", *ps->media_snapshot ? ps->media_snapshot : NULL);
			dd_json_bool(&j, "pending", ps->media_pending);
			dd_json_str(&j, "error", ps->media_error);
			dd_json_object_end(&j);
		} else {
			dd_json_null(&j, "media_state");
		}
		dd_json_object_end(&j);
	}
	dd_json_array_end(&j);
	dd_json_object_end(&j);
	dd_buf_putc(&out, '\n');
	fwrite(out.ptr, 1, out.len, stdout);
	dd_buf_release(&out);
}

static void
status_free(struct status *st)
{
	for (size_t i = 0; i < st->nprofiles; i++) {
		free(st->profiles[i].ref_rel);
		free(st->profiles[i].ref_error);
		free(st->profiles[i].database);
		free(st->profiles[i].media_root);
		free(st->profiles[i].media_error);
	}
	free(st->profiles);
	dd_pg_state_release(&st->pg);
	local_free(&st->local);
	free(st->changes_why);
	free(st->unverified_why);
	free(st->store);
	free(st->database);
	dd_config_free(st->cfg);
	dd_repo_free(st->repo);
}

static int
cmd_status(int argc, char **argv)
{
	int json = 0, rc = -1;
	const struct dd_option opts[] = {
		{ DD_OPT_BOOL, 0, "json", &json, NULL, "print one JSON object on stdout (for scripts)" },
		DD_OPT_END_MARK,
	};
	struct status st;
	int n = dd_parse_options(argc, argv, opts, usage);

	if (n < 0)
		return n;
	if (n > 0)
		return dd_usage_error("status", "status takes no arguments ('%s' given)", argv[0]);
	memset(&st, 0, sizeof(st));
	if (dd_repo_open(&st.repo, NULL) < 0)
		goto out;
	if (dd_config_load(&st.cfg, st.repo) < 0 || collect(&st) < 0)
		goto out;
	if (json)
		print_json(&st);
	else
		print_human(&st);
	if (fflush(stdout) != 0) {
		dd_error_errno("cannot write the status");
		goto out;
	}
	rc = 0;
out:
	status_free(&st);
	return rc;
}

const struct dd_command dd_cmd_status = { "status", "show the active profile, store and each profile's snapshot",
					  cmd_status };
