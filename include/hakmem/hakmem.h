/* hakmem.h - public API of the hakmem memory allocator.
 *
 * This is the only header hakmem installs.  Everything here is part of the
 * versioned API; see man 3 hakmem for the reference.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 */
#ifndef HAKMEM_HAKMEM_H
#define HAKMEM_HAKMEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAKMEM_VERSION_MAJOR 0
#define HAKMEM_VERSION_MINOR 1
#define HAKMEM_VERSION_PATCH 0
/* One integer that compares in release order: 0x00MMmmpp. */
#define HAKMEM_VERSION ((HAKMEM_VERSION_MAJOR << 16) | \
                        (HAKMEM_VERSION_MINOR << 8) | HAKMEM_VERSION_PATCH)

#if defined(__GNUC__)
#  define HAKMEM_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#  define HAKMEM_ALLOC_SIZE(...) __attribute__((alloc_size(__VA_ARGS__)))
#else
#  define HAKMEM_MALLOC_ATTR
#  define HAKMEM_ALLOC_SIZE(...)
#endif

/* The library's version, "MAJOR.MINOR.PATCH"; a static string. */
const char *hak_version(void);

/* The standard allocation functions under hakmem's own names.  They behave
 * exactly as the malloc family that hakmem overrides (see man 3 hakmem):
 * zero sizes give a unique pointer, too-large sizes give NULL with errno
 * ENOMEM, freeing NULL does nothing, errno is preserved by hak_free. */
void *hak_malloc(size_t size) HAKMEM_MALLOC_ATTR HAKMEM_ALLOC_SIZE(1);
void *hak_calloc(size_t nmemb, size_t size) HAKMEM_MALLOC_ATTR HAKMEM_ALLOC_SIZE(1, 2);
void *hak_realloc(void *ptr, size_t size) HAKMEM_ALLOC_SIZE(2);
void  hak_free(void *ptr);
/* size must be the size asked for (or any size up to hak_usable_size);
 * hakmem does not need it and does not trust it. */
void  hak_free_sized(void *ptr, size_t size);
/* alignment: a power of two; NULL with errno EINVAL otherwise. */
void *hak_aligned_alloc(size_t alignment, size_t size) HAKMEM_MALLOC_ATTR HAKMEM_ALLOC_SIZE(2);
/* Returns 0, EINVAL (alignment not a power of two multiple of
 * sizeof(void *); *memptr untouched) or ENOMEM (*memptr untouched). */
int   hak_posix_memalign(void **memptr, size_t alignment, size_t size);
/* The bytes the block at ptr spans (>= the size asked for); 0 for NULL or
 * for a pointer hakmem did not hand out.  Only the bytes asked for are the
 * program's to use: the functions above are declared alloc_size, so a
 * program built with _FORTIFY_SOURCE checks its writes against the size it
 * asked for.  To use the rest, ask for it with
 *     p = hak_realloc(p, hak_usable_size(p));
 * which never moves the block (it returns p, in every tier).  The same
 * holds for malloc_usable_size and realloc. */
size_t hak_usable_size(const void *ptr);

/* Statistics.  Counters are summed over all threads when read; the values
 * are a snapshot, not an atomic one. */
struct hak_stats {
	uint32_t version;            /* HAKMEM_VERSION of the library that filled it */
	uint32_t size;               /* sizeof(struct hak_stats) it filled */
	uint64_t os_mapped;          /* bytes mapped from the OS now */
	uint64_t os_mapped_peak;     /* highest os_mapped seen */
	uint64_t os_map_calls;       /* mmap calls that succeeded */
	uint64_t os_unmap_calls;     /* munmap calls */
	uint64_t os_purged;          /* bytes given back with madvise, in total */
	uint64_t segments;           /* 2 MiB segments in use (tiny, mid, large) */
	uint64_t segments_peak;
	uint64_t segments_cached;    /* empty segments kept for reuse */
	uint64_t segments_abandoned; /* segments of exited threads awaiting adoption */
	uint64_t tiny_refills;       /* refills of a thread's tiny free lists */
	uint64_t mid_refills;        /* refills of a thread's mid (pool) caches */
	uint64_t large_refills;      /* refills of a thread's large caches */
	uint64_t slabs_new;          /* slabs carved from segments */
	uint64_t slabs_retired;      /* slabs that emptied and went back */
	uint64_t segments_adopted;   /* abandoned segments taken over */
	uint64_t remote_frees;       /* frees of a block owned by another thread */
	uint64_t huge_allocs;        /* direct mappings handed out (> 1 MiB) */
	uint64_t huge_cache_hits;    /* ... of which came from the huge cache */
	uint64_t huge_frees;
	uint64_t foreign_frees;      /* free/realloc of pointers hakmem never gave */
	uint64_t threads_started;    /* thread heaps created */
	uint64_t threads_exited;     /* thread heaps flushed at thread exit */
	uint64_t pool_page_refills;  /* mid refills that took pages */
	uint64_t pool_pages_taken;   /* ... and the pages they took */
	uint64_t pool_shared_pushes; /* mid pages put on the shared stacks */
	uint64_t pool_shared_pops;   /* ... and taken off them */
	uint64_t pool_shared_pages;  /* pages on the shared stacks now */
	uint64_t pool_cas;           /* CAS attempts on the shared stacks */
	uint64_t pool_cas_retries;   /* ... of which failed and were retried */
	uint64_t os_unmap_failures;  /* munmap calls the kernel refused */
	uint64_t os_unmap_pending;   /* ... bytes they left mapped (purged), retried later */
	uint64_t os_unmap_lost;      /* ... bytes left mapped for good (no room to wait) */
	uint64_t os_remap_failures;  /* moving mremap calls refused (the block was copied) */
	/* ACE's waste, always counted on the slow paths: the bytes asked for
	 * by the mallocs that took new memory (one sample per miss) or a
	 * larger mid block (W_MAX), and the bytes their blocks hold */
	uint64_t ace_request_bytes;
	uint64_t ace_given_bytes;    /* waste = given - request */
	uint64_t learner_changes;    /* knobs the learner changed (HAKMEM_LEARN) */
	uint64_t reserved[10];       /* zero; room to grow without an ABI break */
};

/* Fills *st (if st is not NULL) and returns 0; -1 with errno EINVAL for
 * NULL. */
int hak_stats_get(struct hak_stats *st);

/* Writes the statistics as text for people: the memory mapped, in use
 * and cached, with units; per tier and per size class; the mid pages and
 * the threads; the HAKMEM_* settings in effect and their source.  The
 * text is produced in stack buffers and handed to out(arg, text) piece by
 * piece; hakmem never allocates while printing.  With out == NULL it is
 * written to standard error (fd 2). */
typedef void (*hak_print_fn)(void *arg, const char *text);
void hak_stats_print(hak_print_fn out, void *arg);

/* hak_stats_print with flags; 0 gives hak_stats_print's text.  Each piece
 * of text handed to out ends a line.  Returns 0, or -1 with errno EINVAL
 * and nothing printed when flags holds a bit this library does not know,
 * so that a program can tell an older library from a newer one. */
#define HAK_STATS_JSON 0x1u /* one JSON object with the same numbers */
int hak_stats_print_opts(hak_print_fn out, void *arg, unsigned flags);

/* Returns the calling thread's cached free blocks and every empty slab and
 * segment to the OS now (madvise/munmap), without waiting for the purge
 * delay, and hands back the blocks of other threads this thread freed and
 * still holds gathered; what the shared reserve heap (which serves a
 * thread whose own heap could not be made) holds free goes back too.
 * Blocks cached by other threads are left where they are. */
void hak_collect(void);

#ifdef __cplusplus
}
#endif
#endif /* HAKMEM_HAKMEM_H */
