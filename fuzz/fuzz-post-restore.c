/*
 * fuzz/fuzz-post-restore.c: the post_restore record parser
 * (workflow/post-restore.c) on arbitrary bytes.
 *
 * Beyond "no crash under ASan/UBSan": every failure has a one-line reason,
 * and whatever parses formats to text that parses back to the same record.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"
#include "workflow/internal.h"
#include "workflow/workflow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
same(const struct dd_post_restore_last *a, const struct dd_post_restore_last *b)
{
	return !strcmp(a->snapshot, b->snapshot) && a->when == b->when && a->total == b->total &&
	       a->failed == b->failed && a->skipped == b->skipped && (!a->failed || a->exit_status == b->exit_status) &&
	       (a->command ? b->command && !strcmp(a->command, b->command) : !b->command);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dd_post_restore_last r, back;
	struct dd_buf text = DD_BUF_INIT;

	if (dd_workflow_post_restore_parse((const char *)data, size, "fuzz", &r) < 0) {
		if (!dd_error_last() || strchr(dd_error_last(), '\n') || r.snapshot || r.command)
			abort(); /* a one-line reason, nothing left in the result */
		dd_error_clear();
		return 0;
	}
	dd_workflow_post_restore_format(&text, &r);
	if (dd_workflow_post_restore_parse(text.ptr, text.len, "formatted", &back) < 0) {
		fprintf(stderr, "formatted record does not parse: %s\n", dd_error_last());
		abort();
	}
	if (!same(&r, &back))
		abort();
	dd_workflow_post_restore_last_release(&r);
	dd_workflow_post_restore_last_release(&back);
	dd_buf_release(&text);
	return 0;
}
