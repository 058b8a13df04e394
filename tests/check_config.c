/* check_config.c - internal tests of lib/config.c: the HAKMEM_* table.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * config_parse: integers and two-place decimals, blanks around the value,
 * rejection of everything else.  config_parse_bool: 1/0, true/false,
 * yes/no, on/off in any case.  config_apply: each variable takes its
 * whole range and stores it in hak_cfg; a bad value or an unknown name
 * prints exactly one line on standard error (captured here through a pipe
 * put on fd 2) that names the variable, the value and the accepted range,
 * and the old value stays.  HAKMEM_STATS also takes text and json.
 * HAKMEM_WARN=0 silences the warnings; HAKMEM_STRICT=1 makes config_init
 * print every bad variable and exit with status 1; HAKMEM_VERBOSE=1
 * prints the settings in effect and their source (config_get).
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
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
	int kind; /* CONFIG_NUM unless given */
};

static const struct var vars[] = {
	{ "HAKMEM_STATS", &hak_cfg.stats, 0, 1, 0, 0, CONFIG_STATS },
	{ "HAKMEM_TINY_USE_SUPERSLAB", &hak_cfg.tiny_superslab, 1, 1, 1, 0, CONFIG_BOOL },
	{ "HAKMEM_TINY_SLL_CAP", &hak_cfg.tiny_sll_cap, 0, 65535, 1024, 0, CONFIG_NUM },
	{ "HAKMEM_POOL_RING_CAP", &hak_cfg.pool_ring_cap, 0, 4096, 32, 0, CONFIG_NUM },
	{ "HAKMEM_POOL_REFILL_BATCH", &hak_cfg.pool_refill_batch, 1, 4, 2, 0, CONFIG_NUM },
	{ "HAKMEM_POOL_CAP", &hak_cfg.pool_cap, 1, 1024, 4, 0, CONFIG_NUM },
	{ "HAKMEM_LARGE_CACHE_CAP", &hak_cfg.large_cache_cap, 0, 256, 0, 0, CONFIG_NUM },
	{ "HAKMEM_PURGE_DELAY_MS", &hak_cfg.purge_delay_ms, 0, 3600000, 100, 0, CONFIG_NUM },
	{ "HAKMEM_PURGE_THREAD", &hak_cfg.purge_thread, 0, 1, 1, 0, CONFIG_BOOL },
	{ "HAKMEM_SEGMENT_CACHE", &hak_cfg.segment_cache, 0, 1024, 8, 0, CONFIG_NUM },
	{ "HAKMEM_HUGE_CACHE", &hak_cfg.huge_cache, 0, 64, 8, 0, CONFIG_NUM },
	{ "HAKMEM_HUGE_CACHE_MB", &hak_cfg.huge_cache_mb, 0, 1048576, 256, 0, CONFIG_NUM },
	{ "HAKMEM_WMAX", &hak_cfg.wmax_pct, 100, 400, 125, 2, CONFIG_NUM },
	{ "HAKMEM_SECURE_FILL", &hak_cfg.secure_fill, 0, 1, 0, 0, CONFIG_BOOL },
	{ "HAKMEM_VERBOSE", &config_verbose, 0, 1, 0, 0, CONFIG_BOOL },
	{ "HAKMEM_STRICT", &config_strict, 0, 1, 0, 0, CONFIG_BOOL },
	{ "HAKMEM_WARN", &config_warn, 0, 1, 1, 0, CONFIG_BOOL },
	/* words only: abort (0), warn (1), ignore (2); test_on_error */
	{ "HAKMEM_ON_ERROR", &hak_cfg.on_error, 0, 2, 0, 0, CONFIG_ONERR },
	{ "HAKMEM_LEARN", &hak_cfg.learn, 0, 1, 0, 0, CONFIG_BOOL },
	{ "HAKMEM_TARGET_HIT_MID", &hak_cfg.target_hit_mid, 50, 90, 65, 2, CONFIG_NUM },
	{ "HAKMEM_CAP_STEP_MID", &hak_cfg.cap_step_mid, 1, 16, 4, 0, CONFIG_NUM },
	{ "HAKMEM_CAP_MIN_MID", &hak_cfg.cap_min_mid, 4, 64, 8, 0, CONFIG_NUM },
	{ "HAKMEM_CAP_MAX_MID", &hak_cfg.cap_max_mid, 128, 4096, 2048, 0, CONFIG_NUM },
	{ "HAKMEM_CAP_DWELL_SEC_MID", &hak_cfg.cap_dwell_sec_mid, 1, 10, 3, 0, CONFIG_NUM },
	{ "HAKMEM_LEARN_WINDOW_MS", &hak_cfg.learn_window_ms, 500, 5000, 1000, 0, CONFIG_NUM },
	{ "HAKMEM_LEARN_MIN_SAMPLES", &hak_cfg.learn_min_samples, 64, 1024, 256, 0, CONFIG_NUM },
	/* a file name; a list: test_learn_vars */
	{ "HAKMEM_LEARN_TRACE", &hak_cfg.learn_trace, 0, 1, 0, 0, CONFIG_TEXT },
	{ "HAKMEM_WMAX_LEARN", &hak_cfg.wmax_learn, 0, 1, 0, 0, CONFIG_BOOL },
	{ "HAKMEM_WMAX_CANDIDATES_MID", &hak_cfg.wmax_candidates_mid, 100, 400, CONFIG_LIST2(140, 160), 2,
	  CONFIG_LIST },
	{ "HAKMEM_WMAX_CANARY", &hak_cfg.wmax_canary, 0, 1, 1, 0, CONFIG_BOOL },
	{ "HAKMEM_WMAX_TRIAL_SEC", &hak_cfg.wmax_trial_sec, 3, 15, 5, 0, CONFIG_NUM },
	{ "HAKMEM_WMAX_ADOPT_PCT", &hak_cfg.wmax_adopt_pct, 5, 50, 10, 3, CONFIG_NUM },
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))

/* What the warning says a variable accepts. */
static void accepted(const struct var *v, char *buf, size_t len)
{
	if (v->kind == CONFIG_NUM && v->decimals == 3)
		snprintf(buf, len, "%ld.%03ld-%ld.%03ld", v->min / 1000, v->min % 1000, v->max / 1000,
			 v->max % 1000);
	else if (v->kind == CONFIG_NUM && v->decimals)
		snprintf(buf, len, "%ld.%02ld-%ld.%02ld", v->min / 100, v->min % 100, v->max / 100,
			 v->max % 100);
	else if (v->kind == CONFIG_NUM)
		snprintf(buf, len, "%ld-%ld", v->min, v->max);
	else if (v->min == v->max)
		snprintf(buf, len, "1, true, yes, on");
	else
		snprintf(buf, len, "0-1, false/true, no/yes, off/on%s",
			 v->kind == CONFIG_STATS ? ", text, json" : "");
}

/* The text config_apply should print for a scaled value. */
static void fmt_val(char *buf, size_t len, long v, int decimals)
{
	if (decimals == 3)
		snprintf(buf, len, "%ld.%03ld", v / 1000, v % 1000);
	else if (decimals)
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

START_TEST(test_parse_bool)
{
	static const struct {
		const char *s;
		long v;
	} ok[] = {
		{ "1", 1 },	{ "0", 0 },	  { "true", 1 },   { "false", 0 }, { "yes", 1 },
		{ "no", 0 },	{ "on", 1 },	  { "off", 0 },	   { "TRUE", 1 },  { "False", 0 },
		{ "YeS", 1 },	{ "NO", 0 },	  { "On", 1 },	   { "oFF", 0 },   { " yes ", 1 },
		{ "\toff", 0 }, { "001", 1 },	  { " 0 ", 0 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		long v = -7;
		ck_assert_msg(config_parse_bool(ok[i].s, &v) == 0, "\"%s\" rejected", ok[i].s);
		ck_assert_msg(v == ok[i].v, "\"%s\" gave %ld", ok[i].s, v);
	}
	static const char *const bad[] = { "",	  " ",	  "tru", "yess", "y",	 "n",	"of",
					   "onn", "yes no", "-1", "0x1", "1.0", "text", "json",
					   "oui", "t rue" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long v = -7;
		ck_assert_msg(config_parse_bool(bad[i], &v) < 0, "\"%s\" accepted", bad[i]);
		ck_assert_int_eq(v, -7);
	}
	/* a number other than 0 and 1: out of range, not "not a boolean" */
	long v = -7;
	ck_assert_int_eq(config_parse_bool("2", &v), 1);
	ck_assert_int_eq(config_parse_bool("65536", &v), 1);
	ck_assert_int_eq(v, -7);
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
		if (v->kind == CONFIG_ONERR || v->kind == CONFIG_TEXT || v->kind == CONFIG_LIST)
			continue; /* words, not numbers: test_on_error, test_learn_vars */
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
	char want[512], range[96], old[32];
	long before = *v->field;
	fmt_val(old, sizeof(old), before, v->decimals);
	accepted(v, range, sizeof(range));
	snprintf(want, sizeof(want), "hakmem: warning: %s=%s: %s; accepted: %s; using default %s\n",
		 v->name, value, why, range, old);
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
		if (v->kind == CONFIG_ONERR || v->kind == CONFIG_TEXT || v->kind == CONFIG_LIST)
			continue; /* test_on_error, test_learn_vars */
		const char *nan = v->kind == CONFIG_NUM	   ? "not a number"
				  : v->kind == CONFIG_BOOL ? "not a boolean"
							   : "not a boolean, text or json";
		char text[64];
		fmt_val(text, sizeof(text), v->max + 1, v->decimals);
		apply_bad(v, text, "out of range");
		if (v->min > 0) {
			fmt_val(text, sizeof(text), v->min - 1, v->decimals);
			apply_bad(v, text, "out of range");
		}
		apply_bad(v, "abc", nan);
		apply_bad(v, "-5", nan);
		apply_bad(v, "", nan);
		apply_bad(v, "99999999999999999999", nan);
		apply_bad(v, v->decimals == 3 ? "0.0123" : v->decimals ? "1.234" : "1.5", nan);
		if (v->kind != CONFIG_NUM) {
			apply_bad(v, "tru", nan);
			apply_bad(v, "yes please", nan);
			apply_bad(v, "0x1", nan);
		}
		if (v->kind == CONFIG_BOOL && v->min == 1) {
			apply_bad(v, "false", "out of range");
			apply_bad(v, "Off", "out of range");
		}
		if (v->kind == CONFIG_NUM) {
			apply_bad(v, "true", nan);
			apply_bad(v, "json", nan);
		}
		if (v->kind == CONFIG_BOOL)
			apply_bad(v, "json", nan);
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

/* Booleans in words; HAKMEM_STATS's text and json. */
START_TEST(test_apply_words)
{
	reset_defaults();
	static const struct {
		const char *name, *value;
		_Atomic long *field;
		long want;
	} cases[] = {
		{ "HAKMEM_STATS", "yes", &hak_cfg.stats, 1 },
		{ "HAKMEM_STATS", "off", &hak_cfg.stats, 0 },
		{ "HAKMEM_STATS", "JSON", &hak_cfg.stats, 2 },
		{ "HAKMEM_STATS", "text", &hak_cfg.stats, 1 },
		{ "HAKMEM_STATS", " json ", &hak_cfg.stats, 2 },
		{ "HAKMEM_STATS", "false", &hak_cfg.stats, 0 },
		{ "HAKMEM_TINY_USE_SUPERSLAB", "on", &hak_cfg.tiny_superslab, 1 },
		{ "HAKMEM_VERBOSE", "True", &config_verbose, 1 },
		{ "HAKMEM_VERBOSE", "no", &config_verbose, 0 },
		{ "HAKMEM_WARN", "off", &config_warn, 0 },
		{ "HAKMEM_WARN", "YES", &config_warn, 1 },
		{ "HAKMEM_STRICT", "on", &config_strict, 1 },
		{ "HAKMEM_STRICT", "0", &config_strict, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		capture_begin();
		int r = config_apply(cases[i].name, cases[i].value);
		const char *err = capture_end();
		ck_assert_msg(r == 0, "%s=%s rejected: %s", cases[i].name, cases[i].value, err);
		ck_assert_msg(*cases[i].field == cases[i].want, "%s=%s stored %ld", cases[i].name,
			      cases[i].value, *cases[i].field);
		ck_assert_str_eq(err, "");
	}
	/* json is shown as such, and warned about as the value kept */
	ck_assert_int_eq(config_apply("HAKMEM_STATS", "json"), 0);
	capture_begin();
	ck_assert_int_ne(config_apply("HAKMEM_STATS", "2"), 0);
	ck_assert_str_eq(capture_end(), "hakmem: warning: HAKMEM_STATS=2: out of range; accepted: 0-1, "
					 "false/true, no/yes, off/on, text, json; using default json\n");
	ck_assert_int_eq(hak_cfg.stats, 2);
}
END_TEST

/* HAKMEM_WARN=0: bad values and unknown names are refused in silence. */
START_TEST(test_warn_off)
{
	reset_defaults();
	config_warn = 0;
	capture_begin();
	int r1 = config_apply("HAKMEM_HUGE_CACHE", "65");
	int r2 = config_apply("HAKMEM_NO_SUCH_THING", "1");
	int r3 = config_apply("HAKMEM_STATS", "maybe");
	const char *err = capture_end();
	ck_assert_int_ne(r1, 0);
	ck_assert_int_ne(r2, 0);
	ck_assert_int_ne(r3, 0);
	ck_assert_int_eq(hak_cfg.huge_cache, 8);
	ck_assert_int_eq(hak_cfg.stats, 0);
	ck_assert_str_eq(err, "");
	/* good values still apply */
	ck_assert_int_eq(config_apply("HAKMEM_HUGE_CACHE", "5"), 0);
	ck_assert_int_eq(hak_cfg.huge_cache, 5);
}
END_TEST

/* An error config_apply reported before config_init (init_in_child). */
static bool child_error_before;

/* Runs config_init in a child with the given environment (NAME=VALUE
 * strings, NULL-terminated; HAKMEM_* of the test's own are removed); its
 * stderr in cap_buf; returns the wait status. */
static int init_in_child(const char *const *env)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		for (size_t i = 0; i < NVARS; i++)
			unsetenv(vars[i].name);
		reset_defaults();
		if (child_error_before) { /* counted, not printed */
			config_warn = 0;
			config_apply("HAKMEM_NOT_FROM_THE_ENVIRONMENT", "1");
			config_warn = 1;
		}
		for (const char *const *e = env; *e; e++)
			putenv((char *)*e);
		config_init();
		_exit(0);
	}
	close(fds[1]);
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(cap_buf) - 1 && (r = read(fds[0], cap_buf + n, sizeof(cap_buf) - 1 - n)) > 0)
		n += (size_t)r;
	cap_buf[n] = '\0';
	close(fds[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

/* HAKMEM_STRICT=1: every bad variable is an error, then exit(1); it may
 * come after the bad ones in the environment; HAKMEM_WARN=0 does not
 * hide the errors. */
START_TEST(test_strict)
{
	static const char *const bad[] = { "HAKMEM_BOGUS=1", "HAKMEM_WMAX=9", "HAKMEM_WARN=0",
					   "HAKMEM_STRICT=yes", NULL };
	int st = init_in_child(bad);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %#x, stderr \"%s\"", st, cap_buf);
	ck_assert_uint_eq(count_lines(cap_buf), 3);
	ck_assert_ptr_nonnull(strstr(cap_buf, "hakmem: error: unknown variable HAKMEM_BOGUS\n"));
	ck_assert_ptr_nonnull(strstr(cap_buf, "hakmem: error: HAKMEM_WMAX=9: out of range; "
					      "accepted: 1.00-4.00\n"));
	ck_assert_ptr_nonnull(strstr(cap_buf, "hakmem: error: bad HAKMEM_* settings and "
					      "HAKMEM_STRICT=1: exiting\n"));

	/* good values only: nothing printed, no exit */
	static const char *const good[] = { "HAKMEM_STRICT=1", "HAKMEM_WMAX=2", "HAKMEM_STATS=off",
					    NULL };
	st = init_in_child(good);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x, stderr \"%s\"", st, cap_buf);
	ck_assert_str_eq(cap_buf, "");
	/* ... also when something else was refused before: only the
	 * environment config_init reads counts */
	child_error_before = true;
	st = init_in_child(good);
	child_error_before = false;
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x, stderr \"%s\"", st, cap_buf);
	ck_assert_str_eq(cap_buf, "");

	/* a bad HAKMEM_STRICT is a warning like any other, and leaves it off */
	static const char *const badstrict[] = { "HAKMEM_STRICT=sure", "HAKMEM_WMAX=9", NULL };
	st = init_in_child(badstrict);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x, stderr \"%s\"", st, cap_buf);
	ck_assert_uint_eq(count_lines(cap_buf), 2);
	ck_assert_ptr_nonnull(strstr(cap_buf, "hakmem: warning: HAKMEM_STRICT=sure: not a boolean"));
}
END_TEST

/* HAKMEM_VERBOSE=1: one line per variable, its value and its source;
 * config_get says the same. */
START_TEST(test_verbose)
{
	static const char *const env[] = { "HAKMEM_VERBOSE=1", "HAKMEM_WMAX=2.5",
					   "HAKMEM_STATS=json", NULL };
	int st = init_in_child(env);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
	char head[128];
	snprintf(head, sizeof(head), "hakmem: version %s, pid ", hak_version());
	ck_assert_msg(strncmp(cap_buf, head, strlen(head)) == 0, "begins \"%.60s\"", cap_buf);
	ck_assert_uint_eq(count_lines(cap_buf), 1 + config_count());
	ck_assert_uint_eq(config_count(), NVARS);
	for (size_t i = 0; i < NVARS; i++) {
		const struct var *v = &vars[i];
		char want[160], val[32];
		bool given = strcmp(v->name, "HAKMEM_VERBOSE") == 0 || strcmp(v->name, "HAKMEM_WMAX") == 0 ||
			     strcmp(v->name, "HAKMEM_STATS") == 0;
		if (strcmp(v->name, "HAKMEM_WMAX") == 0)
			snprintf(val, sizeof(val), "2.50");
		else if (strcmp(v->name, "HAKMEM_STATS") == 0)
			snprintf(val, sizeof(val), "json");
		else if (strcmp(v->name, "HAKMEM_VERBOSE") == 0)
			snprintf(val, sizeof(val), "1");
		else if (v->kind == CONFIG_ONERR)
			snprintf(val, sizeof(val), "abort");
		else if (v->kind == CONFIG_TEXT)
			val[0] = '\0';
		else if (v->kind == CONFIG_LIST)
			snprintf(val, sizeof(val), "1.40,1.60");
		else
			fmt_val(val, sizeof(val), v->def, v->decimals);
		snprintf(want, sizeof(want), "\nhakmem:   %s=%s (%s)\n", v->name, val,
			 given ? "environment" : "default");
		ck_assert_msg(strstr(cap_buf, want) != NULL, "no line \"%s\" in:\n%s", want + 1, cap_buf);
	}
	/* nothing without it */
	static const char *const quiet[] = { "HAKMEM_VERBOSE=0", NULL };
	init_in_child(quiet);
	ck_assert_str_eq(cap_buf, "");
}
END_TEST

/* HAKMEM_ON_ERROR takes one of three words, in any case; anything else
 * is one warning line and the old value stays. */
/* The learner's two variables that are not one number. */
START_TEST(test_learn_vars)
{
	reset_defaults();
	/* a list of W_MAX candidates, packed (internal.h, CONFIG_LIST) */
	ck_assert_int_eq(config_apply("HAKMEM_WMAX_CANDIDATES_MID", "1.2,2,3.5,4"), 0);
	long p = hak_cfg.wmax_candidates_mid;
	ck_assert_int_eq(config_list_item(p, 0), 120);
	ck_assert_int_eq(config_list_item(p, 1), 200);
	ck_assert_int_eq(config_list_item(p, 2), 350);
	ck_assert_int_eq(config_list_item(p, 3), 400);
	ck_assert_int_eq(config_list_item(p, 4), 0);
	struct config_setting cs;
	for (unsigned i = 0; i < config_count(); i++) {
		config_get(i, &cs);
		if (strcmp(cs.name, "HAKMEM_WMAX_CANDIDATES_MID") == 0)
			break;
	}
	ck_assert_str_eq(cs.text, "1.20,2.00,3.50,4.00");
	ck_assert_int_eq(config_apply("HAKMEM_WMAX_CANDIDATES_MID", "1.6"), 0);
	ck_assert_int_eq(config_list_item(hak_cfg.wmax_candidates_mid, 0), 160);
	ck_assert_int_eq(config_list_item(hak_cfg.wmax_candidates_mid, 1), 0);
	static const char *const bad[] = { "", "abc", "1.4,", "1.4,abc", "0.99", "1.4,4.01",
					   "1,1,1,1,1", "1.4;1.6", "-1.4" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		capture_begin();
		int r = config_apply("HAKMEM_WMAX_CANDIDATES_MID", bad[i]);
		const char *err = capture_end();
		ck_assert_msg(r != 0, "\"%s\" accepted", bad[i]);
		ck_assert_msg(count_lines(err) == 1 && strstr(err, "HAKMEM_WMAX_CANDIDATES_MID=") &&
				      strstr(err, "accepted: 1.00-4.00, up to 4, comma separated; using default 1.60"),
			      "\"%s\": %s", bad[i], err);
		ck_assert_int_eq(config_list_item(hak_cfg.wmax_candidates_mid, 0), 160);
	}
	/* the trace file's name */
	ck_assert_str_eq(config_learn_trace(), "");
	ck_assert_int_eq(config_apply("HAKMEM_LEARN_TRACE", "/work/x.trace"), 0);
	ck_assert_str_eq(config_learn_trace(), "/work/x.trace");
	ck_assert_int_eq(hak_cfg.learn_trace, 1);
	char longname[400];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	capture_begin();
	ck_assert_int_ne(config_apply("HAKMEM_LEARN_TRACE", longname), 0);
	const char *err = capture_end();
	ck_assert_msg(count_lines(err) == 1 && strstr(err, "too long"), "%s", err);
	ck_assert_str_eq(config_learn_trace(), "/work/x.trace");
	ck_assert_int_eq(config_apply("HAKMEM_LEARN_TRACE", ""), 0);
	ck_assert_str_eq(config_learn_trace(), "");
	/* three places: 0.005-0.050 */
	ck_assert_int_eq(config_apply("HAKMEM_WMAX_ADOPT_PCT", "0.005"), 0);
	ck_assert_int_eq(hak_cfg.wmax_adopt_pct, 5);
	hak_cfg.wmax_candidates_mid = CONFIG_LIST2(140, 160);
	hak_cfg.wmax_adopt_pct = 10;
	hak_cfg.learn_trace = 0;
}
END_TEST

START_TEST(test_on_error)
{
	reset_defaults();
	static const struct {
		const char *text;
		long value;
	} good[] = { { "abort", ON_ERROR_ABORT }, { "warn", ON_ERROR_WARN },
		     { " IGNORE ", ON_ERROR_IGNORE }, { "Warn", ON_ERROR_WARN } };
	for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		capture_begin();
		int r = config_apply("HAKMEM_ON_ERROR", good[i].text);
		const char *err = capture_end();
		ck_assert_msg(r == 0, "HAKMEM_ON_ERROR=%s rejected", good[i].text);
		ck_assert_str_eq(err, "");
		ck_assert_int_eq(hak_cfg.on_error, good[i].value);
	}
	static const char *const bad[] = { "0", "1", "yes", "stop", "", "abort warn" };
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[256];
		snprintf(want, sizeof(want),
			 "hakmem: warning: HAKMEM_ON_ERROR=%s: not abort, warn or ignore; accepted: "
			 "abort, warn, ignore; using default warn\n",
			 bad[i]);
		capture_begin();
		int r = config_apply("HAKMEM_ON_ERROR", bad[i]);
		const char *err = capture_end();
		ck_assert_msg(r != 0, "HAKMEM_ON_ERROR=%s accepted", bad[i]);
		ck_assert_str_eq(err, want);
		ck_assert_int_eq(hak_cfg.on_error, ON_ERROR_WARN);
	}
	struct config_setting cs;
	for (unsigned i = 0; i < config_count(); i++) {
		config_get(i, &cs);
		if (strcmp(cs.name, "HAKMEM_ON_ERROR") == 0)
			break;
	}
	ck_assert_str_eq(cs.name, "HAKMEM_ON_ERROR");
	ck_assert_str_eq(cs.text, "warn");
	ck_assert_int_eq(cs.kind, CONFIG_ONERR);
	hak_cfg.on_error = ON_ERROR_ABORT;
}
END_TEST

START_TEST(test_config_get)
{
	reset_defaults();
	ck_assert_int_eq(config_apply("HAKMEM_SEGMENT_CACHE", "3"), 0);
	bool seen_seg = false, seen_wmax = false;
	for (unsigned i = 0; i < config_count(); i++) {
		struct config_setting cs;
		config_get(i, &cs);
		ck_assert_ptr_nonnull(cs.name);
		ck_assert(strncmp(cs.name, "HAKMEM_", 7) == 0);
		if (strcmp(cs.name, "HAKMEM_SEGMENT_CACHE") == 0) {
			seen_seg = true;
			ck_assert(cs.from_env);
			ck_assert_int_eq(cs.value, 3);
			ck_assert_str_eq(cs.text, "3");
			ck_assert_int_eq(cs.kind, CONFIG_NUM);
		}
		if (strcmp(cs.name, "HAKMEM_WMAX") == 0) {
			seen_wmax = true;
			ck_assert(!cs.from_env);
			ck_assert_int_eq(cs.value, 125);
			ck_assert_int_eq(cs.decimals, 2);
			ck_assert_str_eq(cs.text, "1.25");
		}
		if (strcmp(cs.name, "HAKMEM_WARN") == 0)
			ck_assert_int_eq(cs.kind, CONFIG_BOOL);
	}
	ck_assert(seen_seg && seen_wmax);
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
	tcase_add_test(tc, test_parse_bool);
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
	tcase_add_test(tc, test_apply_words);
	tcase_add_test(tc, test_warn_off);
	tcase_add_test(tc, test_strict);
	tcase_add_test(tc, test_verbose);
	tcase_add_test(tc, test_config_get);
	tcase_add_test(tc, test_on_error);
	tcase_add_test(tc, test_learn_vars);
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
