#!/usr/bin/env bash
# Builds the control plane the e2e suite runs — kube-apiserver, etcd and kubectl —
# and the node it runs pods on — kubelet, kube-controller-manager,
# kube-scheduler, kube-proxy and CoreDNS — from source through the Go module
# proxy, into a cache folder keyed by the pinned versions. Only missing
# binaries are built. Prints the folder to use as KUBEBUILDER_ASSETS on its
# last line.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# The key changes whenever a pinned version or a main package does, so a bump
# rebuilds.
key=$(cd "$here" && find . -name '*.go' -o -name go.mod -o -name go.sum | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-12)
out="${CONTROLPLANE_CACHE:-$root/.cache/controlplane}/$key"
mkdir -p "$out"

k8s_version=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$here/go.mod" | head -n 1)
etcd_version=$(awk '{ for (i = 1; i < NF; i++) if ($i == "go.etcd.io/etcd/server/v3") print $(i + 1) }' "$here/etcd/go.mod")
coredns_version=$(awk '{ for (i = 1; i < NF; i++) if ($i == "github.com/coredns/coredns") print $(i + 1) }' "$here/coredns/go.mod" | head -n 1)
minor=${k8s_version#v1.}
minor=${minor%%.*}
# Stamp the version the binaries report, as the upstream release build does.
ldflags="-s -w \
  -X k8s.io/component-base/version.gitVersion=$k8s_version \
  -X k8s.io/component-base/version.gitMajor=1 \
  -X k8s.io/component-base/version.gitMinor=$minor \
  -X k8s.io/component-base/version.gitTreeState=clean \
  -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"

build() { # name package-dir version
  local name=$1 dir=$2 version=$3
  if [ -x "$out/$name" ]; then
    echo "controlplane: reusing cached $name $version ($out/$name)" >&2
    return
  fi
  echo "controlplane: building $name $version from source (all of them take about 17 minutes with empty Go caches on 2 cores)" >&2
  local start=$SECONDS
  (cd "$dir" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/$name.tmp" .)
  mv "$out/$name.tmp" "$out/$name"
  echo "controlplane: built $name in $((SECONDS - start)) s" >&2
}

build etcd "$here/etcd" "$etcd_version"
build kubectl "$here/kubectl" "$k8s_version"
build kube-apiserver "$here/kube-apiserver" "$k8s_version"
build kube-controller-manager "$here/kube-controller-manager" "$k8s_version"
build kube-scheduler "$here/kube-scheduler" "$k8s_version"
build kube-proxy "$here/kube-proxy" "$k8s_version"
build kubelet "$here/kubelet" "$k8s_version"
build coredns "$here/coredns" "$coredns_version"
echo "$out"
