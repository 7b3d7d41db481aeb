/*
 * fuzz/fuzz-sqlscan.c: the quoting-aware scan of an inline profile's files
 * (pg/sqlload.c: dd_pg_sql_schema_split, dd_pg_sql_check_meta) on hostile
 * bytes (schema.sql and data.sql come from git; export's schema text from a
 * manifest). Beyond "no crash": each returns 0 or -1; a text without a
 * backslash or NUL byte holds no meta-command; a split's parts are in
 * order, within the text, with the marker line between them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pg.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *t = (const char *)data;
	size_t a = 0, b = 0, ml = strlen(DD_PG_POST_DATA_MARKER);
	int plain = !size || (!memchr(t, '\\', size) && !memchr(t, '\0', size));
	int meta = dd_pg_sql_check_meta(t, size, 0, "data.sql"), split = dd_pg_sql_schema_split(t, size, 0, &a, &b, "schema.sql");
	int strict = dd_pg_sql_check_meta(t, size, 1, "data.sql");

	/* for psql is stricter, never looser */
	if ((meta != 0 && meta != -1) || (split != 0 && split != -1) || (plain && meta != 0) || (meta < 0 && strict == 0))
		abort();
	if (split == 0 && (a > b || b > size || b - a < ml || memcmp(t + a, DD_PG_POST_DATA_MARKER, ml) ||
			   (a > 0 && t[a - 1] != '\n') || (b - a > ml && t[a + ml] != '\n')))
		abort();
	dd_error_clear();
	return 0;
}
