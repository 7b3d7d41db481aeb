/*
 * fuzz/fuzz-pack.c: the pack header and index file decoders
 * (store/pack.c) on hostile bytes.
 *
 * First byte selects the mode: 0 mod 3 = the input is a whole pack (the
 * header will rarely authenticate: this covers the trailer checks); 1 mod 3
 * = the input is a pack header's *plaintext*, sealed here with the fixed
 * key behind 4096 bytes of objects, so the checks behind the AEAD (counts,
 * tiling) are reached; 2 mod 3 = the input is an index file's plaintext.
 * Invariant: whatever decodes tiles its object region exactly, and every
 * delta entry (type 4, versions 2, FORMAT.md §4.3) names a possible base:
 * not itself, a length, a depth within what readers follow.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/pack.h"
#include "util/endian.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OBJECTS 4096

static struct dd_keys *keys;

static void
check_tiles(const struct dd_pack_entry *e, size_t n, uint64_t end)
{
	uint64_t at = 0;

	for (size_t i = 0; i < n; i++) {
		if (e[i].off != at)
			abort();
		if (e[i].type != 1 && e[i].type != 4)
			abort();
		if (e[i].type == 4 && (e[i].d.depth == 0 || e[i].d.depth > DD_DELTA_DEPTH_MAX || e[i].d.base_len == 0 ||
				       !memcmp(e[i].d.base, e[i].id, 32)))
			abort();
		at += e[i].len;
	}
	if (at != end)
		abort();
}

static void
sealed_header(const uint8_t *plain, size_t len)
{
	uint8_t ad[sizeof(DD_PACK_AD)], *pack = calloc(1, OBJECTS + 24 + len + 16 + 4);
	unsigned long long clen;
	struct dd_pack_entry *e;
	size_t n;

	memcpy(ad, DD_PACK_AD, sizeof(DD_PACK_AD) - 1);
	ad[sizeof(DD_PACK_AD) - 1] = DD_PACK_VERSION;
	crypto_aead_xchacha20poly1305_ietf_encrypt(pack + OBJECTS + 24, &clen, plain, len, ad, sizeof(ad), NULL,
						   pack + OBJECTS, keys->object);
	dd_put_le32(pack + OBJECTS + 24 + clen, (uint32_t)(24 + clen));
	if (dd_pack_open_header(&e, &n, keys, pack, OBJECTS + 24 + clen + 4) == 0) {
		check_tiles(e, n, OBJECTS);
		free(e);
	}
	free(pack);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t master[32] = { 7 };
	struct dd_pack_entry *e;
	struct dd_index_pack *p;
	size_t n;

	if (!keys) {
		if (sodium_init() < 0)
			abort();
		keys = dd_keys_new(master);
	}
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (dd_pack_open_header(&e, &n, keys, data + 1, size - 1) == 0)
			free(e);
		break;
	case 1:
		sealed_header(data + 1, size - 1);
		break;
	default:
		if (dd_index_decode(&p, &n, data + 1, size - 1) == 0) {
			for (size_t i = 0; i < n; i++)
				check_tiles(p[i].e, p[i].n, (uint64_t)p[i].e[p[i].n - 1].off + p[i].e[p[i].n - 1].len);
			dd_index_packs_free(p, n);
		}
		break;
	}
	dd_error_clear();
	return 0;
}
