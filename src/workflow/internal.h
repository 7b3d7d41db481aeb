/*
 * workflow/internal.h: what the files of workflow/ share and nothing else
 * uses: the media folder's part of snapshot, restore and switches
 * (workflow/media.c, issue 17).
 */
#ifndef DD_WORKFLOW_INTERNAL_H
#define DD_WORKFLOW_INTERNAL_H

#include <stddef.h>

#include "media/media.h"
#include "util/buf.h"

struct dd_repo;
struct dd_config;
struct dd_profile;
struct dd_store;
struct dd_pg_state;
struct dd_pg_switch_media;

/*
 * One switch of a profile's media folder with its database: the store it
 * reads from, the folder as it was (dd_media_stash) and the callbacks
 * dd_pg_switch calls (pg.h, struct dd_pg_switch_media).
 */
struct dd_media_switch;

/*
 * Before a switch changes anything: open the store, set the folder aside
 * (dd_media_stash) and prepare the callbacks for `snapshot` (the ref's).
 * *out NULL (0) when p has no media folder. 0 or -1.
 */
int dd_media_switch_begin(struct dd_media_switch **out, struct dd_repo *repo, const struct dd_config *cfg,
			  const struct dd_profile *p, const char *snapshot);
const struct dd_pg_switch_media *dd_media_switch_hooks(struct dd_media_switch *ms);
/* The stats of the apply (after a switch), for the summary line. */
const struct dd_media_stats *dd_media_switch_stats(const struct dd_media_switch *ms);
void dd_media_switch_free(struct dd_media_switch *ms);

/*
 * A switch a kill cut short left the folder to be made equal to
 * state->media (media_pending): do it now and clear the mark. 0 (also
 * when nothing is pending or p has no media), or -1.
 */
int dd_media_finish_pending(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
			    const struct dd_pg_state *state);

/*
 * Is p's media folder equal to snapshot `snapshot` (its recorded snapshot,
 * unchanged since)? 1 yes (also when p has no media folder, or the
 * snapshot has no media listing: the folder is then left alone), 0 no
 * (*why: what differs, static text), -1 on error.
 */
int dd_media_at_snapshot(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
			 const char *snapshot, const char **why);

/* ---- post-restore.c ---- */

struct dd_profile;
/*
 * The post_restore commands' environment changes (workflow.c; util/proc.h env: "NAME=value", or a bare NAME
 * to remove it), NULL-terminated; free with dd_workflow_post_restore_env_free().
 */
char **dd_workflow_post_restore_env(const struct dd_profile *p, const char *snapshot, const char *conninfo,
				    const char *database);
void dd_workflow_post_restore_env_free(char **env);

struct dd_post_restore_last;
struct dd_buf;
/* The record's text for `r` (appended to b); the format is in post-restore.c. */
void dd_workflow_post_restore_format(struct dd_buf *b, const struct dd_post_restore_last *r);
/* Parse a record's text (hostile: errors "display:line: what"): 0 with *out, or -1 (*out empty). */
int dd_workflow_post_restore_parse(const char *text, size_t len, const char *display, struct dd_post_restore_last *out);
/* Replace the record of `profile`'s last post_restore run with `r` (atomic). 0 or -1. */
int dd_workflow_post_restore_record(struct dd_repo *repo, const char *profile, const struct dd_post_restore_last *r);

/* ---- inline profiles (inline.c, issue 18; docs/FORMAT.md §9) ---- */

struct dd_ref;

/* An inline profile's two files. */
struct dd_inline {
	struct dd_buf schema, data;
};
/* ".dnadata/inline/<profile>/<file>". Caller frees. */
char *dd_inline_path(const char *profile, const char *file);
/* The snapshot id of the two files: SHA-256 of "schema.sql <sha256 hex>\ndata.sql <sha256 hex>\n", in hex. */
void dd_inline_id(const struct dd_buf *schema, const struct dd_buf *data, char id[65]);
/*
 * p's files at `rev` (NULL: the work tree) into *in (zeroed by the caller);
 * ref->snapshot becomes their id (warned about when the ref said another).
 * 0, or -1 (error set: a file is missing).
 */
int dd_inline_read(struct dd_inline *in, struct dd_repo *repo, const struct dd_profile *p, const char *rev,
		   struct dd_ref *ref);
void dd_inline_release(struct dd_inline *in);
/*
 * A new folder <statedir>/<what>-<pid>-XXXXXX (caller removes it and
 * frees the path), after removing those of processes that are gone (a
 * kill -9 left them). NULL on error.
 */
char *dd_inline_tmpdir(const char *statedir, const char *what);
/*
 * dd_workflow_snapshot() of an inline profile; `source_db` (NULL: the
 * working database) names another database on its server to dump instead
 * (snapshot --from-dump's scratch database), which is then not recorded as
 * the working database's.
 */
int dd_inline_snapshot(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
		       const char *source_db, int flags, const char *msg, char id_out[65]);

/* ---- masking (mask.c, issue 21) ---- */

struct dd_pg_mask_rule;
/* A profile's masking rules as the dump takes them (keep rules left out), and their key. */
struct dd_workflow_masks {
	struct dd_pg_mask_rule *rules;
	size_t nrules;
	unsigned char key[32];   /* the store's mask subkey (dd_store_mask_key), when nrules > 0 */
	char hash[65];           /* dd_workflow_masks_hash(), "" when no rule applies */
};
/*
 * The rules' hash: sha256 hex of a canonical text of every rule that
 * applies (mask rules but keep, sorted; the subset and subset_others
 * keys), "" when none does; *n: the mask rules that apply. FORMAT.md §7, "Masked columns".
 */
void dd_workflow_masks_hash(const struct dd_profile *p, char out[65], size_t *n);
/* Fill m from p (st: the store the snapshot goes to, for the key; NULL: no key). */
void dd_workflow_masks_init(struct dd_workflow_masks *m, const struct dd_profile *p, const struct dd_store *st);
void dd_workflow_masks_release(struct dd_workflow_masks *m);

/*
 * issue 21: is a snapshot of p the database as it is? Not with a subset
 * or a masking rule other than keep: the database holds more rows, or
 * other values, so it is never recorded as holding such a snapshot
 * (restore, use and the hooks then build it). 1 or 0.
 */
int dd_workflow_captures_as_is(const struct dd_profile *p);

/*
 * issue 21: p's subset and subset_others keys as the dump takes them, in
 * *sb (pointers into cfg and p); NULL when p has no subset key.
 */
struct dd_pg_subset;
const struct dd_pg_subset *dd_workflow_subset(const struct dd_config *cfg, const struct dd_profile *p,
					      struct dd_pg_subset *sb);

#endif
