/*
 * store/pack.c: the byte formats of pack headers and index files; see
 * pack.h and docs/FORMAT.md §4.1-§4.2.
 *
 * Decoders are strict: a header or index that this encoder would not
 * produce (entries out of order, gaps or overlaps, counts larger than the
 * bytes present, trailing bytes) is refused, so each has one encoding.
 */
#include "store/pack.h"
#include "util/endian.h"
#include "util/err.h"
#include "util/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NONCE 24
#define TAG 16

void
dd_pack_hash(uint8_t out[32], const void *data, size_t len)
{
	dd_sha256(out, data, len);
}

int
dd_pack_hash_file(uint8_t out[32], const char *path)
{
	struct dd_sha256 *h = NULL;
	size_t cap = 1u << 20;
	uint8_t *buf = dd_malloc(cap);
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;

	if (fd < 0) {
		dd_error_errno("cannot open %s", path);
		goto out;
	}
	h = dd_sha256_new();
	while ((n = read(fd, buf, cap)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			dd_error_errno("cannot read %s", path);
			goto out;
		}
		dd_sha256_update(h, buf, (size_t)n);
	}
	dd_sha256_final(h, out);
	h = NULL;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	dd_sha256_free(h);
	free(buf);
	return rc;
}

static void
header_ad(uint8_t ad[sizeof(DD_PACK_AD)])
{
	memcpy(ad, DD_PACK_AD, sizeof(DD_PACK_AD) - 1);
	ad[sizeof(DD_PACK_AD) - 1] = DD_PACK_VERSION;
}

static void
put_entry(uint8_t *p, const struct dd_pack_entry *e)
{
	p[0] = e->type;
	memcpy(p + 1, e->id, 32);
	dd_put_le32(p + 33, e->off);
	dd_put_le32(p + 37, e->len);
}

static void
get_entry(struct dd_pack_entry *e, const uint8_t *p)
{
	e->type = p[0];
	memcpy(e->id, p + 1, 32);
	e->off = dd_get_le32(p + 33);
	e->len = dd_get_le32(p + 37);
}

/* Entries tile [0, end) exactly, in order, with known types. */
static int
check_tiling(const struct dd_pack_entry *e, size_t n, uint64_t end)
{
	uint64_t at = 0;

	for (size_t i = 0; i < n; i++) {
		if (e[i].type != 1)
			return dd_error("damaged (pack entry %zu has object type %u)", i, e[i].type);
		if (e[i].off != at || e[i].len == 0)
			return dd_error("damaged (pack entry %zu is not where the previous one ends)", i);
		at += e[i].len;
	}
	if (at != end)
		return dd_error("damaged (the pack's entries cover %llu bytes, its objects %llu)",
				(unsigned long long)at, (unsigned long long)end);
	return 0;
}

int
dd_pack_seal_header(struct dd_buf *out, const struct dd_keys *k, const struct dd_pack_entry *e, size_t n)
{
	size_t plen = 9 + n * DD_PACK_ENTRY, at;
	uint8_t ad[sizeof(DD_PACK_AD)], *plain, *p;
	unsigned long long clen;

	if (n == 0 || n > DD_PACK_MAX_OBJECTS || check_tiling(e, n, out->len) < 0)
		return dd_error("internal error: a pack of %zu objects that do not tile it", n);
	plain = dd_malloc(plen);
	memcpy(plain, DD_PACK_MAGIC, 4);
	plain[4] = DD_PACK_VERSION;
	dd_put_le32(plain + 5, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		put_entry(plain + 9 + i * DD_PACK_ENTRY, &e[i]);
	at = out->len;
	dd_buf_grow(out, NONCE + plen + TAG + 4);
	p = (uint8_t *)out->ptr + at;
	randombytes_buf(p, NONCE);
	header_ad(ad);
	crypto_aead_xchacha20poly1305_ietf_encrypt(p + NONCE, &clen, plain, plen, ad, sizeof(ad), NULL, p,
						   k->object);
	dd_put_le32(p + NONCE + clen, (uint32_t)(NONCE + clen));
	out->len = at + NONCE + (size_t)clen + 4;
	out->ptr[out->len] = '\0';
	free(plain);
	return 0;
}

/* Decrypt the header of a pack whose last 4 + hlen bytes are the header. */
static int
open_header(uint8_t **plain, size_t *plen, const struct dd_keys *k, const uint8_t *h, size_t hlen)
{
	uint8_t ad[sizeof(DD_PACK_AD)];
	unsigned long long n;

	*plain = dd_malloc(hlen);
	header_ad(ad);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(*plain, &n, NULL, h + NONCE, hlen - NONCE, ad, sizeof(ad),
						       h, k->object) != 0) {
		free(*plain);
		*plain = NULL;
		return dd_error("damaged (the pack header does not authenticate)");
	}
	*plen = (size_t)n;
	return 0;
}

int
dd_pack_open_header(struct dd_pack_entry **e, size_t *n, const struct dd_keys *k, const uint8_t *data, size_t len)
{
	uint8_t *plain = NULL;
	size_t plen = 0, count, hlen;
	int rc = -1;

	*e = NULL;
	*n = 0;
	if (len < 4 || len > DD_PACK_MAX)
		return dd_error("damaged (a pack of %zu bytes)", len);
	hlen = dd_get_le32(data + len - 4);
	if (hlen < NONCE + TAG + 9 || hlen > len - 4)
		return dd_error("damaged (pack header length %zu in a pack of %zu bytes)", hlen, len);
	if (open_header(&plain, &plen, k, data + len - 4 - hlen, hlen) < 0)
		return -1;
	if (memcmp(plain, DD_PACK_MAGIC, 4) || plain[4] != DD_PACK_VERSION) {
		dd_error(plain[4] != DD_PACK_VERSION && !memcmp(plain, DD_PACK_MAGIC, 4)
				 ? "pack format version %u is not supported by this git-dnadata (upgrade it)"
				 : "damaged (not a pack header)",
			 plain[4]);
		goto out;
	}
	count = dd_get_le32(plain + 5);
	if (count == 0 || count > DD_PACK_MAX_OBJECTS || plen != 9 + count * DD_PACK_ENTRY) {
		dd_error("damaged (pack header of %zu bytes for %zu objects)", plen, count);
		goto out;
	}
	*e = dd_calloc(count, sizeof(**e));
	for (size_t i = 0; i < count; i++)
		get_entry(&(*e)[i], plain + 9 + i * DD_PACK_ENTRY);
	if (check_tiling(*e, count, len - 4 - hlen) < 0)
		goto out;
	*n = count;
	rc = 0;
out:
	if (rc < 0) {
		free(*e);
		*e = NULL;
	}
	free(plain);
	return rc;
}

void
dd_index_encode(struct dd_buf *out, const struct dd_index_pack *p, size_t np)
{
	uint8_t b[DD_PACK_ENTRY];

	dd_buf_put(out, DD_INDEX_MAGIC, 4);
	b[0] = DD_INDEX_VERSION;
	dd_put_le32(b + 1, (uint32_t)np);
	dd_buf_put(out, b, 5);
	for (size_t i = 0; i < np; i++) {
		dd_buf_put(out, p[i].name, 32);
		dd_put_le32(b, (uint32_t)p[i].n);
		dd_buf_put(out, b, 4);
		for (size_t j = 0; j < p[i].n; j++) {
			put_entry(b, &p[i].e[j]);
			dd_buf_put(out, b, DD_PACK_ENTRY);
		}
	}
}

int
dd_index_decode(struct dd_index_pack **out, size_t *np, const uint8_t *data, size_t len)
{
	struct dd_index_pack *p = NULL;
	size_t n, at = 9, i = 0;
	uint64_t end;

	*out = NULL;
	*np = 0;
	if (len < 9 || memcmp(data, DD_INDEX_MAGIC, 4))
		return dd_error("damaged (not an index file)");
	if (data[4] != DD_INDEX_VERSION)
		return dd_error("index format version %u is not supported by this git-dnadata (upgrade it)", data[4]);
	n = dd_get_le32(data + 5);
	if (n > (len - 9) / 36)
		return dd_error("damaged (index of %zu bytes for %zu packs)", len, n);
	p = dd_calloc(n ? n : 1, sizeof(*p));
	for (i = 0; i < n; i++) {
		if (len - at < 36)
			goto bad;
		memcpy(p[i].name, data + at, 32);
		p[i].n = dd_get_le32(data + at + 32);
		at += 36;
		if (p[i].n == 0 || p[i].n > DD_PACK_MAX_OBJECTS || p[i].n > (len - at) / DD_PACK_ENTRY)
			goto bad;
		p[i].e = dd_calloc(p[i].n, sizeof(*p[i].e));
		for (size_t j = 0; j < p[i].n; j++, at += DD_PACK_ENTRY)
			get_entry(&p[i].e[j], data + at);
		end = (uint64_t)p[i].e[p[i].n - 1].off + p[i].e[p[i].n - 1].len;
		if (end > DD_PACK_MAX || check_tiling(p[i].e, p[i].n, end) < 0)
			goto bad;
	}
	if (at != len)
		goto bad;
	*out = p;
	*np = n;
	return 0;
bad:
	dd_index_packs_free(p, n);
	return dd_error("damaged (index entry of pack %zu is malformed)", i);
}

void
dd_index_packs_free(struct dd_index_pack *p, size_t np)
{
	for (size_t i = 0; p && i < np; i++)
		free(p[i].e);
	free(p);
}
