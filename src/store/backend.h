/*
 * store/backend.h: where a store's files live. A small vtable so the s3://
 * backend slots in next to the file:// one; the local cache is a file
 * backend too. Names are store-relative paths ("config", "keys/<n>",
 * "data/ab/<id>", "snapshots/<id>"); every put is create-only.
 */
#ifndef DD_STORE_BACKEND_H
#define DD_STORE_BACKEND_H

#include <stddef.h>

#include "util/buf.h"

struct dd_backend;

struct dd_backend_ops {
	/* Read a whole file into out (replacing). 0, 1 if missing (no error), -1. */
	int (*get)(struct dd_backend *be, const char *name, struct dd_buf *out);
	/* Create-only atomic write. 0 created, 1 already there (untouched), -1. */
	int (*put)(struct dd_backend *be, const char *name, const void *data, size_t len);
	/* Like put, from a local file (the file backend hard-links when it can). */
	int (*put_file)(struct dd_backend *be, const char *name, const char *localpath);
	/* 1 exists, 0 not, -1 error. */
	int (*exists)(struct dd_backend *be, const char *name);
	/* Call cb for every file name (store-relative) under dir (one level; data/ is walked two). */
	int (*list)(struct dd_backend *be, const char *dir, int (*cb)(const char *name, void *arg), void *arg);
	/* Remove; missing is not an error. */
	int (*del)(struct dd_backend *be, const char *name);
	/* Make every earlier put durable (the file backend defers directory fsyncs to here). */
	int (*sync)(struct dd_backend *be);
	/*
	 * `name` was found already there (another process may have put it and
	 * not synced yet): make it durable with the next sync(), like a put.
	 * put/put_file returning 1 do this themselves.
	 */
	void (*sync_later)(struct dd_backend *be, const char *name);
	void (*free)(struct dd_backend *be);
};

struct dd_backend {
	const struct dd_backend_ops *ops;
	char *display; /* URL for messages (never credentials) */
	char *local_root; /* file backends: the folder (for hard links); NULL otherwise */
};

/*
 * Open the backend for `url`: file:///abs/path or /abs/path. `create`
 * makes the folder layout. s3:// is refused for now with a clear message.
 */
int dd_backend_open(struct dd_backend **out, const char *url, int create);
int dd_backend_file_open(struct dd_backend **out, const char *root, int create);
void dd_backend_free(struct dd_backend *be);
/* The local path of a name in a file backend (caller frees). */
char *dd_backend_file_path(struct dd_backend *be, const char *name);

#endif
