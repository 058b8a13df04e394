/* check_heap.c - internal tests of lib/heap.c and lib/purge.c: the knob
 * and counter seam, and the purge service's rules.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * - a knob changed at run time (knob_set_cap, as a tuner would) reaches a
 *   thread that is running: after its next refill its bins use the new
 *   caps, and no bin holds more blocks than its new cap; before that
 *   refill nothing changed (the fast path never reads the table);
 * - W_MAX per tier (knob_set_wmax) is what ACE's bounded round-up uses,
 *   tier by tier;
 * - the per-class counters (refills, blocks, overflows, misses, bytes
 *   asked for and given) count what happened, and readers still see them
 *   once the thread has exited;
 * - purge.c: old enough, due, the earliest due time, two looks.
 *
 * Worker threads record the first failure in terr[] (itest.h).
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "itest.h"

/* ---- a knob changed while a thread runs ---- */

#define TINY_SZ 64
#define MID_SZ 2000
#define NEWCAP_TINY 7
#define NEWCAP_MID 3
#define NBLK 200

static _Atomic int phase; /* 0: start, 1: worker running, 2: knobs changed, 3: stop */
static _Atomic int refills_seen_after;

static uint64_t refills_of(struct heap *h, unsigned c)
{
	return __atomic_load_n(&h->ctr.cls[c][CC_REFILLS], __ATOMIC_RELAXED);
}

static void *knob_worker(void *arg)
{
	(void)arg;
	void *b[NBLK];
	unsigned ct = ace_class(TINY_SZ), cm = ace_class(MID_SZ);
	void *first = hak_malloc(TINY_SZ);
	struct heap *h = tls_heap;
	uint32_t cap0 = h->bins[ct].cap, capm0 = h->bins[cm].cap;
	uint64_t changed_at = 0;
	bool before = true;
	hak_free(first);
	if (cap0 <= NEWCAP_TINY || capm0 <= NEWCAP_MID) {
		TFAIL("the default caps (%u, %u) must be above the new ones", cap0, capm0);
		return NULL;
	}
	atomic_store(&phase, 1);
	for (long round = 0; atomic_load(&phase) != 3 && round < 2000000; round++) {
		if (before && atomic_load(&phase) == 2) {
			/* the knobs changed (before phase 2 was stored) */
			before = false;
			changed_at = refills_of(h, ct) + refills_of(h, cm);
		}
		for (int i = 0; i < NBLK; i++)
			b[i] = hak_malloc(i & 1 ? TINY_SZ : MID_SZ);
		for (int i = 0; i < NBLK; i++) {
			hak_free(b[i]);
			if (!before && refills_of(h, ct) + refills_of(h, cm) > changed_at) {
				/* a refill since the change: the new caps hold */
				if (h->bins[ct].cap != NEWCAP_TINY || h->bins[cm].cap != NEWCAP_MID)
					TFAIL("after a refill: caps %u and %u, knobs %u and %u",
					      h->bins[ct].cap, h->bins[cm].cap, NEWCAP_TINY, NEWCAP_MID);
				if (h->bins[ct].count > NEWCAP_TINY || h->bins[cm].count > NEWCAP_MID)
					TFAIL("after a refill: bins hold %u and %u blocks", h->bins[ct].count,
					      h->bins[cm].count);
				atomic_store(&refills_seen_after, 1);
			}
		}
		if (terr[0])
			break;
	}
	return NULL;
}

START_TEST(test_knob_reaches_running_thread)
{
	pthread_t t;
	terr[0] = '\0';
	ck_assert_int_eq(pthread_create(&t, NULL, knob_worker, NULL), 0);
	while (atomic_load(&phase) == 0)
		usleep(100);
	usleep(20000); /* the worker runs with the default caps a while */
	uint32_t e0 = knob_epoch();
	knob_set_cap(ace_class(TINY_SZ), NEWCAP_TINY);
	knob_set_cap(ace_class(MID_SZ), NEWCAP_MID);
	ck_assert_uint_gt(knob_epoch(), e0);
	atomic_store(&phase, 2);
	for (int i = 0; i < 5000 && !atomic_load(&refills_seen_after); i++)
		usleep(1000);
	usleep(20000);
	atomic_store(&phase, 3);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_msg(terr[0] == '\0', "%s", terr);
	ck_assert_msg(atomic_load(&refills_seen_after), "the worker made no refill after the change");
}
END_TEST

/* One thread: a change takes effect at the thread's next refill, not
 * before (the fast paths never read the knob table). */
static void *knob_local(void *arg)
{
	(void)arg;
	unsigned c = ace_class(TINY_SZ);
	static void *b[4096];
	for (int i = 0; i < NBLK; i++)
		b[i] = hak_malloc(TINY_SZ);
	struct heap *h = tls_heap;
	uint32_t cap0 = h->bins[c].cap;
	knob_set_cap(c, NEWCAP_TINY);
	for (int i = 0; i < NBLK; i++)
		hak_free(b[i]); /* no refill: the old cap still rules */
	if (h->bins[c].cap != cap0 || h->bins[c].count < NBLK)
		TFAIL("before a refill: cap %u (was %u), %u blocks in the bin", h->bins[c].cap, cap0,
		      h->bins[c].count);
	/* empty the bin: the next allocation refills */
	uint32_t n = h->bins[c].count;
	if (n + 1 > 4096) {
		TFAIL("%u blocks in the bin", n);
		return NULL;
	}
	for (uint32_t i = 0; i < n + 1; i++)
		b[i] = hak_malloc(TINY_SZ);
	if (h->bins[c].cap != NEWCAP_TINY || h->bins[c].count > NEWCAP_TINY)
		TFAIL("after a refill: cap %u, %u blocks, the knob %u", h->bins[c].cap, h->bins[c].count,
		      NEWCAP_TINY);
	for (uint32_t i = 0; i < n + 1; i++)
		hak_free(b[i]);
	if (h->bins[c].count > NEWCAP_TINY)
		TFAIL("the bin holds %u blocks, cap %u", h->bins[c].count, NEWCAP_TINY);
	return NULL;
}

START_TEST(test_knob_at_next_refill)
{
	run_thread(knob_local, NULL);
}
END_TEST

/* A new heap reads the knob table as it is. */
static void *read_caps(void *arg)
{
	unsigned c = (unsigned)(uintptr_t)arg;
	void *p = hak_malloc(ace_class_size[c]);
	if (tls_heap->bins[c].cap != knob_cap(c))
		TFAIL("a new heap's cap %u, the knob %u", tls_heap->bins[c].cap, knob_cap(c));
	hak_free(p);
	return NULL;
}

START_TEST(test_new_heap_reads_knobs)
{
	unsigned c = ace_class(300);
	knob_set_cap(c, 5);
	run_thread(read_caps, (void *)(uintptr_t)c);
	heap_default_caps();
	ck_assert_uint_eq(knob_cap(c), tiny_default_cap(c));
	run_thread(read_caps, (void *)(uintptr_t)c);
}
END_TEST

/* ---- W_MAX per tier ---- */

START_TEST(test_wmax_per_tier)
{
	knob_set_wmax(TIER_LARGE, 150);
	knob_set_wmax(TIER_HUGE, 200);
	ck_assert(ace_within_wmax(TIER_LARGE, 100000, 150000));
	ck_assert(!ace_within_wmax(TIER_LARGE, 100000, 150001));
	ck_assert(!ace_within_wmax(TIER_LARGE, 100000, 99999));
	ck_assert(ace_within_wmax(TIER_HUGE, 4 << 20, 8 << 20));
	ck_assert(!ace_within_wmax(TIER_HUGE, 4 << 20, (8 << 20) + 1));
	ck_assert_uint_eq(ace_wmax_limit(TIER_LARGE, 1000), 1500);
	/* one tier's knob leaves the others alone */
	knob_set_wmax(TIER_HUGE, 100);
	ck_assert_uint_eq(ace_wmax_limit(TIER_LARGE, 1000), 1500);
	ck_assert_uint_eq(ace_wmax_limit(TIER_HUGE, 1000), 1000);
}
END_TEST

/* ---- the per-class counters ---- */

#define CNT_N 300

static void *counters_thread(void *arg)
{
	(void)arg;
	void *b[CNT_N];
	unsigned c = ace_class(100); /* 112 B */
	knob_set_cap(c, 4);
	for (int i = 0; i < CNT_N; i++)
		b[i] = hak_malloc(100);
	struct heap *h = tls_heap;
	if (h->bins[c].cap != 4)
		TFAIL("the bin's cap is %u, the knob 4", h->bins[c].cap);
	for (int i = 0; i < CNT_N; i++)
		hak_free(b[i]);
	return NULL;
}

START_TEST(test_class_counters)
{
	uint64_t before[HAK_NCOUNTERS], after[HAK_NCOUNTERS], s, e;
	unsigned c = ace_class(100);
	heap_counters_sum(before, &s, &e);
	run_thread(counters_thread, NULL);
	/* the thread has exited: its counters were folded, readers see them */
	heap_counters_sum(after, &s, &e);
	struct heap_counters b, a;
	memcpy(&b, before, sizeof(b));
	memcpy(&a, after, sizeof(a));
	uint64_t refills = a.cls[c][CC_REFILLS] - b.cls[c][CC_REFILLS];
	uint64_t blocks = a.cls[c][CC_BLOCKS] - b.cls[c][CC_BLOCKS];
	uint64_t over = a.cls[c][CC_OVERFLOWS] - b.cls[c][CC_OVERFLOWS];
	uint64_t misses = a.cls[c][CC_MISSES] - b.cls[c][CC_MISSES];
	uint64_t req = a.cls[c][CC_REQ_BYTES] - b.cls[c][CC_REQ_BYTES];
	uint64_t given = misses * ace_class_size[c]; /* types.h, CC_REQ_BYTES */
	printf("class %u: %llu refills, %llu blocks, %llu overflows, %llu misses, %llu/%llu bytes\n", c,
	       (unsigned long long)refills, (unsigned long long)blocks, (unsigned long long)over,
	       (unsigned long long)misses, (unsigned long long)req, (unsigned long long)given);
	/* with a cap of 4, 300 blocks take at least 300 / 4 refills (the
	 * first one before the cap came from the knob: a whole carve) */
	ck_assert_uint_ge(refills, CNT_N / 4 - 40);
	ck_assert_uint_ge(blocks, CNT_N);
	ck_assert_uint_le(blocks, CNT_N + 4 + slab_carve_batch(c));
	/* 300 frees into a bin of 4: at least 296 found it full */
	ck_assert_uint_ge(over, CNT_N - 4);
	ck_assert_uint_le(over, CNT_N);
	ck_assert_uint_ge(misses, 1); /* the thread's first slab */
	ck_assert_uint_le(misses, refills);
	/* one sample of the request per miss */
	ck_assert_uint_eq(req, 100 * misses);
	ck_assert_uint_gt(given, req); /* the class is 112 bytes */
}
END_TEST

/* ---- purge.c ---- */

START_TEST(test_purge_rules)
{
	hak_cfg.purge_delay_ms = 100;
	ck_assert_uint_eq(purge_delay(), 100);
	ck_assert(!purge_old(1000, 1099, false));
	ck_assert(purge_old(1000, 1100, false));
	ck_assert(purge_old(1000, 1000, true));
	uint64_t due = 0;
	ck_assert(!purge_due(due, 5000)); /* nothing waits */
	purge_note(&due, 2000);
	ck_assert_uint_eq(due, 2100);
	purge_note(&due, 3000); /* later: the earlier stays */
	ck_assert_uint_eq(due, 2100);
	purge_note(&due, 1500); /* earlier: it wins */
	ck_assert_uint_eq(due, 1600);
	ck_assert(!purge_due(due, 1599));
	ck_assert(purge_due(due, 1600));
	uint8_t seen = 0;
	ck_assert(!purge_second_look(&seen, false));
	ck_assert_uint_eq(seen, 1);
	ck_assert(purge_second_look(&seen, false));
	seen = 0;
	ck_assert(purge_second_look(&seen, true));
	hak_cfg.purge_delay_ms = 0;
	ck_assert(purge_old(1000, 1000, false)); /* no delay: at once */
}
END_TEST

/* ---- the free key (internal.h) ---- */

/* Freed blocks keep their mark through a sweep; a block handed out has
 * none.  A large block past its class's cache gives its run back at once
 * (large.c): a second free of it is still a double free. */
START_TEST(test_free_key_survives_sweep)
{
	static const size_t sizes[] = { 64, 4096, 100000 };
	for (unsigned i = 0; i < 3; i++) {
		size_t n = sizes[i];
		if (ace_tier_of_class(ace_class(n)) == TIER_LARGE) { /* a cache of one */
			knob_set_cap(ace_class(n), 1);
			heap_read_knobs(tls_heap);
		}
		void *live = hak_malloc(n), *p = hak_malloc(n), *q = hak_malloc(n);
		ck_assert(live && p && q);
		ck_assert_uint_ne(blk_key(p), free_key());
		hak_free(p);
		hak_free(q); /* a large class's bin holds one: q goes to the slab */
		for (int k = 0; k < 2; k++)
			heap_purge(tls_heap, true);
		struct segment *seg = segmap_lookup(p);
		ck_assert_ptr_nonnull(seg);
		ck_assert_msg(blk_key(p) == free_key(), "%zu bytes: the key of a free block is gone after a sweep",
			      n);
		ck_assert_int_eq(slab_check_free(slab_of(seg, p), p), HAK_BAD_DOUBLE);
		if (ace_tier_of_class(ace_class(n)) == TIER_LARGE) {
			/* q's run went back to its segment at once (large.c):
			 * no block starts there now; a free of q is a double
			 * free, one a page in is no block */
			ck_assert_int_eq(slab_of(seg, q)->state, SLAB_FREE);
			ck_assert_int_eq(slab_check_free(slab_of(seg, q), q), HAK_BAD_DOUBLE);
			ck_assert_int_eq(slab_check_free(slab_of(seg, q), (char *)q + 4096), HAK_BAD_NOT_BLOCK);
		} else {
			ck_assert_msg(blk_key(q) == free_key(),
				      "%zu bytes: the key of a free block is gone after a sweep", n);
			ck_assert_int_eq(slab_check_free(slab_of(seg, q), q), HAK_BAD_DOUBLE);
		}
		ck_assert_int_eq(slab_check_free(slab_of(seg, live), live), 0);
		ck_assert_int_eq(slab_check_free(slab_of(seg, live), (char *)live + 16), HAK_BAD_NOT_BLOCK);
		void *r = hak_malloc(n), *t = hak_malloc(n);
		ck_assert(r && t);
		ck_assert_uint_ne(blk_key(r), free_key());
		ck_assert_uint_ne(blk_key(t), free_key());
		hak_free(r);
		hak_free(t);
		hak_free(live);
	}
}
END_TEST

/* slab_block_index against a division, for every class, at every offset
 * of a block's first and last 64 bytes and around the slab's ends. */
START_TEST(test_block_index)
{
	for (unsigned c = 0; c < HAK_NBINS; c++) {
		struct slab s = { 0 };
		uint32_t bs = ace_class_size[c];
		slab_set_class(&s, c);
		s.b0 = 0x40001000u + (c % 4) * 64;
		uint32_t cap = (uint32_t)((2u << 20) / bs);
		for (uint32_t blk = 0; blk <= cap; blk += blk < 8 || blk + 8 > cap ? 1 : cap / 16 + 1)
			for (int64_t d = -64; d < 64; d++) {
				int64_t off = (int64_t)blk * bs + d;
				uint32_t want = off >= 0 && off % bs == 0 ? (uint32_t)(off / bs) : UINT32_MAX;
				uint32_t got = slab_block_index(&s, (void *)(uintptr_t)(s.b0 + (uint32_t)off));
				if (want == UINT32_MAX)
					ck_assert_msg(got >= cap, "class %u (%u B), offset %lld: index %u",
						      c, bs, (long long)off, got);
				else
					ck_assert_msg(got == want, "class %u (%u B), offset %lld: %u, not %u",
						      c, bs, (long long)off, got, want);
			}
	}
}
END_TEST

static Suite *heap_suite(void)
{
	Suite *s = suite_create("heap");
	TCase *tc = tcase_create("knobs");
	tcase_add_test(tc, test_knob_reaches_running_thread);
	tcase_add_test(tc, test_knob_at_next_refill);
	tcase_add_test(tc, test_new_heap_reads_knobs);
	tcase_add_test(tc, test_wmax_per_tier);
	tcase_add_test(tc, test_class_counters);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	tc = tcase_create("purge");
	tcase_add_test(tc, test_purge_rules);
	suite_add_tcase(s, tc);
	tc = tcase_create("free key");
	tcase_add_test(tc, test_free_key_survives_sweep);
	tcase_add_test(tc, test_block_index);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(heap_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
