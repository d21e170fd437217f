#!/bin/sh
# Boots a three-node Concord cluster of systemd containers, shows membership,
# kills a node and shows the survivors' new view, then cleans up.
set -eu
cd "$(dirname "$0")/.."
sh tests/setup.sh
. tests/env.sh
make demo
