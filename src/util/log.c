/* util/log.c: verbosity-filtered messages and a progress line; see log.h. */
#include "util/log.h"
#include "util/buf.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static enum dd_verbosity verbosity = DD_NORMAL;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int progress_shown;

void
dd_log_set_verbosity(enum dd_verbosity v)
{
	verbosity = v;
}

enum dd_verbosity
dd_log_verbosity(void)
{
	return verbosity;
}

/*
 * Every line reaches the terminal through here, with control characters and
 * invalid UTF-8 escaped (dd_buf_put_printable): messages quote names from
 * files, the server and the command line, and none of them may drive the
 * terminal.
 */
static void
put_line(const char *prefix, const char *text, int progress)
{
	struct dd_buf b = DD_BUF_INIT;

	if (prefix)
		dd_buf_puts(&b, prefix);
	dd_buf_put_printable(&b, text, strlen(text));
	pthread_mutex_lock(&lock);
	if (progress_shown || progress)
		fputs("\r\033[K", stderr);
	fwrite(b.ptr ? b.ptr : "", 1, b.len, stderr);
	if (!progress)
		fputc('\n', stderr);
	progress_shown = progress;
	fflush(stderr);
	pthread_mutex_unlock(&lock);
	dd_buf_release(&b);
}

static void
emit(const char *prefix, const char *fmt, va_list ap)
{
	struct dd_buf text = DD_BUF_INIT;

	dd_buf_vprintf(&text, fmt, ap);
	put_line(prefix, dd_buf_cstr(&text), 0);
	dd_buf_release(&text);
}

void
dd_out(const char *fmt, ...)
{
	struct dd_buf text = DD_BUF_INIT, b = DD_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	dd_buf_vprintf(&text, fmt, ap);
	va_end(ap);
	/* keep the line structure the caller meant; escape everything else */
	for (const char *p = dd_buf_cstr(&text), *nl; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		dd_buf_put_printable(&b, p, nl ? (size_t)(nl - p) : strlen(p));
		if (!nl)
			break;
		dd_buf_putc(&b, '\n');
	}
	fwrite(b.ptr ? b.ptr : "", 1, b.len, stdout);
	dd_buf_release(&text);
	dd_buf_release(&b);
}

void
dd_log_line(const char *prefix, const char *text)
{
	put_line(prefix, text, 0);
}

void
dd_info(const char *fmt, ...)
{
	va_list ap;

	if (verbosity < DD_NORMAL)
		return;
	va_start(ap, fmt);
	emit(NULL, fmt, ap);
	va_end(ap);
}

void
dd_debug(const char *fmt, ...)
{
	va_list ap;

	if (verbosity < DD_VERBOSE)
		return;
	va_start(ap, fmt);
	emit("debug: ", fmt, ap);
	va_end(ap);
}

void
dd_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit("warning: ", fmt, ap);
	va_end(ap);
}

void
dd_format_bytes(char *buf, size_t len, double b)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;

	while (b >= 1024 && i < 4)
		b /= 1024, i++;
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

int
dd_progress_enabled(void)
{
	return verbosity >= DD_NORMAL && isatty(STDERR_FILENO);
}

void
dd_progress(const char *fmt, ...)
{
	va_list ap;

	struct dd_buf text = DD_BUF_INIT;

	if (!dd_progress_enabled())
		return;
	va_start(ap, fmt);
	dd_buf_vprintf(&text, fmt, ap);
	va_end(ap);
	put_line(NULL, dd_buf_cstr(&text), 1);
	dd_buf_release(&text);
}

void
dd_progress_done(void)
{
	pthread_mutex_lock(&lock);
	if (progress_shown) {
		fputc('\n', stderr);
		progress_shown = 0;
	}
	pthread_mutex_unlock(&lock);
}
