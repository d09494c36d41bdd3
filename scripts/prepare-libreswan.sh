#!/bin/bash
# Make Libreswan's pluto available for interop tests without installing the
# package.  In Debian, libreswan and strongSwan cannot be installed together
# (libreswan Conflicts: strongswan-libcharon, strongswan-starter and the virtual
# ike-server), so libreswan's .deb is unpacked under the test-bed cache and only
# the shared libraries pluto needs are installed.  Runs on the host (not inside
# scripts/vm-run), as root; idempotent.
#
#   scripts/prepare-libreswan.sh          -> $TESTBED_CACHE/libreswan/root/usr/libexec/ipsec/pluto
#
# test/helpers/libreswan.ts finds pluto there (or $LIBRESWAN_ROOT, or a native
# install under /usr/libexec/ipsec).
set -euo pipefail
D=${TESTBED_CACHE:-/var/cache/ike-testbed}/libreswan
if [[ -x $D/root/usr/libexec/ipsec/pluto ]]; then
  echo "libreswan already prepared in $D/root"
  exit 0
fi
[[ $EUID == 0 ]] || { echo "prepare-libreswan: must run as root (apt-get)" >&2; exit 1; }
LIBS=(libnss3-tools libldns3 libunbound8 libevent-core-2.1-7 libevent-pthreads-2.1-7
  libcurl3-nss libcap-ng0 libnspr4 libnss3)
install_libs() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${LIBS[@]}" >&2; }
install_libs || { apt-get update -q >&2 && install_libs; }
mkdir -p "$D"
tmp=$(mktemp -d "$D/.tmp.XXXXXX"); chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
# APT::Sandbox::User=root: the _apt user cannot write into our mktemp directory
(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root libreswan >&2) ||
  { apt-get update -q >&2; (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root libreswan >&2); }
dpkg-deb -x "$tmp"/libreswan_*.deb "$tmp/root"
missing=$(ldd "$tmp/root/usr/libexec/ipsec/pluto" | grep 'not found' || true)
[[ -z $missing ]] || { echo "prepare-libreswan: pluto still misses: $missing" >&2; exit 1; }
rm -rf "$D/root"; mv "$tmp/root" "$D/root"
"$D/root/usr/libexec/ipsec/pluto" --version 2>&1 | head -n 1
