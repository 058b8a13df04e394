/* check_atfork.c - fork() beside stdio locks, and fork() from a signal
 * handler that interrupted an allocation.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * stdio: the recipe of glibc's tst-malloc-fork-deadlock, in our own code.
 * FORKERS threads fork again and again (each child allocates blocks of
 * every tier and exits); READERS threads read lines through fmemopen and
 * getline, whose buffer grows through every tier (lines up to 3 MiB) while
 * the stream's lock is held; one thread calls fflush(NULL), which takes
 * glibc's list of streams and then each stream's lock.  An allocator that
 * holds its own locks from the pthread_atfork prepare handler until fork
 * returns deadlocks here: fork waits for the list lock held by fflush,
 * fflush for a stream's lock held by getline, getline in malloc for the
 * allocator's lock held by the forking thread.  Every thread checks a
 * shared deadline: a hang is reported after DEADLINE seconds (the test
 * runs for RUN seconds).
 *
 * signal: a thread allocates and frees huge blocks (whose cache is behind
 * a lock) and blocks of every tier, and a signal handler interrupts it and
 * forks.  The parent just goes on.  The child returns from the handler
 * into the interrupted call, finishes it, then allocates and frees blocks
 * of every tier and exits 0.  A prepare handler that waits for a lock the
 * interrupted call holds deadlocks the forking thread; a child whose
 * allocator state was reset under the interrupted call crashes or hangs.
 *
 * Environment: RUN=s seconds per test (default 3).
 */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/wait.h>

#include "testutil.h"

#define FORKERS 4
#define READERS 8
#define DEADLINE 60.0

static atomic_bool stop;
static atomic_ulong forks, lines, flushes;
static atomic_int errors;
static char err_msg[256];
static double t_end;

static void note_error(const char *msg)
{
	if (atomic_fetch_add(&errors, 1) == 0)
		snprintf(err_msg, sizeof(err_msg), "%s", msg);
	atomic_store(&stop, true);
}

/* Blocks of every tier, written and freed: what a child does. */
static int child_work(uint64_t seed)
{
	static const size_t sizes[] = { 1, 16, 100, 472, 1024, 1500, 8000, 32768,
					40000, 300000, 1 << 20, (1 << 20) + 1, 3 << 20 };
	uint64_t rng = seed;
	for (int r = 0; r < 4; r++) {
		void *p[sizeof(sizes) / sizeof(sizes[0])];
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t n = sizes[i] + tu_range(&rng, 0, 64);
			p[i] = t_malloc(n);
			if (p[i] == NULL)
				return 1;
			pat_fill(p[i], n, seed + i);
			if (pat_check(p[i], n, seed + i) != PAT_OK)
				return 2;
		}
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			t_free(p[i]);
	}
	return 0;
}

/* Wait for pid until the deadline; kill it if it hangs. */
static void reap(pid_t pid, const char *what)
{
	double limit = tu_now() + DEADLINE;
	int st = 0;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		if (r < 0) {
			note_error("waitpid failed");
			return;
		}
		if (tu_now() > limit) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			note_error(what);
			return;
		}
		usleep(1000);
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char m[128];
		snprintf(m, sizeof(m), "a child exited with status %#x (signal %d)", st,
			 WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		note_error(m);
	}
}

/* ---- stdio ---------------------------------------------------------------- */

static void *forker(void *arg)
{
	uint64_t seed = (uintptr_t)arg;

	while (!atomic_load(&stop) && tu_now() < t_end) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(child_work(seed));
		if (pid < 0) {
			note_error("fork failed");
			break;
		}
		reap(pid, "a child of the stdio test hung (killed after the deadline)");
		atomic_fetch_add(&forks, 1);
		seed++;
	}
	return NULL;
}

static char text[16 << 20];
static size_t text_len;

static void *reader(void *arg)
{
	uint64_t rng = (uintptr_t)arg;

	while (!atomic_load(&stop) && tu_now() < t_end) {
		/* a stretch of the text: the lines it holds are short, long,
		 * and up to 3 MiB (see main) */
		size_t off = tu_range(&rng, 0, text_len / 2);
		FILE *f = fmemopen(text + off, text_len - off, "r");
		if (f == NULL) {
			note_error("fmemopen failed");
			break;
		}
		char *line = NULL;
		size_t cap = 0;
		for (int k = 0; k < 40 && getline(&line, &cap, f) > 0; k++)
			atomic_fetch_add(&lines, 1);
		free(line);
		fclose(f);
	}
	return NULL;
}

static void *flusher(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop) && tu_now() < t_end) {
		fflush(NULL);
		atomic_fetch_add(&flushes, 1);
	}
	return NULL;
}

/* The main thread watches: a thread that has not come back by the
 * deadline is a deadlock; the process is then killed by Check's timeout,
 * but first the test says which. */
static void join_all(pthread_t *t, int n)
{
	double limit = t_end + DEADLINE;
	for (int i = 0; i < n; i++) {
		while (pthread_tryjoin_np(t[i], NULL) != 0) {
			if (tu_now() > limit)
				ck_abort_msg("deadlock: %d of %d threads still running %.0f s after the end "
					     "(forks %lu, lines %lu, fflush %lu)",
					     n - i, n, DEADLINE, atomic_load(&forks),
					     atomic_load(&lines), atomic_load(&flushes));
			usleep(10000);
		}
	}
}

START_TEST(fork_beside_stdio)
{
	pthread_t t[FORKERS + READERS + 1];
	int n = 0;
	uint64_t rng = 7;

	/* lines of 1 to 200 bytes, with one of 2-3 MiB every ~64 lines and
	 * one of 20-300 KiB every ~8 */
	while (text_len < sizeof(text) - (4 << 20)) {
		size_t len = tu_range(&rng, 1, 200);
		uint64_t r = tu_rand(&rng) % 64;
		if (r == 0)
			len = tu_range(&rng, 2 << 20, 3 << 20);
		else if (r < 8)
			len = tu_range(&rng, 20000, 300000);
		memset(text + text_len, 'a' + (int)(r % 26), len);
		text_len += len;
		text[text_len++] = '\n';
	}
	t_end = tu_now() + (double)tu_env_long("RUN", 3);
	for (int i = 0; i < FORKERS; i++)
		ck_assert_int_eq(pthread_create(&t[n++], NULL, forker, (void *)(uintptr_t)(1000 * i)), 0);
	for (int i = 0; i < READERS; i++)
		ck_assert_int_eq(pthread_create(&t[n++], NULL, reader, (void *)(uintptr_t)(i + 1)), 0);
	ck_assert_int_eq(pthread_create(&t[n++], NULL, flusher, NULL), 0);
	join_all(t, n);
	printf("stdio: %lu forks, %lu lines read, %lu fflush(NULL)\n", atomic_load(&forks),
	       atomic_load(&lines), atomic_load(&flushes));
	ck_assert_msg(atomic_load(&errors) == 0, "%s", err_msg);
	ck_assert_uint_gt(atomic_load(&forks), 0);
	ck_assert_uint_gt(atomic_load(&lines), 0);
}
END_TEST

/* ---- fork from a signal handler ------------------------------------------- */

static volatile sig_atomic_t in_child;
static pid_t pids[4096];
static atomic_int npids;

static void on_signal(int sig)
{
	(void)sig;
	int saved = errno;
	pid_t pid = fork();
	if (pid == 0) {
		in_child = 1; /* back in the interrupted loop, the child exits */
	} else if (pid > 0) {
		int k = atomic_fetch_add(&npids, 1);
		if (k < (int)(sizeof(pids) / sizeof(pids[0])))
			pids[k] = pid;
	}
	errno = saved;
}

static atomic_bool worker_ready;

static void *huge_worker(void *arg)
{
	uint64_t rng = (uintptr_t)arg;
	atomic_store(&worker_ready, true);
	while (!atomic_load(&stop)) {
		size_t n = tu_rand(&rng) % 4 == 0 ? tu_range(&rng, 1, 40000)
						   : tu_range(&rng, (1 << 20) + 1, 4 << 20);
		void *p = t_malloc(n);
		if (in_child)
			_exit(p == NULL ? 3 : child_work(rng));
		if (p == NULL) {
			note_error("malloc failed in the worker");
			break;
		}
		((volatile char *)p)[0] = 1;
		((volatile char *)p)[n - 1] = 2;
		t_free(p);
		if (in_child)
			_exit(child_work(rng));
	}
	return NULL;
}

START_TEST(fork_in_signal_handler)
{
	struct sigaction sa;
	pthread_t w;
	int sent = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	t_end = tu_now() + (double)tu_env_long("RUN", 3);
	ck_assert_int_eq(pthread_create(&w, NULL, huge_worker, (void *)(uintptr_t)5), 0);
	while (!atomic_load(&worker_ready))
		usleep(100);
	double limit = t_end + DEADLINE;
	int reaped = 0;
	while (tu_now() < t_end && sent < 2000) {
		/* a signal only when the last child has been forked: the
		 * handler may still be running */
		if (atomic_load(&npids) == sent) {
			pthread_kill(w, SIGUSR1);
			sent++;
		}
		usleep(500);
		if (tu_now() > limit)
			break;
		while (reaped < atomic_load(&npids) && reaped < sent) {
			reap(pids[reaped], "a child forked in a signal handler hung (killed after the deadline)");
			reaped++;
		}
	}
	/* the last forks: wait for the handler to have forked them */
	while (atomic_load(&npids) < sent && tu_now() < limit)
		usleep(1000);
	ck_assert_msg(atomic_load(&npids) == sent,
		      "deadlock: the worker forked %d times for %d signals and is stuck (in fork?)",
		      atomic_load(&npids), sent);
	for (; reaped < atomic_load(&npids); reaped++)
		reap(pids[reaped], "a child forked in a signal handler hung (killed after the deadline)");
	atomic_store(&stop, true);
	ck_assert_int_eq(pthread_join(w, NULL), 0);
	printf("signal: %d signals, %d children\n", sent, atomic_load(&npids));
	ck_assert_msg(atomic_load(&errors) == 0, "%s", err_msg);
	ck_assert_int_gt(sent, 10);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("atfork");
	TCase *tc = tcase_create("atfork");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 2 * DEADLINE + (double)tu_env_long("RUN", 3));
	tcase_add_test(tc, fork_beside_stdio);
	tcase_add_test(tc, fork_in_signal_handler);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
