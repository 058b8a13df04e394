/* early_main.c - reports what early_probe.c's constructor found.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * Linked with tests/libearlyprobe.la only (not with hakmem): tests/early.sh
 * runs it with LD_PRELOAD=libhakmem.so.  Exit 0 when every early block was
 * right, 1 otherwise, 2 when the constructor did not run.
 */
#include <stdio.h>

extern int early_probe_failures;

int main(void)
{
	if (early_probe_failures < 0) {
		printf("FAIL: the probe library's constructor did not run\n");
		return 2;
	}
	if (early_probe_failures > 0) {
		printf("FAIL: %d allocation(s) before hakmem's constructor went wrong\n",
		       early_probe_failures);
		return 1;
	}
	printf("ok: every size class allocated before hakmem's constructor\n");
	return 0;
}
