/*
 * pg/dump.c: take a consistent, deterministic snapshot of one database.
 *
 * One "leader" session opens a REPEATABLE READ, READ ONLY transaction,
 * exports its snapshot (pg_export_snapshot()), reads the catalog, locks
 * every dumped table in ACCESS SHARE mode (as pg_dump does: no DDL or
 * TRUNCATE can slip in), reads sequence values, and stays open until the
 * end. Everything else runs inside that same snapshot:
 *   - two pg_dump children (pre-data, post-data sections) with --snapshot;
 *   - a pool of COPY workers (config `jobs`, default one per core), each its
 *     own session that runs SET TRANSACTION SNAPSHOT, then takes tables
 *     from a shared queue, largest first, and streams
 *     COPY (SELECT cols FROM ONLY t ORDER BY pk) TO STDOUT straight into
 *     dd_stream_write() (batched to 256 KiB; no temporary files).
 * So concurrent writers never tear a snapshot.
 *
 * A conflicting lock request (ALTER TABLE, TRUNCATE...) that arrives after
 * the leader's locks queues behind them, and every later ACCESS SHARE
 * request queues behind it, our own sessions' included: the leader would
 * wait for its workers, they for the ALTER, the ALTER for the leader, a
 * cycle through this process that the server's deadlock detector cannot
 * see. So, as pg_dump's parallel mode does, each worker locks its table
 * NOWAIT before the COPY (the leader holds it: a failure means such a
 * request is queued), pg_dump gets a short --lock-wait-timeout (everything
 * it locks the leader holds already), and either failure ends the snapshot
 * at once, naming the waiting session, which then proceeds.
 *
 * Determinism: rows come in primary-key order; a table without one comes
 * in physical order (same for an unchanged table) with a warning. Session
 * settings (conn.c) fix the text form of every value. Streams are named
 * and sorted by the store; names and attributes are in docs/FORMAT.md §7.
 *
 * Sequence values are read with SELECT last_value, is_called like pg_dump
 * does: sequences are not transactional, so a value can be ahead of the
 * rows in the snapshot, never behind.
 */
#include "pg/incr.h"
#include "pg/internal.h"
#include "pg/pg.h"
#include "pg/subset.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/conninfo.h"
#include "util/err.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/proc.h"
#include "util/sha256.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH (256 * 1024)
/*
 * pg_dump's wait for a table lock, at most. Every table it locks the leader
 * holds already, so it waits only behind a queued conflicting request.
 */
#define CHILD_LOCK_WAIT_MS 3000L

struct rel {
	unsigned oid;
	char *qname;          /* quoted by the server: format('%I.%I') */
	char *nspname, *relname;
	char relkind;
	char *cols;           /* quoted column list, attnum order, without generated columns */
	char *pk;             /* quoted primary-key columns, or NULL */
	char *keys;           /* the primary key's columns (parse_keys), or NULL */
	int64_t est;          /* relpages * 8192 */
	unsigned *parents;    /* direct inheritance/partition parents */
	size_t nparents;
	unsigned identity_of; /* for an identity sequence: its table */
	int excluded;         /* exclude_tables (or an ancestor is) */
	int no_data;          /* exclude_data (or an ancestor is) */
	int walked;           /* inherit_flags: looked at (its flags complete, or on the walk's path) */
};

/* A column of a table's primary key, for key ranges (issue 19). */
struct keycol {
	int pos;              /* its place in the row (the column list) */
	int fixed;            /* its type has a fixed width (width_bucket finds its bound in log time) */
	char *name;           /* quoted */
	char *type;           /* format_type(), with the typmod */
	char *coll;           /* " COLLATE <its collation>", or "" */
};

/* One stream to produce with a COPY ... TO STDOUT. */
struct item {
	char *stream;
	char *sql;
	char *table;          /* attr "table" (NULL for large objects) */
	char *cols;           /* attr "columns" */
	const char *sel;      /* the select list: cols, or with masked columns' expressions (issue 21; mask.c) */
	const char *const *mexprs; /* masked: one value expression per column (markers_list), else NULL */
	int key_masked;       /* a primary-key column is masked: no key ranges */
	int mask_depends;     /* an sql: masking rule applies: never carried over, no key ranges */
	char query[65];       /* sha256 hex of sql (the select list, masked or not): the record's "query" */
	char *guard, *guard_hint; /* masked or subsetted: what may be at fault when its COPY fails (copy_error) */
	int64_t est;
	int warn_no_pk;
	const struct dd_stream_info *prev; /* this stream in the previous snapshot (o->prev), or NULL */
	int reused;           /* carried over from prev without a COPY */
	/* issue 19, changed key ranges (see copy_ranges) */
	struct keycol *keys;  /* the primary key's columns in key order (nkeys 0: no key ranges) */
	size_t nkeys;
	char *kexpr;          /* the key as an expression: its column, or the row "(a, b)" */
	char *pk;             /* the quoted primary-key columns (ORDER BY) */
	char *qtable;         /* the quoted table */
	struct dd_pg_incr_table *rec;         /* this table in the new record (rows, size, samples), or NULL */
	const struct dd_pg_incr_table *prec;  /* in the previous one, when its changed ranges may be read alone */
	uint64_t xid_lo, xid_span;            /* a row is changed when age(xmin) <= age(xid_lo); span: xids since */
	int few_changed;      /* the counters say at most 1 row in MARKERS_RATIO changed: detect collects their tids */
	int no_deletes;       /* and none deleted: one count for the whole table will do (detect_counted) */
	int counted;          /* copy_ranges: segments' counts assumed (detect_counted), the table's checked at its end */
	uint64_t count;       /* then: the table's rows now */
	size_t patched, patch_fallbacks;      /* segments merged from their changed rows alone, and those that could not be */
	size_t patch_early;                   /* batches whose rows were read early, for a fallback before them */
	/* results: rows by the worker that ran it (read after the join); bytes and state under w.lock */
	uint64_t rows, bytes;
	int state;            /* 0 queued, 1 running, 2 done */
};

struct pool {
	struct dd_snapshot_writer *sw;
	const char *conninfo;
	const char *snapshot_id;
	struct item **items;
	size_t nitems, next;  /* under w.lock, like bytes, done and each item's bytes and state */
	struct dd_pg_workers w;
	uint64_t bytes;       /* COPY bytes so far (all items) */
	size_t done;
	int64_t total_est;    /* sum of the items' estimates, for the ETA */
	const char *lock_timeout;  /* SET lock_timeout value for the workers' sessions */
	char *queued_table;   /* under w.lock: a table whose NOWAIT lock failed (a conflicting request queued) */
	const struct dd_pg_masks *masks; /* issue 21: every session gets the masking key, or NULL */
	int hide_notices;     /* masking rules or a subset: a notice may quote an unmasked value */
};

/* Count `len` more bytes of `it` (the progress line reads them under the same lock). */
static void
count_bytes(struct pool *p, struct item *it, size_t len)
{
	pthread_mutex_lock(&p->w.lock);
	p->bytes += len;
	it->bytes += len;
	pthread_mutex_unlock(&p->w.lock);
}

static void
set_state(struct pool *p, struct item *it, int state)
{
	pthread_mutex_lock(&p->w.lock);
	it->state = state;
	if (state == 2)
		p->done++;
	pthread_mutex_unlock(&p->w.lock);
}

/*
 * A worker's transaction in the leader's snapshot. lock_timeout: a queued
 * ACCESS EXCLUSIVE request (an ALTER TABLE waiting for the leader) makes
 * our ACCESS SHARE wait behind it, and the leader waits for us: fail then.
 */
static int
begin_in_snapshot(PGconn *c, const char *snapshot_id, const char *lock_timeout)
{
	char *lit = dd_pg_quote_literal(snapshot_id);
	char *sql = dd_asprintf("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;"
				"SET TRANSACTION SNAPSHOT %s; SET row_security = off;"
				"SET work_mem = '64MB'; SET LOCAL lock_timeout = '%s'", lit, lock_timeout);
	int rc = dd_pg_exec(c, sql);
	free(sql);
	free(lit);
	return rc;
}

/* Where a stream being written stands, for the samples of the new record. */
struct sampler {
	uint64_t off, ord, last; /* bytes and rows written so far; offset of the last sample */
	size_t hint;             /* the previous record's next sample to find again (hint_row) */
	struct dd_buf key;       /* row_key's scratch (released by the stream's writer) */
};

#define SAMPLE_EVERY (256 * 1024)
/* A primary key has at most 32 columns (INDEX_MAX_KEYS); parse_keys refuses more. */
#define MAX_KEYS 32

/*
 * Field `pos` (0 first) of COPY text row [row, end) (its '\n' may be
 * left out): *f and *flen. 0, or -1 when the row has fewer fields. The
 * samples, the delta hints and the markers merge all cut key fields with
 * it (a raw tab or newline only ever separates fields or rows).
 */
static int
row_field(const char *row, const char *end, int pos, const char **f, size_t *flen)
{
	const char *p = row, *e;

	for (int i = 0; i < pos; i++) {
		const char *tab = memchr(p, '\t', (size_t)(end - p));
		if (!tab)
			return -1;
		p = tab + 1;
	}
	for (e = p; e < end && *e != '\t' && *e != '\n'; e++)
		;
	*f = p;
	*flen = (size_t)(e - p);
	return 0;
}

/*
 * The key of COPY text row `row` (len bytes; a trailing newline is no part
 * of a field): its key fields in key order as COPY text (escapes kept),
 * joined by tabs (a field never holds a raw tab). One key column: *key
 * points into the row; several: into `scratch` (cleared first). The one
 * definition of a row's key bytes (samples, key literals): two rows of one
 * snapshot have the same key exactly when these bytes are equal. 0, or -1
 * when the row has too few fields.
 */
static int
row_key(const struct item *it, const char *row, size_t len, struct dd_buf *scratch, const char **key, size_t *keylen)
{
	const char *f = row, *end = row + len, *at[MAX_KEYS];
	size_t fl[MAX_KEYS], found = 0;

	if (len && row[len - 1] == '\n')
		end--;
	for (int i = 0; found < it->nkeys; i++) {
		const char *e = memchr(f, '\t', (size_t)(end - f));
		if (!e)
			e = end;
		for (size_t k = 0; k < it->nkeys; k++)
			if (it->keys[k].pos == i) {
				at[k] = f;
				fl[k] = (size_t)(e - f);
				found++;
			}
		if (e == end && found < it->nkeys)
			return -1;
		f = e + 1;
	}
	if (it->nkeys == 1) {
		*key = at[0];
		*keylen = fl[0];
		return 0;
	}
	dd_buf_clear(scratch);
	for (size_t k = 0; k < it->nkeys; k++) {
		if (k)
			dd_buf_putc(scratch, '\t');
		dd_buf_put(scratch, at[k], fl[k]);
	}
	*key = dd_buf_cstr(scratch);
	*keylen = scratch->len;
	return 0;
}

/* Before a row with key field `key` goes out: a sample of it when SAMPLE_EVERY bytes passed since the last one. */
static void
sample_key(struct item *it, struct sampler *sm, const char *key, size_t len)
{
	if (!it->rec || !it->nkeys || sm->off == 0 || sm->off - sm->last < SAMPLE_EVERY)
		return;
	if (len == 0 || len > DD_PG_INCR_MAX_KEY)
		return; /* an empty key (text '') is no bound, nor one too long for the record: the next row is */
	dd_pg_incr_add_sample(it->rec, sm->off, sm->ord, key, len);
	sm->last = sm->off;
}

/* Before row `row` goes out: a sample of it when SAMPLE_EVERY bytes passed since the last one. */
static void
sample_row(struct item *it, struct sampler *sm, const char *row, size_t len)
{
	const char *key;
	size_t kl;

	if (!it->rec || !it->nkeys || sm->off == 0 || sm->off - sm->last < SAMPLE_EVERY)
		return;
	if (row_key(it, row, len, &sm->key, &key, &kl) == 0)
		sample_key(it, sm, key, kl);
}

/*
 * Before row `row` goes out: is it the row of one of the previous record's
 * next samples (its key, compared for equality only)? Then tell the writer
 * where that row was in the previous stream, so the chunks from here take
 * their delta bases from the same rows (dd_stream_align_previous: without
 * it, a full read after scattered edits drifts by every row's growth and
 * picks bases further and further off). A sample row deleted since is
 * passed over by ordinal; a wrong guess costs bytes, never correctness.
 */
#define HINT_AHEAD 3
static void
hint_row(const struct item *it, struct sampler *sm, struct dd_stream_writer *w, const char *row, size_t len)
{
	const struct dd_pg_incr_table *pt = it->prec;
	const char *f;
	size_t flen;

	if (!pt || !it->nkeys)
		return;
	while (sm->hint + HINT_AHEAD < pt->nsamples && sm->ord > pt->samples[sm->hint + HINT_AHEAD].ord)
		sm->hint++;
	if (sm->hint >= pt->nsamples || row_key(it, row, len, &sm->key, &f, &flen) < 0)
		return;
	for (size_t k = sm->hint; k < pt->nsamples && k <= sm->hint + HINT_AHEAD; k++) {
		const char *key = pt->samples[k].key;
		if (strncmp(key, f, flen) == 0 && key[flen] == '\0') {
			dd_stream_align_previous(w, sm->off, pt->samples[k].off);
			sm->hint = k + 1;
			return;
		}
	}
}

/*
 * A COPY of `it` failed with `res`: a masked or subsetted table's through
 * dd_pg_guarded_error (the server's message may quote the row it failed
 * on, unmasked), others' as they are. -1.
 */
static int
copy_error(PGconn *c, const struct item *it, const PGresult *res)
{
	if (it->guard)
		return dd_pg_guarded_error(c, res, it->guard, it->guard_hint);
	return dd_pg_error(c, res);
}

/*
 * The end of a COPY TO `it` read until PQgetCopyData() answered `n` (-1:
 * done, -2: failed): its result checked and cleared (a masked table's
 * error through copy_error, issue 21: no unmasked value in a message). 0, -1.
 */
static int
copy_end(PGconn *c, const struct item *it, int n)
{
	PGresult *res;
	int rc = 0;

	if (n == -2)
		return dd_pg_error(c, NULL);
	res = PQgetResult(c);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = copy_error(c, it, res);
	PQclear(res);
	return rc;
}

/*
 * The rows of a COPY TO whose first result is `res` (taken; PQexec's, or
 * PQgetResult's after PQsendQuery), each given to `take` (0, or -1 to stop
 * at once: the connection is closed by the caller after a failure), to the
 * COPY's end. 0, -1.
 */
static int
copy_out(PGconn *c, const struct item *it, PGresult *res, int (*take)(void *arg, const char *row, size_t n),
	 void *arg)
{
	char *row = NULL;
	int n, r = 0;

	if (PQresultStatus(res) != PGRES_COPY_OUT) {
		copy_error(c, it, res);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	while (r == 0 && (n = PQgetCopyData(c, &row, 0)) > 0) {
		r = take(arg, row, (size_t)n);
		PQfreemem(row);
		row = NULL;
	}
	return r < 0 ? -1 : copy_end(c, it, n);
}

/* The stopped workers' error (an interrupt, or another worker's failure). -1. */
static int
stopped(void)
{
	return dd_error(dd_pg_interrupted() ? "interrupted" : "stopped");
}

/* copy_rows' state, for copy_out. */
struct rows_to {
	struct pool *p;
	struct item *it;
	struct dd_stream_writer *w;
	struct sampler *sm;
	struct dd_buf batch;
	uint64_t rows;
};

/* A batch of rows to the stream. 0, -1. */
static int
rows_flush(struct rows_to *t)
{
	if (t->batch.len && dd_stream_write(t->w, t->batch.ptr, t->batch.len) < 0)
		return -1;
	count_bytes(t->p, t->it, t->batch.len);
	dd_buf_clear(&t->batch);
	return 0;
}

static int
rows_take(void *arg, const char *row, size_t n)
{
	struct rows_to *t = arg;

	sample_row(t->it, t->sm, row, n);
	hint_row(t->it, t->sm, t->w, row, n);
	dd_buf_put(&t->batch, row, n);
	t->rows++;
	t->sm->off += (uint64_t)n;
	t->sm->ord++;
	if (t->batch.len < BATCH)
		return 0;
	if (rows_flush(t) < 0)
		return -1;
	return dd_pg_workers_stopped(&t->p->w) ? stopped() : 0;
}

/* Run COPY `sql` and write its rows to `w` (batched), sampling as they go. */
static int
copy_rows(PGconn *c, struct pool *p, struct item *it, struct dd_stream_writer *w, const char *sql,
	  struct sampler *sm, uint64_t *rows)
{
	struct rows_to t = { .p = p, .it = it, .w = w, .sm = sm, .batch = DD_BUF_INIT };
	int rc;

	dd_buf_grow(&t.batch, BATCH);
	rc = copy_out(c, it, PQexec(c, sql), rows_take, &t);
	if (rc == 0)
		rc = rows_flush(&t);
	*rows = t.rows;
	dd_buf_release(&t.batch);
	return rc;
}

/* The stream's attributes, then its end; the record learns its rows and size. */
static int
end_stream(struct item *it, struct dd_stream_writer *w, const struct sampler *sm)
{
	char num[32];

	snprintf(num, sizeof(num), "%" PRIu64, it->rows);
	dd_stream_set_attr(w, "rows", num);
	if (it->table)
		dd_stream_set_attr(w, "table", it->table);
	if (it->cols)
		dd_stream_set_attr(w, "columns", it->cols);
	if (it->rec) {
		it->rec->rows = it->rows;
		it->rec->size = sm->off;
	}
	return dd_stream_end(w);
}

static void
rec_reset(struct item *it)
{
	if (!it->rec)
		return;
	for (size_t i = 0; i < it->rec->nsamples; i++)
		free(it->rec->samples[i].key);
	it->rec->nsamples = 0;
}

/* ---- changed key ranges (issue 19) ---- */

/* A segment of the previous stream (rows between two samples), and what the detection query says of it now. */
struct seg {
	uint64_t off, len, ord, rows;
	int64_t now, changed;
	int how;              /* SEG_SAME, SEG_PATCH, SEG_MARKERS, SEG_RANGE (copy_ranges) */
	size_t tid0, ntid;    /* its changed rows' tids: tids.v[tid0 .. tid0 + ntid) (detect) */
};

/*
 * The changed rows' tids (detect, when it->few_changed), sorted by
 * segment: write_patched fetches exactly these rows. At most MAX_TIDS are
 * kept (12 bytes each); past that none are, and the markers merge does.
 */
struct tid {
	uint32_t seg, blk;
	uint16_t off;
};
struct tids {
	struct tid *v;
	size_t n, cap;
	int dropped;
};
#define MAX_TIDS ((size_t)1 << 20)

/* A COPY text field's value (backslash escapes undone). */
static void
copy_unescape(const char *s, struct dd_buf *out)
{
	static const char from[] = "bfnrtv", to[] = "\b\f\n\r\t\v";

	for (; *s; s++) {
		const char *m;
		if (*s != '\\' || !s[1]) {
			dd_buf_putc(out, *s);
		} else if ((m = strchr(from, s[1])) && s[1]) {
			dd_buf_putc(out, to[m - from]);
			s++;
		} else if (s[1] >= '0' && s[1] <= '7') {
			int v = 0, k = 0;
			for (s++; k < 3 && *s >= '0' && *s <= '7'; k++, s++)
				v = v * 8 + (*s - '0');
			dd_buf_putc(out, (char)v);
			s--;
		} else if (s[1] == 'x' && isxdigit((unsigned char)s[2])) {
			int v = 0, k = 0;
			for (s += 2; k < 2 && isxdigit((unsigned char)*s); k++, s++)
				v = v * 16 + (isdigit((unsigned char)*s) ? *s - '0' : (tolower((unsigned char)*s) - 'a' + 10));
			dd_buf_putc(out, (char)v);
			s--;
		} else {
			dd_buf_putc(out, s[1]);
			s++;
		}
	}
}

/*
 * The key of sample `k` of the previous record as a row of literals, each
 * cast to its column's type (with typmod) and collation: "((lit::type))"
 * for one column, "((lit1::type1), (lit2::type2 COLLATE c))" for several
 * (the fields of a sample's key are joined by tabs, see row_key).
 */
static char *
key_literal(const struct item *it, size_t k)
{
	struct dd_buf out = DD_BUF_INIT, v = DD_BUF_INIT;
	const char *f = it->prec->samples[k].key;

	dd_buf_putc(&out, '(');
	for (size_t col = 0; col < it->nkeys; col++) {
		const char *e = strchr(f, '\t');
		size_t fl = e ? (size_t)(e - f) : strlen(f);
		char *field = dd_strndup(f, fl), *lit;
		dd_buf_clear(&v);
		copy_unescape(field, &v);
		lit = dd_pg_quote_literal(dd_buf_cstr(&v));
		dd_buf_printf(&out, "%s(%s::%s%s)", col ? ", " : "", lit, it->keys[col].type, it->keys[col].coll);
		free(lit);
		free(field);
		f = e ? e + 1 : f + fl;
	}
	dd_buf_putc(&out, ')');
	dd_buf_release(&v);
	return dd_buf_detach(&out, NULL);
}

/* One key column's bounds as an array literal: the samples' keys, COPY escapes undone, array-quoted. */
static void
bounds_array(const struct item *it, size_t nbounds, struct dd_buf *arr)
{
	struct dd_buf v = DD_BUF_INIT;

	dd_buf_putc(arr, '{');
	for (size_t k = 0; k < nbounds; k++) {
		dd_buf_clear(&v);
		copy_unescape(it->prec->samples[k].key, &v);
		dd_buf_puts(arr, k ? ",\"" : "\"");
		for (const char *q = dd_buf_cstr(&v); *q; q++) {
			if (*q == '"' || *q == '\\')
				dd_buf_putc(arr, '\\');
			dd_buf_putc(arr, *q);
		}
		dd_buf_putc(arr, '"');
	}
	dd_buf_putc(arr, '}');
	dd_buf_release(&v);
}

/*
 * The segment of a row, the number of bounds [lo, hi) at or below its key,
 * as a binary search of comparisons, a row comparison for several key
 * columns: a btree comparison of each column in key order, the ORDER BY's
 * (with each column's collation, the literals cast to it). Nested CASEs
 * against constants: log2(bounds) comparisons per row.
 */
static void
bounds_case(const struct item *it, char *const *lits, size_t lo, size_t hi, struct dd_buf *out)
{
	size_t mid = lo + (hi - lo) / 2;

	if (lo == hi) {
		dd_buf_printf(out, "%zu", lo);
		return;
	}
	dd_buf_printf(out, "CASE WHEN %s < %s THEN ", it->kexpr, lits[mid]);
	bounds_case(it, lits, lo, mid, out);
	dd_buf_puts(out, " ELSE ");
	bounds_case(it, lits, mid + 1, hi, out);
	dd_buf_puts(out, " END");
}

/*
 * The detection query's segment expression of a row; with one key column
 * of a fixed-width type, *param is its bounds' array for width_bucket
 * (a binary search in C). width_bucket walks a variable-width array from
 * its start at every step (O(bounds) per row): measured on 2 M rows with
 * 800 bounds, a text key cost 8.2 s of server CPU there against 1.4 s with
 * the CASEs (an int key 0.5 s either way; 80,000 bounds: 1.3 s against
 * 2.4 s); two int columns cost 0.5-0.7 s, text "C" and int 0.7-0.85 s (a
 * scan alone 0.2 s).
 */
static void
bucket_expr(const struct item *it, size_t nbounds, struct dd_buf *expr, struct dd_buf *param)
{
	char **lits;

	if (it->nkeys == 1 && it->keys[0].fixed) {
		/* the bounds in a sub-select: an InitPlan, computed once (array_in is only stable: never folded) */
		bounds_array(it, nbounds, param);
		dd_buf_printf(expr, "width_bucket(%s, (SELECT $1::text::%s[]%s))", it->kexpr, it->keys[0].type,
			      it->keys[0].coll);
		return;
	}
	lits = dd_calloc(nbounds + 1, sizeof(*lits));
	for (size_t k = 0; k < nbounds; k++)
		lits[k] = key_literal(it, k);
	bounds_case(it, lits, 0, nbounds, expr);
	for (size_t k = 0; k < nbounds; k++)
		free(lits[k]);
	free(lits);
}

/* "(blk,off)" (tid's text) into t; 0, or -1 when it is not one. */
static int
parse_tid(const char *s, struct tid *t)
{
	char *e;
	unsigned long blk, off;

	if (*s++ != '(')
		return -1;
	blk = strtoul(s, &e, 10);
	if (e == s || *e != ',' || blk > UINT32_MAX)
		return -1;
	s = e + 1;
	off = strtoul(s, &e, 10);
	if (e == s || *e != ')' || e[1] || off > UINT16_MAX)
		return -1;
	t->blk = (uint32_t)blk;
	t->off = (uint16_t)off;
	return 0;
}

static int
cmp_tid_seg(const void *a, const void *b)
{
	const struct tid *x = a, *y = b;

	return x->seg < y->seg ? -1 : x->seg > y->seg;
}

/*
 * One result row of the detection query: segment, then either count(*)
 * and the changed count, or (with tids) the tid of one changed row or
 * NULL, and count(*). 0, or -1 (*why) for a row that is not one.
 */
static int
detect_row(const PGresult *res, struct seg *sg, size_t n, struct tids *t, char **why)
{
	long b = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	long long cnt = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	struct tid one;

	if (b < 0 || (size_t)b >= n) {
		*why = dd_strdup("a segment out of range");
		return -1;
	}
	sg[b].now += cnt;
	if (!t) {
		sg[b].changed += strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		return 0;
	}
	if (PQgetisnull(res, 0, 1))
		return 0;
	sg[b].changed += cnt;
	if (cnt != 1 || parse_tid(PQgetvalue(res, 0, 1), &one) < 0) {
		*why = dd_strdup("the detection query returned an unexpected tid");
		return -1;
	}
	if (t->dropped)
		return 0;
	if (t->n == MAX_TIDS) { /* too many to keep: the markers merge reads them */
		t->dropped = 1;
		free(t->v);
		t->v = NULL;
		t->n = t->cap = 0;
		return 0;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 1024;
		t->v = dd_realloc(t->v, t->cap * sizeof(*t->v));
	}
	one.seg = (uint32_t)b;
	t->v[t->n++] = one;
	return 0;
}

/* Run the detection query, one result row at a time (a row per changed row with tids). 0, 1 (*why), -1. */
static int
detect_query(PGconn *c, const char *sql, const char *param, struct seg *sg, size_t n, struct tids *t, char **why)
{
	const char *params[1] = { param };
	PGresult *res;
	int failed = 0;

	if (!PQsendQueryParams(c, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0))
		return dd_pg_error(c, NULL);
	PQsetSingleRowMode(c);
	while ((res = PQgetResult(c))) {
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_SINGLE_TUPLE && !failed && !*why && PQnfields(res) == 3)
			detect_row(res, sg, n, t, why);
		else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && !failed) {
			failed = 1;
			dd_pg_error(c, res);
		}
		PQclear(res);
	}
	if (failed && !*why) {
		*why = dd_asprintf("the detection query failed: %s", dd_error_last());
		dd_error_clear();
	}
	return *why ? 1 : 0;
}

/* Add "<seg>(<blk>,<off>)..." (detect_counted) to sg and t. 0, or -1 (*why). */
static int
counted_tids(const char *s, struct seg *sg, size_t n, struct tids *t, char **why)
{
	while (*s) {
		char *e, tid[32];
		unsigned long b = strtoul(s, &e, 10);
		const char *close = e != s && *e == '(' ? strchr(e, ')') : NULL;
		struct tid one;
		if (!close || b >= n || (size_t)(close + 1 - e) >= sizeof(tid)) {
			*why = dd_strdup("the detection query returned an unexpected tid");
			return -1;
		}
		memcpy(tid, e, (size_t)(close + 1 - e));
		tid[close + 1 - e] = '\0';
		if (parse_tid(tid, &one) < 0) {
			*why = dd_strdup("the detection query returned an unexpected tid");
			return -1;
		}
		one.seg = (uint32_t)b;
		sg[b].changed++;
		if (t->n == t->cap) {
			t->cap = t->cap ? 2 * t->cap : 1024;
			t->v = dd_realloc(t->v, t->cap * sizeof(*t->v));
		}
		t->v[t->n++] = one;
		s = close + 1;
	}
	return 0;
}

/*
 * detect() for a table whose counters say few rows changed and none were
 * deleted: one plain aggregate over a sequential scan, the table's rows
 * now and the segment and tid of each changed row (the segment computed
 * for those alone), with no group per segment: that grouping (a hash
 * lookup per row) cost twice the scan itself on pgbench_accounts. Each
 * segment's count is then assumed to be its previous count (it->counted):
 * a segment without changed rows is carried over, a patch finds every
 * previous row but those replaced, a range is read without a count to
 * compare. Each writes at least the rows its key range holds now (a
 * previous row deleted or moved away is still written), so the table's
 * rows written equal its count exactly when every segment's are exact;
 * copy_ranges checks that before the stream ends, and reads the table
 * whole when the counters did not tell a delete. 0, 1 (*why), -1.
 */
static int
detect_counted(PGconn *c, struct item *it, struct seg *sg, size_t n, struct tids *t, char **why)
{
	struct dd_buf expr = DD_BUF_INIT, arr = DD_BUF_INIT;
	const char *params[1];
	char *sql, *changed = dd_asprintf("age(xmin) <= (SELECT age('%" PRIu64 "'::xid))", it->xid_lo);
	PGresult *res = NULL;
	int rc = 1;

	bucket_expr(it, n - 1, &expr, &arr);
	params[0] = dd_buf_cstr(&arr);
	/* more changed rows than kept: no list (the aggregate is made all the same; the counters were wrong) */
	sql = dd_asprintf("SELECT count(*), CASE WHEN count(*) FILTER (WHERE %s) <= %zu THEN coalesce(string_agg((%s)::text"
			  " || ctid::text, '') FILTER (WHERE %s), '') END FROM ONLY %s", changed, MAX_TIDS,
			  dd_buf_cstr(&expr), changed, it->qtable);
	if (dd_pg_exec(c, "SAVEPOINT dd_ranges; SET LOCAL jit = off") < 0) {
		rc = -1;
	} else if (!(res = dd_pg_query(c, sql, arr.len > 0, params))) {
		*why = dd_asprintf("the detection query failed: %s", dd_error_last());
		dd_error_clear();
	} else if (PQntuples(res) != 1 || PQgetisnull(res, 0, 1)) {
		*why = dd_strdup("more rows changed than the statistics said");
	} else if (counted_tids(PQgetvalue(res, 0, 1), sg, n, t, why) == 0) {
		it->count = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		it->counted = 1;
		for (size_t k = 0; k < n; k++)
			sg[k].now = (int64_t)sg[k].rows;
		rc = 0;
	}
	PQclear(res);
	if (rc >= 0 && dd_pg_exec(c, "ROLLBACK TO SAVEPOINT dd_ranges; RELEASE SAVEPOINT dd_ranges") < 0)
		rc = -1;
	free(sql);
	free(changed);
	dd_buf_release(&expr);
	dd_buf_release(&arr);
	return rc;
}

/*
 * One scan: per segment, the rows now and those whose xmin is not older
 * than the previous snapshot's xmin (inserted or updated since, or maybe
 * visible to it already: counted as changed, the safe side). With `t`
 * (few rows changed, by the counters), also each changed row's tid: one
 * group per changed row, one per segment for the others, so the scan
 * that counts also tells write_patched which rows to fetch (the markers
 * query, an index-order scan of every row, is then not needed). In a
 * savepoint, rolled back after (the query writes nothing): a key type
 * without the operators needed reads the table whole, and JIT is off for
 * it alone (compiling the CASEs of 800 bounds cost 5-12 s of server CPU,
 * the scan 0.5-1.4 s). 0, 1 (read it whole: *why), -1.
 */
static int
detect(PGconn *c, struct item *it, struct seg *sg, size_t n, struct tids *t, char **why)
{
	struct dd_buf expr = DD_BUF_INIT, arr = DD_BUF_INIT;
	char *sql;
	int rc;

	if (t && it->no_deletes) {
		if ((rc = detect_counted(c, it, sg, n, t, why)) != 1)
			goto sort;
		dd_debug("incremental: %s: %s: counted by key range", it->table, *why); /* the counters were wrong */
		free(*why);
		*why = NULL;
		it->counted = 0;
		t->n = 0;
		for (size_t k = 0; k < n; k++)
			sg[k].now = sg[k].changed = 0;
	}
	bucket_expr(it, n - 1, &expr, &arr);
	/*
	 * Changed: xmin not older than the previous xmin, by age()
	 * (wraparound-aware int4 arithmetic against one value fixed for the
	 * transaction, newer than every visible xmin; a special xid is INT_MAX
	 * old), which costs no text conversion per row.
	 */
	if (t)
		sql = dd_asprintf("SELECT %s, CASE WHEN age(xmin) <= (SELECT age('%" PRIu64 "'::xid)) THEN ctid END, "
				  "count(*) FROM ONLY %s GROUP BY 1, 2", dd_buf_cstr(&expr), it->xid_lo, it->qtable);
	else
		sql = dd_asprintf("SELECT %s, count(*) FILTER (WHERE age(xmin) <= (SELECT age('%" PRIu64
				  "'::xid))), count(*) FROM ONLY %s GROUP BY 1", dd_buf_cstr(&expr), it->xid_lo, it->qtable);
	if (dd_pg_exec(c, "SAVEPOINT dd_ranges; SET LOCAL jit = off") < 0)
		rc = -1;
	else
		rc = detect_query(c, sql, arr.len ? dd_buf_cstr(&arr) : NULL, sg, n, t, why);
	if (rc >= 0 && dd_pg_exec(c, "ROLLBACK TO SAVEPOINT dd_ranges; RELEASE SAVEPOINT dd_ranges") < 0)
		rc = -1;
	free(sql);
sort:
	if (rc == 0 && t && !t->dropped && t->n) { /* each segment's tids, in a row (qsort never gets NULL) */
		qsort(t->v, t->n, sizeof(*t->v), cmp_tid_seg);
		for (size_t k = 0; k < t->n; k++) {
			struct seg *g = &sg[t->v[k].seg];
			if (!g->ntid)
				g->tid0 = k;
			g->ntid++;
		}
	}
	dd_buf_release(&expr);
	dd_buf_release(&arr);
	return rc;
}

/* Segments [i, j] of the previous stream, unchanged: append their bytes (and samples, shifted). */
static int
write_unchanged(struct pool *p, struct item *it, struct dd_stream_writer *w, const struct seg *sg, size_t i,
		size_t j, struct sampler *sm)
{
	uint64_t len = sg[j].off + sg[j].len - sg[i].off, rows = sg[j].ord + sg[j].rows - sg[i].ord;
	int r;

	for (size_t k = i; k <= j; k++) {
		const struct dd_pg_incr_sample *ps = k ? &it->prec->samples[k - 1] : NULL;
		uint64_t off = ps ? sm->off + (ps->off - sg[i].off) : 0;
		if (ps && off > 0 && it->rec && it->nkeys) {
			dd_pg_incr_add_sample(it->rec, off, sm->ord + (ps->ord - sg[i].ord), ps->key, strlen(ps->key));
			sm->last = off;
		}
	}
	if ((r = dd_stream_write_previous(w, sg[i].off, len)) != 0)
		return r;
	count_bytes(p, it, (size_t)len);
	sm->off += len;
	sm->ord += rows;
	sm->hint = j; /* the next run starts at the row of sample j */
	it->rows += rows;
	return 0;
}

/*
 * " WHERE <rows of segments [i, j] by key value>" (the bounds are samples
 * i - 1 and j), or "" for the whole table. The range COPY and the markers
 * query select with it.
 */
static char *
range_where(const struct item *it, size_t i, size_t j, size_t n)
{
	char *lo = i ? key_literal(it, i - 1) : NULL, *hi = j + 1 < n ? key_literal(it, j) : NULL, *out;

	/* a row comparison for several columns: exactly the keys between the two samples in key order */
	out = dd_asprintf("%s%s%s%s%s%s%s%s", lo || hi ? " WHERE " : "", lo ? it->kexpr : "", lo ? " >= " : "",
			  lo ? lo : "", lo && hi ? " AND " : "", hi ? it->kexpr : "", hi ? " < " : "", hi ? hi : "");
	free(lo);
	free(hi);
	return out;
}

/* Segments [i, j], changed: a COPY of their key range; its rows must be those the detection counted. */
static int
write_changed(PGconn *c, struct pool *p, struct item *it, struct dd_stream_writer *w, const struct seg *sg,
	      size_t i, size_t j, size_t n, struct sampler *sm, char **why)
{
	char *where = range_where(it, i, j, n), *sql;
	uint64_t rows = 0;
	int64_t want = 0;
	int rc;

	for (size_t k = i; k <= j; k++)
		want += sg[k].now;
	sql = dd_asprintf("COPY (SELECT %s FROM ONLY %s%s ORDER BY %s) TO STDOUT", it->sel, it->qtable, where, it->pk);
	rc = copy_rows(c, p, it, w, sql, sm, &rows);
	if (rc == 0 && !it->counted && (int64_t)rows != want) { /* counted: the table's count is checked at its end */
		*why = dd_asprintf("range %zu-%zu has %" PRIu64 " rows, the detection counted %" PRId64, i, j, rows, want);
		rc = 1;
	}
	it->rows += rows;
	free(sql);
	free(where);
	return rc;
}

/*
 * ---- markers: a changed run in which few rows changed (issue 19) ----
 *
 * The server sends, in key order, per row whether it changed since the
 * previous snapshot (detect's test), its key, and its columns only when
 * it changed:
 *   COPY (SELECT <changed>, <pk>, CASE WHEN <changed> THEN c1 END, ...
 *         FROM ONLY t WHERE <the run's key range> ORDER BY <pk>)
 * (CASE leaves an unchanged row's columns alone: no output function, no
 * detoasting). An unchanged row was in the previous stream with the same
 * text (detect's proof sketch), in the same run (its key is in the run's
 * range): its bytes are spliced from there, found by walking the run's
 * previous rows and comparing key fields for equality only (a key is
 * unique and prints one way, so one previous row has that text; rows
 * passed over were deleted or updated). A changed row's columns are its
 * COPY line: the same columns, the same output functions (CASE gives a
 * domain's base type, whose output function the domain has). A key not
 * found, counts that differ from the detection's, a run that does not
 * start and end at row boundaries: the table is read whole.
 */

/*
 * The markers query's select list after the flag: the key's columns in key
 * order (fields 1 to nkeys of a markers row: row_key's bytes), then
 * "CASE WHEN <changed> THEN <c> END, ..." per column.
 */
static char *
markers_list(const struct item *it, const char *changed)
{
	struct dd_buf b = DD_BUF_INIT;
	const char *s = it->cols, *q;

	for (size_t k = 0; k < it->nkeys; k++)
		dd_buf_printf(&b, "%s%s", k ? ", " : "", it->keys[k].name);
	for (size_t i = 0; it->mexprs && it->mexprs[i]; i++) /* masked columns' expressions (issue 21) */
		dd_buf_printf(&b, ", CASE WHEN %s THEN %s END", changed, it->mexprs[i]);
	while (!it->mexprs && *s) { /* it->cols: quote_ident()s joined by ", " */
		q = s;
		if (*q == '"') {
			for (q++; *q && !(*q == '"' && q[1] != '"'); q += *q == '"' ? 2 : 1)
				;
			if (*q++ != '"')
				break;
		} else {
			while (*q && *q != ',')
				q++;
		}
		dd_buf_printf(&b, ", CASE WHEN %s THEN %.*s END", changed, (int)(q - s), s);
		if (*q && (q[0] != ',' || q[1] != ' '))
			break;
		s = *q ? q + 2 : q;
	}
	if ((!it->mexprs && *s) || !*it->cols) {
		dd_buf_release(&b);
		return NULL;
	}
	return dd_buf_detach(&b, NULL);
}

/* The previous stream's rows of a run, in order. */
struct walker {
	struct dd_stream_writer *w;
	uint64_t pos, end;  /* the next row starts at pos; the run ends at end */
	uint64_t rows;      /* rows walked */
	uint64_t at;        /* the current row: its offset, bytes (through its '\n'), length */
	const char *row;    /* in the writer's view of the previous chunk, or in `joined` (valid until the next call) */
	size_t len;
	struct dd_buf joined; /* a row that spans chunks, put together */
	/*
	 * keep_view: the walk alone reads the previous stream (patch_match:
	 * nothing is written meanwhile, so no chunk the view points into is
	 * dropped); the last view, [vat, vend) at vp, serves the next rows
	 * without a lookup each.
	 */
	int keep_view;
	const char *vp;
	uint64_t vat, vend;
};

/* A chunk of the previous stream gone (DD_NOTFOUND): 1 with *why (read the table whole); else r. */
static int
gone(int r, char **why)
{
	if (r != DD_NOTFOUND)
		return r;
	*why = dd_strdup(dd_error_last() ? dd_error_last() : "a chunk of the previous stream is gone");
	dd_error_clear();
	return 1;
}

/* The next row of the run: 1 (k->row), 0 past its end, 2 (*why: read the table whole), -1. */
static int
walk_row(struct walker *k, char **why)
{
	const char *p, *nl;
	uint64_t at = k->pos;
	size_t n;
	int r;

	if (k->pos >= k->end)
		return 0;
	dd_buf_clear(&k->joined);
	for (;;) {
		if (k->keep_view && k->vp && at >= k->vat && at < k->vend) {
			p = k->vp + (at - k->vat);
			n = (size_t)(k->vend - at);
		} else if ((r = dd_stream_previous_view(k->w, at, &p, &n)) != 0) {
			return gone(r, why) == 1 ? 2 : -1;
		} else if (k->keep_view) {
			k->vp = p, k->vat = at, k->vend = at + n;
		}
		if (n > k->end - at)
			n = (size_t)(k->end - at);
		if ((nl = memchr(p, '\n', n)))
			break;
		dd_buf_put(&k->joined, p, n);
		at += n;
		if (at >= k->end) {
			*why = dd_strdup("the last row of a key range runs past its end in the previous stream");
			return 2;
		}
	}
	if (k->joined.len) {
		dd_buf_put(&k->joined, p, (size_t)(nl + 1 - p));
		k->row = k->joined.ptr, k->len = k->joined.len;
	} else {
		k->row = p, k->len = (size_t)(nl + 1 - p);
	}
	k->at = k->pos;
	k->pos += k->len;
	k->rows++;
	return 1;
}

/* Where the markers merge of a run stands. */
struct merge {
	struct walker k;
	uint64_t a, b;        /* previous bytes [a, b) to append (unchanged rows in a row), not yet written */
	uint64_t rows, changed; /* markers rows, changed ones */
	char *why;            /* the first mismatch: the rest of the COPY is drained, the table read whole */
};

static int
merge_flush(struct pool *p, struct item *it, struct dd_stream_writer *w, struct merge *m)
{
	int r;

	if (m->a == m->b)
		return 0;
	if ((r = dd_stream_write_previous(w, m->a, m->b - m->a)) != 0)
		return gone(r, &m->why);
	count_bytes(p, it, (size_t)(m->b - m->a));
	m->a = m->b;
	return 0;
}

/* Markers row [row, row + n) (through its '\n'): its bytes out, new or from the previous stream. 0, 1 (m->why), -1. */
static int
merge_row(struct pool *p, struct item *it, struct dd_stream_writer *w, struct merge *m, struct sampler *sm,
	  const char *row, size_t n)
{
	const char *end = row + n, *key = row + 2, *f;
	size_t klen, flen, len;
	int r;

	/* the key: fields 1 to nkeys, joined by their tabs as row_key joins them */
	int ok = n >= 3 && (row[0] == 't' || row[0] == 'f') && row[1] == '\t' && row[n - 1] == '\n' &&
		 row_field(row, end - 1, (int)it->nkeys, &f, &flen) == 0;

	klen = ok ? (size_t)(f + flen - key) : 0;
	if (!ok || key + klen >= end - 1 || key[klen] != '\t') {
		m->why = dd_strdup("the markers query returned an unexpected row");
		return 1;
	}
	len = (size_t)(end - (key + klen + 1)); /* a changed row's COPY line */
	m->rows++;
	if (row[0] == 't') {
		m->changed++;
		if ((r = merge_flush(p, it, w, m)) != 0)
			return r;
		sample_key(it, sm, key, klen);
		if (dd_stream_write(w, key + klen + 1, len) < 0)
			return -1;
		count_bytes(p, it, len);
		m->a = m->b = UINT64_MAX;
	} else {
		for (;;) { /* the previous row with this key; those before it were deleted or updated */
			if ((r = walk_row(&m->k, &m->why)) != 1) {
				if (r == 0)
					m->why = dd_strdup("an unchanged row is not in the previous stream's key range");
				return r < 0 ? -1 : 1;
			}
			if (row_key(it, m->k.row, m->k.len - 1, &sm->key, &f, &flen) == 0 && flen == klen &&
			    !memcmp(f, key, klen))
				break;
		}
		len = m->k.len;
		sample_key(it, sm, key, klen);
		if (m->k.at != m->b && (r = merge_flush(p, it, w, m)) != 0)
			return r;
		if (m->k.at != m->b)
			m->a = m->k.at;
		m->b = m->k.at + m->k.len;
	}
	sm->off += len;
	sm->ord++;
	it->rows++;
	return 0;
}

/* merge_copy's state, for copy_out. */
struct merge_from {
	struct pool *p;
	struct item *it;
	struct dd_stream_writer *w;
	struct merge *m;
	struct sampler *sm;
	uint64_t seen;
};

static int
merge_take(void *arg, const char *row, size_t n)
{
	struct merge_from *f = arg;

	if (!f->m->why && merge_row(f->p, f->it, f->w, f->m, f->sm, row, n) < 0)
		return -1;
	return (++f->seen & 0xffff) == 0 && dd_pg_workers_stopped(&f->p->w) ? stopped() : 0;
}

/* Read the markers COPY `sql` through merge_row (after a mismatch, the rest is drained: the session goes on). */
static int
merge_copy(PGconn *c, struct pool *p, struct item *it, struct dd_stream_writer *w, struct merge *m,
	   struct sampler *sm, const char *sql)
{
	struct merge_from f = { .p = p, .it = it, .w = w, .m = m, .sm = sm };

	return copy_out(c, it, PQexec(c, sql), merge_take, &f);
}

/*
 * Segments [i, j], changed, few rows of them: the markers merge (above).
 * 0, 1 (*why: read the table whole; the stream is aborted), -1.
 */
static int
write_marked(PGconn *c, struct pool *p, struct item *it, struct dd_stream_writer *w, const struct seg *sg,
	     size_t i, size_t j, size_t n, struct sampler *sm, char **why)
{
	char *changed = dd_asprintf("age(xmin) <= (SELECT age('%" PRIu64 "'::xid))", it->xid_lo);
	char *list = markers_list(it, changed), *where = range_where(it, i, j, n), *sql = NULL;
	struct merge m = { .a = UINT64_MAX, .b = UINT64_MAX };
	uint64_t want = 0, want_changed = 0, prev_rows = 0;
	const char *before;
	size_t blen;
	int rc = 1, r = 0;

	for (size_t k = i; k <= j; k++) {
		want += (uint64_t)sg[k].now;
		want_changed += (uint64_t)sg[k].changed;
		prev_rows += sg[k].rows;
	}
	m.k.w = w;
	m.k.pos = sg[i].off;
	m.k.end = sg[j].off + sg[j].len;
	if (!list) {
		m.why = dd_strdup("its column list is not understood"); /* plan_ranges checked it: a BUG */
		goto out;
	}
	/* the run starts at a row (COPY text: a raw '\n' only ends one) */
	if (m.k.pos && (r = dd_stream_previous_view(w, m.k.pos - 1, &before, &blen)) != 0) {
		rc = gone(r, &m.why);
		goto out;
	}
	if (m.k.pos && *before != '\n') {
		m.why = dd_strdup("a key range does not start at a row of the previous stream");
		goto out;
	}
	sql = dd_asprintf("COPY (SELECT %s, %s FROM ONLY %s%s ORDER BY %s) TO STDOUT", changed, list, it->qtable, where,
			  it->pk);
	if (merge_copy(c, p, it, w, &m, sm, sql) < 0 || (!m.why && merge_flush(p, it, w, &m) < 0)) {
		rc = -1;
		goto out;
	}
	while (!m.why && (r = walk_row(&m.k, &m.why)) == 1) /* the rows after the last one kept: deleted or updated */
		;
	if (!m.why && r < 0) {
		rc = -1;
		goto out;
	}
	if (!m.why && (m.rows != want || m.changed != want_changed || m.k.rows != prev_rows || m.k.pos != m.k.end))
		m.why = dd_asprintf("key ranges %zu-%zu: %" PRIu64 " rows (%" PRIu64 " changed) and %" PRIu64
				    " previous rows, the detection counted %" PRIu64 " (%" PRIu64 ") and %" PRIu64,
				    i, j, m.rows, m.changed, m.k.rows, want, want_changed, prev_rows);
	rc = m.why ? 1 : 0;
out:
	if (rc == 1) {
		*why = m.why ? m.why : dd_strdup("the markers merge failed");
		m.why = NULL;
	}
	free(m.why);
	dd_buf_release(&m.k.joined);
	free(sql);
	free(where);
	free(list);
	free(changed);
	return rc;
}

/*
 * ---- patches: a changed segment merged from its changed rows alone (issue 19) ----
 *
 * With the changed rows' tids from the detection scan (detect), the server
 * sends only those rows, as the full COPY writes them:
 *   COPY (SELECT cols FROM ONLY t WHERE ctid = ANY ('{...}'::tid[]) ORDER BY pk)
 * (a TID scan: no index-order scan of every row as the markers query
 * makes, no output per unchanged row). In the snapshot's transaction a tid
 * names the row version the detection saw (no vacuum removes what the
 * snapshot sees; our ACCESS SHARE lock keeps VACUUM FULL and CLUSTER
 * out). Why segment s's rows are then known, with equality of key bytes
 * only: let P be its previous rows (a key range, in key order), X its c
 * changed rows in key order, u = now - c its unchanged ones (U). Each row
 * of U was in the previous snapshot with the same text (detect's proof),
 * in the same segment (the segment is a function of the key), so U is in
 * P. Walk P and X together: a previous row whose key bytes equal the next
 * changed row's is that row's old version (keys are unique and print one
 * way), which U cannot hold. If every changed row is matched so (no insert,
 * no key moved into the segment) and the previous rows left are exactly u,
 * they are U, and the segment is P with each matched row replaced by its
 * changed row, in place: the full read's bytes. The changed rows come in
 * key order and segments are key ranges, so segment s's are the next c
 * rows of the batch. Anything else (an insert, a delete, a count, a row
 * not at a segment's start) merges that segment from markers instead, or
 * reads its range; a batch whose COPY does not return one row per tid
 * does that for all its segments.
 */
#define PATCH_ROWS 4096              /* changed rows per COPY, at most */
#define PATCH_BYTES (16 * 1024 * 1024) /* previous bytes of its segments, at most (one COPY still per segment) */
#define PATCH_BUF (16 * 1024 * 1024) /* a batch's rows, buffered, beyond which its segments are merged from markers */

/*
 * A batch's changed rows, buffered: row r is buf[at[r] .. at[r + 1]) (through its '\n').
 *
 * The fetches overlap the client's work (issue 19, the scattered snapshot's
 * timeline): once a batch's rows are in, the next batch's COPY is sent
 * (PQsendQuery) before this one is merged, so the server runs its TID scan
 * meanwhile, and its rows are read when the next batch starts. The planner
 * settings a TID scan needs stay set (SET LOCAL in the savepoint dd_patch)
 * from the first fetch of a run of patched segments to its end. Anything
 * else on the session (a fallback's markers or range COPY) first reads the
 * COPY in flight into the second buffer, where the next batch finds its
 * rows, and rolls the savepoint back (patch_unwind); the end of the run
 * (the table read whole, the next table) drops it.
 */
struct rows {
	struct dd_buf buf;
	size_t *at, nrows, cap;
	size_t want; /* the rows the COPY asked for (one per tid) */
	int too_big; /* more than PATCH_BUF bytes or `want` rows: drained, not kept */
};

struct patch {
	struct rows r[2], *cur, *next; /* this batch's rows; where the next batch's come (patch_send, patch_recv) */
	uint64_t (*match)[2]; /* per changed row of the segment being merged: its old version's offset and length */
	struct dd_buf key;    /* row_key's scratch for a changed row's key */
	int in_sp;            /* the savepoint dd_patch and its SET LOCALs are in effect */
	int sent;             /* a COPY is in flight (patch_send), for `next`: not read yet */
	int next_in;          /* the next batch's rows are in `next` already (patch_unwind), patch_recv said next_rc */
	int next_rc;
};

/*
 * Read the results left of the session's last command (a COPY read before,
 * copy_end, leaves its end unread: PQexec skips that, PQsendQuery does not),
 * but never loop on a COPY in progress (PQgetResult gives its result again):
 * PQsendQuery then says what is wrong.
 */
static void
session_drain(PGconn *c)
{
	PGresult *res;

	while ((res = PQgetResult(c))) {
		ExecStatusType st = PQresultStatus(res);
		PQclear(res);
		if (st == PGRES_COPY_OUT || st == PGRES_COPY_IN || st == PGRES_COPY_BOTH)
			break;
	}
}

/*
 * Send the COPY of the changed rows of segments [a, b], for pt->next (the
 * savepoint and the settings first, if not in effect). 0, -1.
 */
static int
patch_send(PGconn *c, const struct item *it, const struct seg *sg, size_t a, size_t b, const struct tids *t,
	   struct patch *pt)
{
	struct dd_buf sql = DD_BUF_INIT;
	size_t want = 0;
	int rc = 0;

	/* a TID scan, whatever the planner thinks of a few thousand tids against a sequential scan */
	if (!pt->in_sp)
		dd_buf_puts(&sql, "SAVEPOINT dd_patch; SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off; "
				  "SET LOCAL enable_bitmapscan = off; ");
	dd_buf_printf(&sql, "COPY (SELECT %s FROM ONLY %s WHERE ctid = ANY ('{", it->sel, it->qtable);
	for (size_t s = a; s <= b; s++)
		for (size_t k = sg[s].tid0; k < sg[s].tid0 + sg[s].ntid; k++, want++)
			dd_buf_printf(&sql, "%s\"(%" PRIu32 ",%u)\"", want ? "," : "", t->v[k].blk, (unsigned)t->v[k].off);
	dd_buf_printf(&sql, "}'::tid[]) ORDER BY %s) TO STDOUT", it->pk);
	session_drain(c);
	if (!PQsendQuery(c, dd_buf_cstr(&sql)))
		rc = dd_pg_error(c, NULL);
	else
		pt->in_sp = pt->sent = 1, pt->next->want = want;
	dd_buf_release(&sql);
	return rc;
}

/* Row `row` (n bytes) of the COPY in flight, into rows `arg` unless past PATCH_BUF or their `want` rows. 0. */
static int
patch_take(void *arg, const char *row, size_t n)
{
	struct rows *rw = arg;

	if (!rw->too_big && (rw->buf.len + n > PATCH_BUF || rw->nrows == rw->want))
		rw->too_big = 1; /* drained; its segments are merged from markers */
	if (rw->too_big)
		return 0;
	if (rw->nrows + 1 >= rw->cap) {
		rw->cap = rw->cap ? 2 * rw->cap : 1024;
		rw->at = dd_realloc(rw->at, rw->cap * sizeof(*rw->at));
	}
	rw->at[rw->nrows++] = rw->buf.len;
	dd_buf_put(&rw->buf, row, n);
	return 0;
}

/* A row of a COPY read to its end only. 0. */
static int
drop_row(void *arg, const char *row, size_t n)
{
	(void)arg, (void)row, (void)n;
	return 0;
}

/*
 * Read the COPY in flight to its end: its rows buffered in p->next (keep),
 * or dropped. 0, 1 (kept, but too many bytes or not one row per tid), -1.
 */
static int
patch_recv(PGconn *c, const struct item *it, struct patch *p, int keep)
{
	struct rows *rw = p->next;
	PGresult *res;
	int rc;

	p->sent = 0;
	if (keep) {
		dd_buf_clear(&rw->buf);
		rw->nrows = 0;
		rw->too_big = 0;
	}
	while ((res = PQgetResult(c)) && PQresultStatus(res) == PGRES_COMMAND_OK) /* the savepoint, the settings */
		PQclear(res);
	rc = copy_out(c, it, res, keep ? patch_take : drop_row, rw);
	if (rc == 0 && keep && rw->nrows)
		rw->at[rw->nrows] = rw->buf.len;
	if (rc == 0)
		rc = keep && (rw->too_big || rw->nrows != rw->want) ? 1 : 0;
	session_drain(c); /* the session idle again (an error's results too) */
	return rc;
}

/*
 * The session back to the snapshot's own, the savepoint rolled back; the
 * COPY in flight read first: its rows kept for the next batch (keep: a
 * fallback of this batch needs the session), or dropped (the run ends).
 * 0, -1.
 */
static int
patch_unwind(PGconn *c, struct item *it, struct patch *pt, int keep)
{
	if (pt->sent) {
		int r = patch_recv(c, it, pt, keep);
		if (r < 0)
			return -1;
		if (keep)
			pt->next_in = 1, pt->next_rc = r, it->patch_early++;
	}
	if (pt->in_sp && dd_pg_exec(c, "ROLLBACK TO SAVEPOINT dd_patch; RELEASE SAVEPOINT dd_patch") < 0)
		return -1;
	pt->in_sp = 0;
	return 0;
}

/*
 * Segment s, whose changed rows are the batch's rows [x, x + sg[s].changed):
 * find each one's old version in the previous rows (above). 0 (pt->match
 * set), 2 (not so: merge the segment another way), 1 (*why: read the table
 * whole), -1.
 */
static int
patch_match(struct item *it, struct dd_stream_writer *w, const struct seg *sg, size_t s, struct patch *pt,
	    size_t x, struct sampler *sm, char **why)
{
	struct walker k = { .w = w, .pos = sg[s].off, .end = sg[s].off + sg[s].len, .keep_view = 1 };
	const struct rows *rw = pt->cur;
	size_t c = (size_t)sg[s].changed, j = 0, blen;
	const char *before, *xk = NULL, *f;
	size_t xl = 0, flen;
	int r;

	if (k.pos && (r = dd_stream_previous_view(w, k.pos - 1, &before, &blen)) != 0)
		return gone(r, why) == 1 ? 1 : -1;
	if (k.pos && *before != '\n')
		return 2; /* the markers merge says why, and reads the table whole */
	pt->match = dd_realloc(pt->match, (c ? c : 1) * sizeof(*pt->match));
	while ((r = walk_row(&k, why)) == 1) {
		if (j == c)
			continue;
		if (!xk && row_key(it, rw->buf.ptr + rw->at[x + j], rw->at[x + j + 1] - rw->at[x + j] - 1, &pt->key, &xk,
				   &xl) < 0) {
			dd_buf_release(&k.joined);
			return 2;
		}
		if (row_key(it, k.row, k.len - 1, &sm->key, &f, &flen) == 0 && flen == xl && !memcmp(f, xk, xl)) {
			pt->match[j][0] = k.at;
			pt->match[j][1] = k.len;
			j++;
			xk = NULL;
		}
	}
	dd_buf_release(&k.joined);
	if (r != 0)
		return r == 2 ? 1 : -1;
	/* every changed row replaces a previous one, and the previous rows left are the unchanged ones */
	if (j != c || k.rows != sg[s].rows || (int64_t)(k.rows - c) != sg[s].now - sg[s].changed)
		return 2;
	return 0;
}

/* Segment s, matched (patch_match): its previous bytes with each changed row in its old version's place. */
static int
patch_write(struct pool *p, struct item *it, struct dd_stream_writer *w, const struct seg *sg, size_t s,
	    const struct patch *pt, size_t x, struct sampler *sm)
{
	uint64_t at = sg[s].off, end = sg[s].off + sg[s].len, start = sm->off;
	const struct rows *rw = pt->cur;
	int r;

	if (s && it->rec && it->nkeys && sm->off > 0) { /* its first row is the sample's, or that row's new version */
		const struct dd_pg_incr_sample *ps = &it->prec->samples[s - 1];
		dd_pg_incr_add_sample(it->rec, sm->off, sm->ord, ps->key, strlen(ps->key));
		sm->last = sm->off;
	}
	for (size_t j = 0; j < (size_t)sg[s].changed; j++) {
		size_t len = rw->at[x + j + 1] - rw->at[x + j];
		if (pt->match[j][0] > at && (r = dd_stream_write_previous(w, at, pt->match[j][0] - at)) != 0)
			return r;
		if (dd_stream_write_replacing(w, rw->buf.ptr + rw->at[x + j], len, pt->match[j][0], pt->match[j][1]) < 0)
			return -1;
		sm->off += (pt->match[j][0] - at) + len;
		at = pt->match[j][0] + pt->match[j][1];
	}
	if (end > at && (r = dd_stream_write_previous(w, at, end - at)) != 0)
		return r;
	sm->off += end - at;
	count_bytes(p, it, (size_t)(sm->off - start));
	sm->ord += (uint64_t)sg[s].now;
	sm->hint = s; /* the next segment starts at the row of sample s */
	it->rows += (uint64_t)sg[s].now;
	return 0;
}

/* Segment s, not patched: from markers (or its range read, when the columns are not understood). */
static int
patch_fallback(PGconn *c, struct pool *p, struct item *it, struct dd_stream_writer *w, const struct seg *sg,
	       size_t s, size_t n, struct sampler *sm, char **why)
{
	char *list = markers_list(it, "true");
	int r;

	it->patch_fallbacks++;
	if (list && !it->counted)
		r = write_marked(c, p, it, w, sg, s, s, n, sm, why);
	else
		r = write_changed(c, p, it, w, sg, s, s, n, sm, why);
	free(list);
	return r;
}

/*
 * The previous bytes of segments [a, b] are walked soon: the cache reads
 * their chunks in now (a hint), while this thread waits for the server or
 * works on the batch before. The scattered 1% snapshot's workers waited
 * for those reads ~17% of their time with the page cache cold.
 */
static void
advise_segments(struct dd_stream_writer *w, const struct seg *sg, size_t a, size_t b)
{
	dd_stream_previous_advise(w, sg[a].off, sg[b].off + sg[b].len - sg[a].off);
}

/*
 * This batch's rows, in pt->cur: read early (for a fallback of the batch
 * before), or its COPY's (sent ahead, or now). 0, 1, -1 (patch_recv).
 */
static int
patch_rows(PGconn *c, const struct item *it, const struct seg *sg, size_t a, size_t b, const struct tids *t,
	   struct patch *pt)
{
	struct rows *was = pt->cur;
	int r;

	if (pt->next_in)
		pt->next_in = 0, r = pt->next_rc;
	else if (!pt->sent && patch_send(c, it, sg, a, b, t, pt) < 0)
		return -1;
	else if ((r = patch_recv(c, it, pt, 1)) < 0)
		return -1;
	pt->cur = pt->next, pt->next = was; /* the rows came into `next` */
	return r;
}

/*
 * Segments [a, b] of one batch: their changed rows fetched (sent already,
 * or read early), each segment patched or merged another way. The next
 * batch's segments (from b + 1 to nb, when b < nb) are read ahead and their
 * rows asked for before this batch is worked on.
 */
static int
patch_batch(PGconn *c, struct pool *p, struct item *it, struct dd_stream_writer *w, const struct seg *sg,
	    size_t a, size_t b, size_t nb, size_t n, const struct tids *t, struct patch *pt, struct sampler *sm,
	    char **why)
{
	size_t x = 0;
	int r;

	if ((r = patch_rows(c, it, sg, a, b, t, pt)) < 0)
		return -1;
	if (b < nb) {
		advise_segments(w, sg, b + 1, nb);
		if (patch_send(c, it, sg, b + 1, nb, t, pt) < 0)
			return -1;
		dd_failpoint("patch-in-flight"); /* tests: interrupted with the next batch's COPY in flight */
	}
	for (size_t s = a; s <= b; s++) {
		int m = r == 1 ? 2 : patch_match(it, w, sg, s, pt, x, sm, why);
		if (m == 1 || m < 0)
			return m;
		if (m == 0) {
			if ((m = patch_write(p, it, w, sg, s, pt, x, sm)) == DD_NOTFOUND)
				return gone(m, why);
			if (m < 0)
				return -1;
			it->patched++;
		} else {
			if (patch_unwind(c, it, pt, 1) < 0) /* the fallback's COPY needs the session */
				return -1;
			if ((m = patch_fallback(c, p, it, w, sg, s, n, sm, why)) != 0)
				return m;
		}
		x += (size_t)sg[s].changed;
	}
	return dd_pg_workers_stopped(&p->w) ? stopped() : 0;
}

/* The last segment of the batch starting at segment a (of [a, j]): at most PATCH_ROWS changed rows, PATCH_BYTES. */
static size_t
batch_end(const struct seg *sg, size_t a, size_t j)
{
	uint64_t rows = (uint64_t)sg[a].changed, bytes = sg[a].len;
	size_t b;

	for (b = a; b < j && rows + (uint64_t)sg[b + 1].changed <= PATCH_ROWS && bytes + sg[b + 1].len <= PATCH_BYTES; b++)
		rows += (uint64_t)sg[b + 1].changed, bytes += sg[b + 1].len;
	return b;
}

/* Segments [i, j], changed, few rows of each, their tids known: patched in batches of PATCH_ROWS changed rows. */
static int
write_patched(PGconn *c, struct pool *p, struct item *it, struct dd_stream_writer *w, const struct seg *sg,
	      size_t i, size_t j, size_t n, const struct tids *t, struct sampler *sm, char **why)
{
	struct patch pt = { .r = { { .buf = DD_BUF_INIT }, { .buf = DD_BUF_INIT } }, .key = DD_BUF_INIT };
	size_t b = batch_end(sg, i, j), nb;
	int r = 0;

	pt.cur = &pt.r[0], pt.next = &pt.r[1];
	advise_segments(w, sg, i, b); /* read in while the server looks for the first batch's rows */
	for (size_t a = i; a <= j && r == 0; a = b + 1, b = nb) {
		nb = b < j ? batch_end(sg, b + 1, j) : b; /* b == nb: no next batch */
		r = patch_batch(c, p, it, w, sg, a, b, nb, n, t, &pt, sm, why);
	}
	/* the session as the next step expects it (another segment, the table read whole, the next table) */
	if (r >= 0 && patch_unwind(c, it, &pt, 0) < 0)
		r = -1;
	for (int k = 0; k < 2; k++) {
		dd_buf_release(&pt.r[k].buf);
		free(pt.r[k].at);
	}
	dd_buf_release(&pt.key);
	free(pt.match);
	return r;
}

/* Forget what a first attempt at the table wrote (its stream aborted): it is read whole now. */
static void
restart_item(struct pool *p, struct item *it)
{
	pthread_mutex_lock(&p->w.lock);
	p->bytes -= it->bytes;
	it->bytes = 0;
	pthread_mutex_unlock(&p->w.lock);
	it->rows = 0;
}

enum { SEG_SAME, SEG_PATCH, SEG_MARKERS, SEG_RANGE };

/*
 * At most 1 row in MARKERS_RATIO changed: a changed segment's rows are
 * merged from markers (write_marked), else read with a range COPY.
 * Measured at bench scale 5 (see docs/DESIGN-NOTES.md, "markers").
 */
#define MARKERS_RATIO 4

/*
 * How each segment is written; the bytes of the previous stream that are
 * carried over (unchanged segments) or merged (from its changed rows, or
 * markers). Markers need a column list markers_list() understands; a
 * patch needs its changed rows' tids (detect).
 */
static uint64_t
plan_segments(const struct item *it, struct seg *sg, size_t n, size_t *same, size_t *marked)
{
	char *list = markers_list(it, "true");
	uint64_t cheap = 0;

	*same = *marked = 0;
	for (size_t i = 0; i < n; i++) {
		if (sg[i].changed == 0 && (uint64_t)sg[i].now == sg[i].rows)
			sg[i].how = SEG_SAME, ++*same;
		else if (sg[i].changed > 0 && sg[i].changed * MARKERS_RATIO <= sg[i].now && (uint64_t)sg[i].now == sg[i].rows &&
			 sg[i].ntid == (uint64_t)sg[i].changed) /* a patch keeps the count: no insert or delete */
			sg[i].how = SEG_PATCH, ++*marked;
		else if (list && !it->counted && sg[i].changed * MARKERS_RATIO <= sg[i].now)
			sg[i].how = SEG_MARKERS, ++*marked; /* (its checks need the segment's count) */
		else
			sg[i].how = SEG_RANGE;
		if (sg[i].how != SEG_RANGE)
			cheap += sg[i].len;
	}
	free(list);
	return cheap;
}

/*
 * The table changed since the previous snapshot: find the segments of its
 * previous stream that did (detect), carry the others over byte for byte
 * (dd_stream_write_previous: the chunks a full write gives), merge those
 * with few changed rows from markers (write_marked), COPY the other
 * changed key ranges. 0 done, 1 read it whole (a -v line says why,
 * nothing written), 2 the table's count was not the rows written
 * (detect_counted: try again with each range counted), -1 failed.
 */
static int
copy_ranges(PGconn *c, struct pool *p, struct item *it)
{
	const struct dd_pg_incr_table *pt = it->prec;
	size_t n = pt->nsamples + 1, same = 0, marked = 0, i, j;
	uint64_t cheap;
	struct seg *sg = dd_calloc(n, sizeof(*sg));
	struct dd_stream_writer *w = NULL;
	struct sampler sm = { 0 };
	struct tids tids = { 0 };
	char *why = NULL;
	int rc = 1, r;

	for (i = 0; i < n; i++) {
		sg[i].off = i ? pt->samples[i - 1].off : 0;
		sg[i].ord = i ? pt->samples[i - 1].ord : 0;
		sg[i].len = (i + 1 < n ? pt->samples[i].off : pt->size) - sg[i].off;
		sg[i].rows = (i + 1 < n ? pt->samples[i].ord : pt->rows) - sg[i].ord;
	}
	if ((r = detect(c, it, sg, n, it->few_changed ? &tids : NULL, &why)) != 0) {
		rc = r;
		goto out;
	}
	cheap = plan_segments(it, sg, n, &same, &marked);
	/*
	 * Measured at bench scale 5 (1% of rows updated at every 100th key,
	 * before markers): splicing a table of which 41% of the bytes were
	 * unchanged and the rest read with range COPYs cost more client CPU
	 * than reading it whole; so at least half must be unchanged or merged.
	 */
	if (cheap == 0 || cheap < pt->size / 2) {
		why = dd_asprintf("only %zu of %zu key ranges unchanged, %zu with few changed rows", same, n, marked);
		goto out;
	}
	rec_reset(it);
	it->rows = 0;
	if (dd_stream_begin(&w, p->sw, it->stream) < 0) {
		rc = -1;
		goto out;
	}
	dd_stream_set_previous(w, it->prev);
	for (i = 0; i < n; i = j + 1) {
		for (j = i; j + 1 < n && sg[j + 1].how == sg[i].how; j++)
			;
		if (sg[i].how == SEG_SAME)
			r = write_unchanged(p, it, w, sg, i, j, &sm);
		else if (sg[i].how == SEG_PATCH)
			r = write_patched(c, p, it, w, sg, i, j, n, &tids, &sm, &why);
		else if (sg[i].how == SEG_MARKERS)
			r = write_marked(c, p, it, w, sg, i, j, n, &sm, &why);
		else
			r = write_changed(c, p, it, w, sg, i, j, n, &sm, &why);
		if (r == DD_NOTFOUND && !why) { /* a chunk gone (write_unchanged); the others say why */
			why = dd_strdup(dd_error_last() ? dd_error_last() : "a chunk of the previous stream is gone");
			dd_error_clear();
		}
		if (r != 0) {
			rc = r;
			goto out;
		}
	}
	if (it->counted && it->rows != it->count) {
		dd_debug("incremental: %s: %" PRIu64 " rows written, the table has %" PRIu64 " (a row deleted, or a key "
			 "moved, that the statistics did not show): each key range counted now", it->table, it->rows,
			 it->count);
		rc = 2;
		goto out;
	}
	rc = end_stream(it, w, &sm);
	w = NULL;
	if (rc == 0) {
		char early[64] = "";
		if (it->patch_early)
			snprintf(early, sizeof(early), " (the next batch read early for them: %zu)", it->patch_early);
		dd_debug("incremental: %s: %zu of %zu key ranges unchanged, %zu merged from markers, %zu read; "
			 "%zu merged from their changed rows alone, %zu could not be%s%s", it->table, same, n, marked,
			 n - same - marked, it->patched, it->patch_fallbacks, early,
			 it->counted ? "; rows counted for the whole table" : "");
	}
out:
	if (w)
		dd_stream_abort(w);
	if (rc == 1)
		dd_debug("incremental: %s read whole: %s", it->table, why ? why : "");
	if (rc >= 1) {
		restart_item(p, it);
		it->counted = 0;
		it->patched = it->patch_fallbacks = it->patch_early = 0;
	}
	dd_buf_release(&sm.key);
	free(tids.v);
	free(why);
	free(sg);
	return rc;
}

static int
copy_one(PGconn *c, struct pool *p, struct item *it)
{
	struct dd_stream_writer *w = NULL;
	struct sampler sm = { 0 };
	int rc = -1, r = 1;

	if (it->prec && (r = copy_ranges(c, p, it)) == 2) { /* once more, counting each key range */
		it->no_deletes = 0;
		r = copy_ranges(c, p, it);
	}
	if (it->prec && r != 1) /* 0 done, -1 failed; 1: read it whole */
		return r < 0 ? dd_error_wrap("dumping %s", it->table) : r;
	rec_reset(it);
	it->rows = 0;
	if (dd_stream_begin(&w, p->sw, it->stream) < 0)
		goto out;
	if (it->prev) /* delta bases (issue 19), on every path */
		dd_stream_set_previous(w, it->prev);
	if (copy_rows(c, p, it, w, it->sql, &sm, &it->rows) < 0)
		goto out;
	rc = end_stream(it, w, &sm);
	w = NULL;
out:
	if (rc < 0)
		dd_error_wrap("dumping %s", it->table ? it->table : "large objects");
	if (w)
		dd_stream_abort(w);
	dd_buf_release(&sm.key);
	return rc;
}

/*
 * Lock the item's table NOWAIT before its COPY. The leader holds it, so
 * this fails only when a conflicting request is queued: waiting would be
 * the deadlock the header describes.
 */
static int
lock_nowait(PGconn *c, struct pool *p, const struct item *it)
{
	char *sql;
	PGresult *r;
	int rc = 0;

	if (!it->table)
		return 0;
	sql = dd_asprintf("LOCK TABLE ONLY %s IN ACCESS SHARE MODE NOWAIT", it->table);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		rc = dd_pg_error(c, r);
		if (!strcmp(dd_pg_sqlstate(r), "55P03")) {
			pthread_mutex_lock(&p->w.lock);
			if (!p->queued_table)
				p->queued_table = dd_strdup(it->table);
			pthread_mutex_unlock(&p->w.lock);
		}
		dd_error_wrap("dumping %s", it->table);
	}
	PQclear(r);
	free(sql);
	return rc;
}

static void
worker(void *arg)
{
	struct pool *p = arg;
	PGconn *c = NULL;

	if (dd_pg_connect(&c, p->conninfo, NULL) < 0 || begin_in_snapshot(c, p->snapshot_id, p->lock_timeout) < 0 ||
	    dd_pg_mask_session(c, p->masks) < 0) {
		dd_pg_workers_fail(&p->w);
		goto out;
	}
	dd_pg_cancel_register(c);
	if (p->hide_notices)
		dd_pg_hide_notices(c);
	for (;;) {
		struct item *it = NULL;
		pthread_mutex_lock(&p->w.lock);
		if (!p->w.failed && p->next < p->nitems)
			it = p->items[p->next++];
		pthread_mutex_unlock(&p->w.lock);
		if (!it || dd_pg_interrupted())
			break;
		set_state(p, it, 1);
		if (lock_nowait(c, p, it) < 0 || copy_one(c, p, it) < 0) {
			dd_pg_workers_fail(&p->w);
			break;
		}
		set_state(p, it, 2);
		if (it->warn_no_pk)
			dd_warn("table %s has no primary key: rows dumped in physical order "
				"(still exact, but an unchanged table may dedupe less after a VACUUM FULL or CLUSTER)",
				it->table);
	}
out:
	if (c) {
		dd_pg_cancel_unregister(c);
		PQfinish(c);
	}
}

/* ---- pg_dump sections in threads ---- */

struct section_job {
	const struct dd_pgdump *pgdump;
	const char *conninfo;
	const char *password;
	const char *snapshot_id;
	const char *section;
	const char *const *exclude;
	size_t nexclude;
	const char *lock_timeout;
	struct dd_buf out;
	int rc;
	struct dd_error_saved error;  /* the thread's error, put back by the leader */
};

static void *
section_thread(void *arg)
{
	struct section_job *j = arg;

	j->rc = dd_pgdump_section(j->pgdump, j->conninfo, j->password, j->snapshot_id, j->section, j->exclude,
				  j->nexclude, j->lock_timeout, &j->out);
	if (j->rc < 0)
		dd_error_save(&j->error);
	return NULL;
}

/* ---- catalog ---- */

static const char catalog_sql[] =
	"SELECT c.oid, format('%I.%I', n.nspname, c.relname), n.nspname, c.relname, c.relkind,"
	" (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a"
	"   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''),"
	" (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)"
	"   FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
	"   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
	"   WHERE i.indrelid = c.oid AND i.indisprimary),"
	" c.relpages::int8 * 8192,"
	" (SELECT string_agg(inhparent::text, ',') FROM pg_inherits WHERE inhrelid = c.oid),"
	" (SELECT d.refobjid FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid"
	"   AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'i' LIMIT 1),"
	/* the key's columns (issue 19's key ranges) in key order, each "<place in the column list> <fixed
	   width: 1 or 0> <bytes> <quoted name> <bytes> <type> <bytes> <quoted collation, or nothing>"
	   (parse_keys); INCLUDE columns
	   are no part of the key (indclass has one entry per key column); none when a key column is generated
	   (not dumped) */
	" (SELECT string_agg(concat_ws(' ', (SELECT count(*) FROM pg_attribute b WHERE b.attrelid = c.oid"
	"   AND b.attnum > 0 AND b.attnum < a.attnum AND NOT b.attisdropped AND b.attgenerated = ''),"
	"   (SELECT (y.typlen > 0)::int FROM pg_type y WHERE y.oid = a.atttypid), octet_length(quote_ident(a.attname)), quote_ident(a.attname), octet_length(t.t), t.t,"
	"   octet_length(t.coll), t.coll), ' ' ORDER BY k.ord)"
	"   FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
	"   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
	"   LEFT JOIN pg_collation co ON co.oid = a.attcollation"
	"   LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace"
	"   CROSS JOIN LATERAL (SELECT format_type(a.atttypid, a.atttypmod), CASE WHEN co.oid IS NOT NULL"
	"    THEN format('%I.%I', cn.nspname, co.collname) ELSE '' END) AS t(t, coll)"
	"   WHERE i.indrelid = c.oid AND i.indisprimary AND k.ord <= array_length(i.indclass::oid[], 1)"
	"   HAVING bool_and(a.attgenerated = ''))"
	" FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	" WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.relpersistence <> 't'"
	"   AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"
	"   AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass"
	"     AND e.objid = c.oid AND e.deptype = 'e')"
	" ORDER BY 2";

static void
rels_free(struct rel *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].qname);
		free(r[i].nspname);
		free(r[i].relname);
		free(r[i].cols);
		free(r[i].pk);
		free(r[i].keys);
		free(r[i].parents);
	}
	free(r);
}

static struct rel *
find_rel(struct rel *rels, size_t n, unsigned oid)
{
	for (size_t i = 0; i < n; i++)
		if (rels[i].oid == oid)
			return &rels[i];
	return NULL;
}

/*
 * Flags inherited from ancestors (partitions of an excluded table are excluded too). Each relation is
 * walked once, so multiple inheritance (a lattice of diamonds) costs its edges, not its paths, which
 * double with every diamond; a cycle (no real catalog has one) is cut where it closes, and so is a chain
 * deeper than DD_PG_MAX_INHERIT_DEPTH.
 */
static void
inherit_flags(struct rel *rels, size_t n, struct rel *r, int depth)
{
	if (r->walked)
		return;
	r->walked = 1;
	for (size_t i = 0; i < r->nparents && depth < DD_PG_MAX_INHERIT_DEPTH; i++) {
		struct rel *parent = find_rel(rels, n, r->parents[i]);
		if (!parent)
			continue;
		inherit_flags(rels, n, parent, depth + 1);
		r->excluded |= parent->excluded;
		r->no_data |= parent->no_data;
	}
}

static int
read_catalog(PGconn *c, const struct dd_pg_snapshot_opts *o, struct rel **out, size_t *nout)
{
	PGresult *res = dd_pg_query(c, catalog_sql, 0, NULL);
	struct rel *rels;
	size_t n;

	if (!res)
		return dd_error_wrap("reading the catalog");
	n = (size_t)PQntuples(res);
	rels = dd_calloc(n + 1, sizeof(*rels));
	for (size_t i = 0; i < n; i++) {
		struct rel *r = &rels[i];
		int row = (int)i;
		r->oid = (unsigned)strtoul(PQgetvalue(res, row, 0), NULL, 10);
		r->qname = dd_strdup(PQgetvalue(res, row, 1));
		r->nspname = dd_strdup(PQgetvalue(res, row, 2));
		r->relname = dd_strdup(PQgetvalue(res, row, 3));
		r->relkind = PQgetvalue(res, row, 4)[0];
		r->cols = PQgetisnull(res, row, 5) ? NULL : dd_strdup(PQgetvalue(res, row, 5));
		r->pk = PQgetisnull(res, row, 6) ? NULL : dd_strdup(PQgetvalue(res, row, 6));
		r->est = strtoll(PQgetvalue(res, row, 7), NULL, 10);
		if (!PQgetisnull(res, row, 8)) {
			char *list = dd_strdup(PQgetvalue(res, row, 8)), *save = NULL;
			for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				r->parents = dd_realloc(r->parents, (r->nparents + 1) * sizeof(unsigned));
				r->parents[r->nparents++] = (unsigned)strtoul(t, NULL, 10);
			}
			free(list);
		}
		r->identity_of = PQgetisnull(res, row, 9) ? 0 : (unsigned)strtoul(PQgetvalue(res, row, 9), NULL, 10);
		r->keys = PQgetisnull(res, row, 10) ? NULL : dd_strdup(PQgetvalue(res, row, 10));
		r->excluded = dd_pg_patterns_match(o->exclude_tables, r->nspname, r->relname);
		r->no_data = dd_pg_patterns_match(o->exclude_data, r->nspname, r->relname);
	}
	PQclear(res);
	for (size_t i = 0; i < n; i++)
		inherit_flags(rels, n, &rels[i], 0);
	for (size_t i = 0; i < n; i++)
		if (rels[i].relkind == 'S' && rels[i].identity_of) {
			struct rel *t = find_rel(rels, n, rels[i].identity_of);
			if (t && t->excluded)
				rels[i].excluded = 1;
		}
	*out = rels;
	*nout = n;
	return 0;
}

static int
cmp_item(const void *a, const void *b)
{
	const struct item *x = *(struct item *const *)a, *y = *(struct item *const *)b;

	if (x->est != y->est)
		return x->est > y->est ? -1 : 1;
	return strcmp(x->stream, y->stream);
}

static void
items_free(struct item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].stream);
		free(items[i].sql);
		free(items[i].table);
		free(items[i].cols);
		for (size_t k = 0; k < items[i].nkeys; k++) {
			free(items[i].keys[k].name);
			free(items[i].keys[k].type);
			free(items[i].keys[k].coll);
		}
		free(items[i].keys);
		free(items[i].kexpr);
		free(items[i].pk);
		free(items[i].qtable);
		free(items[i].guard);
		free(items[i].guard_hint);
	}
	free(items);
}

static int
write_stream(struct dd_snapshot_writer *sw, const char *name, const struct dd_buf *data,
	     const char *const *attrs)
{
	struct dd_stream_writer *w;

	if (dd_stream_begin(&w, sw, name) < 0)
		return -1;
	if (data->len && dd_stream_write(w, data->ptr, data->len) < 0) {
		dd_stream_abort(w);
		return -1;
	}
	for (; attrs && attrs[0]; attrs += 2)
		if (attrs[1])
			dd_stream_set_attr(w, attrs[0], attrs[1]);
	return dd_stream_end(w);
}

static int
read_sequences(PGconn *c, struct rel *rels, size_t n, struct dd_buf *out, size_t *count)
{
	*count = 0;
	for (size_t i = 0; i < n; i++) {
		if (rels[i].relkind != 'S' || rels[i].excluded)
			continue;
		char *sql = dd_asprintf("SELECT last_value, is_called FROM %s", rels[i].qname);
		PGresult *r = dd_pg_query(c, sql, 0, NULL);
		free(sql);
		if (!r)
			return dd_error_wrap("reading sequence %s", rels[i].qname);
		if (PQntuples(r) == 1)
			dd_buf_printf(out, "%s\t%s\t%s\n", rels[i].qname, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
		PQclear(r);
		(*count)++;
	}
	return 0;
}

static const char lo_sql[] =
	"COPY (SELECT m.oid, g.off, lo_get(m.oid, g.off, 1048576)"
	" FROM (SELECT oid, lo_lseek64(lo_open(oid, 262144), 0, 2) AS size"
	"       FROM pg_largeobject_metadata ORDER BY oid) AS m,"
	"  LATERAL generate_series(0::int8, greatest(m.size - 1, 0), 1048576) AS g(off)) TO STDOUT";

static void
show_progress(void *arg, double el)
{
	struct pool *p = arg;
	int64_t total_est = p->total_est, est_done = 0;
	uint64_t bytes;
	size_t done;
	char b[32], rate[32], eta[32] = "";

	pthread_mutex_lock(&p->w.lock);
	bytes = p->bytes;
	done = p->done;
	for (size_t i = 0; i < p->nitems; i++) {
		const struct item *it = p->items[i];
		if (it->state == 2)
			est_done += it->est;
		else if (it->state == 1)
			est_done += (int64_t)it->bytes < it->est ? (int64_t)it->bytes : it->est;
	}
	pthread_mutex_unlock(&p->w.lock);
	dd_format_bytes(b, sizeof(b), (double)bytes);
	dd_format_bytes(rate, sizeof(rate), el > 0 ? bytes / el : 0);
	if (total_est > 0 && est_done > 0 && est_done < total_est) {
		double left = el * (double)(total_est - est_done) / (double)est_done;
		snprintf(eta, sizeof(eta), ", ETA %d:%02d", (int)left / 60, (int)left % 60);
	}
	dd_progress("snapshot: %zu/%zu tables, %s, %s/s%s", done, p->nitems, b, rate, eta);
}

/* ---- the steps of a snapshot, sharing one struct ---- */

struct snap {
	const struct dd_pg_snapshot_opts *o;
	struct dd_pg_snapshot_stats *stats;
	struct dd_snapshot_writer *sw;
	PGconn *c;                        /* the leader session */
	struct dd_pgdump pgdump;
	int lock_timeout_ms;              /* < 0: wait forever */
	char lock_timeout[32];            /* the same as a setting ("30000ms", "0" = forever) */
	char child_lock_timeout[32];      /* pg_dump's --lock-wait-timeout: short (see the top) */
	char *snapshot_id;
	char *enc, *collate, *ctype, *provider, *icu;
	struct rel *rels;
	size_t nrels;
	char **exclude;                   /* excluded tables as pg_dump patterns */
	size_t nexclude;
	char *child_conninfo, *child_password;
	pthread_t sect_threads[2];
	struct section_job sect[2];       /* pre-data, post-data */
	int sect_started[2];
	struct dd_buf seqs;
	size_t nseq;
	struct dd_pg_masks *masks;        /* issue 21: the resolved masking rules, or NULL */
	struct item *items;
	size_t nitems;
	struct pool pool;
	/* incremental snapshots (pg/incr.h): this snapshot's record, the previous one's */
	struct dd_pg_incr incr_now, incr_prev, incr_cmp;
	int have_now, have_prev;
	char *incr_why;                   /* why no table may be carried over, or NULL */
	char *range_why;                  /* why changed tables are read whole, or NULL */
	uint64_t xid_lo, xid_span;        /* ranges: rows changed since the previous snapshot (see item) */
	uint64_t xmax;                    /* the exported snapshot's xmax (xid8), 0 unknown */
	struct dd_pg_subset_plan *subset; /* issue 21: each table's WHERE, or NULL (every row) */
};

/* DNADATA_LOCK_WAIT_TIMEOUT ("500", "500ms", "30s", "2min"; 0 = forever) over the option. */
static int
resolve_lock_timeout(struct snap *s)
{
	const char *env = getenv("DNADATA_LOCK_WAIT_TIMEOUT");
	long ms = s->o->lock_wait_timeout_ms ? s->o->lock_wait_timeout_ms : DD_PG_LOCK_WAIT_TIMEOUT_MS;

	if (env && *env) {
		char *end;
		long v = strtol(env, &end, 10);
		long unit = !strcmp(end, "") || !strcmp(end, "ms") ? 1 : !strcmp(end, "s") ? 1000
							   : !strcmp(end, "min")		 ? 60000
											 : 0;
		if (end == env || v < 0 || unit == 0 || v > 86400000L / unit) {
			dd_error("DNADATA_LOCK_WAIT_TIMEOUT=%s is not a duration", env);
			dd_hint("set it to milliseconds (30000), or with a unit: 30s, 2min; 0 waits forever");
			return -1;
		}
		ms = v ? v * unit : -1;
	}
	s->lock_timeout_ms = ms < 0 ? -1 : (int)ms;
	snprintf(s->lock_timeout, sizeof(s->lock_timeout), "%ldms", ms < 0 ? 0 : ms);
	snprintf(s->child_lock_timeout, sizeof(s->child_lock_timeout), "%ldms",
		 ms < 0 || ms > CHILD_LOCK_WAIT_MS ? CHILD_LOCK_WAIT_MS : ms);
	return 0;
}

/*
 * Step 1b (issue 19): the tables' fingerprints for this snapshot's record,
 * before the export like the change fingerprint (pg/incr.h: they may only
 * be behind what the snapshot holds).
 */
static int
take_incr(struct snap *s)
{
	const struct dd_pg_snapshot_opts *o = s->o;
	int busy = 0, r;

	if (!o->statedir || !o->profile)
		return 0;
	if ((r = dd_pg_incr_take(s->c, o->profile, 0, &s->incr_now, &busy, &s->incr_why)) < 0)
		return -1;
	s->have_now = r == 1;
	if (s->have_now) {
		dd_pg_incr_options(o->exclude_tables, o->exclude_data, o->rules_hash, s->incr_now.options);
		s->incr_now.pgdump = (uint64_t)s->pgdump.version;
	}
	return 0;
}

/*
 * May changed tables' key ranges be found by xmin (copy_ranges)? Not the
 * counters: the same server (system identifier: xids are its own), not
 * restarted since (a rewound data directory hands out xids again), the
 * same database, output, options and pg_dump, and fewer than 2^30 xids
 * since the previous snapshot (xmin is compared modulo 2^32). NULL yes,
 * else why not. Sets s->xid_lo and s->xid_span.
 */
static char *
ranges_why(struct snap *s)
{
	const struct dd_pg_incr *a = &s->incr_prev, *b = &s->incr_cmp;
	uint64_t xmax = s->xmax;

	if (!xmax)
		return dd_strdup("the snapshot's xids are unknown");
	if (!a->sysid || a->sysid != b->sysid)
		return dd_strdup(a->sysid ? "another server" : "the server's system identifier is not readable");
	/* a data directory rewound (a volume snapshot, PITR) hands out xids again: it needs a restart */
	if (a->start != b->start)
		return dd_strdup("the server restarted since (its data directory may have been rewound)");
	/* a crash restart keeps the start time but drops the statistics, moving the shared reset time; commits
	   not yet flushed (synchronous_commit = off) are lost then, and their xids handed out again */
	if (a->reset != b->reset)
		return dd_strdup("the statistics were reset since (a crash restart may have handed out xids again)");
	if (a->dboid != b->dboid)
		return dd_strdup("another database");
	if (strcmp(a->output, b->output) || strcmp(a->options, b->options) || a->pgdump != b->pgdump)
		return dd_strdup("the output, options or pg_dump changed");
	if ((a->xmin & 0xffffffffu) < 3)
		return dd_strdup("the previous snapshot's xmin is a special xid");
	if (!a->xmin || a->xmin > xmax || xmax - a->xmin >= (UINT64_C(1) << 30))
		return dd_asprintf("%" PRIu64 " transactions since the previous snapshot (xids compared modulo 2^32)",
				   xmax - a->xmin);
	s->xid_lo = a->xmin & 0xffffffffu;
	s->xid_span = xmax - a->xmin;
	return NULL;
}

/*
 * Step 2b (issue 19), right after the export: may tables be carried over
 * from the previous snapshot? The sessions listed, then the counters read
 * again (into s->incr_cmp, compared with s->incr_prev per table);
 * s->incr_why says why none may be, with a -v line.
 */
static int
compare_incr(struct snap *s)
{
	const struct dd_pg_snapshot_opts *o = s->o;
	int busy = 0, r, pr;
	char *why = NULL;
	PGresult *res;

	/* the record's xmin: rows with an older one were all visible to this snapshot */
	if (s->have_now) {
		if (!(res = dd_pg_query(s->c, "SELECT pg_snapshot_xmin(x)::text, pg_snapshot_xmax(x)::text"
					      " FROM pg_current_snapshot() x", 0, NULL)))
			return -1;
		s->incr_now.xmin = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		s->xmax = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
		PQclear(res);
	}
	if (!s->incr_why && !s->have_now)
		s->incr_why = dd_strdup("no statistics were read");
	if (s->incr_why) {
		;
	} else if (o->full) {
		s->incr_why = dd_strdup("--full");
	} else if (o->subset) {
		s->incr_why = dd_strdup("a subset is taken: a table's rows depend on other tables' rows");
	} else if (!o->prev || !o->prev_id) {
		s->incr_why = dd_strdup("no previous snapshot");
	} else if ((pr = dd_pg_incr_read(&s->incr_prev, o->statedir, o->prev_id)) == DD_NOTFOUND) {
		s->incr_why = dd_asprintf("no local record of snapshot %.12s (taken elsewhere, or pruned)", o->prev_id);
	} else if (pr < 0) {
		s->incr_why = dd_strdup(dd_error_last());
		dd_error_clear();
	} else if ((r = dd_pg_incr_take(s->c, o->profile, 1, &s->incr_cmp, &busy, &why)) < 0) {
		return -1;
	} else if (r == 0) {
		s->incr_why = why, why = NULL;
	} else {
		s->have_prev = 1;
		s->incr_cmp.sysid = s->incr_now.sysid;
		memcpy(s->incr_cmp.options, s->incr_now.options, sizeof(s->incr_cmp.options));
		s->incr_cmp.pgdump = s->incr_now.pgdump;
		if (!dd_pg_incr_comparable(&s->incr_prev, &s->incr_cmp, &s->incr_why) && busy == 0)
			;
		else if (!s->incr_why && busy)
			s->incr_why = dd_asprintf("%d other session%s connected: %s changes may not be counted yet",
						  busy, busy == 1 ? " is" : "s are", busy == 1 ? "its" : "their");
		s->range_why = ranges_why(s);
	}
	free(why);
	if (!s->have_prev && !s->range_why) /* the previous record was not compared at all */
		s->range_why = dd_strdup(s->incr_why ? s->incr_why : "no previous record");
	if (s->incr_why && s->range_why)
		dd_debug("incremental: every table read: %s", s->incr_why);
	else if (s->incr_why)
		dd_debug("incremental: no table carried over whole: %s; changed tables' key ranges are found",
			 s->incr_why);
	else if (s->range_why)
		dd_debug("incremental: changed tables read whole: %s", s->range_why);
	return 0;
}

/* Step 1: connect the leader, check the server, find pg_dump, take the change fingerprint. */
static int
connect_leader(struct snap *s)
{
	struct dd_pg_snapshot_stats *stats = s->stats;
	const char *version;

	if (dd_pg_connect(&s->c, s->o->conninfo, NULL) < 0)
		return -1;
	dd_pg_cancel_register(s->c);
	if (s->o->nmasks || s->o->subset) /* issue 21: a function in a rule may RAISE NOTICE with a value */
		dd_pg_hide_notices(s->c);
	version = PQparameterStatus(s->c, "server_version");
	snprintf(stats->database, sizeof(stats->database), "%s", PQdb(s->c));
	snprintf(stats->server_version, sizeof(stats->server_version), "%s", version ? version : "");
	if (PQserverVersion(s->c) < 100000)
		return dd_error("PostgreSQL %s is too old (git-dnadata needs 10 or newer)", stats->server_version);
	if (dd_pgdump_find(&s->pgdump, dd_pg_server_major(s->c)) < 0)
		return -1;
	/*
	 * The change fingerprint (change.c) comes before the snapshot: whatever
	 * is counted after it can only make the database look changed.
	 */
	if (dd_pg_fingerprint_here(s->c, &stats->fingerprint) < 0) {
		dd_debug("no change fingerprint: %s", dd_error_last());
		dd_error_clear();
	}
	return take_incr(s);
}

/* Step 2: the exported-snapshot transaction, the database's locale, the catalog. */
static int
begin_snapshot(struct snap *s)
{
	PGresult *res;
	char *sql = dd_asprintf("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET row_security = off;"
				"SET LOCAL lock_timeout = '%s'", s->lock_timeout);
	int rc = dd_pg_exec(s->c, sql);

	free(sql);
	if (rc < 0)
		return -1;
	if (!(res = dd_pg_query(s->c, "SELECT pg_export_snapshot()", 0, NULL)))
		return -1;
	s->snapshot_id = dd_strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (s->o->statedir && s->o->profile && compare_incr(s) < 0)
		return -1;
	res = dd_pg_query(s->c,
			  PQserverVersion(s->c) >= 150000
				  ? "SELECT pg_encoding_to_char(encoding), datcollate, datctype, datlocprovider,"
				    " daticulocale FROM pg_database WHERE datname = current_database()"
				  : "SELECT pg_encoding_to_char(encoding), datcollate, datctype, 'c', NULL"
				    " FROM pg_database WHERE datname = current_database()",
			  0, NULL);
	if (!res)
		return -1;
	s->enc = dd_strdup(PQgetvalue(res, 0, 0));
	s->collate = dd_strdup(PQgetvalue(res, 0, 1));
	s->ctype = dd_strdup(PQgetvalue(res, 0, 2));
	s->provider = dd_strdup(PQgetvalue(res, 0, 3));
	s->icu = PQgetisnull(res, 0, 4) ? NULL : dd_strdup(PQgetvalue(res, 0, 4));
	PQclear(res);
	return read_catalog(s->c, s->o, &s->rels, &s->nrels);
}

/* ---- waiting for the table locks ---- */

struct blocker {
	char *table, *pid, *app, *user;
};

static void
blocker_release(struct blocker *b)
{
	free(b->table);
	free(b->pid);
	free(b->app);
	free(b->user);
	memset(b, 0, sizeof(*b));
}

/*
 * From a second session: the first row (table, pid, application, user) of
 * `sql`, with $1 the leader's pid and $2 `table` (unless NULL).
 */
static int
query_blocker(const char *conninfo, const char *sql, int leader_pid, const char *table, struct blocker *b)
{
	char pid[16];
	const char *params[] = { pid, table };
	PGconn *m = NULL;
	PGresult *res = NULL;
	int rc = -1;

	snprintf(pid, sizeof(pid), "%d", leader_pid);
	if (dd_pg_connect(&m, conninfo, NULL) < 0)
		goto out;
	if (!(res = dd_pg_query(m, sql, table ? 2 : 1, params)))
		goto out;
	if (PQntuples(res) == 1) {
		blocker_release(b);
		b->table = dd_strdup(PQgetvalue(res, 0, 0));
		b->pid = dd_strdup(PQgetvalue(res, 0, 1));
		b->app = dd_strdup(PQgetvalue(res, 0, 2));
		b->user = dd_strdup(PQgetvalue(res, 0, 3));
	}
	rc = 0;
out:
	PQclear(res);
	if (m)
		PQfinish(m);
	return rc;
}

/* Which table is the leader waiting for, and which session holds it? */
static int
find_blocker(const char *conninfo, int leader_pid, struct blocker *b)
{
	static const char sql[] =
		"SELECT format('%I.%I', n.nspname, c.relname), b.pid,"
		" coalesce(nullif(a.application_name, ''), 'unnamed'), coalesce(a.usename, '?')"
		" FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
		" JOIN pg_namespace n ON n.oid = c.relnamespace"
		" CROSS JOIN LATERAL unnest(pg_blocking_pids($1::int)) AS b(pid)"
		" LEFT JOIN pg_stat_activity a ON a.pid = b.pid"
		" WHERE l.pid = $1::int AND NOT l.granted AND l.locktype = 'relation'"
		" ORDER BY b.pid LIMIT 1";

	return query_blocker(conninfo, sql, leader_pid, NULL, b);
}

/* Which session waits for a lock the leader holds (on `table` first, when given)? */
static int
find_waiter(const char *conninfo, int leader_pid, const char *table, struct blocker *b)
{
	static const char sql[] =
		"SELECT format('%I.%I', n.nspname, c.relname), l.pid,"
		" coalesce(nullif(a.application_name, ''), 'unnamed'), coalesce(a.usename, '?')"
		" FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
		" JOIN pg_namespace n ON n.oid = c.relnamespace"
		" LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
		" WHERE NOT l.granted AND l.locktype = 'relation' AND $1::int = ANY (pg_blocking_pids(l.pid))"
		" ORDER BY format('%I.%I', n.nspname, c.relname) = $2 DESC, l.pid LIMIT 1";

	return query_blocker(conninfo, sql, leader_pid, table ? table : "", b);
}

/*
 * Run the LOCK TABLE statement; after a second (or half the timeout) of
 * waiting, say which session holds up which table.
 */
static PGresult *
lock_and_watch(struct snap *s, const char *sql, struct blocker *b)
{
	int report_ms = s->lock_timeout_ms < 0 || s->lock_timeout_ms > 2000 ? 1000 : s->lock_timeout_ms / 2;
	double start = dd_pg_seconds();
	int reported = 0;
	PGresult *res, *last = NULL;

	if (!PQsendQuery(s->c, sql)) {
		dd_pg_error(s->c, NULL);
		return NULL;
	}
	while (PQisBusy(s->c)) {
		struct pollfd pf = { .fd = PQsocket(s->c), .events = POLLIN };
		if (poll(&pf, 1, 100) < 0 && errno != EINTR)
			break;
		if (!PQconsumeInput(s->c))
			break;
		if (reported || (dd_pg_seconds() - start) * 1000 < report_ms || dd_pg_interrupted())
			continue;
		reported = 1;
		if (find_blocker(s->o->conninfo, PQbackendPID(s->c), b) < 0) {
			dd_debug("cannot tell who holds the lock: %s", dd_error_last());
			dd_error_clear();
		} else if (b->table) {
			dd_info("waiting for table %s: locked by session pid %s (application %s, user %s)%s%s", b->table,
				b->pid, b->app, b->user, s->lock_timeout_ms < 0 ? "" : "; giving up after ",
				s->lock_timeout_ms < 0 ? "" : s->lock_timeout);
		}
	}
	while ((res = PQgetResult(s->c))) {
		PQclear(last);
		last = res;
	}
	return last;
}

/* Step 3: lock what we dump, like pg_dump: no TRUNCATE or DDL until we are done. */
static int
lock_tables(struct snap *s)
{
	struct dd_buf lock = DD_BUF_INIT;
	struct blocker b = { 0 };
	PGresult *res = NULL;
	int rc = -1;

	s->exclude = dd_calloc(s->nrels + 1, sizeof(char *));
	for (size_t i = 0; i < s->nrels; i++) {
		struct rel *r = &s->rels[i];
		if (r->excluded) {
			char *ns = dd_pg_quote_ident(r->nspname), *t = dd_pg_quote_ident(r->relname);
			s->exclude[s->nexclude++] = dd_asprintf("%s.%s", ns, t);
			free(ns);
			free(t);
		} else if (r->relkind == 'r' || r->relkind == 'p') {
			dd_buf_puts(&lock, lock.len ? ", " : "LOCK TABLE ");
			dd_buf_puts(&lock, r->qname);
		}
	}
	if (!lock.len)
		return 0;
	dd_buf_puts(&lock, " IN ACCESS SHARE MODE");
	res = lock_and_watch(s, lock.ptr, &b);
	if (res && PQresultStatus(res) == PGRES_COMMAND_OK) {
		rc = 0;
	} else if (dd_pg_interrupted()) {
		dd_error("interrupted");
	} else if (!strcmp(dd_pg_sqlstate(res), "55P03")) {
		if (b.table)
			dd_error("table %s is locked by another session (pid %s, application %s, user %s): gave up "
				 "waiting after %s", b.table, b.pid, b.app, b.user, s->lock_timeout);
		else
			dd_error("a table to dump is locked by another session: gave up waiting after %s",
				 s->lock_timeout);
		dd_hint("end that session's transaction (or SELECT pg_terminate_backend(%s)), then snapshot again; "
			"or raise lock_wait_timeout", b.pid ? b.pid : "pid");
	} else {
		dd_pg_error(s->c, res);
		dd_error_wrap("locking the tables to dump");
		if (!strcmp(dd_pg_sqlstate(res), "42501"))
			dd_hint("grant this user SELECT on every table, or leave tables out with exclude_tables");
	}
	PQclear(res);
	blocker_release(&b);
	dd_buf_release(&lock);
	return rc;
}

/* Step 4: the schema, from pg_dump in the same snapshot, in threads beside the rows. */
static int
start_schema_dump(struct snap *s)
{
	static const char *const sections[2] = { "pre-data", "post-data" };

	s->child_conninfo = dd_conninfo_of_connection(s->c, &s->child_password);
	for (int i = 0; i < 2; i++) {
		struct section_job *j = &s->sect[i];
		j->pgdump = &s->pgdump;
		j->conninfo = s->child_conninfo;
		j->password = s->child_password;
		j->snapshot_id = s->snapshot_id;
		j->section = sections[i];
		j->exclude = (const char *const *)s->exclude;
		j->nexclude = s->nexclude;
		j->lock_timeout = s->child_lock_timeout;
		if (pthread_create(&s->sect_threads[i], NULL, section_thread, j) != 0)
			return dd_error("cannot start a thread");
		s->sect_started[i] = 1;
	}
	return 0;
}

static void
join_schema_dump(struct snap *s)
{
	for (int i = 0; i < 2; i++)
		if (s->sect_started[i]) {
			pthread_join(s->sect_threads[i], NULL);
			s->sect_started[i] = 0;
		}
}

/* A number of at most 9 digits and the space after it: its value, *s past both; -1 if none. */
static long
take_number(const char **s)
{
	long v = 0;
	int d = 0;

	for (; **s >= '0' && **s <= '9' && d < 9; (*s)++, d++)
		v = v * 10 + (**s - '0');
	if (!d || **s != ' ')
		return -1;
	(*s)++;
	return v;
}

/* "<n> <n bytes>": the bytes (allocated), *s past them; NULL when fewer are left or n is out of [min, ...]. */
static char *
take_counted(const char **s, long min)
{
	long n = take_number(s);
	char *out;

	if (n < min || strnlen(*s, (size_t)n) < (size_t)n)
		return NULL;
	out = dd_strndup(*s, (size_t)n);
	*s += n;
	return out;
}

/*
 * An item's key columns from the catalog's text (catalog_sql): each
 * "<place> <0|1> <n> <name> <n> <type> <n> <collation>", separated by spaces.
 * 0, or -1 (not understood: no key ranges for the table, nkeys 0).
 */
static int
parse_keys(struct item *it, const char *text)
{
	const char *s = text;
	struct dd_buf expr = DD_BUF_INIT;

	while (*s) {
		struct keycol *kc;
		long pos = take_number(&s), fixed = take_number(&s);
		if (pos < 0 || fixed < 0 || fixed > 1 || it->nkeys == MAX_KEYS)
			goto bad;
		for (size_t k = 0; k < it->nkeys; k++)
			if (it->keys[k].pos == pos)
				goto bad;
		it->keys = dd_realloc(it->keys, (it->nkeys + 1) * sizeof(*it->keys));
		kc = &it->keys[it->nkeys++];
		memset(kc, 0, sizeof(*kc));
		kc->pos = (int)pos;
		kc->fixed = (int)fixed;
		if (!(kc->name = take_counted(&s, 1)) || *s++ != ' ' || !(kc->type = take_counted(&s, 1)) ||
		    *s++ != ' ' || !(kc->coll = take_counted(&s, 0)) || (*s && (*s++ != ' ' || !*s)))
			goto bad;
		if (*kc->coll) {
			char *coll = dd_asprintf(" COLLATE %s", kc->coll);
			free(kc->coll);
			kc->coll = coll;
		}
		dd_buf_printf(&expr, "%s%s", it->nkeys > 1 ? ", " : "", kc->name);
	}
	if (!it->nkeys)
		goto bad;
	if (it->nkeys == 1) {
		it->kexpr = dd_buf_detach(&expr, NULL);
	} else {
		it->kexpr = dd_asprintf("(%s)", dd_buf_cstr(&expr));
		dd_buf_release(&expr);
	}
	return 0;
bad:
	for (size_t k = 0; k < it->nkeys; k++) {
		free(it->keys[k].name);
		free(it->keys[k].type);
		free(it->keys[k].coll);
	}
	free(it->keys);
	it->keys = NULL;
	it->nkeys = 0;
	dd_buf_release(&expr);
	return -1;
}

/*
 * Step 4b (issue 21): the masking rules resolved in the snapshot, the
 * masked tables' select lists, the constraints checked over the masked
 * rows; all before any COPY, while pg_dump writes the schema.
 */
static int
mask_tables(struct snap *s)
{
	struct dd_pg_mask_table *t;
	int rc;

	if (!s->o->nmasks)
		return 0;
	t = dd_calloc(s->nrels + 1, sizeof(*t));
	for (size_t i = 0; i < s->nrels; i++) {
		const struct rel *r = &s->rels[i];
		t[i] = (struct dd_pg_mask_table){ r->oid, r->nspname, r->relname, r->qname, r->relkind,
						  r->excluded || r->no_data, r->parents, r->nparents };
	}
	rc = dd_pg_mask_resolve(s->c, s->o, t, s->nrels, &s->masks);
	free(t);
	if (rc == 0 && s->masks)
		rc = dd_pg_mask_check(s->c, s->masks);
	return rc;
}

/*
 * The hash of the item's COPY: its previous stream may be carried over,
 * or its key ranges read alone, only when the record's is the same (a
 * masking rule that applies to it now, through a partition attached
 * under a masked table, changes it while the rules' hash stays).
 */
static void
query_hash(struct item *it)
{
	uint8_t d[DD_SHA256_BYTES];

	dd_sha256(d, it->sql, strlen(it->sql));
	dd_hex_encode(it->query, d, sizeof(d));
}

/*
 * A masked or subsetted table: what may be at fault when its COPY fails
 * (the server's message is left out, copy_error), and how to find out.
 */
static void
guard(const struct snap *s, struct item *it, unsigned oid, int subset)
{
	char *lines = dd_pg_mask_lines_of(s->masks, oid), *by_hand = NULL;
	size_t line = subset ? s->o->subset->line : 0;

	if (lines)
		by_hand = dd_asprintf("SELECT <expression> FROM %s", it->table);
	if (lines && subset)
		it->guard = dd_asprintf("a masked column's expression (%s) or the subset condition (profiles.ini:%zu) "
					"failed while reading %s", lines, line, it->table);
	else if (lines)
		it->guard = dd_asprintf("a masked column's expression failed on a row of %s (rules at %s)", it->table,
					lines);
	else if (subset)
		it->guard = dd_asprintf("the subset condition (profiles.ini:%zu) failed while reading %s", line, it->table);
	if (it->guard)
		it->guard_hint = dd_asprintf("run %s%s%s by hand in psql to see the server's message; nothing was "
					     "captured", by_hand ? by_hand : "", by_hand && subset ? " and " : "",
					     subset ? "SELECT count(*) FROM <start table> WHERE <condition>" : "");
	free(lines);
	free(by_hand);
}

/* Step 5a: the COPY queue, largest table first, and large objects. */
static int
queue_table_data(struct snap *s)
{
	PGresult *res;
	long nlo;

	s->items = dd_calloc(s->nrels + 1, sizeof(*s->items));
	for (size_t i = 0; i < s->nrels; i++) {
		struct rel *r = &s->rels[i];
		if (r->relkind != 'r' || r->excluded || r->no_data)
			continue;
		struct item *it = &s->items[s->nitems++];
		const char *cols = r->cols ? r->cols : "";
		it->stream = dd_asprintf("data/%s", r->qname);
		it->table = dd_strdup(r->qname);
		it->cols = dd_strdup(cols);
		it->sel = it->cols;
		it->est = r->est;
		char *where = s->subset ? dd_pg_subset_where(s->subset, r->oid) : NULL; /* issue 21: a subset */
		int masked = dd_pg_mask_table_of(s->masks, r->oid, &it->sel, &it->mexprs, &it->key_masked,
						 &it->mask_depends);
		if (r->pk || where) /* a subset without a key: ctid, the order of a plain COPY */
			it->sql = dd_asprintf("COPY (SELECT %s FROM ONLY %s%s ORDER BY %s) TO STDOUT", it->sel, r->qname,
					      where ? where : "", r->pk ? r->pk : "ctid");
		else if (masked)
			it->sql = dd_asprintf("COPY (SELECT %s FROM ONLY %s) TO STDOUT", it->sel, r->qname);
		else if (*cols)
			it->sql = dd_asprintf("COPY %s (%s) TO STDOUT", r->qname, cols);
		else
			it->sql = dd_asprintf("COPY %s TO STDOUT", r->qname);
		guard(s, it, r->oid, where != NULL);
		free(where);
		query_hash(it);
		it->warn_no_pk = r->pk == NULL;
		it->prev = s->o->prev ? dd_snapshot_find(s->o->prev, it->stream) : NULL;
		/*
		 * Its COPY text last time, when known: a better guess of this one
		 * than the heap's size (TOAST left out: a table of bytea came
		 * last, alone, in the scattered snapshot), for the order of the
		 * queue (largest first) and the ETA (which counts COPY bytes).
		 */
		if (it->prev && dd_stream_size(it->prev) > 0)
			it->est = (int64_t)dd_stream_size(it->prev);
		if (r->keys && r->pk && parse_keys(it, r->keys) < 0)
			dd_debug("incremental: %s: key columns not understood: %s", r->qname, r->keys);
		if (it->nkeys) {
			it->pk = dd_strdup(r->pk);
			it->qtable = dd_strdup(r->qname);
		}
		it->rec = s->have_now ? (struct dd_pg_incr_table *)dd_pg_incr_find(&s->incr_now, it->stream) : NULL;
		if (it->rec)
			memcpy(it->rec->query, it->query, sizeof(it->query));
		s->pool.total_est += it->est;
	}
	s->stats->tables = s->nitems;
	if (!(res = dd_pg_query(s->c, "SELECT count(*) FROM pg_largeobject_metadata", 0, NULL)))
		return -1;
	nlo = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (nlo > 0) {
		struct item *it = &s->items[s->nitems++];
		it->stream = dd_strdup("largeobjects");
		it->sql = dd_strdup(lo_sql);
		it->prev = s->o->prev ? dd_snapshot_find(s->o->prev, it->stream) : NULL; /* delta bases */
	}
	return 0;
}

/*
 * Step 3b (issue 21): with a subset, which rows of each table it keeps
 * (pg/subset.c), planned on the leader in the snapshot, before pg_dump
 * starts: a bad subset key fails the snapshot first.
 */
static int
plan_subset(struct snap *s)
{
	struct dd_pg_subset_table *t;
	size_t n = 0;
	int rc;

	if (!s->o->subset)
		return 0;
	t = dd_calloc(s->nrels + 1, sizeof(*t));
	for (size_t i = 0; i < s->nrels; i++) {
		const struct rel *r = &s->rels[i], *parent;
		if (r->relkind != 'r' && r->relkind != 'p')
			continue;
		parent = r->nparents == 1 ? find_rel(s->rels, s->nrels, r->parents[0]) : NULL;
		t[n] = (struct dd_pg_subset_table){ r->oid, r->qname, r->nspname, r->relname, r->relkind, r->pk,
						    parent && parent->relkind == 'p' ? parent->oid : 0,
						    !r->excluded && !r->no_data };
		n++;
	}
	rc = dd_pg_subset_plan(&s->subset, s->c, s->o->subset, t, n);
	free(t);
	if (rc == 0)
		dd_failpoint("subset-planned"); /* tests: writers change rows the subset reads (t-subset.sh) */
	return rc;
}

/* Is item `it`'s table unchanged since the previous snapshot (its fingerprints equal)? */
static int
table_unchanged(const struct snap *s, const struct item *it)
{
	const struct dd_pg_incr_table *a, *b, *c;

	if (!s->have_prev || s->incr_why || !it->table || !it->prev || it->mask_depends)
		return 0;
	a = dd_pg_incr_find(&s->incr_prev, it->stream);
	b = dd_pg_incr_find(&s->incr_cmp, it->stream);
	c = dd_pg_incr_find(&s->incr_now, it->stream);
	return a && b && c && dd_pg_incr_table_same(a, b) && dd_pg_incr_table_same(a, c) &&
	       !strcmp(a->query, it->query); /* "" (an older record) tells nothing */
}

/* Why a table an sql: masking rule applies to is read whole (-v). */
#define MASK_DEPENDS "an sql: masking rule applies to it (its values may depend on functions or other tables)"

/*
 * A changed table: may its changed key ranges be read alone (copy_ranges)?
 * NULL yes (it->prec set), else why not (static text).
 */
static const char *
plan_ranges(const struct snap *s, struct item *it)
{
	const struct dd_pg_incr_table *a, *b, *c;
	const char *rows;

	if (s->range_why)
		return s->range_why;
	if (!it->prev)
		return "not in the previous snapshot";
	if (it->key_masked)
		return "its primary key is masked (key ranges compare the keys the COPY writes with the table's)";
	if (it->mask_depends)
		return MASK_DEPENDS;
	if (!it->nkeys)
		return "no primary key (or a generated column in it)";
	a = dd_pg_incr_find(&s->incr_prev, it->stream);
	b = dd_pg_incr_find(&s->incr_cmp, it->stream);
	c = dd_pg_incr_find(&s->incr_now, it->stream);
	if (!a || !b || !c)
		return "not in the records";
	if (a->oid != b->oid || strcmp(a->shape, b->shape) || strcmp(a->shape, c->shape))
		return "its columns, key or parents changed";
	if (strcmp(a->query, it->query))
		return "its COPY changed (a masking rule applies to it now or no more), or the record does not say";
	if (!a->nsamples)
		return "too small for key ranges";
	for (size_t k = 0; k < a->nsamples; k++) {
		size_t fields = 1;
		for (const char *t = a->samples[k].key; (t = strchr(t, '\t')); t++)
			fields++;
		if (fields != it->nkeys)
			return "the record's sample keys do not match the primary key";
	}
	rows = dd_stream_attr(it->prev, "rows");
	if (a->size != dd_stream_size(it->prev) || !rows || strtoull(rows, NULL, 10) != a->rows)
		return "the record does not match the previous stream";
	it->prec = a;
	it->xid_lo = s->xid_lo;
	it->xid_span = s->xid_span;
	/*
	 * Few rows changed by the statistics counters (a hint only: they may
	 * lag or count rolled-back work; the detection's counts decide): the
	 * detection also collects the changed rows' tids (write_patched). With
	 * many, it would make a group per row for nothing.
	 */
	if (!s->incr_now.standby && c->ins >= a->ins && c->upd >= a->upd && c->del >= a->del)
		it->few_changed = ((c->ins - a->ins) + (c->upd - a->upd) + (c->del - a->del)) * MARKERS_RATIO <= a->rows;
	it->no_deletes = it->few_changed && c->del == a->del;
	return NULL;
}

/* A reused table's record: the previous one's rows, size and samples (the same stream). */
static void
carry_record(const struct snap *s, struct item *it)
{
	const struct dd_pg_incr_table *a = dd_pg_incr_find(&s->incr_prev, it->stream);

	if (!it->rec || !a)
		return;
	it->rec->rows = a->rows;
	it->rec->size = a->size;
	for (size_t i = 0; i < a->nsamples; i++)
		dd_pg_incr_add_sample(it->rec, a->samples[i].off, a->samples[i].ord, a->samples[i].key,
				      strlen(a->samples[i].key));
}

/*
 * Step 5a' (issue 19): carry each unchanged table's stream over from the
 * previous snapshot (no COPY). A chunk gone from the store reads it instead.
 */
static int
reuse_tables(struct snap *s)
{
	size_t reused = 0, copied = 0;

	for (size_t i = 0; i < s->nitems; i++) {
		struct item *it = &s->items[i];
		const char *rows;
		int r;
		if (!table_unchanged(s, it)) {
			const char *whole = it->table ? plan_ranges(s, it) : NULL;
			if (!s->incr_why && it->table)
				dd_debug("incremental: %s read: %s", it->table,
					 !it->prev	    ? "not in the previous snapshot"
					 : it->mask_depends ? MASK_DEPENDS
							    : "changed since the previous snapshot");
			if (whole && whole != s->range_why && it->table)
				dd_debug("incremental: %s read whole: %s", it->table, whole);
			copied += it->table != NULL;
			continue;
		}
		if ((r = dd_snapshot_reuse_stream(s->sw, it->prev)) == DD_NOTFOUND) {
			dd_debug("incremental: %s read: %s", it->table, dd_error_last());
			dd_error_clear();
			copied++;
			continue;
		}
		if (r < 0)
			return dd_error_wrap("carrying %s over from snapshot %.12s", it->table, s->o->prev_id);
		rows = dd_stream_attr(it->prev, "rows");
		it->rows = rows ? strtoull(rows, NULL, 10) : 0;
		it->bytes = dd_stream_size(it->prev);
		it->reused = 1;
		it->state = 2;
		carry_record(s, it);
		reused++;
		dd_debug("incremental: %s reused from snapshot %.12s", it->table, s->o->prev_id);
	}
	s->stats->reused = reused;
	if (s->o->statedir && s->o->profile)
		dd_debug("incremental: %zu tables reused, %zu read with COPY", reused, copied);
	return 0;
}

/*
 * After a worker's NOWAIT lock or pg_dump's lock wait failed: while the
 * leader still holds its locks, find the session whose queued request
 * caused it and say so. 1 when found (the error set), else 0.
 */
static int
name_the_waiter(struct snap *s, const char *table)
{
	struct blocker b = { 0 };
	int found = 0;

	if (find_waiter(s->o->conninfo, PQbackendPID(s->c), table, &b) < 0) {
		dd_debug("cannot tell who waits for the snapshot's locks: %s", dd_error_last());
		dd_error_clear();
	} else if (b.table) {
		dd_error("session pid %s (application %s, user %s) is waiting to lock table %s, and the snapshot "
			 "cannot go on while it waits: stopped, so that it can proceed", b.pid, b.app, b.user, b.table);
		dd_hint("that session proceeds now that the snapshot has stopped; once it is done, snapshot again "
			"(git dnadata snapshot)");
		found = 1;
	}
	blocker_release(&b);
	return found;
}

/* Did the rows or the schema fail on a lock (a conflicting request queued behind the leader)? */
static int
lock_conflict(const struct snap *s, const char *err)
{
	if (s->pool.queued_table)
		return 1;
	return err && (strstr(err, "statement timeout") || strstr(err, "lock timeout") ||
		       strstr(err, "could not obtain lock"));
}

/* How many COPY workers: `jobs`, or one per core (see docs/DESIGN-NOTES.md, "Overlap", for one more). */
static size_t
count_workers(const struct snap *s, const struct pool *p)
{
	size_t n = s->o->jobs > 0 ? (size_t)s->o->jobs : (size_t)sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	return n > p->nitems ? p->nitems : n;
}

/* Step 5b: the rows, on parallel sessions in the snapshot; then wait for the schema threads. */
static int
copy_table_data(struct snap *s)
{
	struct pool *p = &s->pool;
	size_t nworkers;
	int copied;

	p->sw = s->sw;
	p->conninfo = s->o->conninfo;
	p->snapshot_id = s->snapshot_id;
	p->lock_timeout = s->lock_timeout;
	p->masks = s->masks;
	p->hide_notices = s->o->nmasks || s->o->subset;
	p->items = dd_calloc(s->nitems + 1, sizeof(struct item *));
	for (size_t i = 0; i < s->nitems; i++)
		if (!s->items[i].reused)
			p->items[p->nitems++] = &s->items[i];
	qsort(p->items, p->nitems, sizeof(struct item *), cmp_item);
	nworkers = count_workers(s, p);
	dd_debug("rows: %zu sessions for %zu tables", nworkers, p->nitems);
	copied = dd_pg_workers_run(&p->w, nworkers, worker, p, show_progress, p);
	join_schema_dump(s);
	if (dd_pg_interrupted())
		return dd_error("interrupted");
	for (int i = 0; i < 2 && copied == 0; i++)
		if (s->sect[i].rc < 0)
			copied = dd_error_restore(&s->sect[i].error);
	if (copied == 0)
		return 0;
	if (lock_conflict(s, dd_error_last())) {
		struct dd_error_saved saved;
		dd_error_save(&saved);
		if (name_the_waiter(s, p->queued_table)) {
			dd_error_saved_free(&saved);
			return -1;
		}
		dd_error_restore(&saved);
		if (!dd_error_hint())
			dd_hint("another session asked for a conflicting lock (ALTER, TRUNCATE, VACUUM FULL) while the "
				"snapshot held it; snapshot again (git dnadata snapshot)");
	} else if (!dd_error_hint() && strstr(dd_error_last(), "permission denied")) {
		dd_hint("grant this user SELECT on every table, or leave tables out with exclude_tables");
	}
	return -1;
}

/* Step 6: the schema and sequence streams, and the totals; then end the transaction. */
static int
write_schema_streams(struct snap *s)
{
	const char *pre_attrs[] = { "encoding", s->enc, "lc_collate", s->collate, "lc_ctype", s->ctype,
				    "locale_provider", s->provider, "icu_locale", s->icu, NULL };
	char num[32];
	const char *seq_attrs[] = { "rows", num, NULL };

	snprintf(num, sizeof(num), "%zu", s->nseq);
	if (write_stream(s->sw, "schema/pre-data", &s->sect[0].out, pre_attrs) < 0 ||
	    write_stream(s->sw, "schema/post-data", &s->sect[1].out, NULL) < 0 ||
	    write_stream(s->sw, "sequences", &s->seqs, seq_attrs) < 0)
		return -1;
	for (size_t i = 0; i < s->nitems; i++) {
		if (!s->items[i].table)
			continue;
		s->stats->rows += s->items[i].rows;
		s->stats->bytes += s->items[i].bytes;
	}
	if (s->have_now) {
		struct dd_buf rec = DD_BUF_INIT;
		dd_pg_incr_format(&s->incr_now, &rec);
		s->stats->incr_record = dd_buf_detach(&rec, &s->stats->incr_record_len);
	}
	return dd_pg_exec(s->c, "COMMIT");
}

static void
snap_release(struct snap *s)
{
	/* stop the pg_dump children's threads before their buffers go */
	join_schema_dump(s);
	for (int i = 0; i < 2; i++) {
		dd_buf_release(&s->sect[i].out);
		dd_error_saved_free(&s->sect[i].error);
	}
	if (s->c) {
		dd_pg_cancel_unregister(s->c);
		PQfinish(s->c);
	}
	for (size_t i = 0; s->exclude && i < s->nexclude; i++)
		free(s->exclude[i]);
	free(s->exclude);
	free(s->child_conninfo);
	if (s->child_password) {
		explicit_bzero(s->child_password, strlen(s->child_password));
		free(s->child_password);
	}
	free(s->pool.items);
	free(s->pool.queued_table);
	dd_pg_workers_release(&s->pool.w);
	items_free(s->items, s->nitems);
	dd_pg_masks_free(s->masks);
	rels_free(s->rels, s->nrels);
	dd_pgdump_release(&s->pgdump);
	dd_buf_release(&s->seqs);
	free(s->snapshot_id);
	free(s->enc);
	free(s->collate);
	free(s->ctype);
	free(s->provider);
	free(s->icu);
	dd_pg_incr_release(&s->incr_now);
	dd_pg_incr_release(&s->incr_prev);
	dd_pg_incr_release(&s->incr_cmp);
	dd_pg_subset_plan_free(s->subset);
	free(s->incr_why);
	free(s->range_why);
}

int
dd_pg_snapshot(struct dd_snapshot_writer *sw, const struct dd_pg_snapshot_opts *o,
	       struct dd_pg_snapshot_stats *stats)
{
	struct snap s;
	int rc = DD_ERROR, installed = 0;

	memset(stats, 0, sizeof(*stats));
	memset(&s, 0, sizeof(s));
	s.o = o, s.stats = stats, s.sw = sw;
	dd_pg_workers_init(&s.pool.w);
	if (resolve_lock_timeout(&s) < 0)
		goto out;
	if (o->statedir && dd_pg_reap_leftovers(o->statedir, o->conninfo) < 0) {
		dd_warn("%s", dd_error_last());
		dd_error_clear();
	}
	if (dd_pg_interrupt_install() < 0)
		goto out;
	installed = 1;
	if (connect_leader(&s) < 0 || begin_snapshot(&s) < 0 || lock_tables(&s) < 0 || plan_subset(&s) < 0 ||
	    start_schema_dump(&s) < 0 || mask_tables(&s) < 0)
		goto out;
	if (read_sequences(s.c, s.rels, s.nrels, &s.seqs, &s.nseq) < 0 || queue_table_data(&s) < 0)
		goto out;
	if (reuse_tables(&s) < 0 || copy_table_data(&s) < 0 || write_schema_streams(&s) < 0)
		goto out;
	rc = DD_OK;
out:
	join_schema_dump(&s);
	if (rc < 0 && strncmp(dd_error_last() ? dd_error_last() : "", "cannot connect", 14) && *stats->database)
		dd_error_wrap("snapshot of database %s", stats->database);
	snap_release(&s);
	if (installed)
		dd_pg_interrupt_remove();
	return rc;
}

/*
 * The schema alone (issue 18's schema-dump): the same steps as a snapshot up
 * to the schema (one exported snapshot, the tables locked, pg_dump's two
 * sections with exclude_tables left out), so the text equals the
 * schema/pre-data and schema/post-data streams a snapshot of this database
 * would hold. No change fingerprint, no rows.
 */
int
dd_pg_schema_dump(const struct dd_pg_snapshot_opts *o, struct dd_buf *out, size_t *post_at, struct dd_buf *db_line)
{
	struct dd_pg_snapshot_stats stats;
	struct snap s;
	int rc = -1, installed = 0;

	memset(&stats, 0, sizeof(stats));
	memset(&s, 0, sizeof(s));
	s.o = o, s.stats = &stats;
	dd_pg_workers_init(&s.pool.w);
	if (resolve_lock_timeout(&s) < 0 || dd_pg_interrupt_install() < 0)
		goto out;
	installed = 1;
	if (dd_pg_connect(&s.c, o->conninfo, NULL) < 0)
		goto out;
	dd_pg_cancel_register(s.c);
	snprintf(stats.database, sizeof(stats.database), "%s", PQdb(s.c));
	if (PQserverVersion(s.c) < 100000) {
		dd_error("PostgreSQL %d is too old (git-dnadata needs 10 or newer)", dd_pg_server_major(s.c));
		goto out;
	}
	if (dd_pgdump_find(&s.pgdump, dd_pg_server_major(s.c)) < 0 || begin_snapshot(&s) < 0 ||
	    lock_tables(&s) < 0 || start_schema_dump(&s) < 0)
		goto out;
	join_schema_dump(&s);
	for (int i = 0; i < 2; i++)
		if (s.sect[i].rc < 0) {
			dd_error_restore(&s.sect[i].error);
			goto out;
		}
	dd_buf_put(out, s.sect[0].out.ptr ? s.sect[0].out.ptr : "", s.sect[0].out.len);
	if (post_at)
		*post_at = out->len;
	if (db_line) {
		const char *kv[] = { "encoding", s.enc, "lc_collate", s.collate, "lc_ctype", s.ctype,
				     "locale_provider", s.provider, "icu_locale", s.icu, NULL };
		dd_pg_sql_db_line(kv, db_line);
	}
	dd_buf_put(out, s.sect[1].out.ptr ? s.sect[1].out.ptr : "", s.sect[1].out.len);
	rc = dd_pg_exec(s.c, "COMMIT");
out:
	if (rc < 0 && *stats.database)
		dd_error_wrap("schema of database %s", stats.database);
	snap_release(&s);
	if (installed)
		dd_pg_interrupt_remove();
	return rc;
}
