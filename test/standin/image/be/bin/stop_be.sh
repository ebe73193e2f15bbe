#!/bin/bash
# Plays apache/doris bin/stop_be.sh: SIGTERM to the pid in bin/be.pid; with
# --grace, wait until the BE has finished and exited.
DORIS_HOME=$(cd "$(dirname "$0")/.." && pwd)
pid=$(cat "$DORIS_HOME/bin/be.pid" 2>/dev/null) || { echo "no be.pid: the BE is not running"; exit 0; }
kill "$pid" 2>/dev/null || exit 0
if [ "$1" = "--grace" ]; then
  while kill -0 "$pid" 2>/dev/null; do sleep 1; done
fi
rm -f "$DORIS_HOME/bin/be.pid"
echo "stopped the BE ($pid)"
