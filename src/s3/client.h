/*
 * s3/client.h: an S3 client over libcurl's multi interface, one per store.
 *
 * One event thread drives a curl multi handle (its connection cache gives
 * connection reuse; at most `transfers` connections). Callers on any
 * thread submit a request and block until it completes, so N calling
 * threads get N parallel transfers over one pool. Every attempt is signed
 * with our own signer (s3/sigv4.h): x-amz-content-sha256 is the real
 * SHA-256 of the body, the query is built canonical, keys are encoded once
 * with '/' kept (CURLOPT_PATH_AS_IS), redirects are never followed.
 *
 * Transient failures (5xx, 429, 503 SlowDown, RequestTimeout, connection
 * resets, timeouts, bodies shorter than announced) are retried up to the
 * retry limit with exponential backoff and full jitter, re-signed each
 * time; a cut-off GET resumes from the byte where it stopped. Any other 4xx
 * stops at once with one line naming the bucket, S3's error code and what
 * to check. When the server cannot be reached after the retries the call
 * returns DD_EUNREACHABLE ("cannot reach the S3 store at ENDPOINT (...)"),
 * and later calls on the same client try once instead of retrying again,
 * so a command against a dead server ends in seconds.
 *
 * Credentials only ever appear in signed headers: never in a URL, an
 * error, a log line (CURLOPT_VERBOSE is always off).
 */
#ifndef DD_S3_CLIENT_H
#define DD_S3_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "s3/xml.h"
#include "util/buf.h"

struct dd_s3_client;

#define DD_S3_DEFAULT_TRANSFERS 8
#define DD_S3_DEFAULT_PART_SIZE (64ull << 20)
#define DD_S3_MIN_PART_SIZE (5ull << 20)
#define DD_S3_MAX_PARTS 10000
#define DD_S3_DEFAULT_RETRIES 6

struct dd_s3_client_opts {
	const char *bucket;   /* checked against S3's naming rules */
	const char *endpoint; /* scheme://host[:port]; NULL: AWS_ENDPOINT_URL_S3 ... (creds.h), else AWS */
	const char *region;   /* NULL: AWS_REGION ... (creds.h) */
	int path_style;       /* 1: bucket in the path; 0: in the host name; -1: automatic (dd_s3_use_path_style) */
	int transfers;        /* parallel connections (0: DD_S3_DEFAULT_TRANSFERS) */
	uint64_t part_size;   /* multipart above this (0: default; raised to DD_S3_MIN_PART_SIZE) */
	int retries;          /* attempts after the first (-1: DD_S3_DEFAULT_RETRIES) */
};

/* Resolve credentials (creds.h), start the event thread. 0, DD_NOTFOUND (no credentials), -1. */
int dd_s3_client_new(struct dd_s3_client **out, const struct dd_s3_client_opts *o);
/* Stops the event thread; no request may be in flight. Wipes the credentials. */
void dd_s3_client_free(struct dd_s3_client *c);

/* What the client settled on (for messages and the backend). */
const char *dd_s3_client_endpoint(const struct dd_s3_client *c);
const char *dd_s3_client_bucket(const struct dd_s3_client *c);
int dd_s3_client_transfers(const struct dd_s3_client *c);
uint64_t dd_s3_client_part_size(const struct dd_s3_client *c);
/*
 * The server's clock: the Date header of the last answer that had one,
 * plus the time since (this machine's monotonic clock). 0 with *now set,
 * DD_NOTFOUND when no answer gave one yet.
 */
int dd_s3_client_server_now(struct dd_s3_client *c, int64_t *now);

/* ---- objects ---- */

/* Metadata of one object. */
struct dd_s3_head {
	uint64_t size;
	int64_t mtime;  /* seconds since the epoch, -1 unknown */
	char etag[80];  /* as sent, quotes included */
};

/*
 * GET `key` into out (replacing): the whole object (at most `max` bytes:
 * a larger one is an error) when whole, else exactly bytes [off, off+len)
 * (206 with a matching Content-Range; a shorter object is an error). 0,
 * DD_NOTFOUND (no error set), -1, DD_EUNREACHABLE.
 */
int dd_s3_get(struct dd_s3_client *c, const char *key, struct dd_buf *out, size_t max);
int dd_s3_get_range(struct dd_s3_client *c, const char *key, uint64_t off, size_t len, struct dd_buf *out);
/*
 * GET the whole of `key` into the file `fd` from its offset 0, streamed as
 * it arrives (memory stays bounded; the event thread writes), resumed with
 * a Range pinned to the first answer's ETag when cut short, the file
 * truncated to the object's size at the end. At most `max` bytes. 0 with
 * *size set, DD_NOTFOUND (no error set), -1, DD_EUNREACHABLE; on failure
 * the file holds some prefix of the object, or nothing.
 */
int dd_s3_get_fd(struct dd_s3_client *c, const char *key, int fd, uint64_t max, uint64_t *size);
/* HEAD: 0 with *h filled (h may be NULL), DD_NOTFOUND (no error set), -1, DD_EUNREACHABLE. */
int dd_s3_head(struct dd_s3_client *c, const char *key, struct dd_s3_head *h);

/*
 * PUT a body from memory, or from bytes [off, off+len) of the file `fd`
 * (read as it is sent: memory stays bounded). The payload hash sent is
 * `sha256` (hex) when given -- a pack's name, so the server refuses bytes
 * that do not match it (XAmzContentSHA256Mismatch / BadDigest: "the local
 * cache copy of packs/... is damaged", naming `path`) -- else the file's
 * SHA-256, computed first in one pass. create_only sends If-None-Match: *
 * and maps 412 to DD_EXISTS. 0, DD_EXISTS, -1, DD_EUNREACHABLE.
 */
int dd_s3_put(struct dd_s3_client *c, const char *key, const void *data, size_t len, int create_only);
int dd_s3_put_fd(struct dd_s3_client *c, const char *key, int fd, uint64_t off, uint64_t len, int create_only,
		 const char *sha256, const char *path);
/* The error (and hint) for a local file at `path` whose bytes do not match its name (key); `why` says how we know. */
void dd_s3_damaged_error(const char *key, const char *path, const char *why);
/* DELETE; a missing key is not an error. */
int dd_s3_delete(struct dd_s3_client *c, const char *key);
/* Multi-object delete (POST ?delete), 1000 keys per request; a key S3 could not delete is an error. */
int dd_s3_delete_many(struct dd_s3_client *c, const char *const *keys, size_t n);

/*
 * ListObjectsV2 of every key starting with `prefix`, all pages: `fn` is
 * called once per object (keys as stored); a non-zero return stops with
 * that value. 0, -1, DD_EUNREACHABLE, or fn's value.
 */
int dd_s3_list(struct dd_s3_client *c, const char *prefix,
	       int (*fn)(const struct dd_s3_object *o, void *arg), void *arg);

/* ---- multipart upload (see dd_s3_upload_file for the whole dance) ---- */

int dd_s3_mpu_create(struct dd_s3_client *c, const char *key, char **upload_id);
/* Upload part `number` from bytes [off, off+len) of fd whose SHA-256 is `sha256` (hex); etag gets S3's ETag. */
int dd_s3_mpu_part(struct dd_s3_client *c, const char *key, const char *upload_id, int number, int fd,
		   uint64_t off, uint64_t len, const char *sha256, char etag[80]);
/* The parts S3 holds for the upload, all pages. DD_NOTFOUND: no such upload (NoSuchUpload). */
int dd_s3_mpu_list_parts(struct dd_s3_client *c, const char *key, const char *upload_id, struct dd_s3_parts *out);
/*
 * Complete with parts 1..n whose ETags are etags[0..n-1] (a 200 carrying an
 * <Error> is an error). DD_NOTFOUND (no error set): S3 no longer knows the
 * upload (NoSuchUpload), which is also what a retry sees when the first
 * attempt completed it but its answer was lost.
 */
int dd_s3_mpu_complete(struct dd_s3_client *c, const char *key, const char *upload_id, char (*etags)[80], size_t n);
/* Abort an upload; one S3 no longer knows is not an error. */
int dd_s3_mpu_abort(struct dd_s3_client *c, const char *key, const char *upload_id);
/*
 * ListMultipartUploads of every upload in progress whose key starts with
 * `prefix`, all pages (key-marker, upload-id-marker): `fn` is called once
 * per upload; a non-zero return stops with that value. Markers that do not
 * move on, or 100 empty pages in a row, are errors; past 1,000 pages (a
 * server whose markers keep moving in circles) the walk stops with a
 * warning line, what it found done, the rest left for the next run. 0, -1,
 * DD_EUNREACHABLE, or fn's value.
 */
int dd_s3_mpu_list(struct dd_s3_client *c, const char *prefix, int (*fn)(const struct dd_s3_upload *u, void *arg),
		   void *arg);

/*
 * Upload the file `path` to `key`, create-only: a single PUT up to the
 * part size, a multipart upload above it (HEAD first, since completing
 * cannot be conditional everywhere: DD_EXISTS when the key is there),
 * parts sent in parallel over up to `transfers` threads, each read from
 * the file and hashed on its own (memory bounded by the number of
 * transfers, not the file size). Resumable: the upload id and the parts
 * sent (number, size, SHA-256, ETag) are recorded in `record` (a local
 * file; NULL: no record); the next call lists the upload's parts and skips
 * those whose number, size, SHA-256 and ETag still match. When the server
 * is unreachable the upload and the record are kept for the next attempt;
 * on any other failure the upload is aborted and the record removed.
 * `sha256` (hex, or NULL): the SHA-256 the file is named by (a pack). A
 * single PUT sends it as the payload hash, so the server refuses other
 * bytes; a multipart upload hashes the whole file first and refuses to
 * start (or complete a resumed upload) when it does not match.
 * 0, DD_EXISTS, -1, DD_EUNREACHABLE.
 */
int dd_s3_upload_file(struct dd_s3_client *c, const char *key, const char *path, const char *record,
		      const char *sha256);

/*
 * The record of a multipart upload in progress, kept in a local file so an
 * interrupted upload resumes (format in s3/upload.c). Read as untrusted.
 */
struct dd_s3_record_part {
	uint64_t size;
	char sha[65];  /* SHA-256 of the part, hex */
	char etag[80]; /* as S3 gave it */
	int sent;
};
/* Text of the record of `upload_id` for `key`: parts[i] (part i + 1) is listed when sent. */
void dd_s3_record_format(struct dd_buf *out, const char *key, uint64_t size, uint64_t part_size,
			 const char *upload_id, const struct dd_s3_record_part *parts, int nparts);
/*
 * Parse a record for exactly this key, file size and part size into
 * *upload_id (caller frees) and the `sent`, `sha` and `etag` of parts[]
 * (whose sizes the caller filled in: a recorded size must match). 0, or
 * DD_NOTFOUND (no error set) for anything else, parts[] left unsent.
 */
int dd_s3_record_parse(const char *text, size_t len, const char *key, uint64_t size, uint64_t part_size,
		       char **upload_id, struct dd_s3_record_part *parts, int nparts);

/*
 * The record file `record` of an upload that will never be resumed (its
 * file is gone): when it names `key`, abort that upload and remove the
 * record. 0, DD_NOTFOUND (no record, or another key's: left alone; the
 * uploads nobody records are listed by `gc --store`, dd_s3_mpu_list, and
 * aborted once older than its grace period), -1, DD_EUNREACHABLE.
 */
int dd_s3_record_abort(struct dd_s3_client *c, const char *record, const char *key);

/* ---- pure pieces, exposed for the unit tests ---- */

/*
 * Path-style addressing is automatic, as AWS's SDKs do it, for an
 * endpoint whose host is an IP address or `localhost`, and for a bucket
 * name with a dot (it would not match a TLS wildcard certificate).
 * dd_s3_path_style() applies a store's setting (1, 0, -1 automatic): an IP
 * address or `localhost` gets path style whatever the setting, since no
 * host name can carry the bucket there.
 */
int dd_s3_use_path_style(const char *endpoint, const char *bucket);
int dd_s3_path_style(int setting, const char *endpoint, const char *bucket);
/*
 * Split an endpoint "scheme://host[:port][/]" into "http"/"https" and
 * "host[:port]" (caller frees both). Anything else (user info, a path, a
 * query, another scheme) is refused with an error.
 */
int dd_s3_endpoint_parse(const char *endpoint, char **scheme, char **hostport);
/*
 * The canonical URI of `key` (NULL or "" for the bucket itself): "/KEY"
 * (virtual host) or "/BUCKET/KEY" (path style), each byte outside
 * A-Za-z0-9-_.~/ percent-encoded once. Appended to out.
 */
void dd_s3_canonical_path(struct dd_buf *out, const char *bucket, const char *key, int path_style);
/* A canonical query from name/value pairs (sorted by name, then value; encoded; "name=" for empty). */
struct dd_s3_param {
	const char *name;
	const char *value; /* NULL or "" for none */
};
void dd_s3_canonical_query(struct dd_buf *out, const struct dd_s3_param *p, size_t n);
/* Bucket names as S3 takes them: 3-63 of [a-z0-9.-], starting and ending with a letter or digit. */
int dd_s3_bucket_name_ok(const char *bucket);
/* The backoff before retry `attempt` (0-based), in ms: full jitter in [0, min(cap, base * 2^attempt)]. */
unsigned dd_s3_backoff_ms(int attempt, unsigned rnd);

/*
 * SHA-256 (64 lowercase hex) of bytes [off, off + len) of fd, read in 1 MiB
 * pieces (memory stays bounded); `key` names the file in errors (a read
 * error, or a file shorter than off + len).
 */
int dd_s3_hash_region(char hex[65], int fd, uint64_t off, uint64_t len, const char *key);

#endif
