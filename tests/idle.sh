#!/bin/sh
# idle.sh - memory goes back to the kernel while the program sleeps
# (issue #13's probe; tests/idle_prog.c).
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# 1. With the defaults: 512 MiB allocated in blocks of 1 MiB (the large
#    tier), of 4 KiB (mid) and of 256 bytes (tiny), all but one freed,
#    then the program sleeps without calling the allocator: within 5 s
#    its resident set (Rss less LazyFree, /proc/self/smaps_rollup) is at
#    most 16 MiB.  The same with HAKMEM_PURGE_DELAY_MS=0 (at once).
# 2. 8 threads allocate 40 MiB each in every tier and exit; two other
#    threads free those blocks and stay alive, idle: within 5 s the
#    resident set is within 16 MiB of what it was before the 8 started.
# 3. With the purge thread off (HAKMEM_PURGE_THREAD=0): malloc_trim(0)
#    right after the frees gives everything back at once, in every case.
# 4. The same three sizes allocated by the main thread and freed (all but
#    one) by another, which then sleeps: neither calls the allocator
#    again, and within 5 s the resident set is at most 16 MiB (the purge
#    thread drains and gives back the sleeping main thread's slabs).
# 5. One thread allocates 16-256 byte blocks, another frees them, oldest
#    first, with up to 64 MiB out: for 2 s the resident set stays within
#    1.2 times the most bytes out at once.
# Skipped without /proc/self/smaps_rollup (Linux 4.14).
#
# Run by make check, which exports abs_top_builddir.

set -u
: "${abs_top_builddir:?run this through make check (abs_top_builddir is not set)}"

prog="$abs_top_builddir/tests/idle_prog${EXEEXT:-}"

for v in $(env | sed -n 's/^\(HAKMEM_[A-Za-z0-9_]*\)=.*/\1/p'); do
	unset "$v"
done
unset LD_PRELOAD

if test ! -r /proc/self/smaps_rollup; then
	echo "SKIP: no /proc/self/smaps_rollup"
	exit 77
fi

failures=0
run() {
	# run NAME ENV... -- ARGS...
	name=$1
	shift
	envs=
	while test "$1" != "--"; do
		envs="$envs $1"
		shift
	done
	shift
	if out=$(env $envs "$prog" "$@" 2>&1); then
		echo "PASS: $name: $out"
	else
		echo "FAIL: $name: $out"
		failures=$((failures + 1))
	fi
}

for size in 1048576 4096 256; do
	run "$size-byte blocks, defaults" -- "$size" 5 16
	run "$size-byte blocks, HAKMEM_PURGE_DELAY_MS=0" HAKMEM_PURGE_DELAY_MS=0 -- "$size" 5 16
	run "$size-byte blocks, malloc_trim(0)" HAKMEM_PURGE_THREAD=0 -- "$size" 0 16 trim
done
for size in 1048576 4096 256; do
	run "$size-byte blocks freed by another thread" -- "remote-$size" 5 16
done
run "threads, defaults" -- threads 5 16
run "threads, malloc_trim(0)" HAKMEM_PURGE_THREAD=0 -- threads 0 16 trim
run "producer/consumer" -- prodcons 2 120

test "$failures" -eq 0
