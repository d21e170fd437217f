package nodebus

import (
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"
)

func TestEscapeLabel(t *testing.T) {
	for _, tc := range []struct{ name, label string }{
		{"", "_"},
		{"web", "web"},
		{"web-1", "web_2d1"},
		{"1web", "_31web"},
		{"a1", "a1"},
		{"_", "_5f"},
		{"a/b.c", "a_2fb_2ec"},
		{"é", "_c3_a9"},
		{"\x00\xff", "_00_ff"},
		{"Zz9", "Zz9"},
	} {
		if got := EscapeLabel(tc.name); got != tc.label {
			t.Errorf("EscapeLabel(%q) = %q, want %q", tc.name, got, tc.label)
		}
		if got, err := UnescapeLabel(tc.label); err != nil || got != tc.name {
			t.Errorf("UnescapeLabel(%q) = %q, %v; want %q", tc.label, got, err, tc.name)
		}
	}
	// A name of 255 bytes of anything makes a valid object path.
	long := strings.Repeat("\xe2\x82\xac-", 63) + "xyz"
	if len(long) != 255 || !GroupPath(long).IsValid() {
		t.Errorf("GroupPath of a 255-byte name: %q (valid %v)", GroupPath(long), GroupPath(long).IsValid())
	}
}

// UnescapeLabel refuses what EscapeLabel never makes, naming the fault, so
// every name has one path.
func TestUnescapeLabelRefuses(t *testing.T) {
	for _, tc := range []struct{ label, want string }{
		{"", "empty"},
		{"1a", "not a letter"},
		{"a_2", "two hex digits"},
		{"a_2D", "lower-case hex"},
		{"a_zz", "hex digits"},
		{"_61", "need not be"},
		{"a_31", "need not be"},
		{"a.b", "not a letter"},
		{"__", "hex digits"},
	} {
		if got, err := UnescapeLabel(tc.label); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("UnescapeLabel(%q) = %q, %v; want an error saying %q", tc.label, got, err, tc.want)
		}
	}
	for _, p := range []dbus.ObjectPath{"/org/concordha/node1/node/1", "/org/concordha/node1/group/a/b", "/org/concordha/node1/group"} {
		if _, err := GroupName(p); err == nil {
			t.Errorf("GroupName(%q) accepted", p)
		}
	}
	if n, err := GroupName(GroupPath("db:primary")); err != nil || n != "db:primary" {
		t.Errorf("GroupName(GroupPath) = %q, %v", n, err)
	}
}

// Every name escapes to a valid path element that unescapes to it; every
// label that unescapes escapes back to itself.
func FuzzLabel(f *testing.F) {
	for _, s := range []string{"", "web-1", "1", "_5f", "é", "a_2d", "_", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l := EscapeLabel(s)
		if !dbus.ObjectPath("/" + l).IsValid() {
			t.Fatalf("EscapeLabel(%q) = %q, not a path element", s, l)
		}
		if back, err := UnescapeLabel(l); err != nil || back != s {
			t.Fatalf("UnescapeLabel(EscapeLabel(%q)) = %q, %v", s, back, err)
		}
		if n, err := UnescapeLabel(s); err == nil && EscapeLabel(n) != s {
			t.Fatalf("UnescapeLabel(%q) = %q, which escapes to %q", s, n, EscapeLabel(n))
		}
	})
}
