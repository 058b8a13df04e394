/* purge.c - the delayed-purge (decay) service of every tier.
 *
 * Free memory stays mapped and resident for a while, so that the program
 * can reuse it without a page fault; HAKMEM_PURGE_DELAY_MS after it was
 * last used it goes back to the kernel (madvise), and the resident size
 * follows the program down.  Never purge what is about to be reused:
 * memory given back and faulted in again costs kernel time.
 *
 * The tiers keep their free memory in their own structures (a heap's free
 * slab slots (large runs too) and empty slabs, the mid pool's free page
 * slots, the segment cache, the huge cache) and walk them in their
 * sweeps; the decisions are made here, the same way for all:
 *   - purge_old: a thing free since 'since' may go (a delay has passed);
 *   - purge_note / purge_due: each holder keeps the time its next sweep is
 *     due, the earliest 'since + delay' of what waits (0: nothing);
 *   - purge_second_look: an empty slab or page is retired by the second
 *     sweep that finds it empty, so that it waited at least one delay for
 *     its class to reuse it;
 *   - purge_pages: the one call that gives pages back, counted.
 * With HAKMEM_PURGE_DELAY_MS=0 everything goes at once. */
#include "internal.h"

bool purge_second_look(uint8_t *seen, bool force)
{
	if (force || *seen)
		return true;
	*seen = 1;
	return false;
}

void purge_pages(void *p, size_t len)
{
	if (len)
		os_purge(p, len);
}

void purge_keep_grow(uint64_t *keep, uint64_t *returned_ms, uint64_t max)
{
	if (*returned_ms == 0)
		return;
	if (*keep < max && !purge_old(*returned_ms, os_now_ms(), false))
		*keep *= 2;
	*returned_ms = 0;
}

void purge_keep_lower(uint64_t *keep, uint64_t *high, uint64_t held, uint64_t min)
{
	uint64_t want = 2 * *high;
	if (*keep > want)
		*keep = want > min ? want : min;
	*high = held;
}
