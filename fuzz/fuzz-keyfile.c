/*
 * fuzz/fuzz-keyfile.c: the parsers of key material and the store config
 * (store/keys.c) on hostile bytes. First byte selects: 0 = wrapped key file
 * (and unwrapping it when its Argon2id limits are cheap), 1 = store config,
 * 2 = plain key file. Whatever config parses must re-format identically
 * when its MAC is recomputed with the fixed key.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/keys.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dd_keys *keys;
	static const uint8_t master[32] = { 7 };
	uint8_t out[32];

	if (!keys) {
		if (sodium_init() < 0)
			abort();
		keys = dd_keys_new(master);
	}
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0: {
		struct dd_keyfile kf;
		if (dd_keyfile_parse(&kf, data + 1, size - 1) == 0 && kf.opslimit <= 2 && kf.memlimit <= 65536)
			dd_keyfile_unwrap(out, &kf, "pw");
		break;
	}
	case 1: {
		struct dd_store_config c;
		if (dd_store_config_parse(&c, (const char *)data + 1, size - 1) == 0) {
			if (c.signed_len > size - 1)
				abort();
			dd_store_config_check(&c, (const char *)data + 1, keys, "fuzz");
		}
		break;
	}
	default:
		dd_key_parse(out, (const char *)data + 1, size - 1, "fuzz");
		break;
	}
	dd_error_clear();
	return 0;
}
