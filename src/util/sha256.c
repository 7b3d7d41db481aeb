/* util/sha256.c: see sha256.h. */
#include "util/sha256.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

static void
fail(const char *what)
{
	/* EVP's SHA-256 fails only when memory does: as dd_malloc, abort */
	fprintf(stderr, "fatal: %s (libcrypto SHA-256)\n", what);
	abort();
}

void
dd_sha256(uint8_t out[DD_SHA256_BYTES], const void *data, size_t len)
{
	unsigned int n = 0;

	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != DD_SHA256_BYTES)
		fail("hashing failed");
}

struct dd_sha256 *
dd_sha256_new(void)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
		fail("out of memory");
	return (struct dd_sha256 *)c;
}

void
dd_sha256_update(struct dd_sha256 *h, const void *data, size_t len)
{
	if (len && EVP_DigestUpdate((EVP_MD_CTX *)h, data, len) != 1)
		fail("hashing failed");
}

void
dd_sha256_final(struct dd_sha256 *h, uint8_t out[DD_SHA256_BYTES])
{
	unsigned int n = 0;

	if (EVP_DigestFinal_ex((EVP_MD_CTX *)h, out, &n) != 1 || n != DD_SHA256_BYTES)
		fail("hashing failed");
	EVP_MD_CTX_free((EVP_MD_CTX *)h);
}

void
dd_sha256_free(struct dd_sha256 *h)
{
	EVP_MD_CTX_free((EVP_MD_CTX *)h);
}
