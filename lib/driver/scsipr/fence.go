package scsipr

import (
	"context"
	"errors"
	"fmt"
)

// Fencer runs the fence_scsi method on a set of devices: every live node
// registers its key, one registrant holds Write Exclusive - Registrants
// Only, and fencing removes the victim's key so its writes conflict.
//
// The Device transports are this node's I_T nexus on each device.
type Fencer struct {
	Devices []*Device
	APTPL   bool // persist registrations through target power loss
	Logf    func(format string, args ...any)
	// Warnf, if set, receives the degraded cases an admin should see
	// (PREEMPT instead of PREEMPT AND ABORT, a lost registration); Logf
	// gets them otherwise.
	Warnf func(format string, args ...any)
}

func (f *Fencer) logf(format string, args ...any) {
	if f.Logf != nil {
		f.Logf(format, args...)
	}
}

func (f *Fencer) warnf(format string, args ...any) {
	if f.Warnf != nil {
		f.Warnf(format, args...)
		return
	}
	f.logf(format, args...)
}

// ErrSelfFence: the key to remove is our own.
var ErrSelfFence = errors.New("scsipr: keys cannot be the same: a node cannot fence itself")

// Unfence registers key on every device and makes sure a WERO reservation
// exists ("on"). Registering again with the same key is harmless, so it is
// idempotent; it also repairs a registration a target dropped with a lost
// session (tgtd).
func (f *Fencer) Unfence(ctx context.Context, key uint64) error {
	var errs []error
	for _, d := range f.Devices {
		if err := f.unfence(ctx, d, key); err != nil {
			errs = append(errs, err)
		}
	}
	return joinErrs("unfence", len(f.Devices), errs)
}

func (f *Fencer) unfence(ctx context.Context, d *Device, key uint64) error {
	registered, err := f.nexusRegistered(ctx, d, key)
	if err != nil {
		return err
	}
	if !registered {
		if err := f.register(ctx, d, key); err != nil {
			return err
		}
	}
	keys, err := d.ReadKeys(ctx)
	if err != nil {
		return err
	}
	if !keys.Has(key) {
		return fmt.Errorf("device %s: key 0x%s not registered after REGISTER", d.Name, FormatKey(key))
	}
	return f.ensureReservation(ctx, d, key)
}

// nexusRegistered tells whether this I_T nexus is registered with key.
// READ KEYS lists keys, not nexuses (several nexuses may share a key), and
// registering again is not safe everywhere: istgt 0.4 writes a
// re-registration into another initiator's entry. So a listed key is
// confirmed with commands that change nothing: RESERVE of the held type
// succeeds only for the holder, and RELEASE from a registered non-holder
// has no effect, while an unregistered nexus gets RESERVATION CONFLICT.
func (f *Fencer) nexusRegistered(ctx context.Context, d *Device, key uint64) (bool, error) {
	keys, err := d.ReadKeys(ctx)
	if err != nil || !keys.Has(key) {
		return false, err
	}
	r, err := d.ReadReservation(ctx)
	if err != nil {
		return false, err
	}
	if r.Held && r.Key == key {
		// Possibly ours: never RELEASE it, that would let fenced nodes write.
		err := d.Out(ctx, Reserve, r.Type, key, 0, false)
		if err == nil {
			return true, nil
		}
		if !IsReservationConflict(err) {
			return false, err
		}
	}
	err = d.Out(ctx, Release, WriteExclusiveRegistrantsOnly, key, 0, false)
	switch {
	case err == nil:
		return true, nil
	case IsReservationConflict(err):
		return false, nil
	case IsSenseKey(err, SenseIllegalRequest):
		// istgt 0.4 answers a registered non-holder's RELEASE with
		// INVALID RELEASE OF PERSISTENT RESERVATION; it checks the
		// registration first, as SPC does, so the nexus is registered.
		return true, nil
	}
	return false, err
}

func (f *Fencer) register(ctx context.Context, d *Device, key uint64) error {
	if err := d.Out(ctx, RegisterAndIgnoreKey, 0, 0, key, f.APTPL); err != nil {
		return err
	}
	f.logf("device %s: registered key 0x%s", d.Name, FormatKey(key))
	return nil
}

// asRegistrant runs a PR OUT that needs this nexus registered with key. A
// RESERVATION CONFLICT means the registration is gone (tgtd drops it with
// the session that made it): register again and retry once.
func (f *Fencer) asRegistrant(ctx context.Context, d *Device, key uint64, op func() error) error {
	err := op()
	if !IsReservationConflict(err) {
		return err
	}
	f.warnf("%v; this nexus is not registered, registering key 0x%s again", err, FormatKey(key))
	if err := f.register(ctx, d, key); err != nil {
		return err
	}
	return op()
}

// ensureReservation creates the WERO reservation if nobody holds one.
func (f *Fencer) ensureReservation(ctx context.Context, d *Device, key uint64) error {
	r, err := d.ReadReservation(ctx)
	if err != nil {
		return err
	}
	if r.Held {
		return nil
	}
	err = f.asRegistrant(ctx, d, key, func() error {
		err := d.Out(ctx, Reserve, WriteExclusiveRegistrantsOnly, key, 0, false)
		if IsReservationConflict(err) {
			// Another node may have reserved first, which is as good.
			if r, rerr := d.ReadReservation(ctx); rerr == nil && r.Held {
				return nil
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	if r, err = d.ReadReservation(ctx); err != nil {
		return err
	}
	if !r.Held {
		return fmt.Errorf("device %s: no reservation after RESERVE", d.Name)
	}
	f.logf("device %s: reservation Write Exclusive - Registrants Only held by key 0x%s", d.Name, FormatKey(r.Key))
	return nil
}

// Fence removes victim's registration from every device ("off"), acting as
// the registrant own. It sends PREEMPT AND ABORT, and PREEMPT where the
// target refuses that (tgtd): the key is removed just the same, only the
// victim's queued commands are not aborted. Fencing a key that is already
// gone succeeds.
func (f *Fencer) Fence(ctx context.Context, own, victim uint64) error {
	if own == victim {
		return ErrSelfFence
	}
	var errs []error
	for _, d := range f.Devices {
		if err := f.fence(ctx, d, own, victim); err != nil {
			errs = append(errs, err)
		}
	}
	return joinErrs("fence", len(f.Devices), errs)
}

func (f *Fencer) fence(ctx context.Context, d *Device, own, victim uint64) error {
	keys, err := d.ReadKeys(ctx)
	if err != nil {
		return err
	}
	if keys.Has(victim) {
		err := f.asRegistrant(ctx, d, own, func() error {
			err := d.Out(ctx, PreemptAndAbort, WriteExclusiveRegistrantsOnly, own, victim, false)
			if IsSenseKey(err, SenseIllegalRequest) {
				f.warnf("%v; falling back to PREEMPT (the target cannot abort the victim's queued commands)", err)
				err = d.Out(ctx, Preempt, WriteExclusiveRegistrantsOnly, own, victim, false)
			}
			return err
		})
		if err != nil {
			return err
		}
		f.logf("device %s: removed key 0x%s", d.Name, FormatKey(victim))
	}
	// Without a reservation an unregistered node can still write.
	if err := f.ensureReservation(ctx, d, own); err != nil {
		return err
	}
	if keys, err = d.ReadKeys(ctx); err != nil {
		return err
	}
	if keys.Has(victim) {
		return fmt.Errorf("device %s: key 0x%s still registered after PREEMPT", d.Name, FormatKey(victim))
	}
	return nil
}

// Registered reports whether key is registered on any device: a node
// counts as fenced (off) only when no device lists its key.
func (f *Fencer) Registered(ctx context.Context, key uint64) (bool, error) {
	var errs []error
	on := false
	for _, d := range f.Devices {
		keys, err := d.ReadKeys(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if keys.Has(key) {
			on = true
		}
	}
	if on {
		return true, nil
	}
	return false, joinErrs("status", len(f.Devices), errs)
}

// NexusRegistered reports whether this node's own I_T nexus is registered
// with key on every device: the state unfencing must reach. Registered
// instead asks whether anyone holds the key.
func (f *Fencer) NexusRegistered(ctx context.Context, key uint64) (bool, error) {
	for _, d := range f.Devices {
		ok, err := f.nexusRegistered(ctx, d, key)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func joinErrs(op string, n int, errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return fmt.Errorf("%s failed on %d of %d devices: %w", op, len(errs), n, errors.Join(errs...))
}
