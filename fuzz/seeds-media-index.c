/*
 * fuzz/seeds-media-index.c: writes the seed corpus of fuzz-media-index
 * (fuzz/corpus/fuzz-media-index/) with the real index writer
 * (media/index.c), so the seeds are records as git-dnadata writes them:
 * empty, one file, a folder holding a symlink and a file, a file of
 * several chunks (from a private snapshot), a pending record (no id yet).
 * Regenerate (after a format change) from a configured build directory:
 *
 *   cc -std=c11 -D_GNU_SOURCE -I. -Isrc fuzz/seeds-media-index.c libdnadata.a \
 *      $(pkg-config --libs libgit2 libpq libcurl libsodium libcrypto inih libzstd expat) -lm \
 *      -o /tmp/seeds && /tmp/seeds fuzz/corpus/fuzz-media-index
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "media/internal.h"
#include "util/err.h"

#define ID "4f1c2a9be0d3c6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1"
#define STORE "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct seed_entry {
	const char *name, *type, *mode, *target;
	uint32_t chunks[4]; /* lengths, 0 ends */
};

static int
add(struct idx_writer *w, const struct seed_entry *s, unsigned n)
{
	struct dd_kv kv[4];
	struct dd_chunk_ref ch[4];
	struct dd_stream_info e = { .name = (char *)s->name, .attrs = kv, .chunks = ch };
	struct idx_stat st = { 0 };
	char mtime[32];

	snprintf(mtime, sizeof(mtime), "1700000%03u.%09u", n, 123456789u + n);
	kv[e.nattrs++] = (struct dd_kv){ "mode", (char *)s->mode };
	kv[e.nattrs++] = (struct dd_kv){ "mtime", mtime };
	if (s->target)
		kv[e.nattrs++] = (struct dd_kv){ "target", (char *)s->target };
	kv[e.nattrs++] = (struct dd_kv){ "type", (char *)s->type };
	for (; e.nchunks < 4 && s->chunks[e.nchunks]; e.nchunks++) {
		crypto_generichash(ch[e.nchunks].id, 32, (const uint8_t *)s->name, strlen(s->name),
				   (const uint8_t *)&e.nchunks, sizeof(e.nchunks));
		ch[e.nchunks].len = s->chunks[e.nchunks];
		e.size += ch[e.nchunks].len;
	}
	crypto_generichash(e.checksum, 32, (const uint8_t *)s->name, strlen(s->name), NULL, 0);
	if (!strcmp(s->type, "file")) {
		st = (struct idx_stat){ .size = e.size, .ino = 1000 + n, .mtime_s = 1700000000 + n,
					.mtime_ns = 123456789u + n, .ctime_s = 1700000000 + n, .ctime_ns = 5 };
	}
	return idx_writer_add(w, &e, &st);
}

static int
seed(const char *dir, const char *name, uint32_t flags, const char *id, const struct seed_entry *es, unsigned n)
{
	struct idx_writer *w;
	struct stat root = { .st_dev = 2049, .st_ino = 131073 };
	struct idx_origin o;

	if (idx_writer_new(&w, dir) < 0)
		return -1;
	idx_origin_of(&o, &root, STORE);
	idx_writer_set_origin(w, &o);
	for (unsigned i = 0; i < n; i++)
		if (add(w, &es[i], i) < 0) {
			idx_writer_abort(w);
			return -1;
		}
	return idx_writer_finish(w, name, flags, id);
}

int
main(int argc, char **argv)
{
	static const struct seed_entry one[] = { { "photo.jpg", "file", "644", NULL, { 1234 } } };
	static const struct seed_entry tree[] = {
		{ "albums", "dir", "755", NULL, { 0 } },
		{ "albums/cover.png", "symlink", "777", "../img/cover.png", { 0 } },
		{ "albums/notes.txt", "file", "600", NULL, { 17 } },
		{ "albums-old", "dir", "700", NULL, { 0 } },
	};
	static const struct seed_entry big[] = {
		{ "video/clip.mp4", "file", "644", NULL, { 16u << 20, 9u << 20, 1, 70000 } },
	};

	if (argc != 2 || sodium_init() < 0) {
		fprintf(stderr, "usage: seeds-media-index OUTDIR\n");
		return 2;
	}
	if (seed(argv[1], "empty", 0, "", NULL, 0) < 0 || seed(argv[1], "one-file", 0, ID, one, 1) < 0 ||
	    seed(argv[1], "symlink-and-dir", 0, ID, tree, 4) < 0 ||
	    seed(argv[1], "several-chunks-private", IDX_PRIVATE, ID, big, 1) < 0 ||
	    seed(argv[1], "pending", 0, "", tree, 4) < 0) {
		fprintf(stderr, "error: %s\n", dd_error_last());
		return 1;
	}
	return 0;
}
