#!/bin/sh
# Runs every fuzz target for FUZZTIME (default 20s) each. New crashers land in
# testdata/fuzz/ of their package: commit them with the fix.
set -eu
cd "$(dirname "$0")/.."
t=${FUZZTIME:-20s}
for pkg in $(go list ./lib/... ./fence-agents/...); do
	for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		echo "fuzz: $pkg $f ($t)"
		go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg"
	done
done
