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

struct heap heap_empty;
__thread struct heap *tls_heap __attribute__((tls_model("initial-exec"))) = &heap_empty;
static __thread int tls_dead __attribute__((tls_model("initial-exec")));
static __thread int tls_in_init __attribute__((tls_model("initial-exec")));

static _Atomic int init_state; /* 0: not yet, 1: running, 2: done */
static pthread_key_t heap_key;

/* Lock order: heap_lock, fallback_lock, pool.c's shard locks, then
 * segment.c's and large.c's. */
static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct heap *heap_registry; /* every heap ever made */
static struct heap *heap_pool;     /* heaps of exited threads */
static uint64_t dead_ctr[HAK_NCOUNTERS];
static uint64_t threads_started, threads_exited;

static pthread_mutex_t fallback_lock = PTHREAD_MUTEX_INITIALIZER;
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
	pthread_mutex_lock(&heap_lock);
	threads_exited++;
	uint64_t live = threads_started - threads_exited;
	pthread_mutex_unlock(&heap_lock);
	pool_exit_cleanup(h, live <= 1);
	tls_heap = &heap_empty;
	tls_dead = 1;
	pthread_mutex_lock(&heap_lock);
	heap_counters_fold(h);
	h->live = 0;
	h->pool_next = heap_pool;
	heap_pool = h;
	pthread_mutex_unlock(&heap_lock);
}

struct heap *heap_get_slow(void)
{
	hak_init();
	if (tls_dead || tls_in_init)
		return NULL;
	if (tls_heap != &heap_empty)
		return tls_heap;
	pthread_mutex_lock(&heap_lock);
	struct heap *h = heap_pool;
	if (h) {
		heap_pool = h->pool_next;
	} else {
		h = os_map((sizeof(struct heap) + HAK_PAGE - 1) & ~(HAK_PAGE - 1));
		if (h == NULL) {
			pthread_mutex_unlock(&heap_lock);
			return NULL;
		}
		h->reg_next = heap_registry;
		heap_registry = h;
	}
	heap_setup(h);
	threads_started++;
	pthread_mutex_unlock(&heap_lock);
	tls_heap = h;
	/* may allocate (glibc's second-level key table): the heap is ready */
	pthread_setspecific(heap_key, h);
	return h;
}

void *heap_fallback_alloc(unsigned c)
{
	pthread_mutex_lock(&fallback_lock);
	struct heap *h = &fallback_heap; /* set up by hak_init */
	struct tbin *b = &h->bins[c];
	void *p = b->head;
	if (p) {
		b->head = *(void **)p;
		b->count--;
	} else {
		p = slab_refill_alloc(h, c);
	}
	pthread_mutex_unlock(&fallback_lock);
	if (p == NULL)
		errno = ENOMEM;
	return p;
}

void heap_counters_sum(uint64_t out[HAK_NCOUNTERS], uint64_t *started, uint64_t *exited)
{
	pthread_mutex_lock(&heap_lock);
	for (size_t i = 0; i < HAK_NCOUNTERS; i++)
		out[i] = dead_ctr[i];
	for (struct heap *h = heap_registry; h; h = h->reg_next) {
		const uint64_t *src = (const uint64_t *)&h->ctr;
		for (size_t i = 0; i < HAK_NCOUNTERS; i++)
			out[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	}
	*started = threads_started;
	*exited = threads_exited;
	pthread_mutex_unlock(&heap_lock);
}

/* ---- fork: take every lock in the fixed order, release after ---- */

static void atfork_prepare(void)
{
	pthread_mutex_lock(&heap_lock);
	pthread_mutex_lock(&fallback_lock);
	pool_lock_all();
	segment_lock_all();
	huge_lock();
}

static void atfork_parent(void)
{
	huge_unlock();
	segment_unlock_all();
	pool_unlock_all();
	pthread_mutex_unlock(&fallback_lock);
	pthread_mutex_unlock(&heap_lock);
}

/* In the child only the forking thread lives on; it held the locks.  The
 * heaps of the other threads stay as they were (their blocks are simply
 * never freed in the child). */
static void atfork_child(void)
{
	pool_fork_child();
	atfork_parent();
}

void hak_init(void)
{
	if (likely(atomic_load_explicit(&init_state, memory_order_acquire) == 2))
		return;
	int expect = 0;
	if (atomic_compare_exchange_strong(&init_state, &expect, 1)) {
		tls_in_init = 1;
		config_init();
		stats_init();
		tiny_init();
		pool_init();
		large_init();
		/* the fallback heap: ready before anyone can need it, and on
		 * the registry (without nesting heap_lock in fallback_lock,
		 * which atfork takes in the other order) */
		heap_setup(&fallback_heap);
		pthread_mutex_lock(&heap_lock);
		fallback_heap.reg_next = heap_registry;
		heap_registry = &fallback_heap;
		pthread_mutex_unlock(&heap_lock);
		pthread_key_create(&heap_key, heap_key_destructor);
		atomic_store_explicit(&init_state, 2, memory_order_release);
		/* may allocate: served by the fallback heap */
		pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
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
