#!/bin/sh
# setuid.sh - a set-user-ID or set-group-ID program ignores HAKMEM_*.
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# The environment of a set-ID program comes from the less privileged user
# who runs it: hakmem must not let that user tune it, stop it
# (HAKMEM_STRICT=1 with a bad value) or make it print its statistics
# (HAKMEM_STATS=1) to a descriptor of the user's choosing.  So when the
# kernel starts a process with AT_SECURE, every HAKMEM_* variable is
# ignored, in silence.
#
# tests/setuid_prog (libhakmem.a, the C library shared) and
# tests/setuid_prog_full (everything static) are copied, owned by root, to
# a temporary directory that user 65534 (nobody) can reach, one copy
# set-user-ID, one set-group-ID, one plain, and each is run as that user
# (util-linux's setpriv) with HAKMEM_STATS=1, and with HAKMEM_STRICT=1 and
# bad values:
#   - the set-ID copies print nothing on standard error and exit 0;
#   - the plain copy, the control, prints the statistics, and exits 1
#     under HAKMEM_STRICT=1.
# Each program prints its real and effective IDs and AT_SECURE, so the
# script sees that the set-ID bit took effect.
#
# Skipped (77) when not run as root, without setpriv, or when the bit has
# no effect there (a nosuid file system, no_new_privs).
#
# Run by make check, which exports abs_top_builddir.

set -u
: "${abs_top_builddir:?run this through make check (abs_top_builddir is not set)}"

if test "$(id -u)" != 0; then
	echo "SKIP: not root: cannot make a set-user-ID root program"
	exit 77
fi
if ! command -v setpriv >/dev/null 2>&1; then
	echo "SKIP: setpriv (util-linux) not found: cannot run as another user"
	exit 77
fi

progs=
for p in setuid_prog setuid_prog_full; do
	if test -x "$abs_top_builddir/tests/$p${EXEEXT:-}"; then
		progs="$progs $p"
	fi
done
if test -z "$progs"; then
	echo "SKIP: no static test program (configured with --disable-static?)"
	exit 77
fi

for v in $(env | sed -n 's/^\(HAKMEM_[A-Za-z0-9_]*\)=.*/\1/p'); do
	unset "$v"
done
unset LD_PRELOAD

nobody=65534
work=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-setuid.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT INT TERM
chmod 755 "$work"
failures=0
checks=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# as_nobody PROGRAM VAR=VALUE...: runs PROGRAM as user and group 65534
# with these variables; leaves standard output in $work/out, standard
# error in $work/err and the exit status in $rc.
as_nobody() {
	prog=$1
	shift
	checks=$((checks + 1))
	(cd "$work" && env "$@" setpriv --reuid=$nobody --regid=$nobody --clear-groups \
		"$prog" >"$work/out" 2>"$work/err")
	rc=$?
}

show() {
	sed 's/^/  stdout: /' "$work/out"
	sed 's/^/  stderr: /' "$work/err"
}

for p in $progs; do
	src="$abs_top_builddir/tests/$p${EXEEXT:-}"
	for mode in 4755 2755 755; do
		cp "$src" "$work/$p.$mode" || exit 99
		chown 0:0 "$work/$p.$mode" || exit 99
		chmod "$mode" "$work/$p.$mode" || exit 99
	done

	# The bits take effect here, or there is nothing to test.
	as_nobody "$work/$p.4755"
	case $(cat "$work/out") in
	*" euid=0 "*"secure=1") ;;
	*)	echo "SKIP: the set-user-ID bit has no effect in $work (nosuid, or no_new_privs?):"
		show
		exit 77 ;;
	esac
	as_nobody "$work/$p.2755"
	case $(cat "$work/out") in
	*" rgid=$nobody egid=0 secure=1") ;;
	*)	fail "$p: the set-group-ID copy does not run with egid 0 and AT_SECURE:"
		show ;;
	esac

	for mode in 4755 2755; do
		kind="set-user-ID"
		test $mode = 2755 && kind="set-group-ID"
		for vars in "HAKMEM_STATS=1" \
			"HAKMEM_STRICT=1 HAKMEM_STATS=1 HAKMEM_WMAX=9 HAKMEM_FOO=1" \
			"HAKMEM_VERBOSE=1 HAKMEM_STATS=json HAKMEM_POOL_CAP=0"; do
			# shellcheck disable=SC2086
			as_nobody "$work/$p.$mode" $vars
			if test $rc -ne 0; then
				fail "$p $kind, $vars: exit status $rc, not 0"
				show
			elif test -s "$work/err"; then
				fail "$p $kind, $vars: hakmem read the environment:"
				show
			else
				case $(cat "$work/out") in
				"setuid_prog ok "*) echo "ok: $p $kind, $vars -> ignored" ;;
				*)	fail "$p $kind, $vars: the program did not run:"
					show ;;
				esac
			fi
		done
	done

	# The control: the same program without the bit reads the variables.
	as_nobody "$work/$p.755" HAKMEM_STATS=1
	if test $rc -ne 0 || ! sed -n 1p "$work/err" | grep -q '^hakmem statistics'; then
		fail "$p plain, HAKMEM_STATS=1: no statistics (exit status $rc):"
		show
	else
		echo "ok: $p plain, HAKMEM_STATS=1 -> statistics"
	fi
	as_nobody "$work/$p.755" HAKMEM_STRICT=1 HAKMEM_WMAX=9
	if test $rc -ne 1 || ! grep -q '^hakmem: error: HAKMEM_WMAX=9' "$work/err"; then
		fail "$p plain, HAKMEM_STRICT=1 HAKMEM_WMAX=9: exit status $rc, not 1 with the error:"
		show
	else
		echo "ok: $p plain, HAKMEM_STRICT=1 HAKMEM_WMAX=9 -> exit 1"
	fi
done

if test $failures -ne 0; then
	echo "$failures of $checks checks failed"
	exit 1
fi
echo "PASS: $checks set-ID checks"
exit 0
