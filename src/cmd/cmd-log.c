/*
 * cmd/cmd-log.c: `git dnadata log [<profile>]`, the history of a profile's
 * ref file, like `git log` for data (issue 18).
 *
 * Every commit reachable from HEAD that changed .dnadata/refs/<profile>
 * (git/history.c: the file differs from every parent's), newest first, with
 * the snapshot it named and what the ref's informational lines say of it
 * (tables, rows, bytes, media files). Nothing but git objects is read: no
 * store, no database, no key. A ref file that does not parse in some old
 * commit is shown as unreadable, not an error: history cannot be fixed.
 *
 * JSON (stable; fields are only ever added):
 *   { "log_version": 1, "profile": str,
 *     "entries": [ { "commit": str (40 hex), "author": str, "email": str,
 *                    "date": str (ISO 8601 with the author's offset), "time": int (unix),
 *                    "summary": str, "removed": bool (the commit removed the ref file),
 *                    "snapshot": str|null, "inline": bool (an inline profile's ref: the id of
 *                    its files in git), "error": str|null (the ref file does not parse),
 *                    "created": str|null, "tables", "rows", "bytes", "media_files",
 *                    "media_bytes": int|null (from the ref file; null: not recorded),
 *                    "masked": str|null (the ref's "masked" line: "<hash12> (N rules)", issue 21) } ] }
 */
#include "cmd/setup.h"
#include "dnadata.h"
#include "git/history.h"
#include "git/ref.h"
#include "util/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const usage[] = {
	"git dnadata log [<profile>] [-n <count>] [--oneline] [--json]",
	"",
	"Shows the history of the profile's ref file (default: the active profile): each",
	"commit that changed .dnadata/refs/<profile>, newest first, with its date, author,",
	"the snapshot it names and that snapshot's tables, rows, bytes and media files (as",
	"the ref file records them). Reads git history only: no store, no database.",
	"",
	"Examples:",
	"  git dnadata log",
	"  git dnadata log customer1 -n 5",
	"  git dnadata log --oneline",
	"  git dnadata log --json | jq -r '.entries[0].snapshot'",
	NULL,
};

struct log_state {
	const char *profile;
	int max, shown, oneline;
	struct dd_json *json; /* NULL: human output */
};

/* A ref info line as a decimal integer: 1 with *v, 0 when absent or not a plain decimal. */
static int
info_num(const struct dd_ref *ref, const char *key, uint64_t *v)
{
	const char *s = ref ? dd_ref_get_info(ref, key) : NULL;
	char *end;

	if (!s || !*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 19)
		return 0;
	*v = strtoull(s, &end, 10);
	return 1;
}

/* "2026-11-30 01:40:12 +0000" (iso 0) or "2026-11-30T01:40:12+00:00" (iso 1), in the signature's offset. */
static void
format_date(char *buf, size_t len, const git_time *when, int iso)
{
	time_t t = (time_t)(when->time + (git_time_t)when->offset * 60);
	int off = when->offset < 0 ? -when->offset : when->offset;
	struct tm tm;
	char day[32];

	gmtime_r(&t, &tm);
	strftime(day, sizeof(day), iso ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf, len, iso ? "%s%c%02d:%02d" : "%s %c%02d%02d", day, when->offset < 0 ? '-' : '+', off / 60,
		 off % 60);
}

/* "12 tables, 3400 rows, 1.2 MiB; 3 media files (2.0 KiB)": what the ref file records. */
static void
describe(struct dd_buf *out, const struct dd_ref *ref)
{
	uint64_t v;
	char size[32];
	size_t start = out->len;

	if (info_num(ref, "tables", &v))
		dd_buf_printf(out, "%" PRIu64 " table%s", v, v == 1 ? "" : "s");
	if (info_num(ref, "rows", &v))
		dd_buf_printf(out, "%s%" PRIu64 " row%s", out->len > start ? ", " : "", v, v == 1 ? "" : "s");
	if (info_num(ref, "bytes", &v)) {
		dd_format_bytes(size, sizeof(size), (double)v);
		dd_buf_printf(out, "%s%s", out->len > start ? ", " : "", size);
	}
	if (info_num(ref, "media_files", &v)) {
		dd_buf_printf(out, "%s%" PRIu64 " media file%s", out->len > start ? "; " : "", v, v == 1 ? "" : "s");
		if (info_num(ref, "media_bytes", &v)) {
			dd_format_bytes(size, sizeof(size), (double)v);
			dd_buf_printf(out, " (%s)", size);
		}
	}
	if (ref && dd_ref_get_info(ref, "masked")) /* issue 21: "masked 3f2a9c01b7de (5 rules)" */
		dd_buf_printf(out, "%smasked %s", out->len > start ? "; " : "", dd_ref_get_info(ref, "masked"));
}

static void
json_num(struct dd_json *j, const struct dd_ref *ref, const char *key)
{
	uint64_t v;

	if (info_num(ref, key, &v) && v <= INT64_MAX)
		dd_json_int(j, key, (int64_t)v);
	else
		dd_json_null(j, key);
}

static void
print_json_entry(struct dd_json *j, git_commit *c, const struct dd_ref *ref, int removed, const char *why)
{
	const git_signature *a = git_commit_author(c);
	char hex[GIT_OID_HEXSZ + 1], date[64];

	git_oid_tostr(hex, sizeof(hex), git_commit_id(c));
	format_date(date, sizeof(date), &a->when, 1);
	dd_json_object_begin(j, NULL);
	dd_json_str(j, "commit", hex);
	dd_json_str(j, "author", a->name);
	dd_json_str(j, "email", a->email);
	dd_json_str(j, "date", date);
	dd_json_int(j, "time", (int64_t)a->when.time);
	dd_json_str(j, "summary", git_commit_summary(c));
	dd_json_bool(j, "removed", removed);
	dd_json_str(j, "snapshot", ref ? ref->snapshot : NULL);
	dd_json_bool(j, "inline", ref && dd_ref_is_inline(ref));
	dd_json_str(j, "error", why);
	dd_json_str(j, "created", ref ? dd_ref_get_info(ref, "created") : NULL);
	json_num(j, ref, "tables");
	json_num(j, ref, "rows");
	json_num(j, ref, "bytes");
	json_num(j, ref, "media_files");
	json_num(j, ref, "media_bytes");
	dd_json_str(j, "masked", ref ? dd_ref_get_info(ref, "masked") : NULL);
	dd_json_object_end(j);
}

static void
print_human_entry(const struct log_state *ls, git_commit *c, const struct dd_ref *ref, int removed, const char *why)
{
	const git_signature *a = git_commit_author(c);
	struct dd_buf what = DD_BUF_INIT;
	char hex[GIT_OID_HEXSZ + 1], date[64];
	const char *summary = git_commit_summary(c);

	git_oid_tostr(hex, sizeof(hex), git_commit_id(c));
	format_date(date, sizeof(date), &a->when, 0);
	describe(&what, ref);
	if (ls->oneline) {
		dd_out("%.12s %.10s %-12.12s %s%s%s\n", hex, date,
		       ref ? ref->snapshot : removed ? "(removed)" : "(unreadable)", dd_buf_cstr(&what),
		       what.len ? "  " : "", summary ? summary : "");
	} else {
		dd_out("%scommit %.12s\nAuthor:   %s <%s>\nDate:     %s\n", ls->shown ? "\n" : "", hex, a->name,
		       a->email, date);
		if (ref)
			dd_out("Snapshot: %.12s%s%s%s\n", ref->snapshot, dd_ref_is_inline(ref) ? " (inline)" : "",
			       what.len ? "  " : "", dd_buf_cstr(&what));
		else if (removed)
			dd_out("Snapshot: none (the ref file was removed)\n");
		else
			dd_out("Snapshot: unreadable (%s)\n", why);
		dd_out("\n    %s\n", summary ? summary : "");
	}
	dd_buf_release(&what);
}

static int
each_change(const struct dd_history_change *ch, void *arg)
{
	struct log_state *ls = arg;
	struct dd_ref *ref = NULL;
	char hex[GIT_OID_HEXSZ + 1], *disp;
	const char *why = NULL;

	if (ls->max >= 0 && ls->shown >= ls->max)
		return 1; /* enough: stop the walk */
	git_oid_tostr(hex, sizeof(hex), git_commit_id(ch->commit));
	disp = dd_asprintf("%.12s:.dnadata/refs/%s", hex, ls->profile);
	if (ch->blob && dd_ref_parse(&ref, ch->blob, ch->len, disp) < 0) {
		why = dd_error_last();
		ref = NULL;
	}
	if (ls->json)
		print_json_entry(ls->json, ch->commit, ref, !ch->blob, why);
	else
		print_human_entry(ls, ch->commit, ref, !ch->blob, why);
	dd_error_clear();
	dd_ref_free(ref);
	free(disp);
	ls->shown++;
	return 0;
}

static int
cmd_log(int argc, char **argv)
{
	int json = 0, oneline = 0, max = -1, rc;
	const struct dd_option opts[] = {
		{ DD_OPT_INT, 'n', "max-count", &max, "count", "show at most <count> commits" },
		{ DD_OPT_BOOL, 0, "oneline", &oneline, NULL, "one line per commit" },
		{ DD_OPT_BOOL, 0, "json", &json, NULL, "print one JSON object on stdout" },
		DD_OPT_END_MARK,
	};
	struct dd_cmd_setup s;
	struct log_state ls;
	struct dd_buf out = DD_BUF_INIT;
	struct dd_json j;
	char *rel = NULL;

	if ((rc = dd_cmd_setup(&s, argc, argv, opts, usage, DD_CMD_PROFILE_OPTIONAL)) != 0)
		return rc;
	memset(&ls, 0, sizeof(ls));
	ls.profile = s.profile->name;
	ls.max = max;
	ls.oneline = oneline;
	if (json) {
		dd_json_init(&j, &out);
		dd_json_object_begin(&j, NULL);
		dd_json_int(&j, "log_version", 1);
		dd_json_str(&j, "profile", ls.profile);
		dd_json_array_begin(&j, "entries");
		ls.json = &j;
	}
	rel = dd_ref_path(ls.profile);
	rc = dd_history_file_log(s.repo, NULL, rel, each_change, &ls);
	if (rc < 0) {
		dd_error_wrap("reading the history of %s", rel);
		goto out;
	}
	rc = 0;
	if (json) {
		dd_json_array_end(&j);
		dd_json_object_end(&j);
		dd_buf_putc(&out, '\n');
		fwrite(out.ptr, 1, out.len, stdout);
	} else if (!ls.shown && max != 0) {
		dd_out("no history: no commit of this branch changed %s\n", rel);
	}
	if (fflush(stdout) != 0)
		rc = dd_error_errno("cannot write to stdout");
out:
	free(rel);
	dd_buf_release(&out);
	dd_cmd_setup_free(&s);
	return rc;
}

const struct dd_command dd_cmd_log = { "log", "history of a profile's snapshots from git history", cmd_log };
