#!/bin/bash
# Plays apache/doris bin/start_be.sh: --daemon starts the BE in the
# background, its output in log/be.out and its pid in bin/be.pid; --console
# (or neither) in the foreground, its pid in bin/be.pid too.
set -e
export DORIS_HOME=$(cd "$(dirname "$0")/.." && pwd)
daemon=0
for arg in "$@"; do
  case "$arg" in
    --daemon) daemon=1 ;;
    --console) daemon=0 ;;
  esac
done
mkdir -p "$DORIS_HOME/log"
if [ "$daemon" = 1 ]; then
  "$DORIS_HOME/lib/doris-standin" be --home "$DORIS_HOME" >>"$DORIS_HOME/log/be.out" 2>&1 </dev/null &
  echo $! >"$DORIS_HOME/bin/be.pid"
else
  # exec keeps this pid: the one stop_be.sh signals.
  echo $$ >"$DORIS_HOME/bin/be.pid"
  exec "$DORIS_HOME/lib/doris-standin" be --home "$DORIS_HOME"
fi
