/*
 * workflow/workflow.c: snapshot and restore of one profile, end to end (see
 * workflow.h).
 *
 * Snapshot order, so a failure leaves the repository as it was: everything
 * that could make the commit refuse is checked first; the snapshot is
 * written to the cache (and the store unless --dump-only) before the ref
 * file changes; the ref is then written atomically and committed. The same
 * data gives the same id, so an unchanged database ends in "nothing
 * changed" and no commit.
 *
 * Restore reads the ref (work tree, or any revision) and switches the
 * working database to its snapshot with dd_pg_switch() (a stash of this
 * branch renamed back, a spare, a template clone, or a restore: the
 * manifest is loaded from the cache or the store only then), which never
 * touches the working database until the new copy is complete. If
 * <statedir>/pg records that the working database already holds that
 * snapshot, the change fingerprint (change.c) decides: unchanged since the
 * restore or snapshot = nothing to do; changed, or cannot tell = rebuild
 * (the edited database becomes a stash; nothing is ever dropped). `use`
 * (DD_RESTORE_KEEP) keeps such a database whatever it says: switching back
 * must find local edits where they were left, and so does a git hook
 * (DD_RESTORE_HOOK). --force always restores from the cache or the store.
 * After a switch the spare job starts in the background (switch.c).
 *
 * After a restore, the profile's post_restore commands, then [hooks]',
 * run in order with /bin/sh -c in the work tree (their output sent to our
 * stderr as it comes, stdout being for data, and its tail kept), with
 * DNADATA_PROFILE, DNADATA_SNAPSHOT, DATABASE_URL (a postgresql:// URL),
 * DNADATA_CONNINFO (the connection string), neither with a password, and
 * PGDATABASE set. DNADATA_DATABASE is left as we got it: it is git
 * dnadata's own override for every profile, so a hook that runs git
 * dnadata must see the same one we saw. The first failure stops them; the
 * restore stays done and the error says so, after the last lines of the
 * command's output. Every run is recorded for `status` (post-restore.c).
 */
#include "workflow/workflow.h"
#include "workflow/internal.h"
#include "workflow/pii.h"
#include "config/config.h"
#include "git/commit.h"
#include "git/ref.h"
#include "git/repo.h"
#include "pg/incr.h"
#include "pg/pg.h"
#include "pg/state.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/err.h"
#include "util/log.h"
#include "util/conninfo.h"
#include "util/proc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int
terminate_of(const struct dd_config *cfg, const struct dd_profile *p)
{
	if (p->terminate_connections >= 0)
		return p->terminate_connections;
	return cfg->terminate_connections > 0;
}

void
dd_workflow_store_opts(struct dd_store_opts *o, const struct dd_config *cfg, const struct dd_repo *repo, int flags)
{
	*o = (struct dd_store_opts){
		.url = cfg->store_url,
		.statedir = repo->statedir,
		.flags = flags,
		.endpoint = cfg->store_endpoint,
		.region = cfg->store_region,
		.path_style = cfg->store_path_style,
		.transfers = cfg->store_transfers,
		.part_size = cfg->store_part_size > 0 ? (uint64_t)cfg->store_part_size : 0,
		.retries = cfg->store_retries,
	};
}

int
dd_workflow_open_store(struct dd_store **st, const struct dd_config *cfg, const struct dd_repo *repo, int flags)
{
	struct dd_store_opts o;

	dd_workflow_store_opts(&o, cfg, repo, flags);
	return dd_store_open_opts(st, &o);
}

/*
 * Open the store; offline (cache only) when asked. The cache learns the
 * store's config on the first online open, so when it does not have it yet
 * we open online once just to read it (no data moves).
 */
static int
open_store(struct dd_store **st, const struct dd_config *cfg, struct dd_repo *repo, int flags)
{
	if (dd_workflow_open_store(st, cfg, repo, flags) == 0)
		return 0;
	if (!(flags & DD_STORE_OFFLINE))
		return -1;
	if (dd_workflow_open_store(st, cfg, repo, 0) < 0)
		return -1;
	dd_store_free(*st);
	*st = NULL;
	return dd_workflow_open_store(st, cfg, repo, flags);
}

/* Incremental snapshots (issue 19): the previous snapshot of the profile, when its tables may be carried over. */
struct incr {
	int full;
	const char *prev_id;
	struct dd_snapshot *prev;
};

/*
 * The ref's snapshot as the previous one (its manifest from the cache or
 * the store), unless --full or a scratch database; none with a -v line
 * when it cannot be loaded: every table is then read.
 */
static void
incr_begin(struct incr *in, struct dd_store *st, const struct dd_ref *old, const char *source_db, int flags)
{
	memset(in, 0, sizeof(*in));
	in->full = (flags & DD_SNAPSHOT_FULL) != 0;
	if (in->full || source_db || !old)
		return;
	if (dd_snapshot_load(&in->prev, st, old->snapshot) < 0) {
		dd_debug("incremental: every table read: snapshot %.12s cannot be loaded: %s", old->snapshot,
			 dd_error_last());
		dd_error_clear();
		in->prev = NULL;
		return;
	}
	in->prev_id = old->snapshot;
}

/*
 * With a media folder, the unchanged-database fast path needs the folder
 * to be what snapshot `id` holds: it last matched `id` (captured into it,
 * or applied from it) and its record's check (sizes, mtimes, ctimes,
 * inodes, modes, entries added or gone; no file read: the rule a capture
 * reuses a recorded entry by) says unchanged since, so a capture now would
 * give `id`'s listing again (as dd_media_stash relies on). 1 yes, 0 no (a
 * -v line), -1 (the folder's lock).
 */
static int
media_unchanged(struct dd_repo *repo, const struct dd_profile *p, const struct dd_snapshot *prev, const char *id)
{
	char *root = dd_workflow_media_root(repo, p), rec[65] = "";
	struct dd_media_opts mo;
	int lock = -1, r, has = 0;

	for (size_t i = 0; i < dd_snapshot_count(prev); i++)
		has |= dd_stream_attr(dd_snapshot_stream(prev, i), "listing") != NULL;
	if (!root || !has) {
		free(root);
		return 0;
	}
	dd_workflow_media_opts(&mo, repo, p, root);
	if (dd_workflow_media_lock(repo, root, &lock) < 0) {
		free(root);
		return -1;
	}
	r = dd_media_changed(&mo, rec);
	dd_unlock_file(lock);
	if (r == 0 && strcmp(rec, id))
		r = 1;
	if (r != 0)
		dd_debug("incremental: media folder %s %s since snapshot %.12s: it is read", root,
			 r == DD_MEDIA_NORECORD ? "has no record" : r < 0 ? dd_error_last() : "changed", id);
	dd_error_clear(); /* an unreadable folder: the capture says why */
	free(root);
	return r == 0;
}

/*
 * The unchanged-database fast path: the working database is recorded as
 * holding the ref's snapshot, taken from it (not restored: a snapshot of a
 * restored copy may come out of another server or pg_dump), its change
 * fingerprint (change.c) says unchanged since, and the snapshot's local
 * record says same server, output, options and pg_dump: then a snapshot
 * would be that snapshot again, byte for byte, and is known without
 * pg_dump or a COPY. 1 (stats filled; the snapshot is pushed unless
 * --dump-only), 0 (take the snapshot), -1. With a media folder, only when
 * the folder is unchanged since it last matched that snapshot (its
 * record's cheap check, media_unchanged); not when the previous snapshot
 * holds a folder the profile no longer has (a snapshot now would leave it
 * out), nor with --full.
 */
static int
incr_unchanged(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p, struct dd_store *st,
	       const struct dd_ref *old, const struct incr *in, const struct dd_media_stats *media, int flags,
	       struct dd_pg_snapshot_stats *stats)
{
	const char *conninfo = dd_config_database(cfg, p);
	struct dd_pg_state state;
	struct dd_pg_incr rec;
	enum dd_pg_change ch = DD_PG_UNKNOWN;
	char options[65], rules[65], *why = NULL;
	const char *ids[] = { old ? old->snapshot : NULL };
	size_t nrules;
	int rc = 0, r;

	memset(&state, 0, sizeof(state));
	memset(&rec, 0, sizeof(rec));
	if (!in->prev)
		return 0;
	/* the previous snapshot holds a media folder this profile no longer has: a new snapshot would not */
	for (size_t i = 0; !media && i < dd_snapshot_count(in->prev); i++)
		if (dd_stream_attr(dd_snapshot_stream(in->prev, i), "listing"))
			return 0;
	if (media && (r = media_unchanged(repo, p, in->prev, old->snapshot)) != 1)
		return r;
	/* what a killed run left behind is dropped first, as dd_pg_snapshot() does when it reads the tables */
	if (dd_pg_reap_leftovers(repo->statedir, conninfo) < 0) {
		dd_warn("%s", dd_error_last());
		dd_error_clear();
	}
	if (dd_pg_state_read(&state, repo->statedir, conninfo) < 0 || !state.snapshot ||
	    strcmp(state.snapshot, old->snapshot) || !state.how || strcmp(state.how, "snapshot") ||
	    !state.fingerprint || state.interrupted || dd_pg_incr_read(&rec, repo->statedir, old->snapshot) != 0) {
		dd_error_clear();
		goto out;
	}
	dd_workflow_masks_hash(p, rules, &nrules);
	dd_pg_incr_options((const char *const *)p->exclude_tables, (const char *const *)p->exclude_data, rules,
			   options);
	if (strcmp(rec.options, options))
		goto out;
	if (dd_pg_changes(&ch, conninfo, state.fingerprint, 1000, &why) < 0)
		goto fail;
	if (ch != DD_PG_UNCHANGED) {
		dd_debug("incremental: database %s %s since snapshot %.12s%s%s%s", state.database,
			 ch == DD_PG_CHANGED ? "changed" : "may have changed", old->snapshot, why ? " (" : "",
			 why ? why : "", why ? ")" : "");
		goto out;
	}
	free(why);
	why = NULL;
	if ((r = dd_pg_incr_same_output(conninfo, &rec, options, &why)) < 0)
		goto fail;
	if (r == 0) {
		dd_debug("incremental: database %s unchanged, but %s", state.database, why ? why : "");
		goto out;
	}
	if (!(flags & DD_SNAPSHOT_DUMP_ONLY) && dd_store_push(st, ids, 1, NULL) < 0)
		goto fail;
	dd_debug("incremental: database %s unchanged since snapshot %.12s: no table read", state.database,
		 old->snapshot);
	snprintf(stats->database, sizeof(stats->database), "%s", state.database ? state.database : "");
	stats->fingerprint = dd_strdup(state.fingerprint);
	rc = 1;
	goto out;
fail:
	rc = -1;
out:
	free(why);
	dd_pg_incr_release(&rec);
	dd_pg_state_release(&state);
	return rc;
}

int
dd_workflow_captures_as_is(const struct dd_profile *p)
{
	if (p->subset)
		return 0;
	for (size_t i = 0; i < p->nmasks; i++)
		if (p->masks[i].kind != DD_MASK_KEEP)
			return 0;
	return 1;
}

const struct dd_pg_subset *
dd_workflow_subset(const struct dd_config *cfg, const struct dd_profile *p, struct dd_pg_subset *sb)
{
	const struct dd_subset *c = p->subset;

	if (!c)
		return NULL;
	memset(sb, 0, sizeof(*sb));
	sb->schema = c->schema;
	sb->table = c->table;
	sb->percent = c->percent;
	sb->where = c->where;
	sb->others_empty = p->subset_others == DD_SUBSET_EMPTY;
	sb->text = c->text;
	sb->file = cfg->profiles_display ? cfg->profiles_display : ".dnadata/profiles.ini";
	sb->line = c->line;
	return sb;
}

/*
 * Dump p's database into a new snapshot of the store: metadata, the
 * consistent dump (dd_pg_snapshot), the media folder when p has one (after
 * the database: a file the data names exists by then), then the manifest.
 * `id` gets its id; *media (NULL when p has no folder) the folder's stats.
 * With `carry` (a snapshot id; media not NULL), the folder is not read:
 * carry's media listing goes into the new snapshot unchanged (*media its
 * counts; *media_out 0 when carry has none, 1 otherwise).
 */
static int
dump_to_store(struct dd_store *st, struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
	      const char *source, const char *now, struct dd_pg_snapshot_stats *stats, struct dd_media_stats *media,
	      const char *carry, int *media_out, const struct incr *in, char id[DD_ID_HEX_SIZE])
{
	struct dd_snapshot_writer *sw = NULL;
	struct dd_pg_snapshot_opts o;
	struct dd_workflow_masks masks;
	struct dd_pg_subset sb;
	struct dd_media_opts mo;
	char head[41], host[256] = "", *root = media && !carry ? dd_workflow_media_root(repo, p) : NULL;
	int rc = -1, lock = -1, r;

	dd_workflow_masks_init(&masks, p, st);
	if (root)
		dd_workflow_media_opts(&mo, repo, p, root);
	if (root && dd_workflow_media_lock(repo, root, &lock) < 0)
		goto out;
	if (dd_snapshot_begin(&sw, st) < 0)
		goto out;
	dd_snapshot_set_meta(sw, "profile", p->name);
	dd_snapshot_set_meta(sw, "created", now);
	gethostname(host, sizeof(host) - 1);
	dd_snapshot_set_meta(sw, "host", host);
	if (dd_repo_head(repo, head) == 0)
		dd_snapshot_set_meta(sw, "git_commit", head);
	memset(&o, 0, sizeof(o));
	o.conninfo = source ? source : dd_config_database(cfg, p);
	o.exclude_tables = (const char *const *)p->exclude_tables;
	o.exclude_data = (const char *const *)p->exclude_data;
	o.jobs = cfg->jobs;
	o.statedir = source ? NULL : repo->statedir; /* a scratch database has no records to reap */
	o.lock_wait_timeout_ms = dd_config_lock_wait_timeout(cfg, p) * 1000;
	o.full = in->full;
	o.profile = source ? NULL : p->name; /* a scratch database is new each time: no record */
	o.prev_id = in->prev_id;
	o.prev = in->prev;
	o.subset = dd_workflow_subset(cfg, p, &sb);
	if (o.prev && strcmp(dd_snapshot_meta(o.prev, "masked") ? dd_snapshot_meta(o.prev, "masked") : "", masks.hash)) {
		/* not even a delta base: a masked snapshot must never need objects of one taken with other rules */
		dd_debug("incremental: every table read, no delta base: snapshot %.12s was taken with other masking "
			 "or subsetting rules", o.prev_id);
		o.prev = NULL;
		o.prev_id = NULL;
	}
	o.masks = masks.rules;
	o.nmasks = masks.nrules;
	o.mask_key = masks.key;
	o.rules_hash = masks.hash;
	if (*masks.hash) /* whoever restores it knows (FORMAT.md §7, "Masked columns") */
		dd_snapshot_set_meta(sw, "masked", masks.hash);
	if (dd_pg_snapshot(sw, &o, stats) < 0) {
		dd_snapshot_abort(sw);
		goto out;
	}
	if (root && dd_media_capture(sw, &mo, media) < 0) {
		dd_error_wrap("capturing media folder %s", root);
		dd_snapshot_abort(sw);
		dd_media_discard(&mo);
		goto out;
	}
	*media_out = media != NULL;
	if (carry && (r = dd_media_carry(sw, st, carry, media)) < 0) {
		*media_out = 0;
		if (r == -1) {
			dd_snapshot_abort(sw);
			goto out;
		}
	}
	dd_snapshot_set_meta(sw, "server_version", stats->server_version);
	dd_snapshot_set_meta(sw, "database", stats->database);
	if (source)
		dd_snapshot_set_meta(sw, "source", "scratch database");
	if (dd_snapshot_commit(sw, id) < 0) {
		if (root)
			dd_media_discard(&mo);
		goto out;
	}
	/* the records only save work next time: a failure to keep one costs a re-read, not the snapshot */
	if (stats->incr_record &&
	    dd_pg_incr_keep(repo->statedir, id, stats->incr_record, stats->incr_record_len) < 0) {
		dd_warn("%s", dd_error_last());
		dd_error_clear();
	}
	if (root && dd_media_commit(&mo, id) < 0) {
		dd_warn("%s", dd_error_last());
		dd_error_clear();
	}
	dd_store_snapshot_used(st, id); /* gc's LRU order (cache-gc.c) */
	rc = 0;
out:
	dd_workflow_masks_release(&masks);
	dd_unlock_file(lock);
	free(root);
	return rc;
}

static int finish_media(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
			struct dd_pg_state *state, int lenient);

/* Before a capture: the switch records a kill left are finished, then a half-applied media folder. */
static int
finish_media_before_capture(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p)
{
	struct dd_pg_state state;
	int rc;

	if (dd_pg_reap_leftovers(repo->statedir, dd_config_database(cfg, p)) < 0) {
		dd_warn("%s", dd_error_last());
		dd_error_clear();
	}
	rc = finish_media(repo, cfg, p, &state, 0);
	dd_pg_state_release(&state);
	return rc;
}

/* Point p's ref file at snapshot `id` (with its informational lines) and commit it, unless NO_COMMIT. */
static int
point_ref(struct dd_repo *repo, const struct dd_profile *p, const char *rel, const char *id, const char *now,
	  const struct dd_pg_snapshot_stats *stats, const struct dd_media_stats *media, int flags, const char *msg)
{
	struct dd_ref *ref = dd_ref_new(id);
	char num[32], mnum[32], mtext[96] = "", *abs = NULL, *what = NULL, rules[65], mline[64];
	size_t nrules;
	int rc = -1;

	if (!ref)
		return -1;
	dd_ref_set_info(ref, "created", now);
	dd_workflow_masks_hash(p, rules, &nrules);
	if (*rules) { /* issue 21: whoever restores it knows it is masked, and by which rules */
		/* the hash covers the subset keys too (FORMAT.md §7): say so when there are */
		snprintf(mline, sizeof(mline), "%.12s (%zu rule%s%s)", rules, nrules, nrules == 1 ? "" : "s",
			 p->subset ? ", a subset" : "");
		dd_ref_set_info(ref, "masked", mline);
	}
	snprintf(num, sizeof(num), "%zu", stats->tables);
	dd_ref_set_info(ref, "tables", num);
	snprintf(num, sizeof(num), "%" PRIu64, stats->rows);
	dd_ref_set_info(ref, "rows", num);
	snprintf(num, sizeof(num), "%" PRIu64, stats->bytes);
	dd_ref_set_info(ref, "bytes", num);
	if (media) {
		snprintf(num, sizeof(num), "%" PRIu64, media->files);
		dd_ref_set_info(ref, "media_files", num);
		snprintf(num, sizeof(num), "%" PRIu64, media->bytes);
		dd_ref_set_info(ref, "media_bytes", num);
		dd_format_bytes(mnum, sizeof(mnum), (double)media->bytes);
		snprintf(mtext, sizeof(mtext), "; media: %" PRIu64 " files, %s (%" PRIu64 " read)", media->files, mnum,
			 media->read_files);
	}
	dd_format_bytes(num, sizeof(num), (double)stats->bytes);
	dd_info("snapshot %.12s of database %s: %zu tables, %" PRIu64 " rows, %s%s%s", id, stats->database,
		stats->tables, stats->rows, num, mtext, (flags & DD_SNAPSHOT_DUMP_ONLY) ? " (local cache only)" : "");
	if (flags & DD_SNAPSHOT_NO_COMMIT) {
		abs = dd_repo_path(repo, rel);
		rc = dd_ref_write(abs, ref);
	} else {
		/* the commit writes the ref itself, and puts it back if the commit fails */
		what = msg && *msg ? dd_strdup(msg) : dd_asprintf("snapshot %s (%.12s)", p->name, id);
		rc = dd_commit_ref(repo, rel, ref, what);
		if (rc < 0)
			dd_error_wrap("committing %s", rel);
	}
	free(abs);
	free(what);
	dd_ref_free(ref);
	return rc;
}

/*
 * dd_workflow_snapshot(), or with `source_db` (not NULL) the snapshot of
 * that database on the working database's server as p's: same locks, same
 * ref and commit path, but no media read (a dump holds none: a restore of
 * it leaves the folder as it is; DD_SNAPSHOT_KEEP_MEDIA carries the ref's
 * previous snapshot's media listing instead) and no working record (the
 * working database does not hold it).
 */
static int
snapshot_profile(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
		 const char *source_db, int flags, const char *msg, char id_out[65])
{
	char *rel = dd_ref_path(p->name);
	char *abs = dd_repo_path(repo, rel);
	const char *paths[] = { rel };
	struct dd_store *st = NULL;
	struct dd_ref *old = NULL;
	struct dd_pg_snapshot_stats stats;
	struct dd_media_stats mstats, *media = p->media && *p->media ? &mstats : NULL;
	char id[DD_ID_HEX_SIZE];
	char *now = dd_pg_now_iso(), *source = NULL;
	const char *carry = NULL;
	struct incr in = { 0 };
	int rc = -1, lock = -1, dblock = -1, have_media = 0, r;

	id_out[0] = '\0';
	memset(&stats, 0, sizeof(stats));
	memset(&mstats, 0, sizeof(mstats));
	/*
	 * issue 21: rules that would hide data are applied or the snapshot
	 * refuses, never ignored. Masking is applied (pg/mask.c), but not to an
	 * inline profile (its key would be a throwaway store's: inline.c);
	 * subsetting is applied to both (pg/subset.c).
	 */
	for (size_t i = 0; i < p->nmasks; i++) {
		if (p->masks[i].kind == DD_MASK_KEEP || !p->is_inline)
			continue;
		dd_error("profile %s has masking rules, which this version cannot apply yet to an inline profile",
			 p->name);
		dd_hint("nothing was captured; remove the mask keys from .dnadata/profiles.ini to take a snapshot "
			"without them");
		goto out;
	}
	/* masked = required: every column that looks personal has a rule, or nothing is captured */
	if (p->masked == DD_MASKED_REQUIRED && dd_workflow_pii_required(cfg, p, source_db) < 0)
		goto out;
	if (p->is_inline) { /* its data goes to git, not the store (inline.c) */
		rc = dd_inline_snapshot(repo, cfg, p, source_db, flags, msg, id_out);
		goto out;
	}
	/* always in this order (profile, then database), so two runs never wait for each other in a cycle */
	if (dd_repo_lock_profile(repo, p->name, &lock) < 0 ||
	    dd_pg_state_lock(repo->statedir, dd_config_database(cfg, p), &dblock) < 0)
		goto out;
	if (!(flags & DD_SNAPSHOT_NO_COMMIT) && dd_commit_precheck(repo, paths, 1) < 0)
		goto out;
	if (dd_ref_read_named(&old, abs, rel) < 0)
		goto out;
	if (source_db && !(source = dd_conninfo_with_dbname(dd_config_database(cfg, p), source_db)))
		goto out;
	/* a source database: its media is the ref's previous snapshot's (KEEP_MEDIA), or none */
	if (source_db && media && old && (flags & DD_SNAPSHOT_KEEP_MEDIA))
		carry = old->snapshot;
	else if (source_db)
		media = NULL;
	if (open_store(&st, cfg, repo, (flags & DD_SNAPSHOT_DUMP_ONLY) ? DD_STORE_OFFLINE : 0) < 0)
		goto out;
	/* a folder a killed switch left half applied is finished first: the files it set aside stay named */
	if (media && !carry && finish_media_before_capture(repo, cfg, p) < 0)
		goto out;
	incr_begin(&in, st, old, source_db, flags);
	r = incr_unchanged(repo, cfg, p, st, old, &in, media, flags, &stats);
	if (r < 0)
		goto out;
	if (r == 1) {
		memcpy(id, old->snapshot, DD_ID_HEX_SIZE);
		have_media = media != NULL; /* the folder holds that snapshot's media (media_unchanged) */
	} else if (dump_to_store(st, repo, cfg, p, source, now, &stats, media, carry, &have_media, &in, id) < 0)
		goto out;
	if (!have_media)
		media = NULL;
	memcpy(id_out, id, DD_ID_HEX_SIZE);
	/*
	 * the folder was captured with the database: it holds the same snapshot (a source database: neither;
	 * a subset or masks: the database holds more, or other values, so its record stays what it was)
	 */
	if (!source_db && dd_workflow_captures_as_is(p) &&
	    (dd_pg_state_set(repo->statedir, dd_config_database(cfg, p), id, p->name, "snapshot", stats.fingerprint) < 0 ||
	     (media && dd_pg_state_set_media(repo->statedir, dd_config_database(cfg, p), id, 0) < 0)))
		dd_warn("%s", dd_error_last());
	if (old && !strcmp(old->snapshot, id)) {
		if (source_db)
			dd_info("nothing changed: profile %s is still snapshot %.12s", p->name, id);
		else
			dd_info("nothing changed: database %s is still snapshot %.12s", stats.database, id);
		/* a ref written by an earlier --no-commit run still gets its commit */
		if (!(flags & DD_SNAPSHOT_NO_COMMIT) && dd_commit_paths(repo, paths, 1, "snapshot", NULL) < 0)
			goto out;
		rc = DD_UNCHANGED;
		goto out;
	}
	if (point_ref(repo, p, rel, id, now, &stats, media, flags, msg) < 0)
		goto out;
	rc = 0;
out:
	if (rc >= 0 && st && dd_store_unreachable(st))
		dd_warn("the store %s could not be reached: snapshot %.12s is kept in the local cache; "
			"run `git dnadata push` when it is back", cfg->store_url ? cfg->store_url : "", id);
	dd_unlock_file(dblock);
	dd_repo_unlock(lock);
	if (in.prev)
		dd_snapshot_free(in.prev);
	dd_store_free(st);
	dd_ref_free(old);
	free(stats.fingerprint);
	free(stats.incr_record);
	if (source)
		explicit_bzero(source, strlen(source)); /* it may hold the password */
	free(source);
	free(now);
	free(abs);
	free(rel);
	return rc;
}

int
dd_workflow_snapshot(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p, int flags,
		    const char *msg, char id_out[65])
{
	return snapshot_profile(repo, cfg, p, NULL, flags, msg, id_out);
}

int
dd_workflow_snapshot_from(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
			  const char *source_dbname, int flags, const char *msg, char id_out[65])
{
	id_out[0] = '\0';
	if (!source_dbname || !*source_dbname)
		return dd_error("BUG: snapshot of profile %s from no database", p->name);
	return snapshot_profile(repo, cfg, p, source_dbname, flags, msg, id_out);
}

int
dd_workflow_snapshot_dump(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
			  const char *path, int flags, const char *msg, char id_out[65])
{
	const char *conninfo = dd_config_database(cfg, p);
	char *rel = dd_ref_path(p->name), *scratch = NULL;
	const char *paths[] = { rel };
	enum dd_pg_dump_format fmt;
	int rc = -1;

	id_out[0] = '\0';
	/* what would refuse anyway, before a load that may take minutes */
	if (dd_pg_dump_format(path, &fmt) < 0 ||
	    (!(flags & DD_SNAPSHOT_NO_COMMIT) && dd_commit_precheck(repo, paths, 1) < 0))
		goto out;
	if (dd_pg_scratch_create(repo->statedir, conninfo, &scratch) < 0)
		goto out;
	if (dd_pg_scratch_load(conninfo, scratch, path) == 0)
		rc = dd_workflow_snapshot_from(repo, cfg, p, scratch, flags, msg, id_out);
	dd_pg_scratch_drop(repo->statedir, conninfo, scratch); /* keeps our error, if any */
out:
	if (rc < 0)
		dd_error_wrap("snapshot of profile %s", p->name);
	free(scratch);
	free(rel);
	return rc;
}

static int
read_ref(struct dd_ref **out, struct dd_repo *repo, const struct dd_profile *p, const char *rev)
{
	char *rel = dd_ref_path(p->name);
	int rc;

	if (rev) {
		struct dd_buf text = DD_BUF_INIT;
		char *display = dd_asprintf("%s:%s", rev, rel);
		rc = dd_repo_read_at(&text, repo, rev, rel);
		if (rc == 0)
			rc = dd_ref_parse(out, text.ptr ? text.ptr : "", text.len, display);
		free(display);
		dd_buf_release(&text);
	} else {
		char *abs = dd_repo_path(repo, rel);
		rc = dd_ref_read_named(out, abs, rel);
		free(abs);
	}
	free(rel);
	return rc;
}

/* ---- the post_restore commands ---- */

/* How many lines of a failed command's output its error shows (after the output itself went by). */
#define POST_RESTORE_TAIL_LINES 10

/*
 * The commands' environment ("NAME=value", NULL-terminated; free with
 * free_env): DNADATA_PROFILE, DNADATA_SNAPSHOT, DATABASE_URL and
 * DNADATA_CONNINFO (the working database, neither with a password: a
 * password set in the connection string never reaches the commands; they
 * find theirs the way libpq does, PGPASSWORD, PGPASSFILE or ~/.pgpass),
 * and PGDATABASE. When no DATABASE_URL can be built, the bare name
 * "DATABASE_URL" removes the one this process inherited (util/proc.c), so
 * a parent's (production's, maybe) never reaches the commands.
 */
char **
dd_workflow_post_restore_env(const struct dd_profile *p, const char *snapshot, const char *conninfo,
			     const char *database)
{
	char **env = dd_calloc(6, sizeof(*env)), *nopw = dd_pg_conninfo_nopassword(conninfo);
	char *url = nopw ? dd_pg_database_url(conninfo, NULL) : NULL;
	size_t n = 0;

	if (!url) {
		dd_warn("post_restore: no DATABASE_URL: %s", dd_error_last() ? dd_error_last() : "");
		dd_error_clear();
	}
	env[n++] = dd_asprintf("DNADATA_PROFILE=%s", p->name);
	env[n++] = dd_asprintf("DNADATA_SNAPSHOT=%s", snapshot);
	env[n++] = dd_asprintf("DNADATA_CONNINFO=%s", nopw ? nopw : "");
	env[n++] = dd_asprintf("PGDATABASE=%s", database);
	env[n++] = url ? dd_asprintf("DATABASE_URL=%s", url) : dd_strdup("DATABASE_URL");
	free(url);
	free(nopw);
	return env;
}

void
dd_workflow_post_restore_env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

/* The last POST_RESTORE_TAIL_LINES lines of a failed command's output, each as an info line. */
static void
show_tail(size_t number, const struct dd_buf *out)
{
	const char *s = dd_buf_cstr(out), *start;
	size_t end = out->len, lines = 0;

	while (end > 0 && (s[end - 1] == '\n' || s[end - 1] == '\r'))
		end--;
	if (!end) {
		dd_info("post_restore command %zu wrote no output", number);
		return;
	}
	start = s + end;
	while (start > s && lines < POST_RESTORE_TAIL_LINES)
		if (*--start == '\n' && ++lines == POST_RESTORE_TAIL_LINES)
			start++;
	dd_info("post_restore command %zu: the last lines of its output:", number);
	while (start < s + end) {
		size_t len = strcspn(start, "\n");
		if (start + len > s + end)
			len = (size_t)(s + end - start);
		dd_info("  | %.*s", (int)len, start);
		start += len + 1;
	}
}

/* Record the error of the failed command `number` of `total` (the output's tail shown first); *exit_status. */
static void
post_restore_failed(size_t number, size_t total, const char *cmd, const char *snapshot, struct dd_proc_result *r,
		    int started, int *exit_status)
{
	struct dd_error_saved why;

	dd_error_save(&why); /* "cannot start ...", when it did not start */
	if (started)
		show_tail(number, &r->err);
	*exit_status = r->signal || !started ? -1 : r->exit_code;
	if (!started) {
		dd_error_restore(&why);
		dd_error_wrap("cannot start post_restore command %zu of %zu (`%s`)", number, total, cmd);
	} else if (r->signal) {
		dd_error_saved_free(&why);
		dd_error("post_restore command %zu (`%s`) was killed by signal %d; the database was restored", number,
			 cmd, r->signal);
	} else {
		dd_error_saved_free(&why);
		dd_error("post_restore command %zu (`%s`) failed with exit status %d; the database was restored",
			 number, cmd, r->exit_code);
	}
	dd_hint("fix it and run the rest by hand; the database already holds snapshot %.12s", snapshot);
}

/* Run one command with /bin/sh -c in the work tree; 0, or -1 with the error (and *exit_status) set. */
static int
run_command(struct dd_repo *repo, char **env, const char *cmd, size_t number, size_t total, const char *snapshot,
	    int *exit_status)
{
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	/* output and errors both to our stderr (stdout is for results) as they come, the tail kept */
	struct dd_proc proc = { .argv = argv, .env = (const char *const *)env, .dir = repo->workdir,
				.out_fd = STDERR_FILENO, .err_fd = STDERR_FILENO, .tee = 1, .user_command = 1 };
	struct dd_proc_result r;
	int rc;

	dd_info("post_restore %zu/%zu: %s", number, total, cmd);
	rc = dd_proc_run(&proc, "post_restore", &r);
	if (rc < 0)
		/* not started: no status and no output; started: it exited or was killed */
		post_restore_failed(number, total, cmd, snapshot, &r, r.exit_code >= 0 || r.signal, exit_status);
	dd_proc_result_release(&r);
	return rc;
}

/*
 * Run p's post_restore commands, then [hooks]', in order; the first
 * failure stops them; `skip` (--no-hooks): none is run. The run is
 * recorded (post-restore.c) every time, also with no command or skipped,
 * so the record names the snapshot this restore left. 0, or -1 with the
 * error naming the command that failed.
 */
static int
run_post_restore(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
		 const char *snapshot, const char *conninfo, const char *database, int skip)
{
	size_t np = 0, nh = 0, total;
	struct dd_post_restore_last rec = { .snapshot = (char *)snapshot, .skipped = skip };
	char **env;
	int rc = 0;

	while (p->post_restore && p->post_restore[np])
		np++;
	while (cfg->post_restore && cfg->post_restore[nh])
		nh++;
	total = np + nh;
	if (total && !skip) {
		env = dd_workflow_post_restore_env(p, snapshot, conninfo, database);
		fflush(stdout);
		fflush(stderr);
		for (size_t i = 0; i < total && rc == 0; i++) {
			const char *cmd = i < np ? p->post_restore[i] : cfg->post_restore[i - np];
			if ((rc = run_command(repo, env, cmd, i + 1, total, snapshot, &rec.exit_status)) < 0) {
				rec.failed = (int)(i + 1);
				rec.command = (char *)cmd;
			}
		}
		dd_workflow_post_restore_env_free(env);
	}
	rec.total = (int)total;
	rec.when = (long long)time(NULL);
	{
		struct dd_error_saved why;
		dd_error_save(&why);
		if (dd_workflow_post_restore_record(repo, p->name, &rec) < 0)
			dd_warn("%s", dd_error_last());
		dd_error_restore(&why);
	}
	return rc;
}

/*
 * The working database holds the ref's snapshot already (per <statedir>/pg):
 * DD_NOTHING_TO_DO = leave it (message given), 0 = rebuild it, -1 = error.
 * Connects to tell whether it changed since; `use` (DD_RESTORE_KEEP) keeps
 * it either way, and asks only to say which.
 */
static int
keep_or_rebuild(const struct dd_pg_state *state, const char *conninfo, const char *snapshot, int flags)
{
	const char *since = state->how && !strcmp(state->how, "snapshot") ? "since snapshot" : "since restore";
	const char *event = state->how && !strcmp(state->how, "snapshot") ? "taken from it" : "restored";
	enum dd_pg_change ch;
	char *why = NULL;
	int rc = 0;

	if (dd_pg_changes(&ch, conninfo, state->fingerprint, 1000, &why) < 0)
		return -1;
	if (ch == DD_PG_MISSING) {
		rc = 0;
	} else if (ch == DD_PG_UNCHANGED) {
		dd_info("database %s already holds snapshot %.12s, unchanged %s", state->database, snapshot, since);
		rc = DD_NOTHING_TO_DO;
	} else if (flags & DD_RESTORE_KEEP) {
		if (ch == DD_PG_CHANGED)
			dd_info("database %s already holds snapshot %.12s; kept it with its local changes (made %s)",
				state->database, snapshot, since);
		else
			dd_info("database %s already holds snapshot %.12s; kept it as it is (whether it changed %s is "
				"unknown: %s)", state->database, snapshot, since, why);
		rc = DD_NOTHING_TO_DO;
	} else if (ch == DD_PG_CHANGED) {
		dd_info("database %s changed since snapshot %.12s was %s%s%s%s: restoring it again (the edited database "
			"is kept)", state->database, snapshot, event, why ? " (" : "", why ? why : "", why ? ")" : "");
	} else {
		dd_info("cannot tell whether database %s changed since snapshot %.12s was %s (%s): restoring it again "
			"(the current database is kept)", state->database, snapshot, event, why);
	}
	free(why);
	return rc;
}

/*
 * The database holds the snapshot unchanged: so does the media folder
 * (DD_NOTHING_TO_DO), or not: 0, restore both again (the folder's changes
 * go to the stash with the database), or -1.
 */
static int
media_keep_or_rebuild(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
		      const char *snapshot)
{
	const char *why;
	int r = dd_media_at_snapshot(repo, cfg, p, snapshot, &why);

	if (r < 0)
		return -1;
	if (r == 1)
		return DD_NOTHING_TO_DO;
	dd_info("media folder %s %s: restoring snapshot %.12s again (its files are kept in a stash with the database)",
		p->media, why, snapshot);
	return 0;
}

/*
 * Read the working record into *state and finish a media folder a killed
 * switch left to finish (pg/state.h: media_pending). An unreadable record,
 * or a pending apply that fails, is an error unless `lenient` (--force: the
 * record is rewritten anyway; the switch sets the folder aside as it is).
 */
static int
finish_media(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p, struct dd_pg_state *state,
	     int lenient)
{
	if (dd_pg_state_read(state, repo->statedir, dd_config_database(cfg, p)) < 0) {
		if (!lenient)
			return -1;
		dd_error_clear();
		return 0;
	}
	if (dd_media_finish_pending(repo, cfg, p, state) < 0) {
		if (!lenient) {
			dd_hint("`git dnadata restore --force` restores the snapshot anyway, setting the folder aside as it "
				"is");
			return -1;
		}
		/* --force: the switch sets the folder aside as it is and records what it holds then */
		dd_warn("%s; going on with the folder as it is (--force)", dd_error_last());
		dd_error_clear();
	}
	state->media_pending = 0;
	return 0;
}

/*
 * The ref file `rev` names for `p`: 0, or DD_NOTFOUND with an error and a
 * hint that works there (a revision without the file: the commits that
 * have one; no snapshot at all: take one), or -1.
 */
static int
read_target(struct dd_ref **out, struct dd_repo *repo, const struct dd_profile *p, const char *rev)
{
	int r = read_ref(out, repo, p, rev);
	char *rel;

	if (r != DD_NOTFOUND)
		return r;
	rel = dd_ref_path(p->name);
	if (rev) {
		dd_error("profile %s has no ref file at %s", p->name, rev);
		dd_hint("`git log --oneline -- %s` lists the commits that have one; restore one with "
			"`git dnadata restore %s --at <commit>`", rel, p->name);
	} else {
		dd_error("profile %s has no snapshot yet", p->name);
		dd_hint("take one with `git dnadata snapshot %s`", p->name);
	}
	free(rel);
	return DD_NOTFOUND;
}

int
dd_workflow_check(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p, const char *rev,
		  char snapshot_out[65])
{
	struct dd_ref *ref = NULL;
	struct dd_pg_state state;
	int rc;

	memset(&state, 0, sizeof(state));
	if (snapshot_out)
		snapshot_out[0] = '\0';
	rc = read_ref(&ref, repo, p, rev);
	if (rc != 0)
		return rc;
	if (snapshot_out)
		snprintf(snapshot_out, 65, "%s", ref->snapshot);
	rc = dd_pg_state_read(&state, repo->statedir, dd_config_database(cfg, p));
	/* a switch cut short by a kill: the record may be behind the database; the restore finishes it */
	if (rc == 0)
		rc = !state.interrupted && !state.media_pending && state.snapshot && !strcmp(state.snapshot, ref->snapshot)
			     ? DD_NOTHING_TO_DO
			     : 0;
	dd_pg_state_release(&state);
	dd_ref_free(ref);
	return rc;
}

int
dd_workflow_open_store_reading(struct dd_store **st, const struct dd_config *cfg, struct dd_repo *repo)
{
	struct dd_error_saved why;

	if (dd_workflow_open_store(st, cfg, repo, 0) == 0)
		return 0;
	dd_error_save(&why);
	if (dd_workflow_open_store(st, cfg, repo, DD_STORE_OFFLINE) < 0)
		return dd_error_restore(&why);
	dd_debug("store unreachable (%s); using the local cache only", why.msg ? why.msg : "");
	dd_store_offline_because(*st, &why); /* what the cache lacks is then reported with this reason */
	dd_error_saved_free(&why);
	return 0;
}

/* What the switch needs to load the snapshot, only when it must restore it. */
struct loader {
	struct dd_repo *repo;
	const struct dd_config *cfg;
	const struct dd_profile *p;
	const char *rev;
	const struct dd_ref *ref;
};

/* Load the manifest of the ref's snapshot from the cache or the store (dd_pg_switch_opts.load). */
static int
load_snapshot(void *arg, struct dd_store **st, struct dd_snapshot **snap)
{
	struct loader *l = arg;
	int r;

	*st = NULL;
	*snap = NULL;
	if (dd_workflow_open_store_reading(st, l->cfg, l->repo) < 0)
		return -1;
	r = dd_snapshot_load(snap, *st, l->ref->snapshot);
	if (r == DD_NOTFOUND) {
		dd_error("snapshot %.12s (named by .dnadata/refs/%s%s%s) is in neither the local cache nor the store",
			 l->ref->snapshot, l->p->name, l->rev ? " at " : "", l->rev ? l->rev : "");
		dd_hint("run `git dnadata push` on the machine that took it, or check the store url");
	}
	if (r != 0) {
		dd_store_free(*st);
		*st = NULL;
		return -1;
	}
	dd_store_snapshot_used(*st, l->ref->snapshot); /* gc's LRU order (cache-gc.c) */
	return 0;
}

/*
 * Switch p's database to the ref's snapshot (pg/switch.c: a stash renamed
 * back, a spare, a template clone, or a restore). `clean`: the database
 * holds it already but was edited: a clean copy, not a stash. *left gets
 * the snapshot the working database held before (for the spare job).
 */
static int
switch_snapshot(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p, const char *rev,
		const struct dd_ref *ref, int flags, int clean, const struct dd_pg_state *prev,
		struct dd_media_switch *ms, const struct dd_inline *in, struct dd_pg_switch_result *res)
{
	struct loader l = { repo, cfg, p, rev, ref };
	char *branch = dd_workflow_current_branch(repo);
	/*
	 * The branch the working database is left on: this one if it was restored for it (or is rebuilt);
	 * else the one the newest checkout came from; else the one it was restored for.
	 */
	char *left = clean || (branch && prev->branch && !strcmp(prev->branch, branch))
			     ? (branch ? dd_strdup(branch) : NULL)
			     : dd_workflow_branch_left(repo, branch);
	struct dd_pg_switch_opts o = {
		.conninfo = dd_config_database(cfg, p),
		.statedir = repo->statedir,
		.profile = p->name,
		.snapshot = ref->snapshot,
		.branch = branch,
		.branch_left = left, /* NULL: the one recorded */
		.jobs = cfg->jobs,
		.terminate = (flags & DD_RESTORE_TERMINATE) || terminate_of(cfg, p),
		.force = (flags & DD_RESTORE_FORCE) != 0,
		.clean = clean,
		.load = load_snapshot,
		.load_arg = &l,
		.media = dd_media_switch_hooks(ms),
		.sql_schema = in ? &in->schema : NULL, /* an inline profile: its files, not the store */
		.sql_data = in ? &in->data : NULL,
	};
	int rc = -1;

	if (dd_pg_switch(&o, res) < 0)
		goto out;
	if (res->stash)
		dd_info("restored snapshot %.12s into database %s (the previous one is kept as %s): %s in %.0f ms",
			ref->snapshot, res->database, res->stash, dd_pg_switch_how_name(res->how), res->seconds * 1000);
	else
		dd_info("restored snapshot %.12s into database %s (new): %s in %.0f ms", ref->snapshot, res->database,
			dd_pg_switch_how_name(res->how), res->seconds * 1000);
	if (res->media) {
		const struct dd_media_stats *m = dd_media_switch_stats(ms);
		dd_info("media folder %s: %s%.12s, %" PRIu64 " files (%" PRIu64 " written, %" PRIu64 " removed)", p->media,
			!*res->media ? "empty" : strcmp(res->media, ref->snapshot) ? "the files set aside with its stash, "
										  : "snapshot ",
			res->media, m->files, m->written_files, m->removed);
	}
	rc = 0;
out:
	free(left);
	free(branch);
	return rc;
}

int
dd_workflow_restore(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
		   const char *rev, int flags)
{
	const char *conninfo = dd_config_database(cfg, p);
	struct dd_ref *ref = NULL;
	struct dd_pg_state state;
	struct dd_pg_switch_result res;
	struct dd_media_switch *ms = NULL;
	struct dd_inline in = { DD_BUF_INIT, DD_BUF_INIT };
	int rc = -1, r, dblock = -1, clean = 0;
	char *left = NULL;

	memset(&state, 0, sizeof(state));
	memset(&res, 0, sizeof(res));
	r = read_target(&ref, repo, p, rev);
	if (r == DD_NOTFOUND && (flags & DD_RESTORE_MISSING_OK)) {
		dd_error_clear();
		dd_info("profile %s has no snapshot yet: nothing to restore", p->name);
		rc = DD_NOTHING_TO_DO;
		goto out;
	}
	if (r != 0)
		goto out;
	/* an inline profile: the files name the snapshot (their hash) and are what a build loads */
	if (p->is_inline && dd_inline_read(&in, repo, p, rev, ref) < 0)
		goto out;
	/* a git hook never waits for the lock (DD_RESTORE_HOOK): DD_EBUSY, and the hook says so */
	r = (flags & DD_RESTORE_HOOK) ? dd_pg_state_trylock(repo->statedir, conninfo, &dblock)
				      : dd_pg_state_lock(repo->statedir, conninfo, &dblock);
	if (r == DD_EBUSY)
		rc = DD_EBUSY;
	if (r < 0)
		goto out;
	/*
	 * Connects only when a copy left by a dead process or a switch cut short is recorded; before the
	 * media folder is set aside (also for --force), so a folder a killed switch left half applied is
	 * put back first and the files it had set aside stay named.
	 */
	if (dd_pg_reap_leftovers(repo->statedir, conninfo) < 0) {
		dd_warn("%s", dd_error_last());
		dd_error_clear();
	}
	if (finish_media(repo, cfg, p, &state, flags & DD_RESTORE_FORCE) < 0)
		goto out;
	if (!(flags & DD_RESTORE_FORCE)) {
		/* the cheap check first: only a database recorded as holding the snapshot is asked whether it changed */
		if (state.snapshot && !strcmp(state.snapshot, ref->snapshot)) {
			/* a hook switches branches: it keeps local edits, like `use` (here after a switch a kill cut short) */
			r = keep_or_rebuild(&state, conninfo, ref->snapshot,
					    (flags & DD_RESTORE_HOOK) ? flags | DD_RESTORE_KEEP : flags);
			if (r == DD_NOTHING_TO_DO && !(flags & (DD_RESTORE_HOOK | DD_RESTORE_KEEP)))
				r = media_keep_or_rebuild(repo, cfg, p, ref->snapshot);
			if (r != 0) {
				rc = r;
				goto out;
			}
			clean = 1;
		}
	}
	left = state.snapshot ? dd_strdup(state.snapshot) : NULL;
	/* the folder's lock; it is set aside just before the switch's journal (workflow/media.c) */
	if (dd_media_switch_begin(&ms, repo, cfg, p, ref->snapshot) < 0)
		goto out;
	if (switch_snapshot(repo, cfg, p, rev, ref, flags, clean, &state, ms, p->is_inline ? &in : NULL, &res) < 0)
		goto out;
	/* the hooks run without the locks: one may well run git dnadata on this database or folder */
	dd_unlock_file(dblock);
	dblock = -1;
	dd_media_switch_free(ms);
	ms = NULL;
	rc = 0;
	/* warm spares for what comes next, in the background; a failure to start it only costs speed */
	if (dd_workflow_spawn_spares(repo, cfg, p, left) < 0) {
		dd_debug("no spare job: %s", dd_error_last());
		dd_error_clear();
	}
	if (run_post_restore(repo, cfg, p, ref->snapshot, conninfo, res.database, !!(flags & DD_RESTORE_NO_HOOKS)) < 0)
		rc = DD_EHOOK;
	/* the schema after the migrations (not after a failed one: half a migration is no schema to review) */
	if (rc == 0) {
		int commands = !(flags & DD_RESTORE_NO_HOOKS) && ((p->post_restore && p->post_restore[0]) ||
								   (cfg->post_restore && cfg->post_restore[0]));
		/* exactly the snapshot (not a stash with local edits, no migration ran): its dump may be current */
		dd_workflow_schema_dump_after_restore(repo, cfg, p,
						      res.how != DD_PG_SWITCH_STASH && !commands ? ref->snapshot : NULL);
	}
out:
	if (rc == DD_ERROR)
		dd_error_wrap("restoring profile %s", p->name);
	dd_unlock_file(dblock);
	dd_pg_switch_result_release(&res);
	dd_media_switch_free(ms);
	dd_pg_state_release(&state);
	dd_inline_release(&in);
	free(left);
	dd_ref_free(ref);
	return rc;
}
