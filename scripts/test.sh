#!/usr/bin/env bash
# The test command (`npm test`): install what is missing, build the shim (all
# variants), the test programs and dist/, check the generated C header against
# its TypeScript source, type-check src/ and test/, then run every vitest suite.
# Extra arguments go to `vitest run` (e.g. a file name).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

ensure_debian_packages
ensure_node
build all-variants progs
say "checking preload/pd_layout.h against src/datapath/layout.ts"
node dist/datapath/gen-header.js --check
say "type-check"
npx --no-install tsc -p tsconfig.json --noEmit
npx --no-install tsc -p test/tsconfig.json
say "vitest"
# No colour codes in a log (vitest colours its output whenever CI is set).
[[ -t 1 ]] || export NO_COLOR=1
exec npx --no-install vitest run "$@"
