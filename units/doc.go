// Package units holds Concord's systemd units and D-Bus policy (installed
// by packaging/build-deb.sh); its tests check them with systemd and dbus.
package units
