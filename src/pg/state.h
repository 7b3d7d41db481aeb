/*
 * pg/state.h: what each working database holds, its stashes and the copies
 * being built, as recorded in <statedir>/pg/ (layout in state.c).
 *
 * The first part is what cmd/ and workflow/ use: reading and writing the
 * record of a working database named by a connection string. Only
 * dd_pg_state_verify() connects to the server. The second part works on a
 * resolved target and is for src/pg/ (restore, the reaping of copies left
 * by killed processes).
 */
#ifndef DD_PG_STATE_H
#define DD_PG_STATE_H

#include <stddef.h>

struct dd_pg_stash {
	char *name;        /* database name of the stash */
	char *snapshot;    /* what the working database held when it was stashed ("" unknown) */
	char *profile;
	char *stashed;     /* ISO 8601 UTC */
};

/* A copy recorded as being built (pending-<pid>): by a running restore, or left by one killed with -9. */
struct dd_pg_pending {
	char *name;        /* the database being built, <db>__dnadata_new_<pid> */
	long pid;          /* the process that recorded it */
	int alive;         /* that process still runs (or its pid was taken by another process) */
	int exists;        /* the database exists; only known once dd_pg_state_verify() succeeded */
};

struct dd_pg_state {
	char *server;      /* host:port */
	char *database;
	char *snapshot;    /* snapshot id it holds, or NULL if unknown */
	char *profile;
	char *when;        /* ISO 8601 UTC of the restore or snapshot */
	char *how;         /* "restored" or "snapshot" */
	char *fingerprint; /* change fingerprint taken then (change.c), or NULL */
	struct dd_pg_stash *stashes;      /* oldest first */
	size_t nstashes;
	struct dd_pg_pending *pending;    /* by pid */
	size_t npending;
	int verified;      /* dd_pg_state_verify() asked the server about stashes and pending copies */
	char *branch;      /* the branch it was restored for (a switch), or NULL if unknown */
	int interrupted;   /* a switch was cut short (its journal is there): what it holds is not known until the
			      next command under the database lock finishes the records (dd_pg_reap_leftovers) */
	/*
	 * The profile's media folder switched with it (issue 17): the media id
	 * the folder was made equal to ("" the empty folder), or NULL when no
	 * media switched with this database. media_pending: a switch was cut
	 * short while the folder changed; the next restore makes it equal to
	 * `media` (dd_pg_state_set_media clears it).
	 */
	char *media;
	int media_pending;
};

/* The record for the working database named by `conninfo` (no connection made). Missing = empty state. */
int dd_pg_state_read(struct dd_pg_state *out, const char *statedir, const char *conninfo);
/*
 * Ask the server (of `conninfo`, which `s` was read for) which recorded
 * stashes and pending copies still exist, and forget what no longer does:
 * the record of a stash whose database is gone is removed (from `s` and
 * from disk), and so is a pending record whose process is dead and whose
 * copy is gone (nothing is left to drop). Sets s->verified and each
 * pending entry's `exists`. Connects only when there is a record to check.
 * -1 (error set, `s` untouched) when the server cannot be asked.
 */
int dd_pg_state_verify(struct dd_pg_state *s, const char *statedir, const char *conninfo);
/*
 * Record that the working database holds `snapshot` now (how:
 * "restored"/"snapshot"), with its change fingerprint (NULL: none). Atomic.
 */
int dd_pg_state_set(const char *statedir, const char *conninfo, const char *snapshot,
		    const char *profile, const char *how, const char *fingerprint);
void dd_pg_state_release(struct dd_pg_state *s);

/*
 * Hold the lock of the working database `conninfo` names (a flock on
 * <statedir>/pg/<key>/lock; no connection made) while its contents and
 * records change: snapshot (the fingerprint it records must be of the
 * database it read), restore and use (reap, build, swap, record). Profiles
 * sharing a database take turns; waits (saying so) while another command
 * holds it. Release with dd_unlock_file().
 */
int dd_pg_state_lock(const char *statedir, const char *conninfo, int *fd);
/* The same without waiting (the git hooks): DD_EBUSY, error set, when another command holds it. */
int dd_pg_state_trylock(const char *statedir, const char *conninfo, int *fd);

/*
 * Record, in the working record of `conninfo`'s database, the media id the
 * folder holds with it (NULL: none) and whether making the folder equal
 * to it is still pending. The rest of the record is kept. Atomic.
 */
int dd_pg_state_set_media(const char *statedir, const char *conninfo, const char *media, int pending);

/*
 * Every media id the records of every database under `statedir` name
 * (each <statedir>/pg/KEY/ folder: stashes, working records, switch journals, whatever
 * the worktree, branch or profile file they came from): add(arg, id) for
 * each, "" (the empty folder) left out. 0, or -1 (error set).
 */
int dd_pg_state_media_named(const char *statedir, void (*add)(void *arg, const char *id), void *arg);
/* The same for snapshot ids (the store's gc keeps what any record names): add(arg, id) for each. 0, -1. */
int dd_pg_state_snapshots_named(const char *statedir, void (*add)(void *arg, const char *id), void *arg);
/*
 * Hold, without waiting, the lock of every database with records under
 * `statedir`: 0 with *fds (n of them; release with dd_pg_state_unlock_all),
 * DD_EBUSY (error set, none held) while a command holds one, or -1.
 */
int dd_pg_state_trylock_all(const char *statedir, int **fds, size_t *n);
void dd_pg_state_unlock_all(int *fds, size_t n);

/* Current UTC time as "YYYY-MM-DDTHH:MM:SSZ". Caller frees. */
char *dd_pg_now_iso(void);

/* ---- for src/pg/: records of a resolved target (struct dd_pg_target, pg/internal.h) ---- */

struct dd_pg_target;

/* <statedir>/pg/<key of target>. Caller frees. */
char *dd_pg_state_dir(const char *statedir, const struct dd_pg_target *t);
int dd_pg_state_set_target(const char *statedir, const struct dd_pg_target *t, const char *snapshot,
			   const char *profile, const char *how, const char *fingerprint);
/* Record stash database `stash` of the target (what it held: snapshot, profile). Atomic. */
int dd_pg_state_add_stash(const char *statedir, const struct dd_pg_target *t, const char *stash,
			  const char *snapshot, const char *profile);
/* Remove the record of stash `stash`: 0, DD_NOTFOUND (there was none), or -1 (error set). */
int dd_pg_state_remove_stash(const char *statedir, const struct dd_pg_target *t, const char *stash);
/*
 * Record that this process is building database `name` (pending-<our pid>). Atomic. Refuses (-1, error
 * set) while our record names another database not recorded as a copy: a partial one still to drop.
 */
int dd_pg_state_pending_add(const char *statedir, const struct dd_pg_target *t, const char *name);
/*
 * Every pending record of the target, sorted by pid, with whether its
 * process is alive (our own pid counts as alive). `exists` is 0: ask the
 * server. Records that cannot be read are skipped. Free with
 * dd_pg_pending_free().
 */
int dd_pg_state_pending_list(struct dd_pg_pending **out, size_t *n, const char *statedir,
			     const struct dd_pg_target *t);
void dd_pg_pending_free(struct dd_pg_pending *p, size_t n);
/* Remove the pending record of process `pid`: 0, DD_NOTFOUND (there was none), or -1 (error set). */
int dd_pg_state_pending_remove(const char *statedir, const struct dd_pg_target *t, long pid);

/*
 * ---- templates, spares and stashes of a working database ("copies") ----
 *
 * Every database we make beside the working one is recorded in
 * <statedir>/pg/<key>/ (layout in state.c), one record per database:
 *   template  <db>__dnadata_tmpl_<id prefix>: a restored snapshot kept to
 *             clone from (ALLOW_CONNECTIONS false: nobody edits it);
 *   spare     <db>__dnadata_spare_<id prefix>[_n]: a clone of a template
 *             made ahead of time, renamed in by the next switch to it (also
 *             closed to connections until then);
 *   stash     <db>__dnadata_stash_<time>[_n]: a working database that was
 *             switched away from, with the branch it was left on and
 *             whether it had been modified since its restore.
 * A copy being built is not recorded here but as pending (above) until it
 * is complete: a kill -9 leaves a pending copy that the next command drops,
 * never a record of a half-built database. Records of databases the user
 * dropped are forgotten by dd_pg_copies_list(..., DD_PG_LIST_VERIFY).
 * These records are the interface of gc and status (sizes, budgets): add
 * to them, do not change them.
 */
enum dd_pg_copy_kind { DD_PG_COPY_TEMPLATE, DD_PG_COPY_SPARE, DD_PG_COPY_STASH };

/* Was a copy modified since the snapshot it holds was restored (or taken)? */
enum dd_pg_modified { DD_PG_MOD_NO, DD_PG_MOD_YES, DD_PG_MOD_UNKNOWN };

struct dd_pg_copy {
	char *name;          /* database name */
	enum dd_pg_copy_kind kind;
	char *snapshot;      /* snapshot id it holds ("" unknown: a stash of a database never restored) */
	char *profile;       /* "" unknown */
	char *branch;        /* stash: the branch it was left on; "" unknown, and for templates and spares */
	enum dd_pg_modified modified; /* stash: as found when stashed (unknown counts as modified);
					 templates and spares: DD_PG_MOD_NO */
	char *fingerprint;   /* stash: change fingerprint of its restore (change.c), tells later edits; template
				and spare: the sequence part of the snapshot's fingerprint; NULL unknown */
	char *created;       /* ISO 8601 UTC */
	char *used;          /* last used (cloned from, renamed in), ISO 8601 UTC; = created until then */
	int replaced;        /* stash: set aside by a restore of the same snapshot on its own branch (the user asked
				for a clean copy): kept and listed, but never renamed back by a checkout of that branch */
	char *media;         /* stash: the media id (dd_media_stash) of the profile's folder as it was when the
				database was stashed: its snapshot when unchanged, a private snapshot holding the
				files set aside, "" the empty folder; NULL: no media switched with it */
	char *media_folder;  /* stash: the folder (absolute) `media` was taken of; NULL: not recorded */
	int media_private;   /* stash: `media` is a private snapshot (store.h): files set aside that no stored
				snapshot holds, kept only while a record names them */
	/* filled only by dd_pg_copies_list(..., DD_PG_LIST_VERIFY) */
	long long size;      /* bytes (pg_database_size), -1 unknown */
};

/* "template", "spare", "stash"; and "no", "yes", "unknown" */
const char *dd_pg_copy_kind_name(enum dd_pg_copy_kind kind);
const char *dd_pg_modified_name(enum dd_pg_modified m);
/* Does the stash hold media files set aside (its media id a private snapshot)? */
int dd_pg_copy_media_set_aside(const struct dd_pg_copy *c);
/*
 * Can this copy be dropped without losing anything (template, spare, stash
 * not modified and without media set aside)?
 */
int dd_pg_copy_disposable(const struct dd_pg_copy *c);

enum {
	DD_PG_LIST_VERIFY = 1 << 0, /* ask the server: forget records whose database is gone, fill `size` */
};

/*
 * The copies recorded for the working database `conninfo` names, templates
 * first, then spares, then stashes, each least recently used first. No
 * connection unless DD_PG_LIST_VERIFY (then -1, nothing forgotten, when the
 * server cannot be asked). Free with dd_pg_copies_free().
 */
int dd_pg_copies_list(struct dd_pg_copy **out, size_t *n, const char *statedir, const char *conninfo, int flags);
void dd_pg_copies_free(struct dd_pg_copy *v, size_t n);
void dd_pg_copy_release(struct dd_pg_copy *c);

/* Record that copy `name` was used now (LRU order). 0, DD_NOTFOUND (no such record), -1. */
int dd_pg_copy_touch(const char *statedir, const char *conninfo, const char *name);

enum {
	DD_PG_DROP_FORCE = 1 << 0,  /* also a stash with local edits (or whose edits are unknown) */
	DD_PG_DROP_UNLOCKED = 1 << 1, /* the caller holds no lock (a background job): see below */
};

/*
 * Drop copy `name` of the working database `conninfo` names, safely: only
 * a database recorded as ours (never the working one, never a stranger's);
 * a stash modified since its restore (or not known not to be) only with
 * DD_PG_DROP_FORCE. The record is turned into a pending one before the
 * DROP, so a kill at any point leaves either the copy with its record, or
 * a pending copy the next command drops, or nothing. Other sessions on it
 * are ended (it is ours). First finishes a switch cut short and drops
 * the copies of dead processes (dd_pg_reap_leftovers), so what it drops
 * cannot mislead a switch's recovery. Takes no lock: the caller holds
 * dd_pg_state_lock(). With DD_PG_DROP_UNLOCKED the caller holds none: the
 * lock is taken without waiting only while the record is checked and
 * turned into a pending one, and released before the DROP (which may take
 * seconds), so a git hook's switch never finds it held for that; DD_EBUSY
 * (error set, nothing done) when another command holds it. Returns 0,
 * DD_NOTFOUND (no such copy of ours: error set), DD_EXISTS (a stash with
 * local edits, not forced: error and hint set), DD_EBUSY, or -1.
 */
int dd_pg_copy_drop(const char *statedir, const char *conninfo, const char *name, int flags);

/* ---- for src/pg/: the working record with its branch, the switch journal ---- */

/* dd_pg_state_read() of a resolved target. */
int dd_pg_state_read_target(struct dd_pg_state *out, const char *statedir, const struct dd_pg_target *t);
/* dd_pg_state_set_target() that also records the branch (NULL: none). */
int dd_pg_state_set_working(const char *statedir, const struct dd_pg_target *t, const char *snapshot,
			    const char *profile, const char *how, const char *fingerprint, const char *branch);
/* dd_pg_state_set_media() of a resolved target (a record is written when there is none). */
int dd_pg_state_set_media_target(const char *statedir, const struct dd_pg_target *t, const char *media, int pending);
/* dd_pg_state_set_working() that also records the media id (NULL: none) and whether applying it is pending. */
int dd_pg_state_set_switched(const char *statedir, const struct dd_pg_target *t, const char *snapshot,
			     const char *profile, const char *how, const char *fingerprint, const char *branch,
			     const char *media, int media_pending);

/*
 * The switch in progress (file "switch"): written just before the
 * transaction that renames `source` into place (and the working database
 * to `stash`), removed once the records say what it did. A kill in
 * between leaves it; the next command under the database lock looks at
 * which databases exist and finishes the records (dd_pg_journal_recover).
 */
struct dd_pg_journal {
	char *source;      /* the database renamed to the working name */
	char *kind;        /* "stash", "spare", "clone" or "restore" */
	char *stash;       /* the name the working database goes to, or NULL */
	char *snapshot;    /* what the working database holds after */
	char *profile;
	char *branch;      /* NULL: none */
	char *fingerprint; /* the record's fingerprint after (a stash renamed back keeps its own); NULL: unknown */
	char *source_oid;  /* pg_database.oid of `source` (a rename keeps it): the rename committed iff the
			      working name has it; NULL: not recorded (older journals) */
	/*
	 * A media folder switching with it (NULL both: none): `media` the id the
	 * folder is being made equal to, `media_stash` the folder as it was
	 * (recorded with the stash). Recovery records the one that goes with the
	 * database it finds (committed: media, else media_stash) as pending in
	 * the working record: the next restore applies it.
	 */
	char *media;
	char *media_stash;
	char *media_folder; /* the folder both are of */
	int media_private;  /* media_stash is a private snapshot */
};
int dd_pg_journal_write(const char *statedir, const struct dd_pg_target *t, const struct dd_pg_journal *j);
/* 0, DD_NOTFOUND (no switch in progress), -1 */
int dd_pg_journal_read(struct dd_pg_journal *j, const char *statedir, const struct dd_pg_target *t);
int dd_pg_journal_remove(const char *statedir, const struct dd_pg_target *t);
void dd_pg_journal_release(struct dd_pg_journal *j);

/* ---- for src/pg/: copy records of a resolved target ---- */

/* Write (create or replace) the record of copy c->name; `created`/`used` NULL = now. Atomic. */
int dd_pg_copy_record(const char *statedir, const struct dd_pg_target *t, const struct dd_pg_copy *c);
/* The record of copy `name` (any kind): 0, DD_NOTFOUND, -1. Release with dd_pg_copy_release(). */
int dd_pg_copy_get(struct dd_pg_copy *out, const char *statedir, const struct dd_pg_target *t, const char *name);
/* Remove the record of copy `name` (any kind): 0, DD_NOTFOUND, -1. */
int dd_pg_copy_forget(const char *statedir, const struct dd_pg_target *t, const char *name);
/* The records of a resolved target (no connection). */
int dd_pg_copies_list_target(struct dd_pg_copy **out, size_t *n, const char *statedir,
			     const struct dd_pg_target *t);

#endif
