/*
 * store/backend.c: choosing a backend by the store URL's scheme.
 *
 * One table maps each scheme to the constructor of its backend; a URL with
 * any other scheme is refused with the list of the supported ones. A plain
 * absolute path is a file:// store (how the default store is named); s3://
 * is backend-s3.c.
 */
#include "store/backend.h"
#include "util/err.h"

#include <stdlib.h>
#include <string.h>

static int
open_file(struct dd_backend **out, const char *rest, const struct dd_backend_opts *o)
{
	if (rest[0] != '/')
		return dd_error("store URL '%s' must name an absolute path (file:///path/to/store)", o->url);
	return dd_backend_file_open(out, rest, o->create);
}

static int
open_s3(struct dd_backend **out, const char *rest, const struct dd_backend_opts *o)
{
	return dd_backend_s3_open(out, rest, o);
}

static const struct scheme {
	const char *prefix;
	int (*open)(struct dd_backend **out, const char *rest, const struct dd_backend_opts *o);
} schemes[] = {
	{ "file://", open_file },
	{ "s3://", open_s3 },
};
#define NSCHEMES (sizeof(schemes) / sizeof(schemes[0]))

int
dd_backend_open(struct dd_backend **out, const struct dd_backend_opts *o)
{
	struct dd_buf names = DD_BUF_INIT;

	if (o->url[0] == '/')
		return dd_backend_file_open(out, o->url, o->create);
	for (size_t i = 0; i < NSCHEMES; i++) {
		size_t n = strlen(schemes[i].prefix);
		if (!strncmp(o->url, schemes[i].prefix, n))
			return schemes[i].open(out, o->url + n, o);
	}
	for (size_t i = 0; i < NSCHEMES; i++)
		dd_buf_printf(&names, "%s%s", i ? ", " : "", schemes[i].prefix);
	dd_error("unsupported store URL '%s' (supported: %s, or an absolute path)", o->url, names.ptr);
	dd_hint("use file:///absolute/path (or an absolute path)");
	dd_buf_release(&names);
	return -1;
}

int
dd_backend_url_check(const char *url)
{
	if (url[0] == '/')
		return 0;
	if (!strncmp(url, "file://", 7)) {
		if (url[7] != '/')
			return dd_error("store URL '%s' must name an absolute path (file:///path/to/store)", url);
		return 0;
	}
	if (!strncmp(url, "s3://", 5))
		return dd_backend_s3_url_check(url + 5, url);
	/* the open's refusal, with the list of schemes */
	return dd_backend_open(&(struct dd_backend *){ NULL }, &(struct dd_backend_opts){ .url = url });
}

void
dd_backend_free(struct dd_backend *be)
{
	if (be)
		be->ops->free(be);
}

void
dd_backend_entries_free(struct dd_backend_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

void
dd_backend_uploads_free(struct dd_backend_upload *u, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(u[i].name);
		free(u[i].key);
		free(u[i].id);
	}
	free(u);
}
