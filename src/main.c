/*
 * main.c: git-dnadata's entry point: global options, the command table,
 * and the one place errors are printed and exit codes chosen.
 *
 * Exit codes: 0 success, 1 failure, 2 usage error (README, "Exit codes").
 */
#include "config.h"
#include "config/config.h"
#include "dnadata.h"
#include "git/repo.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/secret.h"

#include <curl/curl.h>
#include <git2.h>
#include <ini.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <zstd.h>

/* Keep in the order `git dnadata -h` shows them. */
extern const struct dd_command dd_cmd_init, dd_cmd_new_profile, dd_cmd_use, dd_cmd_status;
extern const struct dd_command dd_cmd_verify, dd_cmd_key;
extern const struct dd_command dd_cmd_push, dd_cmd_fetch, dd_cmd_pull;
extern const struct dd_command dd_cmd_snapshot, dd_cmd_restore;
extern const struct dd_command dd_cmd_gc, dd_cmd_stash;
extern const struct dd_command dd_cmd_install_hooks, dd_cmd_uninstall_hooks, dd_cmd_hook;
extern const struct dd_command dd_cmd_spare;
extern const struct dd_command dd_cmd_schema_dump, dd_cmd_promote_schema, dd_cmd_export;
extern const struct dd_command dd_cmd_log, dd_cmd_list, dd_cmd_diff, dd_cmd_doctor;
extern const struct dd_command dd_cmd_pii_check;

static const struct dd_command *const commands[] = {
	&dd_cmd_init,
	&dd_cmd_new_profile,
	&dd_cmd_use,
	&dd_cmd_snapshot,
	&dd_cmd_restore,
	&dd_cmd_status,
	&dd_cmd_log,
	&dd_cmd_list,
	&dd_cmd_diff,
	&dd_cmd_push,
	&dd_cmd_fetch,
	&dd_cmd_pull,
	&dd_cmd_verify,
	&dd_cmd_stash,
	&dd_cmd_gc,
	&dd_cmd_schema_dump,
	&dd_cmd_promote_schema,
	&dd_cmd_export,
	&dd_cmd_pii_check,
	&dd_cmd_key,
	&dd_cmd_doctor,
	&dd_cmd_install_hooks,
	&dd_cmd_uninstall_hooks,
	&dd_cmd_hook, /* no summary: not listed (the hook scripts run it) */
	&dd_cmd_spare, /* no summary: not listed (a switch starts it in the background) */
	NULL,
};

static const char *const usage[] = {
	"git dnadata [-q | -v] <command> [<args>]",
	"git dnadata --version",
	NULL,
};

static void
print_help(void)
{
	printf("usage: %s\n       %s\n\n", usage[0], usage[1]);
	printf("Versioned, encrypted PostgreSQL data profiles next to your code.\n\nCommands:\n");
	for (size_t i = 0; commands[i]; i++)
		if (commands[i]->summary)
			printf("    %-16s %s\n", commands[i]->name, commands[i]->summary);
	printf("\nRun 'git dnadata <command> -h' for a command's options and examples.\n"
	       "Exit codes: 0 success, 1 failure, 2 usage error.\n");
}

static void
print_version(void)
{
	int major, minor, rev;
	const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);
	int pq = PQlibVersion();

	git_libgit2_version(&major, &minor, &rev);
	printf("git-dnadata %s\n", DD_VERSION);
	printf("libgit2 %d.%d.%d\n", major, minor, rev);
	printf("libpq %d.%d\n", pq / 10000, pq % 10000);
	printf("libcurl %s\n", curl->version);
	printf("libsodium %s\n", sodium_version_string());
	printf("inih %s\n", DD_INIH_VERSION);
	printf("zstd %s\n", ZSTD_versionString());
}

/*
 * The bash completion's questions (contrib/completion/git-dnadata.bash),
 * hidden: answered from the command table and the configuration loader, so
 * the completion cannot go stale. --list-cmds: the commands -h lists, one a
 * line. --list-profiles: the profiles of the repository around the current
 * directory; outside one, or with a configuration that does not load,
 * nothing is printed (no error: a completion must stay quiet) and the exit
 * code is 1.
 */
static int
list_cmds(void)
{
	for (size_t i = 0; commands[i]; i++)
		if (commands[i]->summary)
			printf("%s\n", commands[i]->name);
	return DD_EXIT_OK;
}

static int
list_profiles(void)
{
	struct dd_repo *repo;
	struct dd_config *cfg;

	if (dd_config_open(&repo, &cfg) < 0)
		return DD_EXIT_FAILURE;
	for (size_t i = 0; i < cfg->nprofiles; i++)
		printf("%s\n", cfg->profiles[i].name);
	dd_config_free(cfg);
	dd_repo_free(repo);
	return DD_EXIT_OK;
}

static const struct dd_command *
find_command(const char *name)
{
	for (size_t i = 0; commands[i]; i++)
		if (!strcmp(commands[i]->name, name))
			return commands[i];
	return NULL;
}

static int
unknown_command(const char *name)
{
	const char *names[64];
	size_t n = 0;

	for (; commands[n] && n < 63; n++)
		names[n] = commands[n]->name;
	names[n] = NULL;
	const char *near = dd_closest(name, names);
	if (near)
		return dd_usage_error(NULL, "'%s' is not a git dnadata command (did you mean '%s'?)", name, near);
	return dd_usage_error(NULL, "'%s' is not a git dnadata command", name);
}

/* Run a command; -h (help printed) is a success. */
static int
run_command(const struct dd_command *cmd, int argc, char **argv)
{
	int rc = cmd->run(argc, argv);

	return rc == DD_OPTS_HELP ? 0 : rc;
}

static int
report(int rc)
{
	const char *msg, *hint;

	if (rc == 0)
		return DD_EXIT_OK;
	if (rc == DD_EDIFFERS || rc == DD_EFOUND) /* like `git diff --exit-code` or a linter: the answer, not an error */
		return DD_EXIT_FAILURE;
	msg = dd_error_last();
	hint = dd_error_hint();
	dd_log_line("error: ", msg ? msg : "failed (no reason recorded)");
	if (hint)
		dd_log_line("hint: ", hint);
	return rc == DD_USAGE_ERROR ? DD_EXIT_USAGE : DD_EXIT_FAILURE;
}

/*
 * A media restore keeps up to two batches of files open (~512 descriptors,
 * media/apply.c) beside libpq's and libcurl's: raise the soft limit on open
 * files to the hard one, as Go's runtime and systemd advise for programs
 * that need many, so a default soft limit of 1024 (or lower) is never what
 * fails a restore. Best effort: the hard limit is left as it is.
 */
static void
raise_open_files(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	int i = 1, rc;
	const struct dd_command *cmd;

	/*
	 * This process holds secrets in memory: the passphrase and the keys
	 * it unlocks, S3 credentials and the signed requests, database
	 * passwords. No core file may write them to disk: RLIMIT_CORE 0
	 * (inherited by what we run), and not dumpable, which also stops
	 * other processes of the same user from attaching to us or reading
	 * /proc/PID/mem and /proc/PID/environ (where AWS_SECRET_ACCESS_KEY
	 * or DNADATA_PASSPHRASE may be). Best effort: failing to is not an
	 * error, and an exec'd child is dumpable again.
	 */
	setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 });
	raise_open_files();
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0) {
		fprintf(stderr, "error: libsodium failed to initialise\n");
		return DD_EXIT_FAILURE;
	}
	dd_secret_env_take();
	/* a git hook with nothing to do ends here: no libgit2 (its start reads the CA bundle) nor libcurl */
	if (argc > 1 && !strcmp(argv[1], "hook") && dd_cmd_hook_fast(argc - 1, argv + 1) == DD_NOTHING_TO_DO)
		return DD_EXIT_OK;
	/* the completion's list of commands needs nothing started either (a TAB costs its start) */
	if (argc == 2 && !strcmp(argv[1], "--list-cmds"))
		return list_cmds();
	git_libgit2_init();
	/*
	 * libcurl is started by the S3 client when one is made (s3/client.c,
	 * once): its start initialises OpenSSL, ~1 ms that a switch, a
	 * snapshot to a file store or a local command does not need.
	 */

	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
			dd_log_set_verbosity(DD_QUIET);
		else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
			dd_log_set_verbosity(DD_VERBOSE);
		else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			print_help();
			rc = 0;
			goto out;
		} else if (!strcmp(a, "--list-cmds") || !strcmp(a, "--list-profiles")) {
			rc = !strcmp(a, "--list-cmds") ? list_cmds() : list_profiles();
			goto out;
		} else if (!strcmp(a, "--version")) {
			print_version();
			rc = 0;
			goto out;
		} else {
			rc = report(dd_usage_error(NULL, "unknown option '%s'", a));
			goto out;
		}
	}
	if (i >= argc) {
		print_help();
		rc = DD_EXIT_USAGE;
		goto out;
	}
	if (!strcmp(argv[i], "help")) {
		if (i + 1 < argc && (cmd = find_command(argv[i + 1]))) {
			char *hargv[] = { argv[i + 1], (char *)"-h", NULL };
			rc = report(run_command(cmd, 2, hargv));
		} else {
			print_help();
			rc = 0;
		}
		goto out;
	}
	cmd = find_command(argv[i]);
	if (!cmd) {
		rc = report(unknown_command(argv[i]));
		goto out;
	}
	/* what the locks it takes name their holder (a waiting command shows it) */
	{
		char *holder = dd_asprintf("git dnadata %s", cmd->name);
		dd_lock_set_command(holder);
		free(holder);
	}
	rc = report(run_command(cmd, argc - i, argv + i));
out:
	curl_global_cleanup(); /* nothing when libcurl was not started */
	git_libgit2_shutdown();
	return rc;
}
