package cluster

import "testing"

func TestParseSources(t *testing.T) {
	const list = `# a comment
deb-src http://src.example/debian bookworm main
deb http://sec.example/debian-security bookworm-security main
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main contrib
`
	if got := parseOneLine(list, "bookworm"); got != "http://mirror.example/debian" {
		t.Errorf("one-line: got %q", got)
	}
	const deb822 = `Types: deb
# URIs: http://commented.example/debian
URIs: http://sec.example/debian-security
Suites: bookworm-security

Types: deb-src deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Enabled: no
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
`
	if got := parseDeb822(deb822, "bookworm"); got != "http://mirror.example/debian" {
		t.Errorf("deb822: got %q", got)
	}
	if got := parseDeb822(deb822, "trixie"); got != "" {
		t.Errorf("deb822 other suite: got %q", got)
	}
}
