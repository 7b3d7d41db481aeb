/*
 * store/manifest.c: deterministic encoding and strict parsing of snapshot
 * manifests; see manifest.h and docs/FORMAT.md §6.
 *
 * Integers are little-endian; strings are u32 length + bytes (no NUL).
 * The parser checks every count against the bytes left before allocating,
 * requires strictly sorted names and keys (hence unique), chunk lengths in
 * [1, 64 MiB] adding up to the stream size, every chunk but the last at
 * least DD_CHUNK_MIN_LIMIT bytes (the smallest minimum any store's chunker
 * may use; so a stream has at most size / DD_CHUNK_MIN_LIMIT + 1 chunks,
 * checked before allocating), and no trailing bytes, so a given manifest
 * has exactly one encoding.
 */
#include "store/manifest.h"
#include "store/chunker.h"
#include "util/endian.h"
#include "util/err.h"

#include <stdlib.h>
#include <string.h>

static void
put_u32(struct dd_buf *b, uint32_t v)
{
	uint8_t p[4];

	dd_put_le32(p, v);
	dd_buf_put(b, p, 4);
}

static void
put_u64(struct dd_buf *b, uint64_t v)
{
	put_u32(b, (uint32_t)v);
	put_u32(b, (uint32_t)(v >> 32));
}

static void
put_str(struct dd_buf *b, const char *s)
{
	size_t n = strlen(s);
	put_u32(b, (uint32_t)n);
	dd_buf_put(b, s, n);
}

static int
kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dd_kv *)a)->key, ((const struct dd_kv *)b)->key);
}

static int
stream_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dd_stream_info *)a)->name, ((const struct dd_stream_info *)b)->name);
}

void
dd_manifest_sort(struct dd_manifest *m)
{
	if (m->nstreams > 1)
		qsort(m->streams, m->nstreams, sizeof(*m->streams), stream_cmp);
	for (size_t i = 0; i < m->nstreams; i++)
		if (m->streams[i].nattrs > 1)
			qsort(m->streams[i].attrs, m->streams[i].nattrs, sizeof(struct dd_kv), kv_cmp);
	if (m->nmeta > 1)
		qsort(m->meta, m->nmeta, sizeof(*m->meta), kv_cmp);
}

static int
check_kvs(const struct dd_kv *kv, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++) {
		size_t kl = strlen(kv[i].key), vl = strlen(kv[i].value);
		if (kl == 0 || kl > DD_ATTR_KEY_MAX || vl > DD_ATTR_VALUE_MAX)
			return dd_error("%s '%.40s': key or value too long or empty", what, kv[i].key);
		if (i && strcmp(kv[i - 1].key, kv[i].key) >= 0)
			return dd_error("%s '%s' given twice", what, kv[i].key);
	}
	return 0;
}

int
dd_stream_record_encode(struct dd_buf *out, const struct dd_stream_info *s)
{
	size_t nl = strlen(s->name);

	if (nl == 0 || nl > DD_NAME_MAX)
		return dd_error("stream name '%.40s' is empty or longer than %d bytes", s->name, DD_NAME_MAX);
	if (check_kvs(s->attrs, s->nattrs, "stream attribute") < 0)
		return -1;
	put_str(out, s->name);
	put_u32(out, (uint32_t)s->nattrs);
	for (size_t j = 0; j < s->nattrs; j++) {
		put_str(out, s->attrs[j].key);
		put_str(out, s->attrs[j].value);
	}
	put_u64(out, s->size);
	dd_buf_put(out, s->checksum, 32);
	put_u64(out, s->nchunks);
	for (size_t j = 0; j < s->nchunks; j++) {
		dd_buf_put(out, s->chunks[j].id, 32);
		put_u32(out, s->chunks[j].len);
	}
	return 0;
}

int
dd_manifest_encode(struct dd_buf *out, size_t *content_len, const struct dd_manifest *m)
{
	dd_buf_clear(out);
	dd_buf_put(out, "DDMC", 4);
	put_u32(out, DD_MANIFEST_VERSION);
	put_u32(out, (uint32_t)m->nstreams);
	for (size_t i = 0; i < m->nstreams; i++) {
		if (i && strcmp(m->streams[i - 1].name, m->streams[i].name) >= 0)
			return dd_error("stream '%s' written twice in one snapshot", m->streams[i].name);
		if (dd_stream_record_encode(out, &m->streams[i]) < 0)
			return -1;
	}
	*content_len = out->len;
	if (check_kvs(m->meta, m->nmeta, "snapshot metadata") < 0)
		return -1;
	dd_buf_put(out, "DDMM", 4);
	put_u32(out, (uint32_t)m->nmeta);
	for (size_t i = 0; i < m->nmeta; i++) {
		put_str(out, m->meta[i].key);
		put_str(out, m->meta[i].value);
	}
	if (out->len > DD_MANIFEST_MAX)
		return dd_error("snapshot manifest too large (%zu bytes)", out->len);
	return 0;
}

/* ---- parsing ---- */

/*
 * A reader over bytes at hand. A listing is parsed piece by piece: `more`
 * bytes of the input follow those at hand, so a field running past them is
 * not damage but a request for more (`need`, counted from `start`, with no
 * error recorded). Counts are checked against all the input's bytes.
 */
struct rd {
	const uint8_t *start, *p;
	size_t left;       /* bytes at hand after p */
	uint64_t more;     /* bytes of the input after those at hand */
	size_t need;       /* 0, or the bytes from start that the current field needs */
	const char *what;  /* "manifest", "listing" */
	uint64_t max_chunks;
	uint32_t max_attrs;
};

/* The bytes of the input after p: at hand and to come. */
static uint64_t
avail(const struct rd *r)
{
	return r->more > UINT64_MAX - r->left ? UINT64_MAX : r->left + r->more;
}

/* Does the input hold n more bytes? */
static int
fits(const struct rd *r, uint64_t n)
{
	return n <= avail(r);
}

/* n bytes are wanted and fewer are at hand: ask for more, or call it truncated. */
static int
short_input(struct rd *r, uint64_t n)
{
	if (!fits(r, n))
		return dd_error("damaged %s (truncated)", r->what);
	r->need = (size_t)(r->p - r->start) + (size_t)n;
	return -1;
}

static int
get_bytes(struct rd *r, void *out, size_t n)
{
	if (r->left < n)
		return short_input(r, n);
	memcpy(out, r->p, n);
	r->p += n;
	r->left -= n;
	return 0;
}

static int
get_u32(struct rd *r, uint32_t *v)
{
	uint8_t b[4] = { 0 };

	if (get_bytes(r, b, 4) < 0)
		return -1;
	*v = dd_get_le32(b);
	return 0;
}

static int
get_u64(struct rd *r, uint64_t *v)
{
	uint32_t lo, hi;

	if (get_u32(r, &lo) < 0 || get_u32(r, &hi) < 0)
		return -1;
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

static int
get_str(struct rd *r, char **out, size_t minlen, size_t maxlen, const char *what)
{
	uint32_t n;

	if (get_u32(r, &n) < 0)
		return -1;
	if (n < minlen || n > maxlen || !fits(r, n))
		return dd_error("damaged %s (bad %s length %u)", r->what, what, n);
	if (n > r->left)
		return short_input(r, n);
	if (memchr(r->p, 0, n))
		return dd_error("damaged %s (NUL byte in %s)", r->what, what);
	*out = dd_strndup((const char *)r->p, n);
	r->p += n;
	r->left -= n;
	return 0;
}

static int
get_kvs(struct rd *r, struct dd_kv **out, size_t *nout, const char *what)
{
	uint32_t n;

	if (get_u32(r, &n) < 0)
		return -1;
	if (n > r->max_attrs || !fits(r, (uint64_t)n * 8))
		return dd_error("damaged %s (bad %s count %u)", r->what, what, n);
	*out = n ? dd_calloc(n, sizeof(**out)) : NULL;
	for (uint32_t i = 0; i < n; i++) {
		*nout = i + 1;
		if (get_str(r, &(*out)[i].key, 1, DD_ATTR_KEY_MAX, what) < 0 ||
		    get_str(r, &(*out)[i].value, 0, DD_ATTR_VALUE_MAX, what) < 0)
			return -1;
		if (i && strcmp((*out)[i - 1].key, (*out)[i].key) >= 0)
			return dd_error("damaged %s (%s keys not sorted or repeated)", r->what, what);
	}
	*nout = n;
	return 0;
}

static int
get_stream(struct rd *r, struct dd_stream_info *s)
{
	uint64_t n, total = 0;

	if (get_str(r, &s->name, 1, DD_NAME_MAX, "stream name") < 0)
		return -1;
	if (get_kvs(r, &s->attrs, &s->nattrs, "attribute") < 0)
		return -1;
	if (get_u64(r, &s->size) < 0 || get_bytes(r, s->checksum, 32) < 0 || get_u64(r, &n) < 0)
		return -1;
	/* every chunk but the last is at least DD_CHUNK_MIN_LIMIT bytes: the size bounds the count (before allocating) */
	if (n > r->max_chunks || n > avail(r) / 36 || n > s->size / DD_CHUNK_MIN_LIMIT + 1)
		return dd_error("damaged %s (bad chunk count %llu)", r->what, (unsigned long long)n);
	if (n * 36 > r->left)
		return short_input(r, n * 36); /* before allocating: the whole list must be at hand */
	s->chunks = n ? dd_calloc((size_t)n, sizeof(*s->chunks)) : NULL;
	s->nchunks = (size_t)n;
	for (size_t i = 0; i < s->nchunks; i++) {
		if (get_bytes(r, s->chunks[i].id, 32) < 0 || get_u32(r, &s->chunks[i].len) < 0)
			return -1;
		if (s->chunks[i].len == 0 || s->chunks[i].len > DD_CHUNK_MAX_LIMIT ||
		    (i + 1 < s->nchunks && s->chunks[i].len < DD_CHUNK_MIN_LIMIT))
			return dd_error("damaged %s (bad chunk length %u)", r->what, s->chunks[i].len);
		total += s->chunks[i].len; /* cannot overflow: < 2^32 chunks of < 2^27 bytes */
	}
	if (total != s->size)
		return dd_error("damaged %s (chunks of '%s' do not add up to its size)", r->what, s->name);
	return 0;
}

int
dd_stream_record_parse(struct dd_stream_info *s, size_t *used, const void *data, size_t len, uint64_t more)
{
	struct rd r = { data, data, len, more, 0, "listing", DD_LISTING_MAX_CHUNKS, DD_LISTING_MAX_ATTRS };

	memset(s, 0, sizeof(*s));
	if (get_stream(&r, s) == 0) {
		*used = len - r.left;
		return 0;
	}
	dd_stream_info_clear(s);
	if (!r.need)
		return -1;
	*used = r.need;
	return DD_RECORD_MORE;
}

int
dd_manifest_parse(struct dd_manifest **out, size_t *content_len, const void *data, size_t len)
{
	struct rd r = { data, data, len, 0, 0, "manifest", UINT64_MAX, UINT32_MAX };
	struct dd_manifest *m = dd_calloc(1, sizeof(*m));
	uint8_t magic[4];
	uint32_t version, n;
	int rc = -1;

	if (len > DD_MANIFEST_MAX) {
		dd_error("damaged manifest (too large)");
		goto out;
	}
	if (get_bytes(&r, magic, 4) < 0 || memcmp(magic, "DDMC", 4)) {
		dd_error("damaged manifest (bad magic)");
		goto out;
	}
	if (get_u32(&r, &version) < 0)
		goto out;
	if (version != DD_MANIFEST_VERSION) {
		dd_error("manifest format version %u is not supported by this git-dnadata (upgrade it)", version);
		goto out;
	}
	if (get_u32(&r, &n) < 0)
		goto out;
	if (n > r.left / 56) {
		dd_error("damaged manifest (bad stream count %u)", n);
		goto out;
	}
	m->streams = n ? dd_calloc(n, sizeof(*m->streams)) : NULL;
	for (uint32_t i = 0; i < n; i++) {
		m->nstreams = i + 1;
		if (get_stream(&r, &m->streams[i]) < 0)
			goto out;
		if (i && strcmp(m->streams[i - 1].name, m->streams[i].name) >= 0) {
			dd_error("damaged manifest (streams not sorted or repeated)");
			goto out;
		}
	}
	*content_len = len - r.left;
	if (get_bytes(&r, magic, 4) < 0 || memcmp(magic, "DDMM", 4)) {
		dd_error("damaged manifest (bad metadata magic)");
		goto out;
	}
	if (get_kvs(&r, &m->meta, &m->nmeta, "metadata") < 0)
		goto out;
	if (r.left) {
		dd_error("damaged manifest (%zu trailing bytes)", r.left);
		goto out;
	}
	*out = m, m = NULL, rc = 0;
out:
	dd_manifest_free(m);
	return rc;
}

void
dd_kv_free(struct dd_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

void
dd_stream_info_clear(struct dd_stream_info *si)
{
	free(si->name);
	dd_kv_free(si->attrs, si->nattrs);
	free(si->chunks);
	memset(si, 0, sizeof(*si));
}

void
dd_stream_info_copy(struct dd_stream_info *dst, const struct dd_stream_info *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->name = src->name ? dd_strdup(src->name) : NULL;
	for (size_t i = 0; i < src->nattrs; i++)
		dd_kv_set(&dst->attrs, &dst->nattrs, src->attrs[i].key, src->attrs[i].value);
	dst->size = src->size;
	memcpy(dst->checksum, src->checksum, sizeof(dst->checksum));
	if (src->nchunks) {
		dst->chunks = dd_calloc(src->nchunks, sizeof(*dst->chunks));
		memcpy(dst->chunks, src->chunks, src->nchunks * sizeof(*dst->chunks));
	}
	dst->nchunks = src->nchunks;
}

void
dd_manifest_free(struct dd_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nstreams; i++)
		dd_stream_info_clear(&m->streams[i]);
	free(m->streams);
	dd_kv_free(m->meta, m->nmeta);
	free(m);
}

void
dd_kv_set(struct dd_kv **kv, size_t *n, const char *key, const char *value)
{
	for (size_t i = 0; i < *n; i++) {
		if (!strcmp((*kv)[i].key, key)) {
			free((*kv)[i].value);
			(*kv)[i].value = dd_strdup(value);
			return;
		}
	}
	*kv = dd_realloc(*kv, (*n + 1) * sizeof(**kv));
	(*kv)[*n].key = dd_strdup(key);
	(*kv)[*n].value = dd_strdup(value);
	(*n)++;
}

const char *
dd_kv_get(const struct dd_kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kv[i].key, key))
			return kv[i].value;
	return NULL;
}
