/*
 * store/store.h: the content-addressed, encrypted snapshot store (the
 * public face of src/store/; format in docs/FORMAT.md).
 *
 * A snapshot is a set of named byte streams (a table's COPY data, a schema
 * part, later media files), each cut into content-defined chunks; every chunk
 * is compressed, sealed with XChaCha20-Poly1305 and stored under its keyed
 * BLAKE2b id, so equal content is stored once across snapshots and profiles.
 * The manifest listing the streams is itself an encrypted object; the
 * snapshot id is the id of its content part (streams and their attributes,
 * not the metadata), so the same data always gives the same id.
 *
 * Chunks are grouped into packs of ~16 MiB with encrypted index files
 * (docs/FORMAT.md §4.1-§4.2), written to the local cache (<statedir>/cache)
 * and, unless the store was opened offline or cannot be reached, to the
 * backend (a file:// folder or an s3:// bucket). Reads come from the cache,
 * else the backend (one ranged read per object, which then fills the cache).
 *
 * Threads: a dd_store owns a bounded worker pool for hashing, compressing
 * and encrypting. Several threads may each write their own stream of one
 * snapshot writer at once; a single stream is used by one thread.
 */
#ifndef DD_STORE_STORE_H
#define DD_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define DD_ID_LEN 32
#define DD_ID_HEX_SIZE 65 /* 64 hex digits + NUL */

struct dd_store;
struct dd_snapshot_writer;
struct dd_stream_writer;
struct dd_snapshot;
struct dd_stream_info;
struct dd_stream_reader;
struct dd_chunk_ref;

struct dd_buf;

enum {
	DD_STORE_OFFLINE = 1 << 0, /* cache only: never touch the backend */
};

/* What a passphrase is asked for. */
enum dd_passphrase_purpose {
	DD_PASSPHRASE_UNLOCK = 1, /* open one of the store's key files (adopting a store) */
	DD_PASSPHRASE_NEW = 2,    /* protect a new store's key (may be declined) */
};

/*
 * Supplied by cmd/: ask for a passphrase (environment, terminal ...). The
 * store calls it only when it needs one. Returns 0 with `out` filled,
 * DD_NOTFOUND when none is available (declined, no terminal), -1 on error.
 */
typedef int (*dd_store_passphrase_fn)(struct dd_buf *out, enum dd_passphrase_purpose purpose, void *arg);

/* How to open (or set up) a store. */
struct dd_store_opts {
	const char *url;      /* NULL: the default store, <statedir>/store */
	const char *statedir; /* the clone's private state: key, cache, records */
	int flags;            /* DD_STORE_OFFLINE */
	/* remote stores: see struct dd_backend_opts (store/backend.h) */
	const char *endpoint;
	const char *region;
	int path_style;         /* -1 automatic, 0, 1 */
	int transfers;          /* 0: the default */
	uint64_t part_size;     /* 0: the default */
	int retries;            /* -1: the default */
	/* creating a store only: its compression ("zstd:N" or "none"; NULL: the default, FORMAT.md §3.3) */
	const char *compression;
	/* setup only: asked when a passphrase is needed (NULL: none is available) */
	dd_store_passphrase_fn passphrase;
	void *passphrase_arg;
};

/*
 * Create a new store at `url` (random master key, saved to <statedir>/key
 * with mode 0600, plus a passphrase-wrapped key file in the store when a
 * passphrase is given), or adopt the existing store at `url` (using the
 * local key if it matches, else unwrapping a key file with `passphrase`).
 * *created says which happened. `url` NULL means the default local store.
 */
int dd_store_setup(const char *url, const char *statedir, const char *passphrase, int *created);

/*
 * Open a store with the key in <statedir>/key. The store's config comes
 * from the local cache when it was confirmed there for this URL and opens
 * with the key; else from the store (and the cache learns it).
 */
int dd_store_open_opts(struct dd_store **out, const struct dd_store_opts *o);
/* The same with only a URL (NULL: the default store). */
int dd_store_open(struct dd_store **out, const char *url, const char *statedir, int flags);
void dd_store_free(struct dd_store *st);

/* What dd_store_probe() found wrong (doctor names the piece). */
enum dd_store_probe_fail {
	DD_PROBE_OK,
	DD_PROBE_NO_KEY,      /* no <statedir>/key */
	DD_PROBE_BAD_KEY,     /* <statedir>/key is there but unusable (unreadable, a link, loose mode, garbage) */
	DD_PROBE_UNREACHABLE, /* the backend cannot be opened or answer */
	DD_PROBE_NO_STORE,    /* reachable, but no store (no config object) at the URL */
	DD_PROBE_WRONG_KEY,   /* the store belongs to another key */
	DD_PROBE_DAMAGED,     /* its config does not parse or authenticate */
};
/*
 * For doctor: read the store's config from the backend itself (one small
 * request, never the cache's copy, no data) and check it against the local
 * key. 0, or -1 with *why saying which piece failed (error set).
 */
int dd_store_probe(const struct dd_store_opts *o, enum dd_store_probe_fail *why);

/* ---- writing a snapshot ---- */
int dd_snapshot_begin(struct dd_snapshot_writer **out, struct dd_store *st);
/* Metadata (profile, created, host, git commit ...): stored, but not part of the id. */
void dd_snapshot_set_meta(struct dd_snapshot_writer *sw, const char *key, const char *value);
/* Start a stream; names are unique within a snapshot. Thread-safe. */
int dd_stream_begin(struct dd_stream_writer **out, struct dd_snapshot_writer *sw, const char *name);
int dd_stream_write(struct dd_stream_writer *w, const void *data, size_t len);
/*
 * dd_stream_write() of new bytes that replace bytes [old, old + old_len) of
 * the previous version (dd_stream_set_previous): an updated row in its old
 * version's place. The same chunks; the hint lets a delta encode the new
 * bytes as their differences from the old ones (object.h, delta plans).
 */
int dd_stream_write_replacing(struct dd_stream_writer *w, const void *data, size_t len, uint64_t old, uint64_t old_len);
/* Attributes (rows, columns ...): part of the id. */
void dd_stream_set_attr(struct dd_stream_writer *w, const char *key, const char *value);
/* Wait until every chunk is stored and record the stream; frees w either way. */
int dd_stream_end(struct dd_stream_writer *w);
/* Drop a stream that will not be completed; frees w. The thread's error (and hint) stay as they were. */
void dd_stream_abort(struct dd_stream_writer *w);
/*
 * Write the manifest (streams sorted by name) and return the snapshot id.
 * Frees sw either way. Returns 0, or DD_EXISTS if that snapshot already existed.
 */
int dd_snapshot_commit(struct dd_snapshot_writer *sw, char id_hex[DD_ID_HEX_SIZE]);
void dd_snapshot_abort(struct dd_snapshot_writer *sw);

/*
 * ---- incremental snapshots (issue 19) ----
 * A table's stream in the profile's previous snapshot (same store) can be
 * carried into the next snapshot without reading the table again, whole or
 * in byte ranges, and new chunks of a stream can be stored as deltas
 * against the previous version's chunks (docs/FORMAT.md §4). Whatever path
 * is taken, the stream's bytes, its chunks and hence the snapshot id are
 * exactly those a full write of the same bytes gives.
 */
/*
 * Put stream `prev` (a record of an earlier snapshot of this store) into
 * this snapshot as it is: name, attributes, size, checksum and chunks,
 * without reading its data; each chunk is made one this snapshot keeps (as
 * dd_listing_reuse does). 0; DD_NOTFOUND (error set, for a -v line) when a
 * chunk is in no pack of the store or cache any more (read the data
 * instead); -1. (splice.c)
 */
int dd_snapshot_reuse_stream(struct dd_snapshot_writer *sw, const struct dd_stream_info *prev);
/*
 * The previous version of this stream (copied), before the first write.
 * With it, dd_stream_write_previous() may append ranges of it, and new
 * chunks may be stored as deltas against its chunk at the same place
 * (writer.c).
 */
void dd_stream_set_previous(struct dd_stream_writer *w, const struct dd_stream_info *prev);
/*
 * A hint for the delta bases of new bytes: byte `at` of this stream (its
 * offset counted from the stream's start, bytes written and bytes still to
 * be written alike) holds what byte `prev_off` of the previous version
 * held (a row found again by its key). The chunk that contains `at`, and
 * the chunks after it, take their bases from there, where the alignment
 * would otherwise drift by the size of every insertion and deletion
 * before them (a full read after scattered edits). Only a hint: a wrong
 * one costs bytes, never correctness. Hints must come in stream order;
 * ignored without a previous version.
 */
void dd_stream_align_previous(struct dd_stream_writer *w, uint64_t at, uint64_t prev_off);
/*
 * Append bytes [off, off + len) of the previous stream: the same result as
 * dd_stream_write() of those bytes (same chunks, same ids), but whole
 * previous chunks that the chunker would cut the same way are taken by
 * reference without being read; the rest is read (cache, else store) and
 * chunked. 0; DD_NOTFOUND when a needed chunk is gone (the caller reads
 * the data instead; the stream must then be aborted); -1. (splice.c)
 */
int dd_stream_write_previous(struct dd_stream_writer *w, uint64_t off, uint64_t len);
/*
 * Read the previous stream where dd_stream_write_previous() reads it: *p
 * points at byte `off` (< its size), *len bytes up to the end of the chunk
 * holding it, valid until the next call on `w`. The chunk stays fetched
 * for dd_stream_write_previous() (the last two are kept), so a caller
 * that reads ahead of the ranges it appends fetches each chunk once.
 * 0, DD_NOTFOUND (a chunk gone: the stream must be aborted), -1. (splice.c)
 */
int dd_stream_previous_view(struct dd_stream_writer *w, uint64_t off, const char **p, size_t *len);
/*
 * A hint: previous bytes [off, off + len) are read soon (a walk with
 * dd_stream_previous_view, a splice); the chunks holding them that no slot
 * holds are read in ahead by the cache (dd_store_advise_object). Nothing fails.
 */
void dd_stream_previous_advise(struct dd_stream_writer *w, uint64_t off, uint64_t len);
/*
 * What dd_stream_write_previous() did so far on writer `w` (call before
 * dd_stream_end, which frees it): previous bytes taken by reference (whole
 * chunks, not read), previous bytes read and chunked again, and the
 * previous chunks fetched for that (their plaintext bytes; the last two
 * read are kept, so ranges in order fetch each chunk once). (splice.c)
 */
struct dd_splice_stats {
	uint64_t ref_bytes, ref_chunks;
	uint64_t read_bytes;
	uint64_t fetched_bytes, fetched_chunks;
};
void dd_stream_write_stats(struct dd_stream_writer *w, struct dd_splice_stats *out);
/*
 * dd_stream_open() from byte `off` on: the first piece dd_stream_next()
 * gives starts there; off == size gives a reader with nothing to read,
 * off > size is refused (-1). A reader that starts past the first chunk
 * cannot check the stream's whole checksum (a hash list over every chunk
 * id), only the size it reaches; each chunk's id is still recomputed from
 * its plaintext when it is opened, so every byte it gives was written
 * under that id. (reader.c)
 */
int dd_stream_open_at(struct dd_stream_reader **out, struct dd_store *st, const struct dd_stream_info *si,
		      uint64_t off);

/* ---- reading a snapshot ---- */
/* Returns 0, DD_NOTFOUND if the snapshot is in neither the cache nor the store (error set), -1 on error. */
int dd_snapshot_load(struct dd_snapshot **out, struct dd_store *st, const char *id_hex);
void dd_snapshot_free(struct dd_snapshot *s);
const char *dd_snapshot_id(const struct dd_snapshot *s);
const char *dd_snapshot_meta(const struct dd_snapshot *s, const char *key);
size_t dd_snapshot_count(const struct dd_snapshot *s);
const struct dd_stream_info *dd_snapshot_stream(const struct dd_snapshot *s, size_t i);
const struct dd_stream_info *dd_snapshot_find(const struct dd_snapshot *s, const char *name);

const char *dd_stream_name(const struct dd_stream_info *si);
uint64_t dd_stream_size(const struct dd_stream_info *si);
const char *dd_stream_attr(const struct dd_stream_info *si, const char *key);

/* Read a stream back; chunks are fetched and decrypted ahead in the pool. */
int dd_stream_open(struct dd_stream_reader **out, struct dd_store *st, const struct dd_stream_info *si);
/*
 * The next piece of plaintext: returns 1 with *data and *len valid until the
 * next call, 0 at the end (after checking size and checksum), -1 on error.
 */
int dd_stream_next(struct dd_stream_reader *r, const void **data, size_t *len);
void dd_stream_close(struct dd_stream_reader *r);

/*
 * ---- listings (docs/FORMAT.md §6.1): entries too many for the manifest ----
 *
 * A listing is a stream of a snapshot whose content is a sequence of
 * entries, each encoded like a manifest stream (§6: a name, sorted
 * attributes, size, checksum, chunk list) and sorted in path order
 * (dd_path_cmp). An entry's chunk list is its own content, stored as a
 * detached stream (its own chunk sequence, not a stream of the manifest).
 * The manifest marks a listing stream with the attribute `listing` (its
 * kind, e.g. "media"). A media folder of 100,000 files is one listing: the
 * manifest stays small and neither writer nor reader holds the list in
 * memory. Push, fetch, verify and the cache's gc follow listings
 * (dd_snapshot_each_chunk), so an entry's chunks are reachable like a
 * stream's.
 */
struct dd_listing_writer;
struct dd_listing_reader;

/* Path order: bytewise, except that '/' sorts before every other byte (a folder's entries follow it). */
int dd_path_cmp(const char *a, const char *b);

/* Start the listing stream `name` of kind `kind` (its `listing` attribute). One thread uses it. */
int dd_listing_begin(struct dd_listing_writer **out, struct dd_snapshot_writer *sw, const char *name,
		     const char *kind);
/*
 * Store one entry's content: a detached stream writer (dd_stream_write,
 * then dd_content_end, or dd_stream_abort). Several may be open at once, so
 * a caller can keep many small files in flight. Thread-safe.
 */
int dd_content_begin(struct dd_stream_writer **out, struct dd_snapshot_writer *sw);
/*
 * Wait until every chunk is stored; info->size, checksum, chunks and
 * nchunks get the content's (info->name and attrs are left alone). Frees w
 * either way.
 */
int dd_content_end(struct dd_stream_writer *w, struct dd_stream_info *info);
/*
 * Append an entry: name (strictly after the previous one in path order,
 * 1..DD_NAME_MAX bytes), attributes (any order; sorted here, keys unique),
 * size, checksum and chunks from dd_content_end() or from an entry of an
 * earlier listing of this store (chunks the store holds: see
 * dd_listing_reuse, which it calls; a chunk no pack holds fails it, -1).
 * Copies what it needs; the caller keeps `entry`.
 */
int dd_listing_add(struct dd_listing_writer *lw, const struct dd_stream_info *entry);
/*
 * May `entry`, reused from an earlier listing of this store (a media index
 * naming what the folder held), go into this listing as it is? Makes each
 * of its chunks one this snapshot keeps (a private pack's chunk copied into
 * this writer's packs, docs/FORMAT.md §3.5). 0 yes (dd_listing_add then
 * takes it); DD_NOTFOUND (error recorded, for a debug line) when no pack of
 * the store or cache holds one of its chunks any more (a dropped stash's
 * packs taken by gc): read the file again instead; -1 on failure.
 */
int dd_listing_reuse(struct dd_listing_writer *lw, const struct dd_stream_info *entry);
/* Record the listing as a stream of the snapshot (its attributes: listing, entries). Frees lw either way. */
int dd_listing_end(struct dd_listing_writer *lw, uint64_t *entries);
void dd_listing_abort(struct dd_listing_writer *lw);

/* Read a listing stream (one with a `listing` attribute) back, entry by entry. */
int dd_listing_open(struct dd_listing_reader **out, struct dd_store *st, const struct dd_stream_info *si);
/*
 * The next entry: 1 with *entry valid until the next call (open its
 * content with dd_stream_open), 0 at the end (the listing's size and
 * checksum checked), -1 on a damaged or hostile listing (error set: out of
 * order, malformed, counts beyond the bytes, trailing bytes).
 */
int dd_listing_next(struct dd_listing_reader *lr, const struct dd_stream_info **entry);
void dd_listing_close(struct dd_listing_reader *lr);

/*
 * Call fn for every chunk snapshot `s` needs: its streams' chunks, and for
 * each listing its entries' chunks (reading the listing: from the cache,
 * else the backend). `stream` names the stream or "<listing>/<entry>".
 * Stops at fn's first non-zero return and returns it; -1 on error.
 */
int dd_snapshot_each_chunk(struct dd_store *st, const struct dd_snapshot *s,
			   int (*fn)(const struct dd_chunk_ref *ref, const char *stream, void *arg), void *arg);

/*
 * The store's identity for a record kept beside it (the media index): 64
 * hex, a keyed hash of the key id and the chunker's parameters, so an index
 * written for another store (re-init, key change) is told apart. Valid
 * until the next call on this thread. (Issue 17, media; store-identity.c.)
 */
const char *dd_store_identity(const struct dd_store *st);
/*
 * The masking key (issue 21): crypto_kdf_derive_from_key(32 bytes, subkey
 * 1, context "ddmask01", the master key), its own context so that no
 * store subkey is ever used for it (FORMAT.md §3.2). The caller wipes it.
 */
#define DD_MASK_KEY_LEN 32
void dd_store_mask_key(const struct dd_store *st, unsigned char out[DD_MASK_KEY_LEN]);
/* The store a snapshot writer writes to (writer.c; internal.h declares it too). */
struct dd_snapshot_writer;
struct dd_store *dd_snapshot_writer_store(const struct dd_snapshot_writer *sw);

/*
 * ---- private snapshots: kept in this clone's cache only ----
 * A private snapshot (a media stash: a folder set aside by a switch) has
 * its manifest in <cache>/private/, never in the store: push skips it,
 * status does not count it as a pending upload, gc keeps its objects while
 * the manifest exists. dd_snapshot_load finds it like any other.
 */
enum { DD_SNAPSHOT_PRIVATE = 1 << 0 };
/*
 * dd_snapshot_begin() with flags: DD_SNAPSHOT_PRIVATE writes its objects
 * and packs to the local cache only (never the backend, even online), and
 * dd_snapshot_commit() then puts the manifest in <cache>/private/.
 */
int dd_snapshot_begin_flags(struct dd_snapshot_writer **out, struct dd_store *st, int flags);
/* Remove a private snapshot's manifest (its objects become gc's to take). 0, DD_NOTFOUND, -1. */
int dd_store_private_drop(struct dd_store *st, const char *id_hex);
/* The private snapshots of this cache: ids (64 hex, sorted), freed with dd_store_snapshot_ids_free(). */
int dd_store_private_list(struct dd_store *st, char ***ids, size_t *n);

/* ---- maintenance ---- */
/* Is the snapshot available (cache or backend) without fetching it? */
int dd_store_has_snapshot(struct dd_store *st, const char *id_hex);
/* Every snapshot in the store (the cache when offline): ids (64 hex), freed with dd_store_snapshot_ids_free(). */
int dd_store_list_snapshots(struct dd_store *st, char ***ids, size_t *n);
void dd_store_snapshot_ids_free(char **ids, size_t n);

/* ---- what `list` shows (store-list.c, issue 18) ---- */
enum { DD_WHERE_CACHE = 1 << 0, DD_WHERE_STORE = 1 << 1 };
struct dd_snapshot_where {
	char id[DD_ID_HEX_SIZE];
	unsigned where; /* DD_WHERE_*: the cache holds its manifest, the store does */
};
/*
 * The snapshots whose manifest the local cache or the store holds, each
 * once, sorted by id (private snapshots left out). The store is asked with
 * one listing; when it cannot be (offline, unreachable, a file store
 * without its config: not mounted?), *store_why gets why (caller frees)
 * and only the cache is listed, else NULL. Free *out with free(). 0, -1.
 */
int dd_store_list_where(struct dd_store *st, struct dd_snapshot_where **out, size_t *n, char **store_why);
/*
 * dd_snapshot_load(), except that a manifest only the store holds is read
 * without being kept in the cache: looking does not change where it is.
 */
int dd_snapshot_peek(struct dd_snapshot **out, struct dd_store *st, const char *id_hex);
/* What a push or fetch moved, for the one-line summary. */
struct dd_transfer_stats {
	uint64_t files, bytes;             /* sent (push) or received (fetch): packs, indexes, manifests, objects */
	uint64_t skipped_files, skipped_bytes; /* already there, not sent again */
	uint64_t requests;                 /* requests made to the backend */
	uint64_t unavailable;              /* push: snapshots in neither the cache nor the store, skipped */
};

/* Progress of a long transfer, for a terminal (called from the calling thread, at most ~10 times a second). */
struct dd_transfer_progress {
	const char *what;                  /* "uploading", "downloading" */
	uint64_t done_bytes, total_bytes;
	uint64_t done_files, total_files;
};
typedef void (*dd_store_progress_fn)(const struct dd_transfer_progress *p, void *arg);
void dd_store_set_progress(struct dd_store *st, dd_store_progress_fn fn, void *arg);

/*
 * Upload what the snapshots `ids` need and the store lacks (packs, index
 * files, manifests, the store's config if it lost it), from the local
 * cache. What the local record says the store holds is not sent or asked
 * about again: with nothing missing, a push makes at most one request.
 * `stats` may be NULL. An interrupted push leaves only unreferenced files
 * behind; the next one sends only what is still missing.
 */
int dd_store_push(struct dd_store *st, const char *const *ids, size_t n, struct dd_transfer_stats *stats);
enum {
	/*
	 * Trust neither the known-objects record nor the store's manifests:
	 * check every pack, index file and manifest the snapshots need with a
	 * request and send what is missing (the repair after `verify`).
	 */
	DD_PUSH_CHECK = 1 << 0,
	/* A snapshot in neither the cache nor the store is skipped with a warning (counted), not an error. */
	DD_PUSH_SKIP_UNAVAILABLE = 1 << 1,
};
/*
 * The same with DD_PUSH_* flags. Without DD_PUSH_CHECK a snapshot whose
 * manifest the store holds (recorded, or one existence check) is skipped:
 * it needs nothing from this clone.
 */
int dd_store_push_flags(struct dd_store *st, const char *const *ids, size_t n, int flags,
			struct dd_transfer_stats *stats);
/*
 * Download into the local cache what the snapshots `ids` need and the cache
 * lacks (ranged reads of packs, in parallel). 0, DD_NOTFOUND when a
 * snapshot is in neither (error names it), -1.
 */
int dd_store_fetch(struct dd_store *st, const char *const *ids, size_t n, struct dd_transfer_stats *stats);
/*
 * 1 when this store's backend could not be reached while writing (the
 * snapshot was completed in the local cache and waits for a push), else 0.
 */
int dd_store_unreachable(const struct dd_store *st);
/*
 * `st` was opened DD_STORE_OFFLINE because opening it online failed with
 * `why` (kept by dd_error_save; copied): an object the cache lacks is then
 * reported with that reason ("object X is not in the local cache: <why>",
 * -1) rather than as merely missing from the cache.
 */
void dd_store_offline_because(struct dd_store *st, const struct dd_error_saved *why);
/* Requests made to the backend since the store was opened (its config, every transfer): a command's own count. */
uint64_t dd_store_requests(const struct dd_store *st);
/* Put the store's config back when the store lost it (from the cache). 0, DD_EXISTS (it had it), -1. */
int dd_store_push_config(struct dd_store *st);
/*
 * Check snapshots: every object exists and authenticates; with read_data,
 * stream checksums too. Names each missing/damaged object (dd_warn) and
 * returns -1 if any.
 */
int dd_store_verify(struct dd_store *st, const char *const *ids, size_t nids, int read_data);

/* ---- the local cache's budget (cache-gc.c; docs/FORMAT.md §3.5) ---- */
/*
 * Record that snapshot `id_hex` was used now (restore, fetch, snapshot):
 * cache/used/<id>, whose mtime orders gc's removals. Best effort, never fails.
 */
void dd_store_snapshot_used(struct dd_store *st, const char *id_hex);

/* What the cache costs, without the key or a request (status). */
struct dd_cache_usage {
	uint64_t bytes;   /* files only the cache holds (a hard link shared with a local store costs nothing) */
	char **pending;   /* snapshots (64 hex, sorted) in the cache the store is not known to hold: push them */
	size_t npending;
};
/* `url` NULL: the default store. 0, -1. */
int dd_store_cache_usage(struct dd_cache_usage *u, const char *statedir, const char *url);
void dd_cache_usage_release(struct dd_cache_usage *u);

/* A cache file gc may remove: the store holds it (known without a request). */
struct dd_cache_item {
	char *name;        /* cache-relative: packs/ab/<64 hex> or data/ab/<64 hex> */
	uint64_t bytes;    /* what removing it frees */
	int named;         /* a snapshot needing it is named by a local branch */
	int64_t last_used; /* newest use of a cached snapshot needing it (seconds); INT64_MIN: none needs it */
	char snapshot[DD_ID_HEX_SIZE]; /* that snapshot ("" none) */
};
/* A snapshot whose manifest is in the cache. */
struct dd_cache_snapshot {
	char id[DD_ID_HEX_SIZE];
	int named;
	int64_t last_used;
};
struct dd_cache_plan {
	uint64_t bytes;          /* as dd_cache_usage.bytes */
	uint64_t removable;      /* the items' bytes */
	uint64_t pending_bytes;  /* packs and objects the store is not known to hold: never removed */
	struct dd_cache_item *items; /* first to go first */
	size_t nitems;
	struct dd_cache_snapshot *snapshots;
	size_t nsnapshots;
};
/*
 * What of the cache may go and in which order: the packs and loose objects
 * the store holds (index files and manifests stay), each ranked by the
 * newest use of the cached snapshots needing it, snapshots in
 * named[0..nnamed) (those local branches name) after all others, files
 * no cached snapshot needs first. `st` may be opened offline; no request
 * is made. 0, -1.
 */
int dd_store_cache_plan(struct dd_cache_plan *plan, struct dd_store *st, const char *const *named, size_t nnamed);
void dd_cache_plan_release(struct dd_cache_plan *plan);
/*
 * Remove one planned file from the cache (already gone: not an error).
 * Crash-safe in any order: only data goes, never the index files and
 * manifests that say where the store has it. 0, -1.
 */
int dd_store_cache_remove(struct dd_store *st, const struct dd_cache_item *it);

/* ---- the store's gc (store-gc.c; docs/DESIGN-NOTES.md, "The store's gc") ---- */
struct dd_store_gc_opts {
	int64_t clock_shift;   /* tests: seconds added to the store's clock, which ages are counted from */
	int64_t grace;         /* seconds: nothing the store got more recently is removed or repacked */
	unsigned repack_below; /* percent: an older pack whose live objects fill less of it is repacked */
	int dry_run;           /* decide and count; change nothing */
};
struct dd_store_gc_count {
	uint64_t files, bytes;
};
struct dd_store_gc_result {
	/* removed (a dry run: would be), by kind; `repacked` are old packs whose live objects were copied first */
	struct dd_store_gc_count manifests, indexes, packs, repacked, loose;
	struct dd_store_gc_count written; /* new packs and the new index file the repack wrote (would write) */
	struct dd_store_gc_count young;   /* garbage kept because it is younger than the grace period */
	uint64_t live_snapshots;          /* manifests kept, with everything they need */
	uint64_t live_objects;
	size_t missing;                   /* snapshots named live but in neither the store nor the cache */
	size_t failed;                    /* removal requests that failed (warned; the next run does them) */
	int64_t cutoff;                   /* changed after this, by the store's clock (+ clock_shift): young */
};
/*
 * Remove from the store what no live snapshot needs and nothing changed
 * for o->grace seconds: manifests, index files, packs without a live
 * object, loose objects; repack older packs whose live share is under
 * o->repack_below percent (their live objects into new packs and a new
 * index file, durable before anything is removed). Live: the snapshots
 * live[0..nlive), every manifest younger than the grace period, the local
 * cache's manifests the store lacks and its private ones, their chunks and
 * their delta bases. Needs the store online. Then, with `up` (NULL: not
 * done), dd_store_gc_uploads() with the same cutoff, while the exclusive
 * lock is still held: a push resuming an older upload under its shared
 * lock never has it aborted. 0 (see res->failed), -1.
 */
struct dd_store_gc_uploads;
int dd_store_gc(struct dd_store *st, const char *const *live, size_t nlive, const struct dd_store_gc_opts *o,
		struct dd_store_gc_result *res, struct dd_store_gc_uploads *up);

/* ---- the store's gc of unfinished multipart uploads (store-gc-uploads.c) ---- */
struct dd_store_gc_upload {
	char *key;         /* as the server holds it (printable) */
	int64_t initiated; /* seconds since the epoch */
};
struct dd_store_gc_uploads {
	struct dd_store_gc_upload *v; /* aborted (a dry run: would be) */
	size_t n;
	size_t young;  /* kept: started within the grace period (or at a time the server did not give) */
	size_t failed; /* aborts, or the listing, that failed (warned; the next run tries again) */
};
/*
 * Abort the multipart uploads in progress in the store (S3; a folder store
 * has none) that started before `cutoff` (the one dd_store_gc() used, by the
 * store's clock; res->cutoff there): their client is gone,
 * and no record of it is left to resume or abort them. A dry run aborts
 * nothing and lists the same ones. Never fails: what fails is warned and
 * counted in res->failed. Release res with dd_store_gc_uploads_release().
 */
void dd_store_gc_uploads(struct dd_store *st, int64_t cutoff, int dry_run, struct dd_store_gc_uploads *res);
void dd_store_gc_uploads_release(struct dd_store_gc_uploads *res);

#endif
