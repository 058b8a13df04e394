/* config.c - the knobs: the HAKMEM_* table (parse, validate, warn) and the
 * run-time knob table with its epoch.
 *
 * The variables are read once at initialisation straight from environ: no
 * getenv copies, no allocation.  A bad value prints one line naming the
 * variable, the value and what is accepted, and the default stays.
 * Numbers are decimal; a boolean is 1/0, true/false, yes/no or on/off in
 * any case.  Three variables say how the others are read: HAKMEM_WARN=0
 * silences the warnings, HAKMEM_STRICT=1 turns them into errors that end
 * the process once all are printed (jemalloc's abort_conf), and
 * HAKMEM_VERBOSE=1 prints every setting in effect and where it came from
 * (the default or the environment).  config_init applies HAKMEM_STRICT
 * and HAKMEM_WARN first, wherever they stand in the environment.
 *
 * A set-user-ID or set-group-ID program (any process the kernel starts
 * with AT_SECURE: file capabilities and LSM transitions too) ignores
 * every HAKMEM_* variable, as glibc's secure_getenv and its own MALLOC_*
 * tunables do: its environment comes from a less privileged user, who
 * must not tune, stop (HAKMEM_STRICT) or read out (HAKMEM_STATS) it.
 *
 * Every tunable lives in hak_cfg, a table of atomics (internal.h, "the
 * knob and counter seam"): the HAKMEM_* values, the cache cap of each
 * size class and W_MAX of each tier.  Readers load them relaxed (KNOB);
 * a heap copies the per-class caps into its bins and refreshes that copy
 * on its slow path when the epoch has moved (knob_set_* bump it), so a
 * change reaches every running thread within one refill. */
#include "internal.h"

#include <sys/auxv.h>
#include <unistd.h>

extern char **environ;

struct hak_config hak_cfg = {
	.epoch = 1,
	.wmax = { 125, 100, 125, 125 }, /* mid: no borrow unless HAKMEM_WMAX or the learner says */
	.stats = 0,
	.tiny_superslab = 1,
	.tiny_sll_cap = 1024,
	.pool_ring_cap = 32,
	.large_cache_cap = 0,
	.purge_delay_ms = 100,
	.purge_thread = 1,
	.segment_cache = 8,
	.huge_cache = 8,
	.huge_cache_mb = 256,
	.wmax_pct = 125,
	.pool_refill_batch = 2,
	.pool_cap = 4,
	.target_hit_mid = 65,
	.cap_step_mid = 4,
	.cap_min_mid = 8,
	.cap_max_mid = 2048,
	.cap_dwell_sec_mid = 3,
	.learn_window_ms = 1000,
	.learn_min_samples = 256,
	.wmax_candidates_mid = CONFIG_LIST2(140, 160),
	.wmax_canary = 1,
	.wmax_trial_sec = 5,
	.wmax_adopt_pct = 10,
};

/* HAKMEM_LEARN_TRACE: the file name, copied at initialisation (the
 * environment may change later); empty: no trace. */
static char config_trace_path[256];

const char *config_learn_trace(void)
{
	return config_trace_path;
}

/* How config_init reports (HAKMEM_VERBOSE, HAKMEM_STRICT, HAKMEM_WARN). */
_Atomic long config_verbose = 0, config_strict = 0, config_warn = 1;

struct cfg_desc {
	const char *name;
	_Atomic long *dst;
	long min, max;
	int decimals; /* 0: integer; 2: decimal with up to two places */
	_Atomic long *set; /* if not NULL: set to 1 when the variable is applied */
};

static const struct cfg_desc cfg_table[] = {
	{ "HAKMEM_STATS", &hak_cfg.stats, 0, 1, 0, NULL },
	/* Kept for the original hakmem's users: the SuperSlab is the tiny
	 * tier's only back end, so 1 is the one accepted value. */
	{ "HAKMEM_TINY_USE_SUPERSLAB", &hak_cfg.tiny_superslab, 1, 1, 0, NULL },
	{ "HAKMEM_TINY_SLL_CAP", &hak_cfg.tiny_sll_cap, 0, 65535, 0, &hak_cfg.tiny_sll_cap_set },
	{ "HAKMEM_POOL_RING_CAP", &hak_cfg.pool_ring_cap, 0, 4096, 0, &hak_cfg.pool_ring_cap_set },
	{ "HAKMEM_POOL_REFILL_BATCH", &hak_cfg.pool_refill_batch, 1, 4, 0, NULL },
	{ "HAKMEM_POOL_CAP", &hak_cfg.pool_cap, 1, 1024, 0, NULL },
	{ "HAKMEM_LARGE_CACHE_CAP", &hak_cfg.large_cache_cap, 0, 256, 0, NULL },
	{ "HAKMEM_PURGE_DELAY_MS", &hak_cfg.purge_delay_ms, 0, 3600000, 0, NULL },
	{ "HAKMEM_PURGE_THREAD", &hak_cfg.purge_thread, 0, 1, 0, NULL },
	{ "HAKMEM_SEGMENT_CACHE", &hak_cfg.segment_cache, 0, 1024, 0, NULL },
	{ "HAKMEM_HUGE_CACHE", &hak_cfg.huge_cache, 0, 64, 0, NULL },
	{ "HAKMEM_HUGE_CACHE_MB", &hak_cfg.huge_cache_mb, 0, 1048576, 0, NULL },
	{ "HAKMEM_WMAX", &hak_cfg.wmax_pct, 100, 400, 2, NULL },
	/* the secure build (libhakmem-secure) only; accepted and unused in
	 * the default one */
	{ "HAKMEM_SECURE_FILL", &hak_cfg.secure_fill, 0, 1, 0, NULL },
	{ "HAKMEM_VERBOSE", &config_verbose, 0, 1, 0, NULL },
	{ "HAKMEM_STRICT", &config_strict, 0, 1, 0, NULL },
	{ "HAKMEM_WARN", &config_warn, 0, 1, 0, NULL },
	{ "HAKMEM_ON_ERROR", &hak_cfg.on_error, 0, 2, 0, NULL },
	/* the learner (learner.c) */
	{ "HAKMEM_LEARN", &hak_cfg.learn, 0, 1, 0, NULL },
	{ "HAKMEM_TARGET_HIT_MID", &hak_cfg.target_hit_mid, 50, 90, 2, NULL },
	{ "HAKMEM_CAP_STEP_MID", &hak_cfg.cap_step_mid, 1, 16, 0, NULL },
	{ "HAKMEM_CAP_MIN_MID", &hak_cfg.cap_min_mid, 4, 64, 0, NULL },
	{ "HAKMEM_CAP_MAX_MID", &hak_cfg.cap_max_mid, 128, 4096, 0, NULL },
	{ "HAKMEM_CAP_DWELL_SEC_MID", &hak_cfg.cap_dwell_sec_mid, 1, 10, 0, NULL },
	{ "HAKMEM_LEARN_WINDOW_MS", &hak_cfg.learn_window_ms, 500, 5000, 0, NULL },
	{ "HAKMEM_LEARN_MIN_SAMPLES", &hak_cfg.learn_min_samples, 64, 1024, 0, NULL },
	{ "HAKMEM_LEARN_TRACE", &hak_cfg.learn_trace, 0, 1, 0, NULL },
	{ "HAKMEM_WMAX_LEARN", &hak_cfg.wmax_learn, 0, 1, 0, NULL },
	{ "HAKMEM_WMAX_CANDIDATES_MID", &hak_cfg.wmax_candidates_mid, 100, 400, 2, NULL },
	{ "HAKMEM_WMAX_CANARY", &hak_cfg.wmax_canary, 0, 1, 0, NULL },
	{ "HAKMEM_WMAX_TRIAL_SEC", &hak_cfg.wmax_trial_sec, 3, 15, 0, NULL },
	{ "HAKMEM_WMAX_ADOPT_PCT", &hak_cfg.wmax_adopt_pct, 5, 50, 3, NULL },
};
#define CFG_N (sizeof(cfg_table) / sizeof(cfg_table[0]))

/* The variables that are not numbers (CONFIG_NUM): booleans, and
 * HAKMEM_STATS, whose 1 (or true, ..., or text) may also be json (2). */
static const struct {
	_Atomic long *dst;
	int kind;
} cfg_kinds[] = {
	{ &hak_cfg.stats, CONFIG_STATS },
	{ &hak_cfg.tiny_superslab, CONFIG_BOOL },
	{ &hak_cfg.secure_fill, CONFIG_BOOL },
	{ &hak_cfg.purge_thread, CONFIG_BOOL },
	{ &config_verbose, CONFIG_BOOL },
	{ &config_strict, CONFIG_BOOL },
	{ &config_warn, CONFIG_BOOL },
	{ &hak_cfg.on_error, CONFIG_ONERR },
	{ &hak_cfg.learn, CONFIG_BOOL },
	{ &hak_cfg.wmax_learn, CONFIG_BOOL },
	{ &hak_cfg.wmax_canary, CONFIG_BOOL },
	{ &hak_cfg.learn_trace, CONFIG_TEXT },
	{ &hak_cfg.wmax_candidates_mid, CONFIG_LIST },
};

static int cfg_kind(const struct cfg_desc *d)
{
	for (unsigned i = 0; i < sizeof(cfg_kinds) / sizeof(cfg_kinds[0]); i++)
		if (cfg_kinds[i].dst == d->dst)
			return cfg_kinds[i].kind;
	return CONFIG_NUM;
}

static size_t config_value_text(const struct cfg_desc *d, long v, char *buf);
static void config_accepted_text(const struct cfg_desc *d, char *buf);

/* Where each variable's value came from: 1 once the environment (or a
 * test, through config_apply) gave an accepted value. */
static _Atomic unsigned char cfg_from_env[CFG_N];
/* Bad values and unknown names config_apply has reported (config_init
 * exits under HAKMEM_STRICT=1 when its own scan added to them). */
static _Atomic unsigned cfg_errors;

/* Decimal digits with an optional fraction of up to 'decimals' places;
 * the result is scaled by 10^decimals.  Surrounding blanks are allowed. */
int config_parse(const char *s, int decimals, long *out)
{
	long v = 0;
	int digits = 0, frac = -1;
	while (*s == ' ' || *s == '\t')
		s++;
	for (; *s; s++) {
		if (*s >= '0' && *s <= '9') {
			if (frac >= 0 && ++frac > decimals)
				return -1;
			if (v > 100000000000L)
				return -1; /* far out of every range */
			v = v * 10 + (*s - '0');
			digits++;
		} else if (*s == '.' && frac < 0 && decimals > 0) {
			frac = 0;
		} else {
			break;
		}
	}
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s != '\0' || digits == 0)
		return -1;
	for (int i = frac < 0 ? 0 : frac; i < decimals; i++)
		v *= 10;
	*out = v;
	return 0;
}

/* A word of a boolean (or of HAKMEM_STATS), any case, blanks around it:
 * 0 on success, with its value in *out. */
static const struct {
	const char *word;
	long value;
	int kinds; /* where it is accepted: 1 << CONFIG_BOOL, 1 << CONFIG_STATS */
} cfg_words[] = {
#define W_ANY ((1 << CONFIG_BOOL) | (1 << CONFIG_STATS))
#define W_STATS (1 << CONFIG_STATS)
	{ "true", 1, W_ANY }, { "false", 0, W_ANY },	{ "yes", 1, W_ANY },
	{ "no", 0, W_ANY },   { "on", 1, W_ANY },	{ "off", 0, W_ANY },
	{ "text", 1, W_STATS }, { "json", 2, W_STATS },
	{ "abort", ON_ERROR_ABORT, 1 << CONFIG_ONERR },
	{ "warn", ON_ERROR_WARN, 1 << CONFIG_ONERR },
	{ "ignore", ON_ERROR_IGNORE, 1 << CONFIG_ONERR },
#undef W_ANY
#undef W_STATS
};

static int config_parse_word(const char *s, int kind, long *out)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = 0;
	while (s[n] && s[n] != ' ' && s[n] != '\t')
		n++;
	for (const char *q = s + n; *q; q++)
		if (*q != ' ' && *q != '\t')
			return -1;
	for (unsigned i = 0; i < sizeof(cfg_words) / sizeof(cfg_words[0]); i++) {
		const char *w = cfg_words[i].word;
		if (!(cfg_words[i].kinds & (1 << kind)) || strlen(w) != n)
			continue;
		size_t k = 0;
		while (k < n && (s[k] | 0x20) == w[k])
			k++;
		if (k == n) {
			*out = cfg_words[i].value;
			return 0;
		}
	}
	return -1;
}

int config_parse_bool(const char *s, long *out)
{
	long v;
	if (config_parse(s, 0, &v) == 0) {
		if (v > 1)
			return 1; /* a number, but not 0 or 1 */
		*out = v;
		return 0;
	}
	return config_parse_word(s, CONFIG_BOOL, out) == 0 ? 0 : -1;
}

/* Append a scaled value as text. */
static size_t fmt_scaled(char *buf, long v, int decimals)
{
	long scale = 1;
	for (int i = 0; i < decimals; i++)
		scale *= 10;
	size_t n = fmt_u64(buf, (uint64_t)(v / scale));
	if (decimals) {
		long f = v % scale;
		buf[n++] = '.';
		for (long d = scale / 10; d >= 1; d /= 10)
			buf[n++] = (char)('0' + (f / d) % 10);
	}
	buf[n] = '\0';
	return n;
}

/* A list of up to CONFIG_LIST_MAX decimals (two places), comma
 * separated: "1.4,1.6".  Packed as 9 bits per value, the first lowest;
 * 0 ends the list.  0 on success. */
static int config_parse_list(const char *s, long min, long max, long *out, int *out_of_range)
{
	long packed = 0;
	unsigned n = 0;
	*out_of_range = 0;
	for (;;) {
		char item[32];
		size_t k = 0;
		while (*s && *s != ',' && k < sizeof(item) - 1)
			item[k++] = *s++;
		item[k] = '\0';
		if (*s && *s != ',')
			return -1; /* too long */
		long v;
		if (n >= CONFIG_LIST_MAX || config_parse(item, 2, &v) != 0)
			return -1;
		if (v < min || v > max)
			*out_of_range = 1;
		packed |= (v & 511) << (9 * n++);
		if (*s == '\0')
			break;
		s++; /* the comma */
	}
	if (*out_of_range)
		return -1;
	*out = packed;
	return 0;
}

long config_list_item(long packed, unsigned i)
{
	return i < CONFIG_LIST_MAX ? (packed >> (9 * i)) & 511 : 0;
}

static void warn3(const char *a, const char *b, const char *c)
{
	char line[512];
	size_t n = 0;
	const char *parts[] = { atomic_load_explicit(&config_strict, memory_order_relaxed)
					? "hakmem: error: "
					: "hakmem: warning: ",
				a, b, c, "\n" };
	if (!atomic_load_explicit(&config_strict, memory_order_relaxed) &&
	    !atomic_load_explicit(&config_warn, memory_order_relaxed))
		return;
	for (unsigned i = 0; i < 5; i++)
		for (const char *q = parts[i]; *q && n < sizeof(line) - 2; q++)
			line[n++] = *q;
	if (line[n - 1] != '\n')
		line[n++] = '\n';
	line[n] = '\0';
	hak_write_err(line);
}

int config_apply(const char *name, const char *value)
{
	for (unsigned i = 0; i < CFG_N; i++) {
		const struct cfg_desc *d = &cfg_table[i];
		if (strcmp(d->name, name) != 0)
			continue;
		long v;
		int bad, kind = cfg_kind(d);
		const char *why = "not a number";
		if (kind == CONFIG_NUM) {
			bad = config_parse(value, d->decimals, &v);
		} else if (kind == CONFIG_TEXT) {
			/* a file name: any text that fits, or empty for none */
			size_t len = strlen(value);
			bad = len >= sizeof(config_trace_path) ? 1 : 0;
			why = "too long";
			if (!bad) {
				memcpy(config_trace_path, value, len + 1);
				v = len != 0;
			}
		} else if (kind == CONFIG_LIST) {
			int oor;
			bad = config_parse_list(value, d->min, d->max, &v, &oor);
			why = oor ? "out of range" : "not a list of numbers";
		} else if (kind == CONFIG_ONERR) {
			bad = config_parse_word(value, CONFIG_ONERR, &v);
			why = "not abort, warn or ignore";
		} else {
			/* 0 or 1, or a word; a number above 1 is out of range */
			bad = config_parse_bool(value, &v);
			if (bad < 0 && kind == CONFIG_STATS)
				bad = config_parse_word(value, CONFIG_STATS, &v);
			if (bad > 0)
				why = "out of range";
			else if (bad < 0)
				why = kind == CONFIG_STATS ? "not a boolean, text or json"
							   : "not a boolean";
		}
		if (!bad && kind != CONFIG_LIST && (v < d->min || v > d->max) &&
		    !(kind == CONFIG_STATS && v == 2)) {
			bad = 1;
			why = "out of range";
		}
		if (!bad) {
			atomic_store_explicit(d->dst, v, memory_order_relaxed);
			atomic_store_explicit(&cfg_from_env[i], 1, memory_order_relaxed);
			if (d->set)
				atomic_store_explicit(d->set, 1, memory_order_relaxed);
			/* a per-tier W_MAX follows the variable (knob_set_wmax) */
			if (d->dst == &hak_cfg.wmax_pct)
				for (int t = 0; t < TIER_NWMAX; t++)
					knob_set_wmax(t, (uint32_t)v);
			return 0;
		}
		/* the value as given, on one line and not too long */
		char shown[72];
		size_t sl = 0;
		for (const char *q = value; *q && sl < sizeof(shown) - 4; q++)
			shown[sl++] = (*q >= 0x20 && *q < 0x7f) ? *q : '?';
		if (value[sl] != '\0' && sl == sizeof(shown) - 4) {
			memcpy(shown + sl, "...", 3);
			sl += 3;
		}
		shown[sl] = '\0';
		char msg[256], accepted[96], def[32];
		config_accepted_text(d, accepted);
		config_value_text(d, atomic_load_explicit(d->dst, memory_order_relaxed), def);
		bool strict = atomic_load_explicit(&config_strict, memory_order_relaxed);
		size_t n = 0;
		const char *parts[] = { "=", shown, ": ", why, "; accepted: ", accepted,
					strict ? "" : "; using default ", strict ? "" : def };
		for (unsigned k = 0; k < sizeof(parts) / sizeof(parts[0]); k++)
			for (const char *q = parts[k]; *q && n < sizeof(msg) - 1; q++)
				msg[n++] = *q;
		msg[n] = '\0';
		atomic_fetch_add_explicit(&cfg_errors, 1, memory_order_relaxed);
		warn3(d->name, msg, "");
		return -1;
	}
	atomic_fetch_add_explicit(&cfg_errors, 1, memory_order_relaxed);
	warn3("unknown variable ", name,
	      atomic_load_explicit(&config_strict, memory_order_relaxed) ? "" : " ignored");
	return -1;
}

/* Pass 0 applies HAKMEM_STRICT and HAKMEM_WARN, pass 1 the others. */
static void config_scan(int pass)
{
	for (char **e = environ; *e; e++) {
		const char *kv = *e;
		if (strncmp(kv, "HAKMEM_", 7) != 0)
			continue;
		const char *eq = strchr(kv, '=');
		if (eq == NULL)
			continue;
		char name[64];
		size_t len = (size_t)(eq - kv);
		if (len >= sizeof(name))
			len = sizeof(name) - 1;
		memcpy(name, kv, len);
		name[len] = '\0';
		for (size_t i = 0; i < len; i++)
			if (name[i] < 0x20 || name[i] >= 0x7f)
				name[i] = '?';
		bool first = strcmp(name, "HAKMEM_STRICT") == 0 || strcmp(name, "HAKMEM_WARN") == 0;
		if (first == (pass == 0))
			config_apply(name, eq + 1);
	}
}

/* True when the environment is not to be trusted.  getauxval reads the
 * auxiliary vector that the dynamic loader (or, in a static program,
 * __libc_start_main, first thing) has recorded before any allocation can
 * happen, and it neither allocates nor depends on the rest of the C
 * library being up; secure_getenv's __libc_enable_secure is set from the
 * same AT_SECURE.  Real and effective IDs that differ count as well, for
 * a kernel or C library without the entry. */
static bool config_secure(void)
{
	if (getauxval(AT_SECURE) != 0)
		return true;
	return getuid() != geteuid() || getgid() != getegid();
}

void config_init(void)
{
	if (environ == NULL || config_secure())
		return; /* the defaults, in silence */
	unsigned errors = atomic_load_explicit(&cfg_errors, memory_order_relaxed);
	config_scan(0);
	config_scan(1);
	if (atomic_load_explicit(&config_strict, memory_order_relaxed) &&
	    atomic_load_explicit(&cfg_errors, memory_order_relaxed) != errors) {
		hak_write_err("hakmem: error: bad HAKMEM_* settings and HAKMEM_STRICT=1: exiting\n");
		_exit(1);
	}
	if (atomic_load_explicit(&config_verbose, memory_order_relaxed))
		config_print_settings();
}

/* ---- the settings in effect (HAKMEM_VERBOSE, the statistics) ---- */

unsigned config_count(void)
{
	return CFG_N;
}

void config_get(unsigned i, struct config_setting *out)
{
	const struct cfg_desc *d = &cfg_table[i < CFG_N ? i : 0];
	out->name = d->name;
	out->value = atomic_load_explicit(d->dst, memory_order_relaxed);
	out->decimals = d->decimals;
	out->kind = cfg_kind(d);
	out->from_env = atomic_load_explicit(&cfg_from_env[i < CFG_N ? i : 0], memory_order_relaxed);
	config_value_text(d, out->value, out->text);
}

/* The value as the environment would give it: "1024", "1.25", "0", "1",
 * "json".  buf holds at least 32 bytes. */
static size_t config_value_text(const struct cfg_desc *d, long v, char *buf)
{
	int kind = cfg_kind(d);
	if (kind == CONFIG_STATS && v == 2) {
		memcpy(buf, "json", 5);
		return 4;
	}
	if (kind == CONFIG_TEXT) {
		size_t n = strlen(config_trace_path);
		if (n > 31)
			n = 31; /* shown cut short */
		memcpy(buf, config_trace_path, n);
		buf[n] = '\0';
		return n;
	}
	if (kind == CONFIG_LIST) {
		size_t n = 0;
		for (unsigned i = 0; i < CONFIG_LIST_MAX && config_list_item(v, i); i++) {
			if (i)
				buf[n++] = ',';
			n += fmt_scaled(buf + n, config_list_item(v, i), 2);
		}
		buf[n] = '\0';
		return n;
	}
	if (kind == CONFIG_ONERR) {
		const char *w = v == ON_ERROR_IGNORE ? "ignore" : v == ON_ERROR_WARN ? "warn" : "abort";
		size_t n = strlen(w);
		memcpy(buf, w, n + 1);
		return n;
	}
	return fmt_scaled(buf, v, kind == CONFIG_NUM ? d->decimals : 0);
}

/* What a variable accepts, for its warning: "0-64", "1.00-4.00",
 * "0-1, false/true, no/yes, off/on", "1, true, yes, on", ... */
static void config_accepted_text(const struct cfg_desc *d, char *buf)
{
	char lo[32], hi[32];
	size_t n = 0;
	int kind = cfg_kind(d);
	fmt_scaled(lo, d->min, kind == CONFIG_NUM ? d->decimals : 0);
	fmt_scaled(hi, d->max, kind == CONFIG_NUM ? d->decimals : 0);
	const char *parts[] = { lo, "-", hi, "", "" };
	if (kind == CONFIG_TEXT || kind == CONFIG_LIST)
		; /* below */
	else if (kind != CONFIG_NUM && d->min == d->max)
		parts[1] = parts[2] = "", parts[3] = d->max ? ", true, yes, on" : ", false, no, off";
	else if (kind != CONFIG_NUM)
		parts[3] = ", false/true, no/yes, off/on";
	if (kind == CONFIG_STATS)
		parts[4] = ", text, json";
	if (kind == CONFIG_ONERR)
		parts[0] = "abort, warn, ignore", parts[1] = parts[2] = parts[3] = "";
	if (kind == CONFIG_TEXT)
		parts[0] = "a file name of up to 255 bytes", parts[1] = parts[2] = parts[3] = "";
	if (kind == CONFIG_LIST) {
		fmt_scaled(lo, d->min, 2);
		fmt_scaled(hi, d->max, 2);
		parts[3] = ", up to 4, comma separated";
	}
	for (unsigned k = 0; k < 5; k++)
		for (const char *q = parts[k]; *q && n < 95; q++)
			buf[n++] = *q;
	buf[n] = '\0';
}

/* HAKMEM_VERBOSE=1: one line per variable, on standard error. */
void config_print_settings(void)
{
	char line[160], num[24];
	fmt_u64(num, (uint64_t)getpid());
	const char *head[] = { "hakmem: version ", hak_version(), ", pid ", num,
			       ": the settings in effect\n" };
	size_t n = 0;
	for (unsigned k = 0; k < 5; k++)
		for (const char *q = head[k]; *q && n < sizeof(line) - 1; q++)
			line[n++] = *q;
	line[n] = '\0';
	hak_write_err(line);
	for (unsigned i = 0; i < CFG_N; i++) {
		struct config_setting cs;
		config_get(i, &cs);
		const char *parts[] = { "hakmem:   ", cs.name, "=", cs.text,
					cs.from_env ? " (environment)\n" : " (default)\n" };
		n = 0;
		for (unsigned k = 0; k < 5; k++)
			for (const char *q = parts[k]; *q && n < sizeof(line) - 1; q++)
				line[n++] = *q;
		line[n] = '\0';
		hak_write_err(line);
	}
}

/* ---- the run-time knobs ---- */

/* The release pairs with the acquire of a heap that sees the new epoch:
 * it then reads the new values. */
static void knob_publish(void)
{
	atomic_fetch_add_explicit(&hak_cfg.epoch, 1, memory_order_acq_rel);
}

void knob_set_cap(unsigned c, uint32_t cap)
{
	hak_assert(c < HAK_NBINS);
	if (cap > HAK_BIN_CAP_MAX)
		cap = HAK_BIN_CAP_MAX;
	atomic_store_explicit(&hak_cfg.cap[c], cap, memory_order_relaxed);
	knob_publish();
}

void knob_set_wmax(int tier, uint32_t pct)
{
	hak_assert(tier >= 0 && tier < TIER_NWMAX);
	atomic_store_explicit(&hak_cfg.wmax[tier], pct, memory_order_relaxed);
	knob_publish();
}

void knob_set_wmax_canary(uint64_t mask, uint32_t pct)
{
	atomic_store_explicit(&hak_cfg.wmax_canary_pct, pct, memory_order_relaxed);
	atomic_store_explicit(&hak_cfg.wmax_canary_mask, mask, memory_order_relaxed);
	knob_publish();
}
