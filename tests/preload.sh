#!/bin/sh
# preload.sh - real programs under LD_PRELOAD=libhakmem.so.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Each program runs twice, with the C library's malloc and with hakmem
# preloaded, and the two runs must give the same results:
#   python3  PYTHONMALLOC=malloc: some of its own test suite when the
#            test package is installed, and always an allocation-heavy
#            script (json, dicts, sorting, re, threads) that prints a digest;
#   git      init, add, commit, log, gc, fsck with a fixed author and date;
#   gcc      compiles a C file (the object files must be identical) and the
#            programs built must print the same;
#   sort     500,000 generated lines, several ways (sha256 of the outputs).
# That hakmem was really loaded is checked for each program (HAKMEM_STATS=1
# prints "hakmem statistics" at exit).  A program that is not installed is
# skipped with a message; if none is installed the test is skipped (77).
#
# Run by make check, which exports abs_top_builddir.

set -u
: "${abs_top_builddir:?run this through make check (abs_top_builddir is not set)}"

lib="$abs_top_builddir/lib/.libs/libhakmem.so"
config_h="$abs_top_builddir/config.h"

if test ! -f "$lib"; then
	echo "SKIP: $lib was not built (configured with --disable-shared?)"
	exit 77
fi
if grep -q '^#define HAKMEM_OVERRIDE 0' "$config_h" 2>/dev/null; then
	echo "SKIP: configured with --disable-override: preloading replaces nothing"
	exit 77
fi

# No HAKMEM_* settings from the caller's environment.
for v in $(env | sed -n 's/^\(HAKMEM_[A-Za-z0-9_]*\)=.*/\1/p'); do
	unset "$v"
done
unset LD_PRELOAD

work=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-preload.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT INT TERM

ran=0
failures=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

have() {
	command -v "$1" >/dev/null 2>&1
}

# loaded NAME CMD...: CMD under hakmem with HAKMEM_STATS=1 must print the
# statistics, proving the library was loaded and served the program.
# Programs that close standard error before exiting (coreutils do, in an
# atexit handler) lose the statistics; for them an unknown HAKMEM_* name,
# which hakmem warns about when it starts, is the proof instead.
loaded() {
	name=$1
	shift
	HAKMEM_STATS=1 LD_PRELOAD="$lib" "$@" >"$work/loaded.out" 2>"$work/loaded.err"
	if grep -q '^hakmem statistics' "$work/loaded.err"; then
		echo "ok: $name runs with hakmem loaded"
		return 0
	fi
	HAKMEM_PRELOAD_PROBE=1 LD_PRELOAD="$lib" "$@" >"$work/loaded.out" 2>"$work/loaded.err"
	if grep -q '^hakmem: warning: unknown variable HAKMEM_PRELOAD_PROBE ignored' "$work/loaded.err"; then
		echo "ok: $name runs with hakmem loaded (note: HAKMEM_STATS=1 printed nothing: $name closes stderr before exit)"
		return 0
	fi
	fail "$name: hakmem was not loaded (no statistics with HAKMEM_STATS=1, no warning for HAKMEM_PRELOAD_PROBE):"
	tail -n 5 "$work/loaded.err" | sed 's/^/  stderr: /'
	return 1
}

# same NAME FILE1 FILE2: the two outputs must be identical.
same() {
	if cmp -s "$2" "$3"; then
		echo "ok: $1: same result with and without hakmem"
	else
		fail "$1: results differ with hakmem ($3) and without ($2):"
		diff "$2" "$3" | head -n 20 | sed 's/^/  /'
	fi
}

# ---- python3 -------------------------------------------------------------------
python_tests() {
	py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
	if test -z "$py" || test ! -x "$py"; then
		fail "python3 is installed but does not run"
		return
	fi
	ran=$((ran + 1))
	loaded python3 "$py" -c 'import json; json.dumps(list(range(100)))' || return
	cat >"$work/alloc.py" <<'PYEOF'
import collections, hashlib, json, random, re, threading

rnd = random.Random(12345)
h = hashlib.sha256()

def randbytes(n):
    return rnd.getrandbits(8 * n).to_bytes(n, "little") if n else b""

for i in range(300):
    obj = {"k%d" % j: [rnd.random(), "x" * rnd.randint(0, 2000),
                       {"n": j, "l": list(range(rnd.randint(0, 200)))}]
           for j in range(rnd.randint(1, 50))}
    s = json.dumps(obj, sort_keys=True)
    assert json.loads(s) == obj
    h.update(s.encode())

d = {}
for i in range(200000):
    d[str(rnd.getrandbits(40))] = i
    if i % 3 == 0:
        d.pop(next(iter(d)))
h.update(repr(sorted(d.items())[:2000]).encode())

l = [rnd.random() for _ in range(300000)]
l.sort()
h.update(repr(l[::1000]).encode())
words = ["".join(rnd.choice("abcdef") for _ in range(rnd.randint(1, 30)))
         for _ in range(100000)]
words.sort(key=lambda w: (len(w), w))
h.update("".join(words[::100]).encode())
c = collections.Counter(words)
h.update(repr(c.most_common(50)).encode())

text = " ".join(words)
for pat in (r"a+b", r"(c|d)e{2,}", r"\b[a-c]+\b", r"(\w)\1"):
    m = re.findall(pat, text)
    h.update(str(len(m)).encode())
    h.update(repr(m[:100]).encode())

for _ in range(200):
    blob = randbytes(rnd.choice([10, 1000, 50000, 2000000]))
    h.update(hashlib.sha256(blob).digest())

def work(k, out):
    r = random.Random(k)
    acc = []
    for i in range(20000):
        acc.append(str(r.random()) * r.randint(1, 5))
        if i % 7 == 0:
            acc.pop(r.randrange(len(acc)))
    out[k] = hashlib.sha256("".join(acc).encode()).hexdigest()

out = {}
ts = [threading.Thread(target=work, args=(k, out)) for k in range(4)]
for t in ts:
    t.start()
for t in ts:
    t.join()
h.update(repr(sorted(out.items())).encode())
print(h.hexdigest())
PYEOF
	PYTHONMALLOC=malloc PYTHONHASHSEED=0 "$py" "$work/alloc.py" >"$work/py.plain" 2>&1
	echo "exit $?" >>"$work/py.plain"
	PYTHONMALLOC=malloc PYTHONHASHSEED=0 LD_PRELOAD="$lib" "$py" "$work/alloc.py" >"$work/py.hak" 2>&1
	echo "exit $?" >>"$work/py.hak"
	same "python3 allocation script" "$work/py.plain" "$work/py.hak"

	if "$py" -c 'import test.libregrtest, test.test_list, test.test_dict, test.test_json' 2>/dev/null; then
		for t in test_list test_dict test_json test_re; do
			PYTHONMALLOC=malloc "$py" -m test -q "$t" >"$work/pt.plain" 2>&1
			rc1=$?
			PYTHONMALLOC=malloc LD_PRELOAD="$lib" "$py" -m test -q "$t" >"$work/pt.hak" 2>&1
			rc2=$?
			if test $rc1 -ne $rc2; then
				fail "python3 -m test $t: exit $rc1 without hakmem, $rc2 with it:"
				tail -n 20 "$work/pt.hak" | sed 's/^/  /'
			elif test $rc2 -ne 0; then
				echo "note: python3 -m test $t fails here without hakmem too (exit $rc1); compared exit codes only"
			else
				echo "ok: python3 -m test $t passes with hakmem"
			fi
		done
	else
		echo "note: python3's test package is not installed (Debian: libpython3-testsuite); ran the allocation script only"
	fi
}

# ---- git ---------------------------------------------------------------------------
git_session() {
	# $1: directory; runs a scripted session there, prints what git says.
	dir=$1
	mkdir -p "$dir" && cd "$dir" || return 1
	HOME=$dir
	GIT_CONFIG_NOSYSTEM=1
	GIT_CONFIG_GLOBAL=/dev/null
	GIT_AUTHOR_NAME="Hak Tester"
	GIT_AUTHOR_EMAIL="tester@example.org"
	GIT_COMMITTER_NAME="Hak Tester"
	GIT_COMMITTER_EMAIL="tester@example.org"
	export HOME GIT_CONFIG_NOSYSTEM GIT_CONFIG_GLOBAL GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL \
		GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL
	git -c init.defaultBranch=main init -q repo && cd repo || return 1
	mkdir -p src || return 1
	for c in 1 2 3 4 5 6; do
		GIT_AUTHOR_DATE="2026-01-0${c}T12:00:00+0000"
		GIT_COMMITTER_DATE=$GIT_AUTHOR_DATE
		export GIT_AUTHOR_DATE GIT_COMMITTER_DATE
		awk -v c=$c 'BEGIN {
			for (f = 0; f < 60; f++) {
				file = sprintf("src/file%02d.txt", f)
				for (i = 0; i < 200 + 37 * f; i++)
					printf "line %d of file %d, commit %d\n", i, f, (i % (c + f + 1) == 0) ? c : 0 > file
				close(file)
			}
		}' </dev/null || return 1
		git add -A && git commit -q -m "commit $c" || return 1
	done
	git log --stat --format='%H %an %ad %s' --date=iso
	git gc -q
	git fsck --no-progress --full
	git rev-list --objects --all | sort
	git diff --stat HEAD~4 HEAD
	git cat-file -p HEAD
	git count-objects | sed 's/, [0-9]* kilobytes//'
}

git_tests() {
	ran=$((ran + 1))
	loaded git git --version || return
	(git_session "$work/git.plain") >"$work/git.plain.out" 2>&1
	echo "exit $?" >>"$work/git.plain.out"
	(LD_PRELOAD="$lib"; export LD_PRELOAD; git_session "$work/git.hak") \
		>"$work/git.hak.out" 2>&1
	echo "exit $?" >>"$work/git.hak.out"
	same "git (init, add, commit, log, gc, fsck)" "$work/git.plain.out" "$work/git.hak.out"
}

# ---- gcc ---------------------------------------------------------------------------------
gcc_tests() {
	ran=$((ran + 1))
	loaded gcc gcc --version || return
	for d in gcc.plain gcc.hak; do
		mkdir -p "$work/$d"
		cat >"$work/$d/prog.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node { struct node *next; unsigned long v; char name[24]; };

static int cmp(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
	return (x > y) - (x < y);
}

int main(void)
{
	enum { N = 100000 };
	unsigned long *a = malloc(N * sizeof(*a)), seed = 1, sum = 0;
	struct node *head = NULL;

	for (int i = 0; i < N; i++) {
		seed = seed * 6364136223846793005UL + 1442695040888963407UL;
		a[i] = seed >> 20;
	}
	qsort(a, N, sizeof(*a), cmp);
	for (int i = 0; i < N; i += 100) {
		struct node *n = malloc(sizeof(*n));
		n->v = a[i];
		snprintf(n->name, sizeof(n->name), "n%d", i);
		n->next = head;
		head = n;
	}
	while (head != NULL) {
		struct node *n = head;
		sum += n->v + strlen(n->name);
		head = n->next;
		free(n);
	}
	printf("%lu %lu %lu\n", a[0], a[N / 2], sum);
	free(a);
	return 0;
}
CEOF
	done
	(cd "$work/gcc.plain" && gcc -O2 -Wall -c prog.c -o prog.o && gcc prog.o -o prog) \
		>"$work/gcc.plain.out" 2>&1 || fail "gcc without hakmem failed"
	(cd "$work/gcc.hak" && LD_PRELOAD="$lib" gcc -O2 -Wall -c prog.c -o prog.o &&
		LD_PRELOAD="$lib" gcc prog.o -o prog) >"$work/gcc.hak.out" 2>&1 ||
		{ fail "gcc with hakmem failed:"; sed 's/^/  /' "$work/gcc.hak.out"; return; }
	same "gcc object file" "$work/gcc.plain/prog.o" "$work/gcc.hak/prog.o"
	same "gcc messages" "$work/gcc.plain.out" "$work/gcc.hak.out"
	"$work/gcc.plain/prog" >"$work/gcc.plain.run" 2>&1
	LD_PRELOAD="$lib" "$work/gcc.hak/prog" >"$work/gcc.hak.run" 2>&1
	same "program built by gcc (run with hakmem)" "$work/gcc.plain.run" "$work/gcc.hak.run"
}

# ---- sort --------------------------------------------------------------------------------
sort_tests() {
	ran=$((ran + 1))
	loaded sort sort --version || return
	if ! have awk; then
		fail "awk is needed to generate sort's input"
		return
	fi
	awk 'BEGIN {
		x = 12345
		for (i = 0; i < 500000; i++) {
			x = (x * 1103515245 + 12345) % 2147483648
			printf "%08x %d %s\n", x, (x % 100000), substr("abcdefghijklmnopqrstuvwxyz", (x % 26) + 1, (x % 13) + 1)
		}
	}' >"$work/sort.in"
	for mode in plain hak; do
		pre=
		test $mode = hak && pre=$lib
		: >"$work/sort.$mode"
		for args in "" "-n -k2" "-u -k3" "-r -S 1M" "--parallel=2 -S 4M -k2,2n -k1,1"; do
			# shellcheck disable=SC2086
			LC_ALL=C LD_PRELOAD="$pre" sort -T "$work" $args "$work/sort.in" | sha256sum >>"$work/sort.$mode"
		done
	done
	same "sort (500000 lines, 5 ways)" "$work/sort.plain" "$work/sort.hak"
}

skipped=""
if have python3; then python_tests; else echo "SKIP: python3 not installed"; skipped="$skipped python3"; fi
if have git; then git_tests; else echo "SKIP: git not installed"; skipped="$skipped git"; fi
if have gcc; then gcc_tests; else echo "SKIP: gcc not installed"; skipped="$skipped gcc"; fi
if have sort && have sha256sum; then sort_tests; else echo "SKIP: sort (or sha256sum) not installed"; skipped="$skipped sort"; fi

if test $ran -eq 0; then
	echo "SKIP: none of python3, git, gcc, sort is installed"
	exit 77
fi
if test $failures -ne 0; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "PASS: $ran program(s) give the same results under hakmem${skipped:+ (skipped:$skipped)}"
exit 0
