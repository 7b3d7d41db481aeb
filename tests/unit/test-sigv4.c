/*
 * tests/unit/test-sigv4.c: the SigV4 signer (s3/sigv4.c) against AWS's
 * published vectors: the generic v4 test suite (sigv4-vectors.h, every
 * case without path normalisation) and the four worked examples of the S3
 * API reference ("Signature Calculations for the Authorization Header",
 * examplebucket, 20130524), which sign x-amz-content-sha256 exactly as our
 * client sends it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3/sigv4.h"
#include "util/buf.h"
#include "util/err.h"
#include "sigv4-vectors.h"

#define SUITE_AKID "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_TIME 1440938160 /* 2015-08-30T12:36:00Z */
#define S3_AKID "AKIAIOSFODNN7EXAMPLE"
#define S3_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define S3_TIME 1369353600 /* 2013-05-24T00:00:00Z */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MAX_HEADERS 16

/* One request.txt taken apart the way our client would build it. */
struct parsed {
	char method[16];
	struct dd_buf path, query, body;
	char *host;
	struct dd_sigv4_header headers[MAX_HEADERS];
	size_t nheaders;
	char *storage; /* owns the header names and values */
};

static int
unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decode s[0..len) into out. */
static void
decode(struct dd_buf *out, const char *s, size_t len)
{
	dd_buf_clear(out);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len && unhex(s[i + 1]) >= 0 && unhex(s[i + 2]) >= 0) {
			dd_buf_putc(out, (char)(unhex(s[i + 1]) * 16 + unhex(s[i + 2])));
			i += 2;
		} else {
			dd_buf_putc(out, s[i]);
		}
	}
}

struct param {
	char *name, *value;
};

static int
param_cmp(const void *a, const void *b)
{
	const struct param *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

/*
 * The canonical query as the client builds it: each name and value decoded
 * and encoded again with dd_sigv4_uri_encode, sorted by name then value.
 */
static void
canonical_query(struct dd_buf *out, const char *raw, size_t len)
{
	struct param params[16];
	struct dd_buf tmp = DD_BUF_INIT, enc = DD_BUF_INIT;
	size_t n = 0, i = 0;

	while (i < len) {
		size_t end = i, eq;
		while (end < len && raw[end] != '&')
			end++;
		for (eq = i; eq < end && raw[eq] != '='; eq++)
			;
		assert_true(n < 16);
		decode(&tmp, raw + i, eq - i);
		dd_buf_clear(&enc);
		dd_sigv4_uri_encode(&enc, dd_buf_cstr(&tmp), tmp.len, 0);
		params[n].name = dd_strdup(dd_buf_cstr(&enc));
		decode(&tmp, eq < end ? raw + eq + 1 : raw + end, eq < end ? end - eq - 1 : 0);
		dd_buf_clear(&enc);
		dd_sigv4_uri_encode(&enc, dd_buf_cstr(&tmp), tmp.len, 0);
		params[n].value = dd_strdup(dd_buf_cstr(&enc));
		n++;
		i = end + 1;
	}
	qsort(params, n, sizeof(params[0]), param_cmp);
	for (i = 0; i < n; i++) {
		dd_buf_printf(out, "%s%s=%s", i ? "&" : "", params[i].name, params[i].value);
		free(params[i].name);
		free(params[i].value);
	}
	dd_buf_release(&tmp);
	dd_buf_release(&enc);
}

/*
 * Take request.txt apart. A folded header line (obs-fold, leading
 * whitespace) is joined to the one before with a space when `unfold`,
 * else kept with its line break (which the signer must refuse).
 */
static void
parse_request(struct parsed *p, const char *text, int unfold)
{
	const char *line_end = strchr(text, '\n'), *sp = strchr(text, ' '), *proto, *q, *s;
	char *h, *next;

	memset(p, 0, sizeof(*p));
	proto = line_end;
	while (proto > sp && proto[0] != ' ')
		proto--;
	assert_true(sp && proto > sp && (size_t)(sp - text) < sizeof(p->method));
	memcpy(p->method, text, (size_t)(sp - text));
	q = memchr(sp + 1, '?', (size_t)(proto - sp - 1));
	dd_sigv4_uri_encode(&p->path, sp + 1, (size_t)((q ? q : proto) - sp - 1), 1);
	dd_buf_puts(&p->query, "");
	if (q)
		canonical_query(&p->query, q + 1, (size_t)(proto - q - 1));

	/* Headers until an empty line; the body after it. */
	s = strstr(line_end + 1, "\n\n");
	p->storage = dd_strndup(line_end + 1, s ? (size_t)(s - line_end) : strlen(line_end + 1));
	dd_buf_puts(&p->body, s ? s + 2 : "");
	for (h = p->storage; *h; h = next) {
		char *nl = strchr(h, '\n'), *colon;
		while (nl && (nl[1] == ' ' || nl[1] == '\t')) {
			if (unfold) {
				char *w = nl + 1;
				while (*w == ' ' || *w == '\t')
					w++;
				*nl = ' ';
				memmove(nl + 1, w, strlen(w) + 1);
			}
			nl = strchr(nl + 1, '\n');
		}
		next = nl ? nl + 1 : h + strlen(h);
		if (nl)
			*nl = '\0';
		colon = strchr(h, ':');
		assert_non_null(colon);
		*colon = '\0';
		if (!strcasecmp(h, "host")) {
			p->host = colon + 1;
			continue;
		}
		assert_true(p->nheaders < MAX_HEADERS);
		p->headers[p->nheaders].name = h;
		p->headers[p->nheaders].value = colon + 1;
		p->nheaders++;
	}
	assert_non_null(p->host);
}

static void
parsed_free(struct parsed *p)
{
	dd_buf_release(&p->path);
	dd_buf_release(&p->query);
	dd_buf_release(&p->body);
	free(p->storage);
}

static void
request_of(struct dd_sigv4_request *r, struct parsed *p, char hash[65], const struct vector *v)
{
	memset(r, 0, sizeof(*r));
	dd_sha256_hex(hash, p->body.ptr, p->body.len);
	r->method = p->method;
	r->host = p->host;
	r->path = p->path.ptr;
	r->query = p->query.ptr;
	r->headers = p->headers;
	r->nheaders = p->nheaders;
	r->payload_hash = hash;
	r->region = "us-east-1";
	r->service = "service";
	r->now = SUITE_TIME;
	r->omit_content_sha256 = !v->sign_body;
}

/* Canonical request, string to sign and signature, step by step. */
static void
check_steps(const struct vector *v, struct dd_sigv4_request *r, struct parsed *p)
{
	struct dd_buf canon = DD_BUF_INIT, names = DD_BUF_INIT, sts = DD_BUF_INIT;
	char sig[65];

	/* The pieces take no credentials: a signed token is one more header. */
	if (v->token && !v->omit_session_token) {
		p->headers[p->nheaders].name = "X-Amz-Security-Token";
		p->headers[p->nheaders].value = v->token;
		r->nheaders = p->nheaders + 1;
	}
	if (dd_sigv4_canonical_request(&canon, r, &names) < 0)
		fail_msg("%s: %s", v->name, dd_error_last());
	r->nheaders = p->nheaders;
	if (strcmp(canon.ptr, v->canonical))
		fail_msg("%s: canonical request\n%s\n--- expected\n%s", v->name, canon.ptr, v->canonical);
	dd_sigv4_string_to_sign(&sts, r, canon.ptr);
	if (strcmp(sts.ptr, v->string_to_sign))
		fail_msg("%s: string to sign\n%s\n--- expected\n%s", v->name, sts.ptr, v->string_to_sign);
	dd_sigv4_signature(sig, r, SUITE_SECRET, sts.ptr);
	if (strcmp(sig, v->signature))
		fail_msg("%s: signature %s, expected %s", v->name, sig, v->signature);
	assert_non_null(strstr(v->authorization, names.ptr));
	dd_buf_release(&canon);
	dd_buf_release(&names);
	dd_buf_release(&sts);
}

/* The whole signer: the header lines it returns, in their documented order. */
static void
check_sign(const struct vector *v, const struct dd_sigv4_request *r)
{
	struct dd_sigv4_creds c = { SUITE_AKID, SUITE_SECRET, v->token };
	struct dd_sigv4_signed out;
	char want[1024];
	size_t i = 0;

	if (dd_sigv4_sign(&out, r, &c) < 0)
		fail_msg("%s: %s", v->name, dd_error_last());
	assert_string_equal(out.lines[i++], "x-amz-date: 20150830T123600Z");
	if (v->sign_body) {
		snprintf(want, sizeof(want), "x-amz-content-sha256: %s", r->payload_hash);
		assert_string_equal(out.lines[i++], want);
	}
	if (v->token) {
		snprintf(want, sizeof(want), "x-amz-security-token: %s", v->token);
		assert_string_equal(out.lines[i++], want);
	}
	snprintf(want, sizeof(want), "Authorization: %s", v->authorization);
	if (strcmp(out.lines[i], want))
		fail_msg("%s: %s\nexpected %s", v->name, out.lines[i], want);
	assert_int_equal(out.n, i + 1);
	dd_sigv4_signed_free(&out);
	assert_int_equal(out.n, 0);
}

static void
aws_suite_vectors_reproduce_exactly(void **state)
{
	for (size_t k = 0; k < sizeof(vectors) / sizeof(vectors[0]); k++) {
		const struct vector *v = &vectors[k];
		struct dd_sigv4_request r;
		struct parsed p;
		char hash[65];

		parse_request(&p, v->request, 1);
		request_of(&r, &p, hash, v);
		check_steps(v, &r, &p);
		/*
		 * post-sts-header-after sends the token unsigned; our signer
		 * always signs it (what S3 expects), so that case is checked
		 * through the steps above only.
		 */
		if (!v->omit_session_token)
			check_sign(v, &r);
		parsed_free(&p);
	}
}

static void
folded_header_value_is_refused(void **state)
{
	const struct vector *v = NULL;
	struct dd_sigv4_request r;
	struct dd_sigv4_creds c = { SUITE_AKID, SUITE_SECRET, NULL };
	struct dd_sigv4_signed out;
	struct parsed p;
	char hash[65];

	for (size_t k = 0; k < sizeof(vectors) / sizeof(vectors[0]); k++)
		if (!strcmp(vectors[k].name, "get-header-value-multiline"))
			v = &vectors[k];
	assert_non_null(v);
	parse_request(&p, v->request, 0);
	request_of(&r, &p, hash, v);
	assert_int_equal(dd_sigv4_sign(&out, &r, &c), -1);
	assert_non_null(strstr(dd_error_last(), "line break"));
	assert_int_equal(out.n, 0);
	parsed_free(&p);
}

/* The S3 API reference's examples, with x-amz-content-sha256 signed. */
struct s3_example {
	const char *name, *method, *path, *query, *body;
	struct dd_sigv4_header headers[2];
	size_t nheaders;
	const char *canonical, *sts_hash, *signature, *signed_headers;
};

static const struct s3_example s3_examples[] = {
	{ "GET Object", "GET", "/test.txt", "", "", { { "Range", "bytes=0-9" } }, 1,
	  "GET\n/test.txt\n\n"
	  "host:examplebucket.s3.amazonaws.com\n"
	  "range:bytes=0-9\n"
	  "x-amz-content-sha256:" EMPTY_SHA256 "\n"
	  "x-amz-date:20130524T000000Z\n\n"
	  "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
	  "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
	  "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
	  "host;range;x-amz-content-sha256;x-amz-date" },
	{ "PUT Object", "PUT", "/test$file.text", "", "Welcome to Amazon S3.",
	  { { "Date", "Fri, 24 May 2013 00:00:00 GMT" }, { "x-amz-storage-class", "REDUCED_REDUNDANCY" } }, 2,
	  "PUT\n/test%24file.text\n\n"
	  "date:Fri, 24 May 2013 00:00:00 GMT\n"
	  "host:examplebucket.s3.amazonaws.com\n"
	  "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
	  "x-amz-date:20130524T000000Z\n"
	  "x-amz-storage-class:REDUCED_REDUNDANCY\n\n"
	  "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
	  "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
	  "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
	  "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
	  "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class" },
	{ "GET Bucket Lifecycle", "GET", "/", "lifecycle=", "", { { NULL, NULL } }, 0,
	  "GET\n/\nlifecycle=\n"
	  "host:examplebucket.s3.amazonaws.com\n"
	  "x-amz-content-sha256:" EMPTY_SHA256 "\n"
	  "x-amz-date:20130524T000000Z\n\n"
	  "host;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
	  "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
	  "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
	  "host;x-amz-content-sha256;x-amz-date" },
	{ "GET Bucket (List Objects)", "GET", "/", "max-keys=2&prefix=J", "", { { NULL, NULL } }, 0,
	  "GET\n/\nmax-keys=2&prefix=J\n"
	  "host:examplebucket.s3.amazonaws.com\n"
	  "x-amz-content-sha256:" EMPTY_SHA256 "\n"
	  "x-amz-date:20130524T000000Z\n\n"
	  "host;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
	  "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
	  "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
	  "host;x-amz-content-sha256;x-amz-date" },
};

static void
s3_reference_examples_reproduce_exactly(void **state)
{
	for (size_t k = 0; k < sizeof(s3_examples) / sizeof(s3_examples[0]); k++) {
		const struct s3_example *e = &s3_examples[k];
		struct dd_buf path = DD_BUF_INIT, canon = DD_BUF_INIT, names = DD_BUF_INIT, sts = DD_BUF_INIT;
		struct dd_sigv4_creds c = { S3_AKID, S3_SECRET, NULL };
		struct dd_sigv4_request r = { 0 };
		struct dd_sigv4_signed out;
		char hash[65], want[1024];

		dd_sigv4_uri_encode(&path, e->path, strlen(e->path), 1);
		dd_sha256_hex(hash, e->body, strlen(e->body));
		r.method = e->method, r.host = "examplebucket.s3.amazonaws.com", r.path = path.ptr;
		r.query = e->query, r.headers = e->headers, r.nheaders = e->nheaders;
		r.payload_hash = hash, r.region = "us-east-1", r.service = "s3", r.now = S3_TIME;

		assert_int_equal(dd_sigv4_canonical_request(&canon, &r, &names), 0);
		if (strcmp(canon.ptr, e->canonical))
			fail_msg("%s: canonical request\n%s\n--- expected\n%s", e->name, canon.ptr, e->canonical);
		dd_sigv4_string_to_sign(&sts, &r, canon.ptr);
		snprintf(want, sizeof(want), "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n%s",
			 e->sts_hash);
		assert_string_equal(sts.ptr, want);

		/* What the client sends: the same hash in the header it signed. */
		assert_int_equal(dd_sigv4_sign(&out, &r, &c), 0);
		assert_int_equal(out.n, 3);
		assert_string_equal(out.lines[0], "x-amz-date: 20130524T000000Z");
		snprintf(want, sizeof(want), "x-amz-content-sha256: %s", hash);
		assert_string_equal(out.lines[1], want);
		snprintf(want, sizeof(want),
			 "Authorization: AWS4-HMAC-SHA256 Credential=" S3_AKID "/20130524/us-east-1/s3/aws4_request, "
			 "SignedHeaders=%s, Signature=%s",
			 e->signed_headers, e->signature);
		assert_string_equal(out.lines[2], want);
		dd_sigv4_signed_free(&out);
		dd_buf_release(&path);
		dd_buf_release(&canon);
		dd_buf_release(&names);
		dd_buf_release(&sts);
	}
}

static const char *
encoded(int keep_slash, const char *s, size_t len)
{
	static struct dd_buf b = DD_BUF_INIT;

	dd_buf_clear(&b);
	dd_sigv4_uri_encode(&b, s, len, keep_slash);
	return dd_buf_cstr(&b);
}

static void
uri_encode_keeps_only_unreserved_bytes(void **state)
{
	static const char all_reserved[] = " !\"#$%&'()*+,:;<=>?@[\\]^`{|}";

	assert_string_equal(encoded(0, "AZaz09-_.~", 10), "AZaz09-_.~");
	assert_string_equal(encoded(0, all_reserved, sizeof(all_reserved) - 1),
			    "%20%21%22%23%24%25%26%27%28%29%2A%2B%2C%3A%3B%3C%3D%3E%3F%40%5B%5C%5D%5E%60%7B%7C%7D");
	assert_string_equal(encoded(1, "data/ab c+d", 11), "data/ab%20c%2Bd");
	assert_string_equal(encoded(0, "data/ab c+d", 11), "data%2Fab%20c%2Bd");
	assert_string_equal(encoded(1, "caf\xc3\xa9/\xe1\x88\xb4", 9), "caf%C3%A9/%E1%88%B4");
	assert_string_equal(encoded(0, "a\0b\x7f\xff", 5), "a%00b%7F%FF");
	assert_string_equal(encoded(0, "%2B", 3), "%252B"); /* already-encoded input is encoded again */
	assert_string_equal(encoded(1, "", 0), "");
}

static void
sha256_hex_of_known_inputs(void **state)
{
	char hex[65];

	dd_sha256_hex(hex, "", 0);
	assert_string_equal(hex, EMPTY_SHA256);
	dd_sha256_hex(hex, "Welcome to Amazon S3.", 21);
	assert_string_equal(hex, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
}

static void
base_request(struct dd_sigv4_request *r)
{
	memset(r, 0, sizeof(*r));
	r->method = "GET", r->host = "127.0.0.1:7480", r->path = "/bucket/key", r->query = "";
	r->payload_hash = EMPTY_SHA256, r->region = "us-east-1", r->service = "s3", r->now = S3_TIME;
}

static void
expect_refused(const struct dd_sigv4_request *r, const struct dd_sigv4_creds *c, const char *mentions)
{
	struct dd_sigv4_signed out;
	const char *msg;

	dd_error_clear();
	assert_int_equal(dd_sigv4_sign(&out, r, c), -1);
	assert_int_equal(out.n, 0);
	msg = dd_error_last();
	assert_non_null(msg);
	if (mentions && !strstr(msg, mentions))
		fail_msg("error '%s' does not mention '%s'", msg, mentions);
	/* Never a credential, nor any recognisable part of one. */
	assert_null(strstr(msg, "SECRETVALUE"));
	assert_null(strstr(msg, "TOKENVALUE"));
	assert_null(strstr(msg, "KEYVALUE"));
	assert_null(strchr(msg, '\n'));
}

static void
malformed_requests_are_refused_without_quoting_credentials(void **state)
{
	struct dd_sigv4_creds c = { "AKIDKEYVALUE", "SECRETVALUE/xyz", "TOKENVALUE" };
	struct dd_sigv4_creds bad;
	struct dd_sigv4_header h[2];
	struct dd_sigv4_request r;

	base_request(&r);
	h[0].name = "Range", h[0].value = "bytes=0-9\r\nX-Evil: 1";
	r.headers = h, r.nheaders = 1;
	expect_refused(&r, &c, "line break");
	h[0].name = "Bad Name", h[0].value = "v";
	expect_refused(&r, &c, "token");
	h[0].name = "X-Amz-Date", h[0].value = "20130524T000000Z";
	expect_refused(&r, &c, "x-amz-date");
	h[0].name = "Host", h[0].value = "elsewhere";
	expect_refused(&r, &c, "host");
	h[0].name = "x-amz-security-token", h[0].value = "x";
	expect_refused(&r, &c, "x-amz-security-token");
	r.nheaders = 0;

	base_request(&r);
	r.method = NULL;
	expect_refused(&r, &c, "method");
	base_request(&r);
	r.path = "bucket/key";
	expect_refused(&r, &c, "path");
	base_request(&r);
	r.region = "us-east-1/evil";
	expect_refused(&r, &c, "region");
	base_request(&r);
	r.query = "a=b c";
	expect_refused(&r, &c, "query");

	base_request(&r);
	bad = c, bad.secret_key = "";
	expect_refused(&r, &bad, "secret key");
	bad = c, bad.access_key = "AKID KEYVALUE";
	expect_refused(&r, &bad, "access key");
	bad = c, bad.access_key = "AKID\nKEYVALUE";
	expect_refused(&r, &bad, "access key");
	bad = c, bad.session_token = "TOKENVALUE\r\nX-Evil: 1";
	expect_refused(&r, &bad, "session token");
}

static void
session_token_is_signed_and_sent_never_the_secret(void **state)
{
	struct dd_sigv4_creds c = { S3_AKID, S3_SECRET, "tok/en+==" };
	struct dd_sigv4_signed out;
	struct dd_sigv4_request r;

	base_request(&r);
	assert_int_equal(dd_sigv4_sign(&out, &r, &c), 0);
	assert_int_equal(out.n, 4);
	assert_string_equal(out.lines[2], "x-amz-security-token: tok/en+==");
	assert_non_null(strstr(out.lines[3], "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"));
	for (size_t i = 0; i < out.n; i++)
		assert_null(strstr(out.lines[i], S3_SECRET));
	dd_sigv4_signed_free(&out);
	for (size_t i = 0; i < 4; i++)
		assert_null(out.lines[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(aws_suite_vectors_reproduce_exactly),
		cmocka_unit_test(folded_header_value_is_refused),
		cmocka_unit_test(s3_reference_examples_reproduce_exactly),
		cmocka_unit_test(uri_encode_keeps_only_unreserved_bytes),
		cmocka_unit_test(sha256_hex_of_known_inputs),
		cmocka_unit_test(malformed_requests_are_refused_without_quoting_credentials),
		cmocka_unit_test(session_token_is_signed_and_sent_never_the_secret),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
