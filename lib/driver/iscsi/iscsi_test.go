package iscsi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestPDUMarshalRoundTrip(t *testing.T) {
	p := &PDU{AHS: []byte{1, 2, 3, 4}, Data: []byte("abcde")}
	p.BHS[0] = OpSCSICommand
	p.BHS[1] = 0x80
	p.put32(16, 0x11223344)
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 48+4+8 || b[4] != 1 || b[5] != 0 || b[6] != 0 || b[7] != 5 || !bytes.Equal(b[57:60], []byte{0, 0, 0}) {
		t.Fatalf("encoding % x", b)
	}
	q, rest, err := ParsePDU(append(b, 0xee), 1024)
	if err != nil || len(rest) != 1 {
		t.Fatalf("parse: %v, rest %d", err, len(rest))
	}
	if q.Opcode() != OpSCSICommand || !q.Final() || q.ITT() != 0x11223344 || !bytes.Equal(q.AHS, p.AHS) || string(q.Data) != "abcde" {
		t.Errorf("round trip: %+v", q)
	}
}

func TestReadPDUErrors(t *testing.T) {
	hdr := func(ahs byte, dlen int) []byte {
		b := make([]byte, BHSLen)
		b[0] = OpNOPIn
		b[4] = ahs
		b[5], b[6], b[7] = byte(dlen>>16), byte(dlen>>8), byte(dlen)
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"short header", make([]byte, 20), io.ErrUnexpectedEOF},
		{"missing AHS", hdr(2, 0), io.ErrUnexpectedEOF},
		{"missing data", hdr(0, 10), io.ErrUnexpectedEOF},
		{"missing padding", append(hdr(0, 3), 1, 2, 3), io.ErrUnexpectedEOF},
		{"too long", hdr(0, 5000), ErrDataTooLong},
	}
	for _, tt := range tests {
		_, _, err := ParsePDU(tt.in, 4096)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestParseText(t *testing.T) {
	tests := []struct {
		in   string
		want []KV
		err  bool
	}{
		{"A=1\x00B=\x00", []KV{{"A", "1"}, {"B", ""}}, false},
		{"A=1\x00\x00\x00", []KV{{"A", "1"}}, false},
		{"TargetAlias=x=y", []KV{{"TargetAlias", "x=y"}}, false},
		{"novalue\x00", nil, true},
		{"=v\x00", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseText([]byte(tt.in))
		if (err != nil) != tt.err || len(got) != len(tt.want) {
			t.Errorf("%q: got %v, %v", tt.in, got, err)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%q: pair %d = %v, want %v", tt.in, i, got[i], tt.want[i])
			}
		}
	}
	if got := string(EncodeText([]KV{{"A", "1"}, {"B", "x"}})); got != "A=1\x00B=x\x00" {
		t.Errorf("EncodeText = %q", got)
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in   string
		want URL
		err  string
	}{
		{"iscsi://127.0.0.1:3261/iqn.2026-11.test.concord:shared1/1", URL{"127.0.0.1:3261", "iqn.2026-11.test.concord:shared1", 1}, ""},
		{"iscsi://host/iqn.x:y/0", URL{"host:3260", "iqn.x:y", 0}, ""},
		{"iscsi://[::1]:99/t/300", URL{"[::1]:99", "t", 300}, ""},
		{"http://h/t/1", URL{}, "scheme"},
		{"iscsi:///t/1", URL{}, "no host"},
		{"iscsi://h/t", URL{}, "path must be"},
		{"iscsi://h/t/x", URL{}, "bad LUN"},
		{"iscsi://h/t/16384", URL{}, "bad LUN"},
		{"iscsi://h:0/t/1", URL{}, "bad port"},
		{"iscsi://u@h/t/1", URL{}, "user info"},
	}
	for _, tt := range tests {
		got, err := ParseURL(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %+v, %v", tt.in, got, err)
		}
	}
	if got := encodeLUN(5); got != [8]byte{0, 5} {
		t.Errorf("LUN 5: % x", got)
	}
	if got := encodeLUN(300); got != [8]byte{0x41, 0x2c} {
		t.Errorf("LUN 300: % x", got)
	}
}

func TestISID(t *testing.T) {
	a, b := ISIDFromName("iqn.2026-11.test.concord:node-a"), ISIDFromName("iqn.2026-11.test.concord:node-b")
	if a[0] != 0x80 || a == b || a != ISIDFromName("iqn.2026-11.test.concord:node-a") {
		t.Errorf("ISIDs % x % x", a, b)
	}
	if got := ISIDRandom(0x123456, 7); got != [6]byte{0x80, 0x12, 0x34, 0x56, 0, 7} {
		t.Errorf("ISIDRandom % x", got)
	}
}

// fakeTarget serves one connection: login (optionally over two rounds and
// with a continued text response), then the commands the test scripts.
type fakeTarget struct {
	t        *testing.T
	c        net.Conn
	statSN   uint32
	loginErr [2]byte
	keys     []KV // operational keys the target answers with
}

func (f *fakeTarget) send(p *PDU) {
	b, err := p.Marshal()
	if err != nil {
		f.t.Error(err)
	}
	f.c.Write(b)
}

func (f *fakeTarget) recv() *PDU {
	p, err := ReadPDU(f.c, 1<<20)
	if err != nil {
		return nil
	}
	return p
}

func (f *fakeTarget) resp(op byte, itt uint32) *PDU {
	p := &PDU{}
	p.BHS[0] = op
	p.BHS[1] = 0x80
	p.put32(16, itt)
	p.put32(24, f.statSN)
	f.statSN++
	p.put32(28, 1)
	p.put32(32, 64)
	return p
}

func (f *fakeTarget) login() bool {
	for {
		req := f.recv()
		if req == nil || req.Opcode() != OpLoginReq {
			f.t.Errorf("expected login request, got %+v", req)
			return false
		}
		r := f.resp(OpLoginResp, req.ITT())
		r.BHS[1] = req.BHS[1] & 0x8f // echo T, CSG, NSG
		r.BHS[36], r.BHS[37] = f.loginErr[0], f.loginErr[1]
		csg := req.BHS[1] >> 2 & 3
		if csg == 0 {
			kvs, _ := ParseText(req.Data)
			if lookup(kvs, "InitiatorName") == "" || lookup(kvs, "TargetName") != "iqn.t:lu" {
				f.t.Errorf("security keys %v", kvs)
			}
			r.Data = EncodeText([]KV{{"AuthMethod", "None"}, {"TargetPortalGroupTag", "1"}})
		} else {
			r.Data = EncodeText(f.keys)
			r.put32(28, 1) // ExpCmdSN
		}
		f.send(r)
		if f.loginErr[0] != 0 {
			return false
		}
		if r.BHS[1]&3 == 3 {
			return true
		}
	}
}

func pipeSession(t *testing.T, f *fakeTarget, serve func(f *fakeTarget)) (*Session, error) {
	a, b := net.Pipe()
	f.t, f.c = t, b
	go func() {
		defer b.Close()
		if f.login() && serve != nil {
			serve(f)
		}
	}()
	s := &Session{cfg: Config{Addr: "pipe", Target: "iqn.t:lu", InitiatorName: "iqn.i:n", ISID: ISIDFromName("iqn.i:n")}, conn: a, cmdSN: 1}
	if err := s.login(); err != nil {
		a.Close()
		return nil, err
	}
	return s, nil
}

func TestLoginRejected(t *testing.T) {
	_, err := pipeSession(t, &fakeTarget{loginErr: [2]byte{2, 3}}, nil)
	var le *LoginError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "target not found") {
		t.Errorf("got %v", err)
	}
}

func TestLoginRejectsDigest(t *testing.T) {
	_, err := pipeSession(t, &fakeTarget{keys: []KV{{"HeaderDigest", "CRC32C"}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "HeaderDigest=CRC32C") {
		t.Errorf("got %v", err)
	}
}

func TestCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	written := make(chan []byte, 1)
	f := &fakeTarget{keys: []KV{{"MaxRecvDataSegmentLength", "512"}, {"FirstBurstLength", "1024"}, {"ImmediateData", "Yes"}}}
	s, err := pipeSession(t, f, func(f *fakeTarget) {
		// 1: READ, data in two Data-In PDUs, after an unsolicited NOP-In ping.
		cmd := f.recv()
		ping := f.resp(OpNOPIn, reservedTag)
		ping.put32(20, 0x77)
		ping.Data = []byte("ping")
		f.statSN-- // a ping does not consume a StatSN
		f.send(ping)
		pong := f.recv()
		if pong.Opcode() != OpNOPOut || pong.TTT() != 0x77 || string(pong.Data) != "ping" || pong.ITT() != reservedTag {
			f.t.Errorf("NOP-Out reply %+v", pong)
		}
		d1 := f.resp(OpDataIn, cmd.ITT())
		d1.BHS[1] = 0
		d1.Data = []byte("hello ")
		f.statSN--
		f.send(d1)
		d2 := f.resp(OpDataIn, cmd.ITT())
		d2.BHS[1] = 0x81
		d2.put32(40, 6)
		d2.Data = []byte("world")
		f.send(d2)
		// 2: WRITE of 1500 bytes: 512 immediate, rest via one R2T split
		// into 512-byte Data-Outs.
		cmd = f.recv()
		got := append([]byte(nil), cmd.Data...)
		r2t := f.resp(OpR2T, cmd.ITT())
		f.statSN--
		r2t.put32(20, 0x99)
		r2t.put32(40, uint32(len(got)))
		r2t.put32(44, uint32(1500-len(got)))
		f.send(r2t)
		for {
			d := f.recv()
			if d.Opcode() != OpDataOut || d.TTT() != 0x99 || int(d.u32(40)) != len(got) || len(d.Data) > 512 {
				f.t.Errorf("Data-Out %+v", d.BHS)
				return
			}
			got = append(got, d.Data...)
			if d.Final() {
				break
			}
		}
		written <- got
		f.send(f.resp(OpSCSIResp, cmd.ITT()))
		// 3: RESERVATION CONFLICT, then CHECK CONDITION with sense.
		cmd = f.recv()
		r := f.resp(OpSCSIResp, cmd.ITT())
		r.BHS[3] = 0x18
		f.send(r)
		cmd = f.recv()
		r = f.resp(OpSCSIResp, cmd.ITT())
		r.BHS[3] = 0x02
		r.Data = []byte{0, 4, 0x70, 0, 5, 0}
		f.send(r)
		// 4: a response for the wrong task breaks the session.
		f.recv()
		f.send(f.resp(OpSCSIResp, 12345))
	})
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Params(); p.MaxRecvDataSegmentLength != 512 || p.FirstBurstLength != 1024 || !p.InitialR2T {
		t.Errorf("params %+v", p)
	}
	in, st, _, err := s.Do(ctx, []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}, nil, 512)
	if err != nil || st != 0 || string(in) != "hello world" {
		t.Fatalf("read: %q, %d, %v", in, st, err)
	}
	data := bytes.Repeat([]byte("0123456789"), 150)
	_, st, _, err = s.Do(ctx, []byte{0x2a, 0, 0, 0, 0, 0, 0, 0, 3, 0}, data, 0)
	if err != nil || st != 0 || !bytes.Equal(<-written, data) {
		t.Fatalf("write: %d, %v", st, err)
	}
	_, st, _, err = s.Do(ctx, []byte{0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0}, data[:512], 0)
	if err != nil || st != 0x18 {
		t.Errorf("conflict: %d, %v", st, err)
	}
	_, st, sense, err := s.Do(ctx, []byte{0x5f, 5, 5, 0, 0, 0, 0, 0, 24, 0}, make([]byte, 24), 0)
	if err != nil || st != 0x02 || !bytes.Equal(sense, []byte{0x70, 0, 5, 0}) {
		t.Errorf("check condition: %d, % x, %v", st, sense, err)
	}
	if _, _, _, err = s.Do(ctx, []byte{0}, nil, 0); err == nil || !strings.Contains(err.Error(), "task 0x3039") {
		t.Errorf("wrong task: %v", err)
	}
	if _, _, _, err = s.Do(ctx, []byte{0}, nil, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("after failure: %v", err)
	}
}

func TestDoContextCancel(t *testing.T) {
	f := &fakeTarget{}
	block := make(chan struct{})
	s, err := pipeSession(t, f, func(f *fakeTarget) { f.recv(); <-block })
	if err != nil {
		t.Fatal(err)
	}
	defer close(block)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, _, err = s.Do(ctx, []byte{0}, nil, 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v", err)
	}
}

func TestLogout(t *testing.T) {
	f := &fakeTarget{}
	s, err := pipeSession(t, f, func(f *fakeTarget) {
		req := f.recv()
		if req.Opcode() != OpLogoutReq {
			f.t.Errorf("got opcode 0x%x", req.Opcode())
		}
		f.send(f.resp(OpLogoutResp, req.ITT()))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Logout(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestDialUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = Dial(context.Background(), Config{Addr: addr, Target: "iqn.t:x", InitiatorName: "iqn.i:y"})
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("got %v", err)
	}
}
