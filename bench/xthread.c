/*
 * xthread - producer threads allocate, consumer threads free.
 *
 * Models pipelines (a network thread allocating requests that workers
 * release, message passing): every free is a cross-thread free.  -n N
 * makes N producer/consumer pairs (2N threads); each pair shares a bounded
 * single-producer single-consumer ring of QUEUE_CAP blocks, so at most
 * N * QUEUE_CAP blocks are in flight.  The producer writes each block and
 * the consumer checks it before freeing.  A thread that finds its ring
 * full (or empty) yields, so oversubscribed runs still make progress.
 *
 * Profile: MIN-MAX block sizes (default 8-1024).  -w N: each producer
 * first allocates N blocks of the profile's sizes and keeps them for the
 * whole run (a live set beside the stream: a server's cache while its
 * requests pass; default 0).  ops = malloc calls by producers + free
 * calls by consumers (the kept blocks are not counted).
 */
#include "common.h"

#define QUEUE_CAP 1024 /* power of two */

struct item {
	void *p;
	size_t n;
};

struct ring {
	_Alignas(BENCH_CACHE_LINE) atomic_size_t head; /* next to pop */
	_Alignas(BENCH_CACHE_LINE) atomic_size_t tail; /* next to push */
	atomic_int closed;                             /* producer is done */
	_Alignas(BENCH_CACHE_LINE) struct item items[QUEUE_CAP];
};

struct pair {
	struct ring ring;
	size_t min, max;
	long keep; /* -w: blocks the producer keeps */
	rng_t rng;
	_Alignas(BENCH_CACHE_LINE) uint64_t produced;
	_Alignas(BENCH_CACHE_LINE) uint64_t consumed;
};

static void *producer(void *arg)
{
	struct pair *pr = arg;
	struct ring *q = &pr->ring;
	size_t tail = 0, head = 0;
	uint64_t made = 0;
	struct item *kept = pr->keep ? bench_calloc((size_t)pr->keep, sizeof *kept) : NULL;

	for (long i = 0; i < pr->keep; i++) {
		size_t n = rng_range(&pr->rng, pr->min, pr->max);
		kept[i] = (struct item){ bench_check_alloc(malloc(n), n), n };
		block_fill(kept[i].p, n, bench_stamp(kept[i].p, n));
	}
	while (!bench_stopped()) {
		size_t n = rng_range(&pr->rng, pr->min, pr->max);
		void *p = bench_check_alloc(malloc(n), n);
		block_fill(p, n, bench_stamp(p, n));
		made++;
		/* wait for room; re-read the consumer's head only when needed */
		while (tail - head == QUEUE_CAP) {
			head = atomic_load_explicit(&q->head, memory_order_acquire);
			if (tail - head < QUEUE_CAP)
				break;
			if (bench_stopped())
				break;
			sched_yield();
		}
		if (tail - head == QUEUE_CAP) {
			/* stopped with a full ring: keep it local */
			free(p);
			break;
		}
		q->items[tail % QUEUE_CAP] = (struct item){ p, n };
		atomic_store_explicit(&q->tail, ++tail, memory_order_release);
	}
	pr->produced = made;
	atomic_store_explicit(&q->closed, 1, memory_order_release);
	for (long i = 0; i < pr->keep; i++) {
		block_check(kept[i].p, kept[i].n, bench_stamp(kept[i].p, kept[i].n));
		free(kept[i].p);
	}
	free(kept);
	return NULL;
}

static void *consumer(void *arg)
{
	struct pair *pr = arg;
	struct ring *q = &pr->ring;
	size_t head = 0, tail = 0;
	uint64_t freed = 0;

	for (;;) {
		if (head == tail) {
			int closed = atomic_load_explicit(&q->closed,
							  memory_order_acquire);
			tail = atomic_load_explicit(&q->tail, memory_order_acquire);
			if (head == tail) {
				if (closed)
					break;
				sched_yield();
				continue;
			}
		}
		struct item it = q->items[head % QUEUE_CAP];
		block_check(it.p, it.n, bench_stamp(it.p, it.n));
		free(it.p);
		freed++;
		atomic_store_explicit(&q->head, ++head, memory_order_release);
	}
	pr->consumed = freed;
	return NULL;
}

int main(int argc, char **argv)
{
	static const char help[] = "MIN-MAX (e.g. 8-1024)";
	struct bench_opts o = { .bench = "xthread", .profile = "8-1024" };
	struct pair *pairs;
	pthread_t *tids;
	size_t size;
	uint64_t ops = 0;
	double t0, secs;

	bench_parse(&o, argc, argv, help);
	if (!o.ranged)
		bench_usage(&o, help);
	size = (size_t)o.threads * sizeof *pairs;
	pairs = bench_check_alloc(aligned_alloc(BENCH_CACHE_LINE, size), size);
	memset(pairs, 0, size);
	tids = bench_calloc(2 * (size_t)o.threads, sizeof *tids);
	t0 = bench_now();
	for (int i = 0; i < o.threads; i++) {
		pairs[i].min = o.min;
		pairs[i].max = o.max;
		pairs[i].keep = o.slots;
		rng_seed(&pairs[i].rng, o.seed, (uint64_t)i);
		bench_spawn(&tids[2 * i], consumer, &pairs[i]);
		bench_spawn(&tids[2 * i + 1], producer, &pairs[i]);
	}
	secs = bench_run_for(t0, o.runtime);
	for (int i = 0; i < 2 * o.threads; i++)
		pthread_join(tids[i], NULL);
	for (int i = 0; i < o.threads; i++)
		ops += pairs[i].produced + pairs[i].consumed;
	free(tids);
	free(pairs);
	bench_report(&o, ops, secs);
	return 0;
}
