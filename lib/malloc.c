/* malloc.c - the hak_* entry points and the malloc-family override.
 *
 * The fast paths (hak_alloc_fast, hak_free_fast) are inlined here from
 * internal.h; everything else is a noinline slow path.  With the override
 * on (the default), malloc and friends, and glibc's __libc_* names, are
 * aliases of the hak_* functions, so LD_PRELOAD and linking -lhakmem
 * (shared or static) both replace the C library's allocator. */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>

/* ---- slow paths ---- */

/* A block of class c for a request of n bytes. */
hak_inline void *alloc_class(size_t n, unsigned c)
{
	struct heap *h = tls_heap;
	if (unlikely(h == &heap_empty)) {
		h = heap_get_slow();
		if (h == NULL)
			return heap_fallback_alloc(c);
	}
	DCTR_ADD(h, req_bytes, n);
	DCTR_ADD(h, class_bytes, ace_class_size[c]);
	struct tbin *b = &h->bins[c];
	void *p = b->head;
	if (p) { /* large classes come here first */
		b->head = blk_next(p);
		b->count--;
		blk_clear_key(p);
		return p;
	}
	heap_enter(h);
	p = heap_refill(h, c, n);
	heap_leave(h);
	if (unlikely(p == NULL))
		errno = ENOMEM;
	else
		blk_clear_key(p);
	/* HAKMEM_LEARN: the learner starts here, after initialisation and
	 * with no lock held */
	learner_poke();
	return p;
}

/* A huge block: the first call of a process may be one (the huge tier
 * does not pass through the heap, which initialises hakmem). */
/* The kernel refused the memory of a huge block: the huge tier has given
 * back its cache already; the heap's empty memory may hold the address
 * space too.  True when trying again can help. */
static bool huge_oom_release(void)
{
	struct heap *h = tls_heap;
	if (h == &heap_empty)
		return false;
	heap_enter(h);
	heap_release_for_oom(h);
	heap_leave(h);
	return true;
}

/* A huge block's realloc or free is a slow path of its thread too, and
 * keeps the thread heap's delayed sweep going (heap_purge): the free pages
 * of its other tiers then go back a purge delay after they were freed even
 * while the thread works on huge blocks only, as a buffer that grows by
 * realloc past 1 MiB does (its large steps before leave free runs that no
 * large refill would sweep).  Nothing waits: no clock.  Not on a huge
 * malloc, which a cached range serves in a few loads and stores; a thread
 * that allocates huge blocks frees them too. */
hak_inline void huge_sweep_heap(void)
{
	struct heap *h = tls_heap;
	if (h == &heap_empty)
		return;
	heap_enter(h);
	if (unlikely(h->next_purge != 0))
		heap_purge(h, false);
	heap_leave(h);
}

static void *huge_alloc_init(size_t n, size_t align, bool zero, bool grow)
{
	hak_init();
	void *p = huge_alloc(n, align, zero, grow);
	if (unlikely(p == NULL) && huge_oom_release())
		p = huge_alloc(n, align, zero, grow);
	return p;
}

void *hak_alloc_slow(size_t n)
{
	purge_thread_poll();
	if (n > HAK_LARGE_MAX)
		return huge_alloc_init(n, 0, false, false);
	return alloc_class(n, ace_class(n));
}

void hak_free_bad(struct slab *s, const void *p)
{
	int saved = errno;
	heap_bad_free("free", slab_check_free(s, p) == HAK_BAD_DOUBLE ? HAK_BAD_DOUBLE : HAK_BAD_NOT_BLOCK,
		      p, slab_bsize(s));
	errno = saved;
}

void heap_free_overflow(struct heap *h, struct segment *seg, struct slab *s, void *p)
{
	heap_enter(h);
	slab_push_local(h, seg, s, p);
	heap_leave(h);
}

/* Inside a huge block hakmem handed out, not at its start. */
static bool huge_interior(struct segment *seg, const void *p)
{
	return seg->tier == TIER_HUGE && seg->magic == HAK_SEG_MAGIC && !huge_owns(seg, p) &&
	       (const uint8_t *)p < (const uint8_t *)seg + seg->map_size;
}

/* The rare frees: huge blocks, foreign and bad pointers.  They may make
 * system calls (munmap, a message), so errno is kept for the caller. */
static __attribute__((noinline)) void free_slow_rare(void *p, struct segment *seg, int bad)
{
	int saved = errno;
	if (seg != NULL && huge_interior(seg, p)) {
		heap_bad_free("free", HAK_BAD_NOT_BLOCK, p, 0);
	} else if (seg == NULL || (seg->tier == TIER_HUGE && !huge_owns(seg, p))) {
		/* not ours: never trusted, never touched */
		heap_count_foreign();
	} else if (seg->tier == TIER_HUGE) {
		huge_free(seg, p);
		huge_sweep_heap();
	} else {
		heap_bad_free("free", bad, p, slab_bsize(slab_of(seg, p)));
	}
	errno = saved;
}

/* Everything the inline free path does not finish: NULL, foreign
 * pointers, huge blocks, blocks of other threads' heaps, and the first
 * free of a thread that has no heap yet. */
void hak_free_slow(void *p)
{
	if (p == NULL)
		return;
	struct segment *seg = segmap_lookup(p);
	if (unlikely(seg == NULL || seg->tier == TIER_HUGE)) {
		free_slow_rare(p, seg, 0);
		return;
	}
	/* hak_free_fast finished every block of this thread's heap; the
	 * same checks as there, for any thread (heap.c).  A free of another
	 * heap's block makes no system call (heap_enter waits with
	 * sched_yield, which cannot fail): errno is left alone. */
	struct slab *s = slab_of(seg, p);
	int bad = slab_check_free(s, p);
	if (unlikely(bad)) {
		free_slow_rare(p, seg, bad);
		return;
	}
	blk_set_key(p, free_key());
	struct heap *h = tls_heap;
	if (h == &heap_empty) { /* no heap: nothing of its own to guard */
		heap_free_remote(h, s, p);
	} else {
		heap_enter(h);
		heap_free_remote(h, s, p);
		heap_leave(h);
	}
}

/* The segment of a block hakmem handed out, or NULL (foreign). */
static struct segment *owned_segment(const void *p)
{
	struct segment *seg = segmap_lookup(p);
	if (seg && seg->tier == TIER_HUGE && !huge_owns(seg, p))
		return NULL;
	return seg;
}

static size_t usable_in(struct segment *seg, const void *p)
{
	if (seg->tier == TIER_HUGE)
		return huge_usable(seg, p);
	return slab_bsize(slab_of(seg, p));
}

/* align: a power of two. */
static void *alloc_aligned_raw(size_t align, size_t n)
{
	if (align <= 16)
		return hak_alloc_fast(n);
	if (align <= HAK_PAGE && n <= HAK_LARGE_MAX) {
		/* Mid and large slabs start on page boundaries: a class that is
		 * a multiple of align gives aligned blocks (large classes are
		 * page multiples).  Coloured tiny slabs promise HAK_COLOUR_ALIGN
		 * only; beyond it, up to 1 KiB, the aligned tiny classes, which
		 * are not coloured, serve n rounded up to a multiple of align. */
		size_t m = n < align ? align : n;
		if (m > HAK_MID_MAX)
			return hak_alloc_fast(m);
		if (align > HAK_COLOUR_ALIGN && m <= HAK_TINY_MAX) {
			m = (m + align - 1) & ~(align - 1);
			if (m <= HAK_TINY_MAX)
				return alloc_class(n, HAK_CLS_ALIGNED + (unsigned)(m / 128) - 1);
		}
		/* here align > HAK_COLOUR_ALIGN implies m > HAK_TINY_MAX: the
		 * search never reaches a coloured class it cannot use */
		for (unsigned c = ace_class(m); c < HAK_CLS_LARGE; c++)
			if (ace_class_size[c] % align == 0)
				return hak_alloc_fast(ace_class_size[c]);
	}
	return huge_alloc_init(n, align, false, false);
}

/* ---- the secure build (HAKMEM_SECURE, libhakmem-secure) ----
 *
 * Every block of a slab tier holds SEC_TAIL bytes more than the request n
 * (the class is chosen for n + SEC_TAIL).  Its last 8 bytes hold n twice
 * (low and high half) xor a key of the block's address and the secret;
 * the bytes from n up to 8 more (short of that word) hold a canary drawn
 * from the same key.  At free, and whenever the size is read (realloc,
 * malloc_usable_size), both are checked: a write past the request, even of
 * one byte, is a heap overflow (hak_heap_error, abort).  malloc_usable_size
 * is the request, so a program that claims the usable size claims no more
 * than it asked for.  With HAKMEM_SECURE_FILL=1 a freed block is filled
 * (internal.h, HAK_FILL_BYTE) and the fill is checked when the block is
 * handed out again: a write after free aborts.  Huge blocks (over 1 MiB,
 * and alignments beyond a page) have neither. */
#if HAKMEM_SECURE
#define SEC_TAIL 8

hak_inline uint64_t sec_ld(const void *p)
{
	uint64_t v;
	__builtin_memcpy(&v, p, 8);
	return v;
}

hak_inline void sec_st(void *p, uint64_t v)
{
	__builtin_memcpy(p, &v, 8);
}

/* The block's key: its address mixed with the secret. */
hak_inline uint64_t sec_key(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p ^ (uint64_t)hak_secret;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

hak_inline uint64_t sec_canary(uint64_t key)
{
	return (key ^ (key >> 29)) * 0x9e3779b97f4a7c15ull;
}

/* The slab of a slab-tier block, or NULL (huge, foreign, NULL). */
hak_inline struct slab *sec_slab_of(const void *p)
{
	if (!segmap_is_here(p))
		return NULL;
	struct segment *seg = (struct segment *)((uintptr_t)p & ~(uintptr_t)HAK_SEG_MASK);
	if (seg->tier == TIER_HUGE)
		return NULL;
	return slab_of(seg, p);
}

/* Does a block of s that starts at p end inside its slab?  (Not so for a
 * pointer into the middle of the last block: its size word would lie
 * beyond; such a pointer is left to the free path.) */
hak_inline bool sec_in_slab(const void *p, const struct slab *s)
{
	uintptr_t mask = ((uintptr_t)1 << seg_of_slab(s)->slab_shift) - 1;
	return ((uintptr_t)p & mask) + slab_bsize(s) <= mask + 1;
}

/* The request of block p of s, its size word and canary checked. */
static size_t sec_check(void *p, const struct slab *s)
{
	size_t bs = slab_bsize(s);
	uint64_t key = sec_key(p);
	uint64_t v = sec_ld((uint8_t *)p + bs - SEC_TAIL) ^ key;
	uint32_t n = (uint32_t)v;
	if (unlikely((uint32_t)(v >> 32) != n || (size_t)n + SEC_TAIL > bs))
		hak_heap_error("heap overflow past", p, slab_bsize(s));
	size_t c = bs - SEC_TAIL - n;
	if (c) {
		uint64_t d = sec_ld((uint8_t *)p + n) ^ sec_canary(key);
		if (c < 8)
			d &= ((uint64_t)1 << (8 * c)) - 1;
		if (unlikely(d != 0))
			hak_heap_error("heap overflow past", p, slab_bsize(s));
	}
	return n;
}

/* Block p of s now holds a request of n bytes: canary, then size word (an
 * overlap is the size word's). */
hak_inline void sec_mark(void *p, const struct slab *s, size_t n)
{
	size_t bs = slab_bsize(s);
	uint64_t key = sec_key(p);
	sec_st((uint8_t *)p + n, sec_canary(key));
	sec_st((uint8_t *)p + bs - SEC_TAIL, ((uint64_t)n << 32 | (uint64_t)n) ^ key);
}

static void sec_fill_check(void *p, const struct slab *s)
{
	const uint64_t want = 0x0101010101010101ull * HAK_FILL_BYTE;
	const uint8_t *b = (const uint8_t *)p, *end = b + secure_fill_end(s);
	for (b += HAK_FILL_FROM; b < end; b += 8)
		if (unlikely(sec_ld(b) != want))
			hak_heap_error("write after free of", p, slab_bsize(s));
}

/* A block just taken from a slab tier for a request of n bytes.  A
 * request of 0 is recorded as 1: a live block has a byte of its own (its
 * usable size is not 0, which realloc would take for a free). */
static void *sec_taken(void *p, size_t n)
{
	struct slab *s = sec_slab_of(p);
	if (s == NULL)
		return p; /* huge */
	if (n == 0)
		n = 1;
	if (KNOB(secure_fill))
		sec_fill_check(p, s);
	sec_mark(p, s, n);
	return p;
}

hak_inline void *sec_malloc(size_t n)
{
	if (unlikely(n > HAK_LARGE_MAX - SEC_TAIL))
		return huge_alloc_init(n, 0, false, false);
	void *p = hak_alloc_fast(n + SEC_TAIL);
	return likely(p != NULL) ? sec_taken(p, n) : NULL;
}

static void *alloc_aligned(size_t align, size_t n)
{
	if (unlikely(n > SIZE_MAX - SEC_TAIL))
		return alloc_aligned_raw(align, n); /* fails */
	void *p = alloc_aligned_raw(align, n + SEC_TAIL);
	return p ? sec_taken(p, n) : NULL;
}

/* Check and (HAKMEM_SECURE_FILL) fill a slab block on its way back. */
static void sec_release(void *p, struct slab *s)
{
	if (!sec_in_slab(p, s))
		return;
	sec_check(p, s);
	size_t end = secure_fill_end(s);
	if (KNOB(secure_fill) && end > HAK_FILL_FROM)
		memset((uint8_t *)p + HAK_FILL_FROM, HAK_FILL_BYTE, end - HAK_FILL_FROM);
}

hak_inline void sec_free(void *p)
{
	struct slab *s = sec_slab_of(p);
	if (s != NULL) {
		/* a double free or a bad pointer first: the canary check and
		 * the fill would read and write a block that is not one */
		int bad = slab_check_free(s, p);
		if (unlikely(bad)) {
			heap_bad_free("free", bad, p, slab_bsize(s));
			return;
		}
		sec_release(p, s);
	}
	hak_free_fast(p);
}

#define API_ALLOC_RAW(n) sec_malloc(n)
#define API_FREE_RAW(p) sec_free(p)
#else
#define SEC_TAIL 0
#define API_ALLOC_RAW(n) hak_alloc_fast(n)
#define API_FREE_RAW(p) hak_free_fast(p)
hak_inline void *alloc_aligned(size_t align, size_t n)
{
	return alloc_aligned_raw(align, n);
}
#endif

/* malloc and free of the API: the build's, told to track.h */
hak_inline void *api_alloc(size_t n)
{
	void *p = API_ALLOC_RAW(n);
	HAK_TRACK_ALLOC(p, n); /* track.h */
	return p;
}

hak_inline void api_free(void *p)
{
	HAK_TRACK_FREE(p); /* track.h */
	API_FREE_RAW(p);
}
#define API_ALLOC(n) api_alloc(n)
#define API_FREE(p) api_free(p)

static bool pow2(size_t a)
{
	return a != 0 && (a & (a - 1)) == 0;
}

/* ---- the API ---- */

/* The lines marked "track.h" tell valgrind's memcheck about the blocks
 * (--enable-valgrind-annotations; nothing otherwise).  A block is known
 * freed before hakmem's free path runs: that path may hand it to another
 * thread at once. */

HAKMEM_EXPORT void *hak_malloc(size_t n)
{
	return API_ALLOC(n);
}

HAKMEM_EXPORT void hak_free(void *p)
{
	API_FREE(p);
}

HAKMEM_EXPORT void hak_free_sized(void *p, size_t n)
{
	(void)n;
	API_FREE(p);
}

HAKMEM_EXPORT void *hak_calloc(size_t a, size_t b)
{
	size_t n;
	if (__builtin_mul_overflow(a, b, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	if (n > HAK_LARGE_MAX - SEC_TAIL) {
		HAK_TRACK_QUIET_BEGIN(); /* track.h: zeroing a cached mapping */
		void *q = huge_alloc_init(n, 0, true, false);
		HAK_TRACK_QUIET_END(); /* track.h */
		HAK_TRACK_ZALLOC(q, n); /* track.h */
		return q;
	}
#if HAKMEM_SECURE
	void *p = hak_alloc_fast(n + SEC_TAIL);
	if (likely(p != NULL)) {
		sec_taken(p, n); /* the fill is checked before the zeros */
		HAK_TRACK_ALLOC(p, n); /* track.h */
		memset(p, 0, n);
	}
#else
	void *p = hak_alloc_fast(n);
	HAK_TRACK_ALLOC(p, n); /* track.h */
	if (likely(p != NULL))
		memset(p, 0, n);
#endif
	return p;
}

HAKMEM_EXPORT void *hak_realloc(void *p, size_t n)
{
	if (p == NULL)
		return API_ALLOC(n);
	if (n == 0) { /* glibc's policy: free, return NULL */
		API_FREE(p);
		return NULL;
	}
	struct segment *seg = segmap_lookup(p);
	if (seg != NULL && huge_interior(seg, p)) {
		heap_bad_free("realloc", HAK_BAD_NOT_BLOCK, p, 0);
		errno = EINVAL;
		return NULL;
	}
	if (seg == NULL || (seg->tier == TIER_HUGE && !huge_owns(seg, p))) {
		heap_count_foreign();
		errno = EINVAL;
		return NULL;
	}
	if (seg->tier != TIER_HUGE) {
		struct slab *s = slab_of(seg, p);
		int bad = slab_check_free(s, p);
		if (unlikely(bad)) {
			heap_bad_free("realloc", bad, p, slab_bsize(s));
			errno = EINVAL;
			return NULL;
		}
	}
	if (seg->tier == TIER_HUGE && n > HAK_LARGE_MAX) {
		huge_sweep_heap();
		HAK_TRACK_OLD(asked, p, huge_usable(seg, p)); /* track.h */
		HAK_TRACK_QUIET_BEGIN(); /* track.h: the copy is hakmem's */
		void *q = huge_realloc(seg, p, n);
		if (unlikely(q == NULL) && huge_oom_release())
			q = huge_realloc(seg, p, n);
		HAK_TRACK_QUIET_END(); /* track.h */
		HAK_TRACK_MOVED(p, q, asked, n); /* track.h */
		return q;
	}
#if HAKMEM_SECURE
	size_t old;
	if (seg->tier == TIER_HUGE) {
		old = huge_usable(seg, p); /* no canary: the default build's rule */
		if (n <= old && (n > old / 2 || old <= 128))
			return p;
	} else {
		/* the request, checked; in place by the same rule as the
		 * default build's on the block's room, and always when it does
		 * not shrink (realloc to the usable size never moves) */
		struct slab *s = slab_of(seg, p);
		size_t room = slab_bsize(s) - SEC_TAIL;
		old = sec_check(p, s);
		if (n <= room && (n >= old || n > room / 2 || room <= 128)) {
			sec_mark(p, s, n);
			return p;
		}
	}
	void *q = n > HAK_LARGE_MAX - SEC_TAIL && n > old ? huge_alloc_init(n, 0, false, true)
							  : sec_malloc(n);
#else
	size_t old = usable_in(seg, p);
	if (n <= old && (n > old / 2 || old <= 128)) {
		HAK_TRACK_OLD(asked, p, old); /* track.h */
		HAK_TRACK_RESIZE(p, asked, n); /* track.h */
		return p;
	}
	void *q = n > HAK_LARGE_MAX && n > old ? huge_alloc_init(n, 0, false, true) : hak_alloc_fast(n);
#endif
	if (q == NULL)
		return NULL; /* errno is ENOMEM; p is untouched */
	HAK_TRACK_ALLOC(q, n); /* track.h */
	HAK_TRACK_QUIET_BEGIN(); /* track.h: the bytes beyond the size asked for too */
	memcpy(q, p, n < old ? n : old);
	HAK_TRACK_QUIET_END(); /* track.h */
	API_FREE(p);
	return q;
}

HAKMEM_EXPORT void *hak_aligned_alloc(size_t align, size_t n)
{
	if (!pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	void *p = alloc_aligned(align, n);
	HAK_TRACK_ALLOC(p, n); /* track.h */
	return p;
}

HAKMEM_EXPORT int hak_posix_memalign(void **out, size_t align, size_t n)
{
	if (!pow2(align) || align % sizeof(void *) != 0)
		return EINVAL;
	int saved = errno;
	void *p = alloc_aligned(align, n);
	errno = saved;
	if (p == NULL)
		return ENOMEM;
	HAK_TRACK_ALLOC(p, n); /* track.h */
	*out = p;
	return 0;
}

HAKMEM_EXPORT size_t hak_usable_size(const void *p)
{
	if (p == NULL)
		return 0;
	struct segment *seg = owned_segment(p);
#if HAKMEM_SECURE
	/* the request (the secure build's canary lies past it) */
	if (seg && seg->tier != TIER_HUGE)
		return sec_check((void *)p, slab_of(seg, p));
#endif
	return seg ? usable_in(seg, p) : 0;
}

HAKMEM_EXPORT void hak_collect(void)
{
	hak_init();
	struct heap *h = tls_heap;
	if (h == &heap_empty)
		h = heap_get_slow();
	if (h != NULL) {
		heap_enter(h);
		heap_collect(h);
		heap_leave(h);
	}
	heap_fallback_collect();
	segment_cache_collect(true);
	huge_collect(true);
}

#if HAKMEM_OVERRIDE
/* The aliases share their targets' code; the C library's prototypes do
 * not carry GCC's malloc/alloc_size attributes, which is harmless. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmissing-attributes"
#endif
/* ---- glibc extras, used by the override ---- */

static void *hak_memalign_(size_t align, size_t n)
{
	if (align <= 16)
		return API_ALLOC_RAW(n); /* the caller tells track.h */
	if (!pow2(align)) { /* glibc rounds up to the next power of two */
		if (align > ((size_t)PTRDIFF_MAX >> 1) + 1) {
			errno = ENOMEM;
			return NULL;
		}
		align = (size_t)1 << (64 - __builtin_clzll((unsigned long long)align));
	}
	return alloc_aligned(align, n);
}

static void *hak_memalign(size_t align, size_t n)
{
	void *p = hak_memalign_(align, n);
	HAK_TRACK_ALLOC(p, n); /* track.h */
	return p;
}

static void *hak_valloc(size_t n)
{
	void *p = alloc_aligned(HAK_PAGE, n);
	HAK_TRACK_ALLOC(p, n); /* track.h */
	return p;
}

static void *hak_pvalloc(size_t n)
{
	if (n > (size_t)PTRDIFF_MAX) {
		errno = ENOMEM;
		return NULL;
	}
	/* pvalloc(0) is one page */
	size_t m = (n + HAK_PAGE - 1) & ~(HAK_PAGE - 1);
	if (m == 0)
		m = HAK_PAGE;
	void *p = alloc_aligned(HAK_PAGE, m);
	HAK_TRACK_ALLOC(p, m); /* track.h */
	return p;
}

static void *hak_reallocarray(void *p, size_t a, size_t b)
{
	size_t n;
	if (__builtin_mul_overflow(a, b, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	return hak_realloc(p, n);
}

#define HAK_ALIAS(f) __attribute__((alias(#f), visibility("default"), used))
void *malloc(size_t n) HAK_ALIAS(hak_malloc);
void free(void *p) HAK_ALIAS(hak_free);
void *calloc(size_t a, size_t b) HAK_ALIAS(hak_calloc);
void *realloc(void *p, size_t n) HAK_ALIAS(hak_realloc);
void *reallocarray(void *p, size_t a, size_t b) HAK_ALIAS(hak_reallocarray);
int posix_memalign(void **out, size_t align, size_t n) HAK_ALIAS(hak_posix_memalign);
void *aligned_alloc(size_t align, size_t n) HAK_ALIAS(hak_aligned_alloc);
void *memalign(size_t align, size_t n) HAK_ALIAS(hak_memalign);
void *valloc(size_t n) HAK_ALIAS(hak_valloc);
void *pvalloc(size_t n) HAK_ALIAS(hak_pvalloc);
size_t malloc_usable_size(void *p) HAK_ALIAS(hak_usable_size);
void free_sized(void *p, size_t n) HAK_ALIAS(hak_free_sized);

HAKMEM_EXPORT void free_aligned_sized(void *p, size_t align, size_t n)
{
	(void)align;
	(void)n;
	API_FREE(p);
}

void *__libc_malloc(size_t n) HAK_ALIAS(hak_malloc);
void __libc_free(void *p) HAK_ALIAS(hak_free);
void *__libc_calloc(size_t a, size_t b) HAK_ALIAS(hak_calloc);
void *__libc_realloc(void *p, size_t n) HAK_ALIAS(hak_realloc);
void *__libc_memalign(size_t align, size_t n) HAK_ALIAS(hak_memalign);
void *__libc_valloc(size_t n) HAK_ALIAS(hak_valloc);
void *__libc_pvalloc(size_t n) HAK_ALIAS(hak_pvalloc);

/* ---- the rest of glibc's malloc.o: malloc_trim, mallopt, mallinfo,
 * mallinfo2, malloc_stats, malloc_info (and __libc_mallinfo,
 * __libc_mallopt) ----
 *
 * Every name that glibc's libc.so exports from its malloc.o, so that a
 * static program that calls one of them does not pull glibc's malloc.o
 * (and its malloc, a second definition) out of libc.a, and a preloaded or
 * linked hakmem answers them with its own numbers.  man 3 hakmem, section
 * OVERRIDE, says what each does.  The structures are glibc's <malloc.h>
 * ones, field for field; they are declared here so that this file builds
 * against a C library whose <malloc.h> lacks them. */

struct hak_mallinfo2 {
	size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks,
		keepcost;
};
struct hak_mallinfo {
	int arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks,
		keepcost;
};

/* glibc's M_MXFAST and its bound, 80 * sizeof(size_t) / 4 bytes. */
#define HAK_M_MXFAST 1
#define HAK_MXFAST_MAX (80 * sizeof(size_t) / 4)

static int hak_malloc_trim(size_t pad)
{
	(void)pad;
	uint64_t purged = atomic_load_explicit(&os_ctr.purged, memory_order_relaxed);
	uint64_t unmaps = atomic_load_explicit(&os_ctr.unmap_calls, memory_order_relaxed);
	hak_collect();
	return atomic_load_explicit(&os_ctr.purged, memory_order_relaxed) != purged ||
	       atomic_load_explicit(&os_ctr.unmap_calls, memory_order_relaxed) != unmaps;
}

/* Changes nothing (hakmem's knobs are the HAKMEM_* variables); returns
 * what glibc 2.36 returns for the same arguments. */
static int hak_mallopt(int param, int value)
{
	if (param == HAK_M_MXFAST && (size_t)value > HAK_MXFAST_MAX)
		return 0;
	return 1;
}

static struct hak_mallinfo2 hak_mallinfo2(void)
{
	struct hak_stats st;
	struct hak_mallinfo2 mi;

	hak_stats_get(&st);
	memset(&mi, 0, sizeof(mi));
	mi.arena = st.os_mapped;
	mi.ordblks = st.segments_cached;
	mi.hblks = st.huge_allocs >= st.huge_frees ? st.huge_allocs - st.huge_frees : 0;
	mi.usmblks = st.os_mapped_peak;
	mi.fordblks = st.segments_cached * HAK_SEG_SIZE;
	if (mi.fordblks > mi.arena)
		mi.fordblks = mi.arena;
	mi.uordblks = mi.arena - mi.fordblks;
	return mi;
}

static int sat_int(size_t v)
{
	return v > INT_MAX ? INT_MAX : (int)v;
}

static struct hak_mallinfo hak_mallinfo(void)
{
	struct hak_mallinfo2 m = hak_mallinfo2();
	struct hak_mallinfo mi = {
		.arena = sat_int(m.arena),
		.ordblks = sat_int(m.ordblks),
		.smblks = sat_int(m.smblks),
		.hblks = sat_int(m.hblks),
		.hblkhd = sat_int(m.hblkhd),
		.usmblks = sat_int(m.usmblks),
		.fsmblks = sat_int(m.fsmblks),
		.uordblks = sat_int(m.uordblks),
		.fordblks = sat_int(m.fordblks),
		.keepcost = sat_int(m.keepcost),
	};
	return mi;
}

static void hak_malloc_stats(void)
{
	fflush(stderr); /* what the program wrote before comes first */
	hak_stats_print(NULL, NULL);
}

/* glibc's document has the <malloc version="1"> root and its system and
 * aspace elements; hakmem adds one element per struct hak_stats counter.
 * The numbers are read first: no lock is held while stdio allocates. */
static int hak_malloc_info(int options, FILE *fp)
{
	static const struct {
		const char *name;
		size_t off;
	} counters[] = {
#define C(f) { #f, offsetof(struct hak_stats, f) }
		C(os_mapped), C(os_mapped_peak), C(os_map_calls), C(os_unmap_calls),
		C(os_purged), C(segments), C(segments_peak), C(segments_cached),
		C(segments_abandoned), C(segments_adopted), C(tiny_refills), C(mid_refills),
		C(large_refills), C(slabs_new), C(slabs_retired), C(remote_frees),
		C(huge_allocs), C(huge_cache_hits), C(huge_frees), C(foreign_frees),
		C(threads_started), C(threads_exited), C(pool_page_refills),
		C(pool_pages_taken), C(pool_shared_pushes), C(pool_shared_pops),
		C(pool_shared_pages), C(pool_cas), C(pool_cas_retries),
		C(os_unmap_failures), C(os_unmap_pending), C(os_unmap_lost),
		C(os_remap_failures),
#undef C
	};
	struct hak_stats st;
	struct hak_mallinfo2 mi;

	if (options != 0 || fp == NULL)
		return EINVAL;
	mi = hak_mallinfo2();
	hak_stats_get(&st);
	fprintf(fp, "<malloc version=\"1\" allocator=\"hakmem\" hakmem_version=\"%s\">\n",
		hak_version());
	fprintf(fp, "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n", mi.ordblks,
		mi.fordblks);
	fprintf(fp, "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n", mi.hblks, mi.hblkhd);
	fprintf(fp, "<system type=\"current\" size=\"%zu\"/>\n", mi.arena);
	fprintf(fp, "<system type=\"max\" size=\"%zu\"/>\n", mi.usmblks);
	fprintf(fp, "<aspace type=\"total\" size=\"%zu\"/>\n", mi.arena);
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		uint64_t v;
		memcpy(&v, (const char *)&st + counters[i].off, sizeof(v));
		fprintf(fp, "<hakmem name=\"%s\" value=\"%llu\"/>\n", counters[i].name,
			(unsigned long long)v);
	}
	fprintf(fp, "</malloc>\n");
	return 0;
}

int malloc_trim(size_t pad) HAK_ALIAS(hak_malloc_trim);
int mallopt(int param, int value) HAK_ALIAS(hak_mallopt);
int __libc_mallopt(int param, int value) HAK_ALIAS(hak_mallopt);
struct hak_mallinfo2 mallinfo2(void) HAK_ALIAS(hak_mallinfo2);
struct hak_mallinfo mallinfo(void) HAK_ALIAS(hak_mallinfo);
struct hak_mallinfo __libc_mallinfo(void) HAK_ALIAS(hak_mallinfo);
void malloc_stats(void) HAK_ALIAS(hak_malloc_stats);
int malloc_info(int options, FILE *fp) HAK_ALIAS(hak_malloc_info);
#endif
