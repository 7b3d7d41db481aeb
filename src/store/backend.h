/*
 * store/backend.h: where a store's files live. A small vtable so the s3://
 * backend slots in next to the file:// one; the local cache is a file
 * backend too. Names are store-relative paths ("config", "keys/<n>",
 * "packs/ab/<sha256>", "index/<id>", "snapshots/<id>", "data/ab/<id>"); every put is create-only.
 *
 * dd_backend_open() picks the backend from the URL's scheme (backend.c
 * holds the table); what a backend can do beyond the common operations is
 * said by its capability bits and optional methods, never by fields only
 * one kind of backend fills in.
 */
#ifndef DD_STORE_BACKEND_H
#define DD_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct dd_backend;

/* How to reach a store: its URL plus what a remote backend needs. */
struct dd_backend_opts {
	const char *url;      /* file:///abs/path, /abs/path, s3://bucket/prefix */
	const char *endpoint; /* remote: the service's address (NULL: the provider's default) */
	const char *region;   /* remote: the region (NULL: the default) */
	int path_style;       /* remote: 1 bucket in the path, 0 in the host name, -1 automatic (s3/client.h) */
	int transfers;        /* remote: parallel transfers (0: the default, 8) */
	uint64_t part_size;   /* remote: multipart upload above this many bytes (0: the default) */
	int retries;          /* remote: attempts after the first on a transient failure (-1: the default) */
	int create;           /* make the layout (a new store) */
};

/* One name found by list(). */
struct dd_backend_entry {
	char *name;     /* store-relative */
	uint64_t size;  /* bytes */
	int64_t mtime;  /* last modification, seconds since the epoch (-1: an S3 listing gave none) */
	/*
	 * When the name last came to hold these bytes, seconds: the file
	 * backend's ctime (a hard link made by put_file keeps the file's old
	 * mtime but sets its ctime: the store's gc must not take a pack linked
	 * in a second ago for an old one); S3: LastModified, as mtime, or
	 * INT64_MAX when the listing gave none (unknown counts as young).
	 */
	int64_t changed;
};

/* A multipart upload in progress in a remote store (found by uploads(), for the store's gc). */
struct dd_backend_upload {
	char *name;        /* store-relative */
	char *key;         /* as the server holds it, for messages (server text: made printable) */
	char *id;          /* the server's upload id */
	int64_t initiated; /* when it was started, seconds since the epoch; -1 unknown */
};

enum {
	/*
	 * exists() is a local stat, as cheap as a lookup in a local record: the
	 * store asks it for every object instead of keeping a record of what
	 * the backend holds (store/known.c).
	 */
	DD_BACKEND_CHEAP_EXISTS = 1 << 0,
};

/*
 * Every operation may be called from several threads at once: that is how
 * the store runs transfers in parallel (a remote backend multiplexes them
 * over one connection pool, at most `transfers` at a time). A remote
 * backend retries transient failures itself; when it gives up because the
 * store cannot be reached (connection refused, DNS, timeouts after the
 * retries) it returns DD_EUNREACHABLE instead of -1, so a snapshot can keep
 * its objects in the cache and say "push later".
 */
struct dd_backend_ops {
	unsigned caps; /* DD_BACKEND_* */
	/* Read a whole file into out (replacing). 0, DD_NOTFOUND if missing (no error), -1. */
	int (*get)(struct dd_backend *be, const char *name, struct dd_buf *out);
	/*
	 * Read bytes [off, off + len) of `name` into out (replacing): one ranged
	 * GET on a remote store. 0, DD_NOTFOUND if missing (no error), -1 (a
	 * file shorter than off + len is an error: damaged).
	 */
	int (*get_range)(struct dd_backend *be, const char *name, uint64_t off, size_t len, struct dd_buf *out);
	/*
	 * Optional (NULL: not offered; readers use get_range): write the whole
	 * file `name` into the open file `fd` from its offset 0, streamed (memory
	 * stays bounded whatever its size), at most `max` bytes. 0 with *size
	 * set, DD_NOTFOUND if missing (no error), -1, DD_EUNREACHABLE. On
	 * failure fd holds a prefix of the file or garbage: the caller checks
	 * what it got (a pack against its name) before trusting any of it.
	 */
	int (*get_to_fd)(struct dd_backend *be, const char *name, int fd, uint64_t max, uint64_t *size);
	/* Create-only atomic write. 0 created, DD_EXISTS already there (untouched), -1. */
	int (*put)(struct dd_backend *be, const char *name, const void *data, size_t len);
	/*
	 * Optional (NULL: put): like put, without making it durable (no fsync,
	 * not part of sync()), for the cache's copies of objects fetched from
	 * the store: a torn copy fails to authenticate and is fetched again.
	 */
	int (*put_unsynced)(struct dd_backend *be, const char *name, const void *data, size_t len);
	/* Like put, from a local file (the file backend hard-links when it can). */
	int (*put_file)(struct dd_backend *be, const char *name, const char *localpath);
	/* 1 exists, 0 not, -1 error. */
	int (*exists)(struct dd_backend *be, const char *name);
	/*
	 * Every file under dir (store-relative; one level; data/ and packs/ are walked two),
	 * with size and mtime, in no particular order. *out is freed with
	 * dd_backend_entries_free(). A missing dir is an empty list.
	 */
	int (*list)(struct dd_backend *be, const char *dir, struct dd_backend_entry **out, size_t *n);
	/* Remove; missing is not an error. */
	int (*del)(struct dd_backend *be, const char *name);
	/*
	 * Optional (NULL: call del() for each): remove many names at once (S3:
	 * 1000 per request, for gc); missing ones are not an error.
	 */
	int (*del_many)(struct dd_backend *be, const char *const *names, size_t n);
	/* Make every earlier put durable (the file backend defers directory fsyncs to here). */
	int (*sync)(struct dd_backend *be);
	/*
	 * `name` was found already there (another process may have put it and
	 * not synced yet): make it durable with the next sync(), like a put.
	 * put/put_file returning DD_EXISTS do this themselves.
	 */
	void (*sync_later)(struct dd_backend *be, const char *name);
	/*
	 * Optional (NULL when the backend keeps no local files): the local path
	 * of `name` (caller frees), for put_file() into another backend, which
	 * may then hard-link it (cache -> file store).
	 */
	char *(*local_path)(struct dd_backend *be, const char *name);
	/*
	 * Optional (NULL: nothing kept): a reader found the bytes of `name` it
	 * got damaged; a backend keeping the file open (the file backend's
	 * get_range) opens the name again on the next read, so a copy replaced
	 * meanwhile is the one read.
	 */
	void (*forget)(struct dd_backend *be, const char *name);
	/*
	 * Optional (NULL: nothing to do): bytes [off, off + len) of `name` are
	 * read soon; a local file asks the kernel to read them in now
	 * (posix_fadvise WILLNEED), so a reader that then works on other bytes
	 * does not wait for the disk. A hint: nothing fails, nothing is read here.
	 */
	void (*advise)(struct dd_backend *be, const char *name, uint64_t off, size_t len);
	/*
	 * Optional (NULL: unknown): the store's clock, seconds since the
	 * epoch, against which the times list() gives are judged (gc's grace
	 * period, stale locks). S3: the Date of the server's last answer (plus
	 * the time since; a HEAD first when none came yet); a folder: the
	 * mtime of a probe file made in `locks/` and removed at once. 0,
	 * DD_NOTFOUND (cannot tell: no Date, a folder we may not write into;
	 * the reason, if any, as the error), -1, DD_EUNREACHABLE.
	 */
	int (*now)(struct dd_backend *be, int64_t *now);
	/*
	 * Optional (NULL: nothing to do): remove the probe files now() left
	 * behind (a crash between making and removing one) whose mtime is
	 * before `before` (the store's clock). Never fails: a warning each.
	 */
	void (*sweep_probes)(struct dd_backend *be, int64_t before);
	/*
	 * Optional (NULL: the backend has no such thing): every multipart
	 * upload in progress under the store whose name is one the store
	 * writes (packs/, data/, ...), in *out (freed with
	 * dd_backend_uploads_free()). 0, -1, DD_EUNREACHABLE.
	 */
	int (*uploads)(struct dd_backend *be, struct dd_backend_upload **out, size_t *n);
	/* With uploads: abort one of them (one already gone is not an error). 0, -1, DD_EUNREACHABLE. */
	int (*upload_abort)(struct dd_backend *be, const struct dd_backend_upload *u);
	void (*free)(struct dd_backend *be);
};

struct dd_backend {
	const struct dd_backend_ops *ops;
	char *display; /* URL for messages (never credentials) */
};

/*
 * Open the backend for opts->url, chosen by its scheme; an unknown scheme
 * is refused with the list of supported ones. `create` makes the layout.
 */
int dd_backend_open(struct dd_backend **out, const struct dd_backend_opts *opts);
/*
 * Is `url` a store URL dd_backend_open() would accept (scheme, absolute
 * path, bucket name, prefix)? Reads nothing and makes no request: an
 * offline open checks it too, so a malformed URL is never taken for an
 * unreachable store. 0, or -1 with the same error the open gives.
 */
int dd_backend_url_check(const char *url);
void dd_backend_free(struct dd_backend *be);
void dd_backend_entries_free(struct dd_backend_entry *e, size_t n);
void dd_backend_uploads_free(struct dd_backend_upload *u, size_t n);

/* The file backend on the folder `root` (absolute): the cache, and file:// stores. */
int dd_backend_file_open(struct dd_backend **out, const char *root, int create);
/* The S3 backend on "bucket/prefix" (the URL after s3://); opts give endpoint, region ... */
int dd_backend_s3_open(struct dd_backend **out, const char *rest, const struct dd_backend_opts *opts);
/* dd_backend_url_check() of an s3:// URL (`rest`: what follows s3://). */
int dd_backend_s3_url_check(const char *rest, const char *url);

#endif
