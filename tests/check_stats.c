/* check_stats.c - internal tests of lib/stats.c.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * hak_stats_get: version, size, reserved words, the counters' relations
 * and that they move with the events they count.  hak_stats_print: the
 * lines and their values, output to fd 2 with a NULL callback, the
 * HAKMEM_STATS=1 report at exit, and that printing never allocates: the
 * callback compares the calling thread's bins and refill counters (and the
 * process's mapping counters) with a snapshot taken before printing; a
 * malloc anywhere in the printer would change one of them.  fmt_u64.
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"


/* ---- fmt_u64 ---- */

START_TEST(test_fmt_u64)
{
	static const struct {
		uint64_t v;
		const char *s;
	} cases[] = {
		{ 0, "0" },
		{ 1, "1" },
		{ 9, "9" },
		{ 10, "10" },
		{ 100, "100" },
		{ 1234567890, "1234567890" },
		{ 4294967296ull, "4294967296" },
		{ 10000000000000000000ull, "10000000000000000000" },
		{ UINT64_MAX, "18446744073709551615" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[32];
		memset(buf, 'X', sizeof(buf));
		size_t n = fmt_u64(buf, cases[i].v);
		ck_assert_uint_eq(n, strlen(cases[i].s));
		ck_assert_str_eq(buf, cases[i].s);
		ck_assert_int_eq(buf[n + 1], 'X'); /* nothing written past the NUL */
	}
}
END_TEST

/* ---- hak_stats_get ---- */

/* The counters in the order printed. */
#define F(x) { #x, offsetof(struct hak_stats, x) }
static const struct {
	const char *name;
	size_t off;
} fields[] = {
	F(os_mapped),	      F(os_mapped_peak), F(os_map_calls),     F(os_unmap_calls),
	F(os_purged),	      F(segments),	 F(segments_peak),    F(segments_cached),
	F(segments_abandoned), F(segments_adopted), F(tiny_refills),  F(mid_refills),
	F(large_refills),     F(slabs_new),	 F(slabs_retired),    F(remote_frees),
	F(huge_allocs),	      F(huge_cache_hits), F(huge_frees),      F(foreign_frees),
	F(threads_started),   F(threads_exited),	 F(pool_page_refills), F(pool_pages_taken),
	F(pool_shared_pushes), F(pool_shared_pops),	 F(pool_shared_pages), F(pool_cas),
	F(pool_cas_retries),
};
#undef F
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static uint64_t field(const struct hak_stats *st, unsigned i)
{
	uint64_t v;
	memcpy(&v, (const char *)st + fields[i].off, sizeof(v));
	return v;
}


START_TEST(test_stats_get_fields)
{
	errno = 0;
	ck_assert_int_eq(hak_stats_get(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);

	/* this thread allocates (with --disable-override nothing else did) */
	void *p = hak_malloc(100);
	hak_free(p);
	struct hak_stats st;
	memset(&st, 0xff, sizeof(st));
	ck_assert_int_eq(hak_stats_get(&st), 0);
	ck_assert_uint_eq(st.version, HAKMEM_VERSION);
	ck_assert_uint_eq(st.size, sizeof(st));
	for (size_t i = 0; i < sizeof(st.reserved) / sizeof(st.reserved[0]); i++)
		ck_assert_uint_eq(st.reserved[i], 0);
	ck_assert_uint_ge(st.os_mapped_peak, st.os_mapped);
	ck_assert_uint_ge(st.segments_peak, st.segments);
	ck_assert_uint_ge(st.huge_allocs, st.huge_cache_hits);
	ck_assert_uint_ge(st.huge_allocs, st.huge_frees);
	ck_assert_uint_ge(st.threads_started, st.threads_exited);
	ck_assert_uint_ge(st.threads_started, 1); /* this thread has a heap */
	ck_assert_uint_ge(st.os_map_calls, 1);
	ck_assert_uint_gt(st.os_mapped, 0);
	ck_assert_uint_ge(st.slabs_new, st.slabs_retired);
	ck_assert_uint_gt(st.tiny_refills, 0);
	ck_assert_uint_eq(st.os_mapped, atomic_load(&os_ctr.mapped));
	ck_assert_uint_eq(st.os_purged, atomic_load(&os_ctr.purged));
	/* sizes: 8 header bytes, the counters (each printed), 17 reserved */
	ck_assert_uint_eq(sizeof(st), 8 + NFIELDS * 8 + 17 * 8);
}
END_TEST


static void *stats_thread(void *arg)
{
	(void)arg;
	void *a = hak_malloc(24), *b = hak_malloc(3000), *c = hak_malloc(100000);
	hak_free(a);
	hak_free(b);
	hak_free(c);
	return NULL;
}

START_TEST(test_stats_move)
{
	struct hak_stats st0 = stats();
	/* huge */
	void *h = hak_malloc(3 * MiB);
	struct hak_stats st1 = stats();
	hak_free(h);
	struct hak_stats st2 = stats();
	/* foreign */
	int local;
	hak_free(&local);
	struct hak_stats st3 = stats();
	/* a thread: one heap, one refill per tier */
	pthread_t t;
	pthread_create(&t, NULL, stats_thread, NULL);
	pthread_join(t, NULL);
	struct hak_stats st4 = stats();

	ck_assert_uint_eq(st1.huge_allocs, st0.huge_allocs + 1);
	ck_assert_uint_ge(st1.os_mapped, st0.os_mapped + 3 * MiB);
	ck_assert_uint_ge(st1.os_map_calls, st0.os_map_calls + 1);
	ck_assert_uint_eq(st2.huge_frees, st1.huge_frees + 1);
	ck_assert_uint_eq(st3.foreign_frees, st2.foreign_frees + 1);
	ck_assert_uint_eq(st4.threads_started, st3.threads_started + 1);
	ck_assert_uint_eq(st4.threads_exited, st3.threads_exited + 1);
	/* a dead thread's counters are kept */
	ck_assert_uint_ge(st4.tiny_refills, st3.tiny_refills + 1);
	ck_assert_uint_ge(st4.mid_refills, st3.mid_refills + 1);
	ck_assert_uint_ge(st4.large_refills, st3.large_refills + 1);
	ck_assert_uint_ge(st4.slabs_new, st3.slabs_new + 3);
}
END_TEST

/* ---- hak_stats_print ---- */

static char out_buf[16384];
static size_t out_len;
static unsigned out_calls;

static void collect(void *arg, const char *text)
{
	(void)arg;
	size_t n = strlen(text);
	if (out_len + n < sizeof(out_buf)) {
		memcpy(out_buf + out_len, text, n);
		out_len += n;
		out_buf[out_len] = '\0';
	}
	out_calls++;
}

/* The report in buf: its header and one line per counter, with values. */
static void check_report(const char *buf, const struct hak_stats *st)
{
	char head[128];
	snprintf(head, sizeof(head), "hakmem statistics (version %s)\n", hak_version());
	ck_assert_msg(strncmp(buf, head, strlen(head)) == 0, "report begins \"%.60s\"", buf);
	const char *line = buf + strlen(head);
	for (unsigned i = 0; i < NFIELDS; i++) {
		char want[128];
		snprintf(want, sizeof(want), "  %-22s%llu\n", fields[i].name, (unsigned long long)field(st, i));
		ck_assert_msg(strncmp(line, want, strlen(want)) == 0, "line %u: \"%.*s\", expected \"%s\"",
			      i + 1, (int)strcspn(line, "\n"), line, want);
		line += strlen(want);
	}
	/* two ratios, two decimals, rounded */
	const struct {
		const char *name;
		uint64_t num, den;
	} ratios[] = {
		{ "pool_pages_per_refill", st->pool_pages_taken, st->pool_page_refills },
		{ "pool_cas_retry_pct", st->pool_cas_retries * 100, st->pool_cas },
	};
	for (unsigned i = 0; i < 2; i++) {
		char want[128], val[40];
		uint64_t v = ratios[i].den ? (ratios[i].num * 100 + ratios[i].den / 2) / ratios[i].den : 0;
		if (ratios[i].den)
			snprintf(val, sizeof(val), "%llu.%02llu", (unsigned long long)(v / 100),
				 (unsigned long long)(v % 100));
		else
			snprintf(val, sizeof(val), "-");
		snprintf(want, sizeof(want), "  %-22s%s\n", ratios[i].name, val);
		ck_assert_msg(strncmp(line, want, strlen(want)) == 0, "ratio line: \"%.*s\", expected \"%s\"",
			      (int)strcspn(line, "\n"), line, want);
		line += strlen(want);
	}
#ifdef HAKMEM_DEBUG_COUNTERS
	ck_assert_msg(strncmp(line, "debug counters\n", 15) == 0, "after the counters: \"%.40s\"", line);
#else
	ck_assert_msg(*line == '\0', "trailing text: \"%.40s\"", line);
#endif
}

START_TEST(test_print_callback)
{
	out_len = 0;
	out_calls = 0;
	out_buf[0] = '\0';
	struct hak_stats st;
	hak_stats_get(&st);
	hak_stats_print(collect, NULL);
	check_report(out_buf, &st);
	ck_assert_uint_ge(out_calls, 23);
	/* every piece handed over ends a line */
	unsigned lines = 0;
	for (const char *p = out_buf; *p; p++)
		lines += *p == '\n';
	ck_assert_uint_eq(lines, out_calls);
}
END_TEST

START_TEST(test_print_fd2)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	int saved = dup(2);
	struct hak_stats st;
	hak_stats_get(&st);
	dup2(fds[1], 2);
	close(fds[1]);
	errno = 4321;
	hak_stats_print(NULL, NULL);
	int e = errno;
	dup2(saved, 2);
	close(saved);
	static char buf[16384];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(buf) - 1 && (r = read(fds[0], buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	close(fds[0]);
	ck_assert_int_eq(e, 4321);
	check_report(buf, &st);
}
END_TEST

/* HAKMEM_STATS=1: the report at exit, on stderr. */
START_TEST(test_print_at_exit)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		hak_cfg.stats = 1;
		exit(0); /* runs the destructors */
	}
	close(fds[1]);
	static char buf[16384];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(buf) - 1 && (r = read(fds[0], buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	close(fds[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_msg(strstr(buf, "hakmem statistics (version ") != NULL, "stderr at exit: \"%.80s\"", buf);
	ck_assert_ptr_nonnull(strstr(buf, "\n  threads_exited"));

	/* and nothing with HAKMEM_STATS=0 */
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		hak_cfg.stats = 0;
		exit(0);
	}
	close(fds[1]);
	n = 0;
	while (n < sizeof(buf) - 1 && (r = read(fds[0], buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	close(fds[0]);
	waitpid(pid, &status, 0);
	ck_assert_ptr_null(strstr(buf, "hakmem statistics"));
}
END_TEST

/* ---- printing does not allocate ---- */

struct alloc_snap {
	struct heap *heap;
	void *head[HAK_NBINS];
	uint32_t count[HAK_NBINS];
	uint64_t refills[TIER_COUNT];
	uint64_t map_calls, huge, threads;
};

static struct alloc_snap snap_before;
static unsigned snap_calls, snap_mismatch;
static char snap_what[256];

static void take_snap(struct alloc_snap *s)
{
	uint64_t hits, frees, ctr[HAK_NCOUNTERS], exited;
	s->heap = tls_heap;
	for (unsigned c = 0; c < HAK_NBINS; c++) {
		s->head[c] = tls_heap->bins[c].head;
		s->count[c] = tls_heap->bins[c].count;
	}
	for (int t = 0; t < TIER_COUNT; t++)
		s->refills[t] = 0;
	for (unsigned c = 0; c < HAK_NBINS; c++)
		s->refills[ace_tier_of_class(c)] += tls_heap->ctr.cls[c][CC_REFILLS];
	s->map_calls = atomic_load(&os_ctr.map_calls);
	huge_counts(&s->huge, &hits, &frees);
	heap_counters_sum(ctr, &s->threads, &exited);
}

static void compare_snap(void *arg, const char *text)
{
	struct alloc_snap now;
	(void)arg;
	snap_calls++;
	take_snap(&now);
	/* the text lives on the printer's stack, not in a hakmem block */
	if (segmap_lookup(text) != NULL && !snap_what[0]) {
		snprintf(snap_what, sizeof(snap_what), "text handed over in a hakmem block");
		snap_mismatch++;
	}
	if (memcmp(&now, &snap_before, sizeof(now)) != 0) {
		snap_mismatch++;
		if (!snap_what[0]) {
			unsigned c;
			for (c = 0; c < HAK_NBINS; c++)
				if (now.count[c] != snap_before.count[c] || now.head[c] != snap_before.head[c])
					break;
			snprintf(snap_what, sizeof(snap_what),
				 "allocator state changed while printing \"%.30s\" (bin %u, heap %p -> %p, "
				 "refills %llu/%llu/%llu -> %llu/%llu/%llu)",
				 text, c, (void *)snap_before.heap, (void *)now.heap,
				 (unsigned long long)snap_before.refills[0], (unsigned long long)snap_before.refills[1],
				 (unsigned long long)snap_before.refills[2], (unsigned long long)now.refills[0],
				 (unsigned long long)now.refills[1], (unsigned long long)now.refills[2]);
		}
	}
}

static void print_without_alloc(void)
{
	memset(&snap_before, 0, sizeof(snap_before));
	snap_calls = snap_mismatch = 0;
	snap_what[0] = '\0';
	take_snap(&snap_before);
	hak_stats_print(compare_snap, NULL);
	compare_snap(NULL, "after"); /* and after the last piece */
}

START_TEST(test_print_no_alloc)
{
	/* warm bins in several classes so that any malloc would pop one */
	void *p[64];
	for (int i = 0; i < 64; i++)
		p[i] = hak_malloc((size_t)(i % 16 + 1) * 64);
	for (int i = 0; i < 64; i++)
		hak_free(p[i]);
	print_without_alloc();
	ck_assert_uint_ge(snap_calls, 24);
	ck_assert_msg(snap_mismatch == 0, "%s", snap_what);
}
END_TEST

/* With every bin empty, even a malloc freed at once would show: the
 * malloc must refill (a refill counter moves). */
START_TEST(test_print_no_alloc_empty_bins)
{
	hak_collect();
	print_without_alloc();
	ck_assert_uint_ge(snap_calls, 24);
	for (unsigned c = 0; c < HAK_NBINS; c++)
		ck_assert_uint_eq(snap_before.count[c], 0);
	ck_assert_msg(snap_mismatch == 0, "%s", snap_what);
}
END_TEST

/* A thread with no heap yet: printing must not make one. */
static void *print_thread(void *arg)
{
	(void)arg;
	print_without_alloc();
	return NULL;
}

START_TEST(test_print_no_alloc_fresh_thread)
{
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, print_thread, NULL), 0);
	pthread_join(t, NULL);
	ck_assert_uint_ge(snap_calls, 24);
	ck_assert_ptr_eq(snap_before.heap, &heap_empty);
	ck_assert_msg(snap_mismatch == 0, "%s", snap_what);
}
END_TEST

static Suite *stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("stats");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_fmt_u64);
	tcase_add_test(tc, test_stats_get_fields);
	tcase_add_test(tc, test_stats_move);
	tcase_add_test(tc, test_print_callback);
	tcase_add_test(tc, test_print_fd2);
	tcase_add_test(tc, test_print_at_exit);
	tcase_add_test(tc, test_print_no_alloc);
	tcase_add_test(tc, test_print_no_alloc_empty_bins);
	tcase_add_test(tc, test_print_no_alloc_fresh_thread);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(stats_suite());
	/* every test in a process of its own: the tests change hakmem's
	 * global state (hak_cfg, caches, heaps) */
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
