/*
 * pg/plan.c: the restore's dependency graph (plan.h), pure code over the
 * snapshot's text (unit-tested, fuzzed: the post-data is read from the
 * store and treated as hostile; a text it cannot parse only makes a task
 * wait longer, never run earlier).
 *
 * The tasks, in array order (each task's prerequisites come before it):
 *   COPY of each data stream, the large objects;  barrier B_COPY (all rows);
 *   KEY: a table's INDEX / CONSTRAINT entry, after that table's COPY (an
 *        INDEX also after the table's CONSTRAINTs, which it cannot overlap) (or
 *        B_COPY when the table has no stream: partitioned parents,
 *        materialized views, excluded data, names we cannot map);  B_KEY;
 *   ATTACH: after the tasks creating the parent and the partition's index
 *        (or B_KEY);  B_ATTACH;
 *   FK: after both tables' COPY and the referenced table's PK/UNIQUE
 *        indexes (or B_ATTACH when the referenced table has no stream or
 *        some key entry could not be mapped);
 *   CHECK (a table's separately dumped CHECK constraint): after B_COPY;
 *   SEQ: after B_COPY;  REST: after B_ATTACH, every FK, CHECK and SEQ;
 *   ANALYZE of a table after its COPY, its keys and the FKs locking it
 *        (an inheritance parent: after B_COPY too, its children's rows;
 *        a table with extended statistics: after REST, which creates them;
 *        every table, when a STATISTICS entry cannot be read);
 *        of a partitioned table after B_ATTACH; of the populated
 *        materialized views after REST.
 * Names are compared unquoted ("schema"."name" always quoted is the map's
 * key), so pg_dump's quoting and the server's format('%I') need not agree.
 *
 * Cost is in bytes of COPY text: a COPY costs its stream size, an index
 * build the table's stream size times its access method's factor
 * (measured: dd_plan_am_factor()). Priority = cost + the costliest
 * chain of tasks waiting on it, so the COPY of a table with a GIN index
 * starts before a larger table with only a btree.
 */
#include "pg/internal.h"
#include "pg/plan.h"
#include "util/buf.h"

#include <stdlib.h>
#include <string.h>

#define NONE ((size_t)-1)

/* ---- a string -> size_t map (open addressing) ---- */

struct smap {
	char **key;
	size_t *val;
	size_t cap, n;
};

static uint64_t
hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static size_t *
smap_slot(struct smap *m, const char *k, int create)
{
	if (create && (m->n + 1) * 2 > m->cap) {
		struct smap big = { NULL, NULL, m->cap ? m->cap * 2 : 64, 0 };
		big.key = dd_calloc(big.cap, sizeof(char *));
		big.val = dd_calloc(big.cap, sizeof(size_t));
		for (size_t i = 0; i < m->cap; i++)
			if (m->key[i]) {
				size_t j = hash(m->key[i]) & (big.cap - 1);
				while (big.key[j])
					j = (j + 1) & (big.cap - 1);
				big.key[j] = m->key[i], big.val[j] = m->val[i];
			}
		big.n = m->n;
		free(m->key);
		free(m->val);
		*m = big;
	}
	if (!m->cap)
		return NULL;
	for (size_t j = hash(k) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
		if (!m->key[j]) {
			if (!create)
				return NULL;
			m->key[j] = dd_strdup(k);
			m->val[j] = NONE;
			m->n++;
			return &m->val[j];
		}
		if (!strcmp(m->key[j], k))
			return &m->val[j];
	}
}

static size_t
smap_get(struct smap *m, const char *k)
{
	size_t *v = smap_slot(m, k, 0);
	return v ? *v : NONE;
}

static void
smap_free(struct smap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->key[i]);
	free(m->key);
	free(m->val);
}

/* ---- reading pg_dump's statements ---- */

static void
skip_ws(const char **p)
{
	while (**p == ' ' || **p == '\n' || **p == '\t' || **p == '\r')
		(*p)++;
}

static int
ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$' ||
	       (unsigned char)c >= 0x80;
}

/* The words of `w` (space-separated keywords) at *p; advances past them. */
static int
tok(const char **p, const char *w)
{
	const char *s = *p;

	while (*w) {
		size_t n = strcspn(w, " ");
		skip_ws(&s);
		if (strncmp(s, w, n) || ident_char(s[n]))
			return 0;
		s += n, w += n;
		while (*w == ' ')
			w++;
	}
	*p = s;
	return 1;
}

/* An identifier ("quoted", or unquoted and folded to lower case) into `raw`. */
static int
ident(const char **p, struct dd_buf *raw)
{
	const char *s = *p;

	dd_buf_clear(raw);
	skip_ws(&s);
	if (*s == '"') {
		for (s++;; s++) {
			if (!*s)
				return 0;
			if (*s == '"' && s[1] != '"')
				break;
			if (*s == '"')
				s++;
			dd_buf_putc(raw, *s);
		}
		s++;
	} else {
		for (; ident_char(*s); s++)
			dd_buf_putc(raw, *s >= 'A' && *s <= 'Z' ? (char)(*s - 'A' + 'a') : *s);
	}
	if (!raw->len)
		return 0;
	*p = s;
	return 1;
}

static void
put_quoted(struct dd_buf *b, const char *raw)
{
	dd_buf_putc(b, '"');
	for (; *raw; raw++) {
		if (*raw == '"')
			dd_buf_putc(b, '"');
		dd_buf_putc(b, *raw);
	}
	dd_buf_putc(b, '"');
}

/* A qualified name schema.name: its key "schema"."name" (caller frees), and the schema's raw text. */
static char *
qualified(const char **p, struct dd_buf *schema)
{
	struct dd_buf name = DD_BUF_INIT, key = DD_BUF_INIT;
	const char *s = *p;
	char *out = NULL;

	if (ident(&s, schema) && *s == '.' && (s++, ident(&s, &name))) {
		put_quoted(&key, dd_buf_cstr(schema));
		dd_buf_putc(&key, '.');
		put_quoted(&key, dd_buf_cstr(&name));
		out = dd_buf_detach(&key, NULL);
		*p = s;
	}
	dd_buf_release(&name);
	dd_buf_release(&key);
	return out;
}

/* The statement of an entry: past its header comment lines and session SET lines. */
static const char *
statement(const char *sql)
{
	const char *p = sql;

	while (*p) {
		size_t n = strcspn(p, "\n");
		if (n && strncmp(p, "--", 2) && strncmp(p, "SET ", 4))
			break;
		p += n + (p[n] ? 1 : 0);
	}
	return p;
}

/* What one post-data entry does, as far as the planner can tell. */
struct parsed {
	enum dd_plan_kind kind;
	int mapped;          /* table (and index / referenced table) known */
	int unique, excl;    /* KEY: builds a unique index; takes an exclusive lock */
	int stats;           /* a STATISTICS entry (REST): `table` is the one whose ANALYZE computes it */
	char *table, *index, *other; /* keys: the table; the index it builds (KEY) or the parent index (ATTACH);
					the referenced table (FK) or the partition's index (ATTACH) */
	char am[64];
};

static void
parse_index(const char *s, struct parsed *e, struct dd_buf *a, struct dd_buf *b)
{
	e->unique = tok(&s, "UNIQUE");
	if (!tok(&s, "INDEX") || !ident(&s, b) || !tok(&s, "ON"))
		return;
	tok(&s, "ONLY");
	if (!(e->table = qualified(&s, a)))
		return;
	struct dd_buf key = DD_BUF_INIT;
	put_quoted(&key, dd_buf_cstr(a));
	dd_buf_putc(&key, '.');
	put_quoted(&key, dd_buf_cstr(b));
	e->index = dd_buf_detach(&key, NULL);
	if (tok(&s, "USING") && ident(&s, b) && b->len < sizeof(e->am))
		memcpy(e->am, b->ptr, b->len + 1);
	e->mapped = 1;
	/* a second statement (ALTER TABLE ... CLUSTER ON / REPLICA IDENTITY USING INDEX) locks more than SHARE */
	const char *semi = strchr(s, ';');
	if (semi) {
		semi++;
		skip_ws(&semi);
		e->excl = *semi != '\0';
	}
}

/* ALTER TABLE [ONLY] t ADD CONSTRAINT c <kind> ... */
static void
parse_constraint(const char *s, struct parsed *e, struct dd_buf *a, struct dd_buf *b)
{
	tok(&s, "ONLY");
	if (!(e->table = qualified(&s, a)) || !tok(&s, "ADD CONSTRAINT") || !ident(&s, b))
		return;
	struct dd_buf key = DD_BUF_INIT;
	put_quoted(&key, dd_buf_cstr(a));
	dd_buf_putc(&key, '.');
	put_quoted(&key, dd_buf_cstr(b));
	e->index = dd_buf_detach(&key, NULL);
	e->excl = 1;
	if (tok(&s, "PRIMARY KEY") || tok(&s, "UNIQUE")) {
		e->kind = DD_PLAN_KEY, e->unique = 1, e->mapped = 1;
	} else if (tok(&s, "EXCLUDE")) {
		e->kind = DD_PLAN_KEY, e->mapped = 1;
		if (tok(&s, "USING") && ident(&s, b) && b->len < sizeof(e->am))
			memcpy(e->am, b->ptr, b->len + 1);
	} else if (tok(&s, "CHECK")) {
		e->kind = DD_PLAN_CHECK, e->mapped = 1;
	} else if (tok(&s, "FOREIGN KEY")) {
		e->kind = DD_PLAN_FK;
		skip_ws(&s);
		if (*s++ != '(')
			return;
		do {
			if (!ident(&s, b))
				return;
			skip_ws(&s);
		} while (*s == ',' && s++);
		if (*s++ != ')' || !tok(&s, "REFERENCES") || !(e->other = qualified(&s, a)))
			return;
		e->mapped = 1;
	}
}

/* CREATE STATISTICS name [(kinds)] ON columns or expressions FROM table */
static void
parse_statistics(const char *s, struct parsed *e, struct dd_buf *a)
{
	int depth = 0;

	for (; *s && *s != ';'; s++) {
		if (*s == '\'' || *s == '"') {
			const char *q = strchr(s + 1, *s);
			if (!q)
				return;
			s = q;
		} else if (*s == '(') {
			depth++;
		} else if (*s == ')') {
			depth--;
		} else if (!depth && !ident_char(s[-1]) && tok(&s, "FROM")) {
			tok(&s, "ONLY");
			if ((e->table = qualified(&s, a)))
				e->mapped = 1;
			return;
		}
	}
}

static void
parse_entry(const char *type, const char *sql, struct parsed *e)
{
	struct dd_buf a = DD_BUF_INIT, b = DD_BUF_INIT;
	const char *s = statement(sql);

	memset(e, 0, sizeof(*e));
	strcpy(e->am, "btree");
	if (!strcmp(type, "INDEX")) {
		e->kind = DD_PLAN_KEY;
		if (tok(&s, "CREATE"))
			parse_index(s, e, &a, &b);
	} else if (!strcmp(type, "CONSTRAINT") || !strcmp(type, "FK CONSTRAINT") || !strcmp(type, "CHECK CONSTRAINT")) {
		e->kind = !strcmp(type, "CONSTRAINT") ? DD_PLAN_KEY : !strcmp(type, "FK CONSTRAINT") ? DD_PLAN_FK
												 : DD_PLAN_REST;
		if (tok(&s, "ALTER TABLE"))
			parse_constraint(s, e, &a, &b);
		/* an entry that is not what its type says waits where its type's unmapped kind would */
		if (!strcmp(type, "CHECK CONSTRAINT") && e->kind != DD_PLAN_CHECK)
			e->kind = DD_PLAN_REST;
		if (!strcmp(type, "FK CONSTRAINT") && e->kind != DD_PLAN_FK)
			e->kind = DD_PLAN_FK, e->mapped = 0;
	} else if (!strcmp(type, "INDEX ATTACH")) {
		e->kind = DD_PLAN_ATTACH;
		if (tok(&s, "ALTER INDEX") && (e->index = qualified(&s, &a)) && tok(&s, "ATTACH PARTITION") &&
		    (e->other = qualified(&s, &a)))
			e->mapped = 1;
	} else {
		e->kind = DD_PLAN_REST;
		e->stats = !strcmp(type, "STATISTICS");
		if (e->stats && tok(&s, "CREATE STATISTICS"))
			parse_statistics(s, e, &a);
	}
	dd_buf_release(&a);
	dd_buf_release(&b);
}

static void
parsed_free(struct parsed *e)
{
	free(e->table);
	free(e->index);
	free(e->other);
}

double
dd_plan_am_factor(const char *am)
{
	/*
	 * Server CPU of CREATE INDEX (no parallel workers) relative to the COPY
	 * of the same table, measured on the bench data set at scale 5: btree
	 * 0.04-0.33 (0.15 typical: one or two columns of a wide row), GIN on
	 * jsonb 1.8. GiST and SP-GiST are taken as GIN-like (not measured),
	 * hash as btree, BRIN as almost free.
	 */
	static const struct { const char *am; double f; } f[] = {
		{ "btree", 0.15 }, { "hash", 0.15 }, { "gin", 1.8 }, { "gist", 1.8 }, { "spgist", 1.0 }, { "brin", 0.02 },
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (!strcmp(am, f[i].am))
			return f[i].f;
	return 1.8; /* an extension's method: as costly as GIN */
}

int
dd_plan_lock_conflict(enum dd_plan_lock a, enum dd_plan_lock b)
{
	if (a == DD_LOCK_EXCL || b == DD_LOCK_EXCL)
		return 1;
	if (a == b)
		return a == DD_LOCK_ANALYZE;
	if (a == DD_LOCK_ROWS || b == DD_LOCK_ROWS)
		return a == DD_LOCK_SHARE || b == DD_LOCK_SHARE;
	return 1; /* SHARE vs ANALYZE */
}

/* ---- building the graph ---- */

struct rel {
	size_t copy;               /* its COPY task, or NONE */
	uint64_t size, rows;
	size_t *fks, nfks;         /* FK tasks locking it (referencing or referenced) */
	size_t *keys, nkeys;       /* KEY tasks on it */
	size_t *xkeys, nxkeys;     /* those taking an exclusive lock (what a shared build waits for) */
	size_t *ukeys, nukeys;     /* those building a unique index (what an FK may reference) */
	int stats;                 /* extended statistics on it (created in the rest, computed by its ANALYZE) */
};

struct builder {
	struct dd_plan *p;
	size_t cap;
	struct smap rel_ids, index_task;
	struct rel *rels;
	size_t relcap;
	size_t b_copy, b_key, b_attach;
	int unmapped_key, unmapped_stats;
	char **ts, **am;           /* per entry: the default_tablespace / table access method it starts under */
};

static size_t
add_task(struct builder *b, enum dd_plan_kind kind, size_t ref, double cost)
{
	struct dd_plan *p = b->p;

	if (p->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		p->t = dd_realloc(p->t, b->cap * sizeof(*p->t));
	}
	memset(&p->t[p->n], 0, sizeof(p->t[p->n]));
	p->t[p->n].kind = kind, p->t[p->n].ref = ref, p->t[p->n].cost = cost;
	return p->n++;
}

static void
add_dep(struct builder *b, size_t task, size_t dep)
{
	struct dd_plan_task *t = &b->p->t[task];

	if (dep == NONE || dep >= task)
		return;
	for (size_t i = 0; i < t->ndeps; i++)
		if (t->deps[i] == dep)
			return;
	t->deps = dd_realloc(t->deps, (t->ndeps + 1) * sizeof(size_t));
	t->deps[t->ndeps++] = dep;
}

static void
add_lock(struct builder *b, size_t task, size_t rel, enum dd_plan_lock mode)
{
	struct dd_plan_task *t = &b->p->t[task];

	if (rel == NONE || t->nrel == 2)
		return;
	t->rel[t->nrel] = rel, t->mode[t->nrel++] = mode;
}

/* "SET <name> = value;" at line `l` (length n): the value, owned, or NULL. */
static char *
set_value(const char *l, size_t n, const char *name)
{
	size_t k = strlen(name);

	if (n < k + 8 || strncmp(l, "SET ", 4) || strncmp(l + 4, name, k) || strncmp(l + 4 + k, " = ", 3) ||
	    l[n - 1] != ';')
		return NULL;
	return dd_strndup(l + 7 + k, n - 8 - k);
}

/*
 * The session state each entry starts under. pg_dump writes SET
 * default_tablespace / default_table_access_method only where they change
 * (the splitter puts the line at the top of the entry that follows), but
 * the entries run out of order on several sessions: each task sets the
 * state its entry was dumped under. Entries 0..nen; [nen] the state after
 * the last. Before the preamble: '' and heap (as normalise.c starts).
 */
static void
plan_state(struct builder *b, const struct dd_schema_entry *en, size_t nen)
{
	char *ts = dd_strdup("''"), *am = dd_strdup("heap");

	b->ts = dd_calloc(nen + 1, sizeof(char *));
	b->am = dd_calloc(nen + 1, sizeof(char *));
	for (size_t i = 0; i <= nen; i++) {
		b->ts[i] = dd_strdup(ts), b->am[i] = dd_strdup(am);
		if (i == nen)
			break;
		/* the entry's own SET lines: those before its statement (all of the preamble's) */
		const char *end = i ? statement(en[i].sql) : en[i].sql + strlen(en[i].sql);
		for (const char *l = en[i].sql; l < end;) {
			size_t n = strcspn(l, "\n");
			char *v;
			if ((v = set_value(l, n, "default_tablespace")))
				free(ts), ts = v;
			else if ((v = set_value(l, n, "default_table_access_method")))
				free(am), am = v;
			l += n + (l[n] ? 1 : 0);
		}
	}
	free(ts);
	free(am);
}

static void
put_state(struct dd_buf *o, const char *ts, const char *am)
{
	dd_buf_printf(o, "SET default_tablespace = %s;\nSET default_table_access_method = %s;\n", ts, am);
}

/* Task t runs entry i: its text after the state it was dumped under (owned by the task). */
static void
entry_sql(struct builder *b, size_t t, const struct dd_schema_entry *en, size_t i)
{
	struct dd_buf o = DD_BUF_INIT;

	put_state(&o, b->ts[i], b->am[i]);
	dd_buf_puts(&o, en[i].sql);
	b->p->t[t].sql = b->p->t[t].own = dd_buf_detach(&o, NULL);
}

/* The id of relation `key` ("s"."n"), made when new. */
static size_t
rel_id(struct builder *b, const char *key)
{
	size_t *v = smap_slot(&b->rel_ids, key, 1);

	if (*v == NONE) {
		if (b->p->nrels == b->relcap) {
			b->relcap = b->relcap ? b->relcap * 2 : 64;
			b->rels = dd_realloc(b->rels, b->relcap * sizeof(*b->rels));
		}
		memset(&b->rels[b->p->nrels], 0, sizeof(*b->rels));
		b->rels[b->p->nrels].copy = NONE;
		*v = b->p->nrels++;
	}
	return *v;
}

/* The key of a format('%I.%I') name, or NULL. */
static char *
name_key(const char *name)
{
	struct dd_buf schema = DD_BUF_INIT;
	const char *s = name;
	char *k = qualified(&s, &schema);

	dd_buf_release(&schema);
	if (k && *s) {
		free(k);
		k = NULL;
	}
	return k;
}

static void
push(size_t **v, size_t *n, size_t x)
{
	*v = dd_realloc(*v, (*n + 1) * sizeof(size_t));
	(*v)[(*n)++] = x;
}

static void
label(struct dd_plan_task *t, const char *type, const struct parsed *e)
{
	if (!e || !e->mapped)
		t->label = dd_asprintf("%s (unmapped)", type);
	else if (t->kind == DD_PLAN_ATTACH)
		t->label = dd_asprintf("%s %s TO %s", type, e->other, e->index);
	else if (t->kind == DD_PLAN_FK)
		t->label = dd_asprintf("%s %s ON %s REFERENCES %s", type, e->index, e->table, e->other);
	else
		t->label = dd_asprintf("%s %s ON %s", type, e->index ? e->index : "", e->table);
}

static void
plan_rows(struct builder *b, const struct dd_plan_stream *streams, size_t nstreams)
{
	for (size_t i = 0; i < nstreams; i++) {
		char *k = streams[i].table ? name_key(streams[i].table) : NULL;
		size_t t = add_task(b, streams[i].table ? DD_PLAN_COPY : DD_PLAN_LO, i, (double)streams[i].size);
		b->p->t[t].label = streams[i].table ? dd_asprintf("COPY %s", k ? k : streams[i].table)
						    : dd_strdup("LARGE OBJECTS");
		if (k) {
			size_t r = rel_id(b, k);
			if (b->rels[r].copy == NONE) {
				b->rels[r].copy = t, b->rels[r].size = streams[i].size, b->rels[r].rows = streams[i].rows;
				add_lock(b, t, r, DD_LOCK_ROWS);
			}
		}
		free(k);
	}
	b->b_copy = add_task(b, DD_PLAN_BARRIER, 0, 0);
	b->p->t[b->b_copy].label = dd_strdup("all rows loaded");
	for (size_t i = 0; i < b->b_copy; i++)
		add_dep(b, b->b_copy, i);
}

/* The COPY a task on relation key `k` waits for: its own, or all of them. */
static size_t
rows_of(struct builder *b, const char *k, size_t *rel)
{
	size_t r = k ? smap_get(&b->rel_ids, k) : NONE;

	*rel = k ? rel_id(b, k) : NONE;
	return r != NONE && b->rels[r].copy != NONE ? b->rels[r].copy : b->b_copy;
}

/* One KEY task for entry i; exclusive ones first on their table (they cannot overlap a shared one there anyway). */
static void
plan_key(struct builder *b, const struct dd_schema_entry *en, size_t i, struct parsed *e)
{
	size_t r, dep = e->mapped ? rows_of(b, e->table, &r) : (r = NONE, b->b_copy);
	double size = r != NONE && dep != b->b_copy ? (double)b->rels[r].size : 0;
	size_t t = add_task(b, DD_PLAN_KEY, i, size * dd_plan_am_factor(e->am));

	entry_sql(b, t, en, i);
	label(&b->p->t[t], en[i].type, e);
	add_dep(b, t, dep);
	if (!e->mapped) {
		b->unmapped_key = 1;
		return;
	}
	/* a shared build waits for the exclusive keys only: the table's shared builds run side by side */
	if (!e->excl)
		for (size_t k = 0; k < b->rels[r].nxkeys; k++)
			add_dep(b, t, b->rels[r].xkeys[k]);
	add_lock(b, t, r, e->excl ? DD_LOCK_EXCL : DD_LOCK_SHARE);
	push(&b->rels[r].keys, &b->rels[r].nkeys, t);
	if (e->excl)
		push(&b->rels[r].xkeys, &b->rels[r].nxkeys, t);
	if (e->unique)
		push(&b->rels[r].ukeys, &b->rels[r].nukeys, t);
	size_t *v = smap_slot(&b->index_task, e->index, 1);
	*v = t;
}

/*
 * The KEY tasks: the exclusive ones (ALTER TABLE ... ADD CONSTRAINT) first,
 * then the shared ones (CREATE INDEX) after those of their table, so the
 * indexes of a table build side by side once its constraints are in,
 * rather than a constraint waiting alone at the end for the last of them.
 */
static void
plan_keys(struct builder *b, const struct dd_schema_entry *en, size_t nen, struct parsed *pe)
{
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 1; i < nen; i++)
			if (pe[i].kind == DD_PLAN_KEY && (pass == 0) == (pe[i].excl || !pe[i].mapped))
				plan_key(b, en, i, &pe[i]);
	b->b_key = add_task(b, DD_PLAN_BARRIER, 0, 0);
	b->p->t[b->b_key].label = dd_strdup("all indexes and constraints built");
	for (size_t i = b->b_copy; i < b->b_key; i++)
		add_dep(b, b->b_key, i);
}

static void
plan_attach(struct builder *b, const struct dd_schema_entry *en, size_t nen, struct parsed *pe)
{
	for (size_t i = 1; i < nen; i++) {
		struct parsed *e = &pe[i];
		if (e->kind != DD_PLAN_ATTACH)
			continue;
		size_t t = add_task(b, DD_PLAN_ATTACH, i, 0);
		size_t parent = e->mapped ? smap_get(&b->index_task, e->index) : NONE;
		size_t child = e->mapped ? smap_get(&b->index_task, e->other) : NONE;
		entry_sql(b, t, en, i);
		label(&b->p->t[t], en[i].type, e);
		if (parent == NONE || child == NONE) {
			add_dep(b, t, b->b_key);
			continue;
		}
		add_dep(b, t, parent);
		add_dep(b, t, child);
		for (int k = 0; k < 2; k++) {
			const struct dd_plan_task *it = &b->p->t[k ? child : parent];
			add_lock(b, t, it->nrel ? it->rel[0] : NONE, DD_LOCK_EXCL);
		}
	}
	b->b_attach = add_task(b, DD_PLAN_BARRIER, 0, 0);
	b->p->t[b->b_attach].label = dd_strdup("all indexes attached");
	for (size_t i = b->b_key; i < b->b_attach; i++)
		add_dep(b, b->b_attach, i);
}

static void
plan_fk(struct builder *b, const struct dd_schema_entry *en, size_t nen, struct parsed *pe)
{
	for (size_t i = 1; i < nen; i++) {
		struct parsed *e = &pe[i];
		if (e->kind != DD_PLAN_FK)
			continue;
		size_t t = add_task(b, DD_PLAN_FK, i, 0);
		entry_sql(b, t, en, i);
		label(&b->p->t[t], en[i].type, e);
		if (!e->mapped) {
			add_dep(b, t, b->b_attach);
			continue;
		}
		size_t rt, ru, ct = rows_of(b, e->table, &rt), cu = rows_of(b, e->other, &ru);
		add_dep(b, t, ct);
		add_dep(b, t, cu);
		/* the referenced key: its unique indexes, all of them wherever one may be hidden */
		if (cu == b->b_copy || b->unmapped_key)
			add_dep(b, t, b->b_attach);
		else
			for (size_t k = 0; k < b->rels[ru].nukeys; k++)
				add_dep(b, t, b->rels[ru].ukeys[k]);
		b->p->t[t].cost = 0.1 * (double)(b->rels[rt].size + b->rels[ru].size);
		add_lock(b, t, rt, DD_LOCK_EXCL);
		push(&b->rels[rt].fks, &b->rels[rt].nfks, t);
		if (ru != rt) {
			add_lock(b, t, ru, DD_LOCK_EXCL);
			push(&b->rels[ru].fks, &b->rels[ru].nfks, t);
		}
	}
}

static void
plan_rest(struct builder *b, const struct dd_schema_entry *en, size_t nen, struct parsed *pe, int has_seq)
{
	struct dd_buf rest = DD_BUF_INIT;
	size_t n = 0;
	const char *ts = NULL, *am = NULL; /* the state the script runs under so far */

	for (size_t i = 1; i < nen; i++) {
		struct parsed *e = &pe[i];
		if (e->kind == DD_PLAN_CHECK) {
			size_t r, t = add_task(b, DD_PLAN_CHECK, i, 0);
			entry_sql(b, t, en, i);
			label(&b->p->t[t], en[i].type, e);
			add_dep(b, t, b->b_copy);
			rows_of(b, e->table, &r);
			add_lock(b, t, r, DD_LOCK_EXCL);
		} else if (e->kind == DD_PLAN_REST) {
			if (e->stats && e->mapped)
				b->rels[rel_id(b, e->table)].stats = 1;
			else if (e->stats)
				b->unmapped_stats = 1;
			/* the state before its first entry, and again wherever entries run elsewhere changed it */
			if (!ts || strcmp(ts, b->ts[i]) || strcmp(am, b->am[i]))
				put_state(&rest, b->ts[i], b->am[i]);
			dd_buf_puts(&rest, en[i].sql);
			ts = b->ts[i + 1], am = b->am[i + 1];
			n++;
		}
	}
	if (has_seq) {
		size_t t = add_task(b, DD_PLAN_SEQ, 0, 0);
		b->p->t[t].label = dd_strdup("SEQUENCE VALUES");
		add_dep(b, t, b->b_copy);
	}
	size_t t = add_task(b, DD_PLAN_REST, 0, 0);
	b->p->t[t].label = dd_asprintf("POST-DATA REST (%zu entries in order)", n);
	b->p->t[t].sql = b->p->t[t].own = dd_buf_detach(&rest, NULL);
	if (!b->p->t[t].sql)
		b->p->t[t].sql = b->p->t[t].own = dd_strdup("");
	add_dep(b, t, b->b_attach);
	for (size_t i = b->b_attach + 1; i < t; i++)
		add_dep(b, t, i);
}

/*
 * ANALYZE reads up to 30000 pages and computes statistics on a sample of
 * 300 x default_statistics_target (100) rows: a part per byte read and a
 * part per sampled row. Server CPU measured at bench scale 5 against the
 * COPY of the same table: 0.19x (pgbench_accounts, 500k narrow rows), 0.57x
 * (events), 1.39x (documents, 30k wide rows, all sampled).
 */
static double
analyze_cost(const struct rel *r)
{
	double size = r ? (double)r->size : 0, sampled = size;

	if (r && r->rows > 30000)
		sampled *= 30000.0 / (double)r->rows;
	return 0.2 * (size < 256e6 ? size : 256e6) + 1.1 * sampled;
}

static void
plan_analyze(struct builder *b, const struct dd_plan_rel *rels, size_t nrels, size_t rest)
{
	int mv = 0;

	for (size_t i = 0; i < nrels; i++) {
		if (rels[i].kind == 'm') {
			mv = 1;
			continue;
		}
		char *k = name_key(rels[i].name);
		size_t r = k ? smap_get(&b->rel_ids, k) : NONE;
		const struct rel *R = r != NONE ? &b->rels[r] : NULL;
		size_t t = add_task(b, DD_PLAN_ANALYZE, i, analyze_cost(R));
		b->p->t[t].label = dd_asprintf("ANALYZE %s", k ? k : rels[i].name);
		b->p->t[t].sql = b->p->t[t].own = dd_asprintf("ANALYZE %s", rels[i].name);
		/* CREATE STATISTICS is in the rest: ANALYZE after it, or the statistics stay empty */
		if (b->unmapped_stats || (R && R->stats))
			add_dep(b, t, rest);
		if (!k || rels[i].kind != 'r') {
			add_dep(b, t, b->b_attach);
		} else {
			add_dep(b, t, R && R->copy != NONE ? R->copy : b->b_copy);
			/* an inheritance parent's statistics cover its children: all rows first */
			if (rels[i].children)
				add_dep(b, t, b->b_copy);
			/* and after its foreign keys, which are on the way to the rest (ANALYZE is not) */
			for (size_t j = 0; R && j < R->nkeys; j++)
				add_dep(b, t, R->keys[j]);
			for (size_t j = 0; R && j < R->nfks; j++)
				add_dep(b, t, R->fks[j]);
		}
		add_lock(b, t, r, DD_LOCK_ANALYZE);
		free(k);
	}
	if (mv) {
		size_t t = add_task(b, DD_PLAN_ANALYZE_MV, 0, 0);
		b->p->t[t].label = dd_strdup("ANALYZE MATERIALIZED VIEWS");
		add_dep(b, t, rest);
	}
}

/* Priority: own cost + the costliest chain waiting on it; and the dependents' lists. */
static void
plan_order(struct dd_plan *p)
{
	double *tail = dd_calloc(p->n + 1, sizeof(double));

	for (size_t i = p->n; i-- > 0;) {
		p->t[i].prio = p->t[i].cost + tail[i];
		for (size_t d = 0; d < p->t[i].ndeps; d++)
			if (tail[p->t[i].deps[d]] < p->t[i].prio)
				tail[p->t[i].deps[d]] = p->t[i].prio;
	}
	free(tail);
	p->user_at = dd_calloc(p->n + 2, sizeof(size_t));
	for (size_t i = 0; i < p->n; i++)
		for (size_t d = 0; d < p->t[i].ndeps; d++)
			p->user_at[p->t[i].deps[d] + 1]++;
	for (size_t i = 0; i < p->n; i++)
		p->user_at[i + 1] += p->user_at[i];
	size_t *fill = dd_calloc(p->n + 1, sizeof(size_t));
	p->users = dd_calloc(p->user_at[p->n] + 1, sizeof(size_t));
	for (size_t i = 0; i < p->n; i++)
		for (size_t d = 0; d < p->t[i].ndeps; d++) {
			size_t u = p->t[i].deps[d];
			p->users[p->user_at[u] + fill[u]++] = i;
		}
	free(fill);
}

void
dd_plan_build(struct dd_plan *p, const struct dd_plan_stream *streams, size_t nstreams,
	      const struct dd_schema_entry *entries, size_t nentries, const struct dd_plan_rel *rels, size_t nrels,
	      int has_seq)
{
	struct builder b;
	struct parsed *pe = dd_calloc(nentries + 1, sizeof(*pe));

	memset(p, 0, sizeof(*p));
	memset(&b, 0, sizeof(b));
	b.p = p;
	for (size_t i = 1; i < nentries; i++)
		parse_entry(entries[i].type, entries[i].sql, &pe[i]);
	plan_state(&b, entries, nentries);
	plan_rows(&b, streams, nstreams);
	plan_keys(&b, entries, nentries, pe);
	plan_attach(&b, entries, nentries, pe);
	plan_fk(&b, entries, nentries, pe);
	plan_rest(&b, entries, nentries, pe, has_seq);
	plan_analyze(&b, rels, nrels, p->n - 1);
	plan_order(p);
	for (size_t i = 1; i < nentries; i++)
		parsed_free(&pe[i]);
	free(pe);
	for (size_t i = 0; i < p->nrels; i++) {
		free(b.rels[i].keys);
		free(b.rels[i].xkeys);
		free(b.rels[i].fks);
		free(b.rels[i].ukeys);
	}
	free(b.rels);
	for (size_t i = 0; i <= nentries; i++) {
		free(b.ts[i]);
		free(b.am[i]);
	}
	free(b.ts);
	free(b.am);
	smap_free(&b.rel_ids);
	smap_free(&b.index_task);
}

void
dd_plan_free(struct dd_plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->t[i].deps);
		free(p->t[i].own);
		free(p->t[i].label);
	}
	free(p->t);
	free(p->users);
	free(p->user_at);
	memset(p, 0, sizeof(*p));
}
