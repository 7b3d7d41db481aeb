/*
 * pg/pg.h: PostgreSQL snapshot and restore, the face src/cmd/ uses.
 *
 * A snapshot is one exported REPEATABLE READ snapshot of a database: the
 * schema from pg_dump (pre-data and post-data sections), each table's rows
 * from parallel COPY workers in primary-key order, sequence values and large
 * objects, written as streams of a store snapshot (names and attributes in
 * docs/FORMAT.md §7). Restore builds a fresh database from those streams
 * and only then swaps it into place; the previous working database is kept
 * under a stash name. <statedir>/pg/ records which snapshot each working
 * database holds and which stashes exist.
 */
#ifndef DD_PG_PG_H
#define DD_PG_PG_H

#include <stddef.h>
#include <stdint.h>

struct dd_store;
struct dd_snapshot;
struct dd_snapshot_writer;

/* How long a snapshot waits for a table lock by default (like pg_dump --lock-wait-timeout). */
#define DD_PG_LOCK_WAIT_TIMEOUT_MS 30000

struct dd_pg_snapshot_opts {
	const char *conninfo;               /* "" = libpq defaults */
	const char *statedir;               /* where leftovers are recorded (reaped first), or NULL */
	const char *const *exclude_tables;  /* NULL-terminated patterns, or NULL */
	const char *const *exclude_data;
	int jobs;                           /* parallel COPY workers; 0 = one per core */
	/*
	 * Longest wait of the leader for a lock on a table to dump: 0 = the
	 * default (DD_PG_LOCK_WAIT_TIMEOUT_MS), < 0 = forever. The environment
	 * variable DNADATA_LOCK_WAIT_TIMEOUT overrides it: milliseconds, or a
	 * number with "ms", "s" or "min"; 0 = forever. (The workers and pg_dump
	 * lock only what the leader holds, and do not wait: see dump.c.)
	 */
	int lock_wait_timeout_ms;
};

struct dd_pg_snapshot_stats {
	size_t tables;         /* tables whose rows were captured */
	uint64_t rows;
	uint64_t bytes;        /* COPY text bytes of all tables */
	char server_version[32];
	char database[128];
	char server[256];      /* host:port, as recorded in <statedir>/pg */
	char *fingerprint;     /* change fingerprint taken before the snapshot (change.c), or NULL; caller frees */
};

/*
 * Write the database named by o->conninfo into `sw` (streams only; the
 * caller commits or aborts sw). Tables without a primary key are dumped in
 * physical order with a warning each. SIGINT/SIGTERM cancel it cleanly.
 * A table locked by another session for longer than the lock wait timeout
 * fails it, naming the table and the session. Returns DD_OK or DD_ERROR.
 */
int dd_pg_snapshot(struct dd_snapshot_writer *sw, const struct dd_pg_snapshot_opts *o,
		   struct dd_pg_snapshot_stats *stats);

struct dd_pg_restore_opts {
	const char *conninfo;  /* names the working database */
	const char *statedir;  /* where the working/stash records live */
	const char *profile;   /* recorded with the working database */
	int jobs;              /* 0 = one per core */
	int terminate;         /* end other sessions on the working database */
};

struct dd_pg_restore_result {
	char *database;        /* the working database's name */
	char *stash;           /* where the previous one went, or NULL if there was none */
};

/*
 * Make the working database equal snapshot `snap`: build <db>__dnadata_new_<pid>,
 * load it, then swap (old one renamed to a stash). On failure or interrupt
 * only the new copy is dropped. Records the result in <statedir>/pg.
 */
int dd_pg_restore(struct dd_store *st, const struct dd_snapshot *snap,
		  const struct dd_pg_restore_opts *o, struct dd_pg_restore_result *res);
void dd_pg_restore_result_release(struct dd_pg_restore_result *r);

/*
 * Drop the copies (<db>__dnadata_new_<pid>) that restores of the working
 * database named by `conninfo` recorded in <statedir>/pg and left behind
 * when they died (kill -9): only those whose process is gone (a pid in use
 * by another program since, told apart by its start time, counts as gone).
 * Connects only when there is something to drop. Returns the number
 * dropped, or DD_ERROR (nothing is lost: the records stay for next time).
 * Every command that connects calls it (snapshot, restore, use).
 */
int dd_pg_reap_leftovers(const char *statedir, const char *conninfo);

/* ---- change detection (change.c) ---- */

/* What dd_pg_changes() found (a value, not a result code). */
enum dd_pg_change { DD_PG_UNCHANGED, DD_PG_CHANGED, DD_PG_UNKNOWN, DD_PG_MISSING };

/*
 * Has the database `conninfo` names changed since `fingerprint` (recorded
 * in <statedir>/pg by restore or snapshot) was taken? Reads statistics and
 * sequence values only, never tables. Sets *out to DD_PG_UNCHANGED (never
 * for a changed database), DD_PG_CHANGED, DD_PG_UNKNOWN (*why says why) or
 * DD_PG_MISSING (no such database) and returns 0; -1 (error set) when it
 * cannot connect. Waits up to `wait_ms` for other sessions to leave.
 * *why: NULL or a phrase ("the server restarted since"); caller frees.
 */
int dd_pg_changes(enum dd_pg_change *out, const char *conninfo, const char *fingerprint, int wait_ms, char **why);
/* dd_pg_changes() for database `dbname` (NULL: the one of `conninfo`) on the server of `conninfo`. */
int dd_pg_changes_of(enum dd_pg_change *out, const char *conninfo, const char *dbname, const char *fingerprint,
		     int wait_ms, char **why);
/* "unchanged", "changed", "unknown", "missing" */
const char *dd_pg_change_name(enum dd_pg_change change);

/* `conninfo` (string or URL) as a keyword='value' string without password; NULL if it does not parse. */
char *dd_pg_conninfo_nopassword(const char *conninfo);

/* Does the database `conninfo` names exist? 1 yes, 0 no, -1 (error set) when the server cannot say. */
int dd_pg_database_exists(const char *conninfo);

/* ---- state (state.c): what each working database holds, its stashes; see pg/state.h ---- */

#endif
