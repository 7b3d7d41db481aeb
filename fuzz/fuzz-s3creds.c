/*
 * fuzz/fuzz-s3creds.c: the AWS credentials / config file reader
 * (s3/creds.c) on arbitrary bytes, read as both files, for the default
 * profile and a named one.
 *
 * Beyond "no crash under ASan/UBSan": every failure is -1 or DD_NOTFOUND
 * with a one-line reason; a success always has an access key, a secret,
 * a region and a source.
 *
 * The bytes go in as text (dd_s3_creds_resolve_text), not through a file:
 * writing a file and reading it twice per input spent most of each run in
 * the kernel (open, truncate, page faults of the 64 KiB read buffer) and,
 * on a busy disk, waiting for it; none of that is the parser.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3/creds.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
setup(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_S3");
}

/* The bytes as both files, as dd_s3_creds_resolve() would read them (no file per input: see the header). */
static void
resolve_once(const char *text, size_t len)
{
	struct dd_s3_creds c;
	int rc = dd_s3_creds_resolve_text(&c, NULL, text, len, "credentials", text, len, "config");

	if (rc == 0) {
		if (!c.access_key || !*c.access_key || !c.secret_key || !*c.secret_key || !c.region || !c.source)
			abort();
		dd_s3_creds_free(&c);
	} else if (!dd_error_last() || strchr(dd_error_last(), '\n') || (rc != -1 && rc != DD_NOTFOUND)) {
		abort();
	}
	dd_error_clear();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	unsetenv("AWS_PROFILE");
	resolve_once((const char *)data, size);
	setenv("AWS_PROFILE", "dev", 1);
	resolve_once((const char *)data, size);
	return 0;
}
