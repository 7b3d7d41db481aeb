/*
 * tests/unit/test-s3creds.c: finding S3 credentials, region and endpoint
 * (s3/creds.c) from the environment and AWS files written to a temporary
 * HOME, in the order AWS's own tools use; malformed files are reported by
 * file:line without ever quoting a value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3/creds.h"
#include "util/buf.h"
#include "util/err.h"

static char home[256];

static const char *const aws_vars[] = {
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
	"AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SHARED_CREDENTIALS_FILE",
	"AWS_CONFIG_FILE",
};

static void
write_file(const char *rel, const char *text, size_t len)
{
	char path[300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", home, rel);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

#define WRITE(rel, text) write_file(rel, text, sizeof(text) - 1)

static int
setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	char dir[300];

	snprintf(home, sizeof(home), "%s/test-s3creds.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(home))
		return -1;
	snprintf(dir, sizeof(dir), "%s/.aws", home);
	if (mkdir(dir, 0700) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(aws_vars) / sizeof(aws_vars[0]); i++)
		unsetenv(aws_vars[i]);
	setenv("HOME", home, 1);
	dd_error_clear();
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
	return system(cmd) == 0 ? 0 : -1;
}

static const char credentials[] = "[default]\n"
				  "aws_access_key_id = AKIDDEFAULT\n"
				  "aws_secret_access_key = secretdefault\n"
				  "region = ignored-here\n"
				  "\n"
				  "# a comment\n"
				  "[dev]\n"
				  "aws_access_key_id=AKIDDEV\n"
				  "aws_secret_access_key=secret/dev+\n"
				  "aws_session_token = tokendev\n";

static void
resolve_ok(struct dd_s3_creds *c, const struct dd_s3_creds_opts *o)
{
	int rc = dd_s3_creds_resolve(c, o);

	if (rc != 0)
		fail_msg("resolve: %d %s", rc, dd_error_last() ? dd_error_last() : "");
}

static void
default_profile_from_the_credentials_file(void **state)
{
	struct dd_s3_creds c;

	WRITE(".aws/credentials", credentials);
	resolve_ok(&c, NULL);
	assert_string_equal(c.access_key, "AKIDDEFAULT");
	assert_string_equal(c.secret_key, "secretdefault");
	assert_null(c.session_token);
	assert_string_equal(c.region, "us-east-1"); /* region in the credentials file is not read, as with the AWS CLI */
	assert_null(c.endpoint);
	assert_string_equal(c.source, "profile default in ~/.aws/credentials");
	dd_s3_creds_free(&c);
	assert_null(c.secret_key);
}

/* The texts of the two files, as the fuzz harness gives them: the same answers and messages as read from files. */
static void
texts_resolve_as_the_files_do(void **state)
{
	static const char config[] = "[profile dev]\nregion = eu-west-3\n";
	static const char bad[] = "[default]\naws_access_key_id = A\nnot a line\n";
	struct dd_s3_creds c;

	assert_int_equal(dd_s3_creds_resolve_text(&c, NULL, credentials, sizeof(credentials) - 1, "creds", config,
						  sizeof(config) - 1, "cfg"), 0);
	assert_string_equal(c.access_key, "AKIDDEFAULT");
	assert_string_equal(c.source, "profile default in creds");
	dd_s3_creds_free(&c);
	setenv("AWS_PROFILE", "dev", 1);
	assert_int_equal(dd_s3_creds_resolve_text(&c, NULL, credentials, sizeof(credentials) - 1, "creds", config,
						  sizeof(config) - 1, "cfg"), 0);
	assert_string_equal(c.access_key, "AKIDDEV");
	assert_string_equal(c.region, "eu-west-3");
	dd_s3_creds_free(&c);
	unsetenv("AWS_PROFILE");
	assert_int_equal(dd_s3_creds_resolve_text(&c, NULL, bad, sizeof(bad) - 1, "creds", NULL, 0, "cfg"), -1);
	assert_string_equal(dd_error_last(), "creds:3: not a 'key = value' line, section header or comment");
	assert_null(c.access_key);
	assert_int_equal(dd_s3_creds_resolve_text(&c, NULL, NULL, 0, "creds", NULL, 0, "cfg"), DD_NOTFOUND);
	dd_error_clear();
}

static void
environment_wins_over_files(void **state)
{
	struct dd_s3_creds c;

	WRITE(".aws/credentials", credentials);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
	setenv("AWS_SESSION_TOKEN", "tokenenv", 1);
	resolve_ok(&c, NULL);
	assert_string_equal(c.access_key, "AKIDENV");
	assert_string_equal(c.secret_key, "secretenv");
	assert_string_equal(c.session_token, "tokenenv");
	assert_string_equal(c.source, "environment");
	dd_s3_creds_free(&c);
}

static void
half_a_pair_in_the_environment_is_an_error(void **state)
{
	struct dd_s3_creds c;

	WRITE(".aws/credentials", credentials);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	assert_int_equal(dd_s3_creds_resolve(&c, NULL), -1);
	assert_non_null(strstr(dd_error_last(), "AWS_SECRET_ACCESS_KEY is not"));
	assert_null(strstr(dd_error_last(), "AKIDENV"));
	assert_null(c.access_key);
}

static void
aws_profile_picks_a_section_with_its_session_token(void **state)
{
	struct dd_s3_creds c;

	WRITE(".aws/credentials", credentials);
	setenv("AWS_PROFILE", "dev", 1);
	resolve_ok(&c, NULL);
	assert_string_equal(c.access_key, "AKIDDEV");
	assert_string_equal(c.secret_key, "secret/dev+");
	assert_string_equal(c.session_token, "tokendev");
	assert_string_equal(c.source, "profile dev in ~/.aws/credentials");
	dd_s3_creds_free(&c);
}

static void
missing_profile_is_an_error_naming_it(void **state)
{
	struct dd_s3_creds c;

	WRITE(".aws/credentials", credentials);
	WRITE(".aws/config", "[profile other]\nregion = eu-west-1\n");
	setenv("AWS_PROFILE", "staging", 1);
	assert_int_equal(dd_s3_creds_resolve(&c, NULL), -1);
	assert_non_null(strstr(dd_error_last(), "staging"));
	assert_non_null(strstr(dd_error_last(), "AWS_PROFILE"));
	assert_null(strstr(dd_error_last(), "AKID"));
	assert_null(strstr(dd_error_last(), "secret"));
	assert_non_null(dd_error_hint());
	assert_null(c.access_key);

	/* Even when the keys come from the environment: the profile still gives region and endpoint. */
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
	assert_int_equal(dd_s3_creds_resolve(&c, NULL), -1);
	assert_non_null(strstr(dd_error_last(), "staging"));
}

static void
config_file_profiles_and_their_credentials(void **state)
{
	struct dd_s3_creds c;

	/* [dev] in the config file is not profile dev; [profile dev] is; [default] is default. */
	WRITE(".aws/config", "[dev]\naws_access_key_id = WRONG\naws_secret_access_key = wrong\n"
			     "[profile   dev ]\naws_access_key_id = AKIDCFG\naws_secret_access_key = secretcfg\n"
			     "region = eu-west-3\n"
			     "[default]\nregion = ap-south-1\n");
	setenv("AWS_PROFILE", "dev", 1);
	resolve_ok(&c, NULL);
	assert_string_equal(c.access_key, "AKIDCFG");
	assert_string_equal(c.region, "eu-west-3");
	assert_string_equal(c.source, "profile dev in ~/.aws/config");
	dd_s3_creds_free(&c);

	/* The credentials file comes first; the config file still gives the region. */
	WRITE(".aws/credentials", credentials);
	resolve_ok(&c, NULL);
	assert_string_equal(c.access_key, "AKIDDEV");
	assert_string_equal(c.region, "eu-west-3");
	dd_s3_creds_free(&c);

	unsetenv("AWS_PROFILE");
	resolve_ok(&c, NULL);
	assert_string_equal(c.access_key, "AKIDDEFAULT");
	assert_string_equal(c.region, "ap-south-1");
	dd_s3_creds_free(&c);
}

static void
region_precedence(void **state)
{
	struct dd_s3_creds_opts o = { "store-region", NULL };
	struct dd_s3_creds c;

	WRITE(".aws/credentials", credentials);
	WRITE(".aws/config", "[default]\nregion = profile-region\n");
	setenv("AWS_REGION", "env-region", 1);
	setenv("AWS_DEFAULT_REGION", "env-default-region", 1);
	resolve_ok(&c, &o);
	assert_string_equal(c.region, "store-region");
	dd_s3_creds_free(&c);
	resolve_ok(&c, NULL);
	assert_string_equal(c.region, "env-region");
	dd_s3_creds_free(&c);
	unsetenv("AWS_REGION");
	resolve_ok(&c, NULL);
	assert_string_equal(c.region, "env-default-region");
	dd_s3_creds_free(&c);
	unsetenv("AWS_DEFAULT_REGION");
	resolve_ok(&c, NULL);
	assert_string_equal(c.region, "profile-region");
	dd_s3_creds_free(&c);
	WRITE(".aws/config", "[default]\n");
	resolve_ok(&c, NULL);
	assert_string_equal(c.region, "us-east-1");
	dd_s3_creds_free(&c);
}

static void
endpoint_precedence(void **state)
{
	struct dd_s3_creds_opts o = { NULL, "http://store:1" };
	struct dd_s3_creds c;

	WRITE(".aws/credentials", credentials);
	WRITE(".aws/config", "[default]\n"
			     "endpoint_url = http://profile:5\n"
			     "dynamodb =\n"
			     "  endpoint_url = http://dynamo:9\n"
			     "s3 =\n"
			     "  addressing_style = path\n"
			     "  endpoint_url = http://profile-s3:4\n"
			     "region = after-the-block\n");
	setenv("AWS_ENDPOINT_URL_S3", "http://env-s3:2", 1);
	setenv("AWS_ENDPOINT_URL", "http://env:3", 1);
	resolve_ok(&c, &o);
	assert_string_equal(c.endpoint, "http://store:1");
	dd_s3_creds_free(&c);
	resolve_ok(&c, NULL);
	assert_string_equal(c.endpoint, "http://env-s3:2");
	dd_s3_creds_free(&c);
	unsetenv("AWS_ENDPOINT_URL_S3");
	resolve_ok(&c, NULL);
	assert_string_equal(c.endpoint, "http://env:3");
	dd_s3_creds_free(&c);
	unsetenv("AWS_ENDPOINT_URL");
	resolve_ok(&c, NULL);
	assert_string_equal(c.endpoint, "http://profile-s3:4");
	assert_string_equal(c.region, "after-the-block");
	dd_s3_creds_free(&c);
	WRITE(".aws/config", "[default]\nendpoint_url = http://profile:5\n");
	resolve_ok(&c, NULL);
	assert_string_equal(c.endpoint, "http://profile:5");
	dd_s3_creds_free(&c);
	WRITE(".aws/config", "[default]\n");
	resolve_ok(&c, NULL);
	assert_null(c.endpoint);
	dd_s3_creds_free(&c);
}

static void
nothing_found_names_the_variables(void **state)
{
	struct dd_s3_creds c;

	assert_int_equal(dd_s3_creds_resolve(&c, NULL), DD_NOTFOUND);
	assert_non_null(strstr(dd_error_last(), "AWS_ACCESS_KEY_ID"));
	assert_non_null(strstr(dd_error_hint(), "AWS_SECRET_ACCESS_KEY"));
	assert_non_null(strstr(dd_error_hint(), "AWS_PROFILE"));
	assert_null(c.access_key);

	/* A profile with a region but no keys is still "not found". */
	WRITE(".aws/config", "[default]\nregion = eu-west-1\n");
	assert_int_equal(dd_s3_creds_resolve(&c, NULL), DD_NOTFOUND);
	/* So is an environment without HOME or files. */
	unsetenv("HOME");
	assert_int_equal(dd_s3_creds_resolve(&c, NULL), DD_NOTFOUND);
}

static void
files_named_by_variables_are_read_instead(void **state)
{
	char cred[300], cfg[300];
	struct dd_s3_creds c;

	WRITE(".aws/credentials", credentials);
	WRITE("other-creds", "[default]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = s\n");
	WRITE("other-config", "[default]\nregion = other-region\n");
	snprintf(cred, sizeof(cred), "%s/other-creds", home);
	snprintf(cfg, sizeof(cfg), "%s/other-config", home);
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
	setenv("AWS_CONFIG_FILE", cfg, 1);
	resolve_ok(&c, NULL);
	assert_string_equal(c.access_key, "AKIDOTHER");
	assert_string_equal(c.region, "other-region");
	assert_non_null(strstr(c.source, "other-creds"));
	dd_s3_creds_free(&c);
}

static void
long_session_token_line_is_read_whole(void **state)
{
	struct dd_buf text = DD_BUF_INIT, token = DD_BUF_INIT;
	struct dd_s3_creds c;

	for (int i = 0; i < 1500; i++)
		dd_buf_putc(&token, "ABCDEFGHIJKLMNOPQRSTUVWXYZ/+="[i % 29]);
	dd_buf_printf(&text, "\xef\xbb\xbf[default]\r\naws_access_key_id: AKIDLONG ; a comment\r\n"
			     "aws_secret_access_key = secretlong\r\naws_session_token = %s   \r\nregion = r\r\n",
		      token.ptr);
	write_file(".aws/credentials", text.ptr, text.len);
	resolve_ok(&c, NULL);
	assert_string_equal(c.access_key, "AKIDLONG");
	assert_string_equal(c.secret_key, "secretlong");
	assert_string_equal(c.session_token, token.ptr);
	dd_s3_creds_free(&c);
	dd_buf_release(&text);
	dd_buf_release(&token);
}

static void
expect_malformed(const char *text, size_t len, const char *where, const char *secret)
{
	struct dd_s3_creds c;

	write_file(".aws/credentials", text, len);
	assert_int_equal(dd_s3_creds_resolve(&c, NULL), -1);
	if (!strstr(dd_error_last(), where))
		fail_msg("error '%s' does not say '%s'", dd_error_last(), where);
	if (strstr(dd_error_last(), secret) || (dd_error_hint() && strstr(dd_error_hint(), secret)))
		fail_msg("error '%s' quotes the file", dd_error_last());
	assert_null(c.access_key);
}

static void
malformed_file_names_file_and_line_never_a_value(void **state)
{
	static const char no_equals[] = "[default]\naws_access_key_id = AKID\nSECRETVALUE\n";
	static const char nul[] = "[default]\naws_access_key_id = AKID\naws_secret_access_key = SECRET\0VALUE\n";
	static const char bracket[] = "[default]\n\n[SECRETVALUE\n";
	static const char twice[] = "[default]\naws_secret_access_key = a\naws_secret_access_key = SECRETVALUE\n";
	struct dd_buf longline = DD_BUF_INIT;

	expect_malformed(no_equals, sizeof(no_equals) - 1, "~/.aws/credentials:3: ", "SECRETVALUE");
	expect_malformed(nul, sizeof(nul) - 1, "~/.aws/credentials:3: ", "SECRET");
	expect_malformed(bracket, sizeof(bracket) - 1, "~/.aws/credentials:3: ", "SECRETVALUE");
	expect_malformed(twice, sizeof(twice) - 1, "~/.aws/credentials:3: ", "SECRETVALUE");

	/* A long line that is not "key = value" cannot be read. */
	dd_buf_puts(&longline, "[default]\n  ");
	for (int i = 0; i < 300; i++)
		dd_buf_putc(&longline, 'S');
	dd_buf_putc(&longline, '\n');
	expect_malformed(longline.ptr, longline.len, "~/.aws/credentials:2: ", "SSSS");
	dd_buf_release(&longline);

	/* In the config file too, with its own name. */
	WRITE(".aws/credentials", credentials);
	WRITE(".aws/config", "[default]\nregion = x\n\x01garbage\n");
	{
		struct dd_s3_creds c;
		assert_int_equal(dd_s3_creds_resolve(&c, NULL), -1);
		assert_non_null(strstr(dd_error_last(), "~/.aws/config:3: "));
	}
}

static void
half_a_pair_in_a_profile_is_an_error(void **state)
{
	struct dd_s3_creds c;

	WRITE(".aws/credentials", "[default]\naws_access_key_id = AKIDHALF\n");
	assert_int_equal(dd_s3_creds_resolve(&c, NULL), -1);
	assert_non_null(strstr(dd_error_last(), "no aws_secret_access_key"));
	assert_null(strstr(dd_error_last(), "AKIDHALF"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(default_profile_from_the_credentials_file, setup, teardown),
		cmocka_unit_test_setup_teardown(environment_wins_over_files, setup, teardown),
		cmocka_unit_test_setup_teardown(texts_resolve_as_the_files_do, setup, teardown),
		cmocka_unit_test_setup_teardown(half_a_pair_in_the_environment_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(aws_profile_picks_a_section_with_its_session_token, setup, teardown),
		cmocka_unit_test_setup_teardown(missing_profile_is_an_error_naming_it, setup, teardown),
		cmocka_unit_test_setup_teardown(config_file_profiles_and_their_credentials, setup, teardown),
		cmocka_unit_test_setup_teardown(region_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(endpoint_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(nothing_found_names_the_variables, setup, teardown),
		cmocka_unit_test_setup_teardown(files_named_by_variables_are_read_instead, setup, teardown),
		cmocka_unit_test_setup_teardown(long_session_token_line_is_read_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(malformed_file_names_file_and_line_never_a_value, setup, teardown),
		cmocka_unit_test_setup_teardown(half_a_pair_in_a_profile_is_an_error, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
