// Package core holds nothing itself; its subpackages are Concord's protocol
// cores: pure state machines driven by messages and ticks, with no sockets,
// clocks, goroutines or D-Bus inside, so that simulation can replay them
// deterministically. core_test.go enforces that for every package below.
package core
