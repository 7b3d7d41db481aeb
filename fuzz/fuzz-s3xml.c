/*
 * fuzz/fuzz-s3xml.c: every S3 XML reply parser (s3/xml.c) on the same
 * arbitrary bytes.
 *
 * Beyond "no crash under ASan/UBSan": a failure always leaves a one-line
 * reason and nothing allocated; a success always respects the documented
 * bounds (at most 1000 entries, keys of 1..1024 bytes, part numbers
 * 1..10000, a truncated listing carries its continuation token or key
 * marker, upload ids of 1..1024 bytes); keys read
 * from a listing survive a delete request and its reply unchanged.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3/xml.h"
#include "util/buf.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_failure(int rc)
{
	if (rc == -1 && (!dd_error_last() || strchr(dd_error_last(), '\n')))
		abort(); /* every failure has a one-line reason */
	dd_error_clear();
}

static void
check_key(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > 1024)
		abort();
}

/* Keys through a delete request and back, as a server would read them. */
static void
round_trip(const struct dd_s3_list *l)
{
	struct dd_buf req = DD_BUF_INIT, reply = DD_BUF_INIT;
	struct dd_s3_delete_failure *f = NULL;
	const char **keys = calloc(l->n + 1, sizeof(*keys));
	size_t n = 0;

	if (!keys)
		abort();
	for (size_t i = 0; i < l->n; i++)
		keys[i] = l->objects[i].key;
	dd_s3_xml_delete_request(&req, keys, l->n);
	dd_buf_puts(&reply, "<DeleteResult>");
	for (const char *p = strstr(req.ptr, "<Object><Key>"); p; p = strstr(p + 1, "<Object><Key>")) {
		const char *k = p + 13, *end = strstr(k, "</Key>");
		dd_buf_puts(&reply, "<Error><Key>");
		dd_buf_put(&reply, k, (size_t)(end - k));
		dd_buf_puts(&reply, "</Key></Error>");
	}
	dd_buf_puts(&reply, "</DeleteResult>");
	if (dd_s3_xml_delete_result(reply.ptr, reply.len, &f, &n) < 0 || n != l->n) {
		fprintf(stderr, "delete request does not round-trip: %s\n", dd_error_last());
		abort();
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(f[i].key, keys[i]))
			abort();
	dd_s3_delete_failures_free(f, n);
	free(keys);
	dd_buf_release(&req);
	dd_buf_release(&reply);
}

static void
fuzz_list(const char *body, size_t len)
{
	struct dd_s3_list l;
	int rc = dd_s3_xml_list(body, len, &l);

	if (rc == 0) {
		if (l.n > 1000 || (l.truncated && !l.next_token))
			abort();
		for (size_t i = 0; i < l.n; i++)
			check_key(l.objects[i].key);
		round_trip(&l);
	} else if (l.n || l.objects || l.next_token) {
		abort();
	}
	dd_s3_list_free(&l);
	check_failure(rc);
}

static void
fuzz_multipart(const char *body, size_t len)
{
	struct dd_s3_parts p;
	struct dd_s3_error e;
	struct dd_s3_uploads u;
	char *id = NULL;
	int rc;

	rc = dd_s3_xml_parts(body, len, &p);
	if (rc == 0) {
		if (p.n > 1000 || p.next_marker < 0 || p.next_marker > 10000)
			abort();
		for (size_t i = 0; i < p.n; i++)
			if (p.parts[i].number < 1 || p.parts[i].number > 10000 || !p.parts[i].etag[0])
				abort();
	}
	dd_s3_parts_free(&p);
	check_failure(rc);

	rc = dd_s3_xml_upload_id(body, len, &id);
	if ((rc == 0) != (id != NULL))
		abort();
	free(id);
	check_failure(rc);

	rc = dd_s3_xml_uploads(body, len, &u);
	if (rc == 0) {
		if (u.n > 1000 || (u.truncated && !u.next_key_marker))
			abort();
		for (size_t i = 0; i < u.n; i++) {
			check_key(u.uploads[i].key);
			check_key(u.uploads[i].upload_id);
		}
		if (u.next_key_marker)
			check_key(u.next_key_marker);
		if (u.next_upload_id_marker)
			check_key(u.next_upload_id_marker);
	} else if (u.n || u.uploads || u.next_key_marker || u.next_upload_id_marker) {
		abort();
	}
	dd_s3_uploads_free(&u);
	check_failure(rc);

	rc = dd_s3_xml_complete(body, len, &e);
	if (rc < -1 || rc > 1 || strlen(e.code) >= sizeof(e.code) || strlen(e.message) >= sizeof(e.message))
		abort();
	check_failure(rc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct dd_s3_delete_failure *f = NULL;
	struct dd_s3_error e;
	size_t n = 0;
	int rc;

	fuzz_list(body, size);
	fuzz_multipart(body, size);

	rc = dd_s3_xml_error(body, size, &e);
	if (rc == -1 && (e.code[0] || e.message[0]))
		abort();
	check_failure(rc);

	rc = dd_s3_xml_delete_result(body, size, &f, &n);
	if (rc < 0 && (f || n))
		abort();
	for (size_t i = 0; i < n; i++)
		check_key(f[i].key);
	dd_s3_delete_failures_free(f, n);
	check_failure(rc);
	return 0;
}
