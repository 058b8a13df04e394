/*
 * drain - threads that only free: blocks allocated by some threads and
 * freed by others that never allocate.
 *
 * Models worker pools where one kind of thread builds objects and another
 * only disposes of them (a finaliser, a logger's writer, the consumer of a
 * queue): the freeing threads never call malloc, so an allocator that
 * keeps per-thread state only for threads that allocate has none for
 * them.  -n N pairs: N producers and N consumers run in rounds; in each
 * round every producer allocates BATCH blocks and stamps them, then (after
 * a barrier) every consumer checks and frees the blocks of its producer.
 * Each phase has N threads running at once, none of them spinning, so the
 * numbers show what the frees of N concurrent threads cost each other
 * (every free here is a cross-thread free).
 *
 * Profile: MIN-MAX block sizes or SIZE (default 64).
 * ops = malloc + free calls.
 */
#include "common.h"

#define BATCH 16384 /* blocks per producer and round */

struct item {
	void *p;
	size_t n;
};

struct lane {
	struct item items[BATCH];
	rng_t rng;
	size_t min, max;
};

static struct lane *lanes;
static int nlanes;
static pthread_barrier_t round_barrier;
static atomic_int done;
static uint64_t rounds;

static void *producer(void *arg)
{
	struct lane *l = arg;

	for (;;) {
		if (l == &lanes[0]) { /* one thread decides for all */
			int stop = bench_stopped();
			atomic_store_explicit(&done, stop, memory_order_relaxed);
			rounds += !stop;
		}
		pthread_barrier_wait(&round_barrier); /* A: the consumers are done */
		if (atomic_load_explicit(&done, memory_order_relaxed))
			break;
		for (int i = 0; i < BATCH; i++) {
			size_t n = rng_range(&l->rng, l->min, l->max);
			void *p = bench_check_alloc(malloc(n), n);
			block_fill(p, n, bench_stamp(p, n));
			l->items[i] = (struct item){ p, n };
		}
		pthread_barrier_wait(&round_barrier); /* B: the blocks are ready */
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct lane *l = arg;

	for (;;) {
		pthread_barrier_wait(&round_barrier); /* A */
		if (atomic_load_explicit(&done, memory_order_relaxed))
			break;
		pthread_barrier_wait(&round_barrier); /* B */
		for (int i = 0; i < BATCH; i++) {
			struct item it = l->items[i];
			block_check(it.p, it.n, bench_stamp(it.p, it.n));
			free(it.p);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static const char help[] = "MIN-MAX or SIZE (e.g. 64, 8-1024)";
	struct bench_opts o = { .bench = "drain", .profile = "64" };
	pthread_t *tids;
	size_t size;
	double t0, secs;

	bench_parse(&o, argc, argv, help);
	if (!o.ranged)
		bench_usage(&o, help);
	nlanes = o.threads;
	size = (size_t)nlanes * sizeof *lanes;
	lanes = bench_check_alloc(aligned_alloc(BENCH_PAGE, (size + BENCH_PAGE - 1) & ~(size_t)(BENCH_PAGE - 1)), size);
	memset(lanes, 0, size);
	tids = bench_calloc(2 * (size_t)nlanes, sizeof *tids);
	if (pthread_barrier_init(&round_barrier, NULL, 2 * (unsigned)nlanes) != 0)
		bench_die("pthread_barrier_init failed");
	t0 = bench_now();
	for (int i = 0; i < nlanes; i++) {
		lanes[i].min = o.min;
		lanes[i].max = o.max;
		rng_seed(&lanes[i].rng, o.seed, (uint64_t)i);
		bench_spawn(&tids[2 * i], consumer, &lanes[i]);
		bench_spawn(&tids[2 * i + 1], producer, &lanes[i]);
	}
	secs = bench_run_for(t0, o.runtime);
	for (int i = 0; i < 2 * nlanes; i++)
		pthread_join(tids[i], NULL);
	pthread_barrier_destroy(&round_barrier);
	free(tids);
	free(lanes);
	bench_report(&o, rounds * 2 * BATCH * (uint64_t)nlanes, secs);
	return 0;
}
