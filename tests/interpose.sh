#!/bin/sh
# interpose.sh - LD_PRELOAD=libhakmem.so replaces malloc@GLIBC_* in a
# program built against the C library alone.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# tests/interpose_prog is linked without hakmem, so its malloc, calloc,
# ... are bound to the C library's versioned names (malloc@GLIBC_2.2.5 on
# x86-64), as in every program a distribution ships.  ld.so lets an
# unversioned definition answer such a reference, but not a definition
# that has another version: with a version node on malloc in
# lib/hakmem.map, preloading would change nothing, silently.  This checks
#   1. that the program's malloc reference is versioned (objdump -T), else
#      there is nothing to show (a C library without symbol versions:
#      skipped);
#   2. that without hakmem no hak_usable_size is loaded and the program's
#      blocks are not hakmem's;
#   3. that with LD_PRELOAD of the library built, every function of the
#      family, the C library's strdup and __libc_malloc hand out hakmem's
#      blocks.
# Static links are checked by tests/static_link and tests/static_link_full.
#
# Run by make check, which exports abs_top_builddir.

set -u
: "${abs_top_builddir:?run this through make check (abs_top_builddir is not set)}"

lib="$abs_top_builddir/lib/.libs/libhakmem.so"
prog="$abs_top_builddir/tests/interpose_prog${EXEEXT:-}"
config_h="$abs_top_builddir/config.h"
OBJDUMP=${OBJDUMP_PROG:-objdump}

if test ! -f "$lib"; then
	echo "SKIP: $lib was not built (configured with --disable-shared?)"
	exit 77
fi
if grep -q '^#define HAKMEM_OVERRIDE 0' "$config_h" 2>/dev/null; then
	echo "SKIP: configured with --disable-override: preloading replaces nothing"
	exit 77
fi
if test ! -x "$prog"; then
	echo "FAIL: $prog is not built"
	exit 1
fi

for v in $(env | sed -n 's/^\(HAKMEM_[A-Za-z0-9_]*\)=.*/\1/p'); do
	unset "$v"
done
unset LD_PRELOAD

tmp=${TMPDIR:-/tmp}/hakmem-interpose.$$
trap 'rm -f "$tmp".*' EXIT INT TERM
failures=0

# 1. The reference the program makes.
if ! "$OBJDUMP" -T "$prog" >"$tmp.objdump"; then
	echo "FAIL: $OBJDUMP -T $prog failed"
	exit 1
fi
ref=$(awk '/\*UND\*/ && $NF == "malloc" { print $(NF - 1) }' "$tmp.objdump" | tr -d "()")
case $ref in
GLIBC_*)
	echo "ok: $prog refers to malloc@$ref" ;;
*)
	echo "SKIP: $prog refers to malloc with version '$ref', not a GLIBC_* one: nothing to show"
	exit 77 ;;
esac

# 2. Without hakmem.
if "$prog" libc >"$tmp.out" 2>&1; then
	echo "ok: without LD_PRELOAD the blocks are the C library's"
else
	echo "FAIL: $prog libc:"
	sed 's/^/  /' "$tmp.out"
	failures=$((failures + 1))
fi

# 3. With hakmem preloaded.
if LD_PRELOAD="$lib" "$prog" hakmem >"$tmp.out" 2>&1; then
	echo "ok: LD_PRELOAD=$lib: every block is hakmem's:"
	sed 's/^/  /' "$tmp.out"
else
	echo "FAIL: LD_PRELOAD=$lib $prog hakmem: malloc@$ref was not replaced everywhere:"
	sed 's/^/  /' "$tmp.out"
	failures=$((failures + 1))
fi

if test $failures -ne 0; then
	exit 1
fi
echo "PASS: LD_PRELOAD replaces malloc@$ref and the rest of the family"
exit 0
