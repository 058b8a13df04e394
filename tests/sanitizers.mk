# tests/sanitizers.mk - `make check-sanitizers`; included by the top
# Makefile.am (paths relative to the top of the tree).
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Builds a copy of the source tree three times in a temporary directory,
# with --enable-sanitizer=thread, =address and =undefined, and runs the
# cross-thread stress, slab and thread suites in each (tests/sanitizers.sh;
# about 10 minutes on 2 cores).  Not part of `make check`.

EXTRA_DIST += tests/sanitizers.sh tests/sanitizers.mk tests/snapshot.sh \
	tests/valgrind-annotated.sh tests/vgtrack_prog.c

check-sanitizers:
	$(SHELL) $(srcdir)/tests/sanitizers.sh $(abs_top_srcdir)

# valgrind memcheck on the single-thread suites through the hak_* API and
# on the pool's suite; any error fails.  Best with --disable-override,
# where valgrind tracks the test programs' own mallocs as well.
# HAK_TEST_NO_RSS: memcheck's shadow memory of what a test touched stays
# resident after hakmem gives the pages back, so RSS bounds are skipped.
HAKMEM_VALGRIND_TESTS = tests/check_semantics_api$(EXEEXT) tests/check_stats$(EXEEXT) \
	tests/check_pool$(EXEEXT)

if HAVE_CHECK
if HAVE_VALGRIND
check-valgrind: $(HAKMEM_VALGRIND_TESTS)
	@for t in $(HAKMEM_VALGRIND_TESTS); do \
		echo "valgrind $$t"; \
		CK_FORK=no HAK_TEST_NO_RSS=1 $(LIBTOOL) --mode=execute $(VALGRIND) --quiet --error-exitcode=9 \
			--trace-children=no ./$$t || exit 1; \
	done
else
check-valgrind:
	@echo "error: make check-valgrind: valgrind was not found, or configure was given --without-valgrind" >&2; exit 1
endif
else
check-valgrind:
	@echo "error: make check-valgrind needs the Check framework" >&2; exit 1
endif

# A copy of the tree built with --enable-valgrind-annotations, and a
# program with a use after free, an overrun and a leak, and a clean one,
# under memcheck (tests/valgrind-annotated.sh; not part of make check).
if HAVE_VALGRIND
check-valgrind-annotated:
	VALGRIND='$(VALGRIND)' CC='$(CC)' $(SHELL) $(srcdir)/tests/valgrind-annotated.sh $(abs_top_srcdir)
else
check-valgrind-annotated:
	@echo "error: make check-valgrind-annotated: valgrind was not found, or configure was given --without-valgrind" >&2; exit 1
endif

.PHONY: check-sanitizers check-valgrind check-valgrind-annotated
