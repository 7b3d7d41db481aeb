/*
 * store/pack.h: pack files and index files (docs/FORMAT.md §4.1-§4.2).
 *
 * A pack is a run of whole object files (§4, byte for byte, in a random
 * order) followed by an encrypted header listing them and the header's
 * length:
 *
 *   object ... object | nonce[24] | XChaCha20-Poly1305("DDPH" | version u8 |
 *       count u32 | count x (type u8 | id[32] | offset u32 | length u32)) | u32 length
 *
 * named by the SHA-256 of all its bytes. An index file is an object of
 * type 3 whose plaintext lists packs and, per pack, the same entries, so
 * a reader finds any object with one lookup and one ranged read.
 *
 * The parsers here treat their input as hostile: every count and offset
 * is checked against the bytes actually present before anything is
 * allocated, and the entries of a pack must tile its object region
 * exactly (one encoding per pack).
 *
 * The in-memory map (struct dd_midx) built from index files answers "where
 * is object X" for the store: id -> (pack, offset, length), plus which
 * index file named the pack and whether the store is known to hold it.
 */
#ifndef DD_STORE_PACK_H
#define DD_STORE_PACK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "store/crypto.h"
#include "store/object.h"
#include "util/buf.h"

#define DD_PACK_TARGET (16u << 20)     /* a pack is finished once it holds this many bytes */
#define DD_PACK_MAX_OBJECTS 65536u      /* per pack */
#define DD_PACK_INDEX_EVERY 64          /* a big snapshot writes an index file every this many packs (~1 GiB) */
#define DD_PACK_MAX ((uint64_t)1 << 30) /* readers refuse larger packs */
#define DD_PACK_VERSION 1       /* packs without delta objects (what every reader accepts) */
#define DD_PACK_VERSION_DELTA 2 /* packs holding delta objects (FORMAT.md §4.3): entries of type 4 are longer */
#define DD_PACK_MAGIC "DDPH"
#define DD_PACK_ENTRY 41 /* type 1 + id 32 + offset 4 + length 4 */
#define DD_PACK_ENTRY_DELTA 78 /* the same + base id 32 + base length 4 + depth 1 (type 4) */
#define DD_PACK_AD "dnadata pack header"
#define DD_INDEX_MAGIC "DDIX"
#define DD_INDEX_VERSION 1       /* as DD_PACK_VERSION */
#define DD_INDEX_VERSION_DELTA 2 /* as DD_PACK_VERSION_DELTA */
#define DD_INDEX_MAX (64u << 20) /* largest index plaintext a reader accepts (~1.5 million objects) */

struct dd_pack_entry {
	uint8_t type; /* 1 = data, 4 = delta (DD_OBJ_DELTA, then `d` says against what) */
	uint8_t id[32];
	uint32_t off, len;
	struct dd_delta_ref d;
};

/* The name of a pack: SHA-256 of its bytes. */
void dd_pack_hash(uint8_t out[32], const void *data, size_t len);
/* The same of the file at `path`, read in 1 MiB pieces: 0, -1 (cannot read it). */
int dd_pack_hash_file(uint8_t out[32], const char *path);
/*
 * Append the encrypted header of the `n` entries (in pack order: offsets
 * increasing from 0, each object right after the previous one) and its
 * length to `out`, which holds the objects already.
 */
int dd_pack_seal_header(struct dd_buf *out, const struct dd_keys *k, const struct dd_pack_entry *e, size_t n);
/*
 * Check and decode the header of the whole pack `data`: *e (caller frees)
 * gets the entries in pack order. Errors read "damaged (...)".
 */
int dd_pack_open_header(struct dd_pack_entry **e, size_t *n, const struct dd_keys *k, const uint8_t *data,
			size_t len);

/* One pack of an index file. */
struct dd_index_pack {
	uint8_t name[32];
	struct dd_pack_entry *e;
	size_t n;
};
/* An index file's plaintext for `np` packs (appended to out). */
void dd_index_encode(struct dd_buf *out, const struct dd_index_pack *p, size_t np);
/* Decode an index plaintext: *p (free with dd_index_packs_free) gets its packs. */
int dd_index_decode(struct dd_index_pack **p, size_t *np, const uint8_t *data, size_t len);
void dd_index_packs_free(struct dd_index_pack *p, size_t np);

/* ---- the in-memory map (midx.c) ---- */

enum dd_midx_pack_state {
	DD_MIDX_PENDING = 0, /* being collected or written by this process: no file yet */
	DD_MIDX_READY = 1,   /* a pack file exists (cache, store or both) */
	DD_MIDX_FAILED = 2,  /* writing it failed: its objects count as absent */
};

struct dd_midx_pack {
	uint8_t name[32];
	uint32_t file;    /* index file naming it (DD_MIDX_NONE: not indexed yet) */
	uint8_t state;    /* enum dd_midx_pack_state */
	uint8_t in_store; /* the store holds it (its index file, or its own upload, confirmed) */
};

struct dd_midx_file {
	uint8_t id[32];
	uint8_t in_store; /* the store is known to hold this index file */
	uint8_t queued;   /* a snapshot found its objects and will push it at the next sync */
};

#define DD_MIDX_NONE UINT32_MAX

struct dd_midx_hit {
	uint32_t pack, off, len;
	uint8_t type;         /* of this place: DD_OBJ_DATA, or DD_OBJ_DELTA (then d says its base) */
	struct dd_delta_ref d;
};

/*
 * Thread-safe (one mutex). Objects map to the first pack naming them,
 * then to every other pack naming them too (a short chain, for readers
 * whose first pack is missing or damaged); memory is ~52 bytes per object
 * plus 16 per extra place.
 */
struct dd_midx_alt;
struct dd_midx {
	pthread_mutex_t mu;
	struct dd_midx_slot *slots;
	size_t cap, n;
	struct dd_midx_alt *alts;
	size_t nalts, capalts;
	struct dd_delta_ref *deltas; /* the bases of places that are delta objects */
	size_t ndeltas, capdeltas;
	struct dd_midx_pack *packs;
	size_t npacks, cappacks;
	struct dd_midx_file *files;
	size_t nfiles, capfiles;
};

void dd_midx_init(struct dd_midx *m);
void dd_midx_clear(struct dd_midx *m);
/* 1 found (*hit filled; pending and failed packs' objects are skipped unless `pending`), 0 not. */
int dd_midx_find(struct dd_midx *m, const uint8_t id[32], int pending, struct dd_midx_hit *hit);
/* Every usable place of `id`, the first one first (at most `max`): how many were filled. */
size_t dd_midx_find_all(struct dd_midx *m, const uint8_t id[32], int pending, struct dd_midx_hit *hits, size_t max);
#define DD_MIDX_MAX_PLACES 4 /* places a reader tries */
/*
 * Add object `id` to pack `pack` (`d`: its base when type is DD_OBJ_DELTA, else NULL): 1 added as its
 * first place, 0 some ready or pending pack has it (kept as another place).
 */
int dd_midx_add(struct dd_midx *m, const uint8_t id[32], uint8_t type, uint32_t pack, uint32_t off, uint32_t len,
		const struct dd_delta_ref *d);
/* The base of `id` when some usable place of it is a delta object: 1 (*d filled), 0 (every place full, or none). */
int dd_midx_delta_of(struct dd_midx *m, const uint8_t id[32], int pending, struct dd_delta_ref *d);
/* A new pack slot (state pending, no file); returns its number. */
uint32_t dd_midx_new_pack(struct dd_midx *m);
/* Index file `id`: its slot (made when new; *isnew says which). */
uint32_t dd_midx_file(struct dd_midx *m, const uint8_t id[32], int *isnew);
/* Find the index file `id`: its slot, or DD_MIDX_NONE. */
uint32_t dd_midx_find_file(struct dd_midx *m, const uint8_t id[32]);
/* Load a decoded index file into the map as file slot `file`; its packs are ready. */
void dd_midx_load(struct dd_midx *m, uint32_t file, const struct dd_index_pack *p, size_t np);
/* Copy of pack slot `i` / file slot `i` (under the lock). */
struct dd_midx_pack dd_midx_pack_get(struct dd_midx *m, uint32_t i);
struct dd_midx_file dd_midx_file_get(struct dd_midx *m, uint32_t i);
void dd_midx_pack_set(struct dd_midx *m, uint32_t i, const struct dd_midx_pack *p);
void dd_midx_file_set(struct dd_midx *m, uint32_t i, const struct dd_midx_file *f);
/*
 * For every pack slot, the end of the last object the map places in it
 * (offset + length; 0 for none): the bytes of objects a pack holds, its
 * header aside (caller frees *out, *n entries).
 */
void dd_midx_pack_extents(struct dd_midx *m, uint64_t **out, size_t *n);
/* The ready packs named by index file `file` (caller frees *out). */
void dd_midx_file_packs(struct dd_midx *m, uint32_t file, uint32_t **out, size_t *n);

#endif
