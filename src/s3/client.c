/*
 * s3/client.c: requests to one bucket over a curl multi handle; see
 * client.h for the contract.
 *
 * Threads: one event thread owns the multi handle and runs every transfer
 * (its callbacks write into the waiting caller's buffers, which is safe
 * because that caller is blocked until the transfer is marked done).
 * Callers queue a transfer under `mu`, wake the loop with
 * curl_multi_wakeup() and wait on `cv`. An easy handle lives for one
 * attempt; connections and DNS answers live in the multi's caches, so
 * they are reused across attempts and callers.
 *
 * A request (struct call) is attempted until it succeeds, fails for good
 * or runs out of retries; each attempt (struct xfer) is signed afresh. A
 * GET keeps the bytes an attempt received: the next one asks only for the
 * rest (Range, and If-Match on the first answer's ETag for a whole GET),
 * and the total must be exactly what was asked.
 */
#include "s3/client.h"
#include "s3/creds.h"
#include "s3/sigv4.h"
#include "util/err.h"
#include "util/log.h"
#include "util/sha256.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_ERROR_BODY (64u << 10)
#define MAX_XML_BODY (16u << 20)
#define CONNECT_TIMEOUT_S 10L
#define LOW_SPEED_BYTES 1024L
#define LOW_SPEED_SECONDS 20L
#define BACKOFF_BASE_MS 100u
#define BACKOFF_CAP_MS 5000u
#define MAX_HEADERS 8
#define MAX_LIST_PAGES 1000000 /* a billion keys at 1000 a page: past that a server is going round in circles */
#define MAX_EMPTY_PAGES 100     /* truncated pages in a row that list nothing */
#define MAX_UPLOAD_PAGES 1000   /* of ListMultipartUploads per run (a million uploads): the rest waits */
#define MAX_PREALLOC (4u << 20) /* room made at once from a Content-Length; past that the buffer doubles */
#define RECV_BUFFER (256L << 10)  /* CURLOPT_BUFFERSIZE, per transfer */
#define SEND_BUFFER (512L << 10)  /* CURLOPT_UPLOAD_BUFFERSIZE, per transfer */

struct xfer;

struct dd_s3_client {
	char *bucket;
	char *endpoint; /* scheme://host[:port], for messages */
	char *scheme;
	char *hostport;
	char *host;     /* the Host header: hostport, or bucket.hostport */
	int path_style;
	int transfers;
	uint64_t part_size;
	int retries;
	struct dd_s3_creds creds;

	CURLM *multi;
	pthread_t thread;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct xfer *queue, *queue_tail; /* submitted, not yet added to the multi */
	int stopping;
	int unreachable; /* the last request gave up on the network: try once from now on */
	int64_t date;      /* the server's Date of the last answer that had one (0: none yet) */
	int64_t date_mono; /* this machine's monotonic clock when it came, seconds */
	int64_t skew;      /* S3's clock minus this machine's, once S3 said RequestTimeTooSkewed (else 0) */
};

/* One request as the caller sees it, across attempts. */
struct call {
	const char *method;
	const char *key;   /* NULL: the bucket */
	const char *query; /* canonical; "" none */
	struct dd_sigv4_header hdr[4];
	size_t nhdr;
	/* the body: memory, or a region of fd */
	const char *mem;
	int fd;
	uint64_t off, len;
	char sha[65];
	/* sha is the name the body was stored under (a pack), not a hash of what was read: the local file for messages */
	const char *named_by;
	/* the 2xx answer's body (NULL: discarded, or written to out_fd) and its bound */
	struct dd_buf *out;
	size_t max;
	/* a GET streamed into this file from its start instead (-1: none): out_got bytes so far */
	int out_fd;
	uint64_t out_got;
	/*
	 * An XML answer must parse: one that does not was cut short (a body
	 * delimited by the connection's close cannot tell otherwise) or
	 * garbled, and is asked for again like any transient failure.
	 */
	int (*check)(const char *body, size_t len);
	/* a GET of bytes [want_off, want_off + want_len) (want_known), or of the whole object */
	int get, whole, want_known;
	uint64_t want_off, want_len;
	char pin[80]; /* the ETag of the object being read, once known */
	/* the answer */
	long status;
	struct dd_s3_error err;
	struct dd_s3_head head;
};

/* One attempt. */
struct xfer {
	struct xfer *next;
	struct call *k;
	long hstatus; /* the status line of the answer whose headers are being read */
	CURL *easy;
	struct curl_slist *hdrs;
	char *url;
	uint64_t pos; /* of the upload body */
	int read_errno;
	struct dd_buf errbody;
	long status;
	int status_seen, sink_err, overflow, ignored_range, range_sent;
	int write_errno; /* writing the body to out_fd failed */
	uint64_t range_start;
	int64_t clen;
	int have_cr;
	uint64_t cr_start, cr_end, cr_total;
	char etag[80];
	int64_t mtime;
	int64_t date; /* the answer's Date header (0: none) */
	int64_t skew; /* the correction of this machine's clock it was signed with (struct dd_s3_client) */
	CURLcode result;
	int done;
	char errbuf[CURL_ERROR_SIZE];
};

/* How an attempt ended: done; failed for good (error set); refused by S3 for good (k->status, k->err); worth retrying. */
enum outcome { DONE, FINAL, REFUSED, RETRY_NET, RETRY_HTTP };

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void
global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- pure pieces ---- */

int
dd_s3_bucket_name_ok(const char *b)
{
	size_t n = strlen(b);

	if (n < 3 || n > 63 || !isalnum((unsigned char)b[0]) || !isalnum((unsigned char)b[n - 1]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)b[i]) || isdigit((unsigned char)b[i]) || b[i] == '.' || b[i] == '-'))
			return 0;
	return 1;
}

int
dd_s3_endpoint_parse(const char *ep, char **scheme, char **hostport)
{
	const char *rest;
	size_t n;

	if (strchr(ep, '@')) /* user info: a credential in a URL; checked first, and the value is not shown */
		return dd_error("S3 endpoint must be scheme://host[:port], without a user name or password "
				"(credentials go in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or ~/.aws/credentials)");
	if (!strncmp(ep, "https://", 8))
		*scheme = dd_strdup("https"), rest = ep + 8;
	else if (!strncmp(ep, "http://", 7))
		*scheme = dd_strdup("http"), rest = ep + 7;
	else
		return dd_error("S3 endpoint '%s' must start with http:// or https://", ep);
	n = strcspn(rest, "/");
	if (n == 0 || strcspn(rest, "?#") < strlen(rest) || (rest[n] && strcmp(rest + n, "/"))) {
		free(*scheme);
		*scheme = NULL;
		return dd_error("S3 endpoint '%.*s...' must be scheme://host[:port], without a path or user name",
				(int)(rest - ep), ep);
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)rest[i] <= ' ' || (unsigned char)rest[i] >= 0x7f) {
			free(*scheme);
			*scheme = NULL;
			return dd_error("S3 endpoint has a space or control character in its host name");
		}
	}
	*hostport = dd_strndup(rest, n);
	return 0;
}

/* The host of "host[:port]" or "[v6]:port", into buf. */
static void
host_only(char *buf, size_t size, const char *hostport)
{
	size_t n;

	if (hostport[0] == '[') {
		n = strcspn(hostport + 1, "]");
		snprintf(buf, size, "%.*s", (int)n, hostport + 1);
		return;
	}
	n = strcspn(hostport, ":");
	snprintf(buf, size, "%.*s", (int)n, hostport);
}

/* Is the endpoint's host an IP address or localhost (no room for a bucket in the host name)? */
static int
literal_host(const char *endpoint)
{
	char *scheme = NULL, *hostport = NULL, host[256];
	unsigned char addr[16];
	int r = 0;

	if (!endpoint)
		return 0;
	if (dd_s3_endpoint_parse(endpoint, &scheme, &hostport) < 0) {
		dd_error_clear();
		return 0;
	}
	host_only(host, sizeof(host), hostport);
	r = !strcasecmp(host, "localhost") || inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
	free(scheme);
	free(hostport);
	return r;
}

int
dd_s3_use_path_style(const char *endpoint, const char *bucket)
{
	return strchr(bucket, '.') != NULL || literal_host(endpoint);
}

int
dd_s3_path_style(int setting, const char *endpoint, const char *bucket)
{
	if (setting > 0 || literal_host(endpoint))
		return 1;
	return setting < 0 && strchr(bucket, '.') != NULL;
}

void
dd_s3_canonical_path(struct dd_buf *out, const char *bucket, const char *key, int path_style)
{
	dd_buf_putc(out, '/');
	if (path_style) {
		dd_sigv4_uri_encode(out, bucket, strlen(bucket), 0);
		if (key && *key)
			dd_buf_putc(out, '/');
	}
	if (key && *key)
		dd_sigv4_uri_encode(out, key, strlen(key), 1);
}

static int
param_cmp(const void *a, const void *b)
{
	const struct dd_s3_param *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value ? x->value : "", y->value ? y->value : "");
}

void
dd_s3_canonical_query(struct dd_buf *out, const struct dd_s3_param *p, size_t n)
{
	struct dd_s3_param *s = dd_malloc((n ? n : 1) * sizeof(*s));

	if (n) { /* p may be NULL when there are no parameters */
		memcpy(s, p, n * sizeof(*s));
		qsort(s, n, sizeof(*s), param_cmp);
	}
	for (size_t i = 0; i < n; i++) {
		if (i)
			dd_buf_putc(out, '&');
		dd_sigv4_uri_encode(out, s[i].name, strlen(s[i].name), 0);
		dd_buf_putc(out, '=');
		if (s[i].value)
			dd_sigv4_uri_encode(out, s[i].value, strlen(s[i].value), 0);
	}
	if (!out->ptr)
		dd_buf_puts(out, "");
	free(s);
}

unsigned
dd_s3_backoff_ms(int attempt, unsigned rnd)
{
	unsigned ceiling = BACKOFF_BASE_MS;

	for (int i = 0; i < attempt && ceiling < BACKOFF_CAP_MS; i++)
		ceiling *= 2;
	if (ceiling > BACKOFF_CAP_MS)
		ceiling = BACKOFF_CAP_MS;
	return rnd % (ceiling + 1);
}

/* ---- the event thread ---- */

static void
finish_done(struct dd_s3_client *c)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(c->multi, &left))) {
		struct xfer *x = NULL;
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		x->result = m->data.result;
		curl_multi_remove_handle(c->multi, m->easy_handle);
		pthread_mutex_lock(&c->mu);
		x->done = 1;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
}

static void *
event_loop(void *arg)
{
	struct dd_s3_client *c = arg;
	int running;

	pthread_mutex_lock(&c->mu);
	while (!c->stopping) {
		struct xfer *q = c->queue, *next;
		c->queue = c->queue_tail = NULL;
		pthread_mutex_unlock(&c->mu);
		for (; q; q = next) {
			next = q->next;
			CURLMcode mc = curl_multi_add_handle(c->multi, q->easy);
			if (mc != CURLM_OK) {
				pthread_mutex_lock(&c->mu);
				q->result = CURLE_OUT_OF_MEMORY;
				q->done = 1;
				pthread_cond_broadcast(&c->cv);
				pthread_mutex_unlock(&c->mu);
			}
		}
		curl_multi_perform(c->multi, &running);
		finish_done(c);
		curl_multi_poll(c->multi, NULL, 0, 1000, NULL);
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* Hand x to the event thread and wait until it is done. */
static void
run_xfer(struct dd_s3_client *c, struct xfer *x)
{
	pthread_mutex_lock(&c->mu);
	if (c->queue_tail)
		c->queue_tail->next = x;
	else
		c->queue = x;
	c->queue_tail = x;
	pthread_mutex_unlock(&c->mu);
	curl_multi_wakeup(c->multi);
	pthread_mutex_lock(&c->mu);
	while (!x->done)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
}

/* ---- callbacks (event thread: no dd_error here) ---- */

/* Bytes of the answer kept so far (in k->out or out_fd), and forgetting them. */
static uint64_t
got(const struct call *k)
{
	return k->out ? k->out->len : k->out_got;
}

static void
got_clear(struct call *k)
{
	if (k->out)
		dd_buf_clear(k->out);
	k->out_got = 0;
}

/* Append to out_fd at out_got (the event thread's only file write): 0, or -1 with errno. */
static int
sink_write(struct call *k, const char *p, size_t n)
{
	while (n) {
		ssize_t w = pwrite(k->out_fd, p, n, (off_t)k->out_got);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w, n -= (size_t)w, k->out_got += (uint64_t)w;
	}
	return 0;
}

/* How many more bytes a 2xx answer may carry into k->out (a 200 to a whole GET starts it over). */
static uint64_t
body_room(const struct call *k, long status)
{
	uint64_t limit = k->get && k->want_known && k->want_len < k->max ? k->want_len : k->max;

	if (k->get && k->whole && status == 200)
		return limit;
	return got(k) < limit ? limit - got(k) : 0;
}

static size_t
on_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	struct call *k = x->k;
	size_t n = size * nmemb, limit;

	if (!x->status_seen) {
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
		x->status_seen = 1;
		x->sink_err = x->status < 200 || x->status >= 300;
		if (!x->sink_err && k->get && x->range_sent && x->status == 200) {
			if (!k->whole || k->want_off) {
				x->ignored_range = 1;
				return 0;
			}
			got_clear(k); /* a whole GET answered in full again: start over */
		}
		if (!x->sink_err && k->get && x->status == 206 &&
		    (!x->range_sent || !x->have_cr || x->cr_start != x->range_start)) {
			x->ignored_range = 1; /* not the bytes we asked for: keep none of them */
			return 0;
		}
		/* room for the answer at once, up to a few MiB (the header is the server's word, not ours) */
		if (!x->sink_err && k->out && x->clen > 0 && (uint64_t)x->clen <= body_room(k, x->status))
			dd_buf_grow(k->out, (uint64_t)x->clen < MAX_PREALLOC ? (size_t)x->clen : MAX_PREALLOC);
	}
	if (x->sink_err) {
		if (x->errbody.len < MAX_ERROR_BODY)
			dd_buf_put(&x->errbody, p, n < MAX_ERROR_BODY - x->errbody.len ? n : MAX_ERROR_BODY - x->errbody.len);
		return n;
	}
	if (!k->out && k->out_fd < 0)
		return n;
	limit = k->get && k->want_known && k->want_len < k->max ? (size_t)k->want_len : k->max;
	if (n > limit || got(k) > limit - n) {
		x->overflow = 1;
		return 0;
	}
	if (!k->out) {
		if (sink_write(k, p, n) < 0) {
			x->write_errno = errno ? errno : EIO;
			return 0;
		}
		return n;
	}
	dd_buf_put(k->out, p, n);
	return n;
}

static void
header_value(char *dst, size_t size, const char *v, size_t n)
{
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	while (n && *v == ' ')
		v++, n--;
	if (n >= size)
		n = 0; /* absurd: treat as absent */
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t
on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb, name;
	char v[128];

	if (n >= 5 && !strncmp(p, "HTTP/", 5)) { /* a new response (after 100 Continue): forget the last */
		const char *sp = memchr(p, ' ', n);
		x->clen = -1, x->have_cr = 0, x->etag[0] = '\0', x->mtime = -1;
		x->hstatus = sp && sp + 4 <= p + n ? strtol(sp + 1, NULL, 10) : 0;
		return n;
	}
	name = 0;
	while (name < n && p[name] != ':')
		name++;
	if (name == n)
		return n;
	header_value(v, sizeof(v), p + name + 1, n - name - 1);
	if (name == 14 && !strncasecmp(p, "content-length", 14)) {
		char *end;
		errno = 0;
		unsigned long long l = strtoull(v, &end, 10);
		x->clen = (!errno && end != v && !*end && v[0] != '-' && l <= INT64_MAX) ? (int64_t)l : -1;
		/* a body larger than the caller takes is refused before a byte of it is read */
		struct call *k = x->k;
		int range_ignored = k->get && x->range_sent && x->hstatus == 200 && (!k->whole || k->want_off);
		if ((k->out || k->out_fd >= 0) && !range_ignored && x->hstatus >= 200 && x->hstatus < 300 && x->clen > 0 &&
		    (uint64_t)x->clen > body_room(k, x->hstatus)) {
			x->overflow = 1;
			return 0;
		}
	} else if (name == 13 && !strncasecmp(p, "content-range", 13)) {
		unsigned long long a, b, t;
		int used = 0;
		x->have_cr = sscanf(v, "bytes %llu-%llu/%llu%n", &a, &b, &t, &used) == 3 && !v[used] && a <= b && b < t;
		x->cr_start = a, x->cr_end = b, x->cr_total = t;
	} else if (name == 4 && !strncasecmp(p, "etag", 4)) {
		header_value(x->etag, sizeof(x->etag), p + name + 1, n - name - 1);
	} else if (name == 4 && !strncasecmp(p, "date", 4)) {
		time_t t = curl_getdate(v, NULL);
		x->date = t == (time_t)-1 ? 0 : (int64_t)t;
	} else if (name == 13 && !strncasecmp(p, "last-modified", 13)) {
		time_t t = curl_getdate(v, NULL);
		x->mtime = t == (time_t)-1 ? -1 : (int64_t)t;
	}
	return n;
}

static size_t
on_read(char *p, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	struct call *k = x->k;
	size_t n = size * nmemb;

	if (n > k->len - x->pos)
		n = (size_t)(k->len - x->pos);
	if (n == 0)
		return 0;
	if (k->mem) {
		memcpy(p, k->mem + x->pos, n);
	} else {
		ssize_t r;
		do
			r = pread(k->fd, p, n, (off_t)(k->off + x->pos));
		while (r < 0 && errno == EINTR);
		if (r <= 0) {
			x->read_errno = r < 0 ? errno : EIO; /* 0: the file shrank */
			return CURL_READFUNC_ABORT;
		}
		n = (size_t)r;
	}
	x->pos += n;
	return n;
}

static int
on_seek(void *arg, curl_off_t off, int origin)
{
	struct xfer *x = arg;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->k->len)
		return CURL_SEEKFUNC_FAIL;
	x->pos = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

/* ---- one attempt ---- */

/* The headers this attempt adds to the call's own: Range and If-Match when resuming a GET. */
static size_t
attempt_headers(struct call *k, struct xfer *x, struct dd_sigv4_header *h, char *range, size_t rsize)
{
	size_t n = 0;

	for (size_t i = 0; i < k->nhdr; i++)
		h[n++] = k->hdr[i];
	if (!k->get)
		return n;
	if (k->whole && !k->want_known && got(k)) /* cut short before we learnt the size: start over */
		got_clear(k);
	if (!k->whole || got(k)) {
		uint64_t start = k->want_off + got(k);
		snprintf(range, rsize, "bytes=%" PRIu64 "-%" PRIu64, start, k->want_off + k->want_len - 1);
		h[n++] = (struct dd_sigv4_header){ "Range", range };
		x->range_sent = 1;
		x->range_start = start;
		if (k->whole && k->pin[0])
			h[n++] = (struct dd_sigv4_header){ "If-Match", k->pin };
	}
	return n;
}

static int
add_header(struct curl_slist **l, const char *name, const char *value)
{
	char *line = dd_asprintf("%s: %s", name, value);
	struct curl_slist *n = curl_slist_append(*l, line);

	sodium_memzero(line, strlen(line));
	free(line);
	if (!n)
		return dd_error("out of memory building an S3 request");
	*l = n;
	return 0;
}

/* Sign the attempt and build its header list. */
static int
sign_into(struct dd_s3_client *c, struct xfer *x, const char *path, const struct dd_sigv4_header *h, size_t nh)
{
	struct call *k = x->k;
	struct dd_sigv4_signed sig = { 0 };
	struct dd_sigv4_creds cr = { c->creds.access_key, c->creds.secret_key, c->creds.session_token };
	struct dd_sigv4_request req = {
		.method = k->method, .host = c->host, .path = path, .query = k->query,
		.headers = h, .nheaders = nh, .payload_hash = k->sha,
		.region = c->creds.region, .service = "s3",
	};
	int rc = -1;

	pthread_mutex_lock(&c->mu);
	x->skew = c->skew;
	req.now = time(NULL) + x->skew; /* signed by S3's clock once it said ours is off */
	pthread_mutex_unlock(&c->mu);

	if (dd_sigv4_sign(&sig, &req, &cr) < 0)
		return dd_error_wrap("signing %s %s", k->method, k->key ? k->key : "(bucket)");
	if (add_header(&x->hdrs, "Host", c->host) < 0)
		goto out;
	for (size_t i = 0; i < nh; i++)
		if (add_header(&x->hdrs, h[i].name, h[i].value) < 0)
			goto out;
	for (size_t i = 0; i < sig.n; i++) {
		struct curl_slist *n = curl_slist_append(x->hdrs, sig.lines[i]);
		if (!n) {
			dd_error("out of memory building an S3 request");
			goto out;
		}
		x->hdrs = n;
	}
	rc = 0;
out:
	dd_sigv4_signed_free(&sig);
	return rc;
}

static void
set_method(CURL *e, struct xfer *x)
{
	struct call *k = x->k;

	if (!strcmp(k->method, "HEAD")) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(k->method, "PUT") || !strcmp(k->method, "POST")) {
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)k->len);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, x);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
		if (!strcmp(k->method, "POST"))
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "POST");
	} else if (strcmp(k->method, "GET")) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, k->method);
	}
}

static int
prepare(struct dd_s3_client *c, struct xfer *x)
{
	struct call *k = x->k;
	struct dd_buf path = DD_BUF_INIT;
	struct dd_sigv4_header h[MAX_HEADERS];
	char range[64];
	size_t nh = attempt_headers(k, x, h, range, sizeof(range));
	CURL *e;
	int rc = -1;

	dd_s3_canonical_path(&path, c->bucket, k->key, c->path_style);
	x->url = dd_asprintf("%s://%s%s%s%s", c->scheme, c->host, path.ptr, *k->query ? "?" : "", k->query);
	x->clen = -1, x->mtime = -1;
	if (sign_into(c, x, path.ptr, h, nh) < 0)
		goto out;
	if (!(e = x->easy = curl_easy_init())) {
		dd_error("cannot start an HTTP request (libcurl)");
		goto out;
	}
	curl_easy_setopt(e, CURLOPT_URL, x->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(e, CURLOPT_VERBOSE, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BYTES);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_SECONDS);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	/* bigger reads and writes than curl's 16 KiB / 64 KiB: fewer callbacks and system calls per MB on the event thread */
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, RECV_BUFFER);
	curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, SEND_BUFFER);
	set_method(e, x);
	rc = 0;
out:
	dd_buf_release(&path);
	return rc;
}

static void
xfer_release(struct xfer *x)
{
	if (x->easy)
		curl_easy_cleanup(x->easy);
	/* the lines hold the signature and, with session credentials, the token: wipe them */
	for (struct curl_slist *l = x->hdrs; l; l = l->next)
		sodium_memzero(l->data, strlen(l->data));
	curl_slist_free_all(x->hdrs);
	free(x->url);
	dd_buf_release(&x->errbody);
}

/* ---- judging an attempt ---- */

static int
net_retryable(CURLcode r)
{
	switch (r) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_WEIRD_SERVER_REPLY:
		return 1;
	default:
		return 0;
	}
}

static void
net_reason(struct dd_buf *why, struct xfer *x)
{
	long oserr = 0;

	curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &oserr);
	dd_buf_clear(why);
	switch (x->result) {
	case CURLE_COULDNT_CONNECT:
		dd_buf_puts(why, oserr == ECONNREFUSED ? "connection refused" : "cannot connect");
		if (oserr && oserr != ECONNREFUSED)
			dd_buf_printf(why, ": %s", strerror((int)oserr));
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		dd_buf_puts(why, "host name not found");
		break;
	case CURLE_OPERATION_TIMEDOUT:
		dd_buf_puts(why, "timed out");
		break;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		dd_buf_puts(why, oserr == ECONNRESET ? "connection reset" : "connection broken");
		break;
	case CURLE_GOT_NOTHING:
		dd_buf_puts(why, "the server closed the connection without answering");
		break;
	case CURLE_PARTIAL_FILE:
		dd_buf_puts(why, "reply cut short");
		break;
	default:
		dd_buf_puts(why, x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->result));
	}
}

static int
http_retryable(long status, const char *code)
{
	return status >= 500 || status == 429 || !strcmp(code, "RequestTimeout") || !strcmp(code, "SlowDown") ||
	       !strcmp(code, "ConditionalRequestConflict") || !strcmp(code, "InternalError");
}

/* The first answer to a whole GET gives its size and ETag: a cut-off reply resumes from there. */
static void
learn_size(struct call *k, const struct xfer *x)
{
	if (k->get && k->whole && !k->want_known && x->status == 200 && x->clen >= 0 && (uint64_t)x->clen <= k->max) {
		k->want_known = 1, k->want_len = (uint64_t)x->clen;
		snprintf(k->pin, sizeof(k->pin), "%s", x->etag);
	}
}

/* A 2xx GET: did exactly the asked bytes arrive? */
static enum outcome
check_get(struct dd_s3_client *c, struct call *k, struct xfer *x, struct dd_buf *why)
{
	if (x->status == 200 && k->whole) {
		learn_size(k, x);
	} else if (x->status == 206) {
		if (!x->range_sent || !x->have_cr || x->cr_start != x->range_start ||
		    x->cr_end >= k->want_off + k->want_len) {
			dd_error("S3 answered a ranged read of %s in bucket %s with a wrong Content-Range", k->key, c->bucket);
			return FINAL;
		}
		if (x->cr_end + 1 < k->want_off + k->want_len) {
			dd_error("%s in bucket %s is shorter (%" PRIu64 " bytes) than expected (damaged)", k->key, c->bucket,
				 x->cr_total);
			return FINAL;
		}
	} else {
		dd_error("S3 answered a read of %s in bucket %s with HTTP %ld", k->key, c->bucket, x->status);
		return FINAL;
	}
	if (k->want_known && got(k) != k->want_len) {
		dd_buf_clear(why);
		dd_buf_puts(why, "reply cut short");
		return RETRY_NET;
	}
	return DONE;
}

static enum outcome
judge(struct dd_s3_client *c, struct call *k, struct xfer *x, struct dd_buf *why)
{
	if (x->overflow) {
		dd_error("S3's reply to %s %s in bucket %s is larger than expected", k->method,
			 k->key ? k->key : "(bucket)", c->bucket);
		return FINAL;
	}
	if (x->ignored_range) {
		dd_error("the S3 server ignored the Range of a read of %s in bucket %s", k->key, c->bucket);
		return FINAL;
	}
	if (x->write_errno) {
		dd_error("cannot write %s of bucket %s to a local file: %s", k->key, c->bucket, strerror(x->write_errno));
		return FINAL;
	}
	if (x->result == CURLE_ABORTED_BY_CALLBACK || x->read_errno) {
		dd_error("cannot read the file sent as %s: %s", k->key, strerror(x->read_errno ? x->read_errno : EIO));
		return FINAL;
	}
	if (x->result != CURLE_OK) {
		learn_size(k, x);
		net_reason(why, x);
		if (net_retryable(x->result))
			return RETRY_NET;
		dd_error("request to the S3 store at %s failed (%s)", c->endpoint, why->ptr);
		dd_hint("check the endpoint ([store] endpoint, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL)");
		return FINAL;
	}
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	k->status = x->status;
	memset(&k->err, 0, sizeof(k->err));
	if (x->errbody.len)
		dd_s3_xml_error(x->errbody.ptr, x->errbody.len, &k->err);
	if (x->status >= 200 && x->status < 300) {
		k->head.size = x->clen >= 0 ? (uint64_t)x->clen : 0;
		k->head.mtime = x->mtime;
		snprintf(k->head.etag, sizeof(k->head.etag), "%s", x->etag);
		if (k->get)
			return check_get(c, k, x, why);
		if (k->check && k->check(k->out->ptr ? k->out->ptr : "", k->out->len) < 0) {
			dd_buf_clear(k->out);
			dd_buf_clear(why);
			dd_buf_puts(why, "reply cut short or garbled");
			return RETRY_NET;
		}
		return DONE;
	}
	if (http_retryable(x->status, k->err.code)) {
		dd_buf_clear(why);
		dd_buf_printf(why, "HTTP %ld%s%s", x->status, k->err.code[0] ? " " : "", k->err.code);
		return RETRY_HTTP;
	}
	return REFUSED;
}

/* ---- what a refusal means ---- */

static const char *
from_env(const struct dd_s3_client *c)
{
	return c->creds.source && strstr(c->creds.source, "environment") ? "" : c->creds.source;
}

static void
secret_hint(struct dd_buf *b, const struct dd_s3_client *c, const char *var, const char *file_key)
{
	const char *src = from_env(c);

	if (!src || !*src)
		dd_buf_puts(b, var);
	else
		dd_buf_printf(b, "%s in %s", file_key, src);
}

/* The one line for a request S3 refused for good (k->status, k->err). */
static void
refused(struct dd_s3_client *c, const struct call *k)
{
	const char *code = k->err.code, *key = k->key ? k->key : "(bucket)";
	struct dd_buf b = DD_BUF_INIT, what = DD_BUF_INIT;

	if (k->key)
		dd_buf_printf(&what, "%s %s", k->method, k->key);
	else
		dd_buf_puts(&what, !strcmp(k->method, "GET") ? "listing" : "a batch delete");

	if (!strcmp(code, "SignatureDoesNotMatch")) {
		dd_buf_printf(&b, "S3 rejected the signature for bucket %s (SignatureDoesNotMatch): check ", c->bucket);
		secret_hint(&b, c, "AWS_SECRET_ACCESS_KEY", "aws_secret_access_key");
	} else if (!strcmp(code, "InvalidAccessKeyId")) {
		dd_buf_printf(&b, "S3 at %s does not know the access key (InvalidAccessKeyId): check ", c->endpoint);
		secret_hint(&b, c, "AWS_ACCESS_KEY_ID", "aws_access_key_id");
	} else if (!strcmp(code, "NoSuchBucket")) {
		dd_buf_printf(&b, "bucket %s does not exist (NoSuchBucket) at %s: create it or fix the store URL",
			      c->bucket, c->endpoint);
	} else if (!strcmp(code, "AccessDenied") || (!code[0] && k->status == 403)) {
		dd_buf_printf(&b, "S3 denied access to bucket %s (%s) for %s: check that these credentials may use "
			      "the bucket (its policy, the key's permissions)", c->bucket, code[0] ? code : "HTTP 403",
			      what.ptr);
	} else if (!strcmp(code, "RequestTimeTooSkewed")) {
		dd_buf_printf(&b, "S3 refused a request for bucket %s (RequestTimeTooSkewed): this machine's clock is "
			      "off; set the system time", c->bucket);
	} else if (!strcmp(code, "ExpiredToken") || !strcmp(code, "InvalidToken") ||
		   !strcmp(code, "TokenRefreshRequired")) {
		dd_buf_printf(&b, "S3 rejected the session token for bucket %s (%s): refresh ", c->bucket, code);
		secret_hint(&b, c, "AWS_SESSION_TOKEN", "aws_session_token");
	} else if (!strcmp(code, "AuthorizationHeaderMalformed") || !strcmp(code, "PermanentRedirect") ||
		   (k->status >= 300 && k->status < 400)) {
		dd_buf_printf(&b, "bucket %s is not in region %s (%s): set the store's region or AWS_REGION",
			      c->bucket, c->creds.region, code[0] ? code : "redirect");
	} else if (k->named_by && (!strcmp(code, "XAmzContentSHA256Mismatch") || !strcmp(code, "BadDigest"))) {
		dd_s3_damaged_error(key, k->named_by, code);
		goto out;
	} else if (!strcmp(code, "XAmzContentSHA256Mismatch") || !strcmp(code, "BadDigest")) {
		dd_buf_printf(&b, "S3 received other bytes than were sent for %s in bucket %s (%s): the local file "
			      "changed while it was sent; run the command again", key, c->bucket, code);
	} else {
		dd_buf_printf(&b, "S3 refused %s in bucket %s (HTTP %ld%s%s)", what.ptr, c->bucket, k->status,
			      code[0] ? " " : "", code);
		if (k->err.message[0])
			dd_buf_printf(&b, ": %s", k->err.message);
	}
	dd_error("%s", b.ptr);
out:
	dd_buf_release(&b);
	dd_buf_release(&what);
}

void
dd_s3_damaged_error(const char *key, const char *path, const char *why)
{
	const char *name = strstr(key, "packs/"), *next;

	while (name && (next = strstr(name + 1, "packs/")))
		name = next; /* the store's own name, after any prefix */
	dd_error("the local cache copy of %s is damaged (its bytes do not match its name): %s", name ? name : key, why);
	dd_hint("run `git dnadata verify --offline --read-data`; remove %s from the cache; the next snapshot makes "
		"that data again", path);
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int
give_up(struct dd_s3_client *c, enum outcome o, const char *why, int attempts)
{
	pthread_mutex_lock(&c->mu);
	c->unreachable = 1;
	pthread_mutex_unlock(&c->mu);
	if (o == RETRY_NET)
		dd_error("cannot reach the S3 store at %s (%s): gave up after %d attempt%s", c->endpoint, why, attempts,
			 attempts == 1 ? "" : "s");
	else
		dd_error("the S3 store at %s keeps failing (%s) for bucket %s: gave up after %d attempt%s", c->endpoint,
			 why, c->bucket, attempts, attempts == 1 ? "" : "s");
	dd_hint("check that the server is up and the endpoint is right ([store] endpoint, AWS_ENDPOINT_URL_S3, "
		"AWS_ENDPOINT_URL), then run the command again");
	return DD_EUNREACHABLE;
}

static int64_t
mono_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

/* Keep the Date of an answer (any status): the store's clock (dd_s3_client_server_now). */
static void
note_date(struct dd_s3_client *c, const struct xfer *x)
{
	if (x->date <= 0)
		return;
	pthread_mutex_lock(&c->mu);
	c->date = x->date;
	c->date_mono = mono_seconds();
	pthread_mutex_unlock(&c->mu);
}

int
dd_s3_client_server_now(struct dd_s3_client *c, int64_t *now)
{
	int rc = DD_NOTFOUND;

	pthread_mutex_lock(&c->mu);
	if (c->date > 0) {
		*now = c->date + (mono_seconds() - c->date_mono);
		rc = 0;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/*
 * S3 refused attempt `x` as RequestTimeTooSkewed: from now on, requests are
 * signed by the clock of its answer's Date (as AWS's SDKs do), with one
 * warning. 1 if the call is worth one more attempt (the correction changed
 * something), else 0.
 */
static int
correct_skew(struct dd_s3_client *c, const struct call *k, const struct xfer *x)
{
	int64_t skew, was, now;

	if (k->status != 403 || strcmp(k->err.code, "RequestTimeTooSkewed") || x->date <= 0)
		return 0;
	skew = x->date - (int64_t)time(NULL);
	pthread_mutex_lock(&c->mu);
	was = c->skew;
	if (!was || x->skew == was) /* the first, or ours was current and still refused: take this one */
		c->skew = skew;
	now = c->skew;
	pthread_mutex_unlock(&c->mu);
	if (!was && now)
		dd_warn("this machine's clock is %" PRId64 " s %s S3's at %s: requests are signed by S3's clock; set the "
			"system time", now < 0 ? -now : now, now < 0 ? "ahead of" : "behind", c->endpoint);
	return x->skew != now; /* another correction than it was signed with: worth one more attempt */
}

/*
 * Perform a call with its retries. 0 on a 2xx; -1 with the one-line
 * refusal set (k->status says which; callers turn 404 / 412 into results
 * of their own); DD_EUNREACHABLE when the retries ran out.
 */
static int
perform(struct dd_s3_client *c, struct call *k)
{
	struct dd_buf why = DD_BUF_INIT;
	int limit, rc = -1;

	pthread_mutex_lock(&c->mu);
	limit = c->unreachable ? 0 : c->retries;
	pthread_mutex_unlock(&c->mu);
	if (!k->sha[0])
		dd_sha256_hex(k->sha, k->mem ? k->mem : "", k->mem ? (size_t)k->len : 0);
	for (int attempt = 0, skewed = 0;; attempt++) {
		struct xfer x;
		enum outcome o;

		memset(&x, 0, sizeof(x));
		x.k = k;
		k->status = 0;
		if (prepare(c, &x) < 0) {
			xfer_release(&x);
			break;
		}
		run_xfer(c, &x);
		note_date(c, &x);
		o = judge(c, k, &x, &why);
		if (o == REFUSED && !skewed && correct_skew(c, k, &x)) {
			xfer_release(&x);
			skewed = 1;
			attempt--; /* signed wrong, not a failure of the store */
			continue;
		}
		xfer_release(&x);
		if (o == DONE) {
			pthread_mutex_lock(&c->mu);
			c->unreachable = 0;
			pthread_mutex_unlock(&c->mu);
			rc = 0;
			break;
		}
		if (o == REFUSED)
			refused(c, k);
		if (o == FINAL || o == REFUSED)
			break;
		if (attempt >= limit) {
			rc = give_up(c, o, why.ptr, attempt + 1);
			break;
		}
		dd_debug("S3 %s %s: %s; retrying", k->method, k->key ? k->key : "(bucket)", why.ptr);
		sleep_ms(dd_s3_backoff_ms(attempt, randombytes_random()));
	}
	dd_buf_release(&why);
	return rc;
}

/* ---- the client ---- */

static int
settle_endpoint(struct dd_s3_client *c, const struct dd_s3_client_opts *o)
{
	if (c->creds.endpoint)
		c->endpoint = dd_strdup(c->creds.endpoint);
	else
		c->endpoint = dd_asprintf("https://s3.%s.amazonaws.com", c->creds.region);
	while (strlen(c->endpoint) > 1 && c->endpoint[strlen(c->endpoint) - 1] == '/')
		c->endpoint[strlen(c->endpoint) - 1] = '\0';
	if (dd_s3_endpoint_parse(c->endpoint, &c->scheme, &c->hostport) < 0)
		return -1;
	c->path_style = dd_s3_path_style(o->path_style, c->endpoint, c->bucket);
	c->host = c->path_style ? dd_strdup(c->hostport) : dd_asprintf("%s.%s", c->bucket, c->hostport);
	return 0;
}

int
dd_s3_client_new(struct dd_s3_client **out, const struct dd_s3_client_opts *o)
{
	struct dd_s3_creds_opts co = { .region = o->region, .endpoint = o->endpoint };
	struct dd_s3_client *c;
	int r;

	if (!dd_s3_bucket_name_ok(o->bucket)) {
		dd_error("'%s' is not a valid S3 bucket name (3-63 characters: a-z, 0-9, '.', '-')", o->bucket);
		dd_hint("write the store URL as s3://bucket/prefix");
		return -1;
	}
	pthread_once(&global_once, global_init);
	c = dd_calloc(1, sizeof(*c));
	c->bucket = dd_strdup(o->bucket);
	c->transfers = o->transfers > 0 ? o->transfers : DD_S3_DEFAULT_TRANSFERS;
	c->part_size = o->part_size ? o->part_size : DD_S3_DEFAULT_PART_SIZE;
	if (c->part_size < DD_S3_MIN_PART_SIZE)
		c->part_size = DD_S3_MIN_PART_SIZE;
	c->retries = o->retries >= 0 ? o->retries : DD_S3_DEFAULT_RETRIES;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	r = dd_s3_creds_resolve(&c->creds, &co);
	if (r != 0 || settle_endpoint(c, o) < 0)
		goto fail;
	if (!(c->multi = curl_multi_init())) {
		r = dd_error("cannot start libcurl's multi interface");
		goto fail;
	}
	curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c->transfers);
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c->transfers);
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->transfers); /* keep them all between bursts */
	if (pthread_create(&c->thread, NULL, event_loop, c) != 0) {
		r = dd_error("cannot start the S3 transfer thread");
		goto fail;
	}
	c->started = 1;
	*out = c;
	return 0;
fail:
	dd_s3_client_free(c);
	return r == DD_NOTFOUND ? DD_NOTFOUND : -1;
}

void
dd_s3_client_free(struct dd_s3_client *c)
{
	if (!c)
		return;
	if (c->started) {
		pthread_mutex_lock(&c->mu);
		c->stopping = 1;
		pthread_mutex_unlock(&c->mu);
		curl_multi_wakeup(c->multi);
		pthread_join(c->thread, NULL);
	}
	if (c->multi)
		curl_multi_cleanup(c->multi);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	dd_s3_creds_free(&c->creds);
	free(c->bucket);
	free(c->endpoint);
	free(c->scheme);
	free(c->hostport);
	free(c->host);
	free(c);
}

const char *
dd_s3_client_endpoint(const struct dd_s3_client *c)
{
	return c->endpoint;
}

const char *
dd_s3_client_bucket(const struct dd_s3_client *c)
{
	return c->bucket;
}

int
dd_s3_client_transfers(const struct dd_s3_client *c)
{
	return c->transfers;
}

uint64_t
dd_s3_client_part_size(const struct dd_s3_client *c)
{
	return c->part_size;
}

/* ---- object operations ---- */

static int
check_list(const char *body, size_t len)
{
	struct dd_s3_list l = { 0 };
	int r = dd_s3_xml_list(body, len, &l);

	dd_s3_list_free(&l);
	return r;
}

static int
check_upload_id(const char *body, size_t len)
{
	char *id = NULL;
	int r = dd_s3_xml_upload_id(body, len, &id);

	free(id);
	return r;
}

static int
check_parts(const char *body, size_t len)
{
	struct dd_s3_parts p = { 0 };
	int r = dd_s3_xml_parts(body, len, &p);

	dd_s3_parts_free(&p);
	return r;
}

static int
check_uploads(const char *body, size_t len)
{
	struct dd_s3_uploads u;
	int r = dd_s3_xml_uploads(body, len, &u);

	dd_s3_uploads_free(&u);
	return r;
}

static int
check_complete(const char *body, size_t len)
{
	struct dd_s3_error e;

	return dd_s3_xml_complete(body, len, &e) < 0 ? -1 : 0;
}

static int
check_delete(const char *body, size_t len)
{
	struct dd_s3_delete_failure *f = NULL;
	size_t n = 0;
	int r = dd_s3_xml_delete_result(body, len, &f, &n);

	dd_s3_delete_failures_free(f, n);
	return r;
}

static void
call_init(struct call *k, const char *method, const char *key, const char *query)
{
	memset(k, 0, sizeof(*k));
	k->method = method;
	k->key = key;
	k->query = query ? query : "";
	k->fd = -1;
	k->out_fd = -1;
}

static int
not_found(const struct call *k)
{
	return k->status == 404 && strcmp(k->err.code, "NoSuchBucket") != 0;
}

int
dd_s3_get(struct dd_s3_client *c, const char *key, struct dd_buf *out, size_t max)
{
	struct call k;
	int r;

	call_init(&k, "GET", key, NULL);
	dd_buf_clear(out);
	k.get = k.whole = 1;
	k.out = out;
	k.max = max;
	r = perform(c, &k);
	if (r == -1 && not_found(&k)) {
		dd_error_clear();
		r = DD_NOTFOUND;
	}
	if (r != 0)
		dd_buf_clear(out);
	return r;
}

int
dd_s3_get_fd(struct dd_s3_client *c, const char *key, int fd, uint64_t max, uint64_t *size)
{
	struct call k;
	int r;

	call_init(&k, "GET", key, NULL);
	k.get = k.whole = 1;
	k.out_fd = fd;
	k.max = max > SIZE_MAX ? SIZE_MAX : (size_t)max;
	r = perform(c, &k);
	if (r == -1 && not_found(&k)) {
		dd_error_clear();
		r = DD_NOTFOUND;
	}
	if (r == 0 && ftruncate(fd, (off_t)k.out_got) < 0) /* an attempt that was started over may have written more */
		r = dd_error_errno("cannot write %s of bucket %s to a local file", key, c->bucket);
	*size = r == 0 ? k.out_got : 0;
	return r;
}

int
dd_s3_get_range(struct dd_s3_client *c, const char *key, uint64_t off, size_t len, struct dd_buf *out)
{
	struct call k;
	int r;

	dd_buf_clear(out);
	if (len == 0)
		return dd_s3_head(c, key, NULL);
	call_init(&k, "GET", key, NULL);
	k.get = 1;
	k.want_known = 1, k.want_off = off, k.want_len = len;
	k.out = out;
	k.max = len;
	r = perform(c, &k);
	if (r == -1 && not_found(&k)) {
		dd_error_clear();
		r = DD_NOTFOUND;
	} else if (r == -1 && k.status == 416) {
		dd_error("%s in bucket %s is shorter than %" PRIu64 " bytes (damaged)", key, c->bucket, off + len);
	}
	if (r != 0)
		dd_buf_clear(out);
	return r;
}

/*
 * A refused HEAD has no body, so no S3 error code: a wrong secret and a
 * missing permission both read "403". Ask again with a one-byte GET, whose
 * answer carries the code, so the error can say what to check.
 */
/*
 * A HEAD refused without a body (so without a code): a one-byte GET of the
 * same key says why. 1 when that GET went through instead (the refusal
 * passed: the GET corrected this machine's clock, RequestTimeTooSkewed),
 * so the HEAD is worth one more try; else 0, with the GET's error when it
 * was refused too, the HEAD's otherwise.
 */
static int
explain_head(struct dd_s3_client *c, const char *key)
{
	struct dd_buf one = DD_BUF_INIT;
	struct dd_error_saved first;
	int r;

	dd_error_save(&first);
	r = dd_s3_get_range(c, key, 0, 1, &one);
	dd_buf_release(&one);
	if (r == -1) {
		dd_error_saved_free(&first); /* refused too: this time with the code */
		return 0;
	}
	dd_error_restore(&first);
	return r == 0 || r == DD_NOTFOUND;
}

int
dd_s3_head(struct dd_s3_client *c, const char *key, struct dd_s3_head *h)
{
	struct call k;
	int r;

	for (int tries = 0;; tries++) {
		call_init(&k, "HEAD", key, NULL);
		r = perform(c, &k);
		if (r == -1 && k.status == 404) {
			dd_error_clear();
			return DD_NOTFOUND;
		}
		if (r == -1 && (k.status == 400 || k.status == 403) && !k.err.code[0] && !tries && explain_head(c, key)) {
			dd_error_clear();
			continue;
		}
		break;
	}
	if (r == 0 && h)
		*h = k.head;
	return r;
}

static int
put_call(struct dd_s3_client *c, struct call *k, int create_only)
{
	int r;

	if (create_only)
		k->hdr[k->nhdr++] = (struct dd_sigv4_header){ "If-None-Match", "*" };
	r = perform(c, k);
	if (r == -1 && create_only && k->status == 412) {
		dd_error_clear();
		r = DD_EXISTS;
	}
	return r;
}

int
dd_s3_put(struct dd_s3_client *c, const char *key, const void *data, size_t len, int create_only)
{
	struct call k;

	call_init(&k, "PUT", key, NULL);
	k.mem = data ? data : "";
	k.len = len;
	return put_call(c, &k, create_only);
}

int
dd_s3_hash_region(char hex[65], int fd, uint64_t off, uint64_t len, const char *key)
{
	struct dd_sha256 *st = dd_sha256_new();
	uint8_t md[DD_SHA256_BYTES];
	size_t bufsize = 1u << 20;
	unsigned char *buf = dd_malloc(bufsize);
	uint64_t done = 0;
	int rc = 0;

	while (done < len) {
		size_t want = len - done < bufsize ? (size_t)(len - done) : bufsize;
		ssize_t n = pread(fd, buf, want, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? dd_error_errno("cannot read the file to send as %s", key)
				   : dd_error("the file to send as %s shrank while it was read", key);
			break;
		}
		dd_sha256_update(st, buf, (size_t)n);
		done += (uint64_t)n;
	}
	dd_sha256_final(st, md);
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	free(buf);
	return rc;
}

int
dd_s3_put_fd(struct dd_s3_client *c, const char *key, int fd, uint64_t off, uint64_t len, int create_only,
	     const char *sha256, const char *path)
{
	struct call k;

	call_init(&k, "PUT", key, NULL);
	k.fd = fd, k.off = off, k.len = len;
	if (sha256) { /* the server checks the bytes against the name: no pass of ours */
		snprintf(k.sha, sizeof(k.sha), "%s", sha256);
		k.named_by = path ? path : key;
	} else if (dd_s3_hash_region(k.sha, fd, off, len, key) < 0) {
		return -1;
	}
	return put_call(c, &k, create_only);
}

int
dd_s3_delete(struct dd_s3_client *c, const char *key)
{
	struct call k;
	int r;

	call_init(&k, "DELETE", key, NULL);
	r = perform(c, &k);
	if (r == -1 && not_found(&k)) {
		dd_error_clear();
		r = 0;
	}
	return r;
}

static int
delete_batch(struct dd_s3_client *c, const char *const *keys, size_t n)
{
	struct dd_buf body = DD_BUF_INIT, reply = DD_BUF_INIT;
	struct dd_s3_delete_failure *failed = NULL;
	uint8_t md[DD_SHA256_BYTES];
	char b64[64];
	size_t nfailed = 0;
	struct call k;
	int r;

	dd_s3_xml_delete_request(&body, keys, n);
	dd_sha256(md, body.ptr, body.len);
	sodium_bin2base64(b64, sizeof(b64), md, sizeof(md), sodium_base64_VARIANT_ORIGINAL);
	call_init(&k, "POST", NULL, "delete=");
	k.mem = body.ptr, k.len = body.len;
	k.hdr[k.nhdr++] = (struct dd_sigv4_header){ "Content-Type", "application/xml" };
	k.hdr[k.nhdr++] = (struct dd_sigv4_header){ "x-amz-checksum-sha256", b64 };
	k.out = &reply, k.max = MAX_XML_BODY;
	k.check = check_delete;
	r = perform(c, &k);
	if (r == 0 && dd_s3_xml_delete_result(reply.ptr, reply.len, &failed, &nfailed) < 0)
		r = dd_error("cannot parse S3's answer to a delete in bucket %s", c->bucket);
	if (r == 0 && nfailed) {
		char *shown = dd_strdup(failed[0].key);
		shown[dd_s3_xml_printable(shown, strlen(shown))] = '\0';
		r = dd_error("S3 could not delete %zu object%s in bucket %s (first: %s, %s)", nfailed,
			     nfailed == 1 ? "" : "s", c->bucket, shown, failed[0].code);
		free(shown);
	}
	dd_s3_delete_failures_free(failed, nfailed);
	dd_buf_release(&reply);
	dd_buf_release(&body);
	return r;
}

int
dd_s3_delete_many(struct dd_s3_client *c, const char *const *keys, size_t n)
{
	for (size_t i = 0; i < n; i += 1000) {
		int r = delete_batch(c, keys + i, n - i < 1000 ? n - i : 1000);
		if (r != 0)
			return r;
	}
	return 0;
}

int
dd_s3_list(struct dd_s3_client *c, const char *prefix, int (*fn)(const struct dd_s3_object *o, void *arg), void *arg)
{
	struct dd_buf query = DD_BUF_INIT, reply = DD_BUF_INIT;
	char *token = NULL, *last = NULL; /* the last key listed: keys come in ascending order, each once */
	int r = 0, pages = 0, empty = 0;

	do {
		struct dd_s3_param p[3] = { { "list-type", "2" }, { "prefix", prefix }, { "continuation-token", token } };
		struct dd_s3_list l = { 0 };
		struct call k;

		dd_buf_clear(&query);
		dd_s3_canonical_query(&query, p, token ? 3 : 2);
		call_init(&k, "GET", NULL, query.ptr);
		dd_buf_clear(&reply);
		k.out = &reply, k.max = MAX_XML_BODY;
		k.check = check_list;
		if ((r = perform(c, &k)) != 0)
			break;
		if (dd_s3_xml_list(reply.ptr, reply.len, &l) < 0) {
			r = dd_error("cannot parse S3's listing of bucket %s", c->bucket);
			break;
		}
		/*
		 * A server going round in circles (tokens that cycle, pages
		 * that list again what came before) would loop for ever while
		 * the names pile up: every key must come after the last one.
		 */
		for (size_t i = 0; i < l.n && r == 0; i++) {
			if (last && strcmp(l.objects[i].key, last) <= 0) {
				r = dd_error("S3's listing of bucket %s goes back to names it already listed (page %d)",
					     c->bucket, pages + 1);
				dd_hint("the server's pagination is broken; check the S3 server or its proxy");
				break;
			}
			free(last);
			last = dd_strdup(l.objects[i].key);
			r = fn(&l.objects[i], arg);
		}
		empty = l.n ? 0 : empty + 1;
		pages++;
		if (r == 0 && l.truncated && (!l.next_token || !*l.next_token || (token && !strcmp(token, l.next_token))))
			r = dd_error("S3's listing of bucket %s is truncated but gives no new continuation token",
				     c->bucket);
		else if (r == 0 && l.truncated && (pages >= MAX_LIST_PAGES || empty >= MAX_EMPTY_PAGES))
			r = dd_error("S3's listing of bucket %s does not end (%d pages, the last %d empty)", c->bucket,
				     pages, empty);
		free(token);
		token = NULL;
		if (r == 0 && l.truncated)
			token = dd_strdup(l.next_token);
		dd_s3_list_free(&l);
	} while (r == 0 && token);
	free(token);
	free(last);
	dd_buf_release(&reply);
	dd_buf_release(&query);
	return r;
}

/* ---- multipart primitives ---- */

int
dd_s3_mpu_create(struct dd_s3_client *c, const char *key, char **upload_id)
{
	struct dd_buf reply = DD_BUF_INIT;
	struct call k;
	int r;

	call_init(&k, "POST", key, "uploads=");
	k.mem = "";
	k.out = &reply, k.max = MAX_XML_BODY;
	k.check = check_upload_id;
	r = perform(c, &k);
	if (r == 0 && dd_s3_xml_upload_id(reply.ptr, reply.len, upload_id) < 0)
		r = dd_error("cannot parse S3's answer to starting a multipart upload of %s in bucket %s", key, c->bucket);
	dd_buf_release(&reply);
	return r;
}

int
dd_s3_mpu_part(struct dd_s3_client *c, const char *key, const char *upload_id, int number, int fd, uint64_t off,
	       uint64_t len, const char *sha256, char etag[80])
{
	struct dd_buf query = DD_BUF_INIT;
	char num[16];
	struct call k;
	int r;

	snprintf(num, sizeof(num), "%d", number);
	struct dd_s3_param p[2] = { { "partNumber", num }, { "uploadId", upload_id } };
	dd_s3_canonical_query(&query, p, 2);
	call_init(&k, "PUT", key, query.ptr);
	k.fd = fd, k.off = off, k.len = len;
	snprintf(k.sha, sizeof(k.sha), "%s", sha256);
	r = perform(c, &k);
	if (r == 0 && !k.head.etag[0])
		r = dd_error("S3 gave no ETag for part %d of %s in bucket %s", number, key, c->bucket);
	if (r == 0)
		memcpy(etag, k.head.etag, sizeof(k.head.etag));
	dd_buf_release(&query);
	return r;
}

int
dd_s3_mpu_list_parts(struct dd_s3_client *c, const char *key, const char *upload_id, struct dd_s3_parts *out)
{
	struct dd_buf query = DD_BUF_INIT, reply = DD_BUF_INIT;
	char marker[16] = "0";
	int r = 0;

	memset(out, 0, sizeof(*out));
	for (;;) {
		struct dd_s3_param p[3] = { { "uploadId", upload_id }, { "part-number-marker", marker },
					    { "max-parts", "1000" } };
		struct dd_s3_parts page = { 0 };
		struct call k;

		dd_buf_clear(&query);
		dd_s3_canonical_query(&query, p, 3);
		call_init(&k, "GET", key, query.ptr);
		dd_buf_clear(&reply);
		k.out = &reply, k.max = MAX_XML_BODY;
		k.check = check_parts;
		r = perform(c, &k);
		if (r == -1 && k.status == 404) {
			dd_error_clear();
			r = DD_NOTFOUND;
		}
		if (r != 0)
			break;
		if (dd_s3_xml_parts(reply.ptr, reply.len, &page) < 0) {
			r = dd_error("cannot parse S3's list of the parts of %s in bucket %s", key, c->bucket);
			break;
		}
		out->parts = dd_realloc(out->parts, (out->n + page.n + 1) * sizeof(*out->parts));
		memcpy(out->parts + out->n, page.parts, page.n * sizeof(*page.parts));
		out->n += page.n;
		int more = page.truncated && page.next_marker > atoi(marker) && out->n <= DD_S3_MAX_PARTS;
		snprintf(marker, sizeof(marker), "%d", page.next_marker);
		free(page.parts);
		if (!more)
			break;
	}
	if (r != 0)
		dd_s3_parts_free(out);
	dd_buf_release(&reply);
	dd_buf_release(&query);
	return r;
}

static void
xml_escape(struct dd_buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': dd_buf_puts(b, "&amp;"); break;
		case '<': dd_buf_puts(b, "&lt;"); break;
		case '>': dd_buf_puts(b, "&gt;"); break;
		case '"': dd_buf_puts(b, "&quot;"); break;
		case '\'': dd_buf_puts(b, "&apos;"); break;
		default: dd_buf_putc(b, *s);
		}
	}
}

int
dd_s3_mpu_complete(struct dd_s3_client *c, const char *key, const char *upload_id, char (*etags)[80], size_t n)
{
	struct dd_buf query = DD_BUF_INIT, body = DD_BUF_INIT, reply = DD_BUF_INIT;
	struct dd_s3_param p[1] = { { "uploadId", upload_id } };
	struct dd_s3_error e;
	struct call k;
	int r;

	dd_s3_canonical_query(&query, p, 1);
	dd_buf_puts(&body, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (size_t i = 0; i < n; i++) {
		dd_buf_printf(&body, "<Part><PartNumber>%zu</PartNumber><ETag>", i + 1);
		xml_escape(&body, etags[i]);
		dd_buf_puts(&body, "</ETag></Part>");
	}
	dd_buf_puts(&body, "</CompleteMultipartUpload>");
	call_init(&k, "POST", key, query.ptr);
	k.mem = body.ptr, k.len = body.len;
	k.hdr[k.nhdr++] = (struct dd_sigv4_header){ "Content-Type", "application/xml" };
	k.out = &reply, k.max = MAX_XML_BODY;
	k.check = check_complete;
	r = perform(c, &k);
	if (r == -1 && k.status == 404 && !strcmp(k.err.code, "NoSuchUpload")) {
		dd_error_clear();
		r = DD_NOTFOUND;
	}
	if (r == 0) {
		int x = dd_s3_xml_complete(reply.ptr, reply.len, &e);
		if (x == 1)
			r = dd_error("S3 could not complete the upload of %s in bucket %s (%s)", key, c->bucket, e.code);
		else if (x < 0)
			r = dd_error("cannot parse S3's answer to completing the upload of %s in bucket %s", key, c->bucket);
	}
	dd_buf_release(&reply);
	dd_buf_release(&body);
	dd_buf_release(&query);
	return r;
}

int
dd_s3_mpu_abort(struct dd_s3_client *c, const char *key, const char *upload_id)
{
	struct dd_buf query = DD_BUF_INIT;
	struct dd_s3_param p[1] = { { "uploadId", upload_id } };
	struct call k;
	int r;

	dd_s3_canonical_query(&query, p, 1);
	call_init(&k, "DELETE", key, query.ptr);
	r = perform(c, &k);
	if (r == -1 && k.status == 404) {
		dd_error_clear();
		r = 0;
	}
	dd_buf_release(&query);
	return r;
}

/*
 * The uploads a page lists: S3's default (1000), or in tests
 * DNADATA_TEST_S3_MAX_UPLOADS (1..1000, with DNADATA_TEST=1), so that
 * t-gc-store.sh walks the pages with a handful of uploads.
 */
static const char *
max_uploads(void)
{
	const char *e = getenv("DNADATA_TEST_S3_MAX_UPLOADS"), *t = getenv("DNADATA_TEST");

	if (!e || !t || strcmp(t, "1") || strspn(e, "0123456789") != strlen(e) || strlen(e) > 4 || atoi(e) < 1 ||
	    atoi(e) > 1000)
		return "1000";
	return e;
}

/*
 * The pages of ListMultipartUploads one run walks: MAX_UPLOAD_PAGES, or in
 * tests DNADATA_TEST_S3_MAX_UPLOAD_PAGES (1..1000, with DNADATA_TEST=1).
 */
static int
max_upload_pages(void)
{
	const char *e = getenv("DNADATA_TEST_S3_MAX_UPLOAD_PAGES"), *t = getenv("DNADATA_TEST");

	if (!e || !t || strcmp(t, "1") || !*e || strspn(e, "0123456789") != strlen(e) || strlen(e) > 4 ||
	    atoi(e) < 1 || atoi(e) > MAX_UPLOAD_PAGES)
		return MAX_UPLOAD_PAGES;
	return atoi(e);
}

/*
 * One page of ListMultipartUploads after (key, id) -- NULL, NULL: the
 * first -- into *u. 0, -1, DD_EUNREACHABLE.
 */
static int
uploads_page(struct dd_s3_client *c, const char *prefix, const char *key, const char *id, struct dd_s3_uploads *u)
{
	struct dd_buf query = DD_BUF_INIT, reply = DD_BUF_INIT;
	struct dd_s3_param p[5] = { { "uploads", NULL }, { "prefix", prefix }, { "max-uploads", max_uploads() },
				    { "key-marker", key }, { "upload-id-marker", id } };
	struct call k;
	int r;

	memset(u, 0, sizeof(*u));
	dd_s3_canonical_query(&query, p, key ? (id ? 5 : 4) : 3);
	call_init(&k, "GET", NULL, query.ptr);
	k.out = &reply, k.max = MAX_XML_BODY;
	k.check = check_uploads;
	r = perform(c, &k);
	if (r == 0 && dd_s3_xml_uploads(reply.ptr, reply.len, u) < 0)
		r = dd_error("cannot parse S3's list of the multipart uploads in bucket %s", c->bucket);
	dd_buf_release(&reply);
	dd_buf_release(&query);
	return r;
}

/* Does the page's (NextKeyMarker, NextUploadIdMarker) move past (key, id)? Keys only go forward. */
static int
markers_advance(const struct dd_s3_uploads *u, const char *key, const char *id)
{
	int cmp;

	if (!key)
		return 1;
	cmp = strcmp(u->next_key_marker, key);
	if (cmp != 0)
		return cmp > 0;
	return u->next_upload_id_marker && (!id || strcmp(u->next_upload_id_marker, id) != 0);
}

int
dd_s3_mpu_list(struct dd_s3_client *c, const char *prefix, int (*fn)(const struct dd_s3_upload *u, void *arg),
	       void *arg)
{
	char *key = NULL, *id = NULL;
	int r = 0, pages = 0, empty = 0, cap = max_upload_pages();

	do {
		struct dd_s3_uploads u;

		/*
		 * A server can keep markers moving for ever (upload ids of one key
		 * taking turns): what the first pages gave is done, the rest left
		 * to the next run.
		 */
		if (pages >= cap) {
			dd_warn("S3's list of the multipart uploads in bucket %s goes on past %d pages: the rest is "
				"left for the next run", c->bucket, pages);
			break;
		}
		if ((r = uploads_page(c, prefix, key, id, &u)) != 0)
			break;
		for (size_t i = 0; i < u.n && r == 0; i++)
			if (!strncmp(u.uploads[i].key, prefix, strlen(prefix))) /* else: a server's mistake */
				r = fn(&u.uploads[i], arg);
		empty = u.n ? 0 : empty + 1;
		pages++;
		if (r == 0 && u.truncated && !markers_advance(&u, key, id))
			r = dd_error("S3's list of the multipart uploads in bucket %s is truncated but its markers do not "
				     "move on (page %d)", c->bucket, pages);
		else if (r == 0 && u.truncated && empty >= MAX_EMPTY_PAGES)
			r = dd_error("S3's list of the multipart uploads in bucket %s does not end (%d pages, the last "
				     "%d empty)", c->bucket, pages, empty);
		free(key);
		free(id);
		key = id = NULL;
		if (r == 0 && u.truncated) {
			key = dd_strdup(u.next_key_marker);
			id = u.next_upload_id_marker ? dd_strdup(u.next_upload_id_marker) : NULL;
		}
		dd_s3_uploads_free(&u);
	} while (r == 0 && key);
	free(key);
	free(id);
	return r;
}
