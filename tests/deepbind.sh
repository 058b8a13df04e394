#!/bin/sh
# deepbind.sh - a library dlopen'ed with RTLD_DEEPBIND under a preloaded
# hakmem: what works and what does not (man 3 hakmem, BUGS).
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# RTLD_DEEPBIND makes the library look up its symbols in its own scope
# (itself, then the libraries it links) before the global one, where a
# preloaded or linked hakmem is.  So:
#   1. A library that links only the C library gets glibc's malloc and
#      free: its own allocations and frees are glibc's and work; a block it
#      allocates and the program frees is foreign to hakmem, which ignores
#      it and counts it in foreign_frees (the block leaks, nothing
#      crashes).  The reverse, a hakmem block freed by the library, goes
#      to glibc's free, which aborts or crashes: not run here.
#   2. The same library linked with libhakmem (before the C library) gets
#      hakmem's: every mix works and nothing is foreign.
#
# Run by make check, which exports abs_top_builddir.

set -u
: "${abs_top_builddir:?run this through make check (abs_top_builddir is not set)}"

lib="$abs_top_builddir/lib/.libs/libhakmem.so"
prog="$abs_top_builddir/tests/deepbind_prog${EXEEXT:-}"
deep_libc="$abs_top_builddir/tests/.libs/libdeeplibc.so"
deep_hak="$abs_top_builddir/tests/.libs/libdeephak.so"
config_h="$abs_top_builddir/config.h"

if test ! -f "$lib"; then
	echo "SKIP: $lib was not built (configured with --disable-shared?)"
	exit 77
fi
if grep -q '^#define HAKMEM_OVERRIDE 0' "$config_h" 2>/dev/null; then
	echo "SKIP: configured with --disable-override: preloading replaces nothing"
	exit 77
fi
for f in "$prog" "$deep_libc" "$deep_hak"; do
	if test ! -f "$f"; then
		echo "FAIL: $f is not built"
		exit 1
	fi
done

for v in $(env | sed -n 's/^\(HAKMEM_[A-Za-z0-9_]*\)=.*/\1/p'); do
	unset "$v"
done
unset LD_PRELOAD

tmp=${TMPDIR:-/tmp}/hakmem-deepbind.$$
trap 'rm -f "$tmp".*' EXIT INT TERM
failures=0

# expect LIBRARY MODE WHOSE FOREIGN: run with hakmem preloaded; the program
# must exit 0, the blocks must be WHOSE's, and hakmem must have
# counted FOREIGN foreign frees.
expect() {
	HAKMEM_STATS=json LD_PRELOAD="$lib" "$prog" "$1" "$2" >"$tmp.out" 2>"$tmp.err"
	rc=$?
	name="$(basename "$1") $2"
	foreign=$(sed -n 's/^ *"foreign_frees": \([0-9]*\).*/\1/p' "$tmp.err" | head -n 1)
	if test $rc -ne 0; then
		fail_with "$name: exit status $rc"
	elif test "$(cat "$tmp.out")" != "$2: the blocks: $3"; then
		fail_with "$name: the blocks are not $3's"
	elif test "$foreign" != "$4"; then
		fail_with "$name: foreign_frees is '$foreign', not $4"
	else
		echo "ok: $name -> $3's blocks, $4 foreign frees"
	fi
}

fail_with() {
	echo "FAIL: $*"
	sed 's/^/  stdout: /' "$tmp.out"
	grep -v '^ *[][{}"]' "$tmp.err" | sed 's/^/  stderr: /'
	failures=$((failures + 1))
}

expect "$deep_libc" lib other 0
expect "$deep_libc" main other 1000
expect "$deep_hak" lib hakmem 0
expect "$deep_hak" main hakmem 0
expect "$deep_hak" back hakmem 0

if test $failures -ne 0; then
	echo "$failures checks failed"
	exit 1
fi
echo "PASS: RTLD_DEEPBIND"
exit 0
