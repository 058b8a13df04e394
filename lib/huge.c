/* huge.c - huge blocks (> 1 MiB): a range of mapped 2 MiB regions each.
 *
 * Each block is a whole number of 2 MiB regions, 2 MiB-aligned, with the
 * segment header in its first page and the block at base + huge_off.  A
 * block aligned to 2 MiB or more sits at base + 2 MiB and its region is
 * marked SEGMAP_PREV.  os_map_aligned places each new mapping just below
 * the last one, so that the kernel merges them into one VMA: 70,000
 * blocks are a handful of kernel mappings, not 70,000 (a process may hold
 * only vm.max_map_count).
 *
 * Freed ranges wait in a cache for reuse.  There are HUGE_SHARDS caches,
 * each under its own lock, and each thread uses one (given in turn to the
 * threads as they first need one): a block goes back to the cache of the
 * thread that allocated it (its header says which), so that threads that
 * each allocate and free their own huge blocks never share a lock or a
 * cache line; a thread whose cache holds nothing that fits takes from the
 * others before it maps new memory.  In a cache, a freed range that
 * touches a cached one merges with it.  A request takes the front of the
 * smallest cached range that holds it, and the rest stays cached (a split
 * costs no system call, and the pages already faulted in are reused).  A
 * request no cached range holds takes the largest one of its cache whose
 * pages are still there, moved (mremap) to the start of a new mapping:
 * only the rest is faulted in (huge_map_reusing).  After the purge delay
 * the pages of a cached range go back (purge.c).  The caches keep at most
 * HAKMEM_HUGE_CACHE_MB together, each within its share (hquota_fit), and
 * each at most the peak of the live bytes of the blocks its threads
 * allocated less those live now (hcache_trim: the oldest ranges are
 * unmapped first), so that live blocks and cached ranges together never
 * need more than the live blocks once did; and at most HAKMEM_HUGE_CACHE
 * ranges, more while a program reuses more (its
 * built-in tuner: hcache_grow; what it allows now, the most of any cache,
 * is the knob huge_cache_cap).  realloc grows a huge block in place with
 * mremap, or moves it with mremap (copies it when the kernel refuses). */
#include "internal.h"

#include <errno.h>

#define HUGE_CACHE_MAX 64
#define HUGE_SHARDS 8

/* One cache.  Its lock is held for a few loads and stores: spin a little
 * before sleeping (glibc), or two threads that free and allocate huge
 * blocks hand it over through the kernel on every call. */
struct hshard {
	struct hak_lock lock;
	unsigned n;       /* ranges cached */
	/* The cache holds HAKMEM_HUGE_CACHE mappings, doubled grow times (at
	 * most HUGE_CACHE_MAX): a program that frees a batch of more huge
	 * blocks than that and allocates them again would unmap and map them
	 * on every round.  A miss within a purge delay of an eviction doubles
	 * it; a mapping that waits a purge delay unused (and is purged)
	 * halves it. */
	unsigned grow;
	size_t bytes;           /* of the cached ranges */
	size_t quota;           /* of HAKMEM_HUGE_CACHE_MB, this cache's share (hquota_fit) */
	uint64_t evicted_ms;    /* last eviction for room; 0: none since */
	/* cached_since of the oldest mapping not yet purged (0: none): a
	 * free looks through the caches only when that one is a purge delay
	 * old, or the cache holds more than its cap. */
	_Atomic uint64_t oldest_ms;
	/* Bytes of the blocks allocated through this cache and in use (their
	 * ranges), and the most there have been: the cache keeps at most the
	 * difference (and at most its quota), so that the pages of
	 * live blocks and cached ranges together stay within what the live
	 * blocks once needed.  Counted under the lock, as the counters: the
	 * calls take it anyway. */
	size_t live, live_peak;
	uint64_t allocs, hits, frees;
	/* seg[i]: c[i]->map_size in 2 MiB regions, so that a look through
	 * the cache reads these few lines, not a header in each range (lines
	 * another thread may have written last, which all fall in the same
	 * cache sets) */
	uint32_t seg[HUGE_CACHE_MAX];
	struct segment *c[HUGE_CACHE_MAX]; /* oldest first */
} __attribute__((aligned(64)));

static struct hshard hshards[HUGE_SHARDS] = {
	[0 ... HUGE_SHARDS - 1] = { .lock = HAK_LOCK_INIT_ADAPTIVE },
};
/* HAKMEM_HUGE_CACHE_MB bounds the caches together, shared out in quotas:
 * a cache whose bytes outgrow its quota takes more, in HQUOTA_CHUNK steps,
 * as long as the quotas together (hquota_used) stay within it, and gives
 * back what its bytes do not use when it is purged (huge_collect), when
 * another cache took its ranges (hcache_steal), and when a cache found
 * none left (hquota_short).  So a free checks a cache's bytes against its
 * own quota, and the shared count moves only when a cache grows or
 * shrinks by chunks, not on every huge malloc and free of every thread. */
#define HQUOTA_CHUNK ((size_t)8 << 20)
static _Atomic size_t hquota_used __attribute__((aligned(64)));
static _Atomic unsigned hquota_short; /* a cache wanted quota and found none */

static size_t round_chunk(size_t n)
{
	return (n + HQUOTA_CHUNK - 1) / HQUOTA_CHUNK * HQUOTA_CHUNK;
}

/* Give back the quota h's bytes do not use (whole chunks). */
static void hquota_release_spare(struct hshard *h) /* h->lock held */
{
	size_t keep = round_chunk(h->bytes);
	if (h->quota > keep) {
		atomic_fetch_sub_explicit(&hquota_used, h->quota - keep, memory_order_relaxed);
		h->quota = keep;
	}
}

/* Quota for h's bytes, as far as mb (HAKMEM_HUGE_CACHE_MB) leaves room
 * after the other caches' quotas; without room, the others are asked to
 * give back their spare (hquota_short). */
static void hquota_fit(struct hshard *h, size_t mb) /* h->lock held */
{
	size_t used = atomic_load_explicit(&hquota_used, memory_order_relaxed);
	if (used > mb || atomic_load_explicit(&hquota_short, memory_order_relaxed)) {
		if (used <= mb)
			atomic_store_explicit(&hquota_short, 0, memory_order_relaxed);
		hquota_release_spare(h);
		used = atomic_load_explicit(&hquota_used, memory_order_relaxed);
	}
	if (h->bytes <= h->quota)
		return;
	size_t want = round_chunk(h->bytes - h->quota);
	for (;;) {
		size_t room = mb > used ? mb - used : 0, take = want < room ? want : room;
		if (take == 0)
			break;
		if (atomic_compare_exchange_weak_explicit(&hquota_used, &used, used + take,
							  memory_order_relaxed, memory_order_relaxed)) {
			h->quota += take;
			break;
		}
	}
	if (h->bytes > h->quota)
		atomic_store_explicit(&hquota_short, 1, memory_order_relaxed);
}
/* 1 + the calling thread's cache; 0 until it first needs one */
static __thread uint8_t huge_tls_shard __attribute__((tls_model("initial-exec")));
static _Atomic unsigned huge_next_shard;

static unsigned my_shard(void)
{
	unsigned s = huge_tls_shard;
	if (unlikely(s == 0)) {
		s = 1 + atomic_fetch_add_explicit(&huge_next_shard, 1, memory_order_relaxed) % HUGE_SHARDS;
		huge_tls_shard = (uint8_t)s;
	}
	return s - 1;
}

static unsigned hcache_cap(const struct hshard *h) /* h->lock held */
{
	uint64_t cap = (uint64_t)KNOB(huge_cache) << h->grow;
	return cap > HUGE_CACHE_MAX ? HUGE_CACHE_MAX : (unsigned)cap;
}

static void huge_live_add_locked(struct hshard *h, size_t add, size_t sub) /* h->lock held */
{
	h->live += add - sub;
	if (h->live > h->live_peak)
		h->live_peak = h->live;
}

/* A block of size bytes made for cache h's thread (hit: from a cache). */
static void huge_count_new(struct hshard *h, size_t size, bool hit) /* h->lock held */
{
	huge_live_add_locked(h, size, 0);
	h->allocs++;
	h->hits += hit;
}

/* allocs: blocks made (counted in allocs) */
static void huge_live_add(unsigned shard, size_t add, size_t sub, unsigned allocs)
{
	struct hshard *h = &hshards[shard];
	hak_lock(&h->lock);
	huge_live_add_locked(h, add, sub);
	h->allocs += allocs;
	hak_unlock(&h->lock);
}

/* In the child of fork: if a thread that is gone was changing a cache,
 * its mappings are forgotten (leaked in the child). */
void huge_fork_child(void)
{
	size_t total = 0;
	for (unsigned i = 0; i < HUGE_SHARDS; i++) {
		struct hshard *h = &hshards[i];
		if (hak_lock_after_fork(&h->lock) < 0) {
			h->n = 0;
			h->bytes = 0;
			h->quota = 0;
			h->grow = 0;
			h->evicted_ms = 0;
			atomic_store_explicit(&h->oldest_ms, 0, memory_order_relaxed);
		}
		total += h->quota;
	}
	atomic_store_explicit(&hquota_used, total, memory_order_relaxed);
}

/* Mappings cached now in all the caches, and the most one cache may
 * hold now (published as the knob huge_cache_cap). */
unsigned huge_cache_state(unsigned *cap)
{
	unsigned n = 0, most = 0;
	for (unsigned i = 0; i < HUGE_SHARDS; i++) {
		struct hshard *h = &hshards[i];
		hak_lock(&h->lock);
		n += h->n;
		unsigned c = hcache_cap(h);
		most = c > most ? c : most;
		hak_unlock(&h->lock);
	}
	if (KNOB(huge_cache_cap) != most)
		atomic_store_explicit(&hak_cfg.huge_cache_cap, most, memory_order_relaxed);
	*cap = most;
	return n;
}

void huge_counts(uint64_t *allocs, uint64_t *hits, uint64_t *frees)
{
	*allocs = *hits = *frees = 0;
	for (unsigned i = 0; i < HUGE_SHARDS; i++) {
		struct hshard *h = &hshards[i];
		hak_lock(&h->lock);
		*allocs += h->allocs;
		*hits += h->hits;
		*frees += h->frees;
		hak_unlock(&h->lock);
	}
}

static size_t round_seg(size_t n)
{
	return (n + HAK_SEG_MASK) & ~HAK_SEG_MASK;
}

static void huge_mark(struct segment *seg, unsigned v)
{
	uintptr_t p = (uintptr_t)seg + seg->huge_off;
	segmap_set(p & ~(uintptr_t)HAK_SEG_MASK, v ? ((p - (uintptr_t)seg) < HAK_SEG_SIZE ? SEGMAP_HERE : SEGMAP_PREV) : SEGMAP_NONE);
}

bool huge_owns(struct segment *seg, const void *p)
{
	return seg->magic == HAK_SEG_MAGIC && (const uint8_t *)seg + seg->huge_off == (const uint8_t *)p;
}

size_t huge_usable(struct segment *seg, const void *p)
{
	(void)p;
	return seg->map_size - seg->huge_off;
}

static void hcache_remove(struct hshard *h, unsigned i) /* h->lock held */
{
	h->bytes -= h->c[i]->map_size;
	for (; i + 1 < h->n; i++) {
		h->c[i] = h->c[i + 1];
		h->seg[i] = h->seg[i + 1];
	}
	h->n--;
}

/* c[i] = s, with its size in seg[] (not in bytes) */
static void hcache_set(struct hshard *h, unsigned i, struct segment *s) /* h->lock held */
{
	h->c[i] = s;
	h->seg[i] = (uint32_t)(s->map_size >> HAK_SEG_SHIFT);
}

/* Take from cache h the smallest cached range of at least need bytes:
 * its first need bytes, the rest staying in the cache in its place (a
 * round-up would only keep pages resident that the block does not use),
 * or the whole range, up to need * HUGE_GROW_MAX, for a block that is
 * growing (realloc: a growing buffer will use the room).  own: h is the
 * caller's cache, which counts the block (made, live, a hit) and learns
 * from a miss. */
#define HUGE_GROW_MAX 4
static struct segment *hcache_take(struct hshard *h, size_t need, bool grow, bool own)
{
	struct segment *best = NULL;
	unsigned bi = 0;
	uint64_t limit = grow ? (uint64_t)need * HUGE_GROW_MAX : need;
	uint32_t nseg = (uint32_t)(need >> HAK_SEG_SHIFT), bseg = UINT32_MAX;
	hak_lock(&h->lock);
	for (unsigned i = 0; i < h->n; i++) {
		if (h->seg[i] >= nseg && h->seg[i] < bseg) {
			bseg = h->seg[i];
			bi = i;
		}
	}
	if (bseg != UINT32_MAX) {
		best = h->c[bi];
		hak_assert(best->map_size == (size_t)bseg << HAK_SEG_SHIFT);
	}
	if (best && best->map_size > limit) {
		/* split: the tail keeps the range's place, age and state */
		struct segment *tail = (struct segment *)((uint8_t *)best + need);
		tail->map_size = best->map_size - need;
		tail->cached_since = best->cached_since;
		tail->purged = best->purged;
		h->bytes -= need;
		best->map_size = need;
		hcache_set(h, bi, tail);
	} else if (best) {
		hcache_remove(h, bi);
	} else if (own && h->evicted_ms != 0) {
		/* a mapping evicted a moment ago might have served */
		if (!purge_old(h->evicted_ms, os_now_ms(), false) &&
		    hcache_cap(h) < HUGE_CACHE_MAX)
			h->grow++;
		h->evicted_ms = 0;
	}
	if (best && own)
		huge_count_new(h, best->map_size, true);
	else if (best)
		hquota_release_spare(h); /* the taker's cache will want it */
	hak_unlock(&h->lock);
	return best;
}

/* A miss in the caller's cache (shard me): a range of another cache,
 * counted in me (a hit).  Each is locked in turn, on a path that would
 * otherwise map new memory. */
static struct segment *hcache_steal(unsigned me, size_t need, bool grow)
{
	for (unsigned k = 1; k < HUGE_SHARDS; k++) {
		struct hshard *h = &hshards[(me + k) % HUGE_SHARDS];
		struct segment *s = hcache_take(h, need, grow, false);
		if (s != NULL) {
			struct hshard *m = &hshards[me];
			hak_lock(&m->lock);
			huge_count_new(m, s->map_size, true);
			hak_unlock(&m->lock);
			return s;
		}
	}
	return NULL;
}

bool huge_cache_release(void)
{
	struct segment *gone[HUGE_CACHE_MAX];
	bool any = false;
	for (unsigned k = 0; k < HUGE_SHARDS; k++) {
		struct hshard *h = &hshards[k];
		unsigned ngone;
		hak_lock(&h->lock);
		ngone = h->n;
		for (unsigned i = 0; i < h->n; i++)
			gone[i] = h->c[i];
		h->n = 0;
		h->bytes = 0;
		hquota_release_spare(h);
		h->grow = 0;
		atomic_store_explicit(&h->oldest_ms, 0, memory_order_relaxed);
		hak_unlock(&h->lock);
		for (unsigned i = 0; i < ngone; i++)
			os_unmap(gone[i], gone[i]->map_size);
		any |= ngone > 0;
	}
	os_unmap_retry(true);
	return any;
}

/* A mapping the kernel refused: give back the address space the caches
 * hold (free memory must be usable) and say whether trying again can
 * help. */
static bool huge_map_retry(bool *retried)
{
	if (*retried)
		return false;
	*retried = true;
	bool a = huge_cache_release();
	bool b = segment_cache_release();
	return a || b;
}

/* Write the header of a huge mapping (seg->map_size already set) for a
 * block of the thread whose cache is shard; returns the block. */
static void *huge_header_init(struct segment *seg, size_t off, size_t align, unsigned shard)
{
	size_t map_size = seg->map_size;
	memset(seg, 0, sizeof(*seg) - sizeof(seg->slabs));
	seg->magic = HAK_SEG_MAGIC;
	seg->tier = TIER_HUGE;
	seg->shard = (uint8_t)shard;
	/* the free fast path reads slabs[0].owner of any segment: none */
	seg->slab_shift = HAK_SEG_SHIFT;
	atomic_store_explicit(&seg->slabs[0].owner, NULL, memory_order_relaxed);
	seg->map_size = map_size;
	seg->huge_off = off;
	seg->huge_align = align;
	return (uint8_t *)seg + off;
}

static unsigned hcache_trim(struct hshard *h, struct segment **gone, unsigned ngone);

/* A miss: the largest range of cache h whose pages are still there (not
 * purged), smaller than need, taken out of the cache; NULL if none. */
static struct segment *hcache_take_dirty(struct hshard *h, size_t need)
{
	struct segment *best = NULL;
	unsigned bi = 0;
	hak_lock(&h->lock);
	for (unsigned i = 0; i < h->n; i++) {
		struct segment *s = h->c[i];
		if (!s->purged && s->map_size < need && (!best || s->map_size > best->map_size)) {
			best = s;
			bi = i;
		}
	}
	if (best)
		hcache_remove(h, bi);
	hak_unlock(&h->lock);
	return best;
}

/* A new mapping of need bytes that starts with the pages of a range of
 * cache h (moved there by mremap, not copied): only the rest is faulted
 * in when the program touches it.  *dirty: the bytes at its start that
 * may hold old data.  NULL when no cached range has pages to give. */
static struct segment *huge_map_reusing(struct hshard *h, size_t need, size_t *dirty)
{
	struct segment *r = hcache_take_dirty(h, need);
	if (r == NULL)
		return NULL;
	size_t rsize = r->map_size;
	struct segment *dst = os_map_aligned(need, HAK_SEG_SIZE);
	if (dst != NULL && os_remap_move(r, rsize, need, dst) != NULL) {
		*dirty = rsize;
	} else {
		*dirty = 0; /* refused (counted): dst is a plain new mapping */
		os_unmap(r, rsize);
	}
	if (dst != NULL)
		dst->map_size = need;
	return dst;
}

/* A new mapping of size bytes for a block of cache h: counted, and as it
 * made the live bytes grow, the cache may keep less now (hcache_trim);
 * done before the program touches the new pages. */
static void huge_account_map(struct hshard *h, size_t size)
{
	struct segment *gone[HUGE_CACHE_MAX + 1];
	unsigned ngone;
	hak_lock(&h->lock);
	huge_count_new(h, size, false);
	ngone = hcache_trim(h, gone, 0);
	hak_unlock(&h->lock);
	while (ngone > 0) {
		ngone--;
		os_unmap(gone[ngone], gone[ngone]->map_size);
	}
}

void *huge_alloc(size_t n, size_t align, bool zero, bool grow)
{
	if (align < 16)
		align = 16;
	/* a block of 0 bytes is still a block: at least one byte of its own
	 * (with align >= 2 MiB it would start past its mapping) */
	if (n == 0)
		n = 1;
	size_t off = align >= HAK_SEG_SIZE ? HAK_SEG_SIZE : (align > HAK_PAGE ? align : HAK_PAGE);
	if (n > (size_t)PTRDIFF_MAX - 2 * HAK_SEG_SIZE - align) {
		errno = ENOMEM;
		return NULL;
	}
	size_t need = round_seg(off + n);
	unsigned me = my_shard();
	struct hshard *h = &hshards[me];
	struct segment *seg = NULL;
	bool fresh = true, hit = false;
	size_t dirty = need; /* bytes at the start that may hold old data */
	if (align < HAK_SEG_SIZE && KNOB(huge_cache) > 0) {
		seg = hcache_take(h, need, grow, true);
		if (seg == NULL)
			seg = hcache_steal(me, need, grow);
		hit = seg != NULL;
		if (seg)
			fresh = seg->purged;
		else if ((seg = huge_map_reusing(h, need, &dirty)) != NULL)
			fresh = dirty == 0;
	}
	bool retried = false;
	while (seg == NULL) {
		if (align < HAK_SEG_SIZE) {
			seg = os_map_aligned(need, HAK_SEG_SIZE);
		} else {
			/* header region just below the aligned block */
			uint8_t *m = os_map_aligned(need - HAK_SEG_SIZE + align, align);
			if (m) {
				if (align > HAK_SEG_SIZE)
					os_unmap(m, align - HAK_SEG_SIZE);
				seg = (struct segment *)(m + align - HAK_SEG_SIZE);
			}
		}
		if (seg == NULL && !huge_map_retry(&retried)) {
			errno = ENOMEM;
			return NULL;
		}
		if (seg)
			seg->map_size = need;
	}
	void *p = huge_header_init(seg, off, align, me);
	if (!hit)
		huge_account_map(h, seg->map_size);
	if (zero && !fresh)
		memset(p, 0, n < dirty - off ? n : dirty - off);
	huge_mark(seg, 1);
	return p;
}

/* b, a cached range just after a, joins it (neither is in a cache).  The
 * result is purged only when both were; then b's header, inside it now,
 * is cleared too: every byte of a purged range past its first page reads
 * zero (huge_alloc's calloc relies on it). */
static struct segment *hcache_join(struct segment *a, struct segment *b)
{
	size_t bsize = b->map_size;
	uint64_t since = b->cached_since > a->cached_since ? b->cached_since : a->cached_since;
	bool purged = a->purged && b->purged;
	if (purged)
		memset(b, 0, sizeof(*b));
	a->map_size += bsize;
	a->cached_since = since;
	a->purged = purged;
	return a;
}

/* Keep cache h within its bytes: its quota of HAKMEM_HUGE_CACHE_MB
 * (hquota_fit), and the peak of its live bytes less those live now.  The
 * oldest ranges go first (into gone[] from index ngone, to be unmapped);
 * of the last one only the tail beyond the cap.  Returns the new count in
 * gone[]. */
static unsigned hcache_trim(struct hshard *h, struct segment **gone, unsigned ngone) /* h->lock held */
{
	size_t mb = (size_t)KNOB(huge_cache_mb) << 20;
	hquota_fit(h, mb);
	size_t cap = h->quota < mb ? h->quota : mb;
	size_t live = h->live, peak = h->live_peak;
	if (live >= peak || peak - live < cap)
		cap = live >= peak ? 0 : peak - live;
	else if (h->bytes > cap)
		cap -= cap / 4; /* over its quota: a quarter more goes,
				 * so that a stream of frees is not one
				 * munmap each */
	while (h->bytes > cap) {
		struct segment *s = h->c[0];
		size_t ex = round_seg(h->bytes - cap);
		if (ex < s->map_size) {
			struct segment *tail = (struct segment *)((uint8_t *)s + s->map_size - ex);
			tail->map_size = ex;
			s->map_size -= ex;
			h->seg[0] = (uint32_t)(s->map_size >> HAK_SEG_SHIFT);
			h->bytes -= ex;
			gone[ngone++] = tail;
			break;
		}
		gone[ngone++] = s;
		hcache_remove(h, 0);
	}
	return ngone;
}

/* Put seg into cache h, joined with the cached ranges it touches; the
 * oldest go (into gone[], to be unmapped) beyond the cap on ranges
 * (hcache_cap) and beyond the cap on bytes (hcache_trim), seg itself if
 * it is larger than that.  Returns how many went. */
static unsigned hcache_put(struct hshard *h, struct segment *seg, struct segment **gone) /* h->lock held */
{
	for (unsigned i = 0; i < h->n;) {
		struct segment *c = h->c[i];
		if ((uint8_t *)c + ((size_t)h->seg[i] << HAK_SEG_SHIFT) == (uint8_t *)seg) {
			hcache_remove(h, i);
			seg = hcache_join(c, seg);
		} else if ((uint8_t *)seg + seg->map_size == (uint8_t *)c) {
			hcache_remove(h, i);
			seg = hcache_join(seg, c);
		} else {
			i++;
		}
	}
	unsigned ngone = 0;
	uint64_t now = seg->cached_since;
	while (h->n >= hcache_cap(h)) {
		gone[ngone++] = h->c[0];
		hcache_remove(h, 0);
		h->evicted_ms = now;
	}
	hcache_set(h, h->n++, seg);
	h->bytes += seg->map_size;
	if (atomic_load_explicit(&h->oldest_ms, memory_order_relaxed) == 0)
		atomic_store_explicit(&h->oldest_ms, now, memory_order_relaxed);
	return hcache_trim(h, gone, ngone);
}

void huge_free(struct segment *seg, void *p)
{
	(void)p;
	huge_mark(seg, 0);
	struct hshard *h = &hshards[seg->shard % HUGE_SHARDS];
	struct segment *gone[HUGE_CACHE_MAX + 1];
	unsigned ngone = 0;
	bool over = false;
	if (KNOB(huge_cache) > 0 && seg->huge_off < HAK_SEG_SIZE) {
		seg->cached_since = os_now_ms();
		seg->purged = 0;
		hak_lock(&h->lock);
		huge_live_add_locked(h, 0, seg->map_size);
		h->frees++;
		ngone = hcache_put(h, seg, gone);
		over = h->n > hcache_cap(h);
		hak_unlock(&h->lock);
	} else {
		gone[ngone++] = seg;
		hak_lock(&h->lock);
		huge_live_add_locked(h, 0, seg->map_size);
		h->frees++;
		/* switched off (tests do): what this cache still holds goes
		 * (huge_collect, which looks at every cache) */
		over = KNOB(huge_cache) == 0 && h->n > 0;
		hak_unlock(&h->lock);
	}
	while (ngone > 0) {
		ngone--;
		os_unmap(gone[ngone], gone[ngone]->map_size);
	}
	os_unmap_retry(false);
	uint64_t oldest = atomic_load_explicit(&h->oldest_ms, memory_order_relaxed);
	if (over || (oldest != 0 && purge_old(oldest, os_now_ms(), false)))
		huge_collect(false);
}

/* Purge cached mappings older than the purge delay (all: force), in
 * every cache. */
void huge_collect(bool force)
{
	uint64_t now = os_now_ms();
	struct segment *gone[HUGE_CACHE_MAX];
	for (unsigned k = 0; k < HUGE_SHARDS; k++) {
		struct hshard *h = &hshards[k];
		unsigned ngone = 0;
		hak_lock(&h->lock);
		uint64_t oldest = 0;
		for (unsigned i = 0; i < h->n; i++) {
			struct segment *s = h->c[i];
			if (s->purged)
				continue;
			if (!purge_old(s->cached_since, now, force)) {
				if (oldest == 0 || s->cached_since < oldest)
					oldest = s->cached_since;
				continue;
			}
			purge_pages((uint8_t *)s + HAK_PAGE, s->map_size - HAK_PAGE);
			s->purged = 1;
			if (h->grow > 0) /* unused for a delay: the cache shrinks */
				h->grow--;
		}
		atomic_store_explicit(&h->oldest_ms, oldest, memory_order_relaxed);
		if (force)
			h->grow = 0;
		/* beyond the cap now: the oldest go */
		while (h->n > hcache_cap(h)) {
			gone[ngone++] = h->c[0];
			hcache_remove(h, 0);
		}
		hquota_release_spare(h);
		hak_unlock(&h->lock);
		while (ngone > 0) {
			ngone--;
			os_unmap(gone[ngone], gone[ngone]->map_size);
		}
	}
	os_unmap_retry(force);
}

/* Resize a huge block to n > HAK_LARGE_MAX bytes.  NULL (errno ENOMEM)
 * leaves the block as it was. */
void *huge_realloc(struct segment *seg, void *p, size_t n)
{
	size_t usable = huge_usable(seg, p);
	if (n <= usable && n >= usable / 2)
		return p;
	if (n > (size_t)PTRDIFF_MAX - 2 * HAK_SEG_SIZE - seg->huge_align) {
		errno = ENOMEM;
		return NULL;
	}
	size_t need = round_seg(seg->huge_off + n), old = seg->map_size;
	if (need < old) {
		os_unmap((uint8_t *)seg + need, old - need);
		seg->map_size = need;
		huge_live_add(seg->shard % HUGE_SHARDS, 0, old - need, 0);
		return p;
	}
	int saved = errno;
	/* grow in place when the pages after the mapping are free */
	if (os_remap(seg, old, need) != NULL) {
		seg->map_size = need;
		huge_live_add(seg->shard % HUGE_SHARDS, need, old, 0);
		return p;
	}
	/* a cached mapping with room to grow: its pages are already there */
	if (seg->huge_align < HAK_SEG_SIZE && KNOB(huge_cache) > 0) {
		size_t noff = seg->huge_off;
		unsigned me = my_shard();
		struct segment *c = hcache_take(&hshards[me], round_seg(noff + n), true, true);
		if (c) {
			void *q = huge_header_init(c, noff, seg->huge_align, me);
			memcpy(q, p, usable);
			huge_mark(c, 1);
			huge_free(seg, p);
			errno = saved;
			return q;
		}
	}
	/* move: reserve an aligned range, then move the pages onto it */
	size_t align = seg->huge_align > HAK_SEG_SIZE ? seg->huge_align : HAK_SEG_SIZE;
	uint8_t *dst;
	bool retried = false;
	while ((dst = os_map_aligned(need + (seg->huge_off >= HAK_SEG_SIZE ? align : 0), align)) == NULL &&
	       huge_map_retry(&retried))
		;
	errno = saved;
	if (dst == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	size_t reserved = need + (seg->huge_off >= HAK_SEG_SIZE ? align : 0);
	uint8_t *base = dst;
	if (seg->huge_off >= HAK_SEG_SIZE) {
		/* keep the block aligned: header region just below an aligned address */
		base = dst + align - HAK_SEG_SIZE;
		os_unmap(dst, align - HAK_SEG_SIZE);
		reserved -= align - HAK_SEG_SIZE;
		os_unmap(base + need, reserved - need);
	}
	huge_mark(seg, 0);
	if (os_remap_move(seg, old, need, base) == NULL) {
		/* refused (counted, os.c): the reservation becomes the new
		 * block and the pages are copied */
		huge_mark(seg, 1);
		struct segment *ns = (struct segment *)base;
		ns->map_size = need;
		unsigned me = my_shard();
		void *q = huge_header_init(ns, seg->huge_off, seg->huge_align, me);
		huge_live_add(me, need, 0, 1);
		memcpy(q, p, usable);
		huge_mark(ns, 1);
		huge_free(seg, p);
		errno = saved;
		return q;
	}
	struct segment *ns = (struct segment *)base;
	ns->map_size = need;
	huge_live_add(ns->shard % HUGE_SHARDS, need, old, 0);
	huge_mark(ns, 1);
	errno = saved;
	return (uint8_t *)ns + ns->huge_off;
}
