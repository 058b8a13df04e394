/* early_probe.h - allocate every size class before hakmem has initialised.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * Included by a shared library's constructor (tests/early_probe.c, run
 * before libhakmem's constructor under LD_PRELOAD) and by a static
 * program's constructor (tests/static_prog.c, run before hakmem's and
 * after glibc's own start-up allocations).  The first request is 472 bytes
 * (what libselinux's constructor asks for through fopen); then one block
 * of every size from 1 to 512 bytes, every 7th size on to 33 KiB, and a
 * few large and huge ones.  (Many small ones: in a static program glibc
 * has already copied the program's directory into a block that would be
 * 16 bytes with a table not yet filled, over the free-list links of the
 * next 16-byte blocks.)  Every block must report a usable size of at least the
 * request and is filled with a pattern of its own; all are kept alive
 * until every block has been written, then checked, so a block that
 * overlaps another (the caller wrote past its end) is caught.  Returns the
 * number of failures and writes one line per failure (at most 5) to fd 2.
 */
#ifndef HAKMEM_EARLY_PROBE_H
#define HAKMEM_EARLY_PROBE_H

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EARLY_FIRST 472
#define EARLY_MAX (33 * 1024)
#define EARLY_STEP 7
#define EARLY_SMALL 512
#define EARLY_N (1 + EARLY_SMALL + (EARLY_MAX - EARLY_SMALL) / EARLY_STEP + 1 + 4)

static void early_say(const char *what, size_t n, size_t u)
{
	char line[160];
	int len = snprintf(line, sizeof(line), "early probe: %s(%zu): usable size %zu\n", what, n, u);
	if (len > 0)
		(void)!write(2, line, (size_t)len);
}

static unsigned char early_byte(size_t i)
{
	return (unsigned char)(i * 37u + 11u);
}

static int early_probe(void)
{
	static void *blk[EARLY_N];
	static size_t len[EARLY_N];
	size_t n = 0, i;
	int failures = 0;

	len[n++] = EARLY_FIRST;
	for (size_t s = 1; s <= EARLY_SMALL; s++)
		len[n++] = s;
	for (size_t s = EARLY_SMALL + EARLY_STEP; s <= EARLY_MAX; s += EARLY_STEP)
		len[n++] = s;
	len[n++] = 100000;          /* large */
	len[n++] = 1 << 20;         /* the last large class */
	len[n++] = (1 << 20) + 1;   /* huge */
	len[n++] = 5 << 20;
	for (i = 0; i < n; i++) {
		blk[i] = malloc(len[i]);
		if (blk[i] == NULL) {
			if (failures++ < 5)
				early_say("malloc returned NULL for malloc", len[i], 0);
			continue;
		}
		size_t u = malloc_usable_size(blk[i]);
		if (u < len[i] && failures++ < 5)
			early_say("malloc", len[i], u);
		memset(blk[i], early_byte(i), len[i]);
	}
	for (i = 0; i < n; i++) {
		const unsigned char *p = blk[i];
		if (p == NULL)
			continue;
		for (size_t k = 0; k < len[i]; k++) {
			if (p[k] != early_byte(i)) {
				if (failures++ < 5)
					early_say("overwritten block of malloc", len[i], k);
				break;
			}
		}
		free(blk[i]);
	}
	return failures;
}

#endif /* HAKMEM_EARLY_PROBE_H */
