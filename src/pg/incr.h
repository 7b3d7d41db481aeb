/*
 * pg/incr.h: the local record behind incremental snapshots (issue 19).
 *
 * For each snapshot the tool takes of a database it keeps
 * <statedir>/pg/incr/<snapshot id>: who the server and database were, a
 * hash of everything that changes a table's COPY text without touching
 * the table (the "output" hash), a hash of the snapshot's options, and
 * per table a change fingerprint taken before the snapshot was exported
 * (statistics counters, relfilenode, a hash of the columns and the key).
 * The next snapshot of the profile compares the fingerprints: a table
 * whose fingerprint is equal is carried over from the previous manifest
 * without a COPY. The record is about one server, so it never goes to the
 * store. Format (text, strictly parsed; fuzz/fuzz-incr.c):
 *
 *   dnadata-incr 1
 *   profile <name>
 *   server <system identifier> <postmaster start> <database oid> <stats reset>
 *   output <32 hex>
 *   options <64 hex>
 *   pgdump <version number>
 *   xmin <the exported snapshot's xmin, as xid8>
 *   table <oid> <ins> <upd> <del> <relfilenode> <32 hex shape> <rows> <size> <hex of the stream name>
 *   query <64 hex>
 *   sample <byte offset> <row ordinal> <hex of the key's COPY text>
 *   ...
 *
 * A table's query line (issue 21) follows its table line: the sha256 of
 * the COPY that wrote its stream (the select list, masked or not): a
 * table is carried over, or its key ranges read alone, only when the new
 * COPY's is the same, so a masking rule that starts to apply to it (a
 * partition attached under a masked table) reads it whole. A record
 * without it (an older version's) tells nothing: the table is read.
 * A table's samples follow: about every 256 KiB of its stream,
 * the start of a row, its ordinal and its primary key as COPY text (a key
 * of several columns: their fields in key order, joined by tabs; a
 * version before composite keys refuses such a record, and reads every
 * table); offsets and ordinals strictly increasing, inside the stream.
 *
 * Numbers are decimal without sign or leading zeros; tables are sorted by
 * stream name, each once.
 */
#ifndef DD_PG_INCR_H
#define DD_PG_INCR_H

#include <stddef.h>
#include <stdint.h>

struct dd_buf;

struct dd_pg_incr_sample {
	uint64_t off, ord;
	char *key;             /* the key's field(s) as COPY text (escapes kept), joined by tabs */
};

struct dd_pg_incr_table {
	char *stream;          /* "data/<schema>.<table>" as in the manifest */
	uint64_t oid, ins, upd, del, relfilenode;
	char shape[33];        /* md5 hex of the columns, the primary key and the parents */
	char query[65];        /* sha256 hex of the COPY that wrote its stream, "" unknown (an older record) */
	uint64_t rows, size;   /* of its stream */
	struct dd_pg_incr_sample *samples;
	size_t nsamples;
};
/* Append a sample (copies key[0..keylen)). */
void dd_pg_incr_add_sample(struct dd_pg_incr_table *t, uint64_t off, uint64_t ord, const char *key, size_t keylen);

struct dd_pg_incr {
	char *profile;
	uint64_t sysid, start, dboid, reset;
	char output[33];       /* md5 hex: server version, enum labels, extensions, collation versions */
	char options[65];      /* sha256 hex of exclude_tables, exclude_data and the masking rules' hash */
	uint64_t pgdump;       /* pg_dump's version number */
	uint64_t xmin;         /* the exported snapshot's xmin (xid8) */
	int standby;           /* read from a standby (not in the text): counters say nothing there */
	struct dd_pg_incr_table *tables;
	size_t ntables;
};

/* Parse a record (hostile bytes): 0, or -1 with a one-line reason. */
int dd_pg_incr_parse(struct dd_pg_incr *out, const char *text, size_t len);
/* The record as text (what dd_pg_incr_parse reads); tables are sorted first. */
void dd_pg_incr_format(struct dd_pg_incr *r, struct dd_buf *out);
void dd_pg_incr_release(struct dd_pg_incr *r);
/* The table of stream `name`, or NULL. The tables must be sorted (parsed or formatted). */
const struct dd_pg_incr_table *dd_pg_incr_find(const struct dd_pg_incr *r, const char *name);

/* Read <statedir>/pg/incr/<id>: 0, DD_NOTFOUND (none), -1 (unreadable or malformed). */
int dd_pg_incr_read(struct dd_pg_incr *out, const char *statedir, const char *id);
/*
 * Keep the record of snapshot `id` (atomically; call once its manifest is
 * durable) and prune the profile's older records, keeping the newest
 * DD_PG_INCR_KEEP. 0 or -1.
 */
#define DD_PG_INCR_KEEP 4
int dd_pg_incr_keep(const char *statedir, const char *id, const char *text, size_t len);

/* The longest sample key (its COPY text, in bytes) a record holds: sample_row skips longer ones. */
#define DD_PG_INCR_MAX_KEY 4096

/*
 * The options hash (sha256 hex) of exclude_tables, exclude_data and the
 * masking rules' hash (issue 21; NULL or "": no rule, the hash is the one
 * of a version without masking).
 */
void dd_pg_incr_options(const char *const *exclude_tables, const char *const *exclude_data, const char *rules_hash,
			char out[65]);

/* ---- from the server (the leader's session, before the snapshot is exported) ---- */
typedef struct pg_conn PGconn;
/*
 * Fill `out` from the server: 1 (a record; *busy: sessions that may hold
 * unflushed counters, counted before the counters were read; on a
 * standby out->standby: the counters are not to be compared), 0 (no
 * record on this server, PostgreSQL < 15: *why says why, caller frees), -1.
 * out->options and out->pgdump are the caller's to set. `in_xact`: inside
 * a transaction, where the system identifier is not read (left 0: the
 * caller copies it from a reading outside, with the session's
 * stats_fetch_consistency already set to none).
 *
 * Read twice by a snapshot: before the export, for its own record (the
 * counters then can only be behind what it holds: a change they miss
 * makes the next snapshot read the table), and after the export, to
 * compare with the previous record: sessions listed after the export,
 * then the counters read, so a change the snapshot holds is either
 * counted (its session flushed, at exit at the latest) or its session
 * is listed (busy: every table read).
 */
int dd_pg_incr_take(PGconn *c, const char *profile, int in_xact, struct dd_pg_incr *out, int *busy, char **why);
/* 1 when tables of `prev` may be compared with `now`'s, else 0 with *why (caller frees). */
int dd_pg_incr_comparable(const struct dd_pg_incr *prev, const struct dd_pg_incr *now, char **why);
/* 1 when the two fingerprints of a table are equal. */
int dd_pg_incr_table_same(const struct dd_pg_incr_table *a, const struct dd_pg_incr_table *b);
/*
 * The unchanged-database check's second half (the counters said
 * unchanged): same server, output hash, options (sha256 hex) and pg_dump
 * version as `rec`? 1 yes, 0 no (*why, caller frees), -1.
 */
int dd_pg_incr_same_output(const char *conninfo, const struct dd_pg_incr *rec, const char *options, char **why);

#endif
