#!/bin/bash
# Plays apache/doris bin/stop_fe.sh (2.x): SIGKILL to the pid in bin/fe.pid,
# or with --grace SIGTERM; then wait until the FE has exited.
DORIS_HOME=$(cd "$(dirname "$0")/.." && pwd)
pid=$(cat "$DORIS_HOME/bin/fe.pid" 2>/dev/null) || { echo "no fe.pid: the FE is not running"; exit 0; }
signal=9
if [ "$1" = "--grace" ]; then
  signal=15
fi
kill -$signal "$pid" 2>/dev/null || exit 0
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
rm -f "$DORIS_HOME/bin/fe.pid"
echo "stopped the FE ($pid)"
