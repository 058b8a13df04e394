/* util.c - the bottom layer: text without malloc, fatal errors, the
 * library's version, and the lock that knows its holder.
 *
 * Nothing here calls another file of lib/. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

HAKMEM_EXPORT const char *hak_version(void)
{
#define HAK_STR2(x) #x
#define HAK_STR(x) HAK_STR2(x)
	return HAK_STR(HAKMEM_VERSION_MAJOR) "." HAK_STR(HAKMEM_VERSION_MINOR) "." HAK_STR(
		HAKMEM_VERSION_PATCH);
}

size_t fmt_u64(char *buf, uint64_t v)
{
	char tmp[24];
	size_t n = 0, i = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		buf[i++] = tmp[--n];
	buf[i] = '\0';
	return i;
}

/* A byte count for people: "512 B", "1.5 KiB", "4.0 MiB", ... "16.0 EiB";
 * one decimal, rounded, below 1024 of its unit.  buf holds 16 bytes. */
size_t fmt_bytes(char *buf, uint64_t v)
{
	static const char units[][4] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	size_t n;
	if (v < 1024) {
		n = fmt_u64(buf, v);
		memcpy(buf + n, " B", 3);
		return n + 2;
	}
	unsigned u = 0;
	uint64_t unit = 1024, tenths;
	for (;;) {
		/* v / unit in tenths, rounded half up, without overflow */
		tenths = v / unit * 10 + (v % unit * 10 + unit / 2) / unit;
		if (tenths < 10240 || u == 5)
			break;
		unit <<= 10;
		u++;
	}
	n = fmt_u64(buf, tenths / 10);
	buf[n++] = '.';
	buf[n++] = (char)('0' + tenths % 10);
	buf[n++] = ' ';
	memcpy(buf + n, units[u], 4);
	return n + 3;
}

void hak_write_fd(int fd, const char *s, size_t n)
{
	int saved = errno;
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			break;
		}
		s += w;
		n -= (size_t)w;
	}
	errno = saved;
}

void hak_write_err(const char *s)
{
	hak_write_fd(2, s, strlen(s));
}

void hak_fatal(const char *file, int line, const char *what)
{
	char num[24];
	fmt_u64(num, (uint64_t)line);
	hak_write_err("hakmem: assertion failed: ");
	hak_write_err(what);
	hak_write_err(" at ");
	hak_write_err(file);
	hak_write_err(":");
	hak_write_err(num);
	hak_write_err("\n");
	abort();
}

/* The mark of a free block (internal.h, "the free key"): this value
 * until hak_init makes it random. */
_Atomic uintptr_t hak_free_key = (uintptr_t)0x9e3779b97f4a7c15ull;

void hak_report(const char *what, const void *p, const char *tail, size_t cls_size)
{
	static const char hex[] = "0123456789abcdef";
	char line[192], addr[24], num[24];
	size_t n = 0;
	addr[n++] = '0';
	addr[n++] = 'x';
	uintptr_t v = (uintptr_t)p;
	int shift = 60;
	while (shift > 0 && ((v >> shift) & 15) == 0)
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		addr[n++] = hex[(v >> shift) & 15];
	addr[n] = '\0';
	fmt_u64(num, cls_size);
	const char *parts[] = { "hakmem: ", what, " ", addr, tail,
				cls_size ? " (size class " : "", cls_size ? num : "",
				cls_size ? ")" : "" };
	n = 0;
	for (unsigned i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		for (const char *q = parts[i]; *q && n < sizeof(line) - 1; q++)
			line[n++] = *q;
	line[n++] = '\n';
	hak_write_fd(2, line, n);
}

void hak_heap_error(const char *what, const void *p, size_t cls_size)
{
	hak_report(what, p, "", cls_size);
	abort();
}

uintptr_t hak_secret = (uintptr_t)0x68616b6d656d2121ull; /* until hak_init */

uintptr_t hak_random_word(void)
{
	uintptr_t v = 0;
	ssize_t r;
	do
		r = getrandom(&v, sizeof(v), GRND_NONBLOCK);
	while (r < 0 && errno == EINTR);
	if (r != (ssize_t)sizeof(v)) {
		/* No getrandom (Linux before 3.17): where the stack and the
		 * library lie, the pid and the time.  Not AT_RANDOM: its bytes
		 * are the C library's stack and pointer guards, and a secret
		 * made from them would give them away. */
		struct timespec ts = { 0, 0 };
		clock_gettime(CLOCK_MONOTONIC, &ts);
		v = ((uintptr_t)&v ^ (uintptr_t)&hak_secret ^ ((uintptr_t)getpid() << 32) ^
		     (uintptr_t)ts.tv_nsec) *
		    0x9e3779b97f4a7c15ull;
	}
	return v;
}

void hak_secret_init(void)
{
	hak_secret ^= hak_random_word();
}

/* ---- locks (internal.h, "locks") ---- */

/* Its address names the thread that holds a hak_lock. */
__thread char tls_self __attribute__((tls_model("initial-exec")));

int hak_lock_after_fork(struct hak_lock *l)
{
	if (atomic_load_explicit(&l->holder, memory_order_relaxed) == (uintptr_t)&tls_self)
		return 0;
	if (pthread_mutex_trylock(&l->m) == 0) {
		pthread_mutex_unlock(&l->m);
		return 1;
	}
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
	if (l->adaptive)
		pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
	pthread_mutex_init(&l->m, &a);
	pthread_mutexattr_destroy(&a);
	atomic_store_explicit(&l->holder, 0, memory_order_relaxed);
	return -1;
}
