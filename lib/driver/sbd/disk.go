package sbd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
)

// Store is the shared disk: a block device, or anything with the same
// positional I/O (tests inject failures through it).
type Store interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
}

// Disk is an SBD device with a valid header.
type Disk struct {
	Name string
	st   Store
	h    Header
}

// ErrNoSlot: the node has no slot on the device.
var ErrNoSlot = errors.New("no slot")

// OpenDisk opens path (O_DIRECT on block devices, as sbd does, so every
// read sees the disk and not the page cache) and reads its header.
func OpenDisk(path string) (*Disk, error) {
	st, _, err := openStore(path)
	if err != nil {
		return nil, err
	}
	d, err := NewDisk(path, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	return d, nil
}

// NewDisk reads the header from st.
func NewDisk(name string, st Store) (*Disk, error) {
	b, err := readAligned(st, 0, minSector)
	if err != nil {
		return nil, fmt.Errorf("sbd: %s: reading header: %w", name, err)
	}
	h, err := ParseHeader(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &Disk{Name: name, st: st, h: h}, nil
}

// Header returns the header read at open.
func (d *Disk) Header() Header { return d.h }

// Close closes the device.
func (d *Disk) Close() error { return d.st.Close() }

// Create writes a fresh header and clears every slot and mailbox, as
// `sbd create` does. h.SectorSize 0 means the device's logical sector size.
func Create(path string, h Header) error {
	st, sector, err := openStore(path)
	if err != nil {
		return err
	}
	defer st.Close()
	if h.SectorSize == 0 {
		h.SectorSize = sector
	}
	if h.Version == 0 {
		h.Version = Version
	}
	if h.MinorVersion == 0 {
		h.MinorVersion = MinorVer
	}
	if h.Slots == 0 {
		h.Slots = MaxSlots
	}
	if h.UUID == ([16]byte{}) {
		h.UUID = uuid.New()
	}
	hb, err := h.Marshal()
	if err != nil {
		return err
	}
	// Slots and mailboxes first, header last: a half-made device has no
	// valid header.
	zero := make([]byte, int(h.Size())-h.SectorSize)
	if err := writeAligned(st, int64(h.SectorSize), zero); err != nil {
		return fmt.Errorf("sbd: %s: initializing slots: %w", path, err)
	}
	if err := writeAligned(st, 0, hb); err != nil {
		return fmt.Errorf("sbd: %s: writing header: %w", path, err)
	}
	return nil
}

func (d *Disk) readEntry(off int64) (byte, string, error) {
	b, err := readAligned(d.st, off, d.h.SectorSize)
	if err != nil {
		return 0, "", fmt.Errorf("sbd: %s: %w", d.Name, err)
	}
	return parseEntry(b)
}

// Slot reads slot s.
func (d *Disk) Slot(s int) (Slot, error) {
	if s < 0 || s >= d.h.Slots {
		return Slot{}, fmt.Errorf("sbd: %s: slot %d out of range", d.Name, s)
	}
	inUse, name, err := d.readEntry(d.h.slotOffset(s))
	if err != nil {
		return Slot{}, err
	}
	return Slot{Index: s, InUse: inUse != 0, Name: name}, nil
}

// Slots returns the allocated slots in order.
func (d *Disk) Slots() ([]Slot, error) {
	var out []Slot
	for s := 0; s < d.h.Slots; s++ {
		sl, err := d.Slot(s)
		if err != nil {
			return nil, err
		}
		if sl.InUse {
			out = append(out, sl)
		}
	}
	return out, nil
}

// FindSlot returns the slot allocated to node.
func (d *Disk) FindSlot(node string) (int, error) {
	slots, err := d.Slots()
	if err != nil {
		return 0, err
	}
	for _, s := range slots {
		if s.Name == node {
			return s.Index, nil
		}
	}
	return 0, fmt.Errorf("sbd: %s: node %q: %w", d.Name, node, ErrNoSlot)
}

// Allocate returns node's slot, taking the first free one if it has none.
// The write is read back: another node allocating the same slot at once
// makes us move on, as sbd does.
func (d *Disk) Allocate(node string) (int, error) {
	if node == "" {
		return 0, fmt.Errorf("sbd: %s: empty node name", d.Name)
	}
	if s, err := d.FindSlot(node); err == nil || !errors.Is(err, ErrNoSlot) {
		return s, err
	}
	for s := 0; s < d.h.Slots; s++ {
		sl, err := d.Slot(s)
		if err != nil {
			return 0, err
		}
		if sl.InUse {
			continue
		}
		b, err := marshalEntry(d.h.SectorSize, 1, node)
		if err != nil {
			return 0, err
		}
		if err := writeAligned(d.st, d.h.slotOffset(s), b); err != nil {
			return 0, fmt.Errorf("sbd: %s: allocating slot %d: %w", d.Name, s, err)
		}
		if got, err := d.Slot(s); err == nil && got.Name == node {
			return s, nil
		}
	}
	return 0, fmt.Errorf("sbd: %s: no free slot for node %q", d.Name, node)
}

// Mailbox reads slot s's mailbox.
func (d *Disk) Mailbox(s int) (Mailbox, error) {
	if s < 0 || s >= d.h.Slots {
		return Mailbox{}, fmt.Errorf("sbd: %s: slot %d out of range", d.Name, s)
	}
	m, from, err := d.readEntry(d.h.mboxOffset(s))
	if err != nil {
		return Mailbox{}, err
	}
	return Mailbox{Msg: Message(m), From: from}, nil
}

// WriteMailbox writes slot s's mailbox.
func (d *Disk) WriteMailbox(s int, m Mailbox) error {
	if s < 0 || s >= d.h.Slots {
		return fmt.Errorf("sbd: %s: slot %d out of range", d.Name, s)
	}
	b, err := marshalEntry(d.h.SectorSize, byte(m.Msg), m.From)
	if err != nil {
		return err
	}
	if err := writeAligned(d.st, d.h.mboxOffset(s), b); err != nil {
		return fmt.Errorf("sbd: %s: writing mailbox %d: %w", d.Name, s, err)
	}
	return nil
}

// Message writes msg from sender into node's mailbox. Delivery is only
// certain after the header's msgwait, which the caller waits (see Send).
func (d *Disk) Message(node string, msg Message, from string) error {
	s, err := d.FindSlot(node)
	if err != nil {
		return err
	}
	return d.WriteMailbox(s, Mailbox{Msg: msg, From: from})
}

// Send writes msg to node on every disk, then waits the longest msgwait,
// after which a node that did not see its pill has been reset by its
// watchdog. It fails unless a majority of disks took the message.
func Send(ctx context.Context, disks []*Disk, node string, msg Message, from string) error {
	var errs []error
	var wait time.Duration
	for _, d := range disks {
		if err := d.Message(node, msg, from); err != nil {
			errs = append(errs, err)
			continue
		}
		wait = max(wait, d.h.MsgWait)
	}
	if ok := len(disks) - len(errs); ok*2 <= len(disks) {
		return fmt.Errorf("sbd: message %s to %q reached %d of %d disks: %w", msg, node, ok, len(disks), errors.Join(errs...))
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sbd: waiting msgwait %v for %q: %w", wait, node, ctx.Err())
	}
}
