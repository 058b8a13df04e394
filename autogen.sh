#!/bin/sh
# autogen.sh - generate ./configure and the Makefile.in files from a
# fresh checkout.  Needs autoconf, automake, libtool and pkg-config
# (scripts/install-deps.sh installs them on Debian).
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
set -e
cd "$(dirname "$0")"
mkdir -p m4
exec autoreconf -fi
