#!/bin/sh
# docs.sh - the library's name in README.md and man/hakmem.3, as a packager
# and a user of an installed package need it.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# The shared library's directory is $libdir, which is /usr/local/lib after
# a plain `make install` but /usr/lib/x86_64-linux-gnu (or /usr/lib64, ...)
# in a distribution's package, and the unversioned libhakmem.so is only
# the link the linker uses: a distribution ships it in the -dev package,
# not with the library.  So the documentation's LD_PRELOAD examples name
# the versioned file, the SONAME, without a directory (ld.so searches the
# library path for a name without a slash).  For README.md and
# man/hakmem.3 this checks that
#   1. there is at least one LD_PRELOAD example, and no LD_PRELOAD line
#      names libhakmem.so without its version;
#   2. no line names libhakmem.so* under an absolute directory (such as
#      /usr/local/lib/libhakmem.so);
#   3. every libhakmem.so.N the text names is the SONAME of the library
#      just built (readelf -d, or objdump -p), so that the documentation
#      follows when the libtool version changes;
#   4. every hak_* function of lib/hakmem.map has its link page man/NAME.3,
#      installed, and is named in hakmem(3)'s NAME and SYNOPSIS;
#   5. hakmem.pc has its fields, URL included, and pkg-config --validate
#      accepts it.
# `make installcheck` runs a program the way the examples say.
#
# Run by make check, which exports abs_top_srcdir and abs_top_builddir.

set -u
: "${abs_top_srcdir:?run this through make check (abs_top_srcdir is not set)}"
: "${abs_top_builddir:?run this through make check (abs_top_builddir is not set)}"

docs="README.md man/hakmem.3"
lib="$abs_top_builddir/lib/.libs/libhakmem.so"
failures=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

have() {
	command -v "$1" >/dev/null 2>&1
}

soname=
if test -f "$lib"; then
	if have readelf; then
		soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
	elif have objdump; then
		soname=$(objdump -p "$lib" | awk '$1 == "SONAME" { print $2 }')
	else
		echo "note: neither readelf nor objdump is installed: the SONAME is not compared"
	fi
	if test -z "$soname" && { have readelf || have objdump; }; then
		fail "$lib has no SONAME"
	elif test -n "$soname"; then
		echo "ok: the library's SONAME is $soname"
	fi
else
	echo "note: $lib was not built (--disable-shared?): the SONAME is not compared"
fi

for d in $docs; do
	f="$abs_top_srcdir/$d"
	if test ! -f "$f"; then
		fail "$d is missing"
		continue
	fi

	# 1. LD_PRELOAD examples name the versioned library.
	examples=$(grep -n 'LD_PRELOAD=' "$f")
	if test -z "$examples"; then
		fail "$d has no LD_PRELOAD example"
	fi
	bad=$(printf '%s\n' "$examples" | grep -E 'libhakmem\.so([^.]|$)')
	if test -n "$bad"; then
		fail "$d: LD_PRELOAD with the unversioned libhakmem.so (a distribution ships it only in the -dev package); name ${soname:-the SONAME} instead:"
		printf '%s\n' "$bad" | sed "s|^|  $d:|"
	fi

	# 2. No absolute directory before the library's name.
	bad=$(grep -n -E '(^|[^A-Za-z0-9_.$)}-])/[A-Za-z0-9_./-]*libhakmem\.so' "$f")
	if test -n "$bad"; then
		fail "$d: a hard-coded directory (\$libdir differs between installations; ld.so finds a name without a slash):"
		printf '%s\n' "$bad" | sed "s|^|  $d:|"
	fi

	# 3. The versioned name is the SONAME.
	names=$(grep -o -E 'libhakmem\.so\.[0-9]+(\.[0-9]+)*' "$f" | sort -u)
	if test -n "$soname"; then
		for n in $names; do
			if test "$n" != "$soname"; then
				fail "$d names $n, but the library's SONAME is $soname:"
				grep -n -F "$n" "$f" | sed "s|^|  $d:|"
			fi
		done
		if printf '%s\n' "$examples" | grep -q -F "LD_PRELOAD=$soname"; then
			echo "ok: $d: LD_PRELOAD=$soname"
		else
			fail "$d: no example LD_PRELOAD=$soname"
		fi
	fi
done

# 4. Every hak_* function of the version script has its manual page: a
#    link page man/NAME.3 to hakmem(3), installed (dist_man3_MANS in
#    Makefile.am), and its name in hakmem(3)'s NAME and SYNOPSIS.
map="$abs_top_srcdir/lib/hakmem.map"
names=$(sed -n 's/^[[:space:]]*\(hak_[a-z_0-9]*\);.*/\1/p' "$map")
if test -z "$names"; then
	fail "no hak_* function found in $map"
fi
nameline=$(sed -n '/^\.SH NAME/,/^\.SH/p' "$abs_top_srcdir/man/hakmem.3" | tr ',\n' '  ')
synopsis=$(sed -n '/^\.SH SYNOPSIS/,/^\.SH/p' "$abs_top_srcdir/man/hakmem.3")
nman=0
for n in $names; do
	page="$abs_top_srcdir/man/$n.3"
	if test "$(cat "$page" 2>/dev/null)" != ".so man3/hakmem.3"; then
		fail "man/$n.3 is missing or is not the link page '.so man3/hakmem.3'"
	fi
	if ! grep -q "man/$n\.3" "$abs_top_srcdir/Makefile.am"; then
		fail "man/$n.3 is not in dist_man3_MANS (Makefile.am)"
	fi
	case " $nameline " in
	*" $n "*) ;;
	*) fail "man/hakmem.3: $n is not in the NAME section" ;;
	esac
	if ! printf '%s\n' "$synopsis" | grep -q "$n("; then
		fail "man/hakmem.3: $n is not in the SYNOPSIS"
	fi
	nman=$((nman + 1))
done
echo "ok: the $nman hak_* functions of lib/hakmem.map have their manual pages"

# 5. hakmem.pc, as configure wrote it, has every field a packager and
#    pkg-config's users look for, the URL of the project among them, and
#    pkg-config accepts it.
pc="$abs_top_builddir/hakmem.pc"
if test -f "$pc"; then
	for field in Name Description Version URL Libs Libs.private Cflags; do
		if ! grep -q "^$field: [^ ]" "$pc"; then
			fail "hakmem.pc has no '$field:' field (or it is empty)"
		fi
	done
	if have pkg-config && ! pkg-config --validate "$pc"; then
		fail "pkg-config --validate $pc failed"
	fi
	echo "ok: hakmem.pc: $(sed -n 's/^URL: //p' "$pc")"
else
	fail "$pc was not written by configure"
fi

test $failures -eq 0 || { echo "$failures check(s) failed"; exit 1; }
echo "PASS: README.md and man/hakmem.3 name ${soname:-the versioned library}, in no fixed directory"
exit 0
