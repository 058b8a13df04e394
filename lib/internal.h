/* internal.h - cross-module declarations, the inline fast paths, asserts.
 * Not installed.
 *
 * The files of lib/ form layers; calls only point down (a lower layer that
 * needs something from above gets it as an argument), and
 * ../shared/tools/layers on a built tree prints no circle:
 *
 *   malloc.c                   entry points and the override
 *   stats.c                    statistics
 *   learner.c                  background tuning (HAKMEM_LEARN)
 *   thread.c                   heap life cycle: lazy init, exit, fork
 *   heap.c                     the thread heap: refill and free dispatch
 *                              by tier, exit flush, sweep, collect
 *   tiny.c pool.c large.c huge.c   one file per tier: its policy; the
 *                              tiers never call each other
 *   slab.c                     the slab engine: carve, splice, drain,
 *                              remote push, lists, heap-owned segments
 *   segment.c                  2 MiB segments, the map, cache, abandoned
 *   purge.c                    the delayed-purge (decay) service
 *   os.c                       the only way to the kernel
 *   ace.c                      size -> class, W_MAX per tier
 *   config.c                   HAKMEM_* variables, the knob table
 *   util.c                     text, fatal errors, the version, locks
 *
 * This header follows the same order, bottom first.  Inline functions here
 * are compiled into their callers: they are not calls between files. */
#ifndef HAKMEM_INTERNAL_H
#define HAKMEM_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* mremap, MADV_*, CLOCK_MONOTONIC_COARSE */
#endif
#include "config.h"
#include "types.h"
#include <hakmem/hakmem.h>
#include "track.h"

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

/* ---- layout facts the code relies on ---- */
_Static_assert(sizeof(struct slab) == 64, "a slab is one cache line");
_Static_assert(offsetof(struct slab, cls) < 64 && offsetof(struct slab, owner) == 0,
	       "the free fast path reads owner and cls from one line");
_Static_assert(sizeof(struct segment) <= HAK_SEG_HDR, "the segment header fits its pages");
_Static_assert(offsetof(struct segment, slabs) + sizeof(struct slab) <= HAK_PAGE,
	       "a huge block's header (all but slabs[1..]) fits the page before the block (huge.c)");
_Static_assert(HAK_SEG_META % HAK_PAGE == 0 &&
		       HAK_SEG_META + HAK_TINY_MAX <= ((size_t)1 << HAK_TINY_SHIFT) / 2,
	       "slab 0 of a tiny segment still holds most of its blocks");
_Static_assert(HAK_TIER_NSLABS(HAK_TINY_SHIFT) <= HAK_MAX_SLABS &&
		       HAK_TIER_NSLABS(HAK_MID_SHIFT) <= HAK_MAX_SLABS &&
		       HAK_TIER_NSLABS(HAK_LARGE_SHIFT) <= HAK_MAX_SLABS,
	       "every tier's slabs fit a segment's slab array and used_mask");
_Static_assert(HAK_SEG_META < ((size_t)1 << HAK_LARGE_SHIFT),
	       "a large run at slot 0 starts its block in slot 0 (slab_of)");
/* A run is less than a slot longer than its class (large.c), so with
 * slots no larger than the smallest large class it holds one block: a
 * second would start in a later slot, where no block is looked for. */
_Static_assert(((size_t)1 << HAK_LARGE_SHIFT) <= HAK_MID_MAX,
	       "a large run holds one block");
/* ---- slot masks (segmask_t) ---- */
static inline segmask_t mask_bit(unsigned i)
{
	return (segmask_t)1 << i;
}
/* The n slots from 0. */
static inline segmask_t mask_low(unsigned n)
{
	return n >= HAK_MAX_SLABS ? ~(segmask_t)0 : mask_bit(n) - 1;
}
/* The n slots from i. */
static inline segmask_t mask_run(unsigned i, unsigned n)
{
	return mask_low(n) << i;
}
/* The lowest slot of m (not empty). */
static inline unsigned mask_first(segmask_t m)
{
	uint64_t lo = (uint64_t)m;
	return lo ? (unsigned)__builtin_ctzll(lo) : 64u + (unsigned)__builtin_ctzll((uint64_t)(m >> 64));
}
/* The highest slot of m (not empty). */
static inline unsigned mask_last(segmask_t m)
{
	uint64_t hi = (uint64_t)(m >> 64);
	return hi ? 127u - (unsigned)__builtin_clzll(hi) : 63u - (unsigned)__builtin_clzll((uint64_t)m);
}
/* The first run of neighbouring slots of m (not empty): its first slot
 * in *i, its length returned, and the run taken off *m. */
static inline unsigned mask_take_run(segmask_t *m, unsigned *i)
{
	unsigned first = mask_first(*m);
	segmask_t rest = ~(*m >> first);
	unsigned n = rest ? mask_first(rest) : HAK_MAX_SLABS - first;
	*m &= ~mask_run(first, n);
	*i = first;
	return n;
}
static inline unsigned mask_count(segmask_t m)
{
	uint64_t lo = (uint64_t)m, hi = (uint64_t)(m >> 64);
	return (unsigned)((lo ? __builtin_popcountll(lo) : 0) + (hi ? __builtin_popcountll(hi) : 0));
}
_Static_assert(HAK_MAX_SLABS == 128, "segmask_t holds HAK_MAX_SLABS bits");

_Static_assert(((size_t)1 << HAK_TINY_SHIFT) / 16 <= 65535, "slab counters are 16-bit");
_Static_assert(HAK_NBINS <= 256, "a slab's class is a byte");
_Static_assert(offsetof(struct heap, bins) == 0, "the fast path finds the bins first");

/* ---- assertions (--enable-debug) ----
 * hak_assert's expression is type-checked in every build and evaluated
 * only with --enable-debug; HAK_DEBUG is a constant, so that debug-only
 * checks written as `if (HAK_DEBUG) ...` are compiled (and checked) in
 * release builds too, then dropped. */
void hak_fatal(const char *file, int line, const char *what) __attribute__((noreturn));
#ifdef HAKMEM_DEBUG
#define HAK_DEBUG 1
#define hak_assert(e) ((e) ? (void)0 : hak_fatal(__FILE__, __LINE__, #e))
#else
#define HAK_DEBUG 0
#define hak_assert(e) ((void)sizeof((e) ? 1 : 0))
#endif

/* ======================================================================
 * util.c
 * ==================================================================== */
size_t fmt_u64(char *buf, uint64_t v);
size_t fmt_bytes(char *buf, uint64_t v); /* "4.0 MiB"; buf: 16 bytes */
void hak_write_fd(int fd, const char *s, size_t n);
void hak_write_err(const char *s);
/* One line on standard error, written with one write(2) and without
 * allocating: "hakmem: WHAT 0xADDR" TAIL, then " (size class N)" when
 * cls_size (the block size in bytes) is not 0.  Every heap error is told
 * so (heap_bad_free; the secure build's checks). */
void hak_report(const char *what, const void *p, const char *tail, size_t cls_size) __attribute__((cold));
/* A damaged heap (the secure build's checks): hak_report, then abort(). */
void hak_heap_error(const char *what, const void *p, size_t cls_size) __attribute__((noreturn, cold));
/* A random word: getrandom(2), else a mix of addresses, the pid and the
 * time.  For the free key and the secure build's secret. */
uintptr_t hak_random_word(void);
/* The secure build's per-process secret: hak_random_word, set by hak_init
 * before any block exists. */
void hak_secret_init(void);

/* ---- locks ----
 *
 * Every lock of hakmem is a struct hak_lock: a mutex and the thread that
 * holds it (the address of that thread's tls_self, util.c).  No lock is
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
#define CC_ADD(h, c, which, n) CTR_ADD(h, cls[c][which], n)
#ifdef HAKMEM_DEBUG_COUNTERS
#define DCTR_ADD(h, field, n) CTR_ADD(h, field, n)
#else
#define DCTR_ADD(h, field, n) ((void)0)
#endif
#define DCTR_INC(h, field) DCTR_ADD(h, field, 1)

/* ======================================================================
 * config.c: the HAKMEM_* variables and the knob table.
 *
 * The knob and counter seam: every tunable lives in hak_cfg, a table of
 * atomics.  The HAKMEM_* values are read where they are used (KNOB, a
 * relaxed load, on slow paths only).  The per-class cache caps and W_MAX
 * per tier are written with knob_set_cap and knob_set_wmax, which publish
 * a new epoch; a heap copies the caps into its bins and, on its slow path
 * (a refill), re-reads them when the epoch has moved: a change reaches
 * every running thread within one refill, and the fast path never reads
 * the table.  The counters a tuner reads are per thread and per class
 * (types.h, CC_*), summed by heap_counters_sum (thread.c).
 *
 * The built-in tuners work through the same table: a tier's default caps
 * (the tiny floor of one slab's blocks) are written there at
 * initialisation; the huge caches' growth is published in huge_cache_cap
 * (the most one cache holds, as the stats are read); the mid
 * tier's empty-page reserve grows and shrinks between mid_keep_min and
 * mid_keep_max.  A learner can take any of them over by writing the knob.
 * ==================================================================== */
struct hak_config {
	_Atomic long stats;          /* HAKMEM_STATS */
	_Atomic long on_error;       /* HAKMEM_ON_ERROR: enum hak_on_error */
	_Atomic long tiny_superslab; /* HAKMEM_TINY_USE_SUPERSLAB (always 1) */
	_Atomic long tiny_sll_cap;   /* HAKMEM_TINY_SLL_CAP */
	_Atomic long pool_ring_cap;  /* HAKMEM_POOL_RING_CAP */
	_Atomic long large_cache_cap;/* HAKMEM_LARGE_CACHE_CAP */
	_Atomic long purge_delay_ms; /* HAKMEM_PURGE_DELAY_MS */
	_Atomic long purge_thread;   /* HAKMEM_PURGE_THREAD */
	_Atomic long segment_cache;  /* HAKMEM_SEGMENT_CACHE */
	_Atomic long huge_cache;     /* HAKMEM_HUGE_CACHE */
	_Atomic long huge_cache_mb;  /* HAKMEM_HUGE_CACHE_MB */
	_Atomic long wmax_pct;       /* HAKMEM_WMAX, in hundredths */
	_Atomic long pool_refill_batch; /* HAKMEM_POOL_REFILL_BATCH */
	_Atomic long pool_cap;       /* HAKMEM_POOL_CAP */
	_Atomic long tiny_sll_cap_set; /* HAKMEM_TINY_SLL_CAP was given: the same cap
					* for every class (else at least a slab's blocks) */
	_Atomic long pool_ring_cap_set; /* HAKMEM_POOL_RING_CAP was given: the same cap
					 * for every class (else at most a page's
					 * blocks, at least 8: pool_default_cap) */
	_Atomic long secure_fill;    /* HAKMEM_SECURE_FILL (the secure build) */
	/* the learner (learner.c); fractions in hundredths, adopt_pct in
	 * thousandths, candidates packed (CONFIG_LIST) */
	_Atomic long learn;             /* HAKMEM_LEARN */
	_Atomic long target_hit_mid;    /* HAKMEM_TARGET_HIT_MID */
	_Atomic long cap_step_mid;      /* HAKMEM_CAP_STEP_MID */
	_Atomic long cap_min_mid;       /* HAKMEM_CAP_MIN_MID */
	_Atomic long cap_max_mid;       /* HAKMEM_CAP_MAX_MID */
	_Atomic long cap_dwell_sec_mid; /* HAKMEM_CAP_DWELL_SEC_MID */
	_Atomic long learn_window_ms;   /* HAKMEM_LEARN_WINDOW_MS */
	_Atomic long learn_min_samples; /* HAKMEM_LEARN_MIN_SAMPLES */
	_Atomic long learn_trace;       /* HAKMEM_LEARN_TRACE given (config_learn_trace) */
	_Atomic long wmax_learn;        /* HAKMEM_WMAX_LEARN */
	_Atomic long wmax_candidates_mid; /* HAKMEM_WMAX_CANDIDATES_MID */
	_Atomic long wmax_canary;       /* HAKMEM_WMAX_CANARY */
	_Atomic long wmax_trial_sec;    /* HAKMEM_WMAX_TRIAL_SEC */
	_Atomic long wmax_adopt_pct;    /* HAKMEM_WMAX_ADOPT_PCT */
	/* run-time knobs, published with the epoch */
	_Atomic uint32_t epoch;
	_Atomic uint32_t cap[HAK_NBINS];   /* thread cache (bin) cap, blocks */
	_Atomic uint32_t wmax[TIER_NWMAX]; /* W_MAX per tier, hundredths */
	_Atomic uint32_t mid_keep_min, mid_keep_max; /* empty mid pages a heap keeps */
	_Atomic uint32_t huge_cache_cap;   /* mappings a huge cache may hold now (the most of any) */
	/* A W_MAX canary (learner.c): the mid classes whose bit is set in
	 * wmax_canary_mask borrow within wmax_canary_pct instead of
	 * wmax[TIER_MID]; mask 0: no trial. */
	_Atomic uint64_t wmax_canary_mask;
	_Atomic uint32_t wmax_canary_pct;
};
extern struct hak_config hak_cfg;
#define KNOB(field) atomic_load_explicit(&hak_cfg.field, memory_order_relaxed)
void config_init(void);
/* Parse one value; 0 on success.  Exposed for the config tests. */
int config_parse(const char *text, int decimals, long *out);
/* Apply one NAME=VALUE as config_init would (warns on stderr on error);
 * returns 0 if accepted. */
int config_apply(const char *name, const char *value);
/* The kinds of value a HAKMEM_* variable takes: a number, a boolean, or
 * HAKMEM_STATS's (a boolean, text: 1, json: 2). */
enum { CONFIG_NUM = 0, CONFIG_BOOL = 1, CONFIG_STATS = 2, CONFIG_ONERR = 3,
       CONFIG_TEXT = 4, /* a file name (HAKMEM_LEARN_TRACE): 1 when given */
       CONFIG_LIST = 5, /* up to CONFIG_LIST_MAX two-place decimals, packed */
};
#define CONFIG_LIST_MAX 4
#define CONFIG_LIST2(a, b) ((long)(a) | (long)(b) << 9)
/* Item i of a packed list (0: past its end). */
long config_list_item(long packed, unsigned i);
/* HAKMEM_LEARN_TRACE's file name ("" when not given). */
const char *config_learn_trace(void);
/* HAKMEM_ON_ERROR: what a bad free does after it is caught (heap.c). */
enum hak_on_error { ON_ERROR_ABORT = 0, ON_ERROR_WARN = 1, ON_ERROR_IGNORE = 2 };
/* A boolean: 1/0, true/false, yes/no, on/off (any case, blanks around);
 * 0 on success, 1 for a number other than 0 and 1, -1 otherwise. */
int config_parse_bool(const char *text, long *out);
/* How config_init reports: HAKMEM_VERBOSE, HAKMEM_STRICT, HAKMEM_WARN. */
extern _Atomic long config_verbose, config_strict, config_warn;
/* The settings in effect, for HAKMEM_VERBOSE and the statistics. */
struct config_setting {
	const char *name;
	long value;    /* scaled by 10^decimals */
	int decimals;
	int kind;      /* CONFIG_* */
	bool from_env; /* the environment gave it; else it is the default */
	char text[32]; /* the value as the environment writes it */
};
unsigned config_count(void);
void config_get(unsigned i, struct config_setting *out);
void config_print_settings(void); /* on stderr, one line per variable */
hak_inline uint32_t knob_epoch(void)
{
	return atomic_load_explicit(&hak_cfg.epoch, memory_order_acquire);
}
void knob_set_cap(unsigned c, uint32_t cap);
void knob_set_wmax(int tier, uint32_t pct);
/* A W_MAX canary of the mid tier: classes in mask use pct (mask 0 ends
 * it). */
void knob_set_wmax_canary(uint64_t mask, uint32_t pct);
hak_inline uint32_t knob_cap(unsigned c)
{
	return atomic_load_explicit(&hak_cfg.cap[c], memory_order_relaxed);
}

/* ======================================================================
 * ace.c: size -> class by table lookup, W_MAX per tier
 * ==================================================================== */
/* Constants computed by the compiler (ace.c): right before hakmem has
 * initialised, when a library constructor may already call malloc. */
extern const uint8_t ace_small_tab[(HAK_MID_MAX >> 4) + 1];
extern const uint32_t ace_class_size[HAK_NBINS];
/* Per class: the inverse of the size's odd factor (low 32 bits) and its
 * power of two (high 32 bits), for slab_block_index. */
extern const uint64_t ace_class_div[HAK_NBINS];
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
/* The bounded round-up: may a block of 'have' bytes serve a request that
 * needs 'need' bytes in this tier (need <= have <= need * W_MAX)? */
bool ace_within_wmax(int tier, uint64_t need, uint64_t have);
/* ... and the most it may be. */
uint64_t ace_wmax_limit(int tier, uint64_t need);
/* The mid tier's limit for class c (a canary trial may give c its own). */
uint64_t ace_wmax_limit_mid(unsigned c, uint64_t need);

/* ======================================================================
 * os.c: the only place that asks the kernel for memory
 * ==================================================================== */
void *os_map(size_t size);                       /* NULL on failure */
void *os_map_aligned(size_t size, size_t align); /* align: power of 2 >= page */
/* false: the kernel refused; the range was purged and waits for
 * os_unmap_retry (counted in os_ctr.unmap_failures, unmap_pending) */
bool os_unmap(void *p, size_t size);
bool os_unmap_retry(bool now);                   /* true: none waits */
void os_purge(void *p, size_t size);             /* give pages back, keep range */
/* mremap: grow in place; move onto dst (a reservation of size bytes the
 * caller mapped).  NULL on failure, the mappings as they were. */
void *os_remap(void *p, size_t old, size_t size);
void *os_remap_move(void *p, size_t old, size_t size, void *dst);
void os_guard(void *p, size_t size);             /* no access (PROT_NONE) */
uint64_t os_now_ms(void);                        /* coarse monotonic clock */
struct os_counters {
	_Atomic uint64_t mapped, mapped_peak, map_calls, unmap_calls, purged;
	/* munmap calls refused, and the bytes they left waiting for a retry
	 * or (the list of waiting ranges full) mapped for good; moving
	 * mremap calls refused */
	_Atomic uint64_t unmap_failures, unmap_pending, unmap_lost, remap_failures;
};
extern struct os_counters os_ctr;
/* Fault injection for the tests (os.c): the n-th mapping call from now
 * fails (0: off); sticky: every one after it too; the unmap countdown
 * does the same for munmap. */
extern _Atomic long os_fail_countdown, os_fail_unmap_countdown, os_fail_sticky;
extern _Atomic uint64_t os_fail_injected;

/* ======================================================================
 * purge.c: the delayed-purge (decay) service
 *
 * Memory that becomes free stays mapped and resident, so that it can be
 * reused at once; a purge delay (HAKMEM_PURGE_DELAY_MS) after it was last
 * touched, it is given back to the kernel.  Every tier keeps its free
 * memory in its own structures and sweeps them, but the rules are here:
 * when something is old enough, when a holder's next sweep is due, the
 * two looks an empty slab gets before it is retired, and the one call
 * that gives pages back.  A due time is a ms value of os_now_ms, 0 when
 * nothing waits.
 * ==================================================================== */
hak_inline uint64_t purge_delay(void)
{
	return (uint64_t)KNOB(purge_delay_ms);
}
/* Free since 'since': old enough to give back now (or forced)? */
hak_inline bool purge_old(uint64_t since, uint64_t now, bool force)
{
	return force || now - since >= purge_delay();
}
/* Something free since 'since' waits: *due becomes the earlier of *due
 * and since + delay. */
hak_inline void purge_note(uint64_t *due, uint64_t since)
{
	uint64_t t = since + purge_delay();
	if (*due == 0 || t < *due)
		*due = t;
}
/* Is the sweep whose due time is 'due' to run now? */
hak_inline bool purge_due(uint64_t due, uint64_t now)
{
	return due != 0 && now >= due;
}
/* An empty slab or page: retire it now? The first look marks it (*seen),
 * the second retires it, so it waited a delay for reuse; force: now. */
bool purge_second_look(uint8_t *seen, bool force);
/* Give the pages of [p, p + len) back now. */
void purge_pages(void *p, size_t len);
/* An adaptive bound on the free memory a heap keeps (tiny slabs, large
 * free pages; the mid tier's pages follow the same rule in pool.c): when
 * more is needed within a purge delay of giving some back beyond it
 * (*returned_ms, 0: none since), it would have served: *keep doubles, up
 * to max.  Each sweep lowers it to twice the most held since the last
 * (*high), not below min, and starts *high again at what is held now. */
void purge_keep_grow(uint64_t *keep, uint64_t *returned_ms, uint64_t max);
void purge_keep_lower(uint64_t *keep, uint64_t *high, uint64_t held, uint64_t min);

/* ======================================================================
 * segment.c: segments, the segment map, the cache, abandoned segments
 * ==================================================================== */
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

/* A segment of 'tier' cut into slabs of 2^slab_shift bytes, owned by
 * owner (NULL: none).  The caller of segment_release has made sure no
 * thread can still read the segment (pool.c quiesces its readers). */
struct segment *segment_alloc(struct heap *owner, int tier, unsigned slab_shift);
void segment_release(struct segment *seg);
/* segment_release of a segment that stayed empty a purge delay with its
 * owner (a large one, slab_segments_sweep): cached with its pages given
 * back, not left dirty for the cache's own delay. */
void segment_release_idle(struct segment *seg);
void segment_abandon(struct segment *seg);
/* Slots 'mask' of seg are free from 'now' with their pages still there
 * (seg->dirty, dirty_at, dirty_since). */
void segment_dirty_mark(struct segment *seg, segmask_t mask, uint64_t now);
/* The dirty slots of seg that have been free a purge delay by 'now' (every
 * one with force); seg->dirty_since becomes the oldest time of the others,
 * noted in *next when next is not NULL (purge_note).  Changes no bit. */
segmask_t segment_dirty_due(struct segment *seg, uint64_t now, bool force, uint64_t *next);
/* The abandoned segment of 'tier' with room that waited longest, taken
 * off the list; NULL when none.  segment_adopt looks at them all
 * (hak_collect); segment_adopt_refill at the first few, and moves those
 * without room to the back (a refill's path). */
struct segment *segment_adopt(int tier);
struct segment *segment_adopt_refill(int tier);
/* An abandoned segment of 'tier' that no one adopted for a purge delay,
 * taken off the list (the purge thread's pass, heap_reclaim); NULL when
 * none. */
struct segment *segment_adopt_idle(int tier, uint64_t now);
void segment_cache_collect(bool force);
/* Unmap every cached segment now; true when one went (after the kernel
 * refused a mapping: free memory must be usable). */
bool segment_cache_release(void);
/* In the child of fork: abandoned and cached segments that a thread that
 * is gone was moving are forgotten (leaked in the child). */
void segment_fork_child(void);
void segment_counts(uint64_t *in_use, uint64_t *peak, uint64_t *cached, uint64_t *abandoned);
void seglist_push(struct segment **head, struct segment *seg);
void seglist_remove(struct segment **head, struct segment *seg);

/* ---- free-list links ----
 * Every link of a list of free blocks (a thread's bin, a slab's local and
 * remote lists, a gathered chain of remote frees) is read and written
 * through blk_next and blk_set_next, so that the secure build encodes links
 * in one place.
 *
 * Secure build: a link is stored as next ^ hak_secret ^ (the link's own
 * address).  hak_secret is random per process (util.c, set by hak_init
 * before any block exists, so every link is written and read with the same
 * one; a child of fork keeps its parent's).  A decoded link must be NULL
 * or a 16-byte aligned address in a hakmem segment; blk_next_in (the walks
 * of one slab's lists) also wants it in the same slab.  Anything else is a
 * corrupted free list: slab_bad_link reports it and aborts. */
#if HAKMEM_SECURE
extern uintptr_t hak_secret;
void slab_bad_link(const void *b) __attribute__((noreturn, cold));

hak_inline void *blk_next(const void *b)
{
	HAK_TRACK_OPEN(b, sizeof(void *)); /* track.h */
	uintptr_t v = *(const uintptr_t *)b ^ hak_secret ^ (uintptr_t)b;
	HAK_TRACK_CLOSE(b, sizeof(void *)); /* track.h */
	if (v != 0 && unlikely((v & 15) != 0 || !segmap_is_here((const void *)v)))
		slab_bad_link(b);
	return (void *)v;
}

hak_inline void blk_set_next(void *b, void *next)
{
	HAK_TRACK_OPEN(b, sizeof(void *)); /* track.h */
	*(uintptr_t *)b = (uintptr_t)next ^ hak_secret ^ (uintptr_t)b;
	HAK_TRACK_CLOSE(b, sizeof(void *)); /* track.h */
}

/* A link of a list of one slab's blocks, whose slots are 2^shift bytes. */
hak_inline void *blk_next_in(const void *b, unsigned shift)
{
	void *v = blk_next(b);
	if (v != NULL && unlikely((((uintptr_t)v ^ (uintptr_t)b) >> shift) != 0))
		slab_bad_link(b);
	return v;
}
#else
hak_inline void *blk_next(const void *b)
{
	HAK_TRACK_OPEN(b, sizeof(void *)); /* track.h */
	void *next = *(void *const *)b;
	HAK_TRACK_CLOSE(b, sizeof(void *)); /* track.h */
	return next;
}

hak_inline void blk_set_next(void *b, void *next)
{
	HAK_TRACK_OPEN(b, sizeof(void *)); /* track.h */
	*(void **)b = next;
	HAK_TRACK_CLOSE(b, sizeof(void *)); /* track.h */
}

hak_inline void *blk_next_in(const void *b, unsigned shift)
{
	(void)shift;
	return blk_next(b);
}
#endif

/* ---- the free key: a freed block is marked ----
 * Word 1 of every block on a free list (a thread's bin, a slab's local
 * or remote list, a gathered chain) holds hak_free_key; every block
 * handed out has that word cleared first (blk_clear_key, on each path
 * that hands out a block of a slab).  A free that finds the key in its
 * block frees a block that is free already: a double free (reported,
 * never pushed; heap_bad_free).  A live block holds the key only when the
 * program wrote it there, and it is random per process (hak_init), so
 * only a program that copies freed memory can meet it by chance.  The
 * smallest block (16 bytes) has two words. */
extern _Atomic uintptr_t hak_free_key;

hak_inline uintptr_t blk_key(const void *b)
{
	return HAK_TRACK_PEEK((const uintptr_t *)b + 1); /* track.h */
}

hak_inline uintptr_t free_key(void)
{
	return atomic_load_explicit(&hak_free_key, memory_order_relaxed);
}

hak_inline void blk_set_key(void *b, uintptr_t key)
{
	HAK_TRACK_OPEN((uintptr_t *)b + 1, sizeof(uintptr_t)); /* track.h */
	((uintptr_t *)b)[1] = key;
	HAK_TRACK_CLOSE((uintptr_t *)b + 1, sizeof(uintptr_t)); /* track.h */
}

hak_inline void blk_clear_key(void *b)
{
	HAK_TRACK_OPEN((uintptr_t *)b + 1, sizeof(uintptr_t)); /* track.h */
	((uintptr_t *)b)[1] = 0;
	HAK_TRACK_CLOSE((uintptr_t *)b + 1, sizeof(uintptr_t)); /* track.h */
}

/* ---- the secure build's fill (HAKMEM_SECURE_FILL) ----
 * A free block holds HAK_FILL_BYTE from byte HAK_FILL_FROM to
 * secure_fill_end: words 0 (the link) and 1 (the free key) are left alone
 * (and word 2, once the large tier's purge mark).  A large block (over a
 * page) is filled in its first page only: filling and checking up to 1 MiB
 * on every free and reuse would cost more than the check is worth. */
#define HAK_FILL_BYTE 0xdf
#define HAK_FILL_FROM 24
hak_inline size_t secure_fill_end(const struct slab *s)
{
	size_t b = ace_class_size[s->cls];
	return ace_tier_of_class(s->cls) == TIER_LARGE && b > HAK_PAGE ? HAK_PAGE : b;
}

/* ======================================================================
 * slab.c: the slab engine.  Blocks in slabs of one class; a heap's bins,
 * slab lists and segments; no tier's policy (the tiers choose, through
 * arguments and the colour table).
 * ==================================================================== */
hak_inline struct slab *slab_of(struct segment *seg, const void *p)
{
	return &seg->slabs[((uintptr_t)p - (uintptr_t)seg) >> seg->slab_shift];
}

hak_inline struct segment *seg_of_slab(const struct slab *s)
{
	return (struct segment *)((uintptr_t)s & ~(uintptr_t)HAK_SEG_MASK);
}

/* The first block of slab i, and the bytes its area spans. */
hak_inline uint8_t *slab_area(struct segment *seg, unsigned i, size_t *len)
{
	uint8_t *base = (uint8_t *)seg + ((size_t)i << seg->slab_shift);
	size_t size = (size_t)1 << seg->slab_shift;
	if (i == 0) {
		base += HAK_SEG_META;
		size -= HAK_SEG_META;
	}
	*len = size;
	return base;
}

hak_inline uint8_t *slab_start(const struct slab *s)
{
	size_t len;
	return slab_area(seg_of_slab(s), s->index, &len);
}

/* Colours a slab of class c may take (types.h, "Colour"); the tier that
 * owns the class sets them at initialisation (slab_set_colours), 1 (no
 * colour) by default. */
extern uint8_t slab_colours[HAK_NBINS];
void slab_set_colours(unsigned c, unsigned n);

/* Byte offset of the first block of slab i of seg when it serves class c:
 * a multiple of HAK_COLOUR_ALIGN, below the class's power-of-two factor,
 * spread over the slabs of a segment and over segments. */
hak_inline size_t slab_colour(const struct segment *seg, unsigned i, unsigned c)
{
	unsigned n = slab_colours[c];
	if (n <= 1)
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

hak_inline uint32_t slab_bsize(const struct slab *s)
{
	return ace_class_size[s->cls];
}

/* The index of the block that starts at p in s, or a number >= s->capacity
 * when no block of s starts at p (inside a block, misaligned, before the
 * first block: the slab's header or colour).  No division: a multiply and
 * a rotation (ace_class_div).  Offsets within a segment fit 32 bits, and a
 * segment never spans a multiple of 4 GiB. */
hak_inline uint32_t slab_block_index(const struct slab *s, const void *p)
{
	uint32_t x = ((uint32_t)(uintptr_t)p - s->b0) * s->div_inv;
	unsigned k = s->div_k;
	return (x >> k) | (x << ((32u - k) & 31u));
}

/* s serves class c: its copy of the class's constants. */
hak_inline void slab_set_class(struct slab *s, unsigned c)
{
	s->cls = (uint8_t)c;
	s->div_inv = (uint32_t)ace_class_div[c];
	s->div_k = (uint8_t)(ace_class_div[c] >> 32);
}

/* Slab s's link on a shared stack (pool.c). */
hak_inline struct slab *_Atomic *slab_snext(struct slab *s)
{
	struct segment *seg = seg_of_slab(s);
	hak_assert((size_t)(s - seg->slabs) < sizeof(seg->snext) / sizeof(seg->snext[0]));
	return &seg->snext[s - seg->slabs];
}

void slab_validate(const struct slab *s);
#define VALIDATE(s) (HAK_DEBUG ? slab_validate(s) : (void)0)

/* Slot i of seg (already taken in its used_mask) starts serving class c
 * for heap h. */
struct slab *slab_init(struct heap *h, struct segment *seg, unsigned i, unsigned c);
/* Take s's remote list onto its local list; how many came back. */
uint32_t slab_drain(struct slab *s);



/* Push the chain first..last onto s's remote list with one CAS. */
void slab_remote_push(struct slab *s, void *first, void *last);

/* Lists: s (owner h, on no list, not current) to its partial or full list;
 * a full slab with room again to the partial list; off every list. */
void slab_file(struct heap *h, struct slab *s);

hak_inline void slist_push(struct slab **head, struct slab *s)
{
	s->prev = NULL;
	s->next = *head;
	if (*head)
		(*head)->prev = s;
	*head = s;
}

hak_inline void slist_remove(struct slab **head, struct slab **tail, struct slab *s)
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

hak_inline void slab_full_to_partial(struct heap *h, struct slab *s)
{
	slist_remove(&h->full_head[s->cls], &h->full_tail[s->cls], s);
	s->state = SLAB_PARTIAL;
	slist_push(&h->partial[s->cls], s);
}

hak_inline void slab_unlink(struct heap *h, struct slab *s)
{
	if (s->state == SLAB_PARTIAL)
		slist_remove(&h->partial[s->cls], NULL, s);
	else if (s->state == SLAB_FULL)
		slist_remove(&h->full_head[s->cls], &h->full_tail[s->cls], s);
	if (h->cur[s->cls] == s)
		h->cur[s->cls] = NULL;
}

/* s (of h) stops being an empty slab h keeps: in use again or retired. */
hak_inline void slab_unkeep(struct heap *h, struct slab *s)
{
	if (unlikely(s->kept)) {
		s->kept = 0;
		h->slab_empty -= (uint64_t)1 << seg_of_slab(s)->slab_shift;
	}
}

/* ---- the local stages of a refill (inline: heap_refill is one function,
 * as it runs every few allocations on a mid tier's busy path) ---- */

hak_inline void slab_full_append(struct heap *h, struct slab *s)
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

/* Hand the list (n blocks, first = list) to the empty bin c; return one. */
hak_inline void *slab_bin_fill_pop(struct heap *h, unsigned c, void *list, uint32_t n)
{
	struct tbin *b = &h->bins[c];
	hak_assert(b->head == NULL && n > 0);
	b->head = blk_next(list);
	b->count = n - 1;
	CC_ADD(h, c, CC_BLOCKS, n);
	return list;
}

/* A refill hands the bin at most its cap (at least one block). */
hak_inline uint32_t slab_refill_limit(struct heap *h, unsigned c)
{
	uint32_t cap = h->bins[c].cap;
	return cap ? cap : 1;
}

hak_inline void *slab_splice(struct heap *h, struct slab *s)
{
	void *list = s->free, *last = list;
	uint32_t n = 1, k = slab_refill_limit(h, s->cls);
	if (s->nfree <= k) {
		/* the whole list fits: no walk over its (cold) blocks */
		n = s->nfree;
		s->free = NULL;
	} else {
		unsigned shift = seg_of_slab(s)->slab_shift;
		while (n < k) {
			last = blk_next_in(last, shift);
			n++;
		}
		s->free = blk_next_in(last, shift);
		blk_set_next(last, NULL);
	}
	s->nfree -= n;
	s->used += n;
	return slab_bin_fill_pop(h, s->cls, list, n);
}

hak_inline uint32_t slab_carve_batch(unsigned c)
{
	uint32_t b = (uint32_t)(16384 / ace_class_size[c]);
	return b < 1 ? 1 : b > 256 ? 256 : b;
}

/* How many blocks a carve of s cuts: a batch, at most the bin's cap and
 * what is left of the slab. */
hak_inline uint32_t slab_carve_count(struct heap *h, const struct slab *s)
{
	uint32_t k = s->capacity - s->carved, batch = slab_carve_batch(s->cls);
	uint32_t limit = slab_refill_limit(h, s->cls);
	if (batch > limit)
		batch = limit;
	return k > batch ? batch : k;
}

#if HAKMEM_SECURE
/* The secure carve (slab.c): the batch linked in a random order, and
 * filled when HAKMEM_SECURE_FILL is on. */
void *slab_carve_secure(struct heap *h, struct slab *s);
#endif

hak_inline void *slab_carve(struct heap *h, struct slab *s)
{
#if HAKMEM_SECURE
	return slab_carve_secure(h, s);
#endif
	uint32_t k = slab_carve_count(h, s);
	size_t bs = slab_bsize(s);
	uintptr_t key = free_key();
	uint8_t *first = slab_block0(s) + (size_t)s->carved * bs, *b = first;
	for (uint32_t i = 1; i < k; i++, b += bs) {
		blk_set_next(b, b + bs);
		blk_set_key(b, key);
	}
	blk_set_next(b, NULL);
	blk_set_key(b, key);
	/* read by other threads' frees (slab_check_free) */
	__atomic_store_n(&s->carved, (uint16_t)(s->carved + k), __ATOMIC_RELAXED);
	s->used += k;
	return slab_bin_fill_pop(h, s->cls, first, k);
}

/* The first stages of a refill of class c, in h's own slabs: the current
 * slab's local list, its remote list, carving, a partial slab.  Fills bin
 * c and returns one block, or NULL when h has no slab of c with room
 * (cur[c] is then NULL): the tier must find one, and first takes back
 * the full slabs that other threads freed into, which the remote frees
 * marked (tiny: slab_collect_remote; mid: pool_collect_remote; large:
 * large_collect_remote, a few at a time while marked).  No walk over
 * full slabs here: their headers are cold, and a program whose blocks
 * outlive the refill (a batch of large blocks) would pay for it on every
 * one. */
hak_inline void *slab_refill_local(struct heap *h, unsigned c)
{
	struct slab *s = h->cur[c];
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
			slab_full_append(h, s);
		}
		if ((s = h->partial[c]) == NULL)
			return NULL;
		slist_remove(&h->partial[c], NULL, s);
		slab_unkeep(h, s);
		DCTR_INC(h, refill_partial);
		s->state = SLAB_CURRENT;
		h->cur[c] = s;
	}
}
/* Empty tiny slabs a heap keeps (types.h, heap.slab_keep; large slabs
 * are retired at once, large.c):
 * from SLAB_KEEP_MIN, doubled when a new slab is needed within a purge
 * delay of one given back beyond it, lowered by each sweep to twice the
 * most the heap had empty since the last (slab_keep_sweep). */
#define SLAB_KEEP_MIN ((uint64_t)4 << 20)
#define SLAB_KEEP_MAX ((uint64_t)1 << 30)
void slab_keep_sweep(struct heap *h);

/* Heap-owned segments (tiny and large): a new slab of class c from one of
 * h's segments of 'tier' (a new segment of slabs 2^shift when none has
 * room); NULL when out of memory.  *fresh_segment tells whether a segment
 * was mapped for it. */
struct slab *slab_new(struct heap *h, int tier, unsigned shift, unsigned c, bool *fresh_segment);
/* s, a full slab or page of h: the blocks other threads freed into it
 * are taken back, and it goes to its class's partial list when that gave
 * it free blocks (true).  Anything else: false, untouched. */
bool slab_take_remote(struct heap *h, struct slab *s);
/* The full slabs of h's segments of 'tier' that other threads freed into
 * since the last look (segment.remote_mask): drained, and on their
 * partial lists when that gave them free blocks (true when any did). */
bool slab_collect_remote(struct heap *h, int tier);
/* The same with a run of k slots (k0 when it starts at slot 0, after the
 * header): a large slab, one block of class c (large.c).  A run of free
 * slots whose pages are still there (seg->dirty) first, in every segment
 * of h, then any.  'mode' says how far to look: SLAB_RUN_RESIDENT, only
 * in such slots (NULL when none has one); SLAB_RUN_MAP, in any free slots
 * of h's segments, then in a new segment (NULL: out of memory). */
enum { SLAB_RUN_RESIDENT, SLAB_RUN_MAP };
struct slab *slab_new_run(struct heap *h, int tier, unsigned shift, unsigned c, unsigned k, unsigned k0,
			  int mode, bool *fresh_segment);
/* s (no block out, on no list) gives its slot back to its segment (owner
 * h), and the segment goes when it is empty (true).  The slot's pages
 * wait for the sweep (slab_segments_sweep), or go now with no delay. */
bool slab_slot_free(struct heap *h, struct segment *seg, struct slab *s);
/* Bytes of free slots of h's segments of 'tier' whose pages are still
 * there (waiting for a purge delay); slab_slot_free keeps at most
 * h->dirty_keep[tier] of them (types.h). */
uint64_t slab_dirty_bytes(const struct heap *h, int tier);
/* Give back the pages of the free slots of h's segments of 'tier' that
 * have waited a purge delay (force: all), and the large segments kept
 * empty that long; notes what still waits. */
void slab_segments_sweep(struct heap *h, int tier, uint64_t now, bool force, uint64_t *next);
/* s (no block out) off h's lists and its slot back (slab_slot_free). */
bool slab_retire(struct heap *h, struct segment *seg, struct slab *s);
/* A local free emptied s (in one of h's own segments) or hit it full: an
 * empty slab stays on its partial list until two sweeps found it empty
 * (with no purge delay it goes at once).  Returns SETTLE_*. */
int slab_settle_owned(struct heap *h, struct segment *seg, struct slab *s);
/* The partial slabs of class c (in h's own segments) found empty by two
 * sweeps are retired; notes what still waits. */
void slab_sweep_empty(struct heap *h, unsigned c, uint64_t now, bool force, uint64_t *next);
/* Take over an abandoned segment: drain, file each slab, retire the empty
 * ones (slab_slot_free). */
void slab_adopt_segment(struct heap *h, struct segment *seg);
/* Thread exit: every segment of 'tier' h owns is abandoned. */
void slab_abandon_segments(struct heap *h, int tier);
/* Drain every slab of h's segments of 'tier'; those found empty give their
 * slots back. */
void slab_segments_drain(struct heap *h, int tier);

/* ======================================================================
 * The tiers.  Each has the same small interface, called by heap.c:
 *   X_init()                   geometry, default knobs
 *   X_default_cap(c)           the cache cap of class c the HAKMEM_*
 *                              variables give (heap_default_caps)
 *   X_refill(h, c)             h has no slab of class c with room: make
 *                              one current (or return a block: large)
 *   X_settle(h, seg, s)        a local free emptied s or hit a full slab;
 *                              returns SETTLE_* (what the sweep needs)
 *   X_sweep(h, now, force, &next)  the delayed work of h's slabs
 *   X_exit(h)                  thread exit, after the caches are flushed
 *   X_collect(h)               hak_collect: take over what exited
 *                              threads left
 * plus the tier's counters for stats.c.
 * ==================================================================== */
/* What X_refill did (0: out of memory). */
enum {
	REFILL_FAILED = 0,
	REFILL_OWN,   /* a slab of h's own is current (or on h's lists) */
	REFILL_NEW,   /* memory from elsewhere: a sweep may be due */
};
enum {
	SETTLE_NONE,  /* nothing waits */
	SETTLE_NOTE,  /* something waits: schedule the heap's sweep */
	SETTLE_SWEEP, /* an empty slab waits: schedule the sweep, or run it if due */
};

/* ---- tiny.c ---- */
void tiny_init(void);
uint32_t tiny_default_cap(unsigned c);
int tiny_refill(struct heap *h, unsigned c);
int tiny_settle(struct heap *h, struct segment *seg, struct slab *s);
void tiny_sweep(struct heap *h, uint64_t now, bool force, uint64_t *next);
void tiny_exit(struct heap *h);
void tiny_collect(struct heap *h);

/* ---- pool.c: mid pages, shared between heaps ----
 * Mid segments belong to one of POOL_SHARDS shards (a lock guards their
 * slot masks); pages whose owner lets them go wait on a lock-free stack
 * per class and shard. */
#define POOL_SHARDS 8
#define POOL_NCLS (HAK_CLS_LARGE - HAK_CLS_MID)
void pool_init(void);
uint32_t pool_default_cap(unsigned c);
/* A new page of class c for h: an empty page of h's, the shared stacks or
 * a shard segment; with it up to batch-1 more on h's partial list
 * (REFILL_*). */
int pool_refill(struct heap *h, unsigned c);
int pool_settle(struct heap *h, struct segment *seg, struct slab *s);
void pool_sweep(struct heap *h, uint64_t now, bool force, uint64_t *next);
/* Thread exit, after the flush: every mid page of h to the shared stacks;
 * then whether to clean up every shard now (the last thread heap, or none
 * did for a purge delay) and do it. */
void pool_exit(struct heap *h);
void pool_exit_cleanup(struct heap *h, bool last, bool later);
/* The flush: drain h's mid pages, give back the empty ones. */
void pool_flush(struct heap *h);
void pool_empty_retire(struct heap *h); /* h's empty pages back (the idle reclaim) */
/* Everything at once: hak_collect (after heap_flush). */
void pool_collect_all(struct heap *h);
/* An empty mid page leaves heap h: its slot goes back to the segment, its
 * memory to the OS now (h->purge_now) or a purge delay later. */
void pool_page_free(struct heap *h, struct segment *seg, struct slab *s);
/* Give back the memory of free page slots idle a purge delay (all: every
 * shard; force: whatever their age).  True while some wait. */
bool pool_purge(unsigned shard, bool all, bool force);
/* Pages of h's mid class c with room beyond 'keep' go to the shared
 * stack (empty ones go back). */
void pool_trim(struct heap *h, unsigned c, uint32_t keep);
/* Drain the pages on the shared stacks of one shard (all: every shard);
 * pages found empty go back to their segments. */
void pool_collect(struct heap *h, unsigned shard, bool all);
/* The purge thread's pass: pool_collect of every stack no thread used
 * since its previous pass. */
void pool_collect_idle(struct heap *h);
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

/* ---- large.c ---- */
void large_init(void);
uint32_t large_default_cap(unsigned c);
/* REFILL_*; or *block holds a block of a larger class within W_MAX (the
 * bounded round-up) */
int large_refill(struct heap *h, unsigned c, void **block);
int large_settle(struct heap *h, struct segment *seg, struct slab *s);
/* A large refill keeps the sweep of free slots going: true when
 * heap.c should run the sweep if it is due. */
bool large_sweep_wanted(struct heap *h);
void large_sweep(struct heap *h, uint64_t now, bool force, uint64_t *next);
void large_exit(struct heap *h);
void large_collect(struct heap *h);

/* ---- huge.c: direct mappings (> 1 MiB) ---- */
/* grow: the caller is realloc, growing a block */
void *huge_alloc(size_t n, size_t align, bool zero, bool grow);
void huge_free(struct segment *seg, void *p);
void *huge_realloc(struct segment *seg, void *p, size_t n);
size_t huge_usable(struct segment *seg, const void *p);
bool huge_owns(struct segment *seg, const void *p);
void huge_collect(bool force);
/* Unmap every cached mapping now; true when one went. */
bool huge_cache_release(void);
unsigned huge_cache_state(unsigned *cap); /* mappings cached now (all caches), the largest cap */
void huge_fork_child(void);
void huge_counts(uint64_t *allocs, uint64_t *hits, uint64_t *frees);

/* ======================================================================
 * heap.c: the thread heap
 * ==================================================================== */
extern struct heap heap_empty;
extern struct heap heap_purger; /* the purge thread's (heap_reclaim) */
void heap_setup(struct heap *h);
void heap_fold_overflows(struct heap *h, unsigned c);

/* Refill bin c and pop one block for a request of n bytes; NULL when out
 * of memory. */
void *heap_refill(struct heap *h, unsigned c, size_t n) hak_noinline;
/* After a local free emptied s or hit a full slab. */
void heap_local_settle(struct heap *h, struct segment *seg, struct slab *s) hak_noinline;
void heap_free_local(struct heap *h, struct segment *seg, void *p);
/* heap_fold_overflows adds a bin's overflow count to the per-class
 * counters (CC_OVERFLOWS) and clears it: on refills and at the flush;
 * readers add what is not folded yet. */
/* A block of another heap (in slab s): gathered per slab, pushed as one
 * chain. */
void heap_free_remote(struct heap *h, struct slab *s, void *p);
void heap_remote_flush(struct heap *h); /* push the gathered remote frees */
void heap_flush(struct heap *h);   /* bins back to slabs, drain, retire */
void heap_purge(struct heap *h, bool force);
void heap_abandon(struct heap *h, bool later); /* thread exit: flush, then abandon */
/* hak_collect: adopt what exited threads left, give back all that is
 * free. */
void heap_collect(struct heap *h);
/* The purge thread's pass on its own heap h: what exited threads left and
 * the shared caches, once idle a purge delay (heap.c says what). */
void heap_reclaim(struct heap *h);
/* The purge thread's pass on the heap of a thread that made no slow-path
 * call since its last pass, with the owner held off (heap_enter): the
 * blocks other threads freed into h's slabs and pages are drained, and
 * what is empty goes back now (light: a light pass's, a purge delay after
 * it emptied, heap.c).  The rings stay as they are, and so do the slabs
 * and pages that hold their blocks. */
void heap_reclaim_idle(struct heap *h, bool light);
/* The gate of the owner's slow paths (types.h, gate_*): every path that
 * touches h's slabs, lists or counters runs between heap_enter and
 * heap_leave; the ring pops and pushes of the fast paths do not.  The
 * owner's side is two stores and a load, no fence: the purge thread runs
 * a process-wide barrier (membarrier) between setting gate_reclaim and
 * reading gate_busy, so that either it sees the owner inside, or the
 * owner sees gate_reclaim and waits (heap_enter_wait): Dekker's exclusion
 * with the fence on one side only.  Not reentrant (a malloc in a signal
 * handler is not supported either). */
void heap_enter_wait(struct heap *h) hak_noinline;
hak_inline void heap_enter(struct heap *h)
{
	atomic_store_explicit(&h->gate_busy, 1, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	if (unlikely(atomic_load_explicit(&h->gate_reclaim, memory_order_acquire)))
		heap_enter_wait(h);
}
hak_inline void heap_leave(struct heap *h)
{
	atomic_store_explicit(&h->gate_seq, atomic_load_explicit(&h->gate_seq, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_store_explicit(&h->gate_busy, 0, memory_order_release);
}
/* The kernel refused a mapping: h's empty slabs and pages go back now, and
 * the caches of segments and huge mappings give back their address
 * space, so that free memory is usable again. */
void heap_release_for_oom(struct heap *h);
/* Copy the cache caps of the knob table into h's bins (their epoch), and
 * note the mid classes whose cap is above their default (mid_grown). */
void heap_read_knobs(struct heap *h);
/* Recompute every class's default cap from the HAKMEM_* variables (the
 * tiers' rules) into the knob table. */
void heap_default_caps(void);
uint64_t heap_orphan_remote_frees(void);
void heap_count_foreign(void);
uint64_t heap_foreign_frees(void);
/* Bad frees (internal.h, "the free key"): what slab_check_free finds. */
enum { HAK_BAD_NOT_BLOCK = 1, HAK_BAD_DOUBLE = 2 };
/* No block of s starts at p.  Where a freed large block's run began, in a
 * slot that is free now (large.c gives a run back at once; not a later
 * slot of another run, whose bit is set), it was freed already: a double
 * free; else not a block.  Only on a bad free (it reads the owner's
 * state). */
hak_inline int slab_check_gone(const struct slab *s, const void *p)
{
	const struct segment *seg = seg_of_slab(s);
	uintptr_t off = (uintptr_t)p & (((uintptr_t)1 << seg->slab_shift) - 1);
	if (seg->tier == TIER_LARGE && s->state == SLAB_FREE && !(seg->used_mask & mask_bit(s->index)) &&
	    off == (s->index == 0 ? HAK_SEG_META : 0))
		return HAK_BAD_DOUBLE;
	return HAK_BAD_NOT_BLOCK;
}
/* 0 when p may be freed, else what is wrong (HAK_BAD_*).  Any thread:
 * carved only grows while s serves its class, and is 0 while s is free.
 * Inline: realloc runs it on every call. */
hak_inline int slab_check_free(const struct slab *s, const void *p)
{
	if (slab_block_index(s, p) >= __atomic_load_n(&s->carved, __ATOMIC_RELAXED))
		return slab_check_gone(s, p);
	if (blk_key(p) == free_key())
		return HAK_BAD_DOUBLE;
	return 0;
}
/* Report a bad free or realloc ("free", "realloc") of p, whose class
 * holds cls_size bytes, and apply HAKMEM_ON_ERROR: returns unless that
 * says abort.  The caller then leaves p alone. */
void heap_bad_free(const char *op, int what, const void *p, size_t cls_size) hak_noinline;
uint64_t heap_bad_frees(void);

/* ---- inline fast paths ---- */

/* A block of h goes back on its slab's local list (ss_local); only a slab
 * that empties or leaves the full list needs the slow settle. */
hak_inline void slab_push_local(struct heap *h, struct segment *seg, struct slab *s, void *p)
{
	blk_set_next(p, s->free);
	s->free = p;
	s->nfree++;
	DCTR_INC(h, ss_local);
	if (likely(--s->used != 0 && s->state != SLAB_FULL))
		return;
	heap_local_settle(h, seg, s);
}

/* ======================================================================
 * thread.c: heap life cycle
 * ==================================================================== */
extern __thread struct heap *tls_heap __attribute__((tls_model("initial-exec")));
void hak_init(void);
/* The calling thread's heap, made on first use; NULL when the thread must
 * use the shared fallback heap (during its own teardown or our init). */
struct heap *heap_get_slow(void);
void *heap_fallback_alloc(unsigned c); /* a block of class c */
void heap_fallback_collect(void);      /* hak_collect: its free memory goes back */
void heap_counters_sum(uint64_t out[HAK_NCOUNTERS], uint64_t *started, uint64_t *exited);
/* The purge thread (thread.c): PT_NONE until it starts, PT_RUNNING,
 * PT_OFF (HAKMEM_PURGE_THREAD=0, it could not start, or the process
 * exits).  purge_thread_poll runs on the allocation slow path. */
enum { PT_NONE = 0, PT_RUNNING = 1, PT_OFF = 2 };
extern _Atomic int purge_thread_state;
void purge_thread_try_start(void) hak_noinline;
uint64_t purge_thread_passes(void);
uint64_t purge_thread_idle_reclaims(void); /* heaps of live threads reclaimed (heap_reclaim_idle) */
/* Tests only: the heap an idle reclaim works on now, and a pause (ms)
 * before it starts, with the heap's owner held off. */
extern struct heap *_Atomic purge_idle_reclaiming;
extern _Atomic unsigned purge_idle_pause_ms;
/* For the tests: in a pass now; backed off (its wait longer than a
 * delay); a pause at the start of each pass (ms, 0: none). */
bool purge_thread_in_pass(void);
bool purge_thread_backed_off(void);
extern _Atomic unsigned purge_pass_pause_ms;
hak_inline void purge_thread_poll(void)
{
	if (unlikely(atomic_load_explicit(&purge_thread_state, memory_order_relaxed) == PT_NONE))
		purge_thread_try_start();
}

/* ======================================================================
 * learner.c: background tuning of the mid tier's CAP and W_MAX
 * ==================================================================== */
/* The control law's parameters (from the HAKMEM_* knobs). */
#define LEARN_BAND 50            /* half the target band, per mille */
#define LEARN_STEP_DOUBLINGS 6   /* a step grows to at most 64 steps */
#define LEARN_GROW 8             /* a ring that overflowed and ran dry: CAP x 8 */
#define LEARN_QUIET_MOVED 2      /* quiet windows before a give-back when demand moved */
#define LEARN_QUIET_DWELLS 32    /* a grown class quiet for 32 dwells gives back half */
#define LEARN_BACKOFF_MAX 5      /* ... at most 32 times that after failed give-backs */
struct learn_law {
	uint32_t target, band;   /* hit rate, per mille */
	uint32_t step, min, max; /* CAP, blocks */
	uint32_t dwell;          /* windows to wait after a change */
	uint64_t min_samples;    /* misses a window needs */
};
/* One class's window: the counters' growth over it (types.h, CC_*). */
struct learn_win {
	uint64_t refills, blocks, overflows;
	uint32_t moved; /* another class of the tier woke in this window:
			 * quiet before, LEARN_MIN_SAMPLES misses now */
};
/* One class's state between windows. */
struct learn_cls {
	uint32_t cap;
	uint32_t dwell_left;
	int32_t run;      /* steps in a row: > 0 up, < 0 down */
	uint32_t home;    /* the CAP it started from (0: the first window's) */
	uint32_t quiet;   /* windows in a row without a refill or an overflow */
	uint32_t backoff; /* give-backs that failed in a row (a wait of 2^backoff) */
	uint32_t since_back; /* windows since the last give-back, 0: none pending */
	uint32_t used;    /* a window of it had min_samples overflows: it was busy */
	uint32_t hit;     /* the last window's hit rate, per mille */
	uint64_t samples; /* ... and its samples */
	uint64_t changes;
	uint32_t lent;    /* the CAP in effect: cap within the budget (learner.c) */
	uint32_t idle;    /* windows in a row with fewer than min_samples misses */
	uint32_t traced;  /* the trace shows it (learner.c) */
};
/* Hit rate (per mille) of a window, and its samples (refills +
 * overflows). */
uint32_t learn_hit_permille(const struct learn_win *w, uint64_t *samples);
/* The new CAP of a class after window w (st is updated). */
uint32_t learn_cap_decide(const struct learn_law *law, struct learn_cls *st, const struct learn_win *w);
/* Class st woke in window w: quiet for LEARN_QUIET_MOVED windows before,
 * min_samples misses now, and not in the windows after a give-back. */
bool learn_woke(const struct learn_law *law, const struct learn_cls *st, const struct learn_win *w);
/* A W_MAX trial: the score of a group of classes over a period. */
#define LEARN_SCORE_ONE 1000000
struct learn_wgroup {
	uint64_t refills, misses; /* CC_REFILLS, CC_MISSES */
	uint64_t given, waste;    /* bytes handed out, of which round-up */
};
int64_t learn_wmax_score(const struct learn_wgroup *g);
enum { LEARN_ROLLBACK = 0, LEARN_ADOPT = 1 };
/* Adopt the candidate (LEARN_ADOPT) or roll back: canary compares the
 * canary's change with the control's; else trial with base alone. */
int learn_wmax_verdict(int64_t base_canary, int64_t trial_canary, int64_t base_control,
		       int64_t trial_control, bool canary, uint32_t adopt_thousandths);
/* The memory the law's growth may cost: the bytes the rings may hold
 * beyond their homes (every heap's), granted from a budget that grows
 * while the process's peak RSS does not follow it (learner.c). */
#define LEARN_BUDGET_START 64 /* an episode's first budget: the peak / 64 */
#define LEARN_BUDGET_RAISE 4  /* a budget the peak did not follow: x 4 */
#define LEARN_BUDGET_COST 100 /* the peak may rise 1/100 in an episode */
struct learn_budget {
	uint64_t budget;  /* bytes it may grant; 0: no episode */
	uint64_t peak0;   /* the peak RSS when the episode began, plus the
			   * rises the loans cannot explain */
	uint64_t peak_last; /* the last window's peak */
	uint64_t granted; /* the last window's grant */
	uint32_t frozen;  /* the peak rose: no raise until the demand moves */
	uint64_t episodes, freezes;
};
/* The bytes granted for a window: want (what the law's CAPs would hold
 * beyond their homes), peak (the process's peak RSS now, 0: unknown),
 * moved (the program's demand moved: a class idle for two windows has
 * min_samples misses now). */
uint64_t learn_budget_decide(struct learn_budget *b, uint64_t want, uint64_t peak, bool moved);
/* The CAP in effect of a class whose law chose cap (home: its default)
 * when granted of want bytes are granted: the same share of every
 * class's growth. */
uint32_t learn_lent(uint32_t home, uint32_t cap, uint64_t granted, uint64_t want);
/* The thread: started by a malloc slow path (learner_poke). */
void learner_start_slow(void) hak_noinline;
bool learner_running(void);
void learner_stop(void);
struct learner_report {
	bool enabled;
	uint64_t windows, changes, trials, adopted, rollbacks;
	uint32_t wmax_mid;
	uint64_t budget, granted; /* bytes (learn_budget) */
	uint64_t freezes;
	bool moved[POOL_NCLS];
	uint32_t cap[POOL_NCLS], hit[POOL_NCLS];
};
void learner_report(struct learner_report *r);
hak_inline void learner_poke(void)
{
	if (unlikely(KNOB(learn)) && !learner_running())
		learner_start_slow();
}

/* ======================================================================
 * malloc.c: inline fast paths
 * ==================================================================== */
void *hak_alloc_slow(size_t n) hak_noinline;
void hak_free_slow(void *p) hak_noinline;
/* A free of p in s that hak_free_fast refused: not the start of a block
 * carved from s, or a block that is free already (reported). */
void hak_free_bad(struct slab *s, const void *p) hak_noinline;
/* A free of p (in s, of h) that found its bin full: back to its slab,
 * within the gate (out of line: the fast path then keeps no register
 * across a call). */
void heap_free_overflow(struct heap *h, struct segment *seg, struct slab *s, void *p) hak_noinline;

hak_inline void *hak_alloc_fast(size_t n)
{
	struct heap *h = tls_heap;
	if (likely(n <= HAK_MID_MAX)) {
		struct tbin *b = &h->bins[ace_small_tab[(n + 15) >> 4]];
		void *p = b->head;
		if (likely(p != NULL)) {
			b->head = blk_next(p);
			b->count--;
			blk_clear_key(p);
			DCTR_INC(h, alloc_fast);
			DCTR_ADD(h, req_bytes, n);
			DCTR_ADD(h, class_bytes, ace_class_size[ace_small_tab[(n + 15) >> 4]]);
			return p;
		}
	}
	return hak_alloc_slow(n);
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
			/* the start of a block carved from s, and not free
			 * already (the free key); else nothing is written */
			uintptr_t key = free_key();
			if (unlikely(slab_block_index(s, p) >= s->carved || blk_key(p) == key)) {
				hak_free_bad(s, p);
				return;
			}
			blk_set_key(p, key);
			struct tbin *b = &h->bins[s->cls];
			if (likely(b->count < b->cap)) {
				blk_set_next(p, b->head);
				b->head = p;
				b->count++;
				DCTR_INC(h, free_fast);
				return;
			}
			/* counted with the bin's address, still in a register
			 * (relaxed: readers sum it, heap_counters_sum) */
			__atomic_store_n(&b->overflows, __atomic_load_n(&b->overflows, __ATOMIC_RELAXED) + 1,
					 __ATOMIC_RELAXED);
			heap_free_overflow(h, seg, s, p); /* bin full: ss_local */
			return;
		}
	}
	hak_free_slow(p);
}

#endif /* HAKMEM_INTERNAL_H */
