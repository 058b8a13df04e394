/* badfree_prog.c - a program with one memory bug, chosen by argv[1], for
 * tests/badfree.sh.  Linked without hakmem; the script preloads it.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * Each case makes one bad call (a double free, a free of a pointer that
 * is not the start of a block, a realloc of a freed block).  Where hakmem
 * stops the program (HAKMEM_ON_ERROR=abort, the default), the call does
 * not return.  Where it goes on (warn, ignore), the program then checks
 * what matters: that no later allocation hands out memory that a live
 * pointer still holds.  It allocates many blocks of the same size, fills
 * each with its own pattern, and checks every pattern, and the live
 * blocks', at the end: two blocks handed out twice, or a live block given
 * away, overwrite each other.  Prints "ok" and exits 0 when all is well,
 * "CORRUPT ..." and exits 1 when not.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NCHECK 2000 /* blocks allocated after the bad call */

/* The compiler must not see through the pointers (it would warn of the
 * bug, or drop a call). */
static void *volatile sink;

static void *hide(void *p)
{
	sink = p;
	return sink;
}

struct live {
	unsigned char *p;
	size_t n;
	unsigned char tag;
};

static struct live lives[8];
static unsigned nlive;

static void keep(void *p, size_t n)
{
	unsigned char tag = (unsigned char)(0xA0 + nlive);
	memset(p, tag, n);
	lives[nlive++] = (struct live){ p, n, tag };
}

static int check_after(size_t size)
{
	static unsigned char *blk[NCHECK];
	int bad = 0;
	for (unsigned i = 0; i < NCHECK; i++) {
		blk[i] = malloc(size);
		if (blk[i] == NULL) {
			printf("CORRUPT: malloc(%zu) failed\n", size);
			return 1;
		}
		memset(blk[i], (int)(i % 97 + 1), size);
	}
	for (unsigned i = 0; i < NCHECK; i++)
		for (size_t k = 0; k < size; k++)
			if (blk[i][k] != (unsigned char)(i % 97 + 1)) {
				printf("CORRUPT: block %u (%p) byte %zu overwritten: handed out twice\n",
				       i, (void *)blk[i], k);
				bad = 1;
				break;
			}
	for (unsigned j = 0; j < nlive; j++)
		for (size_t k = 0; k < lives[j].n; k++)
			if (lives[j].p[k] != lives[j].tag) {
				printf("CORRUPT: live block %p byte %zu overwritten: given away\n",
				       (void *)lives[j].p, k);
				bad = 1;
				break;
			}
	for (unsigned i = 0; i < NCHECK; i++)
		free(blk[i]);
	if (!bad)
		printf("ok\n");
	return bad;
}

/* Free p, then other blocks of its size, then p again. */
static int double_free(size_t size, int later)
{
	void *p = hide(malloc(size));
	void *a = malloc(size), *b = malloc(size);
	free(p);
	if (later) {
		free(a);
		free(b);
		a = b = NULL;
	}
	free(hide(p));
	if (a) {
		keep(a, size);
		keep(b, size);
	}
	return check_after(size);
}

/* Free a pointer 'off' bytes into a live block of 'size' bytes. */
static int interior(size_t size, size_t off)
{
	unsigned char *p = malloc(size);
	keep(p, size);
	free(hide(p + off));
	return check_after(size);
}

static void *free_in_thread(void *p)
{
	free(p);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	setvbuf(stdout, NULL, _IONBF, 0);
	if (!strcmp(c, "double-tiny"))
		return double_free(64, 0);
	if (!strcmp(c, "double-tiny-later"))
		return double_free(64, 1);
	if (!strcmp(c, "double-mid"))
		return double_free(4096, 0);
	if (!strcmp(c, "double-mid-later"))
		return double_free(4096, 1);
	if (!strcmp(c, "double-large"))
		return double_free(100000, 0);
	if (!strcmp(c, "double-large-later"))
		return double_free(100000, 1);
	if (!strcmp(c, "double-thread")) {
		/* freed by its thread, then by another one: the slow path */
		void *p = hide(malloc(64));
		free(p);
		pthread_t t;
		pthread_create(&t, NULL, free_in_thread, hide(p));
		pthread_join(t, NULL);
		return check_after(64);
	}
	if (!strcmp(c, "interior-tiny"))
		return interior(64, 16);
	if (!strcmp(c, "interior-mid"))
		return interior(4096, 2048);
	if (!strcmp(c, "interior-large"))
		return interior(100000, 4096);
	if (!strcmp(c, "interior-huge"))
		return interior(4 << 20, 4096);
	if (!strcmp(c, "misaligned"))
		return interior(64, 1);
	if (!strcmp(c, "header")) {
		/* into the header at the start of the block's 2 MiB region */
		unsigned char *p = malloc(64);
		keep(p, 64);
		free(hide((void *)(((uintptr_t)p & ~(uintptr_t)0x1fffff) + 256)));
		return check_after(64);
	}
	if (!strcmp(c, "realloc-freed")) {
		void *p = hide(malloc(64));
		free(p);
		void *q = realloc(hide(p), 128);
		if (q != NULL) { /* glibc would abort; hakmem returns NULL */
			printf("CORRUPT: realloc of a freed block returned %p\n", q);
			return 1;
		}
		return check_after(64);
	}
	if (!strcmp(c, "clean")) {
		/* no bug: every size, freed and reused, must pass silently */
		for (size_t n = 1; n <= (1u << 21); n = n * 3 / 2 + 1) {
			void *p = malloc(n);
			free(p);
			p = realloc(malloc(n), n * 2);
			free(p);
		}
		return check_after(64);
	}
	fprintf(stderr, "usage: %s CASE\n", argv[0]);
	return 2;
}
