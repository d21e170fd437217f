package config

import (
	"os"
	"strings"
	"testing"
)

// TestManPageExamples parses the example files of concord.conf(5), so
// the manual cannot drift from the parser.
func TestManPageExamples(t *testing.T) {
	b, err := os.ReadFile("../../../man/concord.conf.5")
	if err != nil {
		t.Skipf("manual page not found: %v", err)
	}
	var examples []string
	for _, block := range strings.Split(string(b), ".EX\n")[1:] {
		body, _, _ := strings.Cut(block, ".EE\n")
		if strings.Contains(body, "[cluster]") {
			examples = append(examples, strings.ReplaceAll(body, `\-`, "-"))
		}
	}
	if len(examples) != 2 {
		t.Fatalf("found %d example files in the manual, want 2", len(examples))
	}
	for i, ex := range examples {
		c, err := Parse([]byte(ex))
		if err != nil {
			t.Errorf("example %d: %v", i+1, err)
			continue
		}
		roundTrip(t, c)
	}
}
