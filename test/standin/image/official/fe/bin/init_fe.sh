#!/bin/bash
# Plays the official image's entrypoint (apache/doris
# docker/runtime/fe/resource/init_fe.sh, as in apache/doris:fe-2.1.7),
# reading the env vars it reads:
# - BUILD_TYPE=k8s: only runs start_fe.sh --console;
# - FE_SERVERS (name:ip:edit_log_port,...) + FE_ID: FE_ID 1 is the master;
#   another FE runs ALTER SYSTEM ADD FOLLOWER at the master (30 tries; an
#   existing entry is fine) and starts with --helper;
# - FE_MASTER_IP/FE_MASTER_PORT + FE_CURRENT_IP/FE_CURRENT_PORT: the same,
#   with the master named;
# - none of these: exits with the script's message.
# priority_networks = <ip>/24 is appended on the first start only. SIGTERM
# runs stop_fe.sh. The FQDN plan (FE_SERVERS + BE_SERVERS + FQDN, which
# rewrites /etc/hosts) is not played.
set -eo pipefail
DORIS_HOME=/opt/apache-doris
note() { printf '%s [Note] [Entrypoint]: %s\n' "$(date -Iseconds)" "$*"; }
fail() { printf '%s [ERROR] [Entrypoint]: %s\n' "$(date -Iseconds)" "$*" >&2; exit 1; }
sql() { mysql -uroot -P9030 -h"$MASTER_FE_IP" --comments "$@" 2>/dev/null; }
cleanup() { note "Container stopped, running stop_fe script"; "$DORIS_HOME/fe/bin/stop_fe.sh"; }

if [ -n "$BUILD_TYPE" ]; then
  [[ $BUILD_TYPE =~ ^([kK]8[sS])$ ]] || fail "BUILD_TYPE rule error！example: [k8s], Default Value: docker."
  RUN_TYPE=K8S
elif [ -n "$FE_SERVERS" ] && [ -n "$FE_ID" ]; then
  RUN_TYPE=ELECTION
  IFS=, read -ra servers <<<"$FE_SERVERS"
  IFS=: read -r _ MASTER_FE_IP MASTER_FE_EDIT_PORT <<<"${servers[0]}"
  IFS=: read -r _ CURRENT_FE_IP CURRENT_FE_EDIT_PORT <<<"${servers[$((FE_ID - 1))]}"
elif [ -n "$FE_MASTER_IP" ] && [ -n "$FE_MASTER_PORT" ] && [ -n "$FE_CURRENT_IP" ] && [ -n "$FE_CURRENT_PORT" ]; then
  RUN_TYPE=ASSIGN
  MASTER_FE_IP=$FE_MASTER_IP MASTER_FE_EDIT_PORT=$FE_MASTER_PORT
  CURRENT_FE_IP=$FE_CURRENT_IP CURRENT_FE_EDIT_PORT=$FE_CURRENT_PORT
else
  fail "Note that you did not configure the required parameters! plan 1: BUILD_TYPE; plan 2: FE_SERVERS & FE_ID; plan 3: FE_SERVERS & FE_ID & BE_SERVERS & FQDN; plan 4: FE_MASTER_IP & FE_MASTER_PORT & FE_CURRENT_IP & FE_CURRENT_PORT"
fi

trap cleanup SIGTERM SIGINT
if [ "$RUN_TYPE" = K8S ]; then
  "$DORIS_HOME/fe/bin/start_fe.sh" --console &
  wait $!
  exit
fi
if [ ! -d "$DORIS_HOME/fe/doris-meta/image" ]; then
  note "add priority_networks ${CURRENT_FE_IP%.*}.0/24 to $DORIS_HOME/fe/conf/fe.conf"
  echo "priority_networks = ${CURRENT_FE_IP%.*}.0/24" >>"$DORIS_HOME/fe/conf/fe.conf"
fi
if [ "$MASTER_FE_IP" = "$CURRENT_FE_IP" ]; then
  note "Current FE is Master FE!  No need to register again！"
  "$DORIS_HOME/fe/bin/start_fe.sh" --console &
else
  registered=
  for i in $(seq 1 30); do
    if sql <<<"alter system add FOLLOWER '${CURRENT_FE_IP}:${CURRENT_FE_EDIT_PORT}'" ||
      sql <<<"show frontends" | grep -q "[[:space:]]${CURRENT_FE_IP}[[:space:]]${CURRENT_FE_EDIT_PORT}[[:space:]]"; then
      note "FE successfully registered！"
      registered=1
      break
    fi
    sleep 1
  done
  [ -n "$registered" ] || fail "Failed to register CURRENT_FE to FE！Tried 30 times！Maybe FE Start Failed！"
  "$DORIS_HOME/fe/bin/start_fe.sh" --helper "${MASTER_FE_IP}:${MASTER_FE_EDIT_PORT}" --console &
fi
wait $!
