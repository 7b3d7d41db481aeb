/*
 * s3/sigv4.c: AWS Signature Version 4, header form (see sigv4.h), on
 * libsodium's SHA-256 and HMAC-SHA256.
 *
 *   canonical request = METHOD \n path \n query \n
 *                       (lowercase-name ":" trimmed-value \n)* \n
 *                       signed-header-names (";"-joined) \n payload-hash
 *   string to sign    = "AWS4-HMAC-SHA256" \n amz-date \n scope \n hex(SHA-256(canonical request))
 *   scope             = yyyymmdd/region/service/aws4_request
 *   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" secret, yyyymmdd), region), service), "aws4_request")
 *
 * The canonical request itself adds host, x-amz-date and (unless
 * req->omit_content_sha256) x-amz-content-sha256 to the caller's headers;
 * dd_sigv4_sign() adds x-amz-security-token to that list for session
 * credentials, so whatever is signed is exactly what it returns to send.
 * A caller's header named like one of those is refused rather than signed
 * twice. Header names are sorted bytewise after lower-casing; repeated
 * names are joined with commas in the order given (AWS's rule).
 *
 * Nothing here quotes a credential in an error; derived keys and the
 * "AWS4"+secret buffer are wiped before they are freed.
 */
#include "s3/sigv4.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/hex.h"
#include "util/sha256.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALGORITHM "AWS4-HMAC-SHA256"

/* The headers the signer adds itself, which a caller may not pass. */
static const char *const reserved[] = { "host", "x-amz-date", "x-amz-content-sha256", "authorization" };

struct hdr {
	char *name; /* lower-cased copy */
	const char *value;
	size_t order; /* position given, to keep repeated names in order */
};

void
dd_sha256_hex(char hex[65], const void *data, size_t len)
{
	uint8_t h[DD_SHA256_BYTES];

	dd_sha256(h, data, len);
	dd_hex_encode(hex, h, sizeof(h));
}

void
dd_sigv4_uri_encode(struct dd_buf *out, const char *s, size_t len, int keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '_' || c == '.' || c == '~' || (c == '/' && keep_slash)) {
			dd_buf_putc(out, (char)c);
		} else {
			char esc[3] = { '%', digits[c >> 4], digits[c & 15] };
			dd_buf_put(out, esc, 3);
		}
	}
}

/* "20150830T123600Z" into amz[17], "20150830" is its first 8 bytes; -1 if `t` has no such date. */
static int
amz_date(char amz[17], time_t t)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900 ||
	    strftime(amz, 17, "%Y%m%dT%H%M%SZ", &tm) != 16) {
		memcpy(amz, "00000000T000000Z", 17);
		return -1;
	}
	return 0;
}

static int
is_tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int
has_line_break(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

/* A region or service goes into the scope between '/': plain characters only. */
static int
scope_part_ok(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_' || *s == '.'))
			return 0;
	return 1;
}

static int
check_request(const struct dd_sigv4_request *req)
{
	if (!req->method || !*req->method || !req->host || !*req->host || !req->path || req->path[0] != '/' ||
	    !req->payload_hash || !*req->payload_hash)
		return dd_error("cannot sign an S3 request without a method, host, path and payload hash");
	for (const char *m = req->method; *m; m++)
		if (*m < 'A' || *m > 'Z')
			return dd_error("cannot sign an S3 request: method is not an upper-case word");
	if (!scope_part_ok(req->region) || !scope_part_ok(req->service))
		return dd_error("cannot sign an S3 request: region and service must be non-empty words "
				"of letters, digits, '-', '_' or '.'");
	if (has_line_break(req->host) || strpbrk(req->path, " \r\n") || (req->query && strpbrk(req->query, " \r\n")) ||
	    strpbrk(req->payload_hash, " \r\n"))
		return dd_error("cannot sign an S3 request: host, path, query or payload hash contains a space or line break");
	return 0;
}

static int
check_header(const struct dd_sigv4_header *h, int omit_content_sha256)
{
	if (!h->name || !*h->name || !h->value)
		return dd_error("cannot sign an S3 request: a header has no name or no value");
	for (const char *p = h->name; *p; p++)
		if (!is_tchar((unsigned char)*p))
			return dd_error("cannot sign an S3 request: a header name is not a valid HTTP token");
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		if (omit_content_sha256 && !strcmp(reserved[i], "x-amz-content-sha256"))
			continue;
		if (!strcasecmp(h->name, reserved[i]))
			return dd_error("cannot sign an S3 request: header %s is added by the signer itself", reserved[i]);
	}
	if (has_line_break(h->value))
		return dd_error("cannot sign an S3 request: header %s has a line break in its value", h->name);
	return 0;
}

/* Append `v` trimmed, each run of spaces and tabs inside it as one space. */
static void
put_trimmed(struct dd_buf *out, const char *v)
{
	int pending = 0, started = 0;

	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			pending = started;
			continue;
		}
		if (pending)
			dd_buf_putc(out, ' ');
		dd_buf_putc(out, *v);
		pending = 0, started = 1;
	}
}

static int
hdr_cmp(const void *a, const void *b)
{
	const struct hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static void
add_hdr(struct hdr *list, size_t *n, const char *name, const char *value)
{
	char *lower = dd_strdup(name);

	for (char *p = lower; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	list[*n].name = lower;
	list[*n].value = value;
	list[*n].order = *n;
	(*n)++;
}

/* The canonical header block and the signed-header list, from a sorted list. */
static void
put_headers(struct dd_buf *out, struct dd_buf *names, const struct hdr *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int repeat = i > 0 && !strcmp(list[i].name, list[i - 1].name);
		if (repeat) {
			dd_buf_putc(out, ',');
		} else {
			if (i > 0) {
				dd_buf_putc(out, '\n');
				dd_buf_putc(names, ';');
			}
			dd_buf_printf(out, "%s:", list[i].name);
			dd_buf_puts(names, list[i].name);
		}
		put_trimmed(out, list[i].value);
	}
	dd_buf_putc(out, '\n');
}

int
dd_sigv4_canonical_request(struct dd_buf *out, const struct dd_sigv4_request *req, struct dd_buf *signed_headers)
{
	struct hdr *list = NULL;
	size_t n = 0;
	char amz[17];
	int rc = -1;

	if (check_request(req) < 0)
		goto out;
	if (amz_date(amz, req->now) < 0) {
		dd_error("cannot sign an S3 request: its time is out of range");
		goto out;
	}
	for (size_t i = 0; i < req->nheaders; i++)
		if (check_header(&req->headers[i], req->omit_content_sha256) < 0)
			goto out;
	list = dd_calloc(req->nheaders + 3, sizeof(*list));
	add_hdr(list, &n, "host", req->host);
	add_hdr(list, &n, "x-amz-date", amz);
	if (!req->omit_content_sha256)
		add_hdr(list, &n, "x-amz-content-sha256", req->payload_hash);
	for (size_t i = 0; i < req->nheaders; i++)
		add_hdr(list, &n, req->headers[i].name, req->headers[i].value);
	qsort(list, n, sizeof(*list), hdr_cmp);

	dd_buf_printf(out, "%s\n%s\n%s\n", req->method, req->path, req->query ? req->query : "");
	dd_buf_clear(signed_headers);
	put_headers(out, signed_headers, list, n);
	dd_buf_printf(out, "\n%s\n%s", dd_buf_cstr(signed_headers), req->payload_hash);
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		free(list[i].name);
	free(list);
	return rc;
}

static void
put_scope(struct dd_buf *out, const struct dd_sigv4_request *req, const char *amz)
{
	dd_buf_printf(out, "%.8s/%s/%s/aws4_request", amz, req->region, req->service);
}

void
dd_sigv4_string_to_sign(struct dd_buf *out, const struct dd_sigv4_request *req, const char *canonical_request)
{
	char amz[17], hash[65];

	amz_date(amz, req->now);
	dd_sha256_hex(hash, canonical_request, strlen(canonical_request));
	dd_buf_printf(out, ALGORITHM "\n%s\n", amz);
	put_scope(out, req, amz);
	dd_buf_printf(out, "\n%s", hash);
}

static void
hmac(unsigned char out[crypto_auth_hmacsha256_BYTES], const unsigned char *key, size_t keylen, const char *msg)
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, strlen(msg));
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

void
dd_sigv4_signature(char hex[65], const struct dd_sigv4_request *req, const char *secret_key, const char *string_to_sign)
{
	unsigned char k[crypto_auth_hmacsha256_BYTES], sig[crypto_auth_hmacsha256_BYTES];
	size_t slen = strlen(secret_key);
	unsigned char *first = dd_malloc(slen + 4);
	char amz[17];

	amz_date(amz, req->now);
	amz[8] = '\0';
	memcpy(first, "AWS4", 4);
	memcpy(first + 4, secret_key, slen);
	hmac(k, first, slen + 4, amz);
	sodium_memzero(first, slen + 4);
	free(first);
	hmac(k, k, sizeof(k), req->region);
	hmac(k, k, sizeof(k), req->service);
	hmac(k, k, sizeof(k), "aws4_request");
	hmac(sig, k, sizeof(k), string_to_sign);
	sodium_memzero(k, sizeof(k));
	dd_hex_encode(hex, sig, sizeof(sig));
	sodium_memzero(sig, sizeof(sig));
}

static int
check_creds(const struct dd_sigv4_creds *c)
{
	if (!c || !c->access_key || !*c->access_key || !c->secret_key || !*c->secret_key)
		return dd_error("cannot sign an S3 request: the access key or secret key is empty");
	for (const char *p = c->access_key; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '/' || *p == ',' || *p == 0x7f)
			return dd_error("cannot sign an S3 request: the access key id contains a space, control "
					"character, '/' or ','");
	if (c->session_token && (has_line_break(c->session_token) || !*c->session_token))
		return dd_error("cannot sign an S3 request: the session token is empty or has a line break");
	return 0;
}

/* req with x-amz-security-token appended to its headers when there is a token. */
static struct dd_sigv4_header *
with_token(struct dd_sigv4_request *copy, const struct dd_sigv4_request *req, const struct dd_sigv4_creds *c)
{
	struct dd_sigv4_header *h;

	*copy = *req;
	if (!c->session_token)
		return NULL;
	h = dd_calloc(req->nheaders + 1, sizeof(*h));
	if (req->nheaders)
		memcpy(h, req->headers, req->nheaders * sizeof(*h));
	h[req->nheaders].name = "x-amz-security-token";
	h[req->nheaders].value = c->session_token;
	copy->headers = h;
	copy->nheaders = req->nheaders + 1;
	return h;
}

static int
caller_sets_token(const struct dd_sigv4_request *req)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (req->headers[i].name && !strcasecmp(req->headers[i].name, "x-amz-security-token"))
			return dd_error("cannot sign an S3 request: header x-amz-security-token is added by the "
					"signer itself");
	return 0;
}

int
dd_sigv4_sign(struct dd_sigv4_signed *out, const struct dd_sigv4_request *req, const struct dd_sigv4_creds *c)
{
	struct dd_buf canon = DD_BUF_INIT, names = DD_BUF_INIT, sts = DD_BUF_INIT, auth = DD_BUF_INIT;
	struct dd_sigv4_request r;
	struct dd_sigv4_header *extra = NULL;
	char amz[17], sig[65];
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (check_creds(c) < 0 || caller_sets_token(req) < 0)
		goto out;
	extra = with_token(&r, req, c);
	if (dd_sigv4_canonical_request(&canon, &r, &names) < 0)
		goto out;
	dd_sigv4_string_to_sign(&sts, &r, canon.ptr);
	dd_sigv4_signature(sig, &r, c->secret_key, sts.ptr);
	amz_date(amz, r.now);

	out->lines[out->n++] = dd_asprintf("x-amz-date: %s", amz);
	if (!r.omit_content_sha256)
		out->lines[out->n++] = dd_asprintf("x-amz-content-sha256: %s", r.payload_hash);
	if (c->session_token)
		out->lines[out->n++] = dd_asprintf("x-amz-security-token: %s", c->session_token);
	dd_buf_printf(&auth, "Authorization: " ALGORITHM " Credential=%s/", c->access_key);
	put_scope(&auth, &r, amz);
	dd_buf_printf(&auth, ", SignedHeaders=%s, Signature=%s", names.ptr, sig);
	out->lines[out->n++] = dd_buf_detach(&auth, NULL);
	sodium_memzero(sig, sizeof(sig));
	rc = 0;
out:
	free(extra);
	dd_buf_release_secret(&canon); /* it holds x-amz-security-token */
	dd_buf_release(&names);
	dd_buf_release(&sts);
	dd_buf_release_secret(&auth);
	return rc;
}

void
dd_sigv4_signed_free(struct dd_sigv4_signed *s)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->lines[i]) {
			sodium_memzero(s->lines[i], strlen(s->lines[i]));
			free(s->lines[i]);
		}
		s->lines[i] = NULL;
	}
	s->n = 0;
}
