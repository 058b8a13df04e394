#!/bin/sh
# env.sh - HAKMEM_* environment variables: bad values warn, good ones don't.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Runs tests/envprog (linked with libhakmem) with HAKMEM_* variables set.
# A bad value (not a number, out of range) or an unknown HAKMEM_* name must
# print exactly one line on standard error,
#   hakmem: warning: HAKMEM_X=value: <reason>; accepted: <range>; using default <d>
#   hakmem: warning: unknown variable HAKMEM_X ignored
# and the program must still run and exit 0.  Good values print nothing;
# booleans take 1/0, true/false, yes/no, on/off in any case.
# HAKMEM_STATS=1 (or true, yes, on, text) prints the statistics (a block
# that begins with the line "hakmem statistics") on standard error at
# exit; HAKMEM_STATS=0 does not.  HAKMEM_WARN=0 silences the warnings;
# HAKMEM_STRICT=1 turns them into errors and exits with status 1 before
# the program runs; HAKMEM_VERBOSE=1 prints the settings in effect.
#
# Run by make check, which exports abs_top_builddir.

set -u
: "${abs_top_builddir:?run this through make check (abs_top_builddir is not set)}"

prog="$abs_top_builddir/tests/envprog${EXEEXT:-}"
if test ! -x "$prog"; then
	echo "FAIL: $prog is not built"
	exit 1
fi

# Start from an environment without HAKMEM_* variables.
for v in $(env | sed -n 's/^\(HAKMEM_[A-Za-z0-9_]*\)=.*/\1/p'); do
	unset "$v"
done

tmp=${TMPDIR:-/tmp}/hakmem-env.$$
trap 'rm -f "$tmp".*' EXIT INT TERM
failures=0
checks=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# run VAR=VALUE...: runs the program with these variables; leaves its
# standard output in $tmp.out and standard error in $tmp.err.  Fails the
# check when the program does not exit 0 or its output is wrong.
run() {
	checks=$((checks + 1))
	env "$@" "$prog" >"$tmp.out" 2>"$tmp.err"
	rc=$?
	if test $rc -ne 0; then
		fail "envprog exited with $rc under $*"
		sed 's/^/  stderr: /' "$tmp.err"
		return 1
	fi
	if test "$(cat "$tmp.out")" != "envprog ok"; then
		fail "envprog printed something else under $*:"
		sed 's/^/  stdout: /' "$tmp.out"
		return 1
	fi
	return 0
}

# expect_warning NAME VALUE LOW HIGH DEFAULT
expect_warning() {
	name=$1 value=$2 low=$3 high=$4 def=$5
	run "$name=$value" || return
	lines=$(wc -l <"$tmp.err")
	if test "$lines" -ne 1; then
		fail "$name=$value: $lines lines on stderr, not 1:"
		sed 's/^/  stderr: /' "$tmp.err"
		return
	fi
	line=$(cat "$tmp.err")
	case $line in
	"hakmem: warning: $name=$value: "*"; accepted: "*"; using default $def") ;;
	*)	fail "$name=$value: the warning is not 'hakmem: warning: $name=$value: <reason>; accepted: <range>; using default $def':"
		echo "  stderr: $line"
		return ;;
	esac
	# The accepted range names both bounds.
	range=${line#*; accepted: }
	range=${range%%; using default*}
	case $range in
	*"$low"*"$high"*) ;;
	*)	fail "$name=$value: accepted range '$range' does not name $low and $high" ;;
	esac
	echo "ok: $name=$value -> $line"
}

expect_silence() {
	run "$@" || return
	if test -s "$tmp.err"; then
		fail "$* printed on stderr:"
		sed 's/^/  stderr: /' "$tmp.err"
		return
	fi
	echo "ok: $* -> nothing on stderr"
}

# ---- bad values --------------------------------------------------------------
for v in abc -5 99999999 65536 12abc 99999999999999999999999999 -99999999999999999999999; do
	expect_warning HAKMEM_TINY_SLL_CAP "$v" 0 65535 1024
done
for v in 9 0.5 0.99 4.01 abc -1.25 1.2.3; do
	expect_warning HAKMEM_WMAX "$v" 1 4 1.25
done
expect_warning HAKMEM_STATS 2 0 1 0
expect_warning HAKMEM_STATS maybe 0 1 0
expect_warning HAKMEM_STATS yes_please 0 1 0
expect_warning HAKMEM_VERBOSE 2 0 1 0
expect_warning HAKMEM_VERBOSE loud 0 1 0
expect_warning HAKMEM_STRICT tru 0 1 0
expect_warning HAKMEM_WARN 7 0 1 1
expect_warning HAKMEM_POOL_RING_CAP 4097 0 4096 32
expect_warning HAKMEM_POOL_REFILL_BATCH 0 1 4 2
expect_warning HAKMEM_POOL_REFILL_BATCH 5 1 4 2
expect_warning HAKMEM_POOL_CAP 0 1 1024 4
expect_warning HAKMEM_POOL_CAP 1025 1 1024 4
expect_warning HAKMEM_LARGE_CACHE_CAP 257 0 256 0
expect_warning HAKMEM_PURGE_DELAY_MS 3600001 0 3600000 100
expect_warning HAKMEM_PURGE_DELAY_MS -1 0 3600000 100
expect_warning HAKMEM_SEGMENT_CACHE 1025 0 1024 8
expect_warning HAKMEM_HUGE_CACHE 65 0 64 8
expect_warning HAKMEM_HUGE_CACHE x 0 64 8

# Unknown names.
for name in HAKMEM_FOO HAKMEM_TINY_SLL_CAPS HAKMEM_stats; do
	run "$name=1" || continue
	want="hakmem: warning: unknown variable $name ignored"
	if test "$(cat "$tmp.err")" != "$want"; then
		fail "$name=1: stderr is not exactly '$want':"
		sed 's/^/  stderr: /' "$tmp.err"
	else
		echo "ok: $name=1 -> $want"
	fi
done

# Two bad variables: one line each.
if run HAKMEM_FOO=1 HAKMEM_HUGE_CACHE=1000; then
	lines=$(wc -l <"$tmp.err")
	if test "$lines" -ne 2 || ! grep -q 'HAKMEM_FOO' "$tmp.err" ||
	   ! grep -q 'HAKMEM_HUGE_CACHE=1000' "$tmp.err"; then
		fail "two bad variables: expected two warning lines, got:"
		sed 's/^/  stderr: /' "$tmp.err"
	else
		echo "ok: two bad variables -> two lines"
	fi
fi

# ---- good values ---------------------------------------------------------------
expect_silence
expect_silence HAKMEM_STATS=0
expect_silence HAKMEM_TINY_SLL_CAP=0
expect_silence HAKMEM_TINY_SLL_CAP=65535
expect_silence HAKMEM_TINY_SLL_CAP=256
expect_silence HAKMEM_POOL_RING_CAP=0 HAKMEM_LARGE_CACHE_CAP=0 HAKMEM_SEGMENT_CACHE=0 HAKMEM_HUGE_CACHE=0
expect_silence HAKMEM_POOL_RING_CAP=4096 HAKMEM_LARGE_CACHE_CAP=256 HAKMEM_SEGMENT_CACHE=1024 HAKMEM_HUGE_CACHE=64
expect_silence HAKMEM_POOL_REFILL_BATCH=1 HAKMEM_POOL_CAP=1
expect_silence HAKMEM_POOL_REFILL_BATCH=4 HAKMEM_POOL_CAP=1024
expect_silence HAKMEM_PURGE_DELAY_MS=0
expect_silence HAKMEM_PURGE_DELAY_MS=3600000
expect_silence HAKMEM_WMAX=1.00
expect_silence HAKMEM_WMAX=4.00
expect_silence HAKMEM_WMAX=1
expect_silence HAKMEM_WMAX=2.5
expect_silence HAKMEM_WMAX=1.25
for v in 0 off OFF no No false FALSE; do
	expect_silence HAKMEM_STATS=$v
done
expect_silence HAKMEM_TINY_USE_SUPERSLAB=1 HAKMEM_VERBOSE=off HAKMEM_WARN=yes
expect_silence HAKMEM_TINY_USE_SUPERSLAB=On HAKMEM_VERBOSE=0 HAKMEM_WARN=TRUE
expect_silence HAKMEM_TINY_USE_SUPERSLAB=yes HAKMEM_STRICT=1 HAKMEM_WMAX=2 HAKMEM_POOL_CAP=8

# ---- HAKMEM_WARN=0: bad values and unknown names in silence ---------------------
expect_silence HAKMEM_WARN=0 HAKMEM_FOO=1 HAKMEM_WMAX=9 HAKMEM_STATS=maybe
expect_silence HAKMEM_WMAX=9 HAKMEM_FOO=1 HAKMEM_WARN=off

# ---- HAKMEM_STRICT=1: errors, then exit 1 before the program runs --------------
# strict NAME=VALUE...: the program must not run; every bad variable gets
# an error line, then one line says why hakmem exits.
strict() {
	checks=$((checks + 1))
	env "$@" "$prog" >"$tmp.out" 2>"$tmp.err"
	rc=$?
	if test $rc -ne 1; then
		fail "$*: exit status $rc, not 1"
		sed 's/^/  stderr: /' "$tmp.err"
		return
	fi
	if test -s "$tmp.out"; then
		fail "$*: the program ran:"
		sed 's/^/  stdout: /' "$tmp.out"
		return
	fi
	last=$(tail -n 1 "$tmp.err")
	if test "$last" != "hakmem: error: bad HAKMEM_* settings and HAKMEM_STRICT=1: exiting"; then
		fail "$*: the last line on stderr is '$last'"
		return
	fi
	if grep -v '^hakmem: error: ' "$tmp.err" >/dev/null; then
		fail "$*: a line on stderr is not an error:"
		sed 's/^/  stderr: /' "$tmp.err"
		return
	fi
	echo "ok: $* -> $(($(wc -l <"$tmp.err") - 1)) error(s), exit 1"
}
strict HAKMEM_STRICT=1 HAKMEM_FOO=1
strict HAKMEM_FOO=1 HAKMEM_STRICT=on
strict HAKMEM_STRICT=YES HAKMEM_STATS=maybe HAKMEM_POOL_CAP=0
# HAKMEM_WARN=0 does not hide the errors, which name value and range
strict HAKMEM_STRICT=1 HAKMEM_WMAX=9 HAKMEM_WARN=0
if grep -q '^hakmem: error: HAKMEM_WMAX=9: out of range; accepted: 1.00-4.00$' "$tmp.err"; then
	echo "ok: HAKMEM_STRICT=1 HAKMEM_WMAX=9 -> the error names the value and the range"
else
	fail "HAKMEM_STRICT=1 HAKMEM_WMAX=9: no line 'hakmem: error: HAKMEM_WMAX=9: out of range; accepted: 1.00-4.00':"
	sed 's/^/  stderr: /' "$tmp.err"
fi

# ---- HAKMEM_VERBOSE=1: the settings in effect ------------------------------------
if run HAKMEM_VERBOSE=1 HAKMEM_SEGMENT_CACHE=3; then
	n=$(grep -c '^hakmem:   HAKMEM_[A-Z_]*=[^ ]* (\(default\|environment\))$' "$tmp.err")
	if ! sed -n 1p "$tmp.err" | grep -q '^hakmem: version .*, pid [0-9]*: the settings in effect$'; then
		fail "HAKMEM_VERBOSE=1: the first line is not the header:"
		sed 's/^/  stderr: /' "$tmp.err"
	elif test "$n" -lt 14 || test "$n" -ne $(($(wc -l <"$tmp.err") - 1)); then
		fail "HAKMEM_VERBOSE=1: $n setting lines:"
		sed 's/^/  stderr: /' "$tmp.err"
	elif ! grep -q '^hakmem:   HAKMEM_SEGMENT_CACHE=3 (environment)$' "$tmp.err" ||
	     ! grep -q '^hakmem:   HAKMEM_WMAX=1.25 (default)$' "$tmp.err" ||
	     ! grep -q '^hakmem:   HAKMEM_VERBOSE=1 (environment)$' "$tmp.err"; then
		fail "HAKMEM_VERBOSE=1: values or sources wrong:"
		sed 's/^/  stderr: /' "$tmp.err"
	else
		echo "ok: HAKMEM_VERBOSE=1 -> $n settings with their source"
	fi
fi

# ---- HAKMEM_STATS ----------------------------------------------------------------
if run HAKMEM_STATS=1; then
	# The block's first line starts with "hakmem statistics" (it may go on,
	# e.g. with the version).
	case $(sed -n 1p "$tmp.err") in
	"hakmem statistics"*)
		echo "ok: HAKMEM_STATS=1 -> statistics on stderr" ;;
	*)	fail "HAKMEM_STATS=1: stderr does not begin with a line 'hakmem statistics':"
		sed 's/^/  stderr: /' "$tmp.err" ;;
	esac
	if test "$(wc -l <"$tmp.err")" -lt 5; then
		fail "HAKMEM_STATS=1: only $(wc -l <"$tmp.err") lines of statistics"
	fi
fi
if run HAKMEM_STATS=0; then
	if grep -q 'hakmem statistics' "$tmp.err"; then
		fail "HAKMEM_STATS=0 printed statistics"
	else
		echo "ok: HAKMEM_STATS=0 -> no statistics"
	fi
fi
for v in true YES on Text; do
	if run HAKMEM_STATS=$v; then
		if sed -n 1p "$tmp.err" | grep -q '^hakmem statistics'; then
			echo "ok: HAKMEM_STATS=$v -> statistics on stderr"
		else
			fail "HAKMEM_STATS=$v printed no statistics"
		fi
	fi
done

# The pool's variables take effect: the program starts with no mid page,
# so each of its mid refills takes min(batch, cap) new pages, and the
# statistics print the mean.
expect_pages() { # EXPECTED VAR=VALUE...
	want=$1
	shift
	run HAKMEM_STATS=1 "$@" || return
	got=$(sed -n 's/^  pages per refill  *\([0-9.]*\) .*/\1/p' "$tmp.err")
	if test "$got" != "$want"; then
		fail "$*: pages per refill '$got', expected $want"
		return
	fi
	echo "ok: $* -> $want pages per mid refill"
}
expect_pages 2.00
expect_pages 1.00 HAKMEM_POOL_REFILL_BATCH=1
expect_pages 3.00 HAKMEM_POOL_REFILL_BATCH=3
expect_pages 4.00 HAKMEM_POOL_REFILL_BATCH=4 HAKMEM_POOL_CAP=8
expect_pages 2.00 HAKMEM_POOL_REFILL_BATCH=4 HAKMEM_POOL_CAP=2

if test $failures -ne 0; then
	echo "$failures of $checks checks failed"
	exit 1
fi
echo "PASS: $checks environment checks"
exit 0
