/* heap.c - the thread heap: bins, dispatch to the tiers, the exit flush,
 * the sweep, collect.
 *
 * A heap is one thread's: its bins (the thread-local free lists that the
 * inline fast paths pop and push), its slab lists and segments, the frees
 * of other heaps' blocks it gathers, its counters.  This file runs what
 * involves every tier: a refill (the slab engine's local stages, then the
 * tier of the class), a local free that emptied or unfilled a slab (the
 * tier's settle), the delayed sweep (each tier's, driven by the purge
 * service's clock, purge.c), the flush at thread exit, and hak_collect.
 * Dispatch is by the class's tier (ace.c) or the segment's.
 */
#include "internal.h"

#include <sched.h>

#include <stdlib.h>

/* The heap of a thread that has none yet: every bin is empty and it owns
 * no slab, so the fast paths need no "initialised?" test. */
struct heap heap_empty;

/* The purge thread's heap (thread.c, heap_reclaim): it owns exited
 * threads' segments only for the length of a pass. */
struct heap heap_purger;

/* Frees by threads without a heap (a consumer that only frees what a
 * producer allocated), counted in stripes of a cache line each.  With one
 * counter for all, every such free on every core wrote the same line:
 * bench/xthread 64 on 16 cores ran no faster at 4 and 8 pairs of threads
 * than at 2, bench/drain 64 at 2 pairs no faster than at 1.  The first
 * ORPHAN_OWN threads that make such a free each own a stripe, which only
 * they write (a plain add: a locked one cost 15% in bench/drain); later
 * ones share the others, with atomic adds.  A thread without a heap has
 * no exit hook, so a stripe is never handed on. */
#define ORPHAN_OWN 32
#define ORPHAN_STRIPES (ORPHAN_OWN + 32)
static struct {
	_Alignas(64) _Atomic uint64_t n;
} orphan_remote_frees[ORPHAN_STRIPES];
static _Atomic uint64_t orphan_next_stripe;
static __thread uint8_t orphan_stripe __attribute__((tls_model("initial-exec"))); /* 1 + index */
static _Atomic uint64_t foreign_frees; /* pointers hakmem never gave */

uint64_t heap_orphan_remote_frees(void)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < ORPHAN_STRIPES; i++)
		n += atomic_load_explicit(&orphan_remote_frees[i].n, memory_order_relaxed);
	return n;
}

static void count_orphan_remote_free(void)
{
	unsigned i = orphan_stripe;
	if (unlikely(i == 0)) {
		uint64_t k = atomic_fetch_add_explicit(&orphan_next_stripe, 1, memory_order_relaxed);
		i = k < ORPHAN_OWN ? (unsigned)k : ORPHAN_OWN + (unsigned)(k % (ORPHAN_STRIPES - ORPHAN_OWN));
		orphan_stripe = (uint8_t)(i + 1);
		i++;
	}
	_Atomic uint64_t *n = &orphan_remote_frees[i - 1].n;
	if (i <= ORPHAN_OWN) /* this thread's alone: readers see either value */
		atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + 1,
				      memory_order_relaxed);
	else
		atomic_fetch_add_explicit(n, 1, memory_order_relaxed);
}

void heap_count_foreign(void)
{
	atomic_fetch_add_explicit(&foreign_frees, 1, memory_order_relaxed);
}

uint64_t heap_foreign_frees(void)
{
	return atomic_load_explicit(&foreign_frees, memory_order_relaxed);
}

/* ---- bad frees ---- */

static _Atomic uint64_t bad_frees;

uint64_t heap_bad_frees(void)
{
	return atomic_load_explicit(&bad_frees, memory_order_relaxed);
}

/* One line, written without allocating: "hakmem: double free of 0x...
 * (size class 256)", "hakmem: free of 0x...: not the start of a block".
 * Then HAKMEM_ON_ERROR: abort (the default), or go on without touching
 * the block (warn prints the line, ignore does not). */
void heap_bad_free(const char *op, int what, const void *p, size_t cls_size)
{
	atomic_fetch_add_explicit(&bad_frees, 1, memory_order_relaxed);
	long mode = KNOB(on_error);
#if defined(HAKMEM_SECURE) && HAKMEM_SECURE
	mode = ON_ERROR_ABORT; /* the secure build always stops */
#endif
	if (mode == ON_ERROR_IGNORE)
		return;
	if (what == HAK_BAD_DOUBLE)
		hak_report(op[0] == 'f' ? "double free of" : "realloc of freed block", p, "", cls_size);
	else
		hak_report(op[0] == 'f' ? "free of" : "realloc of", p, ": not the start of a block", 0);
	if (mode == ON_ERROR_ABORT)
		abort();
}

/* ---- knobs ---- */

void heap_default_caps(void)
{
	for (unsigned c = 0; c < HAK_NBINS; c++) {
		uint32_t cap;
		switch (ace_tier_of_class(c)) {
		case TIER_MID:
			cap = pool_default_cap(c);
			break;
		case TIER_LARGE:
			cap = large_default_cap(c);
			break;
		default:
			cap = tiny_default_cap(c);
			break;
		}
		knob_set_cap(c, cap);
	}
}

/* Read the epoch first: a cap published after it is seen at the next
 * refill (knob_set_cap writes the cap, then the epoch). */
void heap_read_knobs(struct heap *h)
{
	uint32_t epoch = knob_epoch();
	uint32_t grown = 0;
	for (unsigned c = 0; c < HAK_NBINS; c++) {
		h->bins[c].cap = knob_cap(c);
		if (ace_tier_of_class(c) == TIER_MID && h->bins[c].cap > pool_default_cap(c))
			grown |= 1u << (c - HAK_CLS_MID);
	}
	h->mid_grown = grown;
	h->knob_epoch = epoch;
}

void heap_setup(struct heap *h)
{
	/* mid_remote and large_remote apart: a thread that read this heap
	 * as a mid page's or large run's owner before the heap's last thread
	 * exited may still set a bit there (slab_remote_push), with an
	 * atomic write */
	memset(h, 0, offsetof(struct heap, mid_remote));
	atomic_store_explicit(&h->mid_remote, 0, memory_order_relaxed);
	atomic_store_explicit(&h->large_remote, 0, memory_order_relaxed);
	size_t after = offsetof(struct heap, mid_remote_line) + sizeof(h->mid_remote_line);
	memset((char *)h + after, 0, offsetof(struct heap, reg_next) - after);
	heap_read_knobs(h);
	h->mid_keep = (uint32_t)KNOB(mid_keep_min);
	h->slab_keep = SLAB_KEEP_MIN;
	h->live = 1;
	static _Atomic unsigned next_shard;
	h->shard = atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % POOL_SHARDS;
}

/* ---- refill ---- */

void heap_fold_overflows(struct heap *h, unsigned c)
{
	struct tbin *b = &h->bins[c];
	uint32_t n = __atomic_load_n(&b->overflows, __ATOMIC_RELAXED);
	if (n) {
		CC_ADD(h, c, CC_OVERFLOWS, n);
		__atomic_store_n(&b->overflows, 0, __ATOMIC_RELAXED);
	}
}

/* The bin of class c is full beyond a new, lower cap: the excess goes back
 * to its slabs (the next frees then find the bin full, as they should). */
static void bin_trim_to_cap(struct heap *h, unsigned c)
{
	struct tbin *b = &h->bins[c];
	while (b->count > b->cap) {
		void *p = b->head;
		b->head = blk_next(p);
		b->count--;
		struct segment *seg = segmap_lookup(p);
		slab_push_local(h, seg, slab_of(seg, p), p);
	}
}

/* What a refill does before its local stages, when it has to: push the
 * gathered remote frees, read changed knobs, keep the large tier's sweep
 * going.  Then the local stages; then the tier. */
/* Out of memory: everything free that holds address space goes back
 * now, h's empty slabs and pages first (their segments then empty into
 * the cache), then the caches of segments and huge mappings. */
void heap_release_for_oom(struct heap *h)
{
	heap_purge(h, true);
	pool_collect_all(h);
	segment_cache_release();
	huge_cache_release();
}

/* The mid tier's bounded round-up: h has no page of class c with room;
 * a free block of a larger mid class in h's rings, within W_MAX of the
 * request (ace_wmax_limit_mid), serves it instead of a new page.  The
 * block keeps its class: its free goes back to its own ring. */
static void *mid_borrow(struct heap *h, unsigned c, size_t n)
{
	uint64_t limit = ace_wmax_limit_mid(c, n);
	/* Blocks of class k start at page_start + i * size(k): aligned to
	 * the power of two that divides size(k).  aligned_alloc asks for a
	 * class size that is a multiple of its alignment, so a borrowed
	 * block must keep the power of two that divides n (up to a page). */
	size_t align = n & -n;
	if (align > HAK_PAGE)
		align = HAK_PAGE;
	for (unsigned k = c + 1; k < HAK_CLS_LARGE && ace_class_size[k] <= limit; k++) {
		struct tbin *b = &h->bins[k];
		if (ace_class_size[k] % align != 0)
			continue;
		void *p = b->head;
		if (p == NULL)
			continue;
		b->head = blk_next(p);
		b->count--;
		CC_ADD(h, c, CC_BORROWS, 1);
		CC_ADD(h, c, CC_BORROW_WASTE, ace_class_size[k] - n);
		return p;
	}
	return NULL;
}

static hak_noinline void *heap_refill_slow(struct heap *h, unsigned c, size_t n, bool local_done)
{
	int tier = ace_tier_of_class(c);
	bool oom_retried = false;
	void *p;
	if (!local_done) {
		if (h->rf_slab != NULL)
			heap_remote_flush(h);
		if (h->knob_epoch != knob_epoch()) {
			heap_read_knobs(h);
			for (unsigned k = 0; k < HAK_NBINS; k++)
				if (k != c && h->bins[k].count > h->bins[k].cap)
					bin_trim_to_cap(h, k);
		}
		if (tier == TIER_LARGE && large_sweep_wanted(h))
			heap_purge(h, false);
	}
	for (;;) {
		if (local_done)
			local_done = false;
		else if ((p = slab_refill_local(h, c)) != NULL)
			return p;
		/* no slab of c with room in h: a larger mid block within
		 * W_MAX, else the tier finds one; one sample of ACE's
		 * round-up per miss (types.h, CC_*) */
		int r;
		if (tier == TIER_MID && n <= HAK_MID_MAX && (p = mid_borrow(h, c, n)) != NULL)
			return p;
		CC_ADD(h, c, CC_MISSES, 1);
		CC_ADD(h, c, CC_REQ_BYTES, n);
		switch (tier) {
		case TIER_MID:
			r = pool_refill(h, c);
			break;
		case TIER_LARGE:
			r = large_refill(h, c, &p);
			if (p != NULL)
				return p; /* a borrowed block of a larger class */
			break;
		default:
			r = tiny_refill(h, c);
			break;
		}
		if (r == REFILL_FAILED) {
			/* the kernel refused memory: give back what is free and
			 * cached (its address space) and try once more */
			if (oom_retried)
				return NULL;
			oom_retried = true;
			heap_release_for_oom(h);
			continue;
		}
		if (r == REFILL_NEW)
			heap_purge(h, false);
	}
}

void *heap_refill(struct heap *h, unsigned c, size_t n)
{
	CC_ADD(h, c, CC_REFILLS, 1);
	if (h->bins[c].overflows)
		heap_fold_overflows(h, c);
	if (unlikely(h->rf_slab != NULL || h->knob_epoch != knob_epoch() ||
		     (unsigned)(c - HAK_CLS_LARGE) < HAK_NCLS - HAK_CLS_LARGE))
		return heap_refill_slow(h, c, n, false);
	void *p = slab_refill_local(h, c);
	return likely(p != NULL) ? p : heap_refill_slow(h, c, n, true);
}


/* ---- local frees that change a slab's state ---- */

void heap_local_settle(struct heap *h, struct segment *seg, struct slab *s)
{
	int r;
	switch (seg->tier) {
	case TIER_MID:
		r = pool_settle(h, seg, s);
		break;
	case TIER_LARGE:
		r = large_settle(h, seg, s);
		break;
	default:
		r = tiny_settle(h, seg, s);
		break;
	}
	/* the clock only when it matters: a full slab with room again just
	 * makes sure a sweep is scheduled */
	if (r == SETTLE_NONE || (r == SETTLE_NOTE && h->next_purge != 0))
		return;
	uint64_t now = os_now_ms();
	if (h->next_purge == 0)
		purge_note(&h->next_purge, now);
	else if (purge_due(h->next_purge, now))
		heap_purge(h, false);
}

void heap_free_local(struct heap *h, struct segment *seg, void *p)
{
	slab_push_local(h, seg, slab_of(seg, p), p);
}

/* ---- frees of other heaps' blocks ---- */

#define RF_BATCH 32 /* blocks gathered before one push */

void heap_remote_flush(struct heap *h)
{
	if (h->rf_slab == NULL)
		return;
	slab_remote_push(h->rf_slab, h->rf_head, h->rf_tail);
	h->rf_slab = NULL;
	h->rf_head = h->rf_tail = NULL;
	h->rf_count = 0;
}

/* Gather it with the others of the same slab, or push it alone when this
 * thread has no heap. */
void heap_free_remote(struct heap *h, struct slab *s, void *p)
{
	if (h == &heap_empty) {
		slab_remote_push(s, p, p);
		count_orphan_remote_free();
		return;
	}
	CTR_INC(h, remote_frees);
	DCTR_INC(h, ss_remote);
	struct heap *owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
	if (owner == NULL || owner == &heap_purger) {
		/* a slab of an exited thread's segment (or a mid page on a
		 * shared stack): no owner drains it soon, and a chain gathered
		 * here would wait for this thread's next call into the
		 * allocator, keeping the slab from emptying while this thread
		 * sleeps (the purge thread, heap_reclaim) */
		slab_remote_push(s, p, p);
		return;
	}
	if (h->rf_slab == s) {
		blk_set_next(p, h->rf_head);
		h->rf_head = p;
		if (++h->rf_count >= RF_BATCH)
			heap_remote_flush(h);
		return;
	}
	heap_remote_flush(h);
	blk_set_next(p, NULL);
	h->rf_slab = s;
	h->rf_head = h->rf_tail = p;
	h->rf_count = 1;
}

/* ---- the delayed sweep ---- */

/* Run when h->next_purge is due (or forced), on slow paths only: each
 * tier's delayed work (purge.c).  Not inside a flush or another sweep:
 * both walk lists of blocks taken out of a ring (heap.sweeping, types.h). */
void heap_purge(struct heap *h, bool force)
{
	if (!force && h->next_purge == 0)
		return; /* nothing waits: no need for the clock */
	uint64_t now = os_now_ms(), next = 0;
	if (!force && !purge_due(h->next_purge, now))
		return;
	if (h->sweeping)
		return;
	h->sweeping = 1;
	h->next_purge = 0;
	pool_sweep(h, now, force, &next);
	tiny_sweep(h, now, force, &next);
	large_sweep(h, now, force, &next);
	slab_keep_sweep(h);
	/* what the sweeps scheduled meanwhile (a slot freed: purge_note) */
	if (h->next_purge && (next == 0 || h->next_purge < next))
		next = h->next_purge;
	h->next_purge = next;
	h->sweeping = 0;
}

/* ---- exit, collect ---- */

/* Every page and slab of h drained (the blocks other threads freed into
 * them), the empty ones retired: the flush's and the idle reclaim's
 * common part. */
static void heap_drain(struct heap *h)
{
	pool_flush(h);
	slab_segments_drain(h, TIER_TINY);
	slab_segments_drain(h, TIER_LARGE);
}

/* Every cached block goes back to its slab; every slab is drained; empty
 * slabs and segments go back. */
void heap_flush(struct heap *h)
{
	/* While blocks go back to their pages, a page that empties must not
	 * start a sweep: its trim would send pages whose blocks are still on
	 * the list below to the shared stacks (heap.sweeping). */
	hak_assert(!h->sweeping);
	h->sweeping = 1;
	heap_remote_flush(h);
	for (unsigned c = 0; c < HAK_NBINS; c++) {
		struct slab *s = h->cur[c];
		if (s) {
			h->cur[c] = NULL;
			s->state = SLAB_PARTIAL;
			slist_push(&h->partial[c], s);
		}
	}
	for (unsigned c = 0; c < HAK_NBINS; c++) {
		struct tbin *b = &h->bins[c];
		void *p = b->head;
		heap_fold_overflows(h, c);
		b->head = NULL;
		b->count = 0;
		while (p) {
			void *next = blk_next(p);
			struct segment *seg = segmap_lookup(p);
			/* pool_trim empties a ring before its pages leave */
			hak_assert(atomic_load_explicit(&slab_of(seg, p)->owner, memory_order_relaxed) == h);
			heap_free_local(h, seg, p);
			p = next;
		}
	}
	heap_drain(h);
	h->sweeping = 0;
	heap_purge(h, true);
}

/* Thread exit: flush, then hand every slab still in use to the others:
 * mid pages to the shared stacks, tiny and large segments to the list of
 * abandoned segments, where other threads adopt them.  With 'later' (the
 * purge thread runs) the free pages stay: a program that starts and ends
 * threads all the time would otherwise give back and fault in the same
 * pages on every exit. */
void heap_abandon(struct heap *h, bool later)
{
	h->purge_later = later;
	heap_flush(h);
	h->purge_later = 0;
	pool_exit(h);
	tiny_exit(h);
	large_exit(h);
	for (unsigned c = 0; c < HAK_NBINS; c++) {
		h->partial[c] = h->full_head[c] = h->full_tail[c] = NULL;
		h->cur[c] = NULL;
	}
}

/* The purge thread's pass (thread.c), on a heap of its own that never
 * allocates and owns nothing between passes.  It reaches only what no
 * thread's heap holds, each piece through the lock or atomic that already
 * guards it:
 *   - tiny and large segments abandoned by exited threads that no thread
 *     adopted for a purge delay: adopted here, drained (the blocks other
 *     threads freed into them since), their empty slabs retired and all
 *     their free pages given back, then abandoned again (or released,
 *     when nothing in them is in use);
 *   - mid pages on the shared stacks that no thread used since the last
 *     pass: drained, the empty ones back to their shard; free page slots
 *     idle a purge delay: purged;
 *   - the segment cache and the huge cache: what waited a purge delay.
 * A live thread's heap is never touched: what it keeps empty is bounded
 * (slab_keep, mid_keep) and swept by the thread itself. */
void heap_reclaim(struct heap *h)
{
	static const int tiers[2] = { TIER_TINY, TIER_LARGE };
	uint64_t now = os_now_ms();
	struct segment *seg;
	bool adopted = false;
	for (int t = 0; t < 2; t++)
		while ((seg = segment_adopt_idle(tiers[t], now)) != NULL) {
			slab_adopt_segment(h, seg);
			adopted = true;
		}
	if (adopted) {
		/* drain, retire, give back every free page (heap_purge with
		 * force): these segments waited a delay already */
		heap_flush(h);
		tiny_exit(h);
		large_exit(h);
		for (unsigned c = 0; c < HAK_NBINS; c++) {
			h->partial[c] = h->full_head[c] = h->full_tail[c] = NULL;
			h->cur[c] = NULL;
		}
		h->slab_empty = 0;
	}
	pool_collect_idle(h);
	pool_purge(0, true, false);
	segment_cache_collect(false);
	huge_collect(false);
}

/* Memory that other threads freed into the slabs and pages of a thread
 * that sleeps (or works without a slow-path call) would otherwise stay
 * until that thread's next refill or sweep: a program whose main thread
 * builds its data and whose workers free it keeps it all.  The purge
 * thread does here what the owner's forced sweep would, with the owner
 * held off by the gate (heap_enter): its own gathered remote frees go
 * out, every page and slab is drained, the empty ones go back with their
 * memory (they waited a purge delay: the owner made no call since the
 * purge thread's last pass), and so do the free pages of its segments.
 * Not the rings: the owner's fast paths pop and push them without the
 * gate; a ring's blocks keep their slabs, as they do in a sweep.
 * light (a light pass, thread.c: the owner made no call for a quarter of
 * a purge delay or more, and other threads freed into its mid pages or
 * large runs): the same drain, but what is empty waits its purge delay as
 * in the owner's own sweep, its free slots usable by any thread meanwhile
 * (given back at once, those pages made larson with 16 threads on 2
 * cores 29% slower: threads waiting for a core look idle too). */
void heap_reclaim_idle(struct heap *h, bool light)
{
	hak_assert(!h->sweeping); /* the owner is outside every slow path */
	h->sweeping = 1;
	h->purge_now = !light;
	heap_remote_flush(h);
	heap_drain(h);
	pool_empty_retire(h);
	uint64_t now = os_now_ms(), next = 0;
	tiny_sweep(h, now, !light, &next);
	large_sweep(h, now, !light, &next);
	if (next && (h->next_purge == 0 || next < h->next_purge))
		h->next_purge = next;
	h->purge_now = 0;
	h->sweeping = 0;
}

/* The owner found the purge thread at work on its heap: out of the gate
 * until it is done, then in again. */
void heap_enter_wait(struct heap *h)
{
	for (;;) {
		atomic_store_explicit(&h->gate_busy, 0, memory_order_relaxed);
		while (atomic_load_explicit(&h->gate_reclaim, memory_order_acquire))
			sched_yield();
		atomic_store_explicit(&h->gate_busy, 1, memory_order_relaxed);
		atomic_signal_fence(memory_order_seq_cst);
		if (!atomic_load_explicit(&h->gate_reclaim, memory_order_acquire))
			return;
	}
}

void heap_collect(struct heap *h)
{
	/* reclaim what exited threads left, then give back all that is free */
	tiny_collect(h);
	large_collect(h);
	h->purge_now = 1;
	heap_flush(h);
	pool_collect_all(h);
	h->purge_now = 0;
}
