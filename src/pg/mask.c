/*
 * pg/mask.c: masking rules -> each masked table's select list (issue 21).
 *
 * The rules (struct dd_pg_mask_rule, pg.h) are resolved in the leader's
 * exported snapshot against the tables the dump reads: a rule names one
 * table (without a schema, exactly one dumped table of that name) and
 * one of its columns, and applies to that table and its partitions or
 * inheritance children. A masked column's value in the COPY is
 * `(<expression>)::<its type> AS <its name>`, computed by the server, so
 * an unmasked value never reaches this process, the cache or the store.
 *
 * hash and fake_* are keyed: HMAC-SHA256 in plain SQL (the built-in
 * sha256(), PostgreSQL 11 or newer) with the inner and outer padded keys
 * computed here from the store's mask subkey and handed to each session
 * only as query parameters of set_config() (dd_pg_mask_session), so the
 * key is in no SQL text, pg_stat_activity or process title, and
 * transaction-local, so it is gone when the snapshot's transaction ends
 * (and when the server would log that statement's parameters, with
 * log_parameter_max_length = 0 set first for it, or refused):
 *   HMAC(m) = sha256(Ko || sha256(Ki || m)),
 * Ki, Ko = key padded to 64 bytes XOR 0x36 / 0x5c, in the session
 * settings dnadata.mask_i and dnadata.mask_o (hex). A text value masks to
 * the same text wherever it is; an integer goes through a keyed Feistel
 * permutation of its type's range (4 rounds on the two halves, round
 * function from the HMAC), so a unique column stays unique and a join on
 * a hashed key still matches. Formats in docs/FORMAT.md §7, "Masked columns".
 *
 * Every error names the rule as written and its profiles.ini line.
 * Constraint checks (dd_pg_mask_check) run over the masked rows before
 * any COPY: UNIQUE, CHECK, foreign keys. A masked partition key column is
 * refused (the rows would leave their partitions), and so is one in an
 * exclusion constraint (not checked). The checks read the masked rows
 * with each generated column computed again over them, as the restore.
 */
#include "pg/internal.h"
#include "pg/pg.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/hex.h"
#include "util/log.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The HMAC of bytea expression `m` (a printf format piece with one %s). */
#define HMAC_OPEN                                                                                              \
	"sha256(decode(current_setting('dnadata.mask_o'), 'hex') || "                                          \
	"sha256(decode(current_setting('dnadata.mask_i'), 'hex') || "
#define HMAC_CLOSE "))"

/* What a column's type is for the built-in rules (its domain's base type when it is a domain). */
enum tclass { T_OTHER, T_TEXT, T_INT2, T_INT4, T_INT8, T_NUM, T_DATE, T_TS, T_TIME, T_BOOL, T_UUID, T_JSON, T_BYTEA };

struct col {
	char *qname, *name, *type;  /* quote_ident(), raw, format_type() */
	enum tclass cls;
	int notnull, generated, in_pk;
	const struct dd_pg_mask_rule *rule; /* NULL: not masked */
	char *expr;                         /* the value expression in the COPY (masked, or qname) */
	char *gexpr;                        /* a generated column's expression (pg_get_expr()), or NULL */
	const struct dd_pg_mask_rule *dep;  /* a generated column computed from a masked one: that one's rule */
};

struct mtab {
	unsigned oid;
	char relkind;             /* 'r' (its COPY is masked), or 'p' (partitioned: for the constraint checks) */
	char *qname, *relname;
	struct col *cols;
	size_t ncols;
	char *sel;                /* the select list, generated columns left out (as the catalog's list) */
	char **exprs;             /* the same, one value expression per dumped column, NULL-terminated */
	char *rows;               /* the masked rows as the checks read them, generated columns computed again */
	int key_masked;
	int depends;              /* an sql: rule: its values may depend on functions or other tables */
};

struct dd_pg_masks {
	struct mtab *tabs;
	size_t ntabs;
	const unsigned char *key;
};

static const char cols_sql[] =
	"SELECT quote_ident(a.attname), a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
	" a.attgenerated <> '', CASE WHEN b.typnamespace = 'pg_catalog'::regnamespace THEN b.typname ELSE '' END,"
	" COALESCE(a.attnum = ANY ((SELECT i.indkey FROM pg_index i WHERE i.indrelid = a.attrelid"
	"   AND i.indisprimary)::int2[]), false),"
	" CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END"
	" FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
	" LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
	" JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END"
	" WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";

static enum tclass
classify(const char *t)
{
	static const struct {
		const char *name;
		enum tclass cls;
	} map[] = { { "text", T_TEXT },	      { "varchar", T_TEXT },	 { "bpchar", T_TEXT },	 { "name", T_TEXT },
		    { "int2", T_INT2 },	      { "int4", T_INT4 },	 { "int8", T_INT8 },	 { "numeric", T_NUM },
		    { "float4", T_NUM },      { "float8", T_NUM },	 { "money", T_NUM },	 { "date", T_DATE },
		    { "timestamp", T_TS },    { "timestamptz", T_TS },	 { "time", T_TIME },	 { "timetz", T_TIME },
		    { "bool", T_BOOL },	      { "uuid", T_UUID },	 { "json", T_JSON },	 { "jsonb", T_JSON },
		    { "bytea", T_BYTEA } };

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(map[i].name, t))
			return map[i].cls;
	return T_OTHER;
}

/* "profiles.ini:12: mask = users.email fake_email: " before every message about a rule. */
static int
rule_error(const struct dd_pg_mask_rule *r, const char *what)
{
	return dd_error("profiles.ini:%zu: mask = %s: %s", r->line, r->text, what);
}

/* The keyed Feistel permutation of a `bits`-bit integer column (16, 32, 64): 4 rounds on its halves. */
static void
feistel(struct dd_buf *out, const char *qcol, int bits)
{
	int h = bits / 2;
	unsigned long long mask = (1ULL << h) - 1;
	struct dd_buf in = DD_BUF_INIT;

	if (bits == 64)
		dd_buf_printf(&in, "SELECT (%s::int8 >> 32) & %llu AS l, %s::int8 & %llu AS r OFFSET 0", qcol, mask, qcol,
			      mask);
	else
		dd_buf_printf(&in, "SELECT (%s::int8 & %llu) >> %d AS l, %s::int8 & %llu AS r OFFSET 0", qcol,
			      (1ULL << bits) - 1, h, qcol, mask);
	for (int round = 1; round <= 4; round++) {
		struct dd_buf next = DD_BUF_INIT;
		/* each level a subquery behind OFFSET 0, so that the planner computes every round once */
		dd_buf_printf(&next,
			      "SELECT r AS l, l # (('x' || left(encode(" HMAC_OPEN "convert_to('%d:%d:' || r::text, "
			      "'UTF8')" HMAC_CLOSE ", 'hex'), 16))::bit(64)::int8 & %llu) AS r FROM (%s) f%d OFFSET 0",
			      round, bits, mask, dd_buf_cstr(&in), round);
		dd_buf_release(&in);
		in = next;
	}
	if (bits == 64)
		dd_buf_printf(out, "(SELECT (l << 32) | r FROM (%s) f)", dd_buf_cstr(&in));
	else /* back to the signed range: flip the sign bit, subtract it */
		dd_buf_printf(out, "(SELECT (((l << %d) | r) # %llu) - %llu FROM (%s) f)", h, 1ULL << (bits - 1),
			      1ULL << (bits - 1), dd_buf_cstr(&in));
	dd_buf_release(&in);
}

static const char first_names[] =
	"ARRAY['Alex','Blake','Casey','Dana','Eli','Frankie','Gray','Harper','Indy','Jamie','Kai','Lee','Morgan',"
	"'Noel','Oakley','Parker','Quinn','Riley','Sage','Taylor','Uma','Val','Wren','Xan','Yael','Zion','Ari',"
	"'Bo','Cam','Drew','Emery','Finley']";
static const char last_names[] =
	"ARRAY['Archer','Baker','Carter','Dalton','Ellis','Fisher','Garcia','Hayes','Irwin','Jensen','Keller',"
	"'Lopez','Miller','Nguyen','Olsen','Patel','Quinn','Reyes','Smith','Turner','Underwood','Vance','Walker',"
	"'Xu','Young','Zimmer','Abbott','Brooks','Cruz','Dunn','Evans','Foster']";

/* The masked value of column c (before the cast to its type) under rule r; -1 (error naming the rule). */
static int
rule_expr(const struct dd_pg_mask_rule *r, const struct col *c, struct dd_buf *out)
{
	static const char *const redact[] = { [T_TEXT] = "REDACTED",
					      [T_INT2] = "0",
					      [T_INT4] = "0",
					      [T_INT8] = "0",
					      [T_NUM] = "0",
					      [T_DATE] = "1970-01-01",
					      [T_TS] = "1970-01-01 00:00:00+00",
					      [T_TIME] = "00:00:00",
					      [T_BOOL] = "false",
					      [T_UUID] = "00000000-0000-0000-0000-000000000000",
					      [T_JSON] = "{}",
					      [T_BYTEA] = "" };
	char *why;
	const char *fake = r->kind == DD_PG_MASK_FAKE_EMAIL ? "email:" : r->kind == DD_PG_MASK_FAKE_NAME ? "name:"
												: "phone:";

	switch (r->kind) {
	case DD_PG_MASK_NULL:
		if (c->notnull || c->in_pk)
			return rule_error(r, "the column is NOT NULL: null would break the constraint (use redact, hash "
					     "or sql:)");
		dd_buf_puts(out, "NULL");
		return 0;
	case DD_PG_MASK_REDACT:
		if (c->cls == T_OTHER)
			break;
		dd_buf_printf(out, "CASE WHEN %s IS NULL THEN NULL ELSE '%s' END", c->qname, redact[c->cls]);
		return 0;
	case DD_PG_MASK_HASH:
		if (c->cls == T_TEXT)
			dd_buf_printf(out, "encode(" HMAC_OPEN "convert_to(%s::text, 'UTF8')" HMAC_CLOSE ", 'hex')",
				      c->qname);
		else if (c->cls == T_INT2 || c->cls == T_INT4 || c->cls == T_INT8)
			feistel(out, c->qname, c->cls == T_INT2 ? 16 : c->cls == T_INT4 ? 32 : 64);
		else if (c->cls == T_UUID)
			dd_buf_printf(out,
				      "encode(substr(" HMAC_OPEN "convert_to(%s::text, 'UTF8')" HMAC_CLOSE ", 1, 16), 'hex')",
				      c->qname);
		else
			break;
		return 0;
	case DD_PG_MASK_FAKE_EMAIL:
	case DD_PG_MASK_FAKE_NAME:
	case DD_PG_MASK_FAKE_PHONE:
		if (c->cls != T_TEXT)
			break;
		if (r->kind == DD_PG_MASK_FAKE_EMAIL)
			dd_buf_printf(out,
				      "'user-' || left(encode(" HMAC_OPEN "convert_to('%s' || %s::text, 'UTF8')" HMAC_CLOSE
				      ", 'hex'), 16) || '@example.com'",
				      fake, c->qname);
		else if (r->kind == DD_PG_MASK_FAKE_NAME)
			dd_buf_printf(out,
				      "(SELECT (%s)[1 + get_byte(h, 0) %% 32] || ' ' || (%s)[1 + get_byte(h, 1) %% 32] FROM "
				      "(SELECT " HMAC_OPEN "convert_to('%s' || %s::text, 'UTF8')" HMAC_CLOSE
				      " AS h OFFSET 0) f)",
				      first_names, last_names, fake, c->qname);
		else
			dd_buf_printf(out,
				      "(SELECT '+1 555 01' || lpad((get_byte(h, 0) %% 100)::text, 2, '0') || ' ' || "
				      "lpad(((get_byte(h, 1) * 256 + get_byte(h, 2)) %% 10000)::text, 4, '0') FROM "
				      "(SELECT " HMAC_OPEN "convert_to('%s' || %s::text, 'UTF8')" HMAC_CLOSE
				      " AS h OFFSET 0) f)",
				      fake, c->qname);
		return 0;
	case DD_PG_MASK_SQL:
		/* on lines of its own: a trailing "--" comment cannot swallow the rest of the COPY */
		dd_buf_printf(out, "\n%s\n", r->expr);
		return 0;
	}
	why = dd_asprintf("rule %s does not apply to column %s of type %s (use sql:<expression>)",
			  r->kind == DD_PG_MASK_REDACT	 ? "redact"
			  : r->kind == DD_PG_MASK_HASH	 ? "hash"
			  : r->kind == DD_PG_MASK_FAKE_EMAIL ? "fake_email"
			  : r->kind == DD_PG_MASK_FAKE_NAME	 ? "fake_name"
							 : "fake_phone",
			  c->name, c->type);
	rule_error(r, why);
	free(why);
	return -1;
}

static void
mtab_free(struct mtab *t)
{
	for (size_t i = 0; i < t->ncols; i++) {
		free(t->cols[i].qname);
		free(t->cols[i].name);
		free(t->cols[i].type);
		free(t->cols[i].expr);
		free(t->cols[i].gexpr);
	}
	free(t->cols);
	free(t->exprs); /* its strings are the columns' */
	free(t->sel);
	free(t->rows);
	free(t->qname);
	free(t->relname);
}

void
dd_pg_masks_free(struct dd_pg_masks *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->ntabs; i++)
		mtab_free(&m->tabs[i]);
	free(m->tabs);
	free(m);
}

/*
 * Is `anc` table tabs[t] itself or one of its ancestors (partitions, inheritance)? Each table is
 * looked at once per question (seen[j] == gen), so multiple inheritance costs its edges, not its paths,
 * which double with every diamond of a lattice.
 */
static int
descends(const struct dd_pg_mask_table *tabs, size_t n, size_t t, unsigned anc, uint64_t *seen, uint64_t gen,
	 int depth)
{
	if (tabs[t].oid == anc)
		return 1;
	seen[t] = gen;
	for (size_t i = 0; i < tabs[t].nparents && depth < DD_PG_MAX_INHERIT_DEPTH; i++)
		for (size_t j = 0; j < n; j++)
			if (seen[j] != gen && tabs[j].oid == tabs[t].parents[i] &&
			    descends(tabs, n, j, anc, seen, gen, depth + 1))
				return 1;
	return 0;
}

/* The table rule r names: its index in tabs, or -1 (error naming the rule). */
static long
find_table(const struct dd_pg_mask_rule *r, const struct dd_pg_mask_table *tabs, size_t n)
{
	long found = -1;
	size_t count = 0;
	char *why;

	for (size_t i = 0; i < n; i++) {
		if ((tabs[i].relkind != 'r' && tabs[i].relkind != 'p') || strcmp(tabs[i].relname, r->table) ||
		    (r->schema && strcmp(tabs[i].nspname, r->schema)))
			continue;
		if (count++ == 0)
			found = (long)i;
	}
	if (count == 1)
		return found;
	if (count == 0)
		why = r->schema ? dd_asprintf("no table %s.%s in the database", r->schema, r->table)
				: dd_asprintf("no table %s in the database", r->table);
	else
		why = dd_asprintf("%zu tables are called %s (in schemas %s and others): name its schema "
				  "(schema.table.column)",
				  count, r->table, tabs[found].nspname);
	rule_error(r, why);
	free(why);
	return -1;
}

/* Read table t's columns into mt. */
static int
read_columns(PGconn *c, const struct dd_pg_mask_table *t, struct mtab *mt)
{
	char oid[16];
	const char *params[] = { oid };
	PGresult *res;

	snprintf(oid, sizeof(oid), "%u", t->oid);
	if (!(res = dd_pg_query(c, cols_sql, 1, params)))
		return dd_error_wrap("reading the columns of %s", t->qname);
	mt->ncols = (size_t)PQntuples(res);
	mt->cols = dd_calloc(mt->ncols + 1, sizeof(*mt->cols));
	for (size_t i = 0; i < mt->ncols; i++) {
		struct col *cl = &mt->cols[i];
		int row = (int)i;
		cl->qname = dd_strdup(PQgetvalue(res, row, 0));
		cl->name = dd_strdup(PQgetvalue(res, row, 1));
		cl->type = dd_strdup(PQgetvalue(res, row, 2));
		cl->notnull = PQgetvalue(res, row, 3)[0] == 't';
		cl->generated = PQgetvalue(res, row, 4)[0] == 't';
		cl->cls = classify(PQgetvalue(res, row, 5));
		cl->in_pk = PQgetvalue(res, row, 6)[0] == 't';
		cl->gexpr = PQgetisnull(res, row, 7) ? NULL : dd_strdup(PQgetvalue(res, row, 7));
	}
	PQclear(res);
	return 0;
}

/*
 * Check a masked column's expression before any COPY: PQprepare of
 * SELECT <it> FROM ONLY <table> (the extended protocol takes one
 * statement), which must give one column and take no parameter.
 */
static int
check_expr(PGconn *c, const struct mtab *mt, const struct col *cl)
{
	char *sql = dd_asprintf("SELECT %s FROM ONLY %s", cl->expr, mt->qname), *why = NULL;
	PGresult *res = PQprepare(c, "", sql, 0, NULL);
	int rc = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		why = dd_asprintf("the expression fails on %s: %s", mt->qname, msg ? msg : PQerrorMessage(c));
	} else {
		PQclear(res);
		res = PQdescribePrepared(c, "");
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			rc = dd_pg_error(c, res);
		else if (PQnfields(res) != 1 || PQnparams(res) != 0)
			why = dd_strdup("the expression must be one value over the row's columns");
	}
	if (why) {
		rc = rule_error(cl->rule, why);
		dd_hint("correct the rule in .dnadata/profiles.ini; nothing was captured");
	}
	PQclear(res);
	free(why);
	free(sql);
	return rc;
}

/* Can c be part of an identifier (a column name in a deparsed expression cannot continue with it)? */
static int
ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$' ||
	       (unsigned char)c >= 0x80;
}

/*
 * Does deparsed expression `expr` (pg_get_expr()) mention column `qname`
 * (its quote_ident() form)? Conservative: the name inside a string
 * constant counts too, so a column it uses is never missed.
 */
static int
mentions(const char *expr, const char *qname)
{
	size_t n = strlen(qname);

	for (const char *p = strstr(expr, qname); p; p = strstr(p + 1, qname))
		if ((p == expr || !ident_char(p[-1])) && !ident_char(p[n]))
			return 1;
	return 0;
}

/* The partition keys over table $1's rows: its own and its ancestors' columns, and their key expressions. */
static const char partkey_sql[] =
	"WITH RECURSIVE up(oid) AS (SELECT $1::oid UNION SELECT i.inhparent FROM pg_inherits i JOIN up ON"
	" i.inhrelid = up.oid)"
	" SELECT a.attname, NULL, format('%I.%I', n.nspname, x.relname) FROM up"
	" JOIN pg_partitioned_table p ON p.partrelid = up.oid JOIN pg_class x ON x.oid = p.partrelid"
	" JOIN pg_namespace n ON n.oid = x.relnamespace"
	" JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = ANY (p.partattrs::int2[])"
	" UNION ALL SELECT NULL, pg_get_expr(p.partexprs, p.partrelid), format('%I.%I', n.nspname, x.relname) FROM up"
	" JOIN pg_partitioned_table p ON p.partrelid = up.oid JOIN pg_class x ON x.oid = p.partrelid"
	" JOIN pg_namespace n ON n.oid = x.relnamespace WHERE p.partexprs IS NOT NULL";

/*
 * A masked column in a partition key (of the table or of an ancestor,
 * a column or in a key expression) would move the masked rows out of
 * their partition, and the restore would fail: refused, naming the rule.
 */
static int
check_partition_key(PGconn *c, const struct mtab *mt)
{
	char oid[16];
	const char *params[] = { oid };
	PGresult *res;
	int rc = 0;

	snprintf(oid, sizeof(oid), "%u", mt->oid);
	if (!(res = dd_pg_query(c, partkey_sql, 1, params)))
		return dd_error_wrap("reading the partition keys of %s", mt->qname);
	for (int i = 0; i < PQntuples(res) && rc == 0; i++)
		for (size_t k = 0; k < mt->ncols && rc == 0; k++) {
			const struct col *cl = &mt->cols[k];
			char *why;
			if (!cl->rule || (PQgetisnull(res, i, 0) ? !mentions(PQgetvalue(res, i, 1), cl->qname)
								  : strcmp(PQgetvalue(res, i, 0), cl->name)))
				continue;
			why = dd_asprintf("column %s is in the partition key of %s: masked rows would leave their "
					  "partitions and the restore would fail",
					  cl->name, PQgetvalue(res, i, 2));
			rc = rule_error(cl->rule, why);
			dd_hint("leave partition key columns unmasked (remove the rule); nothing was captured");
			free(why);
		}
	PQclear(res);
	return rc;
}

/*
 * mt->rows: the masked rows for the constraint checks, with each
 * generated column computed again over them, as the restore will (a
 * CHECK or an index may use one). A generated column computed from a
 * masked column gets that column's rule as its dep.
 */
static void
build_rows(struct mtab *mt)
{
	struct dd_buf b = DD_BUF_INIT;
	const char *only = mt->relkind == 'p' ? "" : "ONLY ";
	int gen = 0;

	for (size_t i = 0; i < mt->ncols; i++) {
		struct col *g = &mt->cols[i];
		if (!g->generated || !g->gexpr)
			continue;
		for (size_t k = 0; k < mt->ncols && !g->dep; k++)
			if (mt->cols[k].rule && mentions(g->gexpr, mt->cols[k].qname))
				g->dep = mt->cols[k].rule;
		dd_buf_printf(&b, "%s(%s)::%s AS %s", gen++ ? ", " : "(SELECT m.*, ", g->gexpr, g->type, g->qname);
	}
	if (gen)
		dd_buf_printf(&b, " FROM (SELECT %s FROM %s%s) AS m)", mt->sel, only, mt->qname);
	else
		dd_buf_printf(&b, "(SELECT %s FROM %s%s)", mt->sel, only, mt->qname);
	mt->rows = dd_buf_detach(&b, NULL);
}

/* Build table t's masked columns from `rules` (those that apply to it, nearest first). */
static int
build_table(PGconn *c, const struct dd_pg_mask_table *t, const struct dd_pg_mask_rule **rules, size_t nrules,
	    struct mtab *mt)
{
	struct dd_buf sel = DD_BUF_INIT, e = DD_BUF_INIT;
	size_t nexprs = 0;

	mt->oid = t->oid;
	mt->relkind = t->relkind;
	mt->qname = dd_strdup(t->qname);
	mt->relname = dd_strdup(t->relname);
	if (read_columns(c, t, mt) < 0)
		return -1;
	for (size_t k = 0; k < nrules; k++) {
		struct col *cl = NULL;
		for (size_t i = 0; i < mt->ncols && !cl; i++)
			if (!strcmp(mt->cols[i].name, rules[k]->column))
				cl = &mt->cols[i];
		if (!cl) {
			char *why = dd_asprintf("table %s has no column %s", t->qname, rules[k]->column);
			rule_error(rules[k], why);
			free(why);
			return -1;
		}
		if (cl->rule) /* a nearer table's rule for the same column (a partition's own) wins */
			continue;
		if (cl->generated)
			return rule_error(rules[k], "a generated column is computed again on restore: mask the columns "
						    "it is computed from");
		cl->rule = rules[k];
	}
	if ((t->relkind == 'p' || t->nparents) && check_partition_key(c, mt) < 0)
		return -1;
	mt->exprs = dd_calloc(mt->ncols + 1, sizeof(char *));
	for (size_t i = 0; i < mt->ncols; i++) {
		struct col *cl = &mt->cols[i];
		if (cl->generated)
			continue;
		if (cl->rule) {
			dd_buf_clear(&e);
			if (rule_expr(cl->rule, cl, &e) < 0) {
				dd_buf_release(&e);
				dd_buf_release(&sel);
				return -1;
			}
			cl->expr = dd_asprintf("(%s)::%s", dd_buf_cstr(&e), cl->type);
			mt->key_masked |= cl->in_pk;
			mt->depends |= cl->rule->kind == DD_PG_MASK_SQL;
			dd_buf_printf(&sel, "%s%s AS %s", nexprs ? ", " : "", cl->expr, cl->qname);
		} else {
			cl->expr = dd_strdup(cl->qname);
			dd_buf_printf(&sel, "%s%s", nexprs ? ", " : "", cl->qname);
		}
		mt->exprs[nexprs++] = cl->expr;
	}
	dd_buf_release(&e);
	mt->sel = dd_buf_detach(&sel, NULL);
	build_rows(mt);
	for (size_t i = 0; i < mt->ncols; i++)
		if (mt->cols[i].rule && check_expr(c, mt, &mt->cols[i]) < 0)
			return -1;
	return 0;
}

/* Resolve every rule to a table (tabidx[k], -1: skipped with a warning). */
static int
resolve_tables(const struct dd_pg_snapshot_opts *o, const struct dd_pg_mask_table *tabs, size_t n, long *tabidx)
{
	for (size_t k = 0; k < o->nmasks; k++) {
		const struct dd_pg_mask_rule *r = &o->masks[k];
		if ((tabidx[k] = find_table(r, tabs, n)) < 0) {
			dd_hint("correct the rule in .dnadata/profiles.ini (names as the server spells them, unquoted); "
				"nothing was captured");
			return -1;
		}
		if (tabs[tabidx[k]].skipped) {
			dd_warn("profiles.ini:%zu: mask = %s: table %s's rows are not captured (exclude_tables or "
				"exclude_data): the rule does nothing",
				r->line, r->text, tabs[tabidx[k]].qname);
			tabidx[k] = -1;
		}
	}
	return 0;
}

int
dd_pg_mask_resolve(PGconn *c, const struct dd_pg_snapshot_opts *o, const struct dd_pg_mask_table *tabs, size_t n,
		   struct dd_pg_masks **out)
{
	struct dd_pg_masks *m;
	long *tabidx;
	const struct dd_pg_mask_rule **rules;
	uint64_t *seen = NULL, gen = 0; /* descends()'s marks (64-bit: never wraps) */
	int rc = -1;

	*out = NULL;
	if (!o->nmasks)
		return 0;
	if (!o->mask_key)
		return dd_error("masking rules without a masking key (a BUG)");
	for (size_t k = 0; k < o->nmasks; k++)
		if (o->masks[k].kind != DD_PG_MASK_NULL && o->masks[k].kind != DD_PG_MASK_REDACT &&
		    o->masks[k].kind != DD_PG_MASK_SQL && PQserverVersion(c) < 110000)
			return rule_error(&o->masks[k], "hash and fake_* need PostgreSQL 11 or newer (sha256())");
	m = dd_calloc(1, sizeof(*m));
	m->key = o->mask_key;
	tabidx = dd_calloc(o->nmasks + 1, sizeof(long));
	rules = dd_calloc(o->nmasks + 1, sizeof(*rules));
	seen = dd_calloc(n + 1, sizeof(*seen));
	if (resolve_tables(o, tabs, n, tabidx) < 0 || dd_pg_mask_session(c, m) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct dd_pg_mask_table *t = &tabs[i];
		size_t nr = 0;
		/* a partitioned table has no rows of its own, but its constraints span its partitions' */
		if ((t->relkind != 'r' && t->relkind != 'p') || t->skipped)
			continue;
		for (int own = 1; own >= 0; own--) /* the table's own rules first, then its ancestors' */
			for (size_t k = 0; k < o->nmasks; k++)
				if (tabidx[k] >= 0 && (tabs[tabidx[k]].oid == t->oid) == own &&
				    descends(tabs, n, i, tabs[tabidx[k]].oid, seen, ++gen, 0))
					rules[nr++] = &o->masks[k];
		if (!nr)
			continue;
		m->tabs = dd_realloc(m->tabs, (m->ntabs + 1) * sizeof(*m->tabs));
		memset(&m->tabs[m->ntabs], 0, sizeof(*m->tabs));
		if (build_table(c, t, rules, nr, &m->tabs[m->ntabs++]) < 0)
			goto out;
	}
	*out = m;
	m = NULL;
	rc = 0;
out:
	dd_pg_masks_free(m);
	free(tabidx);
	free(rules);
	free(seen);
	return rc;
}

int
dd_pg_mask_table_of(const struct dd_pg_masks *m, unsigned oid, const char **sel, const char *const **exprs,
		    int *key_masked, int *depends)
{
	for (size_t i = 0; m && i < m->ntabs; i++)
		if (m->tabs[i].oid == oid && m->tabs[i].relkind == 'r') {
			*sel = m->tabs[i].sel;
			*exprs = (const char *const *)m->tabs[i].exprs;
			*key_masked = m->tabs[i].key_masked;
			*depends = m->tabs[i].depends;
			return 1;
		}
	return 0;
}

/* The settings under which the server may log a statement's parameters (absent ones: not on this server). */
static const char logging_sql[] =
	"SELECT name, setting FROM pg_settings WHERE name IN ('log_statement', 'log_min_duration_statement',"
	" 'log_min_duration_sample', 'log_statement_sample_rate', 'log_transaction_sample_rate',"
	" 'log_parameter_max_length', 'log_parameter_max_length_on_error', 'auto_explain.log_min_duration',"
	" 'pgaudit.log', 'pgaudit.log_parameter')";

static const char *
setting(const PGresult *res, const char *name)
{
	for (int i = 0; i < PQntuples(res); i++)
		if (!strcmp(PQgetvalue(res, i, 0), name))
			return PQgetvalue(res, i, 1);
	return NULL;
}

/* Numeric setting `name` is there and not `off`. */
static int
differs(const PGresult *res, const char *name, double off)
{
	const char *v = setting(res, name);

	return v && strtod(v, NULL) != off;
}

/* What keeps the padded keys out of the server log, and how to undo it after. */
struct quiet {
	struct dd_buf set, reset; /* "SET LOCAL name = value;"..., "SET LOCAL name TO DEFAULT;"... */
	const char *why;          /* the first setting that would log them */
	char fix[80];             /* its remedy, "name = value" */
};

static void
quiet(struct quiet *q, const char *why, const char *name, const char *value)
{
	dd_buf_printf(&q->set, "SET LOCAL %s = %s;", name, value);
	dd_buf_printf(&q->reset, "SET LOCAL %s TO DEFAULT;", name);
	if (!q->why) {
		q->why = why;
		snprintf(q->fix, sizeof(q->fix), "%s = %s", name, value);
	}
}

/*
 * Would the server write the set_config() parameters (the padded keys)
 * into its log? Then q: the transaction-local settings that keep them
 * out (log_parameter_max_length = 0 for statement logging, PostgreSQL 13
 * or newer; auto_explain and pgaudit's parameters turned off). -1 when
 * nothing can keep them out (statement logging before 13).
 */
static int
quiet_logging(PGconn *c, struct quiet *q)
{
	PGresult *res = dd_pg_query(c, logging_sql, 0, NULL);
	const char *stmt = NULL, *v;

	if (!res)
		return dd_error_wrap("reading the server's log settings");
	if ((v = setting(res, "log_statement")) && !strcmp(v, "all"))
		stmt = "log_statement";
	else if (differs(res, "log_min_duration_statement", -1))
		stmt = "log_min_duration_statement";
	else if (differs(res, "log_min_duration_sample", -1) && differs(res, "log_statement_sample_rate", 0))
		stmt = "log_min_duration_sample";
	else if (differs(res, "log_transaction_sample_rate", 0))
		stmt = "log_transaction_sample_rate";
	if (stmt && !setting(res, "log_parameter_max_length")) {
		PQclear(res);
		dd_error("the server would write the masking key into its log: %s logs each statement's parameters, "
			 "and PostgreSQL %d cannot leave them out",
			 stmt, dd_pg_server_major(c));
		dd_hint("turn that logging off for the role that snapshots (as a superuser: ALTER ROLE <role> SET %s "
			"TO DEFAULT), or use PostgreSQL 13 or newer; nothing was captured",
			stmt);
		return -1;
	}
	if (stmt && differs(res, "log_parameter_max_length", 0))
		quiet(q, stmt, "log_parameter_max_length", "0");
	if (differs(res, "log_parameter_max_length_on_error", 0))
		quiet(q, "log_parameter_max_length_on_error", "log_parameter_max_length_on_error", "0");
	if (differs(res, "auto_explain.log_min_duration", -1))
		quiet(q, "auto_explain.log_min_duration", "auto_explain.log_min_duration", "-1");
	if ((v = setting(res, "pgaudit.log_parameter")) && !strcmp(v, "on") && (v = setting(res, "pgaudit.log")) &&
	    strcmp(v, "none"))
		quiet(q, "pgaudit.log_parameter", "pgaudit.log_parameter", "off");
	PQclear(res);
	return 0;
}

/* Send the padded keys (hex) as the parameters of transaction-local set_config()s. */
static int
send_keys(PGconn *c, const char *const *params)
{
	/* parameters only: the key is in no SQL text, pg_stat_activity or process title; local: a pooler
	 * that hands the server connection on after the snapshot's transaction hands no key on */
	PGresult *res = dd_pg_query(c,
				    "SELECT 1 FROM (SELECT set_config('dnadata.mask_i', $1, true),"
				    " set_config('dnadata.mask_o', $2, true)) s",
				    2, params);

	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

int
dd_pg_mask_session(PGconn *c, const struct dd_pg_masks *m)
{
	unsigned char pad[2][64];
	char hex[2][129];
	const char *params[] = { hex[0], hex[1] };
	struct quiet q = { DD_BUF_INIT, DD_BUF_INIT, NULL, "" };
	int rc = -1;

	if (!m)
		return 0;
	if (quiet_logging(c, &q) < 0)
		goto out;
	if (q.set.len && dd_pg_exec(c, dd_buf_cstr(&q.set)) < 0) {
		dd_error_wrap("the server would write the masking key into its log (%s logs the parameters of a "
			      "statement), and this user may not keep it out for the snapshot",
			      q.why);
		dd_hint("as a superuser: ALTER ROLE <role> SET %s (or turn that logging off for the role that "
			"snapshots); nothing was captured",
			q.fix);
		goto out;
	}
	for (int k = 0; k < 2; k++) {
		memset(pad[k], k ? 0x5c : 0x36, 64);
		for (int i = 0; i < DD_PG_MASK_KEY_LEN; i++)
			pad[k][i] ^= m->key[i];
		dd_hex_encode(hex[k], pad[k], 64);
	}
	rc = send_keys(c, params);
	sodium_memzero(pad, sizeof(pad));
	sodium_memzero(hex, sizeof(hex));
	if (rc < 0)
		dd_error_wrap("setting the masking key");
	else if (q.reset.len)
		rc = dd_pg_exec(c, dd_buf_cstr(&q.reset));
out:
	dd_buf_release(&q.set);
	dd_buf_release(&q.reset);
	return rc;
}

/*
 * A query over masked expressions failed with `res`: the error without
 * the server's message unless its SQLSTATE never quotes a row
 * (dd_pg_guarded_error), naming `table` unless NULL. Always 1.
 */
int
dd_pg_mask_error(const PGresult *res, const char *table)
{
	char *what = dd_asprintf("a masked column's expression failed on a row%s%s", table ? " of " : "",
				 table ? table : "");

	dd_pg_guarded_error(NULL, res, what,
			    "run the rule's expression by hand to see the server's message (psql: SELECT <expression> "
			    "FROM <table>), or check it against the column types; nothing was captured");
	free(what);
	return 1;
}

char *
dd_pg_mask_lines_of(const struct dd_pg_masks *m, unsigned oid)
{
	struct dd_buf b = DD_BUF_INIT;
	size_t n = 0;
	char *out;

	for (size_t i = 0; m && i < m->ntabs; i++)
		for (size_t k = 0; m->tabs[i].oid == oid && k < m->tabs[i].ncols; k++) {
			const struct dd_pg_mask_rule *r = m->tabs[i].cols[k].rule;
			if (r)
				dd_buf_printf(&b, "%s%zu", n++ ? ", " : "", r->line);
		}
	out = n ? dd_asprintf("profiles.ini line%s %s", n > 1 ? "s" : "", dd_buf_cstr(&b)) : NULL;
	dd_buf_release(&b);
	return out;
}

/* ---- constraint checks over the masked rows ---- */

static const struct mtab *
mtab_of(const struct dd_pg_masks *m, unsigned oid)
{
	for (size_t i = 0; i < m->ntabs; i++)
		if (m->tabs[i].oid == oid)
			return &m->tabs[i];
	return NULL;
}

static const struct col *
col_named(const struct mtab *mt, const char *name)
{
	for (size_t i = 0; mt && i < mt->ncols; i++)
		if (!strcmp(mt->cols[i].name, name))
			return &mt->cols[i];
	return NULL;
}

/* The rule that changes column c's values: its own, or (a generated column) that of a column it is computed from. */
static const struct dd_pg_mask_rule *
rule_of(const struct col *c)
{
	return !c ? NULL : c->rule ? c->rule : c->dep;
}

/* The names of the table's columns whose values masking changes, as a text[] literal (a query parameter). */
static char *
masked_names(const struct mtab *mt)
{
	struct dd_buf b = DD_BUF_INIT;
	int first = 1;

	dd_buf_putc(&b, '{');
	for (size_t i = 0; i < mt->ncols; i++) {
		if (!rule_of(&mt->cols[i]))
			continue;
		dd_buf_puts(&b, first ? "\"" : ",\"");
		for (const char *p = mt->cols[i].name; *p; p++) {
			if (*p == '"' || *p == '\\')
				dd_buf_putc(&b, '\\');
			dd_buf_putc(&b, *p);
		}
		dd_buf_putc(&b, '"');
		first = 0;
	}
	dd_buf_putc(&b, '}');
	return dd_buf_detach(&b, NULL);
}

/*
 * Run check query `sql`: 0 when it returns no row, else -1 with "the
 * masked values break <what><more>" for rule r.
 */
static int
run_check(PGconn *c, const char *sql, const struct dd_pg_mask_rule *r, const char *what, const char *more)
{
	PGresult *res = PQexec(c, sql);
	int rows;
	char *why;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		if (!dd_pg_mask_error(res, NULL))
			dd_pg_error(c, res);
		PQclear(res);
		why = dd_asprintf("checking %s over the masked values: %s", what, dd_error_last());
		dd_error_clear();
		rule_error(r, why);
		free(why);
		return -1;
	}
	rows = PQntuples(res);
	PQclear(res);
	if (!rows)
		return 0;
	why = dd_asprintf("the masked values break %s%s", what, more);
	rule_error(r, why);
	dd_hint("choose a rule that keeps the constraint (hash keeps unique values unique and foreign keys "
		"matching), or an sql: expression; nothing was captured");
	free(why);
	return -1;
}

/*
 * Does column c's rule keep distinct values distinct? hash does: a
 * permutation for integers, 128 bits and more of HMAC otherwise (a text
 * column without a length limit, a uuid).
 */
static int
injective(const struct col *c)
{
	return c->rule && c->rule->kind == DD_PG_MASK_HASH && (c->cls != T_TEXT || !strchr(c->type, '('));
}

static const char unique_sql[] =
	"SELECT format('%I.%I', n.nspname, x.relname), pg_get_expr(i.indpred, i.indrelid),"
	" (SELECT string_agg(pg_get_indexdef(i.indexrelid, k, true), ', ' ORDER BY k)"
	"   FROM generate_series(1, i.indnkeyatts) k),"
	" (SELECT string_agg(a.attname, '/' ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = i.indrelid"
	"   AND a.attname = ANY ($2::text[]) AND (a.attnum = ANY (i.indkey::int2[]) OR EXISTS (SELECT 1 FROM pg_depend d"
	"   WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid AND d.refobjid = i.indrelid"
	"   AND d.refobjsubid = a.attnum))),"
	" i.indexprs IS NULL, i.indisexclusion"
	" FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_namespace n ON n.oid = x.relnamespace"
	" WHERE i.indrelid = $1::oid AND (i.indisunique OR i.indisexclusion) ORDER BY 1";

/*
 * Must unique index row i of res be checked over the masked rows? 0 no
 * (no masked column in it, or only injective hashes on plain key columns
 * of an index whose predicate uses no masked column), 1 yes (*first: the
 * rule to name), -1 an exclusion constraint on a masked column (refused:
 * not checked).
 */
static int
unique_needs_check(const struct mtab *mt, PGresult *res, int i, const struct col **first)
{
	const char *pred = PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1);
	int skip = PQgetvalue(res, i, 4)[0] == 't';
	char *list, *save = NULL, *why;

	*first = NULL;
	if (PQgetisnull(res, i, 3))
		return 0;
	list = dd_strdup(PQgetvalue(res, i, 3));
	for (char *t = strtok_r(list, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		const struct col *cl = col_named(mt, t);
		if (!rule_of(cl))
			continue;
		*first = *first ? *first : cl;
		skip &= injective(cl) && !(pred && mentions(pred, cl->qname));
	}
	free(list);
	if (!*first || PQgetvalue(res, i, 5)[0] != 't')
		return *first && !skip;
	why = dd_asprintf("column %s is in exclusion constraint %s of table %s, which the masked values are not "
			  "checked against",
			  (*first)->name, PQgetvalue(res, i, 0), mt->qname);
	rule_error(rule_of(*first), why);
	dd_hint("leave that column unmasked (remove the rule); nothing was captured");
	free(why);
	return -1;
}

/* UNIQUE constraints and unique indexes of mt that involve a masked column: no two masked rows equal. */
static int
check_unique(PGconn *c, const struct mtab *mt, const char *names)
{
	char oid[16];
	const char *params[] = { oid, names };
	PGresult *res;
	int rc = 0;

	snprintf(oid, sizeof(oid), "%u", mt->oid);
	if (!(res = dd_pg_query(c, unique_sql, 2, params)))
		return dd_error_wrap("reading the unique indexes of %s", mt->qname);
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		const struct col *first;
		char *what, *sql;
		struct dd_buf notnull = DD_BUF_INIT;
		if ((rc = unique_needs_check(mt, res, i, &first)) <= 0)
			continue;
		dd_buf_printf(&notnull, "ROW(%s) IS NOT NULL", PQgetvalue(res, i, 2));
		if (!PQgetisnull(res, i, 1))
			dd_buf_printf(&notnull, " AND (%s)", PQgetvalue(res, i, 1));
		sql = dd_asprintf("SELECT 1 FROM %s AS t WHERE %s GROUP BY %s HAVING count(*) > 1 LIMIT 1", mt->rows,
				  dd_buf_cstr(&notnull), PQgetvalue(res, i, 2));
		what = dd_asprintf("unique index %s of table %s", PQgetvalue(res, i, 0), mt->qname);
		rc = run_check(c, sql, rule_of(first), what, " (two rows get the same value)");
		free(what);
		free(sql);
		dd_buf_release(&notnull);
	}
	PQclear(res);
	return rc;
}

static const char check_sql[] =
	"SELECT quote_ident(c.conname), pg_get_expr(c.conbin, c.conrelid),"
	" (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)"
	"   AND a.attname = ANY ($2::text[]) ORDER BY a.attnum LIMIT 1)"
	" FROM pg_constraint c WHERE c.conrelid = $1::oid AND c.contype = 'c' ORDER BY 1";

/* CHECK constraints that involve a masked column, over the masked row; NOT NULL under sql: rules. */
static int
check_checks(PGconn *c, const struct mtab *mt, const char *names)
{
	char oid[16];
	const char *params[] = { oid, names };
	PGresult *res;
	int rc = 0;

	for (size_t i = 0; i < mt->ncols && rc == 0; i++) {
		const struct col *cl = &mt->cols[i];
		char *sql, *what;
		if (!(cl->notnull || cl->in_pk) || !(cl->dep || (cl->rule && cl->rule->kind == DD_PG_MASK_SQL)))
			continue;
		sql = dd_asprintf("SELECT 1 FROM %s AS t WHERE %s IS NULL LIMIT 1", mt->rows, cl->qname);
		what = dd_asprintf("NOT NULL on column %s of table %s", cl->name, mt->qname);
		rc = run_check(c, sql, rule_of(cl), what, " (the expression gives NULL)");
		free(sql);
		free(what);
	}
	if (rc < 0)
		return -1;
	snprintf(oid, sizeof(oid), "%u", mt->oid);
	if (!(res = dd_pg_query(c, check_sql, 2, params)))
		return dd_error_wrap("reading the CHECK constraints of %s", mt->qname);
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		const struct col *cl = PQgetisnull(res, i, 2) ? NULL : col_named(mt, PQgetvalue(res, i, 2));
		char *sql, *what;
		if (!rule_of(cl))
			continue;
		sql = dd_asprintf("SELECT 1 FROM %s AS t WHERE NOT (%s) LIMIT 1", mt->rows, PQgetvalue(res, i, 1));
		what = dd_asprintf("CHECK constraint %s of table %s", PQgetvalue(res, i, 0), mt->qname);
		rc = run_check(c, sql, rule_of(cl), what, "");
		free(sql);
		free(what);
	}
	PQclear(res);
	return rc;
}

static const char fk_sql[] =
	"SELECT c.oid, quote_ident(c.conname), c.conrelid, c.confrelid, format('%I.%I', na.nspname, ta.relname),"
	" format('%I.%I', nb.nspname, tb.relname), quote_ident(a.attname), a.attname, quote_ident(b.attname),"
	" b.attname"
	" FROM pg_constraint c CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(a1, b1, ord)"
	" JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.a1"
	" JOIN pg_attribute b ON b.attrelid = c.confrelid AND b.attnum = k.b1"
	" JOIN pg_class ta ON ta.oid = c.conrelid JOIN pg_namespace na ON na.oid = ta.relnamespace"
	" JOIN pg_class tb ON tb.oid = c.confrelid JOIN pg_namespace nb ON nb.oid = tb.relnamespace"
	" WHERE c.contype = 'f' AND (c.conrelid = ANY ($1::oid[]) OR c.confrelid = ANY ($1::oid[]))"
	" ORDER BY c.oid, k.ord";

/*
 * The same deterministic rule (hash, fake_*) on both sides of a key
 * column pair, of the very same type (format_type(): a varchar(40) cuts
 * a hash that a text keeps whole, an int4 is permuted on 16-bit halves
 * and an int8 on 32-bit ones): equal values stay equal. Else the check runs.
 */
static int
same_rule(const struct col *a, const struct col *b)
{
	if (!a || !b || !a->rule || !b->rule || a->rule->kind != b->rule->kind || strcmp(a->type, b->type))
		return 0;
	return a->rule->kind == DD_PG_MASK_HASH || a->rule->kind == DD_PG_MASK_FAKE_EMAIL ||
	       a->rule->kind == DD_PG_MASK_FAKE_NAME || a->rule->kind == DD_PG_MASK_FAKE_PHONE;
}

/* Foreign key rows [i, j) of res (one per column pair): fine as is, or checked with a query. */
static int
check_fk(PGconn *c, const struct dd_pg_masks *m, PGresult *res, int i, int j)
{
	const struct mtab *ta = mtab_of(m, (unsigned)strtoul(PQgetvalue(res, i, 2), NULL, 10));
	const struct mtab *tb = mtab_of(m, (unsigned)strtoul(PQgetvalue(res, i, 3), NULL, 10));
	const struct dd_pg_mask_rule *r = NULL;
	struct dd_buf nn = DD_BUF_INIT, eq = DD_BUF_INIT;
	int same = 1, rc;
	char *sql, *what, *more;

	for (int k = i; k < j; k++) {
		const struct col *a = col_named(ta, PQgetvalue(res, k, 7)), *b = col_named(tb, PQgetvalue(res, k, 9));
		if (!r)
			r = rule_of(a) ? rule_of(a) : rule_of(b);
		if (rule_of(a) || rule_of(b))
			same &= same_rule(a, b);
		dd_buf_printf(&nn, "%sx.%s IS NOT NULL", k > i ? " AND " : "", PQgetvalue(res, k, 6));
		dd_buf_printf(&eq, "%sy.%s = x.%s", k > i ? " AND " : "", PQgetvalue(res, k, 8), PQgetvalue(res, k, 6));
	}
	rc = 0;
	if (r && !same) {
		/* a masked table: its masked rows; any other: its rows (with its partitions' or children's) */
		sql = dd_asprintf("SELECT 1 FROM %s%s%s AS x WHERE %s AND NOT EXISTS (SELECT 1 FROM %s%s%s AS y "
				  "WHERE %s) LIMIT 1",
				  ta ? ta->rows : "(SELECT * FROM ", ta ? "" : PQgetvalue(res, i, 4), ta ? "" : ")",
				  dd_buf_cstr(&nn), tb ? tb->rows : "(SELECT * FROM ", tb ? "" : PQgetvalue(res, i, 5),
				  tb ? "" : ")", dd_buf_cstr(&eq));
		what = dd_asprintf("foreign key %s of table %s", PQgetvalue(res, i, 1), PQgetvalue(res, i, 4));
		more = dd_asprintf(" (a masked row references no row of %s; the same hash or fake_* rule on both sides, "
				   "of the same type, keeps them matching)",
				   PQgetvalue(res, i, 5));
		rc = run_check(c, sql, r, what, more);
		free(more);
		free(what);
		free(sql);
	}
	dd_buf_release(&nn);
	dd_buf_release(&eq);
	return rc;
}

static int
check_fks(PGconn *c, const struct dd_pg_masks *m)
{
	struct dd_buf oids = DD_BUF_INIT;
	const char *params[1];
	PGresult *res;
	int rc = 0, i, j, n;

	dd_buf_putc(&oids, '{');
	for (size_t k = 0; k < m->ntabs; k++)
		dd_buf_printf(&oids, "%s%u", k ? "," : "", m->tabs[k].oid);
	dd_buf_putc(&oids, '}');
	params[0] = dd_buf_cstr(&oids);
	res = dd_pg_query(c, fk_sql, 1, params);
	dd_buf_release(&oids);
	if (!res)
		return dd_error_wrap("reading the foreign keys of the masked tables");
	n = PQntuples(res);
	for (i = 0; i < n && rc == 0; i = j) {
		for (j = i + 1; j < n && !strcmp(PQgetvalue(res, j, 0), PQgetvalue(res, i, 0)); j++)
			;
		rc = check_fk(c, m, res, i, j);
	}
	PQclear(res);
	return rc;
}

int
dd_pg_mask_check(PGconn *c, const struct dd_pg_masks *m)
{
	int rc = 0;

	if (!m)
		return 0;
	for (size_t i = 0; i < m->ntabs && rc == 0; i++) {
		char *names = masked_names(&m->tabs[i]);
		rc = check_unique(c, &m->tabs[i], names) < 0 || check_checks(c, &m->tabs[i], names) < 0 ? -1 : 0;
		free(names);
	}
	if (rc == 0)
		rc = check_fks(c, m);
	return rc;
}
