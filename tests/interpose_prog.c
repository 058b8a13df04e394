/* interpose_prog.c - a program built against the C library alone, for
 * tests/interpose.sh.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * It is not linked with hakmem: its references to malloc and the rest are
 * bound to the C library's versioned names (malloc@GLIBC_2.2.5 on x86-64),
 * as in any program a distribution ships.  It allocates through the
 * family and asks, through dlsym, whether a hak_usable_size is loaded and
 * recognises each block (it returns 0 for a pointer hakmem did not hand
 * out).  Usage:
 *
 *   interpose_prog hakmem   every block must be hakmem's (run it with
 *                           LD_PRELOAD=libhakmem.so)
 *   interpose_prog libc     hakmem must not be loaded at all
 *
 * It prints one line per function and exits 0 when all agree, 1 if not.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__libc_malloc(size_t n);
void __libc_free(void *p);

static size_t (*usable)(const void *);
static int want_hakmem, failures;

static void verdict(const char *what, void *p, size_t n)
{
	int ours = p != NULL && usable != NULL && usable(p) >= n;
	printf("%-20s %s\n", what, ours ? "hakmem" : "not hakmem");
	if (ours != want_hakmem)
		failures++;
}

int main(int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "hakmem") != 0 && strcmp(argv[1], "libc") != 0)) {
		fprintf(stderr, "usage: %s hakmem|libc\n", argv[0]);
		return 2;
	}
	want_hakmem = strcmp(argv[1], "hakmem") == 0;
	usable = (size_t (*)(const void *))dlsym(RTLD_DEFAULT, "hak_usable_size");
	if (!want_hakmem && usable != NULL) {
		printf("hak_usable_size is loaded: hakmem was not meant to be\n");
		return 1;
	}

	void *p = malloc(100);
	verdict("malloc", p, 100);
	free(p);
	p = calloc(10, 10);
	verdict("calloc", p, 100);
	p = realloc(p, 5000);
	verdict("realloc", p, 5000);
	free(p);
	p = NULL;
	if (posix_memalign(&p, 256, 300) != 0)
		p = NULL;
	verdict("posix_memalign", p, 300);
	free(p);
	p = aligned_alloc(64, 128);
	verdict("aligned_alloc", p, 128);
	free(p);
	p = memalign(4096, 100);
	verdict("memalign", p, 100);
	free(p);
	p = valloc(100);
	verdict("valloc", p, 100);
	free(p);
	p = __libc_malloc(100);
	verdict("__libc_malloc", p, 100);
	__libc_free(p);
	/* malloc_usable_size of a block: hakmem's answers from the block's
	 * slab; both agree only if it is hakmem's too */
	p = malloc(100);
	int same = usable != NULL && malloc_usable_size(p) == usable(p);
	printf("%-20s %s\n", "malloc_usable_size", same ? "hakmem" : "not hakmem");
	if (want_hakmem && !same)
		failures++;
	free(p);
	/* the C library's own calls into malloc (strdup) */
	p = strdup("interpose");
	verdict("strdup", p, 10);
	free(p);
	return failures ? 1 : 0;
}
