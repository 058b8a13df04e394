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
 * Freed ranges wait in a cache (hcache) for reuse.  A freed range that
 * touches a cached one merges with it.  A request takes the front of the
 * smallest cached range that holds it, and the rest stays cached (a split
 * costs no system call, and the pages already faulted in are reused).  A
 * request no cached range holds takes the largest one whose pages are
 * still there, moved (mremap) to the start of a new mapping: only the
 * rest is faulted in (huge_map_reusing).  After the purge delay the pages
 * of a cached range go back (purge.c).  The cache keeps at most
 * HAKMEM_HUGE_CACHE_MB, and at most the peak of live huge bytes less the
 * live bytes now (hcache_trim: the oldest ranges are unmapped first), so
 * that live blocks and cached ranges together never need more than the
 * live blocks once did; and at most HAKMEM_HUGE_CACHE ranges, more while
 * a program reuses more (its built-in tuner: hcache_grow; what it allows
 * now is the knob huge_cache_cap).  realloc grows a huge block in place
 * with mremap, or moves it with mremap (copies it when the kernel
 * refuses). */
#include "internal.h"

#include <errno.h>

#define HUGE_CACHE_MAX 64

/* Held for a few loads and stores: spin a little before sleeping (glibc),
 * or two threads that free and allocate huge blocks hand it over through
 * the kernel on every call. */
static struct hak_lock huge_mutex = HAK_LOCK_INIT_ADAPTIVE;
static struct segment *hcache[HUGE_CACHE_MAX]; /* oldest first */
static unsigned hcache_n;
static size_t hcache_bytes; /* bytes of the cached ranges (<= HAKMEM_HUGE_CACHE_MB) */
/* The cache holds HAKMEM_HUGE_CACHE mappings, doubled hcache_grow times
 * (at most HUGE_CACHE_MAX): a program that frees a batch of more huge
 * blocks than that and allocates them again would unmap and map them on
 * every round.  A miss within a purge delay of an eviction doubles it; a
 * mapping that waits a purge delay unused (and is purged) halves it. */
static unsigned hcache_grow;
static uint64_t hcache_evicted_ms; /* last eviction for room; 0: none since */
/* cached_since of the oldest mapping not yet purged (0: none): a free
 * looks through the cache only when that one is a purge delay old, or the
 * cache holds more than its cap. */
static _Atomic uint64_t hcache_oldest_ms;

/* The tuner's output, published in the knob table (huge_cache_cap). */
static unsigned hcache_cap(void) /* huge_mutex held */
{
	uint64_t cap = (uint64_t)KNOB(huge_cache) << hcache_grow;
	unsigned v = cap > HUGE_CACHE_MAX ? HUGE_CACHE_MAX : (unsigned)cap;
	if (KNOB(huge_cache_cap) != v)
		atomic_store_explicit(&hak_cfg.huge_cache_cap, v, memory_order_relaxed);
	return v;
}
static _Atomic uint64_t huge_allocs, huge_hits, huge_frees;
/* Bytes of the huge blocks in use (their ranges), and the most there
 * have been: the cache keeps at most the difference (and at most
 * HAKMEM_HUGE_CACHE_MB), so that the pages of live blocks and cached
 * ranges together stay within what the live blocks once needed. */
static _Atomic size_t huge_live, huge_live_peak;

static void huge_live_add(size_t add, size_t sub)
{
	size_t now = atomic_fetch_add_explicit(&huge_live, add - sub, memory_order_relaxed) + add - sub;
	size_t peak = atomic_load_explicit(&huge_live_peak, memory_order_relaxed);
	while (now > peak && !atomic_compare_exchange_weak_explicit(&huge_live_peak, &peak, now,
								   memory_order_relaxed, memory_order_relaxed))
		;
}

/* In the child of fork: if a thread that is gone was changing the cache,
 * its mappings are forgotten (leaked in the child). */
void huge_fork_child(void)
{
	if (hak_lock_after_fork(&huge_mutex) < 0) {
		hcache_n = 0;
		hcache_bytes = 0;
		hcache_grow = 0;
		hcache_evicted_ms = 0;
		atomic_store_explicit(&hcache_oldest_ms, 0, memory_order_relaxed);
	}
}

unsigned huge_cache_state(unsigned *cap)
{
	hak_lock(&huge_mutex);
	unsigned n = hcache_n;
	*cap = hcache_cap();
	hak_unlock(&huge_mutex);
	return n;
}

void huge_counts(uint64_t *allocs, uint64_t *hits, uint64_t *frees)
{
	*allocs = atomic_load_explicit(&huge_allocs, memory_order_relaxed);
	*hits = atomic_load_explicit(&huge_hits, memory_order_relaxed);
	*frees = atomic_load_explicit(&huge_frees, memory_order_relaxed);
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

static void hcache_remove(unsigned i) /* huge_mutex held */
{
	hcache_bytes -= hcache[i]->map_size;
	for (; i + 1 < hcache_n; i++)
		hcache[i] = hcache[i + 1];
	hcache_n--;
}

/* Take the smallest cached range of at least need bytes: its first need
 * bytes, the rest staying in the cache in its place (a round-up would
 * only keep pages resident that the block does not use), or the whole
 * range, up to need * HUGE_GROW_MAX, for a block that is growing (realloc:
 * a growing buffer will use the room). */
#define HUGE_GROW_MAX 4
static struct segment *hcache_take(size_t need, bool grow)
{
	struct segment *best = NULL;
	unsigned bi = 0;
	uint64_t limit = grow ? (uint64_t)need * HUGE_GROW_MAX : need;
	hak_lock(&huge_mutex);
	for (unsigned i = 0; i < hcache_n; i++) {
		struct segment *s = hcache[i];
		if (s->map_size >= need && (!best || s->map_size < best->map_size)) {
			best = s;
			bi = i;
		}
	}
	if (best && best->map_size > limit) {
		/* split: the tail keeps the range's place, age and state */
		struct segment *tail = (struct segment *)((uint8_t *)best + need);
		tail->map_size = best->map_size - need;
		tail->cached_since = best->cached_since;
		tail->purged = best->purged;
		hcache_bytes -= need;
		best->map_size = need;
		hcache[bi] = tail;
	} else if (best) {
		hcache_remove(bi);
	} else if (hcache_evicted_ms != 0) {
		/* a mapping evicted a moment ago might have served */
		if (!purge_old(hcache_evicted_ms, os_now_ms(), false) &&
		    hcache_cap() < HUGE_CACHE_MAX)
			hcache_grow++;
		hcache_evicted_ms = 0;
	}
	hak_unlock(&huge_mutex);
	return best;
}

bool huge_cache_release(void)
{
	struct segment *gone[HUGE_CACHE_MAX];
	unsigned ngone;
	hak_lock(&huge_mutex);
	ngone = hcache_n;
	for (unsigned i = 0; i < hcache_n; i++)
		gone[i] = hcache[i];
	hcache_n = 0;
	hcache_bytes = 0;
	hcache_grow = 0;
	atomic_store_explicit(&hcache_oldest_ms, 0, memory_order_relaxed);
	hak_unlock(&huge_mutex);
	for (unsigned i = 0; i < ngone; i++)
		os_unmap(gone[i], gone[i]->map_size);
	os_unmap_retry(true);
	return ngone > 0;
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

/* Write the header of a huge mapping (seg->map_size already set); returns
 * the block. */
static void *huge_header_init(struct segment *seg, size_t off, size_t align)
{
	size_t map_size = seg->map_size;
	memset(seg, 0, sizeof(*seg) - sizeof(seg->slabs));
	seg->magic = HAK_SEG_MAGIC;
	seg->tier = TIER_HUGE;
	/* the free fast path reads slabs[0].owner of any segment: none */
	seg->slab_shift = HAK_SEG_SHIFT;
	atomic_store_explicit(&seg->slabs[0].owner, NULL, memory_order_relaxed);
	seg->map_size = map_size;
	seg->huge_off = off;
	seg->huge_align = align;
	return (uint8_t *)seg + off;
}

static unsigned hcache_trim(struct segment **gone, unsigned ngone);

/* A miss: the largest cached range whose pages are still there (not
 * purged), smaller than need, taken out of the cache; NULL if none. */
static struct segment *hcache_take_dirty(size_t need)
{
	struct segment *best = NULL;
	unsigned bi = 0;
	hak_lock(&huge_mutex);
	for (unsigned i = 0; i < hcache_n; i++) {
		struct segment *s = hcache[i];
		if (!s->purged && s->map_size < need && (!best || s->map_size > best->map_size)) {
			best = s;
			bi = i;
		}
	}
	if (best)
		hcache_remove(bi);
	hak_unlock(&huge_mutex);
	return best;
}

/* A new mapping of need bytes that starts with the pages of a cached
 * range (moved there by mremap, not copied): only the rest is faulted in
 * when the program touches it.  *dirty: the bytes at its start that may
 * hold old data.  NULL when no cached range has pages to give. */
static struct segment *huge_map_reusing(size_t need, size_t *dirty)
{
	struct segment *r = hcache_take_dirty(need);
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

/* A new mapping made the live bytes grow: the cache may keep less now
 * (hcache_trim); done before the program touches the new pages. */
static void huge_trim_after_map(void)
{
	struct segment *gone[HUGE_CACHE_MAX + 1];
	unsigned ngone;
	hak_lock(&huge_mutex);
	ngone = hcache_trim(gone, 0);
	hak_unlock(&huge_mutex);
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
	struct segment *seg = NULL;
	bool fresh = true, hit = false;
	size_t dirty = need; /* bytes at the start that may hold old data */
	if (align < HAK_SEG_SIZE && KNOB(huge_cache) > 0) {
		seg = hcache_take(need, grow);
		hit = seg != NULL;
		if (seg) {
			fresh = seg->purged;
			atomic_fetch_add_explicit(&huge_hits, 1, memory_order_relaxed);
		} else if ((seg = huge_map_reusing(need, &dirty)) != NULL) {
			fresh = dirty == 0;
		}
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
	void *p = huge_header_init(seg, off, align);
	huge_live_add(seg->map_size, 0);
	if (!hit)
		huge_trim_after_map();
	if (zero && !fresh)
		memset(p, 0, n < dirty - off ? n : dirty - off);
	huge_mark(seg, 1);
	atomic_fetch_add_explicit(&huge_allocs, 1, memory_order_relaxed);
	return p;
}

/* b, a cached range just after a, joins it (neither is in hcache).  The
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

/* Keep the cache within its bytes: HAKMEM_HUGE_CACHE_MB, and the peak
 * of live huge bytes less those live now.  The oldest ranges go first
 * (into gone[] from index ngone, to be unmapped); of the last one only
 * the tail beyond the cap.  Returns the new count in gone[]. */
static unsigned hcache_trim(struct segment **gone, unsigned ngone) /* huge_mutex held */
{
	size_t cap = (size_t)KNOB(huge_cache_mb) << 20;
	size_t live = atomic_load_explicit(&huge_live, memory_order_relaxed);
	size_t peak = atomic_load_explicit(&huge_live_peak, memory_order_relaxed);
	if (live >= peak || peak - live < cap)
		cap = live >= peak ? 0 : peak - live;
	else if (hcache_bytes > cap)
		cap -= cap / 4; /* over HAKMEM_HUGE_CACHE_MB: a quarter more goes,
				 * so that a stream of frees is not one
				 * munmap each */
	while (hcache_bytes > cap) {
		struct segment *s = hcache[0];
		size_t ex = round_seg(hcache_bytes - cap);
		if (ex < s->map_size) {
			struct segment *tail = (struct segment *)((uint8_t *)s + s->map_size - ex);
			tail->map_size = ex;
			s->map_size -= ex;
			hcache_bytes -= ex;
			gone[ngone++] = tail;
			break;
		}
		gone[ngone++] = s;
		hcache_remove(0);
	}
	return ngone;
}

/* Put seg into the cache, joined with the cached ranges it touches; the
 * oldest go (into gone[], to be unmapped) beyond the cap on ranges
 * (hcache_cap) and beyond the cap on bytes (hcache_trim), seg itself if
 * it is larger than that.  Returns how many went. */
static unsigned hcache_put(struct segment *seg, struct segment **gone) /* huge_mutex held */
{
	for (unsigned i = 0; i < hcache_n;) {
		struct segment *c = hcache[i];
		if ((uint8_t *)c + c->map_size == (uint8_t *)seg) {
			hcache_remove(i);
			seg = hcache_join(c, seg);
		} else if ((uint8_t *)seg + seg->map_size == (uint8_t *)c) {
			hcache_remove(i);
			seg = hcache_join(seg, c);
		} else {
			i++;
		}
	}
	unsigned ngone = 0;
	uint64_t now = seg->cached_since;
	while (hcache_n >= hcache_cap()) {
		gone[ngone++] = hcache[0];
		hcache_remove(0);
		hcache_evicted_ms = now;
	}
	hcache[hcache_n++] = seg;
	hcache_bytes += seg->map_size;
	if (hcache_n > 0 && atomic_load_explicit(&hcache_oldest_ms, memory_order_relaxed) == 0)
		atomic_store_explicit(&hcache_oldest_ms, now, memory_order_relaxed);
	return hcache_trim(gone, ngone);
}

void huge_free(struct segment *seg, void *p)
{
	(void)p;
	huge_mark(seg, 0);
	huge_live_add(0, seg->map_size);
	atomic_fetch_add_explicit(&huge_frees, 1, memory_order_relaxed);
	struct segment *gone[HUGE_CACHE_MAX + 1];
	unsigned ngone = 0;
	bool over = false;
	if (KNOB(huge_cache) > 0 && seg->huge_off < HAK_SEG_SIZE) {
		seg->cached_since = os_now_ms();
		seg->purged = 0;
		hak_lock(&huge_mutex);
		ngone = hcache_put(seg, gone);
		over = hcache_n > hcache_cap();
		hak_unlock(&huge_mutex);
	} else {
		gone[ngone++] = seg;
		if (KNOB(huge_cache) == 0) {
			/* switched off (tests do): what it still holds goes */
			hak_lock(&huge_mutex);
			over = hcache_n > 0;
			hak_unlock(&huge_mutex);
		}
	}
	while (ngone > 0) {
		ngone--;
		os_unmap(gone[ngone], gone[ngone]->map_size);
	}
	os_unmap_retry(false);
	uint64_t oldest = atomic_load_explicit(&hcache_oldest_ms, memory_order_relaxed);
	if (over || (oldest != 0 && purge_old(oldest, os_now_ms(), false)))
		huge_collect(false);
}

/* Purge cached mappings older than the purge delay (all: force). */
void huge_collect(bool force)
{
	uint64_t now = os_now_ms();
	struct segment *gone[HUGE_CACHE_MAX];
	unsigned ngone = 0;
	hak_lock(&huge_mutex);
	uint64_t oldest = 0;
	for (unsigned i = 0; i < hcache_n; i++) {
		struct segment *s = hcache[i];
		if (s->purged)
			continue;
		if (!purge_old(s->cached_since, now, force)) {
			if (oldest == 0 || s->cached_since < oldest)
				oldest = s->cached_since;
			continue;
		}
		purge_pages((uint8_t *)s + HAK_PAGE, s->map_size - HAK_PAGE);
		s->purged = 1;
		if (hcache_grow > 0) /* unused for a delay: the cache shrinks */
			hcache_grow--;
	}
	atomic_store_explicit(&hcache_oldest_ms, oldest, memory_order_relaxed);
	if (force)
		hcache_grow = 0;
	/* beyond the cap now: the oldest go */
	while (hcache_n > hcache_cap()) {
		gone[ngone++] = hcache[0];
		hcache_remove(0);
	}
	hak_unlock(&huge_mutex);
	while (ngone > 0) {
		ngone--;
		os_unmap(gone[ngone], gone[ngone]->map_size);
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
		huge_live_add(0, old - need);
		return p;
	}
	int saved = errno;
	/* grow in place when the pages after the mapping are free */
	if (os_remap(seg, old, need) != NULL) {
		seg->map_size = need;
		huge_live_add(need, old);
		return p;
	}
	/* a cached mapping with room to grow: its pages are already there */
	if (seg->huge_align < HAK_SEG_SIZE && KNOB(huge_cache) > 0) {
		size_t noff = seg->huge_off;
		struct segment *c = hcache_take(round_seg(noff + n), true);
		if (c) {
			atomic_fetch_add_explicit(&huge_hits, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&huge_allocs, 1, memory_order_relaxed);
			void *q = huge_header_init(c, noff, seg->huge_align);
			huge_live_add(c->map_size, 0);
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
		void *q = huge_header_init(ns, seg->huge_off, seg->huge_align);
		huge_live_add(need, 0);
		memcpy(q, p, usable);
		huge_mark(ns, 1);
		atomic_fetch_add_explicit(&huge_allocs, 1, memory_order_relaxed);
		huge_free(seg, p);
		errno = saved;
		return q;
	}
	struct segment *ns = (struct segment *)base;
	ns->map_size = need;
	huge_live_add(need, old);
	huge_mark(ns, 1);
	errno = saved;
	return (uint8_t *)ns + ns->huge_off;
}
