/* itest.h - helpers shared by the internal (white-box) suites.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * Included after internal.h and <check.h>.  Worker threads never call
 * ck_assert (a passing assertion allocates: Check reports progress to its
 * parent); they record the first failure in terr[] with TFAIL, and the
 * test asserts after the join (run_thread does).
 */
#ifndef HAKMEM_TESTS_ITEST_H
#define HAKMEM_TESTS_ITEST_H

#include <pthread.h>
#include <stdio.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static char terr[1024] __attribute__((unused));
#define TFAIL(...)                                                       \
	do {                                                             \
		if (!terr[0])                                            \
			snprintf(terr, sizeof(terr), __VA_ARGS__);       \
	} while (0)

/* The white-box suites count every block, slab and segment of a heap
 * and every mapping call: the purge thread (thread.c) would allocate its
 * own memory as it starts (pthread_create) and adopt abandoned segments
 * while they count.  Off in them, unless a test turns it on. */
__attribute__((constructor)) static void itest_purge_thread_off(void)
{
	atomic_store(&hak_cfg.purge_thread, 0);
}

/* fn(arg) in a thread of its own; fails the test with what it recorded */
static inline void run_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	terr[0] = '\0';
	ck_assert_int_eq(pthread_create(&t, NULL, fn, arg), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_msg(terr[0] == '\0', "%s", terr);
}

/* The slab shift of a tier's segments (segment_alloc's argument). */
static inline unsigned tier_shift(int tier)
{
	return tier == TIER_TINY ? HAK_TINY_SHIFT : tier == TIER_MID ? HAK_MID_SHIFT : HAK_LARGE_SHIFT;
}

/* The cache cap of every class of a tier, through the knob table: heaps
 * pick it up at their next refill (new heaps at once). */
static inline void set_tier_cap(int tier, uint32_t cap)
{
	for (unsigned c = 0; c < HAK_NBINS; c++)
		if (ace_tier_of_class(c) == tier)
			knob_set_cap(c, cap);
}

static inline struct hak_stats stats(void)
{
	struct hak_stats st;
	hak_stats_get(&st);
	return st;
}

#endif /* HAKMEM_TESTS_ITEST_H */
