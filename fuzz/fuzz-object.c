/*
 * fuzz/fuzz-object.c: the object opener (store/object.c) on hostile bytes.
 *
 * First byte selects the mode: even = the input is a whole object file;
 * odd = the input is an object's *inner* plaintext (compression byte,
 * length, body), sealed here with the fixed key so the checks behind the
 * AEAD (length bounds, zstd frames, id recheck) are reached too.
 * Both modes also open the input as a delta object (FORMAT.md §4.3)
 * against a fixed base (the odd mode's inner part must name it: 64 bytes,
 * id 1...). Invariant: a successful open returns at most
 * max_plain bytes.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/object.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dd_keys *keys;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t master[32] = { 7 };
	static const uint8_t base[64] = "a fixed base: the prefix a delta object is decompressed against";
	uint8_t id[32] = { 0 }, bid[32] = { 1 }, ad[34], *obj;
	struct dd_buf out = DD_BUF_INIT;
	size_t max_plain = 1 << 20, len;

	if (!keys) {
		if (sodium_init() < 0)
			abort();
		keys = dd_keys_new(master);
	}
	if (size < 1)
		return 0;
	if (!(data[0] & 1)) {
		for (int type = 1; type <= 2; type++)
			if (dd_object_open(&out, keys, type, id, data + 1, size - 1, max_plain, NULL) == 0 &&
			    out.len > max_plain)
				abort();
		if (dd_object_open_delta(&out, keys, id, bid, base, sizeof(base), data + 1, size - 1, max_plain, NULL) == 0 &&
		    out.len > max_plain)
			abort();
		dd_buf_release(&out);
		return 0;
	}
	/* seal the rest as the inner plaintext of a manifest (no id recheck) and of a data object */
	len = DD_OBJECT_HEADER + size - 1 + DD_OBJECT_TAG;
	obj = malloc(len);
	for (int type = 1; type <= 2; type++) {
		memcpy(obj, DD_OBJECT_MAGIC, 4);
		obj[4] = DD_OBJECT_VERSION;
		obj[5] = (uint8_t)type;
		memset(obj + 6, 0, 24);
		ad[0] = DD_OBJECT_VERSION, ad[1] = (uint8_t)type;
		memcpy(ad + 2, id, 32);
		crypto_aead_xchacha20poly1305_ietf_encrypt(obj + DD_OBJECT_HEADER, NULL, data + 1, size - 1, ad,
							   sizeof(ad), NULL, obj + 6, keys->object);
		if (dd_object_open(&out, keys, type, id, obj, len, max_plain, NULL) == 0 && out.len > max_plain)
			abort();
	}
	/* the same as a delta object (type 4: its inner part names the base) */
	obj[5] = DD_OBJ_DELTA;
	ad[0] = DD_OBJECT_VERSION, ad[1] = DD_OBJ_DELTA;
	memcpy(ad + 2, id, 32);
	crypto_aead_xchacha20poly1305_ietf_encrypt(obj + DD_OBJECT_HEADER, NULL, data + 1, size - 1, ad, sizeof(ad),
						   NULL, obj + 6, keys->object);
	if (dd_object_open_delta(&out, keys, id, bid, base, sizeof(base), obj, len, max_plain, NULL) == 0 &&
	    out.len > max_plain)
		abort();
	free(obj);
	dd_buf_release(&out);
	dd_error_clear();
	return 0;
}
