/*
 * store/keys.h: the master key on this machine, passphrase-wrapped key
 * files in the store, and the store config that names the key
 * (docs/FORMAT.md §3).
 *
 * The local key (<statedir>/key) and `key export` files are text,
 * "dnadata-key 1\nkey <64 hex>\n", mode 0600; a key file readable by group
 * or others is refused. Key files in the store (keys/<name>) hold the master
 * key sealed with a key stretched from a passphrase by Argon2id. Parsers
 * are strict: they read hostile bytes.
 */
#ifndef DD_STORE_KEYS_H
#define DD_STORE_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "store/crypto.h"
#include "util/buf.h"
#include "util/err.h"

/* ---- plain key files (local key, export) ---- */
void dd_key_format(struct dd_buf *out, const uint8_t master[DD_KEY_LEN]);
int dd_key_parse(uint8_t master[DD_KEY_LEN], const char *text, size_t len, const char *path);
/* Read <path>; refuses group/other-readable files. Returns 0, DD_NOTFOUND if missing, -1. */
int dd_key_read_file(uint8_t master[DD_KEY_LEN], const char *path);
/* Write atomically, mode 0600 (flags: DD_WRITE_NOREPLACE ...). */
int dd_key_write_file(const char *path, const uint8_t master[DD_KEY_LEN], int flags);

/* ---- passphrase-wrapped key files (keys/ in the store) ---- */
#define DD_KEYFILE_MAGIC "DDKEYF01"
#define DD_KEYFILE_SIZE 113
#define DD_KEYFILE_ALG_ARGON2ID13 1

struct dd_keyfile {
	uint8_t alg;
	uint64_t opslimit, memlimit;
	uint8_t salt[16];
	uint8_t nonce[24];
	uint8_t sealed[DD_KEY_LEN + 16];
	uint8_t header[65]; /* bytes 0..65: associated data */
};

/* Wrap with Argon2id (MODERATE limits unless overridden for tests). */
int dd_keyfile_wrap(struct dd_buf *out, const uint8_t master[DD_KEY_LEN], const char *passphrase);
/* Strict parse of the fixed layout and limits. */
int dd_keyfile_parse(struct dd_keyfile *kf, const void *data, size_t len);
/* Returns 0, DD_NOTFOUND when the passphrase does not open it (no error set), -1 on error. */
int dd_keyfile_unwrap(uint8_t master[DD_KEY_LEN], const struct dd_keyfile *kf, const char *passphrase);
/* Test hook: use libsodium's MIN limits instead of MODERATE when wrapping. */
void dd_keyfile_set_fast_for_tests(int fast);

/* ---- store config ---- */
struct dd_store_config {
	unsigned version;
	uint32_t min, avg, max;
	int zlevel; /* the level writers use: a zstd level, or DD_ZLEVEL_NONE (compression line; legacy 3) */
	uint8_t key_id[DD_KEY_LEN];
	uint8_t mac[32];
	size_t signed_len; /* bytes covered by the mac */
};
#define DD_STORE_FORMAT 2        /* written: with a compression line (FORMAT.md §3.3) */
#define DD_STORE_FORMAT_LEGACY 1 /* read: no compression line, writers use zstd level 3 */

/*
 * The compression setting: "none" or "zstd:N" with N in
 * DD_ZLEVEL_MIN..DD_ZLEVEL_MAX, 0 not allowed; *level gets N or
 * DD_ZLEVEL_NONE. `what` names the value in the error ("--compression").
 * dd_compression_format writes the same text back.
 */
#define DD_ZLEVEL_DEFAULT 1 /* new stores (measured: FORMAT.md §4) */
#define DD_ZLEVEL_MIN (-7)
#define DD_ZLEVEL_MAX 19
int dd_compression_parse(int *level, const char *text, const char *what);
void dd_compression_format(char out[16], int level);

void dd_store_config_format(struct dd_buf *out, const struct dd_store_config *c, const struct dd_keys *k);
/* Parse (strict) without a key; then dd_store_config_check() against a key. */
int dd_store_config_parse(struct dd_store_config *c, const char *text, size_t len);
/*
 * Does `k` belong to this store? Wrong key -> "this store belongs to another
 * key (id ...)" + hint; right key but bad mac -> "store config damaged".
 */
int dd_store_config_check(const struct dd_store_config *c, const char *text, const struct dd_keys *k,
		    const char *url);

/* Short printable key id (first 16 hex digits), for messages. */
void dd_key_id_short(char out[17], const uint8_t key_id[DD_KEY_LEN]);

#endif
