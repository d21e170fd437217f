package config

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics and that whatever it accepts
// survives Format/Parse and JSON unchanged. Seeds: testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte(twoNode))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate rejects: %v", err)
		}
		txt := Format(c)
		c2, err := Parse(txt)
		if err != nil {
			t.Fatalf("Parse(Format(c)): %v\n%s", err, txt)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("Parse(Format(c)) differs:\n got %+v\nwant %+v", c2, c)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var c3 Cluster
		if err := json.Unmarshal(b, &c3); err != nil {
			t.Fatalf("json: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(c, &c3) {
			t.Fatalf("JSON round trip differs:\n got %+v\nwant %+v", c3, c)
		}
	})
}
