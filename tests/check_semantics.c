/* check_semantics.c - the malloc family's contract (man 3 hakmem).
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * Built twice from this one source: check_semantics calls malloc, free, ...
 * (hakmem's override), check_semantics_api calls hak_malloc, hak_free, ...
 * (-DUSE_HAK_API; see testutil.h).  With --disable-override only the second
 * is built.  Functions the hak_* API lacks (reallocarray, memalign, valloc,
 * pvalloc) are tested in the first only.
 *
 * Tiers: tiny <= 1 KiB, mid <= 32 KiB, large <= 1 MiB, huge above.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdbool.h>
#include <sys/mman.h>

#include "testutil.h"

/* One size or more from every tier, and the boundaries between them. */
static const size_t tier_sizes[] = {
	0, 1, 16, 100, 1024, 1025, 4096, 32768, 32769, 100000,
	1 << 20, (1 << 20) + 1, 3 << 20,
};
#define N_TIER_SIZES (sizeof(tier_sizes) / sizeof(tier_sizes[0]))

/* Sizes no allocator can serve: beyond PTRDIFF_MAX, or more than the
 * address space (1 PiB, 128 TiB). */
static const size_t big_sizes[] = {
	SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 15, SIZE_MAX - 4095, SIZE_MAX - 4096,
	SIZE_MAX - (1 << 20), SIZE_MAX - (2 << 20) - 1,
	(size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX + 4096, (size_t)PTRDIFF_MAX,
	(size_t)PTRDIFF_MAX - 4095, (size_t)1 << 50, ((size_t)1 << 50) + 1,
	(size_t)1 << 47, (size_t)1 << 62,
};
#define N_BIG_SIZES (sizeof(big_sizes) / sizeof(big_sizes[0]))

static const size_t good_aligns[] = { 16, 64, 4096, 1 << 20 };
#define N_GOOD_ALIGNS (sizeof(good_aligns) / sizeof(good_aligns[0]))

#define SENTINEL ((void *)(uintptr_t)0x5e5e5e5e5e5e5e50ULL)

/* For loops whose memory use is measured: a passing ck_assert still talks
 * to the Check runner (allocating), which would count against the bound
 * under a sanitizer's quarantine. */
#define REQUIRE(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

static void check_block(void *p, size_t size, size_t align, const char *what)
{
	ck_assert_msg(p != NULL, "%s: NULL for size %zu", what, size);
	ck_assert_msg(((uintptr_t)p & 15) == 0,
		      "%s: %p for size %zu is not 16-byte aligned", what, p, size);
	if (align > 1)
		ck_assert_msg(((uintptr_t)p & (align - 1)) == 0,
			      "%s: %p for size %zu is not aligned to %zu", what, p, size, align);
	ck_assert_msg(t_usable_size(p) >= size,
		      "%s: usable size %zu < %zu", what, (size_t)t_usable_size(p), size);
}

/* Only the bytes asked for are the program's, however many the block spans
 * (the allocation functions are declared alloc_size, and a build with
 * _FORTIFY_SOURCE checks that); realloc to the usable size claims the rest
 * and must not move the block (man 3 hakmem).  Returns the pointer to use
 * from now on, which is p, and its usable size in *usable. */
static void *claim_usable(void *p, size_t *usable)
{
	size_t u = t_usable_size(p);
	uintptr_t old = (uintptr_t)p;
	void *q = t_realloc(p, u);

	ck_assert_msg((uintptr_t)q == old, "realloc(%#jx, its usable size %zu) moved it to %p",
		      (uintmax_t)old, u, q);
	ck_assert_uint_eq(t_usable_size(q), u);
	*usable = u;
	return q;
}

/* ---- zero sizes ---------------------------------------------------------- */

#define ZERO_N 40

static void check_zero_block(void *p, const char *what, void **seen, size_t *nseen)
{
	ck_assert_msg(p != NULL, "%s returned NULL", what);
	ck_assert_msg(((uintptr_t)p & 15) == 0, "%s: %p not 16-byte aligned", what, p);
	for (size_t i = 0; i < *nseen; i++)
		ck_assert_msg(seen[i] != p, "%s returned %p, which is already live", what, p);
	seen[(*nseen)++] = p;
}

START_TEST(zero_size_unique)
{
	enum { FORMS = 12 };
	static void *seen[ZERO_N * FORMS];
	size_t n = 0;

	for (int i = 0; i < ZERO_N; i++) {
		void *p;

		check_zero_block(t_malloc(OPAQUE((size_t)0)), "malloc(0)", seen, &n);
		check_zero_block(t_calloc(OPAQUE((size_t)0), 16), "calloc(0, 16)", seen, &n);
		check_zero_block(t_calloc(16, OPAQUE((size_t)0)), "calloc(16, 0)", seen, &n);
		check_zero_block(t_calloc(OPAQUE((size_t)0), OPAQUE((size_t)0)), "calloc(0, 0)", seen, &n);
		check_zero_block(t_realloc(NULL, OPAQUE((size_t)0)), "realloc(NULL, 0)", seen, &n);
		check_zero_block(t_aligned_alloc(64, OPAQUE((size_t)0)), "aligned_alloc(64, 0)", seen, &n);
		p = SENTINEL;
		ck_assert_int_eq(t_posix_memalign(&p, 256, OPAQUE((size_t)0)), 0);
		check_zero_block(p, "posix_memalign(&p, 256, 0)", seen, &n);
#ifdef T_LIBC_EXTRAS
		check_zero_block(t_reallocarray(NULL, 0, 0), "reallocarray(NULL, 0, 0)", seen, &n);
		check_zero_block(t_memalign(32, OPAQUE((size_t)0)), "memalign(32, 0)", seen, &n);
		check_zero_block(t_valloc(OPAQUE((size_t)0)), "valloc(0)", seen, &n);
		p = t_pvalloc(OPAQUE((size_t)0));
		check_zero_block(p, "pvalloc(0)", seen, &n);
		/* pvalloc(0) is one page. */
		ck_assert_msg(((uintptr_t)p & ((uintptr_t)getpagesize() - 1)) == 0,
			      "pvalloc(0) = %p is not page aligned", p);
		ck_assert_uint_ge(t_usable_size(p), (size_t)getpagesize());
#endif
		check_zero_block(t_aligned_alloc(1 << 20, OPAQUE((size_t)0)), "aligned_alloc(1 MiB, 0)", seen, &n);
	}
	ck_assert_uint_le(n, sizeof(seen) / sizeof(seen[0]));
	for (size_t i = 0; i < n; i++)
		t_free(seen[i]);
	/* And once more: the freed zero-size blocks are reusable. */
	for (int i = 0; i < 1000; i++) {
		void *p = t_malloc(OPAQUE((size_t)0));

		ck_assert_ptr_nonnull(p);
		t_free(p);
	}
}
END_TEST

/* ---- too-large requests -------------------------------------------------- */

#define EXPECT_ENOMEM(call, what, arg)                                        \
	do {                                                                  \
		void *r_;                                                     \
		errno = 0;                                                    \
		r_ = (call);                                                  \
		ck_assert_msg(r_ == NULL, "%s(%#zx) returned %p, not NULL",   \
			      what, (size_t)(arg), r_);                       \
		ck_assert_msg(errno == ENOMEM, "%s(%#zx): errno %d, not ENOMEM", \
			      what, (size_t)(arg), errno);                    \
	} while (0)

START_TEST(too_large_malloc)
{
	for (size_t i = 0; i < N_BIG_SIZES; i++)
		EXPECT_ENOMEM(t_malloc(OPAQUE(big_sizes[i])), "malloc", big_sizes[i]);
}
END_TEST

START_TEST(too_large_calloc)
{
	static const size_t pairs[][2] = {
		{ SIZE_MAX / 2 + 1, 2 }, { 2, SIZE_MAX / 2 + 1 },
		{ (size_t)1 << 32, (size_t)1 << 32 }, { SIZE_MAX, SIZE_MAX },
		{ 3, SIZE_MAX / 3 + 1 }, { SIZE_MAX / 16 + 1, 16 },
		{ (size_t)1 << 25, (size_t)1 << 25 },   /* 1 PiB, no overflow */
		{ (size_t)PTRDIFF_MAX / 2 + 1, 2 },      /* PTRDIFF_MAX + 1 */
		{ (size_t)1 << 40, 1 << 10 },            /* 1 PiB */
	};

	for (size_t i = 0; i < N_BIG_SIZES; i++) {
		EXPECT_ENOMEM(t_calloc(OPAQUE(big_sizes[i]), 1), "calloc(n, 1), n =", big_sizes[i]);
		EXPECT_ENOMEM(t_calloc(1, OPAQUE(big_sizes[i])), "calloc(1, n), n =", big_sizes[i]);
	}
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		EXPECT_ENOMEM(t_calloc(OPAQUE(pairs[i][0]), OPAQUE(pairs[i][1])),
			      "calloc(n, m) overflowing or too large, n =", pairs[i][0]);
}
END_TEST

/* realloc and reallocarray fail without touching the block. */
static const size_t realloc_old_sizes[] = { 1, 100, 2000, 40000, 2 << 20 };

START_TEST(too_large_realloc)
{
	for (size_t k = 0; k < sizeof(realloc_old_sizes) / sizeof(realloc_old_sizes[0]); k++) {
		size_t old = realloc_old_sizes[k];
		void *p = t_malloc(old);

		ck_assert_ptr_nonnull(p);
		pat_fill(p, old, 0x1234 + k);
		for (size_t i = 0; i < N_BIG_SIZES; i++) {
			EXPECT_ENOMEM(t_realloc(p, OPAQUE(big_sizes[i])), "realloc(p, n), n =", big_sizes[i]);
			ck_assert_msg(pat_check(p, old, 0x1234 + k) == PAT_OK,
				      "failed realloc(%zu -> %#zx) changed the old block",
				      old, big_sizes[i]);
			ck_assert_uint_ge(t_usable_size(p), old);
		}
		/* The block is still alive and usable: grow it for real. */
		p = t_realloc(p, old + 100);
		ck_assert_ptr_nonnull(p);
		ck_assert_msg(pat_check(p, old, 0x1234 + k) == PAT_OK, "contents lost");
		t_free(p);
	}
	for (size_t i = 0; i < N_BIG_SIZES; i++)
		EXPECT_ENOMEM(t_realloc(NULL, OPAQUE(big_sizes[i])), "realloc(NULL, n), n =", big_sizes[i]);
}
END_TEST

#ifdef T_LIBC_EXTRAS
START_TEST(too_large_reallocarray)
{
	static const size_t pairs[][2] = {
		{ SIZE_MAX / 2 + 1, 2 }, { 2, SIZE_MAX / 2 + 1 },
		{ (size_t)1 << 32, (size_t)1 << 32 }, { SIZE_MAX, SIZE_MAX },
		{ 3, SIZE_MAX / 3 + 1 },
		{ (size_t)1 << 25, (size_t)1 << 25 },   /* 1 PiB, no overflow */
		{ (size_t)PTRDIFF_MAX / 2 + 1, 2 },
	};

	for (size_t k = 0; k < sizeof(realloc_old_sizes) / sizeof(realloc_old_sizes[0]); k++) {
		size_t old = realloc_old_sizes[k];
		void *p = t_malloc(old);

		ck_assert_ptr_nonnull(p);
		pat_fill(p, old, 0x777 + k);
		for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
			EXPECT_ENOMEM(t_reallocarray(p, OPAQUE(pairs[i][0]), OPAQUE(pairs[i][1])),
				      "reallocarray(p, n, m), n =", pairs[i][0]);
			ck_assert_msg(pat_check(p, old, 0x777 + k) == PAT_OK,
				      "failed reallocarray changed the old block of %zu", old);
		}
		for (size_t i = 0; i < N_BIG_SIZES; i++) {
			EXPECT_ENOMEM(t_reallocarray(p, OPAQUE(big_sizes[i]), 1),
				      "reallocarray(p, n, 1), n =", big_sizes[i]);
			ck_assert_msg(pat_check(p, old, 0x777 + k) == PAT_OK,
				      "failed reallocarray changed the old block of %zu", old);
		}
		p = t_reallocarray(p, 2, old);
		ck_assert_ptr_nonnull(p);
		ck_assert_msg(pat_check(p, old, 0x777 + k) == PAT_OK, "contents lost");
		t_free(p);
	}
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		EXPECT_ENOMEM(t_reallocarray(NULL, OPAQUE(pairs[i][0]), OPAQUE(pairs[i][1])),
			      "reallocarray(NULL, n, m), n =", pairs[i][0]);
}
END_TEST
#endif

START_TEST(too_large_aligned_alloc)
{
	for (size_t a = 0; a < N_GOOD_ALIGNS; a++)
		for (size_t i = 0; i < N_BIG_SIZES; i++)
			EXPECT_ENOMEM(t_aligned_alloc(good_aligns[a], OPAQUE(big_sizes[i])),
				      "aligned_alloc(a, n), n =", big_sizes[i]);
	/* A valid alignment that no address space can honour. */
	EXPECT_ENOMEM(t_aligned_alloc(OPAQUE((size_t)1 << 62), OPAQUE((size_t)16)),
		      "aligned_alloc(1 << 62, 16)", 16);
	EXPECT_ENOMEM(t_aligned_alloc(OPAQUE((size_t)1 << 63), OPAQUE((size_t)16)),
		      "aligned_alloc(1 << 63, 16)", 16);
}
END_TEST

START_TEST(too_large_posix_memalign)
{
	for (size_t a = 0; a < N_GOOD_ALIGNS; a++) {
		for (size_t i = 0; i < N_BIG_SIZES; i++) {
			void *p = SENTINEL;
			int rc = t_posix_memalign(&p, good_aligns[a], OPAQUE(big_sizes[i]));

			ck_assert_msg(rc == ENOMEM, "posix_memalign(&p, %zu, %#zx) returned %d, not ENOMEM",
				      good_aligns[a], big_sizes[i], rc);
			ck_assert_msg(p == SENTINEL, "posix_memalign changed *p on failure");
		}
	}
	void *p = SENTINEL;
	int rc = t_posix_memalign(&p, (size_t)1 << 62, OPAQUE((size_t)16));

	ck_assert_msg(rc == ENOMEM, "posix_memalign(&p, 1 << 62, 16) returned %d, not ENOMEM", rc);
	ck_assert_msg(p == SENTINEL, "posix_memalign changed *p on failure");
}
END_TEST

#ifdef T_LIBC_EXTRAS
START_TEST(too_large_memalign)
{
	for (size_t a = 0; a < N_GOOD_ALIGNS; a++)
		for (size_t i = 0; i < N_BIG_SIZES; i++)
			EXPECT_ENOMEM(t_memalign(good_aligns[a], OPAQUE(big_sizes[i])),
				      "memalign(a, n), n =", big_sizes[i]);
	EXPECT_ENOMEM(t_memalign(OPAQUE((size_t)1 << 62), OPAQUE((size_t)16)), "memalign(1 << 62, 16)", 16);
}
END_TEST

START_TEST(too_large_valloc)
{
	for (size_t i = 0; i < N_BIG_SIZES; i++)
		EXPECT_ENOMEM(t_valloc(OPAQUE(big_sizes[i])), "valloc", big_sizes[i]);
}
END_TEST

START_TEST(too_large_pvalloc)
{
	/* pvalloc rounds up to a page: SIZE_MAX - 4095 .. SIZE_MAX overflow. */
	for (size_t i = 0; i < N_BIG_SIZES; i++)
		EXPECT_ENOMEM(t_pvalloc(OPAQUE(big_sizes[i])), "pvalloc", big_sizes[i]);
	EXPECT_ENOMEM(t_pvalloc(OPAQUE(SIZE_MAX)), "pvalloc", SIZE_MAX);
	EXPECT_ENOMEM(t_pvalloc(OPAQUE(SIZE_MAX - 2)), "pvalloc", SIZE_MAX - 2);
	EXPECT_ENOMEM(t_pvalloc(OPAQUE(SIZE_MAX - 8191)), "pvalloc", SIZE_MAX - 8191);
}
END_TEST
#endif

/* ---- alignment arguments ------------------------------------------------- */

static const size_t bad_aligns[] = {
	0, 1, 2, 3, 4, 5, 6, 7, 12, 24, 40, 48, 0x300, 0x1001, 0x10001,
	(1 << 20) + 8, 3 << 20, SIZE_MAX, SIZE_MAX / 2, SIZE_MAX / 2 + 2,
	SIZE_MAX - 15,
};

START_TEST(posix_memalign_einval)
{
	static const size_t sizes[] = { 0, 1, 16, 100, 5000, 100000, 2 << 20 };

	for (size_t a = 0; a < sizeof(bad_aligns) / sizeof(bad_aligns[0]); a++) {
		size_t al = bad_aligns[a];
		/* 1, 2 and 4 are powers of two, but not multiples of sizeof(void *). */
		if (al != 0 && (al & (al - 1)) == 0 && al % sizeof(void *) == 0)
			continue;
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			void *p = SENTINEL;
			int rc = t_posix_memalign(&p, OPAQUE(al), sizes[s]);

			ck_assert_msg(rc == EINVAL, "posix_memalign(&p, %#zx, %zu) returned %d, not EINVAL",
				      al, sizes[s], rc);
			ck_assert_msg(p == SENTINEL, "posix_memalign(&p, %#zx, %zu) changed *p",
				      al, sizes[s]);
		}
	}
}
END_TEST

START_TEST(aligned_alloc_einval)
{
	static const size_t sizes[] = { 0, 1, 16, 4096, 100000, 2 << 20 };

	for (size_t a = 0; a < sizeof(bad_aligns) / sizeof(bad_aligns[0]); a++) {
		size_t al = bad_aligns[a];
		if (al != 0 && (al & (al - 1)) == 0)
			continue;       /* 1, 2, 4: powers of two, accepted */
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			void *r;

			errno = 0;
			r = t_aligned_alloc(OPAQUE(al), sizes[s]);
			ck_assert_msg(r == NULL, "aligned_alloc(%#zx, %zu) returned %p, not NULL",
				      al, sizes[s], r);
			ck_assert_msg(errno == EINVAL, "aligned_alloc(%#zx, %zu): errno %d, not EINVAL",
				      al, sizes[s], errno);
		}
	}
	/* Small powers of two are fine, and any size goes with any alignment. */
	for (size_t al = 1; al <= 8; al <<= 1) {
		void *p = t_aligned_alloc(OPAQUE(al), 24);

		check_block(p, 24, al, "aligned_alloc(small power of two, 24)");
		t_free(p);
	}
	void *p = t_aligned_alloc(4096, OPAQUE((size_t)100));
	check_block(p, 100, 4096, "aligned_alloc(4096, 100)");
	t_free(p);
}
END_TEST

#ifdef T_LIBC_EXTRAS
START_TEST(memalign_rounds_up)
{
	static const struct { size_t in, eff; } cases[] = {
		{ 0, 16 }, { 1, 16 }, { 3, 16 }, { 24, 32 }, { 33, 64 },
		{ 0x300, 0x400 }, { 0x1001, 0x2000 }, { (1 << 20) - 1, 1 << 20 },
	};
	static const size_t sizes[] = { 1, 10, 100, 5000, 40000, 2 << 20 };

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			void *p = t_memalign(OPAQUE(cases[c].in), sizes[s]);

			check_block(p, sizes[s], cases[c].eff, "memalign(non power of two)");
			memset(p, 0x3c, sizes[s]);
			t_free(p);
		}
	}
}
END_TEST

START_TEST(valloc_pvalloc_pages)
{
	size_t pg = (size_t)getpagesize();
	static const size_t sizes[] = { 1, 100, 4095, 4096, 4097, 40000, 1 << 20, 3 << 20 };

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		void *p = t_valloc(sizes[s]);
		void *q = t_pvalloc(sizes[s]);
		size_t rounded = (sizes[s] + pg - 1) & ~(pg - 1);

		check_block(p, sizes[s], pg, "valloc");
		check_block(q, rounded, pg, "pvalloc (usable >= size rounded to a page)");
		memset(p, 1, sizes[s]);
		memset(q, 2, rounded);
		t_free(p);
		t_free(q);
	}
}
END_TEST
#endif

/* ---- every power of two from 8 to 1 MiB, for sizes in every tier --------- */

enum { AL_POSIX, AL_ALIGNED_ALLOC, AL_MEMALIGN, AL_FORMS };

static void alignment_matrix(int form)
{
	static const char *names[] = { "posix_memalign", "aligned_alloc", "memalign" };
	void *blocks[N_TIER_SIZES];

	for (size_t al = 8; al <= (1 << 20); al <<= 1) {
		for (size_t s = 0; s < N_TIER_SIZES; s++) {
			size_t n = tier_sizes[s];
			void *p = NULL;

			switch (form) {
			case AL_POSIX:
				ck_assert_msg(t_posix_memalign(&p, al, n) == 0,
					      "posix_memalign(&p, %zu, %zu) failed", al, n);
				break;
			case AL_ALIGNED_ALLOC:
				p = t_aligned_alloc(al, n);
				break;
#ifdef T_LIBC_EXTRAS
			case AL_MEMALIGN:
				p = t_memalign(al, n);
				break;
#endif
			}
			ck_assert_msg(p != NULL, "%s(%zu, %zu) returned NULL", names[form], al, n);
			ck_assert_msg(((uintptr_t)p & (al - 1)) == 0 && ((uintptr_t)p & 15) == 0,
				      "%s(%zu, %zu) = %p is misaligned", names[form], al, n, p);
			ck_assert_msg(t_usable_size(p) >= n, "%s(%zu, %zu): usable size %zu",
				      names[form], al, n, (size_t)t_usable_size(p));
			/* The whole usable size is ours once claimed, in place. */
			size_t u;
			p = claim_usable(p, &u);
			pat_fill(p, u, al * 131 + s);
			blocks[s] = p;
		}
		/* No two live blocks overlap. */
		for (size_t s = 0; s < N_TIER_SIZES; s++) {
			ck_assert_msg(pat_check(blocks[s], t_usable_size(blocks[s]), al * 131 + s) == PAT_OK,
				      "%s(%zu, %zu): block overwritten by a neighbour",
				      names[form], al, tier_sizes[s]);
			t_free(blocks[s]);
		}
	}
}

START_TEST(align_posix_memalign) { alignment_matrix(AL_POSIX); }
END_TEST
START_TEST(align_aligned_alloc) { alignment_matrix(AL_ALIGNED_ALLOC); }
END_TEST
#ifdef T_LIBC_EXTRAS
START_TEST(align_memalign) { alignment_matrix(AL_MEMALIGN); }
END_TEST
#endif

/* ---- calloc zeroes, also when it reuses freed memory --------------------- */

static const size_t calloc_tiers[][8] = {
	{ 1, 8, 16, 24, 100, 512, 1000, 1024 },            /* tiny */
	{ 1025, 2000, 4096, 8000, 16384, 30000, 32768, 0 }, /* mid */
	{ 32769, 40000, 100000, 300000, 1 << 20, 0 },      /* large */
	{ (1 << 20) + 1, 2 << 20, (3 << 20) + 5, 8 << 20, 0 }, /* huge */
};

START_TEST(calloc_zero_on_reuse)
{
	const size_t *sizes = calloc_tiers[_i];
	enum { MAXB = 64, ROUNDS = 6 };
	void *blk[MAXB];

	for (size_t k = 0; k < 8 && sizes[k] != 0; k++) {
		size_t n = sizes[k];
		size_t cnt = (32 * MiB) / n;

		if (cnt > MAXB)
			cnt = MAXB;
		if (cnt < 3)
			cnt = 3;
		for (int r = 0; r < ROUNDS; r++) {
			/* Dirty blocks of this size (whole usable size) and free them. */
			for (size_t b = 0; b < cnt; b++) {
				size_t u;

				blk[b] = t_malloc(n);
				ck_assert_ptr_nonnull(blk[b]);
				blk[b] = claim_usable(blk[b], &u);
				memset(blk[b], 0xAA, u);
			}
			for (size_t b = 0; b < cnt; b++)
				t_free(blk[b]);
			/* calloc the same size: whatever comes back is zero. */
			for (size_t b = 0; b < cnt; b++) {
				size_t off, u;

				switch ((b + r) % 3) {
				case 0: blk[b] = t_calloc(1, n); break;
				case 1: blk[b] = t_calloc(n, 1); break;
				default:
					blk[b] = (n % 4 == 0) ? t_calloc(n / 4, 4) : t_calloc(1, n);
					break;
				}
				ck_assert_ptr_nonnull(blk[b]);
				off = zero_check(blk[b], n);
				ck_assert_msg(off == PAT_OK,
					      "calloc(%zu) round %d block %zu: byte %zu is %#x, not 0",
					      n, r, b, off, ((unsigned char *)blk[b])[off]);
				blk[b] = claim_usable(blk[b], &u);
				memset(blk[b], 0xAA, u);
			}
			for (size_t b = 0; b < cnt; b++)
				t_free(blk[b]);
		}
	}
}
END_TEST

/* calloc after frees of other sizes in the same classes. */
START_TEST(calloc_zero_mixed)
{
	uint64_t rng = 42;
	enum { N = 256 };
	void *blk[N] = { 0 };

	for (int it = 0; it < 20000; it++) {
		size_t i = tu_range(&rng, 0, N - 1);
		size_t n = (it % 50 == 0) ? tu_range(&rng, 32769, 1100000)
					  : tu_range(&rng, 1, 20000);
		size_t u;

		if (blk[i] != NULL)
			t_free(blk[i]);
		if (it & 1) {
			blk[i] = t_calloc(1, n);
			ck_assert_ptr_nonnull(blk[i]);
			ck_assert_msg(zero_check(blk[i], n) == PAT_OK, "calloc(1, %zu) not zero", n);
		} else {
			blk[i] = t_malloc(n);
			ck_assert_ptr_nonnull(blk[i]);
		}
		blk[i] = claim_usable(blk[i], &u);
		memset(blk[i], 0x55, u);
	}
	for (size_t i = 0; i < N; i++)
		t_free(blk[i]);
}
END_TEST

/* ---- realloc keeps contents across every tier boundary -------------------- */

static void *realloc_step(void *p, size_t old, size_t n, uint64_t oldkey, uint64_t newkey)
{
	void *q;
	size_t off;

	q = t_realloc(p, n);
	ck_assert_msg(q != NULL, "realloc(%zu -> %zu) failed", old, n);
	check_block(q, n, 16, "realloc");
	off = pat_check(q, min_sz(old, n), oldkey);
	ck_assert_msg(off == PAT_OK, "realloc(%zu -> %zu) lost byte %zu", old, n, off);
	pat_fill(q, n, newkey);
	return q;
}

START_TEST(realloc_chain)
{
	static const size_t chain[] = {
		8, 1000, 2000, 40000, 2 << 20, 40000, 2000, 8,
		1024, 1025, 1024, 32768, 32769, 32768, 1 << 20, (1 << 20) + 1, 1 << 20,
		16, 2 << 20, 64 << 20, 3 << 20, (3 << 20) + 4096, 5, 17, 24, 100, 99, 0x10000,
	};
	for (int round = 0; round < 3; round++) {
		size_t old = chain[0];
		uint64_t key = 1000 + round;
		void *p = t_malloc(old);

		ck_assert_ptr_nonnull(p);
		pat_fill(p, old, key);
		for (size_t i = 1; i < sizeof(chain) / sizeof(chain[0]); i++) {
			p = realloc_step(p, old, chain[i], key, key + 1);
			old = chain[i];
			key++;
		}
		t_free(p);
	}
}
END_TEST

/* realloc to the usable size claims the whole block and never moves it,
 * in every tier (claim_usable).  Alignments up to 1 MiB are claimed in the
 * alignment matrix; these are larger (a huge block whose header sits a
 * region below it).  Size 0 is left out: with these alignments hakmem maps
 * no byte for it and its usable size is 0 (lib/large.c, huge_alloc). */
START_TEST(realloc_usable_in_place)
{
	static const size_t aligns[] = { 2 << 20, 4 << 20, 16 << 20 };

	for (size_t a = 0; a < sizeof(aligns) / sizeof(aligns[0]); a++) {
		for (size_t s = 0; s < N_TIER_SIZES; s++) {
			size_t n = tier_sizes[s], u;
			void *p = t_aligned_alloc(aligns[a], n);

			check_block(p, n, aligns[a], "aligned_alloc");
			/* size 0 too: a live block, so some bytes of its own (an
			 * aligned huge block of 0 bytes once had none, and its
			 * pointer lay past its mapping) */
			ck_assert_msg(t_usable_size(p) > 0, "aligned_alloc(%zu, %zu): usable size 0",
				      aligns[a], n);
			p = claim_usable(p, &u);
			memset(p, 0x5c, u);
			t_free(p);
		}
	}
}
END_TEST

/* Every pair of tier sizes, both ways. */
START_TEST(realloc_all_pairs)
{
	for (size_t a = 1; a < N_TIER_SIZES; a++) {
		for (size_t b = 1; b < N_TIER_SIZES; b++) {
			size_t from = tier_sizes[a], to = tier_sizes[b];
			void *p = t_malloc(from);

			ck_assert_ptr_nonnull(p);
			pat_fill(p, from, a * 100 + b);
			p = realloc_step(p, from, to, a * 100 + b, 7);
			ck_assert_msg(pat_check(p, to, 7) == PAT_OK, "refill failed");
			t_free(p);
		}
	}
}
END_TEST

/* realloc(p, 0): frees p, returns NULL, errno unchanged. */
START_TEST(realloc_zero_frees)
{
	for (size_t s = 1; s < N_TIER_SIZES; s++) {
		void *p = t_malloc(tier_sizes[s]);
		void *q;

		ck_assert_ptr_nonnull(p);
		memset(p, 0x11, tier_sizes[s]);
		errno = 4321;
		q = t_realloc(p, OPAQUE((size_t)0));
		ck_assert_msg(q == NULL, "realloc(p of %zu, 0) returned %p, not NULL", tier_sizes[s], q);
		ck_assert_msg(errno == 4321, "realloc(p, 0) changed errno to %d", errno);
	}
#ifdef TEST_HAKMEM
	/* It really frees: a huge block is unmapped or cached, counted in huge_frees. */
	struct hak_stats st0, st1;
	void *p = t_malloc(4 << 20);

	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(hak_stats_get(&st0), 0);
	ck_assert_ptr_null(t_realloc(p, OPAQUE((size_t)0)));
	ck_assert_int_eq(hak_stats_get(&st1), 0);
	ck_assert_msg(st1.huge_frees == st0.huge_frees + 1,
		      "realloc(huge, 0) did not free the block (huge_frees %llu -> %llu)",
		      (unsigned long long)st0.huge_frees, (unsigned long long)st1.huge_frees);
#endif
	/* Many rounds must not grow the process: the blocks are really freed. */
	size_t rss0 = tu_rss();
	for (int i = 0; i < 20000; i++) {
		void *p2 = t_malloc(20000);

		REQUIRE(p2 != NULL, "malloc(20000) failed");
		memset(p2, 1, 20000);
		REQUIRE(t_realloc(p2, OPAQUE((size_t)0)) == NULL, "realloc(p, 0) != NULL");
	}
	ck_assert_msg(tu_rss() < rss0 + 64 * MiB,
		      "20000 x realloc(malloc(20000), 0) grew RSS by %zu MiB",
		      (tu_rss() - rss0) / MiB);
}
END_TEST

/* ---- free ----------------------------------------------------------------- */

START_TEST(free_null)
{
	errno = 77;
	t_free(NULL);
	ck_assert_int_eq(errno, 77);
#ifdef TEST_HAKMEM
	ck_assert_uint_eq(hak_usable_size(NULL), 0);
#endif
	ck_assert_uint_eq(t_usable_size(NULL), 0);
}
END_TEST

START_TEST(free_preserves_errno)
{
	enum { N = 64 };
	void *blk[N];

	for (int round = 0; round < 4; round++) {
		for (size_t s = 0; s < N_TIER_SIZES; s++) {
			for (int i = 0; i < N; i++) {
				blk[i] = t_malloc(tier_sizes[s]);
				ck_assert_ptr_nonnull(blk[i]);
			}
			for (int i = 0; i < N; i++) {
				errno = 1234;
				t_free(blk[i]);
				ck_assert_msg(errno == 1234, "free of a %zu-byte block set errno to %d",
					      tier_sizes[s], errno);
			}
		}
		/* Huge frees that unmap (more than any cache keeps). */
		for (int i = 0; i < 16; i++) {
			blk[i] = t_malloc((size_t)(2 + i) << 20);
			ck_assert_ptr_nonnull(blk[i]);
		}
		for (int i = 0; i < 16; i++) {
			errno = 1234;
			t_free(blk[i]);
			ck_assert_int_eq(errno, 1234);
		}
	}
	errno = 1234;
	t_free(NULL);
	ck_assert_int_eq(errno, 1234);
}
END_TEST

/* ---- usable size ----------------------------------------------------------- */

/* Claimed with realloc (in place), the whole usable size can be written, and
 * no two blocks' usable spaces overlap. */
START_TEST(usable_size_writable)
{
	enum { K = 3 };
	void *blk[K];

	for (size_t n = 0; n <= 4200; n++) {
		for (int k = 0; k < K; k++) {
			size_t u;

			blk[k] = t_malloc(n);
			check_block(blk[k], n, 16, "malloc");
			blk[k] = claim_usable(blk[k], &u);
			pat_fill(blk[k], u, n * K + k);
		}
		for (int k = 0; k < K; k++) {
			ck_assert_msg(pat_check(blk[k], t_usable_size(blk[k]), n * K + k) == PAT_OK,
				      "usable space of a %zu-byte block overlaps another block", n);
			t_free(blk[k]);
		}
	}
	for (size_t s = 0; s < N_TIER_SIZES; s++) {
		for (int k = 0; k < K; k++) {
			size_t u;

			blk[k] = t_malloc(tier_sizes[s]);
			check_block(blk[k], tier_sizes[s], 16, "malloc");
			blk[k] = claim_usable(blk[k], &u);
			pat_fill(blk[k], u, s * K + k);
		}
		for (int k = 0; k < K; k++) {
			ck_assert_msg(pat_check(blk[k], t_usable_size(blk[k]), s * K + k) == PAT_OK,
				      "usable space of a %zu-byte block overlaps another block",
				      tier_sizes[s]);
			t_free(blk[k]);
		}
	}
}
END_TEST

/* ---- 16-byte alignment of every block ---------------------------------------- */

START_TEST(all_blocks_16_aligned)
{
	uint64_t rng = 7;
	void *p;

	for (size_t n = 0; n <= 4200; n++) {
		p = t_malloc(n);
		check_block(p, n, 16, "malloc");
		void *q = t_calloc(1, n);
		check_block(q, n, 16, "calloc");
		p = t_realloc(p, n + 13);
		check_block(p, n + 13, 16, "realloc");
		t_free(q);
		t_free(p);
	}
	for (int i = 0; i < 3000; i++) {
		size_t n = (i % 10 == 0) ? tu_range(&rng, 1, 4 << 20) : tu_range(&rng, 1, 70000);

		p = t_malloc(n);
		check_block(p, n, 16, "malloc");
		t_free(p);
	}
}
END_TEST

/* ---- sized frees --------------------------------------------------------------- */

START_TEST(sized_frees)
{
#ifndef USE_HAK_API
	ck_assert_msg(free_sized != NULL, "free_sized is not defined");
	ck_assert_msg(free_aligned_sized != NULL, "free_aligned_sized is not defined");
#endif
	size_t rss0 = tu_rss();

	/* Each size many times: if the sized frees leaked, this would take
	 * gigabytes; it must stay flat. */
	for (size_t s = 1; s < N_TIER_SIZES; s++) {
		size_t n = tier_sizes[s];
		int iters = n <= 32768 ? 20000 : 400;

		for (int i = 0; i < iters; i++) {
			void *p = t_malloc(n);

			REQUIRE(p != NULL, "malloc(%zu) failed", n);
			memset(p, 0x42, n < 8192 ? n : 8192);
			((char *)p)[n - 1] = 1;
			t_free_sized(p, n);

			size_t al = (size_t)64 << (i % 8);
			void *q = t_aligned_alloc(al, n);
			REQUIRE(q != NULL && ((uintptr_t)q & (al - 1)) == 0 && t_usable_size(q) >= n,
				"aligned_alloc(%zu, %zu) = %p", al, n, q);
			memset(q, 0x43, n < 8192 ? n : 8192);
			((char *)q)[n - 1] = 1;
			t_free_aligned_sized(q, al, n);
		}
	}
	ck_assert_msg(tu_rss() < rss0 + 64 * MiB, "sized frees leak: RSS grew by %zu MiB",
		      (tu_rss() - rss0) / MiB);
	errno = 99;
	t_free_sized(NULL, 0);
	t_free_aligned_sized(NULL, 64, 0);
	ck_assert_int_eq(errno, 99);
}
END_TEST

/* ---- foreign pointers -------------------------------------------------------- */

#ifdef TEST_HAKMEM
static unsigned char static_area[16384] __attribute__((aligned(4096)));

static uint64_t foreign_frees(void)
{
	struct hak_stats st;

	ck_assert_int_eq(hak_stats_get(&st), 0);
	return st.foreign_frees;
}

/* p points at memory hakmem never handed out; the len bytes there (len <=
 * 4096) must come out of free/realloc untouched (they may be read-only). */
static void check_foreign(void *p, size_t len, const char *what)
{
	static unsigned char before[4096];
	uint64_t f0, f1, f2;
	void *r;

	ck_assert_uint_le(len, sizeof(before));
	memcpy(before, p, len);
	f0 = foreign_frees();
	errno = 555;
	t_free(p);
	ck_assert_msg(errno == 555, "free(%s) changed errno to %d", what, errno);
	f1 = foreign_frees();
	ck_assert_msg(f1 >= f0 + 1, "free(%s) not counted in foreign_frees", what);
	ck_assert_msg(t_usable_size(p) == 0, "usable_size(%s) = %zu, not 0",
		      what, (size_t)t_usable_size(p));
	errno = 0;
	r = t_realloc(p, 100);
	ck_assert_msg(r == NULL, "realloc(%s, 100) returned %p, not NULL", what, r);
	ck_assert_msg(errno == EINVAL, "realloc(%s, 100): errno %d, not EINVAL", what, errno);
	errno = 0;
	r = t_realloc(p, 5 << 20);
	ck_assert_msg(r == NULL && errno == EINVAL, "realloc(%s, 5 MiB) did not fail with EINVAL", what);
	f2 = foreign_frees();
	ck_assert_msg(f2 >= f1 + 1, "realloc(%s) not counted in foreign_frees", what);
	errno = 555;
	t_free_sized(p, 16);
	t_free_aligned_sized(p, 16, 16);
	ck_assert_msg(errno == 555, "sized free of %s changed errno", what);
	ck_assert_msg(memcmp(before, p, len) == 0, "free/realloc of %s wrote into it", what);
	/* The allocator still works. */
	void *q = t_malloc(100);
	ck_assert_ptr_nonnull(q);
	memset(q, 0, 100);
	t_free(q);
}

START_TEST(foreign_static)
{
	pat_fill(static_area, sizeof(static_area), 99);
	check_foreign(static_area + 64, 4096, "a pointer into a static array");
	check_foreign(static_area, 4096, "a page-aligned static array");
	check_foreign(static_area + 8, 4096, "a static array + 8");
}
END_TEST

START_TEST(foreign_stack)
{
	unsigned char buf[4096] __attribute__((aligned(64)));

	pat_fill(buf, sizeof(buf), 98);
	check_foreign(buf + 16, 2048, "a stack buffer");
}
END_TEST

START_TEST(foreign_mmap)
{
	/* Take 2 MiB-aligned addresses (where a segment header would sit) and
	 * fill them with things that look like pointers and sizes. */
	size_t len = 8 << 20;
	unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_msg(m != MAP_FAILED, "mmap failed");
	unsigned char *a = (unsigned char *)(((uintptr_t)m + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1));
	uintptr_t *w = (uintptr_t *)a;
	for (size_t i = 0; i < 8192; i++)
		w[i] = (i & 1) ? (uintptr_t)a + i * 64 : (uintptr_t)i * 16;

	check_foreign(a + 64 * KiB, 4096, "a page of an mmap'ed 2 MiB-aligned region");
	check_foreign(a + 4 * KiB, 4096, "a page of an mmap'ed region");
	check_foreign(a + (2 << 20) + 16, 4096, "an mmap'ed region + 16");
	check_foreign(a, 4096, "the start of an mmap'ed 2 MiB-aligned region");
	check_foreign(a + 16, 4096, "the start of an mmap'ed 2 MiB-aligned region + 16");
	ck_assert_int_eq(munmap(m, len), 0);

	/* Read-only: free must not write a single byte there. */
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(m != MAP_FAILED);
	a = (unsigned char *)(((uintptr_t)m + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1));
	memset(a, 0xff, 2 << 20);
	ck_assert_int_eq(mprotect(m, len, PROT_READ), 0);
	check_foreign(a, 4096, "a read-only 2 MiB-aligned mapping");
	check_foreign(a + 4096, 4096, "a read-only mapping + 4096");
	check_foreign(a + 48, 4096, "a read-only mapping + 48");
	ck_assert_int_eq(munmap(m, len), 0);
}
END_TEST

START_TEST(foreign_sbrk)
{
	void *b = sbrk(0);
	if (b == (void *)-1 || sbrk(65536) == (void *)-1)
		return; /* no brk heap here: nothing to test */
	b = (void *)(((uintptr_t)b + 15) & ~(uintptr_t)15);
	memset(b, 0x6b, 4096 + 32);
	check_foreign((char *)b + 32, 4096, "memory from sbrk");
}
END_TEST

/* The program's allocations really come from hakmem (for the override form
 * this proves the override took effect). */
START_TEST(served_by_hakmem)
{
	struct hak_stats st0, st1;
	void *p;

	ck_assert_int_eq(hak_stats_get(&st0), 0);
	p = t_malloc(OPAQUE(4 << 20));
	ck_assert_ptr_nonnull(p);
	memset(p, 1, 4096);
	ck_assert_int_eq(hak_stats_get(&st1), 0);
	ck_assert_msg(st1.huge_allocs == st0.huge_allocs + 1,
		      "malloc(4 MiB) was not served by hakmem (huge_allocs %llu -> %llu)",
		      (unsigned long long)st0.huge_allocs, (unsigned long long)st1.huge_allocs);
	ck_assert_uint_ge(hak_usable_size(p), 4 << 20);
	t_free(p);
	p = t_malloc(24);
	ck_assert_uint_ge(hak_usable_size(p), 24);
	t_free(p);
#ifndef USE_HAK_API
	/* The C library's own allocations go to hakmem too. */
	char *s = strdup("hakmem");
	ck_assert_ptr_nonnull(s);
	ck_assert_msg(hak_usable_size(s) >= 7, "strdup's block is not hakmem's");
	free(s);
#endif
}
END_TEST
#endif /* TEST_HAKMEM */

/* ---- the suite ------------------------------------------------------------------ */

static Suite *semantics_suite(void)
{
	Suite *s = suite_create("semantics (" T_FAMILY ")");
	TCase *tc;

	tc = tcase_create("zero");
	tcase_add_test(tc, zero_size_unique);
	suite_add_tcase(s, tc);

	tc = tcase_create("too-large");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, too_large_malloc);
	tcase_add_test(tc, too_large_calloc);
	tcase_add_test(tc, too_large_realloc);
	tcase_add_test(tc, too_large_aligned_alloc);
	tcase_add_test(tc, too_large_posix_memalign);
#ifdef T_LIBC_EXTRAS
	tcase_add_test(tc, too_large_reallocarray);
	tcase_add_test(tc, too_large_memalign);
	tcase_add_test(tc, too_large_valloc);
	tcase_add_test(tc, too_large_pvalloc);
#endif
	suite_add_tcase(s, tc);

	tc = tcase_create("alignment");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, posix_memalign_einval);
	tcase_add_test(tc, aligned_alloc_einval);
	tcase_add_test(tc, align_posix_memalign);
	tcase_add_test(tc, align_aligned_alloc);
#ifdef T_LIBC_EXTRAS
	tcase_add_test(tc, memalign_rounds_up);
	tcase_add_test(tc, valloc_pvalloc_pages);
	tcase_add_test(tc, align_memalign);
#endif
	tcase_add_test(tc, all_blocks_16_aligned);
	suite_add_tcase(s, tc);

	tc = tcase_create("calloc");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, calloc_zero_on_reuse, 0, 4);
	tcase_add_test(tc, calloc_zero_mixed);
	suite_add_tcase(s, tc);

	tc = tcase_create("realloc");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, realloc_chain);
	tcase_add_test(tc, realloc_all_pairs);
	tcase_add_test(tc, realloc_zero_frees);
	tcase_add_test(tc, realloc_usable_in_place);
	suite_add_tcase(s, tc);

	tc = tcase_create("free");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, free_null);
	tcase_add_test(tc, free_preserves_errno);
	tcase_add_test(tc, usable_size_writable);
	tcase_add_test(tc, sized_frees);
	suite_add_tcase(s, tc);

#ifdef TEST_HAKMEM
	tc = tcase_create("foreign");
	tcase_add_test(tc, foreign_static);
	tcase_add_test(tc, foreign_stack);
	tcase_add_test(tc, foreign_mmap);
	tcase_add_test(tc, foreign_sbrk);
	tcase_add_test(tc, served_by_hakmem);
	suite_add_tcase(s, tc);
#endif
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(semantics_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
