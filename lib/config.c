/* config.c - the knobs: the HAKMEM_* table (parse, validate, warn) and the
 * run-time knob table with its epoch.
 *
 * The variables are read once at initialisation straight from environ: no
 * getenv copies, no allocation.  A bad value prints one line naming the
 * variable, the value and what is accepted, and the default stays.
 *
 * Every tunable lives in hak_cfg, a table of atomics (internal.h, "the
 * knob and counter seam"): the HAKMEM_* values, the cache cap of each
 * size class and W_MAX of each tier.  Readers load them relaxed (KNOB);
 * a heap copies the per-class caps into its bins and refreshes that copy
 * on its slow path when the epoch has moved (knob_set_* bump it), so a
 * change reaches every running thread within one refill. */
#include "internal.h"

#include <unistd.h>

extern char **environ;

struct hak_config hak_cfg = {
	.epoch = 1,
	.wmax = { 125, 125, 125, 125 },
	.stats = 0,
	.tiny_superslab = 1,
	.tiny_sll_cap = 1024,
	.pool_ring_cap = 32,
	.large_cache_cap = 1,
	.purge_delay_ms = 100,
	.segment_cache = 8,
	.huge_cache = 8,
	.wmax_pct = 125,
	.pool_refill_batch = 2,
	.pool_cap = 4,
};

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
	{ "HAKMEM_POOL_RING_CAP", &hak_cfg.pool_ring_cap, 0, 4096, 0, NULL },
	{ "HAKMEM_POOL_REFILL_BATCH", &hak_cfg.pool_refill_batch, 1, 4, 0, NULL },
	{ "HAKMEM_POOL_CAP", &hak_cfg.pool_cap, 1, 1024, 0, NULL },
	{ "HAKMEM_LARGE_CACHE_CAP", &hak_cfg.large_cache_cap, 0, 256, 0, NULL },
	{ "HAKMEM_PURGE_DELAY_MS", &hak_cfg.purge_delay_ms, 0, 3600000, 0, NULL },
	{ "HAKMEM_SEGMENT_CACHE", &hak_cfg.segment_cache, 0, 1024, 0, NULL },
	{ "HAKMEM_HUGE_CACHE", &hak_cfg.huge_cache, 0, 64, 0, NULL },
	{ "HAKMEM_WMAX", &hak_cfg.wmax_pct, 100, 400, 2, NULL },
};
#define CFG_N (sizeof(cfg_table) / sizeof(cfg_table[0]))

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

/* Append a scaled value as text. */
static size_t fmt_scaled(char *buf, long v, int decimals)
{
	size_t n = fmt_u64(buf, (uint64_t)(v / (decimals ? 100 : 1)));
	if (decimals) {
		long f = v % 100;
		buf[n++] = '.';
		buf[n++] = (char)('0' + f / 10);
		buf[n++] = (char)('0' + f % 10);
	}
	buf[n] = '\0';
	return n;
}

static void warn3(const char *a, const char *b, const char *c)
{
	char line[512];
	size_t n = 0;
	const char *parts[] = { "hakmem: warning: ", a, b, c, "\n" };
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
		int bad = config_parse(value, d->decimals, &v);
		const char *why = "not a number";
		if (!bad && (v < d->min || v > d->max)) {
			bad = 1;
			why = "out of range";
		}
		if (!bad) {
			atomic_store_explicit(d->dst, v, memory_order_relaxed);
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
		char msg[256], lo[32], hi[32], def[32];
		fmt_scaled(lo, d->min, d->decimals);
		fmt_scaled(hi, d->max, d->decimals);
		fmt_scaled(def, atomic_load_explicit(d->dst, memory_order_relaxed), d->decimals);
		size_t n = 0;
		const char *parts[] = { "=", shown, ": ", why, "; accepted: ", lo, "-", hi,
					"; using default ", def };
		for (unsigned k = 0; k < sizeof(parts) / sizeof(parts[0]); k++)
			for (const char *q = parts[k]; *q && n < sizeof(msg) - 1; q++)
				msg[n++] = *q;
		msg[n] = '\0';
		warn3(d->name, msg, "");
		return -1;
	}
	warn3("unknown variable ", name, " ignored");
	return -1;
}

void config_init(void)
{
	if (environ == NULL)
		return;
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
		config_apply(name, eq + 1);
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
