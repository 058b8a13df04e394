/* check_api.c - hakmem's own API: version, statistics, printing, collect.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * Only the hak_* functions are used, so this suite is the same with and
 * without the override.
 *
 * hak_collect is tested with a purge delay of an hour and room to cache
 * 1024 empty segments, so that nothing but hak_collect can give the memory
 * back in time: main() re-executes the program with
 * HAKMEM_PURGE_DELAY_MS=3600000 HAKMEM_SEGMENT_CACHE=1024 unless the first
 * is set already.
 */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <stdbool.h>

#include "testutil.h"

static struct hak_stats stats(void)
{
	struct hak_stats st;

	memset(&st, 0xa5, sizeof(st));
	ck_assert_int_eq(hak_stats_get(&st), 0);
	return st;
}

START_TEST(version_matches_header)
{
	char want[64];

	snprintf(want, sizeof(want), "%d.%d.%d", HAKMEM_VERSION_MAJOR, HAKMEM_VERSION_MINOR,
		 HAKMEM_VERSION_PATCH);
	ck_assert_ptr_nonnull(hak_version());
	ck_assert_str_eq(hak_version(), want);
	ck_assert_ptr_eq(hak_version(), hak_version());         /* a static string */
	ck_assert_int_eq(HAKMEM_VERSION, (HAKMEM_VERSION_MAJOR << 16) |
			 (HAKMEM_VERSION_MINOR << 8) | HAKMEM_VERSION_PATCH);
}
END_TEST

START_TEST(stats_get_fills)
{
	void *p = hak_malloc(100);
	struct hak_stats st = stats();

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(st.version, HAKMEM_VERSION);
	ck_assert_uint_eq(st.size, sizeof(struct hak_stats));
	for (size_t i = 0; i < sizeof(st.reserved) / sizeof(st.reserved[0]); i++)
		ck_assert_msg(st.reserved[i] == 0, "reserved[%zu] = %#llx, not 0", i,
			      (unsigned long long)st.reserved[i]);
	/* A tiny block lives in a segment that was mapped. */
	ck_assert_uint_gt(st.os_mapped, 0);
	ck_assert_uint_ge(st.os_mapped_peak, st.os_mapped);
	ck_assert_uint_ge(st.os_map_calls, 1);
	ck_assert_uint_ge(st.segments, 1);
	ck_assert_uint_ge(st.segments_peak, st.segments);
	ck_assert_uint_ge(st.threads_started, st.threads_exited);
	ck_assert_uint_ge(st.huge_allocs, st.huge_cache_hits);
	ck_assert_uint_ge(st.huge_allocs, st.huge_frees);
	hak_free(p);
}
END_TEST

START_TEST(stats_get_null)
{
	errno = 0;
	ck_assert_int_eq(hak_stats_get(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(stats_huge_counters)
{
	struct hak_stats s0 = stats(), s1, s2, s3;
	void *p = hak_malloc(4 << 20);

	ck_assert_ptr_nonnull(p);
	memset(p, 1, 4 << 20);
	s1 = stats();
	ck_assert_uint_eq(s1.huge_allocs, s0.huge_allocs + 1);
	ck_assert_uint_ge(s1.os_mapped, s0.os_mapped + (4 << 20));
	ck_assert_uint_ge(s1.os_mapped_peak, s1.os_mapped);
	hak_free(p);
	s2 = stats();
	ck_assert_uint_eq(s2.huge_frees, s1.huge_frees + 1);
	/* The same size again comes from the huge cache (unless the caller
	 * turned the cache off). */
	p = hak_malloc(4 << 20);
	ck_assert_ptr_nonnull(p);
	s3 = stats();
	ck_assert_uint_eq(s3.huge_allocs, s2.huge_allocs + 1);
	if (tu_env_long("HAKMEM_HUGE_CACHE", 4) > 0)
		ck_assert_uint_eq(s3.huge_cache_hits, s2.huge_cache_hits + 1);
	hak_free(p);
}
END_TEST

static void *alloc_in_thread(void *arg)
{
	void *p = hak_malloc(64);

	(void)arg;
	hak_free(p);
	return p;
}

START_TEST(stats_threads)
{
	struct hak_stats s0 = stats(), s1;
	pthread_t t[3];

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, alloc_in_thread, NULL), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	s1 = stats();
	ck_assert_uint_ge(s1.threads_started, s0.threads_started + 3);
	ck_assert_uint_ge(s1.threads_exited, s0.threads_exited + 3);
}
END_TEST

static void *free_all(void *arg)
{
	void **blk = arg;

	for (int i = 0; i < 200; i++)
		hak_free(blk[i]);
	return NULL;
}

START_TEST(stats_remote_frees)
{
	static void *blk[200];
	struct hak_stats s0, s1;
	pthread_t t;

	for (int i = 0; i < 200; i++) {
		blk[i] = hak_malloc(i < 100 ? 48 : 4000);
		ck_assert_ptr_nonnull(blk[i]);
	}
	s0 = stats();
	ck_assert_int_eq(pthread_create(&t, NULL, free_all, blk), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	s1 = stats();
	ck_assert_msg(s1.remote_frees >= s0.remote_frees + 200,
		      "200 frees in another thread: remote_frees %llu -> %llu",
		      (unsigned long long)s0.remote_frees, (unsigned long long)s1.remote_frees);
}
END_TEST

/* Threads that never allocate (no heap) count their frees of other
 * threads' blocks in stripes (heap.c): more threads than the stripes a
 * thread owns alone, so that some share one.  Every such free is counted,
 * at once. */
#define NOHEAP_THREADS 40
#define NOHEAP_FREES 50

static void *free_noheap(void *arg)
{
	void **blk = arg;

	for (int i = 0; i < NOHEAP_FREES; i++)
		hak_free(blk[i]);
	return NULL;
}

START_TEST(stats_remote_frees_no_heap)
{
	static void *blk[NOHEAP_THREADS][NOHEAP_FREES];
	pthread_t t[NOHEAP_THREADS];

	for (int i = 0; i < NOHEAP_THREADS; i++)
		for (int j = 0; j < NOHEAP_FREES; j++) {
			blk[i][j] = hak_malloc(j % 2 ? 64 : 3000);
			ck_assert_ptr_nonnull(blk[i][j]);
		}
	struct hak_stats s0 = stats();
	for (int i = 0; i < NOHEAP_THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, free_noheap, blk[i]), 0);
	for (int i = 0; i < NOHEAP_THREADS; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	struct hak_stats s1 = stats();
	ck_assert_msg(s1.threads_started == s0.threads_started,
		      "a thread that only frees made a heap");
	ck_assert_msg(s1.remote_frees == s0.remote_frees + NOHEAP_THREADS * NOHEAP_FREES,
		      "%d frees by threads without a heap: remote_frees %llu -> %llu",
		      NOHEAP_THREADS * NOHEAP_FREES, (unsigned long long)s0.remote_frees,
		      (unsigned long long)s1.remote_frees);
}
END_TEST

START_TEST(stats_foreign_frees)
{
	static char not_ours[64] __attribute__((aligned(16)));
	struct hak_stats s0 = stats(), s1;

	hak_free(not_ours + 16);
	s1 = stats();
	ck_assert_uint_eq(s1.foreign_frees, s0.foreign_frees + 1);
}
END_TEST

/* ---- hak_stats_print ----------------------------------------------------- */

static char text[65536];
static size_t text_len;
static int print_calls;
static bool print_bad_arg;

static void collect_text(void *arg, const char *piece)
{
	size_t n;

	if (arg != (void *)&text)
		print_bad_arg = true;
	print_calls++;
	if (piece == NULL)
		return;
	n = strlen(piece);
	if (text_len + n >= sizeof(text))
		n = sizeof(text) - 1 - text_len;
	memcpy(text + text_len, piece, n);
	text_len += n;
	text[text_len] = '\0';
}

static void reset_text(void)
{
	text_len = 0;
	text[0] = '\0';
	print_calls = 0;
	print_bad_arg = false;
}

START_TEST(stats_print_callback)
{
	void *p = hak_malloc(5 << 20);

	reset_text();
	hak_stats_print(collect_text, &text);
	ck_assert_int_ge(print_calls, 1);
	ck_assert_msg(!print_bad_arg, "the callback did not get its argument");
	ck_assert_msg(strncmp(text, "hakmem statistics", 17) == 0 ||
		      strstr(text, "\nhakmem statistics") != NULL,
		      "no line 'hakmem statistics' in:\n%s", text);
	ck_assert_msg(text_len > 100, "only %zu bytes of statistics", text_len);
	hak_free(p);
}
END_TEST

static struct hak_stats print_s0, print_s1;

static void *print_in_fresh_thread(void *arg)
{
	(void)arg;
	/* This thread has not allocated: had printing called hak_malloc (or
	 * malloc, with the override), a heap would be made for it. */
	hak_stats_get(&print_s0);
	hak_stats_print(collect_text, &text);
	hak_stats_get(&print_s1);
	return NULL;
}

START_TEST(stats_print_does_not_allocate)
{
	pthread_t t;

	reset_text();
	ck_assert_int_eq(pthread_create(&t, NULL, print_in_fresh_thread, NULL), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_ptr_nonnull(strstr(text, "hakmem statistics"));
	ck_assert_msg(print_s1.threads_started == print_s0.threads_started,
		      "hak_stats_print allocated (a thread heap was made while printing)");
	ck_assert_uint_eq(print_s1.tiny_refills, print_s0.tiny_refills);
	ck_assert_uint_eq(print_s1.os_map_calls, print_s0.os_map_calls);
}
END_TEST

START_TEST(stats_print_to_stderr)
{
	/* in $TMPDIR, as every test here: /tmp may be read-only or small
	 * on a build machine */
	const char *dir = getenv("TMPDIR");
	char tmpl[4096];
	snprintf(tmpl, sizeof(tmpl), "%s/hakmem-stats-XXXXXX", dir != NULL && *dir ? dir : "/tmp");
	int fd = mkstemp(tmpl);
	int saved;
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	unlink(tmpl);
	fflush(stderr);
	saved = dup(2);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_eq(dup2(fd, 2), 2);
	hak_stats_print(NULL, NULL);
	ck_assert_int_eq(dup2(saved, 2), 2);
	close(saved);
	reset_text();
	n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	ck_assert_int_gt(n, 0);
	text[n] = '\0';
	ck_assert_msg(strstr(text, "hakmem statistics") != NULL,
		      "hak_stats_print(NULL, NULL) wrote:\n%s", text);
}
END_TEST

/* ---- hak_stats_print_opts -------------------------------------------------- */

START_TEST(stats_print_json)
{
	void *p = hak_malloc(5 << 20);

	reset_text();
	ck_assert_int_eq(hak_stats_print_opts(collect_text, &text, HAK_STATS_JSON), 0);
	ck_assert_msg(!print_bad_arg, "the callback did not get its argument");
	ck_assert_msg(strncmp(text, "{\n", 2) == 0, "the JSON begins \"%.40s\"", text);
	ck_assert_msg(text_len > 3 && strcmp(text + text_len - 3, "\n}\n") == 0,
		      "the JSON does not end with a closing brace");
	ck_assert_ptr_nonnull(strstr(text, "\"counters\": {"));
	ck_assert_ptr_nonnull(strstr(text, "\"huge_allocs\": "));
	ck_assert_ptr_null(strstr(text, "hakmem statistics"));
	/* 0 is the text of hak_stats_print */
	reset_text();
	ck_assert_int_eq(hak_stats_print_opts(collect_text, &text, 0), 0);
	ck_assert_msg(strncmp(text, "hakmem statistics", 17) == 0, "flags 0 wrote \"%.40s\"", text);
	hak_free(p);
}
END_TEST

START_TEST(stats_print_unknown_flag)
{
	reset_text();
	errno = 0;
	ck_assert_int_eq(hak_stats_print_opts(collect_text, &text, HAK_STATS_JSON << 1), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(print_calls, 0);
}
END_TEST

static void *print_json_in_fresh_thread(void *arg)
{
	(void)arg;
	hak_stats_get(&print_s0);
	hak_stats_print_opts(collect_text, &text, HAK_STATS_JSON);
	hak_stats_get(&print_s1);
	return NULL;
}

START_TEST(stats_print_json_does_not_allocate)
{
	pthread_t t;

	reset_text();
	ck_assert_int_eq(pthread_create(&t, NULL, print_json_in_fresh_thread, NULL), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_ptr_nonnull(strstr(text, "\"counters\": {"));
	ck_assert_msg(print_s1.threads_started == print_s0.threads_started,
		      "hak_stats_print_opts allocated (a thread heap was made while printing)");
	ck_assert_uint_eq(print_s1.tiny_refills, print_s0.tiny_refills);
	ck_assert_uint_eq(print_s1.os_map_calls, print_s0.os_map_calls);
}
END_TEST

/* ---- hak_collect --------------------------------------------------------- */

START_TEST(collect_returns_memory)
{
	enum { NMID = 6400, NLARGE = 400 };   /* 100 MiB of 16 KiB, 100 MiB of 256 KiB */
	static void *mid[NMID], *large[NLARGE];
	struct hak_stats s0, s1, s2;
	size_t rss0, rss1, rss2;

	hak_collect();
	s0 = stats();
	rss0 = tu_rss();
	for (int i = 0; i < NMID; i++) {
		mid[i] = hak_malloc(16384);
		ck_assert_ptr_nonnull(mid[i]);
		memset(mid[i], 0x77, 16384);
	}
	for (int i = 0; i < NLARGE; i++) {
		large[i] = hak_malloc(256 * KiB);
		ck_assert_ptr_nonnull(large[i]);
		memset(large[i], 0x78, 256 * KiB);
	}
	s1 = stats();
	rss1 = tu_rss();
	ck_assert_msg(rss1 >= rss0 + 180 * MiB, "200 MiB written, RSS only %zu -> %zu MiB",
		      rss0 >> 20, rss1 >> 20);
	ck_assert_uint_ge(s1.os_mapped, s0.os_mapped + 180 * MiB);
	for (int i = 0; i < NMID; i++)
		hak_free(mid[i]);
	for (int i = 0; i < NLARGE; i++)
		hak_free(large[i]);
	hak_collect();
	s2 = stats();
	rss2 = tu_rss();
	printf("collect: RSS %zu -> %zu -> %zu MiB, os_mapped %llu -> %llu -> %llu MiB, "
	       "purged +%llu MiB (delay %s ms, segment cache %s)\n",
	       rss0 >> 20, rss1 >> 20, rss2 >> 20, (unsigned long long)s0.os_mapped >> 20,
	       (unsigned long long)s1.os_mapped >> 20, (unsigned long long)s2.os_mapped >> 20,
	       (unsigned long long)(s2.os_purged - s1.os_purged) >> 20,
	       getenv("HAKMEM_PURGE_DELAY_MS") ? getenv("HAKMEM_PURGE_DELAY_MS") : "default",
	       getenv("HAKMEM_SEGMENT_CACHE") ? getenv("HAKMEM_SEGMENT_CACHE") : "default");
	ck_assert_msg(rss1 - rss2 >= 150 * MiB || s1.os_mapped - s2.os_mapped >= 150 * MiB,
		      "after freeing 200 MiB and hak_collect: RSS %zu -> %zu MiB, "
		      "os_mapped %llu -> %llu MiB",
		      rss1 >> 20, rss2 >> 20, (unsigned long long)s1.os_mapped >> 20,
		      (unsigned long long)s2.os_mapped >> 20);
	/* The memory is still usable afterwards. */
	for (int i = 0; i < 100; i++) {
		void *p = hak_malloc(16384);
		ck_assert_ptr_nonnull(p);
		memset(p, 1, 16384);
		hak_free(p);
	}
	hak_collect();
	hak_collect();
}
END_TEST

static void *collect_in_thread(void *arg)
{
	void *blk[100];

	for (int i = 0; i < 100; i++)
		blk[i] = hak_malloc((size_t)(i + 1) * 997);
	for (int i = 0; i < 100; i++)
		hak_free(blk[i]);
	hak_collect();
	return arg;
}

START_TEST(collect_threads)
{
	pthread_t t[4];
	void *keep = hak_malloc(3000);

	memset(keep, 9, 3000);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, collect_in_thread, NULL), 0);
	hak_collect();
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	hak_collect();
	for (int i = 0; i < 3000; i++)
		ck_assert_int_eq(((unsigned char *)keep)[i], 9);
	hak_free(keep);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("api");
	TCase *tc;
	SRunner *sr;
	int failed;

	(void)argc;
	if (getenv("HAKMEM_PURGE_DELAY_MS") == NULL) {
		setenv("HAKMEM_PURGE_DELAY_MS", "3600000", 1);
		setenv("HAKMEM_SEGMENT_CACHE", "1024", 0);
		execv("/proc/self/exe", argv);
		perror("check_api: re-executing with HAKMEM_PURGE_DELAY_MS set");
	}

	tc = tcase_create("version");
	tcase_add_test(tc, version_matches_header);
	suite_add_tcase(s, tc);

	tc = tcase_create("stats");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, stats_get_fills);
	tcase_add_test(tc, stats_get_null);
	tcase_add_test(tc, stats_huge_counters);
	tcase_add_test(tc, stats_threads);
	tcase_add_test(tc, stats_remote_frees);
	tcase_add_test(tc, stats_remote_frees_no_heap);
	tcase_add_test(tc, stats_foreign_frees);
	tcase_add_test(tc, stats_print_callback);
	tcase_add_test(tc, stats_print_does_not_allocate);
	tcase_add_test(tc, stats_print_to_stderr);
	tcase_add_test(tc, stats_print_json);
	tcase_add_test(tc, stats_print_unknown_flag);
	tcase_add_test(tc, stats_print_json_does_not_allocate);
	suite_add_tcase(s, tc);

	tc = tcase_create("collect");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, collect_returns_memory);
	tcase_add_test(tc, collect_threads);
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
