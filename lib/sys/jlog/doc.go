// Package jlog is a log/slog handler that writes to the systemd journal with
// one field per attribute (NODE=, VIEW=, REASON=), and to stderr elsewhere.
package jlog
