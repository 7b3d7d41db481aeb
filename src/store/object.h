/*
 * store/object.h: sealing and opening single objects (docs/FORMAT.md §4).
 *
 *   "DDOB" | version u8 | type u8 | nonce[24] | XChaCha20-Poly1305(
 *       compression u8 | plaintext length u64le | body ) incl. 16-byte tag
 *
 * with associated data version | type | id, so an object cannot be replayed
 * under another id or type. A delta object (type 4, §4.3) has the inner
 *
 *       compression u8 (1) | plaintext length u64le | base id[32] |
 *       base length u32le | one zstd frame made with the base as prefix
 *
 * so its base is authenticated with it, and it opens against that base
 * only. The opener is strict and treats its input as hostile.
 */
#ifndef DD_STORE_OBJECT_H
#define DD_STORE_OBJECT_H

#include <stddef.h>
#include <stdint.h>
#include <zstd.h>

#include "store/crypto.h"
#include "util/buf.h"

#define DD_OBJECT_VERSION 1
#define DD_OBJECT_MAGIC "DDOB"
#define DD_OBJECT_HEADER 30 /* magic 4 + version 1 + type 1 + nonce 24 */
#define DD_OBJECT_INNER 9   /* compression 1 + length 8 */
#define DD_OBJECT_INNER_DELTA 45 /* the same + base id 32 + base length 4 (DD_OBJ_DELTA) */
#define DD_OBJECT_TAG 16
#define DD_ZSTD_LEVEL 3   /* the level of stores whose config names none (format 1), and of tests */
#define DD_ZLEVEL_NONE 0  /* a level that means: store every body raw */
#define DD_OBJECT_PLAIN_MAX (256u << 20) /* largest plaintext any reader accepts (DD_MANIFEST_MAX) */

enum dd_object_type {
	DD_OBJ_DATA = 1,     /* a chunk of a stream */
	DD_OBJ_MANIFEST = 2, /* a snapshot manifest */
	DD_OBJ_INDEX = 3,    /* an index file: where objects are in packs (FORMAT.md §4.2) */
	DD_OBJ_DELTA = 4,    /* a chunk stored as a delta against another chunk, its base (FORMAT.md §4.3) */
	DD_OBJ_LOCK = 5,     /* a store lock file: locks/<random id> (FORMAT.md §3.6) */
};

/*
 * Delta chains (FORMAT.md §4.3): a reader refuses to follow more than
 * DD_DELTA_DEPTH_MAX deltas to reach a full object (hostile index files
 * could make cycles); a writer stores a full object rather than a delta
 * whose chain would be longer than DD_DELTA_DEPTH_WRITE.
 */
#define DD_DELTA_DEPTH_MAX 16
#define DD_DELTA_DEPTH_WRITE 8

/* A delta object's base: its id, plaintext length, and how many deltas its own chain has (0: full). */
struct dd_delta_ref {
	uint8_t base[32];
	uint32_t base_len;
	uint8_t depth; /* of the delta itself: the base's depth + 1, 1..DD_DELTA_DEPTH_MAX */
};

enum { DD_COMP_NONE = 0, DD_COMP_ZSTD = 1 };

/* Seal `plain` into `out` (replacing its contents). zc may be NULL (a context is made). */
int dd_object_seal(struct dd_buf *out, const struct dd_keys *k, int type, const uint8_t id[32],
		   const void *plain, size_t len, ZSTD_CCtx *zc);
/* The same at zstd level `level` (the store's, dd_store_config.zlevel); DD_ZLEVEL_NONE: raw. */
int dd_object_seal_level(struct dd_buf *out, const struct dd_keys *k, int type, const uint8_t id[32],
			 const void *plain, size_t len, ZSTD_CCtx *zc, int level);
/*
 * Seal `plain` as a delta object (type DD_OBJ_DELTA) against the base
 * plaintext `bplain` (bid its id): zstd with `bplain` as prefix, the base
 * id and length in the inner part. Always compressed (the caller compares
 * sizes).
 */
int dd_object_seal_delta(struct dd_buf *out, const struct dd_keys *k, const uint8_t id[32], const uint8_t bid[32],
			 const void *bplain, size_t blen, const void *plain, size_t len, ZSTD_CCtx *zc);
/* The same at the store's level (dd_store_config.zlevel; DD_ZLEVEL_NONE: level 1, a delta is zstd). */
int dd_object_seal_delta_level(struct dd_buf *out, const struct dd_keys *k, const uint8_t id[32], const uint8_t bid[32],
			       const void *bplain, size_t blen, const void *plain, size_t len, ZSTD_CCtx *zc, int level);
/*
 * Where the bytes of a chunk came from, when the writer knows it (splice.c
 * feeds previous bytes with their offsets): piece i is plain[at, at + len),
 * copied from the previous stream at `prev` (DD_PIECE_NEW: new bytes).
 * With the base's offset in the previous stream, a delta needs no match
 * search: each copied piece inside the base is a zstd match into it.
 */
#define DD_PIECE_NEW UINT64_MAX
struct dd_delta_piece {
	uint64_t prev;
	uint32_t at, len;
	/*
	 * New bytes that replace [old, old_end) of the previous version (0, 0:
	 * none known): their common start and end with those are matches too.
	 */
	uint64_t old, old_end;
};
struct dd_delta_plan {
	const struct dd_delta_piece *p;
	size_t n;
	uint64_t base_off; /* the base's offset in the previous stream */
	ZSTD_DCtx *zd;     /* to check the frame made (decompressed against the base, compared), or NULL: no plan */
};
/*
 * dd_object_seal_delta_level with `plan` (may be NULL): the frame is made
 * from the plan's matches when it decodes to `plain` exactly, else as
 * dd_object_seal_delta_level makes it. The same object format either way.
 */
int dd_object_seal_delta_plan(struct dd_buf *out, const struct dd_keys *k, const uint8_t id[32], const uint8_t bid[32],
			      const void *bplain, size_t blen, const void *plain, size_t len, ZSTD_CCtx *zc, int level,
			      const struct dd_delta_plan *plan);
/*
 * Open delta object `obj` (id `id`) against base `bid` whose plaintext is
 * `bplain`; as dd_object_open (length bound, id recomputed). A delta made
 * against another base (id or length) is refused as damaged.
 */
int dd_object_open_delta(struct dd_buf *out, const struct dd_keys *k, const uint8_t id[32], const uint8_t bid[32],
			 const void *bplain, size_t blen, const void *obj, size_t len, size_t max_plain,
			 ZSTD_DCtx *zd);
/* The type byte of object `obj` (0 when too short or not an object): no authentication. */
int dd_object_peek_type(const void *obj, size_t len);
/*
 * Authenticate and decompress `obj` into `out` (replacing its contents).
 * Plaintexts longer than max_plain are refused. For DD_OBJ_DATA the keyed
 * id of the plaintext is recomputed and compared with `id` (DD_OBJ_INDEX too). Errors read
 * "damaged (...)" or "truncated"; zd may be NULL. Index objects have their
 * id recomputed too.
 */
int dd_object_open(struct dd_buf *out, const struct dd_keys *k, int type, const uint8_t id[32],
		   const void *obj, size_t len, size_t max_plain, ZSTD_DCtx *zd);
/*
 * While `on`, data and delta objects opened on this thread (dd_object_open,
 * dd_object_open_delta) are authenticated but their keyed id is not
 * recomputed: the AEAD's associated data binds the id, so only a holder of
 * the key could have sealed other contents under it. For copies this
 * machine's own cache holds, read as a snapshot's previous version
 * (docs/FORMAT.md §8); restore and verify always recompute. Returns the
 * previous setting, to put back.
 */
int dd_object_trust_ids(int on);
/*
 * Authenticate `obj` without decompressing it or recomputing its id: magic,
 * version, type, the AEAD tag (its associated data binds version, type and
 * id, so an object stored under another id or type fails) and the inner
 * length field (at most DD_OBJECT_PLAIN_MAX, equal to the raw body's length
 * or to the sizes the zstd frames declare). The keyed id is recomputed by
 * dd_object_open on every read that uses the plaintext. `scratch` receives
 * the decrypted inner part (reused between calls; dd_object_check_plain_len
 * reads its length field after a success). Errors as dd_object_open.
 */
int dd_object_check(const struct dd_keys *k, int type, const uint8_t id[32], const void *obj, size_t len,
		    struct dd_buf *scratch);
/* dd_object_check, and for a delta object (type DD_OBJ_DELTA) the base it names into *d (depth 0) when not NULL. */
int dd_object_delta_base(const struct dd_keys *k, int type, const uint8_t id[32], const void *obj, size_t len,
			 struct dd_buf *scratch, struct dd_delta_ref *d);
/* The plaintext length of the object dd_object_check just accepted into `scratch`. */
uint64_t dd_object_check_plain_len(const struct dd_buf *scratch);

#endif
