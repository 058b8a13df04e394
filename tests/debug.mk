# tests/debug.mk - `make check-debug`; included by the top Makefile.am
# (paths relative to the top of the tree).
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Builds a copy of the source tree in a temporary directory with
# --enable-debug (assertions and invariant validators) and runs there the
# real programs under LD_PRELOAD, the early-allocation test, the stress,
# thread, fork and semantics suites and the slab, pool and thread
# white-box suites (tests/debug.sh; about 2.5 minutes on 2 cores).  Not
# part of `make check`; .ci/run runs it after `make check`.

EXTRA_DIST += tests/debug.sh tests/debug.mk

check-debug:
	$(SHELL) $(srcdir)/tests/debug.sh $(abs_top_srcdir)

.PHONY: check-debug
