/* tests/unit/test-textdiff.c: the unified diff of two texts (git/textdiff.h), which `diff` shows for schemas. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <git2.h>
#include <string.h>

#include "git/textdiff.h"
#include "util/buf.h"
#include "util/err.h"

static void
diff(struct dd_buf *out, const char *a, const char *b, size_t *added, size_t *removed)
{
	dd_buf_clear(out);
	assert_int_equal(dd_text_diff(out, a, strlen(a), b, strlen(b), "schema.sql", added, removed), 0);
}

static void
equal_texts_give_nothing(void **state)
{
	struct dd_buf out = DD_BUF_INIT;
	size_t added = 9, removed = 9;

	(void)state;
	diff(&out, "a\nb\nc\n", "a\nb\nc\n", &added, &removed);
	assert_int_equal(out.len, 0);
	assert_int_equal(added, 0);
	assert_int_equal(removed, 0);
	diff(&out, "", "", &added, &removed);
	assert_int_equal(out.len, 0);
	dd_buf_release(&out);
}

static void
one_changed_line_is_one_removed_and_one_added(void **state)
{
	struct dd_buf out = DD_BUF_INIT;
	size_t added, removed;

	(void)state;
	diff(&out, "1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\n3\n4\nFIVE\n6\n7\n8\n9\n", &added, &removed);
	assert_int_equal(added, 1);
	assert_int_equal(removed, 1);
	assert_string_equal(dd_buf_cstr(&out), "--- a/schema.sql\n+++ b/schema.sql\n@@ -2,7 +2,7 @@\n"
					     " 2\n 3\n 4\n-5\n+FIVE\n 6\n 7\n 8\n");
	dd_buf_release(&out);
}

static void
from_nothing_everything_is_added(void **state)
{
	struct dd_buf out = DD_BUF_INIT;
	size_t added, removed;

	(void)state;
	diff(&out, "", "x\ny\n", &added, &removed);
	assert_int_equal(added, 2);
	assert_int_equal(removed, 0);
	assert_non_null(strstr(dd_buf_cstr(&out), "+x\n+y\n"));
	dd_buf_release(&out);
}

static void
bytes_that_look_binary_are_still_diffed_as_text(void **state)
{
	struct dd_buf out = DD_BUF_INIT;
	const char a[] = "one\n\001\002\377\n", b[] = "one\n\001\002\376\n";
	size_t added, removed;

	(void)state;
	assert_int_equal(dd_text_diff(&out, a, sizeof(a) - 1, b, sizeof(b) - 1, "s", &added, &removed), 0);
	assert_int_equal(added, 1);
	assert_int_equal(removed, 1);
	assert_null(strstr(dd_buf_cstr(&out), "Binary"));
	dd_buf_release(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(equal_texts_give_nothing),
		cmocka_unit_test(one_changed_line_is_one_removed_and_one_added),
		cmocka_unit_test(from_nothing_everything_is_added),
		cmocka_unit_test(bytes_that_look_binary_are_still_diffed_as_text),
	};
	int rc;

	git_libgit2_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	git_libgit2_shutdown();
	return rc;
}
