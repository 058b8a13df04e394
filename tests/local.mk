# tests/local.mk - the test suite; included by the top-level Makefile.am.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Paths are relative to the top of the tree; variables are appended to
# (+=) after Makefile.am initialised them.
#
#   make check    every suite and script below (a few minutes on 2 cores)
#   make stress   the transfer stress, the mid pool's 16-thread stress and
#                 the thread churn (32 threads a round, SCALE 50), each for
#                 DURATION seconds (default 60); then the transfer stress
#                 and the churn again with HAKMEM_PURGE_DELAY_MS=0, memory
#                 given back at once and the purge thread at its busiest
#                 (every block's contents are checked)
#
# Check suites (tests/check_*.c) link the shared lib/libhakmem.la and test
# it from outside, as a program would use it.  With --disable-override they
# are built with -DUSE_HAK_API and allocate through hak_malloc, hak_free,
# ... instead of malloc, free, ... (see tests/testutil.h); the semantics
# suite is built both ways when the override is on.
#
# Shell tests (*.sh) find the build tree through abs_top_builddir, exported
# by AM_TESTS_ENVIRONMENT below.

# ---------------------------------------------------------------------------
# Common flags.
#
# -fno-builtin: the compiler must not reason about malloc and friends (it
# may delete a malloc/free pair, or fold a huge request to NULL, and the
# test would then test nothing).  TEST_HAKMEM: the program is linked with
# hakmem, so hakmem-only checks (foreign pointers, statistics) are built.
# ---------------------------------------------------------------------------

tests_cppflags = $(AM_CPPFLAGS) -DTEST_HAKMEM
tests_cflags = $(AM_CFLAGS) $(CHECK_CFLAGS) -fno-builtin
tests_ldadd = lib/libhakmem.la $(CHECK_LIBS) $(PTHREAD_LIBS)

if OVERRIDE
# The programs call malloc, free, ...: hakmem's override.
tests_family_cppflags = $(tests_cppflags)
tests_override = 1
else
# No override: the programs call hak_malloc, hak_free, ...
tests_family_cppflags = $(tests_cppflags) -DUSE_HAK_API
tests_override = 0
endif

# The semantics suite asks for impossible sizes on purpose.
tests_semantics_cflags = $(tests_cflags) -Wno-unknown-warning-option \
	-Wno-alloc-size-larger-than \
	-Wno-free-nonheap-object

# The internal (white-box) suites, one per lib/ module, linking
# lib/libhakmem_core.la, are in tests/internal.mk.

# ---------------------------------------------------------------------------
# Check suites.
# ---------------------------------------------------------------------------

if HAVE_CHECK

check_PROGRAMS += \
	tests/check_semantics_api \
	tests/check_api \
	tests/check_stress \
	tests/check_pool_stress \
	tests/check_fork \
	tests/check_threads \
	tests/check_churn \
	tests/check_atfork

TESTS += \
	tests/check_semantics_api$(EXEEXT) \
	tests/check_api$(EXEEXT) \
	tests/check_stress$(EXEEXT) \
	tests/check_pool_stress$(EXEEXT) \
	tests/check_fork$(EXEEXT) \
	tests/check_threads$(EXEEXT) \
	tests/check_churn$(EXEEXT) \
	tests/check_atfork$(EXEEXT)

if OVERRIDE
check_PROGRAMS += tests/check_semantics tests/check_extras
TESTS += tests/check_semantics$(EXEEXT) tests/check_extras$(EXEEXT)
endif

# Under RLIMIT_AS: not with a sanitizer, whose shadow memory needs the
# address space.
if !SANITIZER
check_PROGRAMS += tests/check_oom
TESTS += tests/check_oom$(EXEEXT)
endif

endif HAVE_CHECK

# The contract of the malloc family, through the override ...
tests_check_semantics_SOURCES = tests/check_semantics.c tests/testutil.h
tests_check_semantics_CPPFLAGS = $(tests_cppflags)
tests_check_semantics_CFLAGS = $(tests_semantics_cflags)
tests_check_semantics_LDADD = $(tests_ldadd)

# ... and through the hak_* API (the same source).
tests_check_semantics_api_SOURCES = tests/check_semantics.c tests/testutil.h
tests_check_semantics_api_CPPFLAGS = $(tests_cppflags) -DUSE_HAK_API
tests_check_semantics_api_CFLAGS = $(tests_semantics_cflags)
tests_check_semantics_api_LDADD = $(tests_ldadd)

# malloc_trim, mallopt, mallinfo, mallinfo2, malloc_stats, malloc_info
# (the override only).
tests_check_extras_SOURCES = tests/check_extras.c tests/testutil.h
tests_check_extras_CPPFLAGS = $(tests_cppflags)
tests_check_extras_CFLAGS = $(tests_cflags)
tests_check_extras_LDADD = $(tests_ldadd)

tests_check_api_SOURCES = tests/check_api.c tests/testutil.h
tests_check_api_CPPFLAGS = $(tests_cppflags)
tests_check_api_CFLAGS = $(tests_cflags)
tests_check_api_LDADD = $(tests_ldadd)

tests_check_stress_SOURCES = tests/check_stress.c tests/testutil.h
tests_check_stress_CPPFLAGS = $(tests_family_cppflags)
tests_check_stress_CFLAGS = $(tests_cflags)
tests_check_stress_LDADD = $(tests_ldadd)

# The same program as the mid pool's 16-thread stress and idle check.
tests_check_pool_stress_SOURCES = tests/check_stress.c tests/testutil.h
tests_check_pool_stress_CPPFLAGS = $(tests_family_cppflags) -DPOOL_STRESS
tests_check_pool_stress_CFLAGS = $(tests_cflags)
tests_check_pool_stress_LDADD = $(tests_ldadd)

tests_check_fork_SOURCES = tests/check_fork.c tests/testutil.h
tests_check_fork_CPPFLAGS = $(tests_family_cppflags)
tests_check_fork_CFLAGS = $(tests_cflags)
tests_check_fork_LDADD = $(tests_ldadd)

tests_check_threads_SOURCES = tests/check_threads.c tests/testutil.h
tests_check_threads_CPPFLAGS = $(tests_family_cppflags)
tests_check_threads_CFLAGS = $(tests_cflags)
tests_check_threads_LDADD = $(tests_ldadd)

tests_check_churn_SOURCES = tests/check_churn.c tests/testutil.h
tests_check_churn_CPPFLAGS = $(tests_family_cppflags)
tests_check_churn_CFLAGS = $(tests_cflags)
tests_check_churn_LDADD = $(tests_ldadd)

tests_check_oom_SOURCES = tests/check_oom.c tests/testutil.h
tests_check_oom_CPPFLAGS = $(tests_family_cppflags)
tests_check_oom_CFLAGS = $(tests_cflags)
tests_check_oom_LDADD = $(tests_ldadd)

tests_check_atfork_SOURCES = tests/check_atfork.c tests/testutil.h
tests_check_atfork_CPPFLAGS = $(tests_family_cppflags)
tests_check_atfork_CFLAGS = $(tests_cflags)
tests_check_atfork_LDADD = $(tests_ldadd)

# ---------------------------------------------------------------------------
# Programs the shell tests run, and static links.
# ---------------------------------------------------------------------------

check_PROGRAMS += tests/envprog
tests_envprog_SOURCES = tests/envprog.c
tests_envprog_CPPFLAGS = $(AM_CPPFLAGS)
tests_envprog_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_envprog_LDADD = lib/libhakmem.la $(PTHREAD_LIBS)
if OVERRIDE
tests_envprog_CPPFLAGS += -DTEST_OVERRIDE
endif

if OVERRIDE
# The override in a program that links libhakmem statically: libhakmem.a
# with the C library shared (-static-libtool-libs), and everything static,
# the C library too (-all-static).  Needs the static library (the default;
# not with --disable-static).
if ENABLE_STATIC
check_PROGRAMS += tests/static_link tests/static_link_full
TESTS += tests/static_link$(EXEEXT) tests/static_link_full$(EXEEXT)
endif
endif
tests_static_link_SOURCES = tests/static_prog.c tests/early_probe.h
tests_static_link_CPPFLAGS = $(AM_CPPFLAGS)
tests_static_link_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_static_link_LDADD = lib/libhakmem.la $(PTHREAD_LIBS)
tests_static_link_LDFLAGS = $(AM_LDFLAGS) -static-libtool-libs
tests_static_link_full_SOURCES = tests/static_prog.c tests/early_probe.h
tests_static_link_full_CPPFLAGS = $(AM_CPPFLAGS)
tests_static_link_full_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_static_link_full_LDADD = lib/libhakmem.la $(PTHREAD_LIBS)
tests_static_link_full_LDFLAGS = $(AM_LDFLAGS) -all-static

# A library whose constructor allocates before hakmem's, and a program
# linked with it alone (not with hakmem): tests/early.sh preloads hakmem.
# -rpath makes libtool build the library shared although it is never
# installed; -no-install links early_main without a wrapper script.
check_LTLIBRARIES += tests/libearlyprobe.la
tests_libearlyprobe_la_SOURCES = tests/early_probe.c tests/early_probe.h
tests_libearlyprobe_la_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_libearlyprobe_la_LDFLAGS = -rpath /nowhere -avoid-version -shared
check_PROGRAMS += tests/early_main
tests_early_main_SOURCES = tests/early_main.c
tests_early_main_LDADD = tests/libearlyprobe.la
tests_early_main_LDFLAGS = $(AM_LDFLAGS) -no-install

# Memory back while the program sleeps: tests/idle.sh.
check_PROGRAMS += tests/idle_prog
tests_idle_prog_SOURCES = tests/idle_prog.c
tests_idle_prog_CPPFLAGS = $(AM_CPPFLAGS)
tests_idle_prog_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_idle_prog_LDADD = lib/libhakmem.la $(PTHREAD_LIBS)
tests_idle_prog_LDFLAGS = $(AM_LDFLAGS) -no-install
if OVERRIDE
tests_idle_prog_CPPFLAGS += -DTEST_OVERRIDE
endif

# A program built against the C library alone, its malloc bound to
# malloc@GLIBC_*: tests/interpose.sh preloads hakmem under it.
check_PROGRAMS += tests/interpose_prog
tests_interpose_prog_SOURCES = tests/interpose_prog.c
tests_interpose_prog_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_interpose_prog_LDADD = $(DL_LIBS)

# A program with one memory bug per case (a double free, a bad pointer),
# built against the C library alone: tests/badfree.sh preloads hakmem.
check_PROGRAMS += tests/badfree_prog
tests_badfree_prog_SOURCES = tests/badfree_prog.c
tests_badfree_prog_CFLAGS = $(AM_CFLAGS) -fno-builtin -Wno-use-after-free -Wno-free-nonheap-object
tests_badfree_prog_LDADD = $(PTHREAD_LIBS)

# A static program that defines hakmem's internal names (pool_init,
# os_map, tls_heap, ...) as its own links and runs: in libhakmem.a they
# are local (scripts/localize-archive.sh).  The same two links.  With or
# without the override (without, it allocates through hak_malloc).  The
# sanitizers cannot link -all-static.
if ENABLE_STATIC
check_PROGRAMS += tests/static_names
TESTS += tests/static_names$(EXEEXT)
if !SANITIZER
check_PROGRAMS += tests/static_names_full
TESTS += tests/static_names_full$(EXEEXT)
endif
endif
tests_static_names_cppflags = $(AM_CPPFLAGS)
if OVERRIDE
tests_static_names_cppflags += -DTEST_OVERRIDE
endif
tests_static_names_SOURCES = tests/static_names.c
tests_static_names_CPPFLAGS = $(tests_static_names_cppflags)
tests_static_names_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_static_names_LDADD = lib/libhakmem.la $(PTHREAD_LIBS)
tests_static_names_LDFLAGS = $(AM_LDFLAGS) -static-libtool-libs
tests_static_names_full_SOURCES = tests/static_names.c
tests_static_names_full_CPPFLAGS = $(tests_static_names_cppflags)
tests_static_names_full_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_static_names_full_LDADD = lib/libhakmem.la $(PTHREAD_LIBS)
tests_static_names_full_LDFLAGS = $(AM_LDFLAGS) -all-static

# tests/deepbind.sh: a program built against the C library alone, and two
# copies of a library it dlopens with RTLD_DEEPBIND, one linked with the
# C library only, one with libhakmem too.
check_PROGRAMS += tests/deepbind_prog
tests_deepbind_prog_SOURCES = tests/deepbind_prog.c
tests_deepbind_prog_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_deepbind_prog_LDADD = $(DL_LIBS)
check_LTLIBRARIES += tests/libdeeplibc.la tests/libdeephak.la
tests_libdeeplibc_la_SOURCES = tests/deepbind_lib.c
tests_libdeeplibc_la_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_libdeeplibc_la_LDFLAGS = -rpath /nowhere -avoid-version -shared
tests_libdeephak_la_SOURCES = tests/deepbind_lib.c
tests_libdeephak_la_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_libdeephak_la_LIBADD = lib/libhakmem.la
tests_libdeephak_la_LDFLAGS = -rpath /nowhere -avoid-version -shared

# A static program that tests/setuid.sh installs set-user-ID and
# set-group-ID root: the same two links.
if ENABLE_STATIC
check_PROGRAMS += tests/setuid_prog
if !SANITIZER
check_PROGRAMS += tests/setuid_prog_full
endif
endif
tests_setuid_prog_cppflags = $(AM_CPPFLAGS)
if OVERRIDE
tests_setuid_prog_cppflags += -DTEST_OVERRIDE
endif
tests_setuid_prog_SOURCES = tests/setuid_prog.c
tests_setuid_prog_CPPFLAGS = $(tests_setuid_prog_cppflags)
tests_setuid_prog_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_setuid_prog_LDADD = lib/libhakmem.la $(PTHREAD_LIBS)
tests_setuid_prog_LDFLAGS = $(AM_LDFLAGS) -static-libtool-libs
tests_setuid_prog_full_SOURCES = tests/setuid_prog.c
tests_setuid_prog_full_CPPFLAGS = $(tests_setuid_prog_cppflags)
tests_setuid_prog_full_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_setuid_prog_full_LDADD = lib/libhakmem.la $(PTHREAD_LIBS)
tests_setuid_prog_full_LDFLAGS = $(AM_LDFLAGS) -all-static

# ---------------------------------------------------------------------------
# Shell tests.
# ---------------------------------------------------------------------------

tests_scripts = \
	tests/layers.sh \
	tests/symbols.sh \
	tests/interpose.sh \
	tests/badfree.sh \
	tests/env.sh \
	tests/setuid.sh \
	tests/deepbind.sh \
	tests/stats.sh \
	tests/early.sh \
	tests/preload.sh \
	tests/idle.sh \
	tests/docs.sh

dist_check_SCRIPTS += $(tests_scripts)
TESTS += $(tests_scripts)

TEST_EXTENSIONS = .sh
SH_LOG_COMPILER = $(SHELL)

if HAVE_LD_VERSION_SCRIPT
tests_version_script = 1
else
tests_version_script = 0
endif

# What every test sees.  CK_DEFAULT_TIMEOUT only covers test cases that do
# not set their own timeout; CK_TIMEOUT_MULTIPLIER (from the caller's
# environment) scales all of them, e.g. for slow sanitizer builds.
# ASAN_OPTIONS: with --enable-sanitizer=address, LeakSanitizer would report
# the Check framework's own blocks in every child that calls exit().
# TSAN_OPTIONS: ThreadSanitizer refuses threads in the child of a
# multi-threaded fork, which is what tests/check_fork.c tests.
AM_TESTS_ENVIRONMENT = \
	top_builddir='$(top_builddir)'; abs_top_builddir='$(abs_top_builddir)'; \
	top_srcdir='$(top_srcdir)'; abs_top_srcdir='$(abs_top_srcdir)'; \
	EXEEXT='$(EXEEXT)'; HAK_TEST_OVERRIDE='$(tests_override)'; \
	HAK_TEST_VERSION_SCRIPT='$(tests_version_script)'; \
	CK_DEFAULT_TIMEOUT=$${CK_DEFAULT_TIMEOUT:-60}; \
	ASAN_OPTIONS=$${ASAN_OPTIONS-detect_leaks=0}; \
	TSAN_OPTIONS=$${TSAN_OPTIONS-die_after_fork=0}; \
	export top_builddir abs_top_builddir top_srcdir abs_top_srcdir EXEEXT \
		HAK_TEST_OVERRIDE HAK_TEST_VERSION_SCRIPT CK_DEFAULT_TIMEOUT ASAN_OPTIONS TSAN_OPTIONS;

# ---------------------------------------------------------------------------
# make stress: the long form of the transfer stress.
# ---------------------------------------------------------------------------

if HAVE_CHECK
stress: tests/check_stress$(EXEEXT) tests/check_pool_stress$(EXEEXT) tests/check_churn$(EXEEXT)
	DURATION=$${DURATION:-60} CK_VERBOSITY=$${CK_VERBOSITY:-normal} \
		$(top_builddir)/tests/check_stress$(EXEEXT)
	DURATION=$${DURATION:-60} CK_VERBOSITY=$${CK_VERBOSITY:-normal} \
		$(top_builddir)/tests/check_pool_stress$(EXEEXT)
	DURATION=$${DURATION:-60} SCALE=$${SCALE:-50} CK_VERBOSITY=$${CK_VERBOSITY:-normal} \
		$(top_builddir)/tests/check_churn$(EXEEXT)
	HAKMEM_PURGE_DELAY_MS=0 DURATION=$${DURATION:-60} CK_VERBOSITY=$${CK_VERBOSITY:-normal} \
		$(top_builddir)/tests/check_stress$(EXEEXT)
	HAKMEM_PURGE_DELAY_MS=0 DURATION=$${DURATION:-60} SCALE=$${SCALE:-50} \
		CK_VERBOSITY=$${CK_VERBOSITY:-normal} $(top_builddir)/tests/check_churn$(EXEEXT)
else
stress:
	@echo "error: make stress needs the Check framework (not found by configure)" >&2; exit 1
endif

.PHONY: stress

# ---------------------------------------------------------------------------
# The secure library (configure --enable-secure, the default): the bad
# programs of tests/secure.sh, and the API and semantics suites, the
# stress and the thread and fork suites again, linked with
# lib/libhakmem-secure.la instead of lib/libhakmem.la (the same sources;
# their own targets, so that both libraries pass the same contract).
# `make check-secure` runs only these.
# ---------------------------------------------------------------------------

tests_secure_ldadd = lib/libhakmem-secure.la $(CHECK_LIBS) $(PTHREAD_LIBS)
tests_secure_checks =
if ENABLE_SECURE
check_PROGRAMS += tests/secure_prog
if HAVE_CHECK
tests_secure_checks += \
	tests/check_semantics_api_secure$(EXEEXT) \
	tests/check_api_secure$(EXEEXT) \
	tests/check_stress_secure$(EXEEXT) \
	tests/check_threads_secure$(EXEEXT) \
	tests/check_fork_secure$(EXEEXT)
check_PROGRAMS += \
	tests/check_semantics_api_secure \
	tests/check_api_secure \
	tests/check_stress_secure \
	tests/check_threads_secure \
	tests/check_fork_secure
if OVERRIDE
tests_secure_checks += tests/check_semantics_secure$(EXEEXT)
check_PROGRAMS += tests/check_semantics_secure
endif
endif HAVE_CHECK
TESTS += $(tests_secure_checks)
endif ENABLE_SECURE

tests_secure_prog_SOURCES = tests/secure_prog.c
tests_secure_prog_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_secure_prog_LDADD = lib/libhakmem-secure.la $(PTHREAD_LIBS)
tests_secure_prog_LDFLAGS = $(AM_LDFLAGS) -no-install

tests_check_semantics_secure_SOURCES = tests/check_semantics.c tests/testutil.h
tests_check_semantics_secure_CPPFLAGS = $(tests_cppflags) -DTEST_SECURE
tests_check_semantics_secure_CFLAGS = $(tests_semantics_cflags)
tests_check_semantics_secure_LDADD = $(tests_secure_ldadd)

tests_check_semantics_api_secure_SOURCES = tests/check_semantics.c tests/testutil.h
tests_check_semantics_api_secure_CPPFLAGS = $(tests_cppflags) -DUSE_HAK_API -DTEST_SECURE
tests_check_semantics_api_secure_CFLAGS = $(tests_semantics_cflags)
tests_check_semantics_api_secure_LDADD = $(tests_secure_ldadd)

tests_check_api_secure_SOURCES = tests/check_api.c tests/testutil.h
tests_check_api_secure_CPPFLAGS = $(tests_cppflags) -DTEST_SECURE
tests_check_api_secure_CFLAGS = $(tests_cflags)
tests_check_api_secure_LDADD = $(tests_secure_ldadd)

tests_check_stress_secure_SOURCES = tests/check_stress.c tests/testutil.h
tests_check_stress_secure_CPPFLAGS = $(tests_family_cppflags) -DTEST_SECURE
tests_check_stress_secure_CFLAGS = $(tests_cflags)
tests_check_stress_secure_LDADD = $(tests_secure_ldadd)

tests_check_threads_secure_SOURCES = tests/check_threads.c tests/testutil.h
tests_check_threads_secure_CPPFLAGS = $(tests_family_cppflags) -DTEST_SECURE
tests_check_threads_secure_CFLAGS = $(tests_cflags)
tests_check_threads_secure_LDADD = $(tests_secure_ldadd)

tests_check_fork_secure_SOURCES = tests/check_fork.c tests/testutil.h
tests_check_fork_secure_CPPFLAGS = $(tests_family_cppflags) -DTEST_SECURE
tests_check_fork_secure_CFLAGS = $(tests_cflags)
tests_check_fork_secure_LDADD = $(tests_secure_ldadd)

tests_secure_scripts = tests/secure.sh tests/symbols-secure.sh tests/badfree-secure.sh
dist_check_SCRIPTS += $(tests_secure_scripts)
TESTS += $(tests_secure_scripts)
EXTRA_DIST += tests/secure_prog.c

# make check-secure: the secure library's tests only.
check-secure:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(tests_secure_checks) $(tests_secure_scripts)'

.PHONY: check-secure
