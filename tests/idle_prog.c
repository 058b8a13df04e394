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
 * SIZE "remote-N" (remote-4096, ...): as SIZE N, but another thread frees
 * the blocks (and the array of pointers) and then sleeps, alive: the
 * main thread, whose slabs they were, sleeps too, without calling the
 * allocator after its last malloc.
 *
 * SIZE "prodcons": one thread allocates blocks of 16-256 bytes while at
 * most 64 MiB are out, another frees them oldest first, for SECONDS; the
 * peak resident set above the start must be at most LIMIT percent (here
 * LIMIT_MIB is a percentage) of the most bytes out at once.
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
#include <sched.h>
#include <stdatomic.h>
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

/* ---- the producer/consumer case ---- */

#define PC_QN ((size_t)1 << 20) /* queue slots */
#define PC_LIVE ((size_t)64 << 20)
static void *pc_q[PC_QN];
static size_t pc_qs[PC_QN];
static _Atomic size_t pc_head, pc_tail, pc_live;
static size_t pc_live_max;
static _Atomic int pc_stop;

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* blocks of 16 to 256 bytes, written whole, into the queue while at most
 * PC_LIVE bytes are out */
static void *pc_producer(void *arg)
{
	(void)arg;
	uint64_t x = 88172645463325252ull;
	while (!atomic_load(&pc_stop)) {
		size_t h = atomic_load_explicit(&pc_head, memory_order_relaxed);
		if (h - atomic_load_explicit(&pc_tail, memory_order_acquire) >= PC_QN ||
		    atomic_load_explicit(&pc_live, memory_order_relaxed) > PC_LIVE) {
			sched_yield();
			continue;
		}
		size_t n = 16 + xorshift(&x) % 241;
		void *p = ALLOC(n);
		if (p == NULL)
			abort();
		memset(p, (int)n, n);
		pc_q[h % PC_QN] = p;
		pc_qs[h % PC_QN] = n;
		size_t l = atomic_fetch_add_explicit(&pc_live, n, memory_order_relaxed) + n;
		if (l > pc_live_max)
			pc_live_max = l;
		atomic_store_explicit(&pc_head, h + 1, memory_order_release);
	}
	return NULL;
}

/* frees the oldest block, in bursts: while less than half is out, only
 * now and then */
static void *pc_consumer(void *arg)
{
	(void)arg;
	uint64_t x = 1234567;
	for (;;) {
		size_t t = atomic_load_explicit(&pc_tail, memory_order_relaxed);
		if (t == atomic_load_explicit(&pc_head, memory_order_acquire)) {
			if (atomic_load(&pc_stop))
				break;
			sched_yield();
			continue;
		}
		if (atomic_load_explicit(&pc_live, memory_order_relaxed) < PC_LIVE / 2 && (xorshift(&x) & 3)) {
			sched_yield();
			continue;
		}
		FREE(pc_q[t % PC_QN]);
		atomic_fetch_sub_explicit(&pc_live, pc_qs[t % PC_QN], memory_order_relaxed);
		atomic_store_explicit(&pc_tail, t + 1, memory_order_release);
	}
	return NULL;
}

/* One thread allocates, another frees (issue #13's producer/consumer
 * row): the peak resident set above the start, over SECONDS, at most
 * LIMIT_PCT percent of the most bytes out at once. */
static int prodcons_case(double seconds, long limit_pct)
{
	pthread_t a, b;
	memset(pc_q, 0, sizeof(pc_q)); /* the queue, resident before the base */
	memset(pc_qs, 0, sizeof(pc_qs));
	long base = rss_kib(), peak = 0;
	if (pthread_create(&a, NULL, pc_producer, NULL) != 0 ||
	    pthread_create(&b, NULL, pc_consumer, NULL) != 0)
		return 2;
	double t0 = now_ms();
	while (now_ms() - t0 < seconds * 1e3) {
		sleep_ms(10);
		long r = rss_kib();
		if (r > peak)
			peak = r;
	}
	atomic_store(&pc_stop, 1);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	double ratio = (double)(peak - base) * 1024 / (double)pc_live_max;
	int bad = ratio * 100 > (double)limit_pct;
	printf("producer/consumer: at most %.1f MiB out, peak rss %.1f MiB above the start: %.2fx (limit %.2fx)%s\n",
	       (double)pc_live_max / (1 << 20), (double)(peak - base) / 1024, ratio, limit_pct / 100.0,
	       bad ? ": FAIL" : "");
	return bad;
}

/* ---- the remote case: another thread frees the main thread's blocks ---- */

static void **rm_p;
static size_t rm_n;
static pthread_barrier_t rm_freed;

static void *rm_freer(void *arg)
{
	(void)arg;
	/* a thread with caches of its own, as most are */
	void *x = ALLOC(64);
	FREE(x);
	for (size_t i = 0; i < rm_n; i++)
		if (i != rm_n / 2)
			FREE(rm_p[i]);
	FREE(rm_p);
	pthread_barrier_wait(&rm_freed);
	while (!done)
		sleep_ms(20); /* alive, and never calls the allocator again */
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: idle_prog SIZE|threads|prodcons [SECONDS [LIMIT_MIB]]\n");
		return 2;
	}
	double seconds = argc > 2 ? atof(argv[2]) : 5;
	long limit = argc > 3 ? atol(argv[3]) : 16;
	trim = argc > 4 && strcmp(argv[4], "trim") == 0;
	setvbuf(stdout, NULL, _IONBF, 0);
	if (strcmp(argv[1], "threads") == 0)
		return thread_case(seconds, limit);
	if (strcmp(argv[1], "prodcons") == 0)
		return prodcons_case(seconds, limit);
	int remote = strncmp(argv[1], "remote-", 7) == 0;
	size_t size = (size_t)atol(argv[1] + (remote ? 7 : 0));
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
	void *kept = p[n / 2];
	pthread_t fr;
	if (remote) {
		/* the main thread's last call into the allocator was its last
		 * malloc: the freer takes the array too */
		rm_p = p;
		rm_n = n;
		pthread_barrier_init(&rm_freed, NULL, 2);
		if (pthread_create(&fr, NULL, rm_freer, NULL) != 0)
			return 2;
		pthread_barrier_wait(&rm_freed);
	} else {
		/* all but one, in the middle */
		for (size_t i = 0; i < n; i++)
			if (i != n / 2)
				FREE(p[i]);
		FREE(p);
		trim_now();
	}
	char what[96];
	snprintf(what, sizeof(what), "%zu-byte blocks%s (peak %ld KiB)", size,
		 remote ? " freed by another thread" : "", peak);
	int r = wait_for(what, limit * 1024, seconds, 0);
	if (remote) {
		done = 1;
		pthread_join(fr, NULL);
	}
	FREE(kept);
	return r;
}
