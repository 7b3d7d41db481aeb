/*
 * cmd/cmd-new-profile.c: add a profile (a [profile "NAME"] section appended
 * to .dnadata/profiles.ini) and commit it ("dnadata: add profile NAME").
 *
 * A profile has no ref file until its first snapshot. The name is checked
 * (letters, digits, '-', '_'), must be new, and must not differ from an
 * existing one only by case (ref files would clash on macOS/Windows).
 * If the commit fails, profiles.ini is put back as it was.
 */
#include "config/config.h"
#include "dnadata.h"
#include "git/commit.h"
#include "git/repo.h"
#include "util/fs.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const usage[] = {
	"git dnadata new-profile <name> [--from <profile>] [--media <dir>] [--no-commit]",
	"",
	"Adds [profile \"<name>\"] to .dnadata/profiles.ini and commits it. Names use letters,",
	"digits, '-' and '_'. --from copies that profile's settings (as profiles.ini has them).",
	"",
	"Examples:",
	"  git dnadata new-profile customer1",
	"  git dnadata new-profile customer2 --from customer1 --media var/uploads",
	"  git dnadata new-profile scratch --no-commit",
	NULL,
};

static const char *const tracked[] = { ".dnadata/profiles.ini" };

static int
cmd_new_profile(int argc, char **argv)
{
	const char *from = NULL, *media = NULL;
	int no_commit = 0, rc = -1, c, changed = 0;
	const struct dd_option opts[] = {
		{ DD_OPT_STRING, 0, "from", &from, "profile", "copy the settings of this profile" },
		{ DD_OPT_STRING, 0, "media", &media, "dir", "media folder captured with the data (relative to the work tree)" },
		{ DD_OPT_BOOL, 0, "no-commit", &no_commit, NULL, "change profiles.ini but do not commit it" },
		DD_OPT_END_MARK,
	};
	struct dd_repo *repo = NULL;
	struct dd_config *cfg = NULL;
	struct dd_buf before = DD_BUF_INIT;
	char commit[41], *what = NULL;
	const char *name;
	mode_t mode = 0644;
	struct stat st;
	int n = dd_parse_options(argc, argv, opts, usage);

	if (n < 0)
		return n;
	if (n == 0)
		return dd_usage_error("new-profile", "missing the profile name");
	if (n > 1)
		return dd_usage_error("new-profile", "too many arguments ('%s')", argv[1]);
	name = argv[0];
	if (dd_profile_name_check(name) < 0)
		return -1;
	if (media && !*media)
		return dd_usage_error("new-profile", "--media needs a folder");
	if (dd_repo_open(&repo, NULL) < 0)
		return -1;
	/* Refuse before touching anything: conflicts, a merge in progress, no identity. */
	if (!no_commit && dd_commit_precheck(repo, tracked, 1) < 0)
		goto out;
	if (dd_config_load(&cfg, repo) < 0)
		goto out;
	if (stat(cfg->profiles_path, &st) == 0)
		mode = st.st_mode & 07777;
	if (dd_file_read(&before, cfg->profiles_path) < 0)
		goto out;
	if (!no_commit && (changed = dd_repo_changed(repo, tracked[0])) < 0)
		goto out;
	if (changed)
		dd_warn("%s has uncommitted changes; they are committed along with the new profile", tracked[0]);
	if (dd_config_add_profile(cfg, name, from, media) < 0)
		goto out;
	if (no_commit) {
		dd_info("added profile '%s' to %s (not committed)", name, cfg->profiles_display);
		rc = 0;
		goto out;
	}
	what = dd_asprintf("add profile %s", name);
	c = dd_commit_paths(repo, tracked, 1, what, commit);
	if (c < 0) {
		if (dd_file_write_atomic(cfg->profiles_path, dd_buf_cstr(&before), before.len, mode, 0) < 0)
			dd_error_wrap("cannot put %s back after a failed commit", cfg->profiles_display);
		else
			dd_error_wrap("profile '%s' not added", name);
		goto out;
	}
	dd_info("added profile '%s'%s%s%s; committed %.7s", name, from ? " (settings from '" : "", from ? from : "",
		from ? "')" : "", commit);
	rc = 0;
out:
	free(what);
	dd_buf_release(&before);
	dd_config_free(cfg);
	dd_repo_free(repo);
	return rc;
}

const struct dd_command dd_cmd_new_profile = { "new-profile", "add a profile to .dnadata/profiles.ini and commit it",
					       cmd_new_profile };
