#!/bin/sh
# tests/debug.sh - build hakmem with --enable-debug (assertions and the
# invariant validators, HAKMEM_DEBUG) and run the suites that put the most
# load on them: real programs under LD_PRELOAD, allocations before hakmem's
# constructor, the multi-thread stress, thread churn, fork and the malloc
# family's contract.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Usage: tests/debug.sh [SRCDIR]      (make check-debug)
#
# SRCDIR is the source tree (default: the directory above this script).  It
# is never written to: a snapshot of it, without build products, is copied
# to a temporary directory first (so that a tree configured in place, or one
# being edited, can still be used), ./autogen.sh is run in the copy when it
# has no configure script, and the build is made out of tree beside it.
#
# Environment:
#   DEBUG_TESTS     the tests to run (default: the list below); "all" runs
#                   the whole of make check
#   DEBUG_CONFIGURE more configure arguments (e.g. CC=clang)
#   DEBUG_JOBS      make -j (default 2)
#   DEBUG_KEEP=1    keep the temporary directory
#   CK_TIMEOUT_MULTIPLIER  scales Check's timeouts (default 2 here: the
#                   build is -O1 and validates on every slow path)
#
# Prints "PASS: debug build" or "FAIL: debug build" (after the logs of the
# failed tests) and exits 0 or 1; 2 when it could not start.

set -u

here=$(cd "$(dirname "$0")" && pwd)
src=${1:-$here/..}
src=$(cd "$src" && pwd) || { echo "debug.sh: no such directory: ${1-}" >&2; exit 2; }
test -f "$src/configure.ac" || { echo "debug.sh: $src is not the hakmem source tree" >&2; exit 2; }

# The shell tests run real programs (python3, git, gcc, sort, ls, sqlite3)
# and a library constructor that allocates before hakmem's; the Check
# suites are the cross-thread transfer stress, thread create/exit churn,
# the churn with cross-thread frees after the owner's exit (check_churn,
# whose exit flushes the debug build's owner assertion checks), fork while
# other threads allocate, fork beside stdio and from a signal handler, the
# malloc family's contract through the override and through hak_*, and the
# slab engine's, the mid pool's and the thread life cycle's white-box
# suites; the bad frees (badfree.sh: the validators run while a program
# with a double free goes on) and out of memory injected at every point
# (check_oom_inject), the heap's suite (the free key through sweeps), and
# the large tier's runs and the huge ranges (check_large, check_os).
default_tests="tests/preload.sh tests/early.sh tests/env.sh
tests/check_stress tests/check_threads tests/check_churn tests/check_fork
tests/check_atfork tests/check_semantics tests/check_semantics_api
tests/check_api tests/check_slab tests/check_pool tests/check_thread
tests/badfree.sh tests/check_oom_inject tests/check_heap tests/check_large
tests/check_os"
tests=$(echo ${DEBUG_TESTS:-$default_tests})
jobs=${DEBUG_JOBS:-2}
CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-2}
export CK_TIMEOUT_MULTIPLIER

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-debug.XXXXXX") || exit 2
cleanup() { if [ "${DEBUG_KEEP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM
start=$(date +%s)

# Snapshot of the sources (tests/snapshot.sh): never written to, built
# from a copy without build products.
. "$here/snapshot.sh"
snap=$tmp/src
hak_snapshot "$src" "$snap" debug.sh || exit 2

b=$tmp/build
mkdir -p "$b"

finish() {
	echo "$1: debug build ($(( $(date +%s) - start )) s)"
	exit "$2"
}

# ---------------------------------------------------------------------------
# Configure and build.
# ---------------------------------------------------------------------------
echo "== configure --enable-debug ${DEBUG_CONFIGURE:-}"
# shellcheck disable=SC2086
if ! (cd "$b" && "$snap/configure" --enable-debug ${DEBUG_CONFIGURE:-} > configure.out 2>&1); then
	tail -n 40 "$b/configure.out"
	tail -n 60 "$b/config.log" 2>/dev/null
	finish FAIL 1
fi
if ! grep -q '^#define HAKMEM_DEBUG 1' "$b/config.h"; then
	echo "debug.sh: config.h does not define HAKMEM_DEBUG 1" >&2
	finish FAIL 1
fi
echo "== make -j$jobs"
if ! make -C "$b" -j"$jobs" > "$b/make.out" 2>&1; then
	tail -n 60 "$b/make.out"
	finish FAIL 1
fi

# ---------------------------------------------------------------------------
# make check, on the chosen tests.  check_PROGRAMS is narrowed to the Check
# suites among them and the programs the shell tests run, so that only
# those are built.
# ---------------------------------------------------------------------------
if [ "$tests" = all ]; then
	echo "== make check (all tests)"
	make -C "$b" -j"$jobs" check > "$b/check.out" 2>&1
	rc=$?
	tests=$(cd "$b" && find tests -name '*.trs' | sed 's/\.trs$//' | sort)
else
	progs="tests/envprog tests/early_main tests/badfree_prog"
	if grep -q '^#define HAKMEM_OVERRIDE 1' "$b/config.h"; then
		[ -f "$b/lib/.libs/libhakmem.a" ] && progs="$progs tests/static_link tests/static_link_full"
	else
		# tests/check_semantics exists only with the override
		tests=$(for t in $tests; do [ "$t" = tests/check_semantics ] || echo "$t"; done)
		tests=$(echo $tests)
	fi
	for t in $tests; do
		case $t in *.sh) ;; *) progs="$progs $t" ;; esac
	done
	echo "== make check TESTS='$tests'"
	make -C "$b" -j"$jobs" check TESTS="$tests" check_PROGRAMS="$progs" > "$b/check.out" 2>&1
	rc=$?
fi
grep -E '^(PASS|FAIL|ERROR|XFAIL|XPASS|SKIP): tests/' "$b/check.out"
if [ $rc -ne 0 ]; then
	shown=0
	for t in $tests; do
		t=${t%.sh}	# tests/preload.sh logs to tests/preload.log
		if [ -f "$b/$t.trs" ] && grep -q '^:test-result: \(FAIL\|ERROR\|XPASS\)' "$b/$t.trs"; then
			echo "---- $t.log"
			head -n 200 "$b/$t.log"
			shown=1
		fi
	done
	# no failed test: the suites did not build, or make failed
	[ $shown = 1 ] || tail -n 40 "$b/check.out"
	finish FAIL 1
fi
finish PASS 0
