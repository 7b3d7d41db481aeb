/* tests/unit/test-config.c: profiles.ini/config.ini parsing, overrides, writing back (docs/FORMAT.md §2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "config/config.h"
#include "util/buf.h"
#include "util/conninfo.h"
#include "util/err.h"
#include "util/fs.h"

static const char shared_text[] =
	"# a comment the user wrote\n"
	"[store]\n"
	"url = s3://bucket/app   ; inline comment\n"
	"\n"
	"[database]\n"
	"\turl = postgresql://localhost/app\n"
	"\tdefault_profile = clean   # why clean\n"
	"\tjobs = 4\n"
	"\n"
	"[hooks]\n"
	"post_restore = make migrate\n"
	"post_restore = ./bin/views\n"
	"\n"
	"[profile \"clean\"]\n"
	"  media = uploads\n"
	"  exclude_tables = audit.*, public.sessions\n"
	"  exclude_tables = tmp_*\n"
	"  terminate_connections = yes\n"
	"\n"
	"[profile \"customer1\"]\n"
	"database = dbname=customer1 host=/run/postgresql\n";

static struct dd_config *
parse_ok(const char *shared, const char *local)
{
	struct dd_config *cfg = dd_config_new();

	dd_error_clear();
	if (dd_config_parse_text(cfg, shared, strlen(shared), "profiles.ini", 0) < 0)
		fail_msg("profiles.ini: %s", dd_error_last());
	if (local && dd_config_parse_text(cfg, local, strlen(local), "config.ini", 1) < 0)
		fail_msg("config.ini: %s", dd_error_last());
	dd_config_resolve(cfg);
	return cfg;
}

static void
parse_bad_n(const char *text, size_t len, int local, const char *want)
{
	struct dd_config *cfg = dd_config_new();
	const char *file = local ? "config.ini" : "profiles.ini";

	dd_error_clear();
	assert_int_equal(dd_config_parse_text(cfg, text, len, file, local), -1);
	if (!dd_error_last() || strcmp(dd_error_last(), want))
		fail_msg("expected [%s], got [%s]", want, dd_error_last() ? dd_error_last() : "(none)");
	dd_config_free(cfg);
}

static void
parse_bad(const char *text, const char *want)
{
	parse_bad_n(text, strlen(text), 0, want);
}

static void
errors_never_quote_a_password(void **state)
{
	char *dir = strdup("/tmp/dd-test-config-XXXXXX"), *path;
	const char *a = "[database]\nurl: postgresql://app:s3cret@db/app\n", *b = "[database]\nurl: password=s3cret\n";

	parse_bad_n(a, strlen(a), 1,
		    "config.ini:2: expected 'key = value' or a [section] (the line is not shown: it may hold a password)");
	parse_bad_n(b, strlen(b), 1,
		    "config.ini:2: expected 'key = value' or a [section] (the line is not shown: it may hold a password)");
	/* values given on the command line (init --database/--store) */
	assert_non_null(mkdtemp(dir));
	path = dd_path_join(dir, "profiles.ini");
	assert_int_equal(dd_config_write_initial(path, NULL, "postgresql://app:s3cret@db/app #1", "main"), -1);
	if (strstr(dd_error_last(), "s3cret") || !strstr(dd_error_last(), "app:***@db"))
		fail_msg("password shown or nothing shown: [%s]", dd_error_last());
	assert_int_equal(dd_config_write_initial(path, NULL, "host=db password=s3cret ;x", "main"), -1);
	if (strstr(dd_error_last(), "s3cret"))
		fail_msg("password shown: [%s]", dd_error_last());
	assert_int_equal(dd_config_write_initial(path, "https://key:s3cret@host/x", NULL, "main"), -1);
	if (strstr(dd_error_last(), "s3cret"))
		fail_msg("password shown: [%s]", dd_error_last());
	assert_false(dd_path_exists(path));
	dd_rm_rf(dir);
	free(path);
	free(dir);
}

static void
full_file_parses_every_key(void **state)
{
	struct dd_config *cfg = parse_ok(shared_text, NULL);
	const struct dd_profile *clean, *c1;

	assert_string_equal(cfg->store_url, "s3://bucket/app");
	assert_string_equal(cfg->database, "postgresql://localhost/app");
	assert_string_equal(cfg->default_profile, "clean");
	assert_int_equal(cfg->jobs, 4);
	assert_string_equal(cfg->post_restore[0], "make migrate");
	assert_string_equal(cfg->post_restore[1], "./bin/views");
	assert_null(cfg->post_restore[2]);
	assert_int_equal(cfg->nprofiles, 2);
	clean = dd_config_profile(cfg, "clean");
	assert_non_null(clean);
	assert_string_equal(clean->media, "uploads");
	assert_string_equal(clean->exclude_tables[0], "audit.*");
	assert_string_equal(clean->exclude_tables[1], "public.sessions");
	assert_string_equal(clean->exclude_tables[2], "tmp_*");
	assert_null(clean->exclude_tables[3]);
	assert_int_equal(clean->terminate_connections, 1);
	c1 = dd_config_profile(cfg, "customer1");
	assert_int_equal(c1->terminate_connections, -1);
	assert_null(c1->media);
	assert_string_equal(dd_config_database(cfg, c1), "dbname=customer1 host=/run/postgresql");
	assert_string_equal(dd_config_database(cfg, clean), "postgresql://localhost/app");
	/* the active profile falls back to default_profile */
	assert_string_equal(cfg->active_profile, "clean");
	assert_string_equal(cfg->active_source, "default_profile");
	dd_config_free(cfg);
}

static void
errors_name_file_and_line(void **state)
{
	parse_bad("[store]\nurl = file:///x\nurll = y\n",
		  "profiles.ini:3: unknown key 'urll' in [store] (did you mean 'url'?)");
	parse_bad("[store]\nmedia = x\n", "profiles.ini:2: unknown key 'media' in [store] (it belongs in [profile \"NAME\"])");
	parse_bad("# c\n[stores]\n", "profiles.ini:2: unknown section [stores] (did you mean [store]?)");
	parse_bad("[profile clean]\n", "profiles.ini:1: write a profile section as [profile \"NAME\"]");
	parse_bad("[profile \"a b\"]\n",
		  "profiles.ini:1: invalid profile name 'a b': use letters, digits, '-' and '_', starting with a letter or digit");
	parse_bad("[store\n", "profiles.ini:1: section header without a closing ']'");
	parse_bad("[store] x\n", "profiles.ini:1: unexpected text after ']'");
	parse_bad("url = x\n", "profiles.ini:1: 'url' is outside any section (put it under [store], [database], [hooks] or "
			       "[profile \"NAME\"])");
	parse_bad("[store]\njust words\n", "profiles.ini:2: expected 'key = value' or a [section], found 'just words'");
	parse_bad("[store]\nurl: file:///x\n", "profiles.ini:2: expected 'key = value' or a [section], found 'url: file:///x'");
	parse_bad("[store]\n= x\n", "profiles.ini:2: missing key name before '='");
	parse_bad("[store]\nurl = http://x\n", "profiles.ini:2: store url 'http://x' must start with file:// or s3://");
	parse_bad("[database]\njobs = many\n",
		  "profiles.ini:2: 'jobs' must be a number from 0 (one per CPU core) to 1024, not 'many'");
	parse_bad("[database]\nterminate_connections = maybe\n",
		  "profiles.ini:2: 'terminate_connections' must be true or false, not 'maybe'");
	parse_bad("[database]\nurl = a\n\n[database]\nurl = b\n",
		  "profiles.ini:5: duplicate key 'url' in [database] (first set on line 2)");
	parse_bad("[profile \"a\"]\n[profile \"b\"]\n[profile \"a\"]\n",
		  "profiles.ini:3: profile 'a' is defined twice (first on line 1)");
	parse_bad("[database]\ndefault_profile = nope\n[profile \"a\"]\n",
		  "profiles.ini:2: default_profile 'nope' is not a profile defined in this file");
	parse_bad("[database]\nactive_profile = a\n",
		  "profiles.ini:2: 'active_profile' is chosen per clone with 'git dnadata use NAME', not in profiles.ini");
	parse_bad("[database]\nworktree_database = wt\n",
		  "profiles.ini:2: 'worktree_database' is set in a linked worktree's own config file, with 'git dnadata use "
		  "NAME --worktree-database DB' run there, not in profiles.ini");
	parse_bad("[profile \"a\"]\nexclude_tables = ,\n", "profiles.ini:2: 'exclude_tables' needs at least one table pattern");
	parse_bad("[store]\n<<<<<<< HEAD\nurl = s3://a/b\n=======\n", "profiles.ini:2: unresolved merge conflict marker");
	assert_non_null(dd_error_hint());
	/* only the first error is reported */
	parse_bad("[x]\n[y]\n", "profiles.ini:1: unknown section [x] (expected [store], [database], [hooks] or [profile \"NAME\"])");
}

static void
hostile_bytes_are_errors(void **state)
{
	static const char nul[] = "[store]\nurl = s3://a\0b\n";
	struct dd_buf b = DD_BUF_INIT;

	parse_bad_n(nul, sizeof(nul) - 1, 0, "profiles.ini:2: NUL byte (is this a text file?)");
	parse_bad("[store]\nurl = s3://\xff\n", "profiles.ini:2: the value of 'url' is not valid UTF-8");
	parse_bad("[store]\nurl = s3://a\x01z\n", "profiles.ini:2: control character in the value of 'url'");
	dd_buf_puts(&b, "[database]\nurl = ");
	for (int i = 0; i < 300; i++)
		dd_buf_putc(&b, 'x');
	dd_buf_puts(&b, "\njobs = 1\n");
	parse_bad(b.ptr, "profiles.ini:2: line too long (306 characters; at most 198)");
	dd_buf_release(&b);
}

static void
indentation_crlf_bom_and_comments_are_accepted(void **state)
{
	struct dd_config *cfg = parse_ok("\xef\xbb\xbf[database]\r\n    url = dbname=x\r\n    jobs = 2\r\n"
					 "; comment\r\n# comment\r\n[profile \"p\"]  # trailing\r\n", NULL);

	assert_string_equal(cfg->database, "dbname=x");
	assert_int_equal(cfg->jobs, 2);
	assert_int_equal(cfg->nprofiles, 1);
	/* a single profile is active without default_profile */
	assert_string_equal(cfg->active_profile, "p");
	assert_string_equal(cfg->active_source, "only profile");
	dd_config_free(cfg);
}

static void
long_profile_names_survive_inih_section_limit(void **state)
{
	const char *name = "a234567890123456789012345678901234567890123456789012345678901234"; /* 64 */
	char text[200];
	struct dd_config *cfg;

	snprintf(text, sizeof(text), "[profile \"%s\"]\nmedia = m\n", name);
	cfg = parse_ok(text, NULL);
	assert_int_equal(cfg->nprofiles, 1);
	assert_string_equal(cfg->profiles[0].name, name);
	assert_string_equal(cfg->profiles[0].media, "m");
	dd_config_free(cfg);
	snprintf(text, sizeof(text), "[profile \"%sx\"]\n", name);
	parse_bad(text, "profiles.ini:1: profile name 'a2345678901234567890...' is too long (at most 64 characters)");
}

static void
overrides_apply_in_order(void **state)
{
	const char *local = "[store]\nurl = file:///srv/dd\n[database]\nurl = dbname=mine\nactive_profile = customer1\n"
			    "[profile \"customer1\"]\ndatabase = dbname=c1local\n[profile \"gone\"]\nmedia = x\n"
			    "[hooks]\npost_restore = true\n";
	struct dd_config *cfg;

	unsetenv("DNADATA_STORE");
	unsetenv("DNADATA_DATABASE");
	unsetenv("DNADATA_PROFILE");
	cfg = parse_ok(shared_text, local);
	/* config.ini wins over profiles.ini */
	assert_string_equal(cfg->store_url, "file:///srv/dd");
	assert_string_equal(cfg->store_source, "config.ini");
	assert_string_equal(cfg->database, "dbname=mine");
	assert_string_equal(cfg->active_profile, "customer1");
	assert_string_equal(cfg->active_source, "config.ini");
	assert_string_equal(dd_config_database(cfg, dd_config_profile(cfg, "customer1")), "dbname=c1local");
	/* a list set in config.ini replaces the shared one */
	assert_string_equal(cfg->post_restore[0], "true");
	assert_null(cfg->post_restore[1]);
	/* a section for a profile this branch lacks is ignored, not an error */
	assert_int_equal(cfg->nprofiles, 2);
	dd_config_free(cfg);

	/* the environment wins over both files */
	setenv("DNADATA_STORE", "s3://env/x", 1);
	setenv("DNADATA_DATABASE", "dbname=env", 1);
	setenv("DNADATA_PROFILE", "clean", 1);
	cfg = parse_ok(shared_text, local);
	assert_string_equal(cfg->store_url, "s3://env/x");
	assert_string_equal(cfg->store_source, "DNADATA_STORE");
	assert_string_equal(cfg->active_profile, "clean");
	assert_string_equal(cfg->active_source, "DNADATA_PROFILE");
	assert_string_equal(dd_config_database(cfg, dd_config_profile(cfg, "customer1")), "dbname=env");
	/* and command-line flags win over the environment */
	dd_config_override_database(cfg, "dbname=flag");
	dd_config_override_store(cfg, "file:///flag");
	assert_string_equal(dd_config_database(cfg, NULL), "dbname=flag");
	assert_string_equal(cfg->store_url, "file:///flag");
	dd_config_free(cfg);
	unsetenv("DNADATA_STORE");
	unsetenv("DNADATA_DATABASE");
	unsetenv("DNADATA_PROFILE");
}

static void
local_only_and_shared_only_keys_are_enforced(void **state)
{
	const char *local = "[database]\ndefault_profile = clean\n";

	parse_bad_n(local, strlen(local), 1, "config.ini:2: 'default_profile' can only be set in .dnadata/profiles.ini");
}

/* worktree_database only from a linked worktree's own file: in config.ini every worktree would share it */
static void
worktree_database_only_in_a_worktrees_own_file(void **state)
{
	const char *wt = "[database]\nworktree_database = wt\n";
	struct dd_config *cfg = parse_ok(shared_text, NULL);

	(void)state;
	parse_bad_n(wt, strlen(wt), DD_CONFIG_FILE_LOCAL,
		    "config.ini:2: 'worktree_database' is set in a linked worktree's own config file, with 'git dnadata "
		    "use NAME --worktree-database DB' run there, not in config.ini");
	assert_int_equal(dd_config_parse_text(cfg, wt, strlen(wt), "wt/config.ini", DD_CONFIG_FILE_WORKTREE), 0);
	assert_string_equal(cfg->worktree_database, "wt");
	dd_config_free(cfg);
}

static void
profile_lookup_suggests_the_closest_name(void **state)
{
	struct dd_config *cfg = parse_ok(shared_text, NULL);

	assert_null(dd_config_profile(cfg, "custmer1"));
	assert_string_equal(dd_error_last(), "no profile 'custmer1' in profiles.ini (did you mean 'customer1'?)");
	dd_config_free(cfg);
	cfg = parse_ok("[profile \"a\"]\n[profile \"b\"]\n", NULL);
	assert_null(cfg->active_profile);
	assert_null(dd_config_profile(cfg, NULL));
	assert_non_null(strstr(dd_error_last(), "no active profile"));
	dd_config_free(cfg);
}

static void
profile_names_are_checked(void **state)
{
	assert_true(dd_profile_name_valid("clean"));
	assert_true(dd_profile_name_valid("customer-1_b"));
	assert_true(dd_profile_name_valid("9lives"));
	assert_false(dd_profile_name_valid(""));
	assert_false(dd_profile_name_valid("-x"));
	assert_false(dd_profile_name_valid("_x"));
	assert_false(dd_profile_name_valid("a b"));
	assert_false(dd_profile_name_valid("a/b"));
	assert_false(dd_profile_name_valid("caf\xc3\xa9"));
	assert_false(dd_profile_name_valid(".."));
	assert_int_equal(dd_profile_name_check("a.b"), -1);
	assert_non_null(strstr(dd_error_last(), "invalid profile name 'a.b'"));
}

static void
redact_hides_passwords_only(void **state)
{
	static const char *const cases[][2] = {
		{ "postgresql://alice:s3cret@db:5432/app?sslmode=require", "postgresql://alice:***@db:5432/app?sslmode=require" },
		{ "postgresql://alice@db/app", "postgresql://alice@db/app" },
		{ "postgres://db/app?user=a&password=x%20y&sslmode=disable", "postgres://db/app?user=a&password=***&sslmode=disable" },
		{ "host=db password=hunter2 dbname=app", "host=db password=*** dbname=app" },
		{ "host=db password = 'it\\'s a secret' dbname=app", "host=db password = *** dbname=app" },
		{ "dbname=app", "dbname=app" },
		{ "", "" },
		{ "s3://bucket/prefix", "s3://bucket/prefix" },
		/* what libpq reads as a password, whatever the spelling */
		{ "host=db sslpassword=k3y dbname=app", "host=db sslpassword=*** dbname=app" },
		{ "postgresql://db/app?sslpassword=k3y", "postgresql://db/app?sslpassword=***" },
		{ "host=db password=a\\ b", "host=db password=***" },
		/* what libpq cannot parse may hold a password anywhere */
		{ "host=db password=abc def", "***" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *r = dd_config_redact(cases[i][0]);
		assert_string_equal(r, cases[i][1]);
		free(r);
	}
}

static void
profile_names_differing_only_in_case_are_refused(void **state)
{
	parse_bad("[profile \"clean\"]\nmedia = a\n\n[profile \"CLEAN\"]\nmedia = b\n",
		  "profiles.ini:4: profile 'CLEAN' differs from 'clean' (line 1) only in case; rename one (each names a "
		  "ref file, and they would be one file on case-insensitive file systems)");
	/* the exact duplicate keeps its own message */
	parse_bad("[profile \"clean\"]\n[profile \"clean\"]\n", "profiles.ini:2: profile 'clean' is defined twice (first on line 1)");
}

static void
store_remote_settings_parse_override_and_check(void **state)
{
	struct dd_config *cfg = parse_ok(shared_text, NULL);
	const char *shared = "[store]\nurl = s3://b/p\nendpoint = http://127.0.0.1:7480\nregion = eu-west-1\n"
			     "path_style = true\ntransfers = 16\npart_size = 64M\nretries = 3\n";
	const char *local = "[store]\nregion = us-east-2\npart_size = 8388608\ntransfers = 2\n";

	(void)state;
	/* unset: the store layer's defaults */
	assert_null(cfg->store_endpoint);
	assert_null(cfg->store_region);
	assert_int_equal(cfg->store_path_style, -1);
	assert_int_equal(cfg->store_transfers, 0);
	assert_true(cfg->store_part_size == 0);
	assert_int_equal(cfg->store_retries, -1);
	dd_config_free(cfg);
	cfg = parse_ok(shared, NULL);
	assert_string_equal(cfg->store_endpoint, "http://127.0.0.1:7480");
	assert_string_equal(cfg->store_region, "eu-west-1");
	assert_int_equal(cfg->store_path_style, 1);
	assert_int_equal(cfg->store_transfers, 16);
	assert_true(cfg->store_part_size == 64LL << 20);
	assert_int_equal(cfg->store_retries, 3);
	dd_config_free(cfg);
	/* config.ini overrides each key it sets */
	cfg = parse_ok(shared, local);
	assert_string_equal(cfg->store_region, "us-east-2");
	assert_string_equal(cfg->store_endpoint, "http://127.0.0.1:7480");
	assert_true(cfg->store_part_size == 8LL << 20);
	assert_int_equal(cfg->store_transfers, 2);
	dd_config_free(cfg);
	assert_true((cfg = parse_ok("[store]\npart_size = 5GiB\n", NULL))->store_part_size == 5LL << 30);
	dd_config_free(cfg);
	assert_true((cfg = parse_ok("[store]\npart_size = 6144k\n", NULL))->store_part_size == 6LL << 20);
	dd_config_free(cfg);
	parse_bad("[store]\nendpoint = 127.0.0.1:7480\n",
		  "profiles.ini:2: endpoint '127.0.0.1:7480' must start with http:// or https://");
	parse_bad("[store]\nendpoint = https://AKIA:secret@s3.example.com\n",
		  "profiles.ini:2: endpoint must not carry credentials (use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
		  "~/.aws/credentials)");
	/* refused for its '@' before anything else is said about it, so the value is never shown */
	parse_bad("[store]\nendpoint = ftp://AKIA:secret@s3.example.com\n",
		  "profiles.ini:2: endpoint must not carry credentials (use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
		  "~/.aws/credentials)");
	parse_bad("[store]\nurl = s3://AKIA:secret@bucket/p\n",
		  "profiles.ini:2: store url must not carry credentials (write s3://bucket/prefix; use AWS_ACCESS_KEY_ID and "
		  "AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials)");
	parse_bad("[store]\ntransfers = 0\n",
		  "profiles.ini:2: 'transfers' must be a number of parallel requests from 1 to 64, not '0'");
	parse_bad("[store]\nretries = 31\n", "profiles.ini:2: 'retries' must be a number of retries from 0 to 30, not '31'");
	parse_bad("[store]\npart_size = 4M\n", "profiles.ini:2: 'part_size' must be a size from 5M to 5G (e.g. 64M), not '4M'");
	parse_bad("[store]\npart_size = 6G\n", "profiles.ini:2: 'part_size' must be a size from 5M to 5G (e.g. 64M), not '6G'");
	parse_bad("[store]\npart_size = 64 M\n", "profiles.ini:2: 'part_size' must be a size from 5M to 5G (e.g. 64M), not '64 M'");
	parse_bad("[store]\npart_size = 99999999999999999999\n",
		  "profiles.ini:2: 'part_size' must be a size from 5M to 5G (e.g. 64M), not '99999999999999999999'");
	parse_bad("[store]\npath_style = maybe\n", "profiles.ini:2: 'path_style' must be true or false, not 'maybe'");
}

static void
cache_budget_and_stash_keep_default_override_and_check(void **state)
{
	struct dd_config *cfg = parse_ok(shared_text, NULL);
	const char *shared = "[database]\ncache_budget = 20G\nstash_keep = 3\n";

	(void)state;
	/* unset: 10 GiB and 5 stashes */
	assert_true(cfg->cache_budget == 10LL << 30);
	assert_int_equal(cfg->stash_keep, 5);
	dd_config_free(cfg);
	cfg = parse_ok(shared, NULL);
	assert_true(cfg->cache_budget == 20LL << 30);
	assert_int_equal(cfg->stash_keep, 3);
	dd_config_free(cfg);
	/* a disk budget is the machine's: config.ini overrides it */
	cfg = parse_ok(shared, "[database]\ncache_budget = 512M\nstash_keep = 0\n");
	assert_true(cfg->cache_budget == 512LL << 20);
	assert_int_equal(cfg->stash_keep, 0);
	dd_config_free(cfg);
	assert_true((cfg = parse_ok("[database]\ncache_budget = 2TiB\n", NULL))->cache_budget == 2LL << 40);
	dd_config_free(cfg);
	assert_true((cfg = parse_ok("[database]\ncache_budget = 0\n", NULL))->cache_budget == 0);
	dd_config_free(cfg);
	assert_true((cfg = parse_ok("[database]\ncache_budget = 1000\n", NULL))->cache_budget == 1000);
	dd_config_free(cfg);
	parse_bad("[database]\ncache_budget = 10%\n",
		  "profiles.ini:2: 'cache_budget' must be a size in bytes with an optional K, M, G or T suffix, up to "
		  "1024T (e.g. 10G), not '10%'");
	parse_bad("[database]\ncache_budget = 2000T\n",
		  "profiles.ini:2: 'cache_budget' must be a size in bytes with an optional K, M, G or T suffix, up to "
		  "1024T (e.g. 10G), not '2000T'");
	parse_bad("[database]\ncache_budget = -1\n",
		  "profiles.ini:2: 'cache_budget' must be a size in bytes with an optional K, M, G or T suffix, up to "
		  "1024T (e.g. 10G), not '-1'");
	parse_bad("[database]\nstash_keep = many\n",
		  "profiles.ini:2: 'stash_keep' must be a number of stashes from 0 to 1000, not 'many'");
	parse_bad("[database]\nstash_keep = 1001\n",
		  "profiles.ini:2: 'stash_keep' must be a number of stashes from 0 to 1000, not '1001'");
	parse_bad("[profile \"a\"]\nstash_keep = 2\n",
		  "profiles.ini:2: unknown key 'stash_keep' in [profile \"a\"] (it belongs in [database])");
}

static void
spares_default_override_environment_and_check(void **state)
{
	struct dd_config *cfg;

	(void)state;
	unsetenv("DNADATA_SPARES");
	/* unset: 2 */
	cfg = parse_ok(shared_text, NULL);
	assert_int_equal(cfg->spares, -1);
	assert_int_equal(dd_config_spares(cfg), 2);
	dd_config_free(cfg);
	cfg = parse_ok("[database]\nspares = 5\n", "[database]\nspares = 0\n");
	assert_int_equal(dd_config_spares(cfg), 0);
	/* DNADATA_SPARES over both; a value out of range is ignored */
	setenv("DNADATA_SPARES", "3", 1);
	assert_int_equal(dd_config_spares(cfg), 3);
	setenv("DNADATA_SPARES", "17", 1);
	assert_int_equal(dd_config_spares(cfg), 0);
	setenv("DNADATA_SPARES", "two", 1);
	assert_int_equal(dd_config_spares(cfg), 0);
	unsetenv("DNADATA_SPARES");
	dd_config_free(cfg);
	parse_bad("[database]\nspares = 17\n",
		  "profiles.ini:2: 'spares' must be a number of spare databases from 0 to 16, not '17'");
	parse_bad("[database]\nspares = -1\n",
		  "profiles.ini:2: 'spares' must be a number of spare databases from 0 to 16, not '-1'");
}

static void
lock_wait_timeout_defaults_overrides_and_checks(void **state)
{
	struct dd_config *cfg = parse_ok(shared_text, NULL);
	const char *shared = "[database]\nlock_wait_timeout = 120\n[profile \"a\"]\n[profile \"b\"]\nlock_wait_timeout = 5\n";
	const char *local = "[database]\nlock_wait_timeout = 60\n[profile \"b\"]\nlock_wait_timeout = 7\n";

	/* unset anywhere: 30 seconds */
	assert_int_equal(cfg->lock_wait_timeout, 30);
	assert_int_equal(dd_config_profile(cfg, "clean")->lock_wait_timeout, 0);
	assert_int_equal(dd_config_lock_wait_timeout(cfg, dd_config_profile(cfg, "clean")), 30);
	assert_int_equal(dd_config_lock_wait_timeout(cfg, NULL), 30);
	dd_config_free(cfg);
	/* [database] is the default, a profile's own value wins */
	cfg = parse_ok(shared, NULL);
	assert_int_equal(dd_config_lock_wait_timeout(cfg, dd_config_profile(cfg, "a")), 120);
	assert_int_equal(dd_config_lock_wait_timeout(cfg, dd_config_profile(cfg, "b")), 5);
	dd_config_free(cfg);
	/* config.ini overrides each */
	cfg = parse_ok(shared, local);
	assert_int_equal(dd_config_lock_wait_timeout(cfg, dd_config_profile(cfg, "a")), 60);
	assert_int_equal(dd_config_lock_wait_timeout(cfg, dd_config_profile(cfg, "b")), 7);
	dd_config_free(cfg);
	/* a positive whole number of seconds, else file:line */
	parse_bad("[database]\nlock_wait_timeout = 0\n",
		  "profiles.ini:2: 'lock_wait_timeout' must be a whole number of seconds from 1 to 86400, not '0'");
	parse_bad("[profile \"a\"]\n\nlock_wait_timeout = 10s\n",
		  "profiles.ini:3: 'lock_wait_timeout' must be a whole number of seconds from 1 to 86400, not '10s'");
	parse_bad("[database]\nlock_wait_timeout = -3\n",
		  "profiles.ini:2: 'lock_wait_timeout' must be a whole number of seconds from 1 to 86400, not '-3'");
	parse_bad("[database]\nlock_wait_timeout = 86401\n",
		  "profiles.ini:2: 'lock_wait_timeout' must be a whole number of seconds from 1 to 86400, not '86401'");
	parse_bad_n("[database]\nlock_wait_timeout =\n", strlen("[database]\nlock_wait_timeout =\n"), 1,
		    "config.ini:2: 'lock_wait_timeout' must be a whole number of seconds from 1 to 86400, not ''");
}

static void
missing_profile_hint_suggests_new_profile_only_for_a_valid_name(void **state)
{
	struct dd_config *cfg = parse_ok(shared_text, NULL);

	assert_null(dd_config_profile(cfg, "staging"));
	assert_string_equal(dd_error_hint(), "'git dnadata status' lists the profiles; 'git dnadata new-profile staging' adds one");
	assert_null(dd_config_profile(cfg, "../../etc"));
	assert_string_equal(dd_error_last(), "no profile '../../etc' in profiles.ini");
	assert_string_equal(dd_error_hint(), "a profile name has letters, digits, '-' and '_', starting with a letter or "
					     "digit; the profiles are: clean, customer1");
	/* another spelling of an existing name: new-profile would refuse it */
	assert_null(dd_config_profile(cfg, "Customer1"));
	assert_string_equal(dd_error_hint(), "profile names are case-sensitive: this one is called 'customer1'");
	dd_config_free(cfg);
	cfg = parse_ok("", NULL);
	assert_null(dd_config_profile(cfg, "a b"));
	assert_null(strstr(dd_error_hint(), "new-profile a b"));
	dd_config_free(cfg);
}

/* ---- util/conninfo: libpq's parser decides what is a password ---- */

static void
assert_redacted(const char *in, const char *want)
{
	char *r = dd_conninfo_redact(in);

	if (!r)
		fail_msg("[%s] did not parse: %s", in, dd_error_last());
	if (strcmp(r, want))
		fail_msg("[%s]: expected [%s], got [%s]", in, want, r);
	free(r);
}

static void
conninfo_redact_masks_every_secret_and_keeps_the_rest(void **state)
{
	/* URIs: user:password@, query parameters, percent-encoding */
	assert_redacted("postgresql://alice:s3cret@db:5432/app?sslmode=require",
			"postgresql://alice:***@db:5432/app?sslmode=require");
	assert_redacted("postgres://alice:p%40ss%2Fw0rd@db/app", "postgres://alice:***@db/app");
	assert_redacted("postgresql://db/app?sslpassword=k3y&application_name=x%20y",
			"postgresql://db/app?sslpassword=***&application_name=x%20y");
	assert_redacted("postgresql://db/app?pass%77ord=hidden", "postgresql://db/app?pass%77ord=***");
	assert_redacted("postgresql://u:a:b@h/d?password=c", "postgresql://u:***@h/d?password=***");
	assert_redacted("postgresql://u:@h/d", "postgresql://u:@h/d");
	assert_redacted("postgresql://h1:5432,h2:5433/app?target_session_attrs=any",
			"postgresql://h1:5432,h2:5433/app?target_session_attrs=any");
	/* keyword=value: quoted values with blanks and escapes, unquoted escapes, sslpassword */
	assert_redacted("host=db password='a b \\' c' dbname=app", "host=db password=*** dbname=app");
	assert_redacted("host=db  password = hunter2\tsslpassword=k\\ ey dbname='my app'",
			"host=db  password = ***\tsslpassword=*** dbname='my app'");
	assert_redacted("password=x password=y", "password=*** password=***");
	assert_redacted("password='' host=db", "password='' host=db");
	/* corners found by fuzzing against libpq's reading */
	assert_redacted("password='x'user=me", "password=*** user=me");
	assert_redacted("host=db sslpassword=\\", "host=db sslpassword=\\");
	assert_redacted("postgresql://a?b:@h/d?password=p", "postgresql://a?b:@h/d?password=***");
	assert_redacted("dbname=app", "dbname=app");
	assert_redacted("", "");
	/* without '=' and not a URI, libpq takes the whole string as a database name */
	assert_redacted("myapp", "myapp");
	assert_int_equal(dd_conninfo_has_secret("myapp"), 0);
	assert_int_equal(dd_conninfo_has_secret("host=db sslpassword=x"), 1);
	assert_int_equal(dd_conninfo_has_secret("postgresql://u:x@db"), 1);
	assert_int_equal(dd_conninfo_has_secret("postgresql://u@db?sslmode=disable"), 0);
}

static void
conninfo_errors_never_quote_the_string(void **state)
{
	static const char *const bad[] = {
		"host=db password=abc defghi",           /* an unquoted password with a blank */
		"host=db password='defghi",              /* unterminated quote */
		"postgresql://u:defghi@[::1/app",        /* libpq quotes the whole URI here */
		"postgresql://u:defghi@db/app?bogus=defghi",
		"host=db passwrd=defghi",
		"postgresql://u:defghi@db/app?password=%zz",
		"host=db password=abc\"x defghi\"y",    /* quotes in the password do not fool the elision */
		"host=db password=abc d",                 /* not even one character */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dd_error_clear();
		assert_null(dd_conninfo_redact(bad[i]));
		assert_non_null(dd_error_last());
		assert_non_null(strstr(dd_error_last(), "malformed connection string"));
		if (strstr(dd_error_last(), "defghi") || strstr(dd_error_last(), "\"d\""))
			fail_msg("[%s]: the error shows the password: %s", bad[i], dd_error_last());
		assert_null(dd_conninfo_strip_secrets(bad[i]));
		assert_null(strstr(dd_error_last(), "defghi"));
		assert_int_equal(dd_conninfo_has_secret(bad[i]), -1);
		assert_null(strstr(dd_error_last(), "defghi"));
		/* the display helper hides what it cannot parse when it may hold a password */
		char *r = dd_config_redact(bad[i]);
		assert_null(strstr(r, "defghi"));
		free(r);
	}
	/* a word libpq knows is still named */
	dd_error_clear();
	assert_null(dd_conninfo_redact("host=db passwrd=x"));
	assert_string_equal(dd_error_last(), "malformed connection string: invalid connection option \"...\"");
}

/* DATABASE_URL for post_restore commands: resolved parts, other keywords in the query, never a secret. */
static void
conninfo_url_has_no_secret_and_encodes_what_it_holds(void **state)
{
	char *pw = NULL, *u;

	u = dd_conninfo_url("postgresql://alice:s3cr%40t@db:5433/app?sslmode=require&sslpassword=k", "db", "5433",
			    "alice", "app", &pw);
	assert_string_equal(u, "postgresql://alice@db:5433/app?sslmode=require");
	assert_string_equal(pw, "s3cr@t");
	free(u);
	free(pw);
	/* a socket directory goes in the query; odd characters are percent-encoded */
	u = dd_conninfo_url("host=/run/pg dbname='my app' user=b@b password=x application_name='a&b'", "/run/pg",
			    "5432", "b@b", "my app", NULL);
	assert_string_equal(u, "postgresql://b%40b@/my%20app?host=%2Frun%2Fpg&port=5432&application_name=a%26b");
	free(u);
	/* a host list too */
	u = dd_conninfo_url("host=h1,h2 port=5432,5433", "h1,h2", "5432,5433", "u", "d", &pw);
	assert_string_equal(u, "postgresql://u@/d?host=h1%2Ch2&port=5432%2C5433");
	assert_null(pw);
	free(u);
	/* a service: the resolved defaults would override its file's settings, so only what is written */
	u = dd_conninfo_url("service=myapp dbname=shop", "/run/pg", "5432", "me", "shop", NULL);
	assert_string_equal(u, "postgresql:///shop?service=myapp");
	free(u);
	/* nothing known: libpq's defaults */
	u = dd_conninfo_url("", NULL, NULL, NULL, NULL, NULL);
	assert_string_equal(u, "postgresql:///");
	free(u);
	dd_error_clear();
	assert_null(dd_conninfo_url("host=db password=abc defghi", "db", NULL, NULL, NULL, &pw));
	assert_null(pw);
	assert_null(strstr(dd_error_last(), "defghi"));
}

static void
conninfo_with_dbname_keeps_everything_but_the_database(void **state)
{
	char *c = dd_conninfo_with_dbname("postgresql://alice:pw@db:5433/app?sslmode=disable", "scratch");
	PQconninfoOption *o = PQconninfoParse(c, NULL);
	int seen = 0;

	assert_non_null(o);
	for (PQconninfoOption *x = o; x->keyword; x++) {
		if (!x->val)
			continue;
		if (!strcmp(x->keyword, "dbname"))
			assert_string_equal(x->val, "scratch"), seen++;
		if (!strcmp(x->keyword, "password"))
			assert_string_equal(x->val, "pw"), seen++;
		if (!strcmp(x->keyword, "port"))
			assert_string_equal(x->val, "5433"), seen++;
		if (!strcmp(x->keyword, "sslmode"))
			assert_string_equal(x->val, "disable"), seen++;
	}
	assert_int_equal(seen, 4);
	PQconninfoFree(o);
	free(c);
	c = dd_conninfo_with_dbname("app", "it's");
	assert_string_equal(c, "dbname='it\\'s'");
	free(c);
}

static void
conninfo_strip_secrets_connects_without_them(void **state)
{
	char *s = dd_conninfo_strip_secrets("postgresql://me:pw@db:5433/app?sslpassword=k&sslmode=require");

	assert_string_equal(s, "user='me' dbname='app' host='db' port='5433' sslmode='require'");
	free(s);
	s = dd_conninfo_strip_secrets("host=db password='it\\'s' dbname='a \\'b'");
	assert_string_equal(s, "dbname='a \\'b' host='db'");
	free(s);
	s = dd_conninfo_strip_secrets("password=only");
	assert_string_equal(s, "");
	free(s);
	/* a string that is not a connection string is a database name, as libpq reads it */
	s = dd_conninfo_strip_secrets("myapp");
	assert_string_equal(s, "dbname='myapp'");
	free(s);
}

/* ---- writing, against real files ---- */

static char tmpdir[64];

static int
mk_tmp(void **state)
{
	strcpy(tmpdir, "/tmp/dd-test-config.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
rm_tmp(void **state)
{
	return dd_rm_rf(tmpdir);
}

static char *
slurp(const char *path)
{
	struct dd_buf b = DD_BUF_INIT;

	assert_int_equal(dd_file_read(&b, path), 0);
	return dd_buf_detach(&b, NULL);
}

static void
initial_file_reads_back_and_is_never_overwritten(void **state)
{
	char *p = dd_path_join(tmpdir, "d/profiles.ini"), *l = dd_path_join(tmpdir, "state/config.ini");
	struct dd_config *cfg = NULL;
	struct stat st;

	assert_int_equal(dd_config_write_initial(p, "file:///srv/x", "dbname=app", "demo"), 0);
	assert_int_equal(dd_config_write_initial(p, NULL, NULL, "other"), DD_EXISTS);
	assert_int_equal(dd_config_write_local_initial(l), DD_OK);
	assert_int_equal(dd_config_write_local_initial(l), DD_EXISTS);
	assert_int_equal(unlink(l), 0);
	assert_int_equal(dd_config_write_local_initial(l), 0);
	assert_int_equal(stat(l, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(dd_config_load_files(&cfg, p, "profiles.ini", l, "config.ini"), 0);
	assert_string_equal(cfg->store_url, "file:///srv/x");
	assert_string_equal(cfg->database, "dbname=app");
	assert_string_equal(cfg->default_profile, "demo");
	assert_int_equal(cfg->nprofiles, 1);
	assert_string_equal(cfg->profiles[0].name, "demo");
	dd_config_free(cfg);
	/* values that would not read back are refused */
	assert_int_equal(dd_config_write_initial(p, NULL, "dbname=a ;b", "x"), -1);
	assert_int_equal(dd_config_write_initial(p, NULL, "line\nbreak", "x"), -1);
	assert_int_equal(dd_config_write_initial(p, "http://x", NULL, "x"), -1);
	free(p);
	free(l);
}

static void
add_profile_appends_and_keeps_comments(void **state)
{
	char *p = dd_path_join(tmpdir, "profiles.ini"), *l = dd_path_join(tmpdir, "config.ini"), *text;
	const char *local = "[profile \"clean\"]\nmedia = local-only\n";
	struct dd_config *cfg = NULL, *again = NULL;

	assert_int_equal(dd_file_write_atomic(p, shared_text, strlen(shared_text) - 1, 0644, 0), 0); /* no final \n */
	assert_int_equal(dd_file_write_atomic(l, local, strlen(local), 0600, 0), 0);
	assert_int_equal(dd_config_load_files(&cfg, p, "profiles.ini", l, "config.ini"), 0);
	assert_int_equal(dd_config_add_profile(cfg, "c2", "clean", NULL), 0);
	assert_int_equal(dd_config_add_profile(cfg, "c3", NULL, "var/media"), 0);
	assert_int_equal(dd_config_add_profile(cfg, "c2", NULL, NULL), -1);
	assert_string_equal(dd_error_last(), "profile 'c2' already exists in profiles.ini");
	assert_int_equal(dd_config_add_profile(cfg, "C2", NULL, NULL), -1);
	assert_int_equal(dd_config_add_profile(cfg, "c4", "nope", NULL), -1);
	assert_non_null(strstr(dd_error_last(), "no profile 'nope'"));
	assert_int_equal(dd_config_add_profile(cfg, "bad name", NULL, NULL), -1);

	text = slurp(p);
	/* the old text is a prefix: comments and layout untouched */
	assert_memory_equal(text, shared_text, strlen(shared_text) - 1);
	/* copied from the shared 'clean', not from this clone's override */
	assert_string_equal(text + strlen(shared_text),
			    "\n[profile \"c2\"]\nmedia = uploads\nexclude_tables = audit.*\nexclude_tables = public.sessions\n"
			    "exclude_tables = tmp_*\nterminate_connections = true\n"
			    "\n[profile \"c3\"]\nmedia = var/media\n");
	free(text);
	assert_int_equal(cfg->nprofiles, 4);
	assert_int_equal(dd_config_load_files(&again, p, "profiles.ini", l, "config.ini"), 0);
	assert_int_equal(again->nprofiles, 4);
	assert_string_equal(dd_config_profile(again, "c2")->exclude_tables[2], "tmp_*");
	dd_config_free(again);
	dd_config_free(cfg);
	free(p);
	free(l);
}

static void
set_active_edits_one_line(void **state)
{
	char *p = dd_path_join(tmpdir, "profiles.ini"), *l = dd_path_join(tmpdir, "sub/config.ini"), *text;
	const char *local = "# mine\n[store]\nurl = file:///mine\n\n[database]\n  active_profile = clean ; old\njobs = 2\n";
	struct dd_config *cfg = NULL;

	assert_int_equal(dd_file_write_atomic(p, shared_text, strlen(shared_text), 0644, 0), 0);
	/* no config.ini yet: created with a [database] section */
	assert_int_equal(dd_config_load_files(&cfg, p, "profiles.ini", l, "config.ini"), 0);
	assert_int_equal(dd_config_set_active(cfg, "customer1"), 0);
	assert_string_equal(cfg->active_profile, "customer1");
	text = slurp(l);
	assert_string_equal(text, "[database]\nactive_profile = customer1\n");
	free(text);
	dd_config_free(cfg);

	/* an existing line is replaced in place, everything else kept */
	assert_int_equal(dd_file_write_atomic(l, local, strlen(local), 0600, 0), 0);
	assert_int_equal(dd_config_load_files(&cfg, p, "profiles.ini", l, "config.ini"), 0);
	assert_int_equal(dd_config_set_active(cfg, "customer1"), 0);
	text = slurp(l);
	assert_string_equal(text, "# mine\n[store]\nurl = file:///mine\n\n[database]\n  active_profile = customer1\njobs = 2\n");
	free(text);
	dd_config_free(cfg);

	/* a [database] section without the key gets it; other sections stay */
	local = "[database]\njobs = 2\n\n[store]\nurl = file:///x\n";
	assert_int_equal(dd_file_write_atomic(l, local, strlen(local), 0600, 0), 0);
	assert_int_equal(dd_config_load_files(&cfg, p, "profiles.ini", l, "config.ini"), 0);
	assert_int_equal(dd_config_set_active(cfg, "clean"), 0);
	text = slurp(l);
	assert_string_equal(text, "[database]\njobs = 2\n\nactive_profile = clean\n[store]\nurl = file:///x\n");
	free(text);
	dd_config_free(cfg);
	free(p);
	free(l);
}

static void
load_without_profiles_ini_says_to_init(void **state)
{
	struct dd_config *cfg = NULL;
	char *p = dd_path_join(tmpdir, "nothing/profiles.ini");

	assert_int_equal(dd_config_load_files(&cfg, p, ".dnadata/profiles.ini", p, "config.ini"), -1);
	assert_non_null(strstr(dd_error_last(), "not set up in this repository"));
	assert_non_null(strstr(dd_error_hint(), "git dnadata init"));
	free(p);
}

/* issue 21: mask, masked, subset, subset_others. */
static void
mask_and_subset_keys_parse(void **state)
{
	(void)state;
	struct dd_config *cfg = parse_ok("[profile \"c\"]\n"
					 "mask = public.users.email fake_email\n"
					 "mask = Users.\"Full \"\"Name\"\"\"  FAKE_NAME\n"
					 "mask = s.t.login sql: 'user' || id  \n"
					 "mask = t.note keep\n"
					 "masked = required\n"
					 "subset = public.users 10%\n"
					 "subset_others = empty\n",
					 NULL);
	const struct dd_profile *p = dd_config_profile(cfg, "c");

	assert_non_null(p);
	assert_int_equal(p->nmasks, 4);
	assert_string_equal(p->masks[0].schema, "public");
	assert_string_equal(p->masks[0].table, "users");
	assert_string_equal(p->masks[0].column, "email");
	assert_int_equal(p->masks[0].kind, DD_MASK_FAKE_EMAIL);
	assert_int_equal(p->masks[0].line, 2);
	assert_null(p->masks[1].schema);
	assert_string_equal(p->masks[1].table, "users");
	assert_string_equal(p->masks[1].column, "Full \"Name\"");
	assert_int_equal(p->masks[1].kind, DD_MASK_FAKE_NAME);
	assert_int_equal(p->masks[2].kind, DD_MASK_SQL);
	assert_string_equal(p->masks[2].expr, "'user' || id");
	assert_int_equal(p->masks[3].kind, DD_MASK_KEEP);
	assert_int_equal(p->masked, DD_MASKED_REQUIRED);
	assert_non_null(p->subset);
	assert_string_equal(p->subset->schema, "public");
	assert_string_equal(p->subset->table, "users");
	assert_int_equal(p->subset->percent, 10);
	assert_null(p->subset->where);
	assert_int_equal(p->subset_others, DD_SUBSET_EMPTY);
	dd_config_free(cfg);

	cfg = parse_ok("[profile \"c\"]\nsubset = users where country = 'DE' \n", NULL);
	p = dd_config_profile(cfg, "c");
	assert_null(p->subset->schema);
	assert_string_equal(p->subset->where, "country = 'DE'");
	assert_int_equal(p->subset->percent, 0);
	assert_int_equal(p->masked, DD_MASKED_OPTIONAL);
	assert_int_equal(p->subset_others, DD_SUBSET_WHOLE);
	dd_config_free(cfg);
}

static void
bad_mask_and_subset_values_name_the_line(void **state)
{
	(void)state;
	parse_bad("[profile \"c\"]\nmask = email fake_email\n",
		  "profiles.ini:2: 'mask': name a column as table.column or schema.table.column (write mask = "
		  "[schema.]table.column RULE)");
	parse_bad("[profile \"c\"]\nmask = t.email scramble\n",
		  "profiles.ini:2: 'mask': the rule must be keep, null, redact, hash, fake_email, fake_name, fake_phone "
		  "or sql:<expression> (write mask = [schema.]table.column RULE)");
	parse_bad("[profile \"c\"]\nmask = t.email\n",
		  "profiles.ini:2: 'mask': a rule must follow the column name (write mask = [schema.]table.column RULE)");
	parse_bad("[profile \"c\"]\nmask = t.\"email fake_email\n",
		  "profiles.ini:2: 'mask': a quoted name is not closed (write mask = [schema.]table.column RULE)");
	parse_bad("[profile \"c\"]\nmask = a.b.c.d null\n",
		  "profiles.ini:2: 'mask': too many dotted parts (write mask = [schema.]table.column RULE)");
	parse_bad("[profile \"c\"]\nmask = t.e sql:\n",
		  "profiles.ini:2: 'mask': sql: needs an expression (write mask = [schema.]table.column RULE)");
	parse_bad("[profile \"c\"]\nmask = public.t.e null\nmask = t.E hash\n",
		  "profiles.ini:3: 'mask': that column already has a rule (line 2)");
	parse_bad("[profile \"c\"]\nsubset = users 0%\n",
		  "profiles.ini:2: 'subset': a percentage is a whole number from 1 to 100 followed by '%' (e.g. 10%)");
	parse_bad("[profile \"c\"]\nsubset = users\n",
		  "profiles.ini:2: 'subset': name the start table, then a percentage (10%) or 'where <condition>'");
	parse_bad("[profile \"c\"]\nsubset = users where   \n",
		  "profiles.ini:2: 'subset': 'where' needs a condition");
	parse_bad("[profile \"c\"]\nmasked = yes\n",
		  "profiles.ini:2: 'masked' must be optional or required, not 'yes'");
	parse_bad("[profile \"c\"]\nsubset_others = some\n",
		  "profiles.ini:2: 'subset_others' must be whole or empty, not 'some'");
	parse_bad_n("[profile \"c\"]\nmask = t.e null\n", 30, 1,
		    "config.ini:2: 'mask' can only be set in .dnadata/profiles.ini");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_file_parses_every_key),
		cmocka_unit_test(errors_name_file_and_line),
		cmocka_unit_test(errors_never_quote_a_password),
		cmocka_unit_test(hostile_bytes_are_errors),
		cmocka_unit_test(indentation_crlf_bom_and_comments_are_accepted),
		cmocka_unit_test(long_profile_names_survive_inih_section_limit),
		cmocka_unit_test(overrides_apply_in_order),
		cmocka_unit_test(local_only_and_shared_only_keys_are_enforced),
		cmocka_unit_test(worktree_database_only_in_a_worktrees_own_file),
		cmocka_unit_test(profile_lookup_suggests_the_closest_name),
		cmocka_unit_test(profile_names_are_checked),
		cmocka_unit_test(redact_hides_passwords_only),
		cmocka_unit_test(profile_names_differing_only_in_case_are_refused),
		cmocka_unit_test(lock_wait_timeout_defaults_overrides_and_checks),
		cmocka_unit_test(cache_budget_and_stash_keep_default_override_and_check),
		cmocka_unit_test(spares_default_override_environment_and_check),
		cmocka_unit_test(store_remote_settings_parse_override_and_check),
		cmocka_unit_test(missing_profile_hint_suggests_new_profile_only_for_a_valid_name),
		cmocka_unit_test(conninfo_redact_masks_every_secret_and_keeps_the_rest),
		cmocka_unit_test(conninfo_errors_never_quote_the_string),
		cmocka_unit_test(conninfo_strip_secrets_connects_without_them),
		cmocka_unit_test(conninfo_url_has_no_secret_and_encodes_what_it_holds),
		cmocka_unit_test(conninfo_with_dbname_keeps_everything_but_the_database),
		cmocka_unit_test_setup_teardown(initial_file_reads_back_and_is_never_overwritten, mk_tmp, rm_tmp),
		cmocka_unit_test_setup_teardown(add_profile_appends_and_keeps_comments, mk_tmp, rm_tmp),
		cmocka_unit_test_setup_teardown(set_active_edits_one_line, mk_tmp, rm_tmp),
		cmocka_unit_test_setup_teardown(load_without_profiles_ini_says_to_init, mk_tmp, rm_tmp),
		cmocka_unit_test(mask_and_subset_keys_parse),
		cmocka_unit_test(bad_mask_and_subset_values_name_the_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
