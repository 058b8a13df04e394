/* testutil.h - helpers shared by hakmem's test programs.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * Every test program includes this header after defining _GNU_SOURCE.
 *
 * Macros that select what is tested:
 *   TEST_HAKMEM   the program is linked with libhakmem: hakmem-specific
 *                 checks (foreign pointers, statistics) are compiled in.
 *                 Without it the programs build against the C library's
 *                 malloc alone, which is how the tests were first shaken
 *                 out (and how they are shown able to fail).
 *   USE_HAK_API   allocate through hak_malloc, hak_free, ... instead of
 *                 malloc, free, ...: the form built when the override is
 *                 disabled (--disable-override).
 *
 * Tests call the allocator through t_malloc, t_free, ...; the names map to
 * one family or the other here.
 */
#ifndef HAKMEM_TESTS_TESTUTIL_H
#define HAKMEM_TESTS_TESTUTIL_H

#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef TEST_HAKMEM
#  include <hakmem/hakmem.h>
#endif

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

#ifdef USE_HAK_API
#  ifndef TEST_HAKMEM
#    error "USE_HAK_API needs TEST_HAKMEM (the hak_* API comes from libhakmem)"
#  endif
#  define T_FAMILY "hak_* API"
#  define t_malloc(n)              hak_malloc(n)
#  define t_calloc(n, s)           hak_calloc((n), (s))
#  define t_realloc(p, n)          hak_realloc((p), (n))
#  define t_free(p)                hak_free(p)
#  define t_free_sized(p, n)       hak_free_sized((p), (n))
#  define t_aligned_alloc(a, n)    hak_aligned_alloc((a), (n))
#  define t_posix_memalign(m, a, n) hak_posix_memalign((m), (a), (n))
#  define t_usable_size(p)         hak_usable_size(p)
/* The API has no aligned sized free: hak_free_sized takes any block. */
#  define t_free_aligned_sized(p, a, n) hak_free_sized((p), (n))
#else
#  define T_FAMILY "malloc family"
/* The standard family; the ones the hak_* API lacks are only tested here. */
#  define T_LIBC_EXTRAS 1
#  define t_malloc(n)              malloc(n)
#  define t_calloc(n, s)           calloc((n), (s))
#  define t_realloc(p, n)          realloc((p), (n))
#  define t_free(p)                free(p)
#  define t_aligned_alloc(a, n)    aligned_alloc((a), (n))
#  define t_posix_memalign(m, a, n) posix_memalign((m), (a), (n))
#  define t_usable_size(p)         malloc_usable_size(p)
#  define t_reallocarray(p, n, s)  reallocarray((p), (n), (s))
#  define t_memalign(a, n)         memalign((a), (n))
#  define t_valloc(n)              valloc(n)
#  define t_pvalloc(n)             pvalloc(n)
/* C23 sized frees.  Older C libraries do not declare them; declared weak so
 * that the programs still link where nothing defines them (the tests then
 * say so instead of passing). */
void free_sized(void *ptr, size_t size) __attribute__((weak));
void free_aligned_sized(void *ptr, size_t alignment, size_t size) __attribute__((weak));
/* Where they are missing (a test says so), plain free stands in. */
#  define t_free_sized(p, n) \
	(free_sized != NULL ? free_sized((p), (n)) : free(p))
#  define t_free_aligned_sized(p, a, n) \
	(free_aligned_sized != NULL ? free_aligned_sized((p), (a), (n)) : free(p))
#endif

/* Hide a value from the optimiser, so that it cannot reason about (and
 * remove) allocations whose results are only compared with NULL. */
#define OPAQUE(x) ({ __auto_type opaque_v_ = (x); \
		__asm__ volatile("" : "+r"(opaque_v_)); opaque_v_; })

/* ---- random numbers: splitmix64, one state per user ---------------------- */

static inline uint64_t tu_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static inline uint64_t tu_rand(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ULL;
	return tu_mix64(*state);
}

/* Uniform in [lo, hi]. */
static inline size_t tu_range(uint64_t *state, size_t lo, size_t hi)
{
	return lo + (size_t)(tu_rand(state) % (uint64_t)(hi - lo + 1));
}

/* ---- byte patterns ------------------------------------------------------
 *
 * pat_fill(p, n, key) writes n bytes that depend on key and on each byte's
 * offset (not on the address, so a pattern survives realloc moving it);
 * pat_check() returns the offset of the first byte that differs, or
 * (size_t)-1 when all n bytes are right.  Callers derive key from whatever
 * they want the block to prove (pointer, size, seed).
 */
typedef uint64_t __attribute__((may_alias, aligned(1))) tu_u64u;

static inline uint64_t pat_word(uint64_t key, size_t off)
{
	return key ^ ((uint64_t)off * 0x9e3779b97f4a7c15ULL);
}

static inline unsigned char pat_byte(uint64_t key, size_t off)
{
	return (unsigned char)(pat_word(key, off & ~(size_t)7) >> ((off & 7) * 8));
}

static inline void pat_fill(void *p, size_t n, uint64_t key)
{
	unsigned char *b = p;
	size_t i = 0;

	for (; i + 8 <= n; i += 8)
		*(tu_u64u *)(b + i) = pat_word(key, i);
	for (; i < n; i++)
		b[i] = pat_byte(key, i);
}

static inline size_t pat_check(const void *p, size_t n, uint64_t key)
{
	const unsigned char *b = p;
	size_t i = 0;

	for (; i + 8 <= n; i += 8)
		if (*(const tu_u64u *)(b + i) != pat_word(key, i))
			break;
	for (; i < n; i++)
		if (b[i] != pat_byte(key, i))
			return i;
	return (size_t)-1;
}

#define PAT_OK ((size_t)-1)

/* Offset of the first non-zero byte, or (size_t)-1. */
static inline size_t zero_check(const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i = 0;

	for (; i + 8 <= n; i += 8)
		if (*(const tu_u64u *)(b + i) != 0)
			break;
	for (; i < n; i++)
		if (b[i] != 0)
			return i;
	return (size_t)-1;
}

/* ---- process memory ------------------------------------------------------ */

/* Resident set size in bytes (from /proc/self/statm), 0 when unreadable. */
static inline size_t tu_rss(void)
{
	unsigned long size_pages = 0, rss_pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return 0;
	if (fscanf(f, "%lu %lu", &size_pages, &rss_pages) != 2)
		rss_pages = 0;
	fclose(f);
	return (size_t)rss_pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Seconds on the monotonic clock. */
static inline double tu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* An integer from the environment, or def when unset or not a number. */
static inline long tu_env_long(const char *name, long def)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return def;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return def;
	return v;
}

#endif /* HAKMEM_TESTS_TESTUTIL_H */
