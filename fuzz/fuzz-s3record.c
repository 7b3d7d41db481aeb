/*
 * fuzz/fuzz-s3record.c: the record of a multipart upload in progress
 * (s3/upload.c), read back from a local file on resume, on arbitrary bytes.
 *
 * Beyond "no crash under ASan/UBSan": whatever parses must format to text
 * that parses back to the same upload id and parts, and formatting is a
 * fixed point; whatever does not parse leaves no part marked sent.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3/client.h"
#include "util/buf.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PART (5ull << 20)
#define NPARTS 21
#define SIZE (20 * PART + 3)
#define KEY "pre fix/data/ab/k+y"

static void
fresh(struct dd_s3_record_part *p)
{
	memset(p, 0, NPARTS * sizeof(*p));
	for (int i = 0; i < NPARTS; i++)
		p[i].size = i + 1 < NPARTS ? PART : SIZE - (NPARTS - 1) * PART;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dd_s3_record_part a[NPARTS], b[NPARTS];
	struct dd_buf ta = DD_BUF_INIT, tb = DD_BUF_INIT;
	char *ida = NULL, *idb = NULL;

	fresh(a);
	if (dd_s3_record_parse((const char *)data, size, KEY, SIZE, PART, &ida, a, NPARTS) != 0) {
		for (int i = 0; i < NPARTS; i++)
			if (a[i].sent)
				abort();
		if (ida)
			abort();
		return 0;
	}
	dd_s3_record_format(&ta, KEY, SIZE, PART, ida, a, NPARTS);
	fresh(b);
	if (dd_s3_record_parse(ta.ptr, ta.len, KEY, SIZE, PART, &idb, b, NPARTS) != 0) {
		fprintf(stderr, "a formatted record does not parse\n");
		abort();
	}
	dd_s3_record_format(&tb, KEY, SIZE, PART, idb, b, NPARTS);
	if (strcmp(ida, idb) || ta.len != tb.len || memcmp(ta.ptr, tb.ptr, ta.len))
		abort();
	for (int i = 0; i < NPARTS; i++)
		if (a[i].sent != b[i].sent || (a[i].sent && (strcmp(a[i].sha, b[i].sha) || strcmp(a[i].etag, b[i].etag))))
			abort();
	free(ida);
	free(idb);
	dd_buf_release(&ta);
	dd_buf_release(&tb);
	return 0;
}
