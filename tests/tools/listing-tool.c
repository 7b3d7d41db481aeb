/*
 * tests/tools/listing-tool.c: drives the store's listings end to end from
 * the command line, for integration tests against a real backend (S3) of
 * what the CLI reaches only through media folders: a snapshot whose
 * listing's entries hold generated content, pushed, fetched into another
 * clone, read back offline and verified.
 *
 *   listing-tool URL STATEDIR setup          create or adopt the store (key: STATEDIR/key, made when missing)
 *   listing-tool URL STATEDIR write N        a snapshot with a media listing of N files (and their folders),
 *                                            written in the cache alone (offline), then pushed; prints its id
 *   listing-tool URL STATEDIR write-private N   the same as a private snapshot, written online; prints its id
 *   listing-tool URL STATEDIR fetch ID       fetch it into this clone's cache
 *   listing-tool URL STATEDIR check ID       offline: every entry reads back as generated;
 *                                            prints "<entries> entries, <bytes> bytes"
 *   listing-tool URL STATEDIR verify ID [read-data]
 *   listing-tool URL STATEDIR bases ID       offline: a line per delta base of snapshot ID's chunks:
 *                                            "<pack path> <offset> <length> <depth>" of the base
 *                                            object's first place (from the cache's index files;
 *                                            depth 0: a full object), for tests that damage
 *                                            exactly a base or check a chain
 *
 * File i is "d<i/50>/f<i>.bin" (zero-padded, so the names come in path
 * order), after the entry of its folder; every tenth is empty, the others
 * hold 1..150,000 bytes of store-testlib's generated stream with seed i,
 * and file 0 holds 5 MiB. Errors print as the program does; exit 1.
 */
#include "../unit/store-testlib.h"
#include "store/internal.h"
#include "store/manifest.h"
#include "store/pack.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/log.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE "listing-tool URL STATEDIR setup|write N|write-private N|fetch ID|check ID|verify ID [read-data]|bases ID"

static uint64_t
file_size(uint64_t i)
{
	if (i == 0)
		return 5u << 20;
	return i % 10 == 0 ? 0 : (i * 7919) % 150000 + 1;
}

static int
add_folder(struct dd_listing_writer *lw, uint64_t folder)
{
	struct dd_kv kv = { "type", "dir" };
	char name[32];
	struct dd_stream_info e = { .name = name, .attrs = &kv, .nattrs = 1 };

	snprintf(name, sizeof(name), "d%02" PRIu64, folder);
	return dd_listing_add(lw, &e);
}

static int
add_file(struct dd_snapshot_writer *sw, struct dd_listing_writer *lw, uint64_t i, uint8_t *piece)
{
	struct gen g = { i, file_size(i), NULL, 0 };
	struct dd_kv kv = { "type", "file" };
	struct dd_stream_info e;
	struct dd_stream_writer *w;
	char name[64];
	int rc;

	memset(&e, 0, sizeof(e));
	if (dd_content_begin(&w, sw) < 0)
		return -1;
	for (uint64_t off = 0; off < g.size; off += GEN_BLOCK) {
		size_t n = g.size - off < GEN_BLOCK ? (size_t)(g.size - off) : GEN_BLOCK;
		gen_fill(&g, piece, off, n);
		if (dd_stream_write(w, piece, n) < 0) {
			dd_stream_abort(w);
			return -1;
		}
	}
	if (dd_content_end(w, &e) < 0)
		return -1;
	snprintf(name, sizeof(name), "d%02" PRIu64 "/f%04" PRIu64 ".bin", i / 50, i);
	e.name = name;
	e.attrs = &kv;
	e.nattrs = 1;
	rc = dd_listing_add(lw, &e);
	free(e.chunks);
	return rc;
}

static int
write_listing(const char *url, const char *sd, uint64_t n, int priv)
{
	struct dd_store *st = NULL;
	struct dd_snapshot_writer *sw = NULL;
	struct dd_listing_writer *lw = NULL;
	uint8_t *piece = malloc(GEN_BLOCK);
	char id[DD_ID_HEX_SIZE];
	const char *ids[1] = { id };
	int rc = -1;

	if (dd_store_open(&st, url, sd, priv ? 0 : DD_STORE_OFFLINE) < 0 ||
	    dd_snapshot_begin_flags(&sw, st, priv ? DD_SNAPSHOT_PRIVATE : 0) < 0 ||
	    dd_listing_begin(&lw, sw, "media", "media") < 0)
		goto out;
	for (uint64_t i = 0; i < n; i++)
		if ((i % 50 == 0 && add_folder(lw, i / 50) < 0) || add_file(sw, lw, i, piece) < 0)
			goto out;
	rc = dd_listing_end(lw, NULL);
	lw = NULL;
	if (rc < 0)
		goto out;
	rc = dd_snapshot_commit(sw, id); /* frees sw */
	sw = NULL;
	if (rc < 0)
		goto out;
	dd_store_free(st);
	st = NULL;
	if (!priv && ((rc = dd_store_open(&st, url, sd, 0)) < 0 || (rc = dd_store_push(st, ids, 1, NULL)) < 0))
		goto out;
	printf("%s\n", id);
out:
	dd_listing_abort(lw);
	dd_snapshot_abort(sw);
	dd_store_free(st);
	free(piece);
	return rc < 0 ? -1 : 0;
}

/* Entry e reads back as file i's content. */
static int
check_file(struct dd_store *st, const struct dd_stream_info *e, uint64_t i, uint8_t *want)
{
	struct gen g = { i, file_size(i), NULL, 0 };
	struct dd_stream_reader *r;
	const void *d;
	size_t len;
	uint64_t off = 0;
	int rc;

	if (e->size != g.size)
		return dd_error("entry '%s' has %" PRIu64 " bytes, not %" PRIu64, e->name, e->size, g.size);
	if (dd_stream_open(&r, st, e) < 0)
		return -1;
	while ((rc = dd_stream_next(r, &d, &len)) == 1) {
		gen_fill(&g, want, off, len);
		if (memcmp(d, want, len)) {
			rc = dd_error("entry '%s' differs at byte %" PRIu64, e->name, off);
			break;
		}
		off += len;
	}
	dd_stream_close(r);
	return rc;
}

static int
check_listing(const char *url, const char *sd, const char *id)
{
	struct dd_store *st = NULL;
	struct dd_snapshot *s = NULL;
	struct dd_listing_reader *lr = NULL;
	const struct dd_stream_info *e;
	uint8_t *want = malloc(64u << 20);
	uint64_t entries = 0, bytes = 0, i = 0;
	int rc = -1;

	if (dd_store_open(&st, url, sd, DD_STORE_OFFLINE) < 0 || dd_snapshot_load(&s, st, id) != 0 ||
	    dd_listing_open(&lr, st, dd_snapshot_find(s, "media")) < 0)
		goto out;
	while ((rc = dd_listing_next(lr, &e)) == 1) {
		entries++;
		if (strcmp(dd_stream_attr(e, "type"), "file"))
			continue;
		if (check_file(st, e, i++, want) < 0) {
			rc = -1;
			break;
		}
		bytes += e->size;
	}
	if (rc == 0)
		printf("%" PRIu64 " entries, %" PRIu64 " bytes\n", entries, bytes);
out:
	dd_listing_close(lr);
	dd_snapshot_free(s);
	dd_store_free(st);
	free(want);
	return rc;
}

/* dd_snapshot_each_chunk(): a base's first place, as "packs/<2 hex>/<64 hex> <offset> <length> <depth>". */
static int
print_base(const struct dd_chunk_ref *ref, const char *stream, void *arg)
{
	struct dd_store *st = arg;
	struct dd_midx_hit hit;
	struct dd_midx_pack p;
	char hex[DD_ID_HEX_SIZE];

	if (strncmp(stream, "base of ", 8))
		return 0;
	if (!dd_midx_find(st->idx, ref->id, 0, &hit))
		return dd_error("a delta base is in no pack the cache's index files name");
	p = dd_midx_pack_get(st->idx, hit.pack);
	dd_hex_encode(hex, p.name, 32);
	printf("packs/%.2s/%s %" PRIu32 " %" PRIu32 " %d\n", hex, hex, hit.off, hit.len,
	       hit.type == DD_OBJ_DELTA ? hit.d.depth : 0);
	return 0;
}

static int
list_bases(const char *url, const char *sd, const char *id)
{
	struct dd_store *st = NULL;
	struct dd_snapshot *s = NULL;
	int rc = -1;

	if (dd_store_open(&st, url, sd, DD_STORE_OFFLINE) == 0 && dd_store_index_load(st) == 0 &&
	    dd_snapshot_load(&s, st, id) == 0)
		rc = dd_snapshot_each_chunk(st, s, print_base, st);
	dd_snapshot_free(s);
	dd_store_free(st);
	return rc;
}

static int
run(int argc, char **argv)
{
	const char *url = argv[1], *sd = argv[2], *cmd = argv[3];
	struct dd_store *st = NULL;
	int rc = -1, created;

	if (!strcmp(cmd, "setup"))
		return dd_store_setup(url, sd, NULL, &created);
	if (!strcmp(cmd, "write") && argc == 5)
		return write_listing(url, sd, strtoull(argv[4], NULL, 10), 0);
	if (!strcmp(cmd, "write-private") && argc == 5)
		return write_listing(url, sd, strtoull(argv[4], NULL, 10), 1);
	if (!strcmp(cmd, "check") && argc == 5)
		return check_listing(url, sd, argv[4]);
	if (!strcmp(cmd, "bases") && argc == 5)
		return list_bases(url, sd, argv[4]);
	if ((!strcmp(cmd, "fetch") || !strcmp(cmd, "verify")) && argc >= 5) {
		const char *ids[1] = { argv[4] };
		if (dd_store_open(&st, url, sd, 0) == 0)
			rc = !strcmp(cmd, "fetch") ? dd_store_fetch(st, ids, 1, NULL)
						   : dd_store_verify(st, ids, 1, argc == 6 && !strcmp(argv[5], "read-data"));
		dd_store_free(st);
		return rc;
	}
	return dd_error("usage: %s", USAGE);
}

int
main(int argc, char **argv)
{
	int rc;

	if (argc < 4 || sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		fprintf(stderr, "usage: %s\n", USAGE);
		return 2;
	}
	rc = run(argc, argv);
	if (rc != 0) {
		fprintf(stderr, "error: %s\n", dd_error_last() ? dd_error_last() : "failed");
		if (dd_error_hint())
			fprintf(stderr, "hint: %s\n", dd_error_hint());
	}
	curl_global_cleanup();
	return rc == 0 ? 0 : 1;
}
