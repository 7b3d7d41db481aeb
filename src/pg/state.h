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
/* Record that this process is building database `name` (pending-<our pid>). Atomic. */
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

#endif
