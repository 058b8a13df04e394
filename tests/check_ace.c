/* check_ace.c - internal tests of lib/ace.c: size -> class.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * For every request size up to 1 MiB (every size to 64 KiB, then every
 * 16th) the class ace_class() picks must be the smallest class that holds
 * the request, and its round-up must stay inside the documented bound:
 * under 16 bytes up to 128 B, strictly under 25% of the request above.
 * The lookup table must agree with the formula, and the classes must cut
 * the tiers at 1 KiB, 32 KiB and 1 MiB.
 *
 * Loops report only failures (ck_abort_msg): a passing ck_assert costs a
 * message to the Check runner, far too slow a million times over.
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* An oracle independent of ace.c: the smallest class whose size >= n, by
 * linear search of the class table. */
static unsigned oracle_class(size_t n)
{
	for (unsigned c = 0; c < HAK_NCLS; c++)
		if (ace_class_size[c] >= n)
			return c;
	return HAK_NCLS;
}

static void check_size(size_t n)
{
	unsigned c = ace_class(n);
	if (c >= HAK_NCLS)
		ck_abort_msg("ace_class(%zu) = %u: no such class", n, c);
	size_t cs = ace_class_size[c];
	if (cs < n)
		ck_abort_msg("ace_class(%zu) = %u of size %zu: too small", n, c, cs);
	if (c > 0 && ace_class_size[c - 1] >= n)
		ck_abort_msg("ace_class(%zu) = %u (%zu B) but class %u (%zu B) fits: not the smallest",
			     n, c, cs, c - 1, (size_t)ace_class_size[c - 1]);
	if (n <= 128) {
		if (cs - n >= 16)
			ck_abort_msg("ace_class(%zu): round-up %zu >= 16", n, cs - n);
	} else if ((cs - n) * 4 >= n) {
		ck_abort_msg("ace_class(%zu): round-up %zu not under 25%%", n, cs - n);
	}
	if (c != oracle_class(n))
		ck_abort_msg("ace_class(%zu) = %u, smallest fitting class is %u", n, c, oracle_class(n));
	/* the table (<= 32 KiB) and the formula must agree */
	if (c != ace_class_slow(n))
		ck_abort_msg("ace_class(%zu) = %u but ace_class_slow = %u", n, c, ace_class_slow(n));
}

START_TEST(test_every_size)
{
	size_t n;
	for (n = 1; n <= 64 * KiB; n++)
		check_size(n);
	for (; n <= HAK_LARGE_MAX; n += 16)
		check_size(n);
	check_size(HAK_LARGE_MAX);
	check_size(HAK_LARGE_MAX - 1);
	/* every class edge and its neighbours */
	for (unsigned c = 0; c < HAK_NCLS; c++) {
		check_size(ace_class_size[c]);
		check_size(ace_class_size[c] - 1);
		if (ace_class_size[c] < HAK_LARGE_MAX)
			check_size(ace_class_size[c] + 1);
	}
}
END_TEST

START_TEST(test_class_table)
{
	ck_assert_uint_eq(ace_class_size[0], 16);
	ck_assert_uint_eq(ace_class_size[HAK_NCLS - 1], HAK_LARGE_MAX);
	ck_assert_uint_eq(ace_class_size[7], 128);
	ck_assert_uint_eq(ace_class_size[HAK_CLS_MID - 1], HAK_TINY_MAX);
	ck_assert_uint_eq(ace_class_size[HAK_CLS_LARGE - 1], HAK_MID_MAX);
	for (unsigned c = 0; c < HAK_NCLS; c++) {
		if (ace_class_size[c] % 16 != 0)
			ck_abort_msg("class %u size %u not a multiple of 16", c, ace_class_size[c]);
		if (c > 0 && ace_class_size[c] <= ace_class_size[c - 1])
			ck_abort_msg("class %u size %u not above class %u", c, ace_class_size[c], c - 1);
		/* each class is its own answer, one byte more is the next */
		if (ace_class(ace_class_size[c]) != c)
			ck_abort_msg("ace_class(size of class %u) = %u", c, ace_class(ace_class_size[c]));
		if (c + 1 < HAK_NCLS && ace_class(ace_class_size[c] + 1) != c + 1)
			ck_abort_msg("ace_class(size of class %u + 1) = %u", c, ace_class(ace_class_size[c] + 1));
		/* four classes per doubling above 128 B: 5,6,7,8 * 2^(k-2) */
		if (c >= 8) {
			unsigned k = 7 + (c - 8) / 4, j = (c - 8) % 4;
			if (ace_class_size[c] != (uint32_t)((j + 5) << (k - 2)))
				ck_abort_msg("class %u size %u, expected %u", c, ace_class_size[c],
					     (j + 5) << (k - 2));
		}
	}
	/* table entry i serves 16(i-1)+1 .. 16i */
	ck_assert_uint_eq(sizeof(ace_small_tab), (HAK_MID_MAX >> 4) + 1);
	for (size_t i = 1; i <= (HAK_MID_MAX >> 4); i++)
		if (ace_small_tab[i] != oracle_class(i * 16) ||
		    ace_small_tab[i] != oracle_class(i * 16 - 15))
			ck_abort_msg("ace_small_tab[%zu] = %u, expected %u", i, ace_small_tab[i],
				     oracle_class(i * 16));
	/* size 0 is served by the smallest class (malloc(0) gives a block) */
	ck_assert_uint_eq(ace_class(0), 0);
}
END_TEST

START_TEST(test_tier_boundaries)
{
	ck_assert_int_eq(ace_tier_of_class(ace_class(1)), TIER_TINY);
	ck_assert_int_eq(ace_tier_of_class(ace_class(1024)), TIER_TINY);
	ck_assert_int_eq(ace_tier_of_class(ace_class(1025)), TIER_MID);
	ck_assert_int_eq(ace_tier_of_class(ace_class(32768)), TIER_MID);
	ck_assert_int_eq(ace_tier_of_class(ace_class(32769)), TIER_LARGE);
	ck_assert_int_eq(ace_tier_of_class(ace_class(HAK_LARGE_MAX)), TIER_LARGE);
	ck_assert_uint_eq(ace_class(1024), HAK_CLS_MID - 1);
	ck_assert_uint_eq(ace_class(1025), HAK_CLS_MID);
	ck_assert_uint_eq(ace_class(32768), HAK_CLS_LARGE - 1);
	ck_assert_uint_eq(ace_class(32769), HAK_CLS_LARGE);
	ck_assert_uint_eq(ace_class(HAK_LARGE_MAX), HAK_NCLS - 1);
	for (unsigned c = 0; c < HAK_NCLS; c++) {
		int t = ace_tier_of_class(c);
		size_t cs = ace_class_size[c];
		int want = cs <= HAK_TINY_MAX ? TIER_TINY : cs <= HAK_MID_MAX ? TIER_MID : TIER_LARGE;
		if (t != want)
			ck_abort_msg("class %u (%zu B) in tier %d, expected %d", c, cs, t, want);
	}
}
END_TEST

/* The allocator itself must put each size in the segment of its tier, and
 * sizes above 1 MiB in a huge mapping. */
START_TEST(test_tiers_in_allocator)
{
	static const struct {
		size_t n;
		int tier;
	} cases[] = {
		{ 1, TIER_TINY },	  { 1024, TIER_TINY },	   { 1025, TIER_MID },
		{ 32768, TIER_MID },	  { 32769, TIER_LARGE },   { HAK_LARGE_MAX, TIER_LARGE },
		{ HAK_LARGE_MAX + 1, TIER_HUGE },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		void *p = hak_malloc(cases[i].n);
		ck_assert_ptr_nonnull(p);
		struct segment *seg = segmap_lookup(p);
		ck_assert_ptr_nonnull(seg);
		ck_assert_msg(seg->tier == cases[i].tier, "malloc(%zu) in tier %u, expected %d",
			      cases[i].n, seg->tier, cases[i].tier);
		if (seg->tier != TIER_HUGE) {
			ck_assert_uint_eq(slab_bsize(slab_of(seg, p)),
					  ace_class_size[ace_class(cases[i].n)]);
			ck_assert_uint_eq(hak_usable_size(p), ace_class_size[ace_class(cases[i].n)]);
		}
		ck_assert_uint_eq((uintptr_t)p % 16, 0);
		hak_free(p);
	}
}
END_TEST

static Suite *ace_suite(void)
{
	Suite *s = suite_create("ace");
	TCase *tc = tcase_create("classes");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_every_size);
	tcase_add_test(tc, test_class_table);
	tcase_add_test(tc, test_tier_boundaries);
	tcase_add_test(tc, test_tiers_in_allocator);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ace_suite());
	/* every test in a process of its own: the tests change hakmem's
	 * global state (hak_cfg, caches, heaps) */
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
