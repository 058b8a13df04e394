/* setuid_prog.c - a static program for tests/setuid.sh, which installs
 * copies of it set-user-ID and set-group-ID root and runs them as an
 * unprivileged user with HAKMEM_* variables in the environment.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * It allocates and frees blocks of every tier (through the override when
 * there is one, and through the hak_* API), prints one line on standard
 * output with the IDs it runs with and the AT_SECURE flag, so that the
 * script can tell whether the set-ID bit took effect, and exits 0.  It
 * writes nothing on standard error: whatever appears there is hakmem's.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <hakmem/hakmem.h>

int main(void)
{
	static const size_t sizes[] = { 1, 100, 1024, 5000, 32768, 100000, 1 << 20, 3 << 20 };
	void *p[sizeof(sizes) / sizeof(sizes[0])];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		p[i] = hak_malloc(sizes[i]);
		if (p[i] == NULL)
			return 1;
		memset(p[i], (int)i, sizes[i]);
	}
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		hak_free(p[i]);
#ifdef TEST_OVERRIDE
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		void *q = malloc(sizes[i]);
		if (q == NULL)
			return 1;
		memset(q, 1, sizes[i]);
		free(q);
	}
#endif
	printf("setuid_prog ok ruid=%u euid=%u rgid=%u egid=%u secure=%lu\n", (unsigned)getuid(),
	       (unsigned)geteuid(), (unsigned)getgid(), (unsigned)getegid(),
	       getauxval(AT_SECURE));
	return 0;
}
