/*
 * store/internal.h: what the files of src/store/ share: the dd_store
 * itself and the object paths between cache and backend.
 */
#ifndef DD_STORE_INTERNAL_H
#define DD_STORE_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "store/backend.h"
#include "store/chunker.h"
#include "store/crypto.h"
#include "store/keys.h"
#include "store/manifest.h"
#include "store/object.h"
#include "store/pool.h"
#include "store/store.h"

struct dd_store {
	struct dd_backend *be;    /* NULL when offline */
	struct dd_backend *cache; /* <statedir>/cache */
	struct dd_keys *keys;
	struct dd_chunker_params *chunker;
	struct dd_pool *pool;
	int flags;
	int link_ok;              /* cache -> backend hard links still worth trying */
	char *url;                /* for messages */
	const char *cache_label;
	pthread_mutex_t bufmu;
	uint8_t **freebufs;       /* recycled chunk buffers */
	size_t nfree, maxfree;  /* "the local cache" (verify points it at the store) */
};

struct dd_snapshot {
	char id[DD_ID_HEX_SIZE];
	struct dd_manifest *m;
};

/*
 * Store one object (create-only) in the cache and the backend; skips the
 * work when it is already there. `plain` is sealed with the worker's zstd
 * context. Thread-safe.
 */
int dd_store_put_object(struct dd_store *st, int type, const uint8_t id[32], const void *plain,
			size_t len, ZSTD_CCtx *zc, struct dd_buf *scratch, int *existed);
/* Chunk buffers (chunker max bytes) recycled so steady state does not fault in fresh pages. */
uint8_t *dd_store_chunkbuf_get(struct dd_store *st);
void dd_store_chunkbuf_put(struct dd_store *st, uint8_t *buf);
/*
 * Fetch and open an object: cache first (a damaged cache copy is replaced
 * from the backend), then the backend (filling the cache). Returns 0, 1
 * if missing everywhere (error set), -1 on error.
 */
int dd_store_get_object(struct dd_store *st, int type, const uint8_t id[32], size_t max_plain,
			struct dd_buf *plain, ZSTD_DCtx *zd);
/* Make every earlier put durable (deferred directory fsyncs). */
int dd_store_sync(struct dd_store *st);
/* Parse and check a manifest's plaintext against `id`. */
int dd_snapshot_decode(struct dd_snapshot **out, struct dd_store *st, const uint8_t id[32],
		       const struct dd_buf *plain);
/* The default store url for a state dir ("<statedir>/store"); caller frees. */
char *dd_store_default_url(const char *statedir);

#endif
