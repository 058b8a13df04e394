/* ace.c - size -> (tier, class) by table lookup, with a bounded round-up.
 *
 * The class maths is explained in types.h: 16-byte steps to 128 B, then
 * four classes per doubling, so the round-up stays below 25% of the
 * request.  ace_small_tab answers every size up to 32 KiB with one load;
 * large sizes (32 KiB - 1 MiB) use the same formula with a count of
 * leading zeros.  No loop, no division on either path.
 *
 * Both tables are constants computed by the compiler: they are right
 * before any code of hakmem has run.  A library constructor, or glibc's
 * own start-up code in a static program, may call malloc before hakmem's
 * constructor; a table filled at initialisation would then route every
 * size to class 0 (16 bytes). */
#include "internal.h"

/* The class of n, 1 <= n <= HAK_LARGE_MAX (0 for n == 0), as a constant
 * expression: for n > 128, k = floor(log2(n - 1)) (2^k <= n-1 < 2^(k+1)),
 * and j = 0..3 says which quarter of (2^k, 2^(k+1)] n lies in. */
#define ACE_K(n) (63u - (unsigned)__builtin_clzll((unsigned long long)(n) - 1))
#define ACE_FORMULA(n)                                                         \
	((n) <= 128 ? ((n) == 0 ? 0u : (unsigned)(((n) - 1) >> 4))             \
		    : 8u + (ACE_K(n) - 7u) * 4u +                               \
			      ((unsigned)(((unsigned long long)(n) - 1) >> (ACE_K(n) - 2)) - 4u))

/* Entry i serves sizes 16(i-1)+1 .. 16i; all of them share one class
 * because every class boundary is a multiple of 16. */
#define T1(i) (uint8_t)ACE_FORMULA((unsigned long long)(i) * 16u)
#define T4(i) T1(i), T1((i) + 1), T1((i) + 2), T1((i) + 3)
#define T16(i) T4(i), T4((i) + 4), T4((i) + 8), T4((i) + 12)
#define T64(i) T16(i), T16((i) + 16), T16((i) + 32), T16((i) + 48)
#define T256(i) T64(i), T64((i) + 64), T64((i) + 128), T64((i) + 192)
#define T1024(i) T256(i), T256((i) + 256), T256((i) + 512), T256((i) + 768)

const uint8_t ace_small_tab[(HAK_MID_MAX >> 4) + 1] = {
	T1024(0), T1024(1024), T1(2048)
};

/* Class c's size: (c + 1) * 16 up to 128; then (j + 5) * 2^(k-2) with
 * k = 7 + (c - 8) / 4, j = (c - 8) % 4; the aligned classes (types.h)
 * repeat 128, 256, ..., 1024. */
#define S1(c)                                                                  \
	((c) >= HAK_CLS_ALIGNED ? ((c) - HAK_CLS_ALIGNED + 1u) * 128u           \
	 : (c) < 8		 ? ((c) + 1u) * 16u                             \
				 : (((c) - 8u) % 4u + 5u) << (7u + ((c) - 8u) / 4u - 2u))
#define S4(c) S1(c), S1((c) + 1u), S1((c) + 2u), S1((c) + 3u)
#define S16(c) S4(c), S4((c) + 4u), S4((c) + 8u), S4((c) + 12u)

const uint32_t ace_class_size[HAK_NBINS] = {
	S16(0u), S16(16u), S16(32u), S16(48u), S4(64u)
};

/* Block positions without a division (the free path's check that a
 * pointer is the start of a block, slab_block_index in internal.h).  A
 * class size d is d0 * 2^k with d0 odd; x (32 bits) is a multiple of d
 * exactly when rotr32(x * inv(d0), k) <= (2^32 - 1) / d, and that value
 * is then x / d (Hacker's Delight, 10-17).  Entry c holds inv(d0), the
 * inverse of d0 modulo 2^32 (Newton's iteration: 3, 6, 12, 24, 48 good
 * bits), in its low half and k in its high half. */
#define D_K(d) ((unsigned)__builtin_ctz(d))
#define D_ODD(d) ((uint32_t)((d) >> D_K(d)))
#define NEWTON(d, x) ((uint32_t)((x) * (uint32_t)(2u - (uint32_t)((d) * (x)))))
#define INV(d) NEWTON(d, NEWTON(d, NEWTON(d, NEWTON(d, (uint32_t)(d)))))
#define M1(c) (INV(D_ODD(S1(c))) | (uint64_t)D_K(S1(c)) << 32)
#define M4(c) M1(c), M1((c) + 1u), M1((c) + 2u), M1((c) + 3u)
#define M16(c) M4(c), M4((c) + 4u), M4((c) + 8u), M4((c) + 12u)

const uint64_t ace_class_div[HAK_NBINS] = {
	M16(0u), M16(16u), M16(32u), M16(48u), M4(64u)
};

_Static_assert(sizeof(ace_small_tab) == 2049, "ace_small_tab covers 0..32 KiB in 16-byte steps");
_Static_assert(HAK_NBINS == 68, "ace_class_size lists 68 classes");
_Static_assert(ACE_FORMULA(HAK_MID_MAX) == HAK_CLS_LARGE - 1, "32 KiB is the last mid class");
_Static_assert(ACE_FORMULA(HAK_TINY_MAX) == HAK_CLS_MID - 1, "1 KiB is the last tiny class");
_Static_assert(ACE_FORMULA(HAK_LARGE_MAX) == HAK_NCLS - 1, "1 MiB is the last large class");

unsigned ace_class_slow(size_t n)
{
	return ACE_FORMULA(n);
}

/* ---- W_MAX: the bounded round-up, one knob per tier ----
 *
 * A free block of 'have' bytes may serve a request of 'need' bytes when
 * need <= have <= need * W_MAX (the large tier's borrow from a larger
 * class, the huge cache's reuse of a larger mapping).  The knobs start at
 * HAKMEM_WMAX; knob_set_wmax changes one tier's at run time. */
uint64_t ace_wmax_limit(int tier, uint64_t need)
{
	uint64_t pct = atomic_load_explicit(&hak_cfg.wmax[tier], memory_order_relaxed);
	/* need / 100 * pct would lose up to 99 bytes of 'need' */
	return need <= UINT64_MAX / 400 ? need * pct / 100 : need / 100 * pct;
}

bool ace_within_wmax(int tier, uint64_t need, uint64_t have)
{
	return have >= need && have <= ace_wmax_limit(tier, need);
}

uint64_t ace_wmax_limit_mid(unsigned c, uint64_t need)
{
	uint64_t mask = atomic_load_explicit(&hak_cfg.wmax_canary_mask, memory_order_relaxed);
	uint64_t pct = c < 64 && ((mask >> c) & 1)
			       ? atomic_load_explicit(&hak_cfg.wmax_canary_pct, memory_order_relaxed)
			       : atomic_load_explicit(&hak_cfg.wmax[TIER_MID], memory_order_relaxed);
	return need * pct / 100; /* need <= 32 KiB */
}
