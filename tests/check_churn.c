/* check_churn.c - thread churn with cross-thread frees (the shape of
 * mimalloc's test-stress; our own code).
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * ROUNDS times, THREADS threads are started and joined.  Thread i makes
 * 100 * SCALE * (i % 8 + 1) allocations: half of the steps put a block of
 * 8-128 bytes in a private array (grown with realloc), the others keep a
 * block of 80 bytes to 5 KiB to the end; one block in a hundred is 100
 * times larger, one in a thousand 1000 times (up to 5 MiB).  Two steps in
 * three free a random entry of the array, one in four swaps an entry with
 * a slot of a shared transfer array that outlives the rounds.  So blocks
 * are freed by threads other than their owner, often after their owner
 * has exited, while new threads adopt the exited threads' memory; between
 * rounds the main thread frees half the transfer slots.  At its end a
 * thread frees what it kept in random order.  Every block carries a header
 * (a key derived from its address and size, and the size) and a pattern,
 * checked in full before each free, so a block handed out twice or written
 * by the allocator is caught.
 *
 * Two kinds of thread make the exit itself work hard.  One thread in four
 * idles IDLE_MS before it exits, so that what the allocator put off (pages
 * to give back, caches to trim: hakmem's purge delay is 100 ms) is due
 * while the exit flushes the thread's caches.  Of those, one in two (i % 8
 * == 7) makes SCALE * 10 allocations of one mid size (7.5-8 KiB) only: at
 * its exit its caches hold nothing but blocks of that class, from many
 * pages.  hakmem's exit flush returned such blocks one by one; a page that
 * emptied on the way ran the delayed sweep, whose trim sent pages that the
 * flush had not finished with to the shared stacks, where other threads
 * take them (issue 10: the flush then pushed blocks onto pages it no
 * longer owned; a --enable-debug build aborts on the owner assertion in
 * heap_flush, a release build corrupts the page's lists).
 *
 * Environment (make check runs a short form; make stress a long one):
 *   THREADS=n    threads per round (default 32)
 *   ROUNDS=n     rounds of create/join (default 8)
 *   SCALE=n      work per thread (default 10; mimalloc's test uses 50)
 *   SEED=n       random seed (default 1); printed, to replay a failure
 *   DURATION=s   instead of ROUNDS: rounds until s seconds have passed
 */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "testutil.h"

#define TRANSFERS 1000
#define IDLE_MS 120 /* hakmem's default purge delay is 100 ms */
#define HDR 16 /* key (8 bytes) and size (8) at the start of every block */

static _Atomic(void *) transfer[TRANSFERS];
static atomic_int failures;
static char failure_msg[512];
static long scale;
static uint64_t base_seed;
static atomic_ulong total_allocs, total_xfers;

static void ch_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ch_fail(const char *fmt, ...)
{
	if (atomic_fetch_add(&failures, 1) == 0) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(failure_msg, sizeof(failure_msg), fmt, ap);
		va_end(ap);
	}
}

static uint64_t key_of(const void *p, size_t n)
{
	return tu_mix64((uintptr_t)p ^ (n * 0x100000001b3ULL) ^ base_seed);
}

/* A block of n >= HDR bytes: key and size first, the pattern after. */
static void *blk_alloc(size_t n)
{
	unsigned char *p = t_malloc(n);

	if (p == NULL) {
		ch_fail("malloc(%zu) returned NULL", n);
		return NULL;
	}
	uint64_t key = key_of(p, n);
	memcpy(p, &key, 8);
	memcpy(p + 8, &n, 8);
	pat_fill(p + HDR, n - HDR, key);
	atomic_fetch_add_explicit(&total_allocs, 1, memory_order_relaxed);
	return p;
}

static void blk_free(void *v)
{
	unsigned char *p = v;
	uint64_t key;
	size_t n, off;

	if (p == NULL)
		return;
	memcpy(&key, p, 8);
	memcpy(&n, p + 8, 8);
	if (n < HDR || n > (64u << 20) || key != key_of(p, n)) {
		ch_fail("block %p: header overwritten (size %zu, key %#llx)", (void *)p, n,
			(unsigned long long)key);
		return; /* not freed: it is not what we think it is */
	}
	off = pat_check(p + HDR, n - HDR, key);
	if (off != PAT_OK) {
		ch_fail("block %p of %zu bytes: corrupted at byte %zu", (void *)p, n, HDR + off);
		return;
	}
	/* a block handed out twice would carry the next owner's pattern; make
	 * a stale copy of this one fail that check too */
	memset(p, 0xdd, HDR);
	t_free(p);
}

static int chance(uint64_t *rng, unsigned perc)
{
	return tu_rand(rng) % 100 < perc;
}

/* A block of 'items' words, now and then 100 or 1000 times larger; for
 * a mid thread, of 7.5-8 KiB. */
static void *alloc_items(uint64_t *rng, size_t items, bool mid)
{
	if (mid)
		return blk_alloc(tu_range(rng, 7680, 8192));
	if (chance(rng, 1))
		items *= chance(rng, 10) ? 1000 : 100;
	if (items < 2)
		items = 2;
	return blk_alloc(items * 8);
}

/* One thread's work: test-stress's shape.  Half the steps allocate 8-128
 * bytes into a private array (grown by realloc), the others a block of
 * 80 bytes to 5 KiB kept to the end; two thirds free a random entry of
 * the array; a quarter swap an entry with a transfer slot.  Some threads
 * do up to eight times more than others, so rounds end unevenly.  One
 * thread in eight allocates only mid blocks (1-16 KiB): its caches hold
 * nothing else when it exits. */
static void *worker(void *arg)
{
	uintptr_t tid = (uintptr_t)arg;
	uint64_t rng = base_seed * 1000003u + tid;
	bool mid = tid % 8 == 7; /* one of those that idle before exit */
	long allocs = mid ? 10 * scale : 100 * scale * (long)(tid % 8 + 1), retain = allocs / 2;
	long nretained = 0, top = 0, cap = 0;
	/* over 8 KiB: a mid thread's caches then hold only mid blocks, and
	 * its 8 KiB blocks are the first the flush at its exit returns */
	void **retained = t_calloc((size_t)retain + 1100, sizeof(void *));
	void **data = NULL;

	if (retained == NULL) {
		ch_fail("calloc of the retained array failed");
		return NULL;
	}
	while ((allocs > 0 || retain > 0) &&
	       atomic_load_explicit(&failures, memory_order_relaxed) == 0) {
		if (retain == 0 || (allocs > 0 && chance(&rng, 50))) {
			allocs--;
			if (top >= cap) {
				long ncap = cap + 4096;
				void **d = t_realloc(data, sizeof(void *) * (size_t)ncap);
				if (d == NULL) {
					ch_fail("realloc of the data array failed");
					break;
				}
				data = d;
				cap = ncap;
			}
			data[top++] = alloc_items(&rng, (size_t)1 << (tu_rand(&rng) % 5), mid);
		} else {
			retained[nretained++] = alloc_items(&rng, (size_t)10 << (tu_rand(&rng) % 7), mid);
			retain--;
		}
		if (top > 0 && chance(&rng, 66)) {
			long k = (long)(tu_rand(&rng) % (uint64_t)top);
			blk_free(data[k]);
			data[k] = NULL;
		}
		if (top > 0 && chance(&rng, 25)) {
			/* what comes out was most likely allocated by another
			 * thread, maybe one that has exited since */
			long k = (long)(tu_rand(&rng) % (uint64_t)top);
			data[k] = atomic_exchange(&transfer[tu_rand(&rng) % TRANSFERS], data[k]);
			atomic_fetch_add_explicit(&total_xfers, 1, memory_order_relaxed);
		}
	}
	/* free what is left in random order, so that the blocks in the
	 * thread's caches at its exit come from many pages */
	for (long k = nretained; k > 1; k--) {
		long j = (long)(tu_rand(&rng) % (uint64_t)k);
		void *x = retained[j];
		retained[j] = retained[k - 1];
		retained[k - 1] = x;
	}
	for (long k = 0; k < nretained; k++)
		blk_free(retained[k]);
	for (long k = 0; k < top; k++)
		blk_free(data[k]);
	t_free(retained);
	t_free(data);
	/* one thread in four idles a while before it exits, as pool threads
	 * do: whatever the allocator put off until later (memory to give
	 * back, caches to trim) is due when the thread's caches are flushed */
	if (tid % 4 == 3)
		usleep(IDLE_MS * 1000);
	return NULL;
}

START_TEST(test_churn)
{
	long threads = tu_env_long("THREADS", 32), rounds = tu_env_long("ROUNDS", 8);
	long duration = tu_env_long("DURATION", 0);
	double end = tu_now() + (double)duration;
	pthread_t *t;
	uint64_t rng;
	long r;

	scale = tu_env_long("SCALE", 10);
	base_seed = (uint64_t)tu_env_long("SEED", 1);
	rng = base_seed;
	if (threads < 2)
		threads = 2;
	if (scale < 1)
		scale = 1;
	t = calloc((size_t)threads, sizeof(*t));
	ck_assert_ptr_nonnull(t);
	if (duration > 0)
		printf("check_churn: %ld threads a round for %ld s, scale %ld, seed %llu\n", threads,
		       duration, scale, (unsigned long long)base_seed);
	else
		printf("check_churn: %ld threads x %ld rounds, scale %ld, seed %llu\n", threads, rounds,
		       scale, (unsigned long long)base_seed);
	fflush(stdout);
	for (r = 0; duration > 0 ? tu_now() < end : r < rounds; r++) {
		for (long i = 0; i < threads; i++)
			ck_assert_int_eq(pthread_create(&t[i], NULL, worker,
							(void *)(uintptr_t)(r * threads + i)), 0);
		for (long i = 0; i < threads; i++)
			ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		/* the main thread frees half of what the round left behind */
		for (int i = 0; i < TRANSFERS; i++)
			if (chance(&rng, 50))
				blk_free(atomic_exchange(&transfer[i], NULL));
		if (atomic_load(&failures) != 0)
			break;
	}
	for (int i = 0; i < TRANSFERS; i++)
		blk_free(atomic_exchange(&transfer[i], NULL));
	free(t);
	printf("check_churn: %ld rounds, %lu blocks, %lu transfers, seed %llu\n", r,
	       atomic_load(&total_allocs), atomic_load(&total_xfers),
	       (unsigned long long)base_seed);
	ck_assert_msg(atomic_load(&failures) == 0, "%d failure(s), the first: %s",
		      atomic_load(&failures), failure_msg);
	ck_assert_int_gt(r, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("churn");
	TCase *tc = tcase_create("churn");
	SRunner *sr;
	int failed;

	/* make stress runs for DURATION seconds (60 by default) */
	tcase_set_timeout(tc, 120 + (double)tu_env_long("DURATION", 0));
	tcase_add_test(tc, test_churn);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
