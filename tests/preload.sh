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
#   sort     500,000 generated lines, several ways (sha256 of the outputs);
#   ls       a generated tree (fixed names, sizes, modes, times) listed
#            eight ways (not a system directory: a package installed
#            between the two runs would change it); ls links libselinux,
#            whose constructor allocates before hakmem's;
#   sqlite3  the shell runs an SQL script of its own on a database file
#            (60,000 rows from recursive CTEs, indexes, joins, window and
#            JSON functions, a rollback, VACUUM) and prints the results.
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
# which hakmem warns about when it starts, is the proof instead.  A program
# killed by a signal fails here, whatever it printed.
loaded() {
	name=$1
	shift
	HAKMEM_STATS=1 LD_PRELOAD="$lib" "$@" >"$work/loaded.out" 2>"$work/loaded.err"
	rc=$?
	if test $rc -gt 128; then
		fail "$name ($*) was killed by signal $((rc - 128)) under hakmem:"
		tail -n 5 "$work/loaded.err" | sed 's/^/  stderr: /'
		return 1
	fi
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

# ---- ls ------------------------------------------------------------------------------------
# ls links libselinux, whose constructor allocates before hakmem's.  A tree
# with fixed names, sizes, modes and times (touch -d) is listed many ways;
# the outputs go beside it, not into it, so the two runs list the same tree.
ls_tests() {
	ran=$((ran + 1))
	loaded ls ls -la / || return
	if ! have awk || ! have touch; then
		fail "awk and touch are needed to build the tree that ls lists"
		return
	fi
	t="$work/ls/tree"
	mkdir -p "$t" || { fail "cannot create $t"; return; }
	# 40 directories, 60 files in each; awk writes the files and, for their
	# modes, times and symbolic links, lists that a few calls of chmod,
	# touch and ln take whole.
	awk -v t="$t" 'BEGIN {
		for (d = 0; d < 40; d++)
			printf "%s/dir-%02d/sub %d/%s\n", t, d, d % 7, substr("abcdefghij", 1 + d % 10, 3 + d % 5)
	}' </dev/null >"$work/ls/dirs.lst" &&
	xargs -d '\n' mkdir -p <"$work/ls/dirs.lst" &&
	awk -v l="$work/ls" '{
		dir = $0
		for (f = 0; f < 60; f++) {
			x = (x * 69069 + 1) % 4294967296	# exact in a double
			y = int(x / 65536)
			name = sprintf("%s/file%d-%s.%s", dir, f, substr("klmnopqrstuvwxyzKLMNOPQRSTUVWXYZ", 1 + y % 20, 1 + y % 11), (y % 3) ? "txt" : "c")
			n = y % 5000
			s = ""
			for (i = 0; i < n; i += 50)
				s = s sprintf("%-49.49s\n", name)
			printf "%s", substr(s, 1, n) > name
			close(name)
			print name > (l "/mode" (1 + y % 8) ".lst")
			print name > (l "/time" (y % 16) ".lst")
			if (f % 13 == 0)
				print name > (l "/links.lst")
		}
	}' x=7 "$work/ls/dirs.lst" || { fail "could not build the tree that ls lists"; return; }
	set -- 644 600 755 640 444 664 700 750
	for m in 1 2 3 4 5 6 7 8; do
		xargs -d '\n' chmod "$1" <"$work/ls/mode$m.lst" || { fail "chmod $1 failed"; return; }
		shift
	done
	for k in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
		xargs -d '\n' touch -d "@$((1700000000 + k * 3000017))" <"$work/ls/time$k.lst" ||
			{ fail "touch failed"; return; }
	done
	# dangling links named after the files they would point to
	while IFS= read -r f; do
		ln -s "${f##*/}" "$f.lnk" || { fail "ln -s failed"; return; }
	done <"$work/ls/links.lst"
	find "$t" -type d -exec touch -d @1600000000 {} + || { fail "touch (directories) failed"; return; }
	for mode in plain hak; do
		pre=
		test $mode = hak && pre=$lib
		(
			cd "$t" || exit 1
			run() {
				LD_PRELOAD="$pre" "$@"
				echo "exit $?"
			}
			run env LC_ALL=C ls -laR --time-style=+%s .
			run env LC_ALL=C.UTF-8 ls -lR --time-style=full-iso -S -h .
			run env LC_ALL=C ls -R -1 -t -r -i -s -F .
			run env LC_ALL=C ls -R -x -v -w 100 --quoting-style=c .
			run env LC_ALL=C LS_COLORS='di=01;34:ln=01;36:*.c=01;32:*.txt=00;33' \
				ls -R -C --color=always -w 160 .
			run env LC_ALL=C ls -laR --time-style=+%s --sort=extension --group-directories-first .
			run env LC_ALL=C ls -l -d ./*/*/* ./*/*/*/*7*
		) >"$work/ls.$mode" 2>&1
	done
	same "ls (a generated tree of $(find "$t" | wc -l) entries listed 8 ways)" \
		"$work/ls.plain" "$work/ls.hak"
}

# ---- sqlite3 -------------------------------------------------------------------------------
# The sqlite3 shell runs a script of its own on a database file: tables
# filled by recursive CTEs, indexes, joins, GROUP BY, ORDER BY, window and
# JSON functions, a transaction rolled back, VACUUM and an integrity check.
# Both runs start from no database and must print the same.
sqlite_tests() {
	ran=$((ran + 1))
	loaded sqlite3 sqlite3 :memory: 'select 1;' || return
	cat >"$work/script.sql" <<'SQLEOF'
.headers on
.mode list
PRAGMA page_size = 4096;
PRAGMA journal_mode = DELETE;
PRAGMA cache_size = -2000;

CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
                       city TEXT, joined INTEGER);
CREATE TABLE item (id INTEGER PRIMARY KEY, label TEXT, price REAL,
                   tags TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER
                     REFERENCES customer(id), item INTEGER REFERENCES item(id),
                     qty INTEGER, day INTEGER, note TEXT);

-- 5000 customers, 2000 items, 60000 orders; x is a linear congruential
-- sequence, so every run makes the same rows.
WITH RECURSIVE c(i, x) AS (
  SELECT 1, 42
  UNION ALL
  SELECT i + 1, (x * 1103515245 + 12345) % 2147483648 FROM c WHERE i < 5000)
INSERT INTO customer
SELECT i, 'customer-' || i || '-' || substr('abcdefghijklmnopqrstuvwxyz', 1 + x % 26, 1 + x % 17),
       'city' || (x % 97), 1700000000 + x % 31536000 FROM c;

WITH RECURSIVE c(i, x) AS (
  SELECT 1, 4242
  UNION ALL
  SELECT i + 1, (x * 69069 + 1) % 4294967296 FROM c WHERE i < 2000)
INSERT INTO item
SELECT i, printf('item %05d %s', i, hex(zeroblob(x % 40))),
       round((x % 100000) / 100.0, 2),
       json_array('t' || (x % 7), 't' || (x % 11), json_object('w', x % 13, 'big', i % 50 = 0)) FROM c;

WITH RECURSIVE c(i, x) AS (
  SELECT 1, 7
  UNION ALL
  SELECT i + 1, (x * 1103515245 + 12345) % 2147483648 FROM c WHERE i < 60000)
INSERT INTO orders
SELECT i, 1 + x % 5000, 1 + (x / 5000) % 2000, 1 + x % 9, x % 365,
       CASE WHEN x % 10 = 0 THEN NULL ELSE substr(printf('%.*c', 1 + x % 300, 'n'), 1) END FROM c;

CREATE INDEX orders_customer ON orders(customer);
CREATE INDEX orders_item_day ON orders(item, day);
CREATE INDEX customer_city ON customer(city, name);
CREATE UNIQUE INDEX item_label ON item(label);
ANALYZE;

SELECT 'counts' AS what, (SELECT count(*) FROM customer) AS customers,
       (SELECT count(*) FROM item) AS items, (SELECT count(*) FROM orders) AS orders,
       (SELECT sum(length(note)) FROM orders) AS note_bytes;

-- joins, GROUP BY, ORDER BY
SELECT c.city, count(*) AS n, sum(o.qty * i.price) AS revenue,
       round(avg(o.qty), 4) AS avg_qty
FROM orders o JOIN customer c ON c.id = o.customer JOIN item i ON i.id = o.item
GROUP BY c.city ORDER BY revenue DESC, c.city LIMIT 15;

SELECT i.label, count(o.id) AS n, group_concat(DISTINCT o.qty) AS qtys
FROM item i LEFT JOIN orders o ON o.item = i.id AND o.day < 10
GROUP BY i.id HAVING n >= 3 ORDER BY n DESC, i.label LIMIT 10;

-- window functions
SELECT customer, day, qty, running, rnk, prev_day FROM (
  SELECT customer, day, qty,
         sum(qty) OVER (PARTITION BY customer ORDER BY day, id) AS running,
         rank() OVER (PARTITION BY customer ORDER BY qty DESC) AS rnk,
         lag(day, 1, -1) OVER (PARTITION BY customer ORDER BY day, id) AS prev_day
  FROM orders WHERE customer BETWEEN 100 AND 104)
ORDER BY customer, day, running;

SELECT day, n, sum(n) OVER (ORDER BY day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS week,
       ntile(4) OVER (ORDER BY n, day) AS quartile
FROM (SELECT day, count(*) AS n FROM orders GROUP BY day) ORDER BY day LIMIT 20;

-- JSON
SELECT json_extract(tags, '$[2].w') AS w, count(*) AS n, sum(json_extract(tags, '$[2].big')) AS big
FROM item GROUP BY w ORDER BY w;
SELECT j.value AS tag, count(*) AS n FROM item, json_each(item.tags) AS j
WHERE j.type = 'text' GROUP BY j.value ORDER BY j.value;
SELECT json_group_array(json_object('id', id, 'price', price))
FROM (SELECT id, price FROM item ORDER BY price DESC, id LIMIT 5);
SELECT length(json_group_object(name, city)) FROM customer;

-- a transaction rolled back leaves nothing behind
BEGIN;
DELETE FROM orders WHERE qty > 3;
UPDATE item SET price = price * 2, label = label || ' (changed)';
INSERT INTO customer SELECT id + 100000, name || '!', city, joined FROM customer;
SELECT 'in transaction' AS what, (SELECT count(*) FROM orders) AS orders,
       (SELECT count(*) FROM customer) AS customers, (SELECT round(sum(price), 2) FROM item) AS prices;
ROLLBACK;
SELECT 'after rollback' AS what, (SELECT count(*) FROM orders) AS orders,
       (SELECT count(*) FROM customer) AS customers, (SELECT round(sum(price), 2) FROM item) AS prices;

-- a transaction committed, then VACUUM
BEGIN;
DELETE FROM orders WHERE id % 3 = 0;
UPDATE customer SET name = upper(name) WHERE id % 5 = 0;
COMMIT;
VACUUM;
PRAGMA integrity_check;
SELECT 'after vacuum' AS what, count(*) AS orders, sum(qty) AS qty, max(length(note)) AS longest FROM orders;
SELECT name FROM customer WHERE city = 'city13' ORDER BY name LIMIT 5;
SELECT o.id, c.name, i.label FROM orders o, customer c, item i
WHERE c.id = o.customer AND i.id = o.item AND o.id IN (1, 2, 4, 59999, 60000)
ORDER BY o.id;
SELECT max(o1.day - o2.day) FROM orders o1 JOIN orders o2
ON o1.customer = o2.customer AND o1.id < o2.id WHERE o1.customer < 300;
SQLEOF
	for mode in plain hak; do
		pre=
		test $mode = hak && pre=$lib
		rm -f "$work/sqlite.$mode.db"
		LD_PRELOAD="$pre" sqlite3 -bail "$work/sqlite.$mode.db" <"$work/script.sql" >"$work/sqlite.$mode" 2>&1
		echo "exit $?" >>"$work/sqlite.$mode"
	done
	if ! grep -q '^after vacuum|' "$work/sqlite.plain"; then
		fail "sqlite3 without hakmem did not run the script to its end:"
		tail -n 5 "$work/sqlite.plain" | sed 's/^/  /'
	fi
	same "sqlite3 ($(wc -l <"$work/sqlite.plain") lines of results)" "$work/sqlite.plain" "$work/sqlite.hak"
}

skipped=""
if have python3; then python_tests; else echo "SKIP: python3 not installed"; skipped="$skipped python3"; fi
if have git; then git_tests; else echo "SKIP: git not installed"; skipped="$skipped git"; fi
if have gcc; then gcc_tests; else echo "SKIP: gcc not installed"; skipped="$skipped gcc"; fi
if have sort && have sha256sum; then sort_tests; else echo "SKIP: sort (or sha256sum) not installed"; skipped="$skipped sort"; fi
if have ls; then ls_tests; else echo "SKIP: ls not installed"; skipped="$skipped ls"; fi
if have sqlite3; then sqlite_tests; else echo "SKIP: sqlite3 not installed (Debian: apt-get install sqlite3)"; skipped="$skipped sqlite3"; fi

if test $ran -eq 0; then
	echo "SKIP: none of python3, git, gcc, sort, ls, sqlite3 is installed"
	exit 77
fi
if test $failures -ne 0; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "PASS: $ran program(s) give the same results under hakmem${skipped:+ (skipped:$skipped)}"
exit 0
