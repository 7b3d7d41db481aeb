/*
 * tests/unit/test-s3client.c: the S3 client's pure pieces (path-style
 * selection, endpoints, key and query encoding, bucket names, backoff), and
 * its retry, resume and refusal logic against a scripted HTTP server on
 * loopback (a thread here: each connection gets the next canned answer, and
 * the requests are kept for the test to check). The real server (RGW) is
 * exercised by tests/integration/t-s3-*.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "s3/client.h"
#include "s3/sigv4.h"
#include "util/buf.h"
#include "util/err.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define ACCESS "AKIAIOSFODNN7EXAMPLE"

/* ---- pure pieces ---- */

static void
path_style_is_automatic_for_ip_addresses_and_localhost(void **state)
{
	(void)state;
	assert_true(dd_s3_use_path_style("http://127.0.0.1:7480", "bucket"));
	assert_true(dd_s3_use_path_style("https://10.1.2.3", "bucket"));
	assert_true(dd_s3_use_path_style("http://localhost:9000/", "bucket"));
	assert_true(dd_s3_use_path_style("http://LOCALHOST", "bucket"));
	assert_true(dd_s3_use_path_style("http://[::1]:7480", "bucket"));
	assert_false(dd_s3_use_path_style("https://s3.eu-west-1.amazonaws.com", "bucket"));
	assert_false(dd_s3_use_path_style("https://minio.example.com:9000", "bucket"));
	assert_false(dd_s3_use_path_style("https://127.0.0.1.nip.io", "bucket"));
	assert_false(dd_s3_use_path_style(NULL, "bucket"));
	/* a dotted bucket would not match a wildcard certificate */
	assert_true(dd_s3_use_path_style("https://s3.amazonaws.com", "my.bucket"));
	/* the store's setting: 1 path, 0 host name, -1 automatic; an IP address has no host name to use */
	assert_true(dd_s3_path_style(1, "https://s3.amazonaws.com", "bucket"));
	assert_false(dd_s3_path_style(-1, "https://s3.amazonaws.com", "bucket"));
	assert_true(dd_s3_path_style(-1, "https://s3.amazonaws.com", "my.bucket"));
	assert_false(dd_s3_path_style(0, "https://s3.amazonaws.com", "my.bucket"));
	assert_true(dd_s3_path_style(0, "http://127.0.0.1:7480", "bucket"));
	assert_true(dd_s3_path_style(-1, "http://localhost", "bucket"));
}

static void
endpoint_is_scheme_host_and_port_only(void **state)
{
	char *scheme, *hostport;

	(void)state;
	assert_int_equal(dd_s3_endpoint_parse("http://127.0.0.1:7480/", &scheme, &hostport), 0);
	assert_string_equal(scheme, "http");
	assert_string_equal(hostport, "127.0.0.1:7480");
	free(scheme), free(hostport);
	assert_int_equal(dd_s3_endpoint_parse("https://s3.amazonaws.com", &scheme, &hostport), 0);
	assert_string_equal(scheme, "https");
	assert_string_equal(hostport, "s3.amazonaws.com");
	free(scheme), free(hostport);
	assert_int_equal(dd_s3_endpoint_parse("ftp://host", &scheme, &hostport), -1);
	assert_non_null(strstr(dd_error_last(), "http:// or https://"));
	assert_int_equal(dd_s3_endpoint_parse("http://host/path", &scheme, &hostport), -1);
	assert_int_equal(dd_s3_endpoint_parse("http://", &scheme, &hostport), -1);
	assert_int_equal(dd_s3_endpoint_parse("https://host?x=1", &scheme, &hostport), -1);
	/* user info would put a credential in a URL: refused, and not echoed */
	assert_int_equal(dd_s3_endpoint_parse("https://AKIA:secret@host", &scheme, &hostport), -1);
	assert_null(strstr(dd_error_last(), "secret"));
	/* whatever else is wrong with it (as AWS_ENDPOINT_URL or ~/.aws/config may give it) */
	assert_int_equal(dd_s3_endpoint_parse("ftp://AKIA:secret@host", &scheme, &hostport), -1);
	assert_null(strstr(dd_error_last(), "secret"));
	assert_non_null(strstr(dd_error_last(), "without a user name or password"));
	assert_int_equal(dd_s3_endpoint_parse("https://host/AKIA:secret@x", &scheme, &hostport), -1);
	assert_null(strstr(dd_error_last(), "secret"));
}

static void
path(const char *bucket, const char *key, int path_style, const char *want)
{
	struct dd_buf b = DD_BUF_INIT;

	dd_s3_canonical_path(&b, bucket, key, path_style);
	assert_string_equal(b.ptr, want);
	dd_buf_release(&b);
}

static void
keys_are_encoded_once_with_slashes_kept(void **state)
{
	(void)state;
	path("bkt", "data/ab/cd", 1, "/bkt/data/ab/cd");
	path("bkt", "data/ab/cd", 0, "/data/ab/cd");
	path("bkt", NULL, 1, "/bkt");
	path("bkt", NULL, 0, "/");
	path("bkt", "a b+c=d&e%f", 0, "/a%20b%2Bc%3Dd%26e%25f");
	path("bkt", "-_.~/x", 0, "/-_.~/x");
	path("bkt", "caf\xc3\xa9/\x01", 0, "/caf%C3%A9/%01");
	path("bkt", "p//q", 1, "/bkt/p//q");
}

static void
query(const struct dd_s3_param *p, size_t n, const char *want)
{
	struct dd_buf b = DD_BUF_INIT;

	dd_s3_canonical_query(&b, p, n);
	assert_string_equal(dd_buf_cstr(&b), want);
	dd_buf_release(&b);
}

static void
query_is_sorted_and_encoded_with_empty_values_kept(void **state)
{
	const struct dd_s3_param list[] = { { "prefix", "team/data/a b" }, { "list-type", "2" },
					    { "continuation-token", "1/+=x" } };
	const struct dd_s3_param part[] = { { "uploadId", "2~Ab_c" }, { "partNumber", "10" } };
	const struct dd_s3_param empty[] = { { "uploads", NULL } };
	const struct dd_s3_param del[] = { { "delete", "" } };

	(void)state;
	query(list, 3, "continuation-token=1%2F%2B%3Dx&list-type=2&prefix=team%2Fdata%2Fa%20b");
	query(part, 2, "partNumber=10&uploadId=2~Ab_c");
	query(empty, 1, "uploads=");
	query(del, 1, "delete=");
	query(NULL, 0, "");
}

static void
bucket_names_follow_s3_rules(void **state)
{
	(void)state;
	assert_true(dd_s3_bucket_name_ok("abc"));
	assert_true(dd_s3_bucket_name_ok("my-bucket.2"));
	assert_false(dd_s3_bucket_name_ok("ab"));
	assert_false(dd_s3_bucket_name_ok("MyBucket"));
	assert_false(dd_s3_bucket_name_ok("-bucket"));
	assert_false(dd_s3_bucket_name_ok("bucket-"));
	assert_false(dd_s3_bucket_name_ok("user:pass@bucket"));
	assert_false(dd_s3_bucket_name_ok("b_c"));
}

static void
backoff_is_full_jitter_under_a_cap(void **state)
{
	(void)state;
	assert_int_equal(dd_s3_backoff_ms(0, 0), 0);
	assert_int_equal(dd_s3_backoff_ms(0, 100), 100);
	assert_int_equal(dd_s3_backoff_ms(0, 101), 0);   /* 101 mod (100 + 1) */
	assert_int_equal(dd_s3_backoff_ms(3, 800), 800); /* ceiling 100 * 2^3 */
	assert_true(dd_s3_backoff_ms(3, 801) < 801);
	for (unsigned r = 0; r < 100000; r += 977)
		assert_true(dd_s3_backoff_ms(40, r) <= 5000);
	assert_int_equal(dd_s3_backoff_ms(40, 5000), 5000);
}

static void
upload_record_round_trips_and_refuses_other_uploads(void **state)
{
	struct dd_s3_record_part p[3] = { { .size = 10 }, { .size = 10 }, { .size = 4 } }, q[3];
	struct dd_buf t = DD_BUF_INIT;
	char *id = NULL;

	(void)state;
	p[0].sent = p[2].sent = 1;
	memset(p[0].sha, 'a', 64), memset(p[2].sha, 'b', 64);
	strcpy(p[0].etag, "\"e0\""), strcpy(p[2].etag, "\"e2\"");
	dd_s3_record_format(&t, "k 1/x", 24, 10, "2~id", p, 3);
	assert_string_equal(t.ptr, "dd-s3-upload 1\nkey k%201%2Fx\nsize 24 10\nupload 2~id\n"
				   "part 1 10 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \"e0\"\n"
				   "part 3 4 bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb \"e2\"\n");
	memcpy(q, p, sizeof(q));
	q[0].sent = q[2].sent = 0;
	assert_int_equal(dd_s3_record_parse(t.ptr, t.len, "k 1/x", 24, 10, &id, q, 3), 0);
	assert_string_equal(id, "2~id");
	assert_true(q[0].sent && !q[1].sent && q[2].sent);
	assert_string_equal(q[2].etag, "\"e2\"");
	free(id);
	/* another key, file size or part size: not this upload's record */
	assert_int_equal(dd_s3_record_parse(t.ptr, t.len, "k 1/y", 24, 10, &id, q, 3), DD_NOTFOUND);
	assert_int_equal(dd_s3_record_parse(t.ptr, t.len, "k 1/x", 25, 10, &id, q, 3), DD_NOTFOUND);
	assert_int_equal(dd_s3_record_parse(t.ptr, t.len, "k 1/x", 24, 12, &id, q, 3), DD_NOTFOUND);
	assert_null(id);
	assert_true(!q[0].sent && !q[2].sent);
	/* a part line twice, or cut short: refused whole */
	dd_buf_puts(&t, "part 1 10 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \"e0\"\n");
	assert_int_equal(dd_s3_record_parse(t.ptr, t.len, "k 1/x", 24, 10, &id, q, 3), DD_NOTFOUND);
	assert_int_equal(dd_s3_record_parse(t.ptr, 60, "k 1/x", 24, 10, &id, q, 3), DD_NOTFOUND);
	dd_buf_release(&t);
}

/* ---- a scripted server ---- */

#define MAX_ANSWERS 16

struct server {
	int fd, port;
	pthread_t thread;
	const char *answers[MAX_ANSWERS]; /* raw responses, one per connection; NULL: close at once */
	size_t nanswers;
	struct dd_buf requests[MAX_ANSWERS]; /* headers (and body) of each request received */
	size_t nrequests;
};

/* Read one request (headers, then Content-Length bytes of body) into b; 0 at EOF before any byte. */
static int
read_request(int fd, struct dd_buf *b)
{
	char buf[4096];
	const char *end = NULL;
	size_t body = 0;

	for (;;) {
		ssize_t n;
		if (!end && b->ptr && (end = strstr(b->ptr, "\r\n\r\n"))) {
			const char *cl = strcasestr(b->ptr, "\r\ncontent-length:");
			const char *ex = strcasestr(b->ptr, "\r\nexpect: 100-continue\r\n");
			body = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
			if (ex && ex < end) /* as S3 servers do */
				(void)!write(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		}
		if (end && b->len >= (size_t)(end - b->ptr) + 4 + body)
			return 1;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return b->len > 0;
		dd_buf_put(b, buf, (size_t)n);
	}
}

static void *
serve(void *arg)
{
	struct server *s = arg;

	for (size_t i = 0; i < s->nanswers; i++) {
		int c = accept(s->fd, NULL, NULL);
		if (c < 0)
			break;
		if (read_request(c, &s->requests[s->nrequests]))
			s->nrequests++;
		if (s->answers[i])
			(void)!write(c, s->answers[i], strlen(s->answers[i]));
		shutdown(c, SHUT_RDWR);
		close(c);
	}
	return NULL;
}

static void
server_start(struct server *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->fd, 16), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void
server_stop(struct server *s)
{
	shutdown(s->fd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
	close(s->fd);
}

static void
server_free(struct server *s)
{
	for (size_t i = 0; i < MAX_ANSWERS; i++)
		dd_buf_release(&s->requests[i]);
}

static struct dd_s3_client *
client_for(struct server *s, int retries)
{
	struct dd_s3_client *c = NULL;
	char ep[64];

	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", s->port);
	struct dd_s3_client_opts o = { .bucket = "bkt", .endpoint = ep, .region = "us-east-1", .retries = retries };
	assert_int_equal(dd_s3_client_new(&c, &o), 0);
	return c;
}

static int
setup_env(void **state)
{
	(void)state;
	setenv("AWS_ACCESS_KEY_ID", ACCESS, 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	setenv("AWS_CONFIG_FILE", "/dev/null", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null", 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	return 0;
}

static void
cut_off_get_resumes_from_where_it_stopped(void **state)
{
	struct server s = { .nanswers = 2 };
	struct dd_buf out = DD_BUF_INIT;
	struct dd_s3_client *c;

	(void)state;
	s.answers[0] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nETag: \"e1\"\r\n\r\n01234";
	s.answers[1] = "HTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\nContent-Range: bytes 5-9/10\r\n"
		       "ETag: \"e1\"\r\n\r\n56789";
	server_start(&s);
	c = client_for(&s, 3);
	assert_int_equal(dd_s3_get(c, "data/ab/x y", &out, 1000), 0);
	assert_string_equal(out.ptr, "0123456789");
	dd_s3_client_free(c);
	server_stop(&s);
	assert_int_equal(s.nrequests, 2);
	assert_non_null(strstr(s.requests[0].ptr, "GET /bkt/data/ab/x%20y HTTP/1.1\r\n"));
	assert_null(strcasestr(s.requests[0].ptr, "\r\nrange:"));
	assert_non_null(strcasestr(s.requests[1].ptr, "\r\nrange: bytes=5-9\r\n"));
	assert_non_null(strcasestr(s.requests[1].ptr, "\r\nif-match: \"e1\"\r\n"));
	/* signed, with the empty body's hash; the secret never on the wire */
	assert_non_null(strcasestr(s.requests[1].ptr, "\r\nauthorization: AWS4-HMAC-SHA256 Credential=" ACCESS "/"));
	assert_non_null(strcasestr(s.requests[1].ptr, "\r\nx-amz-content-sha256: "
				   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\r\n"));
	assert_null(strstr(s.requests[1].ptr, SECRET));
	server_free(&s);
	dd_buf_release(&out);
}

static void
ranged_get_must_get_exactly_the_bytes_asked(void **state)
{
	struct server s = { .nanswers = 2 };
	struct dd_buf out = DD_BUF_INIT;
	struct dd_s3_client *c;

	(void)state;
	/* the first answer is cut short (3 of 4 bytes), the second gives the last byte */
	s.answers[0] = "HTTP/1.1 206 Partial Content\r\nContent-Length: 4\r\nContent-Range: bytes 100-103/200\r\n\r\nabc";
	s.answers[1] = "HTTP/1.1 206 Partial Content\r\nContent-Length: 1\r\nContent-Range: bytes 103-103/200\r\n\r\nd";
	server_start(&s);
	c = client_for(&s, 3);
	assert_int_equal(dd_s3_get_range(c, "k", 100, 4, &out), 0);
	assert_string_equal(out.ptr, "abcd");
	dd_s3_client_free(c);
	server_stop(&s);
	assert_non_null(strcasestr(s.requests[0].ptr, "\r\nrange: bytes=100-103\r\n"));
	assert_non_null(strcasestr(s.requests[1].ptr, "\r\nrange: bytes=103-103\r\n"));
	server_free(&s);
	dd_buf_release(&out);

	/* an object shorter than asked is damaged: an error at once, not a retry */
	struct server s2 = { .nanswers = 1 };
	s2.answers[0] = "HTTP/1.1 206 Partial Content\r\nContent-Length: 2\r\nContent-Range: bytes 100-101/102\r\n\r\nab";
	server_start(&s2);
	c = client_for(&s2, 3);
	assert_int_equal(dd_s3_get_range(c, "k", 100, 4, &out), -1);
	assert_non_null(strstr(dd_error_last(), "k in bucket bkt is shorter"));
	assert_int_equal(out.len, 0);
	dd_s3_client_free(c);
	server_stop(&s2);
	server_free(&s2);
	dd_buf_release(&out);
}

static void
slowdown_is_retried_and_put_is_create_only(void **state)
{
	struct server s = { .nanswers = 3 };
	struct dd_s3_client *c;
	char sha[65];

	(void)state;
	s.answers[0] = "HTTP/1.1 503 Slow Down\r\nContent-Length: 55\r\n\r\n<Error><Code>SlowDown</Code><Message></Message></Error>";
	s.answers[1] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nETag: \"x\"\r\n\r\n";
	s.answers[2] = "HTTP/1.1 412 Precondition Failed\r\nContent-Length: 0\r\n\r\n";
	server_start(&s);
	c = client_for(&s, 3);
	assert_int_equal(dd_s3_put(c, "a/b", "hello", 5, 1), 0);
	assert_int_equal(dd_s3_put(c, "a/b", "hello", 5, 1), DD_EXISTS);
	dd_s3_client_free(c);
	server_stop(&s);
	assert_int_equal(s.nrequests, 3);
	dd_sha256_hex(sha, "hello", 5);
	for (size_t i = 0; i < 3; i++) {
		assert_non_null(strstr(s.requests[i].ptr, "PUT /bkt/a/b HTTP/1.1\r\n"));
		assert_non_null(strcasestr(s.requests[i].ptr, "\r\nif-none-match: *\r\n"));
		assert_non_null(strcasestr(s.requests[i].ptr, "\r\ncontent-length: 5\r\n"));
		assert_non_null(strstr(s.requests[i].ptr, sha));
		assert_null(strcasestr(s.requests[i].ptr, "chunked"));
		assert_string_equal(s.requests[i].ptr + s.requests[i].len - 5, "hello");
	}
	server_free(&s);
}

static void
refusal_is_one_line_naming_bucket_code_and_what_to_check(void **state)
{
	struct server s = { .nanswers = 2 };
	struct dd_buf out = DD_BUF_INIT;
	struct dd_s3_client *c;

	(void)state;
	s.answers[0] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 68\r\n\r\n"
		       "<Error><Code>SignatureDoesNotMatch</Code><Message></Message></Error>";
	s.answers[1] = "HTTP/1.1 404 Not Found\r\nContent-Length: 50\r\n\r\n"
		       "<Error><Code>NoSuchKey</Code><Message></Message></Error>";
	server_start(&s);
	c = client_for(&s, 5);
	assert_int_equal(dd_s3_get(c, "config", &out, 100), -1);
	assert_string_equal(dd_error_last(),
			    "S3 rejected the signature for bucket bkt (SignatureDoesNotMatch): check AWS_SECRET_ACCESS_KEY");
	assert_int_equal(dd_s3_get(c, "config", &out, 100), DD_NOTFOUND);
	dd_s3_client_free(c);
	server_stop(&s);
	assert_int_equal(s.nrequests, 2); /* no retry of a 403 */
	server_free(&s);
	dd_buf_release(&out);
}

static void
unreachable_after_retries_then_fails_fast(void **state)
{
	struct server s = { .nanswers = 4 }; /* every connection closed without an answer */
	struct dd_s3_client *c;
	char want[128];

	(void)state;
	server_start(&s);
	c = client_for(&s, 2);
	assert_int_equal(dd_s3_head(c, "k", NULL), DD_EUNREACHABLE);
	snprintf(want, sizeof(want), "cannot reach the S3 store at http://127.0.0.1:%d (", s.port);
	assert_non_null(strstr(dd_error_last(), want));
	assert_non_null(strstr(dd_error_last(), "gave up after 3 attempts"));
	assert_non_null(dd_error_hint());
	/* the client now knows: one attempt only */
	assert_int_equal(dd_s3_head(c, "k", NULL), DD_EUNREACHABLE);
	assert_non_null(strstr(dd_error_last(), "gave up after 1 attempt"));
	dd_s3_client_free(c);
	server_stop(&s);
	assert_int_equal(s.nrequests, 4);
	server_free(&s);
}

static int
count_object(const struct dd_s3_object *o, void *arg)
{
	(void)o;
	(*(int *)arg)++;
	return 0;
}

#define LIST_PAGE(keys, token)                                                                                       \
	"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n\r\n<ListBucketResult><Name>bkt</Name>"                \
	"<IsTruncated>true</IsTruncated>" keys "<NextContinuationToken>" token "</NextContinuationToken>"            \
	"</ListBucketResult>"

static void
listing_that_goes_round_in_circles_is_refused(void **state)
{
	struct server s = { .nanswers = 3 };
	struct dd_s3_client *c;
	int n = 0;

	(void)state;
	/* each page a new token, but the second lists the first's names again: it would never end */
	s.answers[0] = LIST_PAGE("<Contents><Key>p/a</Key><Size>1</Size></Contents>"
				 "<Contents><Key>p/b</Key><Size>1</Size></Contents>", "t1");
	s.answers[1] = LIST_PAGE("<Contents><Key>p/a</Key><Size>1</Size></Contents>"
				 "<Contents><Key>p/b</Key><Size>1</Size></Contents>", "t2");
	s.answers[2] = LIST_PAGE("<Contents><Key>p/a</Key><Size>1</Size></Contents>", "t3");
	server_start(&s);
	c = client_for(&s, 0);
	assert_int_equal(dd_s3_list(c, "p/", count_object, &n), -1);
	assert_string_equal(dd_error_last(), "S3's listing of bucket bkt goes back to names it already listed (page 2)");
	assert_int_equal(n, 2);
	dd_s3_client_free(c);
	server_stop(&s);
	assert_int_equal(s.nrequests, 2);
	server_free(&s);
}

static void
server_text_cannot_split_an_error_line(void **state)
{
	struct server s = { .nanswers = 2 };
	struct dd_buf out = DD_BUF_INIT;
	const char *keys[] = { "k" };
	struct dd_s3_client *c;

	(void)state;
	s.answers[0] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 71\r\n\r\n"
		       "<Error><Code>Odd</Code><Message>a&#10;error: forged\xc2\x9b</Message></Error>";
	s.answers[1] = "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n\r\n<DeleteResult><Error>"
		       "<Key>k&#10;error: forged</Key><Code>AccessDenied</Code></Error></DeleteResult>";
	server_start(&s);
	c = client_for(&s, 0);
	assert_int_equal(dd_s3_get(c, "k", &out, 100), -1);
	assert_string_equal(dd_error_last(), "S3 refused GET k in bucket bkt (HTTP 400 Odd): a?error: forged?");
	assert_int_equal(dd_s3_delete_many(c, keys, 1), -1);
	assert_string_equal(dd_error_last(),
			    "S3 could not delete 1 object in bucket bkt (first: k?error: forged, AccessDenied)");
	dd_s3_client_free(c);
	server_stop(&s);
	server_free(&s);
	dd_buf_release(&out);
}

static long
peak_rss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void
gets_are_bounded_by_the_callers_maximum(void **state)
{
	struct server s = { .nanswers = 4 };
	struct dd_buf out = DD_BUF_INIT;
	struct dd_s3_client *c;
	long before = peak_rss_kib();

	(void)state;
	/* a Content-Length above the maximum: refused from the header, no retry, nothing kept */
	s.answers[0] = "HTTP/1.1 200 OK\r\nContent-Length: 101\r\nETag: \"e\"\r\n\r\n0123456789";
	/* a reply claiming 100 GB, cut off after 3 bytes: refused at once, not resumed up to 100 GB */
	s.answers[1] = "HTTP/1.1 200 OK\r\nContent-Length: 107374182400\r\nETag: \"e\"\r\n\r\nabc";
	/* a cut-off whole GET resumes, and the rest may not be larger than what is missing */
	s.answers[2] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nETag: \"e1\"\r\n\r\n01234";
	s.answers[3] = "HTTP/1.1 206 Partial Content\r\nContent-Length: 107374182400\r\n"
		       "Content-Range: bytes 5-107374182404/107374182405\r\nETag: \"e1\"\r\n\r\n56789";
	server_start(&s);
	c = client_for(&s, 3);
	assert_int_equal(dd_s3_get(c, "index/x", &out, 100), -1);
	assert_non_null(strstr(dd_error_last(), "index/x in bucket bkt is larger than expected"));
	assert_int_equal(out.len, 0);
	assert_int_equal(dd_s3_get(c, "index/x", &out, (size_t)1 << 30), -1);
	assert_non_null(strstr(dd_error_last(), "larger than expected"));
	assert_true(out.cap <= (8u << 20)); /* no room made from the header's word */
	assert_int_equal(dd_s3_get(c, "index/x", &out, 1000), -1);
	assert_non_null(strstr(dd_error_last(), "larger than expected"));
	dd_s3_client_free(c);
	server_stop(&s);
	assert_int_equal(s.nrequests, 4); /* one request each, the resumed one twice: no retry of a refusal */
	assert_true(peak_rss_kib() - before < 32 * 1024);
	server_free(&s);
	dd_buf_release(&out);

	/* a ranged GET answered with the whole object: said as such, whatever its size */
	struct server s3 = { .nanswers = 1 };
	s3.answers[0] = "HTTP/1.1 200 OK\r\nContent-Length: 107374182400\r\n\r\nabc";
	server_start(&s3);
	c = client_for(&s3, 3);
	assert_int_equal(dd_s3_get_range(c, "k", 10, 4, &out), -1);
	assert_string_equal(dd_error_last(), "the S3 server ignored the Range of a read of k in bucket bkt");
	dd_s3_client_free(c);
	server_stop(&s3);
	server_free(&s3);

	/* a large but allowed Content-Length, cut off: at most a few MiB made room for */
	struct server s2 = { .nanswers = 1 };
	s2.answers[0] = "HTTP/1.1 200 OK\r\nContent-Length: 300000000\r\nETag: \"e\"\r\n\r\nabc";
	server_start(&s2);
	c = client_for(&s2, 0);
	assert_int_equal(dd_s3_get(c, "snapshots/x", &out, (size_t)1 << 30), DD_EUNREACHABLE);
	assert_true(out.cap <= (8u << 20));
	dd_s3_client_free(c);
	server_stop(&s2);
	assert_true(peak_rss_kib() - before < 32 * 1024);
	server_free(&s2);
	dd_buf_release(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(path_style_is_automatic_for_ip_addresses_and_localhost),
		cmocka_unit_test(endpoint_is_scheme_host_and_port_only),
		cmocka_unit_test(keys_are_encoded_once_with_slashes_kept),
		cmocka_unit_test(query_is_sorted_and_encoded_with_empty_values_kept),
		cmocka_unit_test(bucket_names_follow_s3_rules),
		cmocka_unit_test(backoff_is_full_jitter_under_a_cap),
		cmocka_unit_test(upload_record_round_trips_and_refuses_other_uploads),
		cmocka_unit_test(cut_off_get_resumes_from_where_it_stopped),
		cmocka_unit_test(ranged_get_must_get_exactly_the_bytes_asked),
		cmocka_unit_test(slowdown_is_retried_and_put_is_create_only),
		cmocka_unit_test(refusal_is_one_line_naming_bucket_code_and_what_to_check),
		cmocka_unit_test(unreachable_after_retries_then_fails_fast),
		cmocka_unit_test(gets_are_bounded_by_the_callers_maximum),
		cmocka_unit_test(listing_that_goes_round_in_circles_is_refused),
		cmocka_unit_test(server_text_cannot_split_an_error_line),
	};
	return cmocka_run_group_tests(tests, setup_env, NULL);
}
