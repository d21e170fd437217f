package groupsrv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/concord-ha/concord/lib/api/groupwire"
)

// packetTarget is how full the writer packs a packet before sending it:
// batching events saves system calls on both sides.
const packetTarget = 64 << 10

// Session is one client's connection. ID, PID, UID and GID are fixed at
// accept; Client is the loop's to set and read.
type Session struct {
	srv  *Server
	conn *net.UnixConn

	ID       uint64
	PID, UID uint32
	GID      uint32
	Client   uint32 // the core's client id, set by the loop after Opened

	mu      sync.Mutex
	cond    *sync.Cond
	out     []outRecord
	spare   []outRecord // the writer's last batch, emptied, for reuse
	closing bool        // close once out is written
	closed  bool
}

func (s *Session) String() string {
	return fmt.Sprintf("session %d (pid %d, uid %d)", s.ID, s.PID, s.UID)
}

type outRecord struct {
	groupwire.Record
	event bool // one of the core's events: counted when the client takes it
}

// Event queues one of the core's events for the client; Consumed inputs
// count them as the client takes them. The record's byte slices must not
// change afterwards.
func (s *Session) Event(r groupwire.Record) { s.queue(outRecord{r, true}, false) }

// Answer queues a record that is not a core event (reply, credit, list,
// a send refused at once).
func (s *Session) Answer(r groupwire.Record) { s.queue(outRecord{r, false}, false) }

// CloseAfter sends r, then ends the session; a client that does not read
// it within a second is cut off anyway.
func (s *Session) CloseAfter(r groupwire.Record) {
	s.queue(outRecord{r, false}, true)
	s.conn.SetWriteDeadline(time.Now().Add(time.Second))
}

func (s *Session) queue(r outRecord, closing bool) {
	s.mu.Lock()
	if !s.closed && !s.closing {
		s.out = append(s.out, r)
		s.closing = closing
		s.cond.Signal()
	}
	s.mu.Unlock()
}

// Close ends the session now; the reader reports Closed.
func (s *Session) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.out = nil
		s.cond.Signal()
	}
	s.mu.Unlock()
	s.conn.Close()
}

func (s *Session) put(in Input) {
	in.S = s
	s.srv.in <- in
}

// read hands the client's packets to the loop until the socket ends. The
// first record must be a hello. A malformed packet gets an error naming
// what is wrong and ends the session, since the stream cannot be trusted
// after it; the daemon and the other sessions go on.
func (s *Session) read() {
	defer s.srv.wg.Done()
	defer s.srv.forget(s)
	buf := make([]byte, groupwire.MaxPacket)
	hello, bye := true, false
	for {
		n, trunc, err := s.recv(buf)
		if errors.Is(err, syscall.ECONNRESET) {
			// The client closed with our events unread: Linux says so
			// before it hands over the packets the client sent last
			// (its bye), so read on to the end.
			continue
		}
		if err != nil {
			s.Close()
			s.put(Input{Kind: Closed, Died: !bye && processEnding(s.PID)})
			return
		}
		// The loop keeps what the records point into.
		pkt := make([]byte, n)
		copy(pkt, buf[:n])
		rs, tag, code, why := check(pkt, trunc, hello)
		if why != "" {
			s.srv.log.Warn("group session: "+why+"; closing it", "session", s.ID, "pid", s.PID, "uid", s.UID)
			s.CloseAfter(groupwire.Record{Type: groupwire.TReply, Tag: tag, Code: code, Text: why})
			s.put(Input{Kind: Closed})
			return
		}
		if hello {
			hello = false
			s.put(Input{Kind: Opened, Name: rs[0].Name, Records: rs})
			continue
		}
		if last := len(rs) - 1; rs[last].Type == groupwire.TBye {
			bye, rs = true, rs[:last]
		}
		if len(rs) > 0 {
			s.put(Input{Kind: Requests, Records: rs})
		}
	}
}

// check decodes a client's packet and says what is wrong with it, if
// anything: the tag to answer, the code and the sentence.
func check(pkt []byte, trunc, hello bool) (rs []groupwire.Record, tag uint32, code groupwire.Code, why string) {
	if trunc {
		return nil, 0, groupwire.Invalid, fmt.Sprintf("packet longer than %d bytes", groupwire.MaxPacket)
	}
	rs, err := groupwire.Records(pkt)
	if err != nil {
		if len(pkt) >= groupwire.HeaderLen {
			tag = binary.LittleEndian.Uint32(pkt[8:])
		}
		return nil, tag, groupwire.Invalid, err.Error()
	}
	for i, r := range rs {
		switch {
		case !r.Type.IsRequest():
			return nil, r.Tag, groupwire.Invalid, fmt.Sprintf("%s is not a request", r.Type)
		case hello && (i > 0 || r.Type != groupwire.THello):
			return nil, r.Tag, groupwire.Invalid, fmt.Sprintf("the first packet must be one hello record, not %s", r.Type)
		case hello && r.Version < 1:
			return nil, r.Tag, groupwire.BadVersion, fmt.Sprintf("client speaks protocol version %d; this daemon speaks 1 to %d", r.Version, groupwire.Version)
		case !hello && r.Type == groupwire.THello:
			return nil, r.Tag, groupwire.Invalid, "hello after the session started"
		case r.Type == groupwire.TBye && i != len(rs)-1:
			return nil, r.Tag, groupwire.Invalid, "records after bye"
		}
	}
	return rs, 0, groupwire.OK, ""
}

func (s *Session) recv(buf []byte) (n int, trunc bool, err error) {
	n, _, flags, _, err := s.conn.ReadMsgUnix(buf, nil)
	if err == nil && n == 0 {
		err = errors.New("end of session") // a zero-length packet is EOF on SEQPACKET
	}
	return n, flags&unix.MSG_TRUNC != 0, err
}

// processEnding reports whether process pid has ended or is ending: gone,
// a zombie, or exiting (PF_EXITING, set before the kernel closes its
// files, so it shows already when the socket ends). That makes a session
// that ended without bye a death rather than a close.
func processEnding(pid uint32) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH)
	}
	// pid (comm) state ppid pgrp session tty_nr tpgid flags ...: comm may
	// hold spaces and parentheses, so count from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 7 {
		return false
	}
	if f[0] == "Z" || f[0] == "X" || f[0] == "x" {
		return true
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	return err == nil && flags&pfExiting != 0
}

const pfExiting = 0x4 // include/linux/sched.h

// write sends queued records, packed into packets, and reports how many
// core events the client took.
func (s *Session) write() {
	defer s.srv.wg.Done()
	var pkt []byte
	for {
		s.mu.Lock()
		for len(s.out) == 0 && !s.closed && !s.closing {
			s.cond.Wait()
		}
		if s.closed || (s.closing && len(s.out) == 0) {
			s.mu.Unlock()
			if !s.closed {
				s.Close()
			}
			return
		}
		batch := s.out
		s.out, s.spare = s.spare[:0], nil
		s.mu.Unlock()
		all := batch
		for len(batch) > 0 {
			pkt = pkt[:0]
			events := 0
			i := 0
			for ; i < len(batch); i++ {
				next, err := groupwire.Append(pkt, &batch[i].Record)
				if err != nil {
					s.srv.log.Error("group session: cannot encode a record; dropped", "session", s.ID, "type", batch[i].Type, "err", err)
					continue
				}
				if len(next) > packetTarget && len(pkt) > 0 {
					pkt = next[:len(pkt)] // keep what the buffer grew to
					break
				}
				pkt = next
				if batch[i].event {
					events++
				}
			}
			batch = batch[i:]
			if len(pkt) == 0 {
				continue
			}
			if _, err := s.conn.Write(pkt); err != nil {
				return // the reader sees the end too and reports it
			}
			if events > 0 {
				s.put(Input{Kind: Consumed, Count: events})
			}
		}
		clear(all) // drop the payloads the records point to
		s.mu.Lock()
		s.spare = all[:0]
		s.mu.Unlock()
	}
}
