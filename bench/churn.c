/*
 * churn - each thread allocates and frees its own blocks at random over a
 * bounded working set; the profile picks the size mix:
 *
 *   tiny   8 B - 1 KiB          (hakmem's tiny tier)
 *   mid    1 KiB+1 - 32 KiB     (pool tier)
 *   large  32 KiB+1 - 1 MiB     (large tier)
 *   mixed  75% 8-128 B, 15% 129 B-1 KiB, 8% mid, 2% large; one allocation
 *          in eight is a calloc
 *   MIN-MAX  uniform in [MIN, MAX]
 *
 * Models the common case of a program whose threads mostly free what they
 * allocated: the thread-local fast paths.  The live set of a thread swings
 * between full (the slot array) and one eighth of it: while growing, three
 * steps in four allocate; while shrinking, one in four.  Frees hit a random
 * live block, so the free order is not the allocation order and the
 * allocator's reuse and return of memory both get exercised.  Every block
 * is written when allocated and checked before it is freed.
 *
 * Slots per thread (-w): default 16 MiB divided by the mean size, clamped
 * to [32, 8192].  ops = malloc + calloc + free calls.
 */
#include "common.h"

#define WORKING_BYTES ((size_t)16 << 20)

enum mix { MIX_RANGE, MIX_MIXED };

struct config {
	enum mix mix;
	size_t min, max;
	long slots;
};

struct slot {
	void *p;
	size_t n;
};

struct worker {
	const struct config *cfg;
	rng_t rng;
	uint64_t ops;
	char pad[BENCH_CACHE_LINE];
};

static size_t pick_size(const struct config *c, rng_t *r)
{
	uint64_t u;
	if (c->mix == MIX_RANGE)
		return rng_range(r, c->min, c->max);
	u = rng_below(r, 100);
	if (u < 75)
		return rng_range(r, 8, 128);
	if (u < 90)
		return rng_range(r, 129, 1024);
	if (u < 98)
		return rng_range(r, 1025, 32768);
	return rng_range(r, 32769, 1048576);
}

static void *allocate(const struct config *c, rng_t *r, size_t n)
{
	void *p;
	if (c->mix == MIX_MIXED && rng_below(r, 8) == 0) {
		p = bench_calloc(1, n);
		if (((unsigned char *)p)[n - 1] != 0)
			bench_die("calloc(1, %zu) returned dirty memory", n);
	} else {
		p = bench_check_alloc(malloc(n), n);
	}
	block_fill(p, n, bench_stamp(p, n));
	return p;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct config *c = w->cfg;
	struct slot *slots = bench_calloc((size_t)c->slots, sizeof *slots);
	long live = 0, low = c->slots / 8;
	int growing = 1;

	while (!bench_stopped()) {
		int alloc;
		if (live == 0)
			alloc = 1;
		else if (live == c->slots)
			alloc = 0;
		else
			alloc = rng_below(&w->rng, 4) < (growing ? 3u : 1u);
		if (alloc) {
			size_t n = pick_size(c, &w->rng);
			slots[live].p = allocate(c, &w->rng, n);
			slots[live].n = n;
			live++;
		} else {
			long k = (long)rng_below(&w->rng, (uint64_t)live);
			block_check(slots[k].p, slots[k].n,
				    bench_stamp(slots[k].p, slots[k].n));
			free(slots[k].p);
			slots[k] = slots[--live];
		}
		w->ops++;
		if (live == c->slots)
			growing = 0;
		else if (live <= low)
			growing = 1;
	}
	while (live > 0) {
		live--;
		block_check(slots[live].p, slots[live].n,
			    bench_stamp(slots[live].p, slots[live].n));
		free(slots[live].p);
	}
	free(slots);
	return NULL;
}

int main(int argc, char **argv)
{
	static const char help[] = "tiny, mid, large, mixed or MIN-MAX";
	struct bench_opts o = { .bench = "churn", .profile = "tiny" };
	struct config c = { .mix = MIX_RANGE };
	struct worker *w;
	pthread_t *tids;
	size_t mean;
	uint64_t ops = 0;
	double t0, secs;

	bench_parse(&o, argc, argv, help);
	if (o.ranged) {
		c.min = o.min;
		c.max = o.max;
	} else if (strcmp(o.profile, "tiny") == 0) {
		c.min = 8, c.max = 1024;
	} else if (strcmp(o.profile, "mid") == 0) {
		c.min = 1025, c.max = 32768;
	} else if (strcmp(o.profile, "large") == 0) {
		c.min = 32769, c.max = 1048576;
	} else if (strcmp(o.profile, "mixed") == 0) {
		c.mix = MIX_MIXED;
	} else {
		bench_usage(&o, help);
	}
	/* mean of the mixed distribution: .75*68 + .15*576 + .08*16896
	 * + .02*540672 ~= 12.3 KiB */
	mean = c.mix == MIX_MIXED ? 12300 : (c.min + c.max) / 2;
	c.slots = o.slots ? o.slots : (long)(WORKING_BYTES / mean);
	if (!o.slots)
		c.slots = c.slots < 32 ? 32 : c.slots > 8192 ? 8192 : c.slots;

	w = bench_calloc((size_t)o.threads, sizeof *w);
	tids = bench_calloc((size_t)o.threads, sizeof *tids);
	t0 = bench_now();
	for (int i = 0; i < o.threads; i++) {
		w[i].cfg = &c;
		rng_seed(&w[i].rng, o.seed, (uint64_t)i);
		bench_spawn(&tids[i], worker_main, &w[i]);
	}
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
