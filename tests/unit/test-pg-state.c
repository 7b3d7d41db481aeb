/*
 * tests/unit/test-pg-state.c: the records of <statedir>/pg/ without a
 * server: pending copies (listed with their pid and whether the process
 * lives, removed one at a time, the dead ones as leftovers), stashes read
 * oldest first, names that need escaping, and a missing directory read as
 * an empty state. Also the interrupt machinery every long operation shares
 * (conn.c): a signal is seen at once, and ending it costs no wait.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pg/internal.h"
#include "pg/state.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"

#define CONNINFO "host=/nonexistent/sock port=5999 user=u dbname=work"

struct fixture {
	char tmp[64];
	struct dd_pg_target t;
	char *dir; /* <statedir>/pg/<key> */
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->tmp, sizeof(f->tmp), "/tmp/dd-pg-state.XXXXXX");
	if (!mkdtemp(f->tmp) || dd_pg_target_resolve(&f->t, CONNINFO) < 0)
		return -1;
	f->dir = dd_pg_state_dir(f->tmp, &f->t);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	dd_rm_rf(f->tmp);
	free(f->dir);
	dd_pg_target_release(&f->t);
	free(f);
	return 0;
}

/* A pid that belonged to a process that has exited. */
static long
dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return (long)pid;
}

/* A pending record as a process killed with -9 leaves it. */
static void
write_pending(const struct fixture *f, long pid, const char *name)
{
	char *path = dd_asprintf("%s/pending-%ld", f->dir, pid);
	char *text = dd_asprintf("name %s\npid %ld\n", name, pid);

	assert_int_equal(dd_mkdir_p(f->dir, 0700), 0);
	assert_int_equal(dd_file_write_atomic(path, text, strlen(text), 0600, 0), 0);
	free(text);
	free(path);
}

static void
no_records_is_an_empty_state(void **state)
{
	struct fixture *f = *state;
	struct dd_pg_pending *p = NULL;
	struct dd_pg_state s;
	size_t n = 1;

	assert_int_equal(dd_pg_state_pending_list(&p, &n, f->tmp, &f->t), 0);
	assert_int_equal(n, 0);
	assert_null(p);
	assert_int_equal(dd_pg_state_read(&s, f->tmp, CONNINFO), 0);
	assert_string_equal(s.database, "work");
	assert_null(s.snapshot);
	assert_int_equal(s.nstashes, 0);
	assert_int_equal(s.npending, 0);
	dd_pg_state_release(&s);
	/* with no record to check, verifying needs no server */
	assert_int_equal(dd_pg_state_verify(&s, f->tmp, CONNINFO), 0);
	assert_true(s.verified);
	dd_pg_state_release(&s);
}

static void
pending_records_list_with_pid_and_liveness(void **state)
{
	struct fixture *f = *state;
	struct dd_pg_pending *p = NULL;
	long dead = dead_pid();
	size_t n = 0;

	assert_int_equal(dd_pg_state_pending_add(f->tmp, &f->t, "work__dnadata_new_mine"), 0);
	write_pending(f, dead, "work__dnadata_new_dead");
	assert_int_equal(dd_pg_state_pending_list(&p, &n, f->tmp, &f->t), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		if (p[i].pid == (long)getpid()) {
			assert_string_equal(p[i].name, "work__dnadata_new_mine");
			assert_true(p[i].alive);
		} else {
			assert_int_equal(p[i].pid, dead);
			assert_string_equal(p[i].name, "work__dnadata_new_dead");
			assert_false(p[i].alive);
		}
		assert_false(p[i].exists);
	}
	assert_true(p[0].pid < p[1].pid);
	dd_pg_pending_free(p, n);

}

static void
a_pending_record_is_removed_once(void **state)
{
	struct fixture *f = *state;
	struct dd_pg_pending *p = NULL;
	struct dd_pg_state s;
	long dead = dead_pid();
	size_t n = 0;

	write_pending(f, dead, "work__dnadata_new_x");
	assert_int_equal(dd_pg_state_read(&s, f->tmp, CONNINFO), 0);
	assert_int_equal(s.npending, 1);
	assert_int_equal(s.pending[0].pid, dead);
	dd_pg_state_release(&s);
	assert_int_equal(dd_pg_state_pending_remove(f->tmp, &f->t, dead), DD_OK);
	assert_int_equal(dd_pg_state_pending_remove(f->tmp, &f->t, dead), DD_NOTFOUND);
	assert_int_equal(dd_pg_state_pending_list(&p, &n, f->tmp, &f->t), 0);
	assert_int_equal(n, 0);
	dd_pg_pending_free(p, n);
}

static void
records_that_are_not_pending_copies_are_ignored(void **state)
{
	struct fixture *f = *state;
	struct dd_pg_pending *p = NULL;
	size_t n = 0;
	char *junk = dd_path_join(f->dir, "pending-12x");
	char *noname = dd_path_join(f->dir, "pending-77");

	assert_int_equal(dd_mkdir_p(f->dir, 0700), 0);
	assert_int_equal(dd_file_write_atomic(junk, "name a\n", 7, 0600, 0), 0);
	assert_int_equal(dd_file_write_atomic(noname, "pid 77\n", 7, 0600, 0), 0);
	assert_int_equal(dd_pg_state_pending_list(&p, &n, f->tmp, &f->t), 0);
	assert_int_equal(n, 0);
	dd_pg_pending_free(p, n);
	free(junk);
	free(noname);
}

static void
stashes_read_oldest_first_with_names_escaped(void **state)
{
	struct fixture *f = *state;
	struct dd_pg_state s;

	assert_int_equal(dd_pg_state_add_stash(f->tmp, &f->t, "b\nodd\\name", "id2", "p"), 0);
	/* an older one, written by hand with an earlier time */
	char *path = dd_path_join(f->dir, "stash-0000000000000000");
	const char *old = "name a\nsnapshot id1\nprofile p\nstashed 2000-01-01T00:00:00Z\n";
	assert_int_equal(dd_file_write_atomic(path, old, strlen(old), 0600, 0), 0);
	free(path);
	assert_int_equal(dd_pg_state_read(&s, f->tmp, CONNINFO), 0);
	assert_int_equal(s.nstashes, 2);
	assert_string_equal(s.stashes[0].name, "a");
	assert_string_equal(s.stashes[0].snapshot, "id1");
	assert_string_equal(s.stashes[1].name, "b\nodd\\name");
	assert_string_equal(s.stashes[1].snapshot, "id2");
	assert_false(s.verified);
	dd_pg_state_release(&s);
}

static void
verify_without_a_server_fails_and_keeps_every_record(void **state)
{
	struct fixture *f = *state;
	struct dd_pg_state s;

	assert_int_equal(dd_pg_state_add_stash(f->tmp, &f->t, "work__dnadata_stash_1", "id", "p"), 0);
	assert_int_equal(dd_pg_state_read(&s, f->tmp, CONNINFO), 0);
	assert_int_equal(dd_pg_state_verify(&s, f->tmp, CONNINFO), -1);
	assert_non_null(strstr(dd_error_last(), "cannot connect to PostgreSQL"));
	dd_error_clear();
	assert_false(s.verified);
	assert_int_equal(s.nstashes, 1);
	dd_pg_state_release(&s);
	assert_int_equal(dd_pg_state_read(&s, f->tmp, CONNINFO), 0);
	assert_int_equal(s.nstashes, 1);
	dd_pg_state_release(&s);
}


static void
copies_of_each_kind_list_by_kind_then_least_recently_used(void **state)
{
	struct fixture *f = *state;
	struct dd_pg_copy c = { 0 }, *v = NULL;
	size_t n = 0;

	c = (struct dd_pg_copy){ .name = "work__dnadata_stash_2", .kind = DD_PG_COPY_STASH, .snapshot = "idA",
				 .profile = "p", .branch = "feature/x", .modified = DD_PG_MOD_YES,
				 .fingerprint = "v1 1 2 3 4 5 6 abc", .created = "2026-01-02T00:00:00Z" };
	assert_int_equal(dd_pg_copy_record(f->tmp, &f->t, &c), 0);
	c = (struct dd_pg_copy){ .name = "work__dnadata_spare_idB", .kind = DD_PG_COPY_SPARE, .snapshot = "idB",
				 .profile = "p", .fingerprint = "seqB", .created = "2026-01-03T00:00:00Z" };
	assert_int_equal(dd_pg_copy_record(f->tmp, &f->t, &c), 0);
	c = (struct dd_pg_copy){ .name = "work__dnadata_tmpl_idB", .kind = DD_PG_COPY_TEMPLATE, .snapshot = "idB",
				 .profile = "p", .created = "2026-01-05T00:00:00Z" };
	assert_int_equal(dd_pg_copy_record(f->tmp, &f->t, &c), 0);
	c = (struct dd_pg_copy){ .name = "work__dnadata_tmpl_idA", .kind = DD_PG_COPY_TEMPLATE, .snapshot = "idA",
				 .profile = "p", .created = "2026-01-04T00:00:00Z" };
	assert_int_equal(dd_pg_copy_record(f->tmp, &f->t, &c), 0);

	assert_int_equal(dd_pg_copies_list_target(&v, &n, f->tmp, &f->t), 0);
	assert_int_equal(n, 4);
	assert_string_equal(v[0].name, "work__dnadata_tmpl_idA");
	assert_int_equal(v[0].kind, DD_PG_COPY_TEMPLATE);
	assert_int_equal(v[0].modified, DD_PG_MOD_NO);
	assert_string_equal(v[0].used, "2026-01-04T00:00:00Z");
	assert_string_equal(v[1].name, "work__dnadata_tmpl_idB");
	assert_string_equal(v[2].name, "work__dnadata_spare_idB");
	assert_string_equal(v[2].fingerprint, "seqB");
	assert_true(dd_pg_copy_disposable(&v[2]));
	assert_string_equal(v[3].name, "work__dnadata_stash_2");
	assert_int_equal(v[3].kind, DD_PG_COPY_STASH);
	assert_string_equal(v[3].branch, "feature/x");
	assert_int_equal(v[3].modified, DD_PG_MOD_YES);
	assert_string_equal(v[3].fingerprint, "v1 1 2 3 4 5 6 abc");
	assert_string_equal(v[3].created, "2026-01-02T00:00:00Z");
	assert_int_equal(v[3].size, -1);
	assert_false(dd_pg_copy_disposable(&v[3]));
	dd_pg_copies_free(v, n);

	/* the stash is one of the working record's stashes too */
	struct dd_pg_state s;
	assert_int_equal(dd_pg_state_read(&s, f->tmp, CONNINFO), 0);
	assert_int_equal(s.nstashes, 1);
	assert_string_equal(s.stashes[0].name, "work__dnadata_stash_2");
	assert_string_equal(s.stashes[0].stashed, "2026-01-02T00:00:00Z");
	dd_pg_state_release(&s);

	/* using a template moves it last among the templates */
	assert_int_equal(dd_pg_copy_touch(f->tmp, CONNINFO, "work__dnadata_tmpl_idA"), 0);
	assert_int_equal(dd_pg_copies_list(&v, &n, f->tmp, CONNINFO, 0), 0);
	assert_string_equal(v[0].name, "work__dnadata_tmpl_idB");
	assert_string_equal(v[1].name, "work__dnadata_tmpl_idA");
	assert_string_equal(v[1].created, "2026-01-04T00:00:00Z");
	assert_string_not_equal(v[1].used, "2026-01-04T00:00:00Z");
	dd_pg_copies_free(v, n);
	assert_int_equal(dd_pg_copy_touch(f->tmp, CONNINFO, "work__dnadata_tmpl_none"), DD_NOTFOUND);
}

static void
a_copy_is_found_and_forgotten_by_name_whatever_its_kind(void **state)
{
	struct fixture *f = *state;
	struct dd_pg_copy c = { .name = "work__dnadata_spare_x\n", .kind = DD_PG_COPY_SPARE, .snapshot = "x" };
	struct dd_pg_copy got;

	assert_int_equal(dd_pg_copy_record(f->tmp, &f->t, &c), 0);
	assert_int_equal(dd_pg_copy_get(&got, f->tmp, &f->t, "work__dnadata_spare_x\n"), 0);
	assert_int_equal(got.kind, DD_PG_COPY_SPARE);
	assert_string_equal(got.snapshot, "x");
	assert_string_equal(got.branch, "");
	assert_null(got.fingerprint);
	dd_pg_copy_release(&got);
	assert_int_equal(dd_pg_copy_get(&got, f->tmp, &f->t, "work__dnadata_spare_y"), DD_NOTFOUND);
	assert_int_equal(dd_pg_copy_forget(f->tmp, &f->t, "work__dnadata_spare_x\n"), 0);
	assert_int_equal(dd_pg_copy_forget(f->tmp, &f->t, "work__dnadata_spare_x\n"), DD_NOTFOUND);
	assert_int_equal(dd_pg_copy_get(&got, f->tmp, &f->t, "work__dnadata_spare_x\n"), DD_NOTFOUND);
}

static void
a_stash_recorded_by_an_older_version_counts_as_modified(void **state)
{
	struct fixture *f = *state;
	struct dd_pg_copy *v = NULL;
	size_t n = 0;

	assert_int_equal(dd_pg_state_add_stash(f->tmp, &f->t, "work__dnadata_stash_1", "id", "p"), 0);
	assert_int_equal(dd_pg_copies_list_target(&v, &n, f->tmp, &f->t), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].kind, DD_PG_COPY_STASH);
	assert_int_equal(v[0].modified, DD_PG_MOD_UNKNOWN);
	assert_false(dd_pg_copy_disposable(&v[0]));
	assert_string_equal(v[0].used, v[0].created);
	dd_pg_copies_free(v, n);
}

static void
dropping_what_is_not_ours_is_refused_without_a_connection(void **state)
{
	struct fixture *f = *state;
	struct dd_pg_copy c = { .name = "work__dnadata_stash_9", .kind = DD_PG_COPY_STASH, .snapshot = "x",
				.modified = DD_PG_MOD_YES };

	/* no record, and the working database itself: not ours (the server is never asked) */
	assert_int_equal(dd_pg_copy_drop(f->tmp, CONNINFO, "someone_elses", 0), DD_NOTFOUND);
	assert_non_null(strstr(dd_error_last(), "is not a template, spare or stash of database work"));
	dd_error_clear();
	assert_int_equal(dd_pg_copy_drop(f->tmp, CONNINFO, "work", DD_PG_DROP_FORCE), DD_NOTFOUND);
	dd_error_clear();
	/* a stash with local edits: refused unless forced */
	assert_int_equal(dd_pg_copy_record(f->tmp, &f->t, &c), 0);
	assert_int_equal(dd_pg_copy_drop(f->tmp, CONNINFO, "work__dnadata_stash_9", 0), DD_EXISTS);
	assert_non_null(strstr(dd_error_last(), "holds local edits"));
	dd_error_clear();
	/* forced: the server is needed (unreachable here), and the record stays */
	assert_int_equal(dd_pg_copy_drop(f->tmp, CONNINFO, "work__dnadata_stash_9", DD_PG_DROP_FORCE), -1);
	dd_error_clear();
	struct dd_pg_copy got;
	assert_int_equal(dd_pg_copy_get(&got, f->tmp, &f->t, "work__dnadata_stash_9"), 0);
	dd_pg_copy_release(&got);
}

static void
the_switch_journal_round_trips_and_is_removed_once(void **state)
{
	struct fixture *f = *state;
	struct dd_pg_journal j = { .source = "work__dnadata_new_1", .kind = "clone", .stash = "work__dnadata_stash_2",
				   .snapshot = "id", .profile = "p", .branch = "feature/x\nodd" };
	struct dd_pg_journal got;

	struct dd_pg_state s;
	assert_int_equal(dd_pg_journal_read(&got, f->tmp, &f->t), DD_NOTFOUND);
	assert_int_equal(dd_pg_state_read(&s, f->tmp, CONNINFO), 0);
	assert_false(s.interrupted);
	dd_pg_state_release(&s);
	assert_int_equal(dd_pg_journal_write(f->tmp, &f->t, &j), 0);
	/* the working record says so: the hooks' cheap check must not trust it */
	assert_int_equal(dd_pg_state_read(&s, f->tmp, CONNINFO), 0);
	assert_true(s.interrupted);
	dd_pg_state_release(&s);
	assert_int_equal(dd_pg_journal_read(&got, f->tmp, &f->t), 0);
	assert_string_equal(got.source, "work__dnadata_new_1");
	assert_string_equal(got.kind, "clone");
	assert_string_equal(got.stash, "work__dnadata_stash_2");
	assert_string_equal(got.branch, "feature/x\nodd");
	assert_null(got.fingerprint);
	dd_pg_journal_release(&got);
	/* it is not a copy, and no copy listing sees it */
	struct dd_pg_copy *v = NULL;
	size_t n = 0;
	assert_int_equal(dd_pg_copies_list_target(&v, &n, f->tmp, &f->t), 0);
	assert_int_equal(n, 0);
	dd_pg_copies_free(v, n);
	assert_int_equal(dd_pg_journal_remove(f->tmp, &f->t), 0);
	assert_int_equal(dd_pg_journal_remove(f->tmp, &f->t), DD_NOTFOUND);
}

static void
the_working_record_keeps_its_branch(void **state)
{
	struct fixture *f = *state;
	struct dd_pg_state s;

	assert_int_equal(dd_pg_state_set_working(f->tmp, &f->t, "id", "p", "restored", NULL, "main"), 0);
	assert_int_equal(dd_pg_state_read(&s, f->tmp, CONNINFO), 0);
	assert_string_equal(s.branch, "main");
	assert_null(s.fingerprint);
	dd_pg_state_release(&s);
	/* the older setter records none */
	assert_int_equal(dd_pg_state_set(f->tmp, CONNINFO, "id", "p", "snapshot", "fp"), 0);
	assert_int_equal(dd_pg_state_read(&s, f->tmp, CONNINFO), 0);
	assert_null(s.branch);
	dd_pg_state_release(&s);
}

/* A process killed but not yet waited for by its parent (init, for a detached job) is a zombie: dead. */
static void
a_zombie_writer_counts_as_dead(void **state)
{
	struct fixture *f = *state;
	struct dd_pg_pending *p = NULL;
	size_t n = 0;
	char path[64], buf[256] = "";
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	assert_true(pid > 0);
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	for (int i = 0; i < 2000 && !strstr(buf, ") Z"); i++) {
		FILE *fp = fopen(path, "r");
		size_t k = fp ? fread(buf, 1, sizeof(buf) - 1, fp) : 0;
		buf[k] = '\0';
		if (fp)
			fclose(fp);
		usleep(1000);
	}
	assert_non_null(strstr(buf, ") Z"));
	write_pending(f, (long)pid, "work__dnadata_spare_x");
	assert_int_equal(dd_pg_state_pending_list(&p, &n, f->tmp, &f->t), 0);
	assert_int_equal(n, 1);
	assert_false(p[0].alive);
	dd_pg_pending_free(p, n);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* The watcher thread sleeps until woken: removing it does not wait for a polling tick (it was 50 ms). */
static void
interrupt_handling_ends_without_waiting(void **state)
{
	double t0 = now_ms();

	(void)state;
	for (int i = 0; i < 20; i++) {
		assert_int_equal(dd_pg_interrupt_install(), 0);
		dd_pg_interrupt_remove();
	}
	/* 20 x 50 ms before; well under a millisecond each now, so this holds on a loaded machine */
	assert_true(now_ms() - t0 < 250);
}

static void
a_signal_while_installed_is_an_interrupt(void **state)
{
	(void)state;
	assert_int_equal(dd_pg_interrupt_install(), 0);
	assert_false(dd_pg_interrupted());
	raise(SIGTERM);
	assert_true(dd_pg_interrupted());
	dd_pg_interrupt_remove();
	/* the next install starts afresh */
	assert_int_equal(dd_pg_interrupt_install(), 0);
	assert_false(dd_pg_interrupted());
	dd_pg_interrupt_remove();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(no_records_is_an_empty_state, setup, teardown),
		cmocka_unit_test_setup_teardown(pending_records_list_with_pid_and_liveness, setup, teardown),
		cmocka_unit_test_setup_teardown(a_pending_record_is_removed_once, setup, teardown),
		cmocka_unit_test_setup_teardown(records_that_are_not_pending_copies_are_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(stashes_read_oldest_first_with_names_escaped, setup, teardown),
		cmocka_unit_test_setup_teardown(verify_without_a_server_fails_and_keeps_every_record, setup, teardown),
		cmocka_unit_test_setup_teardown(copies_of_each_kind_list_by_kind_then_least_recently_used, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_copy_is_found_and_forgotten_by_name_whatever_its_kind, setup, teardown),
		cmocka_unit_test_setup_teardown(a_stash_recorded_by_an_older_version_counts_as_modified, setup, teardown),
		cmocka_unit_test_setup_teardown(dropping_what_is_not_ours_is_refused_without_a_connection, setup,
						teardown),
		cmocka_unit_test_setup_teardown(the_switch_journal_round_trips_and_is_removed_once, setup, teardown),
		cmocka_unit_test_setup_teardown(the_working_record_keeps_its_branch, setup, teardown),
		cmocka_unit_test_setup_teardown(a_zombie_writer_counts_as_dead, setup, teardown),
		cmocka_unit_test(interrupt_handling_ends_without_waiting),
		cmocka_unit_test(a_signal_while_installed_is_an_interrupt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
