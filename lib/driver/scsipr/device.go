package scsipr

import (
	"context"
	"fmt"
)

// Transport sends one SCSI command. err reports transport failures only; a
// completed command returns its status and sense data.
type Transport interface {
	Do(ctx context.Context, cdb []byte, dataOut []byte, dataInLen int) (dataIn []byte, status byte, sense []byte, err error)
}

// Device runs persistent reservation commands on one logical unit.
type Device struct {
	Name string // for errors and logs, e.g. "/dev/sdb" or an iSCSI URL
	T    Transport
	// Logf, if set, receives unit attentions that were retried.
	Logf func(format string, args ...any)
}

// unitAttentionRetries bounds retries of a command that drew a unit
// attention: the command was not executed, and each attention is reported
// once per I_T nexus, so a few retries drain them.
const unitAttentionRetries = 4

// run sends a command, retrying after unit attentions (what fence_scsi gets
// by calling sg_turs first). Errors name the device.
func (d *Device) run(ctx context.Context, name string, cdb, out []byte, inLen int) ([]byte, error) {
	for i := 0; ; i++ {
		in, st, sense, err := d.T.Do(ctx, cdb, out, inLen)
		if err != nil {
			return nil, fmt.Errorf("device %s: %s: %w", d.Name, name, err)
		}
		err = checkStatus(name, st, sense)
		if err == nil {
			return in, nil
		}
		if IsSenseKey(err, SenseUnitAttention) && i < unitAttentionRetries {
			if d.Logf != nil {
				d.Logf("device %s: %v; retrying", d.Name, err)
			}
			continue
		}
		return nil, fmt.Errorf("device %s: %w", d.Name, err)
	}
}

// ReadKeys returns the registered keys, growing the buffer when truncated.
func (d *Device) ReadKeys(ctx context.Context) (Keys, error) {
	alloc := uint16(defaultAlloc)
	for {
		in, err := d.run(ctx, "PERSISTENT RESERVE IN (READ KEYS)", PRInCDB(ReadKeys, alloc), nil, int(alloc))
		if err != nil {
			return Keys{}, err
		}
		k, err := ParseReadKeys(in)
		if err != nil {
			return Keys{}, fmt.Errorf("device %s: %w", d.Name, err)
		}
		if !k.Truncated || alloc == maxAllocLen {
			return k, nil
		}
		alloc = maxAllocLen
	}
}

// ReadReservation returns the current reservation, if any.
func (d *Device) ReadReservation(ctx context.Context) (Reservation, error) {
	in, err := d.run(ctx, "PERSISTENT RESERVE IN (READ RESERVATION)", PRInCDB(ReadReservation, defaultAlloc), nil, defaultAlloc)
	if err != nil {
		return Reservation{}, err
	}
	r, err := ParseReadReservation(in)
	if err != nil {
		return Reservation{}, fmt.Errorf("device %s: %w", d.Name, err)
	}
	return r, nil
}

// Out sends one PERSISTENT RESERVE OUT command.
func (d *Device) Out(ctx context.Context, a OutAction, t Type, key, saKey uint64, aptpl bool) error {
	_, err := d.run(ctx, "PERSISTENT RESERVE OUT ("+a.String()+")", PROutCDB(a, t), PROutParams(key, saKey, aptpl), 0)
	return err
}

// TestUnitReady sends TEST UNIT READY.
func (d *Device) TestUnitReady(ctx context.Context) error {
	_, err := d.run(ctx, "TEST UNIT READY", TestUnitReadyCDB(), nil, 0)
	return err
}

// Write10 writes data (a whole number of blocks of blockSize) at lba.
// Unit attentions are not retried here: tests want to see them.
func (d *Device) Write10(ctx context.Context, lba uint32, data []byte, blockSize int) error {
	if blockSize <= 0 || len(data) == 0 || len(data)%blockSize != 0 {
		return fmt.Errorf("device %s: WRITE(10) of %d bytes is not whole %d-byte blocks", d.Name, len(data), blockSize)
	}
	_, st, sense, err := d.T.Do(ctx, Write10CDB(lba, uint16(len(data)/blockSize)), data, 0)
	if err != nil {
		return fmt.Errorf("device %s: WRITE(10): %w", d.Name, err)
	}
	if err := checkStatus("WRITE(10)", st, sense); err != nil {
		return fmt.Errorf("device %s: %w", d.Name, err)
	}
	return nil
}

// Read10 reads blocks blocks of blockSize at lba.
func (d *Device) Read10(ctx context.Context, lba uint32, blocks uint16, blockSize int) ([]byte, error) {
	return d.run(ctx, "READ(10)", Read10CDB(lba, blocks), nil, int(blocks)*blockSize)
}
