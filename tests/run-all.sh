#!/bin/sh
# The whole test suite: prerequisites, static checks, unit and simulation tests
# (with -race), then the integration tests on real systemd nodes and fencing peers.
set -eu
cd "$(dirname "$0")/.."
sh tests/setup.sh
. tests/env.sh
make verify
make unit
make integration
