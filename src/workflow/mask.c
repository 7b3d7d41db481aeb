/*
 * workflow/mask.c: a profile's masking rules (config, issue 21) as the dump
 * takes them (pg.h, struct dd_pg_mask_rule: pg reads no config header),
 * the masking key from the store, and the rules' hash that the manifest
 * ("masked" metadata), the ref file ("masked" line) and the incremental
 * record's options hash carry.
 */
#include "config/config.h"
#include "pg/pg.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/hex.h"
#include "util/sha256.h"
#include "workflow/internal.h"

#include <stdlib.h>
#include <string.h>

static enum dd_pg_mask_kind
pg_kind(enum dd_mask_kind k)
{
	switch (k) {
	case DD_MASK_NULL:
		return DD_PG_MASK_NULL;
	case DD_MASK_REDACT:
		return DD_PG_MASK_REDACT;
	case DD_MASK_HASH:
		return DD_PG_MASK_HASH;
	case DD_MASK_FAKE_EMAIL:
		return DD_PG_MASK_FAKE_EMAIL;
	case DD_MASK_FAKE_NAME:
		return DD_PG_MASK_FAKE_NAME;
	case DD_MASK_FAKE_PHONE:
		return DD_PG_MASK_FAKE_PHONE;
	case DD_MASK_SQL:
	case DD_MASK_KEEP:
		break;
	}
	return DD_PG_MASK_SQL;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
dd_workflow_masks_hash(const struct dd_profile *p, char out[65], size_t *n)
{
	char **lines = dd_calloc(p->nmasks + 1, sizeof(char *));
	struct dd_buf text = DD_BUF_INIT;
	uint8_t d[DD_SHA256_BYTES];

	*n = 0;
	for (size_t i = 0; i < p->nmasks; i++) {
		const struct dd_mask_rule *r = &p->masks[i];
		if (r->kind == DD_MASK_KEEP)
			continue;
		/* names and the expression as the server sees them, tab-separated (no name holds a tab it
		   would not also hold in the same rule written again) */
		lines[(*n)++] = dd_asprintf("mask\t%s\t%s\t%s\t%s\t%s\n", r->schema ? r->schema : "", r->table,
					    r->column, dd_mask_kind_name(r->kind), r->expr ? r->expr : "");
	}
	qsort(lines, *n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < *n; i++)
		dd_buf_puts(&text, lines[i]);
	if (p->subset)
		dd_buf_printf(&text, "subset\t%s\nsubset_others\t%s\n", p->subset->text,
			      p->subset_others == DD_SUBSET_EMPTY ? "empty" : "whole");
	out[0] = '\0';
	if (text.len) {
		dd_sha256(d, text.ptr, text.len);
		dd_hex_encode(out, d, sizeof(d));
	}
	for (size_t i = 0; i < *n; i++)
		free(lines[i]);
	free(lines);
	dd_buf_release(&text);
}

void
dd_workflow_masks_init(struct dd_workflow_masks *m, const struct dd_profile *p, const struct dd_store *st)
{
	size_t n;

	memset(m, 0, sizeof(*m));
	dd_workflow_masks_hash(p, m->hash, &n);
	if (!n)
		return;
	m->rules = dd_calloc(n, sizeof(*m->rules));
	for (size_t i = 0; i < p->nmasks; i++) {
		const struct dd_mask_rule *r = &p->masks[i];
		struct dd_pg_mask_rule *q;
		if (r->kind == DD_MASK_KEEP)
			continue;
		q = &m->rules[m->nrules++];
		q->schema = r->schema;
		q->table = r->table;
		q->column = r->column;
		q->kind = pg_kind(r->kind);
		q->expr = r->expr;
		q->text = r->text;
		q->line = r->line;
	}
	if (st)
		dd_store_mask_key(st, m->key);
}

void
dd_workflow_masks_release(struct dd_workflow_masks *m)
{
	free(m->rules);
	explicit_bzero(m->key, sizeof(m->key));
	memset(m, 0, sizeof(*m));
}
