/*
 * tests/unit/test-workflow.c: the cheap "is there anything to do" check that
 * the git hooks call. It must answer from two local files (the ref and the
 * record in <statedir>/pg) without PostgreSQL or the store: the profile's
 * database here is on a socket nothing listens on and no store exists, so
 * any connection or store access would turn the answer into an error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "git/ref.h"
#include "git/repo.h"
#include "pg/internal.h"
#include "pg/state.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/proc.h"
#include "workflow/internal.h"
#include "workflow/workflow.h"

#define CONNINFO "host=/nonexistent/sock port=5999 dbname=work"
#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

struct fixture {
	char tmp[64];
	char cwd[4096];
	struct dd_repo *repo;
	struct dd_config *cfg;
	const struct dd_profile *p;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char cmd[256];
	FILE *ini;

	snprintf(f->tmp, sizeof(f->tmp), "/tmp/dd-workflow.XXXXXX");
	if (!f || !mkdtemp(f->tmp) || !getcwd(f->cwd, sizeof(f->cwd)))
		return -1;
	snprintf(cmd, sizeof(cmd), "git init -q '%s' && mkdir -p '%s/.dnadata/refs' '%s/.git/dnadata'", f->tmp,
		 f->tmp, f->tmp);
	if (system(cmd) != 0 || chdir(f->tmp) < 0)
		return -1;
	if (!(ini = fopen(".dnadata/profiles.ini", "w")))
		return -1;
	fprintf(ini, "[database]\nurl = %s\ndefault_profile = clean\n[profile \"clean\"]\n", CONNINFO);
	fclose(ini);
	if (dd_config_open(&f->repo, &f->cfg) < 0 || !(f->p = dd_config_profile(f->cfg, "clean"))) {
		fprintf(stderr, "%s\n", dd_error_last());
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	dd_config_free(f->cfg);
	dd_repo_free(f->repo);
	if (chdir(f->cwd) < 0)
		return -1;
	dd_rm_rf(f->tmp);
	free(f);
	return 0;
}

static void
write_ref(const char *id)
{
	struct dd_ref *ref = dd_ref_new(id);

	assert_non_null(ref);
	assert_int_equal(dd_ref_write(".dnadata/refs/clean", ref), 0);
	dd_ref_free(ref);
}

static void
check_says_nothing_to_do_only_when_the_record_matches_the_ref(void **state)
{
	struct fixture *f = *state;
	char id[65];

	write_ref(ID_A);
	/* no record yet: the database holds nothing we know of */
	assert_int_equal(dd_workflow_check(f->repo, f->cfg, f->p, NULL, id), 0);
	assert_string_equal(id, ID_A);

	assert_int_equal(dd_pg_state_set(f->repo->statedir, CONNINFO, ID_A, "clean", "restored", NULL), 0);
	assert_int_equal(dd_workflow_check(f->repo, f->cfg, f->p, NULL, id), DD_NOTHING_TO_DO);

	/* the branch's ref names another snapshot: a restore is needed */
	write_ref(ID_B);
	assert_int_equal(dd_workflow_check(f->repo, f->cfg, f->p, NULL, id), 0);
	assert_string_equal(id, ID_B);
}

/* A switch cut short by a kill left its journal: the record may be behind the database, so it is not trusted. */
static void
check_does_not_trust_the_record_while_a_switch_was_cut_short(void **state)
{
	struct fixture *f = *state;
	struct dd_pg_target t;
	struct dd_pg_journal j = { .source = "work__dnadata_new_1", .kind = "clone", .snapshot = ID_B };

	write_ref(ID_A);
	assert_int_equal(dd_pg_state_set(f->repo->statedir, CONNINFO, ID_A, "clean", "restored", NULL), 0);
	assert_int_equal(dd_workflow_check(f->repo, f->cfg, f->p, NULL, NULL), DD_NOTHING_TO_DO);
	assert_int_equal(dd_pg_target_resolve(&t, CONNINFO), 0);
	assert_int_equal(dd_pg_journal_write(f->repo->statedir, &t, &j), 0);
	assert_int_equal(dd_workflow_check(f->repo, f->cfg, f->p, NULL, NULL), 0);
	assert_int_equal(dd_pg_journal_remove(f->repo->statedir, &t), 0);
	assert_int_equal(dd_workflow_check(f->repo, f->cfg, f->p, NULL, NULL), DD_NOTHING_TO_DO);
	dd_pg_target_release(&t);
}

static void
check_of_a_profile_without_a_snapshot_is_not_found(void **state)
{
	struct fixture *f = *state;
	char id[65] = "x";

	assert_int_equal(dd_workflow_check(f->repo, f->cfg, f->p, NULL, id), DD_NOTFOUND);
	assert_string_equal(id, "");
}

static void
check_of_a_broken_ref_is_an_error(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(dd_file_write_atomic(".dnadata/refs/clean", "not a ref\n", 10, 0644, 0), 0);
	assert_int_equal(dd_workflow_check(f->repo, f->cfg, f->p, NULL, NULL), -1);
	assert_non_null(strstr(dd_error_last(), ".dnadata/refs/clean"));
}

/* ---- the post_restore commands' environment (workflow.c) ---- */

/* No DATABASE_URL can be built (here: a malformed connection string): the inherited one must not get through. */
static void
post_restore_env_removes_an_inherited_database_url_it_cannot_replace(void **state)
{
	struct fixture *f = *state;
	const char *argv[] = { "/bin/sh", "-c", "printf %s \"${DATABASE_URL-unset}\" >&2", NULL };
	struct dd_proc_result r;
	char **env;

	setenv("DATABASE_URL", "postgresql://prod.example/live", 1);
	env = dd_workflow_post_restore_env(f->p, ID_A, "dbname='unterminated", "work");
	dd_error_clear();
	struct dd_proc proc = { .argv = argv, .env = (const char *const *)env, .out_fd = -1, .err_fd = -1 };
	assert_int_equal(dd_proc_run(&proc, "sh", &r), 0);
	assert_string_equal(dd_buf_cstr(&r.err), "unset");
	dd_proc_result_release(&r);
	dd_workflow_post_restore_env_free(env);
	unsetenv("DATABASE_URL");
}

/* ---- the record of the last post_restore run (post-restore.c) ---- */

static void
post_restore_record_round_trips_success_and_failure(void **state)
{
	struct fixture *f = *state;
	struct dd_post_restore_last in = { .snapshot = ID_A, .when = 1700000000, .total = 3 }, out;

	assert_int_equal(dd_workflow_post_restore_last(f->repo, "clean", &out), DD_NOTFOUND);
	assert_int_equal(dd_workflow_post_restore_record(f->repo, "clean", &in), 0);
	assert_int_equal(dd_workflow_post_restore_last(f->repo, "clean", &out), 0);
	assert_string_equal(out.snapshot, ID_A);
	assert_int_equal(out.when, 1700000000);
	assert_int_equal(out.total, 3);
	assert_int_equal(out.failed, 0);
	assert_null(out.command);
	dd_workflow_post_restore_last_release(&out);

	in.failed = 2;
	in.exit_status = -1;
	in.command = "echo 'a\\b'\nexit 3";
	assert_int_equal(dd_workflow_post_restore_record(f->repo, "clean", &in), 0);
	assert_int_equal(dd_workflow_post_restore_last(f->repo, "clean", &out), 0);
	assert_int_equal(out.failed, 2);
	assert_int_equal(out.exit_status, -1);
	assert_string_equal(out.command, in.command);
	dd_workflow_post_restore_last_release(&out);
	/* a name that is no profile's never becomes a path */
	assert_int_equal(dd_workflow_post_restore_last(f->repo, "../pg", &out), -1);
}

/* Every record here is refused with "path:line" or "path: what", never read into a result. */
static void
post_restore_record_refuses_hostile_files(void **state)
{
	static const char *const bad[] = {
		"",
		"dnadata-post-restore 2\n",
		"dnadata-post-restore 1\nsnapshot " ID_A "\nwhen 1\ntotal 1\nfailed 0\n",   /* no exit */
		"dnadata-post-restore 1\nsnapshot " ID_A "\nwhen 1\ntotal 1\nfailed 0\nexit 0", /* truncated */
		"dnadata-post-restore 1\nsnapshot xyz\nwhen 1\ntotal 1\nfailed 0\nexit 0\n",
		"dnadata-post-restore 1\nsnapshot " ID_A "\nwhen 1\ntotal 1\nfailed 0\nexit 256\n",
		"dnadata-post-restore 1\nsnapshot " ID_A "\nwhen -5\ntotal 1\nfailed 0\nexit 0\n",
		"dnadata-post-restore 1\nsnapshot " ID_A "\nwhen 1\ntotal 1\nfailed 2\nexit 1\ncommand x\n",
		"dnadata-post-restore 1\nsnapshot " ID_A "\nwhen 1\ntotal 1\nfailed 1\nexit 1\n",
		"dnadata-post-restore 1\nsnapshot " ID_A "\nwhen 1\ntotal 1\nfailed 0\nexit 0\ncommand x\n",
		"dnadata-post-restore 1\nsnapshot " ID_A "\nwhen 1\nwhen 2\ntotal 1\nfailed 0\nexit 0\n",
		"dnadata-post-restore 1\nsnapshot " ID_A "\nwhen 1\ntotal 1\nfailed 1\nexit 1\ncommand a\\x\n",
		"dnadata-post-restore 1\nsnapshot " ID_A "\nwhen 1\ntotal 1\nfailed 0\nexit 0\nextra 1\n",
		"dnadata-post-restore 1\nsnapshot " ID_A "\nwhen 99999999999999999999\ntotal 1\nfailed 0\nexit 0\n",
		"dnadata-post-restore 1\nsnapshot " ID_A "\nwhen 1\ntotal 1\nfailed 0\nexit +0\n",
	};
	struct fixture *f = *state;
	struct dd_post_restore_last out;
	const char *path = ".git/dnadata/post-restore/clean";

	assert_int_equal(dd_mkdir_p(".git/dnadata/post-restore", 0700), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(dd_file_write_atomic(path, bad[i], strlen(bad[i]), 0600, 0), 0);
		dd_error_clear();
		if (dd_workflow_post_restore_last(f->repo, "clean", &out) != -1)
			fail_msg("record %zu was accepted", i);
		assert_non_null(strstr(dd_error_last(), "post-restore/clean"));
		assert_null(out.snapshot);
		assert_null(out.command);
	}
	/* a NUL byte, and a file far too large */
	assert_int_equal(dd_file_write_atomic(path, "dnadata-post-restore 1\n\0", 24, 0600, 0), 0);
	assert_int_equal(dd_workflow_post_restore_last(f->repo, "clean", &out), -1);
	{
		size_t n = 70 * 1024;
		char *big = malloc(n);
		assert_non_null(big);
		memset(big, 'a', n);
		assert_int_equal(dd_file_write_atomic(path, big, n, 0600, 0), 0);
		free(big);
	}
	assert_int_equal(dd_workflow_post_restore_last(f->repo, "clean", &out), -1);
	assert_non_null(strstr(dd_error_last(), "64 KiB"));
	/* a symbolic link is not followed */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_int_equal(dd_workflow_post_restore_last(f->repo, "clean", &out), -1);
}

/* The rules' hash of profile "c" of a profiles.ini text; *n the rules that apply. */
static void
rules_hash(const char *ini, char out[65], size_t *n)
{
	struct dd_config *cfg = dd_config_new();

	assert_int_equal(dd_config_parse_text(cfg, ini, strlen(ini), "profiles.ini", 0), 0);
	dd_config_resolve(cfg);
	dd_workflow_masks_hash(dd_config_profile(cfg, "c"), out, n);
	dd_config_free(cfg);
}

/*
 * Issue 21: the rules' hash (FORMAT.md §7) ignores the rules' order, their
 * spelling and keep rules, and changes with any rule that applies and with
 * the subset keys; no rule, no hash.
 */
static void
masks_hash_is_canonical(void **state)
{
	char a[65], b[65], c[65], d[65], e[65];
	size_t n;

	(void)state;
	rules_hash("[profile \"c\"]\nmask = users.email fake_email\nmask = Users.ID hash\nmask = t.x keep\n", a, &n);
	assert_int_equal(n, 2);
	assert_int_equal(strlen(a), 64);
	rules_hash("[profile \"c\"]\nmask = users.id   HASH\nmask = users.email fake_email\n", b, &n);
	assert_string_equal(a, b);
	rules_hash("[profile \"c\"]\nmask = users.id hash\nmask = users.email fake_name\n", c, &n);
	assert_string_not_equal(a, c);
	rules_hash("[profile \"c\"]\nmask = users.id hash\nmask = users.email fake_email\nsubset = users 10%\n", d,
		   &n);
	assert_string_not_equal(a, d);
	rules_hash("[profile \"c\"]\nmask = t.x keep\n", e, &n);
	assert_int_equal(n, 0);
	assert_string_equal(e, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(check_says_nothing_to_do_only_when_the_record_matches_the_ref, setup,
						teardown),
		cmocka_unit_test_setup_teardown(check_does_not_trust_the_record_while_a_switch_was_cut_short, setup,
						teardown),
		cmocka_unit_test_setup_teardown(check_of_a_profile_without_a_snapshot_is_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(check_of_a_broken_ref_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(post_restore_env_removes_an_inherited_database_url_it_cannot_replace,
						setup, teardown),
		cmocka_unit_test_setup_teardown(post_restore_record_round_trips_success_and_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(post_restore_record_refuses_hostile_files, setup, teardown),
		cmocka_unit_test(masks_hash_is_canonical),
	};

	int rc;

	git_libgit2_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	git_libgit2_shutdown();
	return rc;
}
