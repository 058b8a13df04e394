#!/bin/sh
# secure.sh - the secure build (libhakmem-secure) stops a damaged heap.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Runs tests/secure_prog (linked with lib/libhakmem-secure.la) once per
# bad program: a heap overflow of one byte past the request (into the
# slack, and into the block's size word where there is no slack), a write
# after free (with HAKMEM_SECURE_FILL=1) and garbage in the free-list
# link of a freed block.  Each must die of SIGABRT and write exactly one
# line on standard error, the one hakmem(3) documents, naming the address
# the program damaged and its size class.  A clean run of the same program
# must exit 0 with HAKMEM_SECURE_FILL=1 (no false alarm).
#
# Run by make check (when the secure library is built), which exports
# abs_top_builddir.

set -u
: "${abs_top_builddir:?run this through make check (abs_top_builddir is not set)}"

prog="$abs_top_builddir/tests/secure_prog${EXEEXT:-}"
if test ! -x "$prog"; then
	echo "SKIP: $prog was not built (configured with --disable-secure?)"
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-secure.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
status=0

# expect CASE WHAT CLASS [ENV...]: secure_prog CASE must abort after the
# one line "hakmem: WHAT ADDR (size class CLASS)".
expect()
{
	case_=$1 what=$2 cls=$3
	shift 3
	# The subshell runs the program (exec), so that the shell's own
	# "Aborted" message goes to /dev/null, not into the captured stderr.
	( (ulimit -c 0; exec env "$@" "$prog" "$case_") >"$tmp/out" 2>"$tmp/err"; exit $? ) 2>/dev/null
	rc=$?
	addr=$(head -n 1 "$tmp/out")
	want="hakmem: $what $addr (size class $cls)"
	lines=$(wc -l <"$tmp/err")
	if test $rc -ne 134; then
		echo "FAIL: $case_: exit status $rc, want 134 (SIGABRT); stderr:"
		sed 's/^/  /' "$tmp/err"
		status=1
	elif test "$lines" -ne 1; then
		echo "FAIL: $case_: $lines lines on stderr, want 1:"
		sed 's/^/  /' "$tmp/err"
		status=1
	elif test "$(cat "$tmp/err")" != "$want"; then
		echo "FAIL: $case_: stderr says"
		sed 's/^/  /' "$tmp/err"
		echo "  want: $want"
		status=1
	else
		echo "PASS: $case_: SIGABRT after \"$want\""
	fi
}

expect overflow "heap overflow past" 32 HAKMEM_SECURE_FILL=0
expect overflow-next "heap overflow past" 64
expect uaf "write after free of" 80 HAKMEM_SECURE_FILL=1
expect link "corrupted free list at" 64
expect link "corrupted free list at" 64 HAKMEM_SECURE_FILL=1

# No false alarm: the same program, well behaved, with the fill on.
if HAKMEM_SECURE_FILL=1 "$prog" ok >"$tmp/out" 2>"$tmp/err" && ! test -s "$tmp/err"; then
	echo "PASS: ok: a clean run exits 0 with nothing on stderr (HAKMEM_SECURE_FILL=1)"
else
	echo "FAIL: ok: a clean run failed:"
	sed 's/^/  /' "$tmp/err"
	status=1
fi

# Without the fill, a write after free is not looked for: the run ends.
if "$prog" uaf >"$tmp/out" 2>"$tmp/err"; then
	echo "PASS: uaf without HAKMEM_SECURE_FILL: not checked (exit 0)"
else
	echo "FAIL: uaf without HAKMEM_SECURE_FILL: exit $?"
	sed 's/^/  /' "$tmp/err"
	status=1
fi
# New blocks in a random order: fewer than 3 in 4 follow their neighbour.
out=$("$prog" order 2>&1)
n=${out%% *}
if test -n "$n" && test "$n" -ge 0 2>/dev/null && test "$n" -lt 150; then
	echo "PASS: order: $out allocations were the last one's neighbour"
else
	echo "FAIL: order: $out allocations were the last one's neighbour (want fewer than 150)"
	status=1
fi
exit $status
