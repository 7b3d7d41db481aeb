/*
 * media/internal.h: what the media module's files share: the deterministic
 * walk of a folder, the checks on entry names and attributes, and the
 * local index (docs/FORMAT.md §6.2).
 *
 * The walk reads one directory at a time (its names sorted bytewise, then
 * each subdirectory entered right after its own entry), which is path
 * order (dd_path_cmp), and holds only the names of the directories on the
 * current path. It never follows a symlink: every directory is opened
 * relative to its parent's descriptor with O_NOFOLLOW | O_DIRECTORY and
 * every entry is looked at with fstatat(AT_SYMLINK_NOFOLLOW).
 */
#ifndef DD_MEDIA_INTERNAL_H
#define DD_MEDIA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "media/media.h"
#include "store/manifest.h"
#include "util/buf.h"

enum media_type { MEDIA_OTHER = 0, MEDIA_FILE, MEDIA_DIR, MEDIA_LINK };

/*
 * Temporary files of apply: MEDIA_TMP_PREFIX and 16 lowercase hex, a
 * regular file or a symlink (what apply creates). Only that exact form is
 * one: capture leaves it out (with a warning), the next apply removes it,
 * check refuses a listed file or symlink of that form. Anything else with
 * the prefix (a folder, another name) is the user's and is kept.
 */
#define MEDIA_TMP_PREFIX ".git-dnadata-tmp-"
int media_is_tmp_name(const char *name);
int media_is_tmp(const char *name, enum media_type t);


/* ---- walk.c ---- */
struct walk;
struct walk_entry {
	const char *path;  /* relative to the root ("a/b.jpg"); valid until the next walk_next() */
	const char *name;  /* its last component */
	int parent_fd;     /* its directory, open (valid until the next walk_next()) */
	struct stat st;    /* lstat */
	enum media_type type;
	int other_dev;     /* a directory on another file system (a mount point): never entered */
};
/*
 * Open the walk of the folder `rootfd` (borrowed; kept open by the
 * caller). A directory whose st_dev is not the folder's is returned with
 * other_dev set and not entered.
 */
struct walk *walk_new(int rootfd);
/* 1 with *e filled, 0 at the end, -1 on error (a folder that cannot be read). */
int walk_next(struct walk *w, struct walk_entry *e);
/* Do not enter the directory walk_next() just returned. */
void walk_skip(struct walk *w);
void walk_free(struct walk *w);
enum media_type media_type_of(mode_t m);

/* ---- check.c ---- */
/* Is `name` an acceptable relative path (no empty, `.`, `..` component, no newline, not absolute)? 0 or -1. */
int media_check_path(const char *name);
/* The type attribute's value, or MEDIA_OTHER when absent/unknown. */
enum media_type media_attr_type(const struct dd_stream_info *e);
/* Parse the `mode` and `mtime` attributes (strict); 0 or -1 (error names the entry). */
int media_attr_mode(const struct dd_stream_info *e, mode_t *mode);
int media_attr_mtime(const struct dd_stream_info *e, struct timespec *ts);
/* A deep copy of an entry (name, attributes, chunks): freed with dd_stream_info_clear(). */
void media_info_copy(struct dd_stream_info *dst, const struct dd_stream_info *src);
/* "seconds.nanoseconds" as the listing writes it. */
void media_format_mtime(char out[48], const struct timespec *ts);

/*
 * Validation of a listing, entry by entry in order: a stack of the
 * directories on the current path (bounded by depth, not by entries).
 */
struct media_checker {
	char *prev;        /* previous entry's name */
	char **dirs;       /* listed directories on the current path */
	size_t ndirs, cap;
};
int media_checker_add(struct media_checker *c, const struct dd_stream_info *e);
void media_checker_release(struct media_checker *c);

/* ---- index.c ---- */
/* What made a file "unchanged": its stat at the time it matched the entry. */
struct idx_stat {
	uint64_t size, ino;
	int64_t mtime_s, ctime_s;
	uint32_t mtime_ns, ctime_ns;
};
void idx_stat_from(struct idx_stat *s, const struct stat *st);
int idx_stat_equal(const struct idx_stat *a, const struct idx_stat *b);

enum { IDX_PRIVATE = 1 << 0 }; /* recorded from a private snapshot: its chunks are the cache's only */

/* What the record is of: the folder (its device and inode, 0 0 when missing) and the store (dd_store_identity). */
struct idx_origin {
	uint64_t root_dev, root_ino;
	char store[65];
};
struct idx_header {
	uint32_t flags;
	char id[65];            /* the snapshot the folder matched; "" none */
	int64_t stamp_s;        /* the file system's clock when the record began: */
	uint32_t stamp_ns;      /* a file whose ctime is after it is not trusted */
	struct idx_origin origin;
	uint8_t nonce[16];      /* the capture that wrote it (a pending record is committed by that capture only) */
};
/* Is a file with this recorded stat safe to call unchanged when its stat matches (not racily recorded)? */
int idx_trusted(const struct idx_header *h, const struct idx_stat *s);
/* Make a recorded stat never trusted (a file that changed while apply recorded it). */
void idx_stat_untrust(struct idx_stat *s);
/* root NULL: the folder is missing; store NULL: not compared (idx_same_origin) / none. */
void idx_origin_of(struct idx_origin *o, const struct stat *root, const char *store);
/* Is the record of this folder (same device and inode) and, unless store is NULL, this store? (else a debug line) */
int idx_same_origin(const struct idx_header *h, const struct stat *root, const char *store);

struct idx_entry {
	struct dd_stream_info info;
	struct idx_stat st;
};
struct idx_reader;
/*
 * Open the folder's record (<dir>/index): 0, or DD_NOTFOUND when there is
 * none or it is damaged (a debug line says which; never trusted then).
 */
int idx_open(struct idx_reader **out, const char *path);
/*
 * The same on an open stream of `size` bytes (taken: closed by idx_close,
 * or here when it is damaged); `path` names it in debug lines. idx_open
 * is this on the file; the fuzzer (fuzz/fuzz-media-index.c) calls it on
 * bytes in memory.
 */
int idx_open_stream(struct idx_reader **out, FILE *f, uint64_t size, const char *path);
const struct idx_header *idx_header(const struct idx_reader *r);
/* 1 with *e valid until the next call, 0 at the end (or at damage: a debug line). */
int idx_next(struct idx_reader *r, const struct idx_entry **e);
void idx_close(struct idx_reader *r);

/* Look ahead in a record merged in path order: the entry named `path`, or NULL. */
struct idx_cursor {
	struct idx_reader *r;
	const struct idx_entry *cur;
	int done;
};
const struct idx_entry *idx_find(struct idx_cursor *c, const char *path);

struct idx_writer;
/* Begin a record in `dir` (created); its stamp is the file system's clock now, which has ticked once on return. */
int idx_writer_new(struct idx_writer **out, const char *dir);
/* Take the stamp now (apply: after writing the files it records, which it knows hold their entries). */
void idx_writer_restamp(struct idx_writer *w);
int idx_writer_add(struct idx_writer *w, const struct dd_stream_info *e, const struct idx_stat *st);
void idx_writer_set_origin(struct idx_writer *w, const struct idx_origin *o);
/* The record's nonce (idx_commit_pending commits a pending record with this nonce only). */
void idx_writer_nonce(const struct idx_writer *w, uint8_t nonce[16]);
/* Wait until the file system's clock is past `t` (at most one tick). */
void idx_writer_wait_past(struct idx_writer *w, const struct timespec *t);
/* Finish and rename to <dir>/<name> with flags and id ("" none). Frees w either way. */
int idx_writer_finish(struct idx_writer *w, const char *name, uint32_t flags, const char *id);
void idx_writer_abort(struct idx_writer *w);
/*
 * Set flags and id of <dir>/pending and make it <dir>/index, when its
 * nonce is `nonce` (the capture that wrote it). 0, DD_NOTFOUND (no pending
 * record, or another capture's: left alone), -1.
 */
int idx_commit_pending(const char *dir, uint32_t flags, const char *id, const uint8_t nonce[16]);

/* <statedir>/media/<key of root>: caller frees. */
char *media_state_dir(const struct dd_media_opts *o);

/* ---- capture.c: shared with stash ---- */
/* nonce_out: the pending record's nonce (idx_commit_pending). */
int media_capture(struct dd_snapshot_writer *sw, const struct dd_media_opts *o, struct dd_media_stats *stats,
		  int reuse_private, uint8_t nonce_out[16]);
/* Does the folder hold anything a capture would keep? 0 no (missing or empty), 1 yes, -1. */
int media_has_entries(const char *root);
/* Open the folder's record when it is of this folder (and this store, unless NULL): 0 or DD_NOTFOUND. */
int media_idx_open(struct idx_reader **r, const char *index, const struct stat *root, const char *store);

/* Progress on a terminal, at most ~10 lines a second. */
struct media_progress {
	int on;
	double last;
};
void media_progress_tick(struct media_progress *p, const char *what, const struct dd_media_stats *s, int force);

#endif
