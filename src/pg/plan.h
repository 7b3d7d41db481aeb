/*
 * pg/plan.h: the restore's schedule as a dependency graph (plan.c builds it
 * from the snapshot's streams, the post-data entries and the relations the
 * pre-data created; restore.c runs it on `jobs` sessions).
 *
 * Every task's prerequisites come before it in the task array, so the
 * graph has no cycle and a task's priority (its cost plus the costliest
 * chain of tasks waiting on it) is computed in one backward pass. What the
 * planner cannot map (an entry it cannot parse, a relation without a data
 * stream) waits at a barrier after everything it might depend on.
 */
#ifndef DD_PG_PLAN_H
#define DD_PG_PLAN_H

#include <stddef.h>
#include <stdint.h>

struct dd_schema_entry;

enum dd_plan_kind {
	DD_PLAN_COPY,       /* one data/ stream (ref: its index in the input streams) */
	DD_PLAN_LO,         /* the largeobjects stream (ref: its index) */
	DD_PLAN_BARRIER,    /* no work: all COPY / all keys / all attachments are done */
	DD_PLAN_KEY,        /* INDEX, CONSTRAINT (PK, UNIQUE, EXCLUDE) (ref: the post-data entry) */
	DD_PLAN_ATTACH,     /* INDEX ATTACH (ref: the entry) */
	DD_PLAN_FK,         /* FK CONSTRAINT (ref: the entry) */
	DD_PLAN_CHECK,      /* a table's CHECK CONSTRAINT dumped apart (ref: the entry) */
	DD_PLAN_SEQ,        /* the sequence values */
	DD_PLAN_REST,       /* every other post-data entry, in pg_dump's order, one script (sql) */
	DD_PLAN_ANALYZE,    /* ANALYZE of one relation (sql) */
	DD_PLAN_ANALYZE_MV, /* ANALYZE of each populated materialized view */
};

/* Lock modes as the scheduler models them (a task never starts beside one it would wait for). */
enum dd_plan_lock {
	DD_LOCK_ROWS = 1, /* COPY: ROW EXCLUSIVE */
	DD_LOCK_SHARE,    /* CREATE INDEX: SHARE */
	DD_LOCK_ANALYZE,  /* ANALYZE: SHARE UPDATE EXCLUSIVE */
	DD_LOCK_EXCL,     /* ALTER TABLE ... ADD CONSTRAINT, ALTER INDEX ... ATTACH: (SHARE ROW / ACCESS) EXCLUSIVE */
};

struct dd_plan_task {
	enum dd_plan_kind kind;
	size_t ref;
	const char *sql;     /* KEY/ATTACH/FK/CHECK/REST: entry text after SETs of the state it was dumped under; owned */
	char *own;           /* what `sql` points to when the plan owns it */
	char *label;         /* for -v: "INDEX app.orders_items ON app.orders" */
	double cost, prio;
	size_t *deps, ndeps;
	size_t rel[2];       /* relation ids locked, in `mode` */
	enum dd_plan_lock mode[2];
	size_t nrel;
};

struct dd_plan {
	struct dd_plan_task *t;
	size_t n;
	size_t nrels;        /* relation ids are 0..nrels-1 */
	size_t *users, *user_at; /* dependents: users[user_at[i] .. user_at[i+1]) */
};

/* One data stream: its `table` attribute (format('%I.%I')), or NULL for largeobjects; its size and rows (0: unknown). */
struct dd_plan_stream {
	const char *table;
	uint64_t size, rows;
};

/* One relation the pre-data created: format('%I.%I'), relkind ('r', 'p', 'm'), and relhassubclass. */
struct dd_plan_rel {
	const char *name;
	char kind;
	int children;        /* an inheritance parent: its ANALYZE also samples its children's rows */
};

/*
 * Build the plan. `entries` from dd_schema_split() of the post-data
 * (entry 0 the preamble; borrowed: they must outlive the plan); `rels`
 * the relations to ANALYZE ('m' ones go to one ANALYZE_MV task after the
 * rest); `has_seq`: a SEQ task. Never fails.
 */
void dd_plan_build(struct dd_plan *p, const struct dd_plan_stream *streams, size_t nstreams,
		   const struct dd_schema_entry *entries, size_t nentries, const struct dd_plan_rel *rels,
		   size_t nrels, int has_seq);
void dd_plan_free(struct dd_plan *p);

/* Can a task holding `a` on a relation run beside one holding `b` on it? */
int dd_plan_lock_conflict(enum dd_plan_lock a, enum dd_plan_lock b);

/* The cost factor of an index access method ("btree", "gin" ...) relative to a COPY of the same bytes. */
double dd_plan_am_factor(const char *am);

#endif
