/*
 * s3/sigv4.h: AWS Signature Version 4 (header form), our own signer on
 * libsodium's SHA-256 and HMAC-SHA256, so it behaves the same whatever
 * libcurl the machine has (Debian 12's 7.88.1 CURLOPT_AWS_SIGV4 has the
 * limits listed in DESIGN §6). Unit-tested against AWS's published vectors
 * (tests/unit/test-sigv4.c).
 *
 * The caller builds the canonical URI and query (dd_sigv4_uri_encode) and
 * sends exactly what was signed: every header named in the request plus the
 * ones dd_sigv4_sign() returns.
 */
#ifndef DD_S3_SIGV4_H
#define DD_S3_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/buf.h"

/* Credentials; never logged, never part of an error message. */
struct dd_sigv4_creds {
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL when none */
};

struct dd_sigv4_header {
	const char *name;  /* any case; signed lower-cased, values trimmed as SigV4 says */
	const char *value;
};

struct dd_sigv4_request {
	const char *method;    /* "GET", "PUT", "HEAD", "POST", "DELETE" */
	const char *host;      /* the Host header as sent: "bucket.s3.eu-west-1.amazonaws.com", "127.0.0.1:7480" */
	const char *path;      /* canonical URI, already encoded (S3: once, '/' kept): "/bucket/data/ab%20c" */
	const char *query;     /* canonical query: sorted by name, encoded, "uploads=" for empty values; "" when none */
	const struct dd_sigv4_header *headers; /* further headers to sign and send (Range, If-None-Match, Content-Type ...) */
	size_t nheaders;
	const char *payload_hash; /* 64 lowercase hex of SHA-256(body), or "UNSIGNED-PAYLOAD" */
	const char *region;    /* "us-east-1" */
	const char *service;   /* "s3" */
	time_t now;            /* request time (UTC seconds) */
	/*
	 * 0 (the default, and what S3 needs): sign and send
	 * x-amz-content-sha256. 1: leave it out, as AWS's generic SigV4 test
	 * vectors do (tests/unit/test-sigv4.c); no S3 request sets it.
	 */
	int omit_content_sha256;
};

/*
 * The headers to add to the request, each "Name: value" without CRLF, in
 * this order: "x-amz-date", "x-amz-content-sha256", then
 * "x-amz-security-token" (session credentials only), then "Authorization".
 */
struct dd_sigv4_signed {
	char *lines[4];
	size_t n;
};

/*
 * Sign `req` with `c`. The signed headers are host, every header in
 * req->headers, x-amz-content-sha256, x-amz-date and x-amz-security-token
 * when there is one. Returns 0, or -1 with an error (a malformed request:
 * a header name or value with a CR/LF, a missing field) that never quotes
 * a credential.
 */
int dd_sigv4_sign(struct dd_sigv4_signed *out, const struct dd_sigv4_request *req, const struct dd_sigv4_creds *c);
/* Wipes and frees the lines (they hold the signature). */
void dd_sigv4_signed_free(struct dd_sigv4_signed *s);

/*
 * Pieces exposed for the tests (AWS's vectors check each step) and for
 * the S3 client building requests:
 *   canonical request, string to sign, and the signature (64 hex).
 */
int dd_sigv4_canonical_request(struct dd_buf *out, const struct dd_sigv4_request *req, struct dd_buf *signed_headers);
void dd_sigv4_string_to_sign(struct dd_buf *out, const struct dd_sigv4_request *req, const char *canonical_request);
void dd_sigv4_signature(char hex[65], const struct dd_sigv4_request *req, const char *secret_key, const char *string_to_sign);

/*
 * Append `s` percent-encoded as SigV4 wants: every byte outside
 * A-Za-z0-9-_.~ as %XX (uppercase hex); '/' kept when keep_slash (object
 * keys in paths), encoded otherwise (query names and values).
 */
void dd_sigv4_uri_encode(struct dd_buf *out, const char *s, size_t len, int keep_slash);

/* Lowercase hex SHA-256 of a buffer (65 bytes with the NUL). */
void dd_sha256_hex(char hex[65], const void *data, size_t len);

#endif
