/*
 * phase - a program whose allocation pattern changes phase: the run time
 * is cut into three equal phases, and every thread goes through them in
 * order:
 *
 *   1  mid sizes 2-8 KiB, a small working set: 64 live blocks, each step
 *      frees a random one and allocates a new one
 *   2  bursts of large batches: 1000 blocks of 4-16 KiB allocated, then
 *      all freed, round after round
 *   3  another size band: 400 blocks of 16-32 KiB allocated, then all
 *      freed
 *
 * Made for hakmem's learner (HAKMEM_LEARN=1): the default cache caps fit
 * phase 1 and are too small for the batches of phases 2 and 3.  Every
 * block's first and last bytes are written when allocated and checked
 * before it is freed.  Profiles: "default" as above; "big", batches four
 * times as big (4000 and 1600 blocks: some 500 and 400 per size class,
 * more than the learner's starting cap).  ops = malloc + free calls.
 */
#include "common.h"

struct worker {
	rng_t rng;
	double t0, runtime;
	long scale; /* the batches' size: 1, or 4 for "big" */
	uint64_t ops;
	char pad[BENCH_CACHE_LINE];
};

struct slot {
	unsigned char *p;
	size_t n;
};

static unsigned char *get(rng_t *r, size_t min, size_t max, size_t *n)
{
	*n = rng_range(r, min, max);
	unsigned char *p = bench_check_alloc(malloc(*n), *n);
	uint64_t s = bench_stamp(p, *n);
	p[0] = (unsigned char)s;
	p[*n - 1] = (unsigned char)(s >> 8);
	return p;
}

static void put(struct slot *b)
{
	uint64_t s = bench_stamp(b->p, b->n);
	if (b->p[0] != (unsigned char)s || b->p[b->n - 1] != (unsigned char)(s >> 8))
		bench_die("block %p (%zu bytes) was overwritten", (void *)b->p, b->n);
	free(b->p);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct slot *b = bench_calloc((size_t)(1000 * w->scale), sizeof *b);
	double third = w->runtime / 3;
	/* phase 1 */
	for (int i = 0; i < 64; i++)
		b[i].p = get(&w->rng, 2048, 8192, &b[i].n);
	while (!bench_stopped() && bench_now() - w->t0 < third) {
		for (int k = 0; k < 1000; k++) {
			struct slot *s = &b[rng_below(&w->rng, 64)];
			put(s);
			s->p = get(&w->rng, 2048, 8192, &s->n);
		}
		w->ops += 2000;
	}
	for (int i = 0; i < 64; i++)
		put(&b[i]);
	/* phases 2 and 3 */
	for (int phase = 2; phase <= 3; phase++) {
		long n = (phase == 2 ? 1000 : 400) * w->scale;
		size_t min = phase == 2 ? 4096 : 16385, max = phase == 2 ? 16384 : 32768;
		while (!bench_stopped() && (phase == 3 || bench_now() - w->t0 < 2 * third)) {
			for (long i = 0; i < n; i++)
				b[i].p = get(&w->rng, min, max, &b[i].n);
			for (long i = 0; i < n; i++)
				put(&b[i]);
			w->ops += 2 * (uint64_t)n;
		}
	}
	free(b);
	return NULL;
}

int main(int argc, char **argv)
{
	static const char help[] = "default, big";
	struct bench_opts o = { .bench = "phase", .profile = "default" };
	struct worker *w;
	pthread_t *tids;
	uint64_t ops = 0;
	double t0, secs;

	bench_parse(&o, argc, argv, help);
	long scale = strcmp(o.profile, "default") == 0 ? 1 : strcmp(o.profile, "big") == 0 ? 4 : 0;
	if (o.ranged || scale == 0)
		bench_usage(&o, help);
	w = bench_calloc((size_t)o.threads, sizeof *w);
	tids = bench_calloc((size_t)o.threads, sizeof *tids);
	t0 = bench_now();
	for (int i = 0; i < o.threads; i++) {
		rng_seed(&w[i].rng, o.seed, (uint64_t)i);
		w[i].t0 = t0;
		w[i].runtime = o.runtime;
		w[i].scale = scale;
	}
	for (int i = 0; i < o.threads; i++)
		bench_spawn(&tids[i], worker_main, &w[i]);
	secs = bench_run_for(t0, o.runtime);
	for (int i = 0; i < o.threads; i++) {
		pthread_join(tids[i], NULL);
		ops += w[i].ops;
	}
	free(tids);
	free(w);
	bench_report(&o, ops, secs);
	return 0;
}
