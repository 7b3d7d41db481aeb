/*
 * fuzz/fuzz-pii.c: pii-check's pure parts on hostile names (a table's and
 * a column's names come from the server: anything but a NUL, up to 63
 * bytes there, any length here): the name heuristic (pg/pii.c
 * dd_pg_pii_name_kind) and the mask line it suggests (workflow/pii.c).
 *
 * Input: schema NUL table NUL column NUL category (one byte). Beyond "no
 * crash under ASan/UBSan": the kind is -1 or a kind; inet/cidr (category
 * 'I') is always an IP address; and for names profiles.ini can hold (1..63
 * bytes, no line end: the value is one line), the suggested line parses
 * back with config/mask.c as a rule on exactly that schema, table and
 * column.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "pg/pg.h"
#include "workflow/pii.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
ini_name(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n <= 63 && !strpbrk(s, "\r\n");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 4), *part[3];
	size_t at = 0;
	char category;
	int kind;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	memset(buf + size, 0, 4);
	for (int i = 0; i < 3; i++) {
		part[i] = buf + (at < size ? at : size);
		at += strlen(part[i]) + 1;
	}
	category = at < size ? (char)data[at] : 'S';
	kind = dd_pg_pii_name_kind(part[1], part[2], category);
	if (kind < -1 || kind > DD_PG_PII_CARD)
		abort();
	if (category == 'I' && kind != DD_PG_PII_IP)
		abort();
	if (ini_name(part[0]) && ini_name(part[1]) && ini_name(part[2])) {
		struct dd_pg_pii_column c = { part[0], part[1], part[2], (char *)"text", 0,
					      kind < 0 ? DD_PG_PII_EMAIL : (enum dd_pg_pii_kind)kind,
					      DD_PG_PII_BY_NAME, 0, 0, (char *)"its name" };
		char *line = dd_workflow_pii_suggest(&c);
		struct dd_mask_rule r;
		const char *why = NULL;
		if (strncmp(line, "mask = ", 7) || dd_mask_rule_parse(line + 7, &r, &why) < 0)
			abort();
		if (!r.schema || strcmp(r.schema, part[0]) || strcmp(r.table, part[1]) || strcmp(r.column, part[2]))
			abort();
		dd_mask_rule_clear(&r);
		free(line);
	}
	free(buf);
	return 0;
}
