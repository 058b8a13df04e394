/* check_oom_inject.c - out of memory at chosen points: os.c's fault
 * injection (os_fail_countdown) makes the n-th mapping call from now fail,
 * once or from then on (os_fail_sticky), as if the kernel had refused it.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * Every call must then return NULL with errno ENOMEM (posix_memalign:
 * ENOMEM), never crash or hang, leave the blocks it had as they were, and
 * leak no mapping; once injection stops, allocation works again.
 *
 * - refill: a refill of each tier (tiny, mid, large) whose next segment
 *   cannot be mapped; os_ctr.mapped is back to its baseline after the
 *   blocks are freed and hak_collect;
 * - a thread's first allocation: its heap cannot be mapped (the shared
 *   fallback heap's refill fails too, or the fallback heap serves it and
 *   hak_collect then gives its memory back), or its heap is there and its
 *   first refill fails; the thread exits cleanly;
 * - threads that allocate, free and pass blocks to each other while
 *   mappings fail on and off: nothing leaks;
 * - huge realloc growth (2 MiB -> 64 MiB) when the in-place mremap or the
 *   new mapping fails: NULL, the block intact and still usable; when the
 *   moving mremap fails: the block copied, the refusal counted; calloc, aligned_alloc, posix_memalign, memalign, valloc,
 *   pvalloc, reallocarray and huge malloc;
 * - fork: the child's first allocations fail, then succeed, the parent
 *   goes on; children forked while another thread allocates, with
 *   failures injected in them;
 * - the sweep: for k = 1, 2, ... the k-th mapping of a fixed mixed
 *   workload fails (once, then from then on), in a child of its own:
 *   every call succeeds or returns NULL with ENOMEM, the blocks that
 *   succeeded keep their contents, nothing leaks.
 *
 * No ck_assert while injection is on: a passing assertion allocates
 * (Check reports to its parent).  alarm() turns a hang into a failure.
 * Runs under the sanitizers (no RLIMIT_AS here).
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

/* AddressSanitizer's own allocator is not fork-safe: a child of a process
 * with other threads running starts no thread (tests/check_thread.c). */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* A hang fails the test: alarm(WATCHDOG) seconds, scaled like Check's
 * timeouts (CK_TIMEOUT_MULTIPLIER, for the slow sanitizer builds). */
static unsigned watchdog(unsigned s)
{
	const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
	long k = m ? atol(m) : 1;
	return s * (unsigned)(k > 0 && k < 100 ? k : 1);
}
#define WATCHDOG watchdog(20)

/* ---- helpers ---- */

static void inject(long n, bool sticky)
{
	atomic_store(&os_fail_sticky, sticky);
	atomic_store(&os_fail_countdown, n);
}

static void inject_off(void)
{
	atomic_store(&os_fail_countdown, 0);
	atomic_store(&os_fail_sticky, 0);
}

static uint64_t injected(void)
{
	return atomic_load(&os_fail_injected);
}

/* What stays mapped once every free block, cached segment and cached
 * huge mapping is given back. */
static uint64_t mapped_settled(void)
{
	hak_collect();
	segment_cache_release();
	huge_cache_release();
	return atomic_load(&os_ctr.mapped);
}

static uint64_t key_of(size_t i)
{
	return 0x9e3779b97f4a7c15ull * (i + 1);
}

/* Fill n bytes of p from key (all of a small block; the first and last
 * pages and a word every 16 pages of a big one: few page faults). */
static void fill(void *p, size_t n, uint64_t key)
{
	unsigned char *b = p;
	if (n <= 2 * HAK_PAGE) {
		for (size_t i = 0; i < n; i++)
			b[i] = (unsigned char)(key >> ((i & 7) * 8)) ^ (unsigned char)i;
		return;
	}
	fill(b, HAK_PAGE, key);
	fill(b + n - HAK_PAGE, HAK_PAGE, ~key);
	for (size_t i = HAK_PAGE; i + 8 <= n - HAK_PAGE; i += 16 * HAK_PAGE)
		memcpy(b + i, &key, 8);
}

static bool intact(const void *p, size_t n, uint64_t key)
{
	const unsigned char *b = p;
	if (n <= 2 * HAK_PAGE) {
		for (size_t i = 0; i < n; i++)
			if (b[i] != ((unsigned char)(key >> ((i & 7) * 8)) ^ (unsigned char)i))
				return false;
		return true;
	}
	if (!intact(b, HAK_PAGE, key) || !intact(b + n - HAK_PAGE, HAK_PAGE, ~key))
		return false;
	for (size_t i = HAK_PAGE; i + 8 <= n - HAK_PAGE; i += 16 * HAK_PAGE)
		if (memcmp(b + i, &key, 8) != 0)
			return false;
	return true;
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* A thread made and gone: its heap waits in the pool of idle heaps, and
 * the next thread takes it without a mapping. */
static void *noop_thread(void *arg)
{
	(void)arg;
	hak_free(hak_malloc(16));
	return NULL;
}

static void idle_heap(void)
{
	/* this thread's own heap first (without the override, Check does
	 * not allocate through hakmem): hak_collect would take the idle one */
	hak_free(hak_malloc(16));
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, noop_thread, NULL), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	hak_collect(); /* what it abandoned is taken over */
}

/* ---- (a) a refill of each tier when the next mapping fails ---- */

#define MAXB 200000
static void *blk[MAXB];
static const size_t tier_sizes[] = { 100, 5000, 100000 };

START_TEST(refill_fails)
{
	size_t sz = tier_sizes[_i];
	alarm(WATCHDOG);
	/* the heap and the bookkeeping exist before the baseline */
	hak_free(hak_malloc(sz));
	uint64_t base = mapped_settled(), inj0 = injected();

	inject(1, true);
	size_t n = 0;
	int err = 0, cerr = 0, err2 = 0;
	void *p, *c, *p2;
	while (n < MAXB) {
		errno = 0;
		p = hak_malloc(sz);
		if (p == NULL) {
			err = errno;
			break;
		}
		fill(p, sz < 64 ? sz : 64, key_of(n));
		blk[n++] = p;
	}
	errno = 0;
	p2 = hak_malloc(sz); /* again, after the failure */
	err2 = errno;
	errno = 0;
	c = hak_calloc(sz, 1);
	cerr = errno;
	uint64_t inj = injected() - inj0;
	inject_off();

	/* injection stopped: allocation works again */
	void *again = hak_malloc(sz);
	void *zc = hak_calloc(1, sz);
	bool zc_zero = zc != NULL && all_zero(zc, sz);
	size_t bad = SIZE_MAX;
	for (size_t i = 0; i < n; i++)
		if (bad == SIZE_MAX && !intact(blk[i], sz < 64 ? sz : 64, key_of(i)))
			bad = i;
	for (size_t i = 0; i < n; i++)
		hak_free(blk[i]);
	hak_free(p2);
	hak_free(c);
	hak_free(again);
	hak_free(zc);
	uint64_t end = mapped_settled();

	ck_assert_msg(p == NULL && err == ENOMEM, "malloc(%zu) after %zu blocks: %p, errno %d", sz, n,
		      p, err);
	ck_assert_msg(p2 == NULL && err2 == ENOMEM, "malloc(%zu) again: %p, errno %d", sz, p2, err2);
	ck_assert_msg(c == NULL && cerr == ENOMEM, "calloc(%zu, 1): %p, errno %d", sz, c, cerr);
	ck_assert_uint_ge(inj, 1);
	ck_assert_msg(bad == SIZE_MAX, "block %zu of %zu bytes changed", bad, sz);
	ck_assert_ptr_nonnull(again);
	ck_assert_msg(zc_zero, "calloc(1, %zu) after the failures: not zero", sz);
	ck_assert_msg(end == base, "%zu-byte blocks: %llu bytes mapped, %llu before", sz,
		      (unsigned long long)end, (unsigned long long)base);
	alarm(0);
}
END_TEST

/* A single refused mapping: the refill gives back what is free and tries
 * again, and the call succeeds. */
START_TEST(refill_fails_once)
{
	size_t sz = tier_sizes[_i];
	alarm(WATCHDOG);
	hak_free(hak_malloc(sz));
	uint64_t base = mapped_settled(), inj0 = injected();
	inject(1, false);
	size_t n = 0;
	void *p = (void *)1;
	while (n < MAXB && injected() == inj0) {
		p = hak_malloc(sz);
		if (p == NULL)
			break;
		fill(p, sz < 64 ? sz : 64, key_of(n));
		blk[n++] = p;
	}
	uint64_t inj = injected() - inj0;
	inject_off();
	size_t bad = SIZE_MAX;
	for (size_t i = 0; i < n; i++)
		if (bad == SIZE_MAX && !intact(blk[i], sz < 64 ? sz : 64, key_of(i)))
			bad = i;
	for (size_t i = 0; i < n; i++)
		hak_free(blk[i]);
	uint64_t end = mapped_settled();
	ck_assert_uint_eq(inj, 1);
	ck_assert_msg(p != NULL, "malloc(%zu) failed after one refused mapping (block %zu)", sz, n);
	ck_assert_msg(bad == SIZE_MAX, "block %zu of %zu bytes changed", bad, sz);
	ck_assert_msg(end == base, "%zu-byte blocks: %llu bytes mapped, %llu before", sz,
		      (unsigned long long)end, (unsigned long long)base);
	alarm(0);
}
END_TEST

/* ---- (b) a thread's first allocation ---- */

struct first_alloc {
	long countdown;    /* the injection the thread sets before it allocates */
	bool once;         /* ... not sticky */
	size_t size;
	void *p;           /* the first allocation */
	int err;
	bool had_heap;     /* a heap of its own after the first allocation */
	uint64_t inj;      /* failures injected meanwhile */
	void *q;           /* after injection stopped */
	bool heap_after;
};

static void *first_alloc_thread(void *arg)
{
	struct first_alloc *fa = arg;
	uint64_t inj0 = injected();
	inject(fa->countdown, !fa->once);
	errno = 0;
	fa->p = hak_malloc(fa->size);
	fa->err = errno;
	fa->had_heap = tls_heap != &heap_empty;
	fa->inj = injected() - inj0;
	inject_off();
	size_t m = fa->size < 64 ? fa->size : 64;
	if (fa->p)
		fill(fa->p, m, 1);
	fa->q = hak_malloc(fa->size);
	fa->heap_after = tls_heap != &heap_empty;
	if (fa->q)
		fill(fa->q, m, 2);
	if ((fa->p && !intact(fa->p, m, 1)) || (fa->q && !intact(fa->q, m, 2)))
		TFAIL("a block of the thread changed");
	hak_free(fa->p);
	hak_free(fa->q);
	return NULL;
}

static void run_first_alloc(struct first_alloc *fa)
{
	alarm(WATCHDOG);
	segment_cache_release();
	huge_cache_release();
	run_thread(first_alloc_thread, fa);
	alarm(0);
}

/* No idle heap: the thread's heap is a new mapping, and it fails; the
 * request goes to the fallback heap, whose large refill fails too. */
START_TEST(thread_heap_map_fails)
{
	struct first_alloc fa = { .countdown = 1, .size = 100000 };
	run_first_alloc(&fa);
	ck_assert_uint_ge(fa.inj, 1);
	ck_assert_msg(!fa.had_heap, "the thread has a heap although its mapping failed");
	ck_assert_msg(fa.p == NULL && fa.err == ENOMEM, "first malloc: %p, errno %d", fa.p, fa.err);
	ck_assert_ptr_nonnull(fa.q);
	ck_assert_msg(fa.heap_after, "no heap once the kernel gives memory again");
}
END_TEST

/* The same with a tiny request: the fallback heap may serve it from what
 * it has; else NULL and ENOMEM. */
START_TEST(thread_heap_map_fails_tiny)
{
	struct first_alloc fa = { .countdown = 1, .size = 48 };
	run_first_alloc(&fa);
	ck_assert_uint_ge(fa.inj, 1);
	ck_assert(!fa.had_heap);
	ck_assert_msg(fa.p != NULL || fa.err == ENOMEM, "first malloc: NULL, errno %d", fa.err);
	ck_assert_ptr_nonnull(fa.q);
	ck_assert(fa.heap_after);
}
END_TEST

/* The heap's mapping fails once, for each of three requests: the shared
 * fallback heap serves them (its own segments map).  Once the thread is
 * gone and the blocks freed, hak_collect leaves no segment in use. */
static void *fallback_thread(void *arg)
{
	void **b = arg;
	const size_t sizes[] = { 48, 5000, 100000 };
	for (int i = 0; i < 3; i++) {
		inject(1, false);
		b[i] = hak_malloc(sizes[i]);
		inject_off();
		if (tls_heap != &heap_empty)
			TFAIL("request %d: the thread has a heap", i);
	}
	b[3] = hak_malloc(100); /* its own heap now */
	if (tls_heap == &heap_empty)
		TFAIL("no heap once the kernel gives memory again");
	return NULL;
}

START_TEST(thread_heap_map_fails_once)
{
	void *b[4];
	alarm(WATCHDOG);
	hak_free(hak_malloc(100));
	mapped_settled();
	uint64_t seg0 = stats().segments, inj0 = injected();
	run_thread(fallback_thread, b);
	ck_assert_uint_eq(injected() - inj0, 3);
	for (int i = 0; i < 4; i++) {
		ck_assert_ptr_nonnull(b[i]);
		hak_free(b[i]);
	}
	mapped_settled();
	ck_assert_uint_eq(stats().segments, seg0);
	alarm(0);
}
END_TEST

/* The heap is mapped (the first mapping call), its first refill is not. */
START_TEST(thread_first_refill_fails)
{
	struct first_alloc fa = { .countdown = 2, .size = 100000 };
	run_first_alloc(&fa);
	ck_assert_msg(fa.had_heap, "the thread's heap was not made");
	ck_assert_uint_ge(fa.inj, 1);
	ck_assert_msg(fa.p == NULL && fa.err == ENOMEM, "first malloc: %p, errno %d", fa.p, fa.err);
	ck_assert_ptr_nonnull(fa.q);
}
END_TEST

/* An idle heap is reused (no mapping); its first refill fails, for each
 * tier. */
START_TEST(thread_reused_heap_refill_fails)
{
	idle_heap();
	struct first_alloc fa = { .countdown = 1, .size = tier_sizes[_i] };
	run_first_alloc(&fa);
	ck_assert(fa.had_heap);
	if (fa.p == NULL) {
		ck_assert_int_eq(fa.err, ENOMEM);
		ck_assert_uint_ge(fa.inj, 1);
	}
	/* a large request finds nothing to reuse */
	if (fa.size > HAK_MID_MAX)
		ck_assert_ptr_null(fa.p);
	ck_assert_ptr_nonnull(fa.q);
}
END_TEST


/* ---- threads that allocate while mappings fail on and off ---- */

#define NCT 4
#define CT_SLOTS 64
static _Atomic int ct_stop;
/* blocks handed between threads: each thread frees what the one before
 * it left in its mailbox */
static _Atomic(uintptr_t) ct_mail[NCT];

struct ct_arg {
	unsigned id;
	unsigned long calls, nulls;
	int bad;
};

static void *ct_thread(void *arg)
{
	struct ct_arg *a = arg;
	static const size_t sz[] = { 16, 100, 700, 3000, 5000, 30000, 100000, 600000, 3 * MiB / 2 };
	void *b[CT_SLOTS] = { NULL };
	size_t bn[CT_SLOTS] = { 0 };
	uint64_t seed = a->id * 1000003u + 1;
	while (!atomic_load(&ct_stop) && !a->bad) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		unsigned k = (unsigned)(seed >> 33) % CT_SLOTS;
		size_t n = sz[(seed >> 40) % 9];
		if (b[k]) {
			if (!intact(b[k], bn[k] < 256 ? bn[k] : 256, (uintptr_t)b[k]))
				a->bad = 1;
			if ((seed >> 20) & 1) {
				/* to the next thread, which frees it */
				uintptr_t old = atomic_exchange(&ct_mail[(a->id + 1) % NCT], (uintptr_t)b[k]);
				hak_free((void *)old);
			} else {
				hak_free(b[k]);
			}
			b[k] = NULL;
		}
		errno = 0;
		void *p = (seed >> 21) & 1 ? hak_malloc(n) : hak_calloc(1, n);
		a->calls++;
		if (p == NULL) {
			if (errno != ENOMEM)
				a->bad = 2;
			a->nulls++;
			continue;
		}
		b[k] = p;
		bn[k] = n;
		fill(p, n < 256 ? n : 256, (uintptr_t)p);
		hak_free((void *)atomic_exchange(&ct_mail[a->id], 0));
	}
	for (unsigned k = 0; k < CT_SLOTS; k++) {
		if (b[k] && !intact(b[k], bn[k] < 256 ? bn[k] : 256, (uintptr_t)b[k]))
			a->bad = 3;
		hak_free(b[k]);
	}
	return NULL;
}

static pthread_barrier_t ct_barrier;

static void *ct_idle(void *arg)
{
	(void)arg;
	hak_free(hak_malloc(16));
	pthread_barrier_wait(&ct_barrier); /* all NCT heaps exist at once */
	return NULL;
}

START_TEST(threads_on_and_off)
{
	pthread_t t[NCT];
	struct ct_arg a[NCT];
	alarm(WATCHDOG);
	/* NCT idle heaps, so that the baseline holds them (this thread's own
	 * first, or hak_collect takes one of them) */
	hak_free(hak_malloc(16));
	ck_assert_int_eq(pthread_barrier_init(&ct_barrier, NULL, NCT), 0);
	for (unsigned i = 0; i < NCT; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, ct_idle, NULL), 0);
	for (unsigned i = 0; i < NCT; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	pthread_barrier_destroy(&ct_barrier);
	uint64_t base = mapped_settled(), inj0 = injected();
	struct hak_stats s0 = stats();
	atomic_store(&ct_stop, 0);
	int created = 0;
	for (unsigned i = 0; i < NCT; i++) {
		a[i] = (struct ct_arg){ .id = i };
		if (pthread_create(&t[i], NULL, ct_thread, &a[i]) != 0)
			break;
		created++;
	}
	/* on and off, once or for a while, for about a second */
	for (long r = 1; r <= 400; r++) {
		inject(r % 7 + 1, r % 3 != 0);
		usleep(1000 + (unsigned)(r % 5) * 300);
		inject_off();
		usleep(1000);
	}
	atomic_store(&ct_stop, 1);
	for (int i = 0; i < created; i++)
		pthread_join(t[i], NULL);
	for (unsigned i = 0; i < NCT; i++)
		hak_free((void *)atomic_exchange(&ct_mail[i], 0));
	uint64_t end = mapped_settled();
	struct hak_stats s1 = stats();
	ck_assert_int_eq(created, NCT);
	unsigned long calls = 0, nulls = 0;
	for (unsigned i = 0; i < NCT; i++) {
		ck_assert_msg(a[i].bad == 0, "thread %u: error %d", i, a[i].bad);
		calls += a[i].calls;
		nulls += a[i].nulls;
	}
	if (getenv("OOM_SWEEP_VERBOSE"))
		fprintf(stderr, "%lu calls, %lu NULL, %llu failures injected\n", calls, nulls,
			(unsigned long long)(injected() - inj0));
	ck_assert_uint_gt(injected(), inj0);
	ck_assert_msg(end == base, "%llu bytes mapped, %llu before; segments %llu, %llu before",
		      (unsigned long long)end, (unsigned long long)base,
		      (unsigned long long)s1.segments, (unsigned long long)s0.segments);
	alarm(0);
}
END_TEST

/* ---- (c) huge blocks: realloc growth and the other calls ---- */

/* realloc(2 MiB -> 64 MiB) with the k-th mapping call failing (sticky):
 * 1 the in-place mremap, 2 the new mapping: NULL; 3 the moving mremap:
 * the pages are copied instead, and the refusal is counted. */
START_TEST(huge_realloc_fails)
{
	alarm(WATCHDOG);
	const size_t from = 2 * MiB, to = 64 * MiB;
	hak_free(hak_malloc(100)); /* a heap: realloc's second try */
	uint64_t base = mapped_settled();
	unsigned char *p = hak_malloc(from);
	ck_assert_ptr_nonnull(p);
	fill(p, from, 7);
	int err[4] = { 0 };
	void *q[4] = { NULL };
	bool ok[4] = { false };
	uint64_t inj[4] = { 0 };
	uint64_t remap_fail0 = atomic_load(&os_ctr.remap_failures);
	for (int k = 1; k <= 3; k++) {
		huge_cache_release();
		segment_cache_release();
		uint64_t inj0 = injected();
		inject(k, true);
		errno = 0;
		q[k] = hak_realloc(p, to);
		err[k] = errno;
		inj[k] = injected() - inj0;
		inject_off();
		ok[k] = intact(p, from, 7);
		if (q[k] != NULL)
			break;
	}
	for (int k = 1; k <= 2; k++) {
		ck_assert_msg(q[k] == NULL && err[k] == ENOMEM,
			      "realloc(2 MiB -> 64 MiB), mapping call %d failing: %p, errno %d", k, q[k],
			      err[k]);
		ck_assert_msg(ok[k], "mapping call %d failing: the block changed", k);
		ck_assert_uint_ge(inj[k], 1);
	}
	ck_assert_msg(q[3] != NULL, "moving mremap refused: no copy (errno %d)", err[3]);
	ck_assert(intact(q[3], from, 7));
	ck_assert_uint_ge(hak_usable_size(q[3]), to);
	ck_assert_uint_eq(atomic_load(&os_ctr.remap_failures), remap_fail0 + 1);
	p = q[3];
	/* once: a retry succeeds (or NULL with the block kept) */
	for (int k = 1; k <= 3; k++) {
		huge_cache_release();
		inject(k, false);
		errno = 0;
		void *r = hak_realloc(p, to);
		int e = errno;
		inject_off();
		if (r == NULL) {
			ck_assert_int_eq(e, ENOMEM);
			ck_assert(intact(p, from, 7));
			continue;
		}
		ck_assert(intact(r, from, 7));
		ck_assert_uint_ge(hak_usable_size(r), to);
		((unsigned char *)r)[to - 1] = 1;
		p = hak_realloc(r, from); /* shrinks in place */
		ck_assert_ptr_nonnull(p);
		ck_assert(intact(p, from, 7));
	}
	/* the block still grows and frees */
	unsigned char *r = hak_realloc(p, to);
	ck_assert_ptr_nonnull(r);
	ck_assert(intact(r, from, 7));
	r[to - 1] = 1;
	hak_free(r);
	ck_assert_uint_eq(mapped_settled(), base);
	alarm(0);
}
END_TEST

/* An aligned huge block (its header one region back) grows: the same. */
START_TEST(huge_aligned_realloc_fails)
{
	alarm(WATCHDOG);
	hak_free(hak_malloc(100));
	uint64_t base = mapped_settled();
	void *p = hak_aligned_alloc(4 * MiB, 3 * MiB);
	ck_assert_ptr_nonnull(p);
	fill(p, 3 * MiB, 9);
	void *q[4];
	int err[4];
	bool ok[4];
	for (int k = 1; k <= 3; k++) {
		inject(k, true);
		errno = 0;
		q[k] = hak_realloc(p, 40 * MiB);
		err[k] = errno;
		inject_off();
		ok[k] = intact(k < 3 ? p : q[k], 3 * MiB, 9);
	}
	for (int k = 1; k <= 2; k++) {
		ck_assert_msg(q[k] == NULL && err[k] == ENOMEM, "mapping call %d failing: %p, errno %d",
			      k, q[k], err[k]);
		ck_assert(ok[k]);
	}
	/* the moving mremap refused: copied, still aligned */
	ck_assert_ptr_nonnull(q[3]);
	ck_assert(ok[3]);
	ck_assert_uint_eq((uintptr_t)q[3] % (4 * MiB), 0);
	p = hak_realloc(q[3], 3 * MiB);
	ck_assert_ptr_eq(p, q[3]);
	void *r = hak_realloc(p, 40 * MiB);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq((uintptr_t)r % (4 * MiB), 0);
	ck_assert(intact(r, 3 * MiB, 9));
	hak_free(r);
	ck_assert_uint_eq(mapped_settled(), base);
	alarm(0);
}
END_TEST

/* the old blocks are read after a realloc on purpose: it failed */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

#if HAKMEM_OVERRIDE
void *memalign(size_t align, size_t n);
void *valloc(size_t n);
void *pvalloc(size_t n);
void *reallocarray(void *p, size_t a, size_t b);
#endif

/* Every allocating call with every mapping refused. */
START_TEST(other_calls_fail)
{
	alarm(WATCHDOG);
	hak_free(hak_malloc(100));
	unsigned char *small = hak_malloc(1000);
	unsigned char *big = hak_malloc(3 * MiB);
	ck_assert_ptr_nonnull(small);
	ck_assert_ptr_nonnull(big);
	fill(small, 1000, 3);
	fill(big, 3 * MiB, 4);
	uint64_t base = mapped_settled();
	enum { NCALLS = 16 };
	void *r[NCALLS];
	int e[NCALLS], pm_ret, pm_err;
	void *pm = (void *)1;
	for (int i = 0; i < NCALLS; i++)
		r[i] = NULL, e[i] = 0;
	int i = 0;
#define TRY(call)              \
	do {                   \
		errno = 0;     \
		r[i] = (call); \
		e[i++] = errno; \
	} while (0)
	inject(1, true);
	TRY(hak_malloc(4 * MiB));
	TRY(hak_calloc(1, 4 * MiB));
	TRY(hak_calloc(4, MiB + 1));
	TRY(hak_aligned_alloc(2 * MiB, 4 * MiB));
	TRY(hak_aligned_alloc(8 * MiB, 2 * MiB));
	TRY(hak_aligned_alloc(4096, 2 * MiB));
	TRY(hak_realloc(small, 4 * MiB));
	TRY(hak_realloc(big, 64 * MiB));
#if HAKMEM_OVERRIDE
	TRY(memalign(2 * MiB, 4 * MiB));
	TRY(memalign(3 * MiB, 2 * MiB)); /* not a power of two: 4 MiB */
	TRY(valloc(4 * MiB));
	TRY(pvalloc(4 * MiB - 5));
	TRY(reallocarray(big, 16, 4 * MiB));
	TRY(reallocarray(small, 2, 3 * MiB));
#endif
	errno = 12345;
	pm_ret = hak_posix_memalign(&pm, 2 * MiB, 4 * MiB);
	pm_err = errno;
	inject_off();
#undef TRY
	int n = i;
	bool small_ok = intact(small, 1000, 3), big_ok = intact(big, 3 * MiB, 4);
	for (i = 0; i < n; i++)
		hak_free(r[i]);
	uint64_t end = mapped_settled();
	for (i = 0; i < n; i++)
		ck_assert_msg(r[i] == NULL && e[i] == ENOMEM, "call %d: %p, errno %d", i, r[i], e[i]);
	ck_assert_int_eq(pm_ret, ENOMEM);
	ck_assert_ptr_eq(pm, (void *)1);
	ck_assert_int_eq(pm_err, 12345);
	ck_assert(small_ok);
	ck_assert(big_ok);
	ck_assert_uint_eq(end, base);
	/* and they work again */
	void *a = hak_calloc(1, 4 * MiB);
	ck_assert_ptr_nonnull(a);
	ck_assert(all_zero(a, 4 * MiB));
	ck_assert_int_eq(hak_posix_memalign(&pm, 2 * MiB, 4 * MiB), 0);
	ck_assert_uint_eq((uintptr_t)pm % (2 * MiB), 0);
	small = hak_realloc(small, 4 * MiB);
	ck_assert_ptr_nonnull(small);
	ck_assert(intact(small, 1000, 3));
	hak_free(a);
	hak_free(pm);
	hak_free(small);
	hak_free(big);
	alarm(0);
}
END_TEST

/* ---- (d) fork ---- */

static void *child_thread(void *arg)
{
	(void)arg;
	void *b[3] = { hak_malloc(100), hak_malloc(5000), hak_malloc(100000) };
	bool ok = b[0] && b[1] && b[2];
	for (int i = 0; i < 3; i++)
		hak_free(b[i]);
	return ok ? (void *)1 : NULL;
}

/* In the child, with every mapping refused from the first: fail, then
 * succeed once injection stops.  The exit status says what went wrong. */
static int child_first_allocs(bool with_thread)
{
	errno = 0;
	void *h = hak_malloc(4 * MiB);
	if (h != NULL || errno != ENOMEM)
		return 2;
	/* large blocks until the heap's memory runs out */
	int n = 0;
	void *b[64];
	for (;;) {
		errno = 0;
		void *p = hak_malloc(100000);
		if (p == NULL) {
			if (errno != ENOMEM)
				return 3;
			break;
		}
		if (n == 64)
			return 4; /* a mapping failed to fail */
		fill(p, 64, (uint64_t)n);
		b[n++] = p;
	}
	if (injected() == 0)
		return 5;
	inject_off();
	h = hak_malloc(4 * MiB);
	void *p = hak_malloc(100000);
	if (h == NULL || p == NULL)
		return 6;
	fill(h, 4 * MiB, 11);
	for (int i = 0; i < n; i++) {
		if (!intact(b[i], 64, (uint64_t)i))
			return 7;
		hak_free(b[i]);
	}
	if (with_thread) {
		pthread_t t;
		void *ret = NULL;
		if (pthread_create(&t, NULL, child_thread, NULL) != 0 || pthread_join(t, &ret) != 0 ||
		    ret != (void *)1)
			return 8;
	}
	if (!intact(h, 4 * MiB, 11))
		return 9;
	hak_free(h);
	hak_free(p);
	hak_collect();
	return 0;
}

static int wait_child(pid_t pid)
{
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(!WIFSIGNALED(st), "the child died of signal %d", WTERMSIG(st));
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

START_TEST(fork_child_fails)
{
	alarm(WATCHDOG);
	void *mine = hak_malloc(100000);
	ck_assert_ptr_nonnull(mine);
	fill(mine, 100000, 5);
	segment_cache_release();
	huge_cache_release();
	/* nothing allocates between the store and the fork: only the child
	 * (a copy of this memory) sees the injection */
	inject(1, true);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(WATCHDOG);
		_exit(child_first_allocs(true));
	}
	inject_off();
	ck_assert_int_ne(pid, -1);
	/* the parent keeps working meanwhile */
	for (int i = 0; i < 100; i++) {
		void *p = hak_malloc(4 * MiB), *q = hak_malloc(100000);
		ck_assert_ptr_nonnull(p);
		ck_assert_ptr_nonnull(q);
		hak_free(p);
		hak_free(q);
	}
	ck_assert_int_eq(wait_child(pid), 0);
	ck_assert(intact(mine, 100000, 5));
	hak_free(mine);
	alarm(0);
}
END_TEST

/* Forks while another thread allocates and frees every tier: the child
 * copies hakmem in whatever state that thread left it, then allocates
 * with the k-th mapping failing. */
static _Atomic int churn_stop;

static void *churn_thread(void *arg)
{
	(void)arg;
	static const size_t sz[] = { 24, 100, 700, 5000, 30000, 100000, 600000, 3 * MiB };
	void *b[16] = { NULL };
	unsigned long i = 0;
	while (!atomic_load(&churn_stop)) {
		unsigned k = (unsigned)(i % 16);
		hak_free(b[k]);
		size_t n = sz[(i * 7) % 8];
		b[k] = hak_malloc(n);
		if (b[k] == NULL)
			TFAIL("malloc(%zu) failed in the parent", n);
		else
			fill(b[k], n < 64 ? n : 64, n);
		i++;
	}
	for (int k = 0; k < 16; k++)
		hak_free(b[k]);
	return NULL;
}

static int child_around_fork(long k)
{
	static const size_t sz[] = { 24, 100, 700, 5000, 30000, 100000, 600000, 3 * MiB };
	void *b[64];
	inject(k, k & 1);
	for (int i = 0; i < 64; i++) {
		size_t n = sz[i % 8];
		errno = 0;
		b[i] = hak_malloc(n);
		if (b[i] == NULL && errno != ENOMEM)
			return 2;
		if (b[i])
			fill(b[i], n < 64 ? n : 64, (uint64_t)i);
	}
	inject_off();
	for (int i = 0; i < 64; i++) {
		size_t n = sz[i % 8];
		if (b[i] && !intact(b[i], n < 64 ? n : 64, (uint64_t)i))
			return 3;
		hak_free(b[i]);
		void *p = hak_malloc(n);
		if (p == NULL)
			return 4;
		hak_free(p);
	}
	hak_collect();
	return 0;
}

START_TEST(fork_around_allocations)
{
	alarm(WATCHDOG);
	pthread_t t;
	terr[0] = '\0';
	atomic_store(&churn_stop, 0);
	ck_assert_int_eq(pthread_create(&t, NULL, churn_thread, NULL), 0);
	int bad_status = 0;
	long bad_k = 0;
	for (long k = 1; k <= 24; k++) {
		usleep(1000);
		pid_t pid = fork();
		if (pid == 0) {
			alarm(WATCHDOG);
			_exit(child_around_fork(k));
		}
		if (pid == -1) {
			bad_status = -1;
			break;
		}
		int st;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			bad_status = WIFSIGNALED(st) ? 100 + WTERMSIG(st) : WEXITSTATUS(st);
			bad_k = k;
			break;
		}
	}
	atomic_store(&churn_stop, 1);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_msg(bad_status == 0, "child %ld: status %d", bad_k, bad_status);
	ck_assert_msg(terr[0] == '\0', "%s", terr);
	alarm(0);
}
END_TEST

/* ---- the sweep: the k-th mapping of a mixed workload fails ---- */

#define WN 96
struct wblk {
	void *p;
	size_t n;
	uint64_t key;
};

static const size_t wsizes[] = { 24, 100, 700, 3000, 5000, 30000, 100000, 600000, 3 * MiB / 2 };
#define NWS (sizeof(wsizes) / sizeof(wsizes[0]))

/* The workload's thread: a few blocks, NULL only with ENOMEM. */
static void *sweep_thread(void *arg)
{
	int *bad = arg;
	for (unsigned i = 0; i < NWS; i++) {
		errno = 0;
		void *p = hak_malloc(wsizes[i]);
		if (p == NULL && errno != ENOMEM)
			*bad = 1;
		if (p)
			fill(p, wsizes[i] < 4096 ? wsizes[i] : 4096, i);
		if (p && !intact(p, wsizes[i] < 4096 ? wsizes[i] : 4096, i))
			*bad = 2;
		hak_free(p);
	}
	return NULL;
}

/* Record the result of an allocating call of n bytes. */
static int wrecord(struct wblk *w, void *p, size_t n, uint64_t key)
{
	if (p == NULL)
		return errno == ENOMEM ? 0 : 1;
	w->p = p;
	w->n = n;
	w->key = key;
	fill(p, n, key);
	return 0;
}

/* Runs in a child; exit status 0 on success, 1 when no failure was
 * injected (k is past the workload's last mapping), else what went
 * wrong. */
static int sweep_child(long k, bool sticky, bool with_thread)
{
	static struct wblk w[WN];
	uint64_t base = mapped_settled(), inj0 = injected();
	int bad = 0;
	inject(k, sticky);
	for (int i = 0; i < WN && !bad; i++) {
		size_t n = wsizes[(i * 5) % NWS];
		uint64_t key = key_of((size_t)i + 1000 * (size_t)k);
		struct wblk *prev = &w[(i * 7) % (i + 1)];
		errno = 0;
		switch (i % 8) {
		case 0:
		case 1:
		case 2:
			bad = wrecord(&w[i], hak_malloc(n), n, key) ? 10 : 0;
			break;
		case 3: {
			void *p = hak_calloc(1, n);
			if (p && !all_zero(p, n < 8192 ? n : 8192))
				bad = 11;
			else
				bad = wrecord(&w[i], p, n, key) ? 12 : 0;
			break;
		}
		case 4: {
			size_t a = (size_t)64 << (i % 16);
			bad = wrecord(&w[i], hak_aligned_alloc(a, n), n, key) ? 13 : 0;
			if (w[i].p && (uintptr_t)w[i].p % a)
				bad = 14;
			break;
		}
		case 5: {
			void *p = NULL;
			int r = hak_posix_memalign(&p, 4096, n);
			if (r != 0 && (r != ENOMEM || p != NULL))
				bad = 15;
			else if (r == 0)
				bad = wrecord(&w[i], p, n, key) ? 16 : 0;
			break;
		}
		case 6: /* grow an earlier block (tiny -> huge, huge -> huger) */
			if (prev->p) {
				size_t m = prev->n <= MiB ? prev->n * 2 + 3 * MiB / 2
					   : prev->n < 8 * MiB ? prev->n * 2 : prev->n / 2;
				void *q = hak_realloc(prev->p, m);
				if (q == NULL) {
					if (errno != ENOMEM)
						bad = 17;
					else if (!intact(prev->p, prev->n, prev->key))
						bad = 18;
					break;
				}
				if (!intact(q, prev->n, prev->key))
					bad = 19;
				prev->p = q;
				prev->n = m;
				fill(q, m, prev->key);
			}
			break;
		default: /* free an earlier block */
			if (prev->p) {
				if (!intact(prev->p, prev->n, prev->key))
					bad = 20;
				hak_free(prev->p);
				prev->p = NULL;
			}
			break;
		}
		if (i == WN / 2 && with_thread) {
			pthread_t t;
			int tbad = 0;
			/* pthread_create may fail itself (its own allocations) */
			if (pthread_create(&t, NULL, sweep_thread, &tbad) == 0) {
				pthread_join(t, NULL);
				if (tbad)
					bad = 20 + tbad;
			}
		}
	}
	bool hit = injected() != inj0;
	inject_off();
	if (bad)
		return bad;
	for (int i = 0; i < WN; i++) {
		if (w[i].p && !intact(w[i].p, w[i].n, w[i].key))
			return 30;
		hak_free(w[i].p);
		w[i].p = NULL;
	}
	/* everything works again */
	for (unsigned i = 0; i < NWS; i++) {
		void *p = hak_malloc(wsizes[i]);
		if (p == NULL)
			return 31;
		hak_free(p);
	}
	uint64_t end = mapped_settled();
	if (end != base) {
		fprintf(stderr, "k %ld%s: %llu bytes mapped, %llu before\n", k, sticky ? " (sticky)" : "",
			(unsigned long long)end, (unsigned long long)base);
		return 32;
	}
	return hit ? 0 : 1;
}

START_TEST(sweep)
{
	bool sticky = _i & 1, with_thread = _i & 2;
	alarm(watchdog(120));
	/* an idle heap for the workload's thread (no mapping for its heap,
	 * which would never be given back) */
	idle_heap();
	long k;
	for (k = 1; k <= 400; k++) {
		pid_t pid = fork();
		if (pid == 0) {
			alarm(WATCHDOG);
			_exit(sweep_child(k, sticky, with_thread));
		}
		ck_assert_int_ne(pid, -1);
		int st = wait_child(pid);
		if (st == 1)
			break; /* k is past the last mapping */
		ck_assert_msg(st == 0, "mapping %ld failing%s%s: status %d", k, sticky ? " (and all after)" : "",
			      with_thread ? " (with a thread)" : "", st);
	}
	if (getenv("OOM_SWEEP_VERBOSE"))
		fprintf(stderr, "sweep %d: %ld mappings\n", _i, k - 1);
	ck_assert_msg(k > 10, "only %ld mappings in the workload", k - 1);
	ck_assert_msg(k <= 400, "more than 400 mappings in the workload");
	alarm(0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("oom_inject");
	TCase *refill = tcase_create("refill"), *thread = tcase_create("thread"),
	      *huge = tcase_create("huge"), *fork_ = tcase_create("fork"),
	      *sweep_ = tcase_create("sweep");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(refill, refill_fails, 0, 3);
	tcase_add_loop_test(refill, refill_fails_once, 0, 3);
	tcase_add_test(thread, thread_heap_map_fails);
	tcase_add_test(thread, thread_heap_map_fails_tiny);
	tcase_add_test(thread, thread_heap_map_fails_once);
	tcase_add_test(thread, thread_first_refill_fails);
	tcase_add_loop_test(thread, thread_reused_heap_refill_fails, 0, 3);
	tcase_add_test(thread, threads_on_and_off);
	tcase_add_test(huge, huge_realloc_fails);
	tcase_add_test(huge, huge_aligned_realloc_fails);
	tcase_add_test(huge, other_calls_fail);
	tcase_add_test(fork_, fork_child_fails);
	tcase_add_test(fork_, fork_around_allocations);
	/* sticky or not, with or without a thread */
	tcase_add_loop_test(sweep_, sweep, 0, 4);
	tcase_set_timeout(refill, 60);
	tcase_set_timeout(thread, 60);
	tcase_set_timeout(huge, 60);
	tcase_set_timeout(fork_, 60);
	tcase_set_timeout(sweep_, 150);
	suite_add_tcase(s, refill);
	suite_add_tcase(s, thread);
	suite_add_tcase(s, huge);
	suite_add_tcase(s, fork_);
	suite_add_tcase(s, sweep_);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
