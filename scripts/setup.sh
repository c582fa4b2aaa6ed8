# Sourced by scripts/test.sh and scripts/bench.sh: install what is missing and
# build. Works unattended (CI=true, no terminal). Installing Debian packages
# needs root (or password-less sudo), which CI has; nothing is installed when
# everything is already there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive

say() { printf '%s\n' "pipedevice setup: $*" >&2; }

ensure_debian_packages() {
  # command -> Debian package: the build and test tools, then the real
  # applications that test/apps and `pd bench` run (redis, iperf3, sockperf,
  # nginx + wrk + curl, memcached + memaslap/memccp/memccat, Python for the asyncio test).
  local -A pkg_of=([gcc]=gcc [make]=make [ss]=iproute2 [ip]=iproute2 [spin]=spin [strace]=strace
    [redis-server]=redis-server [redis-cli]=redis-tools [redis-benchmark]=redis-tools
    [iperf3]=iperf3 [sockperf]=sockperf [nginx]=nginx [wrk]=wrk [curl]=curl
    [memcached]=memcached [memcaslap]=libmemcached-tools [python3]=python3)
  local missing=()
  for cmd in "${!pkg_of[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || [[ -x "/usr/sbin/$cmd" ]] || missing+=("${pkg_of[$cmd]}")
  done
  # libasan for the ASan/UBSan shim variant (gcc's own runtime package)
  if command -v gcc >/dev/null 2>&1 && [[ "$(gcc -print-file-name=libasan.so)" != /* ]]; then
    missing+=(gcc)
  fi
  [[ ${#missing[@]} -eq 0 ]] && return 0
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      say "missing packages: ${missing[*]}; run as root: apt-get install -y ${missing[*]}"
      exit 1
    fi
  fi
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  say "installing ${missing[*]}"
  # The server packages (redis-server, memcached, nginx) would start their
  # system services, listening on 6379, 11211 and 80; tests and benchmarks
  # start their own on 127.0.0.1. Unless the host already has a policy, tell
  # invoke-rc.d not to start them (the usual policy-rc.d of container images).
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null && "${sudo[@]}" chmod +x "$policy" && made_policy=1
  fi
  local rc=0
  "${sudo[@]}" apt-get update -qq || rc=$?
  [[ $rc -eq 0 ]] && { "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?; }
  [[ $made_policy -eq 1 ]] && "${sudo[@]}" rm -f "$policy"
  [[ $rc -eq 0 ]] || { say "apt-get failed ($rc)"; exit 1; }
}

ensure_node() {
  command -v node >/dev/null 2>&1 || { say "node (>= 20.19) is required"; exit 1; }
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
    { say "node >= 20.19 is required, found $(node --version)"; exit 1; }
  # (re)install when node_modules is absent or older than the lockfile
  if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
    if [[ -f package-lock.json ]]; then
      say "npm ci"
      npm ci --no-audit --no-fund --loglevel=error
    else
      say "npm install"
      npm install --no-audit --no-fund --loglevel=error
    fi
  fi
}

build() {
  say "build: tsc, make $*"
  npx --no-install tsc -p tsconfig.json
  chmod +x dist/cli/pdrun.js dist/cli/pd.js
  make -s "$@"
}
