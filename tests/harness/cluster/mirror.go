package cluster

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// HostMirror is the Debian mirror the host's own apt sources name for
// suite (its main archive, not a security or backports one), so that the
// test rootfs comes from wherever this machine already gets its packages.
func HostMirror(suite string) (string, error) {
	files := []string{"/etc/apt/sources.list"}
	for _, pat := range []string{"/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources"} {
		m, _ := filepath.Glob(pat)
		sort.Strings(m)
		files = append(files, m...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		parse := parseOneLine
		if strings.HasSuffix(f, ".sources") {
			parse = parseDeb822
		}
		if uri := parse(string(b), suite); uri != "" {
			return uri, nil
		}
	}
	return "", fmt.Errorf("no Debian mirror for %s in the host's apt sources (%s); set CONCORD_MIRROR", suite, strings.Join(files, ", "))
}

// parseOneLine reads sources.list lines: deb [options] URI suite components.
func parseOneLine(text, suite string) string {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(strings.SplitN(sc.Text(), "#", 2)[0])
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) >= 2 && f[1] == suite {
			return strings.TrimSuffix(f[0], "/")
		}
	}
	return ""
}

// parseDeb822 reads .sources stanzas (Types, URIs, Suites, ...).
func parseDeb822(text, suite string) string {
	for _, stanza := range strings.Split(text, "\n\n") {
		fields := map[string][]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			fields[strings.ToLower(strings.TrimSpace(k))] = strings.Fields(v)
		}
		if fields["enabled"] != nil && fields["enabled"][0] == "no" {
			continue
		}
		isDeb := false
		for _, t := range fields["types"] {
			isDeb = isDeb || t == "deb"
		}
		if !isDeb || len(fields["uris"]) == 0 {
			continue
		}
		for _, s := range fields["suites"] {
			if s == suite {
				return strings.TrimSuffix(fields["uris"][0], "/")
			}
		}
	}
	return ""
}
