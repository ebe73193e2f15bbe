#!/usr/bin/env bash
# Bundles the playground's editor (main.js and the CodeMirror packages that
# package.json pins) into ../page/editor.js, which the binary embeds. npm
# installs the packages' JavaScript from the npm registry (package-lock.json
# pins them); esbuild, built from source by Go (go.mod's tool directive),
# bundles and minifies. Run it after changing main.js or package.json and
# commit editor.js: building doris-admission never needs npm.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm > /dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "editor: npm is missing; install Node.js and npm (as root: apt-get install nodejs npm)" >&2
    exit 1
  fi
  echo "editor: installing nodejs and npm from Debian's packages" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >&2
fi
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
go tool esbuild main.js --bundle --minify --format=iife --target=es2020 \
  --banner:js="/* CodeMirror 6 (MIT license, codemirror.net) and the doris-admission playground editor, bundled by playground/editor/build.sh */" \
  --legal-comments=eof --log-level=warning --outfile=../page/editor.js
