/* static_prog.c - the override in a statically linked program.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * Built twice: tests/static_link links libhakmem.a into the program (the C
 * library stays shared), tests/static_link_full links everything
 * statically, the C library included (libtool -all-static).  Either way
 * malloc and the rest of the family, also when the C library calls them
 * itself (strdup, getline), must be hakmem's: hakmem recognises the blocks
 * (hak_usable_size > 0) and counts the huge ones.
 *
 * Its constructor runs before hakmem's (the program's objects come first
 * in .init_array) and allocates one block of every size class
 * (early_probe.h); tests/early.sh runs the programs from a long path too,
 * where a fully static glibc allocates the path before any constructor.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hakmem/hakmem.h>

#include "early_probe.h"

static int failures;
static int early_failures = -1;

__attribute__((constructor)) static void early_ctor(void)
{
	early_failures = early_probe();
}

#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			printf("FAIL: %s:%d: ", __FILE__, __LINE__);          \
			printf(__VA_ARGS__);                                  \
			printf("\n");                                         \
			failures++;                                           \
		}                                                             \
	} while (0)

static void check_ours(void *p, size_t n, const char *what)
{
	CHECK(p != NULL, "%s returned NULL", what);
	if (p == NULL)
		return;
	CHECK(hak_usable_size(p) >= n, "%s: block %p is not hakmem's (usable size %zu)",
	      what, p, hak_usable_size(p));
	memset(p, 0x33, n);
}

static void *thread_main(void *arg)
{
	void *p = malloc(1000);

	check_ours(p, 1000, "malloc in a thread");
	free(arg);      /* freed in another thread than it was allocated in */
	return p;
}

int main(void)
{
	struct hak_stats s0, s1;
	void *p, *q;
	pthread_t t;

	CHECK(early_failures == 0, "allocations before hakmem's constructor: %d failure(s)%s",
	      early_failures, early_failures < 0 ? " (the constructor did not run)" : "");
	CHECK(hak_stats_get(&s0) == 0, "hak_stats_get failed");
	p = malloc(4 << 20);
	check_ours(p, 4 << 20, "malloc(4 MiB)");
	CHECK(hak_stats_get(&s1) == 0, "hak_stats_get failed");
	CHECK(s1.huge_allocs == s0.huge_allocs + 1,
	      "malloc(4 MiB) was not served by hakmem: huge_allocs %llu -> %llu",
	      (unsigned long long)s0.huge_allocs, (unsigned long long)s1.huge_allocs);
	free(p);

	check_ours(p = malloc(100), 100, "malloc(100)");
	check_ours(q = calloc(10, 10), 100, "calloc");
	free(q);
	check_ours(p = realloc(p, 50000), 50000, "realloc");
	check_ours(p = reallocarray(p, 3, 1000), 3000, "reallocarray");
	free(p);
	p = NULL;
	CHECK(posix_memalign(&p, 4096, 100) == 0, "posix_memalign failed");
	check_ours(p, 100, "posix_memalign");
	free(p);
	check_ours(p = aligned_alloc(64, 640), 640, "aligned_alloc");
	free(p);
	check_ours(p = memalign(256, 10), 10, "memalign");
	free(p);
	check_ours(p = valloc(10), 10, "valloc");
	free(p);
	check_ours(p = pvalloc(10), 10, "pvalloc");
	free(p);
	CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) != 0");

	/* The C library's own allocations. */
	char *s = strdup("statically linked");
	check_ours(s, 18, "strdup");
	free(s);
	FILE *f = fopen("/proc/self/maps", "r");
	CHECK(f != NULL, "fopen failed");
	if (f != NULL) {
		char *line = NULL;
		size_t cap = 0;
		int lines = 0;

		while (getline(&line, &cap, f) > 0)
			lines++;
		CHECK(lines > 0, "no lines read");
		check_ours(line, cap, "getline's buffer");
		free(line);
		fclose(f);
	}

	/* Threads. */
	q = malloc(777);
	check_ours(q, 777, "malloc(777)");
	CHECK(pthread_create(&t, NULL, thread_main, q) == 0, "pthread_create failed");
	CHECK(pthread_join(t, &p) == 0, "pthread_join failed");
	free(p);

	volatile size_t too_big = SIZE_MAX / 2;
	errno = 0;
	CHECK(malloc(too_big) == NULL && errno == ENOMEM, "malloc(SIZE_MAX / 2) did not fail");

	if (failures != 0) {
		printf("%d check(s) failed\n", failures);
		return 1;
	}
	printf("PASS: malloc is hakmem's in a statically linked program (hakmem %s)\n",
	       hak_version());
	return 0;
}
