// Package quorum is votequorum-style vote arithmetic: expected votes,
// two_node, wait_for_all, last_man_standing and tie_breaker, as a pure
// state machine fed with views and ticks.
package quorum
