/*
 * store/reader.c: loading snapshots and reading streams back; see store.h.
 *
 * A stream reader keeps up to PREFETCH chunk jobs in flight in the store's
 * pool (fetch, authenticate, decompress, recheck the id), and hands the
 * chunks out in order. Each chunk's id is recomputed from its plaintext
 * when it is opened; at the end the reader checks the size it saw and the
 * stream checksum (a hash list over those ids), so a reader that reached 0
 * has seen exactly what was written.
 *
 * A reader opened at an offset (dd_stream_open_at, issue 19) starts at the
 * chunk that holds it and trims the first piece. It never sees the chunks
 * before that one, so it cannot check the stream checksum (a hash list over
 * every id) nor... only the size it reaches at the end; each chunk it opens
 * is still checked against its id (recomputed from the plaintext), so every
 * byte it hands out is one that was written under that id.
 */
#include "store/internal.h"
#include "util/err.h"
#include "util/hex.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define PREFETCH 4

struct fetch_job {
	struct dd_job base;
	struct dd_store *st;
	const struct dd_chunk_ref *ref;
	struct dd_buf plain;
	char *err;
	int submitted;
};

struct dd_stream_reader {
	struct dd_store *st;
	const struct dd_stream_info *si;
	struct fetch_job slots[PREFETCH];
	size_t next_submit, next_out; /* chunk indexes */
	struct fetch_job *current;    /* returned by the last dd_stream_next */
	uint64_t seen;
	size_t skip;  /* bytes to trim from the next piece (dd_stream_open_at) */
	int partial;  /* opened past the first chunk: the checksum cannot be checked */
	int finished;
};

int
dd_snapshot_decode(struct dd_snapshot **out, struct dd_store *st, const uint8_t id[32], const struct dd_buf *plain)
{
	struct dd_manifest *m = NULL;
	size_t content_len;
	uint8_t check[32];
	char hex[65];

	dd_hex_encode(hex, id, 32);
	if (dd_manifest_parse(&m, &content_len, plain->ptr, plain->len) < 0)
		return dd_error_wrap("snapshot %s", hex);
	dd_id_compute(check, st->keys, plain->ptr, content_len);
	if (sodium_memcmp(check, id, 32) != 0) {
		dd_manifest_free(m);
		return dd_error("snapshot %s is damaged (its content does not match its id)", hex);
	}
	*out = dd_calloc(1, sizeof(**out));
	memcpy((*out)->id, hex, sizeof(hex));
	(*out)->m = m;
	return 0;
}

int
dd_snapshot_load(struct dd_snapshot **out, struct dd_store *st, const char *id_hex)
{
	struct dd_buf plain = DD_BUF_INIT;
	uint8_t id[32];
	int rc;

	if (dd_hex_decode(id, 32, id_hex) < 0)
		return dd_error("'%s' is not a snapshot id (64 hex digits)", id_hex);
	rc = dd_store_private_load(out, st, id); /* a local look first: a private one is never in the store */
	if (rc != DD_NOTFOUND)
		return rc;
	rc = dd_store_get_object(st, DD_OBJ_MANIFEST, id, DD_MANIFEST_MAX, &plain, NULL);
	if (rc == DD_NOTFOUND)
		dd_error_wrap("snapshot %.12s", id_hex);
	if (rc == 0 && dd_snapshot_decode(out, st, id, &plain) < 0)
		rc = -1;
	dd_buf_release(&plain);
	return rc;
}

void
dd_snapshot_free(struct dd_snapshot *s)
{
	if (!s)
		return;
	dd_manifest_free(s->m);
	free(s);
}

const char *
dd_snapshot_id(const struct dd_snapshot *s)
{
	return s->id;
}

const char *
dd_snapshot_meta(const struct dd_snapshot *s, const char *key)
{
	return dd_kv_get(s->m->meta, s->m->nmeta, key);
}

size_t
dd_snapshot_count(const struct dd_snapshot *s)
{
	return s->m->nstreams;
}

const struct dd_stream_info *
dd_snapshot_stream(const struct dd_snapshot *s, size_t i)
{
	return i < s->m->nstreams ? &s->m->streams[i] : NULL;
}

const struct dd_stream_info *
dd_snapshot_find(const struct dd_snapshot *s, const char *name)
{
	size_t lo = 0, hi = s->m->nstreams;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->m->streams[mid].name, name);
		if (c == 0)
			return &s->m->streams[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *
dd_stream_name(const struct dd_stream_info *si)
{
	return si->name;
}

uint64_t
dd_stream_size(const struct dd_stream_info *si)
{
	return si->size;
}

const char *
dd_stream_attr(const struct dd_stream_info *si, const char *key)
{
	return dd_kv_get(si->attrs, si->nattrs, key);
}

static void
fetch_run(struct dd_job *job, struct dd_worker *wk)
{
	struct fetch_job *j = (struct fetch_job *)job;

	if (dd_store_get_object(j->st, DD_OBJ_DATA, j->ref->id, j->ref->len, &j->plain, wk->zd) != 0)
		j->err = dd_strdup(dd_error_last() ? dd_error_last() : "reading a chunk failed");
	else if (j->plain.len != j->ref->len)
		j->err = dd_strdup("chunk length differs from the manifest");
}

static void
submit_more(struct dd_stream_reader *r)
{
	while (r->next_submit < r->si->nchunks && r->next_submit < r->next_out + PREFETCH) {
		struct fetch_job *j = &r->slots[r->next_submit % PREFETCH];
		if (j == r->current)
			break; /* still handed out to the caller */
		j->base.run = fetch_run;
		j->st = r->st;
		j->ref = &r->si->chunks[r->next_submit];
		j->submitted = 1;
		dd_pool_submit(r->st->pool, &j->base);
		r->next_submit++;
	}
}

int
dd_stream_open(struct dd_stream_reader **out, struct dd_store *st, const struct dd_stream_info *si)
{
	return dd_stream_open_at(out, st, si, 0);
}

/*
 * Without the checksum, nothing but each chunk's id vouches for what is read:
 * the chunk list and the size must at least agree, or the offset means nothing.
 */
int
dd_stream_open_at(struct dd_stream_reader **out, struct dd_store *st, const struct dd_stream_info *si, uint64_t off)
{
	struct dd_stream_reader *r;
	uint64_t start = 0;
	size_t k = 0;

	if (off > si->size)
		return dd_error("reading stream '%s' from byte %" PRIu64 ": it has %" PRIu64 " bytes", si->name, off,
				si->size);
	while (off && k < si->nchunks && start + si->chunks[k].len <= off) /* from 0: every chunk, checksum checked */
		start += si->chunks[k++].len;
	if (off && k == si->nchunks && start != si->size)
		return dd_error("stream '%s' is damaged (its chunks do not add up to its size)", si->name);
	r = dd_calloc(1, sizeof(*r));
	r->st = st;
	r->si = si;
	r->next_submit = r->next_out = k;
	r->seen = start;
	r->skip = (size_t)(off - start);
	r->partial = k > 0;
	submit_more(r);
	*out = r;
	return 0;
}

int
dd_stream_next(struct dd_stream_reader *r, const void **data, size_t *len)
{
	struct fetch_job *j;
	uint8_t sum[32];

	if (r->current) {
		r->current->submitted = 0;
		r->current = NULL;
	}
	if (r->finished)
		return 0;
	if (r->next_out == r->si->nchunks) {
		dd_stream_checksum(sum, r->st->keys, r->si);
		r->finished = 1;
		if (r->seen != r->si->size || (!r->partial && sodium_memcmp(sum, r->si->checksum, 32) != 0))
			return dd_error("stream '%s' is damaged (its checksum does not match)", r->si->name);
		return 0;
	}
	submit_more(r);
	j = &r->slots[r->next_out % PREFETCH];
	dd_pool_wait(r->st->pool, &j->base);
	if (j->err) {
		dd_error("reading stream '%s': %s", r->si->name, j->err);
		free(j->err);
		j->err = NULL;
		j->submitted = 0;
		r->finished = 1;
		return -1;
	}
	r->seen += j->plain.len;
	r->next_out++;
	r->current = j;
	*data = j->plain.ptr + r->skip;
	*len = j->plain.len - r->skip;
	r->skip = 0;
	submit_more(r);
	return 1;
}

void
dd_stream_close(struct dd_stream_reader *r)
{
	if (!r)
		return;
	for (int i = 0; i < PREFETCH; i++) {
		if (r->slots[i].submitted)
			dd_pool_wait(r->st->pool, &r->slots[i].base);
		free(r->slots[i].err);
		dd_buf_release(&r->slots[i].plain);
	}
	free(r);
}
