/* os.c - the only file that asks the kernel for memory. */
#include "internal.h"

#include <errno.h>
#include <sys/mman.h>
#include <time.h>

#ifndef MAP_FIXED_NOREPLACE /* C libraries older than the flag (Linux 4.17) */
#define MAP_FIXED_NOREPLACE 0x100000
#endif

struct os_counters os_ctr;

/* Fault injection, for the tests only (no environment variable sets it):
 * 0, the default, is off and costs one relaxed load per mapping call, a
 * system call anyway.  n > 0: the n-th mapping call from now (os_map,
 * os_remap, os_remap_move) fails as if the kernel had refused it; then
 * injection is off again, or, with os_fail_sticky, every call after it
 * fails too (the countdown stays at -1) until a test stores 0.  Each
 * failure injected counts in os_fail_injected.  os_fail_unmap_countdown
 * does the same for munmap (os_unmap), with the same sticky flag. */
_Atomic long os_fail_countdown;
_Atomic long os_fail_unmap_countdown;
_Atomic long os_fail_sticky;
_Atomic uint64_t os_fail_injected;

static hak_noinline bool os_fail_now(_Atomic long *countdown, long n)
{
	while (n > 0) {
		long next = n > 1 ? n - 1
			    : atomic_load_explicit(&os_fail_sticky, memory_order_relaxed) ? -1 : 0;
		if (atomic_compare_exchange_weak_explicit(countdown, &n, next,
							  memory_order_relaxed, memory_order_relaxed)) {
			if (n > 1)
				return false; /* not this call yet */
			break;
		}
	}
	if (n == 0)
		return false; /* switched off meanwhile */
	atomic_fetch_add_explicit(&os_fail_injected, 1, memory_order_relaxed);
	return true;
}

/* Is this mapping call to fail (fault injection)? */
hak_inline bool os_fail_in(_Atomic long *countdown)
{
	long n = atomic_load_explicit(countdown, memory_order_relaxed);
	return unlikely(n != 0) && os_fail_now(countdown, n);
}
#define os_fail() os_fail_in(&os_fail_countdown)

/* size more bytes are mapped: count them and keep the peak. */
static void os_account_grow(size_t size)
{
	uint64_t now = atomic_fetch_add_explicit(&os_ctr.mapped, size, memory_order_relaxed) + size;
	uint64_t peak = atomic_load_explicit(&os_ctr.mapped_peak, memory_order_relaxed);
	while (now > peak &&
	       !atomic_compare_exchange_weak_explicit(&os_ctr.mapped_peak, &peak, now,
						      memory_order_relaxed, memory_order_relaxed))
		;
}

static void *os_map_raw(size_t size)
{
	int saved = errno;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	errno = saved;
	if (p == MAP_FAILED)
		return NULL;
	os_account_grow(size);
	atomic_fetch_add_explicit(&os_ctr.map_calls, 1, memory_order_relaxed);
	return p;
}

void *os_map(size_t size)
{
	if (os_fail())
		return NULL;
	return os_map_raw(size);
}

/* ---- munmap the kernel refuses ----
 *
 * munmap of part of a mapping splits it in two, and the kernel refuses
 * (ENOMEM) when that would take the process past vm.max_map_count.  Such
 * a range is never dropped silently: its pages go back at once (madvise
 * never splits a mapping), the failure counts in os_ctr.unmap_failures,
 * and the range waits in os_pending for a later os_unmap_retry (the huge
 * tier's slow paths call it); its bytes stay counted in os_ctr.mapped
 * until it is gone, and in os_ctr.unmap_pending meanwhile.  A range that
 * finds os_pending full stays mapped for good: counted in unmap_lost.
 * Each slot holds (first page << 28) | pages, or 0: lock-free, so a fork
 * needs nothing. */
#define OS_PENDING 64
#define OS_PENDING_PAGE_BITS 28
static _Atomic uint64_t os_pending[OS_PENDING];
static _Atomic uint64_t os_retry_ms; /* last os_unmap_retry that tried */

static uint64_t os_pending_pack(const void *p, size_t size)
{
	uint64_t page = (uintptr_t)p / HAK_PAGE, pages = size / HAK_PAGE;
	if (pages == 0 || pages >= (1ull << OS_PENDING_PAGE_BITS) || page >= (1ull << (64 - OS_PENDING_PAGE_BITS)))
		return 0;
	return page << OS_PENDING_PAGE_BITS | pages;
}

static bool os_pending_put(uint64_t v)
{
	for (unsigned i = 0; i < OS_PENDING; i++) {
		uint64_t z = 0;
		if (atomic_load_explicit(&os_pending[i], memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_strong_explicit(&os_pending[i], &z, v, memory_order_relaxed,
							    memory_order_relaxed))
			return true;
	}
	return false;
}

/* munmap, counted; false (errno kept) when the kernel refused. */
static bool os_munmap(void *p, size_t size)
{
	if (os_fail_in(&os_fail_unmap_countdown))
		return false;
	int saved = errno;
	bool ok = munmap(p, size) == 0;
	errno = saved;
	if (ok) {
		atomic_fetch_sub_explicit(&os_ctr.mapped, size, memory_order_relaxed);
		atomic_fetch_add_explicit(&os_ctr.unmap_calls, 1, memory_order_relaxed);
	}
	return ok;
}

bool os_unmap(void *p, size_t size)
{
	if (os_munmap(p, size))
		return true;
	atomic_fetch_add_explicit(&os_ctr.unmap_failures, 1, memory_order_relaxed);
	if (((uintptr_t)p | size) % HAK_PAGE != 0 || size == 0)
		return false; /* a caller's mistake: nothing was mapped there to keep */
	os_purge(p, size);
	uint64_t v = os_pending_pack(p, size);
	if (v != 0 && os_pending_put(v))
		atomic_fetch_add_explicit(&os_ctr.unmap_pending, size, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&os_ctr.unmap_lost, size, memory_order_relaxed);
	return false;
}

/* Try again to unmap the ranges the kernel refused before (at most once a
 * clock tick); true when none waits any more. */
bool os_unmap_retry(bool now)
{
	if (atomic_load_explicit(&os_ctr.unmap_pending, memory_order_relaxed) == 0)
		return true;
	uint64_t t = os_now_ms(), last = atomic_load_explicit(&os_retry_ms, memory_order_relaxed);
	if (!now && (t == last || !atomic_compare_exchange_strong_explicit(&os_retry_ms, &last, t,
									      memory_order_relaxed,
									      memory_order_relaxed)))
		return false;
	for (unsigned i = 0; i < OS_PENDING; i++) {
		uint64_t v = atomic_exchange_explicit(&os_pending[i], 0, memory_order_relaxed);
		if (v == 0)
			continue;
		void *p = (void *)(uintptr_t)((v >> OS_PENDING_PAGE_BITS) * HAK_PAGE);
		size_t size = (size_t)(v & ((1ull << OS_PENDING_PAGE_BITS) - 1)) * HAK_PAGE;
		if (os_munmap(p, size)) {
			atomic_fetch_sub_explicit(&os_ctr.unmap_pending, size, memory_order_relaxed);
		} else if (!os_pending_put(v)) {
			atomic_fetch_sub_explicit(&os_ctr.unmap_pending, size, memory_order_relaxed);
			atomic_fetch_add_explicit(&os_ctr.unmap_lost, size, memory_order_relaxed);
		}
	}
	return atomic_load_explicit(&os_ctr.unmap_pending, memory_order_relaxed) == 0;
}

/* The lowest address os_map_aligned handed out lately: the next mapping
 * is tried just below it, so that consecutive mappings touch and the
 * kernel merges them into one VMA (a process may hold only
 * vm.max_map_count of them).  Trimming an over-sized mapping to its
 * alignment would leave a gap between each two. */
static _Atomic uintptr_t os_hint;
#define OS_HINT_FLOOR ((uintptr_t)1 << 32) /* stay clear of the brk heap */

static void *os_map_below_hint(size_t size, size_t align)
{
	uintptr_t h = atomic_load_explicit(&os_hint, memory_order_relaxed);
	if (h < OS_HINT_FLOOR + size + align)
		return NULL;
	uintptr_t want = (h - size) & ~(uintptr_t)(align - 1);
	int saved = errno;
	void *p = mmap((void *)want, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	errno = saved;
	if (p == MAP_FAILED)
		return NULL;
	if ((uintptr_t)p != want) { /* a kernel without MAP_FIXED_NOREPLACE: a hint only */
		munmap(p, size);
		errno = saved;
		return NULL;
	}
	os_account_grow(size);
	atomic_fetch_add_explicit(&os_ctr.map_calls, 1, memory_order_relaxed);
	return p;
}

/* Map size bytes at an address that is a multiple of align: just below
 * the last such mapping when that room is free, else ask for size + align
 * and give back the ends. */
void *os_map_aligned(size_t size, size_t align)
{
	if (size > PTRDIFF_MAX || align > PTRDIFF_MAX - size)
		return NULL;
	if (os_fail())
		return NULL;
	if (align >= HAK_SEG_SIZE) {
		void *p = os_map_below_hint(size, align);
		if (p) {
			atomic_store_explicit(&os_hint, (uintptr_t)p, memory_order_relaxed);
			return p;
		}
	}
	size_t total = size + align;
	uint8_t *raw = os_map_raw(total);
	if (raw == NULL)
		return NULL;
	uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
	size_t head = start - (uintptr_t)raw;
	size_t tail = total - head - size;
	if (head)
		os_unmap(raw, head);
	if (tail)
		os_unmap((void *)(start + size), tail);
	if (align >= HAK_SEG_SIZE)
		atomic_store_explicit(&os_hint, start, memory_order_relaxed);
	return (void *)start;
}

/* Grow the mapping [p, p + old) to size bytes where it is, when the pages
 * after it are free; NULL (errno kept) when they are not. */
void *os_remap(void *p, size_t old, size_t size)
{
	if (os_fail())
		return NULL;
	int saved = errno;
	void *q = mremap(p, old, size, 0);
	errno = saved;
	if (q == MAP_FAILED)
		return NULL;
	os_account_grow(size - old);
	return q;
}

/* Move the mapping [p, p + old), resized to size bytes, onto dst, which
 * the caller mapped (os_map_aligned) with size bytes: the move replaces
 * that reservation.  NULL (errno kept) on failure: both stay as they
 * were. */
void *os_remap_move(void *p, size_t old, size_t size, void *dst)
{
	if (os_fail()) {
		atomic_fetch_add_explicit(&os_ctr.remap_failures, 1, memory_order_relaxed);
		return NULL;
	}
	int saved = errno;
	void *q = mremap(p, old, size, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	errno = saved;
	if (q == MAP_FAILED) {
		/* refused (the moved range splits mappings too): the caller
		 * keeps both and copies instead */
		atomic_fetch_add_explicit(&os_ctr.remap_failures, 1, memory_order_relaxed);
		return NULL;
	}
	/* the old range is gone, the reservation was replaced */
	atomic_fetch_sub_explicit(&os_ctr.mapped, old, memory_order_relaxed);
	return q;
}

void os_guard(void *p, size_t size)
{
	int saved = errno;
	mprotect(p, size, PROT_NONE); /* a failure leaves the page usable, no worse */
	errno = saved;
}

void os_purge(void *p, size_t size)
{
	int saved = errno;
	if (madvise(p, size, MADV_DONTNEED) == 0)
		atomic_fetch_add_explicit(&os_ctr.purged, size, memory_order_relaxed);
	errno = saved;
}

uint64_t os_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
