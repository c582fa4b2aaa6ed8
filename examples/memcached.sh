#!/usr/bin/env bash
# memcached: memaslap (Debian names it memcaslap), 50 connections, 90% get,
# for 5 s, first both under pdrun, then on kernel TCP.
# Needs: apt-get install -y memcached libmemcached-tools; npm run build.
source "$(dirname "$0")/common.sh"
port=${PORT:-11291}
user=$([[ $(id -u) -eq 0 ]] && echo "-u root" || true)

for mode in pdrun kernel; do
  use_mode "$mode"
  "${launch[@]}" memcached -l 127.0.0.1 -p "$port" -U 0 -t 1 $user &
  bg_pids+=($!)
  wait_port "$port"
  echo "== $mode"
  [[ $mode == pdrun ]] && show_transport 2 &
  "${launch[@]}" memcaslap -s "127.0.0.1:$port" -T 1 -c 50 -t 5s | grep -E '^Run time'
  stop_servers
done
