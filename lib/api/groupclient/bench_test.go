package groupclient

import (
	"context"
	"testing"

	"github.com/concord-ha/concord/lib/api/groupclient/grouptest"
	"github.com/concord-ha/concord/lib/api/groupwire"
)

// creditor is a fake daemon that completes every send at once.
func creditor(b *testing.B, c *grouptest.Conn) {
	for {
		p, err := c.Packet()
		if err != nil {
			return
		}
		rs, err := groupwire.Records(p)
		if err != nil {
			b.Error(err)
			return
		}
		if c.Send(groupwire.Record{Type: groupwire.TCredit, Count: uint32(len(rs))}) != nil {
			return
		}
	}
}

func BenchmarkSend1K(b *testing.B) {
	s, c := open(b, groupwire.Record{Self: me, Window: 256, MaxPayload: groupwire.MaxPayload, MaxQueue: 1024})
	go creditor(b, c)
	payload := make([]byte, 1024)
	ctx := context.Background()
	b.SetBytes(1024)
	for b.Loop() {
		if _, err := s.Send(ctx, "g", 0, payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSendBatch1K(b *testing.B) {
	s, c := open(b, groupwire.Record{Self: me, Window: 256, MaxPayload: groupwire.MaxPayload, MaxQueue: 1024})
	go creditor(b, c)
	batch := make([][]byte, 64)
	for i := range batch {
		batch[i] = make([]byte, 1024)
	}
	ctx := context.Background()
	b.SetBytes(64 * 1024)
	for b.Loop() {
		if _, err := s.SendBatch(ctx, "g", 0, batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNext1K: events of 1 KiB messages, 32 to a packet, as a busy
// daemon batches them.
func BenchmarkNext1K(b *testing.B) {
	s, c := open(b, groupwire.Record{Self: me, Window: 256, MaxPayload: groupwire.MaxPayload, MaxQueue: 1024})
	m := groupwire.Record{Type: groupwire.TMessage, Group: "g", From: other, Payload: make([]byte, 1024)}
	var p []byte
	for range 32 {
		p, _ = groupwire.Append(p, &m)
	}
	go func() {
		for c.SendRaw(p) == nil {
		}
	}()
	ctx := context.Background()
	b.SetBytes(1024)
	for b.Loop() {
		if _, err := s.Next(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
