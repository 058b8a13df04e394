/* internal.h - cross-module declarations, the inline fast paths, asserts.
 * Not installed. */
#ifndef HAKMEM_INTERNAL_H
#define HAKMEM_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* mremap, MADV_*, CLOCK_MONOTONIC_COARSE */
#endif
#include "config.h"
#include "types.h"
#include <hakmem/hakmem.h>

#include <stdbool.h>
#include <string.h>

#define HAKMEM_EXPORT __attribute__((visibility("default")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define hak_noinline __attribute__((noinline))
#define hak_inline static inline __attribute__((always_inline))

#ifndef HAKMEM_OVERRIDE
#define HAKMEM_OVERRIDE 1
#endif

/* ---- assertions (--enable-debug) ---- */
void hak_fatal(const char *file, int line, const char *what) __attribute__((noreturn));
#ifdef HAKMEM_DEBUG
#define hak_assert(e) ((e) ? (void)0 : hak_fatal(__FILE__, __LINE__, #e))
#else
#define hak_assert(e) ((void)0)
#endif

/* ---- locks ----
 *
 * Every lock of hakmem is a struct hak_lock: a mutex and the thread that
 * holds it (the address of that thread's tls_self, thread.c).  No lock is
 * held across fork(): an allocator that takes its locks in a
 * pthread_atfork prepare handler deadlocks when a thread that holds a
 * stdio lock waits in malloc while fork waits for that stdio lock.  The
 * child instead looks at each lock (hak_lock_after_fork):
 *   - free: no thread was inside the section it guards when the child's
 *     memory was copied, so the data is consistent (fork copies the
 *     parent's pages; a thread that writes a page already copied waits
 *     for the copy to end, so the child sees the writes of each thread up
 *     to some point, and a lock seen free means none was half done);
 *   - held by the forking thread itself (fork called from a signal
 *     handler that interrupted hakmem): left held; the interrupted call
 *     finishes and releases it when the handler returns;
 *   - held by another thread, which does not exist in the child: made new,
 *     and the caller resets the data it guards to a safe state (what was
 *     there is leaked in the child, never reused half updated). */
extern __thread char tls_self __attribute__((tls_model("initial-exec")));

struct hak_lock {
	pthread_mutex_t m;
	_Atomic(uintptr_t) holder; /* &tls_self of the holder, 0 when free */
	uint8_t adaptive;          /* spin a little before sleeping (glibc) */
};
#define HAK_LOCK_INIT { PTHREAD_MUTEX_INITIALIZER, 0, 0 }
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
#define HAK_LOCK_INIT_ADAPTIVE { PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP, 0, 1 }
#else
#define HAK_LOCK_INIT_ADAPTIVE HAK_LOCK_INIT
#endif

hak_inline void hak_lock(struct hak_lock *l)
{
	pthread_mutex_lock(&l->m);
	atomic_store_explicit(&l->holder, (uintptr_t)&tls_self, memory_order_relaxed);
}

hak_inline void hak_unlock(struct hak_lock *l)
{
	atomic_store_explicit(&l->holder, 0, memory_order_relaxed);
	pthread_mutex_unlock(&l->m);
}

/* In the child of fork: 1 if l was free, 0 if the forking thread holds
 * it (left held), -1 if a thread that is gone held it (l is new and free;
 * the caller resets what l guards). */
int hak_lock_after_fork(struct hak_lock *l);

/* ---- per-thread counters: owner writes, readers sum ---- */
#define CTR_ADD(h, field, n)                                                     \
	__atomic_store_n(&(h)->ctr.field,                                        \
			 __atomic_load_n(&(h)->ctr.field, __ATOMIC_RELAXED) + (n), \
			 __ATOMIC_RELAXED)
#define CTR_INC(h, field) CTR_ADD(h, field, 1)
#ifdef HAKMEM_DEBUG_COUNTERS
#define DCTR_ADD(h, field, n) CTR_ADD(h, field, n)
#else
#define DCTR_ADD(h, field, n) ((void)0)
#endif
#define DCTR_INC(h, field) DCTR_ADD(h, field, 1)

/* ---- config.c ---- */
struct hak_config {
	long stats;          /* HAKMEM_STATS */
	long tiny_superslab; /* HAKMEM_TINY_USE_SUPERSLAB (always 1) */
	long tiny_sll_cap;   /* HAKMEM_TINY_SLL_CAP */
	long pool_ring_cap;  /* HAKMEM_POOL_RING_CAP */
	long large_cache_cap;/* HAKMEM_LARGE_CACHE_CAP */
	long purge_delay_ms; /* HAKMEM_PURGE_DELAY_MS */
	long segment_cache;  /* HAKMEM_SEGMENT_CACHE */
	long huge_cache;     /* HAKMEM_HUGE_CACHE */
	long wmax_pct;       /* HAKMEM_WMAX, in hundredths */
	long pool_refill_batch; /* HAKMEM_POOL_REFILL_BATCH */
	long pool_cap;       /* HAKMEM_POOL_CAP */
	long tiny_sll_cap_set; /* HAKMEM_TINY_SLL_CAP was given: the same cap
				* for every class (else at least a slab's blocks) */
};
extern struct hak_config hak_cfg;
void config_init(void);
/* Parse one value; 0 on success.  Exposed for the config tests. */
int config_parse(const char *text, int decimals, long *out);
/* Apply one NAME=VALUE as config_init would (warns on stderr on error);
 * returns 0 if accepted. */
int config_apply(const char *name, const char *value);

/* ---- small text helpers (stats.c): no allocation ---- */
size_t fmt_u64(char *buf, uint64_t v);
void stats_init(void); /* after config_init */
void hak_write_err(const char *s);

/* ---- os.c: the only place that asks the kernel for memory ---- */
void *os_map(size_t size);                       /* NULL on failure */
void *os_map_aligned(size_t size, size_t align); /* align: power of 2 >= page */
void os_unmap(void *p, size_t size);
void os_purge(void *p, size_t size);             /* give pages back, keep range */
void os_account_grow(size_t size);               /* a mapping grew (mremap) */
uint64_t os_now_ms(void);                        /* coarse monotonic clock */
struct os_counters {
	_Atomic uint64_t mapped, mapped_peak, map_calls, unmap_calls, purged;
};
extern struct os_counters os_ctr;

/* ---- segment.c ---- */
/* One bit per 2 MiB region: "a segment header starts here" (segmap_here)
 * and "a huge block aligned to >= 2 MiB, header one region back"
 * (segmap_prev).  The free fast path tests one bit. */
extern _Atomic uint64_t segmap_here[HAK_SEGMAP_ENTRIES / 64];
extern _Atomic uint64_t segmap_prev[HAK_SEGMAP_ENTRIES / 64];

hak_inline bool segmap_bit(_Atomic uint64_t *map, uintptr_t i)
{
	return (atomic_load_explicit(&map[i >> 6], memory_order_acquire) >> (i & 63)) & 1;
}

/* True when p lies in a region whose segment header hakmem wrote at the
 * region's start: then the header is p & ~HAK_SEG_MASK. */
hak_inline bool segmap_is_here(const void *p)
{
	uintptr_t i = (uintptr_t)p >> HAK_SEG_SHIFT;
	return likely(i < HAK_SEGMAP_ENTRIES) && segmap_bit(segmap_here, i);
}

/* The segment header of a pointer hakmem handed out, or NULL. */
hak_inline struct segment *segmap_lookup(const void *p)
{
	uintptr_t i = (uintptr_t)p >> HAK_SEG_SHIFT;
	uintptr_t base = (uintptr_t)p & ~(uintptr_t)HAK_SEG_MASK;
	if (unlikely(i >= HAK_SEGMAP_ENTRIES))
		return NULL;
	if (likely(segmap_bit(segmap_here, i)))
		return (struct segment *)base;
	if (segmap_bit(segmap_prev, i))
		return (struct segment *)(base - HAK_SEG_SIZE);
	return NULL;
}
/* SEGMAP_NONE, SEGMAP_HERE or SEGMAP_PREV for the region at region_addr */
unsigned segmap_get(uintptr_t region_addr);
void segmap_set(uintptr_t region_addr, unsigned v);

struct segment *segment_alloc(struct heap *h, int tier);
void segment_release(struct segment *seg);
void segment_abandon(struct segment *seg);
struct segment *segment_adopt(int tier);
void segment_cache_collect(bool force);
/* In the child of fork: abandoned and cached segments that a thread that
 * is gone was moving are forgotten (leaked in the child). */
void segment_fork_child(void);
void segment_counts(uint64_t *in_use, uint64_t *peak, uint64_t *cached, uint64_t *abandoned);

/* ---- ace.c: size -> class by table lookup ---- */
/* Constants computed by the compiler (ace.c): right before hakmem has
 * initialised, when a library constructor may already call malloc. */
extern const uint8_t ace_small_tab[(HAK_MID_MAX >> 4) + 1];
extern const uint32_t ace_class_size[HAK_NBINS];
unsigned ace_class_slow(size_t n); /* any n <= HAK_LARGE_MAX */
hak_inline unsigned ace_class(size_t n)
{
	if (likely(n <= HAK_MID_MAX))
		return ace_small_tab[(n + 15) >> 4];
	return ace_class_slow(n);
}
hak_inline int ace_tier_of_class(unsigned c)
{
	return c < HAK_CLS_MID ? TIER_TINY : c < HAK_CLS_LARGE ? TIER_MID
	       : c < HAK_CLS_ALIGNED ? TIER_LARGE : TIER_TINY;
}

/* ---- tiers: tiny.c, pool.c, large.c ---- */
struct tier_desc {
	uint8_t slab_shift;  /* log2 slab size */
	uint8_t nslabs;      /* slabs per segment */
	uint32_t bin_cap;    /* default TLS list cap (per class, from config) */
};
extern struct tier_desc tier_descs[TIER_COUNT];
void tiny_init(void);
void pool_init(void);
void large_init(void);
/* cap of class c's thread list and how many blocks one carve takes */
uint32_t tier_bin_cap(unsigned c);
uint32_t tier_carve_batch(unsigned c);

/* huge blocks (large.c) */
/* grow: the caller is realloc, growing a block */
void *huge_alloc(size_t n, size_t align, bool zero, bool grow);
void huge_free(struct segment *seg, void *p);
void *huge_realloc(struct segment *seg, void *p, size_t n);
size_t huge_usable(struct segment *seg, const void *p);
bool huge_owns(struct segment *seg, const void *p);
void huge_collect(bool force);
unsigned huge_cache_state(unsigned *cap); /* mappings cached now, and the cap */
void huge_fork_child(void);

/* ---- slab.c: the slab engine shared by tiny, mid and large ---- */
void *slab_refill_alloc(struct heap *h, unsigned c); /* refill bin c, pop one */
void slab_free_local(struct heap *h, struct segment *seg, void *p);
/* after a local free emptied s or hit a full slab */
void slab_local_settle(struct heap *h, struct segment *seg, struct slab *s) hak_noinline;
void slab_free_remote(struct heap *h, struct segment *seg, void *p);
void heap_flush(struct heap *h);   /* bins back to slabs, drain, retire */
void heap_remote_flush(struct heap *h); /* push the gathered remote frees */
void heap_abandon(struct heap *h); /* thread exit: flush, then abandon */
void heap_purge(struct heap *h, bool force);
void heap_setup(struct heap *h);
void slab_adopt_segment(struct heap *h, struct segment *seg);
#ifdef HAKMEM_DEBUG
void slab_validate(const struct slab *s);
#endif

hak_inline struct slab *slab_of(struct segment *seg, const void *p)
{
	return &seg->slabs[((uintptr_t)p - (uintptr_t)seg) >> seg->slab_shift];
}

hak_inline struct segment *seg_of_slab(const struct slab *s)
{
	return (struct segment *)((uintptr_t)s & ~(uintptr_t)HAK_SEG_MASK);
}

/* The first block of slab s, and the bytes its area spans. */
hak_inline uint8_t *slab_area(struct segment *seg, unsigned i, size_t *len)
{
	uint8_t *base = (uint8_t *)seg + ((size_t)i << seg->slab_shift);
	size_t size = (size_t)1 << seg->slab_shift;
	if (i == 0) {
		base += HAK_SEG_HDR;
		size -= HAK_SEG_HDR;
	}
	*len = size;
	return base;
}

hak_inline uint8_t *slab_start(const struct slab *s)
{
	size_t len;
	return slab_area(seg_of_slab(s), s->index, &len);
}

/* Colours a slab of class c may take (types.h, "Colour"): 1 (none) unless
 * c is a coloured tiny class, else block size's power-of-two factor / 64
 * (2 to 16). */
hak_inline unsigned slab_colours(unsigned c)
{
	if (c >= HAK_CLS_MID)
		return 1; /* mid, large and the aligned tiny classes */
	size_t bs = ace_class_size[c], f = bs & (0 - bs);
	return f < 2 * HAK_COLOUR_ALIGN ? 1u : (unsigned)(f / HAK_COLOUR_ALIGN);
}

/* Byte offset of the first block of slab i of seg when it serves class c:
 * a multiple of HAK_COLOUR_ALIGN, below the class's power-of-two factor,
 * spread over the slabs of a segment and over segments. */
hak_inline size_t slab_colour(const struct segment *seg, unsigned i, unsigned c)
{
	unsigned n = slab_colours(c);
	if (n == 1)
		return 0;
	unsigned salt = (unsigned)((uintptr_t)seg >> HAK_SEG_SHIFT) * 3u;
	return (size_t)((i * 5u + salt) % n) * HAK_COLOUR_ALIGN;
}

/* The first block of s. */
hak_inline uint8_t *slab_block0(const struct slab *s)
{
	struct segment *seg = seg_of_slab(s);
	size_t len;
	return slab_area(seg, s->index, &len) + slab_colour(seg, s->index, s->cls);
}

/* shared with pool.c */
struct slab *slab_init(struct heap *h, struct segment *seg, unsigned i, unsigned c);
uint32_t slab_drain(struct slab *s);
bool slab_retire(struct heap *h, struct segment *seg, struct slab *s);
/* file s (owner h, on no list) as current-less: partial, full or retired */
void slab_file(struct heap *h, struct slab *s);
void seglist_push(struct segment **head, struct segment *seg);
void seglist_remove(struct segment **head, struct segment *seg);

/* ---- pool.c: mid pages, shared between heaps ----
 * Mid segments belong to one of POOL_SHARDS shards (a lock guards their
 * slot masks); pages whose owner lets them go wait on a lock-free stack
 * per class and shard. */
#define POOL_SHARDS 8
#define POOL_NCLS (HAK_CLS_LARGE - HAK_CLS_MID)
/* A new page of class c for h, from the shared stacks or a shard segment;
 * with it up to batch-1 more on h's partial list.  NULL when out of memory. */
struct slab *pool_refill(struct heap *h, unsigned c);
/* An empty mid page leaves heap h: its slot goes back to the segment, its
 * memory to the OS now (h->purge_now) or a purge delay later. */
void pool_page_free(struct heap *h, struct segment *seg, struct slab *s);
/* Give back the memory of free page slots idle a purge delay (all: every
 * shard; force: whatever their age).  True while some wait. */
bool pool_purge(unsigned shard, bool all, bool force);
/* Thread exit, after heap_abandon: whether to clean up every shard now
 * (the last thread heap, or none did for a purge delay) and do it. */
void pool_exit_cleanup(struct heap *h, bool last);
/* Pages of h's mid class c beyond the cap go to the shared stack. */
void pool_trim(struct heap *h, unsigned c);
/* Hand every mid page of h (after heap_flush) to the shared stacks. */
void pool_abandon(struct heap *h);
/* Drain the pages on the shared stacks of one shard (all: every shard);
 * pages found empty go back to their segments. */
void pool_collect(struct heap *h, unsigned shard, bool all);
/* Everything at once: hak_collect and the cleaning exit. */
void pool_collect_all(struct heap *h);
/* Wait until no thread is between reading a stack head and its CAS:
 * then no stale pointer into a released segment is left. */
void pool_quiesce(void);
/* In the child of fork: a shard whose lock a thread that is gone held
 * starts a new generation; its segments of older generations are left
 * alone (leaked in the child). */
void pool_fork_child(void);
/* The lock-free stack itself, exposed for the tests. */
void pool_stack_push(unsigned c, unsigned shard, struct slab *first, struct slab *last, uint32_t n);
struct slab *pool_stack_pop(unsigned c, unsigned shard);
/* Take the whole stack (NULL-terminated through snext) with one CAS. */
struct slab *pool_stack_take(unsigned c, unsigned shard);
struct pool_counters {
	uint64_t pushes, pops, cas, cas_retries, pop_giveups, pages;
};
void pool_counts(struct pool_counters *out);
uint64_t pool_stack_len(unsigned c, unsigned shard); /* quiet stacks only */
/* tags: exposed for the encoding test */
uint64_t pool_tag_pack(struct slab *s, uint64_t tag);
struct slab *pool_tag_ptr(uint64_t v);
uint64_t pool_tag_of(uint64_t v);

/* ---- thread.c ---- */
extern struct heap heap_empty;
extern __thread struct heap *tls_heap __attribute__((tls_model("initial-exec")));
void hak_init(void);
/* The calling thread's heap, made on first use; NULL when the thread must
 * use the shared fallback heap (during its own teardown or our init). */
struct heap *heap_get_slow(void);
void *heap_fallback_alloc(unsigned c); /* a block of class c */
void heap_counters_sum(uint64_t out[HAK_NCOUNTERS], uint64_t *started, uint64_t *exited);

/* ---- counters kept by their modules, summed by stats.c ---- */
uint64_t slab_orphan_remote_frees(void);
uint64_t hak_foreign_frees(void);
void huge_counts(uint64_t *allocs, uint64_t *hits, uint64_t *frees);

/* ---- malloc.c: inline fast paths ---- */
void *hak_alloc_slow(size_t n) hak_noinline;
void hak_free_slow(void *p) hak_noinline;

hak_inline void *hak_alloc_fast(size_t n)
{
	struct heap *h = tls_heap;
	if (likely(n <= HAK_MID_MAX)) {
		struct tbin *b = &h->bins[ace_small_tab[(n + 15) >> 4]];
		void *p = b->head;
		if (likely(p != NULL)) {
			b->head = *(void **)p;
			b->count--;
			DCTR_INC(h, alloc_fast);
			DCTR_ADD(h, req_bytes, n);
			DCTR_ADD(h, class_bytes, ace_class_size[ace_small_tab[(n + 15) >> 4]]);
			return p;
		}
	}
	return hak_alloc_slow(n);
}

/* A block of h goes back on its slab's local list (ss_local); only a slab
 * that empties or leaves the full list needs the slow settle. */
hak_inline void slab_push_local(struct heap *h, struct segment *seg, struct slab *s, void *p)
{
	*(void **)p = s->free;
	s->free = p;
	s->nfree++;
	DCTR_INC(h, ss_local);
	if (likely(--s->used != 0 && s->state != SLAB_FULL))
		return;
	slab_local_settle(h, seg, s);
}

hak_inline void hak_free_fast(void *p)
{
	if (likely(segmap_is_here(p))) {
		struct segment *seg = (struct segment *)((uintptr_t)p & ~(uintptr_t)HAK_SEG_MASK);
		struct heap *h = tls_heap;
		struct slab *s = slab_of(seg, p);
		/* one register for the slab's address (gcc would compute it
		 * twice, once per field); owner and cls share a cache line */
		__asm__("" : "+r"(s));
		if (likely(atomic_load_explicit(&s->owner, memory_order_relaxed) == h)) {
			struct tbin *b = &h->bins[s->cls];
			if (likely(b->count < b->cap)) {
				*(void **)p = b->head;
				b->head = p;
				b->count++;
				DCTR_INC(h, free_fast);
				return;
			}
			slab_push_local(h, seg, s, p); /* bin full: ss_local */
			return;
		}
	}
	hak_free_slow(p);
}

#endif /* HAKMEM_INTERNAL_H */
