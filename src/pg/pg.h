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

/*
 * A subset of the rows (issue 21; pg/subset.c, docs/DESIGN-NOTES.md
 * "Subsetting"): a copy of config's subset and subset_others keys (pg
 * includes no config header), every pointer borrowed. The start table's
 * rows (a percentage by a hash of the primary key, or a condition), the
 * rows that reference them through foreign keys (down, transitively),
 * every row a kept row references (up, transitively); other tables whole
 * (their rows that reference a dropped row left out) or empty.
 */
struct dd_pg_subset {
	const char *schema;   /* NULL: any schema (exactly one dumped table must have the name) */
	const char *table;    /* as the server names it */
	int percent;          /* 1..100, or 0 with `where` */
	const char *where;    /* an SQL condition on the start table's rows, or NULL */
	int others_empty;     /* subset_others = empty: tables the subset does not reach keep no rows */
	const char *text;     /* the value as written, its file and line: messages name them */
	const char *file;
	size_t line;
};

/*
 * A masking rule as the dump applies it (issue 21; pg/mask.c): a copy of
 * config's struct dd_mask_rule (pg includes no config header), keep rules
 * left out. Each masked column's value is computed by the server inside
 * the snapshot, so its unmasked value never reaches this process.
 */
enum dd_pg_mask_kind {
	DD_PG_MASK_NULL = 1,
	DD_PG_MASK_REDACT,
	DD_PG_MASK_HASH,
	DD_PG_MASK_FAKE_EMAIL,
	DD_PG_MASK_FAKE_NAME,
	DD_PG_MASK_FAKE_PHONE,
	DD_PG_MASK_SQL,
};

struct dd_pg_mask_rule {
	const char *schema;          /* NULL: any schema (exactly one dumped table must have the name) */
	const char *table, *column;  /* as the server names them */
	enum dd_pg_mask_kind kind;
	const char *expr;            /* DD_PG_MASK_SQL: an SQL expression over the row's columns */
	const char *text;            /* the value as written (messages) */
	size_t line;                 /* its line in profiles.ini */
};

/* The masking key's length: a subkey of the store's key (dd_store_mask_key). */
#define DD_PG_MASK_KEY_LEN 32

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
	/*
	 * Incremental snapshots (issue 19; pg/incr.h). With `prev` (the
	 * profile's previous snapshot, its manifest loaded from this store)
	 * and its local record <statedir>/pg/incr/<prev_id>, a table whose
	 * change fingerprint is unchanged is carried over without a COPY;
	 * every table read gets its previous stream for delta bases. `full`:
	 * read every table (snapshot --full). `profile` names the record.
	 */
	int full;
	const char *profile;
	const char *prev_id;
	const struct dd_snapshot *prev;
	/*
	 * Subsetting (issue 21): only these rows (NULL: every row); with a
	 * subset, every table is read (no reuse, no key ranges). The subset
	 * keys are part of rules_hash below.
	 */
	const struct dd_pg_subset *subset;
	/*
	 * Masking (issue 21): the rules, the key of hash and fake_* (needed
	 * when nmasks > 0; it reaches each session only as a query
	 * parameter), and the rules' hash (sha256 hex, or NULL: no rule),
	 * which goes into the incremental options hash: a table is carried
	 * over, or its key ranges read alone, only from a snapshot taken
	 * with the same rules.
	 */
	const struct dd_pg_mask_rule *masks;
	size_t nmasks;
	const unsigned char *mask_key;
	const char *rules_hash;
};

struct dd_pg_snapshot_stats {
	size_t tables;         /* tables whose rows were captured */
	uint64_t rows;
	uint64_t bytes;        /* COPY text bytes of all tables */
	char server_version[32];
	char database[128];
	char server[256];      /* host:port, as recorded in <statedir>/pg */
	char *fingerprint;     /* change fingerprint taken before the snapshot (change.c), or NULL; caller frees */
	size_t reused;         /* tables carried over from o->prev without a COPY */
	char *incr_record;     /* the record to keep once the snapshot is durable (dd_pg_incr_keep), or NULL; caller frees */
	size_t incr_record_len;
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

/*
 * Append the schema of database `o->conninfo` to `out` as a snapshot would
 * hold it (pg_dump pre-data then post-data in one exported snapshot, with
 * `o->exclude_tables` left out; the rest of `o` but the lock wait unused):
 * raw pg_dump text, for dd_schema_normalise() (normalise.h); *post_at
 * (when not NULL): where the post-data part starts in `out`; `db_line`
 * (when not NULL): the database's encoding and locale as schema.sql's
 * database line (dd_pg_sql_db_line). 0 or -1.
 */
struct dd_buf;
int dd_pg_schema_dump(const struct dd_pg_snapshot_opts *o, struct dd_buf *out, size_t *post_at,
		      struct dd_buf *db_line);
/*
 * Run plain SQL `schema` then `data` (psql-style: COPY ... FROM stdin blocks
 * allowed) in database `db` on the server of `conninfo`: promote-schema's
 * check that a profile's rows load into another's schema. -1 with the
 * server's message and the failing statement's place ("the schema" or
 * "the data", line). 0 or -1.
 */
int dd_pg_load_sql(const char *conninfo, const char *db, const struct dd_buf *schema, const struct dd_buf *data);

struct dd_pg_restore_opts {
	const char *conninfo;  /* names the working database */
	const char *statedir;  /* where the working/stash records live */
	const char *profile;   /* recorded with the working database */
	int jobs;              /* 0 = one per core */
	int terminate;         /* end other sessions on the working database */
};


/*
 * ---- a snapshot as plain SQL (sqlout.c, issue 18; docs/FORMAT.md §9) ----
 * The schema as an inline schema.sql (the database line, pre-data, the
 * marker line, post-data; each part normalised, pg/normalise.h), and
 * the rows as data.sql: per table in foreign-key order a COPY ... FROM
 * stdin block of its stream's rows, then setval() and lo_put() calls, in
 * one transaction; written through fn (a call per piece of at most about
 * 1 MiB; < 0 stops). Both 0 or -1; a stream that is not what FORMAT.md §7
 * says is refused.
 */
struct dd_buf;
int dd_pg_sql_schema(struct dd_store *st, const struct dd_snapshot *snap, struct dd_buf *out);
/*
 * schema.sql's layout (FORMAT.md §9): [a database line] the normalised
 * pre-data, this marker line, the normalised post-data (constraints,
 * indexes, triggers, materialized views' data), so a loader can run the
 * rows between the two parts, as pg_restore does. The database line,
 * first when present, is DD_PG_DB_LINE then "key=value" words (encoding,
 * lc_collate, lc_ctype, locale_provider, icu_locale).
 */
#define DD_PG_POST_DATA_MARKER "-- dnadata: post-data: constraints, indexes and triggers, loaded after data.sql"
#define DD_PG_DB_LINE "-- dnadata: database:"
/* The database line from key, value pairs (NULL-terminated; a NULL or odd value is left out); none if empty. */
void dd_pg_sql_db_line(const char *const *kv, struct dd_buf *out);
/* Raw pg_dump pre-data and post-data texts as that layout (no database line) appended to `out`. 0 or -1. */
int dd_pg_sql_schema_join(const char *pre, size_t prelen, const char *post, size_t postlen, struct dd_buf *out);
/*
 * Split schema.sql at its marker: exactly one marker line outside quoted
 * text and comments, and no psql meta-command (a backslash outside quoted
 * text) anywhere, else -1 with the reason. `for_psql` (export: a psql,
 * maybe one without \restrict, will run the text): also refuse a plain
 * literal with an odd run of backslashes before its closing quote, which
 * psql reads differently if the text turns standard_conforming_strings
 * off. *pre_end: where the pre-data part ends; *post_start: where the
 * post-data part starts.
 */
int dd_pg_sql_schema_split(const char *text, size_t len, int for_psql, size_t *pre_end, size_t *post_start,
			   const char *what);
/*
 * A script psql runs (data.sql: COPY ... FROM stdin blocks' rows skipped)
 * holding no psql meta-command line (`\! cmd` and the like, outside quoted
 * text and COPY rows; `for_psql` as above): 0, else -1 naming the line.
 */
int dd_pg_sql_check_meta(const char *text, size_t len, int for_psql, const char *what);
int dd_pg_sql_data(struct dd_store *st, const struct dd_snapshot *snap,
		   int (*fn)(void *arg, const void *data, size_t len), void *arg);

/* ---- switching (switch.c): stashes, templates and spares ---- */

/*
 * A media folder that switches with the database (issue 17). The switch
 * calls, in this order:
 *   choose(arg, source_media, &target), once the source is chosen and
 *     before anything is built: source_media is the media id recorded
 *     with the stash being renamed back (NULL for any other source); the
 *     callback sets *target (allocated; NULL: leave the folder alone)
 *     once it has checked that it can be applied; -1 stops the switch;
 *   apply(arg, target), with the journal and the new stash's record
 *     written, just before the rename: make the folder equal `target`;
 *     -1 stops the switch (the callback has put the folder back), and the
 *     working database is untouched;
 *   undo(arg), when the rename then fails: put the folder back.
 * `stash` is the media id of the folder as it is (dd_media_stash), kept
 * with the stash the working database becomes and in the journal, so a
 * kill at any point leaves records from which the next restore makes the
 * folder match the database it finds (state.h: media_pending).
 */
struct dd_pg_switch_media {
	const char *folder; /* absolute: a stash's media is brought back only into the folder it was taken of */
	const char *stash;  /* valid once set_aside returned 0 */
	int stash_private;  /* `stash` is a private snapshot (files set aside), not one the store holds */
	int (*choose)(void *arg, const char *source_media, char **target);
	/* set the folder aside (fills stash, stash_private) as late as possible: just before the journal */
	int (*set_aside)(void *arg);
	int (*apply)(void *arg, const char *target);
	void (*undo)(void *arg);
	void *arg;
};

struct dd_pg_switch_opts {
	const char *conninfo;    /* names the working database */
	const char *statedir;
	const char *profile;
	const char *snapshot;    /* the snapshot id to switch to */
	const char *branch;      /* the branch switched to (NULL: detached HEAD or unknown) */
	const char *branch_left; /* the branch the working database is left on (NULL: the one it was restored for) */
	int jobs;                /* 0 = one per core */
	int terminate;           /* end other sessions on the working database */
	int force;               /* restore from the cache/store (the template is rebuilt); no stash, spare or clone */
	int clean;               /* a copy as the snapshot was (an edited database is rebuilt): no branch stash */
	/*
	 * Load the snapshot (from the local cache or the store), only when it
	 * must be restored: 0 with *st and *snap set (the caller frees them
	 * after dd_pg_switch returns), or -1 (error set).
	 */
	int (*load)(void *arg, struct dd_store **st, struct dd_snapshot **snap);
	void *load_arg;
	/*
	 * An inline profile (issue 18): build from these plain SQL texts
	 * (schema.sql, data.sql; sqlload.c) instead of `load`. NULL: use load.
	 */
	const struct dd_buf *sql_schema, *sql_data;
	const struct dd_pg_switch_media *media; /* NULL: no media folder switches with it */
};

/* How the switch got the snapshot into place, cheapest first. */
enum dd_pg_switch_how {
	DD_PG_SWITCH_STASH,   /* renamed this branch's stash back (local edits kept) */
	DD_PG_SWITCH_SPARE,   /* renamed a warm spare (or an unmodified stash) in */
	DD_PG_SWITCH_CLONE,   /* cloned the snapshot's template */
	DD_PG_SWITCH_RESTORE, /* restored from the cache/store into a new template, then cloned it */
};

struct dd_pg_switch_result {
	char *database;        /* the working database's name */
	char *stash;           /* where the previous one went, or NULL if there was none */
	char *source;          /* the stash, spare or template used (NULL for a restore) */
	enum dd_pg_switch_how how;
	double seconds;        /* from the first connection to the records written */
	char *media;           /* the media id the folder was made equal to (opts.media), NULL: left alone */
};

/*
 * Make the working database hold o->snapshot, the cheapest way this
 * machine allows (order: this branch's stash of that snapshot; a warm
 * spare or an unmodified stash; a clone of its template; a restore into a
 * new template, then a clone). The working database (if any) becomes a
 * stash recorded with the branch it is left on and whether it was modified
 * since its restore. The caller holds dd_pg_state_lock(). Nothing of the
 * working database changes unless the switch completes; a kill -9 at any
 * point leaves the old or the new one in place and records the next
 * command finishes. Returns DD_OK or DD_ERROR.
 */
int dd_pg_switch(const struct dd_pg_switch_opts *o, struct dd_pg_switch_result *res);
void dd_pg_switch_result_release(struct dd_pg_switch_result *r);
/* "renamed its stash back", "renamed a spare in", "cloned its template", "restored it" */
const char *dd_pg_switch_how_name(enum dd_pg_switch_how how);

/*
 * The background job (cmd spare): make one spare (clone of the template,
 * closed to connections) for each snapshot of `wanted` (most wanted first,
 * at most `limit`) that has a template and no spare yet, then drop the
 * spares of other snapshots (the database lock, only if free at that
 * moment, just to turn each one's record into a pending one: the DROP
 * runs without it). Never holds the database lock while cloning; each
 * spare is pending until complete. A newer job cancels an older one
 * (SIGTERM); a switch that must clone or restore cancels it too
 * (dd_pg_spares_cancel). Returns the number made, or DD_ERROR.
 */
int dd_pg_spares_make(const char *conninfo, const char *statedir, const char *const *wanted, size_t nwanted,
		      int limit);
/* Ask a running spare job of the working database to stop (does not wait). */
void dd_pg_spares_cancel(const char *statedir, const char *conninfo);

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
/*
 * dd_pg_changes() that hands back, with DD_PG_UNCHANGED, a seal (*seal,
 * caller frees; change.c): the database's activity counters right after
 * the check, so that a switch can run it early (while it clones) and
 * still trust it at the rename (dd_pg_seal_holds, internal.h).
 */
int dd_pg_changes_sealed(enum dd_pg_change *out, const char *conninfo, const char *fingerprint, int wait_ms, char **why,
			 char **seal);
/* "unchanged", "changed", "unknown", "missing" */
const char *dd_pg_change_name(enum dd_pg_change change);

/* `conninfo` (string or URL) as a keyword='value' string without password; NULL if it does not parse. */
char *dd_pg_conninfo_nopassword(const char *conninfo);

/*
 * Start connecting to the server of `conninfo` (its maintenance database)
 * in the background, for a switch about to happen: the next
 * dd_pg_connect_maint() for the same conninfo takes that connection
 * instead of making one (a git hook's switch starts it before libgit2's
 * start and its git work, which take as long). Best effort: a failure
 * is left for the switch's own connect to report. dd_pg_preconnect_end()
 * closes it if unused; one still connecting is left to the process's exit.
 */
void dd_pg_preconnect(const char *conninfo);
void dd_pg_preconnect_end(void);

/*
 * A postgresql:// URL for the working database `conninfo` names (host,
 * port, user, dbname resolved as libpq would), without any password: for
 * DATABASE_URL in post_restore commands (util/conninfo.h dd_conninfo_url).
 * *password (may be NULL) gets the password the conninfo sets, or NULL.
 * NULL with an error when it does not parse. Caller frees both.
 */
char *dd_pg_database_url(const char *conninfo, char **password);

/* ---- scratch databases (load.c): a pg_dump file loaded beside the working database ---- */

enum dd_pg_dump_format { DD_PG_DUMP_PLAIN, DD_PG_DUMP_CUSTOM, DD_PG_DUMP_DIRECTORY, DD_PG_DUMP_TAR };
/* The format of pg_dump output `path`, read from the file itself ("PGDMP", toc.dat, ustar, else plain). */
int dd_pg_dump_format(const char *path, enum dd_pg_dump_format *fmt);
/* "plain", "custom", "directory", "tar" */
const char *dd_pg_dump_format_name(enum dd_pg_dump_format fmt);
/*
 * Create an empty scratch database <db>__dnadata_load_<pid> on the server
 * of the working database `conninfo`, recorded as pending in <statedir>/pg
 * first (a killed process's is dropped by the next command's reaper).
 * SIGINT/SIGTERM only set the interrupt flag until dd_pg_scratch_drop().
 * *name gets its name (caller frees). 0 or -1.
 */
int dd_pg_scratch_create(const char *statedir, const char *conninfo, char **name);
/*
 * Load pg_dump output `path` (any format) into scratch database `name`:
 * pg_restore or psql -v ON_ERROR_STOP=1, one transaction, no owners or
 * privileges. -1 with an error naming the failing statement.
 */
int dd_pg_scratch_load(const char *conninfo, const char *name, const char *path);
/*
 * Drop scratch database `name` and its pending record (a failure is a
 * warning: the record stays for the next command). Keeps the caller's
 * error, if any. 0 or -1.
 */
int dd_pg_scratch_drop(const char *statedir, const char *conninfo, const char *name);

/* Does the database `conninfo` names exist? 1 yes, 0 no, -1 (error set) when the server cannot say. */
int dd_pg_database_exists(const char *conninfo);

/*
 * doctor: the version of the server of `conninfo` (its maintenance
 * database: the working one may not exist yet), e.g. 150020, and its
 * server_version text (*text, caller frees). 0 or -1 (cannot connect).
 */
int dd_pg_server_version(const char *conninfo, int *version, char **text);
/*
 * doctor: the newest client program `tool` (pg_dump, pg_restore, psql)
 * whose major version is at least `server_major`, looked for as snapshots
 * look for pg_dump (DNADATA_PG_BINDIR alone when set, else PATH and
 * /usr/lib/postgresql/<major>/bin). 0 with *path (caller frees) and
 * *version; -1 (error and hint: which package to install) when none fits.
 */
int dd_pg_tool_find(const char *tool, int server_major, char **path, int *version);

/* ---- personal data (pii.c, issue 21): columns that look personal ---- */

/* What a column looks like it holds. */
enum dd_pg_pii_kind {
	DD_PG_PII_EMAIL,
	DD_PG_PII_PHONE,
	DD_PG_PII_NAME,
	DD_PG_PII_ADDRESS,
	DD_PG_PII_BIRTH,
	DD_PG_PII_IP,
	DD_PG_PII_NATIONAL_ID, /* SSN, passport, tax id, driver's licence */
	DD_PG_PII_BANK,        /* IBAN, bank account */
	DD_PG_PII_CARD,        /* payment card number, CVV */
};
/* How it was found (BY_CONTENTS: its values are text or documents that hold e-mail addresses). */
enum dd_pg_pii_sign { DD_PG_PII_BY_NAME, DD_PG_PII_BY_TYPE, DD_PG_PII_BY_VALUES, DD_PG_PII_BY_CONTENTS };

/* A column is reported by its values when at least this many percent of its sampled values fit one shape. */
#define DD_PG_PII_SHARE 10
#define DD_PG_PII_SAMPLE_ROWS 1000

struct dd_pg_pii_opts {
	const char *conninfo;
	const char *const *exclude_tables;  /* as dd_pg_snapshot_opts: what a snapshot leaves out is not looked at */
	const char *const *exclude_data;
	int sample_rows;                    /* rows sampled per table; 0 = names and types only */
	int lock_wait_timeout_ms;           /* longest wait for a table's ACCESS SHARE lock; 0 = the default */
};

/* A table by its names (an ancestor of a column's table). */
struct dd_pg_pii_table {
	char *schema, *table;
};

struct dd_pg_pii_column {
	char *schema, *table, *column;      /* as the server names them */
	char *type;                         /* format_type() */
	int notnull;
	enum dd_pg_pii_kind kind;
	enum dd_pg_pii_sign sign;
	unsigned sampled, matched;          /* BY_VALUES, BY_CONTENTS: non-empty values sampled, how many fit */
	char *reason;                       /* "92% of 200 sampled values look like e-mail addresses" */
	struct dd_pg_pii_table *ancestors;  /* its table's partition and inheritance parents, any depth, nearest first */
	size_t nancestors;
	const struct dd_pg_pii_table *top;  /* the top-most partitioned table its table is a partition of, or NULL */
};

struct dd_pg_pii_report {
	struct dd_pg_pii_column *cols;      /* in table then column order */
	size_t ncols;
	size_t tables, columns;             /* looked at */
	size_t sampled_rows;
	size_t large_objects;               /* in the database: a snapshot captures them as they are */
	double seconds;
	char database[128];
};

/*
 * The columns of the tables a snapshot of o->conninfo would capture that
 * look personal, by type, name or sampled values (pii.c's header says
 * how), in READ ONLY transactions (one per table: a table's ACCESS SHARE
 * lock is held only while it is read). 0 (release `r`) or -1.
 */
int dd_pg_pii_scan(const struct dd_pg_pii_opts *o, struct dd_pg_pii_report *r);
void dd_pg_pii_report_release(struct dd_pg_pii_report *r);
/*
 * The kind column `column` of table `table` looks like by its name, for a
 * type of category `category` (pg_type.typcategory: 'S' text, 'N', 'D',
 * 'I' inet/cidr...), or -1. Pure.
 */
int dd_pg_pii_name_kind(const char *table, const char *column, char category);
/* "email", "phone", "name", "address", "birth", "ip", "national_id", "bank", "card" (JSON) */
const char *dd_pg_pii_kind_name(enum dd_pg_pii_kind kind);
/* "e-mail address", "phone number", ... (people) */
const char *dd_pg_pii_kind_text(enum dd_pg_pii_kind kind);

/* ---- state (state.c): what each working database holds, its stashes; see pg/state.h ---- */

#endif
