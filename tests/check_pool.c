/* check_pool.c - internal tests of lib/pool.c: the mid tier's shared,
 * lock-free page stacks, refill batching and the per-class cap.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * - the tagged head: address and 22-bit tag survive packing, the tag
 *   wraps;
 * - stack invariants, alone and with 16 threads at once: every page pushed
 *   is popped at most once per push (a page popped twice, the ABA failure,
 *   is caught by a per-page flag), pushes == pops + length, a chain push
 *   adds exactly its count, a take empties the stack;
 * - refill batching: with HAKMEM_POOL_REFILL_BATCH 1..4 and several caps
 *   every refill of new pages takes exactly min(batch, cap), and a heap never
 *   holds more than cap pages of a class with room;
 * - trim and reuse: pages beyond the cap go to the shared stack, another
 *   thread pops them, drains the remote frees in them and serves its
 *   mallocs from them; once every block is back, a collect gives them up;
 * - a thread that frees some 200 MiB of mid blocks and makes no further
 *   call holds at most 30 MiB;
 * - a thread-exit flush never lets a page go while its ring still holds
 *   blocks of that page (test_flush_keeps_pages);
 * - free page slots whose memory is still there: a heap of another shard
 *   takes them before a new segment, and after larson-like generations of
 *   threads no free slot marked clean has a resident page;
 * - a refill takes its class's stacked pages before an empty page of its
 *   heap is cut again, and no new page beside a stacked one with room;
 * - a mid class's ring keeps at most a page's worth of blocks unless
 *   HAKMEM_POOL_RING_CAP is given;
 * - a sweep's trim keeps the pages of a class that took blocks since the
 *   last sweep, and sends them to the stacks once it takes none.
 *
 * Worker threads record the first failure in terr[] (ck_assert allocates
 * and talks to the parent); the test asserts after the join.
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "itest.h"



/* ---- the tagged head ---- */

/* 4096 slabs that are not in use, in segment headers of their own (a
 * slab's link on a shared stack lives in its segment: slab_snext), made
 * once, before the tests fork. */
#define NFAKE 4096
#define FAKE_PER_SEG (HAK_SEG_SIZE >> HAK_MID_SHIFT) /* as mid pages: their links (slab_snext) */
static struct slab *fk[NFAKE];
static uint8_t *fake_area;

static void fakes_init(void)
{
	size_t nseg = NFAKE / FAKE_PER_SEG, len = (nseg + 1) * HAK_SEG_SIZE;
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			  -1, 0);
	if (m == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	fake_area = (uint8_t *)(((uintptr_t)m + HAK_SEG_MASK) & ~(uintptr_t)HAK_SEG_MASK);
	for (size_t i = 0; i < NFAKE; i++) {
		struct segment *seg = (struct segment *)(fake_area + (i / FAKE_PER_SEG) * HAK_SEG_SIZE);
		fk[i] = &seg->slabs[i % FAKE_PER_SEG];
	}
}

/* The index of a fake slab, or -1 for any other pointer. */
static ptrdiff_t fake_id(const struct slab *s)
{
	uintptr_t a = (uintptr_t)s, base = (uintptr_t)fake_area;
	if (a < base || a >= base + (NFAKE / FAKE_PER_SEG) * HAK_SEG_SIZE)
		return -1;
	struct segment *seg = (struct segment *)(a & ~(uintptr_t)HAK_SEG_MASK);
	if (s < seg->slabs || s >= seg->slabs + FAKE_PER_SEG)
		return -1;
	return (ptrdiff_t)((a - base) / HAK_SEG_SIZE * FAKE_PER_SEG) + (s - seg->slabs);
}

START_TEST(test_tag_pack)
{
	const uint64_t tags[] = { 0, 1, 62, 63, 64, 65, 4095, 4096, 123456, (1u << 22) - 1 };
	struct slab *ptrs[] = { NULL, fk[0], fk[1], fk[4095] };
	for (size_t i = 0; i < sizeof(ptrs) / sizeof(ptrs[0]); i++)
		for (size_t j = 0; j < sizeof(tags) / sizeof(tags[0]); j++) {
			uint64_t v = pool_tag_pack(ptrs[i], tags[j]);
			ck_assert_ptr_eq(pool_tag_ptr(v), ptrs[i]);
			ck_assert_uint_eq(pool_tag_of(v), tags[j]);
		}
	/* the tag wraps at 2^22 without touching the address */
	uint64_t v = pool_tag_pack(fk[7], ((uint64_t)1 << 22) + 5);
	ck_assert_ptr_eq(pool_tag_ptr(v), fk[7]);
	ck_assert_uint_eq(pool_tag_of(v), 5);
	/* two heads with the same top and different tags differ */
	ck_assert_uint_ne(pool_tag_pack(fk[7], 1), pool_tag_pack(fk[7], 2));
}
END_TEST

/* ---- stack invariants ---- */

#define TC (HAK_CLS_LARGE - 1) /* a class and shard no page of this test uses */
#define TS (POOL_SHARDS - 1)

static void chain(struct slab **s, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++)
		atomic_store(slab_snext(s[i]), s[i + 1]);
}

START_TEST(test_stack_single)
{
	struct pool_counters c0, c1;
	pool_counts(&c0);
	ck_assert_uint_eq(pool_stack_len(TC, TS), 0);
	ck_assert_ptr_null(pool_stack_pop(TC, TS));
	pool_stack_push(TC, TS, fk[0], fk[0], 1);
	pool_stack_push(TC, TS, fk[1], fk[1], 1);
	ck_assert_uint_eq(pool_stack_len(TC, TS), 2);
	/* a chain of 5 in one push: exactly 5 more, in chain order */
	struct slab *ch[5] = { fk[10], fk[11], fk[12], fk[13], fk[14] };
	chain(ch, 5);
	pool_stack_push(TC, TS, ch[0], ch[4], 5);
	ck_assert_uint_eq(pool_stack_len(TC, TS), 7);
	for (int i = 0; i < 5; i++)
		ck_assert_ptr_eq(pool_stack_pop(TC, TS), ch[i]);
	ck_assert_ptr_eq(pool_stack_pop(TC, TS), fk[1]); /* LIFO */
	pool_counts(&c1);
	ck_assert_uint_eq(c1.pushes - c0.pushes, 7);
	ck_assert_uint_eq(c1.pops - c0.pops, 6);
	ck_assert_uint_eq((c1.pushes - c0.pushes) - (c1.pops - c0.pops), pool_stack_len(TC, TS));
	/* take: the whole stack, NULL-terminated, and the stack is empty */
	pool_stack_push(TC, TS, fk[2], fk[2], 1);
	struct slab *all = pool_stack_take(TC, TS);
	ck_assert_ptr_eq(all, fk[2]);
	ck_assert_ptr_eq(atomic_load(slab_snext(all)), fk[0]);
	ck_assert_ptr_null(atomic_load(slab_snext(fk[0])));
	ck_assert_uint_eq(pool_stack_len(TC, TS), 0);
	ck_assert_ptr_null(pool_stack_take(TC, TS));
	pool_counts(&c1);
	ck_assert_uint_eq(c1.pushes - c0.pushes, c1.pops - c0.pops);
	ck_assert_uint_le(c1.cas_retries, c1.cas);
}
END_TEST

#define NT 16
#define PER_T 64 /* fakes each thread starts with */
#define ROUNDS 20000

static _Atomic int on_stack[4096];
static _Atomic uint64_t t_pushed, t_popped;

/* Each thread keeps the fakes it holds in hand[]; it pushes chains of 1
 * to 4 of them and pops, on a few stacks that all threads share.  A page
 * popped that was not on a stack (flag 0) means a page came off twice. */
static void *stack_thread(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct slab *hand[4096];
	size_t n = 0;
	uint64_t rng = id * 7919u + 1, pushed = 0, popped = 0;
	for (unsigned i = 0; i < PER_T; i++)
		hand[n++] = fk[id * PER_T + i];
	for (int r = 0; r < ROUNDS && !terr[0]; r++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		unsigned shard = (unsigned)(rng >> 60) % 2 + TS - 1;
		if (n > 0 && ((rng >> 33) & 1)) {
			size_t k = 1 + (rng >> 40) % 4;
			if (k > n)
				k = n;
			struct slab **ch = &hand[n - k];
			for (size_t i = 0; i < k; i++)
				if (atomic_exchange(&on_stack[fake_id(ch[i])], 1) != 0)
					TFAIL("page %td pushed while on a stack", fake_id(ch[i]));
			chain(ch, k);
			pool_stack_push(TC, shard, ch[0], ch[k - 1], (uint32_t)k);
			n -= k;
			pushed += k;
		} else {
			struct slab *s = pool_stack_pop(TC, shard);
			if (s == NULL)
				continue;
			if (fake_id(s) < 0)
				TFAIL("popped %p: not one of the pages", (void *)s);
			else if (atomic_exchange(&on_stack[fake_id(s)], 0) != 1)
				TFAIL("page %td popped twice (ABA)", fake_id(s));
			hand[n++] = s;
			popped++;
		}
	}
	atomic_fetch_add(&t_pushed, pushed);
	atomic_fetch_add(&t_popped, popped);
	return NULL;
}

START_TEST(test_stack_concurrent)
{
	pthread_t t[NT];
	struct pool_counters c0, c1;
	for (unsigned sh = 0; sh < POOL_SHARDS; sh++)
		ck_assert_uint_eq(pool_stack_len(TC, sh), 0);
	pool_counts(&c0);
	terr[0] = '\0';
	for (unsigned i = 0; i < NT; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, stack_thread, (void *)(uintptr_t)i), 0);
	for (unsigned i = 0; i < NT; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	ck_assert_msg(terr[0] == '\0', "%s", terr);
	pool_counts(&c1);
	/* a push that keeps failing moves on to the next shard: count all */
	uint64_t len = 0, flagged = 0;
	for (unsigned sh = 0; sh < POOL_SHARDS; sh++)
		len += pool_stack_len(TC, sh);
	for (unsigned i = 0; i < NT * PER_T; i++)
		flagged += atomic_load(&on_stack[i]);
	/* pushes == pops + length, by the stacks' counters and the threads' */
	ck_assert_uint_eq(c1.pushes - c0.pushes, atomic_load(&t_pushed));
	ck_assert_uint_eq(c1.pops - c0.pops, atomic_load(&t_popped));
	ck_assert_uint_eq(atomic_load(&t_pushed) - atomic_load(&t_popped), len);
	ck_assert_uint_eq(flagged, len);
	ck_assert_uint_ge(c1.cas - c0.cas, atomic_load(&t_pushed) / 4 + atomic_load(&t_popped));
	ck_assert_uint_le(c1.cas_retries - c0.cas_retries, c1.cas - c0.cas);
	printf("stacks: %llu pushes, %llu pops, %llu CAS, %llu retried (%.2f%%), %llu pops gave up\n",
	       (unsigned long long)(c1.pushes - c0.pushes), (unsigned long long)(c1.pops - c0.pops),
	       (unsigned long long)(c1.cas - c0.cas), (unsigned long long)(c1.cas_retries - c0.cas_retries),
	       100.0 * (double)(c1.cas_retries - c0.cas_retries) / (double)(c1.cas - c0.cas),
	       (unsigned long long)(c1.pop_giveups - c0.pop_giveups));
}
END_TEST

/* ---- refill batching and the cap ---- */

/* Pages of class c that h holds with room: the current one and partials. */
static unsigned pages_with_room(struct heap *h, unsigned c)
{
	unsigned n = h->cur[c] ? 1 : 0;
	for (struct slab *s = h->partial[c]; s; s = s->next)
		n++;
	return n;
}

#define BLK 8192
#define NBLK 400
/* blocks of BLK a page holds: page 0 gives 4 KiB to the segment header */
#define PER_PAGE ((size_t)1 << (HAK_MID_SHIFT - 13))

static void *batch_thread(void *arg)
{
	(void)arg;
	struct heap *h0 = NULL;
	unsigned c = ace_class(BLK);
	uint32_t want = (uint32_t)(hak_cfg.pool_refill_batch < hak_cfg.pool_cap ? hak_cfg.pool_refill_batch
										 : hak_cfg.pool_cap);
	static void *b[NBLK];
	for (int i = 0; i < NBLK; i++) {
		b[i] = hak_malloc(BLK);
		if (b[i] == NULL) {
			TFAIL("malloc failed");
			return NULL;
		}
		memset(b[i], 0x3c, BLK);
		h0 = tls_heap;
		if (pages_with_room(h0, c) > (unsigned)hak_cfg.pool_cap) {
			TFAIL("batch %ld cap %ld: %u pages with room", hak_cfg.pool_refill_batch,
			      hak_cfg.pool_cap, pages_with_room(h0, c));
			return NULL;
		}
	}
	uint64_t refills = h0->ctr.pool_page_refills, taken = h0->ctr.pool_pages_taken;
	/* NBLK blocks need this many pages: at least ceil(pages / want) refills */
	uint64_t pages = 1 + (NBLK - (PER_PAGE - 1) + PER_PAGE - 1) / PER_PAGE;
	if (refills < (pages + want - 1) / want || taken != refills * want)
		TFAIL("batch %ld cap %ld: %llu refills took %llu pages, want %u each",
		      hak_cfg.pool_refill_batch, hak_cfg.pool_cap, (unsigned long long)refills,
		      (unsigned long long)taken, want);
	for (int i = 0; i < NBLK; i++)
		hak_free(b[i]);
	return NULL;
}

START_TEST(test_refill_batch)
{
	const long caps[] = { 1, 2, 3, 4, 8 };
	/* the stacks of this class must be empty: pages come new */
	for (unsigned k = 0; k < POOL_SHARDS; k++)
		ck_assert_uint_eq(pool_stack_len(ace_class(BLK), k), 0);
	hak_cfg.pool_refill_batch = _i;
	for (size_t k = 0; k < sizeof(caps) / sizeof(caps[0]); k++) {
		hak_cfg.pool_cap = caps[k];
		run_thread(batch_thread, NULL);
	}
}
END_TEST

/* ---- trim, reuse through the shared stack, collect ---- */

#define TRIM_N 512 /* at least 10 pages of 8 KiB blocks */
static void *trim_blocks[TRIM_N];
static struct hak_stats st_a;


/* Fill 10 pages, free one block in each (so none is full), then let the
 * sweep run: the pages beyond the cap must leave for the shared stack. */
static void *trim_thread(void *arg)
{
	(void)arg;
	unsigned c = ace_class(BLK);
	for (int i = 0; i < TRIM_N; i++) {
		trim_blocks[i] = hak_malloc(BLK);
		memset(trim_blocks[i], 0x5a, BLK);
	}
	struct heap *h = tls_heap;
	/* page k holds blocks k * PER_PAGE - 1 .. (k + 1) * PER_PAGE - 2 */
	for (size_t i = PER_PAGE; i < TRIM_N; i += PER_PAGE) {
		hak_free(trim_blocks[i]);
		trim_blocks[i] = NULL;
	}
	if (pages_with_room(h, c) < 8) {
		TFAIL("only %u pages with room before the sweep", pages_with_room(h, c));
		return NULL;
	}
	st_a = stats();
	heap_purge(h, true);
	if (pages_with_room(h, c) > (unsigned)hak_cfg.pool_cap)
		TFAIL("after the sweep: %u pages with room, cap %ld", pages_with_room(h, c), hak_cfg.pool_cap);
	return NULL;
}

/* Another heap: its refills pop the shared pages and drain them. */
static void *reuse_thread(void *arg)
{
	(void)arg;
	static void *mine[64];
	uint64_t pops0 = stats().pool_shared_pops;
	for (int i = 0; i < 64; i++) {
		mine[i] = hak_malloc(BLK);
		if (mine[i] == NULL) {
			TFAIL("malloc failed");
			return NULL;
		}
		memset(mine[i], 0x77, BLK);
	}
	if (stats().pool_shared_pops == pops0)
		TFAIL("a new heap took no page from the shared stack");
	for (int i = 0; i < 64; i++)
		hak_free(mine[i]);
	return NULL;
}

START_TEST(test_trim_reuse_collect)
{
	hak_cfg.pool_cap = 2;
	hak_cfg.pool_refill_batch = 2;
	set_tier_cap(TIER_MID, 0); /* frees reach the pages at once */
	hak_collect();
	run_thread(trim_thread, NULL);
	struct hak_stats st_b = stats();
	/* the sweep pushed the pages beyond the cap; the thread's exit pushed
	 * the rest (each holds blocks still out) */
	ck_assert_uint_ge(st_b.pool_shared_pushes - st_a.pool_shared_pushes, 10);
	ck_assert_uint_ge(st_b.pool_shared_pages, 10);
	/* the blocks are intact; frees from this thread are remote frees */
	for (int i = 0; i < TRIM_N; i++) {
		if (trim_blocks[i] == NULL)
			continue;
		for (size_t k = 0; k < BLK; k += 512)
			ck_assert_uint_eq(((unsigned char *)trim_blocks[i])[k], 0x5a);
	}
	for (int i = 0; i < TRIM_N / 2; i++)
		hak_free(trim_blocks[i]), trim_blocks[i] = NULL;
	run_thread(reuse_thread, NULL);
	for (int i = TRIM_N / 2; i < TRIM_N; i++)
		hak_free(trim_blocks[i]);
	hak_collect();
	struct hak_stats st_c = stats();
	ck_assert_uint_eq(st_c.pool_shared_pages, 0);
	ck_assert_uint_eq(st_c.pool_shared_pushes, st_c.pool_shared_pops);
}
END_TEST

/* ---- one thread, then idle: what a heap keeps is bounded ---- */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif

static size_t rss_now(void)
{
	unsigned long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &res) != 2)
		res = 0;
	fclose(f);
	return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

#define IDLE_N 12000 /* about 200 MiB of mid blocks */

/* The thread allocates, writes and frees about 200 MiB of mid blocks, then
 * makes no further call: the pages that empty beyond MID_EMPTY_MAX go back
 * at once, so what it holds is bounded without a later sweep. */
START_TEST(test_idle_after_free)
{
	static void *b[IDLE_N];
	uint64_t rng = 12345;
	size_t total = 0;
	for (int i = 0; i < IDLE_N; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		size_t n = 1025 + (rng >> 33) % (32768 - 1024);
		b[i] = hak_malloc(n);
		ck_assert_ptr_nonnull(b[i]);
		memset(b[i], 0x42, n);
		total += n;
	}
	size_t peak = rss_now();
	for (int i = 0; i < IDLE_N; i++)
		hak_free(b[i]);
	size_t idle = rss_now();
	printf("idle after free: %.1f MiB allocated, RSS %.1f -> %.1f MiB\n", (double)total / MiB,
	       (double)peak / MiB, (double)idle / MiB);
	ck_assert_uint_ge(peak, total / 2); /* the blocks were really there */
#ifndef UNDER_SANITIZER
	if (getenv("HAK_TEST_NO_RSS") == NULL) /* set by make check-valgrind */
		ck_assert_msg(idle <= 30 * MiB, "idle RSS %.1f MiB > 30 MiB", (double)idle / MiB);
#endif
}
END_TEST

/* ---- batches bigger than what is kept: the heap learns to keep them ---- */

#define BATCH_N 3000 /* 3000 x 8000 B: 24 MiB, 192 pages of 128 KiB */

static uint64_t purged_bytes(void)
{
	return atomic_load_explicit(&os_ctr.purged, memory_order_relaxed);
}

/* The test's thread allocates and frees a 24 MiB batch of mid blocks,
 * round after round.  The first rounds give the pages beyond 64 back at once; a refill
 * that then needs pool pages doubles what the heap keeps, so the later
 * rounds give nothing back and fault nothing in.  When the rounds stop
 * and the thread goes on with little, sweeps halve it back to 64. */
START_TEST(test_batch_rounds)
{
	static void *b[BATCH_N];
	struct heap *h;
	uint64_t before = 0, late = 0;
	hak_cfg.purge_delay_ms = 1000; /* slow runs (valgrind) still count as quick */
	for (int round = 0; round < 12; round++) {
		if (round == 6)
			before = purged_bytes();
		for (int i = 0; i < BATCH_N; i++) {
			b[i] = hak_malloc(8000);
			ck_assert_ptr_nonnull(b[i]);
			memset(b[i], round, 8000);
		}
		for (int i = 0; i < BATCH_N; i++) {
			ck_assert_int_eq(((unsigned char *)b[i])[7999], round);
			hak_free(b[i]);
		}
	}
	late = purged_bytes() - before;
	h = tls_heap;
	printf("batch rounds: keeps %u empty mid pages, %u on the list; rounds 7-12 purged %llu bytes\n",
	       h->mid_keep, h->nmid_empty, (unsigned long long)late);
	ck_assert_uint_ge(h->mid_keep, 192);
	ck_assert_msg(late == 0, "rounds 7-12 gave back %llu bytes", (unsigned long long)late);

	/* the rounds stop: a little mid work while sweeps run (the next one
	 * is due a second after the last round, the delay it was set with) */
	hak_cfg.purge_delay_ms = 20;
	struct timespec t0, t1;
	long ms;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int i = 0; i < 200; i++) /* about 13 pages */
			b[i] = hak_malloc(8000);
		for (int i = 0; i < 200; i++)
			hak_free(b[i]);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	} while (ms < 5000 && (h->mid_keep > 64 || ms < 1300));
	printf("after %ld ms of little work: keeps %u, %u on the list\n", ms, h->mid_keep, h->nmid_empty);
	ck_assert_uint_eq(h->mid_keep, 64);
	ck_assert_uint_le(h->nmid_empty, 64);
}
END_TEST

/* ---- a thread-exit flush keeps every page its ring still points into ----
 *
 * heap_flush returns each block of the rings to its page.  A page that
 * empties on the way may run the delayed sweep (heap_purge), whose trim
 * sent pages with room beyond HAKMEM_POOL_CAP to the shared stack: pages
 * whose blocks were still on the flush's list.  The flush then wrote to
 * pages it no longer owned (another thread may have popped them; a
 * --enable-debug build aborted in heap_flush's owner assertion), and a
 * page that emptied that way was taken back onto the heap's list of
 * empty pages, and given back, while it was still on the stack.
 *
 * Here: class 32 KiB (4 blocks a page), cap 1, rings that hold
 * everything, a sweep that is due.  The ring lists, first to last, one
 * block of each of six pages A (whose other blocks are also in the ring
 * but one, kept by the test), one of page P, all of page E, then the rest
 * of P and of the A pages.  Once E empties, a sweep would trim A and P to
 * the stack; the rest of P then comes back to a page on the stack. */
#define FL_C (HAK_CLS_LARGE - 1)
#define FL_N 64

static void *flush_thread(void *arg)
{
	(void)arg;
	void *b[FL_N];
	struct slab *pages[FL_N];
	unsigned npages = 0, per[FL_N] = { 0 };
	struct heap *h;

	for (int i = 0; i < FL_N; i++)
		b[i] = hak_malloc(32 * KiB);
	h = tls_heap;
	if (ace_class(32 * KiB) != FL_C) {
		TFAIL("32 KiB is class %u, not %u", ace_class(32 * KiB), FL_C);
		return NULL;
	}
	/* the pages whose every block the test holds */
	for (int i = 0; i < FL_N; i++) {
		struct slab *s = slab_of(segmap_lookup(b[i]), b[i]);
		unsigned k;
		for (k = 0; k < npages && pages[k] != s; k++)
			;
		if (k == npages)
			pages[npages++] = s;
		per[k]++;
	}
	struct slab *A[6], *P = NULL, *E = NULL;
	unsigned na = 0;
	for (unsigned k = 0; k < npages; k++) {
		if (per[k] != pages[k]->capacity || pages[k]->capacity != 4)
			continue;
		if (na < 6)
			A[na++] = pages[k];
		else if (P == NULL)
			P = pages[k];
		else if (E == NULL)
			E = pages[k];
	}
	if (E == NULL) {
		TFAIL("only %u whole pages of 4 blocks among %u pages", na + (P != NULL), npages);
		return NULL;
	}
	/* the blocks of each chosen page, in address order */
	void *blk[8][4], *kept[6];
	struct slab *chosen[8] = { A[0], A[1], A[2], A[3], A[4], A[5], P, E };
	unsigned cnt[8] = { 0 };
	for (int i = 0; i < FL_N; i++) {
		struct slab *s = slab_of(segmap_lookup(b[i]), b[i]);
		int k;
		for (k = 0; k < 8 && chosen[k] != s; k++)
			;
		if (k < 8)
			blk[k][cnt[k]++] = b[i];
		else
			hak_free(b[i]); /* first in, so last in the flush's walk */
	}
	/* free in the reverse of the walk's order (the ring is LIFO) */
	for (int k = 0; k < 6; k++) {
		kept[k] = blk[k][3];
		hak_free(blk[k][2]);
		hak_free(blk[k][1]);
	}
	hak_free(blk[6][3]);
	hak_free(blk[6][2]);
	hak_free(blk[6][1]);
	for (int j = 0; j < 4; j++)
		hak_free(blk[7][j]);
	hak_free(blk[6][0]);
	for (int k = 5; k >= 0; k--)
		hak_free(blk[k][0]);
	if (h->bins[FL_C].count < 6 * 3 + 4 + 4) {
		TFAIL("the ring holds %u blocks: the frees did not all reach it", h->bins[FL_C].count);
		return NULL;
	}
	h->next_purge = 1; /* the sweep is due */
	heap_flush(h);
	/* every page on a shared stack of the class is one the heap let go */
	unsigned stacked = 0;
	for (unsigned k = 0; k < POOL_SHARDS; k++) {
		struct slab *all = pool_stack_take(FL_C, k), *s, *last = NULL;
		uint32_t n = 0;
		for (s = all; s; s = atomic_load(slab_snext(s))) {
			if (s->state != SLAB_SHARED || atomic_load(&s->owner) != NULL || s->used == 0)
				TFAIL("a page on the shared stack: state %u (SHARED is %u), owner %p, used %u",
				      s->state, SLAB_SHARED, (void *)atomic_load(&s->owner), s->used);
			last = s;
			n++;
		}
		if (all)
			pool_stack_push(FL_C, k, all, last, n);
		stacked += n;
	}
	/* P and E are empty: gone back or on the heap's list, not stacked */
	if (P->state == SLAB_SHARED || E->state == SLAB_SHARED)
		TFAIL("an empty page is on the shared stack (P state %u, E state %u)", P->state, E->state);
	for (struct slab *s = h->mid_empty; s; s = s->next)
		if (s->state != SLAB_EMPTY || atomic_load(&s->owner) != h)
			TFAIL("a page on the empty list: state %u, owner %p", s->state,
			      (void *)atomic_load(&s->owner));
	for (int k = 0; k < 6; k++) {
		if (A[k]->used != 1)
			TFAIL("page A%d: %u blocks out, 1 kept", k, A[k]->used);
		hak_free(kept[k]);
	}
	printf("flush: %u pages, %u on the shared stacks\n", npages, stacked);
	return NULL;
}

START_TEST(test_flush_keeps_pages)
{
	hak_cfg.pool_cap = 1;
	hak_cfg.pool_refill_batch = 1;
	set_tier_cap(TIER_MID, 4096); /* every free stays in the ring */
	run_thread(flush_thread, NULL);
}
END_TEST

/* ---- a refill finishes its class's stacked pages first ---- */

/* Pages of 32 KiB blocks with a hole each go to the shared stack (the
 * trim, cap 1); a page of 16 KiB blocks empties onto the heap's list.
 * The next refill of 32 KiB must take a stacked page (its hole is memory
 * in place) and leave the empty page for a class that needs a page. */
#define SF_N 40
static void *stacked_first_thread(void *arg)
{
	(void)arg;
	static void *b[SF_N], *e[16];
	struct slab *trimmed[SF_N];
	unsigned ntrim = 0, c = ace_class(32768);
	for (int i = 0; i < SF_N; i++) {
		b[i] = hak_malloc(32768);
		if (b[i] == NULL) {
			TFAIL("malloc failed");
			return NULL;
		}
		memset(b[i], 0x44, 32768);
	}
	struct heap *h = tls_heap;
	/* a hole in every page but the current one */
	for (int i = 0; i < SF_N; i++) {
		struct slab *s = slab_of(segmap_lookup(b[i]), b[i]);
		bool seen = false;
		for (unsigned k = 0; k < ntrim; k++)
			seen |= trimmed[k] == s;
		if (seen || s == h->cur[c])
			continue;
		trimmed[ntrim++] = s;
		hak_free(b[i]);
		b[i] = NULL;
	}
	pool_trim(h, c, (uint32_t)hak_cfg.pool_cap);
	if (h->partial[c] != NULL || ntrim < 4) {
		TFAIL("%u pages with a hole; partial list %s after the trim", ntrim,
		      h->partial[c] ? "not empty" : "empty");
		return NULL;
	}
	/* an empty page of another class on the heap's list */
	for (int i = 0; i < 16; i++)
		e[i] = hak_malloc(16384);
	struct slab *es = slab_of(segmap_lookup(e[0]), e[0]);
	for (int i = 0; i < 16; i++)
		if (slab_of(segmap_lookup(e[i]), e[i]) == es)
			hak_free(e[i]), e[i] = NULL;
	uint32_t empty0 = h->nmid_empty;
	if (empty0 == 0) {
		TFAIL("no empty page on the heap's list");
		return NULL;
	}
	/* allocate until a block comes from another page than the current */
	struct slab *cur = h->cur[c], *got = NULL;
	void *x[8] = { 0 };
	for (int i = 0; i < 8 && got == NULL; i++) {
		x[i] = hak_malloc(32768);
		struct slab *s = slab_of(segmap_lookup(x[i]), x[i]);
		if (s != cur)
			got = s;
	}
	bool stacked = false;
	for (unsigned k = 0; k < ntrim; k++)
		stacked |= trimmed[k] == got;
	if (!stacked || h->nmid_empty != empty0)
		TFAIL("the refill took %s; empty pages %u -> %u", stacked ? "a stacked page" : "another page",
		      empty0, h->nmid_empty);
	for (int i = 0; i < 8; i++)
		hak_free(x[i]);
	for (int i = 0; i < 16; i++)
		hak_free(e[i]);
	for (int i = 0; i < SF_N; i++)
		hak_free(b[i]);
	return NULL;
}

START_TEST(test_refill_stacked_first)
{
	hak_cfg.pool_cap = 1;
	hak_cfg.purge_delay_ms = 600000;
	set_tier_cap(TIER_MID, 0); /* frees reach the pages at once */
	run_thread(stacked_first_thread, NULL);
}
END_TEST

/* ---- a refill that found stacked pages takes no new one ---- */

/* A thread left two pages of 8 KiB blocks on the stacks, one full and one
 * with a free block.  The next thread's refill of that class pops the one
 * with room and takes no new page beside it (though the batch is 2): a
 * new page would only add to the pages the class holds half used, in
 * programs whose threads each take a few blocks of a class (bench/rounds:
 * two megabytes of such pages). */
#define ST_PAGE0 ((((size_t)1 << HAK_MID_SHIFT) - HAK_SEG_META) / BLK) /* page 0, after the header */
#define ST_N (ST_PAGE0 + PER_PAGE)
static void *st_blocks[ST_N];

static void *st_leaver(void *arg)
{
	(void)arg;
	for (size_t i = 0; i < ST_N; i++) {
		st_blocks[i] = hak_malloc(BLK);
		if (st_blocks[i] == NULL) {
			TFAIL("malloc failed");
			return NULL;
		}
		memset(st_blocks[i], 0x21, BLK);
	}
	hak_free(st_blocks[ST_N - 1]); /* its page has room */
	st_blocks[ST_N - 1] = NULL;
	return NULL;
}

static void *st_taker(void *arg)
{
	(void)arg;
	unsigned c = ace_class(BLK);
	uint64_t stacked = 0;
	for (unsigned k = 0; k < POOL_SHARDS; k++)
		stacked += pool_stack_len(c, k);
	if (stacked < 2) {
		TFAIL("%llu pages stacked, want 2", (unsigned long long)stacked);
		return NULL;
	}
	struct heap *h;
	void *p = hak_malloc(BLK);
	h = tls_heap;
	struct slab *s = slab_of(segmap_lookup(p), p);
	if (h->ctr.pool_pages_taken != 1 || h->ctr.slabs_new != 0)
		TFAIL("the refill took %llu pages, %llu of them new, beside the stacked page with room",
		      (unsigned long long)h->ctr.pool_pages_taken, (unsigned long long)h->ctr.slabs_new);
	else if (s != slab_of(segmap_lookup(st_blocks[ST_PAGE0]), st_blocks[ST_PAGE0]))
		TFAIL("the block is not from the stacked page with room");
	hak_free(p);
	return NULL;
}

START_TEST(test_refill_no_new_beside_stacked)
{
	hak_cfg.pool_refill_batch = 2;
	hak_cfg.pool_cap = 4;
	set_tier_cap(TIER_MID, 0); /* frees reach the pages at once */
	run_thread(st_leaver, NULL);
	run_thread(st_taker, NULL);
	for (size_t i = 0; i < ST_N; i++)
		hak_free(st_blocks[i]);
}
END_TEST

/* ---- the trim spares a class in use ---- */

/* 40 blocks of 32 KiB (10 pages), one freed in each page but the current:
 * pages with room beyond HAKMEM_POOL_CAP (1).  A sweep right after keeps
 * them: the class took 40 blocks since the last sweep, ten pages' worth,
 * and would only take other pages for its next mallocs.  The next sweep,
 * with no block taken meanwhile, sends them to the shared stack. */
#define TK_N 40
static void *trim_keep_thread(void *arg)
{
	(void)arg;
	static void *b[TK_N];
	unsigned c = ace_class(32768);
	for (int i = 0; i < TK_N; i++) {
		b[i] = hak_malloc(32768);
		if (b[i] == NULL) {
			TFAIL("malloc failed");
			return NULL;
		}
		memset(b[i], 0x55, 32768);
	}
	struct heap *h = tls_heap;
	struct slab *last = NULL;
	for (int i = 0; i < TK_N; i++) {
		struct slab *s = slab_of(segmap_lookup(b[i]), b[i]);
		if (s == last || s == h->cur[c])
			continue;
		last = s;
		hak_free(b[i]);
		b[i] = NULL;
	}
	unsigned before = pages_with_room(h, c);
	uint64_t next = 0, stacked = 0;
	pool_sweep(h, os_now_ms(), false, &next);
	unsigned busy = pages_with_room(h, c);
	pool_sweep(h, os_now_ms(), false, &next);
	unsigned idle = pages_with_room(h, c);
	for (unsigned k = 0; k < POOL_SHARDS; k++)
		stacked += pool_stack_len(c, k);
	printf("trim: %u pages with room; after a sweep %u, after an idle one %u (%llu stacked)\n", before,
	       busy, idle, (unsigned long long)stacked);
	if (before < 8 || busy != before || idle > (unsigned)hak_cfg.pool_cap || stacked + idle < before)
		TFAIL("pages with room %u, after a busy sweep %u, after an idle one %u (cap %ld), %llu stacked",
		      before, busy, idle, hak_cfg.pool_cap, (unsigned long long)stacked);
	for (int i = 0; i < TK_N; i++)
		hak_free(b[i]);
	return NULL;
}

START_TEST(test_trim_spares_busy_class)
{
	hak_cfg.pool_cap = 1;
	hak_cfg.purge_delay_ms = 600000;
	set_tier_cap(TIER_MID, 0); /* frees reach the pages at once */
	run_thread(trim_keep_thread, NULL);
}
END_TEST

/* ---- a grown ring's loan goes back before a new page ---- */

/* The learner grew the 32 KiB class's ring to 256 (its default is 8): 64
 * blocks (16 pages) allocated and freed stay in the ring.  Then the
 * program moves to 20 KiB blocks: the first refill that would take a new
 * page trims the 32 KiB ring to its default first, and the 14 pages that
 * empty serve the 20 KiB blocks, so no page is taken from the pool.
 * Without the give-back, those pages stay held by the ring while new
 * ones are taken. */
#define LB_N 64
static void *loans_thread(void *arg)
{
	bool scattered = arg != NULL;
	static void *b[LB_N + 40];
	unsigned c32 = ace_class(32768);
	hak_free(hak_malloc(16)); /* the thread's heap is made */
	struct heap *h = tls_heap;
	if (h->bins[c32].cap != 256 || !(h->mid_grown & (1u << (c32 - HAK_CLS_MID)))) {
		TFAIL("ring cap %u, grown 0x%x", h->bins[c32].cap, h->mid_grown);
		return NULL;
	}
	for (int i = 0; i < LB_N; i++) {
		b[i] = hak_malloc(32768);
		if (b[i] == NULL) {
			TFAIL("malloc failed");
			return NULL;
		}
		memset(b[i], 0x33, 32768);
	}
	if (scattered) {
		/* one block of each of the first 8 pages first: the ring's
		 * oldest 8, at its bottom, hold 8 pages */
		for (int i = 0; i < LB_N; i++)
			if (i % 4 == 0 && i < 32)
				hak_free(b[i]);
		for (int i = 0; i < LB_N; i++)
			if (!(i % 4 == 0 && i < 32))
				hak_free(b[i]);
	} else {
		for (int i = 0; i < LB_N; i++)
			hak_free(b[i]);
	}
	if (h->bins[c32].count != LB_N) {
		TFAIL("%u blocks in the grown ring, want %d", h->bins[c32].count, LB_N);
		return NULL;
	}
	/* 20 KiB blocks: 6 a page; scattered, 90 of them need 15 of the 16
	 * pages the ring's blocks lie in, so a ring trimmed to its default
	 * (8 blocks on 8 pages) would leave too few empty */
	int n20 = scattered ? 90 : 40;
	uint64_t taken = h->ctr.pool_pages_taken;
	for (int i = 0; i < n20; i++) {
		b[i] = hak_malloc(20480);
		if (b[i] == NULL) {
			TFAIL("malloc failed");
			return NULL;
		}
		memset(b[i], 0x44, 20480);
	}
	uint64_t more = h->ctr.pool_pages_taken - taken;
	printf("loans%s: 32 KiB ring %u blocks, %llu pages taken for %d blocks of 20 KiB, %llu loans returned\n",
	       scattered ? " (scattered)" : "", h->bins[c32].count, (unsigned long long)more, n20,
	       (unsigned long long)h->ctr.pool_loans_returned);
	if (h->bins[c32].count > pool_default_cap(c32))
		TFAIL("the grown ring still holds %u blocks (default cap %u)", h->bins[c32].count,
		      pool_default_cap(c32));
	if (more != 0)
		TFAIL("%llu pages taken from the pool while the grown ring held 16 pages' blocks",
		      (unsigned long long)more);
	if (h->ctr.pool_loans_returned == 0)
		TFAIL("no loan returned");
	for (int i = 0; i < n20; i++)
		hak_free(b[i]);
	return NULL;
}

START_TEST(test_loans_back)
{
	hak_free(hak_malloc(16)); /* initialised: the variables were read */
	hak_cfg.purge_delay_ms = 600000; /* no sweep retires the empty pages */
	knob_set_cap(ace_class(32768), 256); /* as the learner grows a ring */
	run_thread(loans_thread, NULL);
}
END_TEST

/* The same when the ring's oldest blocks lie in different pages: the
 * loan goes back whole, or those few blocks keep their pages from
 * emptying (a ring trimmed to its default kept 8 pages in use). */
START_TEST(test_loans_back_scattered)
{
	hak_free(hak_malloc(16));
	hak_cfg.purge_delay_ms = 600000;
	knob_set_cap(ace_class(32768), 256);
	run_thread(loans_thread, (void *)1);
}
END_TEST

/* ---- a ring keeps at most a page's worth ---- */

/* 64 blocks of 32 KiB (16 pages) allocated, then all freed: unless
 * HAKMEM_POOL_RING_CAP is given, the ring keeps 8 of them (a page's
 * worth, 4, is below the minimum) and the pages of the others empty, free
 * for any class; a ring of 32 would keep 8 pages in use.  With the
 * variable given, every class gets it as it is. */
#define RB_N 64
static void *ring_bound_thread(void *arg)
{
	long given = (long)(intptr_t)arg;
	static void *b[RB_N];
	unsigned c = ace_class(32768);
	hak_free(hak_malloc(16)); /* the thread's heap is made */
	for (unsigned k = HAK_CLS_MID; k < HAK_CLS_LARGE; k++) {
		uint32_t page = (uint32_t)(((size_t)1 << HAK_MID_SHIFT) / ace_class_size[k]);
		uint32_t want = given || page > 32 ? 32 : page < 8 ? 8 : page;
		if (tls_heap->bins[k].cap != want) {
			TFAIL("class %u (%u B): ring cap %u, want %u", k, ace_class_size[k], tls_heap->bins[k].cap,
			      want);
			return NULL;
		}
	}
	for (int i = 0; i < RB_N; i++) {
		b[i] = hak_malloc(32768);
		if (b[i] == NULL) {
			TFAIL("malloc failed");
			return NULL;
		}
		memset(b[i], 0x33, 32768);
	}
	for (int i = 0; i < RB_N; i++)
		hak_free(b[i]);
	struct heap *h = tls_heap;
	printf("ring bound (given %ld): %u blocks in the ring, %u empty pages\n", given, h->bins[c].count,
	       h->nmid_empty);
	if (!given && (h->bins[c].count > 8 || h->nmid_empty < 12))
		TFAIL("%u blocks in the ring, %u empty pages (want <= 8 and >= 12)", h->bins[c].count,
		      h->nmid_empty);
	if (given && h->bins[c].count != 32)
		TFAIL("HAKMEM_POOL_RING_CAP=32 given: %u blocks in the ring", h->bins[c].count);
	return NULL;
}

START_TEST(test_ring_page_bound)
{
	hak_free(hak_malloc(16)); /* initialised: the variables were read */
	hak_cfg.pool_ring_cap = 32;
	hak_cfg.pool_ring_cap_set = _i;
	hak_cfg.purge_delay_ms = 600000; /* no sweep retires the empty pages */
	heap_default_caps();
	run_thread(ring_bound_thread, (void *)(intptr_t)_i);
}
END_TEST

/* ---- free page slots whose memory is still there ---- */

/* Thread 1 fills 16 pages with 32 KiB blocks and frees them; a forced
 * sweep retires the empty pages, and with a long purge delay their slots
 * wait, dirty, in segments of thread 1's shard.  Thread 2 (a heap of the
 * next shard, made while thread 1 still lives) then needs pages: it must
 * take those slots, resident already, rather than cut a new segment of
 * its own shard. */
#define DS_N 64
static void *ds_blocks[DS_N];

static void *dirty_take_thread(void *arg)
{
	unsigned shard1 = (unsigned)(uintptr_t)arg;
	void *b[8];
	for (int i = 0; i < 8; i++) {
		b[i] = hak_malloc(32768);
		if (b[i] == NULL) {
			TFAIL("malloc failed");
			return NULL;
		}
		memset(b[i], 0x22, 32768);
	}
	if (tls_heap->shard == shard1)
		TFAIL("both heaps in shard %u", shard1);
	for (int i = 0; i < 8; i++) {
		struct segment *seg = segmap_lookup(b[i]);
		if (seg->shard != shard1)
			TFAIL("block %d: a page of shard %u (own %u), not a dirty slot of shard %u", i,
			      seg->shard, tls_heap->shard, shard1);
	}
	for (int i = 0; i < 8; i++)
		hak_free(b[i]);
	return NULL;
}

static void *dirty_fill_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < DS_N; i++) {
		ds_blocks[i] = hak_malloc(32768);
		if (ds_blocks[i] == NULL) {
			TFAIL("malloc failed");
			return NULL;
		}
		memset(ds_blocks[i], 0x11, 32768);
	}
	/* the first block holds its segment */
	for (int i = 1; i < DS_N; i++)
		hak_free(ds_blocks[i]);
	struct heap *h = tls_heap;
	heap_purge(h, true); /* retires the empty pages: their slots turn dirty */
	unsigned dirty = 0;
	for (int i = 1; i < DS_N; i++) {
		struct segment *seg = segmap_lookup(ds_blocks[i]);
		if (seg && !(seg->used_mask & mask_bit(slab_of(seg, ds_blocks[i])->index)) &&
		    (seg->dirty & mask_bit(slab_of(seg, ds_blocks[i])->index)))
			dirty++;
	}
	if (dirty < 8 * 4) {
		TFAIL("only %u blocks in dirty free slots after the sweep", dirty);
		return NULL;
	}
	pthread_t t;
	if (pthread_create(&t, NULL, dirty_take_thread, (void *)(uintptr_t)h->shard) != 0 ||
	    pthread_join(t, NULL) != 0)
		TFAIL("pthread_create");
	hak_free(ds_blocks[0]);
	return NULL;
}

START_TEST(test_dirty_slot_other_shard)
{
	hak_cfg.purge_delay_ms = 600000;
	set_tier_cap(TIER_MID, 0); /* frees reach the pages at once */
	run_thread(dirty_fill_thread, NULL);
}
END_TEST

/* Pages of the free slots of every mid segment that are resident, and
 * the free slots not marked dirty (their pages should be gone). */
static size_t clean_resident_pages(unsigned *nclean)
{
	size_t pages = 0;
	*nclean = 0;
	for (size_t w = 0; w < HAK_SEGMAP_ENTRIES / 64; w++) {
		for (uint64_t m = atomic_load(&segmap_here[w]); m; m &= m - 1) {
			struct segment *seg = (struct segment *)((w * 64 + (size_t)__builtin_ctzll(m)) << HAK_SEG_SHIFT);
			if (seg->tier != TIER_MID)
				continue;
			for (unsigned i = 0; i < seg->nslabs; i++) {
				if ((seg->used_mask | seg->dirty) & mask_bit(i))
					continue;
				size_t len;
				uint8_t *a = slab_area(seg, i, &len);
				uintptr_t p0 = (uintptr_t)a & ~(uintptr_t)(HAK_PAGE - 1);
				unsigned char v[(1u << HAK_MID_SHIFT) / 4096];
				size_t n = ((uintptr_t)a + len - p0) / HAK_PAGE;
				if (mincore((void *)p0, n * HAK_PAGE, v) != 0)
					continue;
				for (size_t k = 0; k < n; k++)
					pages += v[k] & 1;
				(*nclean)++;
			}
		}
	}
	return pages;
}

/* A larson-like run: each generation of threads replaces random blocks of
 * an array it inherits from the thread before, and exits.  Pages move
 * between heaps (the shared stacks), are cut again for other classes and
 * taken from dirty slots; whichever way, a slot that goes back must be
 * either purged or marked dirty: a clean slot with its pages still there
 * is memory no heap finds again until its segment goes. */
#define LG_SLOTS 500
static void *lg_slot[LG_SLOTS];
static uint64_t lg_rng = 99;

static void *lg_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 4000; i++) {
		lg_rng = lg_rng * 6364136223846793005ull + 1442695040888963407ull;
		unsigned k = (unsigned)((lg_rng >> 33) % LG_SLOTS);
		size_t n = 2048 + (lg_rng >> 20) % (32768 - 2048);
		hak_free(lg_slot[k]);
		lg_slot[k] = hak_malloc(n);
		if (lg_slot[k] == NULL) {
			TFAIL("malloc failed");
			return NULL;
		}
		memset(lg_slot[k], 0x5c, n);
	}
	return NULL;
}

START_TEST(test_free_slots_not_resident)
{
	hak_cfg.purge_delay_ms = 600000;
	hak_cfg.segment_cache = 0; /* a cached segment keeps its pages */
	/* exits as with the purge thread running: they leave the free
	 * pages for it (heap_abandon), in dirty slots.  None runs, so that
	 * nothing collects meanwhile (its wake-up is a no-op until it has
	 * backed off). */
	int state = atomic_exchange(&purge_thread_state, PT_RUNNING);
	for (int i = 0; i < LG_SLOTS; i++)
		lg_slot[i] = hak_malloc(2048 + (size_t)i * 61);
	for (int g = 0; g < 24; g++)
		run_thread(lg_thread, NULL);
	unsigned nclean;
	size_t pages = clean_resident_pages(&nclean);
	/* back before any assertion: hakmem's destructor joins the purge
	 * thread when the state says one runs, and none does */
	atomic_store(&purge_thread_state, state);
	printf("generations: %u clean free slots, %zu resident pages in them\n", nclean, pages);
	ck_assert_msg(pages == 0, "%zu pages resident in %u free slots not marked dirty", pages, nclean);
	for (int i = 0; i < LG_SLOTS; i++)
		hak_free(lg_slot[i]);
}
END_TEST

static Suite *pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("stack");
	tcase_add_test(tc, test_tag_pack);
	tcase_add_test(tc, test_stack_single);
	tcase_add_test(tc, test_stack_concurrent);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	tc = tcase_create("refill");
	tcase_add_loop_test(tc, test_refill_batch, 1, 5);
	tcase_add_test(tc, test_trim_reuse_collect);
	tcase_add_test(tc, test_idle_after_free);
	tcase_add_test(tc, test_batch_rounds);
	tcase_add_test(tc, test_flush_keeps_pages);
	tcase_add_test(tc, test_dirty_slot_other_shard);
	tcase_add_test(tc, test_free_slots_not_resident);
	tcase_add_test(tc, test_refill_stacked_first);
	tcase_add_test(tc, test_refill_no_new_beside_stacked);
	tcase_add_test(tc, test_trim_spares_busy_class);
	tcase_add_loop_test(tc, test_ring_page_bound, 0, 2);
	tcase_add_test(tc, test_loans_back);
	tcase_add_test(tc, test_loans_back_scattered);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	fakes_init();
	SRunner *sr = srunner_create(pool_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
