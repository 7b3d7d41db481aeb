/* tests/unit/test-json.c: the JSON writer and UTF-8 checks used by --json output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "util/buf.h"
#include "util/json.h"

static void
quote_escapes_controls_and_passes_utf8(void **state)
{
	struct dd_buf b = DD_BUF_INIT;
	static const char in[] = "a\"b\\c\n\t\r\b\f\x01\x1f\x7f caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac";

	dd_json_quote(&b, in, sizeof(in) - 1);
	assert_string_equal(b.ptr, "\"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u001f\\u007f caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac\"");
	dd_buf_release(&b);
}

static void
quote_replaces_invalid_utf8_and_keeps_nul(void **state)
{
	struct dd_buf b = DD_BUF_INIT;
	/* lone continuation, overlong '/', surrogate, truncated sequence, NUL */
	static const char in[] = "\x80|\xc0\xaf|\xed\xa0\x80|\xe2\x82|\0|";

	dd_json_quote(&b, in, sizeof(in) - 1);
	assert_string_equal(b.ptr, "\"\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd|\\u0000|\"");
	dd_buf_release(&b);
}

static void
utf8_validation_follows_rfc3629(void **state)
{
	assert_true(dd_utf8_valid("plain", 5));
	assert_true(dd_utf8_valid("\xf4\x8f\xbf\xbf", 4));   /* U+10FFFF */
	assert_false(dd_utf8_valid("\xf4\x90\x80\x80", 4));  /* above U+10FFFF */
	assert_false(dd_utf8_valid("\xe0\x80\xaf", 3));      /* overlong */
	assert_false(dd_utf8_valid("\xed\xbf\xbf", 3));      /* surrogate */
	assert_false(dd_utf8_valid("\xc3", 1));              /* truncated */
}

static void
writer_places_commas_and_nests(void **state)
{
	struct dd_buf b = DD_BUF_INIT;
	struct dd_json j;

	dd_json_init(&j, &b);
	dd_json_object_begin(&j, NULL);
	dd_json_str(&j, "a", "x");
	dd_json_str(&j, "n", NULL);
	dd_json_int(&j, "i", -42);
	dd_json_bool(&j, "t", 1);
	dd_json_array_begin(&j, "list");
	dd_json_int(&j, NULL, 1);
	dd_json_object_begin(&j, NULL);
	dd_json_null(&j, "z");
	dd_json_object_end(&j);
	dd_json_array_begin(&j, NULL);
	dd_json_array_end(&j);
	dd_json_array_end(&j);
	dd_json_object_end(&j);
	assert_string_equal(b.ptr, "{\"a\":\"x\",\"n\":null,\"i\":-42,\"t\":true,\"list\":[1,{\"z\":null},[]]}");
	assert_int_equal(j.depth, 0);
	dd_buf_release(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(quote_escapes_controls_and_passes_utf8),
		cmocka_unit_test(quote_replaces_invalid_utf8_and_keeps_nul),
		cmocka_unit_test(utf8_validation_follows_rfc3629),
		cmocka_unit_test(writer_places_commas_and_nests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
