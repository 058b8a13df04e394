#!/bin/sh
# localize-archive.sh - link a libtool library, then make every hidden
# symbol of its static archive local.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Usage (Makefile.am, lib_libhakmem_la_LINK):
#
#   localize-archive.sh LIBRARY.la -- LIBTOOL-LINK-COMMAND...
#
# Runs the link command, then, when libtool built a static archive beside
# the shared object (old_library in LIBRARY.la; none with
# --disable-static), replaces the archive's objects by one relocatable
# object:
#
#   1. the members are partially linked into one object (ld -r), so that
#      the references between hakmem's files are resolved inside it;
#   2. objcopy --localize-hidden turns every hidden symbol - everything
#      but the hak_* API and the malloc family, see -fvisibility=hidden
#      and HAKMEM_EXPORT - into a local one, as the shared library's
#      linker does;
#   3. the archive is made again of that one object.
#
# A static program then sees no internal name of hakmem's (os_map,
# pool_init, tls_heap, ...) and may define its own.  No list of names is
# kept: what is hidden in the shared library is local in the archive.
#
# Objects compiled with GCC's -flto hold GIMPLE that a later link-time
# optimisation would read with the names still global; they are compiled
# to machine code in step 1 (gcc -r -flinker-output=nolto-rel), and the
# script fails if any LTO section is left.  Other IR (clang -flto) is
# refused.
#
# Tools come from the environment, as configure found them: CC, CFLAGS
# (for the LTO link only), LD, AR, RANLIB, OBJCOPY, OBJDUMP.
#
# On failure LIBRARY.la is removed, so that make does not take the
# unprocessed archive for finished.

set -u

me=localize-archive.sh
if test $# -lt 3 || test "$2" != --; then
	echo "usage: $me LIBRARY.la -- LINK-COMMAND..." >&2
	exit 2
fi
la=$1
shift 2

"$@" || exit $?

fail()
{
	echo "$me: error: $*" >&2
	rm -f "$la"
	test -z "${tmp:-}" || rm -rf "$tmp"
	exit 1
}

test -f "$la" || fail "$la was not created by the link command"
old=$(sed -n "s/^old_library='\(.*\)'\$/\1/p" "$la")
test -n "$old" || exit 0            # no static archive (--disable-static)

: "${CC:=cc}" "${CFLAGS:=}" "${LD:=ld}" "${AR:=ar}" "${RANLIB:=ranlib}"
: "${OBJCOPY:=objcopy}" "${OBJDUMP:=objdump}"

case $la in
*/*)	objdir=${la%/*}/.libs ;;
*)	objdir=.libs ;;
esac
archive=$objdir/$old
test -f "$archive" || fail "$la names $old, but $archive does not exist"
tmp=$archive.localize
rm -rf "$tmp"
mkdir "$tmp" || fail "cannot create $tmp"
obj=$tmp/${old%.a}.o

# What the members are: ELF objects (objdump reads them), with or without
# GCC's LTO sections.
if ! $OBJDUMP -h "$archive" >"$tmp/sections" 2>"$tmp/err"; then
	cat "$tmp/err" >&2
	fail "$OBJDUMP cannot read the objects of $archive (LLVM IR from clang -flto?); build the static library from object files: configure without -flto in CFLAGS, or with --disable-static"
fi

if grep '\.gnu\.lto_' "$tmp/sections" >/dev/null; then
	# GCC link-time optimisation: generate the code now.
	# shellcheck disable=SC2086
	$CC $CFLAGS -r -nostdlib -flinker-output=nolto-rel -o "$obj" \
		-Wl,--whole-archive "$archive" -Wl,--no-whole-archive ||
		fail "partial link of the -flto objects of $archive failed; configure without -flto in CFLAGS, or with --disable-static"
	if $OBJDUMP -h "$obj" | grep '\.gnu\.lto_' >/dev/null; then
		fail "the partial link of $archive kept LTO sections; configure without -flto in CFLAGS, or with --disable-static"
	fi
else
	# shellcheck disable=SC2086
	$LD -r -o "$obj" --whole-archive "$archive" --no-whole-archive ||
		fail "partial link of $archive failed ($LD -r)"
fi

$OBJCOPY --localize-hidden "$obj" || fail "$OBJCOPY --localize-hidden $obj failed"

rm -f "$tmp/new.a"
$AR cr "$tmp/new.a" "$obj" || fail "$AR cr failed"
$RANLIB "$tmp/new.a" || fail "$RANLIB failed"
mv -f "$tmp/new.a" "$archive" || fail "cannot replace $archive"
rm -rf "$tmp"
exit 0
