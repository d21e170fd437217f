package confstore

import "fmt"

// raftLogger adapts Logger to raft's logger interface. Raft's info lines
// (elections, pre-votes, term changes) are its internals: they go to
// debug, and the daemon logs leader changes in its own words.
type raftLogger struct{ l Logger }

func (r raftLogger) Debug(v ...any)                   { r.l.Debugf("raft: %s", fmt.Sprint(v...)) }
func (r raftLogger) Debugf(format string, v ...any)   { r.l.Debugf("raft: "+format, v...) }
func (r raftLogger) Info(v ...any)                    { r.l.Debugf("raft: %s", fmt.Sprint(v...)) }
func (r raftLogger) Infof(format string, v ...any)    { r.l.Debugf("raft: "+format, v...) }
func (r raftLogger) Warning(v ...any)                 { r.l.Warnf("raft: %s", fmt.Sprint(v...)) }
func (r raftLogger) Warningf(format string, v ...any) { r.l.Warnf("raft: "+format, v...) }
func (r raftLogger) Error(v ...any)                   { r.l.Warnf("raft: error: %s", fmt.Sprint(v...)) }
func (r raftLogger) Errorf(format string, v ...any)   { r.l.Warnf("raft: error: "+format, v...) }
func (r raftLogger) Fatal(v ...any)                   { r.Panic(v...) }
func (r raftLogger) Fatalf(format string, v ...any)   { r.Panicf(format, v...) }

// Panic is raft's report of a broken invariant (or, from Step, an
// impossible message, which Step recovers into an error).
func (r raftLogger) Panic(v ...any) {
	msg := fmt.Sprint(v...)
	r.l.Warnf("raft: panic: %s", msg)
	panic(msg)
}

func (r raftLogger) Panicf(format string, v ...any) { r.Panic(fmt.Sprintf(format, v...)) }

type nopLogger struct{}

func (nopLogger) Debugf(string, ...any) {}
func (nopLogger) Infof(string, ...any)  {}
func (nopLogger) Warnf(string, ...any)  {}
