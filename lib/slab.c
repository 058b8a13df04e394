/* slab.c - the slab engine behind the tiny, mid and large tiers.
 *
 * A thread heap keeps, per class, a thread-local singly linked free list
 * (the bin, "TLS SLL") in front of its slabs.  malloc pops the bin; when it
 * is empty, slab_refill_alloc fills it with a batch, in stages:
 *   1. the current slab's local free list (up to the bin's cap);
 *   2. the current slab's remote list (blocks other threads freed);
 *   3. carving never-used blocks from the current slab;
 *   4. a partial slab of this heap;
 *   5. a full slab with pending remote frees (a bounded round-robin scan);
 *   6. an abandoned segment of an exited thread (adopted);
 *   7. a new slab in one of the heap's segments, or a new segment.
 * An owner-thread free pushes on the bin while it is under its cap, else
 * on the slab's local list (ss_local); a free from another thread is one
 * CAS onto the slab's remote list (ss_remote).
 */
#include "internal.h"

struct tier_desc tier_descs[TIER_COUNT];

#define FULL_SCAN_MAX 8 /* full slabs looked at per refill before a new slab */
/* Empty mid pages a heap keeps for reuse (h->mid_keep): 64 (8 MiB) to
 * start with.  A page that empties beyond them goes back at once, purged,
 * so a thread that frees its mid blocks and then stops calling the
 * allocator keeps little.  But a thread that frees a batch bigger than
 * that and allocates it again would fault every page back in on every
 * round: when a refill has to take a page from the pool within a purge
 * delay of such a return, the heap doubles what it keeps (up to 8192
 * pages, 1 GiB: about the biggest batch it has shown it reuses).  A
 * sweep lowers it to twice the most empty pages the heap had since the
 * last sweep, down to 64 again. */
#define MID_EMPTY_MIN 64
#define MID_EMPTY_MAX 8192

static _Atomic uint64_t orphan_remote_frees; /* by threads without a heap */

/* The bin cap of class c.  Tiny classes by default hold at least the
 * blocks of one slab (4096 of 16 B, 1365 of 48 B, ...): a refill can then
 * take a slab's whole free list without walking it (slab_splice), which
 * matters to programs that allocate and free batches of small blocks.  A
 * HAKMEM_TINY_SLL_CAP that was given applies to every class as it is. */
uint32_t tier_bin_cap(unsigned c)
{
	uint32_t cap = tier_descs[ace_tier_of_class(c)].bin_cap;
	if (ace_tier_of_class(c) == TIER_TINY && !hak_cfg.tiny_sll_cap_set) {
		uint32_t slab = (uint32_t)(((size_t)1 << tier_descs[TIER_TINY].slab_shift) / ace_class_size[c]);
		if (cap < slab)
			cap = slab;
	}
	return cap;
}

/* Blocks one carve takes: about 16 KiB worth, 1 to 256 blocks. */
uint32_t tier_carve_batch(unsigned c)
{
	uint32_t b = (uint32_t)(16384 / ace_class_size[c]);
	return b < 1 ? 1 : b > 256 ? 256 : b;
}

static uint32_t seg_full_mask(const struct segment *seg)
{
	return seg->nslabs >= 32 ? 0xffffffffu : (1u << seg->nslabs) - 1;
}

/* ---- intrusive lists ---- */

static void slist_push(struct slab **head, struct slab *s)
{
	s->prev = NULL;
	s->next = *head;
	if (*head)
		(*head)->prev = s;
	*head = s;
}

static void slist_remove(struct slab **head, struct slab **tail, struct slab *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		*head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else if (tail)
		*tail = s->prev;
	s->next = s->prev = NULL;
}

static void full_append(struct heap *h, struct slab *s)
{
	unsigned c = s->cls;
	s->state = SLAB_FULL;
	s->next = NULL;
	s->prev = h->full_tail[c];
	if (h->full_tail[c])
		h->full_tail[c]->next = s;
	else
		h->full_head[c] = s;
	h->full_tail[c] = s;
}

void seglist_push(struct segment **head, struct segment *seg)
{
	seg->prev = NULL;
	seg->next = *head;
	if (*head)
		(*head)->prev = seg;
	*head = seg;
}

void seglist_remove(struct segment **head, struct segment *seg)
{
	if (seg->prev)
		seg->prev->next = seg->next;
	else
		*head = seg->next;
	if (seg->next)
		seg->next->prev = seg->prev;
	seg->next = seg->prev = NULL;
}

#ifdef HAKMEM_DEBUG
void slab_validate(const struct slab *s)
{
	hak_assert(s->carved <= s->capacity);
	hak_assert(s->used + s->nfree == s->carved);
	uint32_t n = 0;
	uint8_t *start = slab_block0(s);
	hak_assert(start + (size_t)s->capacity * s->block_size <= slab_start(s) + ((size_t)1 << seg_of_slab(s)->slab_shift));
	for (void *b = s->free; b; b = *(void **)b) {
		hak_assert((uint8_t *)b >= start);
		hak_assert((size_t)((uint8_t *)b - start) % s->block_size == 0);
		hak_assert((uint8_t *)b < start + (size_t)s->carved * s->block_size);
		n++;
	}
	hak_assert(n == s->nfree);
}
#define VALIDATE(s) slab_validate(s)
#else
#define VALIDATE(s) ((void)0)
#endif

/* ---- moving blocks ---- */

/* Hand the list (n blocks, first = list) to the empty bin c; return one. */
static void *bin_fill_pop(struct heap *h, unsigned c, void *list, uint32_t n)
{
	struct tbin *b = &h->bins[c];
	hak_assert(b->head == NULL && n > 0);
	b->head = *(void **)list;
	b->count = n - 1;
	return list;
}

/* A refill hands the bin at most its cap (at least one block). */
static uint32_t refill_limit(struct heap *h, unsigned c)
{
	uint32_t cap = h->bins[c].cap;
	return cap ? cap : 1;
}

static void *slab_splice(struct heap *h, struct slab *s)
{
	void *list = s->free, *last = list;
	uint32_t n = 1, k = refill_limit(h, s->cls);
	if (s->nfree <= k) {
		/* the whole list fits: no walk over its (cold) blocks */
		n = s->nfree;
		s->free = NULL;
	} else {
		while (n < k) {
			last = *(void **)last;
			n++;
		}
		s->free = *(void **)last;
		*(void **)last = NULL;
	}
	s->nfree -= n;
	s->used += n;
	return bin_fill_pop(h, s->cls, list, n);
}

static void *slab_carve(struct heap *h, struct slab *s)
{
	uint32_t k = s->capacity - s->carved, batch = tier_carve_batch(s->cls);
	uint32_t limit = refill_limit(h, s->cls);
	if (batch > limit)
		batch = limit;
	if (k > batch)
		k = batch;
	size_t bs = s->block_size;
	uint8_t *first = slab_block0(s) + (size_t)s->carved * bs, *b = first;
	for (uint32_t i = 1; i < k; i++, b += bs)
		*(void **)b = b + bs;
	*(void **)b = NULL;
	s->carved += k;
	s->used += k;
	return bin_fill_pop(h, s->cls, first, k);
}

/* Take the remote list whole and append it to the local list; returns how
 * many blocks came back.  The exchange (acquire) pairs with the pushers'
 * release CAS, so the links they wrote are visible. */
uint32_t slab_drain(struct slab *s)
{
	void *list = atomic_exchange_explicit(&s->remote, NULL, memory_order_acquire);
	if (list == NULL)
		return 0;
	uint32_t n = 1;
	void *t = list;
	while (*(void **)t) {
		t = *(void **)t;
		n++;
	}
	*(void **)t = s->free;
	s->free = list;
	s->nfree += n;
	s->used -= n;
	return n;
}

/* ---- slab life cycle ---- */

/* Slot i of seg (already taken in its used_mask) starts serving class c
 * for heap h. */
struct slab *slab_init(struct heap *h, struct segment *seg, unsigned i, unsigned c)
{
	struct slab *s = &seg->slabs[i];
	size_t len;
	slab_area(seg, i, &len);
	s->block_size = ace_class_size[c];
	/* room for the colour: the last block goes when the slack is short */
	s->capacity = (uint16_t)((len - slab_colour(seg, i, c)) / s->block_size);
	s->carved = s->used = s->nfree = 0;
	s->free = NULL;
	s->cls = (uint8_t)c;
	s->state = SLAB_CURRENT;
	s->next = s->prev = NULL;
	atomic_store_explicit(&s->remote, NULL, memory_order_relaxed);
	atomic_store_explicit(&s->owner, h, memory_order_relaxed);
	return s;
}

/* s has no block out (used == 0): give its slot back to the segment, and
 * the segment back when it is empty.  Returns true if seg was released
 * (a tiny or large segment of h's; a mid page goes to pool_page_free,
 * which releases its segment itself: false). */
bool slab_retire(struct heap *h, struct segment *seg, struct slab *s)
{
	hak_assert(s->used == 0);
	VALIDATE(s);
	if (s->state == SLAB_PARTIAL)
		slist_remove(&h->partial[s->cls], NULL, s);
	else if (s->state == SLAB_FULL)
		slist_remove(&h->full_head[s->cls], &h->full_tail[s->cls], s);
	else if (s->state == SLAB_EMPTY) {
		slist_remove(&h->mid_empty, NULL, s);
		h->nmid_empty--;
	}
	if (h->cur[s->cls] == s)
		h->cur[s->cls] = NULL;
	CTR_INC(h, slabs_retired);
	if (seg->tier == TIER_MID) { /* the pool's slot, not h's */
		pool_page_free(h, seg, s); /* s may be reused from here on */
		return false;
	}
	s->state = SLAB_FREE;
	s->free = NULL;
	s->nfree = s->carved = 0;
	atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
	uint32_t bit = 1u << s->index;
	seg->used_mask &= ~bit;
	if (seg->in_full) {
		seglist_remove(&h->segs_full[seg->tier], seg);
		seg->in_full = 0;
		seglist_push(&h->segs_avail[seg->tier], seg);
	}
	if (seg->used_mask == 0) {
		seglist_remove(&h->segs_avail[seg->tier], seg);
		segment_release(seg);
		return true;
	}
	if (hak_cfg.purge_delay_ms == 0) { /* no delay: the pages go now */
		size_t len;
		uint8_t *a = slab_area(seg, s->index, &len);
		os_purge(a, len);
		return false;
	}
	uint64_t now = os_now_ms();
	seg->dirty |= bit;
	seg->dirty_since = now;
	if (h->next_purge == 0 || h->next_purge > now + (uint64_t)hak_cfg.purge_delay_ms)
		h->next_purge = now + (uint64_t)hak_cfg.purge_delay_ms;
	return false;
}

/* Free large blocks give their pages back too, not only empty slabs: a
 * large slab holds few blocks of one class, and blocks freed long ago in a
 * class no longer in use would stay resident.  A sweep marks each free
 * block (in its second word; the first is the free-list link) and the next
 * sweep gives back all of a marked block but its first page.  Returns true
 * while some block waits for the next sweep. */
#define LARGE_SEEN 0x68616b2d7365656eull   /* "hak-seen" */
#define LARGE_PURGED 0x68616b2d67697665ull /* "hak-give" */

static bool large_free_purge(struct slab *s, bool force)
{
	bool pending = false;
	for (void *b = s->free; b; b = *(void **)b) {
		uint64_t *mark = (uint64_t *)b + 1;
		uint64_t seen = LARGE_SEEN ^ (uintptr_t)b, done = LARGE_PURGED ^ (uintptr_t)b;
		if (*mark == done)
			continue;
		if (force || *mark == seen) {
			os_purge((uint8_t *)b + HAK_PAGE, s->block_size - HAK_PAGE);
			*mark = done;
		} else {
			*mark = seen;
			pending = true;
		}
	}
	return pending;
}

static void heap_sweep(struct heap *h, bool force, uint64_t now);

/* The delayed return of memory, run when h->next_purge is due (or forced):
 *  - an empty slab is retired when two sweeps in a row found it empty, so
 *    it waited at least one purge delay for reuse by its class;
 *  - a free slab whose segment was last touched a purge delay ago gives
 *    its pages back to the OS (madvise), the segment stays. */
void heap_purge(struct heap *h, bool force)
{
	uint64_t now = os_now_ms();
	if (!force && (h->next_purge == 0 || now < h->next_purge))
		return;
	/* Not inside a flush or another sweep: both are walking a list of
	 * blocks they took from a ring (heap.sweeping, types.h). */
	if (h->sweeping)
		return;
	h->sweeping = 1;
	heap_sweep(h, force, now);
	h->sweeping = 0;
}

static void heap_sweep(struct heap *h, bool force, uint64_t now)
{
	uint64_t next = 0, delay = (uint64_t)hak_cfg.purge_delay_ms;
	h->next_purge = 0;
	for (unsigned c = HAK_CLS_MID; c < HAK_CLS_LARGE; c++)
		if (h->partial[c])
			pool_trim(h, c);
	for (unsigned c = 0; c < HAK_NBINS; c++) {
		struct slab *s, *snext;
		bool large = ace_tier_of_class(c) == TIER_LARGE;
		if (large && h->cur[c] && large_free_purge(h->cur[c], force))
			next = now + delay;
		for (s = h->partial[c]; s; s = snext) {
			snext = s->next;
			if (s->used != 0) {
				s->empty_seen = 0;
				if (large && large_free_purge(s, force))
					next = now + delay;
			} else if (force || s->empty_seen) {
				slab_retire(h, seg_of_slab(s), s);
			} else {
				s->empty_seen = 1;
				next = now + delay;
			}
		}
	}
	/* keep no more than twice what the last period needed */
	if (h->mid_keep > 2 * h->mid_high)
		h->mid_keep = 2 * h->mid_high > MID_EMPTY_MIN ? 2 * h->mid_high : MID_EMPTY_MIN;
	h->mid_high = h->nmid_empty;
	for (struct slab *s = h->mid_empty, *snext; s; s = snext) {
		snext = s->next;
		if (force || s->empty_seen) {
			slab_retire(h, seg_of_slab(s), s);
		} else {
			s->empty_seen = 1;
			next = now + delay;
		}
	}
	/* the shared stacks and free page slots of h's shard: after the
	 * retires above, whose slots wait there for their purge */
	pool_collect(h, h->shard, false);
	if (pool_purge(h->shard, false, force && h->purge_now) && next == 0)
		next = now + delay;
	for (int t = 0; t < TIER_COUNT; t++) {
		for (struct segment *seg = h->segs_avail[t]; seg; seg = seg->next) {
			if (!seg->dirty)
				continue;
			if (!force && now - seg->dirty_since < delay) {
				uint64_t due = seg->dirty_since + delay;
				if (next == 0 || due < next)
					next = due;
				continue;
			}
			for (uint32_t m = seg->dirty; m; m &= m - 1) {
				size_t len;
				uint8_t *a = slab_area(seg, (unsigned)__builtin_ctz(m), &len);
				os_purge(a, len);
			}
			seg->dirty = 0;
		}
	}
	h->next_purge = next;
}

static struct slab *slab_new(struct heap *h, int tier, unsigned c)
{
	struct segment *seg = h->segs_avail[tier];
	if (seg == NULL) {
		seg = segment_alloc(h, tier);
		if (seg == NULL)
			return NULL;
		DCTR_INC(h, refill_new_segment);
		seg->in_full = 0;
		seglist_push(&h->segs_avail[tier], seg);
	}
	unsigned i = (unsigned)__builtin_ctz(~seg->used_mask & seg_full_mask(seg));
	seg->used_mask |= 1u << i;
	seg->dirty &= ~(1u << i);
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

/* Look at up to FULL_SCAN_MAX full slabs, oldest first, for one that other
 * threads freed blocks into; those still full go to the back. */
static struct slab *full_scan(struct heap *h, unsigned c)
{
	for (int k = 0; k < FULL_SCAN_MAX; k++) {
		struct slab *s = h->full_head[c];
		if (s == NULL)
			return NULL;
		slist_remove(&h->full_head[c], &h->full_tail[c], s);
		if (atomic_load_explicit(&s->remote, memory_order_relaxed) != NULL) {
			slab_drain(s);
			return s;
		}
		full_append(h, s);
		if (h->full_head[c] == s)
			return NULL; /* the only one */
	}
	return NULL;
}

/* ACE's bounded round-up for large blocks: before a large class takes a
 * new slab (a new 2 MiB segment, new pages to touch), it takes a free
 * block of a larger class whose size is within W_MAX of its own, from a
 * partial slab that already holds freed, resident blocks.  The block keeps
 * its own class: its free goes back to its slab. */
static void *large_borrow(struct heap *h, unsigned c)
{
	uint64_t limit = (uint64_t)ace_class_size[c] * (uint64_t)hak_cfg.wmax_pct / 100;
	for (unsigned k = c + 1; k < HAK_NCLS && ace_class_size[k] <= limit; k++) {
		struct slab *s = h->cur[k];
		if (s == NULL || s->free == NULL)
			s = h->partial[k];
		if (s == NULL || s->free == NULL)
			continue;
		void *p = s->free;
		s->free = *(void **)p;
		s->nfree--;
		s->used++;
		DCTR_INC(h, refill_borrow);
		DCTR_ADD(h, class_bytes, ace_class_size[k] - ace_class_size[c]);
		return p;
	}
	return NULL;
}

/* A mid refill needs a page from the pool: if h gave an empty page back
 * within a purge delay, it would have served here; keep twice as many. */
static void mid_keep_grow(struct heap *h)
{
	if (h->mid_returned_ms == 0 || h->mid_keep >= MID_EMPTY_MAX)
		return;
	if (os_now_ms() - h->mid_returned_ms < (uint64_t)hak_cfg.purge_delay_ms)
		h->mid_keep *= 2;
	h->mid_returned_ms = 0;
}

void *slab_refill_alloc(struct heap *h, unsigned c)
{
	int tier = ace_tier_of_class(c);
	struct slab *s = h->cur[c];
	CTR_INC(h, refills[tier]);
	heap_remote_flush(h);
	if (tier == TIER_LARGE) { /* keep the sweep of free large blocks going */
		if (h->next_purge == 0)
			h->next_purge = os_now_ms() + (uint64_t)hak_cfg.purge_delay_ms;
		else
			heap_purge(h, false);
	}
	for (;;) {
		if (s) {
			VALIDATE(s);
			if (s->free) {
				DCTR_INC(h, refill_free);
				return slab_splice(h, s);
			}
			/* reuse what other threads freed before touching
			 * new memory */
			if (atomic_load_explicit(&s->remote, memory_order_relaxed) != NULL &&
			    slab_drain(s)) {
				DCTR_INC(h, refill_remote);
				continue;
			}
			if (s->carved < s->capacity) {
				DCTR_INC(h, refill_carve);
				return slab_carve(h, s);
			}
			h->cur[c] = NULL;
			full_append(h, s);
		}
		if ((s = h->partial[c]) != NULL) {
			slist_remove(&h->partial[c], NULL, s);
			DCTR_INC(h, refill_partial);
		} else if ((s = full_scan(h, c)) != NULL) {
			DCTR_INC(h, refill_fullscan);
		} else {
			struct segment *seg;
			void *b;
			if (tier == TIER_LARGE && (b = large_borrow(h, c)) != NULL)
				return b;
			if (tier == TIER_MID) {
				if ((s = h->mid_empty) != NULL) {
					slist_remove(&h->mid_empty, NULL, s);
					h->nmid_empty--;
					if (s->cls != c)
						slab_init(h, seg_of_slab(s), s->index, c);
					DCTR_INC(h, refill_partial);
					s->state = SLAB_CURRENT;
					h->cur[c] = s;
					continue;
				}
				mid_keep_grow(h);
				if ((s = pool_refill(h, c)) == NULL)
					return NULL;
				heap_purge(h, false);
				continue; /* pool_refill made it current */
			}
			if (h->segs_avail[tier] == NULL && (seg = segment_adopt(tier)) != NULL) {
				DCTR_INC(h, refill_adopt);
				slab_adopt_segment(h, seg);
				continue;
			}
			s = slab_new(h, tier, c);
			if (s == NULL)
				return NULL;
			heap_purge(h, false);
		}
		s->state = SLAB_CURRENT;
		h->cur[c] = s;
	}
}

static void full_to_partial(struct heap *h, struct slab *s)
{
	slist_remove(&h->full_head[s->cls], &h->full_tail[s->cls], s);
	s->state = SLAB_PARTIAL;
	slist_push(&h->partial[s->cls], s);
	/* a mid class may now hold more pages than its cap: a sweep trims */
	if (ace_tier_of_class(s->cls) == TIER_MID && h->next_purge == 0)
		h->next_purge = os_now_ms() + (uint64_t)hak_cfg.purge_delay_ms;
}

/* s (owner h, on no list, not current) goes on h's partial list when it
 * has room, else on the full list.  An empty one waits there for the
 * sweep, like any other. */
void slab_file(struct heap *h, struct slab *s)
{
	if (s->nfree || s->carved < s->capacity) {
		s->state = SLAB_PARTIAL;
		slist_push(&h->partial[s->cls], s);
	} else {
		full_append(h, s);
	}
}

/* s has no block out.  A tiny or large slab stays on its class's partial
 * list for reuse; a mid page goes on the heap's list of empty pages, where
 * a refill of any mid class can take it.  heap_purge retires it if it is
 * still empty a purge delay later. */
static void slab_emptied(struct heap *h, struct segment *seg, struct slab *s)
{
	if (hak_cfg.purge_delay_ms == 0) {
		slab_retire(h, seg, s);
		return;
	}
	if (seg->tier == TIER_MID) {
		if (h->nmid_empty >= h->mid_keep) {
			/* enough empty pages wait already: this one goes back,
			 * with its memory, now (a thread that stops calling the
			 * allocator keeps at most mid_keep of them) */
			int keep = h->purge_now;
			h->purge_now = 1;
			slab_retire(h, seg, s);
			h->purge_now = keep;
			h->mid_returned_ms = os_now_ms();
			return;
		}
		if (s->state == SLAB_PARTIAL)
			slist_remove(&h->partial[s->cls], NULL, s);
		else
			slist_remove(&h->full_head[s->cls], &h->full_tail[s->cls], s);
		s->state = SLAB_EMPTY;
		slist_push(&h->mid_empty, s);
		if (++h->nmid_empty > h->mid_high)
			h->mid_high = h->nmid_empty;
	} else if (s->state == SLAB_FULL) {
		full_to_partial(h, s);
	}
	s->empty_seen = 0;
	uint64_t now = os_now_ms();
	if (h->next_purge == 0)
		h->next_purge = now + (uint64_t)hak_cfg.purge_delay_ms;
	else if (now >= h->next_purge)
		heap_purge(h, false);
}

void slab_local_settle(struct heap *h, struct segment *seg, struct slab *s)
{
	if (s->used == 0 && s->state != SLAB_CURRENT)
		slab_emptied(h, seg, s);
	else if (s->state == SLAB_FULL)
		full_to_partial(h, s);
}

void slab_free_local(struct heap *h, struct segment *seg, void *p)
{
	slab_push_local(h, seg, slab_of(seg, p), p);
}

#define RF_BATCH 32 /* blocks gathered before one push */

/* Push a chain first..last onto s's remote list with one CAS.  The
 * release pairs with the owner's acquire exchange in slab_drain. */
static void remote_push(struct slab *s, void *first, void *last)
{
	void *head = atomic_load_explicit(&s->remote, memory_order_relaxed);
	do {
		*(void **)last = head;
	} while (!atomic_compare_exchange_weak_explicit(&s->remote, &head, first,
							memory_order_release, memory_order_relaxed));
	/* s may be drained, retired and unmapped from here on: do not touch */
}

void heap_remote_flush(struct heap *h)
{
	if (h->rf_slab == NULL)
		return;
	remote_push(h->rf_slab, h->rf_head, h->rf_tail);
	h->rf_slab = NULL;
	h->rf_head = h->rf_tail = NULL;
	h->rf_count = 0;
}

/* A block of another heap: gather it with the others of the same slab,
 * or push it alone when this thread has no heap. */
void slab_free_remote(struct heap *h, struct segment *seg, void *p)
{
	struct slab *s = slab_of(seg, p);
	if (h == &heap_empty) {
		remote_push(s, p, p);
		atomic_fetch_add_explicit(&orphan_remote_frees, 1, memory_order_relaxed);
		return;
	}
	CTR_INC(h, remote_frees);
	DCTR_INC(h, ss_remote);
	if (h->rf_slab == s) {
		*(void **)p = h->rf_head;
		h->rf_head = p;
		if (++h->rf_count >= RF_BATCH)
			heap_remote_flush(h);
		return;
	}
	heap_remote_flush(h);
	*(void **)p = NULL;
	h->rf_slab = s;
	h->rf_head = h->rf_tail = p;
	h->rf_count = 1;
}

uint64_t slab_orphan_remote_frees(void)
{
	return atomic_load_explicit(&orphan_remote_frees, memory_order_relaxed);
}

/* Take over an abandoned segment: drain what other threads freed into it,
 * file each slab as partial or full, retire the empty ones. */
void slab_adopt_segment(struct heap *h, struct segment *seg)
{
	atomic_store_explicit(&seg->owner, h, memory_order_release);
	seg->in_full = 0;
	seglist_push(&h->segs_avail[seg->tier], seg);
	CTR_INC(h, segments_adopted);
	for (uint32_t m = seg->used_mask; m; m &= m - 1) {
		struct slab *s = &seg->slabs[__builtin_ctz(m)];
		atomic_store_explicit(&s->owner, h, memory_order_relaxed);
		slab_drain(s);
		s->state = SLAB_CURRENT; /* on no list yet */
		s->next = s->prev = NULL;
		if (s->used == 0) {
			if (slab_retire(h, seg, s))
				return;
		} else if (s->nfree || s->carved < s->capacity) {
			s->state = SLAB_PARTIAL;
			slist_push(&h->partial[s->cls], s);
		} else {
			full_append(h, s);
		}
	}
	if (seg->used_mask == seg_full_mask(seg)) {
		seglist_remove(&h->segs_avail[seg->tier], seg);
		seg->in_full = 1;
		seglist_push(&h->segs_full[seg->tier], seg);
	}
}

/* Drain and retire what can be retired in one segment. */
static void seg_sweep(struct heap *h, struct segment *seg)
{
	for (uint32_t m = seg->used_mask; m; m &= m - 1) {
		struct slab *s = &seg->slabs[__builtin_ctz(m)];
		slab_drain(s);
		if (s->used == 0) {
			if (slab_retire(h, seg, s))
				return;
		} else if (s->state == SLAB_FULL && s->nfree) {
			full_to_partial(h, s);
		}
	}
}

/* Drain the mid pages of class c on h's lists; empty ones go back. */
static void class_sweep(struct heap *h, unsigned c)
{
	struct slab *s, *next;
	for (s = h->full_head[c]; s; s = next) {
		next = s->next;
		slab_drain(s);
		if (s->used == 0)
			slab_retire(h, seg_of_slab(s), s);
		else if (s->nfree)
			full_to_partial(h, s);
	}
	for (s = h->partial[c]; s; s = next) {
		next = s->next;
		slab_drain(s);
		if (s->used == 0)
			slab_retire(h, seg_of_slab(s), s);
	}
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
		b->head = NULL;
		b->count = 0;
		while (p) {
			void *next = *(void **)p;
			struct segment *seg = segmap_lookup(p);
			/* pool_trim empties a ring before its pages leave */
			hak_assert(atomic_load_explicit(&slab_of(seg, p)->owner, memory_order_relaxed) == h);
			slab_free_local(h, seg, p);
			p = next;
		}
	}
	for (unsigned c = HAK_CLS_MID; c < HAK_CLS_LARGE; c++)
		class_sweep(h, c);
	for (int t = 0; t < TIER_COUNT; t++) {
		struct segment *seg, *next;
		for (seg = h->segs_avail[t]; seg; seg = next) {
			next = seg->next;
			seg_sweep(h, seg);
		}
		for (seg = h->segs_full[t]; seg; seg = next) {
			next = seg->next;
			seg_sweep(h, seg);
		}
	}
	h->sweeping = 0;
	heap_purge(h, true);
}

/* Thread exit: flush, then hand every segment still in use to the shared
 * abandoned list, where other threads adopt it. */
void heap_abandon(struct heap *h)
{
	heap_flush(h);
	pool_abandon(h); /* mid pages: to the shared stacks */
	for (int t = 0; t < TIER_COUNT; t++) {
		struct segment *lists[2] = { h->segs_avail[t], h->segs_full[t] };
		h->segs_avail[t] = h->segs_full[t] = NULL;
		for (int l = 0; l < 2; l++) {
			struct segment *seg = lists[l], *next;
			for (; seg; seg = next) {
				next = seg->next;
				seg->in_full = 0;
				for (uint32_t m = seg->used_mask; m; m &= m - 1)
					atomic_store_explicit(&seg->slabs[__builtin_ctz(m)].owner, NULL,
							      memory_order_relaxed);
				segment_abandon(seg);
			}
		}
	}
	for (unsigned c = 0; c < HAK_NBINS; c++) {
		h->partial[c] = h->full_head[c] = h->full_tail[c] = NULL;
		h->cur[c] = NULL;
	}
}

void heap_setup(struct heap *h)
{
	memset(h, 0, offsetof(struct heap, reg_next));
	for (unsigned c = 0; c < HAK_NBINS; c++)
		h->bins[c].cap = tier_bin_cap(c);
	h->mid_keep = MID_EMPTY_MIN;
	h->live = 1;
	static _Atomic unsigned next_shard;
	h->shard = atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % POOL_SHARDS;
}
