## bench/local.mk - benchmark programs and `make bench`.
## Included from the top Makefile.am; paths are relative to the top.
##
## Each workload bench/NAME.c is linked once per allocator:
##   bench/NAME-hakmem    lib/libhakmem.la (this tree's shared library)
##   bench/NAME-hakmem-secure  lib/libhakmem-secure.la   only when ENABLE_SECURE
##   bench/NAME-jemalloc  $(JEMALLOC_LIBS)   only when HAVE_JEMALLOC
##   bench/NAME-mimalloc  $(MIMALLOC_LIBS)   only when HAVE_MIMALLOC
##   bench/NAME-system    glibc
## The allocator library is linked directly, ahead of libc, so its malloc is
## the one the program calls; every result line names the library that
## provides malloc and bench/run warns when it is not the expected one.
##
## The programs are EXTRA_PROGRAMS: `make all` does not build them.
##   make bench-build   build the programs for the allocators configure found
##   make bench         build them, run `bench/run quick` and `bench/plot`
##                      (make bench BENCH_PROFILE=full for the long suite)
## automake cannot loop, so the definitions below are written out: one block
## of four per workload.  To add a workload, copy a block and add its four
## names to the lists.

bench_hakmem_programs = bench/larson-hakmem bench/churn-hakmem \
	bench/xthread-hakmem bench/realloc-hakmem bench/scratch-hakmem \
	bench/batch-hakmem bench/rounds-hakmem bench/bigblocks-hakmem bench/phase-hakmem bench/drain-hakmem
bench_hakmem_secure_programs = bench/larson-hakmem-secure \
	bench/churn-hakmem-secure bench/xthread-hakmem-secure \
	bench/realloc-hakmem-secure bench/scratch-hakmem-secure \
	bench/batch-hakmem-secure bench/rounds-hakmem-secure bench/bigblocks-hakmem-secure bench/phase-hakmem-secure bench/drain-hakmem-secure
bench_jemalloc_programs = bench/larson-jemalloc bench/churn-jemalloc \
	bench/xthread-jemalloc bench/realloc-jemalloc bench/scratch-jemalloc \
	bench/batch-jemalloc bench/rounds-jemalloc bench/bigblocks-jemalloc bench/phase-jemalloc bench/drain-jemalloc
bench_mimalloc_programs = bench/larson-mimalloc bench/churn-mimalloc \
	bench/xthread-mimalloc bench/realloc-mimalloc bench/scratch-mimalloc \
	bench/batch-mimalloc bench/rounds-mimalloc bench/bigblocks-mimalloc bench/phase-mimalloc bench/drain-mimalloc
bench_system_programs = bench/larson-system bench/churn-system \
	bench/xthread-system bench/realloc-system bench/scratch-system \
	bench/batch-system bench/rounds-system bench/bigblocks-system bench/phase-system bench/drain-system

# What `make bench-build` builds: the baselines configure found, always
# hakmem and glibc.
bench_programs = $(bench_hakmem_programs) $(bench_system_programs)
if ENABLE_SECURE
bench_programs += $(bench_hakmem_secure_programs)
endif
if HAVE_JEMALLOC
bench_programs += $(bench_jemalloc_programs)
endif
if HAVE_MIMALLOC
bench_programs += $(bench_mimalloc_programs)
endif

# Every variant, so that automake generates their rules; none is built by
# default.  (EXTRA_PROGRAMS belongs to this fragment: the top Makefile.am
# and tests/local.mk must not assign it.)
EXTRA_PROGRAMS = $(bench_hakmem_programs) $(bench_hakmem_secure_programs) \
	$(bench_jemalloc_programs) \
	$(bench_mimalloc_programs) $(bench_system_programs)
CLEANFILES += $(EXTRA_PROGRAMS)
EXTRA_DIST += bench/run bench/plot bench/scaling bench/README.md bench/chart.png \
	bench/callgrind-fastpath bench/fastpath.c bench/plot-learn bench/learn-phase.png \
	bench/pyjson.py \
	bench/pcrss.c bench/learn-phase-first.png bench/learn-phase-big.png \
	bench/learn-phase-third.png

# The tree's flags (warnings, -pthread, sanitizer when configured) plus:
# the workloads call only the malloc family; keep the compiler from folding
# or removing malloc/free pairs, so that every call reaches the allocator.
bench_cflags = $(AM_CFLAGS) -fno-builtin-malloc -fno-builtin-calloc \
	-fno-builtin-realloc -fno-builtin-free
# -no-install: a real executable with the build tree's libhakmem in its
# run path (no libtool wrapper script between the runner and the program).
bench_ldflags = $(AM_LDFLAGS) $(PTHREAD_CFLAGS) -no-install
bench_hakmem_libs = lib/libhakmem.la $(PTHREAD_LIBS)
bench_hakmem_secure_libs = lib/libhakmem-secure.la $(PTHREAD_LIBS)
bench_jemalloc_libs = $(JEMALLOC_LIBS) $(PTHREAD_LIBS)
bench_mimalloc_libs = $(MIMALLOC_LIBS) $(PTHREAD_LIBS)
bench_system_libs = $(PTHREAD_LIBS)

# larson
bench_larson_hakmem_SOURCES = bench/larson.c bench/common.h
bench_larson_hakmem_CFLAGS = $(bench_cflags)
bench_larson_hakmem_LDFLAGS = $(bench_ldflags)
bench_larson_hakmem_LDADD = $(bench_hakmem_libs)
bench_larson_jemalloc_SOURCES = bench/larson.c bench/common.h
bench_larson_jemalloc_CFLAGS = $(bench_cflags) $(JEMALLOC_CFLAGS)
bench_larson_jemalloc_LDFLAGS = $(bench_ldflags)
bench_larson_jemalloc_LDADD = $(bench_jemalloc_libs)
bench_larson_mimalloc_SOURCES = bench/larson.c bench/common.h
bench_larson_mimalloc_CFLAGS = $(bench_cflags) $(MIMALLOC_CFLAGS)
bench_larson_mimalloc_LDFLAGS = $(bench_ldflags)
bench_larson_mimalloc_LDADD = $(bench_mimalloc_libs)
bench_larson_system_SOURCES = bench/larson.c bench/common.h
bench_larson_system_CFLAGS = $(bench_cflags)
bench_larson_system_LDFLAGS = $(bench_ldflags)
bench_larson_system_LDADD = $(bench_system_libs)

# churn
bench_churn_hakmem_SOURCES = bench/churn.c bench/common.h
bench_churn_hakmem_CFLAGS = $(bench_cflags)
bench_churn_hakmem_LDFLAGS = $(bench_ldflags)
bench_churn_hakmem_LDADD = $(bench_hakmem_libs)
bench_churn_jemalloc_SOURCES = bench/churn.c bench/common.h
bench_churn_jemalloc_CFLAGS = $(bench_cflags) $(JEMALLOC_CFLAGS)
bench_churn_jemalloc_LDFLAGS = $(bench_ldflags)
bench_churn_jemalloc_LDADD = $(bench_jemalloc_libs)
bench_churn_mimalloc_SOURCES = bench/churn.c bench/common.h
bench_churn_mimalloc_CFLAGS = $(bench_cflags) $(MIMALLOC_CFLAGS)
bench_churn_mimalloc_LDFLAGS = $(bench_ldflags)
bench_churn_mimalloc_LDADD = $(bench_mimalloc_libs)
bench_churn_system_SOURCES = bench/churn.c bench/common.h
bench_churn_system_CFLAGS = $(bench_cflags)
bench_churn_system_LDFLAGS = $(bench_ldflags)
bench_churn_system_LDADD = $(bench_system_libs)

# xthread
bench_xthread_hakmem_SOURCES = bench/xthread.c bench/common.h
bench_xthread_hakmem_CFLAGS = $(bench_cflags)
bench_xthread_hakmem_LDFLAGS = $(bench_ldflags)
bench_xthread_hakmem_LDADD = $(bench_hakmem_libs)
bench_xthread_jemalloc_SOURCES = bench/xthread.c bench/common.h
bench_xthread_jemalloc_CFLAGS = $(bench_cflags) $(JEMALLOC_CFLAGS)
bench_xthread_jemalloc_LDFLAGS = $(bench_ldflags)
bench_xthread_jemalloc_LDADD = $(bench_jemalloc_libs)
bench_xthread_mimalloc_SOURCES = bench/xthread.c bench/common.h
bench_xthread_mimalloc_CFLAGS = $(bench_cflags) $(MIMALLOC_CFLAGS)
bench_xthread_mimalloc_LDFLAGS = $(bench_ldflags)
bench_xthread_mimalloc_LDADD = $(bench_mimalloc_libs)
bench_xthread_system_SOURCES = bench/xthread.c bench/common.h
bench_xthread_system_CFLAGS = $(bench_cflags)
bench_xthread_system_LDFLAGS = $(bench_ldflags)
bench_xthread_system_LDADD = $(bench_system_libs)

# drain
bench_drain_hakmem_SOURCES = bench/drain.c bench/common.h
bench_drain_hakmem_CFLAGS = $(bench_cflags)
bench_drain_hakmem_LDFLAGS = $(bench_ldflags)
bench_drain_hakmem_LDADD = $(bench_hakmem_libs)
bench_drain_jemalloc_SOURCES = bench/drain.c bench/common.h
bench_drain_jemalloc_CFLAGS = $(bench_cflags) $(JEMALLOC_CFLAGS)
bench_drain_jemalloc_LDFLAGS = $(bench_ldflags)
bench_drain_jemalloc_LDADD = $(bench_jemalloc_libs)
bench_drain_mimalloc_SOURCES = bench/drain.c bench/common.h
bench_drain_mimalloc_CFLAGS = $(bench_cflags) $(MIMALLOC_CFLAGS)
bench_drain_mimalloc_LDFLAGS = $(bench_ldflags)
bench_drain_mimalloc_LDADD = $(bench_mimalloc_libs)
bench_drain_system_SOURCES = bench/drain.c bench/common.h
bench_drain_system_CFLAGS = $(bench_cflags)
bench_drain_system_LDFLAGS = $(bench_ldflags)
bench_drain_system_LDADD = $(bench_system_libs)

# realloc
bench_realloc_hakmem_SOURCES = bench/realloc.c bench/common.h
bench_realloc_hakmem_CFLAGS = $(bench_cflags)
bench_realloc_hakmem_LDFLAGS = $(bench_ldflags)
bench_realloc_hakmem_LDADD = $(bench_hakmem_libs)
bench_realloc_jemalloc_SOURCES = bench/realloc.c bench/common.h
bench_realloc_jemalloc_CFLAGS = $(bench_cflags) $(JEMALLOC_CFLAGS)
bench_realloc_jemalloc_LDFLAGS = $(bench_ldflags)
bench_realloc_jemalloc_LDADD = $(bench_jemalloc_libs)
bench_realloc_mimalloc_SOURCES = bench/realloc.c bench/common.h
bench_realloc_mimalloc_CFLAGS = $(bench_cflags) $(MIMALLOC_CFLAGS)
bench_realloc_mimalloc_LDFLAGS = $(bench_ldflags)
bench_realloc_mimalloc_LDADD = $(bench_mimalloc_libs)
bench_realloc_system_SOURCES = bench/realloc.c bench/common.h
bench_realloc_system_CFLAGS = $(bench_cflags)
bench_realloc_system_LDFLAGS = $(bench_ldflags)
bench_realloc_system_LDADD = $(bench_system_libs)

# scratch
bench_scratch_hakmem_SOURCES = bench/scratch.c bench/common.h
bench_scratch_hakmem_CFLAGS = $(bench_cflags)
bench_scratch_hakmem_LDFLAGS = $(bench_ldflags)
bench_scratch_hakmem_LDADD = $(bench_hakmem_libs)
bench_scratch_jemalloc_SOURCES = bench/scratch.c bench/common.h
bench_scratch_jemalloc_CFLAGS = $(bench_cflags) $(JEMALLOC_CFLAGS)
bench_scratch_jemalloc_LDFLAGS = $(bench_ldflags)
bench_scratch_jemalloc_LDADD = $(bench_jemalloc_libs)
bench_scratch_mimalloc_SOURCES = bench/scratch.c bench/common.h
bench_scratch_mimalloc_CFLAGS = $(bench_cflags) $(MIMALLOC_CFLAGS)
bench_scratch_mimalloc_LDFLAGS = $(bench_ldflags)
bench_scratch_mimalloc_LDADD = $(bench_mimalloc_libs)
bench_scratch_system_SOURCES = bench/scratch.c bench/common.h
bench_scratch_system_CFLAGS = $(bench_cflags)
bench_scratch_system_LDFLAGS = $(bench_ldflags)
bench_scratch_system_LDADD = $(bench_system_libs)

# batch
bench_batch_hakmem_SOURCES = bench/batch.c bench/common.h
bench_batch_hakmem_CFLAGS = $(bench_cflags)
bench_batch_hakmem_LDFLAGS = $(bench_ldflags)
bench_batch_hakmem_LDADD = $(bench_hakmem_libs)
bench_batch_jemalloc_SOURCES = bench/batch.c bench/common.h
bench_batch_jemalloc_CFLAGS = $(bench_cflags) $(JEMALLOC_CFLAGS)
bench_batch_jemalloc_LDFLAGS = $(bench_ldflags)
bench_batch_jemalloc_LDADD = $(bench_jemalloc_libs)
bench_batch_mimalloc_SOURCES = bench/batch.c bench/common.h
bench_batch_mimalloc_CFLAGS = $(bench_cflags) $(MIMALLOC_CFLAGS)
bench_batch_mimalloc_LDFLAGS = $(bench_ldflags)
bench_batch_mimalloc_LDADD = $(bench_mimalloc_libs)
bench_batch_system_SOURCES = bench/batch.c bench/common.h
bench_batch_system_CFLAGS = $(bench_cflags)
bench_batch_system_LDFLAGS = $(bench_ldflags)
bench_batch_system_LDADD = $(bench_system_libs)

# rounds
bench_rounds_hakmem_SOURCES = bench/rounds.c bench/common.h
bench_rounds_hakmem_CFLAGS = $(bench_cflags)
bench_rounds_hakmem_LDFLAGS = $(bench_ldflags)
bench_rounds_hakmem_LDADD = $(bench_hakmem_libs)
bench_rounds_jemalloc_SOURCES = bench/rounds.c bench/common.h
bench_rounds_jemalloc_CFLAGS = $(bench_cflags) $(JEMALLOC_CFLAGS)
bench_rounds_jemalloc_LDFLAGS = $(bench_ldflags)
bench_rounds_jemalloc_LDADD = $(bench_jemalloc_libs)
bench_rounds_mimalloc_SOURCES = bench/rounds.c bench/common.h
bench_rounds_mimalloc_CFLAGS = $(bench_cflags) $(MIMALLOC_CFLAGS)
bench_rounds_mimalloc_LDFLAGS = $(bench_ldflags)
bench_rounds_mimalloc_LDADD = $(bench_mimalloc_libs)
bench_rounds_system_SOURCES = bench/rounds.c bench/common.h
bench_rounds_system_CFLAGS = $(bench_cflags)
bench_rounds_system_LDFLAGS = $(bench_ldflags)
bench_rounds_system_LDADD = $(bench_system_libs)

# bigblocks
bench_bigblocks_hakmem_SOURCES = bench/bigblocks.c bench/common.h
bench_bigblocks_hakmem_CFLAGS = $(bench_cflags)
bench_bigblocks_hakmem_LDFLAGS = $(bench_ldflags)
bench_bigblocks_hakmem_LDADD = $(bench_hakmem_libs)
bench_bigblocks_jemalloc_SOURCES = bench/bigblocks.c bench/common.h
bench_bigblocks_jemalloc_CFLAGS = $(bench_cflags) $(JEMALLOC_CFLAGS)
bench_bigblocks_jemalloc_LDFLAGS = $(bench_ldflags)
bench_bigblocks_jemalloc_LDADD = $(bench_jemalloc_libs)
bench_bigblocks_mimalloc_SOURCES = bench/bigblocks.c bench/common.h
bench_bigblocks_mimalloc_CFLAGS = $(bench_cflags) $(MIMALLOC_CFLAGS)
bench_bigblocks_mimalloc_LDFLAGS = $(bench_ldflags)
bench_bigblocks_mimalloc_LDADD = $(bench_mimalloc_libs)
bench_bigblocks_system_SOURCES = bench/bigblocks.c bench/common.h
bench_bigblocks_system_CFLAGS = $(bench_cflags)
bench_bigblocks_system_LDFLAGS = $(bench_ldflags)
bench_bigblocks_system_LDADD = $(bench_system_libs)

# phase
bench_phase_hakmem_SOURCES = bench/phase.c bench/common.h
bench_phase_hakmem_CFLAGS = $(bench_cflags)
bench_phase_hakmem_LDFLAGS = $(bench_ldflags)
bench_phase_hakmem_LDADD = $(bench_hakmem_libs)
bench_phase_jemalloc_SOURCES = bench/phase.c bench/common.h
bench_phase_jemalloc_CFLAGS = $(bench_cflags) $(JEMALLOC_CFLAGS)
bench_phase_jemalloc_LDFLAGS = $(bench_ldflags)
bench_phase_jemalloc_LDADD = $(bench_jemalloc_libs)
bench_phase_mimalloc_SOURCES = bench/phase.c bench/common.h
bench_phase_mimalloc_CFLAGS = $(bench_cflags) $(MIMALLOC_CFLAGS)
bench_phase_mimalloc_LDFLAGS = $(bench_ldflags)
bench_phase_mimalloc_LDADD = $(bench_mimalloc_libs)
bench_phase_system_SOURCES = bench/phase.c bench/common.h
bench_phase_system_CFLAGS = $(bench_cflags)
bench_phase_system_LDFLAGS = $(bench_ldflags)
bench_phase_system_LDADD = $(bench_system_libs)

BENCH_PROFILE = quick

# The allocators configure left in (--with-jemalloc, --with-mimalloc),
# and those it left out: bench/run runs only the first (programs of an
# earlier configuration may still lie in bench/) and names the others.
# GNUPLOT=no tells bench/plot that --without-gnuplot was given.
bench_allocators = hakmem
bench_left_out =
if HAVE_JEMALLOC
bench_allocators += jemalloc
else
bench_left_out += jemalloc
endif
if HAVE_MIMALLOC
bench_allocators += mimalloc
else
bench_left_out += mimalloc
endif
bench_allocators += system
if HAVE_GNUPLOT
bench_gnuplot = $(GNUPLOT)
else
bench_gnuplot = no
endif

# The secure library (configure --enable-secure), the same workloads.
bench_larson_hakmem_secure_SOURCES = bench/larson.c bench/common.h
bench_larson_hakmem_secure_CFLAGS = $(bench_cflags)
bench_larson_hakmem_secure_LDFLAGS = $(bench_ldflags)
bench_larson_hakmem_secure_LDADD = $(bench_hakmem_secure_libs)

bench_churn_hakmem_secure_SOURCES = bench/churn.c bench/common.h
bench_churn_hakmem_secure_CFLAGS = $(bench_cflags)
bench_churn_hakmem_secure_LDFLAGS = $(bench_ldflags)
bench_churn_hakmem_secure_LDADD = $(bench_hakmem_secure_libs)

bench_xthread_hakmem_secure_SOURCES = bench/xthread.c bench/common.h
bench_xthread_hakmem_secure_CFLAGS = $(bench_cflags)
bench_xthread_hakmem_secure_LDFLAGS = $(bench_ldflags)
bench_xthread_hakmem_secure_LDADD = $(bench_hakmem_secure_libs)
bench_drain_hakmem_secure_SOURCES = bench/drain.c bench/common.h
bench_drain_hakmem_secure_CFLAGS = $(bench_cflags)
bench_drain_hakmem_secure_LDFLAGS = $(bench_ldflags)
bench_drain_hakmem_secure_LDADD = $(bench_hakmem_secure_libs)

bench_realloc_hakmem_secure_SOURCES = bench/realloc.c bench/common.h
bench_realloc_hakmem_secure_CFLAGS = $(bench_cflags)
bench_realloc_hakmem_secure_LDFLAGS = $(bench_ldflags)
bench_realloc_hakmem_secure_LDADD = $(bench_hakmem_secure_libs)

bench_scratch_hakmem_secure_SOURCES = bench/scratch.c bench/common.h
bench_scratch_hakmem_secure_CFLAGS = $(bench_cflags)
bench_scratch_hakmem_secure_LDFLAGS = $(bench_ldflags)
bench_scratch_hakmem_secure_LDADD = $(bench_hakmem_secure_libs)

bench_batch_hakmem_secure_SOURCES = bench/batch.c bench/common.h
bench_batch_hakmem_secure_CFLAGS = $(bench_cflags)
bench_batch_hakmem_secure_LDFLAGS = $(bench_ldflags)
bench_batch_hakmem_secure_LDADD = $(bench_hakmem_secure_libs)
bench_bigblocks_hakmem_secure_SOURCES = bench/bigblocks.c bench/common.h
bench_bigblocks_hakmem_secure_CFLAGS = $(bench_cflags)
bench_bigblocks_hakmem_secure_LDFLAGS = $(bench_ldflags)
bench_bigblocks_hakmem_secure_LDADD = $(bench_hakmem_secure_libs)

bench_rounds_hakmem_secure_SOURCES = bench/rounds.c bench/common.h
bench_rounds_hakmem_secure_CFLAGS = $(bench_cflags)
bench_rounds_hakmem_secure_LDFLAGS = $(bench_ldflags)
bench_rounds_hakmem_secure_LDADD = $(bench_hakmem_secure_libs)

bench_phase_hakmem_secure_SOURCES = bench/phase.c bench/common.h
bench_phase_hakmem_secure_CFLAGS = $(bench_cflags)
bench_phase_hakmem_secure_LDFLAGS = $(bench_ldflags)
bench_phase_hakmem_secure_LDADD = $(bench_hakmem_secure_libs)

bench-build: $(bench_programs)

bench: bench-build
	@rc=0; \
	ALLOCATORS="$${ALLOCATORS:-$(bench_allocators)}" BENCH_LEFT_OUT="$(bench_left_out)" \
	  bash $(srcdir)/bench/run $(BENCH_PROFILE) || rc=$$?; \
	GNUPLOT="$(bench_gnuplot)" bash $(srcdir)/bench/plot || rc=$$?; \
	exit $$rc

.PHONY: bench bench-build
