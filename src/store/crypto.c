/*
 * store/crypto.c: subkey derivation and keyed ids; see crypto.h and
 * docs/FORMAT.md §3.2.
 */
#include "store/crypto.h"
#include "store/manifest.h"
#include "util/buf.h"
#include "util/hex.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dd_keys *
dd_keys_new(const uint8_t master[DD_KEY_LEN])
{
	struct dd_keys *k = sodium_malloc(sizeof(*k));

	if (!k) {
		fprintf(stderr, "fatal: out of memory\n");
		abort();
	}
	memcpy(k->master, master, DD_KEY_LEN);
	crypto_kdf_derive_from_key(k->object, DD_KEY_LEN, DD_SUBKEY_OBJECT, DD_KDF_CONTEXT, master);
	crypto_kdf_derive_from_key(k->id, DD_KEY_LEN, DD_SUBKEY_ID, DD_KDF_CONTEXT, master);
	crypto_kdf_derive_from_key(k->chunker, DD_KEY_LEN, DD_SUBKEY_CHUNKER, DD_KDF_CONTEXT, master);
	crypto_kdf_derive_from_key(k->key_id, DD_KEY_LEN, DD_SUBKEY_KEYID, DD_KDF_CONTEXT, master);
	crypto_kdf_derive_from_key(k->config, DD_KEY_LEN, DD_SUBKEY_CONFIG, DD_KDF_CONTEXT, master);
	crypto_kdf_derive_from_key(k->checksum, DD_KEY_LEN, DD_SUBKEY_CHECKSUM, DD_KDF_CONTEXT, master);
	return k;
}

void
dd_keys_free(struct dd_keys *k)
{
	if (k)
		sodium_free(k); /* zeroes before unmapping */
}

void
dd_id_compute(uint8_t out[32], const struct dd_keys *k, const void *data, size_t len)
{
	crypto_generichash(out, 32, data, len, k->id, DD_KEY_LEN);
}

void
dd_object_name(char *out, size_t size, const char *dir, const uint8_t id[32])
{
	char hex[65];

	dd_hex_encode(hex, id, 32);
	if (!strcmp(dir, "data") || !strcmp(dir, "packs"))
		snprintf(out, size, "%s/%.2s/%s", dir, hex, hex);
	else
		snprintf(out, size, "%s/%s", dir, hex);
}

void
dd_stream_checksum(uint8_t out[32], const struct dd_keys *k, const struct dd_stream_info *si)
{
	crypto_generichash_state st;
	uint8_t size[8];

	for (int i = 0; i < 8; i++)
		size[i] = (uint8_t)(si->size >> (8 * i));
	crypto_generichash_init(&st, k->checksum, DD_KEY_LEN, 32);
	crypto_generichash_update(&st, size, sizeof(size));
	for (size_t i = 0; i < si->nchunks; i++)
		crypto_generichash_update(&st, si->chunks[i].id, 32);
	crypto_generichash_final(&st, out, 32);
}
