/* stats.c - counters and printing.  Printing formats into stack buffers
 * and hands the text to a callback: it never allocates.
 *
 * hak_stats_print_opts takes one snapshot of every counter (struct snap)
 * and writes it either as text for people (units, a sentence that says
 * what each group counts, per-tier and per-class lines, the settings in
 * effect and their source) or as one JSON object (HAK_STATS_JSON) with
 * the same numbers in bytes and counts.  Both are handed over a line at a
 * time, each line ending in a newline.  HAKMEM_STATS=1 (text) or json
 * prints them at exit. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* *st from the summed per-thread counters *c (and the rest of the
 * library's counters); c is filled too. */
static void stats_fill(struct hak_stats *st, struct heap_counters *cp)
{
	uint64_t ctr[HAK_NCOUNTERS], started, exited;
	heap_counters_sum(ctr, &started, &exited);
	memcpy(cp, ctr, sizeof(*cp));
	const struct heap_counters c = *cp;
	memset(st, 0, sizeof(*st));
	st->version = HAKMEM_VERSION;
	st->size = sizeof(*st);
	st->os_mapped = atomic_load_explicit(&os_ctr.mapped, memory_order_relaxed);
	st->os_mapped_peak = atomic_load_explicit(&os_ctr.mapped_peak, memory_order_relaxed);
	st->os_map_calls = atomic_load_explicit(&os_ctr.map_calls, memory_order_relaxed);
	st->os_unmap_calls = atomic_load_explicit(&os_ctr.unmap_calls, memory_order_relaxed);
	st->os_purged = atomic_load_explicit(&os_ctr.purged, memory_order_relaxed);
	segment_counts(&st->segments, &st->segments_peak, &st->segments_cached,
		       &st->segments_abandoned);
	uint64_t refills[TIER_COUNT] = { 0 };
	for (unsigned k = 0; k < HAK_NBINS; k++)
		refills[ace_tier_of_class(k)] += c.cls[k][CC_REFILLS];
	st->tiny_refills = refills[TIER_TINY];
	st->mid_refills = refills[TIER_MID];
	st->large_refills = refills[TIER_LARGE];
	st->slabs_new = c.slabs_new;
	st->slabs_retired = c.slabs_retired;
	st->segments_adopted = c.segments_adopted;
	st->remote_frees = c.remote_frees + heap_orphan_remote_frees();
	huge_counts(&st->huge_allocs, &st->huge_cache_hits, &st->huge_frees);
	st->foreign_frees = heap_foreign_frees();
	st->threads_started = started;
	st->threads_exited = exited;
	st->pool_page_refills = c.pool_page_refills;
	st->pool_pages_taken = c.pool_pages_taken;
	struct pool_counters pc;
	pool_counts(&pc);
	st->pool_shared_pushes = pc.pushes;
	st->pool_shared_pops = pc.pops;
	st->pool_shared_pages = pc.pages;
	st->pool_cas = pc.cas;
	st->pool_cas_retries = pc.cas_retries;
	st->os_unmap_failures = atomic_load_explicit(&os_ctr.unmap_failures, memory_order_relaxed);
	st->os_unmap_pending = atomic_load_explicit(&os_ctr.unmap_pending, memory_order_relaxed);
	st->os_unmap_lost = atomic_load_explicit(&os_ctr.unmap_lost, memory_order_relaxed);
	st->os_remap_failures = atomic_load_explicit(&os_ctr.remap_failures, memory_order_relaxed);
	for (unsigned k = 0; k < HAK_NBINS; k++) {
		st->ace_request_bytes += c.cls[k][CC_REQ_BYTES];
		st->ace_given_bytes += c.cls[k][CC_MISSES] * ace_class_size[k];
		/* a borrow: the request plus what its block holds beyond it */
		st->ace_given_bytes += c.cls[k][CC_BORROW_WASTE];
	}
	{
		struct learner_report lr;
		learner_report(&lr);
		st->learner_changes = lr.changes + lr.adopted;
	}
}

HAKMEM_EXPORT int hak_stats_get(struct hak_stats *st)
{
	if (st == NULL) {
		errno = EINVAL;
		return -1;
	}
	hak_init();
	struct heap_counters c;
	stats_fill(st, &c);
	return 0;
}

/* ---- printing ---- */

struct pbuf {
	char buf[512];
	size_t len;
	hak_print_fn out;
	void *arg;
};

static void pb_flush(struct pbuf *b)
{
	if (b->len == 0)
		return;
	b->buf[b->len] = '\0';
	if (b->out)
		b->out(b->arg, b->buf);
	else
		hak_write_fd(2, b->buf, b->len);
	b->len = 0;
}

/* Append s; a full line (or a full buffer) is handed over. */
static void pb_str(struct pbuf *b, const char *s)
{
	for (; *s; s++) {
		if (b->len + 1 >= sizeof(b->buf))
			pb_flush(b);
		b->buf[b->len++] = *s;
		if (*s == '\n')
			pb_flush(b);
	}
}

static void pb_u64(struct pbuf *b, uint64_t v)
{
	char num[24];
	fmt_u64(num, v);
	pb_str(b, num);
}

/* s padded with blanks to width w, on the left (right-aligned) or right. */
static void pb_pad(struct pbuf *b, const char *s, size_t w, bool right)
{
	size_t n = strlen(s);
	if (!right)
		pb_str(b, s);
	for (; n < w; n++)
		pb_str(b, " ");
	if (right)
		pb_str(b, s);
}

static void pb_num(struct pbuf *b, uint64_t v, size_t w)
{
	char num[24];
	fmt_u64(num, v);
	pb_pad(b, num, w, true);
}

/* num / den with 'places' decimals, rounded, into text; "-" when den is 0. */
static void fmt_ratio(char *text, uint64_t num, uint64_t den, int places)
{
	if (den == 0) {
		text[0] = '-';
		text[1] = '\0';
		return;
	}
	uint64_t scale = places == 2 ? 100 : places == 1 ? 10 : 1;
	uint64_t v = num / den * scale + (num % den * scale + den / 2) / den;
	size_t k = fmt_u64(text, v / scale);
	if (places) {
		text[k++] = '.';
		if (places == 2)
			text[k++] = (char)('0' + v % 100 / 10);
		text[k++] = (char)('0' + v % 10);
	}
	text[k] = '\0';
}

/* One snapshot of everything printed, so that both forms agree. */
struct snap {
	struct hak_stats st;
	struct heap_counters c;
	struct tier_sum {
		uint64_t refills, blocks, overflows, misses, req_bytes, class_bytes;
	} tier[TIER_COUNT];
	uint64_t in_use, cached, in_segments, other;
	unsigned huge_cached, huge_cap;
	uint64_t segment_cache_cap;
};

static void snap_take(struct snap *s)
{
	hak_init();
	memset(s, 0, sizeof(*s));
	stats_fill(&s->st, &s->c);
	for (unsigned k = 0; k < HAK_NBINS; k++) {
		struct tier_sum *t = &s->tier[ace_tier_of_class(k)];
		t->refills += s->c.cls[k][CC_REFILLS];
		t->blocks += s->c.cls[k][CC_BLOCKS];
		t->overflows += s->c.cls[k][CC_OVERFLOWS];
		t->misses += s->c.cls[k][CC_MISSES];
		t->req_bytes += s->c.cls[k][CC_REQ_BYTES];
		t->class_bytes += s->c.cls[k][CC_MISSES] * ace_class_size[k];
	}
	s->cached = s->st.segments_cached * HAK_SEG_SIZE;
	s->in_use = s->st.os_mapped > s->cached ? s->st.os_mapped - s->cached : 0;
	s->in_segments = s->st.segments * HAK_SEG_SIZE;
	s->other = s->in_use > s->in_segments ? s->in_use - s->in_segments : 0;
	s->huge_cached = huge_cache_state(&s->huge_cap);
	s->segment_cache_cap = (uint64_t)KNOB(segment_cache);
}

/* Round-up of the sampled misses: bytes given beyond those asked for, as
 * a percentage of those asked for, one decimal; "-" without a sample. */
static void fmt_roundup(char *text, uint64_t req, uint64_t given)
{
	if (req == 0 || given < req) {
		text[0] = '-';
		text[1] = '\0';
		return;
	}
	fmt_ratio(text, (given - req) * 100, req, 1);
	strcat(text, "%");
}

static const char *const tier_names[TIER_COUNT] = { "tiny", "mid", "large" };

/* The text lists this many size classes, the busiest; JSON all used. */
#define STATS_TEXT_CLASSES 10

static bool class_used(const uint64_t *cc)
{
	return cc[CC_REFILLS] || cc[CC_BLOCKS] || cc[CC_OVERFLOWS] || cc[CC_MISSES];
}

/* The counters of struct hak_stats, by their names there (JSON). */
#define F(x) { #x, offsetof(struct hak_stats, x) }
static const struct {
	const char *name;
	size_t off;
} stats_fields[] = {
	F(os_mapped),	      F(os_mapped_peak),   F(os_map_calls),	  F(os_unmap_calls),
	F(os_purged),	      F(segments),	   F(segments_peak),	  F(segments_cached),
	F(segments_abandoned), F(segments_adopted), F(tiny_refills),	  F(mid_refills),
	F(large_refills),     F(slabs_new),	   F(slabs_retired),	  F(remote_frees),
	F(huge_allocs),	      F(huge_cache_hits),  F(huge_frees),	  F(foreign_frees),
	F(threads_started),   F(threads_exited),   F(pool_page_refills),  F(pool_pages_taken),
	F(pool_shared_pushes), F(pool_shared_pops), F(pool_shared_pages), F(pool_cas),
	F(pool_cas_retries),   F(os_unmap_failures), F(os_unmap_pending),  F(os_unmap_lost),
	F(os_remap_failures),
	F(ace_request_bytes), F(ace_given_bytes), F(learner_changes),
};
#undef F

static uint64_t stats_field(const struct hak_stats *st, unsigned i)
{
	uint64_t v;
	memcpy(&v, (const char *)st + stats_fields[i].off, sizeof(v));
	return v;
}

/* ---- text ---- */

/* "  name       value  note\n": the name in 19 columns, the value
 * right-aligned in 10. */
static void text_line(struct pbuf *b, const char *name, const char *value, const char *note)
{
	pb_str(b, "  ");
	pb_pad(b, name, 18, false);
	pb_pad(b, value, 10, true);
	if (note && *note) {
		pb_str(b, "  ");
		pb_str(b, note);
	}
	pb_str(b, "\n");
}

/* A note made of parts (NULL-terminated), in a stack buffer. */
static const char *note_of(char *buf, size_t len, const char *const *parts)
{
	size_t n = 0;
	for (; *parts; parts++)
		for (const char *q = *parts; *q && n < len - 1; q++)
			buf[n++] = *q;
	buf[n] = '\0';
	return buf;
}

static void print_text(struct pbuf *b, const struct snap *s)
{
	const struct hak_stats *st = &s->st;
	char v[32], a[32], c[32], d[32], note[160];

	pb_str(b, "hakmem statistics (version ");
	pb_str(b, hak_version());
	pb_str(b, ", pid ");
	pb_u64(b, (uint64_t)getpid());
	pb_str(b, ")\n");

	pb_str(b, "\nMemory: what hakmem has mapped from the kernel, now.\n");
	fmt_bytes(v, st->os_mapped);
	fmt_bytes(a, st->os_mapped_peak);
	fmt_u64(c, st->os_map_calls);
	fmt_u64(d, st->os_unmap_calls);
	text_line(b, "mapped", v,
		  note_of(note, sizeof(note),
			  (const char *const[]){ "peak ", a, "; ", c, " mmap and ", d, " munmap calls",
						 NULL }));
	fmt_bytes(v, s->in_use);
	text_line(b, "in use", v, "mapped less cached: blocks, free room in slabs");
	fmt_bytes(v, s->cached);
	fmt_u64(a, st->segments_cached);
	fmt_u64(c, s->segment_cache_cap);
	text_line(b, "cached", v,
		  note_of(note, sizeof(note),
			  (const char *const[]){ a, " empty 2 MiB segments kept (at most ", c, ")",
						 NULL }));
	fmt_bytes(v, s->in_segments);
	fmt_u64(a, st->segments);
	fmt_u64(c, st->segments_peak);
	text_line(b, "in segments", v,
		  note_of(note, sizeof(note),
			  (const char *const[]){ a, " segments of tiny, mid, large blocks; peak ", c,
						 NULL }));
	fmt_bytes(v, s->other);
	text_line(b, "huge and tables", v, "huge blocks, cached huge mappings, thread heaps");
	fmt_bytes(v, st->os_purged);
	text_line(b, "purged", v, "given back (madvise) since the start, in total");
	fmt_bytes(v, st->os_unmap_pending + st->os_unmap_lost);
	fmt_u64(a, st->os_unmap_failures);
	fmt_u64(c, st->os_remap_failures);
	fmt_bytes(d, st->os_unmap_lost);
	text_line(b, "unmap refused", v,
		  note_of(note, sizeof(note),
			  (const char *const[]){ a, " munmap, ", c, " mremap refused; ", d,
						 " for good", NULL }));

	pb_str(b, "\nTiers: a thread's cache of a size class is refilled when empty; a\n"
		  "miss found no room in the thread's slabs and took memory from elsewhere;\n"
		  "an overflow is a free that found the cache full; round-up: bytes given\n"
		  "beyond those asked for, sampled on misses.\n");
	pb_str(b, "  tier          refills      blocks   overflows      misses  round-up\n");
	for (int t = 0; t < TIER_COUNT; t++) {
		const struct tier_sum *ts = &s->tier[t];
		pb_str(b, "  ");
		pb_pad(b, tier_names[t], 8, false);
		pb_num(b, ts->refills, 12);
		pb_num(b, ts->blocks, 12);
		pb_num(b, ts->overflows, 12);
		pb_num(b, ts->misses, 12);
		fmt_roundup(v, ts->req_bytes, ts->class_bytes);
		pb_pad(b, v, 10, true);
		pb_str(b, "\n");
	}
	fmt_u64(v, st->huge_allocs >= st->huge_frees ? st->huge_allocs - st->huge_frees : 0);
	fmt_u64(a, st->huge_allocs);
	fmt_u64(c, st->huge_cache_hits);
	fmt_u64(d, st->huge_frees);
	pb_str(b, "  huge: ");
	pb_str(b, v);
	pb_str(b, " blocks in use (");
	pb_str(b, a);
	pb_str(b, " handed out, ");
	pb_str(b, c);
	pb_str(b, " of them from the cache, ");
	pb_str(b, d);
	pb_str(b, " freed);\n        ");
	pb_u64(b, s->huge_cached);
	pb_str(b, " freed mappings cached (at most ");
	pb_u64(b, s->huge_cap);
	pb_str(b, " a cache now)\n");

	/* the busiest classes, most refills first (ties: the smaller class) */
	pb_str(b, "\nSize classes, busiest first (cap: the most blocks a thread's cache keeps):\n");
	pb_str(b, "  class      size  tier     cap    refills     blocks  overflows     misses\n");
	bool shown[HAK_NBINS] = { false };
	unsigned nused = 0, nshown = 0;
	for (unsigned k = 0; k < HAK_NBINS; k++)
		nused += class_used(s->c.cls[k]);
	while (nshown < STATS_TEXT_CLASSES && nshown < nused) {
		unsigned best = HAK_NBINS;
		for (unsigned k = 0; k < HAK_NBINS; k++)
			if (!shown[k] && class_used(s->c.cls[k]) &&
			    (best == HAK_NBINS || s->c.cls[k][CC_REFILLS] > s->c.cls[best][CC_REFILLS]))
				best = k;
		shown[best] = true;
		nshown++;
		const uint64_t *cc = s->c.cls[best];
		pb_num(b, best, 7);
		fmt_bytes(v, ace_class_size[best]);
		pb_pad(b, v, 10, true);
		pb_str(b, "  ");
		pb_pad(b, tier_names[ace_tier_of_class(best)], 5, false);
		pb_num(b, knob_cap(best), 7);
		pb_num(b, cc[CC_REFILLS], 11);
		pb_num(b, cc[CC_BLOCKS], 11);
		pb_num(b, cc[CC_OVERFLOWS], 11);
		pb_num(b, cc[CC_MISSES], 11);
		pb_str(b, "\n");
	}
	if (nused > nshown) {
		pb_str(b, "  and ");
		pb_u64(b, nused - nshown);
		pb_str(b, " more used (the JSON form lists every class)\n");
	}

	pb_str(b, "\nMid pages: 128 KiB pages of the mid tier, which move between threads\n"
		  "on shared lock-free stacks.\n");
	fmt_ratio(v, st->pool_pages_taken, st->pool_page_refills, 2);
	fmt_u64(a, st->pool_pages_taken);
	fmt_u64(c, st->pool_page_refills);
	text_line(b, "pages per refill", v,
		  note_of(note, sizeof(note),
			  (const char *const[]){ a, " pages taken by ", c, " refills", NULL }));
	fmt_u64(v, st->pool_shared_pages);
	fmt_u64(a, st->pool_shared_pushes);
	fmt_u64(c, st->pool_shared_pops);
	text_line(b, "on shared stacks", v,
		  note_of(note, sizeof(note),
			  (const char *const[]){ "pages now; ", a, " pushed, ", c, " taken", NULL }));
	fmt_ratio(v, st->pool_cas_retries * 100, st->pool_cas, 2);
	if (st->pool_cas)
		strcat(v, "%");
	fmt_u64(a, st->pool_cas_retries);
	fmt_u64(c, st->pool_cas);
	text_line(b, "CAS retried", v,
		  note_of(note, sizeof(note),
			  (const char *const[]){ a, " of ", c, " compare-and-swaps on the stacks",
						 NULL }));

	pb_str(b, "\nThreads: their heaps, and blocks that cross from one to another.\n");
	fmt_u64(v, st->threads_started);
	fmt_u64(a, st->threads_exited);
	text_line(b, "heaps", v,
		  note_of(note, sizeof(note),
			  (const char *const[]){ "thread heaps made; ", a, " flushed at thread exit",
						 NULL }));
	fmt_u64(v, st->remote_frees);
	text_line(b, "remote frees", v, "blocks freed by a thread other than their owner");
	fmt_u64(v, st->segments_abandoned);
	fmt_u64(a, st->segments_adopted);
	text_line(b, "segments left", v,
		  note_of(note, sizeof(note),
			  (const char *const[]){ "by exited threads, waiting; ", a, " adopted",
						 NULL }));
	fmt_u64(v, purge_thread_idle_reclaims());
	text_line(b, "idle reclaims", v, "heaps of idle threads the purge thread drained");
	fmt_u64(v, st->slabs_new);
	fmt_u64(a, st->slabs_retired);
	text_line(b, "slabs", v,
		  note_of(note, sizeof(note),
			  (const char *const[]){ "carved from segments; ", a, " retired empty", NULL }));
	fmt_u64(v, st->foreign_frees);
	text_line(b, "foreign frees", v, "pointers hakmem never handed out, left alone");
	fmt_u64(v, heap_bad_frees());
	text_line(b, "bad frees", v, "double frees and bad pointers, refused");

	struct learner_report lr;
	learner_report(&lr);
	if (lr.enabled || lr.windows) {
		pb_str(b, "\nLearner (HAKMEM_LEARN): CAP is a mid class's thread ring, in blocks; hit:\n"
			  "the estimated share of mallocs and frees the ring served, last window.\n");
		fmt_u64(v, lr.changes);
		fmt_u64(a, lr.windows);
		text_line(b, "CAP changes", v,
			  note_of(note, sizeof(note), (const char *const[]){ "in ", a, " windows", NULL }));
		fmt_ratio(v, lr.wmax_mid, 100, 2);
		fmt_u64(a, lr.trials);
		fmt_u64(c, lr.adopted);
		text_line(b, "mid W_MAX", v,
			  note_of(note, sizeof(note),
				  (const char *const[]){ a, " trials, ", c, " adopted", NULL }));
		fmt_bytes(v, lr.granted);
		fmt_bytes(a, lr.budget);
		fmt_u64(c, lr.freezes);
		text_line(b, "rings lent", v,
			  note_of(note, sizeof(note),
				  (const char *const[]){ "beyond the default CAPs; budget ", a, ", ", c,
							 " freezes", NULL }));
		fmt_u64(v, s->c.pool_loans_returned);
		text_line(b, "rings given back", v, "grown rings trimmed to their default for a new page");
		for (unsigned i = 0; i < POOL_NCLS; i++) {
			if (!lr.moved[i])
				continue;
			unsigned k = HAK_CLS_MID + i;
			pb_str(b, "  class ");
			pb_num(b, k, 2);
			fmt_bytes(v, ace_class_size[k]);
			pb_pad(b, v, 10, true);
			pb_str(b, "  cap ");
			pb_num(b, lr.cap[i], 5);
			pb_str(b, "  hit ");
			fmt_ratio(v, lr.hit[i], 1000, 2);
			pb_str(b, v);
			pb_str(b, "\n");
		}
	}

	pb_str(b, "\nSettings: the HAKMEM_* variables in effect, and where each came from.\n");
	for (unsigned i = 0; i < config_count(); i++) {
		struct config_setting cs;
		config_get(i, &cs);
		pb_str(b, "  ");
		pb_pad(b, cs.name, 26, false);
		pb_pad(b, cs.text, 8, true);
		pb_str(b, cs.from_env ? "  environment\n" : "  default\n");
	}
#ifdef HAKMEM_DEBUG_COUNTERS
	const struct heap_counters *dc = &s->c;
	pb_str(b, "\nDebug counters (--enable-debug-counters):\n");
	const struct {
		const char *name;
		uint64_t v;
	} dbg[] = {
		{ "tls_sll_alloc", dc->alloc_fast },	{ "tls_sll_free", dc->free_fast },
		{ "ss_local", dc->ss_local },		{ "ss_remote", dc->ss_remote },
		{ "refill_free", dc->refill_free },	{ "refill_carve", dc->refill_carve },
		{ "refill_remote", dc->refill_remote }, { "refill_partial", dc->refill_partial },
		{ "refill_borrow", dc->refill_borrow },
		{ "refill_new_slab", dc->refill_new_slab }, { "refill_adopt", dc->refill_adopt },
		{ "refill_new_segment", dc->refill_new_segment },
		{ "ace_request_bytes", dc->req_bytes }, { "ace_class_bytes", dc->class_bytes },
		{ "ace_waste_bytes", dc->class_bytes - dc->req_bytes },
	};
	for (size_t i = 0; i < sizeof(dbg) / sizeof(dbg[0]); i++) {
		fmt_u64(v, dbg[i].v);
		text_line(b, dbg[i].name, v, NULL);
	}
#endif
}

/* ---- JSON ----
 * One object; a member per line, so that every piece handed over is a
 * line.  Names and strings are hakmem's own (no escaping needed). */

struct jw {
	struct pbuf *b;
	int depth;
	bool first; /* no member yet in the innermost object or array */
};

static void jw_indent(struct jw *j)
{
	for (int i = 0; i < j->depth; i++)
		pb_str(j->b, "  ");
}

/* Start a member (name may be NULL in an array): comma, newline, indent. */
static void jw_key(struct jw *j, const char *name)
{
	pb_str(j->b, j->first ? "\n" : ",\n");
	j->first = false;
	jw_indent(j);
	if (name) {
		pb_str(j->b, "\"");
		pb_str(j->b, name);
		pb_str(j->b, "\": ");
	}
}

static void jw_open(struct jw *j, const char *name, const char *bracket)
{
	jw_key(j, name);
	pb_str(j->b, bracket);
	j->depth++;
	j->first = true;
}

static void jw_close(struct jw *j, const char *bracket)
{
	j->depth--;
	pb_str(j->b, "\n");
	jw_indent(j);
	pb_str(j->b, bracket);
	j->first = false;
}

static void jw_u64(struct jw *j, const char *name, uint64_t v)
{
	jw_key(j, name);
	pb_u64(j->b, v);
}

static void jw_str(struct jw *j, const char *name, const char *text)
{
	jw_key(j, name);
	pb_str(j->b, "\"");
	pb_str(j->b, text);
	pb_str(j->b, "\"");
}

/* ", \"name\": v" inside a one-line object */
static void jw_inline_u64(struct pbuf *b, const char *name, uint64_t v, bool first)
{
	pb_str(b, first ? "\"" : ", \"");
	pb_str(b, name);
	pb_str(b, "\": ");
	pb_u64(b, v);
}

static void print_json(struct pbuf *b, const struct snap *s)
{
	const struct hak_stats *st = &s->st;
	struct jw j = { .b = b, .depth = 0, .first = true };
	pb_str(b, "{");
	j.depth = 1;

	jw_open(&j, "hakmem", "{");
	jw_str(&j, "version", hak_version());
	jw_u64(&j, "format", 1);
	jw_u64(&j, "pid", (uint64_t)getpid());
	jw_close(&j, "}");

	jw_open(&j, "memory", "{");
	jw_u64(&j, "mapped", st->os_mapped);
	jw_u64(&j, "mapped_peak", st->os_mapped_peak);
	jw_u64(&j, "in_use", s->in_use);
	jw_u64(&j, "cached", s->cached);
	jw_u64(&j, "in_segments", s->in_segments);
	jw_u64(&j, "huge_and_tables", s->other);
	jw_u64(&j, "purged", st->os_purged);
	jw_u64(&j, "map_calls", st->os_map_calls);
	jw_u64(&j, "unmap_calls", st->os_unmap_calls);
	jw_u64(&j, "unmap_failures", st->os_unmap_failures);
	jw_u64(&j, "unmap_pending", st->os_unmap_pending);
	jw_u64(&j, "unmap_lost", st->os_unmap_lost);
	jw_u64(&j, "remap_failures", st->os_remap_failures);
	jw_u64(&j, "segments", st->segments);
	jw_u64(&j, "segments_peak", st->segments_peak);
	jw_u64(&j, "segments_cached", st->segments_cached);
	jw_u64(&j, "segment_cache_cap", s->segment_cache_cap);
	jw_close(&j, "}");

	jw_open(&j, "tiers", "{");
	for (int t = 0; t < TIER_COUNT; t++) {
		const struct tier_sum *ts = &s->tier[t];
		jw_open(&j, tier_names[t], "{");
		jw_u64(&j, "refills", ts->refills);
		jw_u64(&j, "blocks", ts->blocks);
		jw_u64(&j, "overflows", ts->overflows);
		jw_u64(&j, "misses", ts->misses);
		jw_u64(&j, "miss_request_bytes", ts->req_bytes);
		jw_u64(&j, "miss_class_bytes", ts->class_bytes);
		jw_close(&j, "}");
	}
	jw_open(&j, "huge", "{");
	jw_u64(&j, "in_use", st->huge_allocs >= st->huge_frees ? st->huge_allocs - st->huge_frees : 0);
	jw_u64(&j, "allocs", st->huge_allocs);
	jw_u64(&j, "cache_hits", st->huge_cache_hits);
	jw_u64(&j, "frees", st->huge_frees);
	jw_u64(&j, "cached", s->huge_cached);
	jw_u64(&j, "cache_cap", s->huge_cap);
	jw_close(&j, "}");
	jw_close(&j, "}");

	jw_open(&j, "classes", "[");
	for (unsigned k = 0; k < HAK_NBINS; k++) {
		const uint64_t *cc = s->c.cls[k];
		if (!class_used(cc))
			continue;
		jw_key(&j, NULL);
		pb_str(b, "{");
		jw_inline_u64(b, "class", k, true);
		jw_inline_u64(b, "size", ace_class_size[k], false);
		pb_str(b, ", \"tier\": \"");
		pb_str(b, tier_names[ace_tier_of_class(k)]);
		pb_str(b, "\"");
		jw_inline_u64(b, "cap", knob_cap(k), false);
		jw_inline_u64(b, "refills", cc[CC_REFILLS], false);
		jw_inline_u64(b, "blocks", cc[CC_BLOCKS], false);
		jw_inline_u64(b, "overflows", cc[CC_OVERFLOWS], false);
		jw_inline_u64(b, "misses", cc[CC_MISSES], false);
		jw_inline_u64(b, "miss_request_bytes", cc[CC_REQ_BYTES], false);
		pb_str(b, "}");
	}
	jw_close(&j, "]");

	jw_open(&j, "mid_pool", "{");
	jw_u64(&j, "page_refills", st->pool_page_refills);
	jw_u64(&j, "pages_taken", st->pool_pages_taken);
	jw_u64(&j, "shared_pages", st->pool_shared_pages);
	jw_u64(&j, "shared_pushes", st->pool_shared_pushes);
	jw_u64(&j, "shared_pops", st->pool_shared_pops);
	jw_u64(&j, "cas", st->pool_cas);
	jw_u64(&j, "cas_retries", st->pool_cas_retries);
	jw_close(&j, "}");

	jw_open(&j, "threads", "{");
	jw_u64(&j, "heaps", st->threads_started);
	jw_u64(&j, "exited", st->threads_exited);
	jw_u64(&j, "remote_frees", st->remote_frees);
	jw_u64(&j, "segments_abandoned", st->segments_abandoned);
	jw_u64(&j, "segments_adopted", st->segments_adopted);
	jw_u64(&j, "idle_reclaims", purge_thread_idle_reclaims());
	jw_u64(&j, "slabs_new", st->slabs_new);
	jw_u64(&j, "slabs_retired", st->slabs_retired);
	jw_u64(&j, "foreign_frees", st->foreign_frees);
	jw_u64(&j, "bad_frees", heap_bad_frees());
	jw_close(&j, "}");

	jw_open(&j, "counters", "{");
	for (unsigned i = 0; i < sizeof(stats_fields) / sizeof(stats_fields[0]); i++)
		jw_u64(&j, stats_fields[i].name, stats_field(st, i));
	jw_close(&j, "}");

	{
		struct learner_report lr;
		learner_report(&lr);
		jw_open(&j, "learner", "{");
		jw_u64(&j, "enabled", lr.enabled);
		jw_u64(&j, "windows", lr.windows);
		jw_u64(&j, "cap_changes", lr.changes);
		jw_u64(&j, "wmax_mid_pct", lr.wmax_mid);
		jw_u64(&j, "wmax_trials", lr.trials);
		jw_u64(&j, "wmax_adopted", lr.adopted);
		jw_u64(&j, "wmax_rollbacks", lr.rollbacks);
		jw_u64(&j, "lent_bytes", lr.granted);
		jw_u64(&j, "budget_bytes", lr.budget);
		jw_u64(&j, "budget_freezes", lr.freezes);
		jw_u64(&j, "rings_given_back", s->c.pool_loans_returned);
		jw_open(&j, "classes", "[");
		for (unsigned i = 0; i < POOL_NCLS; i++) {
			if (!lr.moved[i])
				continue;
			jw_key(&j, NULL);
			pb_str(b, "{\"class\": ");
			pb_u64(b, HAK_CLS_MID + i);
			pb_str(b, ", \"cap\": ");
			pb_u64(b, lr.cap[i]);
			pb_str(b, ", \"hit_permille\": ");
			pb_u64(b, lr.hit[i]);
			pb_str(b, "}");
		}
		jw_close(&j, "]");
		jw_close(&j, "}");
	}

	jw_open(&j, "settings", "{");
	for (unsigned i = 0; i < config_count(); i++) {
		struct config_setting cs;
		config_get(i, &cs);
		jw_key(&j, cs.name);
		pb_str(b, "{\"value\": ");
		if (cs.kind == CONFIG_STATS) {
			pb_str(b, cs.value == 2 ? "\"json\"" : cs.value ? "\"text\"" : "\"off\"");
		} else if (cs.kind == CONFIG_ONERR) {
			pb_str(b, "\"");
			pb_str(b, cs.text); /* abort, warn, ignore */
			pb_str(b, "\"");
		} else if (cs.kind == CONFIG_BOOL) {
			pb_str(b, cs.value ? "true" : "false");
		} else if (cs.kind == CONFIG_TEXT || cs.kind == CONFIG_LIST) {
			pb_str(b, "\"");
			for (const char *q = cs.text; *q; q++)
				pb_str(b, *q == '"' || *q == '\\' || (unsigned char)*q < 0x20 ? "?"
						: (char[]){ *q, 0 });
			pb_str(b, "\"");
		} else {
			pb_str(b, cs.text); /* a decimal number */
		}
		pb_str(b, cs.from_env ? ", \"source\": \"environment\"}" : ", \"source\": \"default\"}");
	}
	jw_close(&j, "}");

#ifdef HAKMEM_DEBUG_COUNTERS
	jw_open(&j, "debug", "{");
	jw_u64(&j, "tls_sll_alloc", s->c.alloc_fast);
	jw_u64(&j, "tls_sll_free", s->c.free_fast);
	jw_u64(&j, "ss_local", s->c.ss_local);
	jw_u64(&j, "ss_remote", s->c.ss_remote);
	jw_u64(&j, "refill_free", s->c.refill_free);
	jw_u64(&j, "refill_carve", s->c.refill_carve);
	jw_u64(&j, "refill_remote", s->c.refill_remote);
	jw_u64(&j, "refill_partial", s->c.refill_partial);
	jw_u64(&j, "refill_borrow", s->c.refill_borrow);
	jw_u64(&j, "refill_new_slab", s->c.refill_new_slab);
	jw_u64(&j, "refill_adopt", s->c.refill_adopt);
	jw_u64(&j, "refill_new_segment", s->c.refill_new_segment);
	jw_u64(&j, "ace_request_bytes", s->c.req_bytes);
	jw_u64(&j, "ace_class_bytes", s->c.class_bytes);
	jw_close(&j, "}");
#endif
	pb_str(b, "\n}\n");
}

HAKMEM_EXPORT int hak_stats_print_opts(hak_print_fn out, void *arg, unsigned flags)
{
	if (flags & ~(unsigned)HAK_STATS_JSON) {
		errno = EINVAL;
		return -1;
	}
	int saved = errno;
	struct pbuf b = { .len = 0, .out = out, .arg = arg };
	struct snap s;
	snap_take(&s);
	if (flags & HAK_STATS_JSON)
		print_json(&b, &s);
	else
		print_text(&b, &s);
	pb_flush(&b);
	errno = saved;
	return 0;
}

HAKMEM_EXPORT void hak_stats_print(hak_print_fn out, void *arg)
{
	hak_stats_print_opts(out, arg, 0);
}

/* HAKMEM_STATS=1 prints at exit to a copy of standard error taken when
 * the library starts: some programs (coreutils) close fd 2 in an atexit
 * handler, which runs before this destructor. */
static int stats_fd = -1;

__attribute__((constructor)) static void stats_init(void)
{
	hak_init();
	if (KNOB(stats) && stats_fd < 0)
		stats_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
}

static void stats_to_fd(void *arg, const char *text)
{
	hak_write_fd(*(int *)arg, text, strlen(text));
}

__attribute__((destructor)) static void stats_at_exit(void)
{
	if (!KNOB(stats))
		return;
	int fd = stats_fd >= 0 ? stats_fd : 2;
	hak_stats_print_opts(stats_to_fd, &fd, KNOB(stats) == 2 ? HAK_STATS_JSON : 0);
}
