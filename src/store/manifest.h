/*
 * store/manifest.h: snapshot manifests, encoded deterministically
 * (docs/FORMAT.md §6).
 *
 * A manifest is a content part (format version, the streams sorted by name
 * with their attributes, size, checksum and chunk list), whose keyed hash is
 * the snapshot id, followed by a metadata part (profile, created, host ...)
 * that travels with it but is not part of the id. The parser is strict: it
 * reads hostile bytes and accepts exactly what the encoder produces.
 */
#ifndef DD_STORE_MANIFEST_H
#define DD_STORE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define DD_MANIFEST_VERSION 1
#define DD_MANIFEST_MAX (256u << 20)  /* largest manifest plaintext accepted */
#define DD_NAME_MAX 4096
#define DD_ATTR_KEY_MAX 255
#define DD_ATTR_VALUE_MAX 65535

struct dd_kv {
	char *key;
	char *value;
};

struct dd_chunk_ref {
	uint8_t id[32];
	uint32_t len;
};

struct dd_stream_info {
	char *name;
	struct dd_kv *attrs; /* sorted by key, unique */
	size_t nattrs;
	uint64_t size;
	uint8_t checksum[32];
	struct dd_chunk_ref *chunks;
	size_t nchunks;
};

struct dd_manifest {
	struct dd_stream_info *streams; /* sorted by name, unique */
	size_t nstreams;
	struct dd_kv *meta;             /* sorted by key, unique */
	size_t nmeta;
};

/*
 * One stream record alone (the per-stream part of §6), as a listing's
 * entries are stored (§6.1). Encode: appended to `out`; the attributes must
 * be sorted. Parse: the record at the start of data[0..len), where `more`
 * bytes of the input follow those at hand (counts are checked against all
 * of them), with a listing's limits (at most DD_LISTING_MAX_ATTRS
 * attributes and DD_LISTING_MAX_CHUNKS chunks). Returns 0 (*used = its
 * length), DD_RECORD_MORE when the record runs past `len` but not past the
 * input (*used = how many bytes from `data` it needs at least; no error, s
 * empty), -1 when damaged (error set, s empty).
 */
#define DD_LISTING_MAX_CHUNKS (1u << 24) /* 2^24 chunks of 512 KiB: 8 TiB, more than any file */
#define DD_LISTING_MAX_ATTRS 256
enum { DD_RECORD_MORE = 1 };
int dd_stream_record_encode(struct dd_buf *out, const struct dd_stream_info *s);
int dd_stream_record_parse(struct dd_stream_info *s, size_t *used, const void *data, size_t len, uint64_t more);

/* Sort streams, attributes and metadata (the encoder requires sorted input). */
void dd_manifest_sort(struct dd_manifest *m);
/* Encode; *content_len = length of the content part (the bytes hashed for the id). */
int dd_manifest_encode(struct dd_buf *out, size_t *content_len, const struct dd_manifest *m);
int dd_manifest_parse(struct dd_manifest **out, size_t *content_len, const void *data, size_t len);
void dd_manifest_free(struct dd_manifest *m);
void dd_stream_info_clear(struct dd_stream_info *si);
/* A deep copy of `src` into `dst` (whose contents are not freed first). */
void dd_stream_info_copy(struct dd_stream_info *dst, const struct dd_stream_info *src);

/* Set key=value in a sorted-on-encode kv list (replacing an existing key). */
void dd_kv_set(struct dd_kv **kv, size_t *n, const char *key, const char *value);
const char *dd_kv_get(const struct dd_kv *kv, size_t n, const char *key);
void dd_kv_free(struct dd_kv *kv, size_t n);

#endif
