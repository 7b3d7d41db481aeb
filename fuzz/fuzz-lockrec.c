/*
 * fuzz/fuzz-lockrec.c: the lock files' holder record parser (util/fs.c,
 * dd_lock_record_parse) on arbitrary bytes: a lock file is written by
 * another process and may hold anything.
 *
 * Beyond "no crash under ASan/UBSan": what parses formats to text that
 * parses back to the same record, and a failure leaves nothing behind.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dd_lock_record r, back;
	struct dd_buf text = DD_BUF_INIT;
	int rc = dd_lock_record_parse(&r, (const char *)data, size);

	if (rc == DD_NOTFOUND && size != 0)
		abort(); /* only an empty file means "no holder" */
	if (rc != 0) {
		if (r.pid || r.command[0])
			abort(); /* nothing left in the result */
		return 0;
	}
	if (r.pid < 1 || !r.command[0])
		abort();
	/* formatted (canonical: no leading zeros), it parses back to the same record */
	dd_lock_record_format(&text, &r);
	if (dd_lock_record_parse(&back, text.ptr, text.len) != 0 || back.pid != r.pid ||
	    back.started != r.started || back.since != r.since || strcmp(back.command, r.command)) {
		fprintf(stderr, "formatted record does not parse back: %s", text.ptr);
		abort();
	}
	dd_buf_release(&text);
	return 0;
}
