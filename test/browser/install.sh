#!/usr/bin/env bash
# Installs Debian's Chromium, which the playground's browser test drives
# headless, when it is missing. Runs as root (apt-get).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "browser: the playground's browser test needs Debian's chromium package; install it as root (apt-get install chromium)" >&2
  exit 1
fi
echo "browser: installing chromium from Debian's packages (about a minute)" >&2
start=$SECONDS
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
echo "browser: installed in $((SECONDS - start)) s" >&2
