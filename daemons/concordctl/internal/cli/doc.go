// Package ctl is concordctl: the command-line client of concord-noded's
// D-Bus API, plus keygen.
package cli
