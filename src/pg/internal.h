/*
 * pg/internal.h: what the files of src/pg/ share and nothing outside uses:
 * connections with clear errors, the interrupt/cancel machinery, pg_dump
 * discovery and the schema-text helpers.
 *
 * Errors about a connection name the server, port, user and database, and
 * never contain a password: connection strings are parsed, not echoed.
 */
#ifndef DD_PG_INTERNAL_H
#define DD_PG_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/err.h"

/*
 * True when the statistics counters may miss writes to database `dboid` (an SQL expression): track_counts
 * is off for this session (the server's, this database's or this role's setting), an ALTER DATABASE /
 * ALTER ROLE ... SET that applies there names it, or a GRANT SET ON PARAMETER track_counts lets a plain
 * role turn it off, so other sessions may write uncounted. (A superuser's own `SET track_counts = off`
 * inside a session cannot be seen; a function's SET clause is DD_PG_FUNCS_SET_COUNTS_SQL.)
 */
#define DD_PG_COUNTS_OFF_SQL(dboid)                                                                            \
	"(pg_catalog.current_setting('track_counts') <> 'on' OR EXISTS (SELECT 1 FROM pg_catalog.pg_db_role_setting r," \
	" pg_catalog.unnest(r.setconfig) AS g(v) WHERE r.setdatabase IN (0, " dboid ") AND g.v LIKE 'track_counts=%')" \
	" OR EXISTS (SELECT 1 FROM pg_catalog.pg_parameter_acl WHERE parname = 'track_counts'))"

/*
 * True when a function of the connected database sets track_counts (CREATE FUNCTION ... SET track_counts):
 * whoever may call it writes uncounted. pg_proc is per database, so only a session on that database can
 * tell (incr.c; change.c, on the session that reads the sequences).
 */
#define DD_PG_FUNCS_SET_COUNTS_SQL                                                                             \
	"EXISTS (SELECT 1 FROM pg_catalog.pg_proc p, pg_catalog.unnest(p.proconfig) AS g(v)"                  \
	" WHERE g.v LIKE 'track_counts=%')"

/* Why the counters cannot be trusted when DD_PG_COUNTS_OFF_SQL (or DD_PG_FUNCS_SET_COUNTS_SQL) holds. */
#define DD_PG_COUNTS_OFF_WHY                                                                                   \
	"track_counts is off, or may be turned off (ALTER DATABASE/ROLE ... SET, GRANT SET ON PARAMETER, a "   \
	"function's SET): the statistics may miss writes"

/*
 * The counters of pg_db_role_setting (a shared catalog: every ALTER DATABASE/ROLE ... SET or RESET writes
 * it) as "ins:upd:del": a setting that turned track_counts off and on again between two checks moves them.
 */
#define DD_PG_ROLE_SETTINGS_WRITES_SQL                                                                         \
	"(SELECT concat_ws(':', n_tup_ins, n_tup_upd, n_tup_del) FROM pg_catalog.pg_stat_all_tables"            \
	" WHERE relid = 'pg_catalog.pg_db_role_setting'::pg_catalog.regclass)"

/*
 * A row of pg_stat_activity that is a client's session, not an autovacuum worker's (nobody's session). A
 * role without pg_read_all_stats sees other roles' rows with backend_type and state NULL: a client backend
 * still shows its user (usesysid), an autovacuum worker has none; such a hidden session counts as a client's.
 */
#define DD_PG_CLIENT_SESSION_SQL                                                                               \
	"(backend_type IS DISTINCT FROM 'autovacuum worker' AND NOT (backend_type IS NULL AND usesysid IS NULL))"

/*
 * A row of pg_stat_activity that may hold counters not yet flushed: another client's session (not ours),
 * unless it has been idle longer than a backend keeps counters pending (an idle one flushes them after
 * ~10 s).
 */
#define DD_PG_IDLE_FLUSHED "15 seconds"
#define DD_PG_UNFLUSHED_SESSION_SQL                                                                            \
	"(pid <> pg_backend_pid() AND " DD_PG_CLIENT_SESSION_SQL " AND NOT (state IS NOT DISTINCT FROM 'idle'"   \
	" AND state_change < now() - interval '" DD_PG_IDLE_FLUSHED "'))"

/* Inheritance chains are followed this deep (dump.c, pii.c); PostgreSQL sets no limit, real schemas have a few. */
#define DD_PG_MAX_INHERIT_DEPTH 1000

/* ---- conn.c ---- */

/* The resolved parts of a connection string (libpq defaults and PG* applied). */
struct dd_pg_target {
	char *host;     /* host name, address or socket directory ("a,b" for several) */
	char *port;
	char *user;
	char *database;
};

/* Resolve `conninfo` without connecting. On a malformed string: an error that does not quote it. */
int dd_pg_target_resolve(struct dd_pg_target *t, const char *conninfo);
void dd_pg_target_release(struct dd_pg_target *t);
/* "host H port P user U database D" for messages. Caller frees. */
char *dd_pg_target_describe(const struct dd_pg_target *t);

/*
 * Connect to `conninfo`, or to database `dbname` on the same server when
 * dbname is not NULL. Sets application_name "git-dnadata" (unless given),
 * client_encoding, DateStyle, TimeZone UTC, extra_float_digits 3 and
 * bytea_output hex, so text output is exact and the same everywhere.
 */
int dd_pg_connect(PGconn **out, const char *conninfo, const char *dbname);

/*
 * Connect to a maintenance database on the server of `conninfo` (postgres,
 * or template1 when `workdb` is postgres or postgres does not exist): for
 * work on the database `workdb` from outside it.
 */
int dd_pg_connect_maint(PGconn **out, const char *conninfo, const char *workdb);

/* Run `sql`; any status but COMMAND_OK/TUPLES_OK/COPY_* is an error "SERVER MESSAGE". */
int dd_pg_exec(PGconn *c, const char *sql);
/* Run a query with text parameters; NULL (error set) unless it returned rows or OK. */
PGresult *dd_pg_query(PGconn *c, const char *sql, int nparams, const char *const *params);
/* Record the error of `res` (or of the connection when res is NULL). Returns -1. */
int dd_pg_error(PGconn *c, const PGresult *res);
/* The SQLSTATE of `res`, or "" */
const char *dd_pg_sqlstate(const PGresult *res);
/*
 * A query that evaluates masking rules or a subset condition failed with
 * `res` (issue 21): the server's message (and DETAIL, CONTEXT) may quote
 * the row it failed on, unmasked. Only a SQLSTATE that never quotes a row
 * (lock, cancel, serialization, deadlock, connection, resources,
 * shutdown) keeps it (dd_pg_error); else the error is "<what> (SQLSTATE
 * X; ...)" with `hint` (may be NULL). Returns -1.
 */
int dd_pg_guarded_error(PGconn *c, const PGresult *res, const char *what, const char *hint);
/* From now on, session c's notices are dropped (a -v line says so once): they may quote unmasked values. */
void dd_pg_hide_notices(PGconn *c);

/* Quote an identifier always ("a""b"); and a string literal ('it''s'). Caller frees. */
char *dd_pg_quote_ident(const char *s);
char *dd_pg_quote_literal(const char *s);
struct dd_store;
struct dd_snapshot;
/*
 * restore.c: the whole of stream `name` of `snap` appended to `out`. 0;
 * a missing stream is an error when `required`, else DD_NOTFOUND; -1.
 */
int dd_pg_read_stream(struct dd_store *st, const struct dd_snapshot *snap, const char *name, struct dd_buf *out,
		      int required);
/* restore.c: CREATE DATABASE from template0 with a source's encoding and locale (NULLs: the server's default). */
int dd_pg_create_db_like(PGconn *m, const char *name, const char *enc, const char *coll, const char *ctype,
			 const char *prov, const char *icu);

/* Server major version of a connection (e.g. 15). */
int dd_pg_server_major(PGconn *c);

/* ---- restore steps (restore.c builds, swap.c swaps) ---- */

/* Run a script (post-data entry, ANALYZE); a deadlock victim's is retried up to 5 times, its session cleaned. */
int dd_pg_exec_retrying(PGconn *c, const char *sql);

struct dd_store;
struct dd_snapshot;
struct dd_pg_restore_opts;

/*
 * Build database `newdb` (which must not exist) from snapshot `snap` on the
 * server `m` is connected to: CREATE DATABASE with the snapshot's locale,
 * then the load (schema, rows, sequences, post-data, ANALYZE) on `jobs`
 * sessions. *seq_fp: the sequence part of its change fingerprint (or NULL).
 * On failure newdb may exist, partly built: the caller drops it.
 */
int dd_pg_build(PGconn *m, struct dd_store *st, const struct dd_snapshot *snap, const struct dd_pg_restore_opts *o,
		const char *newdb, int jobs, char **seq_fp);

/* Does database `name` exist? *exists set; 0 or -1. */
int dd_pg_db_exists(PGconn *m, const char *name, int *exists);
/* DROP DATABASE IF EXISTS (WITH (FORCE) on 13+), retried while our own sessions leave. */
int dd_pg_drop_db(PGconn *m, const char *name);
/* Refuse (error listing them, 0 if none) other sessions on database `db`. */
int dd_pg_refuse_sessions(PGconn *m, const char *db);
/* End the other sessions on database `db` (pg_terminate_backend), waiting up to 5 s for them to go. */
int dd_pg_terminate_sessions(PGconn *m, const char *db);
/* A stash name <work>__dnadata_stash_<UTC time>[_n] that no database has yet. */
int dd_pg_pick_stash_name(PGconn *m, const char *work, char **out);
/*
 * On an open maintenance connection, under the database lock: finish the
 * records of a switch a kill interrupted (switch.c), then drop the copies
 * recorded as pending by processes that are gone.
 */
void dd_pg_reap_with(PGconn *m, const char *statedir, const struct dd_pg_target *t);
/* The first half of that: 0 (nothing to do, or done), -1 (error set; the journal stays). */
int dd_pg_journal_recover(PGconn *m, const char *statedir, const struct dd_pg_target *t);

/* ---- change fingerprints (change.c) ---- */

/*
 * The fingerprint of database `db` as seen from `m` (inside the swap
 * transaction), with `seq` from dd_pg_fingerprint_seq() on the new copy.
 * *out NULL (and 0 returned) when it cannot be trusted (server < 15, seq NULL).
 */
int dd_pg_fingerprint_swap(PGconn *m, const char *db, const char *seq, char **out);
/* The sequence part, on a session connected to the database; *seq NULL if some are unreadable. */
int dd_pg_fingerprint_seq(PGconn *c, char **seq);
/* The whole fingerprint of the database `c` is connected to (NULL if it cannot be trusted). */
int dd_pg_fingerprint_here(PGconn *c, char **out);
/*
 * The seal of dd_pg_changes_sealed() (pg.h), on any session of the server:
 * 1 when nobody has used the database since (the check's answer still
 * holds), 0 when someone may have (or no seal, or the server is older than
 * 15), -1 (error set) when it cannot tell.
 */
int dd_pg_seal_holds(PGconn *m, const char *seal);

/* ---- interrupts (conn.c) ---- */

/*
 * While installed, SIGINT and SIGTERM only set a flag; a watcher thread
 * then cancels every registered connection's running query, so blocked
 * calls return. Nested installs are counted.
 */
int dd_pg_interrupt_install(void);
void dd_pg_interrupt_remove(void);
int dd_pg_interrupted(void);
/* Make (or stop making) a connection's queries cancellable by an interrupt. */
void dd_pg_cancel_register(PGconn *c);
void dd_pg_cancel_unregister(PGconn *c);

/* ---- worker threads (workers.c) ---- */

/* Seconds on the monotonic clock (for durations). */
double dd_pg_seconds(void);

/*
 * A team of threads that take work from the caller's queue and stop at the
 * first failure. `lock` also guards the caller's own shared counters.
 */
struct dd_pg_workers {
	pthread_mutex_t lock;
	pthread_cond_t cond;   /* signalled when a worker exits */
	size_t exited;
	int failed;
	struct dd_error_saved error;  /* the first failure's error and hint */
};

void dd_pg_workers_init(struct dd_pg_workers *w);
void dd_pg_workers_release(struct dd_pg_workers *w);
/* From a worker: record the thread's error as the team's failure (the first one wins). */
void dd_pg_workers_fail(struct dd_pg_workers *w);
/* Has a worker failed, or was the command interrupted? (A worker stops taking work then.) */
int dd_pg_workers_stopped(struct dd_pg_workers *w);
/*
 * Run fn(arg) on n threads (fewer if one cannot start, which is a failure),
 * calling progress(parg, seconds so far) about every 200 ms until all have
 * returned; join them and end the progress line. Returns 0, or -1 with
 * "interrupted" or the first failure's error and hint.
 */
int dd_pg_workers_run(struct dd_pg_workers *w, size_t n, void (*fn)(void *), void *arg,
		      void (*progress)(void *parg, double elapsed), void *parg);

/* ---- sqlload.c (issue 18) ---- */

/* Run a psql-style script on c: SQL, and COPY ... FROM stdin blocks ended by "\\.". `what` names it in errors. */
int dd_pg_run_sql(PGconn *c, const char *text, size_t len, const char *what);
/*
 * On c: schema.sql's pre-data part (`sname` in errors), data.sql (`dname`),
 * then schema.sql's post-data part (dd_pg_sql_schema_split). 0 or -1.
 */
int dd_pg_run_sql_files(PGconn *c, const struct dd_buf *schema, const struct dd_buf *data, const char *sname,
			const char *dname);
/* Create `newdb` from template0 (schema.sql's encoding and locale) and load the files into it; *seq_fp as dd_pg_build's. 0 or -1. */
int dd_pg_build_sql(PGconn *m, const char *conninfo, const char *newdb, const struct dd_buf *schema,
		    const struct dd_buf *data, char **seq_fp);

/* ---- mask.c (issue 21): masking rules -> each table's select list ---- */

/* A table as the dump knows it (dump.c's catalog), for resolving rules. */
struct dd_pg_mask_table {
	unsigned oid;
	const char *nspname, *relname, *qname;
	char relkind;
	int skipped;              /* excluded or exclude_data: a rule on it is a warning */
	const unsigned *parents;  /* direct inheritance/partition parents */
	size_t nparents;
};
struct dd_pg_snapshot_opts;
struct dd_pg_masks;
/*
 * In the leader's snapshot: resolve o->masks against `tabs` (each rule's
 * table and column must exist; a rule on a skipped table is a warning),
 * build each masked table's select list, set the masking key on `c`
 * (dd_pg_mask_session) and check each masked column's expression with
 * PQprepare. *out NULL when there is no rule. 0 or -1 (the error names
 * the rule as written and its profiles.ini line).
 */
int dd_pg_mask_resolve(PGconn *c, const struct dd_pg_snapshot_opts *o, const struct dd_pg_mask_table *tabs, size_t n,
		       struct dd_pg_masks **out);
/*
 * Over the masked rows, before any COPY: UNIQUE constraints and unique
 * indexes, CHECK constraints and foreign keys that involve a masked
 * column. -1 naming the rule and the constraint.
 */
int dd_pg_mask_check(PGconn *c, const struct dd_pg_masks *m);
/*
 * Table `oid` masked? 1 with *sel (its select list: "a, (<expr>)::<type>
 * AS b, ..."), *exprs (one value expression per dumped column,
 * NULL-terminated), *key_masked (a primary-key column is masked) and
 * *depends (an sql: rule applies: its values may depend on functions or
 * other tables, which no statistic of the table shows changed); else 0.
 * The strings live as long as m.
 */
int dd_pg_mask_table_of(const struct dd_pg_masks *m, unsigned oid, const char **sel, const char *const **exprs,
			int *key_masked, int *depends);
/*
 * A query over masked expressions failed with `res`: the error set through
 * dd_pg_guarded_error (the server's message only when its SQLSTATE never
 * quotes a row), naming `table` unless NULL. Always 1 (callers of the
 * form `if (!dd_pg_mask_error(...)) dd_pg_error(...)` stay right).
 */
int dd_pg_mask_error(const PGresult *res, const char *table);
/* Where the rules that mask table `oid`'s columns are ("profiles.ini lines 12, 14"), or NULL. Caller frees. */
char *dd_pg_mask_lines_of(const struct dd_pg_masks *m, unsigned oid);
/*
 * Give session `c` the masking key (set_config through parameters only,
 * transaction-local: call it inside the snapshot's transaction). 0 (also
 * when m is NULL) or -1.
 */
int dd_pg_mask_session(PGconn *c, const struct dd_pg_masks *m);
void dd_pg_masks_free(struct dd_pg_masks *m);

/* ---- pgdump.c ---- */

struct dd_pgdump {
	char *path;    /* absolute path of the pg_dump binary */
	int major;
	int version;   /* e.g. 150020 */
};

/* Find a pg_dump whose major version is >= server_major (DNADATA_PG_BINDIR, PATH, /usr/lib/postgresql/X/bin). */
int dd_pgdump_find(struct dd_pgdump *out, int server_major);
/* The same for any client program of PostgreSQL (`tool`: pg_dump, pg_restore, psql). */
int dd_pg_tool_find_any(struct dd_pgdump *out, const char *tool, int server_major);
void dd_pgdump_release(struct dd_pgdump *d);

/*
 * pg_dump's argument vector for one section (dd_pgdump_section's
 * arguments; --no-statistics from pg_dump 18 on). Free with
 * dd_pgdump_argv_free.
 */
char **dd_pgdump_argv(const struct dd_pgdump *d, const char *conninfo, const char *snapshot_id, const char *section,
		      const char *const *exclude, size_t nexclude, const char *lock_wait_timeout);
void dd_pgdump_argv_free(char **argv);
/*
 * Run pg_dump for one section ("pre-data" or "post-data") against
 * `conninfo` (from dd_conninfo_of_connection(); `password` may be NULL and
 * goes to the child's environment), in the exported snapshot
 * `snapshot_id`, leaving out `exclude` (exact qualified names, pg_dump
 * pattern syntax), waiting at most `lock_wait_timeout` (pg_dump's
 * --lock-wait-timeout, e.g. "30000ms"; NULL: forever) for a table lock.
 * The dump text (psql \restrict lines removed) is appended to `out`.
 */
int dd_pgdump_section(const struct dd_pgdump *d, const char *conninfo, const char *password,
		      const char *snapshot_id, const char *section, const char *const *exclude,
		      size_t nexclude, const char *lock_wait_timeout, struct dd_buf *out);

/* ---- schema.c ---- */

/* One entry of a plain-format pg_dump script. */
struct dd_schema_entry {
	char *type;    /* "INDEX", "FK CONSTRAINT" ... ("" for the preamble) */
	char *sql;
};

/*
 * Split a pg_dump plain script at its "-- Name: ...; Type: ...;" headers.
 * The first entry (type "") is the preamble (SET lines) every session must
 * run first. Trailing "SET default_tablespace / default_table_access_method"
 * lines belong to the entry that follows them.
 */
int dd_schema_split(struct dd_schema_entry **out, size_t *n, const char *text, size_t len);
void dd_schema_entries_free(struct dd_schema_entry *e, size_t n);

/* Does "schema.table" (unquoted names) match `pattern` ("s.t", or "t" for any schema; '*', '?')? */
int dd_pg_pattern_match(const char *pattern, const char *schema, const char *table);
/* Does it match any of the NULL-terminated `patterns` (NULL: none)? (exclude_tables, exclude_data) */
int dd_pg_patterns_match(const char *const *patterns, const char *schema, const char *table);

/*
 * Is `s` a schema-qualified name as format('%I.%I') writes it? Is it a
 * column list as string_agg(quote_ident(..), ', ') writes it ("" counts)?
 * Such text is inert inside SQL: no statement can hide in it.
 */
int dd_pg_is_qualified_name(const char *s);
int dd_pg_is_column_list(const char *s);

/* `base` cut (on a UTF-8 boundary) so that base + suffix fits a PostgreSQL name (63 bytes). */
char *dd_pg_name_with_suffix(const char *base, const char *suffix);

#endif
