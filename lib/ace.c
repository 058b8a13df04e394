/* ace.c - size -> (tier, class) by table lookup, with a bounded round-up.
 *
 * The class maths is explained in types.h: 16-byte steps to 128 B, then
 * four classes per doubling, so the round-up stays below 25% of the
 * request.  ace_small_tab answers every size up to 32 KiB with one load;
 * large sizes (32 KiB - 1 MiB) use the same formula with a count of
 * leading zeros.  No loop, no division on either path. */
#include "internal.h"

uint8_t ace_small_tab[(HAK_MID_MAX >> 4) + 1];
uint32_t ace_class_size[HAK_NBINS];

/* Class of n, 1 <= n <= HAK_LARGE_MAX, from the formula. */
static unsigned ace_formula(size_t n)
{
	if (n <= 128)
		return n == 0 ? 0 : (unsigned)((n - 1) >> 4);
	unsigned k = 63u - (unsigned)__builtin_clzll((unsigned long long)(n - 1)); /* 2^k <= n-1 */
	unsigned j = (unsigned)((n - 1) >> (k - 2)) - 4;                            /* 0..3 */
	return 8u + (k - 7u) * 4u + j;
}

unsigned ace_class_slow(size_t n)
{
	return ace_formula(n);
}

void ace_init(void)
{
	for (unsigned c = 0; c < HAK_NBINS; c++) {
		if (c >= HAK_CLS_ALIGNED) { /* 128, 256, ..., 1024 (types.h) */
			ace_class_size[c] = (c - HAK_CLS_ALIGNED + 1) * 128;
		} else if (c < 8) {
			ace_class_size[c] = (c + 1) * 16;
		} else {
			unsigned k = 7 + (c - 8) / 4, j = (c - 8) % 4;
			ace_class_size[c] = (j + 5) << (k - 2);
		}
	}
	/* entry i serves sizes 16(i-1)+1 .. 16i; all of them share one class
	 * because every class boundary is a multiple of 16 */
	for (size_t i = 0; i <= (HAK_MID_MAX >> 4); i++)
		ace_small_tab[i] = (uint8_t)ace_formula(i * 16);
}
