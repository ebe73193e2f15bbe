#!/bin/bash
# Plays the official image's entrypoint (apache/doris
# docker/runtime/be/resource/init_be.sh, as in apache/doris:be-2.1.7),
# reading the env vars it reads:
# - BUILD_TYPE=k8s: only runs start_be.sh;
# - FE_SERVERS (name:ip:edit_log_port,...; the first is the master) +
#   BE_ADDR (ip:heartbeat_port), or FE_MASTER_IP + BE_IP + BE_PORT: runs
#   ALTER SYSTEM ADD BACKEND at the master until it is listed (an existing
#   entry is fine), then start_be.sh;
# - none of these: exits with the script's message.
# priority_networks = <ip>/24 is appended on the first start only.
set -eo pipefail
DORIS_HOME=/opt/apache-doris
note() { printf '%s [Note] [Entrypoint]: %s\n' "$(date -Iseconds)" "$*"; }
fail() { printf '%s [ERROR] [Entrypoint]: %s\n' "$(date -Iseconds)" "$*" >&2; exit 1; }
sql() { mysql -uroot -P9030 -h"$MASTER_FE_IP" --comments "$@" 2>/dev/null; }

if [ -n "$BUILD_TYPE" ]; then
  [[ $BUILD_TYPE =~ ^([kK]8[sS])$ ]] || fail "BUILD_TYPE rule error！example: [k8s], Default Value: docker"
  # Not exec: bash stays PID 1, as in the official image (which traps nothing).
  "$DORIS_HOME/be/bin/start_be.sh"
  exit
elif [ -n "$FE_SERVERS" ] && [ -n "$BE_ADDR" ]; then
  IFS=, read -ra servers <<<"$FE_SERVERS"
  IFS=: read -r _ MASTER_FE_IP _ <<<"${servers[0]}"
  IFS=: read -r CURRENT_BE_IP CURRENT_BE_PORT <<<"$BE_ADDR"
elif [ -n "$FE_MASTER_IP" ] && [ -n "$BE_IP" ] && [ -n "$BE_PORT" ]; then
  MASTER_FE_IP=$FE_MASTER_IP CURRENT_BE_IP=$BE_IP CURRENT_BE_PORT=$BE_PORT
else
  fail "Note that you did not configure the required parameters! plan 1: BUILD_TYPE; plan 2: FE_SERVERS & BE_ADDR; plan 3: FE_MASTER_IP & FE_MASTER_PORT & BE_IP & BE_PORT"
fi

if [ ! -d "$DORIS_HOME/be/storage/data" ]; then
  note "add priority_networks ${CURRENT_BE_IP%.*}.0/24 to $DORIS_HOME/be/conf/be.conf"
  echo "priority_networks = ${CURRENT_BE_IP%.*}.0/24" >>"$DORIS_HOME/be/conf/be.conf"
fi
for i in $(seq 1 300); do
  if sql <<<"alter system add backend '${CURRENT_BE_IP}:${CURRENT_BE_PORT}'" ||
    sql <<<"show backends" | grep -q "[[:space:]]${CURRENT_BE_IP}[[:space:]]${CURRENT_BE_PORT}[[:space:]]"; then
    note "BE successfully registered to FE！"
    exec "$DORIS_HOME/be/bin/start_be.sh"
  fi
  sleep 1
done
fail "Failed to register BE to FE！Tried 30 times！Maybe FE Start Failed！"
