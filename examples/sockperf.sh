#!/usr/bin/env bash
# sockperf: 16 B ping-pong over TCP with epoll on both ends, under pdrun
# (spinning, then PD_SPIN_US=0), then on kernel TCP. Prints the round trip.
# Needs: apt-get install -y sockperf; npm run build.
source "$(dirname "$0")/common.sh"
port=${PORT:-11191}
feed=$(mktemp); echo "T:127.0.0.1:$port" > "$feed"

for mode in pdrun pdrun-nospin kernel; do
  use_mode "$mode"
  spin=()
  [[ $mode == pdrun-nospin ]] && spin=(env PD_SPIN_US=0)
  "${spin[@]}" "${launch[@]}" sockperf server -f "$feed" -F e --uc-reuseaddr >/dev/null &
  bg_pids+=($!)
  wait_port "$port"
  echo "== $mode"
  # --mps: sockperf sizes its buffers from it; its default is too small for a ring
  "${spin[@]}" "${launch[@]}" sockperf ping-pong -f "$feed" -F e -t 3 -m 16 --mps 10000000 --full-rtt 2>&1 |
    grep -E 'avg-rtt|percentile (50|99)\.000' | sed 's/\x1b\[[0-9;]*m//g'
  stop_servers
done
rm -f "$feed"
