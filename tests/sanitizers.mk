# tests/sanitizers.mk - `make check-sanitizers`; included by the top
# Makefile.am (paths relative to the top of the tree).
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Builds a copy of the source tree three times in a temporary directory,
# with --enable-sanitizer=thread, =address and =undefined, and runs the
# cross-thread stress, slab and thread suites in each (tests/sanitizers.sh;
# about 10 minutes on 2 cores).  Not part of `make check`.

EXTRA_DIST += tests/sanitizers.sh tests/sanitizers.mk

check-sanitizers:
	$(SHELL) $(srcdir)/tests/sanitizers.sh $(abs_top_srcdir)

.PHONY: check-sanitizers
