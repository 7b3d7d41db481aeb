/*
 * fuzz/fuzz-incr.c: the incremental snapshots' local record parser
 * (pg/incr.c) on arbitrary bytes.
 *
 * Beyond "no crash under ASan/UBSan": every failure has a one-line
 * reason; whatever parses formats to text that parses back to the same
 * text (formatting is a fixed point), the tables are found by name, and
 * every sample key is what dump.c may use: 1..DD_PG_INCR_MAX_KEY bytes of
 * COPY text fields joined by tabs (a composite key), no newline.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/incr.h"
#include "util/buf.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dd_pg_incr r, back;
	struct dd_buf a = DD_BUF_INIT, b = DD_BUF_INIT;

	if (dd_pg_incr_parse(&r, (const char *)data, size) < 0) {
		if (!dd_error_last() || strchr(dd_error_last(), '\n'))
			abort();
		dd_error_clear();
		return 0;
	}
	dd_pg_incr_format(&r, &a);
	if (a.len != size || memcmp(a.ptr, data, size))
		abort(); /* one text per record: the parser accepts only what the formatter writes */
	if (dd_pg_incr_parse(&back, a.ptr, a.len) < 0)
		abort();
	dd_pg_incr_format(&back, &b);
	if (a.len != b.len || memcmp(a.ptr, b.ptr, a.len))
		abort();
	for (size_t i = 0; i < r.ntables; i++) {
		if (dd_pg_incr_find(&back, r.tables[i].stream) == NULL)
			abort();
		for (size_t j = 0; j < r.tables[i].nsamples; j++) {
			const char *key = r.tables[i].samples[j].key;
			if (!*key || strlen(key) > DD_PG_INCR_MAX_KEY || strchr(key, '\n'))
				abort();
		}
	}
	dd_pg_incr_release(&r);
	dd_pg_incr_release(&back);
	dd_buf_release(&a);
	dd_buf_release(&b);
	return 0;
}
