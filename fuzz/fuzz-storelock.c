/*
 * fuzz/fuzz-storelock.c: the store lock record parser (store/store-lock.c,
 * dd_store_lockrec_parse) on arbitrary bytes: a lock file comes from the
 * store and, once it authenticates, from any key holder.
 *
 * Beyond "no crash under ASan/UBSan": what parses formats to exactly the
 * input (the format is canonical), and a failure leaves nothing behind.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store-lock.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct dd_store_lockrec zero;
	struct dd_store_lockrec r;
	struct dd_buf text = DD_BUF_INIT;

	if (dd_store_lockrec_parse(&r, (const char *)data, size) != 0) {
		if (memcmp(&r, &zero, sizeof(r)))
			abort(); /* nothing left in the result */
		return 0;
	}
	if (r.pid < 1 || !r.host[0] || !r.command[0] ||
	    (r.kind != DD_STORE_LOCK_SHARED && r.kind != DD_STORE_LOCK_EXCLUSIVE))
		abort();
	dd_store_lockrec_format(&text, &r);
	if (text.len != size || memcmp(text.ptr, data, size)) {
		fprintf(stderr, "a parsed record does not format back to its text: %s", text.ptr);
		abort();
	}
	dd_buf_release(&text);
	return 0;
}
