/*
 * fuzz/seeds-store.c: writes seeds for the store's parsers from a real
 * clone's cache, so they are files as git-dnadata wrote them in a test
 * run: the plaintext of every index file (fuzz-midx; fuzz-pack behind its
 * mode byte 2) and of every snapshot manifest (fuzz-manifest), each opened
 * with the clone's key (<statedir>/key) as a reader does.
 *
 *   seeds-store STATEDIR CORPUSDIR PREFIX
 *
 * writes CORPUSDIR/fuzz-midx/PREFIX-<id prefix>, ... (names from the
 * object ids, so running it again writes the same files). Made from a
 * configured build directory and a kept test run, e.g. (t-delta.sh's
 * clones have delta objects, so their index files are version 2):
 *
 *   cc -std=c11 -D_GNU_SOURCE -I. -Isrc fuzz/seeds-store.c libdnadata.a \
 *      $(pkg-config --libs libgit2 libpq libcurl libsodium libcrypto inih libzstd expat) -lm -o /tmp/seeds-store
 *   DD_KEEP=1 tests/run ... tests/integration/t-delta.sh   (keeps its temp dirs)
 *   /tmp/seeds-store <a kept test's repo>/.git/dnadata fuzz/corpus delta
 */
#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"
#include "store/keys.h"
#include "store/object.h"
#include "store/pack.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"

static int
put(const char *corpus, const char *harness, const char *prefix, const char *name, const char *mode,
    const void *data, size_t len)
{
	char *dir = dd_path_join(corpus, harness), *file = dd_asprintf("%s-%.12s", prefix, name), *path;
	struct dd_buf b = DD_BUF_INIT;
	int rc;

	path = dd_path_join(dir, file);
	if (mode)
		dd_buf_puts(&b, mode);
	dd_buf_put(&b, data, len);
	rc = dd_mkdir_p(dir, 0755) < 0 ? -1 : dd_file_write_atomic(path, b.ptr, b.len, 0644, 0);
	if (rc == 0)
		printf("%s (%zu bytes)\n", path, b.len);
	dd_buf_release(&b);
	free(path);
	free(file);
	free(dir);
	return rc;
}

/* Open every object in <cache>/<sub>/ as `type` and hand its plaintext to the harnesses' folders. */
static int
each(const struct dd_keys *k, const char *statedir, const char *sub, int type, const char *corpus,
     const char *prefix)
{
	char *dir = dd_asprintf("%s/cache/%s", statedir, sub);
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return dd_error_errno("cannot read %s", dir);
	while (rc == 0 && (de = readdir(d))) {
		struct dd_buf obj = DD_BUF_INIT, plain = DD_BUF_INIT;
		uint8_t id[32];
		char *path;

		if (strlen(de->d_name) != 64 || !dd_is_hex(de->d_name, 64) || dd_hex_decode(id, 32, de->d_name) < 0)
			continue;
		path = dd_path_join(dir, de->d_name);
		rc = dd_file_read(&obj, path);
		if (rc == 0)
			rc = dd_object_open(&plain, k, type, id, obj.ptr, obj.len, DD_INDEX_MAX, NULL);
		if (rc == 0 && type == DD_OBJ_INDEX) {
			rc = put(corpus, "fuzz-midx", prefix, de->d_name, NULL, plain.ptr, plain.len);
			if (rc == 0)
				rc = put(corpus, "fuzz-pack", prefix, de->d_name, "\002", plain.ptr, plain.len);
		} else if (rc == 0) {
			rc = put(corpus, "fuzz-manifest", prefix, de->d_name, NULL, plain.ptr, plain.len);
		}
		dd_buf_release(&obj);
		dd_buf_release(&plain);
		free(path);
	}
	closedir(d);
	free(dir);
	return rc;
}

int
main(int argc, char **argv)
{
	uint8_t master[DD_KEY_LEN];
	struct dd_keys *k;
	char *kpath;
	int rc;

	if (argc != 4) {
		fprintf(stderr, "usage: seeds-store STATEDIR CORPUSDIR PREFIX\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	kpath = dd_store_key_path(argv[1]);
	rc = dd_key_read_file(master, kpath);
	free(kpath);
	if (rc == 0) {
		k = dd_keys_new(master);
		rc = each(k, argv[1], "index", DD_OBJ_INDEX, argv[2], argv[3]);
		if (rc == 0)
			rc = each(k, argv[1], "snapshots", DD_OBJ_MANIFEST, argv[2], argv[3]);
		dd_keys_free(k);
	}
	if (rc != 0) {
		fprintf(stderr, "error: %s\n", dd_error_last() ? dd_error_last() : "failed");
		return 1;
	}
	return 0;
}
