#!/bin/sh
# Installs what Concord's build, demo and tests need on a Debian 12 machine (run as root).
# Safe to run again: it installs only what is missing.
set -eu

PKGS="make git ca-certificates debootstrap systemd-container dbus iproute2 nftables
      openipmi ipmitool fence-agents tgt istgt libiscsi-bin sbd openssl python3 dpkg-dev
      libxml2-utils man-db groff-base mandoc lintian pacemaker corosync pacemaker-cli-utils
      libiscsi-dev gcc libc6-dev libcpg-dev pkg-config binutils"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "setup: installing Debian packages:$missing"
	apt-get update -qq
	# The tests start the peers they need (tgtd, corosync, pacemaker) by
	# hand; a package must not start its daemon on this machine.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Go: Debian 12's own Go is too old for this module; a Go >= 1.21 fetches the
# toolchain go.mod names through the module proxy (GOTOOLCHAIN).
need=$(sed -n 's/^go //p' "$(dirname "$0")/../go.mod")
if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then
		:
	else
		# Any Go from 1.21 on fetches the toolchain go.mod names itself.
		echo "setup: installing a Go from bookworm-backports to bootstrap Go $need"
		# The host's own mirror (the first "bookworm" source in its apt
		# sources), or CONCORD_MIRROR.
		mirror=${CONCORD_MIRROR:-$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			awk '$1 == "deb" { sub(/\[[^]]*\] */, ""); if ($3 == "bookworm") { print $2; exit } }')}
		[ -n "$mirror" ] || mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
			awk '/^URIs:/ { u = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") { print u; exit } }')
		[ -n "$mirror" ] || { echo "setup: no bookworm mirror in the apt sources; set CONCORD_MIRROR" >&2; exit 1; }
		echo "deb $mirror bookworm-backports main" >/etc/apt/sources.list.d/concord-backports.list
		apt-get update -qq
		for v in 1.24 1.23 1.22 1.21; do
			if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports "golang-$v-go" >/dev/null 2>&1; then
				ln -sf "/usr/lib/go-$v/bin/go" /usr/local/bin/go
				break
			fi
		done
		command -v go >/dev/null 2>&1 || { echo "setup: no Go >= 1.21 could be installed" >&2; exit 1; }
	fi
fi

# A system bus on the host: systemd-nspawn registers with it.
if [ ! -S /run/dbus/system_bus_socket ]; then
	mkdir -p /run/dbus
	dbus-daemon --system --fork
fi
echo "setup: ok"
