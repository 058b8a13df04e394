/* stats.c - counters and printing.  Printing formats into stack buffers
 * and hands the text to a callback: it never allocates. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

HAKMEM_EXPORT int hak_stats_get(struct hak_stats *st)
{
	if (st == NULL) {
		errno = EINVAL;
		return -1;
	}
	hak_init();
	uint64_t ctr[HAK_NCOUNTERS], started, exited;
	heap_counters_sum(ctr, &started, &exited);
	struct heap_counters c;
	memcpy(&c, ctr, sizeof(c));
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
	return 0;
}

/* ---- printing ---- */

struct pbuf {
	char buf[256];
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

static void pb_str(struct pbuf *b, const char *s)
{
	for (; *s; s++) {
		if (b->len + 1 >= sizeof(b->buf))
			pb_flush(b);
		b->buf[b->len++] = *s;
	}
}

static void pb_line(struct pbuf *b, const char *name, uint64_t v)
{
	char num[24];
	fmt_u64(num, v);
	pb_str(b, "  ");
	pb_str(b, name);
	for (size_t k = strlen(name); k < 22; k++)
		pb_str(b, " ");
	pb_str(b, num);
	pb_str(b, "\n");
	pb_flush(b);
}

/* num / den with two decimals ("-" when den is 0) */
static void pb_ratio(struct pbuf *b, const char *name, uint64_t num, uint64_t den)
{
	char text[48];
	if (den == 0) {
		text[0] = '-';
		text[1] = '\0';
	} else {
		uint64_t v = (num * 100 + den / 2) / den;
		size_t k = fmt_u64(text, v / 100);
		text[k++] = '.';
		text[k++] = (char)('0' + v % 100 / 10);
		text[k++] = (char)('0' + v % 10);
		text[k] = '\0';
	}
	pb_str(b, "  ");
	pb_str(b, name);
	for (size_t k = strlen(name); k < 22; k++)
		pb_str(b, " ");
	pb_str(b, text);
	pb_str(b, "\n");
	pb_flush(b);
}

HAKMEM_EXPORT void hak_stats_print(hak_print_fn out, void *arg)
{
	struct pbuf b = { .len = 0, .out = out, .arg = arg };
	struct hak_stats st;
	hak_stats_get(&st);
	pb_str(&b, "hakmem statistics (version ");
	pb_str(&b, hak_version());
	pb_str(&b, ")\n");
	pb_flush(&b);
	pb_line(&b, "os_mapped", st.os_mapped);
	pb_line(&b, "os_mapped_peak", st.os_mapped_peak);
	pb_line(&b, "os_map_calls", st.os_map_calls);
	pb_line(&b, "os_unmap_calls", st.os_unmap_calls);
	pb_line(&b, "os_purged", st.os_purged);
	pb_line(&b, "segments", st.segments);
	pb_line(&b, "segments_peak", st.segments_peak);
	pb_line(&b, "segments_cached", st.segments_cached);
	pb_line(&b, "segments_abandoned", st.segments_abandoned);
	pb_line(&b, "segments_adopted", st.segments_adopted);
	pb_line(&b, "tiny_refills", st.tiny_refills);
	pb_line(&b, "mid_refills", st.mid_refills);
	pb_line(&b, "large_refills", st.large_refills);
	pb_line(&b, "slabs_new", st.slabs_new);
	pb_line(&b, "slabs_retired", st.slabs_retired);
	pb_line(&b, "remote_frees", st.remote_frees);
	pb_line(&b, "huge_allocs", st.huge_allocs);
	pb_line(&b, "huge_cache_hits", st.huge_cache_hits);
	pb_line(&b, "huge_frees", st.huge_frees);
	pb_line(&b, "foreign_frees", st.foreign_frees);
	pb_line(&b, "threads_started", st.threads_started);
	pb_line(&b, "threads_exited", st.threads_exited);
	pb_line(&b, "pool_page_refills", st.pool_page_refills);
	pb_line(&b, "pool_pages_taken", st.pool_pages_taken);
	pb_line(&b, "pool_shared_pushes", st.pool_shared_pushes);
	pb_line(&b, "pool_shared_pops", st.pool_shared_pops);
	pb_line(&b, "pool_shared_pages", st.pool_shared_pages);
	pb_line(&b, "pool_cas", st.pool_cas);
	pb_line(&b, "pool_cas_retries", st.pool_cas_retries);
	pb_ratio(&b, "pool_pages_per_refill", st.pool_pages_taken, st.pool_page_refills);
	pb_ratio(&b, "pool_cas_retry_pct", st.pool_cas_retries * 100, st.pool_cas);
#ifdef HAKMEM_DEBUG_COUNTERS
	uint64_t ctr[HAK_NCOUNTERS], s, e;
	heap_counters_sum(ctr, &s, &e);
	struct heap_counters c;
	memcpy(&c, ctr, sizeof(c));
	pb_str(&b, "debug counters\n");
	pb_flush(&b);
	pb_line(&b, "tls_sll_alloc", c.alloc_fast);
	pb_line(&b, "tls_sll_free", c.free_fast);
	pb_line(&b, "ss_local", c.ss_local);
	pb_line(&b, "ss_remote", c.ss_remote);
	pb_line(&b, "refill_free", c.refill_free);
	pb_line(&b, "refill_carve", c.refill_carve);
	pb_line(&b, "refill_remote", c.refill_remote);
	pb_line(&b, "refill_partial", c.refill_partial);
	pb_line(&b, "refill_fullscan", c.refill_fullscan);
	pb_line(&b, "refill_borrow", c.refill_borrow);
	pb_line(&b, "refill_new_slab", c.refill_new_slab);
	pb_line(&b, "refill_adopt", c.refill_adopt);
	pb_line(&b, "refill_new_segment", c.refill_new_segment);
	pb_line(&b, "ace_request_bytes", c.req_bytes);
	pb_line(&b, "ace_class_bytes", c.class_bytes);
	pb_line(&b, "ace_waste_bytes", c.class_bytes - c.req_bytes);
#endif
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
	hak_stats_print(stats_to_fd, &fd);
}
