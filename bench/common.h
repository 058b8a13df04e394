/*
 * bench/common.h - helpers shared by the hakmem benchmark workloads.
 *
 * Every workload is one small C program that calls only the standard
 * malloc family.  It is linked once per allocator (NAME-hakmem,
 * NAME-jemalloc, NAME-mimalloc, NAME-system), runs for a fixed time with a
 * fixed seed and prints exactly one line on stdout:
 *
 *   RESULT bench=larson profile=8-1024 threads=2 ops=123456 secs=1.00
 *          mops=0.12 rss_kib=12345 sys_s=0.010 malloc=libjemalloc.so.2
 *
 * (one line; wrapped here).  "ops" counts allocator calls (each malloc,
 * calloc, realloc and free is one); "malloc" names the object that
 * provides the malloc the program actually calls, so a link-order mistake
 * shows in the results; "sys_s" is the kernel time of the whole process
 * (getrusage), where memory given back and faulted in again shows.
 *
 * Options shared by all workloads:
 *   -n N      worker threads (default 1)
 *   -t SECS   run time (default: $RUNTIME, else 1)
 *   -s PROF   profile: MIN-MAX block sizes in bytes, one SIZE, or a name
 *             the workload knows
 *   -w N      working-set slots per thread (0: the workload's default)
 *   -S SEED   random seed (default 42)
 *
 * Include this header first (it defines _GNU_SOURCE).
 *
 * Exit status: 0 on success, 2 on bad usage, abort() when a block comes
 * back corrupted or an allocation fails.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BENCH_CACHE_LINE 64
#define BENCH_PAGE 4096

/* ---------------------------------------------------------------- rng -- */

/* splitmix64: turns any seed (even 0) into well-mixed state. */
static inline uint64_t bench_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* xorshift64*: one state word per thread, a few cycles per number. */
typedef struct {
	uint64_t s;
} rng_t;

static inline void rng_seed(rng_t *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
	r->s = bench_splitmix64(&x);
	if (r->s == 0)
		r->s = 1;
}

static inline uint64_t rng_next(rng_t *r)
{
	uint64_t x = r->s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [0, n), by multiply-shift (no division). */
static inline uint64_t rng_below(rng_t *r, uint64_t n)
{
	__extension__ typedef unsigned __int128 u128;
	return (uint64_t)(((u128)rng_next(r) * n) >> 64);
}

/* Uniform in [lo, hi]. */
static inline size_t rng_range(rng_t *r, size_t lo, size_t hi)
{
	return lo + (size_t)rng_below(r, (uint64_t)(hi - lo) + 1);
}

/* --------------------------------------------------------------- time -- */

static inline double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void bench_sleep(double secs)
{
	struct timespec ts;
	if (secs <= 0)
		return;
	ts.tv_sec = (time_t)secs;
	ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Set by the main thread when the run time is over; workers poll it. */
static atomic_int bench_stop_flag;

static inline int bench_stopped(void)
{
	return atomic_load_explicit(&bench_stop_flag, memory_order_relaxed);
}

/* Sleep through the run time, raise the stop flag, return the time the
 * workers had (from t0 to the stop). */
static inline double bench_run_for(double t0, double runtime)
{
	bench_sleep(runtime - (bench_now() - t0));
	atomic_store(&bench_stop_flag, 1);
	return bench_now() - t0;
}

/* ------------------------------------------------------------- errors -- */

__attribute__((noreturn, format(printf, 1, 2)))
static inline void bench_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

static inline void *bench_check_alloc(void *p, size_t n)
{
	if (p == NULL)
		bench_die("allocation of %zu bytes failed", n);
	return p;
}

/* For the workloads' own arrays. */
static inline void *bench_calloc(size_t n, size_t size)
{
	return bench_check_alloc(calloc(n, size), n * size);
}

static inline void bench_spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	int e = pthread_create(t, NULL, fn, arg);
	if (e != 0)
		bench_die("pthread_create: %s", strerror(e));
}

/* ------------------------------------------------------ block touching -- */

/*
 * Every block is written when it is allocated and read back before it is
 * freed: an 8-byte stamp at the start, one byte on every further page (so
 * the pages are really faulted in and count in RSS) and the last byte.
 * Blocks are at least 8 bytes.  A mismatch means the allocator handed the
 * memory to someone else while we owned it: abort.
 */
static inline uint64_t bench_stamp(const void *p, size_t n)
{
	return ((uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ULL) ^ n;
}

static inline void block_fill(void *p, size_t n, uint64_t stamp)
{
	unsigned char *c = p;
	memcpy(c, &stamp, sizeof stamp);
	for (size_t off = BENCH_PAGE; off < n; off += BENCH_PAGE)
		c[off] = (unsigned char)stamp;
	if (n > sizeof stamp)
		c[n - 1] = (unsigned char)(stamp >> 8);
}

static inline void block_check(const void *p, size_t n, uint64_t stamp)
{
	const unsigned char *c = p;
	uint64_t got;
	memcpy(&got, c, sizeof got);
	if (got != stamp ||
	    (n > sizeof stamp && c[n - 1] != (unsigned char)(stamp >> 8)))
		bench_die("block %p (%zu bytes) was overwritten", p, n);
}

/* ------------------------------------------------------------ options -- */

struct bench_opts {
	const char *bench;   /* workload name, printed as bench= */
	const char *profile; /* -s as given, printed as profile= */
	int threads;         /* -n */
	double runtime;      /* -t / $RUNTIME */
	int ranged;          /* the profile was MIN-MAX or SIZE ... */
	size_t min, max;     /* ... and these are its bounds */
	long slots;          /* -w, 0 = workload default */
	uint64_t seed;       /* -S */
};

static inline int bench_parse_size(const char *s, const char **end, size_t *out)
{
	char *e;
	unsigned long long v;
	if (*s < '0' || *s > '9')
		return 0;
	v = strtoull(s, &e, 10);
	*out = (size_t)v;
	*end = e;
	return v > 0;
}

/* MIN-MAX or SIZE, bytes, 8 <= MIN <= MAX <= 1 GiB. */
static inline int bench_parse_range(const char *s, size_t *min, size_t *max)
{
	const char *e;
	if (!bench_parse_size(s, &e, min))
		return 0;
	if (*e == '\0')
		*max = *min;
	else if (*e != '-' || !bench_parse_size(e + 1, &e, max) || *e != '\0')
		return 0;
	return *min <= *max && *max <= ((size_t)1 << 30);
}

static inline void bench_usage(const struct bench_opts *o, const char *profiles)
{
	fprintf(stderr,
		"usage: %s-ALLOCATOR [-n threads] [-t secs] [-s profile] "
		"[-w slots] [-S seed]\n  profiles: %s\n",
		o->bench, profiles);
	exit(2);
}

/*
 * Fill *o from argv.  o->bench and o->profile (the default profile) must be
 * set by the caller.  profiles is the help text for -s.
 */
static inline void bench_parse(struct bench_opts *o, int argc, char **argv,
			       const char *profiles)
{
	const char *rt = getenv("RUNTIME");
	int c;
	o->threads = 1;
	o->runtime = rt && *rt ? atof(rt) : 1.0;
	o->slots = 0;
	o->seed = 42;
	while ((c = getopt(argc, argv, "n:t:s:w:S:h")) != -1) {
		switch (c) {
		case 'n': o->threads = atoi(optarg); break;
		case 't': o->runtime = atof(optarg); break;
		case 's': o->profile = optarg; break;
		case 'w': o->slots = atol(optarg); break;
		case 'S': o->seed = strtoull(optarg, NULL, 0); break;
		default: bench_usage(o, profiles);
		}
	}
	if (optind != argc || o->threads < 1 || o->threads > 1024 ||
	    !(o->runtime > 0) || o->slots < 0)
		bench_usage(o, profiles);
	o->ranged = bench_parse_range(o->profile, &o->min, &o->max);
	if (o->ranged && o->min < 8) {
		fprintf(stderr, "%s: sizes must be at least 8 bytes\n", o->bench);
		exit(2);
	}
}

/* ------------------------------------------------------------- report -- */

/* File name of the object whose malloc this program calls. */
static inline const char *bench_malloc_origin(void)
{
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "malloc");
	const char *slash;
	if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL)
		return "unknown";
	slash = strrchr(info.dli_fname, '/');
	return slash ? slash + 1 : info.dli_fname;
}

static inline void bench_report(const struct bench_opts *o, uint64_t ops,
				double secs)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("RESULT bench=%s profile=%s threads=%d ops=%llu secs=%.3f "
	       "mops=%.6g rss_kib=%ld sys_s=%.3f malloc=%s\n",
	       o->bench, o->profile, o->threads, (unsigned long long)ops, secs,
	       (double)ops / secs / 1e6, ru.ru_maxrss,
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6,
	       bench_malloc_origin());
	fflush(stdout);
}

#endif /* BENCH_COMMON_H */
