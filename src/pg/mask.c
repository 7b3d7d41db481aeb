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
 * key is in no SQL text, pg_stat_activity or process title:
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
 * any COPY: UNIQUE, CHECK, foreign keys.
 */
#include "pg/internal.h"
#include "pg/pg.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/hex.h"
#include "util/log.h"

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
};

struct mtab {
	unsigned oid;
	char relkind;             /* 'r' (its COPY is masked), or 'p' (partitioned: for the constraint checks) */
	char *qname, *relname;
	struct col *cols;
	size_t ncols;
	char *sel;                /* the select list, generated columns left out (as the catalog's list) */
	char **exprs;             /* the same, one value expression per dumped column, NULL-terminated */
	int key_masked;
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
	"   AND i.indisprimary)::int2[]), false)"
	" FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
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
	}
	free(t->cols);
	free(t->exprs); /* its strings are the columns' */
	free(t->sel);
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

/* Is `anc` table `t` itself or one of its ancestors (partitions, inheritance)? */
static int
descends(const struct dd_pg_mask_table *tabs, size_t n, const struct dd_pg_mask_table *t, unsigned anc, int depth)
{
	if (t->oid == anc)
		return 1;
	for (size_t i = 0; i < t->nparents && depth < 64; i++)
		for (size_t j = 0; j < n; j++)
			if (tabs[j].oid == t->parents[i] && descends(tabs, n, &tabs[j], anc, depth + 1))
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
			dd_buf_printf(&sel, "%s%s AS %s", nexprs ? ", " : "", cl->expr, cl->qname);
		} else {
			cl->expr = dd_strdup(cl->qname);
			dd_buf_printf(&sel, "%s%s", nexprs ? ", " : "", cl->qname);
		}
		mt->exprs[nexprs++] = cl->expr;
	}
	dd_buf_release(&e);
	mt->sel = dd_buf_detach(&sel, NULL);
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
				    descends(tabs, n, t, tabs[tabidx[k]].oid, 0))
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
	return rc;
}

int
dd_pg_mask_table_of(const struct dd_pg_masks *m, unsigned oid, const char **sel, const char *const **exprs,
		    int *key_masked)
{
	for (size_t i = 0; m && i < m->ntabs; i++)
		if (m->tabs[i].oid == oid && m->tabs[i].relkind == 'r') {
			*sel = m->tabs[i].sel;
			*exprs = (const char *const *)m->tabs[i].exprs;
			*key_masked = m->tabs[i].key_masked;
			return 1;
		}
	return 0;
}

int
dd_pg_mask_session(PGconn *c, const struct dd_pg_masks *m)
{
	unsigned char pad[2][64];
	char hex[2][129];
	const char *params[] = { hex[0], hex[1] };
	PGresult *res;

	if (!m)
		return 0;
	for (int k = 0; k < 2; k++) {
		memset(pad[k], k ? 0x5c : 0x36, 64);
		for (int i = 0; i < DD_PG_MASK_KEY_LEN; i++)
			pad[k][i] ^= m->key[i];
		dd_hex_encode(hex[k], pad[k], 64);
	}
	/* parameters only: the key is in no SQL text, pg_stat_activity or process title */
	res = dd_pg_query(c,
			  "SELECT 1 FROM (SELECT set_config('dnadata.mask_i', $1, false),"
			  " set_config('dnadata.mask_o', $2, false)) s",
			  2, params);
	explicit_bzero(pad, sizeof(pad));
	explicit_bzero(hex, sizeof(hex));
	if (!res)
		return dd_error_wrap("setting the masking key");
	PQclear(res);
	return 0;
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

/* How a check reads mt's rows: a table's own ("ONLY "), a partitioned table's partitions' (""). */
static const char *
only(const struct mtab *mt)
{
	return mt->relkind == 'p' ? "" : "ONLY ";
}

/* The table's masked columns' names as a text[] literal (a query parameter). */
static char *
masked_names(const struct mtab *mt)
{
	struct dd_buf b = DD_BUF_INIT;
	int first = 1;

	dd_buf_putc(&b, '{');
	for (size_t i = 0; i < mt->ncols; i++) {
		if (!mt->cols[i].rule)
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
	return c->rule->kind == DD_PG_MASK_HASH && (c->cls != T_TEXT || !strchr(c->type, '('));
}

static const char unique_sql[] =
	"SELECT format('%I.%I', n.nspname, x.relname), pg_get_expr(i.indpred, i.indrelid),"
	" (SELECT string_agg(pg_get_indexdef(i.indexrelid, k, true), ', ' ORDER BY k)"
	"   FROM generate_series(1, i.indnkeyatts) k),"
	" (SELECT string_agg(a.attname, '/' ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = i.indrelid"
	"   AND a.attname = ANY ($2::text[]) AND (a.attnum = ANY (i.indkey::int2[]) OR EXISTS (SELECT 1 FROM pg_depend d"
	"   WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid AND d.refobjid = i.indrelid"
	"   AND d.refobjsubid = a.attnum)))"
	" FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_namespace n ON n.oid = x.relnamespace"
	" WHERE i.indrelid = $1::oid AND i.indisunique ORDER BY 1";

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
		const struct col *first = NULL;
		int all_injective = 1;
		char *list, *save = NULL, *what, *sql;
		struct dd_buf notnull = DD_BUF_INIT;
		if (PQgetisnull(res, i, 3))
			continue; /* no masked column in it */
		list = dd_strdup(PQgetvalue(res, i, 3));
		for (char *t = strtok_r(list, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
			const struct col *cl = col_named(mt, t);
			if (!cl || !cl->rule)
				continue;
			first = first ? first : cl;
			all_injective &= injective(cl);
		}
		free(list);
		if (!first || all_injective)
			continue;
		dd_buf_printf(&notnull, "ROW(%s) IS NOT NULL", PQgetvalue(res, i, 2));
		if (!PQgetisnull(res, i, 1))
			dd_buf_printf(&notnull, " AND (%s)", PQgetvalue(res, i, 1));
		sql = dd_asprintf("SELECT 1 FROM (SELECT %s FROM %s%s) AS t WHERE %s GROUP BY %s HAVING count(*) > 1 "
				  "LIMIT 1",
				  mt->sel, only(mt), mt->qname, dd_buf_cstr(&notnull), PQgetvalue(res, i, 2));
		what = dd_asprintf("unique index %s of table %s", PQgetvalue(res, i, 0), mt->qname);
		rc = run_check(c, sql, first->rule, what, " (two rows get the same value)");
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
		if (!cl->rule || cl->rule->kind != DD_PG_MASK_SQL || !(cl->notnull || cl->in_pk))
			continue;
		sql = dd_asprintf("SELECT 1 FROM (SELECT %s FROM %s%s) AS t WHERE %s IS NULL LIMIT 1", mt->sel,
				  only(mt), mt->qname, cl->qname);
		what = dd_asprintf("NOT NULL on column %s of table %s", cl->name, mt->qname);
		rc = run_check(c, sql, cl->rule, what, " (the expression gives NULL)");
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
		if (!cl || !cl->rule)
			continue;
		sql = dd_asprintf("SELECT 1 FROM (SELECT %s FROM %s%s) AS t WHERE NOT (%s) LIMIT 1", mt->sel,
				  only(mt), mt->qname, PQgetvalue(res, i, 1));
		what = dd_asprintf("CHECK constraint %s of table %s", PQgetvalue(res, i, 0), mt->qname);
		rc = run_check(c, sql, cl->rule, what, "");
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

/* The same deterministic rule (hash, fake_*) on both sides of a key column pair: equal values stay equal. */
static int
same_rule(const struct col *a, const struct col *b)
{
	if (!a || !b || !a->rule || !b->rule || a->rule->kind != b->rule->kind || a->cls != b->cls)
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
			r = a && a->rule ? a->rule : b && b->rule ? b->rule : NULL;
		if ((a && a->rule) || (b && b->rule))
			same &= same_rule(a, b);
		dd_buf_printf(&nn, "%sx.%s IS NOT NULL", k > i ? " AND " : "", PQgetvalue(res, k, 6));
		dd_buf_printf(&eq, "%sy.%s = x.%s", k > i ? " AND " : "", PQgetvalue(res, k, 8), PQgetvalue(res, k, 6));
	}
	rc = 0;
	if (r && !same) {
		/* a masked table: its masked rows; any other: its rows (with its partitions' or children's) */
		sql = dd_asprintf("SELECT 1 FROM (SELECT %s FROM %s%s) AS x WHERE %s AND NOT EXISTS (SELECT 1 FROM "
				  "(SELECT %s FROM %s%s) AS y WHERE %s) LIMIT 1",
				  ta ? ta->sel : "*", ta ? only(ta) : "", PQgetvalue(res, i, 4), dd_buf_cstr(&nn),
				  tb ? tb->sel : "*", tb ? only(tb) : "", PQgetvalue(res, i, 5), dd_buf_cstr(&eq));
		what = dd_asprintf("foreign key %s of table %s", PQgetvalue(res, i, 1), PQgetvalue(res, i, 4));
		more = dd_asprintf(" (a masked row references no row of %s; the same hash or fake_* rule on both sides "
				   "keeps them matching)",
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
