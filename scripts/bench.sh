#!/usr/bin/env bash
# The benchmark command (`npm run bench`): install what is missing, build, then
# run the echo-pair A/B (kernel TCP vs pdrun, one run, alternating). Markdown on
# stdout, JSON in bench/results/. Extra arguments go to bench/echo-ab.mjs.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

ensure_debian_packages
ensure_node
build all progs
exec node bench/echo-ab.mjs "$@"
