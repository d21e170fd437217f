// Package fencesbd proves lib/sbd and fence_concord_sbd against Debian's
// sbd on a loop device: each reads what the other writes.
package fencesbd
