/*
 * tests/unit/test-s3xml.c: S3's XML replies (s3/xml.c) as AWS and Ceph's
 * RADOS Gateway write them, and hostile ones: whatever is malformed,
 * oversized or out of range is refused whole, with a one-line reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3/xml.h"
#include "util/buf.h"
#include "util/err.h"

#define XMLDECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define NS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""

static void
refused(int rc, const char *mentions)
{
	const char *msg = dd_error_last();

	assert_int_equal(rc, -1);
	assert_non_null(msg);
	assert_null(strchr(msg, '\n'));
	if (mentions && !strstr(msg, mentions))
		fail_msg("error '%s' does not mention '%s'", msg, mentions);
	dd_error_clear();
}

/* ---- ListObjectsV2 ---- */

/* RGW's answer to list-type=2, one page of two, keys with XML escapes. */
static const char rgw_list_truncated[] =
	XMLDECL "<ListBucketResult " NS "><Name>dnadata</Name><Prefix>store/</Prefix>"
	"<MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
	"<Contents><Key>store/data/ab&amp;c&lt;d&gt;&quot;e&apos;f</Key>"
	"<LastModified>2026-11-29T16:22:17.123Z</LastModified>"
	"<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>1024</Size>"
	"<StorageClass>STANDARD</StorageClass><Type>Normal</Type></Contents>"
	"<Contents><Key>store/data/caf\xc3\xa9 &#x1F600;</Key><LastModified>1970-01-01T00:00:00.000Z</LastModified>"
	"<Size>18446744073709551615</Size></Contents>"
	"<KeyCount>2</KeyCount><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
	"</ListBucketResult>";

static void
list_reads_a_truncated_page_with_escaped_keys(void **state)
{
	struct dd_s3_list l;

	assert_int_equal(dd_s3_xml_list(rgw_list_truncated, sizeof(rgw_list_truncated) - 1, &l), 0);
	assert_int_equal(l.n, 2);
	assert_true(l.truncated);
	assert_string_equal(l.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	assert_string_equal(l.objects[0].key, "store/data/ab&c<d>\"e'f");
	assert_int_equal(l.objects[0].size, 1024);
	assert_int_equal(l.objects[0].mtime, 1795969337); /* 2026-11-29T16:22:17Z, fraction dropped */
	assert_string_equal(l.objects[1].key, "store/data/caf\xc3\xa9 \xf0\x9f\x98\x80");
	assert_true(l.objects[1].size == UINT64_MAX);
	assert_int_equal(l.objects[1].mtime, 0);
	dd_s3_list_free(&l);
	assert_null(l.objects);
	assert_int_equal(l.n, 0);
}

/* AWS's last page: pretty-printed, not truncated, no token; an empty page. */
static void
list_reads_a_last_page_and_an_empty_one(void **state)
{
	static const char aws[] =
		XMLDECL "<ListBucketResult " NS ">\n  <Name>bucket</Name>\n  <Prefix/>\n  <KeyCount>1</KeyCount>\n"
		"  <MaxKeys>1000</MaxKeys>\n  <IsTruncated>false</IsTruncated>\n  <Contents>\n"
		"    <Key>my-image.jpg</Key>\n    <LastModified>2009-10-12T17:50:30.000Z</LastModified>\n"
		"    <ETag>\"fba9dede5f27731c9771645a39863328\"</ETag>\n    <Size>434234</Size>\n"
		"    <StorageClass>STANDARD</StorageClass>\n  </Contents>\n</ListBucketResult>\n";
	static const char empty[] = "<ListBucketResult " NS "><Name>b</Name><KeyCount>0</KeyCount>"
				    "<IsTruncated>false</IsTruncated></ListBucketResult>";
	struct dd_s3_list l;

	assert_int_equal(dd_s3_xml_list(aws, sizeof(aws) - 1, &l), 0);
	assert_int_equal(l.n, 1);
	assert_false(l.truncated);
	assert_null(l.next_token);
	assert_string_equal(l.objects[0].key, "my-image.jpg");
	assert_int_equal(l.objects[0].size, 434234);
	assert_int_equal(l.objects[0].mtime, 1255369830);
	dd_s3_list_free(&l);

	assert_int_equal(dd_s3_xml_list(empty, sizeof(empty) - 1, &l), 0);
	assert_int_equal(l.n, 0);
	assert_null(l.objects);
	dd_s3_list_free(&l);
}

/* An entry without LastModified has no known time (-1), not 1970: the store's gc takes it for young. */
static void
list_without_last_modified_has_an_unknown_time(void **state)
{
	static const char doc[] = "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>k</Key>"
				  "<Size>1</Size></Contents></ListBucketResult>";
	struct dd_s3_list l;

	(void)state;
	assert_int_equal(dd_s3_xml_list(doc, sizeof(doc) - 1, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.objects[0].mtime, -1);
	dd_s3_list_free(&l);
}

static int
list_of(const char *contents, const char *extra)
{
	struct dd_buf b = DD_BUF_INIT;
	struct dd_s3_list l;
	int rc;

	dd_buf_printf(&b, "<ListBucketResult><IsTruncated>false</IsTruncated>%s%s</ListBucketResult>", contents,
		      extra);
	rc = dd_s3_xml_list(b.ptr, b.len, &l);
	if (rc == 0)
		dd_s3_list_free(&l);
	else
		assert_int_equal(l.n, 0), assert_null(l.objects), assert_null(l.next_token);
	dd_buf_release(&b);
	return rc;
}

static void
list_refuses_bad_fields(void **state)
{
	static const char *const bad[] = {
		"<Contents><Key>k</Key><Size>12a</Size></Contents>",
		"<Contents><Key>k</Key><Size>-1</Size></Contents>",
		"<Contents><Key>k</Key><Size> 1</Size></Contents>",
		"<Contents><Key>k</Key><Size></Size></Contents>",
		"<Contents><Key>k</Key><Size>18446744073709551616</Size></Contents>",
		"<Contents><Key>k</Key></Contents>",
		"<Contents><Size>1</Size></Contents>",
		"<Contents><Key></Key><Size>1</Size></Contents>",
		"<Contents><Key>k</Key><Key>j</Key><Size>1</Size></Contents>",
		"<Contents><Key>k</Key><Size>1</Size><LastModified>yesterday</LastModified></Contents>",
		"<Contents><Key>k</Key><Size>1</Size><LastModified>2009-13-12T17:50:30Z</LastModified></Contents>",
		"<Contents><Key>k</Key><Size>1</Size><LastModified>2009-10-12T17:50:30</LastModified></Contents>",
		"<Contents><Key>k</Key><Size>1</Size><LastModified>2009-10-12T17:50:30.Z</LastModified></Contents>",
		"<Contents><Key>k</Key><Size>1</Size><LastModified>2009-02-29T17:50:30Z</LastModified></Contents>",
	};
	struct dd_buf longkey = DD_BUF_INIT;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (list_of(bad[i], "") != -1)
			fail_msg("accepted %s", bad[i]);
		refused(-1, "S3 listing");
	}
	refused(list_of("", "<IsTruncated>maybe</IsTruncated>"), "IsTruncated");
	refused(list_of("", "<IsTruncated>true</IsTruncated>"), "IsTruncated"); /* given twice */

	dd_buf_puts(&longkey, "<Contents><Key>");
	for (int i = 0; i < 1025; i++)
		dd_buf_putc(&longkey, 'k');
	dd_buf_puts(&longkey, "</Key><Size>1</Size></Contents>");
	refused(list_of(longkey.ptr, ""), "Key");
	dd_buf_truncate(&longkey, 15 + 1024);
	dd_buf_puts(&longkey, "</Key><Size>1</Size></Contents>");
	assert_int_equal(list_of(longkey.ptr, ""), 0); /* 1024 bytes is S3's limit, allowed */
	dd_buf_release(&longkey);
}

static void
list_accepts_time_offsets_and_fractions(void **state)
{
	static const char body[] = "<ListBucketResult><IsTruncated>false</IsTruncated>"
				   "<Contents><Key>a</Key><Size>0</Size><LastModified>2009-10-12T19:50:30.5+02:00</LastModified></Contents>"
				   "<Contents><Key>b</Key><Size>0</Size><LastModified>2009-10-12T17:50:30Z</LastModified></Contents>"
				   "<Contents><Key>c</Key><Size>0</Size><LastModified>1969-12-31T23:59:59.999999999Z</LastModified></Contents>"
				   "</ListBucketResult>";
	struct dd_s3_list l;

	assert_int_equal(dd_s3_xml_list(body, sizeof(body) - 1, &l), 0);
	assert_int_equal(l.objects[0].mtime, 1255369830);
	assert_int_equal(l.objects[1].mtime, 1255369830);
	assert_int_equal(l.objects[2].mtime, -1);
	dd_s3_list_free(&l);
}

static void
list_truncated_without_token_is_refused(void **state)
{
	static const char body[] = "<ListBucketResult><IsTruncated>true</IsTruncated>"
				   "<Contents><Key>a</Key><Size>0</Size></Contents></ListBucketResult>";
	struct dd_s3_list l;

	refused(dd_s3_xml_list(body, sizeof(body) - 1, &l), "NextContinuationToken");
	assert_null(l.objects);
}

static void
list_refuses_more_than_1000_entries(void **state)
{
	struct dd_buf b = DD_BUF_INIT;
	struct dd_s3_list l;

	dd_buf_puts(&b, "<ListBucketResult><IsTruncated>false</IsTruncated>");
	for (int i = 0; i < 2000; i++) {
		dd_buf_printf(&b, "<Contents><Key>k%d</Key><Size>%d</Size></Contents>", i, i);
		if (i == 999) {
			struct dd_buf ok = DD_BUF_INIT;
			dd_buf_printf(&ok, "%s</ListBucketResult>", b.ptr);
			assert_int_equal(dd_s3_xml_list(ok.ptr, ok.len, &l), 0);
			assert_int_equal(l.n, 1000);
			assert_string_equal(l.objects[999].key, "k999");
			dd_s3_list_free(&l);
			dd_buf_release(&ok);
		}
	}
	dd_buf_puts(&b, "</ListBucketResult>");
	refused(dd_s3_xml_list(b.ptr, b.len, &l), "1000");
	assert_int_equal(l.n, 0);
	dd_buf_release(&b);
}

/* ---- hostile documents, through every parser ---- */

typedef int (*parse_fn)(const char *body, size_t len);

static int
p_list(const char *b, size_t n)
{
	struct dd_s3_list l;
	int rc = dd_s3_xml_list(b, n, &l);

	dd_s3_list_free(&l);
	return rc;
}

static int
p_error(const char *b, size_t n)
{
	struct dd_s3_error e;

	return dd_s3_xml_error(b, n, &e);
}

static int
p_complete(const char *b, size_t n)
{
	struct dd_s3_error e;

	return dd_s3_xml_complete(b, n, &e);
}

static int
p_upload_id(const char *b, size_t n)
{
	char *id = NULL;
	int rc = dd_s3_xml_upload_id(b, n, &id);

	free(id);
	return rc;
}

static int
p_parts(const char *b, size_t n)
{
	struct dd_s3_parts p;
	int rc = dd_s3_xml_parts(b, n, &p);

	dd_s3_parts_free(&p);
	return rc;
}

static int
p_uploads(const char *b, size_t n)
{
	struct dd_s3_uploads u;
	int rc = dd_s3_xml_uploads(b, n, &u);

	dd_s3_uploads_free(&u);
	return rc;
}

static int
p_delete(const char *b, size_t n)
{
	struct dd_s3_delete_failure *f = NULL;
	size_t k = 0;
	int rc = dd_s3_xml_delete_result(b, n, &f, &k);

	dd_s3_delete_failures_free(f, k);
	return rc;
}

static const struct {
	const char *root;
	parse_fn fn;
} parsers[] = {
	{ "ListBucketResult", p_list },
	{ "Error", p_error },
	{ "CompleteMultipartUploadResult", p_complete },
	{ "InitiateMultipartUploadResult", p_upload_id },
	{ "ListPartsResult", p_parts },
	{ "ListMultipartUploadsResult", p_uploads },
	{ "DeleteResult", p_delete },
};

/* Each hostile body, wrapped in each parser's own root element, is refused. */
static void
every_parser_refuses(const char *inner_fmt, const char *mentions)
{
	for (size_t i = 0; i < sizeof(parsers) / sizeof(parsers[0]); i++) {
		struct dd_buf b = DD_BUF_INIT;
		dd_buf_printf(&b, inner_fmt, parsers[i].root, parsers[i].root);
		dd_error_clear();
		if (parsers[i].fn(b.ptr, b.len) != -1)
			fail_msg("%s accepted: %.200s", parsers[i].root, b.ptr);
		refused(-1, mentions);
		dd_buf_release(&b);
	}
}

static void
hostile_documents_are_refused_by_every_parser(void **state)
{
	struct dd_buf big = DD_BUF_INIT, deep = DD_BUF_INIT;

	every_parser_refuses("<%s><Key>unterminated", "well-formed");
	every_parser_refuses("<%s></%sx>", "well-formed");
	every_parser_refuses("<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]>"
			     "<%s>&lol2;</%s>",
			     "DOCTYPE");
	every_parser_refuses("<!DOCTYPE x SYSTEM \"file:///etc/passwd\"><%s></%s>", "DOCTYPE");
	every_parser_refuses("<%s>&undefined;</%s>", "well-formed");
	every_parser_refuses("<%s/><%s/>", "well-formed");
	every_parser_refuses("", "empty");
	every_parser_refuses("<Wrong><%s/></Wrong>", "not a");

	/* One element with 5000 bytes of text. */
	dd_buf_puts(&big, "<%s><Unknown>");
	for (int i = 0; i < 5000; i++)
		dd_buf_putc(&big, 'x');
	dd_buf_puts(&big, "</Unknown></%s>");
	every_parser_refuses(big.ptr, "4096");

	/* 40 levels of nesting. */
	dd_buf_puts(&deep, "<%s>");
	for (int i = 0; i < 40; i++)
		dd_buf_puts(&deep, "<a>");
	for (int i = 0; i < 40; i++)
		dd_buf_puts(&deep, "</a>");
	dd_buf_puts(&deep, "</%s>");
	every_parser_refuses(deep.ptr, "deeper");
	dd_buf_release(&big);
	dd_buf_release(&deep);
}

static void
oversized_body_is_refused_before_parsing(void **state)
{
	size_t n = (8u << 20) + 1;
	char *body = malloc(n);
	struct dd_s3_list l;

	assert_non_null(body);
	memset(body, ' ', n);
	memcpy(body, "<ListBucketResult>", 18);
	refused(dd_s3_xml_list(body, n, &l), "MiB");
	free(body);
}

/* ---- <Error> and CompleteMultipartUpload ---- */

static void
error_document_with_empty_message(void **state)
{
	static const char rgw[] = XMLDECL "<Error><Code>SignatureDoesNotMatch</Code><Message></Message>"
				  "<BucketName>dnadata</BucketName><RequestId>tx00000a</RequestId>"
				  "<HostId>1234-default-default</HostId></Error>";
	static const char aws[] = XMLDECL "<Error><Code>NoSuchKey</Code><Message>The resource you requested does "
				  "not exist</Message><Resource>/mybucket/myfoto.jpg</Resource>"
				  "<RequestId>4442587FB7D0A2F9</RequestId></Error>";
	static const char bare[] = "<Error/>";
	static const char other[] = "<ListBucketResult/>";
	struct dd_s3_error e;

	assert_int_equal(dd_s3_xml_error(rgw, sizeof(rgw) - 1, &e), 0);
	assert_string_equal(e.code, "SignatureDoesNotMatch");
	assert_string_equal(e.message, "");
	assert_int_equal(dd_s3_xml_error(aws, sizeof(aws) - 1, &e), 0);
	assert_string_equal(e.code, "NoSuchKey");
	assert_string_equal(e.message, "The resource you requested does not exist");
	assert_int_equal(dd_s3_xml_error(bare, sizeof(bare) - 1, &e), 0);
	assert_string_equal(e.code, "");
	refused(dd_s3_xml_error(other, sizeof(other) - 1, &e), "not a");
	assert_string_equal(e.code, "");
	refused(dd_s3_xml_error("<html>502 Bad Gateway", 21, &e), NULL);
}

static void
error_fields_are_cut_to_size_on_a_character_boundary(void **state)
{
	struct dd_buf b = DD_BUF_INIT;
	struct dd_s3_error e;

	dd_buf_puts(&b, "<Error><Code>");
	for (int i = 0; i < 100; i++)
		dd_buf_putc(&b, 'C');
	dd_buf_puts(&b, "</Code><Message>xx");
	for (int i = 0; i < 200; i++)
		dd_buf_puts(&b, "\xc3\xa9"); /* two bytes each: the cut at 255 falls inside one */
	dd_buf_puts(&b, "</Message></Error>");
	assert_int_equal(dd_s3_xml_error(b.ptr, b.len, &e), 0);
	assert_int_equal(strlen(e.code), 63);
	assert_int_equal(strlen(e.message), 254); /* the whole last character, not half of it */
	assert_int_equal((unsigned char)e.message[252], 0xc3);
	assert_int_equal((unsigned char)e.message[253], 0xa9);
	dd_buf_release(&b);
}

/* Server text goes into one-line errors: nothing in it may break the line or drive the terminal. */
static void
server_text_is_made_printable_when_copied(void **state)
{
	static const char err[] = "<Error><Code>Bad&#10;Code&#x7f;</Code><Message>one&#10;two&#13;\xc2\x9b" "31m"
				  "\xc2\x85three\xe2\x80\xa8" "four\xe2\x80\xa9 caf\xc3\xa9 \xc2\xa0ok&#9;</Message></Error>";
	static const char del[] = "<DeleteResult><Error><Key>store/a</Key><Code>Access&#10;Denied</Code></Error>"
				  "</DeleteResult>";
	struct dd_s3_delete_failure *f = NULL;
	struct dd_s3_error e;
	char key[] = "store/a\nerror: forged\x1b[2J\xc2\x9b";
	size_t n = 0;

	(void)state;
	assert_int_equal(dd_s3_xml_error(err, sizeof(err) - 1, &e), 0);
	assert_string_equal(e.code, "Bad?Code?");
	/* C0, C1 and the line separators replaced; other characters (é, a no-break space) kept */
	assert_string_equal(e.message, "one?two??31m?three?four? caf\xc3\xa9 \xc2\xa0ok?");
	assert_int_equal(dd_s3_xml_delete_result(del, sizeof(del) - 1, &f, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(f[0].code, "Access?Denied");
	dd_s3_delete_failures_free(f, n);
	/* what the client does with a key it shows */
	key[dd_s3_xml_printable(key, strlen(key))] = '\0';
	assert_string_equal(key, "store/a?error: forged?[2J?");
}

static void
complete_tells_success_from_an_error_inside_a_200(void **state)
{
	static const char ok[] =
		XMLDECL "<CompleteMultipartUploadResult " NS "><Location>http://127.0.0.1:7480/b/k</Location>"
		"<Bucket>b</Bucket><Key>k</Key><ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag>"
		"</CompleteMultipartUploadResult>";
	/* AWS keeps the connection alive with whitespace, then answers. */
	static const char err[] = "\n \n \n" XMLDECL "<Error><Code>InternalError</Code><Message>We encountered "
				  "an internal error. Please try again.</Message><RequestId>656c76696e6727732072657175657374</RequestId>"
				  "<HostId>Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtRPfTaOFg==</HostId></Error>";
	struct dd_s3_error e;

	assert_int_equal(dd_s3_xml_complete(ok, sizeof(ok) - 1, &e), 0);
	assert_string_equal(e.code, "");
	assert_int_equal(dd_s3_xml_complete(err, sizeof(err) - 1, &e), 1);
	assert_string_equal(e.code, "InternalError");
	assert_string_equal(e.message, "We encountered an internal error. Please try again.");
	refused(dd_s3_xml_complete("   ", 3, &e), "empty");
	refused(dd_s3_xml_complete(ok, sizeof(ok) - 20, &e), "well-formed");
}

/* ---- multipart ---- */

static void
upload_id_is_read_and_required(void **state)
{
	static const char ok[] = XMLDECL "<InitiateMultipartUploadResult " NS "><Bucket>b</Bucket><Key>k</Key>"
				 "<UploadId>2~iCw_lDY8VoDe3bwXUnUhj</UploadId></InitiateMultipartUploadResult>";
	static const char none[] = "<InitiateMultipartUploadResult><Bucket>b</Bucket></InitiateMultipartUploadResult>";
	static const char twice[] = "<InitiateMultipartUploadResult><UploadId>a</UploadId><UploadId>b</UploadId>"
				    "</InitiateMultipartUploadResult>";
	char *id = NULL;

	assert_int_equal(dd_s3_xml_upload_id(ok, sizeof(ok) - 1, &id), 0);
	assert_string_equal(id, "2~iCw_lDY8VoDe3bwXUnUhj");
	free(id);
	refused(dd_s3_xml_upload_id(none, sizeof(none) - 1, &id), "UploadId");
	assert_null(id);
	refused(dd_s3_xml_upload_id(twice, sizeof(twice) - 1, &id), "UploadId");
	assert_null(id);
}

static void
list_parts_reads_numbers_sizes_and_etags(void **state)
{
	static const char body[] =
		XMLDECL "<ListPartsResult " NS "><Bucket>b</Bucket><Key>k</Key><UploadId>2~x</UploadId>"
		"<StorageClass>STANDARD</StorageClass><PartNumberMarker>0</PartNumberMarker>"
		"<NextPartNumberMarker>2</NextPartNumberMarker><MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>"
		"<Part><LastModified>2026-11-29T16:00:00.000Z</LastModified><PartNumber>1</PartNumber>"
		"<ETag>&quot;b54357faf0632cce46e942fa68356b38&quot;</ETag><Size>16777216</Size></Part>"
		"<Part><PartNumber>2</PartNumber><ETag>\"0c78aef83f66abc1fa1e8477f296d394\"</ETag><Size>5</Size></Part>"
		"</ListPartsResult>";
	struct dd_s3_parts p;

	assert_int_equal(dd_s3_xml_parts(body, sizeof(body) - 1, &p), 0);
	assert_int_equal(p.n, 2);
	assert_true(p.truncated);
	assert_int_equal(p.next_marker, 2);
	assert_int_equal(p.parts[0].number, 1);
	assert_int_equal(p.parts[0].size, 16777216);
	assert_string_equal(p.parts[0].etag, "\"b54357faf0632cce46e942fa68356b38\"");
	assert_int_equal(p.parts[1].number, 2);
	assert_string_equal(p.parts[1].etag, "\"0c78aef83f66abc1fa1e8477f296d394\"");
	dd_s3_parts_free(&p);
	assert_null(p.parts);
}

static void
list_parts_refuses_out_of_range_parts(void **state)
{
	static const char *const bad[] = {
		"<Part><PartNumber>0</PartNumber><ETag>\"e\"</ETag><Size>1</Size></Part>",
		"<Part><PartNumber>10001</PartNumber><ETag>\"e\"</ETag><Size>1</Size></Part>",
		"<Part><PartNumber>x</PartNumber><ETag>\"e\"</ETag><Size>1</Size></Part>",
		"<Part><PartNumber>1</PartNumber><Size>1</Size></Part>",
		"<Part><PartNumber>1</PartNumber><ETag></ETag><Size>1</Size></Part>",
		"<Part><PartNumber>1</PartNumber><ETag>\"e\"</ETag><Size>-5</Size></Part>",
		"<Part><PartNumber>1</PartNumber><ETag>\"0123456789012345678901234567890123456789012345678901234567890123456789012345678\"</ETag>"
		"<Size>1</Size></Part>",
	};
	static const char truncated_no_marker[] = "<ListPartsResult><IsTruncated>true</IsTruncated></ListPartsResult>";
	struct dd_s3_parts p;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dd_buf b = DD_BUF_INIT;
		dd_buf_printf(&b, "<ListPartsResult>%s</ListPartsResult>", bad[i]);
		if (dd_s3_xml_parts(b.ptr, b.len, &p) != -1)
			fail_msg("accepted %s", bad[i]);
		refused(-1, "S3 part listing");
		assert_int_equal(p.n, 0);
		dd_buf_release(&b);
	}
	refused(dd_s3_xml_parts(truncated_no_marker, sizeof(truncated_no_marker) - 1, &p), "NextPartNumberMarker");
}

static void
list_uploads_gives_key_id_and_initiated_of_every_upload(void **state)
{
	static const char body[] =
		XMLDECL "<ListMultipartUploadsResult " NS "><Bucket>b</Bucket><Prefix>store/</Prefix>"
		"<KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>"
		"<NextKeyMarker>store/packs/ab</NextKeyMarker><NextUploadIdMarker>two</NextUploadIdMarker>"
		"<IsTruncated>true</IsTruncated>"
		"<Upload><Key>store/packs/ab</Key><UploadId>one</UploadId><Initiated>2026-11-29T16:00:00.000Z</Initiated>"
		"<Owner><ID>x</ID></Owner><StorageClass>STANDARD</StorageClass></Upload>"
		"<Upload><Key>store/packs/ab</Key><UploadId>two</UploadId></Upload>"
		"</ListMultipartUploadsResult>";
	static const char last[] = "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
				   "<NextKeyMarker></NextKeyMarker></ListMultipartUploadsResult>";
	struct dd_s3_uploads u;

	assert_int_equal(dd_s3_xml_uploads(body, sizeof(body) - 1, &u), 0);
	assert_int_equal(u.n, 2);
	assert_string_equal(u.uploads[0].key, "store/packs/ab");
	assert_string_equal(u.uploads[0].upload_id, "one");
	assert_int_equal(u.uploads[0].initiated, 1795968000); /* 2026-11-29T16:00:00Z */
	assert_string_equal(u.uploads[1].upload_id, "two");
	assert_int_equal(u.uploads[1].initiated, -1); /* none given: unknown, never old */
	assert_true(u.truncated);
	assert_string_equal(u.next_key_marker, "store/packs/ab");
	assert_string_equal(u.next_upload_id_marker, "two");
	dd_s3_uploads_free(&u);

	assert_int_equal(dd_s3_xml_uploads(last, sizeof(last) - 1, &u), 0);
	assert_int_equal(u.n, 0);
	assert_false(u.truncated);
	assert_null(u.next_key_marker);
	dd_s3_uploads_free(&u);
}

static void
list_uploads_refuses_hostile_replies(void **state)
{
	static const struct {
		const char *body, *mentions;
	} bad[] = {
		{ "<ListMultipartUploadsResult><Upload><Key>k</Key></Upload></ListMultipartUploadsResult>", "UploadId" },
		{ "<ListMultipartUploadsResult><Upload><UploadId>i</UploadId></Upload></ListMultipartUploadsResult>",
		  "Key" },
		{ "<ListMultipartUploadsResult><Upload><Key>k</Key><Key>k2</Key><UploadId>i</UploadId></Upload>"
		  "</ListMultipartUploadsResult>", "Key" },
		{ "<ListMultipartUploadsResult><Upload><Key></Key><UploadId>i</UploadId></Upload>"
		  "</ListMultipartUploadsResult>", "Key" },
		{ "<ListMultipartUploadsResult><Upload><Key>k</Key><UploadId>i</UploadId>"
		  "<Initiated>2026-02-30T00:00:00Z</Initiated></Upload></ListMultipartUploadsResult>", "Initiated" },
		{ "<ListMultipartUploadsResult><Upload><Key>k</Key><UploadId>i</UploadId>"
		  "<Initiated>yesterday</Initiated></Upload></ListMultipartUploadsResult>", "Initiated" },
		{ "<ListMultipartUploadsResult><Upload><Key>k</Key><UploadId>i</UploadId>"
		  "<Initiated>2026-01-01T00:00:00Z</Initiated><Initiated>2026-01-01T00:00:00Z</Initiated></Upload>"
		  "</ListMultipartUploadsResult>", "Initiated" },
		{ "<ListMultipartUploadsResult><Upload><Key>k&#0;</Key><UploadId>i</UploadId></Upload>"
		  "</ListMultipartUploadsResult>", NULL },
		{ "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated></ListMultipartUploadsResult>",
		  "NextKeyMarker" },
		{ "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated><NextKeyMarker></NextKeyMarker>"
		  "</ListMultipartUploadsResult>", "NextKeyMarker" },
		{ "<ListMultipartUploadsResult><IsTruncated>yes</IsTruncated></ListMultipartUploadsResult>",
		  "IsTruncated" },
		{ "<ListBucketResult></ListBucketResult>", "ListMultipartUploadsResult" },
	};
	struct dd_buf many = DD_BUF_INIT;
	struct dd_s3_uploads u;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		refused(dd_s3_xml_uploads(bad[i].body, strlen(bad[i].body), &u), bad[i].mentions);
		assert_int_equal(u.n, 0);
		assert_null(u.uploads);
		assert_null(u.next_key_marker);
	}
	dd_buf_puts(&many, "<ListMultipartUploadsResult>");
	for (int i = 0; i < 1001; i++)
		dd_buf_printf(&many, "<Upload><Key>k%d</Key><UploadId>i</UploadId></Upload>", i);
	dd_buf_puts(&many, "</ListMultipartUploadsResult>");
	refused(dd_s3_xml_uploads(many.ptr, many.len, &u), "more than 1000 uploads");
	dd_buf_release(&many);
}

/* ---- multi-object delete ---- */

static void
delete_result_lists_only_failures(void **state)
{
	static const char body[] =
		XMLDECL "<DeleteResult " NS "><Deleted><Key>store/a</Key></Deleted>"
		"<Error><Key>store/b&amp;c</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
		"<Error><Key>store/d</Key><Code>InternalError</Code><Message></Message></Error>"
		"</DeleteResult>";
	static const char quiet_ok[] = XMLDECL "<DeleteResult " NS "/>";
	static const char keyless[] = "<DeleteResult><Error><Code>AccessDenied</Code></Error></DeleteResult>";
	struct dd_s3_delete_failure *f = NULL;
	size_t n = 0;

	assert_int_equal(dd_s3_xml_delete_result(body, sizeof(body) - 1, &f, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(f[0].key, "store/b&c");
	assert_string_equal(f[0].code, "AccessDenied");
	assert_string_equal(f[1].key, "store/d");
	assert_string_equal(f[1].code, "InternalError");
	dd_s3_delete_failures_free(f, n);

	assert_int_equal(dd_s3_xml_delete_result(quiet_ok, sizeof(quiet_ok) - 1, &f, &n), 0);
	assert_int_equal(n, 0);
	dd_s3_delete_failures_free(f, n);
	refused(dd_s3_xml_delete_result(keyless, sizeof(keyless) - 1, &f, &n), "Key");
	assert_int_equal(n, 0);
}

static void
delete_request_escapes_keys_and_round_trips(void **state)
{
	static const char *const keys[] = { "plain", "a&b<c>d\"e'f", "line\r\nbreak\ttab", "caf\xc3\xa9" };
	struct dd_buf b = DD_BUF_INIT, reply = DD_BUF_INIT;
	struct dd_s3_delete_failure *f = NULL;
	size_t n = 0;

	dd_s3_xml_delete_request(&b, keys, 4);
	assert_string_equal(b.ptr, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				   "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>"
				   "<Object><Key>plain</Key></Object>"
				   "<Object><Key>a&amp;b&lt;c&gt;d&quot;e&apos;f</Key></Object>"
				   "<Object><Key>line&#13;&#10;break&#9;tab</Key></Object>"
				   "<Object><Key>caf\xc3\xa9</Key></Object></Delete>");

	/* A server reading those keys back gets exactly ours (here: an answer that echoes them as failures). */
	dd_buf_puts(&reply, "<DeleteResult>");
	for (const char *p = strstr(b.ptr, "<Object>"); p; p = strstr(p + 1, "<Object>")) {
		const char *k = p + strlen("<Object><Key>"), *end = strstr(k, "</Key>");
		dd_buf_puts(&reply, "<Error><Key>");
		dd_buf_put(&reply, k, (size_t)(end - k));
		dd_buf_puts(&reply, "</Key><Code>X</Code></Error>");
	}
	dd_buf_puts(&reply, "</DeleteResult>");
	assert_int_equal(dd_s3_xml_delete_result(reply.ptr, reply.len, &f, &n), 0);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(f[i].key, keys[i]);
	dd_s3_delete_failures_free(f, n);
	dd_buf_release(&b);
	dd_buf_release(&reply);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(list_reads_a_truncated_page_with_escaped_keys),
		cmocka_unit_test(list_reads_a_last_page_and_an_empty_one),
		cmocka_unit_test(list_refuses_bad_fields),
		cmocka_unit_test(list_without_last_modified_has_an_unknown_time),
		cmocka_unit_test(list_accepts_time_offsets_and_fractions),
		cmocka_unit_test(list_truncated_without_token_is_refused),
		cmocka_unit_test(list_refuses_more_than_1000_entries),
		cmocka_unit_test(hostile_documents_are_refused_by_every_parser),
		cmocka_unit_test(oversized_body_is_refused_before_parsing),
		cmocka_unit_test(error_document_with_empty_message),
		cmocka_unit_test(error_fields_are_cut_to_size_on_a_character_boundary),
		cmocka_unit_test(server_text_is_made_printable_when_copied),
		cmocka_unit_test(complete_tells_success_from_an_error_inside_a_200),
		cmocka_unit_test(upload_id_is_read_and_required),
		cmocka_unit_test(list_parts_reads_numbers_sizes_and_etags),
		cmocka_unit_test(list_parts_refuses_out_of_range_parts),
		cmocka_unit_test(list_uploads_gives_key_id_and_initiated_of_every_upload),
		cmocka_unit_test(list_uploads_refuses_hostile_replies),
		cmocka_unit_test(delete_result_lists_only_failures),
		cmocka_unit_test(delete_request_escapes_keys_and_round_trips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
