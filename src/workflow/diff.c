/*
 * workflow/diff.c: two snapshots compared from their manifests (diff.h).
 *
 * Resolving an argument ties git (revisions, ref files) to the store
 * (snapshot ids and prefixes). Comparing walks the two manifests' streams
 * in name order together (they are sorted, FORMAT.md §6): a `data/` stream
 * is a table, whose rows attribute, size and checksum tell what changed;
 * the schema streams are read only when a checksum differs, normalised
 * (pg/normalise.h) and diffed by libgit2 (git/textdiff.h); the media
 * listings are walked in path order together (store.h, "listings"), one
 * entry of each in memory at a time. Nothing is restored, nothing written
 * but the cache's copies of what had to be read from the store.
 */
#include "workflow/diff.h"
#include "git/ref.h"
#include "git/repo.h"
#include "git/textdiff.h"
#include "pg/normalise.h"
#include "store/manifest.h"
#include "store/store.h"
#include "util/err.h"

#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SCHEMA_MAX (256u << 20) /* a schema larger than this is not diffed */

/* ---- resolving an argument ---- */

/* Take ref's snapshot, unless it is an inline profile's (its data is files in git: git diff shows them). */
static int
side_from_ref(struct dd_diff_side *out, const struct dd_ref *ref, const char *display)
{
	if (dd_ref_is_inline(ref)) {
		dd_error("%s is an inline profile's ref: its data is in git, not in snapshots", display);
		dd_hint("compare its files with git diff, e.g. git diff HEAD -- .dnadata/inline/");
		return -1;
	}
	snprintf(out->id, sizeof(out->id), "%s", ref->snapshot);
	return 0;
}

/* The side named by ref file text. */
static int
side_from_text(struct dd_diff_side *out, const char *text, size_t len, const char *display)
{
	struct dd_ref *ref = NULL;
	int rc;

	if (dd_ref_parse(&ref, text, len, display) < 0)
		return -1;
	rc = side_from_ref(out, ref, display);
	dd_ref_free(ref);
	return rc;
}

/* `relpath` at revision `rev`; a missing file: no snapshot. */
static int
side_at_rev(struct dd_diff_side *out, struct dd_repo *repo, const char *rev, const char *relpath)
{
	struct dd_buf text = DD_BUF_INIT;
	int r = dd_repo_read_at(&text, repo, rev, relpath);

	out->label = dd_asprintf("%s:%s", rev, relpath);
	if (r == 0)
		r = side_from_text(out, text.ptr, text.len, out->label);
	else if (r == DD_NOTFOUND)
		r = 0;
	dd_buf_release(&text);
	return r;
}

/* A ref file on disk (`must`: its absence is an error). */
static int
side_file(struct dd_diff_side *out, const char *path, const char *display, int must)
{
	struct dd_ref *ref = NULL;
	int r = dd_ref_read_named(&ref, path, display);

	out->label = dd_strdup(display);
	if (r == DD_NOTFOUND && must)
		return dd_error("%s: no such ref file", display);
	if (r == 0)
		r = side_from_ref(out, ref, display);
	dd_ref_free(ref);
	return r < 0 ? -1 : 0;
}

/* Does `arg` name a commit? */
static int
is_revision(struct dd_repo *repo, const char *arg)
{
	git_object *obj = NULL, *c = NULL;
	int yes = git_revparse_single(&obj, repo->git, arg) == 0 && git_object_peel(&c, obj, GIT_OBJECT_COMMIT) == 0;

	git_object_free(c);
	git_object_free(obj);
	git_error_clear();
	return yes;
}

/* The snapshots of the cache and the store whose id starts with `prefix`: how many, the first in `id`. */
static int
match_prefix(struct dd_store *st, const char *prefix, char id[65], size_t *n)
{
	struct dd_snapshot_where *w = NULL;
	size_t nw = 0, len = strlen(prefix);
	char *why = NULL;

	*n = 0;
	if (dd_store_list_where(st, &w, &nw, &why) < 0)
		return -1;
	for (size_t i = 0; i < nw; i++)
		if (!strncmp(w[i].id, prefix, len) && (*n)++ == 0)
			snprintf(id, 65, "%s", w[i].id);
	free(w);
	free(why);
	return 0;
}

static int
is_lower_hex(const char *s)
{
	return *s && strspn(s, "0123456789abcdef") == strlen(s);
}

/* <rev>:<profile> or <rev>:<path> */
static int
side_rev_colon(struct dd_diff_side *out, struct dd_repo *repo, const char *arg, const char *colon)
{
	char *rev = dd_strndup(arg, (size_t)(colon - arg)), *rel;
	const char *what = colon + 1;
	int r;

	if (!*rev || !*what) {
		free(rev);
		dd_error("'%s': expected <revision>:<profile>", arg);
		dd_hint("for example main:clean or HEAD~2:customer1");
		return -1;
	}
	rel = strchr(what, '/') ? dd_strdup(what) : dd_ref_path(what);
	if (!is_revision(repo, rev)) {
		dd_error("'%s' in '%s' is not a revision of this repository", rev, arg);
		r = -1;
	} else {
		r = side_at_rev(out, repo, rev, rel);
	}
	free(rel);
	free(rev);
	return r;
}

/* A hex argument that is not a revision: a snapshot id prefix. */
static int
side_prefix(struct dd_diff_side *out, struct dd_store *st, const char *arg, int also_revision)
{
	size_t n;
	char id[65] = "";

	if (strlen(arg) < 4)
		return DD_NOTFOUND;
	if (match_prefix(st, arg, id, &n) < 0) {
		if (!also_revision) /* the listing's own error says what went wrong, not "no such snapshot" */
			return dd_error_wrap("looking for snapshots whose id starts with %s", arg);
		dd_error_clear();
		return DD_NOTFOUND;
	}
	if (n == 0)
		return DD_NOTFOUND;
	if (n > 1 || also_revision) {
		dd_error("'%s' is ambiguous: %s", arg,
			 also_revision ? "a revision and a snapshot id prefix" : "several snapshots start with it");
		dd_hint("give more digits of the snapshot id, or <revision>:<profile> for a revision");
		return -1;
	}
	snprintf(out->id, sizeof(out->id), "%s", id);
	out->label = dd_asprintf("snapshot %.12s", id);
	return 0;
}

int
dd_diff_resolve(struct dd_diff_side *out, struct dd_repo *repo, struct dd_store *st, const char *profile,
		const char *arg)
{
	char *rel = dd_ref_path(profile), *abs = dd_repo_path(repo, rel);
	const char *colon = arg ? strrchr(arg, ':') : NULL;
	struct stat sb;
	int r, rev;

	memset(out, 0, sizeof(*out));
	if (!arg) {
		r = side_file(out, abs, rel, 0);
	} else if (strlen(arg) == 64 && is_lower_hex(arg)) {
		snprintf(out->id, sizeof(out->id), "%s", arg);
		out->label = dd_asprintf("snapshot %.12s", arg);
		r = 0;
	} else if (colon) {
		r = side_rev_colon(out, repo, arg, colon);
	} else {
		rev = !strcmp(arg, "HEAD") || is_revision(repo, arg); /* HEAD, even unborn: no snapshot yet */
		r = is_lower_hex(arg) ? side_prefix(out, st, arg, rev) : DD_NOTFOUND;
		if (r == DD_NOTFOUND && rev)
			r = side_at_rev(out, repo, arg, rel);
		else if (r == DD_NOTFOUND && stat(arg, &sb) == 0 && S_ISREG(sb.st_mode))
			r = side_file(out, arg, arg, 1);
		if (r == DD_NOTFOUND) {
			dd_error("'%s' is neither a revision, a ref file nor a snapshot id of the cache or the store", arg);
			dd_hint("give a branch, tag or commit (main, HEAD~2), <revision>:<profile>, a path, or a snapshot id");
			r = -1;
		}
	}
	free(rel);
	free(abs);
	return r;
}

/* ---- comparing ---- */

/* Load side s's manifest (NULL when it names none). */
static int
load_side(struct dd_snapshot **out, struct dd_store *st, const struct dd_diff_side *s)
{
	int r;

	*out = NULL;
	if (!s->id[0])
		return 0;
	r = dd_snapshot_load(out, st, s->id);
	if (r == DD_NOTFOUND) {
		dd_error("snapshot %.12s (%s) is in neither the local cache nor the store", s->id, s->label);
		dd_hint("run `git dnadata push` on the machine that took it, or check the store url");
	}
	return r == 0 ? 0 : -1;
}

/* The streams of s in name order (none when s is NULL). */
static size_t
count(const struct dd_snapshot *s)
{
	return s ? dd_snapshot_count(s) : 0;
}

static uint64_t
attr_u64(const struct dd_stream_info *si, const char *key)
{
	const char *v = si ? dd_stream_attr(si, key) : NULL;

	return v && *v && strspn(v, "0123456789") == strlen(v) ? strtoull(v, NULL, 10) : 0;
}

static int
same_content(const struct dd_stream_info *x, const struct dd_stream_info *y)
{
	return x && y && x->size == y->size && !memcmp(x->checksum, y->checksum, sizeof(x->checksum));
}

static int
attr_differs(const struct dd_stream_info *x, const struct dd_stream_info *y, const char *key)
{
	const char *p = dd_stream_attr(x, key), *q = dd_stream_attr(y, key);

	return !p != !q || (p && strcmp(p, q));
}

/* One table stream on either side (x old, y new; either NULL): the totals, and a change when there is one. */
static void
compare_table(struct dd_diff *d, const struct dd_stream_info *x, const struct dd_stream_info *y)
{
	const struct dd_stream_info *any = x ? x : y;
	const char *table = dd_stream_attr(any, "table");
	struct dd_diff_table t;

	memset(&t, 0, sizeof(t));
	if (x) {
		d->a_tables++;
		d->a_rows += t.old_rows = attr_u64(x, "rows");
		d->a_bytes += t.old_bytes = x->size;
	}
	if (y) {
		d->b_tables++;
		d->b_rows += t.new_rows = attr_u64(y, "rows");
		d->b_bytes += t.new_bytes = y->size;
	}
	if (same_content(x, y))
		return;
	t.change = !x ? DD_DIFF_ADDED : !y ? DD_DIFF_REMOVED : DD_DIFF_MODIFIED;
	t.name = dd_strdup(table ? table : dd_stream_name(any) + 5);
	d->tables = dd_realloc(d->tables, (d->ntables + 1) * sizeof(*d->tables));
	d->tables[d->ntables++] = t;
}

/* Walk both manifests' streams in name order together: tables, sequences, large objects. */
static void
compare_streams(struct dd_diff *d, const struct dd_snapshot *a, const struct dd_snapshot *b)
{
	size_t i = 0, k = 0, na = count(a), nb = count(b);

	while (i < na || k < nb) {
		const struct dd_stream_info *x = i < na ? dd_snapshot_stream(a, i) : NULL;
		const struct dd_stream_info *y = k < nb ? dd_snapshot_stream(b, k) : NULL;
		int c = !x ? 1 : !y ? -1 : strcmp(dd_stream_name(x), dd_stream_name(y));
		const char *name;
		if (c < 0)
			y = NULL, i++;
		else if (c > 0)
			x = NULL, k++;
		else
			i++, k++;
		name = dd_stream_name(x ? x : y);
		if (!strncmp(name, "data/", 5))
			compare_table(d, x, y);
		else if (!strcmp(name, "sequences") && !same_content(x, y))
			d->sequences_changed = 1;
		else if (!strcmp(name, "largeobjects") && !same_content(x, y)) {
			d->largeobjects_changed = 1;
			d->a_lo_bytes = x ? x->size : 0;
			d->b_lo_bytes = y ? y->size : 0;
		}
	}
}

/* The database's encoding and locale (schema/pre-data's attributes), when both sides have a snapshot. */
static void
compare_locale(struct dd_diff *d, const struct dd_snapshot *a, const struct dd_snapshot *b)
{
	static const char *const keys[] = { "encoding", "lc_collate", "lc_ctype", "locale_provider", "icu_locale" };
	const struct dd_stream_info *x = a ? dd_snapshot_find(a, "schema/pre-data") : NULL;
	const struct dd_stream_info *y = b ? dd_snapshot_find(b, "schema/pre-data") : NULL;

	if (!x || !y)
		return;
	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
		const char *p = dd_stream_attr(x, keys[i]), *q = dd_stream_attr(y, keys[i]);
		struct dd_diff_attr *at;
		if (!attr_differs(x, y, keys[i]))
			continue;
		d->locale = dd_realloc(d->locale, (d->nlocale + 1) * sizeof(*d->locale));
		at = &d->locale[d->nlocale++];
		at->key = keys[i];
		at->old_value = p ? dd_strdup(p) : NULL;
		at->new_value = q ? dd_strdup(q) : NULL;
	}
}

/* The whole of stream `name` of s appended to out (nothing when s has none). */
static int
read_stream(struct dd_buf *out, struct dd_store *st, const struct dd_snapshot *s, const char *name)
{
	const struct dd_stream_info *si = s ? dd_snapshot_find(s, name) : NULL;
	struct dd_stream_reader *rd = NULL;
	const void *data;
	size_t len;
	int n;

	if (!si)
		return 0;
	if (out->len + dd_stream_size(si) > SCHEMA_MAX)
		return dd_error("%s of snapshot %.12s is larger than %u MiB: not diffed", name, dd_snapshot_id(s),
				SCHEMA_MAX >> 20);
	if (dd_stream_open(&rd, st, si) < 0)
		return dd_error_wrap("reading %s of snapshot %.12s", name, dd_snapshot_id(s));
	while ((n = dd_stream_next(rd, &data, &len)) > 0)
		dd_buf_put(out, data, len);
	dd_stream_close(rd);
	if (n < 0)
		return dd_error_wrap("reading %s of snapshot %.12s", name, dd_snapshot_id(s));
	return 0;
}

/* s's schema (pre-data, then post-data), normalised. */
static int
schema_text(struct dd_buf *out, struct dd_store *st, const struct dd_snapshot *s)
{
	struct dd_buf raw = DD_BUF_INIT;
	int rc = -1;

	if (read_stream(&raw, st, s, "schema/pre-data") == 0 && read_stream(&raw, st, s, "schema/post-data") == 0)
		rc = dd_schema_normalise(raw.ptr ? raw.ptr : "", raw.len, out);
	if (rc < 0 && s)
		dd_error_wrap("the schema of snapshot %.12s", dd_snapshot_id(s));
	dd_buf_release(&raw);
	return rc;
}

static int
compare_schema(struct dd_diff *d, struct dd_store *st, const struct dd_snapshot *a, const struct dd_snapshot *b)
{
	static const char *const parts[] = { "schema/pre-data", "schema/post-data" };
	struct dd_buf x = DD_BUF_INIT, y = DD_BUF_INIT;
	int differ = 0, rc = -1;

	for (size_t i = 0; i < 2; i++) {
		const struct dd_stream_info *p = a ? dd_snapshot_find(a, parts[i]) : NULL;
		const struct dd_stream_info *q = b ? dd_snapshot_find(b, parts[i]) : NULL;
		differ |= (p || q) && !same_content(p, q);
	}
	if (!differ)
		return 0;
	d->noise = 1; /* the bytes differ; the normalised text may not */
	if (schema_text(&x, st, a) == 0 && schema_text(&y, st, b) == 0)
		rc = dd_text_diff(&d->schema, x.ptr ? x.ptr : "", x.len, y.ptr ? y.ptr : "", y.len, "schema.sql",
				  &d->schema_added, &d->schema_removed);
	dd_buf_release(&x);
	dd_buf_release(&y);
	return rc;
}

/* ---- media: the two listings walked in path order together ---- */

struct walk {
	struct dd_listing_reader *lr;
	const struct dd_stream_info *cur; /* NULL: at the end */
};

static int
walk_next(struct walk *w)
{
	int r;

	if (!w->lr)
		return 0;
	r = dd_listing_next(w->lr, &w->cur);
	if (r == 0)
		w->cur = NULL;
	return r < 0 ? -1 : 0;
}

static int
walk_open(struct walk *w, struct dd_store *st, const struct dd_stream_info *si)
{
	memset(w, 0, sizeof(*w));
	if (!si)
		return 0;
	if (dd_listing_open(&w->lr, st, si) < 0)
		return -1;
	return walk_next(w);
}

/* What differs between two entries of one path, the most telling first; NULL: nothing. */
static const char *
entry_change(const struct dd_stream_info *x, const struct dd_stream_info *y, int dir)
{
	if (attr_differs(x, y, "type"))
		return "type";
	if (!same_content(x, y))
		return "content";
	if (attr_differs(x, y, "target"))
		return "target";
	if (attr_differs(x, y, "mode"))
		return "mode";
	if (!dir && attr_differs(x, y, "mtime")) /* a folder's mtime moves with its contents: noise */
		return "mtime";
	return NULL;
}

static void
add_media(struct dd_diff *d, const struct dd_stream_info *x, const struct dd_stream_info *y, const char *what)
{
	const struct dd_stream_info *any = y ? y : x;
	const char *type = dd_stream_attr(any, "type");
	struct dd_diff_media *m;

	d->media = dd_realloc(d->media, (d->nmedia + 1) * sizeof(*d->media));
	m = &d->media[d->nmedia++];
	memset(m, 0, sizeof(*m));
	m->path = dd_strdup(dd_stream_name(any));
	m->change = !x ? DD_DIFF_ADDED : !y ? DD_DIFF_REMOVED : DD_DIFF_MODIFIED;
	m->dir = type && !strcmp(type, "dir");
	m->what = what;
	m->old_size = x ? x->size : 0;
	m->new_size = y ? y->size : 0;
}

static int
compare_media(struct dd_diff *d, struct dd_store *st, const struct dd_snapshot *a, const struct dd_snapshot *b)
{
	const struct dd_stream_info *p = a ? dd_snapshot_find(a, "media") : NULL;
	const struct dd_stream_info *q = b ? dd_snapshot_find(b, "media") : NULL;
	struct walk x, y;
	int rc = -1;

	if ((p && !dd_stream_attr(p, "listing")) || (q && !dd_stream_attr(q, "listing")))
		return dd_error("a snapshot's media stream is not a listing");
	if ((!p && !q) || same_content(p, q))
		return 0;
	d->noise = 1; /* the listings differ; their entries may not (a folder's mtime) */
	memset(&y, 0, sizeof(y));
	if (walk_open(&x, st, p) < 0 || walk_open(&y, st, q) < 0)
		goto out;
	while (x.cur || y.cur) {
		int c = !x.cur ? 1 : !y.cur ? -1 : dd_path_cmp(dd_stream_name(x.cur), dd_stream_name(y.cur));
		const char *what;
		if (c < 0) {
			add_media(d, x.cur, NULL, NULL);
			if (walk_next(&x) < 0)
				goto out;
			continue;
		}
		if (c > 0) {
			add_media(d, NULL, y.cur, NULL);
			if (walk_next(&y) < 0)
				goto out;
			continue;
		}
		what = entry_change(x.cur, y.cur, !attr_differs(x.cur, y.cur, "type") &&
					  dd_stream_attr(x.cur, "type") && !strcmp(dd_stream_attr(x.cur, "type"), "dir"));
		if (what)
			add_media(d, x.cur, y.cur, what);
		if (walk_next(&x) < 0 || walk_next(&y) < 0)
			goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		dd_error_wrap("comparing the media listings");
	dd_listing_close(x.lr);
	dd_listing_close(y.lr);
	return rc;
}

int
dd_diff_compute(struct dd_diff *d, struct dd_store *st)
{
	struct dd_snapshot *a = NULL, *b = NULL;
	int rc = -1;

	d->same = !strcmp(d->a.id, d->b.id);
	if (d->same)
		return 0;
	if (load_side(&a, st, &d->a) < 0 || load_side(&b, st, &d->b) < 0)
		goto out;
	compare_streams(d, a, b);
	compare_locale(d, a, b);
	if (compare_schema(d, st, a, b) < 0 || compare_media(d, st, a, b) < 0)
		goto out;
	/* other ids, yet nothing compared differs, even in its bytes: a part this version does not read */
	d->other_changed = !d->ntables && !d->schema.len && !d->sequences_changed && !d->nmedia &&
			   !d->largeobjects_changed && !d->nlocale && !d->noise;
	rc = 0;
out:
	dd_snapshot_free(a);
	dd_snapshot_free(b);
	return rc;
}

void
dd_diff_release(struct dd_diff *d)
{
	free(d->a.label);
	free(d->b.label);
	for (size_t i = 0; i < d->ntables; i++)
		free(d->tables[i].name);
	free(d->tables);
	for (size_t i = 0; i < d->nmedia; i++)
		free(d->media[i].path);
	free(d->media);
	for (size_t i = 0; i < d->nlocale; i++) {
		free(d->locale[i].old_value);
		free(d->locale[i].new_value);
	}
	free(d->locale);
	dd_buf_release(&d->schema);
	memset(d, 0, sizeof(*d));
}
