/* check_learner.c - internal tests of lib/learner.c.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * The control law with synthetic windows (pure functions, no thread, no
 * clock): no change inside the target band; a step toward the target
 * outside it, growing while the error keeps its sign; no second change
 * within the dwell time; clamps at MIN and MAX; a signal on or around a
 * band edge moves CAP one way only; too few samples change nothing.  The
 * budget of what grown rings may hold: it starts at the peak RSS / 64,
 * grows fourfold while the peak stays within 1%, freezes when the peak
 * rises more (but not for a rise larger than all that is lent: the
 * program's own), and starts again when the demand moves; each grown
 * class gets the same share.  The W_MAX trial: the score's waste
 * penalty, adopt and rollback, and the canary compared with its
 * control.
 *
 * The mid tier's W_MAX: off by default; at 1.60 a class with no page takes
 * a larger block from the thread's rings (and ACE counts the waste), but
 * never one that would break an aligned request's alignment; a canary
 * gives some classes their own W_MAX.
 *
 * Then the thread itself, in processes of their own (Check forks): it
 * starts on a malloc slow path when HAKMEM_LEARN is on, raises the CAP of
 * a mid class whose ring overflows under a synthetic load, restarts in a
 * child of fork, and stops at exit and on learner_stop.  These wait for
 * an event with a generous deadline; none depends on how fast the
 * machine is.
 */
#include "internal.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A window whose hit rate is exactly h per mille, with (1000 - h) * k
 * samples: no refills, h * k blocks, (1000 - h) * k overflows. */
static struct learn_win win(uint32_t h, uint64_t k)
{
	struct learn_win w = { .refills = 0, .blocks = h * k, .overflows = (1000 - h) * k };
	return w;
}

static struct learn_law law_default(void)
{
	struct learn_law l = { .target = 650, .band = LEARN_BAND, .step = 4, .min = 8, .max = 2048,
			       .dwell = 3, .min_samples = 100 };
	return l;
}

START_TEST(test_hit_estimate)
{
	uint64_t s;
	struct learn_win w = { .refills = 10, .blocks = 330, .overflows = 320 };
	/* (330 - 10) / (330 + 320) */
	ck_assert_uint_eq(learn_hit_permille(&w, &s), 320 * 1000 / 650);
	ck_assert_uint_eq(s, 330);
	struct learn_win none = { 0 };
	ck_assert_uint_eq(learn_hit_permille(&none, &s), 1000);
	ck_assert_uint_eq(s, 0);
	struct learn_win h = win(400, 2);
	ck_assert_uint_eq(learn_hit_permille(&h, &s), 400);
	ck_assert_uint_eq(s, 1200);
}
END_TEST

START_TEST(test_inside_band)
{
	struct learn_law law = law_default();
	struct learn_cls st = { .cap = 32 };
	static const uint32_t in[] = { 600, 620, 650, 680, 700, 650, 601, 699 };
	for (int round = 0; round < 10; round++)
		for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
			struct learn_win w = win(in[i], 1);
			ck_assert_uint_eq(learn_cap_decide(&law, &st, &w), 32);
		}
	ck_assert_uint_eq(st.changes, 0);
}
END_TEST

START_TEST(test_step_toward_target)
{
	struct learn_law law = law_default();
	struct learn_cls lo = { .cap = 32 }, hi = { .cap = 32 };
	struct learn_win below = win(300, 1), above = win(950, 10);
	ck_assert_uint_eq(learn_cap_decide(&law, &lo, &below), 36); /* one step up */
	ck_assert_uint_eq(learn_cap_decide(&law, &hi, &above), 28); /* one step down */
	/* the error keeps its sign: each step after the dwell is twice the last */
	law.dwell = 1;
	lo.dwell_left = 0;
	ck_assert_uint_eq(learn_cap_decide(&law, &lo, &below), 36 + 8);
	ck_assert_uint_eq(learn_cap_decide(&law, &lo, &below), 44 + 16);
	ck_assert_uint_eq(learn_cap_decide(&law, &lo, &below), 60 + 32);
	/* a step the other way starts again at one step */
	ck_assert_uint_eq(learn_cap_decide(&law, &lo, &above), 92 - 4);
	ck_assert_uint_eq(learn_cap_decide(&law, &lo, &above), 88 - 8);
	/* back inside the band: no change, and the run is over */
	struct learn_win in = win(650, 1);
	ck_assert_uint_eq(learn_cap_decide(&law, &lo, &in), 80);
	ck_assert_uint_eq(learn_cap_decide(&law, &lo, &below), 84);
	/* the doubling stops at 64 steps */
	struct learn_cls far = { .cap = 8 };
	law.max = 1000000;
	uint32_t last = 8, delta = 0;
	for (int i = 0; i < 12; i++) {
		uint32_t cap = learn_cap_decide(&law, &far, &below);
		delta = cap - last;
		last = cap;
	}
	ck_assert_uint_eq(delta, 4 * 64);
}
END_TEST

START_TEST(test_dwell)
{
	struct learn_law law = law_default(); /* dwell: 3 windows */
	struct learn_cls st = { .cap = 32 };
	struct learn_win below = win(200, 1);
	ck_assert_uint_eq(learn_cap_decide(&law, &st, &below), 36);
	/* windows 1 and 2 after the change: no change however low the hit */
	ck_assert_uint_eq(learn_cap_decide(&law, &st, &below), 36);
	ck_assert_uint_eq(learn_cap_decide(&law, &st, &below), 36);
	/* window 3: the dwell is over */
	ck_assert_uint_eq(learn_cap_decide(&law, &st, &below), 44);
	ck_assert_uint_eq(st.changes, 2);
	/* over 30 windows at most one change per 3 */
	for (int i = 0; i < 30; i++)
		learn_cap_decide(&law, &st, &below);
	ck_assert_uint_le(st.changes, 2 + 10);
	ck_assert_uint_ge(st.changes, 2 + 9);
}
END_TEST

START_TEST(test_clamps)
{
	struct learn_law law = law_default();
	law.dwell = 1;
	struct learn_cls st = { .cap = 2000 };
	struct learn_win below = win(100, 1), above = win(990, 100);
	for (int i = 0; i < 50; i++)
		ck_assert_uint_le(learn_cap_decide(&law, &st, &below), 2048);
	ck_assert_uint_eq(st.cap, 2048);
	uint64_t changes = st.changes;
	learn_cap_decide(&law, &st, &below);
	ck_assert_uint_eq(st.changes, changes); /* at MAX: no change counted */
	for (int i = 0; i < 50; i++)
		ck_assert_uint_ge(learn_cap_decide(&law, &st, &above), 8);
	ck_assert_uint_eq(st.cap, 8);
	/* a cap that starts outside is brought inside */
	struct learn_cls low = { .cap = 2 }, high = { .cap = 9999 };
	struct learn_win in = win(650, 1);
	ck_assert_uint_eq(learn_cap_decide(&law, &low, &in), 8);
	ck_assert_uint_eq(learn_cap_decide(&law, &high, &in), 2048);
}
END_TEST

START_TEST(test_band_edge)
{
	struct learn_law law = law_default();
	law.dwell = 1;
	/* exactly on either edge: inside */
	struct learn_cls st = { .cap = 64 };
	struct learn_win lo_edge = win(600, 1), hi_edge = win(700, 10);
	for (int i = 0; i < 20; i++) {
		ck_assert_uint_eq(learn_cap_decide(&law, &st, &lo_edge), 64);
		ck_assert_uint_eq(learn_cap_decide(&law, &st, &hi_edge), 64);
	}
	/* wavering around the lower edge: CAP only grows, never shrinks */
	struct learn_cls w = { .cap = 64 };
	uint32_t last = 64;
	for (int i = 0; i < 40; i++) {
		struct learn_win x = win(i % 2 ? 599 : 601, 1);
		uint32_t cap = learn_cap_decide(&law, &w, &x);
		ck_assert_uint_ge(cap, last);
		last = cap;
	}
	/* ... and around the upper edge it only shrinks */
	struct learn_cls u = { .cap = 1024 };
	last = 1024;
	for (int i = 0; i < 40; i++) {
		struct learn_win x = win(i % 2 ? 701 : 699, 10);
		uint32_t cap = learn_cap_decide(&law, &u, &x);
		ck_assert_uint_le(cap, last);
		last = cap;
	}
	ck_assert_uint_lt(last, 1024);
}
END_TEST

START_TEST(test_few_samples)
{
	struct learn_law law = law_default(); /* 100 samples at least */
	struct learn_cls st = { .cap = 32 };
	/* hit 10%: far below, but 99 samples (90 overflows, 9 refills) */
	struct learn_win w = { .refills = 9, .blocks = 19, .overflows = 90 };
	for (int i = 0; i < 20; i++)
		ck_assert_uint_eq(learn_cap_decide(&law, &st, &w), 32);
	w.refills = 10; /* 100 samples: enough; the ring overflowed and ran
			 * dry in the same window: eightfold */
	ck_assert_uint_eq(learn_cap_decide(&law, &st, &w), 32 * LEARN_GROW);
	/* no traffic at all */
	struct learn_cls idle = { .cap = 32 };
	struct learn_win none = { 0 };
	for (int i = 0; i < 20; i++)
		ck_assert_uint_eq(learn_cap_decide(&law, &idle, &none), 32);
}
END_TEST

/* A window where the ring overflowed into its pages and ran dry again:
 * hit (750 - 50) / 1600, 850 samples. */
static struct learn_win churn(void)
{
	struct learn_win w = { .refills = 50, .blocks = 800, .overflows = 800 };
	return w;
}

START_TEST(test_grow_eightfold)
{
	struct learn_law law = law_default();
	struct learn_cls st = { .cap = 32 };
	struct learn_win w = churn();
	ck_assert_uint_eq(learn_cap_decide(&law, &st, &w), 256);
	/* the dwell holds, then eightfold again, clamped at MAX */
	ck_assert_uint_eq(learn_cap_decide(&law, &st, &w), 256);
	ck_assert_uint_eq(learn_cap_decide(&law, &st, &w), 256);
	ck_assert_uint_eq(learn_cap_decide(&law, &st, &w), 2048);
	ck_assert_uint_eq(st.changes, 2);
	/* overflows without a refill (the ring never ran dry): one step */
	struct learn_cls o = { .cap = 32 };
	struct learn_win x = { .refills = 0, .blocks = 100, .overflows = 800 };
	ck_assert_uint_eq(learn_cap_decide(&law, &o, &x), 36);
	/* refills and overflows with a hit rate inside the band: nothing */
	struct learn_cls in = { .cap = 32 };
	struct learn_win y = { .refills = 100, .blocks = 1400, .overflows = 600 }; /* 0.650 */
	ck_assert_uint_eq(learn_cap_decide(&law, &in, &y), 32);
	/* too few samples: nothing */
	struct learn_win z = { .refills = 5, .blocks = 60, .overflows = 60 };
	ck_assert_uint_eq(learn_cap_decide(&law, &in, &z), 32);
}
END_TEST

/* A class busy once (grown to 256), then quiet. */
static struct learn_cls grown(const struct learn_law *law)
{
	struct learn_cls st = { .cap = 32, .home = 32 };
	struct learn_win w = churn();
	ck_assert_uint_eq(learn_cap_decide(law, &st, &w), 256);
	ck_assert(st.used);
	return st;
}

static const struct learn_win quiet_win = { 0 };

/* Quiet windows before a give-back by halving, at law_default's dwell. */
#define Q (LEARN_QUIET_DWELLS * 3u)

/* Quiet windows until CAP changes; how many it took (limit: none). */
static unsigned quiet_until_change(const struct learn_law *law, struct learn_cls *st, unsigned limit)
{
	uint32_t cap = st->cap;
	for (unsigned i = 1; i <= limit; i++)
		if (learn_cap_decide(law, st, &quiet_win) != cap)
			return i;
	return 0;
}

START_TEST(test_give_back)
{
	struct learn_law law = law_default(); /* dwell 3: give back after Q quiet windows */
	struct learn_cls st = grown(&law);
	ck_assert_uint_eq(quiet_until_change(&law, &st, 1000), Q);
	ck_assert_uint_eq(st.cap, 128); /* half */
	ck_assert_uint_eq(quiet_until_change(&law, &st, 1000), Q);
	ck_assert_uint_eq(st.cap, 64);
	ck_assert_uint_eq(quiet_until_change(&law, &st, 1000), Q);
	ck_assert_uint_eq(st.cap, 32);
	/* never below home */
	ck_assert_uint_eq(quiet_until_change(&law, &st, 1000), 0);
	ck_assert_uint_eq(st.cap, 32);
	/* a class never busy keeps its CAP however long it is quiet (the
	 * few blocks it has seen are all its ring can hold) */
	struct learn_cls idle = { .cap = 256, .home = 32 };
	ck_assert_uint_eq(quiet_until_change(&law, &idle, 1000), 0);
	/* misses without an overflow (a class's first refills: its ring
	 * was never full) do not make it busy */
	struct learn_cls cold = { .cap = 32, .home = 32 };
	struct learn_win first = { .refills = 400, .blocks = 400, .overflows = 0 };
	ck_assert_uint_eq(learn_cap_decide(&law, &cold, &first), 36);
	ck_assert(!cold.used);
	ck_assert_uint_eq(quiet_until_change(&law, &cold, 1000), 0);
	/* a window with some traffic is not quiet: the count starts again */
	struct learn_cls t = grown(&law);
	struct learn_win few = { .refills = 1, .blocks = 5, .overflows = 0 };
	for (int i = 0; i < 20; i++) {
		ck_assert_uint_eq(quiet_until_change(&law, &t, Q - 1), 0);
		learn_cap_decide(&law, &t, &few);
	}
	ck_assert_uint_eq(t.cap, 256);
}
END_TEST

START_TEST(test_give_back_backoff)
{
	struct learn_law law = law_default();
	struct learn_cls st = grown(&law);
	struct learn_win busy = churn();
	ck_assert_uint_eq(quiet_until_change(&law, &st, 1000), Q); /* 128 */
	/* it was busy after all: it grows back after the dwell ... */
	ck_assert_uint_eq(learn_cap_decide(&law, &st, &busy), 128);
	ck_assert_uint_eq(learn_cap_decide(&law, &st, &busy), 128);
	ck_assert_uint_eq(learn_cap_decide(&law, &st, &busy), 1024);
	/* ... and the next give-back waits twice as long, then four times */
	ck_assert_uint_eq(quiet_until_change(&law, &st, 1000), 2 * Q);
	ck_assert_uint_eq(st.cap, 512);
	for (int i = 0; i < 3; i++)
		learn_cap_decide(&law, &st, &busy);
	ck_assert_uint_eq(st.cap, 2048);
	ck_assert_uint_eq(quiet_until_change(&law, &st, 1000), 4 * Q);
	ck_assert_uint_eq(st.cap, 1024);
	/* a give-back no growth undoes within two dwells was right: the
	 * wait is back to Q */
	ck_assert_uint_eq(quiet_until_change(&law, &st, 1000), Q);
	ck_assert_uint_eq(st.cap, 512);
	ck_assert_uint_eq(quiet_until_change(&law, &st, 1000), Q);
	ck_assert_uint_eq(st.cap, 256);
	/* the wait stops doubling at 2^LEARN_BACKOFF_MAX */
	struct learn_cls b = grown(&law);
	for (int k = 0; k < LEARN_BACKOFF_MAX + 3; k++) {
		unsigned n = quiet_until_change(&law, &b, 10000);
		unsigned want = Q << (k < LEARN_BACKOFF_MAX ? k : LEARN_BACKOFF_MAX);
		ck_assert_uint_eq(n, want);
		for (int i = 0; i < 3; i++)
			learn_cap_decide(&law, &b, &busy);
		ck_assert_uint_gt(b.cap, 128);
	}
}
END_TEST

START_TEST(test_give_back_moved)
{
	struct learn_law law = law_default();
	struct learn_cls st = grown(&law);
	struct learn_win moved = { .moved = 1 };
	/* the dwell after the growth holds */
	ck_assert_uint_eq(learn_cap_decide(&law, &st, &moved), 256);
	ck_assert_uint_eq(learn_cap_decide(&law, &st, &moved), 256);
	/* quiet for two windows while another class woke: all it grew
	 * goes back at once */
	ck_assert_uint_eq(learn_cap_decide(&law, &st, &moved), 32);
	/* one quiet window is not enough */
	struct learn_cls one = grown(&law);
	struct learn_win few = { .refills = 1, .blocks = 5, .overflows = 0, .moved = 1 };
	ck_assert_uint_eq(learn_cap_decide(&law, &one, &few), 256);
	ck_assert_uint_eq(learn_cap_decide(&law, &one, &few), 256); /* the dwell is over */
	ck_assert_uint_eq(learn_cap_decide(&law, &one, &moved), 256);
	ck_assert_uint_eq(learn_cap_decide(&law, &one, &moved), 32);
	/* a class never busy keeps its CAP */
	struct learn_cls idle = { .cap = 256, .home = 32 };
	for (int i = 0; i < 10; i++)
		ck_assert_uint_eq(learn_cap_decide(&law, &idle, &moved), 256);
}
END_TEST

START_TEST(test_woke)
{
	struct learn_law law = law_default();
	struct learn_win busy = churn(), few = { .refills = 50, .overflows = 49 };
	/* quiet for two windows, then enough misses: woke */
	struct learn_cls st = { .cap = 256, .home = 32 };
	learn_cap_decide(&law, &st, &quiet_win);
	ck_assert(!learn_woke(&law, &st, &busy)); /* one quiet window */
	learn_cap_decide(&law, &st, &quiet_win);
	ck_assert(learn_woke(&law, &st, &busy));
	ck_assert(!learn_woke(&law, &st, &few)); /* 99 misses */
	/* busy all along: did not wake */
	struct learn_cls on = { .cap = 256, .home = 32 };
	learn_cap_decide(&law, &on, &busy);
	ck_assert(!learn_woke(&law, &on, &busy));
	/* a class given back that misses again was given back wrongly: the
	 * demand did not move */
	struct learn_cls back = { .cap = 256, .home = 128, .used = 1 };
	ck_assert_uint_eq(quiet_until_change(&law, &back, 1000), Q);
	ck_assert_uint_eq(back.cap, 128);
	for (int i = 0; i < 2; i++)
		learn_cap_decide(&law, &back, &quiet_win);
	ck_assert_uint_ge(back.quiet, 2);
	ck_assert(!learn_woke(&law, &back, &busy));
	/* ... until two dwells after the give-back */
	for (int i = 0; i < 6; i++)
		learn_cap_decide(&law, &back, &quiet_win);
	ck_assert(learn_woke(&law, &back, &busy));
}
END_TEST

START_TEST(test_budget)
{
	const uint64_t MiB = 1 << 20, peak = 64 * MiB;
	struct learn_budget b = { 0 };
	/* no growth wanted: nothing granted, no episode */
	ck_assert_uint_eq(learn_budget_decide(&b, 0, peak, false), 0);
	ck_assert_uint_eq(b.episodes, 0);
	/* no measure of the memory: the law alone */
	ck_assert_uint_eq(learn_budget_decide(&b, 10 * MiB, 0, false), 10 * MiB);
	b = (struct learn_budget){ 0 };
	/* an episode starts at the peak / 64 ... */
	ck_assert_uint_eq(learn_budget_decide(&b, 10 * MiB, peak, false), MiB);
	ck_assert_uint_eq(b.episodes, 1);
	/* ... and grows fourfold while the peak stays within 1% */
	ck_assert_uint_eq(learn_budget_decide(&b, 10 * MiB, peak + peak / 200, false), 4 * MiB);
	ck_assert_uint_eq(learn_budget_decide(&b, 10 * MiB, peak + peak / 100, false), 10 * MiB);
	ck_assert_uint_eq(b.budget, 16 * MiB);
	/* a budget that did not bind is not raised */
	ck_assert_uint_eq(learn_budget_decide(&b, 20 * MiB, peak, false), 16 * MiB);
	ck_assert_uint_eq(learn_budget_decide(&b, 20 * MiB, peak, false), 20 * MiB);
	/* the growth ends: the episode too */
	ck_assert_uint_eq(learn_budget_decide(&b, 0, peak, false), 0);
	ck_assert_uint_eq(b.budget, 0);

	/* the peak follows the loans: frozen at what they have */
	ck_assert_uint_eq(learn_budget_decide(&b, 10 * MiB, peak, false), MiB);
	ck_assert_uint_eq(b.episodes, 2);
	ck_assert_uint_eq(learn_budget_decide(&b, 10 * MiB, peak + peak / 100 + 1, false), MiB);
	ck_assert_uint_eq(b.frozen, 1);
	ck_assert_uint_eq(b.freezes, 1);
	for (int i = 0; i < 10; i++)
		ck_assert_uint_eq(learn_budget_decide(&b, 10 * MiB, peak + peak / 100 + 1, false), MiB);
	/* less wanted: less granted, and the budget stays */
	ck_assert_uint_eq(learn_budget_decide(&b, MiB / 2, 2 * peak, false), MiB / 2);
	ck_assert_uint_eq(learn_budget_decide(&b, 10 * MiB, 2 * peak, false), MiB);
	/* the demand moved: a new episode from the peak now, keeping
	 * what was lent */
	ck_assert_uint_eq(learn_budget_decide(&b, 10 * MiB, 2 * peak, true), 2 * MiB);
	ck_assert_uint_eq(b.frozen, 0);
	ck_assert_uint_eq(b.episodes, 3);
	ck_assert_uint_eq(learn_budget_decide(&b, 10 * MiB, 2 * peak, false), 8 * MiB);
	/* the peak rises by more than the rings could hold: the program's
	 * own memory; the episode counts from there, and the budget waits
	 * a window */
	struct learn_budget e = { 0 };
	ck_assert_uint_eq(learn_budget_decide(&e, 10 * MiB, peak, false), MiB);
	ck_assert_uint_eq(learn_budget_decide(&e, 10 * MiB, peak + 2 * MiB, false), MiB);
	ck_assert_uint_eq(e.frozen, 0);
	ck_assert_uint_eq(e.peak0, peak + 2 * MiB);
	ck_assert_uint_eq(learn_budget_decide(&e, 10 * MiB, peak + 2 * MiB, false), 4 * MiB);
	/* ... a rise the loans can explain still counts */
	ck_assert_uint_eq(learn_budget_decide(&e, 10 * MiB, peak + 3 * MiB, false), 4 * MiB);
	ck_assert_uint_eq(e.frozen, 1);
	/* each grown class gets the same share of its growth; a class at
	 * or below its home is not lent anything */
	ck_assert_uint_eq(learn_lent(16, 128, 10 * MiB, 10 * MiB), 128);
	ck_assert_uint_eq(learn_lent(16, 128, 20 * MiB, 10 * MiB), 128);
	ck_assert_uint_eq(learn_lent(16, 128, 5 * MiB, 10 * MiB), 16 + 56);
	ck_assert_uint_eq(learn_lent(8, 64, 5 * MiB, 10 * MiB), 8 + 28);
	ck_assert_uint_eq(learn_lent(16, 128, 0, 10 * MiB), 16);
	ck_assert_uint_eq(learn_lent(16, 12, 0, 10 * MiB), 12);
	ck_assert_uint_eq(learn_lent(16, 16, 1, 10 * MiB), 16);
	/* an episode's first budget is never below what is lent */
	struct learn_budget c = { .budget = 5 * MiB, .granted = 5 * MiB, .frozen = 1 };
	ck_assert_uint_eq(learn_budget_decide(&c, 10 * MiB, peak, true), 5 * MiB);
	ck_assert_uint_eq(learn_budget_decide(&c, 10 * MiB, peak, false), 10 * MiB);
}
END_TEST

START_TEST(test_wmax_score)
{
	/* a page hit rate of 0.9, no waste */
	struct learn_wgroup g = { .refills = 1000, .misses = 100, .given = 1000000, .waste = 0 };
	ck_assert_int_eq(learn_wmax_score(&g), 900000);
	/* the same misses with 5% of the bytes wasted: 0.05 less */
	g.waste = 50000;
	ck_assert_int_eq(learn_wmax_score(&g), 850000);
	/* fewer misses bought with waste: better only when the misses saved
	 * outweigh the bytes */
	struct learn_wgroup cheap = { .refills = 1000, .misses = 20, .given = 1000000, .waste = 30000 };
	struct learn_wgroup dear = { .refills = 1000, .misses = 20, .given = 1000000, .waste = 200000 };
	ck_assert_int_gt(learn_wmax_score(&cheap), 900000);
	ck_assert_int_lt(learn_wmax_score(&dear), 900000);
	struct learn_wgroup none = { 0 };
	ck_assert_int_eq(learn_wmax_score(&none), 0);
}
END_TEST

START_TEST(test_wmax_verdict)
{
	/* no canary: trial against base, adopt at +1% (10 thousandths) */
	ck_assert_int_eq(learn_wmax_verdict(800000, 810000, 0, 0, false, 10), LEARN_ADOPT);
	ck_assert_int_eq(learn_wmax_verdict(800000, 809999, 0, 0, false, 10), LEARN_ROLLBACK);
	ck_assert_int_eq(learn_wmax_verdict(800000, 700000, 0, 0, false, 10), LEARN_ROLLBACK);
	ck_assert_int_eq(learn_wmax_verdict(800000, 805000, 0, 0, false, 5), LEARN_ADOPT);
	/* canary: the canary rose 3%, but so did the control (the phase
	 * changed, not W_MAX): roll back */
	ck_assert_int_eq(learn_wmax_verdict(800000, 830000, 700000, 730000, true, 10), LEARN_ROLLBACK);
	/* the canary rose 3% while the control fell 1%: adopt */
	ck_assert_int_eq(learn_wmax_verdict(800000, 830000, 700000, 690000, true, 10), LEARN_ADOPT);
	/* the canary fell less than the control did: the candidate helped */
	ck_assert_int_eq(learn_wmax_verdict(800000, 790000, 700000, 650000, true, 10), LEARN_ADOPT);
	/* ... the canary fell as much: roll back */
	ck_assert_int_eq(learn_wmax_verdict(800000, 750000, 700000, 650000, true, 10), LEARN_ROLLBACK);
}
END_TEST

/* ---- the mid tier's W_MAX (heap.c, mid_borrow) ---- */

START_TEST(test_mid_borrow)
{
	hak_init();
	void *q[8];
	/* blocks of 5 KiB wait in this thread's ring */
	for (int i = 0; i < 8; i++)
		q[i] = hak_malloc(5000);
	for (int i = 0; i < 8; i++)
		hak_free(q[i]);
	/* W_MAX 1.00 (the default): a 4000-byte request gets its own class */
	ck_assert_uint_eq(hak_cfg.wmax[TIER_MID], 100);
	void *p = hak_malloc(4000);
	ck_assert_uint_eq(hak_usable_size(p), 4096);
	hak_free(p);
	struct hak_stats a, b;
	hak_stats_get(&a);
	/* W_MAX 1.60: a class with no page of its own takes a larger block
	 * from the thread's rings instead of a new page, the smallest
	 * there within 1.6 x the request */
	knob_set_wmax(TIER_MID, 160);
	void *r = hak_malloc(3000); /* class 3 KiB, no page: a 4 KiB block */
	ck_assert_uint_eq(hak_usable_size(r), 4096);
	void *s = hak_malloc(3300); /* class 3.5 KiB, no page: 4 or 5 KiB */
	ck_assert_uint_gt(hak_usable_size(s), 3584);
	ck_assert_uint_le(hak_usable_size(s), 3300 * 16 / 10);
	hak_stats_get(&b);
	ck_assert_uint_ge(b.ace_given_bytes - b.ace_request_bytes,
			  a.ace_given_bytes - a.ace_request_bytes + (4096 - 3000) + (hak_usable_size(s) - 3300));
	/* an aligned request keeps its alignment: 2048 at 2048 never gets a
	 * 2.5 KiB block (2560 is not a multiple of 2048), though one waits
	 * in the ring and class 2 KiB has no page */
	for (int i = 0; i < 8; i++)
		q[i] = hak_malloc(2500);
	for (int i = 0; i < 8; i++)
		hak_free(q[i]);
	void *t = hak_aligned_alloc(2048, 2048);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq((uintptr_t)t % 2048, 0);
	ck_assert_uint_eq(hak_usable_size(t), 2048);
	hak_free(r);
	hak_free(s);
	hak_free(t);
	/* a canary gives the odd classes their own W_MAX */
	knob_set_wmax(TIER_MID, 100);
	knob_set_wmax_canary(1ull << 27, 160);
	ck_assert_uint_eq(ace_wmax_limit_mid(27, 1000), 1600);
	ck_assert_uint_eq(ace_wmax_limit_mid(28, 1000), 1000);
	knob_set_wmax_canary(0, 0);
	ck_assert_uint_eq(ace_wmax_limit_mid(27, 1000), 1000);
}
END_TEST

/* ---- the thread ---- */

static bool wait_for(bool (*cond)(void *), void *arg, int seconds)
{
	for (int i = 0; i < seconds * 100; i++) {
		if (cond(arg))
			return true;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return cond(arg);
}

static bool running(void *arg)
{
	(void)arg;
	return learner_running();
}

/* A mid batch bigger than the ring: its frees overflow the ring. */
static void mid_batch(size_t size, int n)
{
	void *p[600];
	for (int i = 0; i < n; i++)
		p[i] = hak_malloc(size);
	for (int i = 0; i < n; i++)
		hak_free(p[i]);
}

struct cap_wait {
	unsigned c;
	uint32_t was;
};

static bool cap_moved(void *arg)
{
	struct cap_wait *w = arg;
	mid_batch(ace_class_size[w->c], 500);
	return knob_cap(w->c) > w->was;
}

static void learn_fast(void)
{
	/* below HAKMEM_LEARN_WINDOW_MS's range on purpose: written straight
	 * into the table, as a test may */
	atomic_store(&hak_cfg.learn_window_ms, 20);
	atomic_store(&hak_cfg.cap_dwell_sec_mid, 1);
	atomic_store(&hak_cfg.learn_min_samples, 64);
	atomic_store(&hak_cfg.learn, 1);
}

START_TEST(test_off_by_default)
{
	hak_free(hak_malloc(5000));
	mid_batch(8192, 100);
	ck_assert(!learner_running());
}
END_TEST

START_TEST(test_thread_changes_cap)
{
	hak_init();
	learn_fast();
	unsigned c = ace_class(8192);
	uint32_t home = knob_cap(c);
	struct cap_wait w = { c, home };
	mid_batch(8192, 100); /* a slow path: the thread starts */
	ck_assert(wait_for(running, NULL, 20));
	/* it starts every mid class from its home; a ring that overflows
	 * and runs dry grows */
	ck_assert_msg(wait_for(cap_moved, &w, 60), "cap of class %u stayed %u", c, knob_cap(c));
	struct learner_report r;
	learner_report(&r);
	ck_assert_uint_ge(r.changes, 1);
	ck_assert(r.moved[c - HAK_CLS_MID]);
	ck_assert_uint_gt(r.cap[c - HAK_CLS_MID], w.was);
	struct hak_stats st;
	hak_stats_get(&st);
	ck_assert_uint_ge(st.learner_changes, 1);
	learner_stop();
	ck_assert(!learner_running());
	/* allocation goes on without it */
	mid_batch(8192, 500);
}
END_TEST

START_TEST(test_fork_and_exit)
{
	hak_init();
	learn_fast();
	mid_batch(8192, 100);
	ck_assert(wait_for(running, NULL, 20));
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* the child: no learner thread until its next slow path starts
		 * one; then it exits through the destructor that stops it */
		int bad = learner_running() ? 10 : 0;
		mid_batch(8192, 500);
		if (!wait_for(running, NULL, 20))
			bad |= 1;
		unsigned c = ace_class(8192);
		struct cap_wait w = { c, knob_cap(c) };
		if (w.was < HAK_BIN_CAP_MAX && !wait_for(cap_moved, &w, 60))
			bad |= 2;
		exit(bad);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	/* the parent's learner still runs, and allocation too */
	ck_assert(learner_running());
	mid_batch(8192, 500);
	/* a process that exits with the learner running exits (the
	 * destructor stops and joins it) */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* a class whose ring is empty: a slow path (the ring of 8 KiB
		 * may hold all 100, with the CAP the parent's learner set) */
		mid_batch(24576, 100);
		wait_for(running, NULL, 20);
		exit(learner_running() ? 0 : 3);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
}
END_TEST

static Suite *learner_suite(void)
{
	Suite *s = suite_create("learner");
	TCase *tc = tcase_create("law");
	tcase_add_test(tc, test_hit_estimate);
	tcase_add_test(tc, test_inside_band);
	tcase_add_test(tc, test_step_toward_target);
	tcase_add_test(tc, test_dwell);
	tcase_add_test(tc, test_clamps);
	tcase_add_test(tc, test_band_edge);
	tcase_add_test(tc, test_few_samples);
	tcase_add_test(tc, test_grow_eightfold);
	tcase_add_test(tc, test_give_back);
	tcase_add_test(tc, test_give_back_backoff);
	tcase_add_test(tc, test_give_back_moved);
	tcase_add_test(tc, test_woke);
	tcase_add_test(tc, test_budget);
	tcase_add_test(tc, test_wmax_score);
	tcase_add_test(tc, test_wmax_verdict);
	suite_add_tcase(s, tc);
	TCase *tb = tcase_create("borrow");
	tcase_add_test(tb, test_mid_borrow);
	suite_add_tcase(s, tb);
	TCase *tt = tcase_create("thread");
	tcase_set_timeout(tt, 120);
	tcase_add_test(tt, test_off_by_default);
	tcase_add_test(tt, test_thread_changes_cap);
	tcase_add_test(tt, test_fork_and_exit);
	suite_add_tcase(s, tt);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(learner_suite());
	/* every test in a process of its own: the thread tests change
	 * hakmem's global state */
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
