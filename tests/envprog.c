/* envprog.c - a small program for tests/env.sh: it allocates blocks of
 * every tier (through the override when there is one, and through the
 * hak_* API), prints "envprog ok" on standard output and exits 0.  It
 * writes nothing on standard error: whatever appears there is hakmem's.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hakmem/hakmem.h>

int main(void)
{
	static const size_t sizes[] = { 1, 100, 1024, 5000, 32768, 100000, 1 << 20, 3 << 20 };
	void *p[sizeof(sizes) / sizeof(sizes[0])];

	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			p[i] = (i & 1) ? hak_malloc(sizes[i]) : hak_calloc(1, sizes[i]);
			if (p[i] == NULL)
				return 1;
			memset(p[i], (int)i, sizes[i]);
		}
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			hak_free(p[i]);
	}
#ifdef TEST_OVERRIDE
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		void *q = malloc(sizes[i]);
		if (q == NULL)
			return 1;
		memset(q, 1, sizes[i]);
		free(q);
	}
#endif
	printf("envprog ok\n");
	return 0;
}
