/*
 * workflow/diff.h: what changed between two snapshots, from their manifests
 * (issue 18, `git dnadata diff`). Nothing is restored: the manifests give
 * the tables, row counts and sizes; the schema streams are read (and
 * normalised, pg/normalise.h) only when their checksums differ, the media
 * listings only when theirs do.
 */
#ifndef DD_WORKFLOW_DIFF_H
#define DD_WORKFLOW_DIFF_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct dd_repo;
struct dd_store;

enum dd_diff_change { DD_DIFF_ADDED = 'A', DD_DIFF_REMOVED = 'D', DD_DIFF_MODIFIED = 'M' };

/* One side of a diff: a snapshot, named for people by where it came from. */
struct dd_diff_side {
	char *label;  /* "HEAD:.dnadata/refs/clean", "snapshot 3f2a9c1e4b5d" ... */
	char id[65];  /* "": no snapshot there (the ref file does not exist at that revision) */
};

/* A table added, removed, or with other rows. */
struct dd_diff_table {
	char *name;   /* qualified (the stream's `table` attribute) */
	int change;   /* enum dd_diff_change */
	uint64_t old_rows, new_rows, old_bytes, new_bytes;
};

/* An attribute of the database (schema/pre-data's encoding, lc_collate ...) that differs. */
struct dd_diff_attr {
	const char *key;
	char *old_value, *new_value; /* NULL: not set on that side */
};

/* A media entry added, removed or changed. */
struct dd_diff_media {
	char *path;
	int change;        /* enum dd_diff_change */
	int dir;           /* a folder */
	const char *what;  /* DD_DIFF_MODIFIED: "content", "type", "target", "mode" or "mtime" (the first that differs) */
	uint64_t old_size, new_size;
};

struct dd_diff {
	struct dd_diff_side a, b;
	int same;                     /* the same snapshot (or none on both sides): nothing differs */
	struct dd_diff_table *tables; /* changed tables, in name order */
	size_t ntables;
	size_t a_tables, b_tables;    /* totals over every table */
	uint64_t a_rows, b_rows, a_bytes, b_bytes;
	struct dd_buf schema;         /* unified diff of the normalised schemas; empty: the same schema */
	size_t schema_added, schema_removed;
	int sequences_changed;        /* some sequence value differs */
	int largeobjects_changed;     /* the large objects differ (their stream's content; FORMAT.md §7) */
	uint64_t a_lo_bytes, b_lo_bytes; /* the size of each side's large-object stream (0: none) */
	struct dd_diff_attr *locale;  /* the database's encoding and locale attributes that differ, in order */
	size_t nlocale;               /* locale_changed: nlocale > 0 */
	int noise;                    /* a compared stream's bytes differ but not what it means (normalised schema, a folder's mtime) */
	int other_changed;            /* other ids, and nothing above differs nor explains it: parts this version does not compare */
	struct dd_diff_media *media;  /* in path order */
	size_t nmedia;
};

/*
 * Resolve a diff argument for profile `profile` into a side:
 *   NULL               the work tree's ref file of `profile`
 *   <64 hex>           a snapshot id
 *   <rev>:<profile>    that profile's ref at a revision (<rev>:<path> for a ref file's path)
 *   <rev>              `profile`'s ref at a revision (main, HEAD~3, a tag, a commit)
 *   <path>             a ref file
 *   <hex prefix>       a snapshot of the cache or the store whose id starts so (4+ digits, unique)
 * A ref file missing at a revision (or in the work tree) is a side with no
 * snapshot. 0, -1 (error and hint say what was not understood).
 */
int dd_diff_resolve(struct dd_diff_side *out, struct dd_repo *repo, struct dd_store *st, const char *profile,
		    const char *arg);
/*
 * Compare d->a and d->b (resolved): manifests from the cache, else the
 * store (a snapshot in neither is an error naming it). 0, -1.
 */
int dd_diff_compute(struct dd_diff *d, struct dd_store *st);
void dd_diff_release(struct dd_diff *d);

#endif
