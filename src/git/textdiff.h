/*
 * git/textdiff.h: a unified diff of two texts, made by libgit2 (the same
 * algorithm and format as `git diff`; no diff algorithm of our own). For
 * `diff`'s schema part (issue 18).
 */
#ifndef DD_GIT_TEXTDIFF_H
#define DD_GIT_TEXTDIFF_H

#include <stddef.h>

#include "util/buf.h"

/*
 * Append to `out` the unified diff (3 lines of context) from `a` to `b`,
 * from its "--- a/<name>" line on; nothing when they are equal. *added and
 * *removed get the number of lines added and removed. Both texts are
 * compared as text whatever bytes they hold. 0, -1.
 */
int dd_text_diff(struct dd_buf *out, const char *a, size_t alen, const char *b, size_t blen, const char *name,
		 size_t *added, size_t *removed);

#endif
