/*
 * cmd/cmd-diff.c: `git dnadata diff [<a>] [<b>]`, what changed between two
 * snapshots, from their manifests (issue 18; the work is in
 * workflow/diff.c). Default: HEAD's ref file of the active profile against
 * the work tree's; one argument: it against the work tree's. Tables added
 * and removed, row counts and sizes, a unified diff of the normalised
 * schemas, sequences, large objects, the database's encoding and locale,
 * media entries added, removed and changed; --stat for
 * one line per table plus totals; --json for scripts. Exit 0 either way,
 * like `git diff`; with --exit-code, 1 when something differs.
 *
 * JSON (stable; fields are only ever added):
 *   { "diff_version": 1, "a": { "label": str, "snapshot": str|null }, "b": { ... },
 *     "differs": bool,
 *     "tables": [ { "name", "change": "added"|"removed"|"modified", "old_rows", "new_rows",
 *                   "old_bytes", "new_bytes": int } ],
 *     "media": [ { "path", "change", "dir": bool, "what": str|null ("content", "type",
 *                  "target", "mode", "mtime"), "old_size", "new_size": int } ],
 *     "totals": { "a_tables", "b_tables", "a_rows", "b_rows", "a_bytes", "b_bytes": int },
 *     "schema": { "lines_added", "lines_removed": int, "patch": str|null (unified diff) },
 *     "sequences_changed": bool,
 *     "largeobjects_changed": bool, "largeobjects": { "old_bytes", "new_bytes": int },
 *     "locale_changed": bool, "locale": [ { "attribute": "encoding"|"lc_collate"|"lc_ctype"|
 *                  "locale_provider"|"icu_locale", "old", "new": str|null } ],
 *     "other_changed": bool (other ids, nothing above differs: parts this version does not compare) }
 */
#include "cmd/setup.h"
#include "dnadata.h"
#include "store/store.h"
#include "util/json.h"
#include "workflow/diff.h"
#include "workflow/workflow.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const usage[] = {
	"git dnadata diff [<a>] [<b>] [--stat | --json] [--exit-code] [--profile <name>]",
	"",
	"Shows what changed between two snapshots, from their manifests (nothing is",
	"restored): tables added and removed, row counts and sizes, a unified diff of the",
	"normalised schemas, sequences, large objects, the database's encoding and",
	"locale, and media files added, removed and changed.",
	"Default: the profile's ref file at HEAD against the work tree's; with one",
	"argument, that against the work tree's. <a> and <b> are each a revision (main,",
	"HEAD~3, a tag: the profile's ref file there), <revision>:<profile> (main:customer1),",
	"a ref file's path, or a snapshot id (or a unique prefix of 4+ digits).",
	"",
	"Examples:",
	"  git dnadata diff",
	"  git dnadata diff HEAD~1 HEAD --stat",
	"  git dnadata diff main:customer1 feature:customer1",
	"  git dnadata diff 3f2a9c1e 8b1c0d9e",
	"  git dnadata diff main --exit-code || echo \"the data changed since main\"",
	"  git dnadata diff HEAD~1 HEAD --json | jq '.schema.lines_added'",
	NULL,
};

/* Text from a manifest, for the terminal: escaped (util/log.h), but tabs and newlines kept. */
static void
put_text(struct dd_buf *out, const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t k = i;
		while (k < len && s[k] != '\n' && s[k] != '\t')
			k++;
		dd_buf_put_printable(out, s + i, k - i);
		if (k < len)
			dd_buf_putc(out, s[k++]);
		i = k;
	}
}

static void
side_text(struct dd_buf *b, const struct dd_diff_side *s)
{
	dd_buf_put_printable(b, s->label, strlen(s->label));
	if (s->id[0] && strncmp(s->label, "snapshot ", 9))
		dd_buf_printf(b, " (%.12s)", s->id);
	else if (!s->id[0])
		dd_buf_puts(b, " (no snapshot)");
}

static char *
sizes(uint64_t a, uint64_t b)
{
	char x[32], y[32];

	dd_format_bytes(x, sizeof(x), (double)a);
	dd_format_bytes(y, sizeof(y), (double)b);
	return a == b ? dd_strdup(x) : dd_asprintf("%s -> %s", x, y);
}

/* "10 -> 25 rows (+15)" or "10 rows" */
static void
rows_text(struct dd_buf *b, uint64_t a, uint64_t n)
{
	if (a == n)
		dd_buf_printf(b, "%" PRIu64 " row%s", a, a == 1 ? "" : "s");
	else
		dd_buf_printf(b, "%" PRIu64 " -> %" PRIu64 " rows (%s%" PRId64 ")", a, n, n > a ? "+" : "",
			      (int64_t)(n - a));
}

static void
table_text(struct dd_buf *b, const struct dd_diff_table *t)
{
	char *sz;

	if (t->change == DD_DIFF_ADDED) {
		sz = sizes(t->new_bytes, t->new_bytes);
		rows_text(b, t->new_rows, t->new_rows);
		dd_buf_printf(b, ", %s (added)", sz);
	} else if (t->change == DD_DIFF_REMOVED) {
		sz = sizes(t->old_bytes, t->old_bytes);
		rows_text(b, t->old_rows, t->old_rows);
		dd_buf_printf(b, ", %s (removed)", sz);
	} else {
		sz = sizes(t->old_bytes, t->new_bytes);
		rows_text(b, t->old_rows, t->new_rows);
		dd_buf_printf(b, ", %s%s", sz, t->old_rows == t->new_rows ? ", rows changed" : "");
	}
	free(sz);
}

static void
print_tables(struct dd_buf *o, const struct dd_diff *d)
{
	if (!d->ntables)
		return;
	dd_buf_puts(o, "tables:\n");
	for (size_t i = 0; i < d->ntables; i++) {
		dd_buf_printf(o, "  %c ", d->tables[i].change);
		dd_buf_put_printable(o, d->tables[i].name, strlen(d->tables[i].name));
		dd_buf_puts(o, ": ");
		table_text(o, &d->tables[i]);
		dd_buf_putc(o, '\n');
	}
}

static void
print_media(struct dd_buf *o, const struct dd_diff *d)
{
	if (!d->nmedia)
		return;
	dd_buf_puts(o, "media:\n");
	for (size_t i = 0; i < d->nmedia; i++) {
		const struct dd_diff_media *m = &d->media[i];
		char *sz = NULL;
		dd_buf_printf(o, "  %c ", m->change);
		dd_buf_put_printable(o, m->path, strlen(m->path));
		if (m->dir)
			dd_buf_putc(o, '/');
		if (m->change == DD_DIFF_MODIFIED && !strcmp(m->what, "content"))
			dd_buf_printf(o, ": content, %s", sz = sizes(m->old_size, m->new_size));
		else if (m->change == DD_DIFF_MODIFIED)
			dd_buf_printf(o, ": %s", m->what);
		else if (!m->dir)
			dd_buf_printf(o, " (%s)", sz = sizes(m->change == DD_DIFF_ADDED ? m->new_size : m->old_size,
							 m->change == DD_DIFF_ADDED ? m->new_size : m->old_size));
		dd_buf_putc(o, '\n');
		free(sz);
	}
}

/* "encoding UTF8 -> LATIN1, lc_collate C -> en_US.UTF-8" */
static void
locale_text(struct dd_buf *o, const struct dd_diff *d)
{
	for (size_t i = 0; i < d->nlocale; i++) {
		const struct dd_diff_attr *at = &d->locale[i];
		dd_buf_printf(o, "%s%s ", i ? ", " : "", at->key);
		if (at->old_value)
			dd_buf_put_printable(o, at->old_value, strlen(at->old_value));
		else
			dd_buf_puts(o, "(none)");
		dd_buf_puts(o, " -> ");
		if (at->new_value)
			dd_buf_put_printable(o, at->new_value, strlen(at->new_value));
		else
			dd_buf_puts(o, "(none)");
	}
}

static const char other_text[] =
	"differs only in parts this version does not compare (another snapshot id; the tables, schema, sequences, "
	"large objects, encoding, locale and media are the same)\n";

static void
print_full(struct dd_buf *o, const struct dd_diff *d)
{
	char *sz;

	if (d->other_changed)
		dd_buf_puts(o, other_text);
	if (d->nlocale) {
		dd_buf_puts(o, "locale: ");
		locale_text(o, d);
		dd_buf_putc(o, '\n');
	}
	print_tables(o, d);
	if (d->sequences_changed)
		dd_buf_puts(o, "sequences: values changed\n");
	if (d->largeobjects_changed) {
		dd_buf_printf(o, "large objects: changed, %s\n", sz = sizes(d->a_lo_bytes, d->b_lo_bytes));
		free(sz);
	}
	if (d->schema.len) {
		dd_buf_puts(o, "schema (normalised):\n");
		put_text(o, d->schema.ptr, d->schema.len);
	}
	print_media(o, d);
}

static void
media_counts(const struct dd_diff *d, size_t n[3])
{
	n[0] = n[1] = n[2] = 0;
	for (size_t i = 0; i < d->nmedia; i++)
		n[d->media[i].change == DD_DIFF_ADDED ? 0 : d->media[i].change == DD_DIFF_REMOVED ? 1 : 2]++;
}

static void
print_stat(struct dd_buf *o, const struct dd_diff *d)
{
	size_t w = 9, m[3], added = 0, removed = 0;
	char *sz;

	if (d->largeobjects_changed)
		w = strlen("large objects");
	for (size_t i = 0; i < d->ntables; i++)
		if (strlen(d->tables[i].name) > w)
			w = strlen(d->tables[i].name) > 48 ? 48 : strlen(d->tables[i].name);
	if (d->other_changed)
		dd_buf_puts(o, other_text);
	if (d->nlocale) {
		dd_buf_printf(o, " %-*s | ", (int)w, "locale");
		locale_text(o, d);
		dd_buf_putc(o, '\n');
	}
	for (size_t i = 0; i < d->ntables; i++) {
		added += d->tables[i].change == DD_DIFF_ADDED;
		removed += d->tables[i].change == DD_DIFF_REMOVED;
		dd_buf_putc(o, ' ');
		dd_buf_put_printable(o, d->tables[i].name, strlen(d->tables[i].name));
		dd_buf_printf(o, "%*s | ", (int)(w - (strlen(d->tables[i].name) < w ? strlen(d->tables[i].name) : w)), "");
		table_text(o, &d->tables[i]);
		dd_buf_putc(o, '\n');
	}
	if (d->schema.len)
		dd_buf_printf(o, " %-*s | %zu line%s added, %zu removed\n", (int)w, "schema", d->schema_added,
			      d->schema_added == 1 ? "" : "s", d->schema_removed);
	if (d->sequences_changed)
		dd_buf_printf(o, " %-*s | values changed\n", (int)w, "sequences");
	if (d->largeobjects_changed) {
		dd_buf_printf(o, " %-*s | changed, %s\n", (int)w, "large objects", sz = sizes(d->a_lo_bytes, d->b_lo_bytes));
		free(sz);
	}
	media_counts(d, m);
	if (d->nmedia)
		dd_buf_printf(o, " %-*s | %zu added, %zu removed, %zu changed\n", (int)w, "media", m[0], m[1], m[2]);
	dd_buf_printf(o, " %zu table%s changed (%zu added, %zu removed); ", d->ntables, d->ntables == 1 ? "" : "s",
		      added, removed);
	rows_text(o, d->a_rows, d->b_rows);
	dd_buf_printf(o, "; %s\n", sz = sizes(d->a_bytes, d->b_bytes));
	free(sz);
}

static int
differs(const struct dd_diff *d)
{
	return !d->same && (d->ntables || d->schema.len || d->sequences_changed || d->nmedia ||
			    d->largeobjects_changed || d->nlocale || d->other_changed);
}

static void
print_diff(const struct dd_diff *d, int stat)
{
	struct dd_buf o = DD_BUF_INIT;

	dd_buf_puts(&o, "diff ");
	side_text(&o, &d->a);
	dd_buf_puts(&o, " -> ");
	side_text(&o, &d->b);
	dd_buf_putc(&o, '\n');
	if (!differs(d))
		dd_buf_printf(&o, "no change%s\n", d->same ? "" : " (another snapshot id; the same tables, schema, sequences, large objects, locale and media)");
	else if (stat)
		print_stat(&o, d);
	else
		print_full(&o, d);
	fwrite(o.ptr, 1, o.len, stdout);
	dd_buf_release(&o);
}

static const char *
change_name(int change)
{
	return change == DD_DIFF_ADDED ? "added" : change == DD_DIFF_REMOVED ? "removed" : "modified";
}

static void
json_side(struct dd_json *j, const char *key, const struct dd_diff_side *s)
{
	dd_json_object_begin(j, key);
	dd_json_str(j, "label", s->label);
	dd_json_str(j, "snapshot", s->id[0] ? s->id : NULL);
	dd_json_object_end(j);
}

static void
json_lists(struct dd_json *j, const struct dd_diff *d)
{
	dd_json_array_begin(j, "tables");
	for (size_t i = 0; i < d->ntables; i++) {
		const struct dd_diff_table *t = &d->tables[i];
		dd_json_object_begin(j, NULL);
		dd_json_str(j, "name", t->name);
		dd_json_str(j, "change", change_name(t->change));
		dd_json_int(j, "old_rows", (int64_t)t->old_rows);
		dd_json_int(j, "new_rows", (int64_t)t->new_rows);
		dd_json_int(j, "old_bytes", (int64_t)t->old_bytes);
		dd_json_int(j, "new_bytes", (int64_t)t->new_bytes);
		dd_json_object_end(j);
	}
	dd_json_array_end(j);
	dd_json_array_begin(j, "media");
	for (size_t i = 0; i < d->nmedia; i++) {
		const struct dd_diff_media *m = &d->media[i];
		dd_json_object_begin(j, NULL);
		dd_json_str(j, "path", m->path);
		dd_json_str(j, "change", change_name(m->change));
		dd_json_bool(j, "dir", m->dir);
		dd_json_str(j, "what", m->what);
		dd_json_int(j, "old_size", (int64_t)m->old_size);
		dd_json_int(j, "new_size", (int64_t)m->new_size);
		dd_json_object_end(j);
	}
	dd_json_array_end(j);
}

/* The fields added after the first version: large objects, locale, other_changed. */
static void
json_more(struct dd_json *j, const struct dd_diff *d)
{
	dd_json_bool(j, "largeobjects_changed", d->largeobjects_changed);
	dd_json_object_begin(j, "largeobjects");
	dd_json_int(j, "old_bytes", (int64_t)d->a_lo_bytes);
	dd_json_int(j, "new_bytes", (int64_t)d->b_lo_bytes);
	dd_json_object_end(j);
	dd_json_bool(j, "locale_changed", d->nlocale > 0);
	dd_json_array_begin(j, "locale");
	for (size_t i = 0; i < d->nlocale; i++) {
		dd_json_object_begin(j, NULL);
		dd_json_str(j, "attribute", d->locale[i].key);
		dd_json_str(j, "old", d->locale[i].old_value);
		dd_json_str(j, "new", d->locale[i].new_value);
		dd_json_object_end(j);
	}
	dd_json_array_end(j);
	dd_json_bool(j, "other_changed", d->other_changed);
}

/* The JSON shape is at the top of this file. */
static void
print_json(const struct dd_diff *d)
{
	struct dd_buf o = DD_BUF_INIT;
	struct dd_json j;

	dd_json_init(&j, &o);
	dd_json_object_begin(&j, NULL);
	dd_json_int(&j, "diff_version", 1);
	json_side(&j, "a", &d->a);
	json_side(&j, "b", &d->b);
	dd_json_bool(&j, "differs", differs(d));
	json_lists(&j, d);
	dd_json_object_begin(&j, "totals");
	dd_json_int(&j, "a_tables", (int64_t)d->a_tables);
	dd_json_int(&j, "b_tables", (int64_t)d->b_tables);
	dd_json_int(&j, "a_rows", (int64_t)d->a_rows);
	dd_json_int(&j, "b_rows", (int64_t)d->b_rows);
	dd_json_int(&j, "a_bytes", (int64_t)d->a_bytes);
	dd_json_int(&j, "b_bytes", (int64_t)d->b_bytes);
	dd_json_object_end(&j);
	dd_json_object_begin(&j, "schema");
	dd_json_int(&j, "lines_added", (int64_t)d->schema_added);
	dd_json_int(&j, "lines_removed", (int64_t)d->schema_removed);
	if (d->schema.len)
		dd_json_strn(&j, "patch", d->schema.ptr, d->schema.len);
	else
		dd_json_null(&j, "patch");
	dd_json_object_end(&j);
	dd_json_bool(&j, "sequences_changed", d->sequences_changed);
	json_more(&j, d);
	dd_json_object_end(&j);
	dd_buf_putc(&o, '\n');
	fwrite(o.ptr, 1, o.len, stdout);
	dd_buf_release(&o);
}

static int
cmd_diff(int argc, char **argv)
{
	int stat = 0, exit_code = 0, json = 0, n, rc = -1;
	const char *profile = NULL;
	const struct dd_option opts[] = {
		{ DD_OPT_BOOL, 0, "stat", &stat, NULL, "one line per changed table, plus totals" },
		{ DD_OPT_BOOL, 0, "exit-code", &exit_code, NULL, "exit 1 when the snapshots differ" },
		{ DD_OPT_BOOL, 0, "json", &json, NULL, "print one JSON object on stdout" },
		{ DD_OPT_STRING, 'p', "profile", &profile, "name", "the profile whose ref files are meant (default: active)" },
		DD_OPT_END_MARK,
	};
	struct dd_repo *repo = NULL;
	struct dd_config *cfg = NULL;
	const struct dd_profile *p;
	struct dd_store *st = NULL;
	struct dd_diff d;

	memset(&d, 0, sizeof(d));
	if ((n = dd_parse_options(argc, argv, opts, usage)) < 0)
		return n;
	if (n > 2)
		return dd_usage_error("diff", "too many arguments ('%s')", argv[2]);
	if (dd_config_open(&repo, &cfg) < 0)
		return -1;
	if (!(p = dd_config_profile(cfg, profile)) || dd_workflow_open_store_reading(&st, cfg, repo) < 0)
		goto out;
	if (dd_diff_resolve(&d.a, repo, st, p->name, n ? argv[0] : "HEAD") < 0 ||
	    dd_diff_resolve(&d.b, repo, st, p->name, n > 1 ? argv[1] : NULL) < 0)
		goto out;
	if (dd_diff_compute(&d, st) < 0)
		goto out;
	if (json)
		print_json(&d);
	else
		print_diff(&d, stat);
	rc = fflush(stdout) == 0 ? 0 : dd_error_errno("cannot write to stdout");
	if (rc == 0 && exit_code && differs(&d))
		rc = DD_EDIFFERS;
out:
	dd_diff_release(&d);
	dd_store_free(st);
	dd_config_free(cfg);
	dd_repo_free(repo);
	return rc;
}

const struct dd_command dd_cmd_diff = { "diff", "what changed between two snapshots, from their manifests", cmd_diff };
