#!/bin/sh
# tests/hardened.sh - build hakmem with Debian's hardening build flags and
# run `make check`, once with _FORTIFY_SOURCE=2 and once with =3.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Usage: tests/hardened.sh [SRCDIR]      (make check-hardened)
#
# The flags are what a Debian package build uses: CFLAGS, CPPFLAGS and
# LDFLAGS from `dpkg-buildflags` (package dpkg-dev, which build-essential
# pulls in) with DEB_BUILD_MAINT_OPTIONS=hardening=+all: -O2,
# -D_FORTIFY_SOURCE=2, -fstack-protector-strong, -Wformat
# -Werror=format-security, -Wl,-z,relro -Wl,-z,now (and -fPIE/-pie, which
# Debian's gcc does by default).  For level 3 the -D_FORTIFY_SOURCE=N that
# dpkg-buildflags gives is replaced by -U_FORTIFY_SOURCE
# -D_FORTIFY_SOURCE=3.
#
# _FORTIFY_SOURCE makes memset, memcpy, ... abort ("buffer overflow
# detected") when they write past the end of an object whose size the
# compiler knows; hakmem's allocation functions are declared alloc_size, so
# a block's size is the size asked for, not hak_usable_size().  A test that
# writes beyond what it asked for without claiming it first (realloc to the
# usable size, man 3 hakmem) aborts here.
#
# SRCDIR is the source tree (default: the directory above this script).  It
# is never written to: a snapshot of it, without build products, is copied
# to a temporary directory first (as tests/sanitizers.sh does),
# ./autogen.sh is run in the copy when it has no configure script, and each
# level gets its own build directory beside it.
#
# Before `make check`, each level builds a canary against the library just
# built, with the same flags: writing hak_usable_size(p) bytes into
# hak_malloc(100) must abort, and doing so after hak_realloc(p,
# hak_usable_size(p)) must not (nor may that realloc move the block).  So a
# build in which the flags did not take effect, or the header lost its
# alloc_size attributes, fails instead of passing for nothing.
#
# Environment:
#   HARD_LEVELS       _FORTIFY_SOURCE levels to run (default "2 3")
#   HARD_JOBS         make -j for the builds (default 2)
#   HARD_CHECK_JOBS   make -j for `make check` (default 1, as CI's own
#                     `make check`: some tests measure time and memory)
#   HARD_KEEP=1       keep the temporary directory
#   DEB_*             read by dpkg-buildflags as usual (DEB_CFLAGS_APPEND,
#                     ...); DEB_BUILD_MAINT_OPTIONS is set here
#
# Prints one "PASS: fortify=N" or "FAIL: fortify=N" line per level and
# exits 1 when any failed, after printing the failing test logs; 2 when it
# could not start (no dpkg-buildflags, no source tree).

set -u

here=$(cd "$(dirname "$0")" && pwd)
src=${1:-$here/..}
src=$(cd "$src" && pwd) || { echo "hardened.sh: no such directory: ${1-}" >&2; exit 2; }
test -f "$src/configure.ac" || { echo "hardened.sh: $src is not the hakmem source tree" >&2; exit 2; }

if ! command -v dpkg-buildflags > /dev/null 2>&1; then
	echo "hardened.sh: dpkg-buildflags not found; install dpkg-dev (Debian:" >&2
	echo "hardened.sh: apt-get install dpkg-dev, or scripts/install-deps.sh)" >&2
	echo "FAIL: fortify (no dpkg-buildflags)"
	exit 2
fi

levels=${HARD_LEVELS:-2 3}
jobs=${HARD_JOBS:-2}
check_jobs=${HARD_CHECK_JOBS:-1}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-hard.XXXXXX") || exit 2
cleanup() { if [ "${HARD_KEEP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Snapshot of the sources (tests/snapshot.sh): never written to, built
# from a copy without build products.
. "$here/snapshot.sh"
snap=$tmp/src
hak_snapshot "$src" "$snap" hardened.sh || exit 2

# ---------------------------------------------------------------------------
# The flags.  dpkg-buildflags runs in the snapshot, so that its
# -ffile-prefix-map names the directory the build reads.
# ---------------------------------------------------------------------------

# buildflag NAME: dpkg-buildflags --get NAME with hardening=+all.
buildflag() {
	(cd "$snap" && DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get "$1")
}

hard_cflags=$(buildflag CFLAGS) && hard_cppflags=$(buildflag CPPFLAGS) &&
	hard_ldflags=$(buildflag LDFLAGS) || {
	echo "hardened.sh: dpkg-buildflags failed" >&2
	exit 2
}
case " $hard_cppflags " in
*" -D_FORTIFY_SOURCE="*) ;;
*)
	echo "hardened.sh: dpkg-buildflags gives no -D_FORTIFY_SOURCE in CPPFLAGS:" >&2
	echo "hardened.sh:   CPPFLAGS=$hard_cppflags" >&2
	echo "hardened.sh: (DEB_BUILD_OPTIONS=noopt? DEB_CPPFLAGS_SET?)" >&2
	echo "FAIL: fortify (no _FORTIFY_SOURCE from dpkg-buildflags)"
	exit 2
	;;
esac

# cppflags_for LEVEL: dpkg-buildflags' CPPFLAGS with _FORTIFY_SOURCE=LEVEL.
cppflags_for() {
	case " $hard_cppflags " in
	*" -D_FORTIFY_SOURCE=$1 "*) printf '%s\n' "$hard_cppflags" ;;
	*) printf '%s\n' "$hard_cppflags" | sed -e 's/ *-U_FORTIFY_SOURCE\( \|$\)/\1/g' \
		-e "s/-D_FORTIFY_SOURCE=[0-9]*/-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=$1/" ;;
	esac
}

# ---------------------------------------------------------------------------
# The canary (see above).  `canary` must die of SIGABRT with glibc's
# "buffer overflow detected"; `canary claim` must exit 0.
# ---------------------------------------------------------------------------
cat > "$tmp/canary.c" <<'EOF'
#include <hakmem/hakmem.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	unsigned char *p = hak_malloc(100);
	size_t u;

	if (p == NULL)
		return 2;
	u = hak_usable_size(p);
	if (u <= 100) {
		fprintf(stderr, "canary: usable size %zu leaves no room beyond 100 bytes\n", u);
		return 3;
	}
	if (argc > 1 && strcmp(argv[1], "claim") == 0) {
		unsigned char *q = hak_realloc(p, u);
		if (q != p) {
			fprintf(stderr, "canary: realloc to the usable size moved the block\n");
			return 4;
		}
		memset(q, 0x5a, u);
		hak_free(q);
		return 0;
	}
	memset(p, 0x5a, u); /* past the 100 bytes asked for: must abort */
	hak_free(p);
	fprintf(stderr, "canary: wrote %zu bytes into hak_malloc(100) unnoticed\n", u);
	return 5;
}
EOF

# canary LEVEL: build and run the canary in $tmp/fortifyLEVEL; 0 when both
# runs behaved.
canary() {
	b=$tmp/fortify$1
	cc=$(sed -n 's/^CC = //p' "$b/Makefile")
	if ! (cd "$b" && $cc $cppflags $hard_cflags -I"$snap/include" "$tmp/canary.c" \
		-o canary $hard_ldflags -L"$b/lib/.libs" -lhakmem) > "$b/canary.out" 2>&1; then
		cat "$b/canary.out"
		echo "== fortify=$1: the canary did not build"
		return 1
	fi
	(cd "$b" && LD_LIBRARY_PATH="$b/lib/.libs" ./canary claim) >> "$b/canary.out" 2>&1
	rc_claim=$?
	# The outer subshell waits for it (the exit after it keeps the shell
	# from exec'ing the inner one) and prints its "Aborted" to /dev/null.
	( (cd "$b" && ulimit -c 0 && LD_LIBRARY_PATH="$b/lib/.libs" exec ./canary) \
		>> "$b/canary.out" 2>&1; exit $? ) 2>/dev/null
	rc_over=$?
	if [ $rc_claim -eq 0 ] && [ $rc_over -gt 128 ] && [ $((rc_over - 128)) -eq 6 ] &&
		grep -q 'buffer overflow detected' "$b/canary.out"; then
		echo "== fortify=$1: canary: an overflow past the request aborts; after realloc to the usable size, no abort"
		return 0
	fi
	cat "$b/canary.out"
	echo "== fortify=$1: canary failed (claim: exit $rc_claim, want 0; overflow: exit $rc_over, want SIGABRT)"
	return 1
}

# ---------------------------------------------------------------------------
# One level: configure, build, canary, make check.
# ---------------------------------------------------------------------------

# build LEVEL: configure and build in $tmp/fortifyLEVEL; 0 when it built.
build() {
	b=$tmp/fortify$1
	rm -rf "$b"
	mkdir -p "$b"
	echo "== fortify=$1: configure"
	echo "   CFLAGS=$hard_cflags"
	echo "   CPPFLAGS=$cppflags"
	echo "   LDFLAGS=$hard_ldflags"
	if ! (cd "$b" && "$snap/configure" CFLAGS="$hard_cflags" CPPFLAGS="$cppflags" \
		LDFLAGS="$hard_ldflags" > configure.out 2>&1); then
		tail -n 40 "$b/configure.out"
		tail -n 60 "$b/config.log" 2>/dev/null
		return 1
	fi
	echo "== fortify=$1: make -j$jobs"
	if ! make -C "$b" -j"$jobs" > "$b/make.out" 2>&1; then
		tail -n 60 "$b/make.out"
		return 1
	fi
	nwarn=$(grep -c 'warning:' "$b/make.out")
	if [ "$nwarn" -gt 0 ]; then
		echo "== fortify=$1: $nwarn compiler warnings:"
		grep 'warning:' "$b/make.out" | head -n 20
	fi
	return 0
}

# check LEVEL: make check.
check() {
	b=$tmp/fortify$1
	echo "== fortify=$1: make -j$check_jobs check"
	make -C "$b" -j"$check_jobs" check > "$b/check.out" 2>&1
	rc=$?
	grep -E '^(PASS|FAIL|ERROR|XFAIL|XPASS|SKIP): ' "$b/check.out"
	if [ $rc -ne 0 ]; then
		shown=0
		for t in $(cd "$b" && find . -name '*.trs' | sort); do
			if grep -q '^:test-result: \(FAIL\|ERROR\|XPASS\)' "$b/$t"; then
				echo "---- fortify=$1: ${t%.trs}.log"
				head -n 200 "$b/${t%.trs}.log"
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
for level in $levels; do
	start=$(date +%s)
	case $level in
	1|2|3) ;;
	*) echo "hardened.sh: _FORTIFY_SOURCE level $level? (1, 2 or 3)" >&2; exit 2 ;;
	esac
	cppflags=$(cppflags_for "$level")
	ok=no
	if build "$level"; then
		ok=built
	else
		echo "== fortify=$level: build failed"
	fi
	if [ $ok = built ] && canary "$level" && check "$level"; then
		line="PASS: fortify=$level ($(( $(date +%s) - start )) s)"
	else
		line="FAIL: fortify=$level ($(( $(date +%s) - start )) s)"
		status=1
	fi
	echo "$line"
	summary="$summary$line
"
done

echo "== summary"
printf '%s' "$summary"
exit $status
