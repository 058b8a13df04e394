/* track.h - telling valgrind's memcheck about hakmem's blocks.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 *
 * Built with --enable-valgrind-annotations (HAKMEM_VALGRIND), hakmem
 * describes its blocks to memcheck with client requests, which cost a few
 * instructions when the program does not run under valgrind:
 *
 *   HAK_TRACK_ALLOC(p, n)      a block of n bytes (asked for) handed out
 *                              at p (NULL: nothing); its bytes beyond n,
 *                              up to the usable size, are made
 *                              inaccessible, so that an overrun is seen
 *                              and HAK_TRACK_SIZE can find n again
 *   HAK_TRACK_ZALLOC(p, n)     the same for a block of zeros (calloc)
 *   HAK_TRACK_FREE(p)          the block at p is freed (NULL: nothing)
 *   HAK_TRACK_RESIZE(p, o, n)  realloc kept the block at p: o bytes -> n
 *   HAK_TRACK_OLD(v, p, u)     declares size_t v, the size the block at
 *                              p (usable size u) was asked for; nothing
 *                              (u not evaluated) without annotations
 *   HAK_TRACK_MOVED(p, q, o, n) the huge realloc of p (o bytes) gave q
 *                              (NULL: nothing changed), n bytes: resized
 *                              in place, or moved with its contents
 *                              (then known as defined: its copy was
 *                              hakmem's, by mremap or in silence)
 *   HAK_TRACK_QUIET_BEGIN/END  no memcheck error between them (realloc
 *                              copies a block whole, the bytes beyond the
 *                              size asked for included)
 *   HAK_TRACK_OPEN(p, len)     hakmem itself reads or writes len bytes at
 *   HAK_TRACK_CLOSE(p, len)    p of a free block (a free-list link): open
 *                              before, closed (inaccessible) after
 *   HAK_TRACK_PEEK(w)          the word at w (the free key of a block that
 *                              may be live), read without changing what
 *                              memcheck knows of it
 *
 * The calls are at the API entry points of lib/malloc.c and around the
 * free-list links (blk_next, blk_set_next in internal.h), each marked
 * "track.h".  Without the switch every macro expands to nothing (or to its
 * argument), and the library is the same code as without this header. */
#ifndef HAKMEM_TRACK_H
#define HAKMEM_TRACK_H

#if defined(HAKMEM_VALGRIND) && HAKMEM_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>

#define HAK_TRACK_ALLOC_(p, n, zero)                                              \
	do {                                                                      \
		void *hak_t_p_ = (p);                                             \
		size_t hak_t_n_ = (n);                                            \
		if (hak_t_p_ != NULL) {                                           \
			size_t hak_t_u_ = hak_usable_size(hak_t_p_);              \
			VALGRIND_MALLOCLIKE_BLOCK(hak_t_p_, hak_t_n_, 0, (zero)); \
			if (hak_t_u_ > hak_t_n_)                                  \
				(void)VALGRIND_MAKE_MEM_NOACCESS(                 \
					(char *)hak_t_p_ + hak_t_n_,              \
					hak_t_u_ - hak_t_n_);                     \
		}                                                                 \
	} while (0)
#define HAK_TRACK_ALLOC(p, n) HAK_TRACK_ALLOC_(p, n, 0)
#define HAK_TRACK_ZALLOC(p, n) HAK_TRACK_ALLOC_(p, n, 1)
#define HAK_TRACK_FREE(p)                                                         \
	do {                                                                      \
		if ((p) != NULL)                                                  \
			VALGRIND_FREELIKE_BLOCK((p), 0);                          \
	} while (0)
#define HAK_TRACK_RESIZE(p, o, n) VALGRIND_RESIZEINPLACE_BLOCK((p), (o), (n), 0)
#define HAK_TRACK_QUIET_BEGIN() VALGRIND_DISABLE_ERROR_REPORTING
#define HAK_TRACK_QUIET_END() VALGRIND_ENABLE_ERROR_REPORTING
#define HAK_TRACK_OPEN(p, len) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (len)))
#define HAK_TRACK_CLOSE(p, len) ((void)VALGRIND_MAKE_MEM_NOACCESS((p), (len)))

/* The first inaccessible byte of the block, found in silence: the size
 * asked for (HAK_TRACK_ALLOC closed the rest). */
static inline size_t hak_track_size(const void *p, size_t usable)
{
	if (!RUNNING_ON_VALGRIND)
		return usable;
	VALGRIND_DISABLE_ERROR_REPORTING;
	uintptr_t bad = (uintptr_t)VALGRIND_CHECK_MEM_IS_ADDRESSABLE(p, usable);
	VALGRIND_ENABLE_ERROR_REPORTING;
	return bad == 0 ? usable : (size_t)(bad - (uintptr_t)p);
}
#define HAK_TRACK_OLD(v, p, u) size_t v = hak_track_size((p), (u))

static inline void hak_track_moved(void *p, void *q, size_t o, size_t n)
{
	if (q == p) {
		VALGRIND_RESIZEINPLACE_BLOCK(p, o, n, 0);
	} else if (q != NULL) {
		VALGRIND_FREELIKE_BLOCK(p, 0);
		HAK_TRACK_ALLOC_(q, n, 1);
	}
}
#define HAK_TRACK_MOVED(p, q, o, n) hak_track_moved((p), (q), (o), (n))

static inline uintptr_t hak_track_peek(const uintptr_t *w)
{
	if (!RUNNING_ON_VALGRIND)
		return *w;
	unsigned char vbits[sizeof(*w)];
	int got = VALGRIND_GET_VBITS(w, vbits, sizeof(*w)); /* 1: saved; 3: not addressable */
	(void)VALGRIND_MAKE_MEM_DEFINED(w, sizeof(*w));
	uintptr_t v = *w;
	if (got == 1)
		(void)VALGRIND_SET_VBITS(w, vbits, sizeof(*w));
	else
		(void)VALGRIND_MAKE_MEM_NOACCESS(w, sizeof(*w));
	return v;
}
#define HAK_TRACK_PEEK(w) hak_track_peek(w)

#else

#define HAK_TRACK_ALLOC(p, n) ((void)0)
#define HAK_TRACK_ZALLOC(p, n) ((void)0)
#define HAK_TRACK_FREE(p) ((void)0)
#define HAK_TRACK_RESIZE(p, o, n) ((void)0)
#define HAK_TRACK_OLD(v, p, u)
#define HAK_TRACK_MOVED(p, q, o, n) ((void)0)
#define HAK_TRACK_QUIET_BEGIN() ((void)0)
#define HAK_TRACK_QUIET_END() ((void)0)
#define HAK_TRACK_OPEN(p, len) ((void)0)
#define HAK_TRACK_CLOSE(p, len) ((void)0)
#define HAK_TRACK_PEEK(w) (*(w))

#endif
#endif /* HAKMEM_TRACK_H */
