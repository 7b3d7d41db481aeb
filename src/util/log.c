/* util/log.c: verbosity-filtered messages and a progress line; see log.h. */
#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
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

static void
emit(const char *prefix, const char *fmt, va_list ap)
{
	pthread_mutex_lock(&lock);
	if (progress_shown) {
		fputs("\r\033[K", stderr);
		progress_shown = 0;
	}
	if (prefix)
		fputs(prefix, stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	fflush(stderr);
	pthread_mutex_unlock(&lock);
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

int
dd_progress_enabled(void)
{
	return verbosity >= DD_NORMAL && isatty(STDERR_FILENO);
}

void
dd_progress(const char *fmt, ...)
{
	va_list ap;

	if (!dd_progress_enabled())
		return;
	pthread_mutex_lock(&lock);
	fputs("\r\033[K", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
	progress_shown = 1;
	pthread_mutex_unlock(&lock);
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
