#!/bin/sh
# Builds $OUT/concord.deb from the binaries `make build` put in $OUT/bin.
# Usage: VERSION=$(sh packaging/version.sh) OUT=/abs/build sh packaging/build-deb.sh
set -eu

: "${OUT:?OUT must name the build directory (absolute)}"
SRC=$(cd "$(dirname "$0")/.." && pwd)
VERSION=${VERSION:-$(sh "$SRC/packaging/version.sh")}
ARCH=${ARCH:-$(dpkg --print-architecture)}
# Who built it, the way Debian's tools are told (dch, dh_make).
MAINTAINER="${DEBFULLNAME:-Concord builders} <${DEBEMAIL:-concord@localhost}>"
case $OUT in /*) ;; *) OUT=$(pwd)/$OUT ;; esac
BIN=$OUT/bin

# The version is made once, by version.sh (the Makefile passes the same
# string to every binary); it is used here as it is.
DEBVERSION=$VERSION
dpkg --validate-version "$DEBVERSION" || { echo "build-deb: VERSION=$VERSION is not a Debian version; make it with packaging/version.sh" >&2; exit 1; }

for b in concord-noded concordctl; do
	[ -x "$BIN/$b" ] || { echo "build-deb: $BIN/$b missing; run make build first" >&2; exit 1; }
done
# libconcord, built by make libconcord (a part of make build).
LIB=$OUT/libconcord/libconcord.so.1.0.0
[ -f "$LIB" ] || { echo "build-deb: $LIB missing; run make build first" >&2; exit 1; }
MULTIARCH=$(dpkg-architecture -a"$ARCH" -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
LIBDIR=/usr/lib/$MULTIARCH

ROOT=$OUT/deb-root
rm -rf "$ROOT"
mkdir -p "$ROOT/DEBIAN"
umask 022

install -D -m 0755 "$BIN/concord-noded" "$ROOT/usr/sbin/concord-noded"
install -D -m 0755 "$BIN/concordctl" "$ROOT/usr/bin/concordctl"
for a in "$BIN"/fence_concord_*; do
	[ -e "$a" ] || continue
	install -D -m 0755 "$a" "$ROOT/usr/sbin/$(basename "$a")"
done
# Shipped without symbol tables and DWARF, as Debian policy asks; Go keeps
# the function names that panics and profiles print (pclntab) and its
# build information (go version -m).
for f in "$ROOT/usr/sbin/"* "$ROOT/usr/bin/"*; do
	if [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ]; then
		strip --strip-unneeded --remove-section=.comment --remove-section=.note "$f"
	fi
done

# The C library of process groups; its header, link and pages are
# concord-dev's.
install -D -m 0644 "$LIB" "$ROOT$LIBDIR/libconcord.so.1.0.0"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$ROOT$LIBDIR/libconcord.so.1.0.0"
ln -s libconcord.so.1.0.0 "$ROOT$LIBDIR/libconcord.so.1"
# The oldest C library it runs with: the newest GLIBC_ version it asks for.
GLIBC=$(objdump -T "$LIB" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1)

install -D -m 0644 "$SRC/units/concord-noded.service" "$ROOT/lib/systemd/system/concord-noded.service"
# One more cluster this host is a member of: concord-noded@NAME.
install -D -m 0644 "$SRC/units/concord-noded@.service" "$ROOT/lib/systemd/system/concord-noded@.service"
install -D -m 0644 "$SRC/units/org.concordha.node1.conf" "$ROOT/usr/share/dbus-1/system.d/org.concordha.node1.conf"
for x in "$SRC"/units/*.xml "$SRC"/daemons/concord-noded/*.xml "$SRC"/lib/api/nodebus/org.concordha.*.xml; do
	[ -e "$x" ] || continue
	install -D -m 0644 "$x" "$ROOT/usr/share/dbus-1/interfaces/$(basename "$x")"
done
install -D -m 0644 "$SRC/udev/70-concord-heartbeat.rules" "$ROOT/lib/udev/rules.d/70-concord-heartbeat.rules"

for m in "$SRC"/man/*.[58]; do
	[ -e "$m" ] || continue
	sec=${m##*.}
	mkdir -p "$ROOT/usr/share/man/man$sec"
	gzip -9n <"$m" >"$ROOT/usr/share/man/man$sec/$(basename "$m").gz"
done

DOC=$ROOT/usr/share/doc/concord
mkdir -p "$DOC"
for ex in "$SRC/packaging/cluster.conf.example" "$SRC/man/cluster.conf.example"; do
	if [ -e "$ex" ]; then install -m 0644 "$ex" "$DOC/cluster.conf.example"; fi
done
install -m 0644 "$SRC/packaging/copyright" "$DOC/copyright"
install -D -m 0644 "$SRC/packaging/lintian-overrides" "$ROOT/usr/share/lintian/overrides/concord"
# One changelog, in both packages.
changelog() {
	printf 'concord (%s) unstable; urgency=medium\n\n  * Built from %s.\n\n -- %s  %s\n' \
		"$DEBVERSION" "$(cd "$SRC" && git describe --tags --always --dirty 2>/dev/null || echo "$VERSION")" "$MAINTAINER" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(date +%s)}")" | gzip -9n >"$1"
}
changelog "$DOC/changelog.gz"

# Not shipped: cluster.conf and the key are the admin's (concordctl keygen).
install -d -m 0700 "$ROOT/etc/concord" "$ROOT/var/lib/concord"

SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat >"$ROOT/DEBIAN/control" <<CONTROL
Package: concord
Version: $DEBVERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $SIZE
Depends: systemd, dbus, libc6 (>= $GLIBC)
Suggests: fence-agents
Section: admin
Priority: optional
Homepage: https://github.com/concord-ha/concord
Description: high-availability cluster stack, systemd-native
 Concord's node services: nodes watch each other over dedicated raw
 Ethernet heartbeat links, agree on who is alive and whether they have
 quorum, and keep a replicated cluster configuration. Concord does not
 fence nodes or run services yet; its fencing daemon and resource manager
 are to come.
 .
 This package holds the node daemon concord-noded, the concordctl tool,
 Concord's fence agents, which can be run by hand or by Pacemaker, and
 libconcord, the C library of process groups (concord-dev builds with
 it). Nothing starts on installation: write /etc/concord/cluster.conf
 and the key, then enable concord-noded.service. A host in more clusters
 runs one concord-noded@NAME.service for each other one, configured in
 /etc/concord/NAME.
CONTROL

cat >"$ROOT/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
	# Never started here: a node joins a cluster only when its admin says so.
	# An upgrade leaves a running daemon alone; restart nodes one at a time.
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	# The bus policy is loaded by dbus's own trigger on
	# /usr/share/dbus-1/system.d, before dpkg returns.
	if [ -d /run/udev ] && command -v udevadm >/dev/null 2>&1; then
		udevadm control --reload-rules >/dev/null 2>&1 || true
	fi
fi
exit 0
SCRIPT

cat >"$ROOT/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	# With the other cluster contexts' instances, whichever are loaded
	# (systemctl takes the pattern).
	deb-systemd-invoke stop concord-noded.service 'concord-noded@*.service' >/dev/null || true
fi
exit 0
SCRIPT

cat >"$ROOT/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
if [ "$1" = purge ]; then
	# The replicated state is the package's; /etc/concord holds the admin's
	# files and stays.
	rm -rf /var/lib/concord
fi
exit 0
SCRIPT
chmod 0755 "$ROOT/DEBIAN/postinst" "$ROOT/DEBIAN/prerm" "$ROOT/DEBIAN/postrm"
# The shared library: ldconfig runs after dpkg, and what builds against it
# depends on this package, from this version on (shlibs, symbols).
echo "activate-noawait ldconfig" >"$ROOT/DEBIAN/triggers"
echo "libconcord 1 concord (>= $DEBVERSION)" >"$ROOT/DEBIAN/shlibs"
{
	echo "libconcord.so.1 concord #MINVER#"
	echo "* Build-Depends-Package: concord-dev"
	echo " CONCORD_1@CONCORD_1 $DEBVERSION"
	objdump -T "$LIB" | awk '$2 == "g" && $NF ~ /^concord_/ { print " " $NF "@CONCORD_1 '"$DEBVERSION"'" }' | LC_ALL=C sort
} >"$ROOT/DEBIAN/symbols"
chmod 0644 "$ROOT/DEBIAN/triggers" "$ROOT/DEBIAN/shlibs" "$ROOT/DEBIAN/symbols"
md5sums() {
	(cd "$1" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) >"$1/DEBIAN/md5sums"
	chmod 0644 "$1/DEBIAN/md5sums"
}
md5sums "$ROOT"

dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$OUT/concord.deb" >/dev/null
rm -rf "$ROOT"
echo "build-deb: $OUT/concord.deb ($DEBVERSION, $ARCH)"

# concord-dev: what a C program needs to build against libconcord.
DEV=$OUT/deb-root-dev
rm -rf "$DEV"
mkdir -p "$DEV/DEBIAN"
install -D -m 0644 "$SRC/lib/libconcord/include/concord/group.h" "$DEV/usr/include/concord/group.h"
mkdir -p "$DEV$LIBDIR/pkgconfig"
ln -s libconcord.so.1 "$DEV$LIBDIR/libconcord.so"
sed -e "s|@PREFIX@|/usr|" -e "s|@LIBDIR@|$LIBDIR|" -e "s|@INCLUDEDIR@|/usr/include|" -e "s|@VERSION@|$DEBVERSION|" \
	"$SRC/lib/libconcord/concord.pc.in" >"$DEV$LIBDIR/pkgconfig/concord.pc"
chmod 0644 "$DEV$LIBDIR/pkgconfig/concord.pc"
mkdir -p "$DEV/usr/share/man/man3"
for m in "$SRC"/man/*.3; do
	page=$(basename "$m")
	gzip -9n <"$m" >"$DEV/usr/share/man/man3/$page.gz"
	# man finds every function its page's NAME lists.
	for name in $(sed -n '/^\.SH NAME/{n;s/ \\-.*//;s/,//g;p;q}' "$m"); do
		[ "$name.3" = "$page" ] || ln -s "$page.gz" "$DEV/usr/share/man/man3/$name.3.gz"
	done
done
DEVDOC=$DEV/usr/share/doc/concord-dev
install -D -m 0644 "$SRC/lib/libconcord/examples/concord-chat.c" "$DEVDOC/examples/concord-chat.c"
install -m 0644 "$SRC/packaging/copyright" "$DEVDOC/copyright"
changelog "$DEVDOC/changelog.gz"
chmod 0644 "$DEVDOC/changelog.gz"
SIZE=$(du -sk --exclude=DEBIAN "$DEV" | cut -f1)
cat >"$DEV/DEBIAN/control" <<CONTROL
Package: concord-dev
Source: concord
Version: $DEBVERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $SIZE
Depends: concord (= $DEBVERSION)
Section: libdevel
Priority: optional
Homepage: https://github.com/concord-ha/concord
Description: high-availability cluster stack, systemd-native (C development files)
 Concord's process groups let programs on the nodes of a cluster join
 named groups and exchange messages in one agreed order, with barriers
 and transactions. libconcord, in the concord package, is their C
 library.
 .
 This package holds what a C program needs to build against libconcord:
 the header concord/group.h, the link libconcord.so, the pkg-config file
 (pkg-config --cflags --libs concord), the concord_group(3) manual pages
 and an example program, concord-chat.c.
CONTROL
md5sums "$DEV"
dpkg-deb --root-owner-group -Zxz --build "$DEV" "$OUT/concord-dev.deb" >/dev/null
rm -rf "$DEV"
echo "build-deb: $OUT/concord-dev.deb ($DEBVERSION, $ARCH)"
