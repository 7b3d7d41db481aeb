/*
 * fuzz/fuzz-manifest.c: the manifest parser (store/manifest.c) on hostile
 * bytes. Beyond "no crash": whatever parses must re-encode to exactly the
 * input (one encoding per manifest) with the same content length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/manifest.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dd_manifest *m = NULL;
	struct dd_buf enc = DD_BUF_INIT;
	size_t cl, cl2;

	if (dd_manifest_parse(&m, &cl, data, size) < 0) {
		dd_error_clear();
		return 0;
	}
	if (dd_manifest_encode(&enc, &cl2, m) < 0 || enc.len != size || memcmp(enc.ptr, data, size) || cl != cl2)
		abort();
	dd_manifest_free(m);
	dd_buf_release(&enc);
	return 0;
}
