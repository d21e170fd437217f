// Package packaging builds Concord's .deb (build-deb.sh); its tests build
// one from stand-in binaries and check its contents.
package packaging
