/* tiny.c - the tiny tier: blocks of 1 to 1024 bytes (classes 0..19).
 *
 * A tiny SuperSlab is one 2 MiB segment cut into 32 slabs of 64 KiB; slab
 * 0 gives its first 4 KiB to the segment header.  A slab serves one class;
 * blocks are carved by bump and recycled through the thread's TLS SLL (cap
 * HAKMEM_TINY_SLL_CAP), the slab's local list and its remote list, all in
 * slab.c. */
#include "internal.h"

void tiny_init(void)
{
	tier_descs[TIER_TINY].slab_shift = 16;
	tier_descs[TIER_TINY].nslabs = (uint8_t)(HAK_SEG_SIZE >> 16);
	tier_descs[TIER_TINY].bin_cap = (uint32_t)hak_cfg.tiny_sll_cap;
}
