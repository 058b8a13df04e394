# tests/hardened.mk - `make check-hardened`; included by the top
# Makefile.am (paths relative to the top of the tree).
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Builds a copy of the source tree twice in a temporary directory, with the
# flags of a Debian package build (dpkg-buildflags with
# DEB_BUILD_MAINT_OPTIONS=hardening=+all: _FORTIFY_SOURCE, stack
# protector, relro, bind now, PIE), once with -D_FORTIFY_SOURCE=2 and once
# with -D_FORTIFY_SOURCE=3, and runs the whole `make check` in each
# (tests/hardened.sh; about 5 minutes on 2 cores).  Not part of
# `make check`; .ci/run runs it after `make check`.

EXTRA_DIST += tests/hardened.sh tests/hardened.mk

check-hardened:
	$(SHELL) $(srcdir)/tests/hardened.sh $(abs_top_srcdir)

.PHONY: check-hardened
