package libconcord

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	gw "github.com/concord-ha/concord/lib/api/groupwire"
)

// decoder is testdata/decode.c, one process for all the inputs of a
// fuzzing process.
var decoder struct {
	once   sync.Once
	mu     sync.Mutex
	in     io.Writer
	out    *bufio.Reader
	stderr *lockedBuffer
	err    error
}

func decodeC(t *testing.T, p []byte) []string {
	t.Helper()
	decoder.once.Do(func() {
		cmd := exec.Command(built.decode)
		decoder.stderr = &lockedBuffer{}
		cmd.Stderr = decoder.stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			decoder.err = err
			return
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			decoder.err = err
			return
		}
		decoder.in, decoder.out = in, bufio.NewReaderSize(out, 1<<20)
		decoder.err = cmd.Start()
	})
	if decoder.err != nil {
		t.Fatal(decoder.err)
	}
	decoder.mu.Lock()
	defer decoder.mu.Unlock()
	msg := binary.LittleEndian.AppendUint32(nil, uint32(len(p)))
	if _, err := decoder.in.Write(append(msg, p...)); err != nil {
		t.Fatalf("decoder: %v\n%s", err, decoder.stderr.String())
	}
	var lines []string
	for {
		l, err := decoder.out.ReadString('\n')
		if err != nil {
			t.Fatalf("decoder died on %x: %v\n%s", p, err, decoder.stderr.String())
		}
		l = strings.TrimSuffix(l, "\n")
		lines = append(lines, l)
		if l == "end" || l == "malformed" {
			return lines
		}
	}
}

// The decoder's output, made from the Go decoder's records.

func hx(b []byte) string {
	if len(b) == 0 {
		return " -"
	}
	return fmt.Sprintf(" %x", b)
}

func ms(m []gw.Member) string {
	s := fmt.Sprintf(" %d", len(m))
	for _, x := range m {
		s += " " + fmtMember(x)
	}
	return s
}

func b01(v bool) int {
	if v {
		return 1
	}
	return 0
}

func fmtRecord(r gw.Record) string {
	s := fmt.Sprintf("%d %d", r.Type, r.Tag)
	switch r.Type {
	case gw.TWelcome:
		s += fmt.Sprintf(" %d %s %d %d %d", r.Version, fmtMember(r.Self), r.Window, r.MaxPayload, r.MaxQueue) + hx([]byte(r.Name))
	case gw.TReply:
		s += fmt.Sprintf(" %d", r.Code) + hx([]byte(r.Text))
	case gw.TView:
		s += hx([]byte(r.Group)) + " " + fmtView(r.View) + ms(r.Members) + fmt.Sprintf(" %d", len(r.Changes))
		for _, c := range r.Changes {
			s += fmt.Sprintf(" %s %d", fmtMember(c.Member), c.Kind) + hx([]byte(c.Reason))
		}
	case gw.TMessage:
		s += hx([]byte(r.Group)) + " " + fmtView(r.View) + " " + fmtMember(r.From) + fmt.Sprintf(" %d %d %s", r.Order, b01(r.Direct), fmtID(r.ID)) + hx(r.Payload)
	case gw.TTx:
		s += fmt.Sprintf(" %s %d %d %s %d", fmtMember(r.From), r.Order, r.Tx, fmtID(r.ID), len(r.Parts))
		for _, p := range r.Parts {
			s += hx([]byte(p.Group)) + hx(p.Payload)
		}
	case gw.TBarrierDone:
		s += hx([]byte(r.Group)) + hx([]byte(r.Barrier)) + fmt.Sprintf(" %d", b01(r.Failed)) + hx([]byte(r.Text)) + ms(r.Members)
	case gw.TSendFailed:
		s += fmt.Sprintf(" %d %s", r.Code, fmtID(r.ID)) + hx([]byte(r.Text))
	case gw.TCredit:
		s += fmt.Sprintf(" %d", r.Count)
	case gw.TGroupList:
		s += fmt.Sprintf(" %d", len(r.Groups))
		for _, g := range r.Groups {
			s += hx([]byte(g.Group)) + " " + fmtView(g.View) + fmt.Sprintf(" %d", g.Members)
		}
	case gw.TMemberList:
		s += hx([]byte(r.Group)) + " " + fmtView(r.View) + ms(r.Members)
	}
	return s
}

// FuzzDecode: libconcord's decoder and the Go reference decoder agree on
// every packet, record by record: the same fields from what both take,
// and malformed where the Go decoder says so (or where a record is a
// request, which a client never receives). The C side runs with
// AddressSanitizer and UBSan, so a read past a record is a crash.
func FuzzDecode(f *testing.F) {
	for _, r := range append(events(), welcome(8, 65536), gw.Record{Type: gw.TReply, Tag: 3, Code: gw.Denied, Text: "no"},
		gw.Record{Type: gw.TCredit, Count: 7}, gw.Record{Type: gw.TGroupList, Tag: 4, Groups: []gw.GroupInfo{{Group: "db", View: v1, Members: 2}}},
		gw.Record{Type: gw.TMemberList, Tag: 5, Group: "db", View: v1, Members: []gw.Member{self, m2}}, gw.Record{Type: gw.TJoin, Tag: 6, Group: "x"}) {
		b, err := gw.Append(nil, &r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	var all []byte
	for _, r := range events() {
		all, _ = gw.Append(all, &r)
	}
	f.Add(all)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		if built.skip != "" {
			t.Skip(built.skip)
		}
		if len(p) > gw.MaxPacket {
			return
		}
		rs, err := gw.Records(p)
		var want []string
		for _, r := range rs {
			if r.Type.IsRequest() {
				err = fmt.Errorf("a request")
				break
			}
			want = append(want, fmtRecord(r))
		}
		if err != nil {
			want = append(want, "malformed")
		} else {
			want = append(want, "end")
		}
		got := decodeC(t, p)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("packet %x:\nC decoded\n%s\nGo decoded\n%s", p, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

func init() {
	// The decoder's leaks are reported at its exit, which a test never
	// waits for.
	os.Setenv("ASAN_OPTIONS", "detect_leaks=0")
}
