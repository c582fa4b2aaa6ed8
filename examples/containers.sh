#!/usr/bin/env bash
# Two "containers": network namespaces joined by a veth pair, redis-server in
# one, redis-benchmark in the other, first under pdrun, then on kernel TCP
# (veth). Creates namespaces pdex-srv and pdex-cli and deletes them on exit.
# Needs: root, apt-get install -y iproute2 redis-server redis-tools; npm run build.
source "$(dirname "$0")/common.sh"
[[ $(id -u) -eq 0 ]] || { echo "containers.sh creates network namespaces: run it as root" >&2; exit 1; }
cleanup() { stop_servers; ip netns del pdex-srv 2>/dev/null || true; ip netns del pdex-cli 2>/dev/null || true; }
trap cleanup EXIT
ip netns add pdex-srv; ip netns add pdex-cli
ip link add pdex-s type veth peer name pdex-c
ip link set pdex-s netns pdex-srv; ip link set pdex-c netns pdex-cli
ip -n pdex-srv addr add 10.213.0.1/24 dev pdex-s; ip -n pdex-cli addr add 10.213.0.2/24 dev pdex-c
for ns in pdex-srv pdex-cli; do ip -n $ns link set lo up; done
ip -n pdex-srv link set pdex-s up; ip -n pdex-cli link set pdex-c up

for mode in pdrun kernel; do
  use_mode "$mode"
  ip netns exec pdex-srv "${launch[@]}" redis-server --bind 10.213.0.1 --port 6379 --protected-mode no --save '' --logfile /dev/null &
  bg_pids+=($!)
  for _ in $(seq 200); do [[ -n $(ip netns exec pdex-srv ss -Hltn 'sport = :6379') ]] && break; sleep 0.1; done
  echo "== $mode"
  [[ $mode == pdrun ]] && show_transport 0.5 &
  ip netns exec pdex-cli "${launch[@]}" redis-benchmark -h 10.213.0.1 -p 6379 -t set,get -c 50 -n 100000 -q
  stop_servers
done
