/* tiny.c - the tiny tier: blocks of 1 to 1024 bytes (classes 0..19, and
 * the aligned classes 60..67).
 *
 * A tiny SuperSlab is one 2 MiB segment that the heap owns, cut into 32
 * slabs of 64 KiB; slab 0 gives its first 4 KiB to the segment header.  A
 * slab serves one class; blocks are carved by bump and recycled through
 * the thread's TLS SLL, the slab's local list and its remote list (the
 * slab engine, slab.c).  This file holds the tier's policy:
 *   - the caps: HAKMEM_TINY_SLL_CAP, and unless it was given at least one
 *     slab's blocks per class (4096 of 16 B, 1365 of 48 B, ...), so that a
 *     refill takes a slab's whole free list without walking it;
 *   - colour: the classes whose size is a multiple of 128 start each
 *     slab's first block at a different multiple of 64 bytes (types.h);
 *     the aligned classes are not coloured;
 *   - a new slab: from an abandoned segment of an exited thread first
 *     (the one that waited longest: segment.c), then from a free slot of
 *     the heap's own segments whose pages are still resident, then any;
 *   - an empty slab stays on its class's partial list, and the second
 *     sweep that finds it empty retires it (purge.c).
 */
#include "internal.h"

static bool tiny_class(unsigned c)
{
	return c < HAK_CLS_MID || c >= HAK_CLS_ALIGNED;
}

void tiny_init(void)
{
	for (unsigned c = 0; c < HAK_CLS_MID; c++) {
		size_t bs = ace_class_size[c], f = bs & (0 - bs);
		/* the power-of-two factor of the size, in 64-byte steps: 2 to 16
		 * colours for the multiples of 128 */
		slab_set_colours(c, f < 2 * HAK_COLOUR_ALIGN ? 1u : (unsigned)(f / HAK_COLOUR_ALIGN));
	}
}

uint32_t tiny_default_cap(unsigned c)
{
	hak_assert(tiny_class(c));
	uint32_t cap = (uint32_t)KNOB(tiny_sll_cap);
	if (!KNOB(tiny_sll_cap_set)) {
		uint32_t slab = (uint32_t)(((size_t)1 << HAK_TINY_SHIFT) / ace_class_size[c]);
		if (cap < slab)
			cap = slab;
	}
	return cap;
}

int tiny_refill(struct heap *h, unsigned c)
{
	struct segment *seg;
	bool fresh;
	/* blocks other threads gave back to full slabs the scan did not
	 * reach, before a new slab or another thread's segment */
	if (slab_collect_remote(h, TIER_TINY))
		return REFILL_OWN;
	/* What an exited thread left first, one segment per refill: its
	 * slabs, with the blocks other threads freed into them since (no one
	 * else takes those back while it waits), and its free slots.  Then a
	 * new slab: slab_new takes a free slot of h's whose pages are still
	 * there first, then any (a slot never used or given back, or a new
	 * segment). */
	if ((seg = segment_adopt_refill(TIER_TINY)) != NULL) {
		DCTR_INC(h, refill_adopt);
		slab_adopt_segment(h, seg);
		if (h->cur[c] != NULL || h->partial[c] != NULL)
			return REFILL_OWN; /* its slabs are on h's lists now */
	}
	struct slab *s = slab_new(h, TIER_TINY, HAK_TINY_SHIFT, c, &fresh);
	if (s == NULL)
		return REFILL_FAILED;
	h->cur[c] = s;
	return REFILL_NEW;
}

int tiny_settle(struct heap *h, struct segment *seg, struct slab *s)
{
	return slab_settle_owned(h, seg, s);
}

void tiny_sweep(struct heap *h, uint64_t now, bool force, uint64_t *next)
{
	for (unsigned c = 0; c < HAK_NBINS; c++)
		if (tiny_class(c) && h->partial[c])
			slab_sweep_empty(h, c, now, force, next);
	slab_segments_sweep(h, TIER_TINY, now, force, next);
}

void tiny_exit(struct heap *h)
{
	slab_abandon_segments(h, TIER_TINY);
}

void tiny_collect(struct heap *h)
{
	struct segment *seg;
	while ((seg = segment_adopt(TIER_TINY)) != NULL)
		slab_adopt_segment(h, seg);
}
