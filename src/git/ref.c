/*
 * git/ref.c: ref files (.dnadata/refs/<profile>), the small text file git
 * versions for each profile; the format is specified in docs/FORMAT.md §1.
 *
 *   dnadata-ref 1
 *   snapshot <64 lowercase hex digits>
 *   created 2026-11-24T19:05:47Z
 *   rows 120345
 *
 * The parser treats its input as hostile (a ref arrives by `git pull` or a
 * hand-resolved merge): it checks every byte, bounds every length, and
 * stops at the first problem with "path:line: what is wrong". It is strict
 * about meaning and tolerant about the two things editors and git do to
 * text files on their own: CRLF line ends and a missing final newline.
 *
 * Invariant of struct dd_ref: `snapshot` is 64 lowercase hex digits; info
 * keys are unique, match [a-z0-9_-]{1,64}, are not "snapshot"; values are
 * valid UTF-8 without control characters. dd_ref_format() writes info lines
 * sorted by key, so the same ref always gives the same bytes.
 */
#include "git/ref.h"
#include "util/buf.h"
#include "util/conflict.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "dnadata-ref"
#define MAX_FILE 65536
#define MAX_LINE 1024
#define MAX_KEY 64

char *
dd_ref_path(const char *profile)
{
	return dd_asprintf(".dnadata/refs/%s", profile);
}

struct dd_ref *
dd_ref_new(const char *snapshot_hex)
{
	struct dd_ref *ref;

	if (!snapshot_hex || strlen(snapshot_hex) != DD_ID_HEX_LEN || !dd_is_hex(snapshot_hex, DD_ID_HEX_LEN)) {
		dd_error("invalid snapshot id '%.80s' (expected %d lowercase hex digits)",
			 snapshot_hex ? snapshot_hex : "", DD_ID_HEX_LEN);
		return NULL;
	}
	ref = dd_calloc(1, sizeof(*ref));
	memcpy(ref->snapshot, snapshot_hex, DD_ID_HEX_LEN + 1);
	return ref;
}

int
dd_ref_key_valid(const char *key, size_t len)
{
	if (len == 0 || len > MAX_KEY)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return !(len == 8 && !memcmp(key, "snapshot", 8));
}

void
dd_ref_free(struct dd_ref *ref)
{
	if (!ref)
		return;
	for (size_t i = 0; i < ref->ninfo; i++) {
		free(ref->info[i].key);
		free(ref->info[i].value);
	}
	free(ref->info);
	free(ref);
}

static struct dd_ref_info *
find_info(const struct dd_ref *ref, const char *key, size_t len)
{
	for (size_t i = 0; i < ref->ninfo; i++)
		if (strlen(ref->info[i].key) == len && !memcmp(ref->info[i].key, key, len))
			return &ref->info[i];
	return NULL;
}

const char *
dd_ref_get_info(const struct dd_ref *ref, const char *key)
{
	struct dd_ref_info *i = find_info(ref, key, strlen(key));

	return i ? i->value : NULL;
}

static void
add_info(struct dd_ref *ref, const char *key, size_t klen, const char *value, size_t vlen)
{
	ref->info = dd_realloc(ref->info, (ref->ninfo + 1) * sizeof(*ref->info));
	ref->info[ref->ninfo].key = dd_strndup(key, klen);
	ref->info[ref->ninfo].value = dd_strndup(value, vlen);
	ref->ninfo++;
}

void
dd_ref_set_info(struct dd_ref *ref, const char *key, const char *value)
{
	struct dd_buf v = DD_BUF_INIT;
	struct dd_ref_info *old;
	size_t klen = strlen(key), vlen = strlen(value), room = MAX_LINE - klen - 1;

	if (!dd_ref_key_valid(key, klen)) {
		/* keys are chosen by our code, never by input: a bug */
		fprintf(stderr, "fatal: BUG: invalid ref info key '%s'\n", key);
		abort();
	}
	/* Keep the invariant: one line of printable UTF-8, bounded, never empty. */
	for (size_t i = 0; i < vlen && v.len < room;) {
		const unsigned char *p = (const unsigned char *)value + i;
		size_t n = dd_utf8_seq_len(p, vlen - i);
		if (n == 0 || *p < 0x20 || *p == 0x7f) {
			dd_buf_putc(&v, n == 0 ? '?' : ' ');
			i += 1;
			continue;
		}
		if (v.len + n > room)
			break;
		dd_buf_put(&v, p, n);
		i += n;
	}
	while (v.len && v.ptr[v.len - 1] == ' ')
		dd_buf_truncate(&v, v.len - 1);
	while (v.len && v.ptr[0] == ' ') {
		memmove(v.ptr, v.ptr + 1, v.len);
		v.len--;
	}
	if (v.len == 0)
		dd_buf_putc(&v, '-');
	if ((old = find_info(ref, key, klen))) {
		free(old->value);
		old->value = dd_buf_detach(&v, NULL);
	} else {
		add_info(ref, key, klen, v.ptr, v.len);
	}
	dd_buf_release(&v);
}

static int
cmp_info(const void *a, const void *b)
{
	return strcmp(((const struct dd_ref_info *)a)->key, ((const struct dd_ref_info *)b)->key);
}

void
dd_ref_format(struct dd_buf *out, const struct dd_ref *ref)
{
	struct dd_ref_info *sorted = NULL;

	dd_buf_printf(out, "%s %d\nsnapshot %s\n", MAGIC, DD_REF_VERSION, ref->snapshot);
	if (ref->ninfo == 0)
		return;
	sorted = dd_malloc(ref->ninfo * sizeof(*sorted));
	memcpy(sorted, ref->info, ref->ninfo * sizeof(*sorted));
	qsort(sorted, ref->ninfo, sizeof(*sorted), cmp_info);
	for (size_t i = 0; i < ref->ninfo; i++)
		dd_buf_printf(out, "%s %s\n", sorted[i].key, sorted[i].value);
	free(sorted);
}

/* ---- parsing ---- */

static int
bad(const char *path, size_t line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
bad(const char *path, size_t line, const char *fmt, ...)
{
	struct dd_buf b = DD_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	dd_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	dd_error("%s:%zu: %s", path, line, b.ptr);
	dd_buf_release(&b);
	return -1;
}

/* Check one line's bytes: printable UTF-8, no control characters. */
static int
check_bytes(const char *path, size_t lineno, const char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		const unsigned char c = (unsigned char)s[i];
		size_t n;

		if (c == '\0')
			return bad(path, lineno, "NUL byte in a ref file (the file is corrupt or not a ref file)");
		if (c == '\r')
			return bad(path, lineno, "stray carriage return");
		if (c < 0x20 || c == 0x7f)
			return bad(path, lineno, "control character 0x%02x", c);
		n = dd_utf8_seq_len((const unsigned char *)s + i, len - i);
		if (n == 0)
			return bad(path, lineno, "invalid UTF-8");
		i += n;
	}
	return 0;
}

static int
parse_version(const char *path, const char *s, size_t len)
{
	const size_t ml = sizeof(MAGIC) - 1;
	unsigned long v = 0;

	if (len < ml + 2 || memcmp(s, MAGIC, ml) || s[ml] != ' ')
		return bad(path, 1, "not a dnadata ref file (the first line must be '%s %d')", MAGIC, DD_REF_VERSION);
	for (size_t i = ml + 1; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || (i == ml + 1 && s[i] == '0' && len > ml + 2) || v > 99999)
			return bad(path, 1, "malformed version line '%.*s' (expected '%s %d')",
				   (int)(len > 80 ? 80 : len), s, MAGIC, DD_REF_VERSION);
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v != DD_REF_VERSION) {
		bad(path, 1, "unknown ref format version %lu (this git-dnadata reads version %d)", v, DD_REF_VERSION);
		dd_hint("upgrade git-dnadata to read this ref");
		return -1;
	}
	return 0;
}

/* What the parser knows so far: the ref being built and where each line came from. */
struct parse {
	struct dd_ref *ref;
	const char *path;
	size_t lineno;
	size_t snapshot_line; /* 0 until the snapshot line is seen */
	size_t *info_line;    /* line of ref->info[i] */
};

static int
parse_snapshot(struct parse *ps, const char *v, size_t vlen)
{
	if (ps->snapshot_line)
		return bad(ps->path, ps->lineno, "duplicate snapshot line (the first is on line %zu)", ps->snapshot_line);
	if (ps->lineno != 2)
		return bad(ps->path, ps->lineno, "the snapshot line must be line 2");
	if (vlen != DD_ID_HEX_LEN)
		return bad(ps->path, ps->lineno,
			   "malformed snapshot id (expected %d lowercase hex digits, got %zu characters)", DD_ID_HEX_LEN,
			   vlen);
	memcpy(ps->ref->snapshot, v, DD_ID_HEX_LEN);
	ps->ref->snapshot[DD_ID_HEX_LEN] = '\0';
	if (!dd_is_hex(ps->ref->snapshot, DD_ID_HEX_LEN))
		return bad(ps->path, ps->lineno, "malformed snapshot id (expected %d lowercase hex digits)",
			   DD_ID_HEX_LEN);
	ps->snapshot_line = ps->lineno;
	return 0;
}

static int
parse_info(struct parse *ps, const char *k, size_t klen, const char *v, size_t vlen)
{
	struct dd_ref *ref = ps->ref;

	if (!ps->snapshot_line)
		return bad(ps->path, ps->lineno, "expected 'snapshot <id>' on line 2");
	if (!dd_ref_key_valid(k, klen))
		return bad(ps->path, ps->lineno, "malformed key '%.*s' (letters a-z, digits, '_' and '-', at most %d)",
			   (int)(klen > 80 ? 80 : klen), k, MAX_KEY);
	if (v[0] == ' ' || v[vlen - 1] == ' ')
		return bad(ps->path, ps->lineno, "extra space around the value of '%.*s'", (int)klen, k);
	for (size_t i = 0; i < ref->ninfo; i++)
		if (strlen(ref->info[i].key) == klen && !memcmp(ref->info[i].key, k, klen))
			return bad(ps->path, ps->lineno, "duplicate key '%.*s' (the first is on line %zu)", (int)klen, k,
				   ps->info_line[i]);
	ps->info_line = dd_realloc(ps->info_line, (ref->ninfo + 1) * sizeof(*ps->info_line));
	ps->info_line[ref->ninfo] = ps->lineno;
	add_info(ref, k, klen, v, vlen);
	return 0;
}

/* One line without its end: checked bytes, then the version, snapshot or an info line. */
static int
parse_line(struct parse *ps, const char *s, size_t l)
{
	const char *sp;
	size_t klen;

	if (l > MAX_LINE)
		return bad(ps->path, ps->lineno, "line too long (%zu bytes; at most %d)", l, MAX_LINE);
	if (dd_is_conflict_marker(s, l)) {
		bad(ps->path, ps->lineno, "unresolved merge conflict marker");
		dd_hint("keep one side's snapshot line, e.g. 'git checkout --theirs -- %s'", ps->path);
		return -1;
	}
	if (check_bytes(ps->path, ps->lineno, s, l) < 0)
		return -1;
	if (ps->lineno == 1)
		return parse_version(ps->path, s, l);
	if (l == 0)
		return bad(ps->path, ps->lineno, "empty line");
	sp = memchr(s, ' ', l);
	if (!sp || sp == s || sp + 1 == s + l)
		return bad(ps->path, ps->lineno, "malformed line '%.*s' (expected '<key> <value>')",
			   (int)(l > 80 ? 80 : l), s);
	klen = (size_t)(sp - s);
	if (klen == 8 && !memcmp(s, "snapshot", 8))
		return parse_snapshot(ps, sp + 1, l - klen - 1);
	return parse_info(ps, s, klen, sp + 1, l - klen - 1);
}

int
dd_ref_parse(struct dd_ref **out, const char *text, size_t len, const char *path)
{
	struct parse ps = { dd_calloc(1, sizeof(struct dd_ref)), path, 0, 0, NULL };
	size_t pos = 0;
	int rc = -1;

	*out = NULL;
	if (len == 0) {
		bad(path, 1, "empty file (expected '%s %d')", MAGIC, DD_REF_VERSION);
		goto out;
	}
	if (len > MAX_FILE) {
		dd_error("%s: ref file too large (%zu bytes; at most %d)", path, len, MAX_FILE);
		goto out;
	}
	while (pos < len) {
		const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - s) : len - pos;

		pos += l + (nl ? 1 : 0);
		ps.lineno++;
		if (l && s[l - 1] == '\r' && nl)
			l--; /* CRLF: git's autocrlf on a checkout */
		if (parse_line(&ps, s, l) < 0)
			goto out;
	}
	if (!ps.snapshot_line) {
		bad(path, ps.lineno + (ps.lineno == 1), "missing 'snapshot <id>' line");
		goto out;
	}
	*out = ps.ref, ps.ref = NULL, rc = 0;
out:
	free(ps.info_line);
	dd_ref_free(ps.ref);
	return rc;
}

int
dd_ref_read(struct dd_ref **out, const char *path)
{
	return dd_ref_read_named(out, path, path);
}

int
dd_ref_read_named(struct dd_ref **out, const char *path, const char *display)
{
	struct dd_buf text = DD_BUF_INIT;
	struct stat st;
	int fd, rc = -1;

	*out = NULL;
	/*
	 * O_NOFOLLOW: a ref is a file of its own, never a link to one
	 * somewhere else (git would commit the link, not the ref).
	 * O_NONBLOCK: a ref that is a FIFO would otherwise block open() until
	 * a writer comes. Both are refused like any other file that is not a
	 * regular file.
	 */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
	if (fd < 0 && errno == ELOOP) {
		dd_error("%s is not a regular file but a symbolic link (a ref file must be a regular file)", display);
		dd_hint("replace %s with a regular ref file (one from an earlier commit, say), or remove it", display);
		return -1;
	}
	if (fd < 0) {
		if (errno == ENOENT)
			return DD_NOTFOUND;
		return dd_error_errno("cannot read %s", display);
	}
	if (fstat(fd, &st) < 0) {
		dd_error_errno("cannot stat %s", display);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		dd_error("%s is not a regular file (a ref file must be one)", display);
		dd_hint("replace %s with a regular ref file (one from an earlier commit, say), or remove it", display);
		goto out;
	}
	if (dd_fd_read(fd, &text, MAX_FILE, display) < 0)
		goto out;
	if (text.len > MAX_FILE) {
		dd_error("%s: ref file too large (more than %d bytes)", display, MAX_FILE);
		goto out;
	}
	rc = dd_ref_parse(out, text.ptr ? text.ptr : "", text.len, display);
out:
	close(fd);
	dd_buf_release(&text);
	return rc;
}

int
dd_ref_write(const char *path, const struct dd_ref *ref)
{
	struct dd_buf text = DD_BUF_INIT;
	char *dir = dd_path_dirname(path);
	int rc = -1;

	if (dd_mkdir_p(dir, 0777) < 0)
		goto out;
	dd_ref_format(&text, ref);
	if (dd_file_write_atomic(path, text.ptr, text.len, 0644, 0) < 0)
		goto out;
	rc = 0;
out:
	dd_buf_release(&text);
	free(dir);
	return rc;
}

void
dd_ref_ids_add(char ***ids, size_t *n, const char *id)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*ids)[i], id))
			return;
	*ids = dd_realloc(*ids, (*n + 1) * sizeof(**ids));
	(*ids)[(*n)++] = dd_strdup(id);
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Ref file names in refs_dir (hidden files skipped), sorted. */
static int
list_refs(char ***names, size_t *n, const char *refs_dir)
{
	DIR *d = opendir(refs_dir);
	struct dirent *e;

	*names = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 : dd_error_errno("cannot read %s", refs_dir);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		*names = dd_realloc(*names, (*n + 1) * sizeof(**names));
		(*names)[(*n)++] = dd_strdup(e->d_name);
	}
	closedir(d);
	if (*n)
		qsort(*names, *n, sizeof(**names), cmp_names);
	return 0;
}

int
dd_ref_snapshot_ids(char ***ids, size_t *n, const char *refs_dir, const char *const *profiles,
		    size_t nprofiles)
{
	char **names = NULL;
	size_t nnames = 0;
	int rc = -1;

	*ids = NULL;
	*n = 0;
	if (profiles) {
		names = dd_calloc(nprofiles ? nprofiles : 1, sizeof(*names));
		for (; nnames < nprofiles; nnames++)
			names[nnames] = dd_strdup(profiles[nnames]);
	} else if (list_refs(&names, &nnames, refs_dir) < 0) {
		return -1;
	}
	for (size_t i = 0; i < nnames; i++) {
		struct dd_ref *ref = NULL;
		char *path = dd_path_join(refs_dir, names[i]);
		char *disp = dd_ref_path(names[i]);
		int r = dd_ref_read_named(&ref, path, disp);

		if (r == DD_NOTFOUND && profiles)
			dd_error("profile '%s' has no snapshot yet (no %s)", names[i], disp);
		if (r == 0 && ref->snapshot[0] && !dd_ref_is_inline(ref))
			dd_ref_ids_add(ids, n, ref->snapshot);
		dd_ref_free(ref);
		free(path);
		free(disp);
		if (r < 0 || (r == DD_NOTFOUND && profiles))
			goto out;
	}
	rc = 0;
out:
	dd_ref_ids_free(names, nnames);
	if (rc < 0) {
		dd_ref_ids_free(*ids, *n);
		*ids = NULL;
		*n = 0;
	}
	return rc;
}

void
dd_ref_ids_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

int
dd_ref_is_inline(const struct dd_ref *ref)
{
	const char *v = dd_ref_get_info(ref, "inline");

	return v && !strcmp(v, "yes");
}
