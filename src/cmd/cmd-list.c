/*
 * cmd/cmd-list.c: `git dnadata list`, the snapshots this clone can see
 * (issue 18): those whose manifest the local cache holds and those in the
 * store, each with its size, creation time and profile (from its manifest),
 * where it is, and which ref files name it at the tip of which local
 * branches and tags (and in the work tree, when that differs from HEAD).
 *
 * Read-only: the store is asked with one listing plus one read per manifest
 * the cache lacks, and what is read is not kept in the cache
 * (dd_snapshot_peek), so listing never changes where a snapshot is. When the
 * store cannot be reached, the cache is listed with a note. Branches are
 * scanned at their tips only, each distinct .dnadata/refs tree parsed once
 * (git/history.c), so a repository with a thousand branches stays fast. A
 * snapshot a ref names that is in neither place is listed as "missing".
 * Inline profiles' refs are left out: their data is in git, not the store.
 *
 * JSON (stable; fields are only ever added):
 *   { "list_version": 1, "store_listed": bool, "store_error": str|null,
 *     "snapshots": [ { "id": str, "where": "cache"|"store"|"both"|"missing"|"unknown"
 *                        ("unknown": not in the cache, and the store could not be asked),
 *                      "in_cache": bool, "in_store": bool|null,
 *                      "profile": str|null, "created": str|null (from the manifest),
 *                      "bytes": int|null (the database streams' bytes), "tables": int|null,
 *                      "rows": int|null, "media_entries": int|null (null: no media folder),
 *                      "error": str|null (the manifest could not be read),
 *                      "named_by": [ { "ref": str|null ("refs/heads/main"; null: the work tree),
 *                                      "profile": str } ] } ] }
 * Order: newest first (by created), then by id; snapshots without a readable manifest last.
 */
#include "cmd/setup.h"
#include "dnadata.h"
#include "git/history.h"
#include "git/ref.h"
#include "store/store.h"
#include "util/json.h"
#include "workflow/workflow.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const usage[] = {
	"git dnadata list [--json]",
	"",
	"Lists the snapshots in the local cache and in the store, newest first: id, when it",
	"was taken, its profile, its size (the database's bytes), where it is (cache, store,",
	"both; \"missing\" when a ref names it but neither has it) and which ref files name it",
	"at the tip of local branches and tags (<branch>:<profile>, tags/<tag>:<profile>).",
	"Works offline: when the store cannot be reached, the local cache is listed.",
	"",
	"Examples:",
	"  git dnadata list",
	"  git dnadata list --json | jq -r '.snapshots[] | select(.where == \"cache\") | .id'",
	NULL,
};

struct name {
	char *ref; /* refs/heads/..., refs/tags/...; NULL: the work tree */
	char *profile;
};

struct item {
	char id[DD_ID_HEX_SIZE];
	unsigned where;           /* DD_WHERE_* */
	char *profile, *created;  /* from the manifest */
	int have_stats;
	uint64_t bytes, tables, rows;
	int64_t media;            /* entries of the media listing; -1: none */
	char *error;              /* the manifest could not be read */
	struct name *names;
	size_t nnames;
};

struct list {
	struct item *items;
	size_t n;
	char *store_why; /* the store was not listed: why */
};

static struct item *
find_item(struct list *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->items[i].id, id))
			return &l->items[i];
	return NULL;
}

static struct item *
get_item(struct list *l, const char *id)
{
	struct item *it = find_item(l, id);

	if (it)
		return it;
	l->items = dd_realloc(l->items, (l->n + 1) * sizeof(*l->items));
	it = &l->items[l->n++];
	memset(it, 0, sizeof(*it));
	snprintf(it->id, sizeof(it->id), "%s", id);
	it->media = -1;
	return it;
}

static void
add_name(struct item *it, const char *ref, const char *profile)
{
	it->names = dd_realloc(it->names, (it->nnames + 1) * sizeof(*it->names));
	it->names[it->nnames].ref = ref ? dd_strdup(ref) : NULL;
	it->names[it->nnames++].profile = dd_strdup(profile);
}

static int
each_named(const struct dd_history_named *nm, void *arg)
{
	struct list *l = arg;

	if (!nm->snapshot) {
		dd_warn("%s", nm->error);
		return 0;
	}
	if (nm->is_inline)
		return 0; /* its data is in git (.dnadata/inline/), never in the cache or the store */
	add_name(get_item(l, nm->snapshot), nm->ref, nm->profile);
	return 0;
}

/* Ref files of the work tree that differ from HEAD's (a snapshot not committed yet). */
static void
worktree_names(struct list *l, struct dd_repo *repo, const struct dd_config *cfg)
{
	for (size_t i = 0; i < cfg->nprofiles; i++) {
		const char *name = cfg->profiles[i].name;
		char *rel = dd_ref_path(name), *abs = dd_repo_path(repo, rel);
		struct dd_ref *cur = NULL, *head = NULL;
		struct dd_buf text = DD_BUF_INIT;
		int r = dd_ref_read_named(&cur, abs, rel);

		if (r < 0)
			dd_warn("%s", dd_error_last());
		if (r == 0 && dd_repo_read_at(&text, repo, "HEAD", rel) == 0 &&
		    dd_ref_parse(&head, text.ptr, text.len, rel) < 0)
			head = NULL;
		if (r == 0 && !dd_ref_is_inline(cur) && (!head || strcmp(head->snapshot, cur->snapshot)))
			add_name(get_item(l, cur->snapshot), NULL, name);
		dd_error_clear();
		dd_ref_free(cur);
		dd_ref_free(head);
		dd_buf_release(&text);
		free(abs);
		free(rel);
	}
}

/* Size, tables and rows of a manifest's database streams; entries of its media listing. */
static void
stats_of(struct item *it, const struct dd_snapshot *s)
{
	for (size_t i = 0; i < dd_snapshot_count(s); i++) {
		const struct dd_stream_info *si = dd_snapshot_stream(s, i);
		const char *rows = dd_stream_attr(si, "rows"), *entries = dd_stream_attr(si, "entries");
		if (dd_stream_attr(si, "listing")) {
			if (!strcmp(dd_stream_name(si), "media") && entries)
				it->media = strtoll(entries, NULL, 10);
			continue;
		}
		it->bytes += dd_stream_size(si);
		if (!strncmp(dd_stream_name(si), "data/", 5)) {
			it->tables++;
			it->rows += rows ? strtoull(rows, NULL, 10) : 0;
		}
	}
	it->have_stats = 1;
}

static void
read_manifests(struct list *l, struct dd_store *st)
{
	for (size_t i = 0; i < l->n; i++) {
		struct item *it = &l->items[i];
		struct dd_snapshot *s = NULL;
		const char *v;
		if (!it->where)
			continue;
		if (dd_snapshot_peek(&s, st, it->id) != 0) {
			it->error = dd_strdup(dd_error_last() ? dd_error_last() : "cannot read its manifest");
			dd_error_clear();
			continue;
		}
		if ((v = dd_snapshot_meta(s, "profile")))
			it->profile = dd_strdup(v);
		if ((v = dd_snapshot_meta(s, "created")))
			it->created = dd_strdup(v);
		stats_of(it, s);
		dd_snapshot_free(s);
	}
}

/* Newest first; no created time last; then by id. */
static int
item_cmp(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	int c;

	if (!x->created != !y->created)
		return x->created ? -1 : 1;
	if (x->created && (c = strcmp(y->created, x->created)))
		return c;
	return strcmp(x->id, y->id);
}

static int
name_cmp(const void *a, const void *b)
{
	const struct name *x = a, *y = b;
	int c;

	if (!x->ref != !y->ref)
		return x->ref ? 1 : -1;
	if (x->ref && (c = strcmp(x->ref, y->ref)))
		return c;
	return strcmp(x->profile, y->profile);
}

static int
collect(struct list *l, struct dd_repo *repo, const struct dd_config *cfg)
{
	struct dd_store *st = NULL;
	struct dd_snapshot_where *w = NULL;
	size_t nw = 0;
	int rc = -1;

	if (dd_workflow_open_store_reading(&st, cfg, repo) < 0)
		return -1;
	if (dd_store_list_where(st, &w, &nw, &l->store_why) < 0)
		goto out;
	for (size_t i = 0; i < nw; i++)
		get_item(l, w[i].id)->where = w[i].where;
	if (dd_history_each_named(repo, each_named, l) < 0)
		goto out;
	worktree_names(l, repo, cfg);
	read_manifests(l, st);
	if (l->n)
		qsort(l->items, l->n, sizeof(*l->items), item_cmp);
	for (size_t i = 0; i < l->n; i++)
		if (l->items[i].nnames)
			qsort(l->items[i].names, l->items[i].nnames, sizeof(struct name), name_cmp);
	rc = 0;
out:
	free(w);
	dd_store_free(st);
	return rc;
}

static const char *
where_text(const struct list *l, const struct item *it)
{
	switch (it->where) {
	case DD_WHERE_CACHE | DD_WHERE_STORE:
		return "both";
	case DD_WHERE_CACHE:
		return "cache";
	case DD_WHERE_STORE:
		return "store";
	default:
		return l->store_why ? "unknown" : "missing";
	}
}

/* "main:clean", "tags/v1:clean", "(work tree):clean" */
static void
name_text(struct dd_buf *b, const struct name *nm)
{
	const char *ref = nm->ref;

	if (!ref)
		ref = "(work tree)";
	else if (!strncmp(ref, "refs/heads/", 11))
		ref += 11;
	else if (!strncmp(ref, "refs/", 5))
		ref += 5;
	dd_buf_printf(b, "%s%s:%s", b->len ? ", " : "", ref, nm->profile);
}

static void
print_human(const struct list *l)
{
	if (l->n)
		dd_out("%-12s  %-20s  %-12s  %10s  %-7s  %s\n", "SNAPSHOT", "CREATED", "PROFILE", "SIZE", "WHERE",
		       "NAMED BY");
	for (size_t i = 0; i < l->n; i++) {
		const struct item *it = &l->items[i];
		struct dd_buf names = DD_BUF_INIT;
		char size[32] = "?";
		for (size_t k = 0; k < it->nnames; k++)
			name_text(&names, &it->names[k]);
		if (it->have_stats)
			dd_format_bytes(size, sizeof(size), (double)it->bytes);
		dd_out("%-12.12s  %-20s  %-12s  %10s  %-7s  %s\n", it->id, it->created ? it->created : "?",
		       it->profile ? it->profile : "?", size, where_text(l, it), names.len ? dd_buf_cstr(&names) : "-");
		if (it->error && it->where)
			dd_out("  (%s)\n", it->error);
		dd_buf_release(&names);
	}
	if (!l->n)
		dd_out("no snapshots in the local cache%s\n", l->store_why ? "" : " or the store");
	if (l->store_why)
		dd_out("note: the store could not be listed, so this is the local cache only: %s\n", l->store_why);
}

static void
json_opt_int(struct dd_json *j, const char *key, int have, uint64_t v)
{
	if (have && v <= INT64_MAX)
		dd_json_int(j, key, (int64_t)v);
	else
		dd_json_null(j, key);
}

static void
print_json(const struct list *l, struct dd_buf *out)
{
	struct dd_json j;

	dd_json_init(&j, out);
	dd_json_object_begin(&j, NULL);
	dd_json_int(&j, "list_version", 1);
	dd_json_bool(&j, "store_listed", !l->store_why);
	dd_json_str(&j, "store_error", l->store_why);
	dd_json_array_begin(&j, "snapshots");
	for (size_t i = 0; i < l->n; i++) {
		const struct item *it = &l->items[i];
		dd_json_object_begin(&j, NULL);
		dd_json_str(&j, "id", it->id);
		dd_json_str(&j, "where", where_text(l, it));
		dd_json_bool(&j, "in_cache", !!(it->where & DD_WHERE_CACHE));
		if (l->store_why)
			dd_json_null(&j, "in_store");
		else
			dd_json_bool(&j, "in_store", !!(it->where & DD_WHERE_STORE));
		dd_json_str(&j, "profile", it->profile);
		dd_json_str(&j, "created", it->created);
		json_opt_int(&j, "bytes", it->have_stats, it->bytes);
		json_opt_int(&j, "tables", it->have_stats, it->tables);
		json_opt_int(&j, "rows", it->have_stats, it->rows);
		json_opt_int(&j, "media_entries", it->media >= 0, (uint64_t)it->media);
		dd_json_str(&j, "error", it->where ? it->error : NULL);
		dd_json_array_begin(&j, "named_by");
		for (size_t k = 0; k < it->nnames; k++) {
			dd_json_object_begin(&j, NULL);
			dd_json_str(&j, "ref", it->names[k].ref);
			dd_json_str(&j, "profile", it->names[k].profile);
			dd_json_object_end(&j);
		}
		dd_json_array_end(&j);
		dd_json_object_end(&j);
	}
	dd_json_array_end(&j);
	dd_json_object_end(&j);
	dd_buf_putc(out, '\n');
}

static void
list_release(struct list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct item *it = &l->items[i];
		for (size_t k = 0; k < it->nnames; k++) {
			free(it->names[k].ref);
			free(it->names[k].profile);
		}
		free(it->names);
		free(it->profile);
		free(it->created);
		free(it->error);
	}
	free(l->items);
	free(l->store_why);
}

static int
cmd_list(int argc, char **argv)
{
	int json = 0, rc;
	const struct dd_option opts[] = {
		{ DD_OPT_BOOL, 0, "json", &json, NULL, "print one JSON object on stdout" },
		DD_OPT_END_MARK,
	};
	struct dd_cmd_setup s;
	struct list l;
	struct dd_buf out = DD_BUF_INIT;

	if ((rc = dd_cmd_setup(&s, argc, argv, opts, usage, DD_CMD_NO_ARGS)) != 0)
		return rc;
	memset(&l, 0, sizeof(l));
	rc = collect(&l, s.repo, s.cfg);
	if (rc == 0 && json) {
		print_json(&l, &out);
		fwrite(out.ptr, 1, out.len, stdout);
	} else if (rc == 0) {
		print_human(&l);
	}
	if (rc == 0 && fflush(stdout) != 0)
		rc = dd_error_errno("cannot write to stdout");
	dd_buf_release(&out);
	list_release(&l);
	dd_cmd_setup_free(&s);
	return rc;
}

const struct dd_command dd_cmd_list = { "list", "snapshots in the cache and the store, and the refs naming them",
					cmd_list };
