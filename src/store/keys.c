/*
 * store/keys.c: local key files, passphrase-wrapped key files and the
 * store config; see keys.h and docs/FORMAT.md §3. (Asking for a
 * passphrase is cmd/'s business: cmd/prompt.c.)
 *
 * Key file (binary, exactly 113 bytes):
 *   "DDKEYF01" | alg u8 (1 = Argon2id v1.3) | opslimit u64le | memlimit u64le
 *   | salt[16] | nonce[24] | XChaCha20-Poly1305(master key)[48]
 * with KEK = Argon2id(passphrase, salt, opslimit, memlimit) and associated
 * data = the first 65 bytes. Limits outside libsodium's [MIN, SENSITIVE]
 * are refused, so a hostile key file cannot make us allocate gigabytes.
 */
#include "store/keys.h"
#include "store/object.h"
#include "util/endian.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fast_for_tests;

void
dd_keyfile_set_fast_for_tests(int fast)
{
	fast_for_tests = fast;
}

/* ---- plain key files ---- */

void
dd_key_format(struct dd_buf *out, const uint8_t master[DD_KEY_LEN])
{
	char hex[2 * DD_KEY_LEN + 1];

	dd_hex_encode(hex, master, DD_KEY_LEN);
	dd_buf_printf(out, "dnadata-key 1\nkey %s\n", hex);
	sodium_memzero(hex, sizeof(hex));
}

int
dd_key_parse(uint8_t master[DD_KEY_LEN], const char *text, size_t len, const char *path)
{
	static const char head[] = "dnadata-key 1\nkey ";
	const size_t hl = sizeof(head) - 1;
	char hex[2 * DD_KEY_LEN + 1];
	int rc;

	if (len >= 12 && !memcmp(text, "dnadata-key ", 12) && (len < hl || memcmp(text, head, hl)))
		return dd_error("%s: key file version not supported by this git-dnadata", path);
	if (len != hl + 2 * DD_KEY_LEN + 1 || memcmp(text, head, hl) || text[len - 1] != '\n')
		return dd_error("%s: not a git-dnadata key file", path);
	memcpy(hex, text + hl, 2 * DD_KEY_LEN);
	hex[2 * DD_KEY_LEN] = '\0';
	rc = dd_hex_decode(master, DD_KEY_LEN, hex);
	sodium_memzero(hex, sizeof(hex));
	if (rc < 0)
		return dd_error("%s: not a git-dnadata key file (bad key digits)", path);
	return 0;
}

/*
 * Everything is read from the descriptor whose mode was checked: reading
 * the path again would let whoever can rename files in that folder swap
 * in a file between the check and the read.
 */
int
dd_key_read_file(uint8_t master[DD_KEY_LEN], const char *path)
{
	char text[4096 + 1];
	size_t len = 0;
	struct stat st;
	int fd, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return DD_NOTFOUND;
		return dd_error_errno("cannot open key %s", path);
	}
	if (fstat(fd, &st) < 0) {
		dd_error_errno("cannot stat key %s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		dd_error("key %s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		dd_error("key %s is readable by other users (mode %04o); refusing to use it",
			 path, (unsigned)(st.st_mode & 07777));
		dd_hint("chmod 600 '%s' (and consider the key compromised if others could read it)", path);
		goto out;
	}
	while (len < sizeof(text)) {
		ssize_t n = read(fd, text + len, sizeof(text) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			dd_error_errno("cannot read key %s", path);
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len == sizeof(text)) {
		dd_error("%s: not a git-dnadata key file (too large)", path);
		goto out;
	}
	rc = dd_key_parse(master, text, len, path);
out:
	sodium_memzero(text, sizeof(text));
	close(fd);
	return rc;
}

int
dd_key_write_file(const char *path, const uint8_t master[DD_KEY_LEN], int flags)
{
	struct dd_buf text = DD_BUF_INIT;
	char *dir = dd_path_dirname(path);
	int rc = -1;

	if (dd_mkdir_p(dir, 0700) < 0)
		goto out;
	dd_key_format(&text, master);
	rc = dd_file_write_atomic(path, text.ptr, text.len, 0600, flags);
	if (rc == DD_EXISTS)
		rc = dd_error("%s already exists; not overwriting it", path);
out:
	dd_buf_release_secret(&text);
	free(dir);
	return rc;
}

/* ---- wrapped key files ---- */

static int
kek_derive(uint8_t kek[32], const char *pass, const uint8_t salt[16], uint64_t ops, uint64_t mem)
{
	if (crypto_pwhash(kek, 32, pass, strlen(pass), salt, ops, (size_t)mem,
			  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return dd_error("out of memory deriving the key from the passphrase (Argon2id needs %llu MiB)",
				(unsigned long long)(mem >> 20));
	return 0;
}

int
dd_keyfile_wrap(struct dd_buf *out, const uint8_t master[DD_KEY_LEN], const char *passphrase)
{
	uint8_t f[DD_KEYFILE_SIZE], kek[32];
	uint64_t ops = fast_for_tests ? crypto_pwhash_OPSLIMIT_MIN : crypto_pwhash_OPSLIMIT_MODERATE;
	uint64_t mem = fast_for_tests ? crypto_pwhash_MEMLIMIT_MIN : crypto_pwhash_MEMLIMIT_MODERATE;

	memcpy(f, DD_KEYFILE_MAGIC, 8);
	f[8] = DD_KEYFILE_ALG_ARGON2ID13;
	dd_put_le64(f + 9, ops);
	dd_put_le64(f + 17, mem);
	randombytes_buf(f + 25, 16);
	randombytes_buf(f + 41, 24);
	if (kek_derive(kek, passphrase, f + 25, ops, mem) < 0)
		return -1;
	crypto_aead_xchacha20poly1305_ietf_encrypt(f + 65, NULL, master, DD_KEY_LEN, f, 65, NULL,
						   f + 41, kek);
	sodium_memzero(kek, sizeof(kek));
	dd_buf_clear(out);
	dd_buf_put(out, f, sizeof(f));
	return 0;
}

int
dd_keyfile_parse(struct dd_keyfile *kf, const void *data, size_t len)
{
	const uint8_t *f = data;

	if (len != DD_KEYFILE_SIZE || memcmp(f, DD_KEYFILE_MAGIC, 8))
		return dd_error("not a git-dnadata key file");
	if (f[8] != DD_KEYFILE_ALG_ARGON2ID13)
		return dd_error("key file uses an unknown key derivation (%u)", f[8]);
	kf->alg = f[8];
	kf->opslimit = dd_get_le64(f + 9);
	kf->memlimit = dd_get_le64(f + 17);
	if (kf->opslimit < crypto_pwhash_OPSLIMIT_MIN || kf->opslimit > crypto_pwhash_OPSLIMIT_SENSITIVE ||
	    kf->memlimit < crypto_pwhash_MEMLIMIT_MIN || kf->memlimit > crypto_pwhash_MEMLIMIT_SENSITIVE)
		return dd_error("key file asks for out-of-range Argon2id limits");
	memcpy(kf->salt, f + 25, 16);
	memcpy(kf->nonce, f + 41, 24);
	memcpy(kf->sealed, f + 65, sizeof(kf->sealed));
	memcpy(kf->header, f, 65);
	return 0;
}

int
dd_keyfile_unwrap(uint8_t master[DD_KEY_LEN], const struct dd_keyfile *kf, const char *passphrase)
{
	uint8_t kek[32];
	int rc;

	if (kek_derive(kek, passphrase, kf->salt, kf->opslimit, kf->memlimit) < 0)
		return -1;
	rc = crypto_aead_xchacha20poly1305_ietf_decrypt(master, NULL, NULL, kf->sealed, sizeof(kf->sealed),
							kf->header, 65, kf->nonce, kek);
	sodium_memzero(kek, sizeof(kek));
	return rc == 0 ? 0 : DD_NOTFOUND;
}

/* ---- store config ---- */

void
dd_key_id_short(char out[17], const uint8_t key_id[DD_KEY_LEN])
{
	dd_hex_encode(out, key_id, 8);
}

static void
config_mac(uint8_t mac[32], const char *text, size_t len, const struct dd_keys *k)
{
	crypto_generichash(mac, 32, (const uint8_t *)text, len, k->config, DD_KEY_LEN);
}

void
dd_store_config_format(struct dd_buf *out, const struct dd_store_config *c, const struct dd_keys *k)
{
	char hex[65];
	uint8_t mac[32];

	dd_buf_clear(out);
	dd_hex_encode(hex, k->key_id, 32);
	dd_buf_printf(out, "dnadata-store %u\nkey-id %s\nchunker fastcdc %u %u %u\n", DD_STORE_FORMAT, hex,
		      c->min, c->avg, c->max);
	dd_compression_format(hex, c->zlevel);
	dd_buf_printf(out, "compression %s\n", hex);
	config_mac(mac, out->ptr, out->len, k);
	dd_hex_encode(hex, mac, 32);
	dd_buf_printf(out, "mac %s\n", hex);
}

/* Take one '\n'-terminated line starting with `prefix`; *rest points after the prefix. */
static int
take_line(const char **p, const char *end, const char *prefix, char *rest, size_t restsize)
{
	size_t pl = strlen(prefix);
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));

	if (!nl || (size_t)(nl - *p) < pl || memcmp(*p, prefix, pl) || (size_t)(nl - *p) - pl >= restsize)
		return -1;
	memcpy(rest, *p + pl, (size_t)(nl - *p) - pl);
	rest[(nl - *p) - pl] = '\0';
	*p = nl + 1;
	return 0;
}

static int
parse_u32(const char *s, uint32_t *out)
{
	uint64_t v = 0;

	if (!*s || (s[0] == '0' && s[1]) || strlen(s) > 10)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* "none" or "zstd:N" with lo <= N <= hi, N != 0, no leading zeros or '+': 0, or -1 (no error set). */
static int
parse_compression(int *level, const char *text, int lo, int hi)
{
	const char *n = text + 5;
	int neg, v = 0;

	if (!strcmp(text, "none")) {
		*level = DD_ZLEVEL_NONE;
		return 0;
	}
	if (strncmp(text, "zstd:", 5))
		return -1;
	neg = *n == '-';
	if (!n[neg] || n[neg] == '0' || strlen(n + neg) > 6)
		return -1;
	for (const char *d = n + neg; *d; d++) {
		if (*d < '0' || *d > '9')
			return -1;
		v = v * 10 + (*d - '0');
	}
	v = neg ? -v : v;
	if (v < lo || v > hi)
		return -1;
	*level = v;
	return 0;
}

int
dd_compression_parse(int *level, const char *text, const char *what)
{
	if (parse_compression(level, text, DD_ZLEVEL_MIN, DD_ZLEVEL_MAX) == 0)
		return 0;
	dd_error("%s: not a compression setting (none, or zstd:N with N from %d to %d, not 0)", what,
		 DD_ZLEVEL_MIN, DD_ZLEVEL_MAX);
	dd_hint("for example zstd:1 (fast) or zstd:19 (smallest)");
	return -1;
}

void
dd_compression_format(char out[16], int level)
{
	if (level == DD_ZLEVEL_NONE)
		snprintf(out, 16, "none");
	else
		snprintf(out, 16, "zstd:%d", level);
}

int
dd_store_config_parse(struct dd_store_config *c, const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	char rest[128], a[16], b[16], d[16], extra;

	memset(c, 0, sizeof(*c));
	if (memchr(text, 0, len))
		return dd_error("store config damaged (NUL byte)");
	if (take_line(&p, end, "dnadata-store ", rest, sizeof(rest)) < 0 || parse_u32(rest, &c->version) < 0)
		return dd_error("not a git-dnadata store (bad config)");
	if (c->version != DD_STORE_FORMAT && c->version != DD_STORE_FORMAT_LEGACY)
		return dd_error("store format %u is not supported by this git-dnadata (upgrade it)", c->version);
	if (take_line(&p, end, "key-id ", rest, sizeof(rest)) < 0 || dd_hex_decode(c->key_id, 32, rest) < 0)
		return dd_error("store config damaged (key-id line)");
	if (take_line(&p, end, "chunker fastcdc ", rest, sizeof(rest)) < 0 ||
	    sscanf(rest, "%15[0-9] %15[0-9] %15[0-9]%c", a, b, d, &extra) != 3 ||
	    parse_u32(a, &c->min) < 0 || parse_u32(b, &c->avg) < 0 || parse_u32(d, &c->max) < 0 ||
	    strlen(a) + strlen(b) + strlen(d) + 2 != strlen(rest))
		return dd_error("store config damaged (chunker line)");
	c->zlevel = DD_ZSTD_LEVEL; /* format 1: what writers used before the setting */
	/* any level zstd knows (a later version may allow more than `--compression` does): readers need none */
	if (c->version == DD_STORE_FORMAT &&
	    (take_line(&p, end, "compression ", rest, sizeof(rest)) < 0 ||
	     parse_compression(&c->zlevel, rest, ZSTD_minCLevel(), ZSTD_maxCLevel()) < 0))
		return dd_error("store config damaged (compression line)");
	c->signed_len = (size_t)(p - text);
	if (take_line(&p, end, "mac ", rest, sizeof(rest)) < 0 || dd_hex_decode(c->mac, 32, rest) < 0)
		return dd_error("store config damaged (mac line)");
	if (p != end)
		return dd_error("store config damaged (trailing data)");
	return 0;
}

/*
 * 1 when the config's MAC is this key's over the text with its key-id line made this key's: the config of
 * this key's store with only its key-id line changed (damage or tampering), not another key's store, whose
 * MAC no other key can make.
 */
static int
key_id_line_changed(const struct dd_store_config *c, const char *text, const struct dd_keys *k)
{
	const char *nl = memchr(text, '\n', c->signed_len), *id, *end;
	char *copy, hex[65];
	uint8_t mac[32];
	int r;

	if (!nl)
		return 0;
	id = nl + 1 + strlen("key-id ");
	end = memchr(id, '\n', c->signed_len - (size_t)(id - text));
	if (!end || end - id != 64)
		return 0;
	copy = dd_malloc(c->signed_len);
	memcpy(copy, text, c->signed_len);
	dd_hex_encode(hex, k->key_id, 32);
	memcpy(copy + (id - text), hex, 64);
	config_mac(mac, copy, c->signed_len, k);
	r = sodium_memcmp(mac, c->mac, 32) == 0;
	free(copy);
	return r;
}

int
dd_store_config_check(const struct dd_store_config *c, const char *text, const struct dd_keys *k, const char *url)
{
	uint8_t mac[32];
	char have[17], want[17];

	if (sodium_memcmp(c->key_id, k->key_id, 32) != 0 && key_id_line_changed(c, text, k))
		return dd_error("store config of %s damaged or tampered with (its key-id line was changed)", url);
	if (sodium_memcmp(c->key_id, k->key_id, 32) != 0) {
		dd_key_id_short(want, c->key_id);
		dd_key_id_short(have, k->key_id);
		dd_error("this store (%s) belongs to another key (id %s; this repository's key is %s)", url, want, have);
		dd_hint("import the store's key with `git dnadata key import --passphrase` or `git dnadata key import FILE`");
		return -1;
	}
	config_mac(mac, text, c->signed_len, k);
	if (sodium_memcmp(mac, c->mac, 32) != 0)
		return dd_error("store config of %s damaged or tampered with (its authentication code does not match)", url);
	return 0;
}
