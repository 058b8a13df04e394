#!/bin/sh
# install-deps.sh - install what hakmem needs to build, test and benchmark
# on Debian 12 (or a Debian-like system with apt-get).
#
# Safe to run again: when every package is installed already it does not
# touch apt at all.  Run as root to install; as another user it lists what
# is missing and fails only if something is.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
set -eu

PACKAGES="build-essential autoconf automake libtool pkg-config check
libjemalloc-dev libmimalloc-dev gnuplot-nox time python3 git valgrind
groff-base ca-certificates sqlite3"

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "install-deps.sh: no dpkg-query: not a Debian-like system." >&2
	echo "install-deps.sh: install the equivalents of:" $PACKAGES >&2
	exit 0
fi

missing=
for p in $PACKAGES; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case $status in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done

if [ -z "$missing" ]; then
	echo "install-deps.sh: all build dependencies are installed."
	exit 0
fi

echo "install-deps.sh: missing:$missing"

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: not root; install them with:" >&2
	echo "    apt-get install --no-install-recommends$missing" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps.sh: apt-get not found; install the packages above by hand." >&2
	exit 1
fi

DEBIAN_FRONTEND=noninteractive
export DEBIAN_FRONTEND
apt-get update
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $PACKAGES </dev/null
echo "install-deps.sh: done."
