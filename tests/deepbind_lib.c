/* deepbind_lib.c - a library that tests/deepbind_prog dlopens with
 * RTLD_DEEPBIND: it allocates and frees through its own references to
 * malloc and free, which RTLD_DEEPBIND binds in the library's own scope
 * (the library, then what it links: the C library, or hakmem first when
 * it is linked with it) before the global scope (the program and a
 * preloaded hakmem).
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 */
#include <stdlib.h>

void *deep_malloc(size_t n);
void deep_free(void *p);

void *deep_malloc(size_t n)
{
	return malloc(n);
}

void deep_free(void *p)
{
	free(p);
}
