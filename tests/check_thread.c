/* check_thread.c - internal tests of lib/thread.c: thread heap life cycle.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * - a heap is made on a thread's first allocation and flushed at its exit
 *   (threads_started / threads_exited); the struct goes to a pool and the
 *   next thread gets it back;
 * - a pthread key destructor that runs after hakmem's (its key was made
 *   later) can still allocate, reallocate and free: it is served by the
 *   fallback heap, and its blocks stay good after the thread is gone;
 * - fork() from a thread while other threads allocate: the child can
 *   allocate, free, make threads and collect;
 * - the purge thread: started by a slow path once enough is mapped, not
 *   with the knob off, gives back the segments of an exited thread whose
 *   blocks another thread freed (not one the freeing thread adopted: that
 *   one is its heap's), and starts again in a child of fork.
 *
 * Worker threads never call ck_assert (a passing assertion allocates and
 * talks to the Check runner); they record the first failure in terr[].
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"




static void join_ok(pthread_t t)
{
	ck_assert_int_eq(pthread_join(t, NULL), 0);
}

/* ---- heap made lazily, flushed at exit, reused ---- */

static void *heap_of_thread(void *arg)
{
	struct heap **out = arg;
	if (tls_heap != &heap_empty)
		TFAIL("a new thread starts with a heap");
	void *p = hak_malloc(64), *q = hak_malloc(3000), *r = hak_malloc(50000);
	*out = tls_heap;
	if (tls_heap == &heap_empty || !tls_heap->live)
		TFAIL("no live heap after the first malloc");
	hak_free(p); /* into the bins: the exit flush must empty them */
	hak_free(q);
	hak_free(r);
	return NULL;
}

static void check_flushed(struct heap *h)
{
	ck_assert_int_eq(h->live, 0);
	for (int t = 0; t < TIER_COUNT; t++) {
		ck_assert_ptr_null(h->segs_avail[t]);
		ck_assert_ptr_null(h->segs_full[t]);
	}
	for (unsigned c = 0; c < HAK_NBINS; c++) {
		ck_assert_uint_eq(h->bins[c].count, 0);
		ck_assert_ptr_null(h->bins[c].head);
		ck_assert_ptr_null(h->cur[c]);
		ck_assert_ptr_null(h->partial[c]);
		ck_assert_ptr_null(h->full_head[c]);
	}
	/* its counters went to the totals */
	for (unsigned c = 0; c < HAK_NBINS; c++) {
		ck_assert_uint_eq(h->ctr.cls[c][CC_REFILLS], 0);
		ck_assert_uint_eq(h->bins[c].overflows, 0);
	}
	ck_assert_uint_eq(h->ctr.slabs_new, 0);
}

START_TEST(test_heap_reuse)
{
	pthread_t t;
	struct heap *ha = NULL, *hb = NULL;
	terr[0] = '\0';
	struct hak_stats st0 = stats();
	ck_assert_int_eq(pthread_create(&t, NULL, heap_of_thread, &ha), 0);
	join_ok(t);
	struct hak_stats st1 = stats();
	ck_assert_msg(!terr[0], "%s", terr);
	ck_assert_uint_eq(st1.threads_started, st0.threads_started + 1);
	ck_assert_uint_eq(st1.threads_exited, st0.threads_exited + 1);
	ck_assert_uint_ge(st1.tiny_refills, st0.tiny_refills + 1);
	ck_assert_uint_eq(st1.segments_abandoned, st0.segments_abandoned);
	check_flushed(ha);

	ck_assert_int_eq(pthread_create(&t, NULL, heap_of_thread, &hb), 0);
	join_ok(t);
	ck_assert_msg(!terr[0], "%s", terr);
	ck_assert_ptr_eq(hb, ha); /* the pooled heap came back */
	check_flushed(hb);

	/* one after the other: always the same heap */
	for (int i = 0; i < 20; i++) {
		struct heap *h = NULL;
		ck_assert_int_eq(pthread_create(&t, NULL, heap_of_thread, &h), 0);
		join_ok(t);
		ck_assert_ptr_eq(h, ha);
	}
	struct hak_stats st2 = stats();
	ck_assert_msg(!terr[0], "%s", terr);
	ck_assert_uint_eq(st2.threads_started, st0.threads_started + 22);
	ck_assert_uint_eq(st2.threads_exited, st0.threads_exited + 22);
}
END_TEST

#define WAVE 4
static pthread_barrier_t wave_barrier;

static void *wave_thread(void *arg)
{
	struct heap **out = arg;
	void *p = hak_malloc(32);
	*out = tls_heap;
	pthread_barrier_wait(&wave_barrier); /* all alive at once */
	hak_free(p);
	return NULL;
}

START_TEST(test_heap_pool_waves)
{
	struct heap *first[WAVE], *second[WAVE];
	pthread_t t[WAVE];
	pthread_barrier_init(&wave_barrier, NULL, WAVE);
	for (int i = 0; i < WAVE; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, wave_thread, &first[i]), 0);
	for (int i = 0; i < WAVE; i++)
		join_ok(t[i]);
	for (int i = 0; i < WAVE; i++)
		for (int j = 0; j < i; j++)
			ck_assert_ptr_ne(first[i], first[j]); /* live at once: distinct */
	uint64_t maps = atomic_load(&os_ctr.map_calls);
	for (int i = 0; i < WAVE; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, wave_thread, &second[i]), 0);
	for (int i = 0; i < WAVE; i++)
		join_ok(t[i]);
	/* the second wave got the first wave's heaps back, no new one */
	for (int i = 0; i < WAVE; i++) {
		bool found = false;
		for (int j = 0; j < WAVE; j++)
			found |= second[i] == first[j];
		ck_assert_msg(found, "heap %p of the second wave is new", (void *)second[i]);
	}
	(void)maps;
	pthread_barrier_destroy(&wave_barrier);
}
END_TEST

/* A thread that never allocates gets no heap. */
static void *quiet_thread(void *arg)
{
	*(struct heap **)arg = tls_heap;
	return NULL;
}

START_TEST(test_no_alloc_no_heap)
{
	pthread_t t;
	struct heap *h = NULL;
	/* once, so that glibc's thread stack cache is warm */
	ck_assert_int_eq(pthread_create(&t, NULL, quiet_thread, &h), 0);
	join_ok(t);
	struct hak_stats st0 = stats();
	ck_assert_int_eq(pthread_create(&t, NULL, quiet_thread, &h), 0);
	join_ok(t);
	struct hak_stats st1 = stats();
	ck_assert_ptr_eq(h, &heap_empty);
	ck_assert_uint_eq(st1.threads_started, st0.threads_started);
	ck_assert_uint_eq(st1.threads_exited, st0.threads_exited);
}
END_TEST

/* ---- allocation in a key destructor that runs after hakmem's ---- */

static pthread_key_t late_key;
static void *early_block;           /* allocated by the thread, freed in the destructor */
static uint8_t *dtor_block;         /* allocated in the destructor, freed by main */
static struct heap *thread_heap, *dtor_heap;
static int dtor_runs;

static void late_destructor(void *arg)
{
	(void)arg;
	dtor_runs++;
	dtor_heap = tls_heap;
	static const size_t sizes[] = { 1, 16, 100, 1000, 1024, 1025, 5000, 32768, 40000, 300000, 3 * MiB };
	void *b[sizeof(sizes) / sizeof(sizes[0])];
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		b[i] = hak_malloc(sizes[i]);
		if (b[i] == NULL) {
			TFAIL("destructor run %d: hak_malloc(%zu) failed", dtor_runs, sizes[i]);
			return;
		}
		if (hak_usable_size(b[i]) < sizes[i])
			TFAIL("destructor: usable size %zu < %zu", hak_usable_size(b[i]), sizes[i]);
		memset(b[i], (int)i + 1, sizes[i]);
	}
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *p = b[i];
		if (p[0] != i + 1 || p[sizes[i] - 1] != i + 1)
			TFAIL("destructor: block of %zu B overwritten", sizes[i]);
	}
	uint8_t *z = hak_calloc(100, 10);
	for (int i = 0; z && i < 1000; i++)
		if (z[i]) {
			TFAIL("destructor: calloc not zero");
			break;
		}
	uint8_t *r = hak_realloc(b[3], 20000); /* 1000 B -> 20000 B */
	if (r == NULL || r[999] != 4)
		TFAIL("destructor: realloc lost the contents");
	else
		b[3] = r;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		hak_free(b[i]);
	hak_free(z);
	if (dtor_runs == 1) {
		hak_free(early_block); /* a block of the thread's own, dead heap */
		early_block = NULL;
		dtor_block = hak_malloc(1000);
		if (dtor_block)
			memset(dtor_block, 0x3d, 1000);
		/* ask for one more round of destructors */
		pthread_setspecific(late_key, (void *)2);
	}
}

static void *dtor_thread(void *arg)
{
	(void)arg;
	early_block = hak_malloc(200);
	memset(early_block, 0x11, 200);
	thread_heap = tls_heap;
	pthread_setspecific(late_key, (void *)1);
	return NULL;
}

START_TEST(test_alloc_in_late_destructor)
{
	/* made now, after hakmem's own key: its destructor runs later */
	ck_assert_int_eq(pthread_key_create(&late_key, late_destructor), 0);
	terr[0] = '\0';
	dtor_runs = 0;
	pthread_t t;
	struct hak_stats st0 = stats();
	ck_assert_int_eq(pthread_create(&t, NULL, dtor_thread, NULL), 0);
	join_ok(t);
	struct hak_stats st1 = stats();
	ck_assert_msg(!terr[0], "%s", terr);
	ck_assert_int_eq(dtor_runs, 2);
	/* hakmem's destructor had run: the thread had no heap any more */
	ck_assert_ptr_eq(dtor_heap, &heap_empty);
	ck_assert_uint_eq(st1.threads_started, st0.threads_started + 1);
	ck_assert_uint_eq(st1.threads_exited, st0.threads_exited + 1);
	/* the block freed in the destructor was counted as a remote free */
	ck_assert_uint_ge(st1.remote_frees, st0.remote_frees + 1);
	/* the block made in the destructor is good and owned by a heap that
	 * is neither the dead thread's nor the empty one */
	ck_assert_ptr_nonnull(dtor_block);
	for (int i = 0; i < 1000; i++)
		ck_assert_uint_eq(dtor_block[i], 0x3d);
	struct segment *seg = segmap_lookup(dtor_block);
	ck_assert_ptr_nonnull(seg);
	struct heap *owner = atomic_load(&seg->owner);
	ck_assert_ptr_nonnull(owner);
	ck_assert_ptr_ne(owner, &heap_empty);
	ck_assert_ptr_ne(owner, thread_heap);
	ck_assert_ptr_ne(owner, tls_heap);
	hak_free(dtor_block);
	pthread_key_delete(late_key);
}
END_TEST

/* ---- fork in a thread while others allocate ---- */

static atomic_bool busy_stop;

static void *busy_thread(void *arg)
{
	uint64_t seed = (uintptr_t)arg;
	void *slot[64] = { 0 };
	while (!atomic_load_explicit(&busy_stop, memory_order_relaxed)) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		unsigned i = (seed >> 33) % 64, k = (seed >> 20) % 100;
		size_t n = k < 70 ? 1 + (seed >> 40) % 1024
			   : k < 95 ? 1025 + (seed >> 40) % 32768
			   : k < 99 ? 40000 + (seed >> 40) % 500000 : 2 * MiB + (seed >> 40) % MiB;
		hak_free(slot[i]);
		slot[i] = hak_malloc(n);
		if (slot[i])
			memset(slot[i], 0x42, n < 64 ? n : 64);
	}
	for (int i = 0; i < 64; i++)
		hak_free(slot[i]);
	return NULL;
}

static void *child_thread(void *arg)
{
	(void)arg;
	void *p[100];
	for (int i = 0; i < 100; i++)
		p[i] = hak_malloc((size_t)(i + 1) * 97);
	for (int i = 0; i < 100; i++)
		hak_free(p[i]);
	return (void *)1;
}

/* AddressSanitizer's own allocator (gcc 12's libasan) is not fork-safe: a
 * thread of the parent that held one of its locks at the fork leaves it
 * held in the child, and a thread created there waits for it forever
 * (seen: the new thread in pthread_getattr_np -> free -> the quarantine's
 * refill, one fork in about 20).  Under ASan the child starts no thread;
 * hakmem no longer holds any lock across fork, so nothing of its own
 * orders the fork against ASan's allocator. */
#if defined(__SANITIZE_ADDRESS__)
#  define UNDER_ASAN 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define UNDER_ASAN 1
#  endif
#endif

/* In the child: exercise everything; exit status says what failed. */
static int child_work(void)
{
	void *p[512];
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 512; i++) {
			size_t n = i % 64 == 63 ? 3 * MiB : (size_t)(i * 131 % 60000) + 1;
			p[i] = hak_malloc(n);
			if (p[i] == NULL)
				return 2;
			memset(p[i], 0x5c, n < 256 ? n : 256);
		}
		for (int i = 0; i < 512; i++)
			hak_free(p[i]);
	}
	uint8_t *z = hak_calloc(1000, 10);
	if (z == NULL)
		return 3;
	for (int i = 0; i < 10000; i++)
		if (z[i])
			return 4;
	z = hak_realloc(z, 5 * MiB);
	if (z == NULL)
		return 5;
	hak_free(z);
#ifndef UNDER_ASAN
	pthread_t t;
	void *ret = NULL;
	if (pthread_create(&t, NULL, child_thread, NULL) != 0 || pthread_join(t, &ret) != 0 || ret != (void *)1)
		return 6;
#else
	(void)child_thread;
#endif
	hak_collect();
	struct hak_stats st;
	if (hak_stats_get(&st) != 0 || st.os_mapped > st.os_mapped_peak)
		return 7;
	return 0;
}

static void *fork_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20; i++) {
		void *keep = hak_malloc(1000);
		pid_t pid = fork();
		if (pid < 0) {
			TFAIL("fork failed");
			return NULL;
		}
		if (pid == 0) {
			/* a deadlock ends as SIGALRM, not a hang (the default
			 * action: Check's own handler would kill the test) */
			signal(SIGALRM, SIG_DFL);
			alarm(5);
			int rc = child_work();
			/* the parent's block is still ours in the child */
			if (rc == 0 && hak_usable_size(keep) < 1000)
				rc = 8;
			hak_free(keep);
			_exit(rc);
		}
		int status;
		if (waitpid(pid, &status, 0) != pid) {
			TFAIL("waitpid failed");
			return NULL;
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			TFAIL("fork %d: child %s %d", i, WIFEXITED(status) ? "exited with" : "killed by signal",
			      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
			return NULL;
		}
		hak_free(keep);
	}
	return NULL;
}

START_TEST(test_fork_in_thread)
{
	pthread_t busy[3], f;
	terr[0] = '\0';
	atomic_store(&busy_stop, false);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&busy[i], NULL, busy_thread, (void *)(uintptr_t)(i + 1)), 0);
	ck_assert_int_eq(pthread_create(&f, NULL, fork_thread, NULL), 0);
	join_ok(f);
	atomic_store(&busy_stop, true);
	for (int i = 0; i < 3; i++)
		join_ok(busy[i]);
	ck_assert_msg(!terr[0], "%s", terr);
	/* the parent goes on allocating */
	void *p = hak_malloc(100);
	ck_assert_ptr_nonnull(p);
	hak_free(p);
}
END_TEST

/* ---- the purge thread ---- */

static void purge_thread_on(void)
{
	/* itest.h turned it off, and the first slow path may have seen that */
	atomic_store(&hak_cfg.purge_thread, 1);
	atomic_store(&purge_thread_state, PT_NONE);
}

/* Huge blocks, 24 MiB: more than the purge thread waits for. */
static void *big[8];

static void map_enough(void)
{
	for (int i = 0; i < 8; i++) {
		big[i] = hak_malloc((size_t)3 << 20);
		ck_assert_ptr_nonnull(big[i]);
	}
}

static void unmap_enough(void)
{
	for (int i = 0; i < 8; i++)
		hak_free(big[i]);
}

/* The purge thread on and started (a slow path once 8 MiB are mapped);
 * the block returned goes to purge_thread_done with the mappings. */
static void *purge_thread_started(void)
{
	purge_thread_on();
	map_enough();
	void *q = hak_malloc(100000);
	ck_assert_ptr_nonnull(q);
	ck_assert_int_eq(atomic_load(&purge_thread_state), PT_RUNNING);
	return q;
}

static void purge_thread_done(void *q)
{
	hak_free(q);
	unmap_enough();
}

static bool wait_passes(uint64_t after, int ms)
{
	for (int t = 0; t < ms && purge_thread_passes() <= after; t += 10)
		usleep(10000);
	return purge_thread_passes() > after;
}

static uint64_t segments_in_use(void)
{
	uint64_t in_use, peak, cached, abandoned;
	segment_counts(&in_use, &peak, &cached, &abandoned);
	return in_use;
}

START_TEST(test_purge_thread_lazy)
{
	purge_thread_on();
	/* little mapped yet: a slow path starts nothing */
	void *p = hak_malloc(100000);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(atomic_load(&purge_thread_state), PT_NONE);
	map_enough();
	void *q = hak_malloc(100000);
	ck_assert_ptr_nonnull(q);
	ck_assert_int_eq(atomic_load(&purge_thread_state), PT_RUNNING);
	ck_assert_msg(wait_passes(0, 5000), "the purge thread made no pass in 5 s");
	hak_free(p);
	purge_thread_done(q);
}
END_TEST

START_TEST(test_purge_thread_off)
{
	atomic_store(&purge_thread_state, PT_NONE); /* the knob stays 0 */
	map_enough();
	void *q = hak_malloc(100000);
	ck_assert_int_eq(atomic_load(&purge_thread_state), PT_OFF);
	purge_thread_done(q);
}
END_TEST

#define EXIT_TINY 4000
#define EXIT_LARGE 24
static void *exit_blocks[EXIT_TINY + EXIT_LARGE];

static void *alloc_and_exit(void *arg)
{
	(void)arg;
	for (int i = 0; i < EXIT_TINY + EXIT_LARGE; i++) {
		size_t n = i < EXIT_TINY ? 200 : 200000;
		exit_blocks[i] = hak_malloc(n);
		if (exit_blocks[i] == NULL) {
			TFAIL("no memory");
			return NULL;
		}
		memset(exit_blocks[i], 1, n);
	}
	return NULL;
}

/* Tiny and large segments the calling thread's heap holds (its own lists:
 * no other thread writes them). */
static uint64_t segments_held(void)
{
	uint64_t n = 0;
	for (int t = 0; t < TIER_COUNT; t++) {
		for (struct segment *s = tls_heap->segs_avail[t]; s; s = s->next)
			n++;
		for (struct segment *s = tls_heap->segs_full[t]; s; s = s->next)
			n++;
	}
	return n;
}

/* Segments in use that no live thread's heap holds: here, where this
 * thread is the only one left, those not on its own lists. */
static uint64_t segments_unheld(void)
{
	return segments_in_use() - segments_held();
}

/* The segments of an exited thread, whose blocks another thread frees
 * later: the purge thread gives them back, with no further allocator call
 * (the freeing thread's frees only push onto the slabs' remote lists).
 *
 * Unless this thread took one: a refill adopts an abandoned segment with
 * room before it starts a new tiny slab (tiny_refill), and Check and glibc
 * allocate here (an assertion that passes allocates and frees a message)
 * after the exit.  Such a segment is this heap's, and its blocks freed here
 * go to this heap's caches, which a sleeping thread keeps (hakmem(3)): it
 * is not the purge thread's to give back, so only the segments no heap
 * holds are counted.  (The count of all segments in use failed once in a
 * debug build: "4 segments in use 5 s after the frees, 3 before the
 * thread", which is what a refill here between the exit and the frees
 * gives; test_purge_thread_exited_adopted makes that refill.)
 *
 * Within three passes of the purge thread after the last free, counted in
 * passes, not seconds (they come a purge delay to a second apart, later on
 * a loaded machine).  A pass takes every abandoned segment that waited a
 * delay (heap_reclaim); one that the pass running at the last free took is
 * abandoned again with a fresh time; the next pass starts at least a delay
 * later (its period) but may find it a tick of the coarse clock short of
 * the delay; the one after takes it, drains it and gives it back.  What no
 * heap holds after those three passes is a leak.  20 s: a hang guard. */
#define EXIT_PASSES 3
#define EXIT_GUARD_MS 20000

static void exited_segments_back(bool adopt)
{
	void *q = purge_thread_started();
	uint64_t base = segments_unheld();
	run_thread(alloc_and_exit, NULL);
	ck_assert_uint_gt(segments_unheld(), base);
	uint64_t adopted = tls_heap->ctr.segments_adopted;
	if (adopt) {
		/* what tiny_refill does; NULL when the purge thread took it
		 * first (a pass a delay after the exit) */
		struct segment *seg = segment_adopt_refill(TIER_TINY);
		if (seg != NULL) {
			slab_adopt_segment(tls_heap, seg);
			ck_assert_uint_eq(tls_heap->ctr.segments_adopted, adopted + 1);
		}
	}
	for (int i = 0; i < EXIT_TINY + EXIT_LARGE; i++)
		hak_free(exit_blocks[i]);
	uint64_t p0 = purge_thread_passes(), n = segments_unheld();
	int t = 0;
	for (; t < EXIT_GUARD_MS && n > base && purge_thread_passes() < p0 + EXIT_PASSES; t += 10) {
		usleep(10000);
		n = segments_unheld();
	}
	n = segments_unheld();
	ck_assert_msg(n <= base,
		      "%llu segments no heap holds after %llu purge passes (%d ms) since the frees, %llu before the "
		      "thread; this thread adopted %llu",
		      (unsigned long long)n, (unsigned long long)(purge_thread_passes() - p0), t,
		      (unsigned long long)base, (unsigned long long)(tls_heap->ctr.segments_adopted - adopted));
	purge_thread_done(q);
}

START_TEST(test_purge_thread_exited)
{
	exited_segments_back(false);
}
END_TEST

/* The same, when this thread adopts the exited thread's tiny segment
 * between the exit and the frees (as a refill here would). */
START_TEST(test_purge_thread_exited_adopted)
{
	exited_segments_back(true);
}
END_TEST

/* A thread exit's kick that comes while the purge thread is in a pass
 * signals no one: the thread waits on its condition only between passes.
 * The flag the kick raised must come down when the pass ends (the next
 * wait is then a purge delay), or every later kick finds it up and
 * signals nothing: pages that later exits leave wait out the backed-off
 * second instead of a delay.  Here: a kick in a paused pass, then, once
 * the thread has backed off again, a kick just after a pass; a pass must
 * follow it within 600 ms (a delay is 200 ms; the backed-off wait after
 * four passes without work 800 ms to a second). */
static void *alloc_one_and_exit(void *arg)
{
	(void)arg;
	hak_free(hak_malloc(100));
	return NULL;
}

START_TEST(test_purge_thread_kick_in_pass)
{
	hak_cfg.purge_delay_ms = 200;
	void *q = purge_thread_started();
	int t;
	for (t = 0; t < 10000 && !purge_thread_backed_off(); t += 10)
		usleep(10000);
	ck_assert_msg(purge_thread_backed_off(), "the purge thread did not back off in 10 s");
	/* the kick in a pass */
	atomic_store(&purge_pass_pause_ms, 100);
	for (t = 0; t < 3000 && !purge_thread_in_pass(); t++)
		usleep(1000);
	ck_assert_msg(purge_thread_in_pass(), "no pass of the purge thread in 3 s");
	uint64_t p = purge_thread_passes(); /* the paused one is not counted yet */
	run_thread(alloc_one_and_exit, NULL);
	atomic_store(&purge_pass_pause_ms, 0);
	ck_assert(wait_passes(p, 3000));
	/* four passes more: backed off again, then a kick right after one */
	p = purge_thread_passes();
	ck_assert(wait_passes(p + 3, 10000));
	p = purge_thread_passes();
	for (t = 0; t < 3000 && purge_thread_passes() == p; t++)
		usleep(1000);
	p = purge_thread_passes();
	run_thread(alloc_one_and_exit, NULL);
	for (t = 0; t < 600 && purge_thread_passes() == p; t++)
		usleep(1000);
	ck_assert_msg(purge_thread_passes() > p,
		      "no pass 600 ms after a thread exit kicked the backed-off purge thread (delay 200 ms), "
		      "after a kick that came during a pass");
	purge_thread_done(q);
}
END_TEST

/* A child of fork has no purge thread; its first slow-path allocation
 * starts one, which runs. */
START_TEST(test_purge_thread_fork)
{
	void *q = purge_thread_started();
	ck_assert(wait_passes(0, 5000));
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (atomic_load(&purge_thread_state) != PT_NONE)
			_exit(1);
		uint64_t passes = purge_thread_passes();
		void *p = hak_malloc(100000);
		if (p == NULL || atomic_load(&purge_thread_state) != PT_RUNNING)
			_exit(2);
		hak_free(p);
		_exit(wait_passes(passes, 5000) ? 0 : 3);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: status %#x", status);
	purge_thread_done(q);
}
END_TEST

/* ---- the idle reclaim (heap_reclaim_idle) ----
 *
 * A thread allocates blocks of every slab tier, another frees them all,
 * and the first sleeps, alive, without calling the allocator: within a
 * few purge passes its slabs and pages are empty and gone, but for those
 * that hold blocks of its rings (a few per class).  Without the idle
 * reclaim they all stay (tests/idle.sh measures the resident set). */
#define IDLE_TINY 6000  /* 256 B: 1.5 MiB, 24 slabs */
#define IDLE_MID 600    /* 8 KiB: 4.7 MiB, 38 pages */
#define IDLE_LARGE 24   /* 200 KiB: 4.7 MiB */
static void *idle_blocks[IDLE_TINY + IDLE_MID + IDLE_LARGE];
static struct heap *idle_heap;
static pthread_barrier_t idle_allocated;
static _Atomic int idle_done;

static void *idle_owner(void *arg)
{
	(void)arg;
	for (int i = 0; i < IDLE_TINY + IDLE_MID + IDLE_LARGE; i++) {
		size_t n = i < IDLE_TINY ? 256 : i < IDLE_TINY + IDLE_MID ? 8192 : 200000;
		idle_blocks[i] = hak_malloc(n);
		if (idle_blocks[i] == NULL)
			TFAIL("malloc failed");
		memset(idle_blocks[i], 0x5a, n);
	}
	idle_heap = tls_heap;
	pthread_barrier_wait(&idle_allocated);
	while (!atomic_load(&idle_done))
		usleep(5000); /* alive, no allocator call */
	return NULL;
}

/* Slabs of h with blocks out (tiny and large runs) and its mid pages,
 * read as the owner would: the owner sleeps, and the gate keeps the purge
 * thread out meanwhile. */
static uint64_t heap_slabs_held(struct heap *h)
{
	uint64_t n = 0;
	/* the owner's count of slow paths stays: the purge thread must go
	 * on seeing the owner idle */
	uint32_t seq = atomic_load(&h->gate_seq);
	heap_enter(h);
	for (int t = 0; t < TIER_COUNT; t++) {
		struct segment *lists[2] = { h->segs_avail[t], h->segs_full[t] };
		for (int l = 0; l < 2; l++)
			for (struct segment *seg = lists[l]; seg; seg = seg->next)
				for (segmask_t m = seg->used_mask; m;) {
					struct slab *x = &seg->slabs[mask_first(m)];
					m &= ~mask_run(x->index, x->nslots);
					n++;
				}
	}
	for (unsigned c = HAK_CLS_MID; c < HAK_CLS_LARGE; c++) {
		struct slab *lists[2] = { h->partial[c], h->full_head[c] };
		n += h->cur[c] != NULL;
		for (int l = 0; l < 2; l++)
			for (struct slab *x = lists[l]; x; x = x->next)
				n++;
	}
	for (struct slab *x = h->mid_empty; x; x = x->next)
		n++;
	heap_leave(h);
	atomic_store(&h->gate_seq, seq);
	return n;
}

/* The owner started, its blocks allocated; *before: its slabs and pages. */
static pthread_t idle_owner_start(uint64_t *before)
{
	pthread_t t;
	pthread_barrier_init(&idle_allocated, NULL, 2);
	atomic_store(&idle_done, 0);
	ck_assert_int_eq(pthread_create(&t, NULL, idle_owner, NULL), 0);
	pthread_barrier_wait(&idle_allocated);
	*before = heap_slabs_held(idle_heap);
	ck_assert_uint_gt(*before, 60);
	return t;
}

/* The owner told to end, and joined. */
static void idle_owner_stop(pthread_t t)
{
	atomic_store(&idle_done, 1);
	join_ok(t);
	pthread_barrier_destroy(&idle_allocated);
}

/* Until the clock (os_now_ms) reaches 'at'. */
static void sleep_until(uint64_t at)
{
	while (os_now_ms() < at)
		usleep(10000);
}

/* The owner's slabs and pages, read every 10 ms until they are 12 or
 * fewer or the clock (os_now_ms) reaches 'until'. */
static uint64_t idle_wait_held(uint64_t until)
{
	uint64_t n;
	while ((n = heap_slabs_held(idle_heap)) > 12 && os_now_ms() < until)
		usleep(10000);
	return n;
}

/* This thread frees every block of the owner. */
static void idle_free_all(void)
{
	for (int i = 0; i < IDLE_TINY + IDLE_MID + IDLE_LARGE; i++)
		hak_free(idle_blocks[i]);
	heap_remote_flush(tls_heap); /* this thread's last gathered chain */
}

START_TEST(test_idle_reclaim)
{
	hak_cfg.purge_delay_ms = 20;
	void *q = purge_thread_started();
	uint64_t before;
	pthread_t t = idle_owner_start(&before);
	idle_free_all();
	/* a pass that sees the owner idle since the previous one: a few
	 * passes (20 ms apart, a second when backed off); 10 s: a hang guard */
	uint64_t p0 = purge_thread_passes(), n = idle_wait_held(os_now_ms() + 10000);
	ck_assert_msg(n <= 12,
		      "the sleeping owner's heap holds %llu slabs and pages %llu purge passes after the frees "
		      "(%llu before)",
		      (unsigned long long)n, (unsigned long long)(purge_thread_passes() - p0),
		      (unsigned long long)before);
	idle_owner_stop(t);
	purge_thread_done(q);
}
END_TEST

/* The light passes (thread.c): with a purge delay of 4 s, the first pass
 * comes 4 s after the purge thread starts and cannot yet reclaim a heap
 * (it finds the owner's calls since the start), but the light passes, a
 * second apart, take back the mid pages and large runs that another
 * thread freed into: the third, 3 s after the start, finds the owner
 * idle since the second.  The second finds the owner idle too, but no
 * thread has freed into its heap yet: it is left alone. */
START_TEST(test_idle_reclaim_light)
{
	hak_cfg.purge_delay_ms = 4000;
	void *q = purge_thread_started();
	uint64_t t0 = os_now_ms(), r0 = purge_thread_idle_reclaims(), p0 = purge_thread_passes();
	uint64_t before;
	pthread_t t = idle_owner_start(&before);
	sleep_until(t0 + 2400);
	ck_assert_msg(purge_thread_idle_reclaims() == r0, "a heap no other thread freed into was reclaimed");
	idle_free_all();
	uint64_t n = idle_wait_held(t0 + 3900);
	ck_assert_msg(n <= 12, "the sleeping owner's heap holds %llu slabs and pages (%llu before) %.1f s after the start",
		      (unsigned long long)n, (unsigned long long)before, (double)(os_now_ms() - t0) / 1000);
	ck_assert_uint_eq(purge_thread_passes(), p0);
	idle_owner_stop(t);
	purge_thread_done(q);
}
END_TEST

/* A light pass takes a heap's marks with its blocks: a heap it drained is
 * not drained again at every look while its thread sleeps.  Purge delay
 * 4 s: the frees come before the first look (1 s, which notes the
 * owner's last call), the second drains the heap, the third finds no
 * mark; the first full pass (4 s) comes after. */
START_TEST(test_idle_reclaim_light_once)
{
	hak_cfg.purge_delay_ms = 4000;
	void *q = purge_thread_started();
	uint64_t t0 = os_now_ms(), r0 = purge_thread_idle_reclaims(), before;
	pthread_t t = idle_owner_start(&before);
	idle_free_all();
	sleep_until(t0 + 3800);
	uint64_t n = heap_slabs_held(idle_heap);
	ck_assert_msg(n <= 12, "the sleeping owner's heap holds %llu slabs and pages (%llu before)",
		      (unsigned long long)n, (unsigned long long)before);
	ck_assert_msg(purge_thread_idle_reclaims() == r0 + 1, "%llu idle reclaims in 3.8 s, not 1",
		      (unsigned long long)(purge_thread_idle_reclaims() - r0));
	idle_owner_stop(t);
	purge_thread_done(q);
}
END_TEST

/* Until the purge thread is reclaiming h (10 s: a hang guard). */
static void wait_reclaiming(struct heap *h)
{
	for (int ms = 0; ms < 10000 && atomic_load(&purge_idle_reclaiming) != h; ms++)
		usleep(1000);
	ck_assert_msg(atomic_load(&purge_idle_reclaiming) == h, "no idle reclaim of the heap in 10 s");
}

/* The gate itself: a slow path of the owner that starts while the purge
 * thread reclaims its heap waits until the reclaim is done.  The purge
 * thread pauses 300 ms in the reclaim (the tests' knob); this thread,
 * idle until then, calls malloc for a class its bin has none of (a
 * refill) as soon as it sees the reclaim begin: the call must not return
 * before the reclaim ends. */
START_TEST(test_idle_reclaim_waits)
{
	hak_cfg.purge_delay_ms = 20;
	void *q = purge_thread_started();
	struct heap *h = tls_heap;
	atomic_store(&purge_idle_pause_ms, 300);
	wait_reclaiming(h);
	void *p = hak_malloc(600000); /* a large class not used yet: a refill */
	bool during = atomic_load(&purge_idle_reclaiming) == h;
	atomic_store(&purge_idle_pause_ms, 0);
	ck_assert_ptr_nonnull(p);
	ck_assert_msg(!during, "a refill returned while the purge thread reclaimed the heap");
	hak_free(p);
	purge_thread_done(q);
}
END_TEST

/* fork() while the purge thread reclaims another thread's heap: in the
 * child that heap (its lists may be half done) is no longer live, so the
 * child's own purge thread never reclaims it.  The purge thread pauses in
 * the reclaim (the tests' knob) while main forks. */
static struct heap *_Atomic fr_heap;
static _Atomic int fr_done;

static void *fr_sleeper(void *arg)
{
	(void)arg;
	void *p = hak_malloc(200);
	atomic_store(&fr_heap, tls_heap);
	while (!atomic_load(&fr_done))
		usleep(1000);
	hak_free(p);
	return NULL;
}

START_TEST(test_idle_reclaim_fork)
{
	hak_cfg.purge_delay_ms = 20;
	void *q = purge_thread_started();
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, fr_sleeper, NULL), 0);
	while (atomic_load(&fr_heap) == NULL)
		usleep(1000);
	struct heap *h = atomic_load(&fr_heap);
	atomic_store(&purge_idle_pause_ms, 1000);
	wait_reclaiming(h);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		signal(SIGALRM, SIG_DFL);
		alarm(5);
		int rc = 0;
		if (h->live || atomic_load(&h->gate_reclaim))
			rc = 1; /* the child's purge thread would reclaim it */
		else if (atomic_load(&purge_idle_reclaiming) != NULL)
			rc = 2;
		void *p = hak_malloc(100000); /* the child's allocator works */
		if (p == NULL)
			rc = 3;
		hak_free(p);
		_exit(rc);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	atomic_store(&purge_idle_pause_ms, 0);
	atomic_store(&fr_done, 1);
	join_ok(t);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the child found the heap being reclaimed %s (status %#x)",
		      WIFEXITED(status) && WEXITSTATUS(status) == 1 ? "still live" : "mishandled", status);
	purge_thread_done(q);
}
END_TEST

/* The gate under load: an owner that wakes up, allocates and frees in
 * every tier, and sleeps about a purge delay, again and again, while
 * another thread frees half its blocks and the purge thread reclaims its
 * heap whenever a pass finds it idle (purge delay 2 ms: a pass every
 * 10 ms).  Every block is filled with a pattern of its own and checked
 * before it is freed: a block handed out twice, or a list the purge
 * thread and the owner both changed, shows as a wrong byte (or, in a
 * debug build, a failed validation; under ThreadSanitizer, a race). */
#define GATE_ROUNDS 100
#define GATE_BATCH 96
static void *_Atomic gate_q[GATE_BATCH];
static _Atomic int gate_stop;

static size_t gate_size(unsigned k)
{
	static const size_t sizes[] = { 24, 200, 900, 3000, 12000, 40000, 150000 };
	return sizes[k % 7];
}

static void gate_fill(void *p, size_t n, unsigned k)
{
	memset(p, (int)(k & 0xff) | 1, n);
}

static bool gate_ok(const void *p, size_t n, unsigned k)
{
	const unsigned char *b = p;
	unsigned char v = (unsigned char)((k & 0xff) | 1);
	return b[0] == v && b[n / 2] == v && b[n - 1] == v;
}

static void *gate_freer(void *arg)
{
	(void)arg;
	while (!atomic_load(&gate_stop)) {
		for (unsigned k = 0; k < GATE_BATCH; k++) {
			void *p = atomic_exchange(&gate_q[k], NULL);
			if (p == NULL)
				continue;
			if (!gate_ok(p, gate_size(k), k))
				TFAIL("a block changed before its remote free");
			hak_free(p);
		}
		usleep(1000);
	}
	return NULL;
}

START_TEST(test_idle_reclaim_gate)
{
	hak_cfg.purge_delay_ms = 2;
	void *q = purge_thread_started();
	atomic_store(&gate_stop, 0);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, gate_freer, NULL), 0);
	void *mine[GATE_BATCH] = { 0 };
	uint64_t r0 = purge_thread_idle_reclaims(), p0 = purge_thread_passes();
	for (unsigned r = 0; r < GATE_ROUNDS; r++) {
		for (unsigned k = 0; k < GATE_BATCH; k++) {
			if (mine[k]) {
				ck_assert_msg(gate_ok(mine[k], gate_size(k), k), "a block changed while it was live");
				hak_free(mine[k]);
			}
			mine[k] = hak_malloc(gate_size(k));
			ck_assert_ptr_nonnull(mine[k]);
			gate_fill(mine[k], gate_size(k), k);
			if ((k + r) % 2 == 0 && atomic_load(&gate_q[k]) == NULL) {
				/* to the other thread: freed there */
				atomic_store(&gate_q[k], mine[k]);
				mine[k] = NULL;
			}
		}
		if (r % 5 == 0) {
			/* idle until a pass reclaims a heap (this one, or the
			 * other thread's while it waits for blocks) */
			uint64_t seen = purge_thread_idle_reclaims();
			for (int ms = 0; ms < 3000 && purge_thread_idle_reclaims() == seen; ms++)
				usleep(1000);
		} else {
			usleep(1000 + 500 * (r % 4)); /* a pass may come, or not */
		}
	}
	atomic_store(&gate_stop, 1);
	join_ok(t);
	for (unsigned k = 0; k < GATE_BATCH; k++) {
		if (mine[k]) {
			ck_assert(gate_ok(mine[k], gate_size(k), k));
			hak_free(mine[k]);
		}
		void *p = atomic_exchange(&gate_q[k], NULL);
		if (p)
			hak_free(p);
	}
	/* the heaps of both threads, between their bursts */
	ck_assert_msg(purge_thread_idle_reclaims() >= r0 + GATE_ROUNDS / 10, "%llu idle reclaims in %llu purge passes",
		      (unsigned long long)(purge_thread_idle_reclaims() - r0),
		      (unsigned long long)(purge_thread_passes() - p0));
	purge_thread_done(q);
}
END_TEST

static Suite *thread_suite(void)
{
	Suite *s = suite_create("thread");
	TCase *tc = tcase_create("heaps");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_heap_reuse);
	tcase_add_test(tc, test_heap_pool_waves);
	tcase_add_test(tc, test_no_alloc_no_heap);
	tcase_add_test(tc, test_alloc_in_late_destructor);
	suite_add_tcase(s, tc);

	tc = tcase_create("fork");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fork_in_thread);
	suite_add_tcase(s, tc);

	tc = tcase_create("purge thread");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_purge_thread_lazy);
	tcase_add_test(tc, test_purge_thread_off);
	tcase_add_test(tc, test_purge_thread_exited);
	tcase_add_test(tc, test_purge_thread_exited_adopted);
	tcase_add_test(tc, test_purge_thread_fork);
	tcase_add_test(tc, test_purge_thread_kick_in_pass);
	tcase_add_test(tc, test_idle_reclaim);
	tcase_add_test(tc, test_idle_reclaim_light);
	tcase_add_test(tc, test_idle_reclaim_light_once);
	tcase_add_test(tc, test_idle_reclaim_waits);
	tcase_add_test(tc, test_idle_reclaim_fork);
	tcase_add_test(tc, test_idle_reclaim_gate);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(thread_suite());
	/* every test in a process of its own: the tests change hakmem's
	 * global state (hak_cfg, caches, heaps) */
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
