# Sourced by the README's commands: puts Go on PATH and lets it fetch the toolchain go.mod names.
PATH=/usr/local/go/bin:$PATH:/root/go/bin
export PATH
GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
export GOTOOLCHAIN
