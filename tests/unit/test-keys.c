/*
 * tests/unit/test-keys.c: store keys and the strict parsers of stored
 * bytes: wrong key, wrong passphrase, loose key file permissions, key
 * export/import/passwd, tampered config, key file / object / manifest
 * parsers under truncation and bit flips.
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store-testlib.h"
#include "cmd/prompt.h"
#include "store/internal.h"
#include "store/store-keys.h"
#include "util/err.h"
#include "util/log.h"

/* The store options of a file:// store at url with the state folder sd. */
#define SO(u, sd) (&(struct dd_store_opts){ .url = (u), .statedir = (sd), .path_style = -1, .retries = -1 })

struct fx {
	char *tmp, *sd, *sd2, *url, *root;
};

static int
fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->tmp = make_tmpdir();
	f->sd = dd_path_join(f->tmp, "state");
	f->sd2 = dd_path_join(f->tmp, "state2");
	f->root = dd_path_join(f->tmp, "store");
	f->url = dd_asprintf("file://%s", f->root);
	dd_keyfile_set_fast_for_tests(1);
	*state = f;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;

	dd_rm_rf(f->tmp);
	free(f->tmp), free(f->sd), free(f->sd2), free(f->url), free(f->root), free(f);
	return 0;
}

static void
contains(const char *hay, const char *needle)
{
	if (!hay || !strstr(hay, needle))
		fail_msg("expected '%s' in '%s'", needle, hay ? hay : "(null)");
}

static void
same_key(const char *sd1, const char *sd2)
{
	uint8_t a[32], b[32];
	char *p1 = dd_path_join(sd1, "key"), *p2 = dd_path_join(sd2, "key");

	assert_int_equal(dd_key_read_file(a, p1), 0);
	assert_int_equal(dd_key_read_file(b, p2), 0);
	assert_memory_equal(a, b, 32);
	free(p1), free(p2);
}

static void
new_store_makes_a_0600_key_and_a_key_file(void **state)
{
	struct fx *f = *state;
	int created;
	struct stat st;
	char *kp = dd_path_join(f->sd, "key");

	assert_int_equal(dd_store_setup(f->url, f->sd, "correct horse", &created), 0);
	assert_int_equal(created, 1);
	assert_int_equal(stat(kp, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(dd_store_key_count(SO(f->url, f->sd)), 1);
	/* a second setup adopts it */
	assert_int_equal(dd_store_setup(f->url, f->sd, NULL, &created), 0);
	assert_int_equal(created, 0);
	free(kp);
}

static void
another_clone_joins_with_the_passphrase(void **state)
{
	struct fx *f = *state;
	int created;

	assert_int_equal(dd_store_setup(f->url, f->sd, "correct horse", &created), 0);
	assert_int_equal(dd_store_setup(f->url, f->sd2, "correct horse", &created), 0);
	assert_int_equal(created, 0);
	same_key(f->sd, f->sd2);
}

static void
wrong_passphrase_is_reported_as_such(void **state)
{
	struct fx *f = *state;
	int created;
	char *kp = dd_path_join(f->sd2, "key");

	assert_int_equal(dd_store_setup(f->url, f->sd, "correct horse", &created), 0);
	assert_int_equal(dd_store_setup(f->url, f->sd2, "battery staple", &created), -1);
	contains(dd_error_last(), "wrong passphrase");
	assert_false(dd_path_exists(kp));
	assert_int_equal(dd_store_key_import_passphrase(SO(f->url, f->sd2), "wrong"), -1);
	contains(dd_error_last(), "wrong passphrase");
	free(kp);
}

static void
wrong_key_is_reported_as_another_key_not_corruption(void **state)
{
	struct fx *f = *state;
	struct dd_store *st;
	int created;
	char *other = dd_asprintf("%s/other", f->tmp);

	assert_int_equal(dd_store_setup(f->url, f->sd, NULL, &created), 0);
	assert_int_equal(dd_store_setup(other, f->sd2, NULL, &created), 0);
	assert_int_equal(dd_store_open(&st, f->url, f->sd2, 0), -1);
	contains(dd_error_last(), "belongs to another key (id ");
	contains(dd_error_hint(), "git dnadata key import");
	assert_null(strstr(dd_error_last(), "damaged"));
	/* setup on the foreign store without a passphrase says the same */
	assert_int_equal(dd_store_setup(f->url, f->sd2, NULL, &created), -1);
	contains(dd_error_last(), "belongs to another key");
	free(other);
}

static void
key_readable_by_others_is_refused_with_the_fix(void **state)
{
	struct fx *f = *state;
	struct dd_store *st;
	int created;
	char *kp = dd_path_join(f->sd, "key");

	assert_int_equal(dd_store_setup(f->url, f->sd, NULL, &created), 0);
	assert_int_equal(chmod(kp, 0640), 0);
	assert_int_equal(dd_store_open(&st, f->url, f->sd, 0), -1);
	contains(dd_error_last(), "readable by other users");
	contains(dd_error_hint(), "chmod 600");
	assert_int_equal(chmod(kp, 0600), 0);
	assert_int_equal(dd_store_open(&st, f->url, f->sd, 0), 0);
	dd_store_free(st);
	free(kp);
}

/*
 * close() is wrapped (-Wl,--wrap=close in Makefile.am): when armed, the next
 * close() renames `swap_from` over `swap_to`, i.e. someone swaps the key
 * file between the permission check and the read.
 */
static const char *swap_from, *swap_to;
int __real_close(int fd);
int __wrap_close(int fd);

int
__wrap_close(int fd)
{
	if (swap_from) {
		const char *from = swap_from;
		swap_from = NULL;
		if (rename(from, swap_to) < 0)
			fail_msg("rename %s: %s", from, strerror(errno));
	}
	return __real_close(fd);
}

static void
key_file_is_read_from_the_descriptor_whose_mode_was_checked(void **state)
{
	struct fx *f = *state;
	char *kp = dd_path_join(f->sd, "key"), *evil = dd_path_join(f->tmp, "evil");
	uint8_t mine[32], theirs[32], got[32];

	memset(mine, 0x11, 32);
	memset(theirs, 0x22, 32);
	assert_int_equal(dd_key_write_file(kp, mine, 0), 0);
	assert_int_equal(dd_key_write_file(evil, theirs, 0), 0);
	assert_int_equal(chmod(evil, 0666), 0);
	swap_from = evil, swap_to = kp;
	assert_int_equal(dd_key_read_file(got, kp), 0);
	swap_from = NULL;
	assert_memory_equal(got, mine, 32);
	/* the swapped-in file itself is refused */
	assert_int_equal(dd_key_read_file(got, kp), -1);
	contains(dd_error_last(), "readable by other users");
	free(kp), free(evil);
}

/*
 * realloc() and free() are wrapped too: while `secret` is set, a block
 * that our code reallocates or frees with that text still in it is a copy
 * of the secret left behind in freed memory (and in a core dump).
 */
static const char *secret;
static int secret_left_in_freed_memory;
void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);
void __real_free(void *p);
void __wrap_free(void *p);

static void
scan_block(void *p)
{
	size_t n = p ? malloc_usable_size(p) : 0, sl = secret ? strlen(secret) : 0;

	if (sl && n >= sl && memmem(p, n, secret, sl))
		secret_left_in_freed_memory = 1;
}

void *
__wrap_realloc(void *p, size_t n)
{
	scan_block(p);
	return __real_realloc(p, n);
}

void
__wrap_free(void *p)
{
	scan_block(p);
	__real_free(p);
}

/* A passphrase typed on a terminal (a pty here) leaves no copy in freed memory. */
/*
 * Run child() in a new process whose controlling terminal is a fresh pty;
 * type `typed` once the "Passphrase: " prompt shows (echo is off by then;
 * TCSAFLUSH drops earlier input). Returns the child's exit status.
 */
static int
prompt_on_pty(int (*child)(void), const char *typed)
{
	char ttyout[256];
	size_t got = 0;
	int m, status;
	pid_t pid;

	m = posix_openpt(O_RDWR | O_NOCTTY);
	assert_true(m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int s;
		alarm(20);
		setsid();
		s = open(ptsname(m), O_RDWR); /* our controlling terminal now */
		if (s < 0)
			_exit(4);
		dup2(s, 0), dup2(s, 1), dup2(s, 2);
		_exit(child());
	}
	while (!memmem(ttyout, got, "Passphrase: ", 12) && got < sizeof(ttyout)) {
		ssize_t n = read(m, ttyout + got, sizeof(ttyout) - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	assert_non_null(memmem(ttyout, got, "Passphrase: ", 12));
	assert_int_equal(write(m, typed, strlen(typed)), (ssize_t)strlen(typed));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(m);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static const char long_phrase[] = "correct horse battery staple, and a long sentence after it "
				  "so that a growing buffer would have to move twice";

static int
prompt_and_check_freed_memory(void)
{
	struct dd_buf pass = DD_BUF_INIT;
	int r;

	secret = "battery staple, and a long";
	r = dd_prompt_passphrase(&pass, "DD_TEST_UNSET_PASSPHRASE", "Passphrase: ", 0);
	secret = NULL;
	if (r != 0 || strcmp(dd_buf_cstr(&pass), long_phrase))
		return 2;
	dd_buf_release_secret(&pass);
	return secret_left_in_freed_memory ? 3 : 0;
}

static void
typed_passphrase_leaves_no_copy_in_freed_memory(void **state)
{
	char typed[sizeof(long_phrase) + 1];
	int rc;

	(void)state;
	snprintf(typed, sizeof(typed), "%s\n", long_phrase);
	rc = prompt_on_pty(prompt_and_check_freed_memory, typed);
	if (rc == 3)
		fail_msg("the passphrase was left in freed memory");
	assert_int_equal(rc, 0);
}

/* Every write() of the library, failing a lone "\n" while `fail_newline` (linked with --wrap=write). */
ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
static int fail_newline;

ssize_t
__wrap_write(int fd, const void *buf, size_t n)
{
	if (fail_newline && n == 1 && ((const char *)buf)[0] == '\n') {
		errno = EIO;
		return -1;
	}
	return __real_write(fd, buf, n);
}

/* A terminal that cannot take the newline after the passphrase fails the prompt with a reason. */
static int
prompt_with_a_failing_newline(void)
{
	struct dd_buf pass = DD_BUF_INIT;
	int r;

	fail_newline = 1;
	r = dd_prompt_passphrase(&pass, "DD_TEST_UNSET_PASSPHRASE", "Passphrase: ", 0);
	fail_newline = 0;
	dd_buf_release_secret(&pass);
	if (r != -1)
		return 2;
	return dd_error_last() && strstr(dd_error_last(), "cannot write to the terminal") ? 0 : 3;
}

static void
terminal_write_failure_after_the_passphrase_is_an_error(void **state)
{
	int rc;

	(void)state;
	rc = prompt_on_pty(prompt_with_a_failing_newline, "typed\n");
	if (rc == 2)
		fail_msg("the prompt succeeded although the terminal refused the newline");
	assert_int_equal(rc, 0);
}

static void
export_and_import_move_the_key(void **state)
{
	struct fx *f = *state;
	struct dd_store *st;
	int created;
	char *ex = dd_path_join(f->tmp, "exported"), *other = dd_asprintf("%s/other", f->tmp);
	struct stat sb;

	assert_int_equal(dd_store_setup(f->url, f->sd, NULL, &created), 0);
	assert_int_equal(dd_store_key_export(f->sd, ex), 0);
	assert_int_equal(stat(ex, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(dd_store_key_export(f->sd, ex), -1); /* never overwrites */
	/* a machine that has another key: import keeps a backup and switches */
	assert_int_equal(dd_store_setup(other, f->sd2, NULL, &created), 0);
	assert_int_equal(dd_store_key_import_file(SO(f->url, f->sd2), ex), 0);
	same_key(f->sd, f->sd2);
	assert_int_equal(dd_store_open(&st, f->url, f->sd2, 0), 0);
	dd_store_free(st);
	/* and the other store's key is refused for this store */
	char *ex2 = dd_path_join(f->tmp, "exported2");
	char *bakdir = f->sd2;
	(void)bakdir;
	assert_int_equal(dd_store_setup(other, f->sd, NULL, &created), -1);
	free(ex2), free(ex), free(other);
}

static void
passwd_replaces_the_key_file(void **state)
{
	struct fx *f = *state;
	int created;

	assert_int_equal(dd_store_setup(f->url, f->sd, "old pass", &created), 0);
	assert_int_equal(dd_store_key_passwd(SO(f->url, f->sd), "not it", "new pass"), 1);
	contains(dd_error_last(), "wrong passphrase");
	assert_int_equal(dd_store_key_count(SO(f->url, f->sd)), 1);
	assert_int_equal(dd_store_key_passwd(SO(f->url, f->sd), "old pass", "new pass"), 0);
	assert_int_equal(dd_store_key_count(SO(f->url, f->sd)), 1);
	assert_int_equal(dd_store_key_import_passphrase(SO(f->url, f->sd2), "old pass"), -1);
	assert_int_equal(dd_store_key_import_passphrase(SO(f->url, f->sd2), "new pass"), 0);
	same_key(f->sd, f->sd2);
	/* a store made without a passphrase gets its first key file */
	char *u2 = dd_asprintf("%s/s2", f->tmp), *sd3 = dd_path_join(f->tmp, "s3");
	assert_int_equal(dd_store_setup(u2, sd3, NULL, &created), 0);
	assert_int_equal(dd_store_key_count(SO(u2, sd3)), 0);
	assert_int_equal(dd_store_key_passwd(SO(u2, sd3), NULL, "first"), 0);
	assert_int_equal(dd_store_key_count(SO(u2, sd3)), 1);
	free(u2), free(sd3);
}

static void
tampered_config_is_detected(void **state)
{
	struct fx *f = *state;
	struct dd_store *st;
	struct dd_buf b = DD_BUF_INIT;
	int created;
	char *cp = dd_path_join(f->root, "config");

	assert_int_equal(dd_store_setup(f->url, f->sd, NULL, &created), 0);
	assert_int_equal(dd_file_read(&b, cp), 0);
	/* setup leaves the store's config, byte for byte, and its URL in the cache (FORMAT.md §3.5) */
	struct dd_buf c = DD_BUF_INIT;
	char *cached = dd_path_join(f->sd, "cache/config"), *cached_url = dd_path_join(f->sd, "cache/config-url");
	char *url_line = dd_asprintf("%s\n", f->url);
	assert_int_equal(dd_file_read(&c, cached), 0);
	assert_true(c.len == b.len && !memcmp(c.ptr, b.ptr, b.len));
	dd_buf_clear(&c);
	assert_int_equal(dd_file_read(&c, cached_url), 0);
	assert_true(c.len == strlen(url_line) && !memcmp(c.ptr, url_line, c.len));
	dd_buf_release(&c);
	free(url_line), free(cached_url);
	char *at = strstr(b.ptr, "chunker fastcdc ");
	assert_non_null(at);
	at[16] = at[16] == '9' ? '8' : (char)(at[16] + 1); /* the min size, still a valid number */
	unlink(cp);
	assert_int_equal(dd_file_write_atomic(cp, b.ptr, b.len, 0444, 0), 0);
	/* the cache's good copy is what later opens trust: without it, they read the store's */
	assert_int_equal(unlink(cached), 0);
	assert_int_equal(dd_store_open(&st, f->url, f->sd, 0), -1);
	contains(dd_error_last(), "tampered");
	dd_buf_release(&b);
	free(cached);
	free(cp);
}

/* A config whose key-id line alone was changed is damage, not another key's store (FORMAT.md §3.3). */
static void
changed_key_id_line_is_damage_not_another_key(void **state)
{
	struct fx *f = *state;
	struct dd_store *st;
	struct dd_buf b = DD_BUF_INIT;
	int created;
	char *cp = dd_path_join(f->root, "config"), *cached = dd_path_join(f->sd, "cache/config"), *at;

	assert_int_equal(dd_store_setup(f->url, f->sd, NULL, &created), 0);
	assert_int_equal(dd_file_read(&b, cp), 0);
	at = strstr(b.ptr, "key-id ");
	assert_non_null(at);
	at[7] = at[7] == '0' ? '1' : '0'; /* another valid key id */
	unlink(cp);
	assert_int_equal(dd_file_write_atomic(cp, b.ptr, b.len, 0444, 0), 0);
	assert_int_equal(unlink(cached), 0);
	assert_int_equal(dd_store_open(&st, f->url, f->sd, 0), -1);
	contains(dd_error_last(), "damaged or tampered with (its key-id line was changed)");
	assert_null(strstr(dd_error_last(), "another key"));
	dd_buf_release(&b);
	free(cached);
	free(cp);
}

static void
key_files_are_wrapped_with_moderate_argon2id(void **state)
{
	struct dd_buf b = DD_BUF_INIT;
	struct dd_keyfile kf;
	uint8_t master[32] = { 9 }, out[32];

	dd_keyfile_set_fast_for_tests(0);
	assert_int_equal(dd_keyfile_wrap(&b, master, "pw"), 0);
	dd_keyfile_set_fast_for_tests(1);
	assert_int_equal(b.len, DD_KEYFILE_SIZE);
	assert_int_equal(dd_keyfile_parse(&kf, b.ptr, b.len), 0);
	assert_int_equal(kf.opslimit, crypto_pwhash_OPSLIMIT_MODERATE);
	assert_int_equal(kf.memlimit, crypto_pwhash_MEMLIMIT_MODERATE);
	assert_int_equal(dd_keyfile_unwrap(out, &kf, "pw"), 0);
	assert_memory_equal(out, master, 32);
	dd_buf_release(&b);
}

static void
key_file_parser_refuses_malformed_input(void **state)
{
	struct dd_buf b = DD_BUF_INIT;
	struct dd_keyfile kf;
	uint8_t master[32] = { 9 }, out[32];

	assert_int_equal(dd_keyfile_wrap(&b, master, "pw"), 0);
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(dd_keyfile_parse(&kf, b.ptr, n), -1);
	b.ptr[20] = 0x7f; /* absurd memlimit */
	assert_int_equal(dd_keyfile_parse(&kf, b.ptr, b.len), -1);
	b.ptr[20] = 0;
	assert_int_equal(dd_keyfile_wrap(&b, master, "pw"), 0);
	b.ptr[100] ^= 1; /* sealed key */
	assert_int_equal(dd_keyfile_parse(&kf, b.ptr, b.len), 0);
	assert_int_equal(dd_keyfile_unwrap(out, &kf, "pw"), 1);
	/* plain key files */
	assert_int_equal(dd_key_parse(out, "dnadata-key 1\nkey 00\n", 21, "x"), -1);
	assert_int_equal(dd_key_parse(out, "dnadata-key 2\nkey 00\n", 21, "x"), -1);
	contains(dd_error_last(), "version");
	dd_buf_release(&b);
}

static void
object_opener_refuses_damage(void **state)
{
	uint8_t master[32] = { 3 }, id[32], other[32];
	struct dd_keys *k = dd_keys_new(master);
	struct dd_buf obj = DD_BUF_INIT, out = DD_BUF_INIT;
	char text[5000];

	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "abcabcabd"[i % 9];
	dd_id_compute(id, k, text, sizeof(text));
	assert_int_equal(dd_object_seal(&obj, k, DD_OBJ_DATA, id, text, sizeof(text), NULL), 0);
	assert_true(obj.len < sizeof(text)); /* compressed */
	assert_int_equal(dd_object_open(&out, k, DD_OBJ_DATA, id, obj.ptr, obj.len, 1 << 20, NULL), 0);
	assert_memory_equal(out.ptr, text, sizeof(text));
	for (size_t n = 0; n < obj.len; n++)
		assert_int_equal(dd_object_open(&out, k, DD_OBJ_DATA, id, obj.ptr, n, 1 << 20, NULL), -1);
	for (size_t i = 0; i < obj.len; i++) {
		obj.ptr[i] ^= 4;
		assert_int_equal(dd_object_open(&out, k, DD_OBJ_DATA, id, obj.ptr, obj.len, 1 << 20, NULL), -1);
		obj.ptr[i] ^= 4;
	}
	memcpy(other, id, 32);
	other[0] ^= 1;
	assert_int_equal(dd_object_open(&out, k, DD_OBJ_DATA, other, obj.ptr, obj.len, 1 << 20, NULL), -1);
	assert_int_equal(dd_object_open(&out, k, DD_OBJ_MANIFEST, id, obj.ptr, obj.len, 1 << 20, NULL), -1);
	assert_int_equal(dd_object_open(&out, k, DD_OBJ_DATA, id, obj.ptr, obj.len, 100, NULL), -1);
	/* incompressible data is stored raw and still opens */
	randombytes_buf(text, sizeof(text));
	dd_id_compute(id, k, text, sizeof(text));
	assert_int_equal(dd_object_seal(&obj, k, DD_OBJ_DATA, id, text, sizeof(text), NULL), 0);
	assert_int_equal(obj.len, DD_OBJECT_HEADER + DD_OBJECT_INNER + sizeof(text) + DD_OBJECT_TAG);
	assert_int_equal(dd_object_open(&out, k, DD_OBJ_DATA, id, obj.ptr, obj.len, 1 << 20, NULL), 0);
	dd_buf_release(&obj), dd_buf_release(&out);
	dd_keys_free(k);
}

/*
 * dd_object_check authenticates without decompressing or recomputing the
 * id: what the opener refuses for damage, another id or another type, it
 * refuses too; a plaintext whose keyed id is not the sealed one passes it.
 */
static void
object_check_authenticates_only(void **state)
{
	uint8_t master[32] = { 3 }, id[32], other[32];
	struct dd_keys *k = dd_keys_new(master);
	struct dd_buf obj = DD_BUF_INIT, out = DD_BUF_INIT, scratch = DD_BUF_INIT;
	char text[5000];

	(void)state;
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "abcabcabd"[i % 9];
	dd_id_compute(id, k, text, sizeof(text));
	assert_int_equal(dd_object_seal(&obj, k, DD_OBJ_DATA, id, text, sizeof(text), NULL), 0);
	assert_int_equal(dd_object_check(k, DD_OBJ_DATA, id, obj.ptr, obj.len, &scratch), 0);
	assert_int_equal(dd_object_check_plain_len(&scratch), sizeof(text));
	for (size_t n = 0; n < obj.len; n++)
		assert_int_equal(dd_object_check(k, DD_OBJ_DATA, id, obj.ptr, n, &scratch), -1);
	for (size_t i = 0; i < obj.len; i++) {
		obj.ptr[i] ^= 4;
		assert_int_equal(dd_object_check(k, DD_OBJ_DATA, id, obj.ptr, obj.len, &scratch), -1);
		obj.ptr[i] ^= 4;
	}
	memcpy(other, id, 32);
	other[0] ^= 1;
	assert_int_equal(dd_object_check(k, DD_OBJ_DATA, other, obj.ptr, obj.len, &scratch), -1);
	assert_non_null(strstr(dd_error_last(), "authentication failed"));
	assert_int_equal(dd_object_check(k, DD_OBJ_MANIFEST, id, obj.ptr, obj.len, &scratch), -1);
	/* sealed under an id that is not its content's: authenticates, only the full open refuses it */
	assert_int_equal(dd_object_seal(&obj, k, DD_OBJ_DATA, other, text, sizeof(text), NULL), 0);
	assert_int_equal(dd_object_check(k, DD_OBJ_DATA, other, obj.ptr, obj.len, &scratch), 0);
	assert_int_equal(dd_object_open(&out, k, DD_OBJ_DATA, other, obj.ptr, obj.len, 1 << 20, NULL), -1);
	assert_non_null(strstr(dd_error_last(), "content does not match its id"));
	/* trusting ids (a snapshot's previous chunks from the cache) opens it; index objects are still checked */
	assert_int_equal(dd_object_trust_ids(1), 0);
	assert_int_equal(dd_object_open(&out, k, DD_OBJ_DATA, other, obj.ptr, obj.len, 1 << 20, NULL), 0);
	assert_int_equal(out.len, sizeof(text));
	assert_memory_equal(out.ptr, text, sizeof(text));
	assert_int_equal(dd_object_seal(&obj, k, DD_OBJ_INDEX, other, text, sizeof(text), NULL), 0);
	assert_int_equal(dd_object_open(&out, k, DD_OBJ_INDEX, other, obj.ptr, obj.len, 1 << 20, NULL), -1);
	assert_non_null(strstr(dd_error_last(), "content does not match its id"));
	/* and nothing else than the id: a flipped bit still fails authentication */
	assert_int_equal(dd_object_seal(&obj, k, DD_OBJ_DATA, other, text, sizeof(text), NULL), 0);
	obj.ptr[obj.len / 2] ^= 1;
	assert_int_equal(dd_object_open(&out, k, DD_OBJ_DATA, other, obj.ptr, obj.len, 1 << 20, NULL), -1);
	assert_non_null(strstr(dd_error_last(), "authentication failed"));
	assert_int_equal(dd_object_trust_ids(0), 1);
	/* raw (incompressible) objects too */
	randombytes_buf(text, sizeof(text));
	dd_id_compute(id, k, text, sizeof(text));
	assert_int_equal(dd_object_seal(&obj, k, DD_OBJ_DATA, id, text, sizeof(text), NULL), 0);
	assert_int_equal(dd_object_check(k, DD_OBJ_DATA, id, obj.ptr, obj.len, &scratch), 0);
	assert_int_equal(dd_object_check_plain_len(&scratch), sizeof(text));
	dd_buf_release(&obj), dd_buf_release(&out), dd_buf_release(&scratch);
	dd_keys_free(k);
}

static void
manifest_encoding_round_trips_and_parser_is_strict(void **state)
{
	struct dd_manifest m = { 0 }, *p;
	struct dd_buf enc = DD_BUF_INIT, enc2 = DD_BUF_INIT;
	struct dd_chunk_ref ch[2] = { { { 1 }, 100 }, { { 2 }, 5 } };
	size_t cl, cl2;

	m.nstreams = 2;
	m.streams = calloc(2, sizeof(*m.streams));
	m.streams[0].name = strdup("z.table");
	m.streams[1].name = strdup("a.table");
	m.streams[1].size = 105; /* every chunk but the last is at least DD_CHUNK_MIN_LIMIT bytes */
	m.streams[1].chunks = ch;
	m.streams[1].nchunks = 2;
	dd_kv_set(&m.streams[1].attrs, &m.streams[1].nattrs, "rows", "3");
	dd_kv_set(&m.streams[1].attrs, &m.streams[1].nattrs, "columns", "a,b");
	dd_kv_set(&m.meta, &m.nmeta, "profile", "p");
	dd_manifest_sort(&m);
	assert_int_equal(dd_manifest_encode(&enc, &cl, &m), 0);
	assert_int_equal(dd_manifest_parse(&p, &cl2, enc.ptr, enc.len), 0);
	assert_int_equal(cl, cl2);
	assert_string_equal(p->streams[0].name, "a.table");
	assert_string_equal(p->streams[0].attrs[0].key, "columns");
	assert_int_equal(dd_manifest_encode(&enc2, &cl2, p), 0);
	assert_int_equal(enc.len, enc2.len);
	assert_memory_equal(enc.ptr, enc2.ptr, enc.len);
	dd_manifest_free(p);
	for (size_t n = 0; n < enc.len; n++)
		assert_int_equal(dd_manifest_parse(&p, &cl2, enc.ptr, n), -1);
	/* a flipped byte either fails or parses to something that re-encodes identically */
	for (size_t i = 0; i < enc.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			enc.ptr[i] ^= (char)(1 << bit);
			if (dd_manifest_parse(&p, &cl2, enc.ptr, enc.len) == 0) {
				assert_int_equal(dd_manifest_encode(&enc2, &cl2, p), 0);
				assert_memory_equal(enc.ptr, enc2.ptr, enc.len);
				dd_manifest_free(p);
			}
			enc.ptr[i] ^= (char)(1 << bit);
		}
	}
	m.streams[0].chunks = NULL, m.streams[0].nchunks = 0; /* sorted: a.table first; ch is on the stack */
	for (size_t i = 0; i < 2; i++)
		dd_stream_info_clear(&m.streams[i]);
	free(m.streams);
	dd_kv_free(m.meta, m.nmeta);
	dd_buf_release(&enc), dd_buf_release(&enc2);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(new_store_makes_a_0600_key_and_a_key_file),
		T(another_clone_joins_with_the_passphrase),
		T(wrong_passphrase_is_reported_as_such),
		T(wrong_key_is_reported_as_another_key_not_corruption),
		T(key_readable_by_others_is_refused_with_the_fix),
		T(key_file_is_read_from_the_descriptor_whose_mode_was_checked),
		cmocka_unit_test(typed_passphrase_leaves_no_copy_in_freed_memory),
		cmocka_unit_test(terminal_write_failure_after_the_passphrase_is_an_error),
		T(export_and_import_move_the_key),
		T(passwd_replaces_the_key_file),
		T(tampered_config_is_detected),
		T(changed_key_id_line_is_damage_not_another_key),
		cmocka_unit_test(key_files_are_wrapped_with_moderate_argon2id),
		cmocka_unit_test(key_file_parser_refuses_malformed_input),
		cmocka_unit_test(object_opener_refuses_damage),
		cmocka_unit_test(object_check_authenticates_only),
		cmocka_unit_test(manifest_encoding_round_trips_and_parser_is_strict),
	};
	if (sodium_init() < 0)
		return 1;
	dd_log_set_verbosity(DD_QUIET);
	dd_keyfile_set_fast_for_tests(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
