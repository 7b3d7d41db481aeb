/*
 * tests/tools/media-craft.c: writes a snapshot whose media listing holds
 * exactly the entries given, hostile ones included, for the integration
 * tests that check a restore refuses them before writing anything
 * (tests/integration/t-media-kill.sh). The store's own listing writer is
 * used, so only what it accepts can be crafted (entries in path order);
 * the parser side of hostile listings is covered by the media unit tests.
 *
 *   media-craft STATEDIR STORE-URL ENTRY...
 *     ENTRY: dir:PATH | file:PATH:CONTENT | link:PATH:TARGET
 *   prints the snapshot id.
 *
 * Entry attributes as docs/FORMAT.md §6.2 has them: type, mode, mtime,
 * target. The store's key is the clone's (<statedir>/key).
 */
#include "media/media.h"
#include "store/manifest.h"
#include "store/store.h"
#include "util/err.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
add_entry(struct dd_snapshot_writer *sw, struct dd_listing_writer *lw, char *spec)
{
	char *type = spec, *path = strchr(spec, ':'), *rest;
	struct dd_stream_info e;
	struct dd_kv attrs[4];
	struct dd_stream_writer *w = NULL;
	int rc;

	if (!path)
		return dd_error("bad entry '%s'", spec);
	*path++ = '\0';
	rest = strchr(path, ':');
	if (rest)
		*rest++ = '\0';
	memset(&e, 0, sizeof(e));
	e.name = path;
	e.attrs = attrs;
	attrs[0] = (struct dd_kv){ "mode", !strcmp(type, "dir") ? "755" : !strcmp(type, "link") ? "777" : "644" };
	attrs[1] = (struct dd_kv){ "mtime", "1700000000.000000000" };
	attrs[2] = (struct dd_kv){ "type", !strcmp(type, "dir") ? "dir" : !strcmp(type, "link") ? "symlink" : "file" };
	e.nattrs = 3;
	if (!strcmp(type, "link")) {
		attrs[3] = (struct dd_kv){ "target", rest ? rest : "" };
		e.nattrs = 4;
	}
	if (!strcmp(type, "file")) {
		const char *content = rest ? rest : "";
		if (dd_content_begin(&w, sw) < 0 || dd_stream_write(w, content, strlen(content)) < 0)
			return -1;
		if (dd_content_end(w, &e) < 0)
			return -1;
	}
	rc = dd_listing_add(lw, &e);
	free(e.chunks);
	return rc;
}

int
main(int argc, char **argv)
{
	struct dd_store *st = NULL;
	struct dd_snapshot_writer *sw = NULL;
	struct dd_listing_writer *lw = NULL;
	char id[DD_ID_HEX_SIZE];
	uint64_t n;

	if (argc < 3) {
		fprintf(stderr, "usage: media-craft STATEDIR STORE-URL ENTRY...\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	if (dd_store_open(&st, *argv[2] ? argv[2] : NULL, argv[1], DD_STORE_OFFLINE) < 0 || dd_snapshot_begin(&sw, st) < 0)
		goto fail;
	dd_snapshot_set_meta(sw, "profile", "crafted");
	if (dd_listing_begin(&lw, sw, DD_MEDIA_STREAM, "media") < 0)
		goto fail;
	for (int i = 3; i < argc; i++)
		if (add_entry(sw, lw, argv[i]) < 0)
			goto fail;
	if (dd_listing_end(lw, &n) < 0) {
		lw = NULL;
		goto fail;
	}
	lw = NULL;
	if (dd_snapshot_commit(sw, id) < 0) {
		sw = NULL;
		goto fail;
	}
	printf("%s\n", id);
	dd_store_free(st);
	return 0;
fail:
	fprintf(stderr, "error: %s\n", dd_error_last() ? dd_error_last() : "failed");
	if (lw)
		dd_listing_abort(lw);
	if (sw)
		dd_snapshot_abort(sw);
	dd_store_free(st);
	return 1;
}
