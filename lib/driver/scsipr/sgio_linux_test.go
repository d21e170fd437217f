//go:build linux

package scsipr

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestSGRequestMarshal(t *testing.T) {
	tests := []struct {
		name    string
		cdb     []byte
		out     []byte
		inLen   int
		wantDir int32
		wantLen uint32
	}{
		{"none", TestUnitReadyCDB(), nil, 0, sgDxferNone, 0},
		{"to device", PROutCDB(Register, 0), PROutParams(0, 1, false), 0, sgDxferToDev, 24},
		{"from device", PRInCDB(ReadKeys, 8192), nil, 8192, sgDxferFromDev, 8192},
	}
	for _, tt := range tests {
		r, err := newSGRequest(tt.cdb, tt.out, tt.inLen, 96, 1500*time.Millisecond)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		h := r.marshal(0x1111, 0x2222, 0x3333)
		ne := binary.NativeEndian
		checks := []struct {
			field     string
			got, want uint64
		}{
			{"interface_id", uint64(ne.Uint32(h[0:])), 'S'},
			{"dxfer_direction", uint64(ne.Uint32(h[4:])), uint64(uint32(tt.wantDir))},
			{"cmd_len", uint64(h[8]), uint64(len(tt.cdb))},
			{"mx_sb_len", uint64(h[9]), 96},
			{"dxfer_len", uint64(ne.Uint32(h[12:])), uint64(tt.wantLen)},
			{"dxferp", ne.Uint64(h[16:]), 0x1111},
			{"cmdp", ne.Uint64(h[24:]), 0x2222},
			{"sbp", ne.Uint64(h[32:]), 0x3333},
			{"timeout", uint64(ne.Uint32(h[40:])), 1500},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s: %s = %#x, want %#x", tt.name, c.field, c.got, c.want)
			}
		}
	}
	if _, err := newSGRequest(make([]byte, 17), nil, 0, 96, time.Second); err == nil {
		t.Error("17-byte CDB accepted")
	}
	if _, err := newSGRequest(make([]byte, 10), []byte{1}, 8, 96, time.Second); err == nil {
		t.Error("bidirectional accepted")
	}
}

func TestSGResult(t *testing.T) {
	var h [sgIOHdrLen]byte
	h[64] = StatusReservationConflict
	h[67] = 18
	binary.NativeEndian.PutUint16(h[70:], 0x08) // DRIVER_SENSE
	binary.NativeEndian.PutUint32(h[72:], 100)
	r := parseSGResult(h[:])
	if r.status != StatusReservationConflict || r.senseLen != 18 || r.resid != 100 || r.check() != nil {
		t.Errorf("got %+v, check %v", r, r.check())
	}
	binary.NativeEndian.PutUint16(h[68:], 0x0e)
	if err := parseSGResult(h[:]).check(); err == nil || !strings.Contains(err.Error(), "transport disrupted") {
		t.Errorf("host status: %v", err)
	}
}

func TestOpenSGIOErrors(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SG_IO is Linux only")
	}
	// This machine has no SCSI subsystem: every real device is "not SCSI".
	_, err := OpenSGIO("/dev/null")
	if !errors.Is(err, ErrNotSCSI) || !strings.Contains(err.Error(), "device /dev/null: not a SCSI device") {
		t.Errorf("/dev/null: %v", err)
	}
	_, err = OpenSGIO("/dev/sdzz-missing")
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "device /dev/sdzz-missing") {
		t.Errorf("missing: %v", err)
	}
	f := filepath.Join(t.TempDir(), "plain")
	os.WriteFile(f, nil, 0o600)
	if _, err = OpenSGIO(f); !errors.Is(err, ErrNotSCSI) {
		t.Errorf("plain file: %v", err)
	}
	if _, err := os.Stat("/dev/loop0"); err == nil {
		if _, err = OpenSGIO("/dev/loop0"); !errors.Is(err, ErrNotSCSI) {
			t.Errorf("/dev/loop0: %v", err)
		}
	}
	if _, err := os.Stat("/dev/sg0"); err != nil {
		t.Log("no /dev/sg0 or /dev/sd*: SG_IO command path not exercised on this machine (no SCSI subsystem)")
	}
}

func TestMultipathPathsPlain(t *testing.T) {
	got, err := MultipathPaths("/dev/null")
	if err != nil || len(got) != 1 || got[0] != "/dev/null" {
		t.Errorf("got %v, %v", got, err)
	}
}
