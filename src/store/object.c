/*
 * store/object.c: seal and open one object; see object.h and
 * docs/FORMAT.md §4.
 *
 * Sealing compresses straight into the output buffer and encrypts in place
 * (libsodium allows it), so a chunk costs one output allocation. zstd's
 * output is kept only when it saves at least 1/32 of the input; otherwise
 * the body is stored raw (media, already-compressed data).
 */
#include "store/object.h"
#include "util/endian.h"
#include "util/err.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void
make_ad(uint8_t ad[34], int type, const uint8_t id[32])
{
	ad[0] = DD_OBJECT_VERSION;
	ad[1] = (uint8_t)type;
	memcpy(ad + 2, id, 32);
}

int
dd_object_seal(struct dd_buf *out, const struct dd_keys *k, int type, const uint8_t id[32],
	       const void *plain, size_t len, ZSTD_CCtx *zc)
{
	return dd_object_seal_level(out, k, type, id, plain, len, zc, DD_ZSTD_LEVEL);
}

int
dd_object_seal_level(struct dd_buf *out, const struct dd_keys *k, int type, const uint8_t id[32],
		     const void *plain, size_t len, ZSTD_CCtx *zc, int level)
{
	size_t bound = ZSTD_compressBound(len), body = len;
	uint8_t ad[34], *p, *inner;
	unsigned long long clen;
	ZSTD_CCtx *own = NULL;
	int comp = DD_COMP_NONE;

	dd_buf_clear(out);
	dd_buf_grow(out, DD_OBJECT_HEADER + DD_OBJECT_INNER + (bound > len ? bound : len) + DD_OBJECT_TAG);
	p = (uint8_t *)out->ptr;
	memcpy(p, DD_OBJECT_MAGIC, 4);
	p[4] = DD_OBJECT_VERSION;
	p[5] = (uint8_t)type;
	randombytes_buf(p + 6, 24);
	inner = p + DD_OBJECT_HEADER;
	if (len >= 64 && level != DD_ZLEVEL_NONE) {
		if (!zc)
			zc = own = ZSTD_createCCtx();
		if (!zc)
			return dd_error("out of memory (zstd)");
		size_t n = ZSTD_compressCCtx(zc, inner + DD_OBJECT_INNER, bound, plain, len, level);
		if (!ZSTD_isError(n) && n < len - len / 32) {
			comp = DD_COMP_ZSTD;
			body = n;
		}
	}
	if (comp == DD_COMP_NONE && len)
		memcpy(inner + DD_OBJECT_INNER, plain, len);
	inner[0] = (uint8_t)comp;
	dd_put_le64(inner + 1, len);
	make_ad(ad, type, id);
	crypto_aead_xchacha20poly1305_ietf_encrypt(inner, &clen, inner, DD_OBJECT_INNER + body, ad,
						   sizeof(ad), NULL, p + 6, k->object);
	out->len = DD_OBJECT_HEADER + (size_t)clen;
	out->ptr[out->len] = '\0';
	ZSTD_freeCCtx(own);
	return 0;
}

/*
 * The common part of open and check: header, size bound, decryption of the
 * inner part into `inner` (len - DD_OBJECT_HEADER bytes), and the length
 * field against max_plain. *plen and *body describe the inner part.
 */
static int
decrypt_inner(uint8_t *inner, const struct dd_keys *k, int type, const uint8_t id[32], const uint8_t *o,
	      size_t len, size_t max_plain, uint64_t *plen, size_t *body)
{
	uint8_t ad[34];
	unsigned long long ilen;

	if (len < 6)
		return dd_error("damaged (truncated to %zu bytes)", len);
	if (memcmp(o, DD_OBJECT_MAGIC, 4))
		return dd_error("damaged (not an object)");
	if (o[4] != DD_OBJECT_VERSION)
		return dd_error("object format version %u is not supported by this git-dnadata (upgrade it)", o[4]);
	if (o[5] != type)
		return dd_error("damaged (object type %u where %d was expected)", o[5], type);
	if (len < DD_OBJECT_HEADER + DD_OBJECT_INNER + DD_OBJECT_TAG)
		return dd_error("damaged (truncated to %zu bytes)", len);
	if (len - DD_OBJECT_HEADER - DD_OBJECT_TAG - DD_OBJECT_INNER > max_plain + max_plain / 16 + 1024)
		return dd_error("damaged (object of %zu bytes is larger than allowed)", len);
	make_ad(ad, type, id);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(inner, &ilen, NULL, o + DD_OBJECT_HEADER,
						       len - DD_OBJECT_HEADER, ad, sizeof(ad), o + 6,
						       k->object) != 0)
		return dd_error("damaged (authentication failed: modified, truncated or stored under the wrong name)");
	*plen = dd_get_le64(inner + 1);
	*body = (size_t)ilen - DD_OBJECT_INNER;
	if (*plen > max_plain)
		return dd_error("damaged (plaintext of %llu bytes is larger than allowed)", (unsigned long long)*plen);
	return 0;
}

int
dd_object_check(const struct dd_keys *k, int type, const uint8_t id[32], const void *obj, size_t len,
		struct dd_buf *scratch)
{
	uint64_t plen;
	size_t body;
	uint8_t *inner;

	dd_buf_clear(scratch);
	dd_buf_grow(scratch, len > DD_OBJECT_HEADER ? len - DD_OBJECT_HEADER : 1);
	inner = (uint8_t *)scratch->ptr;
	if (decrypt_inner(inner, k, type, id, obj, len, DD_OBJECT_PLAIN_MAX, &plen, &body) < 0)
		return -1;
	scratch->len = DD_OBJECT_INNER + body;
	switch (inner[0]) {
	case DD_COMP_NONE:
		if (body != plen)
			return dd_error("damaged (length mismatch)");
		return 0;
	case DD_COMP_ZSTD: {
		/* frame headers only, no decompression; frames need not declare their size (FORMAT.md §4) */
		const uint8_t *z = inner + DD_OBJECT_INNER;
		unsigned long long fcs = ZSTD_getFrameContentSize(z, body);
		size_t first = ZSTD_findFrameCompressedSize(z, body);
		if (fcs == ZSTD_CONTENTSIZE_ERROR || ZSTD_isError(first))
			return dd_error("damaged (zstd: not a frame)");
		if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && (first == body ? fcs != plen : fcs > plen))
			return dd_error("damaged (zstd: length mismatch)");
		return 0;
	}
	default:
		return dd_error("damaged (unknown compression %u)", inner[0]);
	}
}

uint64_t
dd_object_check_plain_len(const struct dd_buf *scratch)
{
	return dd_get_le64((const uint8_t *)scratch->ptr + 1);
}

int
dd_object_open(struct dd_buf *out, const struct dd_keys *k, int type, const uint8_t id[32],
	       const void *obj, size_t len, size_t max_plain, ZSTD_DCtx *zd)
{
	uint8_t *inner = NULL, check[32];
	uint64_t plen;
	size_t body;
	ZSTD_DCtx *own = NULL;
	int rc = -1;

	dd_buf_clear(out);
	inner = malloc(len > DD_OBJECT_HEADER ? len - DD_OBJECT_HEADER : 1);
	if (!inner)
		return dd_error("out of memory");
	if (decrypt_inner(inner, k, type, id, obj, len, max_plain, &plen, &body) < 0)
		goto out;
	dd_buf_grow(out, (size_t)plen);
	switch (inner[0]) {
	case DD_COMP_NONE:
		if (body != plen) {
			dd_error("damaged (length mismatch)");
			goto out;
		}
		memcpy(out->ptr, inner + DD_OBJECT_INNER, body);
		break;
	case DD_COMP_ZSTD: {
		if (!zd)
			zd = own = ZSTD_createDCtx();
		if (!zd) {
			dd_error("out of memory (zstd)");
			goto out;
		}
		size_t n = ZSTD_decompressDCtx(zd, out->ptr, (size_t)plen, inner + DD_OBJECT_INNER, body);
		if (ZSTD_isError(n) || n != plen) {
			dd_error("damaged (zstd: %s)", ZSTD_isError(n) ? ZSTD_getErrorName(n) : "length mismatch");
			goto out;
		}
		break;
	}
	default:
		dd_error("damaged (unknown compression %u)", inner[0]);
		goto out;
	}
	out->len = (size_t)plen;
	out->ptr[out->len] = '\0';
	if (type == DD_OBJ_DATA || type == DD_OBJ_INDEX) {
		dd_id_compute(check, k, out->ptr, out->len);
		if (sodium_memcmp(check, id, 32) != 0) {
			dd_error("damaged (content does not match its id)");
			goto out;
		}
	}
	rc = 0;
out:
	if (rc < 0)
		dd_buf_clear(out);
	if (inner)
		free(inner);
	ZSTD_freeDCtx(own);
	return rc;
}
