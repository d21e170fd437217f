package jlog

import "testing"

func TestFieldName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"node", "NODE"},
		{"view.seq", "VIEW_SEQ"},
		{"_hidden", "HIDDEN"},
		{"9lives", "LIVES"},
		{"reason", "REASON"},
		{"___", "FIELD"},
	} {
		if got := FieldName(tc.in); got != tc.want {
			t.Errorf("FieldName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
