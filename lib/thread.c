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
#include <sched.h>
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

static void heap_key_destructor(void *arg)
{
	struct heap *h = arg;
	heap_abandon(h);
	/* counted out only now: the exit that leaves one heap (or none) runs
	 * after every other exit has abandoned what it held */
	hak_lock(&heap_lock);
	threads_exited++;
	uint64_t live = threads_started - threads_exited;
	hak_unlock(&heap_lock);
	pool_exit_cleanup(h, live <= 1);
	tls_heap = &heap_empty;
	tls_dead = 1;
	hak_lock(&heap_lock);
	heap_counters_fold(h);
	h->live = 0;
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
	if (hak_lock_after_fork(&fallback_lock) < 0)
		heap_setup(&fallback_heap); /* its old slabs are leaked */
	pool_fork_child();
	segment_fork_child();
	huge_fork_child();
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
