/* check_oom.c - out of memory: NULL with errno ENOMEM, no crash, and
 * memory that was freed is usable again.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * Each test runs in a process of its own (Check forks) under RLIMIT_AS:
 * the address space the process has when the test starts plus LIMIT_MIB.
 *
 * - every tier (100 B, 5000 B, 100 KB, 3 MiB blocks): allocate until the
 *   kernel refuses; the last call returns NULL with errno ENOMEM; every
 *   block before it is intact; after they are freed the same number can
 *   be allocated again;
 * - calloc, realloc (growing a huge block, and a small block into a huge
 *   one), aligned_alloc and posix_memalign report ENOMEM the same way, and
 *   realloc leaves the block as it was;
 * - free memory is usable: after 8 blocks of 9 MiB are freed (the huge
 *   cache keeps their mappings), or 150 MiB of 100-byte blocks (their
 *   thread keeps the empty slabs a while), malloc(40 MiB) must succeed:
 *   before it reports ENOMEM, hakmem gives back the address space its
 *   caches and empty slabs hold.
 *
 * Not built with a sanitizer: their shadow memory needs address space
 * that RLIMIT_AS does not leave.
 */
#define _GNU_SOURCE
#include <check.h>
#include <sys/resource.h>

#include "testutil.h"

#define LIMIT_MIB 256
/* in loops: a passing ck_assert reports to the Check runner, far too slow
 * a million times over */
#define REQUIRE(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)
#define MAXBLK 4000000

static void **blk;

static size_t vm_size(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t kib = 0;
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmSize:", 7) == 0)
			kib = strtoul(line + 7, NULL, 10);
	fclose(f);
	ck_assert_uint_gt(kib, 0);
	return kib * 1024;
}

/* RLIMIT_AS: what is mapped now plus mib MiB. */
static void limit_as(size_t mib)
{
	/* the array of blocks first, so that it is in the base */
	if (blk == NULL) {
		blk = t_calloc(MAXBLK, sizeof(void *));
		ck_assert_ptr_nonnull(blk);
		memset(blk, 0, MAXBLK * sizeof(void *));
	}
	struct rlimit r;
	r.rlim_cur = r.rlim_max = vm_size() + (mib << 20);
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &r), 0);
}

/* Allocate blocks of sz until the kernel refuses; returns how many. */
static size_t fill(size_t sz)
{
	size_t n = 0;
	for (;;) {
		errno = 0;
		void *p = t_malloc(sz);
		if (p == NULL) {
			REQUIRE(errno == ENOMEM, "malloc(%zu) returned NULL with errno %d", sz, errno);
			break;
		}
		REQUIRE(n < MAXBLK, "%zu blocks of %zu bytes under a limit of %d MiB", n, sz,
			      LIMIT_MIB);
		memset(p, (int)(n & 0xff), sz < 64 ? sz : 64);
		((unsigned char *)p)[sz - 1] = (unsigned char)n;
		blk[n++] = p;
	}
	return n;
}

static void check_and_free(size_t n, size_t sz)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char *p = blk[i];
		REQUIRE(p[0] == (unsigned char)(i & 0xff) && p[sz - 1] == (unsigned char)i,
			"block %zu of %zu bytes was overwritten", i, sz);
		t_free(p);
		blk[i] = NULL;
	}
}

static const size_t sizes[] = { 100, 5000, 100000, 3 << 20 };

START_TEST(oom_each_tier)
{
	size_t sz = sizes[_i];
	limit_as(LIMIT_MIB);
	size_t n = fill(sz);
	/* a good part of the limit was used, not one block */
	ck_assert_msg(n * sz > (LIMIT_MIB << 20) / 3, "only %zu blocks of %zu bytes (%zu MiB)", n, sz,
		      (n * sz) >> 20);
	check_and_free(n, sz);
	/* freed: usable again, for the same blocks and for a big one */
	size_t m = fill(sz);
	ck_assert_msg(m >= n - n / 50, "%zu blocks of %zu bytes after the free, %zu before", m, sz, n);
	check_and_free(m, sz);
	void *big = t_malloc(40 << 20);
	ck_assert_msg(big != NULL, "malloc(40 MiB) after freeing %zu MiB of %zu-byte blocks: NULL",
		      (n * sz) >> 20, sz);
	t_free(big);
}
END_TEST

START_TEST(oom_other_functions)
{
	limit_as(LIMIT_MIB);
	size_t huge = (size_t)(LIMIT_MIB + 64) << 20;
	errno = 0;
	ck_assert_ptr_null(t_calloc(1, huge));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(t_aligned_alloc(1 << 21, huge));
	ck_assert_int_eq(errno, ENOMEM);
	void *q = (void *)1;
	ck_assert_int_eq(t_posix_memalign(&q, 4096, huge), ENOMEM);
	ck_assert_ptr_eq(q, (void *)1);
	/* realloc of a huge block beyond the limit: NULL, the block as it was */
	unsigned char *p = t_malloc(3 << 20);
	ck_assert_ptr_nonnull(p);
	memset(p, 0x5a, 3 << 20);
	errno = 0;
	ck_assert_ptr_null(t_realloc(p, huge));
	ck_assert_int_eq(errno, ENOMEM);
	for (size_t i = 0; i < (3 << 20); i += 4096)
		REQUIRE(p[i] == 0x5a, "byte %zu of the block changed", i);
	/* a small block grown into a huge one */
	unsigned char *s = t_malloc(1000);
	ck_assert_ptr_nonnull(s);
	memset(s, 0x3c, 1000);
	errno = 0;
	ck_assert_ptr_null(t_realloc(s, huge));
	ck_assert_int_eq(errno, ENOMEM);
	for (size_t i = 0; i < 1000; i++)
		REQUIRE(s[i] == 0x3c, "byte %zu of the small block changed", i);
	t_free(s);
	/* and it can still shrink and grow within the limit */
	p = t_realloc(p, 16 << 20);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p[(3 << 20) - 1], 0x5a);
	t_free(p);
}
END_TEST

/* The huge cache keeps freed mappings for reuse; a request that does not
 * fit them must still get memory under the limit. */
START_TEST(freed_huge_usable)
{
	void *b[8];
	limit_as(100);
	for (int i = 0; i < 8; i++) {
		b[i] = t_malloc(9 << 20);
		ck_assert_ptr_nonnull(b[i]);
		memset(b[i], i, 4096);
	}
	for (int i = 0; i < 8; i++)
		t_free(b[i]);
	void *p = t_malloc(40 << 20);
	ck_assert_msg(p != NULL, "malloc(40 MiB) after freeing 8 blocks of 9 MiB under a 100 MiB limit: NULL");
	memset(p, 1, 40 << 20);
	t_free(p);
}
END_TEST

/* A thread's empty slabs wait a purge delay before they go back; a
 * request that needs their address space must not wait. */
START_TEST(freed_small_usable)
{
	limit_as(LIMIT_MIB);
	size_t n = fill(100);
	check_and_free(n, 100);
	void *p = t_malloc(40 << 20);
	ck_assert_msg(p != NULL, "malloc(40 MiB) after freeing %zu MiB of 100-byte blocks: NULL",
		      (n * 100) >> 20);
	t_free(p);
	void *q = t_malloc(5000);
	ck_assert_ptr_nonnull(q);
	t_free(q);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("oom (" T_FAMILY ")");
	TCase *tc = tcase_create("oom");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, oom_each_tier, 0, (int)(sizeof(sizes) / sizeof(sizes[0])));
	tcase_add_test(tc, oom_other_functions);
	tcase_add_test(tc, freed_huge_usable);
	tcase_add_test(tc, freed_small_usable);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
