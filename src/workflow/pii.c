/*
 * workflow/pii.c: a profile's columns that look personal (pg/pii.c finds
 * them) against its mask rules (config/mask.c parses them): pii-check, and
 * `masked = required`, which the snapshot checks first (workflow.c).
 *
 * A rule covers a column when it names the column's table and column, and
 * its schema when the rule names one: any rule, `keep` included, since a
 * rule says someone looked at the column. As the dump applies a rule on a
 * table to its partitions and inheritance children at any depth (pg/mask.c),
 * a rule naming one of the table's ancestors covers it too; the table's own
 * rule wins, as in the dump. The mask line suggested for a partition's
 * column names its top-most partitioned table, which covers every partition.
 */
#include "workflow/pii.h"
#include "config/config.h"
#include "util/buf.h"
#include "util/conninfo.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
names(const struct dd_mask_rule *r, const char *schema, const char *table, const char *column)
{
	return !strcmp(r->table, table) && !strcmp(r->column, column) && (!r->schema || !strcmp(r->schema, schema));
}

/* The rule that covers c: one on its own table first, else the first on one of its ancestors (pg/mask.c's order). */
static const struct dd_mask_rule *
covering_rule(const struct dd_profile *p, const struct dd_pg_pii_column *c)
{
	for (size_t k = 0; k < p->nmasks; k++)
		if (names(&p->masks[k], c->schema, c->table, c->column))
			return &p->masks[k];
	for (size_t k = 0; k < p->nmasks; k++)
		for (size_t a = 0; a < c->nancestors; a++)
			if (names(&p->masks[k], c->ancestors[a].schema, c->ancestors[a].table, c->column))
				return &p->masks[k];
	return NULL;
}

int
dd_workflow_pii_check(const struct dd_config *cfg, const struct dd_profile *p, const char *source_db,
		      int sample_rows, struct dd_pii_check *out)
{
	struct dd_pg_pii_opts o;
	char *source = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	memset(&o, 0, sizeof(o));
	if (source_db && !(source = dd_conninfo_with_dbname(dd_config_database(cfg, p), source_db)))
		return -1;
	o.conninfo = source ? source : dd_config_database(cfg, p);
	o.exclude_tables = (const char *const *)p->exclude_tables;
	o.exclude_data = (const char *const *)p->exclude_data;
	o.sample_rows = sample_rows;
	o.lock_wait_timeout_ms = dd_config_lock_wait_timeout(cfg, p) * 1000;
	if (dd_pg_pii_scan(&o, &out->report) < 0)
		goto out;
	out->media = p->media;
	out->rule = dd_calloc(out->report.ncols + 1, sizeof(*out->rule));
	for (size_t i = 0; i < out->report.ncols; i++) {
		out->rule[i] = covering_rule(p, &out->report.cols[i]);
		out->uncovered += !out->rule[i];
	}
	rc = 0;
out:
	if (source)
		explicit_bzero(source, strlen(source)); /* it may hold the password */
	free(source);
	return rc;
}

void
dd_workflow_pii_release(struct dd_pii_check *c)
{
	dd_pg_pii_report_release(&c->report);
	free(c->rule);
	c->rule = NULL;
	c->uncovered = 0;
}

/* A name as profiles.ini reads it: bare when it is lower case [a-z_][a-z0-9_$]*, else double-quoted. */
static void
put_ident(struct dd_buf *b, const char *s)
{
	int bare = (*s >= 'a' && *s <= 'z') || *s == '_';

	for (const char *t = s; *t && bare; t++)
		bare = (*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9') || *t == '_' || *t == '$';
	if (bare) {
		dd_buf_puts(b, s);
		return;
	}
	dd_buf_putc(b, '"');
	for (; *s; s++) {
		if (*s == '"')
			dd_buf_putc(b, '"');
		dd_buf_putc(b, *s);
	}
	dd_buf_putc(b, '"');
}

/*
 * A first guess: fake values where they exist, hash where uniqueness and
 * joins may matter, else null (redact when NOT NULL); a text or document
 * that holds e-mail addresses somewhere is no e-mail address: null/redact.
 */
static const char *
suggest_rule(const struct dd_pg_pii_column *c)
{
	if (c->sign == DD_PG_PII_BY_CONTENTS)
		return c->notnull ? "redact" : "null";
	switch (c->kind) {
	case DD_PG_PII_EMAIL: return "fake_email";
	case DD_PG_PII_PHONE: return "fake_phone";
	case DD_PG_PII_NAME: return "fake_name";
	case DD_PG_PII_NATIONAL_ID:
	case DD_PG_PII_BANK:
	case DD_PG_PII_CARD: return "hash";
	case DD_PG_PII_ADDRESS: return "redact";
	case DD_PG_PII_BIRTH:
	case DD_PG_PII_IP: break;
	}
	return c->notnull ? "redact" : "null";
}

char *
dd_workflow_pii_suggest(const struct dd_pg_pii_column *c)
{
	struct dd_buf b = DD_BUF_INIT;

	dd_buf_puts(&b, "mask = ");
	put_ident(&b, c->top ? c->top->schema : c->schema);
	dd_buf_putc(&b, '.');
	put_ident(&b, c->top ? c->top->table : c->table);
	dd_buf_putc(&b, '.');
	put_ident(&b, c->column);
	dd_buf_printf(&b, " %s", suggest_rule(c));
	return dd_buf_detach(&b, NULL);
}

int
dd_workflow_pii_required(const struct dd_config *cfg, const struct dd_profile *p, const char *source_db)
{
	struct dd_pii_check chk;
	const struct dd_pg_pii_column *c = NULL;

	if (dd_workflow_pii_check(cfg, p, source_db, DD_PG_PII_SAMPLE_ROWS, &chk) < 0)
		return dd_error_wrap("profile %s has masked = required, and checking its columns failed", p->name);
	for (size_t i = 0; i < chk.report.ncols && !c; i++)
		if (!chk.rule[i])
			c = &chk.report.cols[i];
	if (c) {
		char more[64] = "";
		if (chk.uncovered > 1)
			snprintf(more, sizeof(more), " (and %zu more such column%s)", chk.uncovered - 1,
				 chk.uncovered == 2 ? "" : "s");
		dd_error("profile %s has masked = required, but column %s.%s.%s looks personal (%s: %s) and no mask rule "
			 "names it%s", p->name, c->schema, c->table, c->column, dd_pg_pii_kind_text(c->kind), c->reason,
			 more);
		dd_hint("nothing was captured; run `git dnadata pii-check %s` to list them with the mask lines to add "
			"(`keep` marks a column reviewed and not personal)", p->name);
	}
	dd_workflow_pii_release(&chk);
	return c ? -1 : 0;
}
