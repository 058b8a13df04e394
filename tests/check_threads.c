/* check_threads.c - thread create/exit churn, TLS destructors, atexit.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * Thousands of short-lived threads (in waves of 8) each allocate blocks of
 * every tier, free most of them, hand some to the main thread (which frees
 * them after the wave), and allocate again in a pthread_key destructor.
 * When a thread exits its caches must be flushed and its segments reused:
 * the process must not grow with the number of threads.
 *
 * The bound: each thread touches about 0.6 MiB (64 tiny blocks, 16 mid of
 * ~16 KiB, 2 large of 64-256 KiB; its 2 MiB huge block is mapped and
 * unmapped apart).  Were an exiting thread's cached blocks or segments
 * lost, the resident size would grow by that much per thread: 3000 threads
 * x 0.6 MiB = 1.8 GiB (and hakmem's os_mapped by a 2 MiB segment per
 * thread, 6 GiB).  We allow 64 MiB of RSS growth (and 256 MiB of mapped
 * growth) between a warm-up of 32 threads and the end: room for caches and
 * fragmentation, a small fraction of any per-thread leak.
 *
 * Environment: NTHREADS=n total threads (default 3000).
 */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/wait.h>

#include "testutil.h"

#define WAVE 8
#define N_TINY 64
#define N_MID 16
#define N_LARGE 2
#define N_BLOCKS (N_TINY + N_MID + N_LARGE + 1)

/* In the measured loop: a passing ck_assert allocates (it reports to the
 * Check runner), which a sanitizer's quarantine would count as growth. */
#define REQUIRE(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

struct handed {
	void *p;
	size_t size;
	uint64_t key;
};

/* Blocks handed to the main thread; filled by the threads of one wave. */
static pthread_mutex_t hand_lock = PTHREAD_MUTEX_INITIALIZER;
static struct handed handed[WAVE * (N_BLOCKS + 8)];
static size_t n_handed;
static atomic_int thread_errors;

static pthread_key_t churn_key;

static void hand_to_main(void *p, size_t size, uint64_t key)
{
	pthread_mutex_lock(&hand_lock);
	if (n_handed < sizeof(handed) / sizeof(handed[0]))
		handed[n_handed++] = (struct handed){ p, size, key };
	else
		t_free(p);
	pthread_mutex_unlock(&hand_lock);
}

/* Allocates, checks and frees a block of each tier; true when all went well. */
static bool alloc_every_tier(uint64_t seed)
{
	static const size_t sizes[] = { 24, 1000, 5000, 30000, 100000, 3 << 20 };
	void *p[sizeof(sizes) / sizeof(sizes[0])];
	bool ok = true;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		p[i] = t_malloc(sizes[i]);
		if (p[i] == NULL)
			return false;
		pat_fill(p[i], sizes[i], seed + i);
	}
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (pat_check(p[i], sizes[i], seed + i) != PAT_OK)
			ok = false;
		t_free(p[i]);
	}
	return ok;
}

/* The key destructor runs after the thread function returned: it
 * allocates and frees, hands a block to main, and asks for one more round
 * (setting the value again) so that it also runs a second time. */
static void churn_destructor(void *value)
{
	uintptr_t round = (uintptr_t)value;

	if (!alloc_every_tier(round * 31))
		atomic_fetch_add(&thread_errors, 1);
	void *p = t_malloc(200);
	if (p == NULL) {
		atomic_fetch_add(&thread_errors, 1);
		return;
	}
	pat_fill(p, 200, (uintptr_t)p);
	hand_to_main(p, 200, (uintptr_t)p);
	if (round == 1)
		pthread_setspecific(churn_key, (void *)(uintptr_t)2);
}

static void *churn_thread(void *arg)
{
	uint64_t rng = 1 + (uintptr_t)arg * 7919;
	void *blk[N_BLOCKS];
	size_t size[N_BLOCKS];

	pthread_setspecific(churn_key, (void *)(uintptr_t)1);
	for (int i = 0; i < N_BLOCKS; i++) {
		if (i < N_TINY)
			size[i] = tu_range(&rng, 16, 1024);
		else if (i < N_TINY + N_MID)
			size[i] = tu_range(&rng, 1025, 32768);
		else if (i < N_TINY + N_MID + N_LARGE)
			size[i] = tu_range(&rng, 65536, 262144);
		else
			size[i] = 2 << 20;
		blk[i] = t_malloc(size[i]);
		if (blk[i] == NULL) {
			atomic_fetch_add(&thread_errors, 1);
			return NULL;
		}
		if (size[i] <= (1 << 20))
			pat_fill(blk[i], size[i], (uintptr_t)blk[i]);
		else
			memset(blk[i], 1, 4096);        /* the huge one: one page */
	}
	/* Free three quarters here (in a scrambled order), hand the rest over. */
	for (int i = 0; i < N_BLOCKS; i++) {
		int j = (i * 37) % N_BLOCKS;

		if (size[j] <= (1 << 20) && pat_check(blk[j], size[j], (uintptr_t)blk[j]) != PAT_OK)
			atomic_fetch_add(&thread_errors, 1);
		if (j % 4 == 1 && size[j] <= (1 << 20))
			hand_to_main(blk[j], size[j], (uintptr_t)blk[j]);
		else
			t_free(blk[j]);
	}
	return NULL;
}

static void free_handed(void)
{
	pthread_mutex_lock(&hand_lock);
	for (size_t i = 0; i < n_handed; i++) {
		REQUIRE(pat_check(handed[i].p, handed[i].size, handed[i].key) == PAT_OK,
			"a block handed to main was corrupted");
		t_free(handed[i].p);
	}
	n_handed = 0;
	pthread_mutex_unlock(&hand_lock);
}

static void run_wave(long first)
{
	pthread_t t[WAVE];

	for (long i = 0; i < WAVE; i++)
		REQUIRE(pthread_create(&t[i], NULL, churn_thread, (void *)(first + i)) == 0,
			"pthread_create failed");
	for (long i = 0; i < WAVE; i++)
		REQUIRE(pthread_join(t[i], NULL) == 0, "pthread_join failed");
	free_handed();
}

START_TEST(thread_churn_bounded)
{
	long nthreads = tu_env_long("NTHREADS", 3000);
	long warm = 4 * WAVE;
	size_t rss_warm, rss_end;
	double t0 = tu_now();

	ck_assert_int_eq(pthread_key_create(&churn_key, churn_destructor), 0);
	for (long i = 0; i < warm; i += WAVE)
		run_wave(i);
	rss_warm = tu_rss();
	ck_assert_uint_gt(rss_warm, 0);
#ifdef TEST_HAKMEM
	struct hak_stats st_warm, st_end;
	ck_assert_int_eq(hak_stats_get(&st_warm), 0);
#endif
	for (long i = warm; i < nthreads; i += WAVE)
		run_wave(i);
	rss_end = tu_rss();
	printf("threads: %ld threads in %.1f s, RSS after warm-up %zu KiB, at the end %zu KiB\n",
	       nthreads, tu_now() - t0, rss_warm >> 10, rss_end >> 10);
	ck_assert_msg(atomic_load(&thread_errors) == 0, "%d errors in threads",
		      atomic_load(&thread_errors));
	ck_assert_msg(rss_end < rss_warm + 64 * MiB,
		      "RSS grew from %zu MiB to %zu MiB over %ld threads: exiting threads leak",
		      rss_warm >> 20, rss_end >> 20, nthreads - warm);
#ifdef TEST_HAKMEM
	ck_assert_int_eq(hak_stats_get(&st_end), 0);
	printf("threads: os_mapped %llu -> %llu KiB, threads_started +%llu, threads_exited +%llu\n",
	       (unsigned long long)st_warm.os_mapped >> 10, (unsigned long long)st_end.os_mapped >> 10,
	       (unsigned long long)(st_end.threads_started - st_warm.threads_started),
	       (unsigned long long)(st_end.threads_exited - st_warm.threads_exited));
	ck_assert_msg(st_end.os_mapped < st_warm.os_mapped + 256 * MiB,
		      "os_mapped grew from %llu MiB to %llu MiB over %ld threads",
		      (unsigned long long)st_warm.os_mapped >> 20,
		      (unsigned long long)st_end.os_mapped >> 20, nthreads - warm);
	ck_assert_uint_ge(st_end.threads_started - st_warm.threads_started, (uint64_t)(nthreads - warm));
	ck_assert_uint_ge(st_end.threads_exited - st_warm.threads_exited, (uint64_t)(nthreads - warm));
#endif
	pthread_key_delete(churn_key);
}
END_TEST

/* ---- TLS destructor ------------------------------------------------------ */

static pthread_key_t dtor_key;
static void *dtor_block;
static atomic_int dtor_runs;

static void tls_destructor(void *value)
{
	uintptr_t round = (uintptr_t)value;

	atomic_fetch_add(&dtor_runs, 1);
	if (!alloc_every_tier(round))
		atomic_fetch_add(&thread_errors, 1);
	if (round == 1) {
		/* A block allocated here outlives the thread. */
		dtor_block = t_malloc(40000);
		if (dtor_block != NULL)
			pat_fill(dtor_block, 40000, 4242);
	}
	if (round < 3)
		pthread_setspecific(dtor_key, (void *)(round + 1));
}

static void *tls_thread(void *arg)
{
	(void)arg;
	/* This thread's first allocation happens in the destructor. */
	pthread_setspecific(dtor_key, (void *)(uintptr_t)1);
	return NULL;
}

static void *tls_thread_alloc_first(void *arg)
{
	void *p = t_malloc(100);

	(void)arg;
	t_free(p);
	pthread_setspecific(dtor_key, (void *)(uintptr_t)1);
	return NULL;
}

START_TEST(tls_destructor_allocates)
{
	pthread_t t;

	ck_assert_int_eq(pthread_key_create(&dtor_key, tls_destructor), 0);
	for (int k = 0; k < 2; k++) {
		atomic_store(&dtor_runs, 0);
		dtor_block = NULL;
		ck_assert_int_eq(pthread_create(&t, NULL, k ? tls_thread_alloc_first : tls_thread, NULL), 0);
		ck_assert_int_eq(pthread_join(t, NULL), 0);
		ck_assert_int_eq(atomic_load(&dtor_runs), 3);
		ck_assert_int_eq(atomic_load(&thread_errors), 0);
		ck_assert_ptr_nonnull(dtor_block);
		ck_assert(pat_check(dtor_block, 40000, 4242) == PAT_OK);
		/* After the thread is gone, its block is freed by main. */
		t_free(dtor_block);
	}
	ck_assert(alloc_every_tier(5));
	pthread_key_delete(dtor_key);
}
END_TEST

/* ---- atexit -------------------------------------------------------------- */

static int atexit_fd = -1;

static void atexit_handler(void)
{
	const char *msg = alloc_every_tier(9) ? "ok\n" : "bad\n";
	char *s = strdup(msg);          /* the C library allocating, too */

	if (s == NULL || write(atexit_fd, s, strlen(s)) < 0)
		_exit(3);
	free(s);
}

static void *short_thread(void *arg)
{
	(void)arg;
	return alloc_every_tier(3) ? NULL : (void *)1;
}

START_TEST(atexit_allocates)
{
	int fds[2];
	char buf[16] = { 0 };
	int st;

	ck_assert_int_eq(pipe(fds), 0);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		pthread_t t;

		close(fds[0]);
		atexit_fd = fds[1];
		alarm(30);
		if (atexit(atexit_handler) != 0)
			_exit(4);
		/* A thread came and went before exit. */
		if (pthread_create(&t, NULL, short_thread, NULL) != 0 || pthread_join(t, NULL) != 0)
			_exit(5);
		void *keep = t_malloc(5000);    /* still allocated at exit */
		(void)keep;
		exit(0);
	}
	close(fds[1]);
	ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	ck_assert_msg(n == 3 && strcmp(buf, "ok\n") == 0, "the atexit handler said '%s'", buf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("threads (" T_FAMILY ")");
	TCase *tc = tcase_create("threads");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, thread_churn_bounded);
	tcase_add_test(tc, tls_destructor_allocates);
	tcase_add_test(tc, atexit_allocates);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
