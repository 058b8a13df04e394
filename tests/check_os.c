/* check_os.c - internal tests of lib/os.c, the one file that asks the
 * kernel for memory.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * os_map_aligned: every alignment from 2 MiB to 64 MiB, with the trimmed
 * ends given back (os_ctr.mapped grows by exactly the size asked for);
 * os_purge: MADV_DONTNEED semantics (the range reads back zero, the rest is
 * kept) and the purged counter; os_unmap and os_map counters; errno kept
 * on every path; the coarse clock; consecutive aligned mappings merge
 * into one kernel mapping; a refused munmap is counted, purged, retried
 * (or counted lost), a refused moving mremap counted.
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)

struct snap {
	uint64_t mapped, peak, maps, unmaps, purged;
};

static struct snap snap(void)
{
	return (struct snap){ atomic_load(&os_ctr.mapped), atomic_load(&os_ctr.mapped_peak),
			      atomic_load(&os_ctr.map_calls), atomic_load(&os_ctr.unmap_calls),
			      atomic_load(&os_ctr.purged) };
}

static bool is_mapped(const void *p)
{
	unsigned char v;
	return mincore((void *)((uintptr_t)p & ~(uintptr_t)(HAK_PAGE - 1)), 1, &v) == 0;
}

START_TEST(test_map_aligned)
{
	/* No assertion between the snapshots: a passing ck_assert allocates
	 * (Check reports progress), which could map a segment. */
	for (size_t align = 2 * MiB; align <= 64 * MiB; align <<= 1) {
		size_t sizes[3] = { HAK_PAGE, 2 * MiB, align + align / 2 };
		for (int k = 0; k < 3; k++) {
			size_t size = sizes[k];
			struct snap a = snap();
			uint8_t *p = os_map_aligned(size, align);
			struct snap b = snap();
			bool zero = false, mapped = false, gone = true;
			if (p) {
				zero = p[0] == 0 && p[size - 1] == 0;
				p[0] = 1;
				p[size - 1] = 2;
				mapped = is_mapped(p) && is_mapped(p + size - 1);
				os_unmap(p, size);
				gone = !is_mapped(p);
			}
			struct snap c = snap();
			ck_assert_ptr_nonnull(p);
			ck_assert_msg((uintptr_t)p % align == 0, "os_map_aligned(%zu, %zu) = %p", size,
				      align, (void *)p);
			/* mapped just below the last one, or the ends were
			 * trimmed: exactly size is left mapped */
			ck_assert_uint_eq(b.mapped - a.mapped, size);
			ck_assert_uint_eq(b.maps - a.maps, 1);
			ck_assert_uint_le(b.unmaps - a.unmaps, 2);
			ck_assert_uint_ge(b.peak, b.mapped);
			/* writable from end to end, zero-filled */
			ck_assert(zero);
			ck_assert(mapped);
			ck_assert(gone);
			ck_assert_uint_eq(c.mapped, a.mapped);
			ck_assert_uint_eq(c.unmaps, b.unmaps + 1);
		}
	}
	/* page alignment works too */
	uint8_t *p = os_map_aligned(3 * HAK_PAGE, HAK_PAGE);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq((uintptr_t)p % HAK_PAGE, 0);
	os_unmap(p, 3 * HAK_PAGE);
}
END_TEST

START_TEST(test_map_fail_keeps_errno)
{
	struct snap a = snap();
	errno = 1234;
	ck_assert_ptr_null(os_map((size_t)1 << 62));
	ck_assert_int_eq(errno, 1234);
	errno = 4321;
	ck_assert_ptr_null(os_map_aligned((size_t)1 << 62, 2 * MiB));
	ck_assert_int_eq(errno, 4321);
	/* size + align overflows */
	ck_assert_ptr_null(os_map_aligned(SIZE_MAX - 100, 2 * MiB));
	ck_assert_ptr_null(os_map_aligned((size_t)PTRDIFF_MAX, 2 * MiB));
	ck_assert_ptr_null(os_map_aligned(2 * MiB, (size_t)1 << 63));
	struct snap b = snap();
	ck_assert_uint_eq(b.mapped, a.mapped);
	ck_assert_uint_eq(b.maps, a.maps);
	ck_assert_uint_eq(b.unmaps, a.unmaps);
}
END_TEST

START_TEST(test_map_unmap_counters)
{
	struct snap a = snap();
	uint8_t *p = os_map(5 * HAK_PAGE);
	struct snap b = snap();
	ck_assert_ptr_nonnull(p);
	/* unmapping part of it counts that part */
	errno = 99;
	os_unmap(p + 3 * HAK_PAGE, 2 * HAK_PAGE);
	int e1 = errno;
	struct snap c = snap();
	/* a failing munmap (unaligned address) counts nothing, keeps errno */
	errno = 77;
	os_unmap(p + 1, HAK_PAGE);
	int e2 = errno;
	struct snap d = snap();
	os_unmap(p, 3 * HAK_PAGE);
	struct snap e = snap();

	ck_assert_uint_eq(b.mapped, a.mapped + 5 * HAK_PAGE);
	ck_assert_uint_eq(b.maps, a.maps + 1);
	ck_assert_uint_ge(b.peak, b.mapped);
	ck_assert_int_eq(e1, 99);
	ck_assert_uint_eq(c.mapped, b.mapped - 2 * HAK_PAGE);
	ck_assert_uint_eq(c.unmaps, b.unmaps + 1);
	ck_assert_int_eq(e2, 77);
	ck_assert_uint_eq(d.mapped, c.mapped);
	ck_assert_uint_eq(d.unmaps, c.unmaps);
	ck_assert_uint_eq(e.mapped, a.mapped);
	ck_assert_uint_eq(e.unmaps, d.unmaps + 1);
	/* the peak never falls */
	ck_assert_uint_ge(e.peak, b.mapped);
}
END_TEST

START_TEST(test_purge)
{
	const size_t n = 16 * HAK_PAGE;
	uint8_t *p = os_map(n);
	ck_assert_ptr_nonnull(p);
	memset(p, 0x5a, n);
	struct snap a = snap();
	errno = 55;
	os_purge(p + 4 * HAK_PAGE, 8 * HAK_PAGE);
	int e1 = errno;
	struct snap b = snap();
	ck_assert_int_eq(e1, 55);
	ck_assert_uint_eq(b.purged, a.purged + 8 * HAK_PAGE);
	ck_assert_uint_eq(b.mapped, a.mapped); /* the range stays mapped */
	for (size_t i = 0; i < n; i++) {
		uint8_t want = (i >= 4 * HAK_PAGE && i < 12 * HAK_PAGE) ? 0 : 0x5a;
		if (p[i] != want)
			ck_abort_msg("byte %zu = %#x after purge, expected %#x", i, p[i], want);
	}
	/* still usable after the purge */
	p[5 * HAK_PAGE] = 1;
	ck_assert_uint_eq(p[5 * HAK_PAGE], 1);
	/* a failing madvise (unaligned) counts nothing, keeps errno */
	errno = 66;
	os_purge(p + 1, HAK_PAGE);
	int e2 = errno;
	struct snap c = snap();
	ck_assert_int_eq(e2, 66);
	ck_assert_uint_eq(c.purged, b.purged);
	ck_assert_uint_eq(p[1], 0x5a);
	os_unmap(p, n);
}
END_TEST

START_TEST(test_clock)
{
	uint64_t t0 = os_now_ms();
	ck_assert_uint_gt(t0, 0);
	uint64_t prev = t0;
	for (int i = 0; i < 100000; i++) {
		uint64_t t = os_now_ms();
		if (t < prev)
			ck_abort_msg("os_now_ms went back: %llu after %llu", (unsigned long long)t,
				     (unsigned long long)prev);
		prev = t;
	}
	struct timespec ts = { 0, 60 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	uint64_t t1 = os_now_ms();
	/* 60 ms slept; the coarse clock ticks every few ms */
	ck_assert_uint_ge(t1 - t0, 40);
	ck_assert_uint_lt(t1 - t0, 5000);
}
END_TEST

/* Lines of /proc/self/maps: the kernel mappings (VMAs) of the process. */
static int vma_count(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (f == NULL)
		return -1;
	int n = 0, c;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* Consecutive aligned mappings touch, and the kernel merges them: 64 of
 * them add a mapping or two, not 64. */
START_TEST(test_map_aligned_adjacent)
{
	enum { N = 64 };
	uint8_t *p[N];
	int before = vma_count();
	for (int i = 0; i < N; i++) {
		p[i] = os_map_aligned(4 * MiB, 2 * MiB);
		if (p[i] == NULL)
			ck_abort_msg("os_map_aligned failed");
		p[i][0] = 1; /* faulted: merging must survive it */
	}
	int during = vma_count();
	for (int i = 0; i < N; i++)
		os_unmap(p[i], 4 * MiB);
	int after = vma_count();
	ck_assert_msg(during - before <= 4, "%d aligned mappings made %d kernel mappings", N,
		      during - before);
	ck_assert_int_le(after, before + 1);
}
END_TEST

/* A munmap the kernel refuses: counted, the pages go back at once, the
 * range waits and is unmapped by a later retry; with no room left to wait
 * it is counted as lost. */
START_TEST(test_unmap_refused)
{
	const size_t n = 8 * HAK_PAGE;
	uint8_t *p = os_map(n);
	ck_assert_ptr_nonnull(p);
	memset(p, 0x5a, n);
	struct snap a = snap();
	uint64_t f0 = atomic_load(&os_ctr.unmap_failures);
	atomic_store(&os_fail_unmap_countdown, 1);
	bool ok = os_unmap(p, n);
	ck_assert(!ok);
	struct snap b = snap();
	ck_assert_uint_eq(atomic_load(&os_ctr.unmap_failures), f0 + 1);
	ck_assert_uint_eq(atomic_load(&os_ctr.unmap_pending), n);
	ck_assert_uint_eq(b.mapped, a.mapped); /* still mapped, and counted */
	ck_assert(is_mapped(p));
	ck_assert_uint_eq(p[0], 0);            /* but its pages went back */
	ck_assert_uint_eq(p[n - 1], 0);
	ck_assert_uint_eq(b.purged, a.purged + n);
	/* the retry unmaps it */
	ck_assert(os_unmap_retry(true));
	ck_assert_uint_eq(atomic_load(&os_ctr.unmap_pending), 0);
	ck_assert(!is_mapped(p));
	ck_assert_uint_eq(snap().mapped, a.mapped - n);
	/* refused from now on: 64 ranges wait, the 65th is lost */
	uint8_t *q[65];
	for (int i = 0; i < 65; i++) {
		q[i] = os_map(HAK_PAGE);
		ck_assert_ptr_nonnull(q[i]);
	}
	atomic_store(&os_fail_sticky, 1);
	atomic_store(&os_fail_unmap_countdown, 1);
	for (int i = 0; i < 65; i++)
		os_unmap(q[i], HAK_PAGE);
	ck_assert(!os_unmap_retry(true)); /* still refused */
	atomic_store(&os_fail_unmap_countdown, 0);
	atomic_store(&os_fail_sticky, 0);
	ck_assert_uint_eq(atomic_load(&os_ctr.unmap_failures), f0 + 1 + 65); /* a retry refused is not counted again */
	ck_assert_uint_eq(atomic_load(&os_ctr.unmap_pending), 64 * HAK_PAGE);
	ck_assert_uint_eq(atomic_load(&os_ctr.unmap_lost), HAK_PAGE);
	ck_assert(os_unmap_retry(true));
	ck_assert_uint_eq(atomic_load(&os_ctr.unmap_pending), 0);
	int still = 0;
	for (int i = 0; i < 65; i++)
		still += is_mapped(q[i]);
	ck_assert_int_eq(still, 1);
}
END_TEST

/* A moving mremap refused: NULL, counted. */
START_TEST(test_remap_move_refused)
{
	uint8_t *p = os_map(2 * HAK_PAGE), *dst = os_map(4 * HAK_PAGE);
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(dst);
	p[0] = 7;
	uint64_t f0 = atomic_load(&os_ctr.remap_failures);
	atomic_store(&os_fail_countdown, 1);
	ck_assert_ptr_null(os_remap_move(p, 2 * HAK_PAGE, 4 * HAK_PAGE, dst));
	ck_assert_uint_eq(atomic_load(&os_ctr.remap_failures), f0 + 1);
	ck_assert_uint_eq(p[0], 7);
	ck_assert_ptr_eq(os_remap_move(p, 2 * HAK_PAGE, 4 * HAK_PAGE, dst), dst);
	ck_assert_uint_eq(dst[0], 7);
	ck_assert_uint_eq(atomic_load(&os_ctr.remap_failures), f0 + 1);
	os_unmap(dst, 4 * HAK_PAGE);
}
END_TEST

static Suite *os_suite(void)
{
	Suite *s = suite_create("os");
	TCase *tc = tcase_create("os");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_map_aligned);
	tcase_add_test(tc, test_map_fail_keeps_errno);
	tcase_add_test(tc, test_map_unmap_counters);
	tcase_add_test(tc, test_purge);
	tcase_add_test(tc, test_clock);
	tcase_add_test(tc, test_map_aligned_adjacent);
	tcase_add_test(tc, test_unmap_refused);
	tcase_add_test(tc, test_remap_move_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(os_suite());
	/* every test in a process of its own: the tests change hakmem's
	 * global state (hak_cfg, caches, heaps) */
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
