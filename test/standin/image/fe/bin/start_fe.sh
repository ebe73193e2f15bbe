#!/bin/bash
# Plays apache/doris bin/start_fe.sh (which uses nohup; busybox has none, and
# no terminal hangs up here): --daemon starts the FE in the
# background, its output in log/fe.out and its pid in bin/fe.pid; --console
# (or neither) in the foreground, its pid in bin/fe.pid too; --helper HOST:PORT names the FE to join
# through. DORIS_HOME is exported for ${DORIS_HOME} in fe.conf.
set -e
export DORIS_HOME=$(cd "$(dirname "$0")/.." && pwd)
daemon=0
helper=()
while [ $# -gt 0 ]; do
  case "$1" in
    --daemon) daemon=1 ;;
    --console) daemon=0 ;;
    --helper) helper=(--helper "$2"); shift ;;
  esac
  shift
done
mkdir -p "$DORIS_HOME/log"
if [ "$daemon" = 1 ]; then
  "$DORIS_HOME/lib/doris-standin" fe --home "$DORIS_HOME" "${helper[@]}" >>"$DORIS_HOME/log/fe.out" 2>&1 </dev/null &
  echo $! >"$DORIS_HOME/bin/fe.pid"
else
  # exec keeps this pid: the one stop_fe.sh signals.
  echo $$ >"$DORIS_HOME/bin/fe.pid"
  exec "$DORIS_HOME/lib/doris-standin" fe --home "$DORIS_HOME" "${helper[@]}"
fi
