/*
 * s3/upload.c: sending a local file to a key, create-only, in one PUT or a
 * resumable multipart upload (dd_s3_upload_file in client.h).
 *
 * Parts go out in parallel: up to `transfers` threads take the next part
 * number, hash that region of the file and send it from the file, so
 * memory stays at one hash buffer per thread whatever the file size.
 *
 * The record of an upload in progress (a small local text file, replaced
 * atomically after each part) lets an interrupted upload resume:
 *
 *   dd-s3-upload 1
 *   key <key, percent-encoded>
 *   size <file size> <part size>
 *   upload <upload id>
 *   part <number> <size> <sha256 hex> <etag>      (one line per part sent)
 *
 * It is local state, but still read as untrusted: a record that does not
 * parse, or names another key, size or part size, is ignored (the upload
 * starts afresh). A part is skipped on resume only when S3 lists it with
 * the recorded size and ETag and the file's bytes still hash to the
 * recorded SHA-256.
 */
#include "s3/client.h"
#include "s3/sigv4.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_RECORD (2u << 20)

struct upload {
	struct dd_s3_client *c;
	const char *key;
	const char *record;
	int fd;
	uint64_t size, part_size;
	char *upload_id;
	struct dd_s3_record_part *parts; /* sent: recorded (and, on resume, still listed by S3 as such) */
	int nparts;
	/* shared by the part threads */
	pthread_mutex_t mu;
	int next;      /* the next part number to take */
	int failed;    /* the first failure's result, 0 while none */
	char *failure; /* its message */
	char *hint;
	uint64_t skipped, sent;
};

static uint64_t
part_len(const struct upload *u, int number)
{
	uint64_t off = (uint64_t)(number - 1) * u->part_size;

	return u->size - off < u->part_size ? u->size - off : u->part_size;
}

/* ---- the record ---- */

void
dd_s3_record_format(struct dd_buf *b, const char *key, uint64_t size, uint64_t part_size, const char *upload_id,
		    const struct dd_s3_record_part *parts, int nparts)
{
	dd_buf_puts(b, "dd-s3-upload 1\nkey ");
	dd_sigv4_uri_encode(b, key, strlen(key), 0);
	dd_buf_printf(b, "\nsize %" PRIu64 " %" PRIu64 "\nupload %s\n", size, part_size, upload_id);
	for (int i = 0; i < nparts; i++)
		if (parts[i].sent)
			dd_buf_printf(b, "part %d %" PRIu64 " %s %s\n", i + 1, parts[i].size, parts[i].sha, parts[i].etag);
}

/* Called with u->mu held (or before the threads start). Best effort: a lost record costs a fresh upload. */
static void
record_save(const struct upload *u)
{
	struct dd_buf b = DD_BUF_INIT;

	if (!u->record)
		return;
	dd_s3_record_format(&b, u->key, u->size, u->part_size, u->upload_id, u->parts, u->nparts);
	if (dd_file_write_atomic(u->record, b.ptr, b.len, 0600, DD_WRITE_NO_DIRSYNC) < 0) {
		dd_debug("cannot keep the upload record %s: %s", u->record, dd_error_last());
		dd_error_clear();
	}
	dd_buf_release(&b);
}

static int
printable_token(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

/* One "part" line into parts[]; 0 or -1 (malformed, or not a part of this file). */
static int
record_part(const char *line, struct dd_s3_record_part *parts, int nparts)
{
	int number, used = 0;
	unsigned long long size;
	char sha[65], etag[80];

	if (sscanf(line, "part %d %llu %64s %79s%n", &number, &size, sha, etag, &used) != 4 || line[used] ||
	    number < 1 || number > nparts || size != parts[number - 1].size || parts[number - 1].sent ||
	    !printable_token(etag, 79) || strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64)
		return -1;
	parts[number - 1].sent = 1;
	memcpy(parts[number - 1].sha, sha, sizeof(sha));
	memcpy(parts[number - 1].etag, etag, sizeof(etag));
	return 0;
}

/* Line n (0-based) of the record's head: 0 when it is what this upload expects. */
static int
record_head(int n, const char *line, const char *want_key, uint64_t size, uint64_t part_size, char **upload_id)
{
	unsigned long long s, ps;
	int used = 0;

	switch (n) {
	case 0:
		return strcmp(line, "dd-s3-upload 1") ? -1 : 0;
	case 1:
		return strcmp(line, want_key) ? -1 : 0;
	case 2:
		return sscanf(line, "size %llu %llu%n", &s, &ps, &used) == 2 && !line[used] && s == size &&
			       ps == part_size ? 0 : -1;
	default:
		if (strncmp(line, "upload ", 7) || !printable_token(line + 7, 1024))
			return -1;
		*upload_id = dd_strdup(line + 7);
		return 0;
	}
}

int
dd_s3_record_parse(const char *text, size_t len, const char *key, uint64_t size, uint64_t part_size,
		   char **upload_id, struct dd_s3_record_part *parts, int nparts)
{
	struct dd_buf want = DD_BUF_INIT, copy = DD_BUF_INIT;
	char *save = NULL, *line;
	int n = 0, rc = -1;

	*upload_id = NULL;
	if (len > MAX_RECORD || memchr(text, '\0', len))
		goto out;
	dd_buf_put(&copy, text, len);
	dd_buf_puts(&want, "key ");
	dd_sigv4_uri_encode(&want, key, strlen(key), 0);
	for (line = strtok_r(copy.ptr, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
		if (n < 4 && record_head(n, line, want.ptr, size, part_size, upload_id) < 0)
			goto out;
		if (n >= 4 && record_part(line, parts, nparts) < 0)
			goto out;
	}
	rc = *upload_id ? 0 : -1;
out:
	if (rc != 0) {
		free(*upload_id);
		*upload_id = NULL;
		for (int i = 0; i < nparts; i++)
			parts[i].sent = 0;
	}
	dd_buf_release(&want);
	dd_buf_release(&copy);
	return rc == 0 ? 0 : DD_NOTFOUND;
}

/*
 * The upload id of a record for `key`, whatever file size and part size it
 * names (caller frees *upload_id); DD_NOTFOUND for another key's record or
 * one that does not parse.
 */
static int
record_ident(const char *text, size_t len, const char *key, char **upload_id)
{
	struct dd_buf want = DD_BUF_INIT, copy = DD_BUF_INIT;
	char *save = NULL, *line;
	int n = 0, ok = 1;

	*upload_id = NULL;
	if (len > MAX_RECORD || memchr(text, '\0', len))
		return DD_NOTFOUND;
	dd_buf_put(&copy, text, len);
	dd_buf_puts(&want, "key ");
	dd_sigv4_uri_encode(&want, key, strlen(key), 0);
	for (line = strtok_r(copy.ptr, "\n", &save); line && n < 4 && ok; line = strtok_r(NULL, "\n", &save), n++) {
		if (n == 0)
			ok = !strcmp(line, "dd-s3-upload 1");
		else if (n == 1)
			ok = !strcmp(line, want.ptr);
		else if (n == 2)
			ok = !strncmp(line, "size ", 5);
		else if ((ok = !strncmp(line, "upload ", 7) && printable_token(line + 7, 1024)))
			*upload_id = dd_strdup(line + 7);
	}
	dd_buf_release(&want);
	dd_buf_release(&copy);
	return *upload_id ? 0 : DD_NOTFOUND;
}

/*
 * Abort the multipart upload a record names, when it names `key`; then
 * remove the record. An upload whose record we drop would otherwise stay
 * in the bucket, unseen and billed, for ever.
 */
static int
abort_recorded(struct dd_s3_client *c, const char *record, const char *text, size_t len, const char *key)
{
	char *id = NULL;
	int r = record_ident(text, len, key, &id);

	if (r != 0)
		return r;
	r = dd_s3_mpu_abort(c, key, id);
	if (r == 0) {
		dd_debug("aborted the stale upload of %s (record %s)", key, record);
		if (unlink(record) < 0 && errno != ENOENT)
			dd_debug("cannot remove the upload record %s: %s", record, strerror(errno));
	}
	free(id);
	return r;
}

int
dd_s3_record_abort(struct dd_s3_client *c, const char *record, const char *key)
{
	struct dd_buf text = DD_BUF_INIT;
	struct stat st;
	int r = DD_NOTFOUND;

	if (lstat(record, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size <= MAX_RECORD &&
	    dd_file_read(&text, record) == 0)
		r = abort_recorded(c, record, text.ptr ? text.ptr : "", text.len, key);
	else
		dd_error_clear();
	dd_buf_release(&text);
	return r;
}

static void
record_load(struct upload *u)
{
	struct dd_buf text = DD_BUF_INIT;
	struct stat st;

	if (!u->record || stat(u->record, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_RECORD)
		return;
	if (dd_file_read(&text, u->record) < 0) {
		dd_error_clear();
	} else if (dd_s3_record_parse(text.ptr ? text.ptr : "", text.len, u->key, u->size, u->part_size,
				      &u->upload_id, u->parts, u->nparts) != 0) {
		/* this key's upload of another file size or part size: it will never complete */
		if (abort_recorded(u->c, u->record, text.ptr ? text.ptr : "", text.len, u->key) < 0)
			dd_debug("cannot abort the stale upload of %s: %s", u->key, dd_error_last());
		dd_debug("ignoring the upload record %s (another upload, or damaged)", u->record);
		dd_error_clear();
	}
	dd_buf_release(&text);
}

static void
record_remove(const struct upload *u)
{
	if (u->record && unlink(u->record) < 0 && errno != ENOENT)
		dd_debug("cannot remove the upload record %s: %s", u->record, strerror(errno));
}

/* ---- resuming ---- */

/* Keep as sent only the recorded parts S3 still holds with the same size and ETag. */
static int
match_listed(struct upload *u)
{
	struct dd_s3_parts listed;
	int r = dd_s3_mpu_list_parts(u->c, u->key, u->upload_id, &listed);

	if (r == DD_NOTFOUND) { /* completed, aborted or expired: start afresh */
		dd_debug("upload of %s is gone from S3; starting it again", u->key);
		free(u->upload_id);
		u->upload_id = NULL;
		for (int i = 0; i < u->nparts; i++)
			u->parts[i].sent = 0;
		return 0;
	}
	if (r != 0)
		return r;
	for (int i = 0; i < u->nparts; i++) {
		int found = 0;
		for (size_t j = 0; j < listed.n && !found; j++)
			found = listed.parts[j].number == i + 1 && listed.parts[j].size == u->parts[i].size &&
				!strcmp(listed.parts[j].etag, u->parts[i].etag);
		if (!found)
			u->parts[i].sent = 0;
	}
	dd_s3_parts_free(&listed);
	return 0;
}

/* ---- the part threads ---- */

/* SHA-256 (hex) of bytes [off, off+len) of the file being uploaded. */
static int
hash_range(struct upload *u, uint64_t off, uint64_t len, char sha[65])
{
	return dd_s3_hash_region(sha, u->fd, off, len, u->key);
}

static int
hash_part(struct upload *u, int number, char sha[65])
{
	return hash_range(u, (uint64_t)(number - 1) * u->part_size, part_len(u, number), sha);
}

static int
send_part(struct upload *u, int number)
{
	struct dd_s3_record_part *p = &u->parts[number - 1];
	char sha[65], etag[80];
	int r;

	if (hash_part(u, number, sha) < 0)
		return -1;
	pthread_mutex_lock(&u->mu);
	int skip = p->sent && !strcmp(p->sha, sha);
	if (skip)
		u->skipped += p->size;
	pthread_mutex_unlock(&u->mu);
	if (skip)
		return 0;
	r = dd_s3_mpu_part(u->c, u->key, u->upload_id, number, u->fd, (uint64_t)(number - 1) * u->part_size,
			   p->size, sha, etag);
	if (r != 0)
		return r;
	pthread_mutex_lock(&u->mu);
	p->sent = 1;
	memcpy(p->sha, sha, sizeof(sha));
	memcpy(p->etag, etag, sizeof(etag));
	u->sent += p->size;
	record_save(u);
	pthread_mutex_unlock(&u->mu);
	if (number == 2)
		dd_failpoint("s3-part-2-recorded"); /* t-s3-client kills an upload here */
	return 0;
}

static void *
part_thread(void *arg)
{
	struct upload *u = arg;

	for (;;) {
		int number, r;
		pthread_mutex_lock(&u->mu);
		number = u->failed ? 0 : u->next <= u->nparts ? u->next++ : 0;
		pthread_mutex_unlock(&u->mu);
		if (!number)
			break;
		r = send_part(u, number);
		if (r == 0)
			continue;
		pthread_mutex_lock(&u->mu);
		if (!u->failed) {
			u->failed = r;
			u->failure = dd_strdup(dd_error_last() ? dd_error_last() : "sending a part failed");
			u->hint = dd_error_hint() ? dd_strdup(dd_error_hint()) : NULL;
		}
		pthread_mutex_unlock(&u->mu);
	}
	return NULL;
}

static int
send_parts(struct upload *u)
{
	int nthreads = dd_s3_client_transfers(u->c), started = 0;
	pthread_t *t;

	if (nthreads > u->nparts)
		nthreads = u->nparts;
	t = dd_calloc((size_t)nthreads, sizeof(*t));
	u->next = 1;
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&t[i], NULL, part_thread, u) == 0)
			started++;
		else
			break;
	if (started == 0)
		part_thread(u); /* no thread to spare: send them from here */
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	free(t);
	if (!u->failed)
		return 0;
	dd_error("%s", u->failure);
	if (u->hint)
		dd_hint("%s", u->hint);
	return u->failed;
}

/* ---- the whole upload ---- */

/*
 * Completing answered NoSuchUpload: an earlier attempt may have completed it
 * and lost the answer (a reset after the server acted). The key holding an
 * object of the file's size says so; anything else is an error.
 */
static int
completed_anyway(struct upload *u)
{
	struct dd_s3_head h;
	int r = dd_s3_head(u->c, u->key, &h);

	if (r == 0 && h.size == u->size)
		return 0;
	if (r == 0 || r == DD_NOTFOUND)
		return dd_error("the multipart upload of %s in bucket %s vanished before it was completed", u->key,
				dd_s3_client_bucket(u->c));
	return r;
}

static int
multipart(struct upload *u)
{
	char (*etags)[80] = NULL;
	int r;

	record_load(u);
	if (u->upload_id && (r = match_listed(u)) != 0)
		return r;
	if (!u->upload_id) {
		if ((r = dd_s3_mpu_create(u->c, u->key, &u->upload_id)) != 0)
			return r;
		record_save(u);
	}
	r = send_parts(u);
	if (r == 0) {
		etags = dd_calloc((size_t)u->nparts, sizeof(*etags));
		for (int i = 0; i < u->nparts; i++)
			memcpy(etags[i], u->parts[i].etag, sizeof(etags[i]));
		r = dd_s3_mpu_complete(u->c, u->key, u->upload_id, etags, (size_t)u->nparts);
		free(etags);
		if (r == DD_NOTFOUND)
			r = completed_anyway(u);
	}
	if (r == 0) {
		dd_debug("uploaded %s in %d parts (%" PRIu64 " bytes resumed)", u->key, u->nparts, u->skipped);
		record_remove(u);
	} else if (r != DD_EUNREACHABLE) {
		struct dd_error_saved saved;
		dd_error_save(&saved);
		if (dd_s3_mpu_abort(u->c, u->key, u->upload_id) != 0)
			dd_debug("cannot abort the upload of %s: %s", u->key, dd_error_last());
		record_remove(u);
		dd_error_restore(&saved);
	}
	return r;
}

int
dd_s3_upload_file(struct dd_s3_client *c, const char *key, const char *path, const char *record, const char *sha256)
{
	struct upload u = { .c = c, .key = key, .record = record, .fd = -1 };
	struct stat st;
	int r = -1;

	pthread_mutex_init(&u.mu, NULL);
	if ((u.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(u.fd, &st) < 0) {
		dd_error_errno("cannot read %s", path);
		goto out;
	}
	u.size = (uint64_t)st.st_size;
	u.part_size = dd_s3_client_part_size(c);
	if (u.size <= u.part_size) {
		r = dd_s3_put_fd(c, key, u.fd, 0, u.size, 1, sha256, path);
		goto out;
	}
	/* completing cannot be conditional everywhere (RGW 16): look first */
	r = dd_s3_head(c, key, NULL);
	if (r == 0) {
		record_remove(&u); /* an earlier run completed it and was stopped before it could say so */
		r = DD_EXISTS;
	}
	if (r != DD_NOTFOUND)
		goto out;
	if (sha256) { /* no part says whether the whole matches its name: check before anything is sent */
		char whole[65];
		if ((r = hash_range(&u, 0, u.size, whole)) < 0)
			goto out;
		if (strcmp(whole, sha256)) {
			dd_s3_damaged_error(key, path, "its SHA-256 differs; nothing was sent");
			r = -1;
			goto out;
		}
	}
	while ((u.size + u.part_size - 1) / u.part_size > DD_S3_MAX_PARTS)
		u.part_size *= 2;
	u.nparts = (int)((u.size + u.part_size - 1) / u.part_size);
	u.parts = dd_calloc((size_t)u.nparts, sizeof(*u.parts));
	for (int i = 0; i < u.nparts; i++)
		u.parts[i].size = part_len(&u, i + 1);
	r = multipart(&u);
out:
	if (u.fd >= 0)
		close(u.fd);
	free(u.parts);
	free(u.upload_id);
	free(u.failure);
	free(u.hint);
	pthread_mutex_destroy(&u.mu);
	return r;
}
