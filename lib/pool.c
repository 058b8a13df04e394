/* pool.c - the mid tier: blocks of 1 KiB to 32 KiB (classes 20..39).
 *
 * A pool segment is cut into 16 pages of 128 KiB, each serving one class;
 * page 0 gives its first 4 KiB to the segment header.  Per class, a thread
 * keeps a ring of free blocks (its bin, cap HAKMEM_POOL_RING_CAP and at
 * most a page's worth), an active page that hands out blocks by bump and
 * by its local and remote free lists, and a bin of further pages (its
 * partial list), moved by the slab engine (slab.c).  This file holds the tier's policy: a heap's
 * refill (an empty page of its own, then HAKMEM_POOL_REFILL_BATCH pages),
 * its reserve of empty pages (mid_keep, growing and shrinking with use),
 * the trim to HAKMEM_POOL_CAP pages per class, the exit, and what the
 * heaps share:
 *
 *  - shards: every mid segment belongs to one of POOL_SHARDS shards, whose
 *    lock guards the segment's slot mask.  A heap takes new pages from its
 *    own shard, but a free slot whose memory is still there (dirty) from
 *    any shard first; any heap can give a page's slot back.
 *  - shared stacks: one lock-free stack of pages per class and shard.  A
 *    heap pushes the pages it no longer wants (beyond HAKMEM_POOL_CAP, or
 *    all of them at thread exit) and pops pages when it refills, before it
 *    takes new ones, HAKMEM_POOL_REFILL_BATCH pages at a time.  Pages keep
 *    the blocks still out: those come back through the page's remote list
 *    and are drained by whoever pops the page, or by a collect that finds
 *    the page empty and gives it back.
 */
#include "internal.h"

#include <sched.h>

/* Empty mid pages a heap keeps for reuse (h->mid_keep): mid_keep_min (64
 * pages, 8 MiB) to start with.  A page that empties beyond them goes back
 * at once, purged, so a thread that frees its mid blocks and then stops
 * calling the allocator keeps little.  But a thread that frees a batch
 * bigger than that and allocates it again would fault every page back in
 * on every round: when a refill has to take a page from the pool within a
 * purge delay of such a return, the heap doubles what it keeps (up to
 * mid_keep_max, 8192 pages, 1 GiB: about the biggest batch it has shown it
 * reuses).  A sweep lowers it to twice the most empty pages the heap had
 * since the last sweep, down to mid_keep_min again.  Both bounds are
 * knobs (config.c). */
#define MID_EMPTY_MIN 64
#define MID_EMPTY_MAX 8192

void pool_init(void)
{
	atomic_store_explicit(&hak_cfg.mid_keep_min, MID_EMPTY_MIN, memory_order_relaxed);
	atomic_store_explicit(&hak_cfg.mid_keep_max, MID_EMPTY_MAX, memory_order_relaxed);
}

/* A class's ring keeps at most HAKMEM_POOL_RING_CAP blocks and, unless
 * that variable is given, at most one page's worth of them, but no fewer
 * than RING_MIN (8 KiB: 16 blocks, 16 KiB and up: 8; 4 KiB and below: all
 * 32).  Blocks in a ring are free, but they keep their pages in use and
 * are handed out again in the order they were freed, scattered over the
 * class's pages: a ring of 32 holds up to 1 MiB a class, and a class's
 * blocks come from many pages at once instead of filling one page after
 * another, so that fewer pages empty to serve other classes.  RING_MIN:
 * a refill still moves a few blocks at a time. */
#define RING_MIN 8

uint32_t pool_default_cap(unsigned c)
{
	uint32_t cap = (uint32_t)KNOB(pool_ring_cap);
	uint32_t page = (uint32_t)(((size_t)1 << HAK_MID_SHIFT) / ace_class_size[c]);
	if (page < RING_MIN)
		page = RING_MIN;
	if (!KNOB(pool_ring_cap_set) && page < cap)
		cap = page;
	return cap;
}

/* ---------------------------------------------------------------------
 * The shared stacks.
 *
 * Each stack is a Treiber stack of struct slab linked through snext, with
 * a head word that packs the top's address and a 22-bit tag:
 *
 *   bits 63..48  tag >> 6      (user addresses have 48 bits)
 *   bits 47..6   address       (struct slab is 64-byte aligned)
 *   bits  5..0   tag & 63
 *
 * Every successful CAS on the head adds one to the tag.  ABA: a pop reads
 * top and top->snext, then CASes the head from (top, t) to (next, t+1).
 * If meanwhile top was popped and pushed back (the ABA case), the head has
 * another tag, the CAS fails and the pop reads again; it could only
 * succeed wrongly if exactly 2^22 (4 million) CASes on this one stack
 * happened between its read and its CAS.
 *
 * Memory orders:
 *  - push: the pusher writes the page's fields and last->snext, then CASes
 *    the head with release: whoever sees the new head sees them.
 *  - pop: the head is loaded with acquire and CASed with acquire.  A head
 *    value may have been written by a pop's CAS rather than by the push
 *    that linked its top; CASes are read-modify-writes and continue the
 *    pushing thread's release sequence, so the acquire still synchronises
 *    with that push and top->snext and the page's fields are visible.
 *  - take (the whole stack in one CAS): as pop.
 *  - snext is an atomic read and written relaxed: a pop may read the snext
 *    of a page another thread has just popped and is pushing elsewhere;
 *    the value is then stale, and the CAS (tag changed) rejects it.
 *
 * Memory safety: a pop dereferences top after loading the head, and top
 * may meanwhile be popped, emptied and its segment released.  Poppers
 * count themselves in 'readers' (seq_cst) around that window, and a mid
 * segment is released only after pool_quiesce() has seen readers == 0 at
 * a moment after its last page left every stack: no popper can still hold
 * a pointer into it.  The window is a few instructions, and segments are
 * released rarely.
 *
 * Retries: a pop gives up after POP_TRIES failed CASes (the caller then
 * takes a new page); a push, which must not give up, moves on to the next
 * shard after POP_TRIES failures there.  Between tries it backs off,
 * 2^k pause instructions (k <= 6).  Every CAS and every failed CAS is
 * counted: the retry rate is cas_retries / cas.
 * ------------------------------------------------------------------- */
#define POP_TRIES 8
#define TAG_BITS 22
#define PTR_MASK 0x0000ffffffffffc0ull

struct pool_stack {
	_Atomic uint64_t head;
	_Atomic uint64_t pushes, pops; /* pages */
	_Atomic uint64_t idle_ops;     /* pushes + pops at the purge thread's last look */
} __attribute__((aligned(64)));

static struct pool_stack stacks[POOL_NCLS][POOL_SHARDS];
static _Atomic uint64_t cas_ops, cas_retries, pop_giveups;
static _Atomic uint64_t readers __attribute__((aligned(64)));

uint64_t pool_tag_pack(struct slab *s, uint64_t tag)
{
	hak_assert(((uintptr_t)s & ~PTR_MASK) == 0);
	tag &= ((uint64_t)1 << TAG_BITS) - 1;
	return (uint64_t)(uintptr_t)s | (tag & 63) | ((tag >> 6) << 48);
}

struct slab *pool_tag_ptr(uint64_t v)
{
	return (struct slab *)(uintptr_t)(v & PTR_MASK);
}

uint64_t pool_tag_of(uint64_t v)
{
	return (v & 63) | ((v >> 48) << 6);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

static void backoff(unsigned k)
{
	unsigned n = 1u << (k < 6 ? k : 6);
	for (unsigned i = 0; i < n; i++)
		cpu_relax();
}

static struct pool_stack *stack_of(unsigned c, unsigned shard)
{
	hak_assert(c >= HAK_CLS_MID && c < HAK_CLS_LARGE && shard < POOL_SHARDS);
	return &stacks[c - HAK_CLS_MID][shard];
}

static void count_cas(uint64_t ops, uint64_t failed)
{
	atomic_fetch_add_explicit(&cas_ops, ops, memory_order_relaxed);
	if (failed)
		atomic_fetch_add_explicit(&cas_retries, failed, memory_order_relaxed);
}

/* Push the chain first..last (n pages, linked through snext; last->snext
 * is overwritten) with one CAS. */
void pool_stack_push(unsigned c, unsigned shard, struct slab *first, struct slab *last, uint32_t n)
{
	uint64_t failed = 0;
	for (;;) {
		struct pool_stack *st = stack_of(c, shard);
		uint64_t old = atomic_load_explicit(&st->head, memory_order_relaxed);
		for (unsigned k = 0; k < POP_TRIES; k++) {
			atomic_store_explicit(slab_snext(last), pool_tag_ptr(old), memory_order_relaxed);
			if (atomic_compare_exchange_weak_explicit(&st->head, &old,
								  pool_tag_pack(first, pool_tag_of(old) + 1),
								  memory_order_release, memory_order_relaxed)) {
				atomic_fetch_add_explicit(&st->pushes, n, memory_order_relaxed);
				count_cas(failed + 1, failed);
				return;
			}
			failed++;
			backoff(k);
		}
		shard = (shard + 1) % POOL_SHARDS;
	}
}

/* Detach the top page (whole: the whole stack) with one CAS; NULL when
 * empty or after POP_TRIES failed CASes. */
static struct slab *stack_detach(struct pool_stack *st, bool whole)
{
	uint64_t old = atomic_load_explicit(&st->head, memory_order_acquire), failed = 0;
	struct slab *s;
	for (unsigned k = 0;; k++) {
		s = pool_tag_ptr(old);
		if (s == NULL)
			break;
		/* a whole take reads no page before its CAS */
		struct slab *next = whole ? NULL : atomic_load_explicit(slab_snext(s), memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(&st->head, &old,
							  pool_tag_pack(next, pool_tag_of(old) + 1),
							  memory_order_acquire, memory_order_acquire))
			break;
		failed++;
		if (k + 1 >= POP_TRIES) {
			atomic_fetch_add_explicit(&pop_giveups, 1, memory_order_relaxed);
			s = NULL;
			break;
		}
		backoff(k);
	}
	count_cas(failed + (s != NULL), failed);
	return s;
}

struct slab *pool_stack_pop(unsigned c, unsigned shard)
{
	struct pool_stack *st = stack_of(c, shard);
	if (pool_tag_ptr(atomic_load_explicit(&st->head, memory_order_relaxed)) == NULL)
		return NULL; /* a racy peek: a miss only means a new page */
	/* counted as a reader from before the head is read until after the
	 * top's snext is: see pool_quiesce */
	atomic_fetch_add_explicit(&readers, 1, memory_order_seq_cst);
	struct slab *s = stack_detach(st, false);
	atomic_fetch_sub_explicit(&readers, 1, memory_order_seq_cst);
	if (s)
		atomic_fetch_add_explicit(&st->pops, 1, memory_order_relaxed);
	return s;
}

struct slab *pool_stack_take(unsigned c, unsigned shard)
{
	struct pool_stack *st = stack_of(c, shard);
	struct slab *s = stack_detach(st, true);
	uint64_t n = 0;
	for (struct slab *t = s; t; t = atomic_load_explicit(slab_snext(t), memory_order_relaxed))
		n++;
	if (n)
		atomic_fetch_add_explicit(&st->pops, n, memory_order_relaxed);
	return s;
}

void pool_quiesce(void)
{
	while (atomic_load_explicit(&readers, memory_order_seq_cst) != 0)
		sched_yield();
}

uint64_t pool_stack_len(unsigned c, unsigned shard)
{
	uint64_t n = 0;
	struct slab *s = pool_tag_ptr(atomic_load_explicit(&stack_of(c, shard)->head, memory_order_acquire));
	for (; s; s = atomic_load_explicit(slab_snext(s), memory_order_relaxed))
		n++;
	return n;
}

void pool_counts(struct pool_counters *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned c = 0; c < POOL_NCLS; c++)
		for (unsigned k = 0; k < POOL_SHARDS; k++) {
			out->pushes += atomic_load_explicit(&stacks[c][k].pushes, memory_order_relaxed);
			out->pops += atomic_load_explicit(&stacks[c][k].pops, memory_order_relaxed);
		}
	out->pages = out->pushes - out->pops;
	out->cas = atomic_load_explicit(&cas_ops, memory_order_relaxed);
	out->cas_retries = atomic_load_explicit(&cas_retries, memory_order_relaxed);
	out->pop_giveups = atomic_load_explicit(&pop_giveups, memory_order_relaxed);
}

/* ---------------------------------------------------------------------
 * Shards: the segments pages are cut from.  avail lists the segments with
 * a free slot; a segment with none is on no list (in_full = 1).
 * ------------------------------------------------------------------- */
/* gen: a child of fork that finds the lock held by a thread that is gone
 * empties avail and starts a new generation (pool_fork_child); a segment
 * of an older generation (seg->shard_gen) is then on no list the shard
 * knows, and its slots are never given back in that process. */
/* ndirty: free slots of the shard's segments whose pages are still there
 * (seg->dirty bits), written under the lock, read without it by heaps of
 * other shards that look for such a slot (page_new). */
struct pool_shard {
	struct hak_lock lock;
	struct segment *avail;
	uint32_t gen;
	_Atomic uint32_t ndirty;
} __attribute__((aligned(64)));

static struct pool_shard shards[POOL_SHARDS] = {
	[0 ... POOL_SHARDS - 1] = { .lock = HAK_LOCK_INIT },
};

static segmask_t mid_full_mask(void)
{
	return mask_low(HAK_TIER_NSLABS(HAK_MID_SHIFT));
}

static void ndirty_add(struct pool_shard *sh, int32_t n)
{
	atomic_store_explicit(&sh->ndirty, atomic_load_explicit(&sh->ndirty, memory_order_relaxed) + (uint32_t)n,
			      memory_order_relaxed);
}

/* A segment of sh (lock held) with a free slot whose pages are still
 * there, or NULL. */
static struct segment *shard_dirty_seg(struct pool_shard *sh)
{
	if (atomic_load_explicit(&sh->ndirty, memory_order_relaxed) == 0)
		return NULL;
	for (struct segment *seg = sh->avail; seg; seg = seg->next)
		if (seg->dirty)
			return seg;
	return NULL;
}

/* Take a free slot of seg (on sh's avail list, lock held), one whose
 * pages are still there first, and unlock: a page of class c for h. */
static struct slab *slot_take(struct heap *h, struct pool_shard *sh, struct segment *seg, unsigned c)
{
	segmask_t free = ~seg->used_mask & mid_full_mask();
	segmask_t pick = (free & seg->dirty) ? free & seg->dirty : free;
	unsigned i = mask_first(pick);
	bool warm = (seg->dirty & mask_bit(i)) != 0;
	seg->used_mask |= mask_bit(i);
	if (warm) {
		seg->dirty &= ~mask_bit(i); /* reused before its purge: no purge */
		ndirty_add(sh, -1);
	}
	if (seg->used_mask == mid_full_mask()) {
		seglist_remove(&sh->avail, seg);
		seg->in_full = 1;
	}
	hak_unlock(&sh->lock);
	CTR_INC(h, slabs_new);
	DCTR_INC(h, refill_new_slab);
	struct slab *s = slab_init(h, seg, i, c);
	s->warm = warm;
	return s;
}

/* A page of class c for h.  A free slot whose pages are still there
 * first: of h's shard, else of another shard (heaps come and go, and each
 * new one gets the next shard: the slots an exited thread's pages left
 * in its shard would otherwise wait a purge delay while the next thread
 * faults in new memory beside them).  Else any free slot of h's shard,
 * else a new segment for it. */
static struct slab *page_new(struct heap *h, unsigned c)
{
	struct pool_shard *sh = &shards[h->shard];
	struct segment *seg;
	hak_lock(&sh->lock);
	if ((seg = shard_dirty_seg(sh)) != NULL)
		return slot_take(h, sh, seg, c);
	hak_unlock(&sh->lock);
	for (unsigned k = 1; k < POOL_SHARDS; k++) {
		struct pool_shard *o = &shards[(h->shard + k) % POOL_SHARDS];
		if (atomic_load_explicit(&o->ndirty, memory_order_relaxed) == 0)
			continue;
		hak_lock(&o->lock);
		if ((seg = shard_dirty_seg(o)) != NULL)
			return slot_take(h, o, seg, c);
		hak_unlock(&o->lock);
	}
	hak_lock(&sh->lock);
	seg = sh->avail;
	if (seg == NULL) {
		hak_unlock(&sh->lock);
		seg = segment_alloc(NULL, TIER_MID, HAK_MID_SHIFT);
		if (seg == NULL)
			return NULL;
		DCTR_INC(h, refill_new_segment);
		seg->shard = (uint8_t)h->shard;
		if (seg->dirty) /* a cached segment's pages (segment_alloc) */
			purge_note(&h->next_purge, seg->dirty_since);
		hak_lock(&sh->lock);
		seg->shard_gen = sh->gen;
		seglist_push(&sh->avail, seg);
		ndirty_add(sh, (int)mask_count(seg->dirty));
	}
	return slot_take(h, sh, seg, c);
}

/* The pages of free slot i of seg go back to the OS. */
static void slot_purge(struct segment *seg, unsigned i)
{
	size_t len;
	uint8_t *a = slab_area(seg, i, &len);
	purge_pages(a, len);
}

void pool_page_free(struct heap *h, struct segment *seg, struct slab *s)
{
	hak_assert(s->used == 0 && seg->tier == TIER_MID);
	size_t len, touched = (size_t)s->carved * slab_bsize(s);
	uint8_t *a = slab_area(seg, s->index, &len);
	if (s->warm)
		touched = len;
	segmask_t bit = mask_bit(s->index);
	bool now = h->purge_now || purge_delay() == 0;
	s->state = SLAB_FREE;
	s->free = NULL;
	s->nfree = s->carved = 0;
	atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
	/* Now: before the slot can be taken again.  Else the slot is marked
	 * dirty: a page taken from it within the purge delay reuses the
	 * resident memory, pool_purge gives back the rest.  What the page
	 * touched: its carved blocks, or the whole slot when it is warm (a
	 * page taken from a dirty slot, or cut again for another class, has
	 * memory there beyond them: such a slot marked clean would stay
	 * resident, out of every heap's reach, until its segment goes). */
	s->warm = 0;
	if (now && touched)
		purge_pages(a, (touched + HAK_PAGE - 1) & ~(HAK_PAGE - 1));
	struct pool_shard *sh = &shards[seg->shard];
	hak_lock(&sh->lock);
	if (unlikely(seg->shard_gen != sh->gen)) {
		/* the shard was reset in this child of fork: leave it be */
		hak_unlock(&sh->lock);
		return;
	}
	seg->used_mask &= ~bit;
	if (!now && touched) {
		uint64_t t = os_now_ms();
		segment_dirty_mark(seg, bit, t);
		ndirty_add(sh, 1);
		/* h's sweeps purge its shard; this slot may be another's */
		if (seg->shard == h->shard && h->next_purge == 0)
			purge_note(&h->next_purge, t);
	}
	if (seg->in_full) {
		seg->in_full = 0;
		seglist_push(&sh->avail, seg);
	}
	bool release = seg->used_mask == 0;
	if (release) {
		seglist_remove(&sh->avail, seg);
		/* dirty slots left: the segment cache purges it after a delay */
		ndirty_add(sh, -(int)mask_count(seg->dirty));
		seg->dirty = 0;
	}
	hak_unlock(&sh->lock);
	if (release) {
		/* a popper of a shared stack may still be reading one of its
		 * pages */
		pool_quiesce();
		segment_release(seg);
	}
}

bool pool_purge(unsigned shard, bool all, bool force)
{
	uint64_t now = os_now_ms();
	bool pending = false;
	for (unsigned k = all ? 0 : shard; k < (all ? POOL_SHARDS : shard + 1); k++) {
		struct pool_shard *sh = &shards[k];
		/* under the lock, so that no page is cut from a slot while its
		 * memory goes: madvise of a few pages, rarely */
		hak_lock(&sh->lock);
		for (struct segment *seg = sh->avail; seg; seg = seg->next) {
			if (seg->dirty == 0)
				continue;
			/* each free slot waits its own delay (types.h, dirty_at) */
			segmask_t due = segment_dirty_due(seg, now, force, NULL);
			if (due != seg->dirty)
				pending = true;
			for (segmask_t m = due; m; m &= m - 1)
				slot_purge(seg, mask_first(m));
			ndirty_add(sh, -(int)mask_count(due));
			seg->dirty &= ~due;
		}
		hak_unlock(&sh->lock);
	}
	return pending;
}

/* Only the forking thread lives on in the child: no one else is popping. */
void pool_fork_child(void)
{
	atomic_store_explicit(&readers, 0, memory_order_relaxed);
	for (unsigned k = 0; k < POOL_SHARDS; k++) {
		if (hak_lock_after_fork(&shards[k].lock) < 0) {
			shards[k].avail = NULL;
			atomic_store_explicit(&shards[k].ndirty, 0, memory_order_relaxed);
			shards[k].gen++;
		}
	}
}

/* ---------------------------------------------------------------------
 * A heap's mid pages: its refill, pages that empty, the sweep, exit.
 * ------------------------------------------------------------------- */

static uint32_t refill_pages(void)
{
	long b = KNOB(pool_refill_batch), cap = KNOB(pool_cap);
	return (uint32_t)(b < cap ? b : cap);
}

/* A page popped from a stack becomes h's: drain what was freed into it. */
static void page_adopt(struct heap *h, struct slab *s)
{
	atomic_store_explicit(&s->owner, h, memory_order_release); /* slab_remote_push */
	slab_drain(s);
	s->empty_seen = 0;
	s->next = s->prev = NULL;
}

static bool page_has_room(const struct slab *s)
{
	return s->nfree || s->carved < s->capacity;
}

/* s (no block out) leaves h: off its lists, its slot back. */
static void page_retire(struct heap *h, struct segment *seg, struct slab *s)
{
	hak_assert(s->used == 0);
	VALIDATE(s);
	if (s->state == SLAB_EMPTY) {
		slist_remove(&h->mid_empty, NULL, s);
		h->nmid_empty--;
	} else {
		slab_unlink(h, s);
	}
	CTR_INC(h, slabs_retired);
	pool_page_free(h, seg, s); /* s may be reused from here on */
}

/* A mid refill needs a page from the pool: if h gave an empty page back
 * within a purge delay, it would have served here; keep twice as many. */
static void mid_keep_grow(struct heap *h)
{
	if (h->mid_returned_ms == 0 || h->mid_keep >= KNOB(mid_keep_max))
		return;
	if (!purge_old(h->mid_returned_ms, os_now_ms(), false))
		h->mid_keep *= 2;
	h->mid_returned_ms = 0;
}

/* Pop pages of class c from the shared stacks (h's shard first) onto h,
 * up to 'want' with room; the first becomes *first, the others go on h's
 * partial list.  A page without room goes on h's full list and does not
 * count.  Returns how many with room. */
static uint32_t refill_pop(struct heap *h, unsigned c, uint32_t want, struct slab **first)
{
	uint32_t got = 0, pops = 0;
	struct slab *s;
	for (unsigned k = 0; k < POOL_SHARDS && got < want && pops < 2 * want; k++) {
		unsigned shard = (h->shard + k) % POOL_SHARDS;
		while (got < want && pops < 2 * want && (s = pool_stack_pop(c, shard)) != NULL) {
			pops++;
			page_adopt(h, s);
			if (!page_has_room(s)) {
				slab_file(h, s); /* full: waits for remote frees */
				continue;
			}
			if (*first == NULL)
				*first = s;
			else
				slab_file(h, s);
			got++;
		}
	}
	return got;
}

/* Called when h has no page of class c with room (no current page, an
 * empty partial list).  Pages of class c with room that wait on the
 * shared stacks first: their free blocks are memory already there, and a
 * page taken instead (even an empty one of h's own, which stays h's)
 * would make the class hold more pages than it needs.  Then an empty page
 * of h's own (cut again for c when it served another class); else up to
 * min(batch, cap) pages, which keeps h's pages with room within the cap:
 * the shared stacks (own shard, then the others), then new pages. */
/* Blocks other threads freed into h's full pages of class c, wherever
 * those pages sit on the list (the refill's scan looks at the oldest
 * few): drained, the pages with free blocks to the partial list.  Only
 * when a remote free marked the class (heap.mid_remote). */
static bool pool_collect_remote(struct heap *h, unsigned c)
{
	uint32_t bit = 1u << (c - HAK_CLS_MID);
	if (!(atomic_load_explicit(&h->mid_remote, memory_order_relaxed) & bit))
		return false;
	atomic_fetch_and_explicit(&h->mid_remote, ~bit, memory_order_relaxed);
	bool any = false;
	for (struct slab *s = h->full_head[c], *next; s; s = next) {
		next = s->next;
		any |= slab_take_remote(h, s);
	}
	return any;
}

static void ring_trim(struct heap *h, unsigned c, uint32_t keep);

/* An empty page of h (on mid_empty) becomes class c's current page. */
static void empty_take(struct heap *h, unsigned c, struct slab *s)
{
	slist_remove(&h->mid_empty, NULL, s);
	h->nmid_empty--;
	if (s->cls != c) {
		slab_init(h, seg_of_slab(s), s->index, c);
		s->warm = 1; /* the old class's blocks were there */
	}
	DCTR_INC(h, refill_partial);
	s->state = SLAB_CURRENT;
	h->cur[c] = s;
}

/* A ring the learner grew holds blocks beyond its class's default cap: a
 * loan, taken while the class's batches come and go.  Before a refill of
 * another class takes a new page, the loans go back to their pages (the
 * rings keep their caps, and fill again if their class comes back), and
 * the rest of those rings with them: what a ring trimmed to its default
 * keeps is its oldest blocks, one in each of as many pages, which then
 * cannot empty (bench/phase at one thread: 18 pages more than the
 * defaults held when its phase 3 began; check_pool
 * test_loans_back_scattered).  Then
 * the pages that empty serve the refill: a program whose demand moved to
 * other classes reuses the memory of the old ones, as it does with the
 * default caps, instead of adding to it before the learner's next window
 * sees the change.  Returns whether h has an empty page now. */
static bool pool_return_loans(struct heap *h, unsigned c)
{
	uint32_t grown = h->mid_grown & ~(1u << (c - HAK_CLS_MID));
	if (grown == 0)
		return false;
	int sweeping = h->sweeping;
	h->sweeping = 1; /* as in a sweep (ring_trim, heap.sweeping) */
	while (grown) {
		unsigned k = HAK_CLS_MID + (unsigned)__builtin_ctz(grown);
		grown &= grown - 1;
		uint32_t home = pool_default_cap(k);
		if (h->bins[k].count <= home)
			continue;
		ring_trim(h, k, 0);
		CTR_INC(h, pool_loans_returned);
	}
	h->sweeping = sweeping;
	return h->mid_empty != NULL;
}

int pool_refill(struct heap *h, unsigned c)
{
	struct slab *s, *first = NULL;
	uint32_t want, got;
	hak_assert(h->cur[c] == NULL && h->partial[c] == NULL);
	if (pool_collect_remote(h, c))
		return REFILL_OWN;
	if ((s = h->mid_empty) != NULL) {
		if (refill_pop(h, c, 1, &first)) {
			first->state = SLAB_CURRENT;
			h->cur[c] = first;
			CTR_INC(h, pool_page_refills);
			CTR_INC(h, pool_pages_taken);
			return REFILL_NEW;
		}
		empty_take(h, c, s);
		return REFILL_OWN;
	}
	mid_keep_grow(h);
	want = refill_pages();
	got = refill_pop(h, c, want, &first);
	if (first == NULL && pool_return_loans(h, c)) {
		empty_take(h, c, h->mid_empty);
		return REFILL_OWN;
	}
	/* new pages only when the stacks had none with room: beside one
	 * that has, a new page would only add to the pages the class holds
	 * half used */
	if (got == 0) {
		while (got < want) {
			s = page_new(h, c);
			if (s == NULL)
				break;
			if (first == NULL)
				first = s;
			else
				slab_file(h, s);
			got++;
		}
	}
	if (first == NULL)
		return REFILL_FAILED;
	CTR_INC(h, pool_page_refills);
	CTR_ADD(h, pool_pages_taken, got);
	first->state = SLAB_CURRENT;
	h->cur[c] = first;
	return REFILL_NEW;
}

/* s has no block out and is not current: it goes on the heap's list of
 * empty pages, where a refill of any mid class can take it, and the sweep
 * retires it if it is still there two sweeps later.  Beyond mid_keep
 * pages it goes back, with its memory, now: a thread that stops calling
 * the allocator keeps at most mid_keep of them. */
static int page_emptied(struct heap *h, struct segment *seg, struct slab *s)
{
	if (purge_delay() == 0) {
		page_retire(h, seg, s);
		return SETTLE_NONE;
	}
	if (h->nmid_empty >= h->mid_keep) {
		int keep = h->purge_now;
		h->purge_now = 1;
		page_retire(h, seg, s);
		h->purge_now = keep;
		h->mid_returned_ms = os_now_ms();
		return SETTLE_NONE;
	}
	slab_unlink(h, s);
	s->state = SLAB_EMPTY;
	slist_push(&h->mid_empty, s);
	if (++h->nmid_empty > h->mid_high)
		h->mid_high = h->nmid_empty;
	s->empty_seen = 0;
	return SETTLE_SWEEP;
}

int pool_settle(struct heap *h, struct segment *seg, struct slab *s)
{
	if (s->used == 0 && s->state != SLAB_CURRENT)
		return page_emptied(h, seg, s);
	if (s->state == SLAB_FULL) {
		slab_full_to_partial(h, s);
		/* the class may now hold more pages than its cap: a sweep trims */
		return SETTLE_NOTE;
	}
	return SETTLE_NONE;
}

/* A block of h's ring goes back to its page, within a sweep (no settle
 * that could start another). */
static void ring_block_back(struct heap *h, void *p)
{
	struct segment *seg = segmap_lookup(p);
	struct slab *s = slab_of(seg, p);
	hak_assert(atomic_load_explicit(&s->owner, memory_order_relaxed) == h);
	blk_set_next(p, s->free);
	s->free = p;
	s->nfree++;
	if (--s->used == 0 && s->state != SLAB_CURRENT)
		page_emptied(h, seg, s);
	else if (s->state == SLAB_FULL)
		slab_full_to_partial(h, s);
}

/* h's ring of class c keeps at most keep blocks; the others go back to
 * their pages, within a sweep (ring_block_back). */
static void ring_trim(struct heap *h, unsigned c, uint32_t keep)
{
	struct tbin *b = &h->bins[c];
	while (b->count > keep) {
		void *p = b->head;
		b->head = blk_next(p);
		b->count--;
		ring_block_back(h, p);
	}
}

/* Leave s (owner h, on no list) for the shared stacks: chain it. */
static void chain_add(struct slab *s, struct slab **first, struct slab **last, uint32_t *n)
{
	s->state = SLAB_SHARED;
	s->next = s->prev = NULL;
	atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
	atomic_store_explicit(slab_snext(s), *first, memory_order_relaxed);
	if (*first == NULL)
		*last = s;
	*first = s;
	(*n)++;
}

/* Pages of class c with room beyond the cap (the current page counts
 * first): an empty one goes back, one with blocks out goes to the shared
 * stack of h's shard, where another heap can finish it.  Invariant kept:
 * every block in h's ring lies in a page h owns. */
void pool_trim(struct heap *h, unsigned c, uint32_t keep)
{
	uint32_t n = h->cur[c] ? 1 : 0, pushed = 0;
	struct slab *s, *next, *first = NULL, *last = NULL;
	for (s = h->partial[c]; s && n <= keep; s = s->next)
		n++;
	if (n <= keep)
		return;
	/* No page leaves with blocks in h's ring: they go back to their
	 * pages first (a few dozen at most, once per purge delay). */
	ring_trim(h, c, 0);
	n = h->cur[c] ? 1 : 0;
	for (s = h->partial[c]; s; s = next) {
		next = s->next;
		if (++n <= keep)
			continue;
		if (s->used == 0) {
			page_retire(h, seg_of_slab(s), s);
			continue;
		}
		slist_remove(&h->partial[c], NULL, s);
		chain_add(s, &first, &last, &pushed);
	}
	if (first)
		pool_stack_push(c, h->shard, first, last, pushed);
}

/* Pages with room class c keeps at a sweep: HAKMEM_POOL_CAP, and beyond
 * it as many pages as the blocks it took from its pages since the last
 * sweep fill.  A class in use cycles through its pages: trimming them
 * would only make it take others (its own frees then turn remote) while
 * its holes wait on a stack, or another heap takes them and the class
 * takes new memory; the pages of a class that stopped serving go to the
 * stacks, where other heaps finish them.  A forced sweep (hak_collect, a
 * thread's flush) keeps the cap only. */
static uint32_t trim_keep(struct heap *h, unsigned c, bool force)
{
	uint64_t blocks = h->ctr.cls[c][CC_BLOCKS], *seen = &h->mid_swept[c - HAK_CLS_MID];
	uint64_t took = blocks - *seen, keep = (uint64_t)KNOB(pool_cap);
	*seen = blocks;
	if (!force)
		keep += took / (((size_t)1 << HAK_MID_SHIFT) / ace_class_size[c]);
	return keep > UINT32_MAX ? UINT32_MAX : (uint32_t)keep;
}

/* The delayed work of h's mid pages: trim every class to its cap, retire
 * the empty pages two sweeps found (on a partial list or on the list of
 * empty pages), let the reserve of empty pages shrink to twice what the
 * last period needed, and sweep h's shard: its shared stacks and its free
 * page slots. */
void pool_sweep(struct heap *h, uint64_t now, bool force, uint64_t *next)
{
	for (unsigned c = HAK_CLS_MID; c < HAK_CLS_LARGE; c++) {
		uint32_t keep = trim_keep(h, c, force);
		if (!h->partial[c])
			continue;
		pool_trim(h, c, keep);
		for (struct slab *s = h->partial[c], *snext; s; s = snext) {
			snext = s->next;
			if (s->used != 0)
				s->empty_seen = 0;
			else if (purge_second_look(&s->empty_seen, force))
				page_retire(h, seg_of_slab(s), s);
			else
				purge_note(next, now);
		}
	}
	uint32_t min = (uint32_t)KNOB(mid_keep_min);
	if (h->mid_keep > 2 * h->mid_high)
		h->mid_keep = 2 * h->mid_high > min ? 2 * h->mid_high : min;
	h->mid_high = h->nmid_empty;
	for (struct slab *s = h->mid_empty, *snext; s; s = snext) {
		snext = s->next;
		if (purge_second_look(&s->empty_seen, force))
			page_retire(h, seg_of_slab(s), s);
		else
			purge_note(next, now);
	}
	/* the shared stacks and free page slots of h's shard: after the
	 * retires above, whose slots wait there for their purge */
	pool_collect(h, h->shard, false);
	if (pool_purge(h->shard, false, force && h->purge_now))
		purge_note(next, now);
}

/* The exit flush, after the rings went back: drain the pages of h's mid
 * classes; empty ones go back. */
void pool_flush(struct heap *h)
{
	/* every full page is drained below: the marks are taken, as in
	 * pool_collect_remote (a remote free from here on marks again) */
	atomic_store_explicit(&h->mid_remote, 0, memory_order_relaxed);
	for (unsigned c = HAK_CLS_MID; c < HAK_CLS_LARGE; c++) {
		struct slab *s, *next;
		for (s = h->full_head[c]; s; s = next) {
			next = s->next;
			slab_drain(s);
			if (s->used == 0)
				page_retire(h, seg_of_slab(s), s);
			else if (s->nfree)
				slab_full_to_partial(h, s);
		}
		for (s = h->partial[c]; s; s = next) {
			next = s->next;
			slab_drain(s);
			if (s->used == 0)
				page_retire(h, seg_of_slab(s), s);
		}
	}
}

/* Every page on h's list of empty pages goes back (the idle reclaim,
 * heap_reclaim_idle: they waited a purge delay). */
void pool_empty_retire(struct heap *h)
{
	while (h->mid_empty)
		page_retire(h, seg_of_slab(h->mid_empty), h->mid_empty);
}

/* Thread exit, after the flush: every mid page left holds blocks still
 * out; each goes to the shared stack of its class. */
void pool_exit(struct heap *h)
{
	for (unsigned c = HAK_CLS_MID; c < HAK_CLS_LARGE; c++) {
		struct slab *lists[3] = { h->cur[c], h->partial[c], h->full_head[c] };
		struct slab *first = NULL, *last = NULL;
		uint32_t n = 0;
		if (h->cur[c])
			h->cur[c]->next = NULL; /* the current page is on no list */
		h->cur[c] = h->partial[c] = h->full_head[c] = h->full_tail[c] = NULL;
		for (int l = 0; l < 3; l++) {
			struct slab *s = lists[l], *next;
			for (; s; s = next) {
				next = s->next;
				chain_add(s, &first, &last, &n);
			}
		}
		if (first)
			pool_stack_push(c, h->shard, first, last, n);
	}
}

/* Take the stack of class c and shard k whole, drain its pages, give
 * back the empty ones and push the rest back in one CAS.  Pages are on no
 * stack meanwhile: a concurrent refill finds fewer and takes new ones. */
static void collect_stack(struct heap *h, unsigned c, unsigned k)
{
	struct pool_stack *st = stack_of(c, k);
	if (pool_tag_ptr(atomic_load_explicit(&st->head, memory_order_relaxed)) == NULL)
		return;
	struct slab *s = pool_stack_take(c, k), *next, *first = NULL, *last = NULL;
	uint32_t n = 0;
	for (; s; s = next) {
		next = atomic_load_explicit(slab_snext(s), memory_order_relaxed);
		slab_drain(s);
		if (s->used == 0) {
			CTR_INC(h, slabs_retired);
			pool_page_free(h, seg_of_slab(s), s);
		} else {
			chain_add(s, &first, &last, &n);
		}
	}
	if (first)
		pool_stack_push(c, k, first, last, n);
}

void pool_collect(struct heap *h, unsigned shard, bool all)
{
	for (unsigned c = HAK_CLS_MID; c < HAK_CLS_LARGE; c++)
		for (unsigned k = all ? 0 : shard; k < (all ? POOL_SHARDS : shard + 1); k++)
			collect_stack(h, c, k);
}

static uint64_t stack_ops(struct pool_stack *st)
{
	return atomic_load_explicit(&st->pushes, memory_order_relaxed) +
	       atomic_load_explicit(&st->pops, memory_order_relaxed);
}

/* The purge thread's pass (one thread: it alone writes idle_ops).  A
 * stack that threads pushed to or popped from since the last pass is in
 * use: its pages are about to be taken, and a collect would only make a
 * refill miss them and take new ones.  The others are collected. */
void pool_collect_idle(struct heap *h)
{
	for (unsigned c = HAK_CLS_MID; c < HAK_CLS_LARGE; c++)
		for (unsigned k = 0; k < POOL_SHARDS; k++) {
			struct pool_stack *st = stack_of(c, k);
			uint64_t ops = stack_ops(st);
			if (ops != atomic_load_explicit(&st->idle_ops, memory_order_relaxed)) {
				atomic_store_explicit(&st->idle_ops, ops, memory_order_relaxed);
				continue;
			}
			collect_stack(h, c, k);
			atomic_store_explicit(&st->idle_ops, stack_ops(st), memory_order_relaxed);
		}
}

void pool_collect_all(struct heap *h)
{
	pool_collect(h, 0, true);
	pool_purge(0, true, true);
}

/* A thread exit hands its pages to the stacks (pool_exit).  The pages on
 * the stacks that other threads emptied meanwhile, and the free slots not
 * yet purged, are cleaned up by an exit too, but at most once per purge
 * delay (programs that start and end threads all the time, like larson,
 * would otherwise purge and fault in the same pages again and again), and
 * always by the exit that leaves at most one thread heap: once the
 * workers of a program are gone, its memory goes back without waiting for
 * a later call into the allocator.  With 'later' (the purge thread runs,
 * and does that a delay later) only the exiting thread's shard, and only
 * what waited a delay. */
void pool_exit_cleanup(struct heap *h, bool last, bool later)
{
	static _Atomic uint64_t last_full;
	uint64_t now = os_now_ms(), prev = atomic_load_explicit(&last_full, memory_order_relaxed);
	bool full = !later && (last || (purge_old(prev, now, false) &&
					atomic_compare_exchange_strong(&last_full, &prev, now)));
	if (full) {
		h->purge_now = 1;
		pool_collect(h, 0, true);
		pool_purge(0, true, true);
		h->purge_now = 0;
		segment_cache_collect(last);
	} else {
		pool_collect(h, h->shard, false);
		pool_purge(h->shard, false, false);
	}
}
