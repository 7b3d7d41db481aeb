/*
 * cmd/cmd-gc.c: `git dnadata gc [--dry-run]`: enforce cache_budget and
 * stash_keep on this machine (workflow/gc.c decides and acts; this file
 * only prints). One line per thing removed (cache files grouped by the
 * snapshot that last needed them), one per stash kept for its edits with
 * the command that drops it, and a summary line. --dry-run prints the same
 * lines with "would", and removes nothing.
 *
 * `gc --store [--grace DURATION]`: the store's own gc instead
 * (workflow/gc-store.c, store/store-gc.c): one line per kind of file and a
 * summary.
 */
#include "config/config.h"
#include "dnadata.h"
#include "git/repo.h"
#include "workflow/gc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const usage[] = {
	"git dnadata gc [--dry-run]",
	"git dnadata gc --store [--dry-run] [--grace DURATION]",
	"",
	"Brings what this machine keeps to speed up switches under the budgets of",
	"profiles.ini / .git/dnadata/config.ini: [database] cache_budget (local cache",
	"objects the store also holds, template databases, warm spares; least",
	"recently used first, snapshots no local branch names first) and",
	"[database] stash_keep (unedited stashes per working database, oldest",
	"dropped first). Never removes what is not in the store yet, the working",
	"database, or a stash with local edits (it says how to drop one).",
	"",
	"With --store: removes from the store what no snapshot needs that a ref file",
	"names in any commit of any branch, tag or remote-tracking branch (run",
	"`git fetch --all` first), or that this clone's records name; nothing the",
	"store got within the grace period (default 24h; at least 1h except with",
	"--dry-run) is removed, so snapshots and pushes running elsewhere are",
	"safe. Packs less than half live are repacked.",
	"",
	"Examples:",
	"  git dnadata gc --dry-run",
	"  git dnadata gc",
	"  git fetch --all && git dnadata gc --store --dry-run",
	NULL,
};

static void
when(char *buf, size_t len, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == INT64_MIN || t <= 0 || !gmtime_r(&tt, &tm))
		snprintf(buf, len, "never");
	else
		strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm);
}

static const char *
kind_word(enum dd_gc_what w)
{
	switch (w) {
	case DD_GC_TEMPLATE: return "template";
	case DD_GC_SPARE: return "spare";
	default: return "stash";
	}
}

static void
print_action(const struct dd_gc_action *a, int dry, int stash_keep)
{
	char size[32], used[40];
	const char *verb;

	dd_format_bytes(size, sizeof(size), (double)a->bytes);
	when(used, sizeof(used), a->last_used);
	if (a->what == DD_GC_KEPT_STASH) {
		dd_out("kept stash %s: it holds local edits (or may); drop it with `git dnadata stash drop %s`\n",
		       a->name, a->name);
		return;
	}
	if (a->what == DD_GC_CACHE) {
		verb = dry ? "would remove" : a->done ? "removed" : "failed to remove";
		if (*a->snapshot)
			dd_out("%s %zu cache file%s (%s) of snapshot %.12s (last used %s%s)\n", verb, a->files,
			       a->files == 1 ? "" : "s", size, a->snapshot, used, a->named ? "" : ", no branch names it");
		else
			dd_out("%s %zu cache file%s (%s) no cached snapshot needs\n", verb, a->files, a->files == 1 ? "" : "s",
			       size);
		return;
	}
	verb = dry ? "would drop" : a->done ? "dropped" : "failed to drop";
	if (a->what == DD_GC_STASH)
		dd_out("%s stash %s (%s, unedited; stash_keep = %d keeps newer ones)\n", verb, a->name,
		       a->bytes ? size : "size unknown", stash_keep);
	else
		dd_out("%s %s %s (%s, snapshot %.12s, last used %s%s)\n", verb, kind_word(a->what), a->name,
		       a->bytes ? size : "size unknown", *a->snapshot ? a->snapshot : "unknown", used,
		       a->named ? "" : ", no branch names it");
}

static void
print_summary(const struct dd_gc_result *r, int dry)
{
	char freed[32], cache[32], dbs[32], budget[32], pending[32];
	size_t files = 0, ndbs = 0, kept = 0;

	for (size_t i = 0; i < r->nactions; i++) {
		const struct dd_gc_action *a = &r->actions[i];
		if (a->what == DD_GC_KEPT_STASH)
			kept++;
		else if (dry || a->done)
			a->what == DD_GC_CACHE ? (files += a->files) : ndbs++;
	}
	dd_format_bytes(freed, sizeof(freed), (double)r->freed);
	dd_format_bytes(cache, sizeof(cache), (double)r->cache_bytes);
	dd_format_bytes(dbs, sizeof(dbs), (double)r->db_bytes);
	dd_format_bytes(budget, sizeof(budget), (double)r->budget);
	dd_format_bytes(pending, sizeof(pending), (double)r->pending_bytes);
	if (files + ndbs == 0)
		dd_out("gc: nothing to remove");
	else
		dd_out("gc: %s %s (%zu cache file%s, %zu database%s)", dry ? "would free" : "freed", freed, files,
		       files == 1 ? "" : "s", ndbs, ndbs == 1 ? "" : "s");
	if (r->cache_why)
		dd_out("; before: cache not examined (see the warning)");
	else
		dd_out("; before: cache %s (%s not pushed yet)", cache, pending);
	dd_out(", templates and spares %s%s, budget %s", dbs, r->db_unknown ? " (some unknown: server not reachable)" : "",
	       budget);
	if (kept)
		dd_out("; %zu stash%s with local edits kept", kept, kept == 1 ? "" : "es");
	if (r->media_dropped)
		dd_out("; %s %zu media set-aside%s no stash names", dry ? "would drop" : "dropped", r->media_dropped,
		       r->media_dropped == 1 ? "" : "s");
	if (r->failed)
		dd_out("; %zu failed", r->failed);
	dd_out("\n");
}

/* "90s", "30m", "24h", "7d", "0": seconds in *out; -1 when it is none of those. */
static int
parse_duration(const char *s, int64_t *out)
{
	char *end;
	unsigned long long v;
	int64_t unit = 1;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (!strcmp(end, "d"))
		unit = 86400;
	else if (!strcmp(end, "h"))
		unit = 3600;
	else if (!strcmp(end, "m"))
		unit = 60;
	else if (*end && strcmp(end, "s"))
		return -1;
	if (v > (1ULL << 40) / (unsigned long long)unit)
		return -1;
	*out = (int64_t)v * unit;
	return 0;
}

static void
store_line(const char *verb, const struct dd_store_gc_count *c, const char *one, const char *many, const char *more)
{
	char size[32];

	dd_format_bytes(size, sizeof(size), (double)c->bytes);
	dd_out("%s %" PRIu64 " %s (%s)%s\n", verb, c->files, c->files == 1 ? one : many, size, more);
}

/* The multipart uploads left unfinished: each one a dry run would abort, then how many. */
static void
print_uploads(const struct dd_store_gc_uploads *u, int dry, const char *grace)
{
	for (size_t i = 0; dry && i < u->n; i++) {
		char when[32] = "?";
		time_t t = (time_t)u->v[i].initiated;
		struct tm tm;

		if (gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		dd_out("would abort upload %s (initiated %s)\n", u->v[i].key, when);
	}
	if (!u->n && !u->young && !u->failed)
		return;
	dd_out("%s %zu unfinished multipart upload%s, kept %zu younger than the grace period (%s)%s\n",
	       dry ? "would abort" : "aborted", u->n, u->n == 1 ? "" : "s", u->young, grace,
	       u->failed ? "; some could not be listed or aborted (warned above)" : "");
}

static void
print_store(const struct dd_store_gc_summary *s, int dry, const char *grace)
{
	const struct dd_store_gc_result *r = &s->res;
	const char *verb = dry ? "would remove" : "removed";
	uint64_t gone = r->manifests.bytes + r->indexes.bytes + r->packs.bytes + r->repacked.bytes + r->loose.bytes;
	uint64_t files = r->manifests.files + r->indexes.files + r->packs.files + r->repacked.files + r->loose.files;
	char a[32], b[32], more[96];

	dd_out("live: %zu snapshot%s named in %zu commit%s and local records, %" PRIu64 " kept with %" PRIu64
	       " objects%s\n", s->named, s->named == 1 ? "" : "s", s->commits, s->commits == 1 ? "" : "s",
	       r->live_snapshots, r->live_objects,
	       r->missing ? "; some named snapshots are not in the store (never pushed?)" : "");
	store_line(verb, &r->manifests, "manifest", "manifests", "");
	store_line(verb, &r->indexes, "index file", "index files", "");
	store_line(verb, &r->packs, "pack", "packs", " with no live object");
	store_line(verb, &r->loose, "loose object", "loose objects", "");
	snprintf(more, sizeof(more), ", their live objects copied first into %" PRIu64 " new file%s",
		 r->written.files, r->written.files == 1 ? "" : "s");
	store_line(dry ? "would repack" : "repacked", &r->repacked, "pack", "packs", more);
	snprintf(more, sizeof(more), " younger than the grace period (%s)", grace);
	store_line("kept", &r->young, "unneeded file", "unneeded files", more);
	print_uploads(&s->uploads, dry, grace);
	dd_format_bytes(a, sizeof(a), (double)(gone > r->written.bytes ? gone - r->written.bytes : 0));
	dd_format_bytes(b, sizeof(b), (double)r->written.bytes);
	dd_out("gc --store: %s %s (%" PRIu64 " bytes) in %s: %" PRIu64 " file%s removed, %" PRIu64
	       " written (%s)%s\n", dry ? "would free" : "freed", a,
	       gone > r->written.bytes ? gone - r->written.bytes : 0, s->url, files, files == 1 ? "" : "s",
	       r->written.files, b, r->failed ? "; some removals failed (warned above): run gc --store again" : "");
}

static int
gc_store(struct dd_repo *repo, struct dd_config *cfg, int dry, const char *grace)
{
	struct dd_store_gc_opts o = { .grace = 86400, .repack_below = 50, .dry_run = dry };
	struct dd_store_gc_summary s;
	int rc = -1;

	memset(&s, 0, sizeof(s));
	if (grace && parse_duration(grace, &o.grace) < 0)
		return dd_usage_error("gc", "--grace takes a duration such as 24h, 90m or 7d ('%s' given)", grace);
	if (o.grace < 3600 && !dry) /* a push or snapshot running elsewhere would lose what it has just written */
		return dd_usage_error("gc", "--grace under 1h is only for --dry-run: a push or snapshot running "
				      "elsewhere would lose what it has just written ('%s' given)", grace);
	if (dd_workflow_store_gc(repo, cfg, &o, &s) < 0)
		goto out;
	print_store(&s, dry, grace ? grace : "24h");
	if (fflush(stdout) != 0) {
		dd_error_errno("cannot write the report");
		goto out;
	}
	rc = 0;
out:
	dd_store_gc_summary_release(&s);
	return rc;
}

static int
cmd_gc(int argc, char **argv)
{
	int dry = 0, store = 0, rc = -1;
	const char *grace = NULL;
	const struct dd_option opts[] = {
		{ DD_OPT_BOOL, 'n', "dry-run", &dry, NULL, "print what would be removed and the space it frees; remove nothing" },
		{ DD_OPT_BOOL, 0, "store", &store, NULL, "gc the store itself (not this machine's cache and copies)" },
		{ DD_OPT_STRING, 0, "grace", &grace, "DURATION",
		  "with --store: keep whatever the store got within this time (default 24h)" },
		DD_OPT_END_MARK,
	};
	struct dd_repo *repo = NULL;
	struct dd_config *cfg = NULL;
	struct dd_gc_result res;
	int n = dd_parse_options(argc, argv, opts, usage);

	if (n < 0)
		return n;
	if (n > 0)
		return dd_usage_error("gc", "gc takes no arguments ('%s' given)", argv[0]);
	if (grace && !store)
		return dd_usage_error("gc", "--grace goes with --store");
	memset(&res, 0, sizeof(res));
	if (dd_config_open(&repo, &cfg) < 0)
		return -1;
	if (store) {
		rc = gc_store(repo, cfg, dry, grace);
		goto out;
	}
	if (dd_workflow_gc(repo, cfg, dry ? DD_GC_DRY_RUN : 0, &res) < 0)
		goto out;
	for (size_t i = 0; i < res.nactions; i++) {
		print_action(&res.actions[i], dry, res.stash_keep);
		for (size_t k = 0; dd_log_verbosity() >= DD_VERBOSE && k < res.actions[i].files; k++)
			dd_out("    %s\n", res.actions[i].paths[k]);
	}
	print_summary(&res, dry);
	if (fflush(stdout) != 0) {
		dd_error_errno("cannot write the report");
		goto out;
	}
	if (res.failed) {
		dd_error("gc: %zu removal%s failed (each is named above)", res.failed, res.failed == 1 ? "" : "s");
		goto out;
	}
	rc = 0;
out:
	dd_gc_result_release(&res);
	dd_config_free(cfg);
	dd_repo_free(repo);
	return rc;
}

const struct dd_command dd_cmd_gc = { "gc", "enforce cache_budget and stash_keep on this machine; --store: gc the store",
				       cmd_gc };
