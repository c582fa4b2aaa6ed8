#!/usr/bin/env bash
# iperf3: one stream of 64 KiB writes for 5 s, then four streams, first both
# ends under pdrun, then on kernel TCP.
# Needs: apt-get install -y iperf3; npm run build.
source "$(dirname "$0")/common.sh"
port=${PORT:-5291}

for mode in pdrun kernel; do
  use_mode "$mode"
  for streams in 1 4; do
    "${launch[@]}" iperf3 -s -B 127.0.0.1 -p "$port" -1 >/dev/null &
    bg_pids+=($!)
    wait_port "$port"
    echo "== $mode, $streams stream(s)"
    [[ $mode == pdrun ]] && show_transport 1 &
    "${launch[@]}" iperf3 -c 127.0.0.1 -p "$port" -t 5 -l 64K -P "$streams" | grep -E 'receiver$' | tail -1
    stop_servers
  done
done
