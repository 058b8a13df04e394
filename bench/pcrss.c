/* pcrss.c - a producer and a consumer: peak resident set against the most
 * bytes out at once (issue #13's producer/consumer row).  Not part of
 * bench/run: build it alone and run it under each allocator with
 * LD_PRELOAD.
 *
 *   gcc -O2 -pthread -o pcrss bench/pcrss.c
 *   LD_PRELOAD=libhakmem.so.0 ./pcrss LIVE_MIB MIN MAX SECONDS
 *
 * One thread allocates blocks of MIN..MAX bytes (uniform), writes each
 * whole and queues it while at most LIVE_MIB MiB are out; the other frees
 * the oldest, in bursts (while less than half is out, only one time in
 * four).  The main thread samples /proc/self/statm every 10 ms; it prints
 * the most bytes out at once, the peak resident set above the start (the
 * queue is written before the start), and their ratio.
 * tests/idle_prog.c (prodcons) is the same shape for make check.
 *
 * Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#define QN (1u << 20)
static void *q[QN];
static size_t qs[QN];
static _Atomic size_t head, tail;   /* producer writes head, consumer tail */
static _Atomic size_t live;
static size_t live_max, LIMIT, MINSZ, MAXSZ;
static _Atomic int stop;
static double now(void){struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec+t.tv_nsec*1e-9;}
static long rss_kib(void){ char b[4096]; int fd=open("/proc/self/statm",O_RDONLY); long s=0,r=0; ssize_t n=read(fd,b,sizeof b-1); close(fd); if(n>0){b[n]=0; sscanf(b,"%ld %ld",&s,&r);} return r*4; }
static void *producer(void *a){ (void)a; uint64_t x=88172645463325252ull; while(!atomic_load(&stop)){ size_t h=atomic_load_explicit(&head,memory_order_relaxed);
  if (h - atomic_load_explicit(&tail,memory_order_acquire) >= QN || atomic_load_explicit(&live,memory_order_relaxed) > LIMIT) { sched_yield(); continue; }
  x^=x<<13; x^=x>>7; x^=x<<17; size_t n = MINSZ + x % (MAXSZ-MINSZ+1); char *p=malloc(n); memset(p, (int)n, n);
  q[h%QN]=p; qs[h%QN]=n; size_t l=atomic_fetch_add_explicit(&live,n,memory_order_relaxed)+n; if(l>live_max) live_max=l;
  atomic_store_explicit(&head,h+1,memory_order_release);} return NULL; }
static void *consumer(void *a){ (void)a; uint64_t x=1234567; while(1){ size_t t=atomic_load_explicit(&tail,memory_order_relaxed);
  if (t == atomic_load_explicit(&head,memory_order_acquire)) { if (atomic_load(&stop)) break; sched_yield(); continue; }
  /* consume with lag: only when live > LIMIT/2 so the queue fluctuates */
  x^=x<<13; x^=x>>7; x^=x<<17;
  if (atomic_load_explicit(&live,memory_order_relaxed) < LIMIT/2 && (x & 3)) { sched_yield(); continue; }
  free(q[t%QN]); atomic_fetch_sub_explicit(&live,qs[t%QN],memory_order_relaxed); atomic_store_explicit(&tail,t+1,memory_order_release);} return NULL; }
int main(int argc,char**argv){ LIMIT=(size_t)atol(argv[1])<<20; MINSZ=atol(argv[2]); MAXSZ=atol(argv[3]); double secs=atof(argv[4]);
  memset(q, 0, sizeof q); memset(qs, 0, sizeof qs); long base=rss_kib(); pthread_t a,b; pthread_create(&a,0,producer,0); pthread_create(&b,0,consumer,0);
  double t0=now(); long peak=0; while(now()-t0<secs){ usleep(10000); long r=rss_kib(); if(r>peak) peak=r; }
  atomic_store(&stop,1); pthread_join(a,0); pthread_join(b,0);
  printf("live_max %.1f MiB  rss_peak-base %.1f MiB  ratio %.2f  (base %.1f)\n", live_max/1048576.0, (peak-base)/1024.0, (peak-base)*1024.0/live_max, base/1024.0); return 0; }
