// Package fakewdt is a stand-in Linux watchdog for tests: a FUSE file that
// answers the WDIOC ioctls, writes and magic close, counts keep-alives and
// records when it would have reset the machine (it only sets a flag).
package fakewdt
