/*
 * larson - the Larson-Krishnan server workload.
 *
 * Models a server whose worker threads come and go: each of the -n lanes
 * owns an array of slots, filled before the clock starts.  A thread of a
 * lane replaces random slots (free the old block, allocate a new one of
 * random size in [MIN, MAX], write it) for one round of ROUND_OPS
 * replacements, then starts a fresh thread that inherits the array, and
 * exits.  Each new thread thus frees the blocks of a thread that has
 * died (about DEFAULT_SLOTS of them per round) besides its own: this
 * measures the cross-thread free path, what the allocator does with the
 * memory and caches of exiting threads, and thread start-up.
 *
 * The hand-over waits for the new thread to be scheduled, so on a machine
 * busy with other work larson loses more than the other workloads.
 *
 * ops = malloc + free calls (two per replacement).
 */
#include "common.h"

#define ROUND_OPS 20000     /* replacements per thread before it hands over */
#define DEFAULT_SLOTS 1000  /* slots per lane */

struct slot {
	void *p;
	size_t n;
};

struct lane {
	struct slot *slots;
	long nslots;
	size_t min, max;
	rng_t rng;
	uint64_t ops;
	pthread_t prev;     /* the thread that handed the lane over */
	int has_prev;
	pthread_t last;     /* the lane's final thread, joined by main */
	atomic_int done;
	char pad[BENCH_CACHE_LINE]; /* keep lanes off each other's lines */
};

static void *lane_thread(void *arg)
{
	struct lane *l = arg;
	pthread_t next;

	if (l->has_prev)
		pthread_join(l->prev, NULL);
	for (int i = 0; i < ROUND_OPS && !bench_stopped(); i++) {
		struct slot *s = &l->slots[rng_below(&l->rng, (uint64_t)l->nslots)];
		size_t n = rng_range(&l->rng, l->min, l->max);
		block_check(s->p, s->n, bench_stamp(s->p, s->n));
		free(s->p);
		s->p = bench_check_alloc(malloc(n), n);
		s->n = n;
		block_fill(s->p, n, bench_stamp(s->p, n));
		l->ops += 2;
	}
	if (bench_stopped()) {
		l->last = pthread_self();
		atomic_store(&l->done, 1);
		return NULL;
	}
	l->prev = pthread_self();
	l->has_prev = 1;
	bench_spawn(&next, lane_thread, l);
	return NULL;
}

int main(int argc, char **argv)
{
	struct bench_opts o = { .bench = "larson", .profile = "8-1024" };
	struct lane *lanes;
	uint64_t ops = 0;
	double t0, secs;

	bench_parse(&o, argc, argv, "MIN-MAX (e.g. 8-128, 8-1024, 2048-32768)");
	if (!o.ranged)
		bench_usage(&o, "MIN-MAX (e.g. 8-128, 8-1024, 2048-32768)");

	lanes = bench_calloc((size_t)o.threads, sizeof *lanes);
	for (int i = 0; i < o.threads; i++) {
		struct lane *l = &lanes[i];
		l->nslots = o.slots ? o.slots : DEFAULT_SLOTS;
		l->min = o.min;
		l->max = o.max;
		rng_seed(&l->rng, o.seed, (uint64_t)i);
		l->slots = bench_calloc((size_t)l->nslots, sizeof *l->slots);
		for (long k = 0; k < l->nslots; k++) {
			size_t n = rng_range(&l->rng, o.min, o.max);
			l->slots[k].p = bench_check_alloc(malloc(n), n);
			l->slots[k].n = n;
			block_fill(l->slots[k].p, n, bench_stamp(l->slots[k].p, n));
		}
	}

	t0 = bench_now();
	for (int i = 0; i < o.threads; i++) {
		pthread_t t;
		bench_spawn(&t, lane_thread, &lanes[i]);
	}
	secs = bench_run_for(t0, o.runtime);
	for (int i = 0; i < o.threads; i++) {
		while (!atomic_load(&lanes[i].done))
			bench_sleep(0.0002);
		pthread_join(lanes[i].last, NULL);
		ops += lanes[i].ops;
	}

	for (int i = 0; i < o.threads; i++) {
		for (long k = 0; k < lanes[i].nslots; k++) {
			struct slot *s = &lanes[i].slots[k];
			block_check(s->p, s->n, bench_stamp(s->p, s->n));
			free(s->p);
		}
		free(lanes[i].slots);
	}
	free(lanes);
	bench_report(&o, ops, secs);
	return 0;
}
