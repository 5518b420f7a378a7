# Shared shell helpers: the cache folder, timed steps, and failures that name
# the component and the command. Sourced by the other scripts.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Everything obtained or built is cached here (git-ignored).
CACHE="${SPICEDB_ECS_CACHE:-$ROOT/.cache}"
mkdir -p "$CACHE/bin"
# shellcheck source=versions.env
source "$ROOT/scripts/versions.env"

_ms() { echo $(( $(date +%s%N) / 1000000 )); }
_secs() { local ms=$(( $(_ms) - $1 )); printf '%d.%ds' $((ms / 1000)) $(((ms % 1000) / 100)); }

# step NAME CMD...: run one step, print its name and how long it took.
step() {
  local name="$1"; shift
  local start; start=$(_ms)
  printf '==> %s\n' "$name"
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -eq 0 ]; then
    printf '    %s: done in %s\n' "$name" "$(_secs "$start")"
  else
    printf '    %s: FAILED after %s (exit %s)\n' "$name" "$(_secs "$start")" "$rc" >&2
    exit "$rc"
  fi
}

# fail COMPONENT COMMAND [HINT]: a component could not be obtained.
fail() {
  printf '\nMISSING COMPONENT: %s\n  command that failed: %s\n' "$1" "$2" >&2
  [ -n "${3:-}" ] && printf '  %s\n' "$3" >&2
  return 1
}

# Put the cached Node.js first on PATH (set-up installs it there when the
# machine's major is older than the Lambda runtime's).
if [ -x "$CACHE/node/package/bin/node" ]; then
  export PATH="$CACHE/node/package/bin:$PATH"
fi
export PATH="$CACHE/bin:$CACHE/venv/bin:$CACHE/venv-tools/bin:$PATH"
