#!/usr/bin/env bash
# Redis: redis-benchmark (50 clients, SET and GET, no pipelining) against
# redis-server, first both under pdrun, then both on kernel TCP.
# Needs: apt-get install -y redis-server redis-tools; npm run build.
source "$(dirname "$0")/common.sh"
port=${PORT:-6390}

for mode in pdrun kernel; do
  use_mode "$mode"
  "${launch[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --logfile /dev/null &
  bg_pids+=($!)
  wait_port "$port"
  echo "== $mode"
  [[ $mode == pdrun ]] && show_transport 0.5 &
  "${launch[@]}" redis-benchmark -h 127.0.0.1 -p "$port" -t set,get -c 50 -n 100000 -q
  stop_servers
done
