# tests/internal.mk - hakmem's internal (white-box) test suites.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Included by the top Makefile.am; paths are relative to the top of the
# tree.  One Check suite per library module.  They link the convenience
# library lib/libhakmem_core.la (static, not installed), where the hidden
# internal symbols (hak_cfg, segmap, tls_heap, ...) can still be reached,
# and include lib/internal.h.  With the override on (the default) the core
# library defines malloc and free, so the test programs - Check included -
# run on hakmem entirely.
#
# Each test runs in a forked process (Check's default, CK_FORK=yes): the
# suites change hak_cfg and hakmem's global state freely.  They need fork
# mode, which main() sets whatever CK_FORK says.

if HAVE_CHECK

HAKMEM_INTERNAL_TESTS = \
	tests/check_ace \
	tests/check_config \
	tests/check_learner \
	tests/check_segment \
	tests/check_slab \
	tests/check_pool \
	tests/check_large \
	tests/check_os \
	tests/check_stats \
	tests/check_thread \
	tests/check_heap \
	tests/check_oom_inject

check_PROGRAMS += $(HAKMEM_INTERNAL_TESTS)
TESTS += $(HAKMEM_INTERNAL_TESTS)

HAKMEM_ITEST_CPPFLAGS = -I$(top_srcdir)/lib -I$(top_srcdir)/include -I$(top_builddir)
HAKMEM_ITEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -fno-builtin
HAKMEM_ITEST_LDADD = lib/libhakmem_core.la $(CHECK_LIBS) $(PTHREAD_LIBS) -lpthread

tests_check_ace_SOURCES = tests/check_ace.c tests/itest.h
tests_check_ace_CPPFLAGS = $(HAKMEM_ITEST_CPPFLAGS)
tests_check_ace_CFLAGS = $(HAKMEM_ITEST_CFLAGS)
tests_check_ace_LDADD = $(HAKMEM_ITEST_LDADD)

tests_check_learner_SOURCES = tests/check_learner.c tests/itest.h
tests_check_learner_CPPFLAGS = $(HAKMEM_ITEST_CPPFLAGS)
tests_check_learner_CFLAGS = $(HAKMEM_ITEST_CFLAGS)
tests_check_learner_LDADD = $(HAKMEM_ITEST_LDADD)

tests_check_config_SOURCES = tests/check_config.c tests/itest.h
tests_check_config_CPPFLAGS = $(HAKMEM_ITEST_CPPFLAGS)
tests_check_config_CFLAGS = $(HAKMEM_ITEST_CFLAGS)
tests_check_config_LDADD = $(HAKMEM_ITEST_LDADD)

tests_check_segment_SOURCES = tests/check_segment.c tests/itest.h
tests_check_segment_CPPFLAGS = $(HAKMEM_ITEST_CPPFLAGS)
tests_check_segment_CFLAGS = $(HAKMEM_ITEST_CFLAGS)
tests_check_segment_LDADD = $(HAKMEM_ITEST_LDADD)

tests_check_slab_SOURCES = tests/check_slab.c tests/itest.h
tests_check_slab_CPPFLAGS = $(HAKMEM_ITEST_CPPFLAGS)
tests_check_slab_CFLAGS = $(HAKMEM_ITEST_CFLAGS)
tests_check_slab_LDADD = $(HAKMEM_ITEST_LDADD)

tests_check_pool_SOURCES = tests/check_pool.c tests/itest.h
tests_check_pool_CPPFLAGS = $(HAKMEM_ITEST_CPPFLAGS)
tests_check_pool_CFLAGS = $(HAKMEM_ITEST_CFLAGS)
tests_check_pool_LDADD = $(HAKMEM_ITEST_LDADD)

tests_check_large_SOURCES = tests/check_large.c tests/itest.h
tests_check_large_CPPFLAGS = $(HAKMEM_ITEST_CPPFLAGS)
tests_check_large_CFLAGS = $(HAKMEM_ITEST_CFLAGS)
tests_check_large_LDADD = $(HAKMEM_ITEST_LDADD)

tests_check_os_SOURCES = tests/check_os.c tests/itest.h
tests_check_os_CPPFLAGS = $(HAKMEM_ITEST_CPPFLAGS)
tests_check_os_CFLAGS = $(HAKMEM_ITEST_CFLAGS)
tests_check_os_LDADD = $(HAKMEM_ITEST_LDADD)

tests_check_stats_SOURCES = tests/check_stats.c tests/itest.h
tests_check_stats_CPPFLAGS = $(HAKMEM_ITEST_CPPFLAGS)
tests_check_stats_CFLAGS = $(HAKMEM_ITEST_CFLAGS)
tests_check_stats_LDADD = $(HAKMEM_ITEST_LDADD)

tests_check_heap_SOURCES = tests/check_heap.c tests/itest.h
tests_check_heap_CPPFLAGS = $(HAKMEM_ITEST_CPPFLAGS)
tests_check_heap_CFLAGS = $(HAKMEM_ITEST_CFLAGS)
tests_check_heap_LDADD = $(HAKMEM_ITEST_LDADD)

tests_check_thread_SOURCES = tests/check_thread.c tests/itest.h
tests_check_thread_CPPFLAGS = $(HAKMEM_ITEST_CPPFLAGS)
tests_check_thread_CFLAGS = $(HAKMEM_ITEST_CFLAGS)
tests_check_thread_LDADD = $(HAKMEM_ITEST_LDADD)

# Out of memory at chosen points, through os.c's fault injection.
tests_check_oom_inject_SOURCES = tests/check_oom_inject.c tests/itest.h
tests_check_oom_inject_CPPFLAGS = $(HAKMEM_ITEST_CPPFLAGS)
tests_check_oom_inject_CFLAGS = $(HAKMEM_ITEST_CFLAGS)
tests_check_oom_inject_LDADD = $(HAKMEM_ITEST_LDADD)

endif HAVE_CHECK

EXTRA_DIST += tests/internal.mk
