#!/bin/sh
# symbols.sh - the libraries define exactly the public interface.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# The expected set: the hak_* API, plus the malloc family, glibc's
# __libc_* entry points and the rest of glibc's malloc.o (malloc_trim,
# mallopt, mallinfo, ...) when the override is on (HAKMEM_OVERRIDE in the
# build tree's config.h).  Two libraries are compared with it:
#
#   lib/.libs/libhakmem.so  its dynamic symbols (nm -D --defined-only);
#                           the few symbols the toolchain adds itself,
#                           listed below, are allowed too;
#   lib/.libs/libhakmem.a   its global symbols (nm -g --defined-only): a
#                           static program links them beside its own, so
#                           an internal name there (pool_init, os_map,
#                           tls_heap, ...) would clash with the program's.
#
# Nothing else may appear.  A library that was not built (--disable-shared,
# --disable-static) is skipped with a message; the test is skipped when
# neither was.
#
# Run by make check, which exports abs_top_builddir.

# Word splitting of the symbol lists is intended.
# shellcheck disable=SC2086
set -u
: "${abs_top_builddir:?run this through make check (abs_top_builddir is not set)}"

so="$abs_top_builddir/lib/.libs/libhakmem.so"
archive="$abs_top_builddir/lib/.libs/libhakmem.a"
config_h="$abs_top_builddir/config.h"
NM=${NM_PROG:-nm}

if test ! -f "$so" && test ! -f "$archive"; then
	echo "SKIP: neither $so nor $archive was built"
	exit 77
fi
if test ! -f "$config_h"; then
	echo "FAIL: $config_h not found"
	exit 1
fi

override=$(sed -n 's/^#define HAKMEM_OVERRIDE \([01]\)$/\1/p' "$config_h")
case $override in
0|1) ;;
*)	echo "FAIL: no '#define HAKMEM_OVERRIDE 0|1' in $config_h"; exit 1 ;;
esac
# The Makefile's view (AM_CONDITIONAL OVERRIDE) must agree with config.h.
if test -n "${HAK_TEST_OVERRIDE:-}" && test "$HAK_TEST_OVERRIDE" != "$override"; then
	echo "FAIL: config.h says HAKMEM_OVERRIDE $override, the Makefile's OVERRIDE says $HAK_TEST_OVERRIDE"
	exit 1
fi

api="hak_version hak_malloc hak_calloc hak_realloc hak_free hak_free_sized
hak_aligned_alloc hak_posix_memalign hak_usable_size hak_stats_get
hak_stats_print hak_collect"
family="malloc free calloc realloc reallocarray posix_memalign aligned_alloc
memalign valloc pvalloc malloc_usable_size free_sized free_aligned_sized
__libc_malloc __libc_free __libc_calloc __libc_realloc __libc_memalign
__libc_valloc __libc_pvalloc"
# The rest of what libc.so exports from glibc's malloc.o: without them a
# static program calling malloc_trim would take glibc's malloc.o, and its
# malloc, out of libc.a.
extras="malloc_trim mallopt mallinfo mallinfo2 malloc_stats malloc_info
__libc_mallopt __libc_mallinfo"
# Added by the linker on some toolchains; allowed, never required.
toolchain="_init _fini _edata _end __bss_start"

if test "$override" = 1; then
	expected="$api $family $extras"
else
	expected="$api"
fi

tmp=${TMPDIR:-/tmp}/hakmem-symbols.$$
trap 'rm -f "$tmp".*' EXIT INT TERM

printf '%s\n' $expected | sort -u >"$tmp.expected"
printf '%s\n' $toolchain | sort -u >"$tmp.toolchain"
n=$(wc -l <"$tmp.expected")

# check FILE WHAT ALLOWED NM-OPTION...: compare the symbols nm lists for
# FILE with the expected set; ALLOWED names a file of symbols that may
# appear without being expected.  Returns 1 on a difference.
check()
{
	file=$1 what=$2 allowed=$3
	shift 3
	if ! "$NM" "$@" "$file" >"$tmp.nm"; then
		echo "FAIL: $NM $* $file failed"
		return 1
	fi
	# Third column: the name (strip a symbol version, name@@VER).  An
	# archive's member headers ("member.o:") and blank lines have fewer.
	awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' "$tmp.nm" | sort >"$tmp.all"
	sort -u "$tmp.all" >"$tmp.actual"
	if ! cmp -s "$tmp.all" "$tmp.actual"; then
		echo "FAIL: symbols defined more than once in $file:"
		uniq -d "$tmp.all"
		return 1
	fi
	if ! test -s "$tmp.actual"; then
		echo "FAIL: $NM $* $file listed no symbols"
		return 1
	fi
	missing=$(comm -23 "$tmp.expected" "$tmp.actual")
	extra=$(comm -13 "$tmp.expected" "$tmp.actual" | comm -23 - "$allowed")
	st=0
	if test -n "$missing"; then
		echo "FAIL: not $what by $file:"
		printf '  %s\n' $missing
		st=1
	fi
	if test -n "$extra"; then
		echo "FAIL: $what by $file but not part of the interface:"
		printf '  %s\n' $extra
		st=1
	fi
	if test $st = 0; then
		echo "PASS: $file: exactly the $n expected symbols $what (override $override)"
	fi
	return $st
}

status=0
if test -f "$so"; then
	check "$so" exported "$tmp.toolchain" -D --defined-only || status=1
else
	echo "SKIP: $so was not built (configured with --disable-shared?)"
fi
if test -f "$archive"; then
	: >"$tmp.none"
	check "$archive" "defined globally" "$tmp.none" -g --defined-only || status=1
else
	echo "SKIP: $archive was not built (configured with --disable-static?)"
fi
exit $status
