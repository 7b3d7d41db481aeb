/*
 * cmd/status-json.c: `git dnadata status --json`, one JSON object on
 * stdout with every field the human report shows. The schema is in
 * README.md ("status --json"); fields are stable and only ever added,
 * status_version says which schema. Absent or unknown values are null,
 * never left out, so a script can index without checking.
 */
#include "cmd/status.h"
#include "config/config.h"
#include "git/repo.h"
#include "util/buf.h"
#include "util/json.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* "2026-11-30T01:02:03Z" */
static void
iso_time(char *buf, size_t len, long long t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "?");
}

static void
json_hooks(struct dd_json *j, const struct status *st)
{
	const struct dd_hooks_report *r = &st->hooks_report;

	if (!st->have_hooks_report) {
		dd_json_null(j, "hooks_detail");
		return;
	}
	dd_json_object_begin(j, "hooks_detail");
	dd_json_str(j, "dir", r->dir);
	dd_json_bool(j, "core_hooks_path", r->custom_dir);
	dd_json_array_begin(j, "hooks");
	for (size_t i = 0; i < r->n; i++) {
		dd_json_object_begin(j, NULL);
		dd_json_str(j, "name", dd_hook_scripts[i].name);
		dd_json_str(j, "state", dd_hook_state_name(r->hook[i].state));
		dd_json_bool(j, "chained", r->hook[i].chained);
		dd_json_bool(j, "executable", r->hook[i].executable);
		dd_json_object_end(j);
	}
	dd_json_array_end(j);
	dd_json_object_end(j);
}

static void
json_usage(struct dd_json *j, const char *key, const struct copy_usage *u, int sized)
{
	dd_json_object_begin(j, key);
	dd_json_int(j, "count", (long long)u->count);
	if (sized || !u->count)
		dd_json_int(j, "bytes", (long long)u->bytes);
	else
		dd_json_null(j, "bytes");
	dd_json_object_end(j);
}

static void
json_post_restore(struct dd_json *j, const struct profile_status *ps)
{
	const struct dd_post_restore_last *p = &ps->post;
	char when[32];

	if (!ps->have_post) {
		dd_json_null(j, "post_restore");
		dd_json_str(j, "post_restore_error", ps->post_error);
		return;
	}
	iso_time(when, sizeof(when), p->when);
	dd_json_object_begin(j, "post_restore");
	dd_json_bool(j, "ok", p->failed == 0);
	dd_json_bool(j, "current", ps->post_current);
	dd_json_bool(j, "skipped", p->skipped);
	dd_json_str(j, "snapshot", p->snapshot);
	dd_json_str(j, "when", when);
	dd_json_int(j, "commands", p->total);
	if (p->failed) {
		dd_json_int(j, "failed_command", p->failed);
		dd_json_int(j, "exit_status", p->exit_status);
	} else {
		dd_json_null(j, "failed_command");
		dd_json_null(j, "exit_status");
	}
	dd_json_str(j, "command", p->command);
	dd_json_object_end(j);
	dd_json_null(j, "post_restore_error");
}

static void
json_local(struct dd_json *j, const struct status *st)
{
	const struct local_status *l = &st->local;

	dd_json_object_begin(j, "local");
	dd_json_int(j, "cache_bytes", l->have_cache ? (long long)l->cache.bytes : 0);
	if (l->sized || !l->ncopies)
		dd_json_int(j, "copies_bytes", (long long)status_copies_bytes(l));
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
	json_usage(j, "templates", &l->templates, l->sized);
	json_usage(j, "spares", &l->spares, l->sized);
	json_usage(j, "stashes", &l->stashes, l->sized);
	dd_json_int(j, "stashes_unedited", (long long)l->stashes_unedited);
	if (l->have_cache && (l->sized || !l->ncopies)) {
		uint64_t used = l->cache.bytes + status_copies_bytes(l);
		dd_json_int(j, "budget_used_bytes", (long long)used);
		dd_json_bool(j, "over_budget", used > (uint64_t)st->cfg->cache_budget);
	} else {
		dd_json_null(j, "budget_used_bytes");
		dd_json_null(j, "over_budget");
	}
	dd_json_array_begin(j, "pending_uploads");
	for (size_t i = 0; i < l->cache.npending; i++)
		dd_json_str(j, NULL, l->cache.pending[i]);
	dd_json_array_end(j);
	dd_json_object_end(j);
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
json_profile(struct dd_json *j, const struct status *st, const struct profile_status *ps)
{
	dd_json_object_begin(j, NULL);
	dd_json_str(j, "name", ps->profile->name);
	dd_json_bool(j, "active", status_is_active(st, ps));
	dd_json_str(j, "ref", ps->ref_rel);
	dd_json_str(j, "snapshot", *ps->snapshot ? ps->snapshot : NULL);
	dd_json_str(j, "ref_error", ps->ref_error);
	dd_json_str(j, "masked", ps->masked);
	dd_json_bool(j, "ref_changed", ps->ref_changed);
	dd_json_str(j, "media", ps->profile->media);
	dd_json_str(j, "database", ps->database);
	if (ps->media_root) {
		dd_json_object_begin(j, "media_state");
		dd_json_str(j, "path", ps->media_root);
		dd_json_str(j, "changes", status_media_changes_name(ps));
		dd_json_str(j, "snapshot", *ps->media_snapshot ? ps->media_snapshot : NULL);
		dd_json_bool(j, "pending", ps->media_pending);
		dd_json_str(j, "error", ps->media_error);
		dd_json_object_end(j);
	} else {
		dd_json_null(j, "media_state");
	}
	json_post_restore(j, ps);
	dd_json_object_end(j);
}

void
status_print_json(const struct status *st)
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
	dd_json_str(&j, "hooks", st->hooks);
	json_hooks(&j, st);
	if (st->have_pg)
		json_working_db(&j, st);
	json_local(&j, st);
	dd_json_array_begin(&j, "profiles");
	for (size_t i = 0; i < st->nprofiles; i++)
		json_profile(&j, st, &st->profiles[i]);
	dd_json_array_end(&j);
	dd_json_object_end(&j);
	dd_buf_putc(&out, '\n');
	fwrite(out.ptr, 1, out.len, stdout);
	dd_buf_release(&out);
}

