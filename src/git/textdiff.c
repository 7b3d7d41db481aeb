/*
 * git/textdiff.c: a unified diff of two buffers through libgit2's
 * git_patch_from_buffers (see textdiff.h). The "diff --git" and "index"
 * lines libgit2 writes before "---" say nothing about two texts that are
 * not files of a repository, so they are left out.
 */
#include "git/textdiff.h"
#include "git/repo.h"

#include <git2.h>
#include <string.h>

int
dd_text_diff(struct dd_buf *out, const char *a, size_t alen, const char *b, size_t blen, const char *name,
	     size_t *added, size_t *removed)
{
	git_diff_options opts;
	git_patch *patch = NULL;
	git_buf text = GIT_BUF_INIT;
	size_t context = 0;
	const char *start;
	int rc = -1;

	*added = *removed = 0;
	if (git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION) < 0)
		return dd_error_git("comparing the two texts");
	opts.flags |= GIT_DIFF_FORCE_TEXT | GIT_DIFF_PATIENCE; /* patience: SQL blocks line up as blocks */
	opts.context_lines = 3;
	if (git_patch_from_buffers(&patch, a, alen, name, b, blen, name, &opts) < 0 ||
	    git_patch_line_stats(&context, added, removed, patch) < 0) {
		dd_error_git("comparing the two texts");
		goto out;
	}
	if (!*added && !*removed) {
		rc = 0;
		goto out;
	}
	if (git_patch_to_buf(&text, patch) < 0) {
		dd_error_git("formatting the diff");
		goto out;
	}
	start = text.ptr;
	if (strncmp(start, "--- ", 4)) {
		const char *p = strstr(start, "\n--- ");
		start = p ? p + 1 : start;
	}
	dd_buf_put(out, start, text.size - (size_t)(start - text.ptr));
	rc = 0;
out:
	git_buf_dispose(&text);
	git_patch_free(patch);
	return rc;
}
