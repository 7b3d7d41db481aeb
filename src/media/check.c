/*
 * media/check.c: the rules an entry of a media listing must follow
 * (docs/FORMAT.md §6.2). A listing comes from the store, which anyone who
 * can write the store may have crafted: apply checks every entry before it
 * writes anything, so nothing outside the folder can be reached by a name
 * (`..`, an absolute path) or through a symlink the listing itself makes
 * (a child of an entry that is not a listed directory).
 */
#include "media/internal.h"
#include "store/store.h"
#include "util/err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
media_is_tmp_name(const char *name)
{
	size_t n = strlen(MEDIA_TMP_PREFIX);
	const char *h = name + n;

	return !strncmp(name, MEDIA_TMP_PREFIX, n) && strlen(h) == 16 && strspn(h, "0123456789abcdef") == 16;
}

int
media_is_tmp(const char *name, enum media_type t)
{
	return (t == MEDIA_FILE || t == MEDIA_LINK) && media_is_tmp_name(name);
}

int
media_check_path(const char *name)
{
	size_t len = strlen(name);
	const char *p = name;

	if (len == 0 || len > DD_NAME_MAX)
		return dd_error("media entry '%.60s' has an empty or too long name", name);
	if (strchr(name, '\n'))
		return dd_error("media entry '%s' has a newline in its name", name);
	if (name[0] == '/')
		return dd_error("media entry '%s' is an absolute path", name);
	while (*p) {
		const char *s = strchr(p, '/');
		size_t n = s ? (size_t)(s - p) : strlen(p);
		if (n == 0)
			return dd_error("media entry '%s' has an empty path component", name);
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return dd_error("media entry '%s' has a '%.*s' component", name, (int)n, p);
		if (!s)
			break;
		p = s + 1;
		if (!*p)
			return dd_error("media entry '%s' ends with '/'", name);
	}
	return 0;
}

enum media_type
media_attr_type(const struct dd_stream_info *e)
{
	const char *t = dd_kv_get(e->attrs, e->nattrs, "type");

	if (!t)
		return MEDIA_OTHER;
	if (!strcmp(t, "file"))
		return MEDIA_FILE;
	if (!strcmp(t, "dir"))
		return MEDIA_DIR;
	if (!strcmp(t, "symlink"))
		return MEDIA_LINK;
	return MEDIA_OTHER;
}

int
media_attr_mode(const struct dd_stream_info *e, mode_t *mode)
{
	const char *m = dd_kv_get(e->attrs, e->nattrs, "mode");
	unsigned long v = 0;
	size_t n;

	if (!m)
		return dd_error("media entry '%s' has no mode", e->name);
	n = strlen(m);
	if (n == 0 || n > 4 || strspn(m, "01234567") != n || (m[0] == '0' && n > 1)) /* one encoding: %o */
		return dd_error("media entry '%s' has a bad mode '%.20s'", e->name, m);
	for (size_t i = 0; i < n; i++)
		v = v * 8 + (unsigned long)(m[i] - '0');
	if (v > 07777)
		return dd_error("media entry '%s' has a bad mode '%.20s'", e->name, m);
	*mode = (mode_t)v;
	return 0;
}

int
media_attr_mtime(const struct dd_stream_info *e, struct timespec *ts)
{
	const char *m = dd_kv_get(e->attrs, e->nattrs, "mtime");
	const char *dot, *p;
	int64_t s = 0;
	long ns = 0;
	int neg;

	if (!m)
		return dd_error("media entry '%s' has no mtime", e->name);
	neg = m[0] == '-';
	p = m + neg;
	dot = strchr(p, '.');
	if (!dot || dot == p || dot - p > 18 || strspn(p, "0123456789") != (size_t)(dot - p) ||
	    strlen(dot + 1) != 9 || strspn(dot + 1, "0123456789") != 9 || (p[0] == '0' && dot - p > 1))
		return dd_error("media entry '%s' has a bad mtime '%.40s'", e->name, m);
	for (; p < dot; p++)
		s = s * 10 + (*p - '0');
	for (p = dot + 1; *p; p++)
		ns = ns * 10 + (*p - '0');
	if (neg && s == 0 && ns == 0)
		return dd_error("media entry '%s' has a bad mtime '%.40s'", e->name, m);
	if (neg && ns) { /* -1.25 is -2 seconds + 0.75 */
		ts->tv_sec = (time_t)(-s - 1);
		ts->tv_nsec = 1000000000L - ns;
	} else {
		ts->tv_sec = (time_t)(neg ? -s : s);
		ts->tv_nsec = ns;
	}
	return 0;
}

void
media_format_mtime(char out[48], const struct timespec *ts)
{
	int64_t s = (int64_t)ts->tv_sec;
	long ns = ts->tv_nsec;

	/* a negative time is seconds + nanoseconds with seconds < 0: write it as -|t| */
	if (s < 0 && ns) {
		s = -(s + 1);
		ns = 1000000000L - ns;
		snprintf(out, 48, "-%" PRId64 ".%09d", s, (int)ns);
	} else if (s < 0) {
		snprintf(out, 48, "-%" PRId64 ".%09d", -s, (int)ns);
	} else {
		snprintf(out, 48, "%" PRId64 ".%09d", s, (int)ns);
	}
}

/* Attributes: type, mode, mtime always; target for symlinks only; nothing else. */
static int
check_attrs(const struct dd_stream_info *e, enum media_type t)
{
	struct timespec ts;
	mode_t mode;
	const char *target = dd_kv_get(e->attrs, e->nattrs, "target");

	for (size_t i = 0; i < e->nattrs; i++) {
		const char *k = e->attrs[i].key;
		if (strcmp(k, "type") && strcmp(k, "mode") && strcmp(k, "mtime") && strcmp(k, "target"))
			return dd_error("media entry '%s' has an unknown attribute '%.40s'", e->name, k);
	}
	if (media_attr_mode(e, &mode) < 0 || media_attr_mtime(e, &ts) < 0)
		return -1;
	if (mode & (S_ISUID | S_ISGID) && t != MEDIA_DIR)
		return dd_error("media entry '%s' has a setuid or setgid mode (%o)", e->name, (unsigned)mode);
	if (t == MEDIA_LINK) {
		if (!target || !*target || strlen(target) >= 4096)
			return dd_error("media symlink '%s' has an empty or too long target", e->name);
	} else if (target) {
		return dd_error("media entry '%s' has a target but is not a symlink", e->name);
	}
	if (t != MEDIA_FILE && (e->size || e->nchunks))
		return dd_error("media entry '%s' is not a file but has content", e->name);
	return 0;
}

int
media_checker_add(struct media_checker *c, const struct dd_stream_info *e)
{
	enum media_type t = media_attr_type(e);
	const char *slash;
	size_t plen;

	if (media_check_path(e->name) < 0)
		return -1;
	if (c->prev && dd_path_cmp(c->prev, e->name) >= 0)
		return dd_error("media entry '%s' is out of order or repeated (after '%s')", e->name, c->prev);
	if (t == MEDIA_OTHER)
		return dd_error("media entry '%s' has no or an unknown type", e->name);
	slash = strrchr(e->name, '/');
	if (media_is_tmp(slash ? slash + 1 : e->name, t))
		return dd_error("media entry '%s' is named like a temporary file of a restore", e->name);
	if (check_attrs(e, t) < 0)
		return -1;
	/* the directories on the path of this entry stay; the others are done */
	while (c->ndirs) {
		const char *d = c->dirs[c->ndirs - 1];
		size_t dl = strlen(d);
		if (!strncmp(e->name, d, dl) && e->name[dl] == '/')
			break;
		free(c->dirs[--c->ndirs]);
	}
	plen = slash ? (size_t)(slash - e->name) : 0;
	if (plen && (!c->ndirs || strlen(c->dirs[c->ndirs - 1]) != plen))
		return dd_error("media entry '%s' is not inside a listed directory (a path through a symlink?)",
				e->name);
	free(c->prev);
	c->prev = dd_strdup(e->name);
	if (t == MEDIA_DIR) {
		if (c->ndirs == c->cap) {
			c->cap = c->cap ? 2 * c->cap : 16;
			c->dirs = dd_realloc(c->dirs, c->cap * sizeof(*c->dirs));
		}
		c->dirs[c->ndirs++] = dd_strdup(e->name);
	}
	return 0;
}

void
media_checker_release(struct media_checker *c)
{
	while (c->ndirs)
		free(c->dirs[--c->ndirs]);
	free(c->dirs);
	free(c->prev);
	memset(c, 0, sizeof(*c));
}

void
media_info_copy(struct dd_stream_info *dst, const struct dd_stream_info *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->name = dd_strdup(src->name);
	for (size_t i = 0; i < src->nattrs; i++)
		dd_kv_set(&dst->attrs, &dst->nattrs, src->attrs[i].key, src->attrs[i].value);
	dst->size = src->size;
	memcpy(dst->checksum, src->checksum, 32);
	dst->nchunks = src->nchunks;
	dst->chunks = dd_malloc((src->nchunks ? src->nchunks : 1) * sizeof(*src->chunks));
	if (src->nchunks) /* a folder, a link or an empty file has no chunk list */
		memcpy(dst->chunks, src->chunks, src->nchunks * sizeof(*src->chunks));
}
