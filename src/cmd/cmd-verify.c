/*
 * cmd/cmd-verify.c: check that the snapshots named by the current refs
 * (or, with --all, every snapshot in the store) can be restored: every
 * object exists in the store and authenticates; with --read-data every
 * stream is read back and its checksum compared. Each missing or damaged
 * object is named on stderr; the exit status is 1 if any.
 */
#include "cmd/setup.h"
#include "dnadata.h"
#include "git/ref.h"
#include "git/repo.h"
#include "store/store.h"
#include "workflow/workflow.h"
#include "util/fs.h"

#include <stdlib.h>
#include <string.h>

static const char *const usage[] = {
	"git dnadata verify [--all] [--read-data] [--offline]",
	"",
	"Checks that the store holds everything the snapshots of the current refs",
	"(.dnadata/refs/*) need: each manifest and index file authenticates, every",
	"object is listed in an index file, every pack is there at its full size.",
	"--read-data also downloads every pack, checks its SHA-256 and authenticates",
	"every object and stream. Names each missing or damaged file; exits 1 if any.",
	"",
	"Examples:",
	"  git dnadata verify",
	"  git dnadata verify --all --read-data",
	NULL,
};

static int
cmd_verify(int argc, char **argv)
{
	int all = 0, read_data = 0, offline = 0, rc;
	const struct dd_option opts[] = {
		{ DD_OPT_BOOL, 0, "all", &all, NULL, "every snapshot in the store, not only the current refs'" },
		{ DD_OPT_BOOL, 0, "read-data", &read_data, NULL, "also read every stream back and compare its checksum" },
		{ DD_OPT_BOOL, 0, "offline", &offline, NULL, "check the local cache instead of the store" },
		DD_OPT_END_MARK,
	};
	struct dd_cmd_setup s;
	struct dd_store *st = NULL;
	char **ids = NULL;
	size_t nids = 0;
	int from_store = 0; /* ids from the store's list (else from the ref files) */

	if ((rc = dd_cmd_setup(&s, argc, argv, opts, usage, DD_CMD_NO_ARGS)) != 0)
		return rc;
	rc = -1;
	if (dd_workflow_open_store(&st, s.cfg, s.repo, offline ? DD_STORE_OFFLINE : 0) < 0)
		goto out;
	if (all) {
		from_store = 1;
		if (dd_store_list_snapshots(st, &ids, &nids) < 0)
			goto out;
	} else {
		char *refs = dd_path_join(s.repo->dnadata, "refs");
		int r = dd_ref_snapshot_ids(&ids, &nids, refs, NULL, 0);
		free(refs);
		if (r < 0)
			goto out;
	}
	if (!nids) {
		dd_info(all ? "the store holds no snapshots yet" : "no profile has a snapshot yet");
		rc = 0;
		goto out;
	}
	rc = dd_store_verify(st, (const char *const *)ids, nids, read_data);
out:
	if (from_store)
		dd_store_snapshot_ids_free(ids, nids);
	else
		dd_ref_ids_free(ids, nids);
	dd_store_free(st);
	dd_cmd_setup_free(&s);
	return rc;
}

const struct dd_command dd_cmd_verify = { "verify", "check that snapshots are complete and authentic in the store", cmd_verify };
