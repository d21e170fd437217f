package iscsi

import "testing"

func FuzzPDU(f *testing.F) {
	resp := &PDU{Data: []byte{0, 4, 0x70, 0, 5, 0}}
	resp.BHS[0] = OpSCSIResp
	resp.BHS[3] = 2
	b, _ := resp.Marshal()
	f.Add(b)
	login := &PDU{Data: EncodeText([]KV{{"TargetPortalGroupTag", "1"}})}
	login.BHS[0] = OpLoginResp
	login.BHS[1] = 0x87
	b, _ = login.Marshal()
	f.Add(b)
	f.Add(make([]byte, 47))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, rest, err := ParsePDU(b, 8192)
		if err != nil {
			return
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if consumed := len(b) - len(rest); len(out) != consumed {
			t.Errorf("re-encoded %d bytes, parsed %d", len(out), consumed)
		}
		if p.Opcode() == OpLoginResp || p.Opcode() == OpTextResp {
			ParseText(p.Data)
		}
	})
}

func FuzzText(f *testing.F) {
	f.Add([]byte("A=1\x00B=\x00"))
	f.Add([]byte("MaxRecvDataSegmentLength=8192\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		kvs, err := ParseText(b)
		if err != nil {
			return
		}
		again, err := ParseText(EncodeText(kvs))
		if err != nil || len(again) != len(kvs) {
			t.Errorf("re-parse: %v, %d vs %d pairs", err, len(again), len(kvs))
		}
	})
}
