/* learner.c - background tuning of the mid tier's cache caps (CAP) and
 * W_MAX, from live counters (HAKMEM_LEARN=1; off by default).
 *
 * What it tunes, in hakmem's terms:
 *
 *  - CAP of a mid class (1 KiB - 32 KiB) is the capacity, in blocks, of
 *    each thread's ring of that class (its bin: the thread cache that the
 *    inline malloc and free paths pop and push; knob cap[c], default
 *    HAKMEM_POOL_RING_CAP).  A hit is an operation the ring serves: a
 *    malloc that finds a block there, a free that finds room.  A miss is
 *    a malloc that finds the ring empty (a refill, CC_REFILLS) or a free
 *    that finds it full (an overflow, CC_OVERFLOWS: the block goes back
 *    to its page).
 *
 *    The fast paths count nothing (that would cost instructions on every
 *    malloc and free), so hits are estimated from what the slow paths
 *    see: each block a refill put in the ring (CC_BLOCKS) but the one it
 *    returned is counted as one malloc the ring served later.  The frees
 *    the ring took, and the mallocs that reused them, are not seen, so
 *    the estimate is a lower bound of the true hit rate:
 *        hit = (blocks - refills) / (blocks + overflows)
 *    over refills + overflows samples.  A class whose ring serves
 *    everything shows no miss, so no sample, and its CAP stays.
 *
 *  - W_MAX of the mid tier (wmax[TIER_MID]): a mid malloc that finds no
 *    page with room may take a free block of a larger class from the
 *    thread's rings when its size is within W_MAX of the request (heap.c,
 *    mid_borrow).  Trials (HAKMEM_WMAX_LEARN=1) try each candidate of
 *    HAKMEM_WMAX_CANDIDATES_MID.
 *
 * The control law is pure functions (a window of counters and a state in,
 * a decision out), tested with synthetic windows (tests/check_learner.c):
 *
 *   Every class starts from its default CAP (its home,
 *   HAKMEM_POOL_RING_CAP or a page's worth of blocks) and moves only on
 *   what its windows show: a run shorter than a window, or a class whose
 *   ring serves it, is left as it is.  (A prior of 8 times the home, the
 *   law's first version, cost every program the memory of rings it did
 *   not need: 7% more peak RSS in bench/churn mid at 0.25 s.)
 *
 *   learn_cap_decide: per class and window.  Inside the band (target
 *   +- LEARN_BAND) nothing changes.  Below it CAP grows, above it CAP
 *   shrinks, by HAKMEM_CAP_STEP_MID blocks, doubled for each further step
 *   in the same direction (step, 2 step, 4 step, ... at most 64 step), so
 *   that a CAP far off reaches its value in a few steps; a step the other
 *   way starts again at one step.  A window below the band in which the
 *   ring both overflowed and ran dry (refills and overflows: the blocks
 *   it let go to their pages were wanted back) grows CAP eightfold
 *   (LEARN_GROW) when that is more than the step.  After a change, the
 *   class waits the dwell time (HAKMEM_CAP_DWELL_SEC_MID, in whole
 *   windows) before the next one, so that the windows judge the new CAP.
 *   CAP stays within HAKMEM_CAP_MIN_MID and HAKMEM_CAP_MAX_MID.  A window
 *   with fewer than HAKMEM_LEARN_MIN_SAMPLES misses changes nothing by
 *   the hit rate.  A signal on the band's edge counts as inside, and a
 *   step down needs the hit rate above the band's upper edge: a signal
 *   that wavers around one edge moves CAP one way only.
 *
 *   The budget (learn_budget_decide): what the CAPs the law chose may
 *   cost.  A CAP above its home lends the rings (CAP - home) blocks of
 *   the class in each heap alive; the learner grants the sum up to a
 *   budget, each grown class the same share of its growth (learn_lent).
 *   The first growth begins an episode with a budget of the process's
 *   peak RSS / 64 (getrusage's ru_maxrss: the measure the bench
 *   reports); a window that used the whole budget while the peak stayed
 *   within 1% of the episode's start multiplies it by 4, and a window
 *   that finds the peak risen more freezes it at what is granted (the
 *   law's CAPs become what they got, and no class grows, even from
 *   another's share, until the demand moves).  A window whose peak rose
 *   by more than all that was lent is not judged: the rings cannot hold
 *   more than that, so the program's own memory grew (a phase that
 *   began a window before), and the episode counts from the new peak.
 *   A change of demand (a class with fewer than
 *   HAKMEM_LEARN_MIN_SAMPLES misses in each of two windows that has
 *   them now) begins a new episode from the peak then, keeping what is
 *   lent.  Why: in a batch, the blocks a grown ring keeps were live a
 *   moment before, so the peak does not move and the budget soon covers
 *   the law; in random churn of many classes (bench/churn mid), each
 *   ring keeps more of its own swings free beside the same live blocks,
 *   and the eightfold growth cost 10% more peak RSS for 12% more speed.
 *   The peak stops that within a window or two, after about 1%.
 *
 *   Give-back: a class that has been busy (a window with
 *   HAKMEM_LEARN_MIN_SAMPLES overflows: its ring was full) and is above
 *   its home, quiet (no refill, no overflow) for 32 dwells, halves its
 *   CAP (not below home); quiet for two windows while another class
 *   woke (learn_woke: quiet for two windows before, enough misses now,
 *   and not a class just given back, whose misses say only that the
 *   give-back was wrong: the program's demand moved), it goes back to
 *   home at once.  A heap
 *   trims its ring to the new CAP at its next refill.  A quiet class
 *   cannot be told from one whose ring serves every call (the fast
 *   paths count nothing); such a class overflows, grows back, and its
 *   next give-back waits twice as long (up to 32 times); a give-back
 *   that no growth undoes within two dwells resets the wait.  A class
 *   never busy keeps its CAP: up to that many of its blocks freed at
 *   once stay in a thread's ring (HAKMEM_CAP_MAX_MID bounds it).  What a
 *   ring holds beyond its
 *   home is a loan, which the heap takes back without waiting for a
 *   window: a mid refill that would take a new page first empties every
 *   grown ring of another class that holds more than its default (pool.c,
 *   pool_return_loans), and the pages that empty serve it.  The law
 *   need not see a change of phase before the memory moves.
 *
 *   learn_wmax_score, learn_wmax_verdict: a trial of a candidate W_MAX
 *   measures a score over HAKMEM_WMAX_TRIAL_SEC before it (the base) and
 *   over as long with the candidate.  The score of a group of classes is
 *   its page hit rate (refills that needed no new page: 1 - misses /
 *   refills) minus the fraction of the bytes it handed out that the
 *   round-up wasted (CC_BORROW_WASTE: ACE's waste is the penalty).  With
 *   HAKMEM_WMAX_CANARY=1 the candidate goes to the odd mid classes only
 *   (the canary), the even ones keep W_MAX (the control), and the verdict
 *   compares the canary's change of score with the control's over the
 *   same time, so a change of phase during the trial moves both; with 0
 *   it goes to every class and the verdict compares trial with base.  The
 *   candidate is adopted when the score improves by HAKMEM_WMAX_ADOPT_PCT
 *   (of a score of 1) and rolled back otherwise.
 *
 * The thread: started lazily by the first malloc slow path after hakmem
 * is initialised (learner_poke, from malloc.c: never in the constructor,
 * never with a lock of hakmem held), it wakes every
 * HAKMEM_LEARN_WINDOW_MS, sums the per-class counters (heap_counters_sum,
 * which holds the heap registry's lock for the sum: a thread being born
 * or exiting may wait those microseconds; no malloc or free does) and
 * writes knobs through the seam (knob_set_cap, knob_set_wmax*: atomics
 * and an epoch that heaps read on their refills).  It never allocates.
 * At exit (a destructor) it is told to stop and joined.  In the child of
 * fork only the forking thread lives: the child's first malloc slow path
 * starts a learner of its own, which goes on from the knobs the child
 * inherited (its counters start from what the child inherited too).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------
 * The control law: pure functions.
 * ------------------------------------------------------------------- */

/* Hit rate in per mille, and the samples it stands on. */
uint32_t learn_hit_permille(const struct learn_win *w, uint64_t *samples)
{
	uint64_t s = w->refills + w->overflows;
	uint64_t hits = w->blocks > w->refills ? w->blocks - w->refills : 0;
	uint64_t all = w->blocks + w->overflows;
	*samples = s;
	if (all == 0)
		return 1000;
	return (uint32_t)(hits * 1000 / all);
}

uint32_t learn_cap_decide(const struct learn_law *law, struct learn_cls *st, const struct learn_win *w)
{
	uint64_t samples;
	if (st->cap < law->min)
		st->cap = law->min;
	if (st->cap > law->max)
		st->cap = law->max;
	if (st->home == 0)
		st->home = st->cap;
	st->hit = learn_hit_permille(w, &samples);
	st->samples = samples;
	bool quiet = w->refills == 0 && w->overflows == 0;
	st->quiet = quiet ? st->quiet + 1 : 0;
	if (w->overflows >= law->min_samples)
		st->used = 1;
	uint32_t dwell = law->dwell > 0 ? law->dwell : 1;
	/* a give-back that no growth undid within two dwells was right */
	if (st->since_back > 0 && ++st->since_back > 2 * dwell + 1) {
		st->since_back = 0;
		st->backoff = 0;
	}
	if (st->dwell_left > 0) {
		st->dwell_left--;
		return st->cap;
	}
	/* A class the law grew that is quiet (no refill, no overflow) gives
	 * back: all it grew when another class woke meanwhile (the
	 * program's demand moved), else half of it after 32 dwells (a
	 * wrong give-back costs a window of trips through the pages and
	 * pages left scattered, so the learner seldom risks it).  A
	 * ring that serves every call is quiet too; such a class overflows
	 * at once, grows back, and the next give-back waits twice as long. */
	uint64_t need = ((uint64_t)LEARN_QUIET_DWELLS * dwell) << st->backoff;
	uint64_t moved_need = (uint64_t)LEARN_QUIET_MOVED << st->backoff;
	if (quiet && st->used && st->cap > st->home &&
	    ((w->moved && st->quiet >= moved_need) || st->quiet >= need)) {
		uint32_t cap = w->moved ? st->home : st->cap / 2 > st->home ? st->cap / 2 : st->home;
		if (cap < law->min)
			cap = law->min;
		st->cap = cap;
		st->run = 0;
		st->quiet = 0;
		st->since_back = 1;
		st->dwell_left = dwell - 1;
		st->changes++;
		return st->cap;
	}
	if (samples < law->min_samples)
		return st->cap;
	int dir;
	if (st->hit + law->band < law->target)
		dir = 1; /* below the band: a bigger ring */
	else if (st->hit > law->target + law->band)
		dir = -1; /* above it: a smaller one will do */
	else {
		st->run = 0;
		return st->cap;
	}
	if ((dir > 0) != (st->run > 0) || st->run == 0)
		st->run = 0;
	unsigned k = (unsigned)(st->run < 0 ? -st->run : st->run);
	uint64_t delta = (uint64_t)law->step << (k < LEARN_STEP_DOUBLINGS ? k : LEARN_STEP_DOUBLINGS);
	/* The ring overflowed into its pages and ran dry again within the
	 * window: the blocks it let go were wanted back, through the pages
	 * (and their trips to the shared stacks, and new pages).  A bigger
	 * ring costs nothing until frees fill it, so CAP grows eightfold. */
	if (dir > 0 && w->refills > 0 && w->overflows > 0 &&
	    (uint64_t)st->cap * (LEARN_GROW - 1) > delta)
		delta = (uint64_t)st->cap * (LEARN_GROW - 1);
	uint64_t cap = st->cap;
	if (dir > 0)
		cap = cap + delta > law->max ? law->max : cap + delta;
	else
		cap = cap < law->min + delta ? law->min : cap - delta;
	if (cap == st->cap)
		return st->cap; /* at a clamp */
	if (dir > 0 && st->since_back > 0) {
		/* the give-back was wrong: wait longer before the next */
		if (st->backoff < LEARN_BACKOFF_MAX)
			st->backoff++;
		st->since_back = 0;
	}
	st->run += dir;
	st->dwell_left = law->dwell > 0 ? law->dwell - 1 : 0; /* the next change: dwell windows on */
	st->cap = (uint32_t)cap;
	st->changes++;
	return st->cap;
}

bool learn_woke(const struct learn_law *law, const struct learn_cls *st, const struct learn_win *w)
{
	return st->quiet >= LEARN_QUIET_MOVED && st->since_back == 0 &&
	       w->refills + w->overflows >= law->min_samples;
}

uint64_t learn_budget_decide(struct learn_budget *b, uint64_t want, uint64_t peak, bool moved)
{
	if (want == 0) {
		/* every class at or below its home: the episode is over */
		b->budget = 0;
		b->granted = 0;
		b->frozen = 0;
		return 0;
	}
	if (peak == 0) {
		/* no measure of the memory: the law alone */
		b->granted = want;
		return want;
	}
	if (b->budget == 0 || moved) {
		/* An episode begins: the first growth, or the program's demand
		 * moved (its own memory may have moved with it).  What is
		 * lent already stays lent. */
		uint64_t start = peak / LEARN_BUDGET_START;
		if (b->budget < start)
			b->budget = start;
		if (b->budget < b->granted)
			b->budget = b->granted;
		b->peak0 = peak;
		b->frozen = 0;
		b->episodes++;
	} else if (!b->frozen) {
		if (peak > b->peak_last + b->granted) {
			/* the peak rose by more than the rings could hold: the
			 * program's own memory grew (a phase of it that was
			 * under way when the demand moved), not the loans'; the
			 * episode counts from here, and waits a window */
			b->peak0 += peak - b->peak_last;
		} else if (peak > b->peak0 + b->peak0 / LEARN_BUDGET_COST) {
			/* the peak followed the loans: they keep what they
			 * have and get no more in this episode */
			b->frozen = 1;
			b->freezes++;
			b->budget = b->granted;
		} else if (want > b->budget && b->granted >= b->budget) {
			/* the last window used the whole budget and the peak
			 * did not follow: the blocks the rings hold were blocks
			 * the program had live before, not more memory */
			b->budget *= LEARN_BUDGET_RAISE;
		}
	}
	b->peak_last = peak;
	b->granted = want < b->budget ? want : b->budget;
	return b->granted;
}

uint32_t learn_lent(uint32_t home, uint32_t cap, uint64_t granted, uint64_t want)
{
	if (cap <= home || granted >= want)
		return cap;
	return home + (uint32_t)((uint64_t)(cap - home) * granted / want);
}

int64_t learn_wmax_score(const struct learn_wgroup *g)
{
	if (g->refills == 0)
		return 0;
	int64_t hit = (int64_t)(LEARN_SCORE_ONE - g->misses * LEARN_SCORE_ONE / g->refills);
	int64_t waste = g->given ? (int64_t)(g->waste * LEARN_SCORE_ONE / g->given) : 0;
	return hit - waste;
}

int learn_wmax_verdict(int64_t base_canary, int64_t trial_canary, int64_t base_control,
		       int64_t trial_control, bool canary, uint32_t adopt_thousandths)
{
	int64_t gain = trial_canary - base_canary;
	if (canary)
		gain -= trial_control - base_control;
	return gain >= (int64_t)adopt_thousandths * (LEARN_SCORE_ONE / 1000) ? LEARN_ADOPT : LEARN_ROLLBACK;
}

/* ---------------------------------------------------------------------
 * The thread.
 * ------------------------------------------------------------------- */

enum { LS_OFF, LS_STARTING, LS_RUNNING, LS_STOPPED };
static _Atomic int learn_state = LS_OFF;
static pthread_t learn_thread;
static pthread_mutex_t learn_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t learn_cv;
static _Atomic int learn_stop;
static _Atomic int learn_atfork_done;

/* What the statistics show (learner_report). */
static _Atomic uint64_t learn_windows, learn_changes, learn_trials, learn_adopted, learn_rollbacks;
static _Atomic uint32_t learn_cap_now[POOL_NCLS], learn_hit_now[POOL_NCLS];
static _Atomic uint32_t learn_moved[POOL_NCLS];

static _Atomic uint64_t learn_budget_now, learn_granted_now, learn_freezes;

static struct learn_cls cls_state[POOL_NCLS];
static struct learn_budget budget;
static uint64_t prev[POOL_NCLS][CC_N];
static int trace_fd = -1;
static uint64_t start_ms;

static void law_read(struct learn_law *law)
{
	long win = KNOB(learn_window_ms);
	law->target = (uint32_t)KNOB(target_hit_mid) * 10;
	law->band = LEARN_BAND;
	law->step = (uint32_t)KNOB(cap_step_mid);
	law->min = (uint32_t)KNOB(cap_min_mid);
	law->max = (uint32_t)KNOB(cap_max_mid);
	law->dwell = (uint32_t)((KNOB(cap_dwell_sec_mid) * 1000 + win - 1) / win);
	law->min_samples = (uint64_t)KNOB(learn_min_samples);
}

/* One line per class and window: "ms class size hit cap wmax samples". */
static void trace_line(uint64_t ms, unsigned c, uint32_t hit, uint32_t cap, uint32_t wmax, uint64_t samples)
{
	if (trace_fd < 0)
		return;
	char line[160], num[24];
	size_t n = 0;
	uint64_t vals[] = { ms, c, ace_class_size[c], 0, cap, 0, samples };
	for (unsigned i = 0; i < 7; i++) {
		if (i == 3 || i == 5) {
			/* hit rate 0.000-1.000, W_MAX 1.00-4.00 */
			uint64_t v = i == 3 ? hit : wmax;
			unsigned scale = i == 3 ? 1000 : 100;
			n += fmt_u64(line + n, v / scale);
			line[n++] = '.';
			for (unsigned d = scale / 10; d >= 1; d /= 10)
				line[n++] = (char)('0' + (v / d) % 10);
		} else {
			size_t k = fmt_u64(num, vals[i]);
			memcpy(line + n, num, k);
			n += k;
		}
		line[n++] = i == 6 ? '\n' : ' ';
	}
	hak_write_fd(trace_fd, line, n);
}

/* The mid counters, and the heaps alive (each has a ring of every
 * class: what a CAP lends, it lends in each). */
static uint64_t counters_mid(uint64_t now[POOL_NCLS][CC_N])
{
	static uint64_t all[HAK_NCOUNTERS]; /* the learner thread's only */
	uint64_t started, exited;
	heap_counters_sum(all, &started, &exited);
	const struct heap_counters *hc = (const struct heap_counters *)(const void *)all;
	for (unsigned i = 0; i < POOL_NCLS; i++)
		for (unsigned k = 0; k < CC_N; k++)
			now[i][k] = hc->cls[HAK_CLS_MID + i][k];
	return started > exited ? started - exited : 1;
}

/* The process's peak RSS, bytes (0: unknown). */
static uint64_t peak_rss(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0 || ru.ru_maxrss <= 0)
		return 0;
	return (uint64_t)ru.ru_maxrss * 1024;
}

/* ---- W_MAX trials ---- */

enum { WT_IDLE, WT_BASE, WT_TRIAL, WT_DONE };
static struct {
	int phase;
	unsigned cand;          /* index into the candidates */
	unsigned windows_left;
	uint32_t pct;           /* the candidate */
	uint64_t at[POOL_NCLS][CC_N]; /* counters when the phase began */
	int64_t base_canary, base_control;
} wt;

#define CANARY_MASK 0xAAAAAAAAAAAAAAAAull /* the odd classes */

static void wgroup_add(struct learn_wgroup *g, const uint64_t now[CC_N], const uint64_t then[CC_N], unsigned c)
{
	g->refills += now[CC_REFILLS] - then[CC_REFILLS];
	g->misses += now[CC_MISSES] - then[CC_MISSES];
	g->waste += now[CC_BORROW_WASTE] - then[CC_BORROW_WASTE];
	g->given += (now[CC_REFILLS] - then[CC_REFILLS]) * ace_class_size[c];
}

static void wt_scores(uint64_t now[POOL_NCLS][CC_N], int64_t *canary, int64_t *control, uint64_t *refills)
{
	struct learn_wgroup a = { 0 }, b = { 0 };
	bool split = KNOB(wmax_canary) != 0;
	for (unsigned i = 0; i < POOL_NCLS; i++) {
		unsigned c = HAK_CLS_MID + i;
		bool in_canary = !split || ((CANARY_MASK >> c) & 1);
		wgroup_add(in_canary ? &a : &b, now[i], wt.at[i], c);
	}
	*canary = learn_wmax_score(&a);
	*control = learn_wmax_score(&b);
	*refills = a.refills + (split ? b.refills : 0);
}

static void wt_window(uint64_t now[POOL_NCLS][CC_N], uint64_t ms)
{
	if (!KNOB(wmax_learn) || wt.phase == WT_DONE)
		return;
	long win = KNOB(learn_window_ms);
	unsigned trial_windows = (unsigned)((KNOB(wmax_trial_sec) * 1000 + win - 1) / win);
	bool split = KNOB(wmax_canary) != 0;
	if (wt.phase == WT_IDLE) {
		uint32_t pct = (uint32_t)config_list_item(KNOB(wmax_candidates_mid), wt.cand);
		if (pct == 0) {
			wt.phase = WT_DONE;
			return;
		}
		wt.pct = pct;
		wt.phase = WT_BASE;
		wt.windows_left = trial_windows;
		memcpy(wt.at, now, sizeof(wt.at));
		return;
	}
	if (--wt.windows_left > 0)
		return;
	int64_t canary, control;
	uint64_t refills;
	wt_scores(now, &canary, &control, &refills);
	memcpy(wt.at, now, sizeof(wt.at));
	if (wt.phase == WT_BASE) {
		wt.base_canary = canary;
		wt.base_control = control;
		if (split)
			knob_set_wmax_canary(CANARY_MASK, wt.pct);
		else
			knob_set_wmax_canary(~0ull, wt.pct);
		wt.phase = WT_TRIAL;
		wt.windows_left = trial_windows;
		return;
	}
	/* the verdict; too little traffic to judge is a rollback */
	int v = refills < (uint64_t)KNOB(learn_min_samples)
			? LEARN_ROLLBACK
			: learn_wmax_verdict(wt.base_canary, canary, wt.base_control, control, split,
					     (uint32_t)KNOB(wmax_adopt_pct));
	atomic_fetch_add_explicit(&learn_trials, 1, memory_order_relaxed);
	if (v == LEARN_ADOPT) {
		knob_set_wmax(TIER_MID, wt.pct);
		atomic_fetch_add_explicit(&learn_adopted, 1, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&learn_rollbacks, 1, memory_order_relaxed);
	}
	knob_set_wmax_canary(0, 0);
	if (trace_fd >= 0) {
		char line[96];
		size_t n = fmt_u64(line, ms);
		const char *w = v == LEARN_ADOPT ? " wmax-trial adopt " : " wmax-trial rollback ";
		memcpy(line + n, w, strlen(w));
		n += strlen(w);
		n += fmt_u64(line + n, wt.pct);
		line[n++] = '\n';
		hak_write_fd(trace_fd, line, n);
	}
	wt.cand++;
	wt.phase = WT_IDLE;
}

/* One window: every mid class's decision, then the W_MAX trial. */
static void learn_window(void)
{
	static uint64_t now[POOL_NCLS][CC_N];
	struct learn_law law;
	law_read(&law);
	uint64_t heaps = counters_mid(now);
	uint64_t ms = os_now_ms() - start_ms;
	uint32_t wmax = atomic_load_explicit(&hak_cfg.wmax[TIER_MID], memory_order_relaxed);
	/* the classes that woke (learn_woke); for the budget, a class
	 * that had fewer than min_samples misses for two windows and has
	 * them now (a phase that began late in the last window left a
	 * few there) */
	unsigned woke = 0, woke_one = 0, busier = 0;
	uint64_t want = 0;
	bool frozen = budget.frozen != 0; /* as the last window left it */
	for (unsigned i = 0; i < POOL_NCLS; i++) {
		struct learn_win w = {
			.refills = now[i][CC_REFILLS] - prev[i][CC_REFILLS],
			.overflows = now[i][CC_OVERFLOWS] - prev[i][CC_OVERFLOWS],
		};
		struct learn_cls *st = &cls_state[i];
		if (learn_woke(&law, st, &w)) {
			woke++;
			woke_one = i;
		}
		if (w.refills + w.overflows >= law.min_samples) {
			if (st->idle >= LEARN_QUIET_MOVED)
				busier++;
			st->idle = 0;
		} else {
			st->idle++;
		}
	}
	for (unsigned i = 0; i < POOL_NCLS; i++) {
		unsigned c = HAK_CLS_MID + i;
		struct learn_win w = {
			.refills = now[i][CC_REFILLS] - prev[i][CC_REFILLS],
			.blocks = now[i][CC_BLOCKS] - prev[i][CC_BLOCKS],
			.overflows = now[i][CC_OVERFLOWS] - prev[i][CC_OVERFLOWS],
			.moved = woke > 1 || (woke == 1 && woke_one != i),
		};
		struct learn_cls *st = &cls_state[i];
		uint32_t before = knob_cap(c);
		if (before != st->lent)
			st->cap = before; /* a test or the program set it */
		learn_cap_decide(&law, st, &w);
		/* a frozen budget grants no growth, not even one paid for
		 * by the other classes' shares: the CAPs stay until the
		 * demand moves (or a class gives back) */
		if (frozen && busier == 0 && st->cap > st->lent && st->lent > 0)
			st->cap = st->lent;
		if (st->cap > st->home)
			want += (uint64_t)(st->cap - st->home) * ace_class_size[c] * heaps;
	}
	/* What the CAPs the law chose would lend, within the budget: each
	 * grown class gets the same share of its growth. */
	uint64_t peak = peak_rss();
	uint64_t granted = learn_budget_decide(&budget, want, peak, busier > 0);
	for (unsigned i = 0; i < POOL_NCLS; i++) {
		unsigned c = HAK_CLS_MID + i;
		struct learn_cls *st = &cls_state[i];
		uint32_t before = knob_cap(c);
		uint32_t cap = learn_lent(st->home, st->cap, granted, want);
		if (budget.frozen)
			st->cap = cap; /* the law goes on from what it got */
		st->lent = cap;
		if (cap != before) {
			knob_set_cap(c, cap);
			atomic_fetch_add_explicit(&learn_changes, 1, memory_order_relaxed);
			atomic_store_explicit(&learn_moved[i], 1, memory_order_relaxed);
		}
		atomic_store_explicit(&learn_cap_now[i], cap, memory_order_relaxed);
		atomic_store_explicit(&learn_hit_now[i], st->hit, memory_order_relaxed);
		/* a class is traced from its first sample on, every window */
		if (st->samples > 0 || cap != before)
			st->traced = 1;
		if (st->traced)
			trace_line(ms, c, st->hit, cap, wmax, st->samples);
	}
	atomic_store_explicit(&learn_budget_now, budget.budget, memory_order_relaxed);
	atomic_store_explicit(&learn_granted_now, granted, memory_order_relaxed);
	atomic_store_explicit(&learn_freezes, budget.freezes, memory_order_relaxed);
	if (trace_fd >= 0 && (want > 0 || budget.episodes > 0)) {
		/* "ms budget BUDGET GRANTED WANT PEAK" (bytes) */
		char line[160];
		size_t n = fmt_u64(line, ms);
		memcpy(line + n, " budget", 7);
		n += 7;
		uint64_t vals[] = { budget.budget, granted, want, peak };
		for (unsigned k = 0; k < 4; k++) {
			line[n++] = ' ';
			n += fmt_u64(line + n, vals[k]);
		}
		line[n++] = '\n';
		hak_write_fd(trace_fd, line, n);
	}
	memcpy(prev, now, sizeof(prev));
	wt_window(now, ms);
	atomic_fetch_add_explicit(&learn_windows, 1, memory_order_relaxed);
}

static void *learn_main(void *arg)
{
	(void)arg;
	const char *path = config_learn_trace();
	if (path[0] != '\0') {
		trace_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (trace_fd < 0) {
			hak_write_err("hakmem: warning: HAKMEM_LEARN_TRACE: cannot open the file; no trace\n");
		} else {
			static const char head[] = "# ms class size hit cap wmax samples\n";
			hak_write_fd(trace_fd, head, sizeof(head) - 1);
		}
	}
	start_ms = os_now_ms();
	counters_mid(prev);
	/* Each class starts from the CAP it has: its home (where a quiet
	 * class goes back to), or what the parent of this child of fork
	 * moved it to. */
	for (unsigned i = 0; i < POOL_NCLS; i++) {
		unsigned c = HAK_CLS_MID + i;
		uint32_t home = pool_default_cap(c), cap = knob_cap(c);
		cls_state[i].home = home;
		atomic_store_explicit(&learn_cap_now[i], cap, memory_order_relaxed);
		/* the trace starts with every class's CAP (no sample yet) */
		trace_line(0, c, 1000, cap, atomic_load_explicit(&hak_cfg.wmax[TIER_MID], memory_order_relaxed), 0);
	}
	pthread_mutex_lock(&learn_mu);
	while (!atomic_load_explicit(&learn_stop, memory_order_relaxed)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		long ms = KNOB(learn_window_ms);
		ts.tv_sec += ms / 1000;
		ts.tv_nsec += (ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		int r = 0;
		while (r != ETIMEDOUT && !atomic_load_explicit(&learn_stop, memory_order_relaxed))
			r = pthread_cond_timedwait(&learn_cv, &learn_mu, &ts);
		if (atomic_load_explicit(&learn_stop, memory_order_relaxed))
			break;
		pthread_mutex_unlock(&learn_mu);
		learn_window();
		pthread_mutex_lock(&learn_mu);
	}
	pthread_mutex_unlock(&learn_mu);
	if (trace_fd >= 0) {
		close(trace_fd);
		trace_fd = -1;
	}
	return NULL;
}

/* The child of fork: no learner thread; the next slow path starts one. */
static void learn_atfork_child(void)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	learn_mu = mu;
	if (trace_fd >= 0)
		trace_fd = -1; /* the parent's file: the child writes none */
	atomic_store_explicit(&learn_stop, 0, memory_order_relaxed);
	if (atomic_load_explicit(&learn_state, memory_order_relaxed) != LS_OFF)
		atomic_store_explicit(&learn_state, LS_OFF, memory_order_relaxed);
}

void learner_start_slow(void)
{
	int expect = LS_OFF;
	if (!KNOB(learn) ||
	    !atomic_compare_exchange_strong(&learn_state, &expect, LS_STARTING))
		return;
	if (!atomic_exchange(&learn_atfork_done, 1))
		pthread_atfork(NULL, NULL, learn_atfork_child);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&learn_cv, &ca);
	pthread_condattr_destroy(&ca);
	memset(cls_state, 0, sizeof(cls_state));
	memset(&budget, 0, sizeof(budget));
	wt.phase = WT_IDLE;
	wt.cand = 0;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	int r = pthread_create(&learn_thread, &attr, learn_main, NULL);
	pthread_attr_destroy(&attr);
	atomic_store_explicit(&learn_state, r == 0 ? LS_RUNNING : LS_STOPPED, memory_order_release);
}

bool learner_running(void)
{
	return atomic_load_explicit(&learn_state, memory_order_acquire) == LS_RUNNING;
}

void learner_stop(void)
{
	int expect = LS_RUNNING;
	if (!atomic_compare_exchange_strong(&learn_state, &expect, LS_STOPPED))
		return;
	pthread_mutex_lock(&learn_mu);
	atomic_store_explicit(&learn_stop, 1, memory_order_relaxed);
	pthread_cond_signal(&learn_cv);
	pthread_mutex_unlock(&learn_mu);
	pthread_join(learn_thread, NULL);
}

/* Before stats.c's destructor prints (priority: lower runs later). */
__attribute__((destructor(200))) static void learner_at_exit(void)
{
	learner_stop();
}

void learner_report(struct learner_report *r)
{
	memset(r, 0, sizeof(*r));
	r->enabled = KNOB(learn) != 0;
	r->windows = atomic_load_explicit(&learn_windows, memory_order_relaxed);
	r->changes = atomic_load_explicit(&learn_changes, memory_order_relaxed);
	r->trials = atomic_load_explicit(&learn_trials, memory_order_relaxed);
	r->adopted = atomic_load_explicit(&learn_adopted, memory_order_relaxed);
	r->rollbacks = atomic_load_explicit(&learn_rollbacks, memory_order_relaxed);
	r->wmax_mid = atomic_load_explicit(&hak_cfg.wmax[TIER_MID], memory_order_relaxed);
	r->budget = atomic_load_explicit(&learn_budget_now, memory_order_relaxed);
	r->granted = atomic_load_explicit(&learn_granted_now, memory_order_relaxed);
	r->freezes = atomic_load_explicit(&learn_freezes, memory_order_relaxed);
	for (unsigned i = 0; i < POOL_NCLS; i++) {
		r->moved[i] = atomic_load_explicit(&learn_moved[i], memory_order_relaxed) != 0;
		r->cap[i] = atomic_load_explicit(&learn_cap_now[i], memory_order_relaxed);
		r->hit[i] = atomic_load_explicit(&learn_hit_now[i], memory_order_relaxed);
	}
}
