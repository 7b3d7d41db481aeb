/*
 * cmd/status.h: what `git dnadata status` reports, gathered once
 * (status-collect.c) and formatted for people (cmd-status.c) or scripts
 * (status-json.c, whose schema is in README.md "status --json"). Only the
 * status command uses it. Collecting never stops at a broken piece: a
 * piece that cannot be read is reported with why, and the rest goes on.
 */
#ifndef DD_CMD_STATUS_H
#define DD_CMD_STATUS_H

#include "dnadata.h"
#include "git/hooks.h"
#include "git/ref.h"
#include "pg/pg.h"
#include "pg/state.h"
#include "store/store.h"
#include "workflow/workflow.h"

#include <stdint.h>

struct profile_status {
	const struct dd_profile *profile;
	char *ref_rel;            /* .dnadata/refs/<name> */
	char snapshot[DD_ID_HEX_LEN + 1]; /* "" = no snapshot yet */
	char *ref_error;          /* the ref file exists but does not parse */
	char *masked;             /* the ref's "masked" line ("<hash12> (N rules)", issue 21), or NULL */
	int ref_changed;          /* differs from HEAD (staged, modified, new or deleted) */
	char *database;           /* redacted */
	char *media_root;         /* the media folder, absolute; NULL: none */
	int media_changed;        /* 0 unchanged, 1 changed, 2 never restored or captured here, -1 (media_error) */
	char media_snapshot[65];
	char *media_error;
	int media_pending;        /* the working record says a switch left the folder to finish */
	int have_post;            /* a post_restore run is recorded */
	struct dd_post_restore_last post;
	int post_current;         /* post.snapshot is what the profile's working database's record holds */
	char *post_error;         /* the record could not be read */
};

/* One kind of local copy of the working database: how many, and their bytes when the server told. */
struct copy_usage {
	size_t count;
	uint64_t bytes;
};

/* What this machine keeps to make switches fast, against cache_budget (issue 16). */
struct local_status {
	struct dd_pg_copy *copies; /* of the active working database: templates, spares, stashes */
	size_t ncopies;
	int sized;                 /* the server answered: sizes known, records verified */
	char *copies_why;          /* why not */
	struct dd_cache_usage cache;
	int have_cache;
	struct copy_usage templates, spares, stashes;
	size_t stashes_unedited;   /* what stash_keep counts */
};

struct status {
	struct dd_repo *repo;
	struct dd_config *cfg;
	int active_defined;
	char *store;              /* redacted */
	char *database;           /* active profile's (or [database]'s), redacted */
	int settings_changed;
	char *hooks;              /* one line: "installed", or which are missing, not ours, outdated */
	struct dd_hooks_report hooks_report;
	int have_hooks_report;
	struct dd_pg_state pg;    /* what the working database holds, its stashes (<statedir>/pg) */
	int have_pg;
	int have_changes;         /* a snapshot is recorded, so `changes` says something */
	enum dd_pg_change changes; /* since that restore/snapshot */
	char *changes_why;
	char *unverified_why;     /* the server could not confirm stashes and leftovers: why */
	struct profile_status *profiles;
	size_t nprofiles;
	struct local_status local; /* templates, spares, stashes with sizes; cache usage; pending uploads */
};

/* Fill `st` (zeroed, repo and cfg set). 0, or -1 when git itself cannot be read. */
int status_collect(struct status *st);
void status_free(struct status *st);

/* Bytes of templates and spares whose size is known (what cache_budget counts besides the cache). */
uint64_t status_copies_bytes(const struct local_status *l);
/* "unchanged", "changed", "not restored", or NULL (media_error says why). */
const char *status_media_changes_name(const struct profile_status *ps);
/* Whether the name is the active profile. */
int status_is_active(const struct status *st, const struct profile_status *ps);

/* One JSON object on stdout (README.md, "status --json"). */
void status_print_json(const struct status *st);

#endif
