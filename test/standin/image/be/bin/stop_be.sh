#!/bin/bash
# Plays apache/doris bin/stop_be.sh: SIGKILL to the pid in bin/be.pid, or
# with --grace SIGTERM (the BE lets running queries finish) and wait until
# it has exited.
DORIS_HOME=$(cd "$(dirname "$0")/.." && pwd)
pid=$(cat "$DORIS_HOME/bin/be.pid" 2>/dev/null) || { echo "$DORIS_HOME/bin/be.pid does not exist"; exit 1; }
signal=9
if [ "$1" = "--grace" ]; then
  signal=15
fi
if ! kill -0 "$pid" 2>/dev/null; then
  echo "Backend already exit, remove pid file."
  rm -f "$DORIS_HOME/bin/be.pid"
  exit 0
fi
kill -$signal "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
rm -f "$DORIS_HOME/bin/be.pid"
echo "stop doris_be ($pid), and remove pid file."
