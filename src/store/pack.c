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

/* The header's associated data (version 1's, for both versions: the version inside says which). */
static void
header_ad(uint8_t ad[sizeof(DD_PACK_AD)])
{
	memcpy(ad, DD_PACK_AD, sizeof(DD_PACK_AD) - 1);
	ad[sizeof(DD_PACK_AD) - 1] = DD_PACK_VERSION;
}

static size_t
entry_size(const struct dd_pack_entry *e)
{
	return e->type == DD_OBJ_DELTA ? DD_PACK_ENTRY_DELTA : DD_PACK_ENTRY;
}

/* The format version of a pack header or index file listing e[0..n): 2 when it holds a delta object. */
static uint8_t
entries_version(const struct dd_pack_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (e[i].type == DD_OBJ_DELTA)
			return DD_PACK_VERSION_DELTA;
	return DD_PACK_VERSION;
}

/* Encode e at p: the bytes written. */
static size_t
put_entry(uint8_t *p, const struct dd_pack_entry *e)
{
	p[0] = e->type;
	memcpy(p + 1, e->id, 32);
	dd_put_le32(p + 33, e->off);
	dd_put_le32(p + 37, e->len);
	if (e->type != DD_OBJ_DELTA)
		return DD_PACK_ENTRY;
	memcpy(p + 41, e->d.base, 32);
	dd_put_le32(p + 73, e->d.base_len);
	p[77] = e->d.depth;
	return DD_PACK_ENTRY_DELTA;
}

/*
 * Decode one entry of a version `v` list from p (avail bytes): its size,
 * or 0 when the bytes end inside it. Types and fields are checked by
 * check_tiling.
 */
static size_t
get_entry(struct dd_pack_entry *e, const uint8_t *p, size_t avail, uint8_t v)
{
	if (avail < DD_PACK_ENTRY)
		return 0;
	memset(e, 0, sizeof(*e));
	e->type = p[0];
	memcpy(e->id, p + 1, 32);
	e->off = dd_get_le32(p + 33);
	e->len = dd_get_le32(p + 37);
	if (e->type != DD_OBJ_DELTA || v < DD_PACK_VERSION_DELTA)
		return DD_PACK_ENTRY;
	if (avail < DD_PACK_ENTRY_DELTA)
		return 0;
	memcpy(e->d.base, p + 41, 32);
	e->d.base_len = dd_get_le32(p + 73);
	e->d.depth = p[77];
	return DD_PACK_ENTRY_DELTA;
}

/* Is e a valid entry of a version `v` list: its type, and a delta's base (not itself, depth in bounds)? */
static int
check_entry(const struct dd_pack_entry *e, size_t i, uint8_t v)
{
	if (e->type == DD_OBJ_DATA)
		return 0;
	if (e->type != DD_OBJ_DELTA || v < DD_PACK_VERSION_DELTA)
		return dd_error("damaged (pack entry %zu has object type %u)", i, e->type);
	if (e->d.depth == 0 || e->d.depth > DD_DELTA_DEPTH_MAX || e->d.base_len == 0 ||
	    e->d.base_len > DD_OBJECT_PLAIN_MAX || !memcmp(e->d.base, e->id, 32))
		return dd_error("damaged (pack entry %zu names an impossible delta base)", i);
	return 0;
}

/* Entries of a version `v` list tile [0, end) exactly, in order, with known types. */
static int
check_tiling(const struct dd_pack_entry *e, size_t n, uint64_t end, uint8_t v)
{
	uint64_t at = 0;

	for (size_t i = 0; i < n; i++) {
		if (check_entry(&e[i], i, v) < 0)
			return -1;
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
	uint8_t v = entries_version(e, n);
	size_t plen = 9, at;
	uint8_t ad[sizeof(DD_PACK_AD)], *plain, *p;
	unsigned long long clen;

	if (n == 0 || n > DD_PACK_MAX_OBJECTS || check_tiling(e, n, out->len, v) < 0)
		return dd_error("internal error: a pack of %zu objects that do not tile it", n);
	for (size_t i = 0; i < n; i++)
		plen += entry_size(&e[i]);
	plain = dd_malloc(plen);
	memcpy(plain, DD_PACK_MAGIC, 4);
	plain[4] = v;
	dd_put_le32(plain + 5, (uint32_t)n);
	at = 9;
	for (size_t i = 0; i < n; i++)
		at += put_entry(plain + at, &e[i]);
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
	size_t plen = 0, count, hlen, at = 9, got;
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
	if (plen < 9 || memcmp(plain, DD_PACK_MAGIC, 4) ||
	    (plain[4] != DD_PACK_VERSION && plain[4] != DD_PACK_VERSION_DELTA)) {
		dd_error(plen >= 9 && !memcmp(plain, DD_PACK_MAGIC, 4)
				 ? "pack format version %u is not supported by this git-dnadata (upgrade it)"
				 : "damaged (not a pack header)",
			 plen >= 9 ? plain[4] : 0);
		goto out;
	}
	count = dd_get_le32(plain + 5);
	if (count == 0 || count > DD_PACK_MAX_OBJECTS || plen < 9 + count * DD_PACK_ENTRY) {
		dd_error("damaged (pack header of %zu bytes for %zu objects)", plen, count);
		goto out;
	}
	*e = dd_calloc(count, sizeof(**e));
	for (size_t i = 0; i < count; i++, at += got) {
		if (!(got = get_entry(&(*e)[i], plain + at, plen - at, plain[4]))) {
			dd_error("damaged (pack header of %zu bytes for %zu objects)", plen, count);
			goto out;
		}
	}
	if (at != plen) {
		dd_error("damaged (pack header of %zu bytes for %zu objects)", plen, count);
		goto out;
	}
	if (check_tiling(*e, count, len - 4 - hlen, plain[4]) < 0)
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
	uint8_t b[DD_PACK_ENTRY_DELTA], v = DD_INDEX_VERSION;

	for (size_t i = 0; i < np; i++)
		if (entries_version(p[i].e, p[i].n) == DD_PACK_VERSION_DELTA)
			v = DD_INDEX_VERSION_DELTA;
	dd_buf_put(out, DD_INDEX_MAGIC, 4);
	b[0] = v;
	dd_put_le32(b + 1, (uint32_t)np);
	dd_buf_put(out, b, 5);
	for (size_t i = 0; i < np; i++) {
		dd_buf_put(out, p[i].name, 32);
		dd_put_le32(b, (uint32_t)p[i].n);
		dd_buf_put(out, b, 4);
		for (size_t j = 0; j < p[i].n; j++)
			dd_buf_put(out, b, put_entry(b, &p[i].e[j]));
	}
}

int
dd_index_decode(struct dd_index_pack **out, size_t *np, const uint8_t *data, size_t len)
{
	struct dd_index_pack *p = NULL;
	size_t n, at = 9, i = 0, got;
	uint64_t end;
	uint8_t v;

	*out = NULL;
	*np = 0;
	if (len < 9 || memcmp(data, DD_INDEX_MAGIC, 4))
		return dd_error("damaged (not an index file)");
	v = data[4];
	if (v != DD_INDEX_VERSION && v != DD_INDEX_VERSION_DELTA)
		return dd_error("index format version %u is not supported by this git-dnadata (upgrade it)", v);
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
		for (size_t j = 0; j < p[i].n; j++, at += got)
			if (!(got = get_entry(&p[i].e[j], data + at, len - at, v)))
				goto bad;
		end = (uint64_t)p[i].e[p[i].n - 1].off + p[i].e[p[i].n - 1].len;
		if (end > DD_PACK_MAX || check_tiling(p[i].e, p[i].n, end, v) < 0)
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
