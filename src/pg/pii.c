/*
 * pg/pii.c: which columns of a database look like personal data (issue 21:
 * `git dnadata pii-check`, and the refusal of a `masked = required`
 * profile's snapshot). Whether a mask rule covers a column is the
 * workflow's business (workflow/pii.c): this file knows no configuration.
 *
 * Only what a snapshot captures is looked at: the rows of ordinary tables
 * and partitions (relkind r, read FROM ONLY as dump.c reads them) that
 * exclude_tables and exclude_data leave in (a partition or child of an
 * excluded table is excluded too, as in dump.c), without generated columns
 * (a restore computes them from the others). A column is reported for the
 * first of three signs, each with a kind (email, phone, name...) and a
 * reason a person can check:
 *   - its type: inet and cidr hold IP addresses;
 *   - its name (dd_pg_pii_name_kind: pure, unit-tested), counted only for
 *     a type that can hold such a value (an email_verified boolean cannot);
 *   - its values: a bounded sample of each table's rows whose text
 *     columns are matched whole, on the server, against the shapes of
 *     e-mail addresses, IPv4/IPv6 addresses, card numbers (with their Luhn
 *     check), IBANs (with their mod-97 check), US SSNs and phone numbers,
 *     each value counted for the first shape it fits; failing those, a text
 *     or a json/jsonb document of at most DOC_MAX_BYTES (as stored) is
 *     searched for an e-mail address anywhere in it (its contents; a text
 *     also at most 8 * DOC_MAX_BYTES long). A column is reported when
 *     at least DD_PG_PII_SHARE percent of its non-empty sampled values fit
 *     one class; the reason names the most frequent one.
 *
 * Large objects are counted (a snapshot captures them as they are, masked
 * or not, and nothing here looks inside them: the caller says so).
 *
 * Cost: one catalog query, then per table one name query (is it still
 * there?), one column query and (when it has text or JSON columns) one
 * sample query of at most `sample_rows` rows: the first rows of a table
 * whose statistics are unknown or small, else rows of pages TABLESAMPLE
 * SYSTEM picks (REPEATABLE, so an unchanged table gives the same answer),
 * about 2 * sample_rows rows' worth of pages: the same for a 1 GB table
 * as for a 1 TB one. A value longer than 254 bytes (no e-mail address or
 * phone number is) is not matched whole, and one stored in more than
 * DOC_MAX_BYTES is neither detoasted nor searched.
 *
 * Safety on a production primary or a hot standby: READ ONLY
 * transactions, one for the catalog and then one short one per table, so
 * the ACCESS SHARE lock a table's sample takes is held while that table
 * is read, not until the last table's (a migration's ALTER TABLE would
 * queue behind it, and every later query on the table behind the ALTER);
 * a table dropped meanwhile is skipped (-v says so), one renamed is read
 * under its new name. Locks are waited for at most `lock_wait_timeout_ms`;
 * statement_timeout bounds every query. Nothing is written. Identifiers
 * reach SQL only as the server quoted them (format('%I.%I'), quote_ident);
 * the patterns are query parameters.
 */
#include "pg/internal.h"
#include "pg/pg.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/proc.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_TOKENS 16
#define VALUE_MAX_BYTES 254
#define DOC_MAX_BYTES 8192

/* ---- names (pure) ---- */

/* How a word of a name list matches: a whole token run, or also as a token's prefix or suffix. */
enum { RUN, AFFIX };

struct word {
	const char *w;
	enum dd_pg_pii_kind kind;
	int how;
};

/* In the order they are tried: e-mail and IP before address (email_address, ip_address). */
static const struct word words[] = {
	{ "email", DD_PG_PII_EMAIL, AFFIX },
	{ "mail", DD_PG_PII_EMAIL, RUN },
	{ "ip", DD_PG_PII_IP, RUN },
	{ "ipv4", DD_PG_PII_IP, RUN },
	{ "ipv6", DD_PG_PII_IP, RUN },
	{ "ipaddr", DD_PG_PII_IP, AFFIX },
	{ "ipaddress", DD_PG_PII_IP, AFFIX },
	{ "phone", DD_PG_PII_PHONE, AFFIX },
	{ "mobile", DD_PG_PII_PHONE, RUN },
	{ "tel", DD_PG_PII_PHONE, RUN },
	{ "fax", DD_PG_PII_PHONE, RUN },
	{ "msisdn", DD_PG_PII_PHONE, RUN },
	{ "firstname", DD_PG_PII_NAME, AFFIX },
	{ "lastname", DD_PG_PII_NAME, AFFIX },
	{ "fullname", DD_PG_PII_NAME, AFFIX },
	{ "surname", DD_PG_PII_NAME, AFFIX },
	{ "givenname", DD_PG_PII_NAME, AFFIX },
	{ "familyname", DD_PG_PII_NAME, AFFIX },
	{ "middlename", DD_PG_PII_NAME, AFFIX },
	{ "maidenname", DD_PG_PII_NAME, AFFIX },
	{ "forename", DD_PG_PII_NAME, AFFIX },
	{ "nickname", DD_PG_PII_NAME, RUN },
	{ "birth", DD_PG_PII_BIRTH, AFFIX },
	{ "dob", DD_PG_PII_BIRTH, RUN },
	{ "ssn", DD_PG_PII_NATIONAL_ID, RUN },
	{ "socialsecurity", DD_PG_PII_NATIONAL_ID, AFFIX },
	{ "nationalid", DD_PG_PII_NATIONAL_ID, AFFIX },
	{ "passport", DD_PG_PII_NATIONAL_ID, AFFIX },
	{ "taxid", DD_PG_PII_NATIONAL_ID, RUN },
	{ "taxnumber", DD_PG_PII_NATIONAL_ID, AFFIX },
	{ "driverlicense", DD_PG_PII_NATIONAL_ID, AFFIX },
	{ "driverslicense", DD_PG_PII_NATIONAL_ID, AFFIX },
	{ "drivinglicense", DD_PG_PII_NATIONAL_ID, AFFIX },
	{ "drivinglicence", DD_PG_PII_NATIONAL_ID, AFFIX },
	{ "iban", DD_PG_PII_BANK, AFFIX },
	{ "bankaccount", DD_PG_PII_BANK, AFFIX },
	{ "routingnumber", DD_PG_PII_BANK, AFFIX },
	{ "sortcode", DD_PG_PII_BANK, AFFIX },
	{ "creditcard", DD_PG_PII_CARD, AFFIX },
	{ "cardnumber", DD_PG_PII_CARD, AFFIX },
	{ "ccnumber", DD_PG_PII_CARD, AFFIX },
	{ "ccnum", DD_PG_PII_CARD, RUN },
	{ "cvv", DD_PG_PII_CARD, RUN },
	{ "cvc", DD_PG_PII_CARD, RUN },
	{ "address", DD_PG_PII_ADDRESS, AFFIX },
	{ "addr", DD_PG_PII_ADDRESS, RUN },
	{ "street", DD_PG_PII_ADDRESS, AFFIX },
	{ "city", DD_PG_PII_ADDRESS, RUN },
	{ "zip", DD_PG_PII_ADDRESS, RUN },
	{ "zipcode", DD_PG_PII_ADDRESS, AFFIX },
	{ "postcode", DD_PG_PII_ADDRESS, AFFIX },
	{ "postal", DD_PG_PII_ADDRESS, AFFIX },
	{ "housenumber", DD_PG_PII_ADDRESS, AFFIX },
};

/* Words of a table whose rows are people: its `name` column is a person's. */
static const char *const people[] = {
	"user", "customer", "client", "employee", "member", "person", "people", "contact", "account",
	"patient", "student", "subscriber", "author", "owner", "profile", "staff", "buyer", "seller",
	"guest", "recipient", "applicant", "candidate", "driver", "passenger", "visitor", "donor",
	"volunteer", "teacher", "lead", "signup", "participant", "attendee", "resident", "citizen",
};

/* A column name alone that is a person's name in such a table. */
static const char *const people_names[] = { "name", "displayname", "fullname" };

/*
 * The type categories (pg_type.typcategory: S string, A array, N numeric,
 * D date/time, I network address) a kind's values can be stored as.
 */
static const char *
kind_categories(enum dd_pg_pii_kind kind)
{
	switch (kind) {
	case DD_PG_PII_EMAIL: return "SA";
	case DD_PG_PII_PHONE: return "SNA";
	case DD_PG_PII_NAME: return "S";
	case DD_PG_PII_ADDRESS: return "SNA";
	case DD_PG_PII_BIRTH: return "SDN";
	case DD_PG_PII_IP: return "SI";
	case DD_PG_PII_NATIONAL_ID: return "SN";
	case DD_PG_PII_BANK: return "SN";
	case DD_PG_PII_CARD: return "SN";
	}
	return "";
}

const char *
dd_pg_pii_kind_name(enum dd_pg_pii_kind kind)
{
	static const char *const names[] = { "email", "phone", "name", "address", "birth", "ip", "national_id",
					     "bank", "card" };
	return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

const char *
dd_pg_pii_kind_text(enum dd_pg_pii_kind kind)
{
	static const char *const texts[] = { "e-mail address", "phone number", "person's name", "postal address",
					     "birth date", "IP address", "national id", "bank account", "card number" };
	return (unsigned)kind < sizeof(texts) / sizeof(texts[0]) ? texts[kind] : "?";
}

/*
 * Split a name into lower-case ASCII words: at every character that is not
 * a letter or digit, between a lower-case letter and an upper-case one
 * (firstName) and between letters and digits (address1). At most
 * NAME_MAX_TOKENS words of at most 63 bytes each (the server's limit).
 */
static size_t
tokenise(const char *s, char tok[][64])
{
	size_t n = 0, len = 0;

	for (const unsigned char *p = (const unsigned char *)s;; p++) {
		int alnum = *p && *p < 0x80 && isalnum(*p);
		int cut = !alnum ||
			  (len && (islower(p[-1]) && isupper(*p))) ||
			  (len && (!!isdigit(p[-1]) != !!isdigit(*p)));
		if (cut && len) {
			tok[n][len] = '\0';
			if (++n == NAME_MAX_TOKENS)
				return n;
			len = 0;
		}
		if (!*p)
			return n;
		if (alnum && len < 63)
			tok[n][len++] = (char)tolower(*p);
	}
}

static int
ends_with(const char *s, const char *w)
{
	size_t ls = strlen(s), lw = strlen(w);
	return ls >= lw && !memcmp(s + ls - lw, w, lw);
}

/* Does `w` equal a run of consecutive tokens joined, or (AFFIX) begin or end one token? */
static int
word_in(const char tok[][64], size_t n, const char *w, int how)
{
	size_t lw = strlen(w);

	for (size_t i = 0; i < n; i++) {
		if (how == AFFIX && (!strncmp(tok[i], w, lw) || ends_with(tok[i], w)))
			return 1;
		size_t at = 0;
		for (size_t k = i; k < n; k++) {
			size_t lt = strlen(tok[k]);
			if (at + lt > lw || memcmp(w + at, tok[k], lt))
				break;
			at += lt;
			if (at == lw)
				return 1;
		}
	}
	return 0;
}

/* Does the word name people (users, customer), singular or plural? */
static int
people_word(const char *w)
{
	for (size_t k = 0; k < sizeof(people) / sizeof(people[0]); k++) {
		size_t lp = strlen(people[k]);
		if (!strncmp(w, people[k], lp) && (!w[lp] || !strcmp(w + lp, "s") || !strcmp(w + lp, "es")))
			return 1;
	}
	return 0;
}

/* Its last word (the noun: app_users, user_profiles, not user_roles) names people. */
static int
people_table(const char *table)
{
	char tok[NAME_MAX_TOKENS][64];
	size_t n = tokenise(table, tok);

	return n && people_word(tok[n - 1]);
}

/* A person's name in any table: <people word>_name (customer_name, contact_name); holder, billing, shipping name. */
static int
persons_name(const char tok[][64], size_t n)
{
	static const char *const whose[] = { "holder", "cardholder", "billing", "shipping" };

	if (n < 2 || strcmp(tok[n - 1], "name"))
		return 0;
	for (size_t i = 0; i < sizeof(whose) / sizeof(whose[0]); i++)
		if (!strcmp(tok[n - 2], whose[i]))
			return 1;
	return people_word(tok[n - 2]);
}

int
dd_pg_pii_name_kind(const char *table, const char *column, char category)
{
	char tok[NAME_MAX_TOKENS][64], joined[NAME_MAX_TOKENS * 64] = "";
	size_t n = tokenise(column, tok);

	if (category == 'I')
		return DD_PG_PII_IP; /* inet, cidr: whatever the name */
	for (size_t i = 0; i < n; i++)
		if (!strcmp(tok[i], "mac"))
			return -1; /* mac_address: a device's, not a place or a person */
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (word_in((const char(*)[64])tok, n, words[i].w, words[i].how))
			return strchr(kind_categories(words[i].kind), category) && category ? (int)words[i].kind : -1;
	if (category != 'S')
		return -1;
	if (persons_name((const char(*)[64])tok, n))
		return DD_PG_PII_NAME;
	for (size_t i = 0; i < n; i++)
		strcat(joined, tok[i]);
	for (size_t i = 0; i < sizeof(people_names) / sizeof(people_names[0]); i++)
		if (!strcmp(joined, people_names[i]) && people_table(table))
			return DD_PG_PII_NAME;
	return -1;
}

/* ---- the catalog ---- */

struct col {
	char *name, *qname, *type;
	char category;
	int doc;              /* json or jsonb: its text is searched, never matched whole */
	int notnull;
	int kind;             /* -1: none found (yet) */
	enum dd_pg_pii_sign sign;
	int cls;              /* BY_VALUES, BY_CONTENTS: the value class (class_kind[]) */
	unsigned sampled, matched;
};

/* Are its values looked at: text, or a JSON document, that neither its name nor its type marked? */
static int
sampled(const struct col *k)
{
	return k->kind < 0 && (k->category == 'S' || k->doc);
}

struct tbl {
	unsigned oid;
	char *qname, *nspname, *relname;
	char relkind;
	unsigned *parents;
	size_t nparents;
	int excluded, no_data;
	int walked;                /* inherit_flags: looked at (its flags complete, or on the walk's path) */
	double relpages, per_page; /* statistics; per_page 0 = unknown */
};

static const char tables_sql[] =
	"SELECT c.oid, format('%I.%I', n.nspname, c.relname), n.nspname, c.relname, c.relkind,"
	" (SELECT string_agg(inhparent::text, ',') FROM pg_inherits WHERE inhrelid = c.oid),"
	" c.relpages::float8, CASE WHEN c.relpages > 0 AND c.reltuples > 0 THEN c.reltuples / c.relpages ELSE 0 END"
	" FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	" WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'"
	"   AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"
	"   AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass"
	"     AND e.objid = c.oid AND e.deptype = 'e')"
	" ORDER BY 2";

/* How many large objects the database holds (pg_largeobject_metadata is readable by every user). */
static int
count_large_objects(PGconn *c, struct dd_pg_pii_report *r)
{
	PGresult *res = dd_pg_query(c, "SELECT count(*) FROM pg_largeobject_metadata", 0, NULL);

	if (!res)
		return dd_error_wrap("counting the large objects");
	r->large_objects = (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

/* The table's name now (its oid's): no row when it was dropped since the catalog was read. */
static const char table_now_sql[] =
	"SELECT format('%I.%I', n.nspname, c.relname), n.nspname, c.relname"
	" FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1";

/* a domain's typcategory is its base type's */
static const char columns_sql[] =
	"SELECT a.attname, quote_ident(a.attname), format_type(a.atttypid, a.atttypmod), t.typcategory,"
	" a.attnotnull, CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END"
	"   IN ('json'::regtype, 'jsonb'::regtype)"
	" FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
	" WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''"
	" ORDER BY a.attnum";

static void
tbls_free(struct tbl *t, size_t n)
{
	for (size_t i = 0; t && i < n; i++) {
		free(t[i].qname);
		free(t[i].nspname);
		free(t[i].relname);
		free(t[i].parents);
	}
	free(t);
}

/*
 * excluded / no_data from the ancestors too (a partition of an excluded table is excluded), as dump.c
 * does: each table walked once (multiple inheritance costs its edges, not its paths).
 */
static void
inherit_flags(struct tbl *t, size_t n, struct tbl *r, int depth)
{
	if (r->walked)
		return;
	r->walked = 1;
	for (size_t i = 0; i < r->nparents && depth < DD_PG_MAX_INHERIT_DEPTH; i++)
		for (size_t k = 0; k < n; k++)
			if (t[k].oid == r->parents[i]) {
				inherit_flags(t, n, &t[k], depth + 1);
				r->excluded |= t[k].excluded;
				r->no_data |= t[k].no_data;
			}
}

static int
read_tables(PGconn *c, const struct dd_pg_pii_opts *o, struct tbl **out, size_t *nout)
{
	PGresult *res = dd_pg_query(c, tables_sql, 0, NULL);
	struct tbl *t;
	size_t n;

	if (!res)
		return dd_error_wrap("reading the catalog");
	n = (size_t)PQntuples(res);
	t = dd_calloc(n + 1, sizeof(*t));
	for (size_t i = 0; i < n; i++) {
		int row = (int)i;
		t[i].oid = (unsigned)strtoul(PQgetvalue(res, row, 0), NULL, 10);
		t[i].qname = dd_strdup(PQgetvalue(res, row, 1));
		t[i].nspname = dd_strdup(PQgetvalue(res, row, 2));
		t[i].relname = dd_strdup(PQgetvalue(res, row, 3));
		t[i].relkind = PQgetvalue(res, row, 4)[0];
		if (!PQgetisnull(res, row, 5)) {
			char *list = dd_strdup(PQgetvalue(res, row, 5)), *save = NULL;
			for (char *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
				t[i].parents = dd_realloc(t[i].parents, (t[i].nparents + 1) * sizeof(unsigned));
				t[i].parents[t[i].nparents++] = (unsigned)strtoul(s, NULL, 10);
			}
			free(list);
		}
		t[i].relpages = strtod(PQgetvalue(res, row, 6), NULL);
		t[i].per_page = strtod(PQgetvalue(res, row, 7), NULL);
		t[i].excluded = dd_pg_patterns_match(o->exclude_tables, t[i].nspname, t[i].relname);
		t[i].no_data = dd_pg_patterns_match(o->exclude_data, t[i].nspname, t[i].relname);
	}
	PQclear(res);
	for (size_t i = 0; i < n; i++)
		inherit_flags(t, n, &t[i], 0);
	*out = t;
	*nout = n;
	return 0;
}

static void
cols_free(struct col *cols, size_t n)
{
	for (size_t i = 0; cols && i < n; i++) {
		free(cols[i].name);
		free(cols[i].qname);
		free(cols[i].type);
	}
	free(cols);
}

/* The table's columns, each with the kind its type or name gives (or -1). */
static int
read_columns(PGconn *c, const struct tbl *t, struct col **out, size_t *nout)
{
	char oid[16];
	const char *params[] = { oid };
	PGresult *res;
	struct col *cols;
	size_t n;

	snprintf(oid, sizeof(oid), "%u", t->oid);
	if (!(res = dd_pg_query(c, columns_sql, 1, params)))
		return dd_error_wrap("reading the columns of table %s", t->qname);
	n = (size_t)PQntuples(res);
	cols = dd_calloc(n + 1, sizeof(*cols));
	for (size_t i = 0; i < n; i++) {
		struct col *k = &cols[i];
		int row = (int)i;
		k->name = dd_strdup(PQgetvalue(res, row, 0));
		k->qname = dd_strdup(PQgetvalue(res, row, 1));
		k->type = dd_strdup(PQgetvalue(res, row, 2));
		k->category = PQgetvalue(res, row, 3)[0];
		k->notnull = PQgetvalue(res, row, 4)[0] == 't';
		k->doc = PQgetvalue(res, row, 5)[0] == 't';
		k->kind = dd_pg_pii_name_kind(t->relname, k->name, k->category);
		k->sign = k->category == 'I' ? DD_PG_PII_BY_TYPE : DD_PG_PII_BY_NAME;
	}
	PQclear(res);
	*out = cols;
	*nout = n;
	return 0;
}

/* ---- values ---- */

/*
 * The value classes, in the order a value is tried (the first that fits
 * counts): $1 e-mail, $2 IPv4 or IPv6 (with an optional prefix length),
 * $3 card number (then Luhn), $4 IBAN without blanks, upper case (then
 * mod 97), $5 US SSN, $6 phone number (7 to 15 digits, and $7 what is
 * not one: plain numbers, decimals, dates); each matched against the whole
 * value. Then $8: a text or JSON document of at most DOC_MAX_BYTES (as
 * stored) that holds an e-mail address somewhere.
 */
static const char *const patterns[] = {
	"^[a-z0-9._%+'-]+@[a-z0-9-]+(\\.[a-z0-9-]+)*\\.[a-z]{2,63}$",
	"^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(/[0-9]{1,2})?$"
	"|^([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}(/[0-9]{1,3})?$"
	"|^([0-9a-f]{1,4}(:[0-9a-f]{1,4})*)?::([0-9a-f]{1,4}(:[0-9a-f]{1,4})*)?(/[0-9]{1,3})?$",
	"^[2-6][0-9]{3}([ -]?[0-9]{4}){3}$|^3[47][0-9]{2}[ -]?[0-9]{6}[ -]?[0-9]{5}$",
	"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$",
	"^(?!000|666)[0-8][0-9]{2}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}$",
	"^\\+?\\(?[0-9][0-9 ().-]{5,18}[0-9]$",
	"^[0-9]+$|^[0-9]+\\.[0-9]+$|^[0-9]{4}[./-][0-9]{1,2}[./-][0-9]{1,2}$|^[0-9]{1,2}[./-][0-9]{1,2}[./-][0-9]{2,4}$",
	"[a-z0-9_%+'-]@[a-z0-9-]+(\\.[a-z0-9-]+)*\\.[a-z]{2,63}",
};
#define NPATTERNS 8
#define NCLASSES 7
#define CONTENTS_CLASS 6

static const enum dd_pg_pii_kind class_kind[NCLASSES] = {
	DD_PG_PII_EMAIL, DD_PG_PII_IP, DD_PG_PII_CARD, DD_PG_PII_BANK, DD_PG_PII_NATIONAL_ID, DD_PG_PII_PHONE,
	DD_PG_PII_EMAIL,
};
static const char *const class_text[NCLASSES] = {
	"look like e-mail addresses", "look like IP addresses", "look like card numbers that pass the Luhn check",
	"look like IBANs with valid check digits", "look like US social security numbers", "look like phone numbers",
	"contain e-mail addresses",
};

/* The per-value part of the sample query: class z.c of value k.v (d: its digits, u: its IBAN form). */
static const char classify_sql[] =
	" CROSS JOIN LATERAL (SELECT regexp_replace(k.v, '[^0-9]', '', 'g'), upper(replace(k.v, ' ', ''))) w(d, u)"
	" CROSS JOIN LATERAL (SELECT CASE"
	"  WHEN k.v ~* $1 THEN 1"
	"  WHEN k.v ~* $2 THEN 2"
	"  WHEN CASE WHEN k.v ~ $3 THEN (SELECT sum(CASE WHEN i % 2 = 0 THEN x * 2 / 10 + x * 2 % 10 ELSE x END) % 10 = 0"
	"    FROM (SELECT substr(reverse(w.d), i, 1)::int, i FROM generate_series(1, length(w.d)) i) q(x, i))"
	"    ELSE false END THEN 3"
	"  WHEN CASE WHEN w.u ~ $4 THEN (SELECT string_agg(CASE WHEN ch ~ '[A-Z]' THEN (ascii(ch) - 55)::text"
	"    ELSE ch END, '' ORDER BY o) FROM regexp_split_to_table(substr(w.u, 5) || left(w.u, 4), '')"
	"    WITH ORDINALITY r(ch, o))::numeric % 97 = 1 ELSE false END THEN 4"
	"  WHEN k.v ~ $5 THEN 5"
	"  WHEN k.v ~ $6 AND k.v !~ $7 AND length(w.d) BETWEEN 7 AND 15 THEN 6"
	"  WHEN CASE WHEN strpos(k.x, '@') > 0 THEN k.x ~* $8 ELSE false END THEN 7"
	"  END OFFSET 0) z(c)"; /* OFFSET 0: computed once per value, not once per count(*) FILTER */

/*
 * The percentage of t's pages TABLESAMPLE SYSTEM reads for about twice
 * `rows` rows (at least 8 pages), or 0 when statistics are unknown or say
 * the table is no larger: then its first rows are read (LIMIT stops the scan).
 */
static double
sample_percent(const struct tbl *t, int rows)
{
	double pages = t->per_page > 0 ? ceil(2.0 * rows / t->per_page) : 0;

	if (pages < 8)
		pages = 8;
	return t->per_page > 0 && pages < t->relpages ? 100.0 * pages / t->relpages : 0;
}

static void
sample_from(struct dd_buf *sql, const struct tbl *t, int rows)
{
	double pct = sample_percent(t, rows);

	dd_buf_printf(sql, " FROM ONLY %s", t->qname);
	if (pct > 0)
		dd_buf_printf(sql, " TABLESAMPLE SYSTEM (%.6f) REPEATABLE (0)", pct);
	dd_buf_printf(sql, " LIMIT %d) s", rows);
}

static char *
sample_sql(const struct tbl *t, const struct col *cols, size_t n, int rows)
{
	struct dd_buf sql = DD_BUF_INIT;
	int first = 1;

	dd_buf_puts(&sql, "SELECT k.i, count(*), count(*) FILTER (WHERE k.p AND coalesce(k.v <> '', true))");
	for (int c = 1; c <= NCLASSES; c++)
		dd_buf_printf(&sql, ", count(*) FILTER (WHERE z.c = %d)", c);
	dd_buf_puts(&sql, " FROM (SELECT ");
	for (size_t i = 0; i < n; i++)
		if (sampled(&cols[i])) {
			dd_buf_printf(&sql, "%s%s", first ? "" : ", ", cols[i].qname);
			first = 0;
		}
	sample_from(&sql, t, rows);
	dd_buf_puts(&sql, " CROSS JOIN LATERAL (VALUES ");
	first = 1;
	for (size_t i = 0; i < n; i++) {
		const char *q = cols[i].qname;
		if (!sampled(&cols[i]))
			continue;
		/* i; v: the whole value, trimmed, when short text; p: not null; x: the text of a small document */
		dd_buf_printf(&sql, "%s(%zu, ", first ? "" : ", ", i);
		if (cols[i].doc)
			dd_buf_puts(&sql, "NULL::text, ");
		else
			dd_buf_printf(&sql, "CASE WHEN octet_length(s.%s::text) <= %d THEN btrim(s.%s::text) END, ", q,
				      VALUE_MAX_BYTES, q);
		/* text: its length is known without detoasting it, a document's only as stored */
		dd_buf_printf(&sql, "s.%s IS NOT NULL, CASE WHEN pg_column_size(s.%s) <= %d", q, q, DOC_MAX_BYTES);
		if (!cols[i].doc)
			dd_buf_printf(&sql, " AND octet_length(s.%s::text) <= %d", q, 8 * DOC_MAX_BYTES);
		dd_buf_printf(&sql, " THEN s.%s::text END)", q);
		first = 0;
	}
	dd_buf_puts(&sql, ") k(i, v, p, x)");
	dd_buf_puts(&sql, classify_sql);
	dd_buf_puts(&sql, " GROUP BY k.i");
	return dd_buf_detach(&sql, NULL);
}

/* The longest wait for a table's lock, in milliseconds. */
static int
lock_wait_ms(const struct dd_pg_pii_opts *o)
{
	return o->lock_wait_timeout_ms > 0 ? o->lock_wait_timeout_ms : DD_PG_LOCK_WAIT_TIMEOUT_MS;
}

static int
sample_failed(PGconn *c, PGresult *res, const struct tbl *t, const struct dd_pg_pii_opts *o)
{
	const char *state = dd_pg_sqlstate(res);

	if (!strcmp(state, "55P03")) {
		dd_error("table %s is locked by another session: gave up after %g s", t->qname,
			 lock_wait_ms(o) / 1000.0);
		dd_hint("another session holds or waits for an exclusive lock on it (a migration?): run it again "
			"once that is done, or raise lock_wait_timeout");
		return -1;
	}
	dd_pg_error(c, res);
	if (!strcmp(state, "42501"))
		dd_hint("grant this user SELECT on every table, or leave tables out with exclude_tables");
	return dd_error_wrap("sampling table %s", t->qname);
}

/* Sample t's text columns that no name or type marked; *rows: how many rows were read. 1: t is gone. */
static int
sample_values(PGconn *c, const struct tbl *t, struct col *cols, size_t n, const struct dd_pg_pii_opts *o,
	      size_t *rows)
{
	char *sql;
	PGresult *res;
	size_t want = 0;

	for (size_t i = 0; i < n; i++)
		want += sampled(&cols[i]);
	if (!want || o->sample_rows <= 0)
		return 0;
	sql = sample_sql(t, cols, n, o->sample_rows);
	res = PQexecParams(c, sql, NPATTERNS, NULL, patterns, NULL, NULL, 0);
	free(sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		int gone = !strcmp(dd_pg_sqlstate(res), "42P01"); /* dropped since its name was read */
		if (!gone)
			sample_failed(c, res, t, o);
		PQclear(res);
		return gone ? 1 : -1;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		size_t i = (size_t)strtoul(PQgetvalue(res, r, 0), NULL, 10);
		unsigned long nonempty = strtoul(PQgetvalue(res, r, 2), NULL, 10), best = 0;
		int which = -1;
		if (i >= n)
			continue;
		*rows = strtoul(PQgetvalue(res, r, 1), NULL, 10);
		for (int k = 0; k < NCLASSES; k++) {
			unsigned long m = strtoul(PQgetvalue(res, r, 3 + k), NULL, 10);
			if (m > best)
				best = m, which = k;
		}
		cols[i].sampled = (unsigned)nonempty;
		if (which < 0 || best * 100 < (unsigned long)DD_PG_PII_SHARE * nonempty)
			continue;
		cols[i].kind = (int)class_kind[which];
		cols[i].sign = which == CONTENTS_CLASS ? DD_PG_PII_BY_CONTENTS : DD_PG_PII_BY_VALUES;
		cols[i].cls = which;
		cols[i].matched = (unsigned)best;
	}
	PQclear(res);
	return 0;
}

/* ---- the scan ---- */

static char *
reason_text(const struct col *k)
{
	if (k->sign == DD_PG_PII_BY_TYPE)
		return dd_asprintf("its type, %s", k->type);
	if (k->sign == DD_PG_PII_BY_NAME)
		return dd_strdup("its name");
	return dd_asprintf("%u%% of %u sampled values %s",
			   (unsigned)((k->matched * 100ULL) / (k->sampled ? k->sampled : 1)), k->sampled, class_text[k->cls]);
}

static int
has_ancestor(const struct dd_pg_pii_column *f, const struct tbl *t)
{
	for (size_t i = 0; i < f->nancestors; i++)
		if (!strcmp(f->ancestors[i].schema, t->nspname) && !strcmp(f->ancestors[i].table, t->relname))
			return 1;
	return 0;
}

/*
 * f->ancestors: t's parents, then theirs (depth-first, nearest first), as dump.c's inherit_flags walks
 * them; each once, however many paths of multiple inheritance lead to it.
 */
static void
add_ancestors(struct dd_pg_pii_column *f, const struct tbl *all, size_t n, const struct tbl *t, int depth)
{
	for (size_t i = 0; i < t->nparents && depth < DD_PG_MAX_INHERIT_DEPTH; i++)
		for (size_t k = 0; k < n; k++)
			if (all[k].oid == t->parents[i] && !has_ancestor(f, &all[k])) {
				struct dd_pg_pii_table *a;
				f->ancestors = dd_realloc(f->ancestors, (f->nancestors + 1) * sizeof(*f->ancestors));
				a = &f->ancestors[f->nancestors++];
				a->schema = dd_strdup(all[k].nspname);
				a->table = dd_strdup(all[k].relname);
				add_ancestors(f, all, n, &all[k], depth + 1);
			}
}

/* The top-most partitioned table t is a partition of (a partition has one parent): its index in all, or -1. */
static long
top_partitioned(const struct tbl *all, size_t n, const struct tbl *t)
{
	long top = -1;

	for (int depth = 0; t->nparents == 1 && depth < 64; depth++) {
		long up = -1;
		for (size_t k = 0; k < n && up < 0; k++)
			if (all[k].oid == t->parents[0] && all[k].relkind == 'p')
				up = (long)k;
		if (up < 0)
			break;
		top = up;
		t = &all[up];
	}
	return top;
}

static void
add_found(struct dd_pg_pii_report *r, const struct tbl *all, size_t nall, const struct tbl *t, const struct col *k)
{
	struct dd_pg_pii_column *f;
	long top = top_partitioned(all, nall, t);

	r->cols = dd_realloc(r->cols, (r->ncols + 1) * sizeof(*r->cols));
	f = &r->cols[r->ncols++];
	memset(f, 0, sizeof(*f));
	f->schema = dd_strdup(t->nspname);
	f->table = dd_strdup(t->relname);
	f->column = dd_strdup(k->name);
	f->type = dd_strdup(k->type);
	f->notnull = k->notnull;
	f->kind = (enum dd_pg_pii_kind)k->kind;
	f->sign = k->sign;
	f->sampled = k->sampled;
	f->matched = k->matched;
	f->reason = reason_text(k);
	add_ancestors(f, all, nall, t, 0);
	for (size_t i = 0; top >= 0 && i < f->nancestors && !f->top; i++)
		if (!strcmp(f->ancestors[i].schema, all[top].nspname) && !strcmp(f->ancestors[i].table, all[top].relname))
			f->top = &f->ancestors[i];
}

/* t's current name, as table_now_sql reads it: 0, or 1 when t was dropped since the catalog was read. */
static int
table_now(PGconn *c, struct tbl *t)
{
	char oid[16];
	const char *params[] = { oid };
	PGresult *res;
	int gone;

	snprintf(oid, sizeof(oid), "%u", t->oid);
	if (!(res = dd_pg_query(c, table_now_sql, 1, params)))
		return dd_error_wrap("reading the name of table %s", t->qname);
	if (!(gone = PQntuples(res) == 0) && strcmp(PQgetvalue(res, 0, 0), t->qname)) {
		free(t->qname), free(t->nspname), free(t->relname);
		t->qname = dd_strdup(PQgetvalue(res, 0, 0));
		t->nspname = dd_strdup(PQgetvalue(res, 0, 1));
		t->relname = dd_strdup(PQgetvalue(res, 0, 2));
	}
	PQclear(res);
	return gone;
}

/* The session: read only, bounded waits; no JIT (compiling the sample query costs more than running it). */
static int
begin(PGconn *c, const struct dd_pg_pii_opts *o)
{
	int lock_ms = lock_wait_ms(o);
	char *sql = dd_asprintf("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;"
				" SET LOCAL lock_timeout = %d; SET LOCAL statement_timeout = %d;"
				" SET LOCAL idle_in_transaction_session_timeout = 0; SET LOCAL jit = off",
				lock_ms, lock_ms + 60000);
	int rc = dd_pg_exec(c, sql);

	free(sql);
	return rc;
}

/* One table in its own transaction, so its lock is let go before the next table's is taken. */
static int
scan_table(PGconn *c, struct tbl *all, size_t nall, struct tbl *t, const struct dd_pg_pii_opts *o,
	   struct dd_pg_pii_report *r)
{
	struct col *cols = NULL;
	size_t n = 0, rows = 0;
	int rc = -1, gone;

	if (begin(c, o) < 0 || (gone = table_now(c, t)) < 0)
		goto out;
	if (!gone && read_columns(c, t, &cols, &n) < 0)
		goto out;
	if (!gone && (gone = sample_values(c, t, cols, n, o, &rows)) < 0)
		goto out;
	if (!gone)
		dd_failpoint("pii-sampled"); /* tests: it holds this table's lock and no other (t-pii-check.sh) */
	if (dd_pg_exec(c, gone ? "ROLLBACK" : "COMMIT") < 0)
		goto out;
	rc = 0;
	if (gone) {
		dd_debug("pii-check: %s: dropped since the catalog was read, skipped", t->qname);
		goto out;
	}
	r->tables++;
	r->columns += n;
	r->sampled_rows += rows;
	for (size_t i = 0; i < n; i++)
		if (cols[i].kind >= 0)
			add_found(r, all, nall, t, &cols[i]);
	if (rows && sample_percent(t, o->sample_rows) > 0)
		dd_debug("pii-check: %s: %zu columns, %zu rows sampled from %.4f%% of its pages (TABLESAMPLE)",
			 t->qname, n, rows, sample_percent(t, o->sample_rows));
	else
		dd_debug("pii-check: %s: %zu columns, %zu rows sampled (its first rows)", t->qname, n, rows);
out:
	cols_free(cols, n);
	return rc;
}

int
dd_pg_pii_scan(const struct dd_pg_pii_opts *o, struct dd_pg_pii_report *r)
{
	PGconn *c = NULL;
	struct tbl *t = NULL;
	size_t n = 0;
	int rc = -1;
	double start = dd_pg_seconds();

	memset(r, 0, sizeof(*r));
	if (dd_pg_connect(&c, o->conninfo, NULL) < 0)
		return -1;
	snprintf(r->database, sizeof(r->database), "%s", PQdb(c));
	if (begin(c, o) < 0 || read_tables(c, o, &t, &n) < 0 || count_large_objects(c, r) < 0 ||
	    dd_pg_exec(c, "COMMIT") < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (t[i].relkind != 'r' || t[i].excluded || t[i].no_data)
			continue;
		if (scan_table(c, t, n, &t[i], o, r) < 0)
			goto out;
	}
	r->seconds = dd_pg_seconds() - start;
	dd_debug("pii-check: database %s: %zu tables, %zu columns, %zu rows sampled in %.2f s", r->database,
		 r->tables, r->columns, r->sampled_rows, r->seconds);
	rc = 0;
out:
	tbls_free(t, n);
	PQfinish(c);
	if (rc < 0) {
		dd_error_wrap("looking for personal data in database %s", r->database);
		dd_pg_pii_report_release(r);
	}
	return rc;
}

void
dd_pg_pii_report_release(struct dd_pg_pii_report *r)
{
	for (size_t i = 0; r->cols && i < r->ncols; i++) {
		free(r->cols[i].schema);
		free(r->cols[i].table);
		free(r->cols[i].column);
		free(r->cols[i].type);
		free(r->cols[i].reason);
		for (size_t k = 0; k < r->cols[i].nancestors; k++) {
			free(r->cols[i].ancestors[k].schema);
			free(r->cols[i].ancestors[k].table);
		}
		free(r->cols[i].ancestors);
	}
	free(r->cols);
	r->cols = NULL;
	r->ncols = 0;
}
