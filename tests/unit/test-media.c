/*
 * tests/unit/test-media.c: media folders (media/media.h) on a real file://
 * store in a temp dir: capture/apply round trips (unicode and space names,
 * empty folders, relative/absolute/dangling symlinks, modes, nanosecond
 * mtimes), unchanged files neither read (read_files) nor rewritten
 * (inodes), a restore over extra, modified and retyped entries, hostile
 * listings refused with nothing written, a planted symlink replaced and
 * never followed, an unreadable file and a name with a newline failing in
 * one line, the owner (set, and not permitted: one warning), the local
 * index (changed, truncated or damaged, killed runs' leftovers), the media
 * stash (unchanged, empty, changed, dropped), and memory that does not
 * grow with the number of files. Runs as root too: the capabilities that
 * let root read anything or chown are dropped where a test needs that.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sodium.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "media/internal.h"
#include "media/media.h"
#include "store-testlib.h"
#include "store/internal.h"
#include "util/err.h"
#include "util/log.h"

/* --wrap=idx_commit_pending: fail it on demand */
int __real_idx_commit_pending(const char *dir, uint32_t flags, const char *id, const uint8_t nonce[16]);
int __wrap_idx_commit_pending(const char *dir, uint32_t flags, const char *id, const uint8_t nonce[16]);
static int fail_index_commit;

int
__wrap_idx_commit_pending(const char *dir, uint32_t flags, const char *id, const uint8_t nonce[16])
{
	if (fail_index_commit)
		return dd_error("cannot rename %s/pending (made to fail)", dir);
	return __real_idx_commit_pending(dir, flags, id, nonce);
}

/*
 * --wrap=dd_stream_write and dd_stream_next: content that begins with
 * FAILME fails on demand (a capture worker's write, a restore worker's
 * read), the other files of the same run going on around it.
 */
int __real_dd_stream_write(struct dd_stream_writer *w, const void *data, size_t len);
int __wrap_dd_stream_write(struct dd_stream_writer *w, const void *data, size_t len);
int __real_dd_stream_next(struct dd_stream_reader *r, const void **data, size_t *len);
int __wrap_dd_stream_next(struct dd_stream_reader *r, const void **data, size_t *len);
static int fail_marked_write, fail_marked_read;

int
__wrap_dd_stream_write(struct dd_stream_writer *w, const void *data, size_t len)
{
	if (fail_marked_write && len >= 6 && !memcmp(data, "FAILME", 6))
		return dd_error("storing the content made to fail");
	return __real_dd_stream_write(w, data, len);
}

int
__wrap_dd_stream_next(struct dd_stream_reader *r, const void **data, size_t *len)
{
	int n = __real_dd_stream_next(r, data, len);

	if (n == 1 && fail_marked_read && *len >= 6 && !memcmp(*data, "FAILME", 6))
		return dd_error("reading the content made to fail (%.8s)", (const char *)*data);
	return n;
}

struct fx {
	char *tmp, *sd, *url, *a, *b;
	struct dd_store *st;
};

#define CHECK(x)                                                                                                       \
	do {                                                                                                           \
		if ((x) < 0)                                                                                           \
			fail_msg("%s: %s", #x, dd_error_last());                                                       \
	} while (0)

static int
fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char *root;
	int created;

	f->tmp = make_tmpdir();
	f->sd = dd_path_join(f->tmp, "state");
	root = dd_path_join(f->tmp, "store");
	f->url = dd_asprintf("file://%s", root);
	free(root);
	f->a = dd_path_join(f->tmp, "a");
	f->b = dd_path_join(f->tmp, "b");
	dd_keyfile_set_fast_for_tests(1);
	if (dd_store_setup(f->url, f->sd, NULL, &created) < 0 || dd_store_open(&f->st, f->url, f->sd, 0) < 0) {
		fprintf(stderr, "setup: %s\n", dd_error_last());
		return -1;
	}
	mkdir(f->a, 0755);
	*state = f;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;

	dd_store_free(f->st);
	dd_rm_rf(f->tmp);
	free(f->tmp), free(f->sd), free(f->url), free(f->a), free(f->b), free(f);
	return 0;
}

static struct dd_media_opts
opts(struct fx *f, const char *root)
{
	struct dd_media_opts o = { .root = root, .statedir = f->sd };
	return o;
}

/* ---- building folders ---- */
static char *
at(const char *dir, const char *rel)
{
	return dd_path_join(dir, rel);
}

static void
put_file(const char *dir, const char *rel, const void *data, size_t len, mode_t mode, time_t s, long ns)
{
	char *p = at(dir, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	struct timespec ts[2] = { { s, ns }, { s, ns } };

	assert_true(fd >= 0);
	assert_int_equal(dd_write_all(fd, data, len), 0);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(futimens(fd, ts), 0);
	close(fd);
	free(p);
}

static void
put_text(const char *dir, const char *rel, const char *text)
{
	put_file(dir, rel, text, strlen(text), 0644, 1600000000, 123456789);
}

static void
put_dir(const char *dir, const char *rel, mode_t mode)
{
	char *p = at(dir, rel);

	assert_int_equal(mkdir(p, mode), 0);
	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

static void
put_link(const char *dir, const char *rel, const char *target)
{
	char *p = at(dir, rel);

	assert_int_equal(symlink(target, p), 0);
	free(p);
}

static void
set_mtime(const char *dir, const char *rel, time_t s, long ns)
{
	char *p = at(dir, rel);
	struct timespec ts[2] = { { s, ns }, { s, ns } };

	assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
	free(p);
}

/* ---- comparing folders ---- */
static int
cmp_names(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static size_t
sorted_names(const char *dir, char ***out)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	*out = NULL;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		*out = realloc(*out, (n + 1) * sizeof(**out));
		(*out)[n++] = strdup(de->d_name);
	}
	closedir(d);
	if (n > 1)
		qsort(*out, n, sizeof(**out), cmp_names);
	return n;
}

static void
free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static void
compare_entry(const char *pa, const char *pb)
{
	struct stat sa, sb;
	struct dd_buf ca = DD_BUF_INIT, cb = DD_BUF_INIT;

	assert_int_equal(lstat(pa, &sa), 0);
	if (lstat(pb, &sb) < 0)
		fail_msg("%s is missing", pb);
	if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT))
		fail_msg("%s: type differs", pb);
	if (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec)
		fail_msg("%s: mtime %ld.%09ld, expected %ld.%09ld", pb, (long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec,
			 (long)sa.st_mtim.tv_sec, sa.st_mtim.tv_nsec);
	if (S_ISLNK(sa.st_mode)) {
		char ta[4096] = { 0 }, tb[4096] = { 0 };
		assert_true(readlink(pa, ta, sizeof(ta) - 1) > 0);
		assert_true(readlink(pb, tb, sizeof(tb) - 1) > 0);
		assert_string_equal(ta, tb);
		return;
	}
	if ((sa.st_mode & 07777) != (sb.st_mode & 07777))
		fail_msg("%s: mode %o, expected %o", pb, sb.st_mode & 07777, sa.st_mode & 07777);
	if (S_ISREG(sa.st_mode)) {
		CHECK(dd_file_read(&ca, pa));
		CHECK(dd_file_read(&cb, pb));
		assert_int_equal(ca.len, cb.len);
		assert_memory_equal(ca.ptr, cb.ptr, ca.len);
		dd_buf_release(&ca);
		dd_buf_release(&cb);
	}
}

/* The two folders hold the same entries: names, types, modes, mtimes, contents, targets. */
static void
compare_trees(const char *a, const char *b)
{
	char **na, **nb;
	size_t n = sorted_names(a, &na), m = sorted_names(b, &nb);

	if (n != m)
		fail_msg("%s holds %zu entries, %s %zu", a, n, b, m);
	for (size_t i = 0; i < n; i++) {
		char *pa = at(a, na[i]), *pb = at(b, nb[i]);
		struct stat st;
		assert_string_equal(na[i], nb[i]);
		assert_int_equal(lstat(pa, &st), 0);
		if (S_ISDIR(st.st_mode))
			compare_trees(pa, pb);
		compare_entry(pa, pb); /* after the contents: the folders' mtimes too */
		free(pa);
		free(pb);
	}
	free_names(na, n);
	free_names(nb, m);
}

/* ---- snapshots ---- */
static void
capture(struct fx *f, const char *root, char id[65], struct dd_media_stats *stats)
{
	struct dd_media_opts o = opts(f, root);
	struct dd_snapshot_writer *sw;

	CHECK(dd_snapshot_begin(&sw, f->st));
	if (dd_media_capture(sw, &o, stats) < 0) {
		dd_snapshot_abort(sw);
		fail_msg("capture: %s", dd_error_last());
	}
	CHECK(dd_snapshot_commit(sw, id));
	CHECK(dd_media_commit(&o, id));
}

/* Forced: these tests change the folder on purpose before applying (the check has tests of its own). */
static void
apply(struct fx *f, const char *id, const char *root, struct dd_media_stats *stats)
{
	struct dd_media_opts o = opts(f, root);

	o.force = 1;

	if (dd_media_apply(f->st, id, &o, stats) != 0)
		fail_msg("apply: %s", dd_error_last());
}

/* A folder with every kind of entry the issue names. */
static void
build_sample(const char *dir)
{
	size_t big = 3u << 20;
	uint8_t *data = malloc(big);
	struct gen g = { .seed = 7, .size = big };

	gen_fill(&g, data, 0, big);
	put_text(dir, "café ☕.txt", "unicode\n");
	put_text(dir, "with space.txt", "spaces\n");
	put_file(dir, "run.sh", "#!/bin/sh\n", 10, 0755, 1500000000, 1);
	put_file(dir, "secret", "s", 1, 0600, 1500000001, 999999999);
	put_file(dir, "empty-file", "", 0, 0640, 1400000000, 0);
	put_dir(dir, "empty", 0755);
	put_dir(dir, "a", 0750);
	put_dir(dir, "a/b", 0755);
	put_file(dir, "a/b/big.bin", data, big, 0644, 1600000000, 5);
	put_text(dir, "a/b/small.txt", "small\n");
	put_dir(dir, "a-b", 0755); /* sorts after "a/..." in path order */
	put_text(dir, "a-b/x", "x\n");
	put_link(dir, "rel", "a/b/small.txt");
	put_link(dir, "abs", "/etc/hostname");
	put_link(dir, "dangling", "nowhere/at all");
	set_mtime(dir, "rel", 1300000000, 42);
	set_mtime(dir, "a/b", 1200000000, 7);
	set_mtime(dir, "a", 1200000001, 8);
	set_mtime(dir, "empty", 1200000002, 9);
	set_mtime(dir, "a-b", 1200000003, 10);
	free(data);
}

static void
capture_then_apply_restores_the_folder_exactly(void **state)
{
	struct fx *f = *state;
	struct dd_media_stats cs, as;
	char id[65];

	build_sample(f->a);
	capture(f, f->a, id, &cs);
	assert_int_equal(cs.files, 8);
	assert_int_equal(cs.dirs, 4);
	assert_int_equal(cs.links, 3);
	assert_int_equal(cs.read_files, 8);
	assert_int_equal(cs.bytes, (3u << 20) + 8 + 7 + 10 + 1 + 6 + 2);
	CHECK(dd_media_check(f->st, id));
	apply(f, id, f->b, &as); /* a folder that does not exist yet */
	assert_int_equal(as.files, 8);
	assert_int_equal(as.written_files, 8 + 3);
	assert_int_equal(as.removed, 0);
	compare_trees(f->a, f->b);
}

static void
an_empty_snapshot_id_empties_the_folder(void **state)
{
	struct fx *f = *state;
	struct dd_media_stats as;

	build_sample(f->a);
	apply(f, "", f->a, &as);
	assert_int_equal(as.files, 0);
	assert_int_equal(as.removed, 8 + 4 + 3);
	assert_int_equal(rmdir(f->a), 0); /* empty */
}


static ino_t
inode_of(const char *dir, const char *rel)
{
	char *p = at(dir, rel);
	struct stat st;

	assert_int_equal(lstat(p, &st), 0);
	free(p);
	return st.st_ino;
}

static void
second_capture_reads_only_changed_files(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->a);
	struct dd_media_stats s1, s2, s3;
	char id1[65], id2[65], id3[65], rec[65];

	build_sample(f->a);
	for (int i = 0; i < 50; i++) {
		char name[32], text[32];
		snprintf(name, sizeof(name), "a/f%03d", i);
		snprintf(text, sizeof(text), "file %03d\n", i);
		put_text(f->a, name, text);
	}
	set_mtime(f->a, "a", 1200000001, 8);
	capture(f, f->a, id1, &s1);
	assert_int_equal(s1.read_files, 58);
	assert_int_equal(dd_media_changed(&o, rec), 0);
	assert_string_equal(rec, id1);

	capture(f, f->a, id2, &s2);
	assert_int_equal(s2.read_files, 0); /* nothing read: every entry from the index */
	assert_int_equal(s2.files, 58);
	assert_string_equal(id1, id2);      /* the same listing, the same snapshot */

	/* same size, same mtime, new content: only the ctime (and nanoseconds) tell */
	put_file(f->a, "a/f007", "FILE 007\n", 9, 0644, 1600000000, 123456789);
	set_mtime(f->a, "a", 1200000001, 8);
	assert_int_equal(dd_media_changed(&o, rec), 1);
	assert_string_equal(rec, id1);
	capture(f, f->a, id3, &s3);
	assert_int_equal(s3.read_files, 1);
	assert_int_equal(s3.read_bytes, 9);
	assert_string_not_equal(id1, id3);
	assert_int_equal(dd_media_changed(&o, rec), 0);
	assert_string_equal(rec, id3);
}

static void
changed_sees_added_removed_and_retimed_entries(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->a);
	char id[65], rec[65], *p;

	assert_int_equal(dd_media_changed(&o, rec), DD_MEDIA_NORECORD);
	assert_string_equal(rec, "");
	build_sample(f->a);
	capture(f, f->a, id, NULL);
	assert_int_equal(dd_media_changed(&o, rec), 0);
	put_dir(f->a, "empty/new", 0755); /* added (and its folder's mtime moved) */
	assert_int_equal(dd_media_changed(&o, rec), 1);
	p = at(f->a, "empty/new");
	assert_int_equal(rmdir(p), 0);
	free(p);
	set_mtime(f->a, "empty", 1200000002, 9);
	assert_int_equal(dd_media_changed(&o, rec), 0);
	p = at(f->a, "dangling");
	assert_int_equal(unlink(p), 0); /* gone */
	free(p);
	assert_int_equal(dd_media_changed(&o, rec), 1);
}

static void
restore_over_extra_modified_and_retyped_entries(void **state)
{
	struct fx *f = *state;
	struct dd_media_stats s, as;
	char id[65], *p;
	ino_t keep;

	build_sample(f->a);
	capture(f, f->a, id, &s);
	apply(f, id, f->b, NULL); /* the reference copy */
	keep = inode_of(f->a, "a/b/big.bin");

	put_text(f->a, "with space.txt", "SPACES\n");    /* modified, same size and mtime */
	put_text(f->a, "extra.txt", "extra\n");          /* extra file */
	put_dir(f->a, "extra-dir", 0755);                 /* extra tree, one folder read-only */
	put_dir(f->a, "extra-dir/ro", 0755);
	put_text(f->a, "extra-dir/ro/f", "f\n");
	p = at(f->a, "extra-dir/ro");
	chmod(p, 0555);
	free(p);
	p = at(f->a, "empty");                            /* a folder became a file */
	assert_int_equal(rmdir(p), 0);
	free(p);
	put_text(f->a, "empty", "now a file\n");
	p = at(f->a, "secret");                           /* a file became a folder */
	assert_int_equal(unlink(p), 0);
	free(p);
	put_dir(f->a, "secret", 0700);
	put_text(f->a, "secret/inside", "inside\n");
	p = at(f->a, "rel");                              /* a symlink retargeted */
	assert_int_equal(unlink(p), 0);
	free(p);
	put_link(f->a, "rel", "a-b/x");
	put_text(f->a, ".git-dnadata-tmp-0123456789abcdef", "left by a killed restore");

	apply(f, id, f->a, &as);
	compare_trees(f->b, f->a);
	assert_int_equal(as.written_files, 3);            /* with space.txt, secret, rel */
	assert_int_equal(as.removed, 8);                  /* extra.txt, extra-dir/ro/f, ro, extra-dir, empty, inside, secret, tmp file */
	assert_int_equal(inode_of(f->a, "a/b/big.bin"), keep); /* unchanged: not rewritten */
}

/* ---- hostile listings ---- */
struct hentry {
	const char *name, *type, *mode, *mtime;
};

/* A snapshot whose media listing holds `es` as given (written with the store's own listing writer). */
static void
hostile_snapshot(struct fx *f, const struct hentry *es, size_t n, char id[65])
{
	struct dd_snapshot_writer *sw;
	struct dd_listing_writer *lw;
	int rc;

	CHECK(dd_snapshot_begin(&sw, f->st));
	CHECK(dd_listing_begin(&lw, sw, DD_MEDIA_STREAM, "media"));
	for (size_t i = 0; i < n; i++) {
		struct dd_stream_info e = { 0 };
		e.name = (char *)es[i].name;
		dd_kv_set(&e.attrs, &e.nattrs, "type", es[i].type);
		dd_kv_set(&e.attrs, &e.nattrs, "mode", es[i].mode ? es[i].mode : "644");
		dd_kv_set(&e.attrs, &e.nattrs, "mtime", es[i].mtime ? es[i].mtime : "1600000000.000000000");
		if (!strcmp(es[i].type, "symlink"))
			dd_kv_set(&e.attrs, &e.nattrs, "target", "/");
		if (!strcmp(es[i].type, "file")) {
			struct dd_stream_writer *w;
			CHECK(dd_content_begin(&w, sw));
			CHECK(dd_stream_write(w, "evil\n", 5));
			CHECK(dd_content_end(w, &e));
		}
		CHECK(dd_listing_add(lw, &e));
		dd_kv_free(e.attrs, e.nattrs);
		free(e.chunks);
	}
	CHECK(dd_listing_end(lw, NULL));
	rc = dd_snapshot_commit(sw, id);
	assert_true(rc == 0 || rc == DD_EXISTS);
}

/* The folder holds only "keep", nothing appeared beside it, and applying `id` is refused naming `msg`. */
static void
expect_refused(struct fx *f, const char *id, const char *msg)
{
	struct dd_media_opts o = opts(f, f->a);
	char **names;
	size_t n;

	assert_int_equal(dd_media_check(f->st, id), -1);
	if (!strstr(dd_error_last(), msg))
		fail_msg("check: expected '%s', got '%s'", msg, dd_error_last());
	assert_int_equal(dd_media_apply(f->st, id, &o, NULL), -1);
	if (!strstr(dd_error_last(), msg))
		fail_msg("apply: expected '%s', got '%s'", msg, dd_error_last());
	n = sorted_names(f->a, &names);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "keep");
	free_names(names, n);
	n = sorted_names(f->tmp, &names); /* a, state, store: nothing written beside the folder */
	assert_int_equal(n, 3);
	free_names(names, n);
}

#define REFUSED(msg, ...)                                                                                              \
	do {                                                                                                           \
		const struct hentry es[] = { __VA_ARGS__ };                                                            \
		char id[65];                                                                                           \
		hostile_snapshot(f, es, sizeof(es) / sizeof(*es), id);                                                 \
		expect_refused(f, id, msg);                                                                            \
	} while (0)

static void
hostile_listings_are_refused_before_anything_is_written(void **state)
{
	struct fx *f = *state;

	put_text(f->a, "keep", "mine\n");
	REFUSED("'..' component", { "../x", "file", NULL, NULL }, { "a", "file", NULL, NULL });
	REFUSED("absolute path", { "/etc/x", "file", NULL, NULL });
	REFUSED("through a symlink", { "a", "file", NULL, NULL }, { "l", "symlink", NULL, NULL }, { "l/b", "file", NULL, NULL });
	REFUSED("not inside a listed directory", { "a", "file", NULL, NULL }, { "x/y", "file", NULL, NULL });
	REFUSED("newline", { "a", "file", NULL, NULL }, { "b\nc", "file", NULL, NULL });
	REFUSED("'.' component", { "a", "dir", NULL, NULL }, { "a/./b", "file", NULL, NULL });
	REFUSED("empty path component", { "a", "dir", NULL, NULL }, { "a//b", "file", NULL, NULL });
	REFUSED("unknown type", { "a", "file", NULL, NULL }, { "f", "fifo", NULL, NULL });
	REFUSED("bad mode", { "a", "file", "0999", NULL });
	REFUSED("bad mode", { "a", "file", "17777", NULL });
	REFUSED("bad mode", { "a", "file", "0644", NULL });
	REFUSED("bad mtime", { "a", "file", "644", "1600000000" });
	REFUSED("bad mtime", { "a", "file", "644", "1600000000.5" });
}

static void
duplicate_entries_are_refused(void **state)
{
	struct fx *f = *state;
	struct dd_snapshot_writer *sw;
	struct dd_stream_writer *w;
	struct dd_stream_info e = { .name = "a" };
	struct dd_buf raw = DD_BUF_INIT;
	uint8_t hdr[8] = { 'D', 'D', 'L', 'S', 1, 0, 0, 0 };
	char id[65];
	int rc;

	/* the writer refuses a repeated name, so the listing is written by hand */
	put_text(f->a, "keep", "mine\n");
	dd_kv_set(&e.attrs, &e.nattrs, "mode", "644");
	dd_kv_set(&e.attrs, &e.nattrs, "mtime", "1.000000000");
	dd_kv_set(&e.attrs, &e.nattrs, "type", "dir");
	dd_buf_put(&raw, hdr, sizeof(hdr));
	CHECK(dd_stream_record_encode(&raw, &e));
	CHECK(dd_stream_record_encode(&raw, &e));
	CHECK(dd_snapshot_begin(&sw, f->st));
	CHECK(dd_stream_begin(&w, sw, DD_MEDIA_STREAM));
	CHECK(dd_stream_write(w, raw.ptr, raw.len));
	dd_stream_set_attr(w, "listing", "media");
	dd_stream_set_attr(w, "entries", "2");
	CHECK(dd_stream_end(w));
	rc = dd_snapshot_commit(sw, id);
	assert_true(rc == 0 || rc == DD_EXISTS);
	expect_refused(f, id, "'a'");
	dd_kv_free(e.attrs, e.nattrs);
	dd_buf_release(&raw);
}

static void
a_symlink_planted_in_the_folder_is_replaced_not_followed(void **state)
{
	struct fx *f = *state;
	const struct hentry es[] = { { "d", "dir", "755", NULL }, { "d/f", "file", NULL, NULL } };
	char id[65], *outside = at(f->tmp, "outside"), **names;
	size_t n;

	hostile_snapshot(f, es, 2, id);
	assert_int_equal(mkdir(outside, 0755), 0);
	put_link(f->a, "d", outside); /* the folder tampered with: d leads outside */
	apply(f, id, f->a, NULL);
	n = sorted_names(outside, &names);
	assert_int_equal(n, 0);
	free_names(names, n);
	free(outside);
	outside = at(f->a, "d/f");
	{
		struct stat st;
		char *d = at(f->a, "d");
		assert_int_equal(lstat(d, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(lstat(outside, &st), 0);
		assert_true(S_ISREG(st.st_mode));
		free(d);
	}
	free(outside);
}

/* ---- failures, the index, memory ---- */

/* Root may do anything: drop capabilities from the effective set (kept permitted, so they can be put back). */
static int
cap_effective(uint32_t bits, int on)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (geteuid() != 0)
		return 0;
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	d[0].effective = on ? d[0].effective | (bits & d[0].permitted) : d[0].effective & ~bits;
	return (int)syscall(SYS_capset, &h, d);
}

/* Root reads any file: not without these. */
static int
dac_override(int on)
{
	return cap_effective((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH), on);
}

static void
an_unreadable_file_fails_the_capture_naming_it(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->a);
	struct dd_snapshot_writer *sw;
	struct dd_media_stats s;
	char rec[65], *pending = NULL;
	int rc;

	put_text(f->a, "fine.txt", "fine\n");
	put_file(f->a, "locked.txt", "no", 2, 0000, 1600000000, 0);
	CHECK(dd_snapshot_begin(&sw, f->st));
	assert_int_equal(dac_override(0), 0);
	rc = dd_media_capture(sw, &o, &s);
	assert_int_equal(dac_override(1), 0);
	assert_int_equal(rc, -1);
	if (!strstr(dd_error_last(), "cannot read media file 'locked.txt': Permission denied"))
		fail_msg("got '%s'", dd_error_last());
	assert_null(strchr(dd_error_last(), '\n'));
	dd_snapshot_abort(sw);
	dd_media_discard(&o);
	assert_int_equal(dd_media_changed(&o, rec), DD_MEDIA_NORECORD); /* nothing recorded */
	free(pending);
}

static void
a_missing_folder_is_captured_empty(void **state)
{
	struct fx *f = *state;
	struct dd_media_stats s;
	char id[65];

	capture(f, f->b, id, &s);
	assert_int_equal(s.files + s.dirs + s.links, 0);
	put_text(f->a, "x", "x\n");
	apply(f, id, f->a, NULL);
	assert_int_equal(rmdir(f->a), 0); /* emptied */
}

static void
a_damaged_index_is_ignored_and_everything_read(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->a);
	struct dd_media_stats s;
	char id[65], id2[65], rec[65], *dir, *index;
	DIR *d;
	struct dirent *de;
	struct dd_buf b = DD_BUF_INIT;

	build_sample(f->a);
	capture(f, f->a, id, &s);
	/* flip one byte in the middle of the record */
	dir = dd_path_join(f->sd, "media");
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL && de->d_name[0] == '.')
		;
	assert_non_null(de);
	index = dd_asprintf("%s/%s/index", dir, de->d_name);
	closedir(d);
	CHECK(dd_file_read(&b, index));
	{
		size_t cuts[] = { 0, 4, 8, 215, 216, 217, b.len / 2, b.len - 33, b.len - 32, b.len - 1 };
		for (size_t i = 0; i < sizeof(cuts) / sizeof(*cuts); i++) {
			CHECK(dd_file_write_atomic(index, b.ptr, cuts[i], 0600, 0));
			assert_int_equal(dd_media_changed(&o, rec), DD_MEDIA_NORECORD);
		}
		b.ptr[10] ^= 1; /* the flags: the header's own checksum */
		CHECK(dd_file_write_atomic(index, b.ptr, b.len, 0600, 0));
		assert_int_equal(dd_media_changed(&o, rec), DD_MEDIA_NORECORD);
		b.ptr[10] ^= 1;
		CHECK(dd_file_write_atomic(index, b.ptr, b.len, 0600, 0));
		assert_int_equal(dd_media_changed(&o, rec), 0); /* intact again: trusted */
	}
	b.ptr[b.len / 2] ^= 0x20;
	CHECK(dd_file_write_atomic(index, b.ptr, b.len, 0600, 0));
	assert_int_equal(dd_media_changed(&o, rec), DD_MEDIA_NORECORD);
	capture(f, f->a, id2, &s);
	assert_int_equal(s.read_files, 8); /* nothing trusted */
	assert_string_equal(id, id2);
	dd_buf_release(&b);
	free(index);
	free(dir);
}

static void
leftover_temporary_files_are_left_out_and_removed(void **state)
{
	struct fx *f = *state;
	struct dd_media_stats s;
	char id[65], **names;
	size_t n;

	put_text(f->a, "x", "x\n");
	put_text(f->a, ".git-dnadata-tmp-00000000deadbeef", "half a file");
	capture(f, f->a, id, &s);
	assert_int_equal(s.files, 1);
	apply(f, id, f->a, &s);
	n = sorted_names(f->a, &names);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "x");
	free_names(names, n);
}

static void
apply_sets_the_configured_owner(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->b);
	struct stat st;
	char id[65], *p;
	int rc;

	put_dir(f->a, "d", 0755);
	put_text(f->a, "d/x", "x\n");
	put_link(f->a, "l", "d/x");
	capture(f, f->a, id, NULL);
	o.owner = "65534:65534";
	if (geteuid() == 0) {
		CHECK(dd_media_apply(f->st, id, &o, NULL));
		p = at(f->b, "d/x");
		assert_int_equal(lstat(p, &st), 0);
		assert_int_equal(st.st_uid, 65534);
		assert_int_equal(st.st_gid, 65534);
		free(p);
		p = at(f->b, "l");
		assert_int_equal(lstat(p, &st), 0);
		assert_int_equal(st.st_uid, 65534);
		free(p);
		p = at(f->b, "d");
		assert_int_equal(lstat(p, &st), 0);
		assert_int_equal(st.st_uid, 65534);
		free(p);
		dd_rm_rf(f->b);
	}
	/* not permitted (a user, or root without CAP_CHOWN): one warning, the restore goes on */
	assert_int_equal(cap_effective(1u << CAP_CHOWN, 0), 0);
	rc = dd_media_apply(f->st, id, &o, NULL);
	assert_int_equal(cap_effective(1u << CAP_CHOWN, 1), 0);
	if (rc < 0)
		fail_msg("apply: %s", dd_error_last());
	compare_trees(f->a, f->b);
	/* a user this machine does not know: one warning, the owners left alone, the restore goes on */
	o.owner = "no-such-user-here";
	o.force = 1;
	put_text(f->b, "extra", "x\n");
	CHECK(dd_media_apply(f->st, id, &o, NULL));
	compare_trees(f->a, f->b);
}

#include "asan-no-quarantine.h" /* the memory test measures live memory */

static long
maxrss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* n files in 100 folders (empty files: the walk, the index and the listing, not the chunks, are measured). */
static void
many_files(const char *dir, int n)
{
	for (int i = 0; i < n; i++) {
		char name[64];
		if (i % (n / 100) == 0) {
			snprintf(name, sizeof(name), "folder-%03d", i / (n / 100));
			put_dir(dir, name, 0755);
		}
		snprintf(name, sizeof(name), "folder-%03d/a-rather-long-file-name-%07d.jpg", i / (n / 100), i);
		put_file(dir, name, "", 0, 0644, 1600000000, i);
	}
}

static void
memory_does_not_grow_with_the_number_of_files(void **state)
{
	struct fx *f = *state;
	struct dd_media_stats s;
	char id[65];
	long before, after;

	/* 20,000 files fill the store's bounded buffers (read-ahead, index buffer); 100,000 must cost no more */
	many_files(f->a, 20000);
	capture(f, f->a, id, &s);
	apply(f, id, f->b, &s);
	before = maxrss_kib();
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "rss after 20000 %ld\n", before);
	dd_rm_rf(f->a);
	dd_rm_rf(f->b);
	mkdir(f->a, 0755);
	many_files(f->a, 100000);
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "rss before %ld\n", maxrss_kib());
	capture(f, f->a, id, &s);
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "rss after capture %ld\n", maxrss_kib());
	assert_int_equal(s.files, 100000);
	apply(f, id, f->b, &s);
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "rss after apply %ld\n", maxrss_kib());
	assert_int_equal(s.written_files, 100000);
	after = maxrss_kib();
	/*
	 * A list of the 80,000 more entries (name, attributes, stream info:
	 * ~250 bytes each) would cost ~20 MiB more. What may differ is bounded
	 * and not ours: the store's read-ahead keeps 4 chunk buffers of up to
	 * 2 MiB (plus their sealed copies), filled by however large the
	 * listing's chunks happen to be.
	 */
	if (after - before > 12 * 1024)
		fail_msg("peak memory grew by %ld KiB from 20,000 to 100,000 files", after - before);

	/*
	 * The stated bound (media.h): the names of the widest folder. 50,000
	 * files in one folder: their names (36 bytes, a malloc'd copy and a
	 * pointer each: ~3 MiB, held by the walk of capture and of apply)
	 * may cost that, not a list of entries with their attributes.
	 */
	dd_rm_rf(f->a);
	dd_rm_rf(f->b);
	mkdir(f->a, 0755);
	for (int i = 0; i < 50000; i++) {
		char name[64];
		snprintf(name, sizeof(name), "a-rather-long-file-name-%07d.jpg", i);
		put_file(f->a, name, "", 0, 0644, 1600000000, i);
	}
	capture(f, f->a, id, &s);
	assert_int_equal(s.files, 50000);
	apply(f, id, f->b, &s);
	assert_int_equal(s.written_files, 50000);
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "rss after the flat folder %ld\n", maxrss_kib());
	if (maxrss_kib() - after > 12 * 1024 + 50000 * 100 / 1024)
		fail_msg("peak memory grew by %ld KiB for a flat folder of 50,000 files", maxrss_kib() - after);
}

/* ---- the media stash ---- */
static size_t
private_count(struct fx *f)
{
	char **ids;
	size_t n;

	CHECK(dd_store_private_list(f->st, &ids, &n));
	dd_store_snapshot_ids_free(ids, n);
	return n;
}

static void
stash_of_an_unchanged_folder_is_its_recorded_snapshot(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->a);
	char id[65], sid[65];

	build_sample(f->a);
	capture(f, f->a, id, NULL);
	CHECK(dd_media_stash(f->st, &o, sid));
	assert_string_equal(sid, id);
	assert_int_equal(private_count(f), 0); /* nothing written */
}

static void
stash_of_a_missing_or_empty_folder_is_empty(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->b);
	char sid[65];

	CHECK(dd_media_stash(f->st, &o, sid));
	assert_string_equal(sid, "");
	o.root = f->a;
	CHECK(dd_media_stash(f->st, &o, sid));
	assert_string_equal(sid, "");
	assert_int_equal(private_count(f), 0);
}

static void
stash_of_a_changed_folder_brings_it_back_exactly(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->a);
	struct dd_media_stats s;
	char id[65], sid[65], rec[65];
	char **ids;
	size_t n;

	build_sample(f->a);
	capture(f, f->a, id, NULL);
	put_text(f->a, "with space.txt", "EDITED\n");
	put_text(f->a, "new.txt", "new\n");
	CHECK(dd_media_stash(f->st, &o, sid));
	assert_int_equal(strlen(sid), 64);
	assert_string_not_equal(sid, id);
	CHECK(dd_store_private_list(f->st, &ids, &n));
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], sid);
	dd_store_snapshot_ids_free(ids, n);
	assert_int_equal(dd_media_changed(&o, rec), 0); /* the folder is its stash now */
	assert_string_equal(rec, sid);

	apply(f, sid, f->b, NULL);
	compare_trees(f->a, f->b);                      /* the stash holds the folder exactly */
	apply(f, id, f->a, NULL);                       /* the switch */
	apply(f, sid, f->a, &s);                        /* and back */
	compare_trees(f->b, f->a);
	assert_int_equal(s.written_files, 2);           /* only what differs is written */

	/* the record now names a stash, whose chunks only this cache holds: a capture reads everything */
	capture(f, f->a, id, &s);
	assert_int_equal(s.read_files, s.files);
}

static void
a_dropped_stash_is_not_trusted_by_the_next_stash(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->a);
	struct dd_media_stats s;
	char id[65], sid[65], sid2[65], rec[65];

	build_sample(f->a);
	capture(f, f->a, id, NULL);
	put_text(f->a, "new.txt", "new\n");
	CHECK(dd_media_stash(f->st, &o, sid));
	assert_int_equal(dd_media_changed(&o, rec), 0);
	assert_string_equal(rec, sid);
	/* `stash drop`: the private snapshot goes, the record still names it */
	assert_int_equal(dd_store_private_drop(f->st, sid), 0);
	CHECK(dd_media_stash(f->st, &o, sid2));
	assert_string_equal(sid2, sid);                 /* the same content, written again */
	assert_int_equal(dd_store_has_snapshot(f->st, sid2), 1);
	assert_int_equal(private_count(f), 1);
	apply(f, sid2, f->b, &s);
	compare_trees(f->a, f->b);
}

static void
a_killed_capture_s_temporary_record_is_removed_later(void **state)
{
	struct fx *f = *state;
	char id[65], *dir, *stale, *fresh;
	DIR *d;
	struct dirent *de;
	struct timespec old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };

	put_text(f->a, "x", "x\n");
	capture(f, f->a, id, NULL);
	dir = dd_path_join(f->sd, "media");
	d = opendir(dir);
	while ((de = readdir(d)) != NULL && de->d_name[0] == '.')
		;
	assert_non_null(de);
	stale = dd_asprintf("%s/%s/.index-killed", dir, de->d_name);
	fresh = dd_asprintf("%s/%s/.index-running", dir, de->d_name);
	closedir(d);
	CHECK(dd_file_write_atomic(stale, "x", 1, 0600, 0));
	CHECK(dd_file_write_atomic(fresh, "x", 1, 0600, 0));
	assert_int_equal(utimensat(AT_FDCWD, stale, old, 0), 0);
	capture(f, f->a, id, NULL);
	assert_int_equal(access(stale, F_OK), -1); /* an hour old: a killed run's */
	assert_int_equal(access(fresh, F_OK), 0);  /* may be another run's */
	free(stale);
	free(fresh);
	free(dir);
}

static void
a_name_with_a_newline_fails_the_capture(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->a);
	struct dd_snapshot_writer *sw;
	struct dd_media_stats s;

	put_dir(f->a, "d", 0755);
	put_text(f->a, "d/bad\nname.jpg", "x\n");
	CHECK(dd_snapshot_begin(&sw, f->st));
	assert_int_equal(dd_media_capture(sw, &o, &s), -1);
	if (!strstr(dd_error_last(), "media entry 'd/bad name.jpg' has a newline in its name"))
		fail_msg("got '%s'", dd_error_last());
	dd_snapshot_abort(sw);
	dd_media_discard(&o);
}

/* ---- review fixes (issue 17) ---- */

/* A listing entry as given: attributes, and content when `content` (written with the store's own writers). */
struct rentry {
	const char *name;
	const char *kv[12]; /* key, value pairs, NULL-terminated */
	const char *content;
};

static void
raw_snapshot(struct fx *f, const struct rentry *es, size_t n, char id[65])
{
	struct dd_snapshot_writer *sw;
	struct dd_listing_writer *lw;
	int rc;

	CHECK(dd_snapshot_begin(&sw, f->st));
	CHECK(dd_listing_begin(&lw, sw, DD_MEDIA_STREAM, "media"));
	for (size_t i = 0; i < n; i++) {
		struct dd_stream_info e = { 0 };
		e.name = (char *)es[i].name;
		for (size_t k = 0; es[i].kv[k]; k += 2)
			dd_kv_set(&e.attrs, &e.nattrs, es[i].kv[k], es[i].kv[k + 1]);
		if (es[i].content) {
			struct dd_stream_writer *w;
			CHECK(dd_content_begin(&w, sw));
			CHECK(dd_stream_write(w, es[i].content, strlen(es[i].content)));
			CHECK(dd_content_end(w, &e));
		}
		CHECK(dd_listing_add(lw, &e));
		dd_kv_free(e.attrs, e.nattrs);
		free(e.chunks);
	}
	CHECK(dd_listing_end(lw, NULL));
	rc = dd_snapshot_commit(sw, id);
	assert_true(rc == 0 || rc == DD_EXISTS);
}

#define RAW_REFUSED(msg, ...)                                                                                          \
	do {                                                                                                           \
		const struct rentry es[] = { __VA_ARGS__ };                                                            \
		char id[65];                                                                                           \
		raw_snapshot(f, es, sizeof(es) / sizeof(*es), id);                                                     \
		expect_refused(f, id, msg);                                                                            \
	} while (0)
#define FILE_KV(mode) "type", "file", "mode", mode, "mtime", "1.000000000"

static void
the_other_check_rules_refuse_their_entries(void **state)
{
	struct fx *f = *state;
	char long_target[4200];

	memset(long_target, 'x', sizeof(long_target) - 1);
	long_target[sizeof(long_target) - 1] = 0;
	put_text(f->a, "keep", "mine\n");
	RAW_REFUSED("unknown attribute", { "a", { FILE_KV("644"), "owner", "root", NULL }, "x" });
	RAW_REFUSED("has a target but is not a symlink", { "a", { FILE_KV("644"), "target", "/etc", NULL }, "x" });
	RAW_REFUSED("empty or too long target",
		    { "l", { "type", "symlink", "mode", "777", "mtime", "1.000000000", "target", "", NULL }, NULL });
	RAW_REFUSED("empty or too long target",
		    { "l", { "type", "symlink", "mode", "777", "mtime", "1.000000000", "target", long_target, NULL }, NULL });
	RAW_REFUSED("empty or too long target", { "l", { "type", "symlink", "mode", "777", "mtime", "1.000000000", NULL }, NULL });
	RAW_REFUSED("not a file but has content", { "d", { "type", "dir", "mode", "755", "mtime", "1.000000000", NULL }, "x" });
	RAW_REFUSED("not a file but has content",
		    { "l", { "type", "symlink", "mode", "777", "mtime", "1.000000000", "target", "a", NULL }, "x" });
	/* finding 3: a listing must not grant setuid/setgid */
	RAW_REFUSED("setuid or setgid", { "a", { FILE_KV("4755"), NULL }, "x" });
	RAW_REFUSED("setuid or setgid", { "a", { FILE_KV("2755"), NULL }, "x" });
	/* finding 1: a listed file named like apply's temporary would be removed by the next apply */
	RAW_REFUSED("temporary file", { "d", { "type", "dir", "mode", "755", "mtime", "1.000000000", NULL }, NULL },
		    { "d/.git-dnadata-tmp-0123456789abcdef", { FILE_KV("644"), NULL }, "x" });
}

/* Finding 1: only apply's exact temporary form is left out and removed; other names with its prefix are the user's. */
static void
names_with_the_temporary_prefix_are_captured_and_kept(void **state)
{
	struct fx *f = *state;
	struct dd_media_stats s;
	char id[65];

	put_dir(f->a, ".git-dnadata-tmp-photos", 0755);
	put_text(f->a, ".git-dnadata-tmp-photos/cat.jpg", "meow\n");
	put_dir(f->a, ".git-dnadata-tmp-0123456789abcdef", 0755); /* a folder of that exact form: not ours */
	put_text(f->a, ".git-dnadata-tmp-0123456789abcdef/in", "in\n");
	put_text(f->a, ".git-dnadata-tmp-0123456789ABCDEF", "upper case: not ours\n");
	put_text(f->a, ".git-dnadata-tmp-0123456789abcdef0", "17 hex: not ours\n");
	set_mtime(f->a, ".git-dnadata-tmp-photos", 1200000000, 0);
	set_mtime(f->a, ".git-dnadata-tmp-0123456789abcdef", 1200000000, 0);
	capture(f, f->a, id, &s);
	assert_int_equal(s.files, 4);
	assert_int_equal(s.dirs, 2);
	apply(f, id, f->b, NULL);
	compare_trees(f->a, f->b);
	apply(f, id, f->a, &s); /* nothing of it removed */
	assert_int_equal(s.removed, 0);
	compare_trees(f->b, f->a);
}

/* Finding 2: what is written into the folder after the stash is not overwritten by the switch's apply. */
static void
apply_refuses_a_folder_changed_since_it_was_set_aside(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->a);
	struct dd_media_stats s;
	char id[65], sid[65], *p;

	assert_int_equal(mkdir(f->b, 0755), 0);
	build_sample(f->b);
	capture(f, f->b, id, NULL);
	put_text(f->a, "mine.txt", "mine\n");
	CHECK(dd_media_stash(f->st, &o, sid)); /* the switch sets the folder aside */
	put_text(f->a, "mine.txt", "written during the switch\n");
	assert_int_equal(dd_media_apply(f->st, id, &o, &s), -1);
	assert_int_equal(s.refused, 1);
	if (!strstr(dd_error_last(), "changed during the switch: run `git dnadata restore` again"))
		fail_msg("got '%s'", dd_error_last());
	assert_null(strchr(dd_error_last(), '\n'));
	p = at(f->a, "mine.txt");
	{
		struct dd_buf b = DD_BUF_INIT;
		CHECK(dd_file_read(&b, p));
		assert_int_equal(b.len, strlen("written during the switch\n"));
		dd_buf_release(&b);
	}
	free(p);
	/* as it was set aside: applied; a rollback (force) applies over anything */
	CHECK(dd_media_stash(f->st, &o, sid));
	CHECK(dd_media_apply(f->st, id, &o, &s));
	compare_trees(f->b, f->a);
	put_text(f->a, "extra", "x\n");
	o.force = 1;
	CHECK(dd_media_apply(f->st, sid, &o, &s));
	p = at(f->a, "extra");
	assert_int_equal(access(p, F_OK), -1);
	free(p);
}

/* Finding 2: the record is of one folder: another folder at the same path is "no record". */
static void
a_record_of_another_folder_at_the_path_is_no_record(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->a);
	char id[65], rec[65];

	put_text(f->a, "x", "x\n");
	capture(f, f->a, id, NULL);
	assert_int_equal(dd_media_changed(&o, rec), 0);
	assert_int_equal(rename(f->a, f->b), 0);
	assert_int_equal(mkdir(f->a, 0755), 0);
	put_text(f->a, "x", "x\n");
	assert_int_equal(dd_media_changed(&o, rec), DD_MEDIA_NORECORD);
	assert_string_equal(rec, "");
}

/* Finding 3: a setuid file is captured without the bit (and the listing is applicable). */
static void
setuid_and_setgid_are_not_captured(void **state)
{
	struct fx *f = *state;
	char id[65], *p;
	struct stat st;

	put_file(f->a, "tool", "#!/bin/sh\n", 10, 06755, 1600000000, 0);
	capture(f, f->a, id, NULL);
	CHECK(dd_media_check(f->st, id));
	apply(f, id, f->b, NULL);
	p = at(f->b, "tool");
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	free(p);
}

/* Finding 5: an index left by another store (re-init, another key) is ignored, not fatal. */
static void
an_index_of_another_store_is_ignored(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->a);
	struct dd_snapshot_writer *sw;
	struct dd_store *other;
	struct dd_media_stats s;
	char id[65], *url = dd_asprintf("%s-other", f->url), *sd = dd_asprintf("%s-other", f->sd), *cmd;
	int created;

	build_sample(f->a);
	capture(f, f->a, id, NULL);
	/* a clone whose store was set up again (another key): the folder's record is still there */
	CHECK(dd_store_setup(url, sd, NULL, &created));
	CHECK(dd_store_open(&other, url, sd, 0));
	cmd = dd_asprintf("cp -a '%s/media' '%s/'", f->sd, sd);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	o.statedir = sd;
	CHECK(dd_snapshot_begin(&sw, other));
	if (dd_media_capture(sw, &o, &s) < 0)
		fail_msg("capture into another store: %s", dd_error_last());
	assert_int_equal(s.read_files, 8); /* nothing reused from the other store's record */
	CHECK(dd_snapshot_commit(sw, id));
	CHECK(dd_media_commit(&o, id));
	dd_store_free(other);
	free(url);
	free(sd);
}

/* Findings 9 and 16: sockets and FIFOs are skipped with a warning by capture, left alone by apply. */
static void
fifos_and_sockets_are_skipped_and_left_alone(void **state)
{
	struct fx *f = *state;
	struct dd_media_stats s;
	char id[65], *p;

	put_text(f->a, "x", "x\n");
	p = at(f->a, "pipe");
	assert_int_equal(mkfifo(p, 0644), 0);
	free(p);
	capture(f, f->a, id, &s);
	assert_int_equal(s.skipped, 1);
	assert_int_equal(s.files, 1);
	/* an unlisted folder holding a FIFO: its other entries go, the FIFO and so its folder stay */
	put_dir(f->a, "gone", 0755);
	put_text(f->a, "gone/file", "f\n");
	p = at(f->a, "gone/pipe");
	assert_int_equal(mkfifo(p, 0644), 0);
	free(p);
	apply(f, id, f->a, &s);
	p = at(f->a, "gone/pipe");
	assert_int_equal(access(p, F_OK), 0);
	free(p);
	p = at(f->a, "gone/file");
	assert_int_equal(access(p, F_OK), -1);
	free(p);
	p = at(f->a, "pipe");
	assert_int_equal(access(p, F_OK), 0);
	free(p);
}

/* Finding 16: a snapshot without a media listing leaves the folder alone. */
static void
a_snapshot_without_a_media_listing_leaves_the_folder_alone(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->a);
	struct dd_snapshot_writer *sw;
	struct dd_stream_writer *w;
	char id[65], **names;
	size_t n;
	int rc;

	put_text(f->a, "keep", "mine\n");
	CHECK(dd_snapshot_begin(&sw, f->st));
	CHECK(dd_stream_begin(&w, sw, "db"));
	CHECK(dd_stream_write(w, "data", 4));
	CHECK(dd_stream_end(w));
	rc = dd_snapshot_commit(sw, id);
	assert_true(rc == 0 || rc == DD_EXISTS);
	assert_int_equal(dd_media_check(f->st, id), DD_NOTFOUND);
	assert_int_equal(dd_media_apply(f->st, id, &o, NULL), DD_NOTFOUND);
	n = sorted_names(f->a, &names);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "keep");
	free_names(names, n);
}

/* Finding 10: the configured owner is set on files and links that are already right (root only). */
static void
the_owner_is_set_on_unchanged_entries_too(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->a);
	struct stat st;
	char id[65], *p;

	if (geteuid() != 0)
		skip(); /* not root: the owner cannot be changed */
	put_text(f->a, "x", "x\n");
	put_link(f->a, "l", "x");
	capture(f, f->a, id, NULL);
	o.owner = "65534:65534";
	CHECK(dd_media_apply(f->st, id, &o, NULL));
	p = at(f->a, "x");
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_uid, 65534);
	assert_int_equal(st.st_gid, 65534);
	free(p);
	p = at(f->a, "l");
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_uid, 65534);
	free(p);
}

/* Finding 6: a folder on another file system (a mount point) is neither captured nor entered nor removed. */
static void
a_mount_point_is_skipped_and_left_alone(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->a);
	struct dd_media_stats s;
	char id[65], rec[65], *mnt = at(f->a, "mnt"), *inside;

	/* a private mount namespace (root): the tmpfs is this process's only */
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		free(mnt);
		skip();
	}
	put_text(f->a, "x", "x\n");
	assert_int_equal(mkdir(mnt, 0755), 0);
	assert_int_equal(mount("none", mnt, "tmpfs", 0, NULL), 0);
	put_text(f->a, "mnt/inside", "on another file system\n");
	capture(f, f->a, id, &s);
	assert_int_equal(s.files, 1);
	assert_int_equal(s.dirs, 0);
	assert_int_equal(s.skipped, 1);
	assert_int_equal(dd_media_changed(&o, rec), 0);
	apply(f, "", f->a, &s); /* empty the folder: the mount point and what it holds stay */
	inside = at(f->a, "mnt/inside");
	assert_int_equal(access(inside, F_OK), 0);
	free(inside);
	{
		const struct rentry es[] = { { "mnt", { "type", "dir", "mode", "755", "mtime", "1.000000000", NULL }, NULL },
					     { "mnt/f", { FILE_KV("644"), NULL }, "x" } };
		raw_snapshot(f, es, 2, id);
		o.force = 1;
		assert_int_equal(dd_media_apply(f->st, id, &o, NULL), -1);
		assert_non_null(strstr(dd_error_last(), "'mnt' is a mount point"));
	}
	{
		/* listed as a file: the mount point is not removed to make room for it */
		const struct rentry es[] = { { "mnt", { FILE_KV("644"), NULL }, "x" } };
		raw_snapshot(f, es, 1, id);
		assert_int_equal(dd_media_apply(f->st, id, &o, NULL), -1);
		assert_non_null(strstr(dd_error_last(), "'mnt' is a mount point"));
		inside = at(f->a, "mnt/inside");
		assert_int_equal(access(inside, F_OK), 0);
		free(inside);
	}
	assert_int_equal(umount2(mnt, MNT_DETACH), 0);
	free(mnt);
}

/* Finding 11: a stash whose index cannot be recorded drops the private snapshot it committed (none leaks). */
static void
a_stash_that_cannot_record_its_index_drops_its_snapshot(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->a);
	char id[65], sid[65];

	build_sample(f->a);
	capture(f, f->a, id, NULL);
	put_text(f->a, "new.txt", "new\n");
	fail_index_commit = 1;
	assert_int_equal(dd_media_stash(f->st, &o, sid), -1);
	fail_index_commit = 0;
	assert_non_null(strstr(dd_error_last(), "made to fail"));
	assert_string_equal(sid, "");
	assert_int_equal(private_count(f), 0);
	CHECK(dd_media_stash(f->st, &o, sid)); /* and the next one works */
	assert_int_equal(private_count(f), 1);
}

/* Finding 14: a pending record another capture wrote is not committed as this one's. */
static void
commit_takes_only_its_own_capture_s_pending_record(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->a);
	struct dd_snapshot_writer *sw;
	struct dd_buf first = DD_BUF_INIT;
	char id[65], rec[65], *dir = NULL, *pending;
	DIR *d;
	struct dirent *de;

	put_text(f->a, "x", "x\n");
	CHECK(dd_snapshot_begin(&sw, f->st));
	CHECK(dd_media_capture(sw, &o, NULL));
	dd_snapshot_abort(sw);
	d = opendir(dir = dd_path_join(f->sd, "media"));
	while ((de = readdir(d)) != NULL && de->d_name[0] == '.')
		;
	assert_non_null(de);
	pending = dd_asprintf("%s/%s/pending", dir, de->d_name);
	closedir(d);
	CHECK(dd_file_read(&first, pending)); /* another run's pending record, left behind */
	put_text(f->a, "y", "y\n");
	capture(f, f->a, id, NULL);           /* this run's: committed */
	assert_int_equal(dd_media_changed(&o, rec), 0);
	CHECK(dd_snapshot_begin(&sw, f->st));
	CHECK(dd_media_capture(sw, &o, NULL));
	CHECK(dd_snapshot_commit(sw, id));
	CHECK(dd_file_write_atomic(pending, first.ptr, first.len, 0600, 0)); /* replaced meanwhile */
	CHECK(dd_media_commit(&o, id));
	/* the other record (without y) was not made this folder's: y is not missing from it */
	assert_int_equal(dd_media_changed(&o, rec), 0);
	dd_buf_release(&first);
	free(pending);
	free(dir);
}

/* Finding 13: a temporary record a live run holds (flock) is never removed, however old. */
static void
a_locked_temporary_record_is_kept(void **state)
{
	struct fx *f = *state;
	char id[65], *dir, *held;
	DIR *d;
	struct dirent *de;
	struct timespec old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	int fd;

	put_text(f->a, "x", "x\n");
	capture(f, f->a, id, NULL);
	dir = dd_path_join(f->sd, "media");
	d = opendir(dir);
	while ((de = readdir(d)) != NULL && de->d_name[0] == '.')
		;
	assert_non_null(de);
	held = dd_asprintf("%s/%s/.index-held", dir, de->d_name);
	closedir(d);
	CHECK(dd_file_write_atomic(held, "x", 1, 0600, 0));
	assert_int_equal(utimensat(AT_FDCWD, held, old, 0), 0);
	fd = open(held, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	capture(f, f->a, id, NULL);
	assert_int_equal(access(held, F_OK), 0);
	close(fd);
	capture(f, f->a, id, NULL);
	assert_int_equal(access(held, F_OK), -1);
	free(held);
	free(dir);
}

/* ---- several files at once ---- */

/* mix/f000..f119, small files with a large one every 9th (the workers finish out of order), FAILME in f030 when asked. */
static void
build_mixed(const char *dir, int marked)
{
	size_t big = (3u << 19) + 4096;
	uint8_t *data = malloc(big + 200);
	char rel[32], text[64];

	put_dir(dir, "mix", 0755);
	for (int i = 0; i < 120; i++) {
		struct gen g = { .seed = 100 + (uint64_t)i, .size = big + (uint64_t)i };
		snprintf(rel, sizeof(rel), "mix/f%03d", i);
		if (i == 30 && marked) {
			gen_fill(&g, data, 0, big);
			memcpy(data, "FAILME", 6);
			put_file(dir, rel, data, big, 0644, 1600000000 + i, i);
		} else if (i % 9 == 0) {
			gen_fill(&g, data, 0, big + (size_t)i);
			put_file(dir, rel, data, big + (size_t)i, 0640, 1600000000 + i, i);
		} else {
			snprintf(text, sizeof(text), "small file %d\n", i);
			put_file(dir, rel, text, strlen(text), 0644, 1600000000 + i, i);
		}
	}
	put_text(dir, "z.txt", "last\n");
	set_mtime(dir, "mix", 1500000000, 3);
	free(data);
}

/* A listing entry of `dir`/`rel` with its attributes as a capture writes them, its content stored serially. */
static void
serial_entry(struct dd_snapshot_writer *sw, struct dd_listing_writer *lw, const char *dir, const char *rel)
{
	struct dd_stream_info e = { 0 };
	struct dd_stream_writer *w;
	struct dd_buf content = DD_BUF_INIT;
	char *p = at(dir, rel), b[48];
	struct stat st;

	assert_int_equal(lstat(p, &st), 0);
	e.name = strdup(rel);
	dd_kv_set(&e.attrs, &e.nattrs, "type", S_ISDIR(st.st_mode) ? "dir" : "file");
	snprintf(b, sizeof(b), "%o", (unsigned)(st.st_mode & 07777));
	dd_kv_set(&e.attrs, &e.nattrs, "mode", b);
	media_format_mtime(b, &st.st_mtim);
	dd_kv_set(&e.attrs, &e.nattrs, "mtime", b);
	if (S_ISREG(st.st_mode)) {
		CHECK(dd_file_read(&content, p));
		CHECK(dd_content_begin(&w, sw));
		CHECK(dd_stream_write(w, content.ptr, content.len));
		CHECK(dd_content_end(w, &e));
		dd_buf_release(&content);
	}
	CHECK(dd_listing_add(lw, &e));
	dd_stream_info_clear(&e);
	free(p);
}

/* The snapshot of the mixed tree built one entry after the other, in path order, on this thread. */
static void
serial_snapshot(struct fx *f, const char *dir, char id[65])
{
	struct dd_snapshot_writer *sw;
	struct dd_listing_writer *lw;
	char **names, rel[64];
	size_t n;
	char *mix = at(dir, "mix");

	CHECK(dd_snapshot_begin(&sw, f->st));
	CHECK(dd_listing_begin(&lw, sw, DD_MEDIA_STREAM, "media"));
	serial_entry(sw, lw, dir, "mix");
	n = sorted_names(mix, &names);
	for (size_t i = 0; i < n; i++) {
		snprintf(rel, sizeof(rel), "mix/%s", names[i]);
		serial_entry(sw, lw, dir, rel);
	}
	serial_entry(sw, lw, dir, "z.txt");
	CHECK(dd_listing_end(lw, NULL));
	CHECK(dd_snapshot_commit(sw, id));
	free_names(names, n);
	free(mix);
}

/* The local records of every folder: gone, so the next capture reads every file again. */
static void
forget_records(struct fx *f)
{
	char *dir = at(f->sd, "media");

	dd_rm_rf(dir);
	free(dir);
}

static void
parallel_capture_gives_the_serial_snapshot_id(void **state)
{
	struct fx *f = *state;
	struct dd_media_stats s;
	char serial[65], id[65], again[65];

	build_mixed(f->a, 0);
	serial_snapshot(f, f->a, serial);
	capture(f, f->a, id, &s);
	assert_int_equal(s.read_files, 121);
	assert_string_equal(id, serial);
	for (int run = 0; run < 3; run++) {
		forget_records(f);
		capture(f, f->a, again, &s);
		assert_int_equal(s.read_files, 121);
		assert_string_equal(again, serial);
	}
	/* a few files changed: read among reused ones (queued complete), still in path order */
	put_text(f->a, "mix/f005", "changed small\n");
	put_text(f->a, "mix/f100", "changed too\n");
	put_text(f->a, "mix/f018", "the large one, now small\n");
	serial_snapshot(f, f->a, serial);
	capture(f, f->a, id, &s);
	assert_int_equal(s.read_files, 3);
	assert_string_equal(id, serial);
	/* restored by several workers: the same folder, whose capture is the same snapshot again */
	apply(f, id, f->b, NULL);
	compare_trees(f->a, f->b);
	capture(f, f->b, again, NULL);
	assert_string_equal(again, serial);
}

/* No temporary file of apply anywhere under `dir`. */
static void
assert_no_tmp(const char *dir)
{
	char **names;
	size_t n = sorted_names(dir, &names);

	for (size_t i = 0; i < n; i++) {
		char *p = at(dir, names[i]);
		struct stat st;
		if (!strncmp(names[i], MEDIA_TMP_PREFIX, strlen(MEDIA_TMP_PREFIX)))
			fail_msg("temporary file left: %s", p);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			assert_no_tmp(p);
		free(p);
	}
	free_names(names, n);
}

static void
a_failing_capture_worker_fails_in_one_line_and_nothing_is_recorded(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->a);
	struct dd_snapshot_writer *sw;
	struct dd_media_stats s;
	char rec[65], id[65], **ids;
	size_t n;
	int rc;

	build_mixed(f->a, 1);
	CHECK(dd_snapshot_begin(&sw, f->st));
	fail_marked_write = 1;
	rc = dd_media_capture(sw, &o, &s);
	fail_marked_write = 0;
	assert_int_equal(rc, -1);
	if (!strstr(dd_error_last(), "storing media file 'mix/f030'") || !strstr(dd_error_last(), "made to fail"))
		fail_msg("got '%s'", dd_error_last());
	assert_null(strchr(dd_error_last(), '\n'));
	assert_true(s.files <= 30); /* nothing after the failing entry was added */
	dd_snapshot_abort(sw);
	dd_media_discard(&o);
	assert_int_equal(dd_media_changed(&o, rec), DD_MEDIA_NORECORD);
	CHECK(dd_store_list_snapshots(f->st, &ids, &n));
	assert_int_equal(n, 0);
	dd_store_snapshot_ids_free(ids, n);
	capture(f, f->a, id, &s); /* and the next run, not made to fail, reads everything */
	assert_int_equal(s.read_files, 121);
}

static void
a_failing_restore_worker_fails_in_one_line_and_leaves_no_temporary_file(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->b);
	struct dd_media_stats s;
	char id[65];
	int rc;

	build_mixed(f->a, 1);
	capture(f, f->a, id, NULL);
	o.force = 1;
	fail_marked_read = 1;
	rc = dd_media_apply(f->st, id, &o, &s);
	fail_marked_read = 0;
	assert_int_equal(rc, -1);
	if (!strstr(dd_error_last(), "made to fail"))
		fail_msg("got '%s'", dd_error_last());
	assert_null(strchr(dd_error_last(), '\n'));
	assert_no_tmp(f->b);
	apply(f, id, f->b, &s);
	compare_trees(f->a, f->b);
	assert_no_tmp(f->b);
}


/*
 * Folders of many files (several batches: the finisher syncs, renames and
 * sets one batch's folders while the workers write the next): every
 * folder's mode and mtime end up as listed (set after the renames into
 * it), and with two failing files in different batches the first in path
 * order is the one reported, no temporary file is left, a rerun completes.
 */
static void
build_folders(const char *dir, int marked)
{
	char rel[32], text[64];

	for (int d = 0; d < 5; d++) {
		snprintf(rel, sizeof(rel), "d%d", d);
		put_dir(dir, rel, 0750);
		for (int i = 0; i < 130; i++) {
			snprintf(rel, sizeof(rel), "d%d/f%03d", d, i);
			if (marked && ((d == 1 && i == 5) || (d == 4 && i == 100)))
				snprintf(text, sizeof(text), "FAILME-%d\n", d);
			else
				snprintf(text, sizeof(text), "file %d of folder %d\n", i, d);
			put_file(dir, rel, text, strlen(text), 0644, 1600000000 + i, i);
		}
		if (d == 2) {
			put_dir(dir, "d2/sub", 0700);
			put_text(dir, "d2/sub/x", "x\n");
			set_mtime(dir, "d2/sub", 1400000000, 7);
		}
		snprintf(rel, sizeof(rel), "d%d", d);
		set_mtime(dir, rel, 1500000000 + d, d);
	}
}

static void
a_restore_of_many_batches_sets_folders_and_reports_the_first_failure(void **state)
{
	struct fx *f = *state;
	struct dd_media_opts o = opts(f, f->b);
	struct dd_media_stats s;
	char id[65];
	int rc;

	build_folders(f->a, 0);
	capture(f, f->a, id, NULL);
	apply(f, id, f->b, &s);
	compare_trees(f->a, f->b);
	assert_int_equal(s.written_files, 651);
	assert_no_tmp(f->b);

	dd_rm_rf(f->b);
	dd_rm_rf(f->a);
	mkdir(f->a, 0755);
	build_folders(f->a, 1);
	capture(f, f->a, id, NULL);
	o.force = 1;
	fail_marked_read = 1;
	rc = dd_media_apply(f->st, id, &o, &s);
	fail_marked_read = 0;
	assert_int_equal(rc, -1);
	if (!strstr(dd_error_last(), "made to fail (FAILME-1)"))
		fail_msg("got '%s'", dd_error_last());
	assert_null(strchr(dd_error_last(), '\n'));
	assert_no_tmp(f->b);
	apply(f, id, f->b, &s);
	compare_trees(f->a, f->b);
	assert_no_tmp(f->b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		/* first: the peak memory of the process is still this test's own */
		cmocka_unit_test_setup_teardown(memory_does_not_grow_with_the_number_of_files, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(capture_then_apply_restores_the_folder_exactly, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(a_restore_of_many_batches_sets_folders_and_reports_the_first_failure,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(an_empty_snapshot_id_empties_the_folder, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(second_capture_reads_only_changed_files, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(changed_sees_added_removed_and_retimed_entries, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(restore_over_extra_modified_and_retyped_entries, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(hostile_listings_are_refused_before_anything_is_written, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(duplicate_entries_are_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(a_symlink_planted_in_the_folder_is_replaced_not_followed, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(an_unreadable_file_fails_the_capture_naming_it, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(a_missing_folder_is_captured_empty, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(a_name_with_a_newline_fails_the_capture, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(a_damaged_index_is_ignored_and_everything_read, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(leftover_temporary_files_are_left_out_and_removed, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(a_killed_capture_s_temporary_record_is_removed_later, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(apply_sets_the_configured_owner, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(stash_of_an_unchanged_folder_is_its_recorded_snapshot, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(stash_of_a_missing_or_empty_folder_is_empty, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(stash_of_a_changed_folder_brings_it_back_exactly, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(a_dropped_stash_is_not_trusted_by_the_next_stash, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(the_other_check_rules_refuse_their_entries, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(names_with_the_temporary_prefix_are_captured_and_kept, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(apply_refuses_a_folder_changed_since_it_was_set_aside, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(a_record_of_another_folder_at_the_path_is_no_record, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(setuid_and_setgid_are_not_captured, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(an_index_of_another_store_is_ignored, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(fifos_and_sockets_are_skipped_and_left_alone, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(a_snapshot_without_a_media_listing_leaves_the_folder_alone, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(the_owner_is_set_on_unchanged_entries_too, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(a_mount_point_is_skipped_and_left_alone, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(a_stash_that_cannot_record_its_index_drops_its_snapshot, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(commit_takes_only_its_own_capture_s_pending_record, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(a_locked_temporary_record_is_kept, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(parallel_capture_gives_the_serial_snapshot_id, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(a_failing_capture_worker_fails_in_one_line_and_nothing_is_recorded,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(a_failing_restore_worker_fails_in_one_line_and_leaves_no_temporary_file,
						fx_setup, fx_teardown),

	};
	if (sodium_init() < 0)
		return 1;
	if (getenv("TEST_ONLY"))
		cmocka_set_test_filter(getenv("TEST_ONLY"));
	dd_log_set_verbosity(getenv("TEST_VERBOSE") ? DD_VERBOSE : DD_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
