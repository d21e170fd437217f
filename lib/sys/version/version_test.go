package version

import "testing"

// A test binary is built without -X, so the fallback shows.
func TestUnsetIsDev(t *testing.T) {
	if version != "" {
		t.Skipf("SKIP: built with -X version=%q", version)
	}
	if got := String(); got != "dev" {
		t.Errorf("String() = %q without -X, want dev", got)
	}
}

func TestSet(t *testing.T) {
	old := version
	defer func() { version = old }()
	version = "1.2.3~test"
	if got := String(); got != "1.2.3~test" {
		t.Errorf("String() = %q, want the linker's value", got)
	}
}
