/*
 * fuzz/fuzz-normalise.c: the schema normaliser (pg/normalise.c) on hostile
 * bytes (a schema text read from a manifest or a file). Beyond "no crash":
 * input with a NUL byte is refused and anything else is accepted, and the
 * result is a fixed point: normalising it again gives the same bytes (what
 * makes a schema file's diff show only real changes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pg/normalise.h"
#include "util/buf.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dd_buf once = DD_BUF_INIT, twice = DD_BUF_INIT;
	int has_nul = size && memchr(data, '\0', size) != NULL;
	int rc = dd_schema_normalise((const char *)data, size, &once);

	if (rc != (has_nul ? -1 : 0))
		abort();
	if (rc == 0) {
		if (dd_schema_normalise(once.ptr ? once.ptr : "", once.len, &twice) < 0)
			abort();
		if (once.len != twice.len || (once.len && memcmp(once.ptr, twice.ptr, once.len)))
			abort();
	}
	dd_error_clear();
	dd_buf_release(&once);
	dd_buf_release(&twice);
	return 0;
}
