#!/usr/bin/env bash
# allreduce: a ring allreduce of 16 MiB (float32 sums) among 4 local
# processes over TCP, the kind of job PipeDevice ported baidu-allreduce for:
# under pdrun, then on kernel TCP. Every rank checks every iteration (--check);
# rank 0 prints the time per allreduce and the bus bandwidth.
# Needs: cc (builds bench/progs/allreduce.c); npm run build.
source "$(dirname "$0")/common.sh"
bin="$PD_ROOT/bench/progs/bin/allreduce"
mkdir -p "$(dirname "$bin")"
[[ -x $bin && $bin -nt $PD_ROOT/bench/progs/allreduce.c ]] ||
  ${CC:-cc} -O2 -o "$bin" "$PD_ROOT/bench/progs/allreduce.c"
port=${PORT:-24300}

for mode in pdrun kernel; do
  use_mode "$mode"
  echo "== $mode"
  for r in 1 2 3; do
    "${launch[@]}" "$bin" --ranks 4 --rank "$r" --port "$port" --floats $((4 << 20)) --iters 20 --check >/dev/null &
    bg_pids+=($!)
  done
  "${launch[@]}" "$bin" --ranks 4 --rank 0 --port "$port" --floats $((4 << 20)) --iters 20 --check
  for p in "${bg_pids[@]}"; do wait "$p"; done
  bg_pids=()
done
