#!/bin/bash
# Plays apache/doris bin/stop_fe.sh: SIGTERM to the pid in bin/fe.pid, then
# wait until it is gone.
DORIS_HOME=$(cd "$(dirname "$0")/.." && pwd)
pid=$(cat "$DORIS_HOME/bin/fe.pid" 2>/dev/null) || { echo "no fe.pid: the FE is not running"; exit 0; }
kill "$pid" 2>/dev/null || exit 0
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
rm -f "$DORIS_HOME/bin/fe.pid"
echo "stopped the FE ($pid)"
