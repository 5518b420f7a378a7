#!/usr/bin/env bash
# The local stack: the whole deployment on one machine (README's main
# command). Sets up every component first (cached), bundles the functions,
# then runs `up` (default) or a sub-command against the running stack.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
case "${1:-up}" in
  up|--*)
    bash scripts/setup.sh local
    export PATH="$CACHE/node/package/bin:$PATH"
    step "bundles (esbuild, from the template's build metadata)" npx --no-install tsx scripts/build.ts
    ;;
esac
# node itself (not npx) runs the CLI, so Ctrl-C reaches the stack, which stops everything and exits 0.
exec node --import tsx scripts/local-stack.ts "$@"
