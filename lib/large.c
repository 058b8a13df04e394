/* large.c - the large tier: blocks of 32 KiB to 1 MiB (classes 40..59).
 *
 * A large segment (2 MiB, owned by a heap) is cut into 128 slots of 16
 * KiB (64 of 32 KiB in the secure build, whose header fills 16), and
 * every large block is a run of consecutive slots: as many as its class
 * needs (40 KiB: 3, 64 KiB: 4, 128 KiB: 8, ..., 1 MiB: 64; one more when
 * the run starts at slot 0, after the segment header).  So a run is less
 * than 16 KiB longer than its class: a 40 KiB block that reuses a freed
 * 96 KiB run takes 3 of its 6 slots, and the other 3, still resident,
 * serve the next run; in the 64 KiB slots of before it kept 24 KiB the
 * larger block had touched (bench/rounds, where blocks of 32-100 KiB pass
 * between threads that exit: 1.5 MiB of its peak at 1 thread).  Taking
 * or freeing a run writes its first slot only (types.h).  The run is a slab
 * of one block, handed out through the slab engine, with a per-thread
 * cache per class in front (HAKMEM_LARGE_CACHE_CAP blocks, 0 by default).
 * So the tier's free memory is not kept per class:
 *   - a freed block (past the cache) retires its slab at once, and its
 *     slots serve the next block of any class: freed runs coalesce
 *     with their free neighbours in the segment's used_mask, where a new
 *     run is the first k free slots in a row (slab_new_run);
 *   - a new run takes free slots whose pages are still resident first,
 *     in the heap's segments and then in those exited threads left, before
 *     slots whose pages went back or were never touched; the heap's
 *     segments are looked at from a table of their own (heap.lt_seg),
 *     which keeps a bound on each one's longest run of such slots, so that
 *     the look reads only the headers of segments that may have the run
 *     (slab_new_run);
 *   - free slots keep their pages (a block that comes back soon finds them
 *     resident) until the heap's sweep (slab_segments_sweep, purge.c)
 *     finds they waited a purge delay, each since its own free
 *     (segment.dirty_at), then the pages go to the kernel; a
 *     segment whose every slot is free stays that long too, then goes to
 *     the segment cache, its pages given back (segment_release_idle);
 *     the sweep runs on the thread's slow paths, a huge block's realloc
 *     and free too (malloc.c, huge_sweep_heap); a heap keeps at most
 *     dirty_keep bytes of such pages (large_keep_grow), beyond which a
 *     freed run's pages go now;
 *   - ACE's bounded round-up: before a class takes a new run it takes a
 *     cached block of a larger class within the large tier's W_MAX (ace.c),
 *     which keeps its own class (its free goes back to its slab);
 *   - blocks other threads freed wait on their slab's remote list until
 *     the owner's refill of that class scans its full slabs, or its sweep
 *     drains them all.
 * A run's slack pages past its block are never touched by the block, but
 * pages an earlier, larger block touched stay resident in it: less than
 * one slot.
 */
#include "internal.h"

void large_init(void)
{
}

uint32_t large_default_cap(unsigned c)
{
	(void)c;
	return (uint32_t)KNOB(large_cache_cap);
}

/* Slots a block of class c takes, in a run that starts at slot 0 (after
 * the header) or elsewhere. */
static unsigned large_slots(unsigned c, bool at0)
{
	size_t need = ace_class_size[c] + (at0 ? HAK_SEG_META : 0);
	return (unsigned)((need + ((size_t)1 << HAK_LARGE_SHIFT) - 1) >> HAK_LARGE_SHIFT);
}

/* Take a cached block of a larger class whose size is within W_MAX of
 * c's.  The block keeps its own class: its free goes back to its slab. */
static void *large_borrow(struct heap *h, unsigned c)
{
	uint64_t limit = ace_wmax_limit(TIER_LARGE, ace_class_size[c]);
	for (unsigned k = c + 1; k < HAK_NCLS && ace_class_size[k] <= limit; k++) {
		struct tbin *b = &h->bins[k];
		void *p = b->head;
		if (p == NULL)
			continue;
		b->head = blk_next(p);
		b->count--;
		DCTR_INC(h, refill_borrow);
		DCTR_ADD(h, class_bytes, ace_class_size[k] - ace_class_size[c]);
		return p;
	}
	return NULL;
}

/* The free dirty slots a heap keeps (heap.dirty_keep, slab_slot_free):
 * from LARGE_KEEP_MIN, doubled when the heap needs a new run within a
 * purge delay of giving pages back beyond it (it would have served
 * there), and lowered by each sweep to twice the most it held since the
 * last one.  A thread that stops calling the allocator keeps at most
 * that much: freeing 500 MiB of large blocks and sleeping leaves 8 MiB
 * resident, while a program whose large working set swings by 100 MiB
 * keeps what it reuses. */
#define LARGE_KEEP_MIN ((uint64_t)8 << 20)
#define LARGE_KEEP_MAX ((uint64_t)1 << 30)

static void large_keep_grow(struct heap *h)
{
	if (h->dirty_keep[TIER_LARGE] == 0)
		h->dirty_keep[TIER_LARGE] = LARGE_KEEP_MIN;
	purge_keep_grow(&h->dirty_keep[TIER_LARGE], &h->dirty_purged_ms[TIER_LARGE], LARGE_KEEP_MAX);
}

/* Runs of class c that other threads freed blocks into.  A large block
 * is a run of its own, so the full list holds every live block of the
 * class: a walk over all of it on every refill would cost a program that
 * keeps thousands of them and frees others from another thread
 * thousands of cold headers per malloc.  So: only while a remote free
 * has marked the class (heap.large_remote; set when a run's remote list
 * was empty), up to LARGE_SCAN_MAX full runs from the front, each taken
 * back if it has remote frees, else moved to the back, so that the next
 * refills go on round the list.  The sweep, which drains every full run
 * (large_drain_full), clears the marks first. */
#define LARGE_SCAN_MAX 8
_Static_assert(HAK_CLS_ALIGNED - HAK_CLS_LARGE <= 32, "heap.large_remote: a bit per large class");
static bool large_collect_remote(struct heap *h, unsigned c)
{
	uint32_t bit = 1u << (c - HAK_CLS_LARGE);
	if (!(atomic_load_explicit(&h->large_remote, memory_order_relaxed) & bit))
		return false;
	bool any = false;
	for (int k = 0; k < LARGE_SCAN_MAX; k++) {
		struct slab *s = h->full_head[c];
		if (s == NULL)
			break;
		if (slab_take_remote(h, s)) { /* now on the partial list */
			any = true;
			continue;
		}
		slist_remove(&h->full_head[c], &h->full_tail[c], s);
		slab_full_append(h, s);
		if (h->full_head[c] == s)
			break; /* the only one */
	}
	return any;
}

int large_refill(struct heap *h, unsigned c, void **block)
{
	struct segment *seg;
	bool fresh;
	unsigned k = large_slots(c, false), k0 = large_slots(c, true);
	*block = NULL;
	/* what other threads gave back first: memory already there */
	if (large_collect_remote(h, c))
		return REFILL_OWN;
	if ((*block = large_borrow(h, c)) != NULL)
		return REFILL_OWN;
	/* a run of h's free slots whose pages are still there; else what
	 * exited threads left (its free runs, and its blocks freed since),
	 * one segment per try, before any slot of h's whose pages went back
	 * or were never there; else a new segment */
	large_keep_grow(h);
	struct slab *s = slab_new_run(h, TIER_LARGE, HAK_LARGE_SHIFT, c, k, k0, SLAB_RUN_RESIDENT, &fresh);
	if (s == NULL && (seg = segment_adopt_refill(TIER_LARGE)) != NULL) {
		DCTR_INC(h, refill_adopt);
		slab_adopt_segment(h, seg);
		return REFILL_OWN;
	}
	if (s == NULL)
		s = slab_new_run(h, TIER_LARGE, HAK_LARGE_SHIFT, c, k, k0, SLAB_RUN_MAP, &fresh);
	if (s == NULL)
		return REFILL_FAILED;
	hak_assert(s->capacity >= 1);
	h->cur[c] = s;
	return REFILL_NEW;
}

bool large_sweep_wanted(struct heap *h)
{
	if (h->next_purge != 0)
		return true;
	h->next_purge = os_now_ms() + purge_delay();
	return false;
}

/* A slab whose block came back: its run goes back to the segment now
 * (its pages wait for the sweep). */
int large_settle(struct heap *h, struct segment *seg, struct slab *s)
{
	if (s->used == 0) {
		slab_retire(h, seg, s);
		return SETTLE_NONE;
	}
	return slab_settle_owned(h, seg, s);
}

/* Full slabs of class c whose blocks other threads freed: drained, and
 * retired when empty. */
static void large_drain_full(struct heap *h, unsigned c)
{
	struct slab *s, *snext;
	for (s = h->full_head[c]; s; s = snext) {
		snext = s->next;
		if (atomic_load_explicit(&s->remote, memory_order_relaxed) == NULL)
			continue;
		slab_drain(s);
		if (s->used == 0)
			slab_retire(h, seg_of_slab(s), s);
	}
}

void large_sweep(struct heap *h, uint64_t now, bool force, uint64_t *next)
{
	/* before the walk: a remote free into a run already walked marks
	 * again */
	atomic_store_explicit(&h->large_remote, 0, memory_order_relaxed);
	for (unsigned c = HAK_CLS_LARGE; c < HAK_NCLS; c++) {
		large_drain_full(h, c);
		if (h->partial[c])
			slab_sweep_empty(h, c, now, force, next);
	}
	slab_segments_sweep(h, TIER_LARGE, now, force, next);
	purge_keep_lower(&h->dirty_keep[TIER_LARGE], &h->dirty_high[TIER_LARGE],
			 slab_dirty_bytes(h, TIER_LARGE), LARGE_KEEP_MIN);
}

void large_exit(struct heap *h)
{
	slab_abandon_segments(h, TIER_LARGE);
}

void large_collect(struct heap *h)
{
	struct segment *seg;
	while ((seg = segment_adopt(TIER_LARGE)) != NULL)
		slab_adopt_segment(h, seg);
}
