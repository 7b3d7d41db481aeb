/*
 * cmd/cmd-status.c: what this clone is set to, for people (default) and
 * scripts (--json, status-json.c; schema in README.md "status --json").
 *
 * Shape: status_collect() (status-collect.c) fills a struct status once;
 * the printers only format it, so a new piece of state is one field, one
 * collect step and one block in each printer.
 */
#include "cmd/status.h"
#include "config/config.h"
#include "git/repo.h"
#include "util/buf.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const usage[] = {
	"git dnadata status [--json]",
	"",
	"Shows the active profile and where that choice comes from, the store, the",
	"git hooks, the working database, its stashes, templates and spares and the",
	"local cache against their budgets, the snapshots waiting for a push, and",
	"each profile's snapshot (from its ref file), media folder and last",
	"post_restore run. --json prints the same as one JSON object (its schema is",
	"in the README).",
	"",
	"Examples:",
	"  git dnadata status",
	"  git dnadata status --json | jq -r .active_profile",
	"  git dnadata status --json | jq '.profiles[] | select(.post_restore.current and .post_restore.ok == false) | .name'",
	NULL,
};

/* The size of copy `name` for a line ("" when unknown). */
static void
copy_size(char *buf, size_t len, const struct local_status *l, const char *name)
{
	*buf = '\0';
	for (size_t i = 0; l->sized && i < l->ncopies; i++)
		if (!strcmp(l->copies[i].name, name) && l->copies[i].size >= 0)
			dd_format_bytes(buf, len, (double)l->copies[i].size);
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

/* "2 (1.2 GB)", "0", or "2 (size unknown)" */
static void
count_line(struct dd_buf *b, const char *what, const struct copy_usage *u, int sized)
{
	char size[32];

	dd_buf_printf(b, "%zu %s%s", u->count, what, u->count == 1 ? "" : !strcmp(what, "stash") ? "es" : "s");
	if (!u->count)
		return;
	if (sized) {
		dd_format_bytes(size, sizeof(size), (double)u->bytes);
		dd_buf_printf(b, " (%s)", size);
	} else {
		dd_buf_puts(b, " (size unknown)");
	}
}

/* How many copies of the working database this machine keeps, and their bytes. */
static void
print_copy_counts(const struct local_status *l, int stash_keep)
{
	struct dd_buf b = DD_BUF_INIT;

	count_line(&b, "template", &l->templates, l->sized);
	dd_buf_puts(&b, ", ");
	count_line(&b, "spare", &l->spares, l->sized);
	dd_buf_puts(&b, ", ");
	count_line(&b, "stash", &l->stashes, l->sized);
	dd_out("Local copies:   %s; %zu unedited stash%s (stash_keep %d)\n", dd_buf_cstr(&b), l->stashes_unedited,
	       l->stashes_unedited == 1 ? "" : "es", stash_keep);
	dd_buf_release(&b);
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
		dd_format_bytes(b, sizeof(b), (double)(l->cache.bytes + status_copies_bytes(l)));
		dd_format_bytes(c, sizeof(c), (double)st->cfg->cache_budget);
		dd_format_bytes(d, sizeof(d), (double)status_copies_bytes(l));
		print_copy_counts(l, st->cfg->stash_keep);
		dd_out("Cache budget:   %s of %s used: local cache %s, templates and spares %s; stash_keep %d\n", b, c, a,
		       l->sized || !l->ncopies ? d : "unknown (server not reachable)", st->cfg->stash_keep);
		for (size_t i = 0; i < l->cache.npending; i++)
			dd_out("%s %.12s (in the local cache only: `git dnadata push` uploads it)\n",
			       i ? "               " : "Not pushed:    ", l->cache.pending[i]);
	}
}

/*
 * The last post_restore run of the profile, one line; nothing when none is recorded, the record is stale
 * (the working database no longer holds the snapshot it ran on) or no command is configured.
 */
static void
print_post_restore(const struct profile_status *ps, int width)
{
	const struct dd_post_restore_last *p = &ps->post;
	char when[40];
	time_t t = (time_t)p->when;
	struct tm tm;

	if (ps->post_error) {
		dd_out("  %-*s  post_restore: record unreadable: %s\n", width, "", ps->post_error);
		return;
	}
	if (!ps->have_post || !ps->post_current || !p->total)
		return; /* none, stale, or no command configured: nothing to say */
	if (!gmtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm))
		snprintf(when, sizeof(when), "?");
	if (p->skipped) {
		dd_out("  %-*s  post_restore: skipped (restore --no-hooks; %d command%s configured), %s, snapshot %.12s\n",
		       width, "", p->total, p->total == 1 ? "" : "s", when, p->snapshot ? p->snapshot : "?");
		return;
	}
	if (!p->failed) {
		dd_out("  %-*s  post_restore: ok (%d command%s, %s, snapshot %.12s)\n", width, "", p->total,
		       p->total == 1 ? "" : "s", when, p->snapshot ? p->snapshot : "?");
		return;
	}
	dd_out("  %-*s  post_restore: FAILED: command %d of %d (%s) ", width, "", p->failed, p->total,
	       p->command ? p->command : "?");
	if (p->exit_status >= 0)
		dd_out("exited with %d", p->exit_status);
	else
		dd_out("was killed or did not start");
	dd_out(", %s; the data of %.12s is restored: fix it and run the rest by hand (or `git dnadata restore "
	       "--force`)\n", when, p->snapshot ? p->snapshot : "?");
}

static void
print_profiles(const struct status *st)
{
	size_t width = 4;

	dd_out("\nProfiles:\n");
	for (size_t i = 0; i < st->nprofiles; i++)
		if (strlen(st->profiles[i].profile->name) > width)
			width = strlen(st->profiles[i].profile->name);
	for (size_t i = 0; i < st->nprofiles; i++) {
		const struct profile_status *ps = &st->profiles[i];
		dd_out("%c %-*s  ", status_is_active(st, ps) ? '*' : ' ', (int)width, ps->profile->name);
		if (ps->ref_error)
			dd_out("invalid ref: %s", ps->ref_error);
		else if (*ps->snapshot)
			dd_out("%.12s%s%s", ps->snapshot, ps->masked ? ", masked " : "", ps->masked ? ps->masked : "");
		else
			dd_out("no snapshot yet");
		if (ps->ref_changed)
			dd_out("  (%s has uncommitted changes)", ps->ref_rel);
		dd_out("\n");
		print_post_restore(ps, (int)width);
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

/* Where the hooks are (core.hooksPath or not) and which chain to the user's own. */
static void
print_hooks_detail(const struct status *st)
{
	const struct dd_hooks_report *r = &st->hooks_report;
	size_t n = 0;

	if (!st->have_hooks_report)
		return;
	dd_out("                in %s%s", r->dir, r->custom_dir ? " (core.hooksPath)" : "");
	for (size_t i = 0; i < r->n; i++)
		if (r->hook[i].chained)
			dd_out("%s%s", n++ ? ", " : "; running your own first: ", dd_hook_scripts[i].name);
	for (size_t i = 0, m = 0; i < r->n; i++)
		if (r->hook[i].state != DD_HOOK_MISSING && !r->hook[i].executable)
			dd_out("%s%s", m++ ? ", " : "; not executable (git skips them): ", dd_hook_scripts[i].name);
	dd_out("\n");
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
	dd_out("Git hooks:      %s\n", st->hooks);
	print_hooks_detail(st);
	if (st->have_pg)
		print_working_db(st);
	print_local(st);
	print_profiles(st);
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
	if (dd_config_load(&st.cfg, st.repo) < 0 || status_collect(&st) < 0)
		goto out;
	if (json)
		status_print_json(&st);
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
