/*
 * realloc - buffers that grow: the two ways programs build up data.
 *
 *   double  start at 16 B and double the capacity up to 4 MiB (vectors,
 *           read-the-whole-file loops); the big steps cross every tier,
 *           including the direct-mapped one, where realloc can remap
 *           instead of copying
 *   step    start at 16 B and grow by 1-64 B at a time up to 64 KiB
 *           (string builders, appending lines); most steps should stay
 *           in place inside the size class
 *   MIN-MAX double from MIN (at least 16) up to MAX
 *
 * Each thread keeps BUFFERS buffers and grows a random one per step, so
 * growing buffers interleave in the heap.  A buffer that reached its limit
 * is checked and freed, and the next step on it starts a fresh one.  After
 * each realloc the old contents are checked (first word, old last byte)
 * and the new part is written (one byte per page and the last byte).
 *
 * ops = malloc + realloc + free calls.
 */
#include "common.h"

#define BUFFERS 8

struct config {
	int doubling;
	size_t start, limit;
};

struct buf {
	unsigned char *p;
	size_t n;
	uint64_t stamp;
};

struct worker {
	const struct config *cfg;
	rng_t rng;
	uint64_t ops;
	char pad[BENCH_CACHE_LINE];
};

/* The first word holds the stamp, the last byte its low byte: both must
 * survive every move. */
static void buf_check(const struct buf *b)
{
	uint64_t got;
	memcpy(&got, b->p, sizeof got);
	if (got != b->stamp || b->p[b->n - 1] != (unsigned char)b->stamp)
		bench_die("realloc lost the contents of a %zu-byte buffer", b->n);
}

/* Write the bytes [from, b->n): one per page, and the last one. */
static void buf_touch(struct buf *b, size_t from)
{
	for (size_t off = (from + BENCH_PAGE - 1) & ~(size_t)(BENCH_PAGE - 1);
	     off < b->n; off += BENCH_PAGE)
		b->p[off] = 0x5a;
	b->p[b->n - 1] = (unsigned char)b->stamp;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct config *c = w->cfg;
	struct buf bufs[BUFFERS] = { { 0 } };

	while (!bench_stopped()) {
		struct buf *b = &bufs[rng_below(&w->rng, BUFFERS)];
		if (b->p == NULL) {
			b->n = c->start;
			b->p = bench_check_alloc(malloc(b->n), b->n);
			b->stamp = rng_next(&w->rng);
			memcpy(b->p, &b->stamp, sizeof b->stamp);
			buf_touch(b, sizeof b->stamp);
		} else {
			size_t old = b->n;
			size_t n = c->doubling ? 2 * old
					       : old + rng_range(&w->rng, 1, 64);
			buf_check(b);
			if (n > c->limit) {
				free(b->p);
				b->p = NULL;
			} else {
				b->p = bench_check_alloc(realloc(b->p, n), n);
				b->n = n;
				if (b->p[old - 1] != (unsigned char)b->stamp)
					bench_die("realloc lost byte %zu", old - 1);
				buf_touch(b, old);
			}
		}
		w->ops++;
	}
	for (int i = 0; i < BUFFERS; i++)
		if (bufs[i].p) {
			buf_check(&bufs[i]);
			free(bufs[i].p);
		}
	return NULL;
}

int main(int argc, char **argv)
{
	static const char help[] = "double, step or MIN-MAX";
	struct bench_opts o = { .bench = "realloc", .profile = "double" };
	struct config c;
	struct worker *w;
	pthread_t *tids;
	uint64_t ops = 0;
	double t0, secs;

	bench_parse(&o, argc, argv, help);
	if (o.ranged)
		c = (struct config){ 1, o.min < 16 ? 16 : o.min, o.max };
	else if (strcmp(o.profile, "double") == 0)
		c = (struct config){ 1, 16, (size_t)4 << 20 };
	else if (strcmp(o.profile, "step") == 0)
		c = (struct config){ 0, 16, (size_t)64 << 10 };
	else
		bench_usage(&o, help);

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
