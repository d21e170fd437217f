package daemon

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/groupwire"
)

func TestFloodProfile(t *testing.T) {
	if os.Getenv("FLOOD") == "" {
		t.Skip()
	}
	const N = 60000
	_, socks := startGroupCluster(t, 3)
	var cs []*wireClient
	for _, s := range socks {
		c := dialGroups(t, s)
		c.call(groupwire.Record{Type: groupwire.TJoin, Group: "g"}, groupwire.TReply)
		cs = append(cs, c)
	}
	for _, c := range cs {
		c.until("view", func(r groupwire.Record) bool { return r.Type == groupwire.TView && len(r.Members) == 3 })
	}
	payload := make([]byte, 1024)
	done := make(chan int, 3)
	for _, c := range cs[1:] {
		go func(c *wireClient) {
			k := 0
			for k < N {
				r, err := c.next()
				if err != nil {
					break
				}
				if r.Type == groupwire.TMessage {
					k++
				}
			}
			done <- k
		}(c)
	}
	start := time.Now()
	credit, sent := 1024, 0
	for sent < N {
		var batch []groupwire.Record
		for credit > 0 && sent < N && len(batch) < 64 {
			batch = append(batch, groupwire.Record{Type: groupwire.TSend, Group: "g", Payload: payload})
			credit--
			sent++
		}
		if len(batch) > 0 {
			cs[0].send(batch...)
		}
		for credit == 0 || len(cs[0].got) > 0 {
			r, err := cs[0].next()
			if err != nil {
				t.Fatal(err)
			}
			if r.Type == groupwire.TCredit {
				credit += int(r.Count)
			}
		}
	}
	<-done
	<-done
	t.Logf("%.0f msgs/s", N/time.Since(start).Seconds())
}

func TestPacedProfile(t *testing.T) {
	if os.Getenv("FLOOD") == "" {
		t.Skip()
	}
	_, socks := startGroupCluster(t, 3)
	var cs []*wireClient
	for _, s := range socks {
		c := dialGroups(t, s)
		c.call(groupwire.Record{Type: groupwire.TJoin, Group: "g"}, groupwire.TReply)
		cs = append(cs, c)
	}
	for _, c := range cs {
		c.until("view", func(r groupwire.Record) bool { return r.Type == groupwire.TView && len(r.Members) == 3 })
	}
	var lat []time.Duration
	for k := 0; k < 50; k++ {
		start := time.Now()
		cs[0].send(groupwire.Record{Type: groupwire.TSend, Group: "g", Payload: make([]byte, 1024)})
		cs[1].until("msg", func(r groupwire.Record) bool { return r.Type == groupwire.TMessage })
		lat = append(lat, time.Since(start))
		time.Sleep(5 * time.Millisecond)
	}
	slices.Sort(lat)
	t.Logf("latency median %v min %v max %v", lat[len(lat)/2], lat[0], lat[len(lat)-1])
}
