# Sourced by the examples: `pdrun` and `pd` from this checkout (after
# `npm run build`), and a helper that stops background servers on exit.
set -euo pipefail
PD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pdrun() { node "$PD_ROOT/dist/cli/pdrun.js" "$@"; }
pd() { node "$PD_ROOT/dist/cli/pd.js" "$@"; }
bg_pids=()
stop_servers() { for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${bg_pids[@]}"; do wait "$p" 2>/dev/null || true; done; bg_pids=(); }
trap stop_servers EXIT
trap 'exit 130' INT TERM
# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s at most)
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing listens on $1" >&2; return 1; }
# show the connections pdrun upgraded (run while the client is busy)
show_transport() { sleep "${1:-0.5}"; pd status 2>/dev/null | sed -n '/^connections/,/^$/p' | head -6 >&2 || true; }
