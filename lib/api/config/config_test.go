package config

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// base is a valid three-node file; bad cases edit it.
const base = `[cluster]
name = prod

[quorum]
tie_breaker = lowest

[node alpha]
number = 1
link = hb0 52:54:00:00:01:01
link = hb1 52:54:00:00:02:01

[node beta]
number = 2
link = hb0 52:54:00:00:01:02
link = hb1 52:54:00:00:02:02

[node gamma]
number = 3
link = hb0 52:54:00:00:01:03
link = hb1 52:54:00:00:02:03
`

const twoNode = `[cluster]
name = pair
[quorum]
two_node = yes
[node a]
number = 1
link = eth1 02:00:00:00:00:01
[node b]
number = 2
link = eth1 02:00:00:00:00:02
`

func mustParse(t *testing.T, s string) *Cluster {
	t.Helper()
	c, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, s)
	}
	return c
}

func TestParseGood(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		check func(t *testing.T, c *Cluster)
	}{
		{"defaults", base, func(t *testing.T, c *Cluster) {
			want := Timing{40 * time.Millisecond, 40 * time.Millisecond, 120 * time.Millisecond, 160 * time.Millisecond, 100 * time.Millisecond}
			if c.Totem != want {
				t.Errorf("timing %+v, want %+v", c.Totem, want)
			}
			if c.ID != DefaultID("prod") || c.ID == 0 {
				t.Errorf("id %d, want %d", c.ID, DefaultID("prod"))
			}
			if c.Quorum.ExpectedVotes != 0 || c.Quorum.WaitForAll || c.Quorum.TwoNode || c.Quorum.LMSWindow != 10*time.Second {
				t.Errorf("quorum %+v", c.Quorum)
			}
			if len(c.Nodes) != 3 || c.Nodes[1].Votes != 1 || c.Nodes[1].UUID != DefaultUUID("prod", "beta") {
				t.Errorf("nodes %+v", c.Nodes)
			}
			if c.Options != nil || c.Nodes[0].Attrs != nil {
				t.Errorf("empty maps should be nil: %v %v", c.Options, c.Nodes[0].Attrs)
			}
		}},
		// A cluster.conf written for the older 30ms defaults, or for a
		// faster heartbeat, sets heartbeat_interval alone: the default
		// tick follows it down instead of failing validation.
		{"short heartbeat alone", strings.Replace(base, "name = prod", "name = prod\nheartbeat_interval = 20ms", 1), func(t *testing.T, c *Cluster) {
			want := Timing{20 * time.Millisecond, 20 * time.Millisecond, 120 * time.Millisecond, 160 * time.Millisecond, 100 * time.Millisecond}
			if c.Totem != want {
				t.Errorf("timing %+v, want %+v", c.Totem, want)
			}
		}},
		{"example file", readFile(t, "testdata/example.conf"), func(t *testing.T, c *Cluster) {
			if c.ID != 42 || c.Quorum.ExpectedVotes != 3 || c.Quorum.TieBreaker != "lowest" {
				t.Errorf("cluster %+v", c)
			}
			if c.Options["anything"] != "value" || c.Options["motd"] != "hello # world" {
				t.Errorf("options %q", c.Options)
			}
			a := c.NodeByName("ALPHA")
			if a == nil || a.Attrs["rack"] != "r12" || a.UUID != uuid.MustParse("6f1c3a52-8d0e-4b7a-9c1f-2a3b4c5d6e7f") {
				t.Fatalf("alpha %+v", a)
			}
			if got := []uint16{c.Nodes[0].Number, c.Nodes[1].Number, c.Nodes[2].Number}; !reflect.DeepEqual(got, []uint16{1, 2, 3}) {
				t.Errorf("nodes not sorted by number: %v", got)
			}
			if n := c.NodeByMAC(net.HardwareAddr{0x52, 0x54, 0, 0, 2, 3}); n == nil || n.Name != "gamma" {
				t.Errorf("NodeByMAC = %+v", n)
			}
			if n := c.Node(2); n == nil || n.Name != "beta" || n.Links[1].Interface != "hb1" {
				t.Errorf("Node(2) = %+v", n)
			}
			if c.Node(4) != nil || c.NodeByName("delta") != nil || c.NodeByMAC(net.HardwareAddr{1, 2, 3, 4, 5, 6}) != nil {
				t.Error("lookups of missing nodes found something")
			}
		}},
		{"two_node implies wait_for_all", twoNode, func(t *testing.T, c *Cluster) {
			if !c.Quorum.TwoNode || !c.Quorum.WaitForAll {
				t.Errorf("quorum %+v", c.Quorum)
			}
		}},
		{"two_node with wait_for_all off", strings.Replace(twoNode, "two_node = yes", "two_node = on\nwait_for_all = off", 1), func(t *testing.T, c *Cluster) {
			if !c.Quorum.TwoNode || c.Quorum.WaitForAll {
				t.Errorf("quorum %+v", c.Quorum)
			}
		}},
		{"booleans, CRLF, tabs, comments", "[cluster]\r\nname=x\t# c\r\n[quorum]\r\nlast_man_standing = TRUE\r\nwait_for_all=1\r\n  # indented comment\r\n[node n1]\r\nnumber=7\r\nvotes=3\r\nlink=\thb0\t0252.5400.0001\r\n", func(t *testing.T, c *Cluster) {
			if !c.Quorum.LastManStanding || !c.Quorum.WaitForAll {
				t.Errorf("quorum %+v", c.Quorum)
			}
			n := c.Nodes[0]
			if n.Number != 7 || n.Votes != 3 || n.Links[0].MAC.String() != "02:52:54:00:00:01" {
				t.Errorf("node %+v", n)
			}
		}},
		{"tie_breaker node number and none", strings.Replace(base, "tie_breaker = lowest", "tie_breaker = 03", 1), func(t *testing.T, c *Cluster) {
			if c.Quorum.TieBreaker != "3" {
				t.Errorf("tie_breaker %q, want 3", c.Quorum.TieBreaker)
			}
		}},
		{"tie_breaker none", strings.Replace(base, "tie_breaker = lowest", "tie_breaker = none", 1), func(t *testing.T, c *Cluster) {
			if c.Quorum.TieBreaker != "" {
				t.Errorf("tie_breaker %q, want empty", c.Quorum.TieBreaker)
			}
		}},
		{"expected_votes above the sum", strings.Replace(base, "[quorum]", "[quorum]\nexpected_votes = 5", 1), func(t *testing.T, c *Cluster) {
			if c.Quorum.ExpectedVotes != 5 {
				t.Errorf("expected_votes %d", c.Quorum.ExpectedVotes)
			}
		}},
		{"attrs and quoted values", base + "attr.rack = r12\nattr.note = \"  spaced  \"\n[options]\nempty =\nq = \"a\\\"b\"\n", func(t *testing.T, c *Cluster) {
			if c.Nodes[2].Attrs["note"] != "  spaced  " || c.Nodes[2].Attrs["rack"] != "r12" {
				t.Errorf("attrs %q", c.Nodes[2].Attrs)
			}
			if v, ok := c.Options["empty"]; !ok || v != "" || c.Options["q"] != `a"b` {
				t.Errorf("options %q", c.Options)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.text)
			tt.check(t, c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate after Parse: %v", err)
			}
			roundTrip(t, c)
		})
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// roundTrip checks Parse(Format(c)) and JSON both give c back.
func roundTrip(t *testing.T, c *Cluster) {
	t.Helper()
	txt := Format(c)
	c2, err := Parse(txt)
	if err != nil {
		t.Fatalf("Parse(Format(c)): %v\n%s", err, txt)
	}
	if !reflect.DeepEqual(c, c2) {
		t.Fatalf("Parse(Format(c)) differs:\n got %+v\nwant %+v\n%s", c2, c, txt)
	}
	if txt2 := Format(c2); string(txt2) != string(txt) {
		t.Fatalf("Format is not stable:\n%s\n---\n%s", txt, txt2)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var c3 Cluster
	if err := json.Unmarshal(b, &c3); err != nil {
		t.Fatalf("json.Unmarshal: %v\n%s", err, b)
	}
	if !reflect.DeepEqual(c, &c3) {
		t.Fatalf("JSON round trip differs:\n got %+v\nwant %+v\n%s", c3, c, b)
	}
}

func TestParseBad(t *testing.T) {
	rep := func(old, new string) string {
		if !strings.Contains(base, old) {
			panic("test table: base has no " + old)
		}
		return strings.Replace(base, old, new, 1)
	}
	tests := []struct {
		name, text, want string
	}{
		{"bad MAC", rep("link = hb0 52:54:00:00:01:02", "link = hb0 zz:zz"), `cluster.conf:14: [node beta]: link "hb0 zz:zz": bad MAC address`},
		{"multicast MAC", rep("hb1 52:54:00:00:02:03", "hb1 01:00:5e:00:00:01"), `cluster.conf:20: [node gamma]: link "hb1 01:00:5e:00:00:01": MAC address 01:00:5e:00:00:01 is a multicast address`},
		{"link without MAC", rep("link = hb1 52:54:00:00:02:01", "link = hb1"), `cluster.conf:10: [node alpha]: link "hb1": want "IFNAME MAC"`},
		{"duplicate MAC across nodes", rep("hb1 52:54:00:00:02:02", "hb1 52:54:00:00:02:01"), `cluster.conf:15: [node beta]: link "hb1 52:54:00:00:02:01": MAC address is already used by node alpha link hb1`},
		{"duplicate interface in node", rep("hb1 52:54:00:00:02:02", "hb0 52:54:00:00:03:02"), `cluster.conf:15: [node beta]: link "hb0 52:54:00:00:03:02": interface hb0 is already link 0`},
		{"duplicate number", rep("number = 3", "number = 1"), `cluster.conf:18: [node gamma]: number: 1 is already used by node alpha`},
		{"duplicate name", base + "[node beta]\nnumber = 4\nlink = hb0 02:00:00:00:00:09\n", `cluster.conf:21: [node beta] appears twice (first on line 12)`},
		{"duplicate name other case", base + "[node Beta]\nnumber = 4\nlink = hb0 02:00:00:00:00:09\n", `cluster.conf:21: [node Beta]: name is already used by node 2 (beta)`},
		{"duplicate uuid", rep("number = 2", "number = 2\nuuid = "+DefaultUUID("prod", "alpha").String()), `cluster.conf:14: [node beta]: uuid: ` + DefaultUUID("prod", "alpha").String() + ` is already used by node alpha`},
		{"nil uuid", rep("number = 2", "number = 2\nuuid = 00000000-0000-0000-0000-000000000000"), `cluster.conf:14: [node beta]: uuid: must not be the nil UUID`},
		{"bad uuid", rep("number = 2", "number = 2\nuuid = 6f1c"), `cluster.conf:14: [node beta]: uuid: "6f1c" is not a UUID`},
		{"duplicate key", rep("name = prod", "name = prod\nname = test"), `cluster.conf:3: [cluster]: name: given twice (first on line 2)`},
		{"duplicate attr", base + "attr.rack = a\nattr.rack = b\n", `cluster.conf:22: [node gamma]: attr.rack: given twice (first on line 21)`},
		{"unknown key with hint", rep("tie_breaker", "tie_braker"), `cluster.conf:5: [quorum]: unknown key "tie_braker" (did you mean "tie_breaker"?)`},
		{"unknown node key", rep("number = 1", "number = 1\nvote = 2"), `cluster.conf:9: [node alpha]: unknown key "vote" (did you mean "votes"?)`},
		{"unknown section", rep("[quorum]", "[qourum]"), `cluster.conf:4: unknown section [qourum] (did you mean "quorum"?)`},
		{"node section without name", rep("[node alpha]", "[node]"), `cluster.conf:7: node section needs one name: [node NAME]`},
		{"bad node name", rep("[node alpha]", "[node -alpha]"), `cluster.conf:7: [node -alpha]: bad node name: "-alpha" must start with a letter or digit`},
		{"key before section", "name = x\n" + base, `cluster.conf:1: "name = x" comes before any [section]`},
		{"line without =", rep("name = prod", "name prod"), `cluster.conf:2: [cluster]: "name prod": expected "key = value"`},
		{"missing cluster section", "[node a]\nnumber = 1\nlink = hb0 02:00:00:00:00:01\n", `cluster.conf: [cluster] section is missing`},
		{"missing name", rep("name = prod", "id = 5"), `cluster.conf:1: [cluster]: name is required`},
		{"bad cluster name", rep("name = prod", "name = my cluster"), `cluster.conf:2: [cluster]: name: "my cluster": character ' ' is not one of [A-Za-z0-9_.-]`},
		{"long cluster name", rep("name = prod", "name = "+strings.Repeat("x", 33)), `must have 1..32 characters`},
		{"id 0", rep("name = prod", "name = prod\nid = 0"), `cluster.conf:3: [cluster]: id: "0" is not a number in 1..4294967295`},
		{"missing number", rep("number = 2\n", ""), `cluster.conf:12: [node beta]: number is required`},
		{"number 0", rep("number = 2", "number = 0"), `cluster.conf:13: [node beta]: number: 0 is out of range 1..65535`},
		{"number too big", rep("number = 2", "number = 65536"), `"65536" is not a number in 1..65535`},
		{"votes 0", rep("number = 2", "number = 2\nvotes = 0"), `cluster.conf:14: [node beta]: votes: 0 is out of range 1..65535`},
		{"no links", rep("link = hb0 52:54:00:00:01:03\nlink = hb1 52:54:00:00:02:03\n", ""), `cluster.conf:17: [node gamma]: no links`},
		{"too many links", base + "link = h2 02:00:00:00:00:02\nlink = h3 02:00:00:00:00:03\nlink = h4 02:00:00:00:00:04\nlink = h5 02:00:00:00:00:05\nlink = h6 02:00:00:00:00:06\nlink = h7 02:00:00:00:00:07\nlink = h8 02:00:00:00:00:08\n",
			`cluster.conf:27: [node gamma]: link "h8 02:00:00:00:00:08": too many links: at most 8`},
		{"no nodes", "[cluster]\nname = x\n", `cluster.conf:1: [cluster]: no nodes`},
		{"bad duration", rep("name = prod", "name = prod\ndead_time = 150"), `cluster.conf:3: [cluster]: dead_time: "150" is not a positive duration such as 150ms or 10s`},
		{"negative duration", rep("name = prod", "name = prod\ntick = -1ms"), `[cluster]: tick: "-1ms" is not a positive duration`},
		{"dead_time too short", rep("name = prod", "name = prod\nheartbeat_interval = 100ms"), `cluster.conf:1: [cluster]: dead_time: 120ms must be more than 2*heartbeat_interval (200ms)`},
		{"dead_time too short, written", rep("name = prod", "name = prod\ndead_time = 60ms"), `cluster.conf:3: [cluster]: dead_time: 60ms must be more than 2*heartbeat_interval (80ms)`},
		{"tick above heartbeat", rep("name = prod", "name = prod\ntick = 60ms"), `cluster.conf:3: [cluster]: tick: 60ms must not exceed heartbeat_interval (40ms)`},
		{"tick above a written heartbeat", rep("name = prod", "name = prod\nheartbeat_interval = 20ms\ntick = 30ms"), `cluster.conf:4: [cluster]: tick: 30ms must not exceed heartbeat_interval (20ms)`},
		{"tick too small", rep("name = prod", "name = prod\ntick = 10us"), `cluster.conf:3: [cluster]: tick: 10µs is out of range 1ms..1s`},
		{"link_dead_time too short", rep("name = prod", "name = prod\nlink_dead_time = 50ms"), `cluster.conf:3: [cluster]: link_dead_time: 50ms must be more than 2*heartbeat_interval`},
		{"join_timeout below tick", rep("name = prod", "name = prod\njoin_timeout = 5ms"), `cluster.conf:3: [cluster]: join_timeout: 5ms must be at least one tick (40ms)`},
		{"lms window below tick", rep("tie_breaker = lowest", "last_man_standing_window = 1ms"), `cluster.conf:5: [quorum]: last_man_standing_window: 1ms is out of range`},
		{"bad boolean", rep("tie_breaker = lowest", "two_node = maybe"), `cluster.conf:5: [quorum]: two_node: "maybe" is not yes or no`},
		{"two_node with three nodes", rep("tie_breaker = lowest", "two_node = yes"), `cluster.conf:5: [quorum]: two_node: needs exactly 2 nodes, found 3`},
		{"two_node with weighted votes", strings.Replace(twoNode, "number = 2", "number = 2\nvotes = 2", 1), `cluster.conf:4: [quorum]: two_node: needs 1 vote per node, found 3 votes`},
		{"expected_votes below sum", rep("tie_breaker = lowest", "expected_votes = 2"), `cluster.conf:5: [quorum]: expected_votes: 2 is less than the 3 votes of the configured nodes`},
		{"expected_votes 0", rep("tie_breaker = lowest", "expected_votes = 0"), `cluster.conf:5: [quorum]: expected_votes: "0" is not a number`},
		{"tie_breaker unknown node", rep("tie_breaker = lowest", "tie_breaker = 9"), `cluster.conf:5: [quorum]: tie_breaker: no node has number 9`},
		{"tie_breaker word", rep("tie_breaker = lowest", "tie_breaker = smallest"), `cluster.conf:5: [quorum]: tie_breaker: "smallest" is not lowest, highest, none or a node number`},
		{"bad option name", base + "[options]\nbad/key = 1\n", `cluster.conf:22: [options]: option name "bad/key": character '/' is not one of [A-Za-z0-9_.-]`},
		{"control char in option", base + "[options]\nk = \"a\\x01b\"\n", `cluster.conf:22: [options]: k: value has control character '\x01'`},
		{"group rule without pattern", base + "[options]\ngroups.allow.pg = user:postgres\n", `cluster.conf:22: [options]: groups.allow.pg: "user:postgres": want WHO PATTERN... (e.g. "user:postgres db-*" or "group:haclient *")`},
		{"group rule bad who", base + "[options]\ngroups.allow.pg = postgres db\n", `cluster.conf:22: [options]: groups.allow.pg: "postgres": who must be user:NAME, user:UID, group:NAME or group:GID`},
		{"group rule bad pattern", base + "[options]\ngroups.allow.pg = user:pg db[\n", `cluster.conf:22: [options]: groups.allow.pg: pattern "db[": syntax error in pattern`},
		{"group rule for root", base + "[options]\ngroups.allow.r = user:0 *\n", `cluster.conf:22: [options]: groups.allow.r: "user:0": root may use process groups anyway`},
		{"group rule without label", base + "[options]\ngroups.allow. = user:pg *\n", `cluster.conf:22: [options]: option groups.allow.: a label must follow groups.allow.`},
		{"raw control char", rep("name = prod", "name = pr\x00od"), `cluster.conf:2: control character '\x00'`},
		{"bad UTF-8", rep("name = prod", "name = \xff"), `cluster.conf:2: line is not valid UTF-8`},
		{"unterminated quote", base + "[options]\nk = \"abc\n", `cluster.conf:22: [options]: k: bad quoted value "abc`},
		{"text after quote", base + "[options]\nk = \"abc\" d\n", `cluster.conf:22: [options]: k: unexpected "d" after quoted value`},
		{"section twice", base + "[cluster]\n", `cluster.conf:21: [cluster] appears twice (first on line 1)`},
		{"unclosed section", rep("[quorum]", "[quorum"), `cluster.conf:4: section header "[quorum" has no closing ']'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.text))
			if err == nil {
				t.Fatalf("Parse succeeded, want error %q; got\n%s", tt.want, Format(c))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error\n  %v\nwant it to contain\n  %s", err, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cluster.conf")
	if err := os.WriteFile(path, []byte(strings.Replace(base, "number = 3", "number = x", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":18: [node gamma]: number:") {
		t.Errorf("Load error %v, want it to start with %s:18:", err, path)
	}
	if _, err := Load(filepath.Join(dir, "missing.conf")); !os.IsNotExist(err) {
		t.Errorf("Load of a missing file: %v, want not-exist", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Cluster)
		want string // "" = valid
	}{
		{"parsed file", func(c *Cluster) {}, ""},
		{"nil uuid", func(c *Cluster) { c.Nodes[1].UUID = uuid.Nil }, "config: [node beta]: uuid: must not be the nil UUID"},
		{"short MAC", func(c *Cluster) { c.Nodes[0].Links[0].MAC = net.HardwareAddr{1, 2} }, `config: [node alpha]: link "hb0 01:02": bad MAC address "01:02": want 6 bytes`},
		{"zero MAC", func(c *Cluster) { c.Nodes[0].Links[0].MAC = make(net.HardwareAddr, 6) }, `is all zeros`},
		{"bad interface", func(c *Cluster) { c.Nodes[0].Links[0].Interface = "a/b" }, `config: [node alpha]: link "a/b 52:54:00:00:01:01": interface name "a/b": character '/' is not allowed`},
		{"same MAC twice in node", func(c *Cluster) { c.Nodes[0].Links[1].MAC = c.Nodes[0].Links[0].MAC }, `config: [node alpha]: link "hb1 52:54:00:00:01:01": MAC address is already link 0`},
		{"names differ in case only", func(c *Cluster) { c.Nodes[2].Name = "Alpha" }, `config: [node Alpha]: name is already used by node 1 (alpha)`},
		{"votes too big", func(c *Cluster) { c.Nodes[0].Votes = 70000 }, `config: [node alpha]: votes: 70000 is out of range 1..65535`},
		{"id 0", func(c *Cluster) { c.ID = 0 }, `config: [cluster]: id: must not be 0`},
		{"zero tick", func(c *Cluster) { c.Totem.Tick = 0 }, `config: [cluster]: tick: 0s is out of range 1ms..1s`},
		{"tie_breaker none accepted", func(c *Cluster) { c.Quorum.TieBreaker = "none" }, ""},
		{"tie_breaker leading zero", func(c *Cluster) { c.Quorum.TieBreaker = "02" }, `config: [quorum]: tie_breaker: "02": write the node number as 2`},
		{"bad option value", func(c *Cluster) { c.Options = map[string]string{"k": "a\nb"} }, `config: [options]: k: value has control character '\n'`},
		{"bad attr name", func(c *Cluster) { c.Nodes[0].Attrs = map[string]string{"": "x"} }, `config: [node alpha]: attribute name "" must have 1..64 characters`},
		{"too many nodes", func(c *Cluster) {
			for i := 4; i <= 257; i++ {
				n := c.Nodes[0]
				n.Number, n.Name, n.UUID = uint16(i), "n"+string(rune('a'+i%26))+strings.Repeat("x", i/26), uuid.New()
				n.Links = []Link{{"hb0", net.HardwareAddr{2, 0, 0, 0, byte(i >> 8), byte(i)}}}
				c.Nodes = append(c.Nodes, n)
			}
		}, `too many nodes: at most 256`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, base)
			tt.edit(c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.want != "" && err == nil:
				t.Errorf("Validate passed, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("error\n  %v\nwant it to contain\n  %s", err, tt.want)
			}
		})
	}
}

func TestNewNode(t *testing.T) {
	c := mustParse(t, base)
	n, err := NewNode(c, "delta", 0, 0, []string{"hb0 52:54:00:00:01:04", "hb1 52:54:00:00:02:04"}, map[string]string{"rack": "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if n.Number != 4 || n.Votes != 1 || n.UUID != DefaultUUID("prod", "delta") || n.Attrs["rack"] != "r1" || len(n.Links) != 2 {
		t.Errorf("NewNode = %+v", n)
	}
	bad := []struct {
		name   string
		number uint16
		links  []string
		want   string
	}{
		{"delta", 2, []string{"hb0 52:54:00:00:01:04"}, `config: [node delta]: number: 2 is already used by node beta`},
		{"Gamma", 0, []string{"hb0 52:54:00:00:01:04"}, `config: [node Gamma]: name is already used by node 3 (gamma)`},
		{"delta", 0, []string{"hb0 52:54:00:00:01:01"}, `config: [node delta]: link "hb0 52:54:00:00:01:01": MAC address is already used by node alpha link hb0`},
		{"delta", 0, []string{"hb0 zz"}, `config: node "delta": link 0 "hb0 zz": bad MAC address`},
		{"delta", 0, nil, `config: node "delta": 0 links: want 1..8`},
		{"del ta", 0, []string{"hb0 52:54:00:00:01:04"}, `bad node name`},
	}
	for _, b := range bad {
		_, err := NewNode(c, b.name, b.number, 1, b.links, nil)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("NewNode(%q, %d, %q) error %v, want %q", b.name, b.number, b.links, err, b.want)
		}
	}
	pair := mustParse(t, twoNode)
	if _, err := NewNode(pair, "c", 0, 1, []string{"eth1 02:00:00:00:00:03"}, nil); err == nil || !strings.Contains(err.Error(), "two_node: needs exactly 2 nodes, found 3") {
		t.Errorf("adding a third node to a two_node cluster: %v", err)
	}
}

func TestJSONNames(t *testing.T) {
	c := mustParse(t, readFile(t, "testdata/example.conf"))
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	timing := m["timing"].(map[string]any)
	quorum := m["quorum"].(map[string]any)
	node := m["nodes"].([]any)[0].(map[string]any)
	link := node["links"].([]any)[0].(map[string]any)
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"name", m["name"], "prod"},
		{"id", m["id"], 42.0},
		{"timing.dead_time", timing["dead_time"], "150ms"},
		{"timing.heartbeat_interval", timing["heartbeat_interval"], "30ms"},
		{"quorum.last_man_standing_window", quorum["last_man_standing_window"], "10s"},
		{"quorum.tie_breaker", quorum["tie_breaker"], "lowest"},
		{"quorum.expected_votes", quorum["expected_votes"], 3.0},
		{"options.motd", m["options"].(map[string]any)["motd"], "hello # world"},
		{"nodes[0].uuid", node["uuid"], "6f1c3a52-8d0e-4b7a-9c1f-2a3b4c5d6e7f"},
		{"nodes[0].attrs.rack", node["attrs"].(map[string]any)["rack"], "r12"},
		{"nodes[0].links[0].interface", link["interface"], "hb0"},
		{"nodes[0].links[0].mac", link["mac"], "52:54:00:00:01:01"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %#v, want %#v", ck.name, ck.got, ck.want)
		}
	}
	// Unknown fields are ignored (newer writers); bad values are errors.
	var c2 Cluster
	if err := json.Unmarshal([]byte(`{"name":"x","future":1,"timing":{"tick":"1ms","later":true}}`), &c2); err != nil || c2.Totem.Tick != time.Millisecond {
		t.Errorf("tolerant unmarshal: %v %+v", err, c2)
	}
	for _, bad := range []string{
		`{"timing":{"tick":"10"}}`,
		`{"nodes":[{"links":[{"interface":"hb0","mac":"zz"}]}]}`,
		`{"nodes":[{"uuid":"nope"}]}`,
	} {
		if err := json.Unmarshal([]byte(bad), &c2); err == nil {
			t.Errorf("json.Unmarshal(%s) succeeded", bad)
		}
	}
}

func TestSetQuorum(t *testing.T) {
	tests := []struct {
		name, conf, key, value string
		want                   func(q Quorum) bool // nil: an error containing err
		err                    string
	}{
		{"two_node off", twoNode, "two_node", "no", func(q Quorum) bool { return !q.TwoNode && q.WaitForAll }, ""},
		{"expected votes", base, "expected_votes", "5", func(q Quorum) bool { return q.ExpectedVotes == 5 }, ""},
		{"tie breaker by number", base, "tie_breaker", " 2 ", func(q Quorum) bool { return q.TieBreaker == "2" }, ""},
		{"tie breaker none", base, "tie_breaker", "none", func(q Quorum) bool { return q.TieBreaker == "" }, ""},
		{"last man standing", base, "last_man_standing", "on", func(q Quorum) bool { return q.LastManStanding }, ""},
		{"window", base, "last_man_standing_window", "20s", func(q Quorum) bool { return q.LMSWindow == 20*time.Second }, ""},
		{"two_node on brings wait_for_all", strings.Replace(twoNode, "two_node = yes", "two_node = no\nwait_for_all = no", 1),
			"two_node", "yes", func(q Quorum) bool { return q.TwoNode && q.WaitForAll }, ""},
		{"two_node on three nodes", base, "two_node", "yes", nil, "config: [quorum]: two_node: needs exactly 2 nodes, found 3"},
		{"minority expected votes", base, "expected_votes", "2", nil, "expected_votes: 2 is less than the 3 votes"},
		{"tie breaker of no node", base, "tie_breaker", "9", nil, "tie_breaker: no node has number 9"},
		{"not a boolean", base, "wait_for_all", "maybe", nil, `config: [quorum]: wait_for_all: "maybe" is not yes or no`},
		{"unknown key", base, "two_nodes", "yes", nil, `unknown key "two_nodes" (did you mean "two_node"?)`},
		{"window too short", base, "last_man_standing_window", "1ms", nil, "last_man_standing_window: 1ms is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.conf)
			before := c.Quorum
			err := c.SetQuorum(tt.key, tt.value)
			if tt.want == nil {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("SetQuorum(%s, %q) = %v, want an error with %q", tt.key, tt.value, err, tt.err)
				}
				if c.Quorum != before {
					t.Errorf("a rejected change changed the quorum settings: %+v, was %+v", c.Quorum, before)
				}
				return
			}
			if err != nil {
				t.Fatalf("SetQuorum(%s, %q): %v", tt.key, tt.value, err)
			}
			if !tt.want(c.Quorum) {
				t.Errorf("SetQuorum(%s, %q): settings %+v", tt.key, tt.value, c.Quorum)
			}
		})
	}
}

func TestIsQuorumError(t *testing.T) {
	c := mustParse(t, twoNode)
	_, err := NewNode(c, "c", 3, 1, []string{"eth1 02:00:00:00:00:03"}, nil)
	if err == nil || !IsQuorumError(err) {
		t.Errorf("a third node in two_node mode: %v, want a quorum error", err)
	}
	_, err = NewNode(c, "b", 3, 1, []string{"eth1 02:00:00:00:00:03"}, nil)
	if err == nil || IsQuorumError(err) {
		t.Errorf("a duplicate name: %v, want an error that is not about quorum", err)
	}
	if IsQuorumError(nil) {
		t.Error("IsQuorumError(nil)")
	}
}

// TestUnknownKeys: a typo in any section is refused, naming the line and
// the nearest known key, rather than silently leaving the default.
func TestUnknownKeys(t *testing.T) {
	tests := []struct {
		section, line, want string
	}{
		{"[cluster]", "dead_tiem = 1s", `cluster.conf:2: [cluster]: unknown key "dead_tiem" (did you mean "dead_time"?) (known: name, id, tick, heartbeat_interval, dead_time, link_dead_time, join_timeout)`},
		{"[cluster]", "Name = x", `cluster.conf:2: [cluster]: unknown key "Name" (did you mean "name"?)`},
		{"[quorum]", "two_nodes = yes", `cluster.conf:5: [quorum]: unknown key "two_nodes" (did you mean "two_node"?) (known: expected_votes, two_node, wait_for_all`},
		{"[node beta]", "vote = 2", `cluster.conf:13: [node beta]: unknown key "vote" (did you mean "votes"?) (known: number, uuid, votes, link, attr.NAME)`},
		{"[node beta]", "atr.rack = r1", `cluster.conf:13: [node beta]: unknown key "atr.rack" (known: number,`},
		// [options] holds any name; what it refuses is a name that is not one.
		{"[options]", "bad/key = 1", `cluster.conf:23: [options]: option name "bad/key": character '/' is not one of [A-Za-z0-9_.-]`},
		// A section nobody reads, e.g. corosync's, is refused whole.
		{"[totem]", "token = 3000", `cluster.conf:22: unknown section [totem]`},
		{"[nodes gamma]", "number = 4", `cluster.conf:22: unknown section [nodes gamma] (did you mean "node"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.section+" "+tt.line, func(t *testing.T) {
			text := base
			if strings.Contains(text, tt.section+"\n") {
				text = strings.Replace(text, tt.section+"\n", tt.section+"\n"+tt.line+"\n", 1)
			} else {
				text += "\n" + tt.section + "\n" + tt.line + "\n"
			}
			c, err := Parse([]byte(text))
			if err == nil {
				t.Fatalf("Parse accepted %q in %s; got\n%s", tt.line, tt.section, Format(c))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error\n  %v\nwant it to contain\n  %s", err, tt.want)
			}
		})
	}
}

func TestGroupRules(t *testing.T) {
	c := &Cluster{Options: map[string]string{
		"groups.allow.b": "group:haclient *",
		"groups.allow.a": "user:postgres db-* app",
		"motd":           "hello",
	}}
	rs := c.GroupRules()
	if len(rs) != 2 || rs[0].Label != "a" || rs[0].Kind != "user" || rs[0].Who != "postgres" || rs[1].Kind != "group" {
		t.Fatalf("rules %+v", rs)
	}
	for g, want := range map[string]bool{"db-1": true, "app": true, "apps": false, "web": false} {
		if got := rs[0].Allows(g); got != want {
			t.Errorf("user:postgres may join %q: %v, want %v", g, got, want)
		}
	}
	if !rs[1].Allows("anything") {
		t.Error("* does not allow everything")
	}
}
