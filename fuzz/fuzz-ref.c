/*
 * fuzz/fuzz-ref.c: the ref file parser (git/ref.c) on arbitrary bytes.
 *
 * Beyond "no crash under ASan/UBSan": whatever parses must format to text
 * that parses back to the same ref, and formatting is a fixed point.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "git/ref.h"
#include "util/buf.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dd_ref *ref = NULL, *back = NULL;
	struct dd_buf a = DD_BUF_INIT, b = DD_BUF_INIT;

	if (dd_ref_parse(&ref, (const char *)data, size, "fuzz") < 0) {
		if (!dd_error_last() || strchr(dd_error_last(), '\n'))
			abort(); /* every failure has a one-line reason */
		return 0;
	}
	dd_ref_format(&a, ref);
	if (dd_ref_parse(&back, a.ptr, a.len, "formatted") < 0) {
		fprintf(stderr, "formatted ref does not parse: %s\n", dd_error_last());
		abort();
	}
	dd_ref_format(&b, back);
	if (strcmp(ref->snapshot, back->snapshot) || ref->ninfo != back->ninfo || a.len != b.len ||
	    memcmp(a.ptr, b.ptr, a.len))
		abort();
	dd_ref_free(back);
	dd_ref_free(ref);
	dd_buf_release(&a);
	dd_buf_release(&b);
	dd_error_clear();
	return 0;
}
