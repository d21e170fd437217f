// Package packaging builds Concord's packages (build-deb.sh): concord.deb,
// with the programs and libconcord.so.1, and concord-dev.deb, with what a
// C program needs to build against libconcord. Its tests build them from
// stand-in programs and the real library and check their contents.
package packaging
