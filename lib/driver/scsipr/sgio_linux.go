package scsipr

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl numbers from <scsi/sg.h>.
const (
	ioctlSGIO         = 0x2285
	ioctlSGGetVersion = 0x2282
	senseBufLen       = 96
)

// SGIO is a Transport over the Linux SG_IO ioctl on a block or sg device
// (/dev/sdX, /dev/sgN, or a dm-multipath device, which passes SG_IO to its
// current path).
type SGIO struct {
	f       *os.File
	name    string
	Timeout time.Duration // per command; default 30 s
}

// ErrNotSCSI: the device does not take SCSI commands.
var ErrNotSCSI = errors.New("not a SCSI device")

// OpenSGIO opens dev and checks that it answers SG_IO.
func OpenSGIO(dev string) (*SGIO, error) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		return nil, fmt.Errorf("device %s: SG_IO is implemented for 64-bit Linux only", dev)
	}
	fi, err := os.Stat(dev)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", dev, err)
	}
	if fi.Mode()&os.ModeDevice == 0 {
		return nil, fmt.Errorf("device %s: %w (not a device node)", dev, ErrNotSCSI)
	}
	// O_NONBLOCK as sg_persist does: opening must not wait for a busy unit.
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", dev, err)
	}
	var v int32
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), ioctlSGGetVersion, uintptr(unsafe.Pointer(&v))); e != 0 {
		f.Close()
		return nil, fmt.Errorf("device %s: %w (SG_GET_VERSION_NUM: %v)", dev, ErrNotSCSI, e)
	}
	return &SGIO{f: f, name: dev, Timeout: 30 * time.Second}, nil
}

// Close closes the device.
func (s *SGIO) Close() error { return s.f.Close() }

// Do implements Transport. The context's deadline, if sooner, becomes the
// command timeout; SG_IO itself cannot be interrupted.
func (s *SGIO) Do(ctx context.Context, cdb, dataOut []byte, dataInLen int) ([]byte, byte, []byte, error) {
	timeout := s.Timeout
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d < timeout {
			timeout = d
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, nil, fmt.Errorf("device %s: %w", s.name, err)
	}
	req, err := newSGRequest(cdb, dataOut, dataInLen, senseBufLen, timeout)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("device %s: %w", s.name, err)
	}
	cmd := append([]byte(nil), cdb...)
	sense := make([]byte, senseBufLen)
	var data []byte
	switch {
	case len(dataOut) > 0:
		data = append([]byte(nil), dataOut...)
	case dataInLen > 0:
		data = make([]byte, dataInLen)
	}
	var dp uintptr
	if len(data) > 0 {
		dp = uintptr(unsafe.Pointer(&data[0]))
	}
	hdr := req.marshal(dp, uintptr(unsafe.Pointer(&cmd[0])), uintptr(unsafe.Pointer(&sense[0])))
	_, _, e := unix.Syscall(unix.SYS_IOCTL, s.f.Fd(), ioctlSGIO, uintptr(unsafe.Pointer(&hdr[0])))
	runtime.KeepAlive(data)
	runtime.KeepAlive(cmd)
	runtime.KeepAlive(sense)
	if e != 0 {
		if e == unix.ENOTTY || e == unix.EINVAL {
			return nil, 0, nil, fmt.Errorf("device %s: %w (SG_IO: %v)", s.name, ErrNotSCSI, e)
		}
		return nil, 0, nil, fmt.Errorf("device %s: SG_IO: %w", s.name, e)
	}
	res := parseSGResult(hdr[:])
	if err := res.check(); err != nil {
		return nil, 0, nil, fmt.Errorf("device %s: %w", s.name, err)
	}
	if dataInLen > 0 {
		n := dataInLen - int(res.resid)
		if n < 0 || n > dataInLen {
			n = dataInLen
		}
		data = data[:n]
	} else {
		data = nil
	}
	return data, res.status, sense[:min(res.senseLen, senseBufLen)], nil
}

// MultipathPaths returns the SCSI paths under a dm-multipath device
// (/sys/block/dm-N/slaves), or dev itself when it is not a dm device.
// Each path is its own I_T nexus and needs its own registration.
func MultipathPaths(dev string) ([]string, error) {
	real, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", dev, err)
	}
	base := filepath.Base(real)
	if !strings.HasPrefix(base, "dm-") {
		return []string{dev}, nil
	}
	ents, err := os.ReadDir(filepath.Join("/sys/block", base, "slaves"))
	if err != nil {
		return nil, fmt.Errorf("device %s: listing multipath slaves: %w", dev, err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "dm-") {
			sub, err := MultipathPaths("/dev/" + e.Name())
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		out = append(out, "/dev/"+e.Name())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("device %s: dm device without slaves", dev)
	}
	return out, nil
}
