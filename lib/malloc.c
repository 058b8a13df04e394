/* malloc.c - the hak_* entry points and the malloc-family override.
 *
 * The fast paths (hak_alloc_fast, hak_free_fast) are inlined here from
 * internal.h; everything else is a noinline slow path.  With the override
 * on (the default), malloc and friends, and glibc's __libc_* names, are
 * aliases of the hak_* functions, so LD_PRELOAD and linking -lhakmem
 * (shared or static) both replace the C library's allocator. */
#include "internal.h"

#include <errno.h>

HAKMEM_EXPORT const char *hak_version(void)
{
#define HAK_STR2(x) #x
#define HAK_STR(x) HAK_STR2(x)
	return HAK_STR(HAKMEM_VERSION_MAJOR) "." HAK_STR(HAKMEM_VERSION_MINOR) "." HAK_STR(
		HAKMEM_VERSION_PATCH);
}

/* ---- slow paths ---- */

/* A block of class c for a request of n bytes. */
static void *alloc_class(size_t n, unsigned c)
{
	(void)n; /* for the debug counters only */
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
		b->head = *(void **)p;
		b->count--;
		return p;
	}
	p = slab_refill_alloc(h, c);
	if (unlikely(p == NULL))
		errno = ENOMEM;
	return p;
}

void *hak_alloc_slow(size_t n)
{
	if (n > HAK_LARGE_MAX)
		return huge_alloc(n, 0, false, false);
	return alloc_class(n, ace_class(n));
}

static _Atomic uint64_t foreign_frees;

uint64_t hak_foreign_frees(void)
{
	return atomic_load_explicit(&foreign_frees, memory_order_relaxed);
}

/* Everything the inline free path does not finish: NULL, foreign
 * pointers, huge blocks, blocks of other threads' heaps, and the first
 * free of a thread that has no heap yet. */
void hak_free_slow(void *p)
{
	if (p == NULL)
		return;
	int saved = errno;
	struct segment *seg = segmap_lookup(p);
	if (seg == NULL || (seg->tier == TIER_HUGE && !huge_owns(seg, p))) {
		/* not ours: never trusted, never touched */
		atomic_fetch_add_explicit(&foreign_frees, 1, memory_order_relaxed);
	} else if (seg->tier == TIER_HUGE) {
		huge_free(seg, p);
	} else {
		/* hak_free_fast finished every block of this thread's heap */
		slab_free_remote(tls_heap, seg, p);
	}
	errno = saved;
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
	return slab_of(seg, p)->block_size;
}

/* align: a power of two. */
static void *alloc_aligned(size_t align, size_t n)
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
	return huge_alloc(n, align, false, false);
}

static bool pow2(size_t a)
{
	return a != 0 && (a & (a - 1)) == 0;
}

/* ---- the API ---- */

HAKMEM_EXPORT void *hak_malloc(size_t n)
{
	return hak_alloc_fast(n);
}

HAKMEM_EXPORT void hak_free(void *p)
{
	hak_free_fast(p);
}

HAKMEM_EXPORT void hak_free_sized(void *p, size_t n)
{
	(void)n;
	hak_free_fast(p);
}

HAKMEM_EXPORT void *hak_calloc(size_t a, size_t b)
{
	size_t n;
	if (__builtin_mul_overflow(a, b, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	if (n > HAK_LARGE_MAX)
		return huge_alloc(n, 0, true, false);
	void *p = hak_alloc_fast(n);
	if (likely(p != NULL))
		memset(p, 0, n);
	return p;
}

HAKMEM_EXPORT void *hak_realloc(void *p, size_t n)
{
	if (p == NULL)
		return hak_alloc_fast(n);
	if (n == 0) { /* glibc's policy: free, return NULL */
		hak_free_fast(p);
		return NULL;
	}
	struct segment *seg = owned_segment(p);
	if (seg == NULL) {
		atomic_fetch_add_explicit(&foreign_frees, 1, memory_order_relaxed);
		errno = EINVAL;
		return NULL;
	}
	if (seg->tier == TIER_HUGE && n > HAK_LARGE_MAX)
		return huge_realloc(seg, p, n);
	size_t old = usable_in(seg, p);
	if (n <= old && (n > old / 2 || old <= 128))
		return p;
	void *q = n > HAK_LARGE_MAX && n > old ? huge_alloc(n, 0, false, true) : hak_alloc_fast(n);
	if (q == NULL)
		return NULL; /* errno is ENOMEM; p is untouched */
	memcpy(q, p, n < old ? n : old);
	hak_free_fast(p);
	return q;
}

HAKMEM_EXPORT void *hak_aligned_alloc(size_t align, size_t n)
{
	if (!pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	return alloc_aligned(align, n);
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
	*out = p;
	return 0;
}

HAKMEM_EXPORT size_t hak_usable_size(const void *p)
{
	if (p == NULL)
		return 0;
	struct segment *seg = owned_segment(p);
	return seg ? usable_in(seg, p) : 0;
}

HAKMEM_EXPORT void hak_collect(void)
{
	hak_init();
	struct heap *h = tls_heap;
	if (h == &heap_empty)
		h = heap_get_slow();
	if (h != NULL) {
		/* reclaim what exited threads left, then give back all that is free */
		for (int t = 0; t < TIER_COUNT; t++) {
			struct segment *seg;
			while ((seg = segment_adopt(t)) != NULL)
				slab_adopt_segment(h, seg);
		}
		pool_collect_all(h);
	}
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

static void *hak_memalign(size_t align, size_t n)
{
	if (align <= 16)
		return hak_alloc_fast(n);
	if (!pow2(align)) { /* glibc rounds up to the next power of two */
		if (align > ((size_t)PTRDIFF_MAX >> 1) + 1) {
			errno = ENOMEM;
			return NULL;
		}
		align = (size_t)1 << (64 - __builtin_clzll((unsigned long long)align));
	}
	return alloc_aligned(align, n);
}

static void *hak_valloc(size_t n)
{
	return alloc_aligned(HAK_PAGE, n);
}

static void *hak_pvalloc(size_t n)
{
	if (n > (size_t)PTRDIFF_MAX) {
		errno = ENOMEM;
		return NULL;
	}
	return alloc_aligned(HAK_PAGE, (n + HAK_PAGE - 1) & ~(HAK_PAGE - 1));
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
	hak_free_fast(p);
}

void *__libc_malloc(size_t n) HAK_ALIAS(hak_malloc);
void __libc_free(void *p) HAK_ALIAS(hak_free);
void *__libc_calloc(size_t a, size_t b) HAK_ALIAS(hak_calloc);
void *__libc_realloc(void *p, size_t n) HAK_ALIAS(hak_realloc);
void *__libc_memalign(size_t align, size_t n) HAK_ALIAS(hak_memalign);
void *__libc_valloc(size_t n) HAK_ALIAS(hak_valloc);
void *__libc_pvalloc(size_t n) HAK_ALIAS(hak_pvalloc);
#endif
