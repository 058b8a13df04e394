#!/bin/sh
# symbols-secure.sh - tests/symbols.sh for the secure library: the same
# interface, symbol versions and Debian symbols file
# (packaging/debian/libhakmem-secure0.symbols).
#
# Copyright (c) 2026 The hakmem authors.  MIT licence (see COPYING).
#
# Run by make check when the secure library is built.
here=$(cd "$(dirname "$0")" && pwd)
HAK_SYMBOLS_LIB=libhakmem-secure
export HAK_SYMBOLS_LIB
exec ${SHELL:-/bin/sh} "$here/symbols.sh"
