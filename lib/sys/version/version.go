// Package version is the version of this build of Concord, the same for
// every program in it. The Makefile sets it once, for all of them:
//
//	go build -ldflags "-X github.com/concord-ha/concord/lib/sys/version.version=1.2.3"
//
// and packaging/build-deb.sh gives the .deb the same string.
package version

import "runtime/debug"

// version is set by the linker; "" means a plain go build.
var version string

// String is the version of this build: what the Makefile set, else the
// module version go install recorded, else "dev".
func String() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
