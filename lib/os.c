/* os.c - the only file that asks the kernel for memory. */
#include "internal.h"

#include <errno.h>
#include <sys/mman.h>
#include <time.h>

struct os_counters os_ctr;

/* size more bytes are mapped: count them and keep the peak. */
void os_account_grow(size_t size)
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
