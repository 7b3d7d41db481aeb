/*
 * cmd/cmd-new-profile.c: add a profile (a [profile "NAME"] section appended
 * to .dnadata/profiles.ini) and commit it ("dnadata: add profile NAME").
 *
 * A profile has no ref file until its first snapshot. The name is checked
 * (letters, digits, '-', '_'), must be new, and must not differ from an
 * existing one only by case (ref files would clash on macOS/Windows).
 * With a commit, the section is added under the commit's locks (from
 * profiles.ini as it is then, so two new-profile commands at once both
 * land), and profiles.ini is put back by the commit if it fails.
 */
#include "config/config.h"
#include "dnadata.h"
#include "git/commit.h"
#include "git/repo.h"
#include "util/fs.h"

#include <stdlib.h>
#include <string.h>

static const char *const usage[] = {
	"git dnadata new-profile <name> [--from <profile>] [--media <dir>] [--inline] [--no-commit]",
	"",
	"Adds [profile \"<name>\"] to .dnadata/profiles.ini and commits it. Names use letters,",
	"digits, '-' and '_'. --from copies that profile's settings (as profiles.ini has them).",
	"--inline keeps the profile's data in git itself (.dnadata/inline/<name>/schema.sql and",
	"data.sql, plain SQL): restored with no store and no key; for a small clean database.",
	"",
	"Examples:",
	"  git dnadata new-profile customer1",
	"  git dnadata new-profile clean-db --inline",
	"  git dnadata new-profile customer2 --from customer1 --media var/uploads",
	"  git dnadata new-profile scratch --no-commit",
	NULL,
};

static const char *const tracked[] = { ".dnadata/profiles.ini" };

struct add {
	struct dd_repo *repo;
	const char *name, *from, *media;
	int is_inline;
	int failed; /* the error is add_section()'s own (already says what went wrong) */
};

/*
 * dd_commit_file.update for profiles.ini, under the commit's locks: add the
 * section to the file as it is now (dd_config_add_profile() writes it; the
 * commit puts it back if anything fails) and hand its new text back.
 */
static int
add_section(struct dd_buf *out, const char *abs, void *arg)
{
	struct add *a = arg;
	struct dd_config *cfg = NULL;
	int rc = -1;

	if (dd_config_load(&cfg, a->repo) == 0 && dd_config_add_profile_inline(cfg, a->name, a->from, a->media, a->is_inline) == 0 &&
	    dd_file_read(out, abs) == 0)
		rc = 0;
	a->failed = rc < 0;
	dd_config_free(cfg);
	return rc;
}

static int
cmd_new_profile(int argc, char **argv)
{
	const char *from = NULL, *media = NULL;
	int no_commit = 0, rc = -1, changed = 0, is_inline = 0;
	const struct dd_option opts[] = {
		{ DD_OPT_STRING, 0, "from", &from, "profile", "copy the settings of this profile" },
		{ DD_OPT_STRING, 0, "media", &media, "dir", "media folder captured with the data (relative to the work tree)" },
		{ DD_OPT_BOOL, 0, "inline", &is_inline, NULL, "keep the data in git as plain SQL (no store, no key)" },
		{ DD_OPT_BOOL, 0, "no-commit", &no_commit, NULL, "change profiles.ini but do not commit it" },
		DD_OPT_END_MARK,
	};
	struct dd_repo *repo = NULL;
	struct dd_config *cfg = NULL;
	struct dd_commit_file file = { .path = tracked[0], .update = add_section };
	struct add add = { 0 };
	char commit[41], *what = NULL;
	const char *name;
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
	if (media && is_inline)
		return dd_usage_error("new-profile", "an inline profile keeps no media folder (--media with --inline)");
	if (dd_repo_open(&repo, NULL) < 0)
		return -1;
	/* Refuse before touching anything: conflicts, a merge in progress, no identity. */
	if (!no_commit && dd_commit_precheck(repo, tracked, 1) < 0)
		goto out;
	if (dd_config_load(&cfg, repo) < 0)
		goto out;
	if (!no_commit && (changed = dd_repo_changed(repo, tracked[0])) < 0)
		goto out;
	if (changed)
		dd_warn("%s has uncommitted changes; they are committed along with the new profile", tracked[0]);
	if (no_commit) {
		if (dd_config_add_profile_inline(cfg, name, from, media, is_inline) < 0)
			goto out;
		dd_info("added profile '%s' to %s (not committed)", name, cfg->profiles_display);
		rc = 0;
		goto out;
	}
	add.repo = repo, add.name = name, add.from = from, add.media = media, add.is_inline = is_inline;
	file.arg = &add;
	what = dd_asprintf("add profile %s", name);
	if (dd_commit_files(repo, &file, 1, what, commit) < 0) {
		if (!add.failed)
			dd_error_wrap("profile '%s' not added", name);
		goto out;
	}
	dd_info("added profile '%s'%s%s%s; committed %.7s", name, from ? " (settings from '" : "", from ? from : "",
		from ? "')" : "", commit);
	rc = 0;
out:
	free(what);
	dd_config_free(cfg);
	dd_repo_free(repo);
	return rc;
}

const struct dd_command dd_cmd_new_profile = { "new-profile", "add a profile to .dnadata/profiles.ini and commit it",
					       cmd_new_profile };
