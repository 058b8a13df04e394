/* thread.c - thread heap life cycle: lazy init, exit flush, the fallback
 * heap, fork handlers, and the library's one-time initialisation.
 *
 * Each thread reaches its heap through one initial-exec TLS pointer.  It
 * starts at heap_empty, whose bins are all empty and which owns no
 * segment, so the malloc fast path needs no "initialised?" test: the first
 * malloc misses and the slow path makes the heap.  At thread exit a
 * pthread key destructor flushes the heap and abandons its segments; heap
 * structs are kept and reused, so thread churn does not grow memory.
 * A thread that allocates after its heap is gone (later TLS destructors)
 * or while hakmem initialises uses the fallback heap under a lock. */
#include "internal.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

__thread struct heap *tls_heap __attribute__((tls_model("initial-exec"))) = &heap_empty;
static __thread int tls_dead __attribute__((tls_model("initial-exec")));
static __thread int tls_in_init __attribute__((tls_model("initial-exec")));

static _Atomic int init_state; /* 0: not yet, 1: running, 2: done */
static pthread_key_t heap_key;

/* Lock order: heap_lock, fallback_lock, pool.c's shard locks, then
 * segment.c's and large.c's.  Under heap_lock, each update of the two
 * lists is complete with its last store (a release), so that a child of
 * fork that finds the lock held by a thread that is gone still sees whole
 * lists (hak_lock_after_fork). */
static struct hak_lock heap_lock = HAK_LOCK_INIT;
static struct heap *heap_registry; /* every heap ever made */
static struct heap *heap_pool;     /* heaps of exited threads */
static uint64_t dead_ctr[HAK_NCOUNTERS];
static uint64_t threads_started, threads_exited;

static struct hak_lock fallback_lock = HAK_LOCK_INIT;
static struct heap fallback_heap;

static void heap_counters_fold(struct heap *h)
{
	uint64_t *src = (uint64_t *)&h->ctr;
	for (size_t i = 0; i < HAK_NCOUNTERS; i++) {
		dead_ctr[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
		__atomic_store_n(&src[i], 0, __ATOMIC_RELAXED);
	}
}

static void purge_thread_kick(void);

static void heap_key_destructor(void *arg)
{
	struct heap *h = arg;
	/* with the purge thread, an exit gives back no page: the next thread
	 * reuses them, the purge thread returns what no one took */
	bool later = atomic_load_explicit(&purge_thread_state, memory_order_relaxed) == PT_RUNNING;
	heap_enter(h); /* left with the heap, below */
	heap_abandon(h, later);
	/* counted out only now: the exit that leaves one heap (or none) runs
	 * after every other exit has abandoned what it held */
	hak_lock(&heap_lock);
	threads_exited++;
	uint64_t live = threads_started - threads_exited;
	hak_unlock(&heap_lock);
	pool_exit_cleanup(h, live <= 1, later);
	if (later)
		purge_thread_kick();
	tls_heap = &heap_empty;
	tls_dead = 1;
	hak_lock(&heap_lock);
	heap_counters_fold(h);
	h->live = 0;
	heap_leave(h);
	h->pool_next = heap_pool;
	__atomic_store_n(&heap_pool, h, __ATOMIC_RELEASE);
	hak_unlock(&heap_lock);
}

struct heap *heap_get_slow(void)
{
	hak_init();
	if (tls_dead || tls_in_init)
		return NULL;
	if (tls_heap != &heap_empty)
		return tls_heap;
	hak_lock(&heap_lock);
	struct heap *h = heap_pool;
	if (h) {
		__atomic_store_n(&heap_pool, h->pool_next, __ATOMIC_RELEASE);
	} else {
		h = os_map((sizeof(struct heap) + HAK_PAGE - 1) & ~(HAK_PAGE - 1));
		if (h == NULL) {
			hak_unlock(&heap_lock);
			return NULL;
		}
		h->reg_next = heap_registry;
		__atomic_store_n(&heap_registry, h, __ATOMIC_RELEASE);
	}
	heap_setup(h);
	threads_started++;
	hak_unlock(&heap_lock);
	tls_heap = h;
	/* may allocate (glibc's second-level key table): the heap is ready */
	pthread_setspecific(heap_key, h);
	return h;
}

void *heap_fallback_alloc(unsigned c)
{
	hak_lock(&fallback_lock);
	struct heap *h = &fallback_heap; /* set up by hak_init */
	struct tbin *b = &h->bins[c];
	void *p = b->head;
	if (p) {
		b->head = blk_next(p);
		b->count--;
	} else {
		p = heap_refill(h, c, ace_class_size[c]);
	}
	if (p != NULL)
		blk_clear_key(p);
	hak_unlock(&fallback_lock);
	if (p == NULL)
		errno = ENOMEM;
	return p;
}

/* hak_collect: what the fallback heap holds free goes back too.  Its
 * blocks are freed by threads that do not own it (remote frees, seen only
 * by its next refill): after a thread whose heap could not be mapped was
 * served by it, its slabs and segments would otherwise stay in use for
 * good. */
void heap_fallback_collect(void)
{
	hak_lock(&fallback_lock);
	struct heap *h = &fallback_heap;
	h->purge_now = 1;
	heap_flush(h);
	h->purge_now = 0;
	hak_unlock(&fallback_lock);
}

void heap_counters_sum(uint64_t out[HAK_NCOUNTERS], uint64_t *started, uint64_t *exited)
{
	hak_lock(&heap_lock);
	for (size_t i = 0; i < HAK_NCOUNTERS; i++)
		out[i] = dead_ctr[i];
	for (struct heap *h = heap_registry; h; h = h->reg_next) {
		const uint64_t *src = (const uint64_t *)&h->ctr;
		for (size_t i = 0; i < HAK_NCOUNTERS; i++)
			out[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
		/* overflows not folded into ctr yet (types.h, struct tbin) */
		for (unsigned c = 0; c < HAK_NBINS; c++)
			out[offsetof(struct heap_counters, cls[c][CC_OVERFLOWS]) / sizeof(uint64_t)] +=
				__atomic_load_n(&h->bins[c].overflows, __ATOMIC_RELAXED);
	}
	*started = threads_started;
	*exited = threads_exited;
	hak_unlock(&heap_lock);
}

/* ---- the purge thread ----
 *
 * Memory no thread's heap holds (segments of exited threads, mid pages on
 * the shared stacks, free page slots, the segment and huge caches) would
 * otherwise go back only when some thread calls the allocator again; a
 * program whose threads all sleep, or whose workers exited, would keep it.
 * One background thread gives it back once it has stayed free a purge
 * delay (heap_reclaim, heap.c).  The rule (man 3 hakmem, MEMORY RETURN):
 *   - it starts lazily, at the first allocation that takes the slow path
 *     once hakmem has mapped PT_START_BYTES: never in the constructor,
 *     never under a hakmem lock (the slow path of malloc holds none), and
 *     a small program never gets one;
 *   - not with HAKMEM_PURGE_THREAD=0.  HAKMEM_PURGE_DELAY_MS=0 does not
 *     stop it: the heaps then give back at once what they free, but the
 *     blocks other threads free into an exited thread's segments are seen
 *     by no heap, and the thread is what gives them back;
 *   - it wakes every purge delay (at least 10 ms) while memory is being
 *     given back (os_ctr: by it or by any thread), and backs off to once
 *     a second when none is;
 *   - a child of fork has none; its first slow-path allocation starts its
 *     own;
 *   - at exit (hakmem's destructor) it is told to stop and joined, for
 *     at most a second.
 * It blocks every signal, never allocates, and touches no thread's heap:
 * only the shared structures, each through its own lock or atomics. */
#define PT_START_BYTES ((uint64_t)8 << 20)
#define PT_BACKOFF_MAX_MS 1000

_Atomic int purge_thread_state; /* PT_*, internal.h */
static pthread_t pt_thread;
static pthread_mutex_t pt_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pt_cond;
static int pt_stop;              /* under pt_mutex */
static _Atomic int pt_busy;      /* in a pass (a child of fork resets its heap) */
static bool pt_registered;
static _Atomic uint64_t pt_passes;

uint64_t purge_thread_passes(void)
{
	return atomic_load_explicit(&pt_passes, memory_order_relaxed);
}

static uint64_t pt_given_back(void)
{
	return atomic_load_explicit(&os_ctr.purged, memory_order_relaxed) +
	       atomic_load_explicit(&os_ctr.unmap_calls, memory_order_relaxed);
}

/* A thread exit that left its free pages for the purge thread (heap_abandon
 * with 'later') wakes it when it has backed off, so that they go back a
 * purge delay later, not up to a second.  Only then: a program that ends a
 * thread every millisecond must not keep restarting its wait. */
static _Atomic int pt_kicked, pt_backed_off;

/* Tests only (nothing else sets it): the purge thread waits this long at
 * the start of each pass, in the pass, so that a test can act while one
 * runs. */
_Atomic unsigned purge_pass_pause_ms;

bool purge_thread_in_pass(void)
{
	return atomic_load_explicit(&pt_busy, memory_order_relaxed) != 0;
}

bool purge_thread_backed_off(void)
{
	return atomic_load_explicit(&pt_backed_off, memory_order_relaxed) != 0;
}

static void purge_thread_kick(void)
{
	if (!atomic_load_explicit(&pt_backed_off, memory_order_relaxed) ||
	    atomic_exchange_explicit(&pt_kicked, 1, memory_order_relaxed))
		return;
	pthread_mutex_lock(&pt_mutex);
	pthread_cond_signal(&pt_cond);
	pthread_mutex_unlock(&pt_mutex);
}

/* ---- the idle reclaim (heap.c, heap_reclaim_idle) ----
 *
 * Each pass looks at every live thread heap: one whose owner made no
 * slow-path call since the last pass (its gate_seq did not move: a purge
 * delay or more) gets gate_reclaim; after one membarrier for all of them
 * (internal.h, heap_enter), those whose owner is not inside a slow path
 * are reclaimed, the others left for the next pass.  The choice is made
 * under heap_lock (no heap is set up, reused or retired meanwhile), the
 * reclaim outside it: a heap with gate_reclaim set cannot be retired, as
 * its thread's exit passes the gate first.  An owner that calls the
 * allocator waits for its own heap only.  Without
 * membarrier (Linux before 4.14, or a seccomp filter that refuses it) there
 * is no idle reclaim: a sleeping thread's slabs wait for its next call. */
#define PT_IDLE_BATCH 64
/* Light passes.  Blocks that other threads free into the mid pages and
 * large runs of a sleeping thread are memory that no thread can use until
 * a pass takes them back; they are what a program that builds its data in
 * one thread and replaces it in others (larson) piles up.  So between two
 * passes, while the thread is not backed off, it looks every quarter of a
 * purge delay (when that is 10 ms or more) at the heaps whose thread made
 * no slow-path call since the last look and that other threads marked
 * (heap.mid_remote, heap.large_remote: a remote free into a page or run
 * with none pending), and reclaims those (heap_reclaim_idle, light: what
 * empties there still waits a purge delay, in free slots any thread can
 * take); the rest waits for the pass.  (The tiny tier marks its segments,
 * which only the owner may walk.) */
#define PT_LIGHT_PARTS 4
#define PT_LIGHT_MIN_MS 10
static int pt_membarrier = -1; /* the purge thread's: 1 registered, 0 refused */
static _Atomic uint64_t pt_idle_reclaims;

/* Tests only: the heap the purge thread is reclaiming now (NULL: none),
 * and a pause before it starts on it, with the owner held off. */
struct heap *_Atomic purge_idle_reclaiming;
_Atomic unsigned purge_idle_pause_ms;

uint64_t purge_thread_idle_reclaims(void)
{
	return atomic_load_explicit(&pt_idle_reclaims, memory_order_relaxed);
}

static bool pt_barrier(void)
{
	if (pt_membarrier < 0)
		pt_membarrier = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
	return pt_membarrier == 1 && syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
}

static bool heap_remote_marked(struct heap *h)
{
	return (atomic_load_explicit(&h->mid_remote, memory_order_relaxed) |
		atomic_load_explicit(&h->large_remote, memory_order_relaxed)) != 0;
}

/* light: a light pass (above) */
static void pt_reclaim_idle(bool light)
{
	if (pt_membarrier == 0)
		return;
	struct heap *batch[PT_IDLE_BATCH];
	/* The registry only grows at its head, and a heap's reg_next never
	 * changes: the walk goes on from h after the lock was let go. */
	hak_lock(&heap_lock);
	struct heap *h = heap_registry;
	hak_unlock(&heap_lock);
	while (h) {
		unsigned n = 0;
		hak_lock(&heap_lock);
		for (; h && n < PT_IDLE_BATCH; h = h->reg_next) {
			if (!h->live || h == &heap_purger || h == &fallback_heap)
				continue;
			uint32_t seq = atomic_load_explicit(&h->gate_seq, memory_order_relaxed);
			if (light) {
				uint32_t was = h->light_seq;
				h->light_seq = seq;
				if (seq != was || !heap_remote_marked(h))
					continue;
			} else if (seq != h->idle_seq) {
				h->idle_seq = seq;
				continue;
			}
			if (atomic_load_explicit(&h->gate_busy, memory_order_relaxed))
				continue;
			atomic_store_explicit(&h->gate_reclaim, 1, memory_order_relaxed);
			batch[n++] = h;
		}
		hak_unlock(&heap_lock);
		/* Not under heap_lock: a thread that starts or exits meanwhile
		 * must not wait for a reclaim (or for this thread, preempted
		 * in one).  A heap found idle and not busy after the barrier
		 * stays live: its thread's exit passes the gate first. */
		bool ok = n > 0 && pt_barrier();
		for (unsigned i = 0; i < n; i++) {
			struct heap *x = batch[i];
			if (ok && !atomic_load_explicit(&x->gate_busy, memory_order_acquire)) {
				atomic_store_explicit(&purge_idle_reclaiming, x, memory_order_relaxed);
				unsigned pause = atomic_load_explicit(&purge_idle_pause_ms, memory_order_relaxed);
				if (pause)
					usleep(pause * 1000u);
				heap_reclaim_idle(x, light);
				atomic_fetch_add_explicit(&pt_idle_reclaims, 1, memory_order_relaxed);
				atomic_store_explicit(&purge_idle_reclaiming, NULL, memory_order_relaxed);
			}
			atomic_store_explicit(&x->gate_reclaim, 0, memory_order_release);
		}
	}
}

static void *purge_thread_main(void *arg)
{
	(void)arg;
	uint64_t period = 0;
	pthread_mutex_lock(&pt_mutex);
	while (!pt_stop) {
		uint64_t base = purge_delay() < 10 ? 10 : purge_delay();
		if (period < base)
			period = base;
		/* a kick (a thread exit that left memory): the next pass a
		 * delay from now, not a backed-off second; also one that came
		 * while the last pass ran and signalled no one, whose flag
		 * must come down, or no later kick would signal */
		if (atomic_exchange_explicit(&pt_kicked, 0, memory_order_relaxed)) {
			period = base;
			atomic_store_explicit(&pt_backed_off, 0, memory_order_relaxed);
		}
		/* light passes only while not backed off: a program at rest
		 * wakes the thread once a second at most */
		unsigned parts = period == base && base / PT_LIGHT_PARTS >= PT_LIGHT_MIN_MS ? PT_LIGHT_PARTS : 1;
		int w = 0;
		for (unsigned part = 1; part <= parts; part++) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t ms = part < parts ? period / parts : period - (parts - 1) * (period / parts);
			ts.tv_sec += (time_t)(ms / 1000);
			ts.tv_nsec += (long)(ms % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			/* woken: a thread exit left memory (purge_thread_kick),
			 * and the loop's top makes the next pass a delay from
			 * now */
			w = pthread_cond_timedwait(&pt_cond, &pt_mutex, &ts);
			if (w != ETIMEDOUT || pt_stop || part == parts)
				break;
			pthread_mutex_unlock(&pt_mutex);
			pt_reclaim_idle(true);
			pthread_mutex_lock(&pt_mutex);
		}
		if (w != ETIMEDOUT || pt_stop)
			continue;
		pthread_mutex_unlock(&pt_mutex);
		uint64_t before = pt_given_back();
		atomic_store_explicit(&pt_busy, 1, memory_order_relaxed);
		unsigned pause = atomic_load_explicit(&purge_pass_pause_ms, memory_order_relaxed);
		if (pause) {
			struct timespec p = { (time_t)(pause / 1000), (long)(pause % 1000) * 1000000L };
			while (nanosleep(&p, &p) != 0)
				;
		}
		heap_reclaim(&heap_purger);
		pt_reclaim_idle(false);
		atomic_store_explicit(&pt_busy, 0, memory_order_relaxed);
		atomic_fetch_add_explicit(&pt_passes, 1, memory_order_relaxed);
		/* work found: again a delay later; none: back off */
		if (pt_given_back() != before)
			period = base;
		else if (period < PT_BACKOFF_MAX_MS)
			period = period * 2 < PT_BACKOFF_MAX_MS ? period * 2 : PT_BACKOFF_MAX_MS;
		atomic_store_explicit(&pt_backed_off, period > base, memory_order_relaxed);
		pthread_mutex_lock(&pt_mutex);
	}
	pthread_mutex_unlock(&pt_mutex);
	return NULL;
}

static void pt_cond_init(void)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pt_cond, &ca);
	pthread_condattr_destroy(&ca);
}

void purge_thread_try_start(void)
{
	if (atomic_load_explicit(&init_state, memory_order_acquire) != 2 || tls_in_init || tls_dead)
		return;
	if (!KNOB(purge_thread)) {
		atomic_store_explicit(&purge_thread_state, PT_OFF, memory_order_relaxed);
		return;
	}
	if (atomic_load_explicit(&os_ctr.mapped, memory_order_relaxed) < PT_START_BYTES)
		return;
	int expect = PT_NONE;
	if (!atomic_compare_exchange_strong(&purge_thread_state, &expect, PT_RUNNING))
		return;
	/* pthread_create may allocate (served here again: the state says
	 * running already) */
	if (!pt_registered) {
		heap_setup(&heap_purger);
		hak_lock(&heap_lock);
		heap_purger.reg_next = heap_registry;
		__atomic_store_n(&heap_registry, &heap_purger, __ATOMIC_RELEASE);
		hak_unlock(&heap_lock);
		pt_registered = true;
		pt_cond_init();
	}
	pt_stop = 0;
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, (size_t)256 << 10);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&pt_thread, &attr, purge_thread_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (r != 0)
		atomic_store_explicit(&purge_thread_state, PT_OFF, memory_order_relaxed);
}

__attribute__((destructor)) static void purge_thread_stop(void)
{
	int expect = PT_RUNNING;
	if (!atomic_compare_exchange_strong(&purge_thread_state, &expect, PT_OFF))
		return;
	pthread_mutex_lock(&pt_mutex);
	pt_stop = 1;
	pthread_cond_signal(&pt_cond);
	pthread_mutex_unlock(&pt_mutex);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 1;
	pthread_timedjoin_np(pt_thread, NULL, &ts);
}

/* ---- fork ----
 *
 * No lock is taken before fork (internal.h, "locks"): the parent goes on
 * as if nothing happened.  In the child only the forking thread lives on;
 * each module checks its locks and resets what a thread that is gone was
 * changing.  The heaps of the other threads stay as they were (their
 * blocks are simply never freed in the child). */

static void atfork_child(void)
{
	/* the lists are whole (see heap_lock); the pool of idle heaps may
	 * have lost one to a thread that was taking it, which is all */
	hak_lock_after_fork(&heap_lock);
	/* the purge thread was reclaiming this thread's heap (heap_reclaim_idle)
	 * and is gone: its lists may be half done.  The heap is left as it
	 * is (its memory is leaked in the child; not live, so never reused
	 * or reclaimed) and the next call makes a new one. */
	struct heap *mine = tls_heap;
	if (mine != &heap_empty && atomic_load_explicit(&mine->gate_reclaim, memory_order_relaxed)) {
		atomic_store_explicit(&mine->gate_reclaim, 0, memory_order_relaxed);
		mine->live = 0;
		threads_exited++;
		tls_heap = &heap_empty;
		pthread_setspecific(heap_key, NULL);
	}
	/* The same for another thread's heap (that thread is gone here too):
	 * not live, so the child's purge thread never reclaims its half-done
	 * lists (it did, and a debug build's heap_reclaim_idle found the
	 * heap still "sweeping"). */
	struct heap *x = atomic_load_explicit(&purge_idle_reclaiming, memory_order_relaxed);
	if (x != NULL && x != mine) {
		atomic_store_explicit(&x->gate_reclaim, 0, memory_order_relaxed);
		x->live = 0;
	}
	atomic_store_explicit(&purge_idle_reclaiming, NULL, memory_order_relaxed);
	if (hak_lock_after_fork(&fallback_lock) < 0)
		heap_setup(&fallback_heap); /* its old slabs are leaked */
	pool_fork_child();
	segment_fork_child();
	huge_fork_child();
	/* no purge thread here: the next slow-path allocation starts one;
	 * what it held in a pass is leaked in the child */
	pthread_mutex_init(&pt_mutex, NULL);
	pt_membarrier = -1; /* the child's purge thread registers again */
	if (pt_registered) {
		pt_cond_init();
		if (atomic_load_explicit(&pt_busy, memory_order_relaxed))
			heap_setup(&heap_purger);
		atomic_store_explicit(&pt_busy, 0, memory_order_relaxed);
	}
	if (atomic_load_explicit(&purge_thread_state, memory_order_relaxed) == PT_RUNNING)
		atomic_store_explicit(&purge_thread_state, PT_NONE, memory_order_relaxed);
}

/* The free key (internal.h): random, and odd, so never a block's address
 * or NULL. */
static void free_key_init(void)
{
	atomic_store_explicit(&hak_free_key, hak_random_word() | 1, memory_order_relaxed);
}

void hak_init(void)
{
	if (likely(atomic_load_explicit(&init_state, memory_order_acquire) == 2))
		return;
	int expect = 0;
	if (atomic_compare_exchange_strong(&init_state, &expect, 1)) {
		tls_in_init = 1;
		free_key_init();
		/* before any block, so every free-list link is encoded with
		 * the same secret (internal.h, "free-list links") */
		if (HAKMEM_SECURE)
			hak_secret_init();
		config_init();
		tiny_init();
		pool_init();
		large_init();
		heap_default_caps();
		/* the fallback heap: ready before anyone can need it, and on
		 * the registry (without nesting heap_lock in fallback_lock,
		 * which atfork takes in the other order) */
		heap_setup(&fallback_heap);
		hak_lock(&heap_lock);
		fallback_heap.reg_next = heap_registry;
		__atomic_store_n(&heap_registry, &fallback_heap, __ATOMIC_RELEASE);
		hak_unlock(&heap_lock);
		pthread_key_create(&heap_key, heap_key_destructor);
		atomic_store_explicit(&init_state, 2, memory_order_release);
		/* may allocate: served by the fallback heap */
		pthread_atfork(NULL, NULL, atfork_child);
		tls_in_init = 0;
		return;
	}
	if (tls_in_init)
		return;
	while (atomic_load_explicit(&init_state, memory_order_acquire) != 2)
		sched_yield();
}

__attribute__((constructor)) static void hak_ctor(void)
{
	hak_init();
}
