/*
 * media/media.h: a profile's media folder (uploaded user files), captured
 * into a snapshot with its database and restored exactly (DESIGN.md §4
 * "Media", docs/FORMAT.md §6.2).
 *
 * A snapshot holds the folder as one listing stream (store.h, "listings")
 * named DD_MEDIA_STREAM: every entry under the folder in path order, a
 * regular file with its content (through the store's chunk pipeline, so
 * unchanged and shared files cost nothing), a directory (empty ones too),
 * a symlink as its target (never followed); mode and mtime kept; sockets,
 * devices and FIFOs skipped with a warning. Neither capture nor apply
 * holds a whole-tree list in memory: both walk the folder one directory
 * at a time, merged in path order with a listing or the local index.
 * Memory bound: the names of the folders on the current path, each read
 * whole when entered, so it grows with depth times the widest folder (a
 * flat folder of 50,000 files holds its 50,000 names, a few MiB), plus a
 * ring of 32 files in flight, one read buffer and the store's bounded
 * chunk buffers.
 *
 * The local index (<statedir>/media/<key of the folder>/) records, per
 * entry, what the folder held when it last matched a snapshot (size,
 * mtime, inode, content), and which snapshot that was. It lets a capture
 * skip re-reading unchanged files, lets apply skip rewriting them, and
 * answers "has the folder changed since" from sizes and mtimes alone.
 *
 * Nothing is lost: before apply overwrites or removes anything, the caller
 * takes dd_media_stash(), which captures the folder into a private
 * snapshot (store.h) when it differs from its recorded snapshot; applying
 * that id brings the folder back exactly, and is how a failed switch rolls
 * the folder back.
 */
#ifndef DD_MEDIA_MEDIA_H
#define DD_MEDIA_MEDIA_H

#include <stdint.h>

struct dd_store;
struct dd_snapshot_writer;

#define DD_MEDIA_STREAM "media"

struct dd_media_opts {
	const char *root;     /* the media folder, absolute */
	const char *statedir; /* the clone's state folder (<statedir>/media/ holds the local indexes) */
	const char *owner;    /* apply: "user[:group]" to chown to (unknown or not permitted: one warning); NULL: leave */
	int progress;         /* progress lines on stderr when it is a terminal */
	int force;            /* apply: skip the "folder unchanged since its record" check (dd_media_apply) */
};

struct dd_media_stats {
	uint64_t files, dirs, links, bytes;  /* entries of the listing written or applied; bytes of its files */
	uint64_t read_files, read_bytes;     /* capture: files read (the rest reused from the local index) */
	uint64_t written_files, written_bytes, removed; /* apply: files written, entries removed */
	uint64_t skipped;                    /* capture: sockets, devices, FIFOs, mount points left out (each warned) */
	int refused;                         /* apply: the folder changed since its record: nothing written */
};

/*
 * Capture the folder into the listing DD_MEDIA_STREAM of `sw`. A missing
 * folder is captured as empty, with a warning. An unreadable file or
 * folder fails (-1, error names it; the caller aborts the snapshot). The
 * new local index is kept pending until dd_media_commit() or
 * dd_media_discard().
 */
int dd_media_capture(struct dd_snapshot_writer *sw, const struct dd_media_opts *o, struct dd_media_stats *stats);
/*
 * Carry snapshot `id`'s media listing into `sw` unchanged, without the
 * folder: the same entries, their content reused by reference (the chunks
 * the store holds; dd_listing_reuse), so the new snapshot has exactly id's
 * media (promote-schema's TO keeps its files). *stats gets its counts. 0;
 * DD_NOTFOUND when id has no media listing (the new snapshot has none
 * either); -1 on error (a chunk no longer held, a damaged listing).
 */
int dd_media_carry(struct dd_snapshot_writer *sw, struct dd_store *st, const char *id, struct dd_media_stats *stats);
/* The snapshot `id` (holding that capture) committed: the pending index becomes the folder's record. */
int dd_media_commit(const struct dd_media_opts *o, const char *id);
/* The snapshot was abandoned: drop the pending index. */
void dd_media_discard(const struct dd_media_opts *o);

/*
 * Has the folder changed since it last matched a snapshot (sizes, mtimes,
 * inodes, entries added or gone; no file is read)? 0 no (snapshot_out gets
 * that snapshot), 1 yes (snapshot_out gets it too), DD_MEDIA_NORECORD when
 * there is no record of this folder (none, damaged, of another folder at
 * this path: snapshot_out ""), -1 on error. DD_MEDIA_NORECORD is neither 0
 * nor 1 (nor DD_NOTFOUND): test it before treating a result as changed.
 */
#define DD_MEDIA_NORECORD 5
int dd_media_changed(const struct dd_media_opts *o, char snapshot_out[65]);

/*
 * A snapshot that holds the folder exactly as it is, for a switch to set
 * aside before it changes the folder: the recorded snapshot when nothing
 * changed since; "" when the folder is missing or empty; else a new
 * private snapshot (store.h) capturing it. 0 or -1 (nothing changed).
 */
int dd_media_stash(struct dd_store *st, const struct dd_media_opts *o, char id_out[65]);

/*
 * Check that snapshot `id`'s media listing can be applied: it loads, and
 * every entry is acceptable (no absolute path, no `..` or `.` component,
 * no empty component, no NUL or newline, strictly in path order (so no
 * duplicates), every parent listed as a directory before its children (so
 * no path through a symlink), known types and modes). `id` "" is the empty
 * folder. 0, DD_NOTFOUND when the snapshot has no media listing (apply
 * then leaves the folder alone), -1 (error names the bad entry).
 */
int dd_media_check(struct dd_store *st, const char *id);

/*
 * Make the folder equal snapshot `id`'s media listing ("" = empty; a
 * snapshot without one leaves the folder alone and returns DD_NOTFOUND):
 * dd_media_check() first, so a hostile listing writes nothing; then,
 * unless o->force, the folder must still match its record (what
 * dd_media_stash() set aside: dd_media_changed() 0) or hold nothing a
 * capture keeps, else -1 with stats->refused set and nothing written ("media
 * folder X changed during the switch"): what was written into it since the
 * stash is not lost. o->force is for putting a stash back after a failed
 * apply and for finishing a killed one (the folder is then partly applied
 * by us). What is written between that check and apply's own writes (a
 * window of one stat walk) is not seen: that residual is documented in
 * docs/DESIGN-NOTES.md. Then new
 * and changed files written to a temporary name in their folder, fsynced
 * and renamed into place, entries not in the listing removed, modes and
 * mtimes set, owner set when configured; unchanged files (size, mtime and
 * content id per the local index) are not rewritten. Never follows a
 * symlink on disk, never enters or removes a folder on another file
 * system (a mount point: left alone with a warning; listed, it fails), and
 * leaves sockets, FIFOs and devices alone. Kill -9 at any point leaves
 * every file old or new, and
 * a rerun completes. On success the local index records `id`. -1 on error
 * (the folder may be partly applied: the caller applies its stash back).
 */
int dd_media_apply(struct dd_store *st, const char *id, const struct dd_media_opts *o, struct dd_media_stats *stats);

#endif
