/* check_extras.c - the rest of glibc's malloc.o, as hakmem answers it:
 * malloc_trim, mallopt, mallinfo, mallinfo2, malloc_stats, malloc_info
 * (and __libc_mallopt, __libc_mallinfo).
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * Linked with libhakmem.so; built only with the override (without it
 * these are glibc's).  What is checked is what man 3 hakmem (OVERRIDE)
 * says.  tests/static_names.c checks them again in static programs.
 *
 * main() re-executes the program with HAKMEM_PURGE_DELAY_MS=3600000 and
 * HAKMEM_SEGMENT_CACHE=1024 unless the first is set already, so that only
 * malloc_trim gives memory back while a test runs.
 */
#define _GNU_SOURCE
#include <check.h>
#include <limits.h>
#include <stdbool.h>

#include "testutil.h"

/* glibc's names for two of them; <malloc.h> does not declare them. */
int __libc_mallopt(int param, int value);
struct mallinfo __libc_mallinfo(void);

/* mallinfo is deprecated in glibc's <malloc.h> (its fields are int). */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static struct hak_stats stats(void)
{
	struct hak_stats st;

	ck_assert_int_eq(hak_stats_get(&st), 0);
	return st;
}

/* The text of FILE f, NUL-terminated, in buf; its length. */
static size_t slurp(FILE *f, char *buf, size_t cap)
{
	size_t n;

	fflush(f);
	rewind(f);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	return n;
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- malloc_trim ---- */

/* Memory went back to the kernel between s0 and s1. */
static bool gave_back(const struct hak_stats *s0, const struct hak_stats *s1)
{
	return s1->os_purged != s0->os_purged || s1->os_unmap_calls != s0->os_unmap_calls;
}

/* Calls malloc_trim(0) until it returns 0 (a call may leave what empties
 * during it, a slab say, to the next one), at most 4 times, then
 * malloc_trim(1 MiB) once more, which must give nothing back; checks that
 * each return says whether memory went back.  Nothing may allocate
 * between the calls (Check's assertions do: a block of a slab that a call
 * gave back, freed, empties the slab again), so the checks come after. */
static void trim_until_nothing(void)
{
	struct hak_stats s0[5], s1[5];
	int r[5], n = 0;

	do {
		hak_stats_get(&s0[n]);
		r[n] = malloc_trim(0);
		hak_stats_get(&s1[n]);
	} while (r[n++] != 0 && n < 4);
	hak_stats_get(&s0[n]);
	r[n] = malloc_trim(1 << 20);
	hak_stats_get(&s1[n]);
	for (int i = 0; i <= n; i++)
		ck_assert_msg(r[i] == (int)gave_back(&s0[i], &s1[i]),
			      "malloc_trim call %d returned %d; purged +%llu bytes, %llu munmaps", i,
			      r[i], (unsigned long long)(s1[i].os_purged - s0[i].os_purged),
			      (unsigned long long)(s1[i].os_unmap_calls - s0[i].os_unmap_calls));
	ck_assert_msg(r[n - 1] == 0, "malloc_trim(0) gave memory back 4 times in a row");
	ck_assert_int_eq(r[n], 0);
}

START_TEST(trim_gives_back)
{
	enum { NMID = 1000, NHUGE = 4 };
	void *mid[NMID], *huge[NHUGE];
	struct hak_stats s0, s1;

	for (int i = 0; i < NMID; i++) {
		mid[i] = malloc(20000);
		ck_assert_ptr_nonnull(mid[i]);
		memset(mid[i], 1, 20000);
	}
	for (int i = 0; i < NHUGE; i++) {
		huge[i] = malloc(3 * MiB);
		ck_assert_ptr_nonnull(huge[i]);
		memset(huge[i], 2, 3 * MiB);
	}
	for (int i = 0; i < NMID; i++)
		free(mid[i]);
	for (int i = 0; i < NHUGE; i++)
		free(huge[i]);
	hak_stats_get(&s0);
	ck_assert_int_eq(malloc_trim(0), 1);
	hak_stats_get(&s1);
	/* 20 MB of mid blocks and 12 MB of huge ones were free */
	ck_assert_uint_ge(s1.os_purged - s0.os_purged +
			  (s0.os_mapped > s1.os_mapped ? s0.os_mapped - s1.os_mapped : 0),
			  16 * MiB);
	trim_until_nothing();
}
END_TEST

START_TEST(trim_nothing_free)
{
	void *p = malloc(100);

	ck_assert_ptr_nonnull(p);
	trim_until_nothing();
	/* the blocks in use are untouched */
	memset(p, 3, 100);
	ck_assert_uint_ge(malloc_usable_size(p), 100);
	free(p);
}
END_TEST

/* ---- mallopt ---- */

START_TEST(mallopt_returns)
{
	static const int params[] = { M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD,
				      M_MMAP_MAX, M_CHECK_ACTION, M_PERTURB, M_ARENA_TEST,
				      M_ARENA_MAX, 12345, -100 };
	static const int values[] = { 0, 1, 4096, -1, INT_MAX };

	/* glibc 2.36 refuses only M_MXFAST beyond 80 * sizeof(size_t) / 4 */
	ck_assert_int_eq(mallopt(M_MXFAST, 0), 1);
	ck_assert_int_eq(mallopt(M_MXFAST, 160), 1);
	ck_assert_int_eq(mallopt(M_MXFAST, 161), 0);
	ck_assert_int_eq(mallopt(M_MXFAST, -1), 0);
	ck_assert_int_eq(__libc_mallopt(M_MXFAST, 161), 0);
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		for (size_t j = 0; j < sizeof(values) / sizeof(values[0]); j++) {
			ck_assert_msg(mallopt(params[i], values[j]) == 1,
				      "mallopt(%d, %d) != 1", params[i], values[j]);
			ck_assert_int_eq(__libc_mallopt(params[i], values[j]), 1);
		}
}
END_TEST

START_TEST(mallopt_ignored)
{
	struct hak_stats s0, s1;
	void *p;

	/* glibc would map 100000 bytes, and fill with M_PERTURB */
	ck_assert_int_eq(mallopt(M_MMAP_THRESHOLD, 4096), 1);
	ck_assert_int_eq(mallopt(M_PERTURB, 0x55), 1);
	s0 = stats();
	p = malloc(100000);
	s1 = stats();
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_ge(hak_usable_size(p), 100000);
	ck_assert_uint_eq(s1.huge_allocs, s0.huge_allocs);
	free(p);
}
END_TEST

/* ---- mallinfo2, mallinfo ---- */

START_TEST(mallinfo2_fields)
{
	void *huge = malloc(4 * MiB), *small = malloc(100);
	struct hak_stats s0, s1;
	struct mallinfo2 mi;

	ck_assert_ptr_nonnull(huge);
	ck_assert_ptr_nonnull(small);
	s0 = stats();
	mi = mallinfo2();
	s1 = stats();
	ck_assert_uint_eq(s0.os_mapped, s1.os_mapped);  /* nothing moved meanwhile */
	ck_assert_uint_eq(mi.arena, s0.os_mapped);
	ck_assert_uint_eq(mi.usmblks, s0.os_mapped_peak);
	ck_assert_uint_eq(mi.ordblks, s0.segments_cached);
	ck_assert_uint_eq(mi.fordblks, s0.segments_cached * 2 * MiB);
	ck_assert_uint_eq(mi.uordblks, mi.arena - mi.fordblks);
	ck_assert_uint_eq(mi.hblks, s0.huge_allocs - s0.huge_frees);
	ck_assert_uint_ge(mi.hblks, 1);
	ck_assert_uint_ge(mi.uordblks, 4 * MiB);
	ck_assert_uint_eq(mi.smblks, 0);
	ck_assert_uint_eq(mi.hblkhd, 0);
	ck_assert_uint_eq(mi.fsmblks, 0);
	ck_assert_uint_eq(mi.keepcost, 0);
	free(huge);
	ck_assert_uint_eq(mallinfo2().hblks, mi.hblks - 1);
	free(small);
}
END_TEST

START_TEST(mallinfo2_free_segments)
{
	enum { N = 400 };
	void *blk[N];
	struct mallinfo2 mi;

	/* 400 x 24 KiB: several segments, empty after the frees */
	for (int i = 0; i < N; i++) {
		blk[i] = malloc(24 * KiB);
		ck_assert_ptr_nonnull(blk[i]);
		memset(blk[i], 4, 24 * KiB);
	}
	for (int i = 0; i < N; i++)
		free(blk[i]);
	malloc_trim(0);
	mi = mallinfo2();
	ck_assert_uint_ge(mi.ordblks, 1);
	ck_assert_uint_eq(mi.fordblks, mi.ordblks * 2 * MiB);
	ck_assert_uint_eq(mi.uordblks + mi.fordblks, mi.arena);
}
END_TEST

START_TEST(mallinfo_matches)
{
	struct mallinfo2 mi2 = mallinfo2();
	struct mallinfo mi = mallinfo(), lmi = __libc_mallinfo();

	ck_assert_uint_lt(mi2.arena, INT_MAX);
	ck_assert_int_eq(mi.arena, (int)mi2.arena);
	ck_assert_int_eq(mi.ordblks, (int)mi2.ordblks);
	ck_assert_int_eq(mi.hblks, (int)mi2.hblks);
	ck_assert_int_eq(mi.usmblks, (int)mi2.usmblks);
	ck_assert_int_eq(mi.uordblks, (int)mi2.uordblks);
	ck_assert_int_eq(mi.fordblks, (int)mi2.fordblks);
	ck_assert_int_eq(mi.keepcost, 0);
	ck_assert_int_eq(lmi.arena, mi.arena);
	ck_assert_int_eq(lmi.uordblks, mi.uordblks);
}
END_TEST

START_TEST(mallinfo_saturates)
{
	/* 3 GiB, mapped with MAP_NORESERVE and never touched */
	void *p = malloc((size_t)3 << 30);
	struct mallinfo2 mi2;
	struct mallinfo mi;

	if (p == NULL) {
		printf("mallinfo_saturates: malloc(3 GiB) failed here; not tested\n");
		return;
	}
	mi2 = mallinfo2();
	mi = mallinfo();
	ck_assert_uint_gt(mi2.arena, (size_t)3 << 30);
	ck_assert_int_eq(mi.arena, INT_MAX);
	ck_assert_int_eq(mi.usmblks, INT_MAX);
	ck_assert_int_eq(mi.uordblks, INT_MAX);
	ck_assert_int_ge(mi.fordblks, 0);
	free(p);
}
END_TEST

/* ---- malloc_stats, malloc_info ---- */

START_TEST(stats_to_stderr)
{
	static char text[1 << 16];
	FILE *f = tmpfile();
	int fd2;

	ck_assert_ptr_nonnull(f);
	fflush(stderr);
	fd2 = dup(2);
	ck_assert_int_ge(fd2, 0);
	ck_assert_int_eq(dup2(fileno(f), 2), 2);
	/* stderr fully buffered: what the program wrote comes first */
	setvbuf(stderr, NULL, _IOFBF, BUFSIZ);
	fputs("first\n", stderr);
	malloc_stats();
	fflush(stderr);
	setvbuf(stderr, NULL, _IONBF, 0);
	ck_assert_int_eq(dup2(fd2, 2), 2);
	close(fd2);
	slurp(f, text, sizeof(text));
	fclose(f);
	ck_assert_msg(starts_with(text, "first\nhakmem statistics (version "),
		      "malloc_stats wrote \"%.80s\"", text);
	ck_assert_ptr_nonnull(strstr(text, "\nMemory: "));
	ck_assert_ptr_nonnull(strstr(text, "\n  mapped "));
	ck_assert_ptr_nonnull(strstr(text, "\nSettings: "));
}
END_TEST

START_TEST(info_xml)
{
	static const char *const counters[] = {
		"os_mapped", "os_mapped_peak", "os_map_calls", "os_unmap_calls", "os_purged",
		"segments", "segments_peak", "segments_cached", "segments_abandoned",
		"segments_adopted", "tiny_refills", "mid_refills", "large_refills",
		"slabs_new", "slabs_retired", "remote_frees", "huge_allocs",
		"huge_cache_hits", "huge_frees", "foreign_frees", "threads_started",
		"threads_exited", "pool_page_refills", "pool_pages_taken",
		"pool_shared_pushes", "pool_shared_pops", "pool_shared_pages", "pool_cas",
		"pool_cas_retries", "os_unmap_failures", "os_unmap_pending", "os_unmap_lost",
		"os_remap_failures",
	};
	static char text[1 << 16];
	char want[256];
	struct hak_stats st;
	struct mallinfo2 mi;
	FILE *f = tmpfile();
	void *huge = malloc(5 * MiB);

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(huge);
	fputs("x", f);                  /* f's buffer is allocated now */
	rewind(f);
	st = stats();
	mi = mallinfo2();
	ck_assert_int_eq(malloc_info(0, f), 0);
	slurp(f, text, sizeof(text));
	fclose(f);

	snprintf(want, sizeof(want), "<malloc version=\"1\" allocator=\"hakmem\" "
		 "hakmem_version=\"%s\">\n", hak_version());
	ck_assert_msg(starts_with(text, want), "malloc_info wrote \"%.100s\"", text);
	snprintf(want, sizeof(want), "\n<system type=\"current\" size=\"%llu\"/>\n",
		 (unsigned long long)st.os_mapped);
	ck_assert_msg(strstr(text, want) != NULL, "no %s in\n%s", want, text);
	snprintf(want, sizeof(want), "\n<system type=\"max\" size=\"%llu\"/>\n",
		 (unsigned long long)st.os_mapped_peak);
	ck_assert_msg(strstr(text, want) != NULL, "no %s in\n%s", want, text);
	snprintf(want, sizeof(want), "\n<total type=\"mmap\" count=\"%zu\" size=\"0\"/>\n",
		 mi.hblks);
	ck_assert_msg(strstr(text, want) != NULL, "no %s in\n%s", want, text);
	snprintf(want, sizeof(want), "\n<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n",
		 mi.ordblks, mi.fordblks);
	ck_assert_msg(strstr(text, want) != NULL, "no %s in\n%s", want, text);
	snprintf(want, sizeof(want), "\n<hakmem name=\"huge_allocs\" value=\"%llu\"/>\n",
		 (unsigned long long)st.huge_allocs);
	ck_assert_msg(strstr(text, want) != NULL, "no %s in\n%s", want, text);
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		snprintf(want, sizeof(want), "\n<hakmem name=\"%s\" value=\"", counters[i]);
		ck_assert_msg(strstr(text, want) != NULL, "no counter %s in\n%s", counters[i],
			      text);
	}
	ck_assert_msg(strlen(text) > 10 && strcmp(text + strlen(text) - 10, "</malloc>\n") == 0,
		      "malloc_info's document does not end with </malloc>:\n%s", text);
	free(huge);
}
END_TEST

START_TEST(info_einval)
{
	static char text[256];
	FILE *f = tmpfile();

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(malloc_info(1, f), EINVAL);
	ck_assert_int_eq(malloc_info(-1, f), EINVAL);
	ck_assert_int_eq(malloc_info(0, NULL), EINVAL);
	ck_assert_uint_eq(slurp(f, text, sizeof(text)), 0);
	fclose(f);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("extras");
	TCase *tc;
	SRunner *sr;
	int failed;

	(void)argc;
	if (getenv("HAKMEM_PURGE_DELAY_MS") == NULL) {
		setenv("HAKMEM_PURGE_DELAY_MS", "3600000", 1);
		setenv("HAKMEM_SEGMENT_CACHE", "1024", 0);
		execv("/proc/self/exe", argv);
		perror("check_extras: re-executing with HAKMEM_PURGE_DELAY_MS set");
	}

	tc = tcase_create("malloc_trim");
	tcase_add_test(tc, trim_gives_back);
	tcase_add_test(tc, trim_nothing_free);
	suite_add_tcase(s, tc);

	tc = tcase_create("mallopt");
	tcase_add_test(tc, mallopt_returns);
	tcase_add_test(tc, mallopt_ignored);
	suite_add_tcase(s, tc);

	tc = tcase_create("mallinfo");
	tcase_add_test(tc, mallinfo2_fields);
	tcase_add_test(tc, mallinfo2_free_segments);
	tcase_add_test(tc, mallinfo_matches);
	tcase_add_test(tc, mallinfo_saturates);
	suite_add_tcase(s, tc);

	tc = tcase_create("stats_info");
	tcase_add_test(tc, stats_to_stderr);
	tcase_add_test(tc, info_xml);
	tcase_add_test(tc, info_einval);
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
