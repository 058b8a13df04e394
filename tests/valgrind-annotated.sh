#!/bin/sh
# valgrind-annotated.sh - make check-valgrind-annotated: hakmem built with
# --enable-valgrind-annotations tells memcheck about its blocks.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Builds a copy of the source tree (tests/snapshot.sh) in a temporary
# directory with --enable-valgrind-annotations --disable-static, links
# tests/vgtrack_prog.c against that libhakmem.so, and runs it under
# memcheck (--soname-synonyms=somalloc=nouserintercepts, so that memcheck
# leaves hakmem's functions to hakmem and sees only what hakmem tells it):
#   clean    no error (exit 0);
#   uaf      a read after hak_free: "Invalid read", exit 9;
#   overrun  a write one byte past the size asked for: "Invalid write", 9;
#   leak     a lost block: "definitely lost", 9.
# About two minutes on 2 cores.  Not part of make check.

set -u

here=$(cd "$(dirname "$0")" && pwd)
src=${1:-$here/..}
src=$(cd "$src" && pwd) || exit 2
VALGRIND=${VALGRIND:-valgrind}
CC=${CC:-cc}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-vgtrack.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

. "$here/snapshot.sh"
hak_snapshot "$src" "$tmp/src" valgrind-annotated.sh || exit 2
mkdir "$tmp/build" && cd "$tmp/build" || exit 2
echo "valgrind-annotated.sh: configure --enable-valgrind-annotations --disable-static"
"$tmp/src/configure" --enable-valgrind-annotations --disable-static \
	--without-jemalloc --without-mimalloc --without-gnuplot >configure.log 2>&1 ||
	{ tail -20 configure.log; exit 1; }
make -j"${JOBS:-2}" lib/libhakmem.la >make.log 2>&1 || { tail -20 make.log; exit 1; }
$CC -g -O0 -fno-builtin -I"$tmp/src/include" "$tmp/src/tests/vgtrack_prog.c" -o vgtrack_prog \
	-L"$tmp/build/lib/.libs" -l:libhakmem.so.0 -Wl,-rpath,"$tmp/build/lib/.libs" || exit 1

failures=0
# run MODE STATUS PATTERN
run() {
	"$VALGRIND" --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
		--soname-synonyms=somalloc=nouserintercepts ./vgtrack_prog "$1" >out 2>err
	rc=$?
	if test $rc -ne "$2"; then
		echo "FAIL: $1: exit status $rc, not $2"
		sed 's/^/  /' err
		failures=$((failures + 1))
	elif test -n "$3" && ! grep -q "$3" err; then
		echo "FAIL: $1: memcheck did not say '$3'"
		sed 's/^/  /' err
		failures=$((failures + 1))
	else
		echo "ok: $1 -> exit $rc${3:+, '$3'}"
	fi
}
run clean 0 ""
run uaf 9 "Invalid read"
run overrun 9 "Invalid write"
run leak 9 "definitely lost: 100 bytes in 1 blocks"
test $failures -eq 0 || exit 1
echo "PASS: memcheck sees hakmem's blocks"
