package fenceproto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/concord-ha/concord/lib/sys/version"
)

// PowerState is a target's power state.
type PowerState int

// Power states.
const (
	StateUnknown PowerState = iota
	StateOn
	StateOff
)

func (s PowerState) String() string {
	switch s {
	case StateOn:
		return "ON"
	case StateOff:
		return "OFF"
	}
	return "UNKNOWN"
}

// Plug is one outlet, machine or port a device can switch.
type Plug struct {
	ID, Alias string
	State     PowerState
}

// Device is an opened fencing device. Errors should wrap this package's
// sentinels (ErrLoginDenied, ErrConnection, ErrTimeout, ...) so the right
// exit code comes out.
type Device interface {
	Status(ctx context.Context) (PowerState, error)
	On(ctx context.Context) error
	Off(ctx context.Context) error
	Close() error
}

// Rebooter is implemented by devices with a hardware reboot (method=cycle).
type Rebooter interface {
	Reboot(ctx context.Context) error
}

// Lister is implemented by devices with several plugs (list, list-status).
type Lister interface {
	List(ctx context.Context) ([]Plug, error)
}

// Monitorer is implemented by devices with their own reachability check.
type Monitorer interface {
	Monitor(ctx context.Context) error
}

// Agent describes a fence agent; Main and Run implement the protocol for it.
type Agent struct {
	Name, ShortDesc, LongDesc, VendorURL string
	Params                               []Param  // agent-specific
	Common                               []string // standard params it uses ("ip", "password", "plug", ...)
	Fabric                               bool     // fabric fencing: no reboot, default off, on = unfence
	Unfence                              bool     // on action has on_target="1" automatic="1"
	NoPowerCheck                         bool     // status cannot be read back after acting
	Open                                 func(ctx context.Context, o *Options) (Device, error)
	// Check, if set, checks the options an agent needs beyond Required
	// ones (conditional or alternative parameters, value syntax) without
	// contacting the device or running anything. validate-all runs it,
	// and every other action runs it before Open, so validate-all accepts
	// what the actions accept. Errors should wrap ErrBadArgs.
	Check func(o *Options) error
}

// Main runs the agent as a process: os.Args, stdin, stdout, stderr, exit.
// Secret values given on the command line are blanked in the process's
// argv memory, so they vanish from /proc/PID/cmdline.
func Main(a *Agent) {
	args := make([]string, len(os.Args)-1)
	for i, s := range os.Args[1:] {
		args[i] = strings.Clone(s)
	}
	if ps, err := buildParams(a); err == nil {
		secrets, _ := parseArgv(ps, args, newOptions(ps.byName, newRedactor()))
		for _, s := range secrets {
			blank(os.Args[1+s.index], s.offset)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := Run(ctx, a, args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// blank overwrites s[off:] in place; s must point at the process's argv.
func blank(s string, off int) {
	if off < 0 || off >= len(s) {
		return
	}
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	for i := off; i < len(b); i++ {
		b[i] = 'x'
	}
}

// Run is the testable core of Main: it parses args (or stdin when args is
// empty), performs the action and returns the exit code.
func Run(ctx context.Context, a *Agent, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// Only stderr is redacted: stdout carries fixed protocol lines, which a
	// short password would otherwise mangle ("Success: [set]owered OFF").
	red := newRedactor()
	out := stdout
	errw := &redactWriter{w: stderr, r: red}
	ps, err := buildParams(a)
	if err != nil {
		fmt.Fprintf(errw, "ERROR: %v\n", err)
		return ExitGeneric
	}
	o := newOptions(ps.byName, red)
	quiet := false
	warnf := func(format string, args ...any) {
		if !quiet {
			fmt.Fprintf(errw, "WARNING: "+format+"\n", args...)
		}
	}
	o.log = func(format string, args ...any) {
		fmt.Fprintf(errw, "%s %s: %s\n", time.Now().Format("2006-01-02 15:04:05.000"), a.Name, fmt.Sprintf(format, args...))
	}
	if len(args) == 0 {
		err = parseStdin(ps, stdin, o, warnf)
	} else {
		_, err = parseArgv(ps, args, o)
	}
	quiet = o.Bool("quiet")
	if err != nil {
		fmt.Fprintf(errw, "ERROR: %v\nPlease use '-h' for usage\n", err)
		return ExitBadArgs
	}
	if o.Bool("help") {
		usage(out, a, ps)
		return ExitOK
	}
	if o.Bool("version") {
		fmt.Fprintln(out, version.String())
		return ExitOK
	}
	if f := o.Get("debug_file"); f != "" {
		df, err := os.OpenFile(f, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			fmt.Fprintf(errw, "ERROR: debug_file: %v\n", err)
			return ExitBadArgs
		}
		defer df.Close()
		o.verbose = max(o.verbose, 1)
		o.log = func(format string, args ...any) {
			line := fmt.Sprintf("%s %s: %s\n", time.Now().Format("2006-01-02 15:04:05.000"), a.Name, fmt.Sprintf(format, args...))
			io.WriteString(&redactWriter{w: df, r: red}, line)
			if !quiet {
				io.WriteString(errw, line)
			}
		}
	}
	action := strings.ToLower(o.Get("action"))
	if a.Fabric {
		switch action {
		case "enable":
			action = "on"
		case "disable":
			action = "off"
		}
	}
	switch action {
	case "metadata":
		writeMetadata(out, a, ps)
		return ExitOK
	case "manpage":
		writeManpage(out, a, ps)
		return ExitOK
	}
	valid := map[string]bool{"on": true, "off": true, "status": true, "monitor": true, "list": true,
		"list-status": true, "validate-all": true, "reboot": !a.Fabric}
	if !valid[action] {
		fmt.Fprintf(errw, "ERROR: Failed: Unrecognised action '%s'\n", o.Get("action"))
		return ExitBadArgs
	}
	code, err := ExitBadArgs, validate(ps, o, true)
	if err == nil && a.Check != nil {
		err = a.Check(o)
		code = ExitCode(err)
	}
	if action == "validate-all" {
		// As fencing.py: a configuration that would fail exits 1.
		if err != nil {
			fmt.Fprintf(errw, "ERROR: %s\nERROR: validate-all failed\n", errText(err))
			return ExitGeneric
		}
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(errw, "ERROR: %s\n", errText(err))
		return code
	}
	o.Logf("action %s", action)
	r := &runner{a: a, o: o, out: out, errw: errw}
	code, err = r.run(ctx, action)
	if err != nil && !quiet {
		fmt.Fprintf(errw, "ERROR: %s\n", errText(err))
	}
	return code
}

// errText is err's message, led by its protocol class's when it lacks it.
func errText(err error) string {
	msg := err.Error()
	var pe *Error
	if errors.As(err, &pe) && !strings.Contains(msg, pe.Msg) {
		msg = pe.Msg + ": " + msg
	}
	return msg
}

type runner struct {
	a         *Agent
	o         *Options
	out, errw io.Writer
	dev       Device
}

func (r *runner) run(ctx context.Context, action string) (int, error) {
	if action == "off" || action == "reboot" {
		if d := r.o.Duration("delay"); d > 0 {
			r.o.Logf("delay %v", d)
			if err := sleep(ctx, d); err != nil {
				return ExitGeneric, err
			}
		}
	}
	octx, cancel := context.WithTimeout(ctx, r.o.timeoutOr("login_timeout", 5*time.Second))
	dev, err := r.a.Open(octx, r.o)
	cancel()
	if err != nil {
		return ExitCode(err), err
	}
	r.dev = dev
	defer dev.Close()
	switch action {
	case "status":
		st, err := r.status(ctx)
		if err != nil {
			return ExitCode(err), err
		}
		if st == StateUnknown {
			return ExitStatus, ErrStatus
		}
		fmt.Fprintf(r.out, "Status: %s\n", st)
		if st == StateOff {
			return ExitBadArgs, nil
		}
		return ExitOK, nil
	case "monitor":
		c, cancel := r.opCtx(ctx)
		defer cancel()
		if m, ok := dev.(Monitorer); ok {
			err = m.Monitor(c)
		} else if l, ok := dev.(Lister); ok {
			_, err = l.List(c)
		} else {
			_, err = r.status(ctx)
		}
		return ExitCode(err), err
	case "list", "list-status":
		l, ok := dev.(Lister)
		if !ok {
			fmt.Fprintln(r.out, "N/A")
			return ExitOK, nil
		}
		c, cancel := r.opCtx(ctx)
		defer cancel()
		plugs, err := l.List(c)
		if err != nil {
			return ExitCode(err), err
		}
		for _, p := range plugs {
			if action == "list" {
				fmt.Fprintf(r.out, "%s,%s\n", p.ID, p.Alias)
			} else {
				fmt.Fprintf(r.out, "%s,%s,%s\n", p.ID, p.Alias, p.State)
			}
		}
		return ExitOK, nil
	}
	return r.power(ctx, action)
}

func (r *runner) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.o.timeoutOr("power_timeout", 20*time.Second))
}

func (r *runner) status(ctx context.Context) (PowerState, error) {
	c, cancel := context.WithTimeout(ctx, r.o.timeoutOr("power_timeout", 20*time.Second))
	defer cancel()
	return r.dev.Status(c)
}

// power performs on, off or reboot, verifying the state afterwards.
func (r *runner) power(ctx context.Context, action string) (int, error) {
	st := StateUnknown
	if !r.a.NoPowerCheck {
		var err error
		st, err = r.status(ctx)
		if err != nil {
			return ExitCode(err), err
		}
		if st == StateUnknown {
			return ExitStatus, ErrStatus
		}
		if (action == "on" && st == StateOn) || (action == "off" && st == StateOff) {
			fmt.Fprintf(r.out, "Success: Already %s\n", st)
			return ExitOK, nil
		}
	}
	switch action {
	case "on":
		if err := r.set(ctx, StateOn); err != nil {
			return ExitCode(err), err
		}
		fmt.Fprintln(r.out, "Success: Powered ON")
	case "off":
		if err := r.set(ctx, StateOff); err != nil {
			return ExitCode(err), err
		}
		fmt.Fprintln(r.out, "Success: Powered OFF")
	case "reboot":
		if rb, ok := r.dev.(Rebooter); ok && r.o.Get("method") == "cycle" {
			c, cancel := context.WithTimeout(ctx, r.o.timeoutOr("power_timeout", 20*time.Second))
			err := rb.Reboot(c)
			cancel()
			if err == nil {
				err = r.verify(ctx, StateOn)
			}
			if err != nil {
				return ExitCode(err), err
			}
		} else {
			if st != StateOff {
				if err := r.set(ctx, StateOff); err != nil {
					return ExitCode(err), err
				}
			}
			// The target is fenced once off; a failed on is only reported.
			if err := r.set(ctx, StateOn); err != nil {
				fmt.Fprintf(r.errw, "ERROR: Timed out waiting to power ON: %v\n", err)
			}
		}
		fmt.Fprintln(r.out, "Success: Rebooted")
	}
	return ExitOK, nil
}

// set switches the target and waits until Status reports want.
func (r *runner) set(ctx context.Context, want PowerState) error {
	c, cancel := context.WithTimeout(ctx, r.o.timeoutOr("power_timeout", 20*time.Second))
	var err error
	if want == StateOn {
		err = r.dev.On(c)
	} else {
		err = r.dev.Off(c)
	}
	cancel()
	if err != nil {
		return err
	}
	if r.a.NoPowerCheck {
		return nil
	}
	return r.verify(ctx, want)
}

// verify polls Status every stonith_status_sleep until it reports want,
// for at most power_timeout after power_wait.
func (r *runner) verify(ctx context.Context, want PowerState) error {
	if err := sleep(ctx, r.o.Duration("power_wait")); err != nil {
		return err
	}
	fail := ErrWaitingOff
	if want == StateOn {
		fail = ErrWaitingOn
	}
	deadline, cancel := context.WithTimeout(ctx, r.o.timeoutOr("power_timeout", 20*time.Second))
	defer cancel()
	interval := r.o.timeoutOr("stonith_status_sleep", 50*time.Millisecond)
	var last error
	for {
		st, err := r.dev.Status(deadline)
		if err == nil && st == want {
			return nil
		}
		if err != nil {
			last = err
			r.o.Logf("status while waiting: %v", err)
		}
		if sleep(deadline, interval) != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if last != nil {
				return fmt.Errorf("%w (last status error: %v)", fail, last)
			}
			return fail
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
