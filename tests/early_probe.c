/* early_probe.c - a shared library whose constructor allocates before
 * hakmem's constructor has run (tests/early.sh).
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * The dynamic linker runs the constructors of a program's own
 * dependencies before those of a preloaded library, so with
 * LD_PRELOAD=libhakmem.so this constructor's malloc calls are the first
 * hakmem sees (libselinux's constructor does the same in ls and vim).  The
 * result is kept for early_main.c, which reports it.
 */
#include "early_probe.h"

int early_probe_failures = -1;

__attribute__((constructor)) static void early_probe_ctor(void)
{
	early_probe_failures = early_probe();
}
