/* deepbind_prog.c - what happens to a library dlopen'ed with
 * RTLD_DEEPBIND under a preloaded hakmem (tests/deepbind.sh).
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * deepbind_prog LIBRARY MODE: dlopens LIBRARY (tests/deepbind_lib.c) with
 * RTLD_DEEPBIND, allocates and frees 1000 blocks of several sizes, and
 * prints one line saying whose the blocks were ("hakmem" when the
 * preloaded hak_usable_size knows them, else "other").  MODE:
 *   lib   the library allocates, the library frees;
 *   main  the library allocates, the program frees;
 *   back  the program allocates, the library frees.
 * The program is linked with the C library alone: its malloc is whatever
 * LD_PRELOAD puts first.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 24, 100, 5000, 100000, 3000000 };
	if (argc != 3) {
		fprintf(stderr, "usage: deepbind_prog LIBRARY lib|main|back\n");
		return 2;
	}
	void *h = dlopen(argv[1], RTLD_NOW | RTLD_DEEPBIND);
	if (h == NULL) {
		fprintf(stderr, "deepbind_prog: %s\n", dlerror());
		return 2;
	}
	void *(*deep_malloc)(size_t) = (void *(*)(size_t))dlsym(h, "deep_malloc");
	void (*deep_free)(void *) = (void (*)(void *))dlsym(h, "deep_free");
	size_t (*usable)(const void *) =
		(size_t(*)(const void *))dlsym(RTLD_DEFAULT, "hak_usable_size");
	if (deep_malloc == NULL || deep_free == NULL) {
		fprintf(stderr, "deepbind_prog: %s\n", dlerror());
		return 2;
	}
	int ours = 0, blocks = 0;
	for (int i = 0; i < 200; i++) {
		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			size_t n = sizes[k];
			void *p = strcmp(argv[2], "back") == 0 ? malloc(n) : deep_malloc(n);
			if (p == NULL)
				return 1;
			memset(p, 0x5a, n);
			blocks++;
			ours += usable != NULL && usable(p) >= n;
			if (strcmp(argv[2], "main") == 0)
				free(p);
			else
				deep_free(p);
		}
	}
	printf("%s: the blocks: %s\n", argv[2],
	       ours == 0 ? "other" : ours == blocks ? "hakmem" : "mixed");
	return 0;
}
