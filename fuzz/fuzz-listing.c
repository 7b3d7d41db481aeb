/*
 * fuzz/fuzz-listing.c: the listing record parser (store/manifest.c,
 * dd_stream_record_parse, as store/listing.c drives it) on hostile bytes.
 * The first byte chooses where the bytes at hand end (the rest "to come"),
 * as when a record straddles two pieces of the stream. Beyond "no crash":
 * a cut record asks for more than it has and no more than the input
 * holds; feeding it what it asks for ends as the whole input parses; and
 * whatever parses re-encodes to exactly the bytes it used.
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
	struct dd_stream_info s;
	struct dd_buf enc = DD_BUF_INIT;
	size_t at, used;
	int rc, whole;

	if (size < 1)
		return 0;
	at = (size_t)data[0] * (size - 1) / 255;
	data++, size--;
	whole = dd_stream_record_parse(&s, &used, data, size, 0);
	if (whole == 0) {
		if (used > size || dd_stream_record_encode(&enc, &s) < 0 || enc.len != used || memcmp(enc.ptr, data, used))
			abort();
		dd_stream_info_clear(&s);
	} else if (whole != -1) {
		abort(); /* nothing is to come: more cannot be asked for */
	}
	dd_error_clear();
	while ((rc = dd_stream_record_parse(&s, &used, data, at, size - at)) == DD_RECORD_MORE) {
		if (used <= at || used > size)
			abort();
		at = used;
	}
	if (rc != whole)
		abort(); /* piece by piece must decide as the whole input does */
	if (rc == 0)
		dd_stream_info_clear(&s);
	dd_error_clear();
	dd_buf_release(&enc);
	return 0;
}
