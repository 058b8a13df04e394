/*
 * bigblocks - a few big buffers, replaced at random (issue #12's shape).
 *
 * Each thread keeps SLOTS blocks (-w, default 20) of random sizes in the
 * profile's range and replaces a random one REPLACE times
 * ($BIGBLOCKS_REPLACE, default 200): free it, calloc a new one of a new
 * random size, write one byte per page (so the pages are really there),
 * check the stamp of the block it frees next time.  The work is fixed,
 * not the time (-t is ignored): the same seed gives every allocator the
 * same sizes in the same order, so the peak of live data is the same and
 * peak RSS compares; secs is the time the threads took.  Programs that hold decoded images, network buffers or
 * matrices do this; an allocator that maps and faults every new block
 * pays for it in kernel time, one that reuses freed memory (even of
 * another size) does not.
 *
 * Profiles: big = 5-25 MiB (the default), huge = 1-4 MiB, or MIN-MAX in
 * bytes.  ops = calloc + free calls (two per replacement).
 */
#include "common.h"

#define MiB ((size_t)1 << 20)

struct slot {
	unsigned char *p;
	size_t n;
	uint64_t stamp;
};

struct worker {
	size_t min, max;
	long slots, replace;
	rng_t rng;
	uint64_t ops;
	char pad[BENCH_CACHE_LINE];
};

static void slot_new(struct worker *w, struct slot *s)
{
	s->n = rng_range(&w->rng, w->min, w->max);
	s->p = bench_check_alloc(calloc(1, s->n), s->n);
	if (s->p[s->n / 2] != 0 || s->p[s->n - 1] != 0)
		bench_die("calloc of %zu bytes not zero-filled", s->n);
	s->stamp = bench_stamp(s->p, s->n);
	block_fill(s->p, s->n, s->stamp);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct slot *s = bench_calloc((size_t)w->slots, sizeof *s);
	uint64_t ops = 0;

	for (long i = 0; i < w->slots; i++)
		slot_new(w, &s[i]);
	for (long k = 0; k < w->replace; k++) {
		struct slot *v = &s[rng_below(&w->rng, (uint64_t)w->slots)];
		block_check(v->p, v->n, v->stamp);
		free(v->p);
		slot_new(w, v);
		ops += 2;
	}
	for (long i = 0; i < w->slots; i++) {
		block_check(s[i].p, s[i].n, s[i].stamp);
		free(s[i].p);
	}
	free(s);
	w->ops = ops;
	return NULL;
}

int main(int argc, char **argv)
{
	static const char help[] = "big (5-25 MiB), huge (1-4 MiB), or MIN-MAX";
	struct bench_opts o = { .bench = "bigblocks", .profile = "big" };
	struct worker *w;
	pthread_t *tids;
	uint64_t ops = 0;
	double t0, secs;

	const char *r = getenv("BIGBLOCKS_REPLACE");
	long replace = r && *r ? atol(r) : 200;

	bench_parse(&o, argc, argv, help);
	if (replace < 1)
		bench_usage(&o, help);
	if (!o.ranged) {
		if (strcmp(o.profile, "big") == 0) {
			o.min = 5 * MiB;
			o.max = 25 * MiB;
		} else if (strcmp(o.profile, "huge") == 0) {
			o.min = MiB + 1;
			o.max = 4 * MiB;
		} else {
			bench_usage(&o, help);
		}
	}
	w = bench_calloc((size_t)o.threads, sizeof *w);
	tids = bench_calloc((size_t)o.threads, sizeof *tids);
	for (int i = 0; i < o.threads; i++) {
		w[i].min = o.min;
		w[i].max = o.max;
		w[i].slots = o.slots ? o.slots : 20;
		w[i].replace = replace;
		rng_seed(&w[i].rng, o.seed, (uint64_t)i);
	}
	t0 = bench_now();
	for (int i = 0; i < o.threads; i++)
		bench_spawn(&tids[i], worker_main, &w[i]);
	for (int i = 0; i < o.threads; i++) {
		pthread_join(tids[i], NULL);
		ops += w[i].ops;
	}
	secs = bench_now() - t0;
	free(tids);
	free(w);
	bench_report(&o, ops, secs);
	return 0;
}
