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
 *
 * With the override, it also calls the rest of glibc's malloc.o -
 * malloc_trim, mallopt, mallinfo, mallinfo2, malloc_stats, malloc_info,
 * __libc_mallopt, __libc_mallinfo.  libhakmem.a defines them; if it did
 * not, the full static link would take glibc's malloc.o out of libc.a for
 * them, and its malloc with it ("multiple definition of malloc"), and the
 * link with the C library shared would call glibc's versions, which know
 * nothing of hakmem's memory.  The checks are those of man 3 hakmem
 * (OVERRIDE); tests/check_extras.c has more.  main() re-executes the
 * program with HAKMEM_PURGE_DELAY_MS=3600000, so that only malloc_trim
 * gives memory back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

#ifdef TEST_OVERRIDE
/* glibc's names for two of them; <malloc.h> does not declare them. */
int __libc_mallopt(int param, int value);
struct mallinfo __libc_mallinfo(void);

/* mallinfo is deprecated in glibc's <malloc.h> (its fields are int). */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static struct hak_stats stats(void)
{
	struct hak_stats st;

	CHECK(hak_stats_get(&st) == 0, "hak_stats_get failed");
	return st;
}

/* The text FILE f holds, in buf (NUL-terminated); its length. */
static size_t slurp(FILE *f, char *buf, size_t cap)
{
	size_t n;

	fflush(f);
	rewind(f);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	return n;
}

static void check_glibc_extras(void)
{
	struct hak_stats s0, s1;
	struct mallinfo2 mi2;
	struct mallinfo mi;
	static char text[1 << 16];
	void *blk[500], *huge;
	FILE *f;
	int fd2;

	/* malloc_trim: 1 when memory went back, 0 when there was none. */
	for (int i = 0; i < 500; i++) {
		check_ours(blk[i] = malloc(16000), 16000, "malloc(16000)");
	}
	check_ours(huge = malloc(8 << 20), 8 << 20, "malloc(8 MiB)");
	for (int i = 0; i < 500; i++)
		free(blk[i]);
	free(huge);
	s0 = stats();
	CHECK(malloc_trim(0) == 1, "malloc_trim(0) after freeing 16 MiB did not return 1");
	s1 = stats();
	CHECK(s1.os_purged > s0.os_purged || s1.os_unmap_calls > s0.os_unmap_calls,
	      "malloc_trim(0) gave nothing back: purged %llu -> %llu, munmaps %llu -> %llu",
	      (unsigned long long)s0.os_purged, (unsigned long long)s1.os_purged,
	      (unsigned long long)s0.os_unmap_calls, (unsigned long long)s1.os_unmap_calls);
	/* A call may leave what empties during it (a slab) to the next one:
	 * a few more give all back, then one returns 0 and gives nothing. */
	for (int i = 0; i < 4; i++) {
		int r;

		s0 = stats();
		r = malloc_trim(0);
		s1 = stats();
		CHECK(r == (s1.os_purged != s0.os_purged || s1.os_unmap_calls != s0.os_unmap_calls),
		      "malloc_trim(0) returned %d; purged %llu -> %llu, munmaps %llu -> %llu", r,
		      (unsigned long long)s0.os_purged, (unsigned long long)s1.os_purged,
		      (unsigned long long)s0.os_unmap_calls, (unsigned long long)s1.os_unmap_calls);
		if (r == 0)
			break;
		CHECK(i < 3, "malloc_trim(0) gave memory back 4 times in a row");
	}
	CHECK(malloc_trim(0) == 0, "malloc_trim(0) with nothing to give back did not return 0");

	/* mallopt: accepted, ignored; 0 only where glibc refuses. */
	CHECK(mallopt(M_MMAP_THRESHOLD, 4096) == 1, "mallopt(M_MMAP_THRESHOLD) != 1");
	CHECK(mallopt(M_MXFAST, 64) == 1, "mallopt(M_MXFAST, 64) != 1");
	CHECK(mallopt(M_MXFAST, 1000) == 0, "mallopt(M_MXFAST, 1000) != 0");
	CHECK(__libc_mallopt(M_ARENA_MAX, 1) == 1, "__libc_mallopt(M_ARENA_MAX) != 1");
	s0 = stats();
	check_ours(blk[0] = malloc(100000), 100000, "malloc(100000) after mallopt");
	s1 = stats();
	CHECK(s1.huge_allocs == s0.huge_allocs, "M_MMAP_THRESHOLD was not ignored");
	free(blk[0]);

	/* mallinfo2, mallinfo, __libc_mallinfo: hakmem's numbers. */
	check_ours(huge = malloc(4 << 20), 4 << 20, "malloc(4 MiB)");
	s0 = stats();
	mi2 = mallinfo2();
	mi = mallinfo();
	s1 = stats();
	CHECK(mi2.arena == s0.os_mapped && s0.os_mapped == s1.os_mapped,
	      "mallinfo2().arena %zu, os_mapped %llu", mi2.arena,
	      (unsigned long long)s0.os_mapped);
	CHECK(mi2.usmblks == s0.os_mapped_peak, "mallinfo2().usmblks %zu, os_mapped_peak %llu",
	      mi2.usmblks, (unsigned long long)s0.os_mapped_peak);
	CHECK(mi2.hblks == s0.huge_allocs - s0.huge_frees && mi2.hblks >= 1,
	      "mallinfo2().hblks %zu with a 4 MiB block live", mi2.hblks);
	CHECK(mi2.ordblks == s0.segments_cached, "mallinfo2().ordblks %zu, segments_cached %llu",
	      mi2.ordblks, (unsigned long long)s0.segments_cached);
	CHECK(mi2.uordblks + mi2.fordblks == mi2.arena, "uordblks + fordblks != arena");
	CHECK(mi2.smblks == 0 && mi2.hblkhd == 0 && mi2.fsmblks == 0 && mi2.keepcost == 0,
	      "mallinfo2: a field documented as 0 is not");
	CHECK((size_t)mi.arena == (mi2.arena > INT_MAX ? INT_MAX : mi2.arena),
	      "mallinfo().arena %d, mallinfo2().arena %zu", mi.arena, mi2.arena);
	CHECK((size_t)mi.hblks == mi2.hblks, "mallinfo().hblks %d", mi.hblks);
	mi = __libc_mallinfo();
	CHECK((size_t)mi.hblks == mi2.hblks, "__libc_mallinfo().hblks %d", mi.hblks);
	free(huge);

	/* malloc_stats: hakmem's statistics on standard error. */
	f = tmpfile();
	CHECK(f != NULL, "tmpfile failed");
	if (f == NULL)
		return;
	fflush(stderr);
	fd2 = dup(2);
	dup2(fileno(f), 2);
	malloc_stats();
	dup2(fd2, 2);
	close(fd2);
	slurp(f, text, sizeof(text));
	CHECK(strncmp(text, "hakmem statistics (version ", 27) == 0 &&
	      strstr(text, "\n  mapped ") != NULL,
	      "malloc_stats wrote \"%.60s\"", text);

	/* malloc_info: an XML document; EINVAL for options other than 0. */
	rewind(f);
	CHECK(ftruncate(fileno(f), 0) == 0, "ftruncate failed");
	CHECK(malloc_info(1, f) == EINVAL, "malloc_info(1, f) != EINVAL");
	CHECK(slurp(f, text, sizeof(text)) == 0, "malloc_info(1, f) wrote \"%.60s\"", text);
	rewind(f);
	CHECK(malloc_info(0, f) == 0, "malloc_info(0, f) != 0");
	slurp(f, text, sizeof(text));
	CHECK(strncmp(text, "<malloc version=\"1\" allocator=\"hakmem\" ", 39) == 0 &&
	      strstr(text, "<hakmem name=\"os_mapped\" value=\"") != NULL &&
	      strstr(text, "</malloc>\n") != NULL,
	      "malloc_info(0, f) wrote \"%.200s\"", text);
	fclose(f);
}
#endif

int main(int argc, char **argv)
{
	pthread_t t;
	void *p, *q;

	(void)argc;
	if (getenv("HAKMEM_PURGE_DELAY_MS") == NULL) {
		setenv("HAKMEM_PURGE_DELAY_MS", "3600000", 1);
		execv("/proc/self/exe", argv);
		perror("static_names: re-executing with HAKMEM_PURGE_DELAY_MS set");
		return 1;
	}

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

#ifdef TEST_OVERRIDE
	check_glibc_extras();
#endif

	if (failures != 0) {
		printf("%d check(s) failed\n", failures);
		return 1;
	}
	printf("PASS: a static program defines hakmem's internal names as its own (hakmem %s)\n",
	       hak_version());
	return 0;
}
