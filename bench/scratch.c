/*
 * scratch - passive false sharing (in the spirit of Hoard's cache-scratch).
 *
 * The main thread allocates one small object per worker, back to back, so
 * neighbouring objects likely share a cache line, and hands object i to
 * worker i.  Each worker frees the object it was given, then loops:
 * allocate an object of the same size, write every byte of it WRITES
 * times, free it.  An allocator that gives a worker back the block it just
 * freed (a block carved from the main thread's line) makes the workers
 * fight over one cache line on every write; one that serves each thread
 * from its own memory does not.  With one worker there is nothing to share:
 * the numbers then show the plain write loop plus malloc/free.
 *
 * Profile: SIZE (or MIN-MAX: every object is MIN bytes), default 8.
 * ops = malloc + free calls (two per object).
 */
#include "common.h"

#define WRITES 100 /* passes over each object */

struct worker {
	void *given;
	size_t size;
	uint64_t ops;
	char pad[BENCH_CACHE_LINE];
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t objs = 0;

	free(w->given);
	while (!bench_stopped()) {
		volatile unsigned char *p = bench_check_alloc(malloc(w->size),
							      w->size);
		for (int r = 0; r < WRITES; r++)
			for (size_t j = 0; j < w->size; j++)
				p[j] = (unsigned char)(p[j] + r);
		free((void *)p);
		objs++;
	}
	w->ops = 2 * objs;
	return NULL;
}

int main(int argc, char **argv)
{
	static const char help[] = "SIZE (e.g. 8)";
	struct bench_opts o = { .bench = "scratch", .profile = "8" };
	struct worker *w;
	pthread_t *tids;
	uint64_t ops = 0;
	double t0, secs;

	bench_parse(&o, argc, argv, help);
	if (!o.ranged)
		bench_usage(&o, help);
	w = bench_calloc((size_t)o.threads, sizeof *w);
	tids = bench_calloc((size_t)o.threads, sizeof *tids);
	for (int i = 0; i < o.threads; i++) {
		w[i].size = o.min;
		w[i].given = bench_check_alloc(malloc(o.min), o.min);
		memset(w[i].given, 0, o.min);
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
