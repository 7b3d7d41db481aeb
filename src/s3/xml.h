/*
 * s3/xml.h: the parts of S3's XML replies we read, parsed with expat. The
 * bodies come from the network and are hostile: sizes are bounded, unknown
 * elements ignored, malformed documents refused (fuzz/fuzz-s3xml.c).
 */
#ifndef DD_S3_XML_H
#define DD_S3_XML_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* <Error><Code>…</Code><Message>…</Message></Error> (Message often empty on RGW). */
struct dd_s3_error {
	char code[64];
	char message[256];
};
/* 0 parsed (code may still be empty), -1 not an S3 error document. */
int dd_s3_xml_error(const char *body, size_t len, struct dd_s3_error *e);

/* ListObjectsV2 (ListBucketResult). */
struct dd_s3_object {
	char *key;
	uint64_t size;
	int64_t mtime; /* LastModified as seconds since the epoch (UTC); -1 when the entry has none */
};
struct dd_s3_list {
	struct dd_s3_object *objects;
	size_t n;
	int truncated;    /* IsTruncated */
	char *next_token; /* NextContinuationToken, NULL when none */
};
int dd_s3_xml_list(const char *body, size_t len, struct dd_s3_list *out);
void dd_s3_list_free(struct dd_s3_list *l);

/* InitiateMultipartUploadResult: the UploadId (caller frees). */
int dd_s3_xml_upload_id(const char *body, size_t len, char **upload_id);

/* ListParts (ListPartsResult). */
struct dd_s3_part {
	int number;
	uint64_t size;
	char etag[80]; /* as sent, quotes included */
};
struct dd_s3_parts {
	struct dd_s3_part *parts;
	size_t n;
	int truncated;
	int next_marker; /* NextPartNumberMarker */
};
int dd_s3_xml_parts(const char *body, size_t len, struct dd_s3_parts *out);
void dd_s3_parts_free(struct dd_s3_parts *p);

/*
 * ListMultipartUploads (ListMultipartUploadsResult): every upload in
 * progress on the page, with its key, id and start. Key and UploadId are
 * required (1..1024 bytes); a missing Initiated is -1 (unknown: never
 * taken for old), a malformed one refuses the reply. A truncated page must
 * give NextKeyMarker (NextUploadIdMarker may be absent or empty).
 */
struct dd_s3_upload {
	char *key;
	char *upload_id;
	int64_t initiated; /* seconds since the epoch (UTC), -1 unknown */
};
struct dd_s3_uploads {
	struct dd_s3_upload *uploads;
	size_t n;
	int truncated;                /* IsTruncated */
	char *next_key_marker;        /* NextKeyMarker, NULL when none or empty */
	char *next_upload_id_marker;  /* NextUploadIdMarker, NULL when none or empty */
};
int dd_s3_xml_uploads(const char *body, size_t len, struct dd_s3_uploads *out);
void dd_s3_uploads_free(struct dd_s3_uploads *u);

/*
 * CompleteMultipartUpload answers 200 and may still carry an <Error>:
 * 0 completed, 1 an error document (e filled), -1 unparseable.
 */
int dd_s3_xml_complete(const char *body, size_t len, struct dd_s3_error *e);

/*
 * Replace, in place, what in server text could break a one-line error or
 * drive a terminal (C0 and C1 controls, DEL, U+2028, U+2029) with '?'; the
 * new length. Error codes and messages are copied through it; a caller
 * showing other server text (a key S3 could not delete) uses it too.
 */
size_t dd_s3_xml_printable(char *s, size_t n);

/* DeleteResult of a multi-object delete: the keys that failed, with their codes. */
struct dd_s3_delete_failure {
	char *key;
	char code[64];
};
int dd_s3_xml_delete_result(const char *body, size_t len, struct dd_s3_delete_failure **failed, size_t *n);
void dd_s3_delete_failures_free(struct dd_s3_delete_failure *f, size_t n);

/* The XML body of a multi-object delete request for `keys` (quiet mode), escaped. */
void dd_s3_xml_delete_request(struct dd_buf *out, const char *const *keys, size_t n);

#endif
