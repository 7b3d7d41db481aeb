/*
 * store/store-identity.c: dd_store_identity (store.h), what a record kept
 * beside a store (the media index) names it by: a keyed BLAKE2b of the key
 * id and the chunker's parameters, so records of another store (re-init,
 * a key change, another profile's store) are not trusted.
 */
#include "store/internal.h"
#include "util/endian.h"
#include "util/hex.h"

#include <sodium.h>
#include <string.h>

const char *
dd_store_identity(const struct dd_store *st)
{
	static _Thread_local char hex[65];
	crypto_generichash_state h;
	uint8_t params[12], out[32];

	dd_put_le32(params, st->chunker->min);
	dd_put_le32(params + 4, st->chunker->avg);
	dd_put_le32(params + 8, st->chunker->max);
	crypto_generichash_init(&h, st->keys->id, DD_KEY_LEN, sizeof(out));
	crypto_generichash_update(&h, (const uint8_t *)"dnadata store identity", 22);
	crypto_generichash_update(&h, st->keys->key_id, DD_KEY_LEN);
	crypto_generichash_update(&h, params, sizeof(params));
	crypto_generichash_final(&h, out, sizeof(out));
	dd_hex_encode(hex, out, sizeof(out));
	return hex;
}
