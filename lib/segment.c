/* segment.c - 2 MiB-aligned segments, the segment map (pointer -> owner),
 * the cache of empty segments and the list of abandoned ones. */
#include "internal.h"

/* One bit per 2 MiB region of the 48-bit address space in each map: 16
 * MiB of zero-filled .bss apiece, of which only the words for regions
 * hakmem maps are ever touched.  Written with atomic OR/AND, read with one
 * load. */
_Atomic uint64_t segmap_here[HAK_SEGMAP_ENTRIES / 64];
_Atomic uint64_t segmap_prev[HAK_SEGMAP_ENTRIES / 64];

static void segmap_put(_Atomic uint64_t *map, uintptr_t i, bool on)
{
	uint64_t bit = (uint64_t)1 << (i & 63);
	/* no write when the bit is already so (a region has one writer at a
	 * time): a locked write would take the word's cache line from the
	 * threads that map the regions beside this one */
	if (((atomic_load_explicit(&map[i >> 6], memory_order_relaxed) & bit) != 0) == on)
		return;
	if (on)
		atomic_fetch_or_explicit(&map[i >> 6], bit, memory_order_release);
	else
		atomic_fetch_and_explicit(&map[i >> 6], ~bit, memory_order_acq_rel);
}

void segmap_set(uintptr_t region_addr, unsigned v)
{
	uintptr_t i = region_addr >> HAK_SEG_SHIFT;
	hak_assert(i < HAK_SEGMAP_ENTRIES);
	/* clear first, so that no reader sees both bits */
	if (v != SEGMAP_HERE)
		segmap_put(segmap_here, i, false);
	if (v != SEGMAP_PREV)
		segmap_put(segmap_prev, i, false);
	if (v == SEGMAP_HERE)
		segmap_put(segmap_here, i, true);
	else if (v == SEGMAP_PREV)
		segmap_put(segmap_prev, i, true);
}

unsigned segmap_get(uintptr_t region_addr)
{
	uintptr_t i = region_addr >> HAK_SEG_SHIFT;
	if (i >= HAK_SEGMAP_ENTRIES)
		return SEGMAP_NONE;
	if (segmap_bit(segmap_here, i))
		return SEGMAP_HERE;
	return segmap_bit(segmap_prev, i) ? SEGMAP_PREV : SEGMAP_NONE;
}

/* Global lists, each under its own lock.  Lock order (atfork takes them in
 * this order): thread.c's heap lock, fallback heap lock, pool.c's shard
 * locks, abandoned lock, cache lock, a huge cache's lock (one at a
 * time). */
static struct hak_lock abandoned_lock = HAK_LOCK_INIT;
/* abandoned[t]: a queue, oldest first, appended at abandoned_tail[t] */
static struct segment *abandoned[TIER_COUNT], *abandoned_tail[TIER_COUNT];
static uint64_t abandoned_count;

static struct hak_lock cache_lock = HAK_LOCK_INIT;
static struct segment *cache_head; /* most recently released first */
static uint64_t cache_count;

static _Atomic uint64_t seg_in_use, seg_peak;

static void seg_count(int64_t d)
{
	uint64_t now = atomic_fetch_add_explicit(&seg_in_use, (uint64_t)d, memory_order_relaxed) + (uint64_t)d;
	uint64_t peak = atomic_load_explicit(&seg_peak, memory_order_relaxed);
	while (d > 0 && now > peak &&
	       !atomic_compare_exchange_weak_explicit(&seg_peak, &peak, now, memory_order_relaxed,
						      memory_order_relaxed))
		;
}

static void segment_init(struct segment *seg, struct heap *h, int tier, unsigned slab_shift)
{
	unsigned n = HAK_TIER_NSLABS(slab_shift);
	/* the slab descriptors a tier of fewer slots never uses stay as
	 * they are: their pages are not touched (a large segment's 128
	 * descriptors fill three) */
	memset(seg, 0, offsetof(struct segment, slabs) + n * sizeof(struct slab));
	seg->magic = HAK_SEG_MAGIC;
	seg->tier = (uint8_t)tier;
	seg->slab_shift = (uint8_t)slab_shift;
	seg->nslabs = (uint8_t)n;
	for (unsigned i = 0; i < seg->nslabs; i++) {
		seg->slabs[i].index = (uint8_t)i;
		seg->slabs[i].nslots = 1;
	}
	atomic_store_explicit(&seg->owner, h, memory_order_release);
}

struct segment *segment_alloc(struct heap *h, int tier, unsigned slab_shift)
{
	struct segment *seg = NULL;
	bool resident = false;
	uint64_t since = 0;
	hak_lock(&cache_lock);
	if (cache_head) {
		seg = cache_head;
		cache_head = seg->next;
		cache_count--;
		resident = !seg->purged;
		since = seg->cached_since;
	}
	hak_unlock(&cache_lock);
	if (seg == NULL) {
		seg = os_map_aligned(HAK_SEG_SIZE, HAK_SEG_SIZE);
		if (seg == NULL)
			return NULL;
		/* the secure build's guard page after the header (types.h,
		 * HAK_SEG_META); a cached segment keeps it */
		if (HAK_SEG_GUARD)
			os_guard((uint8_t *)seg + HAK_SEG_HDR, HAK_SEG_GUARD);
	}
	segment_init(seg, h, tier, slab_shift);
	/* A cached segment not purged yet may hold resident pages in any
	 * slot: all of them dirty, so that they are taken first and the
	 * rest goes back a purge delay after it was cached, as for slots
	 * freed in use.  Without this its free slots' pages would stay
	 * resident, unseen, for as long as the segment lives. */
	if (resident) {
		segment_dirty_mark(seg, mask_low(seg->nslabs), since);
	}
	segmap_set((uintptr_t)seg, SEGMAP_HERE);
	seg_count(1);
	return seg;
}

/* An empty segment leaves its heap: keep it in the cache (up to
 * HAKMEM_SEGMENT_CACHE), else unmap it.  'idle': it waited a purge delay
 * empty with its heap already (segment_release_idle). */
static void segment_release_(struct segment *seg, bool idle)
{
	hak_assert(seg->used_mask == 0);
	segmap_set((uintptr_t)seg, SEGMAP_NONE);
	atomic_store_explicit(&seg->owner, NULL, memory_order_relaxed);
	seg_count(-1);
	/* an idle one's pages waited their delay: they go now, not after
	 * another one in the cache (the header page holds the cache link) */
	if (idle)
		purge_pages((uint8_t *)seg + HAK_PAGE, HAK_SEG_SIZE - HAK_PAGE);
	uint64_t now = os_now_ms();
	hak_lock(&cache_lock);
	if (cache_count < (uint64_t)KNOB(segment_cache)) {
		/* Slabs that were never purged make the whole segment dirty. */
		seg->purged = idle;
		seg->cached_since = now;
		seg->next = cache_head;
		cache_head = seg;
		cache_count++;
		seg = NULL;
	}
	hak_unlock(&cache_lock);
	if (seg)
		os_unmap(seg, HAK_SEG_SIZE);
	segment_cache_collect(false);
}

void segment_release(struct segment *seg)
{
	segment_release_(seg, false);
}

void segment_release_idle(struct segment *seg)
{
	segment_release_(seg, true);
}

/* Give cached segments older than the purge delay back to the OS (the
 * mapping stays, the pages go). */
void segment_cache_collect(bool force)
{
	uint64_t now = os_now_ms();
	hak_lock(&cache_lock);
	for (struct segment *s = cache_head; s; s = s->next) {
		if (s->purged || !purge_old(s->cached_since, now, force))
			continue;
		/* keep the header page: it holds the cache link */
		purge_pages((uint8_t *)s + HAK_PAGE, HAK_SEG_SIZE - HAK_PAGE);
		s->purged = 1;
	}
	hak_unlock(&cache_lock);
}

bool segment_cache_release(void)
{
	hak_lock(&cache_lock);
	struct segment *list = cache_head;
	cache_head = NULL;
	cache_count = 0;
	hak_unlock(&cache_lock);
	bool any = list != NULL;
	while (list) {
		struct segment *next = list->next;
		os_unmap(list, HAK_SEG_SIZE);
		list = next;
	}
	return any;
}

void segment_dirty_mark(struct segment *seg, segmask_t mask, uint64_t now)
{
	if (seg->dirty == 0)
		seg->dirty_since = now;
	seg->dirty |= mask;
	for (segmask_t m = mask; m;) { /* run by run: a freed run is one */
		unsigned i, n = mask_take_run(&m, &i);
		for (unsigned j = i; j < i + n; j++)
			seg->dirty_at[j] = now;
	}
}

segmask_t segment_dirty_due(struct segment *seg, uint64_t now, bool force, uint64_t *next)
{
	segmask_t due = 0;
	uint64_t oldest = 0;
	for (segmask_t m = seg->dirty; m; m &= m - 1) {
		unsigned i = mask_first(m);
		uint64_t at = seg->dirty_at[i];
		if (purge_old(at, now, force))
			due |= mask_bit(i);
		else if (oldest == 0 || at < oldest)
			oldest = at;
	}
	if (oldest != 0) {
		seg->dirty_since = oldest;
		if (next)
			purge_note(next, oldest);
	}
	return due;
}

void segment_abandon(struct segment *seg)
{
	atomic_store_explicit(&seg->owner, NULL, memory_order_release);
	seg->cached_since = os_now_ms();
	hak_lock(&abandoned_lock);
	seg->prev = NULL;
	seg->next = NULL;
	if (abandoned_tail[seg->tier])
		abandoned_tail[seg->tier]->next = seg;
	else
		__atomic_store_n(&abandoned[seg->tier], seg, __ATOMIC_RELAXED);
	abandoned_tail[seg->tier] = seg;
	abandoned_count++;
	hak_unlock(&abandoned_lock);
}

/* Can seg (abandoned: no one writes its slabs but remote pushes) serve a
 * refill: a free slot, or a slab with free blocks, carved or not, or
 * blocks waiting on its remote list? */
static bool seg_has_room(struct segment *seg)
{
	if (seg->used_mask != mask_low(seg->nslabs))
		return true;
	/* every slot in use: the slabs, head to head (a large run's later
	 * slots keep what they held as heads before) */
	for (unsigned i = 0; i < seg->nslabs; i += seg->slabs[i].nslots) {
		struct slab *s = &seg->slabs[i];
		if (s->nfree || s->carved < s->capacity ||
		    atomic_load_explicit(&s->remote, memory_order_relaxed) != NULL)
			return true;
	}
	return false;
}

/* Take the abandoned segment of 'tier' that waited longest and has room
 * (idle_now 0) or waited a purge delay on the list (idle_now: the time
 * now).  The oldest first: taking the newest, each new thread would adopt
 * again what the last one left, while the older segments only filled
 * with the blocks other threads free into them, which wait on their
 * slabs' remote lists for an owner.
 *
 * A refill looks at the first ADOPT_LOOKS only (looks), and one it finds
 * without room goes to the back of the queue: a tiny refill looks here
 * before every new slab, under a lock all threads share, and a program
 * whose exited threads left segments full of live blocks must not make
 * each refill walk all of them.  hak_collect walks the whole list. */
#define ADOPT_LOOKS 8
static struct segment *abandoned_take(int tier, uint64_t idle_now, unsigned looks)
{
	struct segment *seg = NULL, *prev = NULL;
	if (__atomic_load_n(&abandoned[tier], __ATOMIC_RELAXED) == NULL)
		return NULL; /* racy peek: a miss only delays adoption */
	hak_lock(&abandoned_lock);
	if (looks) {
		for (unsigned i = 0; i < looks; i++) {
			struct segment *head = abandoned[tier];
			if (head == NULL || seg_has_room(head)) {
				seg = head;
				break;
			}
			if (head->next == NULL)
				break; /* alone: nothing to rotate */
			__atomic_store_n(&abandoned[tier], head->next, __ATOMIC_RELAXED);
			head->next = NULL;
			abandoned_tail[tier]->next = head;
			abandoned_tail[tier] = head;
		}
	} else {
		for (seg = abandoned[tier]; seg; prev = seg, seg = seg->next)
			if (idle_now ? seg->cached_since <= idle_now && purge_old(seg->cached_since, idle_now, false)
				     : seg_has_room(seg))
				break;
	}
	if (seg) {
		if (prev)
			prev->next = seg->next;
		else
			__atomic_store_n(&abandoned[tier], seg->next, __ATOMIC_RELAXED);
		if (abandoned_tail[tier] == seg)
			abandoned_tail[tier] = prev;
		abandoned_count--;
	}
	hak_unlock(&abandoned_lock);
	return seg;
}

/* A segment with no room would give the refill nothing, and its memory
 * would stay with this thread, which may then sleep: left for the blocks
 * freed into it, or for the purge thread. */
struct segment *segment_adopt(int tier)
{
	return abandoned_take(tier, 0, 0);
}

struct segment *segment_adopt_refill(int tier)
{
	return abandoned_take(tier, 0, ADOPT_LOOKS);
}

/* Oldest first on the list (a refill moves one without room to the
 * back): the idle ones are at the front. */
struct segment *segment_adopt_idle(int tier, uint64_t now)
{
	return abandoned_take(tier, now, 0);
}

void segment_fork_child(void)
{
	if (hak_lock_after_fork(&abandoned_lock) < 0) {
		for (int t = 0; t < TIER_COUNT; t++)
			abandoned[t] = abandoned_tail[t] = NULL;
		abandoned_count = 0;
	}
	if (hak_lock_after_fork(&cache_lock) < 0) {
		cache_head = NULL;
		cache_count = 0;
	}
}

void segment_counts(uint64_t *in_use, uint64_t *peak, uint64_t *cached, uint64_t *nabandoned)
{
	*in_use = atomic_load_explicit(&seg_in_use, memory_order_relaxed);
	*peak = atomic_load_explicit(&seg_peak, memory_order_relaxed);
	hak_lock(&cache_lock);
	*cached = cache_count;
	hak_unlock(&cache_lock);
	hak_lock(&abandoned_lock);
	*nabandoned = abandoned_count;
	hak_unlock(&abandoned_lock);
}

/* ---- doubly linked lists of segments (a heap's, a pool shard's) ---- */

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

