/*
 * store/crypto.h: the store's key hierarchy and keyed hashes
 * (docs/FORMAT.md §3.2).
 *
 * Every key used by the store derives from the 32-byte master key with
 * crypto_kdf_derive_from_key(context "ddstore1", one subkey id per use), so
 * no key is ever used for two purposes and the master key itself touches
 * nothing but the KDF. The struct lives in sodium_malloc'ed, locked memory.
 */
#ifndef DD_STORE_CRYPTO_H
#define DD_STORE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define DD_KEY_LEN 32
#define DD_KDF_CONTEXT "ddstore1"

enum dd_subkey {
	DD_SUBKEY_OBJECT = 1,   /* XChaCha20-Poly1305 key of every object */
	DD_SUBKEY_ID = 2,       /* BLAKE2b key of object ids */
	DD_SUBKEY_CHUNKER = 3,  /* XChaCha20 key expanding into the gear table */
	DD_SUBKEY_KEYID = 4,    /* the key id itself (public) */
	DD_SUBKEY_CONFIG = 5,   /* BLAKE2b key of the config MAC */
	DD_SUBKEY_CHECKSUM = 6, /* BLAKE2b key of stream checksums */
};

struct dd_keys {
	uint8_t master[DD_KEY_LEN];
	uint8_t object[DD_KEY_LEN];
	uint8_t id[DD_KEY_LEN];
	uint8_t chunker[DD_KEY_LEN];
	uint8_t key_id[DD_KEY_LEN];
	uint8_t config[DD_KEY_LEN];
	uint8_t checksum[DD_KEY_LEN];
};

/* Derive every subkey from `master` into locked memory; free with dd_keys_free. */
struct dd_keys *dd_keys_new(const uint8_t master[DD_KEY_LEN]);
void dd_keys_free(struct dd_keys *k);

/* Object id: keyed BLAKE2b-256 of the plaintext. */
void dd_id_compute(uint8_t out[32], const struct dd_keys *k, const void *data, size_t len);

struct dd_stream_info;
/* A stream's checksum: BLAKE2b-256(checksum key, size u64le || id_1 || ... || id_n) (FORMAT.md §6). */
void dd_stream_checksum(uint8_t out[32], const struct dd_keys *k, const struct dd_stream_info *si);

/* "data/ab/ab12...": the store-relative name of a data object (size >= 64+9+1). */
void dd_object_name(char *out, size_t size, const char *dir, const uint8_t id[32]);
#define DD_OBJECT_NAME_SIZE 96

#endif
