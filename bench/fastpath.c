/*
 * fastpath - the cost of one malloc(64) + free pair on an allocator's fast
 * path, for bench/callgrind-fastpath (built and run by that script under
 * callgrind; not part of the automake build).
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * Usage: fastpath single|ring [N]
 *
 *   single  N times p = malloc(64); free(p)
 *   ring    64 live blocks; N times free the oldest and malloc(64) in its
 *           place
 *
 * Both first run a warm-up in main, outside the measured functions
 * (measure_single, measure_ring), which the script names to callgrind's
 * --toggle-collect, so that only the N pairs are counted: thread and heap
 * set-up, lazy symbol binding and the first refill of the size class stay
 * out of the numbers.
 * Only malloc and free are called.  Build with -fno-builtin so that the
 * compiler keeps every call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void measure_single(long n);
void measure_ring(void **ring, long n);

#define SIZE 64
#define RING 64
#define WARMUP 10000

void *volatile sink;

__attribute__((noinline)) void measure_single(long n)
{
	for (long i = 0; i < n; i++) {
		void *p = malloc(SIZE);
		sink = p;
		free(p);
	}
}

__attribute__((noinline)) void measure_ring(void **ring, long n)
{
	for (long i = 0; i < n; i++) {
		unsigned k = (unsigned)i & (RING - 1);
		free(ring[k]);
		ring[k] = malloc(SIZE);
		sink = ring[k];
	}
}

int main(int argc, char **argv)
{
	void *ring[RING];
	long n = argc > 2 ? atol(argv[2]) : 1000000;

	if (argc < 2 || n <= 0 || (strcmp(argv[1], "single") != 0 && strcmp(argv[1], "ring") != 0)) {
		fprintf(stderr, "usage: fastpath single|ring [N]\n");
		return 2;
	}
	if (strcmp(argv[1], "single") == 0) {
		for (int i = 0; i < WARMUP; i++) {
			void *p = malloc(SIZE);
			sink = p;
			free(p);
		}
		measure_single(n);
	} else {
		for (int k = 0; k < RING; k++)
			if ((ring[k] = malloc(SIZE)) == NULL)
				return 1;
		for (int i = 0; i < WARMUP; i++) {
			free(ring[i & (RING - 1)]);
			ring[i & (RING - 1)] = malloc(SIZE);
			sink = ring[i & (RING - 1)];
		}
		measure_ring(ring, n);
		for (int k = 0; k < RING; k++)
			free(ring[k]);
	}
	printf("%s %ld\n", argv[1], n);
	return 0;
}
