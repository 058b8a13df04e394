/* pool.c - the mid tier: blocks of 1 KiB to 32 KiB (classes 20..39).
 *
 * A pool segment is cut into 8 pages of 256 KiB, each serving one class;
 * page 0 gives its first 4 KiB to the segment header.  A thread keeps a
 * ring (its bin, cap HAKMEM_POOL_RING_CAP) of free blocks per class in
 * front of its pages; pages hand out blocks by bump, then by their local
 * and remote free lists (slab.c). */
#include "internal.h"

void pool_init(void)
{
	tier_descs[TIER_MID].slab_shift = 18;
	tier_descs[TIER_MID].nslabs = (uint8_t)(HAK_SEG_SIZE >> 18);
	tier_descs[TIER_MID].bin_cap = (uint32_t)hak_cfg.pool_ring_cap;
}
