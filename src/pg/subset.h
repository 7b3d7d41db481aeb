/*
 * pg/subset.h: the subset's plan (issue 21), between dump.c, which reads
 * the catalog and runs the COPYs, and subset.c, which turns the subset
 * key and the foreign keys into each table's WHERE clause.
 */
#ifndef DD_PG_SUBSET_H
#define DD_PG_SUBSET_H

#include <libpq-fe.h>
#include <stddef.h>

struct dd_pg_subset;

/* A table of the dump's catalog as the subset sees it (pointers borrowed). */
struct dd_pg_subset_table {
	unsigned oid;
	const char *qname;      /* format('%I.%I') */
	const char *nspname, *relname;
	char relkind;           /* 'r' (a table or a leaf partition) or 'p' (partitioned) */
	const char *pk;         /* quoted primary-key columns, or NULL */
	unsigned partition_of;  /* its partitioned parent (relkind 'p'), or 0 */
	int dumped;             /* its rows are dumped: neither exclude_tables nor exclude_data */
};

/* A foreign key (pg_constraint, conparentid 0): child rows reference parent rows. */
struct dd_pg_subset_fk {
	unsigned child, parent;  /* table oids */
	const char *name;        /* the constraint, quoted */
	const char *ccols;       /* the child's columns as "c.a, c.b", each quoted by the server */
	const char *pcols;       /* the referenced columns as "p.x, p.y" */
	const char *complete;    /* "c.a IS NOT NULL AND c.b IS NOT NULL" */
};

struct dd_pg_subset_plan;

/*
 * The part of dd_pg_subset_plan that needs no server (unit-tested): the
 * start table, the graph of `fks`, the sets and the CTEs' text. The
 * condition is not checked. 0 or -1 (error set, naming the subset key).
 */
int dd_pg_subset_plan_graph(struct dd_pg_subset_plan **out, const struct dd_pg_subset *sb,
			    const struct dd_pg_subset_table *tables, size_t n, const struct dd_pg_subset_fk *fks,
			    size_t nfks);

/*
 * On the leader's session, inside the exported snapshot: resolve the start
 * table among `tables`, read the foreign keys, find which tables the
 * subset reaches, and check the condition (PQprepare: one expression on
 * the start table). An error names the subset key and its line. 0 or -1.
 */
int dd_pg_subset_plan(struct dd_pg_subset_plan **out, PGconn *c, const struct dd_pg_subset *sb,
		      const struct dd_pg_subset_table *tables, size_t n);

/*
 * The WHERE clause (" WHERE ...", allocated) that keeps table `oid`'s
 * rows of the subset in a `SELECT ... FROM ONLY <table>`, or NULL when
 * every row is kept. Valid in any session of the exported snapshot, while
 * the tables' strings given to dd_pg_subset_plan() live.
 */
char *dd_pg_subset_where(const struct dd_pg_subset_plan *p, unsigned oid);

void dd_pg_subset_plan_free(struct dd_pg_subset_plan *p);

#endif
