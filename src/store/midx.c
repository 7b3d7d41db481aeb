/*
 * store/midx.c: the in-memory map object id -> (pack, offset, length)
 * built from index files; see pack.h.
 *
 * An open-addressing hash table of fixed-size slots (ids are keyed hashes,
 * so their first bytes are uniform), next to arrays of packs and index
 * files that slots refer to by number. Slot numbers never change, so a
 * copy of a hit stays meaningful after the lock is released. Nothing is
 * ever removed: a pack whose writing failed is marked failed and lookups
 * skip its objects. An object several packs hold (two clones packed it,
 * or it was written again) keeps every place: the first in its slot, the
 * others in a chain of `alts`, so a reader whose first pack is missing or
 * damaged tries the next.
 */
#include "store/pack.h"
#include "util/err.h"

#include <stdlib.h>
#include <string.h>

struct dd_midx_slot {
	uint8_t id[32];
	uint32_t pack; /* DD_MIDX_NONE: empty slot */
	uint32_t off, len;
	uint32_t alt; /* first other place: index + 1 into m->alts (0: none) */
	uint32_t delta; /* this place is a delta object: index + 1 into m->deltas (0: a full object) */
	uint8_t type;
};

struct dd_midx_alt {
	uint32_t pack, off, len;
	uint32_t next; /* index + 1 of the next other place (0: none) */
	uint32_t delta; /* as the slot's */
};

void
dd_midx_init(struct dd_midx *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
}

void
dd_midx_clear(struct dd_midx *m)
{
	free(m->slots);
	free(m->alts);
	free(m->deltas);
	free(m->packs);
	free(m->files);
	pthread_mutex_destroy(&m->mu);
	memset(m, 0, sizeof(*m));
}

static size_t
slot_of(const struct dd_midx *m, const uint8_t id[32])
{
	uint64_t h;

	memcpy(&h, id, sizeof(h));
	return (size_t)h & (m->cap - 1);
}

/* The slot holding id, or the empty slot where it would go. Needs cap > 0. */
static struct dd_midx_slot *
probe(struct dd_midx *m, const uint8_t id[32])
{
	for (size_t i = slot_of(m, id);; i = (i + 1) & (m->cap - 1))
		if (m->slots[i].pack == DD_MIDX_NONE || !memcmp(m->slots[i].id, id, 32))
			return &m->slots[i];
}

/*
 * Room for n objects, the table at most half full: a power of two, at
 * least 64 (sized to what is loaded: a fixed 4096-slot start cost a small
 * map -- one index file of a few objects -- 4096 slots to fill and to walk).
 */
static void
grow(struct dd_midx *m, size_t n)
{
	struct dd_midx_slot *old = m->slots;
	size_t oldcap = m->cap, cap = oldcap ? oldcap : 64;

	while (cap < 2 * n)
		cap *= 2;
	if (cap == oldcap)
		return;
	m->cap = cap;
	m->slots = dd_malloc(m->cap * sizeof(*m->slots));
	for (size_t i = 0; i < m->cap; i++)
		m->slots[i].pack = DD_MIDX_NONE;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].pack != DD_MIDX_NONE)
			*probe(m, old[i].id) = old[i];
	free(old);
}

/* Is slot s usable (its pack ready, or pending when `pending`)? */
static int
live(const struct dd_midx *m, const struct dd_midx_slot *s, int pending)
{
	uint8_t st = m->packs[s->pack].state;

	return st == DD_MIDX_READY || (pending && st == DD_MIDX_PENDING);
}

static int
pack_live(const struct dd_midx *m, uint32_t pack, int pending)
{
	uint8_t st = m->packs[pack].state;

	return st == DD_MIDX_READY || (pending && st == DD_MIDX_PENDING);
}

/* Under the lock: the hit of a place (delta: index + 1 into m->deltas, or 0). */
static struct dd_midx_hit
hit_of(const struct dd_midx *m, uint32_t pack, uint32_t off, uint32_t len, uint32_t delta)
{
	struct dd_midx_hit h = { .pack = pack, .off = off, .len = len, .type = DD_OBJ_DATA };

	if (delta) {
		h.type = DD_OBJ_DELTA;
		h.d = m->deltas[delta - 1];
	}
	return h;
}

/* Under the lock: remember d (NULL: none); its index + 1, or 0. */
static uint32_t
delta_add(struct dd_midx *m, const struct dd_delta_ref *d)
{
	if (!d)
		return 0;
	if (m->ndeltas == m->capdeltas) {
		m->capdeltas = m->capdeltas ? 2 * m->capdeltas : 64;
		m->deltas = dd_realloc(m->deltas, m->capdeltas * sizeof(*m->deltas));
	}
	m->deltas[m->ndeltas] = *d;
	return (uint32_t)++m->ndeltas;
}

int
dd_midx_delta_of(struct dd_midx *m, const uint8_t id[32], int pending, struct dd_delta_ref *d)
{
	struct dd_midx_hit hits[DD_MIDX_MAX_PLACES];
	size_t n = dd_midx_find_all(m, id, pending, hits, DD_MIDX_MAX_PLACES);

	for (size_t i = 0; i < n; i++) {
		if (hits[i].type == DD_OBJ_DELTA) {
			*d = hits[i].d;
			return 1;
		}
	}
	return 0;
}

size_t
dd_midx_find_all(struct dd_midx *m, const uint8_t id[32], int pending, struct dd_midx_hit *hits, size_t max)
{
	struct dd_midx_slot *s;
	size_t k = 0;

	pthread_mutex_lock(&m->mu);
	if (m->cap) {
		s = probe(m, id);
		if (s->pack != DD_MIDX_NONE) {
			if (k < max && live(m, s, pending))
				hits[k++] = hit_of(m, s->pack, s->off, s->len, s->delta);
			for (uint32_t a = s->alt; a && k < max; a = m->alts[a - 1].next) {
				const struct dd_midx_alt *x = &m->alts[a - 1];
				if (pack_live(m, x->pack, pending))
					hits[k++] = hit_of(m, x->pack, x->off, x->len, x->delta);
			}
		}
	}
	pthread_mutex_unlock(&m->mu);
	return k;
}

int
dd_midx_find(struct dd_midx *m, const uint8_t id[32], int pending, struct dd_midx_hit *hit)
{
	return dd_midx_find_all(m, id, pending, hit, 1) == 1;
}

/*
 * Under the lock: the delta of a place named again (`cur`: its delta now)
 * with base d (NULL: a full object): cur when d is the same base, else d
 * remembered anew. A place is replaced whole, its base with its offsets (an
 * index naming one object twice in a pack must not pair one entry's offsets
 * with the other's base).
 */
static uint32_t
delta_again(struct dd_midx *m, uint32_t cur, const struct dd_delta_ref *d)
{
	const struct dd_delta_ref *c = cur ? &m->deltas[cur - 1] : NULL;

	if (!d)
		return 0;
	if (c && !memcmp(c->base, d->base, 32) && c->base_len == d->base_len && c->depth == d->depth)
		return cur;
	return delta_add(m, d);
}

/* Under the lock: pack `pack` holds slot s's object too (unless already listed). */
static void
add_alt(struct dd_midx *m, struct dd_midx_slot *s, uint32_t pack, uint32_t off, uint32_t len,
	const struct dd_delta_ref *d)
{
	uint32_t *link = &s->alt;

	for (uint32_t a = s->alt; a; a = m->alts[a - 1].next) {
		if (m->alts[a - 1].pack == pack) {
			m->alts[a - 1].off = off, m->alts[a - 1].len = len;
			m->alts[a - 1].delta = delta_again(m, m->alts[a - 1].delta, d);
			return;
		}
		link = &m->alts[a - 1].next;
	}
	if (m->nalts == m->capalts) {
		m->capalts = m->capalts ? 2 * m->capalts : 64;
		m->alts = dd_realloc(m->alts, m->capalts * sizeof(*m->alts));
	}
	m->alts[m->nalts] = (struct dd_midx_alt){ pack, off, len, 0, delta_add(m, d) };
	*link = (uint32_t)++m->nalts;
}

/* Under the lock. */
static int
add_locked(struct dd_midx *m, const uint8_t id[32], uint8_t type, uint32_t pack, uint32_t off, uint32_t len,
	   const struct dd_delta_ref *d)
{
	struct dd_midx_slot *s;

	if (type != DD_OBJ_DELTA)
		d = NULL;

	if (2 * (m->n + 1) > m->cap)
		grow(m, m->n + 1);
	s = probe(m, id);
	if (s->pack != DD_MIDX_NONE) {
		if (s->pack == pack) { /* a pending pack got its offsets */
			s->off = off, s->len = len, s->type = type, s->delta = delta_again(m, s->delta, d);
			return 1;
		}
		if (live(m, s, 1)) { /* another place of the same object */
			add_alt(m, s, pack, off, len, d);
			return 0;
		}
		/* its pack failed: the new place comes first (the other places stay) */
		s->pack = pack, s->off = off, s->len = len, s->type = type, s->delta = delta_add(m, d);
		return 1;
	}
	*s = (struct dd_midx_slot){ .pack = pack, .off = off, .len = len, .type = type, .alt = 0,
				    .delta = delta_add(m, d) };
	memcpy(s->id, id, 32);
	m->n++;
	return 1;
}

int
dd_midx_add(struct dd_midx *m, const uint8_t id[32], uint8_t type, uint32_t pack, uint32_t off, uint32_t len,
	    const struct dd_delta_ref *d)
{
	int r;

	pthread_mutex_lock(&m->mu);
	r = add_locked(m, id, type, pack, off, len, d);
	pthread_mutex_unlock(&m->mu);
	return r;
}

static uint32_t
new_pack_locked(struct dd_midx *m)
{
	if (m->npacks == m->cappacks) {
		m->cappacks = m->cappacks ? 2 * m->cappacks : 64;
		m->packs = dd_realloc(m->packs, m->cappacks * sizeof(*m->packs));
	}
	memset(&m->packs[m->npacks], 0, sizeof(*m->packs));
	m->packs[m->npacks].file = DD_MIDX_NONE;
	return (uint32_t)m->npacks++;
}

uint32_t
dd_midx_new_pack(struct dd_midx *m)
{
	uint32_t i;

	pthread_mutex_lock(&m->mu);
	i = new_pack_locked(m);
	pthread_mutex_unlock(&m->mu);
	return i;
}

static uint32_t
find_file_locked(struct dd_midx *m, const uint8_t id[32])
{
	for (size_t i = 0; i < m->nfiles; i++)
		if (!memcmp(m->files[i].id, id, 32))
			return (uint32_t)i;
	return DD_MIDX_NONE;
}

uint32_t
dd_midx_find_file(struct dd_midx *m, const uint8_t id[32])
{
	uint32_t i;

	pthread_mutex_lock(&m->mu);
	i = find_file_locked(m, id);
	pthread_mutex_unlock(&m->mu);
	return i;
}

uint32_t
dd_midx_file(struct dd_midx *m, const uint8_t id[32], int *isnew)
{
	uint32_t i;

	pthread_mutex_lock(&m->mu);
	i = find_file_locked(m, id);
	*isnew = i == DD_MIDX_NONE;
	if (*isnew) {
		if (m->nfiles == m->capfiles) {
			m->capfiles = m->capfiles ? 2 * m->capfiles : 16;
			m->files = dd_realloc(m->files, m->capfiles * sizeof(*m->files));
		}
		memset(&m->files[m->nfiles], 0, sizeof(*m->files));
		memcpy(m->files[m->nfiles].id, id, 32);
		i = (uint32_t)m->nfiles++;
	}
	pthread_mutex_unlock(&m->mu);
	return i;
}

void
dd_midx_load(struct dd_midx *m, uint32_t file, const struct dd_index_pack *p, size_t np)
{
	size_t total = 0;

	for (size_t i = 0; i < np; i++)
		total += p[i].n;
	pthread_mutex_lock(&m->mu);
	/*
	 * An empty map is sized once for the first file, not doubled along the
	 * way; later files may name objects already in (repacks, two index
	 * files of one pack), so the table grows by what is really added.
	 */
	if (m->n == 0)
		grow(m, total);
	for (size_t i = 0; i < np; i++) {
		uint32_t k = new_pack_locked(m);
		memcpy(m->packs[k].name, p[i].name, 32);
		m->packs[k].file = file;
		m->packs[k].state = DD_MIDX_READY;
		m->packs[k].in_store = m->files[file].in_store;
		for (size_t j = 0; j < p[i].n; j++)
			add_locked(m, p[i].e[j].id, p[i].e[j].type, k, p[i].e[j].off, p[i].e[j].len, &p[i].e[j].d);
	}
	pthread_mutex_unlock(&m->mu);
}

struct dd_midx_pack
dd_midx_pack_get(struct dd_midx *m, uint32_t i)
{
	struct dd_midx_pack p;

	pthread_mutex_lock(&m->mu);
	p = m->packs[i];
	pthread_mutex_unlock(&m->mu);
	return p;
}

struct dd_midx_file
dd_midx_file_get(struct dd_midx *m, uint32_t i)
{
	struct dd_midx_file f;

	pthread_mutex_lock(&m->mu);
	f = m->files[i];
	pthread_mutex_unlock(&m->mu);
	return f;
}

void
dd_midx_pack_set(struct dd_midx *m, uint32_t i, const struct dd_midx_pack *p)
{
	pthread_mutex_lock(&m->mu);
	m->packs[i] = *p;
	pthread_mutex_unlock(&m->mu);
}

void
dd_midx_file_set(struct dd_midx *m, uint32_t i, const struct dd_midx_file *f)
{
	pthread_mutex_lock(&m->mu);
	m->files[i] = *f;
	for (size_t k = 0; f->in_store && k < m->npacks; k++)
		if (m->packs[k].file == i)
			m->packs[k].in_store = 1;
	pthread_mutex_unlock(&m->mu);
}

void
dd_midx_file_packs(struct dd_midx *m, uint32_t file, uint32_t **out, size_t *n)
{
	size_t k = 0;

	pthread_mutex_lock(&m->mu);
	*out = dd_calloc(m->npacks ? m->npacks : 1, sizeof(**out));
	for (size_t i = 0; i < m->npacks; i++)
		if (m->packs[i].file == file && m->packs[i].state == DD_MIDX_READY)
			(*out)[k++] = (uint32_t)i;
	pthread_mutex_unlock(&m->mu);
	*n = k;
}

void
dd_midx_pack_extents(struct dd_midx *m, uint64_t **out, size_t *n)
{
	pthread_mutex_lock(&m->mu);
	*n = m->npacks;
	*out = dd_calloc(m->npacks ? m->npacks : 1, sizeof(**out));
	for (size_t i = 0; i < m->cap; i++) {
		const struct dd_midx_slot *s = &m->slots[i];
		if (s->pack == DD_MIDX_NONE)
			continue;
		if (s->pack < m->npacks && (uint64_t)s->off + s->len > (*out)[s->pack])
			(*out)[s->pack] = (uint64_t)s->off + s->len;
	}
	for (size_t a = 0; a < m->nalts; a++) {
		const struct dd_midx_alt *x = &m->alts[a];
		if (x->pack < m->npacks && (uint64_t)x->off + x->len > (*out)[x->pack])
			(*out)[x->pack] = (uint64_t)x->off + x->len;
	}
	pthread_mutex_unlock(&m->mu);
}
