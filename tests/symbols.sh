#!/bin/sh
# symbols.sh - the shared library exports exactly the public interface.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Lists the dynamic symbols libhakmem.so defines (nm -D --defined-only) and
# compares them with the expected set: the hak_* API, plus the malloc
# family and glibc's __libc_* entry points when the override is on
# (HAKMEM_OVERRIDE in the build tree's config.h).  Nothing else may appear,
# except the few symbols the toolchain adds itself, listed below.
#
# Run by make check, which exports abs_top_builddir.

# Word splitting of the symbol lists is intended.
# shellcheck disable=SC2086
set -u
: "${abs_top_builddir:?run this through make check (abs_top_builddir is not set)}"

lib="$abs_top_builddir/lib/.libs/libhakmem.so"
config_h="$abs_top_builddir/config.h"
NM=${NM_PROG:-nm}

if test ! -f "$lib"; then
	echo "SKIP: $lib was not built (configured with --disable-shared?)"
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
# Added by the linker on some toolchains; allowed, never required.
toolchain="_init _fini _edata _end __bss_start"

if test "$override" = 1; then
	expected="$api $family"
else
	expected="$api"
fi

tmp=${TMPDIR:-/tmp}/hakmem-symbols.$$
trap 'rm -f "$tmp".*' EXIT INT TERM

if ! "$NM" -D --defined-only "$lib" >"$tmp.nm"; then
	echo "FAIL: $NM -D --defined-only $lib failed"
	exit 1
fi
# Third column: the name (strip a symbol version, name@@VER).
awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' "$tmp.nm" | sort >"$tmp.all"
sort -u "$tmp.all" >"$tmp.actual"
if ! cmp -s "$tmp.all" "$tmp.actual"; then
	echo "FAIL: symbols defined more than once:"
	uniq -d "$tmp.all"
	exit 1
fi
printf '%s\n' $expected | sort -u >"$tmp.expected"
printf '%s\n' $toolchain | sort -u >"$tmp.toolchain"

status=0
missing=$(comm -23 "$tmp.expected" "$tmp.actual")
extra=$(comm -13 "$tmp.expected" "$tmp.actual" | comm -23 - "$tmp.toolchain")
if test -n "$missing"; then
	echo "FAIL: not exported by $lib:"
	printf '  %s\n' $missing
	status=1
fi
if test -n "$extra"; then
	echo "FAIL: exported by $lib but not part of the interface:"
	printf '  %s\n' $extra
	status=1
fi
n=$(wc -l <"$tmp.expected")
if test $status = 0; then
	echo "PASS: $lib exports exactly the $n expected symbols (override $override)"
fi
exit $status
