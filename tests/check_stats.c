/* check_stats.c - internal tests of lib/stats.c.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * hak_stats_get: version, size, reserved words, the counters' relations
 * and that they move with the events they count.  hak_stats_print: the
 * groups of the text and their values (bytes with units, per tier, per
 * class, the settings and their source), output to fd 2 with a NULL
 * callback, the HAKMEM_STATS=1 and HAKMEM_STATS=json reports at exit;
 * hak_stats_print_opts: the JSON form (every counter, balanced), EINVAL
 * for unknown flags; and that printing never allocates, in either form: the
 * callback compares the calling thread's bins and refill counters (and the
 * process's mapping counters) with a snapshot taken before printing; a
 * malloc anywhere in the printer would change one of them.  fmt_u64,
 * fmt_bytes.
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
	F(pool_cas_retries),  F(os_unmap_failures), F(os_unmap_pending), F(os_unmap_lost),
	F(os_remap_failures),
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
	/* sizes: 8 header bytes, the counters (each printed), 13 reserved */
	ck_assert_uint_eq(sizeof(st), 8 + NFIELDS * 8 + 13 * 8);
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

static char out_buf[65536];
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

/* The line of text_line in stats.c: "  name value  note\n". */
static void want_line(char *want, size_t len, const char *name, const char *value, const char *note)
{
	snprintf(want, len, "\n  %-18s%10s  %s\n", name, value, note);
}

static void want_in(const char *buf, const char *want)
{
	ck_assert_msg(strstr(buf, want) != NULL, "no line \"%.*s\" in the report:\n%.2000s",
		      (int)strlen(want) - 2, want + 1, buf);
}

static const char *const tier_name[TIER_COUNT] = { "tiny", "mid", "large" };

/* Round-up as the report writes it: one decimal, "%"; "-" without a sample. */
static void want_roundup(char *text, size_t len, uint64_t req, uint64_t given)
{
	if (req == 0 || given < req) {
		snprintf(text, len, "-");
		return;
	}
	uint64_t t = ((given - req) * 1000 + req / 2) / req;
	snprintf(text, len, "%llu.%llu%%", (unsigned long long)(t / 10), (unsigned long long)(t % 10));
}

/* The text report in buf, against the counters st (read just before it
 * was printed, with nothing allocated in between). */
static void check_report(const char *buf, const struct hak_stats *st)
{
	char want[512], v[32], a[32], note[256];

	snprintf(want, sizeof(want), "hakmem statistics (version %s, pid %d)\n", hak_version(),
		 (int)getpid());
	ck_assert_msg(strncmp(buf, want, strlen(want)) == 0, "report begins \"%.60s\"", buf);

	/* the groups, each with its sentence, in this order */
	static const char *const groups[] = {
		"\nMemory: what hakmem has mapped from the kernel, now.\n",
		"\nTiers: a thread's cache of a size class is refilled when empty; a\n",
		"\nSize classes, busiest first (cap: the most blocks a thread's cache keeps):\n",
		"\nMid pages: 128 KiB pages of the mid tier, which move between threads\n",
		"\nThreads: their heaps, and blocks that cross from one to another.\n",
		"\nSettings: the HAKMEM_* variables in effect, and where each came from.\n",
	};
	const char *at = buf;
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		const char *q = strstr(at, groups[g]);
		ck_assert_msg(q != NULL, "group %zu (\"%.20s\") missing or out of order", g, groups[g] + 1);
		at = q + 1;
	}

	/* memory, with units */
	uint64_t cached = st->segments_cached * HAK_SEG_SIZE;
	uint64_t in_use = st->os_mapped - cached, in_segs = st->segments * HAK_SEG_SIZE;
	fmt_bytes(v, st->os_mapped);
	fmt_bytes(a, st->os_mapped_peak);
	snprintf(note, sizeof(note), "peak %s; %llu mmap and %llu munmap calls", a,
		 (unsigned long long)st->os_map_calls, (unsigned long long)st->os_unmap_calls);
	want_line(want, sizeof(want), "mapped", v, note);
	want_in(buf, want);
	fmt_bytes(v, in_use);
	want_line(want, sizeof(want), "in use", v, "mapped less cached: blocks, free room in slabs");
	want_in(buf, want);
	fmt_bytes(v, cached);
	snprintf(note, sizeof(note), "%llu empty 2 MiB segments kept (at most %ld)",
		 (unsigned long long)st->segments_cached, (long)hak_cfg.segment_cache);
	want_line(want, sizeof(want), "cached", v, note);
	want_in(buf, want);
	fmt_bytes(v, in_segs);
	snprintf(note, sizeof(note), "%llu segments of tiny, mid, large blocks; peak %llu",
		 (unsigned long long)st->segments, (unsigned long long)st->segments_peak);
	want_line(want, sizeof(want), "in segments", v, note);
	want_in(buf, want);
	fmt_bytes(v, in_use - in_segs);
	want_line(want, sizeof(want), "huge and tables", v,
		  "huge blocks, cached huge mappings, thread heaps");
	want_in(buf, want);
	fmt_bytes(v, st->os_purged);
	want_line(want, sizeof(want), "purged", v, "given back (madvise) since the start, in total");
	want_in(buf, want);

	/* a line per tier, summed from the per-class counters */
	uint64_t ctr[HAK_NCOUNTERS], started, exited;
	heap_counters_sum(ctr, &started, &exited);
	struct heap_counters c;
	memcpy(&c, ctr, sizeof(c));
	uint64_t sum[TIER_COUNT][CC_N + 1];
	memset(sum, 0, sizeof(sum));
	for (unsigned k = 0; k < HAK_NBINS; k++) {
		int t = ace_tier_of_class(k);
		for (int w = 0; w < CC_N; w++)
			sum[t][w] += c.cls[k][w];
		sum[t][CC_N] += c.cls[k][CC_MISSES] * ace_class_size[k];
	}
	ck_assert_uint_eq(sum[TIER_TINY][CC_REFILLS], st->tiny_refills);
	ck_assert_uint_eq(sum[TIER_MID][CC_REFILLS], st->mid_refills);
	ck_assert_uint_eq(sum[TIER_LARGE][CC_REFILLS], st->large_refills);
	for (int t = 0; t < TIER_COUNT; t++) {
		want_roundup(v, sizeof(v), sum[t][CC_REQ_BYTES], sum[t][CC_N]);
		snprintf(want, sizeof(want), "\n  %-8s%12llu%12llu%12llu%12llu%10s\n", tier_name[t],
			 (unsigned long long)sum[t][CC_REFILLS], (unsigned long long)sum[t][CC_BLOCKS],
			 (unsigned long long)sum[t][CC_OVERFLOWS], (unsigned long long)sum[t][CC_MISSES], v);
		want_in(buf, want);
	}
	snprintf(want, sizeof(want), "\n  huge: %llu blocks in use (%llu handed out, %llu of them from the cache, %llu freed);\n",
		 (unsigned long long)(st->huge_allocs - st->huge_frees), (unsigned long long)st->huge_allocs,
		 (unsigned long long)st->huge_cache_hits, (unsigned long long)st->huge_frees);
	want_in(buf, want);

	/* the 10 classes with the most refills (ties: the smaller class),
	 * busiest first, then how many more were used */
	bool used[HAK_NBINS], taken[HAK_NBINS];
	unsigned nused = 0;
	for (unsigned k = 0; k < HAK_NBINS; k++) {
		const uint64_t *cc = c.cls[k];
		used[k] = cc[CC_REFILLS] || cc[CC_BLOCKS] || cc[CC_OVERFLOWS] || cc[CC_MISSES];
		taken[k] = false;
		nused += used[k];
	}
	const char *prev = strstr(buf, "\n  class      size  tier     cap    refills     blocks  overflows     misses\n");
	ck_assert_ptr_nonnull(prev);
	unsigned nshow = nused < 10 ? nused : 10;
	for (unsigned i = 0; i < nshow; i++) {
		unsigned k = HAK_NBINS;
		for (unsigned x = 0; x < HAK_NBINS; x++)
			if (used[x] && !taken[x] && (k == HAK_NBINS || c.cls[x][CC_REFILLS] > c.cls[k][CC_REFILLS]))
				k = x;
		taken[k] = true;
		const uint64_t *cc = c.cls[k];
		fmt_bytes(v, ace_class_size[k]);
		snprintf(want, sizeof(want), "\n%7u%10s  %-5s%7u%11llu%11llu%11llu%11llu\n", k, v,
			 tier_name[ace_tier_of_class(k)], (unsigned)knob_cap(k),
			 (unsigned long long)cc[CC_REFILLS], (unsigned long long)cc[CC_BLOCKS],
			 (unsigned long long)cc[CC_OVERFLOWS], (unsigned long long)cc[CC_MISSES]);
		const char *q = strstr(buf, want);
		ck_assert_msg(q != NULL, "no line \"%.*s\" (class %u, the busiest but %u) in:\n%.2000s",
			      (int)strlen(want) - 2, want + 1, k, i, buf);
		ck_assert_msg(q > prev, "class %u out of order", k);
		prev = q + 1;
	}
	for (unsigned k = 0; k < HAK_NBINS; k++) {
		if (taken[k])
			continue;
		fmt_bytes(v, ace_class_size[k]);
		snprintf(want, sizeof(want), "\n%7u%10s  ", k, v);
		ck_assert_msg(strstr(buf, want) == NULL, "a line for class %u, which is %s", k,
			      used[k] ? "not among the busiest" : "unused");
	}
	if (nused > 10) {
		snprintf(want, sizeof(want), "\n  and %u more used (the JSON form lists every class)\n",
			 nused - 10);
		want_in(buf, want);
	} else {
		ck_assert_ptr_null(strstr(buf, "more used (the JSON"));
	}

	/* the mid pages: mean pages per refill, two decimals, rounded */
	uint64_t r = st->pool_page_refills;
	if (r)
		snprintf(v, sizeof(v), "%llu.%02llu", (unsigned long long)((st->pool_pages_taken * 100 + r / 2) / r / 100),
			 (unsigned long long)((st->pool_pages_taken * 100 + r / 2) / r % 100));
	else
		snprintf(v, sizeof(v), "-");
	snprintf(note, sizeof(note), "%llu pages taken by %llu refills",
		 (unsigned long long)st->pool_pages_taken, (unsigned long long)r);
	want_line(want, sizeof(want), "pages per refill", v, note);
	want_in(buf, want);

	/* threads */
	snprintf(v, sizeof(v), "%llu", (unsigned long long)st->threads_started);
	snprintf(note, sizeof(note), "thread heaps made; %llu flushed at thread exit",
		 (unsigned long long)st->threads_exited);
	want_line(want, sizeof(want), "heaps", v, note);
	want_in(buf, want);
	snprintf(v, sizeof(v), "%llu", (unsigned long long)st->remote_frees);
	want_line(want, sizeof(want), "remote frees", v, "blocks freed by a thread other than their owner");
	want_in(buf, want);
	snprintf(v, sizeof(v), "%llu", (unsigned long long)st->foreign_frees);
	want_line(want, sizeof(want), "foreign frees", v, "pointers hakmem never handed out, left alone");
	want_in(buf, want);

	/* every setting, its value and its source */
	for (unsigned i = 0; i < config_count(); i++) {
		struct config_setting cs;
		config_get(i, &cs);
		snprintf(want, sizeof(want), "\n  %-26s%8s  %s\n", cs.name, cs.text,
			 cs.from_env ? "environment" : "default");
		want_in(buf, want);
	}
	want_in(buf, "\n  HAKMEM_WMAX                   1.25  default\n");

	/* lines for a terminal of 80 columns */
	for (const char *l = buf; *l;) {
		size_t n = strcspn(l, "\n");
		ck_assert_msg(n <= 79, "a line of %zu characters: \"%.*s\"", n, (int)n, l);
		l += n + (l[n] == '\n');
	}
#ifdef HAKMEM_DEBUG_COUNTERS
	ck_assert_ptr_nonnull(strstr(buf, "\nDebug counters (--enable-debug-counters):\n"));
#else
	ck_assert_ptr_null(strstr(buf, "Debug counters"));
#endif
	ck_assert_msg(buf[strlen(buf) - 1] == '\n', "the report does not end a line");
}

/* The JSON form: one object, a member per line, every counter of
 * struct hak_stats by its name, the memory group and the settings. */
static void check_json(const char *buf, const struct hak_stats *st)
{
	char want[256];
	size_t n = strlen(buf);
	ck_assert_msg(strncmp(buf, "{\n  \"hakmem\": {\n", 16) == 0, "JSON begins \"%.40s\"", buf);
	ck_assert_msg(n > 3 && strcmp(buf + n - 3, "\n}\n") == 0, "JSON ends \"%s\"", buf + (n > 20 ? n - 20 : 0));
	/* brackets balance, outside strings, and never go below zero */
	int depth = 0;
	bool instr = false;
	for (const char *q = buf; *q; q++) {
		if (*q == '"')
			instr = !instr;
		else if (!instr && (*q == '{' || *q == '['))
			depth++;
		else if (!instr && (*q == '}' || *q == ']'))
			ck_assert_int_ge(--depth, 0);
	}
	ck_assert_int_eq(depth, 0);
	ck_assert(!instr);
	snprintf(want, sizeof(want), "\"version\": \"%s\",\n", hak_version());
	ck_assert_ptr_nonnull(strstr(buf, want));
	snprintf(want, sizeof(want), "\"pid\": %d\n", (int)getpid());
	ck_assert_ptr_nonnull(strstr(buf, want));
	for (unsigned i = 0; i < NFIELDS; i++) {
		snprintf(want, sizeof(want), "\n    \"%s\": %llu", fields[i].name,
			 (unsigned long long)field(st, i));
		const char *q = strstr(buf, want);
		ck_assert_msg(q != NULL, "no counter %s in the JSON", want + 1);
		q += strlen(want);
		ck_assert_msg(*q == ',' || *q == '\n', "%s followed by '%c'", want + 1, *q);
	}
	snprintf(want, sizeof(want), "\n    \"mapped\": %llu,\n", (unsigned long long)st->os_mapped);
	ck_assert_ptr_nonnull(strstr(buf, want));
	snprintf(want, sizeof(want), "\n    \"in_use\": %llu,\n",
		 (unsigned long long)(st->os_mapped - st->segments_cached * HAK_SEG_SIZE));
	ck_assert_ptr_nonnull(strstr(buf, want));
	ck_assert_ptr_nonnull(strstr(buf, "\n    \"HAKMEM_WMAX\": {\"value\": 1.25, \"source\": \"default\"}"));
	ck_assert_ptr_nonnull(strstr(buf, "\n    \"HAKMEM_WARN\": {\"value\": true, \"source\": \"default\"}"));
	for (const char *g = "memory\0tiers\0classes\0mid_pool\0threads\0counters\0settings\0"; *g;
	     g += strlen(g) + 1) {
		snprintf(want, sizeof(want), "\n  \"%s\": ", g);
		ck_assert_msg(strstr(buf, want) != NULL, "no group \"%s\"", g);
	}
}

/* Print with these flags to the collecting callback; every piece handed
 * over ends a line. */
static void print_collect(unsigned flags, struct hak_stats *st)
{
	out_len = 0;
	out_calls = 0;
	out_buf[0] = '\0';
	hak_stats_get(st);
	ck_assert_int_eq(hak_stats_print_opts(collect, NULL, flags), 0);
	ck_assert_msg(out_len < sizeof(out_buf) - 1024, "out_buf is too small");
	unsigned lines = 0;
	for (const char *p = out_buf; *p; p++)
		lines += *p == '\n';
	ck_assert_uint_eq(lines, out_calls);
	ck_assert_uint_ge(out_calls, 40);
}

/* Something in every line: a huge block in use, frees that overflow a
 * thread cache (3000 blocks of 200 bytes, cap 1024), a setting from the
 * environment (config_apply is what config_init calls). */
static void *stats_scene(void)
{
	static void *p[3000];
	for (int i = 0; i < 3000; i++)
		p[i] = hak_malloc(200);
	for (int i = 0; i < 3000; i++)
		hak_free(p[i]);
	/* more classes than the text lists: 20 sizes, 16 B to 320 KiB */
	for (int i = 0; i < 20; i++) {
		void *q = hak_malloc((size_t)16 << (i * 3 / 4));
		ck_assert_ptr_nonnull(q);
		hak_free(q);
	}
	ck_assert_int_eq(config_apply("HAKMEM_SEGMENT_CACHE", "8"), 0);
	return hak_malloc(3 * MiB);
}

START_TEST(test_print_callback)
{
	struct hak_stats st;
	void *h = stats_scene();
	/* hak_stats_print is flags 0: the same text, printed right after
	 * (no Check assertion in between: Check allocates, which moves the
	 * debug counters) */
	static char first[sizeof(out_buf)];
	out_len = 0;
	out_buf[0] = '\0';
	hak_stats_get(&st);
	int r = hak_stats_print_opts(collect, NULL, 0);
	memcpy(first, out_buf, out_len + 1);
	out_len = 0;
	out_buf[0] = '\0';
	hak_stats_print(collect, NULL);
	ck_assert_int_eq(r, 0);
	size_t d = 0;
	while (first[d] && first[d] == out_buf[d])
		d++;
	ck_assert_msg(first[d] == out_buf[d], "hak_stats_print differs from flags 0 at \"%.80s\": \"%.80s\"",
		      first + d, out_buf + d);
	print_collect(0, &st);
	check_report(out_buf, &st);
	ck_assert_uint_ge(st.huge_allocs - st.huge_frees, 1);
	ck_assert_ptr_nonnull(strstr(out_buf, "\n  HAKMEM_SEGMENT_CACHE             8  environment\n"));
	ck_assert_ptr_nonnull(strstr(out_buf, " more used (the JSON form lists every class)\n"));
	uint64_t ctr[HAK_NCOUNTERS], started, exited;
	heap_counters_sum(ctr, &started, &exited);
	ck_assert_uint_gt(((struct heap_counters *)ctr)->cls[ace_class(200)][CC_OVERFLOWS], 0);
	hak_free(h);
}
END_TEST

START_TEST(test_print_json)
{
	struct hak_stats st;
	void *h = stats_scene();
	print_collect(HAK_STATS_JSON, &st);
	check_json(out_buf, &st);
	ck_assert_ptr_nonnull(strstr(out_buf, "\n    \"HAKMEM_SEGMENT_CACHE\": {\"value\": 8, \"source\": \"environment\"}"));
	/* the tiers and the class of 200 bytes, with its overflows */
	uint64_t ctr[HAK_NCOUNTERS], started, exited;
	heap_counters_sum(ctr, &started, &exited);
	const struct heap_counters *c = (const struct heap_counters *)ctr;
	unsigned k = ace_class(200);
	char want[256];
	snprintf(want, sizeof(want),
		 "\n    {\"class\": %u, \"size\": %u, \"tier\": \"tiny\", \"cap\": %u, \"refills\": %llu, "
		 "\"blocks\": %llu, \"overflows\": %llu, \"misses\": %llu, \"miss_request_bytes\": %llu}",
		 k, ace_class_size[k], (unsigned)knob_cap(k), (unsigned long long)c->cls[k][CC_REFILLS],
		 (unsigned long long)c->cls[k][CC_BLOCKS], (unsigned long long)c->cls[k][CC_OVERFLOWS],
		 (unsigned long long)c->cls[k][CC_MISSES], (unsigned long long)c->cls[k][CC_REQ_BYTES]);
	ck_assert_msg(strstr(out_buf, want) != NULL, "no %s in the JSON", want + 1);
	ck_assert_uint_gt(c->cls[k][CC_OVERFLOWS], 0);
	uint64_t tiny_over = 0;
	for (unsigned i = 0; i < HAK_NBINS; i++)
		if (ace_tier_of_class(i) == TIER_TINY)
			tiny_over += c->cls[i][CC_OVERFLOWS];
	snprintf(want, sizeof(want), "\n    \"tiny\": {\n      \"refills\": %llu,\n",
		 (unsigned long long)st.tiny_refills);
	const char *q = strstr(out_buf, want);
	ck_assert_msg(q != NULL, "no %s in the JSON", want + 1);
	q = strstr(q, "\"overflows\": ");
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_eq(strtoull(q + 13, NULL, 10), tiny_over);
	hak_free(h);
}
END_TEST

/* An unknown flag: EINVAL, nothing printed, the callback never called. */
START_TEST(test_print_bad_flags)
{
	out_len = 0;
	out_calls = 0;
	out_buf[0] = '\0';
	static const unsigned bad[] = { 2, 4, 0x80000000u, HAK_STATS_JSON | 2, ~0u };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		ck_assert_int_eq(hak_stats_print_opts(collect, NULL, bad[i]), -1);
		ck_assert_int_eq(errno, EINVAL);
	}
	ck_assert_uint_eq(out_calls, 0);
	/* and errno is kept on success */
	errno = 4321;
	ck_assert_int_eq(hak_stats_print_opts(collect, NULL, HAK_STATS_JSON), 0);
	ck_assert_int_eq(errno, 4321);
}
END_TEST

/* fmt_bytes: units for people. */
START_TEST(test_fmt_bytes)
{
	static const struct {
		uint64_t v;
		const char *s;
	} cases[] = {
		{ 0, "0 B" },
		{ 1, "1 B" },
		{ 1023, "1023 B" },
		{ 1024, "1.0 KiB" },
		{ 1536, "1.5 KiB" },
		{ 1075, "1.0 KiB" },  /* 1.0498 */
		{ 1076, "1.1 KiB" },  /* 1.0508 */
		{ 10 * 1024 + 512, "10.5 KiB" },
		{ 1048575, "1.0 MiB" }, /* 1023.999 KiB rounds to the next unit */
		{ 1048576, "1.0 MiB" },
		{ 4202496, "4.0 MiB" },
		{ 1019 * 1024 * 1024 + 1, "1019.0 MiB" },
		{ 3ull << 30, "3.0 GiB" },
		{ 5ull << 40, "5.0 TiB" },
		{ 7ull << 50, "7.0 PiB" },
		{ 1ull << 60, "1.0 EiB" },
		{ UINT64_MAX, "16.0 EiB" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[32];
		memset(buf, 'X', sizeof(buf));
		size_t n = fmt_bytes(buf, cases[i].v);
		ck_assert_msg(strcmp(buf, cases[i].s) == 0, "fmt_bytes(%llu) = \"%s\", expected \"%s\"",
			      (unsigned long long)cases[i].v, buf, cases[i].s);
		ck_assert_uint_eq(n, strlen(cases[i].s));
		ck_assert_uint_le(n, 15);
	}
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
	static char buf[65536];
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
	static char buf[65536];
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
	ck_assert_ptr_nonnull(strstr(buf, "\nThreads: "));

	/* HAKMEM_STATS=json: the JSON object */
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		hak_cfg.stats = 2;
		exit(0);
	}
	close(fds[1]);
	n = 0;
	while (n < sizeof(buf) - 1 && (r = read(fds[0], buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	close(fds[0]);
	waitpid(pid, &status, 0);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_msg(strncmp(buf, "{\n  \"hakmem\": {\n", 16) == 0, "stderr at exit: \"%.80s\"", buf);
	ck_assert_ptr_nonnull(strstr(buf, "\n    \"HAKMEM_STATS\": {\"value\": \"json\""));
	ck_assert_ptr_null(strstr(buf, "hakmem statistics"));

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

static unsigned print_flags; /* HAK_STATS_JSON or 0 */

static void print_without_alloc(void)
{
	memset(&snap_before, 0, sizeof(snap_before));
	snap_calls = snap_mismatch = 0;
	snap_what[0] = '\0';
	take_snap(&snap_before);
	hak_stats_print_opts(compare_snap, NULL, print_flags);
	compare_snap(NULL, "after"); /* and after the last piece */
}

START_TEST(test_print_no_alloc)
{
	print_flags = (unsigned)_i; /* the loop test's index: 0, then HAK_STATS_JSON */
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
	print_flags = (unsigned)_i;
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
	print_flags = (unsigned)_i;
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
	tcase_add_test(tc, test_fmt_bytes);
	tcase_add_test(tc, test_print_callback);
	tcase_add_test(tc, test_print_json);
	tcase_add_test(tc, test_print_bad_flags);
	tcase_add_test(tc, test_print_fd2);
	tcase_add_test(tc, test_print_at_exit);
	/* each in the text (0) and the JSON form (HAK_STATS_JSON == 1) */
	tcase_add_loop_test(tc, test_print_no_alloc, 0, 2);
	tcase_add_loop_test(tc, test_print_no_alloc_empty_bins, 0, 2);
	tcase_add_loop_test(tc, test_print_no_alloc_fresh_thread, 0, 2);
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
