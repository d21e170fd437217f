package confstore

import (
	"errors"
	"net"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/google/uuid"
)

// settingCase is one node, option or quorum setting, taken into the
// configuration both ways: written in cluster.conf, and proposed to the
// store (node rows as AddNode of node 4 and as EditNode of node 2).
type settingCase struct {
	name  string
	kinds []OpKind           // nil: AddNode and EditNode for node rows
	node  func(*config.Node) // node rows: the change to the node
	key   string             // option or quorum rows
	value string
	opt   bool   // an option row (else quorum, when node is nil)
	want  string // "" accepted; else part of the sentence both paths give
	// other words: the file cannot hold this setting, so it fails on
	// syntax first; only the verdicts are compared.
	other bool
}

func mac(b ...byte) net.HardwareAddr { return net.HardwareAddr(b) }

func settingCases() []settingCase {
	links := func(ls ...config.Link) func(*config.Node) {
		return func(n *config.Node) { n.Links = ls }
	}
	manyLinks := func(k int) func(*config.Node) {
		return func(n *config.Node) {
			n.Links = nil
			for i := range k {
				n.Links = append(n.Links, config.Link{Interface: "h" + string(rune('0'+i)), MAC: mac(2, 9, 9, 9, byte(n.Number), byte(i))})
			}
		}
	}
	attr := func(k, v string) func(*config.Node) {
		return func(n *config.Node) { n.Attrs = map[string]string{k: v} }
	}
	long := strings.Repeat("x", 65)
	return []settingCase{
		// Nodes, accepted.
		{name: "node as is", node: func(n *config.Node) {}},
		{name: "65535 votes", node: func(n *config.Node) { n.Votes = 65535 }},
		{name: "64-character name", node: func(n *config.Node) { n.Name = long[:64] }},
		{name: "name with . _ -", node: func(n *config.Node) { n.Name = "db-1.rack_2" }},
		{name: "8 links", node: manyLinks(8)},
		{name: "interface names with : and @", node: links(config.Link{Interface: "hb0:1", MAC: mac(2, 8, 8, 8, 8, 1)}, config.Link{Interface: "vl@hb1", MAC: mac(2, 8, 8, 8, 8, 2)})},
		{name: "no attributes", node: func(n *config.Node) { n.Attrs = nil }},
		{name: "empty attribute value", node: attr("rack", "")},
		{name: "attribute value with # and quotes", node: attr("note", ` "a # b" `)},
		{name: "1024-byte attribute value", node: attr("big", strings.Repeat("v", 1024))},
		{name: "number 65535", kinds: []OpKind{AddNode}, node: func(n *config.Node) { n.Number = 65535 }},

		// Nodes, refused.
		{name: "space in name", node: func(n *config.Node) { n.Name = "a b" }, want: `[node a b]: bad node name: "a b": character ' ' is not one of [A-Za-z0-9_.-]`},
		{name: "name starts with -", node: func(n *config.Node) { n.Name = "-x" }, want: `bad node name: "-x" must start with a letter or digit`},
		{name: "65-character name", node: func(n *config.Node) { n.Name = long }, want: `must have 1..64 characters`},
		{name: "empty name", node: func(n *config.Node) { n.Name = "" }, want: "name", other: true},
		{name: "name of another node in other case", node: func(n *config.Node) { n.Name = "NODE3" }, want: "name is already used by node"},
		{name: "number 0", kinds: []OpKind{AddNode}, node: func(n *config.Node) { n.Number = 0 }, want: "[node node4]: number: 0 is out of range 1..65535"},
		{name: "number of another node", kinds: []OpKind{AddNode}, node: func(n *config.Node) { n.Number = 2 }, want: "[node node4]: number: 2 is already used by node node2"},
		{name: "0 votes", node: func(n *config.Node) { n.Votes = 0 }, want: "votes: 0 is out of range 1..65535"},
		{name: "65536 votes", node: func(n *config.Node) { n.Votes = 65536 }, want: "votes: 65536 is out of range 1..65535"},
		{name: "nil UUID", node: func(n *config.Node) { n.UUID = uuid.Nil }, want: "uuid: must not be the nil UUID"},
		{name: "UUID of another node", node: func(n *config.Node) { n.UUID = testNode(1).UUID }, want: "uuid: " + testNode(1).UUID.String() + " is already used by node node1"},
		{name: "no links", node: links(), want: `no links: add at least one "link = IFNAME MAC"`},
		{name: "9 links", node: manyLinks(9), want: `link "h8 02:09:09:09:`},
		{name: "8-byte MAC", node: links(config.Link{Interface: "hb0", MAC: mac(2, 1, 2, 3, 4, 5, 6, 7)}), want: `link "hb0 02:01:02:03:04:05:06:07": bad MAC address "02:01:02:03:04:05:06:07": want 6 bytes`},
		{name: "20-byte MAC", node: links(config.Link{Interface: "ib0", MAC: make(net.HardwareAddr, 20)}), want: "want 6 bytes"},
		{name: "multicast MAC", node: links(config.Link{Interface: "hb0", MAC: mac(1, 0, 0x5e, 0, 0, 1)}), want: "MAC address 01:00:5e:00:00:01 is a multicast address"},
		{name: "zero MAC", node: links(config.Link{Interface: "hb0", MAC: mac(0, 0, 0, 0, 0, 0)}), want: "MAC address 00:00:00:00:00:00 is all zeros"},
		{name: "no MAC", node: links(config.Link{Interface: "hb0"}), want: `link "hb0`, other: true},
		{name: "interface with /", node: links(config.Link{Interface: "a/b", MAC: mac(2, 8, 8, 8, 8, 1)}), want: `interface name "a/b": character '/' is not allowed`},
		{name: "16-character interface", node: links(config.Link{Interface: long[:16], MAC: mac(2, 8, 8, 8, 8, 1)}), want: "must have 1..15 characters"},
		{name: "interface ..", node: links(config.Link{Interface: "..", MAC: mac(2, 8, 8, 8, 8, 1)}), want: `interface name ".." is not allowed`},
		{name: "no interface", node: links(config.Link{MAC: mac(2, 8, 8, 8, 8, 1)}), want: "link", other: true},
		{name: "interface twice", node: links(config.Link{Interface: "hb0", MAC: mac(2, 8, 8, 8, 8, 1)}, config.Link{Interface: "hb0", MAC: mac(2, 8, 8, 8, 8, 2)}), want: "interface hb0 is already link 0"},
		{name: "MAC twice", node: links(config.Link{Interface: "hb0", MAC: mac(2, 8, 8, 8, 8, 1)}, config.Link{Interface: "hb1", MAC: mac(2, 8, 8, 8, 8, 1)}), want: "MAC address is already link 0"},
		{name: "MAC of another node", node: links(config.Link{Interface: "hb0", MAC: testNode(3).Links[0].MAC}), want: "MAC address is already used by node node"},
		{name: "space in attribute name", node: attr("a b", "1"), want: `attribute name "a b": character ' ' is not one of [A-Za-z0-9_.-]`},
		{name: "empty attribute name", node: attr("", "1"), want: `attribute name "" must have 1..64 characters`},
		{name: "65-character attribute name", node: attr(long, "1"), want: "must have 1..64 characters"},
		{name: "control character in attribute", node: attr("k", "a\x01b"), want: `attr.k: value has control character '\x01'`},
		{name: "newline in attribute", node: attr("k", "a\nb"), want: `attr.k: value has control character '\n'`},
		{name: "1025-byte attribute value", node: attr("k", strings.Repeat("v", 1025)), want: "attr.k: value of 1025 bytes exceeds 1024"},

		// Options.
		{name: "new option", opt: true, key: "k", value: "v"},
		{name: "changed option", opt: true, key: "colour", value: "red"},
		{name: "option with # and quotes", opt: true, key: "motd", value: ` "hi" # there `},
		{name: "64-character option name", opt: true, key: long[:64], value: "v"},
		{name: "1024-byte option value", opt: true, key: "k", value: strings.Repeat("v", 1024)},
		{name: "UTF-8 option value", opt: true, key: "k", value: "café ☕"},
		{name: "space in option name", opt: true, key: "a b", value: "1", want: `[options]: option name "a b": character ' ' is not one of [A-Za-z0-9_.-]`},
		{name: "/ in option name", opt: true, key: "a/b", value: "1", want: `option name "a/b": character '/'`},
		{name: "65-character option name", opt: true, key: long, value: "1", want: "must have 1..64 characters"},
		{name: "empty option name", opt: true, key: "", value: "1", want: "", other: true},
		{name: "control character in option", opt: true, key: "k", value: "a\x01", want: `[options]: k: value has control character '\x01'`},
		{name: "tab in option", opt: true, key: "k", value: "a\tb", want: `[options]: k: value has control character '\t'`},
		{name: "DEL in option", opt: true, key: "k", value: "a\x7f", want: `value has control character '\x7f'`},
		{name: "1025-byte option value", opt: true, key: "k", value: strings.Repeat("v", 1025), want: "[options]: k: value of 1025 bytes exceeds 1024"},

		// Quorum.
		{name: "expected_votes 5", key: "expected_votes", value: "5"},
		{name: "tie_breaker 2", key: "tie_breaker", value: "2"},
		{name: "tie_breaker highest", key: "tie_breaker", value: "highest"},
		{name: "last_man_standing", key: "last_man_standing", value: "yes"},
		{name: "last_man_standing_window 20s", key: "last_man_standing_window", value: "20s"},
		{name: "wait_for_all", key: "wait_for_all", value: "on"},
		{name: "two_node on three nodes", key: "two_node", value: "yes", want: "[quorum]: two_node: needs exactly 2 nodes, found 3"},
		{name: "expected_votes below the votes", key: "expected_votes", value: "2", want: "[quorum]: expected_votes: 2 is less than the 3 votes"},
		{name: "expected_votes 0", key: "expected_votes", value: "0", want: `[quorum]: expected_votes: "0" is not a number`},
		{name: "expected_votes many", key: "expected_votes", value: "many", want: `expected_votes: "many" is not a number`},
		{name: "tie_breaker of no node", key: "tie_breaker", value: "9", want: "[quorum]: tie_breaker: no node has number 9"},
		{name: "tie_breaker smallest", key: "tie_breaker", value: "smallest", want: `tie_breaker: "smallest" is not lowest, highest, none or a node number`},
		{name: "wait_for_all maybe", key: "wait_for_all", value: "maybe", want: `[quorum]: wait_for_all: "maybe" is not yes or no`},
		{name: "last_man_standing_window 1ms", key: "last_man_standing_window", value: "1ms", want: "last_man_standing_window: 1ms is out of range"},
		{name: "unknown quorum key", key: "votes", value: "1", want: `[quorum]: unknown key "votes"`},
	}
}

// fileAndOp returns base's cluster.conf text with tc's setting in it, and
// the store op that makes the same change.
func (tc settingCase) fileAndOp(t *testing.T, base *config.Cluster, kind OpKind) (string, Op) {
	c := cloneCluster(base)
	switch {
	case tc.node != nil && kind == AddNode:
		n := testNode(4)
		tc.node(&n)
		c.Nodes = append(c.Nodes, n) // last in the file, as the store appends it
		return string(config.Format(c)), Op{Kind: AddNode, Node: n}
	case tc.node != nil:
		n := testNode(2)
		tc.node(&n)
		c.Nodes[1] = n
		return string(config.Format(c)), Op{Kind: EditNode, Number: 2, Node: n}
	case tc.opt:
		if c.Options == nil {
			c.Options = map[string]string{}
		}
		c.Options[tc.key] = tc.value
		return string(config.Format(c)), Op{Kind: SetOption, Key: tc.key, Value: tc.value}
	}
	// A quorum key: its line in [quorum] replaced, or added.
	before, rest, ok := strings.Cut(string(config.Format(c)), "[quorum]\n")
	sec, after, _ := strings.Cut(rest, "\n[")
	if !ok {
		t.Fatal("Format wrote no [quorum] section")
	}
	line := tc.key + " = " + tc.value
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(tc.key) + ` = .*$`)
	if re.MatchString(sec) {
		sec = re.ReplaceAllLiteralString(sec, line)
	} else {
		sec = line + "\n" + sec
	}
	return before + "[quorum]\n" + sec + "\n[" + after, Op{Kind: SetQuorum, Key: tc.key, Value: tc.value}
}

var lineNo = regexp.MustCompile(`^cluster\.conf:\d+: `)

// TestOneValidation: cluster.conf and the replicated store accept and
// refuse the same node, option and quorum settings, refusing in the same
// sentence (the file's prefixed with its line, the store's with the op),
// and what both accept gives the same configuration.
func TestOneValidation(t *testing.T) {
	base := testCluster(3)
	if c, err := config.Parse(config.Format(base)); err != nil || !reflect.DeepEqual(c, base) {
		t.Fatalf("the base configuration does not survive Format and Parse: %v", err)
	}
	var tn *testNet // shared while changes are refused
	for _, tc := range settingCases() {
		kinds := tc.kinds
		switch {
		case tc.node == nil:
			kinds = []OpKind{0}
		case kinds == nil:
			kinds = []OpKind{AddNode, EditNode}
		}
		for _, kind := range kinds {
			text, op := tc.fileAndOp(t, base, kind)
			name := tc.name
			if tc.node != nil {
				name = op.Kind.String() + ": " + name
			}
			fileCfg, fileErr := config.Parse([]byte(text))

			if tn == nil {
				tn = newMemNet(t, 3)
				tn.elect(1)
			}
			req, storeErr := tn.stores[2].Propose(op)
			if storeErr == nil {
				storeErr = tn.result(2, req)
			}
			// An op that skips Propose (from another node) meets apply alone.
			st := &state{Sealed: true, Cluster: *cloneCluster(base)}
			st.index()
			applyErr := st.apply(op)

			switch {
			case (fileErr == nil) != (storeErr == nil) || (storeErr == nil) != (applyErr == nil):
				t.Errorf("%s: the file says %v, the store %v, apply %v", name, fileErr, storeErr, applyErr)
				continue
			case fileErr == nil && tc.want != "":
				t.Errorf("%s: accepted, want refused with %q", name, tc.want)
			case fileErr == nil:
				if c := agree(t, tn); !reflect.DeepEqual(c, fileCfg) || !reflect.DeepEqual(&st.Cluster, fileCfg) {
					t.Errorf("%s: the store holds\n%+v\nthe file gives\n%+v", name, c, fileCfg)
				}
				tn = nil // changed: the next row starts afresh
				continue
			}
			if tc.want == "" && !tc.other {
				t.Errorf("%s: refused (%v), want accepted", name, fileErr)
				continue
			}
			if !errors.Is(storeErr, ErrRejected) || storeErr.Error() != applyErr.Error() {
				t.Errorf("%s: the store says %v, apply %v", name, storeErr, applyErr)
			}
			for _, err := range []error{fileErr, storeErr} {
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: %v, want it to contain %q", name, err, tc.want)
				}
			}
			if tc.other {
				continue
			}
			sentence := lineNo.ReplaceAllString(fileErr.Error(), "")
			if sentence == fileErr.Error() {
				t.Errorf("%s: file error %q has no line", name, fileErr)
			}
			want := "confstore: " + op.String() + ": " + sentence
			if got := strings.TrimSuffix(storeErr.Error(), "; "+config.QuorumHint); got != want {
				t.Errorf("%s: the file and the store say it differently:\n file  %v\n store %v", name, fileErr, storeErr)
			}
			if c := agree(t, tn); !reflect.DeepEqual(c, base) {
				t.Fatalf("%s: a refused change changed the configuration: %+v", name, c)
			}
		}
	}
}
