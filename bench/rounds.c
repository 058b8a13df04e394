/*
 * rounds - threads created and joined in rounds, whose blocks outlive them.
 *
 * Models servers and build tools that start a short-lived thread per task:
 * each round starts N threads (-n) and joins them all.  A thread allocates
 * mostly small blocks (24-256 bytes), some mid (257 bytes-8 KiB) and a few
 * up to 100 KiB; it keeps a window of WINDOW blocks, replacing a random one
 * at each step, and one block in four it swaps through an array shared by
 * every thread (atomic exchange), freeing whatever it takes out.  So most
 * frees are local, a quarter are frees of blocks allocated by another
 * thread, and often by a thread that has already exited.  Before exiting a
 * thread frees half its window and swaps the other half into the shared
 * array, so blocks outlive the thread that allocated them.
 *
 * Every block is stamped when allocated and checked before it is freed
 * (its size is written in its second word).
 *
 * Profile: the steps in a thread's life, "short" (2,000) or "long"
 * (20,000); the allocator pays for a thread's start and exit once per
 * life.  ops = malloc + free calls.
 *
 * Rounds run until -t seconds are over, or, with $ROUNDS_COUNT set, that
 * many rounds: fixed work, so that peak RSS compares between allocators
 * at the same point of the program (the shared array fills over the first
 * hundred rounds, and the resident size creeps with the rounds after, so
 * in a timed run the faster allocator is measured further on).
 */
#include "common.h"

#define WINDOW 256   /* blocks a thread keeps */
#define SHARED 8192  /* slots of the shared array */

static _Atomic(void *) shared[SHARED];

struct worker {
	uint64_t steps; /* steps in a life */
	uint64_t seed;
	uint64_t ops;
	char pad[BENCH_CACHE_LINE];
};

static size_t pick_size(rng_t *r)
{
	uint64_t x = rng_below(r, 1000);
	if (x < 900)
		return rng_range(r, 24, 256);
	if (x < 990)
		return rng_range(r, 257, 8192);
	return rng_range(r, 8193, 100 * 1024);
}

static void *get(size_t n)
{
	void *p = bench_check_alloc(malloc(n), n);
	block_fill(p, n, bench_stamp(p, n));
	memcpy((char *)p + 8, &n, sizeof n);
	return p;
}

static void put(void *p)
{
	size_t n;
	if (p == NULL)
		return;
	memcpy(&n, (char *)p + 8, sizeof n);
	if (n < 24 || n > 100 * 1024)
		bench_die("block %p has a bad size word %zu", p, n);
	block_check(p, n, bench_stamp(p, n));
	free(p);
}

static void *life(void *arg)
{
	struct worker *w = arg;
	void *win[WINDOW] = { 0 };
	uint64_t ops = 0;
	rng_t r;
	rng_seed(&r, w->seed, 1);
	for (uint64_t i = 0; i < w->steps; i++) {
		void *p = get(pick_size(&r));
		ops++;
		void **slot = (rng_below(&r, 4) == 0) ? NULL : &win[rng_below(&r, WINDOW)];
		void *old = slot ? *slot : atomic_exchange(&shared[rng_below(&r, SHARED)], p);
		if (slot)
			*slot = p;
		if (old) {
			put(old);
			ops++;
		}
	}
	for (unsigned i = 0; i < WINDOW; i++) {
		void *old = win[i];
		if (old && (i & 1))
			old = atomic_exchange(&shared[rng_below(&r, SHARED)], old);
		if (old) {
			put(old);
			ops++;
		}
	}
	w->ops = ops;
	return NULL;
}

int main(int argc, char **argv)
{
	static const char help[] = "short, long";
	struct bench_opts o = { .bench = "rounds", .profile = "short" };
	struct worker *w;
	pthread_t *tids;
	uint64_t ops = 0, steps, round = 0, rounds = 0;
	const char *fixed = getenv("ROUNDS_COUNT");
	double t0, secs;

	bench_parse(&o, argc, argv, help);
	if (strcmp(o.profile, "short") == 0)
		steps = 2000;
	else if (strcmp(o.profile, "long") == 0)
		steps = 20000;
	else
		bench_usage(&o, help);
	if (fixed && *fixed) {
		char *end;
		rounds = strtoull(fixed, &end, 10);
		if (*end != '\0' || rounds == 0 || rounds > 1000000000)
			bench_die("ROUNDS_COUNT must be a number of rounds, 1 to 10^9, not '%s'", fixed);
	}
	w = bench_calloc((size_t)o.threads, sizeof *w);
	tids = bench_calloc((size_t)o.threads, sizeof *tids);
	t0 = bench_now();
	/* Rounds until the run time is over (the last round finishes), or
	 * ROUNDS_COUNT rounds. */
	do {
		for (int i = 0; i < o.threads; i++) {
			w[i].steps = steps;
			w[i].seed = o.seed + round * 1024 + (uint64_t)i;
			bench_spawn(&tids[i], life, &w[i]);
		}
		for (int i = 0; i < o.threads; i++) {
			pthread_join(tids[i], NULL);
			ops += w[i].ops;
		}
		round++;
	} while (rounds ? round < rounds : bench_now() - t0 < o.runtime);
	for (unsigned i = 0; i < SHARED; i++) {
		void *p = atomic_exchange(&shared[i], NULL);
		if (p) {
			put(p);
			ops++;
		}
	}
	secs = bench_now() - t0;
	free(tids);
	free(w);
	bench_report(&o, ops, secs);
	return 0;
}
