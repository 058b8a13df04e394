#!/bin/sh
# early.sh - allocations before hakmem's constructor has run.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# 1. tests/early_main is linked with tests/libearlyprobe.so, whose
#    constructor allocates one block of every size class (tests/
#    early_probe.h).  Run with LD_PRELOAD=libhakmem.so, that constructor
#    runs before libhakmem's (checked here with LD_DEBUG=files), as
#    libselinux's does in ls and vim: every block must be as large as asked
#    and must not overlap another.
# 2. The static programs (tests/static_link: libhakmem.a with the C
#    library shared; tests/static_link_full: everything static) have a
#    constructor that does the same before hakmem's, and a fully static
#    glibc allocates the program's directory name (_dl_get_origin) before
#    any constructor: both are run from a directory whose path is over 100
#    characters long.
#
# Run by make check, which exports abs_top_builddir.

set -u
: "${abs_top_builddir:?run this through make check (abs_top_builddir is not set)}"

lib="$abs_top_builddir/lib/.libs/libhakmem.so"
main="$abs_top_builddir/tests/early_main${EXEEXT:-}"
config_h="$abs_top_builddir/config.h"

if grep -q '^#define HAKMEM_OVERRIDE 0' "$config_h" 2>/dev/null; then
	echo "SKIP: configured with --disable-override: malloc is not hakmem's"
	exit 77
fi
for v in $(env | sed -n 's/^\(HAKMEM_[A-Za-z0-9_]*\)=.*/\1/p'); do
	unset "$v"
done
unset LD_PRELOAD

work=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-early.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT INT TERM
failures=0
ran=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# ---- 1. a library constructor under LD_PRELOAD ------------------------------
if test -f "$lib" && test -x "$main"; then
	ran=$((ran + 1))
	LD_DEBUG=files LD_PRELOAD="$lib" "$main" >"$work/order.out" 2>"$work/order.err"
	order=$(sed -n 's/.*calling init: .*\/\(lib[a-z]*\)\.so.*/\1/p' "$work/order.err" |
		grep -E '^lib(hakmem|earlyprobe)$' | tr '\n' ' ')
	if test "$order" != "libearlyprobe libhakmem "; then
		fail "the probe's constructor must run before hakmem's; order seen: '$order'"
	fi
	HAKMEM_STATS=1 LD_PRELOAD="$lib" "$main" >"$work/main.out" 2>"$work/main.err"
	rc=$?
	cat "$work/main.out"
	if test $rc -ne 0; then
		fail "early_main under LD_PRELOAD exited $rc:"
		head -n 10 "$work/main.err" | sed 's/^/  /'
	elif ! grep -q '^hakmem statistics' "$work/main.err"; then
		fail "hakmem was not loaded (HAKMEM_STATS=1 printed nothing)"
	else
		echo "ok: a library constructor allocates every size class before hakmem's constructor"
	fi
else
	echo "note: $lib or $main not built (--disable-shared?): LD_PRELOAD case skipped"
fi

# ---- 2. static programs run from a long path --------------------------------
long="$work/a-directory-whose-name-is-long-enough/for-glibc-to-allocate-its-path/before-any-constructor-runs"
mkdir -p "$long" || exit 99
for p in static_link static_link_full; do
	bin="$abs_top_builddir/tests/$p${EXEEXT:-}"
	test -x "$bin" || { echo "note: $p not built (--disable-static?): skipped"; continue; }
	ran=$((ran + 1))
	cp "$bin" "$long/" || exit 99
	(cd "$long" && "./$p${EXEEXT:-}") >"$work/$p.out" 2>&1
	rc=$?
	if test $rc -ne 0; then
		fail "$p run from a path of ${#long} characters exited $rc:"
		tail -n 10 "$work/$p.out" | sed 's/^/  /'
	else
		echo "ok: $p runs from a path of ${#long} characters"
	fi
done

if test $ran -eq 0; then
	echo "SKIP: nothing to run"
	exit 77
fi
test $failures -eq 0 || { echo "$failures check(s) failed"; exit 1; }
echo "PASS: allocations before hakmem's constructor get what they ask for"
