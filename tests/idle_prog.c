/* idle_prog.c - does memory go back while the program sleeps?  For
 * tests/idle.sh (issue #13's probe).
 *
 *   idle_prog SIZE [SECONDS [LIMIT_MIB [trim]]]
 *
 * SIZE a number of bytes (1048576, 4096, 256): allocate 512 MiB in blocks
 * of that size, writing each, free all but one, then sleep without
 * calling the allocator.  SIZE "threads": 8 threads allocate blocks of
 * every tier (tiny, mid, large, huge; 40 MiB each) and exit; two other
 * threads free those blocks and then sleep, still alive; the main thread
 * sleeps without calling the allocator.
 *
 * Every 50 ms the resident set is read from /proc/self/smaps_rollup
 * (Rss: less LazyFree:, read with open and read: no allocation); the
 * program prints one line and exits 0 as soon as it is at most LIMIT_MIB
 * (default 16) MiB, for "threads" at most LIMIT_MIB above the resident
 * set before the threads started, and exits 1 when SECONDS (default 5)
 * pass first.  The line says how long it took ("after_ms").  With "trim",
 * the program calls malloc_trim(0) (hak_collect without the override)
 * once, right after the frees, before it sleeps.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hakmem/hakmem.h>

#ifdef TEST_OVERRIDE
#define ALLOC malloc
#define FREE free
#else
#define ALLOC hak_malloc
#define FREE hak_free
#endif

#define TOTAL ((size_t)512 << 20)

static int trim;

static void trim_now(void)
{
	if (!trim)
		return;
#ifdef TEST_OVERRIDE
	malloc_trim(0);
#else
	hak_collect();
#endif
}

/* A field of smaps_rollup in KiB, or -1. */
static long rollup_field(const char *buf, const char *name)
{
	const char *p = strstr(buf, name);
	if (p == NULL)
		return -1;
	p += strlen(name);
	while (*p == ' ' || *p == '\t')
		p++;
	long v = 0;
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (*p++ - '0');
	return v;
}

/* Rss less LazyFree, in KiB; no allocation. */
static long rss_kib(void)
{
	static char buf[4096];
	int fd = open("/proc/self/smaps_rollup", O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	long rss = rollup_field(buf, "\nRss:");
	long lazy = rollup_field(buf, "\nLazyFree:");
	if (rss < 0)
		return -1;
	return rss - (lazy > 0 ? lazy : 0);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Sleep until the resident set is at most limit_kib; 0 then, 1 at the
 * deadline. */
static int wait_for(const char *what, long limit_kib, double seconds, long base_kib)
{
	double t0 = now_ms();
	long first = rss_kib(), r = first;
	for (;;) {
		double t = now_ms() - t0;
		if (r >= 0 && r <= limit_kib) {
			printf("%s: rss %ld KiB (base %ld, at free %ld) <= %ld KiB after_ms %.0f\n", what, r,
			       base_kib, first, limit_kib, t);
			return 0;
		}
		if (t >= seconds * 1e3) {
			printf("%s: rss %ld KiB (base %ld, at free %ld) > %ld KiB after_ms %.0f: FAIL\n", what,
			       r, base_kib, first, limit_kib, t);
			return 1;
		}
		sleep_ms(50);
		r = rss_kib();
	}
}

/* ---- the thread case ---- */

#define NWORKERS 8
#define NFREERS 2
#define PER_THREAD ((size_t)40 << 20)
#define MAXBLK 80000 /* enough for 40 MiB / 7 in 96 and in 700-byte blocks */

static const size_t tier_sizes[] = { 96, 700, 3000, 20000, 100000, 600000, 3 << 20 };
#define NSIZES (sizeof(tier_sizes) / sizeof(tier_sizes[0]))

static void *blocks[NWORKERS][MAXBLK];
static size_t nblocks[NWORKERS];
static pthread_barrier_t freed;
static volatile int done;

static void *worker(void *arg)
{
	size_t w = (size_t)(uintptr_t)arg, bytes = 0, n = 0;
	/* every tier in turn, 1/NSIZES of the bytes each */
	for (size_t k = 0; k < NSIZES; k++) {
		size_t part = 0;
		while (part < PER_THREAD / NSIZES && n < MAXBLK) {
			void *p = ALLOC(tier_sizes[k]);
			if (p == NULL)
				abort();
			memset(p, (int)w, tier_sizes[k]);
			blocks[w][n++] = p;
			part += tier_sizes[k];
		}
		bytes += part;
	}
	nblocks[w] = n;
	return NULL;
}

static void *freer(void *arg)
{
	size_t f = (size_t)(uintptr_t)arg;
	/* a thread with caches of its own, as most are */
	void *x = ALLOC(64);
	FREE(x);
	for (size_t w = f; w < NWORKERS; w += NFREERS)
		for (size_t i = 0; i < nblocks[w]; i++)
			FREE(blocks[w][i]);
	pthread_barrier_wait(&freed);
	while (!done)
		sleep_ms(20); /* alive, and never calls the allocator again */
	return NULL;
}

static int thread_case(double seconds, long limit_mib)
{
	pthread_t t[NWORKERS], fr[NFREERS];
	/* the pointer arrays written before the baseline */
	memset(blocks, 0, sizeof(blocks));
	long base = rss_kib();
	for (size_t w = 0; w < NWORKERS; w++)
		if (pthread_create(&t[w], NULL, worker, (void *)(uintptr_t)w) != 0)
			return 2;
	for (size_t w = 0; w < NWORKERS; w++)
		pthread_join(t[w], NULL);
	long peak = rss_kib();
	pthread_barrier_init(&freed, NULL, NFREERS + 1);
	for (size_t f = 0; f < NFREERS; f++)
		if (pthread_create(&fr[f], NULL, freer, (void *)(uintptr_t)f) != 0)
			return 2;
	pthread_barrier_wait(&freed);
	trim_now();
	printf("threads: base %ld KiB, after the workers %ld KiB\n", base, peak);
	int r = wait_for("threads", base + limit_mib * 1024, seconds, base);
	done = 1;
	for (size_t f = 0; f < NFREERS; f++)
		pthread_join(fr[f], NULL);
	return r;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: idle_prog SIZE|threads [SECONDS [LIMIT_MIB]]\n");
		return 2;
	}
	double seconds = argc > 2 ? atof(argv[2]) : 5;
	long limit = argc > 3 ? atol(argv[3]) : 16;
	trim = argc > 4 && strcmp(argv[4], "trim") == 0;
	setvbuf(stdout, NULL, _IONBF, 0);
	if (strcmp(argv[1], "threads") == 0)
		return thread_case(seconds, limit);
	size_t size = (size_t)atol(argv[1]);
	if (size == 0)
		return 2;
	size_t n = TOTAL / size;
	void **p = ALLOC(n * sizeof(void *));
	if (p == NULL)
		return 2;
	memset(p, 0, n * sizeof(void *));
	for (size_t i = 0; i < n; i++) {
		p[i] = ALLOC(size);
		if (p[i] == NULL)
			return 2;
		memset(p[i], 1, size);
	}
	long peak = rss_kib();
	/* all but one, in the middle */
	for (size_t i = 0; i < n; i++)
		if (i != n / 2)
			FREE(p[i]);
	void *kept = p[n / 2];
	FREE(p);
	trim_now();
	char what[64];
	snprintf(what, sizeof(what), "%zu-byte blocks (peak %ld KiB)", size, peak);
	int r = wait_for(what, limit * 1024, seconds, 0);
	FREE(kept);
	return r;
}
