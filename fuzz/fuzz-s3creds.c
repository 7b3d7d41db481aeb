/*
 * fuzz/fuzz-s3creds.c: the AWS credentials / config file reader
 * (s3/creds.c) on arbitrary bytes, read as both files, for the default
 * profile and a named one.
 *
 * Beyond "no crash under ASan/UBSan": every failure is -1 or DD_NOTFOUND
 * with a one-line reason; a success always has an access key, a secret,
 * a region and a source.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s3/creds.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void
setup(void)
{
	int fd;

	if (path[0])
		return;
	snprintf(path, sizeof(path), "/tmp/fuzz-s3creds.XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		abort();
	close(fd);
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	setenv("AWS_CONFIG_FILE", path, 1);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
}

static void
resolve_once(void)
{
	struct dd_s3_creds c;
	int rc = dd_s3_creds_resolve(&c, NULL);

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
	FILE *f;

	setup();
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	unsetenv("AWS_PROFILE");
	resolve_once();
	setenv("AWS_PROFILE", "dev", 1);
	resolve_once();
	return 0;
}
