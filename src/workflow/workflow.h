/*
 * workflow/workflow.h: snapshot and restore of a profile, end to end: config,
 * ref file, store, database, commit. Shared by the commands snapshot,
 * restore and use (and, later, the git hooks), so they behave the same.
 */
#ifndef DD_WORKFLOW_WORKFLOW_H
#define DD_WORKFLOW_WORKFLOW_H

#include <stddef.h>

struct dd_repo;
struct dd_config;
struct dd_profile;
struct dd_store;
struct dd_store_opts;

/*
 * How to reach the configured store: its URL and remote settings ([store]
 * endpoint, region, path_style, transfers, part_size, retries), the clone's
 * state folder, and `flags` (DD_STORE_OFFLINE ...). Everything that opens
 * the store goes through here, so every command reaches it the same way.
 */
void dd_workflow_store_opts(struct dd_store_opts *o, const struct dd_config *cfg, const struct dd_repo *repo,
			    int flags);
/* dd_store_open_opts() with those options. */
int dd_workflow_open_store(struct dd_store **st, const struct dd_config *cfg, const struct dd_repo *repo, int flags);
/* The store to read from: online, else (unreachable) the local cache only, which may hold all we need. */
int dd_workflow_open_store_reading(struct dd_store **st, const struct dd_config *cfg, struct dd_repo *repo);

/* ---- the profile's media folder (media.c) ---- */

struct dd_media_opts;
/* p's media folder, absolute (a relative one is under the work tree); NULL when p has none. Caller frees. */
char *dd_workflow_media_root(const struct dd_repo *repo, const struct dd_profile *p);
/*
 * Hold media folder `root`'s lock (<statedir>/locks/media-HASH.lock; waits,
 * saying so) while a capture, set-aside, apply or finish reads or changes
 * it: two profiles of different databases may share a folder. 0, -1, or
 * DD_EBUSY (a git hook's process, which never waits: dd_lock_never_wait).
 */
int dd_workflow_media_lock(const struct dd_repo *repo, const char *root, int *fd);
/* The media module's options for p's folder `root` (borrowed): state folder, owner, progress on a terminal. */
void dd_workflow_media_opts(struct dd_media_opts *o, const struct dd_repo *repo, const struct dd_profile *p,
			    const char *root);
/*
 * A stash with media set aside was dropped: drop its private snapshot `id`
 * (store.h) unless it is not private or a record still names it (another
 * stash, a working record, a folder's recorded snapshot). 1 dropped, 0
 * kept (or not private), -1. Call it holding the dropped stash's lock.
 */
/*
 * Every media snapshot id this clone names: each configured folder's index
 * records one, and every database's records (working, stashes, journals);
 * add(arg, id) for each ("" possible). The store's gc keeps them all.
 */
int dd_workflow_media_each_named(struct dd_repo *repo, const struct dd_config *cfg,
				 void (*add)(void *arg, const char *id), void *arg);
int dd_workflow_media_release(struct dd_repo *repo, const struct dd_config *cfg, struct dd_store *st, const char *id);
/*
 * gc: drop the private snapshots no record names (left by a failed or
 * killed switch), holding every working database's lock without waiting
 * (DD_EBUSY, nothing done, when a command holds one). `dry`: only count.
 * *dropped: how many. 0, DD_EBUSY or -1.
 */
int dd_workflow_media_sweep(struct dd_repo *repo, const struct dd_config *cfg, struct dd_store *st, int dry,
			    size_t *dropped);

enum {
	DD_SNAPSHOT_NO_COMMIT = 1 << 0, /* update the ref file, do not commit it */
	DD_SNAPSHOT_DUMP_ONLY = 1 << 1, /* local cache only; upload later with push */
	DD_SNAPSHOT_KEEP_MEDIA = 1 << 2, /* dd_workflow_snapshot_from: carry the ref's previous snapshot's media */
	DD_SNAPSHOT_FULL = 1 << 3, /* read every table (no incremental reuse of the previous snapshot) */
};

/*
 * Snapshot profile `p`'s database, point .dnadata/refs/<p> at it and
 * commit it ("dnadata: <msg>", default "snapshot <p> (<id>)").
 * Returns 0 for a new snapshot, DD_UNCHANGED when the database has not
 * changed since the ref's snapshot (same id: nothing committed), -1 on error.
 */
int dd_workflow_snapshot(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
			int flags, const char *msg, char id_out[65]);
/*
 * dd_workflow_snapshot() of database `source_dbname` on the working
 * database's server (same connection settings, another dbname: a scratch
 * database, say) as profile p's snapshot: the same locks (p's, then its
 * working database's), ref file and commit. The working database and its
 * record in <statedir>/pg are not touched (it does not hold the new
 * snapshot), and no media is captured: the snapshot has no media listing,
 * so restoring it leaves p's media folder as it is; with
 * DD_SNAPSHOT_KEEP_MEDIA (promote-schema), the media listing of the
 * snapshot p's ref names now goes into it unchanged, by reference
 * (dd_media_carry). Same results.
 */
int dd_workflow_snapshot_from(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
			      const char *source_dbname, int flags, const char *msg, char id_out[65]);
/*
 * `snapshot --from-dump`: load pg_dump output `path` (custom, directory,
 * tar or plain format) into a scratch database beside p's working
 * database (pg/load.c), snapshot it as p (dd_workflow_snapshot_from), and
 * drop it, whatever happened (a kill -9 leaves it to the next command's
 * reaper). A dump that does not load is refused with the failing
 * statement and nothing changes. Same results as dd_workflow_snapshot().
 */
int dd_workflow_snapshot_dump(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
			      const char *path, int flags, const char *msg, char id_out[65]);

enum {
	DD_RESTORE_FORCE = 1 << 0,     /* even if the working database already holds the snapshot */
	DD_RESTORE_TERMINATE = 1 << 1, /* end other sessions on the working database */
	DD_RESTORE_KEEP = 1 << 2,      /* `use`: a database holding the snapshot is kept, local edits included */
	DD_RESTORE_NO_HOOKS = 1 << 3,  /* do not run the post_restore commands (the profile's and [hooks]') */
	DD_RESTORE_MISSING_OK = 1 << 4, /* a profile without a snapshot yet is nothing to do, not an error */
	DD_RESTORE_HOOK = 1 << 5,      /* from a git hook: never prompt, never wait for a lock (DD_EBUSY) */
};

/*
 * The cheap "is there anything to do" check (for the git hooks): compare
 * the snapshot named by p's ref file (in the work tree, or at `rev`) with
 * what <statedir>/pg records p's working database holds. Reads two small
 * local files: no PostgreSQL connection, no store. Whether the database was
 * edited since is not looked at: a switch keeps local edits.
 * Returns DD_NOTHING_TO_DO when the record says the database holds that
 * snapshot (and no switch was cut short by a kill: then the record may be
 * behind, and the restore finishes it), 0 when a restore is needed, DD_NOTFOUND when the profile has
 * no snapshot (no ref file), -1 on error (a broken ref file, say).
 * `snapshot_out` (may be NULL) gets the ref's snapshot id, or "".
 */
int dd_workflow_check(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
		      const char *rev, char snapshot_out[65]);

/*
 * Make `p`'s working database equal the snapshot named by its ref file, as
 * it is in the work tree (rev NULL) or at revision `rev`, then run the
 * post_restore commands (the profile's, then [hooks]'; each run recorded,
 * dd_workflow_post_restore_last). If the working database holds that snapshot already
 * and has not changed since (pg_changes()), nothing is done; if it changed,
 * or that cannot be told, it is rebuilt (and kept as a stash), unless
 * DD_RESTORE_KEEP. Returns 0 when restored, DD_NOTHING_TO_DO when there
 * was nothing to do (already there, or the profile has no snapshot yet and
 * DD_RESTORE_MISSING_OK), -1 on error (nothing changed), DD_EHOOK when the
 * database was restored but a post_restore command failed (error set).
 */
int dd_workflow_restore(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
		       const char *rev, int flags);

/*
 * ---- the last post_restore run (issue 18, post-restore.c) ----
 * Every completed restore of a profile records how its post_restore
 * commands (the profile's, then [hooks]') went in <statedir>, per profile:
 * also when none is configured (total 0) and when --no-hooks skipped them
 * (skipped), so `status` can say "post_restore failed" after a hook's
 * restore, and the record always names the snapshot restored last (it is
 * current while the working database's record holds that snapshot). A
 * restore that finds the database already holding the snapshot (nothing
 * to do) runs no command and leaves the record as it is.
 */
struct dd_post_restore_last {
	char *snapshot;   /* the snapshot restored before the commands ran */
	long long when;   /* unix time the run ended */
	int total;        /* commands configured */
	int failed;       /* 0 all succeeded; else the 1-based number of the failed command */
	int exit_status;  /* its exit status (-1 killed by a signal or not started) */
	char *command;    /* the failed command's text, or NULL */
	int skipped;      /* restore --no-hooks: the commands were not run (failed 0) */
};
/* 0 with *out filled, DD_NOTFOUND when nothing is recorded for `profile`, -1 on error. */
int dd_workflow_post_restore_last(struct dd_repo *repo, const char *profile, struct dd_post_restore_last *out);
void dd_workflow_post_restore_last_release(struct dd_post_restore_last *r);

/*
 * ---- export --sql (export.c, issue 18) ----
 * Write p's snapshot (as its ref file names it in the work tree, or at
 * `rev`) to folder `dir` (missing or empty, else refused) as schema.sql,
 * data.sql and media/ (when the snapshot has a media folder), from the
 * local cache or the store; an inline profile's files from git. 0 or -1.
 */
int dd_workflow_export(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p, const char *rev,
		       const char *dir);

/* ---- the normalised schema (schema.c, issue 18) ---- */

/* ".dnadata/schema/<profile>.sql", relative to the work tree. Caller frees. */
char *dd_workflow_schema_path(const char *profile);

enum {
	DD_SCHEMA_DUMP_AUTO = 1 << 0, /* the dump after a restore: skipped when the profile says schema_dump = no */
};
/*
 * Write p's working database's schema, normalised (pg/normalise.h), to
 * .dnadata/schema/<p>.sql atomically; never committed. Refused when the
 * working database's record says it holds another profile. *rel_out (may
 * be NULL) gets the file's path relative to the work tree on success.
 * Returns 0 when the file was written (new or changed), DD_UNCHANGED when it
 * held that text already (left untouched), DD_NOTHING_TO_DO when AUTO and
 * p has schema_dump = no, -1 on error.
 */
int dd_workflow_schema_dump(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p, int flags,
			    char **rel_out);
/*
 * The same after a restore (AUTO), for a schema file that exists already
 * (a new one would be untracked, and git refuses to check out a branch
 * that tracks it): says what it wrote; a failure is a warning, never the
 * restore's. `snapshot`: what the working database holds
 * exactly (a clone or build of it, no post_restore command ran), or NULL
 * when its schema may differ (a stash with local edits, migrations): with
 * a snapshot, a file already written for it and untouched since is kept
 * without running pg_dump.
 */
void dd_workflow_schema_dump_after_restore(struct dd_repo *repo, const struct dd_config *cfg,
					   const struct dd_profile *p, const char *snapshot);
/*
 * promote-schema: FROM's normalised schema (its working database's when
 * FROM is the active profile and the database holds FROM's ref's
 * snapshot, else its snapshot's) becomes TO's base, once TO's rows load
 * into it in a scratch database: an inline TO's schema.sql, or a
 * store-backed TO's new snapshot (that scratch database). One commit,
 * "dnadata: promote-schema FROM -> TO". A statement that fails refuses it
 * (error naming it) and nothing changes. `id_out`: TO's new snapshot id.
 * Returns 0, DD_UNCHANGED (TO's base was that schema already: no commit),
 * or -1.
 */
int dd_workflow_promote_schema(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *from,
			       const struct dd_profile *to, char id_out[65]);

/* ---- switching: branches and warm spares (switch.c) ---- */

/* The branch HEAD is on (caller frees), or NULL (detached, unborn). */
char *dd_workflow_current_branch(struct dd_repo *repo);
/*
 * The branch just left, from HEAD's reflog: X of the newest "checkout:
 * moving from X to Y" when Y is `current`; else NULL. Caller frees.
 */
char *dd_workflow_branch_left(struct dd_repo *repo, const char *current);
/*
 * The snapshots of `p` likely needed next, most likely first, at most
 * `max`, never `current` (the working database's): `left` (may be NULL),
 * then those p's ref names on the local branches checked out most
 * recently. out[] gets allocated ids. Returns how many.
 */
size_t dd_workflow_spares_wanted(struct dd_repo *repo, const struct dd_profile *p, const char *left,
				 const char *current, char **out, size_t max);
/*
 * Start the spare job for `p` detached (setsid, nice 19, I/O idle, output
 * to <statedir>/spare.log), unless [database] spares = 0. Does not wait.
 */
int dd_workflow_spawn_spares(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
			     const char *left);
/* The job itself (the hidden command `spare`): dd_pg_spares_make() for the wanted snapshots, at most
 * `limit` (< 0: dd_config_spares()). */
int dd_workflow_spares(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
		       const char *left, int limit);

/* ---- moving snapshots between the local cache and the store (transfer.c) ---- */

struct dd_transfer_stats;
struct dd_transfer_progress;

/* Which snapshots a push or fetch is about. */
struct dd_transfer_scope {
	const char *const *profiles; /* NULL: every profile */
	size_t nprofiles;
	int all;                     /* push: also every branch's and tag's ref files (a snapshot available
					nowhere is then skipped with a warning, not an error) */
	int check;                   /* push: check every file the snapshots need with a request (repair) */
	/*
	 * The pre-push hook: exactly these snapshot ids (profiles and `all` are
	 * then ignored), and nothing else is looked at: the store's config is
	 * not checked, so when the known-objects record says the store holds
	 * every manifest, the push makes no request at all.
	 */
	const char *const *ids;
	size_t nids;
	/* progress on a terminal (NULL: none) */
	void (*progress)(const struct dd_transfer_progress *p, void *arg);
	void *progress_arg;
};

/*
 * Upload what the snapshots named by the work tree's ref files (and with
 * `all`, those at the tip of every branch and tag) need and the store
 * lacks; put the store's config back if it lost it. *nsnap gets the number
 * of snapshots considered. 0, or -1.
 */
int dd_workflow_push(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_transfer_scope *scope,
		     struct dd_transfer_stats *stats, size_t *nsnap);
/* Download into the local cache what the work tree's ref files need. */
int dd_workflow_fetch(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_transfer_scope *scope,
		      struct dd_transfer_stats *stats, size_t *nsnap);

#endif
