#!/bin/sh
# badfree-secure.sh - tests/badfree.sh against the secure library, where
# HAKMEM_ON_ERROR cannot keep a program with a bad free running.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Run by make check (configure --enable-secure, the default), which
# exports abs_top_builddir.

set -u
: "${abs_top_builddir:?run this through make check (abs_top_builddir is not set)}"
BADFREE_LIB=$abs_top_builddir/lib/.libs/libhakmem-secure.so
BADFREE_SECURE=1
export BADFREE_LIB BADFREE_SECURE
exec ${SHELL:-/bin/sh} "$(dirname "$0")/badfree.sh"
