/*
 * media/stash.c: has the folder changed since it matched a snapshot (a
 * stat walk merged with the local index, nothing read), and the media
 * stash a switch takes before it changes the folder.
 */
#include "media/internal.h"
#include "store/store.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *
link_target(const struct dd_stream_info *si)
{
	const char *t = dd_kv_get(si->attrs, si->nattrs, "target");

	return t ? t : "";
}

/* Does the entry on disk still match its record? */
static int
entry_matches(const struct walk_entry *e, const struct idx_entry *ie, const struct idx_header *h)
{
	enum media_type t = media_attr_type(&ie->info);
	struct timespec ts;
	mode_t mode;
	char target[PATH_MAX + 1];
	ssize_t n;

	if (t != e->type || media_attr_mode(&ie->info, &mode) < 0 || media_attr_mtime(&ie->info, &ts) < 0) {
		dd_error_clear();
		return 0;
	}
	if (t == MEDIA_FILE) {
		struct idx_stat now;
		idx_stat_from(&now, &e->st);
		return idx_stat_equal(&now, &ie->st) && idx_trusted(h, &ie->st) && mode == (e->st.st_mode & 07777);
	}
	if (ts.tv_sec != e->st.st_mtim.tv_sec || ts.tv_nsec != e->st.st_mtim.tv_nsec)
		return 0;
	if (t == MEDIA_DIR)
		return mode == (e->st.st_mode & 07777);
	n = readlinkat(e->parent_fd, e->name, target, sizeof(target));
	if (n < 0 || n >= (ssize_t)sizeof(target))
		return 0;
	target[n] = 0;
	return !strcmp(target, link_target(&ie->info));
}

/* Walk the folder against the record in lockstep: 0 same, 1 changed, -1. */
static int
compare(struct idx_reader *r, int rootfd)
{
	struct walk *w = rootfd >= 0 ? walk_new(rootfd) : NULL;
	const struct idx_entry *ie;
	struct walk_entry e;
	int rc = 0, n;

	while (w && (n = walk_next(w, &e)) != 0) {
		if (n < 0) {
			rc = -1;
			break;
		}
		if (media_is_tmp(e.name, e.type) || e.type == MEDIA_OTHER || e.other_dev)
			continue; /* never captured */
		if (idx_next(r, &ie) != 1 || strcmp(ie->info.name, e.path) || !entry_matches(&e, ie, idx_header(r))) {
			dd_debug("media: '%s' changed", e.path);
			rc = 1;
			break;
		}
	}
	if (rc == 0 && idx_next(r, &ie) == 1) {
		dd_debug("media: '%s' is gone", ie->info.name);
		rc = 1;
	}
	walk_free(w);
	return rc;
}

int
media_idx_open(struct idx_reader **r, const char *index, const struct stat *root, const char *store)
{
	if (idx_open(r, index) != 0)
		return DD_NOTFOUND;
	if (idx_same_origin(idx_header(*r), root, store))
		return 0;
	idx_close(*r);
	*r = NULL;
	return DD_NOTFOUND;
}

int
dd_media_changed(const struct dd_media_opts *o, char snapshot_out[65])
{
	char *dir = media_state_dir(o), *index = dd_path_join(dir, "index");
	struct idx_reader *r = NULL;
	struct stat rst;
	int rc = -1, rootfd;

	snapshot_out[0] = 0;
	rootfd = open(o->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0 && errno != ENOENT) {
		rc = dd_error_errno("cannot open media folder %s", o->root);
		goto out;
	}
	if (rootfd >= 0 && fstat(rootfd, &rst) < 0) {
		rc = dd_error_errno("cannot open media folder %s", o->root);
		goto out;
	}
	if (media_idx_open(&r, index, rootfd >= 0 ? &rst : NULL, NULL) != 0 || !idx_header(r)->id[0]) {
		rc = DD_MEDIA_NORECORD;
		goto out;
	}
	memcpy(snapshot_out, idx_header(r)->id, 65);
	rc = compare(r, rootfd);
out:
	if (rootfd >= 0)
		close(rootfd);
	idx_close(r);
	free(index);
	free(dir);
	return rc;
}

int
media_has_entries(const char *root)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), n;
	struct walk *w;
	struct walk_entry e;

	if (fd < 0)
		return errno == ENOENT ? 0 : dd_error_errno("cannot open media folder %s", root);
	w = walk_new(fd);
	while ((n = walk_next(w, &e)) == 1) {
		if (e.type != MEDIA_OTHER && !media_is_tmp(e.name, e.type) && !e.other_dev)
			break;
		walk_skip(w);
	}
	walk_free(w);
	close(fd);
	return n;
}

int
dd_media_stash(struct dd_store *st, const struct dd_media_opts *o, char id_out[65])
{
	struct dd_snapshot_writer *sw = NULL;
	struct dd_media_stats stats;
	uint8_t nonce[16];
	char *dir = NULL;
	int rc, held, committed = 0;

	id_out[0] = 0;
	rc = dd_media_changed(o, id_out);
	if (rc < 0)
		return -1;
	/* the recorded snapshot must still be there (a stash's may have been dropped, its objects gc's) */
	held = id_out[0] && dd_store_has_snapshot(st, id_out) == 1;
	dd_error_clear();
	if (rc == 0 && held)
		return 0;
	id_out[0] = 0;
	rc = media_has_entries(o->root);
	if (rc <= 0)
		return rc;
	if (dd_snapshot_begin_flags(&sw, st, DD_SNAPSHOT_PRIVATE) < 0)
		goto fail;
	dd_snapshot_set_meta(sw, "kind", "media stash");
	/* a private record's chunks are reused only while its snapshot keeps them */
	if (media_capture(sw, o, &stats, held, nonce) < 0) {
		dd_snapshot_abort(sw);
		goto fail;
	}
	rc = dd_snapshot_commit(sw, id_out);
	if (rc < 0)
		goto fail;
	committed = 1;
	dir = media_state_dir(o);
	rc = idx_commit_pending(dir, IDX_PRIVATE, id_out, nonce);
	free(dir);
	if (rc != 0) {
		if (rc == DD_NOTFOUND)
			dd_error("the record of media folder %s was replaced while it was set aside", o->root);
		goto fail;
	}
	dd_debug("media: %s stashed as %.12s (%llu files)", o->root, id_out, (unsigned long long)stats.files);
	return 0;
fail:
	dd_media_discard(o);
	/* a private snapshot no record names would stay in the cache for good: dropped */
	if (committed) {
		struct dd_error_saved saved;
		dd_error_save(&saved);
		if (dd_store_private_drop(st, id_out) < 0)
			dd_debug("media: stash %.12s not dropped: %s", id_out, dd_error_last());
		dd_error_restore(&saved);
	}
	id_out[0] = 0;
	return dd_error_wrap("stashing media folder %s", o->root);
}
