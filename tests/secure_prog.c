/* secure_prog.c - the bad programs of tests/secure.sh: each case damages
 * the heap the way a buggy program would, then goes on allocating; linked
 * with libhakmem-secure, each must end in abort() after one line on
 * standard error.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * Usage: secure_prog CASE
 *   overflow   one byte past a request of 20 bytes (a block of 32: the
 *              byte is the canary's), then free: "heap overflow past
 *              0x... (size class 32)"
 *   overflow-next  a request whose block has no slack past the canary
 *              word: a write of one byte past it, into the block's own
 *              size word (what would be the next block's first byte
 *              without the canary), then free: "heap overflow past 0x...
 *              (size class 64)"
 *   uaf        (HAKMEM_SECURE_FILL=1) a write into a freed block of 64
 *              bytes (a block of 80), then allocations of 64 bytes until
 *              the block comes back: "write after free of 0x... (size
 *              class 80)"
 *   link       garbage in word 0 (the free-list link) of a freed request
 *              of 48 bytes (a block of 64), then allocations until the
 *              link is followed: "corrupted free list at 0x... (size
 *              class 3)"
 *   ok         none of it: a clean run (exit 0)
 * Prints the address it damaged on standard output ("0x..."), so that the
 * script can compare it with the one hakmem reports. */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile unsigned char sink;

static void say(const void *p)
{
	printf("%p\n", p);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	if (strcmp(c, "overflow") == 0) {
		/* 20 + the 8-byte size word leave 4 canary bytes in a block of 32 */
		unsigned char *p = malloc(20);
		say(p);
		memset(p, 'a', 20);
		p[20] = 'x'; /* one byte past the request */
		free(p);
		return 0;
	}
	if (strcmp(c, "overflow-next") == 0) {
		/* 56 + the 8-byte size word fill a block of 64 exactly */
		unsigned char *p = malloc(56);
		say(p);
		memset(p, 'a', 56);
		p[56] ^= 1;
		free(p);
		return 0;
	}
	if (strcmp(c, "uaf") == 0) {
		unsigned char *p = malloc(64);
		say(p);
		free(p);
		p[40] = 0x41; /* after free, past words 0-2 (link, key, mark) */
		for (int i = 0; i < 100000; i++) {
			void *q = malloc(64);
			sink = *(unsigned char *)q;
		}
		return 0;
	}
	if (strcmp(c, "link") == 0) {
		unsigned char *p = malloc(48);
		say(p);
		free(p);
		uint64_t garbage = 0x4141414141414141ull;
		memcpy(p, &garbage, sizeof(garbage)); /* word 0: the link */
		for (int i = 0; i < 100000; i++) {
			void *q = malloc(48);
			sink = *(unsigned char *)q;
		}
		return 0;
	}
	if (strcmp(c, "order") == 0) {
		/* a fresh class: how often is the next block the one right
		 * after the last?  In address order, 199 times in 199; in the
		 * secure carve's order about a quarter.  The block size is the
		 * smallest gap between two of the blocks. */
		enum { N = 200 };
		char *b[N];
		unsigned next = 0;
		long bs = 0;
		for (int i = 0; i < N; i++)
			b[i] = malloc(200);
		for (int i = 0; i < N; i++)
			for (int j = 0; j < N; j++)
				if (b[j] > b[i] && (bs == 0 || b[j] - b[i] < bs))
					bs = b[j] - b[i];
		for (int i = 0; i + 1 < N; i++)
			next += b[i + 1] - b[i] == bs;
		printf("%u of %d\n", next, N - 1);
		return 0;
	}
	if (strcmp(c, "ok") == 0) {
		void *v[1000];
		for (int r = 0; r < 20; r++) {
			for (int i = 0; i < 1000; i++) {
				size_t n = 1 + (size_t)(i * 97 + r) % 5000;
				v[i] = malloc(n);
				memset(v[i], i, n);
				if (malloc_usable_size(v[i]) != n)
					return 3;
			}
			for (int i = 0; i < 1000; i++) {
				size_t n = 1 + (size_t)(i * 31 + r) % 9000;
				v[i] = realloc(v[i], n);
				memset(v[i], i, n);
			}
			for (int i = 0; i < 1000; i++)
				free(v[i]);
		}
		return 0;
	}
	fprintf(stderr, "secure_prog: unknown case '%s'\n", c);
	return 2;
}
