// Package libconcord holds libconcord, the C client library of Concord's
// process groups (include/concord/group.h, src/), its Makefile, its
// pkg-config template and its example; the Go here is only its tests,
// which build the library and drive it against a fake daemon that speaks
// lib/api/groupwire.
package libconcord
