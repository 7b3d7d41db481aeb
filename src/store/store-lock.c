/*
 * store/store-lock.c: store-level locks, restic's protocol (store-lock.h;
 * docs/DESIGN-NOTES.md "The store's gc", FORMAT.md §3.6).
 *
 * Take: put our own file locks/<random id>, then list locks/ and read the
 * others. Both sides put before they list, so of two takers at least one
 * sees the other: no conditional write is needed (a folder store, S3
 * servers without If-None-Match). A conflict is resolved by the one that
 * sees it backing off (removing its own file): a writer waits for gc, gc
 * refuses at once. Ages are the store's: a lock's time in the listing (S3
 * LastModified, a folder's later of mtime and ctime) against the store's
 * clock (dd_store_now), so two machines' clocks never meet.
 *
 * Interrupts: while a store holds (or is about to take) a lock, SIGINT and
 * SIGTERM are caught by a handler that only posts a semaphore; a watcher
 * thread then removes every lock of this process (store I/O, never in the
 * handler), says "error: interrupted" and raises the signal again with its
 * default action (exit status 128+signal). A handler installed on top of
 * ours later (PostgreSQL's, pg/conn.c) saves and restores ours; one that
 * was there before ours is called instead (its normal error path frees the
 * store, and so removes the lock).
 *
 * A holder that lost its lock: every refresh first checks that our file is
 * still there; if another process removed it as stale, the lock is marked
 * lost and no longer refreshed. dd_store_lock_check() (a writer before its
 * manifest, gc before each removal batch) checks the file itself too.
 *
 * Tests only (honoured with DNADATA_TEST=1): DNADATA_TEST_LOCK_CLOCK_SHIFT
 * moves the clock locks are judged by (a lock 31 min old without waiting),
 * DNADATA_TEST_LOCK_HOST names another host (a lock a killed process of
 * another machine left), DNADATA_TEST_LOCK_PIDNS another pid namespace (a
 * container sharing this host's name), DNADATA_TEST_LOCK_WAIT bounds a writer's wait,
 * DNADATA_TEST_LOCK_REFRESH sets the refresh period (seconds).
 */
#include "store/store-lock.h"
#include "store/internal.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/proc.h"

#include <errno.h>
#include <semaphore.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- the record ---- */

/* A decimal without sign or leading zeros in [lo, hi], the whole of p[0..n). */
static int
parse_dec(const char *p, size_t n, long long lo, long long hi, long long *out)
{
	long long v = 0;

	if (n == 0 || n > 18 || (n > 1 && p[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* Printable ASCII (spaces only when `spaces`), 1..max bytes, into out (NUL-terminated). */
static int
parse_text(const char *p, size_t n, size_t max, int spaces, char *out)
{
	if (n == 0 || n > max)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e || (!spaces && p[i] == ' '))
			return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

/* A boot id (8-4-4-4-12 lowercase hex) into out, or "0" (unknown) as "". */
static int
parse_boot(const char *p, size_t n, char out[DD_STORE_LOCK_BOOT_LEN + 1])
{
	if (n == 1 && p[0] == '0') {
		out[0] = '\0';
		return 0;
	}
	if (n != DD_STORE_LOCK_BOOT_LEN)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? p[i] != '-' : !((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return -1;
	}
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

/* The next line "<key> <value>\n" of text[*at..len): its value. */
static int
next_line(const char *text, size_t len, size_t *at, const char *key, const char **v, size_t *vn)
{
	size_t kl = strlen(key), s = *at;
	const char *nl;

	if (len - s < kl + 2 || memcmp(text + s, key, kl) || text[s + kl] != ' ')
		return -1;
	nl = memchr(text + s + kl + 1, '\n', len - s - kl - 1);
	if (!nl)
		return -1;
	*v = text + s + kl + 1;
	*vn = (size_t)(nl - *v);
	*at = (size_t)(nl - text) + 1;
	return 0;
}

static int
record_parse(struct dd_store_lockrec *r, const char *text, size_t len)
{
	size_t at = 0, vn, sp;
	const char *v;
	long long x;

	if (len > DD_STORE_LOCK_MAX || next_line(text, len, &at, "dnadata-lock", &v, &vn) || vn != 1 || v[0] != '1')
		return -1;
	if (next_line(text, len, &at, "kind", &v, &vn))
		return -1;
	if (vn == 6 && !memcmp(v, "shared", 6))
		r->kind = DD_STORE_LOCK_SHARED;
	else if (vn == 9 && !memcmp(v, "exclusive", 9))
		r->kind = DD_STORE_LOCK_EXCLUSIVE;
	else
		return -1;
	if (next_line(text, len, &at, "host", &v, &vn) || parse_text(v, vn, DD_STORE_LOCK_HOST_MAX, 0, r->host))
		return -1;
	/* "pid <pid> started <start time>" */
	if (next_line(text, len, &at, "pid", &v, &vn))
		return -1;
	for (sp = 0; sp < vn && v[sp] != ' '; sp++)
		;
	if (parse_dec(v, sp, 1, 2147483647LL, &x))
		return -1;
	r->pid = (long)x;
	if (vn - sp < 9 || memcmp(v + sp, " started ", 9) || parse_dec(v + sp + 9, vn - sp - 9, 0, 1LL << 62, &x))
		return -1;
	r->started = x;
	/* "boot <boot id> pidns <inode>" */
	if (next_line(text, len, &at, "boot", &v, &vn))
		return -1;
	for (sp = 0; sp < vn && v[sp] != ' '; sp++)
		;
	if (parse_boot(v, sp, r->boot) || vn - sp < 7 || memcmp(v + sp, " pidns ", 7) ||
	    parse_dec(v + sp + 7, vn - sp - 7, 0, 1LL << 62, &x))
		return -1;
	r->pidns = x;
	if (next_line(text, len, &at, "command", &v, &vn) ||
	    parse_text(v, vn, DD_STORE_LOCK_COMMAND_MAX, 1, r->command))
		return -1;
	if (next_line(text, len, &at, "created", &v, &vn) || parse_dec(v, vn, 0, 1LL << 62, &x))
		return -1;
	r->created = x;
	return at == len ? 0 : -1;
}

int
dd_store_lockrec_parse(struct dd_store_lockrec *r, const char *text, size_t len)
{
	memset(r, 0, sizeof(*r));
	if (record_parse(r, text, len) < 0) {
		memset(r, 0, sizeof(*r)); /* nothing half parsed is left */
		return -1;
	}
	return 0;
}

void
dd_store_lockrec_format(struct dd_buf *out, const struct dd_store_lockrec *r)
{
	dd_buf_printf(out, "dnadata-lock 1\nkind %s\nhost %s\npid %ld started %lld\nboot %s pidns %lld\ncommand %s\n"
			   "created %lld\n",
		      r->kind == DD_STORE_LOCK_EXCLUSIVE ? "exclusive" : "shared", r->host, r->pid, r->started,
		      r->boot[0] ? r->boot : "0", r->pidns, r->command, r->created);
}

/* ---- test settings ---- */

static int
testing(void)
{
	const char *t = getenv("DNADATA_TEST");

	return t && !strcmp(t, "1");
}

static long long
test_number(const char *var, long long dflt)
{
	const char *e = getenv(var);
	char *end;
	long long v;

	if (!e || !*e || !testing())
		return dflt;
	errno = 0;
	v = strtoll(e, &end, 10);
	return errno || *end ? dflt : v;
}

/* ---- one lock file ---- */

static void
my_host(char host[DD_STORE_LOCK_HOST_MAX + 1])
{
	const char *t = testing() ? getenv("DNADATA_TEST_LOCK_HOST") : NULL;
	char raw[DD_STORE_LOCK_HOST_MAX + 1] = "";
	size_t n = 0;

	if (t && *t)
		snprintf(raw, sizeof(raw), "%s", t);
	else if (gethostname(raw, sizeof(raw) - 1) < 0)
		raw[0] = '\0';
	for (const char *p = raw; *p && n < DD_STORE_LOCK_HOST_MAX; p++) /* what the parser takes */
		host[n++] = *p > 0x20 && *p < 0x7f ? *p : '?';
	if (!n)
		host[n++] = '?';
	host[n] = '\0';
}

/* This machine's boot id (/proc/sys/kernel/random/boot_id) into boot, "" when unknown. */
static void
my_boot(char boot[DD_STORE_LOCK_BOOT_LEN + 1])
{
	char raw[64] = "";
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	size_t n = 0;

	if (f) {
		n = fread(raw, 1, sizeof(raw) - 1, f);
		fclose(f);
	}
	while (n && raw[n - 1] == '\n')
		n--;
	if (parse_boot(raw, n, boot) < 0 || n == 1)
		boot[0] = '\0';
}

/* This process's pid namespace (the inode of /proc/self/ns/pid), 0 when unknown; tests: DNADATA_TEST_LOCK_PIDNS. */
static long long
my_pidns(void)
{
	struct stat st;
	long long t = test_number("DNADATA_TEST_LOCK_PIDNS", -1);

	if (t >= 0)
		return t;
	return stat("/proc/self/ns/pid", &st) == 0 && (long long)st.st_ino > 0 ? (long long)st.st_ino : 0;
}

/*
 * Is the holder of r a process this one can judge by pid: same host name,
 * and the same boot and pid namespace, both known?
 */
static int
same_pid_space(const struct dd_store_lockrec *r)
{
	char host[DD_STORE_LOCK_HOST_MAX + 1], boot[DD_STORE_LOCK_BOOT_LEN + 1];
	long long ns = my_pidns();

	my_host(host);
	my_boot(boot);
	return !strcmp(r->host, host) && boot[0] && !strcmp(r->boot, boot) && ns > 0 && r->pidns == ns;
}

/* "host h, pid 123, git dnadata gc, since 2026-11-30 14:02:03 (its clock)" */
static char *
describe(const struct dd_store_lockrec *r)
{
	time_t t = (time_t)r->created;
	char when[32] = "?";
	struct tm tm;

	if (localtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	return dd_asprintf("host %s, pid %ld, %s, since %s", r->host, r->pid, r->command, when);
}

/* Seal and put a new lock file of kind `kind`; its name into `name`. 0, -1. */
static int
put_lock(struct dd_store *st, int kind, char name[DD_OBJECT_NAME_SIZE])
{
	struct dd_store_lockrec r = { .kind = kind };
	struct dd_buf plain = DD_BUF_INIT, obj = DD_BUF_INIT;
	uint8_t id[32];
	int rc = -1, p;

	my_host(r.host);
	r.pid = (long)getpid();
	r.started = dd_proc_start_time(r.pid);
	if (r.started < 0)
		r.started = 0;
	my_boot(r.boot);
	r.pidns = my_pidns();
	snprintf(r.command, sizeof(r.command), "%s", dd_lock_command());
	r.created = (long long)time(NULL);
	dd_store_lockrec_format(&plain, &r);
	randombytes_buf(id, sizeof(id));
	dd_object_name(name, DD_OBJECT_NAME_SIZE, "locks", id);
	if (dd_object_seal_level(&obj, st->keys, DD_OBJ_LOCK, id, plain.ptr, plain.len, NULL, DD_ZLEVEL_NONE) < 0)
		goto out;
	atomic_fetch_add(&st->requests, 1);
	p = st->be->ops->put(st->be, name, obj.ptr, obj.len);
	if (p >= 0 || p == DD_EXISTS)
		p = st->be->ops->sync(st->be); /* durable before we list: the other side must see it */
	if (p == DD_EUNREACHABLE) {
		rc = p;
		goto out;
	}
	if (p < 0) {
		dd_error_wrap("writing the lock file %s into the store %s", name, st->url);
		goto out;
	}
	rc = 0;
out:
	dd_buf_release(&plain);
	dd_buf_release(&obj);
	return rc;
}

static void
del_lock(struct dd_store *st, const char *name)
{
	struct dd_error_saved why;

	dd_error_save(&why);
	atomic_fetch_add(&st->requests, 1);
	if (st->be->ops->del(st->be, name) < 0 || st->be->ops->sync(st->be) < 0)
		dd_warn("could not remove the lock file %s from the store %s: %s (it goes stale in %d min)", name,
			st->url, dd_error_last() ? dd_error_last() : "?", DD_STORE_LOCK_STALE / 60);
	dd_error_restore(&why);
}

/* One lock file of the listing, judged. */
struct seen {
	char name[DD_OBJECT_NAME_SIZE];
	int readable; /* its record opened */
	int stale;
	int64_t age;  /* seconds, by the store's clock */
	struct dd_store_lockrec r;
};

/* Said once per process: the store cannot tell its clock (no Date, a read-only folder). */
static atomic_int local_clock_said;

int
dd_store_now(struct dd_store *st, int64_t *now)
{
	int r = st->be && st->be->ops->now ? st->be->ops->now(st->be, now) : DD_NOTFOUND;

	if (r == 0)
		return 0;
	if (r < 0 && r != DD_NOTFOUND) {
		dd_error_wrap("reading the clock of the store %s", st->url);
		return r == DD_EUNREACHABLE ? r : -1;
	}
	if (st->be && st->be->ops->now && !atomic_exchange(&local_clock_said, 1))
		dd_warn("the store %s cannot tell its clock (%s): going by this machine's clock", st->url,
			dd_error_last() ? dd_error_last() : "its server gave no Date");
	dd_error_clear();
	*now = (int64_t)time(NULL);
	return 1;
}

/*
 * Read and judge lock file `e` (not ours) against the store's clock `now`.
 * One that cannot be fetched (an error other than not found and
 * unreachable: too big, forbidden) is judged like one that does not open:
 * unreadable, by its listed age, so no single bad file blocks every writer
 * and gc for good. 0, DD_NOTFOUND (gone since), DD_EUNREACHABLE.
 */
static int
judge_lock(struct dd_store *st, const struct dd_backend_entry *e, int64_t now, struct seen *s)
{
	struct dd_buf obj = DD_BUF_INIT, plain = DD_BUF_INIT;
	uint8_t id[32];
	int64_t t = e->changed > e->mtime ? e->changed : e->mtime;
	int r;

	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", e->name);
	atomic_fetch_add(&st->requests, 1);
	r = st->be->ops->get(st->be, e->name, &obj);
	if (r == DD_NOTFOUND || r == DD_EUNREACHABLE) {
		dd_buf_release(&obj);
		return r;
	}
	dd_hex_decode(id, 32, e->name + 6); /* checked by the caller */
	if (r >= 0 &&
	    dd_object_open(&plain, st->keys, DD_OBJ_LOCK, id, obj.ptr, obj.len, DD_STORE_LOCK_MAX, NULL) == 0 &&
	    dd_store_lockrec_parse(&s->r, plain.ptr, plain.len) == 0)
		s->readable = 1;
	dd_error_clear();
	s->age = t == INT64_MAX ? 0 : now - t;
	s->stale = s->age > DD_STORE_LOCK_STALE ||
		   (s->readable && same_pid_space(&s->r) && !dd_proc_alive(s->r.pid, s->r.started ? s->r.started : -1));
	dd_buf_release(&obj);
	dd_buf_release(&plain);
	return 0;
}

/* Every lock file but `own` (NULL: none), judged. 0, -1, DD_EUNREACHABLE (error set). */
static int
scan(struct dd_store *st, const char *own, struct seen **out, size_t *n)
{
	struct dd_backend_entry *e = NULL;
	size_t ne = 0;
	int64_t now;
	int r;

	*out = NULL;
	*n = 0;
	atomic_fetch_add(&st->requests, 1);
	r = st->be->ops->list(st->be, "locks", &e, &ne);
	if (r < 0) {
		dd_error_wrap("listing the locks of the store %s", st->url);
		return r == DD_EUNREACHABLE ? r : -1;
	}
	if ((r = dd_store_now(st, &now)) < 0) {
		dd_backend_entries_free(e, ne);
		return r;
	}
	now += test_number("DNADATA_TEST_LOCK_CLOCK_SHIFT", 0);
	*out = dd_calloc(ne ? ne : 1, sizeof(**out));
	for (size_t i = 0; i < ne; i++) {
		if (strncmp(e[i].name, "locks/", 6) || strlen(e[i].name) != 70 || !dd_is_hex(e[i].name + 6, 64) ||
		    (own && !strcmp(e[i].name, own)))
			continue;
		r = judge_lock(st, &e[i], now, &(*out)[*n]);
		if (r == DD_NOTFOUND)
			continue;
		if (r < 0) {
			dd_error_wrap("reading the lock %s of the store %s", e[i].name, st->url);
			free(*out);
			*out = NULL;
			dd_backend_entries_free(e, ne);
			return r == DD_EUNREACHABLE ? r : -1;
		}
		(*n)++;
	}
	dd_backend_entries_free(e, ne);
	return 0;
}

/* "host h, pid 1, ..." or "an unreadable lock file locks/<id>" (one that does not fetch or open). */
static char *
seen_describe(const struct seen *s)
{
	return s->readable ? describe(&s->r) : dd_asprintf("an unreadable lock file %s", s->name);
}

/* What blocks a writer: "`gc --store` (host h, ...)", or the unreadable lock file. */
static char *
blocker_describe(const struct seen *s)
{
	char *who, *out;

	if (!s->readable)
		return seen_describe(s);
	who = describe(&s->r);
	out = dd_asprintf("`gc --store` (%s)", who);
	free(who);
	return out;
}

static void sig_unregister(struct dd_store *st);
static void sig_finish(void);
static int interrupting(void);

/* ---- holding: refresh thread ---- */

/* Under lockmu: 1 when our lock file is no longer in the store, 0 there or cannot tell (the error cleared). */
static int
lock_gone(struct dd_store *st)
{
	int r;

	atomic_fetch_add(&st->requests, 1);
	r = st->be->ops->exists(st->be, st->lock_name);
	if (r < 0)
		dd_error_clear();
	return r == 0;
}

static void *
refresher(void *arg)
{
	struct dd_store *st = arg;
	long long every = test_number("DNADATA_TEST_LOCK_REFRESH", DD_STORE_LOCK_REFRESH);

	pthread_mutex_lock(&st->lockmu);
	for (;;) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += every > 0 ? every : DD_STORE_LOCK_REFRESH;
		while (!st->lock_stop && pthread_cond_timedwait(&st->lockcv, &st->lockmu, &until) != ETIMEDOUT)
			;
		if (st->lock_stop)
			break;
		if (st->lock_lost)
			continue; /* removed by another process: never written again */
		/* ours still there (restic: a lock removed as stale is lost, not taken again) */
		if (lock_gone(st)) {
			st->lock_lost = 1;
			continue;
		}
		/* a new file, then the old one removed: never a moment without a fresh lock */
		char fresh[DD_OBJECT_NAME_SIZE], old[DD_OBJECT_NAME_SIZE];
		int kind = st->lock_kind;
		pthread_mutex_unlock(&st->lockmu);
		int r = put_lock(st, kind, fresh);
		pthread_mutex_lock(&st->lockmu);
		if (r < 0) {
			dd_warn("could not refresh the lock on the store %s: %s", st->url, dd_error_last());
			dd_error_clear();
			continue;
		}
		memcpy(old, st->lock_name, sizeof(old));
		memcpy(st->lock_name, fresh, sizeof(fresh));
		pthread_mutex_unlock(&st->lockmu);
		del_lock(st, old);
		pthread_mutex_lock(&st->lockmu);
	}
	pthread_mutex_unlock(&st->lockmu);
	return NULL;
}

/* We hold `name` (kind): record it and start refreshing it. Under lockmu. */
static void
hold(struct dd_store *st, int kind, const char *name)
{
	st->lock_kind = kind;
	snprintf(st->lock_name, sizeof(st->lock_name), "%s", name);
	st->lock_stop = 0;
	st->lock_lost = 0;
	st->lock_thread_on = pthread_create(&st->lock_thread, NULL, refresher, st) == 0;
}

/* Under lockmu: until no other thread is releasing this store's lock (its file is gone then). */
static void
settle(struct dd_store *st)
{
	while (st->lock_releasing)
		pthread_cond_wait(&st->lockcv, &st->lockmu);
}

/*
 * Under lockmu: stop the refresher, remove our file. Two threads may call
 * it (the interrupt watcher, the main thread): the second waits until the
 * first has removed the file.
 */
static void
release_locked(struct dd_store *st)
{
	char name[DD_OBJECT_NAME_SIZE];

	settle(st);
	if (!st->lock_kind)
		return;
	st->lock_releasing = 1;
	st->lock_stop = 1;
	pthread_cond_broadcast(&st->lockcv);
	if (st->lock_thread_on) {
		st->lock_thread_on = 0;
		pthread_mutex_unlock(&st->lockmu);
		pthread_join(st->lock_thread, NULL);
		pthread_mutex_lock(&st->lockmu);
	}
	memcpy(name, st->lock_name, sizeof(name));
	st->lock_kind = 0;
	st->lock_count = 0;
	st->lock_name[0] = '\0';
	if (!st->lock_lost) /* a lost lock's file is gone already */
		del_lock(st, name);
	st->lock_lost = 0;
	st->lock_releasing = 0;
	pthread_cond_broadcast(&st->lockcv);
}

/*
 * The lock is removed before the store leaves the interrupt registry: the
 * other way round, a signal's watcher that ran in between found no store to
 * release and ended the process while the file was still there (a flaky
 * t-store-locks). Now a watcher acting meanwhile releases it itself or
 * waits in release_locked() until this thread has.
 */
void
dd_store_unlock_all(struct dd_store *st)
{
	if (!st->be)
		return;
	pthread_mutex_lock(&st->lockmu);
	release_locked(st);
	pthread_mutex_unlock(&st->lockmu);
	sig_unregister(st);
	sig_finish(); /* never go on as if not interrupted */
}

void
dd_store_unlock_shared(struct dd_store *st)
{
	if (!st->be)
		return;
	pthread_mutex_lock(&st->lockmu);
	if (st->lock_kind == DD_STORE_LOCK_SHARED && st->lock_count && !--st->lock_count)
		release_locked(st);
	pthread_mutex_unlock(&st->lockmu);
}

/* ---- interrupts: the lock removed on SIGINT / SIGTERM ---- */

#define SIG_STORES 16 /* stores of one process that may hold a lock at once */

/* sig_mu guards the registry and the handlers; the watcher holds it while it removes the locks */
static pthread_mutex_t sig_mu = PTHREAD_MUTEX_INITIALIZER;
static struct dd_store *sig_reg[SIG_STORES];
static size_t sig_n;
static struct sigaction sig_old_int, sig_old_term;
static pthread_t sig_thread;
static volatile sig_atomic_t sig_caught; /* the signal the watcher acts on */
static volatile sig_atomic_t sig_active; /* our handler is installed for a registered store */
static atomic_int sig_dying;             /* the watcher is removing the locks: take none, write nothing */
/* posted by the handler; never destroyed (a late handler may still post it) */
static sem_t sig_wake;
static pthread_once_t sig_once = PTHREAD_ONCE_INIT;
static int sig_ok;

static int
is_handler(void (*h)(int))
{
	return h != SIG_DFL && h != SIG_IGN;
}

/* Async-signal-safe only: a flag, sem_post, sigaction, raise. */
static void
on_signal(int sig)
{
	const struct sigaction *old = sig == SIGINT ? &sig_old_int : &sig_old_term;
	int saved = errno;

	if (!(old->sa_flags & SA_SIGINFO) && is_handler(old->sa_handler)) {
		old->sa_handler(sig); /* installed before ours: its error path frees the store */
	} else if (!sig_active) { /* left installed by a handler that restored ours late: act as before */
		sigaction(sig, old, NULL);
		raise(sig);
	} else if (!sig_caught) {
		sig_caught = sig;
		sem_post(&sig_wake);
	}
	errno = saved;
}

/* A signal was caught for a lock: take no other, write nothing more. */
static int
interrupting(void)
{
	return sig_caught || atomic_load(&sig_dying);
}

/* The watcher, on a signal: every registered store's lock removed, then the signal again, default action. */
static void
sig_act(int sig)
{
	struct sigaction dfl;
	sigset_t set;

	atomic_store(&sig_dying, 1);
	pthread_mutex_lock(&sig_mu); /* held to the end: no store is freed meanwhile */
	for (size_t i = 0; i < sig_n; i++) {
		pthread_mutex_lock(&sig_reg[i]->lockmu);
		release_locked(sig_reg[i]);
		pthread_mutex_unlock(&sig_reg[i]->lockmu);
	}
	dd_log_line("error: ", "interrupted");
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	_exit(128 + sig); /* not reached */
}

/* Started once, it sleeps on the semaphore for the rest of the process (stopping it could deadlock with sig_act). */
/* A signal caught for a lock: this thread ends the process as the watcher would (whichever comes first). */
static void
sig_finish(void)
{
	if (sig_caught)
		sig_act(sig_caught);
}

static void *
sig_watch(void *arg)
{
	(void)arg;
	for (;;) {
		while (sem_wait(&sig_wake) < 0 && errno == EINTR)
			;
		if (sig_caught)
			sig_act(sig_caught);
	}
	return NULL;
}

/* Under sig_mu: the watcher started once. */
static void
sig_start(void)
{
	pthread_attr_t attr;

	sig_ok = sem_init(&sig_wake, 0, 0) == 0;
	if (!sig_ok || pthread_attr_init(&attr) != 0) {
		sig_ok = 0;
		return;
	}
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sig_ok = pthread_create(&sig_thread, &attr, sig_watch, NULL) == 0;
	pthread_attr_destroy(&attr);
}

/* Under sig_mu, for the first registered store: our handler. 0, -1 (no watcher: the lock goes stale instead). */
static int
sig_install(void)
{
	struct sigaction sa;

	pthread_once(&sig_once, sig_start);
	if (!sig_ok)
		return -1;
	sig_active = 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &sig_old_int);
	sigaction(SIGTERM, &sa, &sig_old_term);
	return 0;
}

/* Under sig_mu, the last store gone: the handlers restored where ours is still the one. */
static void
sig_remove(void)
{
	struct sigaction cur;

	if (sigaction(SIGINT, NULL, &cur) == 0 && cur.sa_handler == on_signal)
		sigaction(SIGINT, &sig_old_int, NULL);
	if (sigaction(SIGTERM, NULL, &cur) == 0 && cur.sa_handler == on_signal)
		sigaction(SIGTERM, &sig_old_term, NULL);
	sig_active = 0; /* a signal caught before still ends the process (sig_act, once sig_mu is free) */
}

/* Before a lock is taken (never under lockmu): st's lock is removed on SIGINT/SIGTERM. 0, -1 (interrupted). */
static int
sig_register(struct dd_store *st)
{
	int rc = 0;

	pthread_mutex_lock(&sig_mu);
	if (interrupting())
		rc = dd_error("interrupted");
	else if (!st->lock_sig && sig_n < SIG_STORES && (sig_n || sig_install() == 0)) {
		sig_reg[sig_n++] = st;
		st->lock_sig = 1;
	}
	pthread_mutex_unlock(&sig_mu);
	return rc;
}

/* The store is being freed (never under lockmu): off the registry; the last one removes the handler. */
static void
sig_unregister(struct dd_store *st)
{
	pthread_mutex_lock(&sig_mu);
	for (size_t i = 0; st->lock_sig && i < sig_n; i++)
		if (sig_reg[i] == st) {
			sig_reg[i] = sig_reg[--sig_n];
			st->lock_sig = 0;
			if (!sig_n)
				sig_remove();
		}
	pthread_mutex_unlock(&sig_mu);
}

/* ---- taking ---- */

/* The first fresh lock in s[0..n) that blocks `kind` (exclusive: any; shared: an exclusive or unreadable one). */
static const struct seen *
blocker(const struct seen *s, size_t n, int kind)
{
	for (size_t i = 0; i < n; i++)
		if (!s[i].stale &&
		    (kind == DD_STORE_LOCK_EXCLUSIVE || !s[i].readable || s[i].r.kind == DD_STORE_LOCK_EXCLUSIVE))
			return &s[i];
	return NULL;
}

/*
 * One attempt: put ours, list, judge. 1 taken (name in `name`), 0 blocked
 * (ours removed; *who set), -1, DD_EUNREACHABLE (the put or the listing
 * after it: ours removed if the store still answers that).
 */
static int
try_take(struct dd_store *st, int kind, char name[DD_OBJECT_NAME_SIZE], struct seen **s, size_t *n, char **who)
{
	const struct seen *b;

	int r;

	*who = NULL;
	if (interrupting())
		return dd_error("interrupted");
	if ((r = put_lock(st, kind, name)) < 0)
		return r;
	dd_failpoint("store-lock-put"); /* tests: the store goes out of reach between our put and the listing */
	if ((r = scan(st, name, s, n)) < 0) {
		del_lock(st, name);
		return r;
	}
	b = blocker(*s, *n, kind);
	if (!b)
		return 1;
	*who = kind == DD_STORE_LOCK_SHARED ? blocker_describe(b) : seen_describe(b);
	del_lock(st, name);
	return 0;
}

/* The store's index files were listed before this lock: have the next refresh list them again. */
static void
relist_after_lock(struct dd_store *st)
{
	pthread_mutex_lock(&st->idxmu);
	st->idx_refreshed = 0;
	pthread_mutex_unlock(&st->idxmu);
}

static int
wait_refused(struct dd_store *st, const char *who)
{
	int gc = !strncmp(who, "`gc --store`", 12); /* else an unreadable lock file (blocker_describe) */

	dd_error("the store %s is locked by %s", st->url, who);
	dd_hint("run this again once that %s; a lock not refreshed for %d min is stale (`git dnadata gc --store` "
		"removes it)", gc ? "gc has ended" : "lock is gone", DD_STORE_LOCK_STALE / 60);
	return -1;
}

int
dd_store_lock_shared(struct dd_store *st)
{
	char name[DD_OBJECT_NAME_SIZE];
	long long bound = test_number("DNADATA_TEST_LOCK_WAIT", DD_STORE_LOCK_WAIT);
	struct timespec t0, t1;
	int said = 0, r;

	if (!st->be || !dd_store_live(st))
		return 0; /* nothing counted: the caller must not unlock */
	if (sig_register(st) < 0)
		return -1;
	pthread_mutex_lock(&st->lockmu);
	settle(st);
	if (st->lock_kind) {
		st->lock_count++;
		pthread_mutex_unlock(&st->lockmu);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct seen *s = NULL;
		size_t n = 0;
		char *who = NULL;
		r = try_take(st, DD_STORE_LOCK_SHARED, name, &s, &n, &who);
		free(s);
		if (r != 0) {
			free(who);
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec >= bound) {
			r = wait_refused(st, who);
			free(who);
			break;
		}
		if (!said++)
			dd_warn("the store %s is locked by %s: waiting up to %lld s", st->url, who, bound);
		free(who);
		sleep(bound < 2 ? 1 : 2); /* an interrupt ends the wait at the next try_take */
	}
	if (r == 1) {
		hold(st, DD_STORE_LOCK_SHARED, name);
		st->lock_count = 1;
		relist_after_lock(st);
	}
	pthread_mutex_unlock(&st->lockmu);
	if (r == DD_EUNREACHABLE && dd_store_gone(st, r))
		return 0; /* unreachable: the writer goes on in the cache, listing nothing */
	return r < 0 ? -1 : 1;
}

/* Remove the stale locks of s[0..n), one warning line each. */
static void
remove_stale(struct dd_store *st, const struct seen *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!s[i].stale)
			continue;
		char *who = seen_describe(&s[i]);
		if (s[i].age > DD_STORE_LOCK_STALE)
			dd_warn("gc: removing a stale lock of the store (%s): not refreshed for %lld min", who,
				(long long)(s[i].age / 60));
		else
			dd_warn("gc: removing a stale lock of the store (%s): that process is gone", who);
		free(who);
		del_lock(st, s[i].name);
	}
}

int
dd_store_lock_exclusive(struct dd_store *st)
{
	char name[DD_OBJECT_NAME_SIZE];
	struct seen *s = NULL;
	size_t n = 0;
	char *who = NULL;
	int r;

	if (!st->be)
		return dd_error("BUG: an exclusive lock on an offline store");
	if (sig_register(st) < 0)
		return -1;
	pthread_mutex_lock(&st->lockmu);
	settle(st);
	if (st->lock_kind) {
		pthread_mutex_unlock(&st->lockmu);
		return dd_error("BUG: this process already holds a lock on the store");
	}
	r = try_take(st, DD_STORE_LOCK_EXCLUSIVE, name, &s, &n, &who);
	if (r >= 0)
		remove_stale(st, s, n);
	if (r == 1)
		hold(st, DD_STORE_LOCK_EXCLUSIVE, name);
	pthread_mutex_unlock(&st->lockmu);
	free(s);
	if (r == 0) {
		dd_error("the store %s is locked by %s: gc removed nothing", st->url, who);
		dd_hint("run `git dnadata gc --store` again once it has ended (a lock not refreshed for %d min is "
			"stale and gc removes it)", DD_STORE_LOCK_STALE / 60);
	}
	free(who);
	return r == 1 ? 0 : -1;
}

int
dd_store_locks_held(struct dd_store *st, struct dd_buf *out)
{
	struct seen *s = NULL;
	size_t n = 0;

	dd_buf_clear(out);
	if (scan(st, NULL, &s, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i].stale)
			continue;
		char *who = seen_describe(&s[i]);
		dd_buf_printf(out, "%s%s", out->len ? "\n" : "", who);
		free(who);
	}
	free(s);
	return 0;
}

int
dd_store_lock_check(struct dd_store *st)
{
	int lost;

	if (interrupting())
		return dd_error("interrupted");
	if (!st->be)
		return 0;
	pthread_mutex_lock(&st->lockmu);
	settle(st);
	/* under lockmu: the refresher renames our lock only with it held, so lock_name is the file there */
	if (st->lock_kind && !st->lock_lost && lock_gone(st))
		st->lock_lost = 1;
	lost = st->lock_kind && st->lock_lost;
	pthread_mutex_unlock(&st->lockmu);
	if (!lost)
		return 0;
	dd_error("the store lock was lost: another process removed this one's lock file from the store %s as stale",
		 st->url);
	dd_hint("its refreshes failed for %d min (was the store unreachable?); run the command again",
		DD_STORE_LOCK_STALE / 60);
	return -1;
}
