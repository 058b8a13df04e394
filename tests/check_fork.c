/* check_fork.c - fork() while other threads allocate.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * Background threads run a malloc/free loop over every tier and hand blocks
 * to each other through shared slots.  Meanwhile a thread forks several
 * times.  Each child (which has only the forking thread) checks and frees
 * the blocks it inherited, allocates and frees blocks of every size, starts
 * a thread that does the same, and exits 0.  A child that hangs (an
 * allocator lock held across fork) is killed after a deadline and reported.
 *
 * Environment: FORKS=n forks per test (default 24).
 */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/wait.h>

#include "testutil.h"

/* ThreadSanitizer cannot follow a thread started in the child of a
 * multi-threaded fork (it dies or confuses thread ids): under it the
 * children skip that step. */
#if defined(__SANITIZE_THREAD__)
#  define UNDER_TSAN 1
#elif defined(__has_feature)
#  if __has_feature(thread_sanitizer)
#    define UNDER_TSAN 1
#  endif
#endif

#define NBG 3           /* background threads */
#define NSLOTS 256
#define BUSY ((uintptr_t)1)
#define CHILD_DEADLINE 30.0

struct slot {
	_Atomic uintptr_t ptr;
	size_t size;
	uint64_t key;
};

static struct slot slots[NSLOTS];
static atomic_bool stop_bg;
static atomic_int bg_errors;
static atomic_ulong bg_ops;

static size_t any_size(uint64_t *rng)
{
	uint64_t r = tu_rand(rng) % 1000;

	if (r < 600)
		return tu_range(rng, 1, 1024);
	if (r < 900)
		return tu_range(rng, 1025, 32768);
	if (r < 995)
		return tu_range(rng, 32769, 1 << 20);
	return tu_range(rng, (1 << 20) + 1, 4 << 20);
}

/* One step on a random slot: check and free what is there, put a new block.
 * Returns false when a block was corrupt or an allocation failed. */
static bool slot_step(uint64_t *rng)
{
	struct slot *s = &slots[tu_rand(rng) % NSLOTS];
	uintptr_t old = atomic_exchange_explicit(&s->ptr, BUSY, memory_order_acquire);
	bool ok = true;
	size_t n;
	void *q;

	if (old == BUSY)
		return true;
	if (old != 0) {
		if (pat_check((void *)old, s->size, s->key) != PAT_OK)
			ok = false;
		t_free((void *)old);
	}
	n = any_size(rng);
	q = (tu_rand(rng) & 1) ? t_malloc(n) : t_calloc(1, n);
	if (q == NULL) {
		atomic_store_explicit(&s->ptr, 0, memory_order_release);
		return false;
	}
	s->size = n;
	s->key = tu_mix64((uintptr_t)q ^ n);
	pat_fill(q, n, s->key);
	atomic_store_explicit(&s->ptr, (uintptr_t)q, memory_order_release);
	return ok;
}

static void *bg_thread(void *arg)
{
	uint64_t rng = 12345 + (uintptr_t)arg;
	void *own[32] = { 0 };

	while (!atomic_load_explicit(&stop_bg, memory_order_relaxed)) {
		/* Private churn (the thread's own caches) ... */
		for (int i = 0; i < 32; i++) {
			size_t k = tu_rand(&rng) % 32;
			size_t n = tu_range(&rng, 1, (k & 7) == 0 ? 200000 : 3000);
			t_free(own[k]);
			own[k] = t_malloc(n);
			if (own[k] == NULL)
				atomic_fetch_add(&bg_errors, 1);
			else
				memset(own[k], (int)k, n < 16 ? n : 16);
		}
		/* ... and blocks that move between threads. */
		if (!slot_step(&rng))
			atomic_fetch_add(&bg_errors, 1);
		atomic_fetch_add_explicit(&bg_ops, 1, memory_order_relaxed);
	}
	for (int i = 0; i < 32; i++)
		t_free(own[i]);
	return NULL;
}

/* ---- what a child does ---------------------------------------------------- */

static void *child_thread(void *arg)
{
	uint64_t rng = 777 + (uintptr_t)arg;
	void *blk[64] = { 0 };

	for (int i = 0; i < 4000; i++) {
		size_t k = tu_rand(&rng) % 64;
		size_t n = any_size(&rng);

		t_free(blk[k]);
		blk[k] = t_malloc(n);
		if (blk[k] == NULL)
			return (void *)1;
		memset(blk[k], 0x5a, n < 4096 ? n : 4096);
	}
	for (int k = 0; k < 64; k++)
		t_free(blk[k]);
	return NULL;
}

/* Runs in the child; returns its exit status (0: all well). */
static int child_work(int iteration)
{
	uint64_t rng = 99 + (uint64_t)iteration;
	pthread_t t;
	void *res = (void *)1;

	alarm((unsigned)CHILD_DEADLINE + 5);
	/* The inherited blocks are intact, and can be freed here although the
	 * threads that own them do not exist in this process. */
	for (int i = 0; i < NSLOTS; i++) {
		uintptr_t p = atomic_load(&slots[i].ptr);

		if (p == 0 || p == BUSY)
			continue;
		if (pat_check((void *)p, slots[i].size, slots[i].key) != PAT_OK)
			return 2;
		if (i % 2 == 0) {
			t_free((void *)p);
			atomic_store(&slots[i].ptr, 0);
		}
	}
	/* Every tier, in this thread. */
	for (int i = 0; i < 3000; i++) {
		size_t n = any_size(&rng);
		void *p = t_malloc(n);

		if (p == NULL)
			return 3;
		pat_fill(p, n < 8192 ? n : 8192, n);
		void *q = t_realloc(p, n + 5000);
		if (q == NULL || pat_check(q, n < 8192 ? n : 8192, n) != PAT_OK)
			return 4;
		t_free(q);
	}
	for (int i = 0; i < 500; i++)
		if (!slot_step(&rng))
			return 5;
	/* A thread in the child. */
#ifndef UNDER_TSAN
	if (pthread_create(&t, NULL, child_thread, (void *)(uintptr_t)iteration) != 0)
		return 6;
	if (pthread_join(t, &res) != 0 || res != NULL)
		return 7;
#else
	(void)t;
	res = child_thread((void *)(uintptr_t)iteration);
	if (res != NULL)
		return 7;
#endif
	/* A grandchild, now and then. */
	if (iteration % 8 == 0) {
		pid_t g = fork();
		if (g < 0)
			return 8;
		if (g == 0)
			_exit(child_thread(NULL) == NULL ? 0 : 1);
		int st;
		if (waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return 9;
	}
	return 0;
}

/* Waits for child pid up to the deadline; kills it if it hangs. */
static void reap_child(pid_t pid, int iteration)
{
	double end = tu_now() + CHILD_DEADLINE;
	int st = 0;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		ck_assert_msg(r == 0, "waitpid failed: %s", strerror(errno));
		if (tu_now() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			ck_abort_msg("child of fork %d hung for %.0f s (deadlock after fork?)",
				     iteration, CHILD_DEADLINE);
		}
		usleep(1000);
	}
	ck_assert_msg(!WIFSIGNALED(st), "child of fork %d died of signal %d",
		      iteration, WTERMSIG(st));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "child of fork %d exited with status %d", iteration, WEXITSTATUS(st));
}

static void fork_rounds(int forks)
{
	uint64_t rng = 4242;

	for (int i = 0; i < forks; i++) {
		/* Let the threads get going, then fork in the middle of it. */
		usleep((useconds_t)tu_range(&rng, 500, 5000));
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			/* No Check calls in the child: another thread of the
			 * parent may have held Check's own lock at the fork. */
			int rc = child_work(i);
			if (rc == 0 && i % 2 == 0)
				exit(0);        /* atexit handlers, stdio, ... */
			_exit(rc);
		}
		ck_assert_msg(pid > 0, "fork failed: %s", strerror(errno));
		/* The parent goes on allocating while the child runs. */
		for (int k = 0; k < 200; k++)
			ck_assert_msg(slot_step(&rng), "parent: a block was corrupted");
		reap_child(pid, i);
	}
}

static pthread_t bg[NBG];

static void start_bg(void)
{
	atomic_store(&stop_bg, false);
	atomic_store(&bg_errors, 0);
	for (uintptr_t i = 0; i < NBG; i++)
		ck_assert_int_eq(pthread_create(&bg[i], NULL, bg_thread, (void *)i), 0);
	/* Wait until every thread has really started allocating. */
	while (atomic_load(&bg_ops) < 100)
		usleep(1000);
}

static void stop_and_check_bg(void)
{
	atomic_store(&stop_bg, true);
	for (int i = 0; i < NBG; i++)
		ck_assert_int_eq(pthread_join(bg[i], NULL), 0);
	ck_assert_msg(atomic_load(&bg_errors) == 0, "%d errors in the background threads",
		      atomic_load(&bg_errors));
	for (int i = 0; i < NSLOTS; i++) {
		uintptr_t p = atomic_load(&slots[i].ptr);

		if (p != 0 && p != BUSY) {
			ck_assert_msg(pat_check((void *)p, slots[i].size, slots[i].key) == PAT_OK,
				      "slot %d corrupted", i);
			t_free((void *)p);
		}
		atomic_store(&slots[i].ptr, 0);
	}
}

START_TEST(fork_from_main)
{
	start_bg();
	fork_rounds((int)tu_env_long("FORKS", 24));
	stop_and_check_bg();
}
END_TEST

static void *forker_thread(void *arg)
{
	(void)arg;
	fork_rounds((int)tu_env_long("FORKS", 24) / 2);
	return NULL;
}

/* Forking from a thread other than the main one, while main allocates too. */
START_TEST(fork_from_thread)
{
	pthread_t t;
	uint64_t rng = 31337;
	void *res;

	start_bg();
	ck_assert_int_eq(pthread_create(&t, NULL, forker_thread, NULL), 0);
	/* Check's assertions in forker_thread end this process on failure. */
	while (pthread_tryjoin_np(t, &res) != 0)
		ck_assert(slot_step(&rng));
	stop_and_check_bg();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fork (" T_FAMILY ")");
	TCase *tc = tcase_create("fork");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, fork_from_main);
	tcase_add_test(tc, fork_from_thread);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
