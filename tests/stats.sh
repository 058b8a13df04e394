#!/bin/sh
# stats.sh - the statistics at exit, text and JSON, from outside.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# HAKMEM_STATS=json must print exactly one JSON document on standard
# error at exit, which python3 -m json.tool accepts, and whose numbers
# agree with themselves (the memory group and the counters of struct
# hak_stats) and with the environment (the settings and their source):
#   1. tests/envprog, linked with hakmem;
#   2. python3 (the interpreter itself, not a wrapper script) running an
#      allocation-heavy script with hakmem preloaded;
#   3. git log in a small repository, with hakmem preloaded.
# HAKMEM_STATS=1 (and text) prints the text form, with its groups.
# Without python3 the JSON cannot be checked: the test is skipped (77);
# a real program that is not installed is skipped with a message.
#
# Run by make check, which exports abs_top_builddir.

set -u
: "${abs_top_builddir:?run this through make check (abs_top_builddir is not set)}"

prog="$abs_top_builddir/tests/envprog${EXEEXT:-}"
lib="$abs_top_builddir/lib/.libs/libhakmem.so"
config_h="$abs_top_builddir/config.h"

for v in $(env | sed -n 's/^\(HAKMEM_[A-Za-z0-9_]*\)=.*/\1/p'); do
	unset "$v"
done
unset LD_PRELOAD

if ! command -v python3 >/dev/null 2>&1; then
	echo "SKIP: python3 is not installed: the JSON cannot be checked"
	exit 77
fi
# The interpreter itself: a wrapper (pyenv's shim) would run more than
# one process, each printing its own statistics.
python=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
if test -z "$python" || test ! -x "$python"; then
	echo "FAIL: python3 does not say where its interpreter is"
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-stats.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT INT TERM
failures=0
checks=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# The checks of one JSON document (file $1) beyond its syntax, in python:
# the groups, one statistics object, in_use = mapped - cached, the
# counters agree with the memory group, every setting has a value and a
# source, and the settings named in $2 ("NAME=VALUE ...") came from the
# environment with those values.
cat >"$work/check.py" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
want = dict(a.split("=", 1) for a in sys.argv[2].split()) if len(sys.argv) > 2 else {}
errors = []
for g in ("hakmem", "memory", "tiers", "classes", "mid_pool", "threads", "counters", "settings"):
    if g not in d:
        errors.append("no group " + g)
m, c = d["memory"], d["counters"]
if m["in_use"] != m["mapped"] - m["cached"]:
    errors.append("in_use is not mapped - cached")
if m["cached"] != c["segments_cached"] * 2 * 1024 * 1024:
    errors.append("cached is not segments_cached * 2 MiB")
for k, f in (("mapped", "os_mapped"), ("segments", "segments"), ("purged", "os_purged")):
    if m[k] != c[f]:
        errors.append("memory.%s %r but counters.%s %r" % (k, m[k], f, c[f]))
if m["mapped"] <= 0:
    errors.append("nothing mapped")
for t in ("tiny", "mid", "large"):
    if sum(x["refills"] for x in d["classes"] if x["tier"] == t) != d["tiers"][t]["refills"]:
        errors.append("the classes' refills do not add up to the %s tier's" % t)
if d["tiers"]["tiny"]["refills"] != c["tiny_refills"]:
    errors.append("tiers.tiny.refills differs from counters.tiny_refills")
for name, s in d["settings"].items():
    if not name.startswith("HAKMEM_") or set(s) != {"value", "source"} or s["source"] not in ("default", "environment"):
        errors.append("setting %s: %r" % (name, s))
def same(v, text):
    if isinstance(v, bool):
        return str(v).lower() == text
    if isinstance(v, (int, float)):
        return v == float(text)
    return v == text
for name, value in want.items():
    s = d["settings"].get(name)
    if s is None or s["source"] != "environment" or not same(s["value"], value):
        errors.append("setting %s: %r, expected %s from the environment" % (name, s, value))
if errors:
    print("\n".join(errors))
    sys.exit(1)
print("%d classes, %d settings, %d bytes mapped" % (len(d["classes"]), len(d["settings"]), m["mapped"]))
PYEOF

# json NAME SETTINGS CMD...: run CMD (with HAKMEM_STATS=json and the
# SETTINGS given in the environment by the caller) and check its stderr.
json() {
	name=$1 settings=$2
	shift 2
	checks=$((checks + 1))
	"$@" >"$work/out" 2>"$work/err"
	rc=$?
	if test $rc -ne 0; then
		fail "$name exited with $rc:"
		tail -n 5 "$work/err" | sed 's/^/  stderr: /'
		return
	fi
	if ! "$python" -m json.tool "$work/err" >"$work/pretty" 2>"$work/jerr"; then
		fail "$name: HAKMEM_STATS=json: python3 -m json.tool refuses stderr:"
		sed 's/^/  json.tool: /' "$work/jerr"
		head -n 5 "$work/err" | sed 's/^/  stderr: /'
		return
	fi
	if ! res=$("$python" "$work/check.py" "$work/err" "$settings" 2>&1); then
		fail "$name: the JSON statistics are wrong:"
		printf '%s\n' "$res" | sed 's/^/  /'
		return
	fi
	echo "ok: $name: HAKMEM_STATS=json -> valid JSON ($(wc -l <"$work/err") lines; $res)"
}

# 1. A program linked with hakmem.
json envprog "HAKMEM_STATS=json HAKMEM_WMAX=2.00" \
	env HAKMEM_STATS=json HAKMEM_WMAX=2 "$prog"
json "envprog (HAKMEM_STATS=JSON, booleans)" "HAKMEM_STATS=json HAKMEM_VERBOSE=false" \
	env HAKMEM_STATS=JSON HAKMEM_VERBOSE=off "$prog"

# 2. and 3. Real programs under LD_PRELOAD.
if test ! -f "$lib"; then
	echo "note: $lib was not built (--disable-shared?): no LD_PRELOAD runs"
elif grep -q '^#define HAKMEM_OVERRIDE 0' "$config_h" 2>/dev/null; then
	echo "note: configured with --disable-override: no LD_PRELOAD runs"
else
	cat >"$work/work.py" <<'PYEOF'
import json, re, threading
def job(n):
    d = {str(i): [i] * (i % 17) for i in range(n)}
    s = json.dumps(d)
    return len(re.findall(r"\d+", s)) + len(sorted(d, key=lambda k: -len(d[k])))
ts = [threading.Thread(target=job, args=(20000,)) for _ in range(3)]
for t in ts: t.start()
for t in ts: t.join()
print(job(50000))
PYEOF
	json "python3 (LD_PRELOAD)" "HAKMEM_STATS=json" \
		env HAKMEM_STATS=json PYTHONMALLOC=malloc LD_PRELOAD="$lib" "$python" "$work/work.py"
	if command -v git >/dev/null 2>&1; then
		repo=$work/repo
		if git init -q "$repo" 2>/dev/null &&
		   for i in 1 2 3; do
			echo "line $i" >>"$repo/file" &&
			git -C "$repo" add file &&
			GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org GIT_AUTHOR_DATE=2026-01-01T00:00:00Z \
			GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.org \
			GIT_COMMITTER_DATE=2026-01-01T00:00:00Z git -C "$repo" commit -q -m "commit $i" || exit 1
		   done; then
			json "git log (LD_PRELOAD)" "HAKMEM_STATS=json HAKMEM_SEGMENT_CACHE=3" \
				env HAKMEM_STATS=json HAKMEM_SEGMENT_CACHE=3 LD_PRELOAD="$lib" \
				git -C "$repo" --no-pager log -p --stat
			if ! grep -q 'commit 3' "$work/out"; then
				fail "git log under hakmem printed no 'commit 3'"
			fi
		else
			fail "could not make a git repository in $repo"
		fi
	else
		echo "note: git is not installed: skipped"
	fi
	# the text form under LD_PRELOAD
	checks=$((checks + 1))
	HAKMEM_STATS=text LD_PRELOAD="$lib" "$python" -c 'print(len([str(i) for i in range(100000)]))' \
		>"$work/out" 2>"$work/err"
	missing=
	for g in "hakmem statistics (version " "Memory: " "Tiers: " "Size classes, busiest first" \
		 "Mid pages: " "Threads: " "Settings: "; do
		grep -q "^$g" "$work/err" || missing="$missing '$g'"
	done
	if test -n "$missing"; then
		fail "python3 with HAKMEM_STATS=text: no line beginning with$missing:"
		head -n 5 "$work/err" | sed 's/^/  stderr: /'
	else
		echo "ok: python3 (LD_PRELOAD): HAKMEM_STATS=text -> the text, every group"
	fi
fi

if test $failures -ne 0; then
	echo "$failures of $checks checks failed"
	exit 1
fi
echo "PASS: $checks statistics checks"
exit 0
