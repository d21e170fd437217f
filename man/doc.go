// Package man holds Concord's manual pages (groff, man macros). It has no
// code; its tests lint every page with groff and mandoc and check that
// each program's options and its page agree: concordctl's usage text and
// concordctl(8), concord-noded's flags and concord-noded(8), each fence
// agent's metadata and the page it generates (make build writes those
// pages here as fence_concord_*.8), and libconcord's header
// concord/group.h and its section-3 pages.
package man
