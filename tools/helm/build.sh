#!/usr/bin/env bash
# Builds helm from source through the Go module proxy, as the Go tool pinned in
# tools/helm/go.mod (its own module, so helm's dependencies stay out of the
# main module), into a cache folder keyed by that pin: .cache/helm/<key>/helm.
# It is built only when missing. Prints the binary's path on its last line.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# The key changes whenever the pinned version does, so a bump rebuilds.
key=$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-12)
out="${HELM_CACHE:-$root/.cache/helm}/$key"
version=$(awk '$1 == "helm.sh/helm/v4" { print $2 }' "$here/go.mod" | head -n 1)

if [ -x "$out/helm" ]; then
  echo "helm: reusing cached helm $version ($out/helm)" >&2
else
  echo "helm: building helm $version from source (about 2 minutes cold on 2 cores)" >&2
  start=$SECONDS
  mkdir -p "$out"
  # A temporary folder of its own, so two builds at once never mix their output.
  tmp=$(mktemp -d "$out/tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # Stamp the version helm reports, as its release build does.
  (cd "$here" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
    -o "$tmp/helm" helm.sh/helm/v4/cmd/helm)
  mv "$tmp/helm" "$out/helm"
  echo "helm: built helm in $((SECONDS - start)) s" >&2
fi
echo "$out/helm"
