/*
 * pg/subset.c: a subset of a database's rows, taken by the server inside
 * the exported snapshot (issue 21; semantics in docs/DESIGN-NOTES.md
 * "Subsetting").
 *
 * The graph: one node per table that a foreign key names (its declared
 * table: a partitioned table covers its partitions' rows) plus the start
 * table; one edge per foreign key (child -> parent) whose two tables are
 * dumped with their rows. Partitions' cloned constraints (conparentid) are
 * the same key as their parent's and are not edges. The sets, computed
 * here on the tables (small):
 *   down     the start table, and every child of a down table;
 *   reached  down, and every parent of a reached table;
 *   filtered (subset_others = whole) tables outside `reached` with a key
 *            into a reached or filtered table.
 * The rows, computed by the server in each table's COPY, as (node, leaf
 * table, tid) in recursive CTEs: `dn`, the start table's rows (a
 * percentage: md5 of ROW(key)::text, its first 32 bits below N% of 2^32;
 * or the condition) and, down every key, the rows that reference a dn
 * row; `up`, every dn row and, up every key, the rows a row of up
 * references (they bring no children: a product does not bring its other
 * orders). UNION makes each a fixed point, so cycles and self-references
 * end, and adds each row once. `dr`, for filtered tables: their rows with
 * a complete key to a reached table's row that `up` does not hold, then
 * the rows that reference a row of dr. A reached table keeps `ctid = ANY
 * (up's tids of it)` (a TID scan of the kept rows), a filtered one
 * `ctid NOT IN (dr's tids of it)` (a hashed subplan of the dropped rows). tids name rows within one snapshot, which every
 * session shares, so each COPY computes the same closure. Each table's
 * CTEs follow only the keys that can lead to its rows (closure_sql).
 *
 * The trade-off: nothing is held by this process (the keys never leave the
 * server; the dump's memory stays flat), but each subsetted table's COPY
 * computes its part of the closure again: server CPU of about the number
 * of subsetted tables times one closure, whose cost is the kept rows'
 * joins plus, per round of the recursion, a scan of each child table whose
 * key has no index. The server holds a closure's tids in memory.
 * PostgreSQL allows one reference to a recursive CTE in its recursive
 * term: the branches read it through a plain CTE `w` that refers to it
 * once.
 */
#include "pg/internal.h"
#include "pg/pg.h"
#include "pg/subset.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE ((size_t)-1)

/* A foreign key: child rows reference parent rows. Column lists as the server quoted them. */
struct edge {
	size_t child, parent;  /* table indexes */
	char *name;            /* the constraint, quoted */
	char *ccols, *pcols;   /* "c.a, c.b" and "p.x, p.y" */
	char *complete;        /* "c.a IS NOT NULL AND c.b IS NOT NULL": the row references a parent row */
};

struct dd_pg_subset_plan {
	struct dd_pg_subset_table *t;  /* a copy of the caller's array (its strings borrowed) */
	size_t n, start;
	int others_empty;
	struct edge *edges;
	size_t nedges;
	size_t *node;           /* per table: the node covering its rows (itself or a partitioned ancestor), or NONE */
	unsigned char *is_node, *down, *reached, *filtered;
	char *seed;             /* the start table's rows, as (node, leaf, tid) */
	char *all;              /* dn and up for every reached table (closure_sql) */
	char *dr;               /* dr's text ("dr(...) AS (...)"), or NULL when no table is filtered */
};

static void
hint(const struct dd_pg_subset *sb)
{
	dd_hint("nothing was captured; fix the subset key in %s", sb->file ? sb->file : "profiles.ini");
}

/* An error about the subset key: "file:line: subset = TEXT: reason". Returns -1. */
static int __attribute__((format(printf, 2, 3)))
fail(const struct dd_pg_subset *sb, const char *fmt, ...)
{
	struct dd_buf why = DD_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	dd_buf_vprintf(&why, fmt, ap);
	va_end(ap);
	dd_error("%s:%zu: subset = %s: %s", sb->file ? sb->file : "profiles.ini", sb->line, sb->text ? sb->text : "",
		 dd_buf_cstr(&why));
	dd_buf_release(&why);
	hint(sb);
	return -1;
}

static size_t
find_oid(const struct dd_pg_subset_plan *p, unsigned oid)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->t[i].oid == oid)
			return i;
	return NONE;
}

/* The start table: exactly one dumped table of that name (in that schema, when given). */
static int
find_start(struct dd_pg_subset_plan *p, const struct dd_pg_subset *sb)
{
	size_t found = NONE, count = 0;

	for (size_t i = 0; i < p->n; i++) {
		const struct dd_pg_subset_table *t = &p->t[i];
		if (strcmp(t->relname, sb->table) || (sb->schema && strcmp(t->nspname, sb->schema)))
			continue;
		if (found == NONE || (!p->t[found].dumped && t->dumped))
			found = i;
		count += t->dumped;
	}
	if (found == NONE)
		return fail(sb, "no table %s%s%s in the database", sb->schema ? sb->schema : "", sb->schema ? "." : "",
			    sb->table);
	if (count > 1)
		return fail(sb, "%zu dumped tables are named %s: name its schema (schema.table)", count, sb->table);
	if (!p->t[found].dumped)
		return fail(sb, "table %s is left out by exclude_tables or exclude_data: its rows are not dumped",
			    p->t[found].qname);
	if (sb->percent && !p->t[found].pk)
		return fail(sb, "table %s has no primary key, which a percentage needs (rows are chosen by a hash of "
			    "their key): use 'where <condition>'", p->t[found].qname);
	p->start = found;
	return 0;
}

static const char fk_sql[] =
	"SELECT c.conrelid, c.confrelid, format('%%I', c.conname),"
	" (SELECT string_agg('c.' || quote_ident(a.attname), ', ' ORDER BY k.o) FROM unnest(c.conkey)"
	"   WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n),"
	" (SELECT string_agg('p.' || quote_ident(a.attname), ', ' ORDER BY k.o) FROM unnest(c.confkey)"
	"   WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n),"
	" (SELECT string_agg('c.' || quote_ident(a.attname) || ' IS NOT NULL', ' AND ' ORDER BY k.o)"
	"   FROM unnest(c.conkey) WITH ORDINALITY k(n, o)"
	"   JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n)"
	" FROM pg_constraint c WHERE c.contype = 'f'%s ORDER BY c.conrelid, c.conname";

/* The foreign keys (a partition's clone of its parent's key is not one): *out (free with free_fks), *n. */
static int
read_fks(PGconn *c, struct dd_pg_subset_fk **out, size_t *n)
{
	char *sql = dd_asprintf(fk_sql, PQserverVersion(c) >= 110000 ? " AND c.conparentid = 0" : "");
	PGresult *res = dd_pg_query(c, sql, 0, NULL);
	struct dd_pg_subset_fk *fks;

	free(sql);
	if (!res)
		return dd_error_wrap("reading the foreign keys");
	fks = dd_calloc((size_t)PQntuples(res) + 1, sizeof(*fks));
	*n = 0;
	for (int r = 0; r < PQntuples(res); r++) {
		struct dd_pg_subset_fk *f = &fks[*n];
		if (PQgetisnull(res, r, 3) || PQgetisnull(res, r, 4) || PQgetisnull(res, r, 5))
			continue;
		f->child = (unsigned)strtoul(PQgetvalue(res, r, 0), NULL, 10);
		f->parent = (unsigned)strtoul(PQgetvalue(res, r, 1), NULL, 10);
		f->name = dd_strdup(PQgetvalue(res, r, 2));
		f->ccols = dd_strdup(PQgetvalue(res, r, 3));
		f->pcols = dd_strdup(PQgetvalue(res, r, 4));
		f->complete = dd_strdup(PQgetvalue(res, r, 5));
		(*n)++;
	}
	PQclear(res);
	*out = fks;
	return 0;
}

static void
free_fks(struct dd_pg_subset_fk *fks, size_t n)
{
	for (size_t i = 0; fks && i < n; i++) {
		free((char *)fks[i].name);
		free((char *)fks[i].ccols);
		free((char *)fks[i].pcols);
		free((char *)fks[i].complete);
	}
	free(fks);
}

/* The graph's edges: the keys between two tables whose rows are dumped. */
static void
add_edges(struct dd_pg_subset_plan *p, const struct dd_pg_subset_fk *fks, size_t nfks)
{
	p->edges = dd_calloc(nfks + 1, sizeof(*p->edges));
	for (size_t i = 0; i < nfks; i++) {
		size_t ch = find_oid(p, fks[i].child), pa = find_oid(p, fks[i].parent);
		struct edge *e;
		if (ch == NONE || pa == NONE || !p->t[ch].dumped || !p->t[pa].dumped)
			continue;
		e = &p->edges[p->nedges++];
		e->child = ch;
		e->parent = pa;
		e->name = dd_strdup(fks[i].name ? fks[i].name : "");
		e->ccols = dd_strdup(fks[i].ccols);
		e->pcols = dd_strdup(fks[i].pcols);
		e->complete = dd_strdup(fks[i].complete);
	}
}

/*
 * Which node covers each table's rows: the table itself or its nearest
 * partitioned ancestor that is a node. Two of them (a key declared on a
 * partition and another on its partitioned table) are refused: a row would
 * belong to two nodes.
 */
static int
cover(struct dd_pg_subset_plan *p, const struct dd_pg_subset *sb)
{
	p->is_node[p->start] = 1;
	for (size_t i = 0; i < p->nedges; i++)
		p->is_node[p->edges[i].child] = p->is_node[p->edges[i].parent] = 1;
	for (size_t i = 0; i < p->n; i++) {
		size_t at = i;
		p->node[i] = NONE;
		for (int depth = 0; at != NONE && depth < 64; depth++) {
			if (p->is_node[at] && p->node[i] == NONE)
				p->node[i] = at;
			else if (p->is_node[at])
				return fail(sb, "tables %s and %s (a partition of it) both have foreign keys or are the "
					    "start table: a subset cannot follow keys declared on a partition itself",
					    p->t[at].qname, p->t[p->node[i]].qname);
			at = p->t[at].partition_of ? find_oid(p, p->t[at].partition_of) : NONE;
		}
	}
	return 0;
}

/* The sets of the top comment, each a fixed point over the edges. */
static void
reach(struct dd_pg_subset_plan *p)
{
	int more;

	p->down[p->start] = p->reached[p->start] = 1;
	do {
		more = 0;
		for (size_t i = 0; i < p->nedges; i++) {
			const struct edge *e = &p->edges[i];
			if (p->down[e->parent] && !p->down[e->child])
				p->down[e->child] = p->reached[e->child] = 1, more = 1;
			if (p->reached[e->child] && !p->reached[e->parent])
				p->reached[e->parent] = 1, more = 1;
		}
	} while (more);
	if (p->others_empty)
		return;
	do {
		more = 0;
		for (size_t i = 0; i < p->nedges; i++) {
			const struct edge *e = &p->edges[i];
			if (!p->reached[e->child] && !p->filtered[e->child] &&
			    (p->reached[e->parent] || p->filtered[e->parent]))
				p->filtered[e->child] = 1, more = 1;
		}
	} while (more);
}

/* The FROM item of a node: a partitioned table with its partitions, a plain table alone. */
static void
put_from(struct dd_buf *b, const struct dd_pg_subset_table *t, const char *alias)
{
	dd_buf_printf(b, "%s%s%s%s", t->relkind == 'p' ? "" : "ONLY ", t->qname, alias ? " " : "", alias ? alias : "");
}

/* The start table's rows: (node, leaf, tid, down). The condition goes in as written, on a line of its own. */
static char *
seed_sql(const struct dd_pg_subset_plan *p, const struct dd_pg_subset *sb)
{
	const struct dd_pg_subset_table *t = &p->t[p->start];
	struct dd_buf b = DD_BUF_INIT;

	dd_buf_printf(&b, "SELECT '%u'::oid, tableoid, ctid FROM ", t->oid);
	put_from(&b, t, NULL);
	if (sb->percent >= 100)
		;
	else if (sb->percent)
		dd_buf_printf(&b, " WHERE ('x' || left(md5(ROW(%s)::text), 8))::bit(32)::int8 < %" PRIu64, t->pk,
			      (uint64_t)sb->percent * (UINT64_C(1) << 32) / 100);
	else
		dd_buf_printf(&b, " WHERE (\n%s\n)", sb->where);
	return dd_buf_detach(&b, NULL);
}

/*
 * One branch of a recursive term, over the rows `w` the last round added:
 * down (the edge's parent rows bring the child rows that reference them)
 * or up (the child rows bring the parent rows they reference).
 */
static void
put_branch(struct dd_buf *b, const struct dd_pg_subset_plan *p, const struct edge *e, int down)
{
	const struct dd_pg_subset_table *from = &p->t[down ? e->parent : e->child];
	const struct dd_pg_subset_table *to = &p->t[down ? e->child : e->parent];
	const char *fa = down ? "p" : "c", *ta = down ? "c" : "p";

	dd_buf_printf(b, "SELECT '%u'::oid, %s.tableoid, %s.ctid FROM w JOIN ", to->oid, ta, ta);
	put_from(b, from, fa);
	dd_buf_printf(b, " ON %s.tableoid = w.leaf AND %s.ctid = w.tid JOIN ", fa, fa);
	put_from(b, to, ta);
	dd_buf_printf(b, " ON (%s) = (%s) WHERE w.node = '%u'::oid", e->ccols, e->pcols, from->oid);
}

/* "name(node, leaf, tid) AS (<seed> UNION <a branch per key between two tables of `in`>)" */
static void
put_recursive(struct dd_buf *b, const struct dd_pg_subset_plan *p, const char *name, const char *seed, int down,
	      const unsigned char *in)
{
	size_t branches = 0;

	dd_buf_printf(b, "%s(node, leaf, tid) AS (%s", name, seed);
	for (size_t i = 0; i < p->nedges; i++) {
		const struct edge *e = &p->edges[i];
		if (!in[e->child] || !in[e->parent] || !(down ? p->down[e->parent] : p->reached[e->child]))
			continue;
		if (!branches++)
			dd_buf_printf(b, "\nUNION SELECT n.* FROM (WITH w AS (SELECT * FROM %s) ", name);
		else
			dd_buf_puts(b, " UNION ALL ");
		put_branch(b, p, e, down);
	}
	dd_buf_puts(b, branches ? ") n)" : ")");
}

/*
 * The CTEs dn (the down rows) and up (every kept row) that table `t`'s
 * rows need (t == NONE: every reached table's): up follows only the keys
 * on paths from a table to t (A: t and the tables that reference it,
 * transitively), dn only the keys on paths from the start table to a
 * table of A (B). Each kept row is added once to each, so a closure costs
 * about twice the kept rows' joins; pruning spares a table near the
 * bottom of the graph the rest of it.
 */
static char *
closure_sql(const struct dd_pg_subset_plan *p, size_t t)
{
	unsigned char *a = dd_calloc(p->n + 1, 1), *b = dd_calloc(p->n + 1, 1);
	struct dd_buf sql = DD_BUF_INIT, seed = DD_BUF_INIT;
	int more;

	for (size_t i = 0; i < p->n; i++)
		a[i] = t == NONE ? p->reached[i] : i == t;
	do { /* A: who references a table of A, through keys the subset follows up */
		more = 0;
		for (size_t i = 0; i < p->nedges; i++) {
			const struct edge *e = &p->edges[i];
			if (p->reached[e->child] && a[e->parent] && !a[e->child])
				a[e->child] = 1, more = 1;
		}
	} while (more);
	for (size_t i = 0; i < p->n; i++)
		b[i] = a[i] && p->down[i];
	do { /* B: the down tables whose rows lead down to a table of A */
		more = 0;
		for (size_t i = 0; i < p->nedges; i++) {
			const struct edge *e = &p->edges[i];
			if (p->down[e->parent] && b[e->child] && !b[e->parent])
				b[e->parent] = 1, more = 1;
		}
	} while (more);
	put_recursive(&sql, p, "dn", p->seed, 1, b);
	dd_buf_puts(&seed, "SELECT * FROM dn WHERE node IN (");
	for (size_t i = 0, k = 0; i < p->n; i++)
		if (a[i] && b[i])
			dd_buf_printf(&seed, "%s'%u'::oid", k++ ? ", " : "", p->t[i].oid);
	dd_buf_puts(&seed, ")");
	dd_buf_puts(&sql, ", ");
	put_recursive(&sql, p, "up", dd_buf_cstr(&seed), 0, a);
	dd_buf_release(&seed);
	free(a);
	free(b);
	return dd_buf_detach(&sql, NULL);
}

/* dr: filtered tables' rows that reference a row the subset leaves out, directly or through dr. */
static void
build_dr(struct dd_pg_subset_plan *p)
{
	struct dd_buf b = DD_BUF_INIT;
	size_t seeds = 0, branches = 0;

	dd_buf_puts(&b, "dr(node, leaf, tid) AS (");
	for (size_t i = 0; i < p->nedges; i++) {
		const struct edge *e = &p->edges[i];
		if (!p->filtered[e->child] || !p->reached[e->parent])
			continue;
		dd_buf_printf(&b, "%sSELECT '%u'::oid, c.tableoid, c.ctid FROM ", seeds++ ? " UNION ALL " : "",
			      p->t[e->child].oid);
		put_from(&b, &p->t[e->child], "c");
		dd_buf_printf(&b, " WHERE %s AND NOT EXISTS (SELECT 1 FROM up JOIN ", e->complete);
		put_from(&b, &p->t[e->parent], "p");
		dd_buf_printf(&b, " ON p.tableoid = up.leaf AND p.ctid = up.tid WHERE up.node = '%u'::oid AND (%s) = (%s))",
			      p->t[e->parent].oid, e->pcols, e->ccols);
	}
	for (size_t i = 0; i < p->nedges; i++) {
		const struct edge *e = &p->edges[i];
		if (!p->filtered[e->child] || !p->filtered[e->parent])
			continue;
		dd_buf_puts(&b, branches++ ? " UNION ALL " : "\nUNION SELECT n.* FROM (WITH w AS (SELECT * FROM dr) ");
		dd_buf_printf(&b, "SELECT '%u'::oid, c.tableoid, c.ctid FROM w JOIN ", p->t[e->child].oid);
		put_from(&b, &p->t[e->parent], "p");
		dd_buf_puts(&b, " ON p.tableoid = w.leaf AND p.ctid = w.tid JOIN ");
		put_from(&b, &p->t[e->child], "c");
		dd_buf_printf(&b, " ON (%s) = (%s) WHERE w.node = '%u'::oid", e->ccols, e->pcols, p->t[e->parent].oid);
	}
	dd_buf_puts(&b, branches ? ") n)" : ")");
	p->dr = seeds ? dd_buf_detach(&b, NULL) : NULL;
	dd_buf_release(&b);
}

/*
 * The condition is SQL run as written: prepared alone first (one
 * statement, one expression on the start table: the seed's four columns
 * come out), so a mistake names the subset key; then the whole closure, so
 * that a COPY cannot fail on it later.
 */
static int
check(struct dd_pg_subset_plan *p, PGconn *c, const struct dd_pg_subset *sb, const char *seed)
{
	PGresult *res = PQprepare(c, "", seed, 0, NULL);
	char *sql;
	int ok;

	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		dd_pg_error(c, res);
		PQclear(res);
		hint(sb);
		return dd_error_wrap("%s:%zu: subset = %s", sb->file ? sb->file : "profiles.ini", sb->line,
				     sb->text ? sb->text : "");
	}
	PQclear(res);
	res = PQdescribePrepared(c, "");
	ok = PQresultStatus(res) == PGRES_COMMAND_OK && PQnfields(res) == 3;
	PQclear(res);
	if (!ok)
		return fail(sb, "the condition is not one expression on table %s", p->t[p->start].qname);
	sql = dd_asprintf("SELECT count(*) FROM (WITH RECURSIVE %s%s%s SELECT 1 FROM %s) x", p->all, p->dr ? ", " : "",
			  p->dr ? p->dr : "", p->dr ? "dr" : "up");
	res = PQprepare(c, "", sql, 0, NULL);
	free(sql);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		dd_pg_error(c, res);
	PQclear(res);
	return ok ? 0 : dd_error_wrap("%s:%zu: subset = %s: the closure over the foreign keys", sb->file ? sb->file
											 : "profiles.ini",
				      sb->line, sb->text ? sb->text : "");
}

int
dd_pg_subset_plan_graph(struct dd_pg_subset_plan **out, const struct dd_pg_subset *sb,
			const struct dd_pg_subset_table *tables, size_t n, const struct dd_pg_subset_fk *fks, size_t nfks)
{
	struct dd_pg_subset_plan *p = dd_calloc(1, sizeof(*p));

	*out = NULL;
	p->t = dd_calloc(n + 1, sizeof(*p->t));
	memcpy(p->t, tables, n * sizeof(*p->t));
	p->n = n;
	p->others_empty = sb->others_empty;
	p->node = dd_calloc(n + 1, sizeof(*p->node));
	p->is_node = dd_calloc(n + 1, 1);
	p->down = dd_calloc(n + 1, 1);
	p->reached = dd_calloc(n + 1, 1);
	p->filtered = dd_calloc(n + 1, 1);
	if (find_start(p, sb) < 0) {
		dd_pg_subset_plan_free(p);
		return -1;
	}
	add_edges(p, fks, nfks);
	if (cover(p, sb) < 0) {
		dd_pg_subset_plan_free(p);
		return -1;
	}
	reach(p);
	p->seed = seed_sql(p, sb);
	p->all = closure_sql(p, NONE);
	build_dr(p);
	*out = p;
	return 0;
}

int
dd_pg_subset_plan(struct dd_pg_subset_plan **out, PGconn *c, const struct dd_pg_subset *sb,
		  const struct dd_pg_subset_table *tables, size_t n)
{
	struct dd_pg_subset_plan *p = NULL;
	struct dd_pg_subset_fk *fks = NULL;
	size_t nfks = 0, nreached = 0, nfiltered = 0;
	int rc = -1;

	if (read_fks(c, &fks, &nfks) < 0 || dd_pg_subset_plan_graph(&p, sb, tables, n, fks, nfks) < 0 ||
	    check(p, c, sb, p->seed) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		nreached += p->reached[i], nfiltered += p->filtered[i];
	dd_debug("subset: start table %s, %zu foreign keys, %zu tables reached, %zu others %s", tables[p->start].qname,
		 p->nedges, nreached, nfiltered, p->others_empty ? "emptied" : "kept whole but filtered");
	*out = p, p = NULL, rc = 0;
out:
	free_fks(fks, nfks);
	dd_pg_subset_plan_free(p);
	return rc;
}

char *
dd_pg_subset_where(const struct dd_pg_subset_plan *p, unsigned oid)
{
	size_t i = find_oid(p, oid), node = i == NONE ? NONE : p->node[i];

	/*
	 * `ctid = ANY (ARRAY(...))`: a TID scan fetches the kept rows alone,
	 * whatever the planner guesses of the closure's size (as a semi-join
	 * on a guess of two rows it chose a nested loop: rows times rows).
	 */
	if (node != NONE && p->reached[node]) {
		char *cte = closure_sql(p, node), *where;
		where = dd_asprintf(" WHERE ctid = ANY (ARRAY(WITH RECURSIVE %s SELECT tid FROM up WHERE leaf = '%u'::oid))",
				    cte, oid);
		free(cte);
		return where;
	}
	/* a filtered table keeps most rows: a hashed NOT IN holds the dropped tids, not an array of all the others */
	if (node != NONE && p->filtered[node] && p->dr)
		return dd_asprintf(" WHERE ctid NOT IN (WITH RECURSIVE %s, %s SELECT tid FROM dr WHERE leaf = '%u'::oid)",
				   p->all, p->dr, oid);
	return p->others_empty ? dd_strdup(" WHERE false") : NULL;
}

void
dd_pg_subset_plan_free(struct dd_pg_subset_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nedges; i++) {
		free(p->edges[i].name);
		free(p->edges[i].ccols);
		free(p->edges[i].pcols);
		free(p->edges[i].complete);
	}
	free(p->edges);
	free(p->t);
	free(p->node);
	free(p->is_node);
	free(p->down);
	free(p->reached);
	free(p->filtered);
	free(p->seed);
	free(p->all);
	free(p->dr);
	free(p);
}
