/* util/secret.c: passphrases moved out of the environment; see secret.h. */
#include "util/secret.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = { "DNADATA_PASSPHRASE", "DNADATA_NEW_PASSPHRASE" };
static char *values[sizeof(names) / sizeof(names[0])];

void
dd_secret_env_take(void)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *v = getenv(names[i]);
		size_t len;

		if (!v)
			continue;
		len = strlen(v);
		sodium_free(values[i]);
		values[i] = sodium_malloc(len + 1);
		if (values[i])
			memcpy(values[i], v, len + 1);
		sodium_memzero(v, len);
		unsetenv(names[i]);
	}
}

const char *
dd_secret_env(const char *name)
{
	dd_secret_env_take(); /* a variable set since start (tests) moves too */
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i]))
			return values[i];
	return NULL;
}
