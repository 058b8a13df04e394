/* vgtrack_prog.c - a program for make check-valgrind-annotated
 * (tests/valgrind-annotated.sh), linked with a hakmem configured with
 * --enable-valgrind-annotations and run under memcheck.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * vgtrack_prog clean      every allocation function, realloc in place and
 *                         moving through the tiers, contents checked:
 *                         memcheck must report nothing
 * vgtrack_prog uaf        reads a block after freeing it
 * vgtrack_prog overrun    writes one byte past the size asked for
 * vgtrack_prog leak       loses a block
 * It calls the hak_* functions, which memcheck does not replace.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hakmem/hakmem.h>

static unsigned sum(const unsigned char *p, size_t n)
{
	unsigned s = 0;
	for (size_t i = 0; i < n; i++)
		s += p[i];
	return s;
}

static int clean(void)
{
	static const size_t sizes[] = { 1, 8, 24, 100, 1000, 5000, 40000, 100000, 1 << 20, 3 << 20 };
	int bad = 0;
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t n = sizes[i];
			unsigned char *p = hak_malloc(n);
			unsigned char *z = hak_calloc(1, n);
			if (p == NULL || z == NULL)
				return 1;
			memset(p, 7, n);
			bad += sum(z, n) != 0;
			/* grow and shrink through the tiers; the contents follow */
			for (size_t j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++) {
				size_t m = sizes[j], keep = n < m ? n : m;
				p = hak_realloc(p, m);
				if (p == NULL)
					return 1;
				bad += sum(p, keep) != 7 * keep;
				memset(p, 7, m);
				n = m;
			}
			hak_free(z);
			hak_free_sized(p, n);
		}
	}
	void *a = hak_aligned_alloc(4096, 100), *b = NULL;
	if (a == NULL || hak_posix_memalign(&b, 256, 3000) != 0)
		return 1;
	memset(a, 1, 100);
	memset(b, 1, 3000);
	hak_free(a);
	hak_free(b);
	hak_collect();
	if (bad)
		printf("vgtrack_prog: %d contents wrong\n", bad);
	return bad != 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "clean";
	if (strcmp(mode, "clean") == 0)
		return clean();
	volatile unsigned char *p = hak_malloc(100);
	if (p == NULL)
		return 1;
	memset((void *)p, 1, 100);
	if (strcmp(mode, "uaf") == 0) {
		hak_free((void *)p);
		printf("after free: %d\n", p[50]);
		return 0;
	}
	if (strcmp(mode, "overrun") == 0) {
		p[100] = 1;
		hak_free((void *)p);
		return 0;
	}
	if (strcmp(mode, "leak") == 0) {
		p = NULL;
		return 0;
	}
	return 2;
}
