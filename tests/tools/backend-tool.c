/*
 * tests/tools/backend-tool.c: drives one store backend from the command
 * line, for integration tests of what the CLI does not reach yet (multipart
 * uploads and their resume, ranged reads, paginated lists, batch deletes,
 * many parallel callers) and to measure the memory an operation takes.
 *
 *   backend-tool URL put-file NAME PATH     prints created | exists
 *   backend-tool URL put NAME TEXT          prints created | exists
 *   backend-tool URL get NAME OUT
 *   backend-tool URL get-range NAME OFF LEN OUT
 *   backend-tool URL get-file NAME OUT      streamed into OUT (get_to_fd); prints the size
 *   backend-tool URL exists NAME            prints 1 | 0
 *   backend-tool URL list DIR               prints "name size" lines
 *   backend-tool URL put-many DIR N         N small objects from `transfers` threads
 *   backend-tool URL del NAME
 *   backend-tool URL del-many DIR           everything list(DIR) gives, in batches
 *
 * Settings from the environment: DD_TOOL_PART_SIZE, DD_TOOL_TRANSFERS,
 * DD_TOOL_RETRIES. The last line on stderr is "peak-rss-kib N" (VmHWM).
 * Errors print as the program does ("error: ..." / "hint: ..."); exit 1.
 */
#include "store/backend.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
peak_rss(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmHWM:", 6))
			fprintf(stderr, "peak-rss-kib %ld\n", strtol(line + 6, NULL, 10));
	if (f)
		fclose(f);
}

static int
result(int r)
{
	if (r == DD_EXISTS)
		printf("exists\n");
	else if (r == 0)
		printf("created\n");
	return r < 0 ? -1 : 0;
}

struct many {
	struct dd_backend *be;
	const char *dir;
	int n, next, failed;
	pthread_mutex_t mu;
};

static void *
put_many_thread(void *arg)
{
	struct many *m = arg;

	for (;;) {
		char name[256], body[64];
		int i;
		pthread_mutex_lock(&m->mu);
		i = m->failed || m->next >= m->n ? -1 : m->next++;
		pthread_mutex_unlock(&m->mu);
		if (i < 0)
			return NULL;
		snprintf(name, sizeof(name), "%s/%05d", m->dir, i);
		snprintf(body, sizeof(body), "object %d", i);
		if (m->be->ops->put(m->be, name, body, strlen(body)) < 0) {
			fprintf(stderr, "error: %s\n", dd_error_last());
			pthread_mutex_lock(&m->mu);
			m->failed = 1;
			pthread_mutex_unlock(&m->mu);
		}
	}
}

static int
put_many(struct dd_backend *be, const char *dir, int n, int threads)
{
	struct many m = { .be = be, .dir = dir, .n = n };
	pthread_t t[64];

	pthread_mutex_init(&m.mu, NULL);
	if (threads > 64)
		threads = 64;
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, put_many_thread, &m);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	return m.failed ? -1 : 0;
}

static int
list(struct dd_backend *be, const char *dir, int del)
{
	struct dd_backend_entry *e;
	size_t n;
	int r;

	if (be->ops->list(be, dir, &e, &n) < 0)
		return -1;
	if (del) {
		const char **names = calloc(n + 1, sizeof(*names));
		for (size_t i = 0; i < n; i++)
			names[i] = e[i].name;
		r = be->ops->del_many(be, names, n);
		free(names);
	} else {
		for (size_t i = 0; i < n; i++)
			printf("%s %llu\n", e[i].name, (unsigned long long)e[i].size);
		r = 0;
	}
	dd_backend_entries_free(e, n);
	return r;
}

static int
get(struct dd_backend *be, int argc, char **argv)
{
	struct dd_buf out = DD_BUF_INIT;
	int r;

	if (!strcmp(argv[2], "get-range") && argc == 7)
		r = be->ops->get_range(be, argv[3], strtoull(argv[4], NULL, 10), strtoul(argv[5], NULL, 10), &out);
	else if (!strcmp(argv[2], "get") && argc == 5)
		r = be->ops->get(be, argv[3], &out);
	else
		return dd_error("usage: see tests/tools/backend-tool.c");
	if (r == DD_NOTFOUND)
		r = dd_error("%s: not found", argv[3]);
	if (r == 0)
		r = dd_file_write_atomic(argv[argc - 1], out.ptr ? out.ptr : "", out.len, 0644, 0);
	dd_buf_release(&out);
	return r;
}

static int
get_file(struct dd_backend *be, const char *name, const char *out)
{
	uint64_t size = 0;
	int fd, r;

	if (!be->ops->get_to_fd)
		return dd_error("this backend cannot stream a file");
	fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return dd_error_errno("cannot create %s", out);
	r = be->ops->get_to_fd(be, name, fd, (uint64_t)1 << 30, &size);
	close(fd);
	if (r == DD_NOTFOUND)
		r = dd_error("%s: not found", name);
	if (r == 0)
		printf("%llu\n", (unsigned long long)size);
	return r < 0 ? -1 : 0;
}

static int
run(struct dd_backend *be, int argc, char **argv, int transfers)
{
	const char *cmd = argv[2];

	if (!strcmp(cmd, "put-file") && argc == 5)
		return result(be->ops->put_file(be, argv[3], argv[4]));
	if (!strcmp(cmd, "put") && argc == 5)
		return result(be->ops->put(be, argv[3], argv[4], strlen(argv[4])));
	if (!strcmp(cmd, "exists") && argc == 4) {
		int r = be->ops->exists(be, argv[3]);
		if (r >= 0)
			printf("%d\n", r);
		return r < 0 ? -1 : 0;
	}
	if (!strcmp(cmd, "list") && argc == 4)
		return list(be, argv[3], 0);
	if (!strcmp(cmd, "del-many") && argc == 4)
		return list(be, argv[3], 1);
	if (!strcmp(cmd, "del") && argc == 4)
		return be->ops->del(be, argv[3]);
	if (!strcmp(cmd, "get-file") && argc == 5)
		return get_file(be, argv[3], argv[4]);
	if (!strcmp(cmd, "put-many") && argc == 5)
		return put_many(be, argv[3], atoi(argv[4]), transfers);
	return get(be, argc, argv);
}

static long
env_num(const char *name, long dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 10) : dflt;
}

int
main(int argc, char **argv)
{
	struct dd_backend_opts o = { .path_style = -1, .retries = -1 };
	struct dd_backend *be = NULL;
	int rc = 1;

	if (argc < 4) {
		fprintf(stderr, "usage: backend-tool URL COMMAND ARG... (see tests/tools/backend-tool.c)\n");
		return 2;
	}
	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return 1;
	if (getenv("DD_TOOL_VERBOSE"))
		dd_log_set_verbosity(DD_VERBOSE);
	o.url = argv[1];
	o.part_size = (uint64_t)env_num("DD_TOOL_PART_SIZE", 0);
	o.transfers = (int)env_num("DD_TOOL_TRANSFERS", 0);
	o.retries = (int)env_num("DD_TOOL_RETRIES", -1);
	if (dd_backend_open(&be, &o) == 0 && run(be, argc, argv, o.transfers ? o.transfers : 8) == 0)
		rc = 0;
	if (rc) {
		fprintf(stderr, "error: %s\n", dd_error_last() ? dd_error_last() : "failed");
		if (dd_error_hint())
			fprintf(stderr, "hint: %s\n", dd_error_hint());
	}
	dd_backend_free(be);
	curl_global_cleanup();
	peak_rss();
	return rc;
}
