/* slab.c - the slab engine under the tiny, mid and large tiers.
 *
 * A slab serves blocks of one class: carved by bump, recycled through its
 * local free list (its owner's) and its remote list (other threads push
 * with one CAS, the owner takes the list whole).  In front of the slabs a
 * heap keeps, per class, a thread-local singly linked list (its bin, "TLS
 * SLL"), a current slab, a list of partial slabs and a FIFO of full ones;
 * the engine moves blocks between them.  It also manages the segments a
 * heap owns (the tiny and large tiers' slabs; mid pages belong to the
 * pool's shards).
 *
 * The engine has no tier's policy: which slab is new, what happens to one
 * that empties, when memory goes back, is the tiers' (tiny.c, pool.c,
 * large.c), which call in here with what they decided (a slab shift, a
 * colour count per class).  A refill runs in stages:
 *   1. the current slab's local free list (up to the bin's cap);
 *   2. the current slab's remote list (blocks other threads freed);
 *   3. carving never-used blocks from the current slab;
 *   4. a partial slab of this heap;
 *   5. a full slab with pending remote frees (a bounded round-robin scan);
 * (slab_refill_local); then the tier finds a slab (heap.c dispatches).
 */
#include "internal.h"

uint8_t slab_colours[HAK_NBINS];

void slab_set_colours(unsigned c, unsigned n)
{
	hak_assert(c < HAK_NBINS && n >= 1 && n <= 64);
	slab_colours[c] = (uint8_t)n;
}

/* ---- intrusive lists ---- */

void slab_file(struct heap *h, struct slab *s)
{
	if (s->nfree || s->carved < s->capacity) {
		s->state = SLAB_PARTIAL;
		slist_push(&h->partial[s->cls], s);
	} else {
		slab_full_append(h, s);
	}
}

/* Compiled in every build (HAK_DEBUG decides whether VALIDATE runs it). */
void slab_validate(const struct slab *s)
{
	hak_assert(s->carved <= s->capacity);
	hak_assert(s->used + s->nfree == s->carved);
	uint32_t n = 0;
	uint8_t *start = slab_block0(s);
	hak_assert(s->b0 == (uint32_t)(uintptr_t)start);
	hak_assert(s->nslots >= 1 && s->index + s->nslots <= seg_of_slab(s)->nslabs);
	hak_assert(start + (size_t)s->capacity * slab_bsize(s) <=
		   slab_start(s) + ((size_t)s->nslots << seg_of_slab(s)->slab_shift));
	for (void *b = s->free; b; b = blk_next_in(b, seg_of_slab(s)->slab_shift)) {
		hak_assert((uint8_t *)b >= start);
		hak_assert((size_t)((uint8_t *)b - start) % slab_bsize(s) == 0);
		hak_assert((uint8_t *)b < start + (size_t)s->carved * slab_bsize(s));
		n++;
	}
	hak_assert(n == s->nfree);
	(void)n;
	(void)start;
}

/* ---- moving blocks ---- */

/* Take the remote list whole and append it to the local list; returns how
 * many blocks came back.  The exchange (acquire) pairs with the pushers'
 * release CAS, so the links they wrote are visible. */
uint32_t slab_drain(struct slab *s)
{
	void *list = atomic_exchange_explicit(&s->remote, NULL, memory_order_acquire);
	if (list == NULL)
		return 0;
	uint32_t n = 1;
	unsigned shift = seg_of_slab(s)->slab_shift;
	void *t = list, *u;
	while ((u = blk_next_in(t, shift)) != NULL) {
		t = u;
		n++;
	}
	blk_set_next(t, s->free);
	s->free = list;
	s->nfree += n;
	s->used -= n;
	return n;
}

/* The release pairs with the owner's acquire exchange in slab_drain. */
void slab_remote_push(struct slab *s, void *first, void *last)
{
	void *head = atomic_load_explicit(&s->remote, memory_order_relaxed);
	if (head == NULL) {
		/* before the push: s is in use until then (its segment
		 * mapped, its class and owner set) */
		struct segment *seg = seg_of_slab(s);
		if (seg->tier == TIER_TINY) {
			atomic_fetch_or_explicit(&seg->remote_mask, 1u << s->index, memory_order_relaxed);
		} else {
			/* a mid page or large run: its class in the owner
			 * (pool_collect_remote, large_collect_remote).  Heaps
			 * are never unmapped: a stale owner costs it one look at
			 * its full slabs.  Acquire: the heap's mapping and setup
			 * happened before its thread stored it here (release,
			 * slab_init and page_adopt) */
			hak_assert(seg->tier == TIER_MID || seg->tier == TIER_LARGE);
			struct heap *o = atomic_load_explicit(&s->owner, memory_order_acquire);
			bool mid = seg->tier == TIER_MID;
			if (o != NULL)
				atomic_fetch_or_explicit(mid ? &o->mid_remote : &o->large_remote,
							 1u << (s->cls - (mid ? HAK_CLS_MID : HAK_CLS_LARGE)),
							 memory_order_relaxed);
		}
	}
	do {
		blk_set_next(last, head);
	} while (!atomic_compare_exchange_weak_explicit(&s->remote, &head, first,
							memory_order_release, memory_order_relaxed));
	/* s may be drained, retired and unmapped from here on: do not touch */
}

#if HAKMEM_SECURE
/* ---- the secure build ---- */

void slab_bad_link(const void *b)
{
	struct segment *seg = (struct segment *)((uintptr_t)b & ~(uintptr_t)HAK_SEG_MASK);
	hak_heap_error("corrupted free list at", b, slab_bsize(slab_of(seg, b)));
}

/* A cheap per-thread generator (xorshift64*), seeded from the secret and
 * the thread; for the carve order, not for secrets. */
static __thread uint64_t tls_rng __attribute__((tls_model("initial-exec")));

static uint64_t rng_next(void)
{
	uint64_t x = tls_rng;
	if (unlikely(x == 0))
		x = (uint64_t)hak_secret ^ ((uint64_t)(uintptr_t)&tls_rng * 0x9e3779b97f4a7c15ull) ^
		    os_now_ms() ^ 1;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	tls_rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* The carve of slab_carve, with the k blocks of the batch linked in a
 * random order (an interleaving of runs, below), so that the next block a
 * program gets is not sure to be the neighbour of the last one; and,
 * with HAKMEM_SECURE_FILL, each filled as a freed block is (malloc.c), so
 * that every block on a free list carries the pattern.  The blocks are
 * all handed to the bin, as slab_carve does. */
void *slab_carve_secure(struct heap *h, struct slab *s)
{
	uint32_t k = slab_carve_count(h, s);
	size_t bs = slab_bsize(s);
	uint8_t *base = slab_block0(s) + (size_t)s->carved * bs;
	uint16_t idx[256];
	hak_assert(k >= 1 && k <= 256);
	/* The batch in CARVE_RUNS runs of neighbours; each next block of the
	 * list is the next of a run chosen at random.  Which block follows
	 * which is not predictable, yet each run is walked in address order,
	 * which the hardware prefetcher follows: a shuffle of the whole
	 * batch made the same instructions 4x slower in bench/'s batch small
	 * (its working set outgrows the caches); with 8 runs it was 2x, with
	 * 4 about 1.1x. */
	enum { CARVE_RUNS = 4 };
	uint16_t at[CARVE_RUNS], end[CARVE_RUNS];
	uint8_t live[CARVE_RUNS];
	uint32_t nruns = k < CARVE_RUNS ? k : CARVE_RUNS, nlive = nruns;
	for (uint32_t j = 0; j < nruns; j++) {
		at[j] = (uint16_t)(k * j / nruns);
		end[j] = (uint16_t)(k * (j + 1) / nruns);
		live[j] = (uint8_t)j;
	}
	for (uint32_t i = 0; i < k; i++) {
		uint32_t r = (uint32_t)(((rng_next() >> 32) * (uint64_t)nlive) >> 32);
		uint32_t j = live[r];
		idx[i] = at[j]++;
		if (at[j] == end[j])
			live[r] = live[--nlive];
	}
	size_t fill_end = secure_fill_end(s);
	if (KNOB(secure_fill) && fill_end > HAK_FILL_FROM)
		for (uint32_t i = 0; i < k; i++)
			memset(base + (size_t)i * bs + HAK_FILL_FROM, HAK_FILL_BYTE, fill_end - HAK_FILL_FROM);
	uintptr_t key = free_key();
	uint8_t *first = base + (size_t)idx[0] * bs, *b = first;
	for (uint32_t i = 1; i < k; i++) {
		uint8_t *n = base + (size_t)idx[i] * bs;
		blk_set_next(b, n);
		blk_set_key(b, key);
		b = n;
	}
	blk_set_next(b, NULL);
	blk_set_key(b, key);
	/* read by other threads' frees (slab_check_free) */
	__atomic_store_n(&s->carved, (uint16_t)(s->carved + k), __ATOMIC_RELAXED);
	s->used += k;
	return slab_bin_fill_pop(h, s->cls, first, k);
}
#endif

struct slab *slab_init(struct heap *h, struct segment *seg, unsigned i, unsigned c)
{
	struct slab *s = &seg->slabs[i];
	size_t len;
	uint8_t *b0 = slab_area(seg, i, &len) + slab_colour(seg, i, c);
	len += (size_t)(s->nslots - 1) << seg->slab_shift; /* a large run */
	s->b0 = (uint32_t)(uintptr_t)b0;
	/* room for the colour: the last block goes when the slack is short */
	s->capacity = (uint16_t)((len - slab_colour(seg, i, c)) / ace_class_size[c]);
	s->carved = s->used = s->nfree = 0;
	s->free = NULL;
	slab_set_class(s, c);
	s->state = SLAB_CURRENT;
	s->empty_seen = 0;
	s->kept = 0;
	s->next = s->prev = NULL;
	atomic_store_explicit(&s->remote, NULL, memory_order_relaxed);
	atomic_store_explicit(&s->owner, h, memory_order_release); /* slab_remote_push */
	return s;
}

/* ---- segments a heap owns (tiny, large) ---- */

/* Slots m of seg, one of h's, become dirty (+1) or stop being dirty (-1):
 * h->dirty_bytes follows. */
static void dirty_count(struct heap *h, const struct segment *seg, segmask_t m, int sign)
{
	uint64_t n = (uint64_t)mask_count(m) << seg->slab_shift;
	h->dirty_bytes[seg->tier] += sign > 0 ? n : -n;
}

static segmask_t seg_full_mask(const struct segment *seg)
{
	return mask_low(seg->nslabs);
}

void slab_keep_sweep(struct heap *h)
{
	purge_keep_lower(&h->slab_keep, &h->slab_high, h->slab_empty, SLAB_KEEP_MIN);
}

/* The length of the longest run of neighbouring slots of x: each step
 * keeps the slots that start a run one longer. */
static unsigned run_longest(segmask_t x)
{
	unsigned n = 0;
	for (; x; n++)
		x &= x >> 1;
	return n;
}

/* seg's fd_bound, and its copy in h's table */
static void fd_set(struct heap *h, struct segment *seg, unsigned v)
{
	seg->fd_bound = (uint8_t)(v < FD_UNKNOWN ? v : FD_UNKNOWN);
	if (seg->tier == TIER_LARGE && seg->lt_slot != LT_NONE)
		h->lt_bound[seg->lt_slot] = seg->fd_bound;
}

_Static_assert(LT_MAX < LT_NONE, "an entry's index fits lt_slot and lt_order, LT_NONE apart");

/* A large segment comes to h (new, from the cache, adopted). */
static void lt_join(struct heap *h, struct segment *seg)
{
	unsigned i = 0;
	while (i < h->lt_n && h->lt_seg[i] != NULL)
		i++;
	if (i == LT_MAX) {
		seg->lt_slot = LT_NONE;
		h->lt_over++;
	} else {
		seg->lt_slot = (uint8_t)i;
		h->lt_seg[i] = seg;
		if (i == h->lt_n)
			h->lt_n++;
		memmove(h->lt_order + 1, h->lt_order, h->lt_live);
		h->lt_order[0] = (uint8_t)i;
		h->lt_live++;
	}
	fd_set(h, seg, FD_UNKNOWN);
}

/* Entry i's place in lt_order. */
static unsigned lt_pos(const struct heap *h, unsigned i)
{
	const uint8_t *p = memchr(h->lt_order, (int)i, h->lt_live);
	hak_assert(p != NULL);
	return (unsigned)(p - h->lt_order);
}

/* seg went to the head of segs_avail: first in lt_order too */
static void lt_to_front(struct heap *h, const struct segment *seg)
{
	if (seg->lt_slot == LT_NONE)
		return;
	unsigned p = lt_pos(h, seg->lt_slot);
	memmove(h->lt_order + 1, h->lt_order, p);
	h->lt_order[0] = seg->lt_slot;
}

/* A large segment leaves h (released). */
static void lt_leave(struct heap *h, struct segment *seg)
{
	if (seg->lt_slot == LT_NONE) {
		h->lt_over--;
		return;
	}
	hak_assert(h->lt_seg[seg->lt_slot] == seg);
	unsigned p = lt_pos(h, seg->lt_slot);
	memmove(h->lt_order + p, h->lt_order + p + 1, h->lt_live - p - 1);
	h->lt_live--;
	h->lt_seg[seg->lt_slot] = NULL;
	h->lt_bound[seg->lt_slot] = 0;
	seg->lt_slot = LT_NONE;
	while (h->lt_n > 0 && h->lt_seg[h->lt_n - 1] == NULL)
		h->lt_n--;
}

/* Slots [i, i + n) of seg turned free with their pages (slab_slot_free):
 * with the free resident slots around them, a run that may be the
 * longest now. */
static void fd_bound_raise(struct heap *h, struct segment *seg, unsigned i, unsigned n)
{
	if (seg->fd_bound == FD_UNKNOWN)
		return;
	segmask_t fd = ~seg->used_mask & seg->dirty & seg_full_mask(seg);
	segmask_t below = ~fd & mask_low(i), above = ~fd & ~mask_low(i + n);
	unsigned lo = below ? i - 1 - mask_last(below) : i;
	unsigned hi = above ? mask_first(above) - (i + n) : HAK_MAX_SLABS - (i + n);
	unsigned len = lo + n + hi;
	if (len > seg->fd_bound)
		fd_set(h, seg, len);
}

/* The first slot of a run of k free slots of seg (k0 when the run starts
 * at slot 0, which holds the header), or -1. */
static int run_find(const struct segment *seg, unsigned k, unsigned k0, segmask_t among)
{
	segmask_t free = ~seg->used_mask & seg_full_mask(seg) & among;
	/* x: where runs of 'len' free slots start; doubled to k */
	segmask_t x = free;
	for (unsigned len = 1; len < k && x;) {
		unsigned d = len < k - len ? len : k - len;
		x &= x >> d;
		len += d;
	}
	x &= ~(segmask_t)1;
	if ((free & mask_low(k0)) == mask_low(k0))
		x |= 1;
	return x ? (int)mask_first(x) : -1;
}

/* A segment of h with a run of k free slots whose pages are still there
 * (k0 at slot 0), its first slot in *at; NULL if none. */
static struct segment *resident_find(struct heap *h, int tier, unsigned k, unsigned k0, int *at)
{
	struct segment *seg;
	if (tier == TIER_LARGE) {
		/* in the order of segs_avail, each once */
		for (unsigned p = 0; p < h->lt_live; p++) {
			unsigned j = h->lt_order[p];
			if (h->lt_bound[j] < k)
				continue;
			seg = h->lt_seg[j];
			hak_assert(seg != NULL && seg->lt_slot == j && seg->fd_bound == h->lt_bound[j]);
			if ((*at = run_find(seg, k, k0, seg->dirty)) >= 0)
				return seg;
			fd_set(h, seg, run_longest(~seg->used_mask & seg->dirty & seg_full_mask(seg)));
		}
		if (h->lt_over == 0)
			return NULL;
	}
	for (seg = h->segs_avail[tier]; seg; seg = seg->next) {
		if (!seg->dirty || seg->fd_bound < k || (tier == TIER_LARGE && seg->lt_slot != LT_NONE))
			continue;
		if ((*at = run_find(seg, k, k0, seg->dirty)) >= 0)
			return seg;
		fd_set(h, seg, run_longest(~seg->used_mask & seg->dirty & seg_full_mask(seg)));
	}
	return NULL;
}

struct slab *slab_new_run(struct heap *h, int tier, unsigned shift, unsigned c, unsigned k, unsigned k0,
			  int mode, bool *fresh_segment)
{
	struct segment *seg;
	int at = -1;
	*fresh_segment = false;
	if (tier != TIER_LARGE) /* h needs a slab: slab_keep may grow */
		purge_keep_grow(&h->slab_keep, &h->slab_returned_ms, SLAB_KEEP_MAX);
	/* slots whose pages are still there first, then any; no look for
	 * them when h has fewer such bytes than the run needs (a heap of
	 * hundreds of segments would read every header for nothing) */
	seg = NULL;
	if (h->dirty_bytes[tier] >= (uint64_t)(k < k0 ? k : k0) << shift)
		seg = resident_find(h, tier, k, k0, &at);
	if (seg == NULL && mode == SLAB_RUN_RESIDENT)
		return NULL;
	if (seg == NULL)
		for (seg = h->segs_avail[tier]; seg; seg = seg->next)
			if ((at = run_find(seg, k, k0, ~(segmask_t)0)) >= 0)
				break;
	if (seg == NULL) {
		seg = segment_alloc(h, tier, shift);
		if (seg == NULL)
			return NULL;
		*fresh_segment = true;
		if (tier == TIER_LARGE)
			lt_join(h, seg);
		else
			seg->fd_bound = FD_UNKNOWN;
		DCTR_INC(h, refill_new_segment);
		if (seg->dirty) /* a cached segment's pages: this heap's sweep */
			purge_note(&h->next_purge, seg->dirty_since);
		seg->in_full = 0;
		seglist_push(&h->segs_avail[tier], seg);
		dirty_count(h, seg, seg->dirty, 1);
		at = run_find(seg, k, k0, ~(segmask_t)0);
		hak_assert(at >= 0);
	}
	unsigned i = (unsigned)at, n = i == 0 ? k0 : k;
	segmask_t m = mask_run(i, n);
	seg->used_mask |= m;
	dirty_count(h, seg, seg->dirty & m, -1);
	seg->dirty &= ~m; /* reused before their purge: no purge */
	if (tier == TIER_LARGE)
		/* exact again, so that the next look does not try it for
		 * nothing (a few steps: the runs left are short) */
		fd_set(h, seg, run_longest(~seg->used_mask & seg->dirty & seg_full_mask(seg)));
	/* the run's later slots are left as they are: free, owner NULL,
	 * carved 0 (types.h, "later slots") */
	seg->slabs[i].nslots = (uint8_t)n;
	struct slab *s = slab_init(h, seg, i, c);
	if (seg->used_mask == seg_full_mask(seg)) {
		seglist_remove(&h->segs_avail[tier], seg);
		seg->in_full = 1;
		seglist_push(&h->segs_full[tier], seg);
	}
	CTR_INC(h, slabs_new);
	DCTR_INC(h, refill_new_slab);
	return s;
}

bool slab_take_remote(struct heap *h, struct slab *s)
{
	if (s->state != SLAB_FULL || atomic_load_explicit(&s->remote, memory_order_relaxed) == NULL)
		return false;
	slab_drain(s);
	if (s->nfree == 0)
		return false;
	slab_full_to_partial(h, s);
	return true;
}

bool slab_collect_remote(struct heap *h, int tier)
{
	bool any = false;
	for (int l = 0; l < 2; l++) {
		struct segment *seg = l ? h->segs_full[tier] : h->segs_avail[tier];
		for (; seg; seg = seg->next) {
			if (atomic_load_explicit(&seg->remote_mask, memory_order_relaxed) == 0)
				continue;
			uint32_t m = atomic_exchange_explicit(&seg->remote_mask, 0, memory_order_relaxed);
			/* a current or partial slab: the refill drains it */
			for (; m; m &= m - 1)
				any |= slab_take_remote(h, &seg->slabs[__builtin_ctz(m)]);
		}
	}
	return any;
}

struct slab *slab_new(struct heap *h, int tier, unsigned shift, unsigned c, bool *fresh_segment)
{
	return slab_new_run(h, tier, shift, c, 1, 1, SLAB_RUN_MAP, fresh_segment);
}

bool slab_slot_free(struct heap *h, struct segment *seg, struct slab *s)
{
	hak_assert(s->used == 0);
	VALIDATE(s);
	s->state = SLAB_FREE;
	s->free = NULL;
	s->nfree = s->carved = 0;
	atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
	unsigned n = s->nslots;
	s->nslots = 1;
	segmask_t bit = mask_run(s->index, n);
	seg->used_mask &= ~bit;
	if (seg->in_full) {
		seglist_remove(&h->segs_full[seg->tier], seg);
		seg->in_full = 0;
		seglist_push(&h->segs_avail[seg->tier], seg);
		if (seg->tier == TIER_LARGE)
			lt_to_front(h, seg);
	}
	size_t len;
	uint8_t *a = slab_area(seg, s->index, &len);
	len += (size_t)(n - 1) << seg->slab_shift;
	/* A large segment that empties stays with the heap for a purge
	 * delay, dirty, as its free runs do: a program whose large blocks
	 * come and go would otherwise map and fault in segments all the
	 * time.  Not beyond the tier's dirty_keep bytes of free dirty slots:
	 * then the run's pages go now (and an empty segment to the cache). */
	int t = seg->tier;
	bool keep = purge_delay() != 0 && !h->purge_now;
	if (keep && h->dirty_keep[t] != 0) {
		uint64_t d = slab_dirty_bytes(h, t) + len;
		keep = d <= h->dirty_keep[t];
		if (!keep)
			h->dirty_purged_ms[t] = os_now_ms();
		else if (d > h->dirty_high[t])
			h->dirty_high[t] = d;
	}
	if (seg->used_mask == 0 && (!keep || t != TIER_LARGE)) {
		if (t == TIER_LARGE)
			lt_leave(h, seg);
		seglist_remove(&h->segs_avail[seg->tier], seg);
		dirty_count(h, seg, seg->dirty, -1);
		/* beyond what h keeps (or h gives back now): the pages go with
		 * it, not a delay later from the cache */
		if (keep)
			segment_release(seg);
		else
			segment_release_idle(seg);
		return true;
	}
	if (!keep) { /* the pages go now */
		purge_pages(a, len);
		return false;
	}
	uint64_t now = os_now_ms();
	dirty_count(h, seg, bit & ~seg->dirty, 1);
	segment_dirty_mark(seg, bit, now);
	fd_bound_raise(h, seg, s->index, n);
	purge_note(&h->next_purge, now);
	return false;
}

uint64_t slab_dirty_bytes(const struct heap *h, int tier)
{
#ifdef HAKMEM_DEBUG
	uint64_t n = 0;
	for (const struct segment *seg = h->segs_avail[tier]; seg; seg = seg->next)
		n += (uint64_t)mask_count(seg->dirty) << seg->slab_shift;
	hak_assert(n == h->dirty_bytes[tier]);
	if (tier == TIER_LARGE) { /* the table: every segment once, its bound */
		unsigned live = 0, over = 0;
		for (int l = 0; l < 2; l++)
			for (const struct segment *seg = l ? h->segs_full[tier] : h->segs_avail[tier]; seg;
			     seg = seg->next) {
				segmask_t fd = ~seg->used_mask & seg->dirty & seg_full_mask(seg);
				hak_assert(seg->fd_bound == FD_UNKNOWN || seg->fd_bound >= run_longest(fd));
				if (seg->lt_slot == LT_NONE) {
					over++;
					continue;
				}
				live++;
				hak_assert(seg->lt_slot < h->lt_n && h->lt_seg[seg->lt_slot] == seg &&
					   h->lt_bound[seg->lt_slot] == seg->fd_bound &&
					   memchr(h->lt_order, seg->lt_slot, h->lt_live) != NULL);
			}
		hak_assert(live == h->lt_live && over == h->lt_over);
	}
#endif
	return h->dirty_bytes[tier];
}

void slab_segments_sweep(struct heap *h, int tier, uint64_t now, bool force, uint64_t *next)
{
	struct segment *seg, *snext;
	for (seg = h->segs_avail[tier]; seg; seg = snext) {
		snext = seg->next;
		if (!seg->dirty)
			continue;
		/* each free slot waits its own delay (types.h, dirty_at) */
		segmask_t old = segment_dirty_due(seg, now, false, NULL);
		if (seg->used_mask == 0) { /* a large segment kept empty */
			if (old != seg->dirty && !force) {
				purge_note(next, seg->dirty_since);
				continue;
			}
			if (tier == TIER_LARGE)
				lt_leave(h, seg);
			seglist_remove(&h->segs_avail[tier], seg);
			dirty_count(h, seg, seg->dirty, -1);
			/* a delay empty: its pages go (not with a forced
			 * sweep's fresh ones: the cache keeps them a delay) */
			if (old == seg->dirty)
				segment_release_idle(seg);
			else
				segment_release(seg);
			continue;
		}
		/* an exit (heap.purge_later): only what waited a delay; the
		 * rest goes with the segment to the next thread */
		segmask_t go = force && !h->purge_later ? seg->dirty : old;
		if (go != seg->dirty)
			purge_note(next, seg->dirty_since);
		/* one call per run of neighbouring dirty slots */
		for (segmask_t m = go; m;) {
			unsigned i, n = mask_take_run(&m, &i);
			size_t len;
			uint8_t *a = slab_area(seg, i, &len);
			purge_pages(a, len + ((size_t)(n - 1) << seg->slab_shift));
		}
		dirty_count(h, seg, go, -1);
		seg->dirty &= ~go;
		if (tier == TIER_LARGE && go)
			fd_set(h, seg, run_longest(~seg->used_mask & seg->dirty & seg_full_mask(seg)));
	}
}

bool slab_retire(struct heap *h, struct segment *seg, struct slab *s)
{
	slab_unkeep(h, s);
	slab_unlink(h, s);
	CTR_INC(h, slabs_retired);
	return slab_slot_free(h, seg, s);
}

int slab_settle_owned(struct heap *h, struct segment *seg, struct slab *s)
{
	if (s->used == 0 && s->state != SLAB_CURRENT) {
		if (purge_delay() == 0) {
			slab_retire(h, seg, s);
			return SETTLE_NONE;
		}
		if (!s->kept) {
			uint64_t bytes = (uint64_t)1 << seg->slab_shift;
			if (h->slab_empty + bytes > h->slab_keep) {
				/* beyond what h keeps: back now, its pages too,
				 * so that a thread that stops calling the
				 * allocator keeps at most slab_keep */
				int keep = h->purge_now;
				h->purge_now = 1;
				slab_retire(h, seg, s);
				h->purge_now = keep;
				h->slab_returned_ms = os_now_ms();
				return SETTLE_NONE;
			}
			s->kept = 1;
			h->slab_empty += bytes;
			if (h->slab_empty > h->slab_high)
				h->slab_high = h->slab_empty;
		}
		if (s->state == SLAB_FULL)
			slab_full_to_partial(h, s);
		s->empty_seen = 0;
		return SETTLE_SWEEP;
	}
	if (s->state == SLAB_FULL)
		slab_full_to_partial(h, s);
	return SETTLE_NONE;
}

void slab_sweep_empty(struct heap *h, unsigned c, uint64_t now, bool force, uint64_t *next)
{
	struct slab *s, *snext;
	for (s = h->partial[c]; s; s = snext) {
		snext = s->next;
		if (s->used != 0)
			s->empty_seen = 0;
		else if (purge_second_look(&s->empty_seen, force))
			slab_retire(h, seg_of_slab(s), s);
		else
			purge_note(next, now);
	}
}

void slab_adopt_segment(struct heap *h, struct segment *seg)
{
	atomic_store_explicit(&seg->owner, h, memory_order_release);
	seg->in_full = 0;
	if (seg->tier == TIER_LARGE)
		lt_join(h, seg);
	else
		seg->fd_bound = FD_UNKNOWN;
	seglist_push(&h->segs_avail[seg->tier], seg);
	dirty_count(h, seg, seg->dirty, 1);
	CTR_INC(h, segments_adopted);
	if (seg->dirty) /* free pages its last owner left: this heap's sweep */
		purge_note(&h->next_purge, seg->dirty_since);
	for (segmask_t m = seg->used_mask; m;) {
		struct slab *s = &seg->slabs[mask_first(m)];
		m &= ~mask_run(s->index, s->nslots); /* a run: its head */
		atomic_store_explicit(&s->owner, h, memory_order_relaxed);
		s->kept = 0; /* counted in the heap that left it */
		slab_drain(s);
		s->state = SLAB_CURRENT; /* on no list yet */
		s->next = s->prev = NULL;
		if (s->used == 0) {
			if (slab_retire(h, seg, s))
				return;
		} else {
			slab_file(h, s);
		}
	}
	if (seg->used_mask == seg_full_mask(seg)) {
		seglist_remove(&h->segs_avail[seg->tier], seg);
		seg->in_full = 1;
		seglist_push(&h->segs_full[seg->tier], seg);
	}
}

/* Drain and retire what can be retired in one segment. */
static void seg_drain(struct heap *h, struct segment *seg)
{
	for (segmask_t m = seg->used_mask; m;) {
		struct slab *s = &seg->slabs[mask_first(m)];
		m &= ~mask_run(s->index, s->nslots); /* a run: its head */
		slab_drain(s);
		if (s->used == 0) {
			if (slab_retire(h, seg, s))
				return;
		} else if (s->state == SLAB_FULL && s->nfree) {
			slab_full_to_partial(h, s);
		}
	}
}

void slab_segments_drain(struct heap *h, int tier)
{
	struct segment *seg, *next;
	for (seg = h->segs_avail[tier]; seg; seg = next) {
		next = seg->next;
		seg_drain(h, seg);
	}
	for (seg = h->segs_full[tier]; seg; seg = next) {
		next = seg->next;
		seg_drain(h, seg);
	}
}

void slab_abandon_segments(struct heap *h, int tier)
{
	struct segment *lists[2] = { h->segs_avail[tier], h->segs_full[tier] };
	h->segs_avail[tier] = h->segs_full[tier] = NULL;
	if (tier == TIER_LARGE) {
		for (unsigned j = 0; j < h->lt_n; j++)
			if (h->lt_seg[j] != NULL) {
				h->lt_seg[j]->lt_slot = LT_NONE;
				h->lt_seg[j] = NULL;
				h->lt_bound[j] = 0;
			}
		h->lt_n = h->lt_live = h->lt_over = 0;
	}
	h->dirty_bytes[tier] = 0;
	for (int l = 0; l < 2; l++) {
		struct segment *seg = lists[l], *next;
		for (; seg; seg = next) {
			next = seg->next;
			seg->in_full = 0;
			if (seg->used_mask == 0) { /* a large segment kept empty */
				segment_release(seg);
				continue;
			}
			for (segmask_t m = seg->used_mask; m;) {
				struct slab *s = &seg->slabs[mask_first(m)];
				m &= ~mask_run(s->index, s->nslots); /* a run: its head */
				atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
				s->next = s->prev = NULL;
			}
			segment_abandon(seg);
		}
	}
}
