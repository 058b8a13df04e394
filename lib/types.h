/* types.h - hakmem's core structures, each with its invariants beside it.
 *
 * Layers (internal.h says which file is where): calls only point down,
 * from malloc.c and stats.c through thread.c and heap.c to the tiers
 * (tiny.c, pool.c, large.c, huge.c), which never call each other, to the
 * slab engine (slab.c) and the purge service (purge.c), segment.c, os.c,
 * and ace.c, config.c and util.c at the bottom.  This header holds data
 * only; prototypes live in internal.h.
 */
#ifndef HAKMEM_TYPES_H
#define HAKMEM_TYPES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

/* ---------------------------------------------------------------------
 * Segments: every block hakmem hands out lives in a 2 MiB-aligned region
 * whose first bytes hold a struct segment.  The owner of a pointer is
 * found by masking: seg = p & ~HAK_SEG_MASK, after the segment map
 * (segment.c) has confirmed that hakmem mapped that region.
 * ------------------------------------------------------------------- */
#define HAK_SEG_SHIFT 21
#define HAK_SEG_SIZE ((size_t)1 << HAK_SEG_SHIFT)
#define HAK_SEG_MASK (HAK_SEG_SIZE - 1)
#define HAK_SEG_HDR ((size_t)12288) /* header bytes at the start of a segment */
#define HAK_PAGE ((size_t)4096)

/* The secure build (libhakmem-secure, HAKMEM_SECURE=1): see "Secure
 * build" in internal.h. */
#ifndef HAKMEM_SECURE
#define HAKMEM_SECURE 0
#endif
/* Bytes before the first block of a slab segment: the header, and in the
 * secure build one guard page (PROT_NONE) between it and the blocks, so
 * that a run off the front of the first slab faults instead of
 * overwriting the slab descriptors.  Slab 0 of every slab tier starts
 * HAK_SEG_META bytes into its slot (slab_area). */
#if HAKMEM_SECURE
#define HAK_SEG_GUARD HAK_PAGE
#else
#define HAK_SEG_GUARD ((size_t)0)
#endif
#define HAK_SEG_META (HAK_SEG_HDR + HAK_SEG_GUARD)

/* Address bits the segment map covers: 48 (x86-64 and aarch64 user space
 * without 5-level paging; Linux hands out higher addresses only on request). */
#define HAK_ADDR_BITS 48
#define HAK_SEGMAP_ENTRIES ((size_t)1 << (HAK_ADDR_BITS - HAK_SEG_SHIFT))

/* What the segment map (segment.c) says of a 2 MiB region. */
enum {
	SEGMAP_NONE = 0, /* not hakmem's */
	SEGMAP_HERE = 1, /* a segment header starts this region */
	SEGMAP_PREV = 2, /* huge block aligned to >= 2 MiB: header one region back */
};

/* ---------------------------------------------------------------------
 * Size classes (ace.c).
 *
 * Sizes 1..128 round up to a multiple of 16: 8 classes, waste < 16 bytes.
 * Above 128, each doubling (2^k, 2^(k+1)] is cut into four classes
 * 5,6,7,8 * 2^(k-2).  A request n in that range gets the smallest class
 * c >= n, and c - n < 2^(k-2) < n/4: the round-up is strictly less than
 * 25% of the request.  Every class is a multiple of 16, so every block is
 * 16-byte aligned.
 *
 *   class index   0..7    16..128 B      tiny
 *                 8..19   160..1024 B    tiny
 *                20..39   1280..32 KiB   mid
 *                40..59   40 KiB..1 MiB  large
 *                60..67   128..1024 B    tiny, aligned (below)
 *
 * ACE maps sizes to classes 0..59 only (HAK_NCLS).  Tiny slabs are
 * coloured (see "Slabs"), so a tiny block is only sure to be aligned to
 * 64 bytes.  Classes 60..67 repeat the tiny sizes that are multiples of
 * 128 (128, 256, ..., 1024) in slabs that are not coloured: the aligned
 * allocation functions take them for 64 < alignment <= 1024 and a size
 * up to 1 KiB.  A heap keeps bins and slab lists for all HAK_NBINS.
 * ------------------------------------------------------------------- */
#define HAK_TINY_MAX ((size_t)1024)
#define HAK_MID_MAX ((size_t)32768)
#define HAK_LARGE_MAX ((size_t)1 << 20)
#define HAK_NCLS 60
#define HAK_CLS_MID 20   /* first mid class */
#define HAK_CLS_LARGE 40 /* first large class */
#define HAK_CLS_ALIGNED 60 /* first aligned tiny class (128 B) */
#define HAK_NALIGNED 8
#define HAK_NBINS (HAK_NCLS + HAK_NALIGNED)
#define HAK_COLOUR_ALIGN ((size_t)64) /* alignment of every block of a coloured slab */

enum hak_tier { TIER_TINY = 0, TIER_MID = 1, TIER_LARGE = 2, TIER_COUNT = 3, TIER_HUGE = 3 };
#define TIER_NWMAX 4 /* W_MAX knobs, indexed by tier (tiny's is unused) */

/* Geometry of the slab tiers: log2 of the slot size (2 MiB segments).
 * Tiny: 32 slabs of 64 KiB; mid: 16 pages of 128 KiB; large: runs of 16
 * KiB slots (128 a segment).  The secure build's header, with its guard
 * page, would fill a 16 KiB slot 0: its large slots are 32 KiB. */
#define HAK_TINY_SHIFT 16
#define HAK_MID_SHIFT 17
#define HAK_LARGE_SHIFT (HAKMEM_SECURE ? 15 : 14)
#define HAK_TIER_NSLABS(shift) ((unsigned)(HAK_SEG_SIZE >> (shift)))

/* ---------------------------------------------------------------------
 * Slabs: a segment of a slab tier is cut into equal slots (tiny: 32 x 64
 * KiB, mid: 16 x 128 KiB pages, large: 128 x 16 KiB); a slab takes one slot
 * (tiny, mid) or a run of consecutive slots (large: nslots, as many as one
 * block of its class needs, so that a large slab holds one block and a
 * freed block's slots serve any class at once), and serves one class.
 * No block starts in the later slots of a run: they stay as a free slot
 * is (SLAB_FREE, owner NULL, carved 0), only their bits in used_mask are
 * set, so that taking or freeing a run writes one slab whatever its
 * length; a walk of used_mask goes from head to head (nslots).  Blocks
 * carry no header: a block's slab is seg->slabs[(p - seg) >> seg->slab_shift]
 * (a run's blocks start in its first slot).
 *
 * Colour: a tiny slab of a class whose size is a multiple of 128 starts
 * its first block at a multiple of 64 bytes past the slab's start, chosen
 * from its index and its segment (slab_colour, internal.h), and gives up
 * its last block when the slack is too small for that.  Without it, the
 * blocks of a 1024-byte class all begin at the same 4 offsets of a page,
 * so their first cache lines, where the free list and most programs' block
 * headers are, compete for a sixteenth of the L1 and L2 sets.
 *
 * Invariants (checked by slab_validate under --enable-debug):
 *   carved <= capacity
 *   capacity * class size <= nslots slots less the colour (and, in slot
 *                                      0, the segment header)
 *   used + nfree == carved            (used counts blocks with the user,
 *                                      in a thread's free list, or waiting
 *                                      on the remote list)
 *   nfree == length(free)
 *   state == SLAB_FREE   <=  bit index clear in seg->used_mask
 *   state == SLAB_FREE, bit set  <=>  a run's later slot (owner NULL,
 *                                      carved 0)
 * Only the owning heap (owner) writes anything but 'remote' and its link
 * on a shared stack (seg->snext, slab_snext); other threads read cls, b0,
 * div_* (set before any block is handed out) and carved (written with
 * relaxed atomics) to check the pointers they free, and only push onto
 * 'remote', with one CAS.  The owner takes the
 * whole remote list with one exchange, so no pop ever races a push: no ABA.
 *
 * Ownership is per slab: a free compares s->owner with its own heap.  Only
 * the thread of heap h ever stores h into owner or replaces h there, so the
 * test needs no ordering.  Tiny and large slabs stay with the heap that
 * owns their segment (NULL while it is abandoned); mid pages (pool.c) move
 * between heaps through the shared per-class stacks, owner NULL while on
 * one, linked through seg->snext.  A slab is one cache line: the free fast
 * path reads owner, cls and what checks the pointer (b0, div_*, carved)
 * from the same line.
 * ------------------------------------------------------------------- */
enum slab_state { SLAB_FREE = 0, SLAB_CURRENT, SLAB_PARTIAL, SLAB_FULL, SLAB_SHARED, SLAB_EMPTY };

struct heap;

struct slab {
	struct heap *_Atomic owner; /* heap allowed to touch it; NULL: none */
	void *free;               /* local free list (owner only) */
	_Atomic(void *) remote;   /* blocks freed by other threads */
	struct slab *next, *prev; /* in the owner's partial or full list */
	uint16_t nfree;           /* blocks on 'free' */
	uint16_t used;            /* blocks out of the slab (see above) */
	uint16_t carved;          /* blocks cut from the slab so far */
	uint16_t capacity;        /* blocks that fit (<= 4096: 64 KiB / 16) */
	uint32_t b0;              /* low 32 bits of the first block's address
				   * (slab_block_index); the block size is
				   * ace_class_size[cls] (slab_bsize) */
	uint32_t div_inv;         /* the class's ace_class_div, here so that */
	uint8_t div_k;            /* the free fast path reads only this line */
	uint8_t cls;              /* size class */
	uint8_t state;            /* enum slab_state */
	uint8_t index;            /* position in the segment */
	uint8_t empty_seen;       /* the last sweep found it empty */
	uint8_t nslots;           /* slots of its run (large), else 1 */
	uint8_t kept;             /* empty, counted in its heap's slab_empty
				   * (tiny and large: slab_settle_owned) */
	uint8_t warm;             /* mid: memory beyond the carved blocks may
				   * be resident (taken from a dirty slot, or
				   * cut again for another class): it goes
				   * back whole (pool.c, pool_page_free) */
} __attribute__((aligned(64)));

#define HAK_MAX_SLABS 128

/* A set of a segment's slots, one bit each (HAK_MAX_SLABS bits). */
#ifndef __SIZEOF_INT128__
#error "hakmem needs a compiler with unsigned __int128 (a 64-bit target)"
#endif
typedef unsigned __int128 segmask_t;

/* A segment header.  For slab tiers: slabs[0..nslabs).  For huge blocks
 * (tier == TIER_HUGE) the slab array is unused and the huge_* fields say
 * where the block is.
 *
 * Invariants:
 *   seg == (seg & ~HAK_SEG_MASK), magic == HAK_SEG_MAGIC
 *   popcount(used_mask) == slots in use (a large run's every slot);
 *   used_mask ⊆ (1 << nslabs) - 1
 *   dirty & used_mask == 0            (only free slabs wait for a purge)
 *   owner == the heap whose thread may take and give back its slabs
 *            (tiny, large), or NULL while the segment is abandoned, cached,
 *            huge, or a mid segment: those belong to a pool shard (pool.c),
 *            whose lock guards used_mask
 */
#define HAK_SEG_MAGIC 0x48414b4du /* "HAKM" */
#define FD_UNKNOWN 255
#define LT_NONE 255
#define LT_MAX 128 /* heap.lt_seg: the large segments a heap looks at first */

struct segment {
	struct heap *_Atomic owner; /* read on every free: keep first */
	uint8_t slab_shift;
	uint8_t tier;
	uint8_t nslabs;
	uint8_t in_full;          /* on the owner's segs_full list */
	uint8_t shard;            /* mid: the pool shard it belongs to; huge:
				   * the cache of the thread that allocated it */
	/* tiny, large: at least the longest run of free slots whose pages
	 * are still there (~used_mask & dirty), so that a look for such a run
	 * passes over a segment without one (slab_new_run): raised when slots
	 * turn free, exact after a look that failed, FD_UNKNOWN when the
	 * segment comes to the heap */
	uint8_t fd_bound;
	uint8_t lt_slot;          /* large: its entry in the owner's lt_seg, or LT_NONE */
	uint32_t magic;
	uint32_t shard_gen;       /* mid: the shard's generation (pool.c) */
	segmask_t used_mask;      /* slabs in use */
	segmask_t dirty;          /* free slabs not yet given back (madvise) */
	uint64_t dirty_since;     /* ms (coarse monotonic): the oldest of
				   * dirty_at over the dirty slots (or older:
				   * a slot reused since keeps it) */
	struct segment *next, *prev; /* owner's list, abandoned or cache list */
	/* huge blocks */
	size_t map_size;          /* bytes mapped, multiple of HAK_SEG_SIZE */
	size_t huge_off;          /* user pointer = (char *)seg + huge_off */
	size_t huge_align;        /* alignment the mapping was made with */
	uint64_t cached_since;    /* ms, while in a cache; while abandoned, since
				   * when (segment_adopt_idle) */
	uint8_t purged;           /* cached and already given back */
	/* tiny: slabs whose remote list went from empty to not, set by the
	 * freeing thread, taken by the owner's refill (slab_collect_remote):
	 * a hint, so that a full slab others freed into is found wherever it
	 * sits on the owner's lists */
	_Atomic uint32_t remote_mask;
	/* slab i's link on a shared stack (pool.c, slab_snext): outside the
	 * slab's cache line, which the free fast path reads */
	struct slab *_Atomic snext[HAK_SEG_SIZE >> HAK_MID_SHIFT]; /* mid pages only */
	/* ms since when each dirty slot has been free (segment_dirty_mark):
	 * each waits its own purge delay, so that a segment whose other
	 * slots come and go still gives back the ones that stay free */
	uint64_t dirty_at[HAK_MAX_SLABS];
	struct slab slabs[HAK_MAX_SLABS];
};

/* ---------------------------------------------------------------------
 * Thread heaps.
 * ------------------------------------------------------------------- */

/* The thread-local singly linked free list (TLS SLL) of one class.
 * Invariant: count == length(head) <= cap <= HAK_BIN_CAP_MAX; the owner
 * pushes only while count < cap (a full list sends the block back to its
 * slab, and counts it in overflows: the per-class counter CC_OVERFLOWS,
 * kept here so that the free path counts it with the bin's own address).
 * 16 bytes: the fast paths index the bins with one shift. */
#define HAK_BIN_CAP_MAX 65535u
struct tbin {
	void *head;
	uint16_t count;
	uint16_t cap;
	uint32_t overflows; /* since the last fold into ctr (heap_fold_overflows) */
};

/* Per-thread counters: written by the owner only (relaxed, no RMW), summed
 * by readers. */
/* Per-class counters a tuner needs (the knob and counter seam, internal.h):
 * always on, written by the owner on slow paths only, summed by readers.
 *   CC_REFILLS   allocations that found the class's cache (bin) empty
 *   CC_BLOCKS    blocks those refills put into the bin
 *   CC_OVERFLOWS frees that found the bin full (the block went to its slab)
 *   CC_MISSES    refills that found no slab with room in the heap and took
 *                memory from elsewhere (a new slab, the mid pool, an
 *                abandoned segment, the OS)
 *   CC_REQ_BYTES bytes asked for by the allocations that missed: a sample
 *                (one per miss) of ACE's round-up; the bytes given for
 *                them are CC_MISSES * the class size, so the sampled
 *                waste is that minus CC_REQ_BYTES
 *   CC_BORROWS   mid refills that found no page with room and took a free
 *                block of a larger class from the thread's ring instead,
 *                within the mid tier's W_MAX (not counted as misses)
 *   CC_BORROW_WASTE  bytes those blocks hold beyond the request */
enum { CC_REFILLS, CC_BLOCKS, CC_OVERFLOWS, CC_MISSES, CC_REQ_BYTES, CC_BORROWS, CC_BORROW_WASTE,
       CC_N };

struct heap_counters {
	uint64_t cls[HAK_NBINS][CC_N];
	uint64_t slabs_new, slabs_retired, segments_adopted, remote_frees;
	uint64_t pool_page_refills, pool_pages_taken; /* mid pages per refill */
	uint64_t pool_loans_returned;  /* rings trimmed to their default for a refill (pool_return_loans) */
#ifdef HAKMEM_DEBUG_COUNTERS
	uint64_t alloc_fast, free_fast;      /* tls_sll pops and pushes */
	uint64_t ss_local, ss_remote;        /* free pipeline */
	uint64_t refill_free, refill_carve, refill_remote, refill_partial,
		 refill_borrow, refill_new_slab, refill_adopt,
		 refill_new_segment;
	uint64_t free_null, free_foreign;    /* early returns */
	uint64_t req_bytes, class_bytes;     /* ACE waste = class - request */
#endif
};
#define HAK_NCOUNTERS (sizeof(struct heap_counters) / sizeof(uint64_t))

struct heap {
	struct tbin bins[HAK_NBINS];
	struct slab *cur[HAK_NBINS];     /* slab being drained into the bin */
	struct slab *partial[HAK_NBINS]; /* slabs with free or uncarved blocks */
	struct slab *full_head[HAK_NBINS], *full_tail[HAK_NBINS]; /* FIFO */
	/* Mid pages that emptied (state SLAB_EMPTY), newest first: the next
	 * mid refill of any class takes one (re-cut for its class) before a
	 * page from elsewhere; the sweep gives back those still here after
	 * two purge checks. */
	struct slab *mid_empty;
	uint32_t nmid_empty;            /* pages on mid_empty (<= mid_keep) */
	uint32_t mid_keep;              /* empty mid pages kept (pool.c, between the knobs mid_keep_min and mid_keep_max) */
	uint32_t mid_high;              /* most pages on mid_empty since the last sweep */
	uint64_t mid_returned_ms;       /* last page given back beyond mid_keep; 0: none since */
	/* blocks each mid class had taken from its pages (ctr CC_BLOCKS) at
	 * the last sweep: what it took since tells the trim how many pages
	 * the class uses (pool.c, trim_keep) */
	uint64_t mid_swept[HAK_CLS_LARGE - HAK_CLS_MID];
	/* mid classes (bit c - HAK_CLS_MID) of which another thread freed
	 * into a page with no remote frees pending; set by that thread,
	 * taken by this heap's refill (pool_collect_remote); a line of its
	 * own, as other threads write it.  large_remote: the same for the
	 * large classes (bit c - HAK_CLS_LARGE) and their runs; while set,
	 * the class's refills look at a few full runs each, and the large
	 * sweep clears it (large_collect_remote).  (The tiny tier marks its
	 * segments: segment.remote_mask.) */
	_Atomic uint32_t mid_remote __attribute__((aligned(64)));
	_Atomic uint32_t large_remote;
	char mid_remote_line[64 - 2 * sizeof(uint32_t)];
	/* Free slots of a tier's segments whose pages wait for a purge
	 * delay (slab_dirty_bytes): at most dirty_keep bytes when the tier
	 * sets it (large.c; 0: no bound); a freed run beyond it gives its
	 * pages back at once (dirty_purged_ms: when it last happened, 0:
	 * not since the tier looked).  dirty_high: the most seen since the
	 * tier's last sweep. */
	uint64_t dirty_keep[TIER_COUNT];
	/* bytes of the free slots of segs_avail whose pages are still there
	 * (seg->dirty; slab.c keeps it, slab_dirty_bytes reads it) */
	uint64_t dirty_bytes[TIER_COUNT];
	uint64_t dirty_high[TIER_COUNT];
	uint64_t dirty_purged_ms[TIER_COUNT];
	/* Empty tiny and large slabs (used == 0, not current) still on the
	 * heap's partial lists, each flagged 'kept': slab_empty bytes of
	 * slabs, at most slab_keep (slab.c, between SLAB_KEEP_MIN and
	 * SLAB_KEEP_MAX: the same rule as mid_keep).  A slab that empties
	 * beyond them is retired at once and its pages go back. */
	uint64_t slab_empty;
	uint64_t slab_keep;
	uint64_t slab_high;             /* most slab_empty since the last sweep */
	uint64_t slab_returned_ms;      /* last slab given back beyond slab_keep; 0: none since */
	/* segments the heap owns (tiny and large: slab.c's segment sets) */
	struct segment *segs_avail[TIER_COUNT]; /* segments with free slabs */
	struct segment *segs_full[TIER_COUNT];
	/* The large segments the heap owns, looked at by a new run
	 * (slab_new_run) without reading their headers (2 MiB apart, the
	 * headers share a few cache sets): lt_seg[i] has lt_slot i and
	 * lt_bound[i] is its fd_bound; lt_order lists the entries in the
	 * order of segs_avail (newest at its head first), which is the order
	 * the look takes.  A segment joins at the lowest free entry; past
	 * LT_MAX it has none (lt_over of them) and the look walks segs_avail
	 * for those. */
	struct segment *lt_seg[LT_MAX];
	uint8_t lt_bound[LT_MAX];
	uint8_t lt_order[LT_MAX];
	uint32_t lt_n;    /* entries up to the last used one */
	uint32_t lt_live; /* entries used: lt_order's length */
	uint32_t lt_over; /* large segments without an entry */
	uint64_t next_purge;            /* ms: the heap's sweep is due (purge.c); 0: nothing waits */
	uint32_t knob_epoch;            /* of the knobs the bins' caps were read at */
	/* mid classes (bit c - HAK_CLS_MID) whose cap is above their default
	 * (the learner grew it): what their rings hold beyond the default
	 * goes back before a refill takes a new page (pool_return_loans) */
	uint32_t mid_grown;
	/* Frees of other heaps' blocks, gathered per slab and pushed as one
	 * chain (one CAS) when the slab changes, the chain is full, or this
	 * heap refills or flushes.  Invariant: rf_count == length(rf_head..
	 * rf_tail), all blocks of rf_slab; rf_slab == NULL <=> rf_count == 0. */
	struct slab *rf_slab;
	void *rf_head, *rf_tail;
	uint32_t rf_count;
	struct heap_counters ctr;
	struct heap *reg_next;          /* registry of every heap ever made */
	struct heap *pool_next;         /* free heaps, for reuse */
	int live;
	unsigned shard;                 /* mid pool shard (pool.c) */
	/* set while hak_collect or a thread exit that cleans up runs: mid
	 * pages that go back are purged at once, not a purge delay later */
	int purge_now;
	/* Set while a thread exits and the purge thread runs: the exit
	 * retires what is empty but gives no page back (heap_abandon); the
	 * next thread to take its segments reuses those pages, and the purge
	 * thread gives back what no one took for a purge delay. */
	int purge_later;
	/* Set while heap_flush or heap_purge runs.  Both walk lists of blocks
	 * taken out of a ring (the flush every ring, a sweep's trim a mid
	 * class's) and push them to their pages one by one; a page that
	 * empties on the way would start a sweep (heap_local_settle), whose trim
	 * lets pages with room leave the heap, among them pages whose blocks
	 * are still on the list being walked.  Invariant: while sweeping, no
	 * page leaves h except empty ones (used == 0). */
	int sweeping;
	/* The idle reclaim (heap.c, heap_reclaim_idle): the purge thread
	 * drains and gives back, for the owner, what a heap whose thread
	 * makes no slow-path call holds empty.  The owner's slow paths (every
	 * path that touches its slabs, lists and counters, but not the rings'
	 * pops and pushes) run between heap_enter and heap_leave: gate_busy
	 * is 1 meanwhile, and gate_seq counts them (the owner's stores only;
	 * atomic because the purge thread reads them).  gate_reclaim is the
	 * purge thread's: 1 while it works on the heap, and a slow path that
	 * finds it set waits (internal.h, heap_enter). */
	_Atomic uint32_t gate_busy, gate_reclaim, gate_seq;
	uint32_t idle_seq;              /* the purge thread's: gate_seq at its last pass */
	uint32_t light_seq;             /* the purge thread's: gate_seq at its last light pass */
};

#endif /* HAKMEM_TYPES_H */
