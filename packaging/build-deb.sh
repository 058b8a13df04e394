#!/bin/sh
# build-deb.sh - build hakmem's Debian packages from its release tarball.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Usage: packaging/build-deb.sh [--install-deps] [--out DIR] [--keep]
#
# What a maintainer does, from a clean clone (or an unpacked release):
#
#   1. copies the tree (the files git tracks or would track, as they are
#      in the working tree; everything, if it is not a git checkout) into
#      a scratch directory, runs ./autogen.sh when there is no configure,
#      then ./configure and make dist: the release tarball
#      hakmem-V.tar.gz;
#   2. unpacks it beside hakmem_V.orig.tar.gz, copies packaging/debian in
#      as debian/ and checks that debian/changelog's upstream version is
#      the tarball's;
#   3. dpkg-buildpackage -us -uc -b: configure with the flags of a Debian
#      package build (dpkg-buildflags, hardening=+all, see debian/rules),
#      make, make check (the whole test suite; DEB_BUILD_OPTIONS=nocheck
#      skips it), install, dh_makeshlibs with the symbols file checked at
#      level 4; the packages libhakmem0, libhakmem-secure0 and
#      libhakmem-dev;
#   4. lintian on the .changes (the binary packages) and on the source
#      package (dpkg-source -b, made before the build), with info tags
#      shown; it fails on an error or a warning, but for the tags that
#      packaging/README.md lists as left on purpose;
#   5. copies the .deb, .changes, .buildinfo, the source package and the
#      logs to DIR (default: ./deb-out).
#
# It needs dpkg-dev, debhelper, lintian and the Build-Depends of
# debian/control; it lists what is missing and stops, or, as root with
# --install-deps, installs it with apt-get.  The scratch directory is
# removed at the end unless --keep is given.
#
# `make deb` runs it.

set -eu

me=build-deb.sh
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
out=$PWD/deb-out
install_deps=no
keep=no

while test $# -gt 0; do
	case $1 in
	--install-deps) install_deps=yes ;;
	--keep) keep=yes ;;
	--out) test $# -ge 2 || { echo "$me: --out needs a directory" >&2; exit 2; }
	       out=$2; shift ;;
	--out=*) out=${1#--out=} ;;
	-h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "$me: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
case $out in /*) ;; *) out=$PWD/$out ;; esac

say() { printf '\n==> %s\n' "$*"; }
die() { echo "$me: error: $*" >&2; exit 1; }

test -f "$here/debian/control" || die "$here/debian/control not found"

# ---- the tools ----
missing=
for t in dpkg-buildpackage:dpkg-dev dpkg-source:dpkg-dev dpkg-parsechangelog:dpkg-dev \
	 dpkg-checkbuilddeps:dpkg-dev dh:debhelper lintian:lintian; do
	command -v "${t%%:*}" >/dev/null 2>&1 || missing="$missing ${t#*:}"
done
missing=$(printf '%s\n' $missing | sort -u | tr '\n' ' ')
if test -n "${missing% }"; then
	if test $install_deps = yes && test "$(id -u)" = 0; then
		say "apt-get install $missing"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing </dev/null
	else
		die "missing: $missing(apt-get install $missing, or run this as root with --install-deps)"
	fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-deb.XXXXXX") || die "mktemp failed"
if test $keep = no; then
	trap 'rm -rf "$work"' EXIT INT TERM
else
	echo "$me: scratch directory $work (kept)"
fi

# ---- 1. the release tarball ----
say "the release tarball (make dist) in $work/tree"
mkdir "$work/tree"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$src" && git ls-files -z --cached --others --exclude-standard |
		tar --null -T - -cf -) | tar -xf - -C "$work/tree"
else
	(cd "$src" && tar -cf - .) | tar -xf - -C "$work/tree"
fi
(
	cd "$work/tree"
	test -x configure || ./autogen.sh
	./configure --without-jemalloc --without-mimalloc --without-valgrind --without-gnuplot
	make dist
) >"$work/dist.log" 2>&1 || { tail -n 30 "$work/dist.log" >&2; die "make dist failed (log: $work/dist.log)"; }
tarball=$(ls "$work"/tree/hakmem-*.tar.gz)
test -f "$tarball" || die "make dist made no hakmem-*.tar.gz"
base=$(basename "$tarball" .tar.gz)
version=${base#hakmem-}
echo "$(basename "$tarball"): version $version"

# ---- 2. the source tree of the package ----
say "unpack, add debian/"
cp "$tarball" "$work/hakmem_$version.orig.tar.gz"
tar -xzf "$tarball" -C "$work"
pkgdir=$work/hakmem-$version
test -d "$pkgdir" || die "the tarball did not unpack into hakmem-$version/"
rm -rf "$pkgdir/debian"
cp -R "$here/debian" "$pkgdir/debian"
debversion=$(cd "$pkgdir" && dpkg-parsechangelog -S Version)
upstream=${debversion#*:}
upstream=${upstream%-*}
test "$upstream" = "$version" ||
	die "debian/changelog says $debversion, the tarball is $version: add a changelog entry (dch -v $version-1)"
echo "source package hakmem $debversion"

# ---- the build dependencies ----
if ! (cd "$pkgdir" && dpkg-checkbuilddeps) 2>"$work/builddeps"; then
	if test $install_deps = yes && test "$(id -u)" = 0; then
		say "apt-get build-dep (debian/control)"
		DEBIAN_FRONTEND=noninteractive apt-get build-dep -y "$pkgdir" </dev/null
	else
		cat "$work/builddeps" >&2
		die "Build-Depends are missing (as root: $me --install-deps, or apt-get build-dep $pkgdir)"
	fi
fi

# The source package, for lintian, from the tree before it is built.
say "dpkg-source -b"
(cd "$work" && dpkg-source -b "hakmem-$version") >"$work/source.log" 2>&1 ||
	{ cat "$work/source.log" >&2; die "dpkg-source -b failed"; }
dsc=$work/hakmem_${debversion#*:}.dsc
test -f "$dsc" || die "dpkg-source -b made no $dsc"

# ---- 3. the binary packages ----
say "dpkg-buildpackage -us -uc -b (log: build.log)"
jobs=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
if ! (cd "$pkgdir" &&
      DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=$jobs}" dpkg-buildpackage -us -uc -b) \
      >"$work/build.log" 2>&1; then
	tail -n 60 "$work/build.log" >&2
	mkdir -p "$out"
	cp "$work/build.log" "$out/"
	die "dpkg-buildpackage failed (log: $out/build.log)"
fi
grep -E '^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' "$work/build.log" | sed 's/^/make check: /' || true
changes=$work/hakmem_${debversion#*:}_$arch.changes
test -f "$changes" || die "no $changes"

# ---- 4. lintian ----
say "lintian"
lintian --info --display-info --fail-on none "$changes" "$dsc" >"$work/lintian.log" 2>&1 ||
	die "lintian failed to run: $(tail -n 3 "$work/lintian.log")"
cat "$work/lintian.log"
test -s "$work/lintian.log" || echo "(no tags)"
# The tags left on purpose (packaging/README.md says why); any other error
# or warning fails.
left="initial-upload-closes-no-bugs"
lint_status=0
bad=$(grep -E '^[EW]: ' "$work/lintian.log" | grep -v -E ": ($(echo $left | tr ' ' '|')) " || true)
if test -n "$bad"; then
	lint_status=1
fi
for t in $left; do
	if grep -q -E "^[EW]: .*: $t " "$work/lintian.log"; then
		echo "note: left: $t (see packaging/README.md)"
	fi
done

# ---- 5. the results ----
mkdir -p "$out"
cp "$work"/*.deb "$changes" "$work"/*.buildinfo "$dsc" "$work"/*.debian.tar.* \
	"$work/hakmem_$version.orig.tar.gz" "$work/build.log" "$work/lintian.log" "$out/"
say "packages in $out"
ls -l "$out"/*.deb
if test $lint_status -ne 0; then
	printf '%s\n' "$bad" >&2
	die "lintian reported an error or a warning (above; $out/lintian.log)"
fi
echo "$me: done"
