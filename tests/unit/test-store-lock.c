/* tests/unit/test-store-lock.c: the store lock record (store/store-lock.h): what parses, what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "store/store-lock.h"
#include "util/buf.h"

#define GOOD "dnadata-lock 1\nkind shared\nhost build-7.example\npid 4242 started 123456\n" \
	     "boot 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 pidns 4026531836\n" \
	     "command git dnadata snapshot\ncreated 1796000000\n"

static int
parse(struct dd_store_lockrec *r, const char *text)
{
	return dd_store_lockrec_parse(r, text, strlen(text));
}

static void
a_record_parses_and_formats_back(void **state)
{
	struct dd_store_lockrec r, back;
	struct dd_buf out = DD_BUF_INIT;

	(void)state;
	assert_int_equal(parse(&r, GOOD), 0);
	assert_int_equal(r.kind, DD_STORE_LOCK_SHARED);
	assert_string_equal(r.host, "build-7.example");
	assert_int_equal(r.pid, 4242);
	assert_int_equal(r.started, 123456);
	assert_string_equal(r.boot, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
	assert_int_equal(r.pidns, 4026531836LL);
	assert_string_equal(r.command, "git dnadata snapshot");
	assert_int_equal(r.created, 1796000000LL);
	dd_store_lockrec_format(&out, &r);
	assert_string_equal(out.ptr, GOOD);
	r.kind = DD_STORE_LOCK_EXCLUSIVE;
	r.started = 0;
	memset(r.boot, 0, sizeof(r.boot)); /* unknown: written "0" */
	r.pidns = 0;
	dd_buf_clear(&out);
	dd_store_lockrec_format(&out, &r);
	assert_int_equal(dd_store_lockrec_parse(&back, out.ptr, out.len), 0);
	assert_int_equal(back.kind, DD_STORE_LOCK_EXCLUSIVE);
	assert_int_equal(back.started, 0);
	assert_true(strstr(out.ptr, "\nboot 0 pidns 0\n") != NULL);
	assert_memory_equal(&back, &r, sizeof(r));
	dd_buf_release(&out);
}

static void
malformed_records_are_refused_and_leave_nothing(void **state)
{
	static const char *const bad[] = {
		"",
		"dnadata-lock 2\nkind shared\nhost h\npid 1 started 0\nboot 0 pidns 0\ncommand c\ncreated 0\n",
		/* no final newline */
		"dnadata-lock 1\nkind shared\nhost h\npid 1 started 0\nboot 0 pidns 0\ncommand c\ncreated 0",
		/* trailing */
		"dnadata-lock 1\nkind shared\nhost h\npid 1 started 0\nboot 0 pidns 0\ncommand c\ncreated 0\n\n",
		"dnadata-lock 1\nkind both\nhost h\npid 1 started 0\nboot 0 pidns 0\ncommand c\ncreated 0\n",
		"dnadata-lock 1\nkind shared\nhost a b\npid 1 started 0\nboot 0 pidns 0\ncommand c\ncreated 0\n",
		"dnadata-lock 1\nkind shared\nhost \npid 1 started 0\nboot 0 pidns 0\ncommand c\ncreated 0\n",
		"dnadata-lock 1\nkind shared\nhost h\npid 0 started 0\nboot 0 pidns 0\ncommand c\ncreated 0\n",
		"dnadata-lock 1\nkind shared\nhost h\npid 01 started 0\nboot 0 pidns 0\ncommand c\ncreated 0\n",
		"dnadata-lock 1\nkind shared\nhost h\npid -1 started 0\nboot 0 pidns 0\ncommand c\ncreated 0\n",
		"dnadata-lock 1\nkind shared\nhost h\npid 2147483648 started 0\nboot 0 pidns 0\ncommand c\ncreated 0\n",
		"dnadata-lock 1\nkind shared\nhost h\npid 1\ncommand c\ncreated 0\n",
		"dnadata-lock 1\nkind shared\nhost h\npid 1 started 0\nboot 0 pidns 0\ncommand \ncreated 0\n",
		"dnadata-lock 1\nkind shared\nhost h\npid 1 started 0\nboot 0 pidns 0\ncommand c\tx\ncreated 0\n",
		/* order */
		"dnadata-lock 1\nhost h\nkind shared\npid 1 started 0\nboot 0 pidns 0\ncommand c\ncreated 0\n",
		"dnadata-lock 1\nkind shared\nhost h\npid 1 started 0\nboot 0 pidns 0\ncommand c\ncreated 1e9\n",
		"dnadata-lock 1\nkind  shared\nhost h\npid 1 started 0\nboot 0 pidns 0\ncommand c\ncreated 0\n",
		"dnadata-lock 1\nkind shared\nhost h\npid 1 started 0\ncommand c\ncreated 0\n", /* no boot line */
		"dnadata-lock 1\nkind shared\nhost h\npid 1 started 0\nboot 0\ncommand c\ncreated 0\n",
		"dnadata-lock 1\nkind shared\nhost h\npid 1 started 0\nboot 0 pidns 01\ncommand c\ncreated 0\n",
		"dnadata-lock 1\nkind shared\nhost h\npid 1 started 0\nboot 00 pidns 1\ncommand c\ncreated 0\n",
		"dnadata-lock 1\nkind shared\nhost h\npid 1 started 0\n"
		"boot 0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0 pidns 1\n"
		"command c\ncreated 0\n", /* uppercase */
		"dnadata-lock 1\nkind shared\nhost h\npid 1 started 0\n"
		"boot 0f1e2d3c04b5a-6978-8796-a5b4c3d2e1f0 pidns 1\n"
		"command c\ncreated 0\n", /* a dash missing */
		"dnadata-lock 1\nkind shared\nhost h\npid 1 started 0\n"
		"boot 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f pidns 1\n"
		"command c\ncreated 0\n", /* short */
		"dnadata-lock 1\nkind shared\nhost h\npid 1 started 0\nboot 0 pidns 0 \ncommand c\ncreated 0\n",
	};
	struct dd_store_lockrec r, zero;

	(void)state;
	memset(&zero, 0, sizeof(zero));
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		if (parse(&r, bad[i]) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_memory_equal(&r, &zero, sizeof(r));
	}
}

static void
limits_are_exact(void **state)
{
	char host[DD_STORE_LOCK_HOST_MAX + 2], cmd[DD_STORE_LOCK_COMMAND_MAX + 2], text[1024];
	struct dd_store_lockrec r;

	(void)state;
	memset(host, 'h', sizeof(host) - 1);
	host[DD_STORE_LOCK_HOST_MAX] = '\0';
	memset(cmd, 'c', sizeof(cmd) - 1);
	cmd[DD_STORE_LOCK_COMMAND_MAX] = '\0';
	snprintf(text, sizeof(text),
		 "dnadata-lock 1\nkind exclusive\nhost %s\npid 2147483647 started 0\nboot 0 pidns 0\ncommand %s\n"
		 "created 0\n", host, cmd);
	assert_int_equal(parse(&r, text), 0);
	host[DD_STORE_LOCK_HOST_MAX] = 'h', host[DD_STORE_LOCK_HOST_MAX + 1] = '\0';
	snprintf(text, sizeof(text),
		 "dnadata-lock 1\nkind exclusive\nhost %s\npid 1 started 0\nboot 0 pidns 0\ncommand c\ncreated 0\n",
		 host);
	assert_int_equal(parse(&r, text), -1);
	cmd[DD_STORE_LOCK_COMMAND_MAX] = 'c', cmd[DD_STORE_LOCK_COMMAND_MAX + 1] = '\0';
	snprintf(text, sizeof(text),
		 "dnadata-lock 1\nkind exclusive\nhost h\npid 1 started 0\nboot 0 pidns 0\ncommand %s\ncreated 0\n",
		 cmd);
	assert_int_equal(parse(&r, text), -1);
	/* a NUL inside is not text */
	assert_int_equal(dd_store_lockrec_parse(&r, "dnadata-lock 1\nkind shared\nhost h\0x\n", 33), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_record_parses_and_formats_back),
		cmocka_unit_test(malformed_records_are_refused_and_leave_nothing),
		cmocka_unit_test(limits_are_exact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
