#!/usr/bin/env bash
# The benchmark command (`npm run bench`): install what is missing (the Debian
# packages of scripts/setup.sh, redis-server and redis-tools among them),
# build, then run `pd bench` (default: the redis A/B; kernel TCP, pdrun, Unix
# sockets alternating in one run). Markdown on stdout, progress on stderr,
# JSON and SVG in bench/results/. Arguments go to `pd bench`:
#   npm run bench                        # pd bench redis
#   npm run bench -- --reps 5            # pd bench redis --reps 5
#   npm run bench -- latency,throughput  # other scenarios (pd bench list)
#   npm run bench -- echo                # the echo pair (bench/echo-ab.mjs)
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

ensure_debian_packages
ensure_node
build all progs
if [[ $# -eq 0 || $1 == -* ]]; then set -- redis "$@"; fi
exec node dist/cli/pd.js bench "$@"
