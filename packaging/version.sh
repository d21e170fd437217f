#!/bin/sh
# Prints the version of a build: the one string that every program prints
# (lib/sys/version, set by the Makefile) and that the .deb carries. It is a
# valid Debian version that sorts right:
#   v1.2.3 -> 1.2.3          v1.2.3-4-gabc1234 -> 1.2.3+git4.gabc1234
#   e3d17dd -> 0.1.0~gite3d17dd (no tag yet: before any 0.1.0 release)
#   ...-dirty -> ....dirty
# Usage: sh packaging/version.sh [DESCRIBE]
# DESCRIBE is a git describe string or a version; without it, git describe of
# this tree, or 0.1.0 outside git.
set -eu

v=${1:-}
if [ -z "$v" ]; then
	v=$(cd "$(dirname "$0")/.." && git describe --tags --always --dirty 2>/dev/null) || v=0.1.0
fi
v=${v#v}
dirty=
case $v in *-dirty) v=${v%-dirty}; dirty=.dirty ;; esac
if printf '%s\n' "$v" | grep -Eq '^[0-9][0-9.]*-[0-9]+-g[0-9a-f]+$'; then
	v=$(printf '%s\n' "$v" | sed -E 's/^([0-9.]+)-([0-9]+)-(g[0-9a-f]+)$/\1+git\2.\3/')
elif printf '%s\n' "$v" | grep -Eq '^[0-9a-f]{7,40}$'; then
	v=0.1.0~git$v
elif ! printf '%s\n' "$v" | grep -Eq '^[0-9]'; then
	v=0.1.0~$(printf '%s' "$v" | tr -c 'A-Za-z0-9.+~' '.')
fi
v=$(printf '%s' "$v" | tr -c 'A-Za-z0-9.+~' '.')
printf '%s%s\n' "$v" "$dirty"
