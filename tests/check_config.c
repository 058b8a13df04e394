/* check_config.c - internal tests of lib/config.c: the HAKMEM_* table.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * config_parse: integers and two-place decimals, blanks around the value,
 * rejection of everything else.  config_apply: each variable takes its
 * whole range and stores it in hak_cfg; a bad value or an unknown name
 * prints exactly one line on standard error (captured here through a pipe
 * put on fd 2) that names the variable, the value and the accepted range,
 * and the old value stays.
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern char **environ;

/* ---- stderr capture ---- */

static int cap_saved = -1, cap_pipe[2];
static char cap_buf[8192];

static void capture_begin(void)
{
	ck_assert_int_eq(pipe(cap_pipe), 0);
	cap_saved = dup(2);
	ck_assert_int_ge(cap_saved, 0);
	ck_assert_int_eq(dup2(cap_pipe[1], 2), 2);
	close(cap_pipe[1]);
}

/* Restore fd 2; return what was written (NUL-terminated, in cap_buf). */
static const char *capture_end(void)
{
	dup2(cap_saved, 2);
	close(cap_saved);
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(cap_buf) - 1 && (r = read(cap_pipe[0], cap_buf + n, sizeof(cap_buf) - 1 - n)) > 0)
		n += (size_t)r;
	close(cap_pipe[0]);
	cap_buf[n] = '\0';
	return cap_buf;
}

static unsigned count_lines(const char *s)
{
	unsigned n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* ---- the documented table ---- */

struct var {
	const char *name;
	_Atomic long *field;
	long min, max, def;
	int decimals;
};

static const struct var vars[] = {
	{ "HAKMEM_STATS", &hak_cfg.stats, 0, 1, 0, 0 },
	{ "HAKMEM_TINY_USE_SUPERSLAB", &hak_cfg.tiny_superslab, 1, 1, 1, 0 },
	{ "HAKMEM_TINY_SLL_CAP", &hak_cfg.tiny_sll_cap, 0, 65535, 1024, 0 },
	{ "HAKMEM_POOL_RING_CAP", &hak_cfg.pool_ring_cap, 0, 4096, 32, 0 },
	{ "HAKMEM_POOL_REFILL_BATCH", &hak_cfg.pool_refill_batch, 1, 4, 2, 0 },
	{ "HAKMEM_POOL_CAP", &hak_cfg.pool_cap, 1, 1024, 4, 0 },
	{ "HAKMEM_LARGE_CACHE_CAP", &hak_cfg.large_cache_cap, 0, 256, 1, 0 },
	{ "HAKMEM_PURGE_DELAY_MS", &hak_cfg.purge_delay_ms, 0, 3600000, 100, 0 },
	{ "HAKMEM_SEGMENT_CACHE", &hak_cfg.segment_cache, 0, 1024, 8, 0 },
	{ "HAKMEM_HUGE_CACHE", &hak_cfg.huge_cache, 0, 64, 8, 0 },
	{ "HAKMEM_WMAX", &hak_cfg.wmax_pct, 100, 400, 125, 2 },
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))

/* The text config_apply should print for a scaled value. */
static void fmt_val(char *buf, size_t len, long v, int decimals)
{
	if (decimals)
		snprintf(buf, len, "%ld.%02ld", v / 100, v % 100);
	else
		snprintf(buf, len, "%ld", v);
}

static bool env_has_hakmem(void)
{
	for (char **e = environ; e && *e; e++)
		if (strncmp(*e, "HAKMEM_", 7) == 0)
			return true;
	return false;
}

/* Every test starts from the documented defaults. */
static void reset_defaults(void)
{
	for (size_t i = 0; i < NVARS; i++)
		*vars[i].field = vars[i].def;
}

/* ---- config_parse ---- */

static void parse_ok(const char *s, int decimals, long want)
{
	long v = -4242;
	int r = config_parse(s, decimals, &v);
	ck_assert_msg(r == 0, "config_parse(\"%s\", %d) rejected", s, decimals);
	ck_assert_msg(v == want, "config_parse(\"%s\", %d) = %ld, expected %ld", s, decimals, v, want);
}

static void parse_bad(const char *s, int decimals)
{
	long v = -4242;
	int r = config_parse(s, decimals, &v);
	ck_assert_msg(r != 0, "config_parse(\"%s\", %d) accepted (%ld)", s, decimals, v);
	ck_assert_msg(v == -4242, "config_parse(\"%s\") wrote %ld on failure", s, v);
}

START_TEST(test_parse_integers)
{
	parse_ok("0", 0, 0);
	parse_ok("7", 0, 7);
	parse_ok("007", 0, 7);
	parse_ok("65536", 0, 65536);
	parse_ok("3600000", 0, 3600000);
	parse_ok(" 7 ", 0, 7);
	parse_ok("\t12\t", 0, 12);
	parse_ok("   1", 0, 1);
	parse_ok("1   ", 0, 1);
	parse_ok("9223372036", 0, 9223372036L);
}
END_TEST

START_TEST(test_parse_decimals)
{
	parse_ok("1.25", 2, 125);
	parse_ok("1", 2, 100);
	parse_ok("4", 2, 400);
	parse_ok("1.5", 2, 150);
	parse_ok("1.50", 2, 150);
	parse_ok("4.00", 2, 400);
	parse_ok("0.99", 2, 99);
	parse_ok("2.05", 2, 205);
	parse_ok(" 1.25 ", 2, 125);
	parse_ok("1.0", 1, 10);
}
END_TEST

START_TEST(test_parse_rejects)
{
	parse_bad("abc", 0);
	parse_bad("abc", 2);
	parse_bad("-5", 0);
	parse_bad("-1.25", 2);
	parse_bad("+5", 0);
	parse_bad("1.234", 2);
	parse_bad("1.5", 0); /* no fraction for an integer variable */
	parse_bad("", 0);
	parse_bad("", 2);
	parse_bad("   ", 0);
	parse_bad(".", 2);
	parse_bad("1 2", 0);
	parse_bad("12abc", 0);
	parse_bad("0x10", 0);
	parse_bad("1e3", 0);
	parse_bad("1..2", 2);
	parse_bad("1.2.3", 2);
	/* overflow: far beyond every range, must not wrap into one */
	parse_bad("9223372036854775808", 0);
	parse_bad("18446744073709551617", 0);
	parse_bad("99999999999999999999999999999", 0);
	parse_bad("99999999999999999999999999999", 2);
	parse_bad("18446744073709551616.00", 2);
}
END_TEST

/* ---- config_apply ---- */

START_TEST(test_defaults)
{
	/* hak_cfg as initialised from an environment without HAKMEM_* */
	if (env_has_hakmem())
		return; /* the user's environment set something: nothing to compare */
	char msg[512] = "";
	for (size_t i = 0; i < NVARS; i++)
		if (*vars[i].field != vars[i].def)
			snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), " %s=%ld (documented %ld);",
				 vars[i].name, *vars[i].field, vars[i].def);
	ck_assert_msg(msg[0] == '\0', "defaults differ from the documented ones:%s", msg);
}
END_TEST

START_TEST(test_apply_valid)
{
	reset_defaults();
	for (size_t i = 0; i < NVARS; i++) {
		const struct var *v = &vars[i];
		long vals[3] = { v->min, v->max, (v->min + v->max) / 2 };
		for (int k = 0; k < 3; k++) {
			char text[64];
			fmt_val(text, sizeof(text), vals[k], v->decimals);
			capture_begin();
			int r = config_apply(v->name, text);
			const char *err = capture_end();
			ck_assert_msg(r == 0, "%s=%s rejected", v->name, text);
			ck_assert_msg(*v->field == vals[k], "%s=%s stored %ld", v->name, text, *v->field);
			ck_assert_msg(err[0] == '\0', "%s=%s printed \"%s\"", v->name, text, err);
		}
		*v->field = v->def;
	}
	/* integer form of a decimal variable, and blanks */
	ck_assert_int_eq(config_apply("HAKMEM_WMAX", "2"), 0);
	ck_assert_int_eq(hak_cfg.wmax_pct, 200);
	ck_assert_int_eq(config_apply("HAKMEM_WMAX", " 1.5 "), 0);
	ck_assert_int_eq(hak_cfg.wmax_pct, 150);
	/* the variable sets W_MAX of every tier (the knobs ace.c reads) */
	for (int t = 0; t < TIER_NWMAX; t++)
		ck_assert_uint_eq(hak_cfg.wmax[t], 150);
	ck_assert_int_eq(config_apply("HAKMEM_TINY_SLL_CAP", " 7 "), 0);
	ck_assert_int_eq(hak_cfg.tiny_sll_cap, 7);
}
END_TEST

/* One bad value: exactly one line, in the documented format, old value kept. */
static void apply_bad(const struct var *v, const char *value, const char *why)
{
	char want[512], lo[32], hi[32], old[32];
	long before = *v->field;
	fmt_val(lo, sizeof(lo), v->min, v->decimals);
	fmt_val(hi, sizeof(hi), v->max, v->decimals);
	fmt_val(old, sizeof(old), before, v->decimals);
	snprintf(want, sizeof(want), "hakmem: warning: %s=%s: %s; accepted: %s-%s; using default %s\n",
		 v->name, value, why, lo, hi, old);
	capture_begin();
	int r = config_apply(v->name, value);
	const char *err = capture_end();
	ck_assert_msg(r != 0, "%s=%s accepted", v->name, value);
	ck_assert_msg(*v->field == before, "%s=%s changed the value to %ld", v->name, value, *v->field);
	ck_assert_msg(count_lines(err) == 1, "%s=%s: %u lines on stderr: \"%s\"", v->name, value,
		      count_lines(err), err);
	ck_assert_str_eq(err, want);
}

START_TEST(test_apply_invalid)
{
	reset_defaults();
	for (size_t i = 0; i < NVARS; i++) {
		const struct var *v = &vars[i];
		char text[64];
		fmt_val(text, sizeof(text), v->max + 1, v->decimals);
		apply_bad(v, text, "out of range");
		if (v->min > 0) {
			fmt_val(text, sizeof(text), v->min - 1, v->decimals);
			apply_bad(v, text, "out of range");
		}
		apply_bad(v, "abc", "not a number");
		apply_bad(v, "-5", "not a number");
		apply_bad(v, "", "not a number");
		apply_bad(v, "99999999999999999999", "not a number");
		apply_bad(v, v->decimals ? "1.234" : "1.5", "not a number");
	}
	/* the kept value is the old one, and the warning says so */
	ck_assert_int_eq(config_apply("HAKMEM_SEGMENT_CACHE", "5"), 0);
	apply_bad(&vars[6], "2000", "out of range");
	ck_assert_int_eq(hak_cfg.segment_cache, 5);
}
END_TEST

START_TEST(test_apply_unknown)
{
	reset_defaults();
	struct hak_config before = hak_cfg;
	capture_begin();
	int r = config_apply("HAKMEM_NO_SUCH_THING", "1");
	const char *err = capture_end();
	ck_assert_int_ne(r, 0);
	ck_assert_str_eq(err, "hakmem: warning: unknown variable HAKMEM_NO_SUCH_THING ignored\n");
	ck_assert_int_eq(memcmp(&before, &hak_cfg, sizeof(before)), 0);
	/* names are matched whole, case and all */
	capture_begin();
	r = config_apply("HAKMEM_STATSX", "1");
	err = capture_end();
	ck_assert_int_ne(r, 0);
	ck_assert_str_eq(err, "hakmem: warning: unknown variable HAKMEM_STATSX ignored\n");
	capture_begin();
	r = config_apply("hakmem_stats", "1");
	err = capture_end();
	ck_assert_int_ne(r, 0);
	ck_assert_uint_eq(count_lines(err), 1);
	ck_assert_int_eq(hak_cfg.stats, 0);
}
END_TEST

/* A value is echoed in the warning: whatever it holds, the warning must
 * stay one line (a newline in an environment value must not split it). */
START_TEST(test_warning_one_line_control_chars)
{
	reset_defaults();
	capture_begin();
	int r = config_apply("HAKMEM_STATS", "1\nhakmem: forged line");
	const char *err = capture_end();
	ck_assert_int_ne(r, 0);
	ck_assert_int_eq(hak_cfg.stats, 0);
	ck_assert_msg(count_lines(err) == 1, "warning spans %u lines: \"%s\"", count_lines(err), err);
	ck_assert_msg(strncmp(err, "hakmem: warning: HAKMEM_STATS=", 30) == 0, "got \"%s\"", err);
}
END_TEST

/* A long value must still give one complete line naming the range. */
START_TEST(test_warning_long_value)
{
	reset_defaults();
	char value[120];
	memset(value, 'x', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	capture_begin();
	int r = config_apply("HAKMEM_HUGE_CACHE", value);
	const char *err = capture_end();
	ck_assert_int_ne(r, 0);
	ck_assert_uint_eq(count_lines(err), 1);
	/* the value is shown shortened, marked with "..." */
	char head[64];
	memcpy(head, value, 60);
	memcpy(head + 60, "...", 4);
	ck_assert_ptr_nonnull(strstr(err, head));
	ck_assert_ptr_nonnull(strstr(err, "; accepted: 0-64; using default 8\n"));
}
END_TEST

/* config_init reads the process environment. */
START_TEST(test_init_from_environ)
{
	reset_defaults();
	/* the test may run with HAKMEM_* of its own: clear them */
	for (size_t i = 0; i < NVARS; i++)
		unsetenv(vars[i].name);
	setenv("HAKMEM_SEGMENT_CACHE", "3", 1);
	setenv("HAKMEM_WMAX", "2.50", 1);
	setenv("HAKMEM_HUGE_CACHE", "65", 1);
	setenv("HAKMEM_BOGUS", "1", 1);
	setenv("NOT_HAKMEM_STATS", "1", 1);
	capture_begin();
	config_init();
	const char *err = capture_end();
	ck_assert_int_eq(hak_cfg.segment_cache, 3);
	ck_assert_int_eq(hak_cfg.wmax_pct, 250);
	ck_assert_int_eq(hak_cfg.huge_cache, 8);
	ck_assert_int_eq(hak_cfg.stats, 0);
	ck_assert_uint_eq(count_lines(err), 2);
	ck_assert_ptr_nonnull(strstr(err, "hakmem: warning: HAKMEM_HUGE_CACHE=65: out of range; "
					  "accepted: 0-64; using default 8\n"));
	ck_assert_ptr_nonnull(strstr(err, "hakmem: warning: unknown variable HAKMEM_BOGUS ignored\n"));
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("parse");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_parse_integers);
	tcase_add_test(tc, test_parse_decimals);
	tcase_add_test(tc, test_parse_rejects);
	suite_add_tcase(s, tc);

	tc = tcase_create("apply");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_apply_valid);
	tcase_add_test(tc, test_apply_invalid);
	tcase_add_test(tc, test_apply_unknown);
	tcase_add_test(tc, test_warning_long_value);
	tcase_add_test(tc, test_warning_one_line_control_chars);
	tcase_add_test(tc, test_init_from_environ);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	/* every test in a process of its own: the tests change hakmem's
	 * global state (hak_cfg, caches, heaps) */
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
