/* check_large.c - internal tests of lib/huge.c: huge blocks (> 1 MiB,
 * ranges of 2 MiB regions) and the large tier's geometry.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * huge_alloc for sizes 1 MiB+1 .. 64 MiB and alignments up to 64 MiB (the
 * SEGMAP_PREV case: header one region below the block); the huge cache
 * (hits, splits and joins, eviction, HAKMEM_HUGE_CACHE=0, a cache for
 * each thread and taking from another's), calloc zeroing
 * after reuse with and without a purge; huge_realloc shrinking, growing in
 * place and moving, keeping contents and alignment; hak_usable_size;
 * 70,000 blocks of 1.1 MiB stay a few kernel mappings and give their
 * address space back; a refused munmap is counted, purged and retried.
 *
 * Each test runs in its own process; the hak_cfg values a test sets are
 * its own.
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "itest.h"



static unsigned segmap_raw(uintptr_t addr)
{
	return segmap_get(addr);
}

static bool is_mapped(const void *p)
{
	unsigned char v;
	return mincore((void *)((uintptr_t)p & ~(uintptr_t)(HAK_PAGE - 1)), 1, &v) == 0;
}

/* A pattern that depends on the offset, one byte every 512 and the last
 * one: cheap enough for 64 MiB.  prefix() checks the first m bytes of a
 * block filled with a larger n. */
static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t off = 0; off < n - 1; off += 512)
		p[off] = (uint8_t)(seed + off / 512);
	p[n - 1] = (uint8_t)(seed ^ 0x5a);
}

static bool prefix(const uint8_t *p, size_t m, uint8_t seed)
{
	for (size_t off = 0; off < m; off += 512)
		if (p[off] != (uint8_t)(seed + off / 512))
			return false;
	return true;
}

static bool filled(const uint8_t *p, size_t n, uint8_t seed)
{
	return prefix(p, n - 1, seed) && p[n - 1] == (uint8_t)(seed ^ 0x5a);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	static const uint8_t z[4096];
	for (size_t off = 0; off < n; off += sizeof(z)) {
		size_t k = n - off < sizeof(z) ? n - off : sizeof(z);
		if (memcmp(p + off, z, k) != 0)
			return false;
	}
	return true;
}

/* Only the bytes asked for are the program's (the allocation functions are
 * declared alloc_size; _FORTIFY_SOURCE checks it): realloc to the usable
 * size claims the rest, in place.  Returns p, to be used from now on. */
static uint8_t *claim_usable(void *p)
{
	size_t u = hak_usable_size(p);
	uintptr_t old = (uintptr_t)p;
	uint8_t *q = hak_realloc(p, u);
	ck_assert_msg((uintptr_t)q == old, "realloc(%#jx, its usable size %zu) moved it to %p",
		      (uintmax_t)old, u, (void *)q);
	ck_assert_uint_eq(hak_usable_size(q), u);
	return q;
}

/* Check a live huge block of n bytes at p, aligned to align. */
static void check_huge(void *p, size_t n, size_t align)
{
	ck_assert_ptr_nonnull(p);
	ck_assert_msg((uintptr_t)p % align == 0, "%p not aligned to %zu", p, align);
	ck_assert_uint_eq((uintptr_t)p % HAK_PAGE, 0);
	struct segment *seg = segmap_lookup(p);
	ck_assert_ptr_nonnull(seg);
	ck_assert_uint_eq(seg->tier, TIER_HUGE);
	ck_assert_uint_eq(seg->magic, HAK_SEG_MAGIC);
	ck_assert(huge_owns(seg, p));
	ck_assert_uint_eq((uintptr_t)seg & HAK_SEG_MASK, 0);
	ck_assert_uint_eq(seg->map_size % HAK_SEG_SIZE, 0);
	ck_assert_ptr_eq((uint8_t *)seg + seg->huge_off, p);
	size_t u = hak_usable_size(p);
	ck_assert_uint_eq(u, seg->map_size - seg->huge_off);
	ck_assert_uint_ge(u, n);
	if (align >= HAK_SEG_SIZE) {
		ck_assert_ptr_eq((uint8_t *)seg, (uint8_t *)p - HAK_SEG_SIZE);
		ck_assert_uint_eq(segmap_raw((uintptr_t)p), SEGMAP_PREV);
	} else {
		ck_assert_uint_eq(segmap_raw((uintptr_t)p), SEGMAP_HERE);
	}
	/* a pointer inside the block is not a block */
	ck_assert(!huge_owns(seg, (uint8_t *)p + 16));
	ck_assert_uint_eq(hak_usable_size((uint8_t *)p + 16), 0);
}

START_TEST(test_huge_sizes)
{
	hak_cfg.huge_cache = 0; /* every block a fresh mapping */
	size_t sizes[64], ns = 0;
	static const size_t edges[] = { MiB + 1,       MiB + 15,      MiB + 4095,   MiB + 4096,
					2 * MiB - 4096, 2 * MiB - 4095, 2 * MiB,     2 * MiB + 1,
					3 * MiB + 7,    16 * MiB + 1,   33 * MiB,    64 * MiB - 1,
					64 * MiB };
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		sizes[ns++] = edges[i];
	for (size_t n = MiB + 1; n < 64 * MiB && ns < 64; n += 3 * MiB + 12345)
		sizes[ns++] = n;
	for (size_t i = 0; i < ns; i++) {
		size_t n = sizes[i];
		struct hak_stats st0 = stats();
		uint8_t *p = hak_malloc(n);
		struct hak_stats st1 = stats();
		check_huge(p, n, HAK_PAGE);
		struct segment *seg = segmap_lookup(p);
		/* one mapping, no more than one region of slack */
		ck_assert_uint_lt(seg->map_size, n + seg->huge_off + HAK_SEG_SIZE);
		ck_assert_uint_eq(st1.huge_allocs, st0.huge_allocs + 1);
		ck_assert_uint_eq(st1.os_mapped - st0.os_mapped, seg->map_size);
		p[0] = 1;
		p[n - 1] = 2;
		p = claim_usable(p);
		p[hak_usable_size(p) - 1] = 3;
		size_t map = seg->map_size;
		hak_free(p);
		struct hak_stats st2 = stats();
		ck_assert_uint_eq(st2.huge_frees, st1.huge_frees + 1);
		ck_assert_uint_eq(st1.os_mapped - st2.os_mapped, map);
		ck_assert_ptr_null(segmap_lookup(p));
		ck_assert(!is_mapped(p));
		ck_assert_uint_eq(hak_usable_size(p), 0);
	}
	/* zeroed */
	uint8_t *q = hak_calloc(1, 5 * MiB);
	check_huge(q, 5 * MiB, 16);
	ck_assert(all_zero(q, 5 * MiB));
	hak_free(q);
}
END_TEST

START_TEST(test_huge_alignment)
{
	hak_cfg.huge_cache = 4;
	for (size_t align = 32; align <= 64 * MiB; align <<= 1) {
		size_t sizes[3] = { MiB + 1, 3 * MiB, align };
		for (int k = 0; k < 3; k++) {
			size_t n = sizes[k];
			if (n <= HAK_LARGE_MAX && align <= HAK_PAGE)
				continue; /* served by the slab tiers */
			uint8_t *p = hak_aligned_alloc(align, n);
			ck_assert_msg(p != NULL, "hak_aligned_alloc(%zu, %zu) failed", align, n);
			check_huge(p, n, align);
			fill(p, n, (uint8_t)k);
			ck_assert(filled(p, n, (uint8_t)k));
			struct segment *seg = segmap_lookup(p);
			size_t map = seg->map_size;
			uint64_t mapped = stats().os_mapped;
			hak_free(p);
			ck_assert_ptr_null(segmap_lookup(p));
			if (align >= HAK_SEG_SIZE) {
				/* never cached: unmapped at once, header and all */
				ck_assert_uint_eq(mapped - stats().os_mapped, map);
				ck_assert(!is_mapped(seg));
				ck_assert(!is_mapped(p));
			}
		}
	}
	/* small sizes with a huge alignment */
	void *p;
	ck_assert_int_eq(hak_posix_memalign(&p, 4 * MiB, 100), 0);
	check_huge(p, 100, 4 * MiB);
	hak_free(p);
	p = hak_aligned_alloc(64 * MiB, 10);
	check_huge(p, 10, 64 * MiB);
	hak_free(p);
}
END_TEST

START_TEST(test_huge_cache)
{
	hak_cfg.huge_cache = 4;
	knob_set_wmax(TIER_HUGE, 125);
	hak_cfg.purge_delay_ms = 3600000;
	struct hak_stats st0 = stats();
	uint8_t *p = hak_malloc(5 * MiB); /* maps 6 MiB */
	hak_free(p);
	uint8_t *q = hak_malloc(5 * MiB);
	struct hak_stats st1 = stats();
	ck_assert_ptr_eq(q, p);
	ck_assert_uint_eq(st1.huge_cache_hits, st0.huge_cache_hits + 1);
	ck_assert_uint_eq(st1.huge_allocs, st0.huge_allocs + 2);
	check_huge(q, 5 * MiB, 16);
	/* a smaller request needing as many regions reuses it too */
	hak_free(q);
	q = hak_malloc(4 * MiB + 1); /* needs 6 MiB */
	ck_assert_ptr_eq(q, p);
	ck_assert_uint_eq(stats().huge_cache_hits, st0.huge_cache_hits + 2);
	check_huge(q, 4 * MiB + 1, 16);
	hak_free(q);
	/* a 2 MiB request takes the front of the 6 MiB range, the other 4 MiB
	 * stay cached; no mapping is made */
	struct hak_stats st2 = stats();
	q = hak_malloc(MiB + 100); /* needs 2 MiB */
	uint8_t *r = hak_malloc(3 * MiB); /* needs 4 MiB: the rest, whole */
	struct hak_stats st3 = stats();
	unsigned cap, n = huge_cache_state(&cap);
	ck_assert_ptr_eq(q, p);
	ck_assert_ptr_eq(r, p + 2 * MiB);
	ck_assert_uint_eq(segmap_lookup(q)->map_size, 2 * MiB);
	ck_assert_uint_eq(segmap_lookup(r)->map_size, 4 * MiB);
	ck_assert_uint_eq(st3.huge_cache_hits, st2.huge_cache_hits + 2);
	ck_assert_uint_eq(st3.os_map_calls, st2.os_map_calls);
	ck_assert_uint_eq(n, 0);
	check_huge(q, MiB + 100, 16);
	check_huge(r, 3 * MiB, 16);
	/* freed, the two join again: one 6 MiB range */
	hak_free(r);
	hak_free(q);
	n = huge_cache_state(&cap);
	ck_assert_uint_eq(n, 1);
	q = hak_malloc(5 * MiB);
	ck_assert_ptr_eq(q, p);
	ck_assert_uint_eq(segmap_lookup(q)->map_size, 6 * MiB);
	hak_free(q);
	/* a request larger than every cached mapping misses */
	st3 = stats();
	q = hak_malloc(7 * MiB);
	ck_assert_uint_eq(stats().huge_cache_hits, st3.huge_cache_hits);
	hak_free(q);
}
END_TEST

START_TEST(test_huge_cache_eviction)
{
	hak_cfg.purge_delay_ms = 3600000;
	hak_cfg.huge_cache = 2;
	/* live blocks between them (x, y), so that no two freed ranges touch
	 * and join */
	uint8_t *a = hak_malloc(3 * MiB), *x = hak_malloc(9 * MiB), *b = hak_malloc(3 * MiB),
		*y = hak_malloc(9 * MiB), *c0 = hak_malloc(3 * MiB);
	struct segment *sa = segmap_lookup(a), *sb = segmap_lookup(b), *sc0 = segmap_lookup(c0);
	hak_free(a); /* cached */
	hak_free(b); /* cached */
	ck_assert(is_mapped(sa));
	ck_assert(is_mapped(sb));
	hak_free(c0); /* cached, a evicted (oldest first) */
	ck_assert(!is_mapped(sa));
	ck_assert(is_mapped(sb));
	ck_assert(is_mapped(sc0));
	hak_cfg.huge_cache = 1;
	uint8_t *b2 = hak_malloc(3 * MiB), *c2 = hak_malloc(3 * MiB);
	ck_assert_ptr_eq(segmap_lookup(b2), sb);
	ck_assert_ptr_eq(segmap_lookup(c2), sc0);
	hak_free(b2);
	hak_free(c2); /* b evicted */
	ck_assert(!is_mapped(sb));
	ck_assert(is_mapped(sc0));
	/* HAKMEM_HUGE_CACHE=0: nothing kept; the next free also unmaps what
	 * the cache held beyond its new size (c0's 4 MiB) */
	hak_cfg.huge_cache = 0;
	struct hak_stats st = stats();
	uint8_t *c = hak_malloc(20 * MiB);
	struct segment *sc = segmap_lookup(c);
	hak_free(c);
	ck_assert(!is_mapped(sc));
	ck_assert(!is_mapped(sc0));
	ck_assert_uint_eq(stats().huge_cache_hits, st.huge_cache_hits);
	ck_assert_uint_eq(st.os_mapped - stats().os_mapped, 4 * MiB);
	/* a block aligned to 2 MiB or more is never cached */
	hak_cfg.huge_cache = 4;
	void *d = hak_aligned_alloc(2 * MiB, 3 * MiB);
	struct segment *sd = segmap_lookup(d);
	hak_free(d);
	ck_assert(!is_mapped(sd));
	hak_free(x);
	hak_free(y);
}
END_TEST

/* A program frees a batch of 20 huge blocks and allocates it again, round
 * after round: the freed ranges join and the later rounds map nothing;
 * once the rounds stop, a purge delay after the last one, a free gives
 * the cached pages back (the ranges stay mapped, within the caps). */
START_TEST(test_huge_cache_rounds)
{
	enum { N = 20 };
	uint8_t *b[N];
	unsigned cap, n;
	hak_cfg.huge_cache = 4;
	hak_cfg.purge_delay_ms = 3600000;
	uint64_t maps = 0, hits = 0;
	for (int round = 0; round < 12; round++) {
		if (round == 6) {
			maps = atomic_load(&os_ctr.map_calls);
			hits = stats().huge_cache_hits;
		}
		for (int i = 0; i < N; i++) {
			b[i] = hak_malloc(3 * MiB);
			ck_assert_ptr_nonnull(b[i]);
			b[i][0] = b[i][3 * MiB - 1] = (uint8_t)round;
		}
		for (int i = 0; i < N; i++) {
			ck_assert_uint_eq(b[i][3 * MiB - 1], (uint8_t)round);
			hak_free(b[i]);
		}
	}
	n = huge_cache_state(&cap);
	printf("huge cache after 12 rounds of %d: %u cached, cap %u\n", N, n, cap);
	ck_assert_uint_le(n, cap);
	ck_assert_uint_eq(atomic_load(&os_ctr.map_calls), maps); /* rounds 7-12 */
	ck_assert_uint_eq(stats().huge_cache_hits - hits, 6 * N);
	/* the rounds stop; a purge delay later, one more free collects */
	hak_cfg.purge_delay_ms = 1;
	usleep(20000);
	uint64_t purged = stats().os_purged;
	/* a reuse joins back and makes the whole range young again ... */
	hak_free(hak_malloc(3 * MiB));
	usleep(20000);
	/* ... a purge delay after it, a free of another block collects */
	hak_free(hak_aligned_alloc(4 * MiB, 3 * MiB));
	/* (the aligned block, a new mapping, made the cache keep 8 MiB less:
	 * live and cached bytes stay within the live peak) */
	ck_assert_uint_ge(stats().os_purged - purged, (N - 3) * 4 * MiB - N * HAK_PAGE);
	n = huge_cache_state(&cap);
	ck_assert_uint_le(n, 4);
}
END_TEST

/* calloc must give zeroes after reusing a cached mapping, whether its
 * pages were purged (delay 0) or are still dirty (long delay). */
START_TEST(test_huge_calloc_after_reuse)
{
	hak_cfg.huge_cache = 4;
	long delays[2] = { 3600000, 0 };
	for (int k = 0; k < 2; k++) {
		hak_cfg.purge_delay_ms = delays[k];
		uint8_t *p = hak_malloc(5 * MiB);
		p = claim_usable(p);
		memset(p, 0xa5, hak_usable_size(p));
		hak_free(p);
		struct hak_stats st0 = stats();
		uint8_t *q = hak_calloc(1, 5 * MiB);
		ck_assert_ptr_eq(q, p);
		ck_assert_uint_eq(stats().huge_cache_hits, st0.huge_cache_hits + 1);
		ck_assert_msg(all_zero(q, 5 * MiB), "calloc after reuse not zero (purge delay %ld)",
			      delays[k]);
		/* a smaller calloc on the same mapping */
		q = claim_usable(q);
		memset(q, 0xa5, hak_usable_size(q));
		hak_free(q);
		q = hak_calloc(3, 1500 * KiB);
		ck_assert_ptr_eq(q, p);
		ck_assert_msg(all_zero(q, 4500 * KiB), "calloc after reuse not zero (purge delay %ld)",
			      delays[k]);
		hak_free(q);
		/* and a calloc on a mapping used with another offset before */
		uint8_t *r = hak_aligned_alloc(64 * KiB, 5 * MiB);
		check_huge(r, 5 * MiB, 64 * KiB);
		r = claim_usable(r);
		memset(r, 0xa5, hak_usable_size(r));
		hak_free(r);
		q = hak_calloc(1, 4 * MiB + 1);
		ck_assert_msg(all_zero(q, 4 * MiB + 1), "calloc after reuse not zero (purge delay %ld)",
			      delays[k]);
		hak_free(q);
	}
}
END_TEST

/* Shrink gives pages back in place; growing into the freed room is done in
 * place; contents stay. */
START_TEST(test_huge_realloc_shrink_grow_in_place)
{
	hak_cfg.huge_cache = 0;
	uint8_t *p = hak_malloc(9 * MiB); /* 10 MiB mapping */
	ck_assert_ptr_nonnull(p);
	fill(p, 9 * MiB, 7);
	/* no assertion until the block grew again: a passing ck_assert
	 * allocates and could map something into the room freed here */
	struct hak_stats st0 = stats();
	uint8_t *q = hak_realloc(p, 3 * MiB);
	struct hak_stats st1 = stats();
	size_t u1 = hak_usable_size(q);
	bool tail_gone = !is_mapped(q + 4 * MiB), kept1 = prefix(q, 3 * MiB, 7);
	/* within usable and above half of it: nothing moves */
	uint8_t *q2 = hak_realloc(q, 4 * MiB - HAK_PAGE);
	uint8_t *q3 = hak_realloc(q, 2 * MiB);
	size_t u2 = hak_usable_size(q);
	/* the 6 MiB just given back are free: grow in place */
	uint8_t *r = hak_realloc(q, 9 * MiB);
	struct hak_stats st2 = stats();

	ck_assert_ptr_eq(q, p);
	ck_assert_uint_eq(u1, 4 * MiB - HAK_PAGE);
	ck_assert_uint_eq(st0.os_mapped - st1.os_mapped, 6 * MiB);
	ck_assert(tail_gone);
	ck_assert(kept1);
	ck_assert_ptr_eq(q2, q);
	ck_assert_ptr_eq(q3, q);
	ck_assert_uint_eq(u2, u1);
	ck_assert_ptr_eq(r, q);
	check_huge(r, 9 * MiB, HAK_PAGE);
	ck_assert(prefix(r, 3 * MiB, 7));
	ck_assert_uint_eq(st2.os_mapped - st1.os_mapped, 6 * MiB);
	r[9 * MiB - 1] = 1;
	/* an aligned (SEGMAP_PREV) block too */
	p = hak_aligned_alloc(4 * MiB, 9 * MiB);
	ck_assert_ptr_nonnull(p);
	fill(p, 9 * MiB, 8);
	q = hak_realloc(p, 3 * MiB);
	r = hak_realloc(q, 9 * MiB);
	ck_assert_ptr_eq(q, p);
	ck_assert_ptr_eq(r, p);
	check_huge(r, 9 * MiB, 4 * MiB);
	ck_assert(prefix(r, 3 * MiB, 8));
	hak_free(r);
	hak_free(p);
}
END_TEST

/* Make growing in place impossible: map a page right after the block's
 * mapping (or find one there already). */
static void *guard_after(void *p)
{
	struct segment *seg = segmap_lookup(p);
	void *end = (uint8_t *)seg + seg->map_size;
	void *g = mmap(end, HAK_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (g == MAP_FAILED)
		return NULL; /* taken already */
	if (g != end) { /* old kernel: not placed there */
		munmap(g, HAK_PAGE);
		return NULL;
	}
	return g;
}

START_TEST(test_huge_realloc_move)
{
	hak_cfg.huge_cache = 0;
	size_t aligns[] = { HAK_PAGE, 64 * KiB, 2 * MiB, 8 * MiB };
	for (size_t k = 0; k < sizeof(aligns) / sizeof(aligns[0]); k++) {
		size_t align = aligns[k];
		uint8_t *p = hak_aligned_alloc(align, 3 * MiB);
		check_huge(p, 3 * MiB, align);
		fill(p, 3 * MiB, (uint8_t)(k + 1));
		void *g = guard_after(p);
		struct hak_stats st0 = stats();
		uint8_t *q = hak_realloc(p, 20 * MiB);
		struct hak_stats st1 = stats();
		ck_assert_ptr_ne(q, p);
		check_huge(q, 20 * MiB, align);
		ck_assert(filled(q, 3 * MiB, (uint8_t)(k + 1)));
		ck_assert_ptr_null(segmap_lookup(p));
		ck_assert(!is_mapped(p));
		/* the old mapping went, the new one is exactly the new size */
		struct segment *seg = segmap_lookup(q);
		ck_assert_uint_eq(seg->map_size, (size_t)segmap_lookup(q)->huge_off + 20 * MiB +
						 (HAK_SEG_SIZE - ((seg->huge_off + 20 * MiB) % HAK_SEG_SIZE)) %
							 HAK_SEG_SIZE);
		q[20 * MiB - 1] = 9;
		ck_assert_uint_ge(st1.os_mapped_peak, st1.os_mapped);
		(void)st0;
		/* and shrink it back, still aligned */
		uint8_t *r = hak_realloc(q, 5 * MiB);
		ck_assert_ptr_eq(r, q);
		check_huge(r, 5 * MiB, align);
		ck_assert(filled(r, 3 * MiB, (uint8_t)(k + 1)));
		hak_free(r);
		if (g)
			munmap(g, HAK_PAGE);
	}
}
END_TEST

/* The statistics stay consistent when a block grows in place: the peak
 * of mapped bytes is never below what is mapped now. */
START_TEST(test_huge_realloc_peak)
{
	hak_cfg.huge_cache = 0;
	uint8_t *p = hak_malloc(60 * MiB); /* 62 MiB mapping */
	uint8_t *q = hak_realloc(p, MiB + 1); /* 2 MiB left, 60 MiB free after it */
	ck_assert_ptr_eq(q, p);
	/* map more elsewhere (too big for the hole) */
	uint8_t *big = os_map(100 * MiB);
	ck_assert_ptr_nonnull(big);
	uint8_t *r = hak_realloc(q, 60 * MiB);
	ck_assert_ptr_nonnull(r);
	struct hak_stats st = stats();
	ck_assert_msg(st.os_mapped_peak >= st.os_mapped, "os_mapped %llu above its peak %llu%s",
		      (unsigned long long)st.os_mapped, (unsigned long long)st.os_mapped_peak,
		      r == q ? " after growing in place" : "");
	hak_free(r);
	os_unmap(big, 100 * MiB);
}
END_TEST

START_TEST(test_huge_realloc_other)
{
	hak_cfg.huge_cache = 0;
	/* huge -> small: a slab block with the first bytes */
	uint8_t *p = hak_malloc(3 * MiB);
	fill(p, 3 * MiB, 3);
	uint8_t *q = hak_realloc(p, 1000);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_ne(segmap_lookup(q)->tier, TIER_HUGE);
	ck_assert_uint_eq(q[0], 3);
	ck_assert_uint_eq(q[512], 3 + 1);
	ck_assert(!is_mapped(p));
	/* small -> huge */
	memset(q, 0x6b, 1000);
	uint8_t *r = hak_realloc(q, 2 * MiB);
	check_huge(r, 2 * MiB, HAK_PAGE);
	for (int i = 0; i < 1000; i++)
		if (r[i] != 0x6b)
			ck_abort_msg("byte %d lost in small -> huge realloc", i);
	/* too big: NULL, ENOMEM, the block intact */
	errno = 0;
	ck_assert_ptr_null(hak_realloc(r, (size_t)PTRDIFF_MAX));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	volatile size_t too_big = SIZE_MAX - 4096;
	ck_assert_ptr_null(hak_realloc(r, too_big));
	ck_assert_int_eq(errno, ENOMEM);
	check_huge(r, 2 * MiB, HAK_PAGE);
	ck_assert_uint_eq(r[999], 0x6b);
	/* errno kept on success */
	errno = 1234;
	uint8_t *s = hak_realloc(r, 30 * MiB);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(errno, 1234);
	ck_assert_uint_eq(s[999], 0x6b);
	hak_free(s);
	/* too big from the start */
	errno = 0;
	too_big = (size_t)PTRDIFF_MAX;
	ck_assert_ptr_null(hak_malloc(too_big));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	too_big = SIZE_MAX;
	ck_assert_ptr_null(hak_malloc(too_big));
	ck_assert_int_eq(errno, ENOMEM);
}
END_TEST

START_TEST(test_usable_size)
{
	ck_assert_uint_eq(hak_usable_size(NULL), 0);
	int local;
	ck_assert_uint_eq(hak_usable_size(&local), 0);
	/* large tier: the class size */
	static const size_t ls[] = { 32769, 40960, 40961, 100000, 500000, HAK_LARGE_MAX };
	for (size_t i = 0; i < sizeof(ls) / sizeof(ls[0]); i++) {
		uint8_t *p = hak_malloc(ls[i]);
		ck_assert_ptr_nonnull(p);
		struct segment *seg = segmap_lookup(p);
		ck_assert_uint_eq(seg->tier, TIER_LARGE);
		ck_assert_uint_eq(hak_usable_size(p), ace_class_size[ace_class(ls[i])]);
		ck_assert_uint_eq((uintptr_t)p % HAK_PAGE, 0);
		p[0] = 1;
		p = claim_usable(p);
		p[hak_usable_size(p) - 1] = 1;
		hak_free(p);
	}
	/* huge: the mapping after the offset */
	uint8_t *h = hak_malloc(HAK_LARGE_MAX + 1);
	ck_assert_uint_eq(hak_usable_size(h), 2 * MiB - HAK_PAGE);
	ck_assert_uint_eq(huge_usable(segmap_lookup(h), h), 2 * MiB - HAK_PAGE);
	hak_free(h);
}
END_TEST

/* A freed range joins its cached neighbour, a larger request takes the
 * front of the joined range (no mapping made), and the cache never holds
 * more than the live peak less what is live: a new mapping that raises
 * the peak trims it. */
START_TEST(test_huge_cache_split_join_bound)
{
	enum { N = 10 };
	uint8_t *b[N];
	hak_cfg.huge_cache = 8;
	hak_cfg.purge_delay_ms = 3600000;
	for (int i = 0; i < N; i++) {
		b[i] = hak_malloc(8 * MiB); /* 10 MiB ranges, one below the other */
		ck_assert_ptr_nonnull(b[i]);
	}
	ck_assert_ptr_eq(b[4] + 10 * MiB, b[3]);
	unsigned cap, n;
	hak_free(b[3]);
	hak_free(b[4]); /* joins b[3]'s range: one 20 MiB range */
	n = huge_cache_state(&cap);
	ck_assert_uint_eq(n, 1);
	struct hak_stats st0 = stats();
	uint8_t *c = hak_malloc(12 * MiB); /* 14 MiB: the front */
	struct hak_stats st1 = stats();
	ck_assert_ptr_eq(c, b[4]);
	ck_assert_uint_eq(st1.huge_cache_hits, st0.huge_cache_hits + 1);
	ck_assert_uint_eq(st1.os_map_calls, st0.os_map_calls);
	ck_assert_uint_eq(segmap_lookup(c)->map_size, 14 * MiB);
	n = huge_cache_state(&cap);
	ck_assert_uint_eq(n, 1); /* the 6 MiB left */
	/* live 94 MiB, peak 100: a new 30 MiB mapping raises the peak, and
	 * the 6 MiB cached go */
	uint8_t *d = hak_malloc(30 * MiB);
	struct hak_stats st2 = stats();
	n = huge_cache_state(&cap);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(st2.os_mapped - st1.os_mapped, 32 * MiB - 6 * MiB);
	hak_free(c);
	hak_free(d);
	for (int i = 0; i < N; i++)
		if (i != 3 && i != 4)
			hak_free(b[i]);
}
END_TEST

/* issue #12's shape, untouched: 20 blocks of 5-25 MiB, a random one
 * replaced 500 times.  Most replacements reuse cached ranges, and what is
 * mapped never exceeds the most the live blocks needed at once. */
START_TEST(test_huge_churn_bounded)
{
	enum { N = 20, ROUNDS = 500 };
	uint8_t *b[N];
	size_t sz[N], live = 0, peak = 0;
	uint64_t rng = 42;
	hak_cfg.purge_delay_ms = 3600000;
	uint64_t base = stats().os_mapped, worst = 0;
	struct hak_stats st0 = stats();
	for (int k = 0; k < N + ROUNDS; k++) {
		int i = k < N ? k : (int)((rng >> 33) % N);
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		if (k >= N) {
			live -= segmap_lookup(b[i])->map_size;
			hak_free(b[i]);
		}
		sz[i] = 5 * MiB + (size_t)((rng >> 20) % (20 * MiB));
		b[i] = hak_malloc(sz[i]);
		ck_assert_ptr_nonnull(b[i]);
		b[i][0] = 1;
		live += segmap_lookup(b[i])->map_size;
		if (live > peak)
			peak = live;
		uint64_t m = stats().os_mapped - base;
		if (m > peak && m - peak > worst)
			worst = m - peak;
	}
	struct hak_stats st1 = stats();
	printf("huge churn: %llu of %d allocations from the cache, %llu mappings made\n",
	       (unsigned long long)(st1.huge_cache_hits - st0.huge_cache_hits), N + ROUNDS,
	       (unsigned long long)(st1.os_map_calls - st0.os_map_calls));
	ck_assert_msg(worst == 0, "mapped %llu bytes beyond the live peak",
		      (unsigned long long)worst);
	ck_assert_uint_ge(st1.huge_cache_hits - st0.huge_cache_hits, ROUNDS / 2);
	for (int i = 0; i < N; i++)
		hak_free(b[i]);
}
END_TEST

/* A request no cached range holds takes the pages of the largest cached
 * one, moved (not copied, not faulted anew) to the start of its new
 * mapping; calloc still gives zeroes. */
START_TEST(test_huge_miss_reuses_pages)
{
	hak_cfg.purge_delay_ms = 3600000;
	for (int k = 0; k < 2; k++) {
		uint8_t *a = hak_malloc(8 * MiB); /* a 10 MiB range */
		ck_assert_ptr_nonnull(a);
		memset(a, 0x3c, 8 * MiB);
		hak_free(a);
		struct hak_stats st0 = stats();
		uint8_t *b = k == 0 ? hak_malloc(16 * MiB) : hak_calloc(1, 16 * MiB);
		struct hak_stats st1 = stats();
		unsigned cap, n = huge_cache_state(&cap);
		ck_assert_ptr_nonnull(b);
		check_huge(b, 16 * MiB, 16);
		ck_assert_uint_eq(n, 0);
		ck_assert_uint_eq(st1.os_purged, st0.os_purged);
		ck_assert_uint_eq(st1.os_remap_failures, st0.os_remap_failures);
		if (k == 0) /* the old pages, where they were in the range */
			ck_assert_msg(b[0] == 0x3c && b[8 * MiB - 1] == 0x3c,
				      "a miss did not reuse the cached pages");
		else
			ck_assert(all_zero(b, 16 * MiB));
		hak_free(b);
	}
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

/* 70,000 blocks of 1.1 MiB (each in its own 2 MiB range): more than
 * vm.max_map_count (65,530) if each were a kernel mapping.  They stay a
 * few hundred at most, every allocation succeeds, and after the frees the
 * address space comes back (the cache keeps at most HAKMEM_HUGE_CACHE_MB)
 * with nothing refused.  The blocks are not touched: 140 GiB of address
 * space, little memory. */
START_TEST(test_huge_vma_count)
{
	enum { N = 70000 };
	const size_t n = MiB + MiB / 10;
	uint8_t **b = hak_malloc(N * sizeof(*b));
	ck_assert_ptr_nonnull(b);
	struct hak_stats st0 = stats();
	int v0 = vma_count(), fails = 0;
	for (int i = 0; i < N; i++) {
		b[i] = hak_malloc(n);
		fails += b[i] == NULL;
	}
	int v1 = vma_count();
	struct hak_stats st1 = stats();
	for (int i = 0; i < N; i++)
		hak_free(b[i]);
	int v2 = vma_count();
	struct hak_stats st2 = stats();
	hak_free(b);
	printf("%d blocks of 1.1 MiB: %d kernel mappings before, %d with them, %d after; "
	       "%llu MiB mapped after\n", N, v0, v1, v2,
	       (unsigned long long)((st2.os_mapped - st0.os_mapped) >> 20));
	ck_assert_int_eq(fails, 0);
	ck_assert_uint_ge(st1.os_mapped - st0.os_mapped, (uint64_t)N * 2 * MiB);
	ck_assert_msg(v1 - v0 < 500, "%d blocks made %d kernel mappings", N, v1 - v0);
	ck_assert_int_lt(v2 - v0, 100);
	ck_assert_uint_le(st2.os_mapped - st0.os_mapped, (uint64_t)KNOB(huge_cache_mb) << 20);
	ck_assert_uint_eq(st2.os_unmap_failures, st0.os_unmap_failures);
}
END_TEST

/* munmap refused while huge blocks are freed (and cached ones evicted):
 * nothing is lost silently; the pages go back at once, the refusals are
 * counted, and a later free or hak_collect gives the address space back. */
START_TEST(test_huge_unmap_refused)
{
	enum { N = 8 };
	uint8_t *b[N], *sp[N];
	hak_cfg.huge_cache = 0;
	uint64_t mapped0 = stats().os_mapped;
	for (int i = 0; i < N; i++) {
		b[i] = hak_malloc(5 * MiB);
		sp[i] = hak_malloc(3 * MiB); /* apart: each free a munmap of its own */
		ck_assert_ptr_nonnull(b[i]);
		memset(b[i], 0x77, 5 * MiB);
	}
	struct hak_stats st0 = stats();
	atomic_store(&os_fail_sticky, 1);
	atomic_store(&os_fail_unmap_countdown, 1);
	for (int i = 0; i < N; i++)
		hak_free(b[i]);
	struct hak_stats st1 = stats();
	bool still = true, zero = true;
	for (int i = 0; i < N; i++) {
		still &= is_mapped(b[i]);
		zero &= b[i][HAK_PAGE] == 0 && b[i][5 * MiB - 1] == 0;
	}
	atomic_store(&os_fail_unmap_countdown, 0);
	atomic_store(&os_fail_sticky, 0);
	ck_assert_uint_eq(st1.os_unmap_failures - st0.os_unmap_failures, N);
	ck_assert_uint_eq(st1.os_unmap_pending - st0.os_unmap_pending, N * 6 * MiB);
	ck_assert_uint_eq(st1.os_unmap_lost, st0.os_unmap_lost);
	ck_assert_uint_eq(st1.os_mapped, st0.os_mapped); /* still counted */
	ck_assert(still);
	ck_assert(zero); /* purged */
	/* the next free of a huge block retries (at most once a clock tick) */
	usleep(20000);
	for (int i = 0; i < N; i++)
		hak_free(sp[i]);
	struct hak_stats st2 = stats();
	ck_assert_uint_eq(st2.os_unmap_pending, 0);
	ck_assert_uint_eq(st2.os_mapped, mapped0);
	for (int i = 0; i < N; i++)
		ck_assert(!is_mapped(b[i]));
}
END_TEST

/* Each thread has a huge cache of its own (one of HUGE_SHARDS): a thread
 * takes from its own first, from the others before it maps memory, and a
 * block goes back to the cache of the thread that allocated it, whichever
 * thread frees it.  Main and a thread t take turns (barriers); every
 * range is 6 MiB, and live blocks keep the cached ones from touching. */
static pthread_barrier_t hc_bar;
static uint8_t *hc_x, *hc_y, *hc_y2, *hc_y3, *hc_w;
static uint64_t hc_maps_before, hc_maps_after;

static void *hc_thread(void *arg)
{
	(void)arg;
	hc_y = hak_malloc(5 * MiB);
	pthread_barrier_wait(&hc_bar); /* 1 */
	pthread_barrier_wait(&hc_bar); /* 2: x is in main's cache */
	hak_free(hc_y); /* into t's cache */
	hc_maps_before = stats().os_map_calls;
	hc_y2 = hak_malloc(5 * MiB); /* t's own cache first: y, not x */
	hc_y3 = hak_malloc(5 * MiB); /* t's is empty: main's x, no mapping */
	hc_maps_after = stats().os_map_calls;
	pthread_barrier_wait(&hc_bar); /* 3 */
	pthread_barrier_wait(&hc_bar); /* 4: main made w */
	hak_free(hc_y2); /* t's block: into t's cache */
	hak_free(hc_w);  /* main's block: into main's cache */
	pthread_barrier_wait(&hc_bar); /* 5 */
	return NULL;
}

START_TEST(test_huge_thread_caches)
{
	hak_cfg.huge_cache = 8;
	knob_set_wmax(TIER_HUGE, 125);
	hak_cfg.purge_delay_ms = 3600000;
	pthread_t t;
	ck_assert_int_eq(pthread_barrier_init(&hc_bar, NULL, 2), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, hc_thread, NULL), 0);
	hc_x = hak_malloc(5 * MiB);
	uint8_t *s1 = hak_malloc(3 * MiB);
	pthread_barrier_wait(&hc_bar); /* 1: y is made */
	ck_assert_ptr_nonnull(hc_x);
	ck_assert_ptr_nonnull(hc_y);
	hak_free(hc_x); /* into main's cache */
	pthread_barrier_wait(&hc_bar); /* 2 */
	pthread_barrier_wait(&hc_bar); /* 3 */
	ck_assert_ptr_nonnull(hc_y2);
	ck_assert_msg(hc_y2 == hc_y, "the thread took %p, not the range it had freed itself (%p; "
		      "main's freed one is %p)", (void *)hc_y2, (void *)hc_y, (void *)hc_x);
	ck_assert_msg(hc_y3 == hc_x, "with its own cache empty, the thread took %p, not the "
		      "range in main's cache (%p)", (void *)hc_y3, (void *)hc_x);
	ck_assert_uint_eq(hc_maps_after, hc_maps_before);
	uint8_t *s2 = hak_malloc(3 * MiB); /* keeps y from touching w */
	hc_w = hak_malloc(5 * MiB);
	ck_assert_ptr_nonnull(s2);
	ck_assert_ptr_nonnull(hc_w);
	pthread_barrier_wait(&hc_bar); /* 4 */
	pthread_barrier_wait(&hc_bar); /* 5 */
	/* t freed its y, then main's w: w went back to main's cache (had it
	 * gone to t's, main would have taken y, the older one, from there) */
	struct hak_stats st0 = stats();
	uint8_t *v = hak_malloc(5 * MiB);
	ck_assert_msg(v == hc_w, "main took %p, not its own block %p that the thread freed "
		      "(the thread's freed one is %p)", (void *)v, (void *)hc_w, (void *)hc_y2);
	ck_assert_uint_eq(stats().huge_cache_hits, st0.huge_cache_hits + 1);
	check_huge(v, 5 * MiB, 16);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	pthread_barrier_destroy(&hc_bar);
	hak_free(v);
	hak_free(hc_y3);
	hak_free(s1);
	hak_free(s2);
	/* main's cache and t's hold them all; released, every cache is empty */
	unsigned cap;
	ck_assert_uint_gt(huge_cache_state(&cap), 0);
	ck_assert(huge_cache_release());
	ck_assert_uint_eq(huge_cache_state(&cap), 0);
}
END_TEST

/* HAKMEM_HUGE_CACHE_MB bounds the caches together, in shares that follow
 * their ranges: with 16 MiB, main's cache keeps 12 MiB of its three freed
 * 6 MiB ranges and the thread's freed range finds no room (each cache
 * bounded alone would keep 18); the thread then takes main's two ranges
 * (its own cache is empty), and when it frees them, its cache keeps them:
 * main's share went with them. */
static uint8_t *hq_t1, *hq_t2, *hq_t3;
static uint64_t hq_mapped, hq_kept_before, hq_kept_after;

/* bytes of the 24 MiB freed that stay mapped */
static uint64_t hq_kept(void)
{
	return stats().os_mapped + 24 * MiB - hq_mapped;
}

static void *hq_thread(void *arg)
{
	(void)arg;
	hq_t1 = hak_malloc(5 * MiB); /* a new mapping */
	pthread_barrier_wait(&hc_bar); /* 1 */
	pthread_barrier_wait(&hc_bar); /* 2: main's cache has all the room */
	hak_free(hq_t1);               /* none left: unmapped */
	hq_kept_before = hq_kept();
	hq_t2 = hak_malloc(5 * MiB);   /* main's ranges */
	hq_t3 = hak_malloc(5 * MiB);
	hak_free(hq_t2);
	hak_free(hq_t3);
	hq_kept_after = hq_kept();
	return NULL;
}

START_TEST(test_huge_thread_caches_share)
{
	hak_cfg.huge_cache = 8;
	hak_cfg.huge_cache_mb = 16;
	hak_cfg.purge_delay_ms = 3600000;
	uint8_t *a[3];
	pthread_t t;
	ck_assert_int_eq(pthread_barrier_init(&hc_bar, NULL, 2), 0);
	for (int i = 0; i < 3; i++)
		a[i] = hak_malloc(5 * MiB);
	ck_assert_int_eq(pthread_create(&t, NULL, hq_thread, NULL), 0);
	pthread_barrier_wait(&hc_bar); /* 1: all four mapped */
	ck_assert(a[0] && a[1] && a[2] && hq_t1);
	hq_mapped = stats().os_mapped;
	for (int i = 0; i < 3; i++)
		hak_free(a[i]); /* they join; 12 MiB kept */
	pthread_barrier_wait(&hc_bar); /* 2 */
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	pthread_barrier_destroy(&hc_bar);
	ck_assert_msg(hq_kept_before == 12 * MiB, "the caches keep %ju MiB, not main's 12",
		      (uintmax_t)(hq_kept_before / MiB));
	ck_assert_msg(hq_kept_after == 12 * MiB, "after the thread took and freed main's "
		      "ranges, the caches keep %ju MiB, not 12", (uintmax_t)(hq_kept_after / MiB));
	/* the thread's two blocks were main's freed ranges (a[2] lowest) */
	ck_assert(hq_t2 >= a[2] && hq_t2 < a[0] + 6 * MiB);
	ck_assert(hq_t3 >= a[2] && hq_t3 < a[0] + 6 * MiB);
}
END_TEST

static Suite *large_suite(void)
{
	Suite *s = suite_create("large");
	TCase *tc = tcase_create("huge");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_huge_sizes);
	tcase_add_test(tc, test_huge_alignment);
	tcase_add_test(tc, test_huge_cache);
	tcase_add_test(tc, test_huge_cache_eviction);
	tcase_add_test(tc, test_huge_cache_rounds);
	tcase_add_test(tc, test_huge_calloc_after_reuse);
	tcase_add_test(tc, test_huge_cache_split_join_bound);
	tcase_add_test(tc, test_huge_churn_bounded);
	tcase_add_test(tc, test_huge_miss_reuses_pages);
	tcase_add_test(tc, test_huge_thread_caches);
	tcase_add_test(tc, test_huge_thread_caches_share);
	suite_add_tcase(s, tc);

	tc = tcase_create("realloc");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_huge_realloc_shrink_grow_in_place);
	tcase_add_test(tc, test_huge_realloc_move);
	tcase_add_test(tc, test_huge_realloc_peak);
	tcase_add_test(tc, test_huge_realloc_other);
	tcase_add_test(tc, test_usable_size);
	suite_add_tcase(s, tc);

	tc = tcase_create("kernel");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_huge_vma_count);
	tcase_add_test(tc, test_huge_unmap_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(large_suite());
	/* every test in a process of its own: the tests change hakmem's
	 * global state (hak_cfg, caches, heaps) */
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
