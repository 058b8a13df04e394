#!/bin/sh
# tests/sanitizers.sh - build hakmem three times, with ThreadSanitizer,
# AddressSanitizer and UndefinedBehaviorSanitizer, and run the Check suites
# that exercise the allocator's concurrency and slab code in each build.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Usage: tests/sanitizers.sh [SRCDIR]      (make check-sanitizers)
#
# SRCDIR is the source tree (default: the directory above this script).  It
# is never written to: a snapshot of it, without build products, is copied
# to a temporary directory first (so that a tree configured in place, or
# one being edited, can still be used), ./autogen.sh is run in the copy
# when it has no configure script, and each sanitizer gets its own build
# directory beside it.
#
# configure --enable-sanitizer=KIND turns the malloc override off, so the
# test programs allocate through hak_malloc, hak_free, ... (tests/testutil.h,
# USE_HAK_API) and the sanitizer keeps its own malloc for everything else.
#
# Environment:
#   SAN_KINDS   sanitizers to run (default "thread address undefined")
#   SAN_TESTS   test programs (default: the list below)
#   SAN_CC_thread, SAN_CC_address, SAN_CC_undefined
#               compiler per sanitizer (default: $CC, else gcc; for thread
#               clang when installed: gcc 12's libtsan aborts a forked child
#               of a multi-threaded process that creates a thread, "dup
#               thread with used id", which tests/check_thread.c's fork case
#               does; clang 14's runtime handles it)
#   SAN_KEEP=1  keep the temporary directory
#   CK_TIMEOUT_MULTIPLIER  scales Check's timeouts (default 4 here)
#
# Prints one "PASS: KIND" or "FAIL: KIND" line per sanitizer and exits 1
# when any failed, after printing the failing test logs.

set -u

here=$(cd "$(dirname "$0")" && pwd)
src=${1:-$here/..}
src=$(cd "$src" && pwd) || { echo "sanitizers.sh: no such directory: ${1-}" >&2; exit 2; }
test -f "$src/configure.ac" || { echo "sanitizers.sh: $src is not the hakmem source tree" >&2; exit 2; }

kinds=${SAN_KINDS:-thread address undefined}
# The multi-thread cross-thread transfer stress (hak_* API with the override
# off), the mid pool's 16-thread stress, the slab engine's and the pool's
# white-box suites (the pool's lock-free stacks with 16 threads), the
# thread/heap life cycle and fork, the thread create/exit churn, the churn
# with cross-thread frees after the owner's exit (check_churn), and the
# knob seam, where one thread writes knobs that a running thread reads
# (check_heap), and out of memory injected at each point, fork and threads
# included (check_oom_inject; about three minutes under TSan in all).
tests=${SAN_TESTS:-tests/check_stress tests/check_pool_stress tests/check_slab tests/check_pool tests/check_thread tests/check_threads tests/check_churn tests/check_heap tests/check_oom_inject tests/check_learner}
jobs=${SAN_JOBS:-2}
CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-4}
export CK_TIMEOUT_MULTIPLIER

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-san.XXXXXX") || exit 2
cleanup() { if [ "${SAN_KEEP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Snapshot of the sources (tests/snapshot.sh): never written to, built
# from a copy without build products.
. "$here/snapshot.sh"
snap=$tmp/src
hak_snapshot "$src" "$snap" sanitizers.sh || exit 2

# ---------------------------------------------------------------------------
# One sanitizer: configure, build, run the suites.
# ---------------------------------------------------------------------------

# build KIND CC: configure and build in $tmp/KIND; 0 when it built.
build() {
	b=$tmp/$1
	rm -rf "$b"
	mkdir -p "$b"
	echo "== $1: configure --enable-sanitizer=$1 CC=$2"
	if ! (cd "$b" && "$snap/configure" --enable-sanitizer="$1" --disable-override \
		CC="$2" > configure.out 2>&1); then
		tail -n 40 "$b/configure.out"
		tail -n 60 "$b/config.log" 2>/dev/null
		return 1
	fi
	echo "== $1: make -j$jobs"
	if ! make -C "$b" -j"$jobs" > "$b/make.out" 2>&1; then
		tail -n 60 "$b/make.out"
		return 1
	fi
	return 0
}

# check KIND: make check restricted to $tests, with the sanitizer's options.
check() {
	b=$tmp/$1
	case $1 in
	# die_after_fork=0: as tests/local.mk (Check forks every test).
	thread)    opts="TSAN_OPTIONS=halt_on_error=1:die_after_fork=0:second_deadlock_stack=1" ;;
	address)   opts="ASAN_OPTIONS=detect_leaks=0:halt_on_error=1" ;;
	undefined) opts="UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1" ;;
	esac
	echo "== $1: make check TESTS='$tests' ($opts)"
	# check_PROGRAMS is narrowed too, so that only these suites are built.
	env "$opts" make -C "$b" -j"$jobs" check TESTS="$tests" \
		check_PROGRAMS="$tests" > "$b/check.out" 2>&1
	rc=$?
	grep -E '^(PASS|FAIL|ERROR|XFAIL|XPASS|SKIP): tests/' "$b/check.out"
	if [ $rc -ne 0 ]; then
		shown=0
		for t in $tests; do
			if [ -f "$b/$t.trs" ] && grep -q '^:test-result: \(FAIL\|ERROR\|XPASS\)' "$b/$t.trs"; then
				echo "---- $1: $t.log"
				head -n 200 "$b/$t.log"
				shown=1
			fi
		done
		# no failed test: the suites did not build, or make failed
		[ $shown = 1 ] || tail -n 40 "$b/check.out"
	fi
	return $rc
}

status=0
summary=
for k in $kinds; do
	start=$(date +%s)
	case $k in
	thread)
		if command -v clang > /dev/null 2>&1; then dflt=clang; else dflt=${CC:-gcc}; fi
		cc=${SAN_CC_thread:-$dflt} ;;
	address)   cc=${SAN_CC_address:-${CC:-gcc}} ;;
	undefined) cc=${SAN_CC_undefined:-${CC:-gcc}} ;;
	*) echo "sanitizers.sh: unknown sanitizer $k" >&2; exit 2 ;;
	esac
	ok=no
	build "$k" "$cc" && ok=built
	if [ $ok = built ] && check "$k"; then
		line="PASS: $k ($cc, $(( $(date +%s) - start )) s)"
	else
		[ $ok = built ] || echo "== $k: build failed"
		line="FAIL: $k ($cc, $(( $(date +%s) - start )) s)"
		status=1
	fi
	echo "$line"
	summary="$summary$line
"
done

echo "== summary"
printf '%s' "$summary"
exit $status
