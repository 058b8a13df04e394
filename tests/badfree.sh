#!/bin/sh
# badfree.sh - a bad free never hands a block out twice.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# tests/badfree_prog makes one bad call per case (double free of a tiny, a
# mid and a large block, freshly freed and after other frees of its class,
# and from another thread; free of a pointer inside a block, misaligned,
# into a segment's header, inside a huge block; realloc of a freed block).
# Under LD_PRELOAD of the library built:
#   - by default (HAKMEM_ON_ERROR=abort) each case ends with SIGABRT and
#     exactly one line on stderr, the documented one;
#   - with HAKMEM_ON_ERROR=warn, the same line, then the program goes on;
#   - with HAKMEM_ON_ERROR=ignore, nothing on stderr and the program goes
#     on;
#   and when it goes on, the program checks that no later allocation hands
#   out memory that a live pointer holds (it prints "ok").
# A program without a bug ("clean") prints nothing on stderr.
#
# BADFREE_LIB names another library to test (default: libhakmem.so of
# this build).  With BADFREE_SECURE=1 (tests/badfree-secure.sh, the
# secure library) every mode must abort: that build always stops.
# Run by make check, which exports abs_top_builddir.

set -u
: "${abs_top_builddir:?run this through make check (abs_top_builddir is not set)}"

lib=${BADFREE_LIB:-$abs_top_builddir/lib/.libs/libhakmem.so}
prog="$abs_top_builddir/tests/badfree_prog${EXEEXT:-}"
config_h="$abs_top_builddir/config.h"

if test ! -f "$lib"; then
	echo "SKIP: $lib was not built (configured with --disable-shared?)"
	exit 77
fi
if grep -q '^#define HAKMEM_OVERRIDE 0' "$config_h" 2>/dev/null; then
	echo "SKIP: configured with --disable-override: preloading replaces nothing"
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/badfree.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0

# hexadecimal address, and a size class in bytes
addr='0x[0-9a-f][0-9a-f]*'
double_line="^hakmem: double free of $addr (size class [0-9][0-9]*)\$"
interior_line="^hakmem: free of $addr: not the start of a block\$"
realloc_line="^hakmem: realloc of freed block $addr (size class [0-9][0-9]*)\$"

# run MODE CASE: the program's exit status, stdout and stderr in $tmp
run() {
	env -u HAKMEM_ON_ERROR ${1:+HAKMEM_ON_ERROR=$1} LD_PRELOAD="$lib" \
		"$prog" "$2" >"$tmp/out" 2>"$tmp/err"
	echo $? >"$tmp/rc"
}

# must_abort MODE CASE LINE: SIGABRT (128 + 6) after exactly one line
must_abort() {
	run "$1" "$2"
	rc=$(cat "$tmp/rc")
	lines=$(wc -l <"$tmp/err")
	if test "$rc" != 134 || test "$lines" != 1 || ! grep -q "$3" "$tmp/err"; then
		echo "FAIL: $2 (${1:-abort}): status $rc (want 134), $lines lines on stderr (want 1):"
		sed 's/^/  | /' "$tmp/err" "$tmp/out"
		fail=1
	else
		echo "ok: $2 (${1:-abort}): $(cat "$tmp/err")"
	fi
}

# check CASE LINE: every mode
check() {
	case=$1 line=$2
	must_abort "" "$case" "$line"
	if test "${BADFREE_SECURE:-0}" = 1; then
		must_abort warn "$case" "$line"
		must_abort ignore "$case" "$line"
		return
	fi
	# warn: the line, then "ok"
	run warn "$case"
	rc=$(cat "$tmp/rc")
	lines=$(wc -l <"$tmp/err")
	if test "$rc" != 0 || test "$lines" != 1 || ! grep -q "$line" "$tmp/err" ||
		test "$(cat "$tmp/out")" != ok; then
		echo "FAIL: $case (warn): status $rc, $lines lines on stderr (want 1):"
		sed 's/^/  | /' "$tmp/err" "$tmp/out"
		fail=1
	else
		echo "ok: $case (warn): went on, no block handed out twice"
	fi
	# ignore: silent, then "ok"
	run ignore "$case"
	rc=$(cat "$tmp/rc")
	if test "$rc" != 0 || test -s "$tmp/err" || test "$(cat "$tmp/out")" != ok; then
		echo "FAIL: $case (ignore): status $rc, stderr and stdout:"
		sed 's/^/  | /' "$tmp/err" "$tmp/out"
		fail=1
	else
		echo "ok: $case (ignore): went on, no block handed out twice"
	fi
}

for c in double-tiny double-tiny-later double-mid double-mid-later \
	double-large double-large-later double-thread; do
	check "$c" "$double_line"
done
for c in interior-tiny interior-mid interior-large interior-huge misaligned header; do
	check "$c" "$interior_line"
done
check realloc-freed "$realloc_line"

# a program without a bug: nothing on stderr
for mode in "" warn; do
	run "$mode" clean
	if test "$(cat "$tmp/rc")" != 0 || test -s "$tmp/err" || test "$(cat "$tmp/out")" != ok; then
		echo "FAIL: clean (${mode:-abort}): status $(cat "$tmp/rc"):"
		sed 's/^/  | /' "$tmp/err" "$tmp/out"
		fail=1
	else
		echo "ok: clean (${mode:-abort}): silent"
	fi
done

exit $fail
