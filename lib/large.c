/* large.c - the large tier: blocks of 32 KiB to 1 MiB (classes 40..59).
 *
 * A large slab is a whole 2 MiB segment that the heap owns, one run of
 * pages serving one class (40 KiB .. 1 MiB, page multiples), handed out
 * through the slab engine with a small per-thread cache
 * (HAKMEM_LARGE_CACHE_CAP blocks per class).  This file holds its policy:
 *   - ACE's bounded round-up: before a class takes a new slab (a new
 *     segment, new pages to touch) it borrows a free block of a larger
 *     class within the large tier's W_MAX (ace.c);
 *   - free blocks give their pages back too, not only empty slabs: a large
 *     slab holds few blocks of one class, and blocks freed long ago in a
 *     class no longer used would stay resident.  Each sweep marks the free
 *     blocks it sees, and the next one gives back all of a marked block
 *     but its first page (the free-list link lives there);
 *   - an empty slab is retired by the second sweep that finds it empty,
 *     as in the tiny tier.
 */
#include "internal.h"

void large_init(void)
{
}

uint32_t large_default_cap(unsigned c)
{
	(void)c;
	return (uint32_t)KNOB(large_cache_cap);
}

/* Take a free block of a larger class whose size is within W_MAX of c's,
 * from a slab that already holds freed, resident blocks.  The block keeps
 * its own class: its free goes back to its slab. */
static void *large_borrow(struct heap *h, unsigned c)
{
	uint64_t limit = ace_wmax_limit(TIER_LARGE, ace_class_size[c]);
	for (unsigned k = c + 1; k < HAK_NCLS && ace_class_size[k] <= limit; k++) {
		struct slab *s = h->cur[k];
		if (s == NULL || s->free == NULL)
			s = h->partial[k];
		if (s == NULL || s->free == NULL)
			continue;
		void *p = s->free;
		slab_unkeep(h, s);
		s->free = blk_next(p);
		s->nfree--;
		s->used++;
		DCTR_INC(h, refill_borrow);
		DCTR_ADD(h, class_bytes, ace_class_size[k] - ace_class_size[c]);
		return p;
	}
	return NULL;
}

int large_refill(struct heap *h, unsigned c, void **block)
{
	struct segment *seg;
	bool fresh;
	if ((*block = large_borrow(h, c)) != NULL)
		return REFILL_OWN;
	if (h->segs_avail[TIER_LARGE] == NULL && (seg = segment_adopt(TIER_LARGE)) != NULL) {
		DCTR_INC(h, refill_adopt);
		slab_adopt_segment(h, seg);
		return REFILL_OWN;
	}
	struct slab *s = slab_new(h, TIER_LARGE, HAK_LARGE_SHIFT, c, &fresh);
	if (s == NULL)
		return REFILL_FAILED;
	h->cur[c] = s;
	return REFILL_NEW;
}

bool large_sweep_wanted(struct heap *h)
{
	if (h->next_purge != 0)
		return true;
	h->next_purge = os_now_ms() + purge_delay();
	return false;
}

int large_settle(struct heap *h, struct segment *seg, struct slab *s)
{
	return slab_settle_owned(h, seg, s);
}

/* A free block is marked in its third word (the first is the free-list
 * link, the second the free key: internal.h) with one of these, xor its
 * address. */
#define LARGE_SEEN 0x68616b2d7365656eull   /* "hak-seen" */
#define LARGE_PURGED 0x68616b2d67697665ull /* "hak-give" */

/* Returns true while some block waits for the next sweep. */
static bool large_free_purge(struct slab *s, bool force)
{
	bool pending = false;
	for (void *b = s->free; b; b = blk_next(b)) {
		uint64_t *mark = (uint64_t *)b + 2;
		uint64_t seen = LARGE_SEEN ^ (uintptr_t)b, done = LARGE_PURGED ^ (uintptr_t)b;
		HAK_TRACK_OPEN(mark, sizeof(*mark)); /* track.h */
		if (*mark == done) {
			/* nothing */
		} else if (force || *mark == seen) {
			purge_pages((uint8_t *)b + HAK_PAGE, slab_bsize(s) - HAK_PAGE);
			*mark = done;
		} else {
			*mark = seen;
			pending = true;
		}
		HAK_TRACK_CLOSE(mark, sizeof(*mark)); /* track.h */
	}
	return pending;
}

void large_sweep(struct heap *h, uint64_t now, bool force, uint64_t *next)
{
	for (unsigned c = HAK_CLS_LARGE; c < HAK_NCLS; c++) {
		if (h->cur[c] && large_free_purge(h->cur[c], force))
			purge_note(next, now);
		for (struct slab *s = h->partial[c]; s; s = s->next)
			if (s->used != 0 && large_free_purge(s, force))
				purge_note(next, now);
		if (h->partial[c])
			slab_sweep_empty(h, c, now, force, next);
	}
	slab_segments_sweep(h, TIER_LARGE, now, force, next);
}

void large_exit(struct heap *h)
{
	slab_abandon_segments(h, TIER_LARGE);
}

void large_collect(struct heap *h)
{
	struct segment *seg;
	while ((seg = segment_adopt(TIER_LARGE)) != NULL)
		slab_adopt_segment(h, seg);
}
