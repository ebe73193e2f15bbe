#!/usr/bin/env bash
# Installs the parts of the e2e suite's node that come from Debian's
# packages, when they are missing: containerd, runc, the CNI plugins,
# iptables, conntrack, and the static busybox and bash the test images are
# made of.
# Runs as root (apt-get); does nothing when everything is there.
set -euo pipefail

declare -A needs=(
  [containerd]=/usr/bin/containerd
  [runc]=/usr/sbin/runc
  [containernetworking-plugins]=/usr/lib/cni/bridge
  [iptables]=/usr/sbin/iptables
  [conntrack]=/usr/sbin/conntrack
  [iproute2]=/usr/sbin/ip
  [busybox-static]=/usr/bin/busybox
  [bash-static]=/bin/bash-static
)
missing=()
for package in "${!needs[@]}"; do
  if [ ! -e "${needs[$package]}" ]; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "node: the e2e suite's node needs these Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "node: installing ${missing[*]} from Debian's packages (about a minute)" >&2
start=$SECONDS
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
echo "node: installed in $((SECONDS - start)) s" >&2
