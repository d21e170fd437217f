package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestJoinForm(t *testing.T) {
	for _, tc := range []struct {
		text string
		join bool
	}{
		{"", true},
		{"# nothing yet\n", true},
		{"[node delta]\n", true},
		{"[node delta]\nlink = eth1\n", true},
		{base, false},
		{"[ cluster ] # spaced\nname = x\n", false},
		{"[node delta]\n[cluster]\n", false},
		{"# [cluster]\n[node delta]\n", true},
	} {
		if got := IsJoinForm([]byte(tc.text)); got != tc.join {
			t.Errorf("IsJoinForm(%q) = %v, want %v", tc.text, got, tc.join)
		}
	}
}

func TestParseJoin(t *testing.T) {
	for _, tc := range []struct {
		text string
		want JoinFile
	}{
		{"", JoinFile{}},
		{"# joins with the host name and every hb* NIC\n\n", JoinFile{}},
		{"[node delta]\n", JoinFile{Name: "delta"}},
		{"[node delta]  # not the host name\r\nlink = eth1\nlink = \"eth2\"   # quoted\n", JoinFile{Name: "delta", Links: []string{"eth1", "eth2"}}},
	} {
		jf, err := ParseJoin("cluster.conf", []byte(tc.text))
		if err != nil {
			t.Errorf("%q: %v", tc.text, err)
			continue
		}
		if !reflect.DeepEqual(*jf, tc.want) {
			t.Errorf("%q: %+v, want %+v", tc.text, *jf, tc.want)
		}
	}
}

func TestParseJoinErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"link = hb0\n", `cluster.conf:1: "link = hb0" comes before any [section]`},
		{"[quorum]\ntwo_node = yes\n", "cluster.conf:1: [quorum] without [cluster]: a node that joins a running cluster gets its settings from the cluster; write only [node NAME] here, or the whole configuration"},
		{"[node a]\n[options]\n", "cluster.conf:2: [options] without [cluster]"},
		{"[node a]\n\n[node b]\n", "cluster.conf:3: [node b] after [node a] (line 1): without [cluster] the file names this node only"},
		{"[node a]\nnumber = 4\n", "cluster.conf:2: [node a]: number: not set in a file without [cluster]: a joining node gets it from the cluster's configuration (only link = IFNAME may be given here)"},
		{"[node a]\nlink = hb0 52:54:00:00:01:04\n", `cluster.conf:2: [node a]: link: "hb0 52:54:00:00:01:04": want only the interface name, the MAC comes from the cluster's configuration`},
		{"[node a]\nlink =\n", `cluster.conf:2: [node a]: link: "": want only the interface name`},
		{"[node a]\nlink = hb/0\n", `cluster.conf:2: [node a]: link: interface name "hb/0": character '/' is not allowed`},
		{"[node a]\nlink = hb0\nlink = hb0\n", "cluster.conf:3: [node a]: link: hb0 repeats link 0"},
		{"[node a]\nlink = a\nlink = b\nlink = c\nlink = d\nlink = e\nlink = f\nlink = g\nlink = h\nlink = i\n", "cluster.conf:10: [node a]: link: more than 8 links"},
		{"[node a b]\n", `cluster.conf:1: [node a b]: bad node name: "a b"`},
		{"[node a]\nlink = hb0\x01\n", `cluster.conf:2: control character '\x01'`},
		{"[node a]\n\xff\n", "cluster.conf:2: line is not valid UTF-8"},
		{"[node a]\nlink\n", `cluster.conf:2: [node a]: "link": expected "key = value"`},
	} {
		_, err := ParseJoin("cluster.conf", []byte(tc.text))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s", tc.text, err, tc.want)
		}
	}
}

// FuzzParseJoin checks that ParseJoin never panics and that what it
// accepts holds only names a configuration can hold.
func FuzzParseJoin(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("[node delta]\nlink = eth1\nlink = eth2\n"))
	f.Add([]byte("[node a]\nnumber = 4\n"))
	f.Add([]byte("[quorum]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		jf, err := ParseJoin("cluster.conf", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "cluster.conf:") {
				t.Fatalf("error without the file and line: %v", err)
			}
			return
		}
		if jf.Name != "" {
			if e := nodeNameErr(jf.Name); e != nil {
				t.Fatalf("accepted node name %q: %v", jf.Name, e)
			}
		}
		if len(jf.Links) > MaxLinks {
			t.Fatalf("%d links", len(jf.Links))
		}
		for _, l := range jf.Links {
			if err := checkIfName(l); err != nil {
				t.Fatalf("accepted link %q: %v", l, err)
			}
		}
	})
}

// The join form's example in concord.conf(5) is read as it says.
func TestManPageJoinExample(t *testing.T) {
	b, err := os.ReadFile("../../../man/concord.conf.5")
	if err != nil {
		t.Skipf("manual page not found: %v", err)
	}
	var found []string
	for _, block := range strings.Split(string(b), ".EX\n")[1:] {
		body, _, _ := strings.Cut(block, ".EE\n")
		if !strings.Contains(body, "[cluster]") && strings.Contains(body, "link = ") {
			found = append(found, body)
		}
	}
	if len(found) != 1 {
		t.Fatalf("found %d join form examples in the manual, want 1", len(found))
	}
	if !IsJoinForm([]byte(found[0])) {
		t.Fatal("the join form example is not the join form")
	}
	jf, err := ParseJoin("concord.conf.5", []byte(found[0]))
	if err != nil || jf.Name != "delta" || len(jf.Links) != 2 {
		t.Fatalf("%+v %v", jf, err)
	}
}
