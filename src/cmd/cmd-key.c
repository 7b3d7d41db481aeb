/*
 * cmd/cmd-key.c: move the store key between machines and protect it with a
 * passphrase: `key export FILE`, `key import FILE`, `key import
 * --passphrase`, `key passwd`.
 *
 * Passphrases come from DNADATA_PASSPHRASE (the current one) and
 * DNADATA_NEW_PASSPHRASE (`passwd`'s new one), else from the terminal
 * without echo; never from the command line (it would show in `ps`).
 */
#include "config/config.h"
#include "dnadata.h"
#include "git/repo.h"
#include "cmd/prompt.h"
#include "store/store-keys.h"
#include "workflow/workflow.h"

#include <stdlib.h>
#include <string.h>

static const char *const usage[] = {
	"git dnadata key export <file>",
	"git dnadata key import <file>",
	"git dnadata key import --passphrase",
	"git dnadata key passwd",
	"",
	"The store key lives in .git/dnadata/key (mode 0600). `export` copies it to a",
	"file (never overwriting one) to carry to another machine, where `import FILE`",
	"installs it. The store can also hold copies protected by a passphrase:",
	"`import --passphrase` unlocks one (DNADATA_PASSPHRASE or a prompt), and",
	"`passwd` adds one for a new passphrase (DNADATA_NEW_PASSPHRASE or a prompt)",
	"and removes the one the current passphrase opens.",
	"",
	"Examples:",
	"  git dnadata key export /media/usb/myapp.key",
	"  git dnadata key import /media/usb/myapp.key",
	"  DNADATA_PASSPHRASE=... git dnadata key import --passphrase",
	"  git dnadata key passwd",
	NULL,
};

static int
need_passphrase(struct dd_buf *out, const char *env, const char *prompt, int confirm, const char *what)
{
	int r = dd_prompt_passphrase(out, env, prompt, confirm);

	if (r == DD_NOTFOUND) {
		dd_error("no %s given", what);
		dd_hint("set %s or run the command on a terminal", env);
		return -1;
	}
	return r;
}

static int
cmd_key(int argc, char **argv)
{
	int passphrase = 0, rc = -1, n;
	const struct dd_option opts[] = {
		{ DD_OPT_BOOL, 0, "passphrase", &passphrase, NULL, "import: unlock a key file of the store with a passphrase" },
		DD_OPT_END_MARK,
	};
	struct dd_repo *repo = NULL;
	struct dd_config *cfg = NULL;
	struct dd_buf oldp = DD_BUF_INIT, newp = DD_BUF_INIT;
	struct dd_store_opts so;
	const char *sub;

	n = dd_parse_options(argc, argv, opts, usage);
	if (n < 0)
		return n;
	if (n < 1)
		return dd_usage_error("key", "which key command: export, import or passwd?");
	sub = argv[0];
	if (strcmp(sub, "export") && strcmp(sub, "import") && strcmp(sub, "passwd"))
		return dd_usage_error("key", "unknown key command '%s' (export, import, passwd)", sub);
	if (!strcmp(sub, "export") && (n != 2 || passphrase))
		return dd_usage_error("key", "usage: git dnadata key export <file>");
	if (!strcmp(sub, "import") && (passphrase ? n != 1 : n != 2))
		return dd_usage_error("key", "usage: git dnadata key import <file> | --passphrase");
	if (!strcmp(sub, "passwd") && (n != 1 || passphrase))
		return dd_usage_error("key", "usage: git dnadata key passwd");
	if (dd_repo_open(&repo, NULL) < 0)
		return -1;
	if (!strcmp(sub, "export")) {
		rc = dd_store_key_export(repo->statedir, argv[1]);
		if (rc == 0)
			dd_info("wrote the store key to %s (mode 0600): whoever has this file can read every snapshot", argv[1]);
		goto out;
	}
	if (dd_config_load(&cfg, repo) < 0)
		goto out;
	dd_workflow_store_opts(&so, cfg, repo, 0);
	if (!strcmp(sub, "import") && !passphrase) {
		rc = dd_store_key_import_file(&so, argv[1]);
	} else if (!strcmp(sub, "import")) {
		if (need_passphrase(&oldp, "DNADATA_PASSPHRASE", "Passphrase of the store key: ", 0, "passphrase") < 0)
			goto out;
		rc = dd_store_key_import_passphrase(&so, oldp.ptr);
	} else {
		int count = dd_store_key_count(&so);
		if (count < 0)
			goto out;
		if (count > 0 &&
		    need_passphrase(&oldp, "DNADATA_PASSPHRASE", "Current passphrase: ", 0, "current passphrase") < 0)
			goto out;
		if (need_passphrase(&newp, "DNADATA_NEW_PASSPHRASE", "New passphrase: ", 1, "new passphrase") < 0)
			goto out;
		rc = dd_store_key_passwd(&so, count > 0 ? oldp.ptr : NULL, newp.ptr);
		if (rc == DD_NOTFOUND) /* the current passphrase opened no key file: nothing changed */
			rc = -1;
	}
out:
	dd_buf_release_secret(&oldp);
	dd_buf_release_secret(&newp);
	dd_config_free(cfg);
	dd_repo_free(repo);
	return rc;
}

const struct dd_command dd_cmd_key = { "key", "export, import or passphrase-protect the store key", cmd_key };
