#!/bin/sh
# layers.sh - calls between the files of lib/ only point down.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Reads the symbols of the library's object files (nm) and, for every name
# one file uses and another defines, checks that the user sits on a higher
# layer than the definer (lib/internal.h draws the layers).  The tiers
# (tiny, pool, large, huge) share a layer and so may not call each other.
# A new file of lib/ must be given its layer here.
#
# Run by make check, which exports abs_top_builddir.

set -u
: "${abs_top_builddir:?run this through make check (abs_top_builddir is not set)}"
NM=${NM_PROG:-nm}

# layer of each file, bottom (0) to top
levels="util 0
config 1
ace 2
os 3
purge 4
segment 5
slab 6
tiny 7
pool 7
large 7
huge 7
heap 8
thread 9
learner 10
stats 11
malloc 12"

dir=$abs_top_builddir/lib
objs=$(ls "$dir"/libhakmem_core_la-*.o 2>/dev/null)
test -n "$objs" || objs=$(ls "$dir"/.libs/libhakmem_core_la-*.o 2>/dev/null)
if test -z "$objs"; then
	echo "FAIL: no object files of lib/ under $dir"
	exit 1
fi

tmp=${TMPDIR:-/tmp}/hakmem-layers.$$
trap 'rm -f "$tmp".*' EXIT INT TERM
printf '%s\n' "$levels" >"$tmp.levels"
for o in $objs; do
	u=$(basename "$o" .o | sed 's/^libhakmem_core_la-//')
	"$NM" "$o" | awk -v u="$u" '
		NF == 3 && $2 ~ /^[TDBRVWC]$/ { print "D", u, $3 }
		NF == 2 && $1 == "U" { print "U", u, $2 }'
done >"$tmp.syms"

awk '
	FILENAME == ARGV[1] { level[$1] = $2; next }
	$1 == "D" { if (!($3 in def)) def[$3] = $2; next }
	{ use[NR] = $2 " " $3 }
	END {
		bad = 0; n = 0
		for (i in use) {
			split(use[i], f, " ")
			a = f[1]; name = f[2]; b = def[name]
			if (b == "" || b == a)
				continue
			if (!(a in level) || !(b in level)) {
				printf "FAIL: lib/%s.c or lib/%s.c has no layer in tests/layers.sh\n", a, b
				bad++
				continue
			}
			edge = a " -> " b
			if (edge in seen)
				continue
			seen[edge] = 1
			n++
			if (level[a] <= level[b]) {
				printf "FAIL: lib/%s.c (layer %d) calls up or across into lib/%s.c (layer %d): %s\n", a, level[a], b, level[b], name
				bad++
			}
		}
		if (bad)
			exit 1
		printf "PASS: %d calls between the files of lib/, every one pointing down\n", n
	}' "$tmp.levels" "$tmp.syms"
