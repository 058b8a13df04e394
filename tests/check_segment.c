/* check_segment.c - internal tests of lib/segment.c.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * The segment map (two bits per 2 MiB region of the 48-bit address space):
 * HERE, PREV and NONE entries, neighbours left alone, addresses above 48
 * bits and regions nobody registered.  Segments: alignment and header of a
 * new segment for each tier, release into the cache (HAKMEM_SEGMENT_CACHE)
 * and reuse from it, unmapping beyond the cache, purging of cached
 * segments, and the list of abandoned segments (push, adopt, the oldest
 * first).
 *
 * Every test runs in its own forked process (Check's default), so changing
 * hak_cfg here changes nothing elsewhere.
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "itest.h"


/* A heap that owns the segments the tests make by hand: segment_alloc only
 * records it as the owner. */
static struct heap test_heap;

static unsigned segmap_raw(uintptr_t addr)
{
	return segmap_get(addr);
}


/* 64 MiB (32 segment-map entries) of address space hakmem has not mapped, aligned
 * to 64 MiB.  It stays reserved (PROT_NONE) until the test ends, so that
 * nothing - a segment mapped while Check reports progress - lands there
 * while the test writes made-up entries for it. */
static void *reserved;
static const size_t reserved_len = 128 * ((size_t)1 << 20);

static uintptr_t unused_range(void)
{
	reserved = mmap(NULL, reserved_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ck_assert_ptr_ne(reserved, MAP_FAILED);
	return ((uintptr_t)reserved + 64 * MiB - 1) & ~(uintptr_t)(64 * MiB - 1);
}

static void release_range(void)
{
	munmap(reserved, reserved_len);
}

START_TEST(test_segmap_here_prev_none)
{
	uintptr_t base = unused_range();
	ck_assert_uint_eq(base % (64 * MiB), 0);
	for (unsigned k = 0; k < 32; k++)
		ck_assert_ptr_null(segmap_lookup((void *)(base + k * HAK_SEG_SIZE)));

	segmap_set(base, SEGMAP_HERE);
	ck_assert_ptr_eq(segmap_lookup((void *)base), (void *)base);
	ck_assert_ptr_eq(segmap_lookup((void *)(base + 12345)), (void *)base);
	ck_assert_ptr_eq(segmap_lookup((void *)(base + HAK_SEG_SIZE - 1)), (void *)base);
	ck_assert_ptr_null(segmap_lookup((void *)(base + HAK_SEG_SIZE)));
	ck_assert_ptr_null(segmap_lookup((void *)(base - 1)));

	/* PREV: the header is one region back */
	segmap_set(base + HAK_SEG_SIZE, SEGMAP_PREV);
	ck_assert_ptr_eq(segmap_lookup((void *)(base + HAK_SEG_SIZE)), (void *)base);
	ck_assert_ptr_eq(segmap_lookup((void *)(base + 2 * HAK_SEG_SIZE - 16)), (void *)base);
	ck_assert_ptr_eq(segmap_lookup((void *)base), (void *)base);
	ck_assert_uint_eq(segmap_raw(base), SEGMAP_HERE);
	ck_assert_uint_eq(segmap_raw(base + HAK_SEG_SIZE), SEGMAP_PREV);

	/* overwrite HERE with PREV and back: no bits of the old value linger */
	segmap_set(base, SEGMAP_PREV);
	ck_assert_uint_eq(segmap_raw(base), SEGMAP_PREV);
	ck_assert_ptr_eq(segmap_lookup((void *)base), (void *)(base - HAK_SEG_SIZE));
	segmap_set(base, SEGMAP_HERE);
	ck_assert_uint_eq(segmap_raw(base), SEGMAP_HERE);

	segmap_set(base, SEGMAP_NONE);
	segmap_set(base + HAK_SEG_SIZE, SEGMAP_NONE);
	ck_assert_ptr_null(segmap_lookup((void *)base));
	ck_assert_ptr_null(segmap_lookup((void *)(base + HAK_SEG_SIZE + 100)));
	release_range();
}
END_TEST

/* All 32 entries of one map word, in a pattern: each entry is set alone,
 * its neighbours keep theirs. */
START_TEST(test_segmap_neighbours)
{
	uintptr_t base = unused_range();
	static const unsigned pat[4] = { SEGMAP_HERE, SEGMAP_NONE, SEGMAP_PREV, SEGMAP_HERE };
	for (unsigned k = 0; k < 32; k++)
		segmap_set(base + k * HAK_SEG_SIZE, pat[k % 4]);
	for (unsigned k = 0; k < 32; k++)
		ck_assert_msg(segmap_raw(base + k * HAK_SEG_SIZE) == pat[k % 4], "entry %u = %u", k,
			      segmap_raw(base + k * HAK_SEG_SIZE));
	/* the words on either side are untouched */
	ck_assert_uint_eq(segmap_raw(base - HAK_SEG_SIZE), SEGMAP_NONE);
	ck_assert_uint_eq(segmap_raw(base + 32 * HAK_SEG_SIZE), SEGMAP_NONE);
	/* clear every other one */
	for (unsigned k = 0; k < 32; k += 2)
		segmap_set(base + k * HAK_SEG_SIZE, SEGMAP_NONE);
	for (unsigned k = 0; k < 32; k++) {
		unsigned want = k % 2 ? pat[k % 4] : SEGMAP_NONE;
		ck_assert_msg(segmap_raw(base + k * HAK_SEG_SIZE) == want, "entry %u = %u, want %u", k,
			      segmap_raw(base + k * HAK_SEG_SIZE), want);
	}
	for (unsigned k = 0; k < 32; k++)
		segmap_set(base + k * HAK_SEG_SIZE, SEGMAP_NONE);
	for (unsigned k = 0; k < 32; k++)
		ck_assert_uint_eq(segmap_raw(base + k * HAK_SEG_SIZE), SEGMAP_NONE);
	release_range();
}
END_TEST

START_TEST(test_segmap_outside)
{
	int local = 0;
	ck_assert_ptr_null(segmap_lookup(NULL));
	ck_assert_ptr_null(segmap_lookup((void *)16));
	ck_assert_ptr_null(segmap_lookup(&local));              /* the stack */
	ck_assert_ptr_null(segmap_lookup((void *)&test_heap));  /* .bss */
	ck_assert_ptr_null(segmap_lookup((void *)test_segmap_outside)); /* text */
	/* beyond 48 bits: never looked up in the map (it has no entry) */
	ck_assert_ptr_null(segmap_lookup((void *)((uintptr_t)1 << 48)));
	ck_assert_ptr_null(segmap_lookup((void *)(((uintptr_t)1 << 48) + HAK_SEG_SIZE)));
	ck_assert_ptr_null(segmap_lookup((void *)((uintptr_t)1 << 56)));
	ck_assert_ptr_null(segmap_lookup((void *)UINTPTR_MAX));
	ck_assert_ptr_null(segmap_lookup((void *)0xffff800000000000u)); /* kernel half */
	/* the last region the map covers, unregistered */
	ck_assert_ptr_null(segmap_lookup((void *)(((uintptr_t)1 << 48) - 1)));
	/* a mapping of our own, 2 MiB aligned, that hakmem never saw */
	uint8_t *m = mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(m, MAP_FAILED);
	uint8_t *a = (uint8_t *)(((uintptr_t)m + HAK_SEG_MASK) & ~(uintptr_t)HAK_SEG_MASK);
	ck_assert_ptr_null(segmap_lookup(a));
	ck_assert_ptr_null(segmap_lookup(a + 4096));
	ck_assert_ptr_null(segmap_lookup(m));
	/* and a pointer into it is not taken for a hakmem block */
	ck_assert_uint_eq(hak_usable_size(a + 4096), 0);
	munmap(m, 4 * MiB);
}
END_TEST

START_TEST(test_segment_alloc_tiers)
{
	static const struct {
		int tier;
		unsigned shift, nslabs;
	} t[] = { { TIER_TINY, 16, 32 }, { TIER_MID, 17, 16 }, { TIER_LARGE, 14, 128 } };
	struct hak_stats st0 = stats();
	struct segment *segs[3];
	for (int i = 0; i < 3; i++) {
		struct segment *seg = segment_alloc(&test_heap, t[i].tier, tier_shift(t[i].tier));
		ck_assert_ptr_nonnull(seg);
		segs[i] = seg;
		ck_assert_uint_eq((uintptr_t)seg & HAK_SEG_MASK, 0);
		ck_assert_uint_eq(seg->magic, HAK_SEG_MAGIC);
		ck_assert_uint_eq(seg->tier, t[i].tier);
		ck_assert_uint_eq(seg->slab_shift, t[i].shift);
		ck_assert_uint_eq(seg->nslabs, t[i].nslabs);
		ck_assert(seg->used_mask == 0);
		ck_assert(seg->dirty == 0);
		ck_assert_ptr_eq(atomic_load(&seg->owner), &test_heap);
		for (unsigned k = 0; k < seg->nslabs; k++)
			ck_assert_uint_eq(seg->slabs[k].index, k);
		ck_assert_ptr_eq(segmap_lookup(seg), seg);
		ck_assert_ptr_eq(segmap_lookup((uint8_t *)seg + HAK_SEG_SIZE - 1), seg);
		ck_assert_uint_eq(segmap_raw((uintptr_t)seg), SEGMAP_HERE);
		/* the whole segment is writable */
		((volatile uint8_t *)seg)[HAK_SEG_SIZE - 1] = 1;
		((volatile uint8_t *)seg)[HAK_SEG_HDR] = 1;
	}
	ck_assert(sizeof(struct segment) <= HAK_SEG_HDR);
	struct hak_stats st1 = stats();
	ck_assert_uint_eq(st1.segments, st0.segments + 3);
	ck_assert_uint_ge(st1.segments_peak, st1.segments);
	for (int i = 0; i < 3; i++)
		segment_release(segs[i]);
	struct hak_stats st2 = stats();
	ck_assert_uint_eq(st2.segments, st0.segments);
	for (int i = 0; i < 3; i++)
		ck_assert_ptr_null(segmap_lookup(segs[i]));
}
END_TEST

START_TEST(test_segment_cache_reuse)
{
	hak_cfg.segment_cache = 1024;
	hak_cfg.purge_delay_ms = 3600000;
	struct hak_stats st0 = stats();
	struct segment *a = segment_alloc(&test_heap, TIER_TINY, tier_shift(TIER_TINY));
	struct segment *b = segment_alloc(&test_heap, TIER_MID, tier_shift(TIER_MID));
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_ne(a, b);
	memset((uint8_t *)a + HAK_SEG_HDR, 0x5a, 4096);
	uint64_t maps = atomic_load(&os_ctr.map_calls), unmaps = atomic_load(&os_ctr.unmap_calls);
	uint64_t mapped = atomic_load(&os_ctr.mapped);

	segment_release(a);
	segment_release(b);
	struct hak_stats st1 = stats();
	ck_assert_uint_eq(st1.segments_cached, st0.segments_cached + 2);
	ck_assert_uint_eq(st1.segments, st0.segments);
	ck_assert_ptr_null(segmap_lookup(a));
	ck_assert_ptr_null(atomic_load(&a->owner));
	ck_assert_uint_eq(atomic_load(&os_ctr.unmap_calls), unmaps); /* kept mapped */
	ck_assert_uint_eq(atomic_load(&os_ctr.mapped), mapped);
	ck_assert_uint_eq(a->purged, 0); /* the purge delay has not passed */

	/* most recently released first, no new mapping, any tier */
	struct segment *c = segment_alloc(&test_heap, TIER_LARGE, tier_shift(TIER_LARGE));
	ck_assert_ptr_eq(c, b);
	ck_assert_uint_eq(c->tier, TIER_LARGE);
	ck_assert_uint_eq(c->nslabs, 128); /* a mid segment had 16 */
	for (unsigned i = 0; i < c->nslabs; i++) /* no run left from before */
		ck_assert(c->slabs[i].state == SLAB_FREE && c->slabs[i].nslots == 1);
	ck_assert_uint_eq(c->magic, HAK_SEG_MAGIC);
	ck_assert_ptr_eq(segmap_lookup(c), c);
	struct segment *d = segment_alloc(&test_heap, TIER_TINY, tier_shift(TIER_TINY));
	ck_assert_ptr_eq(d, a);
	ck_assert_uint_eq(atomic_load(&os_ctr.map_calls), maps);
	ck_assert_uint_eq(stats().segments_cached, st0.segments_cached);
	/* not purged: the old contents are still there (no forced zeroing) */
	ck_assert_uint_eq(((uint8_t *)d)[HAK_SEG_HDR + 100], 0x5a);
	segment_release(c);
	segment_release(d);
}
END_TEST

/* Beyond HAKMEM_SEGMENT_CACHE a released segment is unmapped. */
START_TEST(test_segment_cache_full)
{
	hak_cfg.purge_delay_ms = 3600000;
	struct hak_stats st0 = stats();
	hak_cfg.segment_cache = (long)st0.segments_cached + 1; /* room for one */
	struct segment *a = segment_alloc(&test_heap, TIER_TINY, tier_shift(TIER_TINY));
	struct segment *b = segment_alloc(&test_heap, TIER_TINY, tier_shift(TIER_TINY));
	/* allocation took from the cache: room for more now */
	hak_cfg.segment_cache = (long)stats().segments_cached + 1;
	uint64_t unmaps = atomic_load(&os_ctr.unmap_calls), mapped = atomic_load(&os_ctr.mapped);
	segment_release(a); /* cached */
	ck_assert_uint_eq(atomic_load(&os_ctr.unmap_calls), unmaps);
	segment_release(b); /* cache full: unmapped */
	ck_assert_uint_eq(atomic_load(&os_ctr.unmap_calls), unmaps + 1);
	ck_assert_uint_eq(atomic_load(&os_ctr.mapped), mapped - HAK_SEG_SIZE);
	ck_assert_int_eq(msync(b, 4096, MS_ASYNC), -1);
	ck_assert_int_eq(errno, ENOMEM); /* no longer mapped */
	ck_assert_ptr_null(segmap_lookup(b));
	ck_assert_int_eq(msync(a, 4096, MS_ASYNC), 0);

	/* HAKMEM_SEGMENT_CACHE=0: nothing is kept */
	hak_cfg.segment_cache = 0;
	struct segment *c = segment_alloc(&test_heap, TIER_MID, tier_shift(TIER_MID));
	uint64_t cached = stats().segments_cached;
	unmaps = atomic_load(&os_ctr.unmap_calls);
	segment_release(c);
	ck_assert_uint_eq(atomic_load(&os_ctr.unmap_calls), unmaps + 1);
	ck_assert_uint_eq(stats().segments_cached, cached);
}
END_TEST

/* Cached segments give their pages back after the purge delay (0 here:
 * at once), keeping the header page that links the cache. */
START_TEST(test_segment_cache_purge)
{
	hak_cfg.segment_cache = 1024;
	hak_cfg.purge_delay_ms = 0;
	struct segment *a = segment_alloc(&test_heap, TIER_TINY, tier_shift(TIER_TINY));
	memset((uint8_t *)a + HAK_SEG_HDR, 0x77, HAK_SEG_SIZE - HAK_SEG_HDR);
	uint64_t purged = atomic_load(&os_ctr.purged);
	segment_release(a);
	ck_assert_uint_eq(a->purged, 1);
	ck_assert_uint_eq(atomic_load(&os_ctr.purged), purged + HAK_SEG_SIZE - HAK_PAGE);
	struct segment *b = segment_alloc(&test_heap, TIER_TINY, tier_shift(TIER_TINY));
	ck_assert_ptr_eq(b, a);
	/* the pages came back zero */
	for (size_t off = HAK_SEG_HDR; off < HAK_SEG_SIZE; off += 4096)
		if (((uint8_t *)b)[off] != 0 || ((uint8_t *)b)[off + 4095] != 0)
			ck_abort_msg("byte at %zu not zero after purge", off);

	/* with a long delay, nothing is purged until forced */
	hak_cfg.purge_delay_ms = 3600000;
	memset((uint8_t *)b + HAK_SEG_HDR, 0x77, 4096);
	purged = atomic_load(&os_ctr.purged);
	segment_release(b);
	ck_assert_uint_eq(b->purged, 0);
	segment_cache_collect(false);
	ck_assert_uint_eq(b->purged, 0);
	ck_assert_uint_eq(atomic_load(&os_ctr.purged), purged);
	segment_cache_collect(true);
	ck_assert_uint_eq(b->purged, 1);
	ck_assert_uint_ge(atomic_load(&os_ctr.purged), purged + HAK_SEG_SIZE - HAK_PAGE);
	ck_assert_uint_eq(((uint8_t *)b)[HAK_SEG_HDR], 0);
	/* a second collection does not purge it again */
	purged = atomic_load(&os_ctr.purged);
	segment_cache_collect(true);
	ck_assert_uint_eq(atomic_load(&os_ctr.purged), purged);
}
END_TEST

START_TEST(test_abandon_adopt)
{
	struct hak_stats st0 = stats();
	/* nothing was abandoned in this fresh process for the mid tier */
	struct segment *a = segment_alloc(&test_heap, TIER_MID, tier_shift(TIER_MID));
	struct segment *b = segment_alloc(&test_heap, TIER_MID, tier_shift(TIER_MID));
	struct segment *c = segment_alloc(&test_heap, TIER_LARGE, tier_shift(TIER_LARGE));
	ck_assert_uint_eq(st0.segments_abandoned, 0);
	segment_abandon(a);
	segment_abandon(b);
	segment_abandon(c);
	ck_assert_ptr_null(atomic_load(&a->owner));
	ck_assert_ptr_null(atomic_load(&b->owner));
	struct hak_stats st1 = stats();
	ck_assert_uint_eq(st1.segments_abandoned, 3);
	/* abandoned segments stay in use and mapped */
	ck_assert_uint_eq(st1.segments, st0.segments + 3);
	ck_assert_ptr_eq(segmap_lookup(a), a);

	ck_assert_ptr_null(segment_adopt(TIER_TINY));
	ck_assert_ptr_eq(segment_adopt(TIER_LARGE), c);
	ck_assert_ptr_null(segment_adopt(TIER_LARGE));
	struct segment *x = segment_adopt(TIER_MID), *y = segment_adopt(TIER_MID);
	ck_assert_ptr_null(segment_adopt(TIER_MID));
	ck_assert((x == a && y == b) || (x == b && y == a));
	ck_assert_uint_eq(stats().segments_abandoned, 0);
	segment_release(a);
	segment_release(b);
	segment_release(c);
	ck_assert_uint_eq(stats().segments, st0.segments);
}
END_TEST

/* A refill adopts the segment that waited longest: the others a thread
 * left are adopted in their turn, and the blocks other threads free into
 * them (on their slabs' remote lists, which only an owner takes back) do
 * not wait there while the newest segments go from thread to thread.
 * Taking the newest first, each new thread adopted again the segments the
 * last one left, and the older ones only filled with freed blocks: in
 * bench/rounds, a megabyte of them at a time. */
START_TEST(test_adopt_oldest_first)
{
	struct segment *s[3];
	for (int i = 0; i < 3; i++) {
		s[i] = segment_alloc(&test_heap, TIER_TINY, tier_shift(TIER_TINY));
		ck_assert_ptr_nonnull(s[i]);
		s[i]->used_mask = 1; /* slab 0 in use, the others free: room */
		segment_abandon(s[i]);
	}
	for (int i = 0; i < 3; i++)
		ck_assert_msg(segment_adopt(TIER_TINY) == s[i], "adoption %d did not take the %s segment", i,
			      i == 0 ? "oldest" : "next oldest");
	ck_assert_ptr_null(segment_adopt(TIER_TINY));
	for (int i = 0; i < 3; i++) {
		s[i]->used_mask = 0;
		segment_release(s[i]);
	}
}
END_TEST

/* A refill looks at the first few abandoned segments only, and moves
 * those without room to the back: a segment with room behind many full
 * ones is found by a later refill, and no refill walks them all. */
START_TEST(test_adopt_refill_bounded)
{
	enum { FULL = 12 };
	struct segment *s[FULL + 1];
	for (int i = 0; i <= FULL; i++) {
		s[i] = segment_alloc(&test_heap, TIER_TINY, tier_shift(TIER_TINY));
		ck_assert_ptr_nonnull(s[i]);
		/* every slot in use, no slab with a free block: no room */
		s[i]->used_mask = mask_low(s[i]->nslabs);
	}
	s[FULL]->used_mask &= ~(segmask_t)1; /* the newest has a free slot */
	for (int i = 0; i <= FULL; i++)
		segment_abandon(s[i]);
	ck_assert_msg(segment_adopt_refill(TIER_TINY) == NULL,
		      "a refill looked past the first %d full segments", FULL - 4);
	ck_assert_msg(segment_adopt_refill(TIER_TINY) == s[FULL],
		      "the second refill did not find the segment with room behind the full ones");
	ck_assert_ptr_null(segment_adopt_refill(TIER_TINY));
	ck_assert_ptr_null(segment_adopt(TIER_TINY));
	/* the full ones are all still there, oldest first again after a turn */
	for (int i = 0; i < FULL; i++)
		s[i]->used_mask &= ~(segmask_t)1;
	for (int i = 0; i < FULL; i++) {
		struct segment *got = segment_adopt(TIER_TINY);
		ck_assert_ptr_nonnull(got);
		got->used_mask = 0;
		segment_release(got);
	}
	ck_assert_ptr_null(segment_adopt(TIER_TINY));
	s[FULL]->used_mask = 0;
	segment_release(s[FULL]);
}
END_TEST

/* A large segment whose slots are all in runs whose blocks are out has no
 * room, though the later slots of its runs keep the capacity they had as
 * heads of shorter runs before (types.h: a run writes its first slot
 * only): a refill must not adopt it. */
START_TEST(test_adopt_large_runs_no_room)
{
	struct segment *seg = segment_alloc(&test_heap, TIER_LARGE, tier_shift(TIER_LARGE));
	ck_assert_ptr_nonnull(seg);
	unsigned half = seg->nslabs / 2;
	for (unsigned i = 0; i < seg->nslabs; i++) {
		struct slab *sl = &seg->slabs[i];
		bool head = i % half == 0;
		sl->capacity = 1; /* later slots: what they held as heads */
		sl->carved = head ? 1 : 0;
		sl->used = head ? 1 : 0;
		sl->nslots = head ? (uint8_t)half : 1;
	}
	seg->used_mask = mask_low(seg->nslabs);
	segment_abandon(seg);
	struct segment *got = segment_adopt_refill(TIER_LARGE);
	ck_assert_msg(got == NULL, "a refill adopted a large segment whose two runs are both out");
	got = segment_adopt(TIER_LARGE);
	ck_assert_ptr_null(got);
	/* a block of the second run comes back: room */
	seg->slabs[half].nfree = 1;
	ck_assert_ptr_eq(segment_adopt_refill(TIER_LARGE), seg);
	seg->used_mask = 0;
	segment_release(seg);
}
END_TEST

/* A real block: its segment is found from any pointer into it. */
START_TEST(test_block_segment)
{
	void *p = hak_malloc(100);
	struct segment *seg = segmap_lookup(p);
	ck_assert_ptr_eq(seg, (void *)((uintptr_t)p & ~(uintptr_t)HAK_SEG_MASK));
	ck_assert_uint_eq(seg->magic, HAK_SEG_MAGIC);
	ck_assert_uint_eq(seg->tier, TIER_TINY);
	ck_assert_ptr_eq(atomic_load(&seg->owner), tls_heap);
	ck_assert(seg->used_mask & mask_bit(slab_of(seg, p)->index));
	hak_free(p);
}
END_TEST

static Suite *segment_suite(void)
{
	Suite *s = suite_create("segment");
	TCase *tc = tcase_create("segmap");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_segmap_here_prev_none);
	tcase_add_test(tc, test_segmap_neighbours);
	tcase_add_test(tc, test_segmap_outside);
	suite_add_tcase(s, tc);

	tc = tcase_create("segments");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_segment_alloc_tiers);
	tcase_add_test(tc, test_segment_cache_reuse);
	tcase_add_test(tc, test_segment_cache_full);
	tcase_add_test(tc, test_segment_cache_purge);
	tcase_add_test(tc, test_abandon_adopt);
	tcase_add_test(tc, test_adopt_oldest_first);
	tcase_add_test(tc, test_adopt_refill_bounded);
	tcase_add_test(tc, test_adopt_large_runs_no_room);
	tcase_add_test(tc, test_block_segment);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(segment_suite());
	/* every test in a process of its own: the tests change hakmem's
	 * global state (hak_cfg, caches, heaps) */
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
