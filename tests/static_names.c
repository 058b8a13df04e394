/* static_names.c - a static program may use the names hakmem uses inside.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * Built twice, like static_prog.c: tests/static_names links libhakmem.a
 * into the program (the C library stays shared), tests/static_names_full
 * links everything statically (libtool -all-static).
 *
 * The program defines, as globals of its own, names that hakmem's modules
 * use internally: functions pool_init, config_init, os_map, slab_init,
 * fmt_u64, and a variable tls_heap (hakmem's is an initial-exec TLS
 * pointer; this one is a plain int).  In libhakmem.a they are local (see
 * scripts/localize-archive.sh), so the program links, and each side keeps
 * its own: the program's functions return what it defined, and hakmem
 * still serves malloc, in the main thread and in another one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hakmem/hakmem.h>

#ifdef TEST_OVERRIDE
#  define t_malloc(n) malloc(n)
#  define t_free(p)   free(p)
#else
#  define t_malloc(n) hak_malloc(n)
#  define t_free(p)   hak_free(p)
#endif

static int failures;

#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			printf("FAIL: %s:%d: ", __FILE__, __LINE__);          \
			printf(__VA_ARGS__);                                  \
			printf("\n");                                         \
			failures++;                                           \
		}                                                             \
	} while (0)

/* ---- the program's own globals, named as hakmem's internals ---- */

int tls_heap = 4242;

int pool_init(int x)
{
	return x + 1;
}

const char *config_init(void)
{
	return "the program's config_init";
}

void *os_map(size_t n)
{
	return t_malloc(n);
}

int slab_init(void)
{
	return tls_heap;
}

unsigned long long fmt_u64(unsigned long long v)
{
	return v * 2;
}

/* ---- checks ---- */

static void check_ours(void *p, size_t n, const char *what)
{
	CHECK(p != NULL, "%s returned NULL", what);
	if (p == NULL)
		return;
	CHECK(hak_usable_size(p) >= n, "%s: block %p is not hakmem's (usable size %zu)",
	      what, p, hak_usable_size(p));
	memset(p, 0x5a, n);
}

static void *thread_main(void *arg)
{
	void *p = t_malloc(100);

	check_ours(p, 100, "malloc in a thread");
	CHECK(tls_heap == 4242, "tls_heap changed to %d in a thread", tls_heap);
	t_free(arg);
	return p;
}

int main(void)
{
	pthread_t t;
	void *p, *q;

	CHECK(pool_init(41) == 42, "pool_init is not the program's");
	CHECK(strcmp(config_init(), "the program's config_init") == 0,
	      "config_init is not the program's");
	CHECK(fmt_u64(21) == 42, "fmt_u64 is not the program's");
	CHECK(slab_init() == 4242, "slab_init is not the program's");

	p = os_map(1000);
	check_ours(p, 1000, "os_map (the program's, through malloc)");
	check_ours(q = t_malloc(5 << 20), 5 << 20, "malloc(5 MiB)");
	t_free(q);
	CHECK(tls_heap == 4242, "tls_heap changed to %d", tls_heap);
	CHECK(pthread_create(&t, NULL, thread_main, p) == 0, "pthread_create failed");
	CHECK(pthread_join(t, &q) == 0, "pthread_join failed");
	t_free(q);
	tls_heap = 7;
	check_ours(p = t_malloc(24), 24, "malloc after the program set its tls_heap");
	t_free(p);
	CHECK(slab_init() == 7, "the program's tls_heap is not its own");

	if (failures != 0) {
		printf("%d check(s) failed\n", failures);
		return 1;
	}
	printf("PASS: a static program defines hakmem's internal names as its own (hakmem %s)\n",
	       hak_version());
	return 0;
}
