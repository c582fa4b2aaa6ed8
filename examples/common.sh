# Sourced by the examples: `pdrun` and `pd` from this checkout (after
# `npm run build`), and a helper that stops background servers on exit.
set -euo pipefail
PD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pd() { node "$PD_ROOT/dist/cli/pd.js" "$@"; }
# use_mode pdrun|kernel: sets the array `launch`, the prefix of every server
# and client command (so `$!` of a background server is the launcher itself)
use_mode() { if [[ $1 == pdrun* ]]; then launch=(node "$PD_ROOT/dist/cli/pdrun.js"); else launch=(); fi; }
bg_pids=()
stop_servers() { for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${bg_pids[@]}"; do wait "$p" 2>/dev/null || true; done; bg_pids=(); }
trap stop_servers EXIT
trap 'exit 130' INT TERM
# wait_port PORT: until something listens on PORT (20 s at most); asks ss,
# never connects (iperf3 -1 would take a probe for its one client)
wait_port() { for _ in $(seq 200); do [[ -n $(ss -Hltn "sport = :$1") ]] && return 0; sleep 0.1; done; echo "nothing listens on $1" >&2; return 1; }
# show the connections pdrun upgraded (run while the client is busy)
show_transport() { sleep "${1:-0.5}"; pd status 2>/dev/null | sed -n '/^connections/,/^$/p' | head -6 >&2 || true; }
