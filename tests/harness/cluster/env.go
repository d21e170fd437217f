package cluster

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Logger is where the harness reports progress; *testing.T satisfies it.
type Logger interface {
	Logf(format string, args ...any)
}

// Env is what a cluster needs from its owner: logging, cleanup registration
// and whether the run failed (to keep journals). testing.TB satisfies it;
// programs use CLIEnv.
type Env interface {
	Logger
	Cleanup(func())
	Failed() bool
}

// CLIEnv is an Env for programs such as the demo: it logs to a writer and
// runs the registered cleanups, newest first, on Close.
type CLIEnv struct {
	W io.Writer

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

// Logf writes one timestamped line.
func (e *CLIEnv) Logf(format string, args ...any) {
	fmt.Fprintf(e.W, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// Cleanup registers f to run on Close.
func (e *CLIEnv) Cleanup(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cleanups = append(e.cleanups, f)
}

// Fail marks the run failed, so Close keeps the nodes' journals.
func (e *CLIEnv) Fail() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failed = true
}

// Failed reports whether Fail was called.
func (e *CLIEnv) Failed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.failed
}

// Close runs the cleanups, newest first. It is safe to call more than once.
func (e *CLIEnv) Close() {
	for {
		e.mu.Lock()
		n := len(e.cleanups)
		if n == 0 {
			e.mu.Unlock()
			return
		}
		f := e.cleanups[n-1]
		e.cleanups = e.cleanups[:n-1]
		e.mu.Unlock()
		f()
	}
}
