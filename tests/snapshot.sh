# tests/snapshot.sh - sourced (not run) by the scripts that build a copy of
# the source tree: tests/sanitizers.sh, tests/hardened.sh, tests/debug.sh
# and bench/callgrind-fastpath.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# hak_snapshot SRC SNAP NAME
#   Copies the source tree SRC to SNAP, without VCS data, autotools caches
#   and build products (objects, libraries, logs, config.status, the
#   top-level Makefile, config.h, and executables, found by their ELF
#   header: a stale tests/check_* in the source tree would otherwise be
#   found through VPATH and run instead of the one built from the copy),
#   so that a tree configured in place, or one being edited, can be used
#   and is never written to.  Runs ./autogen.sh in the copy when it has no
#   configure script.  NAME prefixes the messages.  Returns 0, or prints
#   why and returns 2.

hak_snapshot() {
	hs_src=$1 hs_snap=$2 hs_name=$3
	mkdir -p "$hs_snap" || return 2
	(
		cd "$hs_src" || exit 1
		find . \( -name .git -o -name .libs -o -name .deps -o -name autom4te.cache \
			-o -path './hakmem-[0-9]*' \) -prune -o -type f -print |
		while IFS= read -r f; do
			case $f in
			*.o|*.lo|*.la|*.a|*.so|*.so.*|*.log|*.trs|*.dirstamp) continue ;;
			./config.status|./config.h|./libtool|./stamp-h1|./Makefile|./hakmem.pc|./hakmem-secure.pc) continue ;;
			esac
			if [ -x "$f" ] && [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ]; then
				continue
			fi
			printf '%s\n' "$f"
		done > "$hs_snap.files"
		tar -cf - -T "$hs_snap.files"
	) | (cd "$hs_snap" && tar -xf -) || { echo "$hs_name: could not copy $hs_src" >&2; return 2; }
	rm -f "$hs_snap.files"
	if [ ! -x "$hs_snap/configure" ]; then
		echo "== autogen.sh (no configure script in $hs_src)"
		(cd "$hs_snap" && ./autogen.sh) > "$hs_snap.autogen.log" 2>&1 || {
			cat "$hs_snap.autogen.log" >&2
			echo "$hs_name: ./autogen.sh failed" >&2
			return 2
		}
	fi
	return 0
}
