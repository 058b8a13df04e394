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
# Symbol versions (when the linker took lib/hakmem.map, HAK_TEST_VERSION_
# SCRIPT=1): the map names exactly the hak_* API, and in the shared
# library's dynamic symbol table (objdump -T) every hak_* symbol carries
# the version node the map gives it, as its default version (name@@NODE),
# while the malloc family and the glibc names stay unversioned (Base): a
# version there would keep LD_PRELOAD from replacing malloc@GLIBC_2.2.5
# (lib/hakmem.map).  The nodes' own symbols (HAKMEM_0.1) are allowed in
# the export list.
#
# The Debian symbols file packaging/debian/libhakmem0.symbols must list
# the same symbols as the map and the family above, with the version that
# first had them (a node HAKMEM_X.Y: X.Y.0; the family: 0.1.0), so that
# dpkg-gensymbols, which compares it with the library built, agrees with
# the version script.  With HAK_SYMBOLS_DEBIAN=print this script prints
# that file instead of testing (make update-debian-symbols writes it).
#
# Run by make check, which exports abs_top_builddir and abs_top_srcdir.

# Word splitting of the symbol lists is intended.
# shellcheck disable=SC2086
set -u
: "${abs_top_builddir:?run this through make check (abs_top_builddir is not set)}"

# HAK_SYMBOLS_LIB: the library to check, libhakmem (the default) or
# libhakmem-secure (tests/symbols-secure.sh), with its Debian package.
libname=${HAK_SYMBOLS_LIB:-libhakmem}
case $libname in
libhakmem) debpkg=libhakmem0 ;;
libhakmem-secure) debpkg=libhakmem-secure0 ;;
*) echo "FAIL: HAK_SYMBOLS_LIB=$libname: libhakmem or libhakmem-secure"; exit 1 ;;
esac
so="$abs_top_builddir/lib/.libs/$libname.so"
map="${abs_top_srcdir:-$abs_top_builddir}/lib/hakmem.map"
OBJDUMP=${OBJDUMP_PROG:-objdump}
archive="$abs_top_builddir/lib/.libs/$libname.a"
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
hak_stats_print hak_stats_print_opts hak_collect"
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

# The version script: "SYMBOL NODE" for each name it lists (comments
# stripped; a node's braces hold its names, "} PARENT;" names no symbol).
if test ! -f "$map"; then
	echo "FAIL: $map not found"
	exit 1
fi
awk '
{
	line = $0; out = ""
	while (line != "") {
		if (incomment) {
			i = index(line, "*/")
			if (!i) { line = ""; break }
			line = substr(line, i + 2); incomment = 0
		} else {
			i = index(line, "/*")
			if (!i) { out = out line; line = "" }
			else { out = out substr(line, 1, i - 1); line = substr(line, i + 2); incomment = 1 }
		}
	}
	gsub(/[{};]/, " & ", out)
	n = split(out, w, /[ \t]+/)
	for (k = 1; k <= n; k++) {
		t = w[k]
		if (t == "") continue
		if (t == "{") { node = prev; continue }
		if (t == "}") { node = ""; continue }
		if (t != ";" && t != "global:" && t != "local:" && node != "") print t, node
		prev = t
	}
}' "$map" | sort >"$tmp.map"
awk '{ print $2 }' "$tmp.map" | sort -u >"$tmp.nodes"

printf '%s\n' $expected | sort -u >"$tmp.expected"
{ printf '%s\n' $toolchain; cat "$tmp.nodes"; } | sort -u >"$tmp.toolchain"
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

# versions: the map against the API list, then objdump -T of the library.
versions()
{
	st=0
	printf '%s\n' $api | sort -u >"$tmp.api"
	awk '{ print $1 }' "$tmp.map" | sort >"$tmp.mapnames"
	if ! cmp -s "$tmp.api" "$tmp.mapnames"; then
		echo "FAIL: $map does not list exactly the hak_* API once each:"
		diff "$tmp.api" "$tmp.mapnames" | sed -n 's/^</  missing from the map:/p; s/^>/  in the map, not in the API (or twice):/p'
		st=1
	fi
	if ! "$OBJDUMP" -T "$so" >"$tmp.objdump"; then
		echo "FAIL: $OBJDUMP -T $so failed"
		return 1
	fi
	# "NAME VERSION" of each defined symbol: the last two fields of a
	# line that starts with an address and is not *UND*.
	awk '/^[0-9a-f]+ / && !/\*UND\*/ { print $NF, $(NF - 1) }' "$tmp.objdump" |
		sort >"$tmp.symver"
	bad=$(awk '
		FILENAME == ARGV[1] { node[$1] = $2; next }
		FILENAME == ARGV[2] { family[$1] = 1; next }
		($1 in family) {
			if ($2 != "Base")
				printf "  %s has version %s; the malloc family must be unversioned (Base)\n", $1, $2
			next
		}
		($1 in node) {
			if ($2 != node[$1])
				printf "  %s has version %s, not %s\n", $1, $2, node[$1]
			seen[$1] = 1
			next
		}
		/^hak_/ {
			printf "  %s has version %s and is in no node of the map\n", $1, $2
		}
		END {
			for (s in node)
				if (!(s in seen) && !(s in family))
					printf "  %s is not in the dynamic symbol table\n", s
		}' "$tmp.map" "$tmp.family" "$tmp.symver")
	if test -n "$bad"; then
		echo "FAIL: symbol versions of $so ($OBJDUMP -T):"
		printf '%s\n' "$bad"
		st=1
	fi
	if test $st = 0; then
		nodes=$(tr '\n' ' ' <"$tmp.nodes")
		echo "PASS: $so: every hak_* symbol has its version node (${nodes% }), the malloc family none"
	fi
	return $st
}

# The Debian symbols file, from the map and the family (the override on,
# as the package builds it): one line per symbol and one per node.
debian_symbols()
{
	echo "# Generated from lib/hakmem.map and the malloc family of tests/symbols.sh"
	echo "# by make update-debian-symbols; make check compares (tests/symbols.sh)."
	echo "$libname.so.0 $debpkg #MINVER#"
	echo "* Build-Depends-Package: libhakmem-dev"
	{
		awk '{ v = $2; sub(/^HAKMEM_/, "", v); print " " $1 "@" $2 " " v ".0" }' "$tmp.map"
		awk '{ v = $1; sub(/^HAKMEM_/, "", v); print " " $1 "@" $1 " " v ".0" }' "$tmp.nodes"
		printf ' %s@Base 0.1.0\n' $family $extras
	} | LC_ALL=C sort
}

if test "${HAK_SYMBOLS_DEBIAN:-}" = print; then
	debian_symbols
	exit 0
fi

status=0
debsym="${abs_top_srcdir:-$abs_top_builddir}/packaging/debian/$debpkg.symbols"
if test -f "$debsym"; then
	debian_symbols | grep -v '^#' >"$tmp.debsym.want"
	grep -v '^#' "$debsym" >"$tmp.debsym.have"
	if cmp -s "$tmp.debsym.want" "$tmp.debsym.have"; then
		echo "PASS: packaging/debian/$debpkg.symbols agrees with lib/hakmem.map and the family ($(grep -c '^ ' "$tmp.debsym.have") symbols)"
	else
		echo "FAIL: packaging/debian/$debpkg.symbols differs from lib/hakmem.map and the family (make update-debian-symbols):"
		diff "$tmp.debsym.want" "$tmp.debsym.have" | sed -n 's/^</  missing:/p; s/^>/  not expected:/p'
		status=1
	fi
else
	echo "SKIP: $debsym not found: the Debian symbols file is not compared"
fi
if test -f "$so"; then
	check "$so" exported "$tmp.toolchain" -D --defined-only || status=1
	if test "${HAK_TEST_VERSION_SCRIPT:-1}" = 1; then
		if test "$override" = 1; then
			printf '%s\n' $family $extras | sort -u >"$tmp.family"
		else
			: >"$tmp.family"
		fi
		versions || status=1
	else
		echo "SKIP: symbol versions (the linker took no version script; see configure)"
	fi
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
