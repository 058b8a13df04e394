/*
 * batch - each thread allocates a batch of blocks, then frees all of them,
 * round after round.
 *
 * Models programs that build a structure and tear it down again: a parse
 * tree per request, the buffers of a frame, the nodes of a graph per
 * iteration.  Every round frees the whole batch, so what an allocator does
 * with memory that has just become free (keep it for the next round, or
 * give it back to the kernel and fault it in again) decides the result
 * once the batch outgrows its caches.  Every block's first and last bytes
 * are written when allocated and checked before the block is freed, in
 * allocation order.
 *
 *   small  16-64 B,        100000 blocks per round (about 4 MiB)
 *   mid    4-16 KiB,         3000 blocks per round (about 30 MiB)
 *   huge   2-4 MiB,            20 blocks per round (about 60 MiB)
 *   MIN-MAX  uniform in [MIN, MAX], 32 MiB per round (16 to 200000 blocks)
 *
 * -w N sets the blocks per round.  ops = malloc + free calls.
 */
#include "common.h"

#define BATCH_BYTES ((size_t)32 << 20)

struct worker {
	size_t min, max;
	long blocks;
	rng_t rng;
	uint64_t ops;
	char pad[BENCH_CACHE_LINE];
};

struct slot {
	unsigned char *p;
	size_t n;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct slot *b = bench_calloc((size_t)w->blocks, sizeof *b);

	while (!bench_stopped()) {
		for (long i = 0; i < w->blocks; i++) {
			size_t n = rng_range(&w->rng, w->min, w->max);
			unsigned char *p = bench_check_alloc(malloc(n), n);
			uint64_t s = bench_stamp(p, n);
			p[0] = (unsigned char)s;
			p[n - 1] = (unsigned char)(s >> 8);
			b[i].p = p;
			b[i].n = n;
		}
		for (long i = 0; i < w->blocks; i++) {
			uint64_t s = bench_stamp(b[i].p, b[i].n);
			if (b[i].p[0] != (unsigned char)s || b[i].p[b[i].n - 1] != (unsigned char)(s >> 8))
				bench_die("block %p (%zu bytes) was overwritten", (void *)b[i].p, b[i].n);
			free(b[i].p);
		}
		w->ops += 2 * (uint64_t)w->blocks;
	}
	free(b);
	return NULL;
}

int main(int argc, char **argv)
{
	static const char help[] = "small, mid, huge or MIN-MAX";
	struct bench_opts o = { .bench = "batch", .profile = "small" };
	struct worker *w;
	pthread_t *tids;
	size_t min, max;
	long blocks;
	uint64_t ops = 0;
	double t0, secs;

	bench_parse(&o, argc, argv, help);
	if (o.ranged) {
		min = o.min, max = o.max;
		blocks = (long)(BATCH_BYTES / ((min + max) / 2));
		blocks = blocks < 16 ? 16 : blocks > 200000 ? 200000 : blocks;
	} else if (strcmp(o.profile, "small") == 0) {
		min = 16, max = 64, blocks = 100000;
	} else if (strcmp(o.profile, "mid") == 0) {
		min = 4096, max = 16384, blocks = 3000;
	} else if (strcmp(o.profile, "huge") == 0) {
		min = (size_t)2 << 20, max = (size_t)4 << 20, blocks = 20;
	} else {
		bench_usage(&o, help);
	}
	if (o.slots)
		blocks = o.slots;
	w = bench_calloc((size_t)o.threads, sizeof *w);
	tids = bench_calloc((size_t)o.threads, sizeof *tids);
	for (int i = 0; i < o.threads; i++) {
		w[i].min = min;
		w[i].max = max;
		w[i].blocks = blocks;
		rng_seed(&w[i].rng, o.seed, (uint64_t)i);
	}
	t0 = bench_now();
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
