/* os.c - the only file that asks the kernel for memory. */
#include "internal.h"

#include <errno.h>
#include <sys/mman.h>
#include <time.h>

struct os_counters os_ctr;

/* Fault injection, for the tests only (no environment variable sets it):
 * 0, the default, is off and costs one relaxed load per mapping call, a
 * system call anyway.  n > 0: the n-th mapping call from now (os_map,
 * os_remap, os_remap_move) fails as if the kernel had refused it; then
 * injection is off again, or, with os_fail_sticky, every call after it
 * fails too (the countdown stays at -1) until a test stores 0.  Each
 * failure injected counts in os_fail_injected. */
_Atomic long os_fail_countdown;
_Atomic long os_fail_sticky;
_Atomic uint64_t os_fail_injected;

static hak_noinline bool os_fail_now(long n)
{
	while (n > 0) {
		long next = n > 1 ? n - 1
			    : atomic_load_explicit(&os_fail_sticky, memory_order_relaxed) ? -1 : 0;
		if (atomic_compare_exchange_weak_explicit(&os_fail_countdown, &n, next,
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
hak_inline bool os_fail(void)
{
	long n = atomic_load_explicit(&os_fail_countdown, memory_order_relaxed);
	return unlikely(n != 0) && os_fail_now(n);
}

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

void *os_map(size_t size)
{
	if (os_fail())
		return NULL;
	int saved = errno;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	errno = saved;
	if (p == MAP_FAILED)
		return NULL;
	os_account_grow(size);
	atomic_fetch_add_explicit(&os_ctr.map_calls, 1, memory_order_relaxed);
	return p;
}

void os_unmap(void *p, size_t size)
{
	int saved = errno;
	if (munmap(p, size) == 0) {
		atomic_fetch_sub_explicit(&os_ctr.mapped, size, memory_order_relaxed);
		atomic_fetch_add_explicit(&os_ctr.unmap_calls, 1, memory_order_relaxed);
	}
	errno = saved;
}

/* Map size bytes at an address that is a multiple of align: ask for
 * size + align and give back the ends. */
void *os_map_aligned(size_t size, size_t align)
{
	if (size > PTRDIFF_MAX || align > PTRDIFF_MAX - size)
		return NULL;
	size_t total = size + align;
	uint8_t *raw = os_map(total);
	if (raw == NULL)
		return NULL;
	uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
	size_t head = start - (uintptr_t)raw;
	size_t tail = total - head - size;
	if (head)
		os_unmap(raw, head);
	if (tail)
		os_unmap((void *)(start + size), tail);
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
	if (os_fail())
		return NULL;
	int saved = errno;
	void *q = mremap(p, old, size, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	errno = saved;
	if (q == MAP_FAILED)
		return NULL;
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
