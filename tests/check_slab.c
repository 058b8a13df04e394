/* check_slab.c - internal tests of lib/slab.c (the slab engine behind the
 * tiny, mid and large tiers), through hak_malloc/hak_free and a look at the
 * heap's own structures.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * - the thread-local list (bin) of a class never takes more than its cap;
 *   the rest of the frees go to the slab's local list;
 * - colour: blocks of classes that are multiples of 128 B start at several
 *   offsets modulo their size, one per slab, 64-byte aligned;
 * - slab invariants (used + nfree == carved, nfree == length(free), ...)
 *   and block conservation (blocks out of a class's slabs == blocks in the
 *   bin + blocks with the user + blocks on remote lists) after a random mix;
 * - remote frees: blocks another thread frees are pushed on the remote
 *   lists, the owner's refills drain them, each block is handed out again
 *   exactly once and none is lost (also with both threads running at once);
 * - adoption: the segments of an exited thread are abandoned, then adopted
 *   (by hak_collect or by a refill, before a new slab even when the thread
 *   has free slots of its own) and given back once empty;
 * - retire and purge: empty slabs go back, their pages are purged after
 *   HAKMEM_PURGE_DELAY_MS (at once with 0), each free slot a delay after
 *   its own free; hak_collect purges everything.
 *
 * The work runs in threads of its own, so that only the test allocates from
 * the heap under test; those threads never call ck_assert (a passing
 * assertion allocates: Check reports progress to its parent), they record
 * the first failure in terr[] and the test asserts after the join.
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <check.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"


/* ---- failure recording for worker threads ---- */



/* Two threads at once, both made by the test's main thread. */
static void run_threads2(void *(*a)(void *), void *(*b)(void *), void *arg)
{
	pthread_t ta, tb;
	terr[0] = '\0';
	ck_assert_int_eq(pthread_create(&ta, NULL, a, arg), 0);
	ck_assert_int_eq(pthread_create(&tb, NULL, b, arg), 0);
	ck_assert_int_eq(pthread_join(ta, NULL), 0);
	ck_assert_int_eq(pthread_join(tb, NULL), 0);
	ck_assert_msg(terr[0] == '\0', "%s", terr);
}

/* pthread_create allocates the new thread's TLS vector (DTV) in the
 * creating thread; glibc caches the stacks (and vectors) of joined
 * threads.  Making two threads once before any test keeps those blocks
 * out of the counts the tests compare. */
static void *idle_thread(void *arg)
{
	return arg;
}

static void warm_up(void)
{
	pthread_t a, b;
	pthread_create(&a, NULL, idle_thread, NULL);
	pthread_create(&b, NULL, idle_thread, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
}


static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* ---- a pointer set in static memory (the allocator under test must not
 * be used to test itself) ---- */

#define SET_BITS 19
#define SET_SLOTS ((size_t)1 << SET_BITS)
struct pset {
	uintptr_t *slot;
	size_t n;
};
static uintptr_t set_mem[3][SET_SLOTS];

static void set_init(struct pset *s, int which)
{
	s->slot = set_mem[which];
	s->n = 0;
	memset(s->slot, 0, sizeof(set_mem[0]));
}

static size_t set_pos(const struct pset *s, const void *p)
{
	size_t i = (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull) >> (64 - SET_BITS);
	while (s->slot[i] && s->slot[i] != (uintptr_t)p)
		i = (i + 1) & (SET_SLOTS - 1);
	return i;
}

/* false if p was already there */
static bool set_add(struct pset *s, const void *p)
{
	size_t i = set_pos(s, p);
	if (s->slot[i])
		return false;
	if (s->n >= SET_SLOTS / 2) {
		TFAIL("test pointer set full");
		return true;
	}
	s->slot[i] = (uintptr_t)p;
	s->n++;
	return true;
}

static bool set_has(const struct pset *s, const void *p)
{
	return s->slot[set_pos(s, p)] != 0;
}

/* ---- heap walk and validation ---- */

struct walk {
	uint64_t used[HAK_NBINS], nfree[HAK_NBINS], remote[HAK_NBINS];
	uint64_t slabs, segments;
};

static segmask_t full_mask(const struct segment *seg)
{
	return mask_low(seg->nslabs);
}

/* Count a list of at most max blocks, each checked to lie in slab s (or,
 * s == NULL, in a slab of class c owned by h); each goes in 'blocks'. */
static bool walk_list(void *head, uint64_t max, struct heap *h, const struct slab *s, unsigned c,
		      struct pset *blocks, uint64_t *count, const char *what)
{
	uint64_t n = 0;
	for (void *b = head; b; b = *(void **)b) {
		if (++n > max) {
			TFAIL("%s of class %u: more than %llu blocks (cycle?)", what, c,
			      (unsigned long long)max);
			return false;
		}
		struct segment *seg = segmap_lookup(b);
		if (seg == NULL || seg->tier == TIER_HUGE) {
			TFAIL("%s of class %u: block %p in no slab segment", what, c, b);
			return false;
		}
		const struct slab *bs = slab_of(seg, b);
		if (s ? bs != s : (bs->cls != c || atomic_load(&bs->owner) != h)) {
			TFAIL("%s of class %u: block %p in the wrong slab (class %u)", what, c, b, bs->cls);
			return false;
		}
		uint8_t *start = slab_block0(bs);
		if ((uint8_t *)b < start || ((uint8_t *)b - start) % slab_bsize(bs) != 0 ||
		    (uint8_t *)b >= start + (size_t)bs->carved * slab_bsize(bs)) {
			TFAIL("%s of class %u: block %p not a carved block of its slab", what, c, b);
			return false;
		}
		if (blocks && !set_add(blocks, b)) {
			TFAIL("%s of class %u: block %p is on two lists", what, c, b);
			return false;
		}
	}
	*count = n;
	return true;
}

static bool on_slab_list(struct slab *head, struct slab *s)
{
	for (int k = 0; head && k < 100000; head = head->next, k++)
		if (head == s)
			return true;
	return false;
}

/* One slab in use of h: geometry, counts, lists, and on its list. */
static bool check_one_slab(struct heap *h, struct segment *seg, struct slab *s, unsigned i, int t,
		   struct pset *blocks_set, struct walk *w)
{
	w->slabs++;
	if (atomic_load(&s->owner) != h || seg->tier != t) {
		TFAIL("slab %u of %p: owner %p, not the heap's", i, (void *)seg,
		      (void *)atomic_load(&s->owner));
		return false;
	}
	unsigned c = s->cls;
	/* a large slab is a run of nslots slots */
	size_t len = ((size_t)s->nslots << seg->slab_shift) - (i == 0 ? HAK_SEG_HDR : 0);
	uint8_t *start = (uint8_t *)seg + ((size_t)i << seg->slab_shift) +
			 (i == 0 ? HAK_SEG_HDR : 0);
	/* coloured: tiny classes 0..19 whose size is a multiple of 128 */
	bool coloured = c < HAK_CLS_MID && ace_class_size[c] % 128 == 0;
	size_t colour = (size_t)(slab_block0(s) - start);
	if (c >= HAK_NBINS || ace_tier_of_class(c) != t ||
	    slab_bsize(s) != ace_class_size[c] || slab_start(s) != start ||
	    (coloured ? colour % 64 != 0 || colour >= (slab_bsize(s) & (0 - slab_bsize(s)))
		      : colour != 0) ||
	    s->capacity != (len - colour) / slab_bsize(s)) {
		TFAIL("slab %u of %p: bad geometry (class %u, size %u, cap %u)", i,
		      (void *)seg, c, slab_bsize(s), s->capacity);
		return false;
	}
	if (s->carved > s->capacity || s->used + s->nfree != s->carved) {
		TFAIL("slab %u of %p class %u: used %u + nfree %u != carved %u "
		      "(capacity %u)",
		      i, (void *)seg, c, s->used, s->nfree, s->carved, s->capacity);
		return false;
	}
	uint64_t nf, nr;
	if (!walk_list(s->free, s->capacity, h, s, c, blocks_set, &nf, "slab free list") ||
	    !walk_list(atomic_load(&s->remote), s->capacity, h, s, c, blocks_set, &nr,
		       "remote list"))
		return false;
	if (nf != s->nfree) {
		TFAIL("slab %u of %p class %u: nfree %u but %llu blocks on the list", i,
		      (void *)seg, c, s->nfree, (unsigned long long)nf);
		return false;
	}
	if (nr > s->used) {
		TFAIL("slab class %u: %llu remote blocks but used %u", c,
		      (unsigned long long)nr, s->used);
		return false;
	}
	bool listed = s->state == SLAB_CURRENT   ? h->cur[c] == s
		      : s->state == SLAB_PARTIAL ? on_slab_list(h->partial[c], s)
		      : s->state == SLAB_FULL	 ? on_slab_list(h->full_head[c], s)
		      : s->state == SLAB_EMPTY	 ? on_slab_list(h->mid_empty, s)
						 : false;
	if (!listed) {
		TFAIL("slab %u of %p class %u: state %u but not on its list", i,
		      (void *)seg, c, s->state);
		return false;
	}
	w->used[c] += s->used;
	w->nfree[c] += s->nfree;
	w->remote[c] += nr;
	return true;
}

/* Check every segment, slab and bin of h (whose thread must be quiet, or
 * be the caller).  live[c], when given, is the number of blocks of class c
 * the user holds: then blocks out of the slabs must equal bin + live +
 * remote, per class. */
static bool validate_heap(struct heap *h, const uint64_t *live, struct walk *w)
{
	static struct pset blocks;
	set_init(&blocks, 2);
	memset(w, 0, sizeof(*w));
	for (int t = 0; t < TIER_COUNT; t++) {
		/* h->dirty_bytes follows the dirty slots of segs_avail */
		uint64_t dirty = 0;
		for (struct segment *seg = h->segs_avail[t]; seg; seg = seg->next)
			dirty += (uint64_t)mask_count(seg->dirty) << seg->slab_shift;
		if (dirty != h->dirty_bytes[t]) {
			TFAIL("tier %d: %llu bytes of dirty slots, the heap counts %llu", t,
			      (unsigned long long)dirty, (unsigned long long)h->dirty_bytes[t]);
			return false;
		}
		for (int l = 0; l < 2; l++) {
			struct segment *prev = NULL;
			for (struct segment *seg = l ? h->segs_full[t] : h->segs_avail[t]; seg;
			     prev = seg, seg = seg->next) {
				w->segments++;
				if (seg->magic != HAK_SEG_MAGIC || seg->tier != t ||
				    atomic_load(&seg->owner) != h || segmap_lookup(seg) != seg) {
					TFAIL("segment %p: bad header (tier %u, owner %p)", (void *)seg,
					      seg->tier, (void *)atomic_load(&seg->owner));
					return false;
				}
				if (seg->prev != prev || seg->in_full != l) {
					TFAIL("segment %p: bad list links (in_full %u, list %d)", (void *)seg,
					      seg->in_full, l);
					return false;
				}
				if ((seg->used_mask & ~full_mask(seg)) || (seg->dirty & seg->used_mask) ||
				    /* a large segment may stay empty a purge delay */
				    (seg->used_mask == 0 && t != TIER_LARGE) ||
				    (l == 1) != (seg->used_mask == full_mask(seg))) {
					TFAIL("segment %p: used_mask %#llx dirty %#llx on list %d", (void *)seg,
					      (unsigned long long)seg->used_mask, (unsigned long long)seg->dirty, l);
					return false;
				}
				for (unsigned i = 0, cont = 0; i < seg->nslabs; i++) {
					struct slab *s = &seg->slabs[i];
					bool inuse = (seg->used_mask & mask_bit(i)) != 0;
					/* a run's later slots: bit set, left free */
					if ((cont > 0 ? !inuse || s->state != SLAB_FREE
						      : inuse != (s->state != SLAB_FREE)) ||
					    s->index != i ||
					    (s->state == SLAB_FREE && (atomic_load(&s->owner) != NULL ||
									s->carved != 0))) {
						TFAIL("slab %u of %p: state %u but used bit %d (run: %u slots left)",
						      i, (void *)seg, s->state, inuse, cont);
						return false;
					}
					if (cont > 0) { /* a later slot of a large run */
						cont--;
						continue;
					}
					if (!inuse)
						continue;
					if (s->nslots < 1 || i + s->nslots > seg->nslabs ||
					    (t != TIER_LARGE && s->nslots != 1)) {
						TFAIL("slab %u of %p: a run of %u slots", i, (void *)seg, s->nslots);
						return false;
					}
					cont = s->nslots - 1u;
					if (!check_one_slab(h, seg, s, i, t, &blocks, w))
						return false;
				}
			}
		}
	}
	/* mid pages: their segments belong to the pool, so walk the lists
	 * (the empty ones are on the heap's list of empty pages) */
	for (struct slab *s = h->mid_empty; s; s = s->next) {
		struct segment *seg = seg_of_slab(s);
		if (seg->tier != TIER_MID || s->state != SLAB_EMPTY || s->used != 0) {
			TFAIL("empty mid page %p: tier %u state %u used %u", (void *)s, seg->tier, s->state,
			      s->used);
			return false;
		}
		if (!check_one_slab(h, seg, s, s->index, TIER_MID, &blocks, w))
			return false;
	}
	for (unsigned c = HAK_CLS_MID; c < HAK_CLS_LARGE; c++) {
		struct slab *lists[3] = { h->cur[c], h->partial[c], h->full_head[c] };
		for (int l = 0; l < 3; l++)
			for (struct slab *s = lists[l]; s; s = l ? s->next : NULL) {
				struct segment *seg = seg_of_slab(s);
				if (seg->magic != HAK_SEG_MAGIC || seg->tier != TIER_MID ||
				    !(seg->used_mask & mask_bit(s->index))) {
					TFAIL("mid page %p: bad segment %p", (void *)s, (void *)seg);
					return false;
				}
				if (!check_one_slab(h, seg, s, s->index, TIER_MID, &blocks, w))
					return false;
			}
	}
	for (unsigned c = 0; c < HAK_NBINS; c++) {
		uint64_t n;
		if (!walk_list(h->bins[c].head, (uint64_t)h->bins[c].count + 1, h, NULL, c, &blocks, &n, "bin"))
			return false;
		if (n != h->bins[c].count) {
			TFAIL("bin %u: count %u but %llu blocks", c, h->bins[c].count, (unsigned long long)n);
			return false;
		}
		if (live && w->used[c] != n + live[c] + w->remote[c]) {
			TFAIL("class %u: %llu blocks out of the slabs, but bin %llu + user %llu + remote %llu", c,
			      (unsigned long long)w->used[c], (unsigned long long)n,
			      (unsigned long long)live[c], (unsigned long long)w->remote[c]);
			return false;
		}
		if (h->cur[c] && (h->cur[c]->state != SLAB_CURRENT || h->cur[c]->cls != c)) {
			TFAIL("cur[%u] in state %u class %u", c, h->cur[c]->state, h->cur[c]->cls);
			return false;
		}
	}
	return true;
}

static bool heap_is_empty(struct heap *h)
{
	for (int t = 0; t < TIER_COUNT; t++)
		if (h->segs_avail[t] || h->segs_full[t]) {
			TFAIL("tier %d: segments left after hak_collect", t);
			return false;
		}
	if (h->mid_empty) {
		TFAIL("empty mid pages left after hak_collect");
		return false;
	}
	for (unsigned c = 0; c < HAK_NBINS; c++)
		if (h->bins[c].count || h->bins[c].head || h->cur[c] || h->partial[c] || h->full_head[c] ||
		    h->full_tail[c]) {
			TFAIL("class %u: blocks or slabs left after hak_collect", c);
			return false;
		}
	if (h->ctr.slabs_new != h->ctr.slabs_retired) {
		TFAIL("heap made %llu slabs, retired %llu", (unsigned long long)h->ctr.slabs_new,
		      (unsigned long long)h->ctr.slabs_retired);
		return false;
	}
	return true;
}

/* ---- TLS SLL cap ---- */

static const size_t cap_sizes[] = { 48, 2000, 40000 };
static void *blocks_arr[20000];

static void *sll_cap_thread(void *arg)
{
	(void)arg;
	static struct pset inbin, inlocal;
	for (size_t k = 0; k < sizeof(cap_sizes) / sizeof(cap_sizes[0]); k++) {
		size_t sz = cap_sizes[k];
		unsigned c = ace_class(sz);
		void *first = hak_malloc(sz);
		struct heap *h = tls_heap;
		uint32_t cap = h->bins[c].cap;
		long want = c < HAK_CLS_MID ? hak_cfg.tiny_sll_cap
			    : c < HAK_CLS_LARGE ? hak_cfg.pool_ring_cap : hak_cfg.large_cache_cap;
		/* tiny, HAKMEM_TINY_SLL_CAP not given: at least a slab's blocks */
		if (c < HAK_CLS_MID && !hak_cfg.tiny_sll_cap_set && want < (long)(65536 / ace_class_size[c]))
			want = (long)(65536 / ace_class_size[c]);
		/* mid, HAKMEM_POOL_RING_CAP not given: at most a page's blocks,
		 * at least 8 */
		if (c >= HAK_CLS_MID && c < HAK_CLS_LARGE && !hak_cfg.pool_ring_cap_set) {
			long page = (long)(((size_t)1 << HAK_MID_SHIFT) / ace_class_size[c]);
			if (want > (page < 8 ? 8 : page))
				want = page < 8 ? 8 : page;
		}
		if (cap != (uint32_t)want || cap != knob_cap(c)) {
			TFAIL("class %u: bin cap %u, configured %ld", c, cap, want);
			return NULL;
		}
		uint32_t n = cap + 300;
		blocks_arr[0] = first;
		for (uint32_t i = 1; i < n; i++)
			blocks_arr[i] = hak_malloc(sz);
		uint32_t b0 = h->bins[c].count;
		if (b0 > cap) {
			TFAIL("class %u: %u blocks in the bin (cap %u) after allocating", c, b0, cap);
			return NULL;
		}
		for (uint32_t i = 0; i < n; i++)
			hak_free(blocks_arr[i]);
		uint32_t b1 = h->bins[c].count;
		if (b1 != cap) {
			TFAIL("class %u: bin holds %u after %u frees, cap %u", c, b1, n, cap);
			return NULL;
		}
		/* where did each freed block go? */
		set_init(&inbin, 0);
		set_init(&inlocal, 1);
		for (void *b = h->bins[c].head; b; b = *(void **)b)
			set_add(&inbin, b);
		uint32_t nbin = 0, nlocal = 0, nretired = 0;
		for (uint32_t i = 0; i < n; i++) {
			void *p = blocks_arr[i];
			struct segment *seg = segmap_lookup(p);
			if (seg == NULL || !(seg->used_mask & mask_bit(slab_of(seg, p)->index))) {
				nretired++; /* its slab emptied and went back */
				continue;
			}
			struct slab *s = slab_of(seg, p);
			if (set_has(&inbin, p)) {
				nbin++;
				continue;
			}
			bool found = false;
			for (void *b = s->free; b && !found; b = *(void **)b)
				found = b == p;
			if (!found) {
				TFAIL("class %u: freed block %p neither in the bin nor on its slab", c, p);
				return NULL;
			}
			nlocal++;
		}
		if (nbin != cap - b0 || nlocal + nretired != n - (cap - b0)) {
			TFAIL("class %u: %u of %u frees went to the bin (expected %u), %u to the slab, %u retired",
			      c, nbin, n, cap - b0, nlocal, nretired);
			return NULL;
		}
		uint64_t live[HAK_NBINS] = { 0 };
		struct walk w;
		if (!validate_heap(h, live, &w))
			return NULL;
	}
	hak_collect();
	heap_is_empty(tls_heap);
	return NULL;
}

/* ACE's W_MAX round-up in the large tier: a class with no cached block
 * takes a cached block of a larger class (within W_MAX) before it takes a
 * new run; with W_MAX 1.00 it does not. */
static void *borrow_thread(void *arg)
{
	long wmax = (long)(intptr_t)arg;
	const size_t big = 114688, small = 98304; /* 112 KiB, 96 KiB: 1.17x */
	void *b[4];
	knob_set_wmax(TIER_LARGE, (uint32_t)wmax);
	/* a cache of one 112 KiB block (HAKMEM_LARGE_CACHE_CAP is 0 by
	 * default); this thread's heap reads the knob when it is made */
	knob_set_cap(ace_class(big), 1);
	for (int i = 0; i < 4; i++)
		b[i] = hak_malloc(big);
	for (int i = 0; i < 4; i++)
		hak_free(b[i]);
	void *p = hak_malloc(small);
	size_t got = hak_usable_size(p);
	bool reused = false;
	for (int i = 0; i < 4; i++)
		reused |= p == b[i];
	/* W_MAX 1.25: the cached 112 KiB block; 1.00: a 96 KiB run of its
	 * own, in the slots the other freed blocks gave back (runs coalesce
	 * and serve any class) */
	if (wmax >= 125 && (got != big || !reused))
		TFAIL("W_MAX %ld: malloc(%zu) got %zu bytes, reused %d", wmax, small, got, reused);
	if (wmax == 100 && (got != small || !reused))
		TFAIL("W_MAX 1.00: malloc(%zu) got %zu bytes, in a freed run %d", small, got, reused);
	hak_free(p);
	knob_set_wmax(TIER_LARGE, 125);
	knob_set_cap(ace_class(big), 0);
	return NULL;
}

START_TEST(test_large_borrow_wmax)
{
	run_thread(borrow_thread, (void *)(intptr_t)125);
	run_thread(borrow_thread, (void *)(intptr_t)100);
}
END_TEST

/* Large blocks are runs of slots (large.c).  Four 256 KiB blocks freed
 * (no cache: HAKMEM_LARGE_CACHE_CAP 0) give back 1 MiB of slots in a row: a 1 MiB
 * block takes them at once, in the same segment, without a new mapping;
 * its later slots start no block. */
static void *runs_thread(void *arg)
{
	(void)arg;
	const size_t quarter = 256 * 1024, whole = 1024 * 1024;
	void *a[5];
	knob_set_cap(ace_class(quarter), 0);
	for (int i = 0; i < 5; i++)
		a[i] = hak_malloc(quarter);
	struct segment *seg = segmap_lookup(a[1]);
	for (int i = 2; i < 5; i++)
		if (seg == NULL || segmap_lookup(a[i]) != seg ||
		    (uint8_t *)a[i] != (uint8_t *)a[i - 1] + quarter) {
			TFAIL("256 KiB blocks 1-4 are not four runs in a row of one segment");
			return NULL;
		}
	uint64_t maps = atomic_load(&os_ctr.map_calls);
	for (int i = 1; i < 5; i++) /* a[0] stays: the segment stays in use */
		hak_free(a[i]);
	uint8_t *p = hak_malloc(whole);
	if (p != a[1] || atomic_load(&os_ctr.map_calls) != maps)
		TFAIL("1 MiB block at %p, not in the freed runs at %p (%llu new mappings)", (void *)p, a[1],
		      (unsigned long long)(atomic_load(&os_ctr.map_calls) - maps));
	else {
		memset(p, 0x3c, whole); /* all of it is the block's */
		struct slab *s = slab_of(seg, p);
		size_t slot = (size_t)1 << seg->slab_shift;
		if (s->nslots != whole / slot || s->capacity != 1 || slab_check_free(s, p) != 0)
			TFAIL("1 MiB run: %u slots, capacity %u", s->nslots, s->capacity);
		for (size_t off = slot; off < whole; off += slot) {
			struct slab *t = slab_of(seg, p + off);
			if (t->state != SLAB_FREE || slab_check_free(t, p + off) != HAK_BAD_NOT_BLOCK)
				TFAIL("slot at +%zu KiB: state %u, a free there is not refused", off >> 10,
				      t->state);
		}
	}
	hak_free(p);
	hak_free(a[0]);
	return NULL;
}

START_TEST(test_large_runs_coalesce)
{
	run_thread(runs_thread, NULL);
}
END_TEST

/* A new large block takes a free run whose pages are still there before
 * one whose pages went back, even at a higher address (slab_new_run: the
 * first look, which it skips only when the heap has fewer such bytes
 * than the run needs).  Blocks A, B, X of 64 KiB side by side; A freed
 * and given back (hak_collect), X freed and kept: the next block is X's
 * run, not A's lower one. */
static void *dirty_first_thread(void *arg)
{
	(void)arg;
	const size_t n = 64 << 10;
	knob_set_cap(ace_class(n), 0);
	uint8_t *a = hak_malloc(n), *b = hak_malloc(n), *x = hak_malloc(n);
	if (a == NULL || b == NULL || x == NULL) {
		TFAIL("malloc failed");
		return NULL;
	}
	memset(a, 1, n);
	memset(b, 2, n);
	memset(x, 3, n);
	if (segmap_lookup(a) != segmap_lookup(x) || !(a < x)) {
		TFAIL("A %p and X %p: not in one segment in that order", (void *)a, (void *)x);
		return NULL;
	}
	hak_free(a);
	hak_collect(); /* A's pages go back */
	struct heap *h = tls_heap;
	uint64_t dirty0 = h->dirty_bytes[TIER_LARGE];
	hak_free(x); /* X's stay, for the purge delay */
	if (h->dirty_bytes[TIER_LARGE] < dirty0 + n) {
		TFAIL("dirty bytes %llu -> %llu after a free of %zu", (unsigned long long)dirty0,
		      (unsigned long long)h->dirty_bytes[TIER_LARGE], n);
		return NULL;
	}
	uint8_t *d = hak_malloc(n);
	if (d != x)
		TFAIL("the new block is at %p: A's run was %p, X's (pages still there) %p", (void *)d, (void *)a,
		      (void *)x);
	hak_free(d);
	hak_free(b);
	return NULL;
}

START_TEST(test_large_dirty_first)
{
	hak_free(hak_malloc(16));
	hak_cfg.purge_delay_ms = 600000; /* X's pages wait */
	run_thread(dirty_first_thread, NULL);
}
END_TEST

/* A segment's bound on its longest free resident run (fd_bound, which the
 * look for a new run reads from the heap's table before any header):
 * raised by a free to the run the freed slots make with their free
 * neighbours, exact again after a new run or a purge there.  Blocks of 48 KiB fill segments.  P in the oldest
 * is freed (3 slots), then its pages given back (0).  A and its
 * neighbour B are freed one at a time, with a look for 112 KiB (no
 * resident run anywhere) between; then a 96 KiB block fits only in A's
 * and B's slots together. */
static void *bound_thread(void *arg)
{
	(void)arg;
	enum { N = 200 };
	const size_t n = 48 << 10, big = 112 << 10, pair = 96 << 10;
	static uint8_t *a[N];
	knob_set_cap(ace_class(n), 0);
	knob_set_cap(ace_class(big), 0);
	knob_set_cap(ace_class(pair), 0);
	for (int i = 0; i < N; i++)
		if ((a[i] = hak_malloc(n)) == NULL) {
			TFAIL("malloc failed");
			return NULL;
		}
	int p = 5, i = 20; /* P, then A and B after it, in the first segment */
	struct segment *seg = segmap_lookup(a[i]);
	size_t slot = (size_t)1 << seg->slab_shift, run = (n + slot - 1) / slot;
	if (segmap_lookup(a[p]) != seg || a[i + 1] != a[i] + run * slot || segmap_lookup(a[N - 1]) == seg) {
		TFAIL("P %p, A %p, B %p: not in one segment as neighbours, or one segment for all",
		      (void *)a[p], (void *)a[i], (void *)a[i + 1]);
		return NULL;
	}
	hak_free(a[p]);
	if (seg->fd_bound != run)
		TFAIL("after P's free the bound is %u, not %zu", seg->fd_bound, run);
	hak_collect(); /* P's pages go back */
	if (seg->fd_bound != 0)
		TFAIL("P's pages went back, but the bound is %u, not 0", seg->fd_bound);
	hak_free(a[i]);
	void *x = hak_malloc(big); /* no run of 7 slots: a new one */
	if (seg->fd_bound != run)
		TFAIL("after A's free the bound is %u, not %zu", seg->fd_bound, run);
	hak_free(a[i + 1]);
	uint8_t *d = hak_malloc(pair);
	if (d != a[i])
		TFAIL("the 96 KiB block is at %p, not in the run A and B left (%p; bound %u)", (void *)d,
		      (void *)a[i], seg->fd_bound);
	hak_free(d);
	hak_free(x);
	for (int j = 0; j < N; j++)
		if (j != p && j != i && j != i + 1)
			hak_free(a[j]);
	return NULL;
}

START_TEST(test_large_bound_coalesce)
{
	hak_free(hak_malloc(16));
	hak_cfg.purge_delay_ms = 600000; /* freed slots stay resident */
	run_thread(bound_thread, NULL);
}
END_TEST

/* Large blocks take runs of 16 KiB slots (32 KiB in the secure build): a
 * run is less than 16 KiB longer than its class.  So a block that reuses
 * the run of a larger one leaves the run's other slots, resident, to the
 * next block, instead of holding pages it never uses (bench/rounds at 1
 * thread: 19.6 -> 18.1 MiB with 64 KiB slots before). */
static void *fine_thread(void *arg)
{
	(void)arg;
	static const size_t sizes[] = { 40 << 10, 56 << 10, 80 << 10, 128 << 10, 160 << 10, 320 << 10 };
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		unsigned c = ace_class(sizes[k]);
		size_t bs = ace_class_size[c];
		unsigned shift = HAKMEM_SECURE ? 15 : 14;
		size_t slot = (size_t)1 << shift, stride = (bs + slot - 1) & ~(slot - 1);
		knob_set_cap(c, 0);
		uint8_t *a[6]; /* the first may share slot 0's run (the header) */
		for (int i = 0; i < 6; i++)
			a[i] = hak_malloc(sizes[k]);
		struct segment *seg = segmap_lookup(a[3]);
		for (int i = 4; i < 6; i++)
			if (seg == NULL || seg->slab_shift != shift || a[i] != a[i - 1] + stride) {
				TFAIL("%zu KiB blocks: %td KiB apart in slots of %u KiB, want runs of %zu KiB",
				      bs >> 10, (a[i] - a[i - 1]) >> 10, seg ? 1u << (seg->slab_shift - 10) : 0,
				      stride >> 10);
				return NULL;
			}
		for (int i = 0; i < 6; i++)
			hak_free(a[i]);
	}
	/* a 40 KiB block where a 96 KiB one was: the rest stays free */
	const size_t big = 96 << 10, small = 40 << 10;
	knob_set_cap(ace_class(big), 0);
	knob_set_cap(ace_class(small), 0);
	void *keep = hak_malloc(small); /* the segment stays */
	uint8_t *x = hak_malloc(big);
	memset(x, 0x5d, big);
	hak_free(x);
	uint8_t *y = hak_malloc(small);
	struct segment *seg = segmap_lookup(y);
	struct slab *s = slab_of(seg, y);
	unsigned want = (unsigned)((small + ((size_t)1 << seg->slab_shift) - 1) >> seg->slab_shift);
	unsigned all = (unsigned)(big >> seg->slab_shift);
	segmask_t rest = mask_run(s->index + want, all - want);
	if (y != x || s->nslots != want || (seg->used_mask & rest) || (seg->dirty & rest) != rest)
		TFAIL("a 40 KiB block in a freed 96 KiB run: %s, %u slots, the rest %s",
		      y == x ? "at its start" : "elsewhere", s->nslots,
		      (seg->used_mask & rest) ? "in use" : (seg->dirty & rest) != rest ? "not resident" : "free");
	hak_free(y);
	hak_free(keep);
	return NULL;
}

START_TEST(test_large_fine_slots)
{
	run_thread(fine_thread, NULL);
}
END_TEST

START_TEST(test_sll_cap)
{
	/* 0: the default (48 B: 1365, a slab's blocks); 1: the cap given */
	hak_cfg.tiny_sll_cap_set = _i;
	heap_default_caps(); /* the tiers' rule, from the variables */
	run_thread(sll_cap_thread, NULL);
}
END_TEST

/* A refill must not put more blocks in the bin than its cap either: the
 * cap bounds the thread-local list, whichever way blocks reach it. */
static void *refill_cap_thread(void *arg)
{
	(void)arg;
	for (size_t k = 0; k < sizeof(cap_sizes) / sizeof(cap_sizes[0]); k++) {
		size_t sz = cap_sizes[k];
		unsigned c = ace_class(sz);
		void *first = hak_malloc(sz);
		struct heap *h = tls_heap;
		uint32_t cap = h->bins[c].cap, maxseen = h->bins[c].count;
		uint32_t n = 3 * cap + 300;
		blocks_arr[0] = first;
		for (uint32_t i = 1; i < n; i++) {
			blocks_arr[i] = hak_malloc(sz);
			if (h->bins[c].count > maxseen)
				maxseen = h->bins[c].count;
		}
		/* the slab's local list now holds far more than cap blocks */
		for (uint32_t i = 0; i < n; i++)
			hak_free(blocks_arr[i]);
		for (uint32_t i = 0; i < n; i++) {
			blocks_arr[i] = hak_malloc(sz);
			if (h->bins[c].count > maxseen)
				maxseen = h->bins[c].count;
		}
		for (uint32_t i = 0; i < n; i++)
			hak_free(blocks_arr[i]);
		if (maxseen > cap) {
			TFAIL("class %u (%zu B): the bin held %u blocks, cap %u", c, sz, maxseen, cap);
			return NULL;
		}
	}
	return NULL;
}

START_TEST(test_refill_respects_cap)
{
	run_thread(refill_cap_thread, NULL);
}
END_TEST

/* ---- colour ---- */

/* Blocks of a coloured class (size a multiple of 128) start at several
 * offsets within their class size, one per slab; every block is 64-byte
 * aligned and inside its slab.  Without colour, all 1024-byte blocks
 * would start at the same offset modulo 1024. */
static void *colour_thread(void *arg)
{
	(void)arg;
	static const size_t sizes[] = { 1024, 512, 768, 256 };
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t sz = sizes[k], f = sz & (0 - sz), n = 40 * ((size_t)65536 / sz);
		unsigned seen = 0, nseen = 0;
		if (n > sizeof(blocks_arr) / sizeof(blocks_arr[0]))
			n = sizeof(blocks_arr) / sizeof(blocks_arr[0]);
		for (size_t i = 0; i < n; i++) {
			uint8_t *p = blocks_arr[i] = hak_malloc(sz);
			struct segment *seg = segmap_lookup(p);
			struct slab *s = slab_of(seg, p);
			uint8_t *lo = slab_start(s), *hi = lo + ((size_t)1 << seg->slab_shift);
			if (s->index == 0)
				hi -= HAK_SEG_HDR;
			if ((uintptr_t)p % 64 != 0 || p + sz > hi || p < lo) {
				TFAIL("%zu B block %p: misaligned or outside its slab [%p, %p)", sz,
				      (void *)p, (void *)lo, (void *)hi);
				return NULL;
			}
			unsigned off = (unsigned)(((uintptr_t)p % f) / 64);
			if (!(seen & (1u << off)))
				seen |= 1u << off, nseen++;
		}
		for (size_t i = 0; i < n; i++)
			hak_free(blocks_arr[i]);
		/* about 40 slabs over f / 64 colours (2 to 16) */
		if (nseen < (f / 64 < 8 ? f / 64 : 8)) {
			TFAIL("%zu B blocks start at %u of %zu offsets (64 B steps) modulo %zu", sz, nseen,
			      f / 64, f);
			return NULL;
		}
	}
	hak_collect();
	return NULL;
}

START_TEST(test_colour)
{
	run_thread(colour_thread, NULL);
}
END_TEST

/* ---- invariants after a random mix ---- */

struct liveblk {
	uint8_t *p;
	size_t n;
	unsigned c;
};
static struct liveblk live_arr[4000];

static uint64_t lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

static size_t mix_size(uint64_t *seed)
{
	uint64_t r = lcg(seed) % 100, v = lcg(seed);
	if (r < 70)
		return 1 + v % 1024;
	if (r < 95)
		return 1025 + v % (32768 - 1024);
	return 32769 + v % (256 * KiB);
}

static void tag(uint8_t *p, size_t n, uint64_t t)
{
	memcpy(p, &t, 8 < n ? 8 : n);
	if (n >= 16)
		memcpy(p + n - 8, &t, 8);
}

static bool tag_ok(const uint8_t *p, size_t n, uint64_t t)
{
	uint64_t a = 0, b = t;
	memcpy(&a, p, 8 < n ? 8 : n);
	if (n >= 16)
		memcpy(&b, p + n - 8, 8);
	if (n < 8)
		t &= ((uint64_t)1 << (8 * n)) - 1;
	return a == t && b == (n >= 16 ? t : b);
}

static void *mix_thread(void *arg)
{
	uint64_t seed = (uintptr_t)arg, live[HAK_NBINS] = { 0 };
	const size_t nslots = sizeof(live_arr) / sizeof(live_arr[0]);
	memset(live_arr, 0, sizeof(live_arr));
	struct walk w;
	for (int op = 0; op < 60000; op++) {
		size_t i = lcg(&seed) % nslots;
		struct liveblk *b = &live_arr[i];
		if (b->p) {
			if (!tag_ok(b->p, b->n, i * 0x9E3779B97F4A7C15ull + b->n)) {
				TFAIL("block %p (%zu B) overwritten while live", (void *)b->p, b->n);
				return NULL;
			}
			hak_free(b->p);
			live[b->c]--;
			b->p = NULL;
		} else {
			b->n = mix_size(&seed);
			b->c = ace_class(b->n);
			/* one in eight is aligned, 32 B to 4 KiB */
			size_t al = lcg(&seed) % 8 == 0 ? (size_t)32 << lcg(&seed) % 8 : 0;
			void *q = NULL;
			if (al ? hak_posix_memalign(&q, al, b->n) != 0 : (q = hak_malloc(b->n)) == NULL)
				q = NULL;
			b->p = q;
			if (b->p == NULL) {
				TFAIL("allocation of %zu B (alignment %zu) failed", b->n, al);
				return NULL;
			}
			size_t u = hak_usable_size(b->p), want = ace_class_size[b->c];
			if (al) {
				/* beyond 64 B and up to 1 KiB: an aligned tiny class,
				 * n rounded up to the alignment, not a coloured slab */
				size_t m = (((b->n < al ? al : b->n) + al - 1) & ~(al - 1));
				unsigned sc = slab_of(segmap_lookup(b->p), b->p)->cls;
				if ((uintptr_t)b->p % al != 0 || u < b->n ||
				    (al > 64 && m <= HAK_TINY_MAX &&
				     (u != m || sc != HAK_CLS_ALIGNED + m / 128 - 1))) {
					TFAIL("posix_memalign(%zu, %zu) = %p: usable %zu, class %u", al,
					      b->n, b->p, u, sc);
					return NULL;
				}
			} else if (b->c < HAK_CLS_LARGE ? u != want
						: (u < want || u > want * (size_t)hak_cfg.wmax[TIER_LARGE] / 100)) {
				/* its class; a large one may borrow a block of a
				 * larger class within W_MAX */
				TFAIL("usable size of a %zu B block: %zu", b->n, hak_usable_size(b->p));
				return NULL;
			}
			b->c = slab_of(segmap_lookup(b->p), b->p)->cls; /* the slab's */
			tag(b->p, b->n, i * 0x9E3779B97F4A7C15ull + b->n);
			live[b->c]++;
		}
		if (op % 5000 == 4999 && !validate_heap(tls_heap, live, &w))
			return NULL;
	}
	if (!validate_heap(tls_heap, live, &w))
		return NULL;
	for (size_t i = 0; i < nslots; i++)
		if (live_arr[i].p) {
			hak_free(live_arr[i].p);
			live[live_arr[i].c]--;
			live_arr[i].p = NULL;
		}
	if (!validate_heap(tls_heap, live, &w))
		return NULL;
	hak_collect();
	heap_is_empty(tls_heap);
	return NULL;
}

START_TEST(test_invariants_mix)
{
	/* the conservation check counts the heap's own pages: no mid page may
	 * leave for the shared stacks meanwhile (check_pool tests that) */
	hak_cfg.pool_cap = 1024;
	struct hak_stats st0 = stats();
	run_thread(mix_thread, (void *)(uintptr_t)(12345 + _i));
	struct hak_stats st1 = stats();
	/* the thread freed everything: every slab it made went back */
	ck_assert_uint_eq(st1.slabs_new - st0.slabs_new, st1.slabs_retired - st0.slabs_retired);
	ck_assert_uint_le(st1.segments, st0.segments);
	ck_assert_uint_eq(st1.segments_abandoned, st0.segments_abandoned);
}
END_TEST

/* ---- remote frees, one after the other ---- */

struct remote_job {
	size_t size, n;
	void **blocks;
};

static sem_t go_free, freed;

static void *remote_freer(void *arg)
{
	struct remote_job *j = arg;
	void *own = hak_malloc(j->size); /* a heap of its own */
	hak_free(own);
	sem_wait(&go_free);
	for (size_t i = 0; i < j->n; i++)
		hak_free(j->blocks[i]);
	/* frees of another heap's blocks are pushed in chains of up to 32
	 * per slab; hak_collect pushes what this thread still holds */
	hak_collect();
	sem_post(&freed);
	return NULL;
}

static uint64_t remote_count(struct heap *h, unsigned c)
{
	struct walk w;
	if (!validate_heap(h, NULL, &w))
		return UINT64_MAX;
	return w.remote[c];
}

static void *remote_owner(void *arg)
{
	struct remote_job *j = arg;
	static struct pset orig, again;
	unsigned c = ace_class(j->size);
	set_init(&orig, 0);
	set_init(&again, 1);
	for (size_t i = 0; i < j->n; i++) {
		j->blocks[i] = hak_malloc(j->size);
		memset(j->blocks[i], 0x3c, j->size);
		set_add(&orig, j->blocks[i]);
	}
	struct heap *h = tls_heap;
	uint32_t bin0 = h->bins[c].count;
	uint64_t rf0 = stats().remote_frees;
	sem_post(&go_free);
	sem_wait(&freed);
	uint64_t rf1 = stats().remote_frees;
	if (rf1 - rf0 < j->n) {
		TFAIL("%zu remote frees counted %llu", j->n, (unsigned long long)(rf1 - rf0));
		return NULL;
	}
	uint64_t r = remote_count(h, c);
	if (r != j->n || h->bins[c].count != bin0) {
		TFAIL("class %u: %zu blocks freed by another thread, %llu on remote lists, bin %u -> %u", c,
		      j->n, (unsigned long long)r, bin0, h->bins[c].count);
		return NULL;
	}
	/* allocate until every block came back: each exactly once */
	static void *again_arr[60000];
	size_t max = j->n + 4 * 8192 + 1024, seen = 0, k;
	if (max > sizeof(again_arr) / sizeof(again_arr[0]))
		max = sizeof(again_arr) / sizeof(again_arr[0]);
	for (k = 0; k < max && seen < j->n; k++) {
		void *p = hak_malloc(j->size);
		again_arr[k] = p;
		if (p == NULL || !set_add(&again, p)) {
			TFAIL("allocation %zu gave %p, already handed out", k, p);
			return NULL;
		}
		seen += set_has(&orig, p);
	}
	if (seen != j->n) {
		TFAIL("class %u: %zu of %zu remotely freed blocks came back in %zu allocations", c, seen, j->n, k);
		return NULL;
	}
	r = remote_count(h, c);
	if (r != 0) {
		TFAIL("class %u: %llu blocks still on remote lists after every one came back", c,
		      (unsigned long long)r);
		return NULL;
	}
	uint64_t live[HAK_NBINS] = { 0 };
	live[c] = k;
	struct walk w;
	if (!validate_heap(h, live, &w))
		return NULL;
	for (size_t i = 0; i < k; i++)
		hak_free(again_arr[i]);
	live[c] = 0;
	if (!validate_heap(h, live, &w))
		return NULL;
	hak_collect();
	heap_is_empty(h);
	return NULL;
}

static void *remote_blocks[20000];

START_TEST(test_remote_drain)
{
	static const struct {
		size_t size, n;
	} cases[] = { { 400, 3000 }, { 16, 9000 }, { 3000, 1000 }, { 40000, 120 }, { 1000000, 6 } };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct remote_job j = { cases[i].size, cases[i].n, remote_blocks };
		sem_init(&go_free, 0, 0);
		sem_init(&freed, 0, 0);
		run_threads2(remote_owner, remote_freer, &j);
	}
}
END_TEST

/* ---- blocks freed by others into full slabs deep in the owner's list ---- */

#define DEEP_SLABS 24 /* full slabs of one class */
#define DEEP_SKIP 8   /* the first ones on the owner's full list get no frees */
static size_t DEEP_SIZE; /* a tiny class, a mid one, a large one */
static void *deep_blocks[DEEP_SLABS * 300], *deep_gone[DEEP_SLABS * 300];
static size_t deep_n, deep_ngone;

/* Fill DEEP_SLABS slabs (tiny), pages (mid) or runs (large: one block
 * each); another thread frees every block of the full ones past the
 * first DEEP_SKIP of the owner's full list (a walk from the front would
 * meet those first, and in vain); the next allocations must take those
 * blocks back, with no new slab: the remote frees marked them
 * (segment.remote_mask, heap.mid_remote, heap.large_remote).  The large
 * tier looks at 8 full runs per refill while its class is marked (a
 * walk of all would cost a malloc one look per live block), so there the
 * first refill, which meets the DEEP_SKIP runs with nothing freed, may
 * take one new run. */
static void *deep_owner(void *arg)
{
	(void)arg;
	struct heap *h = NULL;
	unsigned c = ace_class(DEEP_SIZE), ns = 0;
	struct slab *last = NULL;
	size_t cap = sizeof(deep_blocks) / sizeof(deep_blocks[0]);
	for (deep_n = 0; deep_n < cap; deep_n++) {
		void *p = hak_malloc(DEEP_SIZE);
		struct slab *sl = slab_of(segmap_lookup(p), p);
		if (sl != last) {
			last = sl;
			if (++ns > DEEP_SLABS) { /* the first block of one more slab */
				hak_free(p);
				break;
			}
		}
		deep_blocks[deep_n] = p;
		memset(p, 0x6d, DEEP_SIZE);
	}
	h = tls_heap;
	unsigned pos = 0;
	deep_ngone = 0;
	for (struct slab *sl = h->full_head[c]; sl; sl = sl->next, pos++) {
		if (pos < DEEP_SKIP)
			continue;
		for (size_t k = 0; k < deep_n; k++)
			if (deep_blocks[k] && slab_of(segmap_lookup(deep_blocks[k]), deep_blocks[k]) == sl) {
				deep_gone[deep_ngone++] = deep_blocks[k];
				deep_blocks[k] = NULL;
			}
	}
	if (ns <= DEEP_SLABS || pos < 2 * DEEP_SKIP || deep_ngone == 0) {
		TFAIL("the blocks did not fill %d slabs (%u, %u full)", DEEP_SLABS, ns, pos);
		sem_post(&go_free);
		return NULL;
	}
	sem_post(&go_free);
	sem_wait(&freed);
	/* the current slab's room and the bin first, then those blocks */
	uint64_t new0 = stats().slabs_new;
	size_t back = 0, nmore = 0;
	static void *more[DEEP_SLABS * 300 + 2048];
	while (back < deep_ngone && nmore < sizeof(more) / sizeof(more[0])) {
		void *p = more[nmore++] = hak_malloc(DEEP_SIZE);
		for (size_t k = 0; k < deep_ngone; k++)
			if (deep_gone[k] == p) {
				back++;
				break;
			}
	}
	uint64_t new1 = stats().slabs_new;
	uint64_t allowed = DEEP_SIZE > HAK_MID_MAX ? DEEP_SKIP / 8 : 0;
	if (back != deep_ngone || new1 - new0 > allowed)
		TFAIL("%zu of %zu blocks freed by another thread came back in %zu allocations; %llu new slabs",
		      back, deep_ngone, nmore, (unsigned long long)(new1 - new0));
	for (size_t k = 0; k < deep_n; k++)
		if (deep_blocks[k])
			hak_free(deep_blocks[k]);
	for (size_t k = 0; k < nmore; k++)
		hak_free(more[k]);
	return NULL;
}

static void *deep_freer(void *arg)
{
	(void)arg;
	hak_free(hak_malloc(DEEP_SIZE)); /* a heap of its own */
	sem_wait(&go_free);
	for (size_t k = 0; k < deep_ngone; k++)
		hak_free(deep_gone[k]);
	hak_collect(); /* push the chains still gathered here */
	sem_post(&freed);
	return NULL;
}

START_TEST(test_remote_deep)
{
	DEEP_SIZE = _i == 2 ? 65536 : _i ? 8192 : 256;
	set_tier_cap(TIER_TINY, 1024);
	sem_init(&go_free, 0, 0);
	sem_init(&freed, 0, 0);
	run_threads2(deep_owner, deep_freer, NULL);
}
END_TEST

/* ---- remote frees while the owner allocates ---- */

#define RING 4096
static void *ring[RING];
static _Atomic size_t ring_head, ring_tail;
static atomic_bool ring_done;
#define LIVE_MAGIC 0x4c495645u /* "LIVE" */
#define DEAD_MAGIC 0x44454144u

static void *ring_consumer(void *arg)
{
	(void)arg;
	void *own = hak_malloc(64);
	hak_free(own);
	for (;;) {
		size_t t = atomic_load_explicit(&ring_tail, memory_order_relaxed);
		if (t == atomic_load_explicit(&ring_head, memory_order_acquire)) {
			if (atomic_load(&ring_done) && t == atomic_load(&ring_head))
				break;
			sched_yield();
			continue;
		}
		uint32_t *p = ring[t % RING];
		if (p[2] != LIVE_MAGIC)
			TFAIL("block %p handed to the freer is not live (%#x)", (void *)p, p[2]);
		p[2] = DEAD_MAGIC;
		atomic_store_explicit(&ring_tail, t + 1, memory_order_release);
		hak_free(p);
	}
	hak_collect(); /* push the chain of remote frees still gathered here */
	sem_post(&freed);
	return NULL;
}

static void *ring_producer(void *arg)
{
	(void)arg;
	static const size_t sizes[] = { 16, 48, 100, 400, 1000, 2000, 5000, 20000 };
	static uint32_t *mine[64];
	for (size_t i = 0; i < 300000 && !terr[0]; i++) {
		size_t sz = sizes[i % 8];
		uint32_t *p = hak_malloc(sz);
		if (p == NULL) {
			TFAIL("hak_malloc(%zu) failed", sz);
			break;
		}
		if (p[2] == LIVE_MAGIC) {
			TFAIL("block %p (%zu B) handed out while still live", (void *)p, sz);
			break;
		}
		p[2] = LIVE_MAGIC;
		if (i % 3 == 0) { /* some are freed by their owner */
			uint32_t *q = mine[i % 64];
			if (q) {
				q[2] = DEAD_MAGIC;
				hak_free(q);
			}
			mine[i % 64] = p;
			continue;
		}
		size_t h = atomic_load_explicit(&ring_head, memory_order_relaxed);
		while (h - atomic_load_explicit(&ring_tail, memory_order_acquire) >= RING)
			sched_yield();
		ring[h % RING] = p;
		atomic_store_explicit(&ring_head, h + 1, memory_order_release);
	}
	atomic_store(&ring_done, true);
	sem_wait(&freed); /* the consumer has freed everything */
	uint64_t live[HAK_NBINS] = { 0 };
	for (int k = 0; k < 64; k++)
		if (mine[k])
			live[slab_of(segmap_lookup(mine[k]), mine[k])->cls]++;
	struct walk w;
	if (!validate_heap(tls_heap, live, &w))
		return NULL;
	for (int k = 0; k < 64; k++)
		if (mine[k]) {
			hak_free(mine[k]);
			mine[k] = NULL;
		}
	hak_collect();
	heap_is_empty(tls_heap);
	return NULL;
}

START_TEST(test_remote_concurrent)
{
	struct hak_stats st0 = stats();
	atomic_store(&ring_head, 0);
	atomic_store(&ring_tail, 0);
	atomic_store(&ring_done, false);
	sem_init(&freed, 0, 0);
	run_threads2(ring_producer, ring_consumer, NULL);
	struct hak_stats st1 = stats();
	ck_assert_uint_ge(st1.remote_frees - st0.remote_frees, 150000);
	ck_assert_uint_eq(st1.slabs_new - st0.slabs_new, st1.slabs_retired - st0.slabs_retired);
}
END_TEST

/* ---- adoption of an exited thread's segments ---- */

#define LEAK_TINY 2000
#define LEAK_MID 100
#define LEAK_LARGE 10
#define LEAK_N (LEAK_TINY + LEAK_MID + LEAK_LARGE)
static void *leaked[LEAK_N];
static size_t nleaked;

/* Allocates, frees half, exits holding the other half (given to main). */
static void *leaker_thread(void *arg)
{
	(void)arg;
	static void *all[LEAK_N];
	size_t n = 0;
	for (int i = 0; i < LEAK_TINY; i++)
		all[n++] = hak_malloc(64);
	for (int i = 0; i < LEAK_MID; i++)
		all[n++] = hak_malloc(4000);
	for (int i = 0; i < LEAK_LARGE; i++)
		all[n++] = hak_malloc(100000);
	nleaked = 0;
	for (size_t i = 0; i < n; i++) {
		if (all[i] == NULL) {
			TFAIL("allocation failed");
			return NULL;
		}
		memset(all[i], 0x11, 64);
		if (i % 2)
			leaked[nleaked++] = all[i];
		else
			hak_free(all[i]);
	}
	return NULL;
}

START_TEST(test_adopt_by_collect)
{
	hak_collect();
	struct hak_stats st0 = stats();
	run_thread(leaker_thread, NULL);
	struct hak_stats st1 = stats();
	/* Looked at first, asserted after the frees below: in its fork mode
	 * Check sends every assertion that passes to the parent, in a buffer
	 * it mallocs (its size depends on the file name: the out-of-tree
	 * build of make distcheck has a longer one), and a malloc of this
	 * thread that refills may adopt the abandoned segments, as it
	 * should. */
	size_t no_seg = 0, owned = 0, slab_owned = 0, not_shared = 0, changed = 0;
	for (size_t i = 0; i < nleaked; i++) {
		struct segment *seg = segmap_lookup(leaked[i]);
		if (seg == NULL) {
			no_seg++;
			continue;
		}
		owned += atomic_load(&seg->owner) != NULL;
		slab_owned += atomic_load(&slab_of(seg, leaked[i])->owner) != NULL;
		not_shared += seg->tier == TIER_MID && slab_of(seg, leaked[i])->state != SLAB_SHARED;
		changed += ((uint8_t *)leaked[i])[63] != 0x11;
	}
	/* frees into abandoned segments: remote pushes */
	for (size_t i = 0; i < nleaked; i++)
		hak_free(leaked[i]);
	struct hak_stats st2 = stats();
	ck_assert_uint_eq(st1.threads_exited, st0.threads_exited + 1);
	/* tiny and large segments with blocks still out are abandoned; the
	 * mid page with blocks out went to its class's shared stack */
	ck_assert_uint_ge(st1.segments_abandoned, st0.segments_abandoned + 2);
	ck_assert_uint_ge(st1.pool_shared_pages, st0.pool_shared_pages + 1);
	ck_assert_uint_eq(no_seg, 0);
	ck_assert_msg(owned == 0 && slab_owned == 0,
		      "%zu of %zu leaked blocks in an owned segment, %zu in an owned slab", owned,
		      nleaked, slab_owned);
	ck_assert_uint_eq(not_shared, 0);
	ck_assert_uint_eq(changed, 0);
	ck_assert_uint_ge(st2.remote_frees - st1.remote_frees, nleaked);
	hak_collect();
	struct hak_stats st3 = stats();
	ck_assert_uint_ge(st3.segments_adopted - st2.segments_adopted,
			  st1.segments_abandoned - st0.segments_abandoned);
	ck_assert_uint_eq(st3.segments_abandoned, 0);
	/* the collect drained the shared page, found it empty, gave it back */
	ck_assert_uint_eq(st3.pool_shared_pages, 0);
	/* every segment the thread made went back */
	ck_assert_uint_le(st3.segments, st0.segments);
	ck_assert_uint_lt(st3.segments, st1.segments);
	ck_assert_uint_eq(st3.slabs_new - st0.slabs_new, st3.slabs_retired - st0.slabs_retired);
	struct walk w;
	terr[0] = '\0';
	ck_assert_msg(validate_heap(tls_heap, NULL, &w), "%s", terr);
}
END_TEST

/* A thread with no segment of a tier adopts an abandoned one on refill. */
static struct heap *adopter_heap;
static void *adopter_thread(void *arg)
{
	(void)arg;
	void *p = hak_malloc(64);
	adopter_heap = tls_heap;
	if (tls_heap->ctr.segments_adopted < 1)
		TFAIL("refill of an empty heap adopted nothing");
	/* the abandoned tiny segment holds the leaked blocks: it is ours now */
	for (size_t i = 0; i < nleaked; i++) {
		struct segment *s = segmap_lookup(leaked[i]);
		if (s->tier == TIER_TINY && atomic_load(&s->owner) != tls_heap)
			TFAIL("leaked block %p: segment owner %p, not the adopter", leaked[i],
			      (void *)atomic_load(&s->owner));
	}
	struct walk w;
	validate_heap(tls_heap, NULL, &w);
	hak_free(p);
	return NULL;
}

START_TEST(test_adopt_by_refill)
{
	hak_collect();
	struct hak_stats st0 = stats();
	run_thread(leaker_thread, NULL);
	struct hak_stats st1 = stats();
	/* no assertion before the adopter ran (see test_adopt_by_collect) */
	run_thread(adopter_thread, NULL);
	struct hak_stats st2 = stats();
	ck_assert_uint_ge(st1.segments_abandoned, 1);
	ck_assert_uint_ge(st2.segments_adopted - st1.segments_adopted, 1);
	/* the adopter exited: what it holds is abandoned again */
	ck_assert_uint_ge(st2.segments_abandoned, 1);
	for (size_t i = 0; i < nleaked; i++)
		hak_free(leaked[i]);
	hak_collect();
	struct hak_stats st3 = stats();
	ck_assert_uint_eq(st3.segments_abandoned, 0);
	ck_assert_uint_le(st3.segments, st0.segments);
	ck_assert_uint_eq(st3.slabs_new - st0.slabs_new, st3.slabs_retired - st0.slabs_retired);
}
END_TEST

/* A thread that has segments of its own with free slots still adopts
 * what an exited thread left before it starts a new slab: the blocks
 * others freed into the abandoned segment (remote frees, which only an
 * owner takes back) serve it, instead of waiting there while the thread
 * takes new memory.  Here the thread itself frees them. */
#define LEFT_N 2000
#define LEFT_SIZE 112 /* a class neither glibc nor the test uses otherwise */
static void *left_blocks[LEFT_N];

static void *leaver_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < LEFT_N; i++) {
		left_blocks[i] = hak_malloc(LEFT_SIZE);
		if (left_blocks[i] == NULL) {
			TFAIL("allocation failed");
			return NULL;
		}
		memset(left_blocks[i], 0x33, LEFT_SIZE);
	}
	return NULL; /* its segment is abandoned with the blocks out */
}

static void *reuser_thread(void *arg)
{
	(void)arg;
	/* a segment of its own first, with free slots (another class) */
	void *own = hak_malloc(200);
	pthread_t t;
	if (own == NULL || pthread_create(&t, NULL, leaver_thread, NULL) != 0 ||
	    pthread_join(t, NULL) != 0) {
		TFAIL("setup failed");
		return NULL;
	}
	if (terr[0])
		return NULL;
	struct segment *left = segmap_lookup(left_blocks[0]), *mine = segmap_lookup(own);
	if (left == mine || atomic_load(&left->owner) != NULL) {
		TFAIL("the leaver's blocks are not in an abandoned segment of their own");
		return NULL;
	}
	if (tls_heap->segs_avail[TIER_TINY] == NULL) {
		TFAIL("the thread has no tiny segment with free slots");
		return NULL;
	}
	unsigned c = ace_class(LEFT_SIZE);
	if (tls_heap->cur[c] != NULL || tls_heap->partial[c] != NULL || tls_heap->bins[c].count != 0) {
		TFAIL("the thread has blocks of the %d-byte class already", LEFT_SIZE);
		return NULL;
	}
	/* remote frees into the abandoned segment; the last blocks stay out,
	 * so that their slab stays (an empty one would go, and with it the
	 * segment, to the cache) */
	for (int i = 0; i < LEFT_N - 16; i++)
		hak_free(left_blocks[i]);
	void *p = hak_malloc(LEFT_SIZE);
	struct segment *got = segmap_lookup(p);
	if (got != left)
		TFAIL("a refill of the %d-byte class took %s instead of the freed blocks of the "
		      "abandoned segment",
		      LEFT_SIZE, got == mine ? "a new slab of the thread's own segment" : "another segment");
	else if (atomic_load(&left->owner) != tls_heap)
		TFAIL("the abandoned segment served the refill but was not adopted");
	hak_free(p);
	for (int i = LEFT_N - 16; i < LEFT_N; i++)
		hak_free(left_blocks[i]);
	hak_free(own);
	return NULL;
}

START_TEST(test_adopt_before_new_slab)
{
	run_thread(reuser_thread, NULL);
}
END_TEST

/* ---- retire and purge ---- */

static void *churn_thread(void *arg)
{
	(void)arg;
	static void *b[8000];
	size_t n = 0;
	for (int i = 0; i < 5000; i++)
		b[n++] = hak_malloc(64);
	for (int i = 0; i < 200; i++)
		b[n++] = hak_malloc(8000);
	for (int i = 0; i < 20; i++)
		b[n++] = hak_malloc(200000);
	for (size_t i = 0; i < n; i++) {
		if (b[i] == NULL) {
			TFAIL("allocation failed");
			return NULL;
		}
		memset(b[i], 0x22, 64);
	}
	for (size_t i = 0; i < n; i++)
		hak_free(b[i]);
	uint64_t purged0 = atomic_load(&os_ctr.purged);
	struct hak_stats st0 = stats();
	hak_collect();
	struct hak_stats st1 = stats();
	if (st1.os_purged <= purged0)
		TFAIL("hak_collect after freeing everything purged nothing (%llu -> %llu)",
		      (unsigned long long)purged0, (unsigned long long)st1.os_purged);
	if (st1.segments >= st0.segments)
		TFAIL("hak_collect gave back no segment (%llu -> %llu)", (unsigned long long)st0.segments,
		      (unsigned long long)st1.segments);
	heap_is_empty(tls_heap);
	return NULL;
}

START_TEST(test_retire_collect_purge)
{
	struct hak_stats st0 = stats();
	run_thread(churn_thread, NULL);
	struct hak_stats st1 = stats();
	ck_assert_uint_gt(st1.slabs_new - st0.slabs_new, 3);
	ck_assert_uint_eq(st1.slabs_new - st0.slabs_new, st1.slabs_retired - st0.slabs_retired);
	ck_assert_uint_gt(st1.os_purged, st0.os_purged);
}
END_TEST

/* Mid class 32 KiB with a bin cap of 0: every free goes to the slab.  Slab
 * 0 (7 blocks) fills, slab 1 starts; then slab 0's blocks all come back.
 * HAKMEM_PURGE_DELAY_MS=0: its pages go back to the OS at once.  A longer
 * delay: not at once, but once the delay has passed (a few times over, by
 * whatever policy keeps an empty slab for reuse first), the next slow paths
 * of the heap give them back.  The segment stays (slab 1 is in use). */
static void *purge_thread(void *arg)
{
	long delay = (long)(intptr_t)arg;
	void *b[8];
	for (int i = 0; i < 8; i++)
		b[i] = hak_malloc(32768);
	struct segment *seg = segmap_lookup(b[0]);
	/* page 0 of a segment holds n0 blocks (the header takes 4 KiB) */
	int n0 = seg ? (int)((((size_t)1 << seg->slab_shift) - HAK_SEG_HDR) / 32768) : 0;
	if (seg == NULL || n0 < 1 || n0 > 7 || slab_of(seg, b[0])->index != 0 ||
	    slab_of(seg, b[n0 - 1])->index != 0 || slab_of(seg, b[n0])->index != 1 ||
	    tls_heap->bins[ace_class(32768)].count != 0) {
		TFAIL("unexpected layout: blocks 0-%d should fill slab 0, block %d start slab 1", n0 - 1, n0);
		return NULL;
	}
	/* a mid page gives back the blocks it carved */
	size_t len = (size_t)n0 * 32768;
	uint64_t p0 = atomic_load(&os_ctr.purged);
	for (int i = 0; i < n0; i++)
		hak_free(b[i]);
	uint64_t p1 = atomic_load(&os_ctr.purged);
	if (delay == 0) {
		if (p1 - p0 != len || (seg->used_mask & 1u) || (seg->dirty & 1u))
			TFAIL("HAKMEM_PURGE_DELAY_MS=0: emptied slab purged %llu bytes at once (expected %zu), "
			      "used_mask %#llx, dirty %#llx",
			      (unsigned long long)(p1 - p0), len, (unsigned long long)seg->used_mask,
			      (unsigned long long)seg->dirty);
	} else {
		if (p1 != p0) {
			TFAIL("delay %ld: slab purged at once (%llu bytes)", delay,
			      (unsigned long long)(p1 - p0));
			return NULL;
		}
		/* each round: wait out the delay, then a slow path (a new
		 * slab of a tiny class: it cannot take mid slab 0's place) */
		void *q[12] = { 0 };
		int round;
		for (round = 0; round < 12; round++) {
			sleep_ms(delay + 20);
			q[round] = hak_malloc(16 + 64 * (size_t)round);
			if (atomic_load(&os_ctr.purged) - p1 >= len && !(seg->dirty & 1u) &&
			    !(seg->used_mask & 1u))
				break;
		}
		if (round == 12)
			TFAIL("delay %ld: emptied slab not purged after %d delays (%llu bytes purged, used_mask "
			      "%#llx, dirty %#llx)",
			      delay, round, (unsigned long long)(atomic_load(&os_ctr.purged) - p1),
			      (unsigned long long)seg->used_mask, (unsigned long long)seg->dirty);
		for (int k = 0; k < 12; k++)
			hak_free(q[k]);
	}
	for (int i = n0; i < 8; i++)
		hak_free(b[i]);
	return NULL;
}

/* Freed large blocks give their pages back while a block of their segment
 * is still live: their runs of slots go back to the segment at once, and
 * the free slots' pages go (forced by hak_collect, or a delay later, by a
 * sweep while the thread goes on allocating). */
static void *large_free_purge_thread(void *arg)
{
	bool delayed = arg != NULL;
	const size_t sz = 229376; /* 224 KiB: a run of 4 slots */
	/* 8 freed; with delay one of them waits in the thread's bin (cap 1) */
	const size_t give = (delayed ? 7 : 8) * (sz - 4096);
	void *b[9];
	long old_delay = hak_cfg.purge_delay_ms;
	if (delayed)
		hak_cfg.purge_delay_ms = 5;
	for (int i = 0; i < 9; i++) {
		b[i] = hak_malloc(sz);
		memset(b[i], 0x5a, sz);
	}
	uint64_t before = stats().os_purged;
	for (int i = 1; i < 9; i++) /* b[0] stays: the slab never empties */
		hak_free(b[i]);
	if (delayed) {
		/* another class keeps refilling, which runs the sweeps */
		for (int k = 0; k < 40 && stats().os_purged - before < give; k++) {
			sleep_ms(5);
			void *x = hak_malloc(40000), *y = hak_malloc(40000);
			hak_free(x);
			hak_free(y);
		}
	} else {
		hak_collect();
	}
	uint64_t got = stats().os_purged - before;
	if (got < give)
		TFAIL("%s: %llu bytes purged, want at least %zu", delayed ? "delay" : "collect",
		      (unsigned long long)got, give);
	hak_free(b[0]);
	hak_cfg.purge_delay_ms = old_delay;
	return NULL;
}

START_TEST(test_large_free_blocks_purged)
{
	run_thread(large_free_purge_thread, NULL);
	run_thread(large_free_purge_thread, (void *)1);
}
END_TEST

/* Pages of [p, p + n) that are resident. */
static size_t resident_pages(const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)(HAK_PAGE - 1);
	size_t np = ((uintptr_t)p + n - a + HAK_PAGE - 1) / HAK_PAGE, r = 0;
	unsigned char v[512];
	for (size_t i = 0; i < np; i += 512) {
		size_t k = np - i < 512 ? np - i : 512;
		if (mincore((void *)(a + i * HAK_PAGE), k * HAK_PAGE, v) != 0)
			return (size_t)-1;
		for (size_t j = 0; j < k; j++)
			r += v[j] & 1;
	}
	return r;
}

/* A thread that then works on huge blocks only (a buffer grown by
 * realloc past 1 MiB) still sweeps its heap: the freed large runs' pages
 * go back a delay after their free, at its next huge realloc (_i 0) or
 * free (1), not at a large refill that never comes. */
static void *huge_sweeps_thread(void *arg)
{
	bool by_free = arg != NULL;
	const size_t sz = 229376; /* a run of 4 slots */
	void *b[5], *big = hak_malloc(2 * MiB);
	hak_cfg.purge_delay_ms = 20;
	for (int i = 0; i < 5; i++) {
		b[i] = hak_malloc(sz);
		memset(b[i], 0x5a, sz);
	}
	for (int i = 1; i < 5; i++) /* b[0] stays: its segment stays */
		hak_free(b[i]);
	size_t before = 0, after = 0;
	for (int i = 1; i < 5; i++)
		before += resident_pages(b[i], sz);
	sleep_ms(60);
	if (by_free)
		hak_free(big);
	else
		big = hak_realloc(big, 3 * MiB);
	for (int i = 1; i < 5; i++)
		after += resident_pages(b[i], sz);
	/* at most one block's pages (a bin may hold one) */
	if (before < 3 * (sz / HAK_PAGE) || after > sz / HAK_PAGE)
		TFAIL("huge %s: %zu of the freed runs' pages resident after a delay (%zu before)",
		      by_free ? "free" : "realloc", after, before);
	if (!by_free)
		hak_free(big);
	hak_free(b[0]);
	return NULL;
}

START_TEST(test_huge_calls_sweep)
{
	run_thread(huge_sweeps_thread, (void *)(intptr_t)_i);
}
END_TEST

/* Each free slot of a segment waits its own purge delay: one freed long
 * ago goes back at the next sweep even when other slots of the segment
 * were freed since.  With one time per segment (the last free's), a
 * segment whose blocks come and go more often than once a delay kept
 * every free slot's pages for good: in bench/rounds, megabytes of them. */
static void *slot_ages_thread(void *arg)
{
	(void)arg;
	const size_t sz = 40000; /* a run of several slots (3 of 16 KiB) */
	void *a, *b1, *b2, *keep;
	hak_cfg.purge_delay_ms = 50;
	a = hak_malloc(sz);
	b1 = hak_malloc(sz);
	b2 = hak_malloc(sz);
	keep = hak_malloc(sz); /* the segment stays in use */
	if (!a || !b1 || !b2 || !keep) {
		TFAIL("allocation failed");
		return NULL;
	}
	memset(a, 0x5a, sz);
	memset(b1, 0x5a, sz);
	memset(b2, 0x5a, sz);
	struct segment *seg = segmap_lookup(a);
	if (segmap_lookup(b1) != seg || segmap_lookup(b2) != seg || segmap_lookup(keep) != seg) {
		TFAIL("the four blocks are not in one segment");
		return NULL;
	}
	hak_free(a);
	sleep_ms(55);
	hak_free(b1);
	sleep_ms(5);
	hak_free(b2);
	sleep_ms(25); /* a: 85 ms free, b1: 30, b2: 25: a's run alone is due,
		       * and all its slots must go */
	heap_purge(tls_heap, false);
	size_t ra = resident_pages(a, sz), rb = resident_pages(b2, sz);
	if (ra != 0)
		TFAIL("%zu pages of the slot freed a delay ago still resident after the sweep "
		      "(dirty %#llx, used %#llx)",
		      ra, (unsigned long long)seg->dirty, (unsigned long long)seg->used_mask);
	else if (rb == 0)
		TFAIL("the slot freed 25 ms ago was purged with a delay of 50 ms");
	hak_free(keep);
	return NULL;
}

START_TEST(test_dirty_slot_ages)
{
	set_tier_cap(TIER_LARGE, 0);
	run_thread(slot_ages_thread, NULL);
}
END_TEST

/* A large segment that stayed empty a purge delay with its heap goes to
 * the segment cache with its pages given back: they waited their delay
 * already, and in the cache they would wait another. */
static void *idle_segment_thread(void *arg)
{
	(void)arg;
	const size_t sz = 900 * KiB;
	hak_cfg.purge_delay_ms = 20;
	hak_cfg.segment_cache = 8;
	uint8_t *p = hak_malloc(sz);
	memset(p, 0x5a, sz);
	struct segment *seg = segmap_lookup(p);
	hak_free(p);
	if (seg->used_mask != 0) {
		TFAIL("the block's segment holds other blocks (used %#llx)", (unsigned long long)seg->used_mask);
		return NULL;
	}
	size_t before = resident_pages(p, sz);
	sleep_ms(60);
	heap_purge(tls_heap, false);
	size_t after = resident_pages(p, sz);
	if (segmap_lookup(p) != NULL)
		TFAIL("the empty segment was not released by the sweep");
	else if (before < sz / HAK_PAGE / 2 || after != 0)
		TFAIL("%zu pages of the idle segment's block resident in the cache (%zu before)", after,
		      before);
	return NULL;
}

/* A large run freed beyond the heap's dirty_keep goes back now, its pages
 * too; when it empties its segment, the segment goes to the cache with
 * its pages given back, not resident for another delay there. */
static void *beyond_keep_thread(void *arg)
{
	(void)arg;
	const size_t sz = 900 * KiB;
	hak_cfg.purge_delay_ms = 10000; /* no delay runs out in this test */
	hak_cfg.segment_cache = 8;
	segment_cache_release();
	uint8_t *p = hak_malloc(sz);
	memset(p, 0x5b, sz);
	struct segment *seg = segmap_lookup(p);
	if (seg == NULL) {
		TFAIL("no segment for the block");
		return NULL;
	}
	tls_heap->dirty_keep[TIER_LARGE] = 64 * KiB; /* less than the run */
	size_t before = resident_pages(p, sz);
	hak_free(p);
	if (segmap_lookup(p) != NULL) {
		TFAIL("the segment the block emptied stayed with its heap (used %#llx)",
		      (unsigned long long)seg->used_mask);
		return NULL;
	}
	size_t after = resident_pages(p, sz);
	if (before < sz / HAK_PAGE / 2 || after != 0)
		TFAIL("%zu pages of a run freed beyond dirty_keep resident in the cache (%zu before)", after, before);
	return NULL;
}

START_TEST(test_beyond_keep_segment_clean)
{
	run_thread(beyond_keep_thread, NULL);
}
END_TEST

START_TEST(test_idle_segment_cached_clean)
{
	run_thread(idle_segment_thread, NULL);
}
END_TEST

START_TEST(test_retire_purge_delay)
{
	set_tier_cap(TIER_MID, 0);
	hak_cfg.purge_delay_ms = _i ? 50 : 0;
	run_thread(purge_thread, (void *)(intptr_t)hak_cfg.purge_delay_ms);
}
END_TEST

/* ---- a segment reused from the cache before its purge ---- */

/* Its pages are still there: every slot must be marked dirty (taken
 * first, purged a delay later), or the resident pages of the slots no
 * page takes stay for as long as the segment lives, seen by no purge. */
START_TEST(test_cached_segment_dirty)
{
	long keep = hak_cfg.segment_cache;
	hak_cfg.segment_cache = 8;
	segment_cache_release();
	struct segment *seg = segment_alloc(NULL, TIER_MID, HAK_MID_SHIFT);
	ck_assert_ptr_nonnull(seg);
	for (unsigned i = 3; i < 6; i++) {
		size_t len;
		uint8_t *a = slab_area(seg, i, &len);
		memset(a, 0x5c, len);
	}
	segment_release(seg); /* to the cache, not purged yet */
	struct segment *again = segment_alloc(NULL, TIER_MID, HAK_MID_SHIFT);
	ck_assert_ptr_eq(again, seg);
	unsigned long long dirty = (unsigned long long)again->dirty;
	segment_release(again);
	segment_cache_release();
	hak_cfg.segment_cache = keep;
	ck_assert_msg((dirty & 0x38u) == 0x38u, "slots 3-5 were written before the cache; dirty %#llx", dirty);
}
END_TEST

static Suite *slab_suite(void)
{
	Suite *s = suite_create("slab");
	TCase *tc = tcase_create("bins");
	tcase_add_test(tc, test_large_borrow_wmax);
	tcase_add_test(tc, test_large_runs_coalesce);
	tcase_add_test(tc, test_large_dirty_first);
	tcase_add_test(tc, test_large_bound_coalesce);
	tcase_add_test(tc, test_large_fine_slots);
	tcase_add_checked_fixture(tc, warm_up, NULL);
	tcase_set_timeout(tc, 20);
	tcase_add_loop_test(tc, test_sll_cap, 0, 2);
	tcase_add_test(tc, test_refill_respects_cap);
	tcase_add_test(tc, test_colour);
	tcase_add_loop_test(tc, test_invariants_mix, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("remote");
	tcase_add_checked_fixture(tc, warm_up, NULL);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_remote_drain);
	tcase_add_test(tc, test_remote_concurrent);
	tcase_add_loop_test(tc, test_remote_deep, 0, 3);
	suite_add_tcase(s, tc);

	tc = tcase_create("adopt");
	tcase_add_checked_fixture(tc, warm_up, NULL);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_adopt_by_collect);
	tcase_add_test(tc, test_adopt_by_refill);
	tcase_add_test(tc, test_adopt_before_new_slab);
	suite_add_tcase(s, tc);

	tc = tcase_create("retire");
	tcase_add_checked_fixture(tc, warm_up, NULL);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_retire_collect_purge);
	tcase_add_loop_test(tc, test_retire_purge_delay, 0, 2);
	tcase_add_test(tc, test_large_free_blocks_purged);
	tcase_add_test(tc, test_dirty_slot_ages);
	tcase_add_test(tc, test_cached_segment_dirty);
	tcase_add_loop_test(tc, test_huge_calls_sweep, 0, 2);
	tcase_add_test(tc, test_idle_segment_cached_clean);
	tcase_add_test(tc, test_beyond_keep_segment_clean);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(slab_suite());
	/* every test in a process of its own: the tests change hakmem's
	 * global state (hak_cfg, caches, heaps) */
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
