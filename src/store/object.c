/*
 * store/object.c: seal and open one object; see object.h and
 * docs/FORMAT.md §4.
 *
 * Sealing compresses straight into the output buffer and encrypts in place
 * (libsodium allows it), so a chunk costs one output allocation. zstd's
 * output is kept only when it saves at least 1/32 of the input; otherwise
 * the body is stored raw (media, already-compressed data).
 *
 * A delta object (FORMAT.md §4.3) is one zstd frame made with its base's
 * plaintext as prefix (ZSTD_CCtx_refPrefix, the --patch-from technique);
 * its inner part names the base (id and length) before the frame, so the
 * base is authenticated with the object and known from the object alone.
 */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_compressSequences (zstd >= 1.5.0, exported by the shared library) */
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

/* The length of the inner header of an object of `type`. */
static size_t
inner_header(int type)
{
	return type == DD_OBJ_DELTA ? DD_OBJECT_INNER_DELTA : DD_OBJECT_INNER;
}

/*
 * zstd of plain with the base as prefix, into dst: the frame's size, or 0
 * when zstd failed. At the store's level (a store without compression
 * still gets its deltas at level 1: a delta is a zstd frame).
 */
static size_t
compress_delta(ZSTD_CCtx *zc, void *dst, size_t cap, const void *bplain, size_t blen, const void *plain,
	       size_t len, int level)
{
	unsigned wlog = 10; /* ZSTD_WINDOWLOG_MIN */
	size_t n;

	while (wlog < 27 && ((size_t)1 << wlog) < blen + len)
		wlog++;
	ZSTD_CCtx_reset(zc, ZSTD_reset_session_and_parameters);
	if (ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_compressionLevel, level == DD_ZLEVEL_NONE ? 1 : level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_windowLog, (int)wlog)) ||
	    ZSTD_isError(ZSTD_CCtx_refPrefix(zc, bplain, blen)))
		n = 0;
	else
		n = ZSTD_compress2(zc, dst, cap, plain, len);
	ZSTD_CCtx_reset(zc, ZSTD_reset_session_and_parameters);
	return ZSTD_isError(n) ? 0 : n;
}

/*
 * The delta frame from the plan (object.h): each piece copied from inside
 * the base is a match into it (offset from this byte back into base ||
 * plain), the rest literals; zstd only entropy-codes them, with no match
 * search and no index of the base (the prefix is not loaded: sequences name
 * their offsets themselves). ZSTD_compressSequences trusts its sequences, so
 * they are built within bounds here, and the frame is kept only when it
 * decompresses, with the base as prefix as every reader does, to `plain`
 * byte for byte. Its size, or 0 (use compress_delta).
 */
#if ZSTD_VERSION_NUMBER >= 10500
static size_t
compress_planned(ZSTD_CCtx *zc, void *dst, size_t cap, const uint8_t *bplain, size_t blen, const uint8_t *plain,
		 size_t len, int level, unsigned wlog, const struct dd_delta_plan *pl)
{
	ZSTD_Sequence *seq = malloc((2 * pl->n + 1) * sizeof(*seq)); /* at most two matches a piece */
	size_t nseq = 0, lit = 0, pos = 0, n = 0, matched = 0;
	uint8_t *back = NULL;

	if (!seq)
		return 0;
	for (size_t i = 0; i < pl->n; i++) {
		const struct dd_delta_piece *q = &pl->p[i];
		uint64_t a = q->prev, b = q->prev + q->len, lo = pl->base_off, hi = pl->base_off + blen;
		if (q->at != pos || q->len > len - pos)
			goto out; /* the pieces do not tile the chunk */
		if (q->prev == DD_PIECE_NEW && q->old_end > q->old && q->old >= lo && q->old_end <= hi) {
			/* new bytes replacing old ones in the base: their common start and end are matches */
			const uint8_t *np = plain + pos, *op = bplain + (q->old - lo);
			size_t nl = q->len, ol = (size_t)(q->old_end - q->old), cp = 0, cs = 0;
			while (cp < nl && cp < ol && np[cp] == op[cp])
				cp++;
			while (cs < nl - cp && cs < ol - cp && np[nl - 1 - cs] == op[ol - 1 - cs])
				cs++;
			if (cp >= 8) {
				seq[nseq++] = (ZSTD_Sequence){ .offset = (unsigned)(blen + pos - (q->old - lo)),
							       .litLength = (unsigned)lit, .matchLength = (unsigned)cp };
				matched += cp;
				lit = 0;
			} else {
				lit += cp;
			}
			lit += nl - cp - cs;
			if (cs >= 8) {
				size_t at = pos + nl - cs, from = (size_t)(q->old_end - lo) - cs;
				seq[nseq++] = (ZSTD_Sequence){ .offset = (unsigned)(blen + at - from),
							       .litLength = (unsigned)lit, .matchLength = (unsigned)cs };
				matched += cs;
				lit = 0;
			} else {
				lit += cs;
			}
			pos += nl;
			continue;
		}
		if (q->prev == DD_PIECE_NEW || b <= lo || a >= hi || b - a < 8) {
			lit += q->len; /* new bytes, or copied from outside the base */
			pos += q->len;
			continue;
		}
		if (a < lo)
			lit += (size_t)(lo - a), pos += (size_t)(lo - a), a = lo;
		size_t ml = (size_t)((b < hi ? b : hi) - a), bpos = (size_t)(a - lo);
		if (ml >= 3 && memcmp(plain + pos, bplain + bpos, ml) == 0) {
			seq[nseq].offset = (unsigned)(blen + pos - bpos);
			seq[nseq].litLength = (unsigned)lit;
			seq[nseq].matchLength = (unsigned)ml;
			seq[nseq].rep = 0;
			nseq++;
			matched += ml;
			lit = 0;
		} else {
			lit += ml;
		}
		pos += ml;
		lit += (size_t)(b - a) - ml; /* the part after the base */
		pos += (size_t)(b - a) - ml;
	}
	/*
	 * Literals are only entropy-coded here; the match search also finds
	 * repeats among them (rows read by a range, bytes from beyond the
	 * base): measured at scale 10, ten clustered ranges per table added
	 * 0.23 MiB from plans against 0.14 MiB from the search. So a plan is
	 * kept for chunks that are their base but for a few bytes.
	 */
	if (pos != len || (len - matched) * 32 > len)
		goto out;
	ZSTD_CCtx_reset(zc, ZSTD_reset_session_and_parameters);
	if (ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_windowLog, (int)wlog)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_minMatch, 3)))
		goto out;
	n = ZSTD_compressSequences(zc, dst, cap, seq, nseq, plain, len);
	ZSTD_CCtx_reset(zc, ZSTD_reset_session_and_parameters);
	if (ZSTD_isError(n) || !(back = malloc(len ? len : 1))) {
		n = 0;
		goto out;
	}
	/* as a reader opens it (open_obj): the base as prefix */
	ZSTD_DCtx_reset(pl->zd, ZSTD_reset_session_and_parameters);
	size_t d = ZSTD_DCtx_refPrefix(pl->zd, bplain, blen);
	if (!ZSTD_isError(d))
		d = ZSTD_decompressDCtx(pl->zd, back, len, dst, n);
	ZSTD_DCtx_reset(pl->zd, ZSTD_reset_session_and_parameters);
	if (ZSTD_isError(d) || d != len || memcmp(back, plain, len) != 0)
		n = 0;
out:
	free(back);
	free(seq);
	return n;
}
#else
static size_t
compress_planned(ZSTD_CCtx *zc, void *dst, size_t cap, const uint8_t *bplain, size_t blen, const uint8_t *plain,
		 size_t len, int level, unsigned wlog, const struct dd_delta_plan *pl)
{
	(void)zc, (void)dst, (void)cap, (void)bplain, (void)blen, (void)plain, (void)len, (void)level, (void)wlog, (void)pl;
	return 0; /* zstd before 1.5.0: no ZSTD_compressSequences */
}
#endif

static int
seal(struct dd_buf *out, const struct dd_keys *k, int type, const uint8_t id[32], const uint8_t *bid,
     const void *bplain, size_t blen, const void *plain, size_t len, ZSTD_CCtx *zc, int level,
     const struct dd_delta_plan *plan)
{
	size_t bound = ZSTD_compressBound(len), body = len, ih = inner_header(type);
	uint8_t ad[34], *p, *inner;
	unsigned long long clen;
	ZSTD_CCtx *own = NULL;
	int comp = DD_COMP_NONE;

	if (type == DD_OBJ_DELTA && (blen == 0 || blen > UINT32_MAX))
		return dd_error("BUG: a delta against a base of %zu bytes", blen);
	dd_buf_clear(out);
	dd_buf_grow(out, DD_OBJECT_HEADER + ih + (bound > len ? bound : len) + DD_OBJECT_TAG);
	p = (uint8_t *)out->ptr;
	memcpy(p, DD_OBJECT_MAGIC, 4);
	p[4] = DD_OBJECT_VERSION;
	p[5] = (uint8_t)type;
	randombytes_buf(p + 6, 24);
	inner = p + DD_OBJECT_HEADER;
	if (type == DD_OBJ_DELTA) {
		if (!zc)
			zc = own = ZSTD_createCCtx();
		body = 0;
		if (zc && plan && plan->zd && plan->n) {
			unsigned wlog = 10; /* ZSTD_WINDOWLOG_MIN; as compress_delta's */
			while (wlog < 27 && ((size_t)1 << wlog) < blen + len)
				wlog++;
			body = compress_planned(zc, inner + ih, bound, bplain, blen, plain, len,
						level == DD_ZLEVEL_NONE ? 1 : level, wlog, plan);
		}
		if (!zc || (!body && !(body = compress_delta(zc, inner + ih, bound, bplain, blen, plain, len, level)))) {
			ZSTD_freeCCtx(own);
			return dd_error("zstd could not make a delta");
		}
		comp = DD_COMP_ZSTD;
		memcpy(inner + DD_OBJECT_INNER, bid, 32);
		dd_put_le32(inner + DD_OBJECT_INNER + 32, (uint32_t)blen);
	} else if (len >= 64 && level != DD_ZLEVEL_NONE) {
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
	crypto_aead_xchacha20poly1305_ietf_encrypt(inner, &clen, inner, ih + body, ad, sizeof(ad), NULL, p + 6,
						   k->object);
	out->len = DD_OBJECT_HEADER + (size_t)clen;
	out->ptr[out->len] = '\0';
	ZSTD_freeCCtx(own);
	return 0;
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
	if (type == DD_OBJ_DELTA)
		return dd_error("BUG: a delta object sealed without its base");
	return seal(out, k, type, id, NULL, NULL, 0, plain, len, zc, level, NULL);
}

int
dd_object_seal_delta(struct dd_buf *out, const struct dd_keys *k, const uint8_t id[32], const uint8_t bid[32],
		     const void *bplain, size_t blen, const void *plain, size_t len, ZSTD_CCtx *zc)
{
	return dd_object_seal_delta_level(out, k, id, bid, bplain, blen, plain, len, zc, DD_ZSTD_LEVEL);
}

int
dd_object_seal_delta_level(struct dd_buf *out, const struct dd_keys *k, const uint8_t id[32], const uint8_t bid[32],
			   const void *bplain, size_t blen, const void *plain, size_t len, ZSTD_CCtx *zc, int level)
{
	return seal(out, k, DD_OBJ_DELTA, id, bid, bplain, blen, plain, len, zc, level, NULL);
}

int
dd_object_seal_delta_plan(struct dd_buf *out, const struct dd_keys *k, const uint8_t id[32], const uint8_t bid[32],
			  const void *bplain, size_t blen, const void *plain, size_t len, ZSTD_CCtx *zc, int level,
			  const struct dd_delta_plan *plan)
{
	return seal(out, k, DD_OBJ_DELTA, id, bid, bplain, blen, plain, len, zc, level, plan);
}

int
dd_object_peek_type(const void *obj, size_t len)
{
	const uint8_t *o = obj;

	if (len < DD_OBJECT_HEADER || memcmp(o, DD_OBJECT_MAGIC, 4))
		return 0;
	return o[5];
}

/*
 * The common part of open and check: header, size bound, decryption of the
 * inner part into `inner` (len - DD_OBJECT_HEADER bytes), and the length
 * field against max_plain. *plen is the plaintext length, *body the
 * bytes after the inner header (inner_header(type)); a delta's must be
 * zstd and name a base (*d, when not NULL: base id and length).
 */
static int
decrypt_inner(uint8_t *inner, const struct dd_keys *k, int type, const uint8_t id[32], const uint8_t *o,
	      size_t len, size_t max_plain, uint64_t *plen, size_t *body, struct dd_delta_ref *d)
{
	uint8_t ad[34];
	unsigned long long ilen;
	size_t ih = inner_header(type);

	if (len < 6)
		return dd_error("damaged (truncated to %zu bytes)", len);
	if (memcmp(o, DD_OBJECT_MAGIC, 4))
		return dd_error("damaged (not an object)");
	if (o[4] != DD_OBJECT_VERSION)
		return dd_error("object format version %u is not supported by this git-dnadata (upgrade it)", o[4]);
	if (o[5] != type)
		return dd_error("damaged (object type %u where %d was expected)", o[5], type);
	if (len < DD_OBJECT_HEADER + ih + DD_OBJECT_TAG)
		return dd_error("damaged (truncated to %zu bytes)", len);
	if (len - DD_OBJECT_HEADER - DD_OBJECT_TAG - ih > max_plain + max_plain / 16 + 1024)
		return dd_error("damaged (object of %zu bytes is larger than allowed)", len);
	make_ad(ad, type, id);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(inner, &ilen, NULL, o + DD_OBJECT_HEADER,
						       len - DD_OBJECT_HEADER, ad, sizeof(ad), o + 6,
						       k->object) != 0)
		return dd_error("damaged (authentication failed: modified, truncated or stored under the wrong name)");
	*plen = dd_get_le64(inner + 1);
	*body = (size_t)ilen - ih;
	if (*plen > max_plain)
		return dd_error("damaged (plaintext of %llu bytes is larger than allowed)", (unsigned long long)*plen);
	if (type != DD_OBJ_DELTA)
		return 0;
	if (inner[0] != DD_COMP_ZSTD)
		return dd_error("damaged (a delta object that is not compressed)");
	if (d) {
		memset(d, 0, sizeof(*d));
		memcpy(d->base, inner + DD_OBJECT_INNER, 32);
		d->base_len = dd_get_le32(inner + DD_OBJECT_INNER + 32);
	}
	if (dd_get_le32(inner + DD_OBJECT_INNER + 32) == 0 || !memcmp(inner + DD_OBJECT_INNER, id, 32))
		return dd_error("damaged (a delta object naming an impossible base)");
	return 0;
}

int
dd_object_check(const struct dd_keys *k, int type, const uint8_t id[32], const void *obj, size_t len,
		struct dd_buf *scratch)
{
	return dd_object_delta_base(k, type, id, obj, len, scratch, NULL);
}

int
dd_object_delta_base(const struct dd_keys *k, int type, const uint8_t id[32], const void *obj, size_t len,
		     struct dd_buf *scratch, struct dd_delta_ref *d)
{
	uint64_t plen;
	size_t body, ih = inner_header(type);
	uint8_t *inner;

	dd_buf_clear(scratch);
	dd_buf_grow(scratch, len > DD_OBJECT_HEADER ? len - DD_OBJECT_HEADER : 1);
	inner = (uint8_t *)scratch->ptr;
	if (decrypt_inner(inner, k, type, id, obj, len, DD_OBJECT_PLAIN_MAX, &plen, &body, d) < 0)
		return -1;
	scratch->len = ih + body;
	switch (inner[0]) {
	case DD_COMP_NONE:
		if (body != plen)
			return dd_error("damaged (length mismatch)");
		return 0;
	case DD_COMP_ZSTD: {
		/* frame headers only, no decompression; frames need not declare their size (FORMAT.md §4) */
		const uint8_t *z = inner + ih;
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

/* dd_object_trust_ids(): data and delta objects opened on this thread skip recomputing their id. */
static _Thread_local int trust_ids;

int
dd_object_trust_ids(int on)
{
	int was = trust_ids;

	trust_ids = on;
	return was;
}

static int
open_obj(struct dd_buf *out, const struct dd_keys *k, int type, const uint8_t id[32], const uint8_t *bid,
	 const void *bplain, size_t blen, const void *obj, size_t len, size_t max_plain, ZSTD_DCtx *zd)
{
	uint8_t *inner = NULL, check[32];
	uint64_t plen;
	size_t body, ih = inner_header(type);
	struct dd_delta_ref d;
	ZSTD_DCtx *own = NULL;
	int rc = -1;

	dd_buf_clear(out);
	inner = malloc(len > DD_OBJECT_HEADER ? len - DD_OBJECT_HEADER : 1);
	if (!inner)
		return dd_error("out of memory");
	if (decrypt_inner(inner, k, type, id, obj, len, max_plain, &plen, &body, &d) < 0)
		goto out;
	if (type == DD_OBJ_DELTA && (memcmp(d.base, bid, 32) || d.base_len != blen)) {
		dd_error("damaged (a delta object made against another base)");
		goto out;
	}
	dd_buf_grow(out, (size_t)plen);
	switch (inner[0]) {
	case DD_COMP_NONE:
		if (body != plen) {
			dd_error("damaged (length mismatch)");
			goto out;
		}
		memcpy(out->ptr, inner + ih, body);
		break;
	case DD_COMP_ZSTD: {
		if (!zd)
			zd = own = ZSTD_createDCtx();
		if (!zd) {
			dd_error("out of memory (zstd)");
			goto out;
		}
		size_t n = 0;
		if (type == DD_OBJ_DELTA) {
			ZSTD_DCtx_reset(zd, ZSTD_reset_session_and_parameters);
			n = ZSTD_DCtx_refPrefix(zd, bplain, blen);
		}
		if (!ZSTD_isError(n))
			n = ZSTD_decompressDCtx(zd, out->ptr, (size_t)plen, inner + ih, body);
		if (type == DD_OBJ_DELTA)
			ZSTD_DCtx_reset(zd, ZSTD_reset_session_and_parameters);
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
	if (type == DD_OBJ_INDEX || ((type == DD_OBJ_DATA || type == DD_OBJ_DELTA) && !trust_ids)) {
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

int
dd_object_open(struct dd_buf *out, const struct dd_keys *k, int type, const uint8_t id[32],
	       const void *obj, size_t len, size_t max_plain, ZSTD_DCtx *zd)
{
	return open_obj(out, k, type, id, NULL, NULL, 0, obj, len, max_plain, zd);
}

int
dd_object_open_delta(struct dd_buf *out, const struct dd_keys *k, const uint8_t id[32], const uint8_t bid[32],
		     const void *bplain, size_t blen, const void *obj, size_t len, size_t max_plain,
		     ZSTD_DCtx *zd)
{
	return open_obj(out, k, DD_OBJ_DELTA, id, bid, bplain, blen, obj, len, max_plain, zd);
}
