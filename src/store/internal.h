/*
 * store/internal.h: what the files of src/store/ share: the dd_store
 * itself, the object path between cache and backend, the store's local
 * state (config cache, known-objects record) and the key helpers that
 * opening and key management both use.
 */
#ifndef DD_STORE_INTERNAL_H
#define DD_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "store/backend.h"
#include "store/chunker.h"
#include "store/crypto.h"
#include "store/keys.h"
#include "store/manifest.h"
#include "store/object.h"
#include "store/pack.h"
#include "store/pool.h"
#include "store/store.h"

struct dd_known;
struct dd_packer;

struct dd_store {
	struct dd_backend *be;    /* NULL when offline */
	struct dd_backend *cache; /* <statedir>/cache */
	struct dd_known *known;   /* what the backend is known to hold; NULL when its exists() is cheap */
	struct dd_keys *keys;
	struct dd_chunker_params *chunker;
	int zlevel;               /* the zstd level every object is sealed with (config: compression) */
	struct dd_pool *pool;
	int flags;
	char *url;                /* for messages */
	struct dd_buf config;     /* the store config in use (as read from the cache or the store) */
	pthread_mutex_t cfgmu;    /* config and the refresh below: transfer threads may fail objects at once */
	int config_refreshed;     /* the store's config was read again this run (at most once) */
	int config_from_store;    /* opening read the config from the store itself (push need not ask again) */
	char *config_refresh_err; /* what that found, repeated to later callers (NULL: nothing wrong) */
	const char *cache_label;  /* "the local cache" (verify points it at the store) */
	pthread_mutex_t bufmu;
	uint8_t **freebufs;       /* recycled chunk buffers */
	size_t nfree, maxfree;
	/* packs (docs/FORMAT.md §4.1-§4.2) */
	struct dd_midx *idx;      /* object -> pack: the cache's index files (and the store's, once refreshed) */
	pthread_mutex_t idxmu;    /* loading and refreshing idx, once each */
	int idx_loaded, idx_refreshed;
	int idx_relisted;         /* dd_store_index_relist() ran (once per run) */
	size_t idx_damaged;       /* index files that did not open while loading (verify counts them) */
	struct dd_packer *packer; /* the pack being collected, packs not yet in an index file, uploads */
	/* private snapshots (store-private.c): packs and index files in <cache>/private/, never uploaded */
	struct dd_midx *pidx;      /* the private packs this run wrote (what private writers reuse) */
	struct dd_packer *ppacker; /* their packer */
	struct dd_midx *opidx;     /* the private index files found in the cache (read only) */
	int opidx_loaded;
	struct dd_pool *xfer;     /* transfers to and from the backend (`transfers` threads); NULL offline */
	atomic_int unreachable;   /* the backend could not be reached: stop talking to it (dd_store_unreachable) */
	_Atomic(struct dd_error_saved *) gone_why; /* the backend's error (and hint) when it became unreachable */
	atomic_uint_fast64_t requests; /* backend requests made (for the transfer summary) */
	/* the store lock this process holds (store-lock.c) */
	pthread_mutex_t lockmu;
	pthread_cond_t lockcv;       /* wakes the refresher to stop */
	int lock_kind;               /* 0: none, DD_STORE_LOCK_SHARED or DD_STORE_LOCK_EXCLUSIVE */
	unsigned lock_count;         /* shared: writers of this process holding it */
	char lock_name[DD_OBJECT_NAME_SIZE]; /* locks/<hex> of our file */
	pthread_t lock_thread;       /* the refresher */
	int lock_thread_on, lock_stop;
	int lock_lost;               /* our lock file was found gone (removed as stale by another process) */
	int lock_releasing;          /* release_locked() is joining the refresher: takers wait */
	int lock_sig;                /* registered with the interrupt watcher (store-lock.c) */
	dd_store_progress_fn progress;
	void *progress_arg;
};

struct dd_snapshot {
	char id[DD_ID_HEX_SIZE];
	struct dd_manifest *m;
};

/* ---- objects (store-objects.c) ---- */
/* "data", "snapshots" or "index": the folder of an object type. */
const char *dd_store_type_dir(int type);
/*
 * Store one object (create-only) in the cache and the backend; skips the
 * work when it is already there. `plain` is sealed with the worker's zstd
 * context. Thread-safe.
 */
int dd_store_put_object(struct dd_store *st, int type, const uint8_t id[32], const void *plain,
			size_t len, ZSTD_CCtx *zc, struct dd_buf *scratch, int *existed);
/* Seal one object for this store: dd_object_seal at the store's compression level. */
int dd_store_seal(struct dd_store *st, struct dd_buf *out, int type, const uint8_t id[32], const void *plain,
		  size_t len, ZSTD_CCtx *zc);
/* Chunk buffers (chunker max bytes) recycled so steady state does not fault in fresh pages. */
uint8_t *dd_store_chunkbuf_get(struct dd_store *st);
void dd_store_chunkbuf_put(struct dd_store *st, uint8_t *buf);
/*
 * Fetch and open an object: cache first (a damaged cache copy is replaced
 * from the backend), then the backend (filling the cache). Returns 0,
 * DD_NOTFOUND if missing everywhere (error set), -1 on error.
 */
int dd_store_get_object(struct dd_store *st, int type, const uint8_t id[32], size_t max_plain,
			struct dd_buf *plain, ZSTD_DCtx *zd);
/*
 * A hint: data object `id` is read soon (dd_store_get_object). When the
 * index places it in a cache pack, the cache reads those bytes in ahead
 * (backend op advise), and when that place is a delta, its base's too,
 * down the chain. Nothing fails; nothing is read on this thread.
 */
void dd_store_advise_object(struct dd_store *st, const uint8_t id[32]);
/*
 * A data object from the cache alone (its loose copy or a cache pack; a
 * delta's bases too): no request to the store. As dd_store_get_object,
 * but authenticated without recomputing ids (as dd_store_get_previous).
 */
int dd_store_get_cached(struct dd_store *st, const uint8_t id[32], size_t max_plain, struct dd_buf *plain,
			ZSTD_DCtx *zd);
/*
 * A chunk of a snapshot's previous version, as dd_store_get_object reads a
 * data object, but copies from this machine's cache are authenticated
 * without recomputing their ids (dd_object_trust_ids): a snapshot reads
 * every previous chunk it changes, and the keyed hash was a quarter of its
 * CPU. Copies from the store are checked in full.
 */
int dd_store_get_previous(struct dd_store *st, const uint8_t id[32], size_t max_plain, struct dd_buf *plain,
			  ZSTD_DCtx *zd);
/*
 * Store data object `id` as dd_store_put_object does, or, when it is new
 * and a delta against `base` (a chunk of the previous version of its
 * stream) is clearly smaller than its full object (under half of it),
 * as a delta object (FORMAT.md §4.3):
 * the base's plaintext `bplain` when the caller has it (read and checked
 * against its id already: splice.c), else from the cache only; its chain
 * within DD_DELTA_DEPTH_WRITE. `plan` (may be NULL): where the chunk's
 * bytes came from, for a delta made without a match search. Thread-safe.
 */
int dd_store_put_data_delta(struct dd_store *st, const uint8_t id[32], const void *plain, size_t len,
			    const struct dd_chunk_ref *base, const struct dd_buf *bplain, const struct dd_delta_plan *plan,
			    ZSTD_CCtx *zc, ZSTD_DCtx *zd, struct dd_buf *scratch, int *existed);
/* The base of data object `id` when some place of it (index files: the store's or private) is a delta: 1, else 0. */
int dd_store_delta_of(struct dd_store *st, const uint8_t id[32], struct dd_delta_ref *d);
/*
 * Before a live writer puts manifest `m` (id `id_hex`) in the store: queue
 * for upload (dd_packer_flush) the index file, with its packs, of every
 * cache pack the store is not known to hold that a chunk of `m`'s streams
 * or one of its delta bases sits in (a listing's entries: not read here;
 * dd_store_adopt_chunk queues those it reuses). 0, -1.
 */
int dd_store_need_manifest_files(struct dd_store *st, struct dd_manifest *m, const char *id_hex);
/*
 * A private snapshot's data object: reused when a ready pack of the map
 * (cache or store) or this run's private packs hold it, else into the
 * private packer's open pack. No request is made.
 */
int dd_store_put_private(struct dd_store *st, const uint8_t id[32], const void *plain, size_t len, ZSTD_CCtx *zc,
			 struct dd_buf *scratch, int *existed);
/*
 * A chunk a listing entry names that its writer did not store (an entry
 * reused from an earlier listing). A public writer (`priv` 0) copies a
 * chunk only private packs hold into a public pack, so its snapshot never
 * depends on what the store cannot get; a private writer copies a chunk
 * only an older private pack holds into one of its own, since gc may take
 * an older private pack once no private manifest needs it. 0;
 * DD_NOTFOUND (error recorded) when no pack (nor loose object) this store
 * or its cache holds has the chunk, or the private pack that had it went
 * before the copy (a dropped stash's, taken by gc): nothing to name; -1.
 */
int dd_store_adopt_chunk(struct dd_store *st, const struct dd_chunk_ref *ref, int priv);

/* ---- the writer's side of splicing (writer.c, for splice.c) ---- */
/*
 * Put finished stream record `si` into the snapshot (taking its contents:
 * *si is zeroed), refused like dd_stream_begin when the name is invalid or
 * already written or being written. 0, -1.
 */
int dd_snapshot_add_stream(struct dd_snapshot_writer *sw, struct dd_stream_info *si);
struct dd_splice; /* splice.c's per-writer state, freed with the writer */
void dd_splice_free(struct dd_splice *sp);
struct dd_splice **dd_stream_splice(struct dd_stream_writer *w);
/* The previous stream (dd_stream_set_previous), NULL when none. */
const struct dd_stream_info *dd_stream_previous(const struct dd_stream_writer *w);
struct dd_snapshot_writer *dd_stream_snapshot_writer(const struct dd_stream_writer *w);
/* Is the chunk being filled empty (the chunker just cut, or nothing was written)? */
int dd_stream_at_cut(const struct dd_stream_writer *w);
/* w->prev_at (tests). */
uint64_t dd_stream_prev_at(const struct dd_stream_writer *w);
/*
 * Chunk bytes p[0..len) of the previous stream, which start at its offset
 * `off`, up to and including the first cut (*used: how many were taken;
 * dd_stream_at_cut() then says whether they ended a chunk), keeping
 * prev_at: exact while the chunk being filled holds only previous bytes in
 * a row, else an estimate (the delta writer's base). 0, -1.
 */
int dd_stream_feed_previous(struct dd_stream_writer *w, const uint8_t *p, size_t len, uint64_t off, size_t *used);
/*
 * Append chunk `ref` (already one this snapshot keeps) by reference at a
 * cut, as a finished FIFO entry; prev_at becomes `prev_end`. 0, -1.
 */
int dd_stream_append_ref(struct dd_stream_writer *w, const struct dd_chunk_ref *ref, uint64_t prev_end);
/*
 * The plaintext of previous chunk `ref` when splice.c holds it fetched
 * (dd_stream_write_previous, dd_stream_previous_view), else NULL: a
 * delta against it needs no second read of its base.
 */
const struct dd_buf *dd_splice_plain(const struct dd_splice *sp, const struct dd_stream_info *prev,
				     const struct dd_chunk_ref *ref);
/* Make every earlier put durable (deferred directory fsyncs), then record what the backend confirmed. */
int dd_store_sync(struct dd_store *st);
/* Parse and check a manifest's plaintext against `id`. */
int dd_snapshot_decode(struct dd_snapshot **out, struct dd_store *st, const uint8_t id[32],
		       const struct dd_buf *plain);

struct dd_run_obj;
/*
 * Data objects objs[0..n) of the store's pack `pack` (ascending offsets, within
 * a few MiB): one ranged read from the first offset to the end of the last,
 * each object authenticated and put into the cache. 0 when every object
 * joined the cache (their plaintext sizes added to *plain_bytes); else 1
 * with no error set, the caller then reads each with dd_store_get_object
 * (which explains any failure). An unreachable store is marked gone.
 */
int dd_store_get_run(struct dd_store *st, const char *pack, const struct dd_run_obj *objs, size_t n, ZSTD_DCtx *zd,
		     uint64_t *plain_bytes);

/*
 * The whole pack `name` from the store into the cache (the backend offers
 * get_to_fd): streamed to a locked temp file beside its place in the cache,
 * its SHA-256 checked against its name, then linked into place. 0 (the
 * cache holds it; *size its bytes), DD_EXISTS (the cache already did), 1
 * (not fetched, no error set: missing, refused, or damaged in the store,
 * which is warned; the caller reads the objects it needs one by one, which
 * explains any failure), DD_EUNREACHABLE (the caller marks the store gone;
 * the temp file stays and the next fetch starts it over), -1 (a local error).
 */
int dd_store_fetch_pack(struct dd_store *st, const char *name, uint64_t *size);

/* Is the backend there and reachable (not offline, no DD_EUNREACHABLE yet)? */
int dd_store_live(struct dd_store *st);
/*
 * `r` is a backend's answer: when it is DD_EUNREACHABLE, stop talking to
 * the backend for the rest of the run (the work finishes in the cache),
 * keep the first such error (why, and the backend's hint) for
 * dd_store_unreachable_error(), clear it and return 1; else 0. Call it in
 * the thread that got the answer: the error is that thread's.
 */
int dd_store_gone(struct dd_store *st, int r);
/*
 * Record that the store cannot be reached: "<context>: <the backend's
 * reason>" with the backend's hint (the context alone, when NULL), or the
 * plain fact when no reason was kept. Returns -1.
 */
int dd_store_unreachable_error(struct dd_store *st, const char *context);
/*
 * Keep `text`, the config of the store at `url` (checked already), as the
 * copy in `cache` (the local cache backend): files config and config-url
 * (docs/FORMAT.md §3.5). Best effort: a failure only costs a round trip.
 */
void dd_store_cache_config(struct dd_backend *cache, const char *url, const struct dd_buf *text);
/* Object name in the known-objects record? (0 for backends with a cheap exists()) */
int dd_store_known(struct dd_store *st, const char *name);
/* The backend confirmed `name`: recorded after its next sync. */
void dd_store_confirmed(struct dd_store *st, const char *name);
/* Sync the backend, then record what it confirmed before the sync. */
int dd_store_backend_sync(struct dd_store *st);
/* Load the cache's index files into st->idx (once). */
int dd_store_index_load(struct dd_store *st);
/*
 * Learn the store's index files (once per run: list index/, fetch the ones
 * the cache lacks); marks them as held by the store. An unreachable store
 * is not an error here (dd_store_gone).
 */
int dd_store_index_refresh(struct dd_store *st);
/*
 * A reader found none of an object's places in the store: list the
 * store's index files again (once per run, whichever thread asks first;
 * the store's gc may have repacked it). 1 once that listing is done (look
 * again), -1.
 */
int dd_store_index_relist(struct dd_store *st);
/* Read and decode index file `id` from `be` (the cache or the store): 0, DD_NOTFOUND, -1. */
int dd_store_index_read(struct dd_store *st, struct dd_backend *be, const uint8_t id[32], struct dd_buf *obj,
			struct dd_index_pack **p, size_t *np);

/* ---- packs being written (packer.c) ---- */
/* A packer whose packs join `idx`; `priv`: private snapshots' (cache only, under private/, never uploaded). */
int dd_packer_new(struct dd_packer **out, struct dd_midx *idx, int priv);
void dd_packer_free(struct dd_packer *pk);
/*
 * Add the sealed data object `obj` to the open pack; a full pack is written
 * to the cache, checked, and queued for upload. *existed when another
 * thread added the same id first. Thread-safe.
 */
int dd_packer_add(struct dd_store *st, const uint8_t id[32], int type, const struct dd_buf *obj, int *existed,
		  int priv);
/* The same with a delta object's base (`d`, when type is DD_OBJ_DELTA; else NULL). */
int dd_packer_add_delta(struct dd_store *st, const uint8_t id[32], int type, const struct dd_delta_ref *d,
			const struct dd_buf *obj, int *existed, int priv);
/* An object of index file `file` was reused: push that file (and its packs) at the next flush. */
void dd_packer_need_file(struct dd_store *st, uint32_t file);
/*
 * Finish the open pack, wait for the uploads, write an index file for the
 * packs written since the last flush (cache, then store), and push the
 * index files reused objects need. The cache's directories are synced.
 */
int dd_packer_flush(struct dd_store *st);
/* A new snapshot: forget the failure of an earlier one (its packs are marked failed, their objects absent). */
void dd_packer_begin(struct dd_store *st, int priv);
/* The private packer's flush: the open pack finished, an index file under <cache>/private/index/. */
int dd_packer_flush_private(struct dd_store *st);
/* Tests: write an index file midway every `packs` packs (default DD_PACK_INDEX_EVERY). */
void dd_packer_set_index_every(struct dd_store *st, size_t packs);
/* Tests: wait until no pack is being finished (the finisher thread writes packs and midway index files). */
void dd_packer_wait_finished(struct dd_store *st);
/*
 * Wait for the packers' finisher threads, then for uploads still running (a
 * snapshot abandoned before its flush); before freeing the store.
 */
void dd_packer_abandon(struct dd_store *st);
/* The most bytes of objects the writer held in packs at once (tests: memory is bounded). */
uint64_t dd_packer_peak(struct dd_store *st);
/*
 * Check the whole pack `data` named `name`: it hashes to its name, its
 * header opens, every object opens under its id: fully (decompressed, id
 * recomputed: verify --read-data) when `full`, else authenticated only
 * (dd_object_check: the packer's read-back). *e (caller frees) gets its
 * entries. Errors read "damaged (...)" or name the object.
 */
int dd_store_check_pack(struct dd_store *st, const uint8_t name[32], const uint8_t *data, size_t len,
			struct dd_pack_entry **e, size_t *n, int full, ZSTD_DCtx *zd);

/* ---- writing (writer.c) ---- */
/* The store a snapshot writer writes to, and its DD_SNAPSHOT_* flags. */
struct dd_store *dd_snapshot_writer_store(const struct dd_snapshot_writer *sw);
int dd_snapshot_writer_flags(const struct dd_snapshot_writer *sw);

/* ---- listings (listing.c) ---- */
/*
 * dd_snapshot_each_chunk() with a choice: the streams' own chunks
 * (DD_EACH_STREAMS: listings' content included), the listings' entries'
 * chunks (DD_EACH_ENTRIES: reads each listing), or both. Fetch takes the
 * first, brings them, then the second: a listing is read from the cache.
 */
enum { DD_EACH_STREAMS = 1 << 0, DD_EACH_ENTRIES = 1 << 1 };
int dd_snapshot_each_chunk_flags(struct dd_store *st, const struct dd_snapshot *s, int flags,
				 int (*fn)(const struct dd_chunk_ref *ref, const char *stream, void *arg), void *arg);
/* The entries' chunks of the listing `si` ("<listing>/<entry>" as `stream`); as dd_snapshot_each_chunk(). */
int dd_listing_each_chunk(struct dd_store *st, const struct dd_stream_info *si,
			  int (*fn)(const struct dd_chunk_ref *ref, const char *stream, void *arg), void *arg);

/* ---- private snapshots (store-private.c) ---- */
/* Load <cache>/private/index/ into st->opidx (once). */
int dd_store_private_index_load(struct dd_store *st);
/* The same, and with `again` also the index files written since (this run's own among them): gc's plan. */
int dd_store_private_index_learn(struct dd_store *st, int again);
/* Put the sealed manifest `obj` of private snapshot `id` in <cache>/private/: 0, DD_EXISTS, -1. */
int dd_store_private_put(struct dd_store *st, const uint8_t id[32], const struct dd_buf *obj);
/* Load private snapshot `id_hex`: 0, DD_NOTFOUND (no such private snapshot, no error), -1. */
int dd_store_private_load(struct dd_snapshot **out, struct dd_store *st, const uint8_t id[32]);

/* ---- transfers (transfer.c) ---- */
struct dd_xfer;
struct dd_xfer_batch {
	const char *what;            /* progress label ("uploading"): reported from submit and wait; NULL: none */
	struct dd_xfer *head, *tail; /* submitted, not yet counted */
	size_t n;
	uint64_t total_bytes;
	uint64_t done_files, done_bytes;
	struct dd_transfer_stats acc; /* what the finished ones moved or found there */
	int failed;                   /* the first failure (-1, DD_NOTFOUND), its error in `why` */
	struct dd_error_saved why;
	int64_t last_report;
};
enum dd_xfer_kind {
	DD_XFER_UPLOAD = 1,  /* put_file the cache's copy of `name` (DD_EXISTS: the store had it) */
	DD_XFER_ENSURE = 2,  /* exists() first; upload only when the store lacks it */
	DD_XFER_OBJECT = 3,  /* fetch a data object into the cache (dd_store_get_object) */
	DD_XFER_FRESH = 4,   /* DD_XFER_UPLOAD of a pack the packer has just written and checked */
	DD_XFER_RUN = 5,     /* fetch a run of data objects of one pack with one read (dd_store_get_run) */
	DD_XFER_PACK = 6,    /* fetch a whole pack into the cache (dd_store_fetch_pack), for the objects listed */
};
/* One object of a run: where it lies in its pack, and its plaintext size (the manifest's). */
struct dd_run_obj {
	uint8_t id[32];
	uint64_t off;
	uint32_t len, plain_len;
};
/*
 * Queue a DD_XFER_RUN of objs[0..n) (n >= 2, ascending offsets) in the
 * store's pack `pack`, or a DD_XFER_PACK of that pack for objs[0..n) (n >=
 * 1); takes objs.
 */
void dd_xfer_submit_run(struct dd_store *st, struct dd_xfer_batch *b, int kind, const char *pack,
			struct dd_run_obj *objs, size_t n);
/* Queue a transfer of `name` on the transfer pool (uploads: bytes from the cache file). */
void dd_xfer_submit(struct dd_store *st, struct dd_xfer_batch *b, int kind, const char *name, const uint8_t id[32],
		    uint32_t len);
/*
 * Wait for every transfer of the batch (reporting progress as `what`, or
 * the batch's own label, when not NULL), add them to `stats`, free them. DD_EUNREACHABLE answers mark
 * the store unreachable (dd_store_gone) and are no error. 0 or -1 (the
 * first failure, naming its file).
 */
int dd_xfer_wait(struct dd_store *st, struct dd_xfer_batch *b, const char *what, struct dd_transfer_stats *stats);

/* ---- opening (store-open.c) ---- */
/* The default store url for a state dir ("<statedir>/store"); caller frees. */
char *dd_store_default_url(const char *statedir);
/* <statedir>/key; caller frees. */
char *dd_store_key_path(const char *statedir);
/* Open the backend of `url` with the remote options of `o` (key commands, setup, the store itself). */
int dd_store_backend_open(struct dd_backend **out, const struct dd_store_opts *o, const char *url, int create);
/*
 * Read and parse the store's config from the backend: 0, DD_NOTFOUND when
 * there is none (error and a hint that fits: a store that lost its config,
 * or nothing at that URL), -1.
 */
int dd_store_read_config(struct dd_backend *be, struct dd_buf *text, struct dd_store_config *c, const char *url);
/* Does the backend hold a store's files (keys or snapshots) besides the config? 1 yes, 0 no, -1. */
int dd_store_has_files(struct dd_backend *be);
/*
 * The backend's config differs from the one in use: the store may have
 * been replaced. Re-read it; when it still opens with our key, the cache
 * learns it; else the error says why (another key, a newer format). 0 when
 * nothing changed or the new config was learnt, -1 otherwise.
 */
int dd_store_config_refresh(struct dd_store *st);
/* The same with the store's config text already read. */
int dd_store_config_learn(struct dd_store *st, const struct dd_buf *text);

/* ---- key helpers (store-keys.c) ---- */
/*
 * Find the key files that `pass` opens and that belong to `key_id`.
 * Returns 0 with master filled (and *which = their names when not NULL),
 * DD_NOTFOUND when none opens (error set), -1 on error.
 */
int dd_store_unwrap_key(uint8_t master[DD_KEY_LEN], struct dd_backend *be, const char *pass,
			const uint8_t key_id[DD_KEY_LEN], char ***which, size_t *nwhich);
/* Add a key file wrapping `master` with `pass` to the store (synced). */
int dd_store_add_key_file(struct dd_backend *be, const uint8_t master[DD_KEY_LEN], const char *pass);
/* Make `master` the local key; a different one is kept as <statedir>/key.<id>.bak. */
int dd_store_save_local_key(const char *statedir, const uint8_t master[DD_KEY_LEN]);

/* ---- the known-objects record (known.c; docs/FORMAT.md §3.5) ---- */
/* Load <path> for the store `url` (a record of another store, or damaged, counts as empty). */
/* <cachedir>/known-objects-<16 hex of a hash of url>: each store's record in a file of its own. Caller frees. */
char *dd_known_path(const char *cachedir, const char *url);
int dd_known_open(struct dd_known **out, const char *path, const char *url);
void dd_known_free(struct dd_known *k);
/* Was `name` confirmed in the store by an earlier flush? Thread-safe. */
int dd_known_has(struct dd_known *k, const char *name);
/* The backend holds `name` (durable once its next sync() succeeds). Thread-safe. */
void dd_known_add(struct dd_known *k, const char *name);
/* Take what was added so far (before the backend's sync); pass it to dd_known_commit after it. */
void dd_known_take(struct dd_known *k, struct dd_buf *batch);
/* Record a batch the backend has made durable: appended to the file and believed from now on. */
int dd_known_commit(struct dd_known *k, const struct dd_buf *batch);
/* Forget everything (the store lost objects it was known to hold): removes the file. */
int dd_known_forget(struct dd_known *k);

#endif
