/*
 * s3/xml.c: S3's XML replies (see xml.h), read with expat.
 *
 * One small driver (struct xp) runs expat over the whole body and calls a
 * parser-specific function at the start and end of every element with the
 * element's path from the root ("ListBucketResult/Contents/Key") and, at
 * the end, its text. The driver enforces the bounds that hold for every
 * reply, whatever the server sends:
 *
 *   - the body is at most MAX_BODY bytes and must be one well-formed
 *     document whose root is the element the caller expects;
 *   - no DOCTYPE and no entity declarations at all (expat then knows only
 *     the five predefined entities: nothing can expand);
 *   - at most MAX_DEPTH levels of nesting, MAX_TEXT bytes of text in one
 *     element;
 *
 * and each parser adds its own: at most MAX_ENTRIES entries a page (S3's
 * own limit), keys of at most MAX_KEY bytes, numbers in range, no field
 * given twice in one entry. A body that breaks any of them is refused
 * whole, never partly used. Unknown elements are ignored (servers add
 * fields). Messages name what was wrong, never quote the body.
 *
 * Leading whitespace before the document is skipped: S3 sends whitespace
 * while it completes a multipart upload to keep the connection open.
 */
#include "s3/xml.h"
#include "util/buf.h"
#include "util/err.h"

#include <expat.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BODY (8u << 20)
#define MAX_DEPTH 16
#define MAX_NAME 64 /* element names kept in the path; longer ones match nothing we read */
#define MAX_TEXT 4096
#define MAX_KEY 1024
#define MAX_ENTRIES 1000
#define MAX_PART 10000

struct xp;
typedef int (*xp_fn)(struct xp *x, const char *path);

struct xp {
	XML_Parser p;
	const char *what;  /* "S3 listing", for messages */
	const char *const *roots; /* allowed root elements, NULL-terminated */
	int root;          /* index into roots of the one found */
	struct dd_buf path; /* "Root/Child/Leaf" */
	size_t marks[MAX_DEPTH + 1];
	int depth;
	struct dd_buf text;
	int failed;        /* our own refusal (dd_error set), as opposed to expat's */
	xp_fn start, end;
	void *ctx;
};

/* Refuse the document from inside a handler ("<what>: <why>"); returns -1. */
static int __attribute__((format(printf, 2, 3)))
xp_fail(struct xp *x, const char *fmt, ...)
{
	struct dd_buf why = DD_BUF_INIT;
	va_list ap;

	if (!x->failed) {
		va_start(ap, fmt);
		dd_buf_vprintf(&why, fmt, ap);
		va_end(ap);
		dd_error("%s: %s", x->what, why.ptr);
		dd_buf_release(&why);
	}
	x->failed = 1;
	XML_StopParser(x->p, XML_FALSE);
	return -1;
}

static void XMLCALL
on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct xp *x = ud;
	size_t n = strlen(name);

	if (x->failed)
		return;
	if (x->depth == 0) {
		for (x->root = 0; x->roots[x->root]; x->root++)
			if (!strcmp(name, x->roots[x->root]))
				break;
		if (!x->roots[x->root]) {
			xp_fail(x, "the reply is not a %s document", x->roots[0]);
			return;
		}
	}
	if (x->depth == MAX_DEPTH) {
		xp_fail(x, "the reply nests elements deeper than %d levels", MAX_DEPTH);
		return;
	}
	x->marks[x->depth++] = x->path.len;
	if (x->path.len)
		dd_buf_putc(&x->path, '/');
	dd_buf_put(&x->path, name, n < MAX_NAME ? n : MAX_NAME);
	dd_buf_clear(&x->text);
	if (x->start && x->start(x, x->path.ptr) < 0)
		xp_fail(x, "too many %s elements", name);
}

static void XMLCALL
on_end(void *ud, const XML_Char *name)
{
	struct xp *x = ud;

	if (x->failed)
		return;
	if (x->end && x->end(x, x->path.ptr) < 0) {
		xp_fail(x, "%s is missing, repeated or invalid", x->path.ptr);
		return;
	}
	dd_buf_truncate(&x->path, x->marks[--x->depth]);
	dd_buf_clear(&x->text);
}

static void XMLCALL
on_text(void *ud, const XML_Char *s, int len)
{
	struct xp *x = ud;

	if (x->failed)
		return;
	if (x->text.len + (size_t)len > MAX_TEXT) {
		xp_fail(x, "an element of the reply holds more than %d bytes of text", MAX_TEXT);
		return;
	}
	dd_buf_put(&x->text, s, (size_t)len);
}

static void XMLCALL
on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid, int internal)
{
	xp_fail(ud, "the reply has a DOCTYPE declaration");
}

static void XMLCALL
on_entity(void *ud, const XML_Char *name, int param, const XML_Char *value, int len, const XML_Char *base,
	  const XML_Char *sysid, const XML_Char *pubid, const XML_Char *notation)
{
	xp_fail(ud, "the reply declares an entity");
}

/*
 * Run the parser over body[0..len). Returns 0, or -1 with the error set
 * (ours, or expat's "not well-formed" with its line).
 */
static int
xp_run(struct xp *x, const char *body, size_t len)
{
	int rc = -1;

	while (len && (*body == ' ' || *body == '\t' || *body == '\r' || *body == '\n'))
		body++, len--;
	if (len == 0)
		return dd_error("%s: the reply is empty", x->what);
	if (len > MAX_BODY)
		return dd_error("%s: the reply is larger than %u MiB", x->what, MAX_BODY >> 20);
	x->p = XML_ParserCreate(NULL);
	if (!x->p)
		return dd_error("%s: out of memory", x->what);
	XML_SetUserData(x->p, x);
	XML_SetElementHandler(x->p, on_start, on_end);
	XML_SetCharacterDataHandler(x->p, on_text);
	XML_SetStartDoctypeDeclHandler(x->p, on_doctype);
	XML_SetEntityDeclHandler(x->p, on_entity);
	XML_SetParamEntityParsing(x->p, XML_PARAM_ENTITY_PARSING_NEVER);
	if (XML_Parse(x->p, body, (int)len, XML_TRUE) != XML_STATUS_OK || x->failed) {
		if (!x->failed)
			dd_error("%s: the reply is not well-formed XML (%s at line %lu)", x->what,
				 XML_ErrorString(XML_GetErrorCode(x->p)), (unsigned long)XML_GetCurrentLineNumber(x->p));
		goto out;
	}
	rc = 0;
out:
	XML_ParserFree(x->p);
	x->p = NULL;
	dd_buf_release(&x->path);
	dd_buf_release(&x->text);
	return rc;
}

/* ---- field helpers, used from the parsers' end handlers ---- */

/* Exact decimal digits, no sign, no spaces, at most `max`. */
static int
parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

static int
parse_bool(const char *s, int *out)
{
	if (!strcmp(s, "true"))
		*out = 1;
	else if (!strcmp(s, "false"))
		*out = 0;
	else
		return -1;
	return 0;
}

/* `n` digits at s as a number; -1 if any is not a digit. */
static int
digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* RFC 3339: 2009-10-12T17:50:30[.000](Z|+hh:mm|-hh:mm) to seconds since the epoch. */
static int
parse_time(const char *s, int64_t *out)
{
	struct tm tm = { 0 }, want;
	int off = 0;
	time_t t;

	if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
	    s[16] != ':')
		return -1;
	tm.tm_year = digits(s, 4) - 1900, tm.tm_mon = digits(s + 5, 2) - 1, tm.tm_mday = digits(s + 8, 2);
	tm.tm_hour = digits(s + 11, 2), tm.tm_min = digits(s + 14, 2), tm.tm_sec = digits(s + 17, 2);
	if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 60)
		return -1;
	s += 19;
	if (*s == '.') {
		int n = 0;
		while (s[1 + n] >= '0' && s[1 + n] <= '9' && n < 10)
			n++;
		if (n == 0 || n == 10)
			return -1;
		s += 1 + n;
	}
	if ((*s == 'Z' || *s == 'z') && s[1] == '\0') {
		off = 0;
	} else if ((*s == '+' || *s == '-') && strlen(s) == 6 && s[3] == ':') {
		int h = digits(s + 1, 2), m = digits(s + 4, 2);
		if (h < 0 || h > 23 || m < 0 || m > 59)
			return -1;
		off = (h * 60 + m) * 60 * (*s == '-' ? -1 : 1);
	} else {
		return -1;
	}
	want = tm;
	t = timegm(&tm);
	/* timegm() normalises 2009-02-31 to March 3rd: refuse dates that do not exist. */
	if (tm.tm_mday != want.tm_mday || tm.tm_mon != want.tm_mon || tm.tm_year != want.tm_year)
		return -1;
	*out = (int64_t)t - off;
	return 0;
}

/*
 * Server text ends up in our one-line errors: replace what could break the
 * line or drive a terminal -- C0 controls (a "&#10;" decodes to a newline),
 * DEL, C1 controls (U+0080-U+009F, C2 80-C2 9F in UTF-8) and the Unicode line
 * and paragraph separators (U+2028, U+2029) -- with '?', in place. The text
 * is UTF-8 (expat checked it). Returns the new length.
 */
size_t
dd_s3_xml_printable(char *s, size_t n)
{
	size_t i = 0, o = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t skip = 0;
		if (c < 0x20 || c == 0x7f)
			skip = 1;
		else if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f)
			skip = 2;
		else if (c == 0xe2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
			 ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9))
			skip = 3;
		if (skip) {
			s[o++] = '?';
			i += skip;
		} else {
			s[o++] = s[i++];
		}
	}
	return o;
}

/* Copy the element text into a fixed buffer, cut at a UTF-8 character boundary, made printable. */
static void
copy_text(char *dst, size_t size, const struct dd_buf *text)
{
	size_t n = text->len < size - 1 ? text->len : size - 1;

	while (n > 0 && n < text->len && ((unsigned char)text->ptr[n] & 0xc0) == 0x80)
		n--;
	if (n) /* an empty element has no buffer: memcpy's source must not be NULL even for 0 bytes */
		memcpy(dst, text->ptr, n);
	dst[dd_s3_xml_printable(dst, n)] = '\0';
}

/* Mark field `bit` of an entry seen; -1 when it was already. */
static int
once(unsigned *seen, unsigned bit)
{
	if (*seen & bit)
		return -1;
	*seen |= bit;
	return 0;
}

/* ---- <Error> ---- */

struct err_ctx {
	struct dd_s3_error *e;
	unsigned seen;
};

static int
error_end(struct xp *x, const char *path)
{
	struct err_ctx *c = x->ctx;
	const char *leaf = strchr(path, '/');

	/* Only the root Error's own Code and Message. */
	if (!leaf || strchr(leaf + 1, '/') || strncmp(path, "Error/", 6))
		return 0;
	if (!strcmp(leaf + 1, "Code")) {
		if (once(&c->seen, 1) < 0)
			return -1;
		copy_text(c->e->code, sizeof(c->e->code), &x->text);
	} else if (!strcmp(leaf + 1, "Message")) {
		if (once(&c->seen, 2) < 0)
			return -1;
		copy_text(c->e->message, sizeof(c->e->message), &x->text);
	}
	return 0;
}

int
dd_s3_xml_error(const char *body, size_t len, struct dd_s3_error *e)
{
	static const char *const roots[] = { "Error", NULL };
	struct err_ctx c = { e, 0 };
	struct xp x = { .what = "S3 error reply", .roots = roots, .end = error_end, .ctx = &c };

	memset(e, 0, sizeof(*e));
	if (xp_run(&x, body, len) < 0) {
		memset(e, 0, sizeof(*e));
		return -1;
	}
	return 0;
}

/* ---- CompleteMultipartUpload ---- */

int
dd_s3_xml_complete(const char *body, size_t len, struct dd_s3_error *e)
{
	static const char *const roots[] = { "CompleteMultipartUploadResult", "Error", NULL };
	struct err_ctx c = { e, 0 };
	struct xp x = { .what = "S3 multipart completion", .roots = roots, .end = error_end, .ctx = &c };

	memset(e, 0, sizeof(*e));
	if (xp_run(&x, body, len) < 0) {
		memset(e, 0, sizeof(*e));
		return -1;
	}
	return x.root == 1;
}

/* ---- ListObjectsV2 ---- */

struct list_ctx {
	struct dd_s3_list *out;
	struct dd_s3_object cur;
	unsigned seen, top;
};

static int
list_start(struct xp *x, const char *path)
{
	struct list_ctx *c = x->ctx;

	if (strcmp(path, "ListBucketResult/Contents"))
		return 0;
	if (c->out->n == MAX_ENTRIES)
		return xp_fail(x, "the reply lists more than %d objects", MAX_ENTRIES);
	memset(&c->cur, 0, sizeof(c->cur));
	c->seen = 0;
	return 0;
}

static int
list_object_field(struct xp *x, struct list_ctx *c, const char *leaf)
{
	if (!strcmp(leaf, "Key")) {
		if (x->text.len == 0 || x->text.len > MAX_KEY || once(&c->seen, 1) < 0)
			return -1;
		c->cur.key = dd_strndup(x->text.ptr, x->text.len);
	} else if (!strcmp(leaf, "Size")) {
		if (once(&c->seen, 2) < 0 || parse_u64(dd_buf_cstr(&x->text), UINT64_MAX, &c->cur.size) < 0)
			return -1;
	} else if (!strcmp(leaf, "LastModified")) {
		if (once(&c->seen, 4) < 0 || parse_time(dd_buf_cstr(&x->text), &c->cur.mtime) < 0)
			return -1;
	}
	return 0;
}

static int
list_end(struct xp *x, const char *path)
{
	struct list_ctx *c = x->ctx;
	struct dd_s3_list *l = c->out;

	if (!strncmp(path, "ListBucketResult/Contents/", 26) && !strchr(path + 26, '/'))
		return list_object_field(x, c, path + 26);
	if (!strcmp(path, "ListBucketResult/Contents")) {
		if ((c->seen & 3) != 3)
			return xp_fail(x, "an object has no Key or no Size");
		if (!(c->seen & 4))
			c->cur.mtime = -1; /* unknown, not 1970: the store's gc must not take it for old */
		l->objects = dd_realloc(l->objects, (l->n + 1) * sizeof(*l->objects));
		l->objects[l->n++] = c->cur;
		memset(&c->cur, 0, sizeof(c->cur));
	} else if (!strcmp(path, "ListBucketResult/IsTruncated")) {
		if (once(&c->top, 1) < 0 || parse_bool(dd_buf_cstr(&x->text), &l->truncated) < 0)
			return -1;
	} else if (!strcmp(path, "ListBucketResult/NextContinuationToken")) {
		if (once(&c->top, 2) < 0 || x->text.len == 0 || x->text.len > MAX_KEY)
			return -1;
		l->next_token = dd_strndup(x->text.ptr, x->text.len);
	}
	return 0;
}

int
dd_s3_xml_list(const char *body, size_t len, struct dd_s3_list *out)
{
	static const char *const roots[] = { "ListBucketResult", NULL };
	struct list_ctx c = { .out = out };
	struct xp x = { .what = "S3 listing", .roots = roots, .start = list_start, .end = list_end, .ctx = &c };

	memset(out, 0, sizeof(*out));
	if (xp_run(&x, body, len) < 0)
		goto fail;
	if (out->truncated && !out->next_token) {
		dd_error("S3 listing: the reply is truncated but has no NextContinuationToken");
		goto fail;
	}
	return 0;
fail:
	free(c.cur.key);
	dd_s3_list_free(out);
	return -1;
}

void
dd_s3_list_free(struct dd_s3_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->objects[i].key);
	free(l->objects);
	free(l->next_token);
	memset(l, 0, sizeof(*l));
}

/* ---- InitiateMultipartUpload ---- */

static int
upload_id_end(struct xp *x, const char *path)
{
	char **id = x->ctx;

	if (strcmp(path, "InitiateMultipartUploadResult/UploadId"))
		return 0;
	if (*id || x->text.len == 0 || x->text.len > MAX_KEY)
		return -1;
	*id = dd_strndup(x->text.ptr, x->text.len);
	return 0;
}

int
dd_s3_xml_upload_id(const char *body, size_t len, char **upload_id)
{
	static const char *const roots[] = { "InitiateMultipartUploadResult", NULL };
	struct xp x = { .what = "S3 multipart start", .roots = roots, .end = upload_id_end, .ctx = upload_id };

	*upload_id = NULL;
	if (xp_run(&x, body, len) < 0)
		goto fail;
	if (!*upload_id) {
		dd_error("S3 multipart start: the reply has no UploadId");
		goto fail;
	}
	return 0;
fail:
	free(*upload_id);
	*upload_id = NULL;
	return -1;
}

/* ---- ListParts ---- */

struct parts_ctx {
	struct dd_s3_parts *out;
	struct dd_s3_part cur;
	unsigned seen, top;
};

static int
parts_start(struct xp *x, const char *path)
{
	struct parts_ctx *c = x->ctx;

	if (strcmp(path, "ListPartsResult/Part"))
		return 0;
	if (c->out->n == MAX_ENTRIES)
		return xp_fail(x, "the reply lists more than %d parts", MAX_ENTRIES);
	memset(&c->cur, 0, sizeof(c->cur));
	c->seen = 0;
	return 0;
}

static int
part_field(struct xp *x, struct parts_ctx *c, const char *leaf)
{
	uint64_t v;

	if (!strcmp(leaf, "PartNumber")) {
		if (once(&c->seen, 1) < 0 || parse_u64(dd_buf_cstr(&x->text), MAX_PART, &v) < 0 || v == 0)
			return -1;
		c->cur.number = (int)v;
	} else if (!strcmp(leaf, "Size")) {
		if (once(&c->seen, 2) < 0 || parse_u64(dd_buf_cstr(&x->text), UINT64_MAX, &c->cur.size) < 0)
			return -1;
	} else if (!strcmp(leaf, "ETag")) {
		if (once(&c->seen, 4) < 0 || x->text.len == 0 || x->text.len >= sizeof(c->cur.etag) ||
		    memchr(x->text.ptr, '\0', x->text.len))
			return -1;
		memcpy(c->cur.etag, x->text.ptr, x->text.len + 1);
	}
	return 0;
}

static int
parts_end(struct xp *x, const char *path)
{
	struct parts_ctx *c = x->ctx;
	struct dd_s3_parts *p = c->out;
	uint64_t v;

	if (!strncmp(path, "ListPartsResult/Part/", 21) && !strchr(path + 21, '/'))
		return part_field(x, c, path + 21);
	if (!strcmp(path, "ListPartsResult/Part")) {
		if (c->seen != 7)
			return xp_fail(x, "a part has no PartNumber, Size or ETag");
		p->parts = dd_realloc(p->parts, (p->n + 1) * sizeof(*p->parts));
		p->parts[p->n++] = c->cur;
	} else if (!strcmp(path, "ListPartsResult/IsTruncated")) {
		if (once(&c->top, 1) < 0 || parse_bool(dd_buf_cstr(&x->text), &p->truncated) < 0)
			return -1;
	} else if (!strcmp(path, "ListPartsResult/NextPartNumberMarker")) {
		if (once(&c->top, 2) < 0 || parse_u64(dd_buf_cstr(&x->text), MAX_PART, &v) < 0)
			return -1;
		p->next_marker = (int)v;
	}
	return 0;
}

int
dd_s3_xml_parts(const char *body, size_t len, struct dd_s3_parts *out)
{
	static const char *const roots[] = { "ListPartsResult", NULL };
	struct parts_ctx c = { .out = out };
	struct xp x = { .what = "S3 part listing", .roots = roots, .start = parts_start, .end = parts_end, .ctx = &c };

	memset(out, 0, sizeof(*out));
	if (xp_run(&x, body, len) < 0)
		goto fail;
	if (out->truncated && !(c.top & 2)) {
		dd_error("S3 part listing: the reply is truncated but has no NextPartNumberMarker");
		goto fail;
	}
	return 0;
fail:
	dd_s3_parts_free(out);
	return -1;
}

void
dd_s3_parts_free(struct dd_s3_parts *p)
{
	free(p->parts);
	memset(p, 0, sizeof(*p));
}

/* ---- ListMultipartUploads ---- */

struct uploads_ctx {
	struct dd_s3_uploads *out;
	struct dd_s3_upload cur;
	unsigned seen, top;
};

static int
uploads_start(struct xp *x, const char *path)
{
	struct uploads_ctx *c = x->ctx;

	if (strcmp(path, "ListMultipartUploadsResult/Upload"))
		return 0;
	if (c->out->n == MAX_ENTRIES)
		return xp_fail(x, "the reply lists more than %d uploads", MAX_ENTRIES);
	free(c->cur.key);
	free(c->cur.upload_id);
	memset(&c->cur, 0, sizeof(c->cur));
	c->seen = 0;
	return 0;
}

/* A key or an upload id: 1..MAX_KEY bytes, no NUL (it is used as a C string). */
static int
take_name(struct xp *x, char **out)
{
	if (x->text.len == 0 || x->text.len > MAX_KEY || memchr(x->text.ptr, '\0', x->text.len))
		return -1;
	*out = dd_strndup(x->text.ptr, x->text.len);
	return 0;
}

static int
upload_field(struct xp *x, struct uploads_ctx *c, const char *leaf)
{
	if (!strcmp(leaf, "Key")) {
		if (once(&c->seen, 1) < 0 || take_name(x, &c->cur.key) < 0)
			return -1;
	} else if (!strcmp(leaf, "UploadId")) {
		if (once(&c->seen, 2) < 0 || take_name(x, &c->cur.upload_id) < 0)
			return -1;
	} else if (!strcmp(leaf, "Initiated")) {
		if (once(&c->seen, 4) < 0 || parse_time(dd_buf_cstr(&x->text), &c->cur.initiated) < 0)
			return -1;
	}
	return 0;
}

static int
uploads_end(struct xp *x, const char *path)
{
	struct uploads_ctx *c = x->ctx;
	struct dd_s3_uploads *u = c->out;

	if (!strncmp(path, "ListMultipartUploadsResult/Upload/", 34) && !strchr(path + 34, '/'))
		return upload_field(x, c, path + 34);
	if (!strcmp(path, "ListMultipartUploadsResult/Upload")) {
		if ((c->seen & 3) != 3)
			return xp_fail(x, "an upload has no Key or no UploadId");
		if (!(c->seen & 4))
			c->cur.initiated = -1; /* unknown, not 1970: gc must not take it for old */
		u->uploads = dd_realloc(u->uploads, (u->n + 1) * sizeof(*u->uploads));
		u->uploads[u->n++] = c->cur;
		memset(&c->cur, 0, sizeof(c->cur));
	} else if (!strcmp(path, "ListMultipartUploadsResult/IsTruncated")) {
		if (once(&c->top, 1) < 0 || parse_bool(dd_buf_cstr(&x->text), &u->truncated) < 0)
			return -1;
	} else if (!strcmp(path, "ListMultipartUploadsResult/NextKeyMarker")) {
		if (once(&c->top, 2) < 0 || (x->text.len && take_name(x, &u->next_key_marker) < 0))
			return -1;
	} else if (!strcmp(path, "ListMultipartUploadsResult/NextUploadIdMarker")) {
		if (once(&c->top, 4) < 0 || (x->text.len && take_name(x, &u->next_upload_id_marker) < 0))
			return -1;
	}
	return 0;
}

int
dd_s3_xml_uploads(const char *body, size_t len, struct dd_s3_uploads *out)
{
	static const char *const roots[] = { "ListMultipartUploadsResult", NULL };
	struct uploads_ctx c = { .out = out };
	struct xp x = { .what = "S3 upload listing", .roots = roots, .start = uploads_start, .end = uploads_end,
			.ctx = &c };

	memset(out, 0, sizeof(*out));
	if (xp_run(&x, body, len) < 0)
		goto fail;
	if (out->truncated && !out->next_key_marker) {
		dd_error("S3 upload listing: the reply is truncated but has no NextKeyMarker");
		goto fail;
	}
	return 0;
fail:
	free(c.cur.key);
	free(c.cur.upload_id);
	dd_s3_uploads_free(out);
	return -1;
}

void
dd_s3_uploads_free(struct dd_s3_uploads *u)
{
	for (size_t i = 0; i < u->n; i++) {
		free(u->uploads[i].key);
		free(u->uploads[i].upload_id);
	}
	free(u->uploads);
	free(u->next_key_marker);
	free(u->next_upload_id_marker);
	memset(u, 0, sizeof(*u));
}

/* ---- DeleteResult ---- */

struct delete_ctx {
	struct dd_s3_delete_failure *failed, cur;
	size_t n, entries;
	unsigned seen;
};

static int
delete_start(struct xp *x, const char *path)
{
	struct delete_ctx *c = x->ctx;

	if (strcmp(path, "DeleteResult/Error") && strcmp(path, "DeleteResult/Deleted"))
		return 0;
	if (c->entries++ == MAX_ENTRIES)
		return xp_fail(x, "the reply reports on more than %d keys", MAX_ENTRIES);
	free(c->cur.key);
	memset(&c->cur, 0, sizeof(c->cur));
	c->seen = 0;
	return 0;
}

static int
delete_end(struct xp *x, const char *path)
{
	struct delete_ctx *c = x->ctx;

	if (!strcmp(path, "DeleteResult/Error/Key")) {
		if (once(&c->seen, 1) < 0 || x->text.len == 0 || x->text.len > MAX_KEY)
			return -1;
		c->cur.key = dd_strndup(x->text.ptr, x->text.len);
	} else if (!strcmp(path, "DeleteResult/Error/Code")) {
		if (once(&c->seen, 2) < 0)
			return -1;
		copy_text(c->cur.code, sizeof(c->cur.code), &x->text);
	} else if (!strcmp(path, "DeleteResult/Error")) {
		if (!(c->seen & 1))
			return xp_fail(x, "a failed delete names no Key");
		c->failed = dd_realloc(c->failed, (c->n + 1) * sizeof(*c->failed));
		c->failed[c->n++] = c->cur;
		memset(&c->cur, 0, sizeof(c->cur));
	}
	return 0;
}

int
dd_s3_xml_delete_result(const char *body, size_t len, struct dd_s3_delete_failure **failed, size_t *n)
{
	static const char *const roots[] = { "DeleteResult", NULL };
	struct delete_ctx c = { 0 };
	struct xp x = { .what = "S3 delete", .roots = roots, .start = delete_start, .end = delete_end, .ctx = &c };
	int rc = xp_run(&x, body, len);

	free(c.cur.key);
	if (rc < 0) {
		dd_s3_delete_failures_free(c.failed, c.n);
		*failed = NULL, *n = 0;
		return -1;
	}
	*failed = c.failed, *n = c.n;
	return 0;
}

void
dd_s3_delete_failures_free(struct dd_s3_delete_failure *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(f[i].key);
	free(f);
}

/* ---- the multi-object delete request ---- */

/*
 * Escape for element content. Besides the five markup characters, CR,
 * LF and TAB go as character references: a parser would otherwise
 * normalise a CR (or CRLF) in a key to LF and delete the wrong object.
 */
static void
put_escaped(struct dd_buf *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': dd_buf_puts(out, "&amp;"); break;
		case '<': dd_buf_puts(out, "&lt;"); break;
		case '>': dd_buf_puts(out, "&gt;"); break;
		case '"': dd_buf_puts(out, "&quot;"); break;
		case '\'': dd_buf_puts(out, "&apos;"); break;
		case '\r': dd_buf_puts(out, "&#13;"); break;
		case '\n': dd_buf_puts(out, "&#10;"); break;
		case '\t': dd_buf_puts(out, "&#9;"); break;
		default: dd_buf_putc(out, *s);
		}
	}
}

void
dd_s3_xml_delete_request(struct dd_buf *out, const char *const *keys, size_t n)
{
	dd_buf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			 "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>");
	for (size_t i = 0; i < n; i++) {
		dd_buf_puts(out, "<Object><Key>");
		put_escaped(out, keys[i]);
		dd_buf_puts(out, "</Key></Object>");
	}
	dd_buf_puts(out, "</Delete>");
}
